//! A fresh database for one test, on the backend `CUSTODIA_TEST_DB` names (`sqlite`, the
//! default, or `postgres`), and a way to edit it by hand as a hostile operator would.
//!
//! Tests that touch storage take their database from here, so that `scripts/test` can run the
//! same tests once per backend. Hand edits are plain SQL that both backends accept; the read
//! register is the schema `readlog` on both (on SQLite it is an attached file).

use store::Database;

/// The backends a test can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on a throw-away PostgreSQL cluster this test process starts (one
    /// cluster for the process, one database per test).
    Postgres,
}

impl Backend {
    /// The backend `CUSTODIA_TEST_DB` names; SQLite when it is unset.
    pub fn from_env() -> Self {
        match std::env::var("CUSTODIA_TEST_DB").as_deref() {
            Err(_) | Ok("") | Ok("sqlite") => Backend::Sqlite,
            Ok("postgres") => Backend::Postgres,
            Ok(other) => panic!("CUSTODIA_TEST_DB={other}: use sqlite or postgres"),
        }
    }
}

/// A database of its own for one test; removed when dropped.
pub struct TestDb {
    backend: Backend,
    url: String,
    dir: tempfile::TempDir,
}

impl TestDb {
    /// A fresh, empty database on the backend `CUSTODIA_TEST_DB` names.
    pub fn new() -> Self {
        Self::on(Backend::from_env())
    }

    /// A fresh, empty database on `backend`.
    pub fn on(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("t.db").display()),
            Backend::Postgres => off_async(|| pg_test::Cluster::shared().fresh_database()),
        };
        Self { backend, url, dir }
    }

    /// The backend it is on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Its URL, as `--db` takes it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A temporary directory that lives as long as the database (for other files a test writes).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The database file, on SQLite (for tests of what the file itself holds).
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        match self.backend {
            Backend::Sqlite => Some(store_sqlite::path_of(&self.url).expect("sqlite url")),
            Backend::Postgres => None,
        }
    }

    /// The store on it (not yet migrated).
    pub fn open(&self) -> Database {
        match self.backend {
            Backend::Sqlite => Database::new(store_sqlite::SqliteDriver::open(&self.url, true).expect("open sqlite")),
            Backend::Postgres => {
                off_async(|| Database::new(store_postgres::PostgresDriver::open(&self.url).expect("open postgres")))
            }
        }
    }

    /// Run `sql` as a hand edit, outside Custodia; the number of rows it changed.
    pub fn execute(&self, sql: &str) -> u64 {
        match self.backend {
            Backend::Sqlite => self.sqlite().execute(sql, []).unwrap_or_else(|e| panic!("{sql}: {e}")) as u64,
            Backend::Postgres => off_async(|| pg_test::execute(&self.url, sql)),
        }
    }

    /// The first column of the first row `sql` returns, as text (NULL as `None`).
    pub fn query_one(&self, sql: &str) -> Option<String> {
        match self.backend {
            Backend::Sqlite => self
                .sqlite()
                .query_row(sql, [], |r| {
                    Ok(match r.get_ref(0)? {
                        rusqlite::types::ValueRef::Null => None,
                        rusqlite::types::ValueRef::Integer(i) => Some(i.to_string()),
                        rusqlite::types::ValueRef::Real(f) => Some(f.to_string()),
                        rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                            Some(String::from_utf8_lossy(t).into_owned())
                        }
                    })
                })
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
            Backend::Postgres => off_async(|| pg_test::query_strings(&self.url, sql))
                .into_iter()
                .next()
                .and_then(|row| row.into_iter().next().flatten()),
        }
    }

    /// Whether nothing is stored: no SQLite file (nor its read register), or no table on a server.
    pub fn is_empty(&self) -> bool {
        match self.backend {
            Backend::Sqlite => {
                let path = self.sqlite_path().expect("sqlite path");
                !path.exists() && !store_sqlite::read_log_path(&path).exists()
            }
            Backend::Postgres => {
                self.query_i64(
                    "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
                ) == 0
            }
        }
    }

    /// The first column of the first row `sql` returns, as an integer.
    pub fn query_i64(&self, sql: &str) -> i64 {
        let text = self.query_one(sql).unwrap_or_else(|| panic!("{sql}: NULL"));
        text.parse().unwrap_or_else(|_| panic!("{sql}: `{text}` is not an integer"))
    }

    fn sqlite(&self) -> rusqlite::Connection {
        let path = store_sqlite::path_of(&self.url).expect("sqlite url");
        let conn = rusqlite::Connection::open(&path).expect("open db with rusqlite");
        let reads = store_sqlite::read_log_path(&path);
        conn.execute("ATTACH DATABASE ?1 AS readlog", [reads.to_string_lossy()]).expect("attach read register");
        conn
    }
}

/// Run `f` on a thread of its own: the synchronous PostgreSQL client runs a runtime of its own
/// and must not be created or dropped on an async worker thread (tests are often async).
fn off_async<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(f).join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
}

impl Default for TestDb {
    fn default() -> Self {
        Self::new()
    }
}
