//! Input without bounds, as a hostile tester sends it: every value is refused naming its field
//! and limit, and nothing is written. Each case here was answered 201 before the bounds existed.

mod common;

use common::*;

use custodia_service as service;

use serde_json::{json, Value};
use service::custody::AdmitRequest;
use service::housing::ClassifyRequest;
use service::legal::{CourtRecordRequest, HoldRequest};
use service::ServiceError;

/// The field a refusal names, whether the value failed to parse or a rule refused it.
fn refused_field(error: ServiceError) -> String {
    match error {
        ServiceError::Invalid(fields) => fields[0].field.clone(),
        other => panic!("expected a field error, got {other:?}"),
    }
}

/// An admission changed at `pointer`, parsed and (if it parses) admitted: the refusal's field.
fn admission_refusal(f: &Fixture, pointer: &str, value: Value) -> (String, String) {
    let mut body = admission_json("NORTE", "Ana", "Rivas", "2026-03-01T08:00:00Z");
    match body.pointer_mut(pointer) {
        Some(slot) => *slot = value,
        None => {
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            body.pointer_mut(parent).unwrap()[key] = value;
        }
    }
    let error = match AdmitRequest::from_json(&body.to_string()) {
        Err(error) => error,
        Ok(request) => refused_without_writing(f, || f.service.admit(&f.ctx, &request)),
    };
    let text = error.to_string();
    (refused_field(error), text)
}

#[test]
fn an_admission_with_unbounded_or_hostile_values_is_refused_naming_the_field_and_limit() {
    let f = fixture();
    let huge = "x".repeat(100_000);
    let injury = json!({"description": "bruise"});
    let document = json!({"kind": "dui", "number": "01234567-8", "issuing_country": "SV"});
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("/identity/given_names", json!(huge), "identity.given_names", "the limit is 100"),
        ("/identity/first_surname", json!("Rivas\u{0}"), "identity.first_surname", "U+0000"),
        ("/identity/first_surname", json!("Ri\u{1b}[31mvas"), "identity.first_surname", "U+001B"),
        ("/identity/given_names", json!("\u{202E}anA"), "identity.given_names", "U+202E"),
        ("/identity/date_of_birth", json!("0001-01-01"), "identity.date_of_birth", "1900-01-01"),
        ("/identity/nationality", json!("ZZ"), "identity.nationality", "ISO 3166-1"),
        ("/identity/nationality", json!(huge), "identity.nationality", "the limit is 2"),
        ("/arrest_place", json!(huge), "arrest_place", "the limit is 200"),
        ("/identity/documents", json!(vec![document; 500]), "identity.documents", "the limit is 10"),
        ("/injuries", json!(vec![injury; 2_000]), "injuries", "the limit is 50"),
        (
            "/property",
            json!([{"description": "watch", "quantity": 4_000_000_000u32}]),
            "property[0].quantity",
            "1 to 10000",
        ),
        (
            "/dependants",
            json!([{"name": "Luis", "relationship": "son", "date_of_birth": "0000-06-01"}]),
            "dependants[0].date_of_birth",
            "1900-01-01",
        ),
    ];
    for (pointer, value, field, limit) in cases {
        let (named, text) = admission_refusal(&f, pointer, value);
        assert_eq!(named, field, "{pointer}: {text}");
        assert!(text.contains(limit), "{pointer}: `{text}` does not say `{limit}`");
    }
    // Two copies of one document are refused even under the count limit.
    let twice = json!([document_value(), document_value()]);
    assert_eq!(admission_refusal(&f, "/identity/documents", twice).0, "identity.documents[1]");
}

fn document_value() -> Value {
    json!({"kind": "dui", "number": "01234567-8", "issuing_country": "SV"})
}

#[test]
fn legal_and_housing_records_refuse_numbers_codes_and_lists_out_of_range() {
    let f = fixture();
    let person = f.admit("NORTE", "Ana", "Rivas", "2026-01-05T08:00:00Z").person;
    let extension: CourtRecordRequest =
        serde_json::from_value(json!({"kind": "extension", "on": "2026-02-01", "months": 2_147_483_647u32})).unwrap();
    let error = refused_without_writing(&f, || f.service.record_court(&f.ctx, &person, &extension));
    assert!(error.to_string().contains("at most 24 months"), "{error}");
    assert_eq!(refused_field(error), "months");

    for country in ["XX", "sv", "SLV"] {
        let hold = json!({"kind": "do_not_remove", "country": country, "authority": "Court", "order_reference": "A-1"});
        assert!(serde_json::from_value::<HoldRequest>(hold).is_err(), "hold country {country}");
    }
    let group = json!({"group": "x".repeat(100_000), "source": "tattoo"});
    assert!(serde_json::from_value::<service::housing::AffiliationRequest>(group).is_err());

    let flags = json!({"legal_status": "untried", "regime": "criminal", "security_level": "medium",
                       "vulnerabilities": vec!["elderly"; 10_000]});
    let classify: ClassifyRequest = serde_json::from_value(flags).unwrap();
    let error = refused_without_writing(&f, || f.service.classify(&f.ctx, &person, &classify));
    assert!(error.to_string().contains("the limit is 20"), "{error}");
    assert_eq!(refused_field(error), "vulnerabilities");
}

#[test]
fn a_name_search_of_any_length_is_answered_never_an_error_of_the_database() {
    let f = fixture();
    f.admit("NORTE", "Ana", "Rivas", "2026-01-05T08:00:00Z");
    let words = vec!["ana"; 995].join(" ");
    let error = f.service.search_people(&words, "", 10, |_| true).unwrap_err();
    assert_eq!(refused_field(error), "q");
    let found = f.service.search_people("ana rivas", "", 10, |_| true).unwrap();
    assert_eq!(found.len(), 1);
}
