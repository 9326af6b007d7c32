//! People exposed by dose: in a steady plume the dose at a building grows as concentration ×
//! time, so after `T` seconds it is `C·T` at every building, the buildings past the limit are
//! those with `C·T` above it, each passes it at the step `⌈limit / (C·dt)⌉`, and the people
//! exposed are their occupants.

mod common;

use std::collections::BTreeMap;

use bevy::prelude::*;
use citytwin_engine::prelude::*;
use citytwin_engine::sim::{Sim, SimOptions};
use citytwin_pollution::PollutionSim;
use common::*;
use geo::Centroid;

fn build(dir: &std::path::Path, limit_mg_min_m3: f64) -> Sim {
    let text = sample_with_pollution(
        dir,
        &format!(
            "[simulations.pollution]\npoint_model = \"plume\"\ntraffic = false\n\
             weather = {{ wind_speed_mps = 3.0, wind_from_deg = 60.0, stability = \"D\" }}\n\
             dose_limits_mg_min_m3 = {{ SO2 = {limit_mg_min_m3} }}\n"
        ),
    );
    let text = text.replace("duration_s = 3600.0", "duration_s = 600.0");
    let scene = scene(dir, &text).unwrap();
    Sim::build(
        &scene,
        &registry(),
        SimOptions {
            seed: None,
            strict_schedule: true,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// SO2 at every building's centroid (the steady plume's, at the receptor height), kg/m³, with
/// the building's occupants.
fn at_buildings(sim: &mut Sim) -> BTreeMap<Entity, (f64, u32)> {
    let world = sim.world_mut();
    let mut q = world.query::<(Entity, &Building, &Shape)>();
    let list: Vec<(Entity, u32, [f64; 2])> = q
        .iter(world)
        .map(|(e, b, s)| {
            let c = s.0.centroid().unwrap();
            (e, b.occupants, [c.x(), c.y()])
        })
        .collect();
    let p = world.resource::<PollutionSim>();
    let w = p.weather.at(0.0);
    let s = p.species.iter().position(|x| x == "SO2").unwrap();
    list.into_iter()
        .map(|(e, n, xy)| (e, (p.concentration(s, xy, 1.5, &w), n)))
        .collect()
}

#[test]
fn the_dose_is_concentration_times_time_and_counts_the_people_past_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    // A first look at the plume sets a limit half the buildings' doses pass in 10 minutes.
    let mut probe = build(dir.path(), 1.0);
    probe.step();
    let c = at_buildings(&mut probe);
    let mut doses: Vec<f64> = c
        .values()
        .map(|v| v.0 * 600.0)
        .filter(|&d| d > 0.0)
        .collect();
    doses.sort_by(f64::total_cmp);
    assert!(doses.len() >= 4, "{} buildings in the plume", doses.len());
    let limit_kg_s_m3 = doses[doses.len() / 2] * 0.999;
    let limit_mg_min_m3 = limit_kg_s_m3 / 6e-5;

    let mut sim = build(dir.path(), limit_mg_min_m3);
    let mut first_over: BTreeMap<Entity, u64> = BTreeMap::new();
    while !sim.finished() {
        let tick = sim.world().resource::<SimClock>().tick();
        sim.step();
        for e in sim.world().resource::<EventLog>().last_tick() {
            if e.kind == "pollution.dose_exceeded" {
                let who = e.entity.unwrap();
                assert!(first_over.insert(who, tick).is_none(), "twice: {who}");
            }
        }
    }
    // The plume is steady: the concentrations now are those of every step.
    let c = at_buildings(&mut sim);
    // The KPIs are the sample's, every 60 s: the last at tick 540, after 541 steps of dose.
    let kpi_tick = 540;
    let kpis = sim.world().resource::<Kpis>();
    let max = kpis.get("pollution.SO2.max_dose", "city").unwrap();
    let top = c.values().map(|v| v.0).fold(0.0, f64::max) * (kpi_tick + 1) as f64;
    assert!((max - top).abs() <= 1e-9 * top, "{max} vs {top} kg·s/m³");
    // Who passed, and when: C·dt per step from the first step.
    let (mut people, mut buildings) = (0u64, 0usize);
    for (e, (conc, n)) in &c {
        let steps = (limit_kg_s_m3 / conc).ceil() as u64;
        if conc * 600.0 > limit_kg_s_m3 {
            // After step t the dose is (t + 1)·C·dt: it passes the limit at t + 1 = ⌈limit/C⌉
            // (one later if that is exact).
            let at = first_over.get(e).copied();
            assert!(
                at.is_some_and(|t| t + 1 == steps || t == steps),
                "{e}: passed at {at:?}, expected step {steps}"
            );
            if at.is_some_and(|t| t <= kpi_tick) {
                people += *n as u64;
                buildings += 1;
            }
        } else {
            assert!(!first_over.contains_key(e), "{e} never reaches the limit");
        }
    }
    assert_eq!(
        kpis.get("pollution.SO2.buildings_exposed", "city"),
        Some(buildings as f64)
    );
    assert_eq!(
        kpis.get("pollution.SO2.people_exposed", "city"),
        Some(people as f64)
    );
    assert!(people > 0 && first_over.len() >= 2);
}

#[test]
fn a_dose_limit_must_be_positive() {
    let dir = tempfile::tempdir().unwrap();
    let text = sample_with_pollution(
        dir.path(),
        "[simulations.pollution]\nweather = { wind_speed_mps = 3.0, wind_from_deg = 60.0, stability = \"D\" }\ndose_limits_mg_min_m3 = { SO2 = -1.0 }\n",
    );
    let scene = scene(dir.path(), &text).unwrap();
    let e = Sim::build(&scene, &registry(), SimOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("dose_limits_mg_min_m3.SO2"), "{e}");
}
