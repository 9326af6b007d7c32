//! Traffic-engineering references nobody here wrote: queue discharge and start wave (SUMO's own
//! measurements and HCM, see ../shared/README.md), the fundamental diagram on a ring road, and
//! Webster's uniform delay at an isolated signal.

mod common;

use std::collections::HashMap;

use citytwin_traffic::demand::CarFollowModel;
use common::*;

const SPEED_50_KMH: f64 = 13.89;

/// 34 cars queue behind a 200 s red on one 50 km/h lane; returns the stop-line crossing times
/// and, per queued car, (standing front position m, time it starts moving s).
fn queue_discharge(model: Option<CarFollowModel>) -> (Vec<f64>, Vec<(f64, f64)>) {
    let net = net_from(&straight_net(
        1000.0,
        500.0,
        SPEED_50_KMH,
        Some(&[("r", 200.0), ("G", 10_000.0)]),
    ));
    let mut demand = demand_from(
        &net,
        r#"<routes><flow id="q" begin="0" period="4" number="34" departSpeed="max"><route edges="in out"/></flow></routes>"#,
    );
    if let Some(m) = model {
        for t in &mut demand.vtypes {
            t.model = m;
        }
    }
    let mut sim = sim(net, demand, 42);
    let in_edge = sim.net.edge("in").unwrap() as usize;
    let mut crossings = Vec::new();
    let mut standing: HashMap<String, f64> = HashMap::new();
    let mut starts = Vec::new();
    let mut t = 0.0;
    while !sim.is_done() && t < 2000.0 {
        sim.step(t);
        let stats = sim.take_edge_stats();
        for _ in 0..stats[in_edge].exits {
            crossings.push(t);
        }
        for v in sim.vehicles() {
            if sim.net.lanes[v.lane as usize].id != "in_0" {
                continue;
            }
            if v.speed_mps <= 0.1 {
                standing.insert(v.id.clone(), v.pos_m);
            } else if t > 200.0
                && let Some(p) = standing.remove(&v.id)
            {
                starts.push((p, t));
            }
        }
        t += 1.0;
    }
    assert_eq!(
        crossings.len(),
        34,
        "every queued car crosses the stop line"
    );
    assert!(
        crossings[0] >= 200.0,
        "nobody runs the red light: first crossing at {}",
        crossings[0]
    );
    (crossings, starts)
}

fn saturation_headway(crossings: &[f64]) -> f64 {
    // HCM: from the fifth car on, the headways settle to the saturation headway.
    (crossings[33] - crossings[4]) / 29.0
}

#[test]
fn krauss_queue_discharges_at_sumos_saturation_flow_and_start_wave() {
    let (crossings, starts) = queue_discharge(None);
    let h = saturation_headway(&crossings);
    let flow = 3600.0 / h;
    // SUMO 1.28, Krauss defaults, same setting: 1.91 s = 1 885 veh/h; HCM base 1 900 pc/h/lane.
    assert!(
        (h - 1.91).abs() / 1.91 < 0.10,
        "saturation headway {h:.3} s vs SUMO's 1.91 s"
    );
    assert!(
        (1700.0..=2100.0).contains(&flow),
        "saturation flow {flow:.0} veh/h"
    );
    // The start wave runs upstream: position falls as start time grows.
    assert!(
        starts.len() >= 20,
        "{} queued cars observed starting",
        starts.len()
    );
    let (ts, ps): (Vec<f64>, Vec<f64>) = starts.iter().map(|(p, t)| (*t, *p)).unzip();
    let (slope_mps, _) = linear_fit(&ts, &ps);
    let wave_kmh = slope_mps * 3.6;
    assert!(
        (-25.0..=-15.0).contains(&wave_kmh),
        "start wave {wave_kmh:.1} km/h (SUMO: -21.8)"
    );
    println!("krauss: headway {h:.3} s, flow {flow:.0} veh/h, start wave {wave_kmh:.1} km/h");
}

#[test]
fn idm_queue_discharges_at_sumos_idm_saturation_flow() {
    let (crossings, _) = queue_discharge(Some(CarFollowModel::Idm { delta: 4.0 }));
    let h = saturation_headway(&crossings);
    // SUMO 1.28's IDM with T = 1.0 s in the same setting: 2.02 s = 1 781 veh/h.
    assert!(
        (h - 2.02).abs() / 2.02 < 0.10,
        "IDM saturation headway {h:.3} s vs SUMO's 2.02 s"
    );
    println!("idm: headway {h:.3} s, flow {:.0} veh/h", 3600.0 / h);
}

