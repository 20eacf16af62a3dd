#![forbid(unsafe_code)]
//! Persistence behind one trait. `Store` hands out transactions; the service layer is written
//! once against [`Tx`]. [`Database`] implements both once, in SQL that SQLite (the embedded
//! default) and PostgreSQL both run, over a backend [`sql::Driver`].

mod database;
pub mod housing;
pub mod identity;
pub mod incident;
pub mod legal;
pub mod model;
pub mod sql;
pub mod staff;
mod verify;

use domain::audit::ChainBreak;
use domain::custody::CustodyState;
use domain::person::IdentityDocument;
use domain::time::Instant;

pub use database::{Database, SqlTx, AUDITED_TABLES};
pub use model::*;

/// Failures of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one this build understands.
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://USER@HOST:PORT/DATABASE")]
    UnsupportedUrl(String),
    /// No database file is at the path given (only `custodia init` creates one).
    #[error("no database at {0}: create one with `custodia init` (or give another with --db)")]
    Missing(String),
    /// The database server cannot be reached or refused the login.
    #[error("cannot connect to {url}: {reason}")]
    Unavailable {
        /// The database's URL, without any password.
        url: String,
        /// What the server or network said, and what to do.
        reason: String,
    },
    /// The database holds tables that are not Custodia's.
    #[error("{0} holds tables that are not Custodia's: give an empty database to `custodia init`")]
    Foreign(String),
    /// `copy` writes only into a database without records.
    #[error(
        "{0} already holds records: copy only into an empty database (a new one, or one `custodia init` just made)"
    )]
    NotEmpty(String),
    /// The database has not been initialised.
    #[error("the database has no Custodia schema yet: run `custodia init` first")]
    NotInitialised,
    /// The database was written by a newer Custodia.
    #[error(
        "{url} has schema version {found}, newer than this program understands ({known}): \
         run a newer Custodia on it, or give another database with --db"
    )]
    TooNew {
        /// The database's URL, without any password.
        url: String,
        /// Version found in the file.
        found: i64,
        /// Latest version this build knows.
        known: i64,
    },
    /// A unique key already exists.
    #[error("{table} ({}) already exists", columns.join(", "))]
    Duplicate {
        /// The table.
        table: String,
        /// The columns of the key.
        columns: Vec<String>,
    },
    /// The transaction collided with another one (a serialisation failure or a deadlock):
    /// running it again may succeed.
    #[error("the transaction collided with another one: {0}")]
    Retry(String),
    /// A statement expected a row and there was none.
    #[error("no row where one was expected")]
    NoRows,
    /// A command wrote audited rows without appending its audit event.
    #[error("internal: audited rows were written without an audit event")]
    UnauditedWrite,
    /// The backend failed.
    #[error("database error: {0}")]
    Backend(String),
}

/// Result of the storage layer.
pub type StoreResult<T> = Result<T, StoreError>;

/// A database that hands out transactions.
pub trait Store: Send + Sync {
    /// A transaction borrowed from the store.
    type Tx<'s>: Tx
    where
        Self: 's;

    /// Create the schema, or bring it up to date. Idempotent.
    fn migrate(&self) -> StoreResult<()>;
    /// Bring an initialised schema up to date; an empty database is refused
    /// ([`StoreError::NotInitialised`]) and left empty.
    fn upgrade(&self) -> StoreResult<()>;
    /// A read-write transaction; only one is open at a time.
    fn write(&self) -> StoreResult<Self::Tx<'_>>;
    /// A read-write transaction for loading many rows at once (demo, imports): the same writes
    /// and checks, with referential integrity verified once at commit instead of row by row.
    fn write_bulk(&self) -> StoreResult<Self::Tx<'_>>;
    /// A read-only snapshot.
    fn read(&self) -> StoreResult<Self::Tx<'_>>;
    /// Recompute the audit chain and every audited row, then replay the movements and compare
    /// them with the projections. `progress` receives (events checked, events in all).
    fn verify_audit(&self, progress: &mut dyn FnMut(u64, u64)) -> StoreResult<AuditVerification>;
}

/// What `verify_audit` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerification {
    /// Events that verified.
    pub events: u64,
    /// Audited rows that verified.
    pub rows: u64,
    /// Reads of the read register whose chain verified.
    pub reads: u64,
    /// Hash of the last event verified, hex: kept outside the database, it lets a later check
    /// prove that no event up to it was removed or rewritten.
    pub head_hash: String,
    /// The first problem, if any.
    pub broken: Option<ChainBreak>,
    /// What does not follow from the audited rows although the chain holds: projections that
    /// differ from a replay of the movements, accounts or tokens that differ from their audited
    /// versions, and breaks in the read register's chain or its anchors.
    pub projection_problems: Vec<String>,
}

