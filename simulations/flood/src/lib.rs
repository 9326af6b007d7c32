//! # citytwin-flood
//!
//! Flooding: rain on the DEM, 2D overland flow, and the 1D drainage network under it, coupled
//! at the manholes — as a Bevy plugin on the engine's schedule.
//!
//! - [`surface`]: the local-inertial scheme of LISFLOOD-FP with wet/dry fronts, Manning
//!   friction, blocked cells for buildings, Horton infiltration, closed, free-outflow and
//!   fixed-level edges, point inflows and a volume balance.
//! - [`drainage`]: EPA SWMM 5.2's hydrology and hydraulics — `.inp` import, subcatchment
//!   runoff, dynamic- and kinematic-wave routing, storage, pumps, orifices, weirs, outfalls —
//!   with SWMM's continuity report.
//! - [`coupling`]: manholes take water off the street (weir and orifice inlet capture) and
//!   spill it back when the sewer surcharges.
//! - [`roads`]: the flood → traffic coupling — water on a road slows its traffic (a published
//!   depth–speed function) and, deeper, closes it until the water goes down.
//!
//! In a scene, `[simulations.flood]` switches it on ([`FloodParams`] lists the keys): the
//! scene's DEM becomes the surface grid, buildings block their cells, and the rain of the
//! engine's [`Rainfall`] (a `rainstorm` plugin, gauge feeds, a SWMM model's own gauges) falls
//! on it every step. The drainage network is whatever drainage entities the world holds: the
//! scene's manhole/conduit layers, or a SWMM model named by `drainage` (imported as entities).
//! Depth and speed maps go to the store's `fields` table per H3 cell (`flood.depth`,
//! `flood.speed`, and at the end `flood.max_depth` and `flood.first_flooded`), roads,
//! buildings and manholes crossing their thresholds raise events, node depths and conduit
//! flows are KPIs per feature, volumes and both continuity checks (the drainage's, SWMM's
//! way; the whole coupled system's) are city KPIs, and at the end the deepest water can be
//! written as GeoTIFF and the flooded extent as GeoJSON/GeoPackage.

pub mod coupling;
pub mod drainage;
mod gauges;
pub mod roads;
mod setup;
pub mod surface;
mod systems;

use std::path::PathBuf;

use bevy::math::DVec2;
use bevy::prelude::*;
use citytwin_engine::hash::{StateHash, StateHasher};
use citytwin_engine::prelude::*;
use serde::Deserialize;

pub use coupling::{Inlet, InletCoeffs};
pub use drainage::Drainage;
pub use roads::{FloodedRoads, RoadCouplingParams, safe_speed_mps};
pub use surface::{Balance, Edge, Edges, GreenAmpt, Horton, Surface, SurfaceInfiltration};

/// The `[simulations.flood]` parameters of a scene.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FloodParams {
    /// Manning's n of the ground, s/m^(1/3). Default 0.035 (streets and short grass).
    #[serde(default = "default_n")]
    pub manning_n: f64,
    /// What the DEM's edges do: `free` (water leaves at normal depth, default) or `closed`.
    #[serde(default = "default_edges")]
    pub edges: String,
    /// Horton infiltration `{ f0_mm_h, fc_mm_h, k_per_h }`; none: sealed ground.
    #[serde(default)]
    pub infiltration: Option<HortonParams>,
    /// Green–Ampt infiltration `{ suction_mm, ksat_mm_h, deficit }` instead of Horton's.
    #[serde(default)]
    pub green_ampt: Option<GreenAmptParams>,
    /// Depth above which a road or building counts as flooded, m. Default 0.15 m.
    #[serde(default = "default_flooded")]
    pub flooded_depth_m: f64,
    /// Seconds between depth and speed maps in the store. Default 300 s.
    #[serde(default = "default_map_interval")]
    pub map_interval_s: f64,
    /// Depths below this are left out of the maps, m. Default 0.01 m.
    #[serde(default = "default_map_min")]
    pub map_min_depth_m: f64,
    /// A SWMM 5 `.inp` model of the drainage network, imported as entities of layer
    /// `drainage`; none: the scene's manhole, conduit and outfall layers (if any).
    #[serde(default)]
    pub drainage: Option<PathBuf>,
    /// The CRS of the `.inp` model's coordinates (`EPSG:…`, WKT or PROJ); needed with `drainage`.
    #[serde(default)]
    pub drainage_crs: Option<String>,
    /// Whether the `.inp` model's rain gauges rain on the city (their series read from the
    /// scene's start). Default true.
    #[serde(default = "default_true")]
    pub drainage_rain: bool,
    /// Longest drainage routing step, s; the variable (Courant) step is usually shorter, and
    /// never crosses a scene step. Default 30 s.
    #[serde(default = "default_drainage_step")]
    pub drainage_step_s: f64,
    /// Manhole inlets on the street.
    #[serde(default)]
    pub inlets: InletParams,
    /// At the end, write the deepest water of the run as a GeoTIFF here (in the scene frame's
    /// transverse Mercator projection).
    #[serde(default)]
    pub export_max_depth: Option<PathBuf>,
    /// At the end, write the area where water was deeper than `flooded_depth_m` as polygons
    /// here (`.geojson`, `.gpkg` or `.shp`, in WGS84).
    #[serde(default)]
    pub export_extent: Option<PathBuf>,
    /// Flood → traffic: water on the roads of a layer slows and closes them (see [`roads`]);
    /// none: the water does not act on traffic.
    #[serde(default)]
    pub traffic: Option<RoadCouplingParams>,
    /// A water-level gauge this close to a drainage node measures that node's depth; farther
    /// away, the water on the street where it stands. Default 2 m.
    #[serde(default = "default_gauge_node_radius")]
    pub gauge_node_radius_m: f64,
}

