//! Rasters (a DEM) through GDAL, resampled onto a grid in the scene frame.

use std::path::Path;

use bevy::prelude::Resource;
use gdal::Dataset;
use gdal::spatial_ref::CoordTransform;

use super::ImportError;
use crate::crs::{describe_crs, parse_crs, wgs84};
use crate::geo_frame::GeoFrame;

/// A regular grid in the scene frame: cell (i, j) has its centre at
/// `(x0_m + (i + ½)·cell_m, y0_m + (j + ½)·cell_m)`; `j` grows northwards.
#[derive(serde::Serialize, serde::Deserialize, Resource, Clone, Debug, PartialEq)]
pub struct Dem {
    /// West edge, m.
    pub x0_m: f64,
    /// South edge, m.
    pub y0_m: f64,
    /// Cell size, m.
    pub cell_m: f64,
    /// Columns.
    pub nx: usize,
    /// Rows.
    pub ny: usize,
    /// Elevation per cell, m, row-major from the south-west; NaN where the source had no data.
    pub elevation_m: Vec<f32>,
    /// The source CRS, for reports.
    pub source_crs: String,
}

impl Dem {
    /// Elevation of cell (i, j), NaN outside or where unknown.
    pub fn at(&self, i: usize, j: usize) -> f32 {
        if i < self.nx && j < self.ny {
            self.elevation_m[j * self.nx + i]
        } else {
            f32::NAN
        }
    }

    /// Bilinear elevation at a point, m; `None` outside the grid or on no-data.
    pub fn sample(&self, x_m: f64, y_m: f64) -> Option<f64> {
        let fx = (x_m - self.x0_m) / self.cell_m - 0.5;
        let fy = (y_m - self.y0_m) / self.cell_m - 0.5;
        if !(fx > -0.5 && fy > -0.5 && fx < self.nx as f64 - 0.5 && fy < self.ny as f64 - 0.5) {
            return None;
        }
        let i0 = fx.floor().clamp(0.0, (self.nx - 1) as f64) as usize;
        let j0 = fy.floor().clamp(0.0, (self.ny - 1) as f64) as usize;
        let i1 = (i0 + 1).min(self.nx - 1);
        let j1 = (j0 + 1).min(self.ny - 1);
        let tx = (fx - i0 as f64).clamp(0.0, 1.0);
        let ty = (fy - j0 as f64).clamp(0.0, 1.0);
        let v = |i, j| self.at(i, j) as f64;
        let z = v(i0, j0) * (1.0 - tx) * (1.0 - ty)
            + v(i1, j0) * tx * (1.0 - ty)
            + v(i0, j1) * (1.0 - tx) * ty
            + v(i1, j1) * tx * ty;
        z.is_finite().then_some(z)
    }

    /// The grid's extent: `(min_x, min_y, max_x, max_y)`, m.
    pub fn extent(&self) -> (f64, f64, f64, f64) {
        (
            self.x0_m,
            self.y0_m,
            self.x0_m + self.nx as f64 * self.cell_m,
            self.y0_m + self.ny as f64 * self.cell_m,
        )
    }

    /// Minimum and maximum of the known elevations, m.
    pub fn range_m(&self) -> Option<(f32, f32)> {
        let mut it = self.elevation_m.iter().copied().filter(|v| v.is_finite());
        let first = it.next()?;
        Some(it.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v))))
    }
}

/// Bilinear sample of a source raster at fractional pixel coordinates (pixel centres at +0.5).
fn sample_source(data: &[f64], w: usize, h: usize, px: f64, py: f64, nodata: Option<f64>) -> f64 {
    let fx = px - 0.5;
    let fy = py - 0.5;
    if !(fx >= -0.5 && fy >= -0.5 && fx <= w as f64 - 0.5 && fy <= h as f64 - 0.5) {
        return f64::NAN;
    }
    let i0 = fx.floor().clamp(0.0, (w - 1) as f64) as usize;
    let j0 = fy.floor().clamp(0.0, (h - 1) as f64) as usize;
    let i1 = (i0 + 1).min(w - 1);
    let j1 = (j0 + 1).min(h - 1);
    let tx = (fx - i0 as f64).clamp(0.0, 1.0);
    let ty = (fy - j0 as f64).clamp(0.0, 1.0);
    let v = |i: usize, j: usize| {
        let z = data[j * w + i];
        if nodata.is_some_and(|nd| z == nd) || !z.is_finite() {
            f64::NAN
        } else {
            z
        }
    };
    v(i0, j0) * (1.0 - tx) * (1.0 - ty)
        + v(i1, j0) * tx * (1.0 - ty)
        + v(i0, j1) * (1.0 - tx) * ty
        + v(i1, j1) * tx * ty
}

