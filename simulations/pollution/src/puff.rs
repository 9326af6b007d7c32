//! Gaussian puffs: releases that start and stop, and plumes that follow a turning wind.
//!
//! A release of `Q` kg/s becomes a puff of `Q·Δt` kg every `Δt`. Each puff drifts with the wind
//! at its height and grows with the distance it has travelled along the same σ curves as the
//! plume; when the stability changes, a puff keeps its size and grows on from the "virtual
//! distance" at which the new class has that size (as CALPUFF does). A puff's concentration is
//!
//! C = M / ((2π)^{3/2} σy² σz) · exp(−r²/2σy²) · Σ reflections,
//!
//! σx = σy, with the same ground and mixing-lid reflections as [`crate::plume`]. A long steady
//! release of closely spaced puffs converges to the plume (tested).

use crate::plume::{PlumeRise, StackExit, vertical_term};
use crate::sigma::Curves;
use crate::weather::{Stability, Terrain, Weather};

/// Where and how a source releases: the geometry both plumes and puffs start from.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Default)]
pub struct SourceGeometry {
    /// Position in the frame, m.
    pub xy_m: [f64; 2],
    /// Height of the stack top or release above ground, m.
    pub height_m: f64,
    /// Stack exit (zeros for a passive release).
    pub exit: StackExit,
    /// Initial spread (σy, σz), m: an area source's size, a release's own mixing.
    pub sigma0_m: [f64; 2],
}

/// One puff.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Puff {
    /// Which source released it (an index the caller assigns).
    pub source: u32,
    /// Pollutant (an index the caller assigns).
    pub species: u32,
    /// Centre, m.
    pub xy_m: [f64; 2],
    /// Mass, kg.
    pub mass_kg: f64,
    /// Height of the stack or release above ground, m.
    pub height_m: f64,
    /// Stack exit for momentum rise (zeros for passive releases).
    pub exit: StackExit,
    /// Distance travelled, m.
    pub travel_m: f64,
    /// Spread from the dispersion curves so far, m.
    pub sigma_curve_m: [f64; 2],
    /// Distance along the current class's curves that gives that spread (the travel, until the
    /// stability changes), m, for y and z.
    pub curve_distance_m: [f64; 2],
    /// Initial spread of the source (area sources), m.
    pub sigma_initial_m: [f64; 2],
    /// Class the curve spread was last grown with.
    pub stability: Stability,
    /// Effective height now (release height plus rise), m; kept up to date by
    /// [`PuffCloud::step`] so that evaluating a puff needs no plume-rise arithmetic.
    pub height_now_m: f64,
    /// Total spread now (σy, σz) including buoyancy-induced and initial spread, m.
    pub sigma_now_m: [f64; 2],
}

impl Puff {
    /// Effective height in weather `w`, m.
    fn rise(&self, w: &Weather, terrain: Terrain) -> PlumeRise {
        PlumeRise::briggs(self.height_m, self.exit, w, terrain)
    }

    fn refresh(&mut self, w: &Weather, terrain: Terrain) {
        let r = self.rise(w, terrain);
        let rise = r.rise_at(self.travel_m);
        let (sy, sz) = self.sigmas(rise);
        self.height_now_m = r.release_m + rise;
        self.sigma_now_m = [sy, sz];
    }

    /// Total spread (σy, σz), m.
    pub fn sigmas(&self, rise_m: f64) -> (f64, f64) {
        let b = rise_m / 3.5;
        (
            (self.sigma_curve_m[0].powi(2) + b * b + self.sigma_initial_m[0].powi(2)).sqrt(),
            (self.sigma_curve_m[1].powi(2) + b * b + self.sigma_initial_m[1].powi(2)).sqrt(),
        )
    }
}

/// The distance at which `curves` give spread `sigma` (component `k`: 0 = y, 1 = z) in class `s`.
fn virtual_distance(curves: Curves, s: Stability, k: usize, sigma: f64) -> f64 {
    let f = |x: f64| {
        let v = curves.sigmas(s, x);
        if k == 0 { v.0 } else { v.1 }
    };
    let (mut lo, mut hi) = (1.0f64, 1.0e6f64);
    if sigma <= f(lo) {
        return lo;
    }
    if sigma >= f(hi) {
        return hi;
    }
    for _ in 0..50 {
        let mid = (lo * hi).sqrt();
        if f(mid) < sigma {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo * hi).sqrt()
}

/// All puffs in the air.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct PuffCloud {
    /// The puffs, oldest first.
    pub puffs: Vec<Puff>,
    /// Dispersion curves.
    pub curves: Curves,
    /// Terrain (wind profile).
    pub terrain: Terrain,
}

