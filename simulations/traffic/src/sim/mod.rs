//! The microscopic simulation core, independent of Bevy: vehicles per lane in contiguous arrays,
//! stepped with SUMO's order of work (signals → plan speeds → move → change lanes → insert).
//!
//! Determinism: every decision walks lanes and vehicles in index order, and every random draw is
//! a counter-based hash of (seed, vehicle, step), so results do not depend on thread count or on
//! the order anything is asked for.
//!
//! The step's parts live in submodules, each an `impl Traffic` block: [`signals`] (controllers,
//! pre-emption), [`junctions`] (approach times, right of way), [`motion`] (speeds, moving,
//! arrivals), [`lanes`] (lane changes), [`insertion`] (insertion, teleports) and [`control`]
//! (what plugins and couplings change at run time).

mod control;
mod insertion;
mod junctions;
mod lanes;
mod motion;
mod signals;

use std::collections::HashSet;
use std::sync::Arc;

use crate::demand::{CarFollowModel, Demand, DepartLane, DepartSpeed, RouteSpec, TripSpec, VType};
use crate::models::{Driver, arrival_time, brake_gap};
use crate::net::{EdgeIx, LaneIx, LinkIx, Network, Phase, Priority, SignalControl, VClass};
use crate::routing::{EdgeCosts, fastest_route, route_via};

const NONE: u32 = u32::MAX;
/// A vehicle slower than this is standing (SUMO's waiting threshold), m/s.
pub const HALTING_SPEED_MPS: f64 = 0.1;
/// Time gap kept to a priority vehicle when crossing in front of it, s (SUMO's default).
const YIELD_TIME_GAP_S: f64 = 1.0;

/// Settings of a traffic simulation.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct TrafficConfig {
    /// Step, s.
    pub dt_s: f64,
    /// Use this model for every vehicle type instead of the types' own.
    pub model_override: Option<CarFollowModel>,
    /// A vehicle standing this long at the head of a lane jumps ahead (SUMO's teleport); 0: never.
    pub teleport_after_s: f64,
    /// Check after every step that no vehicles overlap on a lane and none was lost (costly;
    /// tests). Debug builds always check that none was lost.
    pub check_invariants: bool,
    /// Seed of the random streams.
    pub seed: u64,
}

impl Default for TrafficConfig {
    fn default() -> Self {
        Self {
            dt_s: 1.0,
            model_override: None,
            teleport_after_s: 300.0,
            check_invariants: false,
            seed: 42,
        }
    }
}

/// One finished trip, with SUMO's tripinfo figures.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct TripRecord {
    /// Vehicle id.
    pub id: String,
    /// Vehicle type id.
    pub vtype: String,
    /// Planned departure, s.
    pub planned_depart_s: f64,
    /// Actual insertion, s.
    pub depart_s: f64,
    /// Arrival, s.
    pub arrival_s: f64,
    /// Distance driven, m.
    pub route_length_m: f64,
    /// Time standing (speed ≤ 0.1 m/s), s.
    pub waiting_s: f64,
    /// Time lost against driving at the desired speed, s.
    pub time_loss_s: f64,
    /// Times it was teleported.
    pub teleports: u32,
    /// First and last edge.
    pub depart_edge: EdgeIx,
    /// Last edge.
    pub arrival_edge: EdgeIx,
    /// Whether signals pre-empted for it.
    pub signal_priority: bool,
}

impl TripRecord {
    /// Travel time (SUMO's `duration`), s.
    pub fn duration_s(&self) -> f64 {
        self.arrival_s - self.depart_s
    }
}

/// Per-edge measurements accumulated since the last [`Traffic::take_edge_stats`].
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, Default, PartialEq)]
pub struct EdgeStats {
    /// Vehicle-steps on the edge.
    pub samples: u64,
    /// Sum of speeds over those samples, m/s.
    pub speed_sum_mps: f64,
    /// Vehicles that left the edge.
    pub exits: u64,
    /// Largest number of halting vehicles seen at once.
    pub max_halting: u32,
    /// Longest queue seen, m from the stop line to the back of the last halting vehicle.
    pub max_queue_m: f64,
}

/// Counters of a run.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Totals {
    /// Vehicles inserted.
    pub inserted: u64,
    /// Vehicles arrived.
    pub arrived: u64,
    /// Vehicles waiting for insertion now.
    pub waiting_to_insert: u64,
    /// Trips dropped because no route exists.
    pub unroutable: u64,
    /// Teleports.
    pub teleports: u64,
    /// Vehicles rerouted.
    pub reroutes: u64,
    /// Overlaps found by the collision check.
    pub collisions: u64,
    /// Sum of travel times of arrived trips, s.
    pub travel_time_sum_s: f64,
    /// Sum of time losses of arrived trips, s.
    pub time_loss_sum_s: f64,
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
struct Veh {
    trip: u32,
    vt: u16,
    lane: LaneIx,
    pos_m: f64,
    speed_mps: f64,
    route: Arc<[EdgeIx]>,
    ri: u32,
    next_link: u32,
    speed_factor: f64,
    rng_key: u64,
    depart_s: f64,
    dist_m: f64,
    time_loss_s: f64,
    waiting_s: f64,
    stand_s: f64,
    passed_wait: bool,
    teleports: u32,
    changed_at: f64,
    priority: bool,
}

