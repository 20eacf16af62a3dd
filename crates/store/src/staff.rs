//! Staff accounts, API tokens, sessions, login throttling, the log of record reads and stored
//! responses of idempotent requests. No secret is stored in the clear.
//!
//! Accounts (`staff_user`, `staff_facility`), tokens (`api_token`) and sessions (`session`) are
//! projections: every change also writes an audited, insert-only version row
//! (`staff_user_version`, `api_token_version`, `session_version`) holding the whole new state,
//! which `audit verify` compares with the projection ([`staff_problems`]). Login failures and
//! idempotent responses are not audited. The read register is a hash chain of its own ([`read_log_problems`]).

use std::collections::HashMap;

use crate::sql::{params, OptionalExtension, Session, ToSql};
use serde::Serialize;
use sha2::{Digest, Sha256};

use domain::audit::{encode_value, Value, GENESIS};
use domain::time::{from_micros, to_micros, Instant};

use crate::SqlTx;
use crate::{StoreError, StoreResult};

/// Stored id of a staff account.
pub type UserId = i64;

/// A staff account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffRow {
    /// Stored id.
    pub id: UserId,
    /// Login name.
    pub name: String,
    /// Role name, for example `records`.
    pub role: String,
    /// Codes of the facilities the account works in, sorted.
    pub facilities: Vec<String>,
    /// Argon2id hash of the password (PHC string).
    pub password_hash: String,
    /// A disabled account cannot log in and its tokens and sessions do not work.
    pub disabled: bool,
}

/// An account to write.
#[derive(Debug, Clone)]
pub struct NewStaff<'a> {
    /// Login name.
    pub name: &'a str,
    /// Role name.
    pub role: &'a str,
    /// Facility codes (each must exist).
    pub facilities: &'a [String],
    /// Argon2id hash of the password.
    pub password_hash: &'a str,
    /// When the account is created.
    pub created_at: Instant,
}

/// One read of a person's record (Mandela Rule 9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadRecord {
    /// Stored id, increasing: the cursor of [`StaffTx::reads`].
    pub id: i64,
    /// When the record was read.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Instant,
    /// Who read it.
    pub reader: String,
    /// Number of the person whose record was read.
    pub person: String,
    /// Through which route (screen or API path).
    pub route: String,
}

/// A stored response to a request made with an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// SHA-256 hex of the request it answered.
    pub request_sha256: String,
    /// HTTP status code.
    pub status: u16,
    /// Response body.
    pub body: String,
}

