//! Replaying recorded runs: a run made again from its stored scene and seed, started from the
//! checkpoint nearest the moment asked for; a check that a replay gives the recorded state at
//! every checkpoint; and forks, new runs that start from a moment of a recorded one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::checkpoint::CheckpointError;
use crate::modules::ModuleRegistry;
use crate::runner::{ForkStart, RunError, RunOutcome, RunRequest, run_scene};
use crate::scene::{Scene, SceneError};
use crate::sim::{Sim, SimError, SimOptions};
use crate::store::{CheckpointRow, RunMeta, RunStore, StoreError};

/// Why a replay or a fork could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The run's scene no longer loads (its data moved, or this version reads it differently).
    #[error("run {run}'s scene (data paths relative to {scene_path}, as when it ran): {source}")]
    Scene {
        /// The run.
        run: i64,
        /// Its scene path.
        scene_path: String,
        /// What is wrong.
        source: SceneError,
    },
    /// Building the world.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// A checkpoint could not be read into the world.
    #[error("run {run}, checkpoint at tick {tick}: {source}")]
    Checkpoint {
        /// The run.
        run: i64,
        /// The checkpoint's tick.
        tick: u64,
        /// What is wrong.
        source: CheckpointError,
    },
    /// The moment asked for is outside the run.
    #[error("run {run}: {message}")]
    Moment {
        /// The run.
        run: i64,
        /// What is wrong.
        message: String,
    },
    /// The fork's own run.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The fork's scene (the parent's with the added scenarios) does not build.
    #[error(
        "fork of run {run}: the parent's scene with {added} appended (from its line {line}): {source}"
    )]
    Fork {
        /// The parent run.
        run: i64,
        /// Where the added scenarios came from.
        added: String,
        /// The first line of the added text in the fork's scene.
        line: usize,
        /// What went wrong.
        source: Box<RunError>,
    },
}

/// A recorded run's scene (its stored text, read as if from its stored path) and metadata.
pub fn scene_of_run(store: &RunStore, run: i64) -> Result<(Scene, RunMeta), ReplayError> {
    let meta = store.run_meta(run)?;
    let scene = Scene::from_str(Path::new(&meta.scene_path), meta.scene_toml.clone()).map_err(
        |source| ReplayError::Scene {
            run,
            scene_path: meta.scene_path.clone(),
            source,
        },
    )?;
    Ok((scene, meta))
}

/// Run `run`'s world made again: its scene and seed, and the live messages it took in.
fn build(
    store: &RunStore,
    run: i64,
    scene: &Scene,
    meta: &RunMeta,
    registry: &ModuleRegistry,
) -> Result<Sim, ReplayError> {
    let mut sim = Sim::build(
        scene,
        registry,
        SimOptions {
            seed: Some(meta.seed),
            strict_schedule: false,
        },
    )?;
    if let Some(mut live) = sim.live_feeds() {
        live.replay(store.recorded_messages(run)?);
    }
    Ok(sim)
}

fn observed(run: i64) -> ReplayError {
    ReplayError::Moment {
        run,
        message: "an observed run (imported by `citytwin incident`) holds records, not a model state: replay a simulated run, and compare the two".into(),
    }
}

/// The tick of moment `at_s` (s after the start) of a run, checked against its recorded span.
pub fn tick_of(store: &RunStore, run: i64, at_s: f64) -> Result<u64, ReplayError> {
    let meta = store.run_meta(run)?;
    let summary = store.run(run)?;
    let bad = |message: String| ReplayError::Moment { run, message };
    if summary.status == "observed" {
        return Err(observed(run));
    }
    if !(at_s.is_finite() && at_s >= 0.0) {
        return Err(bad(format!(
            "{at_s} s: give 0 or more seconds after the start"
        )));
    }
    let tick = (at_s / meta.step_s).round() as u64;
    // A killed run's progress is written every few ticks; its last checkpoint may be later.
    let last_checkpoint = store.checkpoints(run)?.last().map_or(0, |c| c.tick);
    let recorded = (summary.ticks.max(0) as u64).max(last_checkpoint);
    let end = (meta.duration_s / meta.step_s).ceil() as u64;
    if tick > end {
        return Err(bad(format!(
            "{at_s} s is past the scene's end ({} s)",
            meta.duration_s
        )));
    }
    if summary.status != "completed" && tick > recorded {
        return Err(bad(format!(
            "{at_s} s: the run ({}) was recorded to {} s only",
            summary.status,
            recorded as f64 * meta.step_s
        )));
    }
    Ok(tick)
}

