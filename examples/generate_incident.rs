//! Writes `data/sample/incident/`: what the sample incident (`scenes/sample_incident.toml`)
//! leaves behind, generated from the scene's own run — the files an operations centre would
//! hold, for the import and the map-matching to work on end to end:
//!
//! - `gps.csv`: one vehicle in eight (a probe fleet) every 10 s, WGS84, with a 5 m receiver
//!   error (Gaussian, per axis), and the ambulance;
//! - `readings.csv`: every minute, the rain gauges (mm/h), the water-level sensors (m of water
//!   at their cell) and the air stations (µg/m³ of each pollutant they measure), with 10 %
//!   noise;
//! - `log.csv`: the calls the control room logged — the leak reported two minutes after it
//!   starts, the crash, the first streets and buildings reported flooded, the evacuation.
//!
//! `cargo run --release --example generate_incident`. Deterministic (seeded).

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use bevy::math::DVec2;
use bevy::prelude::*;
use citytwin_engine::geo_frame::GeoFrame;
use citytwin_engine::prelude::*;
use citytwin_engine::rng::Rng;
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::{Sim, SimOptions};
use citytwin_flood::FloodSim;

fn normal(g: &mut impl Rng) -> f64 {
    let u = ((g.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let v = (g.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn probe(id: &str) -> bool {
    id.starts_with("ambulance") || blake3::hash(id.as_bytes()).as_bytes()[0].is_multiple_of(8)
}

fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let scene_path = repo.join("scenes/sample_incident.toml");
    // The scene without its [incident] table: these are the files it names.
    let text = std::fs::read_to_string(&scene_path).expect("the incident scene");
    let cut = text.find("\n[incident]").expect("an [incident] table");
    let rest = &text[cut + 1..];
    let end = rest.find("\n[output]").expect("[output] after [incident]");
    let text = format!("{}{}", &text[..cut + 1], &rest[end + 1..]);
    let scene = Scene::from_str(&scene_path, text).unwrap_or_else(|e| panic!("{e}"));
    let mut sim = Sim::build(&scene, &citytwin::registry(), SimOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let frame = sim.world().resource::<GeoFrame>().clone();
    let mut rng = SimRng::new(20260715).stream("incident.observations");
    let ll = |p: DVec2| frame.to_wgs84(geo::Coord { x: p.x, y: p.y });

    // Sensors, by kind.
    let sensors: Vec<(String, SensorKind, DVec2)> = {
        let w = sim.world_mut();
        let mut q = w.query::<(&Sensor, &Position)>();
        let mut v: Vec<_> = q
            .iter(w)
            .map(|(s, p)| (s.station.clone(), s.kind.clone(), p.xy_m))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let place_of = |w: &World, e: Entity| -> Option<DVec2> {
        if let Some(p) = w.get::<Position>(e) {
            return Some(p.xy_m);
        }
        let s = w.get::<Shape>(e)?;
        use geo::Centroid;
        s.0.centroid().map(|c| DVec2::new(c.x(), c.y()))
    };

    let mut gps = String::from("id,time,lon,lat\n");
    let mut readings = String::from("time,station,quantity,value,unit\n");
    let mut log = String::from("time,type,text,lon,lat\n");
    let mut logged: BTreeSet<String> = BTreeSet::new();
    let (mut roads_reported, mut buildings_reported) = (0, 0);
    while !sim.finished() {
        sim.step();
        let t = sim.clock().elapsed_s();
        let tick = sim.clock().tick();
        let w = sim.world_mut();
        if tick.is_multiple_of(10) {
            let mut q = w.query::<(&FeatureId, &Vehicle, &Position)>();
            let mut fixes: Vec<(String, DVec2)> = q
                .iter(w)
                .filter(|(f, _, _)| probe(&f.id))
                .map(|(f, _, p)| (f.id.clone(), p.xy_m))
                .collect();
            fixes.sort_by(|a, b| a.0.cmp(&b.0));
            for (id, p) in fixes {
                let noisy = p + DVec2::new(5.0 * normal(&mut rng), 5.0 * normal(&mut rng));
                let g = ll(noisy);
                writeln!(gps, "{id},{t:.0},{:.7},{:.7}", g.lon, g.lat).unwrap();
            }
        }
        if tick.is_multiple_of(60) {
            let kpis = w.resource::<Kpis>();
            let flood = w.resource::<FloodSim>();
            for (station, kind, p) in &sensors {
                let noise = 1.0 + 0.1 * normal(&mut rng);
                match kind {
                    SensorKind::RainGauge => {
                        let r = kpis.get("rain.intensity", "city").unwrap_or(0.0) * 3.6e6;
                        writeln!(
                            readings,
                            "{t:.0},{station},rain,{:.2},mm/h",
                            (r * noise).max(0.0)
                        )
                        .unwrap();
                    }
                    SensorKind::WaterLevel => {
                        let d = flood
                            .cell_at(*p)
                            .map_or(0.0, |c| flood.surface.h_m[c] as f64);
                        writeln!(
                            readings,
                            "{t:.0},{station},water_level,{:.3},m",
                            (d * noise).max(0.0)
                        )
                        .unwrap();
                    }
                    SensorKind::AirQuality { pollutants } => {
                        for sp in pollutants {
                            if let Some(c) = kpis.get(&format!("pollution.{sp}"), station) {
                                writeln!(
                                    readings,
                                    "{t:.0},{station},{sp},{:.2},ug/m3",
                                    (c * 1e9 * noise).max(0.0)
                                )
                                .unwrap();
                            }
                        }
                    }
                    SensorKind::TrafficDetector => {}
                }
            }
        }
        let events: Vec<_> = w.resource::<EventLog>().last_tick().to_vec();
        for ev in events {
            let mut at = ev.xy_m.or_else(|| ev.entity.and_then(|e| place_of(w, e)));
            if ev.kind == "scenario.road_closed" && at.is_none() {
                // The closure names its road by feature id: the crash is on it.
                let mut q = w.query::<(Entity, &FeatureId, &Road)>();
                let road = q
                    .iter(w)
                    .find(|(_, f, _)| f.layer == "traffic" && f.id == "h21")
                    .map(|(e, _, _)| e);
                at = road.and_then(|e| place_of(w, e));
            }
            let name = ev
                .entity
                .and_then(|e| w.get::<FeatureId>(e))
                .map_or(String::new(), |f| f.id.clone());
            let entry = match ev.kind.as_str() {
                "flood.road_flooded" if roads_reported < 4 => {
                    roads_reported += 1;
                    Some((
                        "flooding",
                        format!("caller: water across the street at {name}"),
                    ))
                }
                "flood.building_flooded" if buildings_reported < 3 => {
                    buildings_reported += 1;
                    Some((
                        "flooding",
                        format!("caller: water coming in at building {name}"),
                    ))
                }
                "scenario.evacuation_ordered" if logged.insert("evacuation".into()) => Some((
                    "evacuation",
                    "police: evacuation of the buildings in the chlorine zone begun".to_string(),
                )),
                "scenario.road_closed" if logged.insert("crash".into()) => Some((
                    "crash",
                    "two cars collided on Changjiang Road, eastbound lane blocked; one injured"
                        .to_string(),
                )),
                _ => None,
            };
            if let Some((kind, text)) = entry {
                let (lon, lat) = at.map_or((String::new(), String::new()), |p| {
                    let g = ll(p);
                    (format!("{:.7}", g.lon), format!("{:.7}", g.lat))
                });
                writeln!(log, "{t:.0},{kind},\"{text}\",{lon},{lat}").unwrap();
            }
        }
        if tick == 1020 {
            // Two minutes after the valve fails, a worker calls it in.
            let mut q = w.query_filtered::<(Entity, &FeatureId), With<EmissionSource>>();
            let tanks = q.iter(w).find(|(_, f)| f.id == "tanks").map(|(e, _)| e);
            if let Some(p) = tanks.and_then(|e| place_of(w, e)) {
                let g = ll(p);
                writeln!(
                    log,
                    "{t:.0},leak,\"plant worker: chlorine smell at the tank farm, valve leaking\",{:.7},{:.7}",
                    g.lon, g.lat
                )
                .unwrap();
            }
        }
    }
    let dir = repo.join("data/sample/incident");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in [
        ("gps.csv", &gps),
        ("readings.csv", &readings),
        ("log.csv", &log),
    ] {
        let p: &Path = &dir.join(name);
        std::fs::write(p, text).unwrap();
        println!("{} ({} lines)", p.display(), text.lines().count());
    }
}
