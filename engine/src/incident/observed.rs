//! An incident's records stored as an **observed run**: a run of the store (status `observed`)
//! that holds what happened instead of what a model computed, on the same model and clock as
//! the scene, so a team plays back the two side by side (`citytwin plot`, SQL, `compare`):
//!
//! - GPS fixes, matched to the roads, as `snapshots` (the matched position; speed from the
//!   previous fix; the entity column is 2⁶³ + the track's number, as observed vehicles are not
//!   model entities) and per-track `events` (`incident.gps_track`: fixes, share on a road);
//! - the incident log as `events` `incident.<type>` with place and text;
//! - sensor readings as `kpis` `observed.<quantity>` for each station, in SI.
//!
//! Rows outside the scene's span are counted and reported, not stored.

use std::path::Path;

use bevy::math::DVec2;

use super::mapmatch::{MatchParams, RoadNetwork};
use super::{IncidentError, LogEntry, Reading, Track, read_log, read_readings, read_tracks};
use crate::geo_frame::GeoFrame;
use crate::index::SpatialIndex;
use crate::modules::ModuleRegistry;
use crate::scene::Scene;
use crate::sim::{Sim, SimError, SimOptions};
use crate::store::{EventRow, KpiRow, RunMeta, RunStatus, RunStore, SnapshotRow, StoreError};

/// Why an incident could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ObservedError {
    /// A file.
    #[error(transparent)]
    File(#[from] IncidentError),
    /// The scene.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Nothing to import.
    #[error("{0}")]
    Nothing(String),
}

/// What an import stored.
#[derive(Clone, Debug, Default)]
pub struct ObservedReport {
    /// The observed run's id.
    pub run_id: i64,
    /// GPS tracks and fixes read.
    pub tracks: usize,
    /// Fixes read.
    pub fixes: usize,
    /// Fixes matched to a road.
    pub matched: usize,
    /// Incident log entries stored.
    pub log_entries: usize,
    /// Readings stored.
    pub readings: usize,
    /// Rows outside the scene's span (before its start or after its end), not stored.
    pub outside: usize,
}

/// Convert a reading to SI: its value and unit.
pub fn reading_to_si(value: f64, unit: &str) -> Result<(f64, &'static str), String> {
    let u = unit.trim();
    Ok(match u {
        "m" => (value, "m"),
        "cm" => (value * 0.01, "m"),
        "mm" => (value * 0.001, "m"),
        "m/s" => (value, "m/s"),
        "mm/h" => (value / 3.6e6, "m/s"),
        "km/h" => (value / 3.6, "m/s"),
        "m3/s" | "m³/s" => (value, "m3/s"),
        "L/s" | "l/s" => (value * 1e-3, "m3/s"),
        "kg/m3" | "kg/m³" => (value, "kg/m3"),
        "mg/m3" | "mg/m³" => (value * 1e-6, "kg/m3"),
        "ug/m3" | "µg/m3" | "μg/m3" | "ug/m³" | "µg/m³" | "μg/m³" => (value * 1e-9, "kg/m3"),
        "veh/h" => (value / 3600.0, "1/s"),
        "1" | "" => (value, "1"),
        _ => {
            return Err(format!(
                "unknown unit '{u}' (known: m, cm, mm, m/s, mm/h, km/h, m3/s, L/s, kg/m3, mg/m3, ug/m3, veh/h, 1)"
            ));
        }
    })
}

/// The files of an incident and how to match its GPS fixes.
pub struct IncidentFiles<'a> {
    /// GPS fixes.
    pub gps: Option<&'a Path>,
    /// The log.
    pub log: Option<&'a Path>,
    /// Sensor readings.
    pub readings: Option<&'a Path>,
    /// The road layer to match to.
    pub gps_layer: &'a str,
    /// Matching.
    pub params: MatchParams,
}

