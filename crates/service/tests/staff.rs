//! Integration tests of staff accounts over a real SQLite file: roles and facility scoping,
//! account validation, hashed passwords, API tokens, logins with throttling and locking,
//! sessions, password changes, the log of record reads, idempotent responses, and the audit
//! chain after all of them. Time is always given explicitly.

use std::path::PathBuf;

use chrono::Duration;
use custodia_service as service;

use domain::time::Instant;
use service::layout::FacilityLayout;
use service::staff::{Role, Staff};
use service::{Context, Service, ServiceError, ServiceResult};
use store::Database;
use testdb::TestDb;

/// A one-cell facility; accounts only need facilities to exist.
fn layout(code: &str) -> String {
    format!(
        r#"
[facility]
code = "{code}"
name = "Centro Penal {code}"
jurisdiction = "sv"
time_zone = "America/El_Salvador"
declared_capacity = 2
opened = "2025-01-01T00:00:00Z"

[[units]]
code = "A"

[[units.cells]]
code = "A-1"
floor_area_m2 = 12.0
beds = 2
"#
    )
}

const NOW: &str = "2026-03-01T12:00:00Z";
const PASSWORD: &str = "correct horse battery";

fn t(text: &str) -> Instant {
    text.parse().unwrap_or_else(|e| panic!("bad instant {text}: {e}"))
}

fn codes(list: &[&str]) -> Vec<String> {
    list.iter().map(|c| c.to_string()).collect()
}

struct Fixture {
    db: TestDb,
    service: Service<Database>,
    ctx: Context,
}

/// A fresh database with facilities NORTE and SUR.
fn fixture() -> Fixture {
    let db = TestDb::new();
    let service = Service::new(db.open());
    service.init().expect("init");
    let ctx = Context::new("root", t(NOW));
    for text in [layout("NORTE"), layout("SUR")] {
        service.add_facility(&ctx, &FacilityLayout::parse(&text).expect("layout parses")).expect("facility added");
    }
    Fixture { db, service, ctx }
}

impl Fixture {
    /// A records officer of NORTE named `ana` with [`PASSWORD`].
    fn ana(&self) -> Staff {
        self.service.add_user(&self.ctx, "ana", Role::Records, &codes(&["NORTE"]), PASSWORD).expect("ana added")
    }

    fn audit_count(&self) -> usize {
        self.service.audit_events(0, 1_000_000).expect("audit events").len()
    }

    fn sql(&self, sql: &str) -> u64 {
        self.db.execute(sql)
    }

    fn verifies(&self) {
        let v = self.service.verify_audit(&mut |_, _| {}).expect("verification runs");
        assert_eq!(v.broken, None);
        assert!(v.projection_problems.is_empty(), "{:?}", v.projection_problems);
    }

    /// What verification finds wrong, in words: the broken event, or every other problem.
    fn problems(&self) -> Vec<String> {
        let v = self.service.verify_audit(&mut |_, _| {}).expect("verification runs");
        match v.broken {
            Some(broken) => vec![format!("event {}: {}", broken.seq, broken.reason)],
            None => v.projection_problems,
        }
    }

    /// Verification fails and one problem says `expected`.
    fn caught(&self, expected: &str) {
        let problems = self.problems();
        assert!(problems.iter().any(|p| p.contains(expected)), "expected `{expected}` among {problems:?}");
    }
}

