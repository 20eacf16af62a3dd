//! Placement: fill each category's cells up to the level, rival groups first and concentrated,
//! checking every hard rule as each person is placed; then place or explain what is left.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use super::level::{Model, Share};
use super::{rival_groups, Instance, Plan, Unplaced};
use crate::separation::{Category, GroupId, Party, Scope};

/// A small fast hasher for the integer keys of the rule counters (no untrusted keys here).
#[derive(Default)]
struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type Fast = BuildHasherDefault<IntHasher>;

/// Where a rule's scope is measured: a cell (by index), a unit or a facility (by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Area {
    Cell(usize),
    Unit(i64),
    Facility(i64),
}

/// A rule as one person is bound by it: keep away from `other` within `scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Duty {
    rule: usize,
    other: u32,
    scope: Scope,
}

/// Why a person may not go to a cell, as found by `State::obstacle`.
#[derive(Debug, Clone)]
enum Obstacle {
    OtherFacility,
    OutOfOrder,
    Designation(&'static str),
    Category(&'static str),
    Single,
    Capacity,
    KeepApart(Duty),
}

struct State<'a> {
    instance: &'a Instance,
    model: Model<'a>,
    level: Option<f64>,
    /// People in each cell (occupants and newcomers).
    count: Vec<u32>,
    /// The category of each cell's people, when it has some.
    category: Vec<Option<Category>>,
    /// Newcomers each cell may still take under the level.
    slots: Vec<u32>,
    /// Newcomers each cell may still take under its hard limits.
    room: Vec<u32>,
    /// Where each candidate went.
    placed: Vec<Option<usize>>,
    /// Newcomers of each cell.
    newcomers: Vec<Vec<usize>>,
    /// Housed people covered by each rule party, per area.
    tally: HashMap<(u32, Area), u32, Fast>,
    /// Parties of the rules, numbered.
    parties: Vec<Party>,
    /// Per candidate: the parties covering them, and the duties their rules give them.
    covers: Vec<Vec<u32>>,
    duties: Vec<Vec<Duty>>,
    /// Per candidate: the rival group they are placed with, if any.
    rival: Vec<Option<GroupId>>,
    /// Party numbers of the rival groups.
    rival_parties: Vec<u32>,
}

pub(super) fn allocate(instance: &Instance) -> Plan {
    let model = Model::new(instance);
    let level = model.choose_level();
    let mut state = State::new(instance, model, level);
    let mut unplaced = Vec::new();
    for f in 0..state.model.facilities.len() {
        unplaced.extend(state.place_facility(f));
    }
    let mut plan = Plan::default();
    for (p, cell) in state.placed.iter().enumerate() {
        if let Some(i) = cell {
            plan.placements.push((instance.people[p].member.person, instance.cells[*i].id));
        }
    }
    unplaced.sort_unstable();
    plan.unplaced = unplaced.into_iter().map(|p| state.explain(p)).collect();
    plan
}

impl<'a> State<'a> {
    fn new(instance: &'a Instance, model: Model<'a>, level: Option<f64>) -> Self {
        let mut party_index: HashMap<Party, u32> = HashMap::new();
        let mut parties = Vec::new();
        let mut number = |party: Party| {
            *party_index.entry(party).or_insert_with(|| {
                parties.push(party);
                parties.len() as u32 - 1
            })
        };
        // Duties of each party: the rules naming it, and the other side of each.
        let mut duties_of: HashMap<u32, Vec<Duty>> = HashMap::new();
        for (r, rule) in instance.rules.iter().enumerate() {
            let (a, b) = (number(rule.a), number(rule.b));
            duties_of.entry(a).or_default().push(Duty { rule: r, other: b, scope: rule.scope });
            duties_of.entry(b).or_default().push(Duty { rule: r, other: a, scope: rule.scope });
        }
        let covering = |person: i64, groups: &[GroupId]| -> Vec<u32> {
            let mut found: Vec<u32> = std::iter::once(Party::Person(person))
                .chain(groups.iter().map(|&g| Party::Group(g)))
                .filter_map(|party| party_index.get(&party).copied())
                .collect();
            found.sort_unstable();
            found.dedup();
            found
        };
        let covers: Vec<Vec<u32>> =
            instance.people.iter().map(|c| covering(c.member.person, &c.member.groups)).collect();
        let duties: Vec<Vec<Duty>> = covers
            .iter()
            .map(|parties| {
                let mut list: Vec<Duty> = Vec::new();
                for duty in parties.iter().flat_map(|p| duties_of.get(p).into_iter().flatten()) {
                    if !list.iter().any(|d| d.other == duty.other && d.scope == duty.scope) {
                        list.push(*duty);
                    }
                }
                // Narrow scopes are the most often blocking: test them first.
                list.sort_by_key(|d| (d.scope, d.rule));
                list
            })
            .collect();
        let rivals = rival_groups(instance);
        let mut size: HashMap<GroupId, usize> = HashMap::new();
        for candidate in &instance.people {
            for g in candidate.member.groups.iter().filter(|g| rivals.contains(g)) {
                *size.entry(*g).or_default() += 1;
            }
        }
        let rival: Vec<Option<GroupId>> = instance
            .people
            .iter()
            .map(|c| c.member.groups.iter().filter(|g| rivals.contains(g)).max_by_key(|g| (size[g], -**g)).copied())
            .collect();
        let rival_parties: Vec<u32> =
            rivals.iter().filter_map(|&g| party_index.get(&Party::Group(g)).copied()).collect();
        let cells = &instance.cells;
        let slots = (0..cells.len()).map(|i| model.cap_at(i, level)).collect();
        let room = model.cells.iter().map(|facts| facts.room).collect();
        let mut state = State {
            instance,
            level,
            count: model.cells.iter().map(|facts| facts.occupants).collect(),
            category: model.cells.iter().map(|facts| facts.fixed).collect(),
            model,
            slots,
            room,
            placed: vec![None; instance.people.len()],
            newcomers: vec![Vec::new(); cells.len()],
            tally: HashMap::default(),
            parties,
            covers,
            duties,
            rival,
            rival_parties,
        };
        for (i, cell) in cells.iter().enumerate() {
            for member in &cell.occupants {
                for party in covering(member.person, &member.groups) {
                    state.count_in(party, i);
                }
            }
        }
        state
    }

