//! The hard rules of housing: categories kept apart (Mandela Rule 11), units designated for
//! categories, keep-apart rules between people and groups, and the capacity line a facility
//! chooses. Every placement, transfer and allocation is checked against them.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::custody::{CellId, FacilityId};
use crate::estate::{Capacity, CellDimensions};
use crate::person::{LegalBasisKind, Sex};

/// Stored id of a person.
pub type PersonId = i64;
/// Stored id of a unit.
pub type UnitId = i64;
/// Stored id of a security threat group.
pub type GroupId = i64;

/// Young people and adults are held apart (Rule 11 d).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AgeGroup {
    /// Under the facility's adult age.
    Young,
    /// At or over it.
    Adult,
}

/// Untried people are held apart from convicted ones (Rule 11 b).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LegalStatus {
    /// No first-instance judgment yet.
    Untried,
    /// Sentenced, including those awaiting appeal.
    Convicted,
    /// Neither: civil or immigration detention.
    Other,
}

/// People held for civil matters are held apart from those held for criminal ones (Rule 11 c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Regime {
    /// Held under criminal law.
    Criminal,
    /// Held for a civil matter (debt, immigration, administrative detention).
    Civil,
}

/// The four Mandela Rule 11 categories of one person at one time. Two people whose categories
/// differ in any way may not share a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Category {
    /// Sex (Rule 11 a).
    pub sex: Sex,
    /// Young or adult (Rule 11 d).
    pub age: AgeGroup,
    /// Untried or convicted (Rule 11 b).
    pub status: LegalStatus,
    /// Civil or criminal (Rule 11 c).
    pub regime: Regime,
}

impl Category {
    /// The first Rule 11 dimension on which two people differ, in words, if any.
    pub fn differs_from(&self, other: &Category) -> Option<&'static str> {
        if self.sex != other.sex {
            Some("sex")
        } else if self.age != other.age {
            Some("age group")
        } else if self.status != other.status {
            Some("legal status")
        } else if self.regime != other.regime {
            Some("civil or criminal regime")
        } else {
            None
        }
    }

    /// The category in words, for refusals: `male, adult, untried, criminal`.
    pub fn describe(&self) -> String {
        format!("{}, {}, {}, {}", self.sex.as_str(), self.age.as_str(), self.status.as_str(), self.regime.as_str())
    }
}

impl AgeGroup {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            AgeGroup::Young => "young",
            AgeGroup::Adult => "adult",
        }
    }

    /// The age group of someone born on `born` on the day `on`, given the age of adulthood.
    pub fn on(born: NaiveDate, on: NaiveDate, adult_age: u32) -> Self {
        if age_on(born, on) >= adult_age {
            AgeGroup::Adult
        } else {
            AgeGroup::Young
        }
    }
}

/// Whole years between a birth date and a day (a person born on 29 February turns a year older
/// on 1 March in common years).
pub fn age_on(born: NaiveDate, on: NaiveDate) -> u32 {
    let mut years = on.year() - born.year();
    if (on.month(), on.day()) < (born.month(), born.day()) {
        years -= 1;
    }
    years.max(0) as u32
}

impl LegalStatus {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            LegalStatus::Untried => "untried",
            LegalStatus::Convicted => "convicted",
            LegalStatus::Other => "other",
        }
    }

    /// Parse the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        [LegalStatus::Untried, LegalStatus::Convicted, LegalStatus::Other].into_iter().find(|s| s.as_str() == text)
    }

    /// What the legal basis of an admission implies when nobody has classified the person yet.
    pub fn presumed_from(basis: LegalBasisKind) -> Self {
        match basis {
            LegalBasisKind::Judgment => LegalStatus::Convicted,
            LegalBasisKind::AdministrativeDetention => LegalStatus::Other,
            LegalBasisKind::ArrestWarrant | LegalBasisKind::RemandOrder | LegalBasisKind::TransferAgreement => {
                LegalStatus::Untried
            }
        }
    }
}

impl Regime {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Regime::Criminal => "criminal",
            Regime::Civil => "civil",
        }
    }

    /// Parse the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        [Regime::Criminal, Regime::Civil].into_iter().find(|s| s.as_str() == text)
    }

    /// What the legal basis of an admission implies when nobody has classified the person yet.
    pub fn presumed_from(basis: LegalBasisKind) -> Self {
        match basis {
            LegalBasisKind::AdministrativeDetention => Regime::Civil,
            _ => Regime::Criminal,
        }
    }
}

/// Security level from a classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SecurityLevel {
    /// Open or semi-open regime.
    Low,
    /// Ordinary closed regime.
    Medium,
    /// High security.
    High,
    /// Maximum security.
    Maximum,
}

impl SecurityLevel {
    /// Every level, lowest first.
    pub const ALL: &'static [SecurityLevel] =
        &[SecurityLevel::Low, SecurityLevel::Medium, SecurityLevel::High, SecurityLevel::Maximum];

    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityLevel::Low => "low",
            SecurityLevel::Medium => "medium",
            SecurityLevel::High => "high",
            SecurityLevel::Maximum => "maximum",
        }
    }

    /// Parse the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.as_str() == text)
    }
}

