//! The table of failed logins stays bounded however many names and addresses are tried.

use chrono::{Duration, TimeZone, Utc};
use custodia_store as store;
use store::staff::StaffTx;
use store::{Store, Tx};

#[test]
fn the_failure_table_keeps_the_most_recent_keys_up_to_its_bound() {
    let test_db = testdb::TestDb::new();
    let db = test_db.open();
    db.migrate().unwrap();
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let mut tx = db.write().unwrap();
    for i in 0..20 {
        let at = start + Duration::seconds(i);
        assert_eq!(
            tx.record_login_failure(&format!("name{i:02} 10.0.0.{i}"), at, start - Duration::days(1), 5).unwrap(),
            1
        );
    }
    tx.commit().unwrap();
    let mut tx = db.read().unwrap();
    for i in 0..15 {
        assert_eq!(tx.login_failures(&format!("name{i:02} 10.0.0.{i}")).unwrap(), None, "{i} is forgotten");
    }
    for i in 15..20 {
        let (failures, at) = tx.login_failures(&format!("name{i:02} 10.0.0.{i}")).unwrap().expect("kept");
        assert_eq!((failures, at), (1, start + Duration::seconds(i)));
    }
}

#[test]
fn a_count_starts_again_after_its_window() {
    let test_db = testdb::TestDb::new();
    let db = test_db.open();
    db.migrate().unwrap();
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let mut tx = db.write().unwrap();
    let window = Duration::minutes(15);
    let mut record = |at| tx.record_login_failure(" 10.0.0.1", at, at - window, 100).unwrap();
    assert_eq!(record(start), 1);
    assert_eq!(record(start + Duration::minutes(14)), 2);
    assert_eq!(record(start + Duration::minutes(28)), 3, "within the window of the last failure");
    assert_eq!(record(start + Duration::minutes(44)), 1, "a window without failures restarts the count");
}
