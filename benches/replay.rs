//! Jumping around a recorded hour of the coupled city (`scenes/sample_rainstorm.toml`: storm,
//! sewer, traffic, leak and air, every coupling on), recorded with the scene's default
//! checkpoints. Prints, in one process:
//!
//! - the recording: wall time with checkpoints and without, the images' sizes and the cost of
//!   one save;
//! - a **cold jump** to each of a spread of moments, as `citytwin replay RUN --at T` or
//!   `citytwin render RUN --at T` make it: build the world from the stored scene, restore the
//!   checkpoint before, step to the moment (goal < 1 s);
//! - a **warm jump**, as a view moving its time slider: restore into the world already built,
//!   step to the moment;
//! - both against making the moment from the start, the way without checkpoints.
//!
//! `cargo bench --workspace --bench replay`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use citytwin_engine::replay;
use citytwin_engine::store::RunStore;

fn record(scene: &std::path::Path, store: &std::path::Path) -> (i64, f64) {
    let t0 = Instant::now();
    let out = common::record(scene, store);
    (out.run_id, t0.elapsed().as_secs_f64())
}

fn stats(v: &[f64]) -> String {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let max = v.iter().copied().fold(0.0, f64::max);
    format!("mean {mean:.3} s, max {max:.3} s")
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("replay: run with `cargo bench --workspace --bench replay`");
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary folder");
    let with = common::scene_copy_of(dir.path(), "sample_rainstorm", |t| t);
    let store_path = dir.path().join("runs.duckdb");
    let (run, wall_with) = record(&with, &store_path);
    let dir0 = tempfile::tempdir().expect("a temporary folder");
    let without = common::scene_copy_of(dir0.path(), "sample_rainstorm", |t| {
        t.replace("[output]\n", "[output]\ncheckpoint_interval_s = 0.0\n")
    });
    let (_, wall_without) = record(&without, &dir0.path().join("runs.duckdb"));

    let store = RunStore::open(&store_path).expect("the store opens");
    let cps = store.checkpoints(run).expect("checkpoints");
    let meta = store.run_meta(run).expect("the run");
    let sizes: Vec<f64> = cps.iter().map(|c| c.bytes as f64 / 1024.0).collect();
    println!(
        "recording the hour: {wall_with:.2} s with {} checkpoints ({} s apart), {wall_without:.2} s without: checkpoints cost {:.1} %",
        cps.len(),
        cps.first().map_or(0.0, |c| c.sim_time_s),
        100.0 * (wall_with / wall_without - 1.0)
    );
    println!(
        "images: mean {:.0} KiB, max {:.0} KiB, {:.1} MiB for the hour",
        sizes.iter().sum::<f64>() / sizes.len() as f64,
        sizes.iter().copied().fold(0.0, f64::max),
        sizes.iter().sum::<f64>() / 1024.0
    );

    let registry = citytwin::registry();
    // Moments spread over the hour, none on a checkpoint: the worst cases step up to one
    // interval.
    let moments_s = [299.0, 777.0, 1234.0, 1799.0, 2345.0, 2999.0, 3333.0, 3599.0];
    let ticks: Vec<u64> = moments_s
        .iter()
        .map(|t| (t / meta.step_s).round() as u64)
        .collect();

    let mut cold = Vec::new();
    for &tick in &ticks {
        let t0 = Instant::now();
        let sim =
            replay::sim_at(&store, &registry, run, tick, true, &mut |_, _| {}).expect("a jump");
        cold.push(t0.elapsed().as_secs_f64());
        assert_eq!(sim.clock().tick(), tick);
    }

    let mut sim = replay::sim_at(&store, &registry, run, 0, true, &mut |_, _| {}).expect("built");
    let mut warm = Vec::new();
    let mut save = Vec::new();
    for &tick in &ticks {
        let t0 = Instant::now();
        if let Some((_, image)) = store.checkpoint_before(run, tick).expect("the store") {
            sim.restore(&image).expect("a restore");
        }
        while sim.clock().tick() < tick {
            sim.step();
        }
        warm.push(t0.elapsed().as_secs_f64());
        let t1 = Instant::now();
        let image = sim.checkpoint().expect("a save");
        save.push(t1.elapsed().as_secs_f64());
        std::hint::black_box(image);
    }

    let t0 = Instant::now();
    let mut straight =
        replay::sim_at(&store, &registry, run, 0, true, &mut |_, _| {}).expect("built");
    while straight.clock().tick() < ticks[ticks.len() / 2] {
        straight.step();
    }
    let from_start = t0.elapsed().as_secs_f64();

    println!(
        "cold jump (build, restore, step): {} (goal < 1 s)",
        stats(&cold)
    );
    println!("warm jump (restore, step):        {}", stats(&warm));
    println!("one checkpoint save:              {}", stats(&save));
    println!(
        "from the start to {:.0} s instead: {from_start:.3} s ({:.1}× the mean cold jump)",
        moments_s[ticks.len() / 2],
        from_start / (cold.iter().sum::<f64>() / cold.len() as f64)
    );
}
