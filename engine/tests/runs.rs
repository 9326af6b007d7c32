//! End-to-end runs of the sample district: determinism, the store round trip, export, and runs
//! that end badly.

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use citytwin_engine::runner::{RunOutcome, RunRequest, run_scene};
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::{Sim, SimOptions};
use citytwin_engine::store::{ExportFormat, RunMeta, RunStatus, RunStore};

/// The sample scene with walkers, shortened, in a temp dir.
fn walker_scene(dir: &std::path::Path, extra: &str, duration_s: f64) -> Scene {
    let text = common::sample_text_absolute()
        .replace("duration_s = 3600.0", &format!("duration_s = {duration_s}"))
        .replace("snapshot_interval_s = 60.0", "snapshot_interval_s = 10.0")
        .replace("kpi_interval_s = 60.0", "kpi_interval_s = 10.0")
        .replace(
            "[output]",
            &format!("[simulations.walkers]\ncount = 200\n{extra}\n\n[output]"),
        );
    Scene::load(common::scene_with(dir, "walk.toml", &text)).unwrap()
}

/// Run `scene` to its end into the store at `store_path`.
fn run(scene: &Scene, store_path: &std::path::Path) -> RunOutcome {
    run_scene(
        RunRequest {
            scene,
            registry: &common::registry(),
            opts: SimOptions::default(),
            store: RunStore::open(store_path).unwrap(),
            stop: Arc::new(AtomicBool::new(false)),
            fork: None,
            pace: None,
            on_start: None,
        },
        &mut |_, _| {},
    )
    .unwrap()
}

fn hash_after(scene: &Scene, seed: Option<u64>, ticks: usize) -> String {
    let mut sim = Sim::build(
        scene,
        &common::registry(),
        SimOptions {
            seed,
            strict_schedule: true,
        },
    )
    .unwrap();
    for _ in 0..ticks {
        sim.step();
    }
    sim.state_hash().to_hex().to_string()
}

#[test]
fn same_scene_and_seed_give_the_same_hash_and_another_seed_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let scene = walker_scene(dir.path(), "", 120.0);
    let a = hash_after(&scene, None, 120);
    let b = hash_after(&scene, None, 120);
    let c = hash_after(&scene, Some(43), 120);
    assert_eq!(a, b, "two runs of the same scene and seed differ");
    assert_ne!(a, c, "a different seed gave the same state");
    // The hash covers time too: one more step changes it.
    assert_ne!(a, hash_after(&scene, None, 121));
}

