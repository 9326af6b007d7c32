//! The closure is real: the closed road carries nobody in its window and traffic again after,
//! and the vehicles that meant to use it still arrive by other roads.

use citytwin_plugin_testkit::SampleRun;
use citytwin_road_closure::RoadClosure;

fn closure(params: &str) -> Result<SampleRun, String> {
    SampleRun::new(
        RoadClosure,
        &format!("[[scenario]]\nplugin = \"road_closure\"\nparams = {params}"),
    )
}

#[test]
fn a_closed_road_is_empty_in_its_window_and_busy_outside_it() {
    let mut run = closure("{ roads = [\"h11\"], from_s = 600.0, until_s = 1800.0 }").unwrap();
    // flow on h11 in each KPI interval: (tick, veh/h)
    let mut f = Vec::new();
    for _ in 0..3000 {
        run.steps(1);
        let tick = run.sim.clock().tick();
        if tick.is_multiple_of(60) {
            f.push((
                tick,
                run.kpi("traffic.edge.flow_vph", "h11").unwrap_or(f64::NAN),
            ));
        }
    }
    // A KPI at tick t covers the minute before it. Vehicles already on the road when it closes
    // drive off it within the first two minutes; after that nobody uses it until it reopens.
    let during: Vec<f64> = f
        .iter()
        .filter(|(t, _)| (840..=1800).contains(t))
        .map(|x| x.1)
        .collect();
    let before: f64 = f
        .iter()
        .filter(|(t, _)| (120..=600).contains(t))
        .map(|x| x.1)
        .sum();
    let after: f64 = f
        .iter()
        .filter(|(t, _)| (1920..=3000).contains(t))
        .map(|x| x.1)
        .sum();
    assert!(
        during.iter().all(|&q| q == 0.0),
        "flow while closed: {during:?}"
    );
    assert!(
        before > 0.0 && after > 0.0,
        "before {before}, after {after}"
    );
    let (inserted, arrived, running) = (
        run.kpi("traffic.inserted", "city").unwrap(),
        run.kpi("traffic.arrived", "city").unwrap(),
        run.kpi("traffic.running", "city").unwrap(),
    );
    assert_eq!(inserted, arrived + running, "no vehicle lost");
    assert!(run.kpi("traffic.reroutes", "city").unwrap() > 0.0);
    assert_eq!(run.kpi("traffic.teleports", "city"), Some(0.0));
}

#[test]
fn closing_roads_makes_trips_detour_against_the_baseline() {
    let mean_route = |run: &mut SampleRun| {
        run.steps(3600);
        let trips = run.trips();
        trips.iter().map(|t| t.route_length_m).sum::<f64>() / trips.len() as f64
    };
    let base = mean_route(&mut SampleRun::new(RoadClosure, "").unwrap());
    let closed =
        mean_route(&mut closure("{ roads = [\"h11\", \"-h11\", \"h21\", \"-h21\"] }").unwrap());
    assert!(
        closed > base,
        "mean route with the arterial closed {closed:.1} m vs {base:.1} m"
    );
}

#[test]
fn bad_parameters_name_the_parameter() {
    let e = closure("{ roads = [\"h11\", \"nowhere\"] }").err().unwrap();
    assert!(
        e.contains("`roads[1]`: no road 'nowhere'") && e.contains("scene.toml:"),
        "{e}"
    );
    let e = closure("{ roads = [\"h11\"], from_s = 900.0, until_s = 600.0 }")
        .err()
        .unwrap();
    assert!(e.contains("`until_s`"), "{e}");
    let e = closure("{ roads = [\"h11\"], from = 3 }").err().unwrap();
    assert!(e.contains("unknown field `from`"), "{e}");
}
