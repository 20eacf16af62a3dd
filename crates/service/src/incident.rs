//! Incidents, injuries, the obligations a death, a disappearance or a serious injury opens
//! (notify the next of kin, Mandela Rule 69, and the independent authority, Rule 71), the
//! family-notification preference they respect, and incident statistics (Rule 10).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::json;

use domain::incident::{
    died, obligations_for, Concerned, Due, IncidentKind, InjurySeverity, InvolvementRole, Month, NotifiableEvent,
    NotificationMethod, ObligationKind,
};
use domain::person::human_number;
use domain::text::{LongText, ShortText};
use domain::time::{rfc3339, Instant};
use domain::FieldError;
use store::incident::{
    IncidentRow, IncidentTx, NewClosure, NewIncident, NewInjury, NewNotificationPreference, NewObligation,
    ObligationQuery, ObligationRow,
};
use store::{FacilityId, PersonId, Store, Tx};

use crate::{audit, Context, Service, ServiceError, ServiceResult};

/// How far into the future an incident may be dated, to absorb clock differences between terminals.
const FUTURE_TOLERANCE_SECONDS: i64 = 300;
/// The longest range of months one statistics request may cover.
pub const MAX_STATISTICS_MONTHS: u32 = 120;
/// Months covered when no start is given: the last year, this month included.
pub const DEFAULT_STATISTICS_MONTHS: u32 = 12;

/// A person involved in a reported incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvolvedPerson {
    /// Person number; the person must be held (or last held) by the incident's facility.
    pub person: String,
    /// victim, perpetrator, witness, deceased, missing or involved.
    pub role: InvolvementRole,
    /// Whether they were injured; health care staff document the injury itself.
    #[serde(default)]
    pub injured: bool,
}

/// The most people on record one incident report may name.
pub const MAX_PEOPLE: usize = 200;
/// The most staff one incident report may name.
pub const MAX_STAFF: usize = 100;

/// An incident to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentReport {
    /// Code of the facility where it happened.
    pub facility: String,
    /// What happened.
    pub kind: IncidentKind,
    /// When it happened (not in the future); the time of recording when absent.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub at: Option<Instant>,
    /// Code of the cell of that facility where it happened, if it happened in one.
    #[serde(default)]
    pub cell: Option<String>,
    /// Where it happened, in words ("yard 2", "kitchen").
    #[serde(default)]
    pub location: Option<ShortText>,
    /// People on record involved, with their roles (at most 200).
    #[serde(default)]
    pub people: Vec<InvolvedPerson>,
    /// Names of staff involved (at most 100).
    #[serde(default)]
    pub staff: Vec<ShortText>,
    /// What happened, in words.
    pub description: LongText,
}

impl IncidentReport {
    /// Parse a report from JSON text, naming the field of any error (`people[0].role: …`).
    pub fn from_json(text: &str) -> ServiceResult<Self> {
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                ServiceError::field("incident", format!("is not valid JSON: {inner}"))
            } else {
                ServiceError::field(if path == "." { "incident".to_string() } else { path }, inner.to_string())
            }
        })
    }
}

/// What recording an incident did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentRecorded {
    /// The incident's number, for example `INC-CECOT-2026-000012`.
    pub number: String,
    /// Obligations it opened (notifications due).
    pub obligations: usize,
    /// Audit event.
    pub audit_seq: i64,
}

/// An injury documented by health care staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InjuryReport {
    /// Number of a person involved in the incident.
    pub person: String,
    /// minor, serious or fatal.
    pub severity: InjurySeverity,
    /// What was found.
    pub description: LongText,
}

/// What documenting an injury did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InjuryDocumented {
    /// Incident number.
    pub incident: String,
    /// Person number.
    pub person: String,
    /// Obligations it opened.
    pub obligations: usize,
    /// Audit event.
    pub audit_seq: i64,
}

/// The evidence that closes an obligation: who was told, when and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObligationClosure {
    /// Name of the person told.
    pub notified: ShortText,
    /// In what capacity they were told (mother, duty judge, ombudsman's office…).
    pub capacity: ShortText,
    /// When they were told (not in the future, not before the incident).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Instant,
    /// phone, in_person, letter, email or other.
    pub method: NotificationMethod,
    /// Anything worth keeping.
    #[serde(default)]
    pub note: Option<LongText>,
}

/// What closing an obligation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObligationClosed {
    /// The obligation's reference.
    pub id: String,
    /// Audit event.
    pub audit_seq: i64,
}

/// A person's wish about their family being notified (Rules 68 and 69).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationPreference {
    /// True: the person declines that their family be notified (respected for illness, injury,
    /// admission and transfer, never for a death). False: they withdraw a refusal.
    pub declines: bool,
    /// When the person said so; today (UTC) when absent.
    #[serde(default)]
    pub date: Option<NaiveDate>,
    /// Note, for example how the wish was expressed.
    #[serde(default)]
    pub note: Option<LongText>,
}

