//! The flood's systems: a SWMM model's gauges raining on the city (Ingest), the coupled step
//! of street and sewer (Physics), and events, KPIs, maps and exports (Metrics).

use std::collections::BTreeMap;

use bevy::math::DVec2;
use bevy::prelude::*;
use citytwin_engine::output::{cells_to_polygons, write_geotiff, write_polygons};
use citytwin_engine::prelude::*;
use citytwin_engine::scene::SceneFiles;

use crate::coupling::capture_m3s;
use crate::drainage::network::LinkType;
use crate::{DrainageState, FloodSim};

pub(crate) fn maps_due(clock: Res<SimClock>, sim: Res<FloodSim>) -> bool {
    clock.is_every(sim.params.map_interval_s) || clock.tick() + 1 >= clock.end_tick()
}

/// An imported SWMM model's rain gauges report their series (read from the scene's start).
pub(crate) fn feed_model_rain(
    clock: Res<SimClock>,
    sim: Res<FloodSim>,
    mut rain: ResMut<Rainfall>,
) {
    let Some(d) = &sim.drainage else { return };
    // As SWMM does, a second into the step guards against round-off at interval edges.
    let t = clock.elapsed_s() + 1.001f64.min(clock.step_s() * 0.999);
    for g in &d.model_gauges {
        rain.set_gauge(&g.name, g.intensity_at(t));
    }
}

