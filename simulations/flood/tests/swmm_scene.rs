//! A SWMM model imported into a scene: its objects become entities placed through their CRS,
//! its gauge rains on the city, and the network in the world still behaves as EPA SWMM's.

mod common;

use bevy::prelude::World;
use citytwin_engine::modules::ModuleRegistry;
use citytwin_engine::prelude::*;
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::{Sim, SimOptions};
use citytwin_flood::FloodSim;

fn scene(dir: &std::path::Path, hours: f64, flood: &str) -> Result<Sim, String> {
    let data = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/sample")
        .canonicalize()
        .unwrap();
    let text = format!(
        "[scene]\nname = \"swmm in the city\"\nseed = 1\norigin = {{ lon = 117.2272, lat = 31.8206 }}\n\n\
         [clock]\nstart = \"2026-07-15T00:00:00+08:00[Asia/Shanghai]\"\nstep_s = 1.0\nduration_s = {}\n\n\
         [dem]\nfile = \"{}/dem.tif\"\n\n[simulations.flood]\n{flood}\n\n[output]\nstore = \"runs.duckdb\"\n",
        hours * 3600.0,
        data.display()
    );
    let path = dir.join("scene.toml");
    std::fs::write(&path, text).unwrap();
    let scene = Scene::load(&path).map_err(|e| e.to_string())?;
    let mut reg = ModuleRegistry::new();
    reg.add_simulation(citytwin_flood::FloodModule);
    Sim::build(&scene, &reg, SimOptions::default()).map_err(|e| e.to_string())
}

/// Example 1's map (0–10 000 m) centred on the scene origin by a local transverse Mercator.
const CRS: &str = "+proj=tmerc +lat_0=31.8206 +lon_0=117.2272 +k=1 +x_0=5000 +y_0=3000 +ellps=WGS84 +units=m +no_defs";

#[test]
fn example1_in_a_scene_becomes_entities_and_keeps_swmms_peaks() {
    let swmm = common::shared().join("flood/swmm");
    let inp = swmm.join("example1.inp");
    let dir = tempfile::tempdir().unwrap();
    let flood = format!("drainage = \"{}\"\ndrainage_crs = \"{CRS}\"", inp.display());
    let mut sim = scene(dir.path(), 2.0, &flood).unwrap();
    {
        let w = sim.world_mut();
        let count =
            |k: EntityKind, w: &mut World| w.query::<&Kind>().iter(w).filter(|x| x.0 == k).count();
        assert_eq!(count(EntityKind::Manhole, w), 11);
        assert_eq!(count(EntityKind::Outfall, w), 1);
        assert_eq!(count(EntityKind::Conduit, w), 11);
        assert_eq!(count(EntityKind::Subcatchment, w), 6);
        let gauges: Vec<String> = w
            .query::<&Sensor>()
            .iter(w)
            .filter(|s| s.kind == SensorKind::RainGauge)
            .map(|s| s.station.clone())
            .collect();
        assert_eq!(gauges, vec!["Gage1".to_string()]);
        // J12 (the outfall) sits 312 m east and 2 063 m north of the map's centre line.
        let j12 = w
            .query::<(&FeatureId, &Position)>()
            .iter(w)
            .find(|(f, _)| f.id == "J12")
            .map(|(_, p)| p.xy_m)
            .unwrap();
        assert!(
            (j12.x - 312.184).abs() < 0.5 && (j12.y - 2063.248).abs() < 0.5,
            "{j12:?}"
        );
    }
    while !sim.finished() {
        sim.step();
    }
    let reference = common::reference(&swmm.join("example1.swmm_reference.json"));
    let f = sim.world().resource::<FloodSim>();
    let d = f.drainage.as_ref().unwrap();
    let net = &d.model.net;
    let mut worst = (0.0f64, String::new());
    for (name, &swmm_peak) in &reference.links {
        if swmm_peak < 100.0 {
            continue; // T1-1 and T1-2 carry nothing (J1 lies below J2)
        }
        let j = net
            .links
            .iter()
            .position(|l| l.name.ends_with(&format!("/{name}")))
            .unwrap();
        let ours = d.model.link_stats[j].peak_flow_m3s * 1000.0;
        let e = (ours - swmm_peak) / swmm_peak;
        println!(
            "{name}: citytwin in the scene {ours:.1} L/s, EPA SWMM {swmm_peak:.1} L/s ({:+.2} %)",
            100.0 * e
        );
        if e.abs() > worst.0 {
            worst = (e.abs(), name.clone());
        }
    }
    // In a scene runoff and routing step with the scene's clock (1 s), not the model's
    // 60 s / variable steps: a little different from SWMM, well within its 5 %.
    assert!(
        worst.0 < 0.05,
        "peak flow of {} off by {:.1} %",
        worst.1,
        100.0 * worst.0
    );
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

#[test]
fn a_model_that_cannot_be_placed_or_read_says_why() {
    let swmm = common::shared().join("flood/swmm");
    let dir = tempfile::tempdir().unwrap();
    let inp = swmm.join("example1.inp");
    let e = scene(
        dir.path(),
        0.1,
        &format!("drainage = \"{}\"", inp.display()),
    )
    .err()
    .unwrap();
    assert!(e.contains("drainage_crs"), "{e}");
    let bad = dir.path().join("bad.inp");
    std::fs::write(
        &bad,
        "[OPTIONS]\nFLOW_UNITS CMS\nEND_TIME 1:00\n[JUNCTIONS]\nJ1 abc\n",
    )
    .unwrap();
    let e = scene(
        dir.path(),
        0.1,
        &format!("drainage = \"{}\"\ndrainage_crs = \"{CRS}\"", bad.display()),
    )
    .err()
    .unwrap();
    assert!(
        e.contains("bad.inp:5") && e.contains("[JUNCTIONS]") && e.contains("'abc'"),
        "{e}"
    );
    std::fs::write(&bad, "[OPTIONS]\nFLOW_UNITS CMS\n").unwrap();
    let e = scene(
        dir.path(),
        0.1,
        &format!("drainage = \"{}\"\ndrainage_crs = \"{CRS}\"", bad.display()),
    )
    .err()
    .unwrap();
    assert!(e.contains("bad.inp: [OPTIONS] END_DATE/END_TIME"), "{e}");
    let e = scene(
        dir.path(),
        0.1,
        &format!(
            "drainage = \"{}\"\ndrainage_crs = \"EPSG:99999999\"",
            inp.display()
        ),
    )
    .err()
    .unwrap();
    assert!(e.contains("drainage_crs"), "{e}");
}
