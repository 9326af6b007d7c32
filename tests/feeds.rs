//! Sensor feeds replayed on the clock: rain gauges drive the flood, readings become KPIs, and
//! bad readings are counted without stopping the run.

mod common;

use citytwin::registry;
use citytwin_engine::recorder::Kpis;
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::{Sim, SimOptions};
use citytwin_engine::store::READING_STATUSES;
use common::scene_copy_of;

const FEED: &str = "time,station,quantity,value,unit
# Two gauges report every minute for ten minutes; the storm stops at 600 s.
0,HF-RG1,rain,30,mm/h
0,HF-RG2,rain,20,mm/h
60,HF-RG1,rain,30,mm/h
60,HF-RG2,rain,20,mm/h
120,HF-RG1,rain,30,mm/h
120,HF-RG2,rain,20,mm/h
180,HF-RG1,rain,30,mm/h
180,HF-RG2,rain,20,mm/h
240,HF-RG1,rain,30,mm/h
240,HF-RG2,rain,20,mm/h
300,HF-RG1,rain,30,mm/h
300,HF-RG2,rain,20,mm/h
360,HF-RG1,rain,30,mm/h
360,HF-RG2,rain,20,mm/h
420,HF-RG1,rain,30,mm/h
420,HF-RG2,rain,20,mm/h
480,HF-RG1,rain,30,mm/h
480,HF-RG2,rain,20,mm/h
540,HF-RG1,rain,30,mm/h
540,HF-RG2,rain,20,mm/h
600,HF-RG1,rain,0,mm/h
600,HF-RG2,rain,0,mm/h
300,HF-WL1,water_level,12,cm
# The bad ones: malformed, unknown station, out of range, duplicate, late.
360,HF-RG1,rain,lots,mm/h
360,XX-9,rain,10,mm/h
420,HF-RG2,rain,-5,mm/h
600,HF-RG1,rain,0,mm/h
30,HF-RG2,rain,99,mm/h
";

/// The coupled sample storm with its design storm replaced by `feed` (none: no rain at all).
fn scene(dir: &std::path::Path, feed: Option<&str>) -> Scene {
    let path = scene_copy_of(dir, "sample_rainstorm", |t| {
        let t = common::without_design_storm(t, 1200.0);
        match feed {
            Some(_) => format!("{t}\n[[feed]]\nfile = \"feed.csv\"\n"),
            None => t,
        }
    });
    if let Some(f) = feed {
        std::fs::write(dir.join("feed.csv"), f).unwrap();
    }
    Scene::load(path).unwrap()
}

fn run(scene: &Scene) -> Sim {
    let mut sim = Sim::build(scene, &registry(), SimOptions::default()).unwrap();
    while !sim.finished() {
        sim.step();
    }
    sim
}

#[test]
fn rain_gauge_feeds_drive_the_flood_and_bad_readings_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut fed = run(&scene(dir.path(), Some(FEED)));
    let k = fed.world().resource::<Kpis>();
    // Each gauge's depth is its readings held over the ten minutes.
    let rg1 = k.get("rain.depth", "HF-RG1").unwrap();
    let rg2 = k.get("rain.depth", "HF-RG2").unwrap();
    assert!((rg1 - 0.030 / 3600.0 * 600.0).abs() < 1e-12, "{rg1}");
    assert!((rg2 - 0.020 / 3600.0 * 600.0).abs() < 1e-12, "{rg2}");
    let rain_m3 = k.get("flood.rain_volume", "city").unwrap();
    assert!(rain_m3 > 100.0, "{rain_m3}");
    // Every kind of bad reading, once.
    for kind in &READING_STATUSES[1..] {
        assert_eq!(k.get("feed.bad", kind), Some(1.0), "{kind}");
    }
    assert_eq!(k.get("feed.readings", "city"), Some(23.0));
    assert_eq!(k.get("feed.water_level", "HF-WL1"), Some(0.12));
    let fed_hash = fed.state_hash();

    // Without the feed nothing rains; with it again, the same state to the bit.
    let dry_dir = tempfile::tempdir().unwrap();
    let dry = run(&scene(dry_dir.path(), None));
    let dk = dry.world().resource::<Kpis>();
    assert!(dk.get("flood.rain_volume", "city").unwrap_or(0.0) == 0.0);
    let mut again = run(&scene(dir.path(), Some(FEED)));
    assert_eq!(fed_hash, again.state_hash());
}

