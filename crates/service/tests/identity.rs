//! Identity resolution over a real SQLite file: candidates found by document, by name and date of
//! birth whatever the accents, second surname, spelling or a swapped date; namesakes born another
//! day left out; merges and un-merges audited with their lineage; refusals write nothing.

mod common;

use common::*;

use custodia_service as service;

use domain::person::Identity;
use service::identity::{intake_from_json, Candidate, MergeRequest, UnmergeRequest};
use service::ServiceError;

/// Admit someone with the given names, date of birth and DUI; returns their number.
fn admit(f: &Fixture, facility: &str, name: (&str, &str, Option<&str>), born: &str, dui: &str) -> String {
    admit_with(f, admission_of(facility, name, born, dui))
}

fn admission_of(facility: &str, name: (&str, &str, Option<&str>), born: &str, dui: &str) -> serde_json::Value {
    let mut value = admission_json(facility, name.0, name.1, "2026-03-01T08:00:00Z");
    value["identity"]["second_surname"] = name.2.into();
    value["identity"]["date_of_birth"] = born.into();
    value["identity"]["documents"][0]["number"] = dui.into();
    value
}

fn admit_with(f: &Fixture, value: serde_json::Value) -> String {
    f.service.admit(&f.ctx, &request(value.clone())).unwrap_or_else(|e| panic!("admission of {value}: {e}")).person
}

fn intake(given: &str, first: &str, second: Option<&str>, born: &str, dui: Option<&str>) -> Identity {
    let documents: Vec<serde_json::Value> =
        dui.map(|n| serde_json::json!({"kind": "dui", "number": n, "issuing_country": "SV"})).into_iter().collect();
    let text = serde_json::json!({"identity": {
        "given_names": given, "first_surname": first, "second_surname": second,
        "date_of_birth": born, "sex": "male", "nationality": "SV", "documents": documents
    }})
    .to_string();
    intake_from_json(&text).expect("intake identity")
}

fn candidates(f: &Fixture, identity: &Identity) -> Vec<Candidate> {
    f.service.identity_candidates(identity, None, |_| true).expect("candidates")
}

fn find<'a>(list: &'a [Candidate], number: &str) -> Option<&'a Candidate> {
    list.iter().find(|c| c.number == number)
}

const JOSE: (&str, &str, Option<&str>) = ("José Luis", "Hernández", Some("Pérez"));

#[test]
fn a_document_number_finds_the_person_whatever_the_name_given() {
    let f = fixture();
    let jose = admit(&f, "NORTE", JOSE, "1990-02-03", "01234567-8");
    let found = candidates(&f, &intake("Pedro", "Gómez", None, "1971-05-06", Some("012345678")));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].number, jose);
    assert!(found[0].score >= 0.95, "a document is the strongest sign: {}", found[0].score);
    assert_eq!(found[0].reasons, ["same identity document: dui 01234567-8 issued by SV"]);
    assert!(found[0].in_custody);
    assert_eq!(found[0].facilities, ["NORTE"]);
}

#[test]
fn names_and_date_of_birth_find_the_person_with_or_without_accents_and_second_surname() {
    let f = fixture();
    let jose = admit(&f, "NORTE", JOSE, "1990-02-03", "01234567-8");
    let other = admit(&f, "NORTE", ("María", "López", Some("Díaz")), "1990-02-03", "07654321-0");

    let same = candidates(&f, &intake("JOSE LUIS", "HERNANDEZ", Some("PEREZ"), "1990-02-03", None));
    assert_eq!(same.iter().map(|c| c.number.as_str()).collect::<Vec<_>>(), [jose.as_str()], "{same:?}");
    assert_eq!(same[0].reasons, ["same name (accents, case and word order ignored)", "same date of birth 1990-02-03"]);
    let reordered = candidates(&f, &intake("Luis José", "Pérez", Some("Hernández"), "1990-02-03", None));
    assert_eq!(reordered[0].number, jose);

    let without_second = candidates(&f, &intake("José Luis", "Hernandez", None, "1990-02-03", None));
    assert_eq!(without_second[0].number, jose);
    assert!(
        without_second[0].reasons[0].starts_with("same name but for a missing second surname"),
        "{without_second:?}"
    );
    assert!(without_second[0].score < same[0].score);
    assert!(find(&without_second, &other).is_none(), "another name born the same day is not a candidate");
}

