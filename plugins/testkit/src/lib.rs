//! # citytwin-plugin-testkit
//!
//! Run a scenario plugin on the sample district (`scenes/sample_district.toml`, with its
//! traffic and air quality) in a few lines, for a plugin's tests:
//!
//! ```no_run
//! # use citytwin_engine::modules::SceneModule;
//! # fn demo(my_plugin: impl SceneModule) {
//! use citytwin_plugin_testkit::SampleRun;
//! let mut run = SampleRun::new(
//!     my_plugin,
//!     r#"[[scenario]]
//!        plugin = "my_plugin"
//!        params = { roads = ["h11"] }"#,
//! )
//! .expect("the scene builds");
//! run.steps(600);
//! let tti = run.kpi("traffic.travel_time_index", "city");
//! # }
//! ```
//!
//! The scene is written to a temporary folder with absolute data paths, no tripinfo file, the
//! tracing report inside the folder and none of the sample's own `[[scenario]]`s; the registry
//! holds the traffic and pollution simulations and the plugin under test.

use std::path::PathBuf;

use citytwin_engine::modules::{ModuleRegistry, SceneModule};
use citytwin_engine::recorder::Kpis;
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::{Sim, SimOptions};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The sample district with the traffic simulation and one plugin.
pub struct SampleRun {
    /// The simulation.
    pub sim: Sim,
    _dir: tempfile::TempDir,
}

impl SampleRun {
    /// The sample scene with `extra` TOML appended (your `[[scenario]]`), built with the
    /// traffic simulation and `plugin`. Errors are the scene errors a user would see.
    pub fn new(plugin: impl SceneModule, extra: &str) -> Result<Self, String> {
        Self::with_seed(plugin, extra, None)
    }

    /// As [`SampleRun::new`], with another seed.
    pub fn with_seed(
        plugin: impl SceneModule,
        extra: &str,
        seed: Option<u64>,
    ) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let data = repo()
            .join("data")
            .canonicalize()
            .map_err(|e| e.to_string())?;
        let text = std::fs::read_to_string(repo().join("scenes/sample_district.toml"))
            .map_err(|e| e.to_string())?
            .replace("\"../data/", &format!("\"{}/", data.display()))
            .replace("tripinfo = \"../runs/sample_district.tripinfo.xml\"\n", "")
            .replace(
                "\"../runs/sample_district.tracing.md\"",
                &format!("\"{}\"", dir.path().join("tracing.md").display()),
            );
        // The sample's own scenarios are other plugins: only the one under test runs.
        let mut own = String::new();
        let mut skipping = false;
        for line in text.lines() {
            if line.starts_with('[') {
                skipping = line.starts_with("[[scenario]]");
            }
            if !skipping {
                own.push_str(line);
                own.push('\n');
            }
        }
        let path = dir.path().join("scene.toml");
        std::fs::write(&path, format!("{own}\n{extra}\n")).map_err(|e| e.to_string())?;
        let scene = Scene::load(&path).map_err(|e| e.to_string())?;
        let mut registry = ModuleRegistry::new();
        registry.add_simulation(citytwin_traffic::TrafficModule);
        registry.add_simulation(citytwin_pollution::PollutionModule);
        registry.add_scenario(plugin);
        let sim = Sim::build(
            &scene,
            &registry,
            SimOptions {
                seed,
                strict_schedule: true,
            },
        )
        .map_err(|e| e.to_string())?;
        Ok(Self { sim, _dir: dir })
    }

    /// Advance `n` steps.
    pub fn steps(&mut self, n: u64) -> &mut Self {
        for _ in 0..n {
            self.sim.step();
        }
        self
    }

    /// A KPI's current value (`scope` is `"city"` or a feature id).
    pub fn kpi(&self, name: &str, scope: &str) -> Option<f64> {
        self.sim.world().resource::<Kpis>().get(name, scope)
    }

    /// Every trip finished so far.
    pub fn trips(&self) -> &[citytwin_traffic::TripRecord] {
        &self
            .sim
            .world()
            .resource::<citytwin_traffic::TrafficOutputs>()
            .all_trips
    }
}
