//! The network's nodes and links as the solver holds them, built from a [`NetworkSpec`] the way
//! SWMM 5.2 validates and initialises a project: slopes and reversed adverse conduits,
//! lengthening, roughness and normal-flow factors, full depths raised to the crowns of the
//! links at a node, crown elevations, initial depths, volumes and flows.

use super::spec::*;
use super::xsect::Xsect;
use super::{DrainageError, FUDGE, G, MANNING};

/// SWMM's default smallest node surface area, 12.566 ft² (a 4 ft manhole), m².
pub const DEFAULT_SURFAREA_M2: f64 = 12.566 * super::FT * super::FT;
/// SWMM's default head tolerance, 0.005 ft, m.
pub const DEFAULT_HEADTOL_M: f64 = 0.005 * super::FT;
/// Smallest elevation drop of a conduit (a flat one gets this), m.
const MIN_DELTA_Z: f64 = 0.001 * super::FT;

/// Node types as the solver sees them.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub enum NodeType {
    /// A junction (no volume of its own: its water surface is the pipes' ends plus a minimum area).
    Junction,
    /// An outfall.
    Outfall {
        /// The outside level.
        stage: OutfallStage,
        /// Flap gate.
        gated: bool,
    },
    /// A storage unit.
    Storage {
        /// Area by depth.
        shape: StorageShape,
    },
}

/// A node and its state (depths m, volumes m³, flows m³/s).
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct Node {
    /// Name.
    pub name: String,
    /// Type.
    pub kind: NodeType,
    /// Invert, m.
    pub invert: f64,
    /// Full depth (raised to the highest connecting crown), m.
    pub full_depth: f64,
    /// Surcharge depth allowed above full, m.
    pub sur_depth: f64,
    /// Ponded area, m².
    pub ponded_area: f64,
    /// Initial depth, m.
    pub init_depth: f64,
    /// Highest crown of its links, m above datum.
    pub crown_elev: f64,
    /// Volume at full depth (0 for junctions), m³.
    pub full_volume: f64,
    /// Smallest surface area used for its water surface, m².
    pub min_area: f64,
    /// Outgoing links (negative: no incoming link, an upstream terminal node).
    pub degree: i32,
    /// External inflow.
    pub inflow_def: Option<NodeInflow>,
    // --- state
    /// Depth at the start of the step.
    pub old_depth: f64,
    /// Depth now.
    pub new_depth: f64,
    /// Volume at the start of the step.
    pub old_volume: f64,
    /// Volume now.
    pub new_volume: f64,
    /// Total inflow this iteration.
    pub inflow: f64,
    /// Total outflow this iteration.
    pub outflow: f64,
    /// Net inflow at the end of the last step.
    pub old_net_inflow: f64,
    /// Lateral inflow (external, dry weather, runoff, surface exchange) this step.
    pub new_lat_flow: f64,
    /// Lateral inflow of the last step.
    pub old_lat_flow: f64,
    /// Water leaving over the rim this step (flooding), m³/s.
    pub overflow: f64,
    /// Evaporation from storage, m³/s.
    pub losses: f64,
    // --- dynamic wave scratch
    pub(crate) converged: bool,
    pub(crate) new_surf_area: f64,
    pub(crate) old_surf_area: f64,
    pub(crate) sumdqdh: f64,
    pub(crate) dydt: f64,
    /// Which storage unit's shape (volume) functions apply.
    pub(crate) evap_factor: f64,
}

impl Node {
    /// Whether it is an outfall.
    pub fn is_outfall(&self) -> bool {
        matches!(self.kind, NodeType::Outfall { .. })
    }

    /// Whether it is a storage unit.
    pub fn is_storage(&self) -> bool {
        matches!(self.kind, NodeType::Storage { .. })
    }

    /// Water surface area at depth `d` of its own (storage only), m².
    pub fn surf_area(&self, d: f64) -> f64 {
        match &self.kind {
            NodeType::Storage { shape } => match shape {
                StorageShape::Functional { a, b, c } => c + a * pow_small(d.max(0.0), *b),
                StorageShape::Tabular(curve) => lookup_ex(curve, d),
            },
            _ => 0.0,
        }
    }

    /// Water stored at depth `d`, m³ (junctions store none, as in SWMM's dynamic wave).
    pub fn volume(&self, d: f64) -> f64 {
        match &self.kind {
            NodeType::Storage { shape } => {
                if d <= 0.0 {
                    return 0.0;
                }
                if d >= self.full_depth && self.full_volume > 0.0 {
                    return self.full_volume;
                }
                storage_volume(shape, d)
            }
            _ => {
                if self.full_depth > 0.0 {
                    self.full_volume * (d / self.full_depth)
                } else {
                    0.0
                }
            }
        }
    }

