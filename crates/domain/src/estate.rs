//! Facilities, units, cells and beds, and the capacity measures reported side by side.

use serde::{Deserialize, Serialize};

use crate::FieldError;

/// A usable floor area in square metres: finite and not negative.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
pub struct Area(f64);

impl Area {
    /// Parse an area in m²; refuses NaN, infinities and negative numbers.
    pub fn new(m2: f64) -> Result<Self, String> {
        if !m2.is_finite() {
            return Err(format!("{m2} is not a number of square metres"));
        }
        if m2 < 0.0 {
            return Err(format!("{m2} m² is negative"));
        }
        Ok(Self(m2))
    }

    /// The area in m².
    pub fn m2(self) -> f64 {
        self.0
    }
}

/// The international space standards Custodia reports against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpaceStandard {
    /// ICRC 2012: 5.4 m² single cell, 3.4 m² per person shared; whole floor area.
    Icrc,
    /// CPT/Inf (2015) 44: 6 m² single cell, 4 m² per person shared; sanitary annex excluded.
    Cpt,
}

impl SpaceStandard {
    /// Square metres per person the standard asks for.
    pub fn m2_per_person(self, single_cell: bool) -> f64 {
        match (self, single_cell) {
            (SpaceStandard::Icrc, true) => 5.4,
            (SpaceStandard::Icrc, false) => 3.4,
            (SpaceStandard::Cpt, true) => 6.0,
            (SpaceStandard::Cpt, false) => 4.0,
        }
    }
}

/// The physical facts of a cell that capacity depends on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellDimensions {
    /// Floor area of the cell, sanitary annex included.
    pub floor_area: Area,
    /// Area of the sanitary annex (toilet, shower) within the floor area.
    pub sanitary_annex: Area,
    /// Physical sleeping places.
    pub beds: u32,
    /// Designed for one person.
    pub single: bool,
}

impl CellDimensions {
    /// Check the facts agree with each other.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.sanitary_annex.m2() > self.floor_area.m2() {
            return Err(FieldError::new(
                "sanitary_annex_m2",
                format!(
                    "the sanitary annex ({} m²) is larger than the whole floor area ({} m²)",
                    self.sanitary_annex.m2(),
                    self.floor_area.m2()
                ),
            ));
        }
        if self.single && self.beds > 1 {
            return Err(FieldError::new("beds", format!("a single cell cannot have {} beds", self.beds)));
        }
        Ok(())
    }

    /// Persons the cell may hold under a space standard:
    /// floor(usable area / m² per person), and at most 1 in a single cell.
    pub fn standard_capacity(&self, standard: SpaceStandard) -> u32 {
        let usable = match standard {
            SpaceStandard::Icrc => self.floor_area.m2(),
            SpaceStandard::Cpt => (self.floor_area.m2() - self.sanitary_annex.m2()).max(0.0),
        };
        // A tiny epsilon so that 6.8 m² / 3.4 m² counts as 2, not 1.999….
        let persons = (usable / standard.m2_per_person(self.single) + 1e-9).floor() as u32;
        if self.single {
            persons.min(1)
        } else {
            persons
        }
    }
}

/// The five capacity measures, in the order they are always reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Capacity {
    /// What the authority states.
    pub declared: u64,
    /// Declared places of the cells in use (cells out of order excluded).
    pub operational: u64,
    /// Physical sleeping places in cells in use.
    pub beds: u64,
    /// ICRC space standard over cells in use.
    pub icrc: u64,
    /// CPT space standard over cells in use.
    pub cpt: u64,
}

impl Capacity {
    /// The capacity one cell contributes, given its declared (rated) places and whether it is in use.
    pub fn of_cell(dimensions: &CellDimensions, rated_places: u32, in_use: bool) -> Self {
        let declared = u64::from(rated_places);
        if !in_use {
            return Self { declared, ..Self::default() };
        }
        Self {
            declared,
            operational: declared,
            beds: u64::from(dimensions.beds),
            icrc: u64::from(dimensions.standard_capacity(SpaceStandard::Icrc)),
            cpt: u64::from(dimensions.standard_capacity(SpaceStandard::Cpt)),
        }
    }

    /// Occupancy against each measure for a population.
    pub fn occupancy(&self, population: u64) -> Occupancy {
        Occupancy {
            declared: occupancy_pct(population, self.declared),
            operational: occupancy_pct(population, self.operational),
            beds: occupancy_pct(population, self.beds),
            icrc: occupancy_pct(population, self.icrc),
            cpt: occupancy_pct(population, self.cpt),
        }
    }
}

