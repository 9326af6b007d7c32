//! Scene files: what a run loads, simulates and writes, in TOML.
//!
//! ```toml
//! [scene]
//! name = "Sample district"
//! seed = 42
//! origin = { lon = 117.2272, lat = 31.8206 }
//!
//! [clock]
//! start = "2026-07-15T07:30:00+08:00[Asia/Shanghai]"
//! step_s = 1.0
//! duration_s = 3600.0
//!
//! [index]
//! h3_resolution = 10
//!
//! [[layer]]
//! name = "buildings"
//! kind = "buildings"
//! file = "../data/sample/buildings.gpkg"
//! fields = { height_m = "height", occupants = "people" }
//!
//! [dem]
//! file = "../data/sample/dem.tif"
//!
//! [simulations.traffic]      # parameters go to the traffic simulation
//! car_following = "idm"
//!
//! [[scenario]]
//! plugin = "road_closure"
//! params = { road = "roads/12", from_s = 600, to_s = 1800 }
//!
//! [output]
//! store = "../runs/citytwin.duckdb"
//! snapshot_interval_s = 60.0
//! kpi_interval_s = 60.0
//! checkpoint_interval_s = 300.0
//! ```
//!
//! Paths are relative to the scene file. Unknown keys, wrong types, missing files and invalid
//! values are [`SceneError`]s that name the file, the line and column, and the key.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::geo_frame::LonLat;
use crate::import::fields::{FieldSpec, LayerKind};

/// A scene that failed to load, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    /// The scene file could not be read.
    #[error("{path}: cannot read scene file: {source}")]
    Io {
        /// The scene file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A problem at a place in the file.
    #[error("{path}:{line}:{column}: {message}")]
    At {
        /// The scene file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, naming the key.
        message: String,
    },
}

impl SceneError {
    /// The line and column the error points at, if any.
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            SceneError::At { line, column, .. } => Some((*line, *column)),
            SceneError::Io { .. } => None,
        }
    }
}

/// The `[scene]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SceneMeta {
    /// Human name of the scene.
    pub name: String,
    /// Free text for planners.
    #[serde(default)]
    pub description: String,
    /// Seed of every random stream.
    pub seed: u64,
    /// The frame origin, WGS84 degrees.
    pub origin: Spanned<LonLat>,
}

/// The `[clock]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSpec {
    /// Start, RFC 9557 (`2026-07-15T07:30:00+08:00[Asia/Shanghai]`) or RFC 3339 with an offset.
    pub start: Spanned<String>,
    /// Fixed step, s.
    pub step_s: Spanned<f64>,
    /// Duration of the run, s.
    pub duration_s: Spanned<f64>,
}

/// The `[index]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSpec {
    /// H3 resolution of the cell index (0–15; 10 ≈ 66 m edge).
    #[serde(default = "default_h3")]
    pub h3_resolution: Spanned<u8>,
}

fn default_h3() -> Spanned<u8> {
    Spanned::new(0..0, 10)
}

impl Default for IndexSpec {
    fn default() -> Self {
        Self {
            h3_resolution: default_h3(),
        }
    }
}

/// One `[[layer]]`: a vector dataset read through GDAL into entities of one kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// Unique name; becomes the `layer` of each entity's [`crate::model::FeatureId`].
    pub name: Spanned<String>,
    /// What its features become.
    pub kind: Spanned<LayerKind>,
    /// The dataset (GeoJSON, GeoPackage, Shapefile, anything GDAL reads), relative to the
    /// scene; or a PostGIS database, `postgresql://[USER@]HOST[:PORT]/DATABASE`, with `layer`
    /// naming its table (see [`crate::import::postgis`]).
    pub file: Spanned<PathBuf>,
    /// Layer name inside a multi-layer dataset; the first layer by default.
    pub layer: Option<Spanned<String>>,
    /// CRS override (`EPSG:4547`), for files whose CRS is missing or wrong.
    pub crs: Option<Spanned<String>>,
    /// Attribute mapping: model attribute → source field (see [`LayerKind::attributes`]).
    #[serde(default)]
    pub fields: BTreeMap<String, Spanned<FieldSpec>>,
}

/// The `[incident]` table: what a real incident left behind, for `citytwin incident` to read
/// and store as an observed run beside the simulated ones (see [`crate::incident`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentSpec {
    /// Vehicles' GPS fixes (CSV `id,time,lon,lat`, or GeoJSON points).
    pub gps: Option<Spanned<PathBuf>>,
    /// The incident log (CSV `time,type,text[,lon,lat]`).
    pub log: Option<Spanned<PathBuf>>,
    /// Sensor readings (CSV `time,station,quantity,value,unit`).
    pub readings: Option<Spanned<PathBuf>>,
    /// The road layer GPS fixes are matched to (default `traffic`).
    #[serde(default = "traffic_layer")]
    pub gps_layer: String,
    /// The receivers' position error, m (default 5).
    #[serde(default = "five_m")]
    pub gps_sigma_m: f64,
}

