//! What plugins and couplings change at run time: closures and slow roads with rerouting, signal
//! programs, actuated control; and the simulation inside a scene, recorded and deterministic.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use citytwin_engine::modules::ModuleRegistry;
use citytwin_engine::prelude::*;
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::{Sim, SimOptions};
use citytwin_traffic::demand::RouteSpec;
use citytwin_traffic::net::Phase;
use citytwin_traffic::{Demand, Network, Traffic, TrafficConfig, TrafficModule, TrafficSim};
use common::*;

fn district() -> (Network, Demand) {
    let dir = repo().join("data/sample/traffic");
    let net = Network::from_sumo_file(&dir.join("district.net.xml")).unwrap();
    let mut d = Demand::new();
    d.read_sumo_file(&dir.join("district.rou.xml"), &net)
        .unwrap();
    (net, d)
}

/// The edge most routes pass through, and the demand without the trips that start or end on
/// it (those could not be served while it is closed).
fn busiest_interior_edge(d: &mut Demand) -> u32 {
    let mut count: HashMap<u32, usize> = HashMap::new();
    for t in &d.trips {
        if let RouteSpec::Edges(r) = &t.route {
            for &e in &r[1..r.len() - 1] {
                *count.entry(e).or_default() += 1;
            }
        }
    }
    let edge = count
        .into_iter()
        .max_by_key(|(e, n)| (*n, std::cmp::Reverse(*e)))
        .unwrap()
        .0;
    d.trips.retain(|t| match &t.route {
        RouteSpec::Edges(r) => r[0] != edge && *r.last().unwrap() != edge,
        _ => true,
    });
    edge
}

#[test]
fn a_closed_road_carries_nobody_and_everyone_still_arrives() {
    let (net, mut demand) = district();
    let closed = busiest_interior_edge(&mut demand);
    let mut sim = sim(net, demand, 42);
    sim.close_edge(closed);
    let mut t = 0.0;
    let mut exits_closed = 0;
    let mut trips = Vec::new();
    while !sim.is_done() && t < 10_000.0 {
        sim.step(t);
        exits_closed += sim.take_edge_stats()[closed as usize].exits;
        trips.extend(sim.take_finished());
        t += 1.0;
    }
    assert_eq!(exits_closed, 0, "nobody drove the closed edge");
    assert_eq!(sim.totals().unroutable, 0);
    assert_eq!(
        trips.len(),
        sim.trip_count(),
        "every trip arrived by another way"
    );
    assert!(
        sim.totals().reroutes > 50,
        "{} reroutes",
        sim.totals().reroutes
    );
    // Against the open network, the detours cost time.
    let (net, mut demand) = district();
    busiest_interior_edge(&mut demand);
    let mut open = common::sim(net, demand, 42);
    let base = citytwin_traffic::tripinfo::summary(&run_all(&mut open, 10_000.0));
    let ours = citytwin_traffic::tripinfo::summary(&trips);
    assert!(
        ours.mean_route_length_m > base.mean_route_length_m,
        "detours are longer"
    );
    println!(
        "closed edge {}: route length {:.0} → {:.0} m, travel time {:.1} → {:.1} s",
        sim.net.edges[closed as usize].id,
        base.mean_route_length_m,
        ours.mean_route_length_m,
        base.mean_travel_time_s,
        ours.mean_travel_time_s
    );
}

#[test]
fn closing_a_road_mid_run_reroutes_the_vehicles_heading_for_it() {
    let (net, mut demand) = district();
    let closed = busiest_interior_edge(&mut demand);
    let mut sim = sim(net, demand, 42);
    let mut t = 0.0;
    while t < 900.0 {
        sim.step(t);
        t += 1.0;
    }
    let before = sim.totals().reroutes;
    sim.close_edge(closed);
    assert!(
        sim.totals().reroutes > before,
        "vehicles on the way were rerouted"
    );
    sim.take_edge_stats();
    // Vehicles already on the edge may leave it; nobody enters after those.
    for _ in 0..60 {
        sim.step(t);
        t += 1.0;
    }
    sim.take_edge_stats();
    let mut exits = 0;
    while t < 1800.0 {
        sim.step(t);
        exits += sim.take_edge_stats()[closed as usize].exits;
        t += 1.0;
    }
    assert_eq!(exits, 0);
    sim.open_edge(closed);
    let mut after = 0;
    while t < 2700.0 {
        sim.step(t);
        after += sim.take_edge_stats()[closed as usize].exits;
        t += 1.0;
    }
    assert!(after > 0, "the reopened edge carries traffic again");
}

