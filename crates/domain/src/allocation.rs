//! Bulk allocation of a night's intake to cells, under the hard housing rules of `separation`.
//!
//! The objective is lexicographic: place as many people as possible, then keep the fullest cell
//! as empty as possible (occupancy ratio against each cell's balance capacity), then keep each
//! rival group in as few cells as possible. The allocator fills water to a level:
//!
//! 1. **Level.** At a level L every cell can take up to `⌊L · balance_capacity⌋` people, never
//!    past its hard limit. Per facility, cells already holding people keep their category and
//!    the empty cells are shared among the categories still short of room: a greedy pass (room
//!    for people in no rival group first, since they open no group cell), single-cell moves and
//!    swaps, and, when two categories compete (untried and convicted, the usual case), every
//!    split of the empty cells if there are few enough kinds. The split matters when places are
//!    tight: with cells of 156 and 157 places it is the difference between a dozen people
//!    unplaced and a hundred. The most people this places with no level is the target; a
//!    bisection finds the lowest level that still places them all.
//! 2. **Placement.** Within each category's share, members of rival groups first join cells
//!    their group already holds; then, for as many members as people outside groups cannot
//!    fill anyway, whole fresh cells, largest first, group by group, so a group of n takes about
//!    n / (places per cell) cells; then people named in other keep-apart rules, each into the
//!    legal cell with most room; then everyone else; then any member still waiting. When there
//!    are more people than places, those left out are thus members who would have opened a new
//!    group cell. Every placement is checked against every hard rule as it is made (counters
//!    per rule party and cell, unit and facility), so a plan never breaks a rule even where the
//!    level was optimistic.
//! 3. **Leftovers** go to any legal cell of their facility under the level, then under its hard
//!    limit even above the level (placing beats balancing); only then are they left unplaced,
//!    with the most telling reason in words.
//!
//! Why it works: the objective's first two terms depend only on how many people each cell
//! takes, and at a given level a cell's room is known, so the level plan is a packing problem
//! on a few kinds of interchangeable cells; keep-apart rules rarely bind when cells hold dozens.
//! What it trades: keep-apart rules are not part of the level computation and the sharing of
//! cells is exact only for two competing categories, so plans are not proven optimal. On the
//! benchmark instances they equal or beat CP-SAT's (docs/BENCHMARKS.md) in milliseconds.
//! The independent `check` verifies every plan against the rules without sharing this code.

mod check;
mod level;
mod place;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

pub use check::{check, Malformed, PlanViolation};

use crate::custody::{CellId, FacilityId};
use crate::separation::{Designation, KeepApart, Member, Party, PersonId, UnitId};

/// A cell as the allocator sees it: where it is, how many it may hold, who is already there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellSlot {
    /// Stored id.
    pub id: CellId,
    /// Cell code, for reasons in words.
    pub code: String,
    /// The unit it belongs to.
    pub unit: UnitId,
    /// The facility it belongs to.
    pub facility: FacilityId,
    /// Designed for one person.
    pub single: bool,
    /// In use (not out of order).
    pub in_use: bool,
    /// Hard limit from the facility's capacity line (None: no line, or an override in force).
    pub limit: Option<u32>,
    /// Denominator of the occupancy ratio used for load balancing; a cell with 0 takes nobody.
    pub balance_capacity: u32,
    /// The unit's designation (`Designation::OPEN` when none).
    pub designation: Designation,
    /// People already placed there.
    pub occupants: Vec<Member>,
}

/// A person to place, held by `facility`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Candidate {
    /// Who, with categories and groups.
    pub member: Member,
    /// The facility holding them; only its cells are open to them.
    pub facility: FacilityId,
}

/// Everything an allocation depends on; its serde form is the neutral export format.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Instance {
    /// Every cell of the facilities concerned, with their occupants.
    pub cells: Vec<CellSlot>,
    /// The people to place.
    pub people: Vec<Candidate>,
    /// Keep-apart rules in force.
    pub rules: Vec<KeepApart>,
}

/// The outcome of an allocation: who goes where, and who could not be placed and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// (person, cell) for each person placed.
    pub placements: Vec<(PersonId, CellId)>,
    /// People left unplaced, each with the rule that blocked them.
    pub unplaced: Vec<Unplaced>,
}

/// A person the plan could not place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unplaced {
    /// Who.
    pub person: PersonId,
    /// The stable rule name (`housing.keep_apart`, `housing.capacity_line`, `housing.no_cell` …).
    pub rule: String,
    /// Why, in words a records officer understands.
    pub reason: String,
}

/// How good a plan is, in the order the allocator optimises.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// People placed (maximised first).
    pub placed: u64,
    /// People left unplaced.
    pub unplaced: u64,
    /// Highest (occupants + placed) / balance capacity over all cells (minimised second).
    pub max_ratio: f64,
    /// Over every rival group, the number of cells holding any of its members (minimised third).
    pub group_cells: u64,
}

/// Place the people of an instance in cells, obeying every hard rule (see the module notes).
pub fn allocate(instance: &Instance) -> Plan {
    place::allocate(instance)
}

/// Groups that appear on either side of a rule between two groups.
pub fn rival_groups(instance: &Instance) -> HashSet<i64> {
    let mut groups = HashSet::new();
    for rule in &instance.rules {
        if let (Party::Group(a), Party::Group(b)) = (rule.a, rule.b) {
            groups.insert(a);
            groups.insert(b);
        }
    }
    groups
}

/// Score a plan against the objective. Placements naming unknown people or cells are ignored.
pub fn objective(instance: &Instance, plan: &Plan) -> Objective {
    let cells: HashMap<CellId, usize> = instance.cells.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
    let people: HashMap<PersonId, &Member> = instance.people.iter().map(|c| (c.member.person, &c.member)).collect();
    let mut count: Vec<u64> = instance.cells.iter().map(|c| c.occupants.len() as u64).collect();
    let rivals = rival_groups(instance);
    let mut group_cells: HashSet<(i64, usize)> = HashSet::new();
    for (i, cell) in instance.cells.iter().enumerate() {
        for member in &cell.occupants {
            group_cells.extend(member.groups.iter().filter(|g| rivals.contains(g)).map(|&g| (g, i)));
        }
    }
    let mut placed = 0;
    for (person, cell) in &plan.placements {
        let (Some(&i), Some(member)) = (cells.get(cell), people.get(person)) else { continue };
        placed += 1;
        count[i] += 1;
        group_cells.extend(member.groups.iter().filter(|g| rivals.contains(g)).map(|&g| (g, i)));
    }
    let max_ratio = instance
        .cells
        .iter()
        .zip(&count)
        .filter(|(cell, _)| cell.balance_capacity > 0)
        .map(|(cell, &n)| n as f64 / f64::from(cell.balance_capacity))
        .fold(0.0, f64::max);
    Objective {
        placed,
        unplaced: instance.people.len() as u64 - placed.min(instance.people.len() as u64),
        max_ratio,
        group_cells: group_cells.len() as u64,
    }
}
