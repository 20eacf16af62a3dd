//! Incidents over a real SQLite file: numbering, every refusal writing nothing, the obligations a
//! death, an escape or a serious injury opens (and a declined family notification), closing them
//! with evidence, overdue listings, statistics against hand-computed figures, and the audit.

use custodia_service as service;

use domain::custody::ReleaseReason;
use domain::incident::{IncidentKind, InjurySeverity, InvolvementRole, Month, NotificationMethod};
use domain::time::Instant;
use service::custody::{AdmitRequest, MovementKind, MovementRequest};
use service::incident::{
    record_incident_in, IncidentRecorded, IncidentReport, InjuryReport, InvolvedPerson, NotificationPreference,
    ObligationClosure, ObligationState, ObligationView, PlaceFigures,
};
use service::layout::FacilityLayout;
use service::{Context, Service, ServiceError, ServiceResult};
use store::Database;
use testdb::TestDb;

/// NORTE (opened 2025-01-01): cells A-01 and A-02. SUR (opened 2025-06-01): cells S-01 and S-02.
const NORTE: &str = r#"
[facility]
code = "NORTE"
name = "Centro Penal Norte"
jurisdiction = "sv"
time_zone = "America/El_Salvador"
declared_capacity = 4
opened = "2025-01-01T00:00:00Z"

[[units]]
code = "A"

[[units.cell_series]]
prefix = "A-"
count = 2
floor_area_m2 = 12.0
beds = 2
"#;

fn sur() -> String {
    NORTE
        .replace("\"NORTE\"", "\"SUR\"")
        .replace("Norte", "Sur")
        .replace("\"A-\"", "\"S-\"")
        .replace("2025-01-01", "2025-06-01")
}

/// Every command is recorded at this time unless a test says otherwise.
const NOW: &str = "2026-03-10T12:00:00Z";

fn t(text: &str) -> Instant {
    text.parse().unwrap_or_else(|e| panic!("bad instant {text}: {e}"))
}

struct Fixture {
    db: TestDb,
    service: Service<Database>,
    ctx: Context,
}

fn fixture() -> Fixture {
    let db = TestDb::new();
    let service = Service::new(db.open());
    service.init().expect("init");
    let ctx = Context::new("test", t(NOW));
    for text in [NORTE.to_string(), sur()] {
        service.add_facility(&ctx, &FacilityLayout::parse(&text).expect("layout parses")).expect("facility added");
    }
    Fixture { db, service, ctx }
}

impl Fixture {
    /// Admit a person at 10:00 UTC on `day`; returns their number.
    fn admit(&self, facility: &str, surname: &str, day: &str) -> String {
        let request: AdmitRequest = serde_json::from_value(serde_json::json!({
            "facility": facility,
            "at": format!("{day}T10:00:00Z"),
            "identity": {"given_names": "Juan", "first_surname": surname, "date_of_birth": "1990-02-03",
                         "sex": "male", "nationality": "SV"},
            "legal_basis": {"kind": "remand_order", "issuing_authority": "Juzgado 1", "reference": "R-1",
                            "date": "2025-01-01"},
            "arrested_at": "2025-01-01T08:00:00Z",
            "arrest_place": "San Salvador"
        }))
        .expect("admission JSON");
        self.service.admit(&self.ctx, &request).unwrap_or_else(|e| panic!("admission of {surname}: {e}")).person
    }

    fn release(&self, person: &str, reason: ReleaseReason, at: &str) {
        let request = MovementRequest {
            person: person.into(),
            kind: MovementKind::Release { reason, to_country: None },
            at: Some(t(at)),
            note: None,
        };
        self.service.record_movement(&self.ctx, &request).unwrap_or_else(|e| panic!("release of {person}: {e}"));
    }

    fn try_report(&self, report: &IncidentReport) -> ServiceResult<IncidentRecorded> {
        self.service.record_incident(&self.ctx, report)
    }

    fn report(&self, report: &IncidentReport) -> IncidentRecorded {
        self.try_report(report).unwrap_or_else(|e| panic!("incident {:?}: {e}", report.kind))
    }

    fn injury(&self, incident: &str, person: &str, severity: InjurySeverity) -> usize {
        let injury =
            InjuryReport { person: person.into(), severity, description: "deep cut, left forearm".parse().unwrap() };
        let medic = Context::new("doctor", self.ctx.now);
        self.service.document_injury(&medic, incident, &injury).expect("injury documented").obligations
    }

