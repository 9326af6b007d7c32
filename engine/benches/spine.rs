//! Costs of the spine, each as a fraction of a bare step's time, measured in one process:
//!
//! - **index**: 100 000 vehicles move every step; the spatial index (R-tree + H3) follows them.
//!   Compared with the same step where the same motion is written to a component the index does
//!   not watch. Also the two update strategies on their own (incremental vs bulk reload).
//! - **recording**: 10 000 vehicles move and are snapshotted into a DuckDB store every step.
//!   Compared with the same step without a recorder. Goal: < 15 % overhead.
//!
//! `cargo bench -p citytwin-engine --bench spine` prints criterion's figures, then a summary of
//! the ratios.

use std::time::Instant;

use bevy::math::DVec2;
use bevy::prelude::*;
use citytwin_engine::clock::SimClock;
use citytwin_engine::geo_frame::{GeoFrame, LonLat};
use citytwin_engine::index::{SpatialIndex, SyncStrategy};
use citytwin_engine::model::*;
use citytwin_engine::recorder::{RecordConfig, start_recording};
use citytwin_engine::rng::{Rng, SimRng};
use citytwin_engine::schedule::{SimSet, SimStep};
use citytwin_engine::sim::EnginePlugin;
use citytwin_engine::store::{RunMeta, RunStatus, RunStore};
use criterion::{Criterion, criterion_group};
use h3o::Resolution;

/// A vehicle's velocity, for the stand-in physics.
#[derive(Component)]
struct Velocity(DVec2);

/// Where the bare variant writes its motion: a component the index does not watch.
#[derive(Component)]
struct ShadowPos(DVec2);

fn frame() -> GeoFrame {
    GeoFrame::new(LonLat::new(117.2272, 31.8206))
}

/// Stand-in physics: move each vehicle along its velocity, bouncing inside a 6 km square.
fn drive(mut q: Query<(&mut Position, &mut Velocity)>, clock: Res<SimClock>) {
    let dt = clock.step_s();
    for (mut p, mut v) in &mut q {
        p.xy_m += v.0 * dt;
        if p.xy_m.x.abs() > 3000.0 {
            v.0.x = -v.0.x;
        }
        if p.xy_m.y.abs() > 3000.0 {
            v.0.y = -v.0.y;
        }
    }
}

/// The same motion, written where the index does not look.
fn drive_shadow(mut q: Query<(&mut ShadowPos, &mut Velocity)>, clock: Res<SimClock>) {
    let dt = clock.step_s();
    for (mut p, mut v) in &mut q {
        p.0 += v.0 * dt;
        if p.0.x.abs() > 3000.0 {
            v.0.x = -v.0.x;
        }
        if p.0.y.abs() > 3000.0 {
            v.0.y = -v.0.y;
        }
    }
}

fn world(n: usize, indexed: bool, snapshot_every_step: bool) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins);
    app.add_plugins(EnginePlugin {
        frame: frame(),
        clock: SimClock::new(
            "2026-07-15T08:00:00+08:00[Asia/Shanghai]".parse().unwrap(),
            1.0,
            1e9,
        ),
        seed: 1,
        h3_resolution: Resolution::Eleven,
        record: RecordConfig {
            snapshot_interval_s: if snapshot_every_step { 1.0 } else { 0.0 },
            kpi_interval_s: 60.0,
            checkpoint_interval_s: 0.0,
        },
        strict_schedule: false,
    });
    let mut rng = SimRng::new(3).stream("bench");
    let mut u = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    for _ in 0..n {
        let p = DVec2::new(u() * 6000.0 - 3000.0, u() * 6000.0 - 3000.0);
        let v = DVec2::new(u() * 28.0 - 14.0, u() * 28.0 - 14.0);
        let vehicle = Vehicle {
            kind: VehicleKind::Car,
            length_m: 4.5,
            max_speed_mps: 14.0,
            speed_mps: v.length(),
            accel_mps2: 0.0,
            road: None,
            heading_rad: 0.0,
        };
        if indexed {
            app.world_mut().spawn((
                Kind(EntityKind::Vehicle),
                Position { xy_m: p, z_m: 0.0 },
                Velocity(v),
                vehicle,
            ));
        } else {
            app.world_mut().spawn((
                Kind(EntityKind::Vehicle),
                ShadowPos(p),
                Velocity(v),
                vehicle,
            ));
        }
    }
    if indexed {
        app.add_systems(SimStep, drive.in_set(SimSet::Physics));
    } else {
        app.add_systems(SimStep, drive_shadow.in_set(SimSet::Physics));
    }
    app.finish();
    app.cleanup();
    app.world_mut().run_schedule(SimStep);
    app
}

fn recording(app: &mut App, dir: &std::path::Path) -> citytwin_engine::recorder::RecordingHandle {
    let store = RunStore::open(dir.join("bench.duckdb")).unwrap();
    let id = store
        .begin_run(&RunMeta {
            scene_name: "bench".into(),
            scene_path: "-".into(),
            scene_toml: String::new(),
            seed: 1,
            version: citytwin_engine::VERSION.into(),
            sim_start: "2026-07-15T08:00:00+08:00[Asia/Shanghai]".into(),
            step_s: 1.0,
            duration_s: 1e9,
            frame_proj: String::new(),
        })
        .unwrap();
    let (rec, handle) = start_recording(store, id).unwrap();
    app.world_mut().insert_resource(rec);
    handle
}

