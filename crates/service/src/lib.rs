#![forbid(unsafe_code)]
//! The commands and queries users perform, written once over the [`store::Store`] trait.
//!
//! Every command: read what it needs inside one transaction -> decide with domain rules ->
//! write -> append the audit event -> commit. A refused command writes nothing.

pub mod allocate;
pub mod backend;
pub mod count;
pub mod csv;
pub mod custody;
pub mod demo;
pub mod error;
pub mod estate;
pub mod housing;
pub mod identity;
pub mod incident;
pub mod layout;
pub mod legal;
pub mod report;
pub mod sentence;
pub mod staff;

pub use backend::{backup_database, build_demo, copy_database, open_database, restore_database, shown_url};
pub use error::{ServiceError, ServiceResult};

use domain::time::Instant;
use store::{AuditEntry, AuditVerification, Store, Tx};

/// Who is acting, and when the record is made.
#[derive(Debug, Clone)]
pub struct Context {
    /// The staff member (or system process) recording.
    pub actor: String,
    /// The time the record is made (recorded time, as opposed to when the event happened).
    pub now: Instant,
    /// Codes of the facilities the actor may see; `None` for national roles and the command
    /// line. Refusals name people and facilities outside it only as "elsewhere".
    pub scope: Option<Vec<String>>,
}

impl Context {
    /// A context for `actor` at `now`, seeing every facility.
    pub fn new(actor: impl Into<String>, now: Instant) -> Self {
        Self { actor: actor.into(), now, scope: None }
    }

    /// A context for `actor` at the current time, seeing every facility.
    pub fn now(actor: impl Into<String>) -> Self {
        Self::new(actor, chrono::Utc::now())
    }

    /// Whether the actor may see the facility with this code.
    pub fn sees(&self, facility_code: &str) -> bool {
        self.scope.as_ref().is_none_or(|codes| codes.iter().any(|c| c == facility_code))
    }
}

/// How many times a write that collided with another transaction is tried in all.
pub const WRITE_ATTEMPTS: u32 = 5;

/// Custodia's commands and queries over one store.
pub struct Service<S> {
    store: S,
    /// Bumped after every commit that revokes tokens or changes an account, so that callers
    /// caching checked credentials (the web's token cache) drop them at once (see `staff`).
    credentials: std::sync::atomic::AtomicU64,
    /// Wall-clock microseconds of the last anchor of the read register in the audit chain.
    read_anchor: std::sync::atomic::AtomicI64,
}

