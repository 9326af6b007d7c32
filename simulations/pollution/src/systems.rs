//! The pollution simulation's systems on the engine's schedule.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use bevy::prelude::*;
use citytwin_engine::prelude::*;
use citytwin_engine::rng::Rng;
use geo::Centroid;

use super::*;
use crate::emission::EmissionClass;
use crate::plume::Plume;
use crate::puff::SourceGeometry;

/// An emission source as the systems read it (queried `Without<Vehicle>`, so that reading
/// sources' positions provably never races the traffic moving vehicles in the same set).
type SourceItem = (
    Entity,
    &'static EmissionSource,
    Option<&'static Position>,
    Option<&'static Shape>,
    Option<&'static FeatureId>,
);

/// One step of the dispersion models: plumes for this step's weather, puffs released and moved,
/// the grid advanced.
pub(crate) fn step_pollution(
    clock: Res<SimClock>,
    mut sim: ResMut<PollutionSim>,
    sources: Query<SourceItem, Without<Vehicle>>,
) {
    let sim = &mut *sim;
    let (dt, t) = (clock.step_s(), clock.elapsed_s());
    let w = sim.weather.at(t);
    let default_mode = sim.point_model.unwrap_or(if sim.weather.is_constant() {
        PointModel::Plume
    } else {
        PointModel::Puff
    });
    sim.plumes.clear();
    let mut list: Vec<_> = sources.iter().collect();
    list.sort_by_key(|s| s.0);
    let interval = sim.params.puff_interval_s;
    let (terrain, curves) = (sim.terrain, sim.curves);
    for (e, src, pos, shape, _) in &list {
        let Some(g) = source_geom(src, *pos, *shape) else {
            continue;
        };
        let s = sim.species_index(&src.pollutant);
        let st = sim.sources.entry(*e).or_insert(SourceState {
            mode: default_mode,
            rate_kg_s: src.rate_kg_s,
            pending_kg: 0.0,
            since_puff_s: 0.0,
        });
        if st.rate_kg_s != src.rate_kg_s {
            // A steady plume cannot follow a change of rate: puffs from now on.
            st.mode = PointModel::Puff;
            st.rate_kg_s = src.rate_kg_s;
        }
        let rate = src.rate_kg_s.max(0.0);
        match st.mode {
            PointModel::Plume => {
                if rate > 0.0 {
                    let mut p = Plume::new(g.xy_m, g.height_m, g.exit, rate, w, terrain, curves);
                    p.initial_sigma_m = g.sigma0_m;
                    sim.plumes.push((s, p));
                }
            }
            PointModel::Puff => {
                st.pending_kg += rate * dt;
                st.since_puff_s += dt;
                if st.since_puff_s >= interval - 1e-9 {
                    let mass = std::mem::take(&mut st.pending_kg);
                    st.since_puff_s = 0.0;
                    if mass > 0.0 {
                        sim.puffs
                            .release(e.to_bits() as u32, s as u32, &g, mass, &w);
                        sim.balance[s].puff_emitted_kg += mass;
                    }
                }
            }
        }
    }
    sim.sources
        .retain(|e, _| list.binary_search_by_key(e, |s| s.0).is_ok());
    let bounds = sim.grid.spec().bounds();
    for (s, kg) in sim.puffs.step(dt, &w, bounds) {
        sim.balance[s as usize].puff_left_kg += kg;
    }
    if sim.grid.nspecies() > 0 {
        let stale = sim.transport.as_ref().is_none_or(|(tw, _)| *tw != w);
        if stale {
            let tr = grid::Transport::from_weather(sim.grid.spec(), &w, terrain, curves);
            sim.transport = Some((w, tr));
        }
        let (_, tr) = sim.transport.as_ref().expect("set above");
        sim.grid.step(dt, tr);
    }
}