/// Median wall time of one step over `n` steps, seconds.
fn median_step(app: &mut App, n: usize) -> f64 {
    let mut t: Vec<f64> = (0..n)
        .map(|_| {
            let s = Instant::now();
            app.world_mut().run_schedule(SimStep);
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[n / 2]
}

fn index_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("index_100k_moving");
    g.sample_size(10);
    let mut bare = world(100_000, false, false);
    g.bench_function("bare_step", |b| {
        b.iter(|| bare.world_mut().run_schedule(SimStep))
    });
    let mut full = world(100_000, true, false);
    g.bench_function("step_with_index", |b| {
        b.iter(|| full.world_mut().run_schedule(SimStep))
    });
    for (name, strategy) in [
        ("sync_incremental", SyncStrategy::Incremental),
        ("sync_bulk_reload", SyncStrategy::Reload),
    ] {
        let mut index = SpatialIndex::new(frame(), Resolution::Eleven);
        let ents: Vec<Entity> = (0..100_000u32)
            .map(|i| Entity::from_raw_u32(i + 1).unwrap())
            .collect();
        let mut rng = SimRng::new(5).stream("sync");
        let mut pos: Vec<DVec2> = ents
            .iter()
            .map(|_| {
                DVec2::new(
                    (rng.next_u32() % 6000) as f64 - 3000.0,
                    (rng.next_u32() % 6000) as f64 - 3000.0,
                )
            })
            .collect();
        index.apply(
            &[],
            ents.iter()
                .zip(&pos)
                .map(|(e, p)| (*e, Some(Position { xy_m: *p, z_m: 0.0 }), None))
                .collect(),
            SyncStrategy::Reload,
        );
        g.bench_function(name, |b| {
            b.iter(|| {
                for p in pos.iter_mut() {
                    *p += DVec2::new(10.0, -7.0);
                }
                let ups = ents
                    .iter()
                    .zip(&pos)
                    .map(|(e, p)| (*e, Some(Position { xy_m: *p, z_m: 0.0 }), None))
                    .collect();
                index.apply(&[], ups, strategy);
            })
        });
    }
    g.finish();
}

fn recording_benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("recording_10k_every_step");
    g.sample_size(20);
    let mut plain = world(10_000, true, true);
    g.bench_function("step_without_recorder", |b| {
        b.iter(|| plain.world_mut().run_schedule(SimStep))
    });
    let mut rec = world(10_000, true, true);
    let handle = recording(&mut rec, dir.path());
    g.bench_function("step_recording", |b| {
        b.iter(|| rec.world_mut().run_schedule(SimStep))
    });
    g.finish();
    drop(rec);
    handle.finish(RunStatus::Completed, 0, None, None).unwrap();
}

fn summary() {
    let dir = tempfile::tempdir().unwrap();
    println!("\n== spine summary (medians of one process, same machine) ==");
    let mut bare = world(100_000, false, false);
    let mut full = world(100_000, true, false);
    let (tb, tf) = (median_step(&mut bare, 15), median_step(&mut full, 15));
    println!(
        "100k moving: bare step {:.2} ms, with index {:.2} ms: index sync = {:.0} % of a bare step",
        tb * 1e3,
        tf * 1e3,
        (tf - tb) / tb * 100.0
    );
    let mut plain = world(10_000, true, true);
    let mut rec = world(10_000, true, true);
    let handle = recording(&mut rec, dir.path());
    // Sustained: 150 consecutive steps each, so a writer slower than the simulation shows up as
    // back-pressure in the step time instead of hiding in its channel.
    let mean = |app: &mut App, n: usize| {
        let s = Instant::now();
        for _ in 0..n {
            app.world_mut().run_schedule(SimStep);
        }
        s.elapsed().as_secs_f64() / n as f64
    };
    mean(&mut plain, 10);
    mean(&mut rec, 10);
    let tp = mean(&mut plain, 150);
    let tr = mean(&mut rec, 150);
    let written = Instant::now();
    drop(rec);
    let store = handle.finish(RunStatus::Completed, 0, None, None).unwrap();
    let drain_s = written.elapsed().as_secs_f64();
    let rows = store
        .query_f64("SELECT count(*)::DOUBLE FROM snapshots")
        .unwrap()
        .unwrap_or(0.0);
    println!(
        "10k snapshotted every step, 150 steps in a row: {:.2} ms/step without, {:.2} ms/step with recorder: recording = {:.1} % of a step (goal < 15 %); {rows:.0} rows written, writer drained {:.2} s after the last step",
        tp * 1e3,
        tr * 1e3,
        (tr - tp) / tp * 100.0,
        drain_s
    );
}

criterion_group!(benches, index_benches, recording_benches);

fn main() {
    benches();
    summary();
    Criterion::default().configure_from_args().final_summary();
}
