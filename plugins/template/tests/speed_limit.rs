//! Step 5: test the effect, not that it ran: traffic on the roads is slower inside the window than
//! before it, and back to its pace after it.

use citytwin_plugin_template::SpeedLimit;
use citytwin_plugin_testkit::SampleRun;

fn mean_speed(run: &mut SampleRun, from: u64, to: u64, road: &str) -> f64 {
    // KPIs per road come every minute; average the minutes of [from, to).
    let (mut sum, mut n) = (0.0, 0.0);
    while run.sim.clock().tick() < to {
        run.steps(60);
        if run.sim.clock().tick() > from
            && let Some(v) = run.kpi("traffic.edge.mean_speed_mps", road)
            && v > 0.0
        {
            sum += v;
            n += 1.0;
        }
    }
    sum / n
}

#[test]
fn traffic_slows_in_the_window_and_recovers_after() {
    let mut run = SampleRun::new(
        SpeedLimit,
        "[[scenario]]\nplugin = \"speed_limit\"\nparams = { roads = [\"h11\", \"-h11\"], speed_kmh = 15.0, from_s = 900.0, until_s = 1800.0 }",
    )
    .unwrap();
    let before = mean_speed(&mut run, 300, 900, "h11");
    let during = mean_speed(&mut run, 1020, 1800, "h11");
    let after = mean_speed(&mut run, 1920, 2700, "h11");
    eprintln!("h11: {before:.2} m/s before, {during:.2} during, {after:.2} after");
    assert!(during <= 15.0 / 3.6 + 0.05, "during {during} m/s");
    assert!(
        before > 1.5 * during && after > 1.5 * during,
        "{before} {during} {after}"
    );
}

#[test]
fn a_typo_fails_when_the_scene_loads() {
    let e = SampleRun::new(
        SpeedLimit,
        "[[scenario]]\nplugin = \"speed_limit\"\nparams = { roads = [\"h99\"], speed_kmh = 20.0 }",
    )
    .err()
    .unwrap();
    assert!(e.contains("`roads[0]`") && e.contains("'h99'"), "{e}");
    let e = SampleRun::new(
        SpeedLimit,
        "[[scenario]]\nplugin = \"speed_limit\"\nparams = { roads = [\"h11\"], speed_kph = 20.0 }",
    )
    .err()
    .unwrap();
    assert!(e.contains("speed_kph"), "{e}");
}
