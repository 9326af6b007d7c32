//! # citytwin-pollution
//!
//! Air pollution over the city, as a Bevy plugin on the engine's schedule: what the stacks, the
//! leaks and the traffic put in the air, where the wind takes it, what the monitoring stations
//! and the buildings breathe, when limits are exceeded, and who caused a spike.
//!
//! - [`weather`]: wind, Pasquill–Gifford stability (given, or from wind, sun and cloud by
//!   Turner's key), mixing height; constant or a CSV time series.
//! - [`sigma`]: dispersion curves — Pasquill–Gifford (ISC3 rural), Briggs rural and urban.
//! - [`plume`]: the steady Gaussian plume with Briggs plume rise and ground/lid reflections.
//! - [`puff`]: Gaussian puffs for releases that start and stop and for a turning wind.
//! - [`grid`]: the Eulerian advection–diffusion grid that carries traffic emissions.
//! - [`emission`]: vehicle exhaust from speed and acceleration (SUMO's HBEFA3 model).
//! - [`field`]: fast concentration maps on receptor grids.
//! - [`tracing`]: which candidate sources explain station readings (non-negative least squares).
//!
//! In a scene, `[simulations.pollution]` switches it on ([`PollutionParams`] lists the keys).
//! Every [`EmissionSource`] entity emits — the scene's emission layers and any a scenario plugin
//! spawns or changes at run time (a leak: the `chemical_leak` plugin); vehicles emit into the grid
//! in [`SimSet::Coupling`]. Station readings are KPIs, maps go to the store's `fields` table per
//! H3 cell, exceedances are events, and a tracing report is written when its window closes.

mod csv;
pub mod emission;
pub mod error;
pub mod field;
pub mod grid;
pub mod plume;
pub mod puff;
pub mod sigma;
pub mod tracing;
pub mod weather;

mod systems;

use std::collections::BTreeMap;
use std::path::PathBuf;

use bevy::prelude::*;
use citytwin_engine::modules::check_positive;
use citytwin_engine::prelude::*;
use citytwin_engine::recorder::kpi_due;
use citytwin_engine::scene::SceneFiles;
use geo::{Area, BoundingRect, Centroid};
use serde::Deserialize;

pub use error::PollutionError;
use grid::{Boundary, EulerGrid, GridSpec};
use puff::{PuffCloud, SourceGeometry};
use sigma::Curves;
pub use systems::read_readings;
use weather::{Stability, StabilitySpec, Terrain, Weather, WeatherRecord, WeatherSeries};

/// The `[simulations.pollution]` parameters of a scene.
#[derive(Clone, Debug, Deserialize)]
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
    /// Source tracing over a window of readings.
    #[serde(default)]
    pub tracing: Option<TracingParams>,
}

/// `[simulations.pollution.weather]`.
#[derive(Clone, Debug, Deserialize)]
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
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingParams {
    /// The species traced.
    pub pollutant: String,
    /// `"run"` (the stations' readings in this run) or a CSV file with columns `station`,
    /// `time_s` or `time`, `pollutant`, `value_ug_m3`.
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
#[derive(Clone, Debug, Deserialize)]
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

/// µg/m³ per kg/m³.
pub const UG_M3_PER_KG_M3: f64 = 1e9;

/// How point and area sources are modelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointModel {
    /// Steady plumes.
    Plume,
    /// Puffs.
    Puff,
}

/// Mass balance of one species, kg.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Balance {
    /// Released as puffs.
    pub puff_emitted_kg: f64,
    /// Puff mass that left the modelled area.
    pub puff_left_kg: f64,
    /// Put on the grid (traffic).
    pub grid_emitted_kg: f64,
}

/// A station reading, for tracing.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    /// Station code.
    pub station: String,
    /// Where, m.
    pub xy_m: [f64; 2],
    /// Seconds after the scene start.
    pub t_s: f64,
    /// Species.
    pub species: String,
    /// Concentration, kg/m³.
    pub value_kg_m3: f64,
}

/// Per-source state.
#[derive(Clone, Copy, Debug)]
struct SourceState {
    mode: PointModel,
    rate_kg_s: f64,
    /// Mass waiting to go out in the next puff, kg.
    pending_kg: f64,
    /// Seconds since the last puff.
    since_puff_s: f64,
}

