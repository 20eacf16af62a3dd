//! Housing policy and capacity overrides, unit designations, classification, security threat
//! groups, keep-apart rules, and roll counts. All audited and insert-only: a change is a new row.

use std::collections::HashMap;

use crate::sql::{params, OptionalExtension, Row};
use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use domain::audit::Value;
use domain::custody::{CellId, FacilityId};
use domain::person::{LegalBasisKind, Sex};
use domain::separation::{
    AgeGroup, CapacityLine, Designation, GroupId, LegalStatus, Party, PersonId, Regime, Scope, SecurityLevel, UnitId,
};
use domain::time::{from_micros, to_micros, Instant};

use crate::database::{SqlTx, OPEN};
use crate::{StoreError, StoreResult};

/// Age from which people count as adults when a facility has not said otherwise.
pub const DEFAULT_ADULT_AGE: u32 = 18;

/// A facility's housing policy at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HousingPolicy {
    /// The capacity placements may not exceed; none chosen when absent.
    pub capacity_line: Option<CapacityLine>,
    /// Age from which people count as adults.
    pub adult_age: u32,
}

impl Default for HousingPolicy {
    fn default() -> Self {
        Self { capacity_line: None, adult_age: DEFAULT_ADULT_AGE }
    }
}

/// A director's permission to place over the capacity line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CapacityOverride {
    /// Stored id.
    pub id: i64,
    /// Facility code.
    pub facility: String,
    /// Cell code, when the override covers one cell only.
    pub cell: Option<String>,
    /// Why.
    pub reason: String,
    /// The director who authorised it.
    pub authorised_by: String,
    /// From when.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub effective_from: Instant,
    /// Until when.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Instant,
}

/// An override to write.
#[derive(Debug, Clone)]
pub struct NewCapacityOverride<'a> {
    /// Facility.
    pub facility: FacilityId,
    /// One cell only, or the whole facility.
    pub cell: Option<CellId>,
    /// Why.
    pub reason: &'a str,
    /// The director.
    pub authorised_by: &'a str,
    /// From when.
    pub effective_from: Instant,
    /// Until when.
    pub expires_at: Instant,
}

/// A classification as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClassificationRecord {
    /// Untried, convicted or other.
    pub legal_status: LegalStatus,
    /// Civil or criminal.
    pub regime: Regime,
    /// Security level.
    pub security_level: SecurityLevel,
    /// Vulnerability flags, for example `disability`, `elderly`, `lgbti`, `suicide_risk`.
    pub vulnerabilities: Vec<String>,
    /// Free-text note.
    pub note: Option<String>,
    /// From when.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub effective_from: Instant,
    /// Who classified.
    pub recorded_by: String,
}

/// What a person's Rule 11 categories are computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CategoryFacts {
    /// Sex on record.
    pub sex: Sex,
    /// Date of birth on record.
    pub born: NaiveDate,
    /// Latest classification's legal status and regime, if classified.
    pub classified: Option<(LegalStatus, Regime)>,
    /// Legal basis of the latest booking, if any.
    pub basis: Option<LegalBasisKind>,
    /// Sentences are recorded for the latest booking: a judgment was given.
    pub sentenced: bool,
}

/// A security threat group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThreatGroup {
    /// Stored id.
    #[serde(skip)]
    pub id: GroupId,
    /// Short code, for example `MS13`.
    pub code: String,
    /// Name.
    pub name: String,
}

/// One affiliation entry of a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Affiliation {
    /// Group code.
    pub group: String,
    /// Affiliated (true) or no longer (false).
    pub affiliated: bool,
    /// Where the information comes from.
    pub source: String,
    /// Date assessed.
    pub assessed_on: NaiveDate,
    /// When recorded.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub recorded_at: Instant,
    /// Who recorded.
    pub recorded_by: String,
}

/// An affiliation entry to write.
#[derive(Debug, Clone)]
pub struct NewAffiliation<'a> {
    /// The person.
    pub person: PersonId,
    /// The group.
    pub group: GroupId,
    /// Affiliated (true) or no longer (false).
    pub affiliated: bool,
    /// Source of the information.
    pub source: &'a str,
    /// Date assessed.
    pub assessed_on: NaiveDate,
    /// When recorded.
    pub recorded_at: Instant,
    /// Who recorded.
    pub recorded_by: &'a str,
}

/// A keep-apart rule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepApartRow {
    /// Stored id.
    pub id: i64,
    /// One side.
    pub a: Party,
    /// The other side.
    pub b: Party,
    /// How far apart.
    pub scope: Scope,
    /// Why.
    pub reason: String,
    /// Who authorised it.
    pub authorised_by: String,
    /// From when.
    pub effective_from: Instant,
    /// Until when, if it expires.
    pub expires_at: Option<Instant>,
    /// When and why it was lifted early, if it was.
    pub ended: Option<(Instant, String)>,
    /// Who recorded it.
    pub recorded_by: String,
}

impl KeepApartRow {
    /// Whether the rule applies at some instant from `from` to `to`.
    pub fn in_force_during(&self, from: Instant, to: Instant) -> bool {
        self.effective_from <= to
            && self.expires_at.is_none_or(|e| from < e)
            && self.ended.as_ref().is_none_or(|(ended, _)| from < *ended)
    }

    /// Whether the rule applies at `at`.
    pub fn in_force(&self, at: Instant) -> bool {
        self.effective_from <= at
            && self.expires_at.is_none_or(|e| at < e)
            && self.ended.as_ref().is_none_or(|(ended, _)| at < *ended)
    }
}

/// A keep-apart rule to write.
#[derive(Debug, Clone)]
pub struct NewKeepApart<'a> {
    /// One side.
    pub a: Party,
    /// The other side.
    pub b: Party,
    /// How far apart.
    pub scope: Scope,
    /// Why.
    pub reason: &'a str,
    /// Who authorised it.
    pub authorised_by: &'a str,
    /// From when.
    pub effective_from: Instant,
    /// Until when, if it expires.
    pub expires_at: Option<Instant>,
    /// Who records it.
    pub recorded_by: &'a str,
}

