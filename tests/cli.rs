//! The `citytwin` command line, as a user drives it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{repo, scene_copy_of};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_citytwin"))
}

/// The last value of a city KPI in a run's samples.
fn last_city_kpi(kpis: &[citytwin_engine::store::KpiRow], name: &str) -> f64 {
    kpis.iter()
        .rev()
        .find(|k| k.name == name && k.scope == "city")
        .map(|k| k.value)
        .unwrap_or_else(|| panic!("no KPI {name}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The sample scene with data paths made absolute and `edit` applied, written into `dir`.
fn scene_copy(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    scene_copy_of(dir, "sample_district", edit)
}

#[test]
fn check_lists_what_the_sample_scene_loads() {
    let o = bin()
        .arg("check")
        .arg(repo().join("scenes/sample_district.toml"))
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for want in [
        "is valid",
        "EPSG:4548",
        "EPSG:32650",
        "EPSG:4326",
        "building",
        "48",
        "conduit",
        "DEM:",
        "gazetteer: 48 addresses, 9 streets",
    ] {
        assert!(t.contains(want), "{want:?} missing from:\n{t}");
    }
}

#[test]
fn run_then_show_then_export() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("runs.duckdb");
    let scene = scene_copy(dir.path(), |t| {
        t.replace("duration_s = 3600.0", "duration_s = 600.0")
    });
    let o = bin()
        .arg("run")
        .arg(&scene)
        .arg("--out")
        .arg(&store)
        .arg("--seed")
        .arg("7")
        .arg("-q")
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("completed") && t.contains("state hash") && t.contains("entities.building"),
        "{t}"
    );

    // trip records in SUMO's format, beside the scene
    let trips = std::fs::read_to_string(dir.path().join("tripinfo.xml")).unwrap();
    assert!(trips.matches("<tripinfo ").count() > 50 && trips.ends_with("</tripinfos>\n"));
    // checking the scene again leaves the last run's trip records alone
    let o = bin().arg("check").arg(&scene).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tripinfo.xml")).unwrap(),
        trips
    );

    let o = bin()
        .args(["runs", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    let t = text(&o);
    assert!(
        o.status.success() && t.contains("Sample district") && t.contains("completed"),
        "{t}"
    );

    let o = bin()
        .args(["runs", "--store"])
        .arg(&store)
        .args(["show", "1"])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(
        o.status.success()
            && t.contains("features")
            // 188 GIS features + 62 traffic edges and 20 junctions of the SUMO network + the
            // chemical_leak plugin's release
            && t.contains("271")
            && t.contains("seed")
            && t.contains('7'),
        "{t}"
    );

    let out = dir.path().join("csv");
    let o = bin()
        .args(["export", "1", "--store"])
        .arg(&store)
        .args(["--format", "csv", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let kpis = std::fs::read_to_string(out.join("kpis.csv")).unwrap();
    assert!(
        kpis.lines().count() > 10 && kpis.contains("entities.building"),
        "{kpis}"
    );

    // charts of its KPIs: a city KPI, a per-road one (several lines), as PNG and SVG
    let plots = dir.path().join("plots");
    let o = bin()
        .args([
            "plot",
            "1",
            "--kpi",
            "traffic.running",
            "--kpi",
            "traffic.edge.flow_vph",
        ])
        .arg("--store")
        .arg(&store)
        .arg("--out")
        .arg(&plots)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let png = std::fs::read(plots.join("traffic_running.png")).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5_000,
        "{} bytes",
        png.len()
    );
    assert!(plots.join("traffic_edge_flow_vph.png").is_file());
    let o = bin()
        .args(["plot", "1", "--kpi", "traffic.running", "--format", "svg"])
        .arg("--store")
        .arg(&store)
        .arg("--out")
        .arg(&plots)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let svg = std::fs::read_to_string(plots.join("traffic_running.svg")).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("traffic.running"),
        "{svg}"
    );
    // an unknown KPI is named, with what is there, and nothing is written
    let empty = dir.path().join("no-plots");
    let o = bin()
        .args([
            "plot",
            "1",
            "--kpi",
            "traffic.running",
            "--kpi",
            "traffic.runing",
        ])
        .arg("--store")
        .arg(&store)
        .arg("--out")
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let t = text(&o);
    assert!(
        t.contains("'traffic.runing'") && t.contains("traffic.running"),
        "{t}"
    );
    assert!(!empty.exists());

    let o = bin()
        .args(["runs", "--store"])
        .arg(&store)
        .args(["show", "9"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("no run 9"));
}

#[test]
fn a_bad_scene_exits_2_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let scene = scene_copy(dir.path(), |t| t.replace("step_s = 1.0", "step_s = 0.0"));
    let o = bin().arg("run").arg(&scene).arg("-q").output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("scene.toml:") && t.contains("clock.step_s") && !t.contains("panicked"),
        "{t}"
    );
    assert!(!dir.path().join("runs.duckdb").exists());
}

#[test]
fn ctrl_c_stops_the_run_and_marks_it_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("runs.duckdb");
    // Ten million one-second steps: far longer than the test waits.
    let scene = scene_copy(dir.path(), |t| {
        t.replace("duration_s = 3600.0", "duration_s = 10000000.0")
    });
    let mut child = bin()
        .arg("run")
        .arg(&scene)
        .arg("--out")
        .arg(&store)
        .arg("-q")
        .spawn()
        .unwrap();
    // Wait until the run is under way (its store exists), then interrupt it.
    for _ in 0..200 {
        if store.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: sending SIGINT to our own child process.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(sent, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let o = bin()
        .args(["runs", "--store"])
        .arg(&store)
        .args(["show", "1"])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(t.contains("interrupted"), "{t}");
}

#[test]
fn optimize_signals_writes_plans_the_scene_can_run() {
    let dir = tempfile::tempdir().unwrap();
    let plans = dir.path().join("plans.add.xml");
    let scene = scene_copy(dir.path(), |t| {
        t.replace("duration_s = 3600.0", "duration_s = 1200.0")
    });
    let o = bin()
        .arg("optimize-signals")
        .arg(&scene)
        .args(["--rounds", "1", "--out"])
        .arg(&plans)
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("Webster") && t.contains("optimised") && t.contains("total delay"),
        "{t}"
    );
    let xml = std::fs::read_to_string(&plans).unwrap();
    assert_eq!(
        xml.matches("<tlLogic ").count(),
        8,
        "one plan per traffic light: {xml}"
    );
    // the scene runs with them
    let with_plans = std::fs::read_to_string(&scene).unwrap().replace(
        "[simulations.traffic]",
        &format!(
            "[simulations.traffic]\nsignal_plans = \"{}\"",
            plans.display()
        ),
    );
    std::fs::write(&scene, with_plans).unwrap();
    let o = bin().arg("run").arg(&scene).arg("-q").output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // a scene without traffic says so
    let no_traffic = dir.path().join("empty.toml");
    let stripped: String = std::fs::read_to_string(&scene)
        .unwrap()
        .lines()
        .filter(|l| {
            !l.starts_with("signal_plans")
                && !l.starts_with("net =")
                && !l.starts_with("routes =")
                && !l.starts_with("tripinfo =")
                && !l.starts_with("vehicle_sync_interval_s")
        })
        .map(|l| format!("{}\n", l.replace("[simulations.traffic]", "")))
        .collect();
    std::fs::write(&no_traffic, stripped).unwrap();
    let o = bin()
        .arg("optimize-signals")
        .arg(&no_traffic)
        .output()
        .unwrap();
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("no [simulations.traffic]"),
        "{t}"
    );
}

