//! Stored features as GeoJSON (RFC 7946: WGS84 longitude, latitude), and the spatial questions
//! the API answers about them: in a box, in an H3 cell, near a point. The store's bounding-box
//! columns pick the candidates; the exact test runs here on their geometry, in the run's scene
//! frame (metres), where distances are true.

use citytwin_engine::geo_frame::{GeoFrame, LonLat};
use citytwin_engine::store::FeatureRow;
use citytwin_engine::wkb::read_wkb;
use geo::{BoundingRect, Coord, Geometry, Intersects, LineString, MapCoords, Polygon};
use serde_json::{Value, json};

/// The scene frame of a stored scene: its `[scene] origin`. Read from the TOML alone, so a run
/// can be served after its data files moved.
pub(crate) fn frame_of(scene_toml: &str) -> Result<GeoFrame, String> {
    let table: toml::Table =
        toml::from_str(scene_toml).map_err(|e| format!("its stored scene does not parse: {e}"))?;
    let origin = table
        .get("scene")
        .and_then(|s| s.get("origin"))
        .ok_or("its stored scene has no [scene] origin")?;
    let num = |k: &str| {
        origin
            .get(k)
            .and_then(|v| v.as_float().or(v.as_integer().map(|i| i as f64)))
    };
    match (num("lon"), num("lat")) {
        (Some(lon), Some(lat)) => GeoFrame::try_new(LonLat::new(lon, lat))
            .ok_or_else(|| format!("its scene origin {lon},{lat} is not on the globe")),
        _ => Err("its stored scene's origin lacks lon or lat".to_string()),
    }
}

/// Where to look.
#[derive(Clone, Debug)]
pub(crate) enum Area {
    /// Inside a longitude/latitude box.
    Bbox([f64; 4]),
    /// Inside an H3 cell (any resolution).
    Cell(h3o::CellIndex),
    /// Within `radius_m` of a point.
    Near(LonLat, f64),
}

/// Points per edge when a longitude/latitude box is drawn in the frame, where its edges bend.
const BOX_EDGE_POINTS: usize = 8;

impl Area {
    /// The area in the frame, as a polygon (box, cell) or a centre and radius (near).
    fn in_frame(&self, frame: &GeoFrame) -> Shape {
        match self {
            Area::Bbox([w, s, e, n]) => {
                let mut ring = Vec::with_capacity(4 * BOX_EDGE_POINTS + 1);
                let corners = [(*w, *s), (*e, *s), (*e, *n), (*w, *n), (*w, *s)];
                for pair in corners.windows(2) {
                    let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
                    for k in 0..BOX_EDGE_POINTS {
                        let t = k as f64 / BOX_EDGE_POINTS as f64;
                        ring.push(
                            frame.to_local(LonLat::new(x0 + t * (x1 - x0), y0 + t * (y1 - y0))),
                        );
                    }
                }
                ring.push(ring[0]);
                Shape::Polygon(Polygon::new(LineString::from(ring), Vec::new()))
            }
            Area::Cell(c) => Shape::Polygon(frame.cell_polygon(*c)),
            Area::Near(p, r) => Shape::Disc(frame.to_local(*p), *r),
        }
    }
}

enum Shape {
    Polygon(Polygon<f64>),
    Disc(Coord<f64>, f64),
}

impl Shape {
    fn bbox_m(&self) -> [f64; 4] {
        match self {
            Shape::Polygon(p) => p
                .bounding_rect()
                .map_or([0.0; 4], |r| [r.min().x, r.min().y, r.max().x, r.max().y]),
            Shape::Disc(c, r) => [c.x - r, c.y - r, c.x + r, c.y + r],
        }
    }
}

/// The candidate box for `area`, m in the frame.
pub(crate) fn candidate_box(area: &Area, frame: &GeoFrame) -> [f64; 4] {
    area.in_frame(frame).bbox_m()
}

/// Distance from `g` to `c`, m (0 inside or on it).
fn distance_m(g: &Geometry<f64>, c: Coord<f64>) -> f64 {
    let p = geo::Point(c);
    if g.intersects(&p) {
        return 0.0;
    }
    use geo::ClosestPoint;
    match g.closest_point(&p) {
        geo::Closest::Intersection(_) => 0.0,
        geo::Closest::SinglePoint(q) => (q.x() - c.x).hypot(q.y() - c.y),
        geo::Closest::Indeterminate => f64::INFINITY,
    }
}

/// The candidates that really are in `area`, each with its geometry and (near a point) its
/// distance, nearest first for `Near` and in entity order otherwise. A row whose WKB does not
/// read is skipped and named in the returned notes.
pub(crate) fn select(
    rows: Vec<FeatureRow>,
    area: &Area,
    frame: &GeoFrame,
) -> (Vec<(FeatureRow, Geometry<f64>, Option<f64>)>, Vec<String>) {
    let shape = area.in_frame(frame);
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for row in rows {
        let g = match read_wkb(&row.wkb) {
            Ok(g) => g,
            Err(e) => {
                notes.push(format!(
                    "feature {}/{} skipped: {e}",
                    row.layer, row.feature_id
                ));
                continue;
            }
        };
        match &shape {
            Shape::Polygon(p) => {
                if g.intersects(p) {
                    out.push((row, g, None));
                }
            }
            Shape::Disc(c, r) => {
                let d = distance_m(&g, *c);
                if d <= *r {
                    out.push((row, g, Some(d)));
                }
            }
        }
    }
    if matches!(shape, Shape::Disc(..)) {
        out.sort_by(|a, b| {
            a.2.partial_cmp(&b.2)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.0.entity.cmp(&b.0.entity))
        });
    }
    (out, notes)
}

