//! The traffic as model entities: roads and junctions from the start, vehicles copied into
//! `Vehicle` + `Position` entities every sync interval.

use std::collections::HashMap;

use super::*;
use bevy::prelude::*;
use citytwin_engine::prelude::*;

/// Vehicles mirrored into entities.
#[derive(serde::Serialize, serde::Deserialize, Resource)]
pub(crate) struct VehicleMirror {
    pub(crate) placement: AffinePlacement,
    pub(crate) layer: String,
    #[serde(serialize_with = "citytwin_engine::checkpoint::sorted_map")]
    pub(crate) entities: HashMap<u32, Entity>,
    pub(crate) sync_interval_s: f64,
    /// The `Road` entity of each edge (`None` for edges too short to draw).
    pub(crate) roads: Vec<Option<Entity>>,
}

/// After a checkpoint restore: the vehicles spawned during the run have new entity ids.
pub(crate) fn after_restore(world: &mut World, remap: &EntityRemap) {
    let mut m = world.resource_mut::<VehicleMirror>();
    for e in m.entities.values_mut() {
        *e = remap.get(*e);
    }
}

pub(crate) fn sync_due(clock: Res<SimClock>, m: Res<VehicleMirror>) -> bool {
    clock.is_every(m.sync_interval_s)
}

/// Roads and junctions as model entities; returns the road entity of each edge.
pub(crate) fn spawn_network(
    world: &mut World,
    net: &Network,
    place: &Placement,
    layer: &str,
) -> Result<Vec<Option<Entity>>, String> {
    let mut junctions = Vec::with_capacity(net.junctions.len());
    for j in &net.junctions {
        let signal = j.signal.map(|s| {
            let logic = &net.signals[s as usize];
            SignalProgram {
                offset_s: logic.offset_s,
                phases: logic
                    .phases
                    .iter()
                    .map(|p| SignalPhase {
                        duration_s: p.duration_s,
                        state: String::from_utf8_lossy(&p.state).into_owned(),
                    })
                    .collect(),
            }
        });
        let xy = place.point(j.xy);
        let e = world
            .spawn((
                Intersection { signal },
                Position::new(xy.x, xy.y),
                FeatureId {
                    layer: layer.to_string(),
                    id: j.id.clone(),
                },
                Kind(EntityKind::Intersection),
            ))
            .id();
        junctions.push(e);
    }
    let mut roads = Vec::with_capacity(net.edges.len());
    for e in &net.edges {
        let pts = place.line(&e.shape)?;
        if pts.len() < 2 {
            roads.push(None);
            continue;
        }
        let line = geo::LineString::from(pts.iter().map(|p| (p.x, p.y)).collect::<Vec<_>>());
        let road = world.spawn((
            Road {
                name: e.name.clone(),
                lanes: e.lanes.len().min(255) as u8,
                speed_limit_mps: e.speed_mps,
                lane_width_m: 3.2,
                length_m: e.length_m,
                from: junctions.get(e.from as usize).copied(),
                to: junctions.get(e.to as usize).copied(),
            },
            Shape::new(line),
            FeatureId {
                layer: layer.to_string(),
                id: e.id.clone(),
            },
            Kind(EntityKind::Road),
        ));
        roads.push(Some(road.id()));
    }
    Ok(roads)
}

pub(crate) fn mirror_vehicles(
    sim: Res<TrafficSim>,
    mut mirror: ResMut<VehicleMirror>,
    mut commands: Commands,
    mut q: Query<(&mut Position, &mut Vehicle)>,
) {
    let traffic = &sim.0;
    let net = &traffic.net;
    let mirror = &mut *mirror;
    let mut alive: HashMap<u32, Entity> = HashMap::with_capacity(mirror.entities.len());
    for v in traffic.vehicles() {
        let road = net.lanes[v.lane as usize]
            .edge
            .and_then(|e| mirror.roads[e as usize]);
        let centre_m = v.pos_m - v.length_m / 2.0;
        let xy = mirror.placement.point(lane_point(net, v.lane, centre_m));
        // Facing along the lane, measured in the frame (the placement may turn it).
        let ahead = mirror
            .placement
            .point(lane_point(net, v.lane, centre_m + 1.0));
        let behind = mirror
            .placement
            .point(lane_point(net, v.lane, centre_m - 1.0));
        let d = ahead - behind;
        let heading_rad = if d.length_squared() > 0.0 {
            d.y.atan2(d.x)
        } else {
            0.0
        };
        let e = match mirror.entities.remove(&v.trip) {
            Some(e) => {
                if let Ok((mut p, mut veh)) = q.get_mut(e) {
                    p.xy_m = xy;
                    veh.accel_mps2 = (v.speed_mps - veh.speed_mps) / mirror.sync_interval_s;
                    veh.speed_mps = v.speed_mps;
                    veh.road = road;
                    veh.heading_rad = heading_rad;
                }
                e
            }
            None => commands
                .spawn((
                    Vehicle {
                        kind: match v.class {
                            net::VClass::Passenger => VehicleKind::Car,
                            net::VClass::Bus => VehicleKind::Bus,
                            net::VClass::Truck => VehicleKind::Truck,
                            net::VClass::Emergency => VehicleKind::Emergency,
                        },
                        length_m: v.length_m,
                        max_speed_mps: v.max_speed_mps,
                        speed_mps: v.speed_mps,
                        accel_mps2: 0.0,
                        road,
                        heading_rad,
                    },
                    Position::new(xy.x, xy.y),
                    FeatureId {
                        layer: mirror.layer.clone(),
                        id: v.id.clone(),
                    },
                    Kind(EntityKind::Vehicle),
                ))
                .id(),
        };
        alive.insert(v.trip, e);
    }
    // What is left arrived: despawn in a fixed order.
    let mut gone: Vec<(u32, Entity)> = mirror.entities.drain().collect();
    gone.sort_unstable_by_key(|g| g.0);
    for (_, e) in gone {
        commands.entity(e).despawn();
    }
    mirror.entities = alive;
}