/// How manholes take water off the street.
#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct InletParams {
    /// Weir coefficient of shallow capture. Default 0.5.
    #[serde(default = "default_weir")]
    pub weir_coeff: f64,
    /// Orifice coefficient of deep capture. Default 0.6.
    #[serde(default = "default_orifice")]
    pub orifice_coeff: f64,
    /// Inlet (grate) area, m²; default: the manhole's own plan area, else 0.5 m².
    #[serde(default)]
    pub area_m2: Option<f64>,
}

impl Default for InletParams {
    fn default() -> Self {
        Self {
            weir_coeff: default_weir(),
            orifice_coeff: default_orifice(),
            area_m2: None,
        }
    }
}

/// Horton's parameters, in the units hydrologists write them.
#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HortonParams {
    /// Initial capacity, mm/h.
    pub f0_mm_h: f64,
    /// Final capacity, mm/h.
    pub fc_mm_h: f64,
    /// Decay, 1/h.
    pub k_per_h: f64,
}

/// Green–Ampt's parameters, in the units soil tables give them.
#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct GreenAmptParams {
    /// Capillary suction at the wetting front, mm (e.g. 110 for a loam).
    pub suction_mm: f64,
    /// Saturated hydraulic conductivity, mm/h (e.g. 3.4 for a loam).
    pub ksat_mm_h: f64,
    /// Moisture deficit, the fraction of the soil's volume still to fill (0–1).
    pub deficit: f64,
}

fn default_gauge_node_radius() -> f64 {
    2.0
}

fn default_n() -> f64 {
    0.035
}
fn default_edges() -> String {
    "free".into()
}
fn default_flooded() -> f64 {
    0.15
}
fn default_map_interval() -> f64 {
    300.0
}
fn default_map_min() -> f64 {
    0.01
}
fn default_true() -> bool {
    true
}
fn default_drainage_step() -> f64 {
    30.0
}
fn default_weir() -> f64 {
    0.5
}
fn default_orifice() -> f64 {
    0.6
}

/// The drainage network of the world and its ties to the surface.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct DrainageState {
    /// The running model.
    pub model: Drainage,
    /// Entity of each node, link and subcatchment (in the model's order).
    pub nodes: Vec<Entity>,
    /// Entity of each link.
    pub links: Vec<Entity>,
    /// Feature names of nodes and links, for KPI scopes.
    pub(crate) node_names: Vec<String>,
    pub(crate) link_names: Vec<String>,
    /// Inlets of manholes on the grid.
    pub inlets: Vec<Inlet>,
    /// Surface cell of each node (if coupled).
    pub(crate) cell_of_node: Vec<Option<usize>>,
    pub(crate) coeffs: InletCoeffs,
    /// Each inlet's capture in the last step, m³/s.
    pub(crate) last_capture_m3s: Vec<f64>,
    /// Rain gauges of an imported `.inp` model, raining on the city each step.
    pub(crate) model_gauges: Vec<drainage::spec::GaugeSpec>,
    /// What the `.inp` import warned about.
    pub warnings: Vec<String>,
    /// Volumes exchanged, m³: taken off the street, put back, and spilled where no surface is.
    pub captured_m3: f64,
    /// Spilled back onto the street.
    pub returned_m3: f64,
    /// Spilled at manholes outside the grid (lost, as SWMM's flooding).
    pub lost_m3: f64,
}

