//! A flood scene that cannot work says why, naming the key.

use citytwin_engine::modules::ModuleRegistry;
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::{Sim, SimOptions};

fn build(dir: &std::path::Path, with_dem: bool, flood: &str) -> String {
    let data = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/sample")
        .canonicalize()
        .unwrap();
    let dem = if with_dem {
        format!("[dem]\nfile = \"{}/dem.tif\"\n", data.display())
    } else {
        String::new()
    };
    let text = format!(
        "[scene]\nname = \"flood errors\"\nseed = 1\norigin = {{ lon = 117.2272, lat = 31.8206 }}\n\n\
         [clock]\nstart = \"2026-07-15T07:30:00+08:00[Asia/Shanghai]\"\nstep_s = 1.0\nduration_s = 60.0\n\n\
         {dem}\n[simulations.flood]\n{flood}\n\n[output]\nstore = \"runs.duckdb\"\n"
    );
    let path = dir.join("scene.toml");
    std::fs::write(&path, text).unwrap();
    let scene = Scene::load(&path).unwrap();
    let mut reg = ModuleRegistry::new();
    reg.add_simulation(citytwin_flood::FloodModule);
    match Sim::build(&scene, &reg, SimOptions::default()) {
        Ok(_) => "built".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn no_dem_and_bad_keys_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let e = build(dir.path(), false, "manning_n = 0.03");
    assert!(
        e.contains("simulations.flood") && e.contains("`[dem]`"),
        "{e}"
    );
    let e = build(dir.path(), true, "edges = \"open\"");
    assert!(e.contains("`edges`") && e.contains("'open'"), "{e}");
    let e = build(dir.path(), true, "manning = 0.03");
    assert!(e.contains("manning"), "{e}");
    let e = build(
        dir.path(),
        true,
        "infiltration = { f0_mm_h = 2.0, fc_mm_h = 5.0, k_per_h = 1.0 }",
    );
    assert!(e.contains("`infiltration`"), "{e}");
    let e = build(
        dir.path(),
        true,
        "infiltration = { f0_mm_h = 20.0, fc_mm_h = 2.0, k_per_h = 1.0 }\ngreen_ampt = { suction_mm = 110.0, ksat_mm_h = 3.4, deficit = 0.3 }",
    );
    assert!(e.contains("`green_ampt`") && e.contains("give one"), "{e}");
    let e = build(
        dir.path(),
        true,
        "green_ampt = { suction_mm = 110.0, ksat_mm_h = 0.0, deficit = 0.3 }",
    );
    assert!(e.contains("ksat_mm_h > 0"), "{e}");
    let e = build(dir.path(), true, "inlets = { weir_coeff = -1.0 }");
    assert!(e.contains("inlets.weir_coeff"), "{e}");
    assert_eq!(
        build(
            dir.path(),
            true,
            "green_ampt = { suction_mm = 110.0, ksat_mm_h = 3.4, deficit = 0.3 }"
        ),
        "built"
    );
    assert_eq!(build(dir.path(), true, "manning_n = 0.03"), "built");
}
