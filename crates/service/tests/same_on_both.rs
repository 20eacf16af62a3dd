//! The same commands give the same records on both backends: a demo built on SQLite and on
//! PostgreSQL from one seed ends in the same audit chain head and the same occupancy figures.
//! It needs both servers, so it runs in the PostgreSQL pass of `scripts/test`. The test builds
//! the small demo; `CUSTODIA_SAME_SCALE=cecot` builds CECOT and checks its published figures
//! (about 3.5 minutes in a debug build, most of it on PostgreSQL).

use custodia_service as service;

use service::demo::Scale;
use service::report::Detail;
use service::Service;
use testdb::{Backend, TestDb};

/// The demo's history ends here on both, so that nothing depends on the day the test runs.
const END: &str = "2026-12-01T00:00:00Z";

/// The newest audit event's `seq:hash` and the occupancy report at the end, as JSON.
fn demo_on(backend: Backend, scale: Scale) -> (String, serde_json::Value) {
    let db = TestDb::on(backend);
    let service = Service::new(db.open());
    service.init().expect("init");
    let end = END.parse().unwrap();
    service.demo_until(scale, 2026, end, &mut |_, _, _| {}).expect("demo");
    let last = service.last_audit_seq().unwrap();
    let head = service.audit_events(last - 1, 1).unwrap().pop().expect("an event");
    let verified = service.verify_audit(&mut |_, _| {}).unwrap();
    assert!(verified.broken.is_none(), "{backend:?}: {verified:?}");
    let report = service.occupancy(end, Detail::Facility).unwrap();
    (format!("{}:{}", head.seq, head.hash), serde_json::to_value(report).unwrap())
}

#[test]
fn a_demo_ends_in_the_same_chain_head_and_figures_on_sqlite_and_postgres() {
    if Backend::from_env() != Backend::Postgres {
        println!("runs with CUSTODIA_TEST_DB=postgres");
        return;
    }
    let cecot = std::env::var("CUSTODIA_SAME_SCALE").as_deref() == Ok("cecot");
    let scale = if cecot { Scale::Cecot } else { Scale::Small };
    let (sqlite_head, sqlite_report) = demo_on(Backend::Sqlite, scale);
    let (postgres_head, postgres_report) = demo_on(Backend::Postgres, scale);
    assert_eq!(sqlite_head, postgres_head);
    assert_eq!(sqlite_report, postgres_report);
    if cecot {
        let pct = &postgres_report["total"]["occupancy_pct"];
        let figures: Vec<f64> = ["declared", "beds", "icrc", "cpt"].iter().map(|m| pct[m].as_f64().unwrap()).collect();
        assert_eq!(figures, [37.5, 73.2, 202.0, 234.4], "{pct}");
    }
}
