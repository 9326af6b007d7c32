//! Signal-timing optimisation: Webster's cycle and green splits from measured flows, then a
//! search that runs many short simulations in parallel and keeps the plan with the least total
//! delay.
//!
//! Webster (1958): the optimum cycle `C₀ = (1.5 L + 5) / (1 − Y)`, with `L` the lost time per
//! cycle and `Y` the sum over green phases of the critical flow ratio `y = q / s` (flow over
//! saturation flow of the busiest lane the phase serves); effective green is shared in proportion
//! to `y`. The search then tries, controller by controller, a shorter and a longer cycle and
//! seconds moved between green phases, evaluates every candidate by simulating the whole demand
//! (in parallel with rayon, each candidate a clone of the same start state), and applies the best
//! improvements; rounds repeat until nothing improves. The outcome depends only on the inputs,
//! never on the number of threads.

use rayon::prelude::*;

use crate::net::{Phase, SignalControl, SignalPlan};
use crate::sim::Traffic;

/// Settings of the optimisation.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct OptimiseOptions {
    /// Simulated span of each evaluation, s.
    pub horizon_s: f64,
    /// Search rounds after Webster's plan (0: Webster only).
    pub rounds: usize,
    /// Saturation flow per lane, veh/h (this simulator's Krauss default discharges ≈ 1 860).
    pub saturation_vph: f64,
    /// Shortest green, s.
    pub min_green_s: f64,
    /// Cycle bounds, s.
    pub cycle_bounds_s: (f64, f64),
}

impl Default for OptimiseOptions {
    fn default() -> Self {
        Self {
            horizon_s: 3600.0,
            rounds: 3,
            saturation_vph: 1860.0,
            min_green_s: 5.0,
            cycle_bounds_s: (40.0, 150.0),
        }
    }
}

/// How a set of plans performs over the horizon.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Total time lost by all vehicles (arrived and still driving), s.
    pub total_delay_s: f64,
    /// Mean travel time of arrived trips, s.
    pub mean_travel_time_s: f64,
    /// Travel-time index of arrived trips.
    pub travel_time_index: f64,
    /// Trips arrived within the horizon.
    pub arrived: u64,
}

/// The result of [`optimise`].
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct Optimisation {
    /// With the network's own programs.
    pub before: Evaluation,
    /// With Webster's plans.
    pub webster: Evaluation,
    /// With the network's programs run as fixed time.
    pub own_fixed: Evaluation,
    /// With the best plans found.
    pub after: Evaluation,
    /// The best plans, one per controller (fixed time).
    pub plans: Vec<SignalPlan>,
    /// Simulations run.
    pub simulations: usize,
}

/// Run `base` (a fresh simulation at time 0) with `plans` applied, to the horizon.
pub fn evaluate(base: &Traffic, plans: &[SignalPlan], horizon_s: f64) -> Evaluation {
    let mut sim = base.clone();
    for p in plans {
        sim.apply_signal_plan(p);
    }
    let dt = sim.dt_s();
    let mut t = 0.0;
    while t < horizon_s && !sim.is_done() {
        sim.step(t);
        sim.take_finished();
        t += dt;
    }
    let tot = sim.totals();
    Evaluation {
        total_delay_s: sim.total_time_loss_s(),
        mean_travel_time_s: if tot.arrived > 0 {
            tot.travel_time_sum_s / tot.arrived as f64
        } else {
            f64::NAN
        },
        travel_time_index: if tot.travel_time_sum_s > tot.time_loss_sum_s {
            tot.travel_time_sum_s / (tot.travel_time_sum_s - tot.time_loss_sum_s)
        } else {
            f64::NAN
        },
        arrived: tot.arrived,
    }
}

fn is_green(p: &Phase) -> bool {
    p.state.iter().any(|c| matches!(c, b'G' | b'g'))
}

