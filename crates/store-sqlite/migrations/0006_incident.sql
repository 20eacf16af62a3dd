-- Incidents, the people and staff involved, injuries, and the obligations they open.
-- Every table here is audited and insert-only: `id` first, `audit_seq` last, columns hashed in
-- table order. Closing an obligation is a row in `obligation_closure`, never an update; a
-- notification preference is a new row, the latest for a person wins.

CREATE TABLE incident (
    id INTEGER PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,         -- INC-CECOT-2026-000012
    facility_id INTEGER NOT NULL REFERENCES facility(id),
    kind TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,        -- microseconds since the epoch, UTC
    recorded_at INTEGER NOT NULL,
    cell_id INTEGER REFERENCES cell(id),
    location TEXT,                       -- free text: "yard 2", "kitchen"
    staff TEXT NOT NULL,                 -- JSON array of the names of staff involved
    description TEXT NOT NULL,
    actor TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX incident_by_facility ON incident (facility_id, id);
CREATE INDEX incident_by_time ON incident (occurred_at);

CREATE TABLE incident_person (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incident(id),
    person_id INTEGER NOT NULL REFERENCES person(id),
    role TEXT NOT NULL,
    injured INTEGER NOT NULL,            -- as reported; details are medical entries (`injury`)
    audit_seq INTEGER NOT NULL,
    UNIQUE (incident_id, person_id)
) STRICT;
CREATE INDEX incident_person_by_person ON incident_person (person_id);

-- Documented by health care staff only; read only by them.
CREATE TABLE injury (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incident(id),
    person_id INTEGER NOT NULL REFERENCES person(id),
    severity TEXT NOT NULL,              -- minor | serious | fatal
    description TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX injury_by_incident ON injury (incident_id, person_id);

-- Notify the next of kin (Mandela Rule 69, person_id set) or the independent authority
-- (Rule 71, person_id NULL, once per incident and event).
CREATE TABLE obligation (
    id INTEGER PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,         -- the incident's number and an ordinal: INC-CECOT-2026-000012.1
    incident_id INTEGER NOT NULL REFERENCES incident(id),
    kind TEXT NOT NULL,                  -- next_of_kin | independent_authority
    event TEXT NOT NULL,                 -- death | disappearance | serious_injury
    person_id INTEGER REFERENCES person(id),
    opened_at INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX obligation_once ON obligation (incident_id, kind, event, coalesce(person_id, 0));
CREATE INDEX obligation_by_due ON obligation (due_at);

CREATE TABLE obligation_closure (
    id INTEGER PRIMARY KEY,
    obligation_id INTEGER NOT NULL UNIQUE REFERENCES obligation(id),
    notified_name TEXT NOT NULL,
    notified_capacity TEXT NOT NULL,     -- "mother", "duty judge", "ombudsman's office"
    notified_at INTEGER NOT NULL,
    method TEXT NOT NULL,                -- phone | in_person | letter | email | other
    note TEXT,
    closed_at INTEGER NOT NULL,
    closed_by TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;

CREATE TABLE notification_preference (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES person(id),
    declines_family INTEGER NOT NULL,    -- 1: the person declined that their family be notified
    stated_on TEXT NOT NULL,             -- the date the person said so, YYYY-MM-DD
    note TEXT,
    recorded_at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX notification_preference_by_person ON notification_preference (person_id, id);

-- Deaths in custody recorded as releases, for statistics.
CREATE INDEX movement_death ON movement (occurred_at) WHERE kind = 'release' AND reason = 'death';
