//! Speeds and movement: car-following along the lane and beyond it, merges, then moving every
//! vehicle and carrying it from lane to lane until it arrives.

use super::*;

impl Traffic {
    #[inline(never)]
    pub(super) fn plan(&mut self) {
        let dt = self.cfg.dt_s;
        self.next_speed.resize(self.vehs.len(), 0.0);
        let net = self.net.clone();
        let active = std::mem::take(&mut self.active);
        for &li in &active {
            let li = li as usize;
            let n = self.lane_vehs[li].len();
            for i in 0..n {
                let s = self.lane_vehs[li][i];
                let leader = if i > 0 {
                    Some(self.lane_vehs[li][i - 1])
                } else {
                    None
                };
                let v = self.plan_one(s, leader, &net, dt);
                self.next_speed[s as usize] = v;
            }
        }
        self.active = active;
    }

    #[inline(never)]
    pub(super) fn plan_one(&self, s: u32, leader: Option<u32>, net: &Network, dt: f64) -> f64 {
        let v = self.veh(s);
        let d = &self.drivers[v.vt as usize];
        let speed = v.speed_mps;
        let lane = &net.lanes[v.lane as usize];
        let vmax_here = self.vmax(v, v.lane);
        let mut vsafe = d.free_road_speed(speed, vmax_here, dt);
        let lookahead = brake_gap(vmax_here.max(speed) + d.accel * dt, d.decel, dt, 0.0)
            + vmax_here * dt
            + 10.0;
        if let Some(l) = leader {
            let lv = self.veh(l);
            let gap = lv.pos_m - self.len_of(lv) - v.pos_m - d.min_gap;
            vsafe = vsafe.min(self.follow(d, speed, gap, l, dt));
        }
        // merging links: vehicles on other links into the same lane that are closer to it
        if let Some(k) = lane.link {
            // wait inside the junction for the links this one yields to, unless already too
            // close to stop there without braking harder than usual (then it is committed)
            if let Some(wp) = net.links[k as usize].wait_pos_m
                && !v.passed_wait
                && v.pos_m <= wp + 0.01
                && brake_gap(speed, d.decel, dt, 0.0) <= wp - v.pos_m + 1e-6
                && self.must_yield(v, k, wp - v.pos_m, wp)
            {
                vsafe = vsafe.min(d.stop_speed(speed, wp - v.pos_m, dt));
            }
            vsafe = vsafe.min(self.merge_speed(s, k, lane.length_m - v.pos_m, dt));
        }
        // the road ahead: stop lines, slower lanes, the next leader
        let mut seen = lane.length_m - v.pos_m;
        let mut cur_lane = v.lane;
        let mut ri = v.ri as usize;
        let mut link = if lane.link.is_some() {
            NONE
        } else {
            v.next_link
        };
        let mut first = true;
        while seen < lookahead {
            let cl = &net.lanes[cur_lane as usize];
            let next_lane;
            if let Some(k) = cl.link {
                // on a link lane: the lane after it
                next_lane = net.links[k as usize].to_lane;
                ri += 1;
            } else {
                if ri + 1 >= v.route.len() {
                    break; // it arrives at the end of this edge
                }
                if link == NONE {
                    // wrong lane for the route: stop at the lane end until it can change
                    if first {
                        vsafe = vsafe.min(d.stop_speed(speed, seen, dt));
                    }
                    break;
                }
                if !self.link_open(v, link, seen, true) {
                    vsafe = vsafe.min(d.stop_speed(speed, seen, dt));
                    break;
                }
                next_lane = net.links[link as usize].lane;
            }
            first = false;
            // slow down in time for a lower limit ahead
            let vnext = self.vmax(v, next_lane);
            if vnext < vsafe {
                vsafe = vsafe.min(crate::models::free_speed(seen, vnext, d.decel, dt));
            }
            // A leader on our lane that takes the same link shields us from what lies beyond
            // it; one that turns elsewhere does not.
            let shielded = leader.is_some_and(|l| {
                let lv = self.veh(l);
                net.lanes[cur_lane as usize].link.is_some() || lv.next_link == link
            });
            if !shielded && net.lanes[next_lane as usize].link.is_some() {
                // others merging into the lane behind this link, closer to it than we are
                let rem = seen + net.lanes[next_lane as usize].length_m;
                vsafe = vsafe.min(self.merge_speed(s, link, rem, dt));
            }
            // the first vehicle ahead on the next lane
            if !shielded
                && let Some(&l) = self.lane_vehs[next_lane as usize].last()
                && l != s
            {
                let lv = self.veh(l);
                let gap = seen + lv.pos_m - self.len_of(lv) - d.min_gap;
                vsafe = vsafe.min(self.follow(d, speed, gap, l, dt));
                break;
            }
            if shielded {
                break;
            }
            seen += net.lanes[next_lane as usize].length_m;
            cur_lane = next_lane;
            if net.lanes[cur_lane as usize].link.is_none() {
                // entering a normal lane: which link from it
                link = if ri + 1 < v.route.len() {
                    self.best_link(
                        cur_lane,
                        v.route[ri + 1],
                        v.route.get(ri + 2).copied(),
                        self.vtypes[v.vt as usize].class,
                    )
                } else {
                    NONE
                };
                if link == NONE && ri + 1 < v.route.len() {
                    // it must change lanes there; until it has, that lane's end is a stop
                    let end = seen + net.lanes[cur_lane as usize].length_m;
                    vsafe = vsafe.min(d.stop_speed(speed, end, dt));
                    break;
                }
            }
        }
        // Krauss / IDM finishing: bounded deceleration unless safety needs more, then dawdle.
        let vmin = (speed - d.decel * dt).max(0.0).min(vsafe);
        let vmaxn = vsafe.min(speed + d.accel * dt).max(vmin);
        let u = unit(splitmix(
            v.rng_key ^ self.step.wrapping_mul(0xD6E8_FEB8_6659_FD93),
        ));
        d.dawdle(vmaxn, u, dt).max(vmin)
    }

