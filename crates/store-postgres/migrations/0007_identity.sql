-- PostgreSQL form of the SQLite migration of the same number (0007_identity.sql); SQLite's
-- WITHOUT ROWID has no counterpart. The match keys of people already on record are filled by the
-- Rust step that follows this migration, not here.

-- Identity resolution: explicit merges and un-merges of people on record, with lineage.

-- Match keys (domain::identity::index_keys): the sound of each surname with two of the three
-- parts of the date of birth, so that a lookup at intake reads a few rows whatever the spelling
-- or a one-digit slip in the date. `born` (YYYYMMDD), `names` (a signature of the name's sounds)
-- and `words` (how many sounds) let the lookup discard people before reading them. Derived from
-- the person rows (filled for existing people when this migration runs); not audited.
CREATE TABLE person_match_key (
    key BIGINT NOT NULL,
    person_id BIGINT NOT NULL,
    born BIGINT NOT NULL,
    names BIGINT NOT NULL,
    words BIGINT NOT NULL,
    PRIMARY KEY (key, person_id)
);

-- A duplicate record merged into the record that survives. Audited and insert-only: undoing it
-- is a row in `person_unmerge`; the latest merge of a person without an un-merge is in force.
CREATE TABLE person_merge (
    id BIGINT PRIMARY KEY,
    duplicate_id BIGINT NOT NULL REFERENCES person(id) DEFERRABLE INITIALLY IMMEDIATE,
    survivor_id BIGINT NOT NULL REFERENCES person(id) DEFERRABLE INITIALLY IMMEDIATE,
    reason TEXT COLLATE "C" NOT NULL,
    recorded_at BIGINT NOT NULL,         -- microseconds since the epoch, UTC
    actor TEXT COLLATE "C" NOT NULL,
    audit_seq BIGINT NOT NULL
);
CREATE INDEX person_merge_by_duplicate ON person_merge (duplicate_id, id);
CREATE INDEX person_merge_by_survivor ON person_merge (survivor_id, id);

CREATE TABLE person_unmerge (
    id BIGINT PRIMARY KEY,
    merge_id BIGINT NOT NULL UNIQUE REFERENCES person_merge(id) DEFERRABLE INITIALLY IMMEDIATE,
    reason TEXT COLLATE "C" NOT NULL,
    recorded_at BIGINT NOT NULL,
    actor TEXT COLLATE "C" NOT NULL,
    audit_seq BIGINT NOT NULL
);
