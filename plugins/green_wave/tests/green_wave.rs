//! Priority at the signals cuts the emergency vehicle's travel time; cross traffic pays.

use std::path::{Path, PathBuf};

use citytwin_engine::modules::ModuleRegistry;
use citytwin_engine::prelude::*;
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::{Sim, SimOptions};
use citytwin_green_wave::GreenWave;
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

/// (emergency travel time s, its standing time s, everyone else's mean delay s)
fn run(priority: bool, depart_s: f64) -> (f64, f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = ModuleRegistry::new();
    reg.add_simulation(TrafficModule);
    reg.add_scenario(GreenWave);
    let extra = format!(
        "\n[[scenario]]\nplugin = \"green_wave\"\nparams = {{ from = \"h01\", to = \"h31\", depart_s = {depart_s}, priority = {priority} }}\n"
    );
    let mut sim = Sim::build(
        &sample_with(dir.path(), &extra),
        &reg,
        SimOptions::default(),
    )
    .unwrap();
    for _ in 0..3600 {
        sim.step();
    }
    let trips = &sim
        .world()
        .resource::<citytwin_traffic::TrafficOutputs>()
        .all_trips;
    let e = trips
        .iter()
        .find(|t| t.id == "emergency-1")
        .expect("the emergency vehicle arrived");
    let others: Vec<_> = trips.iter().filter(|t| t.id != "emergency-1").collect();
    let delay = others.iter().map(|t| t.time_loss_s).sum::<f64>() / others.len() as f64;
    let k = sim.world().resource::<Kpis>();
    assert_eq!(
        k.get("traffic.vehicle.travel_time_s", "emergency-1"),
        Some(e.duration_s())
    );
    (e.duration_s(), e.waiting_s, delay)
}

#[test]
fn priority_cuts_the_emergency_vehicles_time_at_the_signals() {
    // several departures, so the result is not one lucky phase
    let (mut with, mut without, mut stand_with, mut stand_without) = (0.0, 0.0, 0.0, 0.0);
    for depart in [600.0, 900.0, 1200.0, 1500.0, 1800.0] {
        let (a, sa, _) = run(true, depart);
        let (b, sb, _) = run(false, depart);
        with += a;
        without += b;
        stand_with += sa;
        stand_without += sb;
    }
    println!(
        "emergency vehicle h01 → h31, 5 departures: {with:.0} s with priority, {without:.0} s without; standing {stand_with:.0} s vs {stand_without:.0} s"
    );
    assert!(with < without, "{with} vs {without}");
    assert!(
        stand_with < stand_without,
        "standing {stand_with} vs {stand_without}"
    );
}