    /// The storage depth holding volume `v` (bisection on [`Self::volume`]), m.
    pub fn depth_of_volume(&self, v: f64) -> f64 {
        match &self.kind {
            NodeType::Storage { shape } => {
                if v <= 0.0 {
                    return 0.0;
                }
                let top = self.full_depth.max(1e-6);
                if v >= storage_volume(shape, top) {
                    return top;
                }
                let (mut lo, mut hi) = (0.0, top);
                for _ in 0..60 {
                    let m = 0.5 * (lo + hi);
                    if storage_volume(shape, m) < v {
                        lo = m;
                    } else {
                        hi = m;
                    }
                }
                0.5 * (lo + hi)
            }
            _ => 0.0,
        }
    }

    /// Surface area used in dynamic-wave continuity at depth `d` (ponded area above full).
    pub(crate) fn ponded_or_surf_area(&self, d: f64, allow_ponding: bool) -> f64 {
        if allow_ponding && d > self.full_depth && self.ponded_area > 0.0 {
            self.ponded_area
        } else {
            self.surf_area(d)
        }
    }
}

/// SWMM's extended table lookup: proportional below the first point, extended with the last
/// segment's (non-negative) slope above the last.
fn lookup_ex(c: &Curve, x: f64) -> f64 {
    let p = &c.points;
    if p.is_empty() {
        return 0.0;
    }
    if x <= p[0].0 {
        return if p[0].0 > 0.0 {
            x / p[0].0 * p[0].1
        } else {
            p[0].1
        };
    }
    if x <= p[p.len() - 1].0 || p.len() < 2 {
        return c.at(x);
    }
    let (a, b) = (p[p.len() - 2], p[p.len() - 1]);
    let s = if b.0 > a.0 {
        ((b.1 - a.1) / (b.0 - a.0)).max(0.0)
    } else {
        0.0
    };
    b.1 + s * (x - b.0)
}

/// x^e, without `powf` for the whole exponents storage curves mostly have.
#[inline]
fn pow_small(x: f64, e: f64) -> f64 {
    match e {
        0.0 => 1.0,
        1.0 => x,
        2.0 => x * x,
        3.0 => x * x * x,
        _ => x.powf(e),
    }
}

/// Volume of a storage shape at depth `d` (areas integrated by depth), m³.
fn storage_volume(shape: &StorageShape, d: f64) -> f64 {
    match shape {
        StorageShape::Functional { a, b, c } => c * d + a / (b + 1.0) * pow_small(d, b + 1.0),
        StorageShape::Tabular(curve) => {
            let p = &curve.points;
            if p.is_empty() {
                return 0.0;
            }
            let (x1, a1) = p[0];
            if d <= x1 {
                return if x1 < 1e-6 {
                    0.0
                } else {
                    a1 / x1 * d * d / 2.0
                };
            }
            let mut v = if x1 < 1e-6 {
                0.0
            } else {
                a1 / x1 * x1 * x1 / 2.0
            };
            for w in p.windows(2) {
                let ((xa, aa), (xb, ab)) = (w[0], w[1]);
                if d <= xb {
                    let ad = lookup_ex(curve, d);
                    return v + 0.5 * (aa + ad) * (d - xa);
                }
                v += 0.5 * (aa + ab) * (xb - xa);
            }
            // Beyond the table: the area keeps the last slope.
            let ad = lookup_ex(curve, d);
            let (xl, al) = p[p.len() - 1];
            v + 0.5 * (al + ad) * (d - xl)
        }
    }
}

/// Flow regimes of a conduit (SWMM's flow classes).
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowClass {
    /// Dry at both ends.
    Dry,
    /// Dry upstream.
    UpDry,
    /// Dry downstream.
    DnDry,
    /// Subcritical.
    Subcritical,
    /// Supercritical.
    Supercritical,
    /// Critical depth at the upstream end.
    UpCritical,
    /// Critical depth at the downstream end.
    DnCritical,
}

/// A conduit's hydraulic constants and state (per barrel).
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct ConduitX {
    /// Geometry.
    pub xs: Xsect,
    /// Barrels.
    pub barrels: f64,
    /// True length, m.
    pub length: f64,
    /// Length used in the momentum equation (lengthened for stability), m.
    pub mod_length: f64,
    /// Slope, m/m (positive after reversal).
    pub slope: f64,
    /// `g·n²` (per the modified length).
    pub rough_factor: f64,
    /// Manning's `√S/n`.
    pub beta: f64,
    /// Full flow, m³/s per barrel.
    pub q_full: f64,
    /// Largest flow, m³/s per barrel.
    pub q_max: f64,
    /// Entry, exit and average loss coefficients.
    pub losses: [f64; 3],
    /// Any loss coefficient non-zero.
    pub has_losses: bool,
    /// Area from the last iteration (mid-point), m².
    pub a1: f64,
    /// Area from the last step, m².
    pub a2: f64,
    /// Flow from the last iteration (dynamic wave; kinematic wave: at the inlet), m³/s per barrel.
    pub q1: f64,
    /// Kinematic wave: flow at the outlet, m³/s per barrel.
    pub q2: f64,
    /// Full at its upstream end and the HGL falls faster than the pipe: capacity limited.
    pub capacity_limited: bool,
}

