//! Integration tests of the service over a real SQLite file: custody episodes, refusals that
//! write nothing, intake medical tasks, occupancy against every capacity measure, and the
//! tamper-evident audit.

use custodia_service as service;

use domain::custody::{OutReason, ReleaseReason};
use service::custody::{Admitted, MovementKind};
use service::layout::FacilityLayout;
use service::report::{Detail, Measure, OccupancyReport};
use service::ServiceError;

mod common;

use common::*;

// ---------------------------------------------------------------------------------------------
// A full custody episode
// ---------------------------------------------------------------------------------------------

/// P1 runs through a whole episode; P2 shares A-1 with them for a while.
/// Returns (P1, P2) numbers.
fn episode(f: &Fixture) -> (String, String) {
    let p1 = f.admit("NORTE", "José Luis", "Hernández", "2026-01-10T08:00:00Z").person;
    let p2 = f.admit("NORTE", "Mario", "Gómez", "2026-01-10T08:30:00Z").person;
    f.mv(&p1, place("A-1", Some("1")), "2026-01-10T09:00:00Z");
    f.mv(&p2, place("A-1", Some("2")), "2026-01-10T10:00:00Z");
    f.mv(&p1, MovementKind::Out { reason: OutReason::Court }, "2026-01-12T07:00:00Z");
    f.mv(&p1, MovementKind::Return, "2026-01-12T15:00:00Z");
    f.mv(&p1, move_to("A-2", Some("2")), "2026-01-15T10:00:00Z");
    f.mv(&p1, MovementKind::Transfer { to: "SUR".into() }, "2026-01-20T06:00:00Z");
    f.mv(&p1, MovementKind::Receive { facility: "SUR".into() }, "2026-01-20T11:00:00Z");
    f.mv(&p1, place("S-01", Some("1")), "2026-01-20T12:00:00Z");
    f.mv(&p1, release(), "2026-02-01T10:00:00Z");
    (p1, p2)
}

