use proptest::prelude::*;

use super::*;
use crate::person::Sex;
use crate::separation::{AgeGroup, Category, Designation, KeepApart, LegalStatus, Party, Regime, Scope, Violation};

const fn category(sex: Sex, status: LegalStatus) -> Category {
    Category { sex, age: AgeGroup::Adult, status, regime: Regime::Criminal }
}

const MAN_UNTRIED: Category = category(Sex::Male, LegalStatus::Untried);
const MAN_CONVICTED: Category = category(Sex::Male, LegalStatus::Convicted);
const WOMAN_UNTRIED: Category = category(Sex::Female, LegalStatus::Untried);

fn member(person: PersonId, category: Category, groups: &[i64]) -> Member {
    Member { person, category, groups: groups.to_vec() }
}

fn candidate(person: PersonId, category: Category, groups: &[i64]) -> Candidate {
    Candidate { member: member(person, category, groups), facility: 1 }
}

fn cell(id: CellId, unit: UnitId, places: u32) -> CellSlot {
    CellSlot {
        id,
        code: format!("C-{id}"),
        unit,
        facility: 1,
        single: false,
        in_use: true,
        limit: Some(places),
        balance_capacity: places,
        designation: Designation::OPEN,
        occupants: vec![],
    }
}

fn rule(id: i64, a: Party, b: Party, scope: Scope) -> KeepApart {
    KeepApart { id, a, b, scope }
}

fn cell_of(plan: &Plan, person: PersonId) -> Option<CellId> {
    plan.placements.iter().find(|(p, _)| *p == person).map(|(_, c)| *c)
}

/// Allocate, insist the independent check finds nothing, and return the plan.
fn allocate_checked(instance: &Instance) -> Plan {
    let plan = allocate(instance);
    assert_eq!(check(instance, &plan), vec![], "plan {plan:?}");
    plan
}

#[test]
fn rival_groups_are_kept_apart_and_each_fills_whole_cells() {
    let mut people = Vec::new();
    for k in 0..4 {
        people.push(candidate(100 + k, MAN_UNTRIED, &[1]));
        people.push(candidate(200 + k, MAN_UNTRIED, &[2]));
        people.push(candidate(300 + k, MAN_UNTRIED, &[]));
        people.push(candidate(400 + k, MAN_UNTRIED, &[]));
    }
    let instance = Instance {
        cells: (1..=4).map(|id| cell(id, 1, 4)).collect(),
        people,
        rules: vec![rule(9, Party::Group(1), Party::Group(2), Scope::Cell)],
    };
    let plan = allocate_checked(&instance);
    let score = objective(&instance, &plan);
    assert_eq!((score.placed, score.max_ratio, score.group_cells), (16, 1.0, 2));
    let ones: std::collections::HashSet<_> = (0..4).map(|k| cell_of(&plan, 100 + k)).collect();
    let twos: std::collections::HashSet<_> = (0..4).map(|k| cell_of(&plan, 200 + k)).collect();
    assert_eq!((ones.len(), twos.len()), (1, 1));
    assert!(ones.is_disjoint(&twos));
}

#[test]
fn a_group_already_in_a_cell_is_joined_there_rather_than_spread() {
    let mut people: Vec<Candidate> = (0..2).map(|k| candidate(100 + k, MAN_UNTRIED, &[1])).collect();
    people.extend((0..4).map(|k| candidate(200 + k, MAN_UNTRIED, &[])));
    let mut instance = Instance {
        cells: (1..=3).map(|id| cell(id, 1, 10)).collect(),
        people,
        rules: vec![rule(9, Party::Group(1), Party::Group(2), Scope::Cell)],
    };
    instance.cells[2].occupants = vec![member(1, MAN_UNTRIED, &[1])];
    let plan = allocate_checked(&instance);
    let score = objective(&instance, &plan);
    assert_eq!((score.placed, score.max_ratio, score.group_cells), (6, 0.3, 1), "{plan:?}");
}

#[test]
fn the_fullest_cell_is_kept_as_empty_as_possible() {
    let instance = Instance {
        cells: (1..=5).map(|id| cell(id, 1, 10)).collect(),
        people: (0..10).map(|k| candidate(100 + k, MAN_UNTRIED, &[])).collect(),
        rules: vec![],
    };
    let plan = allocate_checked(&instance);
    assert_eq!(objective(&instance, &plan).max_ratio, 0.2);
}

