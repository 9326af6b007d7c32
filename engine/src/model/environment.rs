//! Sensors and emission sources.

use bevy::prelude::Component;

/// What a sensor measures.
#[derive(
    serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum SensorKind {
    /// Rain gauge: rainfall intensity, m/s.
    RainGauge,
    /// Water-level gauge (in a manhole, a channel or on a street): depth, m.
    WaterLevel,
    /// Air-quality station measuring these pollutants (e.g. `NO2`, `PM2.5`): kg/m³.
    AirQuality {
        /// Pollutant names as written in the data.
        pollutants: Vec<String>,
    },
    /// Traffic detector (loop, camera): counts and speeds.
    TrafficDetector,
}

impl SensorKind {
    /// Parse `rain_gauge`, `water_level`, `air_quality`, `traffic_detector` (pollutants are given separately).
    pub fn parse(s: &str, pollutants: Vec<String>) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rain_gauge" | "rain" => Some(SensorKind::RainGauge),
            "water_level" | "level" => Some(SensorKind::WaterLevel),
            "air_quality" | "air" => Some(SensorKind::AirQuality { pollutants }),
            "traffic_detector" | "traffic" | "detector" => Some(SensorKind::TrafficDetector),
            _ => None,
        }
    }

    /// The lower-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            SensorKind::RainGauge => "rain_gauge",
            SensorKind::WaterLevel => "water_level",
            SensorKind::AirQuality { .. } => "air_quality",
            SensorKind::TrafficDetector => "traffic_detector",
        }
    }
}

/// A sensor at a [`super::Position`].
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug, PartialEq)]
pub struct Sensor {
    /// What it measures.
    pub kind: SensorKind,
    /// The operator's station code, as in the readings it sends.
    pub station: String,
}

/// The geometry class of an emission source.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub enum EmissionKind {
    /// A stack at a [`super::Position`].
    Stack {
        /// Stack height above ground, m.
        height_m: f64,
        /// Inner diameter at the top, m.
        diameter_m: f64,
        /// Exit velocity, m/s.
        exit_velocity_mps: f64,
        /// Exit temperature, K.
        exit_temperature_k: f64,
    },
    /// A passive release (no exit velocity or heat) over an area ([`super::Shape`] polygon) or
    /// at a point: a tank farm, a spill, a leaking valve.
    Area {
        /// Height of the release above ground, m (0 for a ground-level area).
        height_m: f64,
    },
}

/// Something that emits a pollutant.
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug, PartialEq)]
pub struct EmissionSource {
    /// Pollutant or substance name (e.g. `NO2`, `chlorine`).
    pub pollutant: String,
    /// Emission rate, kg/s.
    pub rate_kg_s: f64,
    /// Geometry class and stack parameters.
    pub kind: EmissionKind,
}