/// A notification preference as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreferenceRecorded {
    /// Person number.
    pub person: String,
    /// Whether they decline that their family be notified.
    pub declines: bool,
    /// When they said so.
    pub date: NaiveDate,
    /// Audit event.
    pub audit_seq: i64,
}

/// An incident in a list.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentSummary {
    /// Number.
    pub number: String,
    /// Facility code.
    pub facility: String,
    /// What happened.
    pub kind: IncidentKind,
    /// When it happened.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub occurred_at: Instant,
    /// When it was recorded.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub recorded_at: Instant,
    /// Cell code.
    pub cell: Option<String>,
    /// Where, in words.
    pub location: Option<String>,
    /// How many people on record were involved.
    pub people: u32,
    /// What happened, in words.
    pub description: String,
}

impl IncidentSummary {
    fn of(r: store::incident::IncidentRow) -> Self {
        IncidentSummary {
            number: r.number,
            facility: r.facility_code,
            kind: r.kind,
            occurred_at: r.occurred_at,
            recorded_at: r.recorded_at,
            cell: r.cell,
            location: r.location,
            people: r.people,
            description: r.description,
        }
    }
}

/// A person involved, as every reader of the incident sees them.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonInvolved {
    /// Person number.
    pub person: String,
    /// Name as staff read it.
    pub name: String,
    /// Their role.
    pub role: InvolvementRole,
    /// Reported injured.
    pub injured: bool,
    /// Whether health care staff documented an injury (its details are medical entries).
    pub injury_documented: bool,
}

/// An injury: a medical entry, for health care staff only.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InjuryEntry {
    /// Person number.
    pub person: String,
    /// How bad.
    pub severity: InjurySeverity,
    /// What was found.
    pub description: String,
    /// When it was documented.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub documented_at: Instant,
    /// Who documented it.
    pub documented_by: String,
}

/// How an obligation was met.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClosureView {
    /// Who was told.
    pub notified: String,
    /// In what capacity.
    pub capacity: String,
    /// When they were told.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Instant,
    /// How.
    pub method: NotificationMethod,
    /// Note.
    pub note: Option<String>,
    /// When the obligation was closed.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub closed_at: Instant,
    /// Who closed it.
    pub closed_by: String,
}

/// An obligation to notify, open or met.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObligationView {
    /// Reference: the incident number and an ordinal, for example `INC-CECOT-2026-000012.1`.
    pub id: String,
    /// Incident number.
    pub incident: String,
    /// Facility code of the incident.
    pub facility: String,
    /// Who must be told.
    pub kind: ObligationKind,
    /// The Mandela Rule that asks for it.
    pub rule: &'static str,
    /// Of what.
    pub event: NotifiableEvent,
    /// Number of the person whose next of kin must be told.
    pub person: Option<String>,
    /// That person's name.
    pub name: Option<String>,
    /// When it was opened.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub opened_at: Instant,
    /// When it falls due.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub due_at: Instant,
    /// Open and past its due time.
    pub overdue: bool,
    /// How it was met, once closed.
    pub closure: Option<ClosureView>,
}

/// An incident with everything recorded about it. Injury entries are medical: callers show
/// them to health care staff only, and leave them out (`None`) for everyone else.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentRecord {
    /// Number.
    pub number: String,
    /// Facility code.
    pub facility: String,
    /// What happened.
    pub kind: IncidentKind,
    /// When it happened.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub occurred_at: Instant,
    /// When it was recorded.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub recorded_at: Instant,
    /// Who recorded it.
    pub recorded_by: String,
    /// Cell code.
    pub cell: Option<String>,
    /// Where, in words.
    pub location: Option<String>,
    /// Names of staff involved.
    pub staff: Vec<String>,
    /// What happened, in words.
    pub description: String,
    /// People on record involved.
    pub people: Vec<PersonInvolved>,
    /// Injuries documented: medical entries, absent when withheld from the reader.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injuries: Option<Vec<InjuryEntry>>,
    /// Obligations it opened, absent when withheld from the reader.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub obligations: Option<Vec<ObligationView>>,
}

/// Which obligations to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ObligationState {
    /// Not closed yet.
    #[default]
    Open,
    /// Not closed and past their due time.
    Overdue,
    /// Every one, open or closed.
    All,
}

impl ObligationState {
    /// Parse `open`, `overdue` or `all`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(Self::Open),
            "overdue" => Some(Self::Overdue),
            "all" => Some(Self::All),
            _ => None,
        }
    }
}

