//! The run store on both its backends, an embedded DuckDB file and a real PostgreSQL server
//! (started here on a free loopback port): the same rows written read back the same through
//! every query, forks, gathering and export agree, a scene recorded into PostgreSQL replays to
//! the bit, several writers share one store without clashing, a writer that died is told from
//! one still recording, and two `citytwin serve` instances serve one shared store.

mod common;
// `citytwin serve` as a test drives it (not in `common`: examples share that, and have no binary).
#[path = "common/server.rs"]
mod server;

use std::path::{Path, PathBuf};

use citytwin_engine::geo_frame::{GeoFrame, LonLat};
use citytwin_engine::store::{
    Channel, EventRow, ExportFormat, FeatureRow, FieldRow, KpiFilter, KpiRow, ReadingRow, RunMeta,
    RunStatus, RunStore, SnapshotRow,
};
use common::postgres::Postgres;
use common::{record, scene_copy_of};
use server::{get, http, start, stop, wait_job};

fn meta(seed: u64) -> RunMeta {
    RunMeta {
        scene_name: "backends".into(),
        scene_path: "scenes/backends.toml".into(),
        scene_toml: "[scene]\nname = \"backends\"\n".into(),
        seed,
        version: "test".into(),
        sim_start: "2026-12-02T08:00:00+01:00[Europe/Helsinki]".into(),
        step_s: 0.5,
        duration_s: 120.0,
        frame_proj: GeoFrame::new(LonLat::new(24.9384, 60.1699)).proj_definition(),
    }
}

/// Bits that only an exact 64-bit round trip keeps: the top bit set, and low bits that a
/// double would lose.
const HIGH: u64 = 0x8000_0000_0000_0001;
/// A real H3 cell (resolution 12, Helsinki).
const CELL: u64 = 0x08c0_8996_0a1b_51ff;

