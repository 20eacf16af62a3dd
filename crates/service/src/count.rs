//! Roll counts: who should be in each cell (placed and not out) when a count starts, what
//! officers counted, and the explanation of every difference before the count clears.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use domain::text::LongText;
use domain::time::Instant;
use store::housing::{HousingTx, NewResolution, RollCountRow};
use store::{Store, Tx};

use crate::custody::{record_movement_in, MovementKind, MovementRequest};
use crate::incident::{record_incident_in, IncidentReport, InvolvedPerson};
use crate::{audit, Context, Service, ServiceError, ServiceResult};

/// A count to start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StartCount {
    /// Facility code.
    pub facility: String,
    /// Unit code; the whole facility when absent.
    #[serde(default)]
    pub unit: Option<String>,
}

/// What officers counted in one cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CellCount {
    /// Cell code.
    pub cell: String,
    /// People counted there.
    pub counted: u32,
}

/// How an absence from a cell is explained.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Explanation {
    /// The person was counted in another cell. Unless they were returned to their own cell at
    /// once, the move is recorded, with every housing rule applied to it.
    FoundElsewhere {
        /// Cell code where they were found.
        cell: String,
        /// Returned to their own cell straight away: no move to record.
        #[serde(default)]
        returned: bool,
    },
    /// Nobody knows where the person is: an escape incident is opened.
    Unaccounted,
    /// The person left the cell on the record after the count started (to court, a transfer, a
    /// move): their absence is explained by that movement.
    MovedOnRecord,
    /// The person is in this cell on the record since after the count started (admitted,
    /// returned, moved in): they explain one more person counted there.
    ArrivedOnRecord {
        /// Cell code where they were counted.
        cell: String,
    },
}

/// An absence to resolve.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resolve {
    /// Person number of someone expected in a counted cell.
    pub person: String,
    /// What happened.
    pub explanation: Explanation,
    /// Free-text note.
    #[serde(default)]
    pub note: Option<LongText>,
}

/// One resolved absence, as staff read it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResolutionView {
    /// Person number.
    pub person: String,
    /// found_elsewhere or unaccounted.
    pub kind: String,
    /// Cell where they were found.
    pub found_in: Option<String>,
    /// The escape incident opened.
    pub incident: Option<String>,
    /// Note.
    pub note: Option<String>,
    /// Who resolved it.
    pub resolved_by: String,
    /// When.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub resolved_at: Instant,
}

/// One cell of a count.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CountedCell {
    /// Cell code.
    pub cell: String,
    /// People who should have been there (placed and not out).
    pub expected: u32,
    /// What officers counted last; absent until entered.
    pub counted: Option<u32>,
    /// Counted minus expected, after the resolutions; 0 when everyone is accounted for.
    pub discrepancy: Option<i64>,
    /// Absences from this cell explained so far.
    pub resolutions: Vec<ResolutionView>,
}

/// A roll count as staff read it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CountView {
    /// Count number.
    pub id: i64,
    /// Facility code.
    pub facility: String,
    /// Unit code, when one unit was counted.
    pub unit: Option<String>,
    /// The instant counted.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub counted_at: Instant,
    /// Who started it.
    pub started_by: String,
    /// open or cleared.
    pub state: &'static str,
    /// When it cleared.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub cleared_at: Option<Instant>,
    /// Who cleared it.
    pub cleared_by: Option<String>,
    /// People expected in all.
    pub expected: u64,
    /// People counted in all (cells entered so far).
    pub counted: u64,
    /// Cells not yet counted or not yet reconciled.
    pub outstanding: Vec<String>,
    /// Every cell.
    pub cells: Vec<CountedCell>,
}

fn count_row<T: Tx>(tx: &mut T, id: i64) -> ServiceResult<RollCountRow> {
    tx.roll_count(id)?.ok_or_else(|| ServiceError::NotFound { what: "roll count", key: id.to_string() })
}

/// Codes and ids of a facility's cells.
fn cell_codes<T: Tx>(tx: &mut T, facility: i64, at: Instant) -> ServiceResult<HashMap<i64, store::Cell>> {
    Ok(tx.cells_at(at)?.into_iter().filter(|c| c.facility == facility).map(|c| (c.id, c)).collect())
}

