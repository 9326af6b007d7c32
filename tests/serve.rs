//! `citytwin serve` end to end: the real binary on loopback, spoken to over HTTP/1.1 and a
//! WebSocket as a dashboard would, its answers checked against the store read directly and
//! against brute force.

mod common;
// `citytwin serve` as a test drives it (not in `common`: examples share that, and have no binary).
#[path = "common/server.rs"]
mod server;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use citytwin_engine::geo_frame::{GeoFrame, LonLat};
use citytwin_engine::store::RunStore;
use common::{record, scene_copy_of};
use geo::{ClosestPoint, Intersects};
use serde_json::Value;
use server::{fails, get, http, start, stop, wait_job};

const TOKEN: &str = "0123456789abcdef-test-token";

fn lonlat_of(frame: &GeoFrame, x: f64, y: f64) -> String {
    let ll = frame.to_wgs84(geo::Coord { x, y });
    format!("{},{}", ll.lon, ll.lat)
}

#[test]
fn serve_answers_runs_kpis_features_what_ifs_and_streams_a_live_run() {
    let dir = tempfile::tempdir().unwrap();
    let scene = scene_copy_of(dir.path(), "sample_district", |t| {
        t.replace("duration_s = 3600.0", "duration_s = 600.0")
    });
    let store_path = dir.path().join("runs.duckdb");
    let base = record(&scene, &store_path);
    // The live scene: the same district, with a day to run and a KPI every 30 s.
    let live_dir = dir.path().join("live");
    std::fs::create_dir(&live_dir).unwrap();
    let live = scene_copy_of(&live_dir, "sample_district", |t| {
        t.replace("duration_s = 3600.0", "duration_s = 86400.0")
            .replace("kpi_interval_s = 60.0", "kpi_interval_s = 30.0")
    });
    // What the store holds, read before the server takes the file.
    let (kpis, features) = {
        let st = RunStore::open(&store_path).unwrap();
        let kpis = st.kpis(base.run_id).unwrap();
        let features = st
            .features_in(base.run_id, [-1e9, -1e9, 1e9, 1e9], None, usize::MAX >> 1)
            .unwrap();
        (kpis, features)
    };
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let spawned = Instant::now();
    let s = start(&[
        "--store".as_ref(),
        store_path.as_os_str(),
        "--scene".as_ref(),
        scene.as_os_str(),
        "--live".as_ref(),
        live.as_os_str(),
        "--speed".as_ref(),
        "120".as_ref(),
        "--token-file".as_ref(),
        token_file.as_os_str(),
    ]);

    let h = get(&s, "/api/v1/health");
    assert_eq!(h["writes"], true);
    let api: Value = get(&s, "/api/v1/openapi.json");
    assert!(api["paths"]["/api/v1/runs/{id}/features"]["get"].is_object());
    let scenes = get(&s, "/api/v1/scenes");
    assert_eq!(scenes[0]["name"], "scene");

    // Runs and KPIs: exactly what the store holds.
    let runs = get(&s, "/api/v1/runs");
    assert_eq!(runs[0]["id"], base.run_id);
    assert_eq!(runs[0]["status"], "completed");
    assert_eq!(runs[0]["state_hash"].as_str(), base.state_hash.as_deref());
    let one = get(&s, &format!("/api/v1/runs/{}", base.run_id));
    assert_eq!(one["rows"]["features"], features.len() as u64);
    let series = get(
        &s,
        &format!(
            "/api/v1/runs/{}/kpis?name=traffic.mean_speed_mps&scope=city",
            base.run_id
        ),
    );
    // A value that is not a number (a mean over no vehicles) travels as null.
    let expected: Vec<(u64, Option<f64>)> = kpis
        .iter()
        .filter(|k| k.name == "traffic.mean_speed_mps" && k.scope == "city")
        .map(|k| (k.tick, k.value.is_finite().then_some(k.value)))
        .collect();
    let got: Vec<(u64, Option<f64>)> = series
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["tick"].as_u64().unwrap(), k["value"].as_f64()))
        .collect();
    assert!(expected.len() >= 10, "{expected:?}");
    assert_eq!(got, expected);
    let window = get(
        &s,
        &format!("/api/v1/runs/{}/kpis?from_s=120&to_s=240", base.run_id),
    );
    let times: Vec<f64> = window
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["sim_time_s"].as_f64().unwrap())
        .collect();
    assert!(
        !times.is_empty() && times.iter().all(|t| (120.0..=240.0).contains(t)),
        "{times:?}"
    );
    assert_eq!(
        times.len(),
        kpis.iter()
            .filter(|k| (120.0..=240.0).contains(&k.sim_time_s))
            .count()
    );

    // Features near a point: the same set, in the same order, as brute force over every
    // stored geometry.
    let frame = GeoFrame::new(LonLat::new(117.2272, 31.8206));
    let building = features.iter().find(|f| f.kind == "building").unwrap();
    let (bx, by) = (
        (building.bbox[0] + building.bbox[2]) / 2.0,
        (building.bbox[1] + building.bbox[3]) / 2.0,
    );
    let at = lonlat_of(&frame, bx, by);
    // The point the server measures from: the query's longitude and latitude in the frame.
    let (lon, lat) = at.split_once(',').unwrap();
    let c = frame.to_local(LonLat::new(lon.parse().unwrap(), lat.parse().unwrap()));
    let (cx, cy) = (c.x, c.y);
    let r = 150.0;
    let near = get(
        &s,
        &format!(
            "/api/v1/runs/{}/features?near={at}&radius_m={r}&limit=10000",
            base.run_id
        ),
    );
    let mut brute: Vec<(f64, u64)> = features
        .iter()
        .filter_map(|f| {
            let g = citytwin_engine::wkb::read_wkb(&f.wkb).unwrap();
            let p = geo::Point::new(cx, cy);
            let d = if g.intersects(&p) {
                0.0
            } else {
                match g.closest_point(&p) {
                    geo::Closest::SinglePoint(q) => (q.x() - cx).hypot(q.y() - cy),
                    _ => 0.0,
                }
            };
            (d <= r).then_some((d, f.entity))
        })
        .collect();
    brute.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let got: Vec<(f64, u64)> = near["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["properties"]["distance_m"].as_f64().unwrap(),
                f["properties"]["entity"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(brute.len() > 5, "{brute:?}");
    assert_eq!(
        got.iter().map(|g| g.1).collect::<Vec<_>>(),
        brute.iter().map(|b| b.1).collect::<Vec<_>>()
    );
    assert_eq!(near["features"][0]["properties"]["entity"], building.entity);
    assert_eq!(near["features"][0]["geometry"]["type"], "Polygon");
    // A box around the whole district holds every feature; one kind filters them.
    let all = get(
        &s,
        &format!(
            "/api/v1/runs/{}/features?bbox=117.1,31.7,117.4,31.9&limit=10000",
            base.run_id
        ),
    );
    assert_eq!(all["matched"], features.len() as u64);
    let buildings = get(
        &s,
        &format!(
            "/api/v1/runs/{}/features?bbox=117.1,31.7,117.4,31.9&kind=building&limit=5",
            base.run_id
        ),
    );
    assert_eq!(buildings["features"].as_array().unwrap().len(), 5);
    assert_eq!(buildings["truncated"], true);
    assert_eq!(
        buildings["matched"],
        features.iter().filter(|f| f.kind == "building").count() as u64
    );
    // The building's own H3 cell holds it.
    let cell = format!("{:x}", building.h3.unwrap());
    let in_cell = get(
        &s,
        &format!("/api/v1/runs/{}/features?h3={cell}", base.run_id),
    );
    assert!(
        in_cell["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["properties"]["entity"] == building.entity)
    );

    // Bad requests say what is wrong, as JSON.
    let run = base.run_id;
    for (path, status, says) in [
        ("/api/v1/runs/999".to_string(), 404, "no run 999"),
        (
            format!("/api/v1/runs/{run}/features"),
            400,
            "exactly one of bbox",
        ),
        (
            format!("/api/v1/runs/{run}/kpis?nmae=x"),
            400,
            "unknown parameter 'nmae'",
        ),
        (
            format!("/api/v1/runs/{run}/features?near=117.2,95"),
            400,
            "near",
        ),
        ("/api/v1/nowhere".to_string(), 404, "no such route"),
        (
            "/api/v1/runs/first".to_string(),
            400,
            "'first' is not a run id",
        ),
        (format!("/api/v1/runs/{run}/stream"), 400, "WebSocket"),
    ] {
        let (c, m) = fails(&s, "GET", &path, None, None);
        assert!(c == status && m.contains(says), "GET {path}: {c} {m}");
    }

    // Writes need the token.
    let what_if = r#"{"scene": "scene"}"#;
    let (c, _) = fails(&s, "POST", "/api/v1/runs", None, Some(what_if));
    assert_eq!(c, 401);
    assert_eq!(
        fails(
            &s,
            "POST",
            "/api/v1/runs",
            Some("wrong-token-of-some-length"),
            Some(what_if)
        )
        .0,
        401
    );
    let (c, m) = fails(
        &s,
        "POST",
        "/api/v1/runs",
        Some(TOKEN),
        Some(r#"{"scene": "scene", "scenarios": "[[scenario]]\nplugin = 3"}"#),
    );
    assert!(
        c == 400 && m.contains("scenarios") && m.contains("line"),
        "{m}"
    );
    let (c, m) = fails(
        &s,
        "POST",
        "/api/v1/runs",
        Some(TOKEN),
        Some(r#"{"scene": "elsewhere"}"#),
    );
    assert!(c == 404 && m.contains("served: scene"), "{m}");
    assert_eq!(
        fails(
            &s,
            "POST",
            "/api/v1/runs",
            Some(TOKEN),
            Some(r#"{"scene": "scene", "sed": 1}"#)
        )
        .0,
        400
    );

    // A what-if of the unchanged scene is the baseline again, bit for bit; one with the
    // arterial closed is not.
    let (c, body) = http(&s, "POST", "/api/v1/runs", Some(TOKEN), Some(what_if));
    assert_eq!(c, 202, "{body}");
    let same: Value = serde_json::from_str(&body).unwrap();
    let closed = r#"{"scene": "scene", "scenarios": "[[scenario]]\nplugin = \"road_closure\"\nparams = { roads = [\"h11\", \"-h11\", \"h21\", \"-h21\"], from_s = 60.0 }"}"#;
    let (c, body) = http(&s, "POST", "/api/v1/runs", Some(TOKEN), Some(closed));
    assert_eq!(c, 202, "{body}");
    let other: Value = serde_json::from_str(&body).unwrap();
    let same = wait_job(&s, same["job"]["id"].as_u64().unwrap());
    let other = wait_job(&s, other["job"]["id"].as_u64().unwrap());
    assert_eq!(same["status"], "completed", "{same}");
    assert_eq!(other["status"], "completed", "{other}");
    let run_of = |j: &Value| get(&s, &format!("/api/v1/runs/{}", j["run_id"]));
    assert_eq!(
        run_of(&same)["state_hash"].as_str(),
        base.state_hash.as_deref()
    );
    assert_ne!(
        run_of(&other)["state_hash"].as_str(),
        base.state_hash.as_deref()
    );
    let reroutes = get(&s, &format!("/api/v1/runs/{}/latest", other["run_id"]));
    assert!(
        reroutes["kpis"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["name"] == "traffic.reroutes" && k["value"].as_f64().unwrap() > 0.0),
        "{reroutes}"
    );
    assert_eq!(
        fails(
            &s,
            "DELETE",
            &format!("/api/v1/jobs/{}", same["id"]),
            None,
            None
        )
        .0,
        401
    );
    assert_eq!(
        fails(
            &s,
            "DELETE",
            &format!("/api/v1/jobs/{}", same["id"]),
            Some(TOKEN),
            None
        )
        .0,
        409
    );

    // The live run: its KPIs stream over a WebSocket as they are recorded, no faster than the
    // pace it was given (120 simulated seconds per wall second).
    let live_job = get(&s, "/api/v1/live");
    assert_eq!(live_job["job"]["kind"], "live");
    let live_run = live_job["job"]["run_id"]
        .as_i64()
        .expect("the live run has started");
    let (mut ws, _) =
        tungstenite::connect(format!("ws://{}/api/v1/runs/{live_run}/stream", s.addr)).unwrap();
    let connected = Instant::now();
    let mut ticks = Vec::new();
    // What was recorded before we connected comes at once; then we wait for samples recorded
    // while we listen (one every 30 simulated seconds, a quarter of a wall second at this pace).
    while ticks.len() < 4 || connected.elapsed() < Duration::from_secs(1) {
        let m = ws.read().unwrap();
        let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        assert!(v.get("end").is_none(), "the live run ended: {v}");
        assert_eq!(v["run"], live_run);
        assert!(
            v["kpis"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["name"] == "traffic.running")
        );
        // Never ahead of the wall clock at the pace asked for (the run started after the
        // server was spawned; one KPI interval of slack).
        let sim_s = v["sim_time_s"].as_f64().unwrap();
        let wall = spawned.elapsed().as_secs_f64();
        assert!(
            sim_s <= 120.0 * wall + 30.0,
            "{sim_s} s simulated in {wall} s of wall time"
        );
        ticks.push(v["tick"].as_u64().unwrap());
        assert!(
            connected.elapsed() < Duration::from_secs(60),
            "the stream stalled at {ticks:?}"
        );
    }
    assert!(ticks.windows(2).all(|w| w[0] < w[1]), "{ticks:?}");
    drop(ws);
    let state = get(&s, "/api/v1/live");
    assert!(
        state["state"]["kpis"].as_array().unwrap().len() > 5,
        "{state}"
    );
    assert_eq!(state["state"]["run"]["status"], "running");
    assert!(state["state"]["snapshot"]["features"].as_array().is_some());
    // A running run's state is read afresh (it moves on); an ended run's answers are kept and
    // come back the same.
    std::thread::sleep(Duration::from_millis(600));
    let later = get(&s, &format!("/api/v1/runs/{live_run}/latest"));
    assert!(
        later["kpi_tick"].as_u64() > state["state"]["kpi_tick"].as_u64(),
        "{later}"
    );
    let city = format!("/api/v1/runs/{}/kpis?scope=city", base.run_id);
    assert_eq!(
        http(&s, "GET", &city, None, None),
        http(&s, "GET", &city, None, None)
    );

    // Addresses of the served scene.
    let found = get(
        &s,
        "/api/v1/locate?q=%E9%95%BF%E6%B1%9F%E4%B8%AD%E8%B7%AF8%E5%8F%B7",
    ); // 长江中路8号
    assert!(
        found[0]["label"].as_str().unwrap().ends_with("长江中路8号"),
        "{found}"
    );
    let at = found[0]["place"]["at"].clone();
    let rev = get(
        &s,
        &format!("/api/v1/reverse?at={},{}", at["lon"], at["lat"]),
    );
    assert_eq!(rev["address"][0]["id"], found[0]["place"]["id"]);

    // Stopping the server closes the live run as interrupted and keeps everything recorded.
    stop(s);
    let st = RunStore::open(&store_path).unwrap();
    let runs = st.runs().unwrap();
    assert_eq!(runs.len(), 4, "{runs:?}");
    let live = runs.iter().find(|r| r.id == live_run).unwrap();
    assert_eq!(live.status, "interrupted", "{live:?}");
    assert!(st.kpis(live_run).unwrap().len() > 10);
}

#[test]
fn a_server_without_a_token_is_read_only_and_bad_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("runs.duckdb");
    // A short run with a feed of two good readings and a bad one, for the readings route.
    let scene = scene_copy_of(dir.path(), "sample_district", |t| {
        t.replace("duration_s = 3600.0", "duration_s = 60.0") + "\n[[feed]]\nfile = \"feed.csv\"\n"
    });
    std::fs::write(
        dir.path().join("feed.csv"),
        "time,station,quantity,value,unit\n0,HF-AQ1,NO2,40,ug/m3\n0,HF-XX,NO2,40,ug/m3\n30,HF-AQ1,NO2,42,ug/m3\n",
    )
    .unwrap();
    let run = record(&scene, &store).run_id;
    let rows = RunStore::open(&store).unwrap().readings(run).unwrap();
    assert_eq!(rows.len(), 3);
    let s = start(&[
        "--store".as_ref(),
        store.as_os_str(),
        "--scene".as_ref(),
        scene.as_os_str(),
    ]);
    assert_eq!(get(&s, "/api/v1/health")["writes"], false);
    // The readings the run took in, as stored, filtered and cut.
    let all = get(&s, &format!("/api/v1/runs/{run}/readings"));
    assert_eq!(all["truncated"], false);
    assert_eq!(all["readings"].as_array().unwrap().len(), rows.len());
    assert_eq!(all["readings"][2]["value"].as_f64(), rows[2].value);
    let bad = get(
        &s,
        &format!("/api/v1/runs/{run}/readings?status=unknown_station"),
    );
    assert_eq!(bad["readings"].as_array().unwrap().len(), 1);
    assert_eq!(bad["readings"][0]["detail"], "no sensor 'HF-XX'");
    let first = get(
        &s,
        &format!("/api/v1/runs/{run}/readings?station=HF-AQ1&limit=1"),
    );
    assert_eq!(first["readings"][0]["time_s"], 0.0);
    assert_eq!(first["truncated"], true);
    let (c, m) = fails(
        &s,
        "GET",
        &format!("/api/v1/runs/{run}/readings?status=odd"),
        None,
        None,
    );
    assert!(
        c == 400 && m.contains("'odd' is not one of ok, malformed"),
        "{m}"
    );
    let (c, m) = fails(
        &s,
        "POST",
        "/api/v1/runs",
        Some(TOKEN),
        Some(r#"{"scene": "scene"}"#),
    );
    assert!(c == 403 && m.contains("read-only"), "{m}");
    let (c, m) = fails(&s, "GET", "/api/v1/live", None, None);
    assert!(c == 404 && m.contains("--live"), "{m}");
    stop(s);

    let short = dir.path().join("short");
    let none = dir.path().join("none");
    std::fs::write(&short, "abc").unwrap();
    for (args, says) in [
        (
            vec!["--token-file".as_ref(), short.as_os_str()],
            "at least 16",
        ),
        (
            vec!["--token-file".as_ref(), none.as_os_str()],
            "cannot read",
        ),
        (vec!["--speed".as_ref(), "0".as_ref()], "--speed"),
        (
            vec!["--scene".as_ref(), Path::new("no/such.toml").as_os_str()],
            "no/such.toml",
        ),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_citytwin"))
            .arg("serve")
            .args(["--bind", "127.0.0.1:0", "--store"])
            .arg(&store)
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