/// Reads and writes of staff accounts and what hangs off them, in the caller's transaction.
pub trait StaffTx {
    /// Write an account and its facilities.
    fn insert_user(&mut self, user: &NewStaff<'_>) -> StoreResult<UserId>;
    /// An account by login name.
    fn user_by_name(&mut self, name: &str) -> StoreResult<Option<StaffRow>>;
    /// Every account, by name.
    fn users(&mut self) -> StoreResult<Vec<StaffRow>>;
    /// Replace an account's password hash.
    fn set_password_hash(&mut self, user: UserId, password_hash: &str, at: Instant) -> StoreResult<()>;
    /// Disable or enable an account.
    fn set_user_disabled(&mut self, user: UserId, disabled: bool, at: Instant) -> StoreResult<()>;
    /// Replace an account's facilities (each must exist).
    fn set_user_facilities(&mut self, user: UserId, facilities: &[String], at: Instant) -> StoreResult<()>;

    /// Write an API token, given by the SHA-256 hex of its text.
    fn insert_token(
        &mut self,
        user: UserId,
        token_sha256: &str,
        created_at: Instant,
        expires_at: Instant,
    ) -> StoreResult<i64>;
    /// The enabled account owning a token that is neither revoked nor expired at `now`.
    fn staff_by_token_hash(&mut self, token_sha256: &str, now: Instant) -> StoreResult<Option<StaffRow>>;
    /// Revoke every live token of an account; returns how many were revoked.
    fn revoke_tokens(&mut self, user: UserId, now: Instant) -> StoreResult<u64>;

    /// Write a session, given by the SHA-256 hex of its secret.
    fn insert_session(
        &mut self,
        user: UserId,
        secret_sha256: &str,
        created_at: Instant,
        expires_at: Instant,
    ) -> StoreResult<i64>;
    /// The enabled account of a session that has neither ended nor expired at `now`.
    fn staff_by_session_hash(&mut self, secret_sha256: &str, now: Instant) -> StoreResult<Option<StaffRow>>;
    /// End one session; its id and its account's name, or None if it was unknown or had already ended.
    fn end_session(&mut self, secret_sha256: &str, now: Instant) -> StoreResult<Option<(i64, String)>>;
    /// End every open session of an account; returns how many were ended.
    fn end_sessions_of(&mut self, user: UserId, now: Instant) -> StoreResult<u64>;

    /// Failed logins counted under a throttle key (a name and address, or an address), and when
    /// the last one was.
    fn login_failures(&mut self, key: &str) -> StoreResult<Option<(u32, Instant)>>;
    /// Count one more failed login under a key, starting again from one when the last failure
    /// is older than `restart_before`; returns the new count. At most `bound` keys are kept:
    /// beyond that, the keys whose last failure is oldest are forgotten.
    fn record_login_failure(
        &mut self,
        key: &str,
        now: Instant,
        restart_before: Instant,
        bound: u32,
    ) -> StoreResult<u32>;
    /// Forget the failed logins of a key.
    fn clear_login_failures(&mut self, key: &str) -> StoreResult<()>;

    /// Log one read of a person's record.
    fn insert_read(&mut self, at: Instant, reader: &str, person: &str, route: &str) -> StoreResult<i64>;
    /// The newest read's id and chain link (0 and the genesis link when there is none).
    fn read_log_head(&mut self) -> StoreResult<(i64, [u8; 32])>;
    /// Reads with id above `after`, oldest first, optionally only of one person and/or by one reader.
    fn reads(
        &mut self,
        person: Option<&str>,
        reader: Option<&str>,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<ReadRecord>>;

    /// The stored response for an idempotency key of an actor.
    fn idempotency_get(&mut self, actor: &str, key: &str) -> StoreResult<Option<StoredResponse>>;
    /// Store the response for an idempotency key; a response already stored for it is kept.
    fn idempotency_put(
        &mut self,
        actor: &str,
        key: &str,
        response: &StoredResponse,
        created_at: Instant,
    ) -> StoreResult<()>;
}

/// A table of credentials (tokens, sessions) and the audited table of its versions.
#[derive(Clone, Copy)]
struct CredentialTable {
    projection: &'static str,
    versions: &'static str,
    /// The stored row id's column in the versions table.
    id: &'static str,
    /// The column of the secret's SHA-256.
    secret: &'static str,
    /// The column of the revocation or end.
    ended: &'static str,
    /// How a problem names one.
    what: &'static str,
}

const CREDENTIAL_TABLES: [CredentialTable; 2] = [
    CredentialTable {
        projection: "api_token",
        versions: "api_token_version",
        id: "token_id",
        secret: "token_sha256",
        ended: "revoked_at",
        what: "API token",
    },
    CredentialTable {
        projection: "session",
        versions: "session_version",
        id: "session_id",
        secret: "secret_sha256",
        ended: "ended_at",
        what: "session",
    },
];

/// Columns of `staff_user` read by [`SqlTx::staff_where`], in order.
const USER_COLUMNS: &str = "u.id, u.name, u.role, u.password_hash, u.disabled";

impl SqlTx<'_> {
    /// The first account found by `sql` (selecting [`USER_COLUMNS`]), with its facilities.
    fn staff_where(&self, sql: &str, params: &[&dyn ToSql]) -> StoreResult<Option<StaffRow>> {
        let found = self
            .conn()
            .prepare_cached(sql)?
            .query_row(params, |r| {
                Ok(StaffRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    role: r.get(2)?,
                    password_hash: r.get(3)?,
                    disabled: r.get(4)?,
                    facilities: Vec::new(),
                })
            })
            .optional()?;
        let Some(mut row) = found else { return Ok(None) };
        row.facilities = self
            .conn()
            .prepare_cached("SELECT facility_code FROM staff_facility WHERE user_id = ?1 ORDER BY facility_code")?
            .query_map([row.id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(Some(row))
    }

    /// Write the account's state, as just written to the projection, as an audited version row.
    fn record_user_version(&mut self, user: UserId, at: Instant) -> StoreResult<()> {
        let row = self
            .staff_where(&format!("SELECT {USER_COLUMNS} FROM staff_user u WHERE u.id = ?1"), &[&user])?
            .ok_or_else(|| StoreError::Backend(format!("staff account {user} is not on record")))?;
        let facilities = serde_json::to_string(&row.facilities).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.insert_audited(
            "staff_user_version",
            &[
                Value::Int(row.id),
                Value::Text(&row.name),
                Value::Text(&row.role),
                Value::Text(&facilities),
                Value::Text(&row.password_hash),
                Value::Int(row.disabled as i64),
                Value::Int(to_micros(at)),
            ],
        )?;
        Ok(())
    }

    /// Write a token's state, as just written to `api_token`, as an audited version row.
    fn record_token_version(&mut self, token: i64) -> StoreResult<()> {
        self.record_credential_version(CREDENTIAL_TABLES[0], token)
    }

    /// Write a session's state, as just written to `session`, as an audited version row.
    fn record_session_version(&mut self, session: i64) -> StoreResult<()> {
        self.record_credential_version(CREDENTIAL_TABLES[1], session)
    }

    /// Copy a token's or session's row, as just written, into its audited version table.
    fn record_credential_version(&mut self, table: CredentialTable, id: i64) -> StoreResult<()> {
        let sql = format!(
            "SELECT user_id, {secret}, created_at, expires_at, {ended} FROM {projection} WHERE id = ?1",
            secret = table.secret,
            ended = table.ended,
            projection = table.projection
        );
        let (user, hash, created, expires, revoked): (i64, String, i64, i64, Option<i64>) = self
            .conn()
            .prepare_cached(&sql)?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
        let token = id;
        self.insert_audited(
            table.versions,
            &[
                Value::Int(token),
                Value::Int(user),
                Value::Text(&hash),
                Value::Int(created),
                Value::Int(expires),
                revoked.map(Value::Int).unwrap_or(Value::Null),
            ],
        )?;
        Ok(())
    }
}

impl StaffTx for SqlTx<'_> {
    fn insert_user(&mut self, user: &NewStaff<'_>) -> StoreResult<UserId> {
        let id: i64 = self.conn().query_row(
            "INSERT INTO staff_user (name, role, password_hash, disabled, created_at) VALUES (?1, ?2, ?3, 0, ?4) RETURNING id",
            params![&user.name, &user.role, &user.password_hash, &to_micros(user.created_at)],
            |r| r.get(0),
        )?;
        for code in user.facilities {
            self.exec(
                "INSERT INTO staff_facility (user_id, facility_code) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                &[&id, code],
            )?;
        }
        self.record_user_version(id, user.created_at)?;
        Ok(id)
    }

    fn users(&mut self) -> StoreResult<Vec<StaffRow>> {
        let ids: Vec<UserId> = self
            .conn()
            .prepare_cached("SELECT id FROM staff_user ORDER BY name")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.staff_where(&format!("SELECT {USER_COLUMNS} FROM staff_user u WHERE u.id = ?1"), &[&id])?);
        }
        Ok(out)
    }

    fn user_by_name(&mut self, name: &str) -> StoreResult<Option<StaffRow>> {
        self.staff_where(&format!("SELECT {USER_COLUMNS} FROM staff_user u WHERE u.name = ?1"), &[&name])
    }

    fn set_password_hash(&mut self, user: UserId, password_hash: &str, at: Instant) -> StoreResult<()> {
        self.exec("UPDATE staff_user SET password_hash = ?1 WHERE id = ?2", &[&password_hash, &user])?;
        self.record_user_version(user, at)
    }

    fn set_user_disabled(&mut self, user: UserId, disabled: bool, at: Instant) -> StoreResult<()> {
        self.exec("UPDATE staff_user SET disabled = ?1 WHERE id = ?2", &[&disabled, &user])?;
        self.record_user_version(user, at)
    }

    fn set_user_facilities(&mut self, user: UserId, facilities: &[String], at: Instant) -> StoreResult<()> {
        self.exec("DELETE FROM staff_facility WHERE user_id = ?1", &[&user])?;
        for code in facilities {
            self.exec(
                "INSERT INTO staff_facility (user_id, facility_code) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                &[&user, code],
            )?;
        }
        self.record_user_version(user, at)
    }

    fn insert_token(
        &mut self,
        user: UserId,
        token_sha256: &str,
        created_at: Instant,
        expires_at: Instant,
    ) -> StoreResult<i64> {
        let id: i64 = self.conn().query_row(
            "INSERT INTO api_token (user_id, token_sha256, created_at, expires_at) VALUES (?1, ?2, ?3, ?4) RETURNING id",
            params![&user, &token_sha256, &to_micros(created_at), &to_micros(expires_at)],
            |r| r.get(0),
        )?;
        self.record_token_version(id)?;
        Ok(id)
    }

    fn staff_by_token_hash(&mut self, token_sha256: &str, now: Instant) -> StoreResult<Option<StaffRow>> {
        self.staff_where(
            &format!(
                "SELECT {USER_COLUMNS} FROM api_token t JOIN staff_user u ON u.id = t.user_id
                 WHERE t.token_sha256 = ?1 AND t.revoked_at IS NULL AND t.expires_at > ?2 AND u.disabled = 0"
            ),
            &[&token_sha256, &to_micros(now)],
        )
    }

    fn revoke_tokens(&mut self, user: UserId, now: Instant) -> StoreResult<u64> {
        let revoked: Vec<i64> = self
            .conn()
            .prepare_cached(
                "UPDATE api_token SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL RETURNING id",
            )?
            .query_map(params![to_micros(now), user], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for token in &revoked {
            self.record_token_version(*token)?;
        }
        Ok(revoked.len() as u64)
    }

    fn insert_session(
        &mut self,
        user: UserId,
        secret_sha256: &str,
        created_at: Instant,
        expires_at: Instant,
    ) -> StoreResult<i64> {
        let id: i64 = self.conn().query_row(
            "INSERT INTO session (user_id, secret_sha256, created_at, expires_at) VALUES (?1, ?2, ?3, ?4) RETURNING id",
            params![&user, &secret_sha256, &to_micros(created_at), &to_micros(expires_at)],
            |r| r.get(0),
        )?;
        self.record_session_version(id)?;
        Ok(id)
    }

    fn staff_by_session_hash(&mut self, secret_sha256: &str, now: Instant) -> StoreResult<Option<StaffRow>> {
        self.staff_where(
            &format!(
                "SELECT {USER_COLUMNS} FROM session s JOIN staff_user u ON u.id = s.user_id
                 WHERE s.secret_sha256 = ?1 AND s.ended_at IS NULL AND s.expires_at > ?2 AND u.disabled = 0"
            ),
            &[&secret_sha256, &to_micros(now)],
        )
    }

    fn end_session(&mut self, secret_sha256: &str, now: Instant) -> StoreResult<Option<(i64, String)>> {
        let ended: Option<i64> = self
            .conn()
            .prepare_cached(
                "UPDATE session SET ended_at = ?1 WHERE secret_sha256 = ?2 AND ended_at IS NULL RETURNING id",
            )?
            .query_row(params![to_micros(now), secret_sha256], |r| r.get(0))
            .optional()?;
        let Some(id) = ended else { return Ok(None) };
        self.record_session_version(id)?;
        let name: String = self
            .conn()
            .prepare_cached("SELECT u.name FROM session s JOIN staff_user u ON u.id = s.user_id WHERE s.id = ?1")?
            .query_row([id], |r| r.get(0))?;
        Ok(Some((id, name)))
    }

    fn end_sessions_of(&mut self, user: UserId, now: Instant) -> StoreResult<u64> {
        let ended: Vec<i64> = self
            .conn()
            .prepare_cached("UPDATE session SET ended_at = ?1 WHERE user_id = ?2 AND ended_at IS NULL RETURNING id")?
            .query_map(params![to_micros(now), user], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for id in &ended {
            self.record_session_version(*id)?;
        }
        Ok(ended.len() as u64)
    }

    fn login_failures(&mut self, key: &str) -> StoreResult<Option<(u32, Instant)>> {
        let found = self
            .conn()
            .prepare_cached("SELECT failures, last_failure_at FROM login_failure WHERE key = ?1")?
            .query_row([key], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)?)))
            .optional()?;
        Ok(found.map(|(failures, at)| (failures, from_micros(at))))
    }

    fn record_login_failure(
        &mut self,
        key: &str,
        now: Instant,
        restart_before: Instant,
        bound: u32,
    ) -> StoreResult<u32> {
        let failures = self
            .conn()
            .prepare_cached(
                "INSERT INTO login_failure (key, failures, last_failure_at) VALUES (?1, 1, ?2)
                 ON CONFLICT (key) DO UPDATE SET
                     failures = CASE WHEN login_failure.last_failure_at < ?3 THEN 1 ELSE login_failure.failures + 1 END,
                     last_failure_at = excluded.last_failure_at
                 RETURNING failures",
            )?
            .query_row(params![key, to_micros(now), to_micros(restart_before)], |r| r.get(0))?;
        // Names tried from many addresses must not grow the table without end: past the bound,
        // the keys idle longest go (an active attacker's keys are the most recent ones).
        let rows: u32 =
            self.conn().prepare_cached("SELECT count(*) FROM login_failure")?.query_row([], |r| r.get(0))?;
        if rows > bound {
            self.exec(
                "DELETE FROM login_failure WHERE key IN
                     (SELECT key FROM login_failure WHERE key <> ?1 ORDER BY last_failure_at, key LIMIT ?2)",
                &[&key, &(rows - bound)],
            )?;
        }
        Ok(failures)
    }

    fn clear_login_failures(&mut self, key: &str) -> StoreResult<()> {
        self.exec("DELETE FROM login_failure WHERE key = ?1", &[&key])?;
        Ok(())
    }

    fn insert_read(&mut self, at: Instant, reader: &str, person: &str, route: &str) -> StoreResult<i64> {
        let (last, previous) = read_log_head(self.conn())?;
        let id = last + 1;
        let at = to_micros(at);
        let link = read_link(
            &previous,
            &[Value::Int(id), Value::Int(at), Value::Text(reader), Value::Text(person), Value::Text(route)],
        );
        self.exec(
            "INSERT INTO readlog.person_read (id, at, reader, person, route, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[&id, &at, &reader, &person, &route, &&link[..]],
        )?;
        Ok(id)
    }

    fn read_log_head(&mut self) -> StoreResult<(i64, [u8; 32])> {
        read_log_head(self.conn())
    }

    fn reads(
        &mut self,
        person: Option<&str>,
        reader: Option<&str>,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<ReadRecord>> {
        // One statement per filter combination, so each can use its index.
        let mut sql = String::from("SELECT id, at, reader, person, route FROM readlog.person_read WHERE id > ?1");
        let mut params: Vec<&dyn ToSql> = vec![&after];
        if let Some(person) = &person {
            params.push(person);
            sql.push_str(&format!(" AND person = ?{}", params.len()));
        }
        if let Some(reader) = &reader {
            params.push(reader);
            sql.push_str(&format!(" AND reader = ?{}", params.len()));
        }
        params.push(&limit);
        sql.push_str(&format!(" ORDER BY id LIMIT ?{}", params.len()));
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(params.as_slice(), |r| {
            Ok(ReadRecord {
                id: r.get(0)?,
                at: from_micros(r.get(1)?),
                reader: r.get(2)?,
                person: r.get(3)?,
                route: r.get(4)?,
            })
        })?;
        rows.collect::<Result<_, _>>()
    }

    fn idempotency_get(&mut self, actor: &str, key: &str) -> StoreResult<Option<StoredResponse>> {
        self.conn()
            .prepare_cached("SELECT request_sha256, status, body FROM idempotency WHERE actor = ?1 AND key = ?2")?
            .query_row(params![actor, key], |r| {
                Ok(StoredResponse { request_sha256: r.get(0)?, status: r.get(1)?, body: r.get(2)? })
            })
            .optional()
    }

    fn idempotency_put(
        &mut self,
        actor: &str,
        key: &str,
        response: &StoredResponse,
        created_at: Instant,
    ) -> StoreResult<()> {
        self.exec(
            "INSERT INTO idempotency (actor, key, request_sha256, status, body, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (actor, key) DO NOTHING",
            &[&actor, &key, &response.request_sha256, &response.status, &response.body, &to_micros(created_at)],
        )?;
        Ok(())
    }
}

