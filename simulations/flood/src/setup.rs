//! Building the flood simulation from a scene: the DEM as the grid, buildings blocking their
//! cells, roads' cells, the drainage network (a SWMM model imported as entities, or the scene's
//! own drainage layers) and the inlets that tie its manholes to the street.

use bevy::math::DVec2;
use bevy::prelude::*;
use citytwin_engine::crs::{Reprojector, parse_crs};
use citytwin_engine::import::Dem;
use citytwin_engine::modules::check_positive;
use citytwin_engine::prelude::*;
use citytwin_engine::recorder::kpi_due;
use citytwin_engine::scene::SceneFiles;
use geo::{BoundingRect, Contains, Coord, LineString, Point};

use crate::drainage::inp::read_inp;
use crate::drainage::spec::{NodeKind, Options};
use crate::drainage::world::{network_from_world, spawn_inp};
use crate::drainage::{Drainage, spec};
use crate::roads::{flood_road_kpis, flood_roads};
use crate::systems::{
    feed_model_rain, flood_events, flood_kpis, flood_maps, maps_due, publish_rasters,
    rasters_requested, step_flood,
};
use crate::*;

pub(crate) fn build(params: &toml::Table, app: &mut App) -> Result<(), String> {
    let p: FloodParams = parse_params(params)?;
    check_positive("manning_n", p.manning_n)?;
    check_positive("flooded_depth_m", p.flooded_depth_m)?;
    check_positive("map_interval_s", p.map_interval_s)?;
    check_positive("map_min_depth_m", p.map_min_depth_m)?;
    check_positive("drainage_step_s", p.drainage_step_s)?;
    check_positive("gauge_node_radius_m", p.gauge_node_radius_m)?;
    check_positive("inlets.weir_coeff", p.inlets.weir_coeff)?;
    check_positive("inlets.orifice_coeff", p.inlets.orifice_coeff)?;
    if let Some(a) = p.inlets.area_m2 {
        check_positive("inlets.area_m2", a)?;
    }
    if let Some(t) = &p.traffic {
        t.check()?;
    }
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
        surface.infiltration = Some(SurfaceInfiltration::Horton(Horton {
            f0_mps: (h.f0_mm_h / 3.6e6) as f32,
            fc_mps: (h.fc_mm_h / 3.6e6) as f32,
            k_per_s: (h.k_per_h / 3600.0) as f32,
        }));
    }
    if let Some(g) = p.green_ampt {
        if p.infiltration.is_some() {
            return Err("`green_ampt` and `infiltration` (Horton) are two models of the same ground: give one".into());
        }
        if !(g.suction_mm >= 0.0 && g.ksat_mm_h > 0.0 && (0.0..=1.0).contains(&g.deficit)) {
            return Err(
                "`green_ampt`: needs suction_mm ≥ 0, ksat_mm_h > 0 and 0 ≤ deficit ≤ 1".into(),
            );
        }
        surface.infiltration = Some(SurfaceInfiltration::GreenAmpt(GreenAmpt {
            suction_m: (g.suction_mm / 1000.0) as f32,
            ksat_mps: (g.ksat_mm_h / 3.6e6) as f32,
            deficit: g.deficit as f32,
        }));
    }
    let origin_m = DVec2::new(dem.x0_m, dem.y0_m);
    let n = dem.nx * dem.ny;
    let mut sim = FloodSim {
        surface,
        origin_m,
        params: p.clone(),
        cell_h3: Vec::new(),
        max_depth_m: vec![0.0; n],
        first_flooded_s: vec![f32::NAN; n],
        roads: Vec::new(),
        buildings: Vec::new(),
        gauge_of_cell: None,
        runoff_cells: None,
        drainage: None,
        grid: dem.clone(),
    };
    let world = app.world_mut();
    block_buildings(world, &mut sim);
    // Roads: the cells under their centrelines.
    let mut q = world.query::<(Entity, &Road, &Shape, Option<&FeatureId>)>();
    let mut roads: Vec<(Entity, String, geo::Geometry<f64>)> = q
        .iter(world)
        .map(|(e, _, s, f)| (e, feature_name(e, f), (*s.0).clone()))
        .collect();
    roads.sort_by_key(|r| r.0);
    for (e, name, g) in roads {
        let geo::Geometry::LineString(ls) = g else {
            continue;
        };
        let cells = cells_along(&sim, &ls);
        if !cells.is_empty() {
            sim.roads.push((e, name, cells));
        }
    }
    // The drainage network.
    sim.drainage = build_drainage(world, &sim, &p)?;
    if let Some(d) = &sim.drainage {
        sim.runoff_cells = runoff_cells(world, &sim, d);
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
                feed_model_rain.in_set(SimSet::Ingest),
                step_flood.in_set(SimSet::Physics),
                (
                    flood_events,
                    flood_kpis.run_if(kpi_due),
                    crate::gauges::gauge_kpis.run_if(kpi_due),
                    flood_maps.run_if(maps_due),
                    publish_rasters.run_if(rasters_requested),
                )
                    .chain()
                    .in_set(SimSet::Metrics),
            ),
        )
        .init_resource::<crate::systems::FloodEventState>()
        .hash_resource::<FloodSim>()
        .checkpoint_resource::<FloodSim>()
        .checkpoint_resource::<crate::systems::FloodEventState>();
    if let Some(t) = p.traffic {
        app.insert_resource(FloodedRoads::new(t))
            .add_systems(
                SimStep,
                (
                    flood_roads.in_set(SimSet::Coupling),
                    flood_road_kpis.run_if(kpi_due).in_set(SimSet::Metrics),
                ),
            )
            .hash_resource::<FloodedRoads>()
            .checkpoint_resource::<FloodedRoads>();
    }
    Ok(())
}