/// One step: rain on the grid (uniform, plus each gauge's on the cells nearest it, none on
/// subcatchments), manholes take water off the street, the sewer runs to the end of the
/// step and spills back what it cannot hold, then the surface flows.
pub(crate) fn step_flood(
    clock: Res<SimClock>,
    rain: Res<Rainfall>,
    sensors: Query<(&Sensor, &Position), Without<Vehicle>>,
    mut sim: ResMut<FloodSim>,
) {
    let sim = &mut *sim;
    set_cell_rain(sim, &rain, &sensors);
    let dt = clock.step_s();
    let t_end = clock.elapsed_s() + dt;
    if let Some(d) = &mut sim.drainage {
        exchange(d, &mut sim.surface, &rain, dt, t_end);
    }
    let uniform = if sim.runoff_cells.is_some() {
        0.0
    } else {
        rain.uniform_mps() as f32
    };
    sim.surface.advance(dt, uniform);
    let (limit, t_end) = (sim.params.flooded_depth_m as f32, t_end as f32);
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

/// Rain per cell: Thiessen polygons of the gauges that report, and (with subcatchments) the
/// uniform rain folded in and masked off where the subcatchments take it.
fn set_cell_rain(
    sim: &mut FloodSim,
    rain: &Rainfall,
    sensors: &Query<(&Sensor, &Position), Without<Vehicle>>,
) {
    let n = sim.surface.nx * sim.surface.ny;
    if !rain.gauges().is_empty() && sim.gauge_of_cell.is_none() {
        let mut gauges: Vec<(String, DVec2)> = sensors
            .iter()
            .filter(|(s, _)| matches!(s.kind, SensorKind::RainGauge))
            .map(|(s, p)| (s.station.clone(), p.xy_m))
            .collect();
        gauges.sort_by(|a, b| a.0.cmp(&b.0));
        if !gauges.is_empty() {
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
    let gauge_values = match (&sim.gauge_of_cell, rain.gauges().is_empty()) {
        (Some((names, nearest)), false) => {
            let values: Vec<f32> = names
                .iter()
                .map(|n| rain.gauges().get(n).copied().unwrap_or(0.0) as f32)
                .collect();
            Some((values, nearest))
        }
        _ => None,
    };
    match (&sim.runoff_cells, gauge_values) {
        (None, None) => sim.surface.rain_cell_mps = None,
        (None, Some((values, nearest))) => {
            sim.surface.rain_cell_mps = Some(nearest.iter().map(|&k| values[k as usize]).collect());
        }
        (Some(mask), g) => {
            let u = rain.uniform_mps() as f32;
            sim.surface.rain_cell_mps = Some(
                (0..n)
                    .map(|c| {
                        if mask[c] {
                            0.0
                        } else {
                            u + g.as_ref().map_or(0.0, |(v, near)| v[near[c] as usize])
                        }
                    })
                    .collect(),
            );
        }
    }
}

/// Capture at the inlets, the sewer's step, spills back onto the street.
fn exchange(
    d: &mut DrainageState,
    surface: &mut crate::Surface,
    rain: &Rainfall,
    dt: f64,
    t_end: f64,
) {
    let by_gauge: Vec<f64> = d
        .model
        .gauge_names()
        .iter()
        .map(|g| rain.gauges().get(*g).copied().unwrap_or(0.0))
        .collect();
    d.model.set_rain(rain.uniform_mps(), &by_gauge);
    for k in 0..d.inlets.len() {
        let inlet = d.inlets[k];
        let node = &d.model.net.nodes[inlet.node];
        let full = node.new_depth >= node.full_depth + node.sur_depth - 1e-6;
        let head = node.invert + node.new_depth;
        let h = surface.h_m[inlet.cell] as f64;
        let bed = surface.z_m[inlet.cell] as f64;
        let mut q = capture_m3s(&inlet, d.coeffs, h, bed, head, full);
        // A surcharged manhole holds nothing: it takes no more than its pipes carry away.
        if node.new_depth > node.crown_elev - node.invert {
            let pipes_in = node.inflow - node.new_lat_flow.max(0.0);
            let pipes_out = node.outflow - node.losses - (-node.new_lat_flow).max(0.0);
            q = q.min((pipes_out - pipes_in).max(0.0));
        }
        // Under-relaxed against the last step's capture: the exchange is explicit, and this
        // keeps a manhole at its limit from filling and emptying on alternate steps.
        let q = 0.5 * (q + d.last_capture_m3s[k]);
        let taken = if q > 0.0 {
            surface.exchange(inlet.cell, q * dt)
        } else {
            0.0
        };
        d.last_capture_m3s[k] = taken / dt;
        d.captured_m3 += taken;
        d.model.set_surface_inflow(inlet.node, taken / dt);
    }
    d.model.advance_to(t_end);
    for (i, v) in d.model.take_spills().into_iter().enumerate() {
        if v <= 0.0 {
            continue;
        }
        match d.cell_of_node[i] {
            Some(c) => {
                surface.exchange(c, -v);
                d.returned_m3 += v;
            }
            None => d.lost_m3 += v,
        }
    }
}

/// Which roads, buildings and manholes are over their thresholds, for [`flood_events`].
#[derive(serde::Serialize, serde::Deserialize, Resource, Default)]
pub(crate) struct FloodEventState {
    /// (kind code, entity) to whether it is over.
    over: BTreeMap<(u8, Entity), bool>,
    /// Whether the drainage warnings were raised.
    warned: bool,
}

/// Roads, buildings and manholes crossing their thresholds, as events.
pub(crate) fn flood_events(
    sim: Res<FloodSim>,
    mut events: ResMut<EventLog>,
    mut st: ResMut<FloodEventState>,
) {
    let FloodEventState {
        over: state,
        warned,
    } = &mut *st;
    let limit = sim.params.flooded_depth_m as f32;
    let h = &sim.surface.h_m;
    let mut flip =
        |code: u8, e: Entity, now: bool, kind: String, message: String, events: &mut EventLog| {
            let was = state.insert((code, e), now).unwrap_or(false);
            if now != was {
                events.push(SimEvent {
                    kind,
                    entity: Some(e),
                    xy_m: None,
                    message,
                });
            }
        };
    for (code, kind, list) in [(0u8, "road", &sim.roads), (1, "building", &sim.buildings)] {
        for (e, name, cells) in list {
            let depth = cells.iter().map(|&c| h[c]).fold(0.0f32, f32::max);
            let now = depth > limit;
            flip(
                code,
                *e,
                now,
                format!("flood.{kind}_{}", if now { "flooded" } else { "clear" }),
                format!(
                    "{kind} {name}: water {:.2} m deep, {} the {:.2} m mark",
                    depth,
                    if now { "above" } else { "back under" },
                    limit
                ),
                &mut events,
            );
        }
    }
    let Some(d) = &sim.drainage else { return };
    if !*warned {
        *warned = true;
        for w in &d.warnings {
            events.push(SimEvent {
                kind: "flood.drainage_warning".into(),
                entity: None,
                xy_m: None,
                message: w.clone(),
            });
        }
    }
    for (i, n) in d.model.net.nodes.iter().enumerate() {
        if n.is_outfall() {
            continue;
        }
        let e = d.nodes[i];
        let crown = n.crown_elev - n.invert;
        let surcharged = crown > 0.0 && n.new_depth > crown + 1e-3;
        flip(
            2,
            e,
            surcharged,
            format!(
                "flood.manhole_{}",
                if surcharged {
                    "surcharged"
                } else {
                    "surcharge_end"
                }
            ),
            format!(
                "{}: water {:.2} m deep, {} the crown of its highest pipe ({:.2} m)",
                d.node_names[i],
                n.new_depth,
                if surcharged { "above" } else { "back under" },
                crown
            ),
            &mut events,
        );
        let spilling = n.overflow > 0.0;
        flip(
            3,
            e,
            spilling,
            format!(
                "flood.manhole_{}",
                if spilling { "spilling" } else { "spill_end" }
            ),
            if spilling {
                format!(
                    "{}: the sewer overflows onto the street at {:.3} m³/s",
                    d.node_names[i], n.overflow
                )
            } else {
                format!("{}: no longer overflowing", d.node_names[i])
            },
            &mut events,
        );
    }
}

/// Volumes, flooded area, the balances, and the network's depths and flows.
pub(crate) fn flood_kpis(sim: Res<FloodSim>, mut kpis: ResMut<Kpis>) {
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
        .filter(|(_, _, cells)| cells.iter().any(|&c| s.h_m[c] > limit))
        .count();
    kpis.set("flood.roads_flooded", "city", roads as f64, "1");
    let (inflow, stored, out) = sim.water_balance_m3();
    kpis.set(
        "flood.system_balance_error",
        "city",
        inflow - stored - out,
        "m3",
    );
    kpis.set(
        "flood.system_balance_error_pct",
        "city",
        if inflow > 0.0 {
            100.0 * (inflow - stored - out) / inflow
        } else {
            0.0
        },
        "%",
    );
    let Some(d) = &sim.drainage else { return };
    let m = &d.model;
    let t = &m.totals;
    kpis.set("drainage.captured_volume", "city", d.captured_m3, "m3");
    kpis.set("drainage.spilled_volume", "city", d.returned_m3, "m3");
    kpis.set("drainage.lost_volume", "city", d.lost_m3, "m3");
    kpis.set("drainage.outfall_volume", "city", t.outflow_m3, "m3");
    kpis.set("drainage.stored_volume", "city", m.stored_m3(), "m3");
    kpis.set(
        "drainage.continuity_error",
        "city",
        m.continuity_error_pct(),
        "%",
    );
    let mut surcharged = 0;
    let mut spilling = 0;
    for (i, n) in m.net.nodes.iter().enumerate() {
        if n.is_outfall() {
            continue;
        }
        if n.new_depth > n.crown_elev - n.invert + 1e-3 {
            surcharged += 1;
        }
        if n.overflow > 0.0 {
            spilling += 1;
        }
        kpis.set("drainage.depth", &d.node_names[i], n.new_depth, "m");
    }
    kpis.set("drainage.surcharged_nodes", "city", surcharged as f64, "1");
    kpis.set("drainage.spilling_nodes", "city", spilling as f64, "1");
    let mut full = 0;
    for (j, l) in m.net.links.iter().enumerate() {
        kpis.set("drainage.flow", &d.link_names[j], m.net.flow_m3s(j), "m3/s");
        if let LinkType::Conduit(c) = &l.kind
            && c.a1 >= 0.999 * c.xs.a_full
        {
            full += 1;
        }
    }
    kpis.set("drainage.full_conduits", "city", full as f64, "1");
}

/// For a view that asked: the water depth grid (`flood.depth`, m) at the end of this step.
pub(crate) fn publish_rasters(
    clock: Res<SimClock>,
    sim: Res<FloodSim>,
    mut rasters: ResMut<Rasters>,
) {
    let s = &sim.surface;
    rasters.publish(
        "flood.depth",
        Raster {
            origin_m: sim.origin_m,
            cell_m: s.dx_m as f64,
            nx: s.nx,
            ny: s.ny,
            values: s.h_m.clone(),
            unit: "m",
            t_s: clock.elapsed_s() + clock.step_s(),
        },
    );
}

pub(crate) fn rasters_requested(rasters: Res<Rasters>) -> bool {
    rasters.is_requested()
}

/// Depth and speed maps per H3 cell; at the end the deepest water, the first flooding, and the
/// exports.
pub(crate) fn flood_maps(
    clock: Res<SimClock>,
    sim: Res<FloodSim>,
    files: Option<Res<SceneFiles>>,
    frame: Res<GeoFrame>,
    mut fields: ResMut<FieldLog>,
    mut events: ResMut<EventLog>,
) {
    let min = sim.params.map_min_depth_m as f32;
    let push = |fields: &mut FieldLog, name: &str, values: &[f32], unit: &'static str| {
        let mut cells: BTreeMap<u64, (f64, u32)> = BTreeMap::new();
        for (c, &v) in values.iter().enumerate() {
            let h3 = sim.cell_h3[c];
            if h3 != 0 && !sim.surface.blocked[c] {
                let e = cells.entry(h3).or_insert((0.0, 0));
                e.0 += v as f64;
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
    let s = &sim.surface;
    push(&mut fields, "flood.depth", &s.h_m, "m");
    // Speed where the water is deeper than the map's floor.
    let speed: Vec<f32> = (0..s.nx * s.ny)
        .map(|c| {
            if s.h_m[c] >= min {
                s.speed_mps(c % s.nx, c / s.nx)
            } else {
                0.0
            }
        })
        .collect();
    let mut speed_cells: BTreeMap<u64, (f64, u32)> = BTreeMap::new();
    for (c, &v) in speed.iter().enumerate() {
        let h3 = sim.cell_h3[c];
        if h3 != 0 && !s.blocked[c] && s.h_m[c] >= min {
            let e = speed_cells.entry(h3).or_insert((0.0, 0));
            e.0 += v as f64;
            e.1 += 1;
        }
    }
    fields.push(FieldSample {
        name: "flood.speed".into(),
        unit: "m/s",
        cells: speed_cells
            .into_iter()
            .map(|(k, (s, n))| (k, s / n as f64))
            .collect(),
    });
    if clock.tick() + 1 < clock.end_tick() {
        return;
    }
    push(&mut fields, "flood.max_depth", &sim.max_depth_m, "m");
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
    export(&sim, files.as_deref(), &frame, &mut events);
}

/// The end-of-run files: the deepest water as GeoTIFF, the flooded extent as polygons.
fn export(sim: &FloodSim, files: Option<&SceneFiles>, frame: &GeoFrame, events: &mut EventLog) {
    let resolve = |p: &std::path::Path| files.map_or_else(|| p.to_path_buf(), |f| f.resolve(p));
    let mut report = |ok: Result<String, String>| {
        let (kind, message) = match ok {
            Ok(m) => ("flood.exported", m),
            Err(m) => ("flood.export_failed", m),
        };
        events.push(SimEvent {
            kind: kind.into(),
            entity: None,
            xy_m: None,
            message,
        });
    };
    let masked: Vec<f32> = sim
        .max_depth_m
        .iter()
        .zip(&sim.surface.blocked)
        .map(|(&h, &b)| if b { f32::NAN } else { h })
        .collect();
    if let Some(p) = &sim.params.export_max_depth {
        let path = resolve(p);
        report(
            write_geotiff(&path, &sim.grid, &masked, frame)
                .map(|_| format!("deepest water written to {}", path.display()))
                .map_err(|e| e.to_string()),
        );
    }
    if let Some(p) = &sim.params.export_extent {
        let path = resolve(p);
        let limit = sim.params.flooded_depth_m as f32;
        let polys = cells_to_polygons(&sim.grid, &masked, |h| h > limit);
        // Each polygon with the deepest water inside it.
        let rows: Vec<(geo::Polygon<f64>, f64)> = polys
            .0
            .into_iter()
            .map(|poly| {
                use geo::{BoundingRect, Contains};
                let mut deepest = 0.0f32;
                if let Some(r) = poly.bounding_rect() {
                    let cell = sim.grid.cell_m;
                    let i0 = ((r.min().x - sim.grid.x0_m) / cell).floor().max(0.0) as usize;
                    let j0 = ((r.min().y - sim.grid.y0_m) / cell).floor().max(0.0) as usize;
                    let i1 =
                        (((r.max().x - sim.grid.x0_m) / cell).ceil() as usize).min(sim.grid.nx);
                    let j1 =
                        (((r.max().y - sim.grid.y0_m) / cell).ceil() as usize).min(sim.grid.ny);
                    for j in j0..j1 {
                        for i in i0..i1 {
                            let c = j * sim.grid.nx + i;
                            let ctr = sim.centre(c);
                            if poly.contains(&geo::Point::new(ctr.x, ctr.y))
                                && masked[c].is_finite()
                            {
                                deepest = deepest.max(masked[c]);
                            }
                        }
                    }
                }
                (poly, deepest as f64)
            })
            .collect();
        report(
            write_polygons(&path, "flood_extent", &rows, "max_depth_m", frame)
                .map(|_| {
                    format!(
                        "flood extent ({} areas) written to {}",
                        rows.len(),
                        path.display()
                    )
                })
                .map_err(|e| e.to_string()),
        );
    }
}
