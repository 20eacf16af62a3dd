//! Housing rules over a real SQLite file: every refusal (category, designation, keep-apart at each
//! scope, capacity line) writes nothing and names the rule; expired rules stop applying; overrides
//! are audited; allocation and roll counts; and the service agrees with the independent checker.

mod common;

use common::*;

use custodia_service as service;

use chrono::Duration;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use domain::allocation::{check, Plan};
use domain::custody::OutReason;
use domain::person::Sex;
use domain::separation::{CapacityLine, Designation, LegalStatus, Regime, Scope, SecurityLevel};
use domain::time::Instant;
use service::allocate::AllocateRequest;
use service::count::{CellCount, Explanation, Resolve, StartCount};
use service::custody::MovementKind;
use service::housing::{
    AffiliationRequest, ClassifyRequest, KeepApartRequest, OverrideRequest, PartyRef, PolicyRequest,
};
use service::{Context, ServiceError};
use store::{Store, Tx};

fn now() -> Instant {
    t(NOW)
}

impl Fixture {
    /// A context recording at `now` plus some hours.
    fn later(&self, hours: i64) -> Context {
        Context::new("director", now() + Duration::hours(hours))
    }

    /// Admit someone into NORTE with the given sex, date of birth and legal basis.
    fn admit_as(&self, given: &str, sex: &str, born: &str, basis: &str) -> String {
        let mut value = admission_json("NORTE", given, "Rivas", "2026-03-01T08:00:00Z");
        value["identity"]["sex"] = sex.into();
        value["identity"]["date_of_birth"] = born.into();
        value["legal_basis"]["kind"] = basis.into();
        let request = serde_json::from_value(value).expect("admission JSON");
        self.service.admit(&self.ctx, &request).unwrap_or_else(|e| panic!("admission of {given}: {e}")).person
    }

    fn man(&self, given: &str) -> String {
        self.admit_as(given, "male", "1990-02-03", "remand_order")
    }

    fn place_now(&self, person: &str, cell: &str) -> service::ServiceResult<service::custody::MovementRecorded> {
        self.try_move(person, place(cell, None), NOW)
    }

    fn rule(&self, a: PartyRef, b: PartyRef, scope: Scope, expires_at: Option<Instant>) -> i64 {
        let request =
            KeepApartRequest { a, b, scope, reason: "threats".parse().unwrap(), authorised_by: None, expires_at };
        self.service.add_keep_apart(&self.ctx, &request).expect("rule recorded").rule.id
    }
}

fn person(number: &str) -> PartyRef {
    PartyRef { person: Some(number.into()), group: None }
}

fn group(code: &str) -> PartyRef {
    PartyRef { person: None, group: Some(code.parse().unwrap()) }
}