#[test]
fn empty_cells_are_shared_between_categories_so_as_to_place_the_most() {
    // 8 people, 8 places in cells of 3, 3 and 2: no split gives both categories exactly 4.
    let instance = Instance {
        cells: vec![cell(1, 1, 3), cell(2, 1, 3), cell(3, 1, 2)],
        people: (0..8).map(|k| candidate(100 + k, if k < 4 { MAN_UNTRIED } else { MAN_CONVICTED }, &[])).collect(),
        rules: vec![],
    };
    let plan = allocate_checked(&instance);
    assert_eq!(objective(&instance, &plan).placed, 7);
    assert_eq!(plan.unplaced[0].rule, "housing.capacity_line");
}

#[test]
fn a_unit_designated_for_women_takes_no_man() {
    let mut cells: Vec<CellSlot> = (1..=4).map(|id| cell(id, if id <= 2 { 1 } else { 2 }, 4)).collect();
    for c in &mut cells[..2] {
        c.designation = Designation { sex: Some(Sex::Female), ..Designation::OPEN };
    }
    let mut people: Vec<Candidate> = (0..6).map(|k| candidate(100 + k, MAN_UNTRIED, &[])).collect();
    people.extend((0..6).map(|k| candidate(200 + k, WOMAN_UNTRIED, &[])));
    let instance = Instance { cells, people, rules: vec![] };
    let plan = allocate_checked(&instance);
    for k in 0..6 {
        assert!(matches!(cell_of(&plan, 100 + k), Some(3 | 4)), "{plan:?}");
    }
    assert_eq!(objective(&instance, &plan).placed, 12);
}

#[test]
fn people_under_a_unit_rule_go_to_different_units() {
    let instance = Instance {
        cells: vec![cell(1, 1, 4), cell(2, 1, 4), cell(3, 2, 4)],
        people: vec![candidate(1, MAN_UNTRIED, &[]), candidate(2, MAN_UNTRIED, &[])],
        rules: vec![rule(5, Party::Person(1), Party::Person(2), Scope::Unit)],
    };
    let plan = allocate_checked(&instance);
    let units: Vec<_> =
        [1, 2].iter().map(|&p| instance.cells.iter().find(|c| Some(c.id) == cell_of(&plan, p)).unwrap().unit).collect();
    assert_ne!(units[0], units[1]);
}

/// The only rule and reason given to the one candidate of `instance`, who cannot be placed.
fn refusal(instance: &Instance) -> (String, String) {
    let plan = allocate_checked(instance);
    assert!(plan.placements.is_empty(), "{plan:?}");
    (plan.unplaced[0].rule.clone(), plan.unplaced[0].reason.clone())
}

