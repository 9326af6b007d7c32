//! The 1D drainage network: EPA SWMM 5.2's hydrology and hydraulics, in Rust and SI units.
//!
//! - [`spec`]: what a network is made of (the engine's drainage components, indexed);
//! - [`inp`]: SWMM `.inp` files into a spec, with errors naming file, line and section;
//! - [`xsect`]: cross-section geometry (SWMM's circular tables, analytic open shapes);
//! - [`network`]: nodes and links as the solver holds them, initialised as SWMM does;
//! - `dynwave`/`kinwave`: dynamic-wave (Picard iterations, EXTRAN surcharge, variable step)
//!   and kinematic-wave routing;
//! - `regulators`: pumps, orifices and weirs;
//! - [`runoff`]: subcatchments (nonlinear reservoirs, infiltration);
//! - [`Drainage`]: the time loop — runoff ahead of routing, lateral inflows evaluated at the
//!   start of each routing step, a routing continuity kept as SWMM keeps it, per-node and
//!   per-link statistics — and the hooks the 2D surface couples through
//!   ([`Drainage::set_surface_inflow`], [`Drainage::spills_m3s`]).
//!
//! Where SWMM's constants are tied to feet (its tolerances, 32.2 ft/s² for gravity, 1.486 and
//! 1.49 in Manning's equation) they are converted exactly, so results match SWMM's own.

pub mod dynwave;
pub mod inp;
pub mod kinwave;
pub mod network;
pub mod regulators;
pub mod report;
pub mod runoff;
pub mod spec;
pub mod world;
pub mod xsect;

use network::{LinkType, Network};
use runoff::{Runoff, RunoffTotals};
use spec::{NetworkSpec, Pattern, Routing};

/// One foot, m.
pub const FT: f64 = 0.3048;
/// SWMM's gravity, 32.2 ft/s², in m/s².
pub const G: f64 = 32.2 * FT;
/// Manning's constant in SI for SWMM's 1.486 in US units (1.486·ft^{1/3}).
pub(crate) const MANNING: f64 = 1.000_054_796_073_602;
/// SWMM's FUDGE as a depth (0.0001 ft), m.
pub(crate) const FUDGE: f64 = 0.0001 * FT;
/// SWMM's FUDGE as an area (0.0001 ft²), m².
pub(crate) const FUDGE_A: f64 = 0.0001 * FT * FT;
/// SWMM's FUDGE as a flow (0.0001 cfs), m³/s.
pub(crate) const FUDGE_Q: f64 = 0.0001 * FT * FT * FT;
/// SWMM's FLOW_TOL (1e-5 cfs), m³/s.
const FLOW_TOL: f64 = 1e-5 * FT * FT * FT;
pub(crate) const TINY: f64 = 1e-6;

/// What can go wrong building or running a network.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DrainageError {
    /// The network cannot be built as given.
    #[error("drainage network: {0}")]
    Invalid(String),
}

/// Volumes through the network since the start, m³ (SWMM's flow routing continuity).
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct RoutingTotals {
    /// Dry-weather inflow.
    pub dry_weather_m3: f64,
    /// Runoff from subcatchments.
    pub wet_weather_m3: f64,
    /// External inflows (and backflow through outfalls).
    pub external_m3: f64,
    /// Water taken in from the 2D surface through inlets.
    pub surface_in_m3: f64,
    /// Out through outfalls.
    pub outflow_m3: f64,
    /// Over the rims of nodes (flooding; back onto the surface when coupled).
    pub flooding_m3: f64,
    /// Evaporated from storage units.
    pub evaporation_m3: f64,
    /// In the network at the start.
    pub initial_storage_m3: f64,
}

impl RoutingTotals {
    fn add(&mut self, r: &StepRates, dt: f64) {
        self.dry_weather_m3 += r.dry_weather * dt;
        self.wet_weather_m3 += r.wet_weather * dt;
        self.external_m3 += r.external * dt;
        self.surface_in_m3 += r.surface_in * dt;
        self.outflow_m3 += r.outflow * dt;
        self.flooding_m3 += r.flooding * dt;
        self.evaporation_m3 += r.evaporation * dt;
    }

