//! SUMO's network format: `.net.xml` files (edges, lanes, junctions with their right-of-way
//! requests, connections with their internal lanes, traffic-light programs) and additional
//! files of `<tlLogic>` programs. Errors name the file, the line and the element.

use std::collections::HashMap;
use std::path::Path;

use super::*;
use crate::error::TrafficError;
use crate::xml::{self, Item, XmlFile};

#[derive(serde::Serialize, serde::Deserialize)]
struct RawLane {
    id: String,
    index: usize,
    speed: f64,
    length: f64,
    allow: u8,
    shape: Vec<[f64; 2]>,
    line: usize,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct RawEdge {
    id: String,
    internal: bool,
    from: String,
    to: String,
    name: String,
    shape: Option<Vec<[f64; 2]>>,
    lanes: Vec<RawLane>,
    line: usize,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct RawJunction {
    id: String,
    kind: String,
    xy: [f64; 2],
    int_lanes: Vec<String>,
    /// index → (response, cont)
    requests: Vec<(usize, String, bool, usize)>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct RawConn {
    from: String,
    to: String,
    from_lane: usize,
    to_lane: usize,
    via: Option<String>,
    tl: Option<String>,
    link_index: Option<usize>,
    dir: char,
    state: char,
    line: usize,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct RawTl {
    id: String,
    control: SignalControl,
    offset: f64,
    phases: Vec<Phase>,
    line: usize,
}

/// Which classes a lane admits, from SUMO's `allow`/`disallow` lists.
fn permissions(allow: Option<&str>, disallow: Option<&str>) -> u8 {
    let has = |list: &str, c: VClass| {
        list.split_whitespace()
            .any(|n| n == "all" || VClass::from_sumo(n) == Some(c))
    };
    let mut mask = 0u8;
    for c in VClass::ALL {
        let ok = match (allow, disallow) {
            (Some(a), _) => has(a, c),
            (None, Some(d)) => !d
                .split_whitespace()
                .any(|n| n == c.sumo_name() || n == "all"),
            (None, None) => true,
        };
        if ok {
            mask |= c.bit();
        }
    }
    mask
}

impl Network {
    /// Read a SUMO `.net.xml` file.
    pub fn from_sumo_file(path: &Path) -> Result<Self, TrafficError> {
        let text = std::fs::read_to_string(path).map_err(|source| TrafficError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Self::from_sumo_str(path, &text)
    }

    /// Parse SUMO network XML; `path` names it in errors.
    pub fn from_sumo_str(path: &Path, text: &str) -> Result<Self, TrafficError> {
        let mut f = XmlFile::new(path, text);
        let mut location = None;
        let mut edges: Vec<RawEdge> = Vec::new();
        let mut junctions: Vec<RawJunction> = Vec::new();
        let mut conns: Vec<RawConn> = Vec::new();
        let mut tls: Vec<RawTl> = Vec::new();
        let mut root_seen = false;
        // What the current depth-2 element is, for its children.
        let mut parent: Option<&'static str> = None;
        while let Some(item) = f.next()? {
            let (el, depth) = match item {
                Item::Start(el, d) => (el, d),
                Item::End(2) => {
                    parent = None;
                    continue;
                }
                Item::End(..) => continue,
            };
            if depth == 1 {
                if el.name != "net" {
                    return Err(f.error(
                        el.line,
                        format!("expected a SUMO network (<net>), found <{}>", el.name),
                    ));
                }
                root_seen = true;
                continue;
            }
            if depth == 2 {
                parent = None;
                match el.name.as_str() {
                    "location" => {
                        let off = el.get("netOffset").unwrap_or("0,0");
                        let offset = parse_pair(off).ok_or_else(|| {
                            f.error(
                                el.line,
                                format!("<location> netOffset=\"{off}\" is not x,y"),
                            )
                        })?;
                        let proj = el.get("projParameter").unwrap_or("!").trim().to_string();
                        location = Some(if proj == "!" || proj.is_empty() {
                            NetLocation::Local { offset }
                        } else {
                            NetLocation::Projected { offset, proj }
                        });
                    }
                    "edge" => {
                        let function = el.get("function").unwrap_or("normal");
                        let internal = function == "internal";
                        if !(internal || function == "normal") {
                            // crossings and walking areas carry pedestrians only
                            parent = Some("skip");
                            continue;
                        }
                        let id = xml::text(&f, &el, "id")?.to_string();
                        edges.push(RawEdge {
                            from: el.get("from").unwrap_or("").to_string(),
                            to: el.get("to").unwrap_or("").to_string(),
                            name: el.get("name").unwrap_or("").to_string(),
                            shape: xml::shape(&f, &el, "shape")?,
                            id,
                            internal,
                            lanes: Vec::new(),
                            line: el.line,
                        });
                        if !internal
                            && (edges.last().unwrap().from.is_empty()
                                || edges.last().unwrap().to.is_empty())
                        {
                            return Err(f.error(
                                el.line,
                                format!("{} needs 'from' and 'to' junctions", el.describe()),
                            ));
                        }
                        parent = Some("edge");
                    }
                    "junction" => {
                        let kind = el.get("type").unwrap_or("unknown").to_string();
                        if kind == "internal" {
                            parent = Some("skip");
                            continue;
                        }
                        junctions.push(RawJunction {
                            id: xml::text(&f, &el, "id")?.to_string(),
                            xy: [xml::num(&f, &el, "x")?, xml::num(&f, &el, "y")?],
                            int_lanes: el
                                .get("intLanes")
                                .unwrap_or("")
                                .split_whitespace()
                                .map(str::to_string)
                                .collect(),
                            kind,
                            requests: Vec::new(),
                        });
                        parent = Some("junction");
                    }
                    "connection" => {
                        let lane_no = |key: &str| -> Result<usize, TrafficError> {
                            let v = xml::num(&f, &el, key)?;
                            if v < 0.0 || v.fract() != 0.0 {
                                return Err(f.error(
                                    el.line,
                                    format!("<connection> {key}=\"{v}\" is not a lane index"),
                                ));
                            }
                            Ok(v as usize)
                        };
                        conns.push(RawConn {
                            from: xml::text(&f, &el, "from")?.to_string(),
                            to: xml::text(&f, &el, "to")?.to_string(),
                            from_lane: lane_no("fromLane")?,
                            to_lane: lane_no("toLane")?,
                            via: el.get("via").map(str::to_string),
                            tl: el.get("tl").map(str::to_string),
                            link_index: xml::num_opt(&f, &el, "linkIndex")?.map(|v| v as usize),
                            dir: el.get("dir").and_then(|d| d.chars().next()).unwrap_or('s'),
                            state: el
                                .get("state")
                                .and_then(|d| d.chars().next())
                                .unwrap_or('M'),
                            line: el.line,
                        });
                    }
                    "tlLogic" => {
                        let id = xml::text(&f, &el, "id")?;
                        if tls.iter().any(|t| t.id == id) {
                            // Further programs of the same controller: the first one runs.
                            parent = Some("skip");
                            continue;
                        }
                        tls.push(tl_start(&f, &el)?);
                        parent = Some("tlLogic");
                    }
                    _ => {}
                }
                continue;
            }
            // depth ≥ 3: children of the current depth-2 element
            match (parent, el.name.as_str()) {
                (Some("edge"), "lane") => {
                    let e = edges.last_mut().expect("parent is an edge");
                    let length = xml::num(&f, &el, "length")?;
                    let speed = xml::num(&f, &el, "speed")?;
                    if length < 0.0 || speed <= 0.0 {
                        return Err(f.error(
                            el.line,
                            format!(
                                "{} has length {length} m and speed {speed} m/s; both must be positive",
                                el.describe()
                            ),
                        ));
                    }
                    let index = xml::num(&f, &el, "index")?;
                    e.lanes.push(RawLane {
                        id: xml::text(&f, &el, "id")?.to_string(),
                        index: index.max(0.0) as usize,
                        speed,
                        length,
                        allow: permissions(el.get("allow"), el.get("disallow")),
                        shape: xml::shape(&f, &el, "shape")?.unwrap_or_default(),
                        line: el.line,
                    });
                }
                (Some("junction"), "request") => {
                    let j = junctions.last_mut().expect("parent is a junction");
                    let index = xml::num(&f, &el, "index")? as usize;
                    let response = xml::text(&f, &el, "response")?.to_string();
                    if !response.bytes().all(|b| b == b'0' || b == b'1') {
                        return Err(f.error(
                            el.line,
                            format!("<request index=\"{index}\"> response=\"{response}\" is not a bit string"),
                        ));
                    }
                    let cont = el.get("cont") == Some("1");
                    j.requests.push((index, response, cont, el.line));
                }
                (Some("tlLogic"), _) => {
                    tl_child(&f, &el, tls.last_mut().expect("parent is a tlLogic"))?;
                }
                _ => {}
            }
        }
        if !root_seen {
            return Err(TrafficError::Inconsistent {
                file: path.to_path_buf(),
                message: "the file holds no <net> element".into(),
            });
        }
        build(
            path,
            location.unwrap_or(NetLocation::Local { offset: [0.0, 0.0] }),
            edges,
            junctions,
            conns,
            tls,
        )
    }
}

/// A `<tlLogic>` element's own attributes.
fn tl_start(f: &XmlFile<'_>, el: &xml::Element) -> Result<RawTl, TrafficError> {
    let control = match el.get("type").unwrap_or("static") {
        "static" => SignalControl::Static,
        "actuated" => SignalControl::Actuated {
            max_gap_s: 3.0,
            detector_gap_s: 2.0,
        },
        other => {
            return Err(f.error(
                el.line,
                format!(
                    "{} type=\"{other}\" is not supported (static or actuated)",
                    el.describe()
                ),
            ));
        }
    };
    Ok(RawTl {
        id: xml::text(f, el, "id")?.to_string(),
        control,
        offset: xml::num_opt(f, el, "offset")?.unwrap_or(0.0),
        phases: Vec::new(),
        line: el.line,
    })
}

/// A `<phase>` or `<param>` inside a `<tlLogic>`.
fn tl_child(f: &XmlFile<'_>, el: &xml::Element, t: &mut RawTl) -> Result<(), TrafficError> {
    match el.name.as_str() {
        "phase" => {
            let duration = xml::num(f, el, "duration")?;
            let state = xml::text(f, el, "state")?.as_bytes().to_vec();
            if duration <= 0.0 {
                return Err(f.error(
                    el.line,
                    format!(
                        "<phase> of tlLogic '{}' has duration {duration} s; it must be positive",
                        t.id
                    ),
                ));
            }
            if let Some(bad) = state.iter().find(|c| !b"GgyYrRuOoOs".contains(c)) {
                return Err(f.error(
                    el.line,
                    format!(
                        "<phase> of tlLogic '{}' has state letter '{}' (expected G g y r u o O s)",
                        t.id, *bad as char
                    ),
                ));
            }
            if let Some(first) = t.phases.first()
                && first.state.len() != state.len()
            {
                return Err(f.error(
                    el.line,
                    format!(
                        "<phase> of tlLogic '{}' controls {} links but its first phase controls {}",
                        t.id,
                        state.len(),
                        first.state.len()
                    ),
                ));
            }
            let min = xml::num_opt(f, el, "minDur")?.unwrap_or(duration);
            let max = xml::num_opt(f, el, "maxDur")?.unwrap_or(duration);
            t.phases.push(Phase {
                duration_s: duration,
                min_s: min.min(duration),
                max_s: max.max(duration),
                state,
            });
        }
        "param" => {
            if let SignalControl::Actuated {
                max_gap_s,
                detector_gap_s,
            } = &mut t.control
            {
                match el.get("key") {
                    Some("max-gap") => *max_gap_s = xml::num(f, el, "value")?,
                    Some("detector-gap") => *detector_gap_s = xml::num(f, el, "value")?,
                    _ => {}
                }
            }
        }
        _ => {}
    }
    Ok(())
}

impl Network {
    /// Read signal programs (`<tlLogic>` elements) from a SUMO additional file, checked against
    /// this network's controllers: as `sumo -a plans.add.xml` would load them.
    pub fn read_signal_plans(&self, path: &Path) -> Result<Vec<SignalPlan>, TrafficError> {
        let text = std::fs::read_to_string(path).map_err(|source| TrafficError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        let mut f = XmlFile::new(path, &text);
        let mut tls: Vec<RawTl> = Vec::new();
        let mut in_tl = false;
        while let Some(item) = f.next()? {
            match item {
                Item::Start(el, 1) if el.name != "additional" => {
                    return Err(f.error(
                        el.line,
                        format!(
                            "expected a SUMO additional file (<additional>), found <{}>",
                            el.name
                        ),
                    ));
                }
                Item::Start(el, 2) => {
                    in_tl = el.name == "tlLogic";
                    if in_tl {
                        tls.push(tl_start(&f, &el)?);
                    }
                }
                Item::Start(el, 3) if in_tl => {
                    tl_child(&f, &el, tls.last_mut().expect("a tlLogic is open"))?;
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        for t in tls {
            let err = |m: String| TrafficError::Xml {
                file: path.to_path_buf(),
                line: t.line,
                message: m,
            };
            let Some(s) = self.signals.iter().position(|s| s.id == t.id) else {
                return Err(err(format!(
                    "<tlLogic id=\"{}\"> is not a traffic light of {}",
                    t.id,
                    self.source.display()
                )));
            };
            let n = self.signals[s].links.len();
            match t.phases.first() {
                None => return Err(err(format!("<tlLogic id=\"{}\"> has no phases", t.id))),
                Some(p) if p.state.len() != n => {
                    return Err(err(format!(
                        "<tlLogic id=\"{}\"> controls {} links but the traffic light has {n}",
                        t.id,
                        p.state.len()
                    )));
                }
                _ => {}
            }
            out.push(SignalPlan {
                signal: s as u32,
                control: t.control,
                offset_s: t.offset,
                phases: t.phases,
            });
        }
        Ok(out)
    }
}

fn parse_pair(s: &str) -> Option<[f64; 2]> {
    let (a, b) = s.split_once(',')?;
    Some([a.trim().parse().ok()?, b.trim().parse().ok()?])
}

fn build(
    path: &Path,
    location: NetLocation,
    raw_edges: Vec<RawEdge>,
    raw_junctions: Vec<RawJunction>,
    conns: Vec<RawConn>,
    tls: Vec<RawTl>,
) -> Result<Network, TrafficError> {
    let err_at = |line: usize, message: String| TrafficError::Xml {
        file: path.to_path_buf(),
        line,
        message,
    };
    let mut junctions = Vec::new();
    let mut junction_ids: HashMap<&str, u32> = HashMap::new();
    for j in &raw_junctions {
        junction_ids.insert(&j.id, junctions.len() as u32);
        junctions.push(Junction {
            id: j.id.clone(),
            kind: j.kind.clone(),
            xy: j.xy,
            signal: None,
        });
    }
    // Internal lanes by id: (length, speed, shape).
    let mut internal: HashMap<&str, (f64, f64, &[[f64; 2]])> = HashMap::new();
    let mut edges = Vec::new();
    let mut lanes: Vec<Lane> = Vec::new();
    let mut edge_ids = HashMap::new();
    let mut lane_ids: HashMap<&str, LaneIx> = HashMap::new();
    for e in &raw_edges {
        if e.internal {
            for l in &e.lanes {
                internal.insert(&l.id, (l.length, l.speed, &l.shape));
            }
            continue;
        }
        if e.lanes.is_empty() {
            return Err(err_at(
                e.line,
                format!("<edge id=\"{}\"> has no lanes", e.id),
            ));
        }
        if e.lanes.iter().all(|l| l.allow == 0) {
            continue; // footways, cycleways, tram tracks
        }
        let (Some(&from), Some(&to)) = (
            junction_ids.get(e.from.as_str()),
            junction_ids.get(e.to.as_str()),
        ) else {
            let missing = if junction_ids.contains_key(e.from.as_str()) {
                &e.to
            } else {
                &e.from
            };
            return Err(err_at(
                e.line,
                format!(
                    "<edge id=\"{}\"> refers to junction '{missing}', which the network does not define",
                    e.id
                ),
            ));
        };
        let ix = edges.len() as EdgeIx;
        if edge_ids.insert(e.id.clone(), ix).is_some() {
            return Err(err_at(
                e.line,
                format!("<edge id=\"{}\"> is defined twice", e.id),
            ));
        }
        let mut sorted: Vec<&RawLane> = e.lanes.iter().collect();
        sorted.sort_by_key(|l| l.index);
        for (k, l) in sorted.iter().enumerate() {
            if l.index != k {
                return Err(err_at(
                    l.line,
                    format!(
                        "<lane id=\"{}\"> has index {} but edge '{}' has lanes 0..{}",
                        l.id,
                        l.index,
                        e.id,
                        e.lanes.len()
                    ),
                ));
            }
        }
        let mut lane_list = Vec::new();
        for l in sorted {
            let li = lanes.len() as LaneIx;
            lane_ids.insert(&l.id, li);
            lanes.push(Lane {
                id: l.id.clone(),
                edge: Some(ix),
                link: None,
                index: l.index as u8,
                length_m: l.length.max(0.1),
                speed_mps: l.speed,
                allow: l.allow,
                links: Vec::new(),
                shape: l.shape.clone(),
            });
            lane_list.push(li);
        }
        let first = &lanes[lane_list[0] as usize];
        let shape = e.shape.clone().unwrap_or_else(|| {
            let mid = &lanes[lane_list[lane_list.len() / 2] as usize];
            mid.shape.clone()
        });
        edges.push(Edge {
            id: e.id.clone(),
            name: e.name.clone(),
            length_m: first.length_m,
            speed_mps: lane_list
                .iter()
                .map(|&l| lanes[l as usize].speed_mps)
                .fold(0.0, f64::max),
            lanes: lane_list,
            from,
            to,
            shape,
        });
    }
    // Chains of internal lanes: internal lane → the next internal lane.
    let mut next_internal: HashMap<String, String> = HashMap::new();
    for c in &conns {
        if c.from.starts_with(':')
            && let Some(v) = &c.via
        {
            next_internal.insert(format!("{}_{}", c.from, c.from_lane), v.clone());
        }
    }
    // Link index of each internal lane within its junction.
    let mut int_index: HashMap<&str, (u32, usize)> = HashMap::new();
    for (ji, j) in raw_junctions.iter().enumerate() {
        for (k, l) in j.int_lanes.iter().enumerate() {
            int_index.insert(l, (ji as u32, k));
        }
    }
    let mut tl_ids: HashMap<&str, u32> = HashMap::new();
    let mut signals = Vec::new();
    for t in &tls {
        if t.phases.is_empty() {
            return Err(err_at(
                t.line,
                format!("<tlLogic id=\"{}\"> has no phases", t.id),
            ));
        }
        tl_ids.insert(&t.id, signals.len() as u32);
        signals.push(SignalLogic {
            id: t.id.clone(),
            control: t.control,
            offset_s: t.offset,
            phases: t.phases.clone(),
            links: vec![Vec::new(); t.phases[0].state.len()],
        });
    }
    let mut links: Vec<Link> = Vec::new();
    // (junction, index within junction) → link
    let mut by_jindex: HashMap<(u32, usize), LinkIx> = HashMap::new();
    let mut link_cont: Vec<(bool, Option<(u32, usize)>)> = Vec::new();
    for c in &conns {
        if c.from.starts_with(':') {
            continue;
        }
        let (Some(&fe), Some(&te)) = (edge_ids.get(&c.from), edge_ids.get(&c.to)) else {
            // A connection of an edge without vehicle lanes, or to one.
            let known = |id: &str| raw_edges.iter().any(|e| e.id == id);
            if !known(&c.from) || !known(&c.to) {
                let missing = if known(&c.from) { &c.to } else { &c.from };
                return Err(err_at(
                    c.line,
                    format!(
                        "<connection from=\"{}\" to=\"{}\"> refers to edge '{missing}', which the network does not define",
                        c.from, c.to
                    ),
                ));
            }
            continue;
        };
        let (fe_l, te_l) = (&edges[fe as usize].lanes, &edges[te as usize].lanes);
        let (Some(&from_lane), Some(&to_lane)) = (fe_l.get(c.from_lane), te_l.get(c.to_lane))
        else {
            return Err(err_at(
                c.line,
                format!(
                    "<connection from=\"{}\" to=\"{}\"> uses lane {}→{} but the edges have {} and {} lanes",
                    c.from,
                    c.to,
                    c.from_lane,
                    c.to_lane,
                    fe_l.len(),
                    te_l.len()
                ),
            ));
        };
        if lanes[from_lane as usize].allow & lanes[to_lane as usize].allow == 0 {
            continue; // e.g. a bike lane into a bus lane: no class we drive can use it
        }
        // Follow the via chain.
        let mut length = 0.0;
        let mut speed = f64::INFINITY;
        let mut shape: Vec<[f64; 2]> = Vec::new();
        let mut first_len = None;
        let mut jindex = None;
        let mut cur = c.via.clone();
        let mut guard = 0;
        while let Some(v) = cur {
            let Some(&(len, sp, sh)) = internal.get(v.as_str()) else {
                return Err(err_at(
                    c.line,
                    format!(
                        "<connection from=\"{}\" to=\"{}\"> goes via lane '{v}', which the network does not define",
                        c.from, c.to
                    ),
                ));
            };
            length += len;
            speed = speed.min(sp);
            shape.extend_from_slice(sh);
            first_len.get_or_insert(len);
            if jindex.is_none() {
                jindex = int_index.get(v.as_str()).copied();
            }
            cur = next_internal.get(&v).cloned();
            guard += 1;
            if guard > 16 {
                return Err(err_at(
                    c.line,
                    format!(
                        "<connection from=\"{}\" to=\"{}\">: its internal lanes form a loop",
                        c.from, c.to
                    ),
                ));
            }
        }
        if !speed.is_finite() {
            speed = lanes[to_lane as usize].speed_mps;
        }
        if jindex.is_none() {
            // Chains whose first lane is not listed take the index of a later one.
            let mut v = c.via.clone();
            while let Some(x) = v {
                if let Some(&ji) = int_index.get(x.as_str()) {
                    jindex = Some(ji);
                    break;
                }
                v = next_internal.get(&x).cloned();
            }
        }
        let junction = edges[fe as usize].to;
        let signal = match &c.tl {
            Some(tl) => {
                let Some(&ti) = tl_ids.get(tl.as_str()) else {
                    return Err(err_at(
                        c.line,
                        format!(
                            "<connection from=\"{}\" to=\"{}\"> is controlled by tlLogic '{tl}', which the network does not define",
                            c.from, c.to
                        ),
                    ));
                };
                let Some(li) = c.link_index else {
                    return Err(err_at(
                        c.line,
                        format!(
                            "<connection from=\"{}\" to=\"{}\"> names tl '{tl}' but no linkIndex",
                            c.from, c.to
                        ),
                    ));
                };
                if li >= signals[ti as usize].links.len() {
                    return Err(err_at(
                        c.line,
                        format!(
                            "<connection from=\"{}\" to=\"{}\"> has linkIndex {li} but tlLogic '{tl}' controls {} links",
                            c.from,
                            c.to,
                            signals[ti as usize].links.len()
                        ),
                    ));
                }
                junctions[junction as usize].signal = Some(ti);
                Some((ti, li as u16))
            }
            None => None,
        };
        let lane_ix = lanes.len() as LaneIx;
        let link_ix = links.len() as LinkIx;
        lanes.push(Lane {
            id: c
                .via
                .clone()
                .unwrap_or_else(|| format!("{}_{}->{}_{}", c.from, c.from_lane, c.to, c.to_lane)),
            edge: None,
            link: Some(link_ix),
            index: 0,
            length_m: length.max(0.1),
            speed_mps: speed,
            allow: lanes[from_lane as usize].allow & lanes[to_lane as usize].allow,
            links: Vec::new(),
            shape,
        });
        lanes[from_lane as usize].links.push(link_ix);
        if let Some((ti, li)) = signal {
            signals[ti as usize].links[li as usize].push(link_ix);
        }
        let jkey = jindex.filter(|(ji, _)| *ji == junction);
        if let Some(k) = jkey {
            by_jindex.insert(k, link_ix);
        }
        let cont = jkey
            .and_then(|(ji, k)| {
                raw_junctions[ji as usize]
                    .requests
                    .iter()
                    .find(|r| r.0 == k)
                    .map(|r| r.2)
            })
            .unwrap_or(false);
        link_cont.push((cont, jkey));
        links.push(Link {
            from_lane,
            to_lane,
            lane: lane_ix,
            to_edge: te,
            junction,
            signal,
            priority: if c.state == 'M' || c.state == 'O' {
                Priority::Major
            } else {
                Priority::Minor
            },
            dir: c.dir,
            yields_to: Vec::new(),
            wait_pos_m: if cont {
                first_len.filter(|&l| l < length)
            } else {
                None
            },
        });
    }
    // Who yields to whom, from each junction's request bits (rightmost character = index 0).
    for (k, (_, jkey)) in link_cont.iter().enumerate() {
        let Some((ji, idx)) = *jkey else { continue };
        let j = &raw_junctions[ji as usize];
        let Some(req) = j.requests.iter().find(|r| r.0 == idx) else {
            continue;
        };
        let n = req.1.len();
        for (pos, b) in req.1.bytes().enumerate() {
            if b == b'1' {
                let foe = n - 1 - pos;
                if let Some(&fl) = by_jindex.get(&(ji, foe)) {
                    links[k].yields_to.push(fl);
                } else if foe >= j.int_lanes.len() {
                    return Err(err_at(
                        req.3,
                        format!(
                            "<request index=\"{idx}\"> of junction '{}' refers to link {foe}, but the junction has {} links",
                            j.id,
                            j.int_lanes.len()
                        ),
                    ));
                }
            }
        }
    }
    Ok(Network::assemble(
        path.to_path_buf(),
        location,
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
    fn permissions_follow_allow_and_disallow() {
        let all = permissions(None, None);
        assert_eq!(all, 0b1111);
        assert_eq!(permissions(Some("pedestrian"), None), 0);
        assert_eq!(
            permissions(Some("bus emergency"), None),
            VClass::Bus.bit() | VClass::Emergency.bit()
        );
        assert_eq!(
            permissions(None, Some("truck tram")),
            all & !VClass::Truck.bit()
        );
        assert_eq!(permissions(None, Some("all")), 0);
    }
}
