//! More demand means more trips and more congestion; a shift moves the peak.

use std::path::{Path, PathBuf};

use citytwin_demand_change::DemandChange;
use citytwin_engine::modules::ModuleRegistry;
use citytwin_engine::prelude::*;
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::{Sim, SimOptions};
use citytwin_traffic::TrafficModule;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

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

/// (inserted, TTI, mean delay) after the run.
fn run(extra: &str) -> (f64, f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = ModuleRegistry::new();
    reg.add_simulation(TrafficModule);
    reg.add_scenario(DemandChange);
    let mut sim = Sim::build(&sample_with(dir.path(), extra), &reg, SimOptions::default()).unwrap();
    for _ in 0..3600 {
        sim.step();
    }
    let trips = &sim
        .world()
        .resource::<citytwin_traffic::TrafficOutputs>()
        .all_trips;
    let delay = trips.iter().map(|t| t.time_loss_s).sum::<f64>() / trips.len() as f64;
    let k = sim.world().resource::<Kpis>();
    (
        k.get("traffic.inserted", "city").unwrap(),
        k.get("traffic.travel_time_index", "city").unwrap(),
        delay,
    )
}

#[test]
fn scaling_demand_scales_trips_and_congestion() {
    let (n0, tti0, d0) = run("");
    let (n1, tti1, d1) =
        run("\n[[scenario]]\nplugin = \"demand_change\"\nparams = { factor = 1.5 }\n");
    let (n2, _, d2) =
        run("\n[[scenario]]\nplugin = \"demand_change\"\nparams = { factor = 0.5 }\n");
    println!(
        "trips {n0} → ×1.5 {n1}, ×0.5 {n2}; delay {d0:.1} → {d1:.1} / {d2:.1} s; TTI {tti0:.3} → {tti1:.3}"
    );
    assert!(
        (n1 / n0 - 1.5).abs() < 0.06,
        "×1.5 gave {n1} trips against {n0}"
    );
    assert!(
        (n2 / n0 - 0.5).abs() < 0.06,
        "×0.5 gave {n2} trips against {n0}"
    );
    assert!(
        d1 > d0 && d0 > d2,
        "delay grows with demand: {d2:.1} < {d0:.1} < {d1:.1}"
    );
    assert!(tti1 > tti0);
}

#[test]
fn shifting_demand_moves_departures_out_of_the_window() {
    // everything planned in the first ten minutes leaves half an hour later
    let dir = tempfile::tempdir().unwrap();
    let mut reg = ModuleRegistry::new();
    reg.add_simulation(TrafficModule);
    reg.add_scenario(DemandChange);
    let scene = sample_with(
        dir.path(),
        "\n[[scenario]]\nplugin = \"demand_change\"\nparams = { shift_s = 1800.0, from_s = 0.0, until_s = 600.0 }\n",
    );
    let mut sim = Sim::build(&scene, &reg, SimOptions::default()).unwrap();
    // 600 steps: the last KPI sample (tick 540) counts what left in the first nine minutes
    for _ in 0..600 {
        sim.step();
    }
    let k = sim.world().resource::<Kpis>();
    assert_eq!(
        k.get("traffic.inserted", "city").unwrap(),
        0.0,
        "nobody left in the first ten minutes"
    );
}

#[test]
fn no_change_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = ModuleRegistry::new();
    reg.add_simulation(TrafficModule);
    reg.add_scenario(DemandChange);
    let e = Sim::build(
        &sample_with(
            dir.path(),
            "\n[[scenario]]\nplugin = \"demand_change\"\nparams = { factor = -2.0 }\n",
        ),
        &reg,
        SimOptions::default(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("`factor`"), "{e}");
}
