//! The underground drainage network: manholes (junctions), conduits and outfalls, as in SWMM.

use bevy::prelude::{Component, Entity};

/// A conduit's cross-section.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CrossSection {
    /// A circular pipe.
    Circular {
        /// Inner diameter, m.
        diameter_m: f64,
    },
    /// A rectangular closed box culvert.
    Rectangular {
        /// Inner width, m.
        width_m: f64,
        /// Inner height, m.
        height_m: f64,
    },
}

impl CrossSection {
    /// Full-flow area, m².
    pub fn full_area_m2(&self) -> f64 {
        match *self {
            CrossSection::Circular { diameter_m } => {
                std::f64::consts::PI * diameter_m * diameter_m / 4.0
            }
            CrossSection::Rectangular { width_m, height_m } => width_m * height_m,
        }
    }

    /// Full height, m.
    pub fn full_depth_m(&self) -> f64 {
        match *self {
            CrossSection::Circular { diameter_m } => diameter_m,
            CrossSection::Rectangular { height_m, .. } => height_m,
        }
    }
}

/// A pipe between two nodes (manholes or outfalls); its [`super::Shape`] is the pipe's plan line.
#[derive(Component, Clone, Debug, PartialEq)]
pub struct Conduit {
    /// Upstream node.
    pub from: Entity,
    /// Downstream node.
    pub to: Entity,
    /// Cross-section.
    pub section: CrossSection,
    /// Length, m.
    pub length_m: f64,
    /// Manning's roughness n, s/m^(1/3).
    pub manning_n: f64,
    /// Invert offset above the upstream node's invert, m.
    pub inlet_offset_m: f64,
    /// Invert offset above the downstream node's invert, m.
    pub outlet_offset_m: f64,
}

/// A manhole / junction node; its [`super::Position`] `z_m` is the rim (ground) elevation.
#[derive(Component, Clone, Debug, PartialEq)]
pub struct Manhole {
    /// Invert (bottom) elevation, m above datum.
    pub invert_m: f64,
    /// Depth from invert to rim, m.
    pub max_depth_m: f64,
    /// Surface area of the shaft, m² (for storage when surcharged).
    pub area_m2: f64,
}

/// A free outfall (to a river, the sea); its [`super::Position`] `z_m` is the ground elevation.
#[derive(Component, Clone, Debug, PartialEq)]
pub struct Outfall {
    /// Invert elevation, m above datum.
    pub invert_m: f64,
}
