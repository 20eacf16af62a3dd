//! The SQL that every backend runs, behind one small interface.
//!
//! The transaction code ([`crate::SqlTx`]) is written once, in SQL both SQLite and PostgreSQL
//! accept, against [`Session`]: a connection with a transaction open. A backend crate
//! (`custodia-store-sqlite`, `custodia-store-postgres`) implements [`Driver`] and [`Session`];
//! nothing above this module names a backend type. Statements use `?N` placeholders; the
//! PostgreSQL driver rewrites them to `$N`. The few places where the dialects differ ask
//! [`Session::dialect`].
//!
//! The shape of the calls follows rusqlite's (`query_row`, `query_map`, `optional`), so the
//! SQL code reads the same as before it was made backend-neutral. Rows are read whole before
//! the caller sees them, so a caller may run other statements while it walks them.

use std::borrow::Cow;

use domain::audit::Value;

use crate::{StoreError, StoreResult};

/// The SQL dialect of a session, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite 3.
    Sqlite,
    /// PostgreSQL 15 or later.
    Postgres,
}

/// A value read from a row, borrowed from it (the shape of rusqlite's `ValueRef`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// SQL NULL.
    Null,
    /// An integer.
    Integer(i64),
    /// A float.
    Real(f64),
    /// Text, as stored (not checked to be UTF-8 until read as a string).
    Text(&'a [u8]),
    /// Bytes.
    Blob(&'a [u8]),
}

impl<'a> ValueRef<'a> {
    /// The text, if the value is UTF-8 text.
    pub fn as_str(&self) -> StoreResult<&'a str> {
        match self {
            ValueRef::Text(t) => std::str::from_utf8(t).map_err(|_| StoreError::Backend("text is not UTF-8".into())),
            other => Err(wrong_type("text", other)),
        }
    }

    /// The text, or `None` for NULL.
    pub fn as_str_or_null(&self) -> StoreResult<Option<&'a str>> {
        match self {
            ValueRef::Null => Ok(None),
            other => other.as_str().map(Some),
        }
    }

    /// The bytes, or `None` for NULL.
    pub fn as_blob_or_null(&self) -> StoreResult<Option<&'a [u8]>> {
        match self {
            ValueRef::Null => Ok(None),
            other => other.as_blob().map(Some),
        }
    }

    /// The bytes, if the value is a blob.
    pub fn as_blob(&self) -> StoreResult<&'a [u8]> {
        match self {
            ValueRef::Blob(b) => Ok(b),
            other => Err(wrong_type("bytes", other)),
        }
    }

    /// The value as the audit chain hashes it. Text that is not UTF-8 was written by hand; it is
    /// hashed as bytes so it cannot match what was recorded.
    pub fn audit_value(&self) -> Value<'a> {
        match *self {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Int(i),
            ValueRef::Real(r) => Value::Real(r),
            ValueRef::Text(t) => std::str::from_utf8(t).map(Value::Text).unwrap_or(Value::Blob(t)),
            ValueRef::Blob(b) => Value::Blob(b),
        }
    }
}

fn wrong_type(wanted: &str, found: &ValueRef<'_>) -> StoreError {
    let found = match found {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "an integer",
        ValueRef::Real(_) => "a float",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "bytes",
    };
    StoreError::Backend(format!("a column holds {found} where {wanted} was expected"))
}

/// A value read from the database, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedValue {
    /// SQL NULL.
    Null,
    /// An integer.
    Integer(i64),
    /// A float.
    Real(f64),
    /// Text (bytes as stored).
    Text(Vec<u8>),
    /// Bytes.
    Blob(Vec<u8>),
}

impl OwnedValue {
    /// Borrow it.
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            OwnedValue::Null => ValueRef::Null,
            OwnedValue::Integer(i) => ValueRef::Integer(*i),
            OwnedValue::Real(r) => ValueRef::Real(*r),
            OwnedValue::Text(t) => ValueRef::Text(t),
            OwnedValue::Blob(b) => ValueRef::Blob(b),
        }
    }
}

