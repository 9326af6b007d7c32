//! Flood → traffic, the rule itself: a lake at rest is laid over the sample district at chosen
//! levels, so every road's depth is known exactly (the level less the lowest ground under its
//! centreline), and the commands the flood sends each step are checked against the documented
//! rule — Pregnolato et al. (2017)'s safe speed above `slow_depth_m`, closed above
//! `close_depth_m`, reopened only `reopen_margin_m` below it, the limit lifted when dry.

use std::collections::BTreeMap;

use bevy::ecs::message::Messages;
use bevy::math::DVec2;
use citytwin_engine::modules::ModuleRegistry;
use citytwin_engine::prelude::*;
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::{Sim, SimOptions};
use citytwin_flood::{FloodSim, FloodedRoads, safe_speed_mps};
use geo::CoordsIter;

fn scene(dir: &std::path::Path, coupling: &str) -> Sim {
    let data = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/sample")
        .canonicalize()
        .unwrap();
    let d = data.display();
    let text = format!(
        "[scene]\nname = \"roads\"\nseed = 1\norigin = {{ lon = 117.2272, lat = 31.8206 }}\n\n\
         [clock]\nstart = \"2026-07-15T07:30:00+08:00[Asia/Shanghai]\"\nstep_s = 1.0\nduration_s = 600.0\n\n\
         [dem]\nfile = \"{d}/dem.tif\"\n\n\
         [[layer]]\nname = \"intersections\"\nkind = \"intersections\"\nfile = \"{d}/intersections.geojson\"\n\n\
         [[layer]]\nname = \"roads\"\nkind = \"roads\"\nfile = \"{d}/roads.geojson\"\n\
         fields = {{ speed_limit_mps = {{ field = \"maxspeed\", unit = \"km/h\" }} }}\n\n\
         [simulations.flood]\nedges = \"closed\"\n\n[simulations.flood.traffic]\n{coupling}\n\n\
         [output]\nstore = \"runs.duckdb\"\n"
    );
    let path = dir.join("scene.toml");
    std::fs::write(&path, text).unwrap();
    let scene = Scene::load(&path).unwrap();
    let mut reg = ModuleRegistry::new();
    reg.add_simulation(citytwin_flood::FloodModule);
    Sim::build(
        &scene,
        &reg,
        SimOptions {
            seed: None,
            strict_schedule: true,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Each road of layer `roads`: its id, its own limit, and the grid cells under its centreline
/// (sampled every half cell, as a surveyor walking it would).
fn road_cells(sim: &mut Sim) -> Vec<(String, f64, Vec<usize>)> {
    let world = sim.world_mut();
    let mut q = world.query::<(&FeatureId, &Road, &Shape)>();
    let list: Vec<(String, f64, Vec<geo::Coord<f64>>)> = q
        .iter(world)
        .filter(|(f, _, _)| f.layer == "roads")
        .map(|(f, r, s)| (f.id.clone(), r.speed_limit_mps, s.0.coords_iter().collect()))
        .collect();
    let flood = world.resource::<FloodSim>();
    let half = 0.5 * flood.surface.dx_m as f64;
    let mut out = Vec::new();
    for (id, limit, pts) in list {
        let mut cells = Vec::new();
        for w in pts.windows(2) {
            let (a, b) = (w[0], w[1]);
            let n = (((b.x - a.x).hypot(b.y - a.y)) / half).ceil().max(1.0) as usize;
            for k in 0..=n {
                let t = k as f64 / n as f64;
                if let Some(c) =
                    flood.cell_at(DVec2::new(a.x + t * (b.x - a.x), a.y + t * (b.y - a.y)))
                {
                    cells.push(c);
                }
            }
        }
        cells.sort_unstable();
        cells.dedup();
        out.push((id, limit, cells));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Lay a still lake at `level_m` above datum over the whole grid.
fn lake(sim: &mut Sim, level_m: f32) {
    let mut flood = sim.world_mut().resource_mut::<FloodSim>();
    let s = &mut flood.surface;
    for c in 0..s.h_m.len() {
        s.h_m[c] = if s.blocked[c] {
            0.0
        } else {
            (level_m - s.z_m[c]).max(0.0)
        };
    }
    s.qx.iter_mut().for_each(|q| *q = 0.0);
    s.qy.iter_mut().for_each(|q| *q = 0.0);
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Sent {
    Close,
    Open,
    Speed(f64),
    Lift,
}

/// One step; the commands it sent, by road id (the last of each kind).
fn step(
    sim: &mut Sim,
    cursor: &mut bevy::ecs::message::MessageCursor<RoadCommand>,
) -> BTreeMap<String, Vec<Sent>> {
    sim.step();
    let messages = sim.world().resource::<Messages<RoadCommand>>();
    let mut out: BTreeMap<String, Vec<Sent>> = BTreeMap::new();
    for m in cursor.read(messages) {
        let (road, sent, by) = match m {
            RoadCommand::Close { road, by } => (road, Sent::Close, by),
            RoadCommand::Open { road, by } => (road, Sent::Open, by),
            RoadCommand::SetSpeed {
                road,
                speed_mps,
                by,
            } => (road, Sent::Speed(*speed_mps), by),
            RoadCommand::LiftSpeed { road, by } => (road, Sent::Lift, by),
            RoadCommand::SetSignalProgram { .. } => panic!("the flood sets no signals"),
        };
        assert_eq!(by, "flood");
        assert_eq!(road.layer, "roads");
        out.entry(road.id.clone()).or_default().push(sent);
    }
    out
}

#[test]
fn water_slows_then_closes_roads_and_they_reopen_as_it_goes_down() {
    let dir = tempfile::tempdir().unwrap();
    // Every change of limit sent (speed_step_mps = 0), so the expected commands are exact.
    let mut sim = scene(
        dir.path(),
        "layer = \"roads\"\nslow_depth_m = 0.01\nclose_depth_m = 0.3\nreopen_margin_m = 0.05\nspeed_step_mps = 0.0",
    );
    let roads = road_cells(&mut sim);
    assert!(roads.len() >= 20, "{} roads", roads.len());
    let mut cursor = sim.world().resource::<Messages<RoadCommand>>().get_cursor();
    // The lowest ground under each road, and the levels that put the lowest road 0.45 m, then
    // 0.28 m (inside the hysteresis band), 0.2 m, 0.05 m deep, then drain it all.
    let low: Vec<f32> = {
        let flood = sim.world().resource::<FloodSim>();
        roads
            .iter()
            .map(|(_, _, cells)| {
                cells
                    .iter()
                    .map(|&c| flood.surface.z_m[c])
                    .fold(f32::INFINITY, f32::min)
            })
            .collect()
    };
    let lowest = low.iter().copied().fold(f32::INFINITY, f32::min);
    let mut closed = vec![false; roads.len()];
    let mut capped: Vec<Option<f64>> = vec![None; roads.len()];
    let (mut n_closed, mut n_reopened, mut n_slowed, mut n_lifted) = (0, 0, 0, 0);
    for depth_of_lowest in [0.45f32, 0.45, 0.28, 0.2, 0.05, -1.0] {
        let level = lowest + depth_of_lowest;
        lake(&mut sim, level);
        // The step moves the water a little where the lake meets the edges of buildings-free
        // ground; depths are read back after the step, as the coupling reads them.
        let sent = step(&mut sim, &mut cursor);
        let flood = sim.world().resource::<FloodSim>();
        for (i, (id, limit, cells)) in roads.iter().enumerate() {
            let d = cells
                .iter()
                .map(|&c| flood.surface.h_m[c])
                .fold(0.0f32, f32::max) as f64;
            let mut expect = Vec::new();
            let close = if closed[i] { d > 0.25 } else { d > 0.3 };
            if close != closed[i] {
                expect.push(if close { Sent::Close } else { Sent::Open });
                closed[i] = close;
                if close {
                    n_closed += 1;
                } else {
                    n_reopened += 1;
                }
            }
            if !closed[i] {
                let cap = (d > 0.01).then(|| safe_speed_mps(d)).filter(|v| v < limit);
                match (cap, capped[i]) {
                    (Some(v), _) => {
                        expect.push(Sent::Speed(v));
                        n_slowed += 1;
                    }
                    (None, Some(_)) => {
                        expect.push(Sent::Lift);
                        n_lifted += 1;
                    }
                    (None, None) => {}
                }
                capped[i] = cap;
            }
            let got = sent.get(id).cloned().unwrap_or_default();
            assert_eq!(
                got.len(),
                expect.len(),
                "road {id}, {d:.3} m deep: sent {got:?}, expected {expect:?}"
            );
            for (g, e) in got.iter().zip(&expect) {
                match (g, e) {
                    (Sent::Speed(a), Sent::Speed(b)) => {
                        assert!((a - b).abs() < 1e-9, "road {id}: {a} m/s, expected {b}")
                    }
                    _ => assert_eq!(g, e, "road {id}, {d:.3} m deep"),
                }
            }
        }
        let state = sim.world().resource::<FloodedRoads>();
        assert_eq!(state.closed(), closed.iter().filter(|&&c| c).count());
    }
    eprintln!(
        "{n_closed} closures, {n_reopened} reopenings, {n_slowed} limits, {n_lifted} lifted over {} roads",
        roads.len()
    );
    // Every branch of the rule was exercised, and at the end nothing is held.
    assert!(n_closed >= 1 && n_reopened == n_closed && n_slowed >= 1 && n_lifted >= 1);
    let state = sim.world().resource::<FloodedRoads>();
    assert_eq!((state.closed(), state.slowed()), (0, 0));
    // Closed time was counted: each closure lasted at least the two deep steps.
    assert!(state.road_s_closed >= 2.0 * n_closed as f64);
}

#[test]
fn bad_thresholds_and_a_missing_layer_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/sample")
        .canonicalize()
        .unwrap();
    let build = |coupling: &str| {
        let text = format!(
            "[scene]\nname = \"roads\"\nseed = 1\norigin = {{ lon = 117.2272, lat = 31.8206 }}\n\n\
             [clock]\nstart = \"2026-07-15T07:30:00+08:00[Asia/Shanghai]\"\nstep_s = 1.0\nduration_s = 10.0\n\n\
             [dem]\nfile = \"{}/dem.tif\"\n\n[simulations.flood]\n\n[simulations.flood.traffic]\n{coupling}\n\n\
             [output]\nstore = \"runs.duckdb\"\n",
            data.display()
        );
        let path = dir.path().join("scene.toml");
        std::fs::write(&path, text).unwrap();
        let scene = Scene::load(&path).unwrap();
        let mut reg = ModuleRegistry::new();
        reg.add_simulation(citytwin_flood::FloodModule);
        Sim::build(&scene, &reg, SimOptions::default()).map_err(|e| e.to_string())
    };
    let e = build("close_depth_m = 0.005").err().unwrap();
    assert!(
        e.contains("close_depth_m") && e.contains("slow_depth_m"),
        "{e}"
    );
    let e = build("close_dept_m = 0.3").err().unwrap();
    assert!(e.contains("close_dept_m"), "{e}");
    // No roads in the layer: built, and the first step says so.
    let mut sim = build("layer = \"nowhere\"").unwrap();
    sim.step();
    let events = sim.world().resource::<EventLog>();
    assert!(
        events
            .last_tick()
            .iter()
            .any(|e| e.kind == "flood.coupling_warning" && e.message.contains("'nowhere'")),
        "{:?}",
        events.last_tick()
    );
}
