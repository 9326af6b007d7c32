//! The coupled city (`scenes/sample_rainstorm.toml`): a rainstorm at rush hour near a chemical
//! plant, with every coupling on, against the same scene with them off.
//!
//! - flood → traffic: a road the water closes carries no vehicle while it is closed (none
//!   enters it from a junction, none departs on it), although the same road carries traffic
//!   in the same minutes when the water does not act on it; trips keep arriving meanwhile;
//! - air → traffic: the same holds for the streets the chlorine zone closes;
//! - the cross-domain KPIs move: vehicle-hours lost to the water, people exposed to chlorine,
//!   people ordered out and their cars arriving at the assembly point;
//! - on and off differ, and each is bit-identical run to run.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use bevy::ecs::message::{MessageCursor, Messages};
use bevy::prelude::*;
use citytwin_engine::prelude::*;
use citytwin_engine::sim::Sim;
use citytwin_traffic::{TrafficOutputs, TrafficSim};

/// The coupled scene, or (`couplings = false`) the same scene with every coupling off: the
/// water does not act on the traffic, the leak's zone closes nothing and orders nobody out,
/// and vehicles do not emit into the air.
fn build(dir: &std::path::Path, couplings: bool) -> Sim {
    let path = common::scene_copy_of(dir, "sample_rainstorm", |t| {
        if couplings { t } else { common::uncoupled(t) }
    });
    common::build_sim(&path)
}

/// A closure as the commands said it: who, which road, from which step to which.
#[derive(Clone, Debug)]
struct Closure {
    by: String,
    road: String,
    /// The step whose commands closed it (the traffic applies them the step after).
    from_tick: u64,
    until_tick: Option<u64>,
}

/// What one run showed.
struct Outcome {
    hash: String,
    closures: Vec<Closure>,
    /// Per road id: vehicles that entered it from a junction, by step (cumulative).
    entries: BTreeMap<String, Vec<u64>>,
    /// Vehicles seen on a road while it was closed that were not on it when it closed.
    intruders: Vec<String>,
    /// Arrival times, s.
    arrivals_s: Vec<f64>,
    kpi_max: BTreeMap<String, f64>,
    evacuees_arrived: usize,
}

