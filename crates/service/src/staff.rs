//! Staff accounts and roles, API tokens, password logins and sessions, the log of who read whose
//! record (Mandela Rule 9), and stored responses of requests made with an idempotency key.
//!
//! Secrets are never stored in the clear: passwords as Argon2id hashes, tokens and session
//! secrets as SHA-256. Every change of an account or a token writes an audited version row
//! (the password hash included), so `audit verify` catches an account edited by hand.
//!
//! Failed logins are counted per name *and client address* given, whether or not the name
//! exists, and per address across names: an attacker's address is slowed and then locked out
//! of that name without locking its owner out from elsewhere, and an address trying many names
//! is slowed too. Neither the answer nor the throttling tells which names exist.
//!
//! Revocation: every commit that revokes tokens or changes an account bumps
//! [`Service::credentials_generation`], so a cache of checked tokens in the same process (the
//! web's) drops them at once; another process
//! sees the change within its cache's lifetime.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use chrono::Duration;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use domain::time::Instant;
use domain::FieldError;
use store::staff::{NewStaff, StaffRow, StaffTx, StoredResponse};
use store::{Store, Tx};

use crate::{audit, Context, Service, ServiceError, ServiceResult};

pub use store::staff::ReadRecord;

/// Fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// How long a login session lasts.
pub const SESSION_HOURS: i64 = 8;
/// How every API token begins.
pub const TOKEN_PREFIX: &str = "cst_";
/// Consecutive failed logins from which further attempts must wait (1 s, then doubling).
pub const THROTTLE_AFTER_FAILURES: u32 = 3;
/// Consecutive failed logins after which the name is locked for [`LOCK_MINUTES`].
pub const LOCK_AFTER_FAILURES: u32 = 10;
/// How long a name stays locked after [`LOCK_AFTER_FAILURES`] failed logins.
pub const LOCK_MINUTES: i64 = 15;
/// Failed logins from one client address, across names, from which its attempts must wait
/// (1 s, then doubling, at most [`LOCK_MINUTES`]).
pub const ADDRESS_THROTTLE_AFTER_FAILURES: u32 = 10;
/// An address's count of failures starts again after this long without one.
pub const ADDRESS_WINDOW_MINUTES: i64 = 15;
/// A name's count of failures from one address starts again after this long without one.
pub const NAME_WINDOW_HOURS: i64 = 24;
/// Most throttle keys kept; past it the ones idle longest are forgotten.
pub const LOGIN_FAILURE_KEYS: u32 = 10_000;
/// Least time between two anchors of the read register's head in the audit chain.
pub const READ_ANCHOR_SECONDS: i64 = 60;
/// Length of the passwords [`Service::create_demo_logins`] makes.
const DEMO_PASSWORD_CHARS: usize = 16;

/// What a staff member may do, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    /// Manages accounts; sees every facility.
    Admin,
    /// Runs a facility.
    Director,
    /// Keeps the records of a facility: admissions, movements.
    Records,
    /// Custody staff of a facility.
    Officer,
    /// Health care staff of a facility.
    Medical,
    /// Independent monitoring body; reads every facility.
    Monitor,
    /// Statistics and planning; reads every facility.
    Analyst,
}

impl Role {
    /// Every role, in a stable order.
    pub const ALL: [Role; 7] =
        [Role::Admin, Role::Director, Role::Records, Role::Officer, Role::Medical, Role::Monitor, Role::Analyst];

    /// The role's stable name, for example `records`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Director => "director",
            Role::Records => "records",
            Role::Officer => "officer",
            Role::Medical => "medical",
            Role::Monitor => "monitor",
            Role::Analyst => "analyst",
        }
    }

    /// The role of a stable name.
    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }

    /// Whether the role sees every facility (admin, monitor, analyst) rather than its own.
    pub fn national(self) -> bool {
        matches!(self, Role::Admin | Role::Monitor | Role::Analyst)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A staff member as the rest of the system sees them.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Staff {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Codes of the facilities they work in (empty for national roles).
    pub facilities: Vec<String>,
}

impl Staff {
    /// Whether they may see the facility: a national role, or one of their facilities.
    pub fn sees(&self, facility_code: &str) -> bool {
        self.role.national() || self.facilities.iter().any(|code| code == facility_code)
    }

    /// The context of a command they make at `now`.
    pub fn context(&self, now: Instant) -> Context {
        let scope = (!self.role.national()).then(|| self.facilities.clone());
        Context { actor: self.name.clone(), now, scope }
    }
}

/// A staff account as an administrator sees it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Account {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Codes of the facilities they work in (empty for national roles).
    pub facilities: Vec<String>,
    /// A disabled account cannot log in and its tokens and sessions do not work.
    pub disabled: bool,
}