fn refusal(error: ServiceError) -> (&'static str, String) {
    match error {
        ServiceError::Refused { rule, detail } => (rule, detail),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn untried_and_convicted_people_never_share_a_cell() {
    let f = fixture();
    let untried = f.man("Ana");
    let convicted = f.admit_as("Beto", "male", "1985-01-01", "judgment");
    f.place_now(&untried, "A-1").unwrap();
    let (rule, detail) = refusal(refused_without_writing(&f, || f.place_now(&convicted, "A-1")));
    assert_eq!(rule, "housing.category");
    assert!(detail.contains(&untried) && detail.contains("legal status"), "{detail}");
    f.place_now(&convicted, "A-2").expect("a cell of his own category");
}

#[test]
fn young_people_are_kept_from_adults_at_the_facility_adult_age() {
    let f = fixture();
    let adult = f.man("Ana");
    let seventeen = f.admit_as("Beto", "male", "2008-06-01", "remand_order");
    f.place_now(&adult, "A-1").unwrap();
    let (rule, detail) = refusal(refused_without_writing(&f, || f.place_now(&seventeen, "A-1")));
    assert_eq!(rule, "housing.category");
    assert!(detail.contains("age group"), "{detail}");
    // A jurisdiction where adulthood starts at 16 counts him as an adult.
    let policy = PolicyRequest { capacity_line: None, adult_age: Some(16) };
    f.service.set_housing_policy(&f.ctx, "NORTE", &policy).unwrap();
    f.place_now(&seventeen, "A-1").expect("an adult at 16 may share with adults");
}

#[test]
fn a_unit_designated_for_women_refuses_a_man_and_takes_a_woman() {
    let f = fixture();
    let women = Designation { sex: Some(Sex::Female), ..Designation::OPEN };
    f.service.designate_unit(&f.ctx, "NORTE", "A", &women).unwrap();
    let man = f.man("Carlos");
    let woman = f.admit_as("Dora", "female", "1990-01-01", "remand_order");
    let (rule, detail) = refusal(refused_without_writing(&f, || f.place_now(&man, "A-1")));
    assert_eq!(rule, "housing.designation");
    assert!(detail.contains("designated for women"), "{detail}");
    f.place_now(&woman, "A-1").expect("a woman in a unit for women");
}

#[test]
fn classification_is_kept_as_history_and_names_cellmates_to_separate() {
    let f = fixture();
    let a = f.man("Ana");
    let b = f.man("Beto");
    f.place_now(&a, "A-1").unwrap();
    f.place_now(&b, "A-1").unwrap();
    let convicted = ClassifyRequest {
        legal_status: LegalStatus::Convicted,
        regime: Regime::Criminal,
        security_level: SecurityLevel::High,
        vulnerabilities: vec!["elderly".parse().unwrap()],
        note: Some("sentenced by Juzgado 1".parse().unwrap()),
    };
    let classified = f.service.classify(&f.ctx, &a, &convicted).unwrap();
    assert_eq!(classified.category.status, LegalStatus::Convicted);
    assert_eq!(classified.cellmates_to_separate, vec![b.clone()]);
    f.service
        .classify(&f.later(1), &a, &ClassifyRequest { security_level: SecurityLevel::Medium, ..convicted })
        .unwrap();
    let housing = f.service.person_housing(&a, f.later(2).now).unwrap();
    assert_eq!(housing.classifications.len(), 2);
    assert_eq!(housing.classifications[0].security_level, SecurityLevel::High);
    // The stay now carries the new category: an untried man is refused in A-1.
    let c = f.man("Carlos");
    let (rule, _) = refusal(refused_without_writing(&f, || f.place_now(&c, "A-1")));
    assert_eq!(rule, "housing.category");
}

#[test]
fn a_keep_apart_rule_between_two_people_applies_at_its_scope() {
    let f = fixture();
    let a = f.man("Ana");
    let b = f.man("Beto");
    f.place_now(&a, "A-1").unwrap();
    let id = f.rule(person(&a), person(&b), Scope::Cell, None);
    let (rule, detail) = refusal(refused_without_writing(&f, || f.place_now(&b, "A-1")));
    assert_eq!(rule, "housing.keep_apart");
    assert!(detail.contains(&format!("keep-apart rule {id}")) && detail.contains(&a), "{detail}");
    f.place_now(&b, "A-2").expect("another cell is far enough at cell scope");
}

#[test]
fn a_unit_scope_rule_keeps_people_out_of_the_whole_unit() {
    let f = fixture();
    let a = f.man("Ana");
    let b = f.man("Beto");
    f.place_now(&a, "A-1").unwrap();
    f.rule(person(&b), person(&a), Scope::Unit, None);
    let (rule, detail) = refusal(refused_without_writing(&f, || f.place_now(&b, "A-2")));
    assert_eq!(rule, "housing.keep_apart");
    assert!(detail.contains("unit"), "{detail}");
}

#[test]
fn a_facility_scope_rule_refuses_the_transfer_and_the_placement() {
    let f = fixture();
    let a = f.man("Ana");
    let b = f.man("Beto");
    let mut sur = admission_json("SUR", "Carlos", "Rivas", "2026-03-01T08:00:00Z");
    sur["identity"]["documents"][0]["number"] = "sur-1".into();
    let c = f.service.admit(&f.ctx, &serde_json::from_value(sur).unwrap()).unwrap().person;
    f.rule(person(&a), person(&c), Scope::Facility, None);
    let transfer = MovementKind::Transfer { to: "SUR".into() };
    let (rule, detail) = refusal(refused_without_writing(&f, || f.try_move(&a, transfer.clone(), NOW)));
    assert_eq!(rule, "housing.keep_apart");
    assert!(detail.contains(&c), "{detail}");
    f.try_move(&b, transfer, NOW).expect("someone else may go");
}

#[test]
fn rival_groups_do_not_share_a_cell_and_an_ended_affiliation_no_longer_counts() {
    let f = fixture();
    f.service.add_group(&f.ctx, &"MS13".parse().unwrap(), &"Mara Salvatrucha".parse().unwrap()).unwrap();
    f.service.add_group(&f.ctx, &"B18S".parse().unwrap(), &"Barrio 18 Sureños".parse().unwrap()).unwrap();
    let a = f.man("Ana");
    let b = f.man("Beto");
    let assessed = now().date_naive();
    for (who, code) in [(&a, "MS13"), (&b, "B18S")] {
        let request = AffiliationRequest {
            group: code.parse().unwrap(),
            affiliated: true,
            source: "intake interview".parse().unwrap(),
            assessed_on: assessed,
        };
        f.service.affiliate(&f.ctx, who, &request).unwrap();
    }
    f.rule(group("MS13"), group("B18S"), Scope::Cell, None);
    f.place_now(&a, "A-1").unwrap();
    let (rule, detail) = refusal(refused_without_writing(&f, || f.place_now(&b, "A-1")));
    assert_eq!(rule, "housing.keep_apart");
    assert!(detail.contains("group MS13") && detail.contains(&a), "{detail}");
    let left = AffiliationRequest {
        group: "B18S".parse().unwrap(),
        affiliated: false,
        source: "renounced".parse().unwrap(),
        assessed_on: assessed,
    };
    f.service.affiliate(&f.ctx, &b, &left).unwrap();
    f.place_now(&b, "A-1").expect("no longer a member of the rival group");
}

#[test]
fn an_expired_rule_stops_applying_but_stays_in_the_history() {
    let f = fixture();
    let a = f.man("Ana");
    let b = f.man("Beto");
    f.place_now(&a, "A-1").unwrap();
    let id = f.rule(person(&a), person(&b), Scope::Cell, Some(now() + Duration::hours(1)));
    let later = f.later(2);
    let request =
        service::custody::MovementRequest { person: b.clone(), kind: place("A-1", None), at: None, note: None };
    f.service.record_movement(&later, &request).expect("the rule expired an hour ago");
    let rules = f.service.keep_apart_rules(later.now).unwrap();
    let rule = rules.iter().find(|r| r.id == id).expect("still listed");
    assert!(!rule.in_force);
}

#[test]
fn a_lifted_rule_stops_applying() {
    let f = fixture();
    let a = f.man("Ana");
    let b = f.man("Beto");
    f.place_now(&a, "A-1").unwrap();
    let id = f.rule(person(&a), person(&b), Scope::Cell, None);
    refused_without_writing(&f, || f.place_now(&b, "A-1"));
    f.service.end_keep_apart(&f.ctx, id, "threat assessed as over").unwrap();
    f.place_now(&b, "A-1").expect("lifted");
    let again = f.service.end_keep_apart(&f.ctx, id, "twice");
    assert!(matches!(again, Err(ServiceError::Refused { rule: "housing.rule_not_in_force", .. })));
}

#[test]
fn the_capacity_line_refuses_until_a_director_overrides_and_the_override_is_audited() {
    let f = fixture();
    let line = PolicyRequest { capacity_line: Some(CapacityLine::Beds), adult_age: None };
    f.service.set_housing_policy(&f.ctx, "NORTE", &line).unwrap();
    let people: Vec<String> = ["Ana", "Beto", "Carlos"].iter().map(|n| f.man(n)).collect();
    f.place_now(&people[0], "A-1").unwrap();
    f.place_now(&people[1], "A-1").unwrap();
    let (rule, detail) = refusal(refused_without_writing(&f, || f.place_now(&people[2], "A-1")));
    assert_eq!(rule, "housing.capacity_line");
    assert!(detail.contains("beds") && detail.contains("allows 2"), "{detail}");

    let expired = OverrideRequest { cell: None, reason: "x".parse().unwrap(), expires_at: now() - Duration::hours(1) };
    assert!(matches!(f.service.record_override(&f.ctx, "NORTE", &expired), Err(ServiceError::Invalid(_))));
    let request = OverrideRequest {
        cell: Some("A-1".into()),
        reason: "storm damage in unit B".parse().unwrap(),
        expires_at: now() + Duration::days(7),
    };
    let granted = f.service.record_override(&f.ctx, "NORTE", &request).unwrap();
    let placed = f.place_now(&people[2], "A-1").expect("allowed by the override");
    assert_eq!(placed.capacity_override, Some(granted.id));
    let events = f.service.audit_events(0, 10_000).unwrap();
    assert!(events.iter().any(|e| e.action == "housing.override" && e.payload["reason"] == "storm damage in unit B"));
    let placement = events.iter().find(|e| e.seq == placed.audit_seq).unwrap();
    assert_eq!(placement.payload["capacity_override"], granted.id, "{}", placement.payload);
    let listed = f.service.capacity_overrides(None).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].cell.as_deref(), Some("A-1"));
    assert!(f.verify().broken.is_none());
}

