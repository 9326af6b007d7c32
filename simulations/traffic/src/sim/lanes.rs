//! Lane changes: strategic (the lane the route needs) and MOBIL (speed), with safety checks and
//! the swap of two standing vehicles that need each other's lane.

use super::*;

impl Traffic {
    /// Lane changes on normal lanes, edge by edge, front to back; each applies at once.
    #[inline(never)]
    pub(super) fn change_lanes(&mut self) {
        let net = self.net.clone();
        let dt = self.cfg.dt_s;
        for e in 0..net.edges.len() {
            let lanes = &net.edges[e].lanes;
            if lanes.len() < 2 {
                continue;
            }
            if lanes.iter().all(|&l| self.lane_vehs[l as usize].is_empty()) {
                continue;
            }
            let mut cands = std::mem::take(&mut self.scratch);
            cands.clear();
            cands.extend(
                lanes
                    .iter()
                    .flat_map(|&l| self.lane_vehs[l as usize].iter().copied()),
            );
            cands.sort_by(|&a, &b| {
                self.veh(b)
                    .pos_m
                    .total_cmp(&self.veh(a).pos_m)
                    .then(a.cmp(&b))
            });
            let mut swapped: Vec<u32> = Vec::new();
            for &s in &cands {
                if swapped.contains(&s) {
                    continue;
                }
                let Some((dir, urgent)) = self.lane_change_wish(s, e as EdgeIx, dt) else {
                    continue;
                };
                let v = self.veh(s);
                let from = v.lane;
                let idx = net.lanes[from as usize].index as i32 + dir;
                let to = lanes[idx as usize];
                if !self.safe_to_enter(s, to, dt) {
                    // Two standing vehicles side by side, each needing the other's lane: swap them
                    // (SUMO's drivers would let each other through; neither can move otherwise).
                    if urgent && v.speed_mps <= HALTING_SPEED_MPS {
                        let (pos, len) = (v.pos_m, self.len_of(v));
                        let other = self.lane_vehs[to as usize].iter().copied().find(|&x| {
                            let o = self.veh(x);
                            (o.pos_m - pos).abs() < len.max(self.len_of(o))
                                && o.speed_mps <= HALTING_SPEED_MPS
                        });
                        if let Some(x) = other
                            && self.lane_change_wish(x, e as EdgeIx, dt) == Some((-dir, true))
                            && self.follower_safe(s, to, x, dt)
                            && self.follower_safe(x, from, s, dt)
                            && self.veh(x).pos_m.max(pos)
                                <= net.lanes[to as usize]
                                    .length_m
                                    .min(net.lanes[from as usize].length_m)
                        {
                            let now = self.time_s;
                            for (veh, lane) in [(s, to), (x, from)] {
                                let v = self.veh_mut(veh);
                                v.lane = lane;
                                v.changed_at = now;
                                let nl = self.pick_link(veh);
                                self.veh_mut(veh).next_link = nl;
                            }
                            for l in [from, to] {
                                for slot in self.lane_vehs[l as usize].iter_mut() {
                                    if *slot == s {
                                        *slot = x;
                                    } else if *slot == x {
                                        *slot = s;
                                    }
                                }
                                let mut vs = std::mem::take(&mut self.lane_vehs[l as usize]);
                                vs.sort_by(|&a, &b| {
                                    self.veh(b)
                                        .pos_m
                                        .total_cmp(&self.veh(a).pos_m)
                                        .then(a.cmp(&b))
                                });
                                self.lane_vehs[l as usize] = vs;
                            }
                            swapped.push(x);
                        }
                    }
                    continue;
                }
                {
                    let pos = self
                        .veh(s)
                        .pos_m
                        .min(net.lanes[to as usize].length_m - 0.01);
                    let list = &mut self.lane_vehs[from as usize];
                    list.retain(|&x| x != s);
                    let now = self.time_s;
                    let v = self.veh_mut(s);
                    v.lane = to;
                    v.pos_m = pos;
                    v.changed_at = now;
                    let nl = self.pick_link(s);
                    self.veh_mut(s).next_link = nl;
                    let at = self.lane_vehs[to as usize]
                        .iter()
                        .position(|&x| self.veh(x).pos_m < pos)
                        .unwrap_or(self.lane_vehs[to as usize].len());
                    self.lane_vehs[to as usize].insert(at, s);
                }
            }
            self.scratch = cands;
        }
    }