/// A person's latest family-notification preference.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreferenceView {
    /// Whether they decline that their family be notified.
    pub declines: bool,
    /// When they said so.
    pub date: NaiveDate,
    /// Note.
    pub note: Option<String>,
    /// When it was recorded.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub recorded_at: Instant,
    /// Who recorded it.
    pub recorded_by: String,
}

fn occurred_at(ctx: &Context, at: Option<Instant>) -> Option<Instant> {
    let at = at.unwrap_or(ctx.now);
    (at <= ctx.now + chrono::Duration::seconds(FUTURE_TOLERANCE_SECONDS)).then_some(at)
}

/// Whether a person declined that their family be notified (their latest preference on record).
pub fn declines_family_notification<T: Tx>(tx: &mut T, person: PersonId) -> ServiceResult<bool> {
    Ok(tx.notification_preference(person)?.is_some_and(|p| p.declines_family))
}

/// Whether the person was in the facility at `at`, or is held (or was last held) by it now.
fn answerable<T: Tx>(tx: &mut T, person: PersonId, facility: &store::Facility, at: Instant) -> ServiceResult<bool> {
    if tx.person_facilities(person)?.contains(&facility.id) {
        return Ok(true);
    }
    Ok(tx.whereabouts(person, at)?.and_then(|w| w.facility).is_some_and(|code| code == facility.code))
}

/// Record an incident inside the caller's transaction, with the obligations it opens. Every check
/// runs before the first write; every wrong field is listed at once.
pub fn record_incident_in<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    report: &IncidentReport,
) -> ServiceResult<IncidentRecorded> {
    let mut errors = Vec::new();
    let at = occurred_at(ctx, report.at);
    if at.is_none() {
        let given = report.at.map(rfc3339).unwrap_or_default();
        errors.push(FieldError::new("at", format!("{given} is in the future")));
    }
    domain::text::at_most(&mut errors, "people", &report.people, MAX_PEOPLE);
    domain::text::at_most(&mut errors, "staff", &report.staff, MAX_STAFF);
    let facility = tx
        .facility_by_code(&report.facility)?
        .ok_or_else(|| ServiceError::NotFound { what: "facility", key: report.facility.clone() })?;
    let at = at.unwrap_or(ctx.now);
    if errors.is_empty() && at < facility.effective_from {
        return Err(ServiceError::refused(
            "estate.not_open",
            format!("facility {} is on record only from {}", facility.code, rfc3339(facility.effective_from)),
        ));
    }
    let cell = match &report.cell {
        None => None,
        Some(code) => match tx.cell_by_code(facility.id, code, at)? {
            Some(cell) => Some(cell.id),
            None => {
                errors.push(FieldError::new("cell", format!("there is no cell `{code}` in {}", facility.code)));
                None
            }
        },
    };
    let mut people: Vec<(PersonId, &InvolvedPerson)> = Vec::new();
    for (i, involved) in report.people.iter().enumerate() {
        let field = format!("people[{i}].person");
        // The same words whether the person is unknown or held elsewhere, so that the answer
        // never tells staff of one facility who is held in another.
        let not_here =
            || FieldError::new(&field, format!("`{}` is not a person held by {}", involved.person, facility.code));
        let Some(id) = tx.person_id(&involved.person)? else {
            errors.push(not_here());
            continue;
        };
        if people.iter().any(|(p, _)| *p == id) {
            errors.push(FieldError::new(&field, "is listed twice; give each person once, with one role"));
        } else if !answerable(tx, id, &facility, at)? {
            errors.push(not_here());
        } else if let Some(merge) = tx.merge_in_force(id)? {
            errors.push(FieldError::new(&field, format!("was merged into {}; name that record", merge.survivor)));
        } else {
            people.push((id, involved));
        }
    }
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }

    let staff: Vec<String> = report.staff.iter().map(ToString::to_string).collect();
    let sequence = tx.next_counter(&format!("incident:{}:{}", facility.code, at.year()))?;
    let number = human_number(&format!("INC-{}", facility.code), at.year(), sequence);
    let incident = tx.insert_incident(&NewIncident {
        number: &number,
        facility: facility.id,
        kind: report.kind,
        occurred_at: at,
        recorded_at: ctx.now,
        cell,
        location: report.location.as_deref(),
        staff: &staff,
        description: &report.description,
        actor: &ctx.actor,
    })?;
    for (person, involved) in &people {
        tx.insert_incident_person(incident, *person, involved.role, involved.injured)?;
    }
    let row = tx
        .incident_by_number(&number)?
        .ok_or_else(|| ServiceError::Internal("an incident just written cannot be read".into()))?;
    let opened = open_obligations(tx, ctx, &row)?;
    let mut payload = serde_json::to_value(report).map_err(|e| ServiceError::Internal(e.to_string()))?;
    payload["at"] = json!(at);
    payload["obligations_opened"] = json!(opened);
    let audit_seq = audit(tx, ctx, "incident.report", &number, &payload)?;
    Ok(IncidentRecorded { number, obligations: opened.len(), audit_seq })
}

