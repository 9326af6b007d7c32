//! Runs copied between stores: gathering another store file's runs (`absorb`), and export to
//! Parquet or CSV (through DuckDB, whichever database holds the run).

use std::path::{Path, PathBuf};

use super::db::{Db, DbError, Val, vals};
use super::schema::{RUN_TABLES, columns};
use super::{ExportFormat, RunStore, StoreError};

impl RunStore {
    /// Copy every run of another store file (DuckDB) into this one, in run order, each under
    /// the next free id here; returns the new ids. Used to run scenes in parallel, each into
    /// its own store, and gather them. Nothing is changed in `other`; each run is copied in
    /// one transaction, and if a copy fails, the runs copied so far stay and the error names
    /// the file.
    pub fn absorb(&self, other: &Path) -> Result<Vec<i64>, StoreError> {
        let from_other = |source| StoreError::Db {
            path: other.to_path_buf(),
            source,
        };
        let src = Db::duck_read_only(other).map_err(from_other)?;
        let old: Vec<(i64, Option<i64>)> = src
            .query(
                "SELECT run_id, parent_run FROM runs ORDER BY run_id",
                &[],
                |r| Ok((r.get()?, r.get()?)),
            )
            .map_err(from_other)?;
        // A store of an older schema lacks the newer tables (readings): copy what it has.
        let present: Vec<String> = src
            .query("SELECT table_name FROM duckdb_tables()", &[], |r| r.get())
            .map_err(from_other)?;
        let mut new_ids: Vec<(i64, i64)> = Vec::new();
        for (id, parent) in old {
            let (cols, mut row) = run_row(&src, id).map_err(from_other)?;
            // A fork's parent is renumbered with it (it was copied first: ids only grow).
            let parent_at = cols.iter().position(|c| *c == "parent_run");
            if let (Some(at), Some(p)) = (parent_at, parent) {
                row[at] = new_ids
                    .iter()
                    .find(|(o, _)| *o == p)
                    .map_or(Val::Null, |(_, n)| Val::I64(*n));
            }
            let r = self.new_run(&cols, &value_exprs(&cols, 1), &row, |new| {
                for t in RUN_TABLES.iter().skip(1).chain(&["checkpoints"]) {
                    if present.iter().any(|p| p == t) {
                        copy_rows(&src, id, &self.db, new, t)?;
                    }
                }
                Ok(())
            });
            new_ids.push((id, r.map_err(from_other)?));
        }
        Ok(new_ids.into_iter().map(|(_, n)| n).collect())
    }

    /// Export every table's rows of a run into `dir` as `<table>.parquet` or `<table>.csv`
    /// (written by DuckDB; a PostgreSQL store's run is first copied into a DuckDB in memory).
    pub fn export(
        &self,
        id: i64,
        dir: &Path,
        format: ExportFormat,
    ) -> Result<Vec<PathBuf>, StoreError> {
        self.run(id)?;
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
            path: dir.to_path_buf(),
            message: format!("cannot create export folder: {e}"),
        })?;
        let scratch;
        let duck = if self.db.is_postgres() {
            scratch = RunStore::in_memory()?;
            let r = RUN_TABLES
                .iter()
                .try_for_each(|t| copy_rows(&self.db, id, &scratch.db, id, t));
            self.db(r)?;
            &scratch
        } else {
            self
        };
        let (ext, opts) = match format {
            ExportFormat::Parquet => ("parquet", "FORMAT PARQUET, COMPRESSION ZSTD"),
            ExportFormat::Csv => ("csv", "FORMAT CSV, HEADER"),
        };
        let mut out = Vec::new();
        for t in RUN_TABLES {
            let file = dir.join(format!("{t}.{ext}"));
            let quoted = file.display().to_string().replace('\'', "''");
            let order = match t {
                "runs" => "",
                "features" => "ORDER BY entity",
                "readings" => "ORDER BY seq",
                _ => "ORDER BY tick",
            };
            duck.db(duck.db.batch(&format!(
                "COPY (SELECT * FROM {t} WHERE run_id = {id} {order}) TO '{quoted}' ({opts})"
            )))?;
            out.push(file);
        }
        Ok(out)
    }
}