fn run(dir: &std::path::Path, couplings: bool, watch: &BTreeSet<String>) -> Outcome {
    let mut sim = build(dir, couplings);
    let mut cursor: MessageCursor<RoadCommand> =
        sim.world().resource::<Messages<RoadCommand>>().get_cursor();
    // Road entities of the traffic layer, by id.
    let roads: BTreeMap<String, Entity> = {
        let world = sim.world_mut();
        let mut q = world.query_filtered::<(Entity, &FeatureId), With<Road>>();
        q.iter(world)
            .filter(|(_, f)| f.layer == "traffic")
            .map(|(e, f)| (f.id.clone(), e))
            .collect()
    };
    // Links into each road.
    let links_into: BTreeMap<String, Vec<usize>> = {
        let net = &sim.world().resource::<TrafficSim>().0.net;
        let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, l) in net.links.iter().enumerate() {
            m.entry(net.edges[l.to_edge as usize].id.clone())
                .or_default()
                .push(i);
        }
        m
    };
    let mut closures: Vec<Closure> = Vec::new();
    let mut entries: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut intruders = Vec::new();
    // Per closed road: the vehicles on it when the closure took effect.
    let mut on_at_close: BTreeMap<String, BTreeSet<Entity>> = BTreeMap::new();
    let mut kpi_max: BTreeMap<String, f64> = BTreeMap::new();
    while !sim.finished() {
        let tick = sim.world().resource::<SimClock>().tick();
        sim.step();
        let commands: Vec<RoadCommand> = cursor
            .read(sim.world().resource::<Messages<RoadCommand>>())
            .cloned()
            .collect();
        for c in commands {
            match c {
                RoadCommand::Close { road, by } => closures.push(Closure {
                    by,
                    road: road.id,
                    from_tick: tick,
                    until_tick: None,
                }),
                RoadCommand::Open { road, by } => {
                    if let Some(c) = closures
                        .iter_mut()
                        .rev()
                        .find(|c| c.road == road.id && c.by == by && c.until_tick.is_none())
                    {
                        c.until_tick = Some(tick);
                    }
                }
                _ => {}
            }
        }
        // Closures surely in force in the traffic this step: sent by an earlier step and not yet
        // lifted (a plugin's commands act in the step that sends them, a coupling's in the
        // next).
        let in_force: Vec<String> = closures
            .iter()
            .filter(|c| c.from_tick < tick && c.until_tick.is_none_or(|u| tick < u))
            .map(|c| c.road.clone())
            .collect();
        let counts = sim
            .world()
            .resource::<TrafficSim>()
            .0
            .link_counts()
            .to_vec();
        let followed: BTreeSet<&String> = watch
            .iter()
            .chain(closures.iter().map(|c| &c.road))
            .collect();
        for road in followed {
            let n: u64 = links_into
                .get(road)
                .map(|ls| ls.iter().map(|&l| counts[l]).sum())
                .unwrap_or(0);
            let series = entries.entry(road.clone()).or_default();
            series.resize(tick as usize, series.last().copied().unwrap_or(0));
            series.push(n);
        }
        // Who is on the closed roads.
        let world = sim.world_mut();
        let mut q = world.query::<(Entity, &Vehicle, &FeatureId)>();
        let on: Vec<(Entity, Entity, String)> = q
            .iter(world)
            .filter_map(|(e, v, f)| v.road.map(|r| (e, r, f.id.clone())))
            .collect();
        let held: BTreeSet<&String> = in_force.iter().collect();
        on_at_close.retain(|road, _| held.contains(road));
        for road in &held {
            let Some(&re) = roads.get(*road) else {
                continue;
            };
            let here: BTreeSet<Entity> = on
                .iter()
                .filter(|(_, r, _)| *r == re)
                .map(|v| v.0)
                .collect();
            match on_at_close.get(*road) {
                None => {
                    on_at_close.insert((*road).clone(), here);
                }
                Some(before) => {
                    for (e, _, id) in on.iter().filter(|(_, r, _)| *r == re) {
                        if !before.contains(e) {
                            intruders.push(format!("{id} on {road} at tick {tick}"));
                        }
                    }
                }
            }
        }
        for (name, scope, value, _) in sim.world().resource::<Kpis>().iter() {
            if scope == "city" || scope == "tank-leak" {
                let m = kpi_max.entry(name.to_string()).or_insert(f64::MIN);
                *m = m.max(value);
            }
        }
    }
    let trips = &sim.world().resource::<TrafficOutputs>().all_trips;
    let arrivals_s = trips.iter().map(|t| t.arrival_s).collect();
    let evacuees_arrived = trips
        .iter()
        .filter(|t| t.id.starts_with("tank-leak.evac."))
        .count();
    Outcome {
        hash: sim.state_hash().to_string(),
        closures,
        entries,
        intruders,
        arrivals_s,
        kpi_max,
        evacuees_arrived,
    }
}

/// Vehicles that entered `road` from a junction during steps `(from, until]`.
fn entered(o: &Outcome, road: &str, from: u64, until: u64) -> u64 {
    let s = &o.entries[road];
    let at = |t: u64| s.get(t as usize).or(s.last()).copied().unwrap_or(0);
    at(until) - at(from)
}