    fn decline(&self, person: &str) {
        let preference = NotificationPreference {
            declines: true,
            date: None,
            note: Some("does not want his family told".parse().unwrap()),
        };
        self.service.set_notification_preference(&self.ctx, person, &preference).expect("preference recorded");
    }

    fn obligations(&self, state: ObligationState, now: &str) -> Vec<ObligationView> {
        self.service.obligations(state, None, |_| true, t(now)).expect("obligations")
    }

    /// Row counts, audit events and the chain head: what a refused command must leave unchanged.
    fn snapshot(&self) -> (usize, Option<String>, Vec<i64>) {
        let events = self.service.audit_events(0, 1_000_000).expect("audit events");
        let rows = ["incident", "incident_person", "injury", "obligation", "obligation_closure", "counter"]
            .iter()
            .map(|table| self.db.query_i64(&format!("SELECT count(*) FROM {table}")))
            .collect();
        (events.len(), events.last().map(|e| e.hash.clone()), rows)
    }

    fn actions(&self) -> Vec<String> {
        self.service.audit_events(0, 1_000_000).expect("audit events").into_iter().map(|e| e.action).collect()
    }
}

fn report(facility: &str, kind: IncidentKind, at: &str, people: &[(&str, InvolvementRole, bool)]) -> IncidentReport {
    IncidentReport {
        facility: facility.into(),
        kind,
        at: Some(t(at)),
        cell: None,
        location: Some("yard".parse().unwrap()),
        people: people
            .iter()
            .map(|(person, role, injured)| InvolvedPerson {
                person: person.to_string(),
                role: *role,
                injured: *injured,
            })
            .collect(),
        staff: vec!["Sgt. Ramírez".parse().unwrap()],
        description: "reported by the yard officer".parse().unwrap(),
    }
}

fn refused_without_writing<T: std::fmt::Debug>(
    f: &Fixture,
    command: impl FnOnce() -> ServiceResult<T>,
) -> ServiceError {
    let before = f.snapshot();
    let result = command();
    assert_eq!(before, f.snapshot(), "a refused command changed the database ({result:?})");
    result.expect_err("the command should have been refused")
}

fn invalid_fields(error: ServiceError) -> Vec<String> {
    match error {
        ServiceError::Invalid(fields) => fields.into_iter().map(|f| f.field).collect(),
        other => panic!("expected invalid fields, got {other:?}"),
    }
}

fn summary(list: &[ObligationView]) -> Vec<(String, String, Option<String>)> {
    let mut out: Vec<_> =
        list.iter().map(|o| (o.kind.as_str().to_string(), o.event.as_str().to_string(), o.person.clone())).collect();
    out.sort();
    out
}

fn kin(event: &str, person: &str) -> (String, String, Option<String>) {
    ("next_of_kin".into(), event.into(), Some(person.into()))
}

fn authority(event: &str) -> (String, String, Option<String>) {
    ("independent_authority".into(), event.into(), None)
}

fn verify_clean(f: &Fixture) {
    let v = f.service.verify_audit(&mut |_, _| {}).expect("verification runs");
    assert!(v.broken.is_none(), "{:?}", v.broken);
    assert!(v.projection_problems.is_empty(), "{:?}", v.projection_problems);
}

use InvolvementRole::*;

// ---------------------------------------------------------------------------------------------
// Recording
// ---------------------------------------------------------------------------------------------

#[test]
fn incidents_get_a_number_per_facility_and_year_and_list_newest_first() {
    let f = fixture();
    let a = f.admit("NORTE", "Alas", "2025-12-01");
    let b = f.admit("NORTE", "Bonilla", "2025-12-01");
    let mut assault =
        report("NORTE", IncidentKind::Assault, "2026-01-10T09:00:00Z", &[(&a, Victim, true), (&b, Perpetrator, false)]);
    assault.cell = Some("A-01".into());
    let first = f.report(&assault);
    assert_eq!(first.number, "INC-NORTE-2026-000001");
    assert_eq!(first.obligations, 0, "an assault with no injury documented opens nothing");
    let second = f.report(&report("NORTE", IncidentKind::Contraband, "2026-01-11T09:00:00Z", &[(&b, Involved, false)]));
    assert_eq!(second.number, "INC-NORTE-2026-000002");

    let list = f.service.incidents(None, |_| true, None, 10).unwrap();
    let numbers: Vec<&str> = list.iter().map(|i| i.number.as_str()).collect();
    assert_eq!(numbers, ["INC-NORTE-2026-000002", "INC-NORTE-2026-000001"]);
    let page = f.service.incidents(Some("NORTE"), |_| true, Some("INC-NORTE-2026-000002"), 10).unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].people, 2);
    assert!(f.service.incidents(None, |code| code == "SUR", None, 10).unwrap().is_empty());

    let record = f.service.incident(&first.number, |_| true, f.ctx.now).unwrap();
    assert_eq!(record.cell.as_deref(), Some("A-01"));
    assert_eq!(record.occurred_at, t("2026-01-10T09:00:00Z"));
    assert_eq!(record.recorded_at, f.ctx.now, "the recorded time is kept apart from when it happened");
    assert_eq!(record.staff, ["Sgt. Ramírez"]);
    let people: Vec<(&str, InvolvementRole, bool, bool)> =
        record.people.iter().map(|p| (p.person.as_str(), p.role, p.injured, p.injury_documented)).collect();
    assert_eq!(people, [(a.as_str(), Victim, true, false), (b.as_str(), Perpetrator, false, false)]);
    let hidden = f.service.incident(&first.number, |code| code == "SUR", f.ctx.now);
    assert!(matches!(hidden, Err(ServiceError::NotFound { what: "incident", .. })));
}

