//! The drainage network in the world: a SWMM model's objects spawned as engine entities, and
//! the solver's [`NetworkSpec`] read back from whatever drainage entities the world holds
//! (imported from a `.inp` file, from GIS layers, or spawned by a plugin) — one way in.

use std::collections::BTreeMap;

use bevy::math::DVec2;
use bevy::prelude::*;
use citytwin_engine::prelude::*;
use geo::{Coord, LineString, Polygon};

use super::inp::InpModel;
use super::spec::*;

/// The world's drainage network as a spec, with the entity behind each index.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct WorldNetwork {
    /// The network.
    pub spec: NetworkSpec,
    /// Entity of each node.
    pub nodes: Vec<Entity>,
    /// Entity of each link.
    pub links: Vec<Entity>,
    /// Entity of each subcatchment.
    pub subcatchments: Vec<Entity>,
    /// Plan position of each node in the frame, m.
    pub node_xy: Vec<DVec2>,
    /// Rim (ground) elevation of each node, m.
    pub node_rim_m: Vec<f64>,
}

fn name_of(e: Entity, ids: &BTreeMap<Entity, String>) -> String {
    ids.get(&e).cloned().unwrap_or_else(|| format!("{e}"))
}

/// Read the drainage entities of the world into a spec with `options`; `None` when the
/// world has no drainage nodes. Everything is taken in entity order (deterministic).
pub fn network_from_world(
    world: &mut World,
    options: Options,
) -> Result<Option<WorldNetwork>, String> {
    let ids: BTreeMap<Entity, String> = world
        .query::<(Entity, &FeatureId)>()
        .iter(world)
        .map(|(e, f)| (e, f.to_string()))
        .collect();
    let mut nodes: Vec<(Entity, NodeKind, DVec2, f64)> = Vec::new();
    for (e, m, p) in world.query::<(Entity, &Manhole, &Position)>().iter(world) {
        nodes.push((e, NodeKind::Junction(m.clone()), p.xy_m, p.z_m));
    }
    for (e, s, p) in world
        .query::<(Entity, &StorageUnit, &Position)>()
        .iter(world)
    {
        nodes.push((e, NodeKind::Storage(s.clone()), p.xy_m, p.z_m));
    }
    for (e, o, p) in world.query::<(Entity, &Outfall, &Position)>().iter(world) {
        nodes.push((e, NodeKind::Outfall(o.clone()), p.xy_m, p.z_m));
    }
    if nodes.is_empty() {
        return Ok(None);
    }
    nodes.sort_by_key(|n| n.0);
    let index: BTreeMap<Entity, usize> = nodes.iter().enumerate().map(|(i, n)| (n.0, i)).collect();
    let inflows: BTreeMap<Entity, NodeInflow> = world
        .query::<(Entity, &NodeInflow)>()
        .iter(world)
        .map(|(e, f)| (e, f.clone()))
        .collect();
    let mut spec = NetworkSpec {
        options,
        ..Default::default()
    };
    for (e, kind, xy, _) in &nodes {
        spec.nodes.push(NodeSpec {
            name: name_of(*e, &ids),
            kind: kind.clone(),
            inflow: inflows.get(e).cloned(),
            xy: Some((xy.x, xy.y)),
        });
    }
    let node = |e: Entity, link: Entity| -> Result<usize, String> {
        index.get(&e).copied().ok_or_else(|| {
            format!(
                "drainage link {} names {}, which is not a manhole, storage unit or outfall",
                name_of(link, &ids),
                name_of(e, &ids)
            )
        })
    };
    let mut links: Vec<(Entity, LinkKind)> = Vec::new();
    for (e, c) in world.query::<(Entity, &Conduit)>().iter(world) {
        let (from, to) = (node(c.from, e)?, node(c.to, e)?);
        links.push((e, LinkKind::Conduit(c.with_nodes(from, to))));
    }
    for (e, p) in world.query::<(Entity, &Pump)>().iter(world) {
        let (from, to) = (node(p.from, e)?, node(p.to, e)?);
        links.push((e, LinkKind::Pump(p.with_nodes(from, to))));
    }
    for (e, o) in world.query::<(Entity, &Orifice)>().iter(world) {
        let (from, to) = (node(o.from, e)?, node(o.to, e)?);
        links.push((e, LinkKind::Orifice(o.with_nodes(from, to))));
    }
    for (e, w) in world.query::<(Entity, &Weir)>().iter(world) {
        let (from, to) = (node(w.from, e)?, node(w.to, e)?);
        links.push((e, LinkKind::Weir(w.with_nodes(from, to))));
    }
    links.sort_by_key(|l| l.0);
    for (e, kind) in &links {
        spec.links.push(LinkSpec {
            name: name_of(*e, &ids),
            kind: kind.clone(),
            vertices: Vec::new(),
        });
    }
    let mut subs: Vec<(Entity, Subcatchment)> = world
        .query::<(Entity, &Subcatchment)>()
        .iter(world)
        .map(|(e, s)| (e, s.clone()))
        .collect();
    subs.sort_by_key(|s| s.0);
    let sub_index: BTreeMap<Entity, usize> =
        subs.iter().enumerate().map(|(i, s)| (s.0, i)).collect();
    for (e, s) in &subs {
        let outlet = if let Some(&n) = index.get(&s.outlet) {
            Outlet::Node(n)
        } else if let Some(&k) = sub_index.get(&s.outlet) {
            Outlet::Subcatchment(k)
        } else {
            return Err(format!(
                "subcatchment {} drains to {}, which is neither a drainage node nor a subcatchment",
                name_of(*e, &ids),
                name_of(s.outlet, &ids)
            ));
        };
        spec.subcatchments.push(SubcatchSpec {
            name: name_of(*e, &ids),
            params: s.with_outlet(outlet),
            polygon: Vec::new(),
        });
    }
    // Gauges named by subcatchments: the engine's rain feeds them each step.
    let mut gauges: Vec<String> = spec
        .subcatchments
        .iter()
        .filter_map(|s| s.params.gauge.clone())
        .collect();
    gauges.sort();
    gauges.dedup();
    spec.gauges = gauges
        .into_iter()
        .map(|name| GaugeSpec {
            name,
            entries: Vec::new(),
            interval_s: 3600.0,
            xy: None,
        })
        .collect();
    Ok(Some(WorldNetwork {
        node_xy: nodes.iter().map(|n| n.2).collect(),
        node_rim_m: nodes.iter().map(|n| n.3).collect(),
        spec,
        nodes: nodes.iter().map(|n| n.0).collect(),
        links: links.iter().map(|l| l.0).collect(),
        subcatchments: subs.iter().map(|s| s.0).collect(),
    }))
}