    /// Everything that came in, m³.
    pub fn inflow_m3(&self) -> f64 {
        self.dry_weather_m3
            + self.wet_weather_m3
            + self.external_m3
            + self.surface_in_m3
            + self.initial_storage_m3
    }
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, Default)]
struct StepRates {
    dry_weather: f64,
    wet_weather: f64,
    external: f64,
    surface_in: f64,
    outflow: f64,
    flooding: f64,
    evaporation: f64,
}

/// Per-node figures over the run.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct NodeStats {
    /// Deepest water, m.
    pub max_depth_m: f64,
    /// Water over the rim, m³.
    pub flooded_m3: f64,
    /// Time spent flooding, s.
    pub flooded_s: f64,
    /// Time with water above the highest crown, s.
    pub surcharged_s: f64,
}

/// Per-link figures over the run.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkStats {
    /// Largest |flow|, m³/s.
    pub peak_flow_m3s: f64,
    /// Time full at both ends (conduits), s.
    pub full_s: f64,
}

/// A drainage model running in time.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct Drainage {
    /// The network.
    pub net: Network,
    /// Subcatchments.
    pub runoff: Runoff,
    spec_gauges: Vec<spec::GaugeSpec>,
    patterns_dwf: Vec<Vec<Pattern>>,
    /// Whether any inflow follows a pattern (the calendar is needed).
    has_patterns: bool,
    /// Routing time, ms since the start.
    t_ms: i64,
    old_runoff_ms: i64,
    new_runoff_ms: i64,
    duration_ms: i64,
    routing_step_s: f64,
    variable_step_s: f64,
    wet_step_s: f64,
    dry_step_s: f64,
    /// Inflow from the surface per node for the coming steps, m³/s (set by a coupling).
    surface_inflow: Vec<f64>,
    /// Water spilled over each node's rim since the last [`Self::take_spills`], m³.
    spilled_m3: Vec<f64>,
    /// Rain given from outside (uniform, and per gauge), m/s; none: the gauges' own series.
    external_rain: Option<(f64, Vec<f64>)>,
    rates: StepRates,
    /// Routing continuity.
    pub totals: RoutingTotals,
    /// Per-node statistics.
    pub node_stats: Vec<NodeStats>,
    /// Per-link statistics.
    pub link_stats: Vec<LinkStats>,
    /// Routing steps taken.
    pub steps: u64,
    /// Routing steps whose iterations did not converge.
    pub non_converged: u64,
    /// Sum of iterations.
    pub iterations: u64,
    /// Shortest and longest routing steps, s.
    pub step_range_s: (f64, f64),
}

