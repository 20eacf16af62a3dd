//! The staff web interface driven in Debian's Chromium through chromedriver (both installed by
//! `scripts/test` when missing). Each test starts its own server over a small demo and its own
//! browser. Elements are found by `data-testid`.
//!
//! `cargo test -p custodia-web --test browser -- --ignored screenshots` writes the README's
//! screenshots under `docs/screenshots/` from the cecot demo (`scripts/screenshots`).

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use custodia_web as web;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use domain::person::{Admission, Identity, LegalBasis, LegalBasisKind, PersonName, Sex};
use service::custody::AdmitRequest;
use service::demo::Scale;
use service::staff::Role;
use service::{Context, Service};
use testdb::{Backend, TestDb};

const PASSWORD: &str = "correct horse battery";
const SCRIPT_NAME: &str = "<script>alert(1)</script>";

/// A chromedriver process, stopped when dropped.
struct Driver {
    process: Child,
    url: String,
}

impl Drop for Driver {
    /// Stop chromedriver and every browser it started (they share its process group), even when
    /// a test failed before closing its session.
    fn drop(&mut self) {
        let group = format!("-{}", self.process.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn chromedriver() -> Driver {
    let port = free_port();
    let mut process = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "chromedriver is not installed: run scripts/test, which installs Debian's chromium and chromium-driver",
        );
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Driver { process, url };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = process.kill();
    let _ = process.wait();
    panic!("chromedriver did not start on port {port}");
}

/// A server over a small demo, a staff member per role (facility roles see PEQ-A), and a
/// headless browser.
struct Site {
    base: String,
    browser: Client,
    service: std::sync::Arc<Service<store::Database>>,
    _driver: Driver,
    _db: TestDb,
    _server: tokio::task::JoinHandle<()>,
}

async fn site() -> Site {
    site_with(Scale::Small, Some(Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()), true).await
}

async fn site_with(scale: Scale, until: Option<chrono::DateTime<Utc>>, javascript: bool) -> Site {
    // The pages are the same on every backend; they are tested on the embedded one.
    let db = TestDb::on(Backend::Sqlite);
    let service = Service::new(db.open());
    service.init().unwrap();
    match until {
        Some(end) => service.demo_until(scale, 7, end, &mut |_, _, _| {}).map(|_| ()).unwrap(),
        None => service.demo(scale, 7, &mut |_, _, _| {}).map(|_| ()).unwrap(),
    }
    let ctx = Context::now("setup");
    let first = service.facilities().unwrap()[0].code.clone();
    // The demo's overcrowding override ran out with its history; a director renews it.
    let renewal = service::housing::OverrideRequest {
        cell: None,
        reason: "population above declared capacity".parse().unwrap(),
        expires_at: Utc::now() + chrono::Duration::days(1),
    };
    service.record_override(&ctx, &first, &renewal).unwrap();
    for role in Role::ALL {
        let facilities = if role.national() { vec![] } else { vec![first.clone()] };
        service.add_user(&ctx, role.as_str(), role, &facilities, PASSWORD).unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // Chromium keeps a Secure cookie over plain HTTP only on localhost.
    let base = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let state = web::AppState::new(service);
    let service = state.service();
    let server = tokio::spawn(async move {
        web::serve(listener, state, std::future::pending()).await.unwrap();
    });
    let driver = chromedriver();
    let mut args = vec![
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
        "--lang=en-US",
    ];
    if !javascript {
        args.push("--blink-settings=scriptEnabled=false");
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), json!({ "binary": "/usr/bin/chromium", "args": args }));
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("chromium did not start under chromedriver");
    Site { base, browser, service, _driver: driver, _db: db, _server: server }
}

impl Site {
    async fn open(&self, path: &str) {
        self.browser.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    async fn by_id(&self, testid: &str) -> fantoccini::elements::Element {
        self.browser
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(&format!("[data-testid=\"{testid}\"]")))
            .await
            .unwrap_or_else(|e| panic!("no [data-testid={testid}]: {e}"))
    }

    async fn exists(&self, testid: &str) -> bool {
        !self.browser.find_all(Locator::Css(&format!("[data-testid=\"{testid}\"]"))).await.unwrap().is_empty()
    }

    async fn text(&self, testid: &str) -> String {
        self.by_id(testid).await.text().await.unwrap()
    }

    async fn type_into(&self, testid: &str, text: &str) {
        let field = self.by_id(testid).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Set a field by script (date and time inputs type by locale) and tell htmx it changed.
    async fn set(&self, testid: &str, value: &str) {
        let script = "const e = document.querySelector(`[data-testid=\"${arguments[0]}\"]`); e.value = arguments[1];
                      e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true}));";
        self.browser.execute(script, vec![json!(testid), json!(value)]).await.unwrap();
    }

