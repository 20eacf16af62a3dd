//! The fixture the service integration tests share: two facilities on a fresh database (on the
//! backend `CUSTODIA_TEST_DB` names), and
//! helpers to admit, move and check that refusals write nothing.
#![allow(dead_code)]

use custodia_service as service;

use domain::custody::ReleaseReason;
use domain::time::Instant;
use service::custody::{AdmitRequest, Admitted, MovementKind, MovementRecorded, MovementRequest};
use service::layout::FacilityLayout;
use service::{Context, Service, ServiceError, ServiceResult};
use store::Database;
use testdb::TestDb;

/// Facility NORTE, opened 2025-01-01, declared capacity 8, cells in layout order:
///
/// | cell   | area | annex | beds | single | status        | rated | icrc | cpt |
/// |--------|------|-------|------|--------|---------------|-------|------|-----|
/// | A-1    | 12   | 2     | 2    | no     | in use        | 3     | 3    | 2   |
/// | A-2    | 12   | 2     | 2    | no     | in use        | 2     | 3    | 2   |
/// | A-SOLO | 6    | 1     | 1    | yes    | in use        | 1     | 1    | 0   |
/// | B-1    | 10   | 0     | 4    | no     | out of order  | 2     | -    | -   |
///
/// Declared 8: the single cell A-SOLO gets 1; the other 7 are split by floor area over A-1, A-2
/// and B-1 (12, 12, 10 of 34): 2.47, 2.47, 2.06, so 2, 2, 2 plus the one left over to the first
/// largest remainder (A-1): 3, 2, 1, 2.
/// ICRC: 12/3.4 = 3.5 -> 3; 6/5.4 -> 1 (single). CPT: (12-2)/4 = 2.5 -> 2; (6-1)/6 -> 0.
pub const NORTE: &str = r#"
[facility]
code = "NORTE"
name = "Centro Penal Norte"
jurisdiction = "sv"
time_zone = "America/El_Salvador"
declared_capacity = 8
opened = "2025-01-01T00:00:00Z"

[[units]]
code = "A"
name = "Sector A"

[[units.cells]]
code = "A-1"
floor_area_m2 = 12.0
sanitary_annex_m2 = 2.0
beds = 2

[[units.cells]]
code = "A-2"
floor_area_m2 = 12.0
sanitary_annex_m2 = 2.0
beds = 2

[[units.cells]]
code = "A-SOLO"
floor_area_m2 = 6.0
sanitary_annex_m2 = 1.0
beds = 1
single = true

[[units]]
code = "B"

[[units.cells]]
code = "B-1"
floor_area_m2 = 10.0
beds = 4
out_of_order = "flooded"
"#;

/// Facility SUR, opened 2025-06-01, declared 4 over two alike cells S-01 and S-02:
/// each 8 m², no annex, 2 beds: rated 2, ICRC 8/3.4 -> 2, CPT 8/4 -> 2.
pub const SUR: &str = r#"
[facility]
code = "SUR"
name = "Centro Penal Sur"
jurisdiction = "sv"
time_zone = "America/El_Salvador"
declared_capacity = 4
opened = "2025-06-01T00:00:00Z"

[[units]]
code = "S"

[[units.cell_series]]
prefix = "S-"
count = 2
floor_area_m2 = 8.0
beds = 2
"#;

/// The fixed time every command is recorded at.
pub const NOW: &str = "2026-03-01T12:00:00Z";

pub fn t(text: &str) -> Instant {
    text.parse().unwrap_or_else(|e| panic!("bad instant {text}: {e}"))
}

pub struct Fixture {
    pub db: TestDb,
    pub service: Service<Database>,
    pub ctx: Context,
}