/// The separation facts copied onto a stay: a class code and the date of birth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StayClass {
    /// Sex, legal status and regime in one number (see [`StayClass::of`]).
    pub class: i64,
    /// Date of birth as YYYYMMDD.
    pub born: i64,
}

impl StayClass {
    /// The code of a person's sex, legal status and regime, and their birth date.
    pub fn of(sex: Sex, status: LegalStatus, regime: Regime, born: NaiveDate) -> Self {
        let sex = match sex {
            Sex::Male => 0,
            Sex::Female => 1,
            Sex::Other => 2,
        };
        let status = match status {
            LegalStatus::Untried => 0,
            LegalStatus::Convicted => 1,
            LegalStatus::Other => 2,
        };
        let regime = match regime {
            Regime::Criminal => 0,
            Regime::Civil => 1,
        };
        Self { class: sex * 6 + status * 2 + regime, born: yyyymmdd(born) }
    }
}

/// A date as the number YYYYMMDD, which orders like the date.
pub fn yyyymmdd(date: NaiveDate) -> i64 {
    i64::from(date.year()) * 10_000 + i64::from(date.month()) * 100 + i64::from(date.day())
}

/// A roll count as stored, with everything entered since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollCountRow {
    /// Stored id, the count's number.
    pub id: i64,
    /// Facility.
    pub facility: FacilityId,
    /// Unit, when only one is counted.
    pub unit: Option<UnitId>,
    /// The instant counted.
    pub counted_at: Instant,
    /// Who started it.
    pub started_by: String,
    /// Expected people per cell: (cell, expected).
    pub cells: Vec<(CellId, u32)>,
    /// Counts entered, in order: (cell, counted, at, by).
    pub entries: Vec<(CellId, u32, Instant, String)>,
    /// Resolutions, in order.
    pub resolutions: Vec<ResolutionRow>,
    /// When and by whom it was cleared.
    pub cleared: Option<(Instant, String)>,
}

/// One resolved absence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolutionRow {
    /// The person.
    pub person: PersonId,
    /// The cell they were expected in.
    pub cell: CellId,
    /// found_elsewhere or unaccounted.
    pub kind: String,
    /// Where they were found.
    pub found_cell: Option<CellId>,
    /// The escape incident opened.
    pub incident: Option<String>,
    /// Note.
    pub note: Option<String>,
    /// When.
    pub resolved_at: Instant,
    /// Who.
    pub resolved_by: String,
}

/// A resolution to write.
#[derive(Debug, Clone)]
pub struct NewResolution<'a> {
    /// The count.
    pub count: i64,
    /// The person.
    pub person: PersonId,
    /// The cell they were expected in.
    pub cell: CellId,
    /// found_elsewhere or unaccounted.
    pub kind: &'a str,
    /// Where they were found.
    pub found_cell: Option<CellId>,
    /// The escape incident opened.
    pub incident: Option<&'a str>,
    /// Note.
    pub note: Option<&'a str>,
    /// When.
    pub resolved_at: Instant,
    /// Who.
    pub resolved_by: &'a str,
}

/// An override's id, its cell (none: the whole facility) and when it is in force (µs, from..until).
type OverrideSpan = (i64, Option<CellId>, i64, i64);

/// Housing rules a transaction has read: few rows that every placement asks for.
#[derive(Debug, Default)]
pub(crate) struct HousingCache {
    /// Per facility, (effective from, policy), oldest first.
    policies: HashMap<FacilityId, Vec<(i64, HousingPolicy)>>,
    /// Per unit, (effective from, designation), oldest first.
    designations: HashMap<UnitId, Vec<(i64, Designation)>>,
    /// Per facility, its overrides.
    overrides: HashMap<FacilityId, Vec<OverrideSpan>>,
    /// Whether any keep-apart rule was ever recorded.
    any_keep_apart: Option<bool>,
    /// What people's categories are computed from, as read so far.
    pub(crate) facts: HashMap<PersonId, CategoryFacts>,
}