/// The throttle key of a client address: an IPv4 address, or the /64 network of an IPv6 one
/// (one host commonly holds a whole /64, so single addresses would not slow it).
pub fn client_key(address: std::net::IpAddr) -> String {
    match address {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// A session opened by a login; the secret is given once and stored only as a hash.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The session secret (base64url), for a cookie.
    pub secret: String,
    /// Who logged in.
    pub staff: Staff,
    /// When the session ends unless logged out before.
    pub expires_at: Instant,
}

/// An idempotency key sent with a request: who sent it, the key, and a digest of the request.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyKey<'a> {
    /// The staff member.
    pub actor: &'a str,
    /// The key they chose.
    pub key: &'a str,
    /// SHA-256 (hex) of what was asked: method, route, record and body.
    pub request_sha256: &'a str,
    /// When.
    pub at: Instant,
}

/// The answer of a command run with [`Service::run_idempotent`], as JSON.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP-style status of the first answer.
    pub status: u16,
    /// The answer, JSON.
    pub body: String,
    /// True when this is the stored answer of an earlier identical request.
    pub replayed: bool,
}

/// A read of a person's record to log.
#[derive(Debug, Clone)]
pub struct NewRead {
    /// Staff name.
    pub reader: String,
    /// Person number.
    pub person: String,
    /// Route, for example `GET /api/v1/people/{number}`.
    pub route: String,
    /// When.
    pub at: Instant,
}

/// A demo account and its password, to show once.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DemoLogin {
    /// Login name (the role's name).
    pub name: String,
    /// Role.
    pub role: Role,
    /// Facility codes.
    pub facilities: Vec<String>,
    /// The generated password.
    pub password: String,
}

fn invalid_credentials() -> ServiceError {
    ServiceError::refused("auth.invalid_credentials", "wrong name or password")
}

fn user_not_found(name: &str) -> ServiceError {
    ServiceError::NotFound { what: "user", key: name.to_string() }
}

fn staff_of(row: StaffRow) -> ServiceResult<Staff> {
    let role = role_of(&row)?;
    Ok(Staff { name: row.name, role, facilities: row.facilities })
}

/// SHA-256 of a text, as lowercase hex: the stored form of tokens and session secrets.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 random bytes as base64url without padding.
fn random_secret() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn hash_password(password: &str) -> ServiceResult<String> {
    let salt =
        SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| ServiceError::Internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| ServiceError::Internal(format!("hashing a password: {e}")))
}

fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash no password is checked against in earnest: verifying against it for unknown names
/// takes as long as for known ones, so the time of the answer does not tell either.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("custodia decoy password").unwrap_or_default())
}

fn valid_name(name: &str) -> bool {
    (3..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
}

fn short_password(field: &str) -> FieldError {
    FieldError::new(field, format!("must be at least {MIN_PASSWORD_CHARS} characters"))
}

/// Check a new account's fields; returns its facility codes, sorted and without repeats.
fn check_new_user(name: &str, role: Role, facilities: &[String], password: &str) -> ServiceResult<Vec<String>> {
    let mut errors = Vec::new();
    if !valid_name(name) {
        errors.push(FieldError::new("name", "must be 3 to 32 characters of a-z, 0-9, `.`, `_` and `-`"));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        errors.push(short_password("password"));
    }
    let codes = check_facilities(role, facilities).map_err(|e| errors.push(e)).unwrap_or_default();
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    Ok(codes)
}

/// Write an account inside the caller's transaction (facilities checked, password already hashed).
fn add_user_in<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    name: &str,
    role: Role,
    facilities: &[String],
    password_hash: &str,
) -> ServiceResult<Staff> {
    for code in facilities {
        if tx.facility_by_code(code)?.is_none() {
            return Err(ServiceError::NotFound { what: "facility", key: code.clone() });
        }
    }
    if tx.user_by_name(name)?.is_some() {
        return Err(ServiceError::Conflict(format!("user `{name}` already exists")));
    }
    tx.insert_user(&NewStaff { name, role: role.as_str(), facilities, password_hash, created_at: ctx.now })?;
    audit(tx, ctx, "user.add", name, &json!({ "name": name, "role": role, "facilities": facilities }))?;
    Ok(Staff { name: name.to_string(), role, facilities: facilities.to_vec() })
}