/// A pump's curve and switching.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct PumpX {
    /// Curve.
    pub curve: PumpCurve,
    /// Startup depth, m.
    pub y_on: f64,
    /// Shutoff depth, m.
    pub y_off: f64,
}

/// An orifice's constants.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct OrificeX {
    /// Opening.
    pub xs: Xsect,
    /// Bottom orifice.
    pub bottom: bool,
    /// Discharge coefficient.
    pub cd: f64,
    /// Orifice-flow coefficient `Cd·A·√(2g)`.
    pub c_orif: f64,
    /// Weir-flow coefficient for partly submerged openings.
    pub c_weir: f64,
    /// Head at which weir flow turns to orifice flow, m.
    pub h_crit: f64,
    /// Length used for surface area, m.
    pub length: f64,
    /// Surface area it lends its nodes, m².
    pub surf_area: f64,
}

/// A weir's constants.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct WeirX {
    /// Kind.
    pub kind: WeirKind,
    /// Opening height, m.
    pub height: f64,
    /// Crest length, m.
    pub length: f64,
    /// Side slope of triangular parts.
    pub slope: f64,
    /// Coefficients (SI).
    pub cd1: f64,
    /// End coefficient (SI).
    pub cd2: f64,
    /// End contractions.
    pub end_con: f64,
    /// May surcharge.
    pub can_surcharge: bool,
    /// Orifice coefficient when surcharged.
    pub c_surcharge: f64,
}

/// Link types.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub enum LinkType {
    /// A conduit.
    Conduit(ConduitX),
    /// A pump.
    Pump(PumpX),
    /// An orifice.
    Orifice(OrificeX),
    /// A weir.
    Weir(WeirX),
}

/// A link and its state.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct Link {
    /// Name.
    pub name: String,
    /// Upstream node (after reversal of adverse conduits).
    pub node1: usize,
    /// Downstream node.
    pub node2: usize,
    /// Invert offset at node 1, m.
    pub offset1: f64,
    /// Invert offset at node 2, m.
    pub offset2: f64,
    /// +1, or −1 for a conduit reversed because it slopes up: reported flows are multiplied by it.
    pub direction: f64,
    /// Flap gate.
    pub flap_gate: bool,
    /// Flow cap (0: none), m³/s.
    pub q_limit: f64,
    /// Full depth of its opening, m.
    pub y_full: f64,
    /// Type.
    pub kind: LinkType,
    // --- state
    /// Setting (0 closed … 1 open; a pump's on/off).
    pub setting: f64,
    /// Flow at the start of the step, m³/s (all barrels).
    pub old_flow: f64,
    /// Flow now.
    pub new_flow: f64,
    /// Depth now (mid-point), m.
    pub new_depth: f64,
    /// Volume of water in it at the start of the step, m³.
    pub old_volume: f64,
    /// Volume now, m³.
    pub new_volume: f64,
    /// ∂q/∂h, m²/s.
    pub dqdh: f64,
    /// Froude number.
    pub froude: f64,
    /// Flow class.
    pub flow_class: FlowClass,
    pub(crate) surf_area1: f64,
    pub(crate) surf_area2: f64,
    pub(crate) bypassed: bool,
    /// The last (flow per barrel, normal depth, critical depth) asked of a conduit: iterations
    /// often ask again for the same flow.
    depths_at: (f64, f64, f64),
}

impl Link {
    /// Whether it is a conduit.
    pub fn is_conduit(&self) -> bool {
        matches!(self.kind, LinkType::Conduit(_))
    }

    /// True length (conduits; 0 for others), m.
    pub fn length(&self) -> f64 {
        match &self.kind {
            LinkType::Conduit(c) => c.length,
            _ => 0.0,
        }
    }

    /// Normal depth for flow `q` per barrel (conduits), m.
    pub fn y_norm(&self, q: f64) -> f64 {
        let LinkType::Conduit(c) = &self.kind else {
            return 0.0;
        };
        let q = q.abs().min(c.q_max);
        if q <= 0.0 || c.beta <= 0.0 {
            return 0.0;
        }
        let a = c.xs.a_of_s(q / c.beta);
        c.xs.y_of_a(a)
    }

    /// Critical depth for flow `q` per barrel (conduits), m.
    pub fn y_crit(&self, q: f64) -> f64 {
        match &self.kind {
            LinkType::Conduit(c) => c.xs.y_critical(q.abs()),
            _ => 0.0,
        }
    }

