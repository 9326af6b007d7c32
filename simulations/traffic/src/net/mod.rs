//! The road network the traffic simulation drives on; its `sumo` module reads it from SUMO files and
//! [`crate::osm`] builds it from OpenStreetMap.
//!
//! Layout, data-oriented: edges, lanes, links, junctions and signal controllers live in flat
//! vectors indexed by `u32`. A **link** is one SUMO connection (from lane → to lane through a
//! junction); its internal lanes (SUMO's `via` chain) are merged into one **link lane**, which
//! vehicles drive along like any lane. Links that must wait inside the junction (SUMO's internal
//! junctions, `cont="1"`: left turns waiting for oncoming traffic) keep that waiting point.
//!
//! Coordinates stay in the network's own metric plane; [`NetLocation`] says how to place them.

use std::collections::HashMap;
use std::path::PathBuf;

mod sumo;

/// Index of an edge in [`Network::edges`].
pub type EdgeIx = u32;
/// Index of a lane in [`Network::lanes`] (normal lanes and link lanes).
pub type LaneIx = u32;
/// Index of a link in [`Network::links`].
pub type LinkIx = u32;

/// The vehicle classes the simulation distinguishes, as SUMO names them.
#[derive(
    serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum VClass {
    /// `passenger`.
    Passenger,
    /// `bus`.
    Bus,
    /// `truck`.
    Truck,
    /// `emergency`.
    Emergency,
}

impl VClass {
    /// All classes.
    pub const ALL: [VClass; 4] = [
        VClass::Passenger,
        VClass::Bus,
        VClass::Truck,
        VClass::Emergency,
    ];

    /// SUMO's name.
    pub fn sumo_name(self) -> &'static str {
        match self {
            VClass::Passenger => "passenger",
            VClass::Bus => "bus",
            VClass::Truck => "truck",
            VClass::Emergency => "emergency",
        }
    }

    /// From SUMO's name; SUMO's many other road-vehicle classes map to the nearest one.
    pub fn from_sumo(name: &str) -> Option<Self> {
        Some(match name {
            "passenger" | "private" | "taxi" | "motorcycle" | "moped" | "evehicle" | "custom1"
            | "custom2" => VClass::Passenger,
            "bus" | "coach" => VClass::Bus,
            "truck" | "trailer" | "delivery" => VClass::Truck,
            "emergency" | "authority" | "army" | "vip" => VClass::Emergency,
            _ => return None,
        })
    }

    /// This class as a bit in a permission mask.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A directed road (SUMO edge).
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct Edge {
    /// SUMO id.
    pub id: String,
    /// Street name (may be empty).
    pub name: String,
    /// Its lanes, rightmost (index 0) first.
    pub lanes: Vec<LaneIx>,
    /// Junction it leaves.
    pub from: u32,
    /// Junction it enters.
    pub to: u32,
    /// Length, m (of lane 0).
    pub length_m: f64,
    /// Highest lane speed limit, m/s.
    pub speed_mps: f64,
    /// Centre line, network coordinates.
    pub shape: Vec<[f64; 2]>,
}

/// A lane: a normal lane of an edge, or the lane of a link through a junction.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct Lane {
    /// SUMO id (for a link lane: its first internal lane).
    pub id: String,
    /// The edge, for a normal lane.
    pub edge: Option<EdgeIx>,
    /// The link, for a link lane.
    pub link: Option<LinkIx>,
    /// Index within the edge (0 = rightmost).
    pub index: u8,
    /// Length, m.
    pub length_m: f64,
    /// Speed limit, m/s.
    pub speed_mps: f64,
    /// Which [`VClass`]es may use it (bits of [`VClass::bit`]).
    pub allow: u8,
    /// Outgoing links (normal lanes only).
    pub links: Vec<LinkIx>,
    /// Centre line, network coordinates.
    pub shape: Vec<[f64; 2]>,
}

/// Right of way at an unsignalised link, SUMO's connection `state`.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// `M`: major road, never waits.
    Major,
    /// `m`, `=`, `s`, `w`, `o`: yields to the links its junction says it must.
    Minor,
}

/// A connection from one lane to another through a junction.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct Link {
    /// Incoming normal lane.
    pub from_lane: LaneIx,
    /// Outgoing normal lane.
    pub to_lane: LaneIx,
    /// The link lane vehicles drive through the junction on.
    pub lane: LaneIx,
    /// Outgoing edge.
    pub to_edge: EdgeIx,
    /// The junction.
    pub junction: u32,
    /// Signal controller and its link index, if signalised.
    pub signal: Option<(u32, u16)>,
    /// Right of way when not signalised (or when the signal is off).
    pub priority: Priority,
    /// SUMO's direction letter (`s`, `l`, `r`, `t`, `L`, `R`).
    pub dir: char,
    /// Links this one must yield to when it may not go first.
    pub yields_to: Vec<LinkIx>,
    /// Where a vehicle waits inside the junction (m along the link lane) for the links it yields
    /// to, if the link has an internal junction; otherwise it yields at the stop line.
    pub wait_pos_m: Option<f64>,
}

/// A junction.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct Junction {
    /// SUMO id.
    pub id: String,
    /// SUMO type (`traffic_light`, `priority`, `right_before_left`, `dead_end`, …).
    pub kind: String,
    /// Position, network coordinates.
    pub xy: [f64; 2],
    /// Its signal controller, if any.
    pub signal: Option<u32>,
}

