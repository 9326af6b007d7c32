//! Flow through pumps, orifices and weirs from the heads at their ends (SWMM 5.2's
//! `link_getInflow`), with the derivative of flow by head that the dynamic wave's surcharge
//! algorithm needs. SI throughout; weir coefficients are m^½/s.

use super::network::{FlowClass, LinkType, Network, NodeType, OrificeX, WeirX};
use super::spec::{PumpCurve, WeirKind};
use super::{FUDGE, G, TINY};

/// Weir flow for a head (m) over its crest: the rectangular and triangular parts (m³/s),
/// before any submergence correction.
pub(crate) fn weir_flow(w: &WeirX, head: f64, dir: f64, setting: f64) -> (f64, f64) {
    weir_flow_dqdh(w, head, dir, setting).0
}

fn weir_flow_dqdh(w: &WeirX, head: f64, dir: f64, setting: f64) -> ((f64, f64), f64) {
    if head <= 0.0 {
        return ((0.0, 0.0), 0.0);
    }
    let h = head;
    let q1;
    let mut q2 = 0.0;
    let mut kind = w.kind;
    if kind == WeirKind::VNotch && setting < 1.0 {
        kind = WeirKind::Trapezoidal;
    }
    let dqdh;
    match kind {
        WeirKind::Transverse => {
            let le = (w.length - 0.1 * w.end_con * h).max(0.0);
            q1 = w.cd1 * le * h * h.sqrt();
            dqdh = 1.5 * q1 / h;
        }
        WeirKind::Sideflow => {
            let le = (w.length - 0.1 * w.end_con * h).max(0.0);
            if dir < 0.0 {
                q1 = w.cd1 * le * h * h.sqrt();
                dqdh = 1.5 * q1 / h;
            } else {
                // Exponents sum to 2.5, so the coefficient converts like the others' (× ft^½).
                q1 = w.cd1 * le.powf(0.83) * h.powf(1.67);
                dqdh = 1.67 * q1 / h;
            }
        }
        WeirKind::VNotch => {
            q1 = w.cd1 * w.slope * h * h * h.sqrt();
            dqdh = 2.5 * q1 / h;
        }
        WeirKind::Trapezoidal => {
            // Bottom width at the (lowered) crest of a partly closed weir.
            let lb = w.length + 2.0 * w.slope * (1.0 - setting) * w.height;
            q1 = w.cd1 * lb * h * h.sqrt();
            q2 = w.cd2 * w.slope * h * h * h.sqrt();
            dqdh = 1.5 * q1 / h + 2.5 * q2 / h;
        }
    }
    let dqdh = if h < FUDGE { 0.0 } else { dqdh };
    ((q1, q2), dqdh)
}

impl Network {
    /// Flow into non-conduit link `j` from its upstream node at the current heads (m³/s,
    /// signed), setting its `dqdh`, depth and flow class.
    pub(crate) fn regulator_inflow(&mut self, j: usize) -> f64 {
        self.regulator_inflow_at(j, None)
    }

    /// As [`Self::regulator_inflow`], with the downstream head replaced by `tail` (m).
    pub(crate) fn regulator_inflow_at(&mut self, j: usize, tail: Option<f64>) -> f64 {
        let l = &self.links[j];
        let (n1, n2) = (l.node1, l.node2);
        let h1 = self.nodes[n1].invert + self.nodes[n1].new_depth;
        let h2 = tail.unwrap_or(self.nodes[n2].invert + self.nodes[n2].new_depth);
        match &self.links[j].kind {
            LinkType::Pump(_) => self.pump_inflow(j),
            LinkType::Orifice(_) => self.orifice_inflow(j, h1, h2),
            LinkType::Weir(_) => self.weir_inflow(j, h1, h2),
            LinkType::Conduit(_) => 0.0,
        }
    }

    fn pump_inflow(&mut self, j: usize) -> f64 {
        let l = &self.links[j];
        let LinkType::Pump(p) = &l.kind else {
            return 0.0;
        };
        let setting = l.setting;
        let (n1, n2) = (l.node1, l.node2);
        let mut dqdh = 0.0;
        let q = if setting == 0.0 {
            0.0
        } else {
            let node1 = &self.nodes[n1];
            match &p.curve {
                PumpCurve::Ideal => node1.inflow + node1.overflow,
                PumpCurve::Volume(c) => interval_lookup(c, node1.new_volume),
                PumpCurve::DepthSteps(c) => interval_lookup(c, node1.new_depth),
                PumpCurve::Head(c) => {
                    let head = ((self.nodes[n2].invert + self.nodes[n2].new_depth)
                        - (node1.invert + node1.new_depth))
                        .max(0.0);
                    dqdh = -slope_at(c, head);
                    c.at(head)
                }
                PumpCurve::Depth(c) => {
                    let d = node1.new_depth;
                    let q = c.at(d);
                    dqdh = (c.at(d + 0.001 * super::FT) - q) / (0.001 * super::FT);
                    q
                }
            }
        };
        self.links[j].dqdh = dqdh;
        q.max(0.0) * setting
    }

