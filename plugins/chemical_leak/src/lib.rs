//! # chemical_leak
//!
//! A chemical release — a tank, a pipe, a tanker on the road — at a place and a time, for a
//! duration, at a rate; and, while the cloud drifts, the zone where the substance is above a
//! threshold (an AEGL or ERPG value) and the buildings and people inside it.
//!
//! ```toml
//! [[scenario]]
//! plugin = "chemical_leak"
//! params = { substance = "chlorine", at = "tanks", start_s = 900.0, duration_s = 1200.0,
//!            rate_kg_s = 0.1, height_m = 2.0, threshold_ug_m3 = 1450.0 }
//! ```
//!
//! Parameters: `substance`; where — `at`, a feature id of the scene (its centroid), or `lon` and
//! `lat`; `start_s` (after the scene start), `duration_s`, `rate_kg_s`; `height_m` of the
//! release (default 1 m); `threshold_ug_m3`, the concentration that defines the zone; `name`
//! (default `chemical_leak`), the release's feature id in layer `scenario`.
//!
//! The release is an engine [`EmissionSource`] whose rate the plugin switches on and off; the
//! air-pollution simulation disperses it (as puffs: its rate changes). The zone comes from the
//! simulation's maps (the engine's [`FieldLog`], `pollution.<substance>` per H3 cell): each new
//! map, the cells above the threshold are the zone, and the buildings anchored in them are
//! inside. KPIs, scoped by `name`: `leak.zone_area` (m²), `leak.buildings_in_zone`,
//! `leak.people_in_zone`, and since the start `leak.buildings_reached` and
//! `leak.people_reached`; events `scenario.leak_started`, `scenario.leak_ended` and
//! `scenario.leak_reached_building` (once per building).
//!
//! ## The response: closed roads, evacuation orders, evacuation traffic
//!
//! ```toml
//! params = { substance = "chlorine", at = "tanks", start_s = 900.0, duration_s = 1200.0,
//!            rate_kg_s = 0.1, threshold_ug_m3 = 1450.0, close_roads = true, evacuate = true,
//!            evacuation = { to = ["E_shelter"], car_share = 0.5, people_per_car = 1.5,
//!                           over_s = 900.0 } }
//! ```
//!
//! - `close_roads` (default false): each new map, the roads of `road_layer` (default
//!   `traffic`, the traffic simulation's) whose centreline crosses a zone cell close, and those
//!   that left the zone reopen; the traffic reroutes around them (KPI `leak.roads_closed`,
//!   events `scenario.leak_road_closed` / `scenario.leak_road_reopened`).
//! - `evacuate` (default false): the buildings in the zone get an engine
//!   [`EvacuationOrder`] (KPIs `leak.buildings_evacuated`, `leak.people_evacuated`; event
//!   `scenario.evacuation_ordered`). Orders stand to the end of the run.
//! - `evacuation` (implies `evacuate`): the evacuees who drive leave by car: of a building's
//!   occupants, `car_share` (default 0.5) drive, `people_per_car` (default 1.5) to a car, the
//!   cars leaving evenly over `over_s` (default 900 s) after the order, each from the nearest
//!   road of `road_layer` that is not closed (the evacuees walk out of the zone to it) to the
//!   nearest of the roads `to` (assembly points, shelters). KPI `leak.evacuation_vehicles`;
//!   the vehicles are traffic vehicles like any other (ids `<name>.evac.<building>.<k>`).
//!
//! Written only against `citytwin-engine`'s public API.

use std::collections::{BTreeMap, BTreeSet};

use bevy::math::DVec2;
use bevy::prelude::*;
use citytwin_engine::modules::{add_systems_once, check_positive, check_time};
use citytwin_engine::prelude::*;
use geo::{Centroid, Distance, Euclidean};
use h3o::CellIndex;
use serde::Deserialize;

/// The plugin.
pub struct ChemicalLeak;

