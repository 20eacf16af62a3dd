//! Staff accounts, API tokens, sessions, login throttling, the log of record reads and stored
//! responses of idempotent requests. None of these tables is audited: the service appends audit
//! events without rows for the commands that change accounts, and stores no secret in the clear.

use rusqlite::{params, OptionalExtension, ToSql};
use serde::Serialize;

use domain::time::{from_micros, to_micros, Instant};

use crate::sqlite::SqliteTx;
use crate::StoreResult;

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
    /// Replace an account's password hash.
    fn set_password_hash(&mut self, user: UserId, password_hash: &str) -> StoreResult<()>;

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
    /// End one session; false if it was unknown or had already ended.
    fn end_session(&mut self, secret_sha256: &str, now: Instant) -> StoreResult<bool>;
    /// End every open session of an account; returns how many were ended.
    fn end_sessions_of(&mut self, user: UserId, now: Instant) -> StoreResult<u64>;

    /// Consecutive failed logins for a name, and when the last one was.
    fn login_failures(&mut self, name: &str) -> StoreResult<Option<(u32, Instant)>>;
    /// Count one more failed login for a name; returns the new count.
    fn record_login_failure(&mut self, name: &str, now: Instant) -> StoreResult<u32>;
    /// Forget the failed logins of a name.
    fn clear_login_failures(&mut self, name: &str) -> StoreResult<()>;

    /// Log one read of a person's record.
    fn insert_read(&mut self, at: Instant, reader: &str, person: &str, route: &str) -> StoreResult<i64>;
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

/// Columns of `staff_user` read by [`SqliteTx::staff_where`], in order.
const USER_COLUMNS: &str = "u.id, u.name, u.role, u.password_hash, u.disabled";

impl SqliteTx<'_> {
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
}

impl StaffTx for SqliteTx<'_> {
    fn insert_user(&mut self, user: &NewStaff<'_>) -> StoreResult<UserId> {
        self.exec(
            "INSERT INTO staff_user (name, role, password_hash, disabled, created_at) VALUES (?1, ?2, ?3, 0, ?4)",
            &[&user.name, &user.role, &user.password_hash, &to_micros(user.created_at)],
        )?;
        let id = self.conn().last_insert_rowid();
        for code in user.facilities {
            self.exec("INSERT OR IGNORE INTO staff_facility (user_id, facility_code) VALUES (?1, ?2)", &[&id, code])?;
        }
        Ok(id)
    }

    fn user_by_name(&mut self, name: &str) -> StoreResult<Option<StaffRow>> {
        self.staff_where(&format!("SELECT {USER_COLUMNS} FROM staff_user u WHERE u.name = ?1"), &[&name])
    }

    fn set_password_hash(&mut self, user: UserId, password_hash: &str) -> StoreResult<()> {
        self.exec("UPDATE staff_user SET password_hash = ?1 WHERE id = ?2", &[&password_hash, &user])?;
        Ok(())
    }

    fn insert_token(
        &mut self,
        user: UserId,
        token_sha256: &str,
        created_at: Instant,
        expires_at: Instant,
    ) -> StoreResult<i64> {
        self.exec(
            "INSERT INTO api_token (user_id, token_sha256, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            &[&user, &token_sha256, &to_micros(created_at), &to_micros(expires_at)],
        )?;
        Ok(self.conn().last_insert_rowid())
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
        let revoked = self.exec(
            "UPDATE api_token SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL",
            &[&to_micros(now), &user],
        )?;
        Ok(revoked as u64)
    }

    fn insert_session(
        &mut self,
        user: UserId,
        secret_sha256: &str,
        created_at: Instant,
        expires_at: Instant,
    ) -> StoreResult<i64> {
        self.exec(
            "INSERT INTO session (user_id, secret_sha256, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            &[&user, &secret_sha256, &to_micros(created_at), &to_micros(expires_at)],
        )?;
        Ok(self.conn().last_insert_rowid())
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

    fn end_session(&mut self, secret_sha256: &str, now: Instant) -> StoreResult<bool> {
        let ended = self.exec(
            "UPDATE session SET ended_at = ?1 WHERE secret_sha256 = ?2 AND ended_at IS NULL",
            &[&to_micros(now), &secret_sha256],
        )?;
        Ok(ended > 0)
    }

    fn end_sessions_of(&mut self, user: UserId, now: Instant) -> StoreResult<u64> {
        let ended = self.exec(
            "UPDATE session SET ended_at = ?1 WHERE user_id = ?2 AND ended_at IS NULL",
            &[&to_micros(now), &user],
        )?;
        Ok(ended as u64)
    }

    fn login_failures(&mut self, name: &str) -> StoreResult<Option<(u32, Instant)>> {
        let found = self
            .conn()
            .prepare_cached("SELECT failures, last_failure_at FROM login_failure WHERE name = ?1")?
            .query_row([name], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)?)))
            .optional()?;
        Ok(found.map(|(failures, at)| (failures, from_micros(at))))
    }

    fn record_login_failure(&mut self, name: &str, now: Instant) -> StoreResult<u32> {
        let failures = self
            .conn()
            .prepare_cached(
                "INSERT INTO login_failure (name, failures, last_failure_at) VALUES (?1, 1, ?2)
                 ON CONFLICT (name) DO UPDATE SET failures = failures + 1, last_failure_at = excluded.last_failure_at
                 RETURNING failures",
            )?
            .query_row(params![name, to_micros(now)], |r| r.get(0))?;
        Ok(failures)
    }

    fn clear_login_failures(&mut self, name: &str) -> StoreResult<()> {
        self.exec("DELETE FROM login_failure WHERE name = ?1", &[&name])?;
        Ok(())
    }

    fn insert_read(&mut self, at: Instant, reader: &str, person: &str, route: &str) -> StoreResult<i64> {
        self.exec(
            "INSERT INTO readlog.person_read (at, reader, person, route) VALUES (?1, ?2, ?3, ?4)",
            &[&to_micros(at), &reader, &person, &route],
        )?;
        Ok(self.conn().last_insert_rowid())
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
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn idempotency_get(&mut self, actor: &str, key: &str) -> StoreResult<Option<StoredResponse>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT request_sha256, status, body FROM idempotency WHERE actor = ?1 AND key = ?2")?
            .query_row(params![actor, key], |r| {
                Ok(StoredResponse { request_sha256: r.get(0)?, status: r.get(1)?, body: r.get(2)? })
            })
            .optional()?)
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
