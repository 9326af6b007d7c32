//! Signal controllers each step: fixed-time and actuated phases, and pre-emption for vehicles
//! with signal priority.

use super::*;

impl Traffic {
    #[inline(never)]
    pub(super) fn update_signals(&mut self) {
        let t = self.time_s;
        let net = self.net.clone();
        for (i, s) in net.signals.iter().enumerate() {
            let rt = &mut self.signals[i];
            let phases = rt.phases.clone();
            match rt.control {
                SignalControl::Static => {
                    let cycle: f64 = phases.iter().map(|p| p.duration_s).sum();
                    let mut x = (t - rt.offset_s - rt.phase_start_s).rem_euclid(cycle);
                    let mut k = 0;
                    while k + 1 < phases.len() && x >= phases[k].duration_s {
                        x -= phases[k].duration_s;
                        k += 1;
                    }
                    rt.phase = k;
                }
                SignalControl::Actuated { max_gap_s, .. } => {
                    let p = &phases[rt.phase];
                    let elapsed = t - rt.phase_start_s;
                    let actuated = p.min_s < p.max_s;
                    let switch = if !actuated {
                        elapsed >= p.duration_s
                    } else if elapsed < p.min_s {
                        false
                    } else if elapsed >= p.max_s {
                        true
                    } else {
                        // extend while any green lane saw a vehicle within the gap
                        let recent = p
                            .state
                            .iter()
                            .enumerate()
                            .filter(|(_, c)| matches!(c, b'G' | b'g'))
                            .flat_map(|(idx, _)| &s.links[idx])
                            .any(|&k| {
                                let l = net.links[k as usize].from_lane as usize;
                                t - self.last_detection_s[l] < max_gap_s
                            });
                        !recent
                    };
                    if switch {
                        rt.phase = (rt.phase + 1) % phases.len();
                        rt.phase_start_s = t;
                    }
                }
            }
            self.signal_state[i].clone_from(&phases[rt.phase].state);
        }
        if self.priority_vehicles > 0 {
            self.preempt_for_priority_vehicles();
        }
    }

    /// Signals turn green ahead of vehicles with signal priority: within 200 m or 20 s of a
    /// signalised link on its route, the controller jumps to (and holds) a phase that gives
    /// that link green. Vehicles already in the junction are not stopped by this: drivers of
    /// conflicting movements see red at once, as when an emergency vehicle pre-empts.
    pub(super) fn preempt_for_priority_vehicles(&mut self) {
        const RANGE_M: f64 = 200.0;
        const RANGE_S: f64 = 20.0;
        let net = self.net.clone();
        let mut wanted: Vec<(u32, u16)> = Vec::new();
        for v in self.vehs.iter().flatten().filter(|v| v.priority) {
            let range = RANGE_M.min(RANGE_S * v.speed_mps.max(1.0));
            // the next signal on its way only
            if let Some(sig) = self
                .links_ahead(v, range)
                .as_slice()
                .iter()
                .find_map(|&(k, _)| net.links[k as usize].signal)
            {
                wanted.push(sig);
            }
        }
        for (s, idx) in wanted {
            let now = self.time_s;
            let rt = &mut self.signals[s as usize];
            let phases = rt.phases.clone();
            let green = |p: &Phase| matches!(p.state[idx as usize], b'G' | b'g');
            // hold the current phase if it is green for the vehicle, else jump to one that is
            let p = if green(&phases[rt.phase]) {
                Some(rt.phase)
            } else {
                phases.iter().position(green)
            };
            if let Some(p) = p {
                rt.phase = p;
                rt.phase_start_s = match rt.control {
                    // a fixed-time cycle is shifted so that phase p starts now
                    SignalControl::Static => {
                        now - rt.offset_s - phases[..p].iter().map(|q| q.duration_s).sum::<f64>()
                    }
                    SignalControl::Actuated { .. } => now,
                };
            }
            self.signal_state[s as usize].clone_from(&phases[rt.phase].state);
        }
    }

    /// State letter of a link now: signal letter, or `M`/`m` from its priority.
    pub(super) fn link_state(&self, k: LinkIx) -> u8 {
        let link = &self.net.links[k as usize];
        if self.closed[link.to_edge as usize] {
            return b'r';
        }
        match link.signal {
            Some((s, i)) => {
                let c = self.signal_state[s as usize][i as usize];
                if c == b'o' || c == b'O' {
                    if link.priority == Priority::Major {
                        b'M'
                    } else {
                        b'm'
                    }
                } else {
                    c
                }
            }
            None => {
                if link.priority == Priority::Major {
                    b'M'
                } else {
                    b'm'
                }
            }
        }
    }
}
