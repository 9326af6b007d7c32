//! Kinematic-wave routing as EPA SWMM 5.2 does it: links upstream to downstream, each conduit
//! solving the weighted (θ = 0.6 in space and time) finite-difference continuity equation with
//! Manning's normal flow; storage units updated by successive approximation; no backwater.

use super::network::{LinkType, Network, NodeType};
use super::{FUDGE, FUDGE_Q, TINY};

const WX: f64 = 0.6;
const WT: f64 = 0.6;
const EPSIL: f64 = 0.001;
const STORAGE_OMEGA: f64 = 0.55;
const STORAGE_MAXITER: usize = 10;
const STORAGE_STOPTOL: f64 = 0.005 * super::FT;

impl Network {
    /// One kinematic-wave step of `dt` seconds; the mean number of iterations per link.
    pub fn kw_execute(&mut self, dt: f64, elapsed_end_s: f64) -> u32 {
        let mut updated = vec![false; self.nodes.len()];
        let sorted = self.sorted_links.clone();
        let mut steps = 0.0;
        for (pos, &j) in sorted.iter().enumerate() {
            let n1 = self.links[j].node1;
            if self.nodes[n1].is_storage() && !updated[n1] {
                self.update_storage_state(n1, pos, &sorted, dt);
                updated[n1] = true;
            }
            let qin = self.kw_link_inflow(j, dt);
            let (qin, qout, it) = self.kw_route(j, qin, dt);
            steps += it as f64;
            self.links[j].new_flow = qout;
            let (a, b) = (self.links[j].node1, self.links[j].node2);
            self.nodes[a].outflow += qin;
            self.nodes[b].inflow += qout;
        }
        for (i, done) in updated.into_iter().enumerate() {
            if self.nodes[i].is_storage() {
                if !done {
                    self.update_storage_state(i, sorted.len(), &sorted, dt);
                }
                continue;
            }
            let ponding = self.options.allow_ponding;
            let n = &mut self.nodes[i];
            let net = n.inflow - n.outflow - n.losses;
            n.new_volume = (n.old_volume + net * dt).max(0.0);
            if n.new_volume < FUDGE * FUDGE * FUDGE {
                n.new_volume = 0.0;
            }
            n.overflow = 0.0;
            let can_pond = ponding && n.ponded_area > 0.0;
            if n.new_volume > n.full_volume {
                n.overflow = (n.new_volume - n.old_volume.max(n.full_volume)) / dt;
                if n.overflow < FUDGE_Q {
                    n.overflow = 0.0;
                }
                if !can_pond {
                    n.new_volume = n.full_volume;
                }
            }
            n.new_depth = 0.0;
        }
        for j in 0..self.links.len() {
            self.kw_set_link_state(j);
        }
        for j in 0..self.links.len() {
            self.set_outfall_depth(j, elapsed_end_s);
        }
        if self.links.is_empty() {
            0
        } else {
            (steps / self.links.len() as f64 + 0.5) as u32
        }
    }

    /// Flow a link takes from its upstream node this step (SWMM's `getLinkInflow`).
    fn kw_link_inflow(&mut self, j: usize, dt: f64) -> f64 {
        let n1 = self.links[j].node1;
        let q = match &self.links[j].kind {
            LinkType::Conduit(c) => {
                if self.links[j].setting <= 0.0 {
                    0.0
                } else if self.nodes[n1].is_storage() {
                    let y = self.nodes[n1].new_depth - self.links[j].offset1;
                    if y <= 0.0 {
                        0.0
                    } else if y >= c.xs.y_full {
                        c.q_full * c.barrels
                    } else {
                        c.beta * c.xs.s_of_a(c.xs.a_of_y(y)) * c.barrels
                    }
                } else {
                    self.nodes[n1].inflow + self.nodes[n1].overflow
                }
            }
            LinkType::Pump(_) => self.regulator_inflow(j),
            _ => {
                if self.nodes[n1].is_storage() {
                    // Regulators see no tailwater under kinematic wave.
                    let tail = self.nodes[n1].invert;
                    self.regulator_inflow_at(j, Some(tail))
                } else {
                    0.0
                }
            }
        };
        let n = &self.nodes[n1];
        let q = if n.full_volume > 0.0 {
            q.min(n.inflow + n.old_volume / dt)
        } else {
            q
        };
        q.max(0.0)
    }

