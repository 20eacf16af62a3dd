-- PostgreSQL form of the SQLite migration of the same number (0004_person_name.sql); SQLite's
-- WITHOUT ROWID has no counterpart (a PostgreSQL table has no rowid). The tokens of people already
-- on record are filled by the Rust step that follows this migration, not here.

-- Searchable words of people's names (domain::person::name_tokens): lower case, without accents.
-- Derived from the person rows (filled for existing people when this migration runs); not audited.
CREATE TABLE person_name_token (
    token TEXT COLLATE "C" NOT NULL,
    person_id BIGINT NOT NULL,
    PRIMARY KEY (token, person_id)
);
