//! Concentration maps: plumes and puffs evaluated on a regular grid of receptors, fast.
//!
//! A map of 10⁶ receptors from 100 stacks is 10⁸ plume evaluations. Each plume is tabulated
//! once along its axis (the factor Q/(2π u σy)·V(z) and the lateral 1/(2σy²), at even steps of
//! √x so the near field is fine), and each receptor then costs a rotation, a table lookup and,
//! only inside the plume, one exponential. Rows of receptors are shared out between threads.

use rayon::prelude::*;

use crate::plume::{MIN_DOWNWIND_M, Plume, vertical_term};
use crate::puff::PuffCloud;
use crate::weather::Weather;

/// A regular grid of receptors at one height.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct ReceptorGrid {
    /// Centre of the south-west receptor, m.
    pub first_m: [f64; 2],
    /// Spacing, m.
    pub step_m: f64,
    /// Receptors along x.
    pub nx: usize,
    /// Receptors along y.
    pub ny: usize,
    /// Height above ground, m.
    pub z_m: f64,
}

impl ReceptorGrid {
    /// Number of receptors.
    pub fn len(&self) -> usize {
        self.nx * self.ny
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Position of receptor (i, j), m.
    pub fn at(&self, i: usize, j: usize) -> [f64; 2] {
        [
            self.first_m[0] + i as f64 * self.step_m,
            self.first_m[1] + j as f64 * self.step_m,
        ]
    }
}

const TABLE: usize = 4096;

/// A plume tabulated along its axis for receptors at one height.
#[derive(serde::Serialize, serde::Deserialize)]
struct PlumeTable {
    plume: Plume,
    /// x = (k / scale)², k = 0..TABLE.
    scale: f64,
    amp: Vec<f64>,
    lat: Vec<f64>,
}

impl PlumeTable {
    fn new(plume: Plume, z_m: f64, x_max_m: f64) -> Self {
        let scale = (TABLE - 1) as f64 / x_max_m.max(1.0).sqrt();
        let mut amp = Vec::with_capacity(TABLE);
        let mut lat = Vec::with_capacity(TABLE);
        for k in 0..TABLE {
            let x = (k as f64 / scale).powi(2).max(0.5);
            let (sy, sz) = plume.sigmas_at(x);
            let h = plume.rise.height_at(x);
            amp.push(
                plume.rate_kg_s / (2.0 * std::f64::consts::PI * plume.rise.wind_mps * sy)
                    * vertical_term(z_m, h, sz, plume.weather.mixing_height_m),
            );
            lat.push(-0.5 / (sy * sy));
        }
        Self {
            plume,
            scale,
            amp,
            lat,
        }
    }

