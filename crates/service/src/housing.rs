//! Housing rules: the capacity line and its overrides, unit designations, classification,
//! security threat groups and keep-apart rules. [`check_placement`] enforces them on every
//! placement and cell move; [`check_facility_entry`] on admissions, transfers and receipts.

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};

use domain::person::LegalBasisKind;
use domain::separation::{
    AgeGroup, CapacityLine, Category, Designation, LegalStatus, Party, PersonId, Regime, Scope, SecurityLevel,
};
use domain::text::{Code, LongText, ShortText};
use domain::time::{rfc3339, Instant};
use store::housing::HousingTx;
use store::housing::{
    Affiliation, CapacityOverride, CategoryFacts, ClassificationRecord, HousingPolicy, KeepApartRow, NewAffiliation,
    NewCapacityOverride, NewKeepApart, StayClass, ThreatGroup,
};
use store::{Store, Tx};

use crate::{audit, Context, Service, ServiceError, ServiceResult};

/// Longest a capacity override may run before a director must look again.
const OVERRIDE_MAX_DAYS: i64 = 366;

/// A person's Rule 11 categories at an instant, with what the stay index needs to compare them.
#[derive(Debug, Clone, Copy)]
pub struct PersonCategory {
    /// The categories.
    pub category: Category,
    /// The same facts as stored on a stay.
    pub stay_class: StayClass,
    /// People born on or after this date (YYYYMMDD) are young at that instant.
    pub adult_born_before: i64,
}

/// The categories of a person in a facility at an instant: sex and age from the identity, legal
/// status and regime from the latest classification or, before any, presumed from the legal basis.
pub fn person_category<T: Tx>(
    tx: &mut T,
    person: PersonId,
    facility: i64,
    at: Instant,
) -> ServiceResult<PersonCategory> {
    let facts =
        tx.category_facts(person)?.ok_or_else(|| ServiceError::Internal(format!("person {person} vanished")))?;
    let adult_age = tx.housing_policy(facility, at)?.adult_age;
    Ok(category_from(&facts, adult_age, at))
}

/// The categories that facts on record give at an instant, under a facility's adult age.
pub fn category_from(facts: &CategoryFacts, adult_age: u32, at: Instant) -> PersonCategory {
    let (status, regime) = facts.classified.unwrap_or_else(|| {
        let basis = facts.basis.unwrap_or(LegalBasisKind::RemandOrder);
        (LegalStatus::presumed_from(basis), Regime::presumed_from(basis))
    });
    // Recorded sentences mean a judgment: convicted, whatever an earlier classification said.
    let status = if facts.sentenced { LegalStatus::Convicted } else { status };
    let today = at.date_naive();
    let category = Category { sex: facts.sex, age: AgeGroup::on(facts.born, today, adult_age), status, regime };
    let came_of_age = today.checked_sub_months(Months::new(12 * adult_age)).unwrap_or(NaiveDate::MIN);
    PersonCategory {
        category,
        stay_class: StayClass::of(facts.sex, status, regime, facts.born),
        adult_born_before: store::housing::yyyymmdd(came_of_age) + 1,
    }
}

/// What a permitted placement needs to record.
#[derive(Debug, Clone, Copy)]
pub struct PlacementAllowed {
    /// The facts to copy onto the new stay.
    pub stay_class: StayClass,
    /// The capacity override that let it exceed the line, if one did.
    pub capacity_override: Option<i64>,
}

fn number_of<T: Tx>(tx: &mut T, person: PersonId) -> ServiceResult<String> {
    Ok(tx.person(person)?.map(|p| p.number).unwrap_or_else(|| format!("person {person}")))
}

