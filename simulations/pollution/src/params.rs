//! The `[simulations.pollution]` parameters of a scene and their defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// The `[simulations.pollution]` parameters of a scene.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PollutionParams {
    /// The weather (constant values or a `file`).
    pub weather: WeatherParams,
    /// `urban` (default) or `rural`: wind profile, roughness and the default dispersion curves.
    #[serde(default = "default_terrain")]
    pub terrain: String,
    /// Dispersion curves: `briggs_urban`, `briggs_rural` or `pasquill_gifford`. Default: Briggs
    /// for the terrain.
    #[serde(default)]
    pub curves: Option<String>,
    /// How stacks and area sources are modelled: `plume` (steady), `puff`, or `auto` (default:
    /// plumes while the weather is constant, puffs when it changes during the run). A source
    /// whose rate changes (a leak that starts and stops) turns to puffs from that moment.
    #[serde(default = "default_point_model")]
    pub point_model: String,
    /// Seconds between puffs of a source. Default 10 s.
    #[serde(default = "default_puff_interval")]
    pub puff_interval_s: f64,
    /// Cell size of the Eulerian grid and of the concentration maps, m. Default 20 m.
    #[serde(default = "default_cell")]
    pub grid_cell_m: f64,
    /// Vertical layers of the grid, up to the mixing height. Default 8.
    #[serde(default = "default_layers")]
    pub grid_layers: usize,
    /// Thickness of the lowest layer, m (the air people breathe). Default 3 m.
    #[serde(default = "default_first_layer")]
    pub grid_first_layer_m: f64,
    /// Margin around the scene's features, m. Default 200 m.
    #[serde(default = "default_margin")]
    pub grid_margin_m: f64,
    /// Height of receptors (stations, buildings, maps) above ground, m. Default 1.5 m.
    #[serde(default = "default_receptor_height")]
    pub receptor_height_m: f64,
    /// Seconds between concentration maps in the store. Default 300 s.
    #[serde(default = "default_map_interval")]
    pub map_interval_s: f64,
    /// Map cells below this are not stored, µg/m³. Default 0.1.
    #[serde(default = "default_map_min")]
    pub map_min_ug_m3: f64,
    /// Seconds between readings at stations and buildings (and exceedance checks). Default 60 s.
    /// A station reports the mean of the concentrations it sampled every step since its last
    /// reading, as monitors report averages; buildings are checked at the moment.
    #[serde(default = "default_receptor_interval")]
    pub receptor_interval_s: f64,
    /// Whether vehicles emit into the grid. Default true.
    #[serde(default = "default_true")]
    pub traffic: bool,
    /// Which exhaust pollutant counts as which species: default `{ NOx = "NO2", PMx = "PM2.5" }`
    /// (all NOx as NO2, a conservative screening assumption; exhaust PM is fine PM).
    #[serde(default = "default_traffic_species")]
    pub traffic_species: BTreeMap<String, String>,
    /// Limits per species, µg/m³; a receptor above its limit raises `pollution.exceedance`.
    /// Default: EU one-hour limits NO2 200, SO2 350; PM2.5 25.
    #[serde(default = "default_thresholds")]
    pub thresholds_ug_m3: BTreeMap<String, f64>,
    /// Toxic-load limits per species as concentration × time since the start (Haber's rule),
    /// mg·min/m³: the dose is summed every step at each building's centroid, and a building
    /// past its limit counts its occupants as exposed (`pollution.<species>.people_exposed`).
    /// E.g. chlorine's AEGL-1 for an hour, 0.5 ppm = 1.45 mg/m³ for 60 min: 87 mg·min/m³.
    /// Default none.
    #[serde(default)]
    pub dose_limits_mg_min_m3: BTreeMap<String, f64>,
    /// Source tracing over a window of readings.
    #[serde(default)]
    pub tracing: Option<TracingParams>,
}

