//! Source tracing recovers a planted source: a simulation where one of five candidate places
//! emits, ten stations read it (with 10 % noise) in a wind that turns through the day, and the
//! tracing report at the end names the right place and its rate.

mod common;

use std::fmt::Write as _;

use citytwin_engine::geo_frame::{GeoFrame, LonLat};
use citytwin_engine::prelude::Kpis;
use citytwin_engine::sim::{Sim, SimOptions};
use common::*;

const ORIGIN: (f64, f64) = (117.2272, 31.8206);

fn point_features(frame: &GeoFrame, feats: &[(String, [f64; 2])]) -> String {
    let mut s = String::from(
        "{\"type\":\"FeatureCollection\",\"crs\":{\"type\":\"name\",\"properties\":{\"name\":\"urn:ogc:def:crs:OGC:1.3:CRS84\"}},\"features\":[",
    );
    for (k, (props, xy)) in feats.iter().enumerate() {
        let ll = frame.to_wgs84(geo::Coord { x: xy[0], y: xy[1] });
        let _ = write!(
            s,
            "{}{{\"type\":\"Feature\",\"properties\":{props},\"geometry\":{{\"type\":\"Point\",\"coordinates\":[{:.9},{:.9}]}}}}",
            if k > 0 { "," } else { "" },
            ll.lon,
            ll.lat
        );
    }
    s.push_str("]}");
    s
}

/// A scene where candidate `planted` emits `rate_g_s` of tracer `X`; returns the scene text.
fn planted_scene(dir: &std::path::Path, planted: usize, rate_g_s: f64) -> String {
    let frame = GeoFrame::new(LonLat::new(ORIGIN.0, ORIGIN.1));
    let candidates = [
        [0.0, 0.0],
        [-450.0, 250.0],
        [350.0, -300.0],
        [-150.0, -500.0],
        [500.0, 400.0],
    ];
    let sources: Vec<(String, [f64; 2])> = candidates
        .iter()
        .enumerate()
        .map(|(k, xy)| {
            let rate = if k == planted { rate_g_s } else { 0.0 };
            (
                format!("{{\"id\":\"c{k}\",\"pollutant\":\"X\",\"rate_g_s\":{rate}}}"),
                *xy,
            )
        })
        .collect();
    let mut stations = Vec::new();
    for (k, (r, a)) in [
        (300.0, 10.0),
        (300.0, 100.0),
        (300.0, 190.0),
        (300.0, 280.0),
        (700.0, 55.0),
        (700.0, 145.0),
        (700.0, 235.0),
        (700.0, 325.0),
        (900.0, 0.0),
        (900.0, 180.0),
    ]
    .iter()
    .enumerate()
    {
        let ang = f64::to_radians(*a);
        stations.push((
            format!("{{\"id\":\"s{k}\",\"kind\":\"air_quality\",\"station\":\"ST{k}\",\"pollutants\":\"X\"}}"),
            [r * ang.sin(), r * ang.cos()],
        ));
    }
    std::fs::write(
        dir.join("sources.geojson"),
        point_features(&frame, &sources),
    )
    .unwrap();
    std::fs::write(
        dir.join("sensors.geojson"),
        point_features(&frame, &stations),
    )
    .unwrap();
    // The wind turns through the compass in 20-minute steps, stability alternating C and D.
    let mut w = String::from("time_s,wind_speed_mps,wind_from_deg,stability,mixing_height_m\n");
    for k in 0..12 {
        let _ = writeln!(
            w,
            "{},{},{},{},800",
            k * 1200,
            2.5 + (k % 3) as f64,
            (k * 37) % 360,
            if k % 2 == 0 { "C" } else { "D" }
        );
    }
    std::fs::write(dir.join("weather.csv"), w).unwrap();
    format!(
        r#"[scene]
name = "planted source"
seed = 11
origin = {{ lon = {lon}, lat = {lat} }}

[clock]
start = "2026-07-15T10:00:00+08:00[Asia/Shanghai]"
step_s = 5.0
duration_s = 14400.0

[[layer]]
name = "sources"
kind = "emission_sources"
file = "sources.geojson"
fields = {{ rate_kg_s = {{ field = "rate_g_s", unit = "g/s" }} }}

[[layer]]
name = "sensors"
kind = "sensors"
file = "sensors.geojson"

[simulations.pollution]
traffic = false
grid_cell_m = 50.0
receptor_interval_s = 300.0
map_interval_s = 3600.0

[simulations.pollution.weather]
file = "weather.csv"

[simulations.pollution.tracing]
pollutant = "X"
readings = "run"
noise_fraction = 0.1
relative_error = 0.1
absolute_error_ug_m3 = 0.01
report = "tracing.md"

[output]
store = "runs.duckdb"
"#,
        lon = ORIGIN.0,
        lat = ORIGIN.1
    )
}

