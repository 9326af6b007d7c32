//! Priority at the signals cuts the emergency vehicle's travel time.

use citytwin_green_wave::GreenWave;
use citytwin_plugin_testkit::SampleRun;

/// (emergency travel time s, its standing time s, everyone else's mean delay s)
fn run(priority: bool, depart_s: f64) -> (f64, f64, f64) {
    let mut run = SampleRun::new(
        GreenWave,
        &format!(
            "[[scenario]]\nplugin = \"green_wave\"\nparams = {{ from = \"h01\", to = \"h31\", depart_s = {depart_s}, priority = {priority} }}"
        ),
    )
    .unwrap();
    run.steps(3600);
    let e = run
        .trips()
        .iter()
        .find(|t| t.id == "emergency-1")
        .expect("the emergency vehicle arrived")
        .clone();
    let others: Vec<_> = run
        .trips()
        .iter()
        .filter(|t| t.id != "emergency-1")
        .collect();
    let delay = others.iter().map(|t| t.time_loss_s).sum::<f64>() / others.len() as f64;
    assert_eq!(
        run.kpi("traffic.vehicle.travel_time_s", "emergency-1"),
        Some(e.duration_s())
    );
    (e.duration_s(), e.waiting_s, delay)
}

#[test]
fn priority_cuts_the_emergency_vehicles_time_at_the_signals() {
    // several departures, so the result is not one lucky phase
    let (mut with, mut without, mut stand_with, mut stand_without) = (0.0, 0.0, 0.0, 0.0);
    let (mut delay_with, mut delay_without) = (0.0, 0.0);
    for depart in [600.0, 900.0, 1200.0, 1500.0, 1800.0] {
        let (a, sa, da) = run(true, depart);
        let (b, sb, db) = run(false, depart);
        with += a;
        without += b;
        stand_with += sa;
        stand_without += sb;
        delay_with += da / 5.0;
        delay_without += db / 5.0;
    }
    println!(
        "emergency vehicle h01 → h31, 5 departures: {with:.0} s with priority, {without:.0} s without; standing {stand_with:.0} s vs {stand_without:.0} s; everyone else's mean delay {delay_with:.2} s vs {delay_without:.2} s"
    );
    assert!(with < without, "{with} vs {without}");
    assert!(
        stand_with < stand_without,
        "standing {stand_with} vs {stand_without}"
    );
}

#[test]
fn unknown_roads_are_named() {
    let e = SampleRun::new(
        GreenWave,
        "[[scenario]]\nplugin = \"green_wave\"\nparams = { from = \"h01\", to = \"nowhere\" }",
    )
    .err()
    .unwrap();
    assert!(e.contains("`to`: no road 'nowhere'"), "{e}");
}
