//! Legal safeguards over a real SQLite file: rule sets as data, pretrial deadlines and their
//! alerts, holds refusing movements until two people approve an override, unreceived transfers.

mod common;

use common::*;

use custodia_service as service;

use chrono::{Duration, NaiveDate};

use domain::custody::ReleaseReason;
use domain::legal::{AlertKind, HoldKind, Seriousness};
use domain::time::Instant;
use service::custody::{MovementKind, MovementRequest};
use service::legal::{
    parse_rule_set, ChargeRequest, CourtRecordKind, CourtRecordRequest, HoldRequest, OverriddenMovement, OverrideAsk,
};
use service::{Context, ServiceError};

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn at(text: &str) -> Instant {
    format!("{text}T12:00:00Z").parse().unwrap()
}

fn as_user(f: &Fixture, name: &str) -> Context {
    Context::new(name, f.ctx.now)
}

/// Alerts of one person at a day.
fn alerts_of(f: &Fixture, person: &str, when: &str) -> Vec<AlertKind> {
    f.service.alerts(at(when), |_| true).unwrap().into_iter().filter(|a| a.person == person).map(|a| a.kind).collect()
}

fn untried(f: &Fixture, given: &str) -> String {
    f.admit("NORTE", given, "Rivas", "2026-01-05T08:00:00Z").person
}

#[test]
fn a_broken_rule_set_is_refused_naming_the_line_and_field() {
    let text = service::legal::BUILT_IN_RULE_SETS.iter().find(|(c, _)| *c == "sv").unwrap().1;
    let sv = parse_rule_set(text).unwrap();
    assert_eq!(sv.periods.len(), 2);
    let swapped = text.replacen("2025-02-01", "2010-01-01", 1);
    let Err(ServiceError::Invalid(errors)) = parse_rule_set(&swapped) else { panic!("periods out of order accepted") };
    assert!(
        errors[0].field.starts_with("line ") && errors[0].field.ends_with("periods[1].effective_from"),
        "{errors:?}"
    );
    let typo = text.replacen("pretrial_months_serious = 24", "pretrial_months_serious = \"24\"", 1);
    let Err(ServiceError::Invalid(errors)) = parse_rule_set(&typo) else { panic!("a string accepted as months") };
    assert!(
        errors[0].field.contains("pretrial_months_serious") && errors[0].field.starts_with("line 12"),
        "{errors:?}"
    );
}

#[test]
fn a_law_change_is_a_new_rule_set_version_not_a_code_change() {
    let f = fixture();
    let p = untried(&f, "Ana");
    let before = f.service.legal_record(&p, f.ctx.now).unwrap().pretrial.unwrap().deadline;
    assert_eq!(before, day("2026-12-31"), "12 months for a less serious offence, arrested 2026-01-01");
    let text = service::legal::BUILT_IN_RULE_SETS.iter().find(|(c, _)| *c == "sv").unwrap().1;
    let tighter = text.replace("pretrial_months_less_serious = 12", "pretrial_months_less_serious = 6");
    f.service.load_rule_set(&f.ctx, &tighter).unwrap();
    let after = f.service.legal_record(&p, f.ctx.now).unwrap().pretrial.unwrap().deadline;
    assert_eq!(after, day("2026-06-30"));
}

#[test]
fn the_pretrial_deadline_follows_the_charge_and_extensions_and_raises_alerts() {
    let f = fixture();
    let p = untried(&f, "Ana");
    let serious = ChargeRequest {
        offence: "homicidio".parse().unwrap(),
        seriousness: Seriousness::Serious,
        max_penalty_years: Some(10.0),
        court_case: Some("J1-2026-77".parse().unwrap()),
    };
    f.service.record_charge(&f.ctx, &p, &serious).unwrap();
    let record = f.service.legal_record(&p, f.ctx.now).unwrap();
    let pretrial = record.pretrial.unwrap();
    assert_eq!(pretrial.deadline, day("2027-12-31"));
    assert!(pretrial.explanation[0].contains("serious offence") && pretrial.explanation[0].contains("24 months"));
    assert_eq!(alerts_of(&f, &p, "2027-11-01"), vec![]);
    assert_eq!(alerts_of(&f, &p, "2027-12-15"), vec![AlertKind::PretrialDueSoon]);
    assert_eq!(alerts_of(&f, &p, "2028-01-02"), vec![AlertKind::PretrialOverdue]);
    // After the 2025 amendment a reasoned ruling may extend up to half the maximum penalty.
    let extension = CourtRecordRequest {
        kind: CourtRecordKind::Extension,
        on: day("2026-02-20"),
        court: Some("Cámara 1".parse().unwrap()),
        reference: Some("EXT-1".parse().unwrap()),
        months: Some(12),
        note: None,
    };
    f.service.record_court(&f.ctx, &p, &extension).unwrap();
    assert_eq!(f.service.legal_record(&p, f.ctx.now).unwrap().pretrial.unwrap().deadline, day("2028-12-31"));
    assert_eq!(alerts_of(&f, &p, "2028-01-02"), vec![]);
    // Released: no longer held, no alert.
    f.mv(&p, release(), "2026-03-01T10:00:00Z");
    assert_eq!(alerts_of(&f, &p, "2029-06-01"), vec![]);
}

