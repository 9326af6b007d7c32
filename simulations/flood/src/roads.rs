//! Flood → traffic: water on a road slows its traffic and, deeper, closes it; the road
//! reopens when the water goes down.
//!
//! The rule, per road of the coupled layer, each step (in `SimSet::Coupling`, after the
//! surface has moved):
//!
//! - the road's depth `d` is the deepest water on the grid cells under its centreline;
//! - above `slow_depth_m` its limit becomes the lower of its own and the safe speed of the
//!   depth–disruption function of Pregnolato, Ford, Wilkinson & Dawson (2017, *Transportation
//!   Research Part D* 55: 67–81), fitted to experiments, videos and expert judgement:
//!   `v = 0.0009 d² − 0.5529 d + 86.9448` km/h with `d` in mm — 87 km/h on a wet road, 50 km/h
//!   at 7.5 cm, 20 km/h at 14 cm, 2 km/h at 30 cm;
//! - above `close_depth_m` (default 0.3 m, where that function reaches walking pace and most
//!   cars start to float) the road closes; it reopens when the water is `reopen_margin_m` below
//!   that again, so a depth that hovers at the mark does not flip it every step.
//!
//! The traffic applies the commands at the start of its next step (one step later) and
//! reroutes the vehicles that meant to use the road. Speed changes smaller than
//! `speed_step_mps` are not sent, since each one reroutes the vehicles bound for the road.
//!
//! KPIs: `flood.roads_closed` and `flood.roads_slowed` (now), `flood.road_hours_closed` (h,
//! since the start), and `flood.vehicle_hours_lost` (h): each vehicle on a slowed road loses
//! `dt (1 − v_flood / v_limit)` per step, the share of the step its capped speed costs it.
//! The time lost to detours around closed roads and to the queues at them is not in that
//! figure: it shows in the traffic's travel times against a baseline (`citytwin compare`).
//! Events `flood.road_closed` and `flood.road_reopened` name the road and the depth.

use std::collections::HashMap;

use bevy::prelude::*;
use citytwin_engine::prelude::*;
use serde::Deserialize;

use crate::FloodSim;
use crate::setup::cells_along;

/// Who the flood's road commands come from, in the traffic's holds.
pub const BY: &str = "flood";

/// The `[simulations.flood.traffic]` parameters: which roads the water acts on, and when.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoadCouplingParams {
    /// Layer of the roads whose traffic the water acts on. Default `traffic`, the traffic
    /// simulation's.
    #[serde(default = "default_layer")]
    pub layer: String,
    /// Water shallower than this leaves a road alone, m. Default 0.01 m (a wet road).
    #[serde(default = "default_slow")]
    pub slow_depth_m: f64,
    /// Water deeper than this closes a road, m. Default 0.3 m.
    #[serde(default = "default_close")]
    pub close_depth_m: f64,
    /// A closed road reopens when its water is this much below `close_depth_m`, m. Default
    /// 0.05 m.
    #[serde(default = "default_margin")]
    pub reopen_margin_m: f64,
    /// Smallest change of a flooded road's limit worth sending, m/s. Default 0.5 m/s.
    #[serde(default = "default_step")]
    pub speed_step_mps: f64,
}

fn default_layer() -> String {
    "traffic".into()
}
fn default_slow() -> f64 {
    0.01
}
fn default_close() -> f64 {
    0.3
}
fn default_margin() -> f64 {
    0.05
}
fn default_step() -> f64 {
    0.5
}

impl RoadCouplingParams {
    /// Check the thresholds make sense together.
    pub fn check(&self) -> Result<(), String> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        if !(ok(self.slow_depth_m) && ok(self.reopen_margin_m) && ok(self.speed_step_mps)) {
            return Err(
                "`traffic`: slow_depth_m, reopen_margin_m and speed_step_mps must be 0 or more"
                    .into(),
            );
        }
        if !(self.close_depth_m.is_finite() && self.close_depth_m > self.slow_depth_m) {
            return Err(format!(
                "`traffic`: close_depth_m ({} m) must be above slow_depth_m ({} m)",
                self.close_depth_m, self.slow_depth_m
            ));
        }
        if self.reopen_margin_m >= self.close_depth_m {
            return Err(format!(
                "`traffic`: reopen_margin_m ({} m) must be below close_depth_m ({} m)",
                self.reopen_margin_m, self.close_depth_m
            ));
        }
        Ok(())
    }
}

