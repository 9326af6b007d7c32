//! Bad scenes and bad data: each is an error that names the file, the place and what is wrong.

mod common;

use citytwin_engine::import::ImportError;
use citytwin_engine::scene::{Scene, SceneError};
use citytwin_engine::sim::{Sim, SimError, SimOptions};

/// Replace `from` by `to` in the sample scene (paths made absolute) and load it from a temp dir.
fn load_variant(from: &str, to: &str) -> (Result<Scene, SceneError>, String) {
    let text = common::sample_text_absolute();
    assert!(
        text.contains(from),
        "the sample scene no longer contains {from:?}"
    );
    let text = text.replacen(from, to, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = common::scene_with(dir.path(), "bad.toml", &text);
    (Scene::load(&path), text)
}

/// The 1-based line of the first occurrence of `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text[..text.find(needle).expect("needle in text")]
        .matches('\n')
        .count()
        + 1
}

/// Assert the error names bad.toml, points at the line holding `at`, and mentions every `words`.
fn expect_error(from: &str, to: &str, at: &str, words: &[&str]) {
    let (r, text) = load_variant(from, to);
    let e = r.expect_err("the scene should be rejected");
    let msg = e.to_string();
    assert!(msg.contains("bad.toml"), "no file name in: {msg}");
    let (line, col) = e.location().expect("a location");
    assert_eq!(line, line_of(&text, at), "wrong line in: {msg}");
    assert!(col >= 1);
    assert!(msg.contains(&format!(":{line}:")), "no line in: {msg}");
    for w in words {
        assert!(msg.contains(w), "{w:?} missing from: {msg}");
    }
}

#[test]
fn unknown_key() {
    expect_error(
        "seed = 42",
        "seed = 42\nsed = 1",
        "sed = 1",
        &["unknown field", "sed"],
    );
}

#[test]
fn wrong_type() {
    expect_error(
        "step_s = 1.0",
        "step_s = \"fast\"",
        "step_s = \"fast\"",
        &["clock.step_s", "expected f64"],
    );
}

#[test]
fn missing_required_key() {
    expect_error("seed = 42\n", "", "[scene]", &["missing field", "seed"]);
}

#[test]
fn toml_syntax_error() {
    expect_error(
        "seed = 42",
        "seed = = 42",
        "seed = = 42",
        &["scene.seed", "extra `=`"],
    );
}

#[test]
fn missing_data_file() {
    expect_error(
        "roads.geojson",
        "no_such_roads.geojson",
        "no_such_roads.geojson",
        &["layer[1].file", "does not exist"],
    );
}

#[test]
fn bad_start_time() {
    expect_error(
        "2026-07-15T07:30:00+08:00[Asia/Shanghai]",
        "half past seven",
        "half past seven",
        &["clock.start", "time zone"],
    );
}

#[test]
fn non_positive_step() {
    expect_error(
        "step_s = 1.0",
        "step_s = -1.0",
        "step_s = -1.0",
        &["clock.step_s", "positive"],
    );
}

#[test]
fn duration_shorter_than_a_step() {
    expect_error(
        "duration_s = 3600.0",
        "duration_s = 0.5",
        "duration_s = 0.5",
        &["clock.duration_s", "one step"],
    );
}

#[test]
fn h3_resolution_out_of_range() {
    expect_error(
        "h3_resolution = 11",
        "h3_resolution = 16",
        "h3_resolution = 16",
        &["index.h3_resolution", "0 to 15"],
    );
}

#[test]
fn origin_outside_wgs84() {
    expect_error(
        "lat = 31.8206",
        "lat = 131.8206",
        "origin =",
        &["scene.origin", "not a WGS84"],
    );
}

#[test]
fn duplicate_layer_name() {
    expect_error(
        "name = \"roads\"",
        "name = \"intersections\"",
        "name = \"intersections\"\nkind = \"roads\"",
        &["used twice"],
    );
}

#[test]
fn unknown_layer_kind() {
    expect_error(
        "kind = \"buildings\"",
        "kind = \"skyscrapers\"",
        "kind = \"skyscrapers\"",
        &["unknown variant", "skyscrapers"],
    );
}

#[test]
fn unknown_attribute_in_field_mapping() {
    expect_error(
        "fields = { rate_kg_s",
        "fields = { colour = \"c\", rate_kg_s",
        "colour",
        &["fields.colour", "not an attribute", "pollutant"],
    );
}

#[test]
fn unknown_unit() {
    expect_error(
        "unit = \"g/s\"",
        "unit = \"furlongs\"",
        "furlongs",
        &["fields.rate_kg_s", "unknown unit", "g/s"],
    );
}

#[test]
fn unknown_crs() {
    expect_error(
        "kind = \"sensors\"",
        "kind = \"sensors\"\ncrs = \"EPSG:999999\"",
        "crs = \"EPSG:999999\"",
        &["crs", "EPSG:999999"],
    );
}

#[test]
fn unknown_simulation_is_reported_at_its_table() {
    let (r, text) = load_variant("[output]", "[simulations.teleport]\nspeed = 1\n\n[output]");
    let scene = r.unwrap();
    let e = Sim::build(&scene, &common::registry(), SimOptions::default())
        .err()
        .expect("rejected");
    let msg = e.to_string();
    assert!(matches!(e, SimError::Scene(_)));
    assert!(
        msg.contains("simulations.teleport") && msg.contains("available: walkers"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(":{}:", line_of(&text, "speed = 1")))
            || msg.contains(&format!(":{}:", line_of(&text, "[simulations.teleport]"))),
        "{msg}"
    );
}