#[test]
fn a_feed_file_without_its_columns_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let scene = scene(dir.path(), Some("time,station,value\n0,HF-RG1,3\n"));
    let e = Sim::build(&scene, &registry(), SimOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("scene.toml") && e.contains("feed.csv:1") && e.contains("no column 'quantity'"),
        "{e}"
    );
}

/// Write FEED's rows as a Parquet file, each column through a DuckDB expression of the text.
fn feed_as_parquet(path: &std::path::Path, time: &str, value: &str, unit: bool) {
    let db = duckdb::Connection::open_in_memory().unwrap();
    db.execute_batch(
        "CREATE TABLE r (time VARCHAR, station VARCHAR, quantity VARCHAR, value VARCHAR, unit VARCHAR)",
    )
    .unwrap();
    let mut app = db.appender("r").unwrap();
    for line in FEED.lines().skip(1).filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split(',').collect();
        app.append_row(duckdb::params![f[0], f[1], f[2], f[3], f[4]])
            .unwrap();
    }
    app.flush().unwrap();
    drop(app);
    let unit = if unit { ", unit" } else { "" };
    db.execute_batch(&format!(
        "COPY (SELECT {time} AS time, station, quantity, {value} AS value{unit} FROM r) TO '{}' (FORMAT PARQUET)",
        path.display()
    ))
    .unwrap();
}

#[test]
fn parquet_feeds_are_read_as_their_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv_scene = scene(dir.path(), Some(FEED));
    let mut csv = run(&csv_scene);
    let csv_bad: Vec<(&str, u64)> = {
        let f = csv.world().resource::<citytwin_engine::feeds::Feeds>();
        f.bad.iter().map(|(k, (n, _))| (*k, *n)).collect()
    };
    assert_eq!(csv_bad.len(), 5);
    let csv_hash = csv.state_hash();
    let text = std::fs::read_to_string(&csv_scene.path).unwrap();
    let pq = dir.path().join("feed.parquet");
    std::fs::write(&csv_scene.path, text.replace("feed.csv", "feed.parquet")).unwrap();
    // Times as seconds and values as text, as in the CSV; then as instants (the scene starts
    // at 07:30 in Shanghai, 23:30 UTC the day before) and doubles, as a logger would write.
    for (time, value) in [
        ("CAST(time AS DOUBLE)", "value"),
        (
            "CAST(TIMESTAMP '2026-07-14 23:30:00' + to_seconds(CAST(time AS DOUBLE)) AS TIMESTAMPTZ)",
            "TRY_CAST(value AS DOUBLE)",
        ),
    ] {
        feed_as_parquet(&pq, time, value, true);
        let mut sim = run(&Scene::load(&csv_scene.path).unwrap());
        let f = sim.world().resource::<citytwin_engine::feeds::Feeds>();
        let bad: Vec<(&str, u64)> = f.bad.iter().map(|(k, (n, _))| (*k, *n)).collect();
        assert_eq!(bad, csv_bad, "{time}");
        assert!(
            f.bad["malformed"].1[0].contains("feed.parquet row 24"),
            "{:?}",
            f.bad["malformed"]
        );
        assert_eq!(sim.state_hash(), csv_hash, "{time}");
    }
    // A Parquet file without a column is an error naming it, as a CSV's is.
    feed_as_parquet(&pq, "time", "value", false);
    let e = Sim::build(
        &Scene::load(&csv_scene.path).unwrap(),
        &registry(),
        SimOptions::default(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.contains("feed.parquet") && e.contains("no column 'unit'"),
        "{e}"
    );
}