    /// Normal and critical depth for flow `q` per barrel (conduits), m, remembered for the
    /// last flow asked.
    pub fn norm_crit(&mut self, q: f64) -> (f64, f64) {
        let q = q.abs();
        let (cq, yn, yc) = self.depths_at;
        if cq == q {
            return (yn, yc);
        }
        let (yn, yc) = (self.y_norm(q), self.y_crit(q));
        self.depths_at = (q, yn, yc);
        (yn, yc)
    }

    /// Froude number at velocity `v` and depth `y` (conduits).
    pub fn froude_of(&self, v: f64, y: f64) -> f64 {
        let LinkType::Conduit(c) = &self.kind else {
            return 0.0;
        };
        if y <= FUDGE {
            return 0.0;
        }
        if !c.xs.is_open() && c.xs.y_full - y <= FUDGE {
            return 0.0;
        }
        let w = c.xs.w_of_y(y);
        if w <= 0.0 {
            return 0.0;
        }
        let yh = c.xs.a_of_y(y) / w;
        v.abs() / (G * yh).sqrt()
    }
}

/// The network built from a spec: nodes, links, options.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct Network {
    /// Options.
    pub options: Options,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Links.
    pub links: Vec<Link>,
    /// Links upstream to downstream (kinematic wave).
    pub sorted_links: Vec<usize>,
    /// Smallest node surface area, m².
    pub min_surf_area: f64,
    /// Head tolerance, m.
    pub head_tol: f64,
    /// Most trials per step.
    pub max_trials: u32,
}

