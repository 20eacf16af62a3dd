//! Running it as a service: a backup taken while staff work restores to a prefix of the live
//! chain, and a database server that goes away gives 503s until it is back, without a restart.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use custodia_web as web;
use service::demo::Scale;
use service::staff::Role;
use service::{Context, Service};
use testdb::{Backend, TestDb};

/// A records officer of PEQ-A admitting someone with a document of their own.
fn admission(n: u64) -> String {
    json!({
        "facility": "PEQ-A",
        "identity": {"given_names": "Rosa", "first_surname": "Quintanilla", "date_of_birth": "1990-01-01",
                     "sex": "female", "nationality": "SV",
                     "documents": [{"kind": "dui", "number": format!("OPS-{n}"), "issuing_country": "SV"}]},
        "legal_basis": {"kind": "remand_order", "issuing_authority": "Juzgado 1", "reference": "R-9", "date": "2026-01-02"},
        "arrested_at": "2026-01-01T10:00:00Z",
        "arrest_place": "San Salvador"
    })
    .to_string()
}

/// The small demo on `url`, and bearer tokens of a records officer of PEQ-A and of a monitor.
fn setup(url: &str) -> (Service<store::Database>, String, String) {
    let service = Service::new(service::open_database(url, true).unwrap());
    service.init().unwrap();
    service.demo(Scale::Small, 7, &mut |_, _, _| {}).unwrap();
    let ctx = Context::now("setup");
    service.add_user(&ctx, "records", Role::Records, &["PEQ-A".to_string()], "correct horse battery").unwrap();
    service.add_user(&ctx, "monitor", Role::Monitor, &[], "correct horse battery").unwrap();
    let records = service.create_token(&ctx, "records", chrono::Duration::days(1)).unwrap();
    let monitor = service.create_token(&ctx, "monitor", chrono::Duration::days(1)).unwrap();
    (service, records, monitor)
}

