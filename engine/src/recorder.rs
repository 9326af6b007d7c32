//! Recording a run into the [`crate::store::RunStore`], off the simulation's hot path.
//!
//! Systems in [`crate::schedule::SimSet::Record`] copy this tick's KPIs, snapshots and events into
//! row batches and hand them to a writer thread over a bounded channel; the writer owns the DuckDB
//! connection and appends the batches with DuckDB's appender. The simulation thread only copies
//! rows; if the writer falls far behind, the channel's bound makes the simulation wait rather than
//! grow memory without limit.
//!
//! What gets recorded:
//! - **KPIs**: every value in [`Kpis`], every `output.kpi_interval_s`.
//! - **Snapshots**: every entity with a [`Vehicle`] or a [`Snapshot`] marker, every
//!   `output.snapshot_interval_s` (0 turns snapshots off).
//! - **Events**: everything pushed to [`EventLog`], the tick it happens.
//! - **Fields**: maps pushed to [`FieldLog`] (a value per H3 cell), the tick they are pushed.
//! - **Features**: the whole model once, when the run starts.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bevy::math::DVec2;
use bevy::prelude::*;
use geo::BoundingRect;

use crate::clock::SimClock;
use crate::index::SpatialIndex;
use crate::model::{FeatureId, Kind, Position, Shape, Vehicle};
use crate::store::{
    EventRow, FeatureRow, FieldRow, KpiRow, ReadingRow, RunStatus, RunStore, SnapshotRow,
    StoreError,
};
use crate::wkb::to_wkb;

/// Recording intervals, from the scene's `[output]`.
#[derive(Resource, Clone, Copy, Debug)]
pub struct RecordConfig {
    /// Seconds between entity snapshots (0: none).
    pub snapshot_interval_s: f64,
    /// Seconds between KPI samples.
    pub kpi_interval_s: f64,
    /// Seconds between checkpoints of the world state (0: none).
    pub checkpoint_interval_s: f64,
}

impl Default for RecordConfig {
    fn default() -> Self {
        Self {
            snapshot_interval_s: 60.0,
            kpi_interval_s: 60.0,
            checkpoint_interval_s: 300.0,
        }
    }
}

/// Current KPI values; simulations set them in [`crate::schedule::SimSet::Metrics`] and the
/// recorder samples them at the KPI interval. A value stays until it is set again.
#[derive(serde::Serialize, serde::Deserialize, Resource, Default, Debug)]
pub struct Kpis {
    values: BTreeMap<(String, String), Kpi>,
}

/// A KPI's value and SI unit.
#[derive(Clone, Copy, Debug)]
struct Kpi(f64, &'static str);

impl serde::Serialize for Kpi {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.0, self.1).serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Kpi {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (v, u) = <(f64, String)>::deserialize(d)?;
        Ok(Kpi(v, crate::checkpoint::static_str::intern(&u)))
    }
}

impl Kpis {
    /// Set KPI `name` for `scope` (`"city"`, or a feature id) to `value` in SI `unit`.
    pub fn set(&mut self, name: &str, scope: &str, value: f64, unit: &'static str) {
        self.values
            .insert((name.to_string(), scope.to_string()), Kpi(value, unit));
    }

    /// The current value of a KPI.
    pub fn get(&self, name: &str, scope: &str) -> Option<f64> {
        self.values
            .get(&(name.to_string(), scope.to_string()))
            .map(|v| v.0)
    }

    /// All current values as owned rows (name, scope, value, unit), in name then scope order.
    pub fn to_rows(&self) -> Vec<(String, String, f64, String)> {
        self.iter()
            .map(|(n, s, v, u)| (n.to_string(), s.to_string(), v, u.to_string()))
            .collect()
    }

    /// All current values, in name then scope order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, f64, &'static str)> {
        self.values
            .iter()
            .map(|((n, s), Kpi(v, u))| (n.as_str(), s.as_str(), *v, *u))
    }
}

/// Something that happened, for the events table.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct SimEvent {
    /// Kind, dotted (e.g. `flood.road_closed`).
    pub kind: String,
    /// Entity concerned.
    pub entity: Option<Entity>,
    /// Place, m.
    pub xy_m: Option<DVec2>,
    /// Text for people.
    pub message: String,
}

/// Events raised this tick; the recorder drains it every tick and keeps the drained tick's
/// events readable for one more step, so a plugin can react to what happened (in
/// `SimSet::Scenario`, the tick after).
#[derive(serde::Serialize, serde::Deserialize, Resource, Default, Debug)]
pub struct EventLog {
    pending: Vec<SimEvent>,
    last_tick: Vec<SimEvent>,
}

