//! Layers in a real PostgreSQL + PostGIS database (started here on a free loopback port): the
//! sample district loaded from the database is the same model, to the bit, as loaded from its
//! files; a missing table or an unreachable server is an error naming the layer.

mod common;

use std::ffi::CString;
use std::path::Path;

use citytwin_engine::scene::Scene;
use common::postgres::Postgres;
use common::{build_sim, scene_copy_of};
use gdal::vector::LayerAccess;

/// Copy layer `from` (the first when `None`) of `file` into the database named by GDAL as
/// `pg`, as table `table`, keeping field names as they are.
fn copy_layer(pg: &str, file: &Path, from: Option<&str>, table: &str) {
    // A CSV's points are in its lon/lat columns, as the engine reads them.
    let csv: &[&str] = &[
        "X_POSSIBLE_NAMES=lon",
        "Y_POSSIBLE_NAMES=lat",
        "KEEP_GEOM_COLUMNS=NO",
    ];
    let src = gdal::Dataset::open_ex(
        file,
        gdal::DatasetOptions {
            open_flags: gdal::GdalOpenFlags::GDAL_OF_VECTOR,
            open_options: file.extension().is_some_and(|e| e == "csv").then_some(csv),
            ..Default::default()
        },
    )
    .unwrap();
    let layer = match from {
        Some(n) => src.layer_by_name(n).unwrap(),
        None => src.layer(0).unwrap(),
    };
    let dst = gdal::Dataset::open_ex(
        pg,
        gdal::DatasetOptions {
            open_flags: gdal::GdalOpenFlags::GDAL_OF_VECTOR | gdal::GdalOpenFlags::GDAL_OF_UPDATE,
            ..Default::default()
        },
    )
    .unwrap();
    let mut opts = gdal::cpl::CslStringList::new();
    opts.set_name_value("LAUNDER", "NO").unwrap();
    opts.set_name_value("GEOMETRY_NAME", "geom").unwrap();
    let name = CString::new(table).unwrap();
    // SAFETY: both handles live through the call; GDAL copies the layer and owns the result.
    let copied = unsafe {
        gdal_sys::GDALDatasetCopyLayer(
            dst.c_dataset(),
            layer.c_layer(),
            name.as_ptr(),
            opts.as_ptr(),
        )
    };
    assert!(!copied.is_null(), "copying {} into {table}", file.display());
}

/// The sample district's `[[layer]]`s: (name, file, layer inside it).
fn layers(text: &str) -> Vec<(String, String, Option<String>)> {
    let mut out = Vec::new();
    for block in text.split("[[layer]]").skip(1) {
        let block = block.split("\n[").next().unwrap();
        let value = |key: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key} = \"")))
                .map(|v| v.trim_end_matches('"').to_string())
        };
        out.push((
            value("name").unwrap(),
            value("file").unwrap(),
            value("layer"),
        ));
    }
    out
}

/// The error building the scene at `path` gives.
fn build_error(path: &Path) -> String {
    match citytwin_engine::sim::Sim::build(
        &Scene::load(path).unwrap(),
        &citytwin::registry(),
        Default::default(),
    ) {
        Ok(_) => panic!("{} built", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_sample_district_from_postgis_is_the_same_model_as_from_its_files() {
    let pg = Postgres::start();
    let url = pg.url();
    let gdal_name = citytwin_engine::import::postgis::gdal_name(&url).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = scene_copy_of(dir.path(), "sample_district", |t| t);
    let text = std::fs::read_to_string(&files).unwrap();
    let all = layers(&text);
    assert!(all.len() >= 9, "{all:?}");
    // Every vector layer into its own table, and the scene pointed at the database.
    let mut db_text = text.clone();
    for (name, file, from) in &all {
        copy_layer(&gdal_name, Path::new(file), from.as_deref(), name);
        let old = match from {
            Some(f) => format!("file = \"{file}\"\nlayer = \"{f}\""),
            None => format!("file = \"{file}\""),
        };
        let at = db_text.find(&format!("name = \"{name}\"")).unwrap();
        let rel = db_text[at..].find(&old).expect("the layer's file line");
        db_text.replace_range(
            at + rel..at + rel + old.len(),
            &format!("file = \"{url}\"\nlayer = \"{name}\""),
        );
    }
    assert!(!db_text.contains(".geojson\"") && !db_text.contains(".gpkg\""));
    let db_dir = dir.path().join("db");
    std::fs::create_dir(&db_dir).unwrap();
    let db_scene = db_dir.join("scene.toml");
    std::fs::write(&db_scene, &db_text).unwrap();
    let count: usize = pg
        .sql("city", "SELECT count(*) FROM buildings")
        .parse()
        .unwrap();
    assert_eq!(count, 48);

    // The same model: every entity, and every step of the morning's first minutes.
    let mut from_files = build_sim(&files);
    let mut from_db = build_sim(&db_scene);
    assert_eq!(
        from_files.world().entities().len(),
        from_db.world().entities().len()
    );
    assert_eq!(from_files.state_hash(), from_db.state_hash());
    for _ in 0..120 {
        from_files.step();
        from_db.step();
    }
    assert_eq!(from_files.state_hash(), from_db.state_hash());

    // `check` lists them from the database; the gazetteer reads its address layer there too.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_citytwin"))
        .arg("check")
        .arg(&db_scene)
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{t}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(t.contains("buildings") && t.contains("48"), "{t}");

    // A table that is not there: the error names the layer and lists the tables.
    let missing = db_text.replacen("layer = \"buildings\"", "layer = \"houses\"", 1);
    std::fs::write(&db_scene, missing).unwrap();
    let e = build_error(&db_scene);
    assert!(
        e.contains(&url) && e.contains("no layer 'houses'") && e.contains("roads"),
        "{e}"
    );

    // No server there any more.
    drop(pg);
    std::fs::write(&db_scene, &db_text).unwrap();
    let e = build_error(&db_scene);
    assert!(e.contains(&url) && e.contains("GDAL cannot open it"), "{e}");
}