/// Open the obligations the incident calls for now and has not opened yet; returns their references.
fn open_obligations<T: Tx>(tx: &mut T, ctx: &Context, incident: &IncidentRow) -> ServiceResult<Vec<String>> {
    let people = tx.incident_people(incident.id)?;
    let injuries = tx.injuries(incident.id)?;
    let existing = tx.obligations(&ObligationQuery { incident: Some(incident.id), ..Default::default() })?;
    let already: Vec<Due<PersonId>> =
        existing.iter().map(|o| Due { kind: o.kind, event: o.event, person: o.person.as_ref().map(|p| p.0) }).collect();
    let mut concerned = Vec::with_capacity(people.len());
    for p in &people {
        concerned.push(Concerned {
            person: p.person,
            role: p.role,
            worst_injury: injuries.iter().filter(|j| j.person == p.person).map(|j| j.severity).max(),
            declines_family_notification: declines_family_notification(tx, p.person)?,
        });
    }
    let mut opened = Vec::new();
    for (i, due) in obligations_for(incident.kind, &concerned, &already).into_iter().enumerate() {
        let number = format!("{}.{}", incident.number, existing.len() + i + 1);
        tx.insert_obligation(&NewObligation {
            number: &number,
            incident: incident.id,
            kind: due.kind,
            event: due.event,
            person: due.person,
            opened_at: ctx.now,
            due_at: ctx.now + due.kind.deadline(),
        })?;
        opened.push(number);
    }
    Ok(opened)
}

fn incident_row<T: Tx>(tx: &mut T, number: &str) -> ServiceResult<IncidentRow> {
    tx.incident_by_number(number)?.ok_or_else(|| ServiceError::NotFound { what: "incident", key: number.to_string() })
}

/// The code of the facility an incident belongs to, for scope checks.
pub fn incident_facility_in<T: Tx>(tx: &mut T, number: &str) -> ServiceResult<String> {
    Ok(incident_row(tx, number)?.facility_code)
}

/// The code of the facility of an obligation's incident, for scope checks.
pub fn obligation_facility_in<T: Tx>(tx: &mut T, id: &str) -> ServiceResult<String> {
    Ok(obligation_row(tx, id)?.facility_code)
}

fn obligation_row<T: Tx>(tx: &mut T, id: &str) -> ServiceResult<ObligationRow> {
    tx.obligation_by_number(id)?.ok_or_else(|| ServiceError::NotFound { what: "obligation", key: id.to_string() })
}

/// Document an injury of a person involved in an incident (health care staff), inside the
/// caller's transaction, and open the obligations a serious or fatal injury calls for.
pub fn document_injury_in<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    number: &str,
    injury: &InjuryReport,
) -> ServiceResult<InjuryDocumented> {
    let incident = incident_row(tx, number)?;
    let mut errors = Vec::new();
    let person = tx.incident_people(incident.id)?.into_iter().find(|p| p.number == injury.person);
    if person.is_none() {
        errors.push(FieldError::new(
            "person",
            format!("`{}` is not among the people involved in {number}", injury.person),
        ));
    }
    let Some(person) = person.filter(|_| errors.is_empty()) else {
        return Err(ServiceError::Invalid(errors));
    };
    tx.insert_injury(&NewInjury {
        incident: incident.id,
        person: person.person,
        severity: injury.severity,
        description: &injury.description,
        recorded_at: ctx.now,
        actor: &ctx.actor,
    })?;
    let opened = open_obligations(tx, ctx, &incident)?;
    // The severity and description are medical entries: they are in the audited row (whose
    // digest the event covers), not in the payload, which every monitor reads.
    let payload = json!({ "incident": number, "person": person.number, "obligations_opened": opened });
    let audit_seq = audit(tx, ctx, "incident.injury", number, &payload)?;
    Ok(InjuryDocumented { incident: number.to_string(), person: person.number, obligations: opened.len(), audit_seq })
}

