//! A database written before staff accounts were audited (schema version 8) and a read register
//! written before reads were chained: opening and migrating puts both under verification.

use custodia_store_sqlite::{read_log_path, SqliteDriver, MIGRATIONS};
use store::{Database, Store};

/// The schema before the staff audit: the first eight migrations.
const BEFORE_STAFF_AUDIT: &[&str] = MIGRATIONS.split_at(8).0;

/// A version-8 database holding an admin account with one token and one session, and a register of three reads
/// in the old form (no chain).
fn old_database(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("old.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    for sql in BEFORE_STAFF_AUDIT {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch(
        "PRAGMA user_version = 8;
         INSERT INTO staff_user (name, role, password_hash, disabled, created_at) VALUES ('root', 'admin', '$argon2id$x', 0, 1);
         INSERT INTO api_token (user_id, token_sha256, created_at, expires_at) VALUES (1, 'ab', 1, 9000000000000000);
         INSERT INTO session (user_id, secret_sha256, created_at, expires_at) VALUES (1, 'cd', 1, 9000000000000000);",
    )
    .unwrap();
    let reads = rusqlite::Connection::open(read_log_path(&path)).unwrap();
    reads
        .execute_batch(
            "CREATE TABLE person_read (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, reader TEXT NOT NULL,
                 person TEXT NOT NULL, route TEXT NOT NULL) STRICT;
             INSERT INTO person_read (at, reader, person, route) VALUES
                 (1, 'root', 'SV-2026-000001', '/people/SV-2026-000001'),
                 (2, 'root', 'SV-2026-000002', '/people/SV-2026-000002'),
                 (3, 'root', 'SV-2026-000001', '/people/SV-2026-000001');",
        )
        .unwrap();
    path
}

fn problems(db: &Database) -> (Option<String>, Vec<String>, u64) {
    let v = db.verify_audit(&mut |_, _| {}).unwrap();
    (v.broken.map(|b| b.reason), v.projection_problems, v.reads)
}

#[test]
fn accounts_and_reads_on_record_are_adopted_and_then_verified() {
    let dir = tempfile::tempdir().unwrap();
    let path = old_database(dir.path());
    let db = Database::new(SqliteDriver::open_path(&path).unwrap());
    db.migrate().unwrap();
    assert_eq!(problems(&db), (None, vec![], 3));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let actions: Vec<String> = conn
        .prepare("SELECT action FROM audit_event ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(actions, ["staff.adopt", "session.adopt"]);

    conn.execute("UPDATE staff_user SET role = 'monitor'", []).unwrap();
    let (_, found, _) = problems(&db);
    assert_eq!(found, ["staff account `root` differs from its audited history (role): edited outside Custodia"]);
    conn.execute("UPDATE staff_user SET role = 'admin'", []).unwrap();
    conn.execute("UPDATE api_token SET expires_at = expires_at + 1", []).unwrap();
    let (_, found, _) = problems(&db);
    assert_eq!(found, ["API token 1 differs from its audited history: edited outside Custodia"]);
    conn.execute("UPDATE api_token SET expires_at = expires_at - 1", []).unwrap();
    conn.execute("UPDATE session SET ended_at = 5", []).unwrap();
    let (_, found, _) = problems(&db);
    assert_eq!(found, ["session 1 differs from its audited history: edited outside Custodia"]);
    conn.execute("UPDATE session SET ended_at = NULL", []).unwrap();

    let reads = rusqlite::Connection::open(read_log_path(&path)).unwrap();
    reads.execute("DELETE FROM person_read WHERE id = 2", []).unwrap();
    let (_, found, _) = problems(&db);
    assert_eq!(found, ["read register: read 3 follows read 1: the reads between were deleted"]);
}
