//! The PostgreSQL driver against a throw-away cluster.

use std::sync::mpsc;
use std::time::Duration;

use custodia_store_postgres::PostgresDriver;
use domain::time::from_micros;
use pg_test::{execute, query_strings, Cluster};
use store::sql::Session;
use store::{AuditEntry, Database, NewFacility, Store, StoreError, Tx};

fn fresh() -> (String, Database) {
    let url = Cluster::shared().fresh_database();
    let db = Database::new(PostgresDriver::open(&url).unwrap());
    (url, db)
}

fn facility(code: &str) -> NewFacility {
    NewFacility {
        code: code.into(),
        name: format!("Facility {code}"),
        jurisdiction: "SV".into(),
        time_zone: "America/El_Salvador".into(),
        declared_capacity: 100,
        effective_from: from_micros(1_700_000_000_000_000),
    }
}

fn entry(subject: &str) -> AuditEntry<'_> {
    AuditEntry {
        at: from_micros(1_700_000_000_000_000),
        actor: "admin",
        action: "facility.create",
        subject,
        payload: "{}",
    }
}

#[test]
fn migrating_twice_is_idempotent() {
    let (url, db) = fresh();
    db.migrate().unwrap();
    db.migrate().unwrap();
    let version = query_strings(&url, "SELECT version FROM custodia_schema");
    assert_eq!(version, vec![vec![Some(store_postgres_migrations().to_string())]]);
    db.read().unwrap().commit().unwrap();
}

fn store_postgres_migrations() -> usize {
    custodia_store_postgres::MIGRATIONS.len()
}

#[test]
fn writes_are_read_back_and_the_audit_chain_verifies() {
    let (_, db) = fresh();
    db.migrate().unwrap();
    let mut tx = db.write().unwrap();
    let id = tx.insert_facility(&facility("F1")).unwrap();
    let seq = tx.append_audit(&entry("F1")).unwrap();
    assert_eq!(seq, 1);
    tx.commit().unwrap();

    let mut tx = db.read().unwrap();
    assert_eq!(tx.last_audit_seq().unwrap(), 1);
    let f = tx.facility_by_code("F1").unwrap().expect("written");
    assert_eq!(f.id, id);
    assert_eq!(tx.facilities().unwrap().len(), 1);
    assert_eq!(tx.audit_events(0, 10).unwrap().len(), 1);
    // `counts` runs several aggregates; it must read through the driver.
    tx.counts().unwrap();
    drop(tx);

    let verified = db.verify_audit(&mut |_, _| {}).unwrap();
    assert_eq!(verified.events, 1);
    assert_eq!(verified.broken, None, "{verified:?}");
    assert!(verified.projection_problems.is_empty(), "{:?}", verified.projection_problems);
}