#[test]
fn allocation_places_everyone_it_can_and_says_why_not_for_the_rest() {
    let f = fixture();
    let line = PolicyRequest { capacity_line: Some(CapacityLine::Beds), adult_age: None };
    f.service.set_housing_policy(&f.ctx, "NORTE", &line).unwrap();
    // have 2 beds each, A-SOLO one: five places for six people.
    let people: Vec<String> = ["Ana", "Beto", "Carlos", "Dario", "Elias", "Fabio"].iter().map(|n| f.man(n)).collect();
    f.rule(person(&people[0]), person(&people[1]), Scope::Cell, None);
    let before = f.snapshot();
    let dry = f.service.allocate(&f.ctx, "NORTE", &AllocateRequest { people: None, dry_run: true }).unwrap();
    assert_eq!(f.snapshot(), before, "a dry run writes nothing");
    assert_eq!((dry.placed.len(), dry.unplaced.len()), (5, 1));
    assert_eq!(dry.unplaced[0].rule, "housing.capacity_line", "{:?}", dry.unplaced);
    let done = f.service.allocate(&f.ctx, "NORTE", &AllocateRequest::default()).unwrap();
    assert_eq!(done.placed.len(), 5);
    let cell_of = |p: &str| done.placed.iter().find(|x| x.person == p).map(|x| x.cell.clone());
    if let (Some(a), Some(b)) = (cell_of(&people[0]), cell_of(&people[1])) {
        assert_ne!(a, b, "the keep-apart rule holds");
    }
    for placement in &done.placed {
        let w = f.service.whereabouts(&placement.person, f.ctx.now).unwrap().unwrap();
        assert_eq!(w.cell.as_deref(), Some(placement.cell.as_str()));
    }
    assert!(f.verify().broken.is_none());
}