impl PuffCloud {
    /// No puffs yet.
    pub fn new(curves: Curves, terrain: Terrain) -> Self {
        Self {
            puffs: Vec::new(),
            curves,
            terrain,
        }
    }

    /// Release a puff of `mass_kg` from `at`, tagged with the caller's source and species
    /// indices.
    pub fn release(
        &mut self,
        source: u32,
        species: u32,
        at: &SourceGeometry,
        mass_kg: f64,
        w: &Weather,
    ) {
        let mut p = Puff {
            source,
            species,
            xy_m: at.xy_m,
            mass_kg,
            height_m: at.height_m,
            exit: at.exit,
            travel_m: 0.0,
            sigma_curve_m: [0.0, 0.0],
            curve_distance_m: [0.0, 0.0],
            sigma_initial_m: at.sigma0_m,
            stability: w.stability,
            height_now_m: at.height_m,
            sigma_now_m: [0.0, 0.0],
        };
        p.refresh(w, self.terrain);
        self.puffs.push(p);
    }

    /// Move and grow every puff by `dt_s` in weather `w`; drop puffs whose centre is more than
    /// `4σ` outside `bounds` (min x, min y, max x, max y), as their mass has left the area.
    /// Returns the mass dropped, kg, per species index.
    pub fn step(&mut self, dt_s: f64, w: &Weather, bounds: [f64; 4]) -> Vec<(u32, f64)> {
        let dir = w.downwind();
        let (curves, terrain) = (self.curves, self.terrain);
        for p in &mut self.puffs {
            let rise = p.rise(w, terrain);
            let h = rise.height_at(p.travel_m).min(w.mixing_height_m);
            let u = w.wind_at(h, terrain);
            let ds = u * dt_s;
            p.xy_m[0] += dir[0] * ds;
            p.xy_m[1] += dir[1] * ds;
            for k in 0..2 {
                if p.stability != w.stability && p.curve_distance_m[k] > 0.0 {
                    p.curve_distance_m[k] =
                        virtual_distance(curves, w.stability, k, p.sigma_curve_m[k]);
                }
                p.curve_distance_m[k] += ds;
                let v = curves.sigmas(w.stability, p.curve_distance_m[k]);
                p.sigma_curve_m[k] = if k == 0 { v.0 } else { v.1 };
            }
            p.stability = w.stability;
            // Travel keeps counting for plume rise whatever the class.
            p.travel_m += ds;
            p.refresh(w, terrain);
        }
        let mut dropped: Vec<(u32, f64)> = Vec::new();
        self.puffs.retain(|p| {
            let sy = p.sigma_now_m[0];
            let m = 4.0 * sy;
            let inside = p.xy_m[0] > bounds[0] - m
                && p.xy_m[1] > bounds[1] - m
                && p.xy_m[0] < bounds[2] + m
                && p.xy_m[1] < bounds[3] + m;
            if !inside {
                match dropped.iter_mut().find(|d| d.0 == p.species) {
                    Some(d) => d.1 += p.mass_kg,
                    None => dropped.push((p.species, p.mass_kg)),
                }
            }
            inside
        });
        dropped
    }

    /// Concentration of species `species` at a point `z_m` above ground, kg/m³.
    pub fn concentration(&self, species: u32, p: [f64; 2], z_m: f64, w: &Weather) -> f64 {
        self.puffs
            .iter()
            .filter(|q| q.species == species)
            .map(|q| self.puff_concentration(q, p, z_m, w))
            .sum()
    }

    /// One puff's concentration at a point, kg/m³ (its height and spread as of the last step,
    /// the mixing height of `w`).
    pub fn puff_concentration(&self, q: &Puff, p: [f64; 2], z_m: f64, w: &Weather) -> f64 {
        let [sy, sz] = q.sigma_now_m;
        if sy <= 0.0 || sz <= 0.0 {
            return 0.0;
        }
        let (dx, dy) = (p[0] - q.xy_m[0], p[1] - q.xy_m[1]);
        let r2 = dx * dx + dy * dy;
        if r2 > 25.0 * sy * sy {
            return 0.0;
        }
        q.mass_kg / (2.0 * std::f64::consts::PI * sy * sy)
            * (-0.5 * r2 / (sy * sy)).exp()
            * vertical_term(z_m, q.height_now_m, sz, w.mixing_height_m)
            / (2.0 * std::f64::consts::PI).sqrt()
    }

