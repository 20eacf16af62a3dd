//! Opening a database by URL: `sqlite://PATH` (the embedded default) or `postgres://…`.
//! The only place that names a backend, so that `web` and `cli` name none.

use store::sql::Dialect;
use store::{AuditVerification, Database, Store, StoreError, StoreResult, Tx};

use crate::demo::{DemoSummary, Scale};
use crate::{Service, ServiceError, ServiceResult};

/// Open the database at `url`. With `create`, a missing SQLite file is created (only `init`,
/// `demo` and `copy` do); otherwise it is refused, so a mistyped path leaves nothing behind.
/// A PostgreSQL database must exist (an administrator creates it); `init` gives it the schema.
pub fn open_database(url: &str, create: bool) -> StoreResult<Database> {
    if url.starts_with("sqlite:") {
        Ok(Database::new(store_sqlite::SqliteDriver::open(url, create)?))
    } else if store_postgres::is_postgres_url(url) {
        Ok(Database::new(store_postgres::PostgresDriver::open(url)?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_string()))
    }
}

/// A URL as messages may show it: without any password.
pub fn shown_url(url: &str) -> String {
    if store_postgres::is_postgres_url(url) {
        store_postgres::without_password(url)
    } else {
        url.to_string()
    }
}

/// What [`copy_database`] moved, and the verification of the copy.
#[derive(Debug)]
pub struct Copied {
    /// Rows written into the target.
    pub rows: u64,
    /// `audit verify` run on the target after the copy.
    pub verification: AuditVerification,
}

/// Copy a whole deployment from one database into an empty one, on either backend, then verify
/// the copy's audit chain and rows (its head is the source's). `progress` receives (stage, done,
/// total). A refusal (a source that does not verify or is not current, a target with records in
/// it) writes nothing.
pub fn copy_database(from: &str, to: &str, progress: &mut dyn FnMut(&str, u64, u64)) -> ServiceResult<Copied> {
    let source = Service::new(open_database(from, false)?);
    // A broken history is not moved somewhere it would look whole.
    let checked = source.verify_audit(&mut |done, total| progress("check", done, total))?;
    if let Some(broken) = &checked.broken {
        return Err(ServiceError::refused(
            "copy.source_broken",
            format!("the source's audit chain is broken at event {}: {}", broken.seq, broken.reason),
        ));
    }
    if let Some(problem) = checked.projection_problems.first() {
        return Err(ServiceError::refused("copy.source_broken", format!("the source does not verify: {problem}")));
    }
    let target = Service::new(open_database(to, true)?);
    let rows = source.store().copy_to(target.store(), progress)?;
    let verification = target.verify_audit(&mut |done, total| progress("verify", done, total))?;
    Ok(Copied { rows, verification })
}

/// Build the demo into `service`'s database (see [`Service::demo`]). On SQLite it is played
/// there. On a server it is played through the same commands into a throw-away SQLite database
/// and then copied across in bulk (binary COPY on PostgreSQL) in one transaction: played there
/// directly it costs a network round trip per statement, about 14 times as long. The rows, the
/// audit chain and its head are the same either way.
pub fn build_demo(
    service: &Service<Database>,
    scale: Scale,
    seed: u64,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> ServiceResult<DemoSummary> {
    if service.store().driver().dialect() == Dialect::Sqlite {
        return service.demo(scale, seed, progress);
    }
    // Refused before the staging database is played, which may take minutes.
    if !service.store().read()?.facilities()?.is_empty() {
        return Err(crate::demo::not_empty());
    }
    let staging_dir = tempfile::Builder::new().prefix("custodia-demo-").tempdir().map_err(|e| {
        ServiceError::Store(StoreError::Backend(format!("cannot create a staging directory for the demo: {e}")))
    })?;
    let staging_url = format!("sqlite://{}", staging_dir.path().join("demo.db").display());
    let staging = Service::new(open_database(&staging_url, true)?);
    staging.init()?;
    let summary = staging.demo(scale, seed, progress)?;
    staging.store().copy_to(service.store(), &mut |_, done, total| progress("copy", done, total))?;
    Ok(summary)
}