#[test]
fn a_full_custody_episode_is_listed_in_order_with_occurred_and_recorded_times() {
    let f = fixture();
    let (p1, _) = episode(&f);
    assert_eq!(p1, "SV-2026-000001");
    let record = f.service.person_record(&p1, t(NOW)).unwrap();
    assert_eq!(record.person.identity.name.given_names, "José Luis");
    assert!(record.whereabouts.is_none(), "released, so nowhere now: {:?}", record.whereabouts);
    let lines: Vec<_> = record
        .timeline
        .iter()
        .map(|m| {
            (
                m.kind.as_str(),
                m.facility.as_str(),
                m.cell.as_deref(),
                m.bed.as_deref(),
                m.reason.as_deref(),
                m.occurred_at,
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("admission", "NORTE", None, None, None, t("2026-01-10T08:00:00Z")),
            ("placement", "NORTE", Some("A-1"), Some("1"), None, t("2026-01-10T09:00:00Z")),
            ("out", "NORTE", None, None, Some("court"), t("2026-01-12T07:00:00Z")),
            ("return", "NORTE", None, None, None, t("2026-01-12T15:00:00Z")),
            ("cell_move", "NORTE", Some("A-2"), Some("2"), None, t("2026-01-15T10:00:00Z")),
            ("transfer_out", "NORTE", None, None, Some("SUR"), t("2026-01-20T06:00:00Z")),
            ("receipt", "SUR", None, None, None, t("2026-01-20T11:00:00Z")),
            ("placement", "SUR", Some("S-01"), Some("1"), None, t("2026-01-20T12:00:00Z")),
            ("release", "SUR", None, None, Some("bail"), t("2026-02-01T10:00:00Z")),
        ]
    );
    for m in &record.timeline {
        assert_eq!(m.recorded_at, t(NOW), "recorded time is when it was entered, not when it happened");
        assert_eq!(m.actor, "test");
        assert_eq!(m.booking, "NORTE-2026-000001", "one booking for the whole episode");
    }
}

#[test]
fn whereabouts_answers_for_any_instant_of_the_episode() {
    let f = fixture();
    let (p1, _) = episode(&f);
    let at = |when: &str| f.service.whereabouts(&p1, t(when)).unwrap();

    assert!(at("2026-01-10T07:59:59Z").is_none(), "before the admission");

    let admitted = at("2026-01-10T08:30:00Z").expect("held after admission");
    assert_eq!(admitted.facility.as_deref(), Some("NORTE"));
    assert_eq!(admitted.cell, None, "not placed yet");
    assert_eq!(admitted.in_facility_since, Some(t("2026-01-10T08:00:00Z")));

    let first_cell = at("2026-01-11T00:00:00Z").expect("held");
    assert_eq!(
        (
            first_cell.facility.as_deref(),
            first_cell.unit.as_deref(),
            first_cell.cell.as_deref(),
            first_cell.bed.as_deref()
        ),
        (Some("NORTE"), Some("A"), Some("A-1"), Some("1"))
    );
    assert_eq!(first_cell.in_cell_since, Some(t("2026-01-10T09:00:00Z")));

    let at_court = at("2026-01-12T10:00:00Z").expect("still in NORTE's custody while at court");
    assert_eq!(at_court.facility.as_deref(), Some("NORTE"));
    assert_eq!(at_court.cell.as_deref(), Some("A-1"), "the cell stays theirs while out");
    assert_eq!(at_court.out.as_deref(), Some("court"));
    assert_eq!(first_cell.out, None);

    let second_cell = at("2026-01-16T00:00:00Z").expect("held");
    assert_eq!((second_cell.cell.as_deref(), second_cell.bed.as_deref()), (Some("A-2"), Some("2")));
    assert_eq!(second_cell.in_cell_since, Some(t("2026-01-15T10:00:00Z")));
    assert_eq!(second_cell.in_facility_since, Some(t("2026-01-10T08:00:00Z")));

    let moving = at("2026-01-20T08:00:00Z").expect("in custody while in transit");
    assert_eq!((moving.facility, moving.cell), (None, None), "in transit: no facility, no cell");

    let received = at("2026-01-20T11:30:00Z").expect("held at SUR");
    assert_eq!((received.facility.as_deref(), received.cell.as_deref()), (Some("SUR"), None));
    assert_eq!(received.in_facility_since, Some(t("2026-01-20T11:00:00Z")));

    let placed = at("2026-01-25T00:00:00Z").expect("held at SUR");
    assert_eq!((placed.facility.as_deref(), placed.cell.as_deref()), (Some("SUR"), Some("S-01")));

    assert!(at("2026-02-01T10:00:00Z").is_none(), "released at that instant");
    assert!(at("2026-02-15T00:00:00Z").is_none(), "after the release");
}

#[test]
fn occupants_lists_who_was_in_a_cell_unit_and_facility_at_a_past_instant() {
    let f = fixture();
    let (p1, p2) = episode(&f);
    let who = |unit: Option<&str>,
               cell: Option<&str>,
               facility: &str,
               when: &str|
     -> Vec<(String, Option<String>, Option<String>)> {
        f.service
            .occupants(facility, unit, cell, t(when))
            .unwrap()
            .into_iter()
            .map(|o| (o.number, o.cell, o.bed))
            .collect()
    };
    let s = |x: &str| Some(x.to_string());

    // Both unplaced just after admission, but already in the facility.
    assert_eq!(who(None, None, "NORTE", "2026-01-10T08:45:00Z"), [(p1.clone(), None, None), (p2.clone(), None, None)]);
    assert!(who(None, Some("A-1"), "NORTE", "2026-01-10T08:45:00Z").is_empty());

    // Sharing A-1.
    let a1 = f.service.occupants("NORTE", None, Some("A-1"), t("2026-01-11T00:00:00Z")).unwrap();
    assert_eq!(
        a1.iter().map(|o| (o.number.clone(), o.bed.clone(), o.since)).collect::<Vec<_>>(),
        [(p1.clone(), s("1"), t("2026-01-10T09:00:00Z")), (p2.clone(), s("2"), t("2026-01-10T10:00:00Z"))]
    );
    assert_eq!(a1[0].name, "José Luis Hernández Pérez");

    // After P1's move to A-2.
    assert_eq!(who(None, Some("A-1"), "NORTE", "2026-01-16T00:00:00Z"), [(p2.clone(), s("A-1"), s("2"))]);
    assert_eq!(who(None, Some("A-2"), "NORTE", "2026-01-16T00:00:00Z"), [(p1.clone(), s("A-2"), s("2"))]);
    assert_eq!(
        who(Some("A"), None, "NORTE", "2026-01-16T00:00:00Z"),
        [(p1.clone(), s("A-2"), s("2")), (p2.clone(), s("A-1"), s("2"))]
    );
    assert!(who(Some("B"), None, "NORTE", "2026-01-16T00:00:00Z").is_empty());

    // While P1 is in transit they are in neither facility.
    assert_eq!(who(None, None, "NORTE", "2026-01-20T08:00:00Z"), [(p2.clone(), s("A-1"), s("2"))]);
    assert!(who(None, None, "SUR", "2026-01-20T08:00:00Z").is_empty());
    assert_eq!(who(None, None, "SUR", "2026-01-25T00:00:00Z"), [(p1.clone(), s("S-01"), s("1"))]);
    // And after the release, nobody at SUR.
    assert!(who(None, None, "SUR", "2026-02-15T00:00:00Z").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Refusals write nothing
// ---------------------------------------------------------------------------------------------

#[test]
fn admission_without_legal_basis_is_invalid_and_writes_nothing() {
    let f = fixture();
    let mut json = admission_json("NORTE", "Ana", "López", "2026-01-10T08:00:00Z");
    json.as_object_mut().unwrap().remove("legal_basis");
    let without = request(json);
    let err = refused_without_writing(&f, || f.service.admit(&f.ctx, &without));
    match err {
        ServiceError::Invalid(fields) => {
            assert_eq!(fields.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["legal_basis"]);
        }
        other => panic!("expected invalid input, got {other:?}"),
    }
    // The refused admission used up no person number.
    let admitted = f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z");
    assert_eq!(admitted.person, "SV-2026-000001");
}

#[test]
fn release_dated_before_the_admission_is_refused_and_writes_nothing() {
    let f = fixture();
    let p = f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z").person;
    let err = refused_without_writing(&f, || f.try_move(&p, release(), "2026-01-10T07:59:00Z"));
    let (rule, detail) = refused_rule::<()>(Err(err));
    assert_eq!(rule, "custody.sequence");
    assert!(detail.contains("before the latest recorded movement"), "{detail}");
    assert!(f.service.whereabouts(&p, t(NOW)).unwrap().is_some(), "still in custody");
}

#[test]
fn release_of_a_person_never_admitted_is_not_found_and_writes_nothing() {
    let f = fixture();
    f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z");
    let err = refused_without_writing(&f, || f.try_move("SV-2026-000999", release(), "2026-01-11T08:00:00Z"));
    assert!(matches!(&err, ServiceError::NotFound { what: "person", key } if key == "SV-2026-000999"), "{err:?}");
}

#[test]
fn release_of_a_person_already_released_is_refused_and_writes_nothing() {
    let f = fixture();
    let p = f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z").person;
    f.mv(&p, release(), "2026-01-11T08:00:00Z");
    let err = refused_without_writing(&f, || f.try_move(&p, release(), "2026-01-12T08:00:00Z"));
    let (rule, detail) = refused_rule::<()>(Err(err));
    assert_eq!(rule, "custody.sequence");
    assert!(detail.contains("not in custody"), "{detail}");
}

#[test]
fn placing_a_person_who_is_out_at_court_is_refused_and_writes_nothing() {
    let f = fixture();
    let p = f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z").person;
    f.mv(&p, MovementKind::Out { reason: OutReason::Court }, "2026-01-10T09:00:00Z");
    let err = refused_without_writing(&f, || f.try_move(&p, place("A-1", None), "2026-01-10T10:00:00Z"));
    let (rule, detail) = refused_rule::<()>(Err(err));
    assert_eq!(rule, "custody.sequence");
    assert!(detail.contains("court"), "the refusal says why: {detail}");
    // After the return the same placement is accepted.
    f.mv(&p, MovementKind::Return, "2026-01-10T11:00:00Z");
    f.mv(&p, place("A-1", None), "2026-01-10T12:00:00Z");
}

#[test]
fn placing_into_a_bed_taken_by_another_person_is_refused_and_writes_nothing() {
    let f = fixture();
    let a = f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z").person;
    let b = f.admit("NORTE", "Berta", "Ruiz", "2026-01-10T08:10:00Z").person;
    f.mv(&a, place("A-1", Some("1")), "2026-01-10T09:00:00Z");
    let err = refused_without_writing(&f, || f.try_move(&b, place("A-1", Some("1")), "2026-01-10T10:00:00Z"));
    let (rule, detail) = refused_rule::<()>(Err(err));
    assert_eq!(rule, "estate.bed_taken");
    assert!(detail.contains(&a), "the refusal names who holds the bed: {detail}");
    // The other bed of the same cell is free.
    f.mv(&b, place("A-1", Some("2")), "2026-01-10T10:00:00Z");
}

#[test]
fn placing_into_an_out_of_order_cell_is_refused_and_writes_nothing() {
    let f = fixture();
    let p = f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z").person;
    let err = refused_without_writing(&f, || f.try_move(&p, place("B-1", None), "2026-01-10T09:00:00Z"));
    let (rule, detail) = refused_rule::<()>(Err(err));
    assert_eq!(rule, "estate.cell_out_of_order");
    assert!(detail.contains("flooded"), "the refusal gives the reason: {detail}");
}

#[test]
fn a_second_person_in_a_single_cell_is_refused_and_writes_nothing() {
    let f = fixture();
    let a = f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z").person;
    let b = f.admit("NORTE", "Berta", "Ruiz", "2026-01-10T08:10:00Z").person;
    f.mv(&a, place("A-SOLO", None), "2026-01-10T09:00:00Z");
    let err = refused_without_writing(&f, || f.try_move(&b, place("A-SOLO", None), "2026-01-10T10:00:00Z"));
    let (rule, detail) = refused_rule::<()>(Err(err));
    assert_eq!(rule, "estate.single_cell");
    assert!(detail.contains(&a), "the refusal names who is in it: {detail}");
    // Once the first person has moved out, the cell can take someone else.
    f.mv(&a, move_to("A-1", None), "2026-01-11T09:00:00Z");
    f.mv(&b, place("A-SOLO", None), "2026-01-11T10:00:00Z");
}

#[test]

fn a_single_cell_placement_dated_before_someone_else_moved_in_is_refused() {
    // Ana is placed in the single cell on the 11th. Berta, admitted on the 10th, is then recorded
    // as placed there on the 10th (late entry). From the 11th on two people would share a single
    // cell; the bed check looks forward (`bed_holder_from`), the single-cell check does not.
    let f = fixture();
    let a = f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z").person;
    let b = f.admit("NORTE", "Berta", "Ruiz", "2026-01-10T08:10:00Z").person;
    f.mv(&a, place("A-SOLO", None), "2026-01-11T09:00:00Z");
    let err = refused_without_writing(&f, || f.try_move(&b, place("A-SOLO", None), "2026-01-10T10:00:00Z"));
    let (rule, _) = refused_rule::<()>(Err(err));
    assert_eq!(rule, "estate.single_cell");
}

#[test]

fn the_occupant_of_a_single_cell_can_take_its_bed() {
    // Placed in the single cell without a bed, then given its bed: nobody else is in the cell,
    // yet the move is refused with "SV-2026-000001 is already in it", naming the person themself.
    let f = fixture();
    let a = f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z").person;
    f.mv(&a, place("A-SOLO", None), "2026-01-10T09:00:00Z");
    let moved = f.try_move(&a, move_to("A-SOLO", Some("1")), "2026-01-10T10:00:00Z");
    assert!(moved.is_ok(), "{moved:?}");
    let w = f.service.whereabouts(&a, t("2026-01-10T11:00:00Z")).unwrap().unwrap();
    assert_eq!((w.cell.as_deref(), w.bed.as_deref()), (Some("A-SOLO"), Some("1")));
}

#[test]

fn a_placement_of_a_released_person_is_refused_naming_the_placement() {
    let f = fixture();
    let p = f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z").person;
    f.mv(&p, release(), "2026-01-11T08:00:00Z");
    let err = refused_without_writing(&f, || f.try_move(&p, place("A-1", None), "2026-01-12T08:00:00Z"));
    let (rule, detail) = refused_rule::<()>(Err(err));
    assert_eq!(rule, "custody.sequence");
    // Today: "the person is not in custody, so a return cannot be recorded (admit them first)".
    assert!(detail.contains("placement") && !detail.contains("return"), "{detail}");
}

#[test]
fn receiving_at_a_facility_other_than_the_destination_is_refused_and_writes_nothing() {
    let f = fixture();
    let p = f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z").person;
    f.mv(&p, MovementKind::Transfer { to: "SUR".into() }, "2026-01-11T08:00:00Z");
    let err = refused_without_writing(&f, || {
        f.try_move(&p, MovementKind::Receive { facility: "NORTE".into() }, "2026-01-11T12:00:00Z")
    });
    let (rule, detail) = refused_rule::<()>(Err(err));
    assert_eq!(rule, "custody.sequence");
    assert!(detail.contains("not this one"), "{detail}");
    // Still in transit; SUR can receive them.
    let moving = f.service.whereabouts(&p, t("2026-01-11T13:00:00Z")).unwrap().expect("in custody");
    assert_eq!(moving.facility, None);
    f.mv(&p, MovementKind::Receive { facility: "SUR".into() }, "2026-01-11T12:00:00Z");
}

#[test]
fn placing_into_an_unknown_cell_is_not_found_and_writes_nothing() {
    let f = fixture();
    let p = f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z").person;
    let err = refused_without_writing(&f, || f.try_move(&p, place("Z-99", None), "2026-01-10T09:00:00Z"));
    assert!(matches!(&err, ServiceError::NotFound { key, .. } if key == "Z-99"), "{err:?}");
    // A cell of another facility is unknown here too.
    let err = refused_without_writing(&f, || f.try_move(&p, place("S-01", None), "2026-01-10T09:00:00Z"));
    assert!(matches!(&err, ServiceError::NotFound { key, .. } if key == "S-01"), "{err:?}");
}

#[test]
fn a_layout_with_an_existing_facility_code_conflicts_and_writes_nothing() {
    let f = fixture();
    // Same code, otherwise a different facility.
    let layout = FacilityLayout::parse(&SUR.replace("code = \"SUR\"", "code = \"NORTE\"")).unwrap();
    let err = refused_without_writing(&f, || f.service.add_facility(&f.ctx, &layout));
    match err {
        ServiceError::Conflict(message) => assert!(message.contains("NORTE"), "{message}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let report = f.service.occupancy(t(NOW), Detail::Facility).unwrap();
    let north = report.facilities.iter().find(|l| l.code == "NORTE").unwrap();
    assert_eq!(north.name, "Centro Penal Norte", "the existing facility is untouched");
    assert_eq!(north.measure.capacity.declared, 8);
}

#[test]
fn a_movement_dated_in_the_future_is_invalid_and_writes_nothing() {
    let f = fixture();
    let p = f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z").person;
    // An hour after the time of recording.
    let err = refused_without_writing(&f, || f.try_move(&p, place("A-1", None), "2026-03-01T13:00:00Z"));
    match err {
        ServiceError::Invalid(fields) => assert_eq!(fields[0].field, "at"),
        other => panic!("expected invalid input, got {other:?}"),
    }
    // So is an admission.
    let future = request(admission_json("NORTE", "Berta", "Ruiz", "2026-03-02T12:00:00Z"));
    let err = refused_without_writing(&f, || f.service.admit(&f.ctx, &future));
    assert!(matches!(&err, ServiceError::Invalid(fields) if fields[0].field == "at"), "{err:?}");
    // A few minutes ahead (terminal clocks differ) is accepted.
    f.mv(&p, place("A-1", None), "2026-03-01T12:04:00Z");
}

// ---------------------------------------------------------------------------------------------
// Intake medical tasks
// ---------------------------------------------------------------------------------------------

#[test]
fn an_admission_opens_one_medical_task_per_injury_and_complaint() {
    let f = fixture();
    let mut json = admission_json("NORTE", "Ana", "López", "2026-01-10T08:00:00Z");
    json["injuries"] = serde_json::json!([
        {"description": "bruise", "location": "left arm"},
        {"description": "cut on the lip"}
    ]);
    json["complaints"] = serde_json::json!(["beaten during arrest"]);
    let admitted = f.service.admit(&f.ctx, &request(json)).unwrap();
    assert_eq!(admitted.medical_tasks, 3);
    let record = f.service.person_record(&admitted.person, t(NOW)).unwrap();
    let tasks: Vec<_> =
        record.medical_tasks.iter().map(|m| (m.booking.as_str(), m.reason.as_str(), m.opened_at)).collect();
    let opened = t("2026-01-10T08:00:00Z");
    assert_eq!(
        tasks,
        [
            (admitted.booking.as_str(), "visible injury: bruise (left arm)", opened),
            (admitted.booking.as_str(), "visible injury: cut on the lip", opened),
            (admitted.booking.as_str(), "complaint of ill-treatment: beaten during arrest", opened),
        ]
    );
    // Someone with neither gets no task.
    let plain = f.admit("NORTE", "Berta", "Ruiz", "2026-01-10T09:00:00Z");
    assert_eq!(plain.medical_tasks, 0);
    assert!(f.service.person_record(&plain.person, t(NOW)).unwrap().medical_tasks.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Occupancy
// ---------------------------------------------------------------------------------------------

/// (population, [declared, operational, beds, icrc, cpt], [percentages])
type Expected = (u64, [u64; 5], [Option<f64>; 5]);

fn measure(m: &Measure) -> Expected {
    let c = &m.capacity;
    let p = &m.occupancy_pct;
    (
        m.population,
        [c.declared, c.operational, c.beds, c.icrc, c.cpt],
        [p.declared, p.operational, p.beds, p.icrc, p.cpt],
    )
}

fn facility_line<'r>(report: &'r OccupancyReport, code: &str) -> &'r service::report::FacilityOccupancy {
    report.facilities.iter().find(|f| f.code == code).unwrap_or_else(|| panic!("facility {code} in the report"))
}

fn unit_line<'r>(report: &'r OccupancyReport, facility: &str, unit: &str) -> &'r service::report::UnitOccupancy {
    let units = facility_line(report, facility).units.as_ref().expect("units at cell detail");
    units.iter().find(|u| u.code == unit).unwrap_or_else(|| panic!("unit {unit}"))
}

fn cell_line<'r>(
    report: &'r OccupancyReport,
    facility: &str,
    unit: &str,
    cell: &str,
) -> &'r service::report::CellOccupancy {
    let cells = unit_line(report, facility, unit).cells.as_ref().expect("cells at cell detail");
    cells.iter().find(|c| c.code == cell).unwrap_or_else(|| panic!("cell {cell}"))
}

#[test]
fn occupancy_reports_every_capacity_measure_per_cell_unit_and_facility_at_a_past_instant_and_now() {
    let f = fixture();
    let p1 = f.admit("NORTE", "Uno", "Alfa", "2026-01-10T08:00:00Z").person;
    let p2 = f.admit("NORTE", "Dos", "Beta", "2026-01-10T08:00:00Z").person;
    let p3 = f.admit("NORTE", "Tres", "Gama", "2026-01-10T08:00:00Z").person;
    let p4 = f.admit("NORTE", "Cuatro", "Delta", "2026-01-10T08:00:00Z").person;
    f.mv(&p1, place("A-1", Some("1")), "2026-01-10T09:00:00Z");
    f.mv(&p2, place("A-1", Some("2")), "2026-01-10T09:00:00Z");
    f.mv(&p3, place("A-SOLO", None), "2026-01-10T09:00:00Z");
    // p4 stays unplaced until later: counted in the facility, in no unit or cell.
    let past = t("2026-01-15T00:00:00Z");
    f.mv(&p2, release(), "2026-02-01T08:00:00Z");
    f.mv(&p4, place("A-2", None), "2026-02-01T09:00:00Z");
    let p5 = f.admit("SUR", "Cinco", "Épsilon", "2026-02-02T08:00:00Z").person;
    f.admit("SUR", "Seis", "Zeta", "2026-02-02T08:00:00Z");
    f.mv(&p5, place("S-01", None), "2026-02-02T09:00:00Z");

    let then = f.service.occupancy(past, Detail::Cell).unwrap();
    assert_eq!(then.at, past);
    assert_eq!(then.facilities.iter().map(|l| l.code.as_str()).collect::<Vec<_>>(), ["NORTE", "SUR"]);
    assert_eq!(then.in_transit, 0);
    let norte_capacity = [8, 6, 5, 7, 4];
    assert_eq!(
        measure(&facility_line(&then, "NORTE").measure),
        (4, norte_capacity, [Some(50.0), Some(66.7), Some(80.0), Some(57.1), Some(100.0)])
    );
    assert_eq!(
        measure(&unit_line(&then, "NORTE", "A").measure),
        (3, [6, 6, 5, 7, 4], [Some(50.0), Some(50.0), Some(60.0), Some(42.9), Some(75.0)])
    );
    assert_eq!(
        measure(&unit_line(&then, "NORTE", "B").measure),
        (0, [2, 0, 0, 0, 0], [Some(0.0), None, None, None, None])
    );
    assert_eq!(
        measure(&cell_line(&then, "NORTE", "A", "A-1").measure),
        (2, [3, 3, 2, 3, 2], [Some(66.7), Some(66.7), Some(100.0), Some(66.7), Some(100.0)])
    );
    assert_eq!(measure(&cell_line(&then, "NORTE", "A", "A-2").measure), (0, [2, 2, 2, 3, 2], [Some(0.0); 5]));
    assert_eq!(
        measure(&cell_line(&then, "NORTE", "A", "A-SOLO").measure),
        (1, [1, 1, 1, 1, 0], [Some(100.0), Some(100.0), Some(100.0), Some(100.0), None]),
        "a 6 m² single cell meets no CPT place (5 m² usable < 6 m²): null, not infinity"
    );
    let b1 = cell_line(&then, "NORTE", "B", "B-1");
    assert!(!b1.in_use);
    assert_eq!(b1.out_of_order.as_deref(), Some("flooded"));
    assert_eq!(measure(&b1.measure), (0, [2, 0, 0, 0, 0], [Some(0.0), None, None, None, None]));
    assert_eq!(measure(&facility_line(&then, "SUR").measure), (0, [4; 5], [Some(0.0); 5]));
    assert_eq!(measure(&cell_line(&then, "SUR", "S", "S-01").measure), (0, [2; 5], [Some(0.0); 5]));
    assert_eq!(
        measure(&then.total),
        (4, [12, 10, 9, 11, 8], [Some(33.3), Some(40.0), Some(44.4), Some(36.4), Some(50.0)])
    );

    let now = f.service.occupancy(t(NOW), Detail::Cell).unwrap();
    assert_eq!(
        measure(&facility_line(&now, "NORTE").measure),
        (3, norte_capacity, [Some(37.5), Some(50.0), Some(60.0), Some(42.9), Some(75.0)])
    );
    assert_eq!(measure(&cell_line(&now, "NORTE", "A", "A-1").measure).0, 1);
    assert_eq!(
        measure(&cell_line(&now, "NORTE", "A", "A-2").measure),
        (1, [2, 2, 2, 3, 2], [Some(50.0), Some(50.0), Some(50.0), Some(33.3), Some(50.0)])
    );
    assert_eq!(measure(&unit_line(&now, "NORTE", "A").measure).0, 3);
    assert_eq!(measure(&facility_line(&now, "SUR").measure), (2, [4; 5], [Some(50.0); 5]));
    assert_eq!(
        measure(&unit_line(&now, "SUR", "S").measure),
        (1, [4; 5], [Some(25.0); 5]),
        "unit rows count placed people only"
    );
    assert_eq!(measure(&cell_line(&now, "SUR", "S", "S-02").measure).0, 0);
    assert_eq!(
        measure(&now.total),
        (5, [12, 10, 9, 11, 8], [Some(41.7), Some(50.0), Some(55.6), Some(45.5), Some(62.5)])
    );

    // Before SUR opened only NORTE is on record.
    let early = f.service.occupancy(t("2025-03-01T00:00:00Z"), Detail::Facility).unwrap();
    assert_eq!(early.facilities.iter().map(|l| l.code.as_str()).collect::<Vec<_>>(), ["NORTE"]);
    assert!(early.facilities[0].units.is_none(), "facility detail leaves units out");
    assert_eq!(measure(&early.total), (0, norte_capacity, [Some(0.0), Some(0.0), Some(0.0), Some(0.0), Some(0.0)]));
}

#[test]
fn occupancy_counts_people_in_transit_in_no_facility() {
    let f = fixture();
    let p = f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z").person;
    f.mv(&p, place("A-1", None), "2026-01-10T09:00:00Z");
    f.mv(&p, MovementKind::Transfer { to: "SUR".into() }, "2026-01-11T08:00:00Z");
    let report = f.service.occupancy(t("2026-01-11T09:00:00Z"), Detail::Cell).unwrap();
    assert_eq!(report.in_transit, 1);
    assert_eq!(report.total.population, 0);
    assert_eq!(measure(&cell_line(&report, "NORTE", "A", "A-1").measure).0, 0);
    let before = f.service.occupancy(t("2026-01-11T07:00:00Z"), Detail::Cell).unwrap();
    assert_eq!((before.in_transit, before.total.population), (0, 1));
}

// ---------------------------------------------------------------------------------------------
// Audit
// ---------------------------------------------------------------------------------------------

/// Several commands of every kind; returns the two people with their admissions, and the
/// audit event of P1's placement.
fn audited_history(f: &Fixture) -> (Admitted, Admitted, i64) {
    let a = f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z");
    let b = f.admit("NORTE", "Berta", "Ruiz", "2026-01-10T08:10:00Z");
    let placed = f.mv(&a.person, place("A-1", Some("1")), "2026-01-10T09:00:00Z");
    f.mv(&b.person, place("A-2", None), "2026-01-10T09:00:00Z");
    f.mv(&b.person, MovementKind::Transfer { to: "SUR".into() }, "2026-01-12T08:00:00Z");
    f.mv(&b.person, MovementKind::Receive { facility: "SUR".into() }, "2026-01-12T10:00:00Z");
    (a, b, placed.audit_seq)
}

#[test]
fn an_untouched_database_verifies() {
    let f = fixture();
    let (_, b, _) = audited_history(&f);
    f.mv(&b.person, release(), "2026-01-20T08:00:00Z");
    let events = f.service.audit_events(0, 1_000_000).unwrap();
    // Two facilities, two admissions, five movements.
    assert_eq!(events.len(), 9);
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=9).collect::<Vec<i64>>());
    let v = f.verify();
    assert_eq!(v.broken, None);
    assert!(v.projection_problems.is_empty(), "{:?}", v.projection_problems);
    assert_eq!(v.events, 9);
}

