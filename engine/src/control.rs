//! What scenario plugins and couplings may ask of the city, as engine-level messages.
//!
//! A plugin never reaches into a simulation: it writes a command in [`crate::schedule::SimSet::Scenario`]
//! (or `Coupling`), and whichever simulation owns that part of the city applies it at the start
//! of its next `Physics` step. Roads and intersections are named by their [`FeatureId`], as they
//! appear in the run store. Messages live for one step: the engine clears them in `Advance`.
//!
//! Rain is an input of the same kind: whoever makes it rain (a storm plugin, rain-gauge feeds)
//! sets its share of [`Rainfall`] each step, the flood simulation reads it, and the engine
//! clears it in `Advance` after adding it up into the `rain.*` KPIs.

use std::collections::BTreeMap;

use bevy::prelude::*;

use crate::clock::SimClock;
use crate::model::{FeatureId, SignalProgram};
use crate::recorder::Kpis;

/// A change to the road network.
///
/// Closures and speed limits are held by whoever asks (`by`: a plugin's name, a coupling's):
/// several scenarios can act on the same road and each lifts only its own hold. A road stays
/// closed while any source holds it closed, and runs at the lowest limit any source sets (the
/// network's own limit when none does).
#[derive(serde::Serialize, serde::Deserialize, Message, Clone, Debug, PartialEq)]
pub enum RoadCommand {
    /// Close a road to all traffic; vehicles that would use it reroute, and vehicles already
    /// on it drive off it.
    Close {
        /// The road.
        road: FeatureId,
        /// Who closes it.
        by: String,
    },
    /// Lift `by`'s closure of a road (it opens when no other source holds it closed).
    Open {
        /// The road.
        road: FeatureId,
        /// Whose closure is lifted.
        by: String,
    },
    /// Set `by`'s speed limit on a road (works zones, flooding), m/s; vehicles may reroute.
    SetSpeed {
        /// The road.
        road: FeatureId,
        /// New limit, m/s.
        speed_mps: f64,
        /// Who sets it.
        by: String,
    },
    /// Lift `by`'s speed limit on a road: the lowest of the others', or the network's own.
    LiftSpeed {
        /// The road.
        road: FeatureId,
        /// Whose limit is lifted.
        by: String,
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
#[derive(serde::Serialize, serde::Deserialize, Message, Clone, Debug, PartialEq)]
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

/// Rain falling on the city during this step. Each source sets its own share under its own
/// name, so several sources (two storms, a storm and gauge feeds) add up in a fixed order
/// whatever order their systems run in. Intensities are m/s (1 mm/h = 2.78e-7 m/s).
#[derive(serde::Serialize, serde::Deserialize, Resource, Default, Debug, Clone, PartialEq)]
pub struct Rainfall {
    uniform: BTreeMap<String, f64>,
    gauges: BTreeMap<String, f64>,
}

impl Rainfall {
    /// Rain over the whole city from source `source`, m/s (replaces that source's share).
    pub fn set_uniform(&mut self, source: &str, intensity_mps: f64) {
        self.uniform
            .insert(source.to_string(), intensity_mps.max(0.0));
    }

    /// Rain measured at the gauge with station code `station`, m/s: where gauges report, the
    /// flood interpolates between them (and adds the uniform rain).
    pub fn set_gauge(&mut self, station: &str, intensity_mps: f64) {
        self.gauges
            .insert(station.to_string(), intensity_mps.max(0.0));
    }

    /// The uniform rain of all sources, m/s.
    pub fn uniform_mps(&self) -> f64 {
        self.uniform.values().sum()
    }

    /// The gauges' readings this step, by station.
    pub fn gauges(&self) -> &BTreeMap<String, f64> {
        &self.gauges
    }

    /// Whether any rain is falling.
    pub fn is_dry(&self) -> bool {
        self.uniform_mps() <= 0.0 && self.gauges.values().all(|&v| v <= 0.0)
    }
}

/// Rain so far, for the `rain.*` KPIs.
#[derive(serde::Serialize, serde::Deserialize, Resource, Default, Debug, Clone)]
pub(crate) struct RainTotals {
    uniform_m: f64,
    gauges_m: BTreeMap<String, f64>,
}

/// Registers the engine's command messages and rain, and their clean-up.
pub(crate) fn add_control(app: &mut App) {
    app.add_message::<RoadCommand>();
    app.add_message::<DemandCommand>();
    app.init_resource::<Rainfall>()
        .init_resource::<RainTotals>()
        // Sources write their own keys; the sums run in key order.
        .allow_ambiguous_resource::<Rainfall>();
}

/// Add this step's rain to the totals and publish them as KPIs: `rain.intensity` (m/s) and
/// `rain.depth` (m, since the start), for the city (uniform rain) and per gauge. Scenes where it
/// never rains get no `rain.*` KPIs.
pub(crate) fn rain_kpis(
    clock: Res<SimClock>,
    rain: Res<Rainfall>,
    mut totals: ResMut<RainTotals>,
    mut kpis: ResMut<Kpis>,
) {
    let dt = clock.step_s();
    let u = rain.uniform_mps();
    if u > 0.0 || totals.uniform_m > 0.0 {
        totals.uniform_m += u * dt;
        kpis.set("rain.intensity", "city", u, "m/s");
        kpis.set("rain.depth", "city", totals.uniform_m, "m");
    }
    for (station, &v) in rain.gauges() {
        let d = totals.gauges_m.entry(station.clone()).or_default();
        *d += v * dt;
        kpis.set("rain.intensity", station, v, "m/s");
        kpis.set("rain.depth", station, *d, "m");
    }
}

/// The rain of the step that ended is gone; sources set it again next step.
pub(crate) fn clear_rain(mut rain: ResMut<Rainfall>) {
    rain.uniform.clear();
    rain.gauges.clear();
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
