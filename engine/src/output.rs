//! GIS output through GDAL: grids as GeoTIFF in the scene frame's own projection (a transverse
//! Mercator about the scene origin, so no resampling is needed), and areas where a grid passes a
//! threshold as polygons in WGS84 (GeoJSON, GeoPackage or Shapefile, by the file's extension).

use std::path::Path;

use gdal::DriverManager;
use gdal::spatial_ref::SpatialRef;
use gdal::vector::{
    Feature, FieldValue, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType, ToGdal,
};
use geo::{Coord, LineString, MultiPolygon, Polygon};

use crate::crs::wgs84;
use crate::geo_frame::GeoFrame;
use crate::import::Dem;

/// What went wrong writing a file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct OutputError {
    /// The file.
    pub path: String,
    /// What failed.
    pub message: String,
}

fn fail(path: &Path, e: impl std::fmt::Display) -> OutputError {
    OutputError {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The scene frame as a spatial reference (PROJ's `tmerc` about the origin, WGS84 ellipsoid).
pub fn frame_srs(frame: &GeoFrame) -> Result<SpatialRef, gdal::errors::GdalError> {
    SpatialRef::from_proj4(&frame.proj_definition())
}

/// Write `values` (one per cell of `grid`, row-major from the south-west, NaN for no data) as a
/// single-band f32 GeoTIFF in the scene frame's projection.
pub fn write_geotiff(
    path: &Path,
    grid: &Dem,
    values: &[f32],
    frame: &GeoFrame,
) -> Result<(), OutputError> {
    if values.len() != grid.nx * grid.ny {
        return Err(fail(
            path,
            format!("{} values for a {}×{} grid", values.len(), grid.nx, grid.ny),
        ));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(path, e))?;
    }
    let nodata = -9999.0f32;
    // GeoTIFF rows run from the north.
    let mut data = Vec::with_capacity(values.len());
    for j in (0..grid.ny).rev() {
        for i in 0..grid.nx {
            let v = values[j * grid.nx + i];
            data.push(if v.is_finite() { v } else { nodata });
        }
    }
    let driver = DriverManager::get_driver_by_name("GTiff").map_err(|e| fail(path, e))?;
    let opts = gdal::raster::RasterCreationOptions::from_iter(["COMPRESS=DEFLATE", "PREDICTOR=3"]);
    let mut ds = driver
        .create_with_band_type_with_options::<f32, _>(path, grid.nx, grid.ny, 1, &opts)
        .map_err(|e| fail(path, e))?;
    let top = grid.y0_m + grid.ny as f64 * grid.cell_m;
    ds.set_geo_transform(&[grid.x0_m, grid.cell_m, 0.0, top, 0.0, -grid.cell_m])
        .map_err(|e| fail(path, e))?;
    ds.set_spatial_ref(&frame_srs(frame).map_err(|e| fail(path, e))?)
        .map_err(|e| fail(path, e))?;
    let mut band = ds.rasterband(1).map_err(|e| fail(path, e))?;
    band.set_no_data_value(Some(nodata as f64))
        .map_err(|e| fail(path, e))?;
    let mut buf = gdal::raster::Buffer::new((grid.nx, grid.ny), data);
    band.write((0, 0), (grid.nx, grid.ny), &mut buf)
        .map_err(|e| fail(path, e))?;
    Ok(())
}

/// The cells of `grid` where `inside(value)` holds, merged into polygons in the frame (runs of
/// cells along rows first, then a union).
pub fn cells_to_polygons(
    grid: &Dem,
    values: &[f32],
    inside: impl Fn(f32) -> bool,
) -> MultiPolygon<f64> {
    let mut rects: Vec<Polygon<f64>> = Vec::new();
    let c = grid.cell_m;
    for j in 0..grid.ny {
        let mut i = 0;
        while i < grid.nx {
            if !inside(values[j * grid.nx + i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < grid.nx && inside(values[j * grid.nx + i]) {
                i += 1;
            }
            let (x0, x1) = (grid.x0_m + start as f64 * c, grid.x0_m + i as f64 * c);
            let (y0, y1) = (grid.y0_m + j as f64 * c, grid.y0_m + (j + 1) as f64 * c);
            rects.push(Polygon::new(
                LineString::from(vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]),
                vec![],
            ));
        }
    }
    if rects.is_empty() {
        return MultiPolygon::new(vec![]);
    }
    geo::unary_union(rects.iter())
}

/// Write polygons (frame metres) with one real attribute each to a vector file in WGS84;
/// the driver follows the extension (`.geojson`/`.json`, `.gpkg`, `.shp`).
pub fn write_polygons(
    path: &Path,
    layer: &str,
    polygons: &[(Polygon<f64>, f64)],
    attribute: &str,
    frame: &GeoFrame,
) -> Result<(), OutputError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    let driver = match ext.as_str() {
        "geojson" | "json" => "GeoJSON",
        "gpkg" => "GPKG",
        "shp" => "ESRI Shapefile",
        _ => return Err(fail(path, "the extension must be .geojson, .gpkg or .shp")),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(path, e))?;
    }
    let _ = std::fs::remove_file(path);
    let mut ds = DriverManager::get_driver_by_name(driver)
        .map_err(|e| fail(path, e))?
        .create_vector_only(path)
        .map_err(|e| fail(path, e))?;
    let srs = wgs84().map_err(|e| fail(path, e))?;
    let opts: &[&str] = if driver == "GeoJSON" {
        &["COORDINATE_PRECISION=8"]
    } else {
        &[]
    };
    let lyr = ds
        .create_layer(LayerOptions {
            name: layer,
            srs: Some(&srs),
            ty: OGRwkbGeometryType::wkbPolygon,
            options: Some(opts),
        })
        .map_err(|e| fail(path, e))?;
    lyr.create_defn_fields(&[
        ("area_m2", OGRFieldType::OFTReal),
        (attribute, OGRFieldType::OFTReal),
    ])
    .map_err(|e| fail(path, e))?;
    let to_ll = |ls: &LineString<f64>| -> LineString<f64> {
        ls.coords()
            .map(|c| {
                let p = frame.to_wgs84(*c);
                Coord { x: p.lon, y: p.lat }
            })
            .collect()
    };
    for (poly, value) in polygons {
        use geo::Area;
        let area = poly.unsigned_area();
        let ll = Polygon::new(
            to_ll(poly.exterior()),
            poly.interiors().iter().map(to_ll).collect(),
        );
        let mut f = Feature::new(lyr.defn()).map_err(|e| fail(path, e))?;
        f.set_geometry(ll.to_gdal().map_err(|e| fail(path, e))?)
            .map_err(|e| fail(path, e))?;
        f.set_field(0, &FieldValue::RealValue(area))
            .map_err(|e| fail(path, e))?;
        f.set_field(1, &FieldValue::RealValue(*value))
            .map_err(|e| fail(path, e))?;
        f.create(&lyr).map_err(|e| fail(path, e))?;
    }
    Ok(())
}
