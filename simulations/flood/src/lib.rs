//! # citytwin-flood
//!
//! Flooding: rain on the DEM and 2D overland flow, as a Bevy plugin on the engine's schedule.
//!
//! - [`surface`]: the local-inertial scheme of LISFLOOD-FP with wet/dry fronts, Manning
//!   friction, blocked cells for buildings, Horton infiltration, closed, free-outflow and
//!   fixed-level edges, point inflows and a volume balance.
//!
//! In a scene, `[simulations.flood]` switches it on ([`FloodParams`] lists the keys): the
//! scene's DEM becomes the surface grid, buildings block their cells, and the rain of the
//! engine's [`Rainfall`] (a `rainstorm` plugin, gauge feeds) falls on it every step — uniform
//! rain everywhere, gauge readings on the cells nearest each gauge. Depth maps go to the store's
//! `fields` table per H3 cell (`flood.depth`, and at the end `flood.max_depth` and
//! `flood.first_flooded`, the time each cell first passed `flooded_depth_m`), roads and
//! buildings whose water rises above `flooded_depth_m` raise `flood.road_flooded` /
//! `flood.building_flooded` events (and `…_clear` when it falls), and the volume balance is a
//! KPI. The 1D drainage network (SWMM `.inp`, dynamic wave) and its coupling with the surface
//! come next (issue #4).

pub mod surface;

use std::collections::BTreeMap;

use bevy::math::DVec2;
use bevy::prelude::*;
use citytwin_engine::hash::{StateHash, StateHasher};
use citytwin_engine::import::Dem;
use citytwin_engine::modules::check_positive;
use citytwin_engine::prelude::*;
use citytwin_engine::recorder::kpi_due;
use geo::{BoundingRect, Contains, Coord, LineString, Point};
use serde::Deserialize;

pub use surface::{Balance, Edge, Edges, Horton, Surface};

/// The `[simulations.flood]` parameters of a scene.
#[derive(Clone, Debug, Deserialize)]
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
    /// Depth above which a road or building counts as flooded, m. Default 0.15 m.
    #[serde(default = "default_flooded")]
    pub flooded_depth_m: f64,
    /// Seconds between depth maps in the store. Default 300 s.
    #[serde(default = "default_map_interval")]
    pub map_interval_s: f64,
    /// Depths below this are left out of the maps, m. Default 0.01 m.
    #[serde(default = "default_map_min")]
    pub map_min_depth_m: f64,
}

/// Horton's parameters, in the units hydrologists write them.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HortonParams {
    /// Initial capacity, mm/h.
    pub f0_mm_h: f64,
    /// Final capacity, mm/h.
    pub fc_mm_h: f64,
    /// Decay, 1/h.
    pub k_per_h: f64,
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

/// The flood simulation's state in the world.
#[derive(Resource)]
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
    roads: Vec<(Entity, Vec<usize>)>,
    /// Grid cells around each building (its blocked cells' neighbours).
    buildings: Vec<(Entity, Vec<usize>)>,
    /// Nearest gauge station per cell (station codes in `gauge_names`), once gauges report.
    gauge_of_cell: Option<(Vec<String>, Vec<u16>)>,
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
}

