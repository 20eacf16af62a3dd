-- PostgreSQL form of the SQLite migration of the same number (0008_legal.sql).

-- Legal safeguards: rule-set versions, charges, court records (hearings, reasons told, counsel,
-- production orders, pretrial extensions), sentences, legal holds and their two-person overrides.
-- All audited and insert-only: the latest row applies, an end or an approval is a row of its own.

-- A jurisdiction's rule set as loaded (TOML text); the latest version of a code applies.
CREATE TABLE rule_set_version (
    id BIGINT PRIMARY KEY,
    code TEXT COLLATE "C" NOT NULL,
    text TEXT COLLATE "C" NOT NULL,
    loaded_at BIGINT NOT NULL,
    loaded_by TEXT COLLATE "C" NOT NULL,
    audit_seq BIGINT NOT NULL
);
CREATE INDEX rule_set_version_by_code ON rule_set_version (code, id);

CREATE TABLE charge (
    id BIGINT PRIMARY KEY,
    booking_id BIGINT NOT NULL REFERENCES booking(id) DEFERRABLE INITIALLY IMMEDIATE,
    offence TEXT COLLATE "C" NOT NULL,
    seriousness TEXT COLLATE "C" NOT NULL,      -- less_serious | serious
    max_penalty_years DOUBLE PRECISION,
    court_case TEXT COLLATE "C",
    recorded_at BIGINT NOT NULL,
    recorded_by TEXT COLLATE "C" NOT NULL,
    audit_seq BIGINT NOT NULL
);
CREATE INDEX charge_by_booking ON charge (booking_id);

-- Hearings, the day the reasons for detention were given (Mandela Rule 119), counsel, production
-- orders and pretrial extensions, per custody episode.
CREATE TABLE court_record (
    id BIGINT PRIMARY KEY,
    booking_id BIGINT NOT NULL REFERENCES booking(id) DEFERRABLE INITIALLY IMMEDIATE,
    kind TEXT COLLATE "C" NOT NULL,             -- hearing | reasons_given | counsel | production_order | extension
    on_date TEXT COLLATE "C" NOT NULL,
    court TEXT COLLATE "C",
    reference TEXT COLLATE "C",
    months BIGINT,                      -- extensions only
    note TEXT COLLATE "C",
    recorded_at BIGINT NOT NULL,
    recorded_by TEXT COLLATE "C" NOT NULL,
    audit_seq BIGINT NOT NULL
);
CREATE INDEX court_record_by_booking ON court_record (booking_id, kind);

-- The sentences of a custody episode as given to the calculator (JSON) and the release date it
-- gave; the latest row per booking applies.
CREATE TABLE sentence_record (
    id BIGINT PRIMARY KEY,
    booking_id BIGINT NOT NULL REFERENCES booking(id) DEFERRABLE INITIALLY IMMEDIATE,
    input TEXT COLLATE "C" NOT NULL,
    release_date TEXT COLLATE "C" NOT NULL,
    recorded_at BIGINT NOT NULL,
    recorded_by TEXT COLLATE "C" NOT NULL,
    audit_seq BIGINT NOT NULL
);
CREATE INDEX sentence_record_by_booking ON sentence_record (booking_id, id);

CREATE TABLE legal_hold (
    id BIGINT PRIMARY KEY,
    person_id BIGINT NOT NULL REFERENCES person(id) DEFERRABLE INITIALLY IMMEDIATE,
    kind TEXT COLLATE "C" NOT NULL,             -- do_not_transfer | do_not_remove | do_not_release | produce_at_court
    country TEXT COLLATE "C",                   -- do_not_remove
    on_date TEXT COLLATE "C",                   -- produce_at_court
    authority TEXT COLLATE "C" NOT NULL,        -- the court or authority that ordered it
    order_reference TEXT COLLATE "C" NOT NULL,
    effective_from BIGINT NOT NULL,
    expires_at BIGINT,
    recorded_by TEXT COLLATE "C" NOT NULL,
    audit_seq BIGINT NOT NULL
);
CREATE INDEX legal_hold_by_person ON legal_hold (person_id);

CREATE TABLE legal_hold_end (
    id BIGINT PRIMARY KEY,
    hold_id BIGINT NOT NULL UNIQUE REFERENCES legal_hold(id) DEFERRABLE INITIALLY IMMEDIATE,
    ended_at BIGINT NOT NULL,
    reason TEXT COLLATE "C" NOT NULL,
    recorded_by TEXT COLLATE "C" NOT NULL,
    audit_seq BIGINT NOT NULL
);

-- A request to make one movement despite a hold, then its approval by a second person; the
-- movement that used it is named so that it serves once.
CREATE TABLE hold_override (
    id BIGINT PRIMARY KEY,
    hold_id BIGINT NOT NULL REFERENCES legal_hold(id) DEFERRABLE INITIALLY IMMEDIATE,
    movement TEXT COLLATE "C" NOT NULL,         -- transfer | release | removal
    reason TEXT COLLATE "C" NOT NULL,
    requested_by TEXT COLLATE "C" NOT NULL,
    requested_at BIGINT NOT NULL,
    audit_seq BIGINT NOT NULL
);
CREATE INDEX hold_override_by_hold ON hold_override (hold_id);

CREATE TABLE hold_override_approval (
    id BIGINT PRIMARY KEY,
    override_id BIGINT NOT NULL UNIQUE REFERENCES hold_override(id) DEFERRABLE INITIALLY IMMEDIATE,
    approved_by TEXT COLLATE "C" NOT NULL,
    approved_at BIGINT NOT NULL,
    audit_seq BIGINT NOT NULL
);

CREATE TABLE hold_override_use (
    id BIGINT PRIMARY KEY,
    override_id BIGINT NOT NULL UNIQUE REFERENCES hold_override(id) DEFERRABLE INITIALLY IMMEDIATE,
    movement_id BIGINT NOT NULL REFERENCES movement(id) DEFERRABLE INITIALLY IMMEDIATE,
    audit_seq BIGINT NOT NULL
);

-- Family notification of an admission or a transfer (Mandela Rule 68): the task is the movement
-- itself; this row says it was done (or why not).
CREATE TABLE family_notice_done (
    id BIGINT PRIMARY KEY,
    movement_id BIGINT NOT NULL UNIQUE REFERENCES movement(id) DEFERRABLE INITIALLY IMMEDIATE,
    notified TEXT COLLATE "C" NOT NULL,
    method TEXT COLLATE "C" NOT NULL,
    notified_at BIGINT NOT NULL,
    recorded_by TEXT COLLATE "C" NOT NULL,
    audit_seq BIGINT NOT NULL
);

-- Visits by legal counsel (Mandela Rules 61, 119-120): confidential, never monitored, and the
-- register says so; it records that a visit took place, not what was said.
CREATE TABLE legal_visit (
    id BIGINT PRIMARY KEY,
    person_id BIGINT NOT NULL REFERENCES person(id) DEFERRABLE INITIALLY IMMEDIATE,
    counsel TEXT COLLATE "C" NOT NULL,
    capacity TEXT COLLATE "C" NOT NULL,
    started_at BIGINT NOT NULL,
    minutes BIGINT NOT NULL,
    recorded_by TEXT COLLATE "C" NOT NULL,
    audit_seq BIGINT NOT NULL
);
CREATE INDEX legal_visit_by_person ON legal_visit (person_id, started_at);

-- Admissions and transfers are the family-notification tasks: listed per facility by date.
CREATE INDEX movement_family_notices ON movement (facility_id, occurred_at)
    WHERE kind IN ('admission', 'transfer_out');
