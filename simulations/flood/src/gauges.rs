//! Water-level gauges against the model. Each gauge's simulated reading is the depth it would
//! see in the model: in the drainage node it sits on (within `gauge_node_radius_m`), else on
//! the street cell where it stands. Where the gauge also reports (a `water_level` series of the
//! scene's feeds), the difference is a KPI too, so a forecaster sees at a glance how far the
//! model is from the city, gauge by gauge and as one root-mean-square figure.
//!
//! KPIs (every KPI interval): `flood.gauge_depth` (simulated, m) and `flood.gauge_error`
//! (observed − simulated, m) per station, and `flood.gauge_rmse` (m) over the gauges that
//! report at that moment. Stateless: nothing to checkpoint.

use bevy::prelude::*;
use citytwin_engine::feeds::Feeds;
use citytwin_engine::prelude::*;

use crate::FloodSim;

/// The names a feed may give a gauge's water level.
const LEVEL_QUANTITIES: [&str; 3] = ["water_level", "level", "depth"];

/// What a gauge at `xy` reads in the model, m: its node's depth, or its cell's water.
fn simulated_depth_m(
    sim: &FloodSim,
    xy: bevy::math::DVec2,
    nodes: &Query<&Position>,
) -> Option<f64> {
    if let Some(d) = &sim.drainage {
        let radius = sim.params.gauge_node_radius_m;
        let nearest = d
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((i, nodes.get(*e).ok()?.xy_m.distance(xy))))
            .filter(|(_, dist)| *dist <= radius)
            // Ties go to the node named first, so the choice never depends on entity order.
            .min_by(|a, b| {
                a.1.total_cmp(&b.1)
                    .then_with(|| d.node_names[a.0].cmp(&d.node_names[b.0]))
            });
        if let Some((i, _)) = nearest {
            return Some(d.model.net.nodes[i].new_depth);
        }
    }
    sim.cell_at(xy).map(|c| sim.surface.h_m[c] as f64)
}

/// The gauges' KPIs (see the module docs).
pub(crate) fn gauge_kpis(
    clock: Res<SimClock>,
    sim: Res<FloodSim>,
    feeds: Option<Res<Feeds>>,
    sensors: Query<(&Sensor, &Position), Without<Vehicle>>,
    nodes: Query<&Position>,
    mut kpis: ResMut<Kpis>,
) {
    let t = clock.elapsed_s();
    let mut gauges: Vec<(&str, bevy::math::DVec2)> = sensors
        .iter()
        .filter(|(s, _)| matches!(s.kind, SensorKind::WaterLevel))
        .map(|(s, p)| (s.station.as_str(), p.xy_m))
        .collect();
    gauges.sort_by(|a, b| a.0.cmp(b.0));
    let (mut sum_sq, mut n) = (0.0, 0usize);
    for (station, xy) in gauges {
        let Some(simulated) = simulated_depth_m(&sim, xy, &nodes) else {
            continue;
        };
        kpis.set("flood.gauge_depth", station, simulated, "m");
        let observed = feeds.as_ref().and_then(|f| {
            LEVEL_QUANTITIES
                .iter()
                .find_map(|q| f.value_at(station, q, t))
        });
        if let Some(observed) = observed {
            let error = observed - simulated;
            kpis.set("flood.gauge_error", station, error, "m");
            sum_sq += error * error;
            n += 1;
        }
    }
    if n > 0 {
        kpis.set("flood.gauge_rmse", "city", (sum_sq / n as f64).sqrt(), "m");
    }
}