/// The safe speed through water `depth_m` deep, m/s: Pregnolato et al. (2017)'s
/// depth–disruption function (km/h from mm), held at its minimum past the vertex at 307 mm.
pub fn safe_speed_mps(depth_m: f64) -> f64 {
    let d = (depth_m.max(0.0) * 1000.0).min(0.5529 / (2.0 * 0.0009));
    (0.0009 * d * d - 0.5529 * d + 86.9448) / 3.6
}

/// One road the water acts on.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
struct RoadState {
    feature: FeatureId,
    /// Its own limit, m/s.
    limit_mps: f64,
    cells: Vec<usize>,
    closed: bool,
    /// The flood's limit in force (as last sent), m/s.
    capped_mps: Option<f64>,
}

/// The roads the water acts on and what it has cost so far.
#[derive(serde::Serialize, serde::Deserialize, Resource)]
pub struct FloodedRoads {
    params: RoadCouplingParams,
    /// Filled from the world at the first step (the traffic's roads are spawned after the
    /// flood is built).
    roads: Option<Vec<RoadState>>,
    #[serde(serialize_with = "citytwin_engine::checkpoint::sorted_map")]
    of_entity: HashMap<Entity, usize>,
    /// Vehicle time lost to capped speeds, s.
    pub vehicle_s_lost: f64,
    /// Road time closed, s.
    pub road_s_closed: f64,
}

impl FloodedRoads {
    pub(crate) fn new(params: RoadCouplingParams) -> Self {
        Self {
            params,
            roads: None,
            of_entity: HashMap::new(),
            vehicle_s_lost: 0.0,
            road_s_closed: 0.0,
        }
    }

    /// Roads closed by the water now.
    pub fn closed(&self) -> usize {
        self.roads.iter().flatten().filter(|r| r.closed).count()
    }

    /// Roads slowed (and open) now.
    pub fn slowed(&self) -> usize {
        self.roads
            .iter()
            .flatten()
            .filter(|r| !r.closed && r.capped_mps.is_some())
            .count()
    }
}

impl citytwin_engine::hash::StateHash for FloodedRoads {
    fn hash_state(&self, h: &mut citytwin_engine::hash::StateHasher) {
        for r in self.roads.iter().flatten() {
            h.u64(r.closed as u64);
            h.f64(r.capped_mps.unwrap_or(-1.0));
        }
        h.f64(self.vehicle_s_lost);
        h.f64(self.road_s_closed);
    }
}

/// Each step: the depth on every coupled road, the commands that follow from it, and the time
/// the capped speeds cost the vehicles on them.
pub(crate) fn flood_roads(
    clock: Res<SimClock>,
    sim: Res<FloodSim>,
    mut state: ResMut<FloodedRoads>,
    roads: Query<(Entity, &Road, &Shape, &FeatureId)>,
    vehicles: Query<(&FeatureId, &Vehicle)>,
    mut out: MessageWriter<RoadCommand>,
    mut events: ResMut<EventLog>,
) {
    let state = &mut *state;
    let p = state.params.clone();
    if state.roads.is_none() {
        let mut list: Vec<_> = roads
            .iter()
            .filter(|(_, _, _, f)| f.layer == p.layer)
            .collect();
        list.sort_by_key(|r| r.0);
        let mut coupled = Vec::new();
        for (e, road, shape, f) in list {
            let geo::Geometry::LineString(ls) = &*shape.0 else {
                continue;
            };
            let cells = cells_along(&sim, ls);
            if cells.is_empty() {
                continue;
            }
            state.of_entity.insert(e, coupled.len());
            coupled.push(RoadState {
                feature: f.clone(),
                limit_mps: road.speed_limit_mps,
                cells,
                closed: false,
                capped_mps: None,
            });
        }
        if coupled.is_empty() {
            events.push(SimEvent {
                kind: "flood.coupling_warning".into(),
                entity: None,
                xy_m: None,
                message: format!(
                    "flood → traffic: no roads of layer '{}' on the flood grid; the water acts on no traffic (is [simulations.traffic] in the scene, with that layer?)",
                    p.layer
                ),
            });
        }
        state.roads = Some(coupled);
    }
    let dt = clock.step_s();
    let h = &sim.surface.h_m;
    let list = state.roads.as_mut().expect("filled above");
    for r in list.iter_mut() {
        let depth = r.cells.iter().map(|&c| h[c]).fold(0.0f32, f32::max) as f64;
        let close = if r.closed {
            depth > p.close_depth_m - p.reopen_margin_m
        } else {
            depth > p.close_depth_m
        };
        if close != r.closed {
            r.closed = close;
            out.write(if close {
                RoadCommand::Close {
                    road: r.feature.clone(),
                    by: BY.into(),
                }
            } else {
                RoadCommand::Open {
                    road: r.feature.clone(),
                    by: BY.into(),
                }
            });
            events.push(SimEvent {
                kind: if close {
                    "flood.road_closed".into()
                } else {
                    "flood.road_reopened".into()
                },
                entity: None,
                xy_m: None,
                message: format!(
                    "road {}: water {:.2} m deep, {}",
                    r.feature,
                    depth,
                    if close {
                        format!("above {:.2} m: closed", p.close_depth_m)
                    } else {
                        format!(
                            "under {:.2} m again: reopened",
                            p.close_depth_m - p.reopen_margin_m
                        )
                    }
                ),
            });
        }
        // The limit on an open road (a closed one keeps its last, for when it reopens).
        if !r.closed {
            let cap = (depth > p.slow_depth_m)
                .then(|| safe_speed_mps(depth))
                .filter(|&v| v < r.limit_mps);
            match (cap, r.capped_mps) {
                (Some(v), Some(was)) if (v - was).abs() < p.speed_step_mps => {}
                (Some(v), _) => {
                    r.capped_mps = Some(v);
                    out.write(RoadCommand::SetSpeed {
                        road: r.feature.clone(),
                        speed_mps: v,
                        by: BY.into(),
                    });
                }
                (None, Some(_)) => {
                    r.capped_mps = None;
                    out.write(RoadCommand::LiftSpeed {
                        road: r.feature.clone(),
                        by: BY.into(),
                    });
                }
                (None, None) => {}
            }
        }
        if r.closed {
            state.road_s_closed += dt;
        }
    }
    // What the capped speeds cost the vehicles on those roads this step.
    let mut lost = 0.0;
    // In feature-id order: entity ids of vehicles are not state (a restored checkpoint gives
    // them new ones), so sums over them must not follow them.
    let mut on_roads: Vec<(&FeatureId, &Vehicle)> =
        vehicles.iter().filter(|(_, v)| v.road.is_some()).collect();
    on_roads.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (_, v) in on_roads {
        let Some(&i) = v.road.and_then(|e| state.of_entity.get(&e)) else {
            continue;
        };
        let r = &list[i];
        if let Some(cap) = r.capped_mps
            && r.limit_mps > 0.0
        {
            lost += dt * (1.0 - cap / r.limit_mps).max(0.0);
        }
    }
    state.vehicle_s_lost += lost;
}

