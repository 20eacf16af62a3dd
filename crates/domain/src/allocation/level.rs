//! The level of the water-filling: how many people each cell may take at a level, how each
//! facility's empty cells are shared among the categories that need room, and the lowest level
//! at which the most people still fit.

use std::collections::HashMap;

use super::Instance;
use crate::custody::FacilityId;
use crate::separation::Category;

/// One facility: its cells, the people it holds for placement and their categories.
pub(super) struct Facility {
    /// Indices into `Instance::cells`.
    pub cells: Vec<usize>,
    /// Indices into `Instance::people`.
    pub people: Vec<usize>,
    /// Distinct categories among `people`.
    pub categories: Vec<Category>,
    /// People of each category.
    pub demand: Vec<u64>,
    /// People of each category in no rival group: they fill places without opening group cells.
    pub plain: Vec<u64>,
}

impl Facility {
    /// Index of a category among this facility's candidates.
    pub fn category_index(&self, category: &Category) -> Option<usize> {
        self.categories.iter().position(|c| c == category)
    }
}

/// What never changes about a cell during one allocation.
pub(super) struct CellFacts {
    /// People already there.
    pub occupants: u32,
    /// Newcomers it may take under its hard limits (0 if closed, out of order or of mixed category).
    pub room: u32,
    /// The category of its first occupant, when there is one.
    pub fixed: Option<Category>,
    /// Its occupants are of different categories (history): nobody may join them.
    pub mixed: bool,
}

/// The instance seen by facility, with the hard room of every cell.
pub(super) struct Model<'a> {
    /// What is being allocated.
    pub instance: &'a Instance,
    /// Every facility named by a cell or a candidate.
    pub facilities: Vec<Facility>,
    /// Index into `facilities` by stored id.
    pub facility_index: HashMap<FacilityId, usize>,
    /// Per instance cell.
    pub cells: Vec<CellFacts>,
    /// The highest ratio already reached by occupants alone: no plan can go lower.
    pub floor: f64,
}

/// The cells each category of one facility gets at one level, and how many people that places.
pub(super) struct Share {
    /// Per category index: instance cell indices (cells already of that category first).
    pub cells_of: Vec<Vec<usize>>,
    /// People placeable under this share.
    pub placed: u64,
}

/// Free cells of the same size open to the same categories are interchangeable.
struct Class {
    cap: u64,
    mask: u64,
    cells: Vec<usize>,
}

impl<'a> Model<'a> {
    pub fn new(instance: &'a Instance) -> Self {
        let mut facility_index = HashMap::new();
        let mut facilities: Vec<Facility> = Vec::new();
        let mut index_of = |id: FacilityId, facilities: &mut Vec<Facility>| {
            *facility_index.entry(id).or_insert_with(|| {
                facilities.push(Facility {
                    cells: vec![],
                    people: vec![],
                    categories: vec![],
                    demand: vec![],
                    plain: vec![],
                });
                facilities.len() - 1
            })
        };
        for (i, cell) in instance.cells.iter().enumerate() {
            let f = index_of(cell.facility, &mut facilities);
            facilities[f].cells.push(i);
        }
        let rivals = super::rival_groups(instance);
        for (p, candidate) in instance.people.iter().enumerate() {
            let f = index_of(candidate.facility, &mut facilities);
            let facility = &mut facilities[f];
            facility.people.push(p);
            let c = facility.category_index(&candidate.member.category).unwrap_or_else(|| {
                facility.categories.push(candidate.member.category);
                facility.demand.push(0);
                facility.plain.push(0);
                facility.categories.len() - 1
            });
            facility.demand[c] += 1;
            if !candidate.member.groups.iter().any(|g| rivals.contains(g)) {
                facility.plain[c] += 1;
            }
        }
        let mut cells: Vec<CellFacts> = instance
            .cells
            .iter()
            .map(|cell| {
                let occupants = u32::try_from(cell.occupants.len()).unwrap_or(u32::MAX);
                let first = cell.occupants.first().map(|m| m.category);
                let mixed = cell.occupants.iter().any(|m| Some(m.category) != first);
                let mut total = cell.limit.unwrap_or(u32::MAX);
                if cell.single {
                    total = total.min(1);
                }
                let open = cell.in_use && cell.balance_capacity > 0 && !mixed;
                CellFacts {
                    occupants,
                    room: if open { total.saturating_sub(occupants) } else { 0 },
                    fixed: first,
                    mixed,
                }
            })
            .collect();
        // A cell never needs more room than its facility has people to place.
        for facility in &facilities {
            let people = u32::try_from(facility.people.len()).unwrap_or(u32::MAX);
            for &i in &facility.cells {
                cells[i].room = cells[i].room.min(people);
            }
        }
        let floor = instance
            .cells
            .iter()
            .zip(&cells)
            .filter(|(cell, _)| cell.balance_capacity > 0)
            .map(|(cell, facts)| f64::from(facts.occupants) / f64::from(cell.balance_capacity))
            .fold(0.0, f64::max);
        Model { instance, facilities, facility_index, cells, floor }
    }

