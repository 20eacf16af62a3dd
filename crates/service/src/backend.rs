//! Opening a database by URL: `sqlite://PATH` (the embedded default) or `postgres://…`.
//! The only place that names a backend, so that `web` and `cli` name none.

use std::path::{Path, PathBuf};

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

/// What [`backup_database`] wrote, and the verification of the backup.
#[derive(Debug)]
pub struct BackedUp {
    /// The files written: the backup and its read register (keep them together).
    pub files: [PathBuf; 2],
    /// `audit verify` run on the backup; its head is the source's at the instant of the backup.
    pub verification: AuditVerification,
}

/// Back up a whole deployment, on either backend, into a new file: a Custodia SQLite database
/// with its read register beside it, from one snapshot of the source (writers go on meanwhile).
/// SQLite is copied page by page with its online backup; a server is copied row by row, as
/// [`copy_database`] copies. The backup is verified before it takes its name, and one that fails
/// leaves no file behind (a process killed mid-way leaves its two names as empty files, which
/// `restore` refuses, and a `.custodia-backup-*` folder); existing files are refused, never
/// replaced.
/// `progress` receives (stage, done, total). [`restore_database`] brings it back.
pub fn backup_database(from: &str, to: &Path, progress: &mut dyn FnMut(&str, u64, u64)) -> ServiceResult<BackedUp> {
    let files = [to.to_path_buf(), store_sqlite::read_log_path(to)];
    let source = Service::new(open_database(from, false)?);
    source.store().read()?; // refuses a database of another schema version before any file is made
    let name = to.file_name().ok_or_else(|| {
        ServiceError::refused("backup.file_name", format!("{} is not a file name to back up into", to.display()))
    })?;
    let folder = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut reserved = Reserved::take(&files)?;
    // Written under a temporary folder beside the destination, then renamed into place.
    let staging = tempfile::Builder::new().prefix(".custodia-backup-").tempdir_in(folder).map_err(|e| {
        ServiceError::Store(StoreError::Backend(format!("cannot write a backup in {}: {e}", folder.display())))
    })?;
    let staged = staging.path().join(name);
    let staged_url = format!("sqlite://{}", staged.display());
    if !source.store().driver().backup_pages(&staged, &mut |done, total| progress("backup", done, total))? {
        let target = open_database(&staged_url, true)?;
        source.store().copy_to(&target, progress)?;
    }
    let verification = Service::new(open_database(&staged_url, false)?)
        .verify_audit(&mut |done, total| progress("verify", done, total))?;
    for (file, staged) in files.iter().zip([staged.clone(), store_sqlite::read_log_path(&staged)]).rev() {
        std::fs::rename(&staged, file).map_err(|e| {
            ServiceError::Store(StoreError::Backend(format!("cannot name the backup {}: {e}", file.display())))
        })?;
    }
    reserved.kept = true;
    Ok(BackedUp { files, verification })
}

/// A backup's file names, held by empty files from its start so that a second backup into the
/// same name at the same moment is refused instead of replacing this one; removed again unless
/// the backup is kept.
struct Reserved {
    files: Vec<PathBuf>,
    kept: bool,
}

impl Reserved {
    fn take(files: &[PathBuf]) -> ServiceResult<Reserved> {
        let mut reserved = Reserved { files: Vec::new(), kept: false };
        for file in files {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(file) {
                Ok(_) => reserved.files.push(file.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(ServiceError::refused(
                        "backup.file_exists",
                        format!(
                            "{} already exists: back up into a new file (a backup never replaces one)",
                            file.display()
                        ),
                    ))
                }
                Err(e) => {
                    return Err(ServiceError::Store(StoreError::Backend(format!(
                        "cannot write a backup at {}: {e}",
                        file.display()
                    ))))
                }
            }
        }
        Ok(reserved)
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if !self.kept {
            for file in &self.files {
                let _ = std::fs::remove_file(file);
            }
        }
    }
}

/// Restore a backup made by [`backup_database`] into an empty database on either backend, then
/// verify it: its head is the backup's. A backup that does not verify, or a target that holds
/// records, is refused and nothing is written.
pub fn restore_database(from: &Path, to: &str, progress: &mut dyn FnMut(&str, u64, u64)) -> ServiceResult<Copied> {
    if !from.is_file() {
        return Err(ServiceError::refused(
            "restore.no_backup",
            format!("no backup at {}: give the file `custodia backup --to` wrote", from.display()),
        ));
    }
    if from.metadata().map(|m| m.len() == 0).unwrap_or(true) {
        return Err(ServiceError::refused(
            "restore.no_backup",
            format!("{} is empty: the name of a backup that did not finish; give another", from.display()),
        ));
    }
    let reads = store_sqlite::read_log_path(from);
    if !reads.is_file() {
        return Err(ServiceError::refused(
            "restore.no_read_register",
            format!(
                "no read register at {} beside the backup: a backup is two files, kept together; put it back",
                reads.display()
            ),
        ));
    }
    copy_database(&format!("sqlite://{}", from.display()), to, progress)
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
