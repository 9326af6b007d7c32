//! The run store: every run of a project, in an embedded DuckDB file or in a PostgreSQL
//! database that several planners and servers share.
//!
//! One `.duckdb` file per project folder (by default `runs/citytwin.duckdb` beside the scene file;
//! the sample scene keeps it at the repository root), or one `postgresql://` database, holds
//! many runs, so runs can be listed, compared and exported together. Tables:
//!
//! | table | one row per |
//! |---|---|
//! | `runs` | run: scene, seed, code version, wall start/end, status, ticks, final state hash |
//! | `features` | model entity at the start of a run: kind, layer/id, WKB geometry, bbox, H3 cell |
//! | `kpis` | KPI sample: tick, sim time, name, scope, value, unit |
//! | `snapshots` | snapshotted entity at a snapshot tick: position, speed, H3 cell |
//! | `events` | event: tick, kind, entity, place, message |
//! | `fields` | map value: tick, name, H3 cell, value, unit |
//! | `readings` | sensor reading taken in, good or bad |
//! | `checkpoints` | checkpoint: tick, sim time, state hash, the world's state (deflated image) |
//!
//! A fork (`citytwin fork`) is a run with `parent_run` and `fork_tick` set: its rows before
//! `fork_tick` are copies of the parent's, so every query on one run sees its whole history.
//!
//! No spatial extension is used: geometry is WKB with `min_x … max_y` columns (metres in the
//! scene frame) and H3 cell ids, so spatial filters are plain SQL on either database.
//! A run that ends without closing (process killed) is marked `failed` the next time the store
//! is opened: on DuckDB, since one process at a time writes a file; on PostgreSQL, once no
//! session holds the run's lock (see `db.rs`).

use std::path::{Path, PathBuf};

mod checkpoints;
mod db;
mod queries;
mod readings;
mod rows;
mod schema;
mod transfer;
pub use checkpoints::CheckpointRow;
pub use db::DbError;
use db::{Cols, Db, Val, vals};
pub use queries::KpiFilter;
pub use readings::{Channel, READING_STATUSES, ReadingRow, RecordedMessage};
pub use rows::{
    EventRow, ExportFormat, FeatureRow, FieldRow, KpiRow, RunMeta, RunStatus, RunSummary,
    SnapshotRow,
};
pub use schema::RUN_TABLES;
use schema::{MIGRATE_FROM_1, MIGRATE_FROM_2, MIGRATE_FROM_3, SCHEMA, columns, postgres_schema};

/// Schema version written in `meta`: older stores are migrated on opening; a newer one is refused,
/// not altered.
pub const SCHEMA_VERSION: i64 = 4;