impl Network {
    /// Build and initialise the network of `spec`.
    pub fn new(spec: &NetworkSpec) -> Result<Self, DrainageError> {
        let o = spec.options.clone();
        let dw = o.routing == Routing::Dynamic;
        let min_surf_area = if o.min_surface_area_m2 > 0.0 {
            o.min_surface_area_m2
        } else {
            DEFAULT_SURFAREA_M2
        };
        let head_tol = if o.head_tolerance_m > 0.0 {
            o.head_tolerance_m
        } else {
            DEFAULT_HEADTOL_M
        };
        let max_trials = if o.max_trials > 0 { o.max_trials } else { 8 };
        let mut nodes: Vec<Node> = spec
            .nodes
            .iter()
            .map(|n| {
                let (kind, invert, full, sur, ponded, init, evap, area) = match &n.kind {
                    NodeKind::Junction(m) => (
                        NodeType::Junction,
                        m.invert_m,
                        m.max_depth_m,
                        m.surcharge_depth_m,
                        m.ponded_area_m2,
                        m.init_depth_m,
                        0.0,
                        m.area_m2,
                    ),
                    NodeKind::Outfall(of) => (
                        NodeType::Outfall {
                            stage: of.stage.clone(),
                            gated: of.gated,
                        },
                        of.invert_m,
                        0.0,
                        0.0,
                        0.0,
                        0.0,
                        0.0,
                        0.0,
                    ),
                    NodeKind::Storage(s) => (
                        NodeType::Storage {
                            shape: s.shape.clone(),
                        },
                        s.invert_m,
                        s.max_depth_m,
                        s.surcharge_depth_m,
                        0.0,
                        s.init_depth_m,
                        s.evap_factor,
                        0.0,
                    ),
                };
                Node {
                    name: n.name.clone(),
                    kind,
                    invert,
                    full_depth: full,
                    sur_depth: sur,
                    ponded_area: ponded,
                    init_depth: init,
                    crown_elev: invert,
                    full_volume: 0.0,
                    min_area: if area > 0.0 { area } else { min_surf_area },
                    degree: 0,
                    inflow_def: n.inflow.clone(),
                    old_depth: 0.0,
                    new_depth: 0.0,
                    old_volume: 0.0,
                    new_volume: 0.0,
                    inflow: 0.0,
                    outflow: 0.0,
                    old_net_inflow: 0.0,
                    new_lat_flow: 0.0,
                    old_lat_flow: 0.0,
                    overflow: 0.0,
                    losses: 0.0,
                    converged: false,
                    new_surf_area: 0.0,
                    old_surf_area: 0.0,
                    sumdqdh: 0.0,
                    dydt: 0.0,
                    evap_factor: evap,
                }
            })
            .collect();
        let nn = nodes.len();
        let bad = |name: &str, msg: String| DrainageError::Invalid(format!("link `{name}`: {msg}"));
        let mut links = Vec::with_capacity(spec.links.len());
        for l in &spec.links {
            let (from, to) = l.ends();
            if from >= nn || to >= nn {
                return Err(bad(&l.name, "names a node that does not exist".into()));
            }
            if from == to {
                return Err(bad(&l.name, "both ends are the same node".into()));
            }
            let mut link = Link {
                name: l.name.clone(),
                node1: from,
                node2: to,
                offset1: 0.0,
                offset2: 0.0,
                direction: 1.0,
                flap_gate: false,
                q_limit: 0.0,
                y_full: 0.0,
                kind: LinkType::Weir(WeirX {
                    kind: WeirKind::Transverse,
                    height: 0.0,
                    length: 0.0,
                    slope: 0.0,
                    cd1: 0.0,
                    cd2: 0.0,
                    end_con: 0.0,
                    can_surcharge: false,
                    c_surcharge: 0.0,
                }),
                setting: 1.0,
                old_flow: 0.0,
                new_flow: 0.0,
                new_depth: 0.0,
                old_volume: 0.0,
                new_volume: 0.0,
                dqdh: 0.0,
                froude: 0.0,
                flow_class: FlowClass::Dry,
                surf_area1: 0.0,
                surf_area2: 0.0,
                bypassed: false,
                depths_at: (f64::NAN, 0.0, 0.0),
            };
            match &l.kind {
                LinkKind::Conduit(c) => {
                    if c.length_m <= 0.0 || c.manning_n <= 0.0 || c.barrels == 0 {
                        return Err(bad(
                            &l.name,
                            "needs a positive length, roughness and barrel count".into(),
                        ));
                    }
                    let xs = Xsect::new(c.section);
                    if xs.a_full <= 0.0 || !xs.a_full.is_finite() {
                        return Err(bad(
                            &l.name,
                            format!("cross-section {:?} has no area", c.section),
                        ));
                    }
                    link.offset1 = c.inlet_offset_m.max(0.0);
                    link.offset2 = c.outlet_offset_m.max(0.0);
                    link.flap_gate = c.flap_gate;
                    link.q_limit = c.max_flow_m3s;
                    link.y_full = xs.y_full;
                    link.old_flow = c.init_flow_m3s;
                    link.new_flow = c.init_flow_m3s;
                    // Slope (rise over horizontal run); a flat conduit gets a tiny drop.
                    let e1 = nodes[from].invert + link.offset1;
                    let e2 = nodes[to].invert + link.offset2;
                    let mut dz = (e1 - e2).abs();
                    if dz < MIN_DELTA_Z {
                        dz = MIN_DELTA_Z;
                    }
                    let len = c.length_m;
                    let mut slope = if dz >= len {
                        dz / len
                    } else {
                        dz / (len * len - dz * dz).sqrt()
                    };
                    if o.min_slope > 0.0 && slope < o.min_slope {
                        slope = o.min_slope;
                    }
                    if e1 < e2 {
                        slope = -slope;
                    }
                    let mut losses = c.losses;
                    if dw && slope < 0.0 {
                        // SWMM reverses an adverse conduit: flows are then positive downhill.
                        std::mem::swap(&mut link.node1, &mut link.node2);
                        std::mem::swap(&mut link.offset1, &mut link.offset2);
                        losses.swap(0, 1);
                        slope = -slope;
                        link.direction = -1.0;
                        link.old_flow = -link.old_flow;
                        link.new_flow = -link.new_flow;
                    }
                    // Lengthening for the Courant condition.
                    let mut n_eff = c.manning_n;
                    let mut mod_length = len;
                    let mut slope_local = slope;
                    if dw && o.lengthening_step_s > 0.0 {
                        let y = if xs.is_open() {
                            xs.a_full / xs.w_of_y(xs.y_full)
                        } else {
                            xs.y_full
                        };
                        let v_full = MANNING / n_eff * xs.s_full * slope.abs().sqrt() / xs.a_full;
                        let t = o.routing_step_s.min(o.lengthening_step_s);
                        let ratio = ((G * y).sqrt() + v_full) * t / len;
                        if ratio > 1.0 {
                            mod_length = ratio * len;
                            slope_local /= ratio;
                            n_eff /= ratio.sqrt();
                        }
                    }
                    let rough_factor = G * n_eff * n_eff / (MANNING * MANNING);
                    let beta = MANNING * slope_local.abs().sqrt() / n_eff;
                    let q_full = xs.s_full * beta;
                    let q_max = xs.s_max * beta;
                    link.kind = LinkType::Conduit(ConduitX {
                        xs,
                        barrels: c.barrels as f64,
                        length: len,
                        mod_length,
                        slope,
                        rough_factor,
                        beta,
                        q_full,
                        q_max,
                        losses,
                        has_losses: losses.iter().any(|&k| k != 0.0),
                        a1: 0.0,
                        a2: 0.0,
                        q1: 0.0,
                        q2: 0.0,
                        capacity_limited: false,
                    });
                }
                LinkKind::Pump(p) => {
                    if p.startup_depth_m > 0.0 && p.startup_depth_m <= p.shutoff_depth_m {
                        return Err(bad(
                            &l.name,
                            "its startup depth must be above its shutoff depth".into(),
                        ));
                    }
                    link.setting = if p.on { 1.0 } else { 0.0 };
                    if let PumpCurve::Volume(c) = &p.curve {
                        // A type-1 pump's wet well stores water up to the curve's largest volume.
                        let vmax = c.points.last().map_or(0.0, |q| q.0);
                        let n = &mut nodes[from];
                        n.full_volume = n.full_volume.max(vmax);
                    }
                    link.kind = LinkType::Pump(PumpX {
                        curve: p.curve.clone(),
                        y_on: p.startup_depth_m,
                        y_off: p.shutoff_depth_m,
                    });
                }
                LinkKind::Orifice(of) => {
                    if !matches!(
                        of.section,
                        CrossSection::Circular { .. } | CrossSection::Rectangular { .. }
                    ) {
                        return Err(bad(
                            &l.name,
                            "an orifice is circular or a closed rectangle".into(),
                        ));
                    }
                    let xs = Xsect::new(of.section);
                    link.offset1 = of.offset_m.max(0.0);
                    link.flap_gate = of.flap_gate;
                    link.y_full = xs.y_full;
                    // SWMM's equivalent length, for the surface area it lends its nodes.
                    let length =
                        (200.0 * super::FT).max(2.0 * o.routing_step_s * (G * xs.y_full).sqrt());
                    let mut ox = OrificeX {
                        xs,
                        bottom: of.bottom,
                        cd: of.discharge_coeff,
                        c_orif: 0.0,
                        c_weir: 0.0,
                        h_crit: 0.0,
                        length,
                        surf_area: 0.0,
                    };
                    set_orifice_coeffs(&mut ox, 1.0);
                    link.kind = LinkType::Orifice(ox);
                }
                LinkKind::Weir(w) => {
                    link.offset1 = w.crest_m.max(0.0);
                    link.flap_gate = w.flap_gate;
                    link.y_full = w.height_m;
                    let slope = match w.kind {
                        WeirKind::VNotch | WeirKind::Trapezoidal => w.side_slope,
                        _ => 0.0,
                    };
                    let mut wx = WeirX {
                        kind: w.kind,
                        height: w.height_m,
                        length: w.length_m,
                        slope,
                        cd1: w.discharge_coeff,
                        cd2: w.end_coeff,
                        end_con: w.end_contractions as f64,
                        can_surcharge: w.can_surcharge,
                        c_surcharge: 0.0,
                    };
                    // Orifice coefficient from the weir's flow with the water at its top.
                    let (q1, q2) = super::regulators::weir_flow(&wx, w.height_m, 1.0, 1.0);
                    wx.c_surcharge = (q1 + q2) / (w.height_m / 2.0).sqrt();
                    link.kind = LinkType::Weir(wx);
                }
            }
            if !link.is_conduit() {
                // Regulators' crests at least at the downstream invert; both ends share it.
                if dw && !matches!(link.kind, LinkType::Pump(_)) {
                    let (i1, i2) = (nodes[link.node1].invert, nodes[link.node2].invert);
                    if i1 + link.offset1 < i2 {
                        link.offset1 = i2 - i1;
                    }
                }
                link.offset2 = link.offset1;
            }
            links.push(link);
        }
        // Full depths reach the crowns of the links at a node.
        for l in &links {
            let skip = match &l.kind {
                LinkType::Pump(_) => true,
                LinkType::Orifice(o) => o.bottom,
                _ => false,
            };
            if skip {
                continue;
            }
            let n1 = &mut nodes[l.node1];
            if !n1.is_storage() || n1.sur_depth > 0.0 {
                n1.full_depth = n1.full_depth.max(l.offset1 + l.y_full);
            }
            if l.is_conduit() {
                let n2 = &mut nodes[l.node2];
                if !n2.is_storage() || n2.sur_depth > 0.0 {
                    n2.full_depth = n2.full_depth.max(l.offset2 + l.y_full);
                }
            }
        }
        for n in &mut nodes {
            if n.init_depth > n.full_depth + n.sur_depth {
                return Err(DrainageError::Invalid(format!(
                    "node `{}`: initial depth {:.3} m is above its full depth {:.3} m",
                    n.name,
                    n.init_depth,
                    n.full_depth + n.sur_depth
                )));
            }
            // node_initState
            n.old_depth = n.init_depth;
            n.new_depth = n.init_depth;
            let fv = if n.is_storage() {
                storage_volume_of(n, n.full_depth)
            } else {
                n.full_volume
            };
            n.full_volume = fv;
            if n.is_storage() && n.full_volume < 0.0 {
                return Err(DrainageError::Invalid(format!(
                    "storage `{}`: its area curve gives a negative volume",
                    n.name
                )));
            }
            n.old_volume = n.volume(n.old_depth);
            n.new_volume = n.old_volume;
        }
        let mut net = Network {
            options: o,
            nodes,
            links,
            sorted_links: Vec::new(),
            min_surf_area,
            head_tol,
            max_trials,
        };
        if !net.nodes.iter().any(|n| n.is_outfall()) && !net.links.is_empty() {
            return Err(DrainageError::Invalid("the network has no outfall".into()));
        }
        net.sorted_links = net.topo_sort()?;
        net.set_degrees();
        // link_initState: conduits start at the normal depth of their initial flow.
        for l in &mut net.links {
            if let LinkType::Conduit(c) = &l.kind {
                let q = l.new_flow / c.barrels;
                l.new_depth = l.y_norm(q);
            }
        }
        if dw {
            net.init_dynwave();
        }
        // initNodes / initLinks
        let ponding = net.options.allow_ponding;
        for n in &mut net.nodes {
            n.inflow = 0.0;
            n.outflow = 0.0;
            n.new_volume = if ponding && n.ponded_area > 0.0 && n.new_depth > n.full_depth {
                n.full_volume + (n.new_depth - n.full_depth) * n.ponded_area
            } else {
                n.volume(n.new_depth)
            };
            n.old_volume = n.new_volume;
        }
        for l in &mut net.links {
            if let LinkType::Conduit(c) = &mut l.kind {
                c.q1 = l.new_flow / c.barrels;
                c.q2 = c.q1;
                c.a1 = c.xs.a_of_y(l.new_depth);
                c.a2 = c.a1;
                l.new_volume = c.a1 * c.length * c.barrels;
                l.old_volume = l.new_volume;
            }
        }
        Ok(net)
    }

