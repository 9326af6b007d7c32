//! Roads, intersections with their signal programs, and vehicles.

use bevy::prelude::{Component, Entity};

/// A directed road link: its [`super::Shape`] is the centreline drawn in the direction of travel.
/// A two-way street is two roads, one each way, as in SUMO's edges.
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug, PartialEq)]
pub struct Road {
    /// Street name, possibly empty.
    pub name: String,
    /// Number of lanes in this direction (≥ 1).
    pub lanes: u8,
    /// Legal speed limit, m/s.
    pub speed_limit_mps: f64,
    /// Lane width, m.
    pub lane_width_m: f64,
    /// Length along the centreline, m.
    pub length_m: f64,
    /// The intersection it leaves, where known.
    pub from: Option<Entity>,
    /// The intersection it enters, where known.
    pub to: Option<Entity>,
}

/// A junction of roads, with a signal program if it is signalised.
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug, PartialEq)]
pub struct Intersection {
    /// Its signal program, `None` for priority or unsignalised junctions.
    pub signal: Option<SignalProgram>,
}

/// A fixed-time signal program: a cycle of phases, each a state per controlled movement.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct SignalProgram {
    /// Offset of the cycle start from the scene start, s.
    pub offset_s: f64,
    /// The phases in order; their durations add up to the cycle.
    pub phases: Vec<SignalPhase>,
}

/// One phase of a [`SignalProgram`].
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct SignalPhase {
    /// Duration, s.
    pub duration_s: f64,
    /// One character per controlled movement, SUMO's alphabet: `G`/`g` green (priority/yield),
    /// `y` amber, `r` red.
    pub state: String,
}

impl SignalProgram {
    /// Parse the compact form `"GGrr:42 yyrr:3 rrGG:42 rryy:3"` (state:duration pairs separated by
    /// spaces or semicolons), as written in scene data. All states must have the same length.
    pub fn parse(text: &str, offset_s: f64) -> Result<Self, String> {
        let mut phases = Vec::new();
        for part in text.split([' ', ';', ',']).filter(|p| !p.is_empty()) {
            let (state, dur) = part
                .split_once(':')
                .ok_or_else(|| format!("phase '{part}' is not STATE:SECONDS"))?;
            if state.is_empty()
                || !state
                    .chars()
                    .all(|c| matches!(c, 'G' | 'g' | 'y' | 'r' | 'o' | 's'))
            {
                return Err(format!(
                    "phase state '{state}' must use only the letters G g y r o s"
                ));
            }
            let duration_s: f64 = dur
                .parse()
                .map_err(|_| format!("phase duration '{dur}' is not a number of seconds"))?;
            if !(duration_s.is_finite() && duration_s > 0.0) {
                return Err(format!("phase duration {duration_s} s must be positive"));
            }
            if let Some(first) = phases.first().map(|p: &SignalPhase| p.state.len())
                && first != state.len()
            {
                return Err(format!(
                    "phase '{state}' controls {} movements but the first phase controls {first}",
                    state.len()
                ));
            }
            phases.push(SignalPhase {
                duration_s,
                state: state.to_string(),
            });
        }
        if phases.is_empty() {
            return Err("a signal program needs at least one phase".into());
        }
        Ok(Self { offset_s, phases })
    }

    /// The cycle length, s.
    pub fn cycle_s(&self) -> f64 {
        self.phases.iter().map(|p| p.duration_s).sum()
    }

    /// The phase index active at `time_s` after the scene start.
    pub fn phase_at(&self, time_s: f64) -> usize {
        let cycle = self.cycle_s();
        let mut t = (time_s - self.offset_s).rem_euclid(cycle);
        for (i, p) in self.phases.iter().enumerate() {
            if t < p.duration_s {
                return i;
            }
            t -= p.duration_s;
        }
        self.phases.len() - 1
    }
}

/// The kind of a vehicle, which sets its defaults in the simulations.
#[derive(
    serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum VehicleKind {
    /// Passenger car.
    Car,
    /// Bus.
    Bus,
    /// Heavy goods vehicle.
    Truck,
    /// Fire engine, ambulance, police: may get signal priority.
    Emergency,
}

/// A vehicle; its [`super::Position`] moves as it drives.
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug, PartialEq)]
pub struct Vehicle {
    /// Kind.
    pub kind: VehicleKind,
    /// Length, m.
    pub length_m: f64,
    /// Top speed, m/s.
    pub max_speed_mps: f64,
    /// Current speed, m/s.
    pub speed_mps: f64,
    /// Mean acceleration since the previous update of `speed_mps`, m/s² (negative: braking).
    pub accel_mps2: f64,
    /// The [`Road`] entity it is on (`None` inside a junction, or when its simulation does not
    /// say).
    pub road: Option<bevy::prelude::Entity>,
    /// Which way it faces, radians counter-clockwise from the frame's x axis (east).
    pub heading_rad: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_program_parses_and_cycles() {
        let p = SignalProgram::parse("GGrr:42 yyrr:3;rrGG:42 rryy:3", 10.0).unwrap();
        assert_eq!(p.phases.len(), 4);
        assert_eq!(p.cycle_s(), 90.0);
        assert_eq!(p.phase_at(10.0), 0);
        assert_eq!(p.phase_at(52.5), 1);
        assert_eq!(p.phase_at(55.0), 2);
        assert_eq!(p.phase_at(9.0), 3);
        assert!(
            SignalProgram::parse("GGrr:42 yyr:3", 0.0)
                .unwrap_err()
                .contains("movements")
        );
        assert!(SignalProgram::parse("GGxx:4", 0.0).is_err());
        assert!(SignalProgram::parse("GG:-1", 0.0).is_err());
    }
}