/// The throttle keys of an attempt: the name with the client address (names cannot hold a
/// space), and the address alone (which starts with one). Without an address (the command line,
/// tests) the name alone is the key and there is no address key.
struct Keys {
    name: String,
    address: Option<String>,
}

impl Keys {
    fn of(name: &str, client: Option<&str>) -> Self {
        match client {
            Some(client) => Keys { name: format!("{name} {client}"), address: Some(format!(" {client}")) },
            None => Keys { name: name.to_string(), address: None },
        }
    }
}

/// How long to wait after `failures` of a name from one address: from the third, 1 s doubling;
/// from the tenth, [`LOCK_MINUTES`].
fn name_wait(failures: u32) -> Option<Duration> {
    if failures >= LOCK_AFTER_FAILURES {
        Some(Duration::minutes(LOCK_MINUTES))
    } else if failures >= THROTTLE_AFTER_FAILURES {
        Some(Duration::seconds(1 << (failures - THROTTLE_AFTER_FAILURES)))
    } else {
        None
    }
}

/// How long to wait after `failures` from one address, whatever the names: from the tenth,
/// 1 s doubling, at most [`LOCK_MINUTES`].
fn address_wait(failures: u32) -> Option<Duration> {
    let over = failures.checked_sub(ADDRESS_THROTTLE_AFTER_FAILURES)?;
    Some(Duration::seconds(1i64 << over.min(20)).min(Duration::minutes(LOCK_MINUTES)))
}

/// Refuse an attempt made too soon after failed logins.
fn throttle(failures: Option<(u32, Instant)>, wait: fn(u32) -> Option<Duration>, now: Instant) -> ServiceResult<()> {
    let Some((failures, last)) = failures else { return Ok(()) };
    let Some(wait) = wait(failures) else { return Ok(()) };
    let until = last + wait;
    if now >= until {
        return Ok(());
    }
    let seconds = ((until - now).num_milliseconds() + 999) / 1000;
    Err(ServiceError::refused("auth.throttled", format!("too many failed logins; try again in {seconds} seconds")))
}

/// Apply both throttles to the failures on record.
fn throttle_in<T: Tx>(tx: &mut T, keys: &Keys, now: Instant) -> ServiceResult<()> {
    throttle(tx.login_failures(&keys.name)?, name_wait, now)?;
    if let Some(address) = &keys.address {
        throttle(tx.login_failures(address)?, address_wait, now)?;
    }
    Ok(())
}

/// A password checked outside any transaction (hashing is slow), to be confirmed in one.
#[derive(Clone)]
struct Checked {
    /// The account, if the name exists.
    user: Option<StaffRow>,
    /// Whether the password matched the hash in `user`.
    matched: bool,
}

/// Confirm a checked password inside the write transaction: the throttle is applied again to
/// the current state (attempts made at the same time count), a failure is recorded under both
/// keys, a success clears the name's count from that address (not the address's: one account
/// of its own must not let an address try other names for ever). The outer result is the
/// transaction's, the inner one the answer.
fn confirm_in<T: Tx>(
    tx: &mut T,
    name: &str,
    keys: &Keys,
    checked: Checked,
    now: Instant,
) -> ServiceResult<Result<StaffRow, ServiceError>> {
    match throttle_in(tx, keys, now) {
        Err(ServiceError::Refused { rule, detail }) => return Ok(Err(ServiceError::Refused { rule, detail })),
        other => other?,
    }
    let current = tx.user_by_name(name)?;
    match (checked.user, current) {
        // The hash must still be the one checked: a password changed meanwhile does not let the old one in.
        (Some(user), Some(current))
            if checked.matched && !current.disabled && current.password_hash == user.password_hash =>
        {
            tx.clear_login_failures(&keys.name)?;
            Ok(Ok(current))
        }
        _ => {
            tx.record_login_failure(&keys.name, now, now - Duration::hours(NAME_WINDOW_HOURS), LOGIN_FAILURE_KEYS)?;
            if let Some(address) = &keys.address {
                let restart = now - Duration::minutes(ADDRESS_WINDOW_MINUTES);
                tx.record_login_failure(address, now, restart, LOGIN_FAILURE_KEYS)?;
            }
            Ok(Err(invalid_credentials()))
        }
    }
}