/// The flood simulation's state in the world.
#[derive(serde::Serialize, serde::Deserialize, Resource)]
pub struct FloodSim {
    /// The surface water.
    pub surface: Surface,
    /// South-west corner of the grid in the frame, m.
    pub origin_m: DVec2,
    params: FloodParams,
    /// H3 cell of every grid cell (0 outside the index).
    cell_h3: Vec<u64>,
    /// Deepest water seen per cell, m.
    pub max_depth_m: Vec<f32>,
    /// When each cell first had more than `flooded_depth_m`, s after the start (NaN: never).
    pub first_flooded_s: Vec<f32>,
    /// Grid cells under each road (sampled along its centreline).
    roads: Vec<(Entity, String, Vec<usize>)>,
    /// Grid cells around each building (its blocked cells' neighbours).
    buildings: Vec<(Entity, String, Vec<usize>)>,
    /// Nearest gauge station per cell (station codes in `gauge_names`), once gauges report.
    gauge_of_cell: Option<(Vec<String>, Vec<u16>)>,
    /// Cells inside subcatchments: their rain runs off through the subcatchment instead.
    runoff_cells: Option<Vec<bool>>,
    /// The drainage network, if the world has one.
    pub drainage: Option<DrainageState>,
    /// The DEM's grid, for exports.
    grid: citytwin_engine::import::Dem,
}

impl FloodSim {
    /// The grid cell containing a point, if inside.
    pub fn cell_at(&self, p: DVec2) -> Option<usize> {
        let s = &self.surface;
        let d = (p - self.origin_m) / s.dx_m as f64;
        (d.x >= 0.0 && d.y >= 0.0 && (d.x as usize) < s.nx && (d.y as usize) < s.ny)
            .then(|| d.y as usize * s.nx + d.x as usize)
    }

    fn centre(&self, c: usize) -> DVec2 {
        let s = &self.surface;
        self.origin_m
            + DVec2::new(
                ((c % s.nx) as f64 + 0.5) * s.dx_m as f64,
                ((c / s.nx) as f64 + 0.5) * s.dx_m as f64,
            )
    }

    /// Water in and out of the whole coupled system since the start, m³: (in, stored now,
    /// out). In: rain on the grid and on subcatchments, surface point inflows, the network's
    /// external and dry-weather inflows. Stored: on the grid, in the network, on
    /// subcatchments. Out: through the grid's edges, infiltrated, through outfalls, spilled
    /// where no surface takes it, evaporated.
    pub fn water_balance_m3(&self) -> (f64, f64, f64) {
        let b = &self.surface.balance;
        let mut inflow = b.initial_m3 + b.rain_m3 + b.inflow_m3;
        let mut stored = self.surface.volume_m3();
        let mut out = b.outflow_m3 + b.infiltration_m3;
        if let Some(d) = &self.drainage {
            let t = &d.model.totals;
            let r = d.model.runoff_totals();
            inflow += t.initial_storage_m3 + t.dry_weather_m3 + t.external_m3 + r.rainfall_m3;
            stored += d.model.stored_m3() + r.final_storage_m3;
            out += t.outflow_m3 + t.evaporation_m3 + d.lost_m3 + r.infil_m3 + r.evap_m3;
        }
        (inflow, stored, out)
    }
}

impl StateHash for FloodSim {
    fn hash_state(&self, h: &mut StateHasher) {
        h.f64(self.surface.volume_m3());
        let b = &self.surface.balance;
        for v in [
            b.rain_m3,
            b.inflow_m3,
            b.outflow_m3,
            b.infiltration_m3,
            b.exchange_out_m3,
        ] {
            h.f64(v);
        }
        if let Some(d) = &self.drainage {
            for n in &d.model.net.nodes {
                h.f64(n.new_depth);
            }
            for l in &d.model.net.links {
                h.f64(l.new_flow);
            }
            h.f64(d.captured_m3);
            h.f64(d.returned_m3);
            h.f64(d.lost_m3);
        }
    }
}

/// The flood simulation as a scene module (`[simulations.flood]`).
pub struct FloodModule;

impl SceneModule for FloodModule {
    fn name(&self) -> &'static str {
        "flood"
    }

    fn description(&self) -> &'static str {
        "rain on the DEM, 2D overland flow (LISFLOOD-FP local-inertial) coupled at manholes to the drainage network (EPA SWMM 5.2's dynamic wave), flooded roads and buildings, depth maps"
    }

    fn build(&self, params: &toml::Table, app: &mut App) -> Result<(), String> {
        setup::build(params, app)
    }
}