    /// Mass in the air per species index, kg.
    pub fn mass_kg(&self, species: u32) -> f64 {
        self.puffs
            .iter()
            .filter(|p| p.species == species)
            .map(|p| p.mass_kg)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plume::Plume;

    /// A passive point release at the origin, `h` m up.
    fn at(h: f64) -> SourceGeometry {
        SourceGeometry {
            height_m: h,
            ..Default::default()
        }
    }

    #[test]
    fn long_steady_release_converges_to_the_plume() {
        let w = Weather {
            wind_speed_mps: 3.0,
            wind_from_deg: 250.0,
            stability: Stability::D,
            mixing_height_m: 800.0,
            air_temperature_k: 293.15,
        };
        let (terrain, curves) = (Terrain::Urban, Curves::BriggsUrban);
        let q = 1.5;
        let plume = Plume::new([0.0, 0.0], 5.0, StackExit::default(), q, w, terrain, curves);
        let mut cloud = PuffCloud::new(curves, terrain);
        let dt = 2.0;
        for _ in 0..1500 {
            cloud.release(0, 0, &at(5.0), q * dt, &w);
            cloud.step(dt, &w, [-5000.0, -5000.0, 5000.0, 5000.0]);
        }
        let d = w.downwind();
        for x in [200.0, 500.0, 1000.0, 2000.0] {
            for y in [0.0, 40.0] {
                let p = [d[0] * x - d[1] * y, d[1] * x + d[0] * y];
                let (a, b) = (
                    cloud.concentration(0, p, 1.5, &w),
                    plume.concentration(p, 1.5),
                );
                assert!(
                    (a - b).abs() / b < 0.03,
                    "x {x} y {y}: puffs {a:e} plume {b:e}"
                );
            }
        }
    }

    #[test]
    fn a_short_release_is_a_moving_cloud() {
        let w = Weather {
            wind_speed_mps: 4.0,
            wind_from_deg: 180.0, // from the south: puffs go north
            stability: Stability::C,
            mixing_height_m: 1000.0,
            air_temperature_k: 293.15,
        };
        let mut cloud = PuffCloud::new(Curves::BriggsUrban, Terrain::Urban);
        for _ in 0..60 {
            cloud.release(0, 0, &at(2.0), 1.0, &w);
            cloud.step(1.0, &w, [-1e4, -1e4, 1e4, 1e4]);
        }
        for _ in 0..300 {
            cloud.step(1.0, &w, [-1e4, -1e4, 1e4, 1e4]);
        }
        assert!((cloud.mass_kg(0) - 60.0).abs() < 1e-9);
        // The cloud has moved on: nothing left at the source, the peak ~ (300 + 30) s · u north.
        let u = w.wind_at(2.0, Terrain::Urban);
        assert!(cloud.concentration(0, [0.0, 0.0], 1.5, &w) < 1e-12);
        let peak = cloud.concentration(0, [0.0, 330.0 * u], 1.5, &w);
        assert!(peak > 10.0 * cloud.concentration(0, [0.0, 150.0 * u], 1.5, &w));
    }

    #[test]
    fn growth_continues_across_a_stability_change() {
        let mut w = Weather {
            wind_speed_mps: 3.0,
            wind_from_deg: 0.0,
            stability: Stability::B,
            mixing_height_m: 1000.0,
            air_temperature_k: 293.15,
        };
        let mut cloud = PuffCloud::new(Curves::BriggsRural, Terrain::Rural);
        cloud.release(0, 0, &at(2.0), 1.0, &w);
        for _ in 0..100 {
            cloud.step(1.0, &w, [-1e4, -1e4, 1e4, 1e4]);
        }
        let before = cloud.puffs[0].sigma_curve_m;
        w.stability = Stability::E;
        cloud.step(1.0, &w, [-1e4, -1e4, 1e4, 1e4]);
        let after = cloud.puffs[0].sigma_curve_m;
        // A puff never shrinks, and grows more slowly in stable air.
        assert!(after[0] > before[0] && after[1] >= before[1]);
        assert!(after[0] - before[0] < 0.2 * before[0]);
    }
}