#[test]
fn the_lead_can_record_an_incident_inside_its_own_transaction() {
    let f = fixture();
    let missing = f.admit("SUR", "Cruz", "2025-12-01");
    let recorded = f
        .service
        .batch(|tx| {
            record_incident_in(
                tx,
                &f.ctx,
                &report("SUR", IncidentKind::Escape, "2026-03-10T06:00:00Z", &[(&missing, Missing, false)]),
            )
        })
        .unwrap();
    assert_eq!((recorded.number.as_str(), recorded.obligations), ("INC-SUR-2026-000001", 2));
}

#[test]
fn an_unknown_person_is_refused_naming_the_field_and_writes_nothing() {
    let f = fixture();
    let a = f.admit("NORTE", "Alas", "2025-12-01");
    let r = report(
        "NORTE",
        IncidentKind::Fight,
        "2026-01-10T09:00:00Z",
        &[(&a, Involved, false), ("SV-2020-999999", Involved, false)],
    );
    let fields = invalid_fields(refused_without_writing(&f, || f.try_report(&r)));
    assert_eq!(fields, ["people[1].person"]);
}

#[test]
fn a_person_held_by_another_facility_is_refused_in_the_same_words_as_an_unknown_one() {
    let f = fixture();
    let elsewhere = f.admit("SUR", "Duarte", "2025-12-01");
    let r = report("NORTE", IncidentKind::Fight, "2026-01-10T09:00:00Z", &[(&elsewhere, Involved, false)]);
    let error = refused_without_writing(&f, || f.try_report(&r));
    let ServiceError::Invalid(fields) = &error else { panic!("{error:?}") };
    assert_eq!(fields[0].field, "people[0].person");
    assert_eq!(fields[0].problem, format!("`{elsewhere}` is not a person held by NORTE"));
    let unknown = report("NORTE", IncidentKind::Fight, "2026-01-10T09:00:00Z", &[("SV-2020-999999", Involved, false)]);
    let ServiceError::Invalid(other) = f.try_report(&unknown).unwrap_err() else { panic!() };
    assert_eq!(other[0].problem, "`SV-2020-999999` is not a person held by NORTE");
}

#[test]
fn an_incident_in_the_future_is_refused_and_writes_nothing() {
    let f = fixture();
    let r = report("NORTE", IncidentKind::Disturbance, "2026-03-11T12:00:00Z", &[]);
    assert_eq!(invalid_fields(refused_without_writing(&f, || f.try_report(&r))), ["at"]);
}

#[test]
fn an_unknown_cell_is_refused_and_writes_nothing() {
    let f = fixture();
    let mut r = report("NORTE", IncidentKind::Contraband, "2026-03-01T12:00:00Z", &[]);
    r.cell = Some("S-01".into());
    assert_eq!(invalid_fields(refused_without_writing(&f, || f.try_report(&r))), ["cell"], "S-01 is a cell of SUR");
}

#[test]
fn an_empty_or_unbounded_text_is_refused_naming_its_field() {
    let r = report("NORTE", IncidentKind::Contraband, "2026-03-01T12:00:00Z", &[]);
    for (field, value) in [
        ("description", serde_json::json!("  ")),
        ("description", serde_json::json!("x".repeat(4001))),
        ("location", serde_json::json!("x".repeat(201))),
        ("staff", serde_json::json!(["Sgt.\u{202E} Ramírez"])),
        ("staff", serde_json::json!(vec!["Sgt. Ramírez"; 101])),
    ] {
        let mut v = serde_json::to_value(&r).unwrap();
        v[field] = value;
        let error = IncidentReport::from_json(&v.to_string()).and_then(|r| fixture().try_report(&r)).unwrap_err();
        assert!(invalid_fields(error).iter().all(|f| f.starts_with(field)), "{field}");
    }
}