/// A fresh database with the two facilities.
pub fn fixture() -> Fixture {
    let db = TestDb::new();
    let service = Service::new(db.open());
    service.init().expect("init");
    let ctx = Context::new("test", t(NOW));
    for text in [NORTE, SUR] {
        let layout = FacilityLayout::parse(text).expect("layout parses");
        service.add_facility(&ctx, &layout).expect("facility added");
    }
    Fixture { db, service, ctx }
}

/// A document number of its own for each name (document numbers are ASCII; names are not).
pub fn document_number(given: &str, first: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (given, first).hash(&mut hasher);
    format!("0{:016x}", hasher.finish())
}

pub fn admission_json(facility: &str, given: &str, first: &str, at: &str) -> serde_json::Value {
    serde_json::json!({
        "facility": facility,
        "at": at,
        "identity": {
            "given_names": given, "first_surname": first, "second_surname": "Pérez",
            "date_of_birth": "1990-02-03", "sex": "male", "nationality": "SV",
            "documents": [{"kind": "dui", "number": document_number(given, first), "issuing_country": "SV"}]
        },
        "legal_basis": {"kind": "remand_order", "issuing_authority": "Juzgado 1", "reference": "R-1", "date": "2026-01-02"},
        "arrested_at": "2026-01-01T10:00:00Z",
        "arrest_place": "San Salvador"
    })
}

pub fn request(value: serde_json::Value) -> AdmitRequest {
    serde_json::from_value(value).expect("valid admit request JSON")
}

impl Fixture {
    pub fn admit(&self, facility: &str, given: &str, first: &str, at: &str) -> Admitted {
        self.service
            .admit(&self.ctx, &request(admission_json(facility, given, first, at)))
            .unwrap_or_else(|e| panic!("admission of {given} {first} at {at}: {e}"))
    }

    pub fn try_move(&self, person: &str, kind: MovementKind, at: &str) -> ServiceResult<MovementRecorded> {
        self.service
            .record_movement(&self.ctx, &MovementRequest { person: person.into(), kind, at: Some(t(at)), note: None })
    }

    pub fn mv(&self, person: &str, kind: MovementKind, at: &str) -> MovementRecorded {
        let what = format!("{kind:?} of {person} at {at}");
        self.try_move(person, kind, at).unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// What a user could see changed: row counts, number of audit events, and the chain head.
    pub fn snapshot(&self) -> (serde_json::Value, usize, Option<String>) {
        let counts = serde_json::to_value(self.service.counts().expect("counts")).expect("counts serialise");
        let events = self.service.audit_events(0, 1_000_000).expect("audit events");
        (counts, events.len(), events.last().map(|e| e.hash.clone()))
    }

    pub fn verify(&self) -> store::AuditVerification {
        self.service.verify_audit(&mut |_, _| {}).expect("verification runs")
    }

    /// A hand edit of the database, outside Custodia; the number of rows it changed.
    pub fn tamper(&self, sql: &str) -> u64 {
        self.db.execute(sql)
    }
}

pub fn place(cell: &str, bed: Option<&str>) -> MovementKind {
    MovementKind::Place { cell: cell.into(), bed: bed.map(Into::into) }
}

pub fn move_to(cell: &str, bed: Option<&str>) -> MovementKind {
    MovementKind::Move { cell: cell.into(), bed: bed.map(Into::into) }
}

pub fn release() -> MovementKind {
    MovementKind::Release { reason: ReleaseReason::Bail, to_country: None }
}

pub fn refused_rule<T: std::fmt::Debug>(result: ServiceResult<T>) -> (&'static str, String) {
    match result {
        Err(ServiceError::Refused { rule, detail }) => (rule, detail),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Run a command that must fail, and check the database is exactly as before.
pub fn refused_without_writing<T: std::fmt::Debug>(
    f: &Fixture,
    command: impl FnOnce() -> ServiceResult<T>,
) -> ServiceError {
    let before = f.snapshot();
    let result = command();
    let after = f.snapshot();
    assert_eq!(before, after, "a refused command changed the database ({result:?})");
    result.expect_err("the command should have been refused")
}