    /// Crown elevations, then SWMM's initial node and link depths.
    fn init_dynwave(&mut self) {
        for n in &mut self.nodes {
            n.crown_elev = n.invert;
        }
        for l in &self.links {
            let z1 = self.nodes[l.node1].invert + l.offset1 + l.y_full;
            let z2 = self.nodes[l.node2].invert + l.offset2 + l.y_full;
            let c1 = &mut self.nodes[l.node1].crown_elev;
            *c1 = c1.max(z1);
            let c2 = &mut self.nodes[l.node2].crown_elev;
            *c2 = c2.max(z2);
        }
        for l in &mut self.links {
            l.flow_class = FlowClass::Dry;
            l.dqdh = 0.0;
        }
        // initNodeDepths: the mean of the connecting links' depths (with SWMM's upstream
        // offset at both ends).
        let mut sum = vec![0.0; self.nodes.len()];
        let mut count = vec![0.0; self.nodes.len()];
        for l in &self.links {
            let y = if l.new_depth > FUDGE {
                l.new_depth + l.offset1
            } else {
                0.0
            };
            for n in [l.node1, l.node2] {
                sum[n] += y;
                count[n] += 1.0;
            }
        }
        for (i, n) in self.nodes.iter_mut().enumerate() {
            if n.is_outfall() || n.is_storage() || n.init_depth > 0.0 {
                continue;
            }
            if count[i] > 0.0 {
                n.new_depth = sum[i] / count[i];
            }
        }
        for j in 0..self.links.len() {
            self.set_outfall_depth(j, 0.0);
        }
        // initLinkDepths
        for l in &mut self.links {
            if let LinkType::Conduit(c) = &l.kind {
                if l.new_flow != 0.0 {
                    continue;
                }
                let y1 = (self.nodes[l.node1].new_depth - l.offset1).clamp(0.0, c.xs.y_full);
                let y2 = (self.nodes[l.node2].new_depth - l.offset2).clamp(0.0, c.xs.y_full);
                l.new_depth = (0.5 * (y1 + y2)).max(FUDGE);
            }
        }
    }