/// Vehicles' exhaust into the grid cell under each vehicle (a coupling: it reads the traffic
/// simulation's vehicles, through the engine's components only).
pub(crate) fn traffic_emissions(
    clock: Res<SimClock>,
    mut sim: ResMut<PollutionSim>,
    vehicles: Query<(&FeatureId, &Vehicle, &Position)>,
) {
    if sim.traffic_map.is_empty() {
        return;
    }
    let sim = &mut *sim;
    let dt = clock.step_s();
    // In feature-id order: entity ids of vehicles are not state (a restored checkpoint gives
    // them new ones), so the sums must not follow them.
    let mut list: Vec<_> = vehicles.iter().collect();
    list.sort_by(|a, b| a.0.cmp(b.0));
    for (_, v, p) in list {
        let Some((i, j)) = sim.grid.spec().cell_of([p.xy_m.x, p.xy_m.y]) else {
            continue;
        };
        let class = EmissionClass::for_kind(v.kind);
        for &(ex, s) in &sim.traffic_map {
            let kg = class.rate_kg_s(ex, v.speed_mps, v.accel_mps2) * dt;
            if kg > 0.0 {
                let g = sim
                    .grid_species
                    .iter()
                    .position(|&x| x == s)
                    .expect("traffic species are on the grid");
                sim.grid.add_mass(g, i, j, 0, kg);
                sim.balance[s].grid_emitted_kg += kg;
            }
        }
    }
}

/// Every step: each air-quality station samples the species it measures.
pub(crate) fn sample_stations(
    clock: Res<SimClock>,
    mut sim: ResMut<PollutionSim>,
    sensors: Query<(Entity, &Sensor, &Position)>,
) {
    let sim = &mut *sim;
    let w = sim.weather.at(clock.elapsed_s());
    let z = sim.params.receptor_height_m;
    for (e, sensor, pos) in &sensors {
        let SensorKind::AirQuality { pollutants } = &sensor.kind else {
            continue;
        };
        for name in pollutants {
            let Some(s) = sim.species.iter().position(|x| x == name) else {
                continue;
            };
            let c = sim.concentration(s, [pos.xy_m.x, pos.xy_m.y], z, &w);
            let acc = sim.station_sums.entry((e, s)).or_insert((0.0, 0));
            acc.0 += c;
            acc.1 += 1;
        }
    }
}

/// A building whose occupants' dose is followed.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub(crate) struct DoseReceptor {
    entity: Entity,
    xy_m: [f64; 2],
    occupants: u32,
    name: String,
}

/// mg·min/m³ in kg·s/m³.
const KG_S_M3_PER_MG_MIN_M3: f64 = 1e-6 * 60.0;

/// Every step: the dose (concentration × step) at each building's centroid for the species
/// with a dose limit; a building passing its limit raises `pollution.dose_exceeded` once.
pub(crate) fn accumulate_doses(
    clock: Res<SimClock>,
    mut sim: ResMut<PollutionSim>,
    buildings: Query<(Entity, &Building, &Shape, Option<&FeatureId>)>,
    mut events: ResMut<EventLog>,
) {
    if sim.params.dose_limits_mg_min_m3.is_empty() {
        return;
    }
    let sim = &mut *sim;
    let receptors = sim.dose_receptors.take().unwrap_or_else(|| {
        let mut list: Vec<DoseReceptor> = buildings
            .iter()
            .filter_map(|(e, b, shape, fid)| {
                let c = shape.0.centroid()?;
                Some(DoseReceptor {
                    entity: e,
                    xy_m: [c.x(), c.y()],
                    occupants: b.occupants,
                    name: fid.map(|f| f.id.clone()).unwrap_or_else(|| format!("{e}")),
                })
            })
            .collect();
        list.sort_by_key(|r| r.entity);
        list
    });
    let t = clock.elapsed_s();
    let dt = clock.step_s();
    let w = sim.weather.at(t);
    let z = sim.params.receptor_height_m;
    for (sp, &limit_mg_min) in &sim.params.dose_limits_mg_min_m3 {
        let Some(s) = sim.species.iter().position(|x| x == sp) else {
            continue;
        };
        let limit = limit_mg_min * KG_S_M3_PER_MG_MIN_M3;
        for r in &receptors {
            let c = sim.concentration(s, r.xy_m, z, &w);
            if c <= 0.0 {
                continue;
            }
            let d = sim
                .doses
                .entry((sp.clone(), r.entity))
                .or_insert((0.0, false));
            d.0 += c * dt;
            if !d.1 && d.0 > limit {
                d.1 = true;
                events.push(SimEvent {
                    kind: "pollution.dose_exceeded".into(),
                    entity: Some(r.entity),
                    xy_m: Some(bevy::math::DVec2::new(r.xy_m[0], r.xy_m[1])),
                    message: format!(
                        "{sp} at building {} ({} people): {:.0} mg·min/m³ since the start, past the limit of {limit_mg_min} mg·min/m³",
                        r.name,
                        r.occupants,
                        d.0 / KG_S_M3_PER_MG_MIN_M3
                    ),
                });
            }
        }
    }
    sim.dose_receptors = Some(receptors);
}

