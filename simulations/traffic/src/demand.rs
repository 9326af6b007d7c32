//! Traffic demand: vehicle types and the vehicles to insert, from SUMO route files
//! (`<vType>`, `<route>`, `<vehicle>`, `<trip>`, `<flow>`).

use std::collections::HashMap;
use std::path::Path;

use crate::error::TrafficError;
use crate::net::{EdgeIx, Network, VClass};
use crate::xml::{self, Element, Item, XmlFile};

/// Which car-following model a vehicle type drives with.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub enum CarFollowModel {
    /// SUMO's default Krauss model (safe speed + random dawdling `sigma`).
    Krauss,
    /// The Intelligent Driver Model (Treiber, Hennecke & Helbing 2000), acceleration exponent δ.
    Idm {
        /// Acceleration exponent δ (4 in the original paper).
        delta: f64,
    },
}

/// A vehicle type, SUMO's `<vType>` with SI units.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct VType {
    /// SUMO id.
    pub id: String,
    /// Class (permissions, engine's vehicle kind).
    pub class: VClass,
    /// Length, m.
    pub length_m: f64,
    /// Gap kept to the leader when standing, m.
    pub min_gap_m: f64,
    /// Maximum acceleration, m/s².
    pub accel_mps2: f64,
    /// Comfortable deceleration, m/s².
    pub decel_mps2: f64,
    /// Krauss driver imperfection in [0, 1].
    pub sigma: f64,
    /// Desired time headway, s.
    pub tau_s: f64,
    /// Top speed, m/s.
    pub max_speed_mps: f64,
    /// Speed factor (desired speed / speed limit): mean.
    pub speed_factor_mean: f64,
    /// Speed factor: standard deviation.
    pub speed_factor_dev: f64,
    /// Speed factor: truncation bounds.
    pub speed_factor_bounds: (f64, f64),
    /// Car-following model.
    pub model: CarFollowModel,
}

impl VType {
    /// SUMO's defaults for a class (SUMO 1.28's documented vType defaults).
    pub fn default_for(id: &str, class: VClass) -> Self {
        let (length_m, accel, decel, max_speed, sf_mean, sf_dev) = match class {
            VClass::Passenger => (5.0, 2.6, 4.5, 55.56, 1.0, 0.1),
            VClass::Bus => (12.0, 1.2, 4.0, 27.78, 1.0, 0.1),
            VClass::Truck => (7.1, 1.3, 4.0, 36.11, 1.0, 0.05),
            VClass::Emergency => (6.5, 2.6, 4.5, 41.67, 1.5, 0.0),
        };
        Self {
            id: id.to_string(),
            class,
            length_m,
            min_gap_m: 2.5,
            accel_mps2: accel,
            decel_mps2: decel,
            sigma: 0.5,
            tau_s: 1.0,
            max_speed_mps: max_speed,
            speed_factor_mean: sf_mean,
            speed_factor_dev: sf_dev,
            speed_factor_bounds: (0.2, 2.0),
            model: CarFollowModel::Krauss,
        }
    }
}

/// Where on its first edge a vehicle starts.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub enum DepartLane {
    /// The lane that leads furthest along the route with the most room (SUMO `best`).
    Best,
    /// The lane with the most room (SUMO `free`).
    Free,
    /// The rightmost lane (SUMO `first`, the default).
    First,
    /// A given lane index.
    Index(u8),
}

/// The speed a vehicle is inserted with.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub enum DepartSpeed {
    /// The highest safe speed up to its desired speed (SUMO `max`).
    Max,
    /// Its desired speed; insertion waits until that is safe (SUMO `desired`).
    Desired,
    /// A fixed speed, m/s (SUMO default 0).
    Value(f64),
}

