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
    let e = leak("{ substance = \"chlorine\", at = \"tanks\", start_s = 0.0, duration_s = 60.0, rate_kg_s = 0.1, threshold_ug_m3 = 1450.0, evacuation = { to = [\"v42\", \"nowhere\"] } }")
        .err()
        .unwrap();
    assert!(
        e.contains("`evacuation.to[1]`") && e.contains("'nowhere'"),
        "{e}"
    );
    let e = leak("{ substance = \"chlorine\", at = \"tanks\", start_s = 0.0, duration_s = 60.0, rate_kg_s = 0.1, threshold_ug_m3 = 1450.0, evacuation = { to = [\"v42\"], car_share = 1.5 } }")
        .err()
        .unwrap();
    assert!(e.contains("`evacuation.car_share`"), "{e}");
    let e = leak("{ substance = \"chlorine\", at = \"tanks\", start_s = 0.0, duration_s = 60.0, rate_kg_s = 0.1, threshold_ug_m3 = 1450.0, close_roads = true, road_layer = \"rails\" }")
        .err()
        .unwrap();
    assert!(e.contains("`road_layer`") && e.contains("'rails'"), "{e}");
}

#[test]
fn the_zone_closes_the_roads_inside_it_and_orders_its_buildings_out() {
    use bevy::ecs::message::Messages;
    use bevy::prelude::*;
    use citytwin_engine::prelude::*;
    use geo::Intersects;
    use h3o::CellIndex;
    use std::collections::BTreeSet;

    let mut run = leak(
        "{ substance = \"ammonia\", at = \"tanks\", start_s = 300.0, duration_s = 900.0, rate_kg_s = 0.2, height_m = 2.0, threshold_ug_m3 = 20900.0, name = \"valve\", close_roads = true, evacuate = true, evacuation = { to = [\"v42\"], car_share = 0.2, people_per_car = 1.5, over_s = 600.0 } }",
    )
    .unwrap();
    let mut cursor = run
        .sim
        .world()
        .resource::<Messages<RoadCommand>>()
        .get_cursor();
    let mut closed: BTreeSet<String> = BTreeSet::new();
    let (mut checked, mut ever_closed, mut reopened) = (0, 0, 0);
    for _ in 0..2400 {
        run.steps(1);
        for c in cursor.read(run.sim.world().resource::<Messages<RoadCommand>>()) {
            match c {
                RoadCommand::Close { road, by } if by == "valve" => {
                    assert!(closed.insert(road.id.clone()), "{road} closed twice");
                    ever_closed += 1;
                }
                RoadCommand::Open { road, by } if by == "valve" => {
                    assert!(closed.remove(&road.id), "{road} opened while not closed");
                    reopened += 1;
                }
                _ => {}
            }
        }
        // A map is made at the end of every fifth minute and read at the next step: one step
        // later, the closed roads are exactly those whose centreline crosses a cell above the
        // threshold, computed here from the map and the roads' own lines; the traffic's next
        // KPIs count them closed.
        let t = run.sim.world().resource::<SimClock>().elapsed_s() as u64;
        if t % 300 == 62 {
            assert_eq!(
                run.kpi("traffic.roads_closed", "city"),
                Some(closed.len() as f64),
                "at {t} s"
            );
        }
        if t % 300 != 2 || t < 600 {
            continue;
        }
        let world = run.sim.world_mut();
        let frame = world.resource::<GeoFrame>().clone();
        let zone: Vec<geo::Polygon<f64>> = world
            .resource::<FieldLog>()
            .latest("pollution.ammonia")
            .map(|(_, m)| {
                m.cells
                    .iter()
                    .filter(|(_, v)| *v >= 20900.0e-9)
                    .map(|&(h3, _)| frame.cell_polygon(CellIndex::try_from(h3).unwrap()))
                    .collect()
            })
            .unwrap_or_default();
        let mut q = world.query_filtered::<(&FeatureId, &Shape), With<Road>>();
        let expected: BTreeSet<String> = q
            .iter(world)
            .filter(|(f, s)| f.layer == "traffic" && zone.iter().any(|p| s.0.intersects(p)))
            .map(|(f, _)| f.id.clone())
            .collect();
        assert_eq!(closed, expected, "at {t} s, {} zone cells", zone.len());
        checked += 1;
    }
    eprintln!("{ever_closed} closures, {reopened} reopenings, {checked} maps checked");
    assert!(ever_closed >= 2 && checked >= 5);
    // The cloud has gone: every road it closed is open again.
    assert!(closed.is_empty() && reopened == ever_closed, "{closed:?}");
    assert_eq!(run.kpi("leak.roads_closed", "valve"), Some(0.0));
    // Orders went to the buildings the zone reached, and to no other.
    let world = run.sim.world_mut();
    let mut q = world.query::<(Entity, &Building, Option<&EvacuationOrder>)>();
    let ordered: Vec<(Entity, u32, f64)> = q
        .iter(world)
        .filter_map(|(e, b, o)| o.map(|o| (e, b.occupants, o.since_s)))
        .collect();
    let reached = run.kpi("leak.buildings_reached", "valve").unwrap();
    assert_eq!(ordered.len() as f64, reached);
    assert!(ordered.iter().all(|o| o.2 > 300.0));
    let people: u32 = ordered.iter().map(|o| o.1).sum();
    assert_eq!(
        run.kpi("leak.people_evacuated", "valve"),
        Some(people as f64)
    );
    // Their cars: a fifth of the occupants, 1.5 to a car, rounded per building; they left and
    // reached the assembly road.
    let cars: u64 = ordered
        .iter()
        .map(|o| (o.1 as f64 * 0.2 / 1.5).round() as u64)
        .sum();
    assert_eq!(
        run.kpi("leak.evacuation_vehicles", "valve"),
        Some(cars as f64)
    );
    let arrived: Vec<_> = run
        .trips()
        .iter()
        .filter(|t| t.id.starts_with("valve.evac."))
        .collect();
    eprintln!("{cars} evacuation cars, {} arrived", arrived.len());
    assert!(arrived.len() as f64 >= 0.5 * cars as f64 && cars > 0);
}
