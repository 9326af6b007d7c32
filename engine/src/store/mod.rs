//! The run store: an embedded DuckDB file holding every run of a project.
//!
//! One `.duckdb` file per project folder (by default `runs/citytwin.duckdb` beside the scene file;
//! the sample scene keeps it at the repository root)
//! holds many runs, so runs can be listed, compared and exported together. Tables:
//!
//! | table | one row per |
//! |---|---|
//! | `runs` | run: scene, seed, code version, wall start/end, status, ticks, final state hash |
//! | `features` | model entity at the start of a run: kind, layer/id, WKB geometry, bbox, H3 cell |
//! | `kpis` | KPI sample: tick, sim time, name, scope, value, unit |
//! | `snapshots` | snapshotted entity at a snapshot tick: position, speed, H3 cell |
//! | `events` | event: tick, kind, entity, place, message |
//! | `fields` | map value: tick, name, H3 cell, value, unit |
//! | `checkpoints` | checkpoint: tick, sim time, state hash, the world's state (deflated image) |
//!
//! A fork (`citytwin fork`) is a run with `parent_run` and `fork_tick` set: its rows before
//! `fork_tick` are copies of the parent's, so every query on one run sees its whole history.
//!
//! DuckDB's spatial extension is not used: geometry is WKB with `min_x … max_y` columns (metres in
//! the scene frame) and H3 cell ids (`UBIGINT`), so spatial filters are plain SQL.
//! A run that ends without closing (process killed) is marked `failed` the next time the store
//! is opened, since DuckDB lets one process at a time write a file.

use std::path::{Path, PathBuf};

use duckdb::{Connection, params};

mod checkpoints;
mod queries;
mod readings;
pub use checkpoints::CheckpointRow;
pub use queries::KpiFilter;
pub use readings::{Channel, READING_STATUSES, ReadingRow, RecordedMessage};

/// Schema version written in `meta`; a store with another version is refused, not altered.
pub const SCHEMA_VERSION: i64 = 3;

/// A run-store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// DuckDB reported an error.
    #[error("run store {path}: {source}")]
    Db {
        /// The store file.
        path: PathBuf,
        /// DuckDB's error.
        source: duckdb::Error,
    },
    /// The store was written by an incompatible version.
    #[error(
        "run store {path}: schema version {found}, this citytwin reads version {SCHEMA_VERSION}"
    )]
    Version {
        /// The store file.
        path: PathBuf,
        /// The version found.
        found: i64,
    },
    /// No run with that id.
    #[error("run store {path}: no run {id}")]
    NoRun {
        /// The store file.
        path: PathBuf,
        /// The id asked for.
        id: i64,
    },
    /// A file-system problem around the store.
    #[error("run store {path}: {message}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// How a run ended (or that it has not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    /// Still running (or its process died; see the module docs).
    Running,
    /// Ran to its duration.
    Completed,
    /// Stopped by the user (Ctrl-C) before its duration.
    Interrupted,
    /// Stopped by an error or panic.
    Failed,
    /// Not a simulation: what a real incident left behind (GPS tracks, readings, a log),
    /// imported on the scene's model and clock (see [`crate::incident::observed`]).
    Observed,
}

impl RunStatus {
    /// The name stored in `runs.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Failed => "failed",
            RunStatus::Observed => "observed",
        }
    }
}

/// What is known about a run when it starts.
#[derive(Clone, Debug)]
pub struct RunMeta {
    /// Scene name.
    pub scene_name: String,
    /// Scene file path as given.
    pub scene_path: String,
    /// Scene file text (so the run can be reproduced from the store alone).
    pub scene_toml: String,
    /// Seed.
    pub seed: u64,
    /// citytwin version.
    pub version: String,
    /// Simulated start (RFC 9557 with zone).
    pub sim_start: String,
    /// Step, s.
    pub step_s: f64,
    /// Duration, s.
    pub duration_s: f64,
}