/// How a vehicle's route is given.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub enum RouteSpec {
    /// A fixed sequence of edges.
    Edges(Vec<EdgeIx>),
    /// Origin and destination (and edges to pass), routed at departure on current travel times.
    Trip {
        /// First edge.
        from: EdgeIx,
        /// Last edge.
        to: EdgeIx,
        /// Edges to pass on the way.
        via: Vec<EdgeIx>,
    },
}

/// One vehicle to insert.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct TripSpec {
    /// SUMO id.
    pub id: String,
    /// Index into [`Demand::vtypes`].
    pub vtype: u16,
    /// Departure time after the scene start, s.
    pub depart_s: f64,
    /// Route.
    pub route: RouteSpec,
    /// Departure lane.
    pub depart_lane: DepartLane,
    /// Departure speed.
    pub depart_speed: DepartSpeed,
    /// Front position on the first edge at insertion, m (`None`: SUMO's `base`, the length).
    pub depart_pos_m: Option<f64>,
    /// Signals on its route turn green ahead of it (emergency vehicles on call).
    pub signal_priority: bool,
}

/// Vehicle types and vehicles.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, Default)]
pub struct Demand {
    /// Types; the first four are SUMO's defaults per class (`DEFAULT_VEHTYPE`, …).
    pub vtypes: Vec<VType>,
    /// Vehicles, in departure order (ties in file order).
    pub trips: Vec<TripSpec>,
}

impl Demand {
    /// SUMO's default types only.
    pub fn new() -> Self {
        Self {
            vtypes: vec![
                VType::default_for("DEFAULT_VEHTYPE", VClass::Passenger),
                VType::default_for("DEFAULT_BUSTYPE", VClass::Bus),
                VType::default_for("DEFAULT_TRUCKTYPE", VClass::Truck),
                VType::default_for("DEFAULT_EMERGENCYTYPE", VClass::Emergency),
            ],
            trips: Vec::new(),
        }
    }