#[test]
fn editing_a_person_row_breaks_the_audit_at_their_admission_event() {
    let f = fixture();
    let (_, b, _) = audited_history(&f);
    assert_eq!(f.verify().broken, None);
    let changed = f.tamper(&format!("UPDATE person SET first_surname = 'Otro' WHERE number = '{}'", b.person));
    assert_eq!(changed, 1);
    let v = f.verify();
    let broken = v.broken.expect("the edit is detected");
    assert_eq!(broken.seq, b.audit_seq, "{broken}");
}

#[test]
fn editing_an_audit_event_payload_breaks_the_audit_at_that_event() {
    let f = fixture();
    let (a, _, _) = audited_history(&f);
    let changed = f.tamper(&format!(
        "UPDATE audit_event SET payload = replace(payload, 'López', 'Lopes') WHERE seq = {}",
        a.audit_seq
    ));
    assert_eq!(changed, 1);
    let events = f.service.audit_events(0, 1_000_000).unwrap();
    assert!(events[(a.audit_seq - 1) as usize].payload.to_string().contains("Lopes"), "the payload was really changed");
    let broken = f.verify().broken.expect("the edit is detected");
    assert_eq!(broken.seq, a.audit_seq, "{broken}");
}

#[test]
fn deleting_a_movement_row_breaks_the_audit() {
    let f = fixture();
    let (_, _, placement_seq) = audited_history(&f);
    let changed = f.tamper(&format!("DELETE FROM movement WHERE audit_seq = {placement_seq}"));
    assert_eq!(changed, 1);
    let broken = f.verify().broken.expect("the deletion is detected");
    assert_eq!(broken.seq, placement_seq, "{broken}");
}