#[test]
fn every_wrong_field_is_listed_at_once() {
    let f = fixture();
    let a = f.admit("NORTE", "Alas", "2025-12-01");
    let mut r =
        report("NORTE", IncidentKind::Fight, "2027-01-01T00:00:00Z", &[(&a, Involved, false), (&a, Victim, false)]);
    r.cell = Some("Z-9".into());
    r.staff = vec!["Sgt. Ramírez".parse().unwrap(); 101];
    let fields = invalid_fields(refused_without_writing(&f, || f.try_report(&r)));
    assert_eq!(fields, ["at", "staff", "cell", "people[1].person"]);
    let unknown_facility = report("ESTE", IncidentKind::Fight, "2026-01-01T00:00:00Z", &[]);
    let error = refused_without_writing(&f, || f.try_report(&unknown_facility));
    assert!(matches!(error, ServiceError::NotFound { what: "facility", .. }), "{error:?}");
}

#[test]
fn a_person_released_by_the_facility_can_still_be_named_in_its_incidents() {
    let f = fixture();
    let a = f.admit("NORTE", "Alas", "2025-12-01");
    f.release(&a, ReleaseReason::Death, "2026-02-14T11:00:00Z");
    let recorded = f.report(&report("NORTE", IncidentKind::Death, "2026-02-14T10:00:00Z", &[(&a, Deceased, false)]));
    assert_eq!(recorded.obligations, 2);
}

// ---------------------------------------------------------------------------------------------
// Obligations
// ---------------------------------------------------------------------------------------------

#[test]
fn a_death_opens_next_of_kin_and_authority_obligations_due_a_day_after_it_is_recorded() {
    let f = fixture();
    let a = f.admit("NORTE", "Alas", "2025-12-01");
    let w = f.admit("NORTE", "Bonilla", "2025-12-01");
    let recorded = f.report(&report(
        "NORTE",
        IncidentKind::Death,
        "2026-03-10T03:00:00Z",
        &[(&a, Deceased, false), (&w, Witness, false)],
    ));
    assert_eq!(recorded.obligations, 2);
    let open = f.obligations(ObligationState::Open, NOW);
    assert_eq!(summary(&open), [authority("death"), kin("death", &a)]);
    for o in &open {
        assert_eq!(o.due_at, t("2026-03-11T12:00:00Z"), "24 hours from the recording, not from the death");
        assert!(o.id.starts_with("INC-NORTE-2026-000001."), "{}", o.id);
        assert!(!o.overdue && o.closure.is_none());
    }
    assert_eq!(open.iter().find(|o| o.person.is_some()).unwrap().rule, "Mandela Rule 69");
}

#[test]
fn an_escape_tells_the_authority_once_and_the_family_of_each_missing_person() {
    let f = fixture();
    let c = f.admit("SUR", "Cruz", "2025-12-01");
    let d = f.admit("SUR", "Duarte", "2025-12-01");
    let recorded = f.report(&report(
        "SUR",
        IncidentKind::Escape,
        "2026-03-10T05:00:00Z",
        &[(&c, Missing, false), (&d, Missing, false)],
    ));
    assert_eq!(recorded.obligations, 3);
    assert_eq!(
        summary(&f.obligations(ObligationState::Open, NOW)),
        [authority("disappearance"), kin("disappearance", &c), kin("disappearance", &d)]
    );
}

#[test]
fn a_serious_injury_documented_by_medical_opens_obligations_but_respects_a_declined_family_notification() {
    let f = fixture();
    let a = f.admit("NORTE", "Alas", "2025-12-01");
    let b = f.admit("NORTE", "Bonilla", "2025-12-01");
    f.decline(&b);
    let assault = f.report(&report(
        "NORTE",
        IncidentKind::Assault,
        "2026-03-09T22:00:00Z",
        &[(&a, Victim, true), (&b, Victim, true)],
    ));
    assert_eq!(assault.obligations, 0);
    assert_eq!(f.injury(&assault.number, &a, InjurySeverity::Minor), 0, "a minor injury opens nothing");
    assert_eq!(f.injury(&assault.number, &b, InjurySeverity::Serious), 1, "the authority only: B declined");
    assert_eq!(summary(&f.obligations(ObligationState::Open, NOW)), [authority("serious_injury")]);
    assert_eq!(f.injury(&assault.number, &a, InjurySeverity::Serious), 1, "A's family; the authority was already told");
    assert_eq!(
        summary(&f.obligations(ObligationState::Open, NOW)),
        [authority("serious_injury"), kin("serious_injury", &a)]
    );
    // The injury details are medical entries; the incident says an injury was documented.
    let record = f.service.incident(&assault.number, |_| true, f.ctx.now).unwrap();
    assert!(record.people.iter().all(|p| p.injury_documented));
    let injuries = record.injuries.expect("the service gives every entry; the web withholds them");
    assert_eq!(injuries.len(), 3);
    assert_eq!(injuries[1].severity, InjurySeverity::Serious);
    assert_eq!(injuries[1].documented_by, "doctor");
}