impl EventLog {
    /// Mend the entity ids of the kept events after a checkpoint restore.
    pub(crate) fn remap(world: &mut World, remap: &crate::checkpoint::EntityRemap) {
        let mut log = world.resource_mut::<EventLog>();
        let log = &mut *log;
        for ev in log.pending.iter_mut().chain(log.last_tick.iter_mut()) {
            ev.entity = ev.entity.map(|e| remap.get(e));
        }
    }

    /// Record an event at the current tick.
    pub fn push(&mut self, event: SimEvent) {
        self.pending.push(event);
    }

    /// Events raised this tick so far.
    pub fn pending(&self) -> &[SimEvent] {
        &self.pending
    }

    /// Every event of the previous tick, in the order the store keeps them (kind, entity,
    /// message).
    pub fn last_tick(&self) -> &[SimEvent] {
        &self.last_tick
    }
}

/// A map of one quantity over H3 cells, for the fields table.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldSample {
    /// Field name, dotted (e.g. `pollution.NO2`).
    pub name: String,
    /// SI unit of the values.
    pub unit: &'static str,
    /// (H3 cell, value) pairs; cells not listed are not recorded (e.g. zero or dry).
    pub cells: Vec<(u64, f64)>,
}

impl serde::Serialize for FieldSample {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&self.name, self.unit, &self.cells).serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for FieldSample {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (name, unit, cells) = <(String, String, Vec<(u64, f64)>)>::deserialize(d)?;
        Ok(Self {
            name,
            unit: crate::checkpoint::static_str::intern(&unit),
            cells,
        })
    }
}

/// Field samples raised this tick; the recorder drains it every tick. Simulations decide how
/// often they push (their own map interval). The latest map of each name stays readable, so
/// plugins and couplings can act on it (an exposure zone, flooded cells).
#[derive(serde::Serialize, serde::Deserialize, Resource, Default, Debug)]
pub struct FieldLog {
    pending: Vec<FieldSample>,
    latest: BTreeMap<String, (u64, FieldSample)>,
}

impl FieldLog {
    /// Record a map at the current tick.
    pub fn push(&mut self, sample: FieldSample) {
        let version = self.latest.get(&sample.name).map_or(1, |(v, _)| v + 1);
        self.latest
            .insert(sample.name.clone(), (version, sample.clone()));
        self.pending.push(sample);
    }

    /// The latest map named `name` and its version (1 for the first map, then 2, …; a reader
    /// that keeps the version it saw knows when a new map has come).
    pub fn latest(&self, name: &str) -> Option<(u64, &FieldSample)> {
        self.latest.get(name).map(|(v, s)| (*v, s))
    }

    /// The version of the latest map of every name.
    pub fn versions(&self) -> BTreeMap<String, u64> {
        self.latest
            .iter()
            .map(|(k, (v, _))| (k.clone(), *v))
            .collect()
    }

    /// The latest map of every name.
    pub fn latest_all(&self) -> BTreeMap<String, FieldSample> {
        self.latest
            .iter()
            .map(|(k, (_, s))| (k.clone(), s.clone()))
            .collect()
    }

    /// Maps pushed this tick so far.
    pub fn pending(&self) -> &[FieldSample] {
        &self.pending
    }
}

/// A grid of one value over the scene (water depth…), as a simulation publishes it for views.
#[derive(Clone, Debug, PartialEq)]
pub struct Raster {
    /// South-west corner of the grid in the frame, m.
    pub origin_m: bevy::math::DVec2,
    /// Cell size, m.
    pub cell_m: f64,
    /// Columns.
    pub nx: usize,
    /// Rows.
    pub ny: usize,
    /// Values, row-major from the south-west.
    pub values: Vec<f32>,
    /// SI unit of the values.
    pub unit: &'static str,
    /// When it was taken, s after the scene start.
    pub t_s: f64,
}

/// Rasters for views. Copying a grid costs, so simulations publish theirs only in a step after
/// a view asked ([`Rasters::request`]); runs without a view never pay for them. Not part of the
/// state: what is published cannot change the run.
#[derive(Resource, Default, Debug)]
pub struct Rasters {
    requested: bool,
    layers: BTreeMap<String, Raster>,
}

impl Rasters {
    /// Ask the simulations to publish their rasters at the end of the next step.
    pub fn request(&mut self) {
        self.requested = true;
    }

    /// Whether a view asked for rasters this step.
    pub fn is_requested(&self) -> bool {
        self.requested
    }

    /// Publish (replace) the raster `name`.
    pub fn publish(&mut self, name: &str, raster: Raster) {
        self.layers.insert(name.to_string(), raster);
    }

