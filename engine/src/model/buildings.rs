//! Buildings.

use bevy::prelude::Component;

/// What a building is used for.
#[derive(
    serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum BuildingUse {
    /// Homes.
    Residential,
    /// Shops, offices.
    Commercial,
    /// Factories, plants, depots.
    Industrial,
    /// Schools, hospitals, government: often the places to protect first.
    Public,
    /// Anything else or unknown.
    Other,
}

impl BuildingUse {
    /// Parse the names used in data (`residential`, `commercial`, …; OSM's `building=*` values
    /// such as `house`, `apartments`, `retail`, `industrial`, `school` are understood too).
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "residential" | "house" | "apartments" | "detached" | "terrace" | "dormitory" => {
                BuildingUse::Residential
            }
            "commercial" | "retail" | "office" | "supermarket" | "hotel" => BuildingUse::Commercial,
            "industrial" | "warehouse" | "factory" | "plant" => BuildingUse::Industrial,
            "public" | "school" | "hospital" | "university" | "civic" | "government"
            | "fire_station" => BuildingUse::Public,
            _ => BuildingUse::Other,
        }
    }

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildingUse::Residential => "residential",
            BuildingUse::Commercial => "commercial",
            BuildingUse::Industrial => "industrial",
            BuildingUse::Public => "public",
            BuildingUse::Other => "other",
        }
    }
}

/// A building; its [`super::Shape`] is the footprint polygon.
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug, PartialEq)]
pub struct Building {
    /// Height above ground, m.
    pub height_m: f64,
    /// Use.
    pub use_: BuildingUse,
    /// People inside (for exposure and evacuation).
    pub occupants: u32,
    /// Ground-floor elevation above datum, m (the DEM's value at the footprint, or given).
    pub ground_m: f64,
}

/// An order to leave a building, put on the building's entity by whoever decides it (a leak's
/// exclusion zone, a flood warning) and taken off when the all-clear is given.
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug, PartialEq)]
pub struct EvacuationOrder {
    /// When it was ordered, s after the scene start.
    pub since_s: f64,
    /// Who ordered it (a plugin's or coupling's name).
    pub by: String,
}