fn refusal<T: std::fmt::Debug>(result: ServiceResult<T>) -> (&'static str, String) {
    match result {
        Err(ServiceError::Refused { rule, detail }) => (rule, detail),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn invalid_fields<T: std::fmt::Debug>(result: ServiceResult<T>) -> Vec<String> {
    match result {
        Err(ServiceError::Invalid(errors)) => errors.iter().map(|e| e.field.clone()).collect(),
        other => panic!("expected invalid input, got {other:?}"),
    }
}

/// How long a name must wait after `failures` consecutive failed logins.
fn wait_after(failures: u32) -> Duration {
    match failures {
        0..=2 => Duration::zero(),
        3..=9 => Duration::seconds(1 << (failures - 3)),
        _ => Duration::minutes(15),
    }
}

#[test]
fn roles_have_stable_names_and_national_roles_see_every_facility() {
    for role in Role::ALL {
        assert_eq!(Role::parse(role.as_str()), Some(role));
        assert_eq!(serde_json::to_value(role).unwrap(), serde_json::json!(role.as_str()));
    }
    assert_eq!(Role::parse("warden"), None);
    let national: Vec<Role> = Role::ALL.into_iter().filter(|r| r.national()).collect();
    assert_eq!(national, vec![Role::Admin, Role::Monitor, Role::Analyst]);

    let officer = Staff { name: "ana".into(), role: Role::Officer, facilities: codes(&["NORTE"]) };
    assert!(officer.sees("NORTE"));
    assert!(!officer.sees("SUR"));
    let monitor = Staff { name: "mon".into(), role: Role::Monitor, facilities: Vec::new() };
    assert!(monitor.sees("NORTE") && monitor.sees("SUR") && monitor.sees("ANY"));
    let ctx = officer.context(t(NOW));
    assert_eq!((ctx.actor.as_str(), ctx.now), ("ana", t(NOW)));
}

#[test]
fn add_user_validates_name_password_and_facilities_and_refusals_write_nothing() {
    let f = fixture();
    let before = f.audit_count();
    let add = |name: &str, role: Role, facilities: &[&str], password: &str| {
        f.service.add_user(&f.ctx, name, role, &codes(facilities), password)
    };
    assert_eq!(invalid_fields(add("Ana", Role::Records, &["NORTE"], PASSWORD)), ["name"]);
    assert_eq!(invalid_fields(add("an", Role::Records, &["NORTE"], PASSWORD)), ["name"]);
    assert_eq!(invalid_fields(add(&"a".repeat(33), Role::Records, &["NORTE"], PASSWORD)), ["name"]);
    assert_eq!(invalid_fields(add("ana lopez", Role::Records, &["NORTE"], PASSWORD)), ["name"]);
    assert_eq!(invalid_fields(add("ana", Role::Records, &["NORTE"], "short pass!")), ["password"]);
    assert_eq!(invalid_fields(add("ana", Role::Records, &[], PASSWORD)), ["facilities"]);
    assert_eq!(invalid_fields(add("mon", Role::Monitor, &["NORTE"], PASSWORD)), ["facilities"]);
    assert_eq!(invalid_fields(add("x", Role::Officer, &[], "short")), ["name", "password", "facilities"]);
    match add("ana", Role::Records, &["NORTE", "ESTE"], PASSWORD) {
        Err(ServiceError::NotFound { what: "facility", key }) => assert_eq!(key, "ESTE"),
        other => panic!("expected the unknown facility to be not found, got {other:?}"),
    }
    assert_eq!(f.audit_count(), before);

    let ana = add("ana.lopez-2_x", Role::Records, &["SUR", "NORTE", "SUR"], PASSWORD).expect("valid account");
    assert_eq!(ana.facilities, codes(&["NORTE", "SUR"]));
    assert_eq!(ana.role, Role::Records);
    let admin = add("admin", Role::Admin, &[], "twelve chars").expect("national role without facilities");
    assert!(admin.facilities.is_empty());
    assert_eq!(f.audit_count(), before + 2);

    assert!(matches!(add("admin", Role::Analyst, &[], PASSWORD), Err(ServiceError::Conflict(_))));
    assert_eq!(f.audit_count(), before + 2);
}

#[test]
fn passwords_are_stored_only_as_argon2id_hashes_and_never_audited() {
    let f = fixture();
    f.ana();
    f.service.change_password(&f.ctx, "ana", PASSWORD, "a second secret phrase").expect("password changed");
    let hash = f.db.query_one("SELECT password_hash FROM staff_user WHERE name = 'ana'").unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    for secret in [PASSWORD, "a second secret phrase"] {
        assert!(!hash.contains(secret));
        let in_audit = f.db.query_i64(&format!("SELECT count(*) FROM audit_event WHERE payload LIKE '%{secret}%'"));
        assert_eq!(in_audit, 0, "the audit payloads hold the password");
    }
    // Nowhere in the database file or its write-ahead log either.
    let Some(path) = f.db.sqlite_path() else { return };
    for suffix in ["", "-wal"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        let bytes = std::fs::read(&file).unwrap_or_default();
        for secret in [PASSWORD, "a second secret phrase"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds a password",
                file.display()
            );
        }
    }
}

#[test]
fn a_token_identifies_its_user_until_it_expires_or_is_revoked() {
    let f = fixture();
    f.ana();
    let token = f.service.create_token(&f.ctx, "ana", Duration::days(30)).expect("token");
    assert!(token.starts_with("cst_"), "{token}");
    assert_eq!(token.len(), 4 + 43, "32 bytes of base64url without padding");
    assert!(token[4..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));

    let staff = f.service.staff_for_token(&token, t(NOW)).unwrap().expect("the token works");
    assert_eq!((staff.name.as_str(), staff.role, staff.facilities.clone()), ("ana", Role::Records, codes(&["NORTE"])));
    let last_moment = t(NOW) + Duration::days(30) - Duration::microseconds(1);
    assert!(f.service.staff_for_token(&token, last_moment).unwrap().is_some());
    assert!(f.service.staff_for_token(&token, t(NOW) + Duration::days(30)).unwrap().is_none(), "expired");
    assert!(f.service.staff_for_token("cst_not-a-token", t(NOW)).unwrap().is_none());

    // Only the hash is stored.
    let stored = f.db.query_one("SELECT token_sha256 FROM api_token").unwrap();
    assert_eq!(stored, service::staff::sha256_hex(&token));
    assert!(!stored.contains(&token[4..]));

    let second = f.service.create_token(&f.ctx, "ana", Duration::hours(1)).expect("second token");
    assert_ne!(second, token);
    assert_eq!(f.service.revoke_tokens(&f.ctx, "ana").unwrap(), 2);
    assert!(f.service.staff_for_token(&token, t(NOW)).unwrap().is_none(), "revoked");
    assert!(f.service.staff_for_token(&second, t(NOW)).unwrap().is_none(), "revoked");
    assert_eq!(f.service.revoke_tokens(&f.ctx, "ana").unwrap(), 0);

    let actions: Vec<String> = f.service.audit_events(0, 100).unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions.iter().filter(|a| *a == "token.create").count(), 2);
    assert_eq!(actions.iter().filter(|a| *a == "token.revoke").count(), 2);
    let events = f.service.audit_events(0, 100).unwrap();
    let created = events.iter().find(|e| e.action == "token.create").unwrap();
    assert_eq!(created.payload["user"], "ana");
    assert!(created.payload["token_id"].is_i64() && created.payload["expires_at"].is_string());
    assert!(!created.payload.to_string().contains(&token[4..]));
}