#[test]
fn sample_district_loads_every_layer() {
    let dir = tempfile::tempdir().unwrap();
    let scene = Scene::load(common::sample_scene_engine_only(dir.path())).unwrap();
    let sim = Sim::build(&scene, &common::registry(), SimOptions::default()).unwrap();
    let by_name = |n: &str| {
        sim.import
            .layers
            .iter()
            .find(|l| l.name == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("intersections").entities, 20);
    assert_eq!(by_name("roads").entities, 62, "31 two-way streets");
    assert_eq!(by_name("buildings").entities, 48);
    assert_eq!(by_name("manholes").entities, 20);
    assert_eq!(by_name("outfalls").entities, 1);
    assert_eq!(by_name("conduits").entities, 20);
    assert_eq!(by_name("sensors").entities, 14);
    assert_eq!(by_name("emissions").entities, 3);
    // The layers come in three CRSs and must line up in the frame: every manhole sits 6 m
    // north-east of its intersection (drainage in EPSG:4548, intersections in WGS84).
    let world = sim.world();
    let pos = |layer: &str, id: &str| {
        let mut q = world
            .try_query::<(
                &citytwin_engine::model::FeatureId,
                &citytwin_engine::model::Position,
            )>()
            .unwrap();
        q.iter(world)
            .find(|(f, _)| f.layer == layer && f.id == id)
            .map(|(_, p)| p.xy_m)
            .unwrap()
    };
    for id in ["00", "23", "41"] {
        let d = pos("manholes", &format!("m{id}")) - pos("intersections", &format!("n{id}"));
        assert!(
            (d.x - 6.0).abs() < 0.01 && (d.y - 6.0).abs() < 0.01,
            "m{id} is off by {d}"
        );
    }
    // The DEM (UTM 50N) agrees with the manholes' rims (EPSG:4548) to within its interpolation error.
    let dem = world.resource::<citytwin_engine::import::Dem>();
    let mut q = world
        .try_query::<(
            &citytwin_engine::model::Manhole,
            &citytwin_engine::model::Position,
        )>()
        .unwrap();
    for (m, p) in q.iter(world) {
        let z = dem.sample(p.xy_m.x, p.xy_m.y).unwrap();
        assert!(
            (z - p.z_m).abs() < 0.05,
            "DEM {z} vs rim {} at {}",
            p.z_m,
            p.xy_m
        );
        assert!(m.invert_m < p.z_m);
    }
    let (lo, hi) = dem.range_m().unwrap();
    assert!(hi - lo > 3.0 && lo > 15.0 && hi < 30.0, "{lo}..{hi}");
}

#[test]
fn run_round_trips_through_the_store_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let scene = walker_scene(dir.path(), "", 60.0);
    let store_path = dir.path().join("runs.duckdb");
    let out = run(&scene, &store_path);
    assert_eq!(out.status, RunStatus::Completed);
    assert_eq!(out.ticks, 60);
    // Same run again: a second row with the same final hash.
    let again = run(&scene, &store_path);
    assert_eq!(again.state_hash, out.state_hash);

    let store = RunStore::open(&store_path).unwrap();
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 2);
    let r = store.run(out.run_id).unwrap();
    assert_eq!(r.status, "completed");
    assert_eq!(r.ticks, 60);
    assert_eq!(r.state_hash, out.state_hash);
    assert_eq!(store.run_meta(out.run_id).unwrap().scene_toml, scene.source);
    let meta = store.run_meta(out.run_id).unwrap();
    assert_eq!(meta.scene_toml, scene.source);
    assert_eq!(meta.version, citytwin_engine::VERSION);
    let counts = store.row_counts(out.run_id).unwrap();
    // 188 loaded features + 200 walkers; snapshots of 200 walkers at ticks 0,10,…,50.
    assert_eq!(counts[0], ("features".to_string(), 388));
    assert_eq!(counts[2], ("snapshots".to_string(), 6 * 200));
    let kpis = store.kpis(out.run_id).unwrap();
    let buildings: Vec<f64> = kpis
        .iter()
        .filter(|k| k.name == "entities.building")
        .map(|k| k.value)
        .collect();
    assert_eq!(buildings, vec![48.0; 6]);
    // A milestone raised at tick 5 is seen by a system of the next tick.
    assert!(
        kpis.iter()
            .any(|k| k.name == "walkers.reacted_at_tick" && k.value == 6.0)
    );
    assert!(
        kpis.iter()
            .any(|k| k.name == "walkers.mean_speed" && k.value > 0.0 && k.unit == "m/s")
    );
    // Geometry is usable in plain SQL: buildings intersecting a box, by their bbox columns.
    let n = store
        .query_f64(&format!("SELECT count(*)::DOUBLE FROM features WHERE run_id = {} AND kind = 'building' AND max_x >= 0 AND min_x <= 300 AND max_y >= -225 AND min_y <= 0", out.run_id))
        .unwrap()
        .unwrap();
    assert!(n > 0.0 && n < 48.0, "{n}");

    let csv_dir = dir.path().join("csv");
    let files = store
        .export(out.run_id, &csv_dir, ExportFormat::Csv)
        .unwrap();
    assert_eq!(files.len(), 7);
    assert!(files.iter().any(|f| f.ends_with("readings.csv")));
    // Maps: every walker counted in some H3 cell at ticks 0, 10, …, 50.
    let map = store.field(out.run_id, "walkers.count").unwrap();
    let ticks: std::collections::BTreeSet<u64> = map.iter().map(|r| r.tick).collect();
    assert_eq!(
        ticks.into_iter().collect::<Vec<_>>(),
        vec![0, 10, 20, 30, 40, 50]
    );
    for t in [0, 50] {
        let total: f64 = map.iter().filter(|r| r.tick == t).map(|r| r.value).sum();
        assert_eq!(total, 200.0, "tick {t}");
    }
    let fields_csv = std::fs::read_to_string(csv_dir.join("fields.csv")).unwrap();
    assert_eq!(fields_csv.lines().count(), 1 + map.len());
    let snap_csv = std::fs::read_to_string(csv_dir.join("snapshots.csv")).unwrap();
    assert_eq!(snap_csv.lines().count(), 1 + 1200);
    assert!(snap_csv.starts_with("run_id,tick,sim_time_s,entity,x_m,y_m,z_m,speed_mps,h3"));
    let pq_dir = dir.path().join("pq");
    store
        .export(out.run_id, &pq_dir, ExportFormat::Parquet)
        .unwrap();
    let from_parquet = store
        .query_f64(&format!(
            "SELECT count(*)::DOUBLE FROM read_parquet('{}')",
            pq_dir.join("kpis.parquet").display()
        ))
        .unwrap()
        .unwrap();
    assert_eq!(from_parquet as usize, kpis.len());
    assert!(
        store
            .export(999, &pq_dir, ExportFormat::Csv)
            .unwrap_err()
            .to_string()
            .contains("no run 999")
    );
}