/// Record one run with a row of every kind (and the awkward values: a NaN KPI, unsigned
/// extremes, NULLs, bytes, non-ASCII text), closed as completed; its id.
fn fill(st: &RunStore, seed: u64) -> i64 {
    let id = st.begin_run(&meta(seed)).unwrap();
    st.append_features(
        id,
        &[
            FeatureRow {
                entity: HIGH,
                kind: "road".into(),
                layer: "roads".into(),
                feature_id: "Mannerheimintie/1".into(),
                wkb: vec![1, 2, 0, 0, 0, 255, 0, 7],
                bbox: [-10.5, -20.25, 30.0, 40.0],
                h3: Some(CELL),
            },
            FeatureRow {
                entity: 7,
                kind: "building".into(),
                layer: "buildings".into(),
                feature_id: "Töölö 北".into(),
                wkb: vec![],
                bbox: [100.0, 100.0, 110.0, 120.0],
                h3: None,
            },
        ],
    )
    .unwrap();
    let kpi = |tick: u64, name: &str, scope: &str, value: f64| KpiRow {
        tick,
        sim_time_s: tick as f64 * 0.5,
        name: name.into(),
        scope: scope.into(),
        value,
        unit: "m/s".into(),
    };
    st.append_kpis(
        id,
        &[
            kpi(0, "traffic.mean_speed_mps", "city", 11.5),
            kpi(0, "traffic.mean_speed_mps", "roads/1", f64::NAN),
            kpi(120, "traffic.mean_speed_mps", "city", 9.25),
            kpi(240, "traffic.mean_speed_mps", "city", 8.0),
            kpi(240, "flood.volume_m3", "city", 1.0e-9),
        ],
    )
    .unwrap();
    let snap = |tick: u64, entity: u64, speed: Option<f64>| SnapshotRow {
        tick,
        sim_time_s: tick as f64 * 0.5,
        entity,
        x_m: 1.5 * tick as f64,
        y_m: -2.0,
        z_m: 0.25,
        speed_mps: speed,
        h3: Some(CELL),
    };
    st.append_snapshots(
        id,
        &[
            snap(120, HIGH, Some(3.0)),
            snap(240, 7, None),
            snap(240, HIGH, Some(4.5)),
            snap(240, 99, Some(0.0)),
        ],
    )
    .unwrap();
    st.append_events(
        id,
        &[
            EventRow {
                tick: 100,
                sim_time_s: 50.0,
                kind: "flood.road_closed".into(),
                entity: Some(HIGH),
                xy_m: Some([1.0, 2.0]),
                h3: Some(CELL),
                message: "closed: water over 0.3 m".into(),
            },
            EventRow {
                tick: 200,
                sim_time_s: 100.0,
                kind: "traffic.reroute".into(),
                entity: None,
                xy_m: None,
                h3: None,
                message: "改道".into(),
            },
        ],
    )
    .unwrap();
    st.append_fields(
        id,
        &[
            FieldRow {
                tick: 120,
                sim_time_s: 60.0,
                name: "flood.depth_m".into(),
                h3: CELL,
                value: 0.125,
                unit: "m".into(),
            },
            FieldRow {
                tick: 240,
                sim_time_s: 120.0,
                name: "flood.depth_m".into(),
                h3: CELL,
                value: 0.5,
                unit: "m".into(),
            },
        ],
    )
    .unwrap();
    st.append_readings(
        id,
        &[
            ReadingRow {
                seq: 0,
                feed: 0,
                channel: Channel::File,
                origin: "gauges.csv:2".into(),
                arrival_s: None,
                payload: "0,g1,water_level,0.3,m".into(),
                status: "ok",
                detail: None,
                station: Some("g1".into()),
                quantity: Some("water_level".into()),
                time_s: Some(0.0),
                value: Some(0.3),
                unit: Some("m".into()),
            },
            ReadingRow {
                seq: 1,
                feed: 1,
                channel: Channel::Mqtt,
                origin: "city/gauges/g2".into(),
                arrival_s: Some(60.0),
                payload: "{\"station\": \"g9\"}".into(),
                status: "unknown_station",
                detail: Some("no station 'g9'".into()),
                station: Some("g9".into()),
                quantity: None,
                time_s: None,
                value: None,
                unit: None,
            },
        ],
    )
    .unwrap();
    st.append_checkpoint(id, 120, 60.0, "aa11", &[0, 1, 2, 3, 255])
        .unwrap();
    st.append_checkpoint(id, 240, 120.0, "bb22", &[9; 300])
        .unwrap();
    st.progress(id, 240).unwrap();
    st.finish_run(id, RunStatus::Completed, 240, Some("bb22"), None)
        .unwrap();
    id
}

/// Everything the store's reads say about run `id`, wall-clock times left out (they differ
/// between any two runs), as text to compare.
fn read_all(st: &RunStore, id: i64) -> String {
    let mut run = st.run(id).unwrap();
    assert!(run.ended_at.is_some() || run.status == "running");
    run.started_at.clear();
    run.ended_at = None;
    run.id = 0;
    let m = st.run_meta(id).unwrap();
    let kpis: Vec<String> = st
        .kpis(id)
        .unwrap()
        .iter()
        .map(|k| format!("{k:?}"))
        .collect();
    let filtered = st
        .kpis_where(
            id,
            &KpiFilter {
                name: Some("traffic.mean_speed_mps".into()),
                scope: Some("city".into()),
                from_s: Some(60.0),
                to_s: Some(120.0),
                after_tick: Some(0),
            },
        )
        .unwrap();
    let features = st
        .features_in(id, [0.0, 0.0, 50.0, 50.0], None, 10)
        .unwrap();
    let buildings = st
        .features_in(id, [-1e9, -1e9, 1e9, 1e9], Some("building"), 10)
        .unwrap();
    let checkpoint = st.checkpoint_before(id, 200).unwrap();
    format!(
        "{run:?}\n{} {} {} {:?} {} {} {}\n{kpis:?}\n{filtered:?}\n{:?}\n{features:?}\n{buildings:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{checkpoint:?}\n{:?}",
        m.scene_name,
        m.scene_toml,
        m.seed,
        m.step_s,
        m.sim_start,
        m.duration_s,
        m.frame_proj,
        st.latest_kpis(id).unwrap(),
        st.latest_snapshot(id).unwrap(),
        st.row_counts(id).unwrap(),
        st.field(id, "flood.depth_m").unwrap(),
        st.events_of(id, "flood.", 1000).unwrap(),
        st.feature_id_of(id, HIGH).unwrap(),
        st.event_counts(id).unwrap(),
        st.readings(id).unwrap(),
        st.recorded_messages(id).unwrap(),
        st.checkpoints(id).unwrap(),
        st.parent(id).unwrap(),
        st.checkpoint_before(id, 10).unwrap(),
    )
}