    /// The latest raster named `name`.
    pub fn get(&self, name: &str) -> Option<&Raster> {
        self.layers.get(name)
    }

    /// The request is served once a step has run.
    pub(crate) fn served(&mut self) {
        self.requested = false;
    }
}

/// Clear a served raster request (in `Advance`).
pub(crate) fn serve_rasters(mut rasters: ResMut<Rasters>) {
    if rasters.requested {
        rasters.served();
    }
}

/// Marks an entity to include in snapshots (vehicles always are).
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Copy, Debug, Default)]
pub struct Snapshot;

enum Msg {
    Features(Vec<FeatureRow>),
    Kpis(Vec<KpiRow>),
    Snapshots(Vec<SnapshotRow>),
    Events(Vec<EventRow>),
    Fields(Vec<FieldRow>),
    Readings(Vec<ReadingRow>),
    Progress(u64),
    Checkpoint {
        tick: u64,
        sim_time_s: f64,
        state_hash: String,
        image: Vec<u8>,
    },
}

/// Batches in flight before the simulation waits for the writer.
const CHANNEL_BOUND: usize = 64;

/// The simulation's end of the recording: a resource that hands row batches to the writer.
#[derive(Resource)]
pub struct Recorder {
    tx: SyncSender<Msg>,
    error: Arc<Mutex<Option<String>>>,
    rows: u64,
}

/// The other end: owns the writer thread, and closes the run once the simulation is gone.
pub struct RecordingHandle {
    run_id: i64,
    writer: JoinHandle<RunStore>,
    error: Arc<Mutex<Option<String>>>,
}

/// Start recording into run `run_id` of `store`: a writer thread takes the store; the returned
/// [`Recorder`] goes into the world, the [`RecordingHandle`] stays with the caller.
pub fn start_recording(
    store: RunStore,
    run_id: i64,
) -> Result<(Recorder, RecordingHandle), StoreError> {
    store.tune_for_recording()?;
    let (tx, rx) = sync_channel::<Msg>(CHANNEL_BOUND);
    let error = Arc::new(Mutex::new(None));
    let err = error.clone();
    let path = store.path().to_path_buf();
    let writer = std::thread::Builder::new()
        .name("citytwin-recorder".into())
        .spawn(move || writer_loop(store, run_id, rx, err))
        .map_err(|e| StoreError::Io {
            path,
            message: format!("cannot start the recorder thread: {e}"),
        })?;
    Ok((
        Recorder {
            tx,
            error: error.clone(),
            rows: 0,
        },
        RecordingHandle {
            run_id,
            writer,
            error,
        },
    ))
}

fn first_error(e: &Mutex<Option<String>>) -> Option<String> {
    e.lock().ok().and_then(|e| e.clone())
}

impl Recorder {
    /// Rows handed to the writer so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The writer's first error, if it has failed (the run should stop).
    pub fn failure(&self) -> Option<String> {
        first_error(&self.error)
    }

    fn send(&mut self, msg: Msg, rows: usize) {
        self.rows += rows as u64;
        // A closed channel means the writer died; its error is reported by `failure`.
        let _ = self.tx.send(msg);
    }

    /// Store a checkpoint (see [`crate::checkpoint`]) with the state hash of the same moment.
    pub fn record_checkpoint(
        &mut self,
        tick: u64,
        sim_time_s: f64,
        state_hash: String,
        image: Vec<u8>,
    ) {
        self.send(
            Msg::Checkpoint {
                tick,
                sim_time_s,
                state_hash,
                image,
            },
            1,
        );
    }

    /// Record the readings the feeds took in (see [`crate::feeds`]).
    pub fn record_readings(&mut self, rows: Vec<ReadingRow>) {
        let n = rows.len();
        self.send(Msg::Readings(rows), n);
    }

    /// Record the model's features (once, at the start of a run).
    pub fn record_features(&mut self, world: &mut World) {
        let rows = feature_rows(world);
        let n = rows.len();
        self.send(Msg::Features(rows), n);
    }
}

impl RecordingHandle {
    /// The run being recorded.
    pub fn run_id(&self) -> i64 {
        self.run_id
    }

    /// The writer's first error, if it has failed.
    pub fn failure(&self) -> Option<String> {
        first_error(&self.error)
    }

