//! Reads that serve a run to other programs (`citytwin serve`): one KPI series, the latest
//! values, features in a box, the latest snapshot. Each is one indexed-by-run SQL query; the
//! exact spatial tests (distance, intersection) are the caller's, on the rows returned.

use super::db::{Cols, DbError, vals};
use super::{FeatureRow, KpiRow, RunStore, SnapshotRow, StoreError};

/// Which KPI samples of a run to read.
#[derive(Clone, Debug, Default)]
pub struct KpiFilter {
    /// Only this KPI name (e.g. `traffic.mean_speed_mps`).
    pub name: Option<String>,
    /// Only this scope (`city`, or a feature id).
    pub scope: Option<String>,
    /// From this simulated time on, s (inclusive).
    pub from_s: Option<f64>,
    /// Up to this simulated time, s (inclusive).
    pub to_s: Option<f64>,
    /// Only samples after this tick (what a follower has not seen yet).
    pub after_tick: Option<u64>,
}

/// The KPI columns read back: `tick, sim_time_s, name, scope, value, unit`, a NULL value
/// (one that was not finite) as NaN.
pub(super) const KPI_COLUMNS: &str =
    "tick, sim_time_s, name, scope, coalesce(value, CAST('NaN' AS FLOAT8)), unit";

/// A KPI row from [`KPI_COLUMNS`].
pub(super) fn kpi_row(r: &mut Cols) -> Result<KpiRow, DbError> {
    Ok(KpiRow {
        tick: r.get()?,
        sim_time_s: r.get()?,
        name: r.get()?,
        scope: r.get()?,
        value: r.get()?,
        unit: r.get()?,
    })
}

impl RunStore {
    /// Another connection to the same open database, for another thread. DuckDB lets one
    /// process hold a file, and that process any number of connections, reading while one of
    /// them records; PostgreSQL takes connections from anywhere.
    pub fn try_clone(&self) -> Result<RunStore, StoreError> {
        Ok(RunStore {
            db: self.db(self.db.try_clone())?,
            path: self.path.clone(),
        })
    }

    /// A run's KPI samples that pass `f`, in tick then name then scope order. Fails with
    /// [`StoreError::NoRun`] for an unknown run.
    pub fn kpis_where(&self, id: i64, f: &KpiFilter) -> Result<Vec<KpiRow>, StoreError> {
        self.run(id)?;
        let after = f.after_tick.map(|t| t as i64);
        self.db(self.db.query(
            &format!(
                "SELECT {KPI_COLUMNS} FROM kpis
                 WHERE run_id = $1 AND (CAST($2 AS VARCHAR) IS NULL OR name = $2)
                   AND (CAST($3 AS VARCHAR) IS NULL OR scope = $3)
                   AND (CAST($4 AS FLOAT8) IS NULL OR sim_time_s >= $4)
                   AND (CAST($5 AS FLOAT8) IS NULL OR sim_time_s <= $5)
                   AND (CAST($6 AS BIGINT) IS NULL OR tick > $6)
                 ORDER BY tick, name, scope"
            ),
            vals![
                id,
                f.name.as_deref(),
                f.scope.as_deref(),
                f.from_s,
                f.to_s,
                after
            ],
            kpi_row,
        ))
    }

    /// The latest sample of every KPI (name and scope) of a run: the state a live run has
    /// reached. Empty before its first sample.
    pub fn latest_kpis(&self, id: i64) -> Result<Vec<KpiRow>, StoreError> {
        self.run(id)?;
        self.db(self.db.query(
            &format!(
                "SELECT DISTINCT ON (name, scope) {KPI_COLUMNS} FROM kpis
                 WHERE run_id = $1 ORDER BY name, scope, tick DESC"
            ),
            vals![id],
            kpi_row,
        ))
    }

    /// A run's features whose bounding box meets `bbox_m` (`[min_x, min_y, max_x, max_y]`,
    /// metres in the run's scene frame), optionally of one kind, in entity order; at most
    /// `limit` of them.
    pub fn features_in(
        &self,
        id: i64,
        bbox_m: [f64; 4],
        kind: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FeatureRow>, StoreError> {
        self.run(id)?;
        self.db(self.db.query(
            &format!(
                "SELECT entity, kind, layer, feature_id, wkb, min_x, min_y, max_x, max_y, h3 FROM features
                 WHERE run_id = $1 AND max_x >= $2 AND min_x <= $3 AND max_y >= $4 AND min_y <= $5
                   AND (CAST($6 AS VARCHAR) IS NULL OR kind = $6)
                 ORDER BY {} LIMIT $7",
                self.db.unsigned_order("entity")
            ),
            vals![
                id,
                bbox_m[0],
                bbox_m[2],
                bbox_m[1],
                bbox_m[3],
                kind,
                limit as i64
            ],
            |r| {
                Ok(FeatureRow {
                    entity: r.get()?,
                    kind: r.get()?,
                    layer: r.get()?,
                    feature_id: r.get()?,
                    wkb: r.get()?,
                    bbox: [r.get()?, r.get()?, r.get()?, r.get()?],
                    h3: r.get()?,
                })
            },
        ))
    }

    /// The entities of a run's latest snapshot (vehicles and other moving things), in entity
    /// order, with each one's feature kind where the model has it; empty before the first.
    pub fn latest_snapshot(
        &self,
        id: i64,
    ) -> Result<Vec<(SnapshotRow, Option<String>)>, StoreError> {
        self.run(id)?;
        self.db(self.db.query(
            &format!(
                "SELECT s.tick, s.sim_time_s, s.entity, s.x_m, s.y_m, s.z_m, s.speed_mps, s.h3, f.kind
                 FROM snapshots s LEFT JOIN features f ON f.run_id = s.run_id AND f.entity = s.entity
                 WHERE s.run_id = $1 AND s.tick = (SELECT max(tick) FROM snapshots WHERE run_id = $1)
                 ORDER BY {}",
                self.db.unsigned_order("s.entity")
            ),
            vals![id],
            |r| {
                Ok((
                    SnapshotRow {
                        tick: r.get()?,
                        sim_time_s: r.get()?,
                        entity: r.get()?,
                        x_m: r.get()?,
                        y_m: r.get()?,
                        z_m: r.get()?,
                        speed_mps: r.get()?,
                        h3: r.get()?,
                    },
                    r.get()?,
                ))
            },
        ))
    }
}
