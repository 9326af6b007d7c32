//! What a view draws, read from a simulation's world: the city that does not move (terrain,
//! buildings, roads, junctions, sensors) once, and the moment (vehicles, signal states, water,
//! maps) every frame. Plain data, so the meshes can be built and checked without a GPU.

use std::collections::BTreeMap;

use bevy::math::DVec2;
use bevy::prelude::*;
use geo::{BoundingRect, Centroid};

use crate::clock::SimClock;
use crate::import::Dem;
use crate::model::*;
use crate::recorder::{FieldLog, FieldSample, Raster, Rasters};

/// The ground: heights on a regular grid (the DEM, thinned to at most [`MAX_TERRAIN`] cells a
/// side for the mesh).
#[derive(Clone, Debug)]
pub struct Terrain {
    /// South-west corner, m.
    pub origin_m: DVec2,
    /// Cell size, m.
    pub cell_m: f64,
    /// Columns.
    pub nx: usize,
    /// Rows.
    pub ny: usize,
    /// Height per cell (row-major from the south-west), m; NaN where unknown.
    pub z_m: Vec<f32>,
}

/// Most terrain cells a side the mesh takes (a larger DEM is thinned).
pub const MAX_TERRAIN: usize = 400;

impl Terrain {
    /// The DEM, thinned so neither side exceeds [`MAX_TERRAIN`] cells.
    pub fn from_dem(dem: &Dem) -> Self {
        let k = dem.nx.max(dem.ny).div_ceil(MAX_TERRAIN).max(1);
        let (nx, ny) = (dem.nx.div_ceil(k), dem.ny.div_ceil(k));
        let mut z_m = Vec::with_capacity(nx * ny);
        for j in 0..ny {
            for i in 0..nx {
                z_m.push(dem.at(
                    (i * k + k / 2).min(dem.nx - 1),
                    (j * k + k / 2).min(dem.ny - 1),
                ));
            }
        }
        Self {
            origin_m: DVec2::new(dem.x0_m, dem.y0_m),
            cell_m: dem.cell_m * k as f64,
            nx,
            ny,
            z_m,
        }
    }

    /// Ground height at a point (the cell it falls in; the nearest edge cell outside), m.
    pub fn height_at(&self, p: DVec2) -> f32 {
        let d = (p - self.origin_m) / self.cell_m;
        let i = (d.x.max(0.0) as usize).min(self.nx - 1);
        let j = (d.y.max(0.0) as usize).min(self.ny - 1);
        let z = self.z_m[j * self.nx + i];
        if z.is_finite() { z } else { 0.0 }
    }
}

/// A building as drawn: its footprint rings, base and height.
#[derive(Clone, Debug)]
pub struct BuildingGeom {
    /// Its entity in the simulation's world.
    pub entity: Entity,
    /// Footprint polygons (one, or several for a multipolygon), in the frame.
    pub footprints: Vec<geo::Polygon<f64>>,
    /// Ground level, m above datum.
    pub base_m: f64,
    /// Height above ground, m.
    pub height_m: f64,
    /// Use, for its colour.
    pub use_: BuildingUse,
    /// Centroid, m.
    pub centroid_m: DVec2,
}

/// A road as drawn: its centreline and width.
#[derive(Clone, Debug)]
pub struct RoadGeom {
    /// Its entity.
    pub entity: Entity,
    /// Centreline points, m.
    pub line_m: Vec<DVec2>,
    /// Carriageway width, m.
    pub width_m: f64,
}

/// A point feature drawn as a marker.
#[derive(Clone, Debug)]
pub struct Marker {
    /// Its entity.
    pub entity: Entity,
    /// Where, m.
    pub xy_m: DVec2,
    /// What it is (`rain_gauge`, `air_quality`, `manhole`, …), for its colour.
    pub what: &'static str,
}

/// The parts of the city that do not move during a run.
#[derive(Clone, Debug)]
pub struct CityStatic {
    /// Scene name.
    pub name: String,
    /// South-west and north-east corners of everything drawn, m.
    pub bounds_m: (DVec2, DVec2),
    /// The ground, if the scene has a DEM.
    pub terrain: Option<Terrain>,
    /// Buildings.
    pub buildings: Vec<BuildingGeom>,
    /// Roads.
    pub roads: Vec<RoadGeom>,
    /// Signalised junctions: their entity and centre.
    pub signals: Vec<(Entity, DVec2)>,
    /// Sensors, manholes and emission sources.
    pub markers: Vec<Marker>,
}

