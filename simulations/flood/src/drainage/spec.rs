//! What a drainage network is made of: the one description the solver is built from, whether
//! it came from a SWMM `.inp` file or from the scene's entities.
//!
//! Nodes, links and subcatchments are the engine's own components (`Manhole`, `Conduit`,
//! `Pump`, …) with indexes in place of entities. SI units: m, m², m³/s, s from the start of
//! the simulation, rain in m/s.

pub use citytwin_engine::model::{
    Conduit, CrossSection, Curve, Infiltration, Manhole, NodeInflow, Orifice, Outfall,
    OutfallStage, Pattern, Pump, PumpCurve, StorageShape, StorageUnit, SubareaRouting,
    Subcatchment, Weir, WeirKind,
};

/// How flow is routed through the links.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routing {
    /// Full St-Venant momentum in every conduit, heads at nodes (SWMM's DYNWAVE).
    Dynamic,
    /// Kinematic wave: flow follows the conduit's slope, no backwater (SWMM's KINWAVE).
    Kinematic,
}

/// How much of the momentum equation's inertial terms are kept (SWMM's INERTIAL_DAMPING).
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum InertialDamping {
    /// Keep them all.
    None,
    /// Reduce them as the Froude number approaches 1 (SWMM's default).
    Partial,
    /// Drop them (diffusion wave).
    Full,
}

/// When flow in a conduit is limited to normal flow (SWMM's NORMAL_FLOW_LIMITED).
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormalFlowLimit {
    /// When the water surface slope is below the bed slope.
    Slope,
    /// When the upstream Froude number is at least 1.
    Froude,
    /// Either.
    Both,
    /// Never.
    Neither,
}

/// Simulation options (SWMM's [OPTIONS], in SI).
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct Options {
    /// Routing method.
    pub routing: Routing,
    /// Length of the run, s.
    pub duration_s: f64,
    /// Start of the run as seconds since 1970-01-01 in the model's own (local) time: patterns
    /// (hour of day, day of week, month) and tides are read from it.
    pub start_epoch_s: f64,
    /// Longest routing step, s.
    pub routing_step_s: f64,
    /// Courant factor of the variable step (0: fixed steps).
    pub courant_factor: f64,
    /// Shortest variable step, s.
    pub min_step_s: f64,
    /// Conduits shorter than this travel time are lengthened (0: never), s.
    pub lengthening_step_s: f64,
    /// Smallest surface area of a node (0: SWMM's default of 12.566 ft²), m².
    pub min_surface_area_m2: f64,
    /// Head change below which a node has converged (0: SWMM's 0.005 ft), m.
    pub head_tolerance_m: f64,
    /// Most iterations per routing step (0: 8).
    pub max_trials: u32,
    /// Inertial damping.
    pub inertial_damping: InertialDamping,
    /// Normal-flow limitation.
    pub normal_flow_limit: NormalFlowLimit,
    /// Whether water above a node's rim ponds over its ponded area (and drains back) instead
    /// of being lost.
    pub allow_ponding: bool,
    /// Smallest conduit slope, m/m (0: none).
    pub min_slope: f64,
    /// Runoff step while it rains or the ground is wet, s.
    pub wet_step_s: f64,
    /// Runoff step in dry weather, s.
    pub dry_step_s: f64,
    /// Constant evaporation, m/s.
    pub evaporation_mps: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            routing: Routing::Dynamic,
            duration_s: 3600.0,
            start_epoch_s: 0.0,
            routing_step_s: 20.0,
            courant_factor: 0.0,
            min_step_s: 0.5,
            lengthening_step_s: 0.0,
            min_surface_area_m2: 0.0,
            head_tolerance_m: 0.0,
            max_trials: 0,
            inertial_damping: InertialDamping::Partial,
            normal_flow_limit: NormalFlowLimit::Both,
            allow_ponding: false,
            min_slope: 0.0,
            wet_step_s: 300.0,
            dry_step_s: 3600.0,
            evaporation_mps: 0.0,
        }
    }
}

/// A time series: values at times (s from the start), linear between, held at the ends.
pub type Series = Curve;

/// What kind of node.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// A junction or manhole.
    Junction(Manhole),
    /// A point where water leaves the network.
    Outfall(Outfall),
    /// A storage unit (pond, tank, tunnel).
    Storage(StorageUnit),
}