/// Check an account's facilities for its role; returns them sorted and without repeats.
fn check_facilities(role: Role, facilities: &[String]) -> Result<Vec<String>, FieldError> {
    let mut codes = facilities.to_vec();
    codes.sort_unstable();
    codes.dedup();
    if role.national() && !codes.is_empty() {
        return Err(FieldError::new("facilities", format!("the {role} role sees every facility: give none")));
    }
    if !role.national() && codes.is_empty() {
        return Err(FieldError::new("facilities", format!("the {role} role needs at least one facility")));
    }
    Ok(codes)
}

fn role_of(row: &StaffRow) -> ServiceResult<Role> {
    Role::parse(&row.role)
        .ok_or_else(|| ServiceError::Internal(format!("account `{}` has an unknown role `{}`", row.name, row.role)))
}

impl<S: Store> Service<S> {
    /// Check a name and password without holding the write lock; throttled attempts are refused
    /// before the password is looked at.
    fn check_password(&self, name: &str, password: &str, keys: &Keys, now: Instant) -> ServiceResult<Checked> {
        let user = {
            let mut tx = self.store().read()?;
            throttle_in(&mut tx, keys, now)?;
            tx.user_by_name(name)?
        };
        let matched = match &user {
            Some(user) => password_matches(password, &user.password_hash),
            None => {
                // As long as for a real account, and always false.
                let _ = password_matches(password, decoy_hash());
                false
            }
        };
        Ok(Checked { user, matched })
    }

    /// Create a staff account. Names are 3 to 32 characters of `a-z0-9._-`; passwords at least
    /// 12 characters; non-national roles need at least one facility, each on record; national
    /// roles take none. The password is stored as an Argon2id hash and audited never.
    pub fn add_user(
        &self,
        ctx: &Context,
        name: &str,
        role: Role,
        facilities: &[String],
        password: &str,
    ) -> ServiceResult<Staff> {
        let facilities = check_new_user(name, role, facilities, password)?;
        let hash = hash_password(password)?;
        self.batch(|tx| add_user_in(tx, ctx, name, role, &facilities, &hash))
    }

    /// Create an API bearer token for a user, valid for `valid_for`: `cst_` and 32 random bytes
    /// in base64url. It is returned once and stored only as its SHA-256.
    pub fn create_token(&self, ctx: &Context, user: &str, valid_for: Duration) -> ServiceResult<String> {
        let expires_at = ctx
            .now
            .checked_add_signed(valid_for)
            .filter(|at| *at > ctx.now)
            .ok_or_else(|| ServiceError::field("valid_for", "must be a positive duration"))?;
        let token = format!("{TOKEN_PREFIX}{}", random_secret());
        let hash = sha256_hex(&token);
        self.batch(|tx| {
            let row = tx.user_by_name(user)?.ok_or_else(|| user_not_found(user))?;
            let id = tx.insert_token(row.id, &hash, ctx.now, expires_at)?;
            audit(tx, ctx, "token.create", user, &json!({ "user": user, "token_id": id, "expires_at": expires_at }))?;
            Ok(())
        })?;
        Ok(token)
    }

    /// Revoke every live token of a user; returns how many were revoked.
    pub fn revoke_tokens(&self, ctx: &Context, user: &str) -> ServiceResult<u64> {
        self.credentials_changed(self.batch(|tx| {
            let row = tx.user_by_name(user)?.ok_or_else(|| user_not_found(user))?;
            let revoked = tx.revoke_tokens(row.id, ctx.now)?;
            audit(tx, ctx, "token.revoke", user, &json!({ "user": user, "revoked": revoked }))?;
            Ok(revoked)
        }))
    }

