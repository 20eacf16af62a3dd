-- Staff accounts, their credentials and sessions, login throttling, the log of record reads
-- (Mandela Rule 9) and stored responses of idempotent requests (SQLite).
-- None of these tables is audited: the commands that change accounts append audit events that
-- carry no rows, and no secret is stored in the clear (passwords as Argon2id hashes, tokens and
-- session secrets as SHA-256 hex).

CREATE TABLE staff_user (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,    -- Argon2id, PHC string
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL     -- microseconds since the epoch, UTC
) STRICT;

-- The facilities a staff member with a non-national role works in.
CREATE TABLE staff_facility (
    user_id INTEGER NOT NULL REFERENCES staff_user(id),
    facility_code TEXT NOT NULL REFERENCES facility(code),
    PRIMARY KEY (user_id, facility_code)
) STRICT;

CREATE TABLE api_token (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES staff_user(id),
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE INDEX api_token_by_user ON api_token (user_id);

CREATE TABLE session (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES staff_user(id),
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ended_at INTEGER
) STRICT;
CREATE INDEX session_by_user ON session (user_id);

-- Consecutive failed logins per name given (also names that do not exist).
CREATE TABLE login_failure (
    name TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL
) STRICT;

-- The register of who read whose record lives in a database of its own (see READ_LOG_SCHEMA
-- in sqlite.rs), so that its constant writes do not empty the readers' caches of this one.

CREATE TABLE idempotency (
    actor TEXT NOT NULL,
    key TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (actor, key)
) STRICT;