#[test]
fn tracing_recovers_a_planted_source() {
    for (planted, rate_g_s) in [(1usize, 2.0), (3, 0.5)] {
        let dir = tempfile::tempdir().unwrap();
        let sc = scene(dir.path(), &planted_scene(dir.path(), planted, rate_g_s)).unwrap();
        let mut sim = Sim::build(&sc, &registry(), SimOptions::default()).unwrap();
        while !sim.finished() {
            sim.step();
        }
        let report = std::fs::read_to_string(dir.path().join("tracing.md")).unwrap();
        let kpis = sim.world().resource::<Kpis>();
        let want = format!("c{planted}");
        // The report is the test's record of what tracing found (shown with --nocapture).
        eprintln!("{report}");
        let first = report.lines().find(|l| l.starts_with("| 1 |")).unwrap();
        assert!(first.contains(&format!("| {want} |")), "{report}");
        let rate = kpis.get("pollution.trace.rate", &want).unwrap();
        let std = kpis.get("pollution.trace.std", &want).unwrap();
        let truth = rate_g_s / 1000.0;
        assert!(
            (rate - truth).abs() < 0.1 * truth && (rate - truth).abs() < 4.0 * std.max(1e-12),
            "{want}: {rate} ± {std} kg/s, planted {truth}\n{report}"
        );
        for k in (0..5).filter(|&k| k != planted) {
            let other = kpis.get("pollution.trace.rate", &format!("c{k}")).unwrap();
            assert!(other < 0.05 * truth, "c{k} got {other} kg/s\n{report}");
        }
    }
}

/// The air stations' readings can come in as the scene's sensor feeds (what a city's stations
/// send) instead of from the run: here a first run's own station readings, written as a feed,
/// are traced in a second run that has no station readings of its own to use.
#[test]
fn tracing_reads_the_air_stations_from_the_sensor_feeds() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        planted_scene(dir.path(), 2, 1.0).replace("noise_fraction = 0.1", "noise_fraction = 0.0");
    let mut first = Sim::build(
        &scene(dir.path(), &text).unwrap(),
        &registry(),
        SimOptions::default(),
    )
    .unwrap();
    while !first.finished() {
        first.step();
    }
    let readings = &first
        .world()
        .resource::<citytwin_pollution::PollutionSim>()
        .readings;
    let mut feed = String::from("time,station,quantity,value,unit\n");
    let mut n = 0;
    for r in readings.iter().filter(|r| r.species == "X") {
        writeln!(feed, "{},{},X,{},kg/m3", r.t_s, r.station, r.value_kg_m3).unwrap();
        n += 1;
    }
    assert!(n > 100, "{n} readings");
    std::fs::write(dir.path().join("stations.csv"), feed).unwrap();

    let fed_dir = dir.path().join("fed");
    std::fs::create_dir(&fed_dir).unwrap();
    let fed = planted_scene(&fed_dir, 2, 1.0)
        .replace("noise_fraction = 0.1", "noise_fraction = 0.0")
        .replace("readings = \"run\"", "readings = \"feeds\"")
        + "\n[[feed]]\nfile = \"../stations.csv\"\n";
    let mut second = Sim::build(
        &scene(&fed_dir, &fed).unwrap(),
        &registry(),
        SimOptions::default(),
    )
    .unwrap();
    while !second.finished() {
        second.step();
    }
    let report = std::fs::read_to_string(fed_dir.join("tracing.md")).unwrap();
    let k = second.world().resource::<Kpis>();
    assert_eq!(k.get("feed.readings", "city"), Some(n as f64));
    assert_eq!(k.get("feed.bad", "malformed"), None);
    assert!(report.contains("the scene's sensor feeds"), "{report}");
    let first_line = report.lines().find(|l| l.starts_with("| 1 |")).unwrap();
    assert!(first_line.contains("| c2 |"), "{report}");
    let rate = k.get("pollution.trace.rate", "c2").unwrap();
    assert!(
        (rate - 1e-3).abs() < 0.1e-3,
        "{rate} kg/s, planted 1e-3\n{report}"
    );
}