/// Buildings block their cells; the cells around them tell whether they are flooded.
fn block_buildings(world: &mut World, sim: &mut FloodSim) {
    let mut q = world.query::<(Entity, &Building, &Shape, Option<&FeatureId>)>();
    let mut footprints: Vec<(Entity, String, geo::Geometry<f64>)> = q
        .iter(world)
        .map(|(e, _, s, f)| (e, feature_name(e, f), (*s.0).clone()))
        .collect();
    footprints.sort_by_key(|f| f.0);
    for (e, name, g) in footprints {
        let inside = cells_in(sim, &g);
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
            sim.buildings.push((e, name, around));
        }
    }
}

/// How events name a feature: `layer/id`, or the entity when it has no id.
fn feature_name(e: Entity, f: Option<&FeatureId>) -> String {
    f.map_or_else(|| format!("{e}"), |f| f.to_string())
}

/// The grid cells whose centres lie inside a polygonal geometry.
fn cells_in(sim: &FloodSim, g: &geo::Geometry<f64>) -> Vec<usize> {
    let Some(r) = g.bounding_rect() else {
        return Vec::new();
    };
    let mut inside = Vec::new();
    let (lo, hi) = (r.min(), r.max());
    let step = sim.surface.dx_m as f64;
    let mut y = lo.y + 0.5 * step;
    while y < hi.y {
        let mut x = lo.x + 0.5 * step;
        while x < hi.x {
            if let Some(c) = sim.cell_at(DVec2::new(x, y)) {
                let ctr = sim.centre(c);
                if g.contains(&Point::new(ctr.x, ctr.y)) {
                    inside.push(c);
                }
            }
            x += step;
        }
        y += step;
    }
    inside.sort_unstable();
    inside.dedup();
    inside
}