#[test]
fn a_slow_road_is_driven_slowly_and_avoided() {
    let (net, mut demand) = district();
    let edge = busiest_interior_edge(&mut demand);
    let mut sim = sim(net, demand, 42);
    let limit = sim.edge_speed_mps(edge);
    sim.set_edge_speed(edge, Some(2.0));
    assert_eq!(sim.edge_speed_mps(edge), 2.0);
    assert_eq!(
        sim.net.edges[edge as usize].speed_mps, limit,
        "the network itself is not changed"
    );
    let mut t = 0.0;
    let (mut samples, mut speed) = (0u64, 0.0);
    while !sim.is_done() && t < 10_000.0 {
        sim.step(t);
        let s = &sim.take_edge_stats()[edge as usize];
        samples += s.samples;
        speed += s.speed_sum_mps;
        t += 1.0;
    }
    assert!(sim.totals().reroutes > 0);
    if samples > 0 {
        // speed factors reach 1.2 or so; nobody exceeds the limit times their factor
        assert!(
            speed / samples as f64 <= 2.0 * 1.3,
            "mean {:.2} m/s",
            speed / samples as f64
        );
    }
}

#[test]
fn a_new_signal_program_takes_effect_at_once() {
    let net = net_from(&straight_net(300.0, 300.0, 13.89, Some(&[("G", 1000.0)])));
    let demand = demand_from(
        &net,
        r#"<routes><flow id="f" begin="0" end="600" period="3" departSpeed="max"><route edges="in out"/></flow></routes>"#,
    );
    let mut sim = sim(net, demand, 1);
    let in_edge = sim.net.edge("in").unwrap() as usize;
    let mut t = 0.0;
    let mut exits = 0;
    while t < 100.0 {
        sim.step(t);
        exits += sim.take_edge_stats()[in_edge].exits;
        t += 1.0;
    }
    assert!(exits > 20);
    let all_red = vec![Phase {
        duration_s: 200.0,
        min_s: 200.0,
        max_s: 200.0,
        state: b"r".to_vec(),
    }];
    sim.set_signal_program(0, all_red).unwrap();
    assert!(
        sim.set_signal_program(
            0,
            vec![Phase {
                duration_s: 5.0,
                min_s: 5.0,
                max_s: 5.0,
                state: b"rr".to_vec()
            }]
        )
        .is_err()
    );
    // after the vehicles already too close to stop, nobody crosses on red
    for _ in 0..5 {
        sim.step(t);
        t += 1.0;
    }
    sim.take_edge_stats();
    let mut red_exits = 0;
    while t < 290.0 {
        sim.step(t);
        red_exits += sim.take_edge_stats()[in_edge].exits;
        t += 1.0;
    }
    assert_eq!(red_exits, 0);
    assert_eq!(sim.signal_state(0), b"r");
}