/// Read band `band` of a raster and resample it bilinearly onto a grid in the scene frame that
/// covers the raster's extent, at `cell_m` or, by default, the source's own resolution.
pub fn load_dem(
    path: &Path,
    crs_override: Option<&str>,
    band: usize,
    cell_m: Option<f64>,
    frame: &GeoFrame,
) -> Result<Dem, ImportError> {
    let file = path.display().to_string();
    let err = |message: String| ImportError::File {
        file: file.clone(),
        message,
    };
    let ds =
        Dataset::open(path).map_err(|e| err(format!("GDAL cannot open it as a raster: {e}")))?;
    if ds.raster_count() == 0 {
        return Err(err(
            "has no raster bands: a DEM must be a GeoTIFF or another raster GDAL reads".into(),
        ));
    }
    let src = match crs_override {
        Some(d) => parse_crs(d).map_err(|e| err(e.to_string()))?,
        None => {
            let mut s = ds.spatial_ref().map_err(|_| {
                err("the raster has no CRS; give `crs` in the scene's [dem] table".into())
            })?;
            s.set_axis_mapping_strategy(
                gdal::spatial_ref::AxisMappingStrategy::TraditionalGisOrder,
            );
            s
        }
    };
    let gt = ds
        .geo_transform()
        .map_err(|e| err(format!("the raster has no geotransform: {e}")))?;
    if gt[2] != 0.0 || gt[4] != 0.0 {
        return Err(err(
            "rotated rasters are not supported; warp it north-up first (gdalwarp)".into(),
        ));
    }
    let count = ds.raster_count();
    if band == 0 || band > count {
        return Err(err(format!(
            "band {band} does not exist (the raster has {count})"
        )));
    }
    let rb = ds.rasterband(band).map_err(|e| err(e.to_string()))?;
    let (w, h) = rb.size();
    if w == 0 || h == 0 {
        return Err(err("the raster is empty".into()));
    }
    let nodata = rb.no_data_value();
    let data = rb
        .read_as::<f64>((0, 0), (w, h), (w, h), None)
        .map_err(|e| err(format!("cannot read band {band}: {e}")))?;
    let (_, data) = data.into_shape_and_vec();

    // Source → local for the extent (edges sampled, since projections bend them).
    let to_local = crate::crs::Reprojector::new(&src, frame).map_err(|e| err(e.to_string()))?;
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    let steps = 16;
    for k in 0..=steps {
        let t = k as f64 / steps as f64;
        for (u, v) in [(t, 0.0), (t, 1.0), (0.0, t), (1.0, t)] {
            xs.push(gt[0] + u * w as f64 * gt[1]);
            ys.push(gt[3] + v * h as f64 * gt[5]);
        }
    }
    to_local
        .transform_in_place(&mut xs, &mut ys)
        .map_err(|e| err(e.to_string()))?;
    let (minx, maxx) = xs
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let (miny, maxy) = ys
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &y| (a.min(y), b.max(y)));
    let native_cell = ((maxx - minx) / w as f64).min((maxy - miny) / h as f64);
    let cell = cell_m.unwrap_or(native_cell);
    if !(cell.is_finite() && cell > 0.0) {
        return Err(err(format!(
            "cannot derive a cell size from the raster (got {cell} m)"
        )));
    }
    let nx = ((maxx - minx) / cell).round().max(1.0) as usize;
    let ny = ((maxy - miny) / cell).round().max(1.0) as usize;
    if nx.saturating_mul(ny) > 200_000_000 {
        return Err(err(format!(
            "a {nx} × {ny} grid at {cell} m is too large; set a coarser `cell_m`"
        )));
    }
    // Local cell centres → WGS84 → source → pixel.
    let mut cx = Vec::with_capacity(nx * ny);
    let mut cy = Vec::with_capacity(nx * ny);
    for j in 0..ny {
        for i in 0..nx {
            let ll = frame.to_wgs84(geo::Coord {
                x: minx + (i as f64 + 0.5) * cell,
                y: miny + (j as f64 + 0.5) * cell,
            });
            cx.push(ll.lon);
            cy.push(ll.lat);
        }
    }
    let w84 = wgs84().map_err(|e| err(e.to_string()))?;
    let back = CoordTransform::new(&w84, &src)
        .map_err(|e| err(format!("cannot transform to {}: {e}", describe_crs(&src))))?;
    back.transform_coords(&mut cx, &mut cy, &mut [])
        .map_err(|e| err(format!("cannot transform to {}: {e}", describe_crs(&src))))?;
    let elevation_m: Vec<f32> = cx
        .iter()
        .zip(&cy)
        .map(|(&x, &y)| {
            let px = (x - gt[0]) / gt[1];
            let py = (y - gt[3]) / gt[5];
            sample_source(&data, w, h, px, py, nodata) as f32
        })
        .collect();
    Ok(Dem {
        x0_m: minx,
        y0_m: miny,
        cell_m: cell,
        nx,
        ny,
        elevation_m,
        source_crs: describe_crs(&src),
    })
}
