//! Incident forecast: from a moment of a recorded run, the simulations run ahead (nothing is
//! recorded) to say where the water and the plume will be, which roads close, which buildings
//! and how many people are affected, and the fastest way in for responders given the closures.

use std::collections::{BTreeMap, BTreeSet};

use bevy::math::DVec2;
use bevy::prelude::*;
use citytwin_engine::geo_frame::{GeoFrame, LonLat};
use citytwin_engine::incident::mapmatch::RoadNetwork;
use citytwin_engine::prelude::*;
use citytwin_engine::replay::{self, ReplayError};
use citytwin_engine::store::RunStore;
use citytwin_traffic::TrafficSim;
use citytwin_traffic::net::VClass;
use citytwin_traffic::routing::fastest_route;

/// Event kinds that put a building at risk, and what each means.
pub const BUILDING_ALERTS: [(&str, &str); 4] = [
    ("flood.building_flooded", "water at the door"),
    ("scenario.leak_reached_building", "in the leak's zone"),
    ("scenario.evacuation_ordered", "ordered out"),
    ("pollution.dose_exceeded", "dose over the limit"),
];

/// What to forecast.
pub struct ForecastRequest {
    /// The recorded run.
    pub run: i64,
    /// From this moment, s after the start.
    pub at_s: f64,
    /// For this long, s.
    pub ahead_s: f64,
    /// Responders' stations: name and place.
    pub stations: Vec<(String, LonLat)>,
    /// Where they go (the incident).
    pub to: Option<LonLat>,
    /// The road layer routes run on.
    pub layer: String,
}

/// A building at risk in the forecast window.
#[derive(Clone, Debug, PartialEq)]
pub struct BuildingRisk {
    /// Its feature id.
    pub feature: FeatureId,
    /// Its use.
    pub use_: String,
    /// People in it.
    pub occupants: u32,
    /// Why (see [`BUILDING_ALERTS`]); "still flooded" when it already was at the start.
    pub why: BTreeSet<String>,
    /// First alert, s after the scene start (the start of the window if already at risk).
    pub first_s: f64,
}

/// A responder's fastest route.
#[derive(Clone, Debug, PartialEq)]
pub struct ResponderRoute {
    /// The station.
    pub station: String,
    /// Roads in order (edge ids); empty when no route is open.
    pub roads: Vec<String>,
    /// Travel time on the roads' current speeds, s (infinite without a route).
    pub time_s: f64,
    /// Length, m.
    pub length_m: f64,
}

/// The forecast.
#[derive(Clone, Debug)]
pub struct Forecast {
    /// The window, s after the scene start.
    pub from_s: f64,
    /// Its end (the scene's end, if sooner).
    pub to_s: f64,
    /// Buildings at risk, by feature id.
    pub buildings: Vec<BuildingRisk>,
    /// Roads held closed at the start and at the end of the window (edge id, who holds it).
    pub closed_at_start: Vec<(String, Vec<String>)>,
    /// At the end.
    pub closed_at_end: Vec<(String, Vec<String>)>,
    /// Roads closed at some moment of the window that were open at its start.
    pub closing: Vec<String>,
    /// City KPIs at the start and the end of the window (name, start, end, unit): the flood
    /// and the plume in numbers.
    pub outlook: Vec<(String, f64, f64, String)>,
    /// The latest maps at the end of the window: name, cells with a value, the highest value,
    /// its unit.
    pub maps: Vec<(String, usize, f64, String)>,
    /// Responders' routes at the end of the window.
    pub routes: Vec<ResponderRoute>,
}

impl Forecast {
    /// People in the buildings at risk.
    pub fn occupants(&self) -> u64 {
        self.buildings.iter().map(|b| b.occupants as u64).sum()
    }
}

/// KPIs the outlook shows, when the run has them.
const OUTLOOK: [&str; 8] = [
    "flood.flooded_area",
    "flood.max_depth",
    "flood.volume",
    "flood.roads_closed",
    "traffic.roads_closed",
    "traffic.running",
    "pollution.chlorine.max",
    "pollution.chlorine.people_exposed",
];

