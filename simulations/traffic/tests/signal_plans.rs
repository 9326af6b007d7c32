//! Signal-timing optimisation: Webster's formula on a case worked by hand, a search that never
//! makes things worse and repeats itself exactly, and plans that round-trip through SUMO's
//! additional-file format.

mod common;

use std::sync::Arc;

use citytwin_traffic::net::SignalControl;
use citytwin_traffic::signal_opt::{OptimiseOptions, optimise, webster_plans, write_plans};
use citytwin_traffic::{Demand, Network, Traffic, TrafficConfig};
use common::*;

#[test]
fn webster_cycle_and_splits_follow_the_formula() {
    // One approach, one green phase: 600 veh/h on one lane, saturation 1 860 veh/h.
    let net = net_from(&straight_net(
        400.0,
        300.0,
        13.89,
        Some(&[("G", 30.0), ("y", 3.0), ("r", 27.0)]),
    ));
    let demand = demand_from(
        &net,
        r#"<routes><flow id="f" begin="0" end="3600" period="6" departSpeed="max"><route edges="in out"/></flow></routes>"#,
    );
    let base = sim(net, demand, 1);
    let opts = OptimiseOptions::default();
    let plans = webster_plans(&base, &opts);
    assert_eq!(plans.len(), 1);
    let y: f64 = 600.0 / 1860.0;
    // lost time: amber 3 + red 27 (the program's intergreens) + 2 s start-up
    let lost: f64 = 3.0 + 27.0 + 2.0;
    let c0: f64 = ((1.5 * lost + 5.0) / (1.0 - y)).clamp(40.0, 150.0);
    let green = plans[0].phases[0].duration_s;
    assert!(
        (green - (c0 - 30.0)).abs() <= 1.0,
        "green {green} s vs Webster {:.1} s",
        c0 - 30.0
    );
    assert_eq!(plans[0].phases[1].duration_s, 3.0, "intergreens stay");
    assert_eq!(plans[0].control, SignalControl::Static);
}

fn district() -> Traffic {
    let dir = repo().join("data/sample/traffic");
    let net = Network::from_sumo_file(&dir.join("district.net.xml")).unwrap();
    let mut d = Demand::new();
    d.read_sumo_file(&dir.join("district.rou.xml"), &net)
        .unwrap();
    Traffic::new(Arc::new(net), d, TrafficConfig::default())
}

#[test]
fn the_search_never_worsens_the_start_and_is_deterministic() {
    let base = district();
    let opts = OptimiseOptions {
        horizon_s: 1800.0,
        rounds: 1,
        ..OptimiseOptions::default()
    };
    let a = optimise(&base, &opts, |_, _| {});
    let start = a.webster.total_delay_s.min(a.own_fixed.total_delay_s);
    assert!(a.after.total_delay_s <= start, "{:?} vs {start}", a.after);
    assert!(a.simulations > 10);
    let b = optimise(&base, &opts, |_, _| {});
    assert_eq!(
        a.plans, b.plans,
        "same inputs, same plans, whatever the threads did"
    );
    assert_eq!(a.after, b.after);
}

#[test]
fn plans_round_trip_through_a_sumo_additional_file() {
    let base = district();
    let plans = webster_plans(
        &base,
        &OptimiseOptions {
            horizon_s: 900.0,
            ..OptimiseOptions::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plans.add.xml");
    write_plans(&file, &base, &plans).unwrap();
    let back = base.net.read_signal_plans(&file).unwrap();
    assert_eq!(back, plans);
    // errors name the file and the element
    std::fs::write(&file, r#"<additional><tlLogic id="nope" type="static"><phase duration="5" state="G"/></tlLogic></additional>"#).unwrap();
    let e = base.net.read_signal_plans(&file).unwrap_err().to_string();
    assert!(
        e.contains("plans.add.xml:1") && e.contains("nope") && e.contains("not a traffic light"),
        "{e}"
    );
    let id = &base.net.signals[0].id;
    std::fs::write(&file, format!(r#"<additional><tlLogic id="{id}" type="static"><phase duration="5" state="G"/></tlLogic></additional>"#)).unwrap();
    let e = base.net.read_signal_plans(&file).unwrap_err().to_string();
    assert!(e.contains("controls 1 links"), "{e}");
}