/// `[simulations.pollution.weather]`.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct WeatherParams {
    /// A CSV series (see [`WeatherSeries::read_csv`]); or give the values below.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Wind speed at 10 m, m/s.
    #[serde(default)]
    pub wind_speed_mps: Option<f64>,
    /// Direction the wind comes from, degrees clockwise from north.
    #[serde(default)]
    pub wind_from_deg: Option<f64>,
    /// Pasquill class A–F; or give `cloud_oktas`.
    #[serde(default)]
    pub stability: Option<String>,
    /// Cloud cover in oktas (0–8): stability from Turner's key with the sun at the scene's time
    /// and place.
    #[serde(default)]
    pub cloud_oktas: Option<f64>,
    /// Mixing height, m. Default 800 m.
    #[serde(default = "default_mixing")]
    pub mixing_height_m: f64,
    /// Air temperature, K. Default 293.15 K.
    #[serde(default = "default_air_temp")]
    pub air_temperature_k: f64,
}

/// `[simulations.pollution.tracing]`: rank candidate sources by how well they explain readings.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TracingParams {
    /// The species traced.
    pub pollutant: String,
    /// `"run"` (the stations' readings in this run), `"feeds"` (the air-quality stations'
    /// series of the pollutant in the scene's `[[feed]]`s, read when the window closes) or a
    /// CSV file with columns `station`, `time_s` or `time`, `pollutant`, `value_ug_m3`.
    pub readings: String,
    /// Window start, s after the scene start. Default 0.
    #[serde(default)]
    pub start_s: f64,
    /// Window end, s. Default: the end of the run.
    #[serde(default)]
    pub end_s: Option<f64>,
    /// Relative noise added to readings taken from the run (a station's error, e.g. 0.1), drawn
    /// from the scene seed. Default 0.
    #[serde(default)]
    pub noise_fraction: f64,
    /// The stations' expected error, for weighting readings: an absolute floor, µg/m³
    /// (default 1), and a fraction of the value (default 0.1).
    #[serde(default = "default_abs_err")]
    pub absolute_error_ug_m3: f64,
    /// See `absolute_error_ug_m3`.
    #[serde(default = "default_rel_err")]
    pub relative_error: f64,
    /// Also fit a constant background. Default true.
    #[serde(default = "default_true")]
    pub background: bool,
    /// Where to write the report (Markdown), relative to the scene.
    #[serde(default)]
    pub report: Option<PathBuf>,
    /// Extra candidate places (a suspect with no entity): `{ id, lon, lat, height_m }`.
    #[serde(default)]
    pub candidates: Vec<CandidateParams>,
}

/// An extra tracing candidate.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateParams {
    /// Name.
    pub id: String,
    /// Longitude, degrees.
    pub lon: f64,
    /// Latitude, degrees.
    pub lat: f64,
    /// Release height, m. Default 1 m.
    #[serde(default = "default_candidate_height")]
    pub height_m: f64,
}

fn default_terrain() -> String {
    "urban".into()
}
fn default_point_model() -> String {
    "auto".into()
}
fn default_puff_interval() -> f64 {
    10.0
}
fn default_cell() -> f64 {
    20.0
}
fn default_layers() -> usize {
    8
}
fn default_first_layer() -> f64 {
    3.0
}
fn default_margin() -> f64 {
    200.0
}
fn default_receptor_height() -> f64 {
    1.5
}
fn default_map_interval() -> f64 {
    300.0
}
fn default_map_min() -> f64 {
    0.1
}
fn default_receptor_interval() -> f64 {
    60.0
}
fn default_true() -> bool {
    true
}
fn default_abs_err() -> f64 {
    1.0
}
fn default_rel_err() -> f64 {
    0.1
}
fn default_mixing() -> f64 {
    800.0
}
fn default_air_temp() -> f64 {
    293.15
}
fn default_candidate_height() -> f64 {
    1.0
}
fn default_traffic_species() -> BTreeMap<String, String> {
    [("NOx", "NO2"), ("PMx", "PM2.5")]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}
fn default_thresholds() -> BTreeMap<String, f64> {
    [("NO2", 200.0), ("SO2", 350.0), ("PM2.5", 25.0)]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b))
        .collect()
}