#[test]
fn a_count_with_a_discrepancy_clears_only_once_every_absence_is_explained() {
    let f = fixture();
    let people: Vec<String> = ["Ana", "Beto", "Carlos"].iter().map(|n| f.man(n)).collect();
    f.place_now(&people[0], "A-1").unwrap();
    f.place_now(&people[1], "A-1").unwrap();
    f.place_now(&people[2], "A-2").unwrap();
    let ctx = f.later(1);
    // Out at court: not expected in the cell.
    let out = service::custody::MovementRequest {
        person: people[2].clone(),
        kind: MovementKind::Out { reason: OutReason::Court },
        at: None,
        note: None,
    };
    f.service.record_movement(&ctx, &out).unwrap();
    let count = f.service.start_count(&ctx, &StartCount { facility: "NORTE".into(), unit: Some("A".into()) }).unwrap();
    let expected: Vec<(String, u32)> = count.cells.iter().map(|c| (c.cell.clone(), c.expected)).collect();
    assert_eq!(expected, vec![("A-1".into(), 2), ("A-2".into(), 0), ("A-SOLO".into(), 0)]);
    let entries =
        [("A-1", 1), ("A-2", 1), ("A-SOLO", 0)].map(|(cell, counted)| CellCount { cell: cell.into(), counted });
    let entered = f.service.enter_counts(&ctx, count.id, &entries).unwrap();
    assert_eq!(entered.outstanding, vec!["A-1".to_string(), "A-2".to_string()]);
    let (rule, _) = refusal(f.service.clear_count(&ctx, count.id).unwrap_err());
    assert_eq!(rule, "count.unresolved");
    // Beto was counted in A-2: found elsewhere, and the move is recorded.
    let found = Resolve {
        person: people[1].clone(),
        explanation: Explanation::FoundElsewhere { cell: "A-2".into(), returned: false },
        note: None,
    };
    let resolved = f.service.resolve_count(&ctx, count.id, &found).unwrap();
    assert!(resolved.outstanding.is_empty(), "{:?}", resolved.outstanding);
    let w = f.service.whereabouts(&people[1], ctx.now).unwrap().unwrap();
    assert_eq!(w.cell.as_deref(), Some("A-2"));
    let cleared = f.service.clear_count(&ctx, count.id).unwrap();
    assert_eq!(cleared.state, "cleared");
    let (rule, _) = refusal(f.service.enter_counts(&ctx, count.id, &entries).unwrap_err());
    assert_eq!(rule, "count.cleared");
    assert_eq!(f.service.counts_of(None, i64::MAX, 10, ctx.now).unwrap().len(), 1, "history kept");
}