/// The grid cells a line passes over (sampled every half cell).
pub(crate) fn cells_along(sim: &FloodSim, ls: &LineString<f64>) -> Vec<usize> {
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

/// Import the scene's SWMM model (if any) as entities, then build the drainage model from the
/// world's drainage entities, with an inlet for every manhole on the grid.
fn build_drainage(
    world: &mut World,
    sim: &FloodSim,
    p: &FloodParams,
) -> Result<Option<DrainageState>, String> {
    let clock = world.resource::<SimClock>().clone();
    let mut options = Options {
        routing: spec::Routing::Dynamic,
        routing_step_s: p.drainage_step_s,
        courant_factor: 0.75,
        min_step_s: 0.5,
        ..Default::default()
    };
    let mut warnings = Vec::new();
    let mut model_gauges = Vec::new();
    if let Some(path) = &p.drainage {
        let file = world
            .get_resource::<SceneFiles>()
            .ok_or("the flood simulation needs a scene (no SceneFiles resource)")?
            .resolve(path);
        let model = read_inp(&file).map_err(|e| format!("`drainage`: {e}"))?;
        let crs = p
            .drainage_crs
            .as_deref()
            .ok_or("`drainage_crs`: the CRS of the SWMM model's coordinates is needed to place it (e.g. \"EPSG:4548\")")?;
        let srs = parse_crs(crs).map_err(|e| format!("`drainage_crs`: {e}"))?;
        let frame = world.resource::<GeoFrame>().clone();
        let rp = Reprojector::new(&srs, &frame).map_err(|e| format!("`drainage_crs`: {e}"))?;
        let place = |(x, y): (f64, f64)| -> Result<DVec2, String> {
            rp.transform(Coord { x, y })
                .map(|c| DVec2::new(c.x, c.y))
                .map_err(|e| format!("`drainage` {}: {e}", file.display()))
        };
        spawn_inp(world, &model, "drainage", &place)
            .map_err(|e| format!("`drainage` {}: {e}", file.display()))?;
        warnings = model.warnings.clone();
        if p.drainage_rain {
            model_gauges = model.spec.gauges.clone();
        }
        options = model.spec.options.clone();
    }
    // The scene's clock rules: its duration, its local start for patterns, and runoff in step
    // with it.
    options.duration_s = clock.duration_s() + clock.step_s();
    options.start_epoch_s = clock.start_local_s();
    options.wet_step_s = clock.step_s();
    options.dry_step_s = clock.step_s();
    let Some(wn) = network_from_world(world, options)? else {
        return Ok(None);
    };
    let model = Drainage::new(&wn.spec).map_err(|e| e.to_string())?;
    let coeffs = InletCoeffs {
        weir: p.inlets.weir_coeff,
        orifice: p.inlets.orifice_coeff,
    };
    let mut inlets = Vec::new();
    let mut cell_of_node = vec![None; wn.spec.nodes.len()];
    for (i, n) in wn.spec.nodes.iter().enumerate() {
        let NodeKind::Junction(m) = &n.kind else {
            continue;
        };
        let Some(cell) = open_cell_near(sim, wn.node_xy[i]) else {
            continue;
        };
        let area = p
            .inlets
            .area_m2
            .unwrap_or(if m.area_m2 > 0.0 { m.area_m2 } else { 0.5 });
        inlets.push(Inlet {
            node: i,
            cell,
            area_m2: area,
            perimeter_m: 4.0 * area.sqrt(),
        });
        cell_of_node[i] = Some(cell);
    }
    let n_inlets = inlets.len();
    Ok(Some(DrainageState {
        model,
        node_names: wn.spec.nodes.iter().map(|n| n.name.clone()).collect(),
        link_names: wn.spec.links.iter().map(|l| l.name.clone()).collect(),
        nodes: wn.nodes,
        links: wn.links,
        inlets,
        cell_of_node,
        coeffs,
        last_capture_m3s: vec![0.0; n_inlets],
        model_gauges,
        warnings,
        captured_m3: 0.0,
        returned_m3: 0.0,
        lost_m3: 0.0,
    }))
}

/// The open cell a manhole at `p` drains: its own, or the nearest open one around it when a
/// building covers it.
fn open_cell_near(sim: &FloodSim, p: DVec2) -> Option<usize> {
    let c = sim.cell_at(p)?;
    if !sim.surface.blocked[c] {
        return Some(c);
    }
    let nx = sim.surface.nx as i64;
    let ny = sim.surface.ny as i64;
    let (i, j) = ((c as i64) % nx, (c as i64) / nx);
    let mut best: Option<(f64, usize)> = None;
    for dj in -2..=2 {
        for di in -2..=2 {
            let (a, b) = (i + di, j + dj);
            if a < 0 || b < 0 || a >= nx || b >= ny {
                continue;
            }
            let k = (b * nx + a) as usize;
            if sim.surface.blocked[k] {
                continue;
            }
            let d = sim.centre(k).distance_squared(p);
            if best.is_none_or(|(bd, bk)| d < bd || (d == bd && k < bk)) {
                best = Some((d, k));
            }
        }
    }
    best.map(|b| b.1)
}

/// Cells inside subcatchments (their rain is the subcatchments' runoff); none if none.
fn runoff_cells(world: &mut World, sim: &FloodSim, d: &DrainageState) -> Option<Vec<bool>> {
    if d.model.runoff.catchments.is_empty() {
        return None;
    }
    let mut mask = vec![false; sim.surface.nx * sim.surface.ny];
    let mut any = false;
    let mut q = world.query::<(&Subcatchment, &Shape)>();
    for (_, s) in q.iter(world) {
        for c in cells_in(sim, &s.0) {
            mask[c] = true;
            any = true;
        }
    }
    any.then_some(mask)
}