/// The rows a statement returned, read whole.
#[derive(Debug, Default)]
pub struct Rows {
    columns: usize,
    values: Vec<OwnedValue>,
    next: usize,
}

impl Rows {
    /// Rows of `columns` columns; `values` holds them row after row.
    pub fn new(columns: usize, values: Vec<OwnedValue>) -> Self {
        Self { columns, values, next: 0 }
    }

    /// The number of columns.
    pub fn column_count(&self) -> usize {
        self.columns
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.values.len().checked_div(self.columns).unwrap_or(0)
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every value, row after row.
    pub fn values(&self) -> &[OwnedValue] {
        &self.values
    }

    /// The next row, if any (the shape of rusqlite's `Rows::next`).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> StoreResult<Option<Row<'_>>> {
        let start = self.next * self.columns;
        if self.columns == 0 || start >= self.values.len() {
            return Ok(None);
        }
        self.next += 1;
        Ok(Some(Row(&self.values[start..start + self.columns])))
    }
}

/// One row.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a>(&'a [OwnedValue]);

impl<'a> Row<'a> {
    /// A row over values (drivers build them).
    pub fn of(values: &'a [OwnedValue]) -> Self {
        Row(values)
    }

    /// Column `i` converted to `T`. The index type parameter keeps rusqlite's `get::<_, T>` shape.
    pub fn get<I: RowIndex, T: FromSql>(&self, i: I) -> StoreResult<T> {
        let i = i.index();
        T::from_sql(self.get_ref(i)?).map_err(|e| match e {
            StoreError::Backend(m) => StoreError::Backend(format!("column {i}: {m}")),
            other => other,
        })
    }

    /// Column `i` as stored.
    pub fn get_ref(&self, i: usize) -> StoreResult<ValueRef<'a>> {
        self.0.get(i).map(OwnedValue::as_ref).ok_or_else(|| StoreError::Backend(format!("no column {i}")))
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A column index (only `usize`, so a literal `0` needs no suffix).
pub trait RowIndex {
    /// The index.
    fn index(self) -> usize;
}

impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// A Rust value a column converts to.
pub trait FromSql: Sized {
    /// Convert.
    fn from_sql(value: ValueRef<'_>) -> StoreResult<Self>;
}

impl FromSql for i64 {
    fn from_sql(value: ValueRef<'_>) -> StoreResult<Self> {
        match value {
            ValueRef::Integer(i) => Ok(i),
            other => Err(wrong_type("an integer", &other)),
        }
    }
}

macro_rules! narrow_int {
    ($($t:ty),*) => {$(
        impl FromSql for $t {
            fn from_sql(value: ValueRef<'_>) -> StoreResult<Self> {
                let i = i64::from_sql(value)?;
                <$t>::try_from(i).map_err(|_| StoreError::Backend(format!("{i} is out of range for {}", stringify!($t))))
            }
        }
    )*};
}
narrow_int!(i32, u32, u64, u16, u8, usize);

impl FromSql for bool {
    fn from_sql(value: ValueRef<'_>) -> StoreResult<Self> {
        Ok(i64::from_sql(value)? != 0)
    }
}

impl FromSql for f64 {
    fn from_sql(value: ValueRef<'_>) -> StoreResult<Self> {
        match value {
            ValueRef::Real(r) => Ok(r),
            ValueRef::Integer(i) => Ok(i as f64),
            other => Err(wrong_type("a number", &other)),
        }
    }
}

impl FromSql for String {
    fn from_sql(value: ValueRef<'_>) -> StoreResult<Self> {
        value.as_str().map(str::to_string)
    }
}

impl FromSql for Vec<u8> {
    fn from_sql(value: ValueRef<'_>) -> StoreResult<Self> {
        match value {
            ValueRef::Blob(b) => Ok(b.to_vec()),
            other => Err(wrong_type("bytes", &other)),
        }
    }
}

impl<T: FromSql> FromSql for Option<T> {
    fn from_sql(value: ValueRef<'_>) -> StoreResult<Self> {
        match value {
            ValueRef::Null => Ok(None),
            other => T::from_sql(other).map(Some),
        }
    }
}

/// A Rust value bound to a placeholder.
pub trait ToSql {
    /// The value to bind.
    fn to_sql(&self) -> StoreResult<Value<'_>>;
}

impl ToSql for Value<'_> {
    fn to_sql(&self) -> StoreResult<Value<'_>> {
        Ok(*self)
    }
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl ToSql for $t {
            fn to_sql(&self) -> StoreResult<Value<'_>> {
                i64::try_from(*self)
                    .map(Value::Int)
                    .map_err(|_| StoreError::Backend(format!("{self} does not fit a 64-bit integer column")))
            }
        }
    )*};
}
int_param!(i64, i32, u32, u64, u16, u8, usize);