/// Read an incident's files and store them in `store_path` as an observed run of `scene`.
pub fn import_observed(
    scene: &Scene,
    registry: &ModuleRegistry,
    store_path: &Path,
    files: &IncidentFiles<'_>,
) -> Result<ObservedReport, ObservedError> {
    if files.gps.is_none() && files.log.is_none() && files.readings.is_none() {
        return Err(ObservedError::Nothing(
            "no incident files: give GPS tracks, a log or readings (or an [incident] table in the scene)".into(),
        ));
    }
    let mut sim = Sim::build(scene, registry, SimOptions::default())?;
    let frame = sim.world().resource::<GeoFrame>().clone();
    let start = sim.clock().start().clone();
    let step_s = sim.clock().step_s();
    let duration_s = sim.clock().duration_s();
    // Read everything before touching the store: a bad file stores nothing.
    let tracks: Vec<Track> = match files.gps {
        Some(p) => read_tracks(p, &frame, &start)?,
        None => Vec::new(),
    };
    let log: Vec<LogEntry> = match files.log {
        Some(p) => read_log(p, &frame, &start)?,
        None => Vec::new(),
    };
    let readings: Vec<(Reading, f64, &'static str)> = match files.readings {
        Some(p) => read_readings(p, &start)?
            .into_iter()
            .map(|r| {
                let (v, u) = reading_to_si(r.value, &r.unit).map_err(|m| IncidentError {
                    path: p.to_path_buf(),
                    line: 0,
                    message: format!("station {} at {} s: {m}", r.station, r.t_s),
                })?;
                Ok((r, v, u))
            })
            .collect::<Result<_, IncidentError>>()?,
        None => Vec::new(),
    };
    let roads = RoadNetwork::from_world(sim.world_mut(), files.gps_layer);
    if !tracks.is_empty() && roads.is_empty() {
        return Err(ObservedError::Nothing(format!(
            "no roads in layer '{}' to match the GPS fixes to (incident.gps_layer)",
            files.gps_layer
        )));
    }
    let in_span = |t: f64| t >= 0.0 && t <= duration_s + 1e-9;
    let tick_of = |t: f64| (t / step_s).round() as u64;
    let mut report = ObservedReport::default();
    let index = sim.world().resource::<SpatialIndex>();
    let cell = |p: DVec2| index.cell_at(p).map(u64::from);

    let mut snapshots = Vec::new();
    let mut events = Vec::new();
    for (k, t) in tracks.iter().enumerate() {
        report.tracks += 1;
        let m = roads.match_track(&t.fixes, &files.params);
        let mut prev: Option<(f64, DVec2)> = None;
        let mut on = 0usize;
        for ((t_s, raw), m) in t.fixes.iter().zip(&m) {
            report.fixes += 1;
            if !in_span(*t_s) {
                report.outside += 1;
                continue;
            }
            let xy = m.as_ref().map_or(*raw, |m| m.on_road_m);
            if m.is_some() {
                on += 1;
            }
            let speed = prev
                .filter(|(t0, _)| t_s > t0)
                .map(|(t0, p0)| p0.distance(xy) / (t_s - t0));
            prev = Some((*t_s, xy));
            snapshots.push(SnapshotRow {
                tick: tick_of(*t_s),
                sim_time_s: *t_s,
                entity: (1u64 << 63) + k as u64,
                x_m: xy.x,
                y_m: xy.y,
                z_m: 0.0,
                speed_mps: speed,
                h3: cell(xy),
            });
        }
        report.matched += on;
        if let Some((t0, p0)) = t.fixes.first().filter(|f| in_span(f.0)) {
            events.push(EventRow {
                tick: tick_of(*t0),
                sim_time_s: *t0,
                kind: "incident.gps_track".into(),
                entity: Some((1u64 << 63) + k as u64),
                xy_m: Some([p0.x, p0.y]),
                h3: cell(*p0),
                message: format!(
                    "vehicle {}: {} fixes, {on} on a road of '{}'",
                    t.id,
                    t.fixes.len(),
                    files.gps_layer
                ),
            });
        }
    }
    for e in &log {
        if !in_span(e.t_s) {
            report.outside += 1;
            continue;
        }
        report.log_entries += 1;
        events.push(EventRow {
            tick: tick_of(e.t_s),
            sim_time_s: e.t_s,
            kind: format!("incident.{}", e.kind),
            entity: None,
            xy_m: e.xy_m.map(|p| [p.x, p.y]),
            h3: e.xy_m.and_then(cell),
            message: e.text.clone(),
        });
    }
    let mut kpis = Vec::new();
    for (r, v, u) in &readings {
        if !in_span(r.t_s) {
            report.outside += 1;
            continue;
        }
        report.readings += 1;
        kpis.push(KpiRow {
            tick: tick_of(r.t_s),
            sim_time_s: r.t_s,
            name: format!("observed.{}", r.quantity),
            scope: r.station.clone(),
            value: *v,
            unit: u.to_string(),
        });
    }
    events.sort_by(|a, b| a.tick.cmp(&b.tick).then(a.kind.cmp(&b.kind)));
    snapshots.sort_by_key(|s| (s.tick, s.entity));
    kpis.sort_by(|a, b| (a.tick, &a.name, &a.scope).cmp(&(b.tick, &b.name, &b.scope)));
    let last_tick = snapshots
        .iter()
        .map(|s| s.tick)
        .chain(events.iter().map(|e| e.tick))
        .chain(kpis.iter().map(|k| k.tick))
        .max()
        .unwrap_or(0);

    let store = RunStore::open(store_path)?;
    let meta = RunMeta::of_scene(scene, sim.seed, step_s, duration_s);
    let id = store.begin_run(&meta)?;
    let features = crate::recorder::feature_rows(sim.world_mut());
    let stored = (|| {
        store.append_features(id, &features)?;
        store.append_snapshots(id, &snapshots)?;
        store.append_events(id, &events)?;
        store.append_kpis(id, &kpis)?;
        Ok::<(), StoreError>(())
    })();
    match stored {
        Ok(()) => store.finish_run(id, RunStatus::Observed, last_tick, None, None)?,
        Err(e) => {
            store.finish_run(
                id,
                RunStatus::Failed,
                0,
                None,
                Some(&format!("importing the incident failed: {e}")),
            )?;
            return Err(e.into());
        }
    }
    report.run_id = id;
    Ok(report)
}