fn number_of<T: Tx>(tx: &mut T, person: i64) -> ServiceResult<String> {
    Ok(tx.person(person)?.map(|p| p.number).unwrap_or_default())
}

/// Expected people per cell of a facility (or unit) now, every cell in use listed: the
/// computation a count starts from.
pub fn expected_counts<T: Tx>(
    tx: &mut T,
    facility: &store::Facility,
    unit: Option<i64>,
    at: Instant,
) -> ServiceResult<Vec<(i64, u32)>> {
    let mut expected: HashMap<i64, u32> = HashMap::new();
    for (cell, _) in tx.placed_now(facility.id, unit, false)? {
        *expected.entry(cell).or_default() += 1;
    }
    let mut cells: Vec<(i64, u32)> = cell_codes(tx, facility.id, at)?
        .into_values()
        .filter(|c| c.in_use && unit.is_none_or(|u| c.unit == u))
        .map(|c| (c.id, expected.remove(&c.id).unwrap_or(0)))
        .collect();
    // People in a cell out of order are still expected there.
    cells.extend(expected);
    cells.sort_unstable();
    Ok(cells)
}

/// Start a count inside the caller's transaction.
pub fn start_count_in<T: Tx>(tx: &mut T, ctx: &Context, request: &StartCount) -> ServiceResult<CountView> {
    let facility = tx
        .facility_by_code(&request.facility)?
        .ok_or_else(|| ServiceError::NotFound { what: "facility", key: request.facility.clone() })?;
    let unit = match &request.unit {
        Some(code) => Some(
            tx.unit_by_code(facility.id, code)?
                .ok_or_else(|| ServiceError::NotFound { what: "unit", key: code.clone() })?
                .id,
        ),
        None => None,
    };
    let cells = expected_counts(tx, &facility, unit, ctx.now)?;
    let id = tx.insert_roll_count(facility.id, unit, ctx.now, &ctx.actor, &cells)?;
    audit(tx, ctx, "count.start", &id.to_string(), request)?;
    view_in(tx, id, ctx.now)
}

/// Enter counted cells inside the caller's transaction; a cell entered again is a recount.
pub fn enter_counts_in<T: Tx>(tx: &mut T, ctx: &Context, id: i64, counts: &[CellCount]) -> ServiceResult<CountView> {
    // An entry that counts nothing would still be an audit event saying someone counted.
    if counts.is_empty() {
        return Err(ServiceError::field("counts", "give what was counted in at least one cell"));
    }
    let count = open_count(tx, id)?;
    let cells = cell_codes(tx, count.facility, ctx.now)?;
    for (i, entry) in counts.iter().enumerate() {
        let cell = cells
            .values()
            .find(|c| c.code == entry.cell && count.cells.iter().any(|(id, _)| *id == c.id))
            .ok_or_else(|| {
                ServiceError::field(format!("counts[{i}].cell"), format!("cell {} is not in this count", entry.cell))
            })?;
        tx.insert_roll_count_entry(id, cell.id, entry.counted, ctx.now, &ctx.actor)?;
    }
    audit(tx, ctx, "count.enter", &id.to_string(), &counts)?;
    view_in(tx, id, ctx.now)
}

fn open_count<T: Tx>(tx: &mut T, id: i64) -> ServiceResult<RollCountRow> {
    let count = count_row(tx, id)?;
    if count.cleared.is_some() {
        return Err(ServiceError::refused("count.cleared", format!("roll count {id} has already cleared")));
    }
    Ok(count)
}