fn city_kpis(world: &World) -> BTreeMap<String, (f64, String)> {
    world
        .get_resource::<Kpis>()
        .map(|k| {
            k.iter()
                .filter(|(_, s, _, _)| *s == "city")
                .map(|(n, _, v, u)| (n.to_string(), (v, u.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Buildings flooded when the window opens: their last flood event in the recorded run up to
/// `tick` says flooded.
fn flooded_at(store: &RunStore, run: i64, tick: u64) -> Result<BTreeSet<u64>, ReplayError> {
    let rows = store.events_of(run, "flood.building_", tick)?;
    let mut state: BTreeMap<u64, bool> = BTreeMap::new();
    for (_, entity, kind) in rows {
        state.insert(entity, kind == "flood.building_flooded");
    }
    Ok(state
        .into_iter()
        .filter_map(|(e, f)| f.then_some(e))
        .collect())
}

/// Run the forecast.
pub fn forecast(store: &RunStore, req: &ForecastRequest) -> Result<Forecast, ReplayError> {
    let registry = crate::registry();
    let tick = replay::tick_of(store, req.run, req.at_s)?;
    let mut sim = replay::sim_at(store, &registry, req.run, tick, true, &mut |_, _| {})?;
    let step_s = sim.clock().step_s();
    let from_s = sim.clock().elapsed_s();
    let end = (tick + (req.ahead_s / step_s).round() as u64).min(sim.clock().end_tick());
    let kpis_start = city_kpis(sim.world());
    let closed_at_start = citytwin_traffic::closed_roads(sim.world());
    let start_closed: BTreeSet<String> = closed_at_start.iter().map(|c| c.0.clone()).collect();

    let mut risk: BTreeMap<Entity, (BTreeSet<String>, f64)> = BTreeMap::new();
    for bits in flooded_at(store, req.run, tick)? {
        let Some(e) = Entity::try_from_bits(bits) else {
            continue;
        };
        if sim.world().get::<Building>(e).is_some() {
            risk.entry(e)
                .or_insert_with(|| (BTreeSet::new(), from_s))
                .0
                .insert("still flooded".into());
        }
    }
    let mut closing = BTreeSet::new();
    while sim.clock().tick() < end {
        sim.step();
        let now_s = sim.clock().elapsed_s();
        let w = sim.world();
        for ev in w.resource::<EventLog>().last_tick() {
            let Some((_, why)) = BUILDING_ALERTS.iter().find(|(k, _)| *k == ev.kind) else {
                continue;
            };
            if let Some(e) = ev.entity.filter(|e| w.get::<Building>(*e).is_some()) {
                let r = risk.entry(e).or_insert_with(|| (BTreeSet::new(), now_s));
                r.0.insert(why.to_string());
            }
        }
        for (road, _) in citytwin_traffic::closed_roads(w) {
            if !start_closed.contains(&road) {
                closing.insert(road);
            }
        }
    }
    let to_s = sim.clock().elapsed_s();
    let w = sim.world();
    let mut buildings: Vec<BuildingRisk> = risk
        .into_iter()
        .filter_map(|(e, (why, first_s))| {
            let b = w.get::<Building>(e)?;
            Some(BuildingRisk {
                feature: w.get::<FeatureId>(e)?.clone(),
                use_: b.use_.as_str().to_string(),
                occupants: b.occupants,
                why,
                first_s,
            })
        })
        .collect();
    buildings.sort_by(|a, b| a.feature.cmp(&b.feature));
    let kpis_end = city_kpis(w);
    let outlook = OUTLOOK
        .iter()
        .filter_map(|n| {
            let (v1, u) = kpis_end.get(*n)?;
            let v0 = kpis_start.get(*n).map_or(f64::NAN, |v| v.0);
            Some((n.to_string(), v0, *v1, u.clone()))
        })
        .collect();
    let maps = w
        .resource::<FieldLog>()
        .latest_all()
        .into_iter()
        .map(|(name, s)| {
            let max = s.cells.iter().map(|c| c.1).fold(0.0, f64::max);
            (name, s.cells.len(), max, s.unit.to_string())
        })
        .collect();
    let closed_at_end = citytwin_traffic::closed_roads(w);
    let routes = routes(&mut sim, req)?;
    Ok(Forecast {
        from_s,
        to_s,
        buildings,
        closed_at_start,
        closed_at_end,
        closing: closing.into_iter().collect(),
        outlook,
        maps,
        routes,
    })
}

/// Fastest routes for an emergency vehicle from each station to the incident on the traffic's
/// current travel times (closed roads excluded).
fn routes(
    sim: &mut citytwin_engine::sim::Sim,
    req: &ForecastRequest,
) -> Result<Vec<ResponderRoute>, ReplayError> {
    let Some(to) = req.to else {
        return Ok(Vec::new());
    };
    if req.stations.is_empty() {
        return Ok(Vec::new());
    }
    let frame = sim.world().resource::<GeoFrame>().clone();
    let local = |p: LonLat| {
        let c = frame.to_local(p);
        DVec2::new(c.x, c.y)
    };
    let roads = RoadNetwork::from_world(sim.world_mut(), &req.layer);
    let bad = |m: String| ReplayError::Moment {
        run: req.run,
        message: m,
    };
    let target = roads.nearest(local(to), 500.0).ok_or_else(|| {
        bad(format!(
            "no road of layer '{}' within 500 m of --to",
            req.layer
        ))
    })?;
    let Some(traffic) = sim.world().get_resource::<TrafficSim>() else {
        return Err(bad("the run has no traffic simulation to route on".into()));
    };
    let t = &traffic.0;
    let mut out = Vec::new();
    for (name, at) in &req.stations {
        let from = roads.nearest(local(*at), 500.0).ok_or_else(|| {
            bad(format!(
                "station {name}: no road of layer '{}' within 500 m",
                req.layer
            ))
        })?;
        let (Some(a), Some(b)) = (t.net.edge(&from.feature.id), t.net.edge(&target.feature.id))
        else {
            return Err(bad(format!(
                "station {name}: its road or the incident's is not a traffic road"
            )));
        };
        let route = fastest_route(&t.net, &t.costs, VClass::Emergency, a, b);
        out.push(match route {
            Some(edges) => ResponderRoute {
                station: name.clone(),
                time_s: edges
                    .iter()
                    .map(|&e| t.costs.travel_time_s[e as usize])
                    .sum(),
                length_m: edges
                    .iter()
                    .map(|&e| t.net.edges[e as usize].length_m)
                    .sum(),
                roads: edges
                    .iter()
                    .map(|&e| t.net.edges[e as usize].id.clone())
                    .collect(),
            },
            None => ResponderRoute {
                station: name.clone(),
                roads: Vec::new(),
                time_s: f64::INFINITY,
                length_m: f64::NAN,
            },
        });
    }
    Ok(out)
}