#[test]
fn a_death_notifies_the_family_even_of_a_person_who_declined() {
    let f = fixture();
    let b = f.admit("NORTE", "Bonilla", "2025-12-01");
    f.decline(&b);
    let death = f.report(&report("NORTE", IncidentKind::Fight, "2026-03-10T01:00:00Z", &[(&b, Involved, true)]));
    assert_eq!(death.obligations, 0);
    assert_eq!(f.injury(&death.number, &b, InjurySeverity::Fatal), 2, "a fatal injury is a death");
    assert_eq!(summary(&f.obligations(ObligationState::Open, NOW)), [authority("death"), kin("death", &b)]);
}

#[test]
fn a_withdrawn_refusal_is_the_latest_preference_and_applies() {
    let f = fixture();
    let b = f.admit("NORTE", "Bonilla", "2025-12-01");
    f.decline(&b);
    assert!(f.service.notification_preference(&b).unwrap().unwrap().declines);
    let again = NotificationPreference { declines: false, date: None, note: None };
    f.service.set_notification_preference(&f.ctx, &b, &again).unwrap();
    assert!(!f.service.notification_preference(&b).unwrap().unwrap().declines);
    let assault = f.report(&report("NORTE", IncidentKind::Assault, "2026-03-10T01:00:00Z", &[(&b, Victim, true)]));
    assert_eq!(f.injury(&assault.number, &b, InjurySeverity::Serious), 2);
    let future = NotificationPreference { declines: true, date: "2026-04-01".parse().ok(), note: None };
    let error = refused_without_writing(&f, || f.service.set_notification_preference(&f.ctx, &b, &future));
    assert_eq!(invalid_fields(error), ["date"]);
}

#[test]
fn an_injury_of_someone_not_involved_is_refused_and_writes_nothing() {
    let f = fixture();
    let a = f.admit("NORTE", "Alas", "2025-12-01");
    let b = f.admit("NORTE", "Bonilla", "2025-12-01");
    let fight = f.report(&report("NORTE", IncidentKind::Fight, "2026-03-10T01:00:00Z", &[(&a, Involved, true)]));
    let injury =
        InjuryReport { person: b.clone(), severity: InjurySeverity::Serious, description: "cut".parse().unwrap() };
    let error = refused_without_writing(&f, || f.service.document_injury(&f.ctx, &fight.number, &injury));
    assert_eq!(invalid_fields(error), ["person"]);
    let error = refused_without_writing(&f, || f.service.document_injury(&f.ctx, "INC-NORTE-2026-999999", &injury));
    assert!(matches!(error, ServiceError::NotFound { what: "incident", .. }));
}

fn closure(at: &str) -> ObligationClosure {
    ObligationClosure {
        notified: "María Alas".parse().unwrap(),
        capacity: "mother".parse().unwrap(),
        at: t(at),
        method: NotificationMethod::Phone,
        note: Some("told in person by the chaplain afterwards".parse().unwrap()),
    }
}

