//! Queries: occupancy against every capacity measure, whereabouts, occupants, timelines.

use std::collections::BTreeMap;

use serde::Serialize;

use domain::estate::{Capacity, Occupancy};
use domain::time::Instant;
use store::{MedicalTask, MovementRecord, Occupant, Person, Place, Store, Tx, Whereabouts};

use crate::{Service, ServiceError, ServiceResult};

/// How much of the estate an occupancy report breaks down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Detail {
    /// Facilities and the total.
    #[default]
    Facility,
    /// Also each unit.
    Unit,
    /// Also each unit and cell.
    Cell,
}

/// Population and occupancy of one place against every measure.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Measure {
    /// People there.
    pub population: u64,
    /// Capacity by each measure.
    pub capacity: Capacity,
    /// Occupancy in percent by each measure, one decimal; null where capacity is 0.
    pub occupancy_pct: Occupancy,
}

impl Measure {
    /// Population against a capacity.
    pub fn new(population: u64, capacity: Capacity) -> Self {
        Self { population, capacity, occupancy_pct: capacity.occupancy(population) }
    }
}

/// A facility's line in the occupancy report.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FacilityOccupancy {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Population, capacity and occupancy.
    #[serde(flatten)]
    pub measure: Measure,
    /// Units, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<Vec<UnitOccupancy>>,
}

/// A unit's line.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnitOccupancy {
    /// Code.
    pub code: String,
    /// People placed in its cells.
    #[serde(flatten)]
    pub measure: Measure,
    /// Cells, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cells: Option<Vec<CellOccupancy>>,
}

/// A cell's line.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CellOccupancy {
    /// Code.
    pub code: String,
    /// In use at the instant.
    pub in_use: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_of_order: Option<String>,
    /// People placed in it.
    #[serde(flatten)]
    pub measure: Measure,
}

/// Occupancy of the whole estate at an instant.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OccupancyReport {
    /// The instant.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Instant,
    /// Facilities that existed then, by code.
    pub facilities: Vec<FacilityOccupancy>,
    /// Sum over facilities.
    pub total: Measure,
    /// People between facilities at that instant (counted in no facility).
    pub in_transit: u64,
}

/// Running sums while the report walks the cells.
#[derive(Default)]
struct FacilityTally {
    capacity: Capacity,
    units: BTreeMap<i64, UnitTally>,
}

#[derive(Default)]
struct UnitTally {
    capacity: Capacity,
    placed: u64,
    cells: Vec<CellOccupancy>,
}

/// A person and their record.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonRecord {
    /// Identity.
    #[serde(flatten)]
    pub person: Person,
    /// Where they are now, if in custody.
    pub whereabouts: Option<Whereabouts>,
    /// Their movements.
    pub timeline: Vec<MovementRecord>,
    /// Medical-examination tasks opened at intake.
    pub medical_tasks: Vec<MedicalTask>,
}

impl<S: Store> Service<S> {
    /// Population and occupancy against declared, operational, beds, ICRC and CPT capacity, at any instant.
    pub fn occupancy(&self, at: Instant, detail: Detail) -> ServiceResult<OccupancyReport> {
        let mut tx = self.store().read()?;
        let facilities = tx.facilities()?;
        let cells = tx.cells_at(at)?;
        let population = tx.population_at(at, detail != Detail::Facility)?;
        let unit_codes: BTreeMap<i64, String> = if detail == Detail::Facility {
            BTreeMap::new()
        } else {
            let mut codes = BTreeMap::new();
            for unit in cells.iter().map(|c| c.unit).collect::<std::collections::BTreeSet<_>>() {
                if let Some(u) = tx.unit(unit)? {
                    codes.insert(u.id, u.code);
                }
            }
            codes
        };
        let mut per_facility: BTreeMap<i64, FacilityTally> = BTreeMap::new();
        for cell in &cells {
            let capacity = Capacity::of_cell(&cell.dimensions, cell.rated_places, cell.in_use);
            let placed = population.by_cell.get(&cell.id).copied().unwrap_or(0);
            let facility = per_facility.entry(cell.facility).or_default();
            facility.capacity += capacity;
            if detail != Detail::Facility {
                let unit = facility.units.entry(cell.unit).or_default();
                unit.capacity += capacity;
                unit.placed += placed;
                if detail == Detail::Cell {
                    unit.cells.push(CellOccupancy {
                        code: cell.code.clone(),
                        in_use: cell.in_use,
                        out_of_order: cell.out_of_order_reason.clone(),
                        measure: Measure::new(placed, capacity),
                    });
                }
            }
        }
        let mut total_capacity = Capacity::default();
        let mut total_population = 0;
        let mut lines = Vec::new();
        for facility in facilities.into_iter().filter(|f| f.effective_from <= at) {
            let FacilityTally { capacity, units } = per_facility.remove(&facility.id).unwrap_or_default();
            let held = population.by_facility.get(&facility.id).copied().unwrap_or(0);
            total_capacity += capacity;
            total_population += held;
            let units = (detail != Detail::Facility).then(|| {
                units
                    .into_iter()
                    .map(|(id, unit)| UnitOccupancy {
                        code: unit_codes.get(&id).cloned().unwrap_or_default(),
                        measure: Measure::new(unit.placed, unit.capacity),
                        cells: (detail == Detail::Cell).then_some(unit.cells),
                    })
                    .collect()
            });
            lines.push(FacilityOccupancy {
                code: facility.code,
                name: facility.name,
                measure: Measure::new(held, capacity),
                units,
            });
        }
        Ok(OccupancyReport {
            at,
            facilities: lines,
            total: Measure::new(total_population, total_capacity),
            in_transit: population.in_transit,
        })
    }

