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

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use bevy::math::DVec2;
use bevy::prelude::*;
use citytwin_engine::crs::{Reprojector, parse_crs};
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
#[derive(Clone, Debug, Deserialize)]
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
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
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
        spawn_network(app.world_mut(), &net, &placement, &p.layer)
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
            })
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
            .hash_resource::<TrafficSim>();
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

/// The traffic simulation's state in the world. Plugins change it through [`Traffic`]'s control
/// methods (close an edge, set a speed, set a signal program).
#[derive(Resource)]
pub struct TrafficSim(pub Traffic);

impl StateHash for TrafficSim {
    fn hash_state(&self, h: &mut StateHasher) {
        self.0.hash_into(h);
    }
}

#[derive(Default)]
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
#[derive(Resource)]
pub struct TrafficOutputs {
    tripinfo: Option<TripFile>,
    interval: IntervalTrips,
    /// Every finished trip of the run, in arrival order.
    pub all_trips: Vec<TripRecord>,
    /// Vehicles sent one by one (`DemandCommand::AddVehicle`): their trips are reported.
    tracked: std::collections::HashSet<String>,
    /// Their finished trips, whose travel times are KPIs.
    tracked_trips: Vec<TripRecord>,
    edge_kpis: bool,
    last_teleports: u64,
    last_kpi_tick: Option<u64>,
}

/// How network coordinates map into the scene frame.
pub struct Placement {
    /// Affine map: x' = a0 + a1·x + a2·y, y' = a3 + a4·x + a5·y.
    affine: [f64; 6],
    /// Exact reprojection for projected networks (roads use it; moving things use the affine).
    exact: Option<(Reprojector, [f64; 2])>,
}

/// The affine part of a [`Placement`], which moving things use every sync.
#[derive(Clone, Copy, Debug)]
pub struct AffinePlacement([f64; 6]);

impl AffinePlacement {
    /// A network point in the frame.
    pub fn point(&self, p: [f64; 2]) -> DVec2 {
        let a = &self.0;
        DVec2::new(
            a[0] + a[1] * p[0] + a[2] * p[1],
            a[3] + a[4] * p[0] + a[5] * p[1],
        )
    }
}

impl Placement {
    /// The placement of `net` in `frame`.
    pub fn new(net: &Network, frame: &GeoFrame) -> Result<Self, String> {
        match &net.location {
            net::NetLocation::Local { offset } => Ok(Self {
                affine: [-offset[0], 1.0, 0.0, -offset[1], 0.0, 1.0],
                exact: None,
            }),
            net::NetLocation::Projected { offset, proj } => {
                let srs = parse_crs(proj).map_err(|e| e.to_string())?;
                let rp = Reprojector::new(&srs, frame).map_err(|e| e.to_string())?;
                // Fit the affine map on the junctions (a few km: the residual is millimetres).
                let (mut xs, mut ys): (Vec<f64>, Vec<f64>) = net
                    .junctions
                    .iter()
                    .map(|j| (j.xy[0] - offset[0], j.xy[1] - offset[1]))
                    .unzip();
                let src: Vec<[f64; 2]> = net.junctions.iter().map(|j| j.xy).collect();
                rp.transform_in_place(&mut xs, &mut ys)
                    .map_err(|e| e.to_string())?;
                let affine =
                    fit_affine(&src, &xs, &ys).ok_or("too few junctions to place the network")?;
                Ok(Self {
                    affine,
                    exact: Some((rp, *offset)),
                })
            }
        }
    }

    /// The affine map (exact for local networks; millimetres off for projected ones).
    pub fn affine(&self) -> AffinePlacement {
        AffinePlacement(self.affine)
    }

    /// A network point in the frame (affine).
    pub fn point(&self, p: [f64; 2]) -> DVec2 {
        self.affine().point(p)
    }

    /// A polyline in the frame, reprojected exactly where the network is projected.
    pub fn line(&self, pts: &[[f64; 2]]) -> Result<Vec<DVec2>, String> {
        match &self.exact {
            None => Ok(pts.iter().map(|&p| self.point(p)).collect()),
            Some((rp, off)) => {
                let (mut xs, mut ys): (Vec<f64>, Vec<f64>) =
                    pts.iter().map(|p| (p[0] - off[0], p[1] - off[1])).unzip();
                rp.transform_in_place(&mut xs, &mut ys)
                    .map_err(|e| e.to_string())?;
                Ok(xs
                    .into_iter()
                    .zip(ys)
                    .map(|(x, y)| DVec2::new(x, y))
                    .collect())
            }
        }
    }
}

