#![forbid(unsafe_code)]
//! The embedded default: SQLite through rusqlite, WAL mode, one writer and a small pool of readers.
//!
//! The SQL itself is backend-neutral and lives in `custodia-store`; this crate opens the file,
//! keeps its connections, runs statements and maps SQLite's errors to [`StoreError`].

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::types::ValueRef as SqliteValue;
use rusqlite::{Connection, ToSql};

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

/// A SQLite database file (and its read register beside it).
pub struct SqliteDriver {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl SqliteDriver {
    /// Open `sqlite://PATH`. With `create`, a missing file is created (only `custodia init` does);
    /// otherwise a missing file is refused, so a mistyped path leaves nothing behind.
    pub fn open(url: &str, create: bool) -> StoreResult<Self> {
        let path = path_of(url)?;
        if !create && !path.is_file() {
            return Err(StoreError::Missing(path.display().to_string()));
        }
        Self::open_path(&path)
    }

    /// Open a database file by path.
    pub fn open_path(path: &Path) -> StoreResult<Self> {
        let writer = connect_writer(path)?;
        Ok(Self { path: path.to_path_buf(), writer: Mutex::new(writer), readers: Mutex::new(Vec::new()) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn pooled_reader(&self) -> StoreResult<Connection> {
        let pooled = lock(&self.readers).pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => connect(&self.path),
        }
    }

    fn reader_session(&self) -> StoreResult<SqliteSession<Pooled<'_>>> {
        let conn = self.pooled_reader()?;
        conn.execute_batch("BEGIN").map_err(error)?;
        Ok(SqliteSession { conn: Pooled(Some(conn), &self.readers), finished: false, bulk: false })
    }
}

/// The path of `sqlite://PATH` (or `sqlite:PATH`).
pub fn path_of(url: &str) -> StoreResult<PathBuf> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| StoreError::UnsupportedUrl(url.to_string()))
}

/// `custodia.db` keeps its read register in `custodia.reads.db` beside it.
pub fn read_log_path(path: &Path) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.reads.{}", ext.to_string_lossy()),
        None => format!("{stem}.reads"),
    };
    path.with_file_name(name)
}

/// The register of reads of people's records (Mandela Rule 9), attached to every connection as
/// `readlog`. It is a file of its own because it is written on every read: commits to the main
/// file make every reader start again with an empty page cache, which cost half the read rate.
const READ_LOG_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS readlog.person_read (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        reader TEXT NOT NULL,
        person TEXT NOT NULL,
        route TEXT NOT NULL,
        hash BLOB               -- SHA-256 over the previous read's hash and this read (a chain)
    ) STRICT;
    CREATE INDEX IF NOT EXISTS readlog.person_read_by_person ON person_read (person, id);
    CREATE INDEX IF NOT EXISTS readlog.person_read_by_reader ON person_read (reader, id);";

fn connect(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path).map_err(error)?;
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(error)?;
    // WAL lets readers run beside the writer; FULL makes each commit durable.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -65536;
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(error)?;
    let read_log = read_log_path(path);
    conn.execute("ATTACH DATABASE ?1 AS readlog", [read_log.to_string_lossy()]).map_err(error)?;
    conn.execute_batch("PRAGMA readlog.journal_mode = WAL; PRAGMA readlog.synchronous = FULL;").map_err(error)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn connect_writer(path: &Path) -> StoreResult<Connection> {
    let conn = connect(path)?;
    conn.execute_batch(READ_LOG_SCHEMA).map_err(error)?;
    store::staff::chain_read_log(&SqliteSession { conn: &conn, finished: true, bulk: false })?;
    // Bulk transactions (demo, imports) touch far more pages than a reader; spilling them to the WAL mid-transaction costs more than the memory.
    conn.execute_batch("PRAGMA cache_size = -524288;").map_err(error)?;
    Ok(conn)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// SQLite's errors in the store's terms: a broken UNIQUE constraint names its table and columns.
fn error(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, Some(msg)) = &e {
        if f.code == rusqlite::ErrorCode::ConstraintViolation {
            if let Some(key) = msg.strip_prefix("UNIQUE constraint failed: ") {
                let mut table = String::new();
                let columns = key
                    .split(", ")
                    .map(|c| match c.split_once('.') {
                        Some((t, column)) => {
                            table = t.to_string();
                            column.to_string()
                        }
                        None => c.to_string(),
                    })
                    .collect();
                return StoreError::Duplicate { table, columns };
            }
        }
    }
    StoreError::Backend(e.to_string())
}

impl Driver for SqliteDriver {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn location(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    fn migrations(&self) -> &'static [&'static str] {
        MIGRATIONS
    }