    /// Wait until every batch is written, then close the run with `status`. The [`Recorder`] must
    /// have been dropped (remove it from the world, or drop the world) or this waits forever.
    pub fn finish(
        self,
        status: RunStatus,
        ticks: u64,
        state_hash: Option<&str>,
        error: Option<&str>,
    ) -> Result<RunStore, StoreError> {
        let store = self.writer.join().map_err(|_| StoreError::Io {
            path: "recorder".into(),
            message: "the recorder thread panicked".into(),
        })?;
        let (status, error) = match (first_error(&self.error), error) {
            (Some(w), None) => (
                RunStatus::Failed,
                Some(format!("writing the store failed: {w}")),
            ),
            (Some(w), Some(e)) => (
                status,
                Some(format!("{e}; writing the store also failed: {w}")),
            ),
            (None, e) => (status, e.map(str::to_string)),
        };
        store.finish_run(self.run_id, status, ticks, state_hash, error.as_deref())?;
        Ok(store)
    }
}

/// Messages merged into one write at most; a writer that falls behind writes bigger groups, so
/// each DuckDB commit carries more rows and the writer catches up.
const MAX_GROUP: usize = 256;

fn writer_loop(
    store: RunStore,
    run: i64,
    rx: Receiver<Msg>,
    error: Arc<Mutex<Option<String>>>,
) -> RunStore {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(m) => group.push(m),
                Err(_) => break,
            }
        }
        if error.lock().map(|e| e.is_some()).unwrap_or(true) {
            continue; // keep draining so the simulation never blocks on a dead writer
        }
        let (mut features, mut kpis, mut snapshots, mut events, mut fields, mut progress) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            None,
        );
        let mut readings = Vec::new();
        let mut checkpoints = Vec::new();
        for m in group {
            match m {
                Msg::Features(r) => features.extend(r),
                Msg::Kpis(r) => kpis.extend(r),
                Msg::Snapshots(r) => snapshots.extend(r),
                Msg::Events(r) => events.extend(r),
                Msg::Fields(r) => fields.extend(r),
                Msg::Readings(r) => readings.extend(r),
                Msg::Progress(t) => progress = Some(t),
                Msg::Checkpoint {
                    tick,
                    sim_time_s,
                    state_hash,
                    image,
                } => checkpoints.push((tick, sim_time_s, state_hash, image)),
            }
        }
        let r = (|| {
            if !features.is_empty() {
                store.append_features(run, &features)?;
            }
            if !kpis.is_empty() {
                store.append_kpis(run, &kpis)?;
            }
            if !readings.is_empty() {
                store.append_readings(run, &readings)?;
            }
            if !snapshots.is_empty() {
                store.append_snapshots(run, &snapshots)?;
            }
            if !events.is_empty() {
                store.append_events(run, &events)?;
            }
            if !fields.is_empty() {
                store.append_fields(run, &fields)?;
            }
            // After the rows of the same ticks, so a run killed after a checkpoint has the
            // history up to it.
            for (tick, t_s, hash, image) in &checkpoints {
                store.append_checkpoint(run, *tick, *t_s, hash, image)?;
            }
            if let Some(t) = progress {
                store.progress(run, t)?;
            }
            Ok::<(), StoreError>(())
        })();
        if let Err(e) = r
            && let Ok(mut slot) = error.lock()
        {
            *slot = Some(e.to_string());
        }
    }
    store
}

pub(crate) fn feature_rows(world: &mut World) -> Vec<FeatureRow> {
    let mut q = world.query::<(
        Entity,
        &Kind,
        Option<&FeatureId>,
        Option<&Position>,
        Option<&Shape>,
    )>();
    let index = world.get_resource::<SpatialIndex>();
    let mut rows: Vec<FeatureRow> = Vec::new();
    for (e, kind, fid, pos, shape) in q.iter(world) {
        let geom: geo::Geometry<f64> = match (shape, pos) {
            (Some(s), _) => (*s.0).clone(),
            (None, Some(p)) => geo::Point::new(p.xy_m.x, p.xy_m.y).into(),
            (None, None) => continue,
        };
        let Some(r) = geom.bounding_rect() else {
            continue;
        };
        rows.push(FeatureRow {
            entity: e.to_bits(),
            kind: kind.0.as_str().to_string(),
            layer: fid.map(|f| f.layer.clone()).unwrap_or_default(),
            feature_id: fid.map(|f| f.id.clone()).unwrap_or_default(),
            wkb: to_wkb(&geom),
            bbox: [r.min().x, r.min().y, r.max().x, r.max().y],
            h3: index.and_then(|i| i.cell_of(e)).map(u64::from),
        });
    }
    rows.sort_by_key(|r| r.entity);
    rows
}

/// Run condition: a KPI sample is due this tick.
pub fn kpi_due(clock: Res<SimClock>, cfg: Res<RecordConfig>) -> bool {
    clock.is_every(cfg.kpi_interval_s)
}