fn actuated_net(min: f64, max: f64) -> Network {
    let xml = straight_net(
        400.0,
        300.0,
        13.89,
        Some(&[("G", 20.0), ("y", 3.0), ("r", 20.0)]),
    )
    .replace(r#"type="static""#, r#"type="actuated""#)
    .replace(
        r#"<phase duration="20" state="G"/>"#,
        &format!(r#"<phase duration="20" state="G" minDur="{min}" maxDur="{max}"/>"#),
    );
    net_from(&xml)
}

/// Lengths of the green phases seen in `secs` of simulation with a flow of `period` s.
fn greens(period: Option<f64>, secs: f64) -> Vec<f64> {
    // A minimum green long enough to start the queue between the detector and the stop line,
    // as signal engineers set it.
    let net = actuated_net(10.0, 45.0);
    let xml = match period {
        Some(p) => format!(
            r#"<routes><flow id="f" begin="0" end="{secs}" period="{p}" departSpeed="max"><route edges="in out"/></flow></routes>"#
        ),
        None => "<routes/>".to_string(),
    };
    let demand = demand_from(&net, &xml);
    let mut sim = sim(net, demand, 3);
    let (mut t, mut start, mut out) = (0.0, 0.0, Vec::new());
    let mut was_green = true;
    while t < secs {
        sim.step(t);
        let green = sim.signal_state(0) == b"G";
        if green && !was_green {
            start = t;
        } else if !green && was_green {
            out.push(t - start);
        }
        was_green = green;
        t += 1.0;
    }
    out
}

#[test]
fn actuated_green_gaps_out_when_empty_and_extends_under_traffic() {
    let empty = greens(None, 600.0);
    assert!(
        empty.iter().all(|&g| (10.0..=12.0).contains(&g)),
        "empty approach: {empty:?}"
    );
    // a vehicle every 1.5 s keeps detector gaps below 3 s: green runs to its maximum
    let busy = greens(Some(1.5), 600.0);
    assert!(
        busy.iter().skip(1).any(|&g| g >= 44.0),
        "busy approach: {busy:?}"
    );
}

/// The sample district with its traffic only: the scene's other simulations are other crates,
/// which this one does not depend on (their tables are dropped from a copy of the scene).
fn district_sim(seed: u64) -> Sim {
    let data = repo().join("data").canonicalize().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("scenes/sample_district.toml"))
        .unwrap()
        .replace("\"../data/", &format!("\"{}/", data.display()));
    let mut kept = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with('[') {
            let table = line.trim_start_matches('[');
            skipping = (table.starts_with("simulations.")
                && !table.starts_with("simulations.traffic"))
                || table.starts_with("scenario");
        }
        if !skipping && !line.starts_with("tripinfo") {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    let path = dir.path().join("district.toml");
    std::fs::write(&path, kept).unwrap();
    let scene = Scene::load(&path).unwrap();
    let mut reg = ModuleRegistry::new();
    reg.add_simulation(TrafficModule);
    Sim::build(
        &scene,
        &reg,
        SimOptions {
            seed: Some(seed),
            strict_schedule: true,
        },
    )
    .unwrap()
}

#[test]
fn in_a_scene_roads_vehicles_and_kpis_appear_and_runs_repeat_bit_for_bit() {
    let mut a = district_sim(42);
    // 601 steps: the last one (t = 600 s) mirrors the vehicles into entities
    for _ in 0..601 {
        a.step();
    }
    let world = a.world_mut();
    let roads = world
        .query::<(&Road, &FeatureId)>()
        .iter(world)
        .filter(|(_, f)| f.layer == "traffic")
        .count();
    let vehicles = world.query::<&Vehicle>().iter(world).count();
    let running = world.resource::<TrafficSim>().0.running();
    assert!(roads > 50, "{roads} road entities from the network");
    assert_eq!(
        vehicles as u64, running,
        "vehicles are mirrored as entities"
    );
    let kpis = world.resource::<Kpis>();
    assert!(kpis.get("traffic.arrived", "city").unwrap() > 100.0);
    let tti = kpis.get("traffic.travel_time_index", "city").unwrap();
    assert!((1.0..3.0).contains(&tti), "TTI {tti}");
    assert!(
        kpis.get("traffic.edge.mean_speed_mps", "-h01").is_some(),
        "per-edge KPIs"
    );
    let ha = a.state_hash();
    let mut b = district_sim(42);
    let mut c = district_sim(43);
    for _ in 0..601 {
        b.step();
        c.step();
    }
    assert_eq!(ha, b.state_hash(), "same scene and seed, same state");
    assert_ne!(ha, c.state_hash(), "another seed, another state");
}

#[test]
fn the_traffic_core_runs_without_bevy() {
    // The core is plain Rust: a planner's script can drive it directly.
    let (net, demand) = district();
    let mut sim = Traffic::new(Arc::new(net), demand, TrafficConfig::default());
    sim.step(0.0);
    assert!(sim.running() > 0);
}