/// A run as listed.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// Id within the store.
    pub id: i64,
    /// Scene name.
    pub scene_name: String,
    /// Seed.
    pub seed: u64,
    /// Status name.
    pub status: String,
    /// Wall-clock start (UTC).
    pub started_at: String,
    /// Wall-clock end (UTC), if ended.
    pub ended_at: Option<String>,
    /// Ticks completed.
    pub ticks: i64,
    /// Simulated seconds completed.
    pub sim_time_s: f64,
    /// Final state hash, if ended.
    pub state_hash: Option<String>,
    /// Error text for failed runs.
    pub error: Option<String>,
}

/// A KPI sample row.
#[derive(Clone, Debug, PartialEq)]
pub struct KpiRow {
    /// Tick.
    pub tick: u64,
    /// Simulated time, s.
    pub sim_time_s: f64,
    /// KPI name (e.g. `traffic.mean_speed_mps`).
    pub name: String,
    /// What it is about: `city`, or a feature id.
    pub scope: String,
    /// Value in SI.
    pub value: f64,
    /// SI unit.
    pub unit: String,
}

/// A feature row (the model at the start of a run).
#[derive(Clone, Debug)]
pub struct FeatureRow {
    /// Entity bits.
    pub entity: u64,
    /// Kind name.
    pub kind: String,
    /// Source layer.
    pub layer: String,
    /// Source id.
    pub feature_id: String,
    /// WKB geometry.
    pub wkb: Vec<u8>,
    /// Bounding box, m.
    pub bbox: [f64; 4],
    /// H3 cell of the anchor point.
    pub h3: Option<u64>,
}

/// A snapshot row.
#[derive(Clone, Copy, Debug)]
pub struct SnapshotRow {
    /// Tick.
    pub tick: u64,
    /// Simulated time, s.
    pub sim_time_s: f64,
    /// Entity bits.
    pub entity: u64,
    /// x, m.
    pub x_m: f64,
    /// y, m.
    pub y_m: f64,
    /// z, m.
    pub z_m: f64,
    /// Speed, m/s, where the entity has one.
    pub speed_mps: Option<f64>,
    /// H3 cell.
    pub h3: Option<u64>,
}

/// An event row.
#[derive(Clone, Debug)]
pub struct EventRow {
    /// Tick.
    pub tick: u64,
    /// Simulated time, s.
    pub sim_time_s: f64,
    /// Event kind (e.g. `flood.road_closed`).
    pub kind: String,
    /// Entity concerned, if any.
    pub entity: Option<u64>,
    /// Place, m.
    pub xy_m: Option<[f64; 2]>,
    /// H3 cell of the place.
    pub h3: Option<u64>,
    /// Text for people.
    pub message: String,
}

