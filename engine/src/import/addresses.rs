//! Address layers (`kind = "addresses"`, the scene's path already resolved): read through GDAL into gazetteer places, with the same
//! field mapping, constants and CRS handling as every other layer, in WGS84.

use std::path::Path;

use gdal::vector::LayerAccess;
use geo::Centroid;

use super::ImportError;
use super::reader::{Reader, geometry_name};
use super::vector::{layer_crs, open_dataset, pick_layer};
use crate::address::{Place, PlaceKind, StreetLine};
use crate::crs::Reprojector;
use crate::geo_frame::{GeoFrame, LonLat};
use crate::scene::LayerSpec;

fn list(text: Option<String>) -> Vec<String> {
    text.map(|t| {
        t.split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

/// What one address layer gave.
#[derive(Debug, Default)]
pub struct AddressLayer {
    /// Its places.
    pub places: Vec<Place>,
    /// The lines of its street features, for reverse geocoding.
    pub streets: Vec<StreetLine>,
    /// Things the reader skipped or assumed, one line each.
    pub warnings: Vec<String>,
}

/// Read one address layer. A feature with a street and a house number is an address, one with
/// a name a feature (of its `category`, or `place`), one with only a street a street; a
/// street drawn as a line also gives its line to reverse geocoding, and the segments of one
/// street (same name) make one street place. A feature with none of these is counted in the
/// warnings and skipped. Polygons stand at their centroid.
pub fn read_address_layer(path: &Path, spec: &LayerSpec) -> Result<AddressLayer, ImportError> {
    let file = spec.file.get_ref().display().to_string();
    let ferr = |message: String| ImportError::File {
        file: file.clone(),
        message,
    };
    let ds = open_dataset(path).map_err(ferr)?;
    let mut layer = pick_layer(&ds, spec).map_err(ferr)?;
    let src = layer_crs(&layer, spec).map_err(ferr)?;
    // The frame only passes WGS84 through: places are kept in longitude/latitude.
    let frame = GeoFrame::new(LonLat::new(0.0, 0.0));
    let reproject = Reprojector::new(&src, &frame).map_err(|e| ferr(e.to_string()))?;
    let field_names: Vec<String> = layer.defn().fields().map(|f| f.name()).collect();
    let reader = Reader::new(*spec.kind.get_ref(), spec, &field_names).map_err(ferr)?;
    let base = path
        .file_name()
        .map_or(file.clone(), |n| n.to_string_lossy().into_owned());
    let mut out = AddressLayer::default();
    let mut skipped = 0usize;
    for (n, f) in layer.features().enumerate() {
        let raw_id = reader.text(&f, "id").ok().flatten();
        let fail = |message: String| ImportError::Feature {
            file: file.clone(),
            feature: match &raw_id {
                Some(i) => format!("#{n} (id {i})"),
                None => format!("#{n}"),
            },
            message,
        };
        let text = |name: &str| reader.text(&f, name).map_err(&fail);
        let geom = f
            .geometry()
            .ok_or_else(|| fail("has no geometry (a CSV needs lon/lat or WKT columns)".into()))?
            .to_geo()
            .map_err(|e| fail(format!("unreadable geometry: {e}")))?;
        let centre = match &geom {
            geo::Geometry::Point(p) => Some(*p),
            other => other.centroid(),
        }
        .ok_or_else(|| fail(format!("empty {}", geometry_name(&geom))))?;
        // Every vertex (for lines) and the centre, in one reprojection.
        let lines: Vec<&geo::LineString<f64>> = match &geom {
            geo::Geometry::LineString(l) => vec![l],
            geo::Geometry::MultiLineString(m) => m.0.iter().collect(),
            _ => Vec::new(),
        };
        let (mut xs, mut ys): (Vec<f64>, Vec<f64>) = lines
            .iter()
            .flat_map(|l| l.0.iter().map(|c| (c.x, c.y)))
            .chain(std::iter::once((centre.x(), centre.y())))
            .unzip();
        reproject
            .to_wgs84_in_place(&mut xs, &mut ys)
            .map_err(|e| fail(e.to_string()))?;
        let mut lonlat = xs.into_iter().zip(ys).map(|(x, y)| LonLat::new(x, y));
        let line_points: Vec<Vec<LonLat>> = lines
            .iter()
            .map(|l| lonlat.by_ref().take(l.0.len()).collect())
            .collect();
        let at = lonlat.next().unwrap_or(LonLat::new(centre.x(), centre.y()));
        let mut streets = list(non_empty(text("street")?));
        streets.extend(list(text("street_alt")?));
        let mut names = list(non_empty(text("name")?));
        names.extend(list(text("name_alt")?));
        let mut cities = list(non_empty(text("city")?));
        cities.extend(list(text("city_alt")?));
        let housenumber = non_empty(text("housenumber")?);
        let kind = if housenumber.is_some() && !streets.is_empty() {
            PlaceKind::Address
        } else if !names.is_empty() {
            PlaceKind::Feature(non_empty(text("category")?).unwrap_or_else(|| "place".into()))
        } else if !streets.is_empty() {
            if let Some(main) = streets.first() {
                for pts in line_points.into_iter().filter(|p| p.len() >= 2) {
                    out.streets.push(StreetLine {
                        name: main.clone(),
                        points: pts,
                    });
                }
                // One place per street: later segments only add names.
                if let Some(known) = out
                    .places
                    .iter_mut()
                    .find(|p| p.kind == PlaceKind::Street && p.streets.first() == Some(main))
                {
                    for s in streets {
                        if !known.streets.contains(&s) {
                            known.streets.push(s);
                        }
                    }
                    continue;
                }
            }
            PlaceKind::Street
        } else {
            skipped += 1;
            continue;
        };
        out.places.push(Place {
            id: format!(
                "{base}:{}",
                raw_id.clone().unwrap_or_else(|| (n + 1).to_string())
            ),
            kind,
            names,
            streets,
            housenumber,
            postcode: non_empty(text("postcode")?),
            district: non_empty(text("district")?),
            cities,
            at,
        });
    }
    if skipped > 0 {
        out.warnings.push(format!(
            "{file}: {skipped} features have no street, house number or name and were skipped"
        ));
    }
    Ok(out)
}