#[test]
fn closed_roads_carry_no_vehicles_trips_still_arrive_and_both_ways_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let on = run(dir.path(), true, &BTreeSet::new());
    let flood: Vec<&Closure> = on.closures.iter().filter(|c| c.by == "flood").collect();
    let leak: Vec<&Closure> = on.closures.iter().filter(|c| c.by == "tank-leak").collect();
    eprintln!(
        "{} closures by the water, {} by the chlorine zone; {} trips arrived",
        flood.len(),
        leak.len(),
        on.arrivals_s.len()
    );
    assert!(flood.len() >= 2, "{:?}", on.closures);
    assert!(leak.len() >= 4, "{:?}", on.closures);
    // Nobody enters a closed road, from a junction or by departing on it.
    assert!(
        on.intruders.is_empty(),
        "{} sightings, first {:?}",
        on.intruders.len(),
        &on.intruders[..on.intruders.len().min(5)]
    );
    let end = 3600;
    for c in &on.closures {
        let until = c.until_tick.map_or(end, |u| u - 1);
        // Counted from the step after the closing command to the one before the opening one.
        let n = entered(&on, &c.road, c.from_tick + 1, until);
        assert_eq!(n, 0, "{c:?}: {n} vehicles entered while closed");
    }
    // The same roads in the same minutes, with the couplings off: traffic uses them, so the
    // zero above is the closure's doing.
    let watch: BTreeSet<String> = on.closures.iter().map(|c| c.road.clone()).collect();
    let off = run(dir.path(), false, &watch);
    assert!(off.closures.is_empty(), "{:?}", off.closures);
    let used_off: u64 = on
        .closures
        .iter()
        .map(|c| {
            entered(
                &off,
                &c.road,
                c.from_tick + 1,
                c.until_tick.map_or(end, |u| u - 1),
            )
        })
        .sum();
    eprintln!("with the couplings off, {used_off} vehicles drove onto those roads then");
    assert!(used_off >= 50, "{used_off}");
    // Trips keep arriving after the first closure, by other routes.
    let first = on.closures.iter().map(|c| c.from_tick).min().unwrap() as f64;
    let after = |o: &Outcome| o.arrivals_s.iter().filter(|&&t| t > first).count();
    eprintln!(
        "arrivals after the first closure: {} coupled, {} uncoupled",
        after(&on),
        after(&off)
    );
    assert!(
        after(&on) as f64 >= 0.6 * after(&off) as f64,
        "{} vs {}",
        after(&on),
        after(&off)
    );
    // The cross-domain KPIs.
    let k = |o: &Outcome, name: &str| o.kpi_max.get(name).copied().unwrap_or(0.0);
    for name in [
        "flood.vehicle_hours_lost",
        "flood.road_hours_closed",
        "traffic.roads_closed",
        "leak.roads_closed",
        "leak.people_evacuated",
        "leak.evacuation_vehicles",
        "pollution.chlorine.people_exposed",
    ] {
        eprintln!(
            "{name}: {} coupled, {} uncoupled",
            k(&on, name),
            k(&off, name)
        );
        assert!(k(&on, name) > 0.0, "{name}");
        if name != "pollution.chlorine.people_exposed" {
            assert_eq!(k(&off, name), 0.0, "{name}");
        }
    }
    assert!(
        on.evacuees_arrived >= 10,
        "{} evacuees",
        on.evacuees_arrived
    );
    // Exhaust into the air only when coupled (fine particles come from the exhaust alone).
    assert!(k(&on, "pollution.PM2.5.emitted") > 0.0);
    assert_eq!(k(&off, "pollution.PM2.5.emitted"), 0.0);
    // Different, and each the same run to run.
    assert_ne!(on.hash, off.hash);
    assert_eq!(run(dir.path(), true, &BTreeSet::new()).hash, on.hash);
    assert_eq!(run(dir.path(), false, &BTreeSet::new()).hash, off.hash);
}

/// The sample district's morning traffic and its exhaust alone (no stacks, no leak), in a
/// steady east wind along the east–west streets.
fn traffic_air(dir: &std::path::Path, traffic_emits: bool) -> Sim {
    let path = common::scene_copy_of(dir, "sample_district", |t| {
        // Drop the blocks of the stacks, the leak, the tracing and the weather series.
        let mut out = String::new();
        let mut block = String::new();
        let keep = |block: &mut String, out: &mut String| {
            let head = block.lines().next().unwrap_or("");
            let drop = head.starts_with("[[scenario]]")
                || head.starts_with("[simulations.pollution.tracing]")
                || head.starts_with("[simulations.pollution.weather]")
                || block.contains("kind = \"emission_sources\"");
            if !drop {
                out.push_str(block);
            }
            block.clear();
        };
        for line in t.lines() {
            if line.starts_with('[') {
                keep(&mut block, &mut out);
            }
            block.push_str(line);
            block.push('\n');
        }
        keep(&mut block, &mut out);
        let out = out.replace(
            "[simulations.pollution]\n",
            &format!(
                "[simulations.pollution]\ntraffic = {traffic_emits}\n\
                 weather = {{ wind_speed_mps = 2.0, wind_from_deg = 90.0, stability = \"D\" }}\n"
            ),
        );
        assert!(!out.contains("emission_sources") && !out.contains("[[scenario]]"));
        out
    });
    common::build_sim(&path)
}