    fn migration_session(&self) -> StoreResult<Box<dyn Session + '_>> {
        let conn = lock(&self.writer);
        conn.execute_batch("BEGIN IMMEDIATE").map_err(error)?;
        Ok(Box::new(SqliteSession { conn: Writer(conn), finished: false, bulk: false }))
    }

    fn schema_version(&self, session: &dyn Session) -> StoreResult<i64> {
        session.query_row("PRAGMA user_version", [], |r| r.get(0))
    }

    fn set_schema_version(&self, session: &dyn Session, version: i64) -> StoreResult<()> {
        session.execute_batch(&format!("PRAGMA user_version = {version}"))
    }

    fn writer(&self, bulk: bool) -> StoreResult<Box<dyn Session + '_>> {
        let conn = lock(&self.writer);
        // Per-row foreign-key checks (and the statement journals they need) cost about a sixth of
        // a bulk load; the whole transaction is checked once by `foreign_key_check` at commit instead.
        // It also keeps its changed pages in memory until the commit: spilled to the WAL
        // mid-transaction they are written and read back again and again once the transaction
        // outgrows the cache (the `us` demo wrote 66 GB and read 108 GB for a 9 GB file in 22
        // minutes). The memory is given back when the transaction ends.
        let begin = if bulk {
            "PRAGMA foreign_keys = OFF; PRAGMA cache_spill = OFF; BEGIN IMMEDIATE"
        } else {
            "BEGIN IMMEDIATE"
        };
        conn.execute_batch(begin).map_err(error)?;
        Ok(Box::new(SqliteSession { conn: Writer(conn), finished: false, bulk }))
    }

    fn reader(&self) -> StoreResult<Box<dyn Session + '_>> {
        Ok(Box::new(self.reader_session()?))
    }

    fn readers_on_one_snapshot(&self, n: usize) -> StoreResult<Vec<Box<dyn Session + Send + '_>>> {
        let mut sessions = Vec::with_capacity(n);
        let mut heads = Vec::with_capacity(n);
        for _ in 0..n {
            let session = self.reader_session()?;
            // A read transaction takes its snapshot at the first read; max(seq) reads one page.
            heads.push((&session as &dyn Session).query_row(
                "SELECT coalesce(max(seq), 0) FROM audit_event",
                [],
                |r| r.get::<_, i64>(0),
            )?);
            sessions.push(Box::new(session) as Box<dyn Session + Send>);
        }
        if heads.windows(2).any(|w| w[0] != w[1]) {
            return Err(StoreError::Backend("the database changed while verification started; run it again".into()));
        }
        Ok(sessions)
    }

    fn commit_baseline(&self, commits: u64) -> StoreResult<f64> {
        let conn = lock(&self.writer);
        conn.execute_batch("CREATE TABLE IF NOT EXISTS bench_commit (id INTEGER PRIMARY KEY, v TEXT) STRICT")
            .map_err(error)?;
        let started = std::time::Instant::now();
        for _ in 0..commits {
            conn.execute_batch("BEGIN IMMEDIATE; INSERT INTO bench_commit (v) VALUES ('x'); COMMIT").map_err(error)?;
        }
        let rate = commits as f64 / started.elapsed().as_secs_f64();
        conn.execute_batch("DROP TABLE bench_commit").map_err(error)?;
        Ok(rate)
    }

    fn record_tables(&self, session: &dyn Session) -> StoreResult<Vec<String>> {
        let mut tables = Vec::new();
        for schema in ["main", "readlog"] {
            let sql = format!(
                "SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
            );
            let prefix = if schema == "main" { "" } else { "readlog." };
            tables.extend(session.query_map(&sql, [], |r| Ok(format!("{prefix}{}", r.get::<_, String>(0)?)))?);
        }
        Ok(tables)
    }

    fn continue_ids(&self, _session: &dyn Session) -> StoreResult<()> {
        // An INTEGER PRIMARY KEY continues after the largest id in the table by itself.
        Ok(())
    }

    fn backup_pages(&self, path: &Path, progress: &mut dyn FnMut(u64, u64)) -> StoreResult<bool> {
        let source = connect(&self.path)?;
        // One read transaction over both files, the main file's snapshot taken first: the read
        // register copied is then at least as new as every anchor of it in the main file's chain.
        // The backup steps run inside this transaction, so writers go on meanwhile (WAL).
        source
            .execute_batch(
                "BEGIN; SELECT count(*) FROM main.sqlite_master; SELECT count(*) FROM readlog.sqlite_master;",
            )
            .map_err(error)?;
        let mut done = 0;
        let mut total = 0;
        for (from, to) in [("main", path.to_path_buf()), ("readlog", read_log_path(path))] {
            let mut to = Connection::open(&to).map_err(error)?;
            let backup = rusqlite::backup::Backup::new_with_names(&source, from, &mut to, "main").map_err(error)?;
            loop {
                let step = backup.step(4096).map_err(error)?;
                let p = backup.progress();
                total = total.max(done + p.pagecount as u64);
                progress(done + (p.pagecount - p.remaining) as u64, total);
                match step {
                    rusqlite::backup::StepResult::Done => break,
                    rusqlite::backup::StepResult::More => {}
                    // Another connection holds a lock the step needs for a moment: wait for it.
                    _ => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
            done += backup.progress().pagecount as u64;
        }
        source.execute_batch("COMMIT").map_err(error)?;
        Ok(true)
    }
}

/// The writer connection, held for the whole transaction.
struct Writer<'s>(MutexGuard<'s, Connection>);