#[test]
fn editing_the_current_custody_state_is_reported_as_a_projection_problem() {
    let f = fixture();
    let (a, _, _) = audited_history(&f);
    let changed = f.tamper(&format!(
        "UPDATE custody_state SET cell_id = (SELECT id FROM cell WHERE code = 'A-2')
         WHERE person_id = (SELECT id FROM person WHERE number = '{}')",
        a.person
    ));
    assert_eq!(changed, 1);
    let v = f.verify();
    assert_eq!(v.broken, None, "no audited row was touched");
    assert!(!v.projection_problems.is_empty(), "the projection no longer follows from the movements");
    assert!(v.projection_problems.iter().any(|p| p.contains("custody state")), "{:?}", v.projection_problems);
}

// ---------------------------------------------------------------------------------------------
// Found in review
// ---------------------------------------------------------------------------------------------

#[test]
fn readmitting_a_known_person_under_another_identity_is_refused_and_writes_nothing() {
    let f = fixture();
    let p = f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z").person;
    f.mv(&p, release(), "2026-01-11T08:00:00Z");
    let mut again = admission_json("NORTE", "Ana", "Martínez", "2026-02-01T08:00:00Z");
    again["person"] = serde_json::json!(p);
    let err = refused_without_writing(&f, || f.service.admit(&f.ctx, &request(again)));
    match err {
        ServiceError::Invalid(fields) => assert_eq!(fields[0].field, "identity.first_surname"),
        other => panic!("expected the differing field, got {other:?}"),
    }
}

