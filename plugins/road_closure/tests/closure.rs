//! The closure is real: the closed road carries nobody in its window and traffic again after,
//! and the vehicles that meant to use it still arrive by other roads.

use std::path::{Path, PathBuf};

use bevy::prelude::*;
use citytwin_engine::modules::ModuleRegistry;
use citytwin_engine::prelude::*;
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::{Sim, SimOptions};
use citytwin_road_closure::RoadClosure;
use citytwin_traffic::TrafficModule;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The sample district with `extra` appended, written into `dir` with absolute data paths.
fn sample_with(dir: &Path, extra: &str) -> Scene {
    let data = repo().join("data").canonicalize().unwrap();
    let text = std::fs::read_to_string(repo().join("scenes/sample_district.toml"))
        .unwrap()
        .replace("\"../data/", &format!("\"{}/", data.display()))
        .replace("tripinfo = \"../runs/sample_district.tripinfo.xml\"\n", "")
        + extra;
    let p = dir.join("scene.toml");
    std::fs::write(&p, text).unwrap();
    Scene::load(&p).unwrap()
}

fn registry() -> ModuleRegistry {
    let mut r = ModuleRegistry::new();
    r.add_simulation(TrafficModule);
    r.add_scenario(RoadClosure);
    r
}

/// Flow on `road` in each KPI interval: (tick, veh/h).
fn flows(sim: &mut Sim, road: &str, ticks: u64) -> Vec<(u64, f64)> {
    let mut out = Vec::new();
    for _ in 0..ticks {
        sim.step();
        let tick = sim.clock().tick();
        if tick.is_multiple_of(60) {
            let k = sim.world().resource::<Kpis>();
            out.push((
                tick,
                k.get("traffic.edge.flow_vph", road).unwrap_or(f64::NAN),
            ));
        }
    }
    out
}

#[test]
fn a_closed_road_is_empty_in_its_window_and_busy_outside_it() {
    let dir = tempfile::tempdir().unwrap();
    let scene = sample_with(
        dir.path(),
        "\n[[scenario]]\nplugin = \"road_closure\"\nparams = { roads = [\"h11\"], from_s = 600.0, until_s = 1800.0 }\n",
    );
    let mut sim = Sim::build(
        &scene,
        &registry(),
        SimOptions {
            seed: None,
            strict_schedule: true,
        },
    )
    .unwrap();
    let f = flows(&mut sim, "h11", 3000);
    // A KPI at tick t covers the minute before it. Vehicles already on the road when it closes
    // drive off it within the first two minutes; after that nobody uses it until it reopens.
    let during: Vec<f64> = f
        .iter()
        .filter(|(t, _)| (840..=1800).contains(t))
        .map(|x| x.1)
        .collect();
    let before: f64 = f
        .iter()
        .filter(|(t, _)| (120..=600).contains(t))
        .map(|x| x.1)
        .sum();
    let after: f64 = f
        .iter()
        .filter(|(t, _)| (1920..=3000).contains(t))
        .map(|x| x.1)
        .sum();
    assert!(
        during.iter().all(|&q| q == 0.0),
        "flow while closed: {during:?}"
    );
    assert!(
        before > 0.0 && after > 0.0,
        "before {before}, after {after}"
    );
    let k = sim.world().resource::<Kpis>();
    let (inserted, arrived, running) = (
        k.get("traffic.inserted", "city").unwrap(),
        k.get("traffic.arrived", "city").unwrap(),
        k.get("traffic.running", "city").unwrap(),
    );
    assert_eq!(inserted, arrived + running, "no vehicle lost");
    assert!(k.get("traffic.reroutes", "city").unwrap() > 0.0);
    assert_eq!(k.get("traffic.teleports", "city").unwrap(), 0.0);
}

#[test]
fn closing_roads_makes_trips_detour_against_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &str| {
        let scene = sample_with(dir.path(), extra);
        let mut sim = Sim::build(&scene, &registry(), SimOptions::default()).unwrap();
        for _ in 0..3600 {
            sim.step();
        }
        let trips = &sim
            .world()
            .resource::<citytwin_traffic::TrafficOutputs>()
            .all_trips;
        trips.iter().map(|t| t.route_length_m).sum::<f64>() / trips.len() as f64
    };
    let base = run("");
    let closed = run(
        "\n[[scenario]]\nplugin = \"road_closure\"\nparams = { roads = [\"h11\", \"-h11\", \"h21\", \"-h21\"] }\n",
    );
    assert!(
        closed > base,
        "mean route with the arterial closed {closed:.1} m vs {base:.1} m"
    );
}

#[test]
fn bad_parameters_name_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let build = |params: &str| {
        let scene = sample_with(
            dir.path(),
            &format!("\n[[scenario]]\nplugin = \"road_closure\"\nparams = {params}\n"),
        );
        Sim::build(&scene, &registry(), SimOptions::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = build("{ roads = [\"h11\", \"nowhere\"] }");
    assert!(
        e.contains("`roads[1]`: no road 'nowhere'") && e.contains("scene.toml:"),
        "{e}"
    );
    let e = build("{ roads = [\"h11\"], from_s = 900.0, until_s = 600.0 }");
    assert!(e.contains("`until_s`"), "{e}");
    let e = build("{ roads = [\"h11\"], from = 3 }");
    assert!(e.contains("unknown field `from`"), "{e}");
}
