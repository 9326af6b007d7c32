//! # citytwin-traffic
//!
//! Microscopic traffic on real road networks, as a Bevy plugin on the engine's schedule.
//!
//! - [`net`]: the network (edges, lanes, links through junctions, signal programs), imported
//!   from SUMO `.net.xml`; [`osm`] builds one from OpenStreetMap `.osm.pbf`.
//! - [`demand`]: vehicle types and vehicles from SUMO route files (routes, trips, flows).
//! - [`models`]: car-following — SUMO's Krauss and the Intelligent Driver Model.
//! - [`sim`]: the simulation core: insertion, car-following, lane changing, right of way,
//!   fixed-time and actuated signals, teleports, rerouting, measurements. Plain Rust, no ECS:
//!   vehicles live per lane in contiguous arrays.
//! - [`routing`]: fastest routes (A*) on current travel times.
//! - [`tripinfo`]: SUMO-format trip records and their summary statistics.
//! - [`signal_opt`]: signal plans from Webster's method and a parallel simulation search.
//!
//! In a scene, `[simulations.traffic]` switches it on ([`TrafficParams`] lists the keys). Each
//! step it moves the vehicles in [`SimSet::Physics`]; roads and junctions are entities from the
//! start, vehicles are mirrored into entities (with [`Position`] and [`Vehicle`]) every
//! `vehicle_sync_interval_s`; KPIs go to the run store every KPI interval.

pub mod demand;
pub mod error;
pub mod models;
pub mod net;
pub mod osm;
pub mod routing;
pub mod signal_opt;
pub mod sim;
pub mod tripinfo;
mod xml;

mod mirror;
mod placement;
mod systems;

use mirror::{VehicleMirror, mirror_vehicles, spawn_network, sync_due};
pub use placement::{AffinePlacement, Placement, lane_point};
use systems::{RoadHolds, apply_demand_commands, apply_road_commands, step_traffic, traffic_kpis};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use bevy::prelude::*;
use citytwin_engine::hash::{StateHash, StateHasher};
use citytwin_engine::prelude::*;
use citytwin_engine::recorder::kpi_due;
use citytwin_engine::scene::SceneFiles;
use serde::Deserialize;

pub use demand::{CarFollowModel, Demand};
pub use error::TrafficError;
pub use net::Network;
pub use sim::{Traffic, TrafficConfig, TripRecord};

/// The `[simulations.traffic]` parameters of a scene.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficParams {
    /// SUMO network file (`.net.xml`), relative to the scene. Give this or `osm`.
    #[serde(default)]
    pub net: Option<PathBuf>,
    /// OpenStreetMap extract (`.osm.pbf`) to build the network from, relative to the scene.
    #[serde(default)]
    pub osm: Option<PathBuf>,
    /// SUMO route files (`.rou.xml`, trips), relative to the scene.
    #[serde(default)]
    pub routes: Vec<PathBuf>,
    /// Random trips to add (`{ vehicles = 2000, begin_s = 0, end_s = 3600, min_distance_m = 300 }`),
    /// drawn from the scene's seed.
    #[serde(default)]
    pub random_trips: Option<demand::RandomTrips>,
    /// Car-following model for every vehicle: `"krauss"` or `"idm"` (default: each vType's own,
    /// SUMO's Krauss unless it says IDM).
    #[serde(default)]
    pub model: Option<ModelName>,
    /// A vehicle standing this long at the head of a lane jumps ahead, as SUMO's teleport; 0
    /// turns it off. Default 300 s, SUMO's.
    #[serde(default = "default_teleport")]
    pub teleport_after_s: f64,
    /// Signal programs to run instead of the network's: a SUMO additional file of `<tlLogic>`
    /// elements (as `citytwin optimize-signals` writes), relative to the scene.
    #[serde(default)]
    pub signal_plans: Option<PathBuf>,
    /// Write trip records in SUMO's tripinfo format to this file (relative to the scene).
    #[serde(default)]
    pub tripinfo: Option<PathBuf>,
    /// Record per-edge KPIs (speed, flow, density, queue); default true.
    #[serde(default = "yes")]
    pub edge_kpis: bool,
    /// Seconds between copies of the vehicles into entities (positions for views, snapshots
    /// and the spatial index). Default 10 s.
    #[serde(default = "default_sync")]
    pub vehicle_sync_interval_s: f64,
    /// Check for overlapping vehicles and lost vehicles every step (slower; for tests).
    #[serde(default)]
    pub check_invariants: bool,
    /// Layer name of the roads, junctions and vehicles in the run store. Default `"traffic"`.
    #[serde(default = "default_layer")]
    pub layer: String,
}