#[test]
fn an_obligation_stays_open_until_closed_with_evidence_and_cannot_be_closed_twice() {
    let f = fixture();
    let a = f.admit("NORTE", "Alas", "2025-12-01");
    f.report(&report("NORTE", IncidentKind::Death, "2026-03-10T03:00:00Z", &[(&a, Deceased, false)]));
    let open = f.obligations(ObligationState::Open, NOW);
    let family = open.iter().find(|o| o.person.is_some()).unwrap().id.clone();

    let director = Context::new("director", t("2026-03-10T14:00:00Z"));
    for (bad, field) in [(closure("2026-03-11T14:00:00Z"), "at"), (closure("2026-03-10T02:00:00Z"), "at")] {
        let error = refused_without_writing(&f, || f.service.close_obligation(&director, &family, &bad));
        assert_eq!(invalid_fields(error), [field]);
    }

    f.service.close_obligation(&director, &family, &closure("2026-03-10T13:00:00Z")).unwrap();
    let error = refused_without_writing(&f, || {
        f.service.close_obligation(&director, &family, &closure("2026-03-10T13:30:00Z"))
    });
    assert!(matches!(error, ServiceError::Refused { rule: "obligation.closed", .. }), "{error:?}");
    let unknown = f.service.close_obligation(&director, "INC-NORTE-2026-000001.9", &closure("2026-03-10T13:00:00Z"));
    assert!(matches!(unknown, Err(ServiceError::NotFound { what: "obligation", .. })));

    assert_eq!(summary(&f.obligations(ObligationState::Open, NOW)), [authority("death")]);
    let all = f.obligations(ObligationState::All, NOW);
    let closed = all.iter().find(|o| o.id == family).unwrap().closure.as_ref().expect("closed");
    assert_eq!(
        (closed.notified.as_str(), closed.capacity.as_str(), closed.method, closed.closed_by.as_str()),
        ("María Alas", "mother", NotificationMethod::Phone, "director")
    );
    assert_eq!((closed.at, closed.closed_at), (t("2026-03-10T13:00:00Z"), t("2026-03-10T14:00:00Z")));
}

