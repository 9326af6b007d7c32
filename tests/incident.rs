//! Incident input: GPS tracks matched to the roads, on a synthetic test whose truth is known.
//!
//! The sample district's traffic runs for 20 minutes; every 5 s each vehicle's position is
//! taken with the road it is on, moved by a Gaussian error of 5 m (a phone's), written to a CSV
//! file in WGS84, read back and map-matched to the traffic's roads. More than 95 % of the fixes
//! must land on the road the vehicle was on.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write;

use bevy::math::DVec2;
use bevy::prelude::Entity;
use citytwin_engine::geo_frame::GeoFrame;
use citytwin_engine::incident::mapmatch::{MatchParams, RoadNetwork};
use citytwin_engine::incident::read_tracks;
use citytwin_engine::prelude::*;
use citytwin_engine::rng::Rng;

/// A standard normal draw (Box–Muller).
fn normal(g: &mut impl Rng) -> f64 {
    let u = ((g.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let v = (g.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

#[test]
fn gps_tracks_are_matched_to_the_roads_vehicles_were_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::scene_copy_of(dir.path(), "sample_district", |t| t);
    let mut sim = common::build_sim(&path);
    let frame = sim.world().resource::<GeoFrame>().clone();
    let start = sim.clock().start().clone();
    let mut noise = SimRng::new(7).stream("test.gps_noise");
    // Truth: (vehicle, time) -> road feature id; the CSV gets the noisy fixes.
    let mut truth: BTreeMap<(String, u64), String> = BTreeMap::new();
    let mut csv = String::from("id,time,lon,lat\n");
    while sim.clock().tick() < 1200 {
        sim.step();
        let tick = sim.clock().tick();
        if tick % 5 != 0 {
            continue;
        }
        let w = sim.world_mut();
        let mut q = w.query::<(&FeatureId, &Vehicle, &Position)>();
        let rows: Vec<(String, Option<Entity>, DVec2)> = q
            .iter(w)
            .map(|(f, v, p)| (f.id.clone(), v.road, p.xy_m))
            .collect();
        for (id, road, xy) in rows {
            // Vehicles inside a junction are on no road: not scored, but still in the track.
            if let Some(r) = road {
                let f = w.entity(r).get::<FeatureId>().unwrap();
                truth.insert((id.clone(), tick), f.id.clone());
            }
            let noisy = xy + DVec2::new(5.0 * normal(&mut noise), 5.0 * normal(&mut noise));
            let ll = frame.to_wgs84(geo::Coord {
                x: noisy.x,
                y: noisy.y,
            });
            writeln!(csv, "{id},{tick},{:.8},{:.8}", ll.lon, ll.lat).unwrap();
        }
    }
    let file = dir.path().join("gps.csv");
    std::fs::write(&file, csv).unwrap();

    let tracks = read_tracks(&file, &frame, &start).unwrap();
    assert!(tracks.len() > 100, "{} tracks", tracks.len());
    let net = RoadNetwork::from_world(sim.world_mut(), "traffic");
    assert!(net.len() > 50);
    let score = |params: &MatchParams| {
        let (mut scored, mut right, mut unmatched) = (0usize, 0usize, 0usize);
        for t in &tracks {
            let m = net.match_track(&t.fixes, params);
            for ((t_s, _), m) in t.fixes.iter().zip(m) {
                let Some(want) = truth.get(&(t.id.clone(), t_s.round() as u64)) else {
                    continue;
                };
                scored += 1;
                match m {
                    Some(m) if &m.feature.id == want => right += 1,
                    Some(_) => {}
                    None => unmatched += 1,
                }
            }
        }
        (scored, right, unmatched)
    };
    let (scored, right, unmatched) = score(&MatchParams::default());
    let share = right as f64 / scored as f64;
    println!(
        "{right} of {scored} fixes on the right road ({:.1} %), {unmatched} unmatched",
        100.0 * share
    );
    assert!(scored > 5000, "{scored} fixes scored");
    assert!(share > 0.95, "{:.1} % on the right road", 100.0 * share);
    // The nearest road alone cannot tell a street's two directions apart.
    let (_, nearest, _) = score(&MatchParams {
        max_candidates: 1,
        ..MatchParams::default()
    });
    let nearest = nearest as f64 / scored as f64;
    println!("the nearest road alone: {:.1} %", 100.0 * nearest);
    assert!(nearest < share - 0.1, "nearest {nearest}, matched {share}");
}