    /// Newcomers cell `i` may take without passing `level` (None: up to its hard limit).
    pub fn cap_at(&self, i: usize, level: Option<f64>) -> u32 {
        let facts = &self.cells[i];
        match level {
            None => facts.room,
            Some(level) => {
                let total = (level * f64::from(self.instance.cells[i].balance_capacity) + 1e-9).floor();
                let total = if total >= f64::from(u32::MAX) { u32::MAX } else { total as u32 };
                facts.room.min(total.saturating_sub(facts.occupants))
            }
        }
    }

    /// The lowest level at which every facility still places as many people as it can with
    /// no level at all; None when no level is needed (nobody to place).
    pub fn choose_level(&self) -> Option<f64> {
        let target: Vec<u64> = (0..self.facilities.len()).map(|f| self.share(f, None).placed).collect();
        let busy: Vec<usize> = (0..self.facilities.len()).filter(|&f| target[f] > 0).collect();
        if busy.is_empty() {
            return None;
        }
        let feasible = |level: f64| busy.iter().all(|&f| self.share(f, Some(level)).placed >= target[f]);
        if feasible(self.floor) {
            return Some(self.floor);
        }
        let mut high = busy
            .iter()
            .flat_map(|&f| &self.facilities[f].cells)
            .filter(|&&i| self.cells[i].room > 0)
            .map(|&i| {
                f64::from(self.cells[i].occupants + self.cells[i].room)
                    / f64::from(self.instance.cells[i].balance_capacity)
            })
            .fold(self.floor, f64::max);
        if !feasible(high) {
            return None;
        }
        let mut low = self.floor;
        // Cell ratios k / capacity differ by at least 1 / capacity², far above this precision.
        while high - low > 1e-13 * high.max(1.0) {
            let middle = (low + high) / 2.0;
            if middle <= low || middle >= high {
                break;
            }
            if feasible(middle) {
                high = middle;
            } else {
                low = middle;
            }
        }
        Some(high)
    }

    /// Share facility `f`'s cells among its categories at `level`: cells already holding a category
    /// keep it; empty cells go to the categories still short, packed so as to waste few places.
    pub fn share(&self, f: usize, level: Option<f64>) -> Share {
        let facility = &self.facilities[f];
        let k = facility.categories.len();
        let mut cells_of = vec![Vec::new(); k];
        let mut have = vec![0u64; k];
        let mut classes: Vec<Class> = Vec::new();
        let mut class_of: HashMap<(u64, u64), usize> = HashMap::new();
        for &i in &facility.cells {
            let cap = u64::from(self.cap_at(i, level));
            if cap == 0 {
                continue;
            }
            match self.cells[i].fixed {
                Some(_) if self.cells[i].mixed => {}
                Some(category) => {
                    if let Some(c) = facility.category_index(&category) {
                        have[c] += cap;
                        cells_of[c].push(i);
                    }
                }
                None => {
                    let designation = &self.instance.cells[i].designation;
                    let mask = facility
                        .categories
                        .iter()
                        .enumerate()
                        .filter(|(_, category)| designation.refuses(category).is_none())
                        .fold(0u64, |mask, (c, _)| mask | (1 << (c % 64)));
                    if mask == 0 {
                        continue;
                    }
                    let x = *class_of.entry((cap, mask)).or_insert_with(|| {
                        classes.push(Class { cap, mask, cells: Vec::new() });
                        classes.len() - 1
                    });
                    classes[x].cells.push(i);
                }
            }
        }
        let need: Vec<i64> = (0..k).map(|c| facility.demand[c] as i64 - have[c] as i64).collect();
        // When places are short, it matters which category gets them: first room for the people in
        // no rival group (they open no group cell), then for everyone.
        let plain: Vec<i64> =
            (0..k).map(|c| (facility.plain[c] as i64 - have[c] as i64).clamp(0, need[c].max(0))).collect();
        let mut sharing = Sharing::new(&classes, plain);
        sharing.greedy(k);
        sharing.need = need;
        sharing.greedy(k);
        sharing.improve(k);
        sharing.exact_for_two(k);
        // Hand out concrete cells, larger first within each category.
        let mut pools: Vec<Vec<usize>> = classes.iter().map(|class| class.cells.clone()).collect();
        for (c, cells) in cells_of.iter_mut().enumerate() {
            let mut taken: Vec<(u64, usize)> = Vec::new();
            for (x, pool) in pools.iter_mut().enumerate() {
                for _ in 0..sharing.count[c][x] {
                    if let Some(i) = pool.pop() {
                        taken.push((classes[x].cap, i));
                    }
                }
            }
            taken.sort_by_key(|&(cap, i)| (std::cmp::Reverse(cap), i));
            cells.extend(taken.into_iter().map(|(_, i)| i));
        }
        let placed = (0..k).map(|c| facility.demand[c].min(have[c] + sharing.got[c].max(0) as u64)).sum();
        Share { cells_of, placed }
    }
}