/// Parquet exports of run `id` as rows of text, table by table, wall-clock times and run ids
/// left out.
fn exported(st: &RunStore, id: i64, dir: &Path) -> Vec<(String, Vec<String>)> {
    let files = st.export(id, dir, ExportFormat::Parquet).unwrap();
    let db = duckdb::Connection::open_in_memory().unwrap();
    files
        .iter()
        .map(|f| {
            let name = f.file_stem().unwrap().to_string_lossy().into_owned();
            let sql = format!(
                "SELECT * EXCLUDE (run_id{}) FROM read_parquet('{}')",
                if name == "runs" {
                    ", started_at, ended_at"
                } else {
                    ""
                },
                f.display()
            );
            let mut q = db.prepare(&sql).unwrap();
            let mut rows = q.query([]).unwrap();
            let mut out = Vec::new();
            while let Some(r) = rows.next().unwrap() {
                let n = r.as_ref().column_count();
                let cells: Vec<String> = (0..n)
                    .map(|i| format!("{:?}", r.get::<_, duckdb::types::Value>(i).unwrap()))
                    .collect();
                out.push(cells.join("|"));
            }
            (name, out)
        })
        .collect()
}

#[test]
fn both_backends_read_back_the_same_rows_fork_gather_and_export_alike() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let duck = RunStore::open(dir.path().join("runs.duckdb")).unwrap();
    let shared = RunStore::open(pg.url()).unwrap();
    assert!(shared.is_shared() && !duck.is_shared());

    let d = fill(&duck, u64::MAX);
    let p = fill(&shared, u64::MAX);
    let text = read_all(&duck, d);
    assert_eq!(text, read_all(&shared, p));
    // What was written is what is read, on PostgreSQL too (which has no unsigned integers).
    let run = shared.run(p).unwrap();
    assert_eq!(
        (run.seed, run.status.as_str(), run.ticks),
        (u64::MAX, "completed", 240)
    );
    assert_eq!(run.sim_time_s, 120.0);
    assert!(run.started_at.ends_with("+00"), "{}", run.started_at);
    let kpis = shared.kpis(p).unwrap();
    assert_eq!(kpis.len(), 5);
    assert!(kpis[1].value.is_nan() && kpis[1].scope == "roads/1");
    let latest = shared.latest_kpis(p).unwrap();
    assert_eq!(
        latest
            .iter()
            .map(|k| (k.name.as_str(), k.scope.as_str(), k.tick))
            .collect::<Vec<_>>(),
        [
            ("flood.volume_m3", "city", 240),
            ("traffic.mean_speed_mps", "city", 240),
            ("traffic.mean_speed_mps", "roads/1", 0)
        ]
    );
    let near = shared
        .features_in(p, [0.0, 0.0, 50.0, 50.0], None, 10)
        .unwrap();
    assert_eq!(near.len(), 1);
    assert_eq!((near[0].entity, near[0].h3), (HIGH, Some(CELL)));
    assert_eq!(near[0].wkb, [1, 2, 0, 0, 0, 255, 0, 7]);
    let snap = shared.latest_snapshot(p).unwrap();
    assert_eq!(
        snap.iter()
            .map(|(s, k)| (s.entity, k.as_deref()))
            .collect::<Vec<_>>(),
        [(7, Some("building")), (99, None), (HIGH, Some("road"))]
    );
    let (cp, image) = shared.checkpoint_before(p, 239).unwrap().unwrap();
    assert_eq!((cp.tick, cp.bytes, image), (120, 5, vec![0, 1, 2, 3, 255]));
    assert_eq!(shared.readings(p).unwrap()[1].status, "unknown_station");
    assert_eq!(shared.recorded_messages(p).unwrap().len(), 1);

    // A fork at tick 200 takes the parent's history before it, on both.
    let fd = duck.begin_fork(d, 200, &meta(1)).unwrap();
    let fp = shared.begin_fork(p, 200, &meta(1)).unwrap();
    for (st, f, parent) in [(&duck, fd, d), (&shared, fp, p)] {
        assert_eq!(st.parent(f).unwrap(), Some((parent, 200)));
        let counts = st.row_counts(f).unwrap();
        assert_eq!(
            counts.map(|(_, n)| n),
            [2, 3, 1, 1],
            "features, kpis, snapshots, events before tick 200"
        );
        assert_eq!(st.checkpoints(f).unwrap().len(), 1);
        st.finish_run(f, RunStatus::Completed, 240, None, None)
            .unwrap();
    }
    assert_eq!(read_all(&duck, fd), read_all(&shared, fp));

    // Exports write the same files from either.
    let ed = exported(&duck, d, &dir.path().join("export-duck"));
    let ep = exported(&shared, p, &dir.path().join("export-pg"));
    assert_eq!(ed.len(), 7);
    assert!(ed.iter().all(|(_, rows)| !rows.is_empty()));
    assert_eq!(ed, ep);

    // Gathering a DuckDB file into the shared store: new ids, the fork's parent renumbered
    // with it, every row alike.
    drop(duck);
    let before = shared.runs().unwrap().len() as i64;
    let ids = shared.absorb(&dir.path().join("runs.duckdb")).unwrap();
    assert_eq!(ids, [before + 1, before + 2]);
    assert_eq!(shared.parent(ids[1]).unwrap(), Some((ids[0], 200)));
    let duck = RunStore::open(dir.path().join("runs.duckdb")).unwrap();
    assert_eq!(read_all(&shared, ids[0]), read_all(&duck, d));
    assert_eq!(
        read_all(&shared, ids[1]).replace(&format!("({}, 200)", ids[0]), "(P, 200)"),
        read_all(&duck, fd).replace(&format!("({d}, 200)"), "(P, 200)")
    );
    // And the other way round, the shared store's runs are what `export` hands on.
    assert_eq!(
        exported(&shared, ids[0], &dir.path().join("export-back")),
        ed
    );
}