/// Least-squares affine map from `src` to (`xs`, `ys`).
fn fit_affine(src: &[[f64; 2]], xs: &[f64], ys: &[f64]) -> Option<[f64; 6]> {
    let n = src.len();
    if n < 3 {
        return None;
    }
    let (cx, cy) = (
        src.iter().map(|p| p[0]).sum::<f64>() / n as f64,
        src.iter().map(|p| p[1]).sum::<f64>() / n as f64,
    );
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    let (mut bx, mut by) = ([0.0; 2], [0.0; 2]);
    let (mx, my) = (
        xs.iter().sum::<f64>() / n as f64,
        ys.iter().sum::<f64>() / n as f64,
    );
    for (i, p) in src.iter().enumerate() {
        let (u, v) = (p[0] - cx, p[1] - cy);
        sxx += u * u;
        sxy += u * v;
        syy += v * v;
        let (tx, ty) = (xs[i] - mx, ys[i] - my);
        bx[0] += u * tx;
        bx[1] += v * tx;
        by[0] += u * ty;
        by[1] += v * ty;
    }
    let det = sxx * syy - sxy * sxy;
    if det.abs() < 1e-9 {
        return None;
    }
    let solve = |b: [f64; 2]| {
        [
            (b[0] * syy - b[1] * sxy) / det,
            (sxx * b[1] - sxy * b[0]) / det,
        ]
    };
    let [a1, a2] = solve(bx);
    let [a4, a5] = solve(by);
    Some([
        mx - a1 * cx - a2 * cy,
        a1,
        a2,
        my - a4 * cx - a5 * cy,
        a4,
        a5,
    ])
}

/// Vehicles mirrored into entities.
#[derive(Resource)]
struct VehicleMirror {
    placement: AffinePlacement,
    layer: String,
    entities: HashMap<u32, Entity>,
    sync_interval_s: f64,
}

fn sync_due(clock: Res<SimClock>, m: Res<VehicleMirror>) -> bool {
    clock.is_every(m.sync_interval_s)
}

/// Roads and junctions as model entities.
fn spawn_network(
    world: &mut World,
    net: &Network,
    place: &Placement,
    layer: &str,
) -> Result<(), String> {
    let mut junctions = Vec::with_capacity(net.junctions.len());
    for j in &net.junctions {
        let signal = j.signal.map(|s| {
            let logic = &net.signals[s as usize];
            SignalProgram {
                offset_s: logic.offset_s,
                phases: logic
                    .phases
                    .iter()
                    .map(|p| SignalPhase {
                        duration_s: p.duration_s,
                        state: String::from_utf8_lossy(&p.state).into_owned(),
                    })
                    .collect(),
            }
        });
        let xy = place.point(j.xy);
        let e = world
            .spawn((
                Intersection { signal },
                Position::new(xy.x, xy.y),
                FeatureId {
                    layer: layer.to_string(),
                    id: j.id.clone(),
                },
                Kind(EntityKind::Intersection),
            ))
            .id();
        junctions.push(e);
    }
    for e in &net.edges {
        let pts = place.line(&e.shape)?;
        if pts.len() < 2 {
            continue;
        }
        let line = geo::LineString::from(pts.iter().map(|p| (p.x, p.y)).collect::<Vec<_>>());
        world.spawn((
            Road {
                name: e.name.clone(),
                lanes: e.lanes.len().min(255) as u8,
                speed_limit_mps: e.speed_mps,
                lane_width_m: 3.2,
                length_m: e.length_m,
                from: junctions.get(e.from as usize).copied(),
                to: junctions.get(e.to as usize).copied(),
            },
            Shape::new(line),
            FeatureId {
                layer: layer.to_string(),
                id: e.id.clone(),
            },
            Kind(EntityKind::Road),
        ));
    }
    Ok(())
}

