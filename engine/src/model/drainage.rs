//! The drainage network, as in EPA SWMM: nodes (manholes/junctions, storage units, outfalls),
//! links between them (conduits, pumps, orifices, weirs) and the subcatchments that drain into
//! them. SI units throughout: m, m², m³/s, s.
//!
//! Nodes carry a [`super::Position`] (their rim or ground elevation in `z_m`); links and
//! subcatchments a [`super::Shape`] (the pipe's plan line, the catchment's polygon).
//!
//! Links name their end nodes with a type parameter `N`: an [`Entity`] in the world (the
//! default), an index in a solver's own description of the network (the flood simulation's
//! `NetworkSpec`), so both share one definition of each object.

use bevy::prelude::{Component, Entity};

/// A conduit's cross-section (full sizes, m).
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub enum CrossSection {
    /// A circular pipe.
    Circular {
        /// Inner diameter, m.
        diameter_m: f64,
    },
    /// A rectangular closed box culvert.
    Rectangular {
        /// Inner width, m.
        width_m: f64,
        /// Inner height, m.
        height_m: f64,
    },
    /// An open rectangular channel.
    RectangularOpen {
        /// Width, m.
        width_m: f64,
        /// Depth of the channel, m.
        height_m: f64,
    },
    /// An open trapezoidal channel.
    Trapezoidal {
        /// Bottom width, m.
        bottom_m: f64,
        /// Depth of the channel, m.
        height_m: f64,
        /// Left bank slope, horizontal per vertical.
        left_slope: f64,
        /// Right bank slope, horizontal per vertical.
        right_slope: f64,
    },
    /// An open triangular channel (V ditch).
    Triangular {
        /// Top width at full depth, m.
        top_m: f64,
        /// Depth of the channel, m.
        height_m: f64,
    },
}

impl CrossSection {
    /// Full-flow area, m².
    pub fn full_area_m2(&self) -> f64 {
        match *self {
            CrossSection::Circular { diameter_m } => {
                std::f64::consts::PI * diameter_m * diameter_m / 4.0
            }
            CrossSection::Rectangular { width_m, height_m }
            | CrossSection::RectangularOpen { width_m, height_m } => width_m * height_m,
            CrossSection::Trapezoidal {
                bottom_m,
                height_m,
                left_slope,
                right_slope,
            } => (bottom_m + 0.5 * (left_slope + right_slope) * height_m) * height_m,
            CrossSection::Triangular { top_m, height_m } => 0.5 * top_m * height_m,
        }
    }

    /// Full height, m.
    pub fn full_depth_m(&self) -> f64 {
        match *self {
            CrossSection::Circular { diameter_m } => diameter_m,
            CrossSection::Rectangular { height_m, .. }
            | CrossSection::RectangularOpen { height_m, .. }
            | CrossSection::Trapezoidal { height_m, .. }
            | CrossSection::Triangular { height_m, .. } => height_m,
        }
    }

    /// Whether the top is open (a channel), so it never pressurises.
    pub fn is_open(&self) -> bool {
        !matches!(
            self,
            CrossSection::Circular { .. } | CrossSection::Rectangular { .. }
        )
    }
}

/// A table of (x, y) points with x increasing: storage areas by depth, pump curves, tides,
/// time series (x in s).
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Curve {
    /// The points.
    pub points: Vec<(f64, f64)>,
}

impl Curve {
    /// y at x, linear between points and held flat beyond the ends.
    pub fn at(&self, x: f64) -> f64 {
        let p = &self.points;
        match p.len() {
            0 => 0.0,
            1 => p[0].1,
            _ => {
                if x <= p[0].0 {
                    return p[0].1;
                }
                // Binary search for the segment.
                let k = p.partition_point(|q| q.0 < x);
                if k >= p.len() {
                    return p[p.len() - 1].1;
                }
                let (a, b) = (p[k - 1], p[k]);
                let dx = b.0 - a.0;
                if dx > 0.0 {
                    a.1 + (x - a.0) / dx * (b.1 - a.1)
                } else {
                    b.1
                }
            }
        }
    }

    /// y at x, linear between points and extended along the first and last segments beyond
    /// the ends (SWMM's extended lookup for storage curves).
    pub fn at_extended(&self, x: f64) -> f64 {
        let p = &self.points;
        if p.len() < 2 {
            return self.at(x);
        }
        let (a, b) = if x > p[p.len() - 1].0 {
            (p[p.len() - 2], p[p.len() - 1])
        } else if x < p[0].0 {
            (p[0], p[1])
        } else {
            return self.at(x);
        };
        let dx = b.0 - a.0;
        if dx > 0.0 {
            a.1 + (x - a.0) * (b.1 - a.1) / dx
        } else {
            b.1
        }
    }
}