/// One `[[feed]]`: a sensor feed on the simulation clock (see [`crate::feeds`]): a file of
/// readings, or a live MQTT subscription. Exactly one of `file` and `mqtt` is given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedSpec {
    /// The readings, relative to the scene: CSV (`time,station,quantity,value,unit`) or
    /// Parquet (`.parquet`, the same columns).
    #[serde(default)]
    pub file: Option<Spanned<PathBuf>>,
    /// A live feed: `mqtt://HOST[:PORT]/TOPIC-FILTER` (port 1883 by default; the filter may
    /// use `+` and `#`). Each message is one reading, as a CSV row or a JSON object.
    #[serde(default)]
    pub mqtt: Option<Spanned<String>>,
    /// A live reading whose time is more than this behind the simulation clock when it
    /// arrives is `late` (s).
    #[serde(default = "five_minutes")]
    pub max_delay_s: Spanned<f64>,
}

fn traffic_layer() -> String {
    "traffic".into()
}

fn five_m() -> f64 {
    5.0
}

/// The `[dem]` table: a raster of ground elevation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemSpec {
    /// The raster (GeoTIFF or anything GDAL reads), relative to the scene.
    pub file: Spanned<PathBuf>,
    /// CRS override.
    pub crs: Option<Spanned<String>>,
    /// Band, 1-based.
    #[serde(default = "one")]
    pub band: usize,
    /// Grid spacing of the DEM in the scene frame, m; the source resolution by default.
    pub cell_m: Option<Spanned<f64>>,
}

fn empty_params() -> Spanned<toml::Table> {
    Spanned::new(0..0, toml::Table::new())
}

fn one() -> usize {
    1
}

/// One `[[scenario]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Registered plugin name.
    pub plugin: Spanned<String>,
    /// Parameters, checked by the plugin.
    #[serde(default = "empty_params")]
    pub params: Spanned<toml::Table>,
}

/// The `[output]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// The run store: a DuckDB file relative to the scene (default `runs/citytwin.duckdb`
    /// beside it), or a `postgresql://HOST[:PORT]/DATABASE` URL for one that several planners
    /// share; one store holds many runs.
    #[serde(default = "default_store")]
    pub store: Spanned<PathBuf>,
    /// Interval between entity snapshots, s (0 disables snapshots).
    #[serde(default = "sixty")]
    pub snapshot_interval_s: Spanned<f64>,
    /// Interval between KPI samples, s.
    #[serde(default = "sixty")]
    pub kpi_interval_s: Spanned<f64>,
    /// Interval between checkpoints of the whole world state, s (0: none). A replay or a fork
    /// starts from the checkpoint at or before the moment asked for.
    #[serde(default = "five_minutes")]
    pub checkpoint_interval_s: Spanned<f64>,
}

fn default_store() -> Spanned<PathBuf> {
    Spanned::new(0..0, PathBuf::from("runs/citytwin.duckdb"))
}

fn sixty() -> Spanned<f64> {
    Spanned::new(0..0, 60.0)
}

fn five_minutes() -> Spanned<f64> {
    Spanned::new(0..0, 300.0)
}