pub(crate) fn receptors_due(clock: Res<SimClock>, sim: Res<PollutionSim>) -> bool {
    clock.is_every(sim.params.receptor_interval_s)
}

pub(crate) fn maps_due(clock: Res<SimClock>, sim: Res<PollutionSim>) -> bool {
    clock.is_every(sim.params.map_interval_s)
}

fn ug(v: f64) -> f64 {
    v * UG_M3_PER_KG_M3
}

/// Readings at the air-quality stations (KPIs, and kept for tracing) and at buildings; limits
/// crossed either way become events.
pub(crate) fn read_receptors(
    clock: Res<SimClock>,
    mut sim: ResMut<PollutionSim>,
    sensors: Query<(Entity, &Sensor, &Position)>,
    buildings: Query<(Entity, &Building, &Shape, Option<&FeatureId>)>,
    mut kpis: ResMut<Kpis>,
    mut events: ResMut<EventLog>,
) {
    let sim = &mut *sim;
    let t = clock.elapsed_s();
    let w = sim.weather.at(t);
    let z = sim.params.receptor_height_m;
    let mut checks: Vec<(Entity, usize, f64, [f64; 2], String)> = Vec::new();
    let mut list: Vec<_> = sensors.iter().collect();
    list.sort_by_key(|s| s.0);
    for (e, sensor, pos) in list {
        let SensorKind::AirQuality { pollutants } = &sensor.kind else {
            continue;
        };
        let xy = [pos.xy_m.x, pos.xy_m.y];
        for name in pollutants {
            let Some(s) = sim.species.iter().position(|x| x == name) else {
                continue;
            };
            let c = match sim.station_sums.remove(&(e, s)) {
                Some((sum, n)) if n > 0 => sum / n as f64,
                _ => sim.concentration(s, xy, z, &w),
            };
            kpis.set(&format!("pollution.{name}"), &sensor.station, c, "kg/m3");
            sim.readings.push(Reading {
                station: sensor.station.clone(),
                xy_m: xy,
                t_s: t,
                species: name.clone(),
                value_kg_m3: c,
            });
            checks.push((e, s, c, xy, format!("station {}", sensor.station)));
        }
    }
    let limited: Vec<(usize, f64)> = sim
        .params
        .thresholds_ug_m3
        .iter()
        .filter_map(|(k, v)| sim.species.iter().position(|x| x == k).map(|s| (s, *v)))
        .collect();
    let mut over = vec![0usize; sim.species.len()];
    let mut people = vec![0u64; sim.species.len()];
    let mut blist: Vec<_> = buildings.iter().collect();
    blist.sort_by_key(|b| b.0);
    for (e, b, shape, fid) in blist {
        let Some(c) = shape.0.centroid() else {
            continue;
        };
        let xy = [c.x(), c.y()];
        for &(s, limit) in &limited {
            let v = sim.concentration(s, xy, z, &w);
            if ug(v) > limit {
                over[s] += 1;
                people[s] += b.occupants as u64;
            }
            let name = fid.map(|f| f.id.clone()).unwrap_or_else(|| format!("{e}"));
            checks.push((
                e,
                s,
                v,
                xy,
                format!("building {name} ({} people)", b.occupants),
            ));
        }
    }
    for &(s, _) in &limited {
        let sp = sim.species[s].clone();
        kpis.set(
            &format!("pollution.{sp}.buildings_over_limit"),
            "city",
            over[s] as f64,
            "1",
        );
        kpis.set(
            &format!("pollution.{sp}.people_over_limit"),
            "city",
            people[s] as f64,
            "1",
        );
    }
    for (e, s, c, xy, what) in checks {
        let sp = &sim.species[s];
        let Some(&limit) = sim.params.thresholds_ug_m3.get(sp) else {
            continue;
        };
        let now = ug(c) > limit;
        let was = sim.exceeded.insert((e, s), now).unwrap_or(false);
        if now != was {
            events.push(SimEvent {
                kind: if now {
                    "pollution.exceedance".into()
                } else {
                    "pollution.exceedance_end".into()
                },
                entity: Some(e),
                xy_m: Some(bevy::math::DVec2::new(xy[0], xy[1])),
                message: if now {
                    format!(
                        "{sp} at {what}: {:.1} µg/m³, above the limit of {limit} µg/m³",
                        ug(c)
                    )
                } else {
                    format!(
                        "{sp} at {what}: {:.1} µg/m³, back under the limit of {limit} µg/m³",
                        ug(c)
                    )
                },
            });
        }
    }
}

