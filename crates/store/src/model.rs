//! Records the store reads and writes.

use serde::Serialize;

use domain::custody::Movement;
use domain::estate::CellDimensions;
use domain::person::{Admission, Identity};
use domain::time::Instant;

pub use domain::custody::{BedId, CellId, FacilityId};
/// Stored id of a unit.
pub type UnitId = i64;
/// Stored id of a person.
pub type PersonId = i64;
/// Stored id of a booking.
pub type BookingId = i64;
/// Stored id of a movement.
pub type MovementId = i64;

/// An audit event to append.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    /// When it was recorded.
    pub at: Instant,
    /// Who did it.
    pub actor: &'a str,
    /// What was done, for example `person.admit`.
    pub action: &'a str,
    /// What it was done to.
    pub subject: &'a str,
    /// The command, JSON.
    pub payload: &'a str,
}

/// A stored audit event.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    /// Position in the chain.
    pub seq: i64,
    /// When it was recorded.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Instant,
    /// Who did it.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// The command, JSON.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: serde_json::Value,
    /// Digest of the rows the event wrote, hex.
    pub rows_sha256: String,
    /// Hash of the previous event, hex.
    pub prev_hash: String,
    /// This event's hash, hex.
    pub hash: String,
}

/// A facility to write.
#[derive(Debug, Clone)]
pub struct NewFacility {
    /// Short code, unique.
    pub code: String,
    /// Name.
    pub name: String,
    /// Rule set that applies.
    pub jurisdiction: String,
    /// IANA time zone.
    pub time_zone: String,
    /// Declared capacity.
    pub declared_capacity: u64,
    /// From when the facility exists in the records.
    pub effective_from: Instant,
}

/// A stored facility.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Facility {
    /// Id.
    pub id: FacilityId,
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Rule set.
    pub jurisdiction: String,
    /// IANA time zone.
    pub time_zone: String,
    /// Declared capacity.
    pub declared_capacity: u64,
    /// From when it exists.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub effective_from: Instant,
}

/// A unit to write.
#[derive(Debug, Clone)]
pub struct NewUnit {
    /// Facility.
    pub facility: FacilityId,
    /// Code, unique in the facility.
    pub code: String,
    /// Name.
    pub name: String,
}

/// A stored unit.
#[derive(Debug, Clone, Serialize)]
pub struct Unit {
    /// Id.
    pub id: UnitId,
    /// Facility.
    pub facility: FacilityId,
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
}

/// A cell to write.
#[derive(Debug, Clone)]
pub struct NewCell {
    /// Facility.
    pub facility: FacilityId,
    /// Unit.
    pub unit: UnitId,
    /// Code, unique in the facility.
    pub code: String,
    /// Physical facts.
    pub dimensions: CellDimensions,
    /// Share of the declared capacity.
    pub rated_places: u32,
}

/// A stored cell with its status at the instant asked about.
#[derive(Debug, Clone)]
pub struct Cell {
    /// Id.
    pub id: CellId,
    /// Facility.
    pub facility: FacilityId,
    /// Unit.
    pub unit: UnitId,
    /// Code.
    pub code: String,
    /// Physical facts.
    pub dimensions: CellDimensions,
    /// Share of the declared capacity.
    pub rated_places: u32,
    /// In use at that instant.
    pub in_use: bool,
    /// Why it is out of order, when it is.
    pub out_of_order_reason: Option<String>,
}

/// A cell status change to write.
#[derive(Debug, Clone)]
pub struct NewCellStatus {
    /// The cell.
    pub cell: CellId,
    /// In use (true) or out of order (false).
    pub in_use: bool,
    /// Why it is out of order.
    pub reason: Option<String>,
    /// From when.
    pub effective_from: Instant,
}

/// A stored bed.
#[derive(Debug, Clone, Serialize)]
pub struct Bed {
    /// Id.
    pub id: BedId,
    /// Cell.
    pub cell: CellId,
    /// Code, unique in the cell.
    pub code: String,
}

/// A person to write.
#[derive(Debug, Clone)]
pub struct NewPerson<'a> {
    /// System-wide number.
    pub number: &'a str,
    /// Identity and documents.
    pub identity: &'a Identity,
}

/// A stored person.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Person {
    /// Id.
    #[serde(skip)]
    pub id: PersonId,
    /// System-wide number.
    pub number: String,
    /// Identity and documents.
    #[serde(flatten)]
    pub identity: Identity,
}