#[test]
fn a_recorded_run_stores_every_reading_it_took_in_good_or_bad() {
    use citytwin_engine::store::{Channel, RunStore};
    let dir = tempfile::tempdir().unwrap();
    let scene = scene(dir.path(), Some(FEED));
    let store = dir.path().join("runs.duckdb");
    let out = common::record(&scene.path, &store);
    let rows = RunStore::open(&store)
        .unwrap()
        .readings(out.run_id)
        .unwrap();
    assert_eq!(rows.len(), 28);
    assert_eq!(rows.iter().filter(|r| r.status == "ok").count(), 23);
    // In file order, each with its line; the bad ones with why.
    assert!(
        rows.iter()
            .enumerate()
            .all(|(i, r)| r.seq == i as u64 && r.channel == Channel::File && r.arrival_s.is_none())
    );
    let lots = rows.iter().find(|r| r.status == "malformed").unwrap();
    assert!(lots.origin.ends_with("feed.csv:27"), "{lots:?}");
    assert_eq!(lots.payload, "360,HF-RG1,rain,lots,mm/h");
    assert_eq!(lots.detail.as_deref(), Some("value 'lots' is not a number"));
    let wl = rows
        .iter()
        .find(|r| r.station.as_deref() == Some("HF-WL1"))
        .unwrap();
    assert_eq!(
        (wl.time_s, wl.value, wl.unit.as_deref()),
        (Some(300.0), Some(0.12), Some("m"))
    );
}

#[test]
fn check_lists_the_feeds_and_where_their_bad_readings_are() {
    let dir = tempfile::tempdir().unwrap();
    let scene = scene(dir.path(), Some(FEED));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_citytwin"))
        .arg("check")
        .arg(&scene.path)
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("feeds: 23 readings in 3 series, 5 bad"), "{t}");
    assert!(
        t.contains("1 malformed, e.g.") && t.contains("feed.csv:27: value 'lots' is not a number"),
        "{t}"
    );
}

#[test]
fn water_level_gauges_are_compared_with_the_depth_the_model_gives_them() {
    use citytwin_engine::model::{Position, Sensor};
    let dir = tempfile::tempdir().unwrap();
    // WL1 (on a street) reports 12 cm from 300 s, WL2 (on a manhole) 4 cm all along; WL3
    // reports nothing.
    let feed = format!("{FEED}0,HF-WL2,water_level,4,cm\n1200,HF-WL2,water_level,4,cm\n");
    let mut sim = Sim::build(
        &scene(dir.path(), Some(&feed)),
        &registry(),
        SimOptions::default(),
    )
    .unwrap();
    // Stop just after a KPI step (every 60 s), so the KPIs describe the state left.
    while sim.clock().tick() <= 660 {
        sim.step();
    }
    let gauges: Vec<(String, bevy::math::DVec2)> = {
        let w = sim.world_mut();
        let mut q = w.query::<(&Sensor, &Position)>();
        q.iter(w)
            .map(|(s, p)| (s.station.clone(), p.xy_m))
            .collect()
    };
    let at = |station: &str| gauges.iter().find(|g| g.0 == station).unwrap().1;
    let w = sim.world();
    let k = w.resource::<Kpis>();
    let flood = w.resource::<citytwin_flood::FloodSim>();
    let d = flood.drainage.as_ref().unwrap();
    // WL2 stands on a manhole: its simulated reading is that node's depth.
    let node = d
        .nodes
        .iter()
        .position(|e| w.get::<Position>(*e).unwrap().xy_m.distance(at("HF-WL2")) < 0.05)
        .expect("WL2 is on a manhole");
    let wl2 = d.model.net.nodes[node].new_depth;
    assert!(wl2 > 0.0, "the storm has water in the sewer: {wl2}");
    assert_eq!(k.get("flood.gauge_depth", "HF-WL2"), Some(wl2));
    // WL1 stands 30 m from any manhole: its reading is the water in its street cell.
    let wl1 = flood.surface.h_m[flood.cell_at(at("HF-WL1")).unwrap()] as f64;
    assert_eq!(k.get("flood.gauge_depth", "HF-WL1"), Some(wl1));
    // Observed minus simulated, and their root mean square.
    let (e1, e2) = (0.12 - wl1, 0.04 - wl2);
    assert_eq!(k.get("flood.gauge_error", "HF-WL1"), Some(e1));
    assert_eq!(k.get("flood.gauge_error", "HF-WL2"), Some(e2));
    assert_eq!(
        k.get("flood.gauge_rmse", "city"),
        Some(((e1 * e1 + e2 * e2) / 2.0).sqrt())
    );
    assert!(k.get("flood.gauge_depth", "HF-WL3").is_some());
    assert_eq!(k.get("flood.gauge_error", "HF-WL3"), None);
}
