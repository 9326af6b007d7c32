//! More demand means more trips and more congestion; a shift moves the peak.

use citytwin_demand_change::DemandChange;
use citytwin_plugin_testkit::SampleRun;

/// (inserted, TTI, mean delay) after the hour.
fn run(params: Option<&str>) -> (f64, f64, f64) {
    let extra = params
        .map(|p| format!("[[scenario]]\nplugin = \"demand_change\"\nparams = {p}"))
        .unwrap_or_default();
    let mut run = SampleRun::new(DemandChange, &extra).unwrap();
    run.steps(3600);
    let trips = run.trips();
    let delay = trips.iter().map(|t| t.time_loss_s).sum::<f64>() / trips.len() as f64;
    (
        run.kpi("traffic.inserted", "city").unwrap(),
        run.kpi("traffic.travel_time_index", "city").unwrap(),
        delay,
    )
}

#[test]
fn scaling_demand_scales_trips_and_congestion() {
    let (n0, tti0, d0) = run(None);
    let (n1, tti1, d1) = run(Some("{ factor = 1.5 }"));
    let (n2, _, d2) = run(Some("{ factor = 0.5 }"));
    println!(
        "trips {n0} → ×1.5 {n1}, ×0.5 {n2}; delay {d0:.1} → {d1:.1} / {d2:.1} s; TTI {tti0:.3} → {tti1:.3}"
    );
    assert!(
        (n1 / n0 - 1.5).abs() < 0.06,
        "×1.5 gave {n1} trips against {n0}"
    );
    assert!(
        (n2 / n0 - 0.5).abs() < 0.06,
        "×0.5 gave {n2} trips against {n0}"
    );
    assert!(
        d1 > d0 && d0 > d2,
        "delay grows with demand: {d2:.1} < {d0:.1} < {d1:.1}"
    );
    assert!(tti1 > tti0);
}

#[test]
fn shifting_demand_moves_departures_out_of_the_window() {
    // everything planned in the first ten minutes leaves half an hour later
    let mut run = SampleRun::new(
        DemandChange,
        "[[scenario]]\nplugin = \"demand_change\"\nparams = { shift_s = 1800.0, from_s = 0.0, until_s = 600.0 }",
    )
    .unwrap();
    // 600 steps: the last KPI sample (tick 540) counts what left in the first nine minutes
    run.steps(600);
    assert_eq!(
        run.kpi("traffic.inserted", "city"),
        Some(0.0),
        "nobody left in the first ten minutes"
    );
}

#[test]
fn bad_parameters_are_named() {
    let e = SampleRun::new(
        DemandChange,
        "[[scenario]]\nplugin = \"demand_change\"\nparams = { factor = -2.0 }",
    )
    .err()
    .unwrap();
    assert!(e.contains("`factor`"), "{e}");
}