    /// The safe speed of a driver at `speed` behind vehicle `l`, `gap` metres (net of the
    /// minimum gap) ahead.
    pub(super) fn follow(&self, d: &Driver, speed: f64, gap: f64, l: u32, dt: f64) -> f64 {
        let lv = self.veh(l);
        d.follow_speed(
            speed,
            gap,
            lv.speed_mps,
            self.drivers[lv.vt as usize].decel,
            dt,
        )
    }

    /// The safe speed behind vehicles on the other links into the lane that link `k` leads to,
    /// counting only those closer to that lane than our `rem` metres.
    pub(super) fn merge_speed(&self, s: u32, k: LinkIx, rem: f64, dt: f64) -> f64 {
        let net = &self.net;
        let v = self.veh(s);
        let d = &self.drivers[v.vt as usize];
        let mut vsafe = f64::INFINITY;
        for &o in &self.merging[k as usize] {
            let ol = net.links[o as usize].lane as usize;
            let olen = net.lanes[ol].length_m;
            // the rearmost vehicle on `o` that is still ahead of us
            let mut best: Option<(f64, u32)> = None;
            let waits_at = net.links[o as usize].wait_pos_m;
            for &os in &self.lane_vehs[ol] {
                let ov = self.veh(os);
                // one standing at its internal waiting point gives way; it is no leader yet
                if waits_at.is_some() && !ov.passed_wait && ov.speed_mps <= HALTING_SPEED_MPS {
                    continue;
                }
                let orem = olen - ov.pos_m;
                if (orem < rem || (orem == rem && os < s)) && best.is_none_or(|b| orem > b.0) {
                    best = Some((orem, os));
                }
            }
            if let Some((orem, os)) = best {
                let ov = self.veh(os);
                let gap = rem - orem - self.len_of(ov) - d.min_gap;
                vsafe = vsafe.min(self.follow(d, v.speed_mps, gap, os, dt));
            }
        }
        vsafe
    }

    /// The link from `lane` to `to_edge` for a vehicle class, preferring one whose target lane
    /// continues to `after` (the edge after it), or `NONE`.
    pub(super) fn best_link(
        &self,
        lane: LaneIx,
        to_edge: EdgeIx,
        after: Option<EdgeIx>,
        class: VClass,
    ) -> u32 {
        let net = &self.net;
        let mut found = NONE;
        for &k in &net.lanes[lane as usize].links {
            let link = &net.links[k as usize];
            if link.to_edge != to_edge || net.lanes[link.to_lane as usize].allow & class.bit() == 0
            {
                continue;
            }
            let continues = match after {
                Some(a) => net.lanes[link.to_lane as usize]
                    .links
                    .iter()
                    .any(|&k2| net.links[k2 as usize].to_edge == a),
                None => true,
            };
            if continues {
                return k;
            }
            if found == NONE {
                found = k;
            }
        }
        found
    }

    pub(super) fn pick_link(&self, s: u32) -> u32 {
        let v = self.veh(s);
        let ri = v.ri as usize;
        if ri + 1 >= v.route.len() {
            return NONE;
        }
        self.best_link(
            v.lane,
            v.route[ri + 1],
            v.route.get(ri + 2).copied(),
            self.vtypes[v.vt as usize].class,
        )
    }

