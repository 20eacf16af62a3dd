//! A bulk transaction skips per-row foreign-key checks but must still refuse, at commit,
//! rows that refer to nothing.

use chrono::{TimeZone, Utc};
use custodia_store as store;
use store::{AuditEntry, Store, Tx};

fn entry() -> AuditEntry<'static> {
    AuditEntry {
        at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        actor: "test",
        action: "bed.add",
        subject: "x",
        payload: "{}",
    }
}

#[test]
fn a_bulk_commit_with_a_dangling_reference_is_refused_and_leaves_nothing() {
    let db = testdb::TestDb::new();
    let store = db.open();
    store.migrate().unwrap();
    let mut tx = store.write_bulk().unwrap();
    tx.insert_bed(9_999, "1").unwrap();
    tx.append_audit(&entry()).unwrap();
    let err = tx.commit().unwrap_err();
    assert!(err.to_string().contains("bed row"), "{err}");
    assert_eq!(store.read().unwrap().counts().unwrap().beds, 0);
    assert_eq!(store.read().unwrap().counts().unwrap().audit_events, 0);
    // The connection is back to checking every row.
    let mut tx = store.write().unwrap();
    assert!(tx.insert_bed(9_999, "1").is_err());
}

#[test]
fn audited_rows_without_their_audit_event_cannot_be_committed() {
    let db = testdb::TestDb::new();
    let store = db.open();
    store.migrate().unwrap();
    let mut tx = store.write_bulk().unwrap();
    tx.next_counter("x").unwrap();
    tx.insert_bed(1, "1").unwrap();
    assert!(matches!(tx.commit(), Err(store::StoreError::UnauditedWrite)));
}
