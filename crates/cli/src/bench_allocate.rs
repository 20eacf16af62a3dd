//! `custodia bench allocate`: a night's intake allocated on the demo estate, timed, and checked
//! by the independent checker. Prints one JSON line; reproduced by docs/BENCHMARKS.md.

use std::path::PathBuf;
use std::time::Instant as Clock;

use clap::ValueEnum;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use domain::allocation::{allocate, check, objective, Candidate, CellSlot, Instance};
use domain::estate::apportion_declared;
use domain::person::Sex;
use domain::separation::{AgeGroup, Category, Designation, KeepApart, LegalStatus, Member, Party, Regime, Scope};
use service::demo::{layouts, Scale};

/// Which demo estate the intake arrives at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Layout {
    /// The empty CECOT facility: 8 units × 32 cells, 40,000 declared places.
    Cecot,
    /// All 25 facilities of the national demo, each filled to 95 % of its line.
    National,
}

/// Facilities of the national demo that hold women.
const WOMEN: &[&str] = &["ILOP", "CDMUJ"];
/// Rival groups; each pair is kept out of the same cell.
const GROUPS: i64 = 12;
/// Relative sizes of the groups: two large ones and many small ones, as in most systems.
const GROUP_WEIGHTS: [u32; GROUPS as usize] = [30, 25, 10, 8, 6, 5, 4, 3, 3, 2, 2, 2];
/// Share of people affiliated with a rival group.
const AFFILIATED: f64 = 0.4;
/// Share of untried people among the intake and the cells filled before it.
const UNTRIED: f64 = 0.7;
/// Person-to-person keep-apart rules (a few at unit scope).
const PERSON_RULES: usize = 500;
/// New people's ids start here; people already held count up from 1.
const NEW_PEOPLE: i64 = 100_000_000;