    fn area(&self, i: usize, scope: Scope) -> Area {
        let cell = &self.instance.cells[i];
        match scope {
            Scope::Cell => Area::Cell(i),
            Scope::Unit => Area::Unit(cell.unit),
            Scope::Facility => Area::Facility(cell.facility),
        }
    }

    fn count_in(&mut self, party: u32, i: usize) {
        for scope in Scope::ALL {
            *self.tally.entry((party, self.area(i, *scope))).or_default() += 1;
        }
    }

    fn present(&self, party: u32, area: Area) -> bool {
        self.tally.get(&(party, area)).is_some_and(|&n| n > 0)
    }

    /// The first hard rule that forbids candidate `p` to go to cell `i` now, if any.
    fn obstacle(&self, p: usize, i: usize) -> Option<Obstacle> {
        let cell = &self.instance.cells[i];
        let candidate = &self.instance.people[p];
        let category = &candidate.member.category;
        if cell.facility != candidate.facility {
            return Some(Obstacle::OtherFacility);
        }
        if !cell.in_use {
            return Some(Obstacle::OutOfOrder);
        }
        if let Some(dimension) = cell.designation.refuses(category) {
            return Some(Obstacle::Designation(dimension));
        }
        if let Some(dimension) = self.category_clash(i, category) {
            return Some(Obstacle::Category(dimension));
        }
        if cell.single && self.count[i] >= 1 {
            return Some(Obstacle::Single);
        }
        if self.room[i] == 0 {
            return Some(Obstacle::Capacity);
        }
        self.duties[p]
            .iter()
            .find(|duty| self.present(duty.other, self.area(i, duty.scope)))
            .map(|d| Obstacle::KeepApart(*d))
    }

    fn category_clash(&self, i: usize, category: &Category) -> Option<&'static str> {
        let cell = &self.instance.cells[i];
        if self.model.cells[i].mixed {
            // Occupants of mixed categories: anyone differs from one of them.
            if let Some(other) = cell.occupants.iter().find_map(|m| m.category.differs_from(category)) {
                return Some(other);
            }
        }
        self.category[i].and_then(|c| c.differs_from(category))
    }