#[test]
fn compare_runs_a_base_and_a_variant_and_writes_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let base = scene_copy(dir.path(), |t| {
        t.replace("duration_s = 3600.0", "duration_s = 900.0")
    });
    let variant = dir.path().join("closed.toml");
    let variant_text = std::fs::read_to_string(&base).unwrap().replace(
        "name = \"Sample district (Hefei)\"",
        "name = \"Arterial closed\"",
    ) + "\n[[scenario]]\nplugin = \"road_closure\"\nparams = { roads = [\"h11\", \"-h11\", \"h21\", \"-h21\"], from_s = 60.0 }\n";
    std::fs::write(&variant, variant_text).unwrap();
    let report = dir.path().join("report.md");
    let o = bin()
        .arg("compare")
        .arg(&base)
        .arg(&variant)
        .arg("--out")
        .arg(&report)
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("Arterial closed") && t.contains("traffic.reroutes"),
        "{t}"
    );
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(
        md.contains("| traffic.mean_travel_time_s | mean over the run |")
            && md.contains("Arterial closed"),
        "{md}"
    );
    // a chart per KPI over time, referenced by the report: a 900 × 440 PNG with two coloured
    // lines (the base's blue and the variant's red appear among its pixels)
    let chart = dir.path().join("report-traffic_mean_travel_time_s.png");
    let png = std::fs::read(&chart).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5_000);
    assert_eq!(&png[16..24], &[0, 0, 3, 132, 0, 0, 1, 184]);
    let idat = png.windows(4).position(|w| w == b"IDAT").unwrap();
    let len = u32::from_be_bytes(png[idat - 4..idat].try_into().unwrap()) as usize;
    let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&png[idat + 4..idat + 4 + len]).unwrap();
    let has = |rgb: [u8; 3]| {
        raw.chunks(900 * 3 + 1)
            .any(|row| row[1..].chunks(3).any(|p| p == rgb))
    };
    assert!(has([31, 119, 180]) && has([214, 39, 40]), "both runs drawn");
    assert!(md.contains("](report-traffic_mean_travel_time_s.png)"));
    // the runs are in the store in scene order, and the base ran as it runs alone
    let store = citytwin_engine::store::RunStore::open(dir.path().join("runs.duckdb")).unwrap();
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (
            runs[0].id,
            runs[0].scene_name.as_str(),
            runs[1].scene_name.as_str()
        ),
        (1, "Sample district (Hefei)", "Arterial closed")
    );
    let base_hash = runs[0].state_hash.clone().unwrap();
    drop(store);
    let o = bin().arg("run").arg(&base).arg("-q").output().unwrap();
    let t = text(&o);
    assert!(
        o.status.success() && t.contains(&base_hash),
        "{base_hash}\n{t}"
    );
    // a variant that does not load is an error naming it
    let o = bin()
        .arg("compare")
        .arg(&base)
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o).contains("missing.toml"));
}