/// The link of one read in the register's chain: SHA-256 over the previous link and the canonical
/// bytes of the read's columns (id, at, reader, person, route), as audited rows are encoded.
fn read_link(previous: &[u8], columns: &[Value<'_>]) -> [u8; 32] {
    let mut bytes = Vec::with_capacity(128);
    for v in columns {
        encode_value(&mut bytes, v);
    }
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(&bytes);
    hasher.finalize().into()
}

fn read_log_head(conn: &dyn Session) -> StoreResult<(i64, [u8; 32])> {
    let head = conn
        .prepare_cached("SELECT id, hash FROM readlog.person_read ORDER BY id DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<Vec<u8>>>(1)?)))
        .optional()?;
    Ok(match head {
        None => (0, GENESIS),
        Some((id, hash)) => (id, hash.and_then(|h| h.try_into().ok()).unwrap_or(GENESIS)),
    })
}

/// Give a read register written before reads were chained its `hash` column, and chain the reads
/// already in it, in id order. Only SQLite registers can be that old; its driver calls this on
/// opening the file, on a session without a transaction open.
pub fn chain_read_log(conn: &dyn Session) -> StoreResult<()> {
    let has_hash: bool = conn
        .prepare("SELECT count(*) FROM pragma_table_info('person_read', 'readlog') WHERE name = 'hash'")?
        .query_row([], |r| r.get::<_, i64>(0))?
        > 0;
    if has_hash {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE; ALTER TABLE readlog.person_read ADD COLUMN hash BLOB;")?;
    let filled = (|| -> StoreResult<()> {
        let mut rows = conn.prepare("SELECT id, at, reader, person, route FROM readlog.person_read ORDER BY id")?;
        let mut update = conn.prepare("UPDATE readlog.person_read SET hash = ?1 WHERE id = ?2")?;
        let mut previous = GENESIS;
        let mut rows = rows.query([])?;
        while let Some(r) = rows.next()? {
            let columns: Vec<Value<'_>> =
                (0..5).map(|i| r.get_ref(i).map(|v| v.audit_value())).collect::<Result<_, _>>()?;
            previous = read_link(&previous, &columns);
            update.execute(params![&previous[..], r.get::<_, i64>(0)?])?;
        }
        Ok(())
    })();
    match filled {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    Ok(())
}

/// The action of the audit events that anchor the read register's head in the audit chain.
pub const READ_ANCHOR_ACTION: &str = "reads.anchor";

/// Check the read register's chain, and that every head anchored in the audit chain (events
/// [`READ_ANCHOR_ACTION`]) is still there with the same link: a read altered or removed breaks the
/// chain; reads removed from the end, or a rewritten chain, miss an anchor. Returns the reads
/// checked and the first problem.
pub(crate) fn read_log_problems(conn: &dyn Session) -> StoreResult<(u64, Option<String>)> {
    // Anchors first: they are read on the main file's snapshot, taken before the register's, so
    // every anchored read is in the register's snapshot.
    let mut anchors: HashMap<i64, (i64, String)> = HashMap::new();
    let mut stmt = conn.prepare("SELECT seq, payload FROM audit_event WHERE action = ?1 ORDER BY seq")?;
    let mut rows = stmt.query([READ_ANCHOR_ACTION])?;
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let payload: serde_json::Value = serde_json::from_str(r.get_ref(1)?.as_str()?).unwrap_or_default();
        match (payload["read_id"].as_i64(), payload["hash"].as_str()) {
            (Some(id), Some(hash)) => {
                anchors.insert(id, (seq, hash.to_string()));
            }
            _ => return Ok((0, Some(format!("read register: audit event {seq} anchors no read")))),
        }
    }
    let mut stmt = conn.prepare("SELECT id, at, reader, person, route, hash FROM readlog.person_read ORDER BY id")?;
    let mut rows = stmt.query([])?;
    let (mut last, mut previous, mut checked) = (0i64, GENESIS, 0u64);
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        if id != last + 1 {
            let problem = format!("read register: read {id} follows read {last}: the reads between were deleted");
            return Ok((checked, Some(problem)));
        }
        let columns: Vec<Value<'_>> =
            (0..5).map(|i| r.get_ref(i).map(|v| v.audit_value())).collect::<Result<_, _>>()?;
        let link = read_link(&previous, &columns);
        if r.get_ref(5)?.as_blob_or_null()? != Some(&link[..]) {
            let problem = format!("read register: read {id} was altered since it was logged");
            return Ok((checked, Some(problem)));
        }
        if let Some((seq, anchored)) = anchors.remove(&id) {
            if anchored != hex(&link) {
                let problem =
                    format!("read register: the reads up to {id} differ from those anchored by audit event {seq}");
                return Ok((checked, Some(problem)));
            }
        }
        (last, previous, checked) = (id, link, checked + 1);
    }
    if let Some((id, (seq, _))) = anchors.into_iter().min_by_key(|(id, _)| *id) {
        let problem = format!("read register: read {id}, anchored by audit event {seq}, is gone: reads were deleted");
        return Ok((checked, Some(problem)));
    }
    Ok((checked, None))
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Differences between the accounts and tokens on record (the projections) and the latest of
/// their audited versions: an account or token edited, added or removed outside Custodia.
pub(crate) fn staff_problems(conn: &dyn Session) -> StoreResult<Vec<String>> {
    type Account = (String, String, String, String, bool);
    let mut problems = Vec::new();
    let mut audited: HashMap<i64, Account> = HashMap::new();
    let mut stmt = conn.prepare(
        "SELECT user_id, name, role, facilities, password_hash, disabled FROM staff_user_version ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        audited.insert(r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?));
    }
    let mut facilities_of =
        conn.prepare("SELECT facility_code FROM staff_facility WHERE user_id = ?1 ORDER BY facility_code")?;
    let mut stmt = conn.prepare("SELECT id, name, role, password_hash, disabled FROM staff_user ORDER BY id")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let codes: Vec<String> = facilities_of.query_map([id], |r| r.get(0))?.collect::<Result<_, _>>()?;
        let facilities = serde_json::to_string(&codes).map_err(|e| StoreError::Backend(e.to_string()))?;
        let stored: Account = (r.get(1)?, r.get(2)?, facilities, r.get(3)?, r.get(4)?);
        match audited.remove(&id) {
            None => problems
                .push(format!("staff account `{}` has no audited history: it was added outside Custodia", stored.0)),
            Some(expected) if expected != stored => {
                let mut changed = Vec::new();
                for (differs, what) in [
                    (expected.0 != stored.0, "name"),
                    (expected.1 != stored.1, "role"),
                    (expected.2 != stored.2, "facilities"),
                    (expected.3 != stored.3, "password hash"),
                    (expected.4 != stored.4, "disablement"),
                ] {
                    if differs {
                        changed.push(what);
                    }
                }
                problems.push(format!(
                    "staff account `{}` differs from its audited history ({}): edited outside Custodia",
                    expected.0,
                    changed.join(", ")
                ));
            }
            Some(_) => {}
        }
    }
    let mut missing: Vec<String> = audited.into_values().map(|a| a.0).collect();
    missing.sort_unstable();
    for name in missing {
        problems.push(format!("staff account `{name}` of the audited history is gone from the accounts"));
    }

    for table in CREDENTIAL_TABLES {
        credential_problems(conn, table, &mut problems)?;
    }
    Ok(problems)
}

/// Differences between a credentials table and the latest of its audited versions.
fn credential_problems(conn: &dyn Session, table: CredentialTable, problems: &mut Vec<String>) -> StoreResult<()> {
    type Credential = (i64, String, i64, i64, Option<i64>);
    let what = table.what;
    // Rows of `id, user_id, secret, created_at, expires_at, ended`, in insertion order.
    let read = |id: &str, from: &str| -> StoreResult<Vec<(i64, Credential)>> {
        let sql = format!(
            "SELECT {id}, user_id, {secret}, created_at, expires_at, {ended} FROM {from} ORDER BY id",
            secret = table.secret,
            ended = table.ended,
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))))?;
        rows.collect::<Result<_, _>>()
    };
    // Later versions replace earlier ones: the latest is what the table must hold.
    let mut audited: HashMap<i64, Credential> = read(table.id, table.versions)?.into_iter().collect();
    for (id, stored) in read("id", table.projection)? {
        match audited.remove(&id) {
            None => problems.push(format!("{what} {id} has no audited history: it was added outside Custodia")),
            Some(expected) if expected != stored => {
                problems.push(format!("{what} {id} differs from its audited history: edited outside Custodia"))
            }
            Some(_) => {}
        }
    }
    let mut missing: Vec<i64> = audited.into_keys().collect();
    missing.sort_unstable();
    for id in missing {
        problems.push(format!("{what} {id} of the audited history is gone"));
    }
    Ok(())
}