#[test]
fn a_person_unaccounted_for_at_a_count_opens_an_escape_incident() {
    let f = fixture();
    let a = f.man("Ana");
    f.place_now(&a, "A-1").unwrap();
    let ctx = f.later(1);
    let count = f.service.start_count(&ctx, &StartCount { facility: "NORTE".into(), unit: None }).unwrap();
    let entries: Vec<CellCount> = count.cells.iter().map(|c| CellCount { cell: c.cell.clone(), counted: 0 }).collect();
    f.service.enter_counts(&ctx, count.id, &entries).unwrap();
    let missing =
        Resolve { person: a.clone(), explanation: Explanation::Unaccounted, note: Some("bars cut".parse().unwrap()) };
    let resolved = f.service.resolve_count(&ctx, count.id, &missing).unwrap();
    let cell = resolved.cells.iter().find(|c| c.cell == "A-1").unwrap();
    let incident = cell.resolutions[0].incident.clone().expect("an escape incident");
    assert!(incident.starts_with("INC-NORTE-"), "{incident}");
    assert!(resolved.outstanding.is_empty());
    f.service.clear_count(&ctx, count.id).unwrap();
    let events = f.service.audit_events(0, 10_000).unwrap();
    assert!(events.iter().any(|e| e.subject == incident), "the incident is on the record");
}

/// The service's refusals agree with the independent plan checker: for random people, categories,
/// groups, rules and capacity lines, every placement the service refuses is one the checker finds
/// forbidden, and every placement it accepts is one the checker finds legal.
#[test]
fn every_refused_placement_is_truly_forbidden_and_every_accepted_one_is_legal() {
    let mut outcomes = std::collections::BTreeMap::new();
    for seed in 0..12u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let f = fixture();
        let line = [None, Some(CapacityLine::Beds), Some(CapacityLine::Declared)][rng.random_range(0..3)];
        f.service.set_housing_policy(&f.ctx, "NORTE", &PolicyRequest { capacity_line: line, adult_age: None }).unwrap();
        if rng.random_bool(0.3) {
            f.service
                .designate_unit(&f.ctx, "NORTE", "A", &Designation { sex: Some(Sex::Male), ..Designation::OPEN })
                .unwrap();
        }
        for code in ["G1", "G2"] {
            f.service.add_group(&f.ctx, &code.parse().unwrap(), &code.parse().unwrap()).unwrap();
        }
        let mut people = Vec::new();
        for i in 0..8 {
            let sex = if rng.random_bool(0.2) { "female" } else { "male" };
            let born = if rng.random_bool(0.2) { "2010-01-01" } else { "1990-01-01" };
            let basis = if rng.random_bool(0.3) { "judgment" } else { "remand_order" };
            let number = f.admit_as(&format!("P{i}"), sex, born, basis);
            if rng.random_bool(0.4) {
                let request = AffiliationRequest {
                    group: ["G1", "G2"][rng.random_range(0..2)].parse().unwrap(),
                    affiliated: true,
                    source: "file".parse().unwrap(),
                    assessed_on: now().date_naive(),
                };
                f.service.affiliate(&f.ctx, &number, &request).unwrap();
            }
            people.push(number);
        }
        f.rule(group("G1"), group("G2"), Scope::Cell, None);
        for _ in 0..2 {
            let (a, b) = (rng.random_range(0..8), rng.random_range(0..8));
            if a != b {
                f.rule(person(&people[a]), person(&people[b]), Scope::ALL[rng.random_range(0..2)], None);
            }
        }
        for number in &people {
            let cell = ["A-1", "A-2", "A-SOLO"][rng.random_range(0..3)];
            let facility = f.service.store().read().unwrap().facility_by_code("NORTE").unwrap().unwrap();
            let (instance, numbers) = {
                let mut tx = f.service.store().read().unwrap();
                service::allocate::instance_of(&mut tx, &facility, Some(std::slice::from_ref(number)), f.ctx.now)
                    .unwrap()
            };
            let id = *numbers.keys().next().unwrap();
            let cell_id = instance.cells.iter().find(|c| c.code == cell).unwrap().id;
            let plan = Plan { placements: vec![(id, cell_id)], unplaced: vec![] };
            let forbidden = !check(&instance, &plan).is_empty();
            let result = f.place_now(number, cell);
            assert_eq!(
                result.is_err(),
                forbidden,
                "seed {seed}: placing {number} in {cell}: service said {result:?}, checker said {:?}",
                check(&instance, &plan)
            );
            let outcome = match result {
                Ok(_) => "accepted",
                Err(ServiceError::Refused { rule, .. }) => rule,
                Err(e) => panic!("seed {seed}: {e:?}"),
            };
            *outcomes.entry(outcome).or_insert(0) += 1;
        }
    }
    // The random cases reach acceptances and each kind of refusal, so the agreement means something.
    let kinds = [
        "accepted",
        "housing.category",
        "housing.keep_apart",
        "housing.capacity_line",
        "housing.designation",
        "estate.single_cell",
    ];
    for outcome in kinds {
        assert!(outcomes.contains_key(outcome), "no case ended {outcome}: {outcomes:?}");
    }
}

