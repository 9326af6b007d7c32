//! GIS output: a grid written as GeoTIFF lands where the frame says, and areas of cells merge
//! into polygons that read back in WGS84.

use citytwin_engine::geo_frame::{GeoFrame, LonLat};
use citytwin_engine::import::Dem;
use citytwin_engine::output::{cells_to_polygons, frame_srs, write_geotiff, write_polygons};
use gdal::spatial_ref::CoordTransform;
use gdal::vector::LayerAccess;
use geo::Area;

fn grid() -> Dem {
    Dem {
        x0_m: -100.0,
        y0_m: -50.0,
        cell_m: 10.0,
        nx: 20,
        ny: 10,
        elevation_m: vec![0.0; 200],
        source_crs: "frame".into(),
    }
}

#[test]
fn a_geotiff_in_the_frame_is_georeferenced_and_holds_the_values_north_up() {
    let frame = GeoFrame::new(LonLat::new(117.2272, 31.8206));
    let g = grid();
    // Value = row index from the south, NaN in one cell.
    let mut v: Vec<f32> = (0..200).map(|c| (c / 20) as f32).collect();
    v[0] = f32::NAN;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.tif");
    write_geotiff(&path, &g, &v, &frame).unwrap();
    let ds = gdal::Dataset::open(&path).unwrap();
    let gt = ds.geo_transform().unwrap();
    assert_eq!(gt, [-100.0, 10.0, 0.0, 50.0, 0.0, -10.0]);
    let band = ds.rasterband(1).unwrap();
    let data = band
        .read_as::<f32>((0, 0), (20, 10), (20, 10), None)
        .unwrap();
    // The first row of the file is the northern one (row 9 from the south).
    assert_eq!(data.data()[0], 9.0);
    assert_eq!(data.data()[9 * 20 + 1], 0.0);
    assert_eq!(data.data()[9 * 20], band.no_data_value().unwrap() as f32);
    // The file's CRS puts the frame origin at the scene origin.
    let srs = ds.spatial_ref().unwrap();
    let wgs = citytwin_engine::crs::wgs84().unwrap();
    let t = CoordTransform::new(&srs, &wgs).unwrap();
    let (mut x, mut y) = ([0.0], [0.0]);
    t.transform_coords(&mut x, &mut y, &mut []).unwrap();
    let (lon, lat) = if (x[0] - 117.2272).abs() < 1.0 {
        (x[0], y[0])
    } else {
        (y[0], x[0])
    };
    assert!(
        (lon - 117.2272).abs() < 1e-9 && (lat - 31.8206).abs() < 1e-9,
        "{lon}, {lat}"
    );
    assert!(frame_srs(&frame).is_ok());
}

#[test]
fn cells_above_a_threshold_become_merged_polygons_in_wgs84() {
    let frame = GeoFrame::new(LonLat::new(117.2272, 31.8206));
    let g = grid();
    let mut v = vec![0.0f32; 200];
    // An L of five cells and a separate single cell.
    for c in [22, 23, 24, 42, 62, 199] {
        v[c] = 1.0;
    }
    let polys = cells_to_polygons(&g, &v, |h| h > 0.5);
    assert_eq!(polys.0.len(), 2);
    let mut areas: Vec<f64> = polys.0.iter().map(|p| p.unsigned_area()).collect();
    areas.sort_by(f64::total_cmp);
    assert_eq!(areas, vec![100.0, 500.0]);
    let dir = tempfile::tempdir().unwrap();
    for ext in ["geojson", "gpkg"] {
        let path = dir.path().join(format!("extent.{ext}"));
        let rows: Vec<_> = polys.0.iter().map(|p| (p.clone(), 1.0)).collect();
        write_polygons(&path, "extent", &rows, "max_depth_m", &frame).unwrap();
        let ds = gdal::Dataset::open(&path).unwrap();
        let mut layer = ds.layer(0).unwrap();
        assert_eq!(layer.feature_count(), 2, "{ext}");
        let f = layer.features().next().unwrap();
        let area = f
            .field_as_double(f.field_index("area_m2").unwrap())
            .unwrap()
            .unwrap();
        assert!(area == 100.0 || area == 500.0);
        let env = f.geometry().unwrap().envelope();
        assert!(
            env.MinX > 117.22 && env.MaxX < 117.24 && env.MinY > 31.81 && env.MaxY < 31.83,
            "{ext}: {env:?}"
        );
    }
    let bad = write_polygons(&dir.path().join("x.txt"), "extent", &[], "v", &frame).unwrap_err();
    assert!(bad.to_string().contains(".geojson"), "{bad}");
}
