-- Legal safeguards: rule-set versions, charges, court records (hearings, reasons told, counsel,
-- production orders, pretrial extensions), sentences, legal holds and their two-person overrides.
-- All audited and insert-only: the latest row applies, an end or an approval is a row of its own.

-- A jurisdiction's rule set as loaded (TOML text); the latest version of a code applies.
CREATE TABLE rule_set_version (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL,
    text TEXT NOT NULL,
    loaded_at INTEGER NOT NULL,
    loaded_by TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX rule_set_version_by_code ON rule_set_version (code, id);

CREATE TABLE charge (
    id INTEGER PRIMARY KEY,
    booking_id INTEGER NOT NULL REFERENCES booking(id),
    offence TEXT NOT NULL,
    seriousness TEXT NOT NULL,          -- less_serious | serious
    max_penalty_years REAL,
    court_case TEXT,
    recorded_at INTEGER NOT NULL,
    recorded_by TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX charge_by_booking ON charge (booking_id);

-- Hearings, the day the reasons for detention were given (Mandela Rule 119), counsel, production
-- orders and pretrial extensions, per custody episode.
CREATE TABLE court_record (
    id INTEGER PRIMARY KEY,
    booking_id INTEGER NOT NULL REFERENCES booking(id),
    kind TEXT NOT NULL,                 -- hearing | reasons_given | counsel | production_order | extension
    on_date TEXT NOT NULL,
    court TEXT,
    reference TEXT,
    months INTEGER,                     -- extensions only
    note TEXT,
    recorded_at INTEGER NOT NULL,
    recorded_by TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX court_record_by_booking ON court_record (booking_id, kind);

-- The sentences of a custody episode as given to the calculator (JSON) and the release date it
-- gave; the latest row per booking applies.
CREATE TABLE sentence_record (
    id INTEGER PRIMARY KEY,
    booking_id INTEGER NOT NULL REFERENCES booking(id),
    input TEXT NOT NULL,
    release_date TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    recorded_by TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX sentence_record_by_booking ON sentence_record (booking_id, id);

CREATE TABLE legal_hold (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES person(id),
    kind TEXT NOT NULL,                 -- do_not_transfer | do_not_remove | do_not_release | produce_at_court
    country TEXT,                       -- do_not_remove
    on_date TEXT,                       -- produce_at_court
    authority TEXT NOT NULL,            -- the court or authority that ordered it
    order_reference TEXT NOT NULL,
    effective_from INTEGER NOT NULL,
    expires_at INTEGER,
    recorded_by TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX legal_hold_by_person ON legal_hold (person_id);

CREATE TABLE legal_hold_end (
    id INTEGER PRIMARY KEY,
    hold_id INTEGER NOT NULL UNIQUE REFERENCES legal_hold(id),
    ended_at INTEGER NOT NULL,
    reason TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;

-- A request to make one movement despite a hold, then its approval by a second person; the
-- movement that used it is named so that it serves once.
CREATE TABLE hold_override (
    id INTEGER PRIMARY KEY,
    hold_id INTEGER NOT NULL REFERENCES legal_hold(id),
    movement TEXT NOT NULL,             -- transfer | release | removal
    reason TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX hold_override_by_hold ON hold_override (hold_id);

CREATE TABLE hold_override_approval (
    id INTEGER PRIMARY KEY,
    override_id INTEGER NOT NULL UNIQUE REFERENCES hold_override(id),
    approved_by TEXT NOT NULL,
    approved_at INTEGER NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;

CREATE TABLE hold_override_use (
    id INTEGER PRIMARY KEY,
    override_id INTEGER NOT NULL UNIQUE REFERENCES hold_override(id),
    movement_id INTEGER NOT NULL REFERENCES movement(id),
    audit_seq INTEGER NOT NULL
) STRICT;

-- Family notification of an admission or a transfer (Mandela Rule 68): the task is the movement
-- itself; this row says it was done (or why not).
CREATE TABLE family_notice_done (
    id INTEGER PRIMARY KEY,
    movement_id INTEGER NOT NULL UNIQUE REFERENCES movement(id),
    notified TEXT NOT NULL,
    method TEXT NOT NULL,
    notified_at INTEGER NOT NULL,
    recorded_by TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;

-- Visits by legal counsel (Mandela Rules 61, 119-120): confidential, never monitored, and the
-- register says so; it records that a visit took place, not what was said.
CREATE TABLE legal_visit (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES person(id),
    counsel TEXT NOT NULL,
    capacity TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    minutes INTEGER NOT NULL,
    recorded_by TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX legal_visit_by_person ON legal_visit (person_id, started_at);

-- Admissions and transfers are the family-notification tasks: listed per facility by date.
CREATE INDEX movement_family_notices ON movement (facility_id, occurred_at)
    WHERE kind IN ('admission', 'transfer_out');