impl Default for OutputSpec {
    fn default() -> Self {
        Self {
            store: default_store(),
            snapshot_interval_s: sixty(),
            kpi_interval_s: sixty(),
            checkpoint_interval_s: five_minutes(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SceneToml {
    scene: SceneMeta,
    clock: ClockSpec,
    #[serde(default)]
    index: IndexSpec,
    #[serde(default, rename = "layer")]
    layers: Vec<LayerSpec>,
    dem: Option<DemSpec>,
    incident: Option<IncidentSpec>,
    #[serde(default, rename = "feed")]
    feeds: Vec<FeedSpec>,
    #[serde(default)]
    simulations: BTreeMap<String, Spanned<toml::Table>>,
    #[serde(default, rename = "scenario")]
    scenarios: Vec<ScenarioSpec>,
    #[serde(default)]
    output: OutputSpec,
}

/// A loaded, validated scene.
#[derive(Debug, Clone)]
pub struct Scene {
    /// The scene file.
    pub path: PathBuf,
    /// Its text, kept so later errors can point into it and runs can store it.
    pub source: String,
    /// `[scene]`.
    pub meta: SceneMeta,
    /// `[clock]`.
    pub clock: ClockSpec,
    /// The parsed start.
    pub start: jiff::ZonedDateTime,
    /// `[index]`.
    pub index: IndexSpec,
    /// `[[layer]]`s.
    pub layers: Vec<LayerSpec>,
    /// `[dem]`.
    pub dem: Option<DemSpec>,
    /// `[incident]`.
    pub incident: Option<IncidentSpec>,
    /// `[[feed]]`s: sensor feeds replayed on the clock.
    pub feeds: Vec<FeedSpec>,
    /// `[simulations.*]`, by name.
    pub simulations: BTreeMap<String, Spanned<toml::Table>>,
    /// `[[scenario]]`s in order.
    pub scenarios: Vec<ScenarioSpec>,
    /// `[output]`.
    pub output: OutputSpec,
}

/// 1-based line and column of a byte offset.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The dotted key written on the line holding `offset` (`clock.step_s`), when the line is a
/// `key = value` line; toml's own messages say what is wrong but not always where in the schema.
fn key_at(source: &str, offset: usize) -> Option<String> {
    let offset = offset.min(source.len());
    let start = source[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = source[offset..]
        .find('\n')
        .map_or(source.len(), |i| offset + i);
    let line = &source[start..end];
    let key = line.split_once('=')?.0.trim();
    if key.is_empty() || key.starts_with('[') || key.starts_with('#') {
        return None;
    }
    let table = source[..start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_string(),
    })
}

fn error_at(path: &Path, source: &str, span: Range<usize>, key: &str, message: &str) -> SceneError {
    let (line, column) = line_col(source, span.start);
    SceneError::At {
        path: path.to_path_buf(),
        line,
        column,
        message: format!("`{key}`: {message}"),
    }
}

impl Scene {
    /// Load and validate a scene file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, SceneError> {
        let path = path.as_ref().to_path_buf();
        let source = std::fs::read_to_string(&path).map_err(|source| SceneError::Io {
            path: path.clone(),
            source,
        })?;
        Self::from_str(&path, source)
    }

    /// Parse and validate scene text as if read from `path` (paths resolve against its folder).
    pub fn from_str(path: &Path, source: String) -> Result<Self, SceneError> {
        let raw: SceneToml = toml::from_str(&source).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            let (line, column) = line_col(&source, offset);
            let message = e.message().trim().to_string();
            SceneError::At {
                path: path.to_path_buf(),
                line,
                column,
                message: match key_at(&source, offset) {
                    Some(key) => format!("`{key}`: {message}"),
                    None => message,
                },
            }
        })?;
        let start = parse_start(raw.clock.start.get_ref())
            .map_err(|m| error_at(path, &source, raw.clock.start.span(), "clock.start", &m))?;
        let scene = Scene {
            path: path.to_path_buf(),
            source,
            meta: raw.scene,
            start,
            clock: raw.clock,
            index: raw.index,
            layers: raw.layers,
            dem: raw.dem,
            incident: raw.incident,
            feeds: raw.feeds,
            simulations: raw.simulations,
            scenarios: raw.scenarios,
            output: raw.output,
        };
        scene.validate()?;
        Ok(scene)
    }

    /// An error pointing at `span` of this scene's file, naming `key`.
    pub fn error_at(&self, span: Range<usize>, key: &str, message: &str) -> SceneError {
        error_at(&self.path, &self.source, span, key, message)
    }

    /// The folder relative paths resolve against.
    pub fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// A path from the scene, resolved against its folder, with `a/../` folded away so messages
    /// show `runs/x.duckdb` rather than `scenes/../runs/x.duckdb`.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        resolve_path(&self.dir(), p)
    }

    /// What GDAL opens for a layer's `file`: the file resolved against the scene's folder, or
    /// for a `postgresql://` URL the database's `PG:` name (see [`crate::import::postgis`]).
    pub fn dataset(&self, file: &Path) -> PathBuf {
        let text = file.to_string_lossy();
        if crate::import::postgis::is_database(&text) {
            // Checked when the scene was loaded.
            crate::import::postgis::gdal_name(&text)
                .map_or_else(|_| file.to_path_buf(), PathBuf::from)
        } else {
            self.resolve(file)
        }
    }

    /// The run store: a DuckDB file resolved against the scene's folder, or a
    /// `postgresql://` URL as written (see [`crate::store::RunStore::open`]).
    pub fn store_path(&self) -> PathBuf {
        let store = self.output.store.get_ref();
        if crate::import::postgis::is_database(&store.to_string_lossy()) {
            store.clone()
        } else {
            self.resolve(store)
        }
    }
}