impl<S: Store> Service<S> {
    /// Wrap a store.
    pub fn new(store: S) -> Self {
        Self { store, credentials: Default::default(), read_anchor: Default::default() }
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Create the schema or bring it up to date.
    pub fn init(&self) -> ServiceResult<()> {
        Ok(self.store.migrate()?)
    }

    /// Bring an initialised database's schema up to date (as `serve` does on start); refuses an
    /// empty one, which `init` must create first.
    pub fn upgrade(&self) -> ServiceResult<()> {
        Ok(self.store.upgrade()?)
    }

    /// Run several commands in one transaction: all of them happen, or none.
    /// Used by bulk paths (demo, imports) where one commit per command would be too slow.
    pub fn batch<T>(&self, work: impl FnMut(&mut S::Tx<'_>) -> ServiceResult<T>) -> ServiceResult<T> {
        self.retrying(|| self.store.write(), work)
    }

    /// As [`Service::batch`], for loading many rows (demo, imports): referential integrity is
    /// checked once at commit rather than row by row. Every rule of every command still applies.
    pub fn bulk<T>(&self, work: impl FnMut(&mut S::Tx<'_>) -> ServiceResult<T>) -> ServiceResult<T> {
        self.retrying(|| self.store.write_bulk(), work)
    }

    /// Run `work` in a fresh transaction until it commits or fails for a reason other than a
    /// collision with another transaction (a serialisation failure or deadlock, which only a
    /// server backend reports). The work reads again on each attempt, so its rules are checked
    /// against what the winner wrote; after [`WRITE_ATTEMPTS`] collisions the caller gets
    /// `StoreError::Retry` (the web answers 503 with `Retry-After`).
    fn retrying<'s, T, X: Tx + 's>(
        &'s self,
        mut begin: impl FnMut() -> store::StoreResult<X>,
        mut work: impl FnMut(&mut X) -> ServiceResult<T>,
    ) -> ServiceResult<T> {
        let mut attempt = 1;
        loop {
            let result = begin().map_err(ServiceError::from).and_then(|mut tx| {
                let out = work(&mut tx)?;
                tx.commit()?;
                Ok(out)
            });
            match result {
                Err(ServiceError::Store(store::StoreError::Retry(why))) if attempt < WRITE_ATTEMPTS => {
                    tracing::debug!(attempt, %why, "transaction collided; running it again");
                    // Spread the retries so that the same two transactions do not collide again.
                    std::thread::sleep(std::time::Duration::from_millis(attempt as u64 * 5));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Recompute the audit chain, every audited row and the projections.
    pub fn verify_audit(&self, progress: &mut dyn FnMut(u64, u64)) -> ServiceResult<AuditVerification> {
        Ok(self.store.verify_audit(progress)?)
    }

    /// The number of the newest audit event (0 when there is none).
    pub fn last_audit_seq(&self) -> ServiceResult<i64> {
        Ok(self.store().read()?.last_audit_seq()?)
    }

    /// The newest audit event's number and hash, as monitors note it outside the database
    /// (`audit verify --expect SEQ:HASH` checks it later); `None` before the first event.
    pub fn audit_head(&self) -> ServiceResult<Option<(i64, String)>> {
        let mut tx = self.store().read()?;
        let seq = tx.last_audit_seq()?;
        Ok(tx.audit_events(seq - 1, 1)?.into_iter().next().map(|e| (e.seq, e.hash)))
    }

    /// Audit events after `after_seq`, at most `limit`.
    pub fn audit_events(&self, after_seq: i64, limit: u32) -> ServiceResult<Vec<store::AuditEvent>> {
        Ok(self.store.read()?.audit_events(after_seq, limit)?)
    }

    /// Every facility, by code.
    pub fn facilities(&self) -> ServiceResult<Vec<store::Facility>> {
        Ok(self.store.read()?.facilities()?)
    }

    /// Row counts, for summaries.
    pub fn counts(&self) -> ServiceResult<store::Counts> {
        Ok(self.store.read()?.counts()?)
    }
}

/// Append the audit event for the rows a command just wrote.
pub(crate) fn audit<T: Tx>(
    tx: &mut T,
    ctx: &Context,
    action: &str,
    subject: &str,
    payload: &impl serde::Serialize,
) -> ServiceResult<i64> {
    let payload = serde_json::to_string(payload).map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(tx.append_audit(&AuditEntry { at: ctx.now, actor: &ctx.actor, action, subject, payload: &payload })?)
}

/// Whether the caller's facilities include one answerable for the person (see `Tx::person_facilities`).
pub(crate) fn person_visible<T: Tx>(tx: &mut T, ctx: &Context, person: store::PersonId) -> ServiceResult<bool> {
    if ctx.scope.is_none() {
        return Ok(true);
    }
    for id in tx.person_facilities(person)? {
        if tx.facility_by_id(id)?.is_some_and(|f| ctx.sees(&f.code)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Text the service composes from input, held to the same rules as input; `field` names the input
/// a refusal should point at.
pub(crate) fn composed<T: TryFrom<String, Error = String>>(field: &str, text: String) -> ServiceResult<T> {
    T::try_from(text).map_err(|problem| ServiceError::field(field, problem))
}

/// The id of a person a command may change: on record and not merged away. A record merged into
/// another is refused naming the surviving record, so that nothing is written on the duplicate.
pub(crate) fn person_to_change<T: Tx>(tx: &mut T, number: &str) -> ServiceResult<store::PersonId> {
    let id = tx.person_id(number)?.ok_or_else(|| ServiceError::NotFound { what: "person", key: number.to_string() })?;
    match tx.merge_in_force(id)? {
        None => Ok(id),
        Some(merge) => Err(ServiceError::refused(
            "identity.merged_away",
            format!("{number} was merged into {}; record this on {}", merge.survivor, merge.survivor),
        )),
    }
}