/// Car-following models a scene can ask for.
#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum ModelName {
    /// SUMO's Krauss.
    Krauss,
    /// Intelligent Driver Model (δ = 4).
    Idm,
}

fn default_teleport() -> f64 {
    300.0
}
fn yes() -> bool {
    true
}
fn default_sync() -> f64 {
    10.0
}
fn default_layer() -> String {
    "traffic".into()
}

/// The traffic simulation as a scene module (`[simulations.traffic]`).
pub struct TrafficModule;

impl SceneModule for TrafficModule {
    fn name(&self) -> &'static str {
        "traffic"
    }

    fn description(&self) -> &'static str {
        "microscopic traffic on SUMO or OpenStreetMap networks: Krauss/IDM, MOBIL, signals, routing, KPIs"
    }

    fn build(&self, params: &toml::Table, app: &mut App) -> Result<(), String> {
        let p: TrafficParams = parse_params(params)?;
        if !(p.teleport_after_s >= 0.0 && p.teleport_after_s.is_finite()) {
            return Err(format!(
                "`teleport_after_s`: {} must be 0 or more seconds",
                p.teleport_after_s
            ));
        }
        if p.vehicle_sync_interval_s.is_nan() || p.vehicle_sync_interval_s <= 0.0 {
            return Err(format!(
                "`vehicle_sync_interval_s`: {} must be positive",
                p.vehicle_sync_interval_s
            ));
        }
        let files = app
            .world()
            .get_resource::<SceneFiles>()
            .cloned()
            .ok_or("the traffic simulation needs a scene (no SceneFiles resource)")?;
        let world = app.world();
        let frame = world.resource::<GeoFrame>().clone();
        let seed = world.resource::<SimRng>().seed();
        let (net, demand) = load(&p, |f| files.resolve(f), &frame, seed)?;
        let net_path = net.source.clone();
        let clock = world.resource::<SimClock>();
        let cfg = TrafficConfig {
            dt_s: clock.step_s(),
            model_override: p.model.map(|m| match m {
                ModelName::Krauss => CarFollowModel::Krauss,
                ModelName::Idm => CarFollowModel::Idm { delta: 4.0 },
            }),
            teleport_after_s: p.teleport_after_s,
            check_invariants: p.check_invariants,
            seed,
        };
        let placement =
            Placement::new(&net, &frame).map_err(|e| format!("{}: {e}", net_path.display()))?;
        // The trip file is (re)written when the run starts, not when a scene is only built
        // (`citytwin check` must not truncate the last run's records); that it can be written is
        // checked now.
        let tripinfo = match &p.tripinfo {
            Some(t) => {
                let path = files.resolve(t);
                tripinfo::TripinfoWriter::check_writable(&path)
                    .map_err(|e| format!("`tripinfo`: cannot write {}: {e}", path.display()))?;
                Some(TripFile::Pending(path))
            }
            None => None,
        };
        let plans = match &p.signal_plans {
            Some(f) => net
                .read_signal_plans(&files.resolve(f))
                .map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        let net = Arc::new(net);
        let mut traffic = Traffic::new(net.clone(), demand, cfg);
        for plan in &plans {
            traffic.apply_signal_plan(plan);
        }
        let roads = spawn_network(app.world_mut(), &net, &placement, &p.layer)
            .map_err(|e| format!("{}: {e}", net_path.display()))?;
        app.insert_resource(TrafficSim(traffic))
            .insert_resource(TrafficOutputs {
                tripinfo,
                interval: IntervalTrips::default(),
                all_trips: Vec::new(),
                tracked: Default::default(),
                tracked_trips: Vec::new(),
                edge_kpis: p.edge_kpis,
                last_teleports: 0,
                last_kpi_tick: None,
            })
            .insert_resource(VehicleMirror {
                placement: placement.affine(),
                layer: p.layer.clone(),
                entities: HashMap::new(),
                sync_interval_s: p.vehicle_sync_interval_s,
                roads,
            })
            .init_resource::<RoadHolds>()
            .add_systems(
                SimStep,
                (
                    (
                        apply_road_commands,
                        apply_demand_commands,
                        step_traffic,
                        mirror_vehicles.run_if(sync_due),
                    )
                        .chain()
                        .in_set(SimSet::Physics),
                    traffic_kpis.in_set(SimSet::Metrics).run_if(kpi_due),
                ),
            )
            .hash_resource::<TrafficSim>()
            .hash_resource::<RoadHolds>()
            .checkpoint_resource::<TrafficSim>()
            .checkpoint_resource::<TrafficOutputs>()
            .checkpoint_resource::<RoadHolds>()
            .checkpoint_resource::<VehicleMirror>()
            .on_restore(mirror::after_restore);
        Ok(())
    }
}