/// Spawn the objects of a SWMM model as entities of layer `layer`, placing the model's
/// coordinates with `place` (model x, y → frame metres). Nodes need coordinates; links are
/// drawn through their vertices; rain gauges with coordinates become rain-gauge sensors.
/// Returns the number of entities spawned.
pub fn spawn_inp(
    world: &mut World,
    model: &InpModel,
    layer: &str,
    place: &dyn Fn((f64, f64)) -> Result<DVec2, String>,
) -> Result<usize, String> {
    let spec = &model.spec;
    let fid = |id: &str| FeatureId {
        layer: layer.to_string(),
        id: id.to_string(),
    };
    let mut node_e = Vec::with_capacity(spec.nodes.len());
    let mut node_xy = Vec::with_capacity(spec.nodes.len());
    let mut count = 0;
    for n in &spec.nodes {
        let xy = n.xy.ok_or_else(|| {
            format!(
                "node `{}` has no [COORDINATES]: cannot place it in the city",
                n.name
            )
        })?;
        let p = place(xy)?;
        let mut e = world.spawn(fid(&n.name));
        match &n.kind {
            NodeKind::Junction(m) => {
                e.insert((
                    Kind(EntityKind::Manhole),
                    Position {
                        xy_m: p,
                        z_m: m.invert_m + m.max_depth_m,
                    },
                    m.clone(),
                ));
            }
            NodeKind::Storage(s) => {
                e.insert((
                    Kind(EntityKind::StorageUnit),
                    Position {
                        xy_m: p,
                        z_m: s.invert_m + s.max_depth_m,
                    },
                    s.clone(),
                ));
            }
            NodeKind::Outfall(o) => {
                e.insert((
                    Kind(EntityKind::Outfall),
                    Position {
                        xy_m: p,
                        z_m: o.invert_m,
                    },
                    o.clone(),
                ));
            }
        }
        if let Some(f) = &n.inflow {
            e.insert(f.clone());
        }
        node_e.push(e.id());
        node_xy.push(p);
        count += 1;
    }
    for l in &spec.links {
        let (a, b) = l.ends();
        let mut pts: Vec<Coord<f64>> = vec![Coord {
            x: node_xy[a].x,
            y: node_xy[a].y,
        }];
        for &v in &l.vertices {
            let p = place(v)?;
            pts.push(Coord { x: p.x, y: p.y });
        }
        pts.push(Coord {
            x: node_xy[b].x,
            y: node_xy[b].y,
        });
        let shape = Shape::new(LineString::from(pts));
        let (ea, eb) = (node_e[a], node_e[b]);
        let mut e = world.spawn((fid(&l.name), shape));
        match &l.kind {
            LinkKind::Conduit(c) => {
                e.insert((Kind(EntityKind::Conduit), c.with_nodes(ea, eb)));
            }
            LinkKind::Pump(p) => {
                e.insert((Kind(EntityKind::Pump), p.with_nodes(ea, eb)));
            }
            LinkKind::Orifice(o) => {
                e.insert((Kind(EntityKind::Orifice), o.with_nodes(ea, eb)));
            }
            LinkKind::Weir(w) => {
                e.insert((Kind(EntityKind::Weir), w.with_nodes(ea, eb)));
            }
        }
        count += 1;
    }
    // Subcatchments: spawned first without outlets that are other subcatchments resolved.
    let mut sub_e = Vec::with_capacity(spec.subcatchments.len());
    for s in &spec.subcatchments {
        let ring: Result<Vec<Coord<f64>>, String> = s
            .polygon
            .iter()
            .map(|&v| place(v).map(|p| Coord { x: p.x, y: p.y }))
            .collect();
        let ring = ring?;
        let mut e = world.spawn((fid(&s.name), Kind(EntityKind::Subcatchment)));
        if ring.len() >= 3 {
            e.insert(Shape::new(Polygon::new(LineString::from(ring), vec![])));
        }
        sub_e.push(e.id());
        count += 1;
    }
    for (k, s) in spec.subcatchments.iter().enumerate() {
        let p = &s.params;
        let outlet = match p.outlet {
            Outlet::Node(n) => node_e[n],
            Outlet::Subcatchment(j) => sub_e[j],
        };
        world.entity_mut(sub_e[k]).insert(p.with_outlet(outlet));
    }
    for g in &spec.gauges {
        if let Some(xy) = g.xy {
            let p = place(xy)?;
            world.spawn((
                fid(&g.name),
                Kind(EntityKind::Sensor),
                Position { xy_m: p, z_m: 0.0 },
                Sensor {
                    kind: SensorKind::RainGauge,
                    station: g.name.clone(),
                },
            ));
            count += 1;
        }
    }
    Ok(count)
}