    /// The lane change a vehicle wants: -1 (right) or +1 (left), and whether its route needs
    /// it (`true`) or it only pays (`false`).
    pub(super) fn lane_change_wish(&self, s: u32, e: EdgeIx, dt: f64) -> Option<(i32, bool)> {
        let net = &self.net;
        let v = self.veh(s);
        if self.time_s - v.changed_at < 2.0 * dt {
            return None; // settle before changing again
        }
        let class = self.vtypes[v.vt as usize].class;
        let edge = &net.edges[e as usize];
        let here = net.lanes[v.lane as usize].index as i32;
        let ri = v.ri as usize;
        let good = |l: LaneIx| -> bool {
            if net.lanes[l as usize].allow & class.bit() == 0 {
                return false;
            }
            if ri + 1 >= v.route.len() {
                return true;
            }
            net.lanes[l as usize]
                .links
                .iter()
                .any(|&k| net.links[k as usize].to_edge == v.route[ri + 1])
        };
        if !good(v.lane) {
            // strategic: towards the nearest lane that continues the route
            let target = edge
                .lanes
                .iter()
                .filter(|&&l| good(l))
                .map(|&l| net.lanes[l as usize].index as i32)
                .min_by_key(|&i| ((i - here).abs(), i))?;
            return Some(((target - here).signum(), true));
        }
        // tactical: MOBIL (Kesting, Treiber & Helbing 2007) among the lanes that continue the
        // route: change when my gain in acceleration plus the politeness-weighted gains of the
        // old and new followers beats a threshold; the asymmetric bias keeps right. Accelerations
        // come from the vehicle's own car-following model over one step.
        const POLITENESS: f64 = 0.25;
        const THRESHOLD_MPS2: f64 = 0.2;
        const KEEP_RIGHT_BIAS_MPS2: f64 = 0.2;
        let cur = v.lane;
        let (lead_cur, foll_cur) = self.neighbours(cur, v.pos_m, s);
        let a_c = self.accel_behind(s, cur, lead_cur, dt);
        let a_o = foll_cur.map(|o| self.accel_behind(o, cur, Some(s), dt));
        let a_o_after = foll_cur.map(|o| self.accel_behind(o, cur, lead_cur, dt));
        let mut best: Option<(f64, i32)> = None;
        for dir in [-1, 1] {
            let idx = here + dir;
            if idx < 0 || idx as usize >= edge.lanes.len() {
                continue;
            }
            let l = edge.lanes[idx as usize];
            if !good(l) {
                continue;
            }
            let (lead_new, foll_new) = self.neighbours(l, v.pos_m, s);
            let a_c_after = self.accel_behind(s, l, lead_new, dt);
            let (a_n, a_n_after) = match foll_new {
                Some(n) => (
                    self.accel_behind(n, l, lead_new, dt),
                    self.accel_behind(n, l, Some(s), dt),
                ),
                None => (0.0, 0.0),
            };
            let others = (a_n_after - a_n)
                + match (a_o, a_o_after) {
                    (Some(before), Some(after)) => after - before,
                    _ => 0.0,
                };
            let bias = if dir < 0 {
                -KEEP_RIGHT_BIAS_MPS2
            } else {
                KEEP_RIGHT_BIAS_MPS2
            };
            let incentive = a_c_after - a_c + POLITENESS * others;
            if incentive > THRESHOLD_MPS2 + bias && best.is_none_or(|b| incentive > b.0) {
                best = Some((incentive, dir));
            }
        }
        best.map(|b| (b.1, false))
    }

    /// The vehicles just ahead of and just behind position `pos` on `lane`, other than `s`.
    pub(super) fn neighbours(&self, lane: LaneIx, pos: f64, s: u32) -> (Option<u32>, Option<u32>) {
        // lanes are sorted front first
        let list = &self.lane_vehs[lane as usize];
        let n_ahead = list.partition_point(|&x| x != s && self.veh(x).pos_m > pos);
        let ahead = n_ahead.checked_sub(1).map(|i| list[i]);
        let behind = list[n_ahead..].iter().copied().find(|&x| x != s);
        (ahead, behind)
    }