/// Webster's fixed-time plan for every controller, from the link flows `base` produces with its
/// own programs over the horizon.
pub fn webster_plans(base: &Traffic, opts: &OptimiseOptions) -> Vec<SignalPlan> {
    let mut sim = base.clone();
    let dt = sim.dt_s();
    let mut t = 0.0;
    while t < opts.horizon_s && !sim.is_done() {
        sim.step(t);
        sim.take_finished();
        t += dt;
    }
    let hours = (t / 3600.0).max(1e-9);
    let net = sim.net.clone();
    // flow per incoming lane, veh/h
    let mut lane_flow = vec![0.0; net.lanes.len()];
    for (k, link) in net.links.iter().enumerate() {
        lane_flow[link.from_lane as usize] += sim.link_counts()[k] as f64 / hours;
    }
    let mut plans = Vec::new();
    for (si, s) in net.signals.iter().enumerate() {
        let (_, _, phases) = base.signal_program(si as u32);
        let greens: Vec<usize> = (0..phases.len())
            .filter(|&i| is_green(&phases[i]))
            .collect();
        if greens.is_empty() {
            continue;
        }
        // critical flow ratio of each green phase: its busiest lane with right of way
        let y: Vec<f64> = greens
            .iter()
            .map(|&i| {
                phases[i]
                    .state
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c == b'G')
                    .flat_map(|(idx, _)| &s.links[idx])
                    .map(|&k| {
                        lane_flow[net.links[k as usize].from_lane as usize] / opts.saturation_vph
                    })
                    .fold(0.0, f64::max)
                    .max(0.01)
            })
            .collect();
        let intergreen: f64 = (0..phases.len())
            .filter(|i| !greens.contains(i))
            .map(|i| phases[i].duration_s)
            .sum();
        // lost time: intergreens plus 2 s of start-up loss per green (HCM's default)
        let lost = intergreen + 2.0 * greens.len() as f64;
        let big_y: f64 = y.iter().sum::<f64>().min(0.9);
        let (lo, hi) = opts.cycle_bounds_s;
        let cycle = ((1.5 * lost + 5.0) / (1.0 - big_y))
            .clamp(lo.max(lost + opts.min_green_s * greens.len() as f64), hi);
        let total_y: f64 = y.iter().sum();
        let effective = cycle - intergreen;
        let mut new = phases.to_vec();
        for (gi, &i) in greens.iter().enumerate() {
            let g = (effective * y[gi] / total_y).max(opts.min_green_s).round();
            new[i].duration_s = g;
            new[i].min_s = g;
            new[i].max_s = g;
        }
        for p in &mut new {
            p.min_s = p.duration_s;
            p.max_s = p.duration_s;
        }
        plans.push(SignalPlan {
            signal: si as u32,
            control: SignalControl::Static,
            offset_s: 0.0,
            phases: new,
        });
    }
    plans
}

/// Variations of one controller's plan: cycle ×0.85 and ×1.15, and 4 s moved from each green
/// phase to the next.
fn variations(p: &SignalPlan, min_green: f64) -> Vec<SignalPlan> {
    let greens: Vec<usize> = (0..p.phases.len())
        .filter(|&i| is_green(&p.phases[i]))
        .collect();
    let mut out = Vec::new();
    for f in [0.85, 1.15] {
        let mut q = p.clone();
        for &i in &greens {
            let d = (q.phases[i].duration_s * f).round().max(min_green);
            q.phases[i].duration_s = d;
            q.phases[i].min_s = d;
            q.phases[i].max_s = d;
        }
        out.push(q);
    }
    for (a, &i) in greens.iter().enumerate() {
        let j = greens[(a + 1) % greens.len()];
        if i == j || p.phases[i].duration_s - 4.0 < min_green {
            continue;
        }
        let mut q = p.clone();
        for (k, delta) in [(i, -4.0), (j, 4.0)] {
            let d = q.phases[k].duration_s + delta;
            q.phases[k].duration_s = d;
            q.phases[k].min_s = d;
            q.phases[k].max_s = d;
        }
        out.push(q);
    }
    out
}

