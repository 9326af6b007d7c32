//! Record, replay and fork on the coupled sample city (`scenes/sample_rainstorm.toml`: storm,
//! sewer, traffic, chlorine leak and air, every coupling on):
//!
//! - a replay reproduces the state hash at every checkpoint, both from the start and from the
//!   checkpoint before (so each image holds the whole state), and the final hash;
//! - a jump to a moment between checkpoints gives the state a straight run has there;
//! - a fork with nothing added goes on bit-identically; a fork with a road closed shares the
//!   parent's history (same rows, same state at the fork) and differs after it;
//! - a run killed mid-way replays up to its last checkpoint.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use citytwin_engine::prelude::*;
use citytwin_engine::replay::{self, ForkRequest};
use citytwin_engine::runner::RunOutcome;
use citytwin_engine::store::{KpiRow, RunStatus, RunStore};

/// The coupled scene, `duration_s` long, with a checkpoint every `checkpoint_s`.
fn scene(dir: &Path, duration_s: f64, checkpoint_s: f64) -> PathBuf {
    common::scene_copy_of(dir, "sample_rainstorm", |t| {
        let t = t
            .replace(
                "duration_s = 3600.0",
                &format!("duration_s = {duration_s:.1}"),
            )
            .replace(
                "[output]\n",
                &format!("[output]\ncheckpoint_interval_s = {checkpoint_s:.1}\n"),
            );
        assert!(t.contains(&format!("duration_s = {duration_s:.1}")));
        t
    })
}

fn record(scene_path: &Path, store: &Path) -> RunOutcome {
    common::record(scene_path, store)
}

#[test]
fn replay_reproduces_every_checkpoint_and_jumps_between_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = scene(dir.path(), 1500.0, 300.0);
    let store_path = dir.path().join("runs.duckdb");
    let run = record(&path, &store_path);
    assert_eq!(run.status, RunStatus::Completed);
    let store = RunStore::open(&store_path).unwrap();
    let cps = store.checkpoints(run.run_id).unwrap();
    assert_eq!(
        cps.iter().map(|c| c.tick).collect::<Vec<_>>(),
        vec![300, 600, 900, 1200, 1500]
    );

    let report = replay::verify(&store, &citytwin::registry(), run.run_id, &mut |_, _| {})
        .unwrap_or_else(|e| panic!("{e}"));
    for c in &report.checkpoints {
        assert!(c.ok(), "checkpoint at tick {}: {c:?}", c.stored.tick);
    }
    let (stored, replayed) = report.final_hash.clone().expect("a completed run");
    assert_eq!(stored, replayed);
    assert_eq!(Some(stored), run.state_hash);
    assert!(report.ok());

    // A moment between checkpoints (t = 1000 s: storm, leak and evacuation under way), from
    // the checkpoint at 900 s, against a straight run from the start.
    let mut jumped = replay::sim_at(
        &store,
        &citytwin::registry(),
        run.run_id,
        1000,
        false,
        &mut |_, _| {},
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut straight = common::build_sim(&path);
    while straight.clock().tick() < 1000 {
        straight.step();
    }
    assert_eq!(jumped.clock().tick(), 1000);
    assert_eq!(jumped.state_hash(), straight.state_hash());
    // Not an empty state that would match anything: vehicles on the streets, water on the
    // ground and in the sewer, chlorine in the air.
    let w = jumped.world_mut();
    let vehicles = w.query::<&Vehicle>().iter(w).count();
    assert!(vehicles > 20, "{vehicles} vehicles at 1000 s");
    let flood = w.resource::<citytwin_flood::FloodSim>();
    let (_, stored_m3, _) = flood.water_balance_m3();
    assert!(stored_m3 > 100.0, "{stored_m3} m³ of water at 1000 s");
    let air = w.resource::<citytwin_pollution::PollutionSim>();
    assert!(!air.puffs.puffs.is_empty(), "no chlorine puffs at 1000 s");
}

/// A run's KPI rows before `tick`, values by their bits (NaN where a road had no vehicle).
fn kpis_before(store: &RunStore, run: i64, tick: u64) -> Vec<(u64, String, String, u64, String)> {
    store
        .kpis(run)
        .unwrap()
        .into_iter()
        .filter(|k: &KpiRow| k.tick < tick)
        .map(|k| (k.tick, k.name, k.scope, k.value.to_bits(), k.unit))
        .collect()
}