#[test]
fn readmitting_a_known_person_starts_a_new_booking_and_keeps_new_documents() {
    let f = fixture();
    let p = f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z").person;
    f.mv(&p, release(), "2026-01-11T08:00:00Z");
    let mut again = admission_json("SUR", "Ana", "López", "2026-02-01T08:00:00Z");
    again["person"] = serde_json::json!(p);
    again["identity"]["documents"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"kind": "passport", "number": "A123", "issuing_country": "SV"}));
    let admitted = f.service.admit(&f.ctx, &request(again)).expect("re-admission");
    assert_eq!(admitted.person, p);
    assert_eq!(admitted.booking, "SUR-2026-000001");
    let record = f.service.person_record(&p, t(NOW)).unwrap();
    let kinds: Vec<&str> = record.person.identity.documents.iter().map(|d| d.kind.as_str()).collect();
    assert_eq!(kinds, ["dui", "passport"]);
    assert_eq!(record.whereabouts.and_then(|w| w.facility).as_deref(), Some("SUR"));
    assert!(f.verify().broken.is_none());
}

#[test]
fn a_backdated_placement_into_a_cell_put_out_of_order_later_is_refused() {
    let f = fixture();
    let p = f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z").person;
    let change = service::estate::CellStatusChange {
        facility: "NORTE".into(),
        cell: "A-2".into(),
        in_use: false,
        reason: Some("broken lock".into()),
    };
    f.service.set_cell_status(&f.ctx, &change).expect("out of order now");
    let err = refused_without_writing(&f, || f.try_move(&p, place("A-2", None), "2026-01-10T09:00:00Z"));
    let (rule, detail) = refused_rule::<()>(Err(err));
    assert_eq!(rule, "estate.cell_out_of_order");
    assert!(detail.contains("broken lock"), "{detail}");
}

