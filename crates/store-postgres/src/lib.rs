#![forbid(unsafe_code)]
//! The server backend: PostgreSQL 15 or later through the synchronous `postgres` client.
//!
//! The SQL itself is backend-neutral and lives in `custodia-store`; this crate connects, keeps a
//! pool of connections (each with its prepared statements), rewrites the `?N` placeholders to
//! `$N`, binds and reads values by the types PostgreSQL infers, and maps PostgreSQL's errors to
//! [`StoreError`].
//!
//! Writers run one at a time across every process using the database, as with SQLite: a writer
//! takes a session-level advisory lock *before* it begins its serializable transaction, so its
//! snapshot is taken after the previous writer committed (a lock taken inside the transaction
//! would come after the snapshot, and the writer would work on stale rows). Readers run
//! `REPEATABLE READ READ ONLY` transactions beside them.
//!
//! The sync client runs a small tokio runtime of its own: it must not be created or dropped on an
//! async worker thread (call the store from `spawn_blocking`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::error::SqlState;
use postgres::types::{IsNull, Kind, ToSql as PgToSql, Type};
use postgres::{Client, NoTls, Statement};

use domain::audit::Value;
use store::sql::{Dialect, Driver, OwnedValue, Rows, Session};
use store::{StoreError, StoreResult};

/// Every migration in order; the schema version is the number applied.
pub const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_foundation.sql"),
    include_str!("../migrations/0002_staff.sql"),
    include_str!("../migrations/0003_read_paths.sql"),
    include_str!("../migrations/0004_person_name.sql"),
    include_str!("../migrations/0005_housing.sql"),
    include_str!("../migrations/0006_incident.sql"),
    include_str!("../migrations/0007_identity.sql"),
    include_str!("../migrations/0008_legal.sql"),
    include_str!("../migrations/0009_staff_audited.sql"),
    include_str!("../migrations/0010_session_audited.sql"),
];

/// The advisory lock every writer of a Custodia database holds (any constant would do; this one
/// is "Custodia" in ASCII).
pub const WRITER_LOCK: i64 = 0x437573746f646961;

/// The table holding the schema version.
const SCHEMA_TABLE: &str = "custodia_schema";

/// A PostgreSQL database: the URL it was opened with and a pool of connections.
pub struct PostgresDriver {
    config: postgres::Config,
    /// The URL without any password.
    location: String,
    pool: Mutex<Vec<Conn>>,
    /// Custodia's schema table was seen at the current version: Custodia never drops it, so
    /// every later transaction reads the version alone, one round trip instead of two.
    schema_seen: AtomicBool,
}

impl std::fmt::Debug for PostgresDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresDriver").field("location", &self.location).finish_non_exhaustive()
    }
}

/// Whether `url` is one this driver opens (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl PostgresDriver {
    /// Open `postgres://USER[:PASSWORD]@HOST[:PORT][,HOST2...]/DATABASE[?PARAMS]` (or
    /// `postgresql://`). It connects once to check the server, the login and the database.
    pub fn open(url: &str) -> StoreResult<Self> {
        if !is_postgres_url(url) {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        }
        let location = without_password(url);
        let config = postgres::Config::from_str(url).map_err(|e| StoreError::Unavailable {
            url: location.clone(),
            reason: format!("the URL is not a valid PostgreSQL URL ({}): correct it", one_line(&e.to_string())),
        })?;
        let driver = Self { config, location, pool: Mutex::new(Vec::new()), schema_seen: AtomicBool::new(false) };
        let conn = driver.connect()?;
        lock(&driver.pool).push(conn);
        Ok(driver)
    }

    /// The URL without any password.
    pub fn url(&self) -> &str {
        &self.location
    }

    fn connect(&self) -> StoreResult<Conn> {
        let client = self.config.connect(NoTls).map_err(|e| unavailable(&self.location, &e))?;
        Ok(Conn { client, statements: HashMap::new(), typed: HashMap::new(), needs_types: Default::default() })
    }

    fn pooled(&self) -> StoreResult<Conn> {
        let pooled = lock(&self.pool).pop();
        match pooled {
            Some(conn) if !conn.client.is_closed() => Ok(conn),
            _ => self.connect(),
        }
    }

    /// A connection with each of `steps` run on it in turn (simple query protocol).
    fn session(&self, steps: &[&str], kind: Kind_) -> StoreResult<PgSession<'_>> {
        let mut conn = self.pooled()?;
        if let Err(e) = steps.iter().try_for_each(|step| conn.client.batch_execute(step)) {
            let error = self.error(&e);
            if !conn.client.is_closed() {
                // The lock may be held although the transaction did not begin.
                if conn.client.batch_execute("ROLLBACK; SELECT pg_advisory_unlock_all()").is_ok() {
                    lock(&self.pool).push(conn);
                }
            }
            return Err(error);
        }
        Ok(PgSession { driver: self, conn: RefCell::new(Some(conn)), finished: false, kind })
    }

    fn writer_session(&self, bulk: bool) -> StoreResult<PgSession<'_>> {
        // The lock is taken before the transaction begins (a statement of its own: BEGIN cannot
        // follow a query in one simple-protocol message), so the snapshot comes after it.
        let lock = format!("SELECT pg_advisory_lock({WRITER_LOCK})");
        let begin = if bulk {
            "BEGIN ISOLATION LEVEL SERIALIZABLE; SET CONSTRAINTS ALL DEFERRED"
        } else {
            "BEGIN ISOLATION LEVEL SERIALIZABLE"
        };
        self.session(&[&lock, begin], Kind_::Writer)
    }

    fn error(&self, e: &postgres::Error) -> StoreError {
        error(&self.location, e)
    }

    /// What the database holds: (the schema table, other tables of Custodia's schemas).
    fn contents(&self, session: &dyn Session) -> StoreResult<(bool, bool)> {
        session.query_row(
            "SELECT
                EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname = 'public' AND c.relname = 'custodia_schema' AND c.relkind = 'r'),
                EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname = 'public' AND c.relname <> 'custodia_schema'
                          AND c.relkind IN ('r', 'p', 'v', 'm', 'f'))
                OR EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'readlog')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    fn foreign(&self) -> StoreError {
        StoreError::Foreign(self.location.clone())
    }
}

