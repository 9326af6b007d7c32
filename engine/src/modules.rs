//! Scene modules: the simulations and scenario plugins a scene can name.
//!
//! A simulation crate or a scenario-plugin crate implements [`SceneModule`] and is registered in
//! a [`ModuleRegistry`]; a scene then switches it on with `[simulations.NAME]` or
//! `[[scenario]] plugin = "NAME"` and its parameters. The module parses its parameters into its
//! own typed struct with [`parse_params`] (unknown keys and wrong types are errors naming the key)
//! and adds its systems to the public [`crate::schedule::SimSet`]s.

use std::collections::BTreeMap;

use std::collections::BTreeSet;

use bevy::ecs::schedule::IntoScheduleConfigs;
use bevy::ecs::system::ScheduleSystem;
use bevy::prelude::{App, Resource};
use serde::de::DeserializeOwned;

use crate::schedule::SimStep;

/// A simulation or scenario plugin that a scene can switch on by name.
pub trait SceneModule: Send + Sync + 'static {
    /// The name scenes use.
    fn name(&self) -> &'static str;
    /// One line for `citytwin check` and docs.
    fn description(&self) -> &'static str;
    /// Parse `params` and add the module's resources and systems to `app`. The error text should
    /// name the parameter at fault; the engine adds the scene file and line.
    fn build(&self, params: &toml::Table, app: &mut App) -> Result<(), String>;
}

/// Deserialize a module's parameters into its typed struct (use `#[serde(deny_unknown_fields)]`).
/// The error names the parameter at fault, e.g. ``"`count`: invalid type: string "many", expected usize"``.
pub fn parse_params<T: DeserializeOwned>(params: &toml::Table) -> Result<T, String> {
    serde_path_to_error::deserialize(toml::Value::Table(params.clone())).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().message().trim().to_string();
        if path == "." {
            inner
        } else {
            format!("`{path}`: {inner}")
        }
    })
}

/// Check that parameter `name` is a positive number.
pub fn check_positive(name: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(format!("`{name}`: {v} must be positive"))
    }
}

/// Check a time parameter `name`: seconds after the scene start, finite and not negative.
pub fn check_time(name: &str, t_s: f64) -> Result<(), String> {
    if t_s.is_finite() && t_s >= 0.0 {
        Ok(())
    } else {
        Err(format!("`{name}`: {t_s} must be 0 or more seconds"))
    }
}

/// Check a time window `[from_s, until_s)` given as parameters `from_s` and `until_s` (none:
/// to the end of the run).
pub fn check_window(from_s: f64, until_s: Option<f64>) -> Result<(), String> {
    check_time("from_s", from_s)?;
    match until_s {
        Some(u) if !(u.is_finite() && u > from_s) => {
            Err(format!("`until_s`: {u} must come after from_s ({from_s})"))
        }
        _ => Ok(()),
    }
}

/// Which modules have added their systems.
#[derive(Resource, Default)]
struct SystemsAdded(BTreeSet<&'static str>);

/// Add a module's systems to [`SimStep`] the first time the module is built in a scene only: a
/// scene may use a plugin many times (`[[scenario]]` twice), and one set of systems serves every
/// instance (each instance keeps its own data, e.g. in a component). `module` is the module's
/// name.
pub fn add_systems_once<M>(
    app: &mut App,
    module: &'static str,
    systems: impl IntoScheduleConfigs<ScheduleSystem, M>,
) {
    let mut added = app
        .world_mut()
        .get_resource_or_insert_with(SystemsAdded::default);
    if added.0.insert(module) {
        app.add_systems(SimStep, systems);
    }
}

/// The modules this build of citytwin knows.
#[derive(Default)]
pub struct ModuleRegistry {
    simulations: BTreeMap<&'static str, Box<dyn SceneModule>>,
    scenarios: BTreeMap<&'static str, Box<dyn SceneModule>>,
}

impl ModuleRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a simulation.
    pub fn add_simulation(&mut self, m: impl SceneModule) -> &mut Self {
        self.simulations.insert(m.name(), Box::new(m));
        self
    }

    /// Register a scenario plugin.
    pub fn add_scenario(&mut self, m: impl SceneModule) -> &mut Self {
        self.scenarios.insert(m.name(), Box::new(m));
        self
    }

    /// A simulation by name.
    pub fn simulation(&self, name: &str) -> Option<&dyn SceneModule> {
        self.simulations.get(name).map(|b| b.as_ref())
    }

    /// A scenario plugin by name.
    pub fn scenario(&self, name: &str) -> Option<&dyn SceneModule> {
        self.scenarios.get(name).map(|b| b.as_ref())
    }

    /// Names of the registered simulations.
    pub fn simulation_names(&self) -> Vec<&'static str> {
        self.simulations.keys().copied().collect()
    }

    /// Names of the registered scenario plugins.
    pub fn scenario_names(&self) -> Vec<&'static str> {
        self.scenarios.keys().copied().collect()
    }
}