/// The network and demand a scene's `[simulations.traffic]` names: a SUMO network or an OSM
/// extract (placed in `frame`), SUMO route files, and random trips drawn from `seed`.
pub fn load(
    p: &TrafficParams,
    resolve: impl Fn(&std::path::Path) -> PathBuf,
    frame: &GeoFrame,
    seed: u64,
) -> Result<(Network, Demand), String> {
    let net = match (&p.net, &p.osm) {
        (Some(n), None) => Network::from_sumo_file(&resolve(n)).map_err(|e| e.to_string())?,
        (None, Some(o)) => osm::network_from_pbf(&resolve(o), frame).map_err(|e| e.to_string())?,
        _ => {
            return Err(
                "give exactly one of `net` (a SUMO .net.xml) and `osm` (an .osm.pbf)".into(),
            );
        }
    };
    let mut demand = Demand::new();
    for r in &p.routes {
        demand
            .read_sumo_file(&resolve(r), &net)
            .map_err(|e| e.to_string())?;
    }
    if let Some(rt) = &p.random_trips {
        if !(rt.end_s >= rt.begin_s && rt.begin_s >= 0.0 && rt.min_distance_m >= 0.0) {
            return Err(
                "`random_trips`: needs 0 <= begin_s <= end_s and min_distance_m >= 0".into(),
            );
        }
        let mut rng = SimRng::new(seed).stream("traffic.random_trips");
        demand.add_random_trips(&net, rt, &mut rng);
    }
    if demand.trips.is_empty() {
        return Err("no vehicles: give `routes` (SUMO route files) or `random_trips`".into());
    }
    Ok((net, demand))
}

/// The roads held closed in `world` now (edge ids, in edge order), with the sources holding
/// each (`flood`, a plugin's name…); empty without a traffic simulation.
pub fn closed_roads(world: &World) -> Vec<(String, Vec<String>)> {
    match (
        world.get_resource::<RoadHolds>(),
        world.get_resource::<TrafficSim>(),
    ) {
        (Some(h), Some(t)) => h.closed_by(&t.0.net),
        _ => Vec::new(),
    }
}

/// The traffic simulation's state in the world. Plugins change it through [`Traffic`]'s control
/// methods (close an edge, set a speed, set a signal program).
#[derive(serde::Serialize, serde::Deserialize, Resource)]
pub struct TrafficSim(pub Traffic);

impl StateHash for TrafficSim {
    fn hash_state(&self, h: &mut StateHasher) {
        self.0.hash_into(h);
    }
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct IntervalTrips {
    n: usize,
    duration_sum_s: f64,
    loss_sum_s: f64,
}

/// The tripinfo file: opened at the first step.
enum TripFile {
    Pending(PathBuf),
    Open(tripinfo::TripinfoWriter),
}

/// Outputs of the traffic simulation: the tripinfo file and the trips finished so far.
#[derive(serde::Serialize, serde::Deserialize, Resource)]
pub struct TrafficOutputs {
    /// Not in checkpoints: a replay or a fork writes no tripinfo file (the run's own stays as
    /// it was written).
    #[serde(skip)]
    tripinfo: Option<TripFile>,
    interval: IntervalTrips,
    /// Every finished trip of the run, in arrival order.
    pub all_trips: Vec<TripRecord>,
    /// Vehicles sent one by one (`DemandCommand::AddVehicle`): their trips are reported.
    #[serde(serialize_with = "citytwin_engine::checkpoint::sorted_set")]
    tracked: std::collections::HashSet<String>,
    /// Their finished trips, whose travel times are KPIs.
    tracked_trips: Vec<TripRecord>,
    edge_kpis: bool,
    last_teleports: u64,
    last_kpi_tick: Option<u64>,
}
