//! The 3D view's speed, headless (`cargo bench --workspace --bench render`): seconds per
//! rendered frame of the coupled sample scene (goal < 2 s on this machine's CPU, Mesa's
//! software Vulkan), and of a synthetic city of 100 000 buildings and 10 000 vehicles (goal
//! ≥ 60 frames/s on a GPU). A frame here is what `citytwin render --frames N` pays for each
//! image: the simulation stepped to the moment, the view brought up to date, a few frames to
//! settle and the image read back; the start-up (the renderer, shaders, the static meshes) is
//! reported apart, from a one-frame run.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use citytwin_engine::model::*;
use citytwin_engine::render::{CameraSpec, RenderRequest, render_frames};
use citytwin_engine::sim::Sim;

fn sample() -> (Sim, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = common::scene_copy_of(dir.path(), "sample_rainstorm", |t| t);
    (common::build_sim(&path), dir)
}

/// A scene with nothing in it, then `n_b` box buildings on a grid and `n_v` vehicles.
fn synthetic(n_b: usize, n_v: usize) -> (Sim, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("scene.toml");
    std::fs::write(
        &path,
        "[scene]\nname = \"synthetic\"\nseed = 1\norigin = { lon = 117.2272, lat = 31.8206 }\n\
         [clock]\nstart = \"2026-07-15T07:30:00+08:00[Asia/Shanghai]\"\nstep_s = 1.0\nduration_s = 600.0\n\
         [output]\nstore = \"runs.duckdb\"\n",
    )
    .expect("write the scene");
    let mut sim = common::build_sim(&path);
    let side = (n_b as f64).sqrt().ceil() as usize;
    let world = sim.world_mut();
    for k in 0..n_b {
        let (i, j) = ((k % side) as f64, (k / side) as f64);
        let (x, y) = (i * 40.0, j * 40.0);
        let poly = geo::Polygon::new(
            geo::LineString::from(vec![
                (x, y),
                (x + 25.0, y),
                (x + 25.0, y + 25.0),
                (x, y + 25.0),
                (x, y),
            ]),
            vec![],
        );
        world.spawn((
            Building {
                height_m: 10.0 + (k % 7) as f64 * 6.0,
                use_: BuildingUse::Residential,
                occupants: 50,
                ground_m: 0.0,
            },
            Shape::new(geo::Geometry::Polygon(poly)),
            Kind(EntityKind::Building),
        ));
    }
    for k in 0..n_v {
        let (i, j) = ((k % side) as f64, (k / side) as f64);
        world.spawn((
            Vehicle {
                kind: VehicleKind::Car,
                length_m: 4.5,
                max_speed_mps: 14.0,
                speed_mps: (k % 15) as f64,
                accel_mps2: 0.0,
                road: None,
                heading_rad: 0.0,
            },
            Position::new(i * 40.0 + 32.0, j * 40.0 + 5.0),
            Kind(EntityKind::Vehicle),
        ));
    }
    (sim, dir)
}

/// Wall seconds for a one-frame and an `n`-frame render: (start-up, per extra frame).
fn time(
    make: impl Fn() -> (Sim, tempfile::TempDir),
    at_s: f64,
    n: usize,
    camera: CameraSpec,
) -> (f64, f64) {
    let run = |frames: usize| {
        let (sim, _dir) = make();
        let req = RenderRequest {
            at_s,
            frames,
            every_s: 10.0,
            camera,
            size: (1280, 720),
            ..Default::default()
        };
        let t0 = Instant::now();
        let out = render_frames(sim, "bench", &req).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.len(), frames);
        t0.elapsed().as_secs_f64()
    };
    let one = run(1);
    let many = run(n);
    (one, (many - one) / (n - 1) as f64)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("render: run with `cargo bench --workspace --bench render`");
        return;
    }
    println!(
        "headless rendering at 1280x720 (this machine; software Vulkan where there is no GPU)"
    );
    // The sample: stepped to 35 minutes first in both runs, so the start-up figure holds the
    // simulation's own time too (about 3 s of it).
    let (start, per) = time(sample, 2100.0, 6, CameraSpec::Overview);
    println!(
        "  coupled sample scene:       start-up {start:6.2} s, then {per:5.2} s a frame (goal < 2 s)  {}",
        if per < 2.0 { "met" } else { "NOT met" }
    );
    let (start, per) = time(|| synthetic(100_000, 10_000), 0.0, 4, CameraSpec::Overview);
    println!(
        "  100 000 buildings, 10 000 vehicles: start-up {start:6.2} s, then {per:5.2} s a frame ({:.1} frames/s; goal >= 60 on a GPU)",
        1.0 / per
    );
}