    fn place(&mut self, p: usize, i: usize) {
        self.count[i] += 1;
        self.slots[i] = self.slots[i].saturating_sub(1);
        self.room[i] -= 1;
        self.category[i] = Some(self.instance.people[p].member.category);
        self.placed[p] = Some(i);
        self.newcomers[i].push(p);
        for k in 0..self.covers[p].len() {
            self.count_in(self.covers[p][k], i);
        }
    }

    /// Place everyone held by facility `f`; return those who could not be placed.
    fn place_facility(&mut self, f: usize) -> Vec<usize> {
        let Share { cells_of, .. } = self.model.share(f, self.level);
        let facility = &self.model.facilities[f];
        let mut by_category: Vec<Vec<usize>> = vec![Vec::new(); facility.categories.len()];
        for &p in &facility.people {
            let c =
                facility.category_index(&self.instance.people[p].member.category).expect("every category is listed");
            by_category[c].push(p);
        }
        let mut left = Vec::new();
        for (cells, people) in cells_of.iter().zip(&by_category) {
            self.place_category(cells, people, &mut left);
        }
        let cells = self.model.facilities[f].cells.clone();
        let left = self.place_anywhere(left, &cells, true);
        self.place_anywhere(left, &cells, false)
    }

    fn place_category(&mut self, cells: &[usize], people: &[usize], left: &mut Vec<usize>) {
        let mut groups: HashMap<GroupId, Vec<usize>> = HashMap::new();
        let mut bound = Vec::new();
        let mut free = Vec::new();
        for &p in people {
            match self.rival[p] {
                Some(g) => groups.entry(g).or_default().push(p),
                None if self.duties[p].is_empty() => free.push(p),
                None => bound.push(p),
            }
        }
        let mut groups: Vec<(GroupId, Vec<usize>)> = groups.into_iter().collect();
        groups.sort_by_key(|(g, members)| (std::cmp::Reverse(members.len()), *g));
        for (_, members) in &mut groups {
            // Members bound by person rules or several groups have the fewest choices: first.
            members.sort_by_key(|&p| self.duties[p].iter().any(|d| !self.rival_parties.contains(&d.other)));
            members.reverse();
        }
        // Members first join the cells their group already holds: that costs no new group cell.
        for (g, members) in &mut groups {
            *members = self.place_group(*g, cells, members, &mut 0, false);
        }
        // Fresh cells go to as many members as people outside groups cannot fill anyway: when
        // there are more people than places, those left out are members who would open new cells.
        let places: usize = cells.iter().map(|&i| self.slots[i] as usize).sum();
        let mut budget = places.saturating_sub(bound.len() + free.len());
        for (g, members) in &mut groups {
            *members = self.place_group(*g, cells, members, &mut budget, false);
        }
        for p in bound {
            let best = cells
                .iter()
                .copied()
                .filter(|&i| self.slots[i] > 0 && self.obstacle(p, i).is_none())
                .max_by_key(|&i| (self.slots[i], std::cmp::Reverse(i)));
            match best {
                Some(i) => self.place(p, i),
                None => left.push(p),
            }
        }
        let mut cursor = 0;
        for p in free {
            while cursor < cells.len() && self.slots[cells[cursor]] == 0 {
                cursor += 1;
            }
            match cells[cursor.min(cells.len())..]
                .iter()
                .copied()
                .find(|&i| self.slots[i] > 0 && self.obstacle(p, i).is_none())
            {
                Some(i) => self.place(p, i),
                None => left.push(p),
            }
        }
        for (g, members) in groups {
            let mut unlimited = usize::MAX;
            left.extend(self.place_group(g, cells, &members, &mut unlimited, true));
        }
    }