/// The doses' KPIs, per species with a dose limit: the most any building has had (kg·s/m³),
/// and the buildings and people past the limit.
fn dose_kpis(sim: &PollutionSim, kpis: &mut Kpis) {
    let Some(receptors) = &sim.dose_receptors else {
        return;
    };
    let people: BTreeMap<Entity, u32> = receptors.iter().map(|r| (r.entity, r.occupants)).collect();
    for sp in sim.params.dose_limits_mg_min_m3.keys() {
        let (mut max, mut buildings, mut exposed) = (0.0f64, 0u64, 0u64);
        for ((_, e), (dose, over)) in sim.doses.iter().filter(|((s, _), _)| s == sp) {
            max = max.max(*dose);
            if *over {
                buildings += 1;
                exposed += people.get(e).copied().unwrap_or(0) as u64;
            }
        }
        kpis.set(&format!("pollution.{sp}.max_dose"), "city", max, "kg.s/m3");
        kpis.set(
            &format!("pollution.{sp}.buildings_exposed"),
            "city",
            buildings as f64,
            "1",
        );
        kpis.set(
            &format!("pollution.{sp}.people_exposed"),
            "city",
            exposed as f64,
            "1",
        );
    }
}

/// Concentration maps, averaged per H3 cell, into the store's `fields` table.
pub(crate) fn record_maps(
    clock: Res<SimClock>,
    sim: Res<PollutionSim>,
    mut fields: ResMut<FieldLog>,
    mut kpis: ResMut<Kpis>,
) {
    let w = sim.weather.at(clock.elapsed_s());
    let min = sim.params.map_min_ug_m3 / UG_M3_PER_KG_M3;
    for (s, name) in sim.species.iter().enumerate() {
        let map = sim.map(s, &w);
        let peak = map.iter().cloned().fold(0.0, f64::max);
        kpis.set(&format!("pollution.{name}.max"), "city", peak, "kg/m3");
        let mut cells: BTreeMap<u64, (f64, u32)> = BTreeMap::new();
        for (v, &h3) in map.iter().zip(&sim.map_h3) {
            if h3 != 0 {
                let e = cells.entry(h3).or_insert((0.0, 0));
                e.0 += v;
                e.1 += 1;
            }
        }
        let cells: Vec<(u64, f64)> = cells
            .into_iter()
            .map(|(h, (sum, n))| (h, sum / n as f64))
            .filter(|(_, v)| *v >= min)
            .collect();
        if !cells.is_empty() {
            fields.push(FieldSample {
                name: format!("pollution.{name}"),
                unit: "kg/m3",
                cells,
            });
        }
    }
}