#[test]
fn a_busy_street_breathes_worse_air_than_a_quiet_one_in_proportion_to_its_exhaust() {
    use citytwin_pollution::PollutionSim;
    use citytwin_pollution::emission::{EmissionClass, Exhaust};
    use geo::{Centroid, Length};
    let dir = tempfile::tempdir().unwrap();
    let mut sim = traffic_air(dir.path(), true);
    // Streets (both directions of a named east-west street), their roads and length.
    let roads: BTreeMap<Entity, (String, f64, [f64; 2])> = {
        let world = sim.world_mut();
        let mut q = world.query::<(Entity, &Road, &Shape, &FeatureId)>();
        q.iter(world)
            .filter(|(_, _, _, f)| f.layer == "traffic" && f.id.contains('h'))
            .map(|(e, r, s, _)| {
                let c = s.0.centroid().unwrap();
                let len = match &*s.0 {
                    geo::Geometry::LineString(l) => geo::Euclidean.length(l),
                    _ => r.length_m,
                };
                (e, (r.name.clone(), len, [c.x(), c.y()]))
            })
            .collect()
    };
    let mut emitted: BTreeMap<String, f64> = BTreeMap::new();
    let mut conc: BTreeMap<String, (f64, u32)> = BTreeMap::new();
    while !sim.finished() {
        sim.step();
        let t = sim.world().resource::<SimClock>().elapsed_s();
        if t <= 1200.0 {
            continue;
        }
        // NOx emitted on each street this step, as the pollution simulation computes it.
        let world = sim.world_mut();
        let mut q = world.query::<&Vehicle>();
        for v in q.iter(world) {
            if let Some((name, _, _)) = v.road.and_then(|r| roads.get(&r)) {
                let kg = EmissionClass::for_kind(v.kind).rate_kg_s(
                    Exhaust::NOx,
                    v.speed_mps,
                    v.accel_mps2,
                );
                *emitted.entry(name.clone()).or_default() += kg;
            }
        }
        // NO2 at the middle of each of its segments, every minute.
        if (t as u64).is_multiple_of(60) {
            let p = sim.world().resource::<PollutionSim>();
            let w = p.weather.at(t);
            let s = p.species.iter().position(|x| x == "NO2").unwrap();
            for (name, _, mid) in roads.values() {
                let c = conc.entry(name.clone()).or_default();
                c.0 += p.concentration(s, *mid, 1.5, &w);
                c.1 += 1;
            }
        }
    }
    let length: BTreeMap<&String, f64> = roads.values().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(&r.0).or_default() += r.1;
        m
    });
    // Emission per metre of street (kg/m over the window) and mean concentration (µg/m³).
    let rows: Vec<(String, f64, f64)> = emitted
        .iter()
        .map(|(name, kg)| {
            let c = conc[name];
            (name.clone(), kg / length[name], c.0 / c.1 as f64 * 1e9)
        })
        .collect();
    for r in &rows {
        eprintln!("{:<22} {:.3e} kg/m NOx  {:.1} µg/m³ NO2", r.0, r.1, r.2);
    }
    let busy = rows.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    let quiet = rows.iter().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    let (e_ratio, c_ratio) = (busy.1 / quiet.1, busy.2 / quiet.2);
    eprintln!(
        "{} emits {e_ratio:.1}x what {} does per metre; its air holds {c_ratio:.1}x the NO2",
        busy.0, quiet.0
    );
    assert!(e_ratio > 2.0, "the sample's streets differ: {e_ratio}");
    // Concentration goes with emission per metre in the same wind: the ratio is that of the
    // exhaust, a little less for the background every street gets from the crossing ones.
    assert!(
        c_ratio > 0.6 * e_ratio && c_ratio < 1.5 * e_ratio,
        "concentration ratio {c_ratio} for an emission ratio {e_ratio}"
    );
    // And with the coupling off the streets' air holds no exhaust at all.
    let mut off = traffic_air(dir.path(), false);
    while !off.finished() {
        off.step();
    }
    let p = off.world().resource::<PollutionSim>();
    assert!(!p.species.iter().any(|s| s == "NO2"), "{:?}", p.species);
}
