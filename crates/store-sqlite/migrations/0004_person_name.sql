-- Searchable words of people's names (domain::person::name_tokens): lower case, without accents.
-- Derived from the person rows (filled for existing people when this migration runs); not audited.
CREATE TABLE person_name_token (
    token TEXT NOT NULL,
    person_id INTEGER NOT NULL,
    PRIMARY KEY (token, person_id)
) STRICT, WITHOUT ROWID;