/// A conduit (pipe or channel) between two nodes; its [`super::Shape`] is the plan line.
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug, PartialEq)]
pub struct Conduit<N: Send + Sync + 'static = Entity> {
    /// Upstream node.
    pub from: N,
    /// Downstream node.
    pub to: N,
    /// Cross-section.
    pub section: CrossSection,
    /// Length, m.
    pub length_m: f64,
    /// Manning's roughness n, s/m^(1/3).
    pub manning_n: f64,
    /// Invert offset above the upstream node's invert, m.
    pub inlet_offset_m: f64,
    /// Invert offset above the downstream node's invert, m.
    pub outlet_offset_m: f64,
    /// Identical barrels side by side (≥ 1).
    pub barrels: u32,
    /// Entrance, exit and average local-loss coefficients.
    pub losses: [f64; 3],
    /// A flap gate stops flow back upstream.
    pub flap_gate: bool,
    /// Flow at the start, m³/s.
    pub init_flow_m3s: f64,
    /// Largest flow it may carry (0: no cap), m³/s.
    pub max_flow_m3s: f64,
}

impl<N: Send + Sync + 'static> Conduit<N> {
    /// A single-barrel conduit with no losses, gates or caps.
    pub fn new(from: N, to: N, section: CrossSection, length_m: f64, manning_n: f64) -> Self {
        Self {
            from,
            to,
            section,
            length_m,
            manning_n,
            inlet_offset_m: 0.0,
            outlet_offset_m: 0.0,
            barrels: 1,
            losses: [0.0; 3],
            flap_gate: false,
            init_flow_m3s: 0.0,
            max_flow_m3s: 0.0,
        }
    }
}

/// A manhole / junction node; its [`super::Position`] `z_m` is the rim (ground) elevation.
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug, PartialEq)]
pub struct Manhole {
    /// Invert (bottom) elevation, m above datum.
    pub invert_m: f64,
    /// Depth from invert to rim, m (0: the crown of its highest pipe).
    pub max_depth_m: f64,
    /// Plan area of the shaft, m²: the water surface in it when no pipe is open to it.
    pub area_m2: f64,
    /// Water depth at the start, m.
    pub init_depth_m: f64,
    /// Depth above the rim to which a sealed manhole may pressurise before it spills, m.
    pub surcharge_depth_m: f64,
    /// Area over which spilled water ponds above it and drains back, m² (0: spills are lost,
    /// unless the flood's 2D surface takes them).
    pub ponded_area_m2: f64,
}

/// A storage unit's surface area by depth.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub enum StorageShape {
    /// `area_m2 = a·depth_m^b + c`.
    Functional {
        /// Coefficient.
        a: f64,
        /// Exponent.
        b: f64,
        /// Constant, m².
        c: f64,
    },
    /// Area (m²) by depth (m).
    Tabular(Curve),
}

/// A storage unit (pond, tank, storage tunnel); its [`super::Position`] `z_m` is its rim.
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug, PartialEq)]
pub struct StorageUnit {
    /// Invert, m above datum.
    pub invert_m: f64,
    /// Full depth, m.
    pub max_depth_m: f64,
    /// Water depth at the start, m.
    pub init_depth_m: f64,
    /// Surface area by depth.
    pub shape: StorageShape,
    /// Depth above full to which a closed unit may pressurise, m.
    pub surcharge_depth_m: f64,
    /// Fraction of the potential evaporation lost from its surface.
    pub evap_factor: f64,
}

/// The water level outside an outfall.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub enum OutfallStage {
    /// Free fall: the smaller of critical and normal depth in the connecting conduit.
    Free,
    /// Normal depth in the connecting conduit.
    Normal,
    /// A fixed level, m above datum.
    Fixed(f64),
    /// Tide: level (m above datum) by time of day (s after midnight).
    Tidal(Curve),
    /// Levels (m above datum) by time (s from the start).
    Series(Curve),
}

/// An outfall (to a river, the sea); its [`super::Position`] `z_m` is the ground elevation.
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug, PartialEq)]
pub struct Outfall {
    /// Invert elevation, m above datum.
    pub invert_m: f64,
    /// The water level outside.
    pub stage: OutfallStage,
    /// A flap gate stops water coming back in.
    pub gated: bool,
}

/// How a pump's flow follows its inlet.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub enum PumpCurve {
    /// Delivers whatever reaches its inlet node.
    Ideal,
    /// SWMM type 1: flow (m³/s) by the inlet node's volume (m³), in steps.
    Volume(Curve),
    /// SWMM type 2: flow by inlet depth (m), in steps.
    DepthSteps(Curve),
    /// SWMM type 3: flow by head difference across the pump (m), continuous.
    Head(Curve),
    /// SWMM type 4: flow by inlet depth (m), continuous.
    Depth(Curve),
}