/// Close an obligation with the evidence that it was met, inside the caller's transaction.
/// A closed obligation stays closed; closing it again is refused.
pub fn close_obligation_in<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    id: &str,
    closure: &ObligationClosure,
) -> ServiceResult<ObligationClosed> {
    let obligation = obligation_row(tx, id)?;
    if let Some(done) = &obligation.closure {
        return Err(ServiceError::refused(
            "obligation.closed",
            format!("{id} was closed at {} by {}", rfc3339(done.closed_at), done.closed_by),
        ));
    }
    let mut errors = Vec::new();
    if closure.at > ctx.now + chrono::Duration::seconds(FUTURE_TOLERANCE_SECONDS) {
        errors.push(FieldError::new("at", format!("{} is in the future", rfc3339(closure.at))));
    } else if closure.at < obligation.incident_occurred_at {
        errors.push(FieldError::new(
            "at",
            format!(
                "{} is before the incident happened ({})",
                rfc3339(closure.at),
                rfc3339(obligation.incident_occurred_at)
            ),
        ));
    }
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    tx.insert_obligation_closure(&NewClosure {
        obligation: obligation.id,
        notified_name: closure.notified.trim(),
        notified_capacity: closure.capacity.trim(),
        notified_at: closure.at,
        method: closure.method,
        note: closure.note.as_deref(),
        closed_at: ctx.now,
        closed_by: &ctx.actor,
    })?;
    let mut payload = serde_json::to_value(closure).map_err(|e| ServiceError::Internal(e.to_string()))?;
    payload["incident"] = json!(obligation.incident_number);
    let audit_seq = audit(tx, ctx, "obligation.close", id, &payload)?;
    Ok(ObligationClosed { id: id.to_string(), audit_seq })
}

/// Record whether a person declines that their family be notified, inside the caller's
/// transaction. It is a history: the latest entry applies.
pub fn set_notification_preference_in<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    person: &str,
    preference: &NotificationPreference,
) -> ServiceResult<PreferenceRecorded> {
    let id = crate::person_to_change(tx, person)?;
    let date = preference.date.unwrap_or(ctx.now.date_naive());
    if date > ctx.now.date_naive() {
        return Err(ServiceError::field("date", format!("{date} is in the future")));
    }
    tx.insert_notification_preference(&NewNotificationPreference {
        person: id,
        declines_family: preference.declines,
        stated_on: date,
        note: preference.note.as_deref(),
        recorded_at: ctx.now,
        actor: &ctx.actor,
    })?;
    let payload = json!({ "person": person, "declines": preference.declines, "date": date, "note": preference.note });
    let audit_seq = audit(tx, ctx, "person.notification_preference", person, &payload)?;
    Ok(PreferenceRecorded { person: person.to_string(), declines: preference.declines, date, audit_seq })
}

fn obligation_view(row: ObligationRow, now: Instant) -> ObligationView {
    let (person, name) = match row.person {
        Some((_, number, name)) => (Some(number), Some(name)),
        None => (None, None),
    };
    ObligationView {
        overdue: row.closure.is_none() && row.due_at < now,
        id: row.number,
        incident: row.incident_number,
        facility: row.facility_code,
        kind: row.kind,
        rule: row.kind.rule(),
        event: row.event,
        person,
        name,
        opened_at: row.opened_at,
        due_at: row.due_at,
        closure: row.closure.map(|c| ClosureView {
            notified: c.notified_name,
            capacity: c.notified_capacity,
            at: c.notified_at,
            method: c.method,
            note: c.note,
            closed_at: c.closed_at,
            closed_by: c.closed_by,
        }),
    }
}

/// The facilities a query covers: one named (which must exist and be visible), or every
/// visible one (`None` when that is all of them).
fn facility_filter<T: Tx>(
    tx: &mut T,
    facility: Option<&str>,
    visible: &dyn Fn(&str) -> bool,
) -> ServiceResult<Option<Vec<FacilityId>>> {
    let all = tx.facilities()?;
    if let Some(code) = facility {
        return match all.iter().find(|f| f.code == code && visible(&f.code)) {
            Some(f) => Ok(Some(vec![f.id])),
            None => Err(ServiceError::NotFound { what: "facility", key: code.to_string() }),
        };
    }
    let seen: Vec<FacilityId> = all.iter().filter(|f| visible(&f.code)).map(|f| f.id).collect();
    Ok((seen.len() != all.len()).then_some(seen))
}

impl<S: Store> Service<S> {
    /// Record an incident with the obligations it opens. Nothing is written on refusal.
    pub fn record_incident(&self, ctx: &Context, report: &IncidentReport) -> ServiceResult<IncidentRecorded> {
        self.batch(|tx| record_incident_in(tx, ctx, report))
    }

    /// Document an injury of a person involved in an incident.
    pub fn document_injury(
        &self,
        ctx: &Context,
        number: &str,
        injury: &InjuryReport,
    ) -> ServiceResult<InjuryDocumented> {
        self.batch(|tx| document_injury_in(tx, ctx, number, injury))
    }

    /// Close an obligation with the evidence that it was met.
    pub fn close_obligation(
        &self,
        ctx: &Context,
        id: &str,
        closure: &ObligationClosure,
    ) -> ServiceResult<ObligationClosed> {
        self.batch(|tx| close_obligation_in(tx, ctx, id, closure))
    }