/// Parameters (see the crate docs).
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChemicalLeakParams {
    /// Substance, as the pollution simulation names species (e.g. `chlorine`, `ammonia`).
    pub substance: String,
    /// A feature id of the scene; or give `lon` and `lat`.
    #[serde(default)]
    pub at: Option<String>,
    /// Longitude, degrees.
    #[serde(default)]
    pub lon: Option<f64>,
    /// Latitude, degrees.
    #[serde(default)]
    pub lat: Option<f64>,
    /// Start, s after the scene start.
    pub start_s: f64,
    /// Duration, s.
    pub duration_s: f64,
    /// Rate while it lasts, kg/s.
    pub rate_kg_s: f64,
    /// Height of the release above ground, m. Default 1 m.
    #[serde(default = "default_height")]
    pub height_m: f64,
    /// Concentration that bounds the zone, µg/m³.
    pub threshold_ug_m3: f64,
    /// Feature id of the release. Default `chemical_leak`.
    #[serde(default = "default_name")]
    pub name: String,
    /// Close the roads of `road_layer` that cross the zone while they do. Default false.
    #[serde(default)]
    pub close_roads: bool,
    /// The roads' layer. Default `traffic`, the traffic simulation's.
    #[serde(default = "default_layer")]
    pub road_layer: String,
    /// Order the buildings in the zone evacuated. Default false.
    #[serde(default)]
    pub evacuate: bool,
    /// Evacuation traffic from the ordered buildings (implies `evacuate`).
    #[serde(default)]
    pub evacuation: Option<EvacuationParams>,
}

/// Who drives away from an evacuated building, when, and to where.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvacuationParams {
    /// Road ids (in `road_layer`) the evacuees drive to: assembly points, shelters. Each car
    /// takes the one nearest its building.
    pub to: Vec<String>,
    /// Share of the occupants who leave by car (0–1). Default 0.5.
    #[serde(default = "default_car_share")]
    pub car_share: f64,
    /// People per car. Default 1.5.
    #[serde(default = "default_people_per_car")]
    pub people_per_car: f64,
    /// The cars leave evenly over this long after the order, s. Default 900 s.
    #[serde(default = "default_over")]
    pub over_s: f64,
}

fn default_height() -> f64 {
    1.0
}
fn default_name() -> String {
    "chemical_leak".into()
}
fn default_layer() -> String {
    "traffic".into()
}
fn default_car_share() -> f64 {
    0.5
}
fn default_people_per_car() -> f64 {
    1.5
}
fn default_over() -> f64 {
    900.0
}

/// A road the response may close or drive on.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
struct RoadInfo {
    entity: Entity,
    feature: FeatureId,
    line: geo::Geometry<f64>,
}

/// One leak in the world.
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug)]
struct Leak {
    params: ChemicalLeakParams,
    source: Entity,
    active: bool,
    /// Version of the last map read.
    seen: u64,
    reached: BTreeSet<Entity>,
    people_reached: u64,
    /// The roads of `road_layer` (when the response needs them), by entity.
    roads: Vec<RoadInfo>,
    /// The evacuation's destinations.
    shelters: Vec<RoadInfo>,
    /// Roads this leak holds closed now.
    closed: BTreeSet<Entity>,
    /// Buildings ordered out, and the people in them.
    evacuated: BTreeSet<Entity>,
    people_evacuated: u64,
    evacuation_vehicles: u64,
}

impl SceneModule for ChemicalLeak {
    fn name(&self) -> &'static str {
        "chemical_leak"
    }

    fn description(&self) -> &'static str {
        "a chemical release at a place and time; the zone above a threshold and the buildings and people inside it"
    }

    fn build(&self, params: &toml::Table, app: &mut App) -> Result<(), String> {
        let p: ChemicalLeakParams = parse_params(params)?;
        check_positive("rate_kg_s", p.rate_kg_s)?;
        check_positive("duration_s", p.duration_s)?;
        check_positive("threshold_ug_m3", p.threshold_ug_m3)?;
        check_time("start_s", p.start_s)?;
        if !(p.height_m.is_finite() && p.height_m >= 0.0) {
            return Err(format!("`height_m`: {} must be 0 or more", p.height_m));
        }
        if let Some(ev) = &p.evacuation {
            if ev.to.is_empty() {
                return Err("`evacuation.to`: name at least one road to drive to".into());
            }
            if !(0.0..=1.0).contains(&ev.car_share) {
                return Err(format!(
                    "`evacuation.car_share`: {} must be between 0 and 1",
                    ev.car_share
                ));
            }
            check_positive("evacuation.people_per_car", ev.people_per_car)?;
            check_positive("evacuation.over_s", ev.over_s)?;
        }
        let xy = place(app, &p)?;
        let (roads, shelters) = response_roads(app, &p)?;
        let source = app
            .world_mut()
            .spawn((
                Kind(EntityKind::EmissionSource),
                FeatureId {
                    layer: "scenario".into(),
                    id: p.name.clone(),
                },
                Position { xy_m: xy, z_m: 0.0 },
                EmissionSource {
                    pollutant: p.substance.clone(),
                    rate_kg_s: 0.0,
                    kind: EmissionKind::Area {
                        height_m: p.height_m,
                    },
                },
            ))
            .id();
        app.world_mut().spawn(Leak {
            params: p,
            source,
            active: false,
            seen: 0,
            reached: BTreeSet::new(),
            people_reached: 0,
            roads,
            shelters,
            closed: BTreeSet::new(),
            evacuated: BTreeSet::new(),
            people_evacuated: 0,
            evacuation_vehicles: 0,
        });
        add_systems_once(
            app,
            "chemical_leak",
            (switch_leaks, affected_zone)
                .chain()
                .in_set(SimSet::Scenario),
        );
        app.checkpoint_component::<Leak>();
        Ok(())
    }
}

