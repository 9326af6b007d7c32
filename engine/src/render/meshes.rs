//! Geometry for the views, built on the CPU as plain vertex lists (checked without a GPU):
//! the terrain, every building merged into one mesh per tile, road ribbons, the water surface
//! and hexagons of a map.
//!
//! The view's axes are Bevy's: x east, y up, z south; positions are metres from the view's
//! origin (the city's centre), in `f32`, which keeps millimetres up to ~100 km away.

use bevy::math::DVec2;
use geo::TriangulateEarcut;

use super::city::{BuildingGeom, CityStatic, RoadGeom, Terrain};
use crate::model::BuildingUse;
use crate::recorder::Raster;

/// Vertices and triangles, ready to become a Bevy mesh.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MeshData {
    /// Positions, view axes.
    pub positions: Vec<[f32; 3]>,
    /// Normals.
    pub normals: Vec<[f32; 3]>,
    /// Linear RGBA per vertex.
    pub colors: Vec<[f32; 4]>,
    /// Triangles (counter-clockwise seen from outside).
    pub indices: Vec<u32>,
}

impl MeshData {
    /// Whether it has no triangles.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    fn vertex(&mut self, p: [f32; 3], n: [f32; 3], c: [f32; 4]) -> u32 {
        self.positions.push(p);
        self.normals.push(n);
        self.colors.push(c);
        (self.positions.len() - 1) as u32
    }

    /// A flat quad from four corners in order (counter-clockwise seen from the normal's side).
    fn quad(&mut self, corners: [[f32; 3]; 4], n: [f32; 3], c: [f32; 4]) {
        let i: Vec<u32> = corners.iter().map(|&p| self.vertex(p, n, c)).collect();
        self.indices
            .extend_from_slice(&[i[0], i[1], i[2], i[0], i[2], i[3]]);
    }
}

/// From the scene frame (x east, y north, z up; m) to the view's axes around `origin`.
#[inline]
pub fn to_view(origin: DVec2, p: DVec2, z_m: f64) -> [f32; 3] {
    [
        (p.x - origin.x) as f32,
        z_m as f32,
        -(p.y - origin.y) as f32,
    ]
}