    fn orifice_inflow(&mut self, j: usize, mut h1: f64, mut h2: f64) -> f64 {
        let (n1, n2) = (self.links[j].node1, self.links[j].node2);
        let inv1 = self.nodes[n1].invert;
        let setting = self.links[j].setting;
        let flap = self.links[j].flap_gate;
        let offset1 = self.links[j].offset1;
        let LinkType::Orifice(o) = &self.links[j].kind else {
            return 0.0;
        };
        let o = o.clone();
        let dir = if h1 >= h2 { 1.0 } else { -1.0 };
        let mut y_up = self.nodes[n1].new_depth;
        if dir < 0.0 {
            std::mem::swap(&mut h1, &mut h2);
            y_up = self.nodes[n2].new_depth;
        }
        let hcrest = inv1 + offset1;
        let (head, f) = if o.bottom {
            let head = if h1 < hcrest {
                0.0
            } else if h2 > hcrest {
                h1 - h2
            } else {
                h1 - hcrest
            };
            let f = if o.h_crit > 0.0 {
                (head / o.h_crit).min(1.0)
            } else {
                1.0
            };
            (head, f)
        } else {
            let hcrown = hcrest + o.xs.y_full * setting;
            let hmid = 0.5 * (hcrest + hcrown);
            let f = if h1 < hcrown && hcrown > hcrest {
                (h1 - hcrest) / (hcrown - hcrest)
            } else {
                1.0
            };
            let head = if f < 1.0 {
                h1 - hcrest
            } else if h2 < hmid {
                h1 - hmid
            } else {
                h1 - h2
            };
            (head, f)
        };
        let gate_closed = self.flap_gate_closed(j, dir, flap);
        let link = &mut self.links[j];
        if head <= FUDGE || y_up <= FUDGE || gate_closed {
            link.new_depth = 0.0;
            link.flow_class = FlowClass::Dry;
            if let LinkType::Orifice(ox) = &mut link.kind {
                ox.surf_area = FUDGE * ox.length;
            }
            link.dqdh = 0.0;
            return 0.0;
        }
        link.flow_class = if hcrest > h2 {
            if dir > 0.0 {
                FlowClass::DnCritical
            } else {
                FlowClass::UpCritical
            }
        } else {
            FlowClass::Subcritical
        };
        let y_open = o.xs.y_full * setting;
        if let LinkType::Orifice(ox) = &mut link.kind {
            if o.bottom {
                link.new_depth = y_open;
                ox.surf_area = o.xs.a_of_y(y_open);
            } else {
                link.new_depth = y_open * f;
                ox.surf_area = o.xs.w_of_y(link.new_depth) * o.length;
            }
        }
        let (mut q, dqdh) = orifice_flow(&o, head, f, flap, setting);
        link.dqdh = dqdh;
        if f < 1.0 && h2 > hcrest {
            let r = (h2 - hcrest) / (h1 - hcrest);
            q *= (1.0 - r.powf(1.5)).max(0.0).powf(0.385);
        }
        dir * q
    }

    fn weir_inflow(&mut self, j: usize, mut h1: f64, mut h2: f64) -> f64 {
        let (n1, _) = (self.links[j].node1, self.links[j].node2);
        let inv1 = self.nodes[n1].invert;
        let setting = self.links[j].setting;
        let flap = self.links[j].flap_gate;
        let offset1 = self.links[j].offset1;
        let LinkType::Weir(w) = &self.links[j].kind else {
            return 0.0;
        };
        let w = w.clone();
        let dir = if h1 > h2 { 1.0 } else { -1.0 };
        if dir < 0.0 {
            std::mem::swap(&mut h1, &mut h2);
        }
        let mut hcrest = inv1 + offset1;
        let hcrown = hcrest + w.height;
        hcrest += (1.0 - setting) * w.height;
        let mut head = h1 - hcrest;
        let gate_closed = self.flap_gate_closed(j, dir, flap);
        let link = &mut self.links[j];
        link.dqdh = 0.0;
        if head <= FUDGE || hcrest >= hcrown || gate_closed {
            link.new_depth = 0.0;
            link.flow_class = FlowClass::Dry;
            return 0.0;
        }
        link.flow_class = if hcrest > h2 {
            if dir > 0.0 {
                FlowClass::DnCritical
            } else {
                FlowClass::UpCritical
            }
        } else {
            FlowClass::Subcritical
        };
        if h1 >= hcrown {
            if w.can_surcharge {
                let ym = 0.5 * (hcrest + hcrown);
                let mut hd = if h2 < ym { h1 - ym } else { h1 - h2 };
                let y_open = hcrown - hcrest;
                let mut q = w.c_surcharge * hd.max(0.0).sqrt();
                if flap {
                    let a = weir_open_area(&w, y_open);
                    if a > 0.0 && y_open > 0.0 {
                        let v = q / a;
                        hd = (hd - 4.0 / G * v * v * (-1.15 * v / y_open.sqrt()).exp()).max(0.0);
                        q = w.c_surcharge * hd.sqrt();
                    }
                }
                link.dqdh = if hd > 0.0 { q / (2.0 * hd) } else { 0.0 };
                link.new_depth = y_open;
                return dir * q;
            }
            head = hcrown - hcrest;
        }
        let ((mut q1, mut q2), mut dqdh) = weir_flow_dqdh(&w, head, dir, setting);
        if flap {
            let z = (1.0 - setting) * w.height;
            let a = weir_open_area(&w, (z + head).min(w.height)) - weir_open_area(&w, z);
            if a > TINY {
                let v = (q1 + q2) / a;
                let hd = (head - 4.0 / G * v * v * (-1.15 * v / head.sqrt()).exp()).max(0.0);
                let r = weir_flow_dqdh(&w, hd, dir, setting);
                (q1, q2) = r.0;
                dqdh = r.1;
            }
        }
        link.dqdh = dqdh;
        if h2 > hcrest {
            let r = (h2 - hcrest) / (h1 - hcrest);
            let n = match w.kind {
                WeirKind::Transverse | WeirKind::Trapezoidal => 1.5,
                WeirKind::Sideflow => 5.0 / 3.0,
                WeirKind::VNotch => 2.5,
            };
            q1 *= (1.0 - r.powf(n)).max(0.0).powf(0.385);
            if q2 > 0.0 {
                q2 *= (1.0 - r.powf(2.5)).max(0.0).powf(0.385);
            }
        }
        link.new_depth = (h1 - hcrest).min(w.height);
        dir * (q1 + q2)
    }