impl ToSql for bool {
    fn to_sql(&self) -> StoreResult<Value<'_>> {
        Ok(Value::Int(*self as i64))
    }
}

impl ToSql for f64 {
    fn to_sql(&self) -> StoreResult<Value<'_>> {
        Ok(Value::Real(*self))
    }
}

impl ToSql for str {
    fn to_sql(&self) -> StoreResult<Value<'_>> {
        Ok(Value::Text(self))
    }
}

impl ToSql for String {
    fn to_sql(&self) -> StoreResult<Value<'_>> {
        Ok(Value::Text(self))
    }
}

impl ToSql for Cow<'_, str> {
    fn to_sql(&self) -> StoreResult<Value<'_>> {
        Ok(Value::Text(self))
    }
}

impl ToSql for [u8] {
    fn to_sql(&self) -> StoreResult<Value<'_>> {
        Ok(Value::Blob(self))
    }
}

impl ToSql for Vec<u8> {
    fn to_sql(&self) -> StoreResult<Value<'_>> {
        Ok(Value::Blob(self))
    }
}

impl<const N: usize> ToSql for [u8; N] {
    fn to_sql(&self) -> StoreResult<Value<'_>> {
        Ok(Value::Blob(self))
    }
}

impl<T: ToSql> ToSql for Option<T> {
    fn to_sql(&self) -> StoreResult<Value<'_>> {
        match self {
            Some(v) => v.to_sql(),
            None => Ok(Value::Null),
        }
    }
}

impl<T: ToSql + ?Sized> ToSql for &T {
    fn to_sql(&self) -> StoreResult<Value<'_>> {
        (**self).to_sql()
    }
}

/// Parameters of a statement (the shape of rusqlite's `Params`).
pub trait Params {
    /// Call `f` with the parameters as a slice.
    fn with_slice<R>(&self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R;
}

impl Params for () {
    fn with_slice<R>(&self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        f(&[])
    }
}

impl Params for &[&dyn ToSql] {
    fn with_slice<R>(&self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        f(self)
    }
}

impl Params for [&dyn ToSql; 0] {
    fn with_slice<R>(&self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        f(&[])
    }
}

macro_rules! array_params {
    ($($n:literal)*) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn with_slice<R>(&self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
                let refs: [&dyn ToSql; $n] = std::array::from_fn(|i| &self[i] as &dyn ToSql);
                f(&refs)
            }
        }
    )*};
}
array_params!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);

/// Parameters from an iterator (the shape of rusqlite's `params_from_iter`).
pub struct ParamsFromIter<T>(Vec<T>);

/// Bind every item of `iter` in order.
pub fn params_from_iter<T: ToSql, I: IntoIterator<Item = T>>(iter: I) -> ParamsFromIter<T> {
    ParamsFromIter(iter.into_iter().collect())
}

impl<T: ToSql> Params for ParamsFromIter<T> {
    fn with_slice<R>(&self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        let refs: Vec<&dyn ToSql> = self.0.iter().map(|v| v as &dyn ToSql).collect();
        f(&refs)
    }
}

/// `params![a, b]`: a slice of parameters of different types.
#[macro_export]
macro_rules! params {
    () => { &[] as &[&dyn $crate::sql::ToSql] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::sql::ToSql),+] as &[&dyn $crate::sql::ToSql] };
}
pub use crate::params;