#[test]
fn tokens_of_unknown_users_are_not_found_and_bad_durations_invalid() {
    let f = fixture();
    assert!(matches!(
        f.service.create_token(&f.ctx, "nobody", Duration::days(1)),
        Err(ServiceError::NotFound { what: "user", .. })
    ));
    assert!(matches!(f.service.revoke_tokens(&f.ctx, "nobody"), Err(ServiceError::NotFound { what: "user", .. })));
    f.ana();
    assert_eq!(invalid_fields(f.service.create_token(&f.ctx, "ana", Duration::zero())), ["valid_for"]);
}

#[test]
fn login_opens_an_eight_hour_session_that_logout_ends() {
    let f = fixture();
    f.ana();
    let before = f.audit_count();
    let session = f.service.login("ana", PASSWORD, t(NOW)).expect("login");
    assert_eq!(session.staff.name, "ana");
    assert_eq!(session.expires_at, t(NOW) + Duration::hours(8));
    assert_eq!(session.secret.len(), 43);
    assert_eq!(f.audit_count(), before + 1, "session.login is audited");

    let staff = f.service.staff_for_session(&session.secret, t(NOW) + Duration::hours(1)).unwrap().expect("live");
    assert_eq!(staff.role, Role::Records);
    assert!(f.service.staff_for_session(&session.secret, t(NOW) + Duration::hours(8)).unwrap().is_none(), "expired");
    assert!(f.service.staff_for_session("not a secret", t(NOW)).unwrap().is_none());

    let other = f.service.login("ana", PASSWORD, t(NOW)).expect("second login");
    assert_ne!(other.secret, session.secret);
    f.service.logout(&session.secret).expect("logout");
    assert!(f.service.staff_for_session(&session.secret, t(NOW)).unwrap().is_none(), "logged out");
    assert!(f.service.staff_for_session(&other.secret, t(NOW)).unwrap().is_some(), "the other session lives on");
    f.service.logout(&session.secret).expect("logging out twice is harmless");
    f.service.logout("unknown").expect("logging out an unknown session is harmless");
}

#[test]
fn an_unknown_name_and_a_wrong_password_get_the_same_answer() {
    let f = fixture();
    f.ana();
    let wrong = f.service.login("ana", "wrong password!", t(NOW)).unwrap_err().to_string();
    let unknown = f.service.login("ghost", PASSWORD, t(NOW)).unwrap_err().to_string();
    assert_eq!(wrong, unknown);
    assert_eq!(
        refusal(f.service.login("ana", "", t(NOW))),
        ("auth.invalid_credentials", "wrong name or password".to_string())
    );
    assert_eq!(refusal(f.service.login("", "", t(NOW))).0, "auth.invalid_credentials");
}

/// Attempts with a wrong password at growing intervals; each answer as text.
fn attempts(f: &Fixture, name: &str, schedule: &[Duration]) -> Vec<String> {
    schedule
        .iter()
        .map(|after| match f.service.login(name, "wrong password!", t(NOW) + *after) {
            Err(e) => e.to_string(),
            Ok(_) => "logged in".to_string(),
        })
        .collect()
}

#[test]
fn from_the_third_failure_attempts_must_wait_and_unknown_names_are_throttled_alike() {
    let f = fixture();
    f.ana();
    let ms = Duration::milliseconds;
    // Three failures at once, then an attempt too soon (refused unchecked), then one after the
    // 1 s wait (a fourth failure), then too soon for the 2 s wait, then after it.
    let schedule = [ms(0), ms(0), ms(0), ms(500), ms(1000), ms(2999), ms(3000), ms(3001)];
    let known = attempts(&f, "ana", &schedule);
    let unknown = attempts(&f, "ghost", &schedule);
    assert_eq!(known, unknown);
    let invalid = "refused (auth.invalid_credentials): wrong name or password";
    let wait = |s: u32| format!("refused (auth.throttled): too many failed logins; try again in {s} seconds");
    assert_eq!(
        known,
        [invalid.into(), invalid.into(), invalid.into(), wait(1), invalid.into(), wait(1), invalid.into(), wait(4)]
    );

    // While throttled, even the right password is refused without being checked.
    assert_eq!(refusal(f.service.login("ana", PASSWORD, t(NOW) + ms(3500))).0, "auth.throttled");
    // Another name is not affected.
    f.service.add_user(&f.ctx, "bea", Role::Officer, &codes(&["SUR"]), PASSWORD).unwrap();
    f.service.login("bea", PASSWORD, t(NOW) + ms(3500)).expect("bea is not throttled");
    // After the wait the right password works.
    f.service.login("ana", PASSWORD, t(NOW) + ms(7000)).expect("ana after the wait");
}