/// Propose fixed-time plans for every signal of `base` (a fresh simulation at time 0).
/// `progress` is told each round's best total delay.
pub fn optimise(
    base: &Traffic,
    opts: &OptimiseOptions,
    mut progress: impl FnMut(usize, f64),
) -> Optimisation {
    let before = evaluate(base, &[], opts.horizon_s);
    let webster_plans = webster_plans(base, opts);
    let webster = evaluate(base, &webster_plans, opts.horizon_s);
    // The search starts from the better of Webster's plans and the network's own programs run
    // as fixed time (their planned durations).
    let own: Vec<SignalPlan> = (0..base.net.signals.len() as u32)
        .filter(|&s| webster_plans.iter().any(|p| p.signal == s))
        .map(|s| {
            let (_, offset_s, phases) = base.signal_program(s);
            let mut phases = phases.to_vec();
            for p in &mut phases {
                p.min_s = p.duration_s;
                p.max_s = p.duration_s;
            }
            SignalPlan {
                signal: s,
                control: SignalControl::Static,
                offset_s,
                phases,
            }
        })
        .collect();
    let own_fixed = evaluate(base, &own, opts.horizon_s);
    let (mut plans, mut best) = if own_fixed.total_delay_s < webster.total_delay_s {
        (own, own_fixed)
    } else {
        (webster_plans, webster)
    };
    let mut simulations = 4; // flows, before, Webster, own programs as fixed time
    for round in 0..opts.rounds {
        // one candidate = one controller's plan changed, the others as they are
        let candidates: Vec<(usize, SignalPlan)> = plans
            .iter()
            .enumerate()
            .flat_map(|(i, p)| {
                variations(p, opts.min_green_s)
                    .into_iter()
                    .map(move |v| (i, v))
            })
            .collect();
        let results: Vec<Evaluation> = candidates
            .par_iter()
            .map(|(i, v)| {
                let mut trial = plans.clone();
                trial[*i] = v.clone();
                evaluate(base, &trial, opts.horizon_s)
            })
            .collect();
        simulations += candidates.len();
        // the best improving change per controller, in candidate order
        let mut chosen: Vec<Option<(f64, usize)>> = vec![None; plans.len()];
        for (c, r) in results.iter().enumerate() {
            let i = candidates[c].0;
            if r.total_delay_s < best.total_delay_s
                && chosen[i].is_none_or(|b| r.total_delay_s < b.0)
            {
                chosen[i] = Some((r.total_delay_s, c));
            }
        }
        if chosen.iter().all(Option::is_none) {
            progress(round + 1, best.total_delay_s);
            break;
        }
        // all improvements together; if they interfere, the single best one
        let mut combined = plans.clone();
        for (i, c) in chosen.iter().enumerate() {
            if let Some((_, c)) = c {
                combined[i] = candidates[*c].1.clone();
            }
        }
        let all = evaluate(base, &combined, opts.horizon_s);
        simulations += 1;
        let (single_delay, single) = chosen
            .iter()
            .flatten()
            .copied()
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
            .expect("at least one improvement");
        if all.total_delay_s <= single_delay {
            plans = combined;
            best = all;
        } else {
            let (i, v) = &candidates[single];
            plans[*i] = v.clone();
            best = results[single];
        }
        progress(round + 1, best.total_delay_s);
    }
    Optimisation {
        before,
        webster,
        own_fixed,
        after: best,
        plans,
        simulations,
    }
}

/// Write plans as a SUMO additional file (`sumo -a FILE` and the traffic simulation's
/// `signal_plans` both load it).
pub fn write_plans(
    path: &std::path::Path,
    base: &Traffic,
    plans: &[SignalPlan],
) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(
        f,
        "<!-- signal plans proposed by citytwin optimize-signals -->"
    )?;
    writeln!(f, "<additional>")?;
    for p in plans {
        let id = &base.net.signals[p.signal as usize].id;
        let kind = match p.control {
            SignalControl::Static => "static",
            SignalControl::Actuated { .. } => "actuated",
        };
        writeln!(
            f,
            "    <tlLogic id=\"{id}\" type=\"{kind}\" programID=\"citytwin\" offset=\"{}\">",
            p.offset_s
        )?;
        for ph in &p.phases {
            writeln!(
                f,
                "        <phase duration=\"{}\" state=\"{}\"/>",
                ph.duration_s,
                String::from_utf8_lossy(&ph.state)
            )?;
        }
        writeln!(f, "    </tlLogic>")?;
    }
    writeln!(f, "</additional>")?;
    f.flush()
}