    /// Click a button that loads a new page, and wait until it has replaced the old one.
    async fn submit(&self, testid: &str) {
        let button = self.by_id(testid).await;
        self.submit_with(button).await;
    }

    async fn submit_with(&self, button: fantoccini::elements::Element) {
        self.loading_new_page(button.click()).await;
    }

    /// Do something that loads a new page, and wait until the old one is gone.
    async fn loading_new_page<T>(
        &self,
        action: impl std::future::Future<Output = Result<T, fantoccini::error::CmdError>>,
    ) {
        let old = self.browser.find(Locator::Css("html")).await.unwrap();
        action.await.unwrap();
        for _ in 0..200 {
            if old.tag_name().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the page did not change");
    }

    /// Wait until the element with this test id has the keyboard focus; panic if it never gets it.
    async fn wait_for_focus(&self, testid: &str) {
        for _ in 0..200 {
            let focused = self
                .browser
                .execute("return document.activeElement && document.activeElement.dataset.testid;", vec![])
                .await
                .unwrap();
            if focused == json!(testid) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("[data-testid={testid}] never got the focus");
    }

    async fn login(&self, name: &str) {
        self.open("/login").await;
        self.type_into("login-name", name).await;
        self.type_into("login-password", PASSWORD).await;
        self.submit("login-submit").await;
        self.by_id("whoami").await;
    }

    async fn logout(&self) {
        self.submit("logout").await;
        self.by_id("login-name").await;
    }

    async fn menu(&self) -> Vec<String> {
        let items = self.browser.find_all(Locator::Css("nav a")).await.unwrap();
        let mut labels = Vec::new();
        for item in items {
            labels.push(item.text().await.unwrap());
        }
        labels
    }

    fn admit(&self, facility: &str, given: &str, first: &str, second: Option<&str>) -> String {
        self.admit_arrested(facility, given, first, second, Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap())
    }

    fn admit_arrested(
        &self,
        facility: &str,
        given: &str,
        first: &str,
        second: Option<&str>,
        arrested_at: chrono::DateTime<Utc>,
    ) -> String {
        let request = AdmitRequest {
            facility: facility.into(),
            person: None,
            at: None,
            foreign: None,
            different_person: None,
            admission: Admission {
                identity: Identity {
                    name: PersonName {
                        given_names: given.parse().unwrap(),
                        first_surname: first.parse().unwrap(),
                        second_surname: second.map(|s| s.parse().unwrap()),
                    },
                    date_of_birth: "1991-03-04".parse().unwrap(),
                    sex: Sex::Male,
                    gender_identity: None,
                    nationality: "SV".parse().unwrap(),
                    documents: vec![],
                },
                legal_basis: Some(LegalBasis {
                    kind: LegalBasisKind::RemandOrder,
                    issuing_authority: "Juzgado 1".parse().unwrap(),
                    reference: "R-1".parse().unwrap(),
                    date: arrested_at.date_naive(),
                }),
                arrested_at,
                arrest_place: "San Salvador".parse().unwrap(),
                injuries: vec![],
                complaints: vec![],
                property: vec![],
                next_of_kin: vec![],
                emergency_contact: None,
                dependants: vec![],
            },
        };
        self.service.admit(&Context::now("setup"), &request).unwrap().person
    }

    async fn close(self) {
        self.browser.clone().close().await.unwrap();
    }
}

#[tokio::test]
async fn each_role_sees_only_what_it_may_and_staff_of_one_facility_not_another() {
    let site = site().await;
    let outside = site.service.occupants("PEQ-M", None, None, Utc::now()).unwrap()[0].number.clone();
    let inside = site.service.occupants("PEQ-A", None, None, Utc::now()).unwrap()[0].number.clone();
    // Held untried since an arrest two years ago, with no charge recorded: past the deadline.
    let two_years_ago = Utc::now() - chrono::Duration::days(730);
    let overdue = site.admit_arrested("PEQ-A", "Mario", "Alas", None, two_years_ago);
    let expected: &[(&str, &[&str], &[&str])] = &[
        ("admin", &["Dashboard", "Search", "Intake", "Roll counts", "Audit"], &[]),
        ("director", &["Dashboard", "Estate", "Search", "Intake", "Obligations"], &["Audit"]),
        ("records", &["Search", "Intake", "Alerts"], &["Audit", "Obligations"]),
        ("officer", &["Search", "Roll counts", "Incidents"], &["Intake", "Audit", "Obligations"]),
        ("medical", &["Search", "Incidents"], &["Intake", "Audit", "Obligations"]),
        ("monitor", &["Search", "Audit", "Obligations", "Alerts"], &["Intake"]),
        ("analyst", &["Dashboard", "Estate"], &["Search", "Intake", "Audit", "Alerts", "Roll counts", "Incidents"]),
    ];
    for (name, shown, hidden) in expected {
        site.login(name).await;
        let menu = site.menu().await;
        for item in *shown {
            assert!(menu.iter().any(|m| m == item), "{name} should see {item}: {menu:?}");
        }
        for item in *hidden {
            assert!(!menu.iter().any(|m| m == item), "{name} should not see {item}: {menu:?}");
        }
        // The dashboard shows occupancy to everyone, with the numbers beside the bars.
        site.open("/").await;
        assert!(site.text("occupancy").await.contains('%'));
        // A page the role may not open says so instead of showing it.
        if hidden.contains(&"Audit") {
            site.open("/audit").await;
            assert!(site.text("error").await.contains("may not use this page"), "{name} opened the audit page");
            site.open("/").await;
        }
        site.logout().await;
    }

    // At 1280 px and on a 768 px tablet nothing is wider than the window (tables scroll inside).
    site.login("admin").await;
    for width in [1280, 768] {
        site.browser.set_window_size(width, 1000).await.unwrap();
        for path in ["/", "/estate", "/intake", &format!("/people/{inside}"), "/alerts", "/audit"] {
            site.open(path).await;
            let fits = site
                .browser
                .execute("return document.documentElement.scrollWidth <= window.innerWidth;", vec![])
                .await
                .unwrap();
            assert_eq!(fits, json!(true), "{path} is wider than {width} px");
            let unlabelled = site
                .browser
                .execute(
                    "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                        .filter(e => !e.labels || e.labels.length === 0).map(e => e.name);",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(unlabelled, json!([]), "inputs without a label on {path}");
        }
    }
    site.browser.set_window_size(1280, 1000).await.unwrap();
    site.logout().await;

    // A wrong password is refused on the login page, which keeps the name typed.
    site.open("/login").await;
    site.type_into("login-name", "records").await;
    site.type_into("login-password", "not the password").await;
    site.submit("login-submit").await;
    assert!(!site.text("login-message").await.is_empty());
    assert_eq!(site.by_id("login-name").await.prop("value").await.unwrap().as_deref(), Some("records"));

    // Keyboard alone: the name field has the focus, Tab to the password, Enter to log in.
    // Chrome applies `autofocus` at its next rendering step, not when the page has loaded: wait for it.
    site.open("/login").await;
    site.wait_for_focus("login-name").await;
    let focused = site.browser.active_element().await.unwrap();
    focused.send_keys("officer\u{E004}").await.unwrap();
    site.browser.active_element().await.unwrap().send_keys(PASSWORD).await.unwrap();
    let enter = site.browser.active_element().await.unwrap();
    site.loading_new_page(enter.send_keys("\u{E007}")).await;
    assert!(site.text("whoami").await.starts_with("officer"));
    site.logout().await;

    // An officer of PEQ-A opens a person held there, but one held in PEQ-M is "not found".
    site.login("officer").await;
    site.open(&format!("/people/{inside}")).await;
    assert!(site.exists("person-name").await);
    site.open(&format!("/people/{outside}")).await;
    assert!(site.text("error").await.contains("not found"));
    assert!(!site.exists("person-name").await);
    // ...and the national monitor sees both, and the reads of each in the audit page.
    site.open("/").await;
    site.logout().await;
    site.login("monitor").await;
    site.open(&format!("/people/{outside}")).await;
    assert!(site.exists("person-name").await);
    site.open(&format!("/audit?person={inside}")).await;
    assert!(site.text("reads").await.contains("officer"), "the officer's read is in the register");
    // From the alerts to the person: the page says in words that the deadline has passed.
    // (The pages' copy of the alerts is recomputed on demand here, as "Recompute now" does.)
    site.open("/alerts?kind=pretrial_overdue&fresh=1").await;
    let link = site
        .browser
        .find(Locator::Css(&format!("[data-testid=alert-list] a[href='/people/{overdue}']")))
        .await
        .unwrap();
    site.submit_with(link).await;
    assert!(site.text("legal-alert").await.contains("past the pretrial deadline"));
    // Logged out, pages lead to the login.
    site.logout().await;
    site.open("/alerts").await;
    assert!(site.exists("login-name").await);
    site.close().await;
}

#[tokio::test]
async fn search_ignores_accents_case_and_a_missing_surname_and_names_render_as_text() {
    let site = site().await;
    let number = site.admit("PEQ-A", "José Ramón", "Núñez", Some("Peña"));
    let script = site.admit("PEQ-A", SCRIPT_NAME, "Pérez", None);
    site.login("records").await;
    for words in ["jose nunez", "NÚÑEZ José Ramón Peña", "ramon nunez"] {
        site.open(&format!("/search?q={}", web_encode(words))).await;
        assert!(site.exists(&format!("hit-{number}")).await, "`{words}` did not find {number}");
    }
    site.open("/search?q=Núñez+Gómez").await;
    assert!(!site.exists(&format!("hit-{number}")).await, "a different second surname matched");
    // A whole person number opens the record.
    site.open(&format!("/search?q={number}")).await;
    assert_eq!(site.text("person-name").await, "José Ramón Núñez Peña");

    // The script-named person: found, and shown as the text typed, never run.
    site.open("/search?q=perez").await;
    assert!(site.text("search-results").await.contains(SCRIPT_NAME));
    site.open(&format!("/people/{script}")).await;
    assert_eq!(site.text("person-name").await, format!("{SCRIPT_NAME} Pérez"));
    let scripts = site.browser.find_all(Locator::Css("script")).await.unwrap();
    assert_eq!(scripts.len(), 1, "only htmx is a script on the page");
    site.close().await;
}

fn web_encode(text: &str) -> String {
    text.replace(' ', "+")
}

#[tokio::test]
async fn intake_refuses_without_legal_basis_shows_candidates_and_offers_cells() {
    let site = site().await;
    let known = site.admit("PEQ-A", "Rosa María", "Hernández", Some("Castro"));
    site.login("admin").await;
    site.open("/intake").await;
    site.set("identity.sex", "male").await;
    site.set("identity.date_of_birth", "1991-03-04").await;
    site.type_into("identity.nationality", "SV").await;
    site.type_into("identity.given_names", "rosa maria").await;
    site.type_into("identity.first_surname", "hernandez").await;
    // htmx asks for candidates while typing: the person on record appears with the reasons.
    let candidate = site.by_id(&format!("candidate-{known}")).await;
    assert!(candidate.text().await.unwrap().contains("score"), "{}", candidate.text().await.unwrap());

    // Admit without a legal basis: refused, the reason beside the field, nothing written.
    site.type_into("legal_basis.issuing_authority", "Juzgado 2").await;
    site.type_into("legal_basis.reference", "R-77").await;
    site.set("legal_basis.date", "2026-11-01").await;
    site.set("arrested_at", "2026-11-01T08:00").await;
    site.type_into("arrest_place", "Santa Ana").await;
    let before = site.service.counts().unwrap().people;
    site.submit("admit").await;
    assert!(site.text("error-legal_basis.kind").await.contains("legal basis"));
    assert_eq!(site.service.counts().unwrap().people, before, "a refused intake wrote nothing");
    // The form kept what was typed; choose the order kind and admit as a new person.
    assert_eq!(site.by_id("identity.first_surname").await.prop("value").await.unwrap().as_deref(), Some("hernandez"));
    site.set("legal_basis.kind", "remand_order").await;
    site.submit("admit").await;
    assert!(site.text("admitted").await.contains("Admitted"));
    assert_eq!(site.service.counts().unwrap().people, before + 1);
    // Reloading the page after an admission admits no one again.
    site.browser.refresh().await.unwrap();
    assert!(site.text("admitted").await.contains("Admitted"));
    assert_eq!(site.service.counts().unwrap().people, before + 1);
    // Place now: the legal cells, best first; placing one records the placement.
    // Emptiest first: people per declared place never decreases down the list.
    let mut loads = Vec::new();
    for row in site.browser.find_all(Locator::Css("[data-testid=place-now] tbody tr")).await.unwrap() {
        let numbers = row.find_all(Locator::Css("td.num")).await.unwrap();
        let people: f64 = numbers[0].text().await.unwrap().parse().unwrap();
        let places: f64 = numbers[1].text().await.unwrap().parse().unwrap();
        loads.push(people / places.max(1.0));
    }
    assert!(!loads.is_empty() && loads.windows(2).all(|w| w[0] <= w[1]), "{loads:?}");
    let first = site.browser.find(Locator::Css("button[data-testid^=\"place-\"]")).await.unwrap();
    let cell = first.attr("data-testid").await.unwrap().unwrap().trim_start_matches("place-").to_string();
    site.submit_with(first).await;
    assert!(site.by_id("timeline").await.text().await.unwrap().contains(&cell));
    site.close().await;
}

#[tokio::test]
async fn intake_works_without_javascript() {
    let site = site_with(Scale::Small, Some(Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()), false).await;
    let known = site.admit("PEQ-A", "Ana Lucía", "Ortiz", None);
    let release = service::custody::MovementRequest {
        person: known.clone(),
        kind: service::custody::MovementKind::Release {
            reason: domain::custody::ReleaseReason::Bail,
            to_country: None,
        },
        at: None,
        note: None,
    };
    site.service.record_movement(&Context::now("setup"), &release).unwrap();
    site.login("records").await;
    site.open("/intake").await;
    site.type_into("identity.given_names", "Ana Lucía").await;
    site.type_into("identity.first_surname", "Ortiz").await;
    site.type_into("identity.nationality", "SV").await;
    // Without scripts, dates are typed as the browser shows them (month/day/year here).
    site.type_into("identity.date_of_birth", "03041991").await;
    site.browser
        .find(Locator::Css("select[name=\"identity.sex\"] option[value=male]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Scripts are off: typing asks nothing of the server.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!site.exists(&format!("candidate-{known}")).await, "candidates appeared without a form being sent");
    // The "check" button asks the server for candidates and shows the whole form again.
    site.submit_with(site.browser.find(Locator::Css("button[name=check]")).await.unwrap()).await;
    assert!(site.exists(&format!("candidate-{known}")).await, "no candidate without JavaScript");
    // Choose the candidate: the admission is a new custody episode of the same person.
    site.browser
        .find(Locator::Css(&format!("input[name=person][value=\"{known}\"]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    site.type_into("legal_basis.issuing_authority", "Juzgado 3").await;
    site.type_into("legal_basis.reference", "R-3").await;
    site.type_into("legal_basis.date", "11012026").await;
    site.type_into("arrest_place", "Sonsonate").await;
    site.type_into("arrested_at", "11012026\t0800AM").await;
    site.browser
        .find(Locator::Css("select[name=\"legal_basis.kind\"] option[value=remand_order]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let people = site.service.counts().unwrap().people;
    site.submit("admit").await;
    let admitted = site.text("admitted").await;
    assert!(admitted.contains(&known), "{admitted}");
    assert_eq!(site.service.counts().unwrap().people, people, "the same person, not a new one");
    site.close().await;
}

#[tokio::test]
async fn a_placement_refused_by_a_keep_apart_rule_says_which_rule_and_why() {
    let site = site().await;
    let occupants = site.service.occupants("PEQ-A", None, None, Utc::now()).unwrap();
    let inside = occupants.iter().find(|o| o.cell.as_deref() == Some("M1-01")).unwrap().number.clone();
    let other = occupants.iter().find(|o| o.cell.as_deref() == Some("M1-02")).unwrap().number.clone();
    let rule = service::housing::KeepApartRequest {
        a: service::housing::PartyRef { person: Some(inside.clone()), group: None },
        b: service::housing::PartyRef { person: Some(other.clone()), group: None },
        scope: domain::separation::Scope::Cell,
        reason: "threats in court".parse().unwrap(),
        authorised_by: None,
        expires_at: None,
    };
    site.service.add_keep_apart(&Context::now("director"), &rule).unwrap();
    site.login("officer").await;
    site.open(&format!("/people/{other}")).await;
    assert!(site.text("keep-apart").await.contains("threats in court"));
    site.submit("place-link").await;
    site.type_into("place-cell", "M1-01").await;
    site.submit("place-submit").await;
    assert_eq!(site.text("refusal-rule").await, "housing.keep_apart");
    let refusal = site.text("refusal").await;
    assert!(refusal.contains(&inside), "{refusal}");
    // The person did not move.
    let now = site.service.whereabouts(&other, Utc::now()).unwrap().unwrap();
    assert_eq!(now.cell.as_deref(), Some("M1-02"));
    site.close().await;
}

#[tokio::test]
async fn a_transfer_against_a_hold_is_refused_until_a_second_person_approves_an_override() {
    let site = site().await;
    let person = site.admit("PEQ-A", "Julio César", "Arévalo", None);
    let hold = service::legal::HoldRequest {
        kind: domain::legal::HoldKind::DoNotTransfer,
        country: None,
        on_date: None,
        authority: "Juzgado 4 de Instrucción".parse().unwrap(),
        order_reference: "JI4-2026-77".parse().unwrap(),
        expires_at: None,
    };
    let hold = site.service.add_hold(&Context::now("records"), &person, &hold).unwrap().id;
    site.login("records").await;
    site.open(&format!("/people/{person}")).await;
    site.submit("movement-link").await;
    site.by_id("kind-transfer").await.click().await.unwrap();
    site.set("movement-to", "PEQ-M").await;
    site.submit("movement-submit").await;
    assert_eq!(site.text("refusal-rule").await, "legal.hold");
    assert!(site.text("refusal").await.contains("JI4-2026-77"));
    // The records officer cannot approve overrides at all; a director asks for one and cannot
    // approve their own request either; the administrator, a second person, approves it.
    assert!(site.browser.find_all(Locator::Css("[data-testid^=approve-]")).await.unwrap().is_empty());
    site.logout().await;
    site.login("director").await;
    site.open(&format!("/people/{person}/movement")).await;
    site.type_into(&format!("ask-reason-{hold}"), "the court lifted the order this morning").await;
    site.submit(&format!("ask-submit-{hold}")).await;
    assert!(site.text(&format!("hold-{hold}")).await.contains("waiting for approval"));
    assert!(site.browser.find_all(Locator::Css("[data-testid^=approve-]")).await.unwrap().is_empty());
    site.logout().await;
    site.login("admin").await;
    site.open(&format!("/people/{person}/movement")).await;
    let approve = site.browser.find(Locator::Css("[data-testid^=approve-]")).await.unwrap();
    site.submit_with(approve).await;
    assert!(site.text(&format!("hold-{hold}")).await.contains("approved by admin"));
    site.logout().await;
    // Now the transfer goes through, once.
    site.login("records").await;
    site.open(&format!("/people/{person}/movement")).await;
    site.by_id("kind-transfer").await.click().await.unwrap();
    site.set("movement-to", "PEQ-M").await;
    site.submit("movement-submit").await;
    assert!(site.text("timeline").await.contains("transfer"));
    // The override was used by that transfer and cannot serve another.
    site.open(&format!("/people/{person}/movement")).await;
    assert!(site.text(&format!("hold-{hold}")).await.contains("used"));
    site.close().await;
}

#[tokio::test]
async fn a_director_records_a_death_notification_done_on_the_obligations_page() {
    let site = site().await;
    let person = site.admit("PEQ-A", "Pedro", "Lemus", None);
    let report = service::incident::IncidentReport {
        facility: "PEQ-A".into(),
        kind: domain::incident::IncidentKind::Death,
        at: None,
        cell: None,
        location: Some("infirmary".parse().unwrap()),
        people: vec![service::incident::InvolvedPerson {
            person: person.clone(),
            role: domain::incident::InvolvementRole::Deceased,
            injured: false,
        }],
        staff: vec![],
        description: "found dead in the infirmary".parse().unwrap(),
    };
    site.service.record_incident(&Context::now("officer"), &report).unwrap();
    site.login("director").await;
    site.open("/obligations").await;
    let row = site.browser.find(Locator::XPath(&format!("//tr[td[contains(., '{person}')]]"))).await.unwrap();
    row.find(Locator::Css("input[name=notified]")).await.unwrap().send_keys("Ana Lemus").await.unwrap();
    row.find(Locator::Css("input[name=capacity]")).await.unwrap().send_keys("sister").await.unwrap();
    site.submit_with(row.find(Locator::Css("button")).await.unwrap()).await;
    site.open("/obligations?state=all").await;
    let done =
        site.browser.find(Locator::XPath(&format!("//tr[td[contains(., '{person}')]][.//span[.='done']]"))).await;
    assert!(done.is_ok(), "the family notification is recorded as done");
    site.close().await;
}

#[tokio::test]
async fn a_count_with_a_discrepancy_cannot_clear_until_it_is_resolved() {
    let site = site().await;
    site.login("officer").await;
    site.open("/counts").await;
    site.type_into("count-unit", "M1").await;
    site.submit("start-count-submit").await;
    assert_eq!(site.text("count-state").await, "open");
    // Count every cell as expected, except one person fewer in the first occupied cell.
    let rows = site.browser.find_all(Locator::Css("[data-testid^=\"count-cell-\"]")).await.unwrap();
    let mut short = None;
    for row in rows {
        let cell = row.attr("data-testid").await.unwrap().unwrap().trim_start_matches("count-cell-").to_string();
        let expected: u32 = row.find(Locator::Css("td.num")).await.unwrap().text().await.unwrap().parse().unwrap();
        let counted = if expected > 0 && short.is_none() {
            short = Some(cell.clone());
            expected - 1
        } else {
            expected
        };
        site.type_into(&format!("counted-{cell}"), &counted.to_string()).await;
    }
    let short = short.expect("an occupied cell in unit M1");
    site.submit("save-counts").await;
    site.submit("clear-count").await;
    assert_eq!(site.text("refusal-rule").await, "count.unresolved", "clearing with a difference was refused");
    assert!(site.text("refusal").await.contains(&short));
    assert_eq!(site.text("count-state").await, "open");
    // Resolve: the missing person is unaccounted for (an escape incident opens), then it clears.
    let missing = site.text("expected-person").await;
    assert!(site.text(&format!("expected-{short}")).await.contains(&missing));
    site.type_into("resolve-person", &missing).await;
    site.set("resolve-kind", "unaccounted").await;
    site.submit("resolve-submit").await;
    site.submit("clear-count").await;
    assert_eq!(site.text("count-state").await, "cleared");
    site.close().await;
}

#[tokio::test]
async fn the_estate_grid_shows_any_past_instant_and_marks_cells_out_of_order() {
    let site = site().await;
    let report = site.service.occupancy(Utc::now(), service::report::Detail::Cell).unwrap();
    let (facility, flooded) = report
        .facilities
        .iter()
        .flat_map(|f| f.units.iter().flatten().flat_map(|u| u.cells.iter().flatten()).map(move |c| (f, c)))
        .find(|(f, _)| f.code == "PEQ-M")
        .map(|(f, c)| (f.code.clone(), c.code.clone()))
        .unwrap();
    let change = service::estate::CellStatusChange {
        facility: facility.clone(),
        cell: flooded.clone(),
        in_use: false,
        reason: Some("flooded".into()),
    };
    site.service.set_cell_status(&Context::now("director"), &change).unwrap();
    site.login("analyst").await;
    site.open(&format!("/estate?facility={facility}")).await;
    let cell = site.by_id(&format!("cell-{flooded}")).await;
    assert!(cell.attr("class").await.unwrap().unwrap().contains("ooo"));
    assert!(cell.attr("title").await.unwrap().unwrap().contains("out of order: flooded"));
    assert!(site.text("estate-summary").await.contains("(1 out of order)"));
    // A past instant, typed in the facility's local time, shows the population then, as the
    // occupancy report gives it.
    let record = site.service.facilities().unwrap().into_iter().find(|f| f.code == facility).unwrap();
    let zone: chrono_tz::Tz = record.time_zone.parse().unwrap();
    let then = zone.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap().with_timezone(&Utc);
    let past = site.service.occupancy(then, service::report::Detail::Facility).unwrap();
    let held = past.facilities.iter().find(|f| f.code == facility).unwrap().measure.population;
    let now = report.facilities.iter().find(|f| f.code == facility).unwrap().measure.population;
    assert_ne!(held, now, "the demo's population changed since March");
    site.open(&format!("/estate?facility={facility}&at=2026-03-01T00:00")).await;
    let summary = site.text("estate-summary").await;
    let shown = then.format("%Y-%m-%d %H:%M UTC");
    assert!(summary.contains(&format!("{shown}: {held} people")), "{summary}");
    site.close().await;
}

#[tokio::test]
async fn every_list_downloads_as_csv_and_a_formula_in_a_name_is_not_run() {
    let site = site().await;
    let formula = site.admit("PEQ-A", "=HYPERLINK(\"http://x\")", "Cruz", None);
    let client = reqwest::Client::new();
    let login = client
        .post(format!("{}/api/v1/session", site.base))
        .body(json!({"name": "admin", "password": PASSWORD}).to_string())
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let count = site.service.start_count(
        &Context::now("officer"),
        &service::count::StartCount { facility: "PEQ-A".into(), unit: Some("M1".into()) },
    );
    let count = count.unwrap().id;
    for (path, header) in [
        ("/?format=csv".to_string(), "code,name,population,declared"),
        ("/estate?facility=PEQ-A&format=csv".to_string(), "unit,cell,out_of_order,population"),
        ("/search?q=cruz&format=csv".to_string(), "number,name,date_of_birth,facilities"),
        (format!("/people/{formula}?format=csv"), "occurred_at,movement,facility"),
        ("/counts?format=csv".to_string(), "id,facility,unit"),
        (format!("/counts/{count}?format=csv"), "cell,expected,counted"),
        ("/incidents?format=csv".to_string(), "number,facility,kind"),
        ("/obligations?format=csv".to_string(), "id,incident,facility"),
        ("/alerts?format=csv".to_string(), "kind,person,facility,date"),
        ("/audit?format=csv".to_string(), "seq,at,actor"),
        (format!("/audit?person={formula}&format=csv"), "at,reader,person,route"),
    ] {
        let answer = client.get(format!("{}{path}", site.base)).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        assert!(answer.headers()["content-type"].to_str().unwrap().starts_with("text/csv"), "{path}");
        let text = answer.text().await.unwrap();
        assert!(text.starts_with(header), "{path}: {}", &text[..text.len().min(80)]);
        if path.starts_with("/search") {
            // A spreadsheet would run a cell starting with `=`: it is written as text.
            assert!(text.contains(&format!("{formula},\"'=HYPERLINK(\"\"http://x\"\") Cruz\"")), "{text}");
        }
    }
    site.close().await;
}

#[tokio::test]
async fn an_intake_form_sent_twice_admits_once() {
    let site = site().await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = client
        .post(format!("{}/api/v1/session", site.base))
        .body(json!({"name": "records", "password": PASSWORD}).to_string())
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let form = client.get(format!("{}/intake", site.base)).header("cookie", &cookie).send().await.unwrap();
    let html = form.text().await.unwrap();
    let hidden = |name: &str| {
        let start = html.find(&format!("name=\"{name}\" value=\"")).unwrap() + name.len() + 15;
        html[start..start + html[start..].find('"').unwrap()].to_string()
    };
    let fields = [
        ("csrf", hidden("csrf")),
        ("key", hidden("key")),
        ("facility", "PEQ-A".into()),
        ("identity.given_names", "Tomás".into()),
        ("identity.first_surname", "Ayala".into()),
        ("identity.date_of_birth", "1988-08-08".into()),
        ("identity.sex", "male".into()),
        ("identity.nationality", "SV".into()),
        ("legal_basis.kind", "remand_order".into()),
        ("legal_basis.issuing_authority", "Juzgado 5".into()),
        ("legal_basis.reference", "R-5".into()),
        ("legal_basis.date", "2026-11-01".into()),
        ("arrested_at", "2026-11-01T08:00".into()),
        ("arrest_place", "Ahuachapán".into()),
    ];
    let body = serde_urlencoded::to_string(fields).unwrap();
    let people = site.service.counts().unwrap().people;
    let mut places = Vec::new();
    for _ in 0..2 {
        let sent = client
            .post(format!("{}/intake", site.base))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), 303);
        places.push(sent.headers()["location"].to_str().unwrap().to_string());
    }
    assert_eq!(places[0], places[1], "the second send answers with the first admission");
    assert_eq!(site.service.counts().unwrap().people, people + 1);
    site.close().await;
}

/// Not a check: writes the README's screenshots from the cecot demo (`scripts/screenshots`).
#[tokio::test]
#[ignore]
async fn screenshots() {
    let site = site_with(Scale::Cecot, None, true).await;
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&out).unwrap();
    site.login("admin").await;
    let facility = site.service.facilities().unwrap()[0].code.clone();
    // Someone awaiting trial, whose page shows a pretrial deadline and its explanation.
    let occupants = site.service.occupants(&facility, None, None, Utc::now()).unwrap();
    let person = occupants
        .iter()
        .map(|o| o.number.clone())
        .find(|n| site.service.legal_record(n, Utc::now()).is_ok_and(|l| l.pretrial.is_some()))
        .unwrap();
    let shoot = |name: &'static str| {
        let (browser, out) = (site.browser.clone(), out.clone());
        async move {
            let png = browser.screenshot().await.unwrap();
            std::fs::write(out.join(format!("{name}.png")), png).unwrap();
        }
    };
    for (name, path, height) in [
        ("dashboard", "/".to_string(), 800),
        ("estate", format!("/estate?facility={facility}&standard=icrc"), 900),
        ("person", format!("/people/{person}"), 1300),
    ] {
        site.browser.set_window_size(1280, height).await.unwrap();
        site.open(&path).await;
        shoot(name).await;
    }
    // The intake form while a clerk types a name already on record, without its accents.
    let record = site.service.person_record(&person, Utc::now()).unwrap().person.identity;
    let plain = |text: &str| {
        text.replace(['á', 'Á'], "a")
            .replace('é', "e")
            .replace('í', "i")
            .replace('ó', "o")
            .replace('ú', "u")
            .replace('ñ', "n")
    };
    site.browser.set_window_size(1280, 1250).await.unwrap();
    site.open("/intake").await;
    site.set("identity.sex", record.sex.as_str()).await;
    site.set("identity.date_of_birth", &record.date_of_birth.to_string()).await;
    site.type_into("identity.nationality", "SV").await;
    site.type_into("identity.given_names", &plain(&record.name.given_names).to_lowercase()).await;
    site.type_into("identity.first_surname", &plain(&record.name.first_surname).to_lowercase()).await;
    site.by_id(&format!("candidate-{person}")).await;
    shoot("intake").await;
    site.close().await;
}