/// Reads and writes of housing rules and roll counts, in the caller's transaction.
pub trait HousingTx {
    /// Record a facility's housing policy from an instant on.
    fn insert_housing_policy(
        &mut self,
        facility: FacilityId,
        policy: &HousingPolicy,
        effective_from: Instant,
        recorded_by: &str,
    ) -> StoreResult<()>;
    /// The policy of a facility at an instant (the default when none was recorded).
    fn housing_policy(&mut self, facility: FacilityId, at: Instant) -> StoreResult<HousingPolicy>;
    /// Write a capacity override.
    fn insert_capacity_override(&mut self, o: &NewCapacityOverride<'_>) -> StoreResult<i64>;
    /// Id of the override in force at `at` for a cell (one for the cell or the whole facility), if any.
    fn override_in_force(&mut self, facility: FacilityId, cell: CellId, at: Instant) -> StoreResult<Option<i64>>;
    /// Every override of the given facilities (all when None), newest first.
    fn capacity_overrides(&mut self, facilities: Option<&[FacilityId]>) -> StoreResult<Vec<CapacityOverride>>;

    /// Designate a unit for categories from an instant on.
    fn insert_unit_designation(
        &mut self,
        unit: UnitId,
        designation: &Designation,
        effective_from: Instant,
        recorded_by: &str,
    ) -> StoreResult<()>;
    /// A unit's designation at an instant (open when none).
    fn unit_designation(&mut self, unit: UnitId, at: Instant) -> StoreResult<Designation>;

    /// Write a classification of a person.
    fn insert_classification(&mut self, person: PersonId, c: &ClassificationRecord) -> StoreResult<()>;
    /// A person's classifications, oldest first.
    fn classifications(&mut self, person: PersonId) -> StoreResult<Vec<ClassificationRecord>>;
    /// What a person's categories are computed from.
    fn category_facts(&mut self, person: PersonId) -> StoreResult<Option<CategoryFacts>>;
    /// Copy a person's separation facts onto their open stay.
    fn set_stay_class(&mut self, person: PersonId, class: StayClass) -> StoreResult<()>;
    /// Someone other than `person` placed in the cell at any time from `at` on whose sex, legal
    /// status or regime differ, or whose age group differs (young: born on or after
    /// `adult_born_before`, YYYYMMDD).
    fn cell_differing(
        &mut self,
        cell: CellId,
        at: Instant,
        person: PersonId,
        class: StayClass,
        adult_born_before: i64,
    ) -> StoreResult<Option<PersonId>>;
    /// Stays in the cell from `at` on other than the person's: its occupants then and since (for
    /// a placement backdated past other people's moves this errs towards refusing).
    fn cell_people_from(&mut self, cell: CellId, at: Instant, person: PersonId) -> StoreResult<u32>;

    /// Write a security threat group.
    fn insert_group(&mut self, code: &str, name: &str) -> StoreResult<GroupId>;
    /// A group by code.
    fn group_by_code(&mut self, code: &str) -> StoreResult<Option<ThreatGroup>>;
    /// A group by id.
    fn group(&mut self, id: GroupId) -> StoreResult<Option<ThreatGroup>>;
    /// Every group, by code.
    fn groups(&mut self) -> StoreResult<Vec<ThreatGroup>>;
    /// Write an affiliation entry.
    fn insert_affiliation(&mut self, a: &NewAffiliation<'_>) -> StoreResult<()>;
    /// A person's affiliation history, oldest first.
    fn affiliations(&mut self, person: PersonId) -> StoreResult<Vec<Affiliation>>;
    /// The groups a person is affiliated with now.
    fn person_groups(&mut self, person: PersonId) -> StoreResult<Vec<GroupId>>;
    /// The people affiliated with a group now.
    fn group_members(&mut self, group: GroupId) -> StoreResult<Vec<PersonId>>;
    /// The unit of a cell.
    fn cell_unit(&mut self, cell: CellId) -> StoreResult<UnitId>;

    /// Write a keep-apart rule.
    fn insert_keep_apart(&mut self, rule: &NewKeepApart<'_>) -> StoreResult<i64>;
    /// Lift a keep-apart rule early.
    fn end_keep_apart(&mut self, rule: i64, at: Instant, reason: &str, recorded_by: &str) -> StoreResult<()>;
    /// One rule.
    fn keep_apart(&mut self, rule: i64) -> StoreResult<Option<KeepApartRow>>;
    /// Every rule naming one of these parties, in force or not, oldest first.
    fn keep_apart_naming(&mut self, parties: &[Party]) -> StoreResult<Vec<KeepApartRow>>;
    /// Every rule, oldest first.
    fn keep_apart_all(&mut self) -> StoreResult<Vec<KeepApartRow>>;
    /// Whether any keep-apart rule was ever recorded (when none was, there is nothing to check).
    fn any_keep_apart(&mut self) -> StoreResult<bool>;
    /// Someone of `party` (other than `person`) placed in the cell, unit or facility (held there,
    /// placed or not) at any time from `at` on.
    fn party_within(
        &mut self,
        party: Party,
        scope: Scope,
        place: i64,
        at: Instant,
        person: PersonId,
    ) -> StoreResult<Option<PersonId>>;

    /// Start a roll count with the expected people of each cell.
    fn insert_roll_count(
        &mut self,
        facility: FacilityId,
        unit: Option<UnitId>,
        counted_at: Instant,
        started_by: &str,
        cells: &[(CellId, u32)],
    ) -> StoreResult<i64>;
    /// Enter what was counted in a cell.
    fn insert_roll_count_entry(
        &mut self,
        count: i64,
        cell: CellId,
        counted: u32,
        at: Instant,
        by: &str,
    ) -> StoreResult<()>;
    /// Record a resolved absence.
    fn insert_roll_count_resolution(&mut self, r: &NewResolution<'_>) -> StoreResult<()>;
    /// Clear a count.
    fn insert_roll_count_clearance(&mut self, count: i64, at: Instant, by: &str) -> StoreResult<()>;
    /// One count with everything entered.
    fn roll_count(&mut self, id: i64) -> StoreResult<Option<RollCountRow>>;
    /// Ids of the counts of the given facilities (all when None), newest first, below `before`.
    fn roll_counts(&mut self, facilities: Option<&[FacilityId]>, before: i64, limit: u32) -> StoreResult<Vec<i64>>;
    /// Roll counts not cleared, of the given facilities (all when `None`), oldest first.
    fn uncleared_roll_counts(&mut self, facilities: Option<&[FacilityId]>) -> StoreResult<Vec<i64>>;
    /// People held in a facility (or one unit) now and placed, per cell; those out (at court, in
    /// hospital) only when `include_out`.
    fn placed_now(
        &mut self,
        facility: FacilityId,
        unit: Option<UnitId>,
        include_out: bool,
    ) -> StoreResult<Vec<(CellId, PersonId)>>;
    /// People held in a facility now, present and not placed in any cell.
    fn unplaced_now(&mut self, facility: FacilityId) -> StoreResult<Vec<PersonId>>;
    /// What the categories of everyone held in a facility now are computed from.
    fn category_facts_held(&mut self, facility: FacilityId) -> StoreResult<Vec<(PersonId, CategoryFacts)>>;
    /// Current group affiliations of everyone held in a facility now.
    fn groups_held(&mut self, facility: FacilityId) -> StoreResult<Vec<(PersonId, GroupId)>>;
    /// Whether a person was out of their facility at `at` (their latest movement then was `out`).
    fn out_at(&mut self, person: PersonId, at: Instant) -> StoreResult<bool>;
}

fn opt_text<'a>(v: Option<&'a str>) -> Value<'a> {
    v.map(Value::Text).unwrap_or(Value::Null)
}

fn party_columns(party: Party) -> (&'static str, i64) {
    match party {
        Party::Person(id) => ("person", id),
        Party::Group(id) => ("group", id),
    }
}

fn party_of(kind: &str, id: i64) -> StoreResult<Party> {
    match kind {
        "person" => Ok(Party::Person(id)),
        "group" => Ok(Party::Group(id)),
        other => Err(StoreError::Backend(format!("party kind {other}"))),
    }
}

fn parse_column<T>(text: &str, parse: fn(&str) -> Option<T>) -> StoreResult<T> {
    parse(text).ok_or_else(|| StoreError::Backend(format!("unknown value {text}")))
}

fn date_column(text: &str) -> StoreResult<NaiveDate> {
    parse_column(text, |t| t.parse().ok())
}

fn sex_of(text: &str) -> Option<Sex> {
    [Sex::Male, Sex::Female, Sex::Other].into_iter().find(|s| s.as_str() == text)
}

fn age_of(text: &str) -> Option<AgeGroup> {
    [AgeGroup::Young, AgeGroup::Adult].into_iter().find(|s| s.as_str() == text)
}

fn basis_of(text: &str) -> Option<LegalBasisKind> {
    [
        LegalBasisKind::ArrestWarrant,
        LegalBasisKind::RemandOrder,
        LegalBasisKind::Judgment,
        LegalBasisKind::TransferAgreement,
        LegalBasisKind::AdministrativeDetention,
    ]
    .into_iter()
    .find(|k| k.as_str() == text)
}

const KEEP_APART_COLUMNS: &str = "k.id, k.a_kind, k.a_id, k.b_kind, k.b_id, k.scope, k.reason, k.authorised_by,
    k.effective_from, k.expires_at, e.ended_at, e.reason, k.recorded_by";

fn keep_apart_row(r: &Row<'_>) -> StoreResult<KeepApartRow> {
    let ended: Option<i64> = r.get(10)?;
    Ok(KeepApartRow {
        id: r.get(0)?,
        a: party_of(&r.get::<_, String>(1)?, r.get(2)?)?,
        b: party_of(&r.get::<_, String>(3)?, r.get(4)?)?,
        scope: parse_column(&r.get::<_, String>(5)?, Scope::parse)?,
        reason: r.get(6)?,
        authorised_by: r.get(7)?,
        effective_from: from_micros(r.get(8)?),
        expires_at: r.get::<_, Option<i64>>(9)?.map(from_micros),
        ended: match ended {
            Some(at) => Some((from_micros(at), r.get(11)?)),
            None => None,
        },
        recorded_by: r.get(12)?,
    })
}

fn override_row(r: &Row<'_>) -> StoreResult<CapacityOverride> {
    Ok(CapacityOverride {
        id: r.get(0)?,
        facility: r.get(1)?,
        cell: r.get(2)?,
        reason: r.get(3)?,
        authorised_by: r.get(4)?,
        effective_from: from_micros(r.get(5)?),
        expires_at: from_micros(r.get(6)?),
    })
}

const OVERRIDE_SELECT: &str = "SELECT o.id, f.code, c.code, o.reason, o.authorised_by, o.effective_from, o.expires_at
    FROM capacity_override o JOIN facility f ON f.id = o.facility_id LEFT JOIN cell c ON c.id = o.cell_id";

/// `IN (…)` over a list of ids, which are integers and safe to inline.
fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

impl HousingTx for SqlTx<'_> {
    fn insert_housing_policy(
        &mut self,
        facility: FacilityId,
        policy: &HousingPolicy,
        effective_from: Instant,
        recorded_by: &str,
    ) -> StoreResult<()> {
        self.insert_audited(
            "housing_policy",
            &[
                Value::Int(facility),
                opt_text(policy.capacity_line.map(CapacityLine::as_str)),
                Value::Int(i64::from(policy.adult_age)),
                Value::Int(to_micros(effective_from)),
                Value::Text(recorded_by),
            ],
        )?;
        self.housing_cache().policies.remove(&facility);
        Ok(())
    }

    fn housing_policy(&mut self, facility: FacilityId, at: Instant) -> StoreResult<HousingPolicy> {
        // Every placement asks; a facility's few policy rows are read once per transaction.
        if !self.housing_cache().policies.contains_key(&facility) {
            let list = self
                .conn()
                .prepare_cached(
                    "SELECT effective_from, capacity_line, adult_age FROM housing_policy WHERE facility_id = ?1
                     ORDER BY effective_from, id",
                )?
                .query_map([facility], |r| {
                    let line: Option<String> = r.get(1)?;
                    let policy = HousingPolicy {
                        capacity_line: line.map(|text| parse_column(&text, CapacityLine::parse)).transpose()?,
                        adult_age: r.get(2)?,
                    };
                    Ok((r.get::<_, i64>(0)?, policy))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            self.housing_cache().policies.insert(facility, list);
        }
        let at = to_micros(at);
        let list = &self.housing_cache().policies[&facility];
        Ok(list.iter().rev().find(|(from, _)| *from <= at).map(|p| p.1).unwrap_or_default())
    }

    fn insert_capacity_override(&mut self, o: &NewCapacityOverride<'_>) -> StoreResult<i64> {
        self.housing_cache().overrides.remove(&o.facility);
        self.insert_audited(
            "capacity_override",
            &[
                Value::Int(o.facility),
                o.cell.map(Value::Int).unwrap_or(Value::Null),
                Value::Text(o.reason),
                Value::Text(o.authorised_by),
                Value::Int(to_micros(o.effective_from)),
                Value::Int(to_micros(o.expires_at)),
            ],
        )
    }

    fn override_in_force(&mut self, facility: FacilityId, cell: CellId, at: Instant) -> StoreResult<Option<i64>> {
        if !self.housing_cache().overrides.contains_key(&facility) {
            let list = self
                .conn()
                .prepare_cached(
                    "SELECT id, cell_id, effective_from, expires_at FROM capacity_override WHERE facility_id = ?1 ORDER BY id",
                )?
                .query_map([facility], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            self.housing_cache().overrides.insert(facility, list);
        }
        let at = to_micros(at);
        let list = &self.housing_cache().overrides[&facility];
        Ok(list
            .iter()
            .find(|(_, c, from, expires)| c.is_none_or(|c| c == cell) && *from <= at && at < *expires)
            .map(|o| o.0))
    }

    fn capacity_overrides(&mut self, facilities: Option<&[FacilityId]>) -> StoreResult<Vec<CapacityOverride>> {
        let filter = facilities.map(|f| format!("WHERE o.facility_id IN ({})", id_list(f))).unwrap_or_default();
        let sql = format!("{OVERRIDE_SELECT} {filter} ORDER BY o.id DESC");
        let rows = self.conn().prepare(&sql)?.query_map([], override_row)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn insert_unit_designation(
        &mut self,
        unit: UnitId,
        d: &Designation,
        effective_from: Instant,
        recorded_by: &str,
    ) -> StoreResult<()> {
        self.housing_cache().designations.remove(&unit);
        self.insert_audited(
            "unit_designation",
            &[
                Value::Int(unit),
                opt_text(d.sex.map(Sex::as_str)),
                opt_text(d.age.map(AgeGroup::as_str)),
                opt_text(d.status.map(LegalStatus::as_str)),
                opt_text(d.regime.map(Regime::as_str)),
                Value::Int(to_micros(effective_from)),
                Value::Text(recorded_by),
            ],
        )?;
        Ok(())
    }

    fn unit_designation(&mut self, unit: UnitId, at: Instant) -> StoreResult<Designation> {
        if !self.housing_cache().designations.contains_key(&unit) {
            let list = self
                .conn()
                .prepare_cached(
                    "SELECT effective_from, sex, age_group, legal_status, regime FROM unit_designation
                     WHERE unit_id = ?1 ORDER BY effective_from, id",
                )?
                .query_map([unit], |r| {
                    let column = |i: usize| r.get::<_, Option<String>>(i);
                    let designation = Designation {
                        sex: column(1)?.map(|t| parse_column(&t, sex_of)).transpose()?,
                        age: column(2)?.map(|t| parse_column(&t, age_of)).transpose()?,
                        status: column(3)?.map(|t| parse_column(&t, LegalStatus::parse)).transpose()?,
                        regime: column(4)?.map(|t| parse_column(&t, Regime::parse)).transpose()?,
                    };
                    Ok((r.get::<_, i64>(0)?, designation))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            self.housing_cache().designations.insert(unit, list);
        }
        let at = to_micros(at);
        let list = &self.housing_cache().designations[&unit];
        Ok(list.iter().rev().find(|(from, _)| *from <= at).map(|d| d.1).unwrap_or(Designation::OPEN))
    }

    fn insert_classification(&mut self, person: PersonId, c: &ClassificationRecord) -> StoreResult<()> {
        self.housing_cache().facts.remove(&person);
        let flags = serde_json::to_string(&c.vulnerabilities).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.insert_audited(
            "classification",
            &[
                Value::Int(person),
                Value::Text(c.legal_status.as_str()),
                Value::Text(c.regime.as_str()),
                Value::Text(c.security_level.as_str()),
                Value::Text(&flags),
                opt_text(c.note.as_deref()),
                Value::Int(to_micros(c.effective_from)),
                Value::Text(&c.recorded_by),
            ],
        )?;
        Ok(())
    }

    fn classifications(&mut self, person: PersonId) -> StoreResult<Vec<ClassificationRecord>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT legal_status, regime, security_level, vulnerabilities, note, effective_from, recorded_by
             FROM classification WHERE person_id = ?1 ORDER BY effective_from, id",
        )?;
        let rows = stmt.query_map([person], |r| {
            let flags: String = r.get(3)?;
            Ok(ClassificationRecord {
                legal_status: parse_column(&r.get::<_, String>(0)?, LegalStatus::parse)?,
                regime: parse_column(&r.get::<_, String>(1)?, Regime::parse)?,
                security_level: parse_column(&r.get::<_, String>(2)?, SecurityLevel::parse)?,
                vulnerabilities: serde_json::from_str(&flags).unwrap_or_default(),
                note: r.get(4)?,
                effective_from: from_micros(r.get(5)?),
                recorded_by: r.get(6)?,
            })
        })?;
        rows.collect::<Result<_, _>>()
    }

    fn category_facts(&mut self, person: PersonId) -> StoreResult<Option<CategoryFacts>> {
        if let Some(facts) = self.housing_cache().facts.get(&person) {
            return Ok(Some(*facts));
        }
        let found = self
            .conn()
            .prepare_cached(
                "SELECT p.sex, p.date_of_birth,
                    (SELECT legal_status || ' ' || regime FROM classification c
                      WHERE c.person_id = p.id AND c.effective_from >= coalesce(b.admitted_at, 0)
                      ORDER BY c.effective_from DESC, c.id DESC LIMIT 1),
                    b.legal_basis_kind,
                    EXISTS (SELECT 1 FROM sentence_record r WHERE r.booking_id = b.id)
                 FROM person p
                 LEFT JOIN booking b ON b.id = (SELECT max(id) FROM booking WHERE person_id = p.id)
                 WHERE p.id = ?1",
            )?
            .query_row([person], |r| {
                let classified: Option<String> = r.get(2)?;
                let classified = match classified.as_deref().and_then(|t| t.split_once(' ')) {
                    Some((status, regime)) => {
                        Some((parse_column(status, LegalStatus::parse)?, parse_column(regime, Regime::parse)?))
                    }
                    None => None,
                };
                Ok(CategoryFacts {
                    sex: parse_column(&r.get::<_, String>(0)?, sex_of)?,
                    born: date_column(&r.get::<_, String>(1)?)?,
                    classified,
                    basis: r.get::<_, Option<String>>(3)?.map(|t| parse_column(&t, basis_of)).transpose()?,
                    sentenced: r.get(4)?,
                })
            })
            .optional()?;
        if let Some(facts) = found {
            self.housing_cache().facts.insert(person, facts);
        }
        Ok(found)
    }

    fn set_stay_class(&mut self, person: PersonId, class: StayClass) -> StoreResult<()> {
        self.exec(
            "UPDATE stay SET class = ?1, born = ?2 WHERE person_id = ?3 AND +to_at = ?4",
            &[&class.class, &class.born, &person, &OPEN],
        )?;
        Ok(())
    }

    fn cell_differing(
        &mut self,
        cell: CellId,
        at: Instant,
        person: PersonId,
        class: StayClass,
        adult_born_before: i64,
    ) -> StoreResult<Option<PersonId>> {
        let at = to_micros(at);
        // Seeks on `stay_by_cell_class` (cell, class, born, to_at): people of another class, then
        // people of the same class on the other side of the age of majority. Each is a short range
        // however full the cell is, because a cell holds one class.
        let young = class.born >= adult_born_before;
        let (low, high) = if young { (i64::MIN, adult_born_before) } else { (adult_born_before, i64::MAX) };
        let other_class = [
            // Every stay has its class: written with the stay, filled by migration for older ones.
            "SELECT person_id FROM stay WHERE cell_id = ?1 AND class < ?2 AND to_at > ?3 AND person_id <> ?4 LIMIT 1",
            "SELECT person_id FROM stay WHERE cell_id = ?1 AND class > ?2 AND to_at > ?3 AND person_id <> ?4 LIMIT 1",
        ];
        for sql in other_class {
            let found = self
                .conn()
                .prepare_cached(sql)?
                .query_row(params![cell, class.class, at, person], |r| r.get(0))
                .optional()?;
            if found.is_some() {
                return Ok(found);
            }
        }
        self.conn()
            .prepare_cached(
                "SELECT person_id FROM stay WHERE cell_id = ?1 AND class = ?2 AND born >= ?3 AND born < ?4
                   AND to_at > ?5 AND person_id <> ?6 LIMIT 1",
            )?
            .query_row(params![cell, class.class, low, high, at, person], |r| r.get(0))
            .optional()
    }

    fn cell_people_from(&mut self, cell: CellId, at: Instant, person: PersonId) -> StoreResult<u32> {
        self.conn()
            .prepare_cached("SELECT count(*) FROM stay WHERE cell_id = ?1 AND to_at > ?2 AND person_id <> ?3")?
            .query_row(params![cell, to_micros(at), person], |r| r.get(0))
    }

    fn insert_group(&mut self, code: &str, name: &str) -> StoreResult<GroupId> {
        self.insert_audited("threat_group", &[Value::Text(code), Value::Text(name)])
    }

    fn group_by_code(&mut self, code: &str) -> StoreResult<Option<ThreatGroup>> {
        self.conn()
            .prepare_cached("SELECT id, code, name FROM threat_group WHERE code = ?1")?
            .query_row([code], |r| Ok(ThreatGroup { id: r.get(0)?, code: r.get(1)?, name: r.get(2)? }))
            .optional()
    }

    fn group(&mut self, id: GroupId) -> StoreResult<Option<ThreatGroup>> {
        self.conn()
            .prepare_cached("SELECT id, code, name FROM threat_group WHERE id = ?1")?
            .query_row([id], |r| Ok(ThreatGroup { id: r.get(0)?, code: r.get(1)?, name: r.get(2)? }))
            .optional()
    }

    fn groups(&mut self) -> StoreResult<Vec<ThreatGroup>> {
        let mut stmt = self.conn().prepare_cached("SELECT id, code, name FROM threat_group ORDER BY code")?;
        let rows = stmt.query_map([], |r| Ok(ThreatGroup { id: r.get(0)?, code: r.get(1)?, name: r.get(2)? }))?;
        rows.collect::<Result<_, _>>()
    }

    fn insert_affiliation(&mut self, a: &NewAffiliation<'_>) -> StoreResult<()> {
        let assessed = a.assessed_on.to_string();
        self.insert_audited(
            "group_affiliation",
            &[
                Value::Int(a.person),
                Value::Int(a.group),
                Value::Int(i64::from(a.affiliated)),
                Value::Text(a.source),
                Value::Text(&assessed),
                Value::Int(to_micros(a.recorded_at)),
                Value::Text(a.recorded_by),
            ],
        )?;
        Ok(())
    }

    fn affiliations(&mut self, person: PersonId) -> StoreResult<Vec<Affiliation>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT g.code, a.affiliated, a.source, a.assessed_on, a.recorded_at, a.recorded_by
             FROM group_affiliation a JOIN threat_group g ON g.id = a.group_id WHERE a.person_id = ?1 ORDER BY a.id",
        )?;
        let rows = stmt.query_map([person], |r| {
            Ok(Affiliation {
                group: r.get(0)?,
                affiliated: r.get(1)?,
                source: r.get(2)?,
                assessed_on: date_column(&r.get::<_, String>(3)?)?,
                recorded_at: from_micros(r.get(4)?),
                recorded_by: r.get(5)?,
            })
        })?;
        rows.collect::<Result<_, _>>()
    }

    fn person_groups(&mut self, person: PersonId) -> StoreResult<Vec<GroupId>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT a.group_id FROM group_affiliation a WHERE a.person_id = ?1 AND a.affiliated = 1
               AND a.id = (SELECT max(id) FROM group_affiliation WHERE person_id = ?1 AND group_id = a.group_id)
             ORDER BY a.group_id",
        )?;
        let rows = stmt.query_map([person], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()
    }

    fn group_members(&mut self, group: GroupId) -> StoreResult<Vec<PersonId>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT a.person_id FROM group_affiliation a WHERE a.group_id = ?1 AND a.affiliated = 1
               AND a.id = (SELECT max(id) FROM group_affiliation WHERE person_id = a.person_id AND group_id = ?1)
             ORDER BY a.person_id",
        )?;
        let rows = stmt.query_map([group], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()
    }

    fn cell_unit(&mut self, cell: CellId) -> StoreResult<UnitId> {
        self.conn().prepare_cached("SELECT unit_id FROM cell WHERE id = ?1")?.query_row([cell], |r| r.get(0))
    }

    fn any_keep_apart(&mut self) -> StoreResult<bool> {
        if let Some(any) = self.housing_cache().any_keep_apart {
            return Ok(any);
        }
        let any = self.conn().query_row("SELECT EXISTS (SELECT 1 FROM keep_apart)", [], |r| r.get(0))?;
        self.housing_cache().any_keep_apart = Some(any);
        Ok(any)
    }

    fn insert_keep_apart(&mut self, k: &NewKeepApart<'_>) -> StoreResult<i64> {
        self.housing_cache().any_keep_apart = Some(true);
        let (a_kind, a_id) = party_columns(k.a);
        let (b_kind, b_id) = party_columns(k.b);
        self.insert_audited(
            "keep_apart",
            &[
                Value::Text(a_kind),
                Value::Int(a_id),
                Value::Text(b_kind),
                Value::Int(b_id),
                Value::Text(k.scope.as_str()),
                Value::Text(k.reason),
                Value::Text(k.authorised_by),
                Value::Int(to_micros(k.effective_from)),
                k.expires_at.map(|e| Value::Int(to_micros(e))).unwrap_or(Value::Null),
                Value::Text(k.recorded_by),
            ],
        )
    }

    fn end_keep_apart(&mut self, rule: i64, at: Instant, reason: &str, recorded_by: &str) -> StoreResult<()> {
        self.insert_audited(
            "keep_apart_end",
            &[Value::Int(rule), Value::Int(to_micros(at)), Value::Text(reason), Value::Text(recorded_by)],
        )?;
        Ok(())
    }

    fn keep_apart(&mut self, rule: i64) -> StoreResult<Option<KeepApartRow>> {
        let sql = format!(
            "SELECT {KEEP_APART_COLUMNS} FROM keep_apart k LEFT JOIN keep_apart_end e ON e.rule_id = k.id WHERE k.id = ?1"
        );
        self.conn().prepare_cached(&sql)?.query_row([rule], keep_apart_row).optional()
    }

    fn keep_apart_naming(&mut self, parties: &[Party]) -> StoreResult<Vec<KeepApartRow>> {
        let sql = format!(
            "SELECT {KEEP_APART_COLUMNS} FROM keep_apart k LEFT JOIN keep_apart_end e ON e.rule_id = k.id
             WHERE (k.a_kind = ?1 AND k.a_id = ?2) OR (k.b_kind = ?1 AND k.b_id = ?2)"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let mut rules = Vec::new();
        for party in parties {
            let (kind, id) = party_columns(*party);
            for row in stmt.query_map(params![kind, id], keep_apart_row)? {
                let row = row?;
                if !rules.iter().any(|r: &KeepApartRow| r.id == row.id) {
                    rules.push(row);
                }
            }
        }
        rules.sort_by_key(|r| r.id);
        Ok(rules)
    }

    fn keep_apart_all(&mut self) -> StoreResult<Vec<KeepApartRow>> {
        let sql = format!(
            "SELECT {KEEP_APART_COLUMNS} FROM keep_apart k LEFT JOIN keep_apart_end e ON e.rule_id = k.id ORDER BY k.id"
        );
        let rows = self.conn().prepare(&sql)?.query_map([], keep_apart_row)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn party_within(
        &mut self,
        party: Party,
        scope: Scope,
        place: i64,
        at: Instant,
        person: PersonId,
    ) -> StoreResult<Option<PersonId>> {
        let at = to_micros(at);
        // Who is within the scope from `at` on: stays of the cell or unit, presence in the facility.
        let within = match scope {
            Scope::Cell => "SELECT s.person_id FROM stay s WHERE s.cell_id = ?1 AND s.to_at > ?2",
            Scope::Unit => {
                "SELECT s.person_id FROM cell c JOIN stay s ON s.cell_id = c.id WHERE c.unit_id = ?1 AND s.to_at > ?2"
            }
            Scope::Facility => "SELECT s.person_id FROM presence s WHERE s.facility_id = ?1 AND s.to_at > ?2",
        };
        let sql = match party {
            Party::Person(_) => format!("{within} AND s.person_id = ?3 AND s.person_id <> ?4 LIMIT 1"),
            Party::Group(_) => format!(
                "{within} AND s.person_id <> ?4 AND EXISTS (
                    SELECT 1 FROM group_affiliation a WHERE a.person_id = s.person_id AND a.group_id = ?3
                      AND a.affiliated = 1
                      AND a.id = (SELECT max(id) FROM group_affiliation WHERE person_id = s.person_id AND group_id = ?3))
                 LIMIT 1"
            ),
        };
        let id = match party {
            Party::Person(id) | Party::Group(id) => id,
        };
        self.conn().prepare_cached(&sql)?.query_row(params![place, at, id, person], |r| r.get(0)).optional()
    }

    fn insert_roll_count(
        &mut self,
        facility: FacilityId,
        unit: Option<UnitId>,
        counted_at: Instant,
        started_by: &str,
        cells: &[(CellId, u32)],
    ) -> StoreResult<i64> {
        let id = self.insert_audited(
            "roll_count",
            &[
                Value::Int(facility),
                unit.map(Value::Int).unwrap_or(Value::Null),
                Value::Int(to_micros(counted_at)),
                Value::Text(started_by),
            ],
        )?;
        for (cell, expected) in cells {
            self.insert_audited(
                "roll_count_cell",
                &[Value::Int(id), Value::Int(*cell), Value::Int(i64::from(*expected))],
            )?;
        }
        Ok(id)
    }

    fn insert_roll_count_entry(
        &mut self,
        count: i64,
        cell: CellId,
        counted: u32,
        at: Instant,
        by: &str,
    ) -> StoreResult<()> {
        self.insert_audited(
            "roll_count_entry",
            &[
                Value::Int(count),
                Value::Int(cell),
                Value::Int(i64::from(counted)),
                Value::Int(to_micros(at)),
                Value::Text(by),
            ],
        )?;
        Ok(())
    }

    fn insert_roll_count_resolution(&mut self, r: &NewResolution<'_>) -> StoreResult<()> {
        self.insert_audited(
            "roll_count_resolution",
            &[
                Value::Int(r.count),
                Value::Int(r.person),
                Value::Int(r.cell),
                Value::Text(r.kind),
                r.found_cell.map(Value::Int).unwrap_or(Value::Null),
                opt_text(r.incident),
                opt_text(r.note),
                Value::Int(to_micros(r.resolved_at)),
                Value::Text(r.resolved_by),
            ],
        )?;
        Ok(())
    }

    fn insert_roll_count_clearance(&mut self, count: i64, at: Instant, by: &str) -> StoreResult<()> {
        self.insert_audited("roll_count_clearance", &[Value::Int(count), Value::Int(to_micros(at)), Value::Text(by)])?;
        Ok(())
    }

    fn roll_count(&mut self, id: i64) -> StoreResult<Option<RollCountRow>> {
        let found = self
            .conn()
            .prepare_cached(
                "SELECT r.id, r.facility_id, r.unit_id, r.counted_at, r.started_by, c.cleared_at, c.cleared_by
                 FROM roll_count r LEFT JOIN roll_count_clearance c ON c.count_id = r.id WHERE r.id = ?1",
            )?
            .query_row([id], |r| {
                let cleared: Option<i64> = r.get(5)?;
                Ok(RollCountRow {
                    id: r.get(0)?,
                    facility: r.get(1)?,
                    unit: r.get(2)?,
                    counted_at: from_micros(r.get(3)?),
                    started_by: r.get(4)?,
                    cells: Vec::new(),
                    entries: Vec::new(),
                    resolutions: Vec::new(),
                    cleared: match cleared {
                        Some(at) => Some((from_micros(at), r.get(6)?)),
                        None => None,
                    },
                })
            })
            .optional()?;
        let Some(mut count) = found else { return Ok(None) };
        count.cells = self
            .conn()
            .prepare_cached("SELECT cell_id, expected FROM roll_count_cell WHERE count_id = ?1 ORDER BY id")?
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        count.entries = self
            .conn()
            .prepare_cached(
                "SELECT cell_id, counted, entered_at, entered_by FROM roll_count_entry WHERE count_id = ?1 ORDER BY id",
            )?
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, from_micros(r.get(2)?), r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        count.resolutions = self
            .conn()
            .prepare_cached(
                "SELECT person_id, cell_id, kind, found_cell_id, incident, note, resolved_at, resolved_by
                 FROM roll_count_resolution WHERE count_id = ?1 ORDER BY id",
            )?
            .query_map([id], |r| {
                Ok(ResolutionRow {
                    person: r.get(0)?,
                    cell: r.get(1)?,
                    kind: r.get(2)?,
                    found_cell: r.get(3)?,
                    incident: r.get(4)?,
                    note: r.get(5)?,
                    resolved_at: from_micros(r.get(6)?),
                    resolved_by: r.get(7)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(Some(count))
    }

    fn uncleared_roll_counts(&mut self, facilities: Option<&[FacilityId]>) -> StoreResult<Vec<i64>> {
        let filter = facilities.map(|f| format!("AND r.facility_id IN ({})", id_list(f))).unwrap_or_default();
        let sql = format!(
            "SELECT r.id FROM roll_count r
             WHERE NOT EXISTS (SELECT 1 FROM roll_count_clearance c WHERE c.count_id = r.id) {filter} ORDER BY r.id"
        );
        let rows = self.conn().prepare(&sql)?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn roll_counts(&mut self, facilities: Option<&[FacilityId]>, before: i64, limit: u32) -> StoreResult<Vec<i64>> {
        let filter = facilities.map(|f| format!("AND facility_id IN ({})", id_list(f))).unwrap_or_default();
        let sql = format!("SELECT id FROM roll_count WHERE id < ?1 {filter} ORDER BY id DESC LIMIT ?2");
        let rows =
            self.conn().prepare(&sql)?.query_map(params![before, limit], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn placed_now(
        &mut self,
        facility: FacilityId,
        unit: Option<UnitId>,
        include_out: bool,
    ) -> StoreResult<Vec<(CellId, PersonId)>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT s.cell_id, s.person_id FROM custody_state s JOIN cell c ON c.id = s.cell_id
             WHERE s.facility_id = ?1 AND s.status = 'held' AND s.cell_id IS NOT NULL
               AND (?3 = 1 OR s.out_reason IS NULL) AND (c.unit_id = ?2 OR ?2 IS NULL)",
        )?;
        let rows = stmt.query_map(params![facility, unit, include_out], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()
    }

    fn unplaced_now(&mut self, facility: FacilityId) -> StoreResult<Vec<PersonId>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT person_id FROM custody_state WHERE facility_id = ?1 AND status = 'held' AND cell_id IS NULL
               AND out_reason IS NULL ORDER BY person_id",
        )?;
        let rows = stmt.query_map([facility], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()
    }

    fn category_facts_held(&mut self, facility: FacilityId) -> StoreResult<Vec<(PersonId, CategoryFacts)>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT p.id, p.sex, p.date_of_birth,
                (SELECT legal_status || ' ' || regime FROM classification c
                  WHERE c.person_id = p.id AND c.effective_from >= b.admitted_at
                  ORDER BY c.effective_from DESC, c.id DESC LIMIT 1),
                b.legal_basis_kind,
                EXISTS (SELECT 1 FROM sentence_record r WHERE r.booking_id = b.id)
             FROM custody_state s JOIN person p ON p.id = s.person_id JOIN booking b ON b.id = s.booking_id
             WHERE s.facility_id = ?1 AND s.status = 'held'",
        )?;
        let rows = stmt.query_map([facility], |r| {
            let classified: Option<String> = r.get(3)?;
            let classified = match classified.as_deref().and_then(|t| t.split_once(' ')) {
                Some((status, regime)) => {
                    Some((parse_column(status, LegalStatus::parse)?, parse_column(regime, Regime::parse)?))
                }
                None => None,
            };
            Ok((
                r.get(0)?,
                CategoryFacts {
                    sex: parse_column(&r.get::<_, String>(1)?, sex_of)?,
                    born: date_column(&r.get::<_, String>(2)?)?,
                    classified,
                    basis: Some(parse_column(&r.get::<_, String>(4)?, basis_of)?),
                    sentenced: r.get(5)?,
                },
            ))
        })?;
        rows.collect::<Result<_, _>>()
    }

    fn groups_held(&mut self, facility: FacilityId) -> StoreResult<Vec<(PersonId, GroupId)>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT a.person_id, a.group_id FROM custody_state s JOIN group_affiliation a ON a.person_id = s.person_id
             WHERE s.facility_id = ?1 AND s.status = 'held' AND a.affiliated = 1
               AND a.id = (SELECT max(id) FROM group_affiliation WHERE person_id = a.person_id AND group_id = a.group_id)",
        )?;
        let rows = stmt.query_map([facility], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()
    }

    fn out_at(&mut self, person: PersonId, at: Instant) -> StoreResult<bool> {
        let kind: Option<String> = self
            .conn()
            .prepare_cached(
                "SELECT kind FROM movement WHERE person_id = ?1 AND occurred_at <= ?2 ORDER BY occurred_at DESC, id DESC LIMIT 1",
            )?
            .query_row(params![person, to_micros(at)], |r| r.get(0))
            .optional()?;
        Ok(kind.as_deref() == Some("out"))
    }
}