/// The categories a unit is designated for; a dimension left open admits anyone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Designation {
    /// Only this sex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<Sex>,
    /// Only this age group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<AgeGroup>,
    /// Only this legal status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<LegalStatus>,
    /// Only this regime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regime: Option<Regime>,
}

impl Designation {
    /// A designation that admits anyone.
    pub const OPEN: Designation = Designation { sex: None, age: None, status: None, regime: None };

    /// The first dimension on which a person does not fit the designation, in words, if any.
    pub fn refuses(&self, category: &Category) -> Option<&'static str> {
        if self.sex.is_some_and(|s| s != category.sex) {
            Some("sex")
        } else if self.age.is_some_and(|a| a != category.age) {
            Some("age group")
        } else if self.status.is_some_and(|s| s != category.status) {
            Some("legal status")
        } else if self.regime.is_some_and(|r| r != category.regime) {
            Some("civil or criminal regime")
        } else {
            None
        }
    }

    /// The designation in words: `women, untried`, or `anyone`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(sex) = self.sex {
            parts.push(match sex {
                Sex::Male => "men",
                Sex::Female => "women",
                Sex::Other => "people of other sex",
            });
        }
        if let Some(age) = self.age {
            parts.push(age.as_str());
        }
        if let Some(status) = self.status {
            parts.push(status.as_str());
        }
        if let Some(regime) = self.regime {
            parts.push(regime.as_str());
        }
        if parts.is_empty() {
            "anyone".into()
        } else {
            parts.join(", ")
        }
    }
}

/// One side of a keep-apart rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Party {
    /// One person.
    Person(PersonId),
    /// Every member of a security threat group.
    Group(GroupId),
}

/// How far apart a keep-apart rule keeps its parties; a wider scope includes the narrower ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Scope {
    /// Not in the same cell.
    Cell,
    /// Not in the same unit.
    Unit,
    /// Not in the same facility.
    Facility,
}

impl Scope {
    /// Every scope, narrowest first.
    pub const ALL: &'static [Scope] = &[Scope::Cell, Scope::Unit, Scope::Facility];

    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Cell => "cell",
            Scope::Unit => "unit",
            Scope::Facility => "facility",
        }
    }

    /// Parse the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.as_str() == text)
    }
}

/// A keep-apart rule in force: its parties may not be placed within its scope of each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeepApart {
    /// Stored id, named in refusals.
    pub id: i64,
    /// One side.
    pub a: Party,
    /// The other side.
    pub b: Party,
    /// How far apart.
    pub scope: Scope,
}

/// A person as the separation rules see them: who, which categories, which groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Stored id.
    pub person: PersonId,
    /// Rule 11 categories.
    pub category: Category,
    /// Security threat groups they are affiliated with.
    pub groups: Vec<GroupId>,
}

impl Party {
    /// Whether the party is this person or a group they belong to.
    pub fn covers(&self, member: &Member) -> bool {
        match self {
            Party::Person(p) => *p == member.person,
            Party::Group(g) => member.groups.contains(g),
        }
    }
}

impl KeepApart {
    /// Whether the rule forbids these two people (in either order) to be within its scope.
    pub fn separates(&self, x: &Member, y: &Member) -> bool {
        x.person != y.person && ((self.a.covers(x) && self.b.covers(y)) || (self.a.covers(y) && self.b.covers(x)))
    }

    /// Whether the rule concerns this person at all.
    pub fn concerns(&self, member: &Member) -> bool {
        self.a.covers(member) || self.b.covers(member)
    }
}

/// The capacity a facility's placements may not exceed, cell by cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CapacityLine {
    /// The cell's share of the declared capacity.
    Declared,
    /// The same share, for cells in use (out-of-order cells take nobody in any case).
    Operational,
    /// Physical beds.
    Beds,
    /// The ICRC space standard.
    Icrc,
    /// The CPT space standard.
    Cpt,
}

impl CapacityLine {
    /// Every line.
    pub const ALL: &'static [CapacityLine] =
        &[CapacityLine::Declared, CapacityLine::Operational, CapacityLine::Beds, CapacityLine::Icrc, CapacityLine::Cpt];

    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            CapacityLine::Declared => "declared",
            CapacityLine::Operational => "operational",
            CapacityLine::Beds => "beds",
            CapacityLine::Icrc => "icrc",
            CapacityLine::Cpt => "cpt",
        }
    }

    /// Parse the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.as_str() == text)
    }

    /// How many people one cell in use may hold under this line.
    pub fn cell_limit(self, dimensions: &CellDimensions, rated_places: u32) -> u32 {
        let capacity = Capacity::of_cell(dimensions, rated_places, true);
        let limit = match self {
            CapacityLine::Declared => capacity.declared,
            CapacityLine::Operational => capacity.operational,
            CapacityLine::Beds => capacity.beds,
            CapacityLine::Icrc => capacity.icrc,
            CapacityLine::Cpt => capacity.cpt,
        };
        u32::try_from(limit).unwrap_or(u32::MAX)
    }
}