/// Weather and mass-balance KPIs.
pub(crate) fn pollution_kpis(clock: Res<SimClock>, sim: Res<PollutionSim>, mut kpis: ResMut<Kpis>) {
    dose_kpis(&sim, &mut kpis);
    let w = sim.weather.at(clock.elapsed_s());
    kpis.set("pollution.wind_speed", "city", w.wind_speed_mps, "m/s");
    kpis.set("pollution.wind_from", "city", w.wind_from_deg, "deg");
    kpis.set(
        "pollution.stability_class",
        "city",
        (w.stability.index() + 1) as f64,
        "1",
    );
    for (s, name) in sim.species.iter().enumerate() {
        let b = sim.balance[s];
        let puff_air = sim.puffs.mass_kg(s as u32);
        let (grid_air, grid_out) = match sim.grid_species.iter().position(|&x| x == s) {
            Some(g) => (sim.grid.mass_kg(g), sim.grid.outflow_kg(g)),
            None => (0.0, 0.0),
        };
        let emitted = b.puff_emitted_kg + b.grid_emitted_kg;
        let airborne = puff_air + grid_air;
        let left = b.puff_left_kg + grid_out;
        kpis.set(&format!("pollution.{name}.emitted"), "city", emitted, "kg");
        kpis.set(
            &format!("pollution.{name}.airborne"),
            "city",
            airborne,
            "kg",
        );
        kpis.set(&format!("pollution.{name}.left_area"), "city", left, "kg");
        kpis.set(
            &format!("pollution.{name}.balance_error"),
            "city",
            emitted - airborne - left,
            "kg",
        );
    }
}

/// When the tracing window closes: rank the candidates, write the report, KPIs and events.
pub(crate) fn trace_when_due(
    clock: Res<SimClock>,
    mut sim: ResMut<PollutionSim>,
    rng: Res<SimRng>,
    sources: Query<SourceItem, Without<Vehicle>>,
    // What `readings = "feeds"` reads: the stations and the scene's feeds.
    (stations, feeds): (
        Query<(&Sensor, &Position), Without<Vehicle>>,
        Option<Res<citytwin_engine::feeds::Feeds>>,
    ),
    mut kpis: ResMut<Kpis>,
    mut events: ResMut<EventLog>,
) {
    let Some(tp) = sim.params.tracing.clone() else {
        return;
    };
    if sim.tracing_done {
        return;
    }
    let t = clock.elapsed_s();
    let last = clock.tick() + 1 >= clock.end_tick();
    let end = tp.end_s.unwrap_or(f64::INFINITY);
    if !(last || t >= end) {
        return;
    }
    sim.tracing_done = true;
    if tp.readings == FEED_READINGS {
        sim.file_readings = Some(feed_readings(&tp, feeds.as_deref(), &stations));
    }
    let outcome = run_tracing(&mut sim, &tp, clock.step_s(), &rng, &sources);
    match outcome {
        Ok((result, text)) => {
            for e in &result.estimates {
                kpis.set("pollution.trace.rate", &e.id, e.rate_kg_s, "kg/s");
                kpis.set("pollution.trace.std", &e.id, e.std_kg_s, "kg/s");
            }
            if let Some(top) = result.estimates.first() {
                events.push(SimEvent {
                    kind: "pollution.trace".into(),
                    entity: None,
                    xy_m: None,
                    message: format!(
                        "{}: most likely source {} at {:.3} ± {:.3} g/s ({:.0} % of the signal); R² {:.3}",
                        tp.pollutant,
                        top.id,
                        top.rate_kg_s * 1000.0,
                        top.std_kg_s * 1000.0,
                        top.share * 100.0,
                        result.r_squared
                    ),
                });
            }
            if let Some(path) = &sim.report_path {
                let written = path
                    .parent()
                    .map(std::fs::create_dir_all)
                    .unwrap_or(Ok(()))
                    .and_then(|_| std::fs::write(path, &text));
                if let Err(e) = written {
                    events.push(SimEvent {
                        kind: "pollution.trace_failed".into(),
                        entity: None,
                        xy_m: None,
                        message: format!("cannot write the tracing report {}: {e}", path.display()),
                    });
                }
            }
        }
        Err(m) => events.push(SimEvent {
            kind: "pollution.trace_failed".into(),
            entity: None,
            xy_m: None,
            message: format!("tracing {}: {m}", tp.pollutant),
        }),
    }
}