    /// A flap gate on the link, or a gated outfall at its inflow end, stops flow in `dir`.
    pub(crate) fn flap_gate_closed(&self, j: usize, dir: f64, flap: bool) -> bool {
        let l = &self.links[j];
        if flap && dir * l.direction < 0.0 {
            return true;
        }
        let inflow_end = if dir < 0.0 { l.node2 } else { l.node1 };
        matches!(
            self.nodes[inflow_end].kind,
            NodeType::Outfall { gated: true, .. }
        )
    }

    /// SWMM's on/off switching of pumps by their inlet depth (once per routing step).
    pub(crate) fn set_pump_targets(&mut self) {
        for l in &mut self.links {
            if let LinkType::Pump(p) = &l.kind {
                let d = self.nodes[l.node1].new_depth;
                let mut target = l.setting;
                if p.y_off > 0.0 && l.setting > 0.0 && d < p.y_off {
                    target = 0.0;
                }
                if p.y_on > 0.0 && l.setting == 0.0 && d > p.y_on {
                    target = 1.0;
                }
                l.setting = target;
            }
        }
    }
}

/// Orifice flow for a head (m) and the submerged fraction `f` of its opening; (q, dq/dh).
fn orifice_flow(o: &OrificeX, head: f64, f: f64, gate: bool, setting: f64) -> (f64, f64) {
    let plain = |head: f64, f: f64| -> (f64, f64) {
        if head <= 0.0 || f <= 0.0 {
            return (0.0, 0.0);
        }
        if f < 1.0 {
            let q = o.c_weir * f * f.sqrt();
            (q, 1.5 * q / (f * o.h_crit))
        } else {
            let q = o.c_orif * head.sqrt();
            (q, q / (2.0 * head))
        }
    };
    let (q, dqdh) = plain(head, f);
    if !gate || q <= 0.0 {
        return (q, dqdh);
    }
    let a = o.xs.a_of_y(setting * o.xs.y_full);
    if a <= 0.0 {
        return (q, dqdh);
    }
    let v = q / a;
    let hl = 4.0 / G * v * v * (-1.15 * v / head.sqrt()).exp();
    if f < 1.0 {
        plain(head, (f - hl / o.h_crit).max(0.0))
    } else {
        plain((head - hl).max(0.0), f)
    }
}

/// Open area of a weir up to depth `y` above its crest, m².
fn weir_open_area(w: &WeirX, y: f64) -> f64 {
    let y = y.max(0.0);
    match w.kind {
        WeirKind::Transverse | WeirKind::Sideflow => w.length * y,
        WeirKind::VNotch => w.slope * y * y,
        WeirKind::Trapezoidal => (w.length + w.slope * y) * y,
    }
}

/// The y of the first point whose x is above `x` (SWMM's stepwise pump curves), or the last.
fn interval_lookup(c: &super::spec::Curve, x: f64) -> f64 {
    for &(px, py) in &c.points {
        if px > x {
            return py;
        }
    }
    c.points.last().map_or(0.0, |p| p.1)
}

/// Slope of the segment containing `x` (first/last segment outside).
fn slope_at(c: &super::spec::Curve, x: f64) -> f64 {
    let p = &c.points;
    if p.len() < 2 {
        return 0.0;
    }
    let k = p.partition_point(|q| q.0 < x).clamp(1, p.len() - 1);
    let (a, b) = (p[k - 1], p[k]);
    if b.0 > a.0 {
        (b.1 - a.1) / (b.0 - a.0)
    } else {
        0.0
    }
}