/// Counts of free cells of each class held by each category (the last owner is the pool).
struct Sharing<'c> {
    classes: &'c [Class],
    /// count[owner][class].
    count: Vec<Vec<u64>>,
    /// Places still needed per category after the cells that already hold it.
    need: Vec<i64>,
    /// Places given per category from free cells.
    got: Vec<i64>,
}

impl<'c> Sharing<'c> {
    fn new(classes: &'c [Class], need: Vec<i64>) -> Self {
        let k = need.len();
        let mut count = vec![vec![0; classes.len()]; k + 1];
        count[k] = classes.iter().map(|class| class.cells.len() as u64).collect();
        Sharing { classes, count, got: vec![0; k], need }
    }

    fn eligible(&self, x: usize, owner: usize, k: usize) -> bool {
        owner == k || self.classes[x].mask & (1 << (owner % 64)) != 0
    }

    fn shortfall(&self, c: usize, got: i64) -> i64 {
        (self.need[c] - got).max(0)
    }

    fn give(&mut self, x: usize, from: usize, to: usize, n: u64, k: usize) {
        let cap = self.classes[x].cap as i64 * n as i64;
        self.count[from][x] -= n;
        self.count[to][x] += n;
        if from < k {
            self.got[from] -= cap;
        }
        if to < k {
            self.got[to] += cap;
        }
    }

    /// Most constrained categories first; each takes cells open to few others, largest first,
    /// and for its last places the smallest cell that covers them.
    fn greedy(&mut self, k: usize) {
        let open_room = |c: usize| -> u64 {
            (0..self.classes.len())
                .filter(|&x| self.eligible(x, c, k))
                .map(|x| self.classes[x].cap * self.count[k][x])
                .sum()
        };
        let mut order: Vec<usize> = (0..k).filter(|&c| self.need[c] > 0).collect();
        order.sort_by_key(|&c| (open_room(c), std::cmp::Reverse(self.need[c]), c));
        for c in order {
            loop {
                let rest = self.need[c] - self.got[c];
                if rest <= 0 {
                    break;
                }
                let open = (0..self.classes.len()).filter(|&x| self.count[k][x] > 0 && self.eligible(x, c, k));
                let fit = open
                    .clone()
                    .filter(|&x| self.classes[x].cap as i64 >= rest)
                    .min_by_key(|&x| (self.classes[x].cap, self.classes[x].mask.count_ones()));
                if let Some(x) = fit {
                    self.give(x, k, c, 1, k);
                    break;
                }
                let Some(x) =
                    open.min_by_key(|&x| (self.classes[x].mask.count_ones(), std::cmp::Reverse(self.classes[x].cap)))
                else {
                    break;
                };
                let whole = (rest as u64 / self.classes[x].cap).clamp(1, self.count[k][x]);
                self.give(x, k, c, whole, k);
            }
        }
    }

