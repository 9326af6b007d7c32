//! Vehicles entering the network: insertion like SUMO's (depart lane, speed, position) and
//! teleports of vehicles stuck for too long.

use super::*;

impl Traffic {
    #[inline(never)]
    pub(super) fn teleport(&mut self) {
        let net = self.net.clone();
        if self.cfg.teleport_after_s > 0.0 {
            // lanes occupied at the start of the step: a vehicle standing that long was there
            for &li in &self.active.clone() {
                let li = li as usize;
                let Some(&s) = self.lane_vehs[li].first() else {
                    continue;
                };
                if self.veh(s).stand_s < self.cfg.teleport_after_s {
                    continue;
                }
                self.lane_vehs[li].remove(0);
                self.totals.teleports += 1;
                let v = self.veh_mut(s);
                v.teleports += 1;
                v.stand_s = 0.0;
                v.speed_mps = 0.0;
                // jump to the next edge of its route (from a link lane too: it leads there)
                let next_ri = v.ri + 1;
                self.teleporting.push((s, next_ri));
            }
        }
        // place teleported vehicles where there is room (or let them arrive); a jump never
        // lands on a closed road: it goes past it, and a vehicle whose remaining route is all
        // closed leaves the network at the closure
        let mut still = Vec::new();
        for (s, ri) in std::mem::take(&mut self.teleporting) {
            let route = self.veh(s).route.clone();
            let mut ri = ri as usize;
            while ri < route.len() && self.closed[route[ri] as usize] {
                ri += 1;
            }
            if ri >= route.len() {
                self.arrive(s);
                continue;
            }
            let e = route[ri];
            let class = self.vtypes[self.veh(s).vt as usize].class;
            let lane = net.edges[e as usize]
                .lanes
                .iter()
                .copied()
                .filter(|&l| net.lanes[l as usize].allow & class.bit() != 0)
                .max_by(|&a, &b| {
                    self.room_at_start(a)
                        .total_cmp(&self.room_at_start(b))
                        .then(b.cmp(&a))
                });
            let len = self.len_of(self.veh(s));
            match lane {
                Some(l)
                    if self.room_at_start(l)
                        >= len + self.drivers[self.veh(s).vt as usize].min_gap =>
                {
                    let v = self.veh_mut(s);
                    v.lane = l;
                    v.ri = ri as u32;
                    v.pos_m = len.min(net.lanes[l as usize].length_m - 1e-3);
                    let nl = self.pick_link(s);
                    self.veh_mut(s).next_link = nl;
                    self.lane_vehs[l as usize].push(s);
                }
                _ => still.push((s, ri as u32)),
            }
        }
        self.teleporting = still;
    }

    /// Free length at the start of a lane, m.
    pub(super) fn room_at_start(&self, l: LaneIx) -> f64 {
        match self.lane_vehs[l as usize].last() {
            Some(&x) => {
                let v = self.veh(x);
                v.pos_m - self.len_of(v)
            }
            None => self.net.lanes[l as usize].length_m,
        }
    }

    #[inline(never)]
    pub(super) fn insert(&mut self) {
        let t = self.time_s;
        while self.next_trip < self.trips.len() && self.trips[self.next_trip].depart_s <= t + 1e-9 {
            self.pending.push(self.next_trip as u32);
            self.next_trip += 1;
        }
        let mut blocked: HashSet<EdgeIx> = HashSet::new();
        let mut keep = Vec::with_capacity(self.pending.len());
        for ti in std::mem::take(&mut self.pending) {
            let trip = &self.trips[ti as usize];
            let first = match &trip.route {
                RouteSpec::Edges(r) => r[0],
                RouteSpec::Trip { from, .. } => *from,
            };
            if blocked.contains(&first) {
                keep.push(ti);
                continue;
            }
            match self.try_insert(ti) {
                Ok(true) => {}
                Ok(false) => {
                    blocked.insert(first);
                    keep.push(ti);
                }
                Err(()) => self.totals.unroutable += 1,
            }
        }
        self.pending = keep;
        self.totals.waiting_to_insert = self.pending.len() as u64;
    }

