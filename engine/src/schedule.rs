//! The fixed-step schedule and its public, ordered system sets.
//!
//! One run of [`SimStep`] advances the city by one clock step. Inside it the sets run in this
//! order, each finishing before the next starts:
//!
//! 1. [`SimSet::Ingest`] — external inputs for this tick: sensor readings, operator commands.
//! 2. [`SimSet::Scenario`] — scenario plugins act: close a road, start the rain, open a leak.
//! 3. [`SimSet::Physics`] — the simulations advance their state by one step.
//! 4. [`SimSet::Index`] — the engine brings the spatial index up to date with what moved.
//! 5. [`SimSet::Coupling`] — cross-domain rules read one physics' state and drive another's.
//! 6. [`SimSet::Metrics`] — KPIs are computed from the new state.
//! 7. [`SimSet::Record`] — the recorder copies what the run store keeps.
//! 8. [`SimSet::Advance`] — the engine advances the clock by one tick.
//!
//! Simulations and plugins put their systems in a set; nobody adds to `Index` or `Advance`.
//! Headless runs call [`SimStep`] as fast as the CPU allows; a view calls it at the speed the user
//! chooses. Real time never enters.

use bevy::ecs::schedule::{LogLevel, ScheduleBuildSettings, ScheduleLabel};
use bevy::prelude::*;

/// The schedule that advances the simulation by one step.
#[derive(ScheduleLabel, Clone, Debug, PartialEq, Eq, Hash)]
pub struct SimStep;

/// The ordered phases of a step (see the module docs).
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SimSet {
    /// External inputs for this tick.
    Ingest,
    /// Scenario plugins' actions.
    Scenario,
    /// Simulations advance one step.
    Physics,
    /// Engine-owned: spatial index sync.
    Index,
    /// Cross-domain couplings.
    Coupling,
    /// KPIs.
    Metrics,
    /// Recording.
    Record,
    /// Engine-owned: the clock advances.
    Advance,
}

/// Build the [`SimStep`] schedule with its sets chained.
///
/// Systems that touch the same data within one set must be ordered explicitly; the schedule
/// reports such ambiguities as errors when `strict` is set (tests do), since an unordered pair may
/// run either way round and break determinism.
pub fn new_sim_schedule(strict: bool) -> Schedule {
    let mut schedule = Schedule::new(SimStep);
    schedule.set_build_settings(ScheduleBuildSettings {
        ambiguity_detection: if strict {
            LogLevel::Error
        } else {
            LogLevel::Warn
        },
        ..default()
    });
    schedule.configure_sets(
        (
            SimSet::Ingest,
            SimSet::Scenario,
            SimSet::Physics,
            SimSet::Index,
            SimSet::Coupling,
            SimSet::Metrics,
            SimSet::Record,
            SimSet::Advance,
        )
            .chain(),
    );
    schedule
}