impl Drainage {
    /// A model ready to run from the start of `spec`.
    pub fn new(spec: &NetworkSpec) -> Result<Self, DrainageError> {
        let net = Network::new(spec)?;
        let gauge_of = |name: &Option<String>| -> Result<usize, DrainageError> {
            match name {
                None => Ok(usize::MAX),
                Some(n) => spec
                    .gauges
                    .iter()
                    .position(|g| &g.name == n)
                    .ok_or_else(|| {
                        DrainageError::Invalid(format!("rain gauge `{n}` is not defined"))
                    }),
            }
        };
        let gauges: Vec<usize> = spec
            .subcatchments
            .iter()
            .map(|s| gauge_of(&s.params.gauge))
            .collect::<Result<_, _>>()?;
        let runoff = Runoff::new(&spec.subcatchments, &gauges);
        let o = &spec.options;
        // SWMM's step rules: the wet step no longer than a used gauge's interval; the dry step
        // at least the wet step; routing at most the wet step.
        let mut wet = o.wet_step_s.max(1.0);
        for (k, g) in spec.gauges.iter().enumerate() {
            if gauges.contains(&k) && g.interval_s < wet {
                wet = g.interval_s;
            }
        }
        let dry = o.dry_step_s.max(wet);
        let routing = o.routing_step_s.min(wet);
        let nn = net.nodes.len();
        let nl = net.links.len();
        let initial = net.stored_m3();
        let patterns_dwf = net
            .nodes
            .iter()
            .map(|n| {
                n.inflow_def
                    .as_ref()
                    .map(|f| f.dwf_patterns.clone())
                    .unwrap_or_default()
            })
            .collect();
        let has_patterns = net.nodes.iter().any(|n| {
            n.inflow_def
                .as_ref()
                .is_some_and(|f| f.baseline_pattern.is_some() || !f.dwf_patterns.is_empty())
        });
        let mut d = Self {
            has_patterns,
            net,
            runoff,
            spec_gauges: spec.gauges.clone(),
            patterns_dwf,
            t_ms: 0,
            old_runoff_ms: 0,
            new_runoff_ms: 0,
            duration_ms: (o.duration_s.floor() * 1000.0) as i64,
            routing_step_s: routing,
            variable_step_s: 0.0,
            wet_step_s: wet,
            dry_step_s: dry,
            surface_inflow: vec![0.0; nn],
            spilled_m3: vec![0.0; nn],
            external_rain: None,
            rates: StepRates::default(),
            totals: RoutingTotals {
                initial_storage_m3: initial,
                ..Default::default()
            },
            node_stats: vec![NodeStats::default(); nn],
            link_stats: vec![LinkStats::default(); nl],
            steps: 0,
            non_converged: 0,
            iterations: 0,
            step_range_s: (f64::INFINITY, 0.0),
        };
        for (i, n) in d.net.nodes.iter().enumerate() {
            d.node_stats[i].max_depth_m = n.new_depth;
        }
        Ok(d)
    }

    /// Seconds since the start.
    pub fn elapsed_s(&self) -> f64 {
        self.t_ms as f64 / 1000.0
    }

    /// Whether the model's own duration has been run.
    pub fn finished(&self) -> bool {
        self.t_ms >= self.duration_ms
    }

    /// Run to the end of the model's duration.
    pub fn run(&mut self) {
        let end = self.duration_ms;
        self.advance_to_ms(end);
    }

    /// Advance to `t_s` seconds after the start (routing steps are cut to land on it).
    pub fn advance_to(&mut self, t_s: f64) {
        self.advance_to_ms((t_s * 1000.0).round() as i64);
    }

    fn advance_to_ms(&mut self, end_ms: i64) {
        while self.t_ms < end_ms {
            let mut dt = self.next_routing_step();
            let next = self.t_ms + (dt * 1000.0).round() as i64;
            let next = if next > end_ms {
                dt = ((end_ms - self.t_ms) as f64 / 1000.0).max(0.001);
                end_ms
            } else {
                next
            };
            // Runoff runs ahead of routing.
            while !self.runoff.catchments.is_empty()
                && self.new_runoff_ms < next
                && self.new_runoff_ms < self.duration_ms.max(end_ms)
            {
                self.runoff_step();
            }
            self.routing_step(dt, next);
        }
    }

    fn next_routing_step(&self) -> f64 {
        match self.net.options.routing {
            Routing::Dynamic => {
                let mut v = self.variable_step_s;
                self.net.dw_routing_step(self.routing_step_s, &mut v)
            }
            Routing::Kinematic => self.routing_step_s,
        }
    }

