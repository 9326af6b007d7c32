//! Bad pollution input gets an error that names the file, the line or the key, and what is
//! wrong — never a panic.

mod common;

use citytwin_engine::sim::{Sim, SimOptions};
use common::*;

fn build_error(dir: &std::path::Path, pollution: &str) -> String {
    let scene = scene(dir, &sample_with_pollution(dir, pollution)).expect("the scene parses");
    match Sim::build(&scene, &registry(), SimOptions::default()) {
        Ok(_) => panic!("built a scene that should fail:\n{pollution}"),
        Err(e) => e.to_string(),
    }
}

/// The error a scene gives when its weather file holds `csv`.
fn weather_error(dir: &std::path::Path, csv: &str) -> String {
    let w = dir.join("weather.csv");
    std::fs::write(&w, csv).unwrap();
    build_error(
        dir,
        &format!(
            "[simulations.pollution]\nweather = {{ file = \"{}\" }}",
            w.display()
        ),
    )
}

#[test]
fn bad_weather_files_name_the_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let e = weather_error(
        dir.path(),
        "time_s,wind_speed_mps,wind_from_deg,stability\n0,3,90,D\n600,3,95,G\n",
    );
    assert!(
        e.contains("weather.csv:3") && e.contains("`stability`") && e.contains("'G'"),
        "{e}"
    );
    let e = weather_error(
        dir.path(),
        "time_s,wind_speed_mps,wind_from_deg,stability\n0,3,90,D\n600,-2,95,C\n",
    );
    assert!(
        e.contains("weather.csv:3") && e.contains("wind speed -2"),
        "{e}"
    );
    let e = weather_error(dir.path(), "time_s,wind_speed_mps,stability\n0,3,D\n");
    assert!(
        e.contains("weather.csv:1") && e.contains("`wind_from_deg`"),
        "{e}"
    );
    let e = weather_error(
        dir.path(),
        "time,wind_speed_mps,wind_from_deg,stability\n2026-07-15 morning,3,90,D\n",
    );
    assert!(e.contains("weather.csv:2") && e.contains("`time`"), "{e}");
    let e = build_error(
        dir.path(),
        "[simulations.pollution]\nweather = { file = \"/no/such/weather.csv\" }",
    );
    assert!(
        e.contains("/no/such/weather.csv") && e.contains("cannot read"),
        "{e}"
    );
}

#[test]
fn bad_parameters_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let e = build_error(
        dir.path(),
        "[simulations.pollution]\nweather = { wind_sped_mps = 3.0, wind_from_deg = 90.0, stability = \"D\" }",
    );
    assert!(e.contains("wind_sped_mps"), "{e}");
    let e = build_error(
        dir.path(),
        "[simulations.pollution]\npoint_model = \"cloud\"\nweather = { wind_speed_mps = 3.0, wind_from_deg = 90.0, stability = \"D\" }",
    );
    assert!(e.contains("`point_model`") && e.contains("'cloud'"), "{e}");
    let e = build_error(
        dir.path(),
        "[simulations.pollution]\nweather = { wind_speed_mps = 3.0, wind_from_deg = 90.0 }",
    );
    assert!(e.contains("stability") && e.contains("cloud_oktas"), "{e}");
    let e = build_error(
        dir.path(),
        "[simulations.pollution]\nthresholds_ug_m3 = { NO2 = -5.0 }\nweather = { wind_speed_mps = 3.0, wind_from_deg = 90.0, stability = \"D\" }",
    );
    assert!(e.contains("thresholds_ug_m3.NO2"), "{e}");
}

#[test]
fn a_tracing_candidate_must_be_somewhere_real() {
    let dir = tempfile::tempdir().unwrap();
    let e = build_error(
        dir.path(),
        "[simulations.pollution]\nweather = { wind_speed_mps = 3.0, wind_from_deg = 90.0, stability = \"D\" }\n\
         [simulations.pollution.tracing]\npollutant = \"SO2\"\nreadings = \"run\"\n\
         candidates = [{ id = \"yard\", lon = 517.2, lat = 31.8 }]",
    );
    assert!(
        e.contains("`tracing.candidates`") && e.contains("'yard'"),
        "{e}"
    );
}

#[test]
fn readings_from_unknown_stations_are_rejected_when_the_scene_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("readings.csv");
    std::fs::write(
        &r,
        "station,time_s,pollutant,value_ug_m3\nHF-AQ1,60,SO2,3.5\nHF-AQ9,60,SO2,1.0\n",
    )
    .unwrap();
    let e = build_error(
        dir.path(),
        &format!(
            "[simulations.pollution]\nweather = {{ wind_speed_mps = 3.0, wind_from_deg = 90.0, stability = \"D\" }}\n\
             [simulations.pollution.tracing]\npollutant = \"SO2\"\nreadings = \"{}\"",
            r.display()
        ),
    );
    assert!(
        e.contains("readings.csv:3") && e.contains("'HF-AQ9'"),
        "{e}"
    );
}