/// A geometry in the frame as a GeoJSON geometry in WGS84.
pub(crate) fn geometry(g: &Geometry<f64>, frame: &GeoFrame) -> Value {
    let g = g.map_coords(|c| {
        let ll = frame.to_wgs84(c);
        Coord {
            x: ll.lon,
            y: ll.lat,
        }
    });
    fn pos(c: &Coord<f64>) -> Value {
        json!([c.x, c.y])
    }
    fn line(l: &LineString<f64>) -> Value {
        Value::Array(l.0.iter().map(pos).collect())
    }
    fn poly(p: &Polygon<f64>) -> Value {
        Value::Array(
            std::iter::once(p.exterior())
                .chain(p.interiors())
                .map(line)
                .collect(),
        )
    }
    fn of(g: &Geometry<f64>) -> Value {
        match g {
            Geometry::Point(p) => json!({"type": "Point", "coordinates": pos(&p.0)}),
            Geometry::Line(l) => {
                json!({"type": "LineString", "coordinates": [pos(&l.start), pos(&l.end)]})
            }
            Geometry::LineString(l) => json!({"type": "LineString", "coordinates": line(l)}),
            Geometry::Polygon(p) => json!({"type": "Polygon", "coordinates": poly(p)}),
            Geometry::MultiPoint(m) => {
                json!({"type": "MultiPoint", "coordinates": m.0.iter().map(|p| pos(&p.0)).collect::<Vec<_>>()})
            }
            Geometry::MultiLineString(m) => {
                json!({"type": "MultiLineString", "coordinates": m.0.iter().map(line).collect::<Vec<_>>()})
            }
            Geometry::MultiPolygon(m) => {
                json!({"type": "MultiPolygon", "coordinates": m.0.iter().map(poly).collect::<Vec<_>>()})
            }
            Geometry::GeometryCollection(c) => {
                json!({"type": "GeometryCollection", "geometries": c.0.iter().map(of).collect::<Vec<_>>()})
            }
            Geometry::Rect(r) => of(&Geometry::Polygon(r.to_polygon())),
            Geometry::Triangle(t) => of(&Geometry::Polygon(t.to_polygon())),
        }
    }
    of(&g)
}

/// An H3 cell id as its usual hexadecimal text.
pub(crate) fn h3_text(h3: Option<u64>) -> Option<String> {
    h3.map(|c| format!("{c:x}"))
}

/// A GeoJSON Feature for a stored feature.
pub(crate) fn feature(
    row: &FeatureRow,
    g: &Geometry<f64>,
    distance_m: Option<f64>,
    frame: &GeoFrame,
) -> Value {
    let mut props = json!({
        "entity": row.entity,
        "kind": row.kind,
        "layer": row.layer,
        "feature_id": row.feature_id,
        "h3": h3_text(row.h3),
    });
    if let Some(d) = distance_m {
        props["distance_m"] = json!(d);
    }
    json!({
        "type": "Feature",
        "id": format!("{}/{}", row.layer, row.feature_id),
        "geometry": geometry(g, frame),
        "properties": props,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scene_origin_gives_its_frame_and_bad_ones_say_why() {
        let f =
            frame_of("[scene]\nname = 'x'\norigin = { lon = 117.2272, lat = 31.8206 }\n").unwrap();
        assert_eq!(f.origin(), LonLat::new(117.2272, 31.8206));
        assert!(
            frame_of("[scene]\nname = 'x'\n")
                .unwrap_err()
                .contains("no [scene] origin")
        );
        assert!(
            frame_of("[scene]\norigin = { lon = 500, lat = 0 }")
                .unwrap_err()
                .contains("not on the globe")
        );
        assert!(frame_of("[scene").unwrap_err().contains("does not parse"));
    }

    #[test]
    fn near_measures_true_distance_and_box_edges_follow_the_frame() {
        let frame = GeoFrame::new(LonLat::new(24.94, 60.17));
        let square: Geometry<f64> = Polygon::new(
            LineString::from(vec![
                (0.0, 0.0),
                (10.0, 0.0),
                (10.0, 10.0),
                (0.0, 10.0),
                (0.0, 0.0),
            ]),
            vec![],
        )
        .into();
        assert_eq!(distance_m(&square, Coord { x: 5.0, y: 5.0 }), 0.0);
        assert!((distance_m(&square, Coord { x: 13.0, y: 14.0 }) - 5.0).abs() < 1e-9);
        // The GeoJSON of a point at the origin is the origin, in lon, lat order.
        let v = geometry(&geo::Point::new(0.0, 0.0).into(), &frame);
        let c = v["coordinates"].as_array().unwrap();
        assert!((c[0].as_f64().unwrap() - 24.94).abs() < 1e-9);
        assert!((c[1].as_f64().unwrap() - 60.17).abs() < 1e-9);
        // A box of ±0.001° about the origin is ~111 m tall and ~55 m wide at 60° N.
        let b = candidate_box(&Area::Bbox([24.939, 60.169, 24.941, 60.171]), &frame);
        assert!(((b[3] - b[1]) - 222.6).abs() < 1.0, "{b:?}");
        assert!(((b[2] - b[0]) - 111.3).abs() < 1.0, "{b:?}");
    }
}