#[test]
fn a_panic_in_a_system_leaves_the_run_marked_failed_and_its_rows_readable() {
    let dir = tempfile::tempdir().unwrap();
    let scene = walker_scene(dir.path(), "panic_at_tick = 25", 60.0);
    let store_path = dir.path().join("runs.duckdb");
    // An earlier good run must survive the failed one.
    let good = walker_scene(dir.path(), "", 20.0);
    run(&good, &store_path);
    let out = run(&scene, &store_path);
    assert_eq!(out.status, RunStatus::Failed);
    assert_eq!(out.ticks, 25);
    let store = RunStore::open(&store_path).unwrap();
    let r = store.run(out.run_id).unwrap();
    assert_eq!(r.status, "failed");
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("told to fail at tick 25"),
        "{:?}",
        r.error
    );
    // Snapshots at ticks 0, 10, 20 were written before the panic.
    assert_eq!(store.row_counts(out.run_id).unwrap()[2].1, 3 * 200);
    assert_eq!(store.run(1).unwrap().status, "completed");
}

#[test]
fn a_stop_request_marks_the_run_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let scene = walker_scene(dir.path(), "", 100_000.0);
    let store_path = dir.path().join("runs.duckdb");
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let out = run_scene(
        RunRequest {
            scene: &scene,
            registry: &common::registry(),
            opts: SimOptions::default(),
            store: RunStore::open(&store_path).unwrap(),
            stop,
            fork: None,
            pace: None,
            on_start: None,
        },
        &mut |t, _| {
            if t >= 1000 {
                s2.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        },
    )
    .unwrap();
    assert_eq!(out.status, RunStatus::Interrupted);
    assert!(out.ticks >= 1000 && out.ticks < 100_000);
    let r = RunStore::open(&store_path)
        .unwrap()
        .run(out.run_id)
        .unwrap();
    assert_eq!(
        (r.status.as_str(), r.ticks as u64),
        ("interrupted", out.ticks)
    );
}

#[test]
fn a_run_whose_process_died_is_marked_failed_on_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.duckdb");
    let id = {
        let s = RunStore::open(&p).unwrap();
        s.begin_run(&RunMeta {
            scene_name: "x".into(),
            scene_path: "x.toml".into(),
            scene_toml: String::new(),
            seed: 1,
            version: "t".into(),
            sim_start: "2026-01-01T00:00:00Z".into(),
            step_s: 1.0,
            duration_s: 10.0,
            frame_proj: String::new(),
        })
        .unwrap()
        // dropped without finish_run, as if the process had been killed
    };
    let s = RunStore::open(&p).unwrap();
    let r = s.run(id).unwrap();
    assert_eq!(r.status, "failed");
    assert!(r.error.unwrap().contains("without closing"));
}

#[test]
fn a_version_2_store_is_migrated_on_opening_and_can_be_absorbed() {
    // (Version 2 had no readings table, version 3 no frame of the run.)
    let dir = tempfile::tempdir().unwrap();
    let scene = walker_scene(dir.path(), "", 20.0);
    let old = dir.path().join("old.duckdb");
    let out = run(&scene, &old);
    // Make it a store as version 2 wrote it: no readings table.
    {
        let db = duckdb::Connection::open(&old).unwrap();
        db.execute_batch(
            "DROP TABLE readings; ALTER TABLE runs DROP COLUMN frame_proj;
             UPDATE meta SET value = '2' WHERE key = 'schema_version';",
        )
        .unwrap();
    }
    // Absorbing it copies its runs (it has no readings to copy).
    let new = RunStore::open(dir.path().join("new.duckdb")).unwrap();
    assert_eq!(new.absorb(&old).unwrap(), vec![1]);
    assert_eq!(new.run(1).unwrap().state_hash, out.state_hash);
    assert_eq!(new.run_meta(1).unwrap().frame_proj, "");
    // Opening it brings it to version 4, its runs intact.
    {
        let st = RunStore::open(&old).unwrap();
        assert_eq!(st.run(out.run_id).unwrap().state_hash, out.state_hash);
        assert!(st.readings(out.run_id).unwrap().is_empty());
    }
    let db = duckdb::Connection::open(&old).unwrap();
    let v: String = db
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(v, "4");
}