/// The roads the response acts on (all of `road_layer`'s, when it closes roads or sends
/// evacuees), and the evacuation's destinations among them.
fn response_roads(
    app: &mut App,
    p: &ChemicalLeakParams,
) -> Result<(Vec<RoadInfo>, Vec<RoadInfo>), String> {
    if !p.close_roads && p.evacuation.is_none() {
        return Ok((Vec::new(), Vec::new()));
    }
    let world = app.world_mut();
    let mut q = world.query_filtered::<(Entity, &FeatureId, &Shape), With<Road>>();
    let mut roads: Vec<RoadInfo> = q
        .iter(world)
        .filter(|(_, f, _)| f.layer == p.road_layer)
        .map(|(e, f, s)| RoadInfo {
            entity: e,
            feature: f.clone(),
            line: (*s.0).clone(),
        })
        .collect();
    roads.sort_by_key(|r| r.entity);
    if roads.is_empty() {
        return Err(format!(
            "`road_layer`: no roads in layer '{}' (close_roads and evacuation need a simulation that loads them, e.g. [simulations.traffic])",
            p.road_layer
        ));
    }
    let mut shelters = Vec::new();
    for (i, id) in p.evacuation.iter().flat_map(|e| e.to.iter()).enumerate() {
        match roads.iter().find(|r| &r.feature.id == id) {
            Some(r) => shelters.push(r.clone()),
            None => {
                return Err(format!(
                    "`evacuation.to[{i}]`: no road '{id}' in layer '{}'",
                    p.road_layer
                ));
            }
        }
    }
    Ok((roads, shelters))
}

