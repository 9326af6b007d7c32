//! The leak is real: nothing before it starts; while it lasts a zone above the threshold covers
//! the buildings downwind of the tanks, whose occupants are counted; after it the cloud drifts
//! off and the zone empties; and the numbers agree with the buildings' own occupants.

use citytwin_chemical_leak::ChemicalLeak;
use citytwin_plugin_testkit::SampleRun;

fn leak(params: &str) -> Result<SampleRun, String> {
    SampleRun::new(
        ChemicalLeak,
        &format!("[[scenario]]\nplugin = \"chemical_leak\"\nparams = {params}"),
    )
}

#[test]
fn the_zone_grows_with_the_leak_and_empties_after_it() {
    // Ammonia's AEGL-1 is 30 ppm = 20.9 mg/m³.
    let mut run = leak(
        "{ substance = \"ammonia\", at = \"tanks\", start_s = 600.0, duration_s = 900.0, rate_kg_s = 0.2, height_m = 2.0, threshold_ug_m3 = 20900.0, name = \"valve\" }",
    )
    .unwrap();
    run.steps(600);
    assert_eq!(run.kpi("leak.zone_area", "valve").unwrap_or(0.0), 0.0);
    let mut most = (0.0f64, 0.0f64);
    for _ in 0..(900 + 60) / 60 {
        run.steps(60);
        let area = run.kpi("leak.zone_area", "valve").unwrap_or(0.0);
        let people = run.kpi("leak.people_in_zone", "valve").unwrap_or(0.0);
        most = (most.0.max(area), most.1.max(people));
    }
    eprintln!("zone at most {:.0} m², {} people in it", most.0, most.1);
    assert!(most.0 > 5_000.0, "zone at most {} m²", most.0);
    assert!(most.1 > 0.0, "nobody inside");
    let reached = run.kpi("leak.buildings_reached", "valve").unwrap();
    let people = run.kpi("leak.people_reached", "valve").unwrap();
    assert!(
        reached >= 1.0 && people >= most.1,
        "{reached} buildings, {people} people"
    );
    // Half an hour later the cloud has gone.
    run.steps(1800);
    assert_eq!(run.kpi("leak.zone_area", "valve"), Some(0.0));
    assert_eq!(run.kpi("leak.people_in_zone", "valve"), Some(0.0));
    // The people counted are the buildings' occupants: no more than the district holds.
    let total: f64 = {
        let world = run.sim.world_mut();
        let mut q = world.query::<&citytwin_engine::model::Building>();
        q.iter(world).map(|b| b.occupants as f64).sum()
    };
    assert!(people <= total);
}

#[test]
fn bad_parameters_are_named() {
    let e = leak("{ substance = \"chlorine\", at = \"nowhere\", start_s = 0.0, duration_s = 60.0, rate_kg_s = 0.1, threshold_ug_m3 = 1450.0 }")
        .err()
        .unwrap();
    assert!(e.contains("`at`") && e.contains("'nowhere'"), "{e}");
    let e = leak("{ substance = \"chlorine\", lon = 117.23, start_s = 0.0, duration_s = 60.0, rate_kg_s = 0.1, threshold_ug_m3 = 1450.0 }")
        .err()
        .unwrap();
    assert!(e.contains("`lon` and `lat`"), "{e}");
    let e = leak("{ substance = \"chlorine\", at = \"tanks\", start_s = 0.0, duration_s = 60.0, rate_kg_s = -1.0, threshold_ug_m3 = 1450.0 }")
        .err()
        .unwrap();
    assert!(e.contains("`rate_kg_s`"), "{e}");
}