#[test]
fn a_person_with_no_legal_place_is_unplaced_with_the_rule_that_stops_them() {
    let one = |cells: Vec<CellSlot>, rules| Instance { cells, people: vec![candidate(50, MAN_UNTRIED, &[7])], rules };

    let mut full = cell(1, 1, 1);
    full.occupants = vec![member(1, MAN_UNTRIED, &[])];
    assert_eq!(refusal(&one(vec![full.clone()], vec![])).0, "housing.capacity_line");

    let mut roomy = cell(2, 1, 5);
    roomy.occupants = vec![member(8, MAN_UNTRIED, &[])];
    let (rule_name, reason) = refusal(&one(
        vec![full.clone(), roomy.clone()],
        vec![rule(42, Party::Group(7), Party::Person(8), Scope::Cell)],
    ));
    assert_eq!(rule_name, "housing.keep_apart");
    assert!(reason.contains("rule 42") && reason.contains("person 8") && reason.contains("C-2"), "{reason}");

    let mut women = cell(3, 2, 5);
    women.designation = Designation { sex: Some(Sex::Female), status: Some(LegalStatus::Untried), ..Designation::OPEN };
    let (rule_name, reason) = refusal(&one(vec![women.clone()], vec![]));
    assert_eq!(rule_name, "housing.designation");
    assert!(reason.contains("women, untried"), "{reason}");

    let mut broken = cell(4, 1, 5);
    broken.in_use = false;
    assert_eq!(refusal(&one(vec![broken], vec![])).0, "estate.cell_out_of_order");

    let mut convicted = cell(5, 1, 5);
    convicted.occupants = vec![member(9, MAN_CONVICTED, &[])];
    let (rule_name, reason) = refusal(&one(vec![full.clone(), convicted], vec![]));
    assert_eq!(rule_name, "housing.capacity_line", "a full cell that fits outranks other categories: {reason}");

    let mut convicted = cell(5, 1, 5);
    convicted.occupants = vec![member(9, MAN_CONVICTED, &[])];
    let (rule_name, reason) = refusal(&one(vec![convicted], vec![]));
    assert_eq!(rule_name, "housing.category");
    assert!(reason.contains("legal status"), "{reason}");

    let mut single = cell(6, 1, 1);
    single.single = true;
    single.occupants = vec![member(1, MAN_UNTRIED, &[])];
    assert_eq!(refusal(&one(vec![single], vec![])).0, "estate.single_cell");

    assert_eq!(refusal(&one(vec![], vec![])).0, "housing.no_cell");

    // Every cell that fits is in a unit designated for men, untried: the reason says so.
    let mut men = full;
    men.designation = Designation { sex: Some(Sex::Male), status: Some(LegalStatus::Untried), ..Designation::OPEN };
    let (rule_name, reason) = refusal(&one(vec![men, women], vec![]));
    assert_eq!(rule_name, "housing.capacity_line");
    assert!(reason.contains("designated for men, untried"), "{reason}");
}

#[test]
fn people_bound_by_person_rules_are_spread_so_that_everyone_fits() {
    // Two cells of 2, four people; 1 and 2 must not share a cell, nor 1 and 3.
    let instance = Instance {
        cells: vec![cell(1, 1, 2), cell(2, 1, 2)],
        people: (1..=4).map(|p| candidate(p, MAN_UNTRIED, &[])).collect(),
        rules: vec![
            rule(1, Party::Person(1), Party::Person(2), Scope::Cell),
            rule(2, Party::Person(1), Party::Person(3), Scope::Cell),
        ],
    };
    let plan = allocate_checked(&instance);
    assert_eq!(objective(&instance, &plan).placed, 4, "{plan:?}");
}

/// An instance where the hand-made plans below each break one rule.
fn small_estate() -> Instance {
    let mut cells = vec![cell(1, 1, 2), cell(2, 1, 2), cell(3, 2, 2)];
    cells[1].designation = Designation { sex: Some(Sex::Female), ..Designation::OPEN };
    let mut closed = cell(4, 2, 2);
    closed.in_use = false;
    let mut single = cell(5, 2, 1);
    single.single = true;
    single.limit = None;
    single.balance_capacity = 3;
    let mut elsewhere = cell(6, 3, 5);
    elsewhere.facility = 2;
    let mut none = cell(7, 2, 3);
    none.balance_capacity = 0;
    cells.extend([closed, single, elsewhere, none]);
    cells[0].occupants = vec![member(90, MAN_UNTRIED, &[3])];
    Instance {
        cells,
        people: vec![
            candidate(1, MAN_UNTRIED, &[]),
            candidate(2, MAN_UNTRIED, &[]),
            candidate(3, MAN_CONVICTED, &[]),
            candidate(4, MAN_UNTRIED, &[4]),
        ],
        rules: vec![
            rule(70, Party::Person(2), Party::Person(3), Scope::Unit),
            rule(71, Party::Group(3), Party::Group(4), Scope::Cell),
            rule(72, Party::Person(1), Party::Group(4), Scope::Facility),
        ],
    }
}

fn plan_of(placements: &[(PersonId, CellId)], unplaced: &[PersonId]) -> Plan {
    Plan {
        placements: placements.to_vec(),
        unplaced: unplaced
            .iter()
            .map(|&person| Unplaced { person, rule: "housing.no_cell".into(), reason: String::new() })
            .collect(),
    }
}

fn rules_broken(instance: &Instance, plan: &Plan) -> Vec<&'static str> {
    let mut rules: Vec<_> = check(instance, plan).iter().map(PlanViolation::rule).collect();
    rules.sort_unstable();
    rules.dedup();
    rules
}