#[test]
fn spelling_variants_and_swapped_or_slipped_dates_still_find_the_person_lower() {
    let f = fixture();
    let jose = admit(&f, "NORTE", JOSE, "1990-02-03", "01234567-8");
    let exact = candidates(&f, &intake("José Luis", "Hernández", Some("Pérez"), "1990-02-03", None))[0].score;

    let spelt = candidates(&f, &intake("Jose Luiz", "Ernandes", Some("Peres"), "1990-02-03", None));
    let c = find(&spelt, &jose).expect("found under spelling variants");
    assert!(c.reasons[0].starts_with("names match under spelling variants"), "{:?}", c.reasons);
    assert!(c.reasons[0].contains("ernandes ~ hernandez"), "{:?}", c.reasons);
    assert!(c.score < exact);

    let swapped = candidates(&f, &intake("José Luis", "Hernández", Some("Pérez"), "1990-03-02", None));
    let c = find(&swapped, &jose).expect("found with day and month swapped");
    assert!(c.reasons.contains(&"date of birth 1990-02-03 on record: day and month swapped".to_string()));
    assert!(c.score < exact);

    let slipped = candidates(&f, &intake("Jose Luis", "Hernandez", None, "1990-02-08", None));
    let c = find(&slipped, &jose).expect("found with one digit off");
    assert!(c.reasons.contains(&"date of birth 1990-02-03 on record: one digit off".to_string()), "{:?}", c.reasons);
}

#[test]
fn a_namesake_born_another_day_is_not_offered() {
    let f = fixture();
    let jose = admit(&f, "NORTE", JOSE, "1990-02-03", "01234567-8");
    let namesake = admit(&f, "SUR", JOSE, "1975-07-21", "09999999-9");
    let found = candidates(&f, &intake("José Luis", "Hernández", Some("Pérez"), "1990-02-03", None));
    assert_eq!(found.first().map(|c| c.number.as_str()), Some(jose.as_str()));
    assert!(find(&found, &namesake).is_none(), "{found:?}");
    let both = candidates(&f, &intake("José Luis", "Hernández", Some("Pérez"), "1975-07-21", Some("01234567-8")));
    assert_eq!(both[0].number, jose, "a document outranks name and date of birth: {both:?}");
    assert_eq!(both[1].number, namesake, "{both:?}");
}

#[test]
fn staff_see_only_candidates_held_in_their_facilities() {
    let f = fixture();
    let jose = admit(&f, "NORTE", JOSE, "1990-02-03", "01234567-8");
    let identity = intake("José Luis", "Hernández", Some("Pérez"), "1990-02-03", None);
    let south = f.service.identity_candidates(&identity, None, |code| code == "SUR").unwrap();
    assert!(south.is_empty(), "{south:?}");
    let north = f.service.identity_candidates(&identity, None, |code| code == "NORTE").unwrap();
    assert_eq!(north[0].number, jose);
}

#[test]
fn a_merge_is_audited_keeps_lineage_and_lists_the_survivor_until_it_is_undone() {
    let f = fixture();
    let first = admit(&f, "NORTE", JOSE, "1990-02-03", "01234567-8");
    f.mv(&first, release(), "2026-03-01T09:00:00Z");
    // A records officer who wrongly declared him someone else made the duplicate.
    let mut duplicate = admission_of("SUR", ("Jose Luis", "Hernandez", None), "1990-02-03", "01234567-8");
    duplicate["different_person"] = serde_json::json!({"reason": "different face on the DUI photograph"});
    let second = admit_with(&f, duplicate);
    let identity = intake("José Luis", "Hernández", Some("Pérez"), "1990-02-03", None);
    assert_eq!(candidates(&f, &identity).len(), 2);

    let events = f.service.audit_events(0, 100_000).unwrap().len();
    let merged = f
        .service
        .merge_person(
            &f.ctx,
            &first,
            &MergeRequest { into: second.clone(), reason: "same DUI and fingerprints".parse().unwrap() },
        )
        .expect("merge");
    assert_eq!((merged.duplicate.as_str(), merged.into.as_str()), (first.as_str(), second.as_str()));
    let log = f.service.audit_events(0, 100_000).unwrap();
    assert_eq!(log.len(), events + 1);
    let event = log.last().unwrap();
    assert_eq!((event.action.as_str(), event.subject.as_str()), ("person.merge", first.as_str()));
    assert_eq!(event.payload["into"], second.as_str());

    let found = candidates(&f, &identity);
    assert_eq!(found.iter().map(|c| c.number.as_str()).collect::<Vec<_>>(), [second.as_str()], "{found:?}");
    assert!(found[0].reasons.contains(&format!("found through {first}, merged into this record")), "{found:?}");
    assert_eq!(f.service.merged_into(&first).unwrap(), Some(second.clone()));
    let lineage = f.service.person_lineage(&second).unwrap();
    assert_eq!(lineage.merged_from, std::slice::from_ref(&first));
    assert_eq!(lineage.history.len(), 1);
    assert_eq!(lineage.history[0].reason, "same DUI and fingerprints");

    let unmerged = f
        .service
        .unmerge_person(&f.ctx, &first, &UnmergeRequest { reason: "fingerprints differ".parse().unwrap() })
        .unwrap();
    assert_eq!(unmerged.was_merged_into, second);
    assert_eq!(f.service.audit_events(0, 100_000).unwrap().last().unwrap().action, "person.unmerge");
    let lineage = f.service.person_lineage(&first).unwrap();
    assert_eq!((lineage.merged_into, lineage.history.len()), (None, 1));
    assert_eq!(lineage.history[0].unmerged.as_ref().map(|u| u.reason.as_str()), Some("fingerprints differ"));
    assert_eq!(candidates(&f, &identity).len(), 2, "both records stand again");

    // Merged again the other way: lineage keeps every step.
    f.service
        .merge_person(&f.ctx, &second, &MergeRequest { into: first.clone(), reason: "checked again".parse().unwrap() })
        .unwrap();
    let lineage = f.service.person_lineage(&first).unwrap();
    assert_eq!((lineage.history.len(), lineage.merged_from.clone()), (2, vec![second.clone()]));
    let verified = f.verify();
    assert!(verified.broken.is_none() && verified.projection_problems.is_empty(), "{verified:?}");
}

