//! The city model: what a city is made of, as ECS components.
//!
//! Every feature is an entity. Its place in the scene frame is either a [`Position`] (things that
//! are points or move: vehicles, sensors, manholes) or a [`Shape`] (things with extent: roads,
//! buildings, pipes), never both. A [`FeatureId`] ties it to the record it came from, so results
//! can be joined back to the planners' own data. Everything is SI: metres, seconds, m/s, m³/s, kg/s.
//!
//! Simulations add their own state components next to these; the model here is what every
//! simulation, plugin and view may rely on.

mod buildings;
mod drainage;
mod environment;
mod transport;

pub use buildings::{Building, BuildingUse, EvacuationOrder};
pub use drainage::{
    Conduit, CrossSection, Curve, Infiltration, Manhole, NodeInflow, Orifice, Outfall,
    OutfallStage, Pattern, Pump, PumpCurve, StorageShape, StorageUnit, SubareaRouting,
    Subcatchment, Weir, WeirKind,
};
pub use environment::{EmissionKind, EmissionSource, Sensor, SensorKind};
pub use transport::{Intersection, Road, SignalPhase, SignalProgram, Vehicle, VehicleKind};

use std::sync::Arc;

use bevy::math::DVec2;
use bevy::prelude::Component;

/// Where a feature came from: its layer and its id in that layer (the source's `id` field or,
/// failing that, its feature index). Stable across runs of the same scene.
#[derive(
    serde::Serialize,
    serde::Deserialize,
    Component,
    Clone,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
)]
pub struct FeatureId {
    /// The scene layer's name.
    pub layer: String,
    /// The feature's id within the layer.
    pub id: String,
}

impl std::fmt::Display for FeatureId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.layer, self.id)
    }
}

/// A point feature's position in the scene frame, metres (x east, y north, z up from the datum).
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Copy, Debug, PartialEq)]
pub struct Position {
    /// Horizontal position, metres.
    pub xy_m: DVec2,
    /// Elevation, metres (0 where unknown).
    pub z_m: f64,
}

impl Position {
    /// A position at ground datum.
    pub fn new(x_m: f64, y_m: f64) -> Self {
        Self {
            xy_m: DVec2::new(x_m, y_m),
            z_m: 0.0,
        }
    }
}

/// An extended feature's geometry in the scene frame, metres. Shared, so the spatial index and
/// the recorder hold it without copying.
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug, PartialEq)]
pub struct Shape(pub Arc<geo::Geometry<f64>>);

impl Shape {
    /// Wrap a geometry.
    pub fn new(g: impl Into<geo::Geometry<f64>>) -> Self {
        Self(Arc::new(g.into()))
    }
}

/// The kind of a model entity, for counts, snapshots and the store.
#[derive(
    serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum EntityKind {
    /// A [`Road`].
    Road,
    /// An [`Intersection`].
    Intersection,
    /// A [`Building`].
    Building,
    /// A [`Conduit`].
    Conduit,
    /// A [`Manhole`].
    Manhole,
    /// An [`Outfall`].
    Outfall,
    /// A [`StorageUnit`].
    StorageUnit,
    /// A [`Pump`].
    Pump,
    /// An [`Orifice`].
    Orifice,
    /// A [`Weir`].
    Weir,
    /// A [`Subcatchment`].
    Subcatchment,
    /// A [`Vehicle`].
    Vehicle,
    /// A [`Sensor`].
    Sensor,
    /// An [`EmissionSource`].
    EmissionSource,
}

impl EntityKind {
    /// Every kind, in a fixed order.
    pub const ALL: [EntityKind; 14] = [
        EntityKind::Road,
        EntityKind::Intersection,
        EntityKind::Building,
        EntityKind::Conduit,
        EntityKind::Manhole,
        EntityKind::Outfall,
        EntityKind::StorageUnit,
        EntityKind::Pump,
        EntityKind::Orifice,
        EntityKind::Weir,
        EntityKind::Subcatchment,
        EntityKind::Vehicle,
        EntityKind::Sensor,
        EntityKind::EmissionSource,
    ];

    /// The lower-case name used in scenes, the store and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Road => "road",
            EntityKind::Intersection => "intersection",
            EntityKind::Building => "building",
            EntityKind::Conduit => "conduit",
            EntityKind::Manhole => "manhole",
            EntityKind::Outfall => "outfall",
            EntityKind::StorageUnit => "storage_unit",
            EntityKind::Pump => "pump",
            EntityKind::Orifice => "orifice",
            EntityKind::Weir => "weir",
            EntityKind::Subcatchment => "subcatchment",
            EntityKind::Vehicle => "vehicle",
            EntityKind::Sensor => "sensor",
            EntityKind::EmissionSource => "emission_source",
        }
    }
}

/// Marks an entity with its [`EntityKind`]; every model entity has one.
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind(pub EntityKind);