/// A pump between two nodes; its [`super::Shape`] is a line between them.
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug, PartialEq)]
pub struct Pump<N: Send + Sync + 'static = Entity> {
    /// Inlet node.
    pub from: N,
    /// Outlet node.
    pub to: N,
    /// Its curve.
    pub curve: PumpCurve,
    /// On at the start.
    pub on: bool,
    /// Inlet depth at which it switches on (0: no switching), m.
    pub startup_depth_m: f64,
    /// Inlet depth at which it switches off, m.
    pub shutoff_depth_m: f64,
}

/// An orifice in a node's wall or floor; its [`super::Shape`] is a line to the next node.
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug, PartialEq)]
pub struct Orifice<N: Send + Sync + 'static = Entity> {
    /// Upstream node.
    pub from: N,
    /// Downstream node.
    pub to: N,
    /// The opening (circular or closed rectangular).
    pub section: CrossSection,
    /// In the floor (true) or the side wall.
    pub bottom: bool,
    /// Height of its bottom above the upstream node's invert, m.
    pub offset_m: f64,
    /// Discharge coefficient (dimensionless).
    pub discharge_coeff: f64,
    /// A flap gate stops reverse flow.
    pub flap_gate: bool,
}

/// The shape of a weir's opening.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeirKind {
    /// Rectangular, across the channel.
    Transverse,
    /// Rectangular, along the channel's side.
    Sideflow,
    /// Triangular notch.
    VNotch,
    /// Trapezoidal (rectangular middle, triangular ends).
    Trapezoidal,
}

/// A weir between two nodes; its [`super::Shape`] is a line between them.
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug, PartialEq)]
pub struct Weir<N: Send + Sync + 'static = Entity> {
    /// Upstream node.
    pub from: N,
    /// Downstream node.
    pub to: N,
    /// Kind.
    pub kind: WeirKind,
    /// Crest height above the upstream node's invert, m.
    pub crest_m: f64,
    /// Height of the opening, m.
    pub height_m: f64,
    /// Crest length (top width of a V-notch), m.
    pub length_m: f64,
    /// Side slope of the triangular parts, horizontal per vertical.
    pub side_slope: f64,
    /// Discharge coefficient of the rectangular part, m^½/s (SWMM's 3.33 in US units is 1.84).
    pub discharge_coeff: f64,
    /// Discharge coefficient of the triangular parts, m^½/s.
    pub end_coeff: f64,
    /// End contractions (0–2).
    pub end_contractions: u32,
    /// A flap gate stops reverse flow.
    pub flap_gate: bool,
    /// Flows as an orifice once the water is above its opening.
    pub can_surcharge: bool,
}

/// Infiltration into pervious ground.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub enum Infiltration {
    /// Horton: capacity `fc + (f0 − fc)·e^{−k t}`, recovering while dry.
    Horton {
        /// Initial capacity, m/s.
        f0_mps: f64,
        /// Final capacity, m/s.
        fc_mps: f64,
        /// Decay, 1/s.
        decay_per_s: f64,
        /// Time for saturated soil to dry fully, s.
        dry_time_s: f64,
        /// Most it can take in, m (0: no limit).
        max_volume_m: f64,
        /// Modified Horton (capacity from the cumulative infiltration).
        modified: bool,
    },
    /// Green–Ampt.
    GreenAmpt {
        /// Capillary suction at the wetting front, m.
        suction_m: f64,
        /// Saturated hydraulic conductivity, m/s.
        ksat_mps: f64,
        /// Initial moisture deficit (fraction of the soil volume).
        deficit: f64,
        /// SWMM's modified Green–Ampt.
        modified: bool,
    },
    /// SWMM's curve-number method.
    CurveNumber {
        /// Curve number (10–100).
        cn: f64,
        /// Time for saturated soil to dry fully, s.
        dry_time_s: f64,
    },
}

/// Where a subcatchment's subareas send their runoff.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubareaRouting {
    /// Both straight to the outlet.
    Outlet,
    /// Pervious runoff flows over the impervious area first.
    Impervious,
    /// Impervious runoff flows over the pervious area first.
    Pervious,
}

/// A subcatchment: rain on it runs off (SWMM's nonlinear reservoirs) into its outlet node or
/// another subcatchment; its [`super::Shape`] is its polygon.
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug, PartialEq)]
pub struct Subcatchment<O: Send + Sync + 'static = Entity> {
    /// Where it drains: a node (manhole, storage, outfall) or another subcatchment.
    pub outlet: O,
    /// Station code of its rain gauge (a [`super::Sensor`] of kind rain gauge); none: the
    /// city-wide rain.
    pub gauge: Option<String>,
    /// Area, m².
    pub area_m2: f64,
    /// Impervious fraction (0–1).
    pub imperv_frac: f64,
    /// Width of overland flow, m.
    pub width_m: f64,
    /// Slope, m/m.
    pub slope: f64,
    /// Manning's n of the impervious part.
    pub n_imperv: f64,
    /// Manning's n of the pervious part.
    pub n_perv: f64,
    /// Depression storage of the impervious part, m.
    pub ds_imperv_m: f64,
    /// Depression storage of the pervious part, m.
    pub ds_perv_m: f64,
    /// Fraction of the impervious part without depression storage.
    pub frac_zero_ds: f64,
    /// Internal routing between its parts.
    pub route_to: SubareaRouting,
    /// Fraction of the runoff routed internally.
    pub frac_routed: f64,
    /// Infiltration of the pervious part.
    pub infiltration: Infiltration,
}

