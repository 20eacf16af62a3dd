//! HTTP tests: the real app on 127.0.0.1:0 over a fresh database per test, through the same
//! `app()` that `custodia serve` uses.

use std::collections::HashMap;

use chrono::{Duration, TimeZone, Utc};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use custodia_web as web;
use service::demo::Scale;
use service::staff::Role;
use service::{Context, Service};
use testdb::TestDb;

struct Api {
    base: String,
    client: Client,
    tokens: HashMap<Role, String>,
    /// A person held in PEQ-A (the facility scoped roles are assigned to) and one in PEQ-M.
    inside: String,
    outside: String,
    _db: TestDb,
    _server: tokio::task::JoinHandle<()>,
}

/// Small demo, one account per role (facility roles assigned to PEQ-A), one token each.
async fn start() -> Api {
    // A database client may not block a runtime's thread: the setup runs beside it, as the
    // server's own calls do.
    let (db, service, tokens, inside, outside) = tokio::task::spawn_blocking(setup).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = web::AppState::new(service);
    let server = tokio::spawn(async move {
        web::serve(listener, state, std::future::pending()).await.unwrap();
    });
    Api { base, client: Client::new(), tokens, inside, outside, _db: db, _server: server }
}

type Setup = (TestDb, Service<store::Database>, HashMap<Role, String>, String, String);

fn setup() -> Setup {
    let db = TestDb::new();
    let service = Service::new(db.open());
    service.init().unwrap();
    let end = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    service.demo_until(Scale::Small, 7, end, &mut |_, _, _| {}).unwrap();
    let ctx = Context::now("setup");
    // The demo's overcrowding override ran out with its history; a director renews it.
    let renewal = service::housing::OverrideRequest {
        cell: None,
        reason: "population above declared capacity".parse().unwrap(),
        expires_at: Utc::now() + Duration::days(1),
    };
    service.record_override(&ctx, "PEQ-A", &renewal).unwrap();
    let mut tokens = HashMap::new();
    for role in Role::ALL {
        let facilities = if role.national() { vec![] } else { vec!["PEQ-A".to_string()] };
        service.add_user(&ctx, role.as_str(), role, &facilities, "correct horse battery").unwrap();
        tokens.insert(role, service.create_token(&ctx, role.as_str(), Duration::days(1)).unwrap());
    }
    // Someone in a cell the demo keeps for untried people, so that moves to other such cells are legal.
    let occupants = service.occupants("PEQ-A", None, None, Utc::now()).unwrap();
    let inside = occupants.into_iter().find(|o| o.cell.as_deref() == Some("M1-01")).unwrap().number;
    let outside = service.occupants("PEQ-M", None, None, Utc::now()).unwrap()[0].number.clone();
    (db, service, tokens, inside, outside)
}