#[test]
fn module_parameter_errors_name_the_parameter() {
    let (r, _) = load_variant(
        "[output]",
        "[simulations.walkers]\ncount = \"many\"\n\n[output]",
    );
    let msg = Sim::build(&r.unwrap(), &common::registry(), SimOptions::default())
        .err()
        .expect("rejected")
        .to_string();
    assert!(
        msg.contains("simulations.walkers") && msg.contains("count") && msg.contains("bad.toml"),
        "{msg}"
    );
}

/// A data file with a bad attribute: the error names the file, the feature and the attribute.
#[test]
fn bad_feature_attribute_names_file_and_feature() {
    let dir = tempfile::tempdir().unwrap();
    let gj = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","properties":{"id":"ok","height":12},"geometry":{"type":"Polygon","coordinates":[[[117.227,31.820],[117.2272,31.820],[117.2272,31.8202],[117.227,31.820]]]}},
      {"type":"Feature","properties":{"id":"tower-7","height":"tall"},"geometry":{"type":"Polygon","coordinates":[[[117.228,31.820],[117.2282,31.820],[117.2282,31.8202],[117.228,31.820]]]}}]}"#;
    std::fs::write(dir.path().join("b.geojson"), gj).unwrap();
    let scene = "[scene]\nname = \"t\"\nseed = 1\norigin = { lon = 117.2272, lat = 31.8206 }\n[clock]\nstart = \"2026-07-15T08:00:00+08:00\"\nstep_s = 1.0\nduration_s = 10.0\n[[layer]]\nname = \"b\"\nkind = \"buildings\"\nfile = \"b.geojson\"\n";
    let path = common::scene_with(dir.path(), "s.toml", scene);
    let s = Scene::load(&path).unwrap();
    let e = Sim::build(&s, &common::registry(), SimOptions::default())
        .err()
        .expect("rejected");
    let msg = e.to_string();
    assert!(
        matches!(e, SimError::Import(ImportError::Feature { .. })),
        "{msg}"
    );
    assert!(
        msg.contains("b.geojson")
            && msg.contains("tower-7")
            && msg.contains("height_m")
            && msg.contains("'tall'"),
        "{msg}"
    );
}

/// Points in a buildings layer, and a corrupt file: both named.
#[test]
fn wrong_geometry_and_unreadable_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.geojson"),
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"x"},"geometry":{"type":"Point","coordinates":[117.2272,31.8206]}}]}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("junk.geojson"), "{ this is not json").unwrap();
    for (file, words) in [
        ("p.geojson", vec!["need polygons", "Point", "id x"]),
        ("junk.geojson", vec!["junk.geojson", "GDAL cannot open"]),
    ] {
        let scene = format!(
            "[scene]\nname = \"t\"\nseed = 1\norigin = {{ lon = 117.2272, lat = 31.8206 }}\n[clock]\nstart = \"2026-07-15T08:00:00Z\"\nstep_s = 1.0\nduration_s = 10.0\n[[layer]]\nname = \"b\"\nkind = \"buildings\"\nfile = \"{file}\"\n"
        );
        let path = common::scene_with(dir.path(), "s.toml", &scene);
        let msg = Sim::build(
            &Scene::load(&path).unwrap(),
            &common::registry(),
            SimOptions::default(),
        )
        .err()
        .expect("rejected")
        .to_string();
        for w in words {
            assert!(msg.contains(w), "{w:?} missing from {msg}");
        }
    }
}

#[test]
fn unreadable_scene_file_is_named() {
    let e = Scene::load("/no/such/scene.toml").unwrap_err().to_string();
    assert!(
        e.contains("/no/such/scene.toml") && e.contains("cannot read"),
        "{e}"
    );
}

/// A vector file given as the DEM is named, with what a DEM must be.
#[test]
fn dem_that_is_not_a_raster() {
    let (r, _) = load_variant("sample/dem.tif", "sample/roads.geojson");
    let msg = Sim::build(&r.unwrap(), &common::registry(), SimOptions::default())
        .err()
        .expect("rejected")
        .to_string();
    assert!(
        msg.contains("roads.geojson") && msg.contains("no raster bands"),
        "{msg}"
    );
}

#[test]
fn live_feed_with_a_bad_address() {
    expect_error(
        "[output]",
        "[[feed]]\nmqtt = \"mqtts://broker.city/rain/#\"\n\n[output]",
        "mqtt = ",
        &["feed[0].mqtt", "TLS is not built in"],
    );
    expect_error(
        "[output]",
        "[[feed]]\nmqtt = \"mqtt://broker.city/rain/#/gauges\"\n\n[output]",
        "mqtt = ",
        &["feed[0].mqtt", "wildcard"],
    );
}

#[test]
fn feed_with_no_source_or_two() {
    expect_error(
        "[output]",
        "[[feed]]\nmax_delay_s = 60.0\n\n[output]",
        "[[feed]]",
        &["feed[0]", "needs `file", "or `mqtt"],
    );
    expect_error(
        "[output]",
        "[[feed]]\nfile = \"dem.tif\"\nmqtt = \"mqtt://b/t\"\n\n[output]",
        "file = \"dem.tif\"",
        &["feed[0]", "not both"],
    );
    expect_error(
        "[output]",
        "[[feed]]\nmqtt = \"mqtt://b/t\"\nmax_delay_s = -1.0\n\n[output]",
        "max_delay_s",
        &["feed[0].max_delay_s", "zero or more"],
    );
}

#[test]
fn bad_store_urls_point_at_the_output_store() {
    for (url, says) in [
        ("postgresql://planner:secret@db.city/city", "password"),
        ("postgresql://db.city", "no database"),
        ("postgresql://db.city:99999/city", "port"),
    ] {
        expect_error(
            "store = \"../runs/citytwin.duckdb\"",
            &format!("store = \"{url}\""),
            "store = \"postgresql",
            &["output.store", says],
        );
    }
}
