//! citytwin's traffic core against SUMO 1.28 on the same files, in one run.
//!
//! `cargo bench --workspace --bench vs_sumo` prints, per scenario: wall time of both, the ratio,
//! vehicle updates per second (UPS) of both, and the mean-travel-time and travel-time-index error.
//! SUMO comes from the reference venv (`../shared/scripts/ref_venv.sh`, installed on first use).
//!
//! Scenarios: `grid10` (5 001 vehicles) and `helsinki` (2 000) from `../shared/traffic/`, the
//! sample district, and a 30 × 30 grid with 50 000 vehicles generated once with SUMO's
//! netgenerate/randomTrips/duarouter into `~/.cache/citytwin/bench/grid30/`. SUMO takes about
//! 1 000 s on the large grid, so it runs there only with `CITYTWIN_BENCH_SUMO_LARGE=1`.
//! Set `CITYTWIN_BENCH_NO_SUMO=1` to measure citytwin alone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use citytwin_traffic::tripinfo::summary;
use citytwin_traffic::{Demand, Network, Traffic, TrafficConfig};

struct Ours {
    load_s: f64,
    run_s: f64,
    sim_s: f64,
    updates: u64,
    tt: f64,
    tti: f64,
    arrived: usize,
    teleports: u64,
}

fn run_ours(net: &Path, rou: &Path) -> Ours {
    let t0 = Instant::now();
    let network = Network::from_sumo_file(net).expect("network");
    let mut demand = Demand::new();
    demand.read_sumo_file(rou, &network).expect("routes");
    let load_s = t0.elapsed().as_secs_f64();
    let mut sim = Traffic::new(Arc::new(network), demand, TrafficConfig::default());
    let t1 = Instant::now();
    let (mut t, mut updates, mut trips) = (0.0, 0u64, Vec::new());
    while !sim.is_done() && t < 86_400.0 {
        sim.step(t);
        updates += sim.running();
        trips.extend(sim.take_finished());
        t += 1.0;
    }
    let run_s = t1.elapsed().as_secs_f64();
    let s = summary(&trips);
    Ours {
        load_s,
        run_s,
        sim_s: t,
        updates,
        tt: s.mean_travel_time_s,
        tti: s.travel_time_index,
        arrived: s.arrived,
        teleports: sim.totals().teleports,
    }
}

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// SUMO's figures from the reference script (None when SUMO cannot be run here).
fn run_sumo(net: &Path, rou: &Path) -> Option<serde_json::Value> {
    if std::env::var_os("CITYTWIN_BENCH_NO_SUMO").is_some() {
        return None;
    }
    let script = shared().join("scripts/sumo_reference.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(net)
        .arg(rou)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "SUMO did not run: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn report(name: &str, net: &Path, rou: &Path, with_sumo: bool) {
    println!("\n== {name} ==");
    let ours = run_ours(net, rou);
    let ups = ours.updates as f64 / ours.run_s;
    println!(
        "citytwin: {} arrived, {} teleports; load {:.2} s + run {:.3} s for {:.0} s simulated ({:.0}× real time); {:.0} vehicle updates/s; mean travel time {:.1} s, TTI {:.3}",
        ours.arrived,
        ours.teleports,
        ours.load_s,
        ours.run_s,
        ours.sim_s,
        ours.sim_s / ours.run_s,
        ups,
        ours.tt,
        ours.tti
    );
    if !with_sumo {
        return;
    }
    let Some(s) = run_sumo(net, rou) else {
        println!("SUMO: not run");
        return;
    };
    let f = |k: &str| s[k].as_f64().unwrap_or(f64::NAN);
    let (wall, sups, tt, tti) = (
        f("wall_s"),
        f("ups"),
        f("travel_time_mean_s"),
        f("travel_time_index"),
    );
    let ours_total = ours.load_s + ours.run_s;
    println!(
        "SUMO 1.28: {} arrived, {} teleports; {:.2} s wall (process, incl. loading); {:.0} vehicle updates/s; mean travel time {:.1} s, TTI {:.3}",
        f("arrived"),
        f("teleports"),
        wall,
        sups,
        tt,
        tti
    );
    println!(
        "ratio: citytwin is {:.1}× faster in wall time incl. loading ({:.1}× on the stepping alone); UPS ratio {:.1}×; travel time error {:+.2} %, TTI error {:+.2} %",
        wall / ours_total,
        wall / ours.run_s,
        ups / sups,
        (ours.tt - tt) / tt * 100.0,
        (ours.tti - tti) / tti * 100.0
    );
}

/// The 30 × 30 grid with 50 000 vehicles, generated once with SUMO's tools.
fn grid30() -> Option<(PathBuf, PathBuf)> {
    let dir = PathBuf::from(std::env::var_os("HOME")?).join(".cache/citytwin/bench/grid30");
    let (net, rou) = (dir.join("grid30.net.xml"), dir.join("g30_50k.rou.xml"));
    if net.exists() && rou.exists() {
        return Some((net, rou));
    }
    std::fs::create_dir_all(&dir).ok()?;
    let venv = Command::new("bash")
        .arg(shared().join("scripts/ref_venv.sh"))
        .output()
        .ok()?;
    let venv = PathBuf::from(String::from_utf8_lossy(&venv.stdout).trim());
    let bin = venv.join("bin");
    println!("generating the 30×30 grid with 50 000 vehicles (once) …");
    let ok = Command::new(bin.join("netgenerate"))
        .args([
            "--grid",
            "--grid.number",
            "30",
            "--grid.length",
            "200",
            "--grid.attach-length",
            "200",
        ])
        .args([
            "--default.lanenumber",
            "2",
            "--default.speed",
            "13.89",
            "--default.junctions.type",
            "traffic_light",
        ])
        .args([
            "--tls.guess",
            "true",
            "--no-turnarounds",
            "true",
            "--seed",
            "42",
            "-o",
        ])
        .arg(&net)
        .status()
        .ok()?
        .success();
    if !ok {
        return None;
    }
    let python = bin.join("python");
    let tools = Command::new(&python)
        .args([
            "-c",
            "import sumo, os; print(os.path.join(os.path.dirname(sumo.__file__), 'tools'))",
        ])
        .output()
        .ok()?;
    let tools = PathBuf::from(String::from_utf8_lossy(&tools.stdout).trim());
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ok = Command::new(&python)
        .arg(tools.join("randomTrips.py"))
        .arg("-n")
        .arg(&net)
        .arg("-r")
        .arg(&rou)
        .arg("-o")
        .arg(dir.join("g30_50k.trips.xml"))
        .args([
            "--seed",
            "42",
            "-e",
            "3600",
            "-p",
            "0.072",
            "--fringe-factor",
            "5",
            "--min-distance",
            "300",
        ])
        .args([
            "--trip-attributes",
            "departLane=\"best\" departSpeed=\"max\"",
        ])
        .env("PATH", path)
        .env("SUMO_HOME", tools.parent()?)
        .status()
        .ok()?
        .success();
    ok.then_some((net, rou))
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let base = shared().join("traffic");
    report(
        "grid10 (10×10 signalised grid, 5 001 vehicles)",
        &base.join("grid10/grid10.net.xml"),
        &base.join("grid10/g10_5k.rou.xml"),
        true,
    );
    report(
        "helsinki (OSM, 35 traffic lights, 2 000 vehicles)",
        &base.join("helsinki/helsinki.net.xml"),
        &base.join("helsinki/hel_2k.rou.xml"),
        true,
    );
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/sample/traffic");
    report(
        "sample district (1 500 vehicles)",
        &sample.join("district.net.xml"),
        &sample.join("district.rou.xml"),
        true,
    );
    match grid30() {
        Some((net, rou)) => report(
            "grid30 (30×30 grid, 50 000 vehicles)",
            &net,
            &rou,
            std::env::var_os("CITYTWIN_BENCH_SUMO_LARGE").is_some(),
        ),
        None => println!("\n== grid30 == not generated (SUMO's tools are not available here)"),
    }
}