#[test]
fn a_shared_store_tells_a_dead_writer_from_a_live_one_and_writers_never_clash() {
    let pg = Postgres::start();
    let url = pg.url();
    let recording = RunStore::open(&url).unwrap();
    let live = recording.begin_run(&meta(1)).unwrap();
    let dying = RunStore::open(&url).unwrap();
    let dead = dying.begin_run(&meta(2)).unwrap();
    drop(dying); // its session ends without closing the run, as a killed process's would

    // Another planner opening the store: the dead writer's run is failed, the live one is not.
    let other = RunStore::open(&url).unwrap();
    let dead_run = other.run(dead).unwrap();
    assert_eq!(dead_run.status, "failed");
    assert!(
        dead_run
            .error
            .as_deref()
            .unwrap()
            .contains("without closing"),
        "{dead_run:?}"
    );
    assert_eq!(other.run(live).unwrap().status, "running");
    // The live writer goes on and closes its run.
    recording
        .finish_run(live, RunStatus::Completed, 10, Some("cafe"), None)
        .unwrap();
    assert_eq!(other.run(live).unwrap().status, "completed");
    // Its lock is gone with it: one more open fails nothing.
    drop(RunStore::open(&url).unwrap());
    assert_eq!(other.run(live).unwrap().status, "completed");

    // Four writers registering runs at once get distinct ids, none lost.
    let threads: Vec<_> = (0..4)
        .map(|k| {
            let url = url.clone();
            std::thread::spawn(move || {
                let st = RunStore::open(&url).unwrap();
                (0..10)
                    .map(|i| {
                        let id = st.begin_run(&meta(k * 100 + i)).unwrap();
                        st.finish_run(id, RunStatus::Completed, 0, None, None)
                            .unwrap();
                        id
                    })
                    .collect::<Vec<i64>>()
            })
        })
        .collect();
    let mut ids: Vec<i64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40);
    assert_eq!(other.runs().unwrap().len(), 42);

    // An unreachable server, and a URL with a password, are errors that say so.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = format!("postgresql://citytwin@127.0.0.1:{port}/city");
    let e = RunStore::open(&nowhere).err().unwrap().to_string();
    assert!(e.contains(&nowhere) && e.contains("connect"), "{e}");
    let e = RunStore::open("postgresql://u:secret@127.0.0.1/city")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("password"), "{e}");
    let e = RunStore::open(format!("{}_missing", pg.url()))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("city_missing"), "{e}");
}