impl StateHash for FloodSim {
    fn hash_state(&self, h: &mut StateHasher) {
        h.f64(self.surface.volume_m3());
        let b = &self.surface.balance;
        for v in [b.rain_m3, b.inflow_m3, b.outflow_m3, b.infiltration_m3] {
            h.f64(v);
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
        "rain on the DEM and 2D overland flow (LISFLOOD-FP local-inertial), flooded roads and buildings, depth maps"
    }

    fn build(&self, params: &toml::Table, app: &mut App) -> Result<(), String> {
        let p: FloodParams = parse_params(params)?;
        check_positive("manning_n", p.manning_n)?;
        check_positive("flooded_depth_m", p.flooded_depth_m)?;
        check_positive("map_interval_s", p.map_interval_s)?;
        check_positive("map_min_depth_m", p.map_min_depth_m)?;
        let edge = match p.edges.as_str() {
            "free" => Edge::FreeOutflow(None),
            "closed" => Edge::Closed,
            e => return Err(format!("`edges`: '{e}' is not `free` or `closed`")),
        };
        let dem = app
            .world()
            .get_resource::<Dem>()
            .cloned()
            .ok_or("the flood simulation needs the scene's `[dem]`: none is loaded")?;
        let mut surface = Surface::new(
            dem.nx,
            dem.ny,
            dem.cell_m as f32,
            dem.elevation_m.clone(),
            p.manning_n as f32,
        );
        surface.edges = Edges::all(edge);
        if let Some(h) = p.infiltration {
            if !(h.f0_mm_h >= h.fc_mm_h && h.fc_mm_h >= 0.0 && h.k_per_h > 0.0) {
                return Err("`infiltration`: needs f0_mm_h ≥ fc_mm_h ≥ 0 and k_per_h > 0".into());
            }
            surface.infiltration = Some(Horton {
                f0_mps: (h.f0_mm_h / 3.6e6) as f32,
                fc_mps: (h.fc_mm_h / 3.6e6) as f32,
                k_per_s: (h.k_per_h / 3600.0) as f32,
            });
        }
        let origin_m = DVec2::new(dem.x0_m, dem.y0_m);
        let n = dem.nx * dem.ny;
        let mut sim = FloodSim {
            surface,
            origin_m,
            params: p,
            cell_h3: Vec::new(),
            max_depth_m: vec![0.0; n],
            first_flooded_s: vec![f32::NAN; n],
            roads: Vec::new(),
            buildings: Vec::new(),
            gauge_of_cell: None,
        };
        // Buildings block their cells; the cells around them tell whether they are flooded.
        let world = app.world_mut();
        let mut q = world.query::<(Entity, &Building, &Shape)>();
        let mut footprints: Vec<(Entity, geo::Geometry<f64>)> =
            q.iter(world).map(|(e, _, s)| (e, (*s.0).clone())).collect();
        footprints.sort_by_key(|f| f.0);
        for (e, g) in footprints {
            let Some(r) = g.bounding_rect() else { continue };
            let mut inside = Vec::new();
            let (lo, hi) = (r.min(), r.max());
            let cells_of = |x: f64, y: f64| sim.cell_at(DVec2::new(x, y));
            let step = sim.surface.dx_m as f64;
            let mut y = lo.y + 0.5 * step;
            while y < hi.y {
                let mut x = lo.x + 0.5 * step;
                while x < hi.x {
                    if let Some(c) = cells_of(x, y) {
                        let ctr = sim.centre(c);
                        if g.contains(&Point::new(ctr.x, ctr.y)) {
                            inside.push(c);
                        }
                    }
                    x += step;
                }
                y += step;
            }
            let nx = sim.surface.nx;
            let mut around = Vec::new();
            for &c in &inside {
                sim.surface.blocked[c] = true;
            }
            for &c in &inside {
                let (i, j) = (c % nx, c / nx);
                for (di, dj) in [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)] {
                    let (a, b) = (i as i64 + di, j as i64 + dj);
                    if a >= 0 && b >= 0 && (a as usize) < nx && (b as usize) < sim.surface.ny {
                        let k = b as usize * nx + a as usize;
                        if !sim.surface.blocked[k] {
                            around.push(k);
                        }
                    }
                }
            }
            around.sort_unstable();
            around.dedup();
            if !around.is_empty() {
                sim.buildings.push((e, around));
            }
        }
        // Roads: the cells under their centrelines.
        let mut q = world.query::<(Entity, &Road, &Shape)>();
        let mut roads: Vec<(Entity, geo::Geometry<f64>)> =
            q.iter(world).map(|(e, _, s)| (e, (*s.0).clone())).collect();
        roads.sort_by_key(|r| r.0);
        for (e, g) in roads {
            let geo::Geometry::LineString(ls) = g else {
                continue;
            };
            let cells = cells_along(&sim, &ls);
            if !cells.is_empty() {
                sim.roads.push((e, cells));
            }
        }
        // H3 cell of every grid cell, for the maps.
        let index = world.resource::<SpatialIndex>();
        sim.cell_h3 = (0..n)
            .map(|c| index.cell_at(sim.centre(c)).map(u64::from).unwrap_or(0))
            .collect();
        app.insert_resource(sim)
            .add_systems(
                SimStep,
                (
                    step_flood.in_set(SimSet::Physics),
                    (
                        flood_events,
                        flood_kpis.run_if(kpi_due),
                        flood_maps.run_if(maps_due),
                    )
                        .chain()
                        .in_set(SimSet::Metrics),
                ),
            )
            .hash_resource::<FloodSim>();
        Ok(())
    }
}