/// Where the release is, in the frame.
fn place(app: &mut App, p: &ChemicalLeakParams) -> Result<DVec2, String> {
    match (&p.at, p.lon, p.lat) {
        (Some(id), None, None) => {
            let world = app.world_mut();
            let mut q = world.query::<(&FeatureId, Option<&Position>, Option<&Shape>)>();
            let mut hits: Vec<(String, DVec2)> = q
                .iter(world)
                .filter(|(f, _, _)| f.id == *id || format!("{}/{}", f.layer, f.id) == *id)
                .filter_map(|(f, pos, shape)| {
                    let xy = shape
                        .and_then(|s| s.0.centroid())
                        .map(|c| DVec2::new(c.x(), c.y()))
                        .or(pos.map(|p| p.xy_m))?;
                    Some((format!("{}/{}", f.layer, f.id), xy))
                })
                .collect();
            hits.sort_by(|a, b| a.0.cmp(&b.0));
            match hits.len() {
                0 => Err(format!("`at`: no feature with id '{id}' in the scene")),
                1 => Ok(hits[0].1),
                _ => Err(format!(
                    "`at`: '{id}' names {} features ({}); write it as layer/id",
                    hits.len(),
                    hits.iter()
                        .map(|h| h.0.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        (None, Some(lon), Some(lat)) => {
            let ll = LonLat::new(lon, lat);
            if !ll.is_valid() {
                return Err(format!(
                    "`lon`, `lat`: ({lon}, {lat}) is not a valid position"
                ));
            }
            let c = app.world().resource::<GeoFrame>().to_local(ll);
            Ok(DVec2::new(c.x, c.y))
        }
        _ => Err("give either `at` (a feature id) or both `lon` and `lat`".into()),
    }
}

/// Open and close the releases on time.
fn switch_leaks(
    clock: Res<SimClock>,
    mut leaks: Query<&mut Leak>,
    mut sources: Query<(&mut EmissionSource, &Position)>,
    mut events: ResMut<EventLog>,
) {
    let t = clock.elapsed_s();
    for mut leak in &mut leaks {
        // (The recorder sorts a tick's events, so the order leaks are visited in cannot show.)
        let p = &leak.params;
        let on = t >= p.start_s && t < p.start_s + p.duration_s;
        if on == leak.active {
            continue;
        }
        let Ok((mut src, pos)) = sources.get_mut(leak.source) else {
            continue;
        };
        src.rate_kg_s = if on { p.rate_kg_s } else { 0.0 };
        let message = if on {
            format!(
                "{} leaking at {} g/s for {} s ('{}')",
                p.substance,
                p.rate_kg_s * 1000.0,
                p.duration_s,
                p.name
            )
        } else {
            format!("{} leak '{}' stopped", p.substance, p.name)
        };
        events.push(SimEvent {
            kind: if on {
                "scenario.leak_started".into()
            } else {
                "scenario.leak_ended".into()
            },
            entity: Some(leak.source),
            xy_m: Some(pos.xy_m),
            message,
        });
        leak.active = on;
    }
}

/// Read each new concentration map: the zone above the threshold, who is inside it, and the
/// response (roads closed, evacuation orders, evacuation traffic).
#[allow(clippy::too_many_arguments)]
fn affected_zone(
    clock: Res<SimClock>,
    fields: Res<FieldLog>,
    index: Res<SpatialIndex>,
    frame: Res<GeoFrame>,
    mut leaks: Query<&mut Leak>,
    buildings: Query<(&Building, &Shape, Option<&FeatureId>)>,
    mut kpis: ResMut<Kpis>,
    mut events: ResMut<EventLog>,
    mut roads_out: MessageWriter<RoadCommand>,
    mut demand_out: MessageWriter<DemandCommand>,
    mut commands: Commands,
) {
    let t = clock.elapsed_s();
    let mut list: Vec<Mut<Leak>> = leaks.iter_mut().collect();
    list.sort_by(|a, b| a.params.name.cmp(&b.params.name));
    for mut leak in list {
        let name = format!("pollution.{}", leak.params.substance);
        let Some((version, map)) = fields.latest(&name) else {
            continue;
        };
        if version == leak.seen {
            continue;
        }
        leak.seen = version;
        let limit = leak.params.threshold_ug_m3 * 1e-9;
        let mut area_m2 = 0.0;
        let (mut n_b, mut n_p) = (0u64, 0u64);
        let mut inside: Vec<(Entity, String, u32, f64)> = Vec::new();
        let mut zone: Vec<CellIndex> = Vec::new();
        for &(h3, value) in &map.cells {
            if value < limit {
                continue;
            }
            let Ok(cell) = CellIndex::try_from(h3) else {
                continue;
            };
            zone.push(cell);
            area_m2 += cell.area_m2();
            for e in index.in_cell(cell) {
                let Ok((b, _, fid)) = buildings.get(e) else {
                    continue;
                };
                n_b += 1;
                n_p += b.occupants as u64;
                let id = fid.map(|f| f.id.clone()).unwrap_or_else(|| format!("{e}"));
                inside.push((e, id, b.occupants, value));
            }
        }
        inside.sort_by_key(|n| n.0);
        for (e, id, people, value) in &inside {
            if leak.reached.insert(*e) {
                leak.people_reached += *people as u64;
                events.push(SimEvent {
                    kind: "scenario.leak_reached_building".into(),
                    entity: Some(*e),
                    xy_m: None,
                    message: format!(
                        "{} above {} µg/m³ at building {id} ({people} people): {:.0} µg/m³",
                        leak.params.substance,
                        leak.params.threshold_ug_m3,
                        value * 1e9
                    ),
                });
            }
        }
        let leak = &mut *leak;
        if leak.params.close_roads {
            close_zone_roads(leak, &zone, &index, &frame, &mut roads_out, &mut events);
        }
        if leak.params.evacuate || leak.params.evacuation.is_some() {
            for (e, id, people, _) in &inside {
                if !leak.evacuated.insert(*e) {
                    continue;
                }
                leak.people_evacuated += *people as u64;
                commands.entity(*e).insert(EvacuationOrder {
                    since_s: t,
                    by: leak.params.name.clone(),
                });
                let cars = match (&leak.params.evacuation, buildings.get(*e)) {
                    (Some(ev), Ok((_, shape, _))) => {
                        send_evacuees(leak, ev.clone(), id, *people, shape, t, &mut demand_out)
                    }
                    _ => 0,
                };
                events.push(SimEvent {
                    kind: "scenario.evacuation_ordered".into(),
                    entity: Some(*e),
                    xy_m: None,
                    message: format!(
                        "building {id} ordered out ({people} people{})",
                        if leak.params.evacuation.is_some() {
                            format!(", {cars} cars")
                        } else {
                            String::new()
                        }
                    ),
                });
            }
        }
        let scope = leak.params.name.clone();
        kpis.set("leak.zone_area", &scope, area_m2, "m2");
        kpis.set("leak.buildings_in_zone", &scope, n_b as f64, "1");
        kpis.set("leak.people_in_zone", &scope, n_p as f64, "1");
        kpis.set(
            "leak.buildings_reached",
            &scope,
            leak.reached.len() as f64,
            "1",
        );
        kpis.set(
            "leak.people_reached",
            &scope,
            leak.people_reached as f64,
            "1",
        );
        if leak.params.close_roads {
            kpis.set("leak.roads_closed", &scope, leak.closed.len() as f64, "1");
        }
        if leak.params.evacuate || leak.params.evacuation.is_some() {
            kpis.set(
                "leak.buildings_evacuated",
                &scope,
                leak.evacuated.len() as f64,
                "1",
            );
            kpis.set(
                "leak.people_evacuated",
                &scope,
                leak.people_evacuated as f64,
                "1",
            );
        }
        if leak.params.evacuation.is_some() {
            kpis.set(
                "leak.evacuation_vehicles",
                &scope,
                leak.evacuation_vehicles as f64,
                "1",
            );
        }
    }
}

/// Close the roads that cross the zone now and reopen those that left it.
fn close_zone_roads(
    leak: &mut Leak,
    zone: &[CellIndex],
    index: &SpatialIndex,
    frame: &GeoFrame,
    out: &mut MessageWriter<RoadCommand>,
    events: &mut EventLog,
) {
    let ours: BTreeMap<Entity, usize> = leak
        .roads
        .iter()
        .enumerate()
        .map(|(i, r)| (r.entity, i))
        .collect();
    let mut now: BTreeSet<Entity> = BTreeSet::new();
    for &cell in zone {
        for e in index.within_polygon(&frame.cell_polygon(cell)) {
            if ours.contains_key(&e) {
                now.insert(e);
            }
        }
    }
    let by = leak.params.name.clone();
    for &e in now.difference(&leak.closed) {
        let road = &leak.roads[ours[&e]].feature;
        out.write(RoadCommand::Close {
            road: road.clone(),
            by: by.clone(),
        });
        events.push(SimEvent {
            kind: "scenario.leak_road_closed".into(),
            entity: Some(e),
            xy_m: None,
            message: format!(
                "road {road} closed: it crosses the {} zone of '{by}'",
                leak.params.substance
            ),
        });
    }
    for &e in leak.closed.difference(&now) {
        let road = &leak.roads[ours[&e]].feature;
        out.write(RoadCommand::Open {
            road: road.clone(),
            by: by.clone(),
        });
        events.push(SimEvent {
            kind: "scenario.leak_road_reopened".into(),
            entity: Some(e),
            xy_m: None,
            message: format!("road {road} reopened: out of the zone of '{by}'"),
        });
    }
    leak.closed = now;
}

/// The cars that leave an evacuated building: from the nearest open road to the nearest
/// destination, evenly over `over_s`. Returns how many.
fn send_evacuees(
    leak: &mut Leak,
    ev: EvacuationParams,
    building: &str,
    people: u32,
    shape: &Shape,
    now_s: f64,
    out: &mut MessageWriter<DemandCommand>,
) -> u64 {
    let cars = (people as f64 * ev.car_share / ev.people_per_car).round() as u64;
    let Some(c) = shape.0.centroid() else {
        return 0;
    };
    let nearest = |list: &mut dyn Iterator<Item = &RoadInfo>| {
        list.map(|r| (Euclidean.distance(&c, &r.line), r))
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.entity.cmp(&b.1.entity)))
            .map(|(_, r)| r.feature.clone())
    };
    let from = nearest(
        &mut leak
            .roads
            .iter()
            .filter(|r| !leak.closed.contains(&r.entity)),
    );
    let to = nearest(&mut leak.shelters.iter());
    let (Some(from), Some(to)) = (from, to) else {
        return 0;
    };
    for k in 0..cars {
        out.write(DemandCommand::AddVehicle {
            id: format!("{}.evac.{building}.{k}", leak.params.name),
            kind: VehicleKind::Car,
            from: from.clone(),
            to: to.clone(),
            depart_s: now_s + ev.over_s * (k as f64 + 0.5) / cars as f64,
            signal_priority: false,
        });
    }
    leak.evacuation_vehicles += cars;
    cars
}
