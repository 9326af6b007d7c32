//! Incident input: GPS tracks matched to the roads, on a synthetic test whose truth is known;
//! and the sample incident (`scenes/sample_incident.toml`) end to end on the command line.
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
        if !tick.is_multiple_of(5) {
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

fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_citytwin"))
}

fn run_ok(cmd: &mut std::process::Command) -> String {
    let o = cmd.output().unwrap();
    let t = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{cmd:?}: {t}");
    t
}

/// The storm, the leak and the crash, from the command line: the observed run imported beside
/// the simulated one, the recording replayed bit for bit, a forecast from the crash, and a
/// what-if forked from it.
#[test]
fn the_sample_incident_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let scene = common::scene_copy_of(dir.path(), "sample_incident", |t| t);
    let store = dir.path().join("runs.duckdb");
    let s = store.to_str().unwrap();
    let t = run_ok(bin().arg("incident").arg(&scene));
    assert!(t.contains("observed run 1"), "{t}");
    run_ok(bin().arg("run").arg("-q").arg(&scene));
    let st = citytwin_engine::store::RunStore::open(&store).unwrap();
    let runs = st.runs().unwrap();
    assert_eq!(
        runs.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(),
        ["observed", "completed"]
    );
    // What was observed: every log entry, every reading (in SI), the probes' fixes.
    assert_eq!(
        st.event_counts(1)
            .unwrap()
            .iter()
            .find(|(k, _)| k == "incident.crash")
            .map(|x| x.1),
        Some(1)
    );
    let rain: Vec<_> = st
        .kpis(1)
        .unwrap()
        .into_iter()
        .filter(|k| k.name == "observed.rain")
        .collect();
    assert!(rain.len() >= 100 && rain.iter().all(|k| k.unit == "m/s"));
    // The storm's peak: tens of mm/h, a few 1e-6 m/s.
    let peak = rain.iter().map(|k| k.value).fold(0.0, f64::max);
    assert!(peak > 1e-5 && peak < 1e-4, "observed rain peak {peak} m/s");
    assert!(
        st.row_counts(1).unwrap()[2].1 > 1000,
        "snapshots of the probes"
    );
    drop(st);
    // An observed run is not replayed.
    let o = bin()
        .args(["replay", "1", "--verify", "--store", s])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("observed run"));

    let t = run_ok(bin().args(["replay", "2", "--verify", "-q", "--store", s]));
    assert!(t.contains("replay reproduces the recording"), "{t}");
    let t = run_ok(bin().args([
        "forecast",
        "2",
        "--at",
        "1500",
        "--ahead",
        "900",
        "--store",
        s,
        "--station",
        "north=117.2290,31.8240",
        "--to",
        "117.2280,31.8199",
    ]));
    assert!(
        t.contains("buildings at risk") && t.contains("north:"),
        "{t}"
    );
    let end = t
        .lines()
        .find(|l| l.starts_with("roads closed at the end:"))
        .unwrap_or_else(|| panic!("{t}"));
    assert!(
        end.contains(" h21 (") && end.contains("road_closure#1"),
        "the crash closes h21: {end}"
    );
    let what_if = common::repo().join("scenes/what_if/divert_traffic.toml");
    let t = run_ok(
        bin()
            .args([
                "fork",
                "2",
                "--at",
                "1500",
                "-q",
                "--store",
                s,
                "--scenario",
            ])
            .arg(&what_if),
    );
    assert!(
        t.contains("run 3 forked from run 2 at 1500 s: completed"),
        "{t}"
    );
}
