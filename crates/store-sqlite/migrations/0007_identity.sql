-- Identity resolution: explicit merges and un-merges of people on record, with lineage.

-- Match keys (domain::identity::index_keys): the sound of each surname with two of the three
-- parts of the date of birth, so that a lookup at intake reads a few rows whatever the spelling
-- or a one-digit slip in the date. `born` (YYYYMMDD), `names` (a signature of the name's sounds)
-- and `words` (how many sounds) let the lookup discard people before reading them. Derived from
-- the person rows (filled for existing people when this migration runs); not audited.
CREATE TABLE person_match_key (
    key INTEGER NOT NULL,
    person_id INTEGER NOT NULL,
    born INTEGER NOT NULL,
    names INTEGER NOT NULL,
    words INTEGER NOT NULL,
    PRIMARY KEY (key, person_id)
) STRICT, WITHOUT ROWID;

-- A duplicate record merged into the record that survives. Audited and insert-only: undoing it
-- is a row in `person_unmerge`; the latest merge of a person without an un-merge is in force.
CREATE TABLE person_merge (
    id INTEGER PRIMARY KEY,
    duplicate_id INTEGER NOT NULL REFERENCES person(id),
    survivor_id INTEGER NOT NULL REFERENCES person(id),
    reason TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,        -- microseconds since the epoch, UTC
    actor TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX person_merge_by_duplicate ON person_merge (duplicate_id, id);
CREATE INDEX person_merge_by_survivor ON person_merge (survivor_id, id);

CREATE TABLE person_unmerge (
    id INTEGER PRIMARY KEY,
    merge_id INTEGER NOT NULL UNIQUE REFERENCES person_merge(id),
    reason TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    audit_seq INTEGER NOT NULL
) STRICT;
