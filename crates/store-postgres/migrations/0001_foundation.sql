-- PostgreSQL form of the SQLite migration of the same number (0001_foundation.sql): the same
-- tables, columns in the same order, and indexes of the same names. INTEGER is BIGINT, REAL is
-- DOUBLE PRECISION, BLOB is BYTEA, TEXT sorts by bytes (COLLATE "C") as in SQLite; foreign keys
-- are deferrable so that bulk loads can check them at commit.

-- Custodia foundation schema (SQLite).
-- Audited tables are insert-only; each row names the audit event that wrote it (audit_seq),
-- and the columns are hashed in table order into that event. Their column order is part of
-- the audit format: add columns only at the end, before audit_seq never.
-- Projection tables (custody_state, stay, presence) are derived from the movements for fast
-- queries; `audit verify` rebuilds them from the movements and compares.

CREATE TABLE audit_event (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,             -- microseconds since the epoch, UTC
    actor TEXT COLLATE "C" NOT NULL,
    action TEXT COLLATE "C" NOT NULL,
    subject TEXT COLLATE "C" NOT NULL,
    payload TEXT COLLATE "C" NOT NULL,  -- JSON
    rows_sha256 BYTEA NOT NULL,     -- digest of the rows this event wrote
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL
);

CREATE TABLE facility (
    id BIGINT PRIMARY KEY,
    code TEXT COLLATE "C" NOT NULL UNIQUE,
    name TEXT COLLATE "C" NOT NULL,
    jurisdiction TEXT COLLATE "C" NOT NULL,
    time_zone TEXT COLLATE "C" NOT NULL,
    declared_capacity BIGINT NOT NULL,
    effective_from BIGINT NOT NULL,
    audit_seq BIGINT NOT NULL
);

CREATE TABLE unit (
    id BIGINT PRIMARY KEY,
    facility_id BIGINT NOT NULL REFERENCES facility(id) DEFERRABLE INITIALLY IMMEDIATE,
    code TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    audit_seq BIGINT NOT NULL,
    UNIQUE (facility_id, code)
);

CREATE TABLE cell (
    id BIGINT PRIMARY KEY,
    facility_id BIGINT NOT NULL REFERENCES facility(id) DEFERRABLE INITIALLY IMMEDIATE,
    unit_id BIGINT NOT NULL REFERENCES unit(id) DEFERRABLE INITIALLY IMMEDIATE,
    code TEXT COLLATE "C" NOT NULL,
    floor_area_m2 DOUBLE PRECISION NOT NULL,
    sanitary_annex_m2 DOUBLE PRECISION NOT NULL,
    beds BIGINT NOT NULL,
    single BIGINT NOT NULL,
    rated_places BIGINT NOT NULL,   -- the cell's share of the declared capacity
    audit_seq BIGINT NOT NULL,
    UNIQUE (facility_id, code)
);

CREATE TABLE bed (
    id BIGINT PRIMARY KEY,
    cell_id BIGINT NOT NULL REFERENCES cell(id) DEFERRABLE INITIALLY IMMEDIATE,
    code TEXT COLLATE "C" NOT NULL,
    audit_seq BIGINT NOT NULL,
    UNIQUE (cell_id, code)
);

-- In use / out of order, as a history: the latest row at or before an instant applies.
CREATE TABLE cell_status (
    id BIGINT PRIMARY KEY,
    cell_id BIGINT NOT NULL REFERENCES cell(id) DEFERRABLE INITIALLY IMMEDIATE,
    in_use BIGINT NOT NULL,
    reason TEXT COLLATE "C",
    effective_from BIGINT NOT NULL,
    audit_seq BIGINT NOT NULL
);
CREATE INDEX cell_status_by_cell ON cell_status (cell_id, effective_from);

CREATE TABLE person (
    id BIGINT PRIMARY KEY,
    number TEXT COLLATE "C" NOT NULL UNIQUE,
    given_names TEXT COLLATE "C" NOT NULL,
    first_surname TEXT COLLATE "C" NOT NULL,
    second_surname TEXT COLLATE "C",
    date_of_birth TEXT COLLATE "C" NOT NULL,
    sex TEXT COLLATE "C" NOT NULL,
    gender_identity TEXT COLLATE "C",
    nationality TEXT COLLATE "C" NOT NULL,
    audit_seq BIGINT NOT NULL
);

CREATE TABLE identity_document (
    id BIGINT PRIMARY KEY,
    person_id BIGINT NOT NULL REFERENCES person(id) DEFERRABLE INITIALLY IMMEDIATE,
    kind TEXT COLLATE "C" NOT NULL,
    number TEXT COLLATE "C" NOT NULL,
    issuing_country TEXT COLLATE "C" NOT NULL,
    audit_seq BIGINT NOT NULL
);
CREATE INDEX identity_document_by_number ON identity_document (number);
CREATE INDEX identity_document_by_person ON identity_document (person_id);

