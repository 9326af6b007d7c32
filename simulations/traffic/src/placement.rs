//! Where network coordinates lie in the scene frame: an exact reprojection for static
//! geometry, and the affine fit that moving vehicles use.

use bevy::math::DVec2;
use citytwin_engine::crs::{Reprojector, parse_crs};

use super::*;
use bevy::prelude::*;
use citytwin_engine::prelude::*;

/// How network coordinates map into the scene frame.
pub struct Placement {
    /// Affine map: x' = a0 + a1·x + a2·y, y' = a3 + a4·x + a5·y.
    affine: [f64; 6],
    /// Exact reprojection for projected networks (roads use it; moving things use the affine).
    exact: Option<(Reprojector, [f64; 2])>,
}

/// The affine part of a [`Placement`], which moving things use every sync.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug)]
pub struct AffinePlacement([f64; 6]);

impl AffinePlacement {
    /// A network point in the frame.
    pub fn point(&self, p: [f64; 2]) -> DVec2 {
        let a = &self.0;
        DVec2::new(
            a[0] + a[1] * p[0] + a[2] * p[1],
            a[3] + a[4] * p[0] + a[5] * p[1],
        )
    }
}

impl Placement {
    /// The placement of `net` in `frame`.
    pub fn new(net: &Network, frame: &GeoFrame) -> Result<Self, String> {
        match &net.location {
            net::NetLocation::Local { offset } => Ok(Self {
                affine: [-offset[0], 1.0, 0.0, -offset[1], 0.0, 1.0],
                exact: None,
            }),
            net::NetLocation::Projected { offset, proj } => {
                let srs = parse_crs(proj).map_err(|e| e.to_string())?;
                let rp = Reprojector::new(&srs, frame).map_err(|e| e.to_string())?;
                // Fit the affine map on the junctions (a few km: the residual is millimetres).
                let (mut xs, mut ys): (Vec<f64>, Vec<f64>) = net
                    .junctions
                    .iter()
                    .map(|j| (j.xy[0] - offset[0], j.xy[1] - offset[1]))
                    .unzip();
                let src: Vec<[f64; 2]> = net.junctions.iter().map(|j| j.xy).collect();
                rp.transform_in_place(&mut xs, &mut ys)
                    .map_err(|e| e.to_string())?;
                let affine =
                    fit_affine(&src, &xs, &ys).ok_or("too few junctions to place the network")?;
                Ok(Self {
                    affine,
                    exact: Some((rp, *offset)),
                })
            }
        }
    }

    /// The affine map (exact for local networks; millimetres off for projected ones).
    pub fn affine(&self) -> AffinePlacement {
        AffinePlacement(self.affine)
    }

    /// A network point in the frame (affine).
    pub fn point(&self, p: [f64; 2]) -> DVec2 {
        self.affine().point(p)
    }

    /// A polyline in the frame, reprojected exactly where the network is projected.
    pub fn line(&self, pts: &[[f64; 2]]) -> Result<Vec<DVec2>, String> {
        match &self.exact {
            None => Ok(pts.iter().map(|&p| self.point(p)).collect()),
            Some((rp, off)) => {
                let (mut xs, mut ys): (Vec<f64>, Vec<f64>) =
                    pts.iter().map(|p| (p[0] - off[0], p[1] - off[1])).unzip();
                rp.transform_in_place(&mut xs, &mut ys)
                    .map_err(|e| e.to_string())?;
                Ok(xs
                    .into_iter()
                    .zip(ys)
                    .map(|(x, y)| DVec2::new(x, y))
                    .collect())
            }
        }
    }
}

/// Least-squares affine map from `src` to (`xs`, `ys`).
fn fit_affine(src: &[[f64; 2]], xs: &[f64], ys: &[f64]) -> Option<[f64; 6]> {
    let n = src.len();
    if n < 3 {
        return None;
    }
    let (cx, cy) = (
        src.iter().map(|p| p[0]).sum::<f64>() / n as f64,
        src.iter().map(|p| p[1]).sum::<f64>() / n as f64,
    );
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    let (mut bx, mut by) = ([0.0; 2], [0.0; 2]);
    let (mx, my) = (
        xs.iter().sum::<f64>() / n as f64,
        ys.iter().sum::<f64>() / n as f64,
    );
    for (i, p) in src.iter().enumerate() {
        let (u, v) = (p[0] - cx, p[1] - cy);
        sxx += u * u;
        sxy += u * v;
        syy += v * v;
        let (tx, ty) = (xs[i] - mx, ys[i] - my);
        bx[0] += u * tx;
        bx[1] += v * tx;
        by[0] += u * ty;
        by[1] += v * ty;
    }
    let det = sxx * syy - sxy * sxy;
    if det.abs() < 1e-9 {
        return None;
    }
    let solve = |b: [f64; 2]| {
        [
            (b[0] * syy - b[1] * sxy) / det,
            (sxx * b[1] - sxy * b[0]) / det,
        ]
    };
    let [a1, a2] = solve(bx);
    let [a4, a5] = solve(by);
    Some([
        mx - a1 * cx - a2 * cy,
        a1,
        a2,
        my - a4 * cx - a5 * cy,
        a4,
        a5,
    ])
}

/// A point `pos_m` along a lane, network coordinates.
pub fn lane_point(net: &Network, lane: net::LaneIx, pos_m: f64) -> [f64; 2] {
    let l = &net.lanes[lane as usize];
    let shape = &l.shape;
    if shape.len() < 2 {
        return shape.first().copied().unwrap_or([0.0, 0.0]);
    }
    let total: f64 = shape
        .windows(2)
        .map(|w| (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1]))
        .sum();
    let mut d = (pos_m.clamp(0.0, l.length_m) / l.length_m) * total;
    for w in shape.windows(2) {
        let seg = (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1]);
        if d <= seg && seg > 0.0 {
            let f = d / seg;
            return [
                w[0][0] + f * (w[1][0] - w[0][0]),
                w[0][1] + f * (w[1][1] - w[0][1]),
            ];
        }
        d -= seg;
    }
    *shape.last().expect("two points")
}
