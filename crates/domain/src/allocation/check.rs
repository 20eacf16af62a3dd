//! An independent check of a plan against the hard rules, sharing no code with the allocator:
//! it rebuilds who is in each cell, unit and facility from the instance and the plan alone.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{Instance, Plan};
use crate::custody::CellId;
use crate::separation::{CapacityLine, Member, Party, PersonId, Scope, Violation};

/// Something wrong with a plan, about one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlanViolation {
    /// A placement breaks a hard housing rule. The instance does not say which capacity line set
    /// a cell's limit, so capacity violations name the declared line.
    Rule {
        /// The person placed.
        person: PersonId,
        /// The rule broken, naming the other party where there is one.
        violation: Violation,
    },
    /// The plan itself is malformed.
    Malformed {
        /// The person concerned.
        person: PersonId,
        /// What is wrong.
        problem: Malformed,
    },
}

/// Ways a plan can be malformed, whatever the rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Malformed {
    /// Placed a second time (in this cell).
    PlacedTwice {
        /// The cell of the second placement.
        cell: CellId,
    },
    /// Listed as unplaced more than once.
    UnplacedTwice,
    /// Both placed (in this cell) and listed as unplaced.
    PlacedAndUnplaced {
        /// The cell they were placed in.
        cell: CellId,
    },
    /// Not one of the instance's candidates.
    UnknownPerson,
    /// Placed in a cell the instance does not have.
    UnknownCell {
        /// The cell named.
        cell: CellId,
    },
    /// A candidate neither placed nor unplaced.
    Missing,
}

impl PlanViolation {
    /// The person concerned.
    pub fn person(&self) -> PersonId {
        match self {
            PlanViolation::Rule { person, .. } | PlanViolation::Malformed { person, .. } => *person,
        }
    }

    /// The stable rule name: the housing rule's, or `plan.…` for a malformed plan.
    pub fn rule(&self) -> &'static str {
        match self {
            PlanViolation::Rule { violation, .. } => violation.rule(),
            PlanViolation::Malformed { problem, .. } => match problem {
                Malformed::PlacedTwice { .. } => "plan.placed_twice",
                Malformed::UnplacedTwice => "plan.unplaced_twice",
                Malformed::PlacedAndUnplaced { .. } => "plan.placed_and_unplaced",
                Malformed::UnknownPerson => "plan.unknown_person",
                Malformed::UnknownCell { .. } => "plan.unknown_cell",
                Malformed::Missing => "plan.missing",
            },
        }
    }
}

/// Everyone a plan puts in one cell: occupants first, then newcomers in plan order.
struct Housed<'i> {
    member: &'i Member,
    new: bool,
}

