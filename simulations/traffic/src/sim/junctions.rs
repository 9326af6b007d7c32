//! Right of way: who approaches which link when, whether a link is open to a vehicle, and
//! whom it must let go first.

use super::*;

impl Traffic {
    /// Per-step tables from the state before anyone moves: who approaches which link and when,
    /// which links have vehicles inside, how much room each lane has at its start.
    #[inline(never)]
    pub(super) fn prepare(&mut self) {
        self.approach_s.fill(f64::INFINITY);
        self.occupied.fill(false);
        let net = self.net.clone();
        self.refresh_active();
        for (sp, lane) in self.space_m.iter_mut().zip(&net.lanes) {
            *sp = lane.length_m;
        }
        let active = std::mem::take(&mut self.active);
        for &li in &active {
            let li = li as usize;
            let lane = &net.lanes[li];
            let vs = &self.lane_vehs[li];
            // room at the start of the lane
            self.space_m[li] = match vs.last() {
                Some(&s) => {
                    let v = self.veh(s);
                    let back = v.pos_m - self.len_of(v);
                    if v.speed_mps > 1.0 {
                        lane.length_m
                    } else {
                        back
                    }
                }
                None => lane.length_m,
            };
            if let Some(k) = lane.link {
                let link = &net.links[k as usize];
                for &s in vs {
                    let v = self.veh(s);
                    // a vehicle waiting at its internal stop does not block anyone
                    let waiting = link.wait_pos_m.is_some()
                        && !v.passed_wait
                        && v.speed_mps < HALTING_SPEED_MPS;
                    if !waiting {
                        self.occupied[k as usize] = true;
                    }
                }
            }
        }
        // vehicles already on link lanes take room on the lane they lead to
        for &li in &active {
            let li = li as usize;
            if let Some(k) = net.lanes[li].link {
                let to = net.links[k as usize].to_lane as usize;
                for &s in &self.lane_vehs[li] {
                    let v = self.veh(s);
                    self.space_m[to] -= self.len_of(v) + self.drivers[v.vt as usize].min_gap;
                }
            }
        }
        self.active = active;
        self.register_approaches();
    }

    /// The lanes that hold vehicles now, in index order.
    pub(super) fn refresh_active(&mut self) {
        self.active.clear();
        for v in self.vehs.iter().flatten() {
            self.active.push(v.lane);
        }
        self.active.sort_unstable();
        self.active.dedup();
    }

    /// The links ahead of vehicle `v` along its route, each with the distance to its stop line
    /// (m), while that distance stays under `max_m`: at most [`LINKS_AHEAD`] of them, in a
    /// fixed array (this runs for every lane's first vehicle every step).
    pub(super) fn links_ahead(&self, v: &Veh, max_m: f64) -> LinksAhead {
        let net = &self.net;
        let class = self.vtypes[v.vt as usize].class;
        let mut out = LinksAhead::default();
        let mut seen = net.lanes[v.lane as usize].length_m - v.pos_m;
        let mut ri = v.ri as usize;
        let mut cur = v.lane;
        while seen < max_m && out.n < LINKS_AHEAD {
            let k = if let Some(k0) = net.lanes[cur as usize].link {
                // through the link to the lane after it
                cur = net.links[k0 as usize].to_lane;
                ri += 1;
                seen += net.lanes[cur as usize].length_m;
                continue;
            } else if ri + 1 >= v.route.len() {
                break;
            } else if cur == v.lane {
                v.next_link
            } else {
                self.best_link(cur, v.route[ri + 1], v.route.get(ri + 2).copied(), class)
            };
            if k == NONE {
                break;
            }
            out.links[out.n] = (k, seen);
            out.n += 1;
            cur = net.links[k as usize].lane;
            seen += net.lanes[cur as usize].length_m;
        }
        out
    }

    /// When the first vehicle of each lane reaches the links ahead of it (within a short
    /// horizon, so short lanes and links do not hide a vehicle about to arrive), for vehicles
    /// that will pass them: `approach_s` per link, s from now.
    pub(super) fn register_approaches(&mut self) {
        const HORIZON_M: f64 = 60.0;
        let mut found: Vec<(LinkIx, f64)> = Vec::new();
        for &li in &self.active {
            let Some(&s) = self.lane_vehs[li as usize].first() else {
                continue;
            };
            let v = self.veh(s);
            let d = &self.drivers[v.vt as usize];
            let vmax = self.vmax(v, li);
            for &(k, seen) in self.links_ahead(v, HORIZON_M).as_slice() {
                let passing = match self.link_state(k) {
                    b'G' | b'M' => true,
                    b'g' | b'm' => v.speed_mps > HALTING_SPEED_MPS,
                    b'y' | b'Y' => brake_gap(v.speed_mps, d.decel, self.cfg.dt_s, 0.0) > seen,
                    _ => false,
                };
                if !passing {
                    break;
                }
                found.push((k, arrival_time(seen, v.speed_mps, d.accel, vmax)));
            }
        }
        for (k, t) in found {
            let a = &mut self.approach_s[k as usize];
            *a = a.min(t);
        }
    }

    /// Whether the vehicle may pass link `k` now, `seen` m ahead: signal, right of way (unless it
    /// yields inside the junction instead), and room behind the junction.
    pub(super) fn link_open(&self, v: &Veh, k: LinkIx, seen: f64, check_yield: bool) -> bool {
        let d = &self.drivers[v.vt as usize];
        let st = self.link_state(k);
        let link = &self.net.links[k as usize];
        let minor = match st {
            b'G' | b'M' => false,
            b'g' | b'm' | b's' | b'w' => true,
            b'y' | b'Y' => {
                if brake_gap(v.speed_mps, d.decel, self.cfg.dt_s, 0.0) <= seen {
                    return false;
                }
                false
            }
            _ => return false,
        };
        // keep the junction clear: enter only if there is room behind it
        let len = self.len_of(v);
        let to = &self.net.lanes[link.to_lane as usize];
        let need = (len + d.min_gap).min(to.length_m);
        if self.space_m[link.to_lane as usize] < need
            && brake_gap(v.speed_mps, d.decel, self.cfg.dt_s, 0.0) <= seen
        {
            return false;
        }
        if minor && check_yield && link.wait_pos_m.is_none() {
            return !self.must_yield(v, k, seen, 0.0);
        }
        true
    }

    /// Whether a vehicle `seen` m before its decision point on link `k` must let a foe go first.
    pub(super) fn must_yield(&self, v: &Veh, k: LinkIx, seen: f64, from_pos: f64) -> bool {
        let link = &self.net.links[k as usize];
        if link.yields_to.is_empty() {
            return false;
        }
        let d = &self.drivers[v.vt as usize];
        let ll = &self.net.lanes[link.lane as usize];
        let vlink = self.vmax(v, link.lane);
        let t_arrive = arrival_time(seen, v.speed_mps, d.accel, vlink);
        let cross = (ll.length_m - from_pos).max(0.0) + self.len_of(v);
        let t_clear = t_arrive + arrival_time(cross, v.speed_mps.min(vlink), d.accel, vlink);
        link.yields_to.iter().any(|&f| {
            self.occupied[f as usize] || self.approach_s[f as usize] < t_clear + YIELD_TIME_GAP_S
        })
    }
}
