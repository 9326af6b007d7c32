//! A Shapefile in another unit system loads into the same buildings as the sample GeoPackage.

mod common;

use citytwin_engine::model::{Building, FeatureId, Shape};
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::{Sim, SimOptions};
use gdal::vector::{
    Feature, FieldValue, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType,
};
use gdal::{Dataset, DriverManager};
use geo::Area;

fn buildings(scene_text: &str, dir: &std::path::Path) -> Vec<(String, f64, f64, u32)> {
    let path = common::scene_with(dir, "s.toml", scene_text);
    let sim = Sim::build(
        &Scene::load(&path).unwrap(),
        &common::registry(),
        SimOptions::default(),
    )
    .unwrap();
    let world = sim.world();
    let mut q = world
        .try_query::<(&FeatureId, &Building, &Shape)>()
        .unwrap();
    let mut v: Vec<_> = q
        .iter(world)
        .map(|(f, b, s)| (f.id.clone(), b.height_m, s.0.unsigned_area(), b.occupants))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn shapefile_with_heights_in_feet_matches_the_geopackage() {
    let dir = tempfile::tempdir().unwrap();
    // Copy the sample buildings into a Shapefile, heights converted to feet under another name.
    let src = Dataset::open(common::repo().join("data/sample/buildings.gpkg")).unwrap();
    let mut src_layer = src.layer(0).unwrap();
    let srs = src_layer.spatial_ref().unwrap();
    let shp = dir.path().join("bldg.shp");
    let mut out = DriverManager::get_driver_by_name("ESRI Shapefile")
        .unwrap()
        .create_vector_only(&shp)
        .unwrap();
    let lyr = out
        .create_layer(LayerOptions {
            name: "bldg",
            srs: Some(&srs),
            ty: OGRwkbGeometryType::wkbPolygon,
            options: None,
        })
        .unwrap();
    lyr.create_defn_fields(&[
        ("ID", OGRFieldType::OFTString),
        ("HGT_FT", OGRFieldType::OFTReal),
        ("USE", OGRFieldType::OFTString),
        ("POP", OGRFieldType::OFTInteger64),
    ])
    .unwrap();
    let idx = |f: &Feature, n: &str| f.field_index(n).unwrap();
    for f in src_layer.features() {
        let mut g = Feature::new(lyr.defn()).unwrap();
        g.set_geometry(f.geometry().unwrap().clone()).unwrap();
        let id = f.field(idx(&f, "id")).unwrap().unwrap();
        let h = f
            .field(idx(&f, "height"))
            .unwrap()
            .unwrap()
            .into_real()
            .unwrap();
        g.set_field(0, &id).unwrap();
        g.set_field(1, &FieldValue::RealValue(h / 0.3048)).unwrap();
        g.set_field(2, &f.field(idx(&f, "use")).unwrap().unwrap())
            .unwrap();
        g.set_field(3, &f.field(idx(&f, "occupants")).unwrap().unwrap())
            .unwrap();
        g.create(&lyr).unwrap();
    }
    drop(out);

    let head = "[scene]\nname = \"t\"\nseed = 1\norigin = { lon = 117.2272, lat = 31.8206 }\n[clock]\nstart = \"2026-07-15T08:00:00+08:00\"\nstep_s = 1.0\nduration_s = 10.0\n[[layer]]\nname = \"b\"\nkind = \"buildings\"\n";
    let gpkg = common::repo()
        .join("data/sample/buildings.gpkg")
        .canonicalize()
        .unwrap();
    let reference = buildings(
        &format!("{head}file = \"{}\"\n", gpkg.display()),
        dir.path(),
    );
    let from_shp = buildings(
        &format!(
            "{head}file = \"bldg.shp\"\nfields = {{ id = \"ID\", height_m = {{ field = \"HGT_FT\", unit = \"ft\" }}, use = \"USE\", occupants = \"POP\" }}\n"
        ),
        dir.path(),
    );
    assert_eq!(reference.len(), 48);
    assert_eq!(from_shp.len(), reference.len());
    for (a, b) in reference.iter().zip(&from_shp) {
        assert_eq!(a.0, b.0);
        assert!(
            (a.1 - b.1).abs() < 1e-6,
            "{}: height {} vs {}",
            a.0,
            a.1,
            b.1
        );
        assert!(
            (a.2 - b.2).abs() / a.2 < 1e-9,
            "{}: area {} vs {}",
            a.0,
            a.2,
            b.2
        );
        assert_eq!(a.3, b.3);
    }
}