#[test]
fn a_convicted_person_has_no_pretrial_deadline() {
    let f = fixture();
    let mut value = admission_json("NORTE", "Beto", "Rivas", "2026-01-05T08:00:00Z");
    value["legal_basis"]["kind"] = "judgment".into();
    let p = f.service.admit(&f.ctx, &serde_json::from_value(value).unwrap()).unwrap().person;
    assert!(f.service.legal_record(&p, f.ctx.now).unwrap().pretrial.is_none());
    assert_eq!(alerts_of(&f, &p, "2030-01-01"), vec![]);
}

fn removal(country: &str) -> MovementKind {
    MovementKind::Release { reason: ReleaseReason::HandedOver, to_country: Some(country.into()) }
}

#[test]
fn a_removal_a_court_forbade_is_refused_until_two_people_approve_an_override() {
    let f = fixture();
    let p = untried(&f, "Ana");
    let hold = HoldRequest {
        kind: HoldKind::DoNotRemove,
        country: Some("SV".parse().unwrap()),
        on_date: None,
        authority: "Immigration Court, Houston".parse().unwrap(),
        order_reference: "A-123-456 withholding of removal".parse().unwrap(),
        expires_at: None,
    };
    let hold = f.service.add_hold(&f.ctx, &p, &hold).unwrap();
    assert_eq!(hold.country.as_deref(), Some("SV"));
    let error = refused_without_writing(&f, || f.try_move(&p, removal("SV"), NOW));
    let (rule, detail) = refused_rule::<()>(Err(error));
    assert_eq!(rule, "legal.hold");
    assert!(detail.contains(&format!("hold {}", hold.id)) && detail.contains("A-123-456"), "{detail}");
    // Another country is not forbidden by this hold.
    let other = untried(&f, "Beto");
    f.service
        .add_hold(&f.ctx, &other, &HoldRequest { country: Some("SV".parse().unwrap()), ..hold_request() })
        .unwrap();
    f.try_move(&other, removal("GT"), NOW).expect("removal elsewhere is not forbidden");

    let ask = OverrideAsk {
        movement: OverriddenMovement::Removal,
        reason: "order vacated on appeal, stay denied".parse().unwrap(),
    };
    let asked = f.service.request_hold_override(&as_user(&f, "ana"), hold.id, &ask).unwrap();
    let same = f.service.approve_hold_override(&as_user(&f, "ana"), asked.id);
    assert!(matches!(same, Err(ServiceError::Refused { rule: "legal.override_same_person", .. })), "{same:?}");
    refused_without_writing(&f, || f.try_move(&p, removal("SV"), NOW));
    f.service.approve_hold_override(&as_user(&f, "beto"), asked.id).unwrap();
    f.try_move(&p, removal("SV"), NOW).expect("allowed once by two people");
    let views = f.service.holds(Some(&p), f.ctx.now).unwrap();
    assert!(views[0].overrides[0].used_by_movement.is_some(), "the override is spent");
    assert!(f.verify().broken.is_none());
}

fn hold_request() -> HoldRequest {
    HoldRequest {
        kind: HoldKind::DoNotRemove,
        country: None,
        on_date: None,
        authority: "Juzgado 2".parse().unwrap(),
        order_reference: "H-2".parse().unwrap(),
        expires_at: None,
    }
}

#[test]
fn holds_on_transfer_and_release_refuse_until_lifted() {
    let f = fixture();
    let p = untried(&f, "Ana");
    let transfer = MovementKind::Transfer { to: "SUR".into() };
    let no_transfer =
        f.service.add_hold(&f.ctx, &p, &HoldRequest { kind: HoldKind::DoNotTransfer, ..hold_request() }).unwrap();
    let (rule, _) = refused_rule::<()>(Err(refused_without_writing(&f, || f.try_move(&p, transfer.clone(), NOW))));
    assert_eq!(rule, "legal.hold");
    let court = HoldRequest { kind: HoldKind::ProduceAtCourt, on_date: Some(day("2026-03-10")), ..hold_request() };
    f.service.add_hold(&f.ctx, &p, &court).unwrap();
    f.service.end_hold(&f.ctx, no_transfer.id, "order lifted").unwrap();
    let (_, detail) = refused_rule::<()>(Err(refused_without_writing(&f, || f.try_move(&p, transfer.clone(), NOW))));
    assert!(detail.contains("produce at court on 2026-03-10"), "{detail}");
    let no_release =
        f.service.add_hold(&f.ctx, &p, &HoldRequest { kind: HoldKind::DoNotRelease, ..hold_request() }).unwrap();
    refused_without_writing(&f, || f.try_move(&p, release(), NOW));
    f.service.end_hold(&f.ctx, no_release.id, "bail posted").unwrap();
    f.try_move(&p, release(), NOW).expect("the hold was lifted");
}

