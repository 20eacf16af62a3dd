//! Opening a database by URL: `sqlite://PATH` (the embedded default) or `postgres://…`.
//! The only place that names a backend, so that `web` and `cli` name none.

use store::{Database, StoreError, StoreResult};

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