/// Run `run` of `store` made again and brought to `tick`: built from its scene and seed, set
/// to the last checkpoint before `tick` (or at `tick` itself when `exact_checkpoint`), then
/// stepped. A fork before its fork tick is its parent. `on_step(done, total)` follows the
/// stepping.
pub fn sim_at(
    store: &RunStore,
    registry: &ModuleRegistry,
    run: i64,
    tick: u64,
    exact_checkpoint: bool,
    on_step: &mut dyn FnMut(u64, u64),
) -> Result<Sim, ReplayError> {
    let fork_tick = match store.parent(run)? {
        Some((parent, t)) if tick < t => {
            return sim_at(store, registry, parent, tick, exact_checkpoint, on_step);
        }
        Some((_, t)) => Some(t),
        None => None,
    };
    let (scene, meta) = scene_of_run(store, run)?;
    let mut sim = build(store, run, &scene, &meta, registry)?;
    // A fork starts from its own checkpoint at the fork tick: the ones before are its parent's.
    let floor = fork_tick.unwrap_or(0);
    let before = if exact_checkpoint || fork_tick == Some(tick) {
        Some(tick)
    } else {
        tick.checked_sub(1)
    };
    if let Some(b) = before
        && let Some((row, image)) = store.checkpoint_before(run, b)?
        && row.tick >= floor
    {
        sim.restore(&image)
            .map_err(|source| ReplayError::Checkpoint {
                run,
                tick: row.tick,
                source,
            })?;
    } else if fork_tick.is_some() {
        return Err(ReplayError::Moment {
            run,
            message: format!("this fork has no checkpoint at its fork tick {floor}"),
        });
    }
    let from = sim.clock().tick();
    let total = tick.saturating_sub(from);
    while sim.clock().tick() < tick && !sim.finished() {
        sim.step();
        on_step(sim.clock().tick() - from, total);
    }
    Ok(sim)
}

/// A run's world at its own start: built (tick 0), or for a fork, built and set to the fork
/// tick's checkpoint.
fn start_world(
    store: &RunStore,
    registry: &ModuleRegistry,
    run: i64,
) -> Result<(Sim, u64), ReplayError> {
    let start = store.parent(run)?.map_or(0, |(_, t)| t);
    let sim = sim_at(store, registry, run, start, true, &mut |_, _| {})?;
    Ok((sim, start))
}

/// One checkpoint, checked.
#[derive(Clone, Debug)]
pub struct CheckpointCheck {
    /// The checkpoint as stored.
    pub stored: CheckpointRow,
    /// The state hash a replay from the start had at its tick.
    pub replayed_hash: String,
    /// The hash after restoring the previous checkpoint (or building, for the first) and
    /// stepping to this one: whether the previous image held all the state.
    pub resumed_hash: String,
    /// Where the resumed state differs from the stored image, when its hash does (see
    /// [`crate::checkpoint::differing_parts`]).
    pub differs_in: Vec<String>,
}

impl CheckpointCheck {
    /// Whether both ways gave the stored hash.
    pub fn ok(&self) -> bool {
        self.replayed_hash == self.stored.state_hash && self.resumed_hash == self.stored.state_hash
    }
}

/// What [`verify`] found.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    /// Every checkpoint, in order.
    pub checkpoints: Vec<CheckpointCheck>,
    /// For a completed run: the final hash stored and the one the replay ended with.
    pub final_hash: Option<(String, String)>,
    /// The version that recorded the run (a replay by another one may differ).
    pub recorded_by: String,
}

impl VerifyReport {
    /// Whether every hash matched.
    pub fn ok(&self) -> bool {
        self.checkpoints.iter().all(CheckpointCheck::ok)
            && self.final_hash.as_ref().is_none_or(|(a, b)| a == b)
    }
}

