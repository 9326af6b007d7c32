//! Shared test fixtures.
#![allow(dead_code)]

use std::path::PathBuf;

use bevy::math::DVec2;
use bevy::prelude::*;
use citytwin_engine::prelude::*;
use citytwin_engine::rng::{Rng, SimRngStream};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The default scene.
pub fn sample_scene() -> PathBuf {
    repo().join("scenes/sample_district.toml")
}

/// A test simulation: `count` vehicles wander at random; drives determinism and index tests.
pub struct Walkers;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WalkerParams {
    count: usize,
    #[serde(default)]
    panic_at_tick: Option<u64>,
}

#[derive(Resource)]
struct WalkerRng(SimRngStream);

#[derive(Resource)]
struct PanicAt(Option<u64>);

fn unit(r: &mut SimRngStream) -> f64 {
    (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn walk(
    mut rng: ResMut<WalkerRng>,
    clock: Res<SimClock>,
    panic_at: Res<PanicAt>,
    mut q: Query<(Entity, &mut Position, &mut Vehicle)>,
) {
    if panic_at.0 == Some(clock.tick()) {
        panic!("walkers were told to fail at tick {}", clock.tick());
    }
    let dt = clock.step_s();
    let mut items: Vec<_> = q.iter_mut().collect();
    // Deterministic order: the query's iteration order is an implementation detail.
    items.sort_by_key(|(e, _, _)| *e);
    for (_, mut p, mut v) in items {
        let heading = unit(&mut rng.0) * std::f64::consts::TAU;
        v.speed_mps = unit(&mut rng.0) * v.max_speed_mps;
        p.xy_m += DVec2::new(heading.cos(), heading.sin()) * v.speed_mps * dt;
    }
}

/// Walkers per H3 cell, as a map in the store's `fields` table every 10 ticks.
fn walker_map(
    clock: Res<SimClock>,
    index: Res<SpatialIndex>,
    mut fields: ResMut<FieldLog>,
    q: Query<Entity, With<Vehicle>>,
) {
    if !clock.tick().is_multiple_of(10) {
        return;
    }
    let mut cells = std::collections::BTreeMap::<u64, f64>::new();
    for e in &q {
        if let Some(c) = index.cell_of(e) {
            *cells.entry(u64::from(c)).or_default() += 1.0;
        }
    }
    fields.push(FieldSample {
        name: "walkers.count".into(),
        unit: "1",
        cells: cells.into_iter().collect(),
    });
}

/// At tick 5 the walkers announce a milestone; a scenario-style system reacts to it the tick
/// after, through `EventLog::last_tick`.
fn announce(clock: Res<SimClock>, mut events: ResMut<EventLog>) {
    if clock.tick() == 5 {
        events.push(SimEvent {
            kind: "walkers.milestone".into(),
            entity: None,
            xy_m: None,
            message: "five steps walked".into(),
        });
    }
}

fn react(clock: Res<SimClock>, events: Res<EventLog>, mut kpis: ResMut<Kpis>) {
    if events
        .last_tick()
        .iter()
        .any(|e| e.kind == "walkers.milestone")
    {
        kpis.set("walkers.reacted_at_tick", "city", clock.tick() as f64, "1");
    }
}

fn walker_kpis(mut kpis: ResMut<Kpis>, q: Query<&Vehicle>) {
    let n = q.iter().count().max(1) as f64;
    kpis.set(
        "walkers.mean_speed",
        "city",
        q.iter().map(|v| v.speed_mps).sum::<f64>() / n,
        "m/s",
    );
}

impl SceneModule for Walkers {
    fn name(&self) -> &'static str {
        "walkers"
    }
    fn description(&self) -> &'static str {
        "random walkers for tests"
    }
    fn build(&self, params: &toml::Table, app: &mut App) -> Result<(), String> {
        let p: WalkerParams = parse_params(params)?;
        let mut rng = app.world().resource::<SimRng>().stream("walkers");
        for _ in 0..p.count {
            let x = unit(&mut rng) * 600.0 - 300.0;
            let y = unit(&mut rng) * 450.0 - 225.0;
            app.world_mut().spawn((
                Kind(EntityKind::Vehicle),
                Position::new(x, y),
                Vehicle {
                    kind: VehicleKind::Car,
                    length_m: 4.5,
                    max_speed_mps: 14.0,
                    speed_mps: 0.0,
                    accel_mps2: 0.0,
                    road: None,
                    heading_rad: 0.0,
                },
            ));
        }
        app.insert_resource(WalkerRng(rng))
            .insert_resource(PanicAt(p.panic_at_tick))
            .add_systems(SimStep, walk.in_set(SimSet::Physics))
            .add_systems(
                SimStep,
                (walker_kpis, walker_map, announce)
                    .chain()
                    .in_set(SimSet::Metrics),
            )
            .add_systems(SimStep, react.in_set(SimSet::Scenario));
        Ok(())
    }
}

/// A registry with the test simulation.
pub fn registry() -> ModuleRegistry {
    let mut r = ModuleRegistry::new();
    r.add_simulation(Walkers);
    r
}

/// Write `text` as a scene file inside the scenes folder of a temp copy-free location: the
/// scene sits in `dir`, and its data paths point at the real sample data.
pub fn scene_with(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The sample scene's text with its relative paths made absolute, so it can be written anywhere,
/// and without its `[simulations]` and `[[scenario]]`s: those crates build on the engine, so its
/// tests cannot load them (their own tests and the app's run the full scene).
pub fn sample_text_absolute() -> String {
    let data = repo().join("data").canonicalize().unwrap();
    let text = std::fs::read_to_string(sample_scene())
        .unwrap()
        .replace("\"../data/", &format!("\"{}/", data.display()));
    // Drop each `[simulations.…]` table up to the next table header, keeping the layout (the
    // scene-error tests point at lines).
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with('[') {
            let table = line.trim_start_matches('[');
            skipping = table.starts_with("simulations") || table.starts_with("scenario");
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The sample scene as the engine alone can load it (see [`sample_text_absolute`]), in `dir`.
pub fn sample_scene_engine_only(dir: &std::path::Path) -> PathBuf {
    scene_with(dir, "sample.toml", &sample_text_absolute())
}
