//! Well-known binary (ISO WKB, little-endian, 2D) for `geo` geometries, as the run store keeps
//! them. Any GIS (GDAL, PostGIS, QGIS, DuckDB's spatial extension) reads it back, and
//! [`read_wkb`] reads what they write (either byte order; Z and M ordinates are dropped).

use geo::{Coord, Geometry, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon};

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

/// WKB that [`read_wkb`] cannot read.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("WKB at byte {offset}: {message}")]
pub struct WkbError {
    /// Where in the bytes.
    pub offset: usize,
    /// What was wrong.
    pub message: String,
}

/// Nesting deeper than this (collections of collections…) is refused rather than recursed into.
const MAX_DEPTH: usize = 32;

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn fail<T>(&self, message: impl Into<String>) -> Result<T, WkbError> {
        Err(WkbError {
            offset: self.at,
            message: message.into(),
        })
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], WkbError> {
        match self.bytes.get(self.at..self.at + N) {
            Some(b) => {
                self.at += N;
                Ok(b.try_into().expect("the slice has N bytes"))
            }
            None => self.fail(format!("ends early (needs {N} more bytes)")),
        }
    }

    fn u32(&mut self, little: bool) -> Result<u32, WkbError> {
        let b = self.take::<4>()?;
        Ok(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn f64(&mut self, little: bool) -> Result<f64, WkbError> {
        let b = self.take::<8>()?;
        Ok(if little {
            f64::from_le_bytes(b)
        } else {
            f64::from_be_bytes(b)
        })
    }

    /// A count, checked against the bytes left so a corrupt count cannot ask for gigabytes.
    fn count(&mut self, little: bool, min_item_bytes: usize) -> Result<usize, WkbError> {
        let n = self.u32(little)? as usize;
        if n.saturating_mul(min_item_bytes) > self.bytes.len() - self.at {
            return self.fail(format!("a count of {n} is more than the bytes left hold"));
        }
        Ok(n)
    }

    fn coords(&mut self, little: bool, dims: usize) -> Result<Vec<Coord<f64>>, WkbError> {
        let n = self.count(little, 8 * dims)?;
        (0..n).map(|_| self.coord(little, dims)).collect()
    }

    fn coord(&mut self, little: bool, dims: usize) -> Result<Coord<f64>, WkbError> {
        let x = self.f64(little)?;
        let y = self.f64(little)?;
        for _ in 2..dims {
            self.f64(little)?;
        }
        Ok(Coord { x, y })
    }

    fn polygon(&mut self, little: bool, dims: usize) -> Result<Polygon<f64>, WkbError> {
        let n = self.count(little, 4)?;
        let mut rings = (0..n)
            .map(|_| self.coords(little, dims).map(LineString::from))
            .collect::<Result<Vec<_>, _>>()?;
        if rings.is_empty() {
            return Ok(Polygon::new(LineString::new(Vec::new()), Vec::new()));
        }
        let exterior = rings.remove(0);
        Ok(Polygon::new(exterior, rings))
    }

    /// One geometry with its own byte-order byte and type code; `want` is the member type a
    /// multi-geometry requires.
    fn geometry(&mut self, depth: usize, want: Option<u32>) -> Result<Geometry<f64>, WkbError> {
        if depth > MAX_DEPTH {
            return self.fail("geometry collections nested too deep");
        }
        let little = match self.take::<1>()?[0] {
            0 => false,
            1 => true,
            b => return self.fail(format!("byte order {b} (neither 0 nor 1)")),
        };
        let code = self.u32(little)?;
        // ISO codes (1001 = Point Z, 2001 = Point M, 3001 = ZM) and EWKB flags (0x80000000 Z,
        // 0x40000000 M, 0x20000000 SRID).
        let has_srid = code & 0x2000_0000 != 0;
        let ewkb_dims =
            2 + usize::from(code & 0x8000_0000 != 0) + usize::from(code & 0x4000_0000 != 0);
        let base = code & 0x0fff_ffff;
        let (kind, dims) = match base / 1000 {
            0 => (base, ewkb_dims),
            1 | 2 => (base % 1000, 3),
            3 => (base % 1000, 4),
            _ => return self.fail(format!("unknown geometry type {code}")),
        };
        if has_srid {
            self.u32(little)?;
        }
        if let Some(w) = want.filter(|w| *w != kind) {
            return self.fail(format!(
                "a member of type {kind} where type {w} was required"
            ));
        }
        Ok(match kind {
            1 => {
                let c = self.coord(little, dims)?;
                Point(c).into()
            }
            2 => LineString::from(self.coords(little, dims)?).into(),
            3 => self.polygon(little, dims)?.into(),
            4..=7 => {
                let n = self.count(little, 5)?;
                let member = match kind {
                    4 => Some(1),
                    5 => Some(2),
                    6 => Some(3),
                    _ => None,
                };
                let parts = (0..n)
                    .map(|_| self.geometry(depth + 1, member))
                    .collect::<Result<Vec<_>, _>>()?;
                let it = parts.into_iter();
                match kind {
                    4 => {
                        MultiPoint::new(it.filter_map(|g| Point::try_from(g).ok()).collect()).into()
                    }
                    5 => MultiLineString::new(
                        it.filter_map(|g| LineString::try_from(g).ok()).collect(),
                    )
                    .into(),
                    6 => MultiPolygon::new(it.filter_map(|g| Polygon::try_from(g).ok()).collect())
                        .into(),
                    _ => Geometry::GeometryCollection(it.collect()),
                }
            }
            _ => return self.fail(format!("unsupported geometry type {code}")),
        })
    }
}

/// Read one WKB geometry (ISO or PostGIS EWKB, either byte order, 2D/Z/M/ZM; only x and y are
/// kept). Bytes after the geometry are an error, so a truncated or concatenated blob is caught.
pub fn read_wkb(bytes: &[u8]) -> Result<Geometry<f64>, WkbError> {
    let mut r = Reader { bytes, at: 0 };
    let g = r.geometry(0, None)?;
    if r.at != bytes.len() {
        return r.fail(format!("{} bytes after the geometry", bytes.len() - r.at));
    }
    Ok(g)
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

    /// And what GDAL writes, in either byte order and with Z, we read back.
    #[test]
    fn reads_back_what_gdal_writes() {
        use gdal::vector::Geometry as G;
        let cases = [
            "POINT (1.5 -2.25)",
            "LINESTRING (0 0,3 4,5 5)",
            "POLYGON ((0 0,10 0,10 5,0 0),(1 1,2 1,2 2,1 1))",
            "MULTIPOLYGON (((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))",
            "MULTILINESTRING ((0 0,1 1),(2 2,3 3))",
            "MULTIPOINT ((1 2),(3 4))",
            "GEOMETRYCOLLECTION (POINT (1 2),LINESTRING (0 0,1 1))",
        ];
        for wkt in cases {
            let g = G::from_wkt(wkt).unwrap();
            let expected = g.to_geo().unwrap();
            assert_eq!(read_wkb(&g.wkb().unwrap()).unwrap(), expected, "{wkt}");
            assert_eq!(read_wkb(&to_wkb(&expected)).unwrap(), expected, "{wkt}");
        }
        let z = G::from_wkt("LINESTRING Z (0 0 7,3 4 8)").unwrap();
        assert_eq!(
            read_wkb(&z.wkb().unwrap()).unwrap(),
            Geometry::LineString(LineString::from(vec![(0.0, 0.0), (3.0, 4.0)]))
        );
        // Big-endian point, written by hand: 00, type 1, x = 1.0, y = 2.0.
        let mut be = vec![0u8, 0, 0, 0, 1];
        be.extend_from_slice(&1.0f64.to_be_bytes());
        be.extend_from_slice(&2.0f64.to_be_bytes());
        assert_eq!(
            read_wkb(&be).unwrap(),
            Geometry::Point(Point::new(1.0, 2.0))
        );
    }

    #[test]
    fn bad_wkb_is_an_error_with_its_offset() {
        let good = to_wkb(&LineString::from(vec![(0.0, 0.0), (3.0, 4.0)]).into());
        // A truncated line is caught at its count, before any coordinate is read.
        let e = read_wkb(&good[..good.len() - 3]).unwrap_err();
        assert_eq!(e.offset, 9, "{e}");
        let point = to_wkb(&Point::new(1.0, 2.0).into());
        let e = read_wkb(&point[..point.len() - 3]).unwrap_err();
        assert!(e.message.contains("ends early"), "{e}");
        let mut huge = good.clone();
        huge[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(read_wkb(&huge).unwrap_err().message.contains("count"));
        let mut extra = good.clone();
        extra.push(0);
        assert_eq!(read_wkb(&extra).unwrap_err().offset, good.len());
        assert!(read_wkb(&[7]).unwrap_err().message.contains("byte order"));
        assert!(
            read_wkb(&[1, 99, 0, 0, 0])
                .unwrap_err()
                .message
                .contains("type 99")
        );
    }
}
