//! Feed files: the rows of a CSV or Parquet file of readings, as text fields for the one
//! reader of readings ([`super::Feeds::take`]).

use std::path::Path;

use crate::incident::{IncidentError, READING_COLUMNS, csv_table, err, missing_column};

/// Each row of a readings file, with where it is (`path:line` for CSV, `path row N` for
/// Parquet): its five fields, or what is wrong with it. Only an unreadable file or a missing
/// column fails.
pub(super) fn reading_rows(
    path: &Path,
) -> Result<Vec<(String, Result<Vec<String>, String>)>, IncidentError> {
    let name = path.display().to_string();
    let parquet = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    if parquet {
        return parquet_rows(path).map(|rows| {
            rows.into_iter()
                .enumerate()
                .map(|(i, r)| (format!("{name} row {}", i + 1), r))
                .collect()
        });
    }
    Ok(csv_table(path, READING_COLUMNS)?
        .into_iter()
        .map(|(line, r)| (format!("{name}:{line}"), r))
        .collect())
}

/// How a Parquet column is turned into the text a CSV row would hold.
fn column_expr(name: &str, ty: &str) -> String {
    let col = format!("\"{}\"", name.replace('"', "\"\""));
    let ty = ty.to_ascii_uppercase();
    if ty.starts_with("TIMESTAMP WITH TIME ZONE") || ty == "TIMESTAMPTZ" {
        // An instant: as RFC 3339 in UTC.
        format!("strftime(CAST({col} AS TIMESTAMP), '%Y-%m-%dT%H:%M:%S.%fZ')")
    } else if ty.starts_with("TIMESTAMP") {
        // A timestamp without a zone (Parquet's isAdjustedToUTC = false): the zone is unknown,
        // so it is refused with the same message as a CSV instant without its offset.
        format!("strftime(CAST({col} AS TIMESTAMP), '%Y-%m-%dT%H:%M:%S.%f')")
    } else if matches!(ty.as_str(), "DOUBLE" | "FLOAT" | "REAL") {
        // Shortest text that reads back as the same double.
        format!("CAST(CAST({col} AS DOUBLE) AS VARCHAR)")
    } else {
        format!("CAST({col} AS VARCHAR)")
    }
}

fn parquet_rows(path: &Path) -> Result<Vec<Result<Vec<String>, String>>, IncidentError> {
    let fail = |m: String| err(path, 0, m);
    let db = duckdb::Connection::open_in_memory()
        .map_err(|e| fail(format!("cannot open DuckDB to read it: {e}")))?;
    let file = path.display().to_string().replace('\'', "''");
    let source = format!("read_parquet('{file}')");
    let mut st = db
        .prepare(&format!("DESCRIBE SELECT * FROM {source}"))
        .map_err(|e| fail(format!("cannot read as Parquet: {e}")))?;
    let cols: Vec<(String, String)> = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .and_then(|rows| rows.collect())
        .map_err(|e| fail(format!("cannot read as Parquet: {e}")))?;
    let mut exprs = Vec::with_capacity(READING_COLUMNS.len());
    for names in READING_COLUMNS {
        let (name, ty) = cols
            .iter()
            .find(|(c, _)| names.contains(&c.to_lowercase().as_str()))
            .ok_or_else(|| {
                let found: Vec<&str> = cols.iter().map(|(c, _)| c.as_str()).collect();
                missing_column(path, names, &found)
            })?;
        exprs.push(column_expr(name, ty));
    }
    let sql = format!("SELECT {} FROM {source}", exprs.join(", "));
    let mut st = db
        .prepare(&sql)
        .map_err(|e| fail(format!("cannot read as Parquet: {e}")))?;
    let rows = st
        .query_map([], |r| {
            (0..READING_COLUMNS.len())
                .map(|i| r.get::<_, Option<String>>(i))
                .collect::<Result<Vec<_>, _>>()
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| fail(format!("cannot read as Parquet: {e}")))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            r.into_iter()
                .enumerate()
                .map(|(k, v)| {
                    v.ok_or_else(|| format!("no value for column '{}'", READING_COLUMNS[k][0]))
                })
                .collect()
        })
        .collect())
}