/// Apply the engine-level road commands (from scenario plugins and couplings) that name this
/// network's roads and intersections; others are reported as events.
fn apply_road_commands(
    mut commands: MessageReader<RoadCommand>,
    mut sim: ResMut<TrafficSim>,
    mirror: Res<VehicleMirror>,
    mut events: ResMut<EventLog>,
    mut intersections: Query<(&FeatureId, &mut Intersection)>,
) {
    let traffic = &mut sim.0;
    for c in commands.read() {
        let (feature, what) = match c {
            RoadCommand::Close { road }
            | RoadCommand::Open { road }
            | RoadCommand::SetSpeed { road, .. } => (road, "road"),
            RoadCommand::SetSignalProgram { intersection, .. } => (intersection, "intersection"),
        };
        let mut problem = None;
        if feature.layer != mirror.layer {
            problem = Some(format!(
                "{feature} is not in the traffic layer '{}'",
                mirror.layer
            ));
        } else {
            match c {
                RoadCommand::Close { .. }
                | RoadCommand::Open { .. }
                | RoadCommand::SetSpeed { .. } => match traffic.net.edge(&feature.id) {
                    None => problem = Some(format!("no road {feature}")),
                    Some(e) => match c {
                        RoadCommand::Close { .. } => traffic.close_edge(e),
                        RoadCommand::Open { .. } => traffic.open_edge(e),
                        RoadCommand::SetSpeed { speed_mps, .. } => {
                            traffic.set_edge_speed(e, *speed_mps)
                        }
                        RoadCommand::SetSignalProgram { .. } => unreachable!("matched above"),
                    },
                },
                RoadCommand::SetSignalProgram { program, .. } => {
                    let signal = traffic
                        .net
                        .junctions
                        .iter()
                        .find(|j| j.id == feature.id)
                        .and_then(|j| j.signal);
                    match signal {
                        None => problem = Some(format!("{feature} has no traffic light")),
                        Some(s) => {
                            let phases = program
                                .phases
                                .iter()
                                .map(|p| net::Phase {
                                    duration_s: p.duration_s,
                                    min_s: p.duration_s,
                                    max_s: p.duration_s,
                                    state: p.state.as_bytes().to_vec(),
                                })
                                .collect();
                            let plan = net::SignalPlan {
                                signal: s,
                                control: net::SignalControl::Static,
                                offset_s: program.offset_s,
                                phases,
                            };
                            match traffic.check_signal_plan(&plan) {
                                Ok(()) => {
                                    traffic.apply_signal_plan(&plan);
                                    // the model shows the program that runs now
                                    if let Some((_, mut i)) =
                                        intersections.iter_mut().find(|(f, _)| *f == feature)
                                    {
                                        i.signal = Some(program.clone());
                                    }
                                }
                                Err(e) => problem = Some(format!("{feature}: {e}")),
                            }
                        }
                    }
                }
            }
        }
        if let Some(message) = problem {
            events.push(SimEvent {
                kind: "traffic.command_ignored".into(),
                entity: None,
                xy_m: None,
                message: format!("{what} command ignored: {message}"),
            });
        }
    }
}

/// Apply the engine-level demand commands to the trips not yet started.
fn apply_demand_commands(
    mut commands: MessageReader<DemandCommand>,
    mut sim: ResMut<TrafficSim>,
    mut out: ResMut<TrafficOutputs>,
    mirror: Res<VehicleMirror>,
    mut events: ResMut<EventLog>,
) {
    for c in commands.read() {
        let message = match *c {
            DemandCommand::Scale {
                factor,
                from_s,
                until_s,
            } => {
                let (dropped, added) = sim.0.scale_demand(factor, from_s, until_s);
                format!(
                    "demand ×{factor} for departures in [{from_s}, {until_s}) s: {dropped} trips dropped, {added} added"
                )
            }
            DemandCommand::AddVehicle {
                ref id,
                kind,
                ref from,
                ref to,
                depart_s,
                signal_priority,
            } => {
                let class = match kind {
                    VehicleKind::Car => net::VClass::Passenger,
                    VehicleKind::Bus => net::VClass::Bus,
                    VehicleKind::Truck => net::VClass::Truck,
                    VehicleKind::Emergency => net::VClass::Emergency,
                };
                let edge = |f: &FeatureId| {
                    (f.layer == mirror.layer)
                        .then(|| sim.0.net.edge(&f.id))
                        .flatten()
                        .ok_or_else(|| format!("no road {f} in layer '{}'", mirror.layer))
                };
                let ends = edge(from).and_then(|a| edge(to).map(|b| (a, b)));
                let added = ends.and_then(|(a, b)| {
                    sim.0
                        .add_trip(id.clone(), class, a, b, depart_s, signal_priority)
                });
                match added {
                    Ok(()) => {
                        out.tracked.insert(id.clone());
                        format!(
                            "vehicle {id} ({kind:?}) added: {} → {} at {depart_s} s{}",
                            from.id,
                            to.id,
                            if signal_priority {
                                ", with signal priority"
                            } else {
                                ""
                            }
                        )
                    }
                    Err(e) => format!("vehicle {id} not added: {e}"),
                }
            }
            DemandCommand::Shift {
                by_s,
                from_s,
                until_s,
            } => {
                let moved = sim.0.shift_demand(by_s, from_s, until_s);
                format!("{moved} departures in [{from_s}, {until_s}) s moved by {by_s} s")
            }
        };
        events.push(SimEvent {
            kind: "traffic.demand_changed".into(),
            entity: None,
            xy_m: None,
            message,
        });
    }
}