/// Put the accounts and tokens already on record under the chain: one version row each, written
/// by one audit event (`staff.adopt`). Run by the migration that creates the version tables.
pub(crate) fn adopt_staff(conn: &dyn Session) -> StoreResult<()> {
    let count = |sql: &str| -> StoreResult<i64> { conn.query_row(sql, [], |r| r.get(0)) };
    let (users, tokens) = (count("SELECT count(*) FROM staff_user")?, count("SELECT count(*) FROM api_token")?);
    if users + tokens == 0 {
        return Ok(());
    }
    let (last, previous): (i64, Vec<u8>) = conn
        .query_row("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, GENESIS.to_vec()));
    let seq = last + 1;
    let now = to_micros(chrono::Utc::now());
    let mut facilities_of =
        conn.prepare("SELECT facility_code FROM staff_facility WHERE user_id = ?1 ORDER BY facility_code")?;
    let accounts: Vec<(i64, String, String, String, bool)> = conn
        .prepare("SELECT id, name, role, password_hash, disabled FROM staff_user ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
        .collect::<Result<_, _>>()?;
    for (id, name, role, hash, disabled) in accounts {
        let codes: Vec<String> = facilities_of.query_map([id], |r| r.get(0))?.collect::<Result<_, _>>()?;
        let facilities = serde_json::to_string(&codes).map_err(|e| StoreError::Backend(e.to_string()))?;
        conn.execute(
            "INSERT INTO staff_user_version (user_id, name, role, facilities, password_hash, disabled, at, audit_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![id, name, role, facilities, hash, disabled, now, seq],
        )?;
    }
    conn.execute(
        "INSERT INTO api_token_version (token_id, user_id, token_sha256, created_at, expires_at, revoked_at, audit_seq)
         SELECT id, user_id, token_sha256, created_at, expires_at, revoked_at, ?1 FROM api_token ORDER BY id",
        [seq],
    )?;
    let payload = serde_json::json!({ "users": users, "tokens": tokens }).to_string();
    let tables = ["staff_user_version", "api_token_version"];
    append_adoption(conn, (seq, &previous), now, "staff.adopt", "staff accounts", &payload, &tables)
}

/// Put the sessions already on record under the chain: one version row each, written by one
/// audit event (`session.adopt`). Run by the migration that creates `session_version`.
pub(crate) fn adopt_sessions(conn: &dyn Session) -> StoreResult<()> {
    let sessions: i64 = conn.query_row("SELECT count(*) FROM session", [], |r| r.get(0))?;
    if sessions == 0 {
        return Ok(());
    }
    let (last, previous): (i64, Vec<u8>) = conn
        .query_row("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, GENESIS.to_vec()));
    let seq = last + 1;
    conn.execute(
        "INSERT INTO session_version (session_id, user_id, secret_sha256, created_at, expires_at, ended_at, audit_seq)
         SELECT id, user_id, secret_sha256, created_at, expires_at, ended_at, ?1 FROM session ORDER BY id",
        [seq],
    )?;
    let payload = serde_json::json!({ "sessions": sessions }).to_string();
    let now = to_micros(chrono::Utc::now());
    append_adoption(conn, (seq, &previous), now, "session.adopt", "sessions", &payload, &["session_version"])
}

/// Append the audit event `seq` (after the event whose hash is `previous`) covering the rows of
/// `tables` that name it, digested from the rows as stored, exactly as the verifier reads them.
fn append_adoption(
    conn: &dyn Session,
    (seq, previous): (i64, &[u8]),
    now: i64,
    action: &str,
    subject: &str,
    payload: &str,
    tables: &[&'static str],
) -> StoreResult<()> {
    use domain::audit::{event_hash, EventBody, RowsDigest};
    let mut digest = RowsDigest::default();
    for table in tables.iter().copied() {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table} WHERE audit_seq = ?1 ORDER BY id"))?;
        let mut rows = stmt.query([seq])?;
        while let Some(r) = rows.next()? {
            let mut bytes = Vec::new();
            for i in 0..r.len() {
                encode_value(&mut bytes, &r.get_ref(i)?.audit_value());
            }
            digest.add_row(table, &bytes);
        }
    }
    let rows = digest.finish();
    let body = EventBody { seq, at_micros: now, actor: "custodia", action, subject, payload, rows_sha256: &rows };
    let hash = event_hash(previous, &body);
    conn.execute(
        "INSERT INTO audit_event (seq, at, actor, action, subject, payload, rows_sha256, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![seq, now, body.actor, body.action, body.subject, payload, &rows[..], previous, &hash[..]],
    )?;
    Ok(())
}