/// The URL without the password of its user part or of a `password=` parameter.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority_and_path, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    // The user part ends at the last '@' before the path.
    let authority_end = authority_and_path.find('/').unwrap_or(authority_and_path.len());
    let (authority, path) = authority_and_path.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user, hosts)) => {
            let user = user.split_once(':').map(|(u, _)| u).unwrap_or(user);
            format!("{user}@{hosts}")
        }
        None => authority.to_string(),
    };
    let mut out = format!("{scheme}://{authority}{path}");
    if let Some(query) = query {
        let kept: Vec<&str> = query.split('&').filter(|p| !p.to_ascii_lowercase().starts_with("password=")).collect();
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
    }
    out
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Why a connection failed, in one line, and what to do.
fn unavailable(url: &str, e: &postgres::Error) -> StoreError {
    let reason = match e.as_db_error() {
        Some(db) => {
            let message = one_line(db.message());
            match *db.code() {
                SqlState::INVALID_PASSWORD => {
                    format!("{message}: correct the user or password in the URL (or the server's pg_hba.conf)")
                }
                SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
                    format!("{message}: use a user the server knows, or allow this login in its pg_hba.conf")
                }
                SqlState::INVALID_CATALOG_NAME => {
                    format!("{message}: create it (an empty database, e.g. with createdb) or correct the URL")
                }
                SqlState::TOO_MANY_CONNECTIONS => {
                    format!("{message}: raise the server's max_connections or close other clients")
                }
                _ => format!("{message} (SQLSTATE {}): check the server and the URL", db.code().code()),
            }
        }
        None => {
            let mut message = one_line(&e.to_string());
            let mut source = e.source();
            while let Some(s) = source {
                message = format!("{message}: {}", one_line(&s.to_string()));
                source = s.source();
            }
            format!("{message}: check that the PostgreSQL server is running and that the URL's host and port are right")
        }
    };
    StoreError::Unavailable { url: url.to_string(), reason }
}

/// PostgreSQL's errors in the store's terms.
fn error(url: &str, e: &postgres::Error) -> StoreError {
    let Some(db) = e.as_db_error() else {
        if e.is_closed() || e.source().is_some_and(|s| s.is::<std::io::Error>()) {
            return unavailable(url, e);
        }
        return StoreError::Backend(one_line(&e.to_string()));
    };
    let code = db.code();
    if *code == SqlState::UNIQUE_VIOLATION {
        let table = db.table().unwrap_or_default().to_string();
        let columns = db.detail().and_then(key_columns).unwrap_or_default();
        return StoreError::Duplicate { table, columns };
    }
    if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED {
        return StoreError::Retry(one_line(db.message()));
    }
    if *code == SqlState::FOREIGN_KEY_VIOLATION {
        // Worded as SQLite's check at the commit of a bulk load words it.
        let table = db.table().unwrap_or_default();
        let detail = db.detail().map(one_line).unwrap_or_default();
        return StoreError::Backend(format!("{table} row refers to a missing row: {detail}"));
    }
    let class = &code.code()[..2];
    if class == "08" || class == "57" || class == "53" || class == "28" {
        return unavailable(url, e);
    }
    let mut message = format!("{} (SQLSTATE {})", one_line(db.message()), code.code());
    if let Some(detail) = db.detail() {
        message = format!("{message}: {}", one_line(detail));
    }
    StoreError::Backend(message)
}