impl CityStatic {
    /// Read the city from a world (after the scene is built).
    pub fn from_world(world: &mut World, name: &str) -> Self {
        let terrain = world.get_resource::<Dem>().map(Terrain::from_dem);
        let mut lo = DVec2::splat(f64::INFINITY);
        let mut hi = DVec2::splat(f64::NEG_INFINITY);
        let mut grow = |p: DVec2| {
            lo = lo.min(p);
            hi = hi.max(p);
        };
        let mut q = world.query::<(Entity, &Building, &Shape)>();
        let mut buildings: Vec<BuildingGeom> = q
            .iter(world)
            .filter_map(|(e, b, s)| {
                let footprints: Vec<geo::Polygon<f64>> = match &*s.0 {
                    geo::Geometry::Polygon(p) => vec![p.clone()],
                    geo::Geometry::MultiPolygon(m) => m.0.clone(),
                    _ => return None,
                };
                let c = s.0.centroid()?;
                Some(BuildingGeom {
                    entity: e,
                    footprints,
                    base_m: b.ground_m,
                    height_m: b.height_m.max(1.0),
                    use_: b.use_,
                    centroid_m: DVec2::new(c.x(), c.y()),
                })
            })
            .collect();
        buildings.sort_by_key(|b| b.entity);
        let mut q = world.query::<(Entity, &Road, &Shape)>();
        let mut roads: Vec<RoadGeom> = q
            .iter(world)
            .filter_map(|(e, r, s)| {
                let geo::Geometry::LineString(l) = &*s.0 else {
                    return None;
                };
                Some(RoadGeom {
                    entity: e,
                    line_m: l.0.iter().map(|c| DVec2::new(c.x, c.y)).collect(),
                    width_m: (r.lanes.max(1) as f64 * r.lane_width_m).max(2.0),
                })
            })
            .collect();
        roads.sort_by_key(|r| r.entity);
        let mut q = world.query::<(Entity, &Intersection, &Position)>();
        let mut signals: Vec<(Entity, DVec2)> = q
            .iter(world)
            .filter(|(_, i, _)| i.signal.is_some())
            .map(|(e, _, p)| (e, p.xy_m))
            .collect();
        signals.sort_by_key(|s| s.0);
        let mut markers = Vec::new();
        let mut q = world.query::<(Entity, &Sensor, &Position)>();
        for (e, s, p) in q.iter(world) {
            markers.push(Marker {
                entity: e,
                xy_m: p.xy_m,
                what: match s.kind {
                    SensorKind::RainGauge => "rain_gauge",
                    SensorKind::WaterLevel => "water_level",
                    SensorKind::AirQuality { .. } => "air_quality",
                    SensorKind::TrafficDetector => "traffic_detector",
                },
            });
        }
        let mut q = world.query_filtered::<(Entity, &Position), With<Manhole>>();
        for (e, p) in q.iter(world) {
            markers.push(Marker {
                entity: e,
                xy_m: p.xy_m,
                what: "manhole",
            });
        }
        let mut q = world.query::<(Entity, &EmissionSource, Option<&Position>, Option<&Shape>)>();
        for (e, _, p, s) in q.iter(world) {
            let xy = p.map(|p| p.xy_m).or_else(|| {
                s.and_then(|s| s.0.centroid())
                    .map(|c| DVec2::new(c.x(), c.y()))
            });
            if let Some(xy) = xy {
                markers.push(Marker {
                    entity: e,
                    xy_m: xy,
                    what: "emission_source",
                });
            }
        }
        markers.sort_by_key(|m| m.entity);
        for b in &buildings {
            for p in &b.footprints {
                if let Some(r) = p.bounding_rect() {
                    grow(DVec2::new(r.min().x, r.min().y));
                    grow(DVec2::new(r.max().x, r.max().y));
                }
            }
        }
        for r in &roads {
            r.line_m.iter().for_each(|&p| grow(p));
        }
        for m in &markers {
            grow(m.xy_m);
        }
        if let Some(t) = &terrain {
            grow(t.origin_m);
            grow(t.origin_m + DVec2::new(t.nx as f64, t.ny as f64) * t.cell_m);
        }
        if !lo.is_finite() {
            (lo, hi) = (DVec2::splat(-100.0), DVec2::splat(100.0));
        }
        Self {
            name: name.to_string(),
            bounds_m: (lo, hi),
            terrain,
            buildings,
            roads,
            signals,
            markers,
        }
    }

    /// The middle of the city, where views are centred, m.
    pub fn centre_m(&self) -> DVec2 {
        (self.bounds_m.0 + self.bounds_m.1) * 0.5
    }

    /// Ground height at a point: the terrain's, or 0.
    pub fn ground_at(&self, p: DVec2) -> f32 {
        self.terrain.as_ref().map_or(0.0, |t| t.height_at(p))
    }
}