#[test]
fn after_ten_failures_a_name_is_locked_for_fifteen_minutes_known_or_not() {
    let f = fixture();
    f.ana();
    for name in ["ana", "ghost"] {
        let mut at = t(NOW);
        for failures in 0..10 {
            at += wait_after(failures);
            assert_eq!(refusal(f.service.login(name, "wrong password!", at)).0, "auth.invalid_credentials");
        }
        let (rule, detail) = refusal(f.service.login(name, PASSWORD, at + Duration::minutes(1)));
        assert_eq!(rule, "auth.throttled");
        assert_eq!(detail, "too many failed logins; try again in 840 seconds");
        let (rule, _) = refusal(f.service.login(name, PASSWORD, at + Duration::minutes(15) - Duration::seconds(1)));
        assert_eq!(rule, "auth.throttled");
        if name == "ana" {
            f.service.login(name, PASSWORD, at + Duration::minutes(15)).expect("unlocked after 15 minutes");
        } else {
            let (rule, _) = refusal(f.service.login(name, PASSWORD, at + Duration::minutes(15)));
            assert_eq!(rule, "auth.invalid_credentials");
        }
    }
}

#[test]
fn a_successful_login_resets_the_count_of_failures() {
    let f = fixture();
    f.ana();
    for _ in 0..2 {
        refusal(f.service.login("ana", "wrong password!", t(NOW)));
    }
    f.service.login("ana", PASSWORD, t(NOW)).expect("third attempt succeeds");
    // Two more failures would make four in a row without the reset, and the third would wait.
    for _ in 0..3 {
        assert_eq!(refusal(f.service.login("ana", "wrong password!", t(NOW))).0, "auth.invalid_credentials");
    }
    assert_eq!(refusal(f.service.login("ana", PASSWORD, t(NOW))).0, "auth.throttled");
}

#[test]
fn changing_a_password_ends_the_sessions_and_retires_the_old_password() {
    let f = fixture();
    f.ana();
    let first = f.service.login("ana", PASSWORD, t(NOW)).unwrap();
    let second = f.service.login("ana", PASSWORD, t(NOW)).unwrap();
    let ctx = first.staff.context(t(NOW));
    let before = f.audit_count();

    assert_eq!(invalid_fields(f.service.change_password(&ctx, "ana", PASSWORD, "too short")), ["new_password"]);
    assert_eq!(
        refusal(f.service.change_password(&ctx, "ana", "not my password", "a brand new passphrase")),
        ("auth.invalid_credentials", "wrong name or password".to_string())
    );
    assert_eq!(f.audit_count(), before);
    assert!(f.service.staff_for_session(&first.secret, t(NOW)).unwrap().is_some(), "refusals end nothing");

    let token = f.service.create_token(&f.ctx, "ana", Duration::days(1)).unwrap();
    let before = before + 1;
    f.service.change_password(&ctx, "ana", PASSWORD, "a brand new passphrase").expect("changed");
    assert!(f.service.staff_for_token(&token, t(NOW)).unwrap().is_none(), "tokens are revoked too");
    assert_eq!(f.audit_count(), before + 1);
    let event = f.service.audit_events(0, 1000).unwrap().pop().unwrap();
    assert_eq!((event.action.as_str(), event.actor.as_str(), event.subject.as_str()), ("user.password", "ana", "ana"));
    for session in [&first, &second] {
        assert!(f.service.staff_for_session(&session.secret, t(NOW)).unwrap().is_none(), "sessions end");
    }
    assert_eq!(refusal(f.service.login("ana", PASSWORD, t(NOW))).0, "auth.invalid_credentials");
    f.service.login("ana", "a brand new passphrase", t(NOW)).expect("the new password works");
}