    /// A number that grows after every commit of this service that revokes tokens or changes an
    /// account (password, disablement, facilities). A cache of checked credentials remembers it
    /// from before its check and drops the entry when it has grown: revocation then takes effect
    /// at once in this process.
    pub fn credentials_generation(&self) -> u64 {
        self.credentials.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Pass a committed result on, bumping [`Service::credentials_generation`] if it succeeded.
    fn credentials_changed<T>(&self, result: ServiceResult<T>) -> ServiceResult<T> {
        if result.is_ok() {
            self.credentials.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        result
    }

    /// Every staff account, by name.
    pub fn users(&self) -> ServiceResult<Vec<Account>> {
        let rows = self.store().read()?.users()?;
        rows.into_iter()
            .map(|row| {
                let role = role_of(&row)?;
                Ok(Account { name: row.name, role, facilities: row.facilities, disabled: row.disabled })
            })
            .collect()
    }

    /// Disable (`true`) or enable an account. Disabling also ends its sessions and revokes its
    /// tokens, so enabling it again brings none of them back. Returns false, writing nothing,
    /// when the account already was so.
    pub fn set_user_disabled(&self, ctx: &Context, name: &str, disabled: bool) -> ServiceResult<bool> {
        self.credentials_changed(self.batch(|tx| {
            let row = tx.user_by_name(name)?.ok_or_else(|| user_not_found(name))?;
            if row.disabled == disabled {
                return Ok(false);
            }
            tx.set_user_disabled(row.id, disabled, ctx.now)?;
            let (action, payload) = if disabled {
                let ended = tx.end_sessions_of(row.id, ctx.now)?;
                let revoked = tx.revoke_tokens(row.id, ctx.now)?;
                ("user.disable", json!({ "user": name, "sessions_ended": ended, "tokens_revoked": revoked }))
            } else {
                ("user.enable", json!({ "user": name }))
            };
            audit(tx, ctx, action, name, &payload)?;
            Ok(true)
        }))
    }

    /// Set another account's password (an administrator's reset): at least 12 characters; every
    /// session of the account ends and every token is revoked.
    pub fn reset_password(&self, ctx: &Context, name: &str, password: &str) -> ServiceResult<()> {
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(ServiceError::Invalid(vec![short_password("password")]));
        }
        let hash = hash_password(password)?;
        self.credentials_changed(self.batch(|tx| {
            let row = tx.user_by_name(name)?.ok_or_else(|| user_not_found(name))?;
            tx.set_password_hash(row.id, &hash, ctx.now)?;
            let ended = tx.end_sessions_of(row.id, ctx.now)?;
            let revoked = tx.revoke_tokens(row.id, ctx.now)?;
            let payload = json!({ "user": name, "sessions_ended": ended, "tokens_revoked": revoked });
            audit(tx, ctx, "user.reset_password", name, &payload)?;
            Ok(())
        }))
    }

    /// Replace the facilities of an account, by the rules of [`Service::add_user`]: each on
    /// record; at least one for a facility role, none for a national one.
    pub fn set_user_facilities(&self, ctx: &Context, name: &str, facilities: &[String]) -> ServiceResult<Account> {
        self.credentials_changed(self.batch(|tx| {
            let row = tx.user_by_name(name)?.ok_or_else(|| user_not_found(name))?;
            let role = role_of(&row)?;
            let codes = check_facilities(role, facilities).map_err(|e| ServiceError::Invalid(vec![e]))?;
            for code in &codes {
                if tx.facility_by_code(code)?.is_none() {
                    return Err(ServiceError::NotFound { what: "facility", key: code.clone() });
                }
            }
            tx.set_user_facilities(row.id, &codes, ctx.now)?;
            audit(tx, ctx, "user.facilities", name, &json!({ "user": name, "facilities": codes }))?;
            Ok(Account { name: row.name, role, facilities: codes, disabled: row.disabled })
        }))
    }

    /// The staff member a token belongs to, if it is known, not revoked, not expired and the
    /// account is not disabled.
    pub fn staff_for_token(&self, token: &str, now: Instant) -> ServiceResult<Option<Staff>> {
        self.store().read()?.staff_by_token_hash(&sha256_hex(token), now)?.map(staff_of).transpose()
    }

    /// Log in with a password and open a session of [`SESSION_HOURS`].
    ///
    /// An unknown name and a wrong password give the same refusal (`auth.invalid_credentials`).
    /// Failures are counted per name given: from the third in a row, an attempt before
    /// `last failure + 2^(failures-3)` seconds is refused (`auth.throttled`) without the password
    /// being checked; after ten in a row the name is locked for [`LOCK_MINUTES`]. A success
    /// resets the count and appends the audit event `session.login`.
    pub fn login(&self, name: &str, password: &str, now: Instant) -> ServiceResult<NewSession> {
        self.login_from(name, password, None, now)
    }

    /// [`Service::login`] from a client address (see [`client_key`]): failures are counted per
    /// name from that address, locking the name only there, and per address across names: from
    /// the tenth failure within [`ADDRESS_WINDOW_MINUTES`], the address waits 1 s, doubling.
    pub fn login_from(
        &self,
        name: &str,
        password: &str,
        client: Option<&str>,
        now: Instant,
    ) -> ServiceResult<NewSession> {
        // A name no account can have is refused before any hashing or bookkeeping (it reveals
        // nothing: such an account cannot exist), so junk names cannot cost work or rows.
        if !valid_name(name) || password.len() > 1024 {
            return Err(ServiceError::refused("auth.invalid_credentials", "wrong name or password"));
        }
        let keys = Keys::of(name, client);
        let checked = self.check_password(name, password, &keys, now)?;
        self.batch(|tx| {
            let user = match confirm_in(tx, name, &keys, checked.clone(), now)? {
                Ok(user) => user,
                Err(refused) => return Ok(Err(refused)),
            };
            let secret = random_secret();
            let expires_at = now + Duration::hours(SESSION_HOURS);
            let id = tx.insert_session(user.id, &sha256_hex(&secret), now, expires_at)?;
            let staff = staff_of(user)?;
            audit(tx, &staff.context(now), "session.login", &staff.name, &json!({ "session_id": id }))?;
            Ok(Ok(NewSession { secret, staff, expires_at }))
        })?
    }

    /// The staff member of a live session (not expired, not logged out, account not disabled).
    pub fn staff_for_session(&self, secret: &str, now: Instant) -> ServiceResult<Option<Staff>> {
        self.store().read()?.staff_by_session_hash(&sha256_hex(secret), now)?.map(staff_of).transpose()
    }

    /// End a session (audit event `session.logout`, by its owner); an unknown or ended one is
    /// left as it is.
    pub fn logout(&self, secret: &str) -> ServiceResult<()> {
        let hash = sha256_hex(secret);
        let now = chrono::Utc::now();
        self.batch(|tx| {
            if let Some((id, name)) = tx.end_session(&hash, now)? {
                audit(tx, &Context::new(name.as_str(), now), "session.logout", &name, &json!({ "session_id": id }))?;
            }
            Ok(())
        })
    }

    /// Change one's own password. The old one must match (else `auth.invalid_credentials`,
    /// counted and throttled as a failed login); the new one needs 12 characters. Every session
    /// of the user ends, the one making the change included.
    pub fn change_password(&self, ctx: &Context, name: &str, old: &str, new: &str) -> ServiceResult<()> {
        if new.chars().count() < MIN_PASSWORD_CHARS {
            return Err(ServiceError::Invalid(vec![short_password("new_password")]));
        }
        let keys = Keys::of(name, None);
        let checked = self.check_password(name, old, &keys, ctx.now)?;
        let hash = if checked.matched { hash_password(new)? } else { String::new() };
        let changed = self.batch(|tx| {
            let user = match confirm_in(tx, name, &keys, checked.clone(), ctx.now)? {
                Ok(user) => user,
                Err(refused) => return Ok(Err(refused)),
            };
            tx.set_password_hash(user.id, &hash, ctx.now)?;
            // A changed password usually means a suspected leak: every way in made with it ends.
            let ended = tx.end_sessions_of(user.id, ctx.now)?;
            let revoked = tx.revoke_tokens(user.id, ctx.now)?;
            audit(
                tx,
                ctx,
                "user.password",
                name,
                &json!({ "user": name, "sessions_ended": ended, "tokens_revoked": revoked }),
            )?;
            Ok(Ok(()))
        })?;
        if changed.is_ok() {
            self.credentials_changed(Ok(()))?;
        }
        changed
    }

    /// Record that `reader` read the record of person `person_number` through `route`
    /// (Mandela Rule 9): one row in its own transaction, not audited.
    pub fn log_read(&self, reader: &str, person_number: &str, route: &str, at: Instant) -> ServiceResult<()> {
        let read = NewRead { reader: reader.into(), person: person_number.into(), route: route.into(), at };
        self.log_reads(std::slice::from_ref(&read))
    }

    /// Record many reads in one transaction (one commit for a burst of concurrent reads). Reads
    /// are chained (each row's hash covers the previous one); at most every
    /// [`READ_ANCHOR_SECONDS`] the register's head is then anchored in the audit chain, so that
    /// reads deleted from the end are caught too.
    pub fn log_reads(&self, reads: &[NewRead]) -> ServiceResult<()> {
        self.batch(|tx| {
            for read in reads {
                tx.insert_read(read.at, &read.reader, &read.person, &read.route)?;
            }
            Ok(())
        })?;
        let now = chrono::Utc::now();
        let last = self.read_anchor.load(std::sync::atomic::Ordering::SeqCst);
        if domain::time::to_micros(now) - last >= READ_ANCHOR_SECONDS * 1_000_000 {
            self.read_anchor.store(domain::time::to_micros(now), std::sync::atomic::Ordering::SeqCst);
            // A separate commit after the reads': the two files do not commit atomically together,
            // and an anchor must never name reads that are not durable. The reads are logged
            // whatever happens to it; an anchor that fails is tried again with the next batch.
            if self.anchor_reads(&Context::new("custodia", now)).is_err() {
                self.read_anchor.store(last, std::sync::atomic::Ordering::SeqCst);
            }
        }
        Ok(())
    }

    /// Anchor the read register's head (newest read id and its chain link) in the audit chain;
    /// returns the audit event, or None when no read is logged.
    pub fn anchor_reads(&self, ctx: &Context) -> ServiceResult<Option<i64>> {
        self.batch(|tx| {
            let (read_id, link) = tx.read_log_head()?;
            if read_id == 0 {
                return Ok(None);
            }
            let payload = json!({ "read_id": read_id, "hash": store::staff::hex(&link) });
            Ok(Some(audit(tx, ctx, store::staff::READ_ANCHOR_ACTION, "read register", &payload)?))
        })
    }

    /// Reads of records with id above `after`, oldest first, at most `limit`, optionally only
    /// of one person (number) and/or by one reader.
    pub fn reads(
        &self,
        person: Option<&str>,
        reader: Option<&str>,
        after: i64,
        limit: u32,
    ) -> ServiceResult<Vec<ReadRecord>> {
        Ok(self.store().read()?.reads(person, reader, after, limit)?)
    }

    /// For the demo: one account per role, named after it, with a random 16-character password;
    /// non-national roles work in the first facility given.
    pub fn create_demo_logins(&self, ctx: &Context, facilities: &[String]) -> ServiceResult<Vec<DemoLogin>> {
        let mut logins = Vec::new();
        let mut hashes = Vec::new();
        for role in Role::ALL {
            let facilities = if role.national() {
                Vec::new()
            } else {
                let first = facilities
                    .first()
                    .ok_or_else(|| ServiceError::field("facilities", "the demo logins need at least one facility"))?;
                vec![first.clone()]
            };
            let password: String =
                rand::rng().sample_iter(rand::distr::Alphanumeric).take(DEMO_PASSWORD_CHARS).map(char::from).collect();
            hashes.push(hash_password(&password)?);
            logins.push(DemoLogin { name: role.as_str().to_string(), role, facilities, password });
        }
        self.batch(|tx| {
            for (login, hash) in logins.iter().zip(&hashes) {
                add_user_in(tx, ctx, &login.name, login.role, &login.facilities, hash)?;
            }
            Ok(())
        })?;
        Ok(logins)
    }

    /// Run a command in one write transaction together with its idempotency key (per actor):
    /// a stored answer to the same request is returned instead of running it again (`replayed`);
    /// the same key with another request is refused; otherwise the command runs and its answer is
    /// stored in the same transaction, so concurrent retries wait for it and see it.
    pub fn run_idempotent<T: serde::Serialize>(
        &self,
        key: Option<IdempotencyKey<'_>>,
        status: u16,
        mut work: impl FnMut(&mut S::Tx<'_>) -> ServiceResult<T>,
    ) -> ServiceResult<Answer> {
        self.batch(|tx| {
            if let Some(key) = &key {
                if let Some(stored) = tx.idempotency_get(key.actor, key.key)? {
                    if stored.request_sha256 != key.request_sha256 {
                        return Err(ServiceError::refused(
                            "idempotency.key_reused",
                            "this Idempotency-Key was used with a different request",
                        ));
                    }
                    return Ok(Answer { status: stored.status, body: stored.body, replayed: true });
                }
            }
            let out = work(tx)?;
            let body = serde_json::to_string(&out).map_err(|e| ServiceError::Internal(e.to_string()))?;
            if let Some(key) = &key {
                let stored =
                    StoredResponse { request_sha256: key.request_sha256.to_string(), status, body: body.clone() };
                tx.idempotency_put(key.actor, key.key, &stored, key.at)?;
            }
            Ok(Answer { status, body, replayed: false })
        })
    }
}
