//! Scenes for the pollution tests, written to a temporary folder.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use citytwin_engine::modules::ModuleRegistry;
use citytwin_engine::scene::Scene;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The simulations the tests run: pollution only (this crate builds on the engine alone; the
/// app's tests run the sample scene with its traffic).
pub fn registry() -> ModuleRegistry {
    let mut r = ModuleRegistry::new();
    r.add_simulation(citytwin_pollution::PollutionModule);
    r
}

/// The sample district's scene text with absolute data paths and its outputs (store, trip
/// file, tracing report) in `dir`.
pub fn sample_text(dir: &Path) -> String {
    let data = repo().join("data").canonicalize().unwrap();
    std::fs::read_to_string(repo().join("scenes/sample_district.toml"))
        .unwrap()
        .replace("\"../data/", &format!("\"{}/", data.display()))
        .replace("\"../runs/", &format!("\"{}/", dir.display()))
}

/// The sample text without its traffic, and with its `[simulations.pollution…]` tables
/// replaced by `pollution`.
pub fn sample_with_pollution(dir: &Path, pollution: &str) -> String {
    let text = sample_text(dir);
    let start = text.find("[simulations.traffic]").unwrap();
    let end = text.find("[output]").unwrap();
    format!("{}{pollution}\n\n{}", &text[..start], &text[end..])
}

/// Write `text` as `scene.toml` in `dir` and load it.
pub fn scene(dir: &Path, text: &str) -> Result<Scene, String> {
    let path = dir.join("scene.toml");
    std::fs::write(&path, text).unwrap();
    Scene::load(&path).map_err(|e| e.to_string())
}