#[test]
fn refused_merges_and_unmerges_write_nothing() {
    let f = fixture();
    let a = admit(&f, "NORTE", JOSE, "1990-02-03", "01234567-8");
    let b = admit(&f, "SUR", ("José", "Hernández", None), "1990-02-03", "01234567-9");
    let c = admit(&f, "SUR", ("Ana", "Rivas", None), "1985-01-01", "05555555-5");
    let into = |n: &str| MergeRequest { into: n.to_string(), reason: "same person".parse().unwrap() };

    let both = refused_without_writing(&f, || f.service.merge_person(&f.ctx, &a, &into(&b)));
    assert!(matches!(both, ServiceError::Refused { rule: "identity.both_in_custody", .. }), "{both:?}");
    let own = refused_without_writing(&f, || f.service.merge_person(&f.ctx, &a, &into(&a)));
    assert!(matches!(own, ServiceError::Refused { rule: "identity.self_merge", .. }), "{own:?}");
    let not_merged = refused_without_writing(&f, || {
        f.service.unmerge_person(&f.ctx, &a, &UnmergeRequest { reason: "x".parse().unwrap() })
    });
    assert!(matches!(not_merged, ServiceError::Refused { rule: "identity.not_merged", .. }), "{not_merged:?}");
    let unknown = refused_without_writing(&f, || f.service.merge_person(&f.ctx, &a, &into("SV-1999-999999")));
    assert!(matches!(unknown, ServiceError::NotFound { what: "person", .. }), "{unknown:?}");
    let no_reason = serde_json::from_value::<MergeRequest>(serde_json::json!({"into": b, "reason": " "}));
    assert!(no_reason.is_err(), "a blank reason does not parse");

    f.mv(&a, release(), "2026-03-01T09:00:00Z");
    f.service.merge_person(&f.ctx, &a, &into(&b)).expect("one of them is free now");
    let again = refused_without_writing(&f, || f.service.merge_person(&f.ctx, &a, &into(&c)));
    assert!(matches!(again, ServiceError::Refused { rule: "identity.already_merged", .. }), "{again:?}");
    let into_merged = refused_without_writing(&f, || f.service.merge_person(&f.ctx, &c, &into(&a)));
    assert!(matches!(into_merged, ServiceError::Refused { rule: "identity.survivor_merged", .. }), "{into_merged:?}");
    let verified = f.verify();
    assert!(verified.broken.is_none() && verified.projection_problems.is_empty(), "{verified:?}");
}

#[test]
fn an_intake_is_read_from_a_whole_admission_and_wrong_fields_are_named() {
    let whole = admission_json("NORTE", "Ana", "Rivas", NOW).to_string();
    assert_eq!(intake_from_json(&whole).unwrap().name.first_surname, "Rivas");
    match intake_from_json(r#"{"identity": {"given_names": "Ana"}}"#) {
        Err(ServiceError::Invalid(fields)) => assert!(fields[0].field.starts_with("identity"), "{fields:?}"),
        other => panic!("expected invalid input, got {other:?}"),
    }
    assert!(matches!(intake_from_json(r#"{"facility": "NORTE"}"#), Err(ServiceError::Invalid(_))));
}

#[test]
fn a_batch_answers_each_intake_in_order() {
    let f = fixture();
    let jose = admit(&f, "NORTE", JOSE, "1990-02-03", "01234567-8");
    let ana = admit(&f, "SUR", ("Ana", "Rivas", None), "1985-01-01", "05555555-5");
    let intakes = vec![
        intake("Ana", "Ribas", None, "1985-01-01", None),
        intake("Nadie", "Desconocido", None, "2000-01-01", None),
        intake("Jose Luis", "Hernandez", None, "1990-02-03", None),
    ];
    let answers = f.service.identity_candidates_batch(&intakes, Some(5), |_| true).unwrap();
    let firsts: Vec<Option<&str>> = answers.iter().map(|a| a.first().map(|c| c.number.as_str())).collect();
    assert_eq!(firsts, [Some(ana.as_str()), None, Some(jose.as_str())]);
}