    fn runoff_step(&mut self) {
        let now_s = self.new_runoff_ms as f64 / 1000.0;
        // Rain is looked up a second into the step (as SWMM does, against round-off).
        let probe = now_s + 1.001;
        let raining = match &self.external_rain {
            Some((u, g)) => *u > 0.0 || g.iter().any(|&v| v > 0.0),
            None => self
                .runoff
                .catchments
                .iter()
                .filter_map(|c| c.gauge)
                .any(|g| self.spec_gauges[g].intensity_at(probe) > 0.0),
        };
        let mut max_step = self.dry_step_s;
        for (k, g) in self.spec_gauges.iter().enumerate() {
            if !self.runoff.catchments.iter().any(|c| c.gauge == Some(k)) {
                continue;
            }
            let next = g.next_change_s(probe);
            if next.is_finite() {
                let d = next.round() - now_s.round();
                if d > 0.0 && d < max_step {
                    max_step = d;
                }
            }
        }
        let step = if raining || self.runoff.has_runoff {
            self.wet_step_s
        } else {
            self.dry_step_s
        };
        let mut dt = step.min(max_step);
        self.old_runoff_ms = self.new_runoff_ms;
        self.new_runoff_ms += (dt * 1000.0).round() as i64;
        if self.new_runoff_ms > self.duration_ms {
            dt = (self.duration_ms - self.old_runoff_ms) as f64 / 1000.0;
            self.new_runoff_ms = self.duration_ms;
        }
        if dt <= 0.0 {
            self.new_runoff_ms = self.old_runoff_ms + 1000;
            return;
        }
        let gauges = &self.spec_gauges;
        let evap = self.net.options.evaporation_mps;
        match &self.external_rain {
            Some((uniform, by_gauge)) => self.runoff.step(dt, evap, |g| {
                uniform + g.and_then(|g| by_gauge.get(g).copied()).unwrap_or(0.0)
            }),
            None => self.runoff.step(dt, evap, |g| {
                g.map_or(0.0, |g| gauges[g].intensity_at(probe))
            }),
        }
    }

    /// Lateral inflows of this step: external, dry weather, runoff, surface inlets.
    fn lateral_inflows(&mut self) -> StepRates {
        let t_s = self.t_ms as f64 / 1000.0 + 0.001;
        let (month0, dow0, hour) = if self.has_patterns {
            calendar(self.net.options.start_epoch_s + t_s)
        } else {
            (0, 0, 0)
        };
        let mut r = StepRates::default();
        for (i, n) in self.net.nodes.iter_mut().enumerate() {
            n.old_lat_flow = n.new_lat_flow;
            n.new_lat_flow = 0.0;
            if let Some(f) = &n.inflow_def {
                let mut q = 0.0;
                if let Some(s) = &f.series {
                    q += series_zero_outside(s, t_s);
                }
                q += f.baseline_m3s
                    * f.baseline_pattern
                        .as_ref()
                        .map_or(1.0, |p| factor(p, month0, dow0, hour));
                if q.abs() < FLOW_TOL {
                    q = 0.0;
                }
                n.new_lat_flow += q;
                r.external += q;
                if f.dwf_m3s != 0.0 {
                    let q = dwf(f.dwf_m3s, &self.patterns_dwf[i], month0, dow0, hour);
                    let q = if q.abs() < FLOW_TOL { 0.0 } else { q };
                    n.new_lat_flow += q;
                    r.dry_weather += q;
                }
            }
            let s = self.surface_inflow[i];
            if s != 0.0 {
                n.new_lat_flow += s;
                r.surface_in += s;
            }
        }
        if !self.runoff.catchments.is_empty() {
            let span = (self.new_runoff_ms - self.old_runoff_ms) as f64;
            let f = if span > 0.0 {
                ((self.t_ms - self.old_runoff_ms) as f64 / span).clamp(0.0, 1.0)
            } else {
                1.0
            };
            for c in &self.runoff.catchments {
                if let spec::Outlet::Node(k) = c.outlet {
                    let q = c.weighted_outflow(f);
                    self.net.nodes[k].new_lat_flow += q;
                    r.wet_weather += q;
                }
            }
        }
        r
    }

