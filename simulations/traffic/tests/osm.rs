//! Road networks from OpenStreetMap: the Helsinki extract against SUMO netconvert's network of
//! the same extract, turn restrictions, and random trips driven to the end.

mod common;

use std::sync::Arc;

use citytwin_engine::geo_frame::{GeoFrame, LonLat};
use citytwin_engine::import::osm_pbf as pbf;
use citytwin_engine::rng::SimRng;
use citytwin_traffic::demand::RandomTrips;
use citytwin_traffic::osm::network_from_pbf;
use citytwin_traffic::{Demand, Network, Traffic, TrafficConfig};
use common::*;

fn helsinki() -> Network {
    let frame = GeoFrame::new(LonLat::new(24.9443, 60.1716));
    network_from_pbf(&shared().join("osm/Helsinki.osm.pbf"), &frame).unwrap()
}

fn lane_km(n: &Network) -> f64 {
    n.edges
        .iter()
        .map(|e| e.length_m * e.lanes.len() as f64)
        .sum::<f64>()
        / 1000.0
}

#[test]
fn helsinki_from_osm_resembles_netconverts_network_of_the_same_extract() {
    let ours = helsinki();
    let theirs =
        Network::from_sumo_file(&shared().join("traffic/helsinki/helsinki.net.xml")).unwrap();
    let ratio = lane_km(&ours) / lane_km(&theirs);
    println!(
        "lane-km {:.2} vs netconvert {:.2} (ratio {ratio:.3}); traffic lights {} vs {}",
        lane_km(&ours),
        lane_km(&theirs),
        ours.signals.len(),
        theirs.signals.len()
    );
    // netconvert joins close junctions and drops some stubs; the road length agrees within 25 %
    assert!((0.8..1.25).contains(&ratio), "lane-km ratio {ratio:.3}");
    // signals: netconvert joins clustered ones (35); we keep one per signalised crossing
    assert!(
        (30..=60).contains(&ours.signals.len()),
        "{} traffic lights",
        ours.signals.len()
    );
    for s in &ours.signals {
        assert!(s.phases.iter().all(|p| p.state.len() == s.links.len()));
        assert!(
            s.phases.iter().any(|p| p.state.contains(&b'G')),
            "{} never shows green",
            s.id
        );
    }
    assert!(
        ours.edges
            .iter()
            .all(|e| e.length_m > 0.0 && !e.lanes.is_empty())
    );
    // every junction someone can enter can be left, except true dead ends
    let stuck = ours
        .edges
        .iter()
        .filter(|e| {
            e.lanes
                .iter()
                .all(|&l| ours.lanes[l as usize].links.is_empty())
        })
        .count();
    assert!(stuck * 10 < ours.edges.len(), "{stuck} edges lead nowhere");
}

#[test]
fn turn_restrictions_are_honoured() {
    let net = helsinki();
    let data = pbf::read(&std::fs::read(shared().join("osm/Helsinki.osm.pbf")).unwrap()).unwrap();
    let mut checked = 0;
    for r in &data.relations {
        let tags: std::collections::HashMap<_, _> = r.tags.iter().cloned().collect();
        if tags.get("type").map(String::as_str) != Some("restriction") {
            continue;
        }
        let Some(kind) = tags.get("restriction") else {
            continue;
        };
        if !kind.starts_with("no_") {
            continue;
        }
        let member = |role: &str| r.members.iter().find(|m| m.2 == role).map(|m| m.1);
        let (Some(from), Some(via), Some(to)) = (member("from"), member("via"), member("to"))
        else {
            continue;
        };
        let Some(j) = net.junctions.iter().position(|j| j.id == via.to_string()) else {
            continue;
        };
        let way_of = |e: u32| {
            net.edges[e as usize]
                .id
                .trim_start_matches('-')
                .split('#')
                .next()
                .unwrap()
                .parse::<i64>()
                .unwrap()
        };
        for l in &net.links {
            if l.junction as usize == j {
                let from_edge = net.lanes[l.from_lane as usize].edge.unwrap();
                assert!(
                    !(way_of(from_edge) == from && way_of(l.to_edge) == to),
                    "relation {} ({kind}) forbids way {from} → way {to} at node {via}",
                    r.id
                );
            }
        }
        checked += 1;
    }
    assert!(checked > 0, "the extract has turn restrictions to check");
}

#[test]
fn random_trips_on_the_osm_network_all_arrive_and_repeat() {
    let run = |seed: u64| {
        let net = helsinki();
        let mut d = Demand::new();
        let spec = RandomTrips {
            vehicles: 600,
            begin_s: 0.0,
            end_s: 1200.0,
            min_distance_m: 300.0,
        };
        let added = d.add_random_trips(
            &net,
            &spec,
            &mut SimRng::new(seed).stream("traffic.random_trips"),
        );
        assert_eq!(added, 600);
        let mut sim = Traffic::new(
            Arc::new(net),
            d,
            TrafficConfig {
                check_invariants: true,
                seed,
                ..TrafficConfig::default()
            },
        );
        let trips = run_all(&mut sim, 10_000.0);
        assert_eq!(trips.len(), 600, "all trips arrive");
        assert_eq!(sim.totals().collisions, 0);
        trips
    };
    let a = run(5);
    assert_eq!(a, run(5));
    let s = citytwin_traffic::tripinfo::summary(&a);
    assert!(
        (1.0..2.5).contains(&s.travel_time_index),
        "TTI {}",
        s.travel_time_index
    );
}

#[test]
fn a_file_that_is_not_osm_pbf_is_named_in_the_error() {
    let frame = GeoFrame::new(LonLat::new(24.9, 60.2));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("roads.osm.pbf");
    std::fs::write(&bad, b"\x00\x00\x00\x05hello world").unwrap();
    let e = network_from_pbf(&bad, &frame).unwrap_err().to_string();
    assert!(
        e.contains("roads.osm.pbf") && e.contains("not a readable OSM PBF file"),
        "{e}"
    );
}