/// Generate the instance, allocate it (timed), check the plan and print one JSON line.
pub fn run(layout: Layout, people: Option<usize>, seed: u64, export: Option<PathBuf>) -> anyhow::Result<()> {
    let people = people.unwrap_or(match layout {
        Layout::Cecot => 40_000,
        Layout::National => 5_000,
    });
    let instance = instance(layout, people, seed);
    if let Some(path) = export {
        std::fs::write(&path, serde_json::to_vec(&instance)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    let started = Clock::now();
    let plan = allocate(&instance);
    let seconds = started.elapsed().as_secs_f64();
    let violations = check(&instance, &plan);
    let score = objective(&instance, &plan);
    // Keys in a fixed order, for people reading the line.
    let fields = [
        ("people", json!(people)),
        ("placed", json!(score.placed)),
        ("unplaced", json!(score.unplaced)),
        ("violations", json!(violations.len())),
        ("seconds", json!((seconds * 10_000.0).round() / 10_000.0)),
        ("max_ratio", json!(score.max_ratio)),
        ("group_cells", json!(score.group_cells)),
    ];
    let fields: Vec<String> = fields.iter().map(|(key, value)| format!("\"{key}\":{value}")).collect();
    println!("{{{}}}", fields.join(","));
    if let Some(first) = violations.first() {
        return Err(crate::Exit(1, format!("the plan breaks {} rules, first: {first:?}", violations.len())).into());
    }
    Ok(())
}

fn group(rng: &mut ChaCha8Rng) -> Option<i64> {
    if !rng.random_bool(AFFILIATED) {
        return None;
    }
    let total: u32 = GROUP_WEIGHTS.iter().sum();
    let mut pick = rng.random_range(0..total);
    for (g, &weight) in GROUP_WEIGHTS.iter().enumerate() {
        if pick < weight {
            return Some(g as i64 + 1);
        }
        pick -= weight;
    }
    None
}

fn status(rng: &mut ChaCha8Rng) -> LegalStatus {
    if rng.random_bool(UNTRIED) {
        LegalStatus::Untried
    } else {
        LegalStatus::Convicted
    }
}

/// The instance for a layout, the same for the same seed.
pub fn instance(layout: Layout, people: usize, seed: u64) -> Instance {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let scale = match layout {
        Layout::Cecot => Scale::Cecot,
        Layout::National => Scale::National,
    };
    let opened = chrono::DateTime::from_timestamp(1_577_836_800, 0).expect("a valid time");
    let facilities = layouts(scale, opened);
    let mut cells = Vec::new();
    let mut declared = Vec::new();
    let mut sexes = Vec::new();
    let mut held: i64 = 0;
    for (f, facility) in facilities.iter().enumerate() {
        let facility_id = f as i64 + 1;
        let sex = if WOMEN.contains(&facility.code.as_str()) { Sex::Female } else { Sex::Male };
        let dims: Vec<_> = facility.units.iter().flat_map(|u| &u.cells).map(|c| c.dimensions).collect();
        let mut rated = apportion_declared(facility.declared_capacity, &dims).into_iter();
        let first = cells.len();
        for (u, unit) in facility.units.iter().enumerate() {
            // A unit designation or two for realism: remand units for untried people.
            let mut designation = Designation::OPEN;
            if layout == Layout::National && u == 0 && (facility.code == "LAESP" || facility.code == "CDMUJ") {
                designation = Designation { sex: Some(sex), status: Some(LegalStatus::Untried), ..Designation::OPEN };
            }
            let last_unit = u + 1 == facility.units.len();
            for (c, cell) in unit.cells.iter().enumerate() {
                let places = u32::try_from(rated.next().unwrap_or(0)).unwrap_or(u32::MAX);
                cells.push(CellSlot {
                    id: cells.len() as i64 + 1,
                    code: format!("{} {}", facility.code, cell.code),
                    unit: facility_id * 100 + u as i64 + 1,
                    facility: facility_id,
                    single: cell.dimensions.single,
                    // As in the demo: the first two cells of the last unit of a national facility are out of order.
                    in_use: !(layout == Layout::National && facility.code != "CECOT" && last_unit && c < 2),
                    limit: Some(places),
                    balance_capacity: places,
                    designation,
                    occupants: Vec::new(),
                });
            }
        }
        if layout == Layout::National {
            // Fill cell by cell to 95 % of the line, one category per cell; some cells hold one group.
            let mut left = facility.declared_capacity * 95 / 100;
            for cell in &mut cells[first..] {
                if left == 0 {
                    break;
                }
                if !cell.in_use {
                    continue;
                }
                let n = u64::from(cell.limit.unwrap_or(0)).min(left);
                left -= n;
                let status = cell.designation.status.unwrap_or_else(|| status(&mut rng));
                let category = Category { sex, age: AgeGroup::Adult, status, regime: Regime::Criminal };
                let groups: Vec<i64> = group(&mut rng).into_iter().collect();
                cell.occupants = (0..n)
                    .map(|_| {
                        held += 1;
                        Member { person: held, category, groups: groups.clone() }
                    })
                    .collect();
            }
        }
        declared.push(facility.declared_capacity);
        sexes.push(sex);
    }
    // The intake, spread over facilities in proportion to their declared capacity (largest remainder).
    let total: u64 = declared.iter().sum();
    let exact: Vec<f64> = declared.iter().map(|&d| people as f64 * d as f64 / total as f64).collect();
    let mut share: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut order: Vec<usize> = (0..share.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
    for &f in order.iter().cycle().take(people - share.iter().sum::<usize>()) {
        share[f] += 1;
    }
    let mut intake = Vec::with_capacity(people);
    let mut by_facility: Vec<Vec<i64>> = vec![Vec::new(); share.len()];
    for (f, &n) in share.iter().enumerate() {
        for _ in 0..n {
            let person = NEW_PEOPLE + intake.len() as i64;
            let category =
                Category { sex: sexes[f], age: AgeGroup::Adult, status: status(&mut rng), regime: Regime::Criminal };
            let groups = group(&mut rng).into_iter().collect();
            intake.push(Candidate { member: Member { person, category, groups }, facility: f as i64 + 1 });
            by_facility[f].push(person);
        }
    }
    let mut rules = Vec::new();
    for a in 1..=GROUPS {
        for b in a + 1..=GROUPS {
            rules.push(KeepApart {
                id: rules.len() as i64 + 1,
                a: Party::Group(a),
                b: Party::Group(b),
                scope: Scope::Cell,
            });
        }
    }
    let crowded = by_facility.iter().any(|people| people.len() >= 2);
    for _ in 0..if crowded { PERSON_RULES } else { 0 } {
        // Two different people of the same facility, so that the rule can bite.
        let (a, b) = loop {
            let a = intake.choose(&mut rng).expect("people to choose from");
            let near = &by_facility[a.facility as usize - 1];
            let b = *near.choose(&mut rng).expect("the person's own facility");
            if b != a.member.person {
                break (a.member.person, b);
            }
        };
        let scope = if rng.random_bool(0.05) { Scope::Unit } else { Scope::Cell };
        rules.push(KeepApart { id: rules.len() as i64 + 1, a: Party::Person(a), b: Party::Person(b), scope });
    }
    Instance { cells, people: intake, rules }
}