#[test]
fn a_disabled_account_cannot_log_in_and_its_tokens_and_sessions_stop_working() {
    let f = fixture();
    f.ana();
    let token = f.service.create_token(&f.ctx, "ana", Duration::days(1)).unwrap();
    let session = f.service.login("ana", PASSWORD, t(NOW)).unwrap();
    let before = f.audit_count();
    assert!(f.service.set_user_disabled(&f.ctx, "ana", true).unwrap());
    assert!(!f.service.set_user_disabled(&f.ctx, "ana", true).unwrap(), "already disabled: nothing written");
    assert_eq!(f.audit_count(), before + 1);
    assert!(f.service.staff_for_token(&token, t(NOW)).unwrap().is_none());
    assert!(f.service.staff_for_session(&session.secret, t(NOW)).unwrap().is_none());
    assert_eq!(refusal(f.service.login("ana", PASSWORD, t(NOW))).0, "auth.invalid_credentials");
    // Enabled again, the account logs in, but what it had before disablement stays ended.
    assert!(f.service.set_user_disabled(&f.ctx, "ana", false).unwrap());
    f.service.login("ana", PASSWORD, t(NOW)).expect("enabled again");
    assert!(f.service.staff_for_token(&token, t(NOW)).unwrap().is_none(), "the token stays revoked");
    assert!(f.service.staff_for_session(&session.secret, t(NOW)).unwrap().is_none(), "the session stays ended");
    let users = f.service.users().unwrap();
    assert_eq!(users.iter().map(|u| (u.name.as_str(), u.disabled)).collect::<Vec<_>>(), [("ana", false)]);
    let actions: Vec<String> = f.service.audit_events(0, 100).unwrap().into_iter().map(|e| e.action).collect();
    assert!(actions.ends_with(&["user.disable".to_string(), "user.enable".into(), "session.login".into()]));
    f.verifies();
}

#[test]
fn an_administrator_resets_passwords_and_sets_facilities_by_the_rules_of_new_accounts() {
    let f = fixture();
    f.ana();
    let session = f.service.login("ana", PASSWORD, t(NOW)).unwrap();
    let before = f.audit_count();
    assert_eq!(invalid_fields(f.service.reset_password(&f.ctx, "ana", "too short")), ["password"]);
    assert!(matches!(f.service.reset_password(&f.ctx, "nobody", PASSWORD), Err(ServiceError::NotFound { .. })));
    assert_eq!(invalid_fields(f.service.set_user_facilities(&f.ctx, "ana", &[])), ["facilities"]);
    assert!(matches!(
        f.service.set_user_facilities(&f.ctx, "ana", &codes(&["NORTE", "ESTE"])),
        Err(ServiceError::NotFound { what: "facility", .. })
    ));
    f.service.add_user(&f.ctx, "mon", Role::Monitor, &[], PASSWORD).unwrap();
    assert_eq!(invalid_fields(f.service.set_user_facilities(&f.ctx, "mon", &codes(&["SUR"]))), ["facilities"]);
    assert_eq!(f.audit_count(), before + 1, "refusals write nothing");

    f.service.reset_password(&f.ctx, "ana", "a reset passphrase").unwrap();
    assert!(f.service.staff_for_session(&session.secret, t(NOW)).unwrap().is_none(), "sessions end");
    assert_eq!(refusal(f.service.login("ana", PASSWORD, t(NOW))).0, "auth.invalid_credentials");
    let ana = f.service.login("ana", "a reset passphrase", t(NOW)).unwrap().staff;
    assert_eq!(ana.facilities, codes(&["NORTE"]));
    let set = f.service.set_user_facilities(&f.ctx, "ana", &codes(&["SUR", "NORTE", "SUR"])).unwrap();
    assert_eq!(set.facilities, codes(&["NORTE", "SUR"]));
    assert_eq!(
        f.service.login("ana", "a reset passphrase", t(NOW)).unwrap().staff.facilities,
        codes(&["NORTE", "SUR"])
    );
    let events = f.service.audit_events(0, 100).unwrap();
    let facilities = events.iter().find(|e| e.action == "user.facilities").unwrap();
    assert_eq!(facilities.payload, serde_json::json!({"user": "ana", "facilities": ["NORTE", "SUR"]}));
    assert!(events.iter().any(|e| e.action == "user.reset_password" && e.subject == "ana"));
    f.verifies();
}

/// Accounts and tokens of every kind, and a few reads, all verifying.
fn estate_of_accounts() -> Fixture {
    let f = fixture();
    f.ana();
    f.service.add_user(&f.ctx, "bea", Role::Admin, &[], "bea's own password").unwrap();
    f.service.add_user(&f.ctx, "cai", Role::Officer, &codes(&["SUR"]), PASSWORD).unwrap();
    f.service.set_user_disabled(&f.ctx, "cai", true).unwrap();
    f.service.create_token(&f.ctx, "ana", Duration::days(1)).unwrap();
    f.service.create_token(&f.ctx, "bea", Duration::days(1)).unwrap();
    f.service.revoke_tokens(&f.ctx, "bea").unwrap();
    let session = f.service.login("ana", PASSWORD, t(NOW)).unwrap();
    f.service.logout(&session.secret).unwrap();
    f.service.login("ana", PASSWORD, t(NOW)).unwrap();
    for minute in 0..4 {
        let at = t(NOW) + Duration::minutes(minute);
        f.service.log_read("ana", "SV-2026-000001", "/api/v1/people/SV-2026-000001", at).unwrap();
    }
    f.verifies();
    f
}

