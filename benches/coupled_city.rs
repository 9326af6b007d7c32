//! The coupled city's speed: `scenes/sample_rainstorm.toml` (an hour of rush-hour traffic, the
//! storm on the DEM and the sewer, the chemical leak and the air, every coupling on) run
//! headless, against the same scene with the couplings off, in one process so the two are
//! compared on the same machine state. Prints the wall time of each run, how many times faster
//! than real time it ran (goal ≥ 50× on 2 cores), and what the couplings cost.
//!
//! `cargo bench --workspace --bench coupled_city` (`CITYTWIN_BENCH_RUNS=n` repeats each, the
//! median is reported; default 3).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use citytwin_engine::sim::Sim;

/// Which couplings run.
#[derive(Clone, Copy, PartialEq)]
enum Couplings {
    All,
    /// Only the traffic's exhaust into the air.
    ExhaustOnly,
    None,
}

fn build(dir: &std::path::Path, c: Couplings) -> Sim {
    let path = common::scene_copy_of(dir, "sample_rainstorm", |t| match c {
        Couplings::All => t,
        Couplings::ExhaustOnly => common::uncoupled(t).replace(
            "[simulations.pollution]\ntraffic = false\n",
            "[simulations.pollution]\n",
        ),
        Couplings::None => common::uncoupled(t),
    });
    common::build_sim(&path)
}

/// Seconds of wall time for the whole scene, and its simulated duration.
fn time_run(c: Couplings) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut sim = build(dir.path(), c);
    let t0 = Instant::now();
    while !sim.finished() {
        sim.step();
    }
    let wall = t0.elapsed().as_secs_f64();
    let clock = sim.world().resource::<citytwin_engine::clock::SimClock>();
    (wall, clock.duration_s())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it once, quickly, as a check.
    if !std::env::args().any(|a| a == "--bench") {
        println!("coupled_city: run with `cargo bench --workspace --bench coupled_city`");
        return;
    }
    let runs: usize = std::env::var("CITYTWIN_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("coupled sample scene (sample_rainstorm), {runs} run(s) each, {threads} cores");
    let (mut on, mut exhaust, mut off) = (Vec::new(), Vec::new(), Vec::new());
    let mut simulated = 0.0;
    for _ in 0..runs {
        let (w, d) = time_run(Couplings::All);
        on.push(w);
        simulated = d;
        exhaust.push(time_run(Couplings::ExhaustOnly).0);
        off.push(time_run(Couplings::None).0);
    }
    let (on, exhaust, off) = (median(on), median(exhaust), median(off));
    let line = |what: &str, w: f64| {
        println!(
            "  {what:<28} {w:7.2} s wall for {simulated:.0} s simulated = {:6.0}x real time",
            simulated / w
        )
    };
    line("all couplings", on);
    line("traffic exhaust -> air only", exhaust);
    line("no couplings", off);
    println!(
        "  goal >= 50x real time: {}; exhaust -> air costs {:+.1} %, water/zone -> roads and evacuation {:+.1} %",
        if simulated / on >= 50.0 {
            "met"
        } else {
            "NOT met"
        },
        100.0 * (exhaust / off - 1.0),
        100.0 * (on / exhaust - 1.0)
    );
}
