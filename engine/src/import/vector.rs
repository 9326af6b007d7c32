//! Vector layers through GDAL into model entities.

use std::collections::BTreeMap;

use bevy::math::DVec2;
use bevy::prelude::*;
use gdal::Dataset;
use gdal::vector::LayerAccess;
use geo::{Area, BoundingRect, Centroid, Euclidean, Length};

use super::ImportError;
use super::fields::LayerKind;
use super::raster::Dem;
use super::reader::{Reader, geometry_name, non_negative, positive};
use crate::crs::{Reprojector, describe_crs, parse_crs};
use crate::geo_frame::GeoFrame;
use crate::model::*;
use crate::scene::{LayerSpec, Scene};

/// Ids of network nodes loaded so far, so links can refer to them.
#[derive(Default, Debug)]
pub struct NodeIds {
    /// Intersections by id.
    pub intersections: BTreeMap<String, (Entity, DVec2)>,
    /// Manholes and outfalls by id.
    pub drainage: BTreeMap<String, (Entity, DVec2, f64)>,
}

/// What one layer produced.
#[derive(Debug, Clone)]
pub struct LayerReport {
    /// Layer name.
    pub name: String,
    /// Its kind.
    pub kind: LayerKind,
    /// Source features read.
    pub features: usize,
    /// Entities spawned (a two-way road gives two).
    pub entities: usize,
    /// The source CRS.
    pub crs: String,
    /// Extent in the scene frame: min x, min y, max x, max y, m.
    pub extent_m: Option<[f64; 4]>,
    /// Things the import had to assume, one line each.
    pub warnings: Vec<String>,
}

/// Square metres of floor per occupant when the data give none (a typical planning norm).
fn floor_area_per_person_m2(u: BuildingUse) -> f64 {
    match u {
        BuildingUse::Residential => 35.0,
        BuildingUse::Commercial => 20.0,
        BuildingUse::Industrial => 60.0,
        BuildingUse::Public => 15.0,
        BuildingUse::Other => 50.0,
    }
}

/// Storey height assumed when a building gives floors but no height, m.
const STOREY_M: f64 = 3.0;

/// Open a vector dataset. A CSV file's coordinates are read from columns named `lon`/`lat`
/// (also `lng`, `longitude`/`latitude`, `x`/`y`), or from a `WKT` column.
pub(super) fn open_dataset(path: &std::path::Path) -> Result<Dataset, String> {
    let csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let options: &[&str] = if csv {
        &[
            "X_POSSIBLE_NAMES=lon,lng,longitude,x",
            "Y_POSSIBLE_NAMES=lat,latitude,y",
            "KEEP_GEOM_COLUMNS=NO",
        ]
    } else {
        &[]
    };
    let opts = gdal::DatasetOptions {
        open_flags: gdal::GdalOpenFlags::GDAL_OF_VECTOR,
        open_options: Some(options),
        ..Default::default()
    };
    Dataset::open_ex(path, opts).map_err(|e| format!("GDAL cannot open it: {e}"))
}

/// The spec's layer of `ds` (its first when the spec names none).
pub(super) fn pick_layer<'d>(
    ds: &'d Dataset,
    spec: &LayerSpec,
) -> Result<gdal::vector::Layer<'d>, String> {
    match &spec.layer {
        Some(n) => ds.layer_by_name(n.get_ref()).map_err(|_| {
            let names: Vec<String> = ds.layers().map(|l| l.name()).collect();
            format!("no layer '{}' (layers: {})", n.get_ref(), names.join(", "))
        }),
        None => ds.layer(0).map_err(|e| format!("no vector layer: {e}")),
    }
}

/// The layer's CRS: the spec's override, else the layer's own.
pub(super) fn layer_crs(
    layer: &gdal::vector::Layer<'_>,
    spec: &LayerSpec,
) -> Result<gdal::spatial_ref::SpatialRef, String> {
    match &spec.crs {
        Some(c) => parse_crs(c.get_ref()).map_err(|e| e.to_string()),
        None => layer
            .spatial_ref()
            .ok_or_else(|| "the layer has no CRS; give `crs` in the scene's [[layer]]".into()),
    }
}

