//! Incidents, injuries and the obligations they open.

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::sql::{params, Dialect, OptionalExtension, Row, ToSql};

use domain::audit::Value;
use domain::incident::{
    IncidentKind, InjurySeverity, InvolvementRole, NotifiableEvent, NotificationMethod, ObligationKind,
};
use domain::time::{from_micros, to_micros, Instant};

use crate::SqlTx;
use crate::{CellId, FacilityId, PersonId, StoreError, StoreResult};

/// Stored id of an incident.
pub type IncidentId = i64;
/// Stored id of an obligation.
pub type ObligationId = i64;

/// An incident to write.
#[derive(Debug, Clone)]
pub struct NewIncident<'a> {
    /// Human number, unique.
    pub number: &'a str,
    /// Facility where it happened.
    pub facility: FacilityId,
    /// What happened.
    pub kind: IncidentKind,
    /// When it happened.
    pub occurred_at: Instant,
    /// When it was recorded.
    pub recorded_at: Instant,
    /// Cell where it happened, if in one.
    pub cell: Option<CellId>,
    /// Where it happened, in words.
    pub location: Option<&'a str>,
    /// Names of staff involved.
    pub staff: &'a [String],
    /// What happened, in words.
    pub description: &'a str,
    /// Who recorded it.
    pub actor: &'a str,
}

/// A stored incident.
#[derive(Debug, Clone)]
pub struct IncidentRow {
    /// Id.
    pub id: IncidentId,
    /// Human number.
    pub number: String,
    /// Facility id.
    pub facility: FacilityId,
    /// Facility code.
    pub facility_code: String,
    /// What happened.
    pub kind: IncidentKind,
    /// When it happened.
    pub occurred_at: Instant,
    /// When it was recorded.
    pub recorded_at: Instant,
    /// Cell code, if it happened in a cell.
    pub cell: Option<String>,
    /// Where, in words.
    pub location: Option<String>,
    /// Names of staff involved.
    pub staff: Vec<String>,
    /// What happened, in words.
    pub description: String,
    /// Who recorded it.
    pub actor: String,
    /// How many people on record were involved.
    pub people: u32,
}

/// A person involved in an incident, as stored.
#[derive(Debug, Clone)]
pub struct IncidentPersonRow {
    /// Person id.
    pub person: PersonId,
    /// Person number.
    pub number: String,
    /// Name as staff read it.
    pub name: String,
    /// Their role.
    pub role: InvolvementRole,
    /// Reported injured.
    pub injured: bool,
}

/// An injury to write (a medical entry).
#[derive(Debug, Clone)]
pub struct NewInjury<'a> {
    /// Incident.
    pub incident: IncidentId,
    /// Person injured.
    pub person: PersonId,
    /// How bad.
    pub severity: InjurySeverity,
    /// What was found.
    pub description: &'a str,
    /// When it was documented.
    pub recorded_at: Instant,
    /// Who documented it.
    pub actor: &'a str,
}

/// A stored injury (a medical entry).
#[derive(Debug, Clone)]
pub struct InjuryRow {
    /// Person id.
    pub person: PersonId,
    /// Person number.
    pub number: String,
    /// How bad.
    pub severity: InjurySeverity,
    /// What was found.
    pub description: String,
    /// When it was documented.
    pub recorded_at: Instant,
    /// Who documented it.
    pub actor: String,
}

/// An obligation to write.
#[derive(Debug, Clone)]
pub struct NewObligation<'a> {
    /// Human reference: the incident number and an ordinal.
    pub number: &'a str,
    /// Incident that opened it.
    pub incident: IncidentId,
    /// Who must be told.
    pub kind: ObligationKind,
    /// Of what.
    pub event: NotifiableEvent,
    /// About whom (next of kin only).
    pub person: Option<PersonId>,
    /// When it was opened.
    pub opened_at: Instant,
    /// When it falls due.
    pub due_at: Instant,
}

/// How an obligation was met.
#[derive(Debug, Clone)]
pub struct ClosureRow {
    /// Who was told.
    pub notified_name: String,
    /// In what capacity (mother, duty judge…).
    pub notified_capacity: String,
    /// When they were told.
    pub notified_at: Instant,
    /// How.
    pub method: NotificationMethod,
    /// Note.
    pub note: Option<String>,
    /// When it was closed.
    pub closed_at: Instant,
    /// Who closed it.
    pub closed_by: String,
}