fn fork(store_path: &Path, parent: i64, at_s: f64, add: Option<&str>) -> RunOutcome {
    replay::fork(
        ForkRequest {
            store_path: store_path.to_path_buf(),
            parent,
            at_s,
            add_scenarios: add,
            add_source: "the test",
            registry: &citytwin::registry(),
            stop: Arc::new(AtomicBool::new(false)),
        },
        &mut |_, _| {},
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_fork_shares_its_history_and_diverges_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = scene(dir.path(), 1200.0, 300.0);
    let store_path = dir.path().join("runs.duckdb");
    let parent = record(&path, &store_path);
    assert_eq!(parent.status, RunStatus::Completed);

    // Nothing added, from 450 s (between checkpoints): the same run, bit for bit.
    let same = fork(&store_path, parent.run_id, 450.0, None);
    assert_eq!(same.status, RunStatus::Completed);
    assert_eq!(same.state_hash, parent.state_hash);

    // The arterial closed from the fork on.
    let closure = "[[scenario]]\nplugin = \"road_closure\"\nparams = { roads = [\"h11\", \"-h11\"], from_s = 600.0 }\n";
    let closed = fork(&store_path, parent.run_id, 600.0, Some(closure));
    assert_eq!(closed.status, RunStatus::Completed);
    assert_ne!(closed.state_hash, parent.state_hash);

    let store = RunStore::open(&store_path).unwrap();
    assert_eq!(
        store.parent(closed.run_id).unwrap(),
        Some((parent.run_id, 600))
    );
    assert_eq!(store.parent(parent.run_id).unwrap(), None);
    // The same history before the fork…
    let before = kpis_before(&store, parent.run_id, 600);
    assert!(before.len() > 100);
    assert_eq!(kpis_before(&store, closed.run_id, 600), before);
    // …the same state at it…
    let at = |run| {
        store
            .checkpoints(run)
            .unwrap()
            .into_iter()
            .find(|c| c.tick == 600)
            .unwrap_or_else(|| panic!("run {run} has no checkpoint at 600"))
            .state_hash
    };
    assert_eq!(at(closed.run_id), at(parent.run_id));
    // …and a different city after it: the KPIs of the last sample differ somewhere.
    let last = |run| -> Vec<(String, String, f64)> {
        let k = store.kpis(run).unwrap();
        let t = k.last().unwrap().tick;
        k.into_iter()
            .filter(|r| r.tick == t)
            .map(|r| (r.name, r.scope, r.value))
            .collect()
    };
    let (a, b) = (last(parent.run_id), last(closed.run_id));
    let differ = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x.0 == y.0 && x.1 == y.1 && x.2.to_bits() != y.2.to_bits())
        .count();
    assert!(differ > 0, "the closure changed no KPI");
    // The fork replays too (from its own checkpoint at the fork), and before the fork a replay
    // of it is its parent.
    let report = replay::verify(&store, &citytwin::registry(), closed.run_id, &mut |_, _| {})
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.ok(), "{report:?}");
    assert!(report.checkpoints.len() >= 3);
    let mut early = replay::sim_at(
        &store,
        &citytwin::registry(),
        closed.run_id,
        300,
        true,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(
        early.state_hash().to_hex().to_string(),
        at_tick(&store, parent.run_id, 300)
    );
}

fn at_tick(store: &RunStore, run: i64, tick: u64) -> String {
    store
        .checkpoints(run)
        .unwrap()
        .into_iter()
        .find(|c| c.tick == tick)
        .unwrap()
        .state_hash
}

#[test]
fn a_killed_run_replays_to_its_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = scene(dir.path(), 3600.0, 60.0);
    let store_path = dir.path().join("runs.duckdb");
    // Kill the run (SIGKILL: nothing is closed or flushed) once it has had time for a few
    // checkpoints; wait longer on a slower machine.
    let mut waited = 0;
    for wait_s in [4u64, 8, 16, 32] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_citytwin"))
            .args(["run", "-q", "--out"])
            .arg(&store_path)
            .arg(&path)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_secs(wait_s));
        child.kill().unwrap();
        child.wait().unwrap();
        waited = wait_s;
        let store = RunStore::open(&store_path).unwrap();
        let runs = store.runs().unwrap();
        let last = runs.last().unwrap();
        if !store.checkpoints(last.id).unwrap().is_empty() {
            break;
        }
    }
    let store = RunStore::open(&store_path).unwrap();
    let last = store.runs().unwrap().pop().unwrap();
    assert_eq!(last.status, "failed", "killed after {waited} s: {last:?}");
    let cps = store.checkpoints(last.id).unwrap();
    assert!(!cps.is_empty(), "no checkpoint after {waited} s");
    let report = replay::verify(&store, &citytwin::registry(), last.id, &mut |_, _| {})
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.checkpoints.len(), cps.len());
    assert!(report.final_hash.is_none());
    assert!(report.ok(), "{report:?}");
    // And it can be run on from there: a fork with nothing added, to the scene's end.
    drop(store);
    let t = cps.last().unwrap().sim_time_s;
    let on = fork(&store_path, last.id, t, None);
    assert_eq!(on.status, RunStatus::Completed);
    assert_eq!(on.ticks, 3600);
}