fn step_traffic(
    mut sim: ResMut<TrafficSim>,
    mut out: ResMut<TrafficOutputs>,
    mut events: ResMut<EventLog>,
    clock: Res<SimClock>,
) {
    let traffic = &mut sim.0;
    if let Some(TripFile::Pending(path)) = &out.tripinfo {
        out.tripinfo = match tripinfo::TripinfoWriter::create(path) {
            Ok(w) => Some(TripFile::Open(w)),
            Err(e) => {
                events.push(SimEvent {
                    kind: "traffic.output_error".into(),
                    entity: None,
                    xy_m: None,
                    message: format!("cannot write {}: {e}; no trip records", path.display()),
                });
                None
            }
        };
    }
    traffic.step(clock.elapsed_s());
    let done = traffic.take_finished();
    if !done.is_empty() {
        let out = &mut *out;
        for t in done.iter().filter(|t| out.tracked.contains(&t.id)) {
            events.push(SimEvent {
                kind: "traffic.tracked_vehicle_arrived".into(),
                entity: None,
                xy_m: None,
                message: format!(
                    "{} arrived after {:.0} s ({:.0} s lost, {:.0} s standing)",
                    t.id,
                    t.duration_s(),
                    t.time_loss_s,
                    t.waiting_s
                ),
            });
            out.tracked_trips.push(t.clone());
        }
        for t in &done {
            out.interval.n += 1;
            out.interval.duration_sum_s += t.duration_s();
            out.interval.loss_sum_s += t.time_loss_s;
        }
        if let Some(TripFile::Open(w)) = &mut out.tripinfo
            && let Err(e) = w.write(&traffic.net, &done)
        {
            events.push(SimEvent {
                kind: "traffic.output_error".into(),
                entity: None,
                xy_m: None,
                message: format!(
                    "cannot write {}: {e}; trip records stop here",
                    w.path().display()
                ),
            });
            out.tripinfo = None;
        }
        out.all_trips.extend(done);
    }
    let tp = traffic.totals().teleports;
    if tp > out.last_teleports {
        events.push(SimEvent {
            kind: "traffic.teleport".into(),
            entity: None,
            xy_m: None,
            message: format!(
                "{} vehicle(s) stood for too long and jumped ahead",
                tp - out.last_teleports
            ),
        });
        out.last_teleports = tp;
    }
}

fn mirror_vehicles(
    sim: Res<TrafficSim>,
    mut mirror: ResMut<VehicleMirror>,
    mut commands: Commands,
    mut q: Query<(&mut Position, &mut Vehicle)>,
) {
    let traffic = &sim.0;
    let net = &traffic.net;
    let mirror = &mut *mirror;
    let mut alive: HashMap<u32, Entity> = HashMap::with_capacity(mirror.entities.len());
    for v in traffic.vehicles() {
        let xy = mirror
            .placement
            .point(lane_point(net, v.lane, v.pos_m - v.length_m / 2.0));
        let e = match mirror.entities.remove(&v.trip) {
            Some(e) => {
                if let Ok((mut p, mut veh)) = q.get_mut(e) {
                    p.xy_m = xy;
                    veh.speed_mps = v.speed_mps;
                }
                e
            }
            None => commands
                .spawn((
                    Vehicle {
                        kind: match v.class {
                            net::VClass::Passenger => VehicleKind::Car,
                            net::VClass::Bus => VehicleKind::Bus,
                            net::VClass::Truck => VehicleKind::Truck,
                            net::VClass::Emergency => VehicleKind::Emergency,
                        },
                        length_m: v.length_m,
                        max_speed_mps: v.max_speed_mps,
                        speed_mps: v.speed_mps,
                    },
                    Position::new(xy.x, xy.y),
                    FeatureId {
                        layer: mirror.layer.clone(),
                        id: v.id.clone(),
                    },
                    Kind(EntityKind::Vehicle),
                ))
                .id(),
        };
        alive.insert(v.trip, e);
    }
    // What is left arrived: despawn in a fixed order.
    let mut gone: Vec<(u32, Entity)> = mirror.entities.drain().collect();
    gone.sort_unstable_by_key(|g| g.0);
    for (_, e) in gone {
        commands.entity(e).despawn();
    }
    mirror.entities = alive;
}