/// Load one layer into `world`.
pub fn load_layer(
    scene: &Scene,
    spec: &LayerSpec,
    frame: &GeoFrame,
    world: &mut World,
    nodes: &mut NodeIds,
) -> Result<LayerReport, ImportError> {
    let path = scene.dataset(spec.file.get_ref());
    let file = spec.file.get_ref().display().to_string();
    let ferr = |message: String| ImportError::File {
        file: file.clone(),
        message,
    };
    if *spec.kind.get_ref() == LayerKind::Addresses {
        return Err(ferr(
            "address layers are read by the gazetteer (`citytwin locate`), not loaded into the world"
                .into(),
        ));
    }
    let ds = open_dataset(&path).map_err(ferr)?;
    let mut layer = pick_layer(&ds, spec).map_err(ferr)?;
    let src = layer_crs(&layer, spec).map_err(ferr)?;
    let reproject = Reprojector::new(&src, frame).map_err(|e| ferr(e.to_string()))?;
    let field_names: Vec<String> = layer.defn().fields().map(|f| f.name()).collect();
    let kind = *spec.kind.get_ref();
    let reader = Reader::new(kind, spec, &field_names).map_err(ferr)?;
    let layer_name = spec.name.get_ref().clone();
    let dem = world.get_resource::<Dem>().cloned();

    let mut report = LayerReport {
        name: layer_name.clone(),
        kind,
        features: 0,
        entities: 0,
        crs: describe_crs(&src),
        extent_m: None,
        warnings: Vec::new(),
    };
    let mut missing_height = 0usize;
    let mut estimated_occupants = 0usize;
    let mut seen_ids = BTreeMap::new();
    for (n, f) in layer.features().enumerate() {
        report.features += 1;
        let raw_id = reader.text(&f, "id").ok().flatten();
        let id = raw_id
            .clone()
            .unwrap_or_else(|| f.fid().map_or(n.to_string(), |x| x.to_string()));
        let feature_name = match &raw_id {
            Some(i) => format!("#{n} (id {i})"),
            None => format!("#{n}"),
        };
        let fail = |message: String| ImportError::Feature {
            file: file.clone(),
            feature: feature_name.clone(),
            message,
        };
        if let Some(prev) = seen_ids.insert(id.clone(), n) {
            return Err(fail(format!("id '{id}' is also used by feature #{prev}")));
        }
        let geom = match f.geometry() {
            Some(g) => {
                let g = g
                    .to_geo()
                    .map_err(|e| fail(format!("unreadable geometry: {e}")))?;
                Some(
                    reproject
                        .transform_geometry(&g)
                        .map_err(|e| fail(e.to_string()))?,
                )
            }
            None => None,
        };
        if let Some(r) = geom.as_ref().and_then(|g| g.bounding_rect()) {
            let e = report
                .extent_m
                .get_or_insert([f64::MAX, f64::MAX, f64::MIN, f64::MIN]);
            e[0] = e[0].min(r.min().x);
            e[1] = e[1].min(r.min().y);
            e[2] = e[2].max(r.max().x);
            e[3] = e[3].max(r.max().y);
        }
        let fid = |id: String| FeatureId {
            layer: layer_name.clone(),
            id,
        };
        let point = |g: &Option<geo::Geometry<f64>>| -> Result<DVec2, ImportError> {
            match g {
                Some(geo::Geometry::Point(p)) => Ok(DVec2::new(p.x(), p.y())),
                Some(geo::Geometry::MultiPoint(mp)) if mp.0.len() == 1 => {
                    Ok(DVec2::new(mp.0[0].x(), mp.0[0].y()))
                }
                Some(other) => Err(fail(format!(
                    "{} layers need points, got {}",
                    kind.as_str(),
                    geometry_name(other)
                ))),
                None => Err(fail("has no geometry".into())),
            }
        };
        let line = |g: &Option<geo::Geometry<f64>>| -> Result<geo::LineString<f64>, ImportError> {
            match g {
                Some(geo::Geometry::LineString(l)) if l.0.len() >= 2 => Ok(l.clone()),
                Some(geo::Geometry::MultiLineString(ml))
                    if ml.0.len() == 1 && ml.0[0].0.len() >= 2 =>
                {
                    Ok(ml.0[0].clone())
                }
                Some(other) => Err(fail(format!(
                    "{} layers need single lines of 2+ points, got {}",
                    kind.as_str(),
                    geometry_name(other)
                ))),
                None => Err(fail("has no geometry".into())),
            }
        };
        let ground = |p: DVec2| dem.as_ref().and_then(|d| d.sample(p.x, p.y));
        match kind {
            // Refused before the layer was opened.
            LayerKind::Addresses => continue,
            LayerKind::Intersections => {
                let p = point(&geom)?;
                let signal = match reader.text(&f, "signal").map_err(&fail)? {
                    Some(s) if !s.trim().is_empty() => {
                        let offset = reader
                            .number(&f, "signal_offset_s")
                            .map_err(&fail)?
                            .unwrap_or(0.0);
                        Some(
                            SignalProgram::parse(&s, offset)
                                .map_err(|m| fail(format!("`signal`: {m}")))?,
                        )
                    }
                    _ => None,
                };
                let e = world
                    .spawn((
                        Kind(EntityKind::Intersection),
                        fid(id.clone()),
                        Position {
                            xy_m: p,
                            z_m: ground(p).unwrap_or(0.0),
                        },
                        Intersection { signal },
                    ))
                    .id();
                nodes.intersections.insert(id, (e, p));
                report.entities += 1;
            }
            LayerKind::Roads => {
                let l = line(&geom)?;
                let lanes = positive("lanes", reader.number(&f, "lanes").map_err(&fail)?)
                    .map_err(&fail)?
                    .unwrap_or(1.0);
                if lanes.fract() != 0.0 || lanes > 16.0 {
                    return Err(fail(format!(
                        "`lanes` must be a whole number from 1 to 16, got {lanes}"
                    )));
                }
                let speed = positive(
                    "speed_limit_mps",
                    reader.number(&f, "speed_limit_mps").map_err(&fail)?,
                )
                .map_err(&fail)?
                .unwrap_or(50.0 / 3.6);
                let width = positive(
                    "lane_width_m",
                    reader.number(&f, "lane_width_m").map_err(&fail)?,
                )
                .map_err(&fail)?
                .unwrap_or(3.2);
                let oneway = reader.bool(&f, "oneway").map_err(&fail)?.unwrap_or(false);
                let name = reader.text(&f, "name").map_err(&fail)?.unwrap_or_default();
                let end_node = |key: &str,
                                c: geo::Coord<f64>|
                 -> Result<Option<Entity>, ImportError> {
                    if let Some(nid) = reader.text(&f, key).map_err(&fail)? {
                        return nodes
                            .intersections
                            .get(&nid)
                            .map(|n| Some(n.0))
                            .ok_or_else(|| fail(format!("`{key}` names intersection '{nid}', which no intersections layer has")));
                    }
                    // Snap to an intersection within 1 m of the end point.
                    Ok(nodes
                        .intersections
                        .values()
                        .find(|(_, p)| p.distance(DVec2::new(c.x, c.y)) <= 1.0)
                        .map(|n| n.0))
                };
                let from = end_node("from", l.0[0])?;
                let to = end_node("to", *l.0.last().expect("two points checked"))?;
                let length_m = Euclidean.length(&l);
                let road = |name: String, from, to| Road {
                    name,
                    lanes: lanes as u8,
                    speed_limit_mps: speed,
                    lane_width_m: width,
                    length_m,
                    from,
                    to,
                };
                world.spawn((
                    Kind(EntityKind::Road),
                    fid(id.clone()),
                    Shape::new(l.clone()),
                    road(name.clone(), from, to),
                ));
                report.entities += 1;
                if !oneway {
                    let mut back = l.clone();
                    back.0.reverse();
                    world.spawn((
                        Kind(EntityKind::Road),
                        fid(format!("-{id}")),
                        Shape::new(back),
                        road(name, to, from),
                    ));
                    report.entities += 1;
                }
            }
            LayerKind::Buildings => {
                let poly: geo::Geometry<f64> = match geom {
                    Some(g @ (geo::Geometry::Polygon(_) | geo::Geometry::MultiPolygon(_))) => g,
                    Some(other) => {
                        return Err(fail(format!(
                            "buildings need polygons, got {}",
                            geometry_name(&other)
                        )));
                    }
                    None => return Err(fail("has no geometry".into())),
                };
                let area = poly.unsigned_area();
                if area.is_nan() || area <= 0.0 {
                    return Err(fail("footprint has zero area".into()));
                }
                let floors = positive("floors", reader.number(&f, "floors").map_err(&fail)?)
                    .map_err(&fail)?;
                let height_m =
                    match positive("height_m", reader.number(&f, "height_m").map_err(&fail)?)
                        .map_err(&fail)?
                    {
                        Some(h) => h,
                        None => {
                            missing_height += 1;
                            floors.map_or(10.0, |fl| fl * STOREY_M)
                        }
                    };
                let use_ =
                    BuildingUse::parse(&reader.text(&f, "use").map_err(&fail)?.unwrap_or_default());
                let occupants =
                    match non_negative("occupants", reader.number(&f, "occupants").map_err(&fail)?)
                        .map_err(&fail)?
                    {
                        Some(o) => o.round() as u32,
                        None => {
                            estimated_occupants += 1;
                            let storeys = floors.unwrap_or((height_m / STOREY_M).round().max(1.0));
                            (area * storeys / floor_area_per_person_m2(use_)).round() as u32
                        }
                    };
                let c = poly
                    .centroid()
                    .map(|p| DVec2::new(p.x(), p.y()))
                    .unwrap_or_default();
                let ground_m = ground(c).unwrap_or(0.0);
                world.spawn((
                    Kind(EntityKind::Building),
                    fid(id),
                    Shape::new(poly),
                    Building {
                        height_m,
                        use_,
                        occupants,
                        ground_m,
                    },
                ));
                report.entities += 1;
            }
            LayerKind::Manholes | LayerKind::Outfalls => {
                let p = point(&geom)?;
                let invert_m = reader
                    .number(&f, "invert_m")
                    .map_err(&fail)?
                    .ok_or_else(|| fail("has no `invert_m`".into()))?;
                let e = if kind == LayerKind::Manholes {
                    let rim = match reader.number(&f, "rim_m").map_err(&fail)? {
                        Some(r) => r,
                        None => ground(p).ok_or_else(|| {
                            fail("has no `rim_m` and the scene's DEM does not cover it".into())
                        })?,
                    };
                    if rim < invert_m {
                        return Err(fail(format!(
                            "rim {rim} m is below the invert {invert_m} m"
                        )));
                    }
                    let area_m2 = positive("area_m2", reader.number(&f, "area_m2").map_err(&fail)?)
                        .map_err(&fail)?
                        .unwrap_or(1.0);
                    world
                        .spawn((
                            Kind(EntityKind::Manhole),
                            fid(id.clone()),
                            Position { xy_m: p, z_m: rim },
                            Manhole {
                                invert_m,
                                max_depth_m: rim - invert_m,
                                area_m2,
                                init_depth_m: 0.0,
                                surcharge_depth_m: 0.0,
                                ponded_area_m2: 0.0,
                            },
                        ))
                        .id()
                } else {
                    let z = ground(p).unwrap_or(invert_m);
                    world
                        .spawn((
                            Kind(EntityKind::Outfall),
                            fid(id.clone()),
                            Position { xy_m: p, z_m: z },
                            Outfall {
                                invert_m,
                                stage: OutfallStage::Free,
                                gated: false,
                            },
                        ))
                        .id()
                };
                if nodes
                    .drainage
                    .insert(id.clone(), (e, p, invert_m))
                    .is_some()
                {
                    return Err(fail(format!(
                        "drainage node id '{id}' is used by another manhole or outfall layer too"
                    )));
                }
                report.entities += 1;
            }
            LayerKind::Conduits => {
                let node = |key: &str| -> Result<(Entity, DVec2), ImportError> {
                    let nid = reader
                        .text(&f, key)
                        .map_err(&fail)?
                        .ok_or_else(|| fail(format!("has no `{key}` node")))?;
                    nodes.drainage.get(&nid).map(|n| (n.0, n.1)).ok_or_else(|| {
                        fail(format!(
                            "`{key}` names node '{nid}', which no manholes or outfalls layer has"
                        ))
                    })
                };
                let (from, pa) = node("from")?;
                let (to, pb) = node("to")?;
                if from == to {
                    return Err(fail("`from` and `to` are the same node".into()));
                }
                let l = match geom {
                    Some(_) => line(&geom)?,
                    None => geo::LineString::from(vec![(pa.x, pa.y), (pb.x, pb.y)]),
                };
                let shape_name = reader
                    .text(&f, "shape")
                    .map_err(&fail)?
                    .unwrap_or_else(|| "circular".into());
                let section = match shape_name.trim().to_ascii_lowercase().as_str() {
                    "circular" | "circle" => CrossSection::Circular {
                        diameter_m: positive(
                            "diameter_m",
                            reader.number(&f, "diameter_m").map_err(&fail)?,
                        )
                        .map_err(&fail)?
                        .ok_or_else(|| fail("a circular conduit needs `diameter_m`".into()))?,
                    },
                    "rectangular" | "rect_closed" | "box" => CrossSection::Rectangular {
                        width_m: positive("width_m", reader.number(&f, "width_m").map_err(&fail)?)
                            .map_err(&fail)?
                            .ok_or_else(|| fail("a rectangular conduit needs `width_m`".into()))?,
                        height_m: positive(
                            "height_m",
                            reader.number(&f, "height_m").map_err(&fail)?,
                        )
                        .map_err(&fail)?
                        .ok_or_else(|| fail("a rectangular conduit needs `height_m`".into()))?,
                    },
                    other => {
                        return Err(fail(format!(
                            "`shape` is '{other}'; supported: circular, rectangular"
                        )));
                    }
                };
                let manning_n =
                    positive("manning_n", reader.number(&f, "manning_n").map_err(&fail)?)
                        .map_err(&fail)?
                        .unwrap_or(0.013);
                let inlet_offset_m = non_negative(
                    "inlet_offset_m",
                    reader.number(&f, "inlet_offset_m").map_err(&fail)?,
                )
                .map_err(&fail)?
                .unwrap_or(0.0);
                let outlet_offset_m = non_negative(
                    "outlet_offset_m",
                    reader.number(&f, "outlet_offset_m").map_err(&fail)?,
                )
                .map_err(&fail)?
                .unwrap_or(0.0);
                let length_m = Euclidean.length(&l);
                world.spawn((
                    Kind(EntityKind::Conduit),
                    fid(id),
                    Shape::new(l),
                    Conduit {
                        inlet_offset_m,
                        outlet_offset_m,
                        ..Conduit::new(from, to, section, length_m, manning_n)
                    },
                ));
                report.entities += 1;
            }
            LayerKind::Sensors => {
                let p = point(&geom)?;
                let kind_text = reader
                    .text(&f, "kind")
                    .map_err(&fail)?
                    .ok_or_else(|| fail("has no `kind`".into()))?;
                let pollutants: Vec<String> = reader
                    .text(&f, "pollutants")
                    .map_err(&fail)?
                    .map(|s| {
                        s.split([',', ';'])
                            .map(|p| p.trim().to_string())
                            .filter(|p| !p.is_empty())
                            .collect()
                    })
                    .unwrap_or_default();
                let sk = SensorKind::parse(&kind_text, pollutants)
                    .ok_or_else(|| fail(format!("`kind` is '{kind_text}'; known: rain_gauge, water_level, air_quality, traffic_detector")))?;
                let station = reader
                    .text(&f, "station")
                    .map_err(&fail)?
                    .unwrap_or_else(|| id.clone());
                world.spawn((
                    Kind(EntityKind::Sensor),
                    fid(id),
                    Position {
                        xy_m: p,
                        z_m: ground(p).unwrap_or(0.0),
                    },
                    Sensor { kind: sk, station },
                ));
                report.entities += 1;
            }
            LayerKind::EmissionSources => {
                let pollutant = reader
                    .text(&f, "pollutant")
                    .map_err(&fail)?
                    .ok_or_else(|| fail("has no `pollutant`".into()))?;
                let rate_kg_s =
                    non_negative("rate_kg_s", reader.number(&f, "rate_kg_s").map_err(&fail)?)
                        .map_err(&fail)?
                        .ok_or_else(|| fail("has no `rate_kg_s`".into()))?;
                let height = positive("height_m", reader.number(&f, "height_m").map_err(&fail)?)
                    .map_err(&fail)?;
                let kind_ = match height {
                    Some(height_m) => EmissionKind::Stack {
                        height_m,
                        diameter_m: positive(
                            "diameter_m",
                            reader.number(&f, "diameter_m").map_err(&fail)?,
                        )
                        .map_err(&fail)?
                        .unwrap_or(1.0),
                        exit_velocity_mps: non_negative(
                            "exit_velocity_mps",
                            reader.number(&f, "exit_velocity_mps").map_err(&fail)?,
                        )
                        .map_err(&fail)?
                        .unwrap_or(0.0),
                        exit_temperature_k: positive(
                            "exit_temperature_k",
                            reader.number(&f, "exit_temperature_k").map_err(&fail)?,
                        )
                        .map_err(&fail)?
                        .unwrap_or(293.15),
                    },
                    None => EmissionKind::Area { height_m: 0.0 },
                };
                let src = EmissionSource {
                    pollutant,
                    rate_kg_s,
                    kind: kind_,
                };
                let base = (Kind(EntityKind::EmissionSource), fid(id), src);
                match geom {
                    Some(geo::Geometry::Point(p)) => {
                        let xy = DVec2::new(p.x(), p.y());
                        world.spawn((
                            base,
                            Position {
                                xy_m: xy,
                                z_m: ground(xy).unwrap_or(0.0),
                            },
                        ));
                    }
                    Some(
                        g @ (geo::Geometry::Polygon(_)
                        | geo::Geometry::MultiPolygon(_)
                        | geo::Geometry::LineString(_)),
                    ) => {
                        world.spawn((base, Shape::new(g)));
                    }
                    Some(other) => {
                        return Err(fail(format!(
                            "emission sources need a point, line or polygon, got {}",
                            geometry_name(&other)
                        )));
                    }
                    None => return Err(fail("has no geometry".into())),
                }
                report.entities += 1;
            }
        }
    }
    if missing_height > 0 {
        report.warnings.push(format!(
            "{missing_height} buildings had no height: used floors × {STOREY_M} m, or 10 m"
        ));
    }
    if estimated_occupants > 0 {
        report.warnings.push(format!(
            "{estimated_occupants} buildings had no occupants: estimated from floor area by use"
        ));
    }
    Ok(report)
}