/// Why a placement may not happen. Each names the rule and, where there is one, the other party.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "violation", rename_all = "snake_case")]
pub enum Violation {
    /// The cell is out of order.
    CellOutOfOrder {
        /// The cell.
        cell: CellId,
    },
    /// A single cell would hold two people.
    SingleCell {
        /// The cell.
        cell: CellId,
    },
    /// The cell would hold more than the facility's capacity line allows.
    CapacityLine {
        /// The cell.
        cell: CellId,
        /// The line.
        line: CapacityLine,
        /// People the cell may hold under it.
        limit: u32,
    },
    /// The person's categories differ from someone's in the cell.
    Category {
        /// The cell.
        cell: CellId,
        /// The other person.
        other: PersonId,
        /// Which category differs.
        dimension: String,
    },
    /// The unit is designated for other categories.
    Designation {
        /// The unit.
        unit: UnitId,
        /// Which category does not fit.
        dimension: String,
    },
    /// A keep-apart rule forbids it.
    KeepApart {
        /// The rule.
        rule: i64,
        /// The other party, a person within the rule's scope.
        other: PersonId,
        /// The rule's scope.
        scope: Scope,
    },
    /// The cell is not in the person's facility.
    OtherFacility {
        /// The cell.
        cell: CellId,
        /// The facility holding the person.
        facility: FacilityId,
    },
}

impl Violation {
    /// The stable rule name used in refusals (`housing.keep_apart` …).
    pub fn rule(&self) -> &'static str {
        match self {
            Violation::CellOutOfOrder { .. } => "estate.cell_out_of_order",
            Violation::SingleCell { .. } => "estate.single_cell",
            Violation::CapacityLine { .. } => "housing.capacity_line",
            Violation::Category { .. } => "housing.category",
            Violation::Designation { .. } => "housing.designation",
            Violation::KeepApart { .. } => "housing.keep_apart",
            Violation::OtherFacility { .. } => "housing.other_facility",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(person: PersonId, groups: &[GroupId]) -> Member {
        Member {
            person,
            category: Category {
                sex: Sex::Male,
                age: AgeGroup::Adult,
                status: LegalStatus::Untried,
                regime: Regime::Criminal,
            },
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn a_rule_between_groups_separates_their_members_in_either_order() {
        let rule = KeepApart { id: 1, a: Party::Group(10), b: Party::Group(20), scope: Scope::Cell };
        assert!(rule.separates(&member(1, &[10]), &member(2, &[20])));
        assert!(rule.separates(&member(2, &[20]), &member(1, &[10])));
        assert!(!rule.separates(&member(1, &[10]), &member(2, &[10])));
        assert!(!rule.separates(&member(1, &[10]), &member(3, &[])));
    }

    #[test]
    fn a_rule_never_separates_a_person_from_themself() {
        let rule = KeepApart { id: 1, a: Party::Group(10), b: Party::Person(1), scope: Scope::Cell };
        assert!(!rule.separates(&member(1, &[10]), &member(1, &[10])));
        assert!(rule.separates(&member(1, &[]), &member(2, &[10])));
    }

    #[test]
    fn age_counts_whole_years_and_leap_day_birthdays() {
        let born = NaiveDate::from_ymd_opt(2008, 2, 29).unwrap();
        assert_eq!(age_on(born, NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()), 17);
        assert_eq!(age_on(born, NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()), 18);
        assert_eq!(AgeGroup::on(born, NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(), 18), AgeGroup::Adult);
        assert_eq!(AgeGroup::on(born, NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(), 21), AgeGroup::Young);
    }

    #[test]
    fn a_designation_names_the_dimension_that_does_not_fit() {
        let women_untried =
            Designation { sex: Some(Sex::Female), status: Some(LegalStatus::Untried), ..Designation::OPEN };
        assert_eq!(women_untried.describe(), "women, untried");
        assert_eq!(women_untried.refuses(&member(1, &[]).category), Some("sex"));
        assert_eq!(Designation::OPEN.refuses(&member(1, &[]).category), None);
    }

    #[test]
    fn the_capacity_line_of_a_cecot_cell() {
        let cell = CellDimensions {
            floor_area: crate::estate::Area::new(100.0).unwrap(),
            sanitary_annex: crate::estate::Area::new(0.0).unwrap(),
            beds: 80,
            single: false,
        };
        assert_eq!(CapacityLine::Beds.cell_limit(&cell, 156), 80);
        assert_eq!(CapacityLine::Icrc.cell_limit(&cell, 156), 29);
        assert_eq!(CapacityLine::Declared.cell_limit(&cell, 156), 156);
    }
}