/// Check the housing rules for placing `person` in `cell` at `at`, recorded at `now`: the person
/// is there from `at` until now at least, so every rule that applies at either end counts — the
/// unit's designation, the categories of the cell's occupants, the capacity line, and keep-apart
/// rules in force at any time between. A backdated placement cannot slip under a rule.
pub fn check_placement<T: Tx>(
    tx: &mut T,
    person: PersonId,
    cell: &store::Cell,
    at: Instant,
    now: Instant,
) -> ServiceResult<PlacementAllowed> {
    let now = now.max(at);
    let mine = person_category(tx, person, cell.facility, at)?;
    for t in [at, now] {
        let designation = tx.unit_designation(cell.unit, t)?;
        if let Some(dimension) = designation.refuses(&mine.category) {
            let unit = tx.unit(cell.unit)?.map(|u| u.code).unwrap_or_default();
            return Err(ServiceError::refused(
                "housing.designation",
                format!(
                    "unit {unit} is designated for {} and the person is {} (they differ in {dimension})",
                    designation.describe(),
                    mine.category.describe()
                ),
            ));
        }
    }
    if let Some(other) = tx.cell_differing(cell.id, at, person, mine.stay_class, mine.adult_born_before)? {
        let other_category = person_category(tx, other, cell.facility, at)?.category;
        let dimension = mine.category.differs_from(&other_category).unwrap_or("categories");
        let number = number_of(tx, other)?;
        return Err(ServiceError::refused(
            "housing.category",
            format!(
                "cell {} holds {number} ({}) and the person is {}: Mandela Rule 11 keeps them apart by {dimension}",
                cell.code,
                other_category.describe(),
                mine.category.describe()
            ),
        ));
    }
    let mut capacity_override = None;
    let mut people = None;
    for t in [at, now] {
        let Some(line) = tx.housing_policy(cell.facility, t)?.capacity_line else { continue };
        // An override in force lets the cell go over the line: no need to count.
        if let Some(id) = tx.override_in_force(cell.facility, cell.id, t)? {
            capacity_override = capacity_override.or(Some(id));
            continue;
        }
        let limit = line.cell_limit(&cell.dimensions, cell.rated_places);
        let held = match people {
            Some(n) => n,
            None => *people.insert(tx.cell_people_from(cell.id, at, person)?),
        };
        match (held >= limit).then_some(()) {
            None => {}
            Some(()) => {
                return Err(ServiceError::refused(
                    "housing.capacity_line",
                    format!(
                        "cell {} holds {held} and the facility's capacity line ({}) allows {limit}; a director may record an override",
                        cell.code,
                        line.as_str()
                    ),
                ))
            }
        }
    }
    for (rule, other) in rules_in_force(tx, person, at, now)? {
        let (place, words) = match rule.scope {
            Scope::Cell => (cell.id, format!("cell {}", cell.code)),
            Scope::Unit => (cell.unit, "the unit".to_string()),
            Scope::Facility => (cell.facility, "the facility".to_string()),
        };
        if let Some(found) = tx.party_within(other, rule.scope, place, at, person)? {
            // The other person shares the caller's cell, unit or facility: theirs to see.
            return Err(keep_apart_refusal(tx, &rule, found, &words, true)?);
        }
    }
    Ok(PlacementAllowed { stay_class: mine.stay_class, capacity_override })
}

/// Refuse an admission, transfer or receipt at `at`, recorded at `now`, that would bring a person
/// into the same facility as someone a facility-scope keep-apart rule keeps them from.
/// The destination may be outside the caller's facilities: the refusal then names neither the
/// person there nor the rule's parties, only that a rule forbids it.
pub fn check_facility_entry<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    person: PersonId,
    facility: i64,
    at: Instant,
) -> ServiceResult<()> {
    for (rule, other) in rules_in_force(tx, person, at, ctx.now.max(at))? {
        if rule.scope != Scope::Facility {
            continue;
        }
        if let Some(found) = tx.party_within(other, Scope::Facility, facility, at, person)? {
            let visible = crate::person_visible(tx, ctx, found)?;
            return Err(keep_apart_refusal(tx, &rule, found, "facility", visible)?);
        }
    }
    Ok(())
}

/// The rules in force at some time from `from` to `to` concerning a person, each with the party
/// on the other side.
fn rules_in_force<T: Tx>(
    tx: &mut T,
    person: PersonId,
    from: Instant,
    to: Instant,
) -> ServiceResult<Vec<(KeepApartRow, Party)>> {
    if !tx.any_keep_apart()? {
        return Ok(Vec::new());
    }
    let groups = tx.person_groups(person)?;
    let mut parties = vec![Party::Person(person)];
    parties.extend(groups.iter().map(|g| Party::Group(*g)));
    let covers = |party: &Party| match party {
        Party::Person(p) => *p == person,
        Party::Group(g) => groups.contains(g),
    };
    let mut found = Vec::new();
    for rule in tx.keep_apart_naming(&parties)?.into_iter().filter(|r| r.in_force_during(from, to)) {
        if covers(&rule.a) {
            found.push((rule.clone(), rule.b));
        }
        if covers(&rule.b) && rule.a != rule.b {
            found.push((rule.clone(), rule.a));
        }
    }
    Ok(found)
}