/// A reader connection from the pool, given back when the session ends.
struct Pooled<'s>(Option<Connection>, &'s Mutex<Vec<Connection>>);

impl std::ops::Deref for Writer<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0
    }
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.0.as_ref().expect("reader present until drop")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            lock(self.1).push(conn);
        }
    }
}

/// A connection with its transaction open.
struct SqliteSession<C: std::ops::Deref<Target = Connection>> {
    conn: C,
    finished: bool,
    /// Foreign keys are checked once at commit rather than per row.
    bulk: bool,
}

impl<C: std::ops::Deref<Target = Connection>> Drop for SqliteSession<C> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        if self.bulk {
            let _ = self.conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA cache_spill = ON; PRAGMA shrink_memory");
        }
    }
}

struct Bind<'a>(&'a Value<'a>);

impl ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(match self.0 {
            Value::Null => SqliteValue::Null,
            Value::Int(i) => SqliteValue::Integer(*i),
            Value::Real(r) => SqliteValue::Real(*r),
            Value::Text(t) => SqliteValue::Text(t.as_bytes()),
            Value::Blob(b) => SqliteValue::Blob(b),
        }))
    }
}

fn owned(v: SqliteValue<'_>) -> OwnedValue {
    match v {
        SqliteValue::Null => OwnedValue::Null,
        SqliteValue::Integer(i) => OwnedValue::Integer(i),
        SqliteValue::Real(r) => OwnedValue::Real(r),
        SqliteValue::Text(t) => OwnedValue::Text(t.to_vec()),
        SqliteValue::Blob(b) => OwnedValue::Blob(b.to_vec()),
    }
}

impl<C: std::ops::Deref<Target = Connection>> Session for SqliteSession<C> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute_values(&self, sql: &str, params: &[Value<'_>]) -> StoreResult<usize> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(error)?;
        stmt.execute(rusqlite::params_from_iter(params.iter().map(Bind))).map_err(error)
    }

    fn query_values(&self, sql: &str, params: &[Value<'_>]) -> StoreResult<Rows> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(error)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter().map(Bind))).map_err(error)?;
        let mut values = Vec::new();
        while let Some(row) = rows.next().map_err(error)? {
            for i in 0..columns {
                values.push(owned(row.get_ref(i).map_err(error)?));
            }
        }
        Ok(Rows::new(columns, values))
    }

    fn execute_batch(&self, sql: &str) -> StoreResult<()> {
        self.conn.execute_batch(sql).map_err(error)
    }

    fn query_in_chunks(
        &self,
        sql: &str,
        chunk: usize,
        each: &mut dyn FnMut(Rows) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let mut stmt = self.conn.prepare(sql).map_err(error)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).map_err(error)?;
        let mut values = Vec::with_capacity(columns * chunk);
        while let Some(row) = rows.next().map_err(error)? {
            for i in 0..columns {
                values.push(owned(row.get_ref(i).map_err(error)?));
            }
            if values.len() >= columns * chunk {
                each(Rows::new(columns, std::mem::take(&mut values)))?;
            }
        }
        if !values.is_empty() {
            each(Rows::new(columns, values))?;
        }
        Ok(())
    }

    fn commit(&mut self) -> StoreResult<()> {
        if self.bulk {
            let broken: Option<(String, i64, String)> = {
                let mut stmt = self.conn.prepare("PRAGMA foreign_key_check").map_err(error)?;
                let mut rows = stmt.query([]).map_err(error)?;
                match rows.next().map_err(error)? {
                    Some(r) => Some((r.get(0).map_err(error)?, r.get(1).map_err(error)?, r.get(2).map_err(error)?)),
                    None => None,
                }
            };
            if let Some((table, row, parent)) = broken {
                return Err(StoreError::Backend(format!("{table} row {row} refers to a missing {parent}")));
            }
        }
        self.conn.execute_batch("COMMIT").map_err(error)?;
        self.finished = true;
        Ok(())
    }
}