#[test]
fn a_transfer_not_received_in_time_raises_an_alert_until_received() {
    let f = fixture();
    let p = untried(&f, "Ana");
    f.mv(&p, MovementKind::Transfer { to: "SUR".into() }, "2026-03-01T06:00:00Z");
    let kinds = |when: Instant| -> Vec<AlertKind> {
        f.service.alerts(when, |_| true).unwrap().into_iter().filter(|a| a.person == p).map(|a| a.kind).collect()
    };
    let sent: Instant = "2026-03-01T06:00:00Z".parse().unwrap();
    assert_eq!(kinds(sent + Duration::hours(23)), vec![]);
    assert_eq!(kinds(sent + Duration::hours(25)), vec![AlertKind::TransferUnreceived]);
    let receive = MovementRequest {
        person: p.clone(),
        kind: MovementKind::Receive { facility: "SUR".into() },
        at: None,
        note: None,
    };
    f.service.record_movement(&f.ctx, &receive).unwrap();
    assert_eq!(kinds(sent + Duration::hours(25)), vec![]);
}

#[test]
fn alerts_are_limited_to_the_facilities_the_caller_sees() {
    let f = fixture();
    let p = untried(&f, "Ana");
    let overdue = at("2027-06-01");
    assert!(f.service.alerts(overdue, |c| c == "NORTE").unwrap().iter().any(|a| a.person == p));
    assert!(!f.service.alerts(overdue, |c| c == "SUR").unwrap().iter().any(|a| a.person == p));
}

#[test]
fn someone_held_past_the_release_date_of_recorded_sentences_is_listed_until_released() {
    let f = fixture();
    let p = untried(&f, "Ana");
    let input: domain::sentence::SentenceInput = serde_json::from_value(serde_json::json!({
        "sentences": [{"id": "A", "start": "2024-03-01", "years": 2}, {"id": "B", "months": 6, "consecutive_to": "A"}],
        "remand": [{"from": "2024-01-10", "to": "2024-02-29", "counts_toward": ["A"]}]
    }))
    .unwrap();
    let report = f.service.record_sentences(&f.ctx, &p, &input).unwrap();
    assert_eq!(report.release_date, day("2026-07-08"));
    let record = f.service.legal_record(&p, f.ctx.now).unwrap();
    assert_eq!(record.legal_status, domain::separation::LegalStatus::Convicted, "a sentence means a judgment");
    assert!(record.pretrial.is_none());
    assert_eq!(record.sentences.unwrap().calculation.release_date, day("2026-07-08"));
    assert_eq!(alerts_of(&f, &p, "2026-07-08"), vec![]);
    assert_eq!(alerts_of(&f, &p, "2026-07-09"), vec![AlertKind::ReleaseOverdue]);
    f.mv(&p, MovementKind::Release { reason: ReleaseReason::SentenceServed, to_country: None }, "2026-03-01T11:00:00Z");
    assert_eq!(alerts_of(&f, &p, "2026-07-09"), vec![]);
    let bad = domain::sentence::SentenceInput::default();
    assert!(matches!(f.service.record_sentences(&f.ctx, &p, &bad), Err(ServiceError::Invalid(_))));
}

#[test]
fn a_person_received_from_a_foreign_authority_needs_documents_a_transfer_agreement_and_a_confirmed_identity() {
    let f = fixture();
    let mut value = admission_json("NORTE", "Kilmar", "Abrego", "2026-03-01T08:00:00Z");
    value["foreign"] = serde_json::json!({
        "authority": "U.S. Immigration and Customs Enforcement", "country": "US",
        "identity_check": {"method": "fingerprints against the passport", "checked_by": "records-1", "confirmed": true}
    });
    let remand = value.clone();
    let Err(ServiceError::Invalid(errors)) = f.service.admit(&f.ctx, &request(remand)) else { panic!("accepted") };
    assert_eq!(errors[0].field, "legal_basis.kind");
    value["legal_basis"]["kind"] = "transfer_agreement".into();
    let mut unconfirmed = value.clone();
    unconfirmed["foreign"]["identity_check"]["confirmed"] = false.into();
    let error = refused_without_writing(&f, || f.service.admit(&f.ctx, &request(unconfirmed.clone())));
    assert!(matches!(error, ServiceError::Refused { rule: "legal.identity_unconfirmed", .. }), "{error:?}");
    let mut undocumented = value.clone();
    undocumented["identity"]["documents"] = serde_json::json!([]);
    let Err(ServiceError::Invalid(errors)) = f.service.admit(&f.ctx, &request(undocumented)) else { panic!() };
    assert_eq!(errors[0].field, "identity.documents");
    let admitted = f.service.admit(&f.ctx, &request(value)).unwrap();
    let events = f.service.audit_events(0, 10_000).unwrap();
    let event = events.iter().find(|e| e.seq == admitted.audit_seq).unwrap();
    assert_eq!(event.payload["foreign"]["identity_check"]["method"], "fingerprints against the passport");
}

