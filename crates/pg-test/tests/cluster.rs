//! A cluster starts, holds databases of its own, and is gone once dropped.

use custodia_pg_test::{execute, query_strings, Cluster};

#[test]
fn a_cluster_serves_fresh_databases_and_stops_when_dropped() {
    let cluster = Cluster::start();
    let a = cluster.fresh_database();
    let b = cluster.fresh_database();
    assert_ne!(a, b);
    assert!(a.starts_with(&format!("postgres://postgres@127.0.0.1:{}/", cluster.port())));

    assert_eq!(execute(&a, "CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)"), 0);
    assert_eq!(execute(&a, "INSERT INTO t VALUES (1, 'one'), (2, NULL)"), 2);
    assert_eq!(execute(&a, "UPDATE t SET v = 'uno' WHERE id = 1; DELETE FROM t WHERE id = 2"), 2);
    assert_eq!(query_strings(&a, "SELECT id, v FROM t ORDER BY id"), vec![vec![Some("1".into()), Some("uno".into())]]);
    // The databases are separate.
    assert!(query_strings(&b, "SELECT 1 FROM pg_tables WHERE tablename = 't'").is_empty());
    assert_eq!(query_strings(&b, "SHOW fsync"), vec![vec![Some("off".into())]]);
    assert_eq!(query_strings(&b, "SHOW synchronous_commit"), vec![vec![Some("on".into())]]);
    assert!(cluster.bin("pgbench").is_file());

    let dir = cluster.dir().to_path_buf();
    drop(cluster);
    assert!(postgres::Client::connect(&a, postgres::NoTls).is_err(), "the server stopped");
    assert!(!dir.exists(), "its directory is removed");
}

#[test]
fn the_shared_cluster_is_one_per_process() {
    let one = Cluster::shared();
    let two = Cluster::shared();
    assert!(std::ptr::eq(one, two));
    let url = one.fresh_database();
    assert_eq!(query_strings(&url, "SELECT current_database()").len(), 1);
}

#[test]
#[should_panic(expected = "SELECT nonsense")]
fn a_failing_statement_panics_with_its_sql() {
    let url = Cluster::shared().fresh_database();
    execute(&url, "SELECT nonsense FROM nowhere");
}