/// Serve `service` on a free loopback port; its base URL.
async fn serve(service: Service<store::Database>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = web::AppState::new(service);
    tokio::spawn(async move { web::serve(listener, state, std::future::pending()).await.unwrap() });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_admissions_run_restores_to_a_prefix_of_the_live_chain() {
    let db = TestDb::new();
    let url = db.url().to_string();
    let (service, records, _) = tokio::task::spawn_blocking(move || setup(&url)).await.unwrap();
    let bookings_before = db.query_i64("SELECT count(*) FROM booking");
    let base = serve(service).await;

    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (client, base, records) = (Client::new(), base.clone(), records.clone());
        let (stop, acknowledged, sent) = (stop.clone(), acknowledged.clone(), sent.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = sent.fetch_add(1, Ordering::Relaxed);
                let response = client
                    .post(format!("{base}/api/v1/admissions"))
                    .bearer_auth(&records)
                    .header("content-type", "application/json")
                    .body(admission(n))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::CREATED, "{}", response.text().await.unwrap());
                acknowledged.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let at_least = |n: u64| {
        let acknowledged = acknowledged.clone();
        async move {
            while acknowledged.load(Ordering::Relaxed) < n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    at_least(20).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.db");
    let acknowledged_before = acknowledged.load(Ordering::Relaxed);
    let (live_url, backup_file) = (db.url().to_string(), file.clone());
    let backed_up =
        tokio::task::spawn_blocking(move || service::backup_database(&live_url, &backup_file, &mut |_, _, _| {}))
            .await
            .unwrap()
            .unwrap();
    let acknowledged_after = acknowledged.load(Ordering::Relaxed);
    at_least(acknowledged_after + 20).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    assert!(backed_up.verification.broken.is_none() && backed_up.verification.projection_problems.is_empty());

    let restored_db = TestDb::new();
    let (restored_url, backup_file) = (restored_db.url().to_string(), file.clone());
    let restored =
        tokio::task::spawn_blocking(move || service::restore_database(&backup_file, &restored_url, &mut |_, _, _| {}))
            .await
            .unwrap()
            .unwrap();
    let head = (restored.verification.events as i64, restored.verification.head_hash.clone());
    assert_eq!(head, (backed_up.verification.events as i64, backed_up.verification.head_hash.clone()));
    assert!(restored.verification.broken.is_none() && restored.verification.projection_problems.is_empty());

    // A prefix of the live chain: the restored head is an event of it, and the chain went on.
    let live = db.open();
    let seq = head.0;
    let live_event = tokio::task::spawn_blocking(move || Service::new(live).audit_events(seq - 1, 1).unwrap())
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    assert_eq!((live_event.seq, live_event.hash), head, "the restored head is an event of the live chain");
    let live_events = db.query_i64("SELECT max(seq) FROM audit_event");
    assert!(
        live_events > head.0,
        "admissions went on after the backup: {live_events} events live, {} restored",
        head.0
    );
    // Every admission acknowledged before the backup began is in it; none acknowledged after it ended.
    let restored_bookings = restored_db.query_i64("SELECT count(*) FROM booking");
    assert!(restored_bookings >= bookings_before + acknowledged_before as i64, "{restored_bookings} bookings restored");
    assert!(restored_bookings <= bookings_before + acknowledged_after as i64, "{restored_bookings} bookings restored");
    let live_bookings = db.query_i64("SELECT count(*) FROM booking");
    assert_eq!(live_bookings, bookings_before + acknowledged.load(Ordering::Relaxed) as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_server_that_goes_away_gets_503_with_retry_after_and_custodia_recovers_without_a_restart() {
    if Backend::from_env() != Backend::Postgres {
        eprintln!("a database server going away is tested on the PostgreSQL pass");
        return;
    }
    // A cluster of its own, since it is stopped.
    let cluster = Arc::new(tokio::task::spawn_blocking(pg_test::Cluster::start).await.unwrap());
    let c = cluster.clone();
    let (service, records, monitor, person) = tokio::task::spawn_blocking(move || {
        let (service, records, monitor) = setup(&c.fresh_database());
        let person = service.occupants("PEQ-A", None, None, chrono::Utc::now()).unwrap()[0].number.clone();
        (service, records, monitor, person)
    })
    .await
    .unwrap();
    let base = serve(service).await;
    let client = Client::new();
    let get = |path: String, token: String| {
        let request = client.get(format!("{base}{path}")).bearer_auth(token);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            let kind = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
            let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null);
            (status, retry_after, kind, body)
        }
    };
    let admit = |n: u64| {
        let request = client
            .post(format!("{base}/api/v1/admissions"))
            .bearer_auth(&records)
            .header("content-type", "application/json")
            .body(admission(n));
        async move { request.send().await.unwrap().status() }
    };
    let person_path = format!("/api/v1/people/{person}");
    assert_eq!(get(person_path.clone(), monitor.clone()).await.0, StatusCode::OK);
    assert_eq!(get("/readyz".into(), String::new()).await.0, StatusCode::OK);

    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.stop()).await.unwrap();
    // The monitor's token was checked a moment ago and is cached; the records officer's is
    // checked against the database, which is gone: both get 503, not 500 nor 401.
    for (path, token) in [(person_path.clone(), monitor.clone()), ("/api/v1/facilities".to_string(), records.clone())] {
        let (status, retry_after, kind, body) = get(path.clone(), token).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_eq!(kind.as_deref(), Some("application/problem+json"), "{path}");
        assert!(retry_after.is_some_and(|s| s.parse::<u64>().is_ok()), "{path}: Retry-After in seconds");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.contains("postgres")),
            "{path}: no URL in the answer: {body}"
        );
    }
    assert_eq!(admit(1).await, StatusCode::SERVICE_UNAVAILABLE);
    let (status, retry_after, _, _) = get("/readyz".into(), String::new()).await;
    assert_eq!((status, retry_after.is_some()), (StatusCode::SERVICE_UNAVAILABLE, true));
    assert_eq!(get("/healthz".into(), String::new()).await.0, StatusCode::OK, "the process itself is up");

    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.start_again()).await.unwrap();
    let mut recovered = false;
    for _ in 0..300 {
        if get("/readyz".into(), String::new()).await.0 == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "ready again once the server is back");
    assert_eq!(get(person_path, monitor).await.0, StatusCode::OK);
    assert_eq!(admit(2).await, StatusCode::CREATED);
}