/// A point `pos_m` along a lane, network coordinates.
pub fn lane_point(net: &Network, lane: net::LaneIx, pos_m: f64) -> [f64; 2] {
    let l = &net.lanes[lane as usize];
    let shape = &l.shape;
    if shape.len() < 2 {
        return shape.first().copied().unwrap_or([0.0, 0.0]);
    }
    let total: f64 = shape
        .windows(2)
        .map(|w| (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1]))
        .sum();
    let mut d = (pos_m.clamp(0.0, l.length_m) / l.length_m) * total;
    for w in shape.windows(2) {
        let seg = (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1]);
        if d <= seg && seg > 0.0 {
            let f = d / seg;
            return [
                w[0][0] + f * (w[1][0] - w[0][0]),
                w[0][1] + f * (w[1][1] - w[0][1]),
            ];
        }
        d -= seg;
    }
    *shape.last().expect("two points")
}

fn traffic_kpis(
    mut sim: ResMut<TrafficSim>,
    mut out: ResMut<TrafficOutputs>,
    mut kpis: ResMut<Kpis>,
    clock: Res<SimClock>,
) {
    let traffic = &mut sim.0;
    let stats = traffic.take_edge_stats();
    let t = traffic.totals().clone();
    kpis.set("traffic.running", "city", traffic.running() as f64, "1");
    kpis.set("traffic.inserted", "city", t.inserted as f64, "1");
    kpis.set("traffic.arrived", "city", t.arrived as f64, "1");
    kpis.set(
        "traffic.waiting_to_insert",
        "city",
        t.waiting_to_insert as f64,
        "1",
    );
    kpis.set("traffic.teleports", "city", t.teleports as f64, "1");
    kpis.set("traffic.reroutes", "city", t.reroutes as f64, "1");
    for p in &out.tracked_trips {
        kpis.set("traffic.vehicle.travel_time_s", &p.id, p.duration_s(), "s");
        kpis.set("traffic.vehicle.time_loss_s", &p.id, p.time_loss_s, "s");
    }
    let iv = std::mem::take(&mut out.interval);
    let (tt, loss) = if iv.n > 0 {
        (iv.duration_sum_s / iv.n as f64, iv.loss_sum_s / iv.n as f64)
    } else {
        (f64::NAN, f64::NAN)
    };
    kpis.set("traffic.mean_travel_time_s", "city", tt, "s");
    kpis.set("traffic.mean_delay_s", "city", loss, "s");
    kpis.set(
        "traffic.travel_time_index",
        "city",
        if t.travel_time_sum_s > t.time_loss_sum_s {
            t.travel_time_sum_s / (t.travel_time_sum_s - t.time_loss_sum_s)
        } else {
            f64::NAN
        },
        "1",
    );
    let (samples, speed_sum) = stats
        .iter()
        .fold((0u64, 0.0), |a, s| (a.0 + s.samples, a.1 + s.speed_sum_mps));
    kpis.set(
        "traffic.mean_speed_mps",
        "city",
        if samples > 0 {
            speed_sum / samples as f64
        } else {
            f64::NAN
        },
        "m/s",
    );
    if out.edge_kpis {
        // The stats cover the steps since the previous KPI sample.
        let interval_steps = match out.last_kpi_tick {
            Some(last) => clock.tick().saturating_sub(last).max(1),
            None => clock.tick() + 1,
        };
        let dt = clock.step_s();
        let secs = interval_steps as f64 * dt;
        for (e, s) in traffic.net.edges.iter().zip(&stats) {
            let id = &e.id;
            let mean = if s.samples > 0 {
                s.speed_sum_mps / s.samples as f64
            } else {
                f64::NAN
            };
            kpis.set("traffic.edge.mean_speed_mps", id, mean, "m/s");
            kpis.set(
                "traffic.edge.flow_vph",
                id,
                s.exits as f64 * 3600.0 / secs,
                "veh/h",
            );
            kpis.set(
                "traffic.edge.density_vpkm",
                id,
                (s.samples as f64 / interval_steps as f64)
                    / (e.length_m / 1000.0)
                    / e.lanes.len() as f64,
                "veh/km/lane",
            );
            kpis.set("traffic.edge.queue_m", id, s.max_queue_m, "m");
            kpis.set("traffic.edge.halting", id, s.max_halting as f64, "1");
        }
    }
    out.last_kpi_tick = Some(clock.tick());
}