/// A vehicle now.
#[derive(Clone, Copy, Debug)]
pub struct VehicleNow {
    /// Its entity.
    pub entity: Entity,
    /// Where, m.
    pub xy_m: DVec2,
    /// Speed, m/s.
    pub speed_mps: f64,
    /// Length, m.
    pub length_m: f64,
    /// Which way it faces, radians counter-clockwise from east.
    pub heading_rad: f64,
    /// Kind.
    pub kind: VehicleKind,
}

/// The moving parts of the city at one moment.
#[derive(Clone, Debug, Default)]
pub struct CityNow {
    /// Simulated time, s after the start.
    pub t_s: f64,
    /// Vehicles.
    pub vehicles: Vec<VehicleNow>,
    /// Each signalised junction's state now: a letter per controlled movement (SUMO's
    /// `r`, `y`, `g`, `G`).
    pub signal_states: BTreeMap<Entity, String>,
    /// Water depth grid, if the flood published one.
    pub water: Option<Raster>,
    /// The latest map of each field (`flood.depth`, `pollution.NO2`, …) per H3 cell.
    pub fields: BTreeMap<String, FieldSample>,
}

impl CityNow {
    /// Read the moment from a world.
    pub fn from_world(world: &mut World) -> Self {
        let t_s = world.resource::<SimClock>().elapsed_s();
        let mut q = world.query::<(Entity, &Vehicle, &Position)>();
        let mut vehicles: Vec<VehicleNow> = q
            .iter(world)
            .map(|(e, v, p)| VehicleNow {
                entity: e,
                xy_m: p.xy_m,
                speed_mps: v.speed_mps,
                length_m: v.length_m,
                heading_rad: v.heading_rad,
                kind: v.kind,
            })
            .collect();
        vehicles.sort_by_key(|v| v.entity);
        let mut q = world.query::<(Entity, &Intersection)>();
        let signal_states = q
            .iter(world)
            .filter_map(|(e, i)| {
                let p = i.signal.as_ref()?;
                let k = p.phase_at(t_s);
                Some((e, p.phases.get(k)?.state.clone()))
            })
            .collect();
        let water = world
            .get_resource::<Rasters>()
            .and_then(|r| r.get("flood.depth").cloned());
        let fields = world
            .get_resource::<FieldLog>()
            .map(|f| f.latest_all())
            .unwrap_or_default();
        Self {
            t_s,
            vehicles,
            signal_states,
            water,
            fields,
        }
    }
}

/// What the view knows of one entity, for the panel when it is picked: its id and the values
/// of the model components it has.
pub fn describe(world: &World, e: Entity) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(r) = world.get_entity(e) else {
        return out;
    };
    if let Some(f) = r.get::<FeatureId>() {
        out.push(("feature".into(), f.to_string()));
    }
    if let Some(k) = r.get::<Kind>() {
        out.push(("kind".into(), k.0.as_str().to_string()));
    }
    if let Some(b) = r.get::<Building>() {
        out.push(("use".into(), b.use_.as_str().into()));
        out.push(("height".into(), format!("{:.1} m", b.height_m)));
        out.push(("occupants".into(), b.occupants.to_string()));
        out.push(("ground".into(), format!("{:.2} m", b.ground_m)));
    }
    if let Some(o) = r.get::<EvacuationOrder>() {
        out.push((
            "evacuation".into(),
            format!("ordered at {:.0} s by {}", o.since_s, o.by),
        ));
    }
    if let Some(rd) = r.get::<Road>() {
        if !rd.name.is_empty() {
            out.push(("name".into(), rd.name.clone()));
        }
        out.push(("lanes".into(), rd.lanes.to_string()));
        out.push((
            "limit".into(),
            format!("{:.0} km/h", rd.speed_limit_mps * 3.6),
        ));
        out.push(("length".into(), format!("{:.0} m", rd.length_m)));
    }
    if let Some(v) = r.get::<Vehicle>() {
        out.push(("vehicle".into(), format!("{:?}", v.kind)));
        out.push(("speed".into(), format!("{:.1} km/h", v.speed_mps * 3.6)));
    }
    if let Some(s) = r.get::<Sensor>() {
        out.push(("station".into(), s.station.clone()));
        out.push(("sensor".into(), format!("{:?}", s.kind)));
    }
    if let Some(m) = r.get::<Manhole>() {
        out.push(("invert".into(), format!("{:.2} m", m.invert_m)));
        out.push(("rim".into(), format!("{:.2} m", m.invert_m + m.max_depth_m)));
    }
    if let Some(s) = r.get::<EmissionSource>() {
        out.push((
            "emits".into(),
            format!("{} {:.3} g/s", s.pollutant, s.rate_kg_s * 1000.0),
        ));
    }
    if let Some(p) = r.get::<Position>() {
        out.push(("at".into(), format!("({:.0}, {:.0}) m", p.xy_m.x, p.xy_m.y)));
    }
    out
}