/// `tracing.readings` naming the scene's sensor feeds.
pub(crate) const FEED_READINGS: &str = "feeds";

/// The traced pollutant's readings at the scene's air-quality stations, from its `[[feed]]`
/// series (already in SI and checked by the engine), each reading at its own time; with
/// what to call them in the report.
fn feed_readings(
    tp: &TracingParams,
    feeds: Option<&citytwin_engine::feeds::Feeds>,
    stations: &Query<(&Sensor, &Position), Without<Vehicle>>,
) -> (std::path::PathBuf, Vec<Reading>) {
    let at: BTreeMap<&str, [f64; 2]> = stations
        .iter()
        .filter(|(s, _)| matches!(s.kind, SensorKind::AirQuality { .. }))
        .map(|(s, p)| (s.station.as_str(), [p.xy_m.x, p.xy_m.y]))
        .collect();
    let mut out = Vec::new();
    for s in feeds.map_or(&[][..], |f| &f.series[..]) {
        let Some(&xy) = at.get(s.station.as_str()) else {
            continue;
        };
        if !s.quantity.eq_ignore_ascii_case(&tp.pollutant) || s.unit != "kg/m3" {
            continue;
        }
        out.extend(s.readings.iter().map(|&(t_s, v)| Reading {
            station: s.station.clone(),
            xy_m: xy,
            t_s,
            species: tp.pollutant.clone(),
            value_kg_m3: v,
        }));
    }
    (std::path::PathBuf::from("the scene's sensor feeds"), out)
}

/// A tracing candidate: a place that might emit.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
struct Candidate {
    id: String,
    at: SourceGeometry,
}