    #[inline]
    fn at(&self, x: f64, y: f64) -> f64 {
        let f = x.sqrt() * self.scale;
        let k = f as usize;
        if k + 1 >= TABLE {
            return 0.0;
        }
        let t = f - k as f64;
        let lat = self.lat[k] + t * (self.lat[k + 1] - self.lat[k]);
        let e = lat * y * y;
        if e < -30.0 {
            return 0.0;
        }
        let amp = self.amp[k] + t * (self.amp[k + 1] - self.amp[k]);
        amp * e.exp()
    }
}

/// Add the concentrations of `plumes` on `grid` to `out` (row-major, `grid.nx` per row), kg/m³.
pub fn add_plumes(grid: &ReceptorGrid, plumes: &[Plume], out: &mut [f64]) {
    assert_eq!(out.len(), grid.len(), "one value per receptor");
    if plumes.is_empty() || grid.is_empty() {
        return;
    }
    let span = [grid.step_m * grid.nx as f64, grid.step_m * grid.ny as f64];
    let tables: Vec<PlumeTable> = plumes
        .iter()
        .map(|p| {
            // Far enough to reach every receptor from this source.
            let far = (p.source_xy_m[0] - grid.first_m[0])
                .abs()
                .max((grid.first_m[0] + span[0] - p.source_xy_m[0]).abs())
                + (p.source_xy_m[1] - grid.first_m[1])
                    .abs()
                    .max((grid.first_m[1] + span[1] - p.source_xy_m[1]).abs());
            PlumeTable::new(*p, grid.z_m, far)
        })
        .collect();
    out.par_chunks_mut(grid.nx)
        .enumerate()
        .for_each(|(j, row)| {
            for t in &tables {
                let d = t.plume.weather.downwind();
                let p0 = grid.at(0, j);
                let (dx, dy) = (
                    p0[0] - t.plume.source_xy_m[0],
                    p0[1] - t.plume.source_xy_m[1],
                );
                let (mut x, mut y) = (dx * d[0] + dy * d[1], -dx * d[1] + dy * d[0]);
                let (sx, sy) = (grid.step_m * d[0], -grid.step_m * d[1]);
                for v in row.iter_mut() {
                    if x >= MIN_DOWNWIND_M {
                        *v += t.at(x, y);
                    }
                    x += sx;
                    y += sy;
                }
            }
        });
}

/// Add the concentrations of the puffs of `species` on `grid` to `out`, kg/m³; each puff only
/// touches the receptors within 5σ of its centre.
pub fn add_puffs(
    grid: &ReceptorGrid,
    cloud: &PuffCloud,
    species: u32,
    w: &Weather,
    out: &mut [f64],
) {
    for q in cloud.puffs.iter().filter(|q| q.species == species) {
        let sy = q.sigma_now_m[0];
        let reach = 5.0 * sy.max(1.0) + grid.step_m;
        let lo_i = ((q.xy_m[0] - reach - grid.first_m[0]) / grid.step_m)
            .floor()
            .max(0.0) as usize;
        let hi_i = ((q.xy_m[0] + reach - grid.first_m[0]) / grid.step_m).ceil();
        let lo_j = ((q.xy_m[1] - reach - grid.first_m[1]) / grid.step_m)
            .floor()
            .max(0.0) as usize;
        let hi_j = ((q.xy_m[1] + reach - grid.first_m[1]) / grid.step_m).ceil();
        if hi_i < 0.0 || hi_j < 0.0 {
            continue;
        }
        let (hi_i, hi_j) = (
            (hi_i as usize).min(grid.nx.saturating_sub(1)),
            (hi_j as usize).min(grid.ny.saturating_sub(1)),
        );
        for j in lo_j..=hi_j {
            for i in lo_i..=hi_i {
                out[j * grid.nx + i] += cloud.puff_concentration(q, grid.at(i, j), grid.z_m, w);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plume::StackExit;
    use crate::sigma::Curves;
    use crate::weather::{Stability, Terrain};

    #[test]
    fn tabulated_field_matches_the_formula() {
        let w = Weather {
            wind_speed_mps: 3.0,
            wind_from_deg: 200.0,
            stability: Stability::C,
            mixing_height_m: 900.0,
            air_temperature_k: 290.0,
        };
        let exit = StackExit {
            diameter_m: 2.0,
            velocity_mps: 10.0,
            temperature_k: 400.0,
        };
        let plumes = [
            Plume::new(
                [0.0, 0.0],
                40.0,
                exit,
                1.0,
                w,
                Terrain::Urban,
                Curves::BriggsUrban,
            ),
            Plume::new(
                [300.0, -200.0],
                2.0,
                StackExit::default(),
                0.2,
                w,
                Terrain::Urban,
                Curves::BriggsUrban,
            ),
        ];
        let grid = ReceptorGrid {
            first_m: [-1000.0, -1000.0],
            step_m: 10.0,
            nx: 200,
            ny: 200,
            z_m: 1.5,
        };
        let mut out = vec![0.0; grid.len()];
        add_plumes(&grid, &plumes, &mut out);
        let peak = out.iter().cloned().fold(0.0, f64::max);
        assert!(peak > 0.0);
        let mut worst = 0.0f64;
        for j in 0..grid.ny {
            for i in 0..grid.nx {
                let exact: f64 = plumes
                    .iter()
                    .map(|p| p.concentration(grid.at(i, j), 1.5))
                    .sum();
                worst = worst.max((out[j * grid.nx + i] - exact).abs() / peak);
            }
        }
        assert!(worst < 2e-3, "worst error {worst} of the peak");
    }
}