    /// Move or swap single cells between owners while that places more people.
    fn improve(&mut self, k: usize) {
        for _ in 0..1_000 {
            let mut best: Option<(i64, usize, usize, usize, Option<usize>)> = None;
            for b in (0..k).filter(|&b| self.shortfall(b, self.got[b]) > 0) {
                for x in (0..self.classes.len()).filter(|&x| self.eligible(x, b, k)) {
                    let cap_x = self.classes[x].cap as i64;
                    for a in (0..=k).filter(|&a| a != b && self.count[a][x] > 0) {
                        let before = self.shortfall(b, self.got[b]) + self.loss_of(a, 0, k);
                        // Move one cell of class x from a to b.
                        let after = self.shortfall(b, self.got[b] + cap_x) + self.loss_of(a, -cap_x, k);
                        if best.is_none_or(|m| before - after > m.0) && before > after {
                            best = Some((before - after, x, a, b, None));
                        }
                        // Swap it for a smaller cell of b's.
                        for y in (0..self.classes.len()).filter(|&y| {
                            self.count[b][y] > 0 && self.classes[y].cap < self.classes[x].cap && self.eligible(y, a, k)
                        }) {
                            let cap_y = self.classes[y].cap as i64;
                            let after =
                                self.shortfall(b, self.got[b] + cap_x - cap_y) + self.loss_of(a, cap_y - cap_x, k);
                            if best.is_none_or(|m| before - after > m.0) && before > after {
                                best = Some((before - after, x, a, b, Some(y)));
                            }
                        }
                    }
                }
            }
            let Some((_, x, a, b, swap)) = best else { return };
            self.give(x, a, b, 1, k);
            if let Some(y) = swap {
                self.give(y, b, a, 1, k);
            }
        }
    }

    /// With two categories short of places (the usual case: untried and convicted), try every
    /// split of the shared cells when there are few enough, and keep a split that places more.
    /// Single moves and swaps cannot always get there: the best split can be many swaps away.
    fn exact_for_two(&mut self, k: usize) {
        let short: Vec<usize> = (0..k).filter(|&c| self.need[c] > 0).collect();
        let loss = |s: &Self| (0..k).map(|c| s.shortfall(c, s.got[c])).sum::<i64>();
        let [first, second] = short[..] else { return };
        if loss(self) == 0 {
            return;
        }
        let total: Vec<u64> = (0..self.classes.len()).map(|x| (0..=k).map(|o| self.count[o][x]).sum()).collect();
        let mine: Vec<usize> =
            (0..self.classes.len()).filter(|&x| self.eligible(x, first, k) && total[x] > 0).collect();
        let combinations = mine.iter().try_fold(1u64, |n, &x| n.checked_mul(total[x] + 1));
        if combinations.is_none_or(|n| n > 200_000) {
            return;
        }
        let theirs_all: i64 = (0..self.classes.len())
            .filter(|&x| self.eligible(x, second, k))
            .map(|x| (total[x] * self.classes[x].cap) as i64)
            .sum();
        let mut taken = vec![0u64; mine.len()];
        let mut best: Option<(i64, Vec<u64>)> = None;
        loop {
            let (mut got, mut lent) = (0i64, 0i64);
            for (j, &x) in mine.iter().enumerate() {
                let places = (taken[j] * self.classes[x].cap) as i64;
                got += places;
                if self.eligible(x, second, k) {
                    lent += places;
                }
            }
            let lost = (self.need[first] - got).max(0) + (self.need[second] - (theirs_all - lent)).max(0);
            if best.as_ref().map_or(lost < loss(self), |b| lost < b.0) {
                best = Some((lost, taken.clone()));
            }
            // Next combination (an odometer over the classes).
            let mut j = 0;
            while j < mine.len() && taken[j] == total[mine[j]] {
                taken[j] = 0;
                j += 1;
            }
            if j == mine.len() {
                break;
            }
            taken[j] += 1;
        }
        let Some((_, taken)) = best else { return };
        // Give the first category its cells, then let the second take what it needs from the rest.
        for x in 0..self.classes.len() {
            for owner in [first, second] {
                let n = self.count[owner][x];
                if n > 0 {
                    self.give(x, owner, k, n, k);
                }
            }
        }
        for (j, &x) in mine.iter().enumerate() {
            if taken[j] > 0 {
                self.give(x, k, first, taken[j], k);
            }
        }
        let need = std::mem::replace(&mut self.need, vec![0; k]);
        self.need[second] = need[second];
        self.greedy(k);
        self.need = need;
    }

    /// Shortfall of owner `a` after a change of `delta` places (the pool never falls short).
    fn loss_of(&self, a: usize, delta: i64, k: usize) -> i64 {
        if a == k {
            0
        } else {
            self.shortfall(a, self.got[a] + delta)
        }
    }
}