    /// Record whether a person declines that their family be notified.
    pub fn set_notification_preference(
        &self,
        ctx: &Context,
        person: &str,
        preference: &NotificationPreference,
    ) -> ServiceResult<PreferenceRecorded> {
        self.batch(|tx| set_notification_preference_in(tx, ctx, person, preference))
    }

    /// A person's latest family-notification preference, if one was recorded.
    pub fn notification_preference(&self, person: &str) -> ServiceResult<Option<PreferenceView>> {
        let mut tx = self.store().read()?;
        let id = tx.person_id(person)?.ok_or_else(|| ServiceError::NotFound { what: "person", key: person.into() })?;
        Ok(tx.notification_preference(id)?.map(|p| PreferenceView {
            declines: p.declines_family,
            date: p.stated_on,
            note: p.note,
            recorded_at: p.recorded_at,
            recorded_by: p.actor,
        }))
    }

    /// Incidents newest first, of one facility or of every facility `visible` lets the caller
    /// see, after the incident numbered `after` (the previous page's last), at most `limit`.
    pub fn incidents(
        &self,
        facility: Option<&str>,
        visible: impl Fn(&str) -> bool,
        after: Option<&str>,
        limit: u32,
    ) -> ServiceResult<Vec<IncidentSummary>> {
        let mut tx = self.store().read()?;
        let facilities = facility_filter(&mut tx, facility, &visible)?;
        let before = match after {
            None => None,
            Some(number) => Some(
                tx.incident_by_number(number)?
                    .ok_or_else(|| ServiceError::field("after", "is not a cursor this list gave"))?
                    .id,
            ),
        };
        let rows = tx.incidents(facilities.as_deref(), before, limit)?;
        Ok(rows.into_iter().map(IncidentSummary::of).collect())
    }

    /// The incidents a person was involved in, newest first, in the facilities `visible` accepts.
    pub fn person_incidents(
        &self,
        number: &str,
        visible: impl Fn(&str) -> bool,
    ) -> ServiceResult<Vec<IncidentSummary>> {
        let mut tx = self.store().read()?;
        let person =
            tx.person_id(number)?.ok_or_else(|| ServiceError::NotFound { what: "person", key: number.to_string() })?;
        let rows = tx.incidents_of_person(person)?;
        Ok(rows.into_iter().filter(|r| visible(&r.facility_code)).map(IncidentSummary::of).collect())
    }

    /// An incident with its people, injuries and obligations, when `visible` lets the caller see
    /// its facility; otherwise it is not found.
    pub fn incident(
        &self,
        number: &str,
        visible: impl Fn(&str) -> bool,
        now: Instant,
    ) -> ServiceResult<IncidentRecord> {
        let mut tx = self.store().read()?;
        let row = incident_row(&mut tx, number)?;
        if !visible(&row.facility_code) {
            return Err(ServiceError::NotFound { what: "incident", key: number.to_string() });
        }
        let injuries = tx.injuries(row.id)?;
        let people = tx
            .incident_people(row.id)?
            .into_iter()
            .map(|p| PersonInvolved {
                injury_documented: injuries.iter().any(|j| j.person == p.person),
                person: p.number,
                name: p.name,
                role: p.role,
                injured: p.injured,
            })
            .collect();
        let obligations = tx
            .obligations(&ObligationQuery { incident: Some(row.id), ..Default::default() })?
            .into_iter()
            .map(|o| obligation_view(o, now))
            .collect();
        Ok(IncidentRecord {
            number: row.number,
            facility: row.facility_code,
            kind: row.kind,
            occurred_at: row.occurred_at,
            recorded_at: row.recorded_at,
            recorded_by: row.actor,
            cell: row.cell,
            location: row.location,
            staff: row.staff,
            description: row.description,
            people,
            injuries: Some(
                injuries
                    .into_iter()
                    .map(|j| InjuryEntry {
                        person: j.number,
                        severity: j.severity,
                        description: j.description,
                        documented_at: j.recorded_at,
                        documented_by: j.actor,
                    })
                    .collect(),
            ),
            obligations: Some(obligations),
        })
    }