/// Replay run `run` from its start and compare the state hash at every stored checkpoint (and
/// at the end, if it completed); then restore each checkpoint into a freshly built world and
/// step to the next one, comparing again, which shows each image holds the whole state. A run
/// that was killed is checked up to its last checkpoint. `on_step(done, total)` follows the
/// ticks stepped.
pub fn verify(
    store: &RunStore,
    registry: &ModuleRegistry,
    run: i64,
    on_step: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, ReplayError> {
    let meta = store.run_meta(run)?;
    let summary = store.run(run)?;
    if summary.status == "observed" {
        return Err(observed(run));
    }
    let (mut sim, start) = start_world(store, registry, run)?;
    let rows: Vec<CheckpointRow> = store
        .checkpoints(run)?
        .into_iter()
        .filter(|r| r.tick >= start)
        .collect();
    let completed = summary.status == "completed";
    let last_tick = if completed {
        summary.ticks.max(0) as u64
    } else {
        rows.last().map_or(0, |r| r.tick)
    };
    let segments: u64 = {
        let mut prev = start;
        rows.iter()
            .map(|r| {
                let d = r.tick - prev;
                prev = r.tick;
                d
            })
            .sum()
    };
    let total = last_tick.saturating_sub(start) + segments;
    let mut done = 0u64;

    // From the start, through every checkpoint.
    let mut replayed = Vec::with_capacity(rows.len());
    for r in &rows {
        while sim.clock().tick() < r.tick && !sim.finished() {
            sim.step();
            done += 1;
            on_step(done, total);
        }
        replayed.push(sim.state_hash().to_hex().to_string());
    }
    while completed && sim.clock().tick() < last_tick && !sim.finished() {
        sim.step();
        done += 1;
        on_step(done, total);
    }
    let final_hash = if completed {
        summary
            .state_hash
            .clone()
            .map(|h| (h, sim.state_hash().to_hex().to_string()))
    } else {
        None
    };
    drop(sim);

    // Each checkpoint from the one before it.
    let mut checks = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let (mut sim, _) = start_world(store, registry, run)?;
        if i > 0 {
            let prev = &rows[i - 1];
            let (_, image) =
                store
                    .checkpoint_before(run, prev.tick)?
                    .ok_or_else(|| ReplayError::Moment {
                        run,
                        message: format!("checkpoint at tick {} vanished", prev.tick),
                    })?;
            sim.restore(&image)
                .map_err(|source| ReplayError::Checkpoint {
                    run,
                    tick: prev.tick,
                    source,
                })?;
        }
        while sim.clock().tick() < r.tick && !sim.finished() {
            sim.step();
            done += 1;
            on_step(done, total);
        }
        let resumed_hash = sim.state_hash().to_hex().to_string();
        let mut differs_in = Vec::new();
        if resumed_hash != r.state_hash
            && let Some((_, stored)) = store.checkpoint_before(run, r.tick)?
            && let Ok(mine) = sim.checkpoint()
        {
            differs_in = crate::checkpoint::differing_parts(&stored, &mine).unwrap_or_default();
        }
        checks.push(CheckpointCheck {
            stored: r.clone(),
            replayed_hash: replayed[i].clone(),
            resumed_hash,
            differs_in,
        });
    }
    Ok(VerifyReport {
        checkpoints: checks,
        final_hash,
        recorded_by: meta.version,
    })
}

/// What a fork changes: scenario plugins added from the fork moment on.
pub struct ForkRequest<'a> {
    /// The store holding the parent (the fork is recorded there too).
    pub store_path: PathBuf,
    /// The parent run.
    pub parent: i64,
    /// The fork moment, s after the start.
    pub at_s: f64,
    /// TOML with `[[scenario]]` tables, appended to the parent's scene (`None`: the same
    /// scene, e.g. to run on from a killed run).
    pub add_scenarios: Option<&'a str>,
    /// Where the added text came from, for error messages.
    pub add_source: &'a str,
    /// Simulations and plugins available.
    pub registry: &'a ModuleRegistry,
    /// Set to stop the fork early (Ctrl-C).
    pub stop: Arc<AtomicBool>,
}

/// Fork a recorded run: bring the parent to the fork moment (from its nearest checkpoint),
/// then start a new run from exactly that state with the scenarios added, recorded with a link
/// to its parent and the parent's history before the fork copied in, so the two compare over
/// the whole span. `on_progress(tick, end)` follows the fork's own run.
pub fn fork(
    req: ForkRequest<'_>,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<RunOutcome, ReplayError> {
    let run = req.parent;
    let store = RunStore::open(&req.store_path)?;
    let (tick, image, scene, first_added_line) = {
        let tick = tick_of(&store, run, req.at_s)?;
        let mut sim = sim_at(&store, req.registry, run, tick, true, &mut |_, _| {})?;
        let image =
            sim.checkpoint()
                .map_err(|source| ReplayError::Checkpoint { run, tick, source })?;
        let meta = store.run_meta(run)?;
        let (text, first_added_line) = match req.add_scenarios {
            Some(add) => crate::scene::append_scenarios(
                &meta.scene_toml,
                add,
                &format!(
                    "added by citytwin fork of run {run} at {} s from {}",
                    req.at_s, req.add_source
                ),
            ),
            None => (meta.scene_toml.clone(), 0),
        };
        let scene = Scene::from_str(Path::new(&meta.scene_path), text).map_err(|source| {
            ReplayError::Scene {
                run,
                scene_path: meta.scene_path.clone(),
                source,
            }
        })?;
        (tick, image, (scene, meta.seed), first_added_line)
    };
    let (scene, seed) = scene;
    let added = req.add_source.to_string();
    let has_added = req.add_scenarios.is_some();
    run_scene(
        RunRequest {
            scene: &scene,
            registry: req.registry,
            opts: SimOptions {
                seed: Some(seed),
                strict_schedule: false,
            },
            store,
            stop: req.stop,
            fork: Some(ForkStart {
                parent: run,
                tick,
                image,
            }),
            pace: None,
            on_start: None,
        },
        on_progress,
    )
    .map_err(|e| match e {
        RunError::Sim(_) if has_added => ReplayError::Fork {
            run,
            added,
            line: first_added_line,
            source: Box::new(e),
        },
        e => ReplayError::Run(e),
    })
}
