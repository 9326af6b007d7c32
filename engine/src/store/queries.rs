//! Reads that serve a run to other programs (`citytwin serve`): one KPI series, the latest
//! values, features in a box, the latest snapshot. Each is one indexed-by-run SQL query; the
//! exact spatial tests (distance, intersection) are the caller's, on the rows returned.

use duckdb::params;

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

/// A KPI row from `tick, sim_time_s, name, scope, value, unit`.
pub(super) fn kpi_row(r: &duckdb::Row<'_>) -> duckdb::Result<KpiRow> {
    Ok(KpiRow {
        tick: r.get::<_, u64>(0)?,
        sim_time_s: r.get(1)?,
        name: r.get(2)?,
        scope: r.get(3)?,
        value: r.get(4)?,
        unit: r.get(5)?,
    })
}

impl RunStore {
    /// Another connection to the same open database, for another thread: DuckDB lets one
    /// process hold a file, and that process any number of connections, reading while one of
    /// them records.
    pub fn try_clone(&self) -> Result<RunStore, StoreError> {
        Ok(RunStore {
            conn: self.db(self.conn.try_clone())?,
            path: self.path.clone(),
        })
    }

    /// A run's KPI samples that pass `f`, in tick then name then scope order. Fails with
    /// [`StoreError::NoRun`] for an unknown run.
    pub fn kpis_where(&self, id: i64, f: &KpiFilter) -> Result<Vec<KpiRow>, StoreError> {
        self.run(id)?;
        let mut st = self.db(self.conn.prepare_cached(
            "SELECT tick, sim_time_s, name, scope, coalesce(value, 'NaN'::DOUBLE), unit FROM kpis
             WHERE run_id = ? AND (CAST(? AS VARCHAR) IS NULL OR name = ?)
               AND (CAST(? AS VARCHAR) IS NULL OR scope = ?)
               AND (CAST(? AS DOUBLE) IS NULL OR sim_time_s >= ?)
               AND (CAST(? AS DOUBLE) IS NULL OR sim_time_s <= ?)
               AND (CAST(? AS BIGINT) IS NULL OR tick > ?)
             ORDER BY tick, name, scope",
        ))?;
        let after = f.after_tick.map(|t| t as i64);
        let rows = self.db(st.query_map(
            params![
                id, f.name, f.name, f.scope, f.scope, f.from_s, f.from_s, f.to_s, f.to_s, after,
                after
            ],
            kpi_row,
        ))?;
        rows.map(|r| self.db(r)).collect()
    }

    /// The latest sample of every KPI (name and scope) of a run: the state a live run has
    /// reached. Empty before its first sample.
    pub fn latest_kpis(&self, id: i64) -> Result<Vec<KpiRow>, StoreError> {
        self.run(id)?;
        let mut st = self.db(self.conn.prepare_cached(
            "SELECT tick, sim_time_s, name, scope, coalesce(value, 'NaN'::DOUBLE), unit FROM kpis
             WHERE run_id = ? QUALIFY row_number() OVER (PARTITION BY name, scope ORDER BY tick DESC) = 1
             ORDER BY name, scope",
        ))?;
        let rows = self.db(st.query_map(params![id], kpi_row))?;
        rows.map(|r| self.db(r)).collect()
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
        let mut st = self.db(self.conn.prepare_cached(
            "SELECT entity, kind, layer, feature_id, wkb, min_x, min_y, max_x, max_y, h3 FROM features
             WHERE run_id = ? AND max_x >= ? AND min_x <= ? AND max_y >= ? AND min_y <= ?
               AND (CAST(? AS VARCHAR) IS NULL OR kind = ?)
             ORDER BY entity LIMIT ?",
        ))?;
        let rows = self.db(st.query_map(
            params![
                id,
                bbox_m[0],
                bbox_m[2],
                bbox_m[1],
                bbox_m[3],
                kind,
                kind,
                limit as i64
            ],
            |r| {
                Ok(FeatureRow {
                    entity: r.get::<_, u64>(0)?,
                    kind: r.get(1)?,
                    layer: r.get(2)?,
                    feature_id: r.get(3)?,
                    wkb: r.get(4)?,
                    bbox: [r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?],
                    h3: r.get::<_, Option<u64>>(9)?,
                })
            },
        ))?;
        rows.map(|r| self.db(r)).collect()
    }

    /// The entities of a run's latest snapshot (vehicles and other moving things), in entity
    /// order, with each one's feature kind where the model has it; empty before the first.
    pub fn latest_snapshot(
        &self,
        id: i64,
    ) -> Result<Vec<(SnapshotRow, Option<String>)>, StoreError> {
        self.run(id)?;
        let mut st = self.db(self.conn.prepare_cached(
            "SELECT s.tick, s.sim_time_s, s.entity, s.x_m, s.y_m, s.z_m, s.speed_mps, s.h3, f.kind
             FROM snapshots s LEFT JOIN features f ON f.run_id = s.run_id AND f.entity = s.entity
             WHERE s.run_id = ? AND s.tick = (SELECT max(tick) FROM snapshots WHERE run_id = ?)
             ORDER BY s.entity",
        ))?;
        let rows = self.db(st.query_map(params![id, id], |r| {
            Ok((
                SnapshotRow {
                    tick: r.get::<_, u64>(0)?,
                    sim_time_s: r.get(1)?,
                    entity: r.get::<_, u64>(2)?,
                    x_m: r.get(3)?,
                    y_m: r.get(4)?,
                    z_m: r.get(5)?,
                    speed_mps: r.get(6)?,
                    h3: r.get::<_, Option<u64>>(7)?,
                },
                r.get::<_, Option<String>>(8)?,
            ))
        }))?;
        rows.map(|r| self.db(r)).collect()
    }
}