/// The wall-clock columns of `runs`: they cross between the databases as text.
const TIMESTAMPS: [&str; 2] = ["started_at", "ended_at"];

/// The `SELECT` list of `cols`, wall-clock columns as text.
fn select_list(cols: &[&str]) -> String {
    let exprs: Vec<String> = cols
        .iter()
        .map(|c| {
            if TIMESTAMPS.contains(c) {
                format!("CAST({c} AS VARCHAR)")
            } else {
                c.to_string()
            }
        })
        .collect();
    exprs.join(", ")
}

/// The `VALUES` of `cols` from parameters `$first…`, wall-clock columns read from text.
fn value_exprs(cols: &[&str], first: usize) -> String {
    let exprs: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let n = first + k;
            if TIMESTAMPS.contains(c) {
                format!("CAST(CAST(${n} AS VARCHAR) AS TIMESTAMPTZ)")
            } else {
                format!("${n}")
            }
        })
        .collect();
    exprs.join(", ")
}

/// Run `id`'s `runs` row in `src` without its id: the columns an older store has, and their
/// values.
fn run_row(src: &Db, id: i64) -> Result<(Vec<&'static str>, Vec<Val>), DbError> {
    let present: Vec<String> = src.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'runs'",
        &[],
        |r| r.get(),
    )?;
    let cols: Vec<&'static str> = columns("runs")[1..]
        .iter()
        .copied()
        .filter(|c| present.iter().any(|p| p == c))
        .collect();
    let mut row = None;
    src.each_row(
        &format!("SELECT {} FROM runs WHERE run_id = $1", select_list(&cols)),
        vals![id],
        |r| {
            row = Some(r.rest());
            Ok(())
        },
    )?;
    let row = row.ok_or_else(|| DbError::Decode {
        column: 0,
        message: format!("run {id} vanished while it was copied"),
    })?;
    Ok((cols, row))
}

/// Copy run `from`'s rows of `table` in `src` into `dst` as run `to`'s, streaming them in
/// batches (a store's snapshots can be millions of rows).
fn copy_rows(src: &Db, from: i64, dst: &Db, to: i64, table: &str) -> Result<(), DbError> {
    const BATCH: usize = 50_000;
    let cols = columns(table);
    // PostgreSQL gives a u64 as the i64 with its bits; DuckDB's column wants it unsigned.
    let unsigned = dst.unsigned_columns(table)?;
    if table == "runs" {
        let (mut cols, mut row) = run_row(src, from)?;
        cols.insert(0, "run_id");
        row.insert(0, Val::I64(to));
        unsigned_as_such(&mut row, &cols, &unsigned);
        dst.execute(
            &format!(
                "INSERT INTO runs ({}) VALUES ({})",
                cols.join(", "),
                value_exprs(&cols, 1)
            ),
            &row,
        )?;
        return Ok(());
    }
    let mut rows: Vec<Vec<Val>> = Vec::with_capacity(BATCH);
    src.each_row(
        &format!(
            "SELECT {} FROM {table} WHERE run_id = $1",
            cols[1..].join(", ")
        ),
        vals![from],
        |r| {
            let mut row = Vec::with_capacity(cols.len());
            row.push(Val::I64(to));
            row.extend(r.rest());
            unsigned_as_such(&mut row, cols, &unsigned);
            rows.push(row);
            if rows.len() == BATCH {
                dst.append(table, cols, &rows)?;
                rows.clear();
            }
            Ok(())
        },
    )?;
    dst.append(table, cols, &rows)
}

/// Give the values in `row` (of columns `cols`) of the `unsigned` columns as `u64`s, their
/// bits unchanged.
fn unsigned_as_such(row: &mut [Val], cols: &[&str], unsigned: &[String]) {
    for (v, c) in row.iter_mut().zip(cols) {
        if let Val::I64(x) = *v
            && unsigned.iter().any(|u| u == c)
        {
            *v = Val::U64(x as u64);
        }
    }
}