/// Every way `plan` breaks the hard rules for `instance`, or is malformed; empty when it is sound.
pub fn check(instance: &Instance, plan: &Plan) -> Vec<PlanViolation> {
    let mut found = Vec::new();
    let malformed = |person, problem| PlanViolation::Malformed { person, problem };
    let broken = |person, violation| PlanViolation::Rule { person, violation };

    let candidates: HashMap<PersonId, usize> =
        instance.people.iter().enumerate().map(|(p, c)| (c.member.person, p)).collect();
    let cell_at: HashMap<CellId, usize> = instance.cells.iter().enumerate().map(|(i, c)| (c.id, i)).collect();

    // Well-formedness; a person's first placement counts, and houses them if the cell is known.
    let mut placed: HashMap<PersonId, CellId> = HashMap::new();
    let mut moves: Vec<(usize, usize)> = Vec::new();
    for &(person, cell) in &plan.placements {
        let Some(&p) = candidates.get(&person) else {
            found.push(malformed(person, Malformed::UnknownPerson));
            continue;
        };
        if placed.contains_key(&person) {
            found.push(malformed(person, Malformed::PlacedTwice { cell }));
            continue;
        }
        placed.insert(person, cell);
        match cell_at.get(&cell) {
            Some(&i) => moves.push((p, i)),
            None => found.push(malformed(person, Malformed::UnknownCell { cell })),
        }
    }
    let mut listed: HashSet<PersonId> = HashSet::new();
    for unplaced in &plan.unplaced {
        let person = unplaced.person;
        if !candidates.contains_key(&person) {
            found.push(malformed(person, Malformed::UnknownPerson));
        } else if !listed.insert(person) {
            found.push(malformed(person, Malformed::UnplacedTwice));
        } else if let Some(&cell) = placed.get(&person) {
            found.push(malformed(person, Malformed::PlacedAndUnplaced { cell }));
        }
    }
    for candidate in &instance.people {
        let person = candidate.member.person;
        if !placed.contains_key(&person) && !listed.contains(&person) {
            found.push(malformed(person, Malformed::Missing));
        }
    }

    // Who is in each cell after the plan.
    let mut housed: Vec<Vec<Housed>> = instance
        .cells
        .iter()
        .map(|cell| cell.occupants.iter().map(|member| Housed { member, new: false }).collect())
        .collect();
    for &(p, i) in &moves {
        housed[i].push(Housed { member: &instance.people[p].member, new: true });
    }

    // Per placement: facility, cell in use, designation.
    for &(p, i) in &moves {
        let candidate = &instance.people[p];
        let cell = &instance.cells[i];
        let person = candidate.member.person;
        if cell.facility != candidate.facility {
            found.push(broken(person, Violation::OtherFacility { cell: cell.id, facility: candidate.facility }));
        }
        if !cell.in_use {
            found.push(broken(person, Violation::CellOutOfOrder { cell: cell.id }));
        }
        if let Some(dimension) = cell.designation.refuses(&candidate.member.category) {
            found.push(broken(person, Violation::Designation { unit: cell.unit, dimension: dimension.into() }));
        }
    }

    // Per cell: capacity, single cells, categories.
    for (cell, people) in instance.cells.iter().zip(&housed) {
        let mut total = cell.occupants.len();
        for (k, one) in people.iter().enumerate().filter(|(_, h)| h.new) {
            total += 1;
            let person = one.member.person;
            if cell.balance_capacity == 0 {
                let violation = Violation::CapacityLine { cell: cell.id, line: CapacityLine::Declared, limit: 0 };
                found.push(broken(person, violation));
            } else if let Some(limit) = cell.limit.filter(|&limit| total > limit as usize) {
                found.push(broken(
                    person,
                    Violation::CapacityLine { cell: cell.id, line: CapacityLine::Declared, limit },
                ));
            }
            if cell.single && total > 1 {
                found.push(broken(person, Violation::SingleCell { cell: cell.id }));
            }
            let differs = people.iter().enumerate().find_map(|(j, other)| {
                let dimension = one.member.category.differs_from(&other.member.category)?;
                (j != k).then_some((other.member.person, dimension))
            });
            if let Some((other, dimension)) = differs {
                found.push(broken(person, Violation::Category { cell: cell.id, other, dimension: dimension.into() }));
            }
        }
    }

    // Keep-apart: every newcomer covered by one side, against anyone else covered by the other
    // side in the same cell, unit or facility.
    let area = |i: usize, scope: Scope| -> (u8, i64) {
        let cell = &instance.cells[i];
        match scope {
            Scope::Cell => (0, cell.id),
            Scope::Unit => (1, cell.unit),
            Scope::Facility => (2, cell.facility),
        }
    };
    let mut by_party: HashMap<Party, Vec<(&Member, usize, bool)>> = HashMap::new();
    for (i, people) in housed.iter().enumerate() {
        for one in people {
            let entry = (one.member, i, one.new);
            by_party.entry(Party::Person(one.member.person)).or_default().push(entry);
            for &g in &one.member.groups {
                by_party.entry(Party::Group(g)).or_default().push(entry);
            }
        }
    }
    let nobody = Vec::new();
    for rule in &instance.rules {
        let mut reported: HashSet<PersonId> = HashSet::new();
        for (mine, theirs) in [(rule.a, rule.b), (rule.b, rule.a)] {
            let mut around: HashMap<(u8, i64), Vec<&Member>> = HashMap::new();
            for &(member, i, _) in by_party.get(&theirs).unwrap_or(&nobody) {
                around.entry(area(i, rule.scope)).or_default().push(member);
            }
            for &(member, i, new) in by_party.get(&mine).unwrap_or(&nobody) {
                if !new || reported.contains(&member.person) {
                    continue;
                }
                let near = around.get(&area(i, rule.scope)).map(Vec::as_slice).unwrap_or(&[]);
                if let Some(other) = near.iter().find(|other| rule.separates(member, other)) {
                    reported.insert(member.person);
                    let violation = Violation::KeepApart { rule: rule.id, other: other.person, scope: rule.scope };
                    found.push(broken(member.person, violation));
                }
            }
        }
    }
    found
}
