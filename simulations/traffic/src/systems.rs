//! The traffic simulation's systems on the engine's schedule: commands in, a step, trip
//! records and events out, KPIs.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use bevy::prelude::*;
use citytwin_engine::prelude::*;

/// Who holds each road closed or slowed: a road is closed while any source holds it closed and
/// runs at the lowest limit any source sets (see [`RoadCommand`]).
#[derive(serde::Serialize, serde::Deserialize, Resource, Default)]
pub(crate) struct RoadHolds {
    closed: BTreeMap<net::EdgeIx, BTreeSet<String>>,
    speeds: BTreeMap<net::EdgeIx, BTreeMap<String, f64>>,
}

impl RoadHolds {
    /// Every road held closed now (edge id), with who holds it, in edge order.
    pub(crate) fn closed_by(&self, net: &net::Network) -> Vec<(String, Vec<String>)> {
        self.closed
            .iter()
            .filter(|(_, by)| !by.is_empty())
            .map(|(e, by)| {
                (
                    net.edges[*e as usize].id.clone(),
                    by.iter().cloned().collect(),
                )
            })
            .collect()
    }

    /// Roads held closed now.
    pub(crate) fn closed_count(&self) -> usize {
        self.closed.values().filter(|s| !s.is_empty()).count()
    }

    /// Roads under a speed limit set at run time now.
    pub(crate) fn limited_count(&self) -> usize {
        self.speeds.values().filter(|s| !s.is_empty()).count()
    }
}

impl citytwin_engine::hash::StateHash for RoadHolds {
    fn hash_state(&self, h: &mut citytwin_engine::hash::StateHasher) {
        for (e, by) in &self.closed {
            h.u64(*e as u64);
            for b in by {
                h.str(b);
            }
        }
        for (e, by) in &self.speeds {
            h.u64(*e as u64);
            for (b, v) in by {
                h.str(b);
                h.f64(*v);
            }
        }
    }
}

/// Apply the engine-level road commands (from scenario plugins and couplings) that name this
/// network's roads and intersections; others are reported as events.
pub(crate) fn apply_road_commands(
    mut commands: MessageReader<RoadCommand>,
    mut sim: ResMut<TrafficSim>,
    mut holds: ResMut<RoadHolds>,
    mirror: Res<VehicleMirror>,
    mut events: ResMut<EventLog>,
    mut intersections: Query<(&FeatureId, &mut Intersection)>,
) {
    let traffic = &mut sim.0;
    for c in commands.read() {
        let (feature, what) = match c {
            RoadCommand::Close { road, .. }
            | RoadCommand::Open { road, .. }
            | RoadCommand::SetSpeed { road, .. }
            | RoadCommand::LiftSpeed { road, .. } => (road, "road"),
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
                RoadCommand::Close { by, .. }
                | RoadCommand::Open { by, .. }
                | RoadCommand::SetSpeed { by, .. }
                | RoadCommand::LiftSpeed { by, .. } => match traffic.net.edge(&feature.id) {
                    None => problem = Some(format!("no road {feature}")),
                    Some(e) => problem = hold(traffic, &mut holds, e, c, by).err(),
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

/// Take or lift one source's hold on an edge, and put the edge's state in force when it
/// changes. Errors say why the command changed nothing.
fn hold(
    traffic: &mut Traffic,
    holds: &mut RoadHolds,
    e: net::EdgeIx,
    c: &RoadCommand,
    by: &str,
) -> Result<(), String> {
    let road = &traffic.net.edges[e as usize].id;
    match c {
        RoadCommand::Close { .. } => {
            let set = holds.closed.entry(e).or_default();
            let was_open = set.is_empty();
            if !set.insert(by.to_string()) {
                return Err(format!("road {road} is already closed by '{by}'"));
            }
            if was_open {
                traffic.close_edge(e);
            }
        }
        RoadCommand::Open { .. } => {
            let set = holds.closed.entry(e).or_default();
            if !set.remove(by) {
                return Err(format!("road {road} is not closed by '{by}'"));
            }
            if set.is_empty() {
                holds.closed.remove(&e);
                traffic.open_edge(e);
            }
        }
        RoadCommand::SetSpeed { speed_mps, .. } => {
            if !(speed_mps.is_finite() && *speed_mps > 0.0) {
                return Err(format!(
                    "speed {speed_mps} m/s for road {road} is not positive"
                ));
            }
            holds
                .speeds
                .entry(e)
                .or_default()
                .insert(by.to_string(), *speed_mps);
            apply_speed(traffic, holds, e);
        }
        RoadCommand::LiftSpeed { .. } => {
            let map = holds.speeds.entry(e).or_default();
            if map.remove(by).is_none() {
                return Err(format!("road {road} has no speed limit set by '{by}'"));
            }
            if map.is_empty() {
                holds.speeds.remove(&e);
            }
            apply_speed(traffic, holds, e);
        }
        RoadCommand::SetSignalProgram { .. } => unreachable!("roads only"),
    }
    Ok(())
}

/// The lowest limit any source holds on an edge, or the network's own; applied only when it
/// changes what the vehicles see.
fn apply_speed(traffic: &mut Traffic, holds: &RoadHolds, e: net::EdgeIx) {
    let held = holds
        .speeds
        .get(&e)
        .and_then(|m| m.values().copied().reduce(f64::min));
    let now = traffic.edge_speed_mps(e);
    match held {
        Some(v) if (v.max(0.1) - now).abs() > 1e-9 => traffic.set_edge_speed(e, Some(v)),
        Some(_) => {}
        None => traffic.set_edge_speed(e, None),
    }
}

/// Apply the engine-level demand commands to the trips not yet started.
pub(crate) fn apply_demand_commands(
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

pub(crate) fn step_traffic(
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

pub(crate) fn traffic_kpis(
    mut sim: ResMut<TrafficSim>,
    mut out: ResMut<TrafficOutputs>,
    holds: Res<RoadHolds>,
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
    kpis.set(
        "traffic.roads_closed",
        "city",
        holds.closed_count() as f64,
        "1",
    );
    kpis.set(
        "traffic.roads_speed_limited",
        "city",
        holds.limited_count() as f64,
        "1",
    );
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