    /// Where a person was at an instant; `None` when not in custody then.
    pub fn whereabouts(&self, number: &str, at: Instant) -> ServiceResult<Option<Whereabouts>> {
        let mut tx = self.store().read()?;
        let person = person(&mut tx, number)?;
        Ok(tx.whereabouts(person.id, at)?)
    }

    /// Who was in a facility, or in one of its units or cells, at an instant.
    pub fn occupants(
        &self,
        facility: &str,
        unit: Option<&str>,
        cell: Option<&str>,
        at: Instant,
    ) -> ServiceResult<Vec<Occupant>> {
        let mut tx = self.store().read()?;
        let f = tx
            .facility_by_code(facility)?
            .ok_or_else(|| ServiceError::NotFound { what: "facility", key: facility.into() })?;
        let place = match (unit, cell) {
            // Looked up as it stands now: a cell that did not exist yet at `at` simply had nobody in it.
            (_, Some(code)) => Place::Cell(
                tx.cell_by_code(f.id, code, domain::time::from_micros(i64::MAX))?
                    .ok_or_else(|| ServiceError::NotFound { what: "cell", key: code.into() })?
                    .id,
            ),
            (Some(code), None) => Place::Unit(
                tx.unit_by_code(f.id, code)?
                    .ok_or_else(|| ServiceError::NotFound { what: "unit", key: code.into() })?
                    .id,
            ),
            (None, None) => Place::Facility(f.id),
        };
        Ok(tx.occupants(place, at)?)
    }

    /// A person's identity, current whereabouts, movement timeline and intake medical tasks.
    pub fn person_record(&self, number: &str, now: Instant) -> ServiceResult<PersonRecord> {
        let mut tx = self.store().read()?;
        let person = person(&mut tx, number)?;
        Ok(PersonRecord {
            whereabouts: tx.whereabouts(person.id, now)?,
            timeline: tx.timeline(person.id)?,
            medical_tasks: tx.medical_tasks(person.id)?,
            person,
        })
    }
}

/// A person found by name.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchHit {
    /// Person number.
    pub number: String,
    /// Name as staff read it.
    pub name: String,
    /// Date of birth, to tell namesakes apart.
    pub date_of_birth: chrono::NaiveDate,
    /// Facilities answerable for the person (where held, or last held).
    pub facilities: Vec<String>,
}

/// Where a person stands for access and concurrency checks.
#[derive(Debug, Clone)]
pub struct PersonScope {
    /// Codes of the facilities answerable for the person (see `Tx::person_facilities`).
    pub facilities: Vec<String>,
    /// Id of the latest movement: changes whenever the person's custody changes.
    pub version: i64,
}

/// The most words a name search takes (a full name has far fewer).
pub const MAX_SEARCH_WORDS: usize = 12;

