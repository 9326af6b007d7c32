//! Running a scene end to end into the run store: build, record, step to the end (or until
//! stopped), close the run with its status. Panics in systems and Ctrl-C still close the run,
//! so the store always says how a run ended.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::checkpoint::CheckpointError;
use crate::feeds::live::{LinkError, LinkStatus};
use crate::import::ImportReport;
use crate::modules::ModuleRegistry;
use crate::recorder::{Kpis, RecordConfig, Recorder, checkpoint_due, start_recording};
use crate::scene::Scene;
use crate::sim::{Sim, SimError, SimOptions};
use crate::store::{RunMeta, RunStatus, RunStore, StoreError};

/// Why a run could not start or be closed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scene or its data.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A fork's starting state could not be put into its world.
    #[error("the fork's starting state: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// A live feed's broker could not be subscribed to.
    #[error(transparent)]
    Feed(#[from] LinkError),
}

/// Where a fork starts: its parent run, and the world's state at the fork tick (a checkpoint
/// image, see [`crate::checkpoint`]).
pub struct ForkStart {
    /// The parent run.
    pub parent: i64,
    /// The fork tick.
    pub tick: u64,
    /// The state then.
    pub image: Vec<u8>,
}

/// What to run.
pub struct RunRequest<'a> {
    /// The scene.
    pub scene: &'a Scene,
    /// Simulations and scenario plugins available.
    pub registry: &'a ModuleRegistry,
    /// Overrides.
    pub opts: SimOptions,
    /// The store to record into (the caller opens it: the scene's by default, or another
    /// connection to a store already open in this process, see [`RunStore::try_clone`]).
    pub store: RunStore,
    /// Set to stop the run early (Ctrl-C); it is then closed as `interrupted`.
    pub stop: Arc<AtomicBool>,
    /// Start from a moment of another run instead of the scene's start (`citytwin fork`).
    pub fork: Option<ForkStart>,
    /// Keep pace with the wall clock: this many simulated seconds per wall second (1.0 is
    /// real time), so a live run's state is the present. `None`: as fast as the CPU allows.
    pub pace: Option<f64>,
    /// Called with the run's id as soon as it is registered in the store, before the first
    /// step (a server answering "which run is that?" while it runs).
    pub on_start: Option<Box<dyn FnOnce(i64) + 'a>>,
}

/// How a run went.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Its id in the store.
    pub run_id: i64,
    /// How it ended.
    pub status: RunStatus,
    /// Ticks completed.
    pub ticks: u64,
    /// Simulated seconds completed.
    pub sim_time_s: f64,
    /// Final state hash (hex), when the world survived to compute it.
    pub state_hash: Option<String>,
    /// Error text when failed.
    pub error: Option<String>,
    /// The store written.
    pub store_path: PathBuf,
    /// Rows handed to the store.
    pub rows: u64,
    /// Wall time of the stepping, s.
    pub wall_s: f64,
    /// Data import summary.
    pub import: ImportReport,
    /// The KPI values at the end.
    pub final_kpis: Vec<(String, String, f64, String)>,
    /// How the live feeds' links did (empty without live feeds).
    pub feed_links: Vec<LinkStatus>,
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a system panicked".to_string()
    }
}

/// Sleep until `sim_s` simulated seconds since `started` are due at `pace` simulated seconds
/// per wall second, waking every 100 ms to see `stop`.
fn keep_pace(started: Instant, sim_s: f64, pace: f64, stop: &AtomicBool) {
    if !(pace > 0.0 && pace.is_finite()) {
        return;
    }
    let due = std::time::Duration::from_secs_f64((sim_s / pace).max(0.0));
    loop {
        let now = started.elapsed();
        if now >= due || stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep((due - now).min(std::time::Duration::from_millis(100)));
    }
}