/// One cell's value of a field (a map such as a concentration or a water depth) at one time.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldRow {
    /// Tick.
    pub tick: u64,
    /// Simulated time, s.
    pub sim_time_s: f64,
    /// Field name, dotted (e.g. `pollution.NO2`).
    pub name: String,
    /// The H3 cell the value describes.
    pub h3: u64,
    /// Value in SI.
    pub value: f64,
    /// SI unit.
    pub unit: String,
}

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// Apache Parquet.
    Parquet,
    /// CSV with a header.
    Csv,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id BIGINT PRIMARY KEY,
    scene_name VARCHAR NOT NULL,
    scene_path VARCHAR NOT NULL,
    scene_toml VARCHAR NOT NULL,
    seed UBIGINT NOT NULL,
    version VARCHAR NOT NULL,
    sim_start VARCHAR NOT NULL,
    step_s DOUBLE NOT NULL,
    duration_s DOUBLE NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ,
    status VARCHAR NOT NULL,
    ticks BIGINT NOT NULL DEFAULT 0,
    state_hash VARCHAR,
    error VARCHAR,
    parent_run BIGINT,
    fork_tick UBIGINT
);
CREATE TABLE IF NOT EXISTS features (
    run_id BIGINT NOT NULL, entity UBIGINT NOT NULL, kind VARCHAR NOT NULL,
    layer VARCHAR NOT NULL, feature_id VARCHAR NOT NULL, wkb BLOB NOT NULL,
    min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, h3 UBIGINT
);
CREATE TABLE IF NOT EXISTS kpis (
    run_id BIGINT NOT NULL, tick UBIGINT NOT NULL, sim_time_s DOUBLE NOT NULL,
    name VARCHAR NOT NULL, scope VARCHAR NOT NULL, value DOUBLE, unit VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    run_id BIGINT NOT NULL, tick UBIGINT NOT NULL, sim_time_s DOUBLE NOT NULL, entity UBIGINT NOT NULL,
    x_m DOUBLE NOT NULL, y_m DOUBLE NOT NULL, z_m DOUBLE NOT NULL, speed_mps DOUBLE, h3 UBIGINT
);
CREATE TABLE IF NOT EXISTS events (
    run_id BIGINT NOT NULL, tick UBIGINT NOT NULL, sim_time_s DOUBLE NOT NULL, kind VARCHAR NOT NULL,
    entity UBIGINT, x_m DOUBLE, y_m DOUBLE, h3 UBIGINT, message VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS fields (
    run_id BIGINT NOT NULL, tick UBIGINT NOT NULL, sim_time_s DOUBLE NOT NULL, name VARCHAR NOT NULL,
    h3 UBIGINT NOT NULL, value DOUBLE NOT NULL, unit VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS readings (
    run_id BIGINT NOT NULL, seq UBIGINT NOT NULL, feed UINTEGER NOT NULL, channel VARCHAR NOT NULL,
    origin VARCHAR NOT NULL, arrival_s DOUBLE, payload VARCHAR NOT NULL, status VARCHAR NOT NULL,
    detail VARCHAR, station VARCHAR, quantity VARCHAR, time_s DOUBLE, value DOUBLE, unit VARCHAR
);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id BIGINT NOT NULL, tick UBIGINT NOT NULL, sim_time_s DOUBLE NOT NULL,
    state_hash VARCHAR NOT NULL, image BLOB NOT NULL
);
";

/// Version 1 stores lacked the fork columns and the checkpoints table (which `SCHEMA` creates).
const MIGRATE_FROM_1: &str = "
ALTER TABLE runs ADD COLUMN IF NOT EXISTS parent_run BIGINT;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS fork_tick UBIGINT;
UPDATE meta SET value = '2' WHERE key = 'schema_version';
";

/// Version 2 stores lacked the readings table (which `SCHEMA` creates).
const MIGRATE_FROM_2: &str = "UPDATE meta SET value = '3' WHERE key = 'schema_version';";

/// The tables a run owns rows in, for export (checkpoints are the engine's own, and binary).
pub const RUN_TABLES: [&str; 7] = [
    "runs",
    "features",
    "kpis",
    "snapshots",
    "events",
    "fields",
    "readings",
];

/// An open run store.
pub struct RunStore {
    conn: Connection,
    path: PathBuf,
}

fn now_utc() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%d %H:%M:%S+00")
        .to_string()
}