impl std::ops::AddAssign for Capacity {
    fn add_assign(&mut self, other: Self) {
        self.declared += other.declared;
        self.operational += other.operational;
        self.beds += other.beds;
        self.icrc += other.icrc;
        self.cpt += other.cpt;
    }
}

/// Occupancy in percent against each capacity measure; `None` where the capacity is 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Occupancy {
    /// Against declared capacity.
    pub declared: Option<f64>,
    /// Against operational capacity.
    pub operational: Option<f64>,
    /// Against beds.
    pub beds: Option<f64>,
    /// Against the ICRC standard.
    pub icrc: Option<f64>,
    /// Against the CPT standard.
    pub cpt: Option<f64>,
}

/// population × 100 / capacity, rounded to one decimal; `None` for a capacity of 0.
pub fn occupancy_pct(population: u64, capacity: u64) -> Option<f64> {
    if capacity == 0 {
        return None;
    }
    let tenths = (population as f64 * 1000.0 / capacity as f64).round();
    Some(tenths / 10.0)
}

/// Split a facility's declared capacity over its cells: a single cell gets one place (while
/// places last), the rest is shared among the other cells in proportion to floor area, in whole
/// places that always add up exactly to the declared figure (largest remainder). Cells of zero
/// area share nothing unless every shared cell is zero.
pub fn apportion_declared(declared: u64, cells: &[CellDimensions]) -> Vec<u64> {
    let mut parts = vec![0; cells.len()];
    let mut left = declared;
    for (part, cell) in parts.iter_mut().zip(cells) {
        if cell.single && left > 0 {
            *part = 1;
            left -= 1;
        }
    }
    let mut shared: Vec<usize> = (0..cells.len()).filter(|&i| !cells[i].single).collect();
    if shared.is_empty() {
        // Only single cells: the authority's figure still stands, spread over them.
        shared = (0..cells.len()).collect();
    }
    let areas: Vec<f64> = shared.iter().map(|&i| cells[i].floor_area.m2()).collect();
    for (i, share) in shared.into_iter().zip(apportion_by_area(left, &areas)) {
        parts[i] += share;
    }
    parts
}

fn apportion_by_area(declared: u64, areas: &[f64]) -> Vec<u64> {
    if areas.is_empty() {
        return Vec::new();
    }
    let total: f64 = areas.iter().sum();
    let weights: Vec<f64> = if total > 0.0 { areas.to_vec() } else { vec![1.0; areas.len()] };
    let total: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| declared as f64 * w / total).collect();
    let mut parts: Vec<u64> = exact.iter().map(|x| x.floor() as u64).collect();
    let mut left = declared.saturating_sub(parts.iter().sum());
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| {
        let ra = exact[a] - exact[a].floor();
        let rb = exact[b] - exact[b].floor();
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for i in order.into_iter().cycle() {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts
}

/// A facility, unit, cell or bed code: 1 to 32 letters, digits, `-`, `_` or `.`.
pub fn validate_code(field: &str, code: &str) -> Result<(), FieldError> {
    if code.is_empty() || code.len() > 32 {
        return Err(FieldError::new(field, "must be 1 to 32 characters"));
    }
    if let Some(bad) = code.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_.".contains(*c))) {
        return Err(FieldError::new(field, format!("`{code}` contains `{bad}`; use letters, digits, `-`, `_` or `.`")));
    }
    Ok(())
}