#[test]
fn overdue_obligations_are_the_open_ones_past_their_due_time_in_the_facilities_asked_for() {
    let f = fixture();
    let a = f.admit("NORTE", "Alas", "2025-12-01");
    let c = f.admit("SUR", "Cruz", "2025-12-01");
    f.report(&report("NORTE", IncidentKind::Death, "2026-03-10T03:00:00Z", &[(&a, Deceased, false)]));
    let later = Context::new("test", t("2026-03-11T12:00:00Z"));
    f.service
        .record_incident(&later, &report("SUR", IncidentKind::Escape, "2026-03-11T06:00:00Z", &[(&c, Missing, false)]))
        .unwrap();
    assert!(f.obligations(ObligationState::Overdue, "2026-03-11T11:59:59Z").is_empty(), "not due yet");
    let overdue = f.obligations(ObligationState::Overdue, "2026-03-11T13:00:00Z");
    assert_eq!(summary(&overdue), [authority("death"), kin("death", &a)], "SUR's are due on the 12th");
    assert!(overdue.iter().all(|o| o.overdue));
    let everywhere = f.obligations(ObligationState::Overdue, "2026-03-13T00:00:00Z");
    assert_eq!(everywhere.len(), 4);
    let north =
        f.service.obligations(ObligationState::Overdue, None, |code| code == "NORTE", t("2026-03-13T00:00:00Z"));
    assert_eq!(north.unwrap().len(), 2);
    let south = f.service.obligations(ObligationState::Open, Some("SUR"), |_| true, t(NOW)).unwrap();
    assert_eq!(summary(&south), [authority("disappearance"), kin("disappearance", &c)]);
    let hidden = f.service.obligations(ObligationState::Open, Some("SUR"), |code| code == "NORTE", t(NOW));
    assert!(matches!(hidden, Err(ServiceError::NotFound { what: "facility", .. })));
    let family = overdue.iter().find(|o| o.person.is_some()).unwrap().id.clone();
    f.service.close_obligation(&later, &family, &closure("2026-03-11T10:00:00Z")).unwrap();
    assert_eq!(f.obligations(ObligationState::Overdue, "2026-03-11T13:00:00Z").len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------

/// NORTE holds A and B, SUR holds D and E, all from 2025-12-01. E is released on death on
/// 5 January (no incident). NORTE: an assault on 10 January and a fight on 20 January; A dies in
/// an incident on 14 February and is released on death an hour later. SUR: D escapes on
/// 20 February (still on record as held). Now is 10 March, 12:00.
fn small_estate(f: &Fixture) {
    let a = f.admit("NORTE", "Alas", "2025-12-01");
    let b = f.admit("NORTE", "Bonilla", "2025-12-01");
    let d = f.admit("SUR", "Duarte", "2025-12-01");
    let e = f.admit("SUR", "Escobar", "2025-12-01");
    f.release(&e, ReleaseReason::Death, "2026-01-05T10:00:00Z");
    f.report(&report(
        "NORTE",
        IncidentKind::Assault,
        "2026-01-10T09:00:00Z",
        &[(&a, Victim, true), (&b, Perpetrator, false)],
    ));
    f.report(&report(
        "NORTE",
        IncidentKind::Fight,
        "2026-01-20T09:00:00Z",
        &[(&a, Involved, false), (&b, Involved, false)],
    ));
    f.report(&report("NORTE", IncidentKind::Death, "2026-02-14T10:00:00Z", &[(&a, Deceased, false)]));
    f.release(&a, ReleaseReason::Death, "2026-02-14T11:00:00Z");
    f.report(&report("SUR", IncidentKind::Escape, "2026-02-20T09:00:00Z", &[(&d, Missing, false)]));
    // Outside the range asked for.
    f.report(&report("SUR", IncidentKind::Contraband, "2025-12-20T09:00:00Z", &[(&d, Involved, false)]));
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn place<'s>(stats: &'s service::incident::IncidentStatistics, code: &str) -> &'s PlaceFigures {
    stats.facilities.iter().find(|p| p.facility.as_deref() == Some(code)).unwrap()
}

#[test]
fn statistics_match_figures_computed_by_hand_on_a_small_estate() {
    let f = fixture();
    small_estate(&f);
    let (jan, mar) = (Month::parse("2026-01").ok(), Month::parse("2026-03").ok());
    let stats = f.service.incident_statistics(jan, mar, None, |_| true, t(NOW)).unwrap();
    assert!(stats.national);
    assert_eq!((stats.from.as_str(), stats.to.as_str()), ("2026-01", "2026-03"));

    // Population at 00:00 UTC, day by day. NORTE: A and B all January (2 × 31 = 62 person-days);
    // in February A until the 14th (14) and B (28); in March (days 1 to 10, up to now) B only.
    let north = place(&stats, "NORTE");
    let days: Vec<u32> = north.months.iter().map(|m| m.days).collect();
    assert_eq!(days, [31, 28, 10]);
    let averages: Vec<f64> = north.months.iter().map(|m| m.average_population).collect();
    assert_eq!(averages, [2.0, 1.5, 1.0]);
    assert_eq!(north.months[0].incidents["assault"], 1);
    assert_eq!(north.months[0].incidents["fight"], 1);
    assert_eq!(north.months[0].incidents["escape"], 0);
    assert_eq!(north.months[0].per_1000["assault"], Some(500.0), "1 × 1,000 / 2");
    assert_eq!(north.months[1].per_1000["death"], Some(round2(1000.0 / 1.5)));
    assert_eq!(north.months[1].deaths, 1, "A, once, though recorded by an incident and a release");
    assert_eq!(north.range.days, 69);
    assert_eq!(north.range.average_population, round2(114.0 / 69.0));
    assert_eq!(north.range.per_1000_per_month["assault"], Some(round2(1000.0 / (2.0 + 1.5 + 1.0))));
    assert_eq!(north.range.deaths, 1);
    assert_eq!(north.range.deaths_per_10000, Some(round2(10_000.0 / (114.0 / 69.0))));

    // SUR: D all along; E on 1 to 5 January (released on the 5th at 10:00).
    let south = place(&stats, "SUR");
    let averages: Vec<f64> = south.months.iter().map(|m| m.average_population).collect();
    assert_eq!(averages, [round2(36.0 / 31.0), 1.0, 1.0]);
    assert_eq!(south.months[1].incidents["escape"], 1);
    assert_eq!(south.months[1].per_1000["escape"], Some(1000.0));
    assert_eq!(south.range.incidents["contraband"], 0, "December is outside the range");
    assert_eq!(south.range.per_1000_per_month["escape"], Some(round2(1000.0 / (36.0 / 31.0 + 1.0 + 1.0))));
    assert_eq!((south.months[0].deaths, south.range.deaths), (1, 1), "E died in January without an incident");
    assert_eq!(south.range.deaths_per_10000, Some(round2(10_000.0 / (74.0 / 69.0))));

    let total = &stats.total;
    assert!(total.facility.is_none());
    let averages: Vec<f64> = total.months.iter().map(|m| m.average_population).collect();
    assert_eq!(averages, [round2(98.0 / 31.0), 2.5, 2.0]);
    let deaths: Vec<u64> = total.months.iter().map(|m| m.deaths).collect();
    assert_eq!(deaths, [1, 1, 0]);
    assert_eq!(total.range.incidents.values().sum::<u64>(), 4);
    assert_eq!(total.range.deaths, 2);
    assert_eq!(total.range.deaths_per_10000, Some(round2(20_000.0 / (188.0 / 69.0))));
}

#[test]
fn statistics_cover_only_the_facilities_asked_for_and_refuse_a_backwards_range() {
    let f = fixture();
    small_estate(&f);
    let (jan, feb) = (Month::parse("2026-01").ok(), Month::parse("2026-02").ok());
    let own = f.service.incident_statistics(jan, feb, None, |code| code == "NORTE", t(NOW)).unwrap();
    assert!(!own.national);
    assert_eq!(own.facilities.len(), 1);
    assert_eq!(own.total.range.deaths, 1, "SUR's death is not counted for NORTE's staff");
    assert_eq!(own.total.months[0].average_population, 2.0);
    let one = f.service.incident_statistics(jan, feb, Some("SUR"), |_| true, t(NOW)).unwrap();
    assert_eq!(one.facilities[0].facility.as_deref(), Some("SUR"));
    let hidden = f.service.incident_statistics(jan, feb, Some("SUR"), |code| code == "NORTE", t(NOW));
    assert!(matches!(hidden, Err(ServiceError::NotFound { .. })));
    let backwards = f.service.incident_statistics(feb, jan, None, |_| true, t(NOW));
    assert_eq!(invalid_fields(backwards.unwrap_err()), ["from"]);
    // By default the last twelve months, this one included; months not begun count no days.
    let default = f.service.incident_statistics(None, None, None, |_| true, t(NOW)).unwrap();
    assert_eq!((default.from.as_str(), default.to.as_str()), ("2025-04", "2026-03"));
    let future = f.service.incident_statistics(Month::parse("2026-04").ok(), None, None, |_| true, t(NOW));
    assert_eq!(invalid_fields(future.unwrap_err()), ["from"]);
}

// ---------------------------------------------------------------------------------------------
// Audit
// ---------------------------------------------------------------------------------------------

#[test]
fn every_command_is_audited_without_medical_details_and_the_chain_verifies() {
    let f = fixture();
    let a = f.admit("NORTE", "Alas", "2025-12-01");
    f.decline(&a);
    let assault = f.report(&report("NORTE", IncidentKind::Assault, "2026-03-10T01:00:00Z", &[(&a, Victim, true)]));
    f.injury(&assault.number, &a, InjurySeverity::Serious);
    let id = f.obligations(ObligationState::Open, NOW)[0].id.clone();
    f.service.close_obligation(&f.ctx, &id, &closure("2026-03-10T11:00:00Z")).unwrap();
    let actions = f.actions();
    assert_eq!(
        actions[actions.len() - 4..],
        ["person.notification_preference", "incident.report", "incident.injury", "obligation.close"]
    );
    let events = f.service.audit_events(0, 1_000_000).unwrap();
    let injury = events.iter().find(|e| e.action == "incident.injury").unwrap();
    assert_eq!(injury.subject, assault.number);
    assert!(!injury.payload.to_string().contains("forearm"), "{}", injury.payload);
    assert!(!injury.payload.to_string().contains("serious"), "{}", injury.payload);
    verify_clean(&f);
}

#[test]
fn editing_an_injury_or_a_closure_by_hand_breaks_the_audit() {
    for (table, column) in [("injury", "severity"), ("obligation_closure", "notified_name")] {
        let f = fixture();
        let a = f.admit("NORTE", "Alas", "2025-12-01");
        let assault = f.report(&report("NORTE", IncidentKind::Assault, "2026-03-10T01:00:00Z", &[(&a, Victim, true)]));
        f.injury(&assault.number, &a, InjurySeverity::Serious);
        let id = f.obligations(ObligationState::Open, NOW)[0].id.clone();
        f.service.close_obligation(&f.ctx, &id, &closure("2026-03-10T11:00:00Z")).unwrap();
        verify_clean(&f);
        f.db.execute(&format!("UPDATE {table} SET {column} = 'minor'"));
        let v = f.service.verify_audit(&mut |_, _| {}).unwrap();
        assert!(v.broken.is_some(), "editing {table} went unnoticed");
    }
}

#[test]
fn the_documented_example_parses_and_a_wrong_field_is_named_by_its_path() {
    let example = IncidentReport::from_json(include_str!("../../../docs/incident-example.json")).unwrap();
    assert_eq!((example.kind, example.people.len()), (IncidentKind::Assault, 3));
    let wrong = r#"{"facility": "NORTE", "kind": "assault", "description": "x",
                    "people": [{"person": "SV-1", "role": "bystander"}]}"#;
    assert_eq!(invalid_fields(IncidentReport::from_json(wrong).unwrap_err()), ["people[0].role"]);
    let unknown = r#"{"facility": "NORTE", "kind": "fight", "description": "x", "weapon": "bar"}"#;
    assert_eq!(invalid_fields(IncidentReport::from_json(unknown).unwrap_err()), ["weapon"]);
}
