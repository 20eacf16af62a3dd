-- Custodia foundation schema (SQLite).
-- Audited tables are insert-only; each row names the audit event that wrote it (audit_seq),
-- and the columns are hashed in table order into that event. Their column order is part of
-- the audit format: add columns only at the end, before audit_seq never.
-- Projection tables (custody_state, stay, presence) are derived from the movements for fast
-- queries; `audit verify` rebuilds them from the movements and compares.

CREATE TABLE audit_event (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,            -- microseconds since the epoch, UTC
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL,          -- JSON
    rows_sha256 BLOB NOT NULL,      -- digest of the rows this event wrote
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
) STRICT;

CREATE TABLE facility (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    jurisdiction TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    declared_capacity INTEGER NOT NULL,
    effective_from INTEGER NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;

CREATE TABLE unit (
    id INTEGER PRIMARY KEY,
    facility_id INTEGER NOT NULL REFERENCES facility(id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    audit_seq INTEGER NOT NULL,
    UNIQUE (facility_id, code)
) STRICT;

CREATE TABLE cell (
    id INTEGER PRIMARY KEY,
    facility_id INTEGER NOT NULL REFERENCES facility(id),
    unit_id INTEGER NOT NULL REFERENCES unit(id),
    code TEXT NOT NULL,
    floor_area_m2 REAL NOT NULL,
    sanitary_annex_m2 REAL NOT NULL,
    beds INTEGER NOT NULL,
    single INTEGER NOT NULL,
    rated_places INTEGER NOT NULL,  -- the cell's share of the declared capacity
    audit_seq INTEGER NOT NULL,
    UNIQUE (facility_id, code)
) STRICT;

CREATE TABLE bed (
    id INTEGER PRIMARY KEY,
    cell_id INTEGER NOT NULL REFERENCES cell(id),
    code TEXT NOT NULL,
    audit_seq INTEGER NOT NULL,
    UNIQUE (cell_id, code)
) STRICT;

-- In use / out of order, as a history: the latest row at or before an instant applies.
CREATE TABLE cell_status (
    id INTEGER PRIMARY KEY,
    cell_id INTEGER NOT NULL REFERENCES cell(id),
    in_use INTEGER NOT NULL,
    reason TEXT,
    effective_from INTEGER NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX cell_status_by_cell ON cell_status (cell_id, effective_from);

CREATE TABLE person (
    id INTEGER PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    given_names TEXT NOT NULL,
    first_surname TEXT NOT NULL,
    second_surname TEXT,
    date_of_birth TEXT NOT NULL,
    sex TEXT NOT NULL,
    gender_identity TEXT,
    nationality TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;

CREATE TABLE identity_document (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES person(id),
    kind TEXT NOT NULL,
    number TEXT NOT NULL,
    issuing_country TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX identity_document_by_number ON identity_document (number);
CREATE INDEX identity_document_by_person ON identity_document (person_id);

-- One custody episode, from admission to final release; holds what Mandela Rule 7 asks for.
CREATE TABLE booking (
    id INTEGER PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    person_id INTEGER NOT NULL REFERENCES person(id),
    facility_id INTEGER NOT NULL REFERENCES facility(id),
    legal_basis_kind TEXT NOT NULL,
    legal_basis_authority TEXT NOT NULL,
    legal_basis_reference TEXT NOT NULL,
    legal_basis_date TEXT NOT NULL,
    arrested_at INTEGER NOT NULL,
    arrest_place TEXT NOT NULL,
    details TEXT NOT NULL,          -- JSON: injuries, complaints, property, next of kin, emergency contact, dependants
    admitted_at INTEGER NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX booking_by_person ON booking (person_id);

CREATE TABLE medical_task (
    id INTEGER PRIMARY KEY,
    booking_id INTEGER NOT NULL REFERENCES booking(id),
    reason TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;

CREATE TABLE movement (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES person(id),
    booking_id INTEGER NOT NULL REFERENCES booking(id),
    kind TEXT NOT NULL,
    facility_id INTEGER NOT NULL REFERENCES facility(id),  -- where the person is after (or, for transfer out and release, was)
    cell_id INTEGER REFERENCES cell(id),
    bed_id INTEGER REFERENCES bed(id),
    to_facility_id INTEGER REFERENCES facility(id),        -- destination of a transfer
    reason TEXT,                    -- reason code: out reason, release reason
    note TEXT,
    occurred_at INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX movement_by_person ON movement (person_id, occurred_at);

-- Projections. "Open" intervals end at the largest integer so that one range covers them.
CREATE TABLE custody_state (
    person_id INTEGER PRIMARY KEY REFERENCES person(id),
    booking_id INTEGER NOT NULL,
    status TEXT NOT NULL,           -- free | held | in_transit
    facility_id INTEGER,
    cell_id INTEGER,
    bed_id INTEGER,
    out_reason TEXT,
    transit_to INTEGER,
    since INTEGER NOT NULL
) STRICT;

CREATE TABLE stay (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL,
    facility_id INTEGER NOT NULL,
    unit_id INTEGER NOT NULL,
    cell_id INTEGER NOT NULL,
    bed_id INTEGER,
    from_at INTEGER NOT NULL,
    to_at INTEGER NOT NULL
) STRICT;
CREATE INDEX stay_by_person ON stay (person_id, from_at);
CREATE INDEX stay_by_cell ON stay (cell_id, to_at, from_at, person_id);
CREATE INDEX stay_by_facility ON stay (facility_id, to_at, from_at, cell_id, person_id, bed_id);
CREATE INDEX stay_by_bed ON stay (bed_id, to_at) WHERE bed_id IS NOT NULL;

-- Time in a facility's custody; in_transit = 1 while on the way to facility_id.
CREATE TABLE presence (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL,
    facility_id INTEGER NOT NULL,
    in_transit INTEGER NOT NULL,
    from_at INTEGER NOT NULL,
    to_at INTEGER NOT NULL
) STRICT;
CREATE INDEX presence_by_person ON presence (person_id, from_at);
CREATE INDEX presence_by_facility ON presence (facility_id, to_at, from_at, in_transit, person_id);

-- Sequences behind human numbers (SV-2026-000123).
CREATE TABLE counter (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