/// An IANA time zone name such as `America/El_Salvador`.
pub fn validate_time_zone(field: &str, name: &str) -> Result<chrono_tz::Tz, FieldError> {
    name.parse::<chrono_tz::Tz>()
        .map_err(|_| FieldError::new(field, format!("`{name}` is not an IANA time zone such as America/El_Salvador")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cell(area: f64, annex: f64, beds: u32, single: bool) -> CellDimensions {
        CellDimensions { floor_area: Area::new(area).unwrap(), sanitary_annex: Area::new(annex).unwrap(), beds, single }
    }

    #[test]
    fn cecot_worked_example_from_the_domain_reference() {
        let c = cell(100.0, 0.0, 80, false);
        let mut total = Capacity::default();
        let rated = apportion_declared(40_000, &vec![c; 256]);
        for r in &rated {
            total += Capacity::of_cell(&c, *r as u32, true);
        }
        assert_eq!(total.declared, 40_000);
        assert_eq!(total.beds, 20_480);
        assert_eq!(c.standard_capacity(SpaceStandard::Icrc), 29);
        assert_eq!(total.icrc, 7_424);
        assert_eq!(total.cpt, 25 * 256);
        let occ = total.occupancy(15_000);
        assert_eq!(occ.declared, Some(37.5));
        assert_eq!(occ.beds, Some(73.2));
        assert_eq!(occ.icrc, Some(202.0));
    }

    #[test]
    fn cpt_excludes_the_sanitary_annex_and_icrc_does_not() {
        let c = cell(10.0, 2.0, 2, false);
        assert_eq!(c.standard_capacity(SpaceStandard::Icrc), 2);
        assert_eq!(c.standard_capacity(SpaceStandard::Cpt), 2);
        let c = cell(9.0, 2.0, 2, false);
        assert_eq!(c.standard_capacity(SpaceStandard::Icrc), 2);
        assert_eq!(c.standard_capacity(SpaceStandard::Cpt), 1);
    }

    #[test]
    fn single_cells_hold_at_most_one_and_only_if_large_enough() {
        assert_eq!(cell(20.0, 0.0, 1, true).standard_capacity(SpaceStandard::Icrc), 1);
        assert_eq!(cell(5.0, 0.0, 1, true).standard_capacity(SpaceStandard::Icrc), 0);
        assert_eq!(cell(5.5, 0.0, 1, true).standard_capacity(SpaceStandard::Icrc), 1);
        assert_eq!(cell(6.5, 1.0, 1, true).standard_capacity(SpaceStandard::Cpt), 0);
    }

    #[test]
    fn exact_multiples_are_not_lost_to_rounding() {
        assert_eq!(cell(6.8, 0.0, 2, false).standard_capacity(SpaceStandard::Icrc), 2);
        assert_eq!(cell(10.2, 0.0, 3, false).standard_capacity(SpaceStandard::Icrc), 3);
    }

    #[test]
    fn out_of_order_cells_keep_declared_but_lose_everything_else() {
        let c = Capacity::of_cell(&cell(12.0, 1.0, 2, false), 2, false);
        assert_eq!(c, Capacity { declared: 2, ..Capacity::default() });
    }

    #[test]
    fn zero_capacity_gives_no_percentage() {
        assert_eq!(occupancy_pct(10, 0), None);
        assert_eq!(occupancy_pct(0, 10), Some(0.0));
        assert_eq!(occupancy_pct(1, 3), Some(33.3));
        assert_eq!(occupancy_pct(2, 3), Some(66.7));
    }

    #[test]
    fn bad_areas_and_codes_are_refused() {
        assert!(Area::new(-1.0).is_err());
        assert!(Area::new(f64::NAN).is_err());
        assert!(cell(4.0, 5.0, 1, false).validate().is_err());
        assert!(cell(8.0, 0.0, 2, true).validate().is_err());
        assert!(validate_code("code", "A B").is_err());
        assert!(validate_code("code", "").is_err());
        assert!(validate_code("code", "M1-01").is_ok());
        assert!(validate_time_zone("tz", "Mars/Olympus").is_err());
        assert!(validate_time_zone("tz", "America/El_Salvador").is_ok());
    }

    proptest! {
        #[test]
        fn apportioned_places_add_up_and_single_cells_get_one(
            declared in 0u64..1_000_000,
            shapes in proptest::collection::vec((0.0f64..500.0, any::<bool>()), 1..300),
        ) {
            let cells: Vec<_> = shapes.iter().map(|&(area, single)| cell(area, 0.0, u32::from(single), single)).collect();
            let parts = apportion_declared(declared, &cells);
            prop_assert_eq!(parts.len(), cells.len());
            prop_assert_eq!(parts.iter().sum::<u64>(), declared);
            if cells.iter().any(|c| !c.single) {
                for (part, c) in parts.iter().zip(&cells) {
                    if c.single {
                        prop_assert!(*part <= 1);
                    }
                }
            }
        }

        #[test]
        fn standard_capacity_never_gives_less_than_the_standard_area_per_person(
            area in 0.0f64..1000.0, annex_share in 0.0f64..1.0, single in any::<bool>(),
        ) {
            let c = cell(area, area * annex_share, 1, single);
            for standard in [SpaceStandard::Icrc, SpaceStandard::Cpt] {
                let n = c.standard_capacity(standard);
                let usable = if standard == SpaceStandard::Cpt { area - area * annex_share } else { area };
                let per = standard.m2_per_person(single);
                prop_assert!(f64::from(n) * per <= usable + 1e-6);
                if !single {
                    // One more person would break the standard.
                    prop_assert!(f64::from(n + 1) * per > usable - 1e-6);
                } else {
                    prop_assert!(n <= 1);
                }
            }
        }

        #[test]
        fn occupancy_is_monotone_in_population(cap in 1u64..100_000, a in 0u64..500_000, b in 0u64..500_000) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(occupancy_pct(lo, cap).unwrap() <= occupancy_pct(hi, cap).unwrap());
        }
    }
}
