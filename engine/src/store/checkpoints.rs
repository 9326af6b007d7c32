//! Checkpoints and forks in the run store: the `checkpoints` table, and the `runs` columns
//! that link a fork to its parent.

use super::db::{DbError, vals};
use super::{RunMeta, RunStore, StoreError, columns};

/// The tables of a run's history, copied into a fork up to its fork tick.
const HISTORY_TABLES: [&str; 4] = ["kpis", "snapshots", "events", "fields"];

/// A stored checkpoint, without its image.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointRow {
    /// Ticks completed when it was taken.
    pub tick: u64,
    /// Simulated time, s.
    pub sim_time_s: f64,
    /// The state hash then (hex).
    pub state_hash: String,
    /// Size of the image, bytes.
    pub bytes: u64,
}

impl RunStore {
    /// Register a fork of run `parent` from tick `at_tick` as a new `running` run, and copy the
    /// parent's features, its history and its checkpoints before `at_tick` into it, in one
    /// transaction; returns its id. The fork then stores its own checkpoint at `at_tick`.
    pub fn begin_fork(&self, parent: i64, at_tick: u64, meta: &RunMeta) -> Result<i64, StoreError> {
        self.run(parent)?;
        let id = self.begin_run(meta)?;
        // Every row of the parent's `table`, or with `before` those before the fork tick.
        let copy = |table: &str, before: bool| {
            let cols = columns(table)[1..].join(", ");
            let sql = format!(
                "INSERT INTO {table} (run_id, {cols}) SELECT CAST($1 AS BIGINT), {cols} FROM {table} WHERE run_id = $2"
            );
            if before {
                self.db.execute(
                    &format!("{sql} AND tick < $3"),
                    vals![id, parent, at_tick as i64],
                )
            } else {
                self.db.execute(&sql, vals![id, parent])
            }
        };
        let r = self.db.transaction(|| -> Result<(), DbError> {
            self.db.execute(
                "UPDATE runs SET parent_run = $1, fork_tick = $2 WHERE run_id = $3",
                vals![parent, at_tick, id],
            )?;
            copy("features", false)?;
            for t in HISTORY_TABLES.iter().chain(&["checkpoints"]) {
                copy(t, true)?;
            }
            Ok(())
        });
        if let Err(e) = r {
            let _ = self
                .db
                .execute("DELETE FROM runs WHERE run_id = $1", vals![id]);
            return Err(StoreError::Db {
                path: self.path.clone(),
                source: e,
            });
        }
        Ok(id)
    }

    /// The run a fork was made from and the tick it was forked at (`None`: not a fork).
    pub fn parent(&self, id: i64) -> Result<Option<(i64, u64)>, StoreError> {
        let r = self.db.query_opt(
            "SELECT parent_run, fork_tick FROM runs WHERE run_id = $1",
            vals![id],
            |r| Ok((r.get::<Option<i64>>()?, r.get::<Option<u64>>()?)),
        );
        let (p, t) = self.of_run(id, r)?;
        Ok(p.zip(t))
    }

    /// Store a checkpoint of run `run` (committed at once, so it survives the process).
    pub fn append_checkpoint(
        &self,
        run: i64,
        tick: u64,
        sim_time_s: f64,
        state_hash: &str,
        image: &[u8],
    ) -> Result<(), StoreError> {
        self.db(self.db.execute(
            "INSERT INTO checkpoints (run_id, tick, sim_time_s, state_hash, image) VALUES ($1, $2, $3, $4, $5)",
            vals![run, tick, sim_time_s, state_hash, image],
        ))?;
        Ok(())
    }

    /// A run's checkpoints, in tick order.
    pub fn checkpoints(&self, id: i64) -> Result<Vec<CheckpointRow>, StoreError> {
        self.run(id)?;
        self.db(self.db.query(
            "SELECT tick, sim_time_s, state_hash, octet_length(image) FROM checkpoints WHERE run_id = $1 ORDER BY tick",
            vals![id],
            |r| {
                Ok(CheckpointRow {
                    tick: r.get()?,
                    sim_time_s: r.get()?,
                    state_hash: r.get()?,
                    bytes: r.get()?,
                })
            },
        ))
    }

    /// The last checkpoint of run `id` at or before `tick`, with its image (`None`: there is
    /// none, start from the beginning).
    pub fn checkpoint_before(
        &self,
        id: i64,
        tick: u64,
    ) -> Result<Option<(CheckpointRow, Vec<u8>)>, StoreError> {
        self.db(self.db.query_opt(
            "SELECT tick, sim_time_s, state_hash, image FROM checkpoints WHERE run_id = $1 AND tick <= $2 ORDER BY tick DESC LIMIT 1",
            vals![id, tick as i64],
            |r| {
                let (tick, sim_time_s, state_hash) = (r.get()?, r.get()?, r.get()?);
                let image: Vec<u8> = r.get()?;
                Ok((
                    CheckpointRow {
                        tick,
                        sim_time_s,
                        state_hash,
                        bytes: image.len() as u64,
                    },
                    image,
                ))
            },
        ))
    }
}