fn keep_apart_refusal<T: Tx>(
    tx: &mut T,
    rule: &KeepApartRow,
    other: PersonId,
    place: &str,
    visible: bool,
) -> ServiceResult<ServiceError> {
    if !visible {
        return Ok(ServiceError::refused(
            "housing.keep_apart",
            format!(
                "keep-apart rule {} keeps the person out of the {place} where someone it names is held (outside your facilities)",
                rule.id
            ),
        ));
    }
    let number = number_of(tx, other)?;
    Ok(ServiceError::refused(
        "housing.keep_apart",
        format!(
            "keep-apart rule {} ({}: {}) keeps the person out of the same {} as {number}, who is in {place}",
            rule.id,
            describe_rule_parties(tx, rule)?,
            rule.reason,
            rule.scope.as_str()
        ),
    ))
}

fn describe_party<T: Tx>(tx: &mut T, party: Party) -> ServiceResult<PartyRef> {
    Ok(match party {
        Party::Person(id) => PartyRef { person: Some(number_of(tx, id)?), group: None },
        Party::Group(id) => PartyRef { person: None, group: tx.group(id)?.map(|g| Code::stored(g.code)) },
    })
}

fn describe_rule_parties<T: Tx>(tx: &mut T, rule: &KeepApartRow) -> ServiceResult<String> {
    Ok(format!("{} and {}", describe_party(tx, rule.a)?, describe_party(tx, rule.b)?))
}

/// One side of a keep-apart rule, named the way staff name it: a person number or a group code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PartyRef {
    /// A person number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// A security threat group code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Code>,
}

impl std::fmt::Display for PartyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.person, &self.group) {
            (Some(p), _) => write!(f, "{p}"),
            (None, Some(g)) => write!(f, "group {g}"),
            (None, None) => write!(f, "nobody"),
        }
    }
}

fn resolve_party<T: Tx>(tx: &mut T, party: &PartyRef, field: &str) -> ServiceResult<Party> {
    match (&party.person, &party.group) {
        (Some(number), None) => crate::person_to_change(tx, number).map(Party::Person),
        (None, Some(code)) => tx
            .group_by_code(code)?
            .map(|g| Party::Group(g.id))
            .ok_or_else(|| ServiceError::NotFound { what: "security threat group", key: code.to_string() }),
        _ => Err(ServiceError::field(field, "name exactly one of `person` or `group`")),
    }
}

fn required(field: &str, text: &str) -> ServiceResult<()> {
    if text.trim().is_empty() {
        return Err(ServiceError::field(field, "is required"));
    }
    Ok(())
}

fn facility<T: Tx>(tx: &mut T, code: &str) -> ServiceResult<store::Facility> {
    tx.facility_by_code(code)?.ok_or_else(|| ServiceError::NotFound { what: "facility", key: code.to_string() })
}

fn person_id<T: Tx>(tx: &mut T, number: &str) -> ServiceResult<PersonId> {
    tx.person_id(number)?.ok_or_else(|| ServiceError::NotFound { what: "person", key: number.to_string() })
}

/// A facility's housing policy to record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyRequest {
    /// The capacity placements may not exceed; `null` for none.
    pub capacity_line: Option<CapacityLine>,
    /// Age from which people count as adults; the current one when absent.
    #[serde(default)]
    pub adult_age: Option<u32>,
}

/// A capacity override to record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OverrideRequest {
    /// One cell only; the whole facility when absent.
    #[serde(default)]
    pub cell: Option<String>,
    /// Why placing over the line is necessary.
    pub reason: LongText,
    /// Until when (at most a year ahead).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Instant,
}

/// A classification to record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClassifyRequest {
    /// Untried, convicted or other.
    pub legal_status: LegalStatus,
    /// Civil or criminal.
    pub regime: Regime,
    /// Security level.
    pub security_level: SecurityLevel,
    /// Vulnerability flags.
    #[serde(default)]
    pub vulnerabilities: Vec<Code>,
    /// Free-text note.
    #[serde(default)]
    pub note: Option<LongText>,
}

/// A recorded classification, and anyone the person now shares a cell with against Rule 11.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Classified {
    /// Person number.
    pub person: String,
    /// Categories now.
    pub category: Category,
    /// Cellmates whose categories now differ: the person should be moved.
    pub cellmates_to_separate: Vec<String>,
    /// Audit event.
    pub audit_seq: i64,
}

/// An affiliation to record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AffiliationRequest {
    /// Group code.
    pub group: Code,
    /// Affiliated (true), or no longer (false).
    #[serde(default = "yes")]
    pub affiliated: bool,
    /// Where the information comes from.
    pub source: ShortText,
    /// Date of the assessment.
    pub assessed_on: NaiveDate,
}

fn yes() -> bool {
    true
}

