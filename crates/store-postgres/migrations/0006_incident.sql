-- PostgreSQL form of the SQLite migration of the same number (0006_incident.sql).

-- Incidents, the people and staff involved, injuries, and the obligations they open.
-- Every table here is audited and insert-only: `id` first, `audit_seq` last, columns hashed in
-- table order. Closing an obligation is a row in `obligation_closure`, never an update; a
-- notification preference is a new row, the latest for a person wins.

CREATE TABLE incident (
    id BIGINT PRIMARY KEY,
    number TEXT COLLATE "C" NOT NULL UNIQUE,     -- INC-CECOT-2026-000012
    facility_id BIGINT NOT NULL REFERENCES facility(id) DEFERRABLE INITIALLY IMMEDIATE,
    kind TEXT COLLATE "C" NOT NULL,
    occurred_at BIGINT NOT NULL,         -- microseconds since the epoch, UTC
    recorded_at BIGINT NOT NULL,
    cell_id BIGINT REFERENCES cell(id) DEFERRABLE INITIALLY IMMEDIATE,
    location TEXT COLLATE "C",           -- free text: "yard 2", "kitchen"
    staff TEXT COLLATE "C" NOT NULL,     -- JSON array of the names of staff involved
    description TEXT COLLATE "C" NOT NULL,
    actor TEXT COLLATE "C" NOT NULL,
    audit_seq BIGINT NOT NULL
);
CREATE INDEX incident_by_facility ON incident (facility_id, id);
CREATE INDEX incident_by_time ON incident (occurred_at);

CREATE TABLE incident_person (
    id BIGINT PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incident(id) DEFERRABLE INITIALLY IMMEDIATE,
    person_id BIGINT NOT NULL REFERENCES person(id) DEFERRABLE INITIALLY IMMEDIATE,
    role TEXT COLLATE "C" NOT NULL,
    injured BIGINT NOT NULL,             -- as reported; details are medical entries (`injury`)
    audit_seq BIGINT NOT NULL,
    UNIQUE (incident_id, person_id)
);
CREATE INDEX incident_person_by_person ON incident_person (person_id);

-- Documented by health care staff only; read only by them.
CREATE TABLE injury (
    id BIGINT PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incident(id) DEFERRABLE INITIALLY IMMEDIATE,
    person_id BIGINT NOT NULL REFERENCES person(id) DEFERRABLE INITIALLY IMMEDIATE,
    severity TEXT COLLATE "C" NOT NULL,  -- minor | serious | fatal
    description TEXT COLLATE "C" NOT NULL,
    recorded_at BIGINT NOT NULL,
    actor TEXT COLLATE "C" NOT NULL,
    audit_seq BIGINT NOT NULL
);
CREATE INDEX injury_by_incident ON injury (incident_id, person_id);

-- Notify the next of kin (Mandela Rule 69, person_id set) or the independent authority
-- (Rule 71, person_id NULL, once per incident and event).
CREATE TABLE obligation (
    id BIGINT PRIMARY KEY,
    number TEXT COLLATE "C" NOT NULL UNIQUE,     -- the incident's number and an ordinal: INC-CECOT-2026-000012.1
    incident_id BIGINT NOT NULL REFERENCES incident(id) DEFERRABLE INITIALLY IMMEDIATE,
    kind TEXT COLLATE "C" NOT NULL,      -- next_of_kin | independent_authority
    event TEXT COLLATE "C" NOT NULL,     -- death | disappearance | serious_injury
    person_id BIGINT REFERENCES person(id) DEFERRABLE INITIALLY IMMEDIATE,
    opened_at BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    audit_seq BIGINT NOT NULL
);
CREATE UNIQUE INDEX obligation_once ON obligation (incident_id, kind, event, coalesce(person_id, 0));
CREATE INDEX obligation_by_due ON obligation (due_at);

CREATE TABLE obligation_closure (
    id BIGINT PRIMARY KEY,
    obligation_id BIGINT NOT NULL UNIQUE REFERENCES obligation(id) DEFERRABLE INITIALLY IMMEDIATE,
    notified_name TEXT COLLATE "C" NOT NULL,
    notified_capacity TEXT COLLATE "C" NOT NULL, -- "mother", "duty judge", "ombudsman's office"
    notified_at BIGINT NOT NULL,
    method TEXT COLLATE "C" NOT NULL,    -- phone | in_person | letter | email | other
    note TEXT COLLATE "C",
    closed_at BIGINT NOT NULL,
    closed_by TEXT COLLATE "C" NOT NULL,
    audit_seq BIGINT NOT NULL
);

CREATE TABLE notification_preference (
    id BIGINT PRIMARY KEY,
    person_id BIGINT NOT NULL REFERENCES person(id) DEFERRABLE INITIALLY IMMEDIATE,
    declines_family BIGINT NOT NULL,     -- 1: the person declined that their family be notified
    stated_on TEXT COLLATE "C" NOT NULL, -- the date the person said so, YYYY-MM-DD
    note TEXT COLLATE "C",
    recorded_at BIGINT NOT NULL,
    actor TEXT COLLATE "C" NOT NULL,
    audit_seq BIGINT NOT NULL
);
CREATE INDEX notification_preference_by_person ON notification_preference (person_id, id);

-- Deaths in custody recorded as releases, for statistics.
CREATE INDEX movement_death ON movement (occurred_at) WHERE kind = 'release' AND reason = 'death';