    /// SWMM's node degrees for dynamic wave: outgoing links counted at the link's upstream end
    /// as written (an outfall's at the other end), negated for nodes with no incoming link.
    fn set_degrees(&mut self) {
        for n in &mut self.nodes {
            n.degree = 0;
        }
        for l in &self.links {
            let mut n = if l.direction < 0.0 { l.node2 } else { l.node1 };
            if self.nodes[n].is_outfall() {
                n = if l.direction < 0.0 { l.node1 } else { l.node2 };
            }
            self.nodes[n].degree += 1;
        }
        let mut incoming = vec![0u32; self.nodes.len()];
        for l in &self.links {
            let i = if self.nodes[l.node1].is_outfall() {
                l.node1
            } else {
                l.node2
            };
            incoming[i] += 1;
        }
        for (n, inc) in self.nodes.iter_mut().zip(incoming) {
            if inc == 0 {
                n.degree = -n.degree;
            }
        }
    }

    /// Links ordered upstream to downstream; an error names a loop.
    fn topo_sort(&self) -> Result<Vec<usize>, DrainageError> {
        let nn = self.nodes.len();
        let mut indeg = vec![0usize; nn];
        let mut out: Vec<Vec<usize>> = vec![Vec::new(); nn];
        for (j, l) in self.links.iter().enumerate() {
            indeg[l.node2] += 1;
            out[l.node1].push(j);
        }
        let mut stack: Vec<usize> = (0..nn).filter(|&i| indeg[i] == 0).collect();
        let mut first = 0;
        let mut sorted = Vec::with_capacity(self.links.len());
        while first < stack.len() {
            let i = stack[first];
            first += 1;
            for &j in &out[i] {
                sorted.push(j);
                let d = self.links[j].node2;
                indeg[d] -= 1;
                if indeg[d] == 0 {
                    stack.push(d);
                }
            }
        }
        if sorted.len() != self.links.len() && self.options.routing == Routing::Kinematic {
            let missing: Vec<&str> = self
                .links
                .iter()
                .enumerate()
                .filter(|(j, _)| !sorted.contains(j))
                .map(|(_, l)| l.name.as_str())
                .take(5)
                .collect();
            return Err(DrainageError::Invalid(format!(
                "kinematic-wave routing needs a network without loops; these links form one: {}",
                missing.join(", ")
            )));
        }
        if sorted.len() != self.links.len() {
            // Dynamic wave does not need the order; keep every link.
            sorted = (0..self.links.len()).collect();
        }
        Ok(sorted)
    }