/// Values of the parameters, for drivers.
pub fn values<'a>(params: &'a [&'a dyn ToSql]) -> StoreResult<Vec<Value<'a>>> {
    params.iter().map(|p| p.to_sql()).collect()
}

/// A connection with a transaction open, as a backend provides it.
pub trait Session {
    /// The dialect, for the few statements that differ.
    fn dialect(&self) -> Dialect;
    /// Run one statement; the number of rows it changed. Drivers keep statements prepared.
    fn execute_values(&self, sql: &str, params: &[Value<'_>]) -> StoreResult<usize>;
    /// Run one statement and read every row it returns.
    fn query_values(&self, sql: &str, params: &[Value<'_>]) -> StoreResult<Rows>;
    /// Run statements without parameters, separated by `;`.
    fn execute_batch(&self, sql: &str) -> StoreResult<()>;
    /// The rows of a query without parameters, handed to `each` at most `chunk` at a time, so
    /// that a whole table can be read without holding it in memory.
    fn query_in_chunks(
        &self,
        sql: &str,
        chunk: usize,
        each: &mut dyn FnMut(Rows) -> StoreResult<()>,
    ) -> StoreResult<()>;
    /// Append rows to `table` (every column, in the table's order): `values` holds them row
    /// after row, `columns` values each. The bulk path of copies; a server backend sends them in
    /// one stream (PostgreSQL's binary COPY) instead of a round trip per row.
    fn insert_rows(&self, table: &str, columns: usize, values: &[Value<'_>]) -> StoreResult<()> {
        if columns == 0 {
            return Ok(());
        }
        let insert = format!(
            "INSERT INTO {table} VALUES ({})",
            (1..=columns).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
        );
        values.chunks(columns).try_for_each(|row| self.execute_values(&insert, row).map(drop))
    }
    /// Make the transaction durable. A session dropped without it rolls back.
    fn commit(&mut self) -> StoreResult<()>;
}

impl<'c> dyn Session + 'c {
    /// A statement on this session. Drivers keep every statement prepared, so this is cheap.
    pub fn prepare_cached(&self, sql: &str) -> StoreResult<Statement<'_>> {
        Ok(Statement { session: self, sql: sql.to_string() })
    }

    /// As `prepare_cached`.
    pub fn prepare(&self, sql: &str) -> StoreResult<Statement<'_>> {
        self.prepare_cached(sql)
    }

    /// Run one statement; the number of rows it changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> StoreResult<usize> {
        params.with_slice(|p| self.execute_values(sql, &values(p)?))
    }

    /// Run one statement and read every row.
    pub fn query<P: Params>(&self, sql: &str, params: P) -> StoreResult<Rows> {
        params.with_slice(|p| self.query_values(sql, &values(p)?))
    }

    /// The first row, converted; [`StoreError::NoRows`] when there is none (see [`OptionalExtension`]).
    pub fn query_row<T, P: Params, F: FnOnce(&Row<'_>) -> StoreResult<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> StoreResult<T> {
        let mut rows = self.query(sql, params)?;
        match rows.next()? {
            Some(row) => f(&row),
            None => Err(StoreError::NoRows),
        }
    }

    /// Every row, converted.
    pub fn query_map<T, P: Params, F: FnMut(&Row<'_>) -> StoreResult<T>>(
        &self,
        sql: &str,
        params: P,
        mut f: F,
    ) -> StoreResult<Vec<T>> {
        let mut rows = self.query(sql, params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(f(&row)?);
        }
        Ok(out)
    }
}

/// A statement of a session (the shape of rusqlite's `Statement`).
pub struct Statement<'s> {
    session: &'s dyn Session,
    sql: String,
}

impl Statement<'_> {
    /// Run it; the number of rows it changed.
    pub fn execute<P: Params>(&mut self, params: P) -> StoreResult<usize> {
        self.session.execute(&self.sql, params)
    }

    /// Run it and read every row.
    pub fn query<P: Params>(&mut self, params: P) -> StoreResult<Rows> {
        self.session.query(&self.sql, params)
    }

    /// The first row, converted; [`StoreError::NoRows`] when there is none.
    pub fn query_row<T, P: Params, F: FnOnce(&Row<'_>) -> StoreResult<T>>(
        &mut self,
        params: P,
        f: F,
    ) -> StoreResult<T> {
        self.session.query_row(&self.sql, params, f)
    }

    /// Every row, converted, as an iterator of results (collect it).
    pub fn query_map<T, P: Params, F: FnMut(&Row<'_>) -> StoreResult<T>>(
        &mut self,
        params: P,
        f: F,
    ) -> StoreResult<MappedRows<F>> {
        Ok(MappedRows { rows: self.query(params)?, f })
    }
}

/// The rows of `query_map`, each converted by its function.
pub struct MappedRows<F> {
    rows: Rows,
    f: F,
}

impl<T, F: FnMut(&Row<'_>) -> StoreResult<T>> Iterator for MappedRows<F> {
    type Item = StoreResult<T>;

    fn next(&mut self) -> Option<StoreResult<T>> {
        match self.rows.next() {
            Ok(Some(row)) => Some((self.f)(&row)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// `.optional()` on a single-row result: no row is `None` (the shape of rusqlite's extension).
pub trait OptionalExtension<T> {
    /// No row becomes `Ok(None)`.
    fn optional(self) -> StoreResult<Option<T>>;
}

impl<T> OptionalExtension<T> for StoreResult<T> {
    fn optional(self) -> StoreResult<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A database a backend opens: it hands out sessions.
pub trait Driver: Send + Sync {
    /// The dialect of its sessions.
    fn dialect(&self) -> Dialect;
    /// The database's URL without any password, for messages.
    fn location(&self) -> String;
    /// The migrations of this backend, in order; the schema version is the number applied.
    fn migrations(&self) -> &'static [&'static str];
    /// A session for migrating: exclusive, its transaction open; the version is read and set with
    /// [`Driver::schema_version`] and [`Driver::set_schema_version`] inside it.
    fn migration_session(&self) -> StoreResult<Box<dyn Session + '_>>;
    /// The schema version recorded in the database (0 when it has none).
    fn schema_version(&self, session: &dyn Session) -> StoreResult<i64>;
    /// Record the schema version.
    fn set_schema_version(&self, session: &dyn Session, version: i64) -> StoreResult<()>;
    /// A writing session: one at a time across every process using the database; with `bulk`,
    /// referential integrity is checked once at commit.
    fn writer(&self, bulk: bool) -> StoreResult<Box<dyn Session + '_>>;
    /// A read-only session on a consistent snapshot.
    fn reader(&self) -> StoreResult<Box<dyn Session + '_>>;
    /// `n` read-only sessions on one and the same snapshot (verification reads on several at once).
    fn readers_on_one_snapshot(&self, n: usize) -> StoreResult<Vec<Box<dyn Session + Send + '_>>>;
    /// The durable commit rate of the database as this driver sees it: `commits` transactions of
    /// one small row each. The baseline write figures are compared with.
    fn commit_baseline(&self, commits: u64) -> StoreResult<f64>;
    /// Every table that holds records (the read register's schema-qualified; not the schema
    /// version), in the order they were created.
    fn record_tables(&self, session: &dyn Session) -> StoreResult<Vec<String>>;
    /// After rows were inserted with their own ids: make new rows take ids after them.
    fn continue_ids(&self, session: &dyn Session) -> StoreResult<()>;
    /// Before a bulk load into empty tables: drop what would be checked row by row (keys,
    /// indexes, references) and return the statements that put it back, which check every row
    /// at once. Run them in the same transaction; a backend that gains nothing keeps them.
    fn suspend_checks(&self, _session: &dyn Session) -> StoreResult<Vec<String>> {
        Ok(Vec::new())
    }
    /// Copy the whole database page by page into a new SQLite file at `path` (its read register
    /// beside it, as a SQLite deployment keeps it), from one snapshot; `progress` gets (pages
    /// done, pages in all). `Ok(false)` when this backend cannot, and the caller copies rows.
    fn backup_pages(&self, _path: &std::path::Path, _progress: &mut dyn FnMut(u64, u64)) -> StoreResult<bool> {
        Ok(false)
    }
}