#[test]
fn a_person_can_be_released_while_in_transit() {
    let f = fixture();
    let p = f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z").person;
    f.mv(&p, MovementKind::Transfer { to: "SUR".into() }, "2026-01-11T08:00:00Z");
    let err = f.try_move(&p, place("S-01", None), "2026-01-11T09:00:00Z").unwrap_err();
    assert!(err.to_string().contains("in transit"), "{err}");
    f.mv(&p, MovementKind::Release { reason: ReleaseReason::Death, to_country: None }, "2026-01-11T10:00:00Z");
    assert!(f.service.whereabouts(&p, t("2026-01-11T11:00:00Z")).unwrap().is_none());
    let report = f.service.occupancy(t("2026-01-11T11:00:00Z"), Detail::Facility).unwrap();
    assert_eq!((report.in_transit, report.total.population), (0, 0));
    let verified = f.verify();
    assert!(verified.broken.is_none() && verified.projection_problems.is_empty(), "{verified:?}");
}

#[test]
fn rewinding_the_time_of_a_current_state_is_reported_as_a_projection_problem() {
    let f = fixture();
    let p = f.admit("NORTE", "Ana", "López", "2026-01-10T08:00:00Z").person;
    f.mv(&p, place("A-1", None), "2026-01-10T09:00:00Z");
    // A rewound `since` would let a movement be backdated before the placement.
    f.tamper("UPDATE custody_state SET since = 0");
    let verified = f.verify();
    assert!(verified.broken.is_none());
    assert_eq!(verified.projection_problems.len(), 1, "{verified:?}");
}

#[test]
fn a_facility_that_opens_in_the_future_is_refused() {
    let f = fixture();
    let text = SUR.replace("code = \"SUR\"", "code = \"LATER\"").replace("2025-06-01", "2026-06-01");
    let layout = FacilityLayout::parse(&text).unwrap();
    let err = refused_without_writing(&f, || f.service.add_facility(&f.ctx, &layout));
    match err {
        ServiceError::Invalid(fields) => assert_eq!(fields[0].field, "facility.opened"),
        other => panic!("expected facility.opened, got {other:?}"),
    }
}