impl<S: Store> Service<S> {
    /// People by name, accents, case and word order ignored, a missing second surname no obstacle
    /// (every word given must be in the name; the last may be its start). By number, after `after`.
    /// Only people `visible` lets the caller see are returned, and only those facilities are named.
    pub fn search_people(
        &self,
        query: &str,
        after: &str,
        limit: u32,
        visible: impl Fn(&str) -> bool,
    ) -> ServiceResult<Vec<SearchHit>> {
        let words = domain::person::name_tokens(query);
        if words.is_empty() {
            return Err(ServiceError::field("q", "give at least one word of the name"));
        }
        // Each word is one condition of the query: bound them well below the database's limit.
        if words.len() > MAX_SEARCH_WORDS {
            return Err(ServiceError::field(
                "q",
                format!("has {} words; a name search takes at most {MAX_SEARCH_WORDS}", words.len()),
            ));
        }
        let mut tx = self.store().read()?;
        let codes: std::collections::HashMap<i64, String> =
            tx.facilities()?.into_iter().map(|f| (f.id, f.code)).collect();
        let mut hits = Vec::new();
        let mut cursor = after.to_string();
        // Candidates come by number; those the caller may not see are skipped before the page is
        // counted, so neither the page nor its cursor gives them away.
        while hits.len() < limit as usize {
            let candidates = tx.search_people(&words, &cursor, limit)?;
            let exhausted = candidates.len() < limit as usize;
            for id in candidates {
                let Some(person) = tx.person(id)? else { continue };
                cursor = person.number.clone();
                let facilities: Vec<String> = tx
                    .person_facilities(id)?
                    .iter()
                    .filter_map(|f| codes.get(f).cloned())
                    .filter(|code| visible(code))
                    .collect();
                if !facilities.is_empty() && hits.len() < limit as usize {
                    hits.push(SearchHit {
                        name: person.identity.name.full(),
                        date_of_birth: person.identity.date_of_birth,
                        number: person.number,
                        facilities,
                    });
                }
            }
            if exhausted {
                break;
            }
        }
        Ok(hits)
    }

    /// The facilities answerable for a person and the version of their record.
    pub fn person_scope(&self, number: &str) -> ServiceResult<PersonScope> {
        let mut tx = self.store().read()?;
        let id = tx.person_id(number)?.ok_or_else(|| ServiceError::NotFound { what: "person", key: number.into() })?;
        scope_of(&mut tx, id)
    }

    /// A person's scope and record read in one snapshot, when `visible` lets the caller see the
    /// facilities answerable for them; otherwise the person is not found.
    pub fn person_record_if(
        &self,
        number: &str,
        now: Instant,
        visible: impl Fn(&str) -> bool,
    ) -> ServiceResult<(PersonScope, PersonRecord)> {
        let mut tx = self.store().read()?;
        let person = person(&mut tx, number)?;
        let facilities = facilities_of(&mut tx, person.id)?;
        if !facilities.iter().any(|f| visible(f)) {
            return Err(ServiceError::NotFound { what: "person", key: number.to_string() });
        }
        let timeline = tx.timeline(person.id)?;
        // The record's version is its latest movement, which the timeline holds.
        let version = timeline.iter().map(|m| m.id).max().unwrap_or(0);
        let record = PersonRecord {
            whereabouts: tx.whereabouts(person.id, now)?,
            timeline,
            medical_tasks: tx.medical_tasks(person.id)?,
            person,
        };
        Ok((PersonScope { facilities, version }, record))
    }

    /// The admission record (Mandela Rule 7) of a person's current or last custody episode.
    pub fn current_admission(&self, number: &str) -> ServiceResult<Option<store::BookingRecord>> {
        let mut tx = self.store().read()?;
        let person = person(&mut tx, number)?;
        match tx.custody_state(person.id)?.1 {
            Some(booking) => Ok(tx.booking_record(booking)?),
            None => Ok(None),
        }
    }
}

fn scope_of<T: Tx>(tx: &mut T, person: i64) -> ServiceResult<PersonScope> {
    Ok(PersonScope { facilities: facilities_of(tx, person)?, version: tx.latest_movement(person)? })
}

/// Codes of the facilities answerable for a person (see `Tx::person_facilities`).
fn facilities_of<T: Tx>(tx: &mut T, person: i64) -> ServiceResult<Vec<String>> {
    let mut facilities = Vec::new();
    for id in tx.person_facilities(person)? {
        if let Some(f) = tx.facility_by_id(id)? {
            facilities.push(f.code);
        }
    }
    Ok(facilities)
}

fn person<T: Tx>(tx: &mut T, number: &str) -> ServiceResult<Person> {
    tx.person_by_number(number)?.ok_or_else(|| ServiceError::NotFound { what: "person", key: number.to_string() })
}