fn run_tracing(
    sim: &mut PollutionSim,
    tp: &TracingParams,
    dt_s: f64,
    rng: &SimRng,
    sources: &Query<SourceItem, Without<Vehicle>>,
) -> Result<(tracing::TraceResult, String), String> {
    let end = tp.end_s.unwrap_or(f64::INFINITY);
    let (mut readings, origin_desc, t0) = match &sim.file_readings {
        None => {
            let mut r: Vec<Reading> = sim
                .readings
                .iter()
                .filter(|r| r.species == tp.pollutant && r.t_s >= tp.start_s && r.t_s <= end)
                .cloned()
                .collect();
            if tp.noise_fraction > 0.0 {
                let mut g = rng.stream("pollution.tracing.noise");
                for x in &mut r {
                    x.value_kg_m3 *= (1.0 + tp.noise_fraction * normal(&mut g)).max(0.0);
                }
            }
            let desc = format!(
                "this run's station readings{}",
                if tp.noise_fraction > 0.0 {
                    format!(" with {:.0} % noise added", tp.noise_fraction * 100.0)
                } else {
                    String::new()
                }
            );
            (r, desc, 0.0)
        }
        Some((path, all)) => {
            let r: Vec<Reading> = all
                .iter()
                .filter(|r| r.species == tp.pollutant && r.t_s >= tp.start_s && r.t_s <= end)
                .cloned()
                .collect();
            // Sources emitted before the window: an hour of spin-up.
            (
                r,
                format!("readings from {}", path.display()),
                tp.start_s - 3600.0,
            )
        }
    };
    readings.sort_by(|a, b| a.t_s.total_cmp(&b.t_s).then(a.station.cmp(&b.station)));
    // Candidates: every emission source (sources at the same place and height are one
    // candidate), then the extra places.
    let mut cands: Vec<Candidate> = Vec::new();
    let mut list: Vec<_> = sources.iter().collect();
    list.sort_by_key(|s| s.0);
    for (e, src, pos, shape, fid) in list {
        let Some(g) = source_geom(src, pos, shape) else {
            continue;
        };
        let id = fid.map(|f| f.id.clone()).unwrap_or_else(|| format!("{e}"));
        if let Some(c) = cands.iter_mut().find(|c| {
            (c.at.xy_m[0] - g.xy_m[0]).abs() < 1.0
                && (c.at.xy_m[1] - g.xy_m[1]).abs() < 1.0
                && (c.at.height_m - g.height_m).abs() < 0.5
        }) {
            c.id = format!("{} + {id}", c.id);
            continue;
        }
        cands.push(Candidate { id, at: g });
    }
    for (id, xy, h) in &sim.extra_candidates {
        cands.push(Candidate {
            id: id.clone(),
            at: SourceGeometry {
                xy_m: *xy,
                height_m: *h,
                exit: plume::StackExit::default(),
                sigma0_m: [1.0, 1.0],
            },
        });
    }
    let avg = sim.params.receptor_interval_s;
    let footprints: Vec<Vec<f64>> = cands
        .iter()
        .map(|c| footprint(sim, c, &readings, t0, dt_s, avg))
        .collect();
    let ids: Vec<String> = cands.iter().map(|c| c.id.clone()).collect();
    let values: Vec<f64> = readings.iter().map(|r| r.value_kg_m3).collect();
    let errors = tracing::ErrorModel {
        absolute_kg_m3: tp.absolute_error_ug_m3 / UG_M3_PER_KG_M3,
        relative: tp.relative_error,
    };
    let result = tracing::trace(&ids, &footprints, &values, tp.background, errors)
        .map_err(|e| e.to_string())?;
    let stations: std::collections::BTreeSet<&str> =
        readings.iter().map(|r| r.station.as_str()).collect();
    let mut text = String::new();
    let _ = writeln!(text, "# Source tracing: {}\n", tp.pollutant);
    let _ = writeln!(
        text,
        "{} readings at {} station(s) ({}) between {} s and {} s, from {}.\n",
        result.readings,
        stations.len(),
        stations.iter().copied().collect::<Vec<_>>().join(", "),
        tp.start_s,
        readings.last().map(|r| r.t_s).unwrap_or(tp.start_s),
        origin_desc
    );
    let _ = writeln!(
        text,
        "Each candidate's footprint is what every station would have reported (its mean over the reading period) per kg/s the candidate emits steadily, from Gaussian puffs in the run's weather; the rates are a non-negative least-squares fit (Lawson–Hanson), ± one standard error. The standard errors treat readings as independent; readings that follow each other are not, so take them as a lower bound.\n"
    );
    let _ = writeln!(
        text,
        "| rank | candidate | rate (g/s) | ± (g/s) | share of signal |"
    );
    let _ = writeln!(text, "|---:|---|---:|---:|---:|");
    for (k, e) in result.estimates.iter().enumerate() {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {:.1} % |",
            k + 1,
            e.id,
            sig3(e.rate_kg_s * 1000.0),
            sig3(e.std_kg_s * 1000.0),
            e.share * 100.0
        );
    }
    let _ = writeln!(
        text,
        "\nBackground {} µg/m³; R² {:.3}; RMS residual {} µg/m³. Readings weighted by an assumed error of {} µg/m³ + {:.0} %.",
        sig3(ug(result.background_kg_m3)),
        result.r_squared,
        sig3(ug(result.rms_residual_kg_m3)),
        tp.absolute_error_ug_m3,
        tp.relative_error * 100.0
    );
    Ok((result, text))
}