    /// Obligations by due time: open ones, those overdue at `now`, or all; of one facility or
    /// of every facility `visible` lets the caller see.
    pub fn obligations(
        &self,
        state: ObligationState,
        facility: Option<&str>,
        visible: impl Fn(&str) -> bool,
        now: Instant,
    ) -> ServiceResult<Vec<ObligationView>> {
        let mut tx = self.store().read()?;
        let facilities = facility_filter(&mut tx, facility, &visible)?;
        let query = ObligationQuery {
            facilities: facilities.as_deref(),
            incident: None,
            open_only: state != ObligationState::All,
            due_before: (state == ObligationState::Overdue).then_some(now),
        };
        Ok(tx.obligations(&query)?.into_iter().map(|o| obligation_view(o, now)).collect())
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------

/// Figures of one facility (or the total) for one month.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MonthFigures {
    /// The month, `YYYY-MM` (UTC).
    pub month: String,
    /// Days whose population at 00:00 UTC was counted: days not yet begun, and days before the
    /// facility (for the total, any of its facilities) was on record, are not.
    pub days: u32,
    /// Mean of the population at 00:00 UTC of those days, two decimals.
    pub average_population: f64,
    /// Incidents that happened in the month, by kind (every kind listed).
    pub incidents: BTreeMap<String, u64>,
    /// Incidents per 1,000 people (of the average population) by kind; null without population.
    pub per_1000: BTreeMap<String, Option<f64>>,
    /// People who died in custody in the month.
    pub deaths: u64,
}

/// Figures of one facility (or the total) over the whole range of months.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RangeFigures {
    /// Days counted.
    pub days: u32,
    /// Mean of the population at 00:00 UTC over every day counted, two decimals.
    pub average_population: f64,
    /// Incidents by kind.
    pub incidents: BTreeMap<String, u64>,
    /// Incidents per 1,000 people per month by kind: incidents × 1,000 over the sum of the
    /// months' average populations (people-months); null without population.
    pub per_1000_per_month: BTreeMap<String, Option<f64>>,
    /// Distinct people who died in custody: deceased in incidents, or released by reason of death.
    pub deaths: u64,
    /// Deaths per 10,000 people of the average population over the range; null without population.
    pub deaths_per_10000: Option<f64>,
}

/// The figures of one facility, or of the total over the facilities listed.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlaceFigures {
    /// Facility code; null for the total.
    pub facility: Option<String>,
    /// Month by month.
    pub months: Vec<MonthFigures>,
    /// Over the whole range.
    pub range: RangeFigures,
}

/// Incident and death statistics for a range of months (aggregates only, no personal data).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentStatistics {
    /// First month, `YYYY-MM`.
    pub from: String,
    /// Last month, `YYYY-MM`.
    pub to: String,
    /// Whether the total covers every facility (a national figure).
    pub national: bool,
    /// Each facility covered, by code.
    pub facilities: Vec<PlaceFigures>,
    /// The sum over the facilities covered.
    pub total: PlaceFigures,
}