#[test]
fn the_checker_catches_each_kind_of_broken_plan() {
    let instance = small_estate();
    let fine = plan_of(&[(1, 3), (2, 5)], &[3, 4]);
    assert_eq!(check(&instance, &fine), vec![]);

    let cases: Vec<(&str, Plan)> = vec![
        ("housing.other_facility", plan_of(&[(1, 6)], &[2, 3, 4])),
        ("estate.cell_out_of_order", plan_of(&[(1, 4)], &[2, 3, 4])),
        ("housing.designation", plan_of(&[(1, 2)], &[2, 3, 4])),
        ("housing.capacity_line", plan_of(&[(1, 1), (2, 1)], &[3, 4])),
        ("housing.capacity_line", plan_of(&[(1, 7)], &[2, 3, 4])),
        ("estate.single_cell", plan_of(&[(1, 5), (2, 5)], &[3, 4])),
        ("housing.category", plan_of(&[(1, 3), (3, 3)], &[2, 4])),
        ("housing.keep_apart", plan_of(&[(2, 3), (3, 5)], &[1, 4])),
        ("housing.keep_apart", plan_of(&[(4, 1)], &[1, 2, 3])),
        ("housing.keep_apart", plan_of(&[(1, 3), (4, 5)], &[2, 3])),
        ("plan.placed_twice", plan_of(&[(1, 3), (1, 5)], &[2, 3, 4])),
        ("plan.placed_and_unplaced", plan_of(&[(1, 3)], &[1, 2, 3, 4])),
        ("plan.unplaced_twice", plan_of(&[], &[1, 2, 3, 4, 4])),
        ("plan.unknown_person", plan_of(&[(99, 3)], &[1, 2, 3, 4])),
        ("plan.unknown_cell", plan_of(&[(1, 99)], &[2, 3, 4])),
        ("plan.missing", plan_of(&[(1, 3)], &[2, 3])),
    ];
    for (rule, plan) in cases {
        let broken = rules_broken(&instance, &plan);
        assert!(broken.contains(&rule), "{rule} not found in {broken:?} for {plan:?}");
        assert_eq!(broken.len(), 1, "{rule}: only that rule is broken, found {broken:?}");
    }
}

#[test]
fn the_checker_names_the_other_party_and_ignores_history_between_occupants() {
    let mut instance = small_estate();
    // Two occupants of cell 1 already break rule 71 between them: that is not the plan's doing.
    instance.cells[0].occupants.push(member(91, MAN_UNTRIED, &[4]));
    instance.cells[0].limit = Some(3);
    instance.cells[0].balance_capacity = 3;
    assert_eq!(check(&instance, &plan_of(&[], &[1, 2, 3, 4])), vec![]);
    let found = check(&instance, &plan_of(&[(4, 1)], &[1, 2, 3]));
    assert_eq!(
        found,
        vec![PlanViolation::Rule {
            person: 4,
            violation: Violation::KeepApart { rule: 71, other: 90, scope: Scope::Cell }
        }]
    );
}

#[test]
fn the_instance_round_trips_through_its_export_format() {
    let instance = small_estate();
    let text = serde_json::to_string(&instance).unwrap();
    let back: Instance = serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), text);
    assert_eq!(allocate(&back), allocate(&instance));
}

// Random estates: every plan passes the independent check, and nobody left unplaced had a legal cell.

const CATEGORIES: [Category; 6] = [
    MAN_UNTRIED,
    MAN_CONVICTED,
    WOMAN_UNTRIED,
    category(Sex::Female, LegalStatus::Convicted),
    Category { sex: Sex::Male, age: AgeGroup::Young, status: LegalStatus::Untried, regime: Regime::Criminal },
    Category { sex: Sex::Male, age: AgeGroup::Adult, status: LegalStatus::Other, regime: Regime::Civil },
];

const DESIGNATIONS: [Designation; 4] = [
    Designation::OPEN,
    Designation { sex: Some(Sex::Female), age: None, status: None, regime: None },
    Designation { sex: Some(Sex::Male), age: None, status: Some(LegalStatus::Untried), regime: None },
    Designation { sex: None, age: None, status: Some(LegalStatus::Convicted), regime: None },
];

/// facility, unit, single, in use, limit, balance capacity, designation, occupants' category,
/// a second category for a mixed cell, occupants' groups.
type CellSpec = (usize, i64, bool, bool, Option<u32>, u32, usize, usize, Option<usize>, Vec<Vec<i64>>);

