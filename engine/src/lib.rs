//! # citytwin-engine
//!
//! The spine of citytwin: a city held as entities in a Bevy ECS world, placed in a scene-local
//! metric frame, indexed in space (R-tree + H3) and stepped by a deterministic clock through a
//! fixed schedule of public system sets, with every run recorded to an embedded DuckDB store.
//!
//! - [`model`]: the city's components (roads, intersections, buildings, drainage, vehicles,
//!   sensors, emission sources), SI units throughout.
//! - [`geo_frame`] and [`crs`]: WGS84 ⇄ local metres, and any CRS into the frame via GDAL.
//! - [`index`]: the spatial index, kept in sync incrementally.
//! - [`clock`], [`schedule`], [`rng`], [`hash`]: deterministic time, order, randomness and the
//!   state hash that proves it.
//! - [`scene`], [`import`], [`sim`], [`modules`]: scene files, data import, building and stepping
//!   a simulation, and the registry of simulations and scenario plugins.
//! - [`store`], [`recorder`], [`wkb`]: the run store and how a run gets into it.
//! - [`output`]: grids as GeoTIFF and areas as GeoJSON/GeoPackage, through GDAL.
//! - [`control`]: the commands scenario plugins and couplings send to the simulations, and the
//!   rain falling on the city.
//!
//! See `ARCHITECTURE.md` at the repository root for the map and the invariants.

pub mod address;
pub mod checkpoint;
pub mod clock;
pub mod control;
pub mod crs;
pub mod feeds;
pub mod geo_frame;
pub mod hash;
pub mod import;
pub mod incident;
pub mod index;
pub mod model;
pub mod modules;
pub mod output;
pub mod recorder;
#[cfg(feature = "render")]
pub mod render;
pub mod replay;
pub mod rng;
pub mod runner;
pub mod scene;
pub mod schedule;
pub mod sim;
pub mod store;
pub mod wkb;

/// The items most code needs.
pub mod prelude {
    pub use crate::checkpoint::{CheckpointAppExt, EntityRemap};
    pub use crate::clock::SimClock;
    pub use crate::control::{DemandCommand, Rainfall, RoadCommand};
    pub use crate::geo_frame::{GeoFrame, LonLat};
    pub use crate::hash::{StateHash, StateHashAppExt, StateHasher};
    pub use crate::index::SpatialIndex;
    pub use crate::model::*;
    pub use crate::modules::{ModuleRegistry, SceneModule, parse_params};
    pub use crate::recorder::{
        EventLog, FieldLog, FieldSample, Kpis, Raster, Rasters, SimEvent, Snapshot,
    };
    pub use crate::rng::SimRng;
    pub use crate::schedule::{SimSet, SimStep};
}

/// The engine's version, recorded with every run.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
