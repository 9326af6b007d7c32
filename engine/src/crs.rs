//! Reprojection from any coordinate reference system GDAL knows into the scene frame.
//!
//! Data arrive in many CRSs (WGS84, UTM, China's CGCS2000 Gauss–Krüger zones such as EPSG:4547,
//! national grids). GDAL/PROJ takes them to WGS84 longitude/latitude, and the scene's
//! [`GeoFrame`] takes WGS84 to local metres. That is the only path from outside coordinates
//! into the world, so every importer shares it.

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use geo::{Coord, MapCoords};

use crate::geo_frame::{GeoFrame, LonLat};

/// A failure to understand or apply a coordinate reference system.
#[derive(Debug, thiserror::Error)]
pub enum CrsError {
    /// The definition is not a CRS GDAL understands.
    #[error("unknown coordinate reference system '{definition}': {reason}")]
    Unknown {
        /// What was given (e.g. `EPSG:4547`, WKT, PROJ string).
        definition: String,
        /// GDAL's explanation.
        reason: String,
    },
    /// A coordinate could not be transformed (outside the CRS's domain, NaN, …).
    #[error("cannot transform coordinates from {from}: {reason}")]
    Transform {
        /// The source CRS's name.
        from: String,
        /// GDAL's explanation.
        reason: String,
    },
}

/// Parse a CRS definition: `EPSG:n`, WKT, PROJ string or anything `OSRSetFromUserInput` takes.
pub fn parse_crs(definition: &str) -> Result<SpatialRef, CrsError> {
    let mut srs = SpatialRef::from_definition(definition).map_err(|e| CrsError::Unknown {
        definition: definition.to_string(),
        reason: e.to_string(),
    })?;
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    Ok(srs)
}

/// A human-readable name for a CRS: `EPSG:4326 (WGS 84)` where an authority code is known.
pub fn describe_crs(srs: &SpatialRef) -> String {
    let name = srs.name().unwrap_or_else(|| "unnamed CRS".to_string());
    match (srs.auth_name(), srs.auth_code()) {
        (Some(auth), Ok(code)) => format!("{auth}:{code} ({name})"),
        _ => name,
    }
}

/// Transforms coordinates of one source CRS into the scene frame (metres).
pub struct Reprojector {
    /// `None` when the source already is WGS84 longitude/latitude.
    to_wgs84: Option<CoordTransform>,
    frame: GeoFrame,
    source_name: String,
}

impl Reprojector {
    /// A reprojector from `source` into `frame`.
    pub fn new(source: &SpatialRef, frame: &GeoFrame) -> Result<Self, CrsError> {
        let mut source = source.clone();
        source.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        let source_name = describe_crs(&source);
        let wgs84 = wgs84()?;
        let is_wgs84 = source.is_geographic()
            && matches!(
                (source.auth_name().as_deref(), source.auth_code()),
                (Some("EPSG"), Ok(4326))
            );
        let to_wgs84 = if is_wgs84 {
            None
        } else {
            Some(
                CoordTransform::new(&source, &wgs84).map_err(|e| CrsError::Transform {
                    from: source_name.clone(),
                    reason: e.to_string(),
                })?,
            )
        };
        Ok(Self {
            to_wgs84,
            frame: frame.clone(),
            source_name,
        })
    }

    /// The source CRS, as [`describe_crs`] names it.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Transform source coordinates in place into WGS84 longitude/latitude, checking that each
    /// lands on the globe.
    pub fn to_wgs84_in_place(&self, xs: &mut [f64], ys: &mut [f64]) -> Result<(), CrsError> {
        debug_assert_eq!(xs.len(), ys.len());
        let n = xs.len().min(ys.len());
        let (xs, ys) = (&mut xs[..n], &mut ys[..n]);
        if let Some(t) = &self.to_wgs84 {
            t.transform_coords(xs, ys, &mut [])
                .map_err(|e| CrsError::Transform {
                    from: self.source_name.clone(),
                    reason: e.to_string(),
                })?;
        }
        for (x, y) in xs.iter().zip(ys.iter()) {
            if !LonLat::new(*x, *y).is_valid() {
                return Err(CrsError::Transform {
                    from: self.source_name.clone(),
                    reason: format!(
                        "({x}, {y}) is not a valid longitude/latitude after reprojection"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Transform source coordinates in place into local metres.
    pub fn transform_in_place(&self, xs: &mut [f64], ys: &mut [f64]) -> Result<(), CrsError> {
        self.to_wgs84_in_place(xs, ys)?;
        for (x, y) in xs.iter_mut().zip(ys.iter_mut()) {
            let c = self.frame.to_local(LonLat::new(*x, *y));
            *x = c.x;
            *y = c.y;
        }
        Ok(())
    }

    /// One coordinate into local metres.
    pub fn transform(&self, c: Coord<f64>) -> Result<Coord<f64>, CrsError> {
        let (mut x, mut y) = ([c.x], [c.y]);
        self.transform_in_place(&mut x, &mut y)?;
        Ok(Coord { x: x[0], y: y[0] })
    }

    /// A whole geometry into local metres (one GDAL call for all its coordinates).
    pub fn transform_geometry(
        &self,
        g: &geo::Geometry<f64>,
    ) -> Result<geo::Geometry<f64>, CrsError> {
        use geo::CoordsIter;
        let (mut xs, mut ys): (Vec<f64>, Vec<f64>) = g.coords_iter().map(|c| (c.x, c.y)).unzip();
        self.transform_in_place(&mut xs, &mut ys)?;
        // map_coords visits coordinates in the same order as coords_iter.
        let next = std::cell::Cell::new(0usize);
        let (xs, ys) = (&xs, &ys);
        Ok(g.map_coords(|c| {
            let i = next.get();
            next.set(i + 1);
            match (xs.get(i), ys.get(i)) {
                (Some(&x), Some(&y)) => Coord { x, y },
                _ => c,
            }
        }))
    }
}

/// WGS84 longitude/latitude with traditional GIS axis order.
pub fn wgs84() -> Result<SpatialRef, CrsError> {
    parse_crs("EPSG:4326")
}