/// One transaction: small typed reads and writes. Dropping it without `commit` rolls back.
pub trait Tx:
    staff::StaffTx + housing::HousingTx + incident::IncidentTx + legal::LegalTx + identity::IdentityTx
{
    /// Make every write of this transaction durable.
    fn commit(self) -> StoreResult<()>;

    /// Append the audit event covering every audited row written since the previous event.
    fn append_audit(&mut self, entry: &AuditEntry) -> StoreResult<i64>;
    /// The number of the newest audit event (0 when there is none).
    fn last_audit_seq(&mut self) -> StoreResult<i64>;
    /// Audit events in order, after `after_seq`, at most `limit`.
    fn audit_events(&mut self, after_seq: i64, limit: u32) -> StoreResult<Vec<AuditEvent>>;

    /// Next value of a named counter (starting at 1), for human numbers.
    fn next_counter(&mut self, name: &str) -> StoreResult<u64>;

    /// Write a facility.
    fn insert_facility(&mut self, facility: &NewFacility) -> StoreResult<FacilityId>;
    /// Write a unit.
    fn insert_unit(&mut self, unit: &NewUnit) -> StoreResult<UnitId>;
    /// Write a cell.
    fn insert_cell(&mut self, cell: &NewCell) -> StoreResult<CellId>;
    /// Write a bed.
    fn insert_bed(&mut self, cell: CellId, code: &str) -> StoreResult<BedId>;
    /// Record a cell's status (in use or out of order) from an instant on.
    fn insert_cell_status(&mut self, status: &NewCellStatus) -> StoreResult<()>;

    /// Every facility, by code.
    fn facilities(&mut self) -> StoreResult<Vec<Facility>>;
    /// One facility by id.
    fn facility_by_id(&mut self, id: FacilityId) -> StoreResult<Option<Facility>>;
    /// One facility by code.
    fn facility_by_code(&mut self, code: &str) -> StoreResult<Option<Facility>>;
    /// One unit by id.
    fn unit(&mut self, id: UnitId) -> StoreResult<Option<Unit>>;
    /// One unit by facility and code.
    fn unit_by_code(&mut self, facility: FacilityId, code: &str) -> StoreResult<Option<Unit>>;
    /// One cell by facility and code, with its status at `at`.
    fn cell_by_code(&mut self, facility: FacilityId, code: &str, at: Instant) -> StoreResult<Option<Cell>>;
    /// Every cell that existed at `at`, with its status then.
    fn cells_at(&mut self, at: Instant) -> StoreResult<Vec<Cell>>;
    /// A bed of a cell by code.
    fn bed_by_code(&mut self, cell: CellId, code: &str) -> StoreResult<Option<Bed>>;

    /// Write a person and their identity documents.
    fn insert_person(&mut self, person: &NewPerson) -> StoreResult<PersonId>;
    /// Add an identity document to a person on record.
    fn insert_identity_document(&mut self, person: PersonId, document: &IdentityDocument) -> StoreResult<()>;
    /// Write a booking (custody episode) with its admission record.
    fn insert_booking(&mut self, booking: &NewBooking) -> StoreResult<BookingId>;
    /// Open a medical-examination task.
    fn insert_medical_task(&mut self, booking: BookingId, reason: &str, opened_at: Instant) -> StoreResult<()>;
    /// The Mandela Rule 7 record of a custody episode: its number, facility code, admission and when.
    fn booking_record(&mut self, booking: BookingId) -> StoreResult<Option<BookingRecord>>;
    /// A person's id by number.
    fn person_id(&mut self, number: &str) -> StoreResult<Option<PersonId>>;
    /// A person by number.
    fn person_by_number(&mut self, number: &str) -> StoreResult<Option<Person>>;
    /// A person by id.
    fn person(&mut self, id: PersonId) -> StoreResult<Option<Person>>;

    /// The person's current custody state and booking.
    fn custody_state(&mut self, person: PersonId) -> StoreResult<(CustodyState, Option<BookingId>)>;
    /// Who holds the bed from `at` on, if anyone (a stay overlapping [at, ∞)).
    fn bed_holder_from(&mut self, bed: BedId, at: Instant) -> StoreResult<Option<PersonId>>;
    /// The reason of the first time the cell is put out of order after `at`, if it is.
    fn cell_out_of_order_after(&mut self, cell: CellId, at: Instant) -> StoreResult<Option<String>>;
    /// Who is placed in the cell at any time from `at` on.
    fn cell_holders_from(&mut self, cell: CellId, at: Instant) -> StoreResult<Vec<PersonId>>;
    /// Write a movement and update the projections to the state after it.
    fn record_movement(&mut self, movement: &NewMovement, after: &CustodyState) -> StoreResult<MovementId>;

    /// Population per facility at an instant, and per cell when `by_cell`.
    fn population_at(&mut self, at: Instant, by_cell: bool) -> StoreResult<Population>;
    /// Where the person was at an instant.
    fn whereabouts(&mut self, person: PersonId, at: Instant) -> StoreResult<Option<Whereabouts>>;
    /// Who was in a facility, unit or cell at an instant.
    fn occupants(&mut self, place: Place, at: Instant) -> StoreResult<Vec<Occupant>>;
    /// People whose name holds every word (the last may be the start of a word), by number,
    /// numbers after `after`, at most `limit`. Words as `domain::person::name_tokens` makes them.
    fn search_people(&mut self, words: &[String], after: &str, limit: u32) -> StoreResult<Vec<PersonId>>;
    /// Facilities answerable for a person: where they are held, both ends while in transit, or
    /// the last facility that held them once released.
    fn person_facilities(&mut self, person: PersonId) -> StoreResult<Vec<FacilityId>>;
    /// Id of the person's latest recorded movement (their record's version), 0 if none.
    fn latest_movement(&mut self, person: PersonId) -> StoreResult<MovementId>;
    /// Every movement of a person, in the order they happened.
    fn timeline(&mut self, person: PersonId) -> StoreResult<Vec<MovementRecord>>;
    /// Medical-examination tasks of a person's bookings.
    fn medical_tasks(&mut self, person: PersonId) -> StoreResult<Vec<MedicalTask>>;
    /// Share (0 to 1) of the people in custody now whose booking's legal basis is a remand order.
    fn untried_share(&mut self) -> StoreResult<f64>;
    /// Count of rows in each main table, for summaries.
    fn counts(&mut self) -> StoreResult<Counts>;
}