/// Whether a checkpoint is due between steps, once `clock.tick()` ticks are done.
pub fn checkpoint_due(clock: &SimClock, cfg: &RecordConfig) -> bool {
    cfg.checkpoint_interval_s > 0.0 && clock.tick() > 0 && clock.is_every(cfg.checkpoint_interval_s)
}

/// Run condition: a snapshot is due this tick.
pub fn snapshot_due(clock: Res<SimClock>, cfg: Res<RecordConfig>) -> bool {
    cfg.snapshot_interval_s > 0.0 && clock.is_every(cfg.snapshot_interval_s)
}

pub(crate) fn record_kpis(
    clock: Res<SimClock>,
    kpis: Res<Kpis>,
    recorder: Option<ResMut<Recorder>>,
) {
    let Some(mut rec) = recorder else { return };
    let (tick, t) = (clock.tick(), clock.elapsed_s());
    let rows: Vec<KpiRow> = kpis
        .iter()
        .map(|(name, scope, value, unit)| KpiRow {
            tick,
            sim_time_s: t,
            name: name.to_string(),
            scope: scope.to_string(),
            value,
            unit: unit.to_string(),
        })
        .collect();
    let n = rows.len();
    if n > 0 {
        rec.send(Msg::Kpis(rows), n);
    }
    rec.send(Msg::Progress(tick), 0);
}

pub(crate) fn record_snapshots(
    clock: Res<SimClock>,
    index: Res<SpatialIndex>,
    q: Query<(Entity, &Position, Option<&Vehicle>), Or<(With<Vehicle>, With<Snapshot>)>>,
    recorder: Option<ResMut<Recorder>>,
) {
    let Some(mut rec) = recorder else { return };
    let (tick, t) = (clock.tick(), clock.elapsed_s());
    let mut rows: Vec<SnapshotRow> = q
        .iter()
        .map(|(e, p, v)| SnapshotRow {
            tick,
            sim_time_s: t,
            entity: e.to_bits(),
            x_m: p.xy_m.x,
            y_m: p.xy_m.y,
            z_m: p.z_m,
            speed_mps: v.map(|v| v.speed_mps),
            h3: index.cell_of(e).map(u64::from),
        })
        .collect();
    rows.sort_unstable_by_key(|r| r.entity);
    let n = rows.len();
    if n > 0 {
        rec.send(Msg::Snapshots(rows), n);
    }
}

pub(crate) fn record_events(
    clock: Res<SimClock>,
    index: Res<SpatialIndex>,
    mut log: ResMut<EventLog>,
    recorder: Option<ResMut<Recorder>>,
) {
    let mut events = std::mem::take(&mut log.pending);
    // Systems may push in either order within a set; the stored order must not depend on it.
    events.sort_by(|a, b| (&a.kind, a.entity, &a.message).cmp(&(&b.kind, b.entity, &b.message)));
    log.last_tick.clone_from(&events);
    if events.is_empty() {
        return;
    }
    let Some(mut rec) = recorder else { return };
    let (tick, t) = (clock.tick(), clock.elapsed_s());
    let rows: Vec<EventRow> = events
        .into_iter()
        .map(|ev| EventRow {
            tick,
            sim_time_s: t,
            kind: ev.kind,
            entity: ev.entity.map(Entity::to_bits),
            xy_m: ev.xy_m.map(|p| [p.x, p.y]),
            h3: ev.xy_m.and_then(|p| index.cell_at(p)).map(u64::from),
            message: ev.message,
        })
        .collect();
    let n = rows.len();
    rec.send(Msg::Events(rows), n);
}

pub(crate) fn record_fields(
    clock: Res<SimClock>,
    mut log: ResMut<FieldLog>,
    recorder: Option<ResMut<Recorder>>,
) {
    if log.pending.is_empty() {
        return;
    }
    let mut maps = std::mem::take(&mut log.pending);
    let Some(mut rec) = recorder else { return };
    // Same rule as events: the stored order must not depend on which system pushed first.
    maps.sort_by(|a, b| a.name.cmp(&b.name));
    let (tick, t) = (clock.tick(), clock.elapsed_s());
    let mut rows = Vec::new();
    for m in maps {
        let mut cells = m.cells;
        cells.sort_unstable_by_key(|c| c.0);
        rows.extend(cells.into_iter().map(|(h3, value)| FieldRow {
            tick,
            sim_time_s: t,
            name: m.name.clone(),
            h3,
            value,
            unit: m.unit.to_string(),
        }));
    }
    let n = rows.len();
    if n > 0 {
        rec.send(Msg::Fields(rows), n);
    }
}