/// A keep-apart rule to record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeepApartRequest {
    /// One side.
    pub a: PartyRef,
    /// The other side.
    pub b: PartyRef,
    /// Cell, unit or facility.
    pub scope: Scope,
    /// Why.
    pub reason: LongText,
    /// Who authorised it; the recording user when absent.
    #[serde(default)]
    pub authorised_by: Option<ShortText>,
    /// Until when; indefinite when absent.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<Instant>,
}

/// A keep-apart rule as staff read it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeepApartView {
    /// Rule id.
    pub id: i64,
    /// One side.
    pub a: PartyRef,
    /// The other side.
    pub b: PartyRef,
    /// Cell, unit or facility.
    pub scope: Scope,
    /// Why.
    pub reason: String,
    /// Who authorised it.
    pub authorised_by: String,
    /// From when.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub effective_from: Instant,
    /// Until when.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<Instant>,
    /// When it was lifted early.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub ended_at: Option<Instant>,
    /// In force now.
    pub in_force: bool,
}

/// A recorded keep-apart rule and the people who already break it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeepApartRecorded {
    /// The rule.
    pub rule: KeepApartView,
    /// Pairs of person numbers now within the rule's scope of each other: to be moved.
    pub breaches_now: Vec<(String, String)>,
    /// Audit event.
    pub audit_seq: i64,
}

/// Everything housing knows of a person.
/// A cell a person might be placed in, and what the rules say of it.
#[derive(Debug, Clone, Serialize)]
pub struct PlacementOption {
    /// Cell code.
    pub cell: String,
    /// Unit code.
    pub unit: String,
    /// People in it now (the person aside).
    pub people: u32,
    /// Declared places.
    pub places: u32,
    /// The rule that refuses the placement, if one does.
    pub refused_by: Option<String>,
    /// The refusal in words.
    pub refusal: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonHousing {
    /// Person number.
    pub person: String,
    /// Categories now, in the facility holding them (or the last one).
    pub category: Option<Category>,
    /// Classification history, oldest first.
    pub classifications: Vec<ClassificationRecord>,
    /// Affiliation history, oldest first.
    pub affiliations: Vec<Affiliation>,
    /// Keep-apart rules naming the person or their groups, in force or not.
    pub keep_apart: Vec<KeepApartView>,
}

/// Keep-apart rules in force by scope and kind, nationally and per facility.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeepApartStatistics {
    /// Rules in force now.
    pub in_force: u64,
    /// Rules that expired or were lifted.
    pub ended: u64,
    /// Rules in force at cell, unit and facility scope.
    pub by_scope: Vec<(Scope, u64)>,
    /// Rules in force between two groups.
    pub between_groups: u64,
    /// Rules in force naming at least one person.
    pub naming_people: u64,
    /// Per facility the caller may see.
    pub facilities: Vec<FacilityKeepApart>,
}

/// Keep-apart figures of one facility.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FacilityKeepApart {
    /// Facility code.
    pub facility: String,
    /// People held now.
    pub held: u64,
    /// People held now affiliated with a security threat group.
    pub affiliated: u64,
    /// Rules in force naming someone held there.
    pub rules_naming_people_held: u64,
}

fn view<T: Tx>(tx: &mut T, rule: &KeepApartRow, now: Instant) -> ServiceResult<KeepApartView> {
    Ok(KeepApartView {
        id: rule.id,
        a: describe_party(tx, rule.a)?,
        b: describe_party(tx, rule.b)?,
        scope: rule.scope,
        reason: rule.reason.clone(),
        authorised_by: rule.authorised_by.clone(),
        effective_from: rule.effective_from,
        expires_at: rule.expires_at,
        ended_at: rule.ended.as_ref().map(|e| e.0),
        in_force: rule.in_force(now),
    })
}

/// Record a facility's housing policy inside the caller's transaction.
pub fn set_policy_in<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    code: &str,
    request: &PolicyRequest,
) -> ServiceResult<HousingPolicy> {
    let facility = facility(tx, code)?;
    let current = tx.housing_policy(facility.id, ctx.now)?;
    let adult_age = request.adult_age.unwrap_or(current.adult_age);
    if !(14..=25).contains(&adult_age) {
        return Err(ServiceError::field(
            "adult_age",
            format!("{adult_age} is not an age of adulthood between 14 and 25"),
        ));
    }
    let policy = HousingPolicy { capacity_line: request.capacity_line, adult_age };
    tx.insert_housing_policy(facility.id, &policy, ctx.now, &ctx.actor)?;
    audit(tx, ctx, "housing.policy", code, request)?;
    Ok(policy)
}