    /// Place group members in the cells the group already holds, then (while `budget` lasts) in
    /// whole fresh cells, largest first, then (`anywhere`) in any legal cell; return the rest.
    fn place_group(
        &mut self,
        g: GroupId,
        cells: &[usize],
        members: &[usize],
        budget: &mut usize,
        anywhere: bool,
    ) -> Vec<usize> {
        let mut rest = Vec::new();
        if members.is_empty() {
            return rest;
        }
        let party =
            self.parties.iter().position(|&party| party == Party::Group(g)).expect("rival groups are parties") as u32;
        let mut owned: Vec<usize> = cells.iter().copied().filter(|&i| self.present(party, Area::Cell(i))).collect();
        let untouched = |state: &Self, i: usize| {
            state.slots[i] > 0 && !state.rival_parties.iter().any(|&r| state.present(r, Area::Cell(i)))
        };
        let mut fresh: Vec<usize> = cells.iter().copied().filter(|&i| untouched(self, i)).collect();
        fresh.sort_by_key(|&i| (std::cmp::Reverse(self.slots[i]), i));
        let (mut cursor, mut fresh_cursor) = (0, 0);
        for &p in members {
            while cursor < owned.len() && self.slots[owned[cursor]] == 0 {
                cursor += 1;
            }
            let mut found =
                owned[cursor..].iter().copied().find(|&i| self.slots[i] > 0 && self.obstacle(p, i).is_none());
            if found.is_none() && *budget > 0 {
                while fresh_cursor < fresh.len() && !untouched(self, fresh[fresh_cursor]) {
                    fresh_cursor += 1;
                }
                found = fresh[fresh_cursor..]
                    .iter()
                    .copied()
                    .find(|&i| untouched(self, i) && self.obstacle(p, i).is_none());
            }
            if found.is_none() && anywhere {
                found = cells
                    .iter()
                    .copied()
                    .filter(|&i| self.slots[i] > 0 && self.obstacle(p, i).is_none())
                    .max_by_key(|&i| (self.slots[i], std::cmp::Reverse(i)));
            }
            match found {
                Some(i) => {
                    if !owned.contains(&i) {
                        owned.push(i);
                    }
                    *budget = budget.saturating_sub(1);
                    self.place(p, i);
                }
                None => rest.push(p),
            }
        }
        rest
    }

    /// Place each person in any legal cell of `cells`: under the level (the one with most room
    /// left) or, failing that, under the hard limits (the one whose ratio stays lowest).
    fn place_anywhere(&mut self, people: Vec<usize>, cells: &[usize], under_level: bool) -> Vec<usize> {
        let mut left = Vec::new();
        for p in people {
            let legal =
                cells.iter().copied().filter(|&i| (!under_level || self.slots[i] > 0) && self.obstacle(p, i).is_none());
            let best = if under_level {
                legal.max_by_key(|&i| (self.slots[i], std::cmp::Reverse(i)))
            } else {
                legal.min_by(|&x, &y| self.ratio_after(x).total_cmp(&self.ratio_after(y)).then(x.cmp(&y)))
            };
            match best {
                Some(i) => self.place(p, i),
                None => left.push(p),
            }
        }
        left
    }

    fn ratio_after(&self, i: usize) -> f64 {
        f64::from(self.count[i] + 1) / f64::from(self.instance.cells[i].balance_capacity.max(1))
    }