/// What each reading would have been per kg/s emitted by the candidate from `t0_s` on: puffs
/// released and moved exactly as the run does (same step, same puff phase), and each reading the
/// mean over its averaging period `(t − avg_s, t]`, as the stations report.
fn footprint(
    sim: &PollutionSim,
    c: &Candidate,
    readings: &[Reading],
    t0_s: f64,
    dt_s: f64,
    avg_s: f64,
) -> Vec<f64> {
    let mut sums = vec![0.0; readings.len()];
    let mut counts = vec![0u32; readings.len()];
    let Some(last) = readings.last().map(|r| r.t_s) else {
        return sums;
    };
    let interval = sim.params.puff_interval_s;
    let mut cloud = PuffCloud::new(sim.curves, sim.terrain);
    let bounds = sim.grid.spec().bounds();
    let z = sim.params.receptor_height_m;
    let (mut pending, mut since) = (0.0, 0.0);
    let mut n: u64 = 0;
    loop {
        let t = t0_s + n as f64 * dt_s;
        if t > last + 1e-9 {
            break;
        }
        let w = sim.weather.at(t);
        pending += dt_s;
        since += dt_s;
        if since >= interval - 1e-9 {
            cloud.release(0, 0, &c.at, pending, &w);
            pending = 0.0;
            since = 0.0;
        }
        cloud.step(dt_s, &w, bounds);
        // Readings whose period contains t: t_k − avg < t ≤ t_k (readings are sorted by time).
        let lo = readings.partition_point(|r| r.t_s < t - 1e-9);
        let hi = readings.partition_point(|r| r.t_s - avg_s < t - 1e-9);
        for k in lo..hi.max(lo) {
            sums[k] += cloud.concentration(0, readings[k].xy_m, z, &w);
            counts[k] += 1;
        }
        n += 1;
    }
    sums.iter()
        .zip(&counts)
        .map(|(s, &n)| if n > 0 { s / n as f64 } else { 0.0 })
        .collect()
}

/// Three significant figures, without exponents for everyday magnitudes.
fn sig3(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 0.01 && v.abs() < 1e5 {
        let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
        format!("{v:.digits$}")
    } else {
        format!("{v:.2e}")
    }
}

/// A standard normal draw (Box–Muller).
fn normal(g: &mut impl Rng) -> f64 {
    let a = ((g.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let b = ((g.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
}

/// Read station readings: columns `station`, `time_s` or `time`, `pollutant`, `value_ug_m3`.
pub fn read_readings(
    path: &std::path::Path,
    stations: &BTreeMap<String, [f64; 2]>,
    start_unix_s: f64,
) -> Result<Vec<Reading>, PollutionError> {
    let text = crate::csv::read_text(path, "readings file")?;
    let table = crate::csv::Table::parse(path, &text)?;
    table.require(&["station", "pollutant", "value_ug_m3"])?;
    let mut out = Vec::new();
    for row in table.rows() {
        let err = |message: String| PollutionError::Parse {
            file: path.to_path_buf(),
            line: row.line,
            message,
        };
        let station = row.str("station")?.to_string();
        let Some(&xy) = stations.get(&station) else {
            return Err(err(format!(
                "station '{station}' is not a sensor of the scene"
            )));
        };
        let t_s = row.time_s(start_unix_s)?;
        let v = row.f64("value_ug_m3")?;
        if v < 0.0 {
            return Err(err(format!("column `value_ug_m3`: {v} is negative")));
        }
        out.push(Reading {
            station,
            xy_m: xy,
            t_s,
            species: row.str("pollutant")?.to_string(),
            value_kg_m3: v / UG_M3_PER_KG_M3,
        });
    }
    Ok(out)
}