/// The coupling's KPIs.
pub(crate) fn flood_road_kpis(state: Res<FloodedRoads>, mut kpis: ResMut<Kpis>) {
    kpis.set("flood.roads_closed", "city", state.closed() as f64, "1");
    kpis.set("flood.roads_slowed", "city", state.slowed() as f64, "1");
    kpis.set(
        "flood.road_hours_closed",
        "city",
        state.road_s_closed / 3600.0,
        "h",
    );
    kpis.set(
        "flood.vehicle_hours_lost",
        "city",
        state.vehicle_s_lost / 3600.0,
        "h",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_depth_disruption_function_has_its_published_values() {
        // The paper's curve, 0.0009 d² − 0.5529 d + 86.9448 km/h (d in mm), at 0, 100 and
        // 300 mm.
        let kmh = |d_m: f64| safe_speed_mps(d_m) * 3.6;
        assert!((kmh(0.0) - 86.9448).abs() < 1e-9);
        assert!((kmh(0.1) - (9.0 - 55.29 + 86.9448)).abs() < 1e-9);
        assert!((kmh(0.3) - (81.0 - 165.87 + 86.9448)).abs() < 1e-9);
        // Past the vertex (307 mm) it stays at its minimum instead of climbing again.
        assert!(kmh(0.5) <= kmh(0.3) && kmh(0.5) > 0.0);
        // Monotone down to the vertex.
        let mut last = f64::INFINITY;
        for mm in 0..=400 {
            let v = kmh(mm as f64 / 1000.0);
            assert!(v <= last + 1e-12, "{mm} mm");
            last = v;
        }
    }

    #[test]
    fn thresholds_are_checked() {
        let p = |slow: f64, close: f64, margin: f64| RoadCouplingParams {
            layer: "traffic".into(),
            slow_depth_m: slow,
            close_depth_m: close,
            reopen_margin_m: margin,
            speed_step_mps: 0.5,
        };
        assert!(p(0.01, 0.3, 0.05).check().is_ok());
        assert!(p(0.3, 0.2, 0.05).check().unwrap_err().contains("above"));
        assert!(p(0.01, 0.3, 0.4).check().unwrap_err().contains("below"));
        assert!(p(-1.0, 0.3, 0.05).check().is_err());
    }
}