    /// The most telling reason why candidate `p` has no legal cell.
    fn explain(&self, p: usize) -> Unplaced {
        let candidate = &self.instance.people[p];
        let person = candidate.member.person;
        let category = candidate.member.category;
        let cells: &[usize] = self
            .model
            .facility_index
            .get(&candidate.facility)
            .map(|&f| self.model.facilities[f].cells.as_slice())
            .unwrap_or(&[]);
        let unplaced = |rule: &str, reason: String| Unplaced { person, rule: rule.into(), reason };
        if cells.is_empty() {
            return unplaced("housing.no_cell", "the facility holding them has no cells on record".into());
        }
        // (rank, first cell, obstacle, how many cells) per kind of obstacle.
        let mut seen: Vec<(u8, usize, Obstacle, usize)> = Vec::new();
        for &i in cells {
            let Some(obstacle) = self.obstacle(p, i) else { continue };
            let rank = match obstacle {
                Obstacle::KeepApart(_) => 0,
                Obstacle::Capacity => 1,
                Obstacle::Single => 2,
                Obstacle::Category(_) => 3,
                Obstacle::Designation(_) => 4,
                Obstacle::OutOfOrder => 5,
                Obstacle::OtherFacility => 6,
            };
            match seen.iter_mut().find(|s| s.0 == rank) {
                Some(entry) => entry.3 += 1,
                None => seen.push((rank, i, obstacle, 1)),
            }
        }
        seen.sort_by_key(|s| s.0);
        let Some((_, i, obstacle, n)) = seen.into_iter().next() else {
            return unplaced("housing.no_cell", "no cell of their facility was found free for them".into());
        };
        let code = &self.instance.cells[i].code;
        let cells_word = |n: usize| if n == 1 { "1 cell".to_string() } else { format!("{n} cells") };
        match obstacle {
            Obstacle::KeepApart(duty) => {
                let rule = &self.instance.rules[duty.rule];
                let other = self.someone(self.parties[duty.other as usize], self.area(i, duty.scope), person);
                let other = other.map_or_else(|| "someone already there".to_string(), |o| format!("person {o}"));
                let scope = duty.scope.as_str();
                let reason = if n == 1 {
                    format!(
                        "the only cell with room for them, {code}, is barred by keep-apart rule {}: it keeps them out of the same {scope} as {other}",
                        rule.id
                    )
                } else {
                    format!(
                        "all {n} cells with room for them are barred by keep-apart rules; in {code}, rule {} keeps them out of the same {scope} as {other}",
                        rule.id
                    )
                };
                unplaced("housing.keep_apart", reason)
            }
            Obstacle::Capacity | Obstacle::Single => {
                let fitting: Vec<usize> = cells
                    .iter()
                    .copied()
                    .filter(|&j| matches!(self.obstacle(p, j), Some(Obstacle::Capacity | Obstacle::Single)))
                    .collect();
                let designation = self.instance.cells[fitting[0]].designation;
                let shared = fitting.iter().all(|&j| self.instance.cells[j].designation == designation);
                let what = if shared && designation != crate::separation::Designation::OPEN {
                    format!("every cell of a unit designated for {} that could take them", designation.describe())
                } else {
                    format!("every cell that could take a person who is {}", category.describe())
                };
                if matches!(obstacle, Obstacle::Single) && fitting.len() == n {
                    unplaced("estate.single_cell", format!("{what} is a single cell already taken ({})", cells_word(n)))
                } else {
                    unplaced("housing.capacity_line", format!("{what} is at its capacity line ({})", cells_word(fitting.len())))
                }
            }
            Obstacle::Category(dimension) => unplaced(
                "housing.category",
                format!(
                    "every cell with room holds people of another category (in {code} the {dimension} differs); {} of the facility are concerned",
                    cells_word(n)
                ),
            ),
            Obstacle::Designation(dimension) => unplaced(
                "housing.designation",
                format!(
                    "every cell in use is in a unit designated for other people (in {code}: {}, the {dimension} does not fit)",
                    self.instance.cells[i].designation.describe()
                ),
            ),
            Obstacle::OutOfOrder => {
                unplaced("estate.cell_out_of_order", format!("every cell of their facility is out of order ({})", cells_word(n)))
            }
            Obstacle::OtherFacility => {
                unplaced("housing.no_cell", "the facility holding them has no cells on record".into())
            }
        }
    }

    /// Someone other than `not` covered by `party` within `area`.
    fn someone(&self, party: Party, area: Area, not: i64) -> Option<i64> {
        let cells: Vec<usize> = match area {
            Area::Cell(i) => vec![i],
            Area::Unit(u) => (0..self.instance.cells.len()).filter(|&j| self.instance.cells[j].unit == u).collect(),
            Area::Facility(f) => {
                (0..self.instance.cells.len()).filter(|&j| self.instance.cells[j].facility == f).collect()
            }
        };
        let mut seen = HashSet::new();
        for j in cells {
            let occupants = self.instance.cells[j].occupants.iter();
            let newcomers = self.newcomers[j].iter().map(|&q| &self.instance.people[q].member);
            for member in occupants.chain(newcomers) {
                if member.person != not && party.covers(member) && seen.insert(member.person) {
                    return Some(member.person);
                }
            }
        }
        None
    }
}