/// A booking to write.
#[derive(Debug, Clone)]
pub struct NewBooking<'a> {
    /// Booking number.
    pub number: &'a str,
    /// Person.
    pub person: PersonId,
    /// Admitting facility.
    pub facility: FacilityId,
    /// The admission record.
    pub admission: &'a Admission,
    /// When the person was admitted.
    pub admitted_at: Instant,
}

/// A movement to write.
#[derive(Debug, Clone)]
pub struct NewMovement<'a> {
    /// Person.
    pub person: PersonId,
    /// Booking.
    pub booking: BookingId,
    /// What happened.
    pub movement: Movement,
    /// Facility the movement happens at.
    pub facility: FacilityId,
    /// Unit of the cell, for placements and moves.
    pub unit: Option<UnitId>,
    /// Free-text reason or note.
    pub note: Option<&'a str>,
    /// When it happened.
    pub occurred_at: Instant,
    /// When it was recorded.
    pub recorded_at: Instant,
    /// Who recorded it.
    pub actor: &'a str,
    /// For placements and moves: the separation facts to copy onto the new stay.
    pub stay_class: Option<crate::housing::StayClass>,
}

/// A stored movement.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MovementRecord {
    /// Id.
    pub id: MovementId,
    /// Booking number.
    pub booking: String,
    /// Kind, for example `placement`.
    pub kind: String,
    /// Facility code.
    pub facility: String,
    /// Cell code, for placements and moves.
    pub cell: Option<String>,
    /// Bed code.
    pub bed: Option<String>,
    /// Reason code or note.
    pub reason: Option<String>,
    /// When it happened.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub occurred_at: Instant,
    /// When it was recorded.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub recorded_at: Instant,
    /// Who recorded it.
    pub actor: String,
}

/// An open or closed medical-examination task.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MedicalTask {
    /// Booking number.
    pub booking: String,
    /// Why.
    pub reason: String,
    /// When it was opened.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub opened_at: Instant,
}

/// Population at an instant.
#[derive(Debug, Clone, Default)]
pub struct Population {
    /// People held per facility (placed, unplaced or temporarily out), by facility id.
    pub by_facility: std::collections::HashMap<FacilityId, u64>,
    /// People placed per cell (including those temporarily out), by cell id.
    pub by_cell: std::collections::HashMap<CellId, u64>,
    /// People in transit between facilities.
    pub in_transit: u64,
}

/// A place to ask about.
#[derive(Debug, Clone, Copy)]
pub enum Place {
    /// A whole facility.
    Facility(FacilityId),
    /// A unit.
    Unit(UnitId),
    /// A cell.
    Cell(CellId),
}

/// Where a person was.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Whereabouts {
    /// Facility code, or `null` when in transit.
    pub facility: Option<String>,
    /// Unit code, when placed.
    pub unit: Option<String>,
    /// Cell code, when placed.
    pub cell: Option<String>,
    /// Bed code, when one was assigned.
    pub bed: Option<String>,
    /// Since when in this facility.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub in_facility_since: Option<Instant>,
    /// Since when in this cell.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub in_cell_since: Option<Instant>,
    /// Why the person was out of the facility then (court, hospital…); their cell stays theirs.
    pub out: Option<String>,
}

/// A person found in a place.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Occupant {
    /// Person number.
    pub number: String,
    /// Name as staff read it.
    pub name: String,
    /// Cell code, when placed.
    pub cell: Option<String>,
    /// Bed code.
    pub bed: Option<String>,
    /// Since when there.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub since: Instant,
}

/// Row counts.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Counts {
    /// Facilities.
    pub facilities: u64,
    /// Units.
    pub units: u64,
    /// Cells.
    pub cells: u64,
    /// Beds.
    pub beds: u64,
    /// People ever recorded.
    pub people: u64,
    /// Custody episodes.
    pub bookings: u64,
    /// Movements.
    pub movements: u64,
    /// People in custody now (held or in transit).
    pub in_custody: u64,
    /// Audit events.
    pub audit_events: u64,
}

/// A custody episode's admission record, as written at intake.
#[derive(Debug, Clone, Serialize)]
pub struct BookingRecord {
    /// Booking number.
    pub number: String,
    /// Admitting facility code.
    pub facility: String,
    /// When the person was admitted.
    pub admitted_at: Instant,
    /// The Rule 7 record (the identity is the person's, not repeated here).
    pub legal_basis: domain::person::LegalBasis,
    /// When and where they were arrested.
    pub arrested_at: Instant,
    /// Where.
    pub arrest_place: String,
    /// Injuries, complaints, property, next of kin, emergency contact and dependants, as recorded.
    pub details: serde_json::Value,
}