    /// Route `qin` through link `j`: (inflow taken, outflow, iterations).
    fn kw_route(&mut self, j: usize, qin_total: f64, dt: f64) -> (f64, f64, u32) {
        let LinkType::Conduit(c) = &mut self.links[j].kind else {
            return (qin_total, qin_total, 1);
        };
        let xs = c.xs;
        let q_full = c.q_full;
        let a_full = xs.a_full;
        if q_full <= 0.0 {
            return (qin_total, qin_total, 1);
        }
        let beta1 = c.beta / q_full;
        let q1 = c.q1 / q_full;
        let q2 = c.q2 / q_full;
        let mut qin = qin_total / c.barrels / q_full;
        let a1 = c.a1 / a_full;
        let a2 = c.a2 / a_full;
        let ain = if qin >= 1.0 {
            1.0
        } else {
            xs.a_of_s(qin / beta1) / a_full
        };
        let (qout, aout, it);
        if qin <= TINY && q2 <= TINY {
            qout = 0.0;
            aout = 0.0;
            it = 1;
        } else {
            let dxdt = c.length / dt * a_full / q_full;
            let dq = q2 - q1;
            let c1 = dxdt * WT / WX;
            let mut c2 = (1.0 - WT) * (ain - a1);
            c2 -= WT * a2;
            c2 *= dxdt / WX;
            c2 += (1.0 - WX) / WX * dq - qin;
            let f = |a: f64| beta1 * xs.s_of_a(a * a_full) + c1 * a + c2;
            let (a_sol, n) = solve_continuity(&xs, beta1, c1, c2, a2, qin, ain, f);
            aout = a_sol;
            it = n.max(1);
            qout = beta1 * xs.s_of_a(aout * a_full);
            if qin > 1.0 {
                qin = 1.0;
            }
        }
        c.q1 = qin * q_full;
        c.a1 = ain * a_full;
        c.q2 = qout * q_full;
        c.a2 = aout * a_full;
        let b = c.barrels;
        (c.q1 * b, c.q2 * b, it)
    }

    fn kw_set_link_state(&mut self, j: usize) {
        let l = &mut self.links[j];
        l.new_depth = 0.0;
        l.new_volume = 0.0;
        let LinkType::Conduit(c) = &mut l.kind else {
            return;
        };
        let a = 0.5 * (c.a1 + c.a2);
        l.new_volume = a * c.length * c.barrels;
        let y1 = c.xs.y_of_a(c.a1);
        let y2 = c.xs.y_of_a(c.a2);
        l.new_depth = 0.5 * (y1 + y2);
        c.capacity_limited = c.a1 >= c.xs.a_full;
        let (n1, n2, o1, o2) = (l.node1, l.node2, l.offset1, l.offset2);
        self.kw_update_node_depth(n1, y1 + o1);
        self.kw_update_node_depth(n2, y2 + o2);
    }

    fn kw_update_node_depth(&mut self, i: usize, y: f64) {
        let n = &mut self.nodes[i];
        if n.is_storage() {
            return;
        }
        let mut y = y;
        if !n.is_outfall() && n.degree > 0 && n.overflow > 0.0 {
            y = n.full_depth;
        }
        if n.new_depth < y {
            n.new_depth = y;
            if n.full_depth > 0.0 && y > n.full_depth {
                n.new_depth = n.full_depth;
            }
        }
    }