/// Record a capacity override inside the caller's transaction.
pub fn record_override_in<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    code: &str,
    request: &OverrideRequest,
) -> ServiceResult<CapacityOverride> {
    required("reason", &request.reason)?;
    if request.expires_at <= ctx.now {
        return Err(ServiceError::field("expires_at", format!("{} is not in the future", rfc3339(request.expires_at))));
    }
    if request.expires_at > ctx.now + chrono::Duration::days(OVERRIDE_MAX_DAYS) {
        return Err(ServiceError::field("expires_at", "an override may run at most a year; record a new one then"));
    }
    let facility = facility(tx, code)?;
    let cell = match &request.cell {
        Some(cell_code) => Some(
            tx.cell_by_code(facility.id, cell_code, ctx.now)?
                .ok_or_else(|| ServiceError::NotFound { what: "cell", key: cell_code.clone() })?
                .id,
        ),
        None => None,
    };
    let id = tx.insert_capacity_override(&NewCapacityOverride {
        facility: facility.id,
        cell,
        reason: &request.reason,
        authorised_by: &ctx.actor,
        effective_from: ctx.now,
        expires_at: request.expires_at,
    })?;
    audit(tx, ctx, "housing.override", code, request)?;
    Ok(CapacityOverride {
        id,
        facility: facility.code,
        cell: request.cell.clone(),
        reason: request.reason.to_string(),
        authorised_by: ctx.actor.clone(),
        effective_from: ctx.now,
        expires_at: request.expires_at,
    })
}

/// Designate a unit inside the caller's transaction.
pub fn designate_unit_in<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    code: &str,
    unit_code: &str,
    designation: &Designation,
) -> ServiceResult<Designation> {
    let facility = facility(tx, code)?;
    let unit = tx
        .unit_by_code(facility.id, unit_code)?
        .ok_or_else(|| ServiceError::NotFound { what: "unit", key: unit_code.to_string() })?;
    tx.insert_unit_designation(unit.id, designation, ctx.now, &ctx.actor)?;
    audit(tx, ctx, "housing.designate", &format!("{code}/{unit_code}"), designation)?;
    Ok(*designation)
}

/// The most vulnerability flags one classification may carry.
pub const MAX_VULNERABILITIES: usize = 20;

/// Classify a person inside the caller's transaction. The classification is a fact and is always
/// recorded; cellmates it now conflicts with are listed so that staff move the person.
pub fn classify_in<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    number: &str,
    request: &ClassifyRequest,
) -> ServiceResult<Classified> {
    let person = crate::person_to_change(tx, number)?;
    if request.vulnerabilities.len() > MAX_VULNERABILITIES {
        return Err(ServiceError::field(
            "vulnerabilities",
            format!("has {} flags; the limit is {MAX_VULNERABILITIES}", request.vulnerabilities.len()),
        ));
    }
    tx.insert_classification(
        person,
        &ClassificationRecord {
            legal_status: request.legal_status,
            regime: request.regime,
            security_level: request.security_level,
            vulnerabilities: request.vulnerabilities.iter().map(ToString::to_string).collect(),
            note: request.note.as_deref().map(str::to_string),
            effective_from: ctx.now,
            recorded_by: ctx.actor.clone(),
        },
    )?;
    let (state, _) = tx.custody_state(person)?;
    let mut cellmates_to_separate = Vec::new();
    let facility = match state.status {
        domain::custody::CustodyStatus::Held { facility, .. } => Some(facility),
        domain::custody::CustodyStatus::InTransit { to, .. } => Some(to),
        domain::custody::CustodyStatus::Free => None,
    };
    let mut category = None;
    if let Some(facility) = facility {
        let mine = person_category(tx, person, facility, ctx.now)?;
        category = Some(mine.category);
        tx.set_stay_class(person, mine.stay_class)?;
        if let domain::custody::CustodyStatus::Held { placement: Some(placement), .. } = state.status {
            for other in tx.cell_holders_from(placement.cell, ctx.now)? {
                if other != person && person_category(tx, other, facility, ctx.now)?.category != mine.category {
                    cellmates_to_separate.push(number_of(tx, other)?);
                }
            }
        }
    }
    let audit_seq = audit(tx, ctx, "housing.classify", number, request)?;
    let category = match category {
        Some(c) => c,
        None => person_category(tx, person, 0, ctx.now)?.category,
    };
    Ok(Classified { person: number.to_string(), category, cellmates_to_separate, audit_seq })
}

