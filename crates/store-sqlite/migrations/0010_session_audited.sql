-- Sessions under the audit chain too (issue 11, point 4): a session row added by hand would let
-- its maker in as anyone. `session` becomes a projection like `staff_user`: each login and each
-- end of a session writes a version row under its audit event (`session.login`,
-- `session.logout`, or the password change or disablement that ended it). Sessions on record
-- are adopted by one audit event (`session.adopt`) written by this migration.
CREATE TABLE session_version (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES session(id),
    user_id INTEGER NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ended_at INTEGER,
    audit_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX session_version_by_session ON session_version (session_id, id);