/// Explain one person's absence inside the caller's transaction.
pub fn resolve_in<T: Tx>(tx: &mut T, ctx: &Context, id: i64, request: &Resolve) -> ServiceResult<CountView> {
    let count = open_count(tx, id)?;
    let person = crate::person_to_change(tx, &request.person)?;
    let cells = cell_codes(tx, count.facility, ctx.now)?;
    let facility = tx
        .facility_by_id(count.facility)?
        .ok_or_else(|| ServiceError::Internal("count of a facility that is not on record".into()))?;
    // Where the person should have been when the count started.
    let place = tx.whereabouts(person, count.counted_at)?;
    let expected_cell = place
        .filter(|w| w.facility.as_deref() == Some(facility.code.as_str()) && w.out.is_none())
        .and_then(|w| w.cell)
        .and_then(|code| cells.values().find(|c| c.code == code).map(|c| c.id))
        .filter(|cell| count.cells.iter().any(|(id, _)| id == cell));
    let kind = match request.explanation {
        Explanation::FoundElsewhere { .. } => "found_elsewhere",
        Explanation::Unaccounted => "unaccounted",
        Explanation::MovedOnRecord => "moved_on_record",
        Explanation::ArrivedOnRecord { .. } => "arrived_on_record",
    };
    if count.resolutions.iter().any(|r| r.person == person && r.kind == kind) {
        return Err(ServiceError::refused(
            "count.already_resolved",
            format!("{} is already explained this way in this count", request.person),
        ));
    }
    let expected = || {
        expected_cell.ok_or_else(|| {
            ServiceError::field("person", format!("{} was not expected in any cell of this count", request.person))
        })
    };
    let (cell, found_cell, incident) = match &request.explanation {
        Explanation::FoundElsewhere { cell, returned } => {
            let expected_cell = expected()?;
            let found = cells
                .values()
                .find(|c| &c.code == cell)
                .ok_or_else(|| ServiceError::field("cell", format!("cell {cell} is not in {}", facility.code)))?;
            if found.id == expected_cell {
                return Err(ServiceError::field("cell", "is the cell the person was expected in: enter a recount"));
            }
            if !returned {
                record_movement_in(
                    tx,
                    ctx,
                    &MovementRequest {
                        person: request.person.clone(),
                        kind: MovementKind::Move { cell: cell.clone(), bed: None },
                        at: None,
                        note: Some(crate::composed("cell", format!("found in cell {cell} at roll count {id}"))?),
                    },
                )?;
            }
            (expected_cell, Some(found.id), None)
        }
        Explanation::Unaccounted => {
            let expected_cell = expected()?;
            let cell = cells.get(&expected_cell).map(|c| c.code.clone());
            let opened = record_incident_in(
                tx,
                ctx,
                &IncidentReport {
                    facility: facility.code.clone(),
                    kind: domain::incident::IncidentKind::Escape,
                    at: None,
                    cell: cell.clone(),
                    location: None,
                    people: vec![InvolvedPerson {
                        person: request.person.clone(),
                        role: domain::incident::InvolvementRole::Missing,
                        injured: false,
                    }],
                    staff: vec![crate::composed("actor", ctx.actor.clone())?],
                    description: crate::composed(
                        "note",
                        format!(
                            "Unaccounted for at roll count {id}: expected in cell {}.{}",
                            cell.unwrap_or_default(),
                            request.note.as_deref().map(|n| format!(" {n}")).unwrap_or_default()
                        ),
                    )?,
                },
            )?;
            (expected_cell, None, Some(opened.number))
        }
        Explanation::MovedOnRecord => {
            let expected_cell = expected()?;
            let moved = tx.timeline(person)?.iter().any(|m| m.occurred_at > count.counted_at);
            if !moved {
                return Err(ServiceError::refused(
                    "count.not_moved",
                    format!("{} has no movement on record since the count started", request.person),
                ));
            }
            (expected_cell, None, None)
        }
        Explanation::ArrivedOnRecord { cell } => {
            let now = tx.whereabouts(person, ctx.now)?;
            let here = cells
                .values()
                .find(|c| &c.code == cell && count.cells.iter().any(|(id, _)| *id == c.id))
                .ok_or_else(|| ServiceError::field("cell", format!("cell {cell} is not in this count")))?;
            let arrived = now.is_some_and(|w| {
                w.cell.as_deref() == Some(cell.as_str())
                    && w.in_cell_since.is_some_and(|since| since > count.counted_at)
            });
            if !arrived || expected_cell == Some(here.id) {
                return Err(ServiceError::refused(
                    "count.not_arrived",
                    format!("{} has not come into cell {cell} on the record since the count started", request.person),
                ));
            }
            (here.id, None, None)
        }
    };
    tx.insert_roll_count_resolution(&NewResolution {
        count: id,
        person,
        cell,
        kind,
        found_cell,
        incident: incident.as_deref(),
        note: request.note.as_deref(),
        resolved_at: ctx.now,
        resolved_by: &ctx.actor,
    })?;
    audit(tx, ctx, "count.resolve", &id.to_string(), request)?;
    view_in(tx, id, ctx.now)
}

