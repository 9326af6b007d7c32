//! Road networks from OpenStreetMap (`.osm.pbf`): drivable ways split at junctions into edges
//! each way, with lanes, one-way rules, speed limits and turn restrictions from the tags, and
//! signal programs built for junctions with traffic signals (OSM has none).
//!
//! Defaults where tags are missing follow SUMO's `osmNetconvert.typ.xml`: lanes per direction
//! and speed per road class. A junction is signalised when a `highway=traffic_signals` node is
//! the junction or lies within 30 m of it on an approach (OSM maps signals at stop lines), and
//! roads cross there (netconvert's `tls.discard-simple` leaves pedestrian crossings out). Its
//! program has one green phase per pair of opposite approaches (42 s, actuated between 5 and
//! 50 s) and 3 s of amber, left turns permissive — netconvert's default. Unsignalised
//! junctions give way by road class; where all roads are of one class, to the right.

mod junctions;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use citytwin_engine::geo_frame::{GeoFrame, LonLat};
use citytwin_engine::import::osm_pbf as pbf;

use crate::error::TrafficError;
use crate::net::{
    Edge, EdgeIx, Junction, Lane, LaneIx, Link, LinkIx, NetLocation, Network, Priority,
    SignalLogic, VClass,
};
use junctions::{merge_yields, right_of_way};

/// Road classes driven on, with SUMO's defaults: (rank, lanes per direction, speed m/s, one-way).
fn class(highway: &str) -> Option<(u8, u8, f64, bool)> {
    Some(match highway {
        "motorway" => (13, 2, 39.44, true),
        "motorway_link" => (12, 1, 22.22, true),
        "trunk" => (12, 2, 27.78, false),
        "trunk_link" => (11, 1, 22.22, false),
        "primary" => (11, 2, 27.78, false),
        "primary_link" => (10, 1, 22.22, false),
        "secondary" => (10, 1, 27.78, false),
        "secondary_link" => (9, 1, 22.22, false),
        "tertiary" => (9, 1, 22.22, false),
        "tertiary_link" => (8, 1, 22.22, false),
        "unclassified" => (7, 1, 13.89, false),
        "residential" => (6, 1, 13.89, false),
        "living_street" => (5, 1, 2.78, false),
        "road" => (5, 1, 13.89, false),
        _ => return None,
    })
}

fn tag<'a>(tags: &'a [(String, String)], k: &str) -> Option<&'a str> {
    tags.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
}

