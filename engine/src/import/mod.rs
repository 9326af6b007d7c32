//! Data import: the scene's layers and DEM, read through GDAL, reprojected into the scene frame
//! and spawned as entities. Every importer shares [`crate::crs::Reprojector`] for coordinates.
//! OpenStreetMap PBF files are read by [`osm_pbf`].

mod addresses;
pub mod fields;
pub mod osm_pbf;
pub mod postgis;
mod raster;
mod reader;
mod vector;

pub use addresses::{AddressLayer, read_address_layer};
pub use raster::{Dem, load_dem};
pub use vector::{LayerReport, NodeIds, load_layer};

use bevy::prelude::World;

use crate::geo_frame::GeoFrame;
use crate::scene::Scene;

/// A failure to import data, naming the file and the feature.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file as a whole is unusable.
    #[error("{file}: {message}")]
    File {
        /// The data file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// One feature is unusable.
    #[error("{file}: feature {feature}: {message}")]
    Feature {
        /// The data file.
        file: String,
        /// The feature's index and id.
        feature: String,
        /// What is wrong.
        message: String,
    },
}

/// What a scene's data import produced.
#[derive(Debug, Default, Clone)]
pub struct ImportReport {
    /// One report per layer, in scene order.
    pub layers: Vec<LayerReport>,
    /// The DEM's grid size and range, if any.
    pub dem: Option<DemSummary>,
}

/// A DEM's headline figures.
#[derive(Debug, Clone)]
pub struct DemSummary {
    /// Columns × rows.
    pub size: (usize, usize),
    /// Cell size, m.
    pub cell_m: f64,
    /// Elevation range, m.
    pub range_m: Option<(f32, f32)>,
    /// Source CRS.
    pub source_crs: String,
}

/// Load the scene's DEM (as the [`Dem`] resource) and every layer into `world`.
pub fn load_scene_data(
    scene: &Scene,
    frame: &GeoFrame,
    world: &mut World,
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    if let Some(spec) = &scene.dem {
        let dem = load_dem(
            &scene.resolve(spec.file.get_ref()),
            spec.crs.as_ref().map(|c| c.get_ref().as_str()),
            spec.band,
            spec.cell_m.as_ref().map(|c| *c.get_ref()),
            frame,
        )?;
        report.dem = Some(DemSummary {
            size: (dem.nx, dem.ny),
            cell_m: dem.cell_m,
            range_m: dem.range_m(),
            source_crs: dem.source_crs.clone(),
        });
        world.insert_resource(dem);
    }
    // Address layers feed the gazetteer (`crate::address`), not the world.
    let mut order: Vec<usize> = (0..scene.layers.len())
        .filter(|&i| *scene.layers[i].kind.get_ref() != fields::LayerKind::Addresses)
        .collect();
    order.sort_by_key(|&i| (scene.layers[i].kind.get_ref().load_order(), i));
    let mut nodes = NodeIds::default();
    let mut reports: Vec<(usize, LayerReport)> = Vec::new();
    for i in order {
        let r = load_layer(scene, &scene.layers[i], frame, world, &mut nodes)?;
        reports.push((i, r));
    }
    reports.sort_by_key(|(i, _)| *i);
    report.layers = reports.into_iter().map(|(_, r)| r).collect();
    Ok(report)
}