#[test]
fn a_role_edited_in_the_database_file_fails_verification() {
    let f = estate_of_accounts();
    assert_eq!(f.sql("UPDATE staff_user SET role = 'admin' WHERE name = 'ana'"), 1);
    f.caught("staff account `ana` differs from its audited history (role)");
    // The audited version edited as well: its event's row digest no longer holds.
    f.sql("UPDATE staff_user_version SET role = 'admin' WHERE name = 'ana'");
    f.caught("the rows this event wrote were altered");
}

#[test]
fn a_facility_added_to_an_account_by_hand_fails_verification() {
    let f = estate_of_accounts();
    f.sql("INSERT INTO staff_facility (user_id, facility_code) SELECT id, 'SUR' FROM staff_user WHERE name = 'ana'");
    f.caught("staff account `ana` differs from its audited history (facilities)");
}

#[test]
fn a_swapped_password_hash_fails_verification() {
    let f = estate_of_accounts();
    f.sql(
        "UPDATE staff_user SET password_hash = (SELECT password_hash FROM staff_user WHERE name = 'bea')
         WHERE name = 'ana'",
    );
    f.caught("staff account `ana` differs from its audited history (password hash)");
}

#[test]
fn an_account_enabled_or_added_by_hand_fails_verification() {
    let f = estate_of_accounts();
    f.sql("UPDATE staff_user SET disabled = 0 WHERE name = 'cai'");
    f.caught("staff account `cai` differs from its audited history (disablement)");
    let f = estate_of_accounts();
    f.sql(
        "INSERT INTO staff_user (name, role, password_hash, disabled, created_at) VALUES ('eve', 'admin', 'x', 0, 0)",
    );
    f.caught("staff account `eve` has no audited history");
}

#[test]
fn a_token_row_edited_or_added_by_hand_fails_verification() {
    let f = estate_of_accounts();
    f.sql("UPDATE api_token SET revoked_at = NULL");
    f.caught("differs from its audited history");
    let f = estate_of_accounts();
    f.sql(
        "INSERT INTO api_token (user_id, token_sha256, created_at, expires_at)
         SELECT id, 'aa', 0, 9000000000000000 FROM staff_user WHERE name = 'bea'",
    );
    f.caught("has no audited history");
}

#[test]
fn a_session_added_or_reopened_by_hand_fails_verification() {
    let f = estate_of_accounts();
    let events = f.service.audit_events(0, 1000).unwrap();
    let logout = events.iter().find(|e| e.action == "session.logout").expect("logging out is audited");
    assert_eq!((logout.actor.as_str(), logout.subject.as_str()), ("ana", "ana"));
    f.sql("UPDATE session SET ended_at = NULL");
    f.caught("session 1 differs from its audited history");
    let f = estate_of_accounts();
    f.sql(
        "INSERT INTO session (user_id, secret_sha256, created_at, expires_at)
         SELECT id, 'aa', 0, 9000000000000000 FROM staff_user WHERE name = 'bea'",
    );
    f.caught("session 3 has no audited history");
}

#[test]
fn reads_deleted_or_altered_in_the_register_fail_verification() {
    let f = estate_of_accounts();
    assert_eq!(f.sql("DELETE FROM readlog.person_read WHERE id = 2"), 1);
    f.caught("read register: read 3 follows read 1");
    let f = estate_of_accounts();
    f.sql("UPDATE readlog.person_read SET reader = 'bea' WHERE id = 3");
    f.caught("read register: read 3 was altered");
    // The newest reads deleted: the chain that is left holds, but an anchor names a read gone.
    let f = estate_of_accounts();
    f.service.anchor_reads(&f.ctx).unwrap().expect("an anchor");
    f.sql("DELETE FROM readlog.person_read WHERE id >= 3");
    f.caught("read register: read 4, anchored by audit event");
}