    fn routing_step(&mut self, dt: f64, next_ms: i64) {
        // Continuity over the first half of the step with last step's rates.
        let prev = self.rates;
        self.totals.add(&prev, dt / 2.0);
        self.net.set_pump_targets();
        let mut rates = self.lateral_inflows();
        // Evaporation from storage units.
        let evap = self.net.options.evaporation_mps;
        for n in &mut self.net.nodes {
            n.losses = 0.0;
            if evap > 0.0 && n.is_storage() && n.evap_factor > 0.0 {
                let loss = n.evap_factor * evap * n.surf_area(n.new_depth);
                n.losses = loss.min(n.new_volume / dt).max(0.0);
                rates.evaporation += n.losses;
            }
        }
        // Old state from the new.
        for l in &mut self.net.links {
            l.old_flow = l.new_flow;
            l.old_volume = l.new_volume;
        }
        for n in &mut self.net.nodes {
            n.old_depth = n.new_depth;
            n.old_volume = n.new_volume;
            n.old_net_inflow = n.inflow - n.outflow;
            n.inflow = n.new_lat_flow;
            n.outflow = n.losses;
            n.overflow = 0.0;
            if !n.is_storage() && n.new_volume > n.full_volume {
                n.overflow = (n.new_volume - n.full_volume) / dt;
            }
        }
        let elapsed_end = next_ms as f64 / 1000.0;
        let (iters, converged) = match self.net.options.routing {
            Routing::Dynamic => self.net.dw_execute(dt, elapsed_end),
            Routing::Kinematic => (self.net.kw_execute(dt, elapsed_end), true),
        };
        self.iterations += iters as u64;
        if !converged {
            self.non_converged += 1;
        }
        // SWMM starts its variable step at the minimum and from then on derives it from the
        // flows; only "started or not" carries over.
        self.variable_step_s = dt;
        // Outflows and flooding.
        for (i, n) in self.net.nodes.iter_mut().enumerate() {
            if n.is_outfall() {
                let q = if n.outflow == 0.0 {
                    n.inflow
                } else if n.inflow == 0.0 {
                    -n.outflow
                } else {
                    0.0
                };
                n.overflow = 0.0;
                n.new_volume = 0.0;
                if q > 0.0 {
                    rates.outflow += q;
                } else {
                    rates.external -= q;
                }
            } else if n.new_volume <= n.full_volume && n.overflow > 0.0 {
                rates.flooding += n.overflow;
                self.spilled_m3[i] += n.overflow * dt;
                let st = &mut self.node_stats[i];
                st.flooded_m3 += n.overflow * dt;
                st.flooded_s += dt;
            }
        }
        self.rates = rates;
        self.totals.add(&rates, dt / 2.0);
        if self.net.options.routing == Routing::Dynamic {
            // An outfall has no continuity of its own in SWMM's dynamic wave: the half of its
            // conduit next to it fills and drains outside every node's equation. It keeps its
            // water here — what leaves is the conduit's flow less the change in that half.
            for l in &self.net.links {
                if l.is_conduit()
                    && (self.net.nodes[l.node1].is_outfall()
                        || self.net.nodes[l.node2].is_outfall())
                {
                    self.totals.outflow_m3 -= 0.5 * (l.new_volume - l.old_volume);
                }
            }
        }
        self.t_ms = next_ms;
        self.steps += 1;
        self.step_range_s.0 = self.step_range_s.0.min(dt);
        self.step_range_s.1 = self.step_range_s.1.max(dt);
        for (i, n) in self.net.nodes.iter().enumerate() {
            let st = &mut self.node_stats[i];
            st.max_depth_m = st.max_depth_m.max(n.new_depth);
            if n.new_depth > n.crown_elev - n.invert + FUDGE && !n.is_outfall() {
                st.surcharged_s += dt;
            }
        }
        for (j, l) in self.net.links.iter().enumerate() {
            let st = &mut self.link_stats[j];
            st.peak_flow_m3s = st.peak_flow_m3s.max(l.new_flow.abs());
            if let LinkType::Conduit(c) = &l.kind
                && c.a1 >= c.xs.a_full * 0.999
            {
                st.full_s += dt;
            }
        }
    }

    /// Water the surface gives node `i` through its inlet over the coming steps, m³/s
    /// (negative: taken out of the node, as a spill is).
    pub fn set_surface_inflow(&mut self, i: usize, q_m3s: f64) {
        self.surface_inflow[i] = q_m3s;
    }

    /// The water each node has spilled over its rim since the last call, m³ (what a coupled
    /// surface takes back).
    pub fn take_spills(&mut self) -> Vec<f64> {
        let out = self.spilled_m3.clone();
        self.spilled_m3.iter_mut().for_each(|v| *v = 0.0);
        out
    }

