//! Checkpoints and forks in the run store: the `checkpoints` table, and the `runs` columns
//! that link a fork to its parent.

use duckdb::params;

use super::{RunMeta, RunStore, StoreError};

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
        let mut sql = format!(
            "BEGIN TRANSACTION;
             UPDATE runs SET parent_run = {parent}, fork_tick = {at_tick} WHERE run_id = {id};
             INSERT INTO features SELECT {id}, * EXCLUDE (run_id) FROM features WHERE run_id = {parent};
             INSERT INTO checkpoints SELECT {id}, * EXCLUDE (run_id) FROM checkpoints WHERE run_id = {parent} AND tick < {at_tick};\n"
        );
        for t in HISTORY_TABLES {
            sql += &format!(
                "INSERT INTO {t} SELECT {id}, * EXCLUDE (run_id) FROM {t} WHERE run_id = {parent} AND tick < {at_tick};\n"
            );
        }
        sql += "COMMIT;";
        if let Err(e) = self.conn.execute_batch(&sql) {
            let _ = self.conn.execute_batch("ROLLBACK");
            let _ = self
                .conn
                .execute("DELETE FROM runs WHERE run_id = ?", params![id]);
            return Err(StoreError::Db {
                path: self.path.clone(),
                source: e,
            });
        }
        Ok(id)
    }

    /// The run a fork was made from and the tick it was forked at (`None`: not a fork).
    pub fn parent(&self, id: i64) -> Result<Option<(i64, u64)>, StoreError> {
        let r = self.conn.query_row(
            "SELECT parent_run, fork_tick FROM runs WHERE run_id = ?",
            params![id],
            |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<u64>>(1)?)),
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
        self.db(self.conn.execute(
            "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?)",
            params![run, tick, sim_time_s, state_hash, image],
        ))?;
        Ok(())
    }

    /// A run's checkpoints, in tick order.
    pub fn checkpoints(&self, id: i64) -> Result<Vec<CheckpointRow>, StoreError> {
        self.run(id)?;
        let mut st = self.db(self.conn.prepare(
            "SELECT tick, sim_time_s, state_hash, octet_length(image) FROM checkpoints WHERE run_id = ? ORDER BY tick",
        ))?;
        let rows = self.db(st.query_map(params![id], |r| {
            Ok(CheckpointRow {
                tick: r.get::<_, u64>(0)?,
                sim_time_s: r.get(1)?,
                state_hash: r.get(2)?,
                bytes: r.get::<_, u64>(3)?,
            })
        }))?;
        rows.map(|r| self.db(r)).collect()
    }

    /// The last checkpoint of run `id` at or before `tick`, with its image (`None`: there is
    /// none, start from the beginning).
    pub fn checkpoint_before(
        &self,
        id: i64,
        tick: u64,
    ) -> Result<Option<(CheckpointRow, Vec<u8>)>, StoreError> {
        let r = self.conn.query_row(
            "SELECT tick, sim_time_s, state_hash, image FROM checkpoints WHERE run_id = ? AND tick <= ? ORDER BY tick DESC LIMIT 1",
            params![id, tick],
            |r| {
                let image: Vec<u8> = r.get(3)?;
                Ok((
                    CheckpointRow {
                        tick: r.get::<_, u64>(0)?,
                        sim_time_s: r.get(1)?,
                        state_hash: r.get(2)?,
                        bytes: image.len() as u64,
                    },
                    image,
                ))
            },
        );
        match r {
            Err(duckdb::Error::QueryReturnedNoRows) => Ok(None),
            other => self.db(other).map(Some),
        }
    }
}