/// Scene text with `[[scenario]]` tables (`add`, TOML) appended after a comment line that says
/// where they came from (`note`), and the 1-based line the added tables start on, so an error in
/// them can be told apart from one in the scene. Used for what-if variants of a stored scene.
pub fn append_scenarios(text: &str, add: &str, note: &str) -> (String, usize) {
    let mut out = text.to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("\n# {}\n", note.replace('\n', " ")));
    let first_line = out.lines().count() + 1;
    out.push_str(add);
    out.push('\n');
    (out, first_line)
}

/// Where the scene being built lives, for modules that read files named in their parameters:
/// they resolve them with [`SceneFiles::resolve`], as the engine resolves layer files.
#[derive(bevy::prelude::Resource, Clone, Debug)]
pub struct SceneFiles {
    /// The scene file.
    pub scene: PathBuf,
}

impl SceneFiles {
    /// A path from the scene, resolved against the scene's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        let dir = self
            .scene
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        resolve_path(&dir, p)
    }
}

/// `p` resolved against `dir`, with `a/../` folded away so messages show `runs/x.duckdb` rather
/// than `scenes/../runs/x.duckdb`.
fn resolve_path(dir: &Path, p: &Path) -> PathBuf {
    use std::path::Component;
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

impl Scene {
    fn validate(&self) -> Result<(), SceneError> {
        let origin = self.meta.origin.get_ref();
        if !origin.is_valid() {
            return Err(self.error_at(
                self.meta.origin.span(),
                "scene.origin",
                &format!(
                    "({}, {}) is not a WGS84 longitude/latitude",
                    origin.lon, origin.lat
                ),
            ));
        }
        let step = *self.clock.step_s.get_ref();
        if !(step.is_finite() && step > 0.0 && step >= 1e-6) {
            return Err(self.error_at(
                self.clock.step_s.span(),
                "clock.step_s",
                &format!("must be a positive number of seconds, got {step}"),
            ));
        }
        let dur = *self.clock.duration_s.get_ref();
        if !(dur.is_finite() && dur >= step) {
            return Err(self.error_at(
                self.clock.duration_s.span(),
                "clock.duration_s",
                &format!("must be at least one step ({step} s), got {dur}"),
            ));
        }
        if dur / step > 1e12 {
            return Err(self.error_at(
                self.clock.duration_s.span(),
                "clock.duration_s",
                "is more than 10¹² steps",
            ));
        }
        let res = *self.index.h3_resolution.get_ref();
        if res > 15 {
            return Err(self.error_at(
                self.index.h3_resolution.span(),
                "index.h3_resolution",
                &format!("H3 resolutions are 0 to 15, got {res}"),
            ));
        }
        let store = self.output.store.get_ref().to_string_lossy();
        if crate::import::postgis::is_database(&store) {
            crate::import::postgis::conninfo(&store)
                .map_err(|m| self.error_at(self.output.store.span(), "output.store", &m))?;
        }
        let mut names = BTreeSet::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let key = format!("layer[{i}]");
            let name = layer.name.get_ref();
            if name.is_empty() || name.contains('/') {
                return Err(self.error_at(
                    layer.name.span(),
                    &format!("{key}.name"),
                    "must be non-empty and contain no '/'",
                ));
            }
            if !names.insert(name.clone()) {
                return Err(self.error_at(
                    layer.name.span(),
                    &format!("{key}.name"),
                    &format!("layer name '{name}' is used twice"),
                ));
            }
            let file = layer.file.get_ref().to_string_lossy();
            if crate::import::postgis::is_database(&file) {
                crate::import::postgis::gdal_name(&file)
                    .map_err(|m| self.error_at(layer.file.span(), &format!("{key}.file"), &m))?;
                if layer.layer.is_none() {
                    return Err(self.error_at(
                        layer.file.span(),
                        &format!("{key}.layer"),
                        "a database layer needs `layer = \"TABLE\"` (or \"SCHEMA.TABLE\")",
                    ));
                }
            } else {
                self.check_file(&layer.file, &format!("{key}.file"))?;
            }
            if let Some(crs) = &layer.crs {
                crate::crs::parse_crs(crs.get_ref()).map_err(|e| {
                    self.error_at(crs.span(), &format!("{key}.crs"), &e.to_string())
                })?;
            }
            let kind = *layer.kind.get_ref();
            for (attr, spec) in &layer.fields {
                if !kind.attributes().iter().any(|a| a.name == attr) {
                    let known: Vec<&str> = kind.attributes().iter().map(|a| a.name).collect();
                    return Err(self.error_at(
                        spec.span(),
                        &format!("{key}.fields.{attr}"),
                        &format!(
                            "'{attr}' is not an attribute of {} layers (known: {})",
                            kind.as_str(),
                            known.join(", ")
                        ),
                    ));
                }
                if let Err(m) = spec.get_ref().check(kind, attr) {
                    return Err(self.error_at(spec.span(), &format!("{key}.fields.{attr}"), &m));
                }
            }
        }
        if let Some(inc) = &self.incident {
            for (key, f) in [
                ("incident.gps", &inc.gps),
                ("incident.log", &inc.log),
                ("incident.readings", &inc.readings),
            ] {
                if let Some(f) = f {
                    self.check_file(f, key)?;
                }
            }
        }
        for (i, f) in self.feeds.iter().enumerate() {
            let key = format!("feed[{i}]");
            match (&f.file, &f.mqtt) {
                (Some(file), None) => self.check_file(file, &format!("{key}.file"))?,
                (None, Some(url)) => {
                    crate::feeds::MqttUrl::parse(url.get_ref())
                        .map_err(|m| self.error_at(url.span(), &format!("{key}.mqtt"), &m))?;
                }
                (Some(file), Some(_)) => {
                    return Err(self.error_at(
                        file.span(),
                        &key,
                        "give either `file` or `mqtt`, not both (one feed is one source)",
                    ));
                }
                (None, None) => {
                    // The i-th `[[feed]]` header, for its line.
                    let at = self
                        .source
                        .match_indices("[[feed]]")
                        .nth(i)
                        .map_or(0, |(at, _)| at);
                    return Err(self.error_at(
                        at..at,
                        &key,
                        "a feed needs `file = \"readings.csv\"` or `mqtt = \"mqtt://host/topic/#\"`",
                    ));
                }
            }
            let d = *f.max_delay_s.get_ref();
            if !(d.is_finite() && d >= 0.0) {
                return Err(self.error_at(
                    f.max_delay_s.span(),
                    &format!("{key}.max_delay_s"),
                    "must be zero or more seconds",
                ));
            }
        }
        if let Some(dem) = &self.dem {
            self.check_file(&dem.file, "dem.file")?;
            if let Some(crs) = &dem.crs {
                crate::crs::parse_crs(crs.get_ref())
                    .map_err(|e| self.error_at(crs.span(), "dem.crs", &e.to_string()))?;
            }
            if let Some(c) = &dem.cell_m
                && !(c.get_ref().is_finite() && *c.get_ref() > 0.0)
            {
                return Err(self.error_at(
                    c.span(),
                    "dem.cell_m",
                    "must be a positive number of metres",
                ));
            }
        }
        for (key, v) in [
            (
                "output.snapshot_interval_s",
                &self.output.snapshot_interval_s,
            ),
            ("output.kpi_interval_s", &self.output.kpi_interval_s),
            (
                "output.checkpoint_interval_s",
                &self.output.checkpoint_interval_s,
            ),
        ] {
            let x = *v.get_ref();
            if !(x.is_finite() && x >= 0.0) {
                return Err(self.error_at(
                    v.span(),
                    key,
                    &format!("must be zero or a positive number of seconds, got {x}"),
                ));
            }
        }
        Ok(())
    }

    fn check_file(&self, file: &Spanned<PathBuf>, key: &str) -> Result<(), SceneError> {
        let p = self.resolve(file.get_ref());
        if !p.is_file() {
            return Err(self.error_at(
                file.span(),
                key,
                &format!(
                    "file '{}' does not exist (resolved to {})",
                    file.get_ref().display(),
                    p.display()
                ),
            ));
        }
        Ok(())
    }
}

fn parse_start(text: &str) -> Result<jiff::ZonedDateTime, String> {
    if let Ok(z) = text.parse::<jiff::ZonedDateTime>() {
        return Ok(z);
    }
    // RFC 3339 with only an offset (or Z): keep that fixed offset as the zone.
    if text.parse::<jiff::Timestamp>().is_ok() {
        let t = text.trim();
        let annotated = if t.ends_with('Z') || t.ends_with('z') {
            format!("{t}[UTC]")
        } else if t.len() > 6 {
            format!("{t}[{}]", &t[t.len() - 6..])
        } else {
            t.to_string()
        };
        if let Ok(z) = annotated.parse::<jiff::ZonedDateTime>() {
            return Ok(z);
        }
    }
    Err(format!(
        "'{text}' is not a date-time with a time zone; write e.g. \"2026-07-15T07:30:00+08:00[Asia/Shanghai]\" or \"2026-07-15T07:30:00+08:00\""
    ))
}