/// A speed from an OSM `maxspeed` value, m/s.
fn parse_speed(v: &str) -> Option<f64> {
    let v = v.trim();
    if let Some(n) = v.strip_suffix("mph") {
        return n.trim().parse::<f64>().ok().map(|x| x * 0.44704);
    }
    if let Ok(kmh) = v.parse::<f64>() {
        return Some(kmh / 3.6);
    }
    // zone values like "FI:urban", "DE:rural", "RU:living_street"
    let zone = v.split(':').nth(1).unwrap_or(v);
    Some(
        match zone {
            "urban" => 50.0,
            "rural" => 80.0,
            "living_street" => 20.0,
            "motorway" => 120.0,
            "walk" => 7.0,
            _ => return None,
        } / 3.6,
    )
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Seg {
    way: i64,
    k: usize,
    nodes: Vec<i64>,
    rank: u8,
    name: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct DirEdge {
    seg: usize,
    forward: bool,
    lanes: u8,
    speed: f64,
}

/// Heading of a polyline's first (`start`) or last segment, radians, counter-clockwise from east.
fn heading(pts: &[[f64; 2]], start: bool) -> f64 {
    let (a, b) = if start {
        (pts[0], pts[1])
    } else {
        (pts[pts.len() - 2], pts[pts.len() - 1])
    };
    (b[1] - a[1]).atan2(b[0] - a[0])
}

fn wrap(a: f64) -> f64 {
    let mut a = a;
    while a > std::f64::consts::PI {
        a -= std::f64::consts::TAU;
    }
    while a <= -std::f64::consts::PI {
        a += std::f64::consts::TAU;
    }
    a
}

/// Build a road network from an `.osm.pbf` file, in `frame`'s metres.
pub fn network_from_pbf(path: &Path, frame: &GeoFrame) -> Result<Network, TrafficError> {
    let bytes = std::fs::read(path).map_err(|source| TrafficError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    let bad = |message: String| TrafficError::Inconsistent {
        file: path.to_path_buf(),
        message,
    };
    let data = pbf::read(&bytes).map_err(|m| bad(format!("not a readable OSM PBF file: {m}")))?;
    // drivable ways; an extract clips ways at its edge, so a way is cut where its nodes are
    // missing and the pieces inside are kept
    let mut ways: Vec<pbf::Way> = Vec::new();
    for w in &data.ways {
        let Some(hw) = tag(&w.tags, "highway") else {
            continue;
        };
        if class(hw).is_none()
            || tag(&w.tags, "area") == Some("yes")
            || matches!(tag(&w.tags, "access"), Some("no" | "private"))
                && !matches!(tag(&w.tags, "motor_vehicle"), Some("yes" | "designated"))
            || w.nodes.len() < 2
        {
            continue;
        }
        for piece in w.nodes.split(|n| !data.nodes.contains_key(n)) {
            if piece.len() >= 2 {
                ways.push(pbf::Way {
                    id: w.id,
                    tags: w.tags.clone(),
                    nodes: piece.to_vec(),
                });
            }
        }
    }
    if ways.is_empty() {
        return Err(bad(
            "the file holds no drivable roads (highway=primary, residential, …)".into(),
        ));
    }
    // junction nodes: shared by ways or ending one
    let mut uses: HashMap<i64, u32> = HashMap::new();
    for w in &ways {
        for (i, n) in w.nodes.iter().enumerate() {
            *uses.entry(*n).or_default() += if i == 0 || i + 1 == w.nodes.len() {
                2
            } else {
                1
            };
        }
    }
    let xy: HashMap<i64, [f64; 2]> = uses
        .keys()
        .map(|&n| {
            let (lon, lat) = data.nodes[&n];
            let c = frame.to_local(LonLat::new(lon, lat));
            (n, [c.x, c.y])
        })
        .collect();
    let is_signal = |n: i64| {
        data.node_tags
            .get(&n)
            .is_some_and(|t| tag(t, "highway") == Some("traffic_signals"))
    };
    // segments between junctions, and directed edges on them
    let mut segs: Vec<Seg> = Vec::new();
    let mut dir_edges: Vec<DirEdge> = Vec::new();
    for w in &ways {
        let hw = tag(&w.tags, "highway").expect("filtered");
        let (rank, def_lanes, def_speed, def_oneway) = class(hw).expect("filtered");
        let oneway = match tag(&w.tags, "oneway") {
            Some("yes" | "true" | "1") => 1,
            Some("-1" | "reverse") => -1,
            Some("no" | "false" | "0") => 0,
            _ if matches!(tag(&w.tags, "junction"), Some("roundabout" | "circular"))
                || def_oneway =>
            {
                1
            }
            _ => 0,
        };
        let lanes_total = tag(&w.tags, "lanes").and_then(|v| v.trim().parse::<u8>().ok());
        let per_dir = |key: &str| tag(&w.tags, key).and_then(|v| v.trim().parse::<u8>().ok());
        let (lanes_fwd, lanes_bwd) = match oneway {
            0 => (
                per_dir("lanes:forward")
                    .or(lanes_total.map(|t| t.div_ceil(2)))
                    .unwrap_or(def_lanes),
                per_dir("lanes:backward")
                    .or(lanes_total.map(|t| (t / 2).max(1)))
                    .unwrap_or(def_lanes),
            ),
            _ => {
                let n = lanes_total.unwrap_or(def_lanes);
                (n, n)
            }
        };
        let speed = tag(&w.tags, "maxspeed")
            .and_then(parse_speed)
            .unwrap_or(def_speed);
        let speed_fwd = tag(&w.tags, "maxspeed:forward")
            .and_then(parse_speed)
            .unwrap_or(speed);
        let speed_bwd = tag(&w.tags, "maxspeed:backward")
            .and_then(parse_speed)
            .unwrap_or(speed);
        let mut start = 0;
        let mut k = 0;
        for i in 1..w.nodes.len() {
            if i + 1 == w.nodes.len() || uses[&w.nodes[i]] >= 2 {
                let nodes = w.nodes[start..=i].to_vec();
                start = i;
                if nodes.first() == nodes.last() && nodes.len() <= 2 {
                    continue; // a zero-length piece
                }
                let si = segs.len();
                segs.push(Seg {
                    way: w.id,
                    k,
                    nodes,
                    rank,
                    name: tag(&w.tags, "name").unwrap_or("").to_string(),
                });
                k += 1;
                if oneway >= 0 {
                    dir_edges.push(DirEdge {
                        seg: si,
                        forward: true,
                        lanes: lanes_fwd.max(1),
                        speed: speed_fwd,
                    });
                }
                if oneway <= 0 {
                    dir_edges.push(DirEdge {
                        seg: si,
                        forward: false,
                        lanes: lanes_bwd.max(1),
                        speed: speed_bwd,
                    });
                }
            }
        }
    }
    // junctions
    let mut junction_of: BTreeMap<i64, u32> = BTreeMap::new();
    for s in &segs {
        for n in [s.nodes[0], *s.nodes.last().expect("two nodes")] {
            let next = junction_of.len() as u32;
            junction_of.entry(n).or_insert(next);
        }
    }
    // renumber in node-id order so the result does not depend on way order
    for (i, v) in junction_of.values_mut().enumerate() {
        *v = i as u32;
    }
    let mut junctions: Vec<Junction> = junction_of
        .keys()
        .map(|&n| Junction {
            id: n.to_string(),
            kind: "priority".into(),
            xy: xy[&n],
            signal: None,
        })
        .collect();
    // edges and lanes
    let mut edges: Vec<Edge> = Vec::new();
    let mut lanes: Vec<Lane> = Vec::new();
    let mut edge_meta: Vec<(usize, bool, u8)> = Vec::new(); // (segment, forward, rank)
    let mut signal_junction: HashSet<u32> = HashSet::new();
    for d in &dir_edges {
        let s = &segs[d.seg];
        let mut nodes = s.nodes.clone();
        if !d.forward {
            nodes.reverse();
        }
        let shape: Vec<[f64; 2]> = nodes.iter().map(|n| xy[n]).collect();
        let length: f64 = shape
            .windows(2)
            .map(|p| (p[1][0] - p[0][0]).hypot(p[1][1] - p[0][1]))
            .sum::<f64>()
            .max(1.0);
        let (from, to) = (
            junction_of[&nodes[0]],
            junction_of[nodes.last().expect("two")],
        );
        // signals at the junction, or on this approach within 30 m of it
        let mut dist = 0.0;
        for i in (1..nodes.len()).rev() {
            if is_signal(nodes[i]) && dist <= 30.0 {
                signal_junction.insert(to);
                break;
            }
            dist += (shape[i][0] - shape[i - 1][0]).hypot(shape[i][1] - shape[i - 1][1]);
        }
        let id = if d.forward {
            format!("{}#{}", s.way, s.k)
        } else {
            format!("-{}#{}", s.way, s.k)
        };
        let ei = edges.len() as EdgeIx;
        let mut lane_ix = Vec::new();
        for li in 0..d.lanes {
            lane_ix.push(lanes.len() as LaneIx);
            lanes.push(Lane {
                id: format!("{id}_{li}"),
                edge: Some(ei),
                link: None,
                index: li,
                length_m: length,
                speed_mps: d.speed,
                allow: VClass::ALL.iter().fold(0, |m, c| m | c.bit()),
                links: Vec::new(),
                shape: shape.clone(),
            });
        }
        edges.push(Edge {
            id,
            name: s.name.clone(),
            lanes: lane_ix,
            from,
            to,
            length_m: length,
            speed_mps: d.speed,
            shape,
        });
        edge_meta.push((d.seg, d.forward, s.rank));
    }
    // turn restrictions: (from way, via node, to way) → forbidden / only
    let mut no_turn: HashSet<(i64, i64, i64)> = HashSet::new();
    let mut only_turn: HashMap<(i64, i64), i64> = HashMap::new();
    for r in &data.relations {
        if tag(&r.tags, "type") != Some("restriction") {
            continue;
        }
        let Some(kind) = tag(&r.tags, "restriction").or(tag(&r.tags, "restriction:motorcar"))
        else {
            continue;
        };
        let find = |role: &str, mk: pbf::MemberKind| {
            r.members
                .iter()
                .find(|m| m.2 == role && m.0 == mk)
                .map(|m| m.1)
        };
        let (Some(from), Some(via), Some(to)) = (
            find("from", pbf::MemberKind::Way),
            find("via", pbf::MemberKind::Node),
            find("to", pbf::MemberKind::Way),
        ) else {
            continue; // via-way restrictions are not modelled
        };
        if kind.starts_with("no_") {
            no_turn.insert((from, via, to));
        } else if kind.starts_with("only_") {
            only_turn.insert((from, via), to);
        }
    }
    let node_of_junction: Vec<i64> = junction_of.keys().copied().collect();
    // links, junction by junction
    let mut incoming: Vec<Vec<EdgeIx>> = vec![Vec::new(); junctions.len()];
    let mut outgoing: Vec<Vec<EdgeIx>> = vec![Vec::new(); junctions.len()];
    for (i, e) in edges.iter().enumerate() {
        incoming[e.to as usize].push(i as EdgeIx);
        outgoing[e.from as usize].push(i as EdgeIx);
    }
    let mut links: Vec<Link> = Vec::new();
    let mut signals: Vec<SignalLogic> = Vec::new();
    // per junction: (link, incoming edge, turn angle)
    for j in 0..junctions.len() {
        let via = node_of_junction[j];
        let mut jl: Vec<(LinkIx, EdgeIx, f64)> = Vec::new();
        for &ein in &incoming[j] {
            let (sin, _, _) = edge_meta[ein as usize];
            let hin = heading(&edges[ein as usize].shape, false);
            let way_in = segs[sin].way;
            let mut outs: Vec<(EdgeIx, f64)> = Vec::new();
            for &eout in &outgoing[j] {
                let (sout, _, _) = edge_meta[eout as usize];
                let way_out = segs[sout].way;
                let turn = wrap(heading(&edges[eout as usize].shape, true) - hin);
                let u_turn = sout == sin;
                if u_turn && outgoing[j].len() > 1 {
                    continue; // turn back only at dead ends
                }
                if no_turn.contains(&(way_in, via, way_out)) {
                    continue;
                }
                if let Some(&only) = only_turn.get(&(way_in, via))
                    && only != way_out
                {
                    continue;
                }
                outs.push((eout, turn));
            }
            // rightmost first
            outs.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            let n_in = edges[ein as usize].lanes.len();
            for &(eout, turn) in &outs {
                let n_out = edges[eout as usize].lanes.len();
                let deg = turn.to_degrees();
                let dir = if deg.abs() > 150.0 {
                    't'
                } else if deg > 30.0 {
                    'l'
                } else if deg < -30.0 {
                    'r'
                } else {
                    's'
                };
                // lanes: right turns from the right lane, left turns from the left lane,
                // straight on from every lane
                let from_lanes: Vec<usize> = match dir {
                    _ if n_in == 1 => vec![0],
                    'r' => vec![0],
                    'l' | 't' => vec![n_in - 1],
                    // where lanes end, only as many go straight on as continue; the others
                    // merge on the edge before the junction (a lane change, never blind)
                    _ => (0..n_in.min(n_out)).collect(),
                };
                let (len, vturn) = match dir {
                    's' => (6.0, f64::INFINITY),
                    'r' => (7.9, (5.5_f64 * 5.0).sqrt()),
                    'l' => (14.1, (5.5_f64 * 9.0).sqrt()),
                    _ => (9.4, (5.5_f64 * 3.0).sqrt()),
                };
                for fl in from_lanes {
                    let tl = match dir {
                        'r' => 0,
                        'l' | 't' => n_out - 1,
                        _ => fl.min(n_out - 1),
                    };
                    let from_lane = edges[ein as usize].lanes[fl];
                    let to_lane = edges[eout as usize].lanes[tl];
                    let speed = lanes[from_lane as usize]
                        .speed_mps
                        .min(lanes[to_lane as usize].speed_mps)
                        .min(vturn);
                    let a = lanes[from_lane as usize]
                        .shape
                        .last()
                        .copied()
                        .unwrap_or(junctions[j].xy);
                    let b = lanes[to_lane as usize]
                        .shape
                        .first()
                        .copied()
                        .unwrap_or(junctions[j].xy);
                    let k = links.len() as LinkIx;
                    let lane = lanes.len() as LaneIx;
                    lanes.push(Lane {
                        id: format!(":{}_{}", junctions[j].id, jl.len()),
                        edge: None,
                        link: Some(k),
                        index: 0,
                        length_m: len,
                        speed_mps: speed,
                        allow: lanes[from_lane as usize].allow,
                        links: Vec::new(),
                        shape: vec![a, junctions[j].xy, b],
                    });
                    lanes[from_lane as usize].links.push(k);
                    links.push(Link {
                        from_lane,
                        to_lane,
                        lane,
                        to_edge: eout,
                        junction: j as u32,
                        signal: None,
                        priority: Priority::Major,
                        dir,
                        yields_to: Vec::new(),
                        wait_pos_m: None,
                    });
                    jl.push((k, ein, turn));
                }
            }
        }
        right_of_way(
            j as u32,
            &jl,
            &edges,
            &edge_meta,
            signal_junction.contains(&(j as u32)),
            &mut links,
            &mut junctions,
            &mut signals,
        );
        if junctions[j].signal.is_none() {
            merge_yields(&jl, &edges, &edge_meta, &mut links);
        }
    }
    Ok(Network::assemble(
        path.to_path_buf(),
        NetLocation::Local { offset: [0.0, 0.0] },
        edges,
        lanes,
        links,
        junctions,
        signals,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_limits_read_as_osm_writes_them() {
        let kmh = |v: &str| parse_speed(v).map(|x| (x * 3.6 * 100.0).round() / 100.0);
        assert_eq!(kmh("50"), Some(50.0));
        assert_eq!(kmh("30 mph"), Some(48.28));
        assert_eq!(kmh("FI:urban"), Some(50.0));
        assert_eq!(kmh("DE:rural"), Some(80.0));
        assert_eq!(kmh("RU:living_street"), Some(20.0));
        assert_eq!(kmh("signals"), None);
    }

    #[test]
    fn angles_wrap_into_a_half_turn() {
        assert!((wrap(3.5 * std::f64::consts::PI) + 0.5 * std::f64::consts::PI).abs() < 1e-12);
        assert_eq!(class("footway"), None);
        assert_eq!(class("primary").map(|c| c.1), Some(2));
    }
}
