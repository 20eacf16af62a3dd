-- Staff accounts and API tokens under the audit chain (issue 11, point 4).
-- `staff_user`, `staff_facility` and `api_token` stay as they are, but become projections: every
-- change of an account (creation, role, facilities, password hash, disablement) and of a token
-- (issue, revocation) also writes an insert-only audited row holding the whole new state, and
-- `audit verify` compares the latest of those rows with the projection. Accounts and tokens
-- already on record are adopted by one audit event (`staff.adopt`) written by this migration.

-- Each state an account has been in; the latest row of a user is its current state.
CREATE TABLE staff_user_version (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES staff_user(id),
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    facilities TEXT NOT NULL,       -- JSON array of facility codes, sorted
    password_hash TEXT NOT NULL,    -- Argon2id, PHC string
    disabled INTEGER NOT NULL,
    at INTEGER NOT NULL,            -- microseconds since the epoch, UTC
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX staff_user_version_by_user ON staff_user_version (user_id, id);

-- Each state a token has been in: issued (revoked_at NULL), then revoked.
CREATE TABLE api_token_version (
    id INTEGER PRIMARY KEY,
    token_id INTEGER NOT NULL REFERENCES api_token(id),
    user_id INTEGER NOT NULL,
    token_sha256 TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX api_token_version_by_token ON api_token_version (token_id, id);

-- Failed logins per throttle key: a name with the client address it was tried from, or an
-- address alone (issue 11, point 8). Counts kept per name alone are dropped: they let anyone
-- lock an owner out.
DROP TABLE login_failure;
CREATE TABLE login_failure (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL
) STRICT;
CREATE INDEX login_failure_by_time ON login_failure (last_failure_at);