/// Run a scene into the store. `on_progress(tick, end_tick)` is called every few ticks.
pub fn run_scene(
    req: RunRequest<'_>,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<RunOutcome, RunError> {
    let scene = req.scene;
    let mut sim = Sim::build(scene, req.registry, req.opts)?;
    if let Some(f) = &req.fork {
        sim.restore(&f.image)?;
    }
    let store = req.store;
    // Live feeds: a new run subscribes now, before it is registered (a broker that cannot be
    // reached leaves no failed run behind); a fork takes in what its parent took in.
    if let Some(mut live) = sim.live_feeds() {
        match &req.fork {
            Some(f) => live.replay(store.recorded_messages(f.parent)?),
            None => live.connect()?,
        }
    }
    let store_path = store.path().to_path_buf();
    let meta = RunMeta::of_scene(
        scene,
        sim.seed,
        sim.clock().step_s(),
        sim.clock().duration_s(),
    );
    let run_id = match &req.fork {
        None => store.begin_run(&meta)?,
        Some(f) => {
            let id = store.begin_fork(f.parent, f.tick, &meta)?;
            // The fork's own first checkpoint: its state at the fork tick, in its world.
            let hash = sim.state_hash().to_hex().to_string();
            store.append_checkpoint(id, f.tick, sim.clock().elapsed_s(), &hash, &f.image)?;
            id
        }
    };
    if let Some(f) = req.on_start {
        f(run_id);
    }
    let (mut recorder, handle) = start_recording(store, run_id)?;
    if req.fork.is_none() {
        recorder.record_features(sim.world_mut());
    }
    sim.world_mut().insert_resource(recorder);
    let record_cfg = *sim.world().resource::<RecordConfig>();

    let end = sim.clock().end_tick();
    let every = (end / 200).max(1);
    let started = Instant::now();
    let start_s = sim.clock().elapsed_s();
    let mut writer_error = None;
    let mut checkpoint_error = None;
    // The tick whose step is under way: after a panic the world's clock may have moved on
    // (other systems of that step still ran), but that step never completed.
    let mut current_tick = sim.clock().tick();
    let stepped = catch_unwind(AssertUnwindSafe(|| {
        while !sim.finished() {
            if req.stop.load(Ordering::Relaxed) {
                break;
            }
            current_tick = sim.clock().tick();
            sim.step();
            let t = sim.clock().tick();
            if let Some(pace) = req.pace {
                keep_pace(started, sim.clock().elapsed_s() - start_s, pace, &req.stop);
            }
            if checkpoint_due(sim.clock(), &record_cfg) {
                match sim.checkpoint() {
                    Ok(image) => {
                        let hash = sim.state_hash().to_hex().to_string();
                        let t_s = sim.clock().elapsed_s();
                        sim.world_mut()
                            .resource_mut::<Recorder>()
                            .record_checkpoint(t, t_s, hash, image);
                    }
                    Err(e) => {
                        checkpoint_error = Some(format!("checkpoint at tick {t}: {e}"));
                        break;
                    }
                }
            }
            if t % every == 0 || t == end {
                on_progress(t, end);
                if let Some(e) = sim
                    .world()
                    .get_resource::<Recorder>()
                    .and_then(Recorder::failure)
                {
                    writer_error = Some(e);
                    break;
                }
            }
        }
    }));
    let wall_s = started.elapsed().as_secs_f64();
    let (status, ticks, state_hash, error, rows, final_kpis) = match stepped {
        Ok(()) => {
            let ticks = sim.clock().tick();
            let hash = sim.state_hash().to_hex().to_string();
            let rows = sim
                .world()
                .get_resource::<Recorder>()
                .map_or(0, Recorder::rows);
            let kpis = sim
                .world()
                .get_resource::<Kpis>()
                .map(Kpis::to_rows)
                .unwrap_or_default();
            let status = if writer_error.is_some() || checkpoint_error.is_some() {
                RunStatus::Failed
            } else if sim.finished() {
                RunStatus::Completed
            } else {
                RunStatus::Interrupted
            };
            let error = if status == RunStatus::Interrupted {
                Some("interrupted by the user".to_string())
            } else {
                checkpoint_error
            };
            (status, ticks, Some(hash), error, rows, kpis)
        }
        Err(p) => {
            let ticks = current_tick;
            (
                RunStatus::Failed,
                ticks,
                None,
                Some(format!("panic at tick {ticks}: {}", panic_text(p.as_ref()))),
                0,
                Vec::new(),
            )
        }
    };
    let sim_time_s = sim.clock().elapsed_s_at(ticks);
    let import = std::mem::take(&mut sim.import);
    let feed_links = sim.live_feeds().map(|l| l.links()).unwrap_or_default();
    // Dropping the world drops the Recorder, which lets the writer drain and end.
    drop(sim);
    handle.finish(status, ticks, state_hash.as_deref(), error.as_deref())?;
    Ok(RunOutcome {
        run_id,
        status,
        ticks,
        sim_time_s,
        state_hash,
        error,
        store_path,
        rows,
        wall_s,
        import,
        final_kpis,
        feed_links,
    })
}