/// The pollution simulation's state in the world.
#[derive(Resource)]
pub struct PollutionSim {
    /// The weather over the run.
    pub weather: WeatherSeries,
    /// Terrain.
    pub terrain: Terrain,
    /// Dispersion curves.
    pub curves: Curves,
    /// Species names; puff and grid indices refer to this list.
    pub species: Vec<String>,
    /// Puffs in the air.
    pub puffs: PuffCloud,
    /// Steady plumes of this step: (species index, plume).
    pub plumes: Vec<(usize, plume::Plume)>,
    /// The Eulerian grid (traffic species only).
    pub grid: EulerGrid,
    /// Species index of each grid species.
    pub grid_species: Vec<usize>,
    /// Mass balance per species.
    pub balance: Vec<Balance>,
    /// Station readings so far (for tracing from the run).
    pub readings: Vec<Reading>,
    params: PollutionParams,
    point_model: Option<PointModel>,
    sources: BTreeMap<Entity, SourceState>,
    transport: Option<(Weather, grid::Transport)>,
    traffic_map: Vec<(emission::Exhaust, usize)>,
    map_h3: Vec<u64>,
    exceeded: BTreeMap<(Entity, usize), bool>,
    /// Per station and species: the sum and count of this averaging period's samples.
    station_sums: BTreeMap<(Entity, usize), (f64, u32)>,
    tracing_done: bool,
    report_path: Option<PathBuf>,
    /// Readings from a file (checked when the scene is built), with the file's name.
    file_readings: Option<(PathBuf, Vec<Reading>)>,
    extra_candidates: Vec<(String, [f64; 2], f64)>,
}

impl PollutionSim {
    /// The index of species `name`, adding it if new.
    pub fn species_index(&mut self, name: &str) -> usize {
        match self.species.iter().position(|s| s == name) {
            Some(i) => i,
            None => {
                self.species.push(name.to_string());
                self.balance.push(Balance::default());
                self.species.len() - 1
            }
        }
    }

    /// The weather `t_s` seconds after the start.
    pub fn weather_at(&self, t_s: f64) -> Weather {
        self.weather.at(t_s)
    }

    /// Concentration of species `s` at a point `z_m` above ground now, kg/m³: plumes, puffs and
    /// the grid together.
    pub fn concentration(&self, s: usize, p: [f64; 2], z_m: f64, w: &Weather) -> f64 {
        let mut c: f64 = self
            .plumes
            .iter()
            .filter(|(sp, _)| *sp == s)
            .map(|(_, pl)| pl.concentration(p, z_m))
            .sum();
        c += self.puffs.concentration(s as u32, p, z_m, w);
        if let Some(g) = self.grid_species.iter().position(|&x| x == s) {
            let spec = self.grid.spec();
            if let Some((i, j)) = spec.cell_of(p) {
                c += self.grid.concentration(g, i, j, spec.layer_at(z_m));
            }
        }
        c
    }

    /// The receptor grid of the maps (the Eulerian grid's cell centres at receptor height).
    pub fn map_grid(&self) -> field::ReceptorGrid {
        let spec = self.grid.spec();
        field::ReceptorGrid {
            first_m: spec.centre(0, 0),
            step_m: spec.cell_m,
            nx: spec.nx,
            ny: spec.ny,
            z_m: self.params.receptor_height_m,
        }
    }

    /// A concentration map of species `s` now (row-major over [`Self::map_grid`]), kg/m³.
    pub fn map(&self, s: usize, w: &Weather) -> Vec<f64> {
        let g = self.map_grid();
        let mut out = vec![0.0; g.len()];
        let plumes: Vec<plume::Plume> = self
            .plumes
            .iter()
            .filter(|(sp, _)| *sp == s)
            .map(|(_, p)| *p)
            .collect();
        field::add_plumes(&g, &plumes, &mut out);
        field::add_puffs(&g, &self.puffs, s as u32, w, &mut out);
        if let Some(gs) = self.grid_species.iter().position(|&x| x == s) {
            let k = self.grid.spec().layer_at(g.z_m);
            for j in 0..g.ny {
                for i in 0..g.nx {
                    out[j * g.nx + i] += self.grid.concentration(gs, i, j, k);
                }
            }
        }
        out
    }
}