#[test]
fn the_sample_run_maps_the_air_raises_alerts_and_traces_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("runs.duckdb");
    let scene = scene_copy(dir.path(), |t| t);
    let mut hashes = Vec::new();
    for _ in 0..2 {
        let o = bin().arg("run").arg(&scene).arg("-q").output().unwrap();
        let t = text(&o);
        assert!(o.status.success(), "{t}");
        let hash = t
            .lines()
            .find(|l| l.contains("state hash"))
            .unwrap_or_else(|| panic!("{t}"))
            .to_string();
        hashes.push(hash);
    }
    assert_eq!(
        hashes[0], hashes[1],
        "the same scene and seed give the same state"
    );

    let s = citytwin_engine::store::RunStore::open(&store).unwrap();
    // Maps every 5 minutes per H3 cell: traffic NO2 all along, chlorine only once the leak
    // has started (at 900 s) and until it has blown away.
    let no2 = s.field(1, "pollution.NO2").unwrap();
    let ticks: std::collections::BTreeSet<u64> = no2.iter().map(|r| r.tick).collect();
    assert!(ticks.len() >= 11, "NO2 maps at {ticks:?}");
    assert!(
        no2.iter()
            .all(|r| r.unit == "kg/m3" && r.value > 0.0 && r.h3 != 0)
    );
    let cl = s.field(1, "pollution.chlorine").unwrap();
    assert!(
        cl.iter().all(|r| r.sim_time_s >= 900.0),
        "chlorine before the leak"
    );
    let peak = cl.iter().map(|r| r.value).fold(0.0, f64::max);
    assert!(
        peak * 1e9 > 1450.0,
        "the leak exceeds chlorine's limit somewhere: {peak}"
    );

    // Exceedances at buildings near the tanks, and the leak's start and end, as events.
    let counts: std::collections::BTreeMap<String, i64> =
        s.event_counts(1).unwrap().into_iter().collect();
    assert!(
        counts.get("pollution.exceedance").copied().unwrap_or(0) >= 3,
        "{counts:?}"
    );
    assert_eq!(counts.get("scenario.leak_started"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("scenario.leak_ended"), Some(&1), "{counts:?}");
    assert!(
        counts
            .get("scenario.leak_reached_building")
            .copied()
            .unwrap_or(0)
            >= 3,
        "{counts:?}"
    );
    assert_eq!(counts.get("pollution.trace"), Some(&1), "{counts:?}");

    // Mass balance: what was emitted is in the air or has left the area.
    let kpis = s.kpis(1).unwrap();
    for sp in ["NO2", "SO2", "chlorine", "VOC"] {
        let emitted = last_city_kpi(&kpis, &format!("pollution.{sp}.emitted"));
        let err = last_city_kpi(&kpis, &format!("pollution.{sp}.balance_error"));
        assert!(
            emitted > 0.0 && err.abs() < 1e-4 * emitted,
            "{sp}: {err} of {emitted} kg"
        );
    }

    // The tracing report ranks the plant's stack first for SO2.
    let report = std::fs::read_to_string(dir.path().join("tracing.md")).unwrap();
    let first = report.lines().find(|l| l.starts_with("| 1 |")).unwrap();
    assert!(first.contains("stack1"), "{report}");
}

