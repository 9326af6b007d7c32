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
mod params;
pub mod plume;
pub mod puff;
pub mod sigma;
pub mod tracing;
pub mod weather;

mod setup;
mod systems;

pub use params::{CandidateParams, PollutionParams, TracingParams, WeatherParams};

use std::collections::BTreeMap;
use std::path::PathBuf;

use bevy::prelude::*;
use citytwin_engine::prelude::*;
use citytwin_engine::recorder::kpi_due;

pub use error::PollutionError;
use grid::EulerGrid;
use puff::PuffCloud;
use setup::source_geom;
use sigma::Curves;
pub use systems::read_readings;
use weather::{Terrain, Weather, WeatherSeries};

/// µg/m³ per kg/m³.
pub const UG_M3_PER_KG_M3: f64 = 1e9;

/// How point and area sources are modelled.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointModel {
    /// Steady plumes.
    Plume,
    /// Puffs.
    Puff,
}

/// Mass balance of one species, kg.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct Balance {
    /// Released as puffs.
    pub puff_emitted_kg: f64,
    /// Puff mass that left the modelled area.
    pub puff_left_kg: f64,
    /// Put on the grid (traffic).
    pub grid_emitted_kg: f64,
}

/// A station reading, for tracing.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
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
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug)]
struct SourceState {
    mode: PointModel,
    rate_kg_s: f64,
    /// Mass waiting to go out in the next puff, kg.
    pending_kg: f64,
    /// Seconds since the last puff.
    since_puff_s: f64,
}

/// The pollution simulation's state in the world.
#[derive(serde::Serialize, serde::Deserialize, Resource)]
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
    /// Per species with a dose limit and building: the dose since the start, kg·s/m³, and
    /// whether it passed the limit.
    doses: BTreeMap<(String, Entity), (f64, bool)>,
    /// Buildings' centroids, occupants and names, for the doses (read at the first step).
    dose_receptors: Option<Vec<systems::DoseReceptor>>,
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
        for ((sp, _), (dose, over)) in &self.doses {
            h.str(sp);
            h.f64(*dose);
            h.u64(*over as u64);
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
        let sim = setup::setup(p, app)?;
        app.insert_resource(sim)
            .add_systems(
                SimStep,
                (
                    systems::step_pollution.in_set(SimSet::Physics),
                    systems::traffic_emissions.in_set(SimSet::Coupling),
                    (
                        systems::sample_stations,
                        systems::accumulate_doses,
                        systems::read_receptors.run_if(systems::receptors_due),
                        systems::record_maps.run_if(systems::maps_due),
                        systems::pollution_kpis.run_if(kpi_due),
                        systems::trace_when_due,
                    )
                        .chain()
                        .in_set(SimSet::Metrics),
                ),
            )
            .hash_resource::<PollutionSim>()
            .checkpoint_resource::<PollutionSim>();
        Ok(())
    }
}
