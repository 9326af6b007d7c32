//! What scenario plugins and couplings change at run time: closures, speed limits, signal
//! programs, demand; and the rerouting they cause.

use super::*;

impl Traffic {
    /// Close an edge: no vehicle enters it; vehicles whose remaining route uses it are rerouted.
    pub fn close_edge(&mut self, e: EdgeIx) {
        self.closed[e as usize] = true;
        self.costs.travel_time_s[e as usize] = f64::INFINITY;
        self.reroute_through(e);
    }

    /// Reopen a closed edge.
    pub fn open_edge(&mut self, e: EdgeIx) {
        self.closed[e as usize] = false;
        self.costs.travel_time_s[e as usize] =
            self.net.edges[e as usize].length_m / self.edge_speed_mps(e);
    }

    /// Whether an edge is closed.
    pub fn is_closed(&self, e: EdgeIx) -> bool {
        self.closed[e as usize]
    }

    /// Set the speed limit of every lane of an edge (e.g. flooding), or with `None` give each
    /// lane back the network's own limit; vehicles with the edge ahead on their route are
    /// rerouted if another route is now faster.
    ///
    /// Cheap enough to call every step (a flood coupling may): it changes the simulation's
    /// speed table, never the network.
    pub fn set_edge_speed(&mut self, e: EdgeIx, speed_mps: Option<f64>) {
        let net = self.net.clone();
        for &l in &net.edges[e as usize].lanes {
            self.lane_speed_mps[l as usize] =
                speed_mps.map_or(net.lanes[l as usize].speed_mps, |v| v.max(0.1));
        }
        if !self.closed[e as usize] {
            self.costs.travel_time_s[e as usize] =
                net.edges[e as usize].length_m / self.edge_speed_mps(e);
        }
        self.reroute_through(e);
    }

    /// Replace a signal controller's phases (same number of controlled links); the new program
    /// starts at its first phase now.
    pub fn set_signal_program(&mut self, s: u32, phases: Vec<Phase>) -> Result<(), String> {
        let n = self.net.signals[s as usize].links.len();
        if phases.is_empty() {
            return Err("a signal program needs at least one phase".into());
        }
        if let Some(p) = phases.iter().find(|p| p.state.len() != n) {
            return Err(format!(
                "phase '{}' controls {} links but the controller has {n}",
                String::from_utf8_lossy(&p.state),
                p.state.len()
            ));
        }
        let rt = &mut self.signals[s as usize];
        self.signal_state[s as usize] = phases[0].state.clone();
        rt.phases = phases.into();
        rt.phase = 0;
        rt.phase_start_s = self.time_s;
        // a fixed-time program starts its cycle now
        rt.offset_s = 0.0;
        Ok(())
    }

    /// Add one trip (from edge to edge, routed at departure) of class `class`; `signal_priority`
    /// makes signals pre-empt for it. Errors if no route exists now.
    pub fn add_trip(
        &mut self,
        id: String,
        class: VClass,
        from: EdgeIx,
        to: EdgeIx,
        depart_s: f64,
        signal_priority: bool,
    ) -> Result<(), String> {
        if fastest_route(&self.net, &self.costs, class, from, to).is_none() {
            return Err(format!(
                "no route for {} from {} to {}",
                class.sumo_name(),
                self.net.edges[from as usize].id,
                self.net.edges[to as usize].id
            ));
        }
        let vtype = self
            .vtypes
            .iter()
            .position(|t| t.class == class)
            .unwrap_or(0) as u16;
        let spec = TripSpec {
            id,
            vtype,
            depart_s: depart_s.max(self.time_s),
            route: RouteSpec::Trip {
                from,
                to,
                via: Vec::new(),
            },
            depart_lane: DepartLane::Best,
            depart_speed: DepartSpeed::Max,
            depart_pos_m: None,
            signal_priority,
        };
        let at = self.next_trip
            + self.trips[self.next_trip..].partition_point(|t| t.depart_s <= spec.depart_s);
        self.trips.insert(at, spec);
        Ok(())
    }

