-- Housing and safety (SQLite): housing policy and capacity overrides, unit designations,
-- classification, security threat groups, keep-apart rules, roll counts.
-- Every table but the stay columns is audited and insert-only: a change is a new row, and the
-- latest row at or before an instant applies.

-- The capacity line a facility's placements may not exceed (NULL: none chosen) and the age
-- from which people count as adults (Mandela Rule 11 d).
CREATE TABLE housing_policy (
    id INTEGER PRIMARY KEY,
    facility_id INTEGER NOT NULL REFERENCES facility(id),
    capacity_line TEXT,
    adult_age INTEGER NOT NULL,
    effective_from INTEGER NOT NULL,
    recorded_by TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX housing_policy_by_facility ON housing_policy (facility_id, effective_from);

-- A director's permission to place over the capacity line, in a facility or one cell, until it expires.
CREATE TABLE capacity_override (
    id INTEGER PRIMARY KEY,
    facility_id INTEGER NOT NULL REFERENCES facility(id),
    cell_id INTEGER REFERENCES cell(id),
    reason TEXT NOT NULL,
    authorised_by TEXT NOT NULL,
    effective_from INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX capacity_override_by_facility ON capacity_override (facility_id, expires_at);

-- The categories a unit is designated for; NULL admits any value of that category.
CREATE TABLE unit_designation (
    id INTEGER PRIMARY KEY,
    unit_id INTEGER NOT NULL REFERENCES unit(id),
    sex TEXT,
    age_group TEXT,
    legal_status TEXT,
    regime TEXT,
    effective_from INTEGER NOT NULL,
    recorded_by TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX unit_designation_by_unit ON unit_designation (unit_id, effective_from);

-- A person's classification as a history. Sex and age come from the identity on record.
CREATE TABLE classification (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES person(id),
    legal_status TEXT NOT NULL,
    regime TEXT NOT NULL,
    security_level TEXT NOT NULL,
    vulnerabilities TEXT NOT NULL,  -- JSON array of flags
    note TEXT,
    effective_from INTEGER NOT NULL,
    recorded_by TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX classification_by_person ON classification (person_id, effective_from);

CREATE TABLE threat_group (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;

-- Affiliation of a person with a security threat group; the latest row per pair decides.
CREATE TABLE group_affiliation (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES person(id),
    group_id INTEGER NOT NULL REFERENCES threat_group(id),
    affiliated INTEGER NOT NULL,    -- 1 affiliated, 0 no longer
    source TEXT NOT NULL,           -- where the information comes from
    assessed_on TEXT NOT NULL,      -- date of the assessment
    recorded_at INTEGER NOT NULL,
    recorded_by TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX group_affiliation_by_person ON group_affiliation (person_id, group_id, id);
CREATE INDEX group_affiliation_by_group ON group_affiliation (group_id, person_id, id);

-- Two parties (a person or a group each) that may not be within `scope` of each other.
CREATE TABLE keep_apart (
    id INTEGER PRIMARY KEY,
    a_kind TEXT NOT NULL,           -- person | group
    a_id INTEGER NOT NULL,
    b_kind TEXT NOT NULL,
    b_id INTEGER NOT NULL,
    scope TEXT NOT NULL,            -- cell | unit | facility
    reason TEXT NOT NULL,
    authorised_by TEXT NOT NULL,
    effective_from INTEGER NOT NULL,
    expires_at INTEGER,
    recorded_by TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX keep_apart_by_a ON keep_apart (a_kind, a_id);
CREATE INDEX keep_apart_by_b ON keep_apart (b_kind, b_id);

-- A keep-apart rule lifted before its expiry.
CREATE TABLE keep_apart_end (
    id INTEGER PRIMARY KEY,
    rule_id INTEGER NOT NULL UNIQUE REFERENCES keep_apart(id),
    ended_at INTEGER NOT NULL,
    reason TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;

-- A roll count of a facility or one unit, for the instant it was started.
CREATE TABLE roll_count (
    id INTEGER PRIMARY KEY,
    facility_id INTEGER NOT NULL REFERENCES facility(id),
    unit_id INTEGER REFERENCES unit(id),
    counted_at INTEGER NOT NULL,
    started_by TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX roll_count_by_facility ON roll_count (facility_id, id);

-- Who should be in each cell (placed and not out) when the count started.
CREATE TABLE roll_count_cell (
    id INTEGER PRIMARY KEY,
    count_id INTEGER NOT NULL REFERENCES roll_count(id),
    cell_id INTEGER NOT NULL REFERENCES cell(id),
    expected INTEGER NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX roll_count_cell_by_count ON roll_count_cell (count_id);

-- What officers counted in a cell; a recount is a later row for the same cell.
CREATE TABLE roll_count_entry (
    id INTEGER PRIMARY KEY,
    count_id INTEGER NOT NULL REFERENCES roll_count(id),
    cell_id INTEGER NOT NULL REFERENCES cell(id),
    counted INTEGER NOT NULL,
    entered_at INTEGER NOT NULL,
    entered_by TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX roll_count_entry_by_count ON roll_count_entry (count_id);

-- The explanation of a person missing from their cell: found elsewhere (a move is recorded)
-- or unaccounted for (an escape incident is opened).
CREATE TABLE roll_count_resolution (
    id INTEGER PRIMARY KEY,
    count_id INTEGER NOT NULL REFERENCES roll_count(id),
    person_id INTEGER NOT NULL REFERENCES person(id),
    cell_id INTEGER NOT NULL REFERENCES cell(id),
    kind TEXT NOT NULL,             -- found_elsewhere | unaccounted | moved_on_record | arrived_on_record
    found_cell_id INTEGER REFERENCES cell(id),
    incident TEXT,
    note TEXT,
    resolved_at INTEGER NOT NULL,
    resolved_by TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX roll_count_resolution_by_count ON roll_count_resolution (count_id);

CREATE TABLE roll_count_clearance (
    id INTEGER PRIMARY KEY,
    count_id INTEGER NOT NULL UNIQUE REFERENCES roll_count(id),
    cleared_at INTEGER NOT NULL,
    cleared_by TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;

-- The separation facts of each stay, copied from the person when placed, so that a placement is
-- checked against a cell's occupants with a few index seeks (ADR 0004). A cache of the person's identity and
-- classification, refreshed on reclassification; not part of the audited rows.
ALTER TABLE stay ADD COLUMN class INTEGER;
ALTER TABLE stay ADD COLUMN born INTEGER;       -- date of birth as YYYYMMDD
-- Stays open before this migration get the separation facts of their occupant (no one was
-- classified yet, so legal status and regime are presumed from the legal basis, as the service does).
UPDATE stay SET
    class = (SELECT (CASE p.sex WHEN 'male' THEN 0 WHEN 'female' THEN 1 ELSE 2 END) * 6
                  + (CASE b.legal_basis_kind WHEN 'judgment' THEN 1 WHEN 'administrative_detention' THEN 2 ELSE 0 END) * 2
                  + (CASE b.legal_basis_kind WHEN 'administrative_detention' THEN 1 ELSE 0 END)
             FROM person p JOIN booking b ON b.id = (SELECT max(id) FROM booking WHERE person_id = p.id)
             WHERE p.id = stay.person_id),
    born = (SELECT CAST(replace(p.date_of_birth, '-', '') AS INTEGER) FROM person p WHERE p.id = stay.person_id)
WHERE to_at = 9223372036854775807;
-- Ordered by class so that "anyone of another category in this cell?" is a seek, not a scan.
CREATE INDEX stay_by_cell_class ON stay (cell_id, class, born, to_at, person_id);