fn cell_spec() -> impl Strategy<Value = CellSpec> {
    (
        0usize..3,
        0i64..3,
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.9),
        prop::option::weighted(0.85, 0u32..7),
        prop::strategy::Union::new_weighted(vec![(1, Just(0u32).boxed()), (9, (1u32..8).boxed())]),
        prop::strategy::Union::new_weighted(vec![(5, Just(0usize).boxed()), (3, (1usize..4).boxed())]),
        0usize..6,
        prop::option::weighted(0.05, 0usize..6),
        prop::collection::vec(prop::collection::vec(1i64..6, 0..2), 0..4),
    )
}

fn party(people: usize) -> impl Strategy<Value = (bool, usize, i64)> {
    (prop::bool::weighted(0.4), 0..people.max(1), 1i64..6)
}

prop_compose! {
    fn estate()(
        cells in prop::collection::vec(cell_spec(), 0..14),
        people in prop::collection::vec((0usize..3, 0usize..6, prop::collection::vec(1i64..6, 0..3)), 0..40),
        rules in prop::collection::vec((party(60), party(60), 0usize..3), 0..12),
    ) -> Instance {
        let mut everyone = Vec::new();
        let cells: Vec<CellSlot> = cells
            .into_iter()
            .enumerate()
            .map(|(i, (facility, unit, single, in_use, limit, balance, designation, category, other, occupants))| {
                let occupants: Vec<Member> = occupants
                    .into_iter()
                    .enumerate()
                    .map(|(k, groups)| {
                        let person = 1 + everyone.len() as i64;
                        everyone.push(person);
                        let category = if k == 1 { other.unwrap_or(category) } else { category };
                        member(person, CATEGORIES[category], &groups)
                    })
                    .collect();
                CellSlot {
                    id: 500 + i as i64,
                    code: format!("X{i}"),
                    unit: 10 * facility as i64 + unit,
                    facility: facility as i64,
                    single,
                    in_use,
                    limit,
                    balance_capacity: balance,
                    designation: DESIGNATIONS[designation],
                    occupants,
                }
            })
            .collect();
        let people: Vec<Candidate> = people
            .into_iter()
            .enumerate()
            .map(|(k, (facility, category, groups))| {
                let person = 1_000 + k as i64;
                everyone.push(person);
                Candidate { member: member(person, CATEGORIES[category], &groups), facility: facility as i64 }
            })
            .collect();
        let pick = |(group, who, g): (bool, usize, i64)| {
            if group || everyone.is_empty() { Party::Group(g) } else { Party::Person(everyone[who % everyone.len()]) }
        };
        let rules = rules
            .into_iter()
            .enumerate()
            .map(|(r, (a, b, scope))| rule(r as i64 + 1, pick(a), pick(b), Scope::ALL[scope]))
            .collect();
        Instance { cells, people, rules }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_plan_keeps_every_rule_and_accounts_for_everyone(instance in estate()) {
        let plan = allocate(&instance);
        prop_assert_eq!(check(&instance, &plan), vec![]);
        prop_assert_eq!(plan.placements.len() + plan.unplaced.len(), instance.people.len());
        let known = ["housing.keep_apart", "housing.capacity_line", "housing.category", "housing.designation",
            "estate.single_cell", "estate.cell_out_of_order", "housing.no_cell"];
        for unplaced in &plan.unplaced {
            prop_assert!(known.contains(&unplaced.rule.as_str()), "{:?}", unplaced);
            prop_assert!(!unplaced.reason.is_empty());
        }
        let score = objective(&instance, &plan);
        prop_assert_eq!(score.placed as usize, plan.placements.len());
    }

    #[test]
    fn nobody_is_left_unplaced_who_had_a_legal_cell(instance in estate()) {
        let plan = allocate(&instance);
        for unplaced in &plan.unplaced {
            for cell in &instance.cells {
                let mut more = plan.clone();
                more.unplaced.retain(|u| u.person != unplaced.person);
                more.placements.push((unplaced.person, cell.id));
                prop_assert!(!check(&instance, &more).is_empty(), "{} fits in {}", unplaced.person, cell.id);
            }
        }
    }
}