impl RunStore {
    /// Open (creating if needed) the store at `path`. Runs left `running` by a process that died
    /// are marked `failed`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
                path: path.clone(),
                message: format!("cannot create folder {}: {e}", dir.display()),
            })?;
        }
        let conn = Connection::open(&path).map_err(|source| StoreError::Db {
            path: path.clone(),
            source,
        })?;
        let store = Self { conn, path };
        store.init()?;
        Ok(store)
    }

    /// An in-memory store (tests, dry runs).
    pub fn in_memory() -> Result<Self, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Db {
            path: path.clone(),
            source,
        })?;
        let store = Self { conn, path };
        store.init()?;
        Ok(store)
    }

    fn db<T>(&self, r: duckdb::Result<T>) -> Result<T, StoreError> {
        r.map_err(|source| StoreError::Db {
            path: self.path.clone(),
            source,
        })
    }

    fn init(&self) -> Result<(), StoreError> {
        self.db(self.conn.execute_batch(SCHEMA))?;
        let v: Option<String> = self.db(self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .map(Some)
            .or_else(|e| {
                if matches!(e, duckdb::Error::QueryReturnedNoRows) {
                    Ok(None)
                } else {
                    Err(e)
                }
            }))?;
        match v {
            None => {
                self.db(self.conn.execute(
                    "INSERT INTO meta VALUES ('schema_version', ?)",
                    params![SCHEMA_VERSION.to_string()],
                ))?;
            }
            Some(v) => {
                let found = v.parse::<i64>().unwrap_or(-1);
                if found == 1 {
                    self.db(self.conn.execute_batch(MIGRATE_FROM_1))?;
                }
                if found == 1 || found == 2 {
                    self.db(self.conn.execute_batch(MIGRATE_FROM_2))?;
                } else if found != SCHEMA_VERSION {
                    return Err(StoreError::Version {
                        path: self.path.clone(),
                        found,
                    });
                }
            }
        }
        self.db(self.conn.execute(
            "UPDATE runs SET status = 'failed', ended_at = coalesce(ended_at, CAST(? AS TIMESTAMPTZ)),
             error = coalesce(error, 'the process ended without closing the run (killed or crashed)')
             WHERE status = 'running'",
            params![now_utc()],
        ))?;
        Ok(())
    }

    /// Tune the connection for recording alongside a running simulation: one DuckDB worker
    /// thread (the simulation needs the cores), and checkpoints deferred until the WAL reaches
    /// 256 MB instead of compressing columns mid-run.
    pub fn tune_for_recording(&self) -> Result<(), StoreError> {
        self.db(self
            .conn
            .execute_batch("SET threads = 1; SET wal_autocheckpoint = '256MB';"))
    }

    /// The store's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Register a new run as `running` and return its id.
    pub fn begin_run(&self, meta: &RunMeta) -> Result<i64, StoreError> {
        let id: i64 = self.db(self.conn.query_row(
            "SELECT coalesce(max(run_id), 0) + 1 FROM runs",
            [],
            |r| r.get(0),
        ))?;
        self.db(self.conn.execute(
            "INSERT INTO runs (run_id, scene_name, scene_path, scene_toml, seed, version, sim_start, step_s, duration_s, started_at, status)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS TIMESTAMPTZ), 'running')",
            params![id, meta.scene_name, meta.scene_path, meta.scene_toml, meta.seed, meta.version, meta.sim_start, meta.step_s, meta.duration_s, now_utc()],
        ))?;
        Ok(id)
    }

    /// Copy every run of another store file into this one, in run order, each under the next
    /// free id here; returns the new ids. Used to run scenes in parallel, each into its own
    /// store, and gather them. Nothing is changed in `other`; if a copy fails, the runs copied
    /// so far stay and the error names the file.
    pub fn absorb(&self, other: &Path) -> Result<Vec<i64>, StoreError> {
        let quoted = other.display().to_string().replace('\'', "''");
        self.db(self
            .conn
            .execute_batch(&format!("ATTACH '{quoted}' AS other (READ_ONLY)")))?;
        let copied = (|| {
            let old: Vec<i64> = self.column("SELECT run_id FROM other.runs ORDER BY run_id")?;
            // A store of an older schema lacks the newer tables (readings): copy what it has.
            let present: Vec<String> = self
                .column("SELECT table_name FROM duckdb_tables() WHERE database_name = 'other'")?;
            let mut new_ids = Vec::new();
            for id in old {
                let new: i64 = self.db(self.conn.query_row(
                    "SELECT coalesce(max(run_id), 0) + 1 FROM runs",
                    [],
                    |r| r.get(0),
                ))?;
                let mut sql = String::from("BEGIN TRANSACTION;\n");
                for t in RUN_TABLES.iter().chain(&["checkpoints"]) {
                    if !present.iter().any(|p| p == t) {
                        continue;
                    }
                    sql += &format!(
                        "INSERT INTO {t} SELECT {new}, * EXCLUDE (run_id) FROM other.{t} WHERE run_id = {id};\n"
                    );
                }
                sql += "COMMIT;";
                if let Err(e) = self.conn.execute_batch(&sql) {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    return Err(StoreError::Db {
                        path: other.to_path_buf(),
                        source: e,
                    });
                }
                new_ids.push(new);
            }
            Ok(new_ids)
        })();
        let detached = self.db(self.conn.execute_batch("DETACH other"));
        let ids = copied?;
        detached?;
        Ok(ids)
    }

    /// The first column of every row `sql` returns.
    fn column<T: duckdb::types::FromSql>(&self, sql: &str) -> Result<Vec<T>, StoreError> {
        let mut st = self.db(self.conn.prepare(sql))?;
        let rows = self.db(st.query_map([], |r| r.get(0)))?;
        rows.map(|r| self.db(r)).collect()
    }

    /// Update a running run's progress (ticks done), so an interrupted run shows how far it got.
    pub fn progress(&self, id: i64, ticks: u64) -> Result<(), StoreError> {
        self.db(self.conn.execute(
            "UPDATE runs SET ticks = ? WHERE run_id = ?",
            params![ticks as i64, id],
        ))?;
        Ok(())
    }

    /// Close a run with its final status.
    pub fn finish_run(
        &self,
        id: i64,
        status: RunStatus,
        ticks: u64,
        state_hash: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let n = self.db(self.conn.execute(
            "UPDATE runs SET status = ?, ticks = ?, state_hash = ?, error = ?, ended_at = CAST(? AS TIMESTAMPTZ) WHERE run_id = ?",
            params![status.as_str(), ticks as i64, state_hash, error, now_utc(), id],
        ))?;
        if n == 0 {
            return Err(StoreError::NoRun {
                path: self.path.clone(),
                id,
            });
        }
        Ok(())
    }

    /// Append feature rows.
    pub fn append_features(&self, run: i64, rows: &[FeatureRow]) -> Result<(), StoreError> {
        let mut app = self.db(self.conn.appender("features"))?;
        for r in rows {
            self.db(app.append_row(params![
                run,
                r.entity,
                r.kind,
                r.layer,
                r.feature_id,
                r.wkb,
                r.bbox[0],
                r.bbox[1],
                r.bbox[2],
                r.bbox[3],
                r.h3
            ]))?;
        }
        self.db(app.flush())
    }

    /// Append KPI rows.
    pub fn append_kpis(&self, run: i64, rows: &[KpiRow]) -> Result<(), StoreError> {
        let mut app = self.db(self.conn.appender("kpis"))?;
        for r in rows {
            let v = r.value.is_finite().then_some(r.value);
            self.db(app.append_row(params![
                run,
                r.tick,
                r.sim_time_s,
                r.name,
                r.scope,
                v,
                r.unit
            ]))?;
        }
        self.db(app.flush())
    }

    /// Append snapshot rows, columnar through Arrow: this is the table that grows with every
    /// moving entity at every snapshot, so it takes DuckDB's bulk path.
    pub fn append_snapshots(&self, run: i64, rows: &[SnapshotRow]) -> Result<(), StoreError> {
        use duckdb::arrow::array::{ArrayRef, Float64Array, Int64Array, UInt64Array};
        use duckdb::arrow::record_batch::RecordBatch;
        use std::sync::Arc;
        if rows.is_empty() {
            return Ok(());
        }
        let cols: Vec<(&str, ArrayRef)> = vec![
            ("run_id", Arc::new(Int64Array::from(vec![run; rows.len()]))),
            (
                "tick",
                Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.tick))),
            ),
            (
                "sim_time_s",
                Arc::new(Float64Array::from_iter_values(
                    rows.iter().map(|r| r.sim_time_s),
                )),
            ),
            (
                "entity",
                Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.entity))),
            ),
            (
                "x_m",
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.x_m))),
            ),
            (
                "y_m",
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.y_m))),
            ),
            (
                "z_m",
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.z_m))),
            ),
            (
                "speed_mps",
                Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.speed_mps))),
            ),
            (
                "h3",
                Arc::new(UInt64Array::from_iter(rows.iter().map(|r| r.h3))),
            ),
        ];
        let batch = RecordBatch::try_from_iter(cols).map_err(|e| StoreError::Io {
            path: self.path.clone(),
            message: format!("cannot build a snapshot batch: {e}"),
        })?;
        let mut app = self.db(self.conn.appender("snapshots"))?;
        self.db(app.append_record_batch(batch))?;
        self.db(app.flush())
    }

    /// Append event rows.
    pub fn append_events(&self, run: i64, rows: &[EventRow]) -> Result<(), StoreError> {
        let mut app = self.db(self.conn.appender("events"))?;
        for r in rows {
            self.db(app.append_row(params![
                run,
                r.tick,
                r.sim_time_s,
                r.kind,
                r.entity,
                r.xy_m.map(|p| p[0]),
                r.xy_m.map(|p| p[1]),
                r.h3,
                r.message
            ]))?;
        }
        self.db(app.flush())
    }

    /// Append field samples.
    pub fn append_fields(&self, run: i64, rows: &[FieldRow]) -> Result<(), StoreError> {
        let mut app = self.db(self.conn.appender("fields"))?;
        for r in rows {
            self.db(app.append_row(params![
                run,
                r.tick,
                r.sim_time_s,
                r.name,
                r.h3,
                r.value,
                r.unit
            ]))?;
        }
        self.db(app.flush())
    }

    fn summary_sql(filter: &str) -> String {
        format!(
            "SELECT run_id, scene_name, seed, status, CAST(started_at AS VARCHAR), CAST(ended_at AS VARCHAR), ticks,
                    ticks * step_s, state_hash, error FROM runs {filter} ORDER BY run_id"
        )
    }

    fn map_summary(r: &duckdb::Row<'_>) -> duckdb::Result<RunSummary> {
        Ok(RunSummary {
            id: r.get(0)?,
            scene_name: r.get(1)?,
            seed: r.get(2)?,
            status: r.get(3)?,
            started_at: r.get(4)?,
            ended_at: r.get(5)?,
            ticks: r.get(6)?,
            sim_time_s: r.get(7)?,
            state_hash: r.get(8)?,
            error: r.get(9)?,
        })
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Result<Vec<RunSummary>, StoreError> {
        let mut st = self.db(self.conn.prepare_cached(&Self::summary_sql("")))?;
        let rows = self.db(st.query_map([], Self::map_summary))?;
        rows.map(|r| self.db(r)).collect()
    }

    /// One run.
    pub fn run(&self, id: i64) -> Result<RunSummary, StoreError> {
        let r = self
            .conn
            .prepare_cached(&Self::summary_sql("WHERE run_id = ?"))
            .and_then(|mut st| st.query_row(params![id], Self::map_summary));
        self.of_run(id, r)
    }

    /// What a run was made from: its scene (path as given and text), seed and code version, so
    /// it can be made again.
    pub fn run_meta(&self, id: i64) -> Result<RunMeta, StoreError> {
        let r = self.conn.query_row(
            "SELECT scene_name, scene_path, scene_toml, seed, version, sim_start, step_s, duration_s FROM runs WHERE run_id = ?",
            params![id],
            |r| {
                Ok(RunMeta {
                    scene_name: r.get(0)?,
                    scene_path: r.get(1)?,
                    scene_toml: r.get(2)?,
                    seed: r.get(3)?,
                    version: r.get(4)?,
                    sim_start: r.get(5)?,
                    step_s: r.get(6)?,
                    duration_s: r.get(7)?,
                })
            },
        );
        self.of_run(id, r)
    }

    /// A query about run `id`: no row means no such run.
    fn of_run<T>(&self, id: i64, r: duckdb::Result<T>) -> Result<T, StoreError> {
        match r {
            Err(duckdb::Error::QueryReturnedNoRows) => Err(StoreError::NoRun {
                path: self.path.clone(),
                id,
            }),
            other => self.db(other),
        }
    }

    /// Row counts of a run's tables: features, kpis, snapshots, events.
    pub fn row_counts(&self, id: i64) -> Result<[(String, i64); 4], StoreError> {
        let mut out: [(String, i64); 4] = Default::default();
        for (slot, t) in out
            .iter_mut()
            .zip(["features", "kpis", "snapshots", "events"])
        {
            let n: i64 = self.db(self.conn.query_row(
                &format!("SELECT count(*) FROM {t} WHERE run_id = ?"),
                params![id],
                |r| r.get(0),
            ))?;
            *slot = (t.to_string(), n);
        }
        Ok(out)
    }

    /// Every KPI sample of a run, in tick then name then scope order.
    pub fn kpis(&self, id: i64) -> Result<Vec<KpiRow>, StoreError> {
        let mut st = self.db(self.conn.prepare(
            "SELECT tick, sim_time_s, name, scope, coalesce(value, 'NaN'::DOUBLE), unit FROM kpis WHERE run_id = ? ORDER BY tick, name, scope",
        ))?;
        let rows = self.db(st.query_map(params![id], queries::kpi_row))?;
        rows.map(|r| self.db(r)).collect()
    }

    /// Every sample of field `name` in a run, in tick then cell order.
    pub fn field(&self, id: i64, name: &str) -> Result<Vec<FieldRow>, StoreError> {
        let mut st = self.db(self.conn.prepare(
            "SELECT tick, sim_time_s, name, h3, value, unit FROM fields WHERE run_id = ? AND name = ? ORDER BY tick, h3",
        ))?;
        let rows = self.db(st.query_map(params![id, name], |r| {
            Ok(FieldRow {
                tick: r.get::<_, u64>(0)?,
                sim_time_s: r.get(1)?,
                name: r.get(2)?,
                h3: r.get::<_, u64>(3)?,
                value: r.get(4)?,
                unit: r.get(5)?,
            })
        }))?;
        rows.map(|r| self.db(r)).collect()
    }

    /// A run's events whose kind starts with `prefix` before `tick` that name an entity, in
    /// tick order: (tick, entity bits, kind).
    pub fn events_of(
        &self,
        id: i64,
        prefix: &str,
        tick: u64,
    ) -> Result<Vec<(u64, u64, String)>, StoreError> {
        let mut st = self.db(self.conn.prepare(
            "SELECT tick, entity, kind FROM events WHERE run_id = ? AND starts_with(kind, ?) AND tick < ? AND entity IS NOT NULL ORDER BY tick, kind, entity",
        ))?;
        let rows = self.db(st.query_map(params![id, prefix, tick], |r| {
            Ok((r.get::<_, u64>(0)?, r.get::<_, u64>(1)?, r.get(2)?))
        }))?;
        rows.map(|r| self.db(r)).collect()
    }

    /// The feature id (`layer/id`'s id) of the entity `entity` (bits) in run `id`'s features.
    pub fn feature_id_of(&self, id: i64, entity: u64) -> Result<Option<String>, StoreError> {
        let r = self.conn.query_row(
            "SELECT feature_id FROM features WHERE run_id = ? AND entity = ? LIMIT 1",
            params![id, entity],
            |r| r.get::<_, String>(0),
        );
        match r {
            Err(duckdb::Error::QueryReturnedNoRows) => Ok(None),
            other => self.db(other).map(Some),
        }
    }

    /// Count of a run's events by kind.
    pub fn event_counts(&self, id: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let mut st = self.db(self.conn.prepare(
            "SELECT kind, count(*) FROM events WHERE run_id = ? GROUP BY kind ORDER BY kind",
        ))?;
        let rows = self.db(st.query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?))))?;
        rows.map(|r| self.db(r)).collect()
    }

    /// Run arbitrary read-only SQL returning one number (for reports and tests).
    pub fn query_f64(&self, sql: &str) -> Result<Option<f64>, StoreError> {
        self.db(self.conn.query_row(sql, [], |r| r.get::<_, Option<f64>>(0)))
    }

    /// Export every table's rows of a run into `dir` as `<table>.parquet` or `<table>.csv`.
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
            self.db(self.conn.execute_batch(&format!(
                "COPY (SELECT * FROM {t} WHERE run_id = {id} {order}) TO '{quoted}' ({opts})"
            )))?;
            out.push(file);
        }
        Ok(out)
    }
}
