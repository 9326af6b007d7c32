//! The two databases a run store can live in, behind one small interface: an embedded DuckDB
//! file (the default), or a PostgreSQL server that several planners and `citytwin serve`
//! instances share.
//!
//! The store's SQL is written once, in the dialect both accept: `$n` parameters, `FLOAT8`,
//! `DISTINCT ON`, explicit column lists. Values cross as [`Val`]s. The two differ in types
//! (PostgreSQL has no unsigned integers: a `u64` is kept as the `BIGINT` with the same bits, so
//! H3 cells, entity bits and seeds read back exactly), in bulk loading (DuckDB's appender,
//! PostgreSQL's binary `COPY`) and in how a dead writer is noticed (see [`Db::lock_run`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

use postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// A database error, with PostgreSQL's detail spelled out (its own `Display` says only
/// "db error").
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// From DuckDB.
    #[error(transparent)]
    DuckDb(#[from] duckdb::Error),
    /// From PostgreSQL: the message with its causes, and the SQLSTATE code when the server
    /// sent one.
    #[error("{message}")]
    Postgres {
        /// What went wrong.
        message: String,
        /// The SQLSTATE (`23505` is a unique violation).
        code: Option<String>,
    },
    /// A column did not hold what the store expected (a table altered by hand).
    #[error("column {column}: {message}")]
    Decode {
        /// 0-based column.
        column: usize,
        /// What was found.
        message: String,
    },
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> Self {
        let code = e.code().map(|c| c.code().to_string());
        let mut message = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            message = format!("{message}: {c}");
            cause = c.source();
        }
        DbError::Postgres { message, code }
    }
}

impl DbError {
    /// Whether another writer took the same key first (PostgreSQL, when two processes
    /// register a run at once).
    pub(super) fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Postgres { code: Some(c), .. } if c == "23505")
    }
}

/// One value passed to or read from the database.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Val {
    Null,
    I64(i64),
    U64(u64),
    F64(f64),
    Text(String),
    Blob(Vec<u8>),
}

macro_rules! val_from {
    ($($t:ty => $v:expr),* $(,)?) => {
        $(impl From<$t> for Val {
            fn from(x: $t) -> Self {
                $v(x)
            }
        })*
    };
}
val_from!(
    i64 => Val::I64,
    u64 => Val::U64,
    f64 => Val::F64,
    u32 => |x: u32| Val::I64(i64::from(x)),
    String => Val::Text,
    &str => |x: &str| Val::Text(x.to_string()),
    &String => |x: &String| Val::Text(x.clone()),
    Vec<u8> => Val::Blob,
    &[u8] => |x: &[u8]| Val::Blob(x.to_vec()),
    &Vec<u8> => |x: &Vec<u8>| Val::Blob(x.clone()),
);

impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(x: Option<T>) -> Self {
        x.map_or(Val::Null, Into::into)
    }
}

/// The parameters of a statement, each converted to a [`Val`].
macro_rules! vals {
    ($($x:expr),* $(,)?) => {
        &[$($crate::store::db::Val::from($x)),*][..]
    };
}
pub(super) use vals;

/// A value read back from a column.
pub(super) trait FromVal: Sized {
    fn from_val(v: Val) -> Result<Self, String>;
}