    /// Rain on the subcatchments from outside the model from now on: `uniform_mps` everywhere
    /// plus `by_gauge_mps[k]` on those of gauge `k` (in [`NetworkSpec::gauges`] order).
    pub fn set_rain(&mut self, uniform_mps: f64, by_gauge_mps: &[f64]) {
        match &mut self.external_rain {
            Some((u, g)) => {
                *u = uniform_mps;
                g.clear();
                g.extend_from_slice(by_gauge_mps);
            }
            None => self.external_rain = Some((uniform_mps, by_gauge_mps.to_vec())),
        }
    }

    /// Water in the network now, m³.
    pub fn stored_m3(&self) -> f64 {
        self.net.stored_m3()
    }

    /// The rain gauges' names, in the order [`Self::set_rain`] takes them.
    pub fn gauge_names(&self) -> Vec<&str> {
        self.spec_gauges.iter().map(|g| g.name.as_str()).collect()
    }

    /// SWMM's flow-routing continuity error: (in − out − stored) / in, percent.
    pub fn continuity_error_pct(&self) -> f64 {
        let t = &self.totals;
        let inflow = t.inflow_m3();
        let out = t.outflow_m3 + t.flooding_m3 + t.evaporation_m3 + self.stored_m3();
        if inflow > 0.0 {
            100.0 * (inflow - out) / inflow
        } else {
            0.0
        }
    }

    /// Runoff continuity (with the water left on the subcatchments now).
    pub fn runoff_totals(&self) -> RunoffTotals {
        let mut t = self.runoff.totals;
        t.final_storage_m3 = self.runoff.stored_m3();
        t
    }
}

/// A time series read as SWMM reads external inflows: linear, zero outside its times.
fn series_zero_outside(s: &spec::Curve, t: f64) -> f64 {
    match (s.points.first(), s.points.last()) {
        (Some(a), Some(b)) if t >= a.0 && t <= b.0 => s.at(t),
        _ => 0.0,
    }
}

/// Month (0–11), day of week (0 Sunday – 6) and hour (0–23) of a local time in s since 1970.
fn calendar(epoch_s: f64) -> (usize, usize, usize) {
    let days = (epoch_s / 86_400.0).floor() as i64;
    let secs = epoch_s - days as f64 * 86_400.0;
    let hour = ((secs / 3600.0).floor() as usize).min(23);
    let dow = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    ((m - 1) as usize, dow, hour)
}

fn factor(p: &Pattern, month0: usize, dow0: usize, hour: usize) -> f64 {
    match p {
        Pattern::Monthly(f) => f[month0],
        Pattern::Daily(f) => f[dow0],
        Pattern::Hourly(f) => f[hour],
        Pattern::Weekend(f) => {
            if dow0 == 0 || dow0 == 6 {
                f[hour]
            } else {
                1.0
            }
        }
    }
}

fn dwf(avg: f64, patterns: &[Pattern], month0: usize, dow0: usize, hour: usize) -> f64 {
    let find = |want: fn(&Pattern) -> bool| patterns.iter().find(|p| want(p));
    let m =
        find(|p| matches!(p, Pattern::Monthly(_))).map_or(1.0, |p| factor(p, month0, dow0, hour));
    let d = find(|p| matches!(p, Pattern::Daily(_))).map_or(1.0, |p| factor(p, month0, dow0, hour));
    let hourly = find(|p| matches!(p, Pattern::Hourly(_)));
    let h = match find(|p| matches!(p, Pattern::Weekend(_))) {
        Some(w) if dow0 == 0 || dow0 == 6 => factor(w, month0, dow0, hour),
        _ => hourly.map_or(1.0, |p| factor(p, month0, dow0, hour)),
    };
    avg * m * d * h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_of_known_dates() {
        // 2015-11-01 14:00 was a Sunday.
        let t = (16_740.0) * 86_400.0 + 14.0 * 3600.0;
        assert_eq!(calendar(t), (10, 0, 14));
        assert_eq!(calendar(0.0), (0, 4, 0));
    }
}