#[test]
fn reads_of_records_are_logged_and_listed_by_person_and_reader_with_a_cursor() {
    let f = fixture();
    let at = |m: i64| t(NOW) + Duration::minutes(m);
    let before = f.audit_count();
    f.service.log_read("ana", "SV-2026-000001", "/api/v1/people/SV-2026-000001", at(0)).unwrap();
    f.service.log_read("bea", "SV-2026-000001", "/people/SV-2026-000001", at(1)).unwrap();
    f.service.log_read("ana", "SV-2026-000002", "/api/v1/people/SV-2026-000002", at(2)).unwrap();
    f.service.log_read("ana", "SV-2026-000001", "/people/SV-2026-000001/timeline", at(3)).unwrap();
    let anchors =
        |f: &Fixture| f.service.audit_events(0, 1000).unwrap().iter().filter(|e| e.action == "reads.anchor").count();
    assert_eq!(f.audit_count(), before + anchors(&f), "reads are not audited, only anchored");

    let all = f.service.reads(None, None, 0, 100).unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    assert_eq!((all[1].reader.as_str(), all[1].person.as_str(), all[1].at), ("bea", "SV-2026-000001", at(1)));
    assert_eq!(all[1].route, "/people/SV-2026-000001");

    let of_one: Vec<(String, Instant)> =
        f.service.reads(Some("SV-2026-000001"), None, 0, 100).unwrap().into_iter().map(|r| (r.reader, r.at)).collect();
    assert_eq!(of_one, [("ana".to_string(), at(0)), ("bea".to_string(), at(1)), ("ana".to_string(), at(3))]);
    let by_ana = f.service.reads(None, Some("ana"), 0, 100).unwrap();
    assert_eq!(by_ana.iter().map(|r| r.at).collect::<Vec<_>>(), [at(0), at(2), at(3)]);
    let both = f.service.reads(Some("SV-2026-000001"), Some("ana"), 0, 100).unwrap();
    assert_eq!(both.iter().map(|r| r.at).collect::<Vec<_>>(), [at(0), at(3)]);

    // Paging with the cursor.
    let page1 = f.service.reads(None, Some("ana"), 0, 2).unwrap();
    assert_eq!(page1.len(), 2);
    let page2 = f.service.reads(None, Some("ana"), page1[1].id, 2).unwrap();
    assert_eq!(page2.iter().map(|r| r.at).collect::<Vec<_>>(), [at(3)]);
    assert!(f.service.reads(None, Some("ana"), page2[0].id, 2).unwrap().is_empty());
    assert!(f.service.reads(Some("SV-2026-999999"), None, 0, 10).unwrap().is_empty());
}

#[test]
fn a_command_with_an_idempotency_key_runs_once_and_the_key_is_per_actor_and_request() {
    use service::staff::IdempotencyKey;
    let f = fixture();
    let key = |actor: &'static str, request: &'static str| IdempotencyKey {
        actor,
        key: "k-1",
        request_sha256: request,
        at: t(NOW),
    };
    let runs = std::cell::Cell::new(0);
    let run = |key: Option<IdempotencyKey<'static>>| {
        f.service.run_idempotent(key, 201, |_| {
            runs.set(runs.get() + 1);
            Ok(runs.get())
        })
    };
    let first = run(Some(key("ana", "abc"))).unwrap();
    assert_eq!((first.status, first.body.as_str(), first.replayed), (201, "1", false));
    let again = run(Some(key("ana", "abc"))).unwrap();
    assert_eq!((again.body.as_str(), again.replayed, runs.get()), ("1", true, 1), "replayed, not run again");
    let other = run(Some(key("ana", "def")));
    assert!(matches!(other, Err(ServiceError::Refused { rule: "idempotency.key_reused", .. })));
    let bea = run(Some(key("bea", "def"))).unwrap();
    assert_eq!((bea.replayed, runs.get()), (false, 2), "keys are per actor");
    let unkeyed = run(None).unwrap();
    assert_eq!((unkeyed.replayed, runs.get()), (false, 3));
}

#[test]
fn demo_logins_give_one_account_per_role_that_can_log_in() {
    let f = fixture();
    let logins = f.service.create_demo_logins(&f.ctx, &codes(&["SUR", "NORTE"])).expect("demo logins");
    let names: Vec<&str> = logins.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["admin", "director", "records", "officer", "medical", "monitor", "analyst"]);
    for login in &logins {
        assert_eq!(login.name, login.role.as_str());
        assert_eq!(login.password.chars().count(), 16);
        let expected = if login.role.national() { Vec::new() } else { codes(&["SUR"]) };
        assert_eq!(login.facilities, expected);
        let session = f.service.login(&login.name, &login.password, t(NOW)).expect("demo login works");
        assert_eq!(session.staff.role, login.role);
    }
    assert!(matches!(f.service.create_demo_logins(&f.ctx, &codes(&["SUR"])), Err(ServiceError::Conflict(_))));
    assert_eq!(invalid_fields(fixture().service.create_demo_logins(&f.ctx, &[])), ["facilities"]);
}

#[test]
fn the_audit_chain_verifies_after_account_commands() {
    let f = fixture();
    f.ana();
    f.service.add_user(&f.ctx, "mon", Role::Monitor, &[], PASSWORD).unwrap();
    f.service.create_token(&f.ctx, "ana", Duration::days(1)).unwrap();
    f.service.revoke_tokens(&f.ctx, "ana").unwrap();
    let session = f.service.login("ana", PASSWORD, t(NOW)).unwrap();
    refusal(f.service.login("ana", "wrong password!", t(NOW)));
    f.service.change_password(&session.staff.context(t(NOW)), "ana", PASSWORD, "another long password").unwrap();
    f.service.log_read("ana", "SV-2026-000001", "/people/SV-2026-000001", t(NOW)).unwrap();
    let key = service::staff::IdempotencyKey { actor: "ana", key: "k", request_sha256: "00", at: t(NOW) };
    f.service.run_idempotent(Some(key), 200, |_| Ok(())).unwrap();
    f.service.logout(&session.secret).unwrap();
    f.verifies();

    let events = f.service.audit_events(0, 1000).unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).filter(|a| !a.starts_with("facility")).collect();
    assert_eq!(
        actions,
        ["user.add", "user.add", "token.create", "token.revoke", "session.login", "user.password", "reads.anchor"]
    );
    let added = events.iter().find(|e| e.action == "user.add").unwrap();
    assert_eq!(added.payload, serde_json::json!({"name": "ana", "role": "records", "facilities": ["NORTE"]}));
    assert_eq!(added.actor, "root");
}