    /// Read one SUMO route file (`.rou.xml` or trips) against `net`, adding to this demand.
    pub fn read_sumo_file(&mut self, path: &Path, net: &Network) -> Result<(), TrafficError> {
        let text = std::fs::read_to_string(path).map_err(|source| TrafficError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        self.read_sumo_str(path, &text, net)
    }

    /// Parse SUMO route XML; `path` names it in errors.
    pub fn read_sumo_str(
        &mut self,
        path: &Path,
        text: &str,
        net: &Network,
    ) -> Result<(), TrafficError> {
        let mut f = XmlFile::new(path, text);
        let mut routes: HashMap<String, Vec<EdgeIx>> = HashMap::new();
        // The depth-2 element being read, whose children (nested route, vType params) matter.
        let mut open: Option<Element> = None;
        let mut nested_route: Option<Vec<EdgeIx>> = None;
        let mut root_seen = false;
        let mut added = Vec::new();
        while let Some(item) = f.next()? {
            match item {
                Item::Start(el, 1) => {
                    if el.name != "routes" {
                        return Err(f.error(
                            el.line,
                            format!("expected SUMO routes (<routes>), found <{}>", el.name),
                        ));
                    }
                    root_seen = true;
                }
                Item::Start(el, 2) => {
                    match el.name.as_str() {
                        "vType" => {
                            let vt = self.parse_vtype(&f, &el)?;
                            if let Some(i) = self.vtypes.iter().position(|v| v.id == vt.id) {
                                if i < 4 {
                                    self.vtypes[i] = vt; // redefining a default type is allowed
                                } else {
                                    return Err(f.error(
                                        el.line,
                                        format!("{} is defined twice", el.describe()),
                                    ));
                                }
                            } else {
                                self.vtypes.push(vt);
                            }
                        }
                        "route" => {
                            let id = xml::text(&f, &el, "id")?.to_string();
                            let edges = parse_edges(&f, &el, "edges", net)?;
                            routes.insert(id, edges);
                        }
                        "vehicle" | "trip" | "flow" => {}
                        "person" | "personFlow" | "container" | "containerFlow"
                        | "routeDistribution" | "vTypeDistribution" => {
                            return Err(f.error(
                                el.line,
                                format!(
                                    "{} is not supported by citytwin's traffic simulation (vehicles, trips, flows, routes and vTypes are)",
                                    el.describe()
                                ),
                            ));
                        }
                        _ => {}
                    }
                    nested_route = None;
                    open = Some(el);
                }
                Item::Start(el, 3) => {
                    if el.name == "route"
                        && let Some(p) = &open
                        && matches!(p.name.as_str(), "vehicle" | "flow")
                    {
                        nested_route = Some(parse_edges(&f, &el, "edges", net)?);
                    }
                }
                Item::End(2) => {
                    let Some(el) = open.take() else { continue };
                    match el.name.as_str() {
                        "vehicle" | "trip" | "flow" => {
                            let route = match nested_route.take() {
                                Some(r) => RouteSpec::Edges(r),
                                None => match el.get("route") {
                                    Some(r) => RouteSpec::Edges(
                                        routes
                                            .get(r)
                                            .ok_or_else(|| {
                                                f.error(
                                                    el.line,
                                                    format!(
                                                        "{} uses route '{r}', which is not defined above it",
                                                        el.describe()
                                                    ),
                                                )
                                            })?
                                            .clone(),
                                    ),
                                    None => {
                                        let from = edge_attr(&f, &el, "from", net)?;
                                        let to = edge_attr(&f, &el, "to", net)?;
                                        let via = match el.get("via") {
                                            Some(_) => parse_edges(&f, &el, "via", net)?,
                                            None => Vec::new(),
                                        };
                                        match (from, to) {
                                            (Some(from), Some(to)) => {
                                                RouteSpec::Trip { from, to, via }
                                            }
                                            _ => {
                                                return Err(f.error(
                                                    el.line,
                                                    format!(
                                                        "{} has no route: give a nested <route>, route=\"…\", or from and to",
                                                        el.describe()
                                                    ),
                                                ));
                                            }
                                        }
                                    }
                                },
                            };
                            self.add_vehicles(&f, &el, route, net, &mut added)?;
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        if !root_seen {
            return Err(TrafficError::Inconsistent {
                file: path.to_path_buf(),
                message: "the file holds no <routes> element".into(),
            });
        }
        self.trips.extend(added);
        // Departure order; ties keep file order (stable sort).
        self.trips.sort_by(|a, b| a.depart_s.total_cmp(&b.depart_s));
        Ok(())
    }

    fn parse_vtype(&self, f: &XmlFile<'_>, el: &Element) -> Result<VType, TrafficError> {
        let id = xml::text(f, el, "id")?;
        let class = match el.get("vClass") {
            Some(c) => VClass::from_sumo(c).ok_or_else(|| {
                f.error(
                    el.line,
                    format!("{} vClass=\"{c}\" is not a road vehicle class citytwin drives (passenger, bus, truck, emergency and their kin)", el.describe()),
                )
            })?,
            None => VClass::Passenger,
        };
        let mut t = VType::default_for(id, class);
        let pos = |key: &str, v: &mut f64| -> Result<(), TrafficError> {
            if let Some(x) = xml::num_opt(f, el, key)? {
                if x < 0.0 {
                    return Err(f.error(
                        el.line,
                        format!("{} {key}=\"{x}\" must not be negative", el.describe()),
                    ));
                }
                *v = x;
            }
            Ok(())
        };
        pos("length", &mut t.length_m)?;
        pos("minGap", &mut t.min_gap_m)?;
        pos("accel", &mut t.accel_mps2)?;
        pos("decel", &mut t.decel_mps2)?;
        pos("sigma", &mut t.sigma)?;
        pos("tau", &mut t.tau_s)?;
        pos("maxSpeed", &mut t.max_speed_mps)?;
        pos("speedDev", &mut t.speed_factor_dev)?;
        if t.accel_mps2 <= 0.0 || t.decel_mps2 <= 0.0 || t.max_speed_mps <= 0.0 || t.length_m <= 0.0
        {
            return Err(f.error(
                el.line,
                format!(
                    "{} needs positive length, accel, decel and maxSpeed",
                    el.describe()
                ),
            ));
        }
        if t.sigma > 1.0 {
            return Err(f.error(
                el.line,
                format!("{} sigma={} must be within 0..1", el.describe(), t.sigma),
            ));
        }
        if let Some(sf) = el.get("speedFactor") {
            let sf = sf.trim();
            if let Some(args) = sf
                .strip_prefix("normc(")
                .or_else(|| sf.strip_prefix("norm("))
                .and_then(|r| r.strip_suffix(')'))
            {
                let v: Vec<f64> = args
                    .split(',')
                    .filter_map(|x| x.trim().parse().ok())
                    .collect();
                match v.as_slice() {
                    [m, d] => (t.speed_factor_mean, t.speed_factor_dev) = (*m, *d),
                    [m, d, lo, hi] => {
                        (t.speed_factor_mean, t.speed_factor_dev) = (*m, *d);
                        t.speed_factor_bounds = (*lo, *hi);
                    }
                    _ => {
                        return Err(f.error(el.line, format!("{} speedFactor=\"{sf}\": expected norm(mean,dev) or normc(mean,dev,min,max)", el.describe())));
                    }
                }
            } else {
                t.speed_factor_mean = sf.parse().map_err(|_| {
                    f.error(
                        el.line,
                        format!(
                            "{} speedFactor=\"{sf}\" is not a number or normc(…)",
                            el.describe()
                        ),
                    )
                })?;
                if el.get("speedDev").is_none() {
                    t.speed_factor_dev = 0.0;
                }
            }
        }
        t.model = match el.get("carFollowModel") {
            None | Some("Krauss") => CarFollowModel::Krauss,
            Some("IDM") => CarFollowModel::Idm {
                delta: xml::num_opt(f, el, "delta")?.unwrap_or(4.0),
            },
            Some(other) => {
                return Err(f.error(
                    el.line,
                    format!(
                        "{} carFollowModel=\"{other}\" is not supported (Krauss or IDM)",
                        el.describe()
                    ),
                ));
            }
        };
        Ok(t)
    }

    fn add_vehicles(
        &self,
        f: &XmlFile<'_>,
        el: &Element,
        route: RouteSpec,
        net: &Network,
        out: &mut Vec<TripSpec>,
    ) -> Result<(), TrafficError> {
        let id = xml::text(f, el, "id")?.to_string();
        let vtype = match el.get("type") {
            Some(t) => self.vtypes.iter().position(|v| v.id == t).ok_or_else(|| {
                f.error(
                    el.line,
                    format!(
                        "{} uses vType '{t}', which is not defined above it",
                        el.describe()
                    ),
                )
            })?,
            None => 0,
        } as u16;
        let class = self.vtypes[vtype as usize].class;
        // Check the route can be driven by this class.
        let check_edge = |e: EdgeIx| -> Result<(), TrafficError> {
            if net.edge_allows(e, class) {
                Ok(())
            } else {
                Err(f.error(
                    el.line,
                    format!(
                        "{}: edge '{}' does not allow class {}",
                        el.describe(),
                        net.edges[e as usize].id,
                        class.sumo_name()
                    ),
                ))
            }
        };
        match &route {
            RouteSpec::Edges(edges) => {
                if edges.is_empty() {
                    return Err(f.error(el.line, format!("{} has an empty route", el.describe())));
                }
                for &e in edges {
                    check_edge(e)?;
                }
                for w in edges.windows(2) {
                    if net.links_between(w[0], w[1], class).next().is_none() {
                        return Err(f.error(el.line, format!("{}: its route goes from edge '{}' to edge '{}', which are not connected for {}", el.describe(), net.edges[w[0] as usize].id, net.edges[w[1] as usize].id, class.sumo_name())));
                    }
                }
            }
            RouteSpec::Trip { from, to, via } => {
                check_edge(*from)?;
                check_edge(*to)?;
                for &v in via {
                    check_edge(v)?;
                }
            }
        }
        let depart_lane = match el.get("departLane") {
            None | Some("first") => DepartLane::First,
            Some("best") => DepartLane::Best,
            Some("free") | Some("random") | Some("allowed") => DepartLane::Free,
            Some(v) => DepartLane::Index(v.parse().map_err(|_| {
                f.error(el.line, format!("{} departLane=\"{v}\" is not supported (best, free, random, first or a lane index)", el.describe()))
            })?),
        };
        let depart_speed = match el.get("departSpeed") {
            None => DepartSpeed::Value(0.0),
            Some("max") => DepartSpeed::Max,
            Some("desired") | Some("speedLimit") => DepartSpeed::Desired,
            Some(v) => {
                DepartSpeed::Value(v.parse().ok().filter(|x: &f64| *x >= 0.0).ok_or_else(|| {
                    f.error(
                        el.line,
                        format!(
                            "{} departSpeed=\"{v}\" is not supported (max, desired or m/s)",
                            el.describe()
                        ),
                    )
                })?)
            }
        };
        let depart_pos_m = match el.get("departPos") {
            None | Some("base") => None,
            Some(v) => Some(v.parse::<f64>().ok().filter(|x| *x >= 0.0).ok_or_else(|| {
                f.error(
                    el.line,
                    format!(
                        "{} departPos=\"{v}\" is not supported (base or metres)",
                        el.describe()
                    ),
                )
            })?),
        };
        let mut spec = TripSpec {
            id: id.clone(),
            vtype,
            depart_s: 0.0,
            route,
            depart_lane,
            depart_speed,
            depart_pos_m,
            signal_priority: false,
        };
        if el.name == "flow" {
            let begin = xml::num_opt(f, el, "begin")?.unwrap_or(0.0);
            let end = xml::num_opt(f, el, "end")?;
            let number = xml::num_opt(f, el, "number")?;
            let period = if let Some(p) = xml::num_opt(f, el, "period")? {
                p
            } else if let Some(vph) = xml::num_opt(f, el, "vehsPerHour")? {
                3600.0 / vph
            } else if let (Some(n), Some(e)) = (number, end) {
                (e - begin) / n.max(1.0)
            } else {
                return Err(f.error(el.line, format!("{} needs period, vehsPerHour, or number with end (probability flows are not supported)", el.describe())));
            };
            if !(period > 0.0 && period.is_finite()) {
                return Err(f.error(
                    el.line,
                    format!(
                        "{} gives a period of {period} s; it must be positive",
                        el.describe()
                    ),
                ));
            }
            let end = end.unwrap_or(f64::INFINITY);
            let max_n = number.map(|n| n as usize).unwrap_or(usize::MAX);
            if end.is_infinite() && number.is_none() {
                return Err(f.error(
                    el.line,
                    format!("{} needs an end or a number", el.describe()),
                ));
            }
            let mut k = 0usize;
            loop {
                let t = begin + k as f64 * period;
                if k >= max_n || t >= end {
                    break;
                }
                let mut s = spec.clone();
                s.id = format!("{id}.{k}");
                s.depart_s = t;
                out.push(s);
                k += 1;
            }
        } else {
            let depart = el
                .get("depart")
                .ok_or_else(|| f.error(el.line, format!("{} has no 'depart'", el.describe())))?;
            spec.depart_s = depart
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| {
                    f.error(
                        el.line,
                        format!(
                            "{} depart=\"{depart}\" is not supported (a time in seconds)",
                            el.describe()
                        ),
                    )
                })?;
            out.push(spec);
        }
        Ok(())
    }
}

fn edge_attr(
    f: &XmlFile<'_>,
    el: &Element,
    key: &str,
    net: &Network,
) -> Result<Option<EdgeIx>, TrafficError> {
    el.get(key)
        .map(|id| {
            net.edge(id).ok_or_else(|| {
                f.error(
                    el.line,
                    format!("{} {key}: edge '{id}' is not in the network", el.describe()),
                )
            })
        })
        .transpose()
}

fn parse_edges(
    f: &XmlFile<'_>,
    el: &Element,
    key: &str,
    net: &Network,
) -> Result<Vec<EdgeIx>, TrafficError> {
    xml::text(f, el, key)?
        .split_whitespace()
        .map(|id| {
            net.edge(id).ok_or_else(|| {
                f.error(
                    el.line,
                    format!("{} {key}: edge '{id}' is not in the network", el.describe()),
                )
            })
        })
        .collect()
}

/// Random trips over a network, like SUMO's randomTrips.py: origins and destinations drawn in
/// proportion to edge length, at least `min_distance_m` apart as the crow flies, each with a
/// free-flow fastest route, departing evenly over `[begin_s, end_s)`.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RandomTrips {
    /// How many vehicles.
    pub vehicles: usize,
    /// First departure, s.
    #[serde(default)]
    pub begin_s: f64,
    /// Departures end, s.
    #[serde(default = "default_end")]
    pub end_s: f64,
    /// Shortest straight-line trip, m.
    #[serde(default = "default_min_distance")]
    pub min_distance_m: f64,
}

fn default_end() -> f64 {
    3600.0
}
fn default_min_distance() -> f64 {
    300.0
}

impl Demand {
    /// Add random passenger trips drawn from `rng`; returns how many could be routed.
    pub fn add_random_trips(
        &mut self,
        net: &Network,
        spec: &RandomTrips,
        rng: &mut impl citytwin_engine::rng::Rng,
    ) -> usize {
        let class = VClass::Passenger;
        let usable: Vec<EdgeIx> = (0..net.edges.len() as EdgeIx)
            .filter(|&e| net.edge_allows(e, class))
            .collect();
        if usable.is_empty() || spec.vehicles == 0 {
            return 0;
        }
        let mut cum = Vec::with_capacity(usable.len());
        let mut total = 0.0;
        for &e in &usable {
            total += net.edges[e as usize].length_m;
            cum.push(total);
        }
        let draw = |rng: &mut dyn FnMut() -> u64| {
            let u = (rng() >> 11) as f64 / (1u64 << 53) as f64 * total;
            usable[cum.partition_point(|&c| c <= u).min(usable.len() - 1)]
        };
        let costs = crate::routing::EdgeCosts::free_flow(net);
        let span = (spec.end_s - spec.begin_s).max(0.0);
        let mut added = 0;
        for i in 0..spec.vehicles {
            let mut next = || rng.next_u64();
            for _ in 0..100 {
                let (from, to) = (draw(&mut next), draw(&mut next));
                let a = net.junctions[net.edges[from as usize].from as usize].xy;
                let b = net.junctions[net.edges[to as usize].to as usize].xy;
                if from == to || (a[0] - b[0]).hypot(a[1] - b[1]) < spec.min_distance_m {
                    continue;
                }
                if let Some(route) = crate::routing::fastest_route(net, &costs, class, from, to) {
                    self.trips.push(TripSpec {
                        id: format!("random.{i}"),
                        vtype: 0,
                        depart_s: spec.begin_s + span * i as f64 / spec.vehicles as f64,
                        route: RouteSpec::Edges(route),
                        depart_lane: DepartLane::Best,
                        depart_speed: DepartSpeed::Max,
                        depart_pos_m: None,
                        signal_priority: false,
                    });
                    added += 1;
                    break;
                }
            }
        }
        self.trips.sort_by(|a, b| a.depart_s.total_cmp(&b.depart_s));
        added
    }
}