    /// The acceleration vehicle `f` would have next step on `lane` behind `leader` (if any),
    /// m/s², from its car-following model without random slow-downs.
    pub(super) fn accel_behind(&self, f: u32, lane: LaneIx, leader: Option<u32>, dt: f64) -> f64 {
        let fv = self.veh(f);
        let d = &self.drivers[fv.vt as usize];
        let mut v = d.free_road_speed(fv.speed_mps, self.vmax(fv, lane), dt);
        if let Some(l) = leader {
            let lv = self.veh(l);
            let gap = lv.pos_m - self.len_of(lv) - fv.pos_m - d.min_gap;
            if gap < 200.0 {
                v = v.min(self.follow(d, fv.speed_mps, gap, l, dt));
            }
        }
        (v - fv.speed_mps) / dt
    }

    /// Whether the vehicle behind `s`'s position on `lane` (other than `exclude`) could follow
    /// `s` there safely.
    pub(super) fn follower_safe(&self, s: u32, lane: LaneIx, exclude: u32, dt: f64) -> bool {
        let v = self.veh(s);
        let d = &self.drivers[v.vt as usize];
        let Some(&f) = self.lane_vehs[lane as usize]
            .iter()
            .find(|&&x| x != exclude && x != s && self.veh(x).pos_m < v.pos_m)
        else {
            return true;
        };
        let fv = self.veh(f);
        let fd = &self.drivers[fv.vt as usize];
        let gap = v.pos_m - self.len_of(v) - fv.pos_m - fd.min_gap;
        gap >= 0.0
            && fd.follow_speed(fv.speed_mps, gap, v.speed_mps, d.decel, dt)
                >= fv.speed_mps - fd.decel * dt
    }

    /// Whether the vehicle fits on lane `to` beside where it is, with safe gaps both ways, and
    /// can still stop in comfort if the junction at that lane's end is closed to it.
    pub(super) fn safe_to_enter(&self, s: u32, to: LaneIx, dt: f64) -> bool {
        let v = self.veh(s);
        let d = &self.drivers[v.vt as usize];
        let len = self.len_of(v);
        let ri = v.ri as usize;
        if ri + 1 < v.route.len() {
            let class = self.vtypes[v.vt as usize].class;
            let k = self.best_link(to, v.route[ri + 1], v.route.get(ri + 2).copied(), class);
            let seen = self.net.lanes[to as usize].length_m - v.pos_m;
            if k != NONE
                && !matches!(self.link_state(k), b'G' | b'g' | b'M' | b'm')
                && brake_gap(v.speed_mps, d.decel, dt, 0.0) > seen
            {
                return false;
            }
        }
        let list = &self.lane_vehs[to as usize];
        // leader: the rearmost vehicle ahead; follower: the frontmost behind
        let mut leader = None;
        let mut follower = None;
        for &x in list {
            let o = self.veh(x);
            if o.pos_m > v.pos_m || (o.pos_m == v.pos_m && x < s) {
                leader = Some(x);
            } else {
                follower = Some(x);
                break;
            }
        }
        if let Some(l) = leader {
            let lv = self.veh(l);
            let gap = lv.pos_m - self.len_of(lv) - v.pos_m - d.min_gap;
            if gap < 0.0 {
                return false;
            }
            let need = d.follow_speed(
                v.speed_mps,
                gap,
                lv.speed_mps,
                self.drivers[lv.vt as usize].decel,
                dt,
            );
            if need < v.speed_mps - d.decel * dt {
                return false;
            }
        }
        if let Some(f) = follower {
            let fv = self.veh(f);
            let fd = &self.drivers[fv.vt as usize];
            let gap = v.pos_m - len - fv.pos_m - fd.min_gap;
            if gap < 0.0 {
                return false;
            }
            let need = fd.follow_speed(fv.speed_mps, gap, v.speed_mps, d.decel, dt);
            if need < fv.speed_mps - fd.decel * dt {
                return false;
            }
        }
        true
    }
}
