//! Well-known binary (ISO WKB, little-endian, 2D) for `geo` geometries, as the run store keeps
//! them. Any GIS (GDAL, PostGIS, QGIS, DuckDB's spatial extension) reads it back.

use geo::{Coord, Geometry, LineString, Polygon};

fn header(out: &mut Vec<u8>, code: u32) {
    out.push(1); // little-endian
    out.extend_from_slice(&code.to_le_bytes());
}

fn coord(out: &mut Vec<u8>, c: Coord<f64>) {
    out.extend_from_slice(&c.x.to_le_bytes());
    out.extend_from_slice(&c.y.to_le_bytes());
}

fn ring(out: &mut Vec<u8>, l: &LineString<f64>) {
    out.extend_from_slice(&(l.0.len() as u32).to_le_bytes());
    for c in &l.0 {
        coord(out, *c);
    }
}

fn polygon_body(out: &mut Vec<u8>, p: &Polygon<f64>) {
    out.extend_from_slice(&(1 + p.interiors().len() as u32).to_le_bytes());
    ring(out, p.exterior());
    for r in p.interiors() {
        ring(out, r);
    }
}

/// Append the WKB of `g` to `out`.
pub fn write_wkb(g: &Geometry<f64>, out: &mut Vec<u8>) {
    match g {
        Geometry::Point(p) => {
            header(out, 1);
            coord(out, p.0);
        }
        Geometry::Line(l) => write_wkb(
            &Geometry::LineString(LineString::from(vec![l.start, l.end])),
            out,
        ),
        Geometry::LineString(l) => {
            header(out, 2);
            ring(out, l);
        }
        Geometry::Polygon(p) => {
            header(out, 3);
            polygon_body(out, p);
        }
        Geometry::MultiPoint(mp) => {
            header(out, 4);
            out.extend_from_slice(&(mp.0.len() as u32).to_le_bytes());
            for p in &mp.0 {
                write_wkb(&Geometry::Point(*p), out);
            }
        }
        Geometry::MultiLineString(ml) => {
            header(out, 5);
            out.extend_from_slice(&(ml.0.len() as u32).to_le_bytes());
            for l in &ml.0 {
                header(out, 2);
                ring(out, l);
            }
        }
        Geometry::MultiPolygon(mp) => {
            header(out, 6);
            out.extend_from_slice(&(mp.0.len() as u32).to_le_bytes());
            for p in &mp.0 {
                header(out, 3);
                polygon_body(out, p);
            }
        }
        Geometry::GeometryCollection(gc) => {
            header(out, 7);
            out.extend_from_slice(&(gc.0.len() as u32).to_le_bytes());
            for g in &gc.0 {
                write_wkb(g, out);
            }
        }
        Geometry::Rect(r) => write_wkb(&Geometry::Polygon(r.to_polygon()), out),
        Geometry::Triangle(t) => write_wkb(&Geometry::Polygon(t.to_polygon()), out),
    }
}

/// The WKB of `g`.
pub fn to_wkb(g: &Geometry<f64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    write_wkb(g, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GDAL is the reference reader: what we write, it must read back identically.
    #[test]
    fn gdal_reads_back_what_we_write() {
        let poly = Polygon::new(
            LineString::from(vec![(0.0, 0.0), (10.0, 0.0), (10.0, 5.0), (0.0, 0.0)]),
            vec![LineString::from(vec![
                (1.0, 1.0),
                (2.0, 1.0),
                (2.0, 2.0),
                (1.0, 1.0),
            ])],
        );
        let geoms: Vec<Geometry<f64>> = vec![
            geo::Point::new(1.5, -2.25).into(),
            LineString::from(vec![(0.0, 0.0), (3.0, 4.0)]).into(),
            poly.clone().into(),
            geo::MultiPolygon::new(vec![poly.clone(), poly]).into(),
            geo::MultiPoint::from(vec![(1.0, 2.0), (3.0, 4.0)]).into(),
        ];
        for g in geoms {
            let back = gdal::vector::Geometry::from_wkb(&to_wkb(&g))
                .unwrap()
                .to_geo()
                .unwrap();
            assert_eq!(back, g);
        }
    }
}