fn citytwin(args: &[&std::ffi::OsStr]) -> String {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_citytwin"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "citytwin {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_scene_recorded_into_postgres_replays_to_the_bit_and_two_servers_share_it() {
    let pg = Postgres::start();
    let url = pg.url();
    let dir = tempfile::tempdir().unwrap();
    let scene = scene_copy_of(dir.path(), "sample_district", |t| {
        assert!(t.contains("store = \"runs.duckdb\""));
        t.replace("duration_s = 3600.0", "duration_s = 600.0")
            .replace("store = \"runs.duckdb\"", &format!("store = \"{url}\""))
    });
    // The scene names the shared store; the same scene into a DuckDB file is the same run.
    let shared = record(&scene, Path::new(&url));
    let local = record(&scene, &dir.path().join("runs.duckdb"));
    assert_eq!(shared.status, RunStatus::Completed);
    assert_eq!(shared.state_hash, local.state_hash);
    assert_eq!(shared.store_path, PathBuf::from(&url));
    let st = RunStore::open(&url).unwrap();
    let dst = RunStore::open(dir.path().join("runs.duckdb")).unwrap();
    assert_eq!(
        st.row_counts(shared.run_id).unwrap(),
        dst.row_counts(local.run_id).unwrap()
    );
    // As text: a KPI with no value is NaN, which is not equal to itself.
    assert_eq!(
        format!("{:?}", st.kpis(shared.run_id).unwrap()),
        format!("{:?}", dst.kpis(local.run_id).unwrap())
    );

    // PostGIS places the run's model through its frame with PROJ: the roads' first vertices
    // land where the engine's own transverse Mercator puts them (within a millimetre).
    let frame = GeoFrame::new(scene_origin(&scene));
    let roads = st
        .features_in(shared.run_id, [-1e9, -1e9, 1e9, 1e9], Some("road"), 1000)
        .unwrap();
    assert!(roads.len() > 100);
    let placed = pg.sql(
        "city",
        &format!(
            "SELECT entity, ST_X(ST_StartPoint(geom)), ST_Y(ST_StartPoint(geom)) FROM features_wgs84
             WHERE run_id = {} AND kind = 'road'",
            shared.run_id
        ),
    );
    let mut checked = 0;
    for line in placed.lines() {
        let f: Vec<&str> = line.split('|').collect();
        let entity = f[0].parse::<i64>().unwrap() as u64;
        let road = roads.iter().find(|r| r.entity == entity).unwrap();
        let g = citytwin_engine::wkb::read_wkb(&road.wkb).unwrap();
        let first = match g {
            geo::Geometry::LineString(l) => l.0[0],
            other => panic!("a road is a line: {other:?}"),
        };
        let ours = frame.to_wgs84(first);
        let (lon, lat): (f64, f64) = (f[1].parse().unwrap(), f[2].parse().unwrap());
        assert!(
            (lon - ours.lon).abs() < 1e-8 && (lat - ours.lat).abs() < 1e-8,
            "road {entity}: PostGIS {lon},{lat}, engine {},{}",
            ours.lon,
            ours.lat
        );
        checked += 1;
    }
    assert_eq!(checked, roads.len());

    // The CLI, with the URL for a store: list, verify by replay, export.
    let store = std::ffi::OsStr::new(&url);
    let runs = citytwin(&["runs".as_ref(), "--store".as_ref(), store, "list".as_ref()]);
    assert!(
        runs.contains("Sample district") && runs.contains("completed"),
        "{runs}"
    );
    let id = shared.run_id.to_string();
    let verified = citytwin(&[
        "replay".as_ref(),
        id.as_ref(),
        "--verify".as_ref(),
        "-q".as_ref(),
        "--store".as_ref(),
        store,
    ]);
    assert!(
        verified.contains("replay reproduces the recording"),
        "{verified}"
    );
    let out = dir.path().join("exported");
    citytwin(&[
        "export".as_ref(),
        id.as_ref(),
        "--store".as_ref(),
        store,
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert!(out.join("kpis.parquet").is_file());

    // Two servers on one shared store: a what-if started through one is seen by the other.
    let token = dir.path().join("token");
    std::fs::write(&token, "0123456789abcdef-test-token\n").unwrap();
    let a = start(&[
        "--store".as_ref(),
        store,
        "--scene".as_ref(),
        scene.as_os_str(),
        "--token-file".as_ref(),
        token.as_os_str(),
    ]);
    let b = start(&["--store".as_ref(), store]);
    let (code, body) = http(
        &a,
        "POST",
        "/api/v1/runs",
        Some("0123456789abcdef-test-token"),
        Some(r#"{"scene": "scene"}"#),
    );
    assert_eq!(code, 202, "{body}");
    let job: serde_json::Value = serde_json::from_str(&body).unwrap();
    let job = wait_job(&a, job["job"]["id"].as_u64().unwrap());
    assert_eq!(job["status"], "completed", "{job}");
    let run = job["run_id"].as_i64().unwrap();
    let seen = get(&b, &format!("/api/v1/runs/{run}"));
    assert_eq!(seen["state_hash"].as_str(), shared.state_hash.as_deref());
    let kpis_a = get(&a, &format!("/api/v1/runs/{run}/kpis"));
    let kpis_b = get(&b, &format!("/api/v1/runs/{run}/kpis"));
    assert_eq!(kpis_a, kpis_b);
    assert!(kpis_b.as_array().is_some_and(|k| k.len() > 100), "{kpis_b}");
    let health = get(&b, "/api/v1/health");
    assert_eq!(health["store"], url.as_str());
    // The database drops every citytwin session (a restart, a failover): a request may fail
    // on a dropped connection, and the server then opens fresh ones rather than keep it.
    pg.sql(
        "city",
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'citytwin'",
    );
    let codes: Vec<u16> = (0..8)
        .map(|_| http(&b, "GET", "/api/v1/health", None, None).0)
        .collect();
    assert!(
        codes[codes.len() - 4..].iter().all(|c| *c == 200),
        "the server kept dropped connections: {codes:?}"
    );
    stop(a);
    stop(b);
}

/// The origin a scene file names.
fn scene_origin(scene: &Path) -> LonLat {
    *citytwin_engine::scene::Scene::load(scene)
        .unwrap()
        .meta
        .origin
        .get_ref()
}