/// Multipliers of a flow by time (SWMM's patterns).
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub enum Pattern {
    /// 12 factors, January first.
    Monthly([f64; 12]),
    /// 7 factors, Sunday first.
    Daily([f64; 7]),
    /// 24 factors, midnight first.
    Hourly([f64; 24]),
    /// 24 factors for Saturdays and Sundays (other days keep the hourly pattern).
    Weekend([f64; 24]),
}

/// Water put into a drainage node from outside the network: a constant or patterned
/// baseline, a recorded series, and dry-weather (sanitary) flow with its patterns.
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug, PartialEq, Default)]
pub struct NodeInflow {
    /// Constant inflow, m³/s.
    pub baseline_m3s: f64,
    /// Pattern on the baseline.
    pub baseline_pattern: Option<Pattern>,
    /// Recorded inflow, m³/s by time (s from the start).
    pub series: Option<Curve>,
    /// Average dry-weather flow, m³/s.
    pub dwf_m3s: f64,
    /// Its patterns (any of monthly, daily, hourly, weekend).
    pub dwf_patterns: Vec<Pattern>,
}

impl<N: Send + Sync + 'static> Conduit<N> {
    /// The same conduit between other node references (an entity ⇄ an index).
    pub fn with_nodes<M: Send + Sync + 'static>(&self, from: M, to: M) -> Conduit<M> {
        Conduit {
            from,
            to,
            section: self.section,
            length_m: self.length_m,
            manning_n: self.manning_n,
            inlet_offset_m: self.inlet_offset_m,
            outlet_offset_m: self.outlet_offset_m,
            barrels: self.barrels,
            losses: self.losses,
            flap_gate: self.flap_gate,
            init_flow_m3s: self.init_flow_m3s,
            max_flow_m3s: self.max_flow_m3s,
        }
    }
}

impl<N: Send + Sync + 'static> Pump<N> {
    /// The same pump between other node references.
    pub fn with_nodes<M: Send + Sync + 'static>(&self, from: M, to: M) -> Pump<M> {
        Pump {
            from,
            to,
            curve: self.curve.clone(),
            on: self.on,
            startup_depth_m: self.startup_depth_m,
            shutoff_depth_m: self.shutoff_depth_m,
        }
    }
}

impl<N: Send + Sync + 'static> Orifice<N> {
    /// The same orifice between other node references.
    pub fn with_nodes<M: Send + Sync + 'static>(&self, from: M, to: M) -> Orifice<M> {
        Orifice {
            from,
            to,
            section: self.section,
            bottom: self.bottom,
            offset_m: self.offset_m,
            discharge_coeff: self.discharge_coeff,
            flap_gate: self.flap_gate,
        }
    }
}

impl<N: Send + Sync + 'static> Weir<N> {
    /// The same weir between other node references.
    pub fn with_nodes<M: Send + Sync + 'static>(&self, from: M, to: M) -> Weir<M> {
        Weir {
            from,
            to,
            kind: self.kind,
            crest_m: self.crest_m,
            height_m: self.height_m,
            length_m: self.length_m,
            side_slope: self.side_slope,
            discharge_coeff: self.discharge_coeff,
            end_coeff: self.end_coeff,
            end_contractions: self.end_contractions,
            flap_gate: self.flap_gate,
            can_surcharge: self.can_surcharge,
        }
    }
}

impl<O: Send + Sync + 'static> Subcatchment<O> {
    /// The same subcatchment draining to another outlet reference.
    pub fn with_outlet<P: Send + Sync + 'static>(&self, outlet: P) -> Subcatchment<P> {
        Subcatchment {
            outlet,
            gauge: self.gauge.clone(),
            area_m2: self.area_m2,
            imperv_frac: self.imperv_frac,
            width_m: self.width_m,
            slope: self.slope,
            n_imperv: self.n_imperv,
            n_perv: self.n_perv,
            ds_imperv_m: self.ds_imperv_m,
            ds_perv_m: self.ds_perv_m,
            frac_zero_ds: self.frac_zero_ds,
            route_to: self.route_to,
            frac_routed: self.frac_routed,
            infiltration: self.infiltration,
        }
    }
}