/// A node of the network.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct NodeSpec {
    /// Its name (the `.inp` name or the feature id).
    pub name: String,
    /// What it is.
    pub kind: NodeKind,
    /// Water from outside the network, if any.
    pub inflow: Option<NodeInflow>,
    /// Plan position in the model's own coordinates, if known.
    pub xy: Option<(f64, f64)>,
}

impl NodeSpec {
    /// Invert elevation, m above datum.
    pub fn invert_m(&self) -> f64 {
        match &self.kind {
            NodeKind::Junction(m) => m.invert_m,
            NodeKind::Outfall(o) => o.invert_m,
            NodeKind::Storage(s) => s.invert_m,
        }
    }
}

/// What a link is (its end nodes are indexes into [`NetworkSpec::nodes`]).
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub enum LinkKind {
    /// A pipe or channel.
    Conduit(Conduit<usize>),
    /// A pump.
    Pump(Pump<usize>),
    /// An orifice.
    Orifice(Orifice<usize>),
    /// A weir.
    Weir(Weir<usize>),
}

/// A link between two nodes.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct LinkSpec {
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: LinkKind,
    /// Plan vertices between its end nodes, in the model's own coordinates.
    pub vertices: Vec<(f64, f64)>,
}

impl LinkSpec {
    /// Upstream and downstream node.
    pub fn ends(&self) -> (usize, usize) {
        match &self.kind {
            LinkKind::Conduit(c) => (c.from, c.to),
            LinkKind::Pump(p) => (p.from, p.to),
            LinkKind::Orifice(o) => (o.from, o.to),
            LinkKind::Weir(w) => (w.from, w.to),
        }
    }
}

/// Where a subcatchment drains.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outlet {
    /// A node (index).
    Node(usize),
    /// Another subcatchment (index).
    Subcatchment(usize),
}

/// A subcatchment (SWMM's nonlinear-reservoir runoff) and its polygon.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct SubcatchSpec {
    /// Name.
    pub name: String,
    /// Its parameters; `gauge` names a gauge of [`NetworkSpec::gauges`].
    pub params: Subcatchment<Outlet>,
    /// Polygon in the model's own coordinates.
    pub polygon: Vec<(f64, f64)>,
}

/// A rain gauge: intensities, each held over one recording interval from its time (SWMM's
/// step-wise rain; zero between entries that leave a gap).
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct GaugeSpec {
    /// Name (a rain gauge's station code in the world).
    pub name: String,
    /// (start s, intensity m/s), zero-intensity entries left out, starts increasing.
    pub entries: Vec<(f64, f64)>,
    /// Recording interval, s.
    pub interval_s: f64,
    /// Plan position in the model's own coordinates, if known.
    pub xy: Option<(f64, f64)>,
}

impl GaugeSpec {
    /// Rain intensity at time `t_s`, m/s.
    pub fn intensity_at(&self, t_s: f64) -> f64 {
        let k = self.entries.partition_point(|e| e.0 <= t_s);
        if k == 0 {
            return 0.0;
        }
        let (t0, v) = self.entries[k - 1];
        if t_s < t0 + self.interval_s { v } else { 0.0 }
    }

    /// The first time after `t_s` at which the intensity changes (∞ if never).
    pub fn next_change_s(&self, t_s: f64) -> f64 {
        let k = self.entries.partition_point(|e| e.0 <= t_s);
        if k > 0 {
            let end = self.entries[k - 1].0 + self.interval_s;
            if t_s < end {
                return end;
            }
        }
        self.entries.get(k).map_or(f64::INFINITY, |e| e.0)
    }
}

/// A whole drainage model.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Default)]
pub struct NetworkSpec {
    /// Options.
    pub options: Options,
    /// Nodes.
    pub nodes: Vec<NodeSpec>,
    /// Links.
    pub links: Vec<LinkSpec>,
    /// Subcatchments.
    pub subcatchments: Vec<SubcatchSpec>,
    /// Rain gauges.
    pub gauges: Vec<GaugeSpec>,
}

impl NetworkSpec {
    /// Index of the node called `name` (SWMM's names ignore case).
    pub fn node(&self, name: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.name.eq_ignore_ascii_case(name))
    }

    /// Index of the link called `name` (ignoring case).
    pub fn link(&self, name: &str) -> Option<usize> {
        self.links
            .iter()
            .position(|l| l.name.eq_ignore_ascii_case(name))
    }
}
