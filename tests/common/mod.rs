//! What the app's integration tests share: the repository, and the sample scenes copied into a
//! test's folder.

#![allow(dead_code)]

pub mod postgres;

use std::path::{Path, PathBuf};

use citytwin_engine::scene::Scene;
use citytwin_engine::sim::{Sim, SimOptions};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A sample scene (`scenes/NAME.toml`) with its data paths made absolute and its outputs
/// (store `runs.duckdb`, trip file, tracing report, exports) in `dir`, `edit` applied.
pub fn scene_copy_of(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let data = repo().join("data").canonicalize().unwrap();
    let t = std::fs::read_to_string(repo().join(format!("scenes/{name}.toml")))
        .unwrap()
        .replace("\"../data/", &format!("\"{}/", data.display()));
    // Keep the store inside the test's folder too.
    let t = t.replace(
        "store = \"../runs/citytwin.duckdb\"",
        "store = \"runs.duckdb\"",
    );
    assert!(t.contains("store = \"runs.duckdb\""));
    let t = t.replace(
        &format!("tripinfo = \"../runs/{name}.tripinfo.xml\""),
        "tripinfo = \"tripinfo.xml\"",
    );
    assert!(t.contains("tripinfo = \"tripinfo.xml\""));
    let t = t.replace(
        &format!("report = \"../runs/{name}.tracing.md\""),
        "report = \"tracing.md\"",
    );
    assert!(t.contains("report = \"tracing.md\""));
    // Any other output (the flood's exports) beside them.
    let t = t.replace("\"../runs/", "\"");
    let p = dir.join("scene.toml");
    std::fs::write(&p, edit(t)).unwrap();
    p
}

/// The coupled sample scene's text (`sample_rainstorm`) without its design storm (the
/// `rainstorm` scenario), so rain comes only from what a test gives it, and `duration_s` long.
pub fn without_design_storm(t: String, duration_s: f64) -> String {
    let storm = "[[scenario]]\nplugin = \"rainstorm\"\n";
    let at = t.find(storm).expect("the sample storm's scenario");
    let end = at + t[at..].find("\n\n").expect("a blank line after it");
    format!("{}{}", &t[..at], &t[end + 2..]).replace(
        "duration_s = 3600.0",
        &format!("duration_s = {duration_s:?}"),
    )
}

/// The coupled sample scene's text (`sample_rainstorm`) with every coupling off: the water does
/// not act on the traffic, the leak's zone closes nothing and orders nobody out, and vehicles
/// do not emit into the air. Everything else is the same.
pub fn uncoupled(t: String) -> String {
    let t = t
        .replace(
            ", close_roads = true, evacuate = true, evacuation = { to = [\"v42\"], car_share = 0.05, people_per_car = 1.5, over_s = 1200.0 }",
            "",
        )
        .replace(
            "[simulations.flood.traffic]\nlayer = \"traffic\"\nslow_depth_m = 0.01\nclose_depth_m = 0.3\nreopen_margin_m = 0.05\n",
            "",
        )
        .replace(
            "[simulations.pollution]\n",
            "[simulations.pollution]\ntraffic = false\n",
        );
    assert!(
        !t.contains("close_roads = ") && !t.contains("\n[simulations.flood.traffic]"),
        "the scene's couplings are not written as uncoupled() expects"
    );
    t
}

/// Build the scene at `path` with every module the app has, as `citytwin run` would, with the
/// schedule's ambiguity check an error (as tests want it).
pub fn build_sim(path: &Path) -> Sim {
    let scene = Scene::load(path).unwrap_or_else(|e| panic!("{e}"));
    Sim::build(
        &scene,
        &citytwin::registry(),
        SimOptions {
            seed: None,
            strict_schedule: true,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Run the scene at `path` into the store `store`, as `citytwin run` does, with the schedule's
/// ambiguity check an error.
pub fn record(path: &Path, store: &Path) -> citytwin_engine::runner::RunOutcome {
    let scene = Scene::load(path).unwrap_or_else(|e| panic!("{e}"));
    citytwin_engine::runner::run_scene(
        citytwin_engine::runner::RunRequest {
            scene: &scene,
            registry: &citytwin::registry(),
            opts: SimOptions {
                seed: None,
                strict_schedule: true,
            },
            store: citytwin_engine::store::RunStore::open(store).unwrap_or_else(|e| panic!("{e}")),
            stop: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
            fork: None,
            pace: None,
            on_start: None,
        },
        &mut |_, _| {},
    )
    .unwrap_or_else(|e| panic!("{e}"))
}