    /// Ok(true) inserted, Ok(false) no room yet, Err(()) no route.
    pub(super) fn try_insert(&mut self, ti: u32) -> Result<bool, ()> {
        let net = self.net.clone();
        let dt = self.cfg.dt_s;
        let trip = self.trips[ti as usize].clone();
        let vt = trip.vtype as usize;
        let class = self.vtypes[vt].class;
        let route: Arc<[EdgeIx]> = match &trip.route {
            // departures wait while their first road is closed
            RouteSpec::Edges(r) if self.closed[r[0] as usize] => return Ok(false),
            RouteSpec::Trip { from, .. } if self.closed[*from as usize] => return Ok(false),
            RouteSpec::Edges(r)
                if r.iter().any(|&e| {
                    self.costs.travel_time_s[e as usize] != self.costs.free_flow_s[e as usize]
                }) =>
            {
                // a closed or slowed road on its planned route: the fastest way now, or none
                let last = *r.last().expect("routes are not empty");
                match fastest_route(&net, &self.costs, class, r[0], last) {
                    Some(new) => {
                        if new[..] != r[..] {
                            self.totals.reroutes += 1;
                        }
                        new.into()
                    }
                    None => return Err(()),
                }
            }
            RouteSpec::Edges(r) => r.clone().into(),
            RouteSpec::Trip { from, to, via } => {
                let mut w = vec![*from];
                w.extend_from_slice(via);
                w.push(*to);
                match route_via(&net, &self.costs, class, &w) {
                    Some(r) => r.into(),
                    None => return Err(()),
                }
            }
        };
        let e0 = &net.edges[route[0] as usize];
        let allowed: Vec<LaneIx> = e0
            .lanes
            .iter()
            .copied()
            .filter(|&l| net.lanes[l as usize].allow & class.bit() != 0)
            .collect();
        if allowed.is_empty() {
            return Err(());
        }
        let continues = |l: LaneIx| {
            route.len() < 2
                || net.lanes[l as usize]
                    .links
                    .iter()
                    .any(|&k| net.links[k as usize].to_edge == route[1])
        };
        let lane = match trip.depart_lane {
            DepartLane::First => allowed[0],
            DepartLane::Index(i) => match e0.lanes.get(i as usize) {
                Some(&l) if net.lanes[l as usize].allow & class.bit() != 0 => l,
                _ => allowed[0],
            },
            DepartLane::Free => *allowed
                .iter()
                .max_by(|&&a, &&b| {
                    self.room_at_start(a)
                        .total_cmp(&self.room_at_start(b))
                        .then(b.cmp(&a))
                })
                .expect("non-empty"),
            DepartLane::Best => {
                let best: Vec<LaneIx> = allowed.iter().copied().filter(|&l| continues(l)).collect();
                let pool = if best.is_empty() { &allowed } else { &best };
                *pool
                    .iter()
                    .max_by(|&&a, &&b| {
                        self.room_at_start(a)
                            .total_cmp(&self.room_at_start(b))
                            .then(b.cmp(&a))
                    })
                    .expect("non-empty")
            }
        };
        let d = self.drivers[vt];
        let t = &self.vtypes[vt];
        let lane_len = net.lanes[lane as usize].length_m;
        // front position: SUMO's `base` puts the back at the lane start; never past the end
        let pos = trip
            .depart_pos_m
            .unwrap_or(t.length_m)
            .max(t.length_m)
            .min(lane_len - 1e-3)
            .max(0.0);
        // speed factor and random key
        let rng_key = splitmix(self.seed_key ^ (ti as u64).wrapping_mul(0xA24B_AED4_963E_E407));
        let mut sf = t.speed_factor_mean;
        if t.speed_factor_dev > 0.0 {
            let (lo, hi) = t.speed_factor_bounds;
            let mut k = 0u64;
            loop {
                let z = normal(
                    unit(splitmix(rng_key ^ (2 * k + 1))),
                    unit(splitmix(rng_key ^ (2 * k + 2))),
                );
                sf = t.speed_factor_mean + t.speed_factor_dev * z;
                if (lo..=hi).contains(&sf) || k > 20 {
                    sf = sf.clamp(lo, hi);
                    break;
                }
                k += 1;
            }
        }
        let vmax = (self.lane_speed_mps[lane as usize] * sf).min(t.max_speed_mps);
        // room and a safe speed between the vehicles ahead of and behind `pos`
        let mut safe = vmax;
        let (mut leader, mut follower) = (None, None);
        for &x in &self.lane_vehs[lane as usize] {
            if self.veh(x).pos_m > pos {
                leader = Some(x);
            } else {
                follower = Some(x);
                break;
            }
        }
        if leader.is_none() {
            // the rearmost vehicle on a link out of this lane may still reach back onto it
            for &k in &net.lanes[lane as usize].links {
                let ll = net.links[k as usize].lane;
                if let Some(&l) = self.lane_vehs[ll as usize].last() {
                    let lv = self.veh(l);
                    if lane_len - pos + lv.pos_m - self.len_of(lv) - d.min_gap < 0.0 {
                        return Ok(false);
                    }
                }
            }
        }
        if let Some(l) = leader {
            let lv = self.veh(l);
            let gap = lv.pos_m - self.len_of(lv) - pos - d.min_gap;
            if gap < 0.0 {
                return Ok(false);
            }
            let ld = self.drivers[lv.vt as usize].decel;
            // the highest speed that is safe at that gap (iterating towards follow_speed's fixed point)
            let mut v = vmax;
            for _ in 0..4 {
                v = v.min(d.follow_speed(v, gap, lv.speed_mps, ld, dt).max(0.0));
            }
            safe = safe.min(v);
        }
        // who would be behind it: a vehicle on the lane, or one coming off a link into it
        let mut behind: Vec<(u32, f64)> = Vec::new();
        if let Some(f) = follower {
            let fv = self.veh(f);
            behind.push((f, pos - t.length_m - fv.pos_m));
        } else {
            for &k in &self.into_lane[lane as usize] {
                // one about to come through the junction (it may be beyond the link lane yet)
                if self.approach_s[k as usize] < 3.0 && pos - t.length_m < 10.0 {
                    return Ok(false);
                }
                let ll = net.links[k as usize].lane as usize;
                if let Some(&f) = self.lane_vehs[ll].first() {
                    let fv = self.veh(f);
                    behind.push((f, net.lanes[ll].length_m - fv.pos_m + pos - t.length_m));
                }
            }
        }
        for (f, dist) in behind {
            let fv = self.veh(f);
            let fd = &self.drivers[fv.vt as usize];
            let gap = dist - fd.min_gap;
            if gap < 0.0
                || fd.follow_speed(fv.speed_mps, gap, safe, d.decel, dt)
                    < fv.speed_mps - fd.decel * dt
            {
                return Ok(false);
            }
        }
        let speed = match trip.depart_speed {
            DepartSpeed::Max => safe,
            DepartSpeed::Desired => {
                if safe + 1e-9 < vmax {
                    return Ok(false);
                }
                vmax
            }
            DepartSpeed::Value(x) => {
                if x > safe + 1e-9 {
                    return Ok(false);
                }
                x
            }
        };
        let veh = Veh {
            trip: ti,
            vt: vt as u16,
            lane,
            pos_m: pos,
            speed_mps: speed,
            route,
            ri: 0,
            next_link: NONE,
            speed_factor: sf,
            rng_key,
            depart_s: self.time_s,
            dist_m: 0.0,
            time_loss_s: 0.0,
            waiting_s: 0.0,
            stand_s: 0.0,
            passed_wait: false,
            teleports: 0,
            changed_at: f64::NEG_INFINITY,
            priority: trip.signal_priority,
        };
        let s = match self.free_slots.pop() {
            Some(s) => {
                self.vehs[s as usize] = Some(veh);
                s
            }
            None => {
                self.vehs.push(Some(veh));
                (self.vehs.len() - 1) as u32
            }
        };
        let nl = self.pick_link(s);
        self.veh_mut(s).next_link = nl;
        let list = &mut self.lane_vehs[lane as usize];
        let at = list
            .iter()
            .position(|&x| {
                self.vehs[x as usize]
                    .as_ref()
                    .is_some_and(|o| o.pos_m < pos)
            })
            .unwrap_or(list.len());
        self.lane_vehs[lane as usize].insert(at, s);
        if trip.signal_priority {
            self.priority_vehicles += 1;
        }
        self.totals.inserted += 1;
        Ok(true)
    }
}