/// A stored obligation with its incident and closure.
#[derive(Debug, Clone)]
pub struct ObligationRow {
    /// Id.
    pub id: ObligationId,
    /// Human reference.
    pub number: String,
    /// Incident id.
    pub incident: IncidentId,
    /// Incident number.
    pub incident_number: String,
    /// Facility id of the incident.
    pub facility: FacilityId,
    /// Facility code of the incident.
    pub facility_code: String,
    /// When the incident happened.
    pub incident_occurred_at: Instant,
    /// Who must be told.
    pub kind: ObligationKind,
    /// Of what.
    pub event: NotifiableEvent,
    /// About whom: (id, number, name).
    pub person: Option<(PersonId, String, String)>,
    /// When it was opened.
    pub opened_at: Instant,
    /// When it falls due.
    pub due_at: Instant,
    /// How it was met, once closed.
    pub closure: Option<ClosureRow>,
}

/// A closure to write.
#[derive(Debug, Clone)]
pub struct NewClosure<'a> {
    /// The obligation.
    pub obligation: ObligationId,
    /// Who was told.
    pub notified_name: &'a str,
    /// In what capacity.
    pub notified_capacity: &'a str,
    /// When.
    pub notified_at: Instant,
    /// How.
    pub method: NotificationMethod,
    /// Note.
    pub note: Option<&'a str>,
    /// When it is closed.
    pub closed_at: Instant,
    /// Who closes it.
    pub closed_by: &'a str,
}

/// Which obligations to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct ObligationQuery<'a> {
    /// Only of incidents in these facilities; all when `None`.
    pub facilities: Option<&'a [FacilityId]>,
    /// Only of this incident.
    pub incident: Option<IncidentId>,
    /// Only those not closed.
    pub open_only: bool,
    /// Only those due before this instant.
    pub due_before: Option<Instant>,
}

/// A notification preference to write.
#[derive(Debug, Clone)]
pub struct NewNotificationPreference<'a> {
    /// Person.
    pub person: PersonId,
    /// Whether they decline that their family be notified.
    pub declines_family: bool,
    /// When they said so.
    pub stated_on: NaiveDate,
    /// Note.
    pub note: Option<&'a str>,
    /// When it was recorded.
    pub recorded_at: Instant,
    /// Who recorded it.
    pub actor: &'a str,
}

/// The latest notification preference of a person.
#[derive(Debug, Clone)]
pub struct NotificationPreferenceRow {
    /// Whether they decline that their family be notified.
    pub declines_family: bool,
    /// When they said so.
    pub stated_on: NaiveDate,
    /// Note.
    pub note: Option<String>,
    /// When it was recorded.
    pub recorded_at: Instant,
    /// Who recorded it.
    pub actor: String,
}

/// Incidents of one kind in one facility and month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentCount {
    /// Facility.
    pub facility: FacilityId,
    /// Month, `YYYY-MM` (UTC).
    pub month: String,
    /// Kind.
    pub kind: IncidentKind,
    /// How many.
    pub count: u64,
}

/// A person involved in an incident, for counting deaths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvolvementRow {
    /// Person.
    pub person: PersonId,
    /// Facility of the incident.
    pub facility: FacilityId,
    /// Kind of the incident.
    pub kind: IncidentKind,
    /// Their role.
    pub role: InvolvementRole,
    /// The worst injury documented for them in it.
    pub worst_injury: Option<InjurySeverity>,
    /// When the incident happened.
    pub occurred_at: Instant,
}

/// A release whose reason is death.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeathRelease {
    /// Person.
    pub person: PersonId,
    /// Facility that released them.
    pub facility: FacilityId,
    /// When.
    pub occurred_at: Instant,
}