impl citytwin_engine::hash::StateHash for PollutionSim {
    fn hash_state(&self, h: &mut citytwin_engine::hash::StateHasher) {
        for p in &self.puffs.puffs {
            h.u64(p.species as u64);
            h.f64(p.xy_m[0]);
            h.f64(p.xy_m[1]);
            h.f64(p.mass_kg);
            h.f64(p.travel_m);
        }
        for s in 0..self.grid.nspecies() {
            h.f64(self.grid.mass_kg(s));
        }
        for b in &self.balance {
            h.f64(b.puff_emitted_kg);
            h.f64(b.grid_emitted_kg);
        }
    }
}

/// The pollution simulation as a scene module (`[simulations.pollution]`).
pub struct PollutionModule;

impl SceneModule for PollutionModule {
    fn name(&self) -> &'static str {
        "pollution"
    }

    fn description(&self) -> &'static str {
        "air pollution: Gaussian plumes and puffs from stacks and releases, traffic exhaust on an Eulerian grid, station readings, exceedances, source tracing"
    }

    fn build(&self, params: &toml::Table, app: &mut App) -> Result<(), String> {
        let p: PollutionParams = parse_params(params)?;
        let sim = setup(p, app)?;
        app.insert_resource(sim)
            .add_systems(
                SimStep,
                (
                    systems::step_pollution.in_set(SimSet::Physics),
                    systems::traffic_emissions.in_set(SimSet::Coupling),
                    (
                        systems::sample_stations,
                        systems::read_receptors.run_if(systems::receptors_due),
                        systems::record_maps.run_if(systems::maps_due),
                        systems::pollution_kpis.run_if(kpi_due),
                        systems::trace_when_due,
                    )
                        .chain()
                        .in_set(SimSet::Metrics),
                ),
            )
            .hash_resource::<PollutionSim>();
        Ok(())
    }
}