/// Running sums of one place for one month.
#[derive(Debug, Clone, Default)]
struct Tally {
    days: u32,
    person_days: u64,
    incidents: HashMap<IncidentKind, u64>,
    deaths: u64,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn rate(count: u64, per: f64, population: f64) -> Option<f64> {
    (population > 0.0).then(|| round2(count as f64 * per / population))
}

fn figures(place: Option<String>, months: &[Month], tallies: &[Tally]) -> PlaceFigures {
    let mut lines = Vec::new();
    let (mut days, mut person_days, mut deaths, mut people_months) = (0u32, 0u64, 0u64, 0f64);
    let mut all: HashMap<IncidentKind, u64> = HashMap::new();
    for (month, tally) in months.iter().zip(tallies) {
        let average = if tally.days == 0 { 0.0 } else { tally.person_days as f64 / tally.days as f64 };
        let count = |kind: &IncidentKind| tally.incidents.get(kind).copied().unwrap_or(0);
        lines.push(MonthFigures {
            month: month.to_string(),
            days: tally.days,
            average_population: round2(average),
            incidents: IncidentKind::ALL.iter().map(|k| (k.as_str().to_string(), count(k))).collect(),
            per_1000: IncidentKind::ALL
                .iter()
                .map(|k| (k.as_str().to_string(), rate(count(k), 1000.0, average)))
                .collect(),
            deaths: tally.deaths,
        });
        days += tally.days;
        person_days += tally.person_days;
        deaths += tally.deaths;
        people_months += average;
        for (kind, n) in &tally.incidents {
            *all.entry(*kind).or_default() += n;
        }
    }
    let average = if days == 0 { 0.0 } else { person_days as f64 / days as f64 };
    let count = |kind: &IncidentKind| all.get(kind).copied().unwrap_or(0);
    PlaceFigures {
        facility: place,
        months: lines,
        range: RangeFigures {
            days,
            average_population: round2(average),
            incidents: IncidentKind::ALL.iter().map(|k| (k.as_str().to_string(), count(k))).collect(),
            per_1000_per_month: IncidentKind::ALL
                .iter()
                .map(|k| (k.as_str().to_string(), rate(count(k), 1000.0, people_months)))
                .collect(),
            deaths,
            deaths_per_10000: rate(deaths, 10_000.0, average),
        },
    }
}

impl<S: Store> Service<S> {
    /// Incident and death statistics per facility and in total, month by month from `from` to
    /// `to` (UTC; by default the twelve months up to the one `now` falls in), for one facility or
    /// every facility `visible` lets the caller see.
    ///
    /// The average population of a month is the mean of the population at 00:00 UTC of each of
    /// its days that has begun by `now` and on which the facility (for the total, at least one of
    /// the facilities) was on record. Deaths
    /// are distinct people: deceased in an incident (see `domain::incident::died`) or released
    /// by reason of death, each counted once, in the month and facility of their first record.
    pub fn incident_statistics(
        &self,
        from: Option<Month>,
        to: Option<Month>,
        facility: Option<&str>,
        visible: impl Fn(&str) -> bool,
        now: Instant,
    ) -> ServiceResult<IncidentStatistics> {
        let to = to.unwrap_or(Month::of(now));
        let from = from.unwrap_or(to.minus(DEFAULT_STATISTICS_MONTHS - 1));
        let span = from.count_to(to);
        if span == 0 {
            return Err(ServiceError::field("from", format!("{from} is after `to` ({to})")));
        }
        if span > MAX_STATISTICS_MONTHS {
            return Err(ServiceError::field(
                "from",
                format!("the range covers {span} months; at most {MAX_STATISTICS_MONTHS} at once"),
            ));
        }
        let months: Vec<Month> = std::iter::successors(Some(from), |m| Some(m.next())).take(span as usize).collect();
        let (start, end) = (from.start(), to.next().start());

        let mut tx = self.store().read()?;
        let all = tx.facilities()?;
        let chosen: Vec<store::Facility> = match facility {
            Some(code) => vec![all
                .iter()
                .find(|f| f.code == code && visible(&f.code))
                .cloned()
                .ok_or_else(|| ServiceError::NotFound { what: "facility", key: code.to_string() })?],
            None => all.iter().filter(|f| visible(&f.code)).cloned().collect(),
        };
        let national = facility.is_none() && chosen.len() == all.len();
        let index: HashMap<FacilityId, usize> = chosen.iter().enumerate().map(|(i, f)| (f.id, i)).collect();
        let month_of: HashMap<String, usize> = months.iter().enumerate().map(|(i, m)| (m.to_string(), i)).collect();
        let mut tallies = vec![vec![Tally::default(); months.len()]; chosen.len()];
        let mut total = vec![Tally::default(); months.len()];

        // Every midnight of the range up to now, and the population at each, in one pass.
        let midnights: Vec<(usize, Instant)> = months
            .iter()
            .enumerate()
            .flat_map(|(m, month)| month.midnights().take_while(|at| *at <= now).map(move |at| (m, at)))
            .collect();
        let instants: Vec<Instant> = midnights.iter().map(|(_, at)| *at).collect();
        let populations = tx.population_series(&instants)?;
        for (&(m, midnight), population) in midnights.iter().zip(&populations) {
            // A day before a facility was on record is no day of that facility (nor of a total
            // none of whose facilities existed yet): it would only dilute the rates.
            if !chosen.iter().any(|f| f.effective_from <= midnight) {
                continue;
            }
            total[m].days += 1;
            for (i, f) in chosen.iter().enumerate().filter(|(_, f)| f.effective_from <= midnight) {
                let held = population.get(&f.id).copied().unwrap_or(0);
                total[m].person_days += held;
                tallies[i][m].days += 1;
                tallies[i][m].person_days += held;
            }
        }
        for count in tx.incident_counts(start, end)? {
            let (Some(&i), Some(&m)) = (index.get(&count.facility), month_of.get(&count.month)) else { continue };
            *tallies[i][m].incidents.entry(count.kind).or_default() += count.count;
            *total[m].incidents.entry(count.kind).or_default() += count.count;
        }
        // Each person who died once, at their first record of it within the range.
        let mut records: Vec<(Instant, PersonId, FacilityId)> = tx
            .involvements_between(start, end)?
            .into_iter()
            .filter(|v| died(v.kind, v.role, v.worst_injury))
            .map(|v| (v.occurred_at, v.person, v.facility))
            .collect();
        records
            .extend(tx.death_releases_between(start, end)?.into_iter().map(|r| (r.occurred_at, r.person, r.facility)));
        records.sort_unstable();
        let mut counted = HashSet::new();
        for (at, person, facility) in records {
            let Some(&i) = index.get(&facility) else { continue };
            if !counted.insert(person) {
                continue;
            }
            if let Some(&m) = month_of.get(&Month::of(at).to_string()) {
                tallies[i][m].deaths += 1;
                total[m].deaths += 1;
            }
        }
        Ok(IncidentStatistics {
            from: from.to_string(),
            to: to.to_string(),
            national,
            facilities: chosen.iter().zip(&tallies).map(|(f, t)| figures(Some(f.code.clone()), &months, t)).collect(),
            total: figures(None, &months, &total),
        })
    }
}
