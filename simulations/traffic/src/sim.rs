//! The microscopic simulation core, independent of Bevy: vehicles per lane in contiguous arrays,
//! stepped with SUMO's order of work (signals → plan speeds → move → change lanes → insert).
//!
//! Determinism: every decision walks lanes and vehicles in index order, and every random draw is
//! a counter-based hash of (seed, vehicle, step), so results do not depend on thread count or on
//! the order anything is asked for.

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
#[derive(Clone, Debug)]
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
#[derive(Clone, Debug, PartialEq)]
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
#[derive(Clone, Debug, Default, PartialEq)]
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
#[derive(Clone, Debug, Default, PartialEq)]
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

#[derive(Clone, Debug)]
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
#[derive(Clone, Debug)]
struct SignalRt {
    control: SignalControl,
    offset_s: f64,
    phases: Arc<[Phase]>,
    phase: usize,
    phase_start_s: f64,
}

/// A vehicle as the outside sees it (views, snapshots, the ECS mirror).
#[derive(Clone, Debug, PartialEq)]
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
#[derive(Clone)]
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

    // ----- control API (scenario plugins, couplings) -----

    /// Close an edge: no vehicle enters it; vehicles whose remaining route uses it are rerouted.
    pub fn close_edge(&mut self, e: EdgeIx) {
        self.closed[e as usize] = true;
        self.costs.travel_time_s[e as usize] = f64::INFINITY;
        self.reroute_through(e);
    }

    /// Reopen a closed edge.
    pub fn open_edge(&mut self, e: EdgeIx) {
        self.closed[e as usize] = false;
        self.costs.travel_time_s[e as usize] =
            self.net.edges[e as usize].length_m / self.edge_speed_mps(e);
    }

    /// Whether an edge is closed.
    pub fn is_closed(&self, e: EdgeIx) -> bool {
        self.closed[e as usize]
    }

    /// Set the speed limit of every lane of an edge (e.g. flooding); vehicles with the edge
    /// ahead on their route are rerouted if another route is now faster.
    ///
    /// Cheap enough to call every step (a flood coupling may): it changes the simulation's
    /// speed table, never the network.
    pub fn set_edge_speed(&mut self, e: EdgeIx, speed_mps: f64) {
        let speed = speed_mps.max(0.1);
        let net = self.net.clone();
        for &l in &net.edges[e as usize].lanes {
            self.lane_speed_mps[l as usize] = speed;
        }
        if !self.closed[e as usize] {
            self.costs.travel_time_s[e as usize] = net.edges[e as usize].length_m / speed;
        }
        self.reroute_through(e);
    }

    /// Replace a signal controller's phases (same number of controlled links); the new program
    /// starts at its first phase now.
    pub fn set_signal_program(&mut self, s: u32, phases: Vec<Phase>) -> Result<(), String> {
        let n = self.net.signals[s as usize].links.len();
        if phases.is_empty() {
            return Err("a signal program needs at least one phase".into());
        }
        if let Some(p) = phases.iter().find(|p| p.state.len() != n) {
            return Err(format!(
                "phase '{}' controls {} links but the controller has {n}",
                String::from_utf8_lossy(&p.state),
                p.state.len()
            ));
        }
        let rt = &mut self.signals[s as usize];
        self.signal_state[s as usize] = phases[0].state.clone();
        rt.phases = phases.into();
        rt.phase = 0;
        rt.phase_start_s = self.time_s;
        // a fixed-time program starts its cycle now
        rt.offset_s = 0.0;
        Ok(())
    }

    /// Add one trip (from edge to edge, routed at departure) of class `class`; `signal_priority`
    /// makes signals pre-empt for it. Errors if no route exists now.
    pub fn add_trip(
        &mut self,
        id: String,
        class: VClass,
        from: EdgeIx,
        to: EdgeIx,
        depart_s: f64,
        signal_priority: bool,
    ) -> Result<(), String> {
        if fastest_route(&self.net, &self.costs, class, from, to).is_none() {
            return Err(format!(
                "no route for {} from {} to {}",
                class.sumo_name(),
                self.net.edges[from as usize].id,
                self.net.edges[to as usize].id
            ));
        }
        let vtype = self
            .vtypes
            .iter()
            .position(|t| t.class == class)
            .unwrap_or(0) as u16;
        let spec = TripSpec {
            id,
            vtype,
            depart_s: depart_s.max(self.time_s),
            route: RouteSpec::Trip {
                from,
                to,
                via: Vec::new(),
            },
            depart_lane: DepartLane::Best,
            depart_speed: DepartSpeed::Max,
            depart_pos_m: None,
            signal_priority,
        };
        let at = self.next_trip
            + self.trips[self.next_trip..].partition_point(|t| t.depart_s <= spec.depart_s);
        self.trips.insert(at, spec);
        Ok(())
    }

    /// Scale the trips not yet due whose departure lies in `[from_s, until_s)` by `factor`:
    /// below 1 a share of them is dropped, above 1 copies are added (departing a second apart
    /// after the original); which ones is decided by the seed. Returns (dropped, added).
    pub fn scale_demand(&mut self, factor: f64, from_s: f64, until_s: f64) -> (usize, usize) {
        let factor = factor.max(0.0);
        let start = self.next_trip;
        let tail: Vec<TripSpec> = self.trips.drain(start..).collect();
        let (mut dropped, mut added) = (0, 0);
        let mut kept = Vec::with_capacity(tail.len());
        for (i, t) in tail.into_iter().enumerate() {
            if !(from_s..until_s).contains(&t.depart_s) {
                kept.push(t);
                continue;
            }
            let u = unit(splitmix(
                self.seed_key ^ 0x6465_6d61_6e64 ^ ((start + i) as u64).wrapping_mul(0x9E37_79B9),
            ));
            let copies = factor.floor() as usize + usize::from(u < factor.fract());
            if copies == 0 {
                dropped += 1;
            }
            for k in 0..copies {
                let mut c = t.clone();
                if k > 0 {
                    c.id = format!("{}.x{k}", t.id);
                    c.depart_s += k as f64;
                    added += 1;
                }
                kept.push(c);
            }
        }
        kept.sort_by(|a, b| a.depart_s.total_cmp(&b.depart_s));
        self.trips.extend(kept);
        (dropped, added)
    }

    /// Move the departures of trips not yet due in `[from_s, until_s)` by `by_s` (never before
    /// now). Returns how many moved.
    pub fn shift_demand(&mut self, by_s: f64, from_s: f64, until_s: f64) -> usize {
        let now = self.time_s;
        let start = self.next_trip;
        let mut moved = 0;
        for t in &mut self.trips[start..] {
            if (from_s..until_s).contains(&t.depart_s) {
                t.depart_s = (t.depart_s + by_s).max(now + self.cfg.dt_s);
                moved += 1;
            }
        }
        self.trips[start..].sort_by(|a, b| a.depart_s.total_cmp(&b.depart_s));
        moved
    }

    /// Whether a plan fits its controller: phases, each controlling all its links.
    pub fn check_signal_plan(&self, plan: &crate::net::SignalPlan) -> Result<(), String> {
        let Some(logic) = self.net.signals.get(plan.signal as usize) else {
            return Err(format!("no signal controller {}", plan.signal));
        };
        let n = logic.links.len();
        if plan.phases.is_empty() {
            return Err("a signal program needs at least one phase".into());
        }
        if let Some(p) = plan.phases.iter().find(|p| p.state.len() != n) {
            return Err(format!(
                "phase '{}' controls {} movements but the traffic light has {n}",
                String::from_utf8_lossy(&p.state),
                p.state.len()
            ));
        }
        if plan
            .phases
            .iter()
            .any(|p| p.duration_s.is_nan() || p.duration_s <= 0.0)
        {
            return Err("phase durations must be positive".into());
        }
        Ok(())
    }

    /// Run a signal plan (its control, offset and phases) from now on.
    pub fn apply_signal_plan(&mut self, plan: &crate::net::SignalPlan) {
        let rt = &mut self.signals[plan.signal as usize];
        rt.control = plan.control;
        rt.offset_s = plan.offset_s;
        rt.phases = plan.phases.clone().into();
        rt.phase = 0;
        rt.phase_start_s = self.time_s;
        self.signal_state[plan.signal as usize] = plan.phases[0].state.clone();
    }

    /// The step, s.
    pub fn dt_s(&self) -> f64 {
        self.cfg.dt_s
    }

    /// Switch controller `s` between fixed-time and actuated control.
    pub fn set_signal_control(&mut self, s: u32, control: SignalControl) {
        self.signals[s as usize].control = control;
    }

    /// The program controller `s` runs now: its control, offset (s) and phases.
    pub fn signal_program(&self, s: u32) -> (SignalControl, f64, &[Phase]) {
        let rt = &self.signals[s as usize];
        (rt.control, rt.offset_s, &rt.phases)
    }

    fn reroute_through(&mut self, e: EdgeIx) {
        let net = self.net.clone();
        for s in 0..self.vehs.len() {
            let Some(v) = &self.vehs[s] else { continue };
            let ahead = &v.route[v.ri as usize + 1..];
            if !ahead.contains(&e) {
                continue;
            }
            let cur = v.route[v.ri as usize];
            let dest = *v.route.last().expect("routes are not empty");
            let class = self.vtypes[v.vt as usize].class;
            // From the current edge; a vehicle on a link lane is already committed to the next.
            let on_link = net.lanes[v.lane as usize].edge.is_none();
            let start = if on_link {
                v.route[v.ri as usize + 1]
            } else {
                cur
            };
            if start == e {
                continue;
            }
            if let Some(mut r) = fastest_route(&net, &self.costs, class, start, dest) {
                let mut new_route: Vec<EdgeIx> =
                    v.route[..v.ri as usize + usize::from(on_link)].to_vec();
                new_route.append(&mut r);
                let new_route: Arc<[EdgeIx]> = new_route.into();
                if new_route[..] != v.route[..] {
                    let v = self.vehs[s].as_mut().expect("live");
                    v.route = new_route;
                    self.totals.reroutes += 1;
                    if !on_link {
                        let nl = self.pick_link(s as u32);
                        self.veh_mut(s as u32).next_link = nl;
                    }
                }
            }
        }
    }

    // ----- stepping -----

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
    fn update_signals(&mut self) {
        let t = self.time_s;
        let net = self.net.clone();
        for (i, s) in net.signals.iter().enumerate() {
            let rt = &mut self.signals[i];
            let phases = rt.phases.clone();
            match rt.control {
                SignalControl::Static => {
                    let cycle: f64 = phases.iter().map(|p| p.duration_s).sum();
                    let mut x = (t - rt.offset_s - rt.phase_start_s).rem_euclid(cycle);
                    let mut k = 0;
                    while k + 1 < phases.len() && x >= phases[k].duration_s {
                        x -= phases[k].duration_s;
                        k += 1;
                    }
                    rt.phase = k;
                }
                SignalControl::Actuated { max_gap_s, .. } => {
                    let p = &phases[rt.phase];
                    let elapsed = t - rt.phase_start_s;
                    let actuated = p.min_s < p.max_s;
                    let switch = if !actuated {
                        elapsed >= p.duration_s
                    } else if elapsed < p.min_s {
                        false
                    } else if elapsed >= p.max_s {
                        true
                    } else {
                        // extend while any green lane saw a vehicle within the gap
                        let recent = p
                            .state
                            .iter()
                            .enumerate()
                            .filter(|(_, c)| matches!(c, b'G' | b'g'))
                            .flat_map(|(idx, _)| &s.links[idx])
                            .any(|&k| {
                                let l = net.links[k as usize].from_lane as usize;
                                t - self.last_detection_s[l] < max_gap_s
                            });
                        !recent
                    };
                    if switch {
                        rt.phase = (rt.phase + 1) % phases.len();
                        rt.phase_start_s = t;
                    }
                }
            }
            self.signal_state[i].clone_from(&phases[rt.phase].state);
        }
        self.preempt_for_priority_vehicles();
    }

    /// Signals turn green ahead of vehicles with signal priority: within 200 m or 20 s of a
    /// signalised link on its route, the controller jumps to (and holds) a phase that gives
    /// that link green. Vehicles already in the junction are not stopped by this: drivers of
    /// conflicting movements see red at once, as when an emergency vehicle pre-empts.
    fn preempt_for_priority_vehicles(&mut self) {
        const RANGE_M: f64 = 200.0;
        const RANGE_S: f64 = 20.0;
        let net = self.net.clone();
        let mut wanted: Vec<(u32, u16)> = Vec::new();
        for v in self.vehs.iter().flatten().filter(|v| v.priority) {
            let range = RANGE_M.min(RANGE_S * v.speed_mps.max(1.0));
            // the next signal on its way only
            if let Some(sig) = self
                .links_ahead(v, range)
                .as_slice()
                .iter()
                .find_map(|&(k, _)| net.links[k as usize].signal)
            {
                wanted.push(sig);
            }
        }
        for (s, idx) in wanted {
            let now = self.time_s;
            let rt = &mut self.signals[s as usize];
            let phases = rt.phases.clone();
            let green = |p: &Phase| matches!(p.state[idx as usize], b'G' | b'g');
            // hold the current phase if it is green for the vehicle, else jump to one that is
            let p = if green(&phases[rt.phase]) {
                Some(rt.phase)
            } else {
                phases.iter().position(green)
            };
            if let Some(p) = p {
                rt.phase = p;
                rt.phase_start_s = match rt.control {
                    // a fixed-time cycle is shifted so that phase p starts now
                    SignalControl::Static => {
                        now - rt.offset_s - phases[..p].iter().map(|q| q.duration_s).sum::<f64>()
                    }
                    SignalControl::Actuated { .. } => now,
                };
            }
            self.signal_state[s as usize].clone_from(&phases[rt.phase].state);
        }
    }

    /// State letter of a link now: signal letter, or `M`/`m` from its priority.
    fn link_state(&self, k: LinkIx) -> u8 {
        let link = &self.net.links[k as usize];
        if self.closed[link.to_edge as usize] {
            return b'r';
        }
        match link.signal {
            Some((s, i)) => {
                let c = self.signal_state[s as usize][i as usize];
                if c == b'o' || c == b'O' {
                    if link.priority == Priority::Major {
                        b'M'
                    } else {
                        b'm'
                    }
                } else {
                    c
                }
            }
            None => {
                if link.priority == Priority::Major {
                    b'M'
                } else {
                    b'm'
                }
            }
        }
    }

    /// Per-step tables from the state before anyone moves: who approaches which link and when,
    /// which links have vehicles inside, how much room each lane has at its start.
    #[inline(never)]
    fn prepare(&mut self) {
        self.approach_s.fill(f64::INFINITY);
        self.occupied.fill(false);
        let net = self.net.clone();
        self.refresh_active();
        for (sp, lane) in self.space_m.iter_mut().zip(&net.lanes) {
            *sp = lane.length_m;
        }
        let active = std::mem::take(&mut self.active);
        for &li in &active {
            let li = li as usize;
            let lane = &net.lanes[li];
            let vs = &self.lane_vehs[li];
            // room at the start of the lane
            self.space_m[li] = match vs.last() {
                Some(&s) => {
                    let v = self.veh(s);
                    let back = v.pos_m - self.len_of(v);
                    if v.speed_mps > 1.0 {
                        lane.length_m
                    } else {
                        back
                    }
                }
                None => lane.length_m,
            };
            if let Some(k) = lane.link {
                let link = &net.links[k as usize];
                for &s in vs {
                    let v = self.veh(s);
                    // a vehicle waiting at its internal stop does not block anyone
                    let waiting = link.wait_pos_m.is_some()
                        && !v.passed_wait
                        && v.speed_mps < HALTING_SPEED_MPS;
                    if !waiting {
                        self.occupied[k as usize] = true;
                    }
                }
            }
        }
        // vehicles already on link lanes take room on the lane they lead to
        for &li in &active {
            let li = li as usize;
            if let Some(k) = net.lanes[li].link {
                let to = net.links[k as usize].to_lane as usize;
                for &s in &self.lane_vehs[li] {
                    let v = self.veh(s);
                    self.space_m[to] -= self.len_of(v) + self.drivers[v.vt as usize].min_gap;
                }
            }
        }
        self.active = active;
        self.register_approaches();
    }

    /// The lanes that hold vehicles now, in index order.
    fn refresh_active(&mut self) {
        self.active.clear();
        for v in self.vehs.iter().flatten() {
            self.active.push(v.lane);
        }
        self.active.sort_unstable();
        self.active.dedup();
    }

    /// The links ahead of vehicle `v` along its route, each with the distance to its stop line
    /// (m), while that distance stays under `max_m`: at most [`LINKS_AHEAD`] of them, in a
    /// fixed array (this runs for every lane's first vehicle every step).
    fn links_ahead(&self, v: &Veh, max_m: f64) -> LinksAhead {
        let net = &self.net;
        let class = self.vtypes[v.vt as usize].class;
        let mut out = LinksAhead::default();
        let mut seen = net.lanes[v.lane as usize].length_m - v.pos_m;
        let mut ri = v.ri as usize;
        let mut cur = v.lane;
        while seen < max_m && out.n < LINKS_AHEAD {
            let k = if let Some(k0) = net.lanes[cur as usize].link {
                // through the link to the lane after it
                cur = net.links[k0 as usize].to_lane;
                ri += 1;
                seen += net.lanes[cur as usize].length_m;
                continue;
            } else if ri + 1 >= v.route.len() {
                break;
            } else if cur == v.lane {
                v.next_link
            } else {
                self.best_link(cur, v.route[ri + 1], v.route.get(ri + 2).copied(), class)
            };
            if k == NONE {
                break;
            }
            out.links[out.n] = (k, seen);
            out.n += 1;
            cur = net.links[k as usize].lane;
            seen += net.lanes[cur as usize].length_m;
        }
        out
    }

    /// When the first vehicle of each lane reaches the links ahead of it (within a short
    /// horizon, so short lanes and links do not hide a vehicle about to arrive), for vehicles
    /// that will pass them: `approach_s` per link, s from now.
    fn register_approaches(&mut self) {
        const HORIZON_M: f64 = 60.0;
        let mut found: Vec<(LinkIx, f64)> = Vec::new();
        for &li in &self.active {
            let Some(&s) = self.lane_vehs[li as usize].first() else {
                continue;
            };
            let v = self.veh(s);
            let d = &self.drivers[v.vt as usize];
            let vmax = self.vmax(v, li);
            for &(k, seen) in self.links_ahead(v, HORIZON_M).as_slice() {
                let passing = match self.link_state(k) {
                    b'G' | b'M' => true,
                    b'g' | b'm' => v.speed_mps > HALTING_SPEED_MPS,
                    b'y' | b'Y' => brake_gap(v.speed_mps, d.decel, self.cfg.dt_s, 0.0) > seen,
                    _ => false,
                };
                if !passing {
                    break;
                }
                found.push((k, arrival_time(seen, v.speed_mps, d.accel, vmax)));
            }
        }
        for (k, t) in found {
            let a = &mut self.approach_s[k as usize];
            *a = a.min(t);
        }
    }

    /// Whether the vehicle may pass link `k` now, `seen` m ahead: signal, right of way (unless it
    /// yields inside the junction instead), and room behind the junction.
    fn link_open(&self, v: &Veh, k: LinkIx, seen: f64, check_yield: bool) -> bool {
        let d = &self.drivers[v.vt as usize];
        let st = self.link_state(k);
        let link = &self.net.links[k as usize];
        let minor = match st {
            b'G' | b'M' => false,
            b'g' | b'm' | b's' | b'w' => true,
            b'y' | b'Y' => {
                if brake_gap(v.speed_mps, d.decel, self.cfg.dt_s, 0.0) <= seen {
                    return false;
                }
                false
            }
            _ => return false,
        };
        // keep the junction clear: enter only if there is room behind it
        let len = self.len_of(v);
        let to = &self.net.lanes[link.to_lane as usize];
        let need = (len + d.min_gap).min(to.length_m);
        if self.space_m[link.to_lane as usize] < need
            && brake_gap(v.speed_mps, d.decel, self.cfg.dt_s, 0.0) <= seen
        {
            return false;
        }
        if minor && check_yield && link.wait_pos_m.is_none() {
            return !self.must_yield(v, k, seen, 0.0);
        }
        true
    }

    /// Whether a vehicle `seen` m before its decision point on link `k` must let a foe go first.
    fn must_yield(&self, v: &Veh, k: LinkIx, seen: f64, from_pos: f64) -> bool {
        let link = &self.net.links[k as usize];
        if link.yields_to.is_empty() {
            return false;
        }
        let d = &self.drivers[v.vt as usize];
        let ll = &self.net.lanes[link.lane as usize];
        let vlink = self.vmax(v, link.lane);
        let t_arrive = arrival_time(seen, v.speed_mps, d.accel, vlink);
        let cross = (ll.length_m - from_pos).max(0.0) + self.len_of(v);
        let t_clear = t_arrive + arrival_time(cross, v.speed_mps.min(vlink), d.accel, vlink);
        link.yields_to.iter().any(|&f| {
            self.occupied[f as usize] || self.approach_s[f as usize] < t_clear + YIELD_TIME_GAP_S
        })
    }

    #[inline(never)]
    fn plan(&mut self) {
        let dt = self.cfg.dt_s;
        self.next_speed.resize(self.vehs.len(), 0.0);
        let net = self.net.clone();
        let active = std::mem::take(&mut self.active);
        for &li in &active {
            let li = li as usize;
            let n = self.lane_vehs[li].len();
            for i in 0..n {
                let s = self.lane_vehs[li][i];
                let leader = if i > 0 {
                    Some(self.lane_vehs[li][i - 1])
                } else {
                    None
                };
                let v = self.plan_one(s, leader, &net, dt);
                self.next_speed[s as usize] = v;
            }
        }
        self.active = active;
    }

    #[inline(never)]
    fn plan_one(&self, s: u32, leader: Option<u32>, net: &Network, dt: f64) -> f64 {
        let v = self.veh(s);
        let d = &self.drivers[v.vt as usize];
        let speed = v.speed_mps;
        let lane = &net.lanes[v.lane as usize];
        let vmax_here = self.vmax(v, v.lane);
        let mut vsafe = d.free_road_speed(speed, vmax_here, dt);
        let lookahead = brake_gap(vmax_here.max(speed) + d.accel * dt, d.decel, dt, 0.0)
            + vmax_here * dt
            + 10.0;
        if let Some(l) = leader {
            let lv = self.veh(l);
            let gap = lv.pos_m - self.len_of(lv) - v.pos_m - d.min_gap;
            vsafe = vsafe.min(self.follow(d, speed, gap, l, dt));
        }
        // merging links: vehicles on other links into the same lane that are closer to it
        if let Some(k) = lane.link {
            // wait inside the junction for the links this one yields to, unless already too
            // close to stop there without braking harder than usual (then it is committed)
            if let Some(wp) = net.links[k as usize].wait_pos_m
                && !v.passed_wait
                && v.pos_m <= wp + 0.01
                && brake_gap(speed, d.decel, dt, 0.0) <= wp - v.pos_m + 1e-6
                && self.must_yield(v, k, wp - v.pos_m, wp)
            {
                vsafe = vsafe.min(d.stop_speed(speed, wp - v.pos_m, dt));
            }
            vsafe = vsafe.min(self.merge_speed(s, k, lane.length_m - v.pos_m, dt));
        }
        // the road ahead: stop lines, slower lanes, the next leader
        let mut seen = lane.length_m - v.pos_m;
        let mut cur_lane = v.lane;
        let mut ri = v.ri as usize;
        let mut link = if lane.link.is_some() {
            NONE
        } else {
            v.next_link
        };
        let mut first = true;
        while seen < lookahead {
            let cl = &net.lanes[cur_lane as usize];
            let next_lane;
            if let Some(k) = cl.link {
                // on a link lane: the lane after it
                next_lane = net.links[k as usize].to_lane;
                ri += 1;
            } else {
                if ri + 1 >= v.route.len() {
                    break; // it arrives at the end of this edge
                }
                if link == NONE {
                    // wrong lane for the route: stop at the lane end until it can change
                    if first {
                        vsafe = vsafe.min(d.stop_speed(speed, seen, dt));
                    }
                    break;
                }
                if !self.link_open(v, link, seen, true) {
                    vsafe = vsafe.min(d.stop_speed(speed, seen, dt));
                    break;
                }
                next_lane = net.links[link as usize].lane;
            }
            first = false;
            // slow down in time for a lower limit ahead
            let vnext = self.vmax(v, next_lane);
            if vnext < vsafe {
                vsafe = vsafe.min(crate::models::free_speed(seen, vnext, d.decel, dt));
            }
            // A leader on our lane that takes the same link shields us from what lies beyond
            // it; one that turns elsewhere does not.
            let shielded = leader.is_some_and(|l| {
                let lv = self.veh(l);
                net.lanes[cur_lane as usize].link.is_some() || lv.next_link == link
            });
            if !shielded && net.lanes[next_lane as usize].link.is_some() {
                // others merging into the lane behind this link, closer to it than we are
                let rem = seen + net.lanes[next_lane as usize].length_m;
                vsafe = vsafe.min(self.merge_speed(s, link, rem, dt));
            }
            // the first vehicle ahead on the next lane
            if !shielded
                && let Some(&l) = self.lane_vehs[next_lane as usize].last()
                && l != s
            {
                let lv = self.veh(l);
                let gap = seen + lv.pos_m - self.len_of(lv) - d.min_gap;
                vsafe = vsafe.min(self.follow(d, speed, gap, l, dt));
                break;
            }
            if shielded {
                break;
            }
            seen += net.lanes[next_lane as usize].length_m;
            cur_lane = next_lane;
            if net.lanes[cur_lane as usize].link.is_none() {
                // entering a normal lane: which link from it
                link = if ri + 1 < v.route.len() {
                    self.best_link(
                        cur_lane,
                        v.route[ri + 1],
                        v.route.get(ri + 2).copied(),
                        self.vtypes[v.vt as usize].class,
                    )
                } else {
                    NONE
                };
                if link == NONE && ri + 1 < v.route.len() {
                    // it must change lanes there; until it has, that lane's end is a stop
                    let end = seen + net.lanes[cur_lane as usize].length_m;
                    vsafe = vsafe.min(d.stop_speed(speed, end, dt));
                    break;
                }
            }
        }
        // Krauss / IDM finishing: bounded deceleration unless safety needs more, then dawdle.
        let vmin = (speed - d.decel * dt).max(0.0).min(vsafe);
        let vmaxn = vsafe.min(speed + d.accel * dt).max(vmin);
        let u = unit(splitmix(
            v.rng_key ^ self.step.wrapping_mul(0xD6E8_FEB8_6659_FD93),
        ));
        d.dawdle(vmaxn, u, dt).max(vmin)
    }

    /// The safe speed of a driver at `speed` behind vehicle `l`, `gap` metres (net of the
    /// minimum gap) ahead.
    fn follow(&self, d: &Driver, speed: f64, gap: f64, l: u32, dt: f64) -> f64 {
        let lv = self.veh(l);
        d.follow_speed(
            speed,
            gap,
            lv.speed_mps,
            self.drivers[lv.vt as usize].decel,
            dt,
        )
    }

    /// The safe speed behind vehicles on the other links into the lane that link `k` leads to,
    /// counting only those closer to that lane than our `rem` metres.
    fn merge_speed(&self, s: u32, k: LinkIx, rem: f64, dt: f64) -> f64 {
        let net = &self.net;
        let v = self.veh(s);
        let d = &self.drivers[v.vt as usize];
        let mut vsafe = f64::INFINITY;
        for &o in &self.merging[k as usize] {
            let ol = net.links[o as usize].lane as usize;
            let olen = net.lanes[ol].length_m;
            // the rearmost vehicle on `o` that is still ahead of us
            let mut best: Option<(f64, u32)> = None;
            let waits_at = net.links[o as usize].wait_pos_m;
            for &os in &self.lane_vehs[ol] {
                let ov = self.veh(os);
                // one standing at its internal waiting point gives way; it is no leader yet
                if waits_at.is_some() && !ov.passed_wait && ov.speed_mps <= HALTING_SPEED_MPS {
                    continue;
                }
                let orem = olen - ov.pos_m;
                if (orem < rem || (orem == rem && os < s)) && best.is_none_or(|b| orem > b.0) {
                    best = Some((orem, os));
                }
            }
            if let Some((orem, os)) = best {
                let ov = self.veh(os);
                let gap = rem - orem - self.len_of(ov) - d.min_gap;
                vsafe = vsafe.min(self.follow(d, v.speed_mps, gap, os, dt));
            }
        }
        vsafe
    }

    /// The link from `lane` to `to_edge` for a vehicle class, preferring one whose target lane
    /// continues to `after` (the edge after it), or `NONE`.
    fn best_link(
        &self,
        lane: LaneIx,
        to_edge: EdgeIx,
        after: Option<EdgeIx>,
        class: VClass,
    ) -> u32 {
        let net = &self.net;
        let mut found = NONE;
        for &k in &net.lanes[lane as usize].links {
            let link = &net.links[k as usize];
            if link.to_edge != to_edge || net.lanes[link.to_lane as usize].allow & class.bit() == 0
            {
                continue;
            }
            let continues = match after {
                Some(a) => net.lanes[link.to_lane as usize]
                    .links
                    .iter()
                    .any(|&k2| net.links[k2 as usize].to_edge == a),
                None => true,
            };
            if continues {
                return k;
            }
            if found == NONE {
                found = k;
            }
        }
        found
    }

    fn pick_link(&self, s: u32) -> u32 {
        let v = self.veh(s);
        let ri = v.ri as usize;
        if ri + 1 >= v.route.len() {
            return NONE;
        }
        self.best_link(
            v.lane,
            v.route[ri + 1],
            v.route.get(ri + 2).copied(),
            self.vtypes[v.vt as usize].class,
        )
    }

    #[inline(never)]
    fn execute(&mut self) {
        let dt = self.cfg.dt_s;
        let net = self.net.clone();
        let mut moved: Vec<(u32, LaneIx)> = Vec::new();
        let active = std::mem::take(&mut self.active);
        for &li in &active {
            let li = li as usize;
            let mut leave = 0;
            let n = self.lane_vehs[li].len();
            for i in 0..n {
                let s = self.lane_vehs[li][i];
                let vnew = self.next_speed[s as usize];
                let vm = {
                    let v = self.veh(s);
                    self.vmax(v, v.lane)
                };
                let det = self.detector_pos_m[li];
                let v = self.veh_mut(s);
                let old_pos = v.pos_m;
                v.speed_mps = vnew;
                v.pos_m += vnew * dt;
                v.dist_m += vnew * dt;
                if vm > 0.0 {
                    v.time_loss_s += dt * ((vm - vnew) / vm).max(0.0);
                }
                if vnew <= HALTING_SPEED_MPS {
                    v.waiting_s += dt;
                    v.stand_s += dt;
                } else {
                    v.stand_s = 0.0;
                }
                if let Some(k) = net.lanes[li].link
                    && let Some(wp) = net.links[k as usize].wait_pos_m
                    && v.pos_m > wp
                {
                    v.passed_wait = true;
                }
                // the detector sees a vehicle pass (fronts crossing it)
                let crossed_detector = old_pos < det && v.pos_m >= det;
                let left = v.pos_m >= net.lanes[li].length_m;
                if crossed_detector {
                    self.last_detection_s[li] = self.time_s;
                }
                if let Some(e) = net.lanes[li].edge {
                    let st = &mut self.edge_stats[e as usize];
                    st.samples += 1;
                    st.speed_sum_mps += vnew;
                }
                if left {
                    leave = i + 1;
                }
            }
            // Vehicles leave a lane from its front; a vehicle can only leave if all ahead did.
            if leave == 0 {
                continue;
            }
            let mut leaving = std::mem::take(&mut self.scratch);
            leaving.clear();
            leaving.extend(self.lane_vehs[li].drain(..leave));
            for &s in &leaving {
                if let Some(to) = self.advance_lane(s, lane_ix(li)) {
                    moved.push((s, to));
                }
            }
            self.scratch = leaving;
        }
        self.active = active;
        let mut touched: Vec<LaneIx> = Vec::new();
        for (s, to) in moved {
            self.lane_vehs[to as usize].push(s);
            touched.push(to);
        }
        touched.sort_unstable();
        touched.dedup();
        for l in touched {
            let mut vs = std::mem::take(&mut self.lane_vehs[l as usize]);
            vs.sort_by(|&a, &b| {
                let (va, vb) = (self.veh(a), self.veh(b));
                vb.pos_m.total_cmp(&va.pos_m).then(a.cmp(&b))
            });
            self.lane_vehs[l as usize] = vs;
        }
    }

    /// Carry a vehicle past the end of its lane; `None` if it arrived.
    fn advance_lane(&mut self, s: u32, from: LaneIx) -> Option<LaneIx> {
        let net = self.net.clone();
        let mut lane = from;
        loop {
            let l = &net.lanes[lane as usize];
            let v = self.veh(s);
            if v.pos_m < l.length_m {
                return Some(lane);
            }
            let over = v.pos_m - l.length_m;
            let (last_edge, k) = (v.ri as usize + 1 >= v.route.len(), v.next_link);
            if let Some(e) = l.edge {
                self.edge_stats[e as usize].exits += 1;
                if last_edge {
                    self.arrive(s);
                    return None;
                }
                if k == NONE {
                    // should not happen: it was told to stop; hold it at the lane end
                    let v = self.veh_mut(s);
                    v.pos_m = l.length_m - 0.01;
                    v.speed_mps = 0.0;
                    return Some(lane);
                }
                self.link_counts[k as usize] += 1;
                let v = self.veh_mut(s);
                v.lane = net.links[k as usize].lane;
                v.pos_m = over;
                v.passed_wait = false;
                lane = v.lane;
            } else {
                let k = l.link.expect("link lane");
                let v = self.veh_mut(s);
                v.lane = net.links[k as usize].to_lane;
                v.pos_m = over;
                v.ri += 1;
                lane = v.lane;
                let nl = self.pick_link(s);
                self.veh_mut(s).next_link = nl;
            }
        }
    }

    fn arrive(&mut self, s: u32) {
        let v = self.vehs[s as usize].take().expect("live");
        self.free_slots.push(s);
        let trip = &self.trips[v.trip as usize];
        let rec = TripRecord {
            id: trip.id.clone(),
            vtype: self.vtypes[v.vt as usize].id.clone(),
            planned_depart_s: trip.depart_s,
            depart_s: v.depart_s,
            arrival_s: self.time_s,
            route_length_m: v.dist_m,
            waiting_s: v.waiting_s,
            time_loss_s: v.time_loss_s,
            teleports: v.teleports,
            depart_edge: v.route[0],
            arrival_edge: *v.route.last().expect("route"),
            signal_priority: v.priority,
        };
        self.totals.arrived += 1;
        self.totals.travel_time_sum_s += rec.duration_s();
        self.totals.time_loss_sum_s += rec.time_loss_s;
        self.finished.push(rec);
    }

    /// Lane changes on normal lanes, edge by edge, front to back; each applies at once.
    #[inline(never)]
    fn change_lanes(&mut self) {
        let net = self.net.clone();
        let dt = self.cfg.dt_s;
        for e in 0..net.edges.len() {
            let lanes = &net.edges[e].lanes;
            if lanes.len() < 2 {
                continue;
            }
            if lanes.iter().all(|&l| self.lane_vehs[l as usize].is_empty()) {
                continue;
            }
            let mut cands = std::mem::take(&mut self.scratch);
            cands.clear();
            cands.extend(
                lanes
                    .iter()
                    .flat_map(|&l| self.lane_vehs[l as usize].iter().copied()),
            );
            cands.sort_by(|&a, &b| {
                self.veh(b)
                    .pos_m
                    .total_cmp(&self.veh(a).pos_m)
                    .then(a.cmp(&b))
            });
            let mut swapped: Vec<u32> = Vec::new();
            for &s in &cands {
                if swapped.contains(&s) {
                    continue;
                }
                let Some((dir, urgent)) = self.lane_change_wish(s, e as EdgeIx, dt) else {
                    continue;
                };
                let v = self.veh(s);
                let from = v.lane;
                let idx = net.lanes[from as usize].index as i32 + dir;
                let to = lanes[idx as usize];
                if !self.safe_to_enter(s, to, dt) {
                    // Two standing vehicles side by side, each needing the other's lane: swap them
                    // (SUMO's drivers would let each other through; neither can move otherwise).
                    if urgent && v.speed_mps <= HALTING_SPEED_MPS {
                        let (pos, len) = (v.pos_m, self.len_of(v));
                        let other = self.lane_vehs[to as usize].iter().copied().find(|&x| {
                            let o = self.veh(x);
                            (o.pos_m - pos).abs() < len.max(self.len_of(o))
                                && o.speed_mps <= HALTING_SPEED_MPS
                        });
                        if let Some(x) = other
                            && self.lane_change_wish(x, e as EdgeIx, dt) == Some((-dir, true))
                            && self.follower_safe(s, to, x, dt)
                            && self.follower_safe(x, from, s, dt)
                            && self.veh(x).pos_m.max(pos)
                                <= net.lanes[to as usize]
                                    .length_m
                                    .min(net.lanes[from as usize].length_m)
                        {
                            let now = self.time_s;
                            for (veh, lane) in [(s, to), (x, from)] {
                                let v = self.veh_mut(veh);
                                v.lane = lane;
                                v.changed_at = now;
                                let nl = self.pick_link(veh);
                                self.veh_mut(veh).next_link = nl;
                            }
                            for l in [from, to] {
                                for slot in self.lane_vehs[l as usize].iter_mut() {
                                    if *slot == s {
                                        *slot = x;
                                    } else if *slot == x {
                                        *slot = s;
                                    }
                                }
                                let mut vs = std::mem::take(&mut self.lane_vehs[l as usize]);
                                vs.sort_by(|&a, &b| {
                                    self.veh(b)
                                        .pos_m
                                        .total_cmp(&self.veh(a).pos_m)
                                        .then(a.cmp(&b))
                                });
                                self.lane_vehs[l as usize] = vs;
                            }
                            swapped.push(x);
                        }
                    }
                    continue;
                }
                {
                    let pos = self
                        .veh(s)
                        .pos_m
                        .min(net.lanes[to as usize].length_m - 0.01);
                    let list = &mut self.lane_vehs[from as usize];
                    list.retain(|&x| x != s);
                    let now = self.time_s;
                    let v = self.veh_mut(s);
                    v.lane = to;
                    v.pos_m = pos;
                    v.changed_at = now;
                    let nl = self.pick_link(s);
                    self.veh_mut(s).next_link = nl;
                    let at = self.lane_vehs[to as usize]
                        .iter()
                        .position(|&x| self.veh(x).pos_m < pos)
                        .unwrap_or(self.lane_vehs[to as usize].len());
                    self.lane_vehs[to as usize].insert(at, s);
                }
            }
            self.scratch = cands;
        }
    }

    /// The lane change a vehicle wants: -1 (right) or +1 (left), and whether its route needs
    /// it (`true`) or it only pays (`false`).
    fn lane_change_wish(&self, s: u32, e: EdgeIx, dt: f64) -> Option<(i32, bool)> {
        let net = &self.net;
        let v = self.veh(s);
        if self.time_s - v.changed_at < 2.0 * dt {
            return None; // settle before changing again
        }
        let class = self.vtypes[v.vt as usize].class;
        let edge = &net.edges[e as usize];
        let here = net.lanes[v.lane as usize].index as i32;
        let ri = v.ri as usize;
        let good = |l: LaneIx| -> bool {
            if net.lanes[l as usize].allow & class.bit() == 0 {
                return false;
            }
            if ri + 1 >= v.route.len() {
                return true;
            }
            net.lanes[l as usize]
                .links
                .iter()
                .any(|&k| net.links[k as usize].to_edge == v.route[ri + 1])
        };
        if !good(v.lane) {
            // strategic: towards the nearest lane that continues the route
            let target = edge
                .lanes
                .iter()
                .filter(|&&l| good(l))
                .map(|&l| net.lanes[l as usize].index as i32)
                .min_by_key(|&i| ((i - here).abs(), i))?;
            return Some(((target - here).signum(), true));
        }
        // tactical: MOBIL (Kesting, Treiber & Helbing 2007) among the lanes that continue the
        // route: change when my gain in acceleration plus the politeness-weighted gains of the
        // old and new followers beats a threshold; the asymmetric bias keeps right. Accelerations
        // come from the vehicle's own car-following model over one step.
        const POLITENESS: f64 = 0.25;
        const THRESHOLD_MPS2: f64 = 0.2;
        const KEEP_RIGHT_BIAS_MPS2: f64 = 0.2;
        let cur = v.lane;
        let (lead_cur, foll_cur) = self.neighbours(cur, v.pos_m, s);
        let a_c = self.accel_behind(s, cur, lead_cur, dt);
        let a_o = foll_cur.map(|o| self.accel_behind(o, cur, Some(s), dt));
        let a_o_after = foll_cur.map(|o| self.accel_behind(o, cur, lead_cur, dt));
        let mut best: Option<(f64, i32)> = None;
        for dir in [-1, 1] {
            let idx = here + dir;
            if idx < 0 || idx as usize >= edge.lanes.len() {
                continue;
            }
            let l = edge.lanes[idx as usize];
            if !good(l) {
                continue;
            }
            let (lead_new, foll_new) = self.neighbours(l, v.pos_m, s);
            let a_c_after = self.accel_behind(s, l, lead_new, dt);
            let (a_n, a_n_after) = match foll_new {
                Some(n) => (
                    self.accel_behind(n, l, lead_new, dt),
                    self.accel_behind(n, l, Some(s), dt),
                ),
                None => (0.0, 0.0),
            };
            let others = (a_n_after - a_n)
                + match (a_o, a_o_after) {
                    (Some(before), Some(after)) => after - before,
                    _ => 0.0,
                };
            let bias = if dir < 0 {
                -KEEP_RIGHT_BIAS_MPS2
            } else {
                KEEP_RIGHT_BIAS_MPS2
            };
            let incentive = a_c_after - a_c + POLITENESS * others;
            if incentive > THRESHOLD_MPS2 + bias && best.is_none_or(|b| incentive > b.0) {
                best = Some((incentive, dir));
            }
        }
        best.map(|b| (b.1, false))
    }

    /// The vehicles just ahead of and just behind position `pos` on `lane`, other than `s`.
    fn neighbours(&self, lane: LaneIx, pos: f64, s: u32) -> (Option<u32>, Option<u32>) {
        // lanes are sorted front first
        let list = &self.lane_vehs[lane as usize];
        let n_ahead = list.partition_point(|&x| x != s && self.veh(x).pos_m > pos);
        let ahead = n_ahead.checked_sub(1).map(|i| list[i]);
        let behind = list[n_ahead..].iter().copied().find(|&x| x != s);
        (ahead, behind)
    }

    /// The acceleration vehicle `f` would have next step on `lane` behind `leader` (if any),
    /// m/s², from its car-following model without random slow-downs.
    fn accel_behind(&self, f: u32, lane: LaneIx, leader: Option<u32>, dt: f64) -> f64 {
        let fv = self.veh(f);
        let d = &self.drivers[fv.vt as usize];
        let mut v = d.free_road_speed(fv.speed_mps, self.vmax(fv, lane), dt);
        if let Some(l) = leader {
            let lv = self.veh(l);
            let gap = lv.pos_m - self.len_of(lv) - fv.pos_m - d.min_gap;
            if gap < 200.0 {
                v = v.min(self.follow(d, fv.speed_mps, gap, l, dt));
            }
        }
        (v - fv.speed_mps) / dt
    }

    /// Whether the vehicle behind `s`'s position on `lane` (other than `exclude`) could follow
    /// `s` there safely.
    fn follower_safe(&self, s: u32, lane: LaneIx, exclude: u32, dt: f64) -> bool {
        let v = self.veh(s);
        let d = &self.drivers[v.vt as usize];
        let Some(&f) = self.lane_vehs[lane as usize]
            .iter()
            .find(|&&x| x != exclude && x != s && self.veh(x).pos_m < v.pos_m)
        else {
            return true;
        };
        let fv = self.veh(f);
        let fd = &self.drivers[fv.vt as usize];
        let gap = v.pos_m - self.len_of(v) - fv.pos_m - fd.min_gap;
        gap >= 0.0
            && fd.follow_speed(fv.speed_mps, gap, v.speed_mps, d.decel, dt)
                >= fv.speed_mps - fd.decel * dt
    }

    /// Whether the vehicle fits on lane `to` beside where it is, with safe gaps both ways, and
    /// can still stop in comfort if the junction at that lane's end is closed to it.
    fn safe_to_enter(&self, s: u32, to: LaneIx, dt: f64) -> bool {
        let v = self.veh(s);
        let d = &self.drivers[v.vt as usize];
        let len = self.len_of(v);
        let ri = v.ri as usize;
        if ri + 1 < v.route.len() {
            let class = self.vtypes[v.vt as usize].class;
            let k = self.best_link(to, v.route[ri + 1], v.route.get(ri + 2).copied(), class);
            let seen = self.net.lanes[to as usize].length_m - v.pos_m;
            if k != NONE
                && !matches!(self.link_state(k), b'G' | b'g' | b'M' | b'm')
                && brake_gap(v.speed_mps, d.decel, dt, 0.0) > seen
            {
                return false;
            }
        }
        let list = &self.lane_vehs[to as usize];
        // leader: the rearmost vehicle ahead; follower: the frontmost behind
        let mut leader = None;
        let mut follower = None;
        for &x in list {
            let o = self.veh(x);
            if o.pos_m > v.pos_m || (o.pos_m == v.pos_m && x < s) {
                leader = Some(x);
            } else {
                follower = Some(x);
                break;
            }
        }
        if let Some(l) = leader {
            let lv = self.veh(l);
            let gap = lv.pos_m - self.len_of(lv) - v.pos_m - d.min_gap;
            if gap < 0.0 {
                return false;
            }
            let need = d.follow_speed(
                v.speed_mps,
                gap,
                lv.speed_mps,
                self.drivers[lv.vt as usize].decel,
                dt,
            );
            if need < v.speed_mps - d.decel * dt {
                return false;
            }
        }
        if let Some(f) = follower {
            let fv = self.veh(f);
            let fd = &self.drivers[fv.vt as usize];
            let gap = v.pos_m - len - fv.pos_m - fd.min_gap;
            if gap < 0.0 {
                return false;
            }
            let need = fd.follow_speed(fv.speed_mps, gap, v.speed_mps, d.decel, dt);
            if need < fv.speed_mps - fd.decel * dt {
                return false;
            }
        }
        true
    }

    #[inline(never)]
    fn teleport(&mut self) {
        let net = self.net.clone();
        if self.cfg.teleport_after_s > 0.0 {
            // lanes occupied at the start of the step: a vehicle standing that long was there
            for &li in &self.active.clone() {
                let li = li as usize;
                let Some(&s) = self.lane_vehs[li].first() else {
                    continue;
                };
                if self.veh(s).stand_s < self.cfg.teleport_after_s {
                    continue;
                }
                self.lane_vehs[li].remove(0);
                self.totals.teleports += 1;
                let v = self.veh_mut(s);
                v.teleports += 1;
                v.stand_s = 0.0;
                v.speed_mps = 0.0;
                // jump to the next edge of its route (from a link lane too: it leads there)
                let next_ri = v.ri + 1;
                self.teleporting.push((s, next_ri));
            }
        }
        // place teleported vehicles where there is room (or let them arrive)
        let mut still = Vec::new();
        for (s, ri) in std::mem::take(&mut self.teleporting) {
            let ri = ri as usize;
            let route = self.veh(s).route.clone();
            if ri >= route.len() {
                self.arrive(s);
                continue;
            }
            let e = route[ri];
            let class = self.vtypes[self.veh(s).vt as usize].class;
            let lane = net.edges[e as usize]
                .lanes
                .iter()
                .copied()
                .filter(|&l| net.lanes[l as usize].allow & class.bit() != 0)
                .max_by(|&a, &b| {
                    self.room_at_start(a)
                        .total_cmp(&self.room_at_start(b))
                        .then(b.cmp(&a))
                });
            let len = self.len_of(self.veh(s));
            match lane {
                Some(l)
                    if self.room_at_start(l)
                        >= len + self.drivers[self.veh(s).vt as usize].min_gap =>
                {
                    let v = self.veh_mut(s);
                    v.lane = l;
                    v.ri = ri as u32;
                    v.pos_m = len.min(net.lanes[l as usize].length_m - 1e-3);
                    let nl = self.pick_link(s);
                    self.veh_mut(s).next_link = nl;
                    self.lane_vehs[l as usize].push(s);
                }
                _ => still.push((s, ri as u32)),
            }
        }
        self.teleporting = still;
    }

    /// Free length at the start of a lane, m.
    fn room_at_start(&self, l: LaneIx) -> f64 {
        match self.lane_vehs[l as usize].last() {
            Some(&x) => {
                let v = self.veh(x);
                v.pos_m - self.len_of(v)
            }
            None => self.net.lanes[l as usize].length_m,
        }
    }

    #[inline(never)]
    fn insert(&mut self) {
        let t = self.time_s;
        while self.next_trip < self.trips.len() && self.trips[self.next_trip].depart_s <= t + 1e-9 {
            self.pending.push(self.next_trip as u32);
            self.next_trip += 1;
        }
        let mut blocked: HashSet<EdgeIx> = HashSet::new();
        let mut keep = Vec::with_capacity(self.pending.len());
        for ti in std::mem::take(&mut self.pending) {
            let trip = &self.trips[ti as usize];
            let first = match &trip.route {
                RouteSpec::Edges(r) => r[0],
                RouteSpec::Trip { from, .. } => *from,
            };
            if blocked.contains(&first) {
                keep.push(ti);
                continue;
            }
            match self.try_insert(ti) {
                Ok(true) => {}
                Ok(false) => {
                    blocked.insert(first);
                    keep.push(ti);
                }
                Err(()) => self.totals.unroutable += 1,
            }
        }
        self.pending = keep;
        self.totals.waiting_to_insert = self.pending.len() as u64;
    }

    /// Ok(true) inserted, Ok(false) no room yet, Err(()) no route.
    fn try_insert(&mut self, ti: u32) -> Result<bool, ()> {
        let net = self.net.clone();
        let dt = self.cfg.dt_s;
        let trip = self.trips[ti as usize].clone();
        let vt = trip.vtype as usize;
        let class = self.vtypes[vt].class;
        let route: Arc<[EdgeIx]> = match &trip.route {
            RouteSpec::Edges(r) if self.closed[r[0] as usize] => return Ok(false),
            RouteSpec::Edges(r)
                if r.iter().any(|&e| {
                    self.costs.travel_time_s[e as usize] != self.costs.free_flow_s[e as usize]
                }) =>
            {
                // a closed or slowed road on its planned route: the fastest way now, or none
                let last = *r.last().expect("routes are not empty");
                match fastest_route(&net, &self.costs, class, r[0], last) {
                    Some(new) => {
                        if new[..] != r[..] {
                            self.totals.reroutes += 1;
                        }
                        new.into()
                    }
                    None => return Err(()),
                }
            }
            RouteSpec::Edges(r) => r.clone().into(),
            RouteSpec::Trip { from, to, via } => {
                let mut w = vec![*from];
                w.extend_from_slice(via);
                w.push(*to);
                match route_via(&net, &self.costs, class, &w) {
                    Some(r) => r.into(),
                    None => return Err(()),
                }
            }
        };
        let e0 = &net.edges[route[0] as usize];
        let allowed: Vec<LaneIx> = e0
            .lanes
            .iter()
            .copied()
            .filter(|&l| net.lanes[l as usize].allow & class.bit() != 0)
            .collect();
        if allowed.is_empty() {
            return Err(());
        }
        let continues = |l: LaneIx| {
            route.len() < 2
                || net.lanes[l as usize]
                    .links
                    .iter()
                    .any(|&k| net.links[k as usize].to_edge == route[1])
        };
        let lane = match trip.depart_lane {
            DepartLane::First => allowed[0],
            DepartLane::Index(i) => match e0.lanes.get(i as usize) {
                Some(&l) if net.lanes[l as usize].allow & class.bit() != 0 => l,
                _ => allowed[0],
            },
            DepartLane::Free => *allowed
                .iter()
                .max_by(|&&a, &&b| {
                    self.room_at_start(a)
                        .total_cmp(&self.room_at_start(b))
                        .then(b.cmp(&a))
                })
                .expect("non-empty"),
            DepartLane::Best => {
                let best: Vec<LaneIx> = allowed.iter().copied().filter(|&l| continues(l)).collect();
                let pool = if best.is_empty() { &allowed } else { &best };
                *pool
                    .iter()
                    .max_by(|&&a, &&b| {
                        self.room_at_start(a)
                            .total_cmp(&self.room_at_start(b))
                            .then(b.cmp(&a))
                    })
                    .expect("non-empty")
            }
        };
        let d = self.drivers[vt];
        let t = &self.vtypes[vt];
        let lane_len = net.lanes[lane as usize].length_m;
        // front position: SUMO's `base` puts the back at the lane start; never past the end
        let pos = trip
            .depart_pos_m
            .unwrap_or(t.length_m)
            .max(t.length_m)
            .min(lane_len - 1e-3)
            .max(0.0);
        // speed factor and random key
        let rng_key = splitmix(self.seed_key ^ (ti as u64).wrapping_mul(0xA24B_AED4_963E_E407));
        let mut sf = t.speed_factor_mean;
        if t.speed_factor_dev > 0.0 {
            let (lo, hi) = t.speed_factor_bounds;
            let mut k = 0u64;
            loop {
                let z = normal(
                    unit(splitmix(rng_key ^ (2 * k + 1))),
                    unit(splitmix(rng_key ^ (2 * k + 2))),
                );
                sf = t.speed_factor_mean + t.speed_factor_dev * z;
                if (lo..=hi).contains(&sf) || k > 20 {
                    sf = sf.clamp(lo, hi);
                    break;
                }
                k += 1;
            }
        }
        let vmax = (self.lane_speed_mps[lane as usize] * sf).min(t.max_speed_mps);
        // room and a safe speed between the vehicles ahead of and behind `pos`
        let mut safe = vmax;
        let (mut leader, mut follower) = (None, None);
        for &x in &self.lane_vehs[lane as usize] {
            if self.veh(x).pos_m > pos {
                leader = Some(x);
            } else {
                follower = Some(x);
                break;
            }
        }
        if leader.is_none() {
            // the rearmost vehicle on a link out of this lane may still reach back onto it
            for &k in &net.lanes[lane as usize].links {
                let ll = net.links[k as usize].lane;
                if let Some(&l) = self.lane_vehs[ll as usize].last() {
                    let lv = self.veh(l);
                    if lane_len - pos + lv.pos_m - self.len_of(lv) - d.min_gap < 0.0 {
                        return Ok(false);
                    }
                }
            }
        }
        if let Some(l) = leader {
            let lv = self.veh(l);
            let gap = lv.pos_m - self.len_of(lv) - pos - d.min_gap;
            if gap < 0.0 {
                return Ok(false);
            }
            let ld = self.drivers[lv.vt as usize].decel;
            // the highest speed that is safe at that gap (iterating towards follow_speed's fixed point)
            let mut v = vmax;
            for _ in 0..4 {
                v = v.min(d.follow_speed(v, gap, lv.speed_mps, ld, dt).max(0.0));
            }
            safe = safe.min(v);
        }
        // who would be behind it: a vehicle on the lane, or one coming off a link into it
        let mut behind: Vec<(u32, f64)> = Vec::new();
        if let Some(f) = follower {
            let fv = self.veh(f);
            behind.push((f, pos - t.length_m - fv.pos_m));
        } else {
            for &k in &self.into_lane[lane as usize] {
                // one about to come through the junction (it may be beyond the link lane yet)
                if self.approach_s[k as usize] < 3.0 && pos - t.length_m < 10.0 {
                    return Ok(false);
                }
                let ll = net.links[k as usize].lane as usize;
                if let Some(&f) = self.lane_vehs[ll].first() {
                    let fv = self.veh(f);
                    behind.push((f, net.lanes[ll].length_m - fv.pos_m + pos - t.length_m));
                }
            }
        }
        for (f, dist) in behind {
            let fv = self.veh(f);
            let fd = &self.drivers[fv.vt as usize];
            let gap = dist - fd.min_gap;
            if gap < 0.0
                || fd.follow_speed(fv.speed_mps, gap, safe, d.decel, dt)
                    < fv.speed_mps - fd.decel * dt
            {
                return Ok(false);
            }
        }
        let speed = match trip.depart_speed {
            DepartSpeed::Max => safe,
            DepartSpeed::Desired => {
                if safe + 1e-9 < vmax {
                    return Ok(false);
                }
                vmax
            }
            DepartSpeed::Value(x) => {
                if x > safe + 1e-9 {
                    return Ok(false);
                }
                x
            }
        };
        let veh = Veh {
            trip: ti,
            vt: vt as u16,
            lane,
            pos_m: pos,
            speed_mps: speed,
            route,
            ri: 0,
            next_link: NONE,
            speed_factor: sf,
            rng_key,
            depart_s: self.time_s,
            dist_m: 0.0,
            time_loss_s: 0.0,
            waiting_s: 0.0,
            stand_s: 0.0,
            passed_wait: false,
            teleports: 0,
            changed_at: f64::NEG_INFINITY,
            priority: trip.signal_priority,
        };
        let s = match self.free_slots.pop() {
            Some(s) => {
                self.vehs[s as usize] = Some(veh);
                s
            }
            None => {
                self.vehs.push(Some(veh));
                (self.vehs.len() - 1) as u32
            }
        };
        let nl = self.pick_link(s);
        self.veh_mut(s).next_link = nl;
        let list = &mut self.lane_vehs[lane as usize];
        let at = list
            .iter()
            .position(|&x| {
                self.vehs[x as usize]
                    .as_ref()
                    .is_some_and(|o| o.pos_m < pos)
            })
            .unwrap_or(list.len());
        self.lane_vehs[lane as usize].insert(at, s);
        self.totals.inserted += 1;
        Ok(true)
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
#[derive(Default)]
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