/// Record a security threat group inside the caller's transaction.
pub fn add_group_in<T: Tx>(tx: &mut T, ctx: &Context, code: &Code, name: &ShortText) -> ServiceResult<ThreatGroup> {
    if tx.group_by_code(code)?.is_some() {
        return Err(ServiceError::Conflict(format!("a security threat group with code {code} already exists")));
    }
    let id = tx.insert_group(code, name)?;
    audit(tx, ctx, "housing.group", code.as_str(), &serde_json::json!({ "code": code, "name": name }))?;
    Ok(ThreatGroup { id, code: code.to_string(), name: name.to_string() })
}

/// Record a person's affiliation with a group (or its end) inside the caller's transaction.
pub fn affiliate_in<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    number: &str,
    request: &AffiliationRequest,
) -> ServiceResult<Vec<Affiliation>> {
    required("source", &request.source)?;
    if request.assessed_on > ctx.now.date_naive() {
        return Err(ServiceError::field("assessed_on", format!("{} is in the future", request.assessed_on)));
    }
    let person = crate::person_to_change(tx, number)?;
    let group = tx
        .group_by_code(&request.group)?
        .ok_or_else(|| ServiceError::NotFound { what: "security threat group", key: request.group.to_string() })?;
    tx.insert_affiliation(&NewAffiliation {
        person,
        group: group.id,
        affiliated: request.affiliated,
        source: &request.source,
        assessed_on: request.assessed_on,
        recorded_at: ctx.now,
        recorded_by: &ctx.actor,
    })?;
    audit(tx, ctx, "housing.affiliate", number, request)?;
    Ok(tx.affiliations(person)?)
}

/// Record a keep-apart rule inside the caller's transaction. People who already break it are
/// listed: the rule applies to every placement from now on, and staff move those people.
pub fn add_keep_apart_in<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    request: &KeepApartRequest,
) -> ServiceResult<KeepApartRecorded> {
    required("reason", &request.reason)?;
    if let Some(expires) = request.expires_at {
        if expires <= ctx.now {
            return Err(ServiceError::field("expires_at", format!("{} is not in the future", rfc3339(expires))));
        }
    }
    let a = resolve_party(tx, &request.a, "a")?;
    let b = resolve_party(tx, &request.b, "b")?;
    if a == b {
        return Err(ServiceError::field("b", "is the same as `a`"));
    }
    let authorised_by = request.authorised_by.as_deref().unwrap_or(&ctx.actor).to_string();
    let id = tx.insert_keep_apart(&NewKeepApart {
        a,
        b,
        scope: request.scope,
        reason: &request.reason,
        authorised_by: &authorised_by,
        effective_from: ctx.now,
        expires_at: request.expires_at,
        recorded_by: &ctx.actor,
    })?;
    let rule = tx.keep_apart(id)?.ok_or_else(|| ServiceError::Internal("rule just written is missing".into()))?;
    let breaches_now = breaches(tx, &rule, ctx.now)?;
    let audit_seq = audit(tx, ctx, "housing.keep_apart", &id.to_string(), request)?;
    Ok(KeepApartRecorded { rule: view(tx, &rule, ctx.now)?, breaches_now, audit_seq })
}

/// People of side `a` now within the rule's scope of someone of side `b`.
fn breaches<T: Tx>(tx: &mut T, rule: &KeepApartRow, at: Instant) -> ServiceResult<Vec<(String, String)>> {
    let members = |tx: &mut T, party: Party| -> ServiceResult<Vec<PersonId>> {
        Ok(match party {
            Party::Person(p) => vec![p],
            Party::Group(g) => tx.group_members(g)?,
        })
    };
    let mut found = Vec::new();
    for person in members(tx, rule.a)? {
        let (state, _) = tx.custody_state(person)?;
        let domain::custody::CustodyStatus::Held { facility, placement, .. } = state.status else { continue };
        let place = match (rule.scope, placement) {
            (Scope::Facility, _) => facility,
            (Scope::Cell, Some(p)) => p.cell,
            (Scope::Unit, Some(p)) => tx.cell_unit(p.cell)?,
            (_, None) => continue,
        };
        if let Some(other) = tx.party_within(rule.b, rule.scope, place, at, person)? {
            found.push((number_of(tx, person)?, number_of(tx, other)?));
        }
    }
    Ok(found)
}