/// How a controller chooses its phase durations.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub enum SignalControl {
    /// Fixed time.
    Static,
    /// Gap-based actuation: a green phase lasts at least `min`, and is extended while vehicles
    /// pass its detectors less than `max_gap_s` apart, up to `max`.
    Actuated {
        /// Longest gap between detections that still extends the green, s.
        max_gap_s: f64,
        /// Detector distance upstream of the stop line, as seconds of travel at the lane speed.
        detector_gap_s: f64,
    },
}

/// One phase of a signal program.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct Phase {
    /// Planned duration, s.
    pub duration_s: f64,
    /// Shortest duration (actuated), s.
    pub min_s: f64,
    /// Longest duration (actuated), s.
    pub max_s: f64,
    /// One SUMO state letter per controlled link index.
    pub state: Vec<u8>,
}

/// A signal controller: a program of phases over its controlled link indices.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct SignalLogic {
    /// SUMO id.
    pub id: String,
    /// Static or actuated.
    pub control: SignalControl,
    /// Cycle offset, s.
    pub offset_s: f64,
    /// Phases in order.
    pub phases: Vec<Phase>,
    /// Links by controller link index (several links may share an index).
    pub links: Vec<Vec<LinkIx>>,
}

/// Where the network's coordinates lie on Earth.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub enum NetLocation {
    /// Projected: subtract `offset` from network coordinates to get coordinates in `proj`
    /// (a PROJ string).
    Projected {
        /// SUMO's `netOffset`.
        offset: [f64; 2],
        /// SUMO's `projParameter`.
        proj: String,
    },
    /// Not georeferenced (`projParameter="!"`): network coordinates are metres east/north of
    /// the scene origin once `offset` is subtracted.
    Local {
        /// SUMO's `netOffset`.
        offset: [f64; 2],
    },
}

/// A road network.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct Network {
    /// The file it came from.
    pub source: PathBuf,
    /// Where it lies.
    pub location: NetLocation,
    /// Edges.
    pub edges: Vec<Edge>,
    /// Normal lanes and link lanes.
    pub lanes: Vec<Lane>,
    /// Links.
    pub links: Vec<Link>,
    /// Junctions.
    pub junctions: Vec<Junction>,
    /// Signal controllers.
    pub signals: Vec<SignalLogic>,
    #[serde(serialize_with = "citytwin_engine::checkpoint::sorted_map")]
    edge_ids: HashMap<String, EdgeIx>,
}

/// A signal program read from a SUMO additional file, for a controller of a network.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct SignalPlan {
    /// The controller, index into [`Network::signals`].
    pub signal: u32,
    /// Static or actuated.
    pub control: SignalControl,
    /// Cycle offset, s.
    pub offset_s: f64,
    /// Phases.
    pub phases: Vec<Phase>,
}

impl Network {
    /// A network from its parts (importers other than SUMO's build these directly).
    pub(crate) fn assemble(
        source: PathBuf,
        location: NetLocation,
        edges: Vec<Edge>,
        lanes: Vec<Lane>,
        links: Vec<Link>,
        junctions: Vec<Junction>,
        signals: Vec<SignalLogic>,
    ) -> Self {
        let edge_ids = edges
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id.clone(), i as EdgeIx))
            .collect();
        Self {
            source,
            location,
            edges,
            lanes,
            links,
            junctions,
            signals,
            edge_ids,
        }
    }

    /// The edge with SUMO id `id`.
    pub fn edge(&self, id: &str) -> Option<EdgeIx> {
        self.edge_ids.get(id).copied()
    }

    /// Whether class `c` may drive on any lane of edge `e`.
    pub fn edge_allows(&self, e: EdgeIx, c: VClass) -> bool {
        self.edges[e as usize]
            .lanes
            .iter()
            .any(|&l| self.lanes[l as usize].allow & c.bit() != 0)
    }

    /// The links from edge `from` to edge `to` usable by class `c`.
    pub fn links_between(
        &self,
        from: EdgeIx,
        to: EdgeIx,
        c: VClass,
    ) -> impl Iterator<Item = LinkIx> + '_ {
        self.edges[from as usize].lanes.iter().flat_map(move |&l| {
            self.lanes[l as usize]
                .links
                .iter()
                .copied()
                .filter(move |&k| {
                    let link = &self.links[k as usize];
                    link.to_edge == to
                        && self.lanes[link.from_lane as usize].allow & c.bit() != 0
                        && self.lanes[link.to_lane as usize].allow & c.bit() != 0
                })
        })
    }

    /// Edges reachable from `e` in one link by class `c`, each with the link lane's length (m)
    /// and speed (m/s) of the fastest such link.
    pub fn successors(&self, e: EdgeIx, c: VClass) -> Vec<(EdgeIx, f64, f64)> {
        let mut out: Vec<(EdgeIx, f64, f64)> = Vec::new();
        for &l in &self.edges[e as usize].lanes {
            if self.lanes[l as usize].allow & c.bit() == 0 {
                continue;
            }
            for &k in &self.lanes[l as usize].links {
                let link = &self.links[k as usize];
                if self.lanes[link.to_lane as usize].allow & c.bit() == 0 {
                    continue;
                }
                let ll = &self.lanes[link.lane as usize];
                match out.iter_mut().find(|o| o.0 == link.to_edge) {
                    Some(o) if ll.length_m / ll.speed_mps < o.1 / o.2 => {
                        *o = (link.to_edge, ll.length_m, ll.speed_mps)
                    }
                    Some(_) => {}
                    None => out.push((link.to_edge, ll.length_m, ll.speed_mps)),
                }
            }
        }
        out.sort_by_key(|o| o.0);
        out
    }
}