    /// Scale the trips not yet due whose departure lies in `[from_s, until_s)` by `factor`:
    /// below 1 a share of them is dropped, above 1 copies are added (departing a second apart
    /// after the original); which ones is decided by the seed. Returns (dropped, added).
    pub fn scale_demand(&mut self, factor: f64, from_s: f64, until_s: f64) -> (usize, usize) {
        let factor = factor.max(0.0);
        let start = self.next_trip;
        let tail: Vec<TripSpec> = self.trips.drain(start..).collect();
        let (mut dropped, mut added) = (0, 0);
        let mut kept = Vec::with_capacity(tail.len());
        for (i, t) in tail.into_iter().enumerate() {
            if !(from_s..until_s).contains(&t.depart_s) {
                kept.push(t);
                continue;
            }
            let u = unit(splitmix(
                self.seed_key ^ 0x6465_6d61_6e64 ^ ((start + i) as u64).wrapping_mul(0x9E37_79B9),
            ));
            let copies = factor.floor() as usize + usize::from(u < factor.fract());
            if copies == 0 {
                dropped += 1;
            }
            for k in 0..copies {
                let mut c = t.clone();
                if k > 0 {
                    c.id = format!("{}.x{k}", t.id);
                    c.depart_s += k as f64;
                    added += 1;
                }
                kept.push(c);
            }
        }
        kept.sort_by(|a, b| a.depart_s.total_cmp(&b.depart_s));
        self.trips.extend(kept);
        (dropped, added)
    }

    /// Move the departures of trips not yet due in `[from_s, until_s)` by `by_s` (never before
    /// now). Returns how many moved.
    pub fn shift_demand(&mut self, by_s: f64, from_s: f64, until_s: f64) -> usize {
        let now = self.time_s;
        let start = self.next_trip;
        let mut moved = 0;
        for t in &mut self.trips[start..] {
            if (from_s..until_s).contains(&t.depart_s) {
                t.depart_s = (t.depart_s + by_s).max(now + self.cfg.dt_s);
                moved += 1;
            }
        }
        self.trips[start..].sort_by(|a, b| a.depart_s.total_cmp(&b.depart_s));
        moved
    }

    /// Whether a plan fits its controller: phases, each controlling all its links.
    pub fn check_signal_plan(&self, plan: &crate::net::SignalPlan) -> Result<(), String> {
        let Some(logic) = self.net.signals.get(plan.signal as usize) else {
            return Err(format!("no signal controller {}", plan.signal));
        };
        let n = logic.links.len();
        if plan.phases.is_empty() {
            return Err("a signal program needs at least one phase".into());
        }
        if let Some(p) = plan.phases.iter().find(|p| p.state.len() != n) {
            return Err(format!(
                "phase '{}' controls {} movements but the traffic light has {n}",
                String::from_utf8_lossy(&p.state),
                p.state.len()
            ));
        }
        if plan
            .phases
            .iter()
            .any(|p| p.duration_s.is_nan() || p.duration_s <= 0.0)
        {
            return Err("phase durations must be positive".into());
        }
        Ok(())
    }

    /// Run a signal plan (its control, offset and phases) from now on.
    pub fn apply_signal_plan(&mut self, plan: &crate::net::SignalPlan) {
        let rt = &mut self.signals[plan.signal as usize];
        rt.control = plan.control;
        rt.offset_s = plan.offset_s;
        rt.phases = plan.phases.clone().into();
        rt.phase = 0;
        rt.phase_start_s = self.time_s;
        self.signal_state[plan.signal as usize] = plan.phases[0].state.clone();
    }

    /// Switch controller `s` between fixed-time and actuated control.
    pub fn set_signal_control(&mut self, s: u32, control: SignalControl) {
        self.signals[s as usize].control = control;
    }

    /// The program controller `s` runs now: its control, offset (s) and phases.
    pub fn signal_program(&self, s: u32) -> (SignalControl, f64, &[Phase]) {
        let rt = &self.signals[s as usize];
        (rt.control, rt.offset_s, &rt.phases)
    }

    pub(super) fn reroute_through(&mut self, e: EdgeIx) {
        let net = self.net.clone();
        for s in 0..self.vehs.len() {
            let Some(v) = &self.vehs[s] else { continue };
            let ahead = &v.route[v.ri as usize + 1..];
            if !ahead.contains(&e) {
                continue;
            }
            let cur = v.route[v.ri as usize];
            let dest = *v.route.last().expect("routes are not empty");
            let class = self.vtypes[v.vt as usize].class;
            // From the current edge; a vehicle on a link lane is already committed to the next.
            let on_link = net.lanes[v.lane as usize].edge.is_none();
            let start = if on_link {
                v.route[v.ri as usize + 1]
            } else {
                cur
            };
            if start == e {
                continue;
            }
            if let Some(mut r) = fastest_route(&net, &self.costs, class, start, dest) {
                let mut new_route: Vec<EdgeIx> =
                    v.route[..v.ri as usize + usize::from(on_link)].to_vec();
                new_route.append(&mut r);
                let new_route: Arc<[EdgeIx]> = new_route.into();
                if new_route[..] != v.route[..] {
                    let v = self.vehs[s].as_mut().expect("live");
                    v.route = new_route;
                    self.totals.reroutes += 1;
                    if !on_link {
                        let nl = self.pick_link(s as u32);
                        self.veh_mut(s as u32).next_link = nl;
                    }
                }
            }
        }
    }
}