impl Api {
    async fn call(&self, role: Option<Role>, method: Method, path: &str, body: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(role) = role {
            request = request.bearer_auth(&self.tokens[&role]);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn get(&self, role: Role, path: &str) -> (StatusCode, Value) {
        self.call(Some(role), Method::GET, path, None).await
    }

    async fn post(&self, role: Role, path: &str, body: &str) -> (StatusCode, Value) {
        self.call(Some(role), Method::POST, path, Some(body)).await
    }

    async fn audit_count(&self) -> usize {
        let (_, v) = self.get(Role::Monitor, "/api/v1/audit/verification").await;
        v["events"].as_u64().unwrap() as usize
    }
}

fn admission(facility: &str, surname: &str) -> String {
    json!({
        "facility": facility,
        "identity": {"given_names": "Rosa", "first_surname": surname, "date_of_birth": "1990-01-01",
                     "sex": "female", "nationality": "SV"},
        "legal_basis": {"kind": "remand_order", "issuing_authority": "Juzgado 1", "reference": "R-9", "date": "2026-01-02"},
        "arrested_at": "2026-01-01T10:00:00Z",
        "arrest_place": "San Salvador",
        "complaints": ["beaten at arrest"]
    })
    .to_string()
}

#[test]
fn every_route_the_router_serves_has_an_access_rule_and_the_document_lists_it() {
    let openapi = serde_json::to_value(web::openapi()).unwrap();
    let mut served = Vec::new();
    for (path, item) in openapi["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                served.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    for (method, path) in &served {
        let method: axum::http::Method = method.parse().unwrap();
        assert!(web::access::rule_for(&method, path).is_some(), "{method} {path} has no access rule");
    }
    for (method, path, _) in web::access::RULES {
        assert!(served.iter().any(|(m, p)| m == method && p == path), "rule for {method} {path}, which is not served");
    }
}

#[tokio::test]
async fn each_role_reaches_only_the_routes_its_rule_allows() {
    let api = start().await;
    let fill = |path: &str| path.replace("{code}", "PEQ-A").replace("{cell}", "M1-01").replace("{number}", &api.inside);
    for (method, path, access) in web::access::RULES {
        let url = fill(path);
        let url = if *path == "/api/v1/people" { format!("{url}?facility=PEQ-A") } else { url };
        for role in Role::ALL {
            if *path == "/api/v1/session" && *method == "DELETE" {
                continue; // would only end the token-less session; covered below
            }
            let method: Method = method.parse().unwrap();
            // An empty JSON object: allowed roles get past the rule and fail validation instead.
            let body = (method == Method::POST).then_some("{}");
            let (status, problem) = api.call(Some(role), method.clone(), &url, body).await;
            let allowed = match access {
                web::access::Access::Public | web::access::Access::Staff => true,
                web::access::Access::Roles(roles) => roles.contains(&role),
            };
            if allowed {
                assert!(
                    status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                    "{} should reach {method} {path}: {status} {problem}",
                    role.as_str()
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{} must not reach {method} {path}: {problem}",
                    role.as_str()
                );
                assert_eq!(problem["type"], "urn:custodia:problem:forbidden");
            }
        }
        if *access != web::access::Access::Public {
            let (status, _) = api.call(None, method.parse().unwrap(), &url, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} without credentials");
        }
    }
}

#[tokio::test]
async fn a_person_outside_the_callers_facilities_answers_exactly_like_one_that_does_not_exist() {
    let api = start().await;
    let (status, body) = api.get(Role::Officer, &format!("/api/v1/people/{}", api.inside)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["number"], api.inside.as_str());
    let (hidden, hidden_body) = api.get(Role::Officer, &format!("/api/v1/people/{}", api.outside)).await;
    let (missing, missing_body) = api.get(Role::Officer, "/api/v1/people/SV-1999-999999").await;
    assert_eq!((hidden, missing), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(hidden_body["type"], missing_body["type"]);
    let (status, _) = api.get(Role::Officer, "/api/v1/people?facility=PEQ-M").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.get(Role::Monitor, &format!("/api/v1/people/{}", api.outside)).await;
    assert_eq!(status, StatusCode::OK, "monitors see every facility");
    let (_, facilities) = api.get(Role::Director, "/api/v1/facilities").await;
    let codes: Vec<&str> = facilities.as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["PEQ-A"]);
}

#[tokio::test]
async fn an_admission_replayed_with_the_same_key_creates_nothing_new_and_a_changed_body_is_refused() {
    let api = start().await;
    let send = |body: String, key: &'static str| {
        let request = api
            .client
            .post(format!("{}/api/v1/admissions", api.base))
            .bearer_auth(&api.tokens[&Role::Records])
            .header("idempotency-key", key)
            .header("content-type", "application/json")
            .body(body);
        async move {
            let r = request.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let events = api.audit_count().await;
    let (first, a) = send(admission("PEQ-A", "Quintanilla"), "k-1").await;
    assert_eq!(first, StatusCode::CREATED, "{a}");
    let (again, b) = send(admission("PEQ-A", "Quintanilla"), "k-1").await;
    assert_eq!((again, &b), (StatusCode::CREATED, &a));
    assert_eq!(api.audit_count().await, events + 1, "one admission only");
    let (changed, problem) = send(admission("PEQ-A", "Zelaya"), "k-1").await;
    assert_eq!(changed, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["type"], "urn:custodia:problem:idempotency-key-reused");
    assert_eq!(api.audit_count().await, events + 1);
}

#[tokio::test]
async fn a_movement_with_a_stale_if_match_is_refused() {
    let api = start().await;
    let path = format!("/api/v1/people/{}", api.inside);
    let response =
        api.client.get(format!("{}{path}", api.base)).bearer_auth(&api.tokens[&Role::Officer]).send().await.unwrap();
    let tag = response.headers()["etag"].to_str().unwrap().to_string();
    let out = json!({"kind": "out", "reason": "court"}).to_string();
    let back = json!({"kind": "return"}).to_string();
    let post = |body: String, tag: String| {
        let request = api
            .client
            .post(format!("{}{path}/movements", api.base))
            .bearer_auth(&api.tokens[&Role::Officer])
            .header("if-match", tag)
            .header("content-type", "application/json")
            .body(body);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(post(out, tag.clone()).await, StatusCode::CREATED);
    // A second clerk still holding the old version cannot record on top of the first.
    assert_eq!(post(back.clone(), tag).await, StatusCode::PRECONDITION_FAILED);
    let fresh =
        api.client.get(format!("{}{path}", api.base)).bearer_auth(&api.tokens[&Role::Officer]).send().await.unwrap();
    let tag = fresh.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(post(back, tag).await, StatusCode::CREATED);
}

#[tokio::test]
async fn every_class_of_bad_input_gets_a_problem_and_writes_nothing() {
    let api = start().await;
    let events = api.audit_count().await;
    let movements = format!("/api/v1/people/{}/movements", api.inside);
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        ("/api/v1/admissions", "{not json".into(), StatusCode::BAD_REQUEST, "malformed-json"),
        (&movements, "{\"kind\": \"out\", \"reason\": 7}".into(), StatusCode::UNPROCESSABLE_ENTITY, "validation"),
        (
            &movements,
            "{\"kind\": \"return\", \"colour\": \"red\"}".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (&movements, "{\"kind\": \"place\"}".into(), StatusCode::UNPROCESSABLE_ENTITY, "validation"),
        (
            "/api/v1/admissions",
            admission("PEQ-A", "X").replace("\"female\"", "3"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        ("/api/v1/admissions", "x".repeat(web::MAX_BODY_BYTES + 1), StatusCode::PAYLOAD_TOO_LARGE, "body-too-large"),
    ];
    for (path, body, status, kind) in cases {
        let role = if path.ends_with("admissions") { Role::Records } else { Role::Officer };
        let (got, problem) = api.post(role, path, &body).await;
        assert_eq!(got, status, "{path} {}: {problem}", &body[..body.len().min(60)]);
        assert_eq!(problem["type"], format!("urn:custodia:problem:{kind}"), "{problem}");
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let (_, wrong_type) =
        api.post(Role::Records, "/api/v1/admissions", &admission("PEQ-A", "X").replace("\"female\"", "3")).await;
    assert_eq!(wrong_type["fields"][0]["field"], "identity.sex", "{wrong_type}");
    let (_, no_basis) = api
        .post(
            Role::Records,
            "/api/v1/admissions",
            &admission("PEQ-A", "X").replace("\"legal_basis\"", "\"legal_basis_x\""),
        )
        .await;
    assert!(no_basis["fields"].to_string().contains("legal_basis"), "{no_basis}");
    let (status, problem) = api.get(Role::Monitor, "/api/v1/audit/events?after=%%%").await;
    assert_eq!((status, problem["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("after")));
    let (status, problem) = api.get(Role::Monitor, "/api/v1/audit/events?after=bm90LWEtbnVtYmVy").await;
    assert_eq!((status, problem["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("after")));
    let (status, _) = api.get(Role::Monitor, "/api/v1/audit/events?limit=100000").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(api.audit_count().await, events, "nothing was written");
}

#[tokio::test]
async fn lists_page_with_cursors() {
    let api = start().await;
    let (_, first) = api.get(Role::Monitor, "/api/v1/people?facility=PEQ-A&limit=50").await;
    let next = first["next"].as_str().expect("more than one page");
    let (_, second) = api.get(Role::Monitor, &format!("/api/v1/people?facility=PEQ-A&limit=100&after={next}")).await;
    let numbers = |page: &Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|p| p["number"].as_str().unwrap().to_string()).collect()
    };
    let (a, b) = (numbers(&first), numbers(&second));
    assert_eq!(second["items"].as_array().unwrap().len(), 100, "the small demo holds 150 people there");
    assert!(second["next"].is_null(), "the last page has no cursor");
    assert_eq!(a.len(), 50);
    assert!(a.last() < b.first(), "pages follow each other without overlap");
}

#[tokio::test]
async fn repeated_failed_logins_slow_down_and_never_reveal_whether_the_name_exists() {
    let api = start().await;
    let login = |name: &'static str, password: &'static str| {
        let request = api
            .client
            .post(format!("{}/api/v1/session", api.base))
            .header("content-type", "application/json")
            .body(json!({"name": name, "password": password}).to_string());
        async move {
            let r = request.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap()["type"].clone())
        }
    };
    for name in ["officer", "nobody"] {
        let mut answers = Vec::new();
        for _ in 0..4 {
            answers.push(login(name, "wrong password!").await);
        }
        let statuses: Vec<StatusCode> = answers.iter().map(|a| a.0).collect();
        assert_eq!(
            statuses,
            [
                StatusCode::UNAUTHORIZED,
                StatusCode::UNAUTHORIZED,
                StatusCode::UNAUTHORIZED,
                StatusCode::TOO_MANY_REQUESTS
            ],
            "{name}"
        );
    }
    // Throttled even with the right password until the wait is over.
    assert_eq!(login("officer", "correct horse battery").await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(login("director", "correct horse battery").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_token_revoked_through_this_server_is_refused_at_once() {
    let api = start().await;
    // Checked once, so the server trusts it for the next few seconds.
    assert_eq!(api.get(Role::Officer, "/api/v1/session").await.0, StatusCode::OK);
    // Changing the password revokes every token of the account, this one included.
    let change = json!({"old_password": "correct horse battery", "new_password": "a brand new passphrase"});
    let (status, body) = api.post(Role::Officer, "/api/v1/session/password", &change.to_string()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = api.get(Role::Officer, "/api/v1/session").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "refused at once, not when the cache entry runs out");
    // Other tokens are checked again, and still work.
    assert_eq!(api.get(Role::Records, "/api/v1/session").await.0, StatusCode::OK);
}

#[tokio::test]
async fn failed_logins_throttle_the_address_they_come_from_not_the_owner_elsewhere() {
    let api = start().await;
    let from = |last: u8| Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, last])).build().unwrap();
    let login = |client: &Client, name: &str, password: &str| {
        client
            .post(format!("{}/api/v1/session", api.base))
            .header("content-type", "application/json")
            .body(json!({"name": name, "password": password}).to_string())
            .send()
    };
    let (attacker, owner) = (from(2), from(3));
    for _ in 0..3 {
        assert_eq!(login(&attacker, "records", "wrong password!").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    let right = "correct horse battery";
    assert_eq!(login(&attacker, "records", right).await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(login(&owner, "records", right).await.unwrap().status(), StatusCode::OK, "the owner elsewhere");

    // An address trying many names, one try each, is slowed down whatever the names.
    let scanner = from(4);
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(login(&scanner, &format!("name{i:02}"), "wrong password!").await.unwrap().status());
    }
    let refused = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    assert_eq!(refused, 10, "{statuses:?}");
    assert_eq!(statuses[10..], [StatusCode::TOO_MANY_REQUESTS; 2], "{statuses:?}");
    assert_eq!(login(&owner, "director", right).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn a_browser_session_uses_a_strict_http_only_cookie() {
    let api = start().await;
    let response = api
        .client
        .post(format!("{}/api/v1/session", api.base))
        .header("content-type", "application/json")
        .body(json!({"name": "records", "password": "correct horse battery"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    let me = api.client.get(format!("{}/api/v1/session", api.base)).header("cookie", &pair).send().await.unwrap();
    assert_eq!(me.json::<Value>().await.unwrap()["role"], "records");
    let out = api.client.delete(format!("{}/api/v1/session", api.base)).header("cookie", &pair).send().await.unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let after = api.client.get(format!("{}/api/v1/session", api.base)).header("cookie", &pair).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn reading_a_record_is_logged_and_monitors_see_who_read_what() {
    let api = start().await;
    api.get(Role::Medical, &format!("/api/v1/people/{}", api.inside)).await;
    let (_, reads) = api.get(Role::Monitor, &format!("/api/v1/reads?person={}", api.inside)).await;
    let items = reads["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{reads}");
    assert_eq!(items[0]["reader"], "medical");
    assert_eq!(items[0]["route"], "GET /api/v1/people/{number}");
    let (_, by_user) = api.get(Role::Monitor, "/api/v1/reads?reader=medical").await;
    assert_eq!(by_user["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn medical_entries_are_shown_only_to_the_medical_role_and_analysts_get_aggregates_only() {
    let api = start().await;
    let (status, admitted) = api.post(Role::Records, "/api/v1/admissions", &admission("PEQ-A", "Argueta")).await;
    assert_eq!(status, StatusCode::CREATED, "{admitted}");
    let path = format!("/api/v1/people/{}", admitted["person"].as_str().unwrap());
    let (_, medical) = api.get(Role::Medical, &path).await;
    assert_eq!(medical["medical_tasks"].as_array().map(Vec::len), Some(1), "{medical}");
    let (_, officer) = api.get(Role::Officer, &path).await;
    assert!(officer.get("medical_tasks").is_none(), "{officer}");
    let (status, _) = api.get(Role::Analyst, &path).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, occupancy) = api.get(Role::Analyst, "/api/v1/occupancy").await;
    assert_eq!(status, StatusCode::OK);
    assert!(occupancy["total"]["capacity"]["icrc"].as_u64().is_some());
}

#[tokio::test]
async fn health_and_the_api_description_are_served() {
    let api = start().await;
    for path in ["/healthz", "/readyz"] {
        let r = api.client.get(format!("{}{path}", api.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(r.headers().contains_key("x-request-id"), "{path} carries a request id");
    }
    let doc: Value =
        api.client.get(format!("{}/api/openapi.json", api.base)).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["paths"]["/api/v1/admissions"]["post"].is_object());
    let ui = api.client.get(format!("{}/api/docs/", api.base)).send().await.unwrap();
    assert_eq!(ui.status(), StatusCode::OK);
    assert!(ui.text().await.unwrap().contains("swagger"));
}

#[tokio::test]
async fn people_are_found_by_name_whatever_the_accents_case_and_word_order() {
    let api = start().await;
    let (status, admitted) = api.post(Role::Records, "/api/v1/admissions", &admission("PEQ-A", "Núñez")).await;
    assert_eq!(status, StatusCode::CREATED, "{admitted}");
    let number = admitted["person"].as_str().unwrap();
    for q in ["rosa%20nunez", "NUÑEZ%20Rosa", "nun", "Núñez"] {
        let (status, found) = api.get(Role::Officer, &format!("/api/v1/people?q={q}")).await;
        assert_eq!(status, StatusCode::OK, "{found}");
        let numbers: Vec<&str> =
            found["items"].as_array().unwrap().iter().map(|h| h["number"].as_str().unwrap()).collect();
        assert!(numbers.contains(&number), "{q}: {found}");
    }
    let (_, none) = api.get(Role::Officer, "/api/v1/people?q=rosa%20zzz").await;
    assert!(none["items"].as_array().unwrap().iter().all(|h| h["number"] != number));
    // Staff of another facility do not find the person at all.
    let (status, elsewhere) = api.get(Role::Director, "/api/v1/people?q=nunez").await;
    assert_eq!(status, StatusCode::OK);
    assert!(elsewhere["items"].as_array().unwrap().iter().any(|h| h["number"] == number));
    let (status, _) = api.get(Role::Officer, "/api/v1/people?facility=PEQ-A&q=rosa").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

// ---------------------------------------------------------------------------------------------
// Found in review
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_name_search_neither_lists_nor_points_to_people_outside_the_callers_facilities() {
    let api = start().await;
    let (status, hidden) = api.post(Role::Admin, "/api/v1/admissions", &admission("PEQ-M", "Xiloteco")).await;
    assert_eq!(status, StatusCode::CREATED, "{hidden}");
    let (_, found) = api.get(Role::Officer, "/api/v1/people?q=rosa%20xiloteco&limit=1").await;
    assert_eq!(found["items"].as_array().unwrap().len(), 0, "{found}");
    assert!(found["next"].is_null(), "no cursor that decodes to a hidden person: {found}");
}

#[tokio::test]
async fn readmitting_someone_outside_ones_facilities_answers_not_found() {
    let api = start().await;
    let mut body: Value = serde_json::from_str(&admission("PEQ-A", "Otra")).unwrap();
    body["person"] = json!(api.outside);
    let (status, problem) = api.post(Role::Records, "/api/v1/admissions", &body.to_string()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    assert!(problem.get("fields").is_none(), "no identity comparison for a hidden person");
}

#[tokio::test]
async fn concurrent_retries_with_one_key_admit_once_and_a_key_reused_on_another_record_is_refused() {
    let api = start().await;
    let events = api.audit_count().await;
    let mut sends = Vec::new();
    for _ in 0..8 {
        let request = api
            .client
            .post(format!("{}/api/v1/admissions", api.base))
            .bearer_auth(&api.tokens[&Role::Records])
            .header("idempotency-key", "same")
            .header("content-type", "application/json")
            .body(admission("PEQ-A", "Ayala"));
        sends.push(tokio::spawn(async move { request.send().await.unwrap().status() }));
    }
    for send in sends {
        assert_eq!(send.await.unwrap(), StatusCode::CREATED);
    }
    assert_eq!(api.audit_count().await, events + 1, "eight retries, one admission");
    let out = json!({"kind": "out", "reason": "court"}).to_string();
    let post = |number: String| {
        let request = api
            .client
            .post(format!("{}/api/v1/people/{number}/movements", api.base))
            .bearer_auth(&api.tokens[&Role::Officer])
            .header("idempotency-key", "k-out")
            .header("content-type", "application/json")
            .body(out.clone());
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(post(api.inside.clone()).await, StatusCode::CREATED);
    let (_, page) = api.get(Role::Officer, "/api/v1/people?facility=PEQ-A&limit=2").await;
    let other = page["items"][1]["number"].as_str().unwrap().to_string();
    assert_eq!(post(other).await, StatusCode::UNPROCESSABLE_ENTITY, "same key, another person");
}

#[tokio::test]
async fn two_clerks_holding_the_same_version_cannot_both_record() {
    let api = start().await;
    let path = format!("/api/v1/people/{}", api.inside);
    let read =
        api.client.get(format!("{}{path}", api.base)).bearer_auth(&api.tokens[&Role::Officer]).send().await.unwrap();
    let tag = read.headers()["etag"].to_str().unwrap().to_string();
    let mut sends = Vec::new();
    for cell in ["M1-02", "M1-04", "M2-01", "M2-03"] {
        let request = api
            .client
            .post(format!("{}{path}/movements", api.base))
            .bearer_auth(&api.tokens[&Role::Officer])
            .header("if-match", tag.clone())
            .header("content-type", "application/json")
            .body(json!({"kind": "move", "cell": cell}).to_string());
        sends.push(tokio::spawn(async move { request.send().await.unwrap().status() }));
    }
    let mut statuses = Vec::new();
    for send in sends {
        statuses.push(send.await.unwrap());
    }
    let created = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
    assert_eq!(created, 1, "{statuses:?}");
}

#[tokio::test]
async fn only_the_destinations_staff_receive_a_transfer() {
    let api = start().await;
    let (status, _) = api
        .post(
            Role::Records,
            &format!("/api/v1/people/{}/movements", api.inside),
            &json!({"kind": "transfer", "to": "PEQ-M"}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Only the destination's staff receive: an officer may not at all, and the records officer
    // of the sending facility answers as if the destination did not exist.
    let (status, problem) = api
        .post(
            Role::Officer,
            &format!("/api/v1/people/{}/movements", api.inside),
            &json!({"kind": "receive", "facility": "PEQ-M"}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "officers do not receive: {problem}");
    let (status, problem) = api
        .post(
            Role::Records,
            &format!("/api/v1/people/{}/movements", api.inside),
            &json!({"kind": "receive", "facility": "PEQ-M"}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "PEQ-M is outside the records officer's facilities: {problem}");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_problems_not_server_errors() {
    let api = start().await;
    let head = api.client.head(format!("{}/api/v1/people/{}", api.base, api.inside)).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::UNAUTHORIZED, "HEAD follows GET's rule");
    let (status, problem) = api.get(Role::Monitor, "/api/v1/nothing-here").await;
    assert_eq!((status, problem["type"].as_str()), (StatusCode::NOT_FOUND, Some("urn:custodia:problem:not-found")));
    let (status, problem) = api.call(Some(Role::Admin), Method::PUT, "/api/v1/facilities", Some("{}")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{problem}");
    assert_eq!(problem["type"], "urn:custodia:problem:method-not-allowed");
}

#[tokio::test]
async fn medical_entries_in_the_audit_trail_are_withheld_from_other_roles() {
    let api = start().await;
    api.post(Role::Records, "/api/v1/admissions", &admission("PEQ-A", "Bonilla")).await;
    let (_, page) = api.get(Role::Monitor, "/api/v1/audit/events?limit=500").await;
    let admit = page["items"].as_array().unwrap().iter().rev().find(|e| e["action"] == "person.admit").unwrap();
    assert_eq!(admit["payload"]["complaints"]["withheld"], "medical", "{admit}");
    assert!(!admit.to_string().contains("beaten"));
}

// ---- incidents ----

fn incident(facility: &str, kind: &str, people: Value) -> String {
    json!({
        "facility": facility, "kind": kind, "location": "yard 2", "people": people,
        "staff": ["Sgt. Ramírez"], "description": "reported by the yard officer"
    })
    .to_string()
}

#[tokio::test]
async fn officers_report_incidents_medical_staff_document_injuries_and_only_they_read_the_details() {
    let api = start().await;
    let people = json!([{"person": api.inside, "role": "victim", "injured": true}]);
    let report = incident("PEQ-A", "assault", people);
    let send = |key: &'static str| {
        let request = api
            .client
            .post(format!("{}/api/v1/incidents", api.base))
            .bearer_auth(&api.tokens[&Role::Officer])
            .header("idempotency-key", key)
            .header("content-type", "application/json")
            .body(report.clone());
        async move {
            let r = request.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, recorded) = send("inc-1").await;
    assert_eq!(status, StatusCode::CREATED, "{recorded}");
    let number = recorded["number"].as_str().unwrap().to_string();
    assert!(number.starts_with("INC-PEQ-A-"), "{number}");
    assert_eq!(send("inc-1").await.1, recorded, "a retry with the same key records nothing new");
    let (_, page) = api.get(Role::Records, "/api/v1/incidents?facility=PEQ-A").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");

    let path = format!("/api/v1/incidents/{number}");
    let injury = json!({"person": api.inside, "severity": "serious", "description": "fractured wrist"}).to_string();
    let (status, _) = api.post(Role::Officer, &format!("{path}/injuries"), &injury).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only health care staff document injuries");
    let (status, documented) = api.post(Role::Medical, &format!("{path}/injuries"), &injury).await;
    assert_eq!(status, StatusCode::CREATED, "{documented}");
    assert_eq!(documented["obligations"], 2, "the authority and the family are told of a serious injury");

    let (status, seen) = api.get(Role::Records, &path).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["people"][0]["injured"], true);
    assert_eq!(seen["people"][0]["injury_documented"], true);
    assert!(seen.get("injuries").is_none() && seen.get("obligations").is_none(), "{seen}");
    assert!(!seen.to_string().contains("fractured") && !seen.to_string().contains("serious"), "{seen}");
    let (_, medical) = api.get(Role::Medical, &path).await;
    assert_eq!(medical["injuries"][0]["severity"], "serious", "{medical}");
    assert_eq!(medical["injuries"][0]["description"], "fractured wrist");

    for route in [path.as_str(), "/api/v1/incidents"] {
        let (status, _) = api.get(Role::Analyst, route).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "analysts get aggregates only: {route}");
    }
    let (status, stats) = api.get(Role::Analyst, "/api/v1/statistics/incidents").await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["national"], true);
    assert_eq!(stats["total"]["range"]["incidents"]["assault"], 1, "{}", stats["total"]["range"]);
    assert!(!stats.to_string().contains(api.inside.as_str()), "no personal data in statistics");
    let (status, own) = api.get(Role::Officer, "/api/v1/statistics/incidents?facility=PEQ-M").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{own}");
    let (status, problem) = api.get(Role::Analyst, "/api/v1/statistics/incidents?from=2026-13").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["fields"][0]["field"], "from");
}

#[tokio::test]
async fn an_incident_of_another_facility_answers_like_one_that_does_not_exist() {
    let api = start().await;
    let elsewhere = incident("PEQ-M", "fight", json!([{"person": api.outside, "role": "involved"}]));
    let (status, recorded) = api.post(Role::Admin, "/api/v1/incidents", &elsewhere).await;
    assert_eq!(status, StatusCode::CREATED, "{recorded}");
    let number = recorded["number"].as_str().unwrap();
    let (hidden, hidden_body) = api.get(Role::Officer, &format!("/api/v1/incidents/{number}")).await;
    let (missing, missing_body) = api.get(Role::Officer, "/api/v1/incidents/INC-PEQ-M-2026-999999").await;
    assert_eq!((hidden, missing), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(hidden_body["type"], missing_body["type"]);
    let (_, page) = api.get(Role::Officer, "/api/v1/incidents").await;
    assert!(page["items"].as_array().unwrap().is_empty(), "{page}");
    let (status, _) = api.get(Role::Monitor, &format!("/api/v1/incidents/{number}")).await;
    assert_eq!(status, StatusCode::OK, "monitors see every facility");
    let (status, _) = api.post(Role::Officer, "/api/v1/incidents", &elsewhere).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an officer of PEQ-A cannot report at PEQ-M");
    // Naming someone held elsewhere is refused in the words used for someone unknown.
    let mixed = incident("PEQ-A", "fight", json!([{"person": api.outside, "role": "involved"}]));
    let (status, problem) = api.post(Role::Officer, "/api/v1/incidents", &mixed).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["fields"][0]["field"], "people[0].person", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("is not a person held by PEQ-A"), "{problem}");
}

#[tokio::test]
async fn obligations_are_listed_for_monitors_and_closed_with_evidence_by_directors() {
    let api = start().await;
    let death = incident("PEQ-A", "death", json!([{"person": api.inside, "role": "deceased"}]));
    let (status, recorded) = api.post(Role::Officer, "/api/v1/incidents", &death).await;
    assert_eq!(status, StatusCode::CREATED, "{recorded}");
    assert_eq!(recorded["obligations"], 2);

    let (status, open) = api.get(Role::Monitor, "/api/v1/obligations").await;
    assert_eq!(status, StatusCode::OK, "{open}");
    let items = open["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{open}");
    assert!(items.iter().all(|o| o["incident"] == recorded["number"] && o["overdue"] == false));
    let family = items.iter().find(|o| o["kind"] == "next_of_kin").unwrap();
    assert_eq!((family["person"].as_str(), family["event"].as_str()), (Some(api.inside.as_str()), Some("death")));
    let (_, overdue) = api.get(Role::Monitor, "/api/v1/obligations?state=overdue").await;
    assert!(overdue["items"].as_array().unwrap().is_empty(), "due a day after recording");
    let (status, _) = api.get(Role::Officer, "/api/v1/obligations").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api.get(Role::Monitor, "/api/v1/obligations?state=late").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let id = family["id"].as_str().unwrap();
    let evidence = json!({
        "notified": "María López", "capacity": "mother", "at": Utc::now().to_rfc3339(), "method": "phone",
        "note": "told by the chaplain"
    })
    .to_string();
    let closure = format!("/api/v1/obligations/{id}/closure");
    let (status, _) = api.post(Role::Monitor, &closure, &evidence).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "monitors read and write nothing");
    let (status, closed) = api.post(Role::Director, &closure, &evidence).await;
    assert_eq!(status, StatusCode::CREATED, "{closed}");
    let (status, again) = api.post(Role::Director, &closure, &evidence).await;
    assert_eq!((status, again["rule"].as_str()), (StatusCode::CONFLICT, Some("obligation.closed")), "{again}");

    let (_, open) = api.get(Role::Monitor, "/api/v1/obligations").await;
    assert_eq!(open["items"].as_array().unwrap().len(), 1);
    let (_, all) = api.get(Role::Admin, "/api/v1/obligations?state=all&facility=PEQ-A").await;
    let met = all["items"].as_array().unwrap().iter().find(|o| o["id"] == id).unwrap().clone();
    assert_eq!(met["closure"]["notified"], "María López");
    assert_eq!(met["closure"]["closed_by"], "director");

    let preference = json!({"declines": true, "note": "asked that his family not be told"}).to_string();
    let inside = format!("/api/v1/people/{}/notification-preference", api.inside);
    let (status, set) = api.post(Role::Records, &inside, &preference).await;
    assert_eq!((status, &set["declines"]), (StatusCode::CREATED, &json!(true)), "{set}");
    let outside = format!("/api/v1/people/{}/notification-preference", api.outside);
    let (status, _) = api.post(Role::Records, &outside, &preference).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

// ---- housing ----

/// Someone else in an untried cell of PEQ-A other than the one `inside` occupies.
async fn neighbour(api: &Api) -> String {
    let (_, page) = api.get(Role::Officer, "/api/v1/facilities/PEQ-A/occupants?cell=M1-02").await;
    page["items"][0]["number"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn directors_set_keep_apart_rules_and_a_refused_move_names_the_rule_and_the_other_person() {
    let api = start().await;
    let other = neighbour(&api).await;
    let rule =
        json!({"a": {"person": api.inside}, "b": {"person": other}, "scope": "cell", "reason": "threats in court"})
            .to_string();
    assert_eq!(api.post(Role::Officer, "/api/v1/keep-apart", &rule).await.0, StatusCode::FORBIDDEN);
    let (status, recorded) = api.post(Role::Director, "/api/v1/keep-apart", &rule).await;
    assert_eq!(status, StatusCode::CREATED, "{recorded}");
    let id = recorded["rule"]["id"].as_i64().unwrap();

    let path = format!("/api/v1/people/{other}/movements");
    let (status, problem) = api.post(Role::Officer, &path, &json!({"kind": "move", "cell": "M1-01"}).to_string()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["rule"], "housing.keep_apart");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("rule {id}")) && detail.contains(&api.inside), "{detail}");

    let (_, rules) = api.get(Role::Monitor, "/api/v1/keep-apart").await;
    assert!(rules.as_array().unwrap().iter().any(|r| r["id"] == id && r["in_force"] == true));
    assert_eq!(api.get(Role::Analyst, "/api/v1/keep-apart").await.0, StatusCode::FORBIDDEN);
    let (status, stats) = api.get(Role::Analyst, "/api/v1/statistics/keep-apart").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["naming_people"], 1);
    let (_, housing) = api.get(Role::Records, &format!("/api/v1/people/{}/housing", api.inside)).await;
    assert_eq!(housing["keep_apart"][0]["id"], id);
    let outside = format!("/api/v1/people/{}/housing", api.outside);
    assert_eq!(api.get(Role::Officer, &outside).await.0, StatusCode::NOT_FOUND);

    let end = json!({"reason": "transferred threat"}).to_string();
    assert_eq!(api.post(Role::Director, &format!("/api/v1/keep-apart/{id}/end"), &end).await.0, StatusCode::OK);
    let (status, _) = api.post(Role::Officer, &path, &json!({"kind": "move", "cell": "M1-01"}).to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "the lifted rule no longer applies");
}

#[tokio::test]
async fn a_roll_count_with_a_discrepancy_cannot_clear_until_it_is_resolved() {
    let api = start().await;
    let (status, count) =
        api.post(Role::Officer, "/api/v1/counts", &json!({"facility": "PEQ-A", "unit": "M1"}).to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{count}");
    let id = count["id"].as_i64().unwrap();
    // `inside` was found in M1-02 and sent back: one short in M1-01, one over in M1-02.
    let counts: Vec<Value> = count["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let shift = match c["cell"].as_str().unwrap() {
                "M1-01" => -1,
                "M1-02" => 1,
                _ => 0,
            };
            json!({"cell": c["cell"], "counted": c["expected"].as_i64().unwrap() + shift})
        })
        .collect();
    let entries = json!({ "counts": counts }).to_string();
    let (status, entered) = api.post(Role::Officer, &format!("/api/v1/counts/{id}/entries"), &entries).await;
    assert_eq!(status, StatusCode::OK, "{entered}");
    assert_eq!(entered["outstanding"], json!(["M1-01", "M1-02"]));
    let clearance = format!("/api/v1/counts/{id}/clearance");
    let (status, problem) = api.post(Role::Officer, &clearance, "").await;
    assert_eq!((status, problem["rule"].as_str()), (StatusCode::CONFLICT, Some("count.unresolved")));
    let (_, expected) = api.get(Role::Officer, &format!("/api/v1/counts/{id}/cells/M1-01/expected")).await;
    assert!(expected.as_array().unwrap().iter().any(|o| o["number"] == api.inside.as_str()));

    let explanation = json!({"kind": "found_elsewhere", "cell": "M1-02", "returned": true});
    let found = json!({"person": api.inside, "explanation": explanation}).to_string();
    assert_eq!(
        api.post(Role::Monitor, &format!("/api/v1/counts/{id}/resolutions"), &found).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, resolved) = api.post(Role::Officer, &format!("/api/v1/counts/{id}/resolutions"), &found).await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    let (status, cleared) = api.post(Role::Officer, &clearance, "").await;
    assert_eq!((status, cleared["state"].as_str()), (StatusCode::OK, Some("cleared")));
    let (_, history) = api.get(Role::Monitor, "/api/v1/counts?facility=PEQ-A").await;
    assert_eq!(history["items"][0]["id"], id);
}

#[tokio::test]
async fn an_allocation_dry_run_shows_the_plan_and_why_not_and_writes_nothing() {
    let api = start().await;
    // A woman admitted to a facility whose units are designated for men has no legal cell there.
    let (status, admitted) = api.post(Role::Records, "/api/v1/admissions", &admission("PEQ-A", "Linares")).await;
    assert_eq!(status, StatusCode::CREATED, "{admitted}");
    let before = api.audit_count().await;
    let (status, plan) =
        api.post(Role::Officer, "/api/v1/facilities/PEQ-A/allocation", &json!({"dry_run": true}).to_string()).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(api.audit_count().await, before, "a dry run writes nothing");
    let unplaced = plan["unplaced"].as_array().unwrap();
    let her = unplaced.iter().find(|u| u["person"] == admitted["person"]).expect("she is listed");
    assert_eq!(her["rule"], "housing.designation", "{her}");
    assert_eq!(api.post(Role::Monitor, "/api/v1/facilities/PEQ-A/allocation", "{}").await.0, StatusCode::FORBIDDEN);
    let other = api.post(Role::Officer, "/api/v1/facilities/PEQ-M/allocation", "{}").await.0;
    assert_eq!(other, StatusCode::NOT_FOUND, "another facility is out of scope");
}

// ---- sentences ----

#[tokio::test]
async fn sentence_release_dates_are_calculated_for_records_staff_with_a_trace_and_bad_input_names_the_field() {
    let api = start().await;
    let example = json!({
        "sentences": [{"id": "A", "start": "2024-03-01", "years": 2, "months": 0, "days": 0},
                      {"id": "B", "months": 6, "consecutive_to": "A"}],
        "remand": [{"from": "2024-01-10", "to": "2024-02-29", "counts_toward": ["A"]}]
    })
    .to_string();
    let path = "/api/v1/sentences/calculation";
    let before = api.audit_count().await;
    let (status, answer) = api.post(Role::Records, path, &example).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        json!({
            "release_date": "2026-07-08",
            "expiry": {"A": "2026-01-08", "B": "2026-07-08"},
            "trace": [
                "A: starts 2024-03-01; + 2 years = 2026-03-01; − 1 day = 2026-02-28",
                "A: 51 days on remand (2024-01-10 to 2024-02-29) → expires 2026-01-08",
                "B: consecutive to A, starts 2026-01-09; + 6 months = 2026-07-09; − 1 day = 2026-07-08",
                "Release date 2026-07-08: the latest expiry (B)"
            ]
        })
    );
    assert_eq!(api.audit_count().await, before, "a calculation stores nothing");
    assert_eq!(api.post(Role::Monitor, path, &example).await.0, StatusCode::OK);

    let (status, problem) = api.post(Role::Officer, path, &example).await;
    assert_eq!((status, problem["type"].as_str()), (StatusCode::FORBIDDEN, Some("urn:custodia:problem:forbidden")));

    let unknown = example.replace("\"consecutive_to\":\"A\"", "\"consecutive_to\":\"Z\"");
    assert_ne!(unknown, example);
    let (status, problem) = api.post(Role::Records, path, &unknown).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["fields"][0]["field"], "sentences[1].consecutive_to", "{problem}");
    let typo = json!({"sentences": [{"id": "A", "start": "2024-03-01", "yeras": 2}]}).to_string();
    let (status, problem) = api.post(Role::Records, path, &typo).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["fields"][0]["field"], "sentences[0].yeras", "{problem}");
}

// ---- identity ----

/// The intake identity of a person on record, respelt as an officer might type it.
async fn respelt_identity(api: &Api, number: &str) -> Value {
    let (status, person) = api.get(Role::Admin, &format!("/api/v1/people/{number}")).await;
    assert_eq!(status, StatusCode::OK, "{person}");
    let fold = |v: &Value| v.as_str().unwrap_or_default().to_uppercase().replace('Á', "A").replace('É', "E");
    json!({"identity": {
        "given_names": fold(&person["given_names"]), "first_surname": fold(&person["first_surname"]),
        "date_of_birth": person["date_of_birth"], "sex": person["sex"], "nationality": person["nationality"]
    }})
}

#[tokio::test]
async fn intake_candidates_are_for_records_staff_and_never_list_people_outside_their_facilities() {
    let api = start().await;
    let inside = respelt_identity(&api, &api.inside).await.to_string();
    let (status, found) = api.post(Role::Records, "/api/v1/identity/candidates", &inside).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let first = &found[0];
    assert_eq!(first["number"], api.inside.as_str(), "{found}");
    assert!(first["score"].as_f64().unwrap() >= 0.5 && !first["reasons"].as_array().unwrap().is_empty(), "{first}");
    assert_eq!(first["facilities"], json!(["PEQ-A"]));

    let outside = respelt_identity(&api, &api.outside).await.to_string();
    let (status, hidden) = api.post(Role::Records, "/api/v1/identity/candidates", &outside).await;
    assert_eq!(status, StatusCode::OK, "{hidden}");
    assert!(hidden.as_array().unwrap().iter().all(|c| c["number"] != api.outside.as_str()), "{hidden}");
    let (_, national) = api.post(Role::Admin, "/api/v1/identity/candidates", &outside).await;
    assert_eq!(national[0]["number"], api.outside.as_str(), "{national}");

    for role in [Role::Officer, Role::Monitor, Role::Analyst, Role::Medical] {
        assert_eq!(api.post(role, "/api/v1/identity/candidates", &inside).await.0, StatusCode::FORBIDDEN);
    }
    let (status, problem) = api.post(Role::Records, "/api/v1/identity/candidates", r#"{"identity": {}}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
}

#[tokio::test]
async fn records_staff_merge_and_unmerge_with_reasons_and_the_lineage_is_kept() {
    let api = start().await;
    let mut numbers = Vec::new();
    for surname in ["Menjívar", "Menjivar"] {
        let (status, admitted) = api.post(Role::Records, "/api/v1/admissions", &admission("PEQ-A", surname)).await;
        assert_eq!(status, StatusCode::CREATED, "{admitted}");
        numbers.push(admitted["person"].as_str().unwrap().to_string());
    }
    let (older, newer) = (&numbers[0], &numbers[1]);
    let merge = |into: &str| json!({"into": into, "reason": "same fingerprints"}).to_string();
    let path = format!("/api/v1/people/{older}/merge");
    let (status, problem) = api.post(Role::Records, &path, &merge(newer)).await;
    assert_eq!((status, problem["rule"].as_str()), (StatusCode::CONFLICT, Some("identity.both_in_custody")));
    let release = json!({"kind": "release", "reason": "bail"}).to_string();
    let (status, released) = api.post(Role::Records, &format!("/api/v1/people/{older}/movements"), &release).await;
    assert_eq!(status, StatusCode::CREATED, "{released}");

    assert_eq!(api.post(Role::Officer, &path, &merge(newer)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(api.post(Role::Records, &path, &merge(&api.outside)).await.0, StatusCode::NOT_FOUND);
    let events = api.audit_count().await;
    let (status, merged) = api.post(Role::Records, &path, &merge(newer)).await;
    assert_eq!(status, StatusCode::CREATED, "{merged}");
    assert_eq!(api.audit_count().await, events + 1);

    let (status, lineage) = api.get(Role::Officer, &format!("/api/v1/people/{older}/lineage")).await;
    assert_eq!(status, StatusCode::OK, "{lineage}");
    assert_eq!(lineage["merged_into"], newer.as_str());
    assert_eq!(lineage["history"][0]["reason"], "same fingerprints");
    let intake = json!({"identity": {"given_names": "Rosa", "first_surname": "Menjibar", "date_of_birth": "1990-01-01",
                                     "sex": "female", "nationality": "SV"}})
    .to_string();
    let (_, found) = api.post(Role::Records, "/api/v1/identity/candidates", &intake).await;
    let listed: Vec<&str> = found.as_array().unwrap().iter().map(|c| c["number"].as_str().unwrap()).collect();
    assert!(listed.contains(&newer.as_str()) && !listed.contains(&older.as_str()), "{found}");

    let unmerge = format!("/api/v1/people/{older}/unmerge");
    let (status, undone) = api.post(Role::Director, &unmerge, &json!({"reason": "twins"}).to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{undone}");
    let (status, problem) = api.post(Role::Director, &unmerge, &json!({"reason": "again"}).to_string()).await;
    assert_eq!((status, problem["rule"].as_str()), (StatusCode::CONFLICT, Some("identity.not_merged")));
    let (_, lineage) = api.get(Role::Monitor, &format!("/api/v1/people/{newer}/lineage")).await;
    assert_eq!(lineage["history"][0]["unmerged"]["reason"], "twins", "{lineage}");
    assert!(lineage["merged_from"].as_array().unwrap().is_empty());
    let hidden = format!("/api/v1/people/{}/lineage", api.outside);
    assert_eq!(api.get(Role::Officer, &hidden).await.0, StatusCode::NOT_FOUND);
    let (_, verification) = api.get(Role::Monitor, "/api/v1/audit/verification").await;
    assert!(verification["broken"].is_null(), "{verification}");
}

// ---- legal safeguards ----

#[tokio::test]
async fn a_transfer_a_court_forbade_is_refused_until_a_second_person_approves_an_override() {
    let api = start().await;
    let holds = format!("/api/v1/people/{}/holds", api.inside);
    let hold = json!({"kind": "do_not_transfer", "authority": "Juzgado 3", "order_reference": "OR-77"}).to_string();
    assert_eq!(api.post(Role::Officer, &holds, &hold).await.0, StatusCode::FORBIDDEN);
    let (status, recorded) = api.post(Role::Records, &holds, &hold).await;
    assert_eq!(status, StatusCode::CREATED, "{recorded}");
    let id = recorded["id"].as_i64().unwrap();

    let movements = format!("/api/v1/people/{}/movements", api.inside);
    let transfer = json!({"kind": "transfer", "to": "PEQ-M"}).to_string();
    let (status, problem) = api.post(Role::Records, &movements, &transfer).await;
    assert_eq!((status, problem["rule"].as_str()), (StatusCode::CONFLICT, Some("legal.hold")), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("OR-77"), "{problem}");

    let ask = json!({"movement": "transfer", "reason": "medical treatment only available there"}).to_string();
    let (status, asked) = api.post(Role::Director, &format!("/api/v1/holds/{id}/overrides"), &ask).await;
    assert_eq!(status, StatusCode::CREATED, "{asked}");
    let approval = format!("/api/v1/hold-overrides/{}/approval", asked["id"]);
    assert_eq!(api.post(Role::Records, &approval, "").await.0, StatusCode::FORBIDDEN, "directors approve");
    let (status, problem) = api.post(Role::Director, &approval, "").await;
    assert_eq!((status, problem["rule"].as_str()), (StatusCode::CONFLICT, Some("legal.override_same_person")));
    assert_eq!(api.post(Role::Admin, &approval, "").await.0, StatusCode::OK);
    assert_eq!(api.post(Role::Records, &movements, &transfer).await.0, StatusCode::CREATED);

    let (_, listed) = api.get(Role::Monitor, "/api/v1/holds").await;
    let seen = listed.as_array().unwrap().iter().find(|h| h["id"] == id).expect("monitors see the hold");
    assert!(seen["overrides"][0]["used_by_movement"].is_i64(), "{seen}");
}

#[tokio::test]
async fn alerts_and_the_legal_record_follow_the_callers_scope() {
    let api = start().await;
    let (status, legal) = api.get(Role::Records, &format!("/api/v1/people/{}/legal", api.inside)).await;
    assert_eq!(status, StatusCode::OK, "{legal}");
    assert_eq!(legal["legal_status"], "untried");
    let deadline = legal["pretrial"]["deadline"].as_str().expect("an untried person has a deadline").to_string();
    let outside = format!("/api/v1/people/{}/legal", api.outside);
    assert_eq!(api.get(Role::Records, &outside).await.0, StatusCode::NOT_FOUND);
    // Well after every deadline of the demo, the person appears as held past it.
    let (status, alerts) = api.get(Role::Officer, "/api/v1/alerts?at=2040-01-01T12:00:00Z&kind=pretrial_overdue").await;
    assert_eq!(status, StatusCode::OK);
    let mine = alerts.as_array().unwrap().iter().find(|a| a["person"] == api.inside.as_str()).expect("listed");
    assert_eq!(mine["date"], deadline.as_str());
    assert!(alerts.as_array().unwrap().iter().all(|a| a["facility"] == "PEQ-A"), "only the caller's facility");
    assert_eq!(api.get(Role::Analyst, "/api/v1/alerts").await.0, StatusCode::FORBIDDEN);
    let (status, sv) = api.get(Role::Analyst, "/api/v1/rule-sets/sv").await;
    assert_eq!((status, sv["periods"].as_array().map(Vec::len)), (StatusCode::OK, Some(2)));
}

#[tokio::test]
async fn staff_of_one_facility_never_learn_who_a_rule_names_elsewhere() {
    let api = start().await;
    let rule =
        json!({"a": {"person": api.inside}, "b": {"person": api.outside}, "scope": "facility", "reason": "witness"});
    let (status, recorded) = api.post(Role::Admin, "/api/v1/keep-apart", &rule.to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{recorded}");
    let id = recorded["rule"]["id"].as_i64().unwrap();
    let (_, rules) = api.get(Role::Officer, "/api/v1/keep-apart").await;
    let seen = rules.as_array().unwrap().iter().find(|r| r["id"] == id).expect("the rule concerns someone here");
    assert_eq!(seen["b"]["person"], "(outside your facilities)");
    let (_, housing) = api.get(Role::Records, &format!("/api/v1/people/{}/housing", api.inside)).await;
    assert_eq!(housing["keep_apart"][0]["b"]["person"], "(outside your facilities)");
    let end = json!({"reason": "trial over"}).to_string();
    assert_eq!(api.post(Role::Director, &format!("/api/v1/keep-apart/{id}/end"), &end).await.0, StatusCode::NOT_FOUND);
    let groups = json!({"a": {"group": "X"}, "b": {"group": "Y"}, "scope": "cell", "reason": "rivals"}).to_string();
    assert_eq!(api.post(Role::Director, "/api/v1/keep-apart", &groups).await.0, StatusCode::FORBIDDEN);
    // A transfer to where the other person is held is refused without naming them or the rule's parties.
    let path = format!("/api/v1/people/{}/movements", api.inside);
    let (status, problem) =
        api.post(Role::Records, &path, &json!({"kind": "transfer", "to": "PEQ-M"}).to_string()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("rule {id}")) && !detail.contains(&api.outside), "{detail}");
    assert!(!detail.contains("witness"), "nor the reason, which may say who: {detail}");
}

/// Every route that takes a person number, in the path or the body, answers a person held in
/// another facility exactly as a number that does not exist: same status, same body.
#[tokio::test]
async fn every_route_naming_a_person_answers_one_held_elsewhere_as_one_that_does_not_exist() {
    let api = start().await;
    let missing = "SV-2026-999999";
    assert_eq!(api.outside.len(), missing.len(), "numbers of one length, so no body differs by padding alone");
    let group = "MS13";
    let (status, _) =
        api.post(Role::Admin, "/api/v1/groups", &json!({"code": group, "name": "Mara Salvatrucha"}).to_string()).await;
    assert_eq!(status, StatusCode::CREATED);
    let here = incident("PEQ-A", "fight", json!([{"person": api.inside, "role": "involved"}]));
    let (status, recorded) = api.post(Role::Officer, "/api/v1/incidents", &here).await;
    assert_eq!(status, StatusCode::CREATED, "{recorded}");
    let incident_number = recorded["number"].as_str().unwrap().to_string();
    let started = (Utc::now() - Duration::hours(1)).to_rfc3339();
    let sentences =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/sentence-example.json")).unwrap();
    let mut readmission: Value = serde_json::from_str(&admission("PEQ-A", "Otra")).unwrap();
    readmission["person"] = json!("{n}");

    // (role, method, path, body); `{n}` is the person number tried.
    let mut routes: Vec<(Role, Method, String, Option<String>)> = Vec::new();
    for read in ["", "/housing", "/legal", "/lineage", "/timeline", "/whereabouts"] {
        routes.push((Role::Records, Method::GET, format!("/api/v1/people/{{n}}{read}"), None));
    }
    let writes: Vec<(Role, &str, Value)> = vec![
        (Role::Records, "affiliations", json!({"group": group, "source": "tattoo", "assessed_on": "2026-05-01"})),
        (Role::Records, "charges", json!({"offence": "robo", "seriousness": "serious"})),
        (
            Role::Records,
            "classification",
            json!({"legal_status": "untried", "regime": "criminal", "security_level": "medium"}),
        ),
        (Role::Records, "court-records", json!({"kind": "hearing", "on": "2026-07-01"})),
        (
            Role::Records,
            "holds",
            json!({"kind": "produce_at_court", "on_date": "2026-07-01", "authority": "Juzgado", "order_reference": "X-1"}),
        ),
        (
            Role::Records,
            "legal-visits",
            json!({"counsel": "Lic. Pérez", "capacity": "defence lawyer", "started_at": started, "minutes": 30}),
        ),
        (Role::Records, "merge", json!({"into": api.inside, "reason": "same fingerprints"})),
        (Role::Records, "unmerge", json!({"reason": "fingerprints differ"})),
        (Role::Officer, "movements", json!({"kind": "move", "cell": "M1-02"})),
        (Role::Records, "notification-preference", json!({"declines": true})),
        (Role::Records, "sentences", serde_json::from_str(&sentences).unwrap()),
    ];
    for (role, route, body) in writes {
        routes.push((role, Method::POST, format!("/api/v1/people/{{n}}/{route}"), Some(body.to_string())));
    }
    let bodies: Vec<(Role, String, Value)> = vec![
        (Role::Records, "/api/v1/admissions".into(), readmission),
        (
            Role::Officer,
            "/api/v1/incidents".into(),
            serde_json::from_str(&incident("PEQ-A", "fight", json!([{"person": "{n}", "role": "involved"}]))).unwrap(),
        ),
        (
            Role::Medical,
            format!("/api/v1/incidents/{incident_number}/injuries"),
            json!({"person": "{n}", "severity": "minor", "description": "cut"}),
        ),
        (
            Role::Director,
            "/api/v1/keep-apart".into(),
            json!({"a": {"person": api.inside}, "b": {"person": "{n}"}, "scope": "facility", "reason": "witness"}),
        ),
        (
            Role::Records,
            format!("/api/v1/people/{}/merge", api.inside),
            json!({"into": "{n}", "reason": "same fingerprints"}),
        ),
        (Role::Director, "/api/v1/facilities/PEQ-A/allocation".into(), json!({"people": ["{n}"], "dry_run": true})),
    ];
    for (role, path, body) in bodies {
        routes.push((role, Method::POST, path, Some(body.to_string())));
    }

    for (role, method, path, body) in routes {
        let mut answers = Vec::new();
        for number in [api.outside.as_str(), missing] {
            let path = path.replace("{n}", number);
            let body = body.as_ref().map(|b| b.replace("{n}", number));
            let (status, answer) = api.call(Some(role), method.clone(), &path, body.as_deref()).await;
            assert_ne!(status, StatusCode::FORBIDDEN, "{method} {path}: pick a role the route allows");
            answers.push((status, answer.to_string().replace(number, "{n}")));
        }
        assert_eq!(answers[0], answers[1], "{method} {path}: held elsewhere (left) vs does not exist (right)");
    }
}

#[tokio::test]
async fn unbounded_input_is_refused_with_422_naming_the_field_and_a_long_search_is_answered() {
    let api = start().await;
    let mut body: Value = serde_json::from_str(&admission("PEQ-A", "Larga")).unwrap();
    body["identity"]["given_names"] = json!("x".repeat(100_000));
    let (status, problem) = api.post(Role::Records, "/api/v1/admissions", &body.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["fields"][0]["field"], "identity.given_names", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("the limit is 100"), "{problem}");

    let words = vec!["rosa"; 995].join("%20");
    let (status, problem) = api.get(Role::Records, &format!("/api/v1/people?q={words}")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["fields"][0]["field"], "q", "{problem}");
}

/// A session cookie for a role, as a browser would hold it after logging in.
async fn session_cookie(api: &Api, role: Role) -> String {
    let response = api
        .client
        .post(format!("{}/api/v1/session", api.base))
        .header("content-type", "application/json")
        .body(json!({"name": role.as_str(), "password": "correct horse battery"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn the_api_takes_only_json_and_refuses_writes_a_page_on_another_site_sends_with_the_cookie() {
    let api = start().await;
    let cookie = session_cookie(&api, Role::Records).await;
    let url = format!("{}/api/v1/admissions", api.base);
    let events = api.audit_count().await;
    let send =
        |kind: Option<&'static str>, auth: (&'static str, String), extra: Option<(&'static str, &'static str)>| {
            let mut request = api.client.post(&url).header(auth.0, auth.1).body(admission("PEQ-A", "Cañas"));
            if let Some(kind) = kind {
                request = request.header("content-type", kind);
            }
            if let Some((name, value)) = extra {
                request = request.header(name, value);
            }
            async move {
                let r = request.send().await.unwrap();
                let kind = r.headers()["content-type"].to_str().unwrap().to_string();
                (r.status(), kind, r.json::<Value>().await.unwrap())
            }
        };
    let with_cookie = || ("cookie", cookie.clone());
    let with_token = || ("authorization", format!("Bearer {}", api.tokens[&Role::Records]));
    // What a form or a `fetch` without preflight on another site can send: not JSON.
    for kind in [Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data"), None] {
        let (status, media, problem) = send(kind, with_cookie(), None).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{kind:?}: {problem}");
        assert_eq!(media, "application/problem+json");
        assert!(problem["detail"].as_str().unwrap().contains("application/json"), "{problem}");
    }
    // JSON with the cookie, but from another site.
    for header in [("origin", "https://evil.example"), ("origin", "null"), ("sec-fetch-site", "cross-site")] {
        let (status, _, problem) = send(Some("application/json"), with_cookie(), Some(header)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{header:?}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains("session cookie"), "{problem}");
    }
    assert_eq!(api.audit_count().await, events, "nothing refused was written");
    // From this site with the cookie, and with a bearer token from anywhere: admitted.
    let here = api.base.clone().leak() as &'static str;
    let (status, _, _) = send(Some("application/json"), with_cookie(), Some(("origin", here))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, answer) =
        send(Some("application/json; charset=utf-8"), with_token(), Some(("origin", "https://evil.example"))).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    // A token client still has to send JSON as JSON.
    let (status, _, _) = send(Some("text/plain"), with_token(), None).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

/// The reads of a person's record a monitor sees: (reader, route) each.
async fn reads_of(api: &Api, person: &str) -> Vec<(String, String)> {
    let (_, page) = api.get(Role::Monitor, &format!("/api/v1/reads?person={person}&limit=500")).await;
    let items = page["items"].as_array().unwrap().iter();
    items.map(|r| (r["reader"].as_str().unwrap().to_string(), r["route"].as_str().unwrap().to_string())).collect()
}

/// A page of the web interface with a session cookie: status and HTML.
async fn page(api: &Api, cookie: &str, path: &str) -> (StatusCode, String, reqwest::header::HeaderMap) {
    let answer = api.client.get(format!("{}{path}", api.base)).header("cookie", cookie).send().await.unwrap();
    let (status, headers) = (answer.status(), answer.headers().clone());
    (status, answer.text().await.unwrap(), headers)
}

#[tokio::test]
async fn an_incident_a_search_and_a_list_that_show_names_are_logged_as_reads_of_each_person() {
    let api = start().await;
    let report = incident("PEQ-A", "assault", json!([{"person": api.inside, "role": "victim"}]));
    let (status, recorded) = api.post(Role::Officer, "/api/v1/incidents", &report).await;
    assert_eq!(status, StatusCode::CREATED, "{recorded}");
    let number = recorded["number"].as_str().unwrap();
    assert!(reads_of(&api, &api.inside).await.is_empty(), "recording is not reading");

    assert_eq!(api.get(Role::Officer, &format!("/api/v1/incidents/{number}")).await.0, StatusCode::OK);
    let cookie = session_cookie(&api, Role::Director).await;
    assert_eq!(page(&api, &cookie, &format!("/incidents/{number}")).await.0, StatusCode::OK);
    let reads = reads_of(&api, &api.inside).await;
    assert!(reads.contains(&("officer".into(), "GET /api/v1/incidents/{number}".into())), "{reads:?}");
    assert!(reads.contains(&("director".into(), "GET /incidents/{number}".into())), "{reads:?}");

    // A list by facility and a search by name show names beside numbers: each person shown is read.
    let (_, held) = api.get(Role::Records, "/api/v1/people?facility=PEQ-A&limit=3").await;
    let shown: Vec<&str> = held["items"].as_array().unwrap().iter().map(|o| o["number"].as_str().unwrap()).collect();
    assert_eq!(shown.len(), 3);
    for number in &shown {
        assert!(reads_of(&api, number).await.contains(&("records".into(), "GET /api/v1/people".into())), "{number}");
    }
    let (_, all) = api.get(Role::Officer, "/api/v1/people?facility=PEQ-A&limit=500").await;
    let inside = all["items"].as_array().unwrap().iter().find(|o| o["number"] == api.inside.as_str()).unwrap();
    let surname = inside["name"].as_str().unwrap().split(' ').next_back().unwrap().to_string();
    let (_, found) = api.get(Role::Medical, &format!("/api/v1/people?q={surname}")).await;
    let found = found["items"].as_array().unwrap();
    assert!(!found.is_empty());
    for hit in found {
        let reads = reads_of(&api, hit["number"].as_str().unwrap()).await;
        assert!(reads.contains(&("medical".into(), "GET /api/v1/people".into())), "{hit}");
    }
    let (_, csv, _) = page(&api, &cookie, &format!("/search?q={surname}&format=csv")).await;
    assert!(csv.contains(&api.inside), "{csv}");
    assert!(reads_of(&api, &api.inside).await.contains(&("director".into(), "GET /search?format=csv".into())));
}

#[tokio::test]
async fn smaller_holes_bad_ids_and_parameters_repeated_keys_empty_counts_and_caching() {
    let api = start().await;
    // A path id that is not a number: a problem document naming it, like every other refusal.
    let answer = api.client.get(format!("{}/api/v1/counts/abc", api.base)).bearer_auth(&api.tokens[&Role::Officer]);
    let answer = answer.send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert_eq!(answer.headers()["content-type"], "application/problem+json");
    assert!(answer.json::<Value>().await.unwrap()["detail"].as_str().unwrap().contains("abc"));
    // The parameter refused is the one named.
    let (status, problem) = api.get(Role::Records, "/api/v1/family-notices?since=bad").await;
    assert_eq!((status, problem["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("since")));
    // limit=0 and limit=-1: the same kind of answer, naming `limit`.
    for limit in ["0", "-1", "x"] {
        let (status, problem) = api.get(Role::Monitor, &format!("/api/v1/audit/events?limit={limit}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{limit}: {problem}");
        assert_eq!(problem["fields"][0]["field"], "limit", "{limit}");
    }
    // A key given twice, at the top or inside: refused by name, nothing written.
    let events = api.audit_count().await;
    let body = admission("PEQ-A", "Duarte");
    let twice = body.replacen("{", "{\"facility\": \"PEQ-M\", ", 1);
    let (status, problem) = api.post(Role::Admin, "/api/v1/admissions", &twice).await;
    assert_eq!((status, problem["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("facility")));
    let inner = body.replacen("\"sex\":\"female\"", "\"sex\":\"female\",\"sex\":\"male\"", 1);
    assert_ne!(inner, body);
    let (status, problem) = api.post(Role::Records, "/api/v1/admissions", &inner).await;
    assert_eq!(
        (status, problem["fields"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("identity.sex")),
        "{problem}"
    );
    let movement = r#"{"kind": "move", "cell": "M1-02", "cell": "M1-04"}"#;
    let (status, problem) =
        api.post(Role::Officer, &format!("/api/v1/people/{}/movements", api.inside), movement).await;
    assert_eq!((status, problem["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("cell")));
    // An entry that counts nothing is refused and leaves no audit event.
    let (_, count) =
        api.post(Role::Officer, "/api/v1/counts", &json!({"facility": "PEQ-A", "unit": "M1"}).to_string()).await;
    let events = events + 1;
    assert_eq!(api.audit_count().await, events, "only the count was started");
    let entries = format!("/api/v1/counts/{}/entries", count["id"]);
    let (status, problem) = api.post(Role::Officer, &entries, r#"{"counts": []}"#).await;
    assert_eq!((status, problem["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("counts")));
    assert_eq!(api.audit_count().await, events, "nothing written");
    // No cache keeps an answer of the API, nor a page that shows people.
    let answer = api.client.get(format!("{}/api/v1/people/{}", api.base, api.inside));
    let answer = answer.bearer_auth(&api.tokens[&Role::Officer]).send().await.unwrap();
    assert_eq!(answer.headers()["cache-control"], "no-store");
    let cookie = session_cookie(&api, Role::Officer).await;
    let (status, _, headers) = page(&api, &cookie, &format!("/people/{}", api.inside)).await;
    assert_eq!((status, &headers["cache-control"]), (StatusCode::OK, &"no-store".parse().unwrap()));
    // A 401 says how to authenticate.
    let answer = api.client.get(format!("{}/api/v1/people", api.base)).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(answer.headers()["www-authenticate"], "Bearer realm=\"custodia\"");
    assert_eq!(answer.headers()["cache-control"], "no-store");
}

/// The form token of a page.
fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

#[tokio::test]
async fn a_count_form_with_one_bad_value_comes_back_with_every_value_typed_and_the_bad_one_marked() {
    let api = start().await;
    let (_, count) =
        api.post(Role::Officer, "/api/v1/counts", &json!({"facility": "PEQ-A", "unit": "M1"}).to_string()).await;
    let id = count["id"].as_i64().unwrap();
    let cookie = session_cookie(&api, Role::Officer).await;
    let (_, html, _) = page(&api, &cookie, &format!("/counts/{id}")).await;
    let events = api.audit_count().await;
    let form = [("csrf", csrf_of(&html)), ("cell:M1-01", "7".into()), ("cell:M1-02", "two".into())];
    let answer = api.client.post(format!("{}/counts/{id}/entries", api.base)).header("cookie", &cookie).form(&form);
    let answer = answer.send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = answer.text().await.unwrap();
    let input = |cell: &str| {
        let at = html.find(&format!("name=\"cell:{cell}\"")).unwrap();
        html[at..at + html[at..].find('>').unwrap()].to_string()
    };
    assert!(input("M1-01").contains("value=\"7\"") && !input("M1-01").contains("aria-invalid"), "{}", input("M1-01"));
    assert!(input("M1-02").contains("value=\"two\"") && input("M1-02").contains("aria-invalid=\"true\""));
    assert!(html.contains("data-testid=\"count-problem-M1-02\">`two` is not a number of people"), "{html}");
    assert_eq!(api.audit_count().await, events, "nothing saved");
}

#[tokio::test]
async fn the_audit_csv_has_the_whole_range_asked_for_not_the_page_shown() {
    let api = start().await;
    let cookie = session_cookie(&api, Role::Monitor).await;
    let events = api.audit_count().await;
    assert!(events > 300, "the demo has more events than a page shows: {events}");
    let (status, csv, headers) = page(&api, &cookie, "/audit?format=csv").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "seq,at,actor,action,subject,hash");
    assert_eq!(lines.len(), events + 1, "every event of the chain");
    let seqs: Vec<&str> = lines[1..].iter().map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!((seqs[0], seqs[events - 1]), ("1", events.to_string().as_str()));
    let (_, csv, _) = page(&api, &cookie, "/audit?format=csv&from=5&to=250").await;
    let seqs: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(seqs.len(), 246);
    assert_eq!((seqs[0], seqs[245]), ("5", "250"));
}

/// A validator for one schema of the served document, its `$ref`s resolved within the document.
fn validator_in(document: &Value, schema: &Value) -> jsonschema::Validator {
    let mut root = schema.clone();
    root["components"] = document["components"].clone();
    jsonschema::options().with_draft(jsonschema::Draft::Draft202012).build(&root).unwrap()
}

fn violations(validator: &jsonschema::Validator, value: &Value) -> Vec<String> {
    validator.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

#[test]
fn the_documented_examples_fit_the_request_schemas_of_their_routes_in_the_served_document() {
    let document = serde_json::to_value(web::openapi()).unwrap();
    // Each example and the route whose body it shows; a new example must be added here.
    let routes = [
        ("admission-example.json", "/api/v1/admissions"),
        ("incident-example.json", "/api/v1/incidents"),
        ("sentence-example.json", "/api/v1/sentences/calculation"),
    ];
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&docs).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if !name.ends_with("-example.json") {
            continue;
        }
        let (_, route) = routes.iter().find(|(file, _)| *file == name).unwrap_or_else(|| panic!("route of {name}?"));
        let schema = &document["paths"][route]["post"]["requestBody"]["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "{route} documents no JSON body");
        let example: Value = serde_json::from_str(&std::fs::read_to_string(docs.join(&name)).unwrap()).unwrap();
        let wrong = violations(&validator_in(&document, schema), &example);
        assert!(wrong.is_empty(), "{name} does not fit the body of POST {route}: {wrong:#?}");
        checked += 1;
    }
    assert_eq!(checked, routes.len());
}

#[test]
fn the_document_says_how_to_authenticate_and_how_errors_and_limits_look() {
    let document = serde_json::to_value(web::openapi()).unwrap();
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(
        (schemes["bearer"]["type"].as_str(), schemes["bearer"]["scheme"].as_str()),
        (Some("http"), Some("bearer"))
    );
    assert_eq!(
        (schemes["session"]["in"].as_str(), schemes["session"]["name"].as_str()),
        (Some("cookie"), Some(web::access::SESSION_COOKIE))
    );
    let mut errors = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let access = web::access::rule_for(&method.to_uppercase().parse().unwrap(), path).unwrap();
            let responses = operation["responses"].as_object().unwrap();
            for (status, response) in responses.iter().filter(|(s, _)| s.starts_with(['4', '5'])) {
                errors += 1;
                let content = response["content"].as_object().unwrap();
                assert_eq!(
                    content.keys().collect::<Vec<_>>(),
                    ["application/problem+json"],
                    "{method} {path} {status}"
                );
            }
            if access != web::access::Access::Public {
                assert!(responses.contains_key("401") && responses.contains_key("403"), "{method} {path}");
                assert!(responses["401"]["headers"]["WWW-Authenticate"].is_object(), "{method} {path}");
            } else {
                assert_eq!(operation["security"], json!([]), "{method} {path} is public");
            }
            if operation["requestBody"].is_object() {
                assert!(["400", "415", "422"].iter().all(|s| responses.contains_key(*s)), "{method} {path}");
            }
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                match parameter["name"].as_str().unwrap() {
                    "limit" => assert_eq!(
                        (&parameter["schema"]["minimum"], &parameter["schema"]["maximum"]),
                        (&json!(1), &json!(500)),
                        "{method} {path}"
                    ),
                    "at" | "since" => assert_eq!(parameter["schema"]["format"], "date-time", "{method} {path}"),
                    _ => {}
                }
            }
        }
    }
    assert!(errors > 112, "every error response is a problem document: {errors}");
    assert!(document["paths"]["/api/v1/alerts"]["get"]["responses"]["422"].is_object());
}

#[tokio::test]
async fn the_servers_own_answers_fit_the_response_schemas_it_documents() {
    let api = start().await;
    let document: Value =
        api.client.get(format!("{}/api/openapi.json", api.base)).send().await.unwrap().json().await.unwrap();
    for (role, path, route) in [
        (Role::Officer, format!("/api/v1/people/{}", api.inside), "/api/v1/people/{number}"),
        (Role::Medical, format!("/api/v1/people/{}", api.inside), "/api/v1/people/{number}"),
        (Role::Officer, "/api/v1/people?facility=PEQ-A&limit=5".to_string(), "/api/v1/people"),
        (Role::Officer, "/api/v1/people?q=zzzzzz".to_string(), "/api/v1/people"),
    ] {
        let (status, answer) = api.get(role, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let schema = &document["paths"][route]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        let wrong = violations(&validator_in(&document, schema), &answer);
        assert!(wrong.is_empty(), "GET {path}: {wrong:#?}");
    }
    // A refusal fits the problem schema it is documented with.
    let (status, problem) = api.get(Role::Officer, "/api/v1/alerts?at=bad").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let schema = &document["paths"]["/api/v1/alerts"]["get"]["responses"]["422"]["content"]["application/problem+json"]
        ["schema"];
    assert!(violations(&validator_in(&document, schema), &problem).is_empty(), "{problem}");
    // What schemathesis found: a body that is an array of a struct's fields was read as the struct.
    let (status, problem) = api.post(Role::Director, "/api/v1/facilities/PEQ-A/housing-policy", "[null, null]").await;
    assert_eq!((status, problem["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("body")));
}

#[tokio::test]
async fn an_idempotency_key_with_a_tab_inside_is_refused_as_its_documented_pattern_says() {
    let api = start().await;
    let events = api.audit_count().await;
    let response = api
        .client
        .post(format!("{}/api/v1/admissions", api.base))
        .bearer_auth(&api.tokens[&Role::Records])
        .header("content-type", "application/json")
        .header("idempotency-key", "key\twith-tab")
        .body(admission("PEQ-A", "Tabulada"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(api.audit_count().await, events, "nothing written");
}

#[tokio::test]
async fn a_malformed_if_match_is_refused_as_malformed_and_a_stale_one_as_stale() {
    let api = start().await;
    let path = format!("{}/api/v1/people/{}/movements", api.base, api.inside);
    let send = |tag: &'static str| {
        let request = api
            .client
            .post(&path)
            .bearer_auth(&api.tokens[&Role::Officer])
            .header("if-match", tag)
            .header("content-type", "application/json")
            .body(json!({"kind": "out", "reason": "court"}).to_string());
        async move { request.send().await.unwrap().status() }
    };
    for malformed in ["_g", "v1", "\"v1", "\"x1\"", "\"v\""] {
        assert_eq!(send(malformed).await, StatusCode::BAD_REQUEST, "{malformed}");
    }
    assert_eq!(send("\"v99999999999999999999\"").await, StatusCode::PRECONDITION_FAILED);
    assert_eq!(send("W/\"v1\"").await, StatusCode::PRECONDITION_FAILED, "an old version is stale");
}
