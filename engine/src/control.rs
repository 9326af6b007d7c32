//! What scenario plugins and couplings may ask of the city, as engine-level messages.
//!
//! A plugin never reaches into a simulation: it writes a command in [`crate::schedule::SimSet::Scenario`]
//! (or `Coupling`), and whichever simulation owns that part of the city applies it at the start
//! of its next `Physics` step. Roads and intersections are named by their [`FeatureId`], as they
//! appear in the run store. Messages live for one step: the engine clears them in `Advance`.

use bevy::prelude::*;

use crate::model::{FeatureId, SignalProgram};

/// A change to the road network.
#[derive(Message, Clone, Debug, PartialEq)]
pub enum RoadCommand {
    /// Close a road to all traffic; vehicles that would use it reroute.
    Close {
        /// The road.
        road: FeatureId,
    },
    /// Reopen a closed road.
    Open {
        /// The road.
        road: FeatureId,
    },
    /// Change a road's speed limit (works zones, flooding), m/s; vehicles may reroute.
    SetSpeed {
        /// The road.
        road: FeatureId,
        /// New limit, m/s.
        speed_mps: f64,
    },
    /// Run a new fixed-time signal program at an intersection from now on; it must control as
    /// many movements as the intersection's current program.
    SetSignalProgram {
        /// The intersection.
        intersection: FeatureId,
        /// The program (its cycle starts now; `offset_s` shifts it).
        program: SignalProgram,
    },
}

/// A change to travel demand: scaling or shifting the trips not yet started whose departure
/// falls in `[from_s, until_s)` (seconds after the scene start), or one more vehicle.
#[derive(Message, Clone, Debug, PartialEq)]
pub enum DemandCommand {
    /// Multiply the number of trips by `factor` (0.5 halves them, 1.3 adds 30 %), choosing
    /// which to drop or repeat from the scene's seed.
    Scale {
        /// Factor, ≥ 0.
        factor: f64,
        /// Window start, s.
        from_s: f64,
        /// Window end, s.
        until_s: f64,
    },
    /// Send one vehicle from one road to another (an ambulance, a fire engine), routed when it
    /// leaves; with `signal_priority` the signals on its way turn green ahead of it.
    AddVehicle {
        /// Its id in trip records and the store.
        id: String,
        /// Kind (sets its type: an emergency vehicle drives as SUMO's emergency class).
        kind: crate::model::VehicleKind,
        /// Road it starts on.
        from: FeatureId,
        /// Road it is bound for.
        to: FeatureId,
        /// Departure, s after the scene start.
        depart_s: f64,
        /// Whether signals pre-empt for it.
        signal_priority: bool,
    },
    /// Move their departures by `by_s` seconds (negative: earlier, never before now).
    Shift {
        /// Shift, s.
        by_s: f64,
        /// Window start, s.
        from_s: f64,
        /// Window end, s.
        until_s: f64,
    },
}

/// Registers the engine's command messages and their clean-up.
pub(crate) fn add_control(app: &mut App) {
    app.add_message::<RoadCommand>();
    app.add_message::<DemandCommand>();
}

/// Drop the messages of the step that ended (both buffers turn over every two steps, so a
/// reader in any set of the step sees what was written before it in the same step).
pub(crate) fn clear_commands(
    mut road: ResMut<Messages<RoadCommand>>,
    mut demand: ResMut<Messages<DemandCommand>>,
) {
    road.update();
    demand.update();
}