    /// Storage by successive approximation with its outflows (SWMM's `updateStorageState`).
    fn update_storage_state(&mut self, i: usize, pos: usize, sorted: &[usize], dt: f64) {
        let ponding = self.options.allow_ponding;
        let v_fixed = {
            let n = &self.nodes[i];
            n.old_volume + 0.5 * (n.old_net_inflow + n.inflow - n.outflow) * dt
        };
        let mut d1 = self.nodes[i].new_depth;
        let mut iter = 1;
        loop {
            if iter >= STORAGE_MAXITER {
                break;
            }
            let mut out = 0.0;
            for &m in &sorted[pos.min(sorted.len())..] {
                if self.links[m].node1 != i {
                    break;
                }
                out += self.kw_link_inflow(m, dt);
            }
            let mut v2 = (v_fixed - 0.5 * out * dt).max(0.0);
            let n = &mut self.nodes[i];
            n.overflow = 0.0;
            if v2 > n.full_volume {
                n.overflow = (v2 - n.old_volume.max(n.full_volume)) / dt;
                if n.overflow < FUDGE_Q {
                    n.overflow = 0.0;
                }
                if !ponding || n.ponded_area == 0.0 {
                    v2 = n.full_volume;
                }
            }
            n.new_volume = v2;
            let d2 = n.depth_of_volume(v2);
            let d2 = (1.0 - STORAGE_OMEGA) * d1 + STORAGE_OMEGA * d2;
            n.new_depth = d2;
            let stop = (d2 - d1).abs() <= STORAGE_STOPTOL;
            d1 = d2;
            iter += 1;
            if stop {
                break;
            }
        }
        let _ = NodeType::Junction;
    }
}

/// Solve `f(a) = β₁·S(a) + C₁·a + C₂ = 0` for the normalised outlet area (SWMM's
/// `solveContinuity`); returns (area, evaluations).
#[allow(clippy::too_many_arguments)]
fn solve_continuity(
    xs: &super::xsect::Xsect,
    beta1: f64,
    c1: f64,
    c2: f64,
    a_guess: f64,
    qin: f64,
    ain: f64,
    f: impl Fn(f64) -> f64,
) -> (f64, u32) {
    let a_full = xs.a_full;
    let mut a_hi = 1.0;
    let mut f_hi = 1.0 + c1 + c2;
    let amax = match xs.shape {
        citytwin_engine::model::CrossSection::Circular { .. } => 0.9756,
        citytwin_engine::model::CrossSection::Rectangular { .. } => 0.97,
        _ => 1.0,
    };
    let mut a_lo = amax;
    let mut f_lo = if a_lo < a_hi {
        beta1 * xs.s_max + c1 * a_lo + c2
    } else {
        f_hi
    };
    if f_hi * f_lo > 0.0 {
        a_hi = a_lo;
        f_hi = f_lo;
        a_lo = 0.0;
        f_lo = c2;
    }
    if f_hi * f_lo <= 0.0 {
        let (mut lo, mut hi) = if f_lo > f_hi {
            (a_hi, a_lo)
        } else {
            (a_lo, a_hi)
        };
        // Now f(lo) ≤ 0 ≤ f(hi): safeguarded Newton.
        let mut a = if a_guess < a_lo.min(a_hi) || a_guess > a_lo.max(a_hi) {
            0.5 * (a_lo + a_hi)
        } else {
            a_guess
        };
        let mut n = 0;
        for _ in 0..60 {
            n += 1;
            let fa = f(a);
            if fa < 0.0 {
                lo = a;
            } else {
                hi = a;
            }
            let h = 1e-6;
            let df =
                (f((a + h).min(1.0)) - f((a - h).max(0.0))) / ((a + h).min(1.0) - (a - h).max(0.0));
            let mut next = if df != 0.0 { a - fa / df } else { f64::NAN };
            let (mn, mx) = (lo.min(hi), lo.max(hi));
            if !next.is_finite() || next < mn || next > mx {
                next = 0.5 * (lo + hi);
            }
            let step = (next - a).abs();
            a = next;
            if step < EPSIL {
                break;
            }
        }
        let _ = a_full;
        (a, n)
    } else if f_lo < 0.0 {
        (if qin > 1.0 { ain } else { 1.0 }, 1)
    } else {
        (0.0, 1)
    }
}