fn setup(p: PollutionParams, app: &mut App) -> Result<PollutionSim, String> {
    let terrain = match p.terrain.as_str() {
        "urban" => Terrain::Urban,
        "rural" => Terrain::Rural,
        t => return Err(format!("`terrain`: '{t}' is not `urban` or `rural`")),
    };
    let curves = match &p.curves {
        None => Curves::briggs(terrain),
        Some(c) => Curves::parse(c).ok_or_else(|| {
            format!("`curves`: '{c}' is not `briggs_urban`, `briggs_rural` or `pasquill_gifford`")
        })?,
    };
    let point_model = match p.point_model.as_str() {
        "plume" => Some(PointModel::Plume),
        "puff" => Some(PointModel::Puff),
        "auto" => None,
        m => {
            return Err(format!(
                "`point_model`: '{m}' is not `plume`, `puff` or `auto`"
            ));
        }
    };
    check_positive("puff_interval_s", p.puff_interval_s)?;
    check_positive("grid_cell_m", p.grid_cell_m)?;
    check_positive("grid_first_layer_m", p.grid_first_layer_m)?;
    check_positive("map_interval_s", p.map_interval_s)?;
    check_positive("receptor_interval_s", p.receptor_interval_s)?;
    if !(p.receptor_height_m.is_finite() && p.receptor_height_m >= 0.0) {
        return Err("`receptor_height_m` must be zero or positive".into());
    }
    if !(1..=40).contains(&p.grid_layers) {
        return Err(format!(
            "`grid_layers`: {} is not between 1 and 40",
            p.grid_layers
        ));
    }
    if !(p.grid_margin_m.is_finite() && p.grid_margin_m >= 0.0) {
        return Err("`grid_margin_m` must be zero or positive".into());
    }
    for (k, v) in &p.thresholds_ug_m3 {
        check_positive(&format!("thresholds_ug_m3.{k}"), *v)?;
    }
    let files = app
        .world()
        .get_resource::<SceneFiles>()
        .cloned()
        .ok_or("the pollution simulation needs a scene (no SceneFiles resource)")?;
    let world = app.world();
    let frame = world.resource::<GeoFrame>().clone();
    let clock = world.resource::<SimClock>().clone();
    let origin = frame.origin();
    let start_unix_s = clock.start().timestamp().as_millisecond() as f64 / 1000.0;
    let weather = weather_series(&p.weather, &files, origin, start_unix_s)?;

    // The modelled area: every feature of the scene, plus a margin.
    let mut bbox = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    let mut grow = |x: f64, y: f64| {
        bbox[0] = bbox[0].min(x);
        bbox[1] = bbox[1].min(y);
        bbox[2] = bbox[2].max(x);
        bbox[3] = bbox[3].max(y);
    };
    {
        let world = app.world_mut();
        let mut q = world.query::<(Option<&Position>, Option<&Shape>)>();
        for (pos, shape) in q.iter(world) {
            if let Some(s) = shape.and_then(|s| s.0.bounding_rect()) {
                grow(s.min().x, s.min().y);
                grow(s.max().x, s.max().y);
            } else if let Some(pos) = pos {
                grow(pos.xy_m.x, pos.xy_m.y);
            }
        }
    }
    if !bbox[0].is_finite() {
        bbox = [-500.0, -500.0, 500.0, 500.0];
    }
    let m = p.grid_margin_m;
    let cell = p.grid_cell_m;
    let nx = (((bbox[2] - bbox[0]) + 2.0 * m) / cell).ceil().max(1.0) as usize;
    let ny = (((bbox[3] - bbox[1]) + 2.0 * m) / cell).ceil().max(1.0) as usize;
    if nx * ny > 25_000_000 {
        return Err(format!(
            "the grid would have {nx} × {ny} cells; raise `grid_cell_m` ({cell} m)"
        ));
    }
    let w0 = weather.at(0.0);
    let spec = GridSpec {
        origin_m: [bbox[0] - m, bbox[1] - m],
        nx,
        ny,
        cell_m: cell,
        layer_tops_m: GridSpec::stretched_layers(
            p.grid_layers,
            p.grid_first_layer_m,
            w0.mixing_height_m
                .max(p.grid_first_layer_m * p.grid_layers as f64),
        ),
    };

    let mut species: Vec<String> = Vec::new();
    let idx = |name: &str, species: &mut Vec<String>| match species.iter().position(|s| s == name) {
        Some(i) => i,
        None => {
            species.push(name.to_string());
            species.len() - 1
        }
    };
    let mut traffic_map = Vec::new();
    let mut grid_species: Vec<usize> = Vec::new();
    if p.traffic {
        for (ex, sp) in &p.traffic_species {
            let e = emission::Exhaust::parse(ex).ok_or_else(|| {
                format!(
                    "`traffic_species.{ex}`: not an exhaust pollutant (CO2, CO, HC, NOx, PMx, fuel)"
                )
            })?;
            let s = idx(sp, &mut species);
            if !grid_species.contains(&s) {
                grid_species.push(s);
            }
            traffic_map.push((e, s));
        }
    }
    let index = world_index(app);
    let map_h3: Vec<u64> = (0..ny)
        .flat_map(|j| (0..nx).map(move |i| (i, j)))
        .map(|(i, j)| {
            let c = spec.centre(i, j);
            index
                .cell_at(bevy::math::DVec2::new(c[0], c[1]))
                .map(u64::from)
                .unwrap_or(0)
        })
        .collect();

    let mut extra_candidates = Vec::new();
    let (mut report_path, mut file_readings) = (None, None);
    if let Some(t) = &p.tracing {
        if t.readings != "run" {
            let path = files.resolve(std::path::Path::new(&t.readings));
            let world = app.world_mut();
            let mut q = world.query::<(&Sensor, &Position)>();
            let stations: BTreeMap<String, [f64; 2]> = q
                .iter(world)
                .map(|(s, p)| (s.station.clone(), [p.xy_m.x, p.xy_m.y]))
                .collect();
            let r = read_readings(&path, &stations, start_unix_s)
                .map_err(|e| format!("`tracing.readings`: {e}"))?;
            file_readings = Some((path, r));
        }
        report_path = t.report.as_ref().map(|r| files.resolve(r));
        if !(0.0..=1.0).contains(&t.noise_fraction) {
            return Err("`tracing.noise_fraction` must be between 0 and 1".into());
        }
        if !(t.absolute_error_ug_m3 >= 0.0 && t.relative_error >= 0.0) {
            return Err(
                "`tracing.absolute_error_ug_m3` and `relative_error` must not be negative".into(),
            );
        }
        for c in &t.candidates {
            let ll = LonLat::new(c.lon, c.lat);
            if !ll.is_valid() {
                return Err(format!(
                    "`tracing.candidates`: '{}' has an invalid position ({}, {})",
                    c.id, c.lon, c.lat
                ));
            }
            let xy = frame.to_local(ll);
            extra_candidates.push((c.id.clone(), [xy.x, xy.y], c.height_m));
        }
        idx(&t.pollutant, &mut species);
    }
    let nspecies = grid_species.len();
    let balance = vec![Balance::default(); species.len()];
    Ok(PollutionSim {
        weather,
        terrain,
        curves,
        species,
        puffs: PuffCloud::new(curves, terrain),
        plumes: Vec::new(),
        grid: EulerGrid::new(spec, nspecies, Boundary::Open),
        grid_species,
        balance,
        readings: Vec::new(),
        params: p,
        point_model,
        sources: BTreeMap::new(),
        transport: None,
        traffic_map,
        map_h3,
        exceeded: BTreeMap::new(),
        station_sums: BTreeMap::new(),
        tracing_done: false,
        report_path,
        file_readings,
        extra_candidates,
    })
}