/// sRGB 0–255 to linear RGBA.
pub fn srgb(r: u8, g: u8, b: u8, a: f32) -> [f32; 4] {
    let lin = |c: u8| {
        let c = c as f32 / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    [lin(r), lin(g), lin(b), a]
}

/// The colour of a building by its use.
pub fn use_colour(u: BuildingUse) -> [f32; 4] {
    match u {
        BuildingUse::Residential => srgb(236, 222, 200, 1.0),
        BuildingUse::Commercial => srgb(176, 196, 226, 1.0),
        BuildingUse::Industrial => srgb(206, 176, 150, 1.0),
        BuildingUse::Public => srgb(196, 224, 184, 1.0),
        BuildingUse::Other => srgb(214, 214, 214, 1.0),
    }
}

/// A colour ramp from `lo` to `hi` at `t` in 0–1 (linear colours).
pub fn ramp(lo: [f32; 4], hi: [f32; 4], t: f32) -> [f32; 4] {
    let t = t.clamp(0.0, 1.0);
    std::array::from_fn(|k| lo[k] + (hi[k] - lo[k]) * t)
}

/// The terrain as one mesh: a vertex per cell centre, coloured from low (green) to high
/// (brown), smooth normals.
pub fn terrain_mesh(t: &Terrain, origin: DVec2) -> MeshData {
    let mut m = MeshData::default();
    if t.nx < 2 || t.ny < 2 {
        return m;
    }
    let finite: Vec<f32> = t.z_m.iter().copied().filter(|z| z.is_finite()).collect();
    let lo = finite.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = finite.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let span = (hi - lo).max(1.0);
    let z = |i: usize, j: usize| {
        let v = t.z_m[j * t.nx + i];
        if v.is_finite() { v } else { lo }
    };
    let (green, brown) = (srgb(196, 212, 170, 1.0), srgb(222, 208, 178, 1.0));
    for j in 0..t.ny {
        for i in 0..t.nx {
            let p = t.origin_m + DVec2::new(i as f64 + 0.5, j as f64 + 0.5) * t.cell_m;
            // Normal from the neighbours' slopes (east and north), in view axes.
            let (il, ir) = (i.saturating_sub(1), (i + 1).min(t.nx - 1));
            let (jd, ju) = (j.saturating_sub(1), (j + 1).min(t.ny - 1));
            let dzdx = (z(ir, j) - z(il, j)) / ((ir - il).max(1) as f64 * t.cell_m) as f32;
            let dzdy = (z(i, ju) - z(i, jd)) / ((ju - jd).max(1) as f64 * t.cell_m) as f32;
            let n = bevy::math::Vec3::new(-dzdx, 1.0, dzdy).normalize();
            m.vertex(
                to_view(origin, p, z(i, j) as f64),
                n.to_array(),
                ramp(green, brown, (z(i, j) - lo) / span),
            );
        }
    }
    for j in 0..t.ny - 1 {
        for i in 0..t.nx - 1 {
            let a = (j * t.nx + i) as u32;
            let b = a + 1;
            let c = a + t.nx as u32;
            let d = c + 1;
            // Counter-clockwise seen from above (view y up, z south).
            m.indices.extend_from_slice(&[a, b, d, a, d, c]);
        }
    }
    m
}

/// Buildings extruded from their ground to their height, walls and a flat roof, coloured by
/// `colour` (one colour per building).
pub fn buildings_mesh(
    buildings: &[BuildingGeom],
    origin: DVec2,
    colour: impl Fn(&BuildingGeom) -> [f32; 4],
) -> MeshData {
    let mut m = MeshData::default();
    for b in buildings {
        let c = colour(b);
        let (z0, z1) = (b.base_m, b.base_m + b.height_m);
        for poly in &b.footprints {
            // Walls: each ring edge, outward normal (exterior rings are counter-clockwise in
            // the frame after orienting; holes the other way).
            use geo::orient::{Direction, Orient};
            let poly = poly.orient(Direction::Default);
            let rings = std::iter::once(poly.exterior()).chain(poly.interiors());
            for ring in rings {
                for w in ring.0.windows(2) {
                    let (a, bb) = (DVec2::new(w[0].x, w[0].y), DVec2::new(w[1].x, w[1].y));
                    let d = bb - a;
                    if d.length() < 1e-6 {
                        continue;
                    }
                    // Outward for a counter-clockwise ring: (dy, -dx) in the frame.
                    let n = DVec2::new(d.y, -d.x).normalize();
                    let nv = [n.x as f32, 0.0, -n.y as f32];
                    m.quad(
                        [
                            to_view(origin, a, z0),
                            to_view(origin, bb, z0),
                            to_view(origin, bb, z1),
                            to_view(origin, a, z1),
                        ],
                        nv,
                        c,
                    );
                }
            }
            // Roof.
            let tri = poly.earcut_triangles_raw();
            let first = m.positions.len() as u32;
            for v in &tri.vertices {
                m.vertex(
                    to_view(origin, DVec2::new(v[0], v[1]), z1),
                    [0.0, 1.0, 0.0],
                    c,
                );
            }
            for t in tri.triangle_indices.chunks(3) {
                // Earcut's winding follows the ring; keep the roof facing up.
                let (a, b2, c2) = (t[0] as u32, t[1] as u32, t[2] as u32);
                let (pa, pb, pc) = (tri.vertices[t[0]], tri.vertices[t[1]], tri.vertices[t[2]]);
                let cross = (pb[0] - pa[0]) * (pc[1] - pa[1]) - (pb[1] - pa[1]) * (pc[0] - pa[0]);
                if cross >= 0.0 {
                    m.indices
                        .extend_from_slice(&[first + a, first + b2, first + c2]);
                } else {
                    m.indices
                        .extend_from_slice(&[first + a, first + c2, first + b2]);
                }
            }
        }
    }
    m
}

/// Road ribbons along their centrelines, draped over the ground `lift_m` above it (pieces no
/// longer than a terrain cell, so a road across a hollow follows it instead of bridging it).
pub fn roads_mesh(city: &CityStatic, roads: &[RoadGeom], origin: DVec2, lift_m: f64) -> MeshData {
    let mut m = MeshData::default();
    let grey = srgb(64, 64, 70, 1.0);
    let piece_m = city.terrain.as_ref().map_or(10.0, |t| t.cell_m).max(2.0);
    let z = |p: DVec2| city.ground_at(p) as f64 + lift_m;
    for r in roads {
        let half = r.width_m / 2.0;
        for w in r.line_m.windows(2) {
            let (a, b) = (w[0], w[1]);
            let d = b - a;
            let len = d.length();
            if len < 1e-6 {
                continue;
            }
            let side = DVec2::new(-d.y, d.x) / len * half;
            let n = (len / piece_m).ceil().max(1.0) as usize;
            for k in 0..n {
                let (p, q) = (
                    a + d * (k as f64 / n as f64),
                    a + d * ((k + 1) as f64 / n as f64),
                );
                m.quad(
                    [
                        to_view(origin, p - side, z(p)),
                        to_view(origin, q - side, z(q)),
                        to_view(origin, q + side, z(q)),
                        to_view(origin, p + side, z(p)),
                    ],
                    [0.0, 1.0, 0.0],
                    grey,
                );
            }
        }
    }
    m
}

/// Water deeper than `min_depth_m` as quads at its surface, darker where deeper (to
/// `deep_m`), half transparent.
pub fn water_mesh(
    r: &Raster,
    ground: &[f32],
    origin: DVec2,
    min_depth_m: f32,
    deep_m: f32,
) -> MeshData {
    let mut m = MeshData::default();
    let (shallow, deep) = (srgb(110, 170, 235, 0.4), srgb(16, 64, 170, 0.85));
    for j in 0..r.ny {
        for i in 0..r.nx {
            let c = j * r.nx + i;
            let h = r.values[c];
            if h.is_nan() || h <= min_depth_m {
                continue;
            }
            let z = ground
                .get(c)
                .copied()
                .filter(|z| z.is_finite())
                .unwrap_or(0.0)
                + h;
            let p0 = r.origin_m + DVec2::new(i as f64, j as f64) * r.cell_m;
            let p1 = p0 + DVec2::splat(r.cell_m);
            m.quad(
                [
                    to_view(origin, p0, z as f64),
                    to_view(origin, DVec2::new(p1.x, p0.y), z as f64),
                    to_view(origin, p1, z as f64),
                    to_view(origin, DVec2::new(p0.x, p1.y), z as f64),
                ],
                [0.0, 1.0, 0.0],
                ramp(shallow, deep, h / deep_m),
            );
        }
    }
    m
}

/// H3 cells as flat hexagons `lift_m` above the ground, coloured by `colour(value)` (cells
/// whose colour is `None` are left out).
pub fn hex_mesh(
    city: &CityStatic,
    cells: &[(u64, f64)],
    frame: &crate::geo_frame::GeoFrame,
    origin: DVec2,
    lift_m: f64,
    colour: impl Fn(f64) -> Option<[f32; 4]>,
) -> MeshData {
    let mut m = MeshData::default();
    for &(h3, v) in cells {
        let Some(c) = colour(v) else { continue };
        let Ok(cell) = h3o::CellIndex::try_from(h3) else {
            continue;
        };
        let poly = frame.cell_polygon(cell);
        let ring: Vec<DVec2> = poly
            .exterior()
            .0
            .iter()
            .map(|p| DVec2::new(p.x, p.y))
            .collect();
        let n = ring.len().saturating_sub(1);
        if n < 3 {
            continue;
        }
        let centre = ring[..n].iter().copied().sum::<DVec2>() / n as f64;
        let z = city.ground_at(centre) as f64 + lift_m;
        let mid = m.vertex(to_view(origin, centre, z), [0.0, 1.0, 0.0], c);
        let first = m.positions.len() as u32;
        for p in &ring[..n] {
            m.vertex(to_view(origin, *p, z), [0.0, 1.0, 0.0], c);
        }
        for k in 0..n as u32 {
            let (a, b) = (first + k, first + (k + 1) % n as u32);
            // Fans both ways round, so the hexagon faces up whatever its ring's order.
            m.indices.extend_from_slice(&[mid, a, b, mid, b, a]);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use bevy::prelude::Entity;

    fn square(x0: f64, y0: f64, s: f64) -> geo::Polygon<f64> {
        geo::Polygon::new(
            geo::LineString::from(vec![
                (x0, y0),
                (x0 + s, y0),
                (x0 + s, y0 + s),
                (x0, y0 + s),
                (x0, y0),
            ]),
            vec![],
        )
    }

    #[test]
    fn a_box_building_has_four_walls_and_a_roof_at_its_height() {
        let b = BuildingGeom {
            entity: Entity::from_raw_u32(1).unwrap(),
            footprints: vec![square(0.0, 0.0, 10.0)],
            base_m: 5.0,
            height_m: 20.0,
            use_: BuildingUse::Commercial,
            centroid_m: DVec2::new(5.0, 5.0),
        };
        let m = buildings_mesh(&[b], DVec2::ZERO, |b| use_colour(b.use_));
        // 4 walls of 2 triangles, a square roof of 2.
        assert_eq!(m.indices.len(), (4 * 2 + 2) * 3);
        let top = m.positions.iter().map(|p| p[1]).fold(f32::MIN, f32::max);
        let bottom = m.positions.iter().map(|p| p[1]).fold(f32::MAX, f32::min);
        assert_eq!((bottom, top), (5.0, 25.0));
        // Every wall normal points away from the centre; the roof's up.
        for (p, n) in m.positions.iter().zip(&m.normals) {
            if n[1] == 0.0 {
                let out = (p[0] - 5.0) * n[0] + (p[2] + 5.0) * n[2];
                assert!(out > 0.0, "{p:?} {n:?}");
            }
        }
        // Roof triangles face up: counter-clockwise seen from above in view axes.
        let roof: Vec<&[u32]> = m.indices.chunks(3).skip(8).collect();
        for t in roof {
            let [a, b, c] = [t[0], t[1], t[2]].map(|i| m.positions[i as usize]);
            let n_y = (b[2] - a[2]) * (c[0] - a[0]) - (b[0] - a[0]) * (c[2] - a[2]);
            assert!(n_y > 0.0, "roof triangle faces down");
        }
    }

    #[test]
    fn water_is_drawn_only_where_it_is_deep_enough() {
        let r = Raster {
            origin_m: DVec2::ZERO,
            cell_m: 10.0,
            nx: 3,
            ny: 2,
            values: vec![0.0, 0.005, 0.2, 0.5, 0.0, 1.0],
            unit: "m",
            t_s: 0.0,
        };
        let ground = vec![1.0; 6];
        let m = water_mesh(&r, &ground, DVec2::ZERO, 0.01, 0.8);
        assert_eq!(m.indices.len(), 3 * 6);
        // The surface is the ground plus the depth.
        let mut ys: Vec<f32> = m.positions.iter().map(|p| p[1]).collect();
        ys.dedup();
        assert!(
            ys.contains(&1.2) && ys.contains(&1.5) && ys.contains(&2.0),
            "{ys:?}"
        );
    }

    #[test]
    fn the_frame_maps_north_to_minus_z() {
        assert_eq!(
            to_view(DVec2::new(10.0, 10.0), DVec2::new(11.0, 13.0), 2.0),
            [1.0, 2.0, -3.0]
        );
    }
}
