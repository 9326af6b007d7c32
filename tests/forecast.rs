//! The incident forecast against the simulation it comes from: forecasting 20 minutes of the
//! coupled city (storm, leak, traffic) from a moment of a recorded run must list exactly the
//! buildings the recorded run alerted about in those minutes (flooded, reached by the leak's
//! zone, ordered out, dosed past the limit) plus those already flooded, and route responders
//! around the roads closed at the end.

mod common;

use std::collections::BTreeSet;

use citytwin::forecast::{BUILDING_ALERTS, ForecastRequest, forecast};
use citytwin_engine::geo_frame::LonLat;
use citytwin_engine::store::RunStore;

#[test]
fn the_forecast_lists_the_buildings_the_simulation_alerts_about() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::scene_copy_of(dir.path(), "sample_rainstorm", |t| {
        t.replace("duration_s = 3600.0", "duration_s = 2400.0")
    });
    let store_path = dir.path().join("runs.duckdb");
    let run = common::record(&path, &store_path);
    let store = RunStore::open(&store_path).unwrap();
    let (from, to) = (900u64, 2100u64);
    let f = forecast(
        &store,
        &ForecastRequest {
            run: run.run_id,
            at_s: from as f64,
            ahead_s: (to - from) as f64,
            stations: vec![
                ("north".into(), LonLat::new(117.2290, 31.8240)),
                ("west".into(), LonLat::new(117.2240, 31.8200)),
            ],
            to: Some(LonLat::new(117.2262, 31.8196)),
            layer: "traffic".into(),
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((f.from_s, f.to_s), (from as f64, to as f64));

    // What the recorded run said about buildings in the window.
    let mut recorded = BTreeSet::new();
    for (kind, _) in BUILDING_ALERTS {
        for (tick, entity, k) in store.events_of(run.run_id, kind, to).unwrap() {
            if k == kind && tick >= from {
                recorded.insert(entity);
            }
        }
    }
    // Still flooded at the start: the last flood event before it says so.
    let mut state = std::collections::BTreeMap::new();
    for (_, e, k) in store
        .events_of(run.run_id, "flood.building_", from)
        .unwrap()
    {
        state.insert(e, k == "flood.building_flooded");
    }
    recorded.extend(state.into_iter().filter(|(_, f)| *f).map(|(e, _)| e));
    let recorded_ids: BTreeSet<String> = recorded
        .iter()
        .map(|bits| store.feature_id_of(run.run_id, *bits).unwrap().unwrap())
        .collect();
    let forecast_ids: BTreeSet<String> = f.buildings.iter().map(|b| b.feature.id.clone()).collect();
    assert!(forecast_ids.len() >= 5, "{forecast_ids:?}");
    assert_eq!(forecast_ids, recorded_ids);
    assert!(f.occupants() > 1000);
    // Water and chlorine both reach buildings in this window.
    assert!(
        f.buildings
            .iter()
            .any(|b| b.why.contains("water at the door"))
    );
    assert!(f.buildings.iter().any(|b| b.why.contains("ordered out")));

    // Routes exist and avoid the roads closed at the end.
    assert_eq!(f.routes.len(), 2);
    let closed: BTreeSet<&str> = f.closed_at_end.iter().map(|c| c.0.as_str()).collect();
    assert!(!closed.is_empty(), "the storm closes roads by {to} s");
    for r in &f.routes {
        assert!(
            !r.roads.is_empty() && r.time_s.is_finite() && r.time_s > 0.0,
            "{r:?}"
        );
        assert!(
            r.roads.iter().all(|e| !closed.contains(e.as_str())),
            "{r:?} uses {closed:?}"
        );
    }
}