/// A run-store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("run store {path}: {source}")]
    Db {
        /// The store file (or URL).
        path: PathBuf,
        /// The database's error.
        source: DbError,
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

/// An open run store.
pub struct RunStore {
    db: Db,
    path: PathBuf,
}

/// The folder that outputs made from a store's runs go in by default (reports, plots,
/// exports): the store file's own folder, or for a database URL the current folder.
pub fn folder_beside(store: &Path) -> PathBuf {
    if crate::import::postgis::is_database(&store.to_string_lossy()) {
        return PathBuf::from(".");
    }
    match store.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn now_utc() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%d %H:%M:%S+00")
        .to_string()
}

/// A wall-clock parameter as a timestamp: through text, which both databases read the same.
const AT_TIME: &str = "CAST(CAST($1 AS VARCHAR) AS TIMESTAMPTZ)";

impl RunStore {
    /// Open (creating if needed) the store at `path`: a DuckDB file, or with a
    /// `postgresql://HOST[:PORT]/DATABASE` URL a PostgreSQL database that several processes
    /// share (see [`crate::import::postgis`] for the URL; the password comes from
    /// `PGPASSWORD`). Runs left `running` by a process that died are marked `failed`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let text = path.to_string_lossy().into_owned();
        if crate::import::postgis::is_database(&text) {
            return Self::open_postgres(&text);
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
                path: path.clone(),
                message: format!("cannot create folder {}: {e}", dir.display()),
            })?;
        }
        let db = Db::duck(Some(&path)).map_err(|source| StoreError::Db {
            path: path.clone(),
            source,
        })?;
        Self::init(db, path)
    }

    fn open_postgres(url: &str) -> Result<Self, StoreError> {
        let path = PathBuf::from(url);
        let bad = |message: String| StoreError::Io {
            path: path.clone(),
            message,
        };
        let config = db::postgres_config(url).map_err(bad)?;
        let db = Db::postgres(config).map_err(|source| StoreError::Db {
            path: path.clone(),
            source,
        })?;
        Self::init(db, path)
    }

    /// An in-memory store (tests, dry runs).
    pub fn in_memory() -> Result<Self, StoreError> {
        let path = PathBuf::from(":memory:");
        let db = Db::duck(None).map_err(|source| StoreError::Db {
            path: path.clone(),
            source,
        })?;
        Self::init(db, path)
    }

    /// Whether the store is a PostgreSQL database.
    pub fn is_shared(&self) -> bool {
        self.db.is_postgres()
    }

    /// Whether this connection is gone for good (a PostgreSQL server restarted, or the network
    /// dropped the session): open the store again, or [`RunStore::try_clone`] another.
    pub fn is_closed(&self) -> bool {
        self.db.is_closed()
    }

    fn db<T>(&self, r: Result<T, DbError>) -> Result<T, StoreError> {
        r.map_err(|source| StoreError::Db {
            path: self.path.clone(),
            source,
        })
    }

    fn init(db: Db, path: PathBuf) -> Result<Self, StoreError> {
        let store = Self { db, path };
        let schema = if store.db.is_postgres() {
            // Two processes creating the tables at once would collide: one at a time.
            format!("SELECT pg_advisory_xact_lock(0);\n{}", postgres_schema())
        } else {
            SCHEMA.to_string()
        };
        let versioned = store.db.transaction(|| {
            store.db.batch(&schema)?;
            let v: Option<String> = store.db.query_opt(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                &[],
                |r| r.get(),
            )?;
            let Some(v) = v else {
                store.db.execute(
                    "INSERT INTO meta VALUES ('schema_version', $1)",
                    vals![SCHEMA_VERSION.to_string()],
                )?;
                return Ok(None);
            };
            let found = v.parse::<i64>().unwrap_or(-1);
            if found == 1 {
                store.db.batch(MIGRATE_FROM_1)?;
            }
            if found == 1 || found == 2 {
                store.db.batch(MIGRATE_FROM_2)?;
            }
            if (1..=3).contains(&found) {
                store.db.batch(MIGRATE_FROM_3)?;
            } else if found != SCHEMA_VERSION {
                return Ok(Some(found));
            }
            Ok(None)
        });
        if let Some(found) = store.db(versioned)? {
            return Err(StoreError::Version {
                path: store.path.clone(),
                found,
            });
        }
        let gone = store.db.writer_gone_sql();
        store.db(store.db.execute(
            &format!(
                "UPDATE runs SET status = 'failed', ended_at = coalesce(ended_at, {AT_TIME}),
                 error = coalesce(error, 'the process ended without closing the run (killed or crashed)')
                 WHERE status = 'running' AND {gone}"
            ),
            vals![now_utc()],
        ))?;
        store.db(store.db.release_probes())?;
        Ok(store)
    }

    /// Tune the connection for recording alongside a running simulation. DuckDB: one worker
    /// thread (the simulation needs the cores), and checkpoints deferred until the WAL reaches
    /// 256 MB instead of compressing columns mid-run. PostgreSQL: commits do not wait for the
    /// server's disk (a server crash may lose the last moments of a run, which is then marked
    /// failed; nothing committed before is touched).
    pub fn tune_for_recording(&self) -> Result<(), StoreError> {
        self.db(self.db.batch(if self.db.is_postgres() {
            "SET synchronous_commit = off;"
        } else {
            "SET threads = 1; SET wal_autocheckpoint = '256MB';"
        }))
    }

    /// The store's path (the URL, for PostgreSQL).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Insert a `runs` row under the next free id and, in the same transaction, do `then`
    /// with the id; returns the id. `columns` are the row's other columns and `exprs` their
    /// values (SQL over `$1…` from `params`). On PostgreSQL another process may take the same
    /// id at the same moment: then it all is tried again with the next.
    fn new_run(
        &self,
        columns: &[&str],
        exprs: &str,
        params: &[Val],
        mut then: impl FnMut(i64) -> Result<(), DbError>,
    ) -> Result<i64, DbError> {
        let sql = format!(
            "INSERT INTO runs (run_id, {}) VALUES ((SELECT coalesce(max(run_id), 0) + 1 FROM runs), {exprs}) RETURNING run_id",
            columns.join(", ")
        );
        let mut tries = 0;
        loop {
            let r = self.db.transaction(|| {
                let id = self
                    .db
                    .query_opt(&sql, params, |r| r.get::<i64>())?
                    .ok_or_else(|| DbError::Decode {
                        column: 0,
                        message: "INSERT … RETURNING gave no row".into(),
                    })?;
                then(id)?;
                Ok(id)
            });
            match r {
                Err(e) if e.is_unique_violation() && tries < 20 => tries += 1,
                other => return other,
            }
        }
    }

    /// Register a new run as `running` and return its id. On PostgreSQL this connection holds
    /// the run until [`RunStore::finish_run`] (or until it closes), so other processes see it
    /// as alive.
    pub fn begin_run(&self, meta: &RunMeta) -> Result<i64, StoreError> {
        let r = self.new_run(
            &[
                "started_at",
                "scene_name",
                "scene_path",
                "scene_toml",
                "seed",
                "version",
                "sim_start",
                "step_s",
                "duration_s",
                "frame_proj",
                "status",
            ],
            &format!("{AT_TIME}, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'running'"),
            vals![
                now_utc(),
                &meta.scene_name,
                &meta.scene_path,
                &meta.scene_toml,
                meta.seed,
                &meta.version,
                &meta.sim_start,
                meta.step_s,
                meta.duration_s,
                &meta.frame_proj
            ],
            // Held before the row is visible to others, so no one takes it for a dead run.
            |id| self.db.lock_run(id),
        );
        self.db(r)
    }

    /// Update a running run's progress (ticks done), so an interrupted run shows how far it got.
    pub fn progress(&self, id: i64, ticks: u64) -> Result<(), StoreError> {
        self.db(self.db.execute(
            "UPDATE runs SET ticks = $1 WHERE run_id = $2",
            vals![ticks as i64, id],
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
        let n = self.db(self.db.execute(
            &format!(
                "UPDATE runs SET ended_at = {AT_TIME}, status = $2, ticks = $3, state_hash = $4, error = $5 WHERE run_id = $6"
            ),
            vals![
                now_utc(),
                status.as_str(),
                ticks as i64,
                state_hash,
                error,
                id
            ],
        ))?;
        if n == 0 {
            return Err(StoreError::NoRun {
                path: self.path.clone(),
                id,
            });
        }
        self.db(self.db.unlock_run(id))
    }

    /// Append rows of `table` (each without its `run_id`, which is `run`).
    fn append(
        &self,
        table: &str,
        run: i64,
        rows: impl Iterator<Item = Vec<Val>>,
    ) -> Result<(), StoreError> {
        let rows: Vec<Vec<Val>> = rows
            .map(|mut r| {
                r.insert(0, Val::I64(run));
                r
            })
            .collect();
        self.db(self.db.append(table, columns(table), &rows))
    }

    /// Append feature rows.
    pub fn append_features(&self, run: i64, rows: &[FeatureRow]) -> Result<(), StoreError> {
        self.append(
            "features",
            run,
            rows.iter().map(|r| {
                vec![
                    r.entity.into(),
                    (&r.kind).into(),
                    (&r.layer).into(),
                    (&r.feature_id).into(),
                    (&r.wkb).into(),
                    r.bbox[0].into(),
                    r.bbox[1].into(),
                    r.bbox[2].into(),
                    r.bbox[3].into(),
                    r.h3.into(),
                ]
            }),
        )
    }

    /// Append KPI rows (a value that is not finite is stored as NULL, read back as NaN).
    pub fn append_kpis(&self, run: i64, rows: &[KpiRow]) -> Result<(), StoreError> {
        self.append(
            "kpis",
            run,
            rows.iter().map(|r| {
                vec![
                    r.tick.into(),
                    r.sim_time_s.into(),
                    (&r.name).into(),
                    (&r.scope).into(),
                    r.value.is_finite().then_some(r.value).into(),
                    (&r.unit).into(),
                ]
            }),
        )
    }

    /// Append snapshot rows. This is the table that grows with every moving entity at every
    /// snapshot, so on DuckDB it goes columnar through Arrow, the appender's bulk path.
    pub fn append_snapshots(&self, run: i64, rows: &[SnapshotRow]) -> Result<(), StoreError> {
        let Db::Duck(conn) = &self.db else {
            return self.append(
                "snapshots",
                run,
                rows.iter().map(|r| {
                    vec![
                        r.tick.into(),
                        r.sim_time_s.into(),
                        r.entity.into(),
                        r.x_m.into(),
                        r.y_m.into(),
                        r.z_m.into(),
                        r.speed_mps.into(),
                        r.h3.into(),
                    ]
                }),
            );
        };
        use duckdb::arrow::array::{ArrayRef, Float64Array, Int64Array, UInt64Array};
        use duckdb::arrow::record_batch::RecordBatch;
        use std::sync::Arc;
        if rows.is_empty() {
            return Ok(());
        }
        let f64s = |f: fn(&SnapshotRow) -> f64| -> ArrayRef {
            Arc::new(Float64Array::from_iter_values(rows.iter().map(f)))
        };
        let cols: Vec<(&str, ArrayRef)> = vec![
            ("run_id", Arc::new(Int64Array::from(vec![run; rows.len()]))),
            (
                "tick",
                Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.tick))),
            ),
            ("sim_time_s", f64s(|r| r.sim_time_s)),
            (
                "entity",
                Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.entity))),
            ),
            ("x_m", f64s(|r| r.x_m)),
            ("y_m", f64s(|r| r.y_m)),
            ("z_m", f64s(|r| r.z_m)),
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
        let r = (|| -> Result<(), DbError> {
            let mut app = conn.appender("snapshots")?;
            app.append_record_batch(batch)?;
            Ok(app.flush()?)
        })();
        self.db(r)
    }

    /// Append event rows.
    pub fn append_events(&self, run: i64, rows: &[EventRow]) -> Result<(), StoreError> {
        self.append(
            "events",
            run,
            rows.iter().map(|r| {
                vec![
                    r.tick.into(),
                    r.sim_time_s.into(),
                    (&r.kind).into(),
                    r.entity.into(),
                    r.xy_m.map(|p| p[0]).into(),
                    r.xy_m.map(|p| p[1]).into(),
                    r.h3.into(),
                    (&r.message).into(),
                ]
            }),
        )
    }

    /// Append field samples.
    pub fn append_fields(&self, run: i64, rows: &[FieldRow]) -> Result<(), StoreError> {
        self.append(
            "fields",
            run,
            rows.iter().map(|r| {
                vec![
                    r.tick.into(),
                    r.sim_time_s.into(),
                    (&r.name).into(),
                    r.h3.into(),
                    r.value.into(),
                    (&r.unit).into(),
                ]
            }),
        )
    }

    fn summary_sql(filter: &str) -> String {
        format!(
            "SELECT run_id, scene_name, seed, status, CAST(started_at AS VARCHAR), CAST(ended_at AS VARCHAR), ticks,
                    ticks * step_s, state_hash, error FROM runs {filter} ORDER BY run_id"
        )
    }

    fn map_summary(r: &mut Cols) -> Result<RunSummary, DbError> {
        Ok(RunSummary {
            id: r.get()?,
            scene_name: r.get()?,
            seed: r.get()?,
            status: r.get()?,
            started_at: r.get()?,
            ended_at: r.get()?,
            ticks: r.get()?,
            sim_time_s: r.get()?,
            state_hash: r.get()?,
            error: r.get()?,
        })
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Result<Vec<RunSummary>, StoreError> {
        self.db(self
            .db
            .query(&Self::summary_sql(""), &[], Self::map_summary))
    }

    /// One run.
    pub fn run(&self, id: i64) -> Result<RunSummary, StoreError> {
        let r = self.db.query_opt(
            &Self::summary_sql("WHERE run_id = $1"),
            vals![id],
            Self::map_summary,
        );
        self.of_run(id, r)
    }

    /// What a run was made from: its scene (path as given and text), seed and code version, so
    /// it can be made again.
    pub fn run_meta(&self, id: i64) -> Result<RunMeta, StoreError> {
        let r = self.db.query_opt(
            "SELECT scene_name, scene_path, scene_toml, seed, version, sim_start, step_s, duration_s, coalesce(frame_proj, '') FROM runs WHERE run_id = $1",
            vals![id],
            |r| {
                Ok(RunMeta {
                    scene_name: r.get()?,
                    scene_path: r.get()?,
                    scene_toml: r.get()?,
                    seed: r.get()?,
                    version: r.get()?,
                    sim_start: r.get()?,
                    step_s: r.get()?,
                    duration_s: r.get()?,
                    frame_proj: r.get()?,
                })
            },
        );
        self.of_run(id, r)
    }

    /// A query about run `id`: no row means no such run.
    fn of_run<T>(&self, id: i64, r: Result<Option<T>, DbError>) -> Result<T, StoreError> {
        self.db(r)?.ok_or_else(|| StoreError::NoRun {
            path: self.path.clone(),
            id,
        })
    }

    /// Row counts of a run's tables: features, kpis, snapshots, events.
    pub fn row_counts(&self, id: i64) -> Result<[(String, i64); 4], StoreError> {
        let mut out: [(String, i64); 4] = Default::default();
        for (slot, t) in out
            .iter_mut()
            .zip(["features", "kpis", "snapshots", "events"])
        {
            let n = self.db(self.db.query_opt(
                &format!("SELECT count(*) FROM {t} WHERE run_id = $1"),
                vals![id],
                |r| r.get::<i64>(),
            ))?;
            *slot = (t.to_string(), n.unwrap_or(0));
        }
        Ok(out)
    }

    /// Every KPI sample of a run, in tick then name then scope order.
    pub fn kpis(&self, id: i64) -> Result<Vec<KpiRow>, StoreError> {
        self.kpis_where(id, &KpiFilter::default())
    }

    /// Every sample of field `name` in a run, in tick then cell order.
    pub fn field(&self, id: i64, name: &str) -> Result<Vec<FieldRow>, StoreError> {
        self.db(self.db.query(
            "SELECT tick, sim_time_s, name, h3, value, unit FROM fields WHERE run_id = $1 AND name = $2 ORDER BY tick, h3",
            vals![id, name],
            |r| {
                Ok(FieldRow {
                    tick: r.get()?,
                    sim_time_s: r.get()?,
                    name: r.get()?,
                    h3: r.get()?,
                    value: r.get()?,
                    unit: r.get()?,
                })
            },
        ))
    }

    /// A run's events whose kind starts with `prefix` before `tick` that name an entity, in
    /// tick order: (tick, entity bits, kind).
    pub fn events_of(
        &self,
        id: i64,
        prefix: &str,
        tick: u64,
    ) -> Result<Vec<(u64, u64, String)>, StoreError> {
        self.db(self.db.query(
            &format!(
                "SELECT tick, entity, kind FROM events WHERE run_id = $1 AND starts_with(kind, $2) AND tick < $3 AND entity IS NOT NULL ORDER BY tick, kind, {}",
                self.db.unsigned_order("entity")
            ),
            vals![id, prefix, tick as i64],
            |r| Ok((r.get()?, r.get()?, r.get()?)),
        ))
    }

    /// The feature id (`layer/id`'s id) of the entity `entity` (bits) in run `id`'s features.
    pub fn feature_id_of(&self, id: i64, entity: u64) -> Result<Option<String>, StoreError> {
        self.db(self.db.query_opt(
            "SELECT feature_id FROM features WHERE run_id = $1 AND entity = $2 LIMIT 1",
            vals![id, entity],
            |r| r.get(),
        ))
    }

    /// Count of a run's events by kind.
    pub fn event_counts(&self, id: i64) -> Result<Vec<(String, i64)>, StoreError> {
        self.db(self.db.query(
            "SELECT kind, count(*) FROM events WHERE run_id = $1 GROUP BY kind ORDER BY kind",
            vals![id],
            |r| Ok((r.get()?, r.get()?)),
        ))
    }

    /// Run arbitrary read-only SQL returning one number in its first row and column (for
    /// reports and tests): written in the SQL both databases speak.
    pub fn query_f64(&self, sql: &str) -> Result<Option<f64>, StoreError> {
        let r = self.db.query_opt(
            &format!("SELECT CAST(q.x AS FLOAT8) FROM ({sql}) AS q(x) LIMIT 1"),
            &[],
            |r| r.get::<Option<f64>>(),
        );
        Ok(self.db(r)?.flatten())
    }
}