/// The columns of `Key (a, b)=(1, 2) already exists.`
fn key_columns(detail: &str) -> Option<Vec<String>> {
    let rest = detail.strip_prefix("Key (")?;
    let end = rest.find(")=(")?;
    Some(rest[..end].split(", ").map(|c| c.trim_matches('"').to_string()).collect())
}

/// `?N` placeholders as `$N`, outside string literals, quoted identifiers and comments.
pub fn rewrite_placeholders(sql: &str) -> String {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let mut start = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        // A doubled quote stays inside.
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            b'?' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                out.push_str(&sql[start..i]);
                out.push('$');
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[start.min(sql.len())..]);
    out
}

/// One connection and the statements prepared on it.
struct Conn {
    client: Client,
    /// Statements by their SQL as the store wrote it, parameter types inferred by the server.
    statements: HashMap<String, Statement>,
    /// Statements prepared with parameter types given, by SQL and those types.
    typed: HashMap<(String, Vec<Type>), Statement>,
    /// SQL whose parameter types the server cannot infer.
    needs_types: std::collections::HashSet<String>,
}

/// What a session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind_ {
    /// Holds the writer lock; releases it when the transaction ends.
    Writer,
    /// Read only.
    Reader,
}

/// A connection with its transaction open; given back to the pool when it ends.
struct PgSession<'d> {
    driver: &'d PostgresDriver,
    conn: RefCell<Option<Conn>>,
    finished: bool,
    kind: Kind_,
}