/// (density veh/km, flow veh/h) on a 1 km one-lane ring with `n` cars, after a warm-up.
fn ring_point(n: usize) -> (f64, f64) {
    let net = net_from(&ring_net(1000.0, SPEED_50_KMH));
    let half = net.lanes[net.edges[net.edge("e1").unwrap() as usize].lanes[0] as usize].length_m;
    let spacing = 2.0 * half / n as f64;
    let laps: Vec<&str> = std::iter::repeat_n(["e1", "e2"], 200).flatten().collect();
    let mut xml = String::from("<routes>\n");
    for i in 0..n {
        let x = 5.0 + i as f64 * spacing;
        let (edges, pos) = if x <= half {
            (laps.join(" "), x)
        } else {
            (laps[1..].join(" "), (x - half).max(5.0))
        };
        xml.push_str(&format!(
            "<vehicle id=\"v{i}\" depart=\"0\" departPos=\"{pos:.3}\" departSpeed=\"0\"><route edges=\"{edges}\"/></vehicle>\n"
        ));
    }
    xml.push_str("</routes>");
    let demand = demand_from(&net, &xml);
    let mut sim = sim(net, demand, 7);
    let mut t = 0.0;
    while t < 600.0 {
        sim.step(t);
        t += 1.0;
    }
    assert_eq!(sim.running(), n as u64, "all {n} cars are on the ring");
    sim.take_edge_stats();
    while t < 1800.0 {
        sim.step(t);
        t += 1.0;
    }
    let stats = sim.take_edge_stats();
    let samples: u64 = stats.iter().map(|s| s.samples).sum();
    let speed: f64 = stats.iter().map(|s| s.speed_sum_mps).sum::<f64>() / samples as f64;
    let k = n as f64; // per km: the ring is 1 km
    assert_eq!(sim.totals().collisions, 0);
    (k, k * speed * 3.6)
}

#[test]
fn ring_road_fundamental_diagram_has_the_expected_capacity_and_jam_density() {
    let points: Vec<(f64, f64)> = (1..=13).map(|i| ring_point(i * 10)).collect();
    for (k, q) in &points {
        println!("k = {k:5.1} veh/km  q = {q:6.0} veh/h");
    }
    let (k_crit, capacity) = points
        .iter()
        .copied()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert!(
        (1800.0..=2200.0).contains(&capacity),
        "capacity {capacity:.0} veh/h/lane at {k_crit} veh/km"
    );
    // The congested branch, extrapolated to zero flow, gives the jam density.
    let congested: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(k, _)| *k > k_crit + 5.0)
        .collect();
    assert!(
        congested.len() >= 4,
        "too few congested points: {congested:?}"
    );
    let (ks, qs): (Vec<f64>, Vec<f64>) = congested.into_iter().unzip();
    let (slope, intercept) = linear_fit(&ks, &qs);
    let k_jam = -intercept / slope;
    assert!(slope < 0.0, "flow falls with density in congestion");
    assert!(
        (120.0..=150.0).contains(&k_jam),
        "jam density {k_jam:.1} veh/km/lane"
    );
    println!(
        "capacity {capacity:.0} veh/h at {k_crit} veh/km, jam density {k_jam:.1} veh/km, wave {:.1} km/h",
        slope
    );
}

/// Mean time loss of a uniform arrival stream at `vph` through the straight road, with or
/// without the signal.
fn mean_time_loss(vph: f64, phases: Option<&[(&str, f64)]>) -> f64 {
    let net = net_from(&straight_net(500.0, 300.0, SPEED_50_KMH, phases));
    let xml = format!(
        r#"<routes><flow id="f" begin="0" end="3600" period="{:.4}" departSpeed="max"><route edges="in out"/></flow></routes>"#,
        3600.0 / vph
    );
    let demand = demand_from(&net, &xml);
    let mut sim = sim(net, demand, 11);
    let trips = run_all(&mut sim, 10_000.0);
    assert_eq!(trips.len() as u64, sim.totals().inserted);
    // Skip the first cycles while the stream fills the road.
    let used: Vec<_> = trips.iter().filter(|t| t.depart_s >= 300.0).collect();
    used.iter().map(|t| t.time_loss_s).sum::<f64>() / used.len() as f64
}

#[test]
fn signal_delay_matches_webster_uniform_delay() {
    // Cycle 60 s: green 27, amber 3, red 30. Saturation flow and start-up lost time of this
    // model, measured as in the discharge test (HCM: l1 = Σ over the first four cars of their
    // headway minus the saturation headway); drivers stop on amber when they can, so the
    // effective green is the displayed green minus l1.
    let phases = [("G", 27.0), ("y", 3.0), ("r", 30.0)];
    let cycle = 60.0;
    let (crossings, _) = queue_discharge(None);
    let h_s = saturation_headway(&crossings);
    let s = 3600.0 / h_s;
    // The step stamped 200 s is the first one driven on green (it covers 199 → 200 s).
    let lost = (crossings[3] - 199.0) - 4.0 * h_s;
    let green = 27.0 - lost;
    let lambda = green / cycle;
    println!(
        "saturation flow {s:.0} veh/h, start-up lost time {lost:.2} s, effective green {green:.2} s"
    );
    for x in [0.3, 0.5, 0.7, 0.9] {
        let vph = x * s * lambda;
        let delay = mean_time_loss(vph, Some(&phases)) - mean_time_loss(vph, None);
        let webster = 0.5 * cycle * (1.0 - lambda).powi(2) / (1.0 - x * lambda);
        let err = (delay - webster) / webster;
        println!(
            "v/c {x}: {vph:.0} veh/h, delay {delay:.2} s, Webster {webster:.2} s ({:+.1} %)",
            err * 100.0
        );
        assert!(
            err.abs() < 0.15,
            "v/c {x}: delay {delay:.2} s vs Webster's {webster:.2} s"
        );
    }
}