#[test]
fn every_scene_in_scenes_checks() {
    let mut n = 0;
    let mut names: Vec<PathBuf> = std::fs::read_dir(repo().join("scenes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    names.sort();
    for scene in names {
        let o = bin().arg("check").arg(&scene).output().unwrap();
        assert!(o.status.success(), "{}: {}", scene.display(), text(&o));
        n += 1;
    }
    assert!(n >= 6, "{n} scenes");
}

#[test]
fn the_rainstorm_floods_the_bowl_and_the_water_balance_closes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("runs.duckdb");
    let scene = scene_copy_of(dir.path(), "sample_rainstorm", |t| t);
    let o = bin().arg("run").arg(&scene).arg("-q").output().unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let s = citytwin_engine::store::RunStore::open(&store).unwrap();
    let depth = s.field(1, "flood.depth").unwrap();
    let ticks: std::collections::BTreeSet<u64> = depth.iter().map(|r| r.tick).collect();
    assert!(ticks.len() >= 8, "depth maps at {ticks:?}");
    let deepest = s.field(1, "flood.max_depth").unwrap();
    let peak = deepest.iter().map(|r| r.value).fold(0.0, f64::max);
    assert!(peak > 0.15, "the bowl floods: deepest cell mean {peak} m");
    // When the cells flooded: after the storm began (at 300 s), within the run.
    let first = s.field(1, "flood.first_flooded").unwrap();
    assert!(!first.is_empty());
    assert!(
        first
            .iter()
            .all(|r| r.unit == "s" && r.value > 300.0 && r.value <= 3600.0),
        "{first:?}"
    );
    let counts: std::collections::BTreeMap<String, i64> =
        s.event_counts(1).unwrap().into_iter().collect();
    assert!(
        counts.get("flood.road_flooded").copied().unwrap_or(0) >= 1,
        "{counts:?}"
    );
    let kpis = s.kpis(1).unwrap();
    let rain = last_city_kpi(&kpis, "flood.rain_volume");
    let err = last_city_kpi(&kpis, "flood.balance_error");
    // The design storm's depth over the DEM's open cells, and a balance within 0.1 %.
    assert!(rain > 1000.0, "{rain} m³ of rain");
    assert!(err.abs() < 1e-3 * rain, "balance error {err} m³ of {rain}");
}

#[test]
fn locate_finds_addresses_in_both_scripts_and_reverse_geocodes() {
    let scene = repo().join("scenes/sample_district.toml");
    let o = bin()
        .args(["locate", "合肥市长江中路8号", "--json", "--scene"])
        .arg(&scene)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let found: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(found[0]["place"]["id"], "addresses.csv:b07", "{found:#}");
    assert_eq!(found[0]["label"], "合肥市蜀山区长江中路8号");
    let (lon, lat) = (
        found[0]["place"]["at"]["lon"].as_f64().unwrap(),
        found[0]["place"]["at"]["lat"].as_f64().unwrap(),
    );
    // The same place by its pinyin, and back from its position.
    let o = bin()
        .args(["locate", "Changjiang Zhonglu 8", "--limit", "1", "--scene"])
        .arg(&scene)
        .output()
        .unwrap();
    assert!(
        o.status.success() && text(&o).contains("addresses.csv:b07"),
        "{}",
        text(&o)
    );
    let o = bin()
        .args(["locate", "--at", &format!("{lon},{lat}"), "--scene"])
        .arg(&scene)
        .output()
        .unwrap();
    assert!(
        o.status.success() && text(&o).contains("长江中路8号"),
        "{}",
        text(&o)
    );
    // OpenStreetMap as a source of its own.
    let o = bin()
        .args(["locate", "Alexandersgatan 52", "--limit", "1", "--from"])
        .arg(repo().join("../shared/osm/Helsinki.osm.pbf"))
        .output()
        .unwrap();
    assert!(
        o.status.success() && text(&o).contains("Aleksanterinkatu 52"),
        "{}",
        text(&o)
    );
    // Nothing found: exit 1. Bad input: exit 2, saying what was wrong.
    let o = bin()
        .args(["locate", "qqqq zzzz", "--scene"])
        .arg(&scene)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = bin()
        .args(["locate", "--at", "117.2,north", "--scene"])
        .arg(&scene)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("latitude 'north' is not a number"),
        "{}",
        text(&o)
    );
    let o = bin()
        .args(["locate", "x", "--from", "no/such.osm.pbf"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("no/such.osm.pbf"), "{}", text(&o));
}