#[test]
fn families_are_told_of_admissions_and_transfers_unless_the_person_declined() {
    let f = fixture();
    let a = untried(&f, "Ana");
    let b = untried(&f, "Beto");
    let since = at("2026-01-01");
    let open = |f: &Fixture| -> Vec<(String, String)> {
        let notices = f.service.family_notices(|_| true, since, 100).unwrap();
        notices.into_iter().map(|n| (n.person, n.event)).collect()
    };
    assert_eq!(open(&f).len(), 2);
    let decline =
        service::incident::NotificationPreference { declines: true, date: Some(day("2026-03-01")), note: None };
    f.service.set_notification_preference(&f.ctx, &b, &decline).unwrap();
    f.mv(&a, MovementKind::Transfer { to: "SUR".into() }, "2026-03-01T09:00:00Z");
    assert_eq!(open(&f), vec![(a.clone(), "transfer_out".into()), (a.clone(), "admission".into())]);
    let notices = f.service.family_notices(|_| true, since, 100).unwrap();
    let done = service::legal::NoticeDone {
        notified: "Rosa Rivas, mother".parse().unwrap(),
        method: domain::incident::NotificationMethod::Phone,
        at: None,
    };
    f.service.record_family_notice(&f.ctx, notices[0].movement, &done).unwrap();
    assert_eq!(open(&f), vec![(a.clone(), "admission".into())]);
    assert!(f.service.family_notices(|c| c == "SUR", since, 100).unwrap().is_empty(), "only the caller's facilities");
}

#[test]
fn legal_visits_are_registered_as_never_monitored() {
    let f = fixture();
    let a = untried(&f, "Ana");
    let visit = service::legal::VisitRequest {
        counsel: "Lic. María Pérez".parse().unwrap(),
        capacity: "public defender".parse().unwrap(),
        started_at: at("2026-02-20"),
        minutes: 45,
    };
    f.service.record_legal_visit(&f.ctx, &a, &visit).unwrap();
    let zero = service::legal::VisitRequest { minutes: 0, ..visit };
    assert!(matches!(f.service.record_legal_visit(&f.ctx, &a, &zero), Err(ServiceError::Invalid(_))));
    let visits = f.service.legal_record(&a, f.ctx.now).unwrap().legal_visits;
    assert_eq!(visits.len(), 1);
    assert!(!visits[0].monitored);
}

#[test]
fn a_release_dated_before_a_hold_was_recorded_is_still_refused() {
    let f = fixture();
    let p = untried(&f, "Ana");
    f.service.add_hold(&f.ctx, &p, &HoldRequest { kind: HoldKind::DoNotRelease, ..hold_request() }).unwrap();
    let (rule, _) =
        refused_rule::<()>(Err(refused_without_writing(&f, || f.try_move(&p, release(), "2026-03-01T11:00:00Z"))));
    assert_eq!(rule, "legal.hold");
}

#[test]
fn a_classification_from_an_earlier_custody_episode_does_not_carry_over() {
    let f = fixture();
    let p = untried(&f, "Ana");
    let convicted = service::housing::ClassifyRequest {
        legal_status: domain::separation::LegalStatus::Convicted,
        regime: domain::separation::Regime::Criminal,
        security_level: domain::separation::SecurityLevel::Medium,
        vulnerabilities: vec![],
        note: None,
    };
    let early = Context::new("records", "2026-01-06T08:00:00Z".parse().unwrap());
    f.service.classify(&early, &p, &convicted).unwrap();
    assert!(f.service.legal_record(&p, f.ctx.now).unwrap().pretrial.is_none(), "convicted in this episode");
    f.mv(&p, release(), "2026-01-20T10:00:00Z");
    let mut again = admission_json("NORTE", "Ana", "Rivas", "2026-02-10T08:00:00Z");
    again["person"] = p.clone().into();
    f.service.admit(&f.ctx, &request(again)).unwrap();
    let record = f.service.legal_record(&p, f.ctx.now).unwrap();
    assert_eq!(record.legal_status, domain::separation::LegalStatus::Untried, "a new remand order, a new episode");
    assert!(record.pretrial.is_some());
}