/// Reads and writes of incidents, in the caller's transaction.
pub trait IncidentTx {
    /// People held per facility (in transit excluded) at each of the given instants, ascending:
    /// one pass over the custody intervals instead of one population query per instant.
    fn population_series(&mut self, instants: &[Instant]) -> StoreResult<Vec<HashMap<FacilityId, u64>>>;
    /// Write an incident.
    fn insert_incident(&mut self, incident: &NewIncident<'_>) -> StoreResult<IncidentId>;
    /// Write a person's involvement in an incident.
    fn insert_incident_person(
        &mut self,
        incident: IncidentId,
        person: PersonId,
        role: InvolvementRole,
        injured: bool,
    ) -> StoreResult<()>;
    /// Write an injury.
    fn insert_injury(&mut self, injury: &NewInjury<'_>) -> StoreResult<()>;
    /// Write an obligation.
    fn insert_obligation(&mut self, obligation: &NewObligation<'_>) -> StoreResult<ObligationId>;
    /// Write the closure of an obligation (at most one per obligation).
    fn insert_obligation_closure(&mut self, closure: &NewClosure<'_>) -> StoreResult<()>;
    /// Write a notification preference; the latest of a person applies.
    fn insert_notification_preference(&mut self, preference: &NewNotificationPreference<'_>) -> StoreResult<()>;

    /// An incident by number.
    fn incident_by_number(&mut self, number: &str) -> StoreResult<Option<IncidentRow>>;
    /// Incidents newest first (by recording), with id below `before` when given, of the given
    /// facilities (all when `None`), at most `limit`.
    fn incidents(
        &mut self,
        facilities: Option<&[FacilityId]>,
        before: Option<IncidentId>,
        limit: u32,
    ) -> StoreResult<Vec<IncidentRow>>;
    /// Incidents a person was involved in, newest first.
    fn incidents_of_person(&mut self, person: PersonId) -> StoreResult<Vec<IncidentRow>>;
    /// The people involved in an incident, in the order reported.
    fn incident_people(&mut self, incident: IncidentId) -> StoreResult<Vec<IncidentPersonRow>>;
    /// The injuries documented in an incident, in the order documented.
    fn injuries(&mut self, incident: IncidentId) -> StoreResult<Vec<InjuryRow>>;
    /// Obligations, by due time then id.
    fn obligations(&mut self, query: &ObligationQuery<'_>) -> StoreResult<Vec<ObligationRow>>;
    /// One obligation by its reference.
    fn obligation_by_number(&mut self, number: &str) -> StoreResult<Option<ObligationRow>>;
    /// The latest notification preference of a person, if any was recorded.
    fn notification_preference(&mut self, person: PersonId) -> StoreResult<Option<NotificationPreferenceRow>>;

    /// Incidents that happened in [from, to), counted per facility, month (UTC) and kind.
    fn incident_counts(&mut self, from: Instant, to: Instant) -> StoreResult<Vec<IncidentCount>>;
    /// Every person involved in an incident that happened in [from, to), with the worst injury
    /// documented for them in it.
    fn involvements_between(&mut self, from: Instant, to: Instant) -> StoreResult<Vec<InvolvementRow>>;
    /// Releases with reason death that happened in [from, to).
    fn death_releases_between(&mut self, from: Instant, to: Instant) -> StoreResult<Vec<DeathRelease>>;
}

fn corrupt(what: &str, text: &str) -> StoreError {
    StoreError::Backend(format!("stored {what} `{text}` is not one this program knows"))
}

fn code<T>(parse: fn(&str) -> Option<T>, what: &str, text: &str) -> StoreResult<T> {
    parse(text).ok_or_else(|| corrupt(what, text))
}

fn full_name(given: String, first: String, second: Option<String>) -> String {
    match second {
        Some(s) => format!("{given} {first} {s}"),
        None => format!("{given} {first}"),
    }
}

/// `facility_id IN (…)` for a list of ids (integers, so written inline), or no condition.
fn facility_condition(column: &str, facilities: Option<&[FacilityId]>) -> String {
    match facilities {
        None => "1 = 1".to_string(),
        Some([]) => "1 = 0".to_string(),
        Some(ids) => {
            let list: Vec<String> = ids.iter().map(i64::to_string).collect();
            format!("{column} IN ({})", list.join(", "))
        }
    }
}

const INCIDENT_COLUMNS: &str = "i.id, i.number, i.facility_id, f.code, i.kind, i.occurred_at, i.recorded_at, c.code,
    i.location, i.staff, i.description, i.actor,
    (SELECT count(*) FROM incident_person p WHERE p.incident_id = i.id)";

const INCIDENT_FROM: &str =
    "FROM incident i JOIN facility f ON f.id = i.facility_id LEFT JOIN cell c ON c.id = i.cell_id";

/// An incident from a row of [`INCIDENT_COLUMNS`]; the kind and staff are parsed afterwards.
type RawIncident = (IncidentRow, String, String);

fn raw_incident(r: &Row<'_>) -> StoreResult<RawIncident> {
    Ok((
        IncidentRow {
            id: r.get(0)?,
            number: r.get(1)?,
            facility: r.get(2)?,
            facility_code: r.get(3)?,
            kind: IncidentKind::Assault,
            occurred_at: from_micros(r.get(5)?),
            recorded_at: from_micros(r.get(6)?),
            cell: r.get(7)?,
            location: r.get(8)?,
            staff: Vec::new(),
            description: r.get(10)?,
            actor: r.get(11)?,
            people: r.get(12)?,
        },
        r.get(4)?,
        r.get(9)?,
    ))
}

fn finish_incident((mut row, kind, staff): RawIncident) -> StoreResult<IncidentRow> {
    row.kind = code(IncidentKind::parse, "incident kind", &kind)?;
    row.staff = serde_json::from_str(&staff).map_err(|_| corrupt("staff list", &staff))?;
    Ok(row)
}

const OBLIGATION_COLUMNS: &str = "o.id, o.number, o.incident_id, i.number, i.facility_id, f.code, i.occurred_at,
    o.kind, o.event, o.person_id, p.number, p.given_names, p.first_surname, p.second_surname, o.opened_at, o.due_at,
    k.notified_name, k.notified_capacity, k.notified_at, k.method, k.note, k.closed_at, k.closed_by";

const OBLIGATION_FROM: &str = "FROM obligation o JOIN incident i ON i.id = o.incident_id
    JOIN facility f ON f.id = i.facility_id LEFT JOIN person p ON p.id = o.person_id
    LEFT JOIN obligation_closure k ON k.obligation_id = o.id";

fn obligation_from_row(r: &Row<'_>) -> StoreResult<ObligationRow> {
    let kind: String = r.get(7)?;
    let event: String = r.get(8)?;
    let person = match r.get::<_, Option<i64>>(9)? {
        Some(id) => Some((id, r.get(10)?, full_name(r.get(11)?, r.get(12)?, r.get(13)?))),
        None => None,
    };
    let closure = match r.get::<_, Option<String>>(16)? {
        Some(notified_name) => {
            let method: String = r.get(19)?;
            Some(ClosureRow {
                notified_name,
                notified_capacity: r.get(17)?,
                notified_at: from_micros(r.get(18)?),
                method: code(NotificationMethod::parse, "notification method", &method)?,
                note: r.get(20)?,
                closed_at: from_micros(r.get(21)?),
                closed_by: r.get(22)?,
            })
        }
        None => None,
    };
    Ok(ObligationRow {
        id: r.get(0)?,
        number: r.get(1)?,
        incident: r.get(2)?,
        incident_number: r.get(3)?,
        facility: r.get(4)?,
        facility_code: r.get(5)?,
        incident_occurred_at: from_micros(r.get(6)?),
        kind: code(ObligationKind::parse, "obligation kind", &kind)?,
        event: code(NotifiableEvent::parse, "obligation event", &event)?,
        person,
        opened_at: from_micros(r.get(14)?),
        due_at: from_micros(r.get(15)?),
        closure,
    })
}

/// The worst of the severities in a comma-separated list (as `group_concat` gives them).
fn worst(list: Option<String>) -> StoreResult<Option<InjurySeverity>> {
    let mut worst = None;
    for text in list.iter().flat_map(|l| l.split(',')) {
        let severity = code(InjurySeverity::parse, "injury severity", text)?;
        worst = worst.max(Some(severity));
    }
    Ok(worst)
}

impl IncidentTx for SqlTx<'_> {
    fn population_series(&mut self, instants: &[Instant]) -> StoreResult<Vec<HashMap<FacilityId, u64>>> {
        let mut series = vec![HashMap::new(); instants.len()];
        let (Some(first), Some(last)) = (instants.first(), instants.last()) else { return Ok(series) };
        let times: Vec<i64> = instants.iter().map(|t| to_micros(*t)).collect();
        // Per facility, +1 where an interval starts counting and -1 where it stops, then sums.
        let mut steps: HashMap<FacilityId, Vec<i64>> = HashMap::new();
        let mut stmt = self.conn().prepare_cached(
            "SELECT facility_id, from_at, to_at FROM presence WHERE in_transit = 0 AND to_at > ?1 AND from_at <= ?2",
        )?;
        let mut rows = stmt.query(params![to_micros(*first), to_micros(*last)])?;
        while let Some(r) = rows.next()? {
            let (facility, from, to): (FacilityId, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            // Instants t with from <= t < to.
            let start = times.partition_point(|t| *t < from);
            let end = times.partition_point(|t| *t < to);
            if start < end {
                let step = steps.entry(facility).or_insert_with(|| vec![0; times.len() + 1]);
                step[start] += 1;
                step[end] -= 1;
            }
        }
        for (facility, step) in steps {
            let mut held = 0i64;
            for (i, s) in step.iter().take(times.len()).enumerate() {
                held += s;
                if held > 0 {
                    series[i].insert(facility, held as u64);
                }
            }
        }
        Ok(series)
    }

    fn insert_incident(&mut self, i: &NewIncident<'_>) -> StoreResult<IncidentId> {
        let staff = serde_json::to_string(i.staff).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.insert_audited(
            "incident",
            &[
                Value::Text(i.number),
                Value::Int(i.facility),
                Value::Text(i.kind.as_str()),
                Value::Int(to_micros(i.occurred_at)),
                Value::Int(to_micros(i.recorded_at)),
                i.cell.map(Value::Int).unwrap_or(Value::Null),
                i.location.map(Value::Text).unwrap_or(Value::Null),
                Value::Text(&staff),
                Value::Text(i.description),
                Value::Text(i.actor),
            ],
        )
    }

    fn insert_incident_person(
        &mut self,
        incident: IncidentId,
        person: PersonId,
        role: InvolvementRole,
        injured: bool,
    ) -> StoreResult<()> {
        self.insert_audited(
            "incident_person",
            &[Value::Int(incident), Value::Int(person), Value::Text(role.as_str()), Value::Int(i64::from(injured))],
        )?;
        Ok(())
    }

    fn insert_injury(&mut self, i: &NewInjury<'_>) -> StoreResult<()> {
        self.insert_audited(
            "injury",
            &[
                Value::Int(i.incident),
                Value::Int(i.person),
                Value::Text(i.severity.as_str()),
                Value::Text(i.description),
                Value::Int(to_micros(i.recorded_at)),
                Value::Text(i.actor),
            ],
        )?;
        Ok(())
    }

    fn insert_obligation(&mut self, o: &NewObligation<'_>) -> StoreResult<ObligationId> {
        self.insert_audited(
            "obligation",
            &[
                Value::Text(o.number),
                Value::Int(o.incident),
                Value::Text(o.kind.as_str()),
                Value::Text(o.event.as_str()),
                o.person.map(Value::Int).unwrap_or(Value::Null),
                Value::Int(to_micros(o.opened_at)),
                Value::Int(to_micros(o.due_at)),
            ],
        )
    }

    fn insert_obligation_closure(&mut self, c: &NewClosure<'_>) -> StoreResult<()> {
        self.insert_audited(
            "obligation_closure",
            &[
                Value::Int(c.obligation),
                Value::Text(c.notified_name),
                Value::Text(c.notified_capacity),
                Value::Int(to_micros(c.notified_at)),
                Value::Text(c.method.as_str()),
                c.note.map(Value::Text).unwrap_or(Value::Null),
                Value::Int(to_micros(c.closed_at)),
                Value::Text(c.closed_by),
            ],
        )?;
        Ok(())
    }

    fn insert_notification_preference(&mut self, p: &NewNotificationPreference<'_>) -> StoreResult<()> {
        let stated_on = p.stated_on.to_string();
        self.insert_audited(
            "notification_preference",
            &[
                Value::Int(p.person),
                Value::Int(i64::from(p.declines_family)),
                Value::Text(&stated_on),
                p.note.map(Value::Text).unwrap_or(Value::Null),
                Value::Int(to_micros(p.recorded_at)),
                Value::Text(p.actor),
            ],
        )?;
        Ok(())
    }

    fn incident_by_number(&mut self, number: &str) -> StoreResult<Option<IncidentRow>> {
        let sql = format!("SELECT {INCIDENT_COLUMNS} {INCIDENT_FROM} WHERE i.number = ?1");
        let raw = self.conn().prepare_cached(&sql)?.query_row([number], raw_incident).optional()?;
        raw.map(finish_incident).transpose()
    }

    fn incidents(
        &mut self,
        facilities: Option<&[FacilityId]>,
        before: Option<IncidentId>,
        limit: u32,
    ) -> StoreResult<Vec<IncidentRow>> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} {INCIDENT_FROM} WHERE i.id < ?1 AND {} ORDER BY i.id DESC LIMIT ?2",
            facility_condition("i.facility_id", facilities)
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let raw: Vec<RawIncident> =
            stmt.query_map(params![before.unwrap_or(i64::MAX), limit], raw_incident)?.collect::<Result<_, _>>()?;
        raw.into_iter().map(finish_incident).collect()
    }

    fn incidents_of_person(&mut self, person: PersonId) -> StoreResult<Vec<IncidentRow>> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} {INCIDENT_FROM}
             WHERE i.id IN (SELECT incident_id FROM incident_person WHERE person_id = ?1) ORDER BY i.id DESC"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let raw: Vec<RawIncident> = stmt.query_map([person], raw_incident)?.collect::<Result<_, _>>()?;
        raw.into_iter().map(finish_incident).collect()
    }

    fn incident_people(&mut self, incident: IncidentId) -> StoreResult<Vec<IncidentPersonRow>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT ip.person_id, p.number, p.given_names, p.first_surname, p.second_surname, ip.role, ip.injured
             FROM incident_person ip JOIN person p ON p.id = ip.person_id WHERE ip.incident_id = ?1 ORDER BY ip.id",
        )?;
        let rows: Vec<(IncidentPersonRow, String)> = stmt
            .query_map([incident], |r| {
                Ok((
                    IncidentPersonRow {
                        person: r.get(0)?,
                        number: r.get(1)?,
                        name: full_name(r.get(2)?, r.get(3)?, r.get(4)?),
                        role: InvolvementRole::Involved,
                        injured: r.get(6)?,
                    },
                    r.get(5)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(mut row, role)| {
                row.role = code(InvolvementRole::parse, "involvement role", &role)?;
                Ok(row)
            })
            .collect()
    }

    fn injuries(&mut self, incident: IncidentId) -> StoreResult<Vec<InjuryRow>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT j.person_id, p.number, j.severity, j.description, j.recorded_at, j.actor
             FROM injury j JOIN person p ON p.id = j.person_id WHERE j.incident_id = ?1 ORDER BY j.id",
        )?;
        let rows: Vec<(InjuryRow, String)> = stmt
            .query_map([incident], |r| {
                Ok((
                    InjuryRow {
                        person: r.get(0)?,
                        number: r.get(1)?,
                        severity: InjurySeverity::Minor,
                        description: r.get(3)?,
                        recorded_at: from_micros(r.get(4)?),
                        actor: r.get(5)?,
                    },
                    r.get(2)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(mut row, severity)| {
                row.severity = code(InjurySeverity::parse, "injury severity", &severity)?;
                Ok(row)
            })
            .collect()
    }

    fn obligations(&mut self, q: &ObligationQuery<'_>) -> StoreResult<Vec<ObligationRow>> {
        let mut sql = format!(
            "SELECT {OBLIGATION_COLUMNS} {OBLIGATION_FROM} WHERE {}",
            facility_condition("i.facility_id", q.facilities)
        );
        let mut values: Vec<i64> = Vec::new();
        if let Some(incident) = q.incident {
            values.push(incident);
            sql.push_str(&format!(" AND o.incident_id = ?{}", values.len()));
        }
        if q.open_only {
            sql.push_str(" AND k.id IS NULL");
        }
        if let Some(before) = q.due_before {
            values.push(to_micros(before));
            sql.push_str(&format!(" AND o.due_at < ?{}", values.len()));
        }
        sql.push_str(" ORDER BY o.due_at, o.id");
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let params: Vec<&dyn ToSql> = values.iter().map(|v| v as &dyn ToSql).collect();
        let mut rows = stmt.query(params.as_slice())?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(obligation_from_row(&r)?);
        }
        Ok(out)
    }

    fn obligation_by_number(&mut self, number: &str) -> StoreResult<Option<ObligationRow>> {
        let sql = format!("SELECT {OBLIGATION_COLUMNS} {OBLIGATION_FROM} WHERE o.number = ?1");
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let mut rows = stmt.query([number])?;
        match rows.next()? {
            Some(r) => Ok(Some(obligation_from_row(&r)?)),
            None => Ok(None),
        }
    }

    fn notification_preference(&mut self, person: PersonId) -> StoreResult<Option<NotificationPreferenceRow>> {
        let found = self
            .conn()
            .prepare_cached(
                "SELECT declines_family, stated_on, note, recorded_at, actor FROM notification_preference
                 WHERE person_id = ?1 ORDER BY id DESC LIMIT 1",
            )?
            .query_row([person], |r| {
                Ok((r.get::<_, bool>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get::<_, i64>(3)?, r.get(4)?))
            })
            .optional()?;
        found
            .map(|(declines_family, stated_on, note, recorded_at, actor)| {
                Ok(NotificationPreferenceRow {
                    declines_family,
                    stated_on: stated_on.parse().map_err(|_| corrupt("date", &stated_on))?,
                    note,
                    recorded_at: from_micros(recorded_at),
                    actor,
                })
            })
            .transpose()
    }

    fn incident_counts(&mut self, from: Instant, to: Instant) -> StoreResult<Vec<IncidentCount>> {
        let month = match self.dialect() {
            Dialect::Sqlite => "strftime('%Y-%m', occurred_at / 1000000, 'unixepoch')",
            Dialect::Postgres => "to_char(to_timestamp(occurred_at / 1000000) AT TIME ZONE 'UTC', 'YYYY-MM')",
        };
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT facility_id, {month} AS month, kind, count(*)
             FROM incident WHERE occurred_at >= ?1 AND occurred_at < ?2
             GROUP BY facility_id, month, kind ORDER BY facility_id, month, kind"
        ))?;
        let rows: Vec<(i64, String, String, i64)> = stmt
            .query_map(params![to_micros(from), to_micros(to)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(facility, month, kind, count)| {
                Ok(IncidentCount {
                    facility,
                    month,
                    kind: code(IncidentKind::parse, "incident kind", &kind)?,
                    count: count as u64,
                })
            })
            .collect()
    }

    fn involvements_between(&mut self, from: Instant, to: Instant) -> StoreResult<Vec<InvolvementRow>> {
        let severities = match self.dialect() {
            Dialect::Sqlite => "group_concat(j.severity)",
            Dialect::Postgres => "string_agg(j.severity, ',')",
        };
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT ip.person_id, i.facility_id, i.kind, ip.role, i.occurred_at,
                    (SELECT {severities} FROM injury j
                     WHERE j.incident_id = ip.incident_id AND j.person_id = ip.person_id)
             FROM incident i JOIN incident_person ip ON ip.incident_id = i.id
             WHERE i.occurred_at >= ?1 AND i.occurred_at < ?2 ORDER BY i.occurred_at, ip.id"
        ))?;
        type Raw = (i64, i64, String, String, i64, Option<String>);
        let rows: Vec<Raw> = stmt
            .query_map(params![to_micros(from), to_micros(to)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(person, facility, kind, role, at, severities)| {
                Ok(InvolvementRow {
                    person,
                    facility,
                    kind: code(IncidentKind::parse, "incident kind", &kind)?,
                    role: code(InvolvementRole::parse, "involvement role", &role)?,
                    worst_injury: worst(severities)?,
                    occurred_at: from_micros(at),
                })
            })
            .collect()
    }

    fn death_releases_between(&mut self, from: Instant, to: Instant) -> StoreResult<Vec<DeathRelease>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT person_id, facility_id, occurred_at FROM movement
             WHERE kind = 'release' AND reason = 'death' AND occurred_at >= ?1 AND occurred_at < ?2
             ORDER BY occurred_at, id",
        )?;
        let rows = stmt.query_map(params![to_micros(from), to_micros(to)], |r| {
            Ok(DeathRelease { person: r.get(0)?, facility: r.get(1)?, occurred_at: from_micros(r.get(2)?) })
        })?;
        rows.collect::<Result<_, _>>()
    }
}
