//! A retiming changes what the signals do: starving one direction builds its queue.

use citytwin_plugin_testkit::SampleRun;
use citytwin_signal_retiming::SignalRetiming;

/// Largest queue (m) on the side-street approach v10 (north-bound into n11) after 15 minutes.
fn side_queue(extra: &str) -> f64 {
    let mut run = SampleRun::new(SignalRetiming, extra).unwrap();
    let mut worst: f64 = 0.0;
    for _ in 0..2400 {
        run.steps(1);
        let tick = run.sim.clock().tick();
        if tick > 900 && tick.is_multiple_of(60) {
            worst = worst.max(run.kpi("traffic.edge.queue_m", "v10").unwrap_or(0.0));
        }
    }
    worst
}

#[test]
fn starving_the_side_street_builds_its_queue() {
    let base = side_queue("");
    // the arterial (h01/-h11) gets 80 s, the side streets 5 s
    let retimed = side_queue(
        "[[scenario]]\nplugin = \"signal_retiming\"\nparams = { at_s = 600.0, programs = { n11 = \"GGGGgrrrrGGGGgrrrr:80 yyyyyrrrryyyyyrrrr:4 rrrrrGGGgrrrrrGGGg:5 rrrrryyyyrrrrryyyy:4\" } }",
    );
    println!("side-street queue after retiming {retimed:.0} m, before {base:.0} m");
    assert!(
        retimed > base + 20.0,
        "side-street queue {retimed:.0} m vs {base:.0} m before"
    );
}

#[test]
fn a_program_that_does_not_fit_is_refused_with_the_key() {
    let e = SampleRun::new(
        SignalRetiming,
        "[[scenario]]\nplugin = \"signal_retiming\"\nparams = { programs = { n11 = \"GGrr:30 rrGG:30\" } }",
    )
    .err()
    .unwrap();
    assert!(
        e.contains("`programs.n11`") && e.contains("controls 4 movements") && e.contains("18"),
        "{e}"
    );
    let e = SampleRun::new(
        SignalRetiming,
        "[[scenario]]\nplugin = \"signal_retiming\"\nparams = { programs = { n00 = \"G:30\" } }",
    )
    .err()
    .unwrap();
    assert!(e.contains("has no traffic light"), "{e}");
}

#[test]
fn the_model_shows_the_program_that_runs() {
    use citytwin_engine::prelude::*;
    let program =
        "GGGGgrrrrGGGGgrrrr:80 yyyyyrrrryyyyyrrrr:4 rrrrrGGGgrrrrrGGGg:5 rrrrryyyyrrrrryyyy:4";
    let mut run = SampleRun::new(
        SignalRetiming,
        &format!("[[scenario]]\nplugin = \"signal_retiming\"\nparams = {{ at_s = 10.0, programs = {{ n11 = \"{program}\" }} }}"),
    )
    .unwrap();
    run.steps(20);
    let world = run.sim.world_mut();
    let shown = world
        .query::<(&FeatureId, &Intersection)>()
        .iter(world)
        .find(|(f, _)| f.layer == "traffic" && f.id == "n11")
        .and_then(|(_, i)| i.signal.clone())
        .unwrap();
    assert_eq!(shown, SignalProgram::parse(program, 0.0).unwrap());
}