#[test]
fn an_attacker_locks_a_name_only_from_their_own_address() {
    let f = fixture();
    f.ana();
    let attacker = Some("203.0.113.9");
    let mut at = t(NOW);
    for failures in 0..10 {
        at += wait_after(failures);
        let answer = f.service.login_from("ana", "wrong password!", attacker, at);
        assert_eq!(refusal(answer).0, "auth.invalid_credentials");
    }
    let (rule, detail) = refusal(f.service.login_from("ana", PASSWORD, attacker, at + Duration::seconds(1)));
    assert_eq!((rule, detail.as_str()), ("auth.throttled", "too many failed logins; try again in 899 seconds"));
    // The owner, from their own address, is not locked out.
    let session = f.service.login_from("ana", PASSWORD, Some("198.51.100.7"), at + Duration::seconds(1));
    assert_eq!(session.expect("the owner logs in from elsewhere").staff.name, "ana");
    // The owner's success does not unlock the attacker's address.
    assert_eq!(refusal(f.service.login_from("ana", PASSWORD, attacker, at + Duration::seconds(2))).0, "auth.throttled");
}

#[test]
fn an_address_trying_many_names_is_throttled_and_adds_few_rows() {
    let f = fixture();
    f.ana();
    let attacker = Some("203.0.113.9");
    let mut answers = Vec::new();
    for i in 0..40 {
        // Known and unknown names alike; one try each.
        let name = if i == 20 { "ana".to_string() } else { format!("name{i:02}") };
        answers.push(match f.service.login_from(&name, "wrong password!", attacker, t(NOW)) {
            Err(ServiceError::Refused { rule, .. }) => rule,
            other => panic!("expected a refusal, got {other:?}"),
        });
    }
    let invalid = answers.iter().filter(|r| **r == "auth.invalid_credentials").count();
    assert_eq!(invalid, service::staff::ADDRESS_THROTTLE_AFTER_FAILURES as usize, "{answers:?}");
    assert!(answers[10..].iter().all(|r| *r == "auth.throttled"), "{answers:?}");
    // Refused attempts are not counted: one row per name tried, and one for the address.
    assert_eq!(f.db.query_i64("SELECT count(*) FROM login_failure"), 11);
    // Another address is not slowed, and the address waits 1 s, then doubling.
    f.service.login_from("ana", PASSWORD, Some("198.51.100.7"), t(NOW)).expect("another address");
    let later = t(NOW) + Duration::seconds(1);
    assert_eq!(
        refusal(f.service.login_from("name99", "wrong password!", attacker, later)).0,
        "auth.invalid_credentials"
    );
    assert_eq!(refusal(f.service.login_from("name98", "wrong password!", attacker, later)).0, "auth.throttled");
    let (_, detail) = refusal(f.service.login_from("name98", "wrong password!", attacker, later));
    assert_eq!(detail, "too many failed logins; try again in 2 seconds");
}

#[test]
fn ipv6_clients_are_throttled_by_their_64_bit_network() {
    use service::staff::client_key;
    let a: std::net::IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
    let b: std::net::IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
    assert_eq!(client_key(a), client_key(b));
    assert_eq!(client_key(a), "2001:db8:1:2::/64");
    assert_ne!(client_key("2001:db8:1:3::1".parse().unwrap()), client_key(a));
    assert_eq!(client_key("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
    assert_eq!(client_key("192.0.2.1".parse().unwrap()), "192.0.2.1");
}

#[test]
fn revoking_or_changing_an_account_bumps_the_credentials_generation() {
    let f = fixture();
    f.ana();
    let start = f.service.credentials_generation();
    f.service.create_token(&f.ctx, "ana", Duration::days(1)).unwrap();
    assert_eq!(f.service.credentials_generation(), start, "issuing revokes nothing");
    f.service.revoke_tokens(&f.ctx, "ana").unwrap();
    f.service.set_user_disabled(&f.ctx, "ana", true).unwrap();
    f.service.set_user_disabled(&f.ctx, "ana", false).unwrap();
    f.service.reset_password(&f.ctx, "ana", "a reset passphrase").unwrap();
    f.service.set_user_facilities(&f.ctx, "ana", &codes(&["SUR"])).unwrap();
    f.service.change_password(&f.ctx, "ana", "a reset passphrase", "another passphrase").unwrap();
    assert_eq!(f.service.credentials_generation(), start + 6);
    assert!(f.service.revoke_tokens(&f.ctx, "nobody").is_err());
    assert_eq!(f.service.credentials_generation(), start + 6, "a refusal changes nothing");
}