/// The grid cells a line passes over (sampled every half cell).
fn cells_along(sim: &FloodSim, ls: &LineString<f64>) -> Vec<usize> {
    let step = 0.5 * sim.surface.dx_m as f64;
    let mut out = Vec::new();
    for w in ls.0.windows(2) {
        let (a, b): (Coord<f64>, Coord<f64>) = (w[0], w[1]);
        let len = ((b.x - a.x).powi(2) + (b.y - a.y).powi(2)).sqrt();
        let n = (len / step).ceil().max(1.0) as usize;
        for k in 0..=n {
            let t = k as f64 / n as f64;
            if let Some(c) = sim.cell_at(DVec2::new(a.x + t * (b.x - a.x), a.y + t * (b.y - a.y)))
                && !sim.surface.blocked[c]
            {
                out.push(c);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn maps_due(clock: Res<SimClock>, sim: Res<FloodSim>) -> bool {
    clock.is_every(sim.params.map_interval_s) || clock.tick() + 1 >= clock.end_tick()
}

/// One step: this step's rain (uniform, plus each gauge's on the cells nearest it) on the grid.
fn step_flood(
    clock: Res<SimClock>,
    rain: Res<Rainfall>,
    sensors: Query<(&Sensor, &Position)>,
    mut sim: ResMut<FloodSim>,
) {
    let sim = &mut *sim;
    if !rain.gauges().is_empty() {
        if sim.gauge_of_cell.is_none() {
            // Thiessen polygons: each cell takes the reading of its nearest rain gauge.
            let mut gauges: Vec<(String, DVec2)> = sensors
                .iter()
                .filter(|(s, _)| matches!(s.kind, SensorKind::RainGauge))
                .map(|(s, p)| (s.station.clone(), p.xy_m))
                .collect();
            gauges.sort_by(|a, b| a.0.cmp(&b.0));
            if !gauges.is_empty() {
                let n = sim.surface.nx * sim.surface.ny;
                let nearest: Vec<u16> = (0..n)
                    .map(|c| {
                        let p = sim.centre(c);
                        let mut best = (f64::INFINITY, 0u16);
                        for (k, (_, g)) in gauges.iter().enumerate() {
                            let d = p.distance_squared(*g);
                            if d < best.0 {
                                best = (d, k as u16);
                            }
                        }
                        best.1
                    })
                    .collect();
                sim.gauge_of_cell = Some((gauges.into_iter().map(|g| g.0).collect(), nearest));
            }
        }
        if let Some((names, nearest)) = &sim.gauge_of_cell {
            let values: Vec<f32> = names
                .iter()
                .map(|n| rain.gauges().get(n).copied().unwrap_or(0.0) as f32)
                .collect();
            sim.surface.rain_cell_mps = Some(nearest.iter().map(|&k| values[k as usize]).collect());
        }
    } else {
        sim.surface.rain_cell_mps = None;
    }
    sim.surface
        .advance(clock.step_s(), rain.uniform_mps() as f32);
    let (limit, t_end) = (
        sim.params.flooded_depth_m as f32,
        (clock.elapsed_s() + clock.step_s()) as f32,
    );
    for ((m, first), &h) in sim
        .max_depth_m
        .iter_mut()
        .zip(sim.first_flooded_s.iter_mut())
        .zip(&sim.surface.h_m)
    {
        *m = m.max(h);
        if h > limit && first.is_nan() {
            *first = t_end;
        }
    }
}

/// Roads and buildings crossing the flooded depth, as events.
fn flood_events(
    sim: Res<FloodSim>,
    mut events: ResMut<EventLog>,
    mut state: Local<BTreeMap<Entity, bool>>,
) {
    let limit = sim.params.flooded_depth_m as f32;
    let h = &sim.surface.h_m;
    for (kind, list) in [("road", &sim.roads), ("building", &sim.buildings)] {
        for (e, cells) in list {
            let depth = cells.iter().map(|&c| h[c]).fold(0.0f32, f32::max);
            let now = depth > limit;
            let was = state.insert(*e, now).unwrap_or(false);
            if now != was {
                events.push(SimEvent {
                    kind: format!("flood.{kind}_{}", if now { "flooded" } else { "clear" }),
                    entity: Some(*e),
                    xy_m: None,
                    message: format!(
                        "water {:.2} m deep at the {kind}, {} the {:.2} m mark",
                        depth,
                        if now { "above" } else { "back under" },
                        limit
                    ),
                });
            }
        }
    }
}

/// Volumes, flooded area and the balance.
fn flood_kpis(sim: Res<FloodSim>, mut kpis: ResMut<Kpis>) {
    let s = &sim.surface;
    let limit = sim.params.flooded_depth_m as f32;
    let a = (s.dx_m as f64).powi(2);
    let flooded = s.h_m.iter().filter(|&&h| h > limit).count() as f64 * a;
    let max = s.h_m.iter().fold(0.0f32, |m, &h| m.max(h)) as f64;
    let b = s.balance;
    kpis.set("flood.volume", "city", s.volume_m3(), "m3");
    kpis.set("flood.flooded_area", "city", flooded, "m2");
    kpis.set("flood.max_depth", "city", max, "m");
    kpis.set("flood.rain_volume", "city", b.rain_m3, "m3");
    kpis.set("flood.outflow_volume", "city", b.outflow_m3, "m3");
    kpis.set("flood.infiltrated_volume", "city", b.infiltration_m3, "m3");
    kpis.set("flood.balance_error", "city", s.balance_error_m3(), "m3");
    let roads = sim
        .roads
        .iter()
        .filter(|(_, cells)| cells.iter().any(|&c| s.h_m[c] > limit))
        .count();
    kpis.set("flood.roads_flooded", "city", roads as f64, "1");
}

/// Depth maps per H3 cell: the current depth, and at the end the deepest of the run.
fn flood_maps(clock: Res<SimClock>, sim: Res<FloodSim>, mut fields: ResMut<FieldLog>) {
    let min = sim.params.map_min_depth_m as f32;
    let mut push = |name: &str, values: &[f32], unit: &'static str, min: f32| {
        let mut cells: BTreeMap<u64, (f64, u32)> = BTreeMap::new();
        for (c, &h) in values.iter().enumerate() {
            let h3 = sim.cell_h3[c];
            if h3 != 0 && !sim.surface.blocked[c] {
                let e = cells.entry(h3).or_insert((0.0, 0));
                e.0 += h as f64;
                e.1 += 1;
            }
        }
        let cells: Vec<(u64, f64)> = cells
            .into_iter()
            .map(|(k, (s, n))| (k, s / n as f64))
            .filter(|(_, v)| *v >= min as f64)
            .collect();
        fields.push(FieldSample {
            name: name.into(),
            unit,
            cells,
        });
    };
    push("flood.depth", &sim.surface.h_m, "m", min);
    if clock.tick() + 1 >= clock.end_tick() {
        push("flood.max_depth", &sim.max_depth_m, "m", min);
        // Per H3 cell: the earliest time any of its grid cells flooded.
        let mut first: BTreeMap<u64, f64> = BTreeMap::new();
        for (c, &t) in sim.first_flooded_s.iter().enumerate() {
            let h3 = sim.cell_h3[c];
            if h3 != 0 && t.is_finite() {
                let e = first.entry(h3).or_insert(f64::INFINITY);
                *e = e.min(t as f64);
            }
        }
        fields.push(FieldSample {
            name: "flood.first_flooded".into(),
            unit: "s",
            cells: first.into_iter().collect(),
        });
    }
}