/// Lift a keep-apart rule early inside the caller's transaction.
pub fn end_keep_apart_in<T: Tx>(tx: &mut T, ctx: &Context, rule: i64, reason: &str) -> ServiceResult<KeepApartView> {
    required("reason", reason)?;
    let found = tx
        .keep_apart(rule)?
        .ok_or_else(|| ServiceError::NotFound { what: "keep-apart rule", key: rule.to_string() })?;
    if !found.in_force(ctx.now) {
        return Err(ServiceError::refused(
            "housing.rule_not_in_force",
            format!("keep-apart rule {rule} is not in force"),
        ));
    }
    tx.end_keep_apart(rule, ctx.now, reason, &ctx.actor)?;
    audit(tx, ctx, "housing.keep_apart_end", &rule.to_string(), &serde_json::json!({ "reason": reason }))?;
    let ended = tx.keep_apart(rule)?.ok_or_else(|| ServiceError::Internal("rule vanished".into()))?;
    view(tx, &ended, ctx.now)
}

impl<S: Store> Service<S> {
    /// Record a facility's capacity line and adult age.
    pub fn set_housing_policy(
        &self,
        ctx: &Context,
        facility: &str,
        request: &PolicyRequest,
    ) -> ServiceResult<HousingPolicy> {
        self.batch(|tx| set_policy_in(tx, ctx, facility, request))
    }

    /// A facility's housing policy now.
    pub fn housing_policy(&self, facility_code: &str, at: Instant) -> ServiceResult<HousingPolicy> {
        let mut tx = self.store().read()?;
        let id = facility(&mut tx, facility_code)?.id;
        Ok(tx.housing_policy(id, at)?)
    }

    /// Record a director's capacity override.
    pub fn record_override(
        &self,
        ctx: &Context,
        facility: &str,
        request: &OverrideRequest,
    ) -> ServiceResult<CapacityOverride> {
        self.batch(|tx| record_override_in(tx, ctx, facility, request))
    }

    /// Every override of the given facilities (all when None), newest first.
    pub fn capacity_overrides(&self, facilities: Option<&[String]>) -> ServiceResult<Vec<CapacityOverride>> {
        let mut tx = self.store().read()?;
        let ids = match facilities {
            Some(codes) => {
                Some(codes.iter().map(|c| facility(&mut tx, c).map(|f| f.id)).collect::<ServiceResult<Vec<_>>>()?)
            }
            None => None,
        };
        Ok(tx.capacity_overrides(ids.as_deref())?)
    }

    /// Designate a unit for categories.
    pub fn designate_unit(
        &self,
        ctx: &Context,
        facility: &str,
        unit: &str,
        designation: &Designation,
    ) -> ServiceResult<Designation> {
        self.batch(|tx| designate_unit_in(tx, ctx, facility, unit, designation))
    }

    /// Classify a person.
    pub fn classify(&self, ctx: &Context, person: &str, request: &ClassifyRequest) -> ServiceResult<Classified> {
        self.batch(|tx| classify_in(tx, ctx, person, request))
    }

    /// Record a security threat group.
    pub fn add_group(&self, ctx: &Context, code: &Code, name: &ShortText) -> ServiceResult<ThreatGroup> {
        self.batch(|tx| add_group_in(tx, ctx, code, name))
    }

    /// Every security threat group.
    pub fn groups(&self) -> ServiceResult<Vec<ThreatGroup>> {
        Ok(self.store().read()?.groups()?)
    }

    /// Record a person's affiliation with a group.
    pub fn affiliate(
        &self,
        ctx: &Context,
        person: &str,
        request: &AffiliationRequest,
    ) -> ServiceResult<Vec<Affiliation>> {
        self.batch(|tx| affiliate_in(tx, ctx, person, request))
    }

    /// Record a keep-apart rule.
    pub fn add_keep_apart(&self, ctx: &Context, request: &KeepApartRequest) -> ServiceResult<KeepApartRecorded> {
        self.batch(|tx| add_keep_apart_in(tx, ctx, request))
    }

    /// Lift a keep-apart rule early.
    pub fn end_keep_apart(&self, ctx: &Context, rule: i64, reason: &str) -> ServiceResult<KeepApartView> {
        self.batch(|tx| end_keep_apart_in(tx, ctx, rule, reason))
    }

    /// Every keep-apart rule, in force or not, oldest first.
    pub fn keep_apart_rules(&self, now: Instant) -> ServiceResult<Vec<KeepApartView>> {
        let mut tx = self.store().read()?;
        let rules = tx.keep_apart_all()?;
        rules.iter().map(|r| view(&mut tx, r, now)).collect()
    }