/// Clear a count inside the caller's transaction: refused while any cell is uncounted or
/// unreconciled.
pub fn clear_in<T: Tx>(tx: &mut T, ctx: &Context, id: i64) -> ServiceResult<CountView> {
    open_count(tx, id)?;
    let view = view_in(tx, id, ctx.now)?;
    if !view.outstanding.is_empty() {
        let shown: Vec<&str> = view.outstanding.iter().take(10).map(String::as_str).collect();
        let more = view.outstanding.len().saturating_sub(shown.len());
        return Err(ServiceError::refused(
            "count.unresolved",
            format!(
                "roll count {id} cannot clear: cells {}{} are not counted or not reconciled",
                shown.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            ),
        ));
    }
    tx.insert_roll_count_clearance(id, ctx.now, &ctx.actor)?;
    audit(tx, ctx, "count.clear", &id.to_string(), &serde_json::json!({ "count": id }))?;
    view_in(tx, id, ctx.now)
}

/// A count with each cell's expected, counted and unexplained difference.
pub fn view_in<T: Tx>(tx: &mut T, id: i64, now: Instant) -> ServiceResult<CountView> {
    let count = count_row(tx, id)?;
    let cells = cell_codes(tx, count.facility, now)?;
    let facility = tx.facility_by_id(count.facility)?.map(|f| f.code).unwrap_or_default();
    let unit = match count.unit {
        Some(u) => tx.unit(u)?.map(|u| u.code),
        None => None,
    };
    let mut latest: HashMap<i64, u32> = HashMap::new();
    for (cell, counted, _, _) in &count.entries {
        latest.insert(*cell, *counted);
    }
    let code = |cell: i64| cells.get(&cell).map(|c| c.code.clone()).unwrap_or_else(|| format!("cell {cell}"));
    let mut views = Vec::with_capacity(count.cells.len());
    let mut outstanding = Vec::new();
    for (cell, expected) in &count.cells {
        let mut resolutions = Vec::new();
        // Someone found elsewhere was counted there; someone unaccounted was counted nowhere.
        let mut explained = i64::from(*expected);
        for r in &count.resolutions {
            if r.cell == *cell {
                // Someone arrived on the record adds one here; every other explanation is an absence.
                explained += if r.kind == "arrived_on_record" { 1 } else { -1 };
                resolutions.push(ResolutionView {
                    person: number_of(tx, r.person)?,
                    kind: r.kind.clone(),
                    found_in: r.found_cell.map(code),
                    incident: r.incident.clone(),
                    note: r.note.clone(),
                    resolved_by: r.resolved_by.clone(),
                    resolved_at: r.resolved_at,
                });
            }
            if r.found_cell == Some(*cell) {
                explained += 1;
            }
        }
        let counted = latest.get(cell).copied();
        let discrepancy = counted.map(|c| i64::from(c) - explained);
        if discrepancy != Some(0) {
            outstanding.push(code(*cell));
        }
        views.push(CountedCell { cell: code(*cell), expected: *expected, counted, discrepancy, resolutions });
    }
    views.sort_by(|a, b| a.cell.cmp(&b.cell));
    outstanding.sort();
    Ok(CountView {
        id,
        facility,
        unit,
        counted_at: count.counted_at,
        started_by: count.started_by,
        state: if count.cleared.is_some() { "cleared" } else { "open" },
        cleared_at: count.cleared.as_ref().map(|c| c.0),
        cleared_by: count.cleared.map(|c| c.1),
        expected: count.cells.iter().map(|(_, e)| u64::from(*e)).sum(),
        counted: latest.values().map(|c| u64::from(*c)).sum(),
        outstanding,
        cells: views,
    })
}