impl FromVal for i64 {
    fn from_val(v: Val) -> Result<Self, String> {
        match v {
            Val::I64(x) => Ok(x),
            Val::U64(x) => Ok(x as i64),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}

impl FromVal for u64 {
    fn from_val(v: Val) -> Result<Self, String> {
        // PostgreSQL keeps a u64 as the i64 with the same bits.
        i64::from_val(v).map(|x| x as u64)
    }
}

impl FromVal for u32 {
    fn from_val(v: Val) -> Result<Self, String> {
        let x = i64::from_val(v)?;
        u32::try_from(x).map_err(|_| format!("{x} is out of range for u32"))
    }
}

impl FromVal for f64 {
    fn from_val(v: Val) -> Result<Self, String> {
        match v {
            Val::F64(x) => Ok(x),
            Val::I64(x) => Ok(x as f64),
            Val::U64(x) => Ok(x as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}

impl FromVal for String {
    fn from_val(v: Val) -> Result<Self, String> {
        match v {
            Val::Text(s) => Ok(s),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}

impl FromVal for Vec<u8> {
    fn from_val(v: Val) -> Result<Self, String> {
        match v {
            Val::Blob(b) => Ok(b),
            other => Err(format!("expected bytes, found {other:?}")),
        }
    }
}

impl<T: FromVal> FromVal for Option<T> {
    fn from_val(v: Val) -> Result<Self, String> {
        match v {
            Val::Null => Ok(None),
            v => T::from_val(v).map(Some),
        }
    }
}

/// One row, read column by column from the left.
pub(super) struct Cols {
    vals: std::vec::IntoIter<Val>,
    at: usize,
}

impl Cols {
    fn new(vals: Vec<Val>) -> Self {
        Self {
            vals: vals.into_iter(),
            at: 0,
        }
    }

    /// The next column as a `T`.
    pub fn get<T: FromVal>(&mut self) -> Result<T, DbError> {
        let column = self.at;
        self.at += 1;
        let v = self.vals.next().ok_or_else(|| DbError::Decode {
            column,
            message: "the row has no such column".into(),
        })?;
        T::from_val(v).map_err(|message| DbError::Decode { column, message })
    }

    /// Every column not read yet.
    pub fn rest(self) -> Vec<Val> {
        self.vals.collect()
    }
}

impl duckdb::ToSql for Val {
    fn to_sql(&self) -> duckdb::Result<duckdb::types::ToSqlOutput<'_>> {
        use duckdb::types::{ToSqlOutput, Value, ValueRef};
        Ok(match self {
            Val::Null => ToSqlOutput::Owned(Value::Null),
            Val::I64(x) => ToSqlOutput::Owned(Value::BigInt(*x)),
            Val::U64(x) => ToSqlOutput::Owned(Value::UBigInt(*x)),
            Val::F64(x) => ToSqlOutput::Owned(Value::Double(*x)),
            Val::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Val::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

fn duck_val(v: duckdb::types::Value) -> Result<Val, String> {
    use duckdb::types::Value as V;
    Ok(match v {
        V::Null => Val::Null,
        V::Boolean(b) => Val::I64(i64::from(b)),
        V::TinyInt(x) => Val::I64(x.into()),
        V::SmallInt(x) => Val::I64(x.into()),
        V::Int(x) => Val::I64(x.into()),
        V::BigInt(x) => Val::I64(x),
        V::HugeInt(x) => Val::I64(i64::try_from(x).map_err(|_| format!("{x} is too large"))?),
        V::UTinyInt(x) => Val::I64(x.into()),
        V::USmallInt(x) => Val::I64(x.into()),
        V::UInt(x) => Val::I64(x.into()),
        V::UBigInt(x) => Val::U64(x),
        V::Float(x) => Val::F64(x.into()),
        V::Double(x) => Val::F64(x),
        V::Text(s) => Val::Text(s),
        V::Blob(b) => Val::Blob(b),
        other => return Err(format!("unexpected value {other:?}")),
    })
}

impl ToSql for Val {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Val::Null => Ok(IsNull::Yes),
            Val::I64(x) => pg_int(*x, ty, out),
            Val::U64(x) => pg_int(*x as i64, ty, out),
            Val::F64(x) => match *ty {
                Type::FLOAT8 => x.to_sql(ty, out),
                Type::FLOAT4 => (*x as f32).to_sql(ty, out),
                _ => Err(format!("a number cannot be bound to a {ty} parameter").into()),
            },
            Val::Text(s) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    s.as_str().to_sql(ty, out)
                }
                _ => Err(format!("text cannot be bound to a {ty} parameter").into()),
            },
            Val::Blob(b) => match *ty {
                Type::BYTEA => b.as_slice().to_sql(ty, out),
                _ => Err(format!("bytes cannot be bound to a {ty} parameter").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn pg_int(
    x: i64,
    ty: &Type,
    out: &mut bytes::BytesMut,
) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
    match *ty {
        Type::INT8 => x.to_sql(ty, out),
        Type::INT4 => i32::try_from(x)?.to_sql(ty, out),
        Type::INT2 => i16::try_from(x)?.to_sql(ty, out),
        Type::FLOAT8 => (x as f64).to_sql(ty, out),
        _ => Err(format!("an integer cannot be bound to a {ty} parameter").into()),
    }
}

fn pg_val(row: &postgres::Row, i: usize) -> Result<Val, DbError> {
    fn get<'a, T: postgres::types::FromSql<'a>>(
        row: &'a postgres::Row,
        i: usize,
    ) -> Result<Option<T>, DbError> {
        Ok(row.try_get::<_, Option<T>>(i)?)
    }
    let ty = row.columns()[i].type_();
    Ok(match *ty {
        Type::INT8 => get::<i64>(row, i)?.map_or(Val::Null, Val::I64),
        Type::INT4 => get::<i32>(row, i)?.map_or(Val::Null, |x| Val::I64(x.into())),
        Type::INT2 => get::<i16>(row, i)?.map_or(Val::Null, |x| Val::I64(x.into())),
        Type::BOOL => get::<bool>(row, i)?.map_or(Val::Null, |x| Val::I64(x.into())),
        Type::FLOAT8 => get::<f64>(row, i)?.map_or(Val::Null, Val::F64),
        Type::FLOAT4 => get::<f32>(row, i)?.map_or(Val::Null, |x| Val::F64(x.into())),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            get::<String>(row, i)?.map_or(Val::Null, Val::Text)
        }
        Type::BYTEA => get::<Vec<u8>>(row, i)?.map_or(Val::Null, Val::Blob),
        _ => {
            return Err(DbError::Decode {
                column: i,
                message: format!("unexpected type {ty}"),
            });
        }
    })
}

/// How to connect to the database at a `postgresql://` URL, as libpq would: the user from the
/// URL, else `PGUSER`, else the login name; the password from `PGPASSWORD`, else the first
/// matching line of `PGPASSFILE` or `~/.pgpass`; a 10 s connect timeout unless the URL sets
/// one. What is wrong with the URL, or a TLS mode (not built in), is an error.
pub(super) fn postgres_config(url: &str) -> Result<postgres::Config, String> {
    let conninfo = crate::import::postgis::conninfo(url)?;
    let mut config: postgres::Config = conninfo
        .parse()
        .map_err(|e| format!("cannot use the URL: {}", DbError::from(e)))?;
    if matches!(config.get_ssl_mode(), postgres::config::SslMode::Require) {
        return Err(
            "TLS to the server is not built in: drop sslmode=require, and keep the server on the city's network or tunnel to it"
                .into(),
        );
    }
    if config.get_user().is_none() {
        let user = ["PGUSER", "USER", "LOGNAME"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
            .ok_or("names no user, and none of PGUSER, USER, LOGNAME is set")?;
        config.user(&user);
    }
    let password = std::env::var("PGPASSWORD").ok().or_else(|| {
        let file = std::env::var_os("PGPASSFILE")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pgpass")))?;
        let text = std::fs::read_to_string(file).ok()?;
        let host = match config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "localhost".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        pgpass_password(
            &text,
            [
                &host,
                &port.to_string(),
                config.get_dbname().unwrap_or(""),
                config.get_user().unwrap_or(""),
            ],
        )
    });
    if let Some(pw) = password {
        config.password(pw);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    config.application_name("citytwin");
    Ok(config)
}

/// The password of the first line of a `.pgpass` file (`host:port:database:user:password`,
/// `*` matching anything, `\:` and `\\` escaped) that matches `want`.
fn pgpass_password(text: &str, want: [&str; 4]) -> Option<String> {
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut fields = vec![String::new()];
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => fields.last_mut()?.extend(chars.next()),
                ':' if fields.len() < 5 => fields.push(String::new()),
                c => fields.last_mut()?.push(c),
            }
        }
        if fields.len() == 5
            && fields[..4]
                .iter()
                .zip(want)
                .all(|(f, w)| f == "*" || f == w)
        {
            return fields.pop();
        }
    }
    None
}

/// An open connection.
pub(super) enum Db {
    /// An embedded DuckDB file (or in-memory database).
    Duck(duckdb::Connection),
    /// A PostgreSQL server.
    Pg(Box<Pg>),
}

/// A PostgreSQL session: the client, how to open another, and the statements prepared so far.
pub(super) struct Pg {
    client: RefCell<postgres::Client>,
    config: postgres::Config,
    prepared: RefCell<HashMap<String, postgres::Statement>>,
}

/// The advisory-lock class of run ids (any other program's locks on the same server use other
/// classes): `citytwin` in the two-key form `pg_advisory_lock(class, run_id)`.
const RUN_LOCK_CLASS: i32 = 0x6374_7769;

impl Db {
    /// Open the DuckDB file at `path` (`None`: in memory).
    pub fn duck(path: Option<&Path>) -> Result<Self, DbError> {
        Ok(Db::Duck(match path {
            Some(p) => duckdb::Connection::open(p)?,
            None => duckdb::Connection::open_in_memory()?,
        }))
    }

    /// Open the DuckDB file at `path` read-only (another store, to copy runs from).
    pub fn duck_read_only(path: &Path) -> Result<Self, DbError> {
        let config = duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly)?;
        Ok(Db::Duck(duckdb::Connection::open_with_flags(path, config)?))
    }

    /// Connect to PostgreSQL with `config`; the session works in UTC so wall-clock columns
    /// read back as DuckDB writes them.
    pub fn postgres(config: postgres::Config) -> Result<Self, DbError> {
        let mut client = config.connect(postgres::NoTls)?;
        client.batch_execute("SET TimeZone = 'UTC'; SET client_min_messages = warning;")?;
        Ok(Db::Pg(Box::new(Pg {
            client: RefCell::new(client),
            config,
            prepared: RefCell::default(),
        })))
    }

    /// Another connection to the same database.
    pub fn try_clone(&self) -> Result<Self, DbError> {
        match self {
            Db::Duck(c) => Ok(Db::Duck(c.try_clone()?)),
            Db::Pg(pg) => Db::postgres(pg.config.clone()),
        }
    }

    /// Whether the connection is gone for good (PostgreSQL: the server restarted or the
    /// network dropped the session). DuckDB's never is.
    pub fn is_closed(&self) -> bool {
        match self {
            Db::Duck(_) => false,
            Db::Pg(pg) => pg.client.borrow().is_closed(),
        }
    }

    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Pg(_))
    }

    /// Run statements that take no parameters and return nothing.
    pub fn batch(&self, sql: &str) -> Result<(), DbError> {
        match self {
            Db::Duck(c) => Ok(c.execute_batch(sql)?),
            Db::Pg(pg) => Ok(pg.client.borrow_mut().batch_execute(sql)?),
        }
    }

    /// Run `body` inside a transaction: committed if it succeeds, rolled back if not.
    pub fn transaction<T>(&self, body: impl FnOnce() -> Result<T, DbError>) -> Result<T, DbError> {
        self.batch("BEGIN TRANSACTION")?;
        match body() {
            Ok(v) => {
                self.batch("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn pg_statement(
        client: &mut postgres::Client,
        prepared: &RefCell<HashMap<String, postgres::Statement>>,
        sql: &str,
    ) -> Result<postgres::Statement, DbError> {
        if let Some(st) = prepared.borrow().get(sql) {
            return Ok(st.clone());
        }
        let st = client.prepare(sql)?;
        prepared.borrow_mut().insert(sql.to_string(), st.clone());
        Ok(st)
    }

    /// Run one statement; returns the rows it changed.
    pub fn execute(&self, sql: &str, params: &[Val]) -> Result<u64, DbError> {
        match self {
            Db::Duck(c) => {
                let mut st = c.prepare_cached(sql)?;
                Ok(st.execute(duckdb::params_from_iter(params))? as u64)
            }
            Db::Pg(pg) => {
                let Pg {
                    client, prepared, ..
                } = &**pg;
                let client = &mut *client.borrow_mut();
                let st = Self::pg_statement(client, prepared, sql)?;
                let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|v| v as _).collect();
                Ok(client.execute(&st, &refs)?)
            }
        }
    }

    /// Every row of `sql`, each passed through `f` as it streams in.
    pub fn each_row(
        &self,
        sql: &str,
        params: &[Val],
        mut f: impl FnMut(Cols) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        match self {
            Db::Duck(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(duckdb::params_from_iter(params))?;
                while let Some(r) = rows.next()? {
                    let n = r.as_ref().column_count();
                    let mut vals = Vec::with_capacity(n);
                    for i in 0..n {
                        let v = duck_val(r.get::<_, duckdb::types::Value>(i)?)
                            .map_err(|message| DbError::Decode { column: i, message })?;
                        vals.push(v);
                    }
                    f(Cols::new(vals))?;
                }
                Ok(())
            }
            Db::Pg(pg) => {
                let Pg {
                    client, prepared, ..
                } = &**pg;
                use postgres::fallible_iterator::FallibleIterator;
                let client = &mut *client.borrow_mut();
                let st = Self::pg_statement(client, prepared, sql)?;
                let mut rows = client.query_raw(&st, params.iter())?;
                while let Some(r) = rows.next()? {
                    let vals = (0..r.len())
                        .map(|i| pg_val(&r, i))
                        .collect::<Result<_, _>>()?;
                    f(Cols::new(vals))?;
                }
                Ok(())
            }
        }
    }

    /// Every row of `sql`, mapped by `f`.
    pub fn query<T>(
        &self,
        sql: &str,
        params: &[Val],
        mut f: impl FnMut(&mut Cols) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        let mut out = Vec::new();
        self.each_row(sql, params, |mut c| {
            out.push(f(&mut c)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row of `sql`, mapped by `f` (`None`: no row).
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: &[Val],
        f: impl FnMut(&mut Cols) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        Ok(self.query(sql, params, f)?.into_iter().next())
    }

    /// Append `rows` to `table`, whose columns are `columns` (every column, in table order).
    pub fn append(&self, table: &str, columns: &[&str], rows: &[Vec<Val>]) -> Result<(), DbError> {
        if rows.is_empty() {
            return Ok(());
        }
        match self {
            Db::Duck(c) => {
                let mut app = c.appender(table)?;
                for r in rows {
                    app.append_row(duckdb::appender_params_from_iter(r))?;
                }
                Ok(app.flush()?)
            }
            Db::Pg(pg) => {
                let Pg {
                    client, prepared, ..
                } = &**pg;
                let list = columns.join(", ");
                let client = &mut *client.borrow_mut();
                let probe =
                    Self::pg_statement(client, prepared, &format!("SELECT {list} FROM {table}"))?;
                let types: Vec<Type> = probe.columns().iter().map(|c| c.type_().clone()).collect();
                let sink =
                    client.copy_in(&format!("COPY {table} ({list}) FROM STDIN (FORMAT binary)"))?;
                let mut w = postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
                for r in rows {
                    let refs: Vec<&(dyn ToSql + Sync)> = r.iter().map(|v| v as _).collect();
                    w.write(&refs)?;
                }
                w.finish()?;
                Ok(())
            }
        }
    }

    /// Mark run `id` as this connection's while it records: PostgreSQL holds a session-level
    /// advisory lock on it, which the server drops when the session ends, so a store opened
    /// later can tell a run whose writer died from one still recording elsewhere. DuckDB
    /// needs nothing: one process at a time writes its file.
    pub fn lock_run(&self, id: i64) -> Result<(), DbError> {
        self.run_lock("pg_advisory_lock", id)
    }

    /// The columns of `table` that hold unsigned integers here (DuckDB's `UBIGINT`,
    /// `UINTEGER`; none on PostgreSQL).
    pub fn unsigned_columns(&self, table: &str) -> Result<Vec<String>, DbError> {
        if self.is_postgres() {
            return Ok(Vec::new());
        }
        self.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = $1 AND starts_with(data_type, 'U')",
            vals![table],
            |r| r.get(),
        )
    }

    /// `col`, a `u64` column, as an `ORDER BY` key in unsigned order: PostgreSQL holds the
    /// value's bits in a signed `BIGINT`, where values from 2⁶³ up would sort first; flipping
    /// the sign bit restores the order.
    pub fn unsigned_order(&self, col: &str) -> String {
        if self.is_postgres() {
            format!("({col} # (-9223372036854775807 - 1))")
        } else {
            col.to_string()
        }
    }

    /// Let go of run `id` (see [`Db::lock_run`]).
    pub fn unlock_run(&self, id: i64) -> Result<(), DbError> {
        self.run_lock("pg_advisory_unlock", id)
    }

    /// Call PostgreSQL's advisory-lock function `func` on run `id`'s key (nothing on DuckDB).
    fn run_lock(&self, func: &str, id: i64) -> Result<(), DbError> {
        if self.is_postgres() {
            self.query(
                &format!("SELECT {func}(CAST($1 AS INT4), CAST($2 AS INT4))::VARCHAR"),
                vals![i64::from(RUN_LOCK_CLASS), id],
                |_| Ok(()),
            )?;
        }
        Ok(())
    }

    /// The condition, on `runs`, that a `running` run's writer is gone. DuckDB: every running
    /// run (its writer held the file, and it is ours now). PostgreSQL: no session holds the
    /// run's lock (this tries it; [`Db::release_probes`] lets go of what it took).
    pub fn writer_gone_sql(&self) -> String {
        if self.is_postgres() {
            format!("pg_try_advisory_lock({RUN_LOCK_CLASS}, CAST(run_id AS INT4))")
        } else {
            "true".into()
        }
    }

    /// Let go of the locks [`Db::writer_gone_sql`] took.
    pub fn release_probes(&self) -> Result<(), DbError> {
        if self.is_postgres() {
            self.query("SELECT pg_advisory_unlock_all()::VARCHAR", &[], |_| Ok(()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgpass_lines_match_as_libpq_reads_them() {
        let text = "# comment\ndb.city:5432:other:planner:nope\n*:5432:city:planner:s\\:cret\n*:*:*:*:fallback\n";
        let want = |db| ["db.city", "5432", db, "planner"];
        assert_eq!(
            pgpass_password(text, want("city")).as_deref(),
            Some("s:cret")
        );
        assert_eq!(
            pgpass_password(text, want("other")).as_deref(),
            Some("nope")
        );
        assert_eq!(
            pgpass_password(text, want("x")).as_deref(),
            Some("fallback")
        );
        assert_eq!(pgpass_password("h:1:d:u\n", want("d")), None);
    }

    #[test]
    fn urls_become_connections_or_say_what_is_wrong() {
        let c =
            postgres_config("postgresql://planner@db.city:5433/city?connect_timeout=3").unwrap();
        assert_eq!(c.get_user(), Some("planner"));
        assert_eq!(c.get_dbname(), Some("city"));
        assert_eq!(c.get_ports(), [5433]);
        assert_eq!(
            c.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(3))
        );
        for (bad, says) in [
            ("postgresql://u:pw@h/db", "password"),
            ("postgresql://u@h/db?sslmode=require", "TLS"),
            ("postgresql://u@h/db?colour=blue", "colour"),
            ("postgresql://u@h/", "database name"),
        ] {
            let e = postgres_config(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