    /// Keep-apart statistics now, with the facilities `visible` accepts.
    pub fn keep_apart_statistics(
        &self,
        visible: impl Fn(&str) -> bool,
        now: Instant,
    ) -> ServiceResult<KeepApartStatistics> {
        let mut tx = self.store().read()?;
        let rules = tx.keep_apart_all()?;
        let in_force: Vec<&KeepApartRow> = rules.iter().filter(|r| r.in_force(now)).collect();
        let is_person = |p: &Party| matches!(p, Party::Person(_));
        let population = tx.population_at(now, false)?;
        let mut facilities = Vec::new();
        for facility in tx.facilities()?.into_iter().filter(|f| visible(&f.code)) {
            let mut affiliated: Vec<PersonId> = tx.groups_held(facility.id)?.into_iter().map(|(p, _)| p).collect();
            affiliated.dedup();
            let mut naming = 0;
            for rule in &in_force {
                let mut here = false;
                for party in [rule.a, rule.b] {
                    if let Party::Person(p) = party {
                        here |= matches!(tx.custody_state(p)?.0.status,
                            domain::custody::CustodyStatus::Held { facility: f, .. } if f == facility.id);
                    }
                }
                naming += u64::from(here);
            }
            facilities.push(FacilityKeepApart {
                held: population.by_facility.get(&facility.id).copied().unwrap_or(0),
                facility: facility.code,
                affiliated: affiliated.len() as u64,
                rules_naming_people_held: naming,
            });
        }
        Ok(KeepApartStatistics {
            in_force: in_force.len() as u64,
            ended: (rules.len() - in_force.len()) as u64,
            by_scope: Scope::ALL
                .iter()
                .map(|s| (*s, in_force.iter().filter(|r| r.scope == *s).count() as u64))
                .collect(),
            between_groups: in_force.iter().filter(|r| !is_person(&r.a) && !is_person(&r.b)).count() as u64,
            naming_people: in_force.iter().filter(|r| is_person(&r.a) || is_person(&r.b)).count() as u64,
            facilities,
        })
    }

    /// The cells of the person's facility with, for each, whether the person may be placed there
    /// now and, if not, the rule that refuses it. Cells they may go to come first, emptiest first.
    pub fn placement_options(&self, number: &str, now: Instant) -> ServiceResult<Vec<PlacementOption>> {
        let mut tx = self.store().read()?;
        let person = person_id(&mut tx, number)?;
        let here = tx.whereabouts(person, now)?.and_then(|w| w.facility).ok_or_else(|| {
            ServiceError::refused("housing.not_in_facility", format!("{number} is not held in a facility now"))
        })?;
        let facility = tx
            .facility_by_code(&here)?
            .ok_or_else(|| ServiceError::NotFound { what: "facility", key: here.clone() })?;
        let mut options = Vec::new();
        for cell in tx.cells_at(now)?.into_iter().filter(|c| c.facility == facility.id && c.in_use) {
            let people = tx.cell_people_from(cell.id, now, person)?;
            let unit = tx.unit(cell.unit)?.map(|u| u.code).unwrap_or_default();
            let refusal = match check_placement(&mut tx, person, &cell, now, now) {
                Ok(_) => None,
                Err(ServiceError::Refused { rule, detail }) => Some((rule.to_string(), detail)),
                Err(e) => return Err(e),
            };
            options.push(PlacementOption {
                cell: cell.code,
                unit,
                people,
                places: cell.rated_places,
                refused_by: refusal.as_ref().map(|(rule, _)| rule.clone()),
                refusal: refusal.map(|(_, detail)| detail),
            });
        }
        // Emptiest first: people per declared place, compared by cross-multiplying.
        options.sort_by(|a, b| {
            let load = |x: &PlacementOption, y: &PlacementOption| u64::from(x.people) * u64::from(y.places.max(1));
            (a.refusal.is_some(), load(a, b), &a.cell).cmp(&(b.refusal.is_some(), load(b, a), &b.cell))
        });
        Ok(options)
    }

    /// Classification, affiliations and keep-apart rules of a person.
    pub fn person_housing(&self, number: &str, now: Instant) -> ServiceResult<PersonHousing> {
        let mut tx = self.store().read()?;
        let person = person_id(&mut tx, number)?;
        let facilities = tx.person_facilities(person)?;
        let category = match facilities.first() {
            Some(f) => Some(person_category(&mut tx, person, *f, now)?.category),
            None => None,
        };
        let groups = tx.person_groups(person)?;
        let mut parties = vec![Party::Person(person)];
        parties.extend(groups.into_iter().map(Party::Group));
        let rules = tx.keep_apart_naming(&parties)?;
        let keep_apart = rules.iter().map(|r| view(&mut tx, r, now)).collect::<ServiceResult<_>>()?;
        Ok(PersonHousing {
            person: number.to_string(),
            category,
            classifications: tx.classifications(person)?,
            affiliations: tx.affiliations(person)?,
            keep_apart,
        })
    }
}