    /// Set the depth of the outfall at either end of link `j` from the flow in it
    /// (`elapsed_s`: time since the start, for tides and stage series).
    pub(crate) fn set_outfall_depth(&mut self, j: usize, elapsed_s: f64) {
        let l = &mut self.links[j];
        let (n, z) = if self.nodes[l.node2].is_outfall() {
            (l.node2, l.offset2)
        } else if self.nodes[l.node1].is_outfall() {
            (l.node1, l.offset1)
        } else {
            return;
        };
        let barrels = match &l.kind {
            LinkType::Conduit(c) => Some(c.barrels),
            _ => None,
        };
        let (y_norm, y_crit) = match barrels {
            Some(b) => l.norm_crit(l.new_flow.abs() / b),
            None => (0.0, 0.0),
        };
        let node = &self.nodes[n];
        let NodeType::Outfall { stage, .. } = &node.kind else {
            return;
        };
        let stage_m = match stage {
            OutfallStage::Free => {
                let d = if z > 0.0 { 0.0 } else { y_norm.min(y_crit) };
                self.nodes[n].new_depth = d;
                return;
            }
            OutfallStage::Normal => {
                let d = if z > 0.0 { 0.0 } else { y_norm };
                self.nodes[n].new_depth = d;
                return;
            }
            OutfallStage::Fixed(s) => *s,
            OutfallStage::Tidal(c) => {
                let x0 = c.points.first().map_or(0.0, |p| p.0);
                c.at(x0 + (elapsed_s % 86_400.0))
            }
            OutfallStage::Series(c) => c.at(elapsed_s),
        };
        let invert = node.invert;
        let yc = y_crit.min(y_norm);
        let d = if yc + z + invert < stage_m {
            stage_m - invert
        } else if z > 0.0 {
            if stage_m < invert + z {
                (stage_m - invert).max(0.0)
            } else {
                z + yc
            }
        } else {
            yc
        };
        self.nodes[n].new_depth = d;
    }

    /// Water in the network now: nodes and conduits, m³.
    pub fn stored_m3(&self) -> f64 {
        self.nodes.iter().map(|n| n.new_volume).sum::<f64>()
            + self.links.iter().map(|l| l.new_volume).sum::<f64>()
    }

    /// Reported flow of link `j` (signed as the link was written), m³/s.
    pub fn flow_m3s(&self, j: usize) -> f64 {
        self.links[j].new_flow * self.links[j].direction
    }
}

fn storage_volume_of(n: &Node, d: f64) -> f64 {
    match &n.kind {
        NodeType::Storage { shape } => {
            if d <= 0.0 {
                0.0
            } else {
                storage_volume(shape, d)
            }
        }
        _ => 0.0,
    }
}

/// Orifice coefficients for a setting (fraction open).
pub(crate) fn set_orifice_coeffs(o: &mut OrificeX, setting: f64) {
    let h = setting * o.xs.y_full;
    let f = o.xs.a_of_y(h) * (2.0 * G).sqrt();
    o.c_orif = o.cd * f;
    if o.bottom {
        let a_over_l = match o.xs.shape {
            CrossSection::Circular { .. } => h / 4.0,
            CrossSection::Rectangular { width_m: w, .. } => h * w / (2.0 * (h + w)),
            _ => h / 4.0,
        };
        o.h_crit = o.cd / 0.414 * a_over_l;
        o.c_weir = o.cd * o.h_crit.sqrt() * f;
    } else {
        o.h_crit = h;
        o.c_weir = o.cd * (h / 2.0).sqrt() * f;
    }
}