#[test]
fn a_duplicate_key_names_its_table_and_columns() {
    let (_, db) = fresh();
    db.migrate().unwrap();
    let mut tx = db.write().unwrap();
    tx.insert_facility(&facility("F1")).unwrap();
    tx.append_audit(&entry("F1")).unwrap();
    tx.commit().unwrap();
    let driver = db.driver();
    let session = driver.writer(false).unwrap();
    let err = session.execute("INSERT INTO facility VALUES (99, 'F1', 'x', 'SV', 'UTC', 1, 0, 1)", ()).unwrap_err();
    match err {
        StoreError::Duplicate { table, columns } => {
            assert_eq!(table, "facility");
            assert_eq!(columns, vec!["code".to_string()]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_database_with_other_tables_is_refused_and_left_alone() {
    let url = Cluster::shared().fresh_database();
    execute(&url, "CREATE TABLE accounts (id BIGINT PRIMARY KEY)");
    let db = Database::new(PostgresDriver::open(&url).unwrap());
    assert!(matches!(db.migrate(), Err(StoreError::Foreign(_))), "refused");
    assert!(matches!(db.read().err(), Some(StoreError::Foreign(_))));
    let tables = query_strings(&url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'");
    assert_eq!(tables, vec![vec![Some("accounts".into())]], "nothing was written");
}

#[test]
fn a_newer_schema_is_too_new() {
    let url = Cluster::shared().fresh_database();
    execute(&url, "CREATE TABLE custodia_schema (version BIGINT NOT NULL); INSERT INTO custodia_schema VALUES (999)");
    let db = Database::new(PostgresDriver::open(&url).unwrap());
    assert!(matches!(db.migrate(), Err(StoreError::TooNew { found: 999, .. })));
    assert!(matches!(db.read().err(), Some(StoreError::TooNew { found: 999, .. })));
}

#[test]
fn an_unreachable_server_is_unavailable_and_the_password_is_not_shown() {
    let err = PostgresDriver::open("postgres://u:secret@127.0.0.1:1/x").unwrap_err();
    let text = err.to_string();
    match &err {
        StoreError::Unavailable { url, reason } => {
            assert_eq!(url, "postgres://u@127.0.0.1:1/x");
            assert!(!reason.contains('\n'));
        }
        other => panic!("{other:?}"),
    }
    assert!(!text.contains("secret"), "{text}");
    assert!(matches!(PostgresDriver::open("mysql://x"), Err(StoreError::UnsupportedUrl(_))));
    let missing = Cluster::shared().url("no_such_database");
    assert!(matches!(PostgresDriver::open(&missing), Err(StoreError::Unavailable { .. })));
}

#[test]
fn a_wrong_password_is_refused_in_one_line_that_names_the_url_without_it() {
    let cluster = Cluster::shared();
    let wrong = cluster.password_role_url("postgres", "wrong-password");
    let err = PostgresDriver::open(&wrong).unwrap_err();
    let text = err.to_string();
    match &err {
        StoreError::Unavailable { url, reason } => {
            assert_eq!(url, &format!("postgres://{}@127.0.0.1:{}/postgres", pg_test::PASSWORD_ROLE, cluster.port()));
            assert!(reason.contains("password authentication failed"), "{reason}");
            assert!(reason.contains("correct the user or password"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!text.contains("wrong-password") && !text.contains('\n'), "{text}");
    // The same role with its password gets in.
    PostgresDriver::open(&cluster.password_role_url("postgres", pg_test::PASSWORD)).unwrap();
}

#[test]
fn a_multi_host_url_passes_over_a_host_that_does_not_answer() {
    let (url, db) = fresh();
    db.migrate().unwrap();
    // Nothing listens on port 1: the client goes on to the next host, the test server.
    let hosts = url.replacen('@', "@127.0.0.1:1,", 1) + "?target_session_attrs=read-write";
    let multi = Database::new(PostgresDriver::open(&hosts).unwrap());
    let mut tx = multi.write().unwrap();
    tx.insert_facility(&facility("F1")).unwrap();
    tx.append_audit(&entry("F1")).unwrap();
    tx.commit().unwrap();
    assert_eq!(db.read().unwrap().last_audit_seq().unwrap(), 1, "written through the second host");
}

#[test]
fn writers_take_turns() {
    let (_, db) = fresh();
    db.migrate().unwrap();
    let first = db.write().unwrap();
    let (sent, received) = mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut tx = db.write().unwrap();
            // The second writer sees what the first committed.
            let seq = tx.last_audit_seq().unwrap();
            sent.send(seq).unwrap();
            tx.insert_facility(&facility("F2")).unwrap();
            tx.append_audit(&entry("F2")).unwrap();
            tx.commit().unwrap();
        });
        assert!(received.recv_timeout(Duration::from_millis(500)).is_err(), "the second writer waits");
        let mut first = first;
        first.insert_facility(&facility("F1")).unwrap();
        first.append_audit(&entry("F1")).unwrap();
        first.commit().unwrap();
        assert_eq!(received.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
    });
    assert_eq!(db.read().unwrap().last_audit_seq().unwrap(), 2);
    assert!(db.verify_audit(&mut |_, _| {}).unwrap().broken.is_none());
}

#[test]
fn readers_on_one_snapshot_see_the_same_rows() {
    let (_, db) = fresh();
    db.migrate().unwrap();
    let driver = db.driver();
    let count = |s: &dyn Session| s.query_row("SELECT count(*) FROM facility", [], |r| r.get::<_, i64>(0)).unwrap();
    let readers = driver.readers_on_one_snapshot(3).unwrap();
    let mut tx = db.write().unwrap();
    tx.insert_facility(&facility("F1")).unwrap();
    tx.append_audit(&entry("F1")).unwrap();
    tx.commit().unwrap();
    for r in &readers {
        assert_eq!(count(&**r), 0);
    }
    drop(readers);
    let readers = driver.readers_on_one_snapshot(2).unwrap();
    assert!(readers.iter().all(|r| count(&**r) == 1));
}

#[test]
fn values_round_trip_with_their_types() {
    let (_, db) = fresh();
    db.migrate().unwrap();
    let session = db.driver().reader().unwrap();
    let row = session
        .query_row(
            "SELECT ?1::bigint, ?2, ?3::bytea, ?4::double precision, sum(x), avg(x), 1 = 1, NULL, '?5'
             FROM (VALUES (1::bigint), (2::bigint)) v(x)",
            store::sql::params![7i64, "text", vec![1u8, 2], 2.5f64],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, f64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, f64>(5)?,
                    r.get::<_, bool>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, String>(8)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(row, (7, "text".into(), vec![1, 2], 2.5, 3, 1.5, true, None, "?5".into()));
    // An untyped parameter is typed from its value.
    let n: i64 = session.query_row("SELECT ?1 + 1", [41i64], |r| r.get(0)).unwrap();
    assert_eq!(n, 42);
    assert!(db.driver().commit_baseline(20).unwrap() > 0.0);
}

#[test]
fn the_migrations_give_the_schema_of_the_sqlite_migrations() {
    let cluster = Cluster::shared();
    let url = cluster.fresh_database();
    let database = url.rsplit('/').next().expect("a database name");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/compare_schemas.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg("--apply")
        .args(["-h", "127.0.0.1", "-p", &cluster.port().to_string(), "-U", "postgres", "-d", database])
        .env("PATH", format!("{}:{}", cluster.bin("psql").parent().unwrap().display(), std::env::var("PATH").unwrap()))
        .output()
        .expect("python3 runs");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && report.contains("schemas agree"), "{report}");
}
