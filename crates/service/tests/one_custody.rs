//! One person, one custody: an identity document on record decides who the person is, and a
//! record merged away takes no new entries. (Two admissions with one document at once: `races.rs`.)

mod common;

use common::*;

use custodia_service as service;

use service::custody::AdmitRequest;
use service::identity::MergeRequest;
use service::Context;

fn with_document(facility: &str, given: &str, dui: &str) -> serde_json::Value {
    let mut value = admission_json(facility, given, "Rivas", "2026-03-01T08:00:00Z");
    value["identity"]["documents"][0]["number"] = dui.into();
    value
}

#[test]
fn a_document_of_a_person_in_custody_is_refused_anywhere_and_writes_nothing() {
    let f = fixture();
    let held = f.service.admit(&f.ctx, &request(with_document("NORTE", "Ana", "01234567-8"))).unwrap().person;

    for facility in ["NORTE", "SUR"] {
        // Another name, the same document, spelled without the dash.
        let again = request(with_document(facility, "Anabel", "012345678"));
        let (rule, detail) = refused_rule(refused_without_writing_ok(&f, || f.service.admit(&f.ctx, &again)));
        assert_eq!(rule, "custody.already_in_custody");
        assert!(detail.contains(&held) && detail.contains("NORTE"), "{detail}");
    }
    // Declaring a different person does not let one human be held twice.
    let mut declared = with_document("SUR", "Anabel", "01234567-8");
    declared["different_person"] = serde_json::json!({"reason": "another face"});
    let (rule, _) = refused_rule(refused_without_writing_ok(&f, || f.service.admit(&f.ctx, &request(declared))));
    assert_eq!(rule, "custody.already_in_custody");
}

#[test]
fn staff_of_another_facility_learn_only_that_the_person_is_held_elsewhere() {
    let f = fixture();
    let held = f.service.admit(&f.ctx, &request(with_document("NORTE", "Ana", "01234567-8"))).unwrap().person;
    let sur = Context { scope: Some(vec!["SUR".into()]), ..f.ctx.clone() };
    let again = request(with_document("SUR", "Anabel", "01234567-8"));
    let (rule, detail) = refused_rule(refused_without_writing_ok(&f, || f.service.admit(&sur, &again)));
    assert_eq!(rule, "custody.already_in_custody");
    assert!(detail.contains("elsewhere") && !detail.contains(&held) && !detail.contains("NORTE"), "{detail}");
}

#[test]
fn a_document_of_a_person_not_in_custody_needs_their_number_or_a_reason() {
    let f = fixture();
    let ana = f.service.admit(&f.ctx, &request(with_document("NORTE", "Ana", "01234567-8"))).unwrap().person;
    f.mv(&ana, release(), "2026-03-01T09:00:00Z");

    let fresh = with_document("SUR", "Ana", "01234567-8");
    let (rule, detail) =
        refused_rule(refused_without_writing_ok(&f, || f.service.admit(&f.ctx, &request(fresh.clone()))));
    assert_eq!(rule, "identity.document_on_record");
    assert!(detail.contains(&ana) && detail.contains("different_person.reason"), "{detail}");

    let mut blank = fresh.clone();
    blank["different_person"] = serde_json::json!({"reason": "  "});
    let invalid = AdmitRequest::from_json(&blank.to_string()).unwrap_err();
    assert!(invalid.to_string().contains("different_person.reason"), "{invalid}");

    let mut readmission = fresh.clone();
    readmission["person"] = ana.clone().into();
    readmission["at"] = "2026-03-01T09:30:00Z".into();
    assert_eq!(f.service.admit(&f.ctx, &request(readmission)).expect("re-admission under the number").person, ana);
    f.mv(&ana, release(), "2026-03-01T10:00:00Z");

    let mut different = with_document("SUR", "Berta", "01234567-8");
    different["at"] = "2026-03-01T11:00:00Z".into();
    different["different_person"] = serde_json::json!({"reason": "DUI number reused by the registry"});
    let other = f.service.admit(&f.ctx, &request(different)).expect("declared a different person").person;
    assert_ne!(other, ana);
    let event = f.service.audit_events(0, 1_000).unwrap().into_iter().last().unwrap();
    assert_eq!(event.payload["different_person"]["reason"], "DUI number reused by the registry", "audited");
}

#[test]
fn a_record_merged_away_takes_no_admission_or_movement_and_names_the_survivor() {
    let f = fixture();
    let first = f.admit("NORTE", "Ana", "Rivas", "2026-03-01T08:00:00Z").person;
    f.mv(&first, release(), "2026-03-01T09:00:00Z");
    let second = f.admit("SUR", "Anita", "Rivas", "2026-03-01T10:00:00Z").person;
    let merge = MergeRequest { into: second.clone(), reason: "same fingerprints".parse().unwrap() };
    f.service.merge_person(&f.ctx, &first, &merge).unwrap();

    let mut readmission = admission_json("NORTE", "Ana", "Rivas", "2026-03-01T11:00:00Z");
    readmission["person"] = first.clone().into();
    let (rule, detail) =
        refused_rule(refused_without_writing_ok(&f, || f.service.admit(&f.ctx, &request(readmission))));
    assert_eq!(rule, "identity.merged_away");
    assert!(detail.contains(&second), "{detail}");

    let (rule, detail) = refused_rule(refused_without_writing_ok(&f, || {
        f.try_move(&first, place("S-01", None), "2026-03-01T11:00:00Z")
    }));
    assert_eq!(rule, "identity.merged_away");
    assert!(detail.contains(&second), "{detail}");
    f.mv(&second, place("S-01", None), "2026-03-01T11:00:00Z");
}

/// `refused_without_writing` for results whose error is then examined.
fn refused_without_writing_ok<T: std::fmt::Debug>(
    f: &Fixture,
    command: impl FnOnce() -> service::ServiceResult<T>,
) -> service::ServiceResult<T> {
    Err(refused_without_writing(f, command))
}