/// Runtime state of one signal controller: the program it runs (the network's, or one set at
/// run time) and where in it it is.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
struct SignalRt {
    control: SignalControl,
    offset_s: f64,
    phases: Arc<[Phase]>,
    phase: usize,
    phase_start_s: f64,
}

/// A vehicle as the outside sees it (views, snapshots, the ECS mirror).
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct VehicleView {
    /// Index of its trip in the demand (stable for the run).
    pub trip: u32,
    /// Vehicle id.
    pub id: String,
    /// Class.
    pub class: VClass,
    /// Lane.
    pub lane: LaneIx,
    /// Front position along the lane, m.
    pub pos_m: f64,
    /// Speed, m/s.
    pub speed_mps: f64,
    /// Length, m.
    pub length_m: f64,
    /// Top speed, m/s.
    pub max_speed_mps: f64,
}

/// The traffic simulation state.
#[derive(serde::Serialize, serde::Deserialize, Clone)]
pub struct Traffic {
    /// The network.
    pub net: Arc<Network>,
    /// Types.
    pub vtypes: Vec<VType>,
    drivers: Vec<Driver>,
    trips: Vec<TripSpec>,
    next_trip: usize,
    pending: Vec<u32>,
    cfg: TrafficConfig,
    /// Vehicle slots; `None` = free.
    vehs: Vec<Option<Veh>>,
    free_slots: Vec<u32>,
    lane_vehs: Vec<Vec<u32>>,
    signals: Vec<SignalRt>,
    signal_state: Vec<Vec<u8>>,
    /// Last time a vehicle passed each lane's detector, s.
    last_detection_s: Vec<f64>,
    /// Detector position per lane, m along it (NaN: none).
    detector_pos_m: Vec<f64>,
    /// Links into the same lane as each link (merges), empty for most.
    merging: Vec<Vec<LinkIx>>,
    /// Links into each lane.
    into_lane: Vec<Vec<LinkIx>>,
    /// Reused buffer.
    scratch: Vec<u32>,
    /// Vehicles that entered each link.
    link_counts: Vec<u64>,
    /// Speed limit in force per lane, m/s (the network's, unless changed at run time).
    lane_speed_mps: Vec<f64>,
    /// Vehicles with signal priority on the network (pre-emption runs only when there are some).
    priority_vehicles: u32,
    /// Lanes holding vehicles, in index order (refreshed when needed).
    active: Vec<LaneIx>,
    /// Per-step scratch.
    approach_s: Vec<f64>,
    occupied: Vec<bool>,
    space_m: Vec<f64>,
    next_speed: Vec<f64>,
    closed: Vec<bool>,
    /// Router costs (current travel times per edge).
    pub costs: EdgeCosts,
    teleporting: Vec<(u32, u32)>,
    step: u64,
    time_s: f64,
    totals: Totals,
    edge_stats: Vec<EdgeStats>,
    finished: Vec<TripRecord>,
    seed_key: u64,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// A standard normal draw from two uniforms (Box–Muller).
fn normal(u1: f64, u2: f64) -> f64 {
    (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl Traffic {
    /// A simulation of `demand` on `net`.
    pub fn new(net: Arc<Network>, demand: Demand, cfg: TrafficConfig) -> Self {
        let mut vtypes = demand.vtypes;
        if let Some(m) = cfg.model_override {
            for t in &mut vtypes {
                t.model = m;
            }
        }
        let drivers = vtypes
            .iter()
            .map(|t| Driver {
                accel: t.accel_mps2,
                decel: t.decel_mps2,
                tau: t.tau_s,
                sigma: t.sigma,
                min_gap: t.min_gap_m,
                model: t.model,
            })
            .collect();
        let nl = net.lanes.len();
        let mut merging = vec![Vec::new(); net.links.len()];
        let mut into: Vec<Vec<LinkIx>> = vec![Vec::new(); nl];
        for (k, l) in net.links.iter().enumerate() {
            into[l.to_lane as usize].push(k as LinkIx);
        }
        for group in &into {
            if group.len() > 1 {
                for &k in group {
                    merging[k as usize] = group.iter().copied().filter(|&o| o != k).collect();
                }
            }
        }
        let mut detector_pos_m = vec![f64::NAN; nl];
        for s in &net.signals {
            if let SignalControl::Actuated { detector_gap_s, .. } = s.control {
                for links in &s.links {
                    for &k in links {
                        let l = net.links[k as usize].from_lane as usize;
                        let lane = &net.lanes[l];
                        detector_pos_m[l] =
                            (lane.length_m - detector_gap_s * lane.speed_mps).max(0.0);
                    }
                }
            }
        }
        let signal_state = net
            .signals
            .iter()
            .map(|s| s.phases[0].state.clone())
            .collect();
        let signals = net
            .signals
            .iter()
            .map(|s| SignalRt {
                control: s.control,
                offset_s: s.offset_s,
                phases: s.phases.clone().into(),
                phase: 0,
                phase_start_s: 0.0,
            })
            .collect();
        let seed_key = splitmix(cfg.seed ^ 0x7472_6166_6669_6321);
        Self {
            costs: EdgeCosts::free_flow(&net),
            vtypes,
            drivers,
            trips: demand.trips,
            next_trip: 0,
            pending: Vec::new(),
            vehs: Vec::new(),
            free_slots: Vec::new(),
            lane_vehs: vec![Vec::new(); nl],
            signals,
            signal_state,
            last_detection_s: vec![f64::NEG_INFINITY; nl],
            detector_pos_m,
            merging,
            into_lane: into,
            scratch: Vec::new(),
            link_counts: vec![0; net.links.len()],
            lane_speed_mps: net.lanes.iter().map(|l| l.speed_mps).collect(),
            active: Vec::new(),
            priority_vehicles: 0,
            approach_s: vec![f64::INFINITY; net.links.len()],
            occupied: vec![false; net.links.len()],
            space_m: vec![0.0; nl],
            next_speed: Vec::new(),
            closed: vec![false; net.edges.len()],
            teleporting: Vec::new(),
            step: 0,
            time_s: 0.0,
            totals: Totals::default(),
            edge_stats: vec![EdgeStats::default(); net.edges.len()],
            finished: Vec::new(),
            seed_key,
            cfg,
            net,
        }
    }

    /// Simulation time reached, s.
    pub fn time_s(&self) -> f64 {
        self.time_s
    }

    /// Counters.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Vehicles on the network now.
    pub fn running(&self) -> u64 {
        self.totals.inserted - self.totals.arrived
    }

    /// Whether every trip has been inserted and has arrived.
    pub fn is_done(&self) -> bool {
        self.next_trip >= self.trips.len() && self.pending.is_empty() && self.running() == 0
    }

    /// Number of trips in the demand.
    pub fn trip_count(&self) -> usize {
        self.trips.len()
    }

    /// Trips finished since the last call.
    pub fn take_finished(&mut self) -> Vec<TripRecord> {
        std::mem::take(&mut self.finished)
    }

    /// Per-edge measurements since the last call (and reset them).
    pub fn take_edge_stats(&mut self) -> Vec<EdgeStats> {
        let n = self.edge_stats.len();
        std::mem::replace(&mut self.edge_stats, vec![EdgeStats::default(); n])
    }

    /// Vehicles that entered each link since the start, by link index.
    pub fn link_counts(&self) -> &[u64] {
        &self.link_counts
    }

    /// Total time lost so far, s: by arrived trips and by vehicles still driving.
    pub fn total_time_loss_s(&self) -> f64 {
        self.totals.time_loss_sum_s
            + self
                .vehs
                .iter()
                .flatten()
                .map(|v| v.time_loss_s)
                .sum::<f64>()
    }

    /// The current signal state letters of controller `s`.
    pub fn signal_state(&self, s: u32) -> &[u8] {
        &self.signal_state[s as usize]
    }

    /// Every vehicle on the network, in slot order.
    pub fn vehicles(&self) -> impl Iterator<Item = VehicleView> + '_ {
        self.vehs.iter().flatten().map(|v| {
            let t = &self.vtypes[v.vt as usize];
            VehicleView {
                trip: v.trip,
                id: self.trips[v.trip as usize].id.clone(),
                class: t.class,
                lane: v.lane,
                pos_m: v.pos_m,
                speed_mps: v.speed_mps,
                length_m: t.length_m,
                max_speed_mps: t.max_speed_mps,
            }
        })
    }

    /// Vehicles on a lane, front first: (position m, speed m/s).
    pub fn lane_vehicles(&self, lane: LaneIx) -> Vec<(f64, f64)> {
        self.lane_vehs[lane as usize]
            .iter()
            .map(|&s| {
                let v = self.veh(s);
                (v.pos_m, v.speed_mps)
            })
            .collect()
    }

    fn veh(&self, s: u32) -> &Veh {
        self.vehs[s as usize].as_ref().expect("live slot")
    }

    fn veh_mut(&mut self, s: u32) -> &mut Veh {
        self.vehs[s as usize].as_mut().expect("live slot")
    }

    fn len_of(&self, v: &Veh) -> f64 {
        self.vtypes[v.vt as usize].length_m
    }

    /// The speed limit this vehicle applies on a lane (limit × its speed factor, capped by its
    /// top speed).
    fn vmax(&self, v: &Veh, lane: LaneIx) -> f64 {
        (self.lane_speed_mps[lane as usize] * v.speed_factor)
            .min(self.vtypes[v.vt as usize].max_speed_mps)
    }

    /// The speed limit in force on an edge now (its fastest lane), m/s.
    pub fn edge_speed_mps(&self, e: EdgeIx) -> f64 {
        self.net.edges[e as usize]
            .lanes
            .iter()
            .map(|&l| self.lane_speed_mps[l as usize])
            .fold(0.0, f64::max)
    }

    /// The step, s.
    pub fn dt_s(&self) -> f64 {
        self.cfg.dt_s
    }

    /// Advance one step; `time_s` is the time the step reaches (arrivals are stamped with it,
    /// and vehicles due by then are inserted after the move).
    pub fn step(&mut self, time_s: f64) {
        self.time_s = time_s;
        self.update_signals();
        self.prepare();
        self.plan();
        self.execute();
        self.change_lanes();
        self.teleport();
        self.insert();
        self.measure_queues();
        if self.cfg.check_invariants || cfg!(debug_assertions) {
            let on_net = self.vehs.iter().flatten().count() as u64;
            assert_eq!(
                self.totals.inserted,
                self.totals.arrived + on_net,
                "vehicles lost at t = {} s: {:?}",
                self.time_s,
                self.totals
            );
        }
        if self.cfg.check_invariants {
            self.check_collisions();
        }
        self.step += 1;
    }

    #[inline(never)]
    fn measure_queues(&mut self) {
        let net = self.net.clone();
        // lanes occupied at the start of the step (a lane entered only now has no queue yet)
        // lanes of an edge are consecutive in index order, so a pass over the occupied lanes
        // meets each edge's lanes together
        let mut cur: Option<(EdgeIx, u32, f64)> = None;
        for &l in &self.active {
            let lane = &net.lanes[l as usize];
            let Some(e) = lane.edge else { continue };
            let (mut halting, mut queue) = (0u32, 0.0f64);
            for &s in &self.lane_vehs[l as usize] {
                let v = self.veh(s);
                if v.speed_mps <= HALTING_SPEED_MPS {
                    halting += 1;
                    queue = queue.max(lane.length_m - (v.pos_m - self.len_of(v)));
                } else {
                    break; // the queue at the stop line ends at the first moving vehicle
                }
            }
            cur = match cur {
                Some((ce, h, q)) if ce == e => Some((ce, h + halting, q.max(queue))),
                other => {
                    if let Some((ce, h, q)) = other {
                        let st = &mut self.edge_stats[ce as usize];
                        st.max_halting = st.max_halting.max(h);
                        st.max_queue_m = st.max_queue_m.max(q);
                    }
                    Some((e, halting, queue))
                }
            };
        }
        if let Some((ce, h, q)) = cur {
            let st = &mut self.edge_stats[ce as usize];
            st.max_halting = st.max_halting.max(h);
            st.max_queue_m = st.max_queue_m.max(q);
        }
    }

    fn check_collisions(&mut self) {
        for li in 0..self.lane_vehs.len() {
            for w in self.lane_vehs[li].windows(2) {
                let (a, b) = (self.veh(w[0]), self.veh(w[1]));
                if a.pos_m - self.len_of(a) < b.pos_m - 1e-6 {
                    self.totals.collisions += 1;
                }
            }
        }
    }

    /// Feed the state into the engine's state hash.
    pub fn hash_into(&self, h: &mut citytwin_engine::hash::StateHasher) {
        h.u64(self.step);
        h.u64(self.totals.inserted);
        h.u64(self.totals.arrived);
        for (s, v) in self.vehs.iter().enumerate() {
            if let Some(v) = v {
                h.u64(s as u64);
                h.u64(v.trip as u64);
                h.u64(v.lane as u64);
                h.f64(v.pos_m);
                h.f64(v.speed_mps);
            }
        }
        for st in &self.signal_state {
            h.str(std::str::from_utf8(st).unwrap_or(""));
        }
    }
}

/// How many links ahead [`Traffic::links_ahead`] looks at most.
const LINKS_AHEAD: usize = 4;

/// Links ahead of a vehicle with their distances, without allocating.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct LinksAhead {
    links: [(LinkIx, f64); LINKS_AHEAD],
    n: usize,
}

impl LinksAhead {
    fn as_slice(&self) -> &[(LinkIx, f64)] {
        &self.links[..self.n]
    }
}

fn lane_ix(i: usize) -> LaneIx {
    i as LaneIx
}
