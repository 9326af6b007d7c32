//! Side by side with SUMO 1.28 on the same network and routes: SUMO's own figures are in
//! `../shared/traffic/*/sumo_reference*.json` (from `shared/scripts/sumo_reference.sh`).

mod common;

use std::path::Path;
use std::sync::Arc;

use citytwin_traffic::tripinfo::summary;
use citytwin_traffic::{Demand, Network, Traffic, TrafficConfig};
use common::*;

fn run(net: &Path, routes: &Path, seed: u64) -> (Vec<citytwin_traffic::TripRecord>, Traffic) {
    let net = Network::from_sumo_file(net).unwrap();
    let mut demand = Demand::new();
    demand.read_sumo_file(routes, &net).unwrap();
    let mut sim = Traffic::new(
        Arc::new(net),
        demand,
        TrafficConfig {
            seed,
            check_invariants: true,
            ..TrafficConfig::default()
        },
    );
    let trips = run_all(&mut sim, 20_000.0);
    (trips, sim)
}

fn compare(dir: &str, net: &str, routes: &str, reference_file: &str) {
    compare_in(
        &shared().join("traffic").join(dir),
        dir,
        net,
        routes,
        reference_file,
    );
}

fn compare_in(base: &Path, dir: &str, net: &str, routes: &str, reference_file: &str) {
    let (trips, sim) = run(&base.join(net), &base.join(routes), 42);
    let ours = summary(&trips);
    let r = base.join(reference_file);
    let (tt, tti, n) = (
        reference(&r, "travel_time_mean_s"),
        reference(&r, "travel_time_index"),
        reference(&r, "inserted"),
    );
    let tt_err = (ours.mean_travel_time_s - tt) / tt;
    let tti_err = (ours.travel_time_index - tti) / tti;
    println!(
        "{dir}: arrived {} of {n}; mean travel time {:.1} s vs SUMO {tt:.1} s ({:+.2} %); TTI {:.3} vs {tti:.3} ({:+.2} %); teleports {}",
        ours.arrived,
        ours.mean_travel_time_s,
        tt_err * 100.0,
        ours.travel_time_index,
        tti_err * 100.0,
        sim.totals().teleports
    );
    assert_eq!(ours.arrived as f64, n, "every vehicle arrives");
    assert_eq!(sim.totals().collisions, 0, "no vehicles overlap");
    assert!(
        tt_err.abs() < 0.05,
        "mean travel time off by {:.2} %",
        tt_err * 100.0
    );
    assert!(
        tti_err.abs() < 0.05,
        "travel-time index off by {:.2} %",
        tti_err * 100.0
    );
}

#[test]
fn grid10_matches_sumo() {
    compare(
        "grid10",
        "grid10.net.xml",
        "g10_5k.rou.xml",
        "sumo_reference_g10_5k.json",
    );
}

#[test]
fn helsinki_matches_sumo() {
    compare(
        "helsinki",
        "helsinki.net.xml",
        "hel_2k.rou.xml",
        "sumo_reference.json",
    );
}

#[test]
fn the_sample_district_matches_sumo() {
    // SUMO's figures on the sample scene's own network and trips (data/sample/traffic/).
    compare_in(
        &repo().join("data/sample/traffic"),
        "sample district",
        "district.net.xml",
        "district.rou.xml",
        "sumo_reference.json",
    );
}

#[test]
fn same_seed_same_trips_other_seed_other_trips() {
    let base = shared().join("traffic/helsinki");
    let (net, rou) = (base.join("helsinki.net.xml"), base.join("hel_2k.rou.xml"));
    let (a, _) = run(&net, &rou, 1);
    let (b, _) = run(&net, &rou, 1);
    let (c, _) = run(&net, &rou, 2);
    assert_eq!(a, b, "the same seed gives bit-identical trips");
    assert_ne!(a, c, "another seed gives other trips");
    // …and the statistics stay close: the result is not an accident of one seed.
    let (sa, sc) = (summary(&a), summary(&c));
    let rel = (sa.mean_travel_time_s - sc.mean_travel_time_s).abs() / sa.mean_travel_time_s;
    assert!(rel < 0.05, "seeds 1 and 2 differ by {:.1} %", rel * 100.0);
}

#[test]
fn tripstats_py_reads_our_trip_records_as_it_reads_sumos() {
    // SUMO's own statistics script, run on our tripinfo output, agrees with our summary.
    let base = shared().join("traffic/helsinki");
    let (trips, sim) = run(
        &base.join("helsinki.net.xml"),
        &base.join("hel_2k.rou.xml"),
        42,
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tripinfo.xml");
    citytwin_traffic::tripinfo::TripinfoWriter::create(&file)
        .unwrap()
        .write(&sim.net, &trips)
        .unwrap();
    let out = std::process::Command::new("python3")
        .arg(shared().join("scripts/tripstats.py"))
        .arg(&file)
        .output()
        .expect("python3 runs tripstats.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ours = summary(&trips);
    // the file holds seconds to two decimals, so means agree to half a hundredth
    let close = |a: f64, b: f64| (a - b).abs() <= 0.005;
    assert_eq!(v["arrived"].as_u64(), Some(ours.arrived as u64));
    assert!(
        close(
            v["travel_time_mean_s"].as_f64().unwrap(),
            ours.mean_travel_time_s
        ),
        "{v}"
    );
    assert!(
        close(
            v["time_loss_mean_s"].as_f64().unwrap(),
            ours.mean_time_loss_s
        ),
        "{v}"
    );
    assert!(
        (v["travel_time_index"].as_f64().unwrap() - ours.travel_time_index).abs() < 1e-3,
        "{v}"
    );
}