impl PgSession<'_> {
    fn with_conn<T>(&self, f: impl FnOnce(&mut Conn) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.conn.borrow_mut();
        let conn = conn.as_mut().ok_or_else(|| StoreError::Backend("the session's connection is gone".into()))?;
        f(conn)
    }

    /// The statement for `sql` and these values: as the server typed it when every value fits,
    /// else prepared with the values' types.
    fn statement(&self, conn: &mut Conn, sql: &str, params: &[Value<'_>]) -> StoreResult<Statement> {
        if !conn.needs_types.contains(sql) {
            let inferred = match conn.statements.get(sql) {
                Some(stmt) => Some(stmt.clone()),
                None => match prepare_inferring(conn, sql) {
                    Ok(stmt) => {
                        conn.statements.insert(sql.to_string(), stmt.clone());
                        Some(stmt)
                    }
                    Err(e)
                        if matches!(
                            e.code(),
                            Some(&SqlState::INDETERMINATE_DATATYPE | &SqlState::AMBIGUOUS_PARAMETER)
                        ) =>
                    {
                        conn.needs_types.insert(sql.to_string());
                        None
                    }
                    Err(e) => return Err(self.driver.error(&e)),
                },
            };
            if let Some(stmt) = inferred {
                if stmt.params().iter().zip(params).all(|(ty, v)| fits(ty, v)) {
                    return Ok(stmt);
                }
                // Keep the types that fit, give the values' own where they do not.
                let types: Vec<Type> = stmt
                    .params()
                    .iter()
                    .zip(params)
                    .map(|(ty, v)| if fits(ty, v) { ty.clone() } else { type_of(v) })
                    .collect();
                return self.typed_statement(conn, sql, types);
            }
        }
        self.typed_statement(conn, sql, params.iter().map(type_of).collect())
    }

    fn typed_statement(&self, conn: &mut Conn, sql: &str, types: Vec<Type>) -> StoreResult<Statement> {
        let key = (sql.to_string(), types);
        if let Some(stmt) = conn.typed.get(&key) {
            return Ok(stmt.clone());
        }
        let stmt = conn.client.prepare_typed(&rewrite_placeholders(sql), &key.1).map_err(|e| self.driver.error(&e))?;
        conn.typed.insert(key, stmt.clone());
        Ok(stmt)
    }

    fn check_count(stmt: &Statement, params: &[Value<'_>]) -> StoreResult<()> {
        if stmt.params().len() != params.len() {
            return Err(StoreError::Backend(format!(
                "the statement has {} parameters but {} values were given",
                stmt.params().len(),
                params.len()
            )));
        }
        Ok(())
    }
}

/// Prepare `sql` letting the server infer its parameters' types. A failed prepare aborts the
/// transaction it is in, so it runs under a savepoint (only when a connection first sees `sql`).
fn prepare_inferring(conn: &mut Conn, sql: &str) -> Result<Statement, postgres::Error> {
    conn.client.batch_execute("SAVEPOINT custodia_prepare")?;
    match conn.client.prepare(&rewrite_placeholders(sql)) {
        Ok(stmt) => {
            conn.client.batch_execute("RELEASE SAVEPOINT custodia_prepare")?;
            Ok(stmt)
        }
        Err(e) => {
            conn.client.batch_execute("ROLLBACK TO SAVEPOINT custodia_prepare")?;
            Err(e)
        }
    }
}

/// Whether a value can be bound to a parameter of this type.
fn fits(ty: &Type, v: &Value<'_>) -> bool {
    if let Kind::Domain(base) = ty.kind() {
        return fits(base, v);
    }
    match v {
        Value::Null => true,
        Value::Int(i) => match *ty {
            Type::INT8 | Type::FLOAT8 | Type::FLOAT4 | Type::NUMERIC => true,
            Type::INT4 => i32::try_from(*i).is_ok(),
            Type::INT2 => i16::try_from(*i).is_ok(),
            Type::BOOL => *i == 0 || *i == 1,
            _ => false,
        },
        Value::Real(_) => matches!(*ty, Type::FLOAT8 | Type::FLOAT4),
        Value::Text(_) => {
            matches!(*ty, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON)
        }
        Value::Blob(_) => *ty == Type::BYTEA,
    }
}

/// The type a value is prepared with when the server cannot infer one.
fn type_of(v: &Value<'_>) -> Type {
    match v {
        Value::Int(_) => Type::INT8,
        Value::Real(_) => Type::FLOAT8,
        Value::Text(_) | Value::Null => Type::TEXT,
        Value::Blob(_) => Type::BYTEA,
    }
}

/// A value bound to a parameter of the type the statement has for it.
#[derive(Debug)]
struct Bind<'a>(&'a Value<'a>);

type BoxError = Box<dyn StdError + Sync + Send>;

impl PgToSql for Bind<'_> {
    fn to_sql(&self, ty: &Type, out: &mut postgres::types::private::BytesMut) -> Result<IsNull, BoxError> {
        if let Kind::Domain(base) = ty.kind() {
            return self.to_sql(base, out);
        }
        match (self.0, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Int(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Value::Int(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Int(i), &Type::FLOAT4) => (*i as f32).to_sql(ty, out),
            (Value::Int(i), &Type::NUMERIC) => {
                numeric_of_i64(*i, out);
                Ok(IsNull::No)
            }
            (Value::Real(r), &Type::FLOAT8) => r.to_sql(ty, out),
            (Value::Real(r), &Type::FLOAT4) => (*r as f32).to_sql(ty, out),
            (Value::Text(t), _) if fits(ty, self.0) => {
                out.extend_from_slice(t.as_bytes());
                Ok(IsNull::No)
            }
            (Value::Blob(b), &Type::BYTEA) => {
                out.extend_from_slice(b);
                Ok(IsNull::No)
            }
            (v, ty) => Err(format!("cannot bind {} to a parameter of type {ty}", kind_name(v)).into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(&self, ty: &Type, out: &mut postgres::types::private::BytesMut) -> Result<IsNull, BoxError> {
        self.to_sql(ty, out)
    }
}

fn kind_name(v: &Value<'_>) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Int(_) => "an integer",
        Value::Real(_) => "a float",
        Value::Text(_) => "text",
        Value::Blob(_) => "bytes",
    }
}

/// An integer in NUMERIC's binary form: base-10000 digits, most significant first.
fn numeric_of_i64(i: i64, out: &mut postgres::types::private::BytesMut) {
    let mut magnitude = i.unsigned_abs();
    let mut digits = Vec::new();
    while magnitude > 0 {
        digits.push((magnitude % 10_000) as i16);
        magnitude /= 10_000;
    }
    digits.reverse();
    let weight = digits.len() as i16 - 1;
    out.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.max(0).to_be_bytes());
    out.extend_from_slice(&(if i < 0 { 0x4000u16 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
}

/// A column value as the store reads it.
struct Cell(OwnedValue);

impl<'a> postgres::types::FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if let Kind::Domain(base) = ty.kind() {
            return Self::from_sql(base, raw);
        }
        let value = match *ty {
            Type::INT8 => OwnedValue::Integer(i64::from_sql(ty, raw)?),
            Type::INT4 => OwnedValue::Integer(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => OwnedValue::Integer(i16::from_sql(ty, raw)?.into()),
            Type::OID => OwnedValue::Integer(u32::from_sql(ty, raw)?.into()),
            Type::BOOL => OwnedValue::Integer(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => OwnedValue::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => OwnedValue::Real(f32::from_sql(ty, raw)?.into()),
            Type::NUMERIC => numeric(raw)?,
            Type::BYTEA => OwnedValue::Blob(raw.to_vec()),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON => {
                OwnedValue::Text(raw.to_vec())
            }
            Type::CHAR => OwnedValue::Text(raw.to_vec()),
            _ => return Err(format!("columns of type {ty} are not read by Custodia").into()),
        };
        Ok(Cell(value))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Cell(OwnedValue::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// NUMERIC's binary form (what `sum` and `avg` return): an integer when it has no fraction and
/// fits, else a float.
fn numeric(raw: &[u8]) -> Result<OwnedValue, BoxError> {
    let word = |i: usize| -> Result<u16, BoxError> {
        raw.get(i * 2..i * 2 + 2).map(|b| u16::from_be_bytes([b[0], b[1]])).ok_or_else(|| "short NUMERIC".into())
    };
    let ndigits = word(0)? as usize;
    let weight = word(1)? as i16 as i32;
    let sign = word(2)?;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok(OwnedValue::Real(f64::NAN)),
        0xD000 => return Ok(OwnedValue::Real(f64::INFINITY)),
        0xF000 => return Ok(OwnedValue::Real(f64::NEG_INFINITY)),
        _ => return Err("bad NUMERIC sign".into()),
    }
    let digits: Vec<u16> = (0..ndigits).map(|i| word(4 + i)).collect::<Result<_, _>>()?;
    // Digit k counts 10000^(weight - k).
    let integral = digits.iter().enumerate().all(|(k, d)| *d == 0 || weight - k as i32 >= 0);
    if integral {
        let mut value: i128 = 0;
        let mut fits = true;
        for k in 0..=weight.max(-1) {
            let d = digits.get(k as usize).copied().unwrap_or(0) as i128;
            match value.checked_mul(10_000).and_then(|v| v.checked_add(d)) {
                Some(v) if v <= i64::MAX as i128 + 1 => value = v,
                _ => {
                    fits = false;
                    break;
                }
            }
        }
        if sign == 0x4000 {
            value = -value;
        }
        if fits {
            if let Ok(i) = i64::try_from(value) {
                return Ok(OwnedValue::Integer(i));
            }
        }
    }
    // As decimal text, so the float is the nearest to the exact value.
    let digit = |k: i32| if k >= 0 { digits.get(k as usize).copied().unwrap_or(0) } else { 0 };
    let mut text = String::from(if sign == 0x4000 { "-0" } else { "0" });
    for k in 0..=weight {
        text.push_str(&format!("{:04}", digit(k)));
    }
    text.push('.');
    for k in (weight + 1).min(0)..(digits.len() as i32) {
        if k > weight {
            text.push_str(&format!("{:04}", digit(k)));
        }
    }
    text.push('0');
    Ok(OwnedValue::Real(text.parse::<f64>()?))
}

impl Drop for PostgresDriver {
    /// Close the pooled connections on a thread of their own: a client blocks on its runtime to
    /// close, which panics on an async worker thread (where the last handle to a service may go).
    fn drop(&mut self) {
        let pool = std::mem::take(self.pool.get_mut().unwrap_or_else(|p| p.into_inner()));
        if !pool.is_empty() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

impl Drop for PgSession<'_> {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.get_mut().take() else { return };
        if conn.client.is_closed() {
            return;
        }
        let end = match (self.finished, self.kind) {
            (true, _) => Ok(()),
            (false, Kind_::Writer) => conn.client.batch_execute("ROLLBACK; SELECT pg_advisory_unlock_all()"),
            (false, Kind_::Reader) => conn.client.batch_execute("ROLLBACK"),
        };
        // A connection that cannot end its transaction is closed rather than pooled.
        if end.is_ok() {
            lock(&self.driver.pool).push(conn);
        }
    }
}

impl Session for PgSession<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute_values(&self, sql: &str, params: &[Value<'_>]) -> StoreResult<usize> {
        self.with_conn(|conn| {
            let stmt = self.statement(conn, sql, params)?;
            Self::check_count(&stmt, params)?;
            let binds: Vec<Bind<'_>> = params.iter().map(Bind).collect();
            let refs: Vec<&(dyn PgToSql + Sync)> = binds.iter().map(|b| b as &(dyn PgToSql + Sync)).collect();
            let n = conn.client.execute(&stmt, &refs).map_err(|e| self.driver.error(&e))?;
            Ok(n as usize)
        })
    }

    fn query_values(&self, sql: &str, params: &[Value<'_>]) -> StoreResult<Rows> {
        self.with_conn(|conn| {
            let stmt = self.statement(conn, sql, params)?;
            Self::check_count(&stmt, params)?;
            let binds: Vec<Bind<'_>> = params.iter().map(Bind).collect();
            let refs: Vec<&(dyn PgToSql + Sync)> = binds.iter().map(|b| b as &(dyn PgToSql + Sync)).collect();
            let rows = conn.client.query(&stmt, &refs).map_err(|e| self.driver.error(&e))?;
            let columns = stmt.columns().len();
            let mut values = Vec::with_capacity(rows.len() * columns);
            for row in &rows {
                for i in 0..columns {
                    let cell: Cell = row.try_get(i).map_err(|e| {
                        StoreError::Backend(format!(
                            "column {}: {}",
                            stmt.columns()[i].name(),
                            one_line(&e.to_string())
                        ))
                    })?;
                    values.push(cell.0);
                }
            }
            Ok(Rows::new(columns, values))
        })
    }

    fn execute_batch(&self, sql: &str) -> StoreResult<()> {
        self.with_conn(|conn| conn.client.batch_execute(sql).map_err(|e| self.driver.error(&e)))
    }

    /// Through a cursor of the session's transaction, `chunk` rows per fetch. The cursor is
    /// named after the query: a prepared FETCH keeps the columns of the cursor it was prepared
    /// on, so each query needs a FETCH statement of its own.
    fn query_in_chunks(
        &self,
        sql: &str,
        chunk: usize,
        each: &mut dyn FnMut(Rows) -> StoreResult<()>,
    ) -> StoreResult<()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        sql.hash(&mut hasher);
        let cursor = format!("custodia_chunks_{:016x}", hasher.finish());
        self.execute_batch(&format!("DECLARE {cursor} NO SCROLL CURSOR FOR {sql}"))?;
        loop {
            let rows = self.query_values(&format!("FETCH FORWARD {chunk} FROM {cursor}"), &[])?;
            if rows.is_empty() {
                break;
            }
            each(rows)?;
        }
        self.execute_batch(&format!("CLOSE {cursor}"))
    }

    /// One binary COPY: the rows stream to the server without a round trip each.
    fn insert_rows(&self, table: &str, columns: usize, values: &[Value<'_>]) -> StoreResult<()> {
        if columns == 0 || values.is_empty() {
            return Ok(());
        }
        self.with_conn(|conn| {
            let pg = |e: postgres::Error| self.driver.error(&e);
            let shape = self.statement(conn, &format!("SELECT * FROM {table} LIMIT 0"), &[])?;
            let types: Vec<Type> = shape.columns().iter().map(|c| c.type_().clone()).collect();
            if types.len() != columns || !values.len().is_multiple_of(columns) {
                return Err(StoreError::Backend(format!(
                    "{table} has {} columns; {} values do not make rows of {columns}",
                    types.len(),
                    values.len()
                )));
            }
            let sink = conn.client.copy_in(&format!("COPY {table} FROM STDIN (FORMAT binary)")).map_err(pg)?;
            let mut writer = BinaryCopyInWriter::new(sink, &types);
            for row in values.chunks(columns) {
                let binds: Vec<Bind<'_>> = row.iter().map(Bind).collect();
                let refs: Vec<&(dyn PgToSql + Sync)> = binds.iter().map(|b| b as &(dyn PgToSql + Sync)).collect();
                writer.write(&refs).map_err(pg)?;
            }
            writer.finish().map_err(pg)?;
            Ok(())
        })
    }

    fn commit(&mut self) -> StoreResult<()> {
        let kind = self.kind;
        let result = self.with_conn(|conn| {
            let committed = conn.client.batch_execute("COMMIT");
            let unlocked = match kind {
                // A failed COMMIT still ends the transaction; the lock is released either way.
                Kind_::Writer if !conn.client.is_closed() => {
                    conn.client.batch_execute("SELECT pg_advisory_unlock_all()")
                }
                _ => Ok(()),
            };
            committed.map_err(|e| self.driver.error(&e))?;
            unlocked.map_err(|e| self.driver.error(&e))
        });
        match &result {
            Ok(()) => self.finished = true,
            // The transaction is over either way; a connection that could not release the lock is dropped.
            Err(_) => {
                self.finished = true;
                let broken = self.conn.borrow().as_ref().is_none_or(|c| c.client.is_closed());
                if broken {
                    self.conn.borrow_mut().take();
                }
            }
        }
        result
    }
}

impl Driver for PostgresDriver {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    fn migrations(&self) -> &'static [&'static str] {
        MIGRATIONS
    }

    fn migration_session(&self) -> StoreResult<Box<dyn Session + '_>> {
        let session = self.writer_session(false)?;
        match self.contents(&session)? {
            (false, true) => return Err(self.foreign()),
            (false, false) => session.execute_batch(&format!(
                "CREATE TABLE {SCHEMA_TABLE} (version BIGINT NOT NULL); INSERT INTO {SCHEMA_TABLE} VALUES (0)"
            ))?,
            (true, _) => {}
        }
        Ok(Box::new(session))
    }

    fn schema_version(&self, session: &dyn Session) -> StoreResult<i64> {
        let contents = if self.schema_seen.load(Ordering::Relaxed) { (true, true) } else { self.contents(session)? };
        match contents {
            (true, _) => {
                let version = session
                    .query_row(&format!("SELECT max(version) FROM {SCHEMA_TABLE}"), [], |r| r.get::<_, Option<i64>>(0))?
                    .unwrap_or_default();
                // Not while migrating: a migration that rolls back takes the table with it.
                if version >= self.migrations().len() as i64 {
                    self.schema_seen.store(true, Ordering::Relaxed);
                }
                Ok(version)
            }
            (false, true) => Err(self.foreign()),
            (false, false) => Ok(0),
        }
    }

    fn set_schema_version(&self, session: &dyn Session, version: i64) -> StoreResult<()> {
        session.execute(&format!("UPDATE {SCHEMA_TABLE} SET version = ?1"), [version])?;
        Ok(())
    }

    fn writer(&self, bulk: bool) -> StoreResult<Box<dyn Session + '_>> {
        Ok(Box::new(self.writer_session(bulk)?))
    }

    fn reader(&self) -> StoreResult<Box<dyn Session + '_>> {
        Ok(Box::new(self.session(&["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"], Kind_::Reader)?))
    }

    fn readers_on_one_snapshot(&self, n: usize) -> StoreResult<Vec<Box<dyn Session + Send + '_>>> {
        let mut sessions: Vec<Box<dyn Session + Send + '_>> = Vec::with_capacity(n);
        if n == 0 {
            return Ok(sessions);
        }
        let first = self.session(&["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"], Kind_::Reader)?;
        let snapshot: String = (&first as &dyn Session).query_row("SELECT pg_export_snapshot()", [], |r| r.get(0))?;
        sessions.push(Box::new(first));
        for _ in 1..n {
            let begin = format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
                snapshot.replace('\'', "''")
            );
            sessions.push(Box::new(self.session(&[&begin], Kind_::Reader)?));
        }
        Ok(sessions)
    }

    fn commit_baseline(&self, commits: u64) -> StoreResult<f64> {
        let mut conn = self.pooled()?;
        let err = |e: postgres::Error| self.error(&e);
        conn.client
            .batch_execute(
                "DROP TABLE IF EXISTS custodia_commit_baseline;
                 CREATE TABLE custodia_commit_baseline (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v TEXT)",
            )
            .map_err(err)?;
        let timed = (|| {
            let insert = conn.client.prepare("INSERT INTO custodia_commit_baseline (v) VALUES ('x')").map_err(err)?;
            let started = Instant::now();
            for _ in 0..commits {
                // Outside a transaction block each statement is a transaction of its own, committed durably.
                conn.client.execute(&insert, &[]).map_err(err)?;
            }
            Ok(commits as f64 / started.elapsed().as_secs_f64())
        })();
        let dropped = conn.client.batch_execute("DROP TABLE custodia_commit_baseline").map_err(err);
        if dropped.is_ok() {
            lock(&self.pool).push(conn);
        }
        let rate = timed?;
        dropped?;
        Ok(rate)
    }

    fn record_tables(&self, session: &dyn Session) -> StoreResult<Vec<String>> {
        session.query_map(
            &format!(
                "SELECT CASE n.nspname WHEN 'public' THEN '' ELSE n.nspname || '.' END || c.relname
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname IN ('public', 'readlog') AND c.relkind = 'r' AND c.relname <> '{SCHEMA_TABLE}'
                 ORDER BY c.oid"
            ),
            [],
            |r| r.get(0),
        )
    }

    fn continue_ids(&self, session: &dyn Session) -> StoreResult<()> {
        let identities: Vec<(String, String)> = session.query_map(
            "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name), column_name
             FROM information_schema.columns
             WHERE table_schema IN ('public', 'readlog') AND is_identity = 'YES'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        for (table, column) in identities {
            session.query(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), max({column}))
                     FROM {table} HAVING max({column}) IS NOT NULL"
                ),
                [],
            )?;
        }
        Ok(())
    }

    /// Row by row, a load checks every reference with a query of its own and grows every index
    /// one entry at a time; a constraint added afterwards checks them all in one join and an
    /// index built afterwards is sorted once. Keys go first and come back first, as references
    /// need them.
    fn suspend_checks(&self, session: &dyn Session) -> StoreResult<Vec<String>> {
        let statements: Vec<(String, String)> = session.query_map(
            &format!(
                "SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', t.oid::regclass, c.conname),
                        format('ALTER TABLE %s ADD CONSTRAINT %I %s', t.oid::regclass, c.conname,
                               pg_get_constraintdef(c.oid)),
                        CASE c.contype WHEN 'f' THEN 1 ELSE 3 END
                 FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_class t ON t.oid = c.conrelid
                      JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
                 WHERE n.nspname IN ('public', 'readlog') AND t.relname <> '{SCHEMA_TABLE}'
                   AND c.contype IN ('f', 'p', 'u')
                 UNION ALL
                 SELECT format('DROP INDEX %s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid), 2
                 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
                      JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
                 WHERE n.nspname IN ('public', 'readlog') AND t.relname <> '{SCHEMA_TABLE}'
                   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = i.indexrelid)
                 ORDER BY 3, 1"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        for (drop, _) in &statements {
            session.execute_batch(drop)?;
        }
        // Index builds sort in memory up to this much, once each.
        session.execute_batch("SET LOCAL maintenance_work_mem = '512MB'")?;
        Ok(statements.into_iter().rev().map(|(_, restore)| restore).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten_outside_quotes_and_comments() {
        assert_eq!(rewrite_placeholders("SELECT ?1, ?12 FROM t WHERE a = ?2"), "SELECT $1, $12 FROM t WHERE a = $2");
        assert_eq!(rewrite_placeholders("SELECT '?1', \"?2\", 'it''s ?3', ?4"), "SELECT '?1', \"?2\", 'it''s ?3', $4");
        assert_eq!(rewrite_placeholders("SELECT ?1 -- ?2\n, /* ?3 */ ?4"), "SELECT $1 -- ?2\n, /* ?3 */ $4");
        assert_eq!(rewrite_placeholders("SELECT j ? 'k', ?1"), "SELECT j ? 'k', $1");
        assert_eq!(rewrite_placeholders("SELECT 'unterminated ?1"), "SELECT 'unterminated ?1");
        assert_eq!(rewrite_placeholders(""), "");
    }

    #[test]
    fn passwords_are_removed_from_urls() {
        assert_eq!(without_password("postgres://u:secret@127.0.0.1:1/x"), "postgres://u@127.0.0.1:1/x");
        assert_eq!(without_password("postgresql://u@h1:5432,h2:5433/db"), "postgresql://u@h1:5432,h2:5433/db");
        assert_eq!(
            without_password("postgres://h/db?password=secret&target_session_attrs=read-write"),
            "postgres://h/db?target_session_attrs=read-write"
        );
        assert_eq!(without_password("postgres://u:p@ss@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn unique_key_details_give_the_columns() {
        assert_eq!(
            key_columns("Key (facility_id, code)=(1, A) already exists."),
            Some(vec!["facility_id".into(), "code".into()])
        );
        assert_eq!(key_columns("Key (code)=(A) already exists."), Some(vec!["code".into()]));
    }

    fn numeric_bytes(ndigits: i16, weight: i16, sign: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&ndigits.to_be_bytes());
        v.extend_from_slice(&weight.to_be_bytes());
        v.extend_from_slice(&sign.to_be_bytes());
        v.extend_from_slice(&0u16.to_be_bytes());
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_become_integers_when_integral() {
        assert_eq!(numeric(&numeric_bytes(0, 0, 0, &[])).unwrap(), OwnedValue::Integer(0));
        assert_eq!(numeric(&numeric_bytes(2, 1, 0, &[12, 3456])).unwrap(), OwnedValue::Integer(123456));
        assert_eq!(numeric(&numeric_bytes(1, 2, 0x4000, &[7])).unwrap(), OwnedValue::Integer(-700000000));
        assert_eq!(numeric(&numeric_bytes(2, 0, 0, &[2, 5000])).unwrap(), OwnedValue::Real(2.5));
        assert_eq!(numeric(&numeric_bytes(1, -1, 0, &[2500])).unwrap(), OwnedValue::Real(0.25));
        assert_eq!(numeric(&numeric_bytes(1, -2, 0x4000, &[5])).unwrap(), OwnedValue::Real(-0.00000005));
        // Larger than i64: a float.
        assert!(matches!(numeric(&numeric_bytes(1, 5, 0, &[1])).unwrap(), OwnedValue::Real(r) if r == 1e20));
    }
}
