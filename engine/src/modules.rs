//! Scene modules: the simulations and scenario plugins a scene can name.
//!
//! A simulation crate or a scenario-plugin crate implements [`SceneModule`] and is registered in
//! a [`ModuleRegistry`]; a scene then switches it on with `[simulations.NAME]` or
//! `[[scenario]] plugin = "NAME"` and its parameters. The module parses its parameters into its
//! own typed struct with [`parse_params`] (unknown keys and wrong types are errors naming the key)
//! and adds its systems to the public [`crate::schedule::SimSet`]s.

use std::collections::BTreeMap;

use bevy::prelude::App;
use serde::de::DeserializeOwned;

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