fn world_index(app: &App) -> SpatialIndex {
    let world = app.world();
    let frame = world.resource::<GeoFrame>().clone();
    let res = world.resource::<SpatialIndex>().resolution();
    SpatialIndex::new(frame, res)
}

fn weather_series(
    w: &WeatherParams,
    files: &SceneFiles,
    origin: LonLat,
    start_unix_s: f64,
) -> Result<WeatherSeries, String> {
    if let Some(f) = &w.file {
        if w.wind_speed_mps.is_some() || w.wind_from_deg.is_some() || w.stability.is_some() {
            return Err("`weather`: give either `file` or the values, not both".into());
        }
        return WeatherSeries::read_csv(
            &files.resolve(f),
            origin.lat,
            origin.lon,
            start_unix_s,
            w.mixing_height_m,
        )
        .map_err(|e| e.to_string());
    }
    let (Some(u), Some(dir)) = (w.wind_speed_mps, w.wind_from_deg) else {
        return Err("`weather`: give `file`, or `wind_speed_mps` and `wind_from_deg`".into());
    };
    let stability = match (&w.stability, w.cloud_oktas) {
        (Some(s), None) => StabilitySpec::Class(
            Stability::parse(s)
                .ok_or_else(|| format!("`weather.stability`: '{s}' is not a class A–F"))?,
        ),
        (None, Some(o)) if (0.0..=8.0).contains(&o) => StabilitySpec::CloudOktas(o),
        (None, Some(o)) => {
            return Err(format!("`weather.cloud_oktas`: {o} is not between 0 and 8"));
        }
        _ => {
            return Err(
                "`weather`: give `stability` (A–F) or `cloud_oktas` (0–8), one of them".into(),
            );
        }
    };
    let rec = WeatherRecord {
        from_s: f64::NEG_INFINITY,
        wind_speed_mps: u,
        wind_from_deg: dir,
        stability,
        mixing_height_m: w.mixing_height_m,
        air_temperature_k: w.air_temperature_k,
    };
    Weather {
        wind_speed_mps: u,
        wind_from_deg: dir,
        stability: Stability::D,
        mixing_height_m: w.mixing_height_m,
        air_temperature_k: w.air_temperature_k,
    }
    .validate()
    .map_err(|m| format!("`weather`: {m}"))?;
    Ok(WeatherSeries::new(
        vec![rec],
        origin.lat,
        origin.lon,
        start_unix_s,
    ))
}

/// The geometry of an emission source entity for the dispersion models.
fn source_geom(
    src: &EmissionSource,
    pos: Option<&Position>,
    shape: Option<&Shape>,
) -> Option<SourceGeometry> {
    match src.kind {
        EmissionKind::Stack {
            height_m,
            diameter_m,
            exit_velocity_mps,
            exit_temperature_k,
        } => pos.map(|p| SourceGeometry {
            xy_m: [p.xy_m.x, p.xy_m.y],
            height_m,
            exit: plume::StackExit {
                diameter_m,
                velocity_mps: exit_velocity_mps,
                temperature_k: exit_temperature_k,
            },
            sigma0_m: [0.0, 0.0],
        }),
        EmissionKind::Area { height_m: h } => {
            if let Some(s) = shape {
                let c = s.0.centroid()?;
                // ISC's virtual point source: an area of side L starts σy = L/4.3 wide.
                let side = s.0.unsigned_area().sqrt();
                Some(SourceGeometry {
                    xy_m: [c.x(), c.y()],
                    height_m: h,
                    exit: plume::StackExit::default(),
                    sigma0_m: [side / 4.3, 1.0],
                })
            } else {
                pos.map(|p| SourceGeometry {
                    xy_m: [p.xy_m.x, p.xy_m.y],
                    height_m: h,
                    exit: plume::StackExit::default(),
                    sigma0_m: [1.0, 1.0],
                })
            }
        }
    }
}
