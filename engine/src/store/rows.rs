//! The rows a run store holds, as Rust values: what callers write and read.

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
    /// The scene frame the run's geometry is in, as a PROJ definition (see
    /// [`crate::geo_frame::GeoFrame::proj_definition`]), so tools outside citytwin can place it
    /// (empty: not known, a run stored before version 4).
    pub frame_proj: String,
}

impl RunMeta {
    /// What a run of `scene` with `seed`, stepping `step_s` for `duration_s`, is made from.
    pub fn of_scene(scene: &crate::scene::Scene, seed: u64, step_s: f64, duration_s: f64) -> Self {
        RunMeta {
            scene_name: scene.meta.name.clone(),
            scene_path: scene.path.display().to_string(),
            scene_toml: scene.source.clone(),
            seed,
            version: crate::VERSION.to_string(),
            sim_start: scene.start.to_string(),
            step_s,
            duration_s,
            frame_proj: crate::geo_frame::GeoFrame::new(*scene.meta.origin.get_ref())
                .proj_definition(),
        }
    }
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