/// People expected in one cell of a count: placed there and not out when it started.
pub fn expected_people_in<T: Tx>(tx: &mut T, id: i64, cell_code: &str) -> ServiceResult<Vec<store::Occupant>> {
    let count = count_row(tx, id)?;
    let cell = tx
        .cell_by_code(count.facility, cell_code, count.counted_at)?
        .filter(|c| count.cells.iter().any(|(id, _)| *id == c.id))
        .ok_or_else(|| ServiceError::NotFound { what: "cell in this count", key: cell_code.to_string() })?;
    let mut people = Vec::new();
    for occupant in tx.occupants(store::Place::Cell(cell.id), count.counted_at)? {
        let person = tx.person_id(&occupant.number)?.unwrap_or_default();
        if !tx.out_at(person, count.counted_at)? {
            people.push(occupant);
        }
    }
    Ok(people)
}

impl<S: Store> Service<S> {
    /// Start a roll count of a facility or unit now.
    pub fn start_count(&self, ctx: &Context, request: &StartCount) -> ServiceResult<CountView> {
        self.batch(|tx| start_count_in(tx, ctx, request))
    }

    /// Enter what officers counted.
    pub fn enter_counts(&self, ctx: &Context, id: i64, counts: &[CellCount]) -> ServiceResult<CountView> {
        self.batch(|tx| enter_counts_in(tx, ctx, id, counts))
    }

    /// Explain an absence.
    pub fn resolve_count(&self, ctx: &Context, id: i64, request: &Resolve) -> ServiceResult<CountView> {
        self.batch(|tx| resolve_in(tx, ctx, id, request))
    }

    /// Clear a count once every cell is counted and reconciled.
    pub fn clear_count(&self, ctx: &Context, id: i64) -> ServiceResult<CountView> {
        self.batch(|tx| clear_in(tx, ctx, id))
    }

    /// One count.
    pub fn count(&self, id: i64, now: Instant) -> ServiceResult<CountView> {
        view_in(&mut self.store().read()?, id, now)
    }

    /// Counts of the given facilities (all when None), newest first, with id below `before`.
    pub fn counts_of(
        &self,
        facilities: Option<&[String]>,
        before: i64,
        limit: u32,
        now: Instant,
    ) -> ServiceResult<Vec<CountView>> {
        let mut tx = self.store().read()?;
        let ids = facility_ids(&mut tx, facilities)?;
        let found = tx.roll_counts(ids.as_deref(), before, limit)?;
        found.into_iter().map(|id| view_in(&mut tx, id, now)).collect()
    }

    /// Counts not cleared of the given facilities (all when None), oldest first: (id, facility
    /// code, unit code).
    pub fn uncleared_counts(&self, facilities: Option<&[String]>) -> ServiceResult<Vec<(i64, String, Option<String>)>> {
        let mut tx = self.store().read()?;
        let ids = facility_ids(&mut tx, facilities)?;
        let found = tx.uncleared_roll_counts(ids.as_deref())?;
        let mut counts = Vec::new();
        for id in found {
            if let Some(count) = tx.roll_count(id)? {
                let facility = tx.facility_by_id(count.facility)?.map(|f| f.code).unwrap_or_default();
                let unit = match count.unit {
                    Some(unit) => tx.unit(unit)?.map(|u| u.code),
                    None => None,
                };
                counts.push((id, facility, unit));
            }
        }
        Ok(counts)
    }

    /// People expected in one cell of a count.
    pub fn count_expected_people(&self, id: i64, cell: &str) -> ServiceResult<Vec<store::Occupant>> {
        expected_people_in(&mut self.store().read()?, id, cell)
    }

    /// Expected people per cell of a facility now (the start of a count), without recording anything.
    pub fn expected_counts(&self, facility: &str, now: Instant) -> ServiceResult<Vec<(i64, u32)>> {
        let mut tx = self.store().read()?;
        let facility = tx
            .facility_by_code(facility)?
            .ok_or_else(|| ServiceError::NotFound { what: "facility", key: facility.to_string() })?;
        expected_counts(&mut tx, &facility, None, now)
    }
}

/// The ids of facilities given by code (unknown codes left out); `None` stays "all facilities".
fn facility_ids<T: Tx>(tx: &mut T, codes: Option<&[String]>) -> ServiceResult<Option<Vec<i64>>> {
    let Some(codes) = codes else { return Ok(None) };
    let mut ids = Vec::new();
    for code in codes {
        if let Some(f) = tx.facility_by_code(code)? {
            ids.push(f.id);
        }
    }
    Ok(Some(ids))
}