    #[inline(never)]
    pub(super) fn execute(&mut self) {
        let dt = self.cfg.dt_s;
        let net = self.net.clone();
        let mut moved: Vec<(u32, LaneIx)> = Vec::new();
        let active = std::mem::take(&mut self.active);
        for &li in &active {
            let li = li as usize;
            let mut leave = 0;
            let n = self.lane_vehs[li].len();
            for i in 0..n {
                let s = self.lane_vehs[li][i];
                let vnew = self.next_speed[s as usize];
                let vm = {
                    let v = self.veh(s);
                    self.vmax(v, v.lane)
                };
                let det = self.detector_pos_m[li];
                let v = self.veh_mut(s);
                let old_pos = v.pos_m;
                v.speed_mps = vnew;
                v.pos_m += vnew * dt;
                v.dist_m += vnew * dt;
                if vm > 0.0 {
                    v.time_loss_s += dt * ((vm - vnew) / vm).max(0.0);
                }
                if vnew <= HALTING_SPEED_MPS {
                    v.waiting_s += dt;
                    v.stand_s += dt;
                } else {
                    v.stand_s = 0.0;
                }
                if let Some(k) = net.lanes[li].link
                    && let Some(wp) = net.links[k as usize].wait_pos_m
                    && v.pos_m > wp
                {
                    v.passed_wait = true;
                }
                // the detector sees a vehicle pass (fronts crossing it)
                let crossed_detector = old_pos < det && v.pos_m >= det;
                let left = v.pos_m >= net.lanes[li].length_m;
                if crossed_detector {
                    self.last_detection_s[li] = self.time_s;
                }
                if let Some(e) = net.lanes[li].edge {
                    let st = &mut self.edge_stats[e as usize];
                    st.samples += 1;
                    st.speed_sum_mps += vnew;
                }
                if left {
                    leave = i + 1;
                }
            }
            // Vehicles leave a lane from its front; a vehicle can only leave if all ahead did.
            if leave == 0 {
                continue;
            }
            let mut leaving = std::mem::take(&mut self.scratch);
            leaving.clear();
            leaving.extend(self.lane_vehs[li].drain(..leave));
            for &s in &leaving {
                if let Some(to) = self.advance_lane(s, lane_ix(li)) {
                    moved.push((s, to));
                }
            }
            self.scratch = leaving;
        }
        self.active = active;
        let mut touched: Vec<LaneIx> = Vec::new();
        for (s, to) in moved {
            self.lane_vehs[to as usize].push(s);
            touched.push(to);
        }
        touched.sort_unstable();
        touched.dedup();
        for l in touched {
            let mut vs = std::mem::take(&mut self.lane_vehs[l as usize]);
            vs.sort_by(|&a, &b| {
                let (va, vb) = (self.veh(a), self.veh(b));
                vb.pos_m.total_cmp(&va.pos_m).then(a.cmp(&b))
            });
            self.lane_vehs[l as usize] = vs;
        }
    }

    /// Carry a vehicle past the end of its lane; `None` if it arrived.
    pub(super) fn advance_lane(&mut self, s: u32, from: LaneIx) -> Option<LaneIx> {
        let net = self.net.clone();
        let mut lane = from;
        loop {
            let l = &net.lanes[lane as usize];
            let v = self.veh(s);
            if v.pos_m < l.length_m {
                return Some(lane);
            }
            let over = v.pos_m - l.length_m;
            let (last_edge, k) = (v.ri as usize + 1 >= v.route.len(), v.next_link);
            if let Some(e) = l.edge {
                self.edge_stats[e as usize].exits += 1;
                if last_edge {
                    self.arrive(s);
                    return None;
                }
                if k == NONE {
                    // should not happen: it was told to stop; hold it at the lane end
                    let v = self.veh_mut(s);
                    v.pos_m = l.length_m - 0.01;
                    v.speed_mps = 0.0;
                    return Some(lane);
                }
                self.link_counts[k as usize] += 1;
                let v = self.veh_mut(s);
                v.lane = net.links[k as usize].lane;
                v.pos_m = over;
                v.passed_wait = false;
                lane = v.lane;
            } else {
                let k = l.link.expect("link lane");
                let v = self.veh_mut(s);
                v.lane = net.links[k as usize].to_lane;
                v.pos_m = over;
                v.ri += 1;
                lane = v.lane;
                let nl = self.pick_link(s);
                self.veh_mut(s).next_link = nl;
            }
        }
    }

    pub(super) fn arrive(&mut self, s: u32) {
        let v = self.vehs[s as usize].take().expect("live");
        self.free_slots.push(s);
        let trip = &self.trips[v.trip as usize];
        let rec = TripRecord {
            id: trip.id.clone(),
            vtype: self.vtypes[v.vt as usize].id.clone(),
            planned_depart_s: trip.depart_s,
            depart_s: v.depart_s,
            arrival_s: self.time_s,
            route_length_m: v.dist_m,
            waiting_s: v.waiting_s,
            time_loss_s: v.time_loss_s,
            teleports: v.teleports,
            depart_edge: v.route[0],
            arrival_edge: *v.route.last().expect("route"),
            signal_priority: v.priority,
        };
        if v.priority {
            self.priority_vehicles -= 1;
        }
        self.totals.arrived += 1;
        self.totals.travel_time_sum_s += rec.duration_s();
        self.totals.time_loss_sum_s += rec.time_loss_s;
        self.finished.push(rec);
    }
}
