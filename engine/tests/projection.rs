//! The scene frame against GDAL/PROJ, a projection library nobody here wrote.

use citytwin_engine::crs::{Reprojector, parse_crs};
use citytwin_engine::geo_frame::{GeoFrame, LonLat};
use gdal::spatial_ref::CoordTransform;
use geo::Coord;

/// Origins: Hefei, Helsinki (high latitude), Quito (equator), Sydney (south), near the antimeridian.
const ORIGINS: [(f64, f64); 5] = [
    (117.2272, 31.8206),
    (24.9384, 60.1699),
    (-78.4678, -0.1807),
    (151.2093, -33.8688),
    (179.9, -16.5),
];

/// Points on rings out to 30 km from the origin, every 15°.
fn ring_points() -> Vec<Coord<f64>> {
    let mut pts = Vec::new();
    for r in [0.0, 1.0, 100.0, 1_000.0, 10_000.0, 20_000.0, 30_000.0] {
        for k in 0..24 {
            let a = (k as f64 * 15.0f64).to_radians();
            pts.push(Coord {
                x: r * a.cos(),
                y: r * a.sin(),
            });
        }
    }
    pts
}

#[test]
fn round_trip_error_is_below_a_centimetre_within_30_km() {
    for (lon, lat) in ORIGINS {
        let f = GeoFrame::new(LonLat::new(lon, lat));
        let mut worst = 0.0f64;
        for c in ring_points() {
            let back = f.to_local(f.to_wgs84(c));
            worst = worst.max(((back.x - c.x).powi(2) + (back.y - c.y).powi(2)).sqrt());
        }
        assert!(
            worst < 0.01,
            "origin ({lon}, {lat}): worst round trip {worst} m"
        );
        // In practice the series is good to nanometres; a regression would show here first.
        assert!(
            worst < 1e-6,
            "origin ({lon}, {lat}): worst round trip {worst} m"
        );
    }
}

#[test]
fn frame_matches_proj_transverse_mercator() {
    for (lon, lat) in ORIGINS {
        let f = GeoFrame::new(LonLat::new(lon, lat));
        let tm = parse_crs(&format!("+proj=tmerc +lat_0={lat} +lon_0={lon} +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs")).unwrap();
        let t = CoordTransform::new(&citytwin_engine::crs::wgs84().unwrap(), &tm).unwrap();
        let mut worst = 0.0f64;
        for c in ring_points() {
            let ll = f.to_wgs84(c);
            let (mut x, mut y) = ([ll.lon], [ll.lat]);
            t.transform_coords(&mut x, &mut y, &mut []).unwrap();
            worst = worst.max(((x[0] - c.x).powi(2) + (y[0] - c.y).powi(2)).sqrt());
        }
        assert!(
            worst < 1e-3,
            "origin ({lon}, {lat}): differs from PROJ by {worst} m"
        );
    }
}

#[test]
fn projected_crs_reach_the_frame_through_gdal() {
    // A point given in CGCS2000 Gauss–Krüger CM 117E (EPSG:4548) and in UTM 50N (EPSG:32650)
    // must land on the same local position as its WGS84 coordinates.
    let frame = GeoFrame::new(LonLat::new(117.2272, 31.8206));
    let target = LonLat::new(117.2400, 31.8100);
    let expect = frame.to_local(target);
    for epsg in ["EPSG:4548", "EPSG:32650", "EPSG:4547"] {
        let srs = parse_crs(epsg).unwrap();
        let fwd = CoordTransform::new(&citytwin_engine::crs::wgs84().unwrap(), &srs).unwrap();
        let (mut x, mut y) = ([target.lon], [target.lat]);
        fwd.transform_coords(&mut x, &mut y, &mut []).unwrap();
        let r = Reprojector::new(&srs, &frame).unwrap();
        let got = r.transform(Coord { x: x[0], y: y[0] }).unwrap();
        let err = ((got.x - expect.x).powi(2) + (got.y - expect.y).powi(2)).sqrt();
        assert!(err < 0.01, "{epsg}: {err} m off");
    }
}

#[test]
fn unknown_crs_is_a_clear_error() {
    let e = parse_crs("EPSG:999999").unwrap_err().to_string();
    assert!(e.contains("EPSG:999999"), "{e}");
}
