//! A retiming changes what the signals do: starving one direction builds its queue.

use std::path::{Path, PathBuf};

use citytwin_engine::modules::ModuleRegistry;
use citytwin_engine::prelude::*;
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::{Sim, SimOptions};
use citytwin_signal_retiming::SignalRetiming;
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

fn registry() -> ModuleRegistry {
    let mut r = ModuleRegistry::new();
    r.add_simulation(TrafficModule);
    r.add_scenario(SignalRetiming);
    r
}

/// Largest queue (m) on the side-street approach v10 (north-bound into n11) after `at_s`.
fn side_queue(extra: &str) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = Sim::build(
        &sample_with(dir.path(), extra),
        &registry(),
        SimOptions::default(),
    )
    .unwrap();
    let mut worst: f64 = 0.0;
    for _ in 0..2400 {
        sim.step();
        if sim.clock().tick() > 900 && sim.clock().tick().is_multiple_of(60) {
            let q = sim
                .world()
                .resource::<Kpis>()
                .get("traffic.edge.queue_m", "v10")
                .unwrap_or(0.0);
            worst = worst.max(q);
        }
    }
    worst
}

#[test]
fn starving_the_side_street_builds_its_queue() {
    let base = side_queue("");
    // the arterial (h01/-h11) gets 80 s, the side streets 5 s
    let retimed = side_queue(
        "\n[[scenario]]\nplugin = \"signal_retiming\"\nparams = { at_s = 600.0, programs = { n11 = \"GGGGgrrrrGGGGgrrrr:80 yyyyyrrrryyyyyrrrr:4 rrrrrGGGgrrrrrGGGg:5 rrrrryyyyrrrrryyyy:4\" } }\n",
    );
    println!("side-street queue after retiming {retimed:.0} m, before {base:.0} m");
    assert!(
        retimed > base + 20.0,
        "side-street queue {retimed:.0} m vs {base:.0} m before"
    );
}

#[test]
fn a_program_that_does_not_fit_is_refused_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let e = Sim::build(
        &sample_with(dir.path(), "\n[[scenario]]\nplugin = \"signal_retiming\"\nparams = { programs = { n11 = \"GGrr:30 rrGG:30\" } }\n"),
        &registry(),
        SimOptions::default(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.contains("`programs.n11`") && e.contains("controls 4 movements") && e.contains("18"),
        "{e}"
    );
    let e = Sim::build(
        &sample_with(dir.path(), "\n[[scenario]]\nplugin = \"signal_retiming\"\nparams = { programs = { n00 = \"G:30\" } }\n"),
        &registry(),
        SimOptions::default(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("has no traffic light"), "{e}");
}