#[test]
fn movements_recorded_during_a_count_explain_the_differences_they_cause() {
    let f = fixture();
    let people: Vec<String> = ["Ana", "Beto", "Carlos"].iter().map(|n| f.man(n)).collect();
    f.place_now(&people[0], "A-1").unwrap();
    f.place_now(&people[1], "A-1").unwrap();
    let ctx = f.later(1);
    let count = f.service.start_count(&ctx, &StartCount { facility: "NORTE".into(), unit: Some("A".into()) }).unwrap();
    // After the count starts Ana goes to court and Carlos is placed in A-2.
    let later = f.later(2);
    let record = |person: &str, kind: MovementKind| {
        let request = service::custody::MovementRequest { person: person.into(), kind, at: None, note: None };
        f.service.record_movement(&later, &request).unwrap();
    };
    record(&people[0], MovementKind::Out { reason: OutReason::Court });
    record(&people[2], place("A-2", None));
    let entries =
        [("A-1", 1), ("A-2", 1), ("A-SOLO", 0)].map(|(cell, counted)| CellCount { cell: cell.into(), counted });
    let entered = f.service.enter_counts(&later, count.id, &entries).unwrap();
    assert_eq!(entered.outstanding, vec!["A-1".to_string(), "A-2".to_string()]);
    let explain = |person: &str, explanation: Explanation| Resolve { person: person.into(), explanation, note: None };
    let refused = f.service.resolve_count(&later, count.id, &explain(&people[1], Explanation::MovedOnRecord));
    assert!(matches!(refused, Err(ServiceError::Refused { rule: "count.not_moved", .. })), "{refused:?}");
    f.service.resolve_count(&later, count.id, &explain(&people[0], Explanation::MovedOnRecord)).unwrap();
    let arrived = Explanation::ArrivedOnRecord { cell: "A-2".into() };
    let resolved = f.service.resolve_count(&later, count.id, &explain(&people[2], arrived)).unwrap();
    assert!(resolved.outstanding.is_empty(), "{:?}", resolved.outstanding);
    f.service.clear_count(&later, count.id).unwrap();
    let events = f.service.audit_events(0, 10_000).unwrap();
    assert!(!events.iter().any(|e| e.action == "incident.report"), "nobody was reported escaped");
}

#[test]
fn a_backdated_placement_cannot_slip_under_a_rule_recorded_since() {
    let f = fixture();
    let a = f.man("Ana");
    let b = f.man("Beto");
    f.place_now(&a, "A-1").unwrap();
    f.rule(person(&a), person(&b), Scope::Cell, None);
    // Dated an hour before the rule was recorded, the placement would still run until now.
    let (rule, _) = refusal(refused_without_writing(&f, || f.try_move(&b, place("A-1", None), "2026-03-01T11:00:00Z")));
    assert_eq!(rule, "housing.keep_apart");
    let women = Designation { sex: Some(Sex::Female), ..Designation::OPEN };
    f.service.designate_unit(&f.ctx, "NORTE", "A", &women).unwrap();
    let c = f.man("Carlos");
    let (rule, _) = refusal(refused_without_writing(&f, || f.try_move(&c, place("A-2", None), "2026-03-01T11:00:00Z")));
    assert_eq!(rule, "housing.designation");
}