-- One custody episode, from admission to final release; holds what Mandela Rule 7 asks for.
CREATE TABLE booking (
    id BIGINT PRIMARY KEY,
    number TEXT COLLATE "C" NOT NULL UNIQUE,
    person_id BIGINT NOT NULL REFERENCES person(id) DEFERRABLE INITIALLY IMMEDIATE,
    facility_id BIGINT NOT NULL REFERENCES facility(id) DEFERRABLE INITIALLY IMMEDIATE,
    legal_basis_kind TEXT COLLATE "C" NOT NULL,
    legal_basis_authority TEXT COLLATE "C" NOT NULL,
    legal_basis_reference TEXT COLLATE "C" NOT NULL,
    legal_basis_date TEXT COLLATE "C" NOT NULL,
    arrested_at BIGINT NOT NULL,
    arrest_place TEXT COLLATE "C" NOT NULL,
    details TEXT COLLATE "C" NOT NULL,  -- JSON: injuries, complaints, property, next of kin, emergency contact, dependants
    admitted_at BIGINT NOT NULL,
    audit_seq BIGINT NOT NULL
);
CREATE INDEX booking_by_person ON booking (person_id);

CREATE TABLE medical_task (
    id BIGINT PRIMARY KEY,
    booking_id BIGINT NOT NULL REFERENCES booking(id) DEFERRABLE INITIALLY IMMEDIATE,
    reason TEXT COLLATE "C" NOT NULL,
    opened_at BIGINT NOT NULL,
    audit_seq BIGINT NOT NULL
);

CREATE TABLE movement (
    id BIGINT PRIMARY KEY,
    person_id BIGINT NOT NULL REFERENCES person(id) DEFERRABLE INITIALLY IMMEDIATE,
    booking_id BIGINT NOT NULL REFERENCES booking(id) DEFERRABLE INITIALLY IMMEDIATE,
    kind TEXT COLLATE "C" NOT NULL,
    facility_id BIGINT NOT NULL REFERENCES facility(id) DEFERRABLE INITIALLY IMMEDIATE,  -- where the person is after (or, for transfer out and release, was)
    cell_id BIGINT REFERENCES cell(id) DEFERRABLE INITIALLY IMMEDIATE,
    bed_id BIGINT REFERENCES bed(id) DEFERRABLE INITIALLY IMMEDIATE,
    to_facility_id BIGINT REFERENCES facility(id) DEFERRABLE INITIALLY IMMEDIATE,        -- destination of a transfer
    reason TEXT COLLATE "C",        -- reason code: out reason, release reason
    note TEXT COLLATE "C",
    occurred_at BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    actor TEXT COLLATE "C" NOT NULL,
    audit_seq BIGINT NOT NULL
);
CREATE INDEX movement_by_person ON movement (person_id, occurred_at);

-- Projections. "Open" intervals end at the largest integer so that one range covers them.
-- (custody_state is keyed by the person, always given; stay and presence rows get their ids
-- from the database, as SQLite's rowid gives them.)
CREATE TABLE custody_state (
    person_id BIGINT PRIMARY KEY REFERENCES person(id) DEFERRABLE INITIALLY IMMEDIATE,
    booking_id BIGINT NOT NULL,
    status TEXT COLLATE "C" NOT NULL,   -- free | held | in_transit
    facility_id BIGINT,
    cell_id BIGINT,
    bed_id BIGINT,
    out_reason TEXT COLLATE "C",
    transit_to BIGINT,
    since BIGINT NOT NULL
);

CREATE TABLE stay (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    person_id BIGINT NOT NULL,
    facility_id BIGINT NOT NULL,
    unit_id BIGINT NOT NULL,
    cell_id BIGINT NOT NULL,
    bed_id BIGINT,
    from_at BIGINT NOT NULL,
    to_at BIGINT NOT NULL
);
CREATE INDEX stay_by_person ON stay (person_id, from_at);
CREATE INDEX stay_by_cell ON stay (cell_id, to_at, from_at, person_id);
CREATE INDEX stay_by_facility ON stay (facility_id, to_at, from_at, cell_id, person_id, bed_id);
CREATE INDEX stay_by_bed ON stay (bed_id, to_at) WHERE bed_id IS NOT NULL;

-- Time in a facility's custody; in_transit = 1 while on the way to facility_id.
CREATE TABLE presence (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    person_id BIGINT NOT NULL,
    facility_id BIGINT NOT NULL,
    in_transit BIGINT NOT NULL,
    from_at BIGINT NOT NULL,
    to_at BIGINT NOT NULL
);
CREATE INDEX presence_by_person ON presence (person_id, from_at);
CREATE INDEX presence_by_facility ON presence (facility_id, to_at, from_at, in_transit, person_id);

-- Sequences behind human numbers (SV-2026-000123).
CREATE TABLE counter (
    name TEXT COLLATE "C" PRIMARY KEY,
    value BIGINT NOT NULL
);
