//! The steady Gaussian plume, with Briggs plume rise, ground and mixing-lid reflections.
//!
//! For a source emitting `Q` kg/s at effective height `H` into a wind `u` at that height, the
//! concentration at `x` m downwind, `y` m across the wind and `z` m above ground is
//!
//! C = Q / (2π u σy σz) · exp(−y²/2σy²) · Σₙ [exp(−(z−H+2nL)²/2σz²) + exp(−(z+H+2nL)²/2σz²)]
//!
//! with `L` the mixing height (reflections off the ground and the lid, n = −4…4). Once
//! σz > 1.6 L the plume is mixed through the layer: C = Q/(√(2π) u L σy) · exp(−y²/2σy²), and a
//! plume released above the lid does not reach the ground (ISC3's conventions). Plume rise
//! follows Briggs as in ISC3: buoyancy flux F = g·v·d²·(Ts−Ta)/(4·Ts), final rise
//! 21.425·F^¾/u (F < 55) or 38.71·F^⅗/u (F ≥ 55) in unstable and neutral air,
//! 2.6·(F/(u·s))^⅓ in stable air, growing as 1.6·F^⅓·x^⅔/u until then; momentum rise
//! 3·d·v/u when that is larger; stack-tip downwash when v < 1.5 u; buoyancy-induced dispersion
//! σ² += (Δh/3.5)².

use crate::sigma::Curves;
use crate::weather::{Stability, Terrain, Weather};

/// Gravity, m/s².
const G_MPS2: f64 = 9.80665;

/// Receptors closer than this downwind of a source (inside it) get no contribution from it, m.
pub const MIN_DOWNWIND_M: f64 = 1.0;

/// A stack's exit conditions (all zero for a passive release).
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Default)]
pub struct StackExit {
    /// Inner diameter at the top, m.
    pub diameter_m: f64,
    /// Exit velocity, m/s.
    pub velocity_mps: f64,
    /// Exit temperature, K.
    pub temperature_k: f64,
}

/// Plume rise of a stack in given weather.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct PlumeRise {
    /// Release height after stack-tip downwash, m.
    pub release_m: f64,
    /// Final rise above the release height, m.
    pub final_rise_m: f64,
    /// Distance to final rise, m (0: momentum rise, reached at once).
    pub distance_to_final_m: f64,
    /// Buoyancy flux, m⁴/s³.
    pub buoyancy_flux: f64,
    /// Wind at the stack top, m/s.
    pub wind_mps: f64,
}

impl PlumeRise {
    /// Briggs rise for a stack `height_m` high with `exit` conditions in `w`.
    pub fn briggs(height_m: f64, exit: StackExit, w: &Weather, terrain: Terrain) -> Self {
        let u = w.wind_at(height_m, terrain);
        let (d, v, ts, ta) = (
            exit.diameter_m,
            exit.velocity_mps,
            exit.temperature_k,
            w.air_temperature_k,
        );
        let mut release_m = height_m;
        if d > 0.0 && v > 0.0 && v < 1.5 * u {
            release_m = (height_m + 2.0 * d * (v / u - 1.5)).max(0.0);
        }
        if d <= 0.0 || v <= 0.0 {
            return Self {
                release_m,
                final_rise_m: 0.0,
                distance_to_final_m: 0.0,
                buoyancy_flux: 0.0,
                wind_mps: u,
            };
        }
        let f = if ts > ta {
            G_MPS2 * v * d * d * (ts - ta) / (4.0 * ts)
        } else {
            0.0
        };
        let momentum = 3.0 * d * v / u;
        let (buoyant, xf) = if w.stability.is_stable() {
            let dtheta_dz = if w.stability == Stability::E {
                0.020
            } else {
                0.035
            };
            let s = G_MPS2 * dtheta_dz / ta;
            (2.6 * (f / (u * s)).cbrt(), 2.0715 * u / s.sqrt())
        } else if f < 55.0 {
            (21.425 * f.powf(0.75) / u, 49.0 * f.powf(0.625))
        } else {
            (38.71 * f.powf(0.6) / u, 119.0 * f.powf(0.4))
        };
        if buoyant >= momentum {
            Self {
                release_m,
                final_rise_m: buoyant,
                distance_to_final_m: xf,
                buoyancy_flux: f,
                wind_mps: u,
            }
        } else {
            Self {
                release_m,
                final_rise_m: momentum,
                distance_to_final_m: 0.0,
                buoyancy_flux: f,
                wind_mps: u,
            }
        }
    }

    /// Rise at `x_m` downwind, m (the gradual 1.6·F^⅓·x^⅔/u law until the final rise).
    pub fn rise_at(&self, x_m: f64) -> f64 {
        if self.distance_to_final_m <= 0.0 || x_m >= self.distance_to_final_m {
            return self.final_rise_m;
        }
        (1.6 * self.buoyancy_flux.cbrt() * x_m.max(0.0).powf(2.0 / 3.0) / self.wind_mps)
            .min(self.final_rise_m)
    }

    /// Effective height at `x_m` downwind, m.
    pub fn height_at(&self, x_m: f64) -> f64 {
        self.release_m + self.rise_at(x_m)
    }
}

/// The vertical part of the Gaussian formula with reflections, 1/m: multiply by
/// Q/(2π u σy)·exp(−y²/2σy²) for a concentration.
pub fn vertical_term(z_m: f64, h_m: f64, sigma_z_m: f64, mixing_m: f64) -> f64 {
    if h_m > mixing_m {
        return 0.0;
    }
    if sigma_z_m > 1.6 * mixing_m {
        // Well mixed: Q/(√(2π) u L σy) = Q/(2π u σy) · √(2π)/L.
        return (2.0 * std::f64::consts::PI).sqrt() / mixing_m;
    }
    let k = -0.5 / (sigma_z_m * sigma_z_m);
    let g = |d: f64| (k * d * d).exp();
    let mut sum = g(z_m - h_m) + g(z_m + h_m);
    // Reflections off the lid matter only once the plume is deep compared with the layer.
    if sigma_z_m > 0.05 * mixing_m {
        for n in 1..=4 {
            let nl = 2.0 * n as f64 * mixing_m;
            sum += g(z_m - h_m - nl) + g(z_m + h_m - nl) + g(z_m - h_m + nl) + g(z_m + h_m + nl);
        }
    }
    sum / sigma_z_m
}

/// A plume from one source in one weather: evaluate concentrations anywhere.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug)]
pub struct Plume {
    /// Source position in the frame, m.
    pub source_xy_m: [f64; 2],
    /// Emission rate, kg/s.
    pub rate_kg_s: f64,
    /// Rise (or just the release height for a passive source).
    pub rise: PlumeRise,
    /// Dispersion curves.
    pub curves: Curves,
    /// Weather.
    pub weather: Weather,
    /// Downwind unit vector.
    dir: [f64; 2],
    /// Initial lateral and vertical spread (area sources, building wakes), m.
    pub initial_sigma_m: [f64; 2],
}

impl Plume {
    /// A plume of a stack or a passive point release (`exit` default) at `height_m`.
    pub fn new(
        source_xy_m: [f64; 2],
        height_m: f64,
        exit: StackExit,
        rate_kg_s: f64,
        weather: Weather,
        terrain: Terrain,
        curves: Curves,
    ) -> Self {
        Self {
            source_xy_m,
            rate_kg_s,
            rise: PlumeRise::briggs(height_m, exit, &weather, terrain),
            curves,
            dir: weather.downwind(),
            weather,
            initial_sigma_m: [0.0, 0.0],
        }
    }

    /// Downwind and crosswind distance of a point from the source, m.
    pub fn along_across(&self, p: [f64; 2]) -> (f64, f64) {
        let (dx, dy) = (p[0] - self.source_xy_m[0], p[1] - self.source_xy_m[1]);
        (
            dx * self.dir[0] + dy * self.dir[1],
            -dx * self.dir[1] + dy * self.dir[0],
        )
    }

    /// σy and σz at `x_m` downwind, with buoyancy-induced and initial spread, m.
    pub fn sigmas_at(&self, x_m: f64) -> (f64, f64) {
        let (sy, sz) = self.curves.sigmas(self.weather.stability, x_m);
        let b = self.rise.rise_at(x_m) / 3.5;
        (
            (sy * sy + b * b + self.initial_sigma_m[0].powi(2)).sqrt(),
            (sz * sz + b * b + self.initial_sigma_m[1].powi(2)).sqrt(),
        )
    }

    /// Concentration at a point `z_m` above ground, kg/m³ (0 upwind, and within
    /// [`MIN_DOWNWIND_M`] of the source).
    pub fn concentration(&self, p: [f64; 2], z_m: f64) -> f64 {
        let (x, y) = self.along_across(p);
        if x < MIN_DOWNWIND_M {
            return 0.0;
        }
        let (sy, sz) = self.sigmas_at(x);
        let h = self.rise.height_at(x);
        self.rate_kg_s / (2.0 * std::f64::consts::PI * self.rise.wind_mps * sy)
            * (-0.5 * y * y / (sy * sy)).exp()
            * vertical_term(z_m, h, sz, self.weather.mixing_height_m)
    }
}

/// The textbook formula with given σ's (no rise, no lid), kg/m³ — for checking against worked
/// examples that read σ off the curves.
pub fn gaussian_plume(
    rate_kg_s: f64,
    wind_mps: f64,
    sigma_y_m: f64,
    sigma_z_m: f64,
    y_m: f64,
    z_m: f64,
    h_m: f64,
) -> f64 {
    rate_kg_s / (2.0 * std::f64::consts::PI * wind_mps * sigma_y_m * sigma_z_m)
        * (-0.5 * (y_m / sigma_y_m).powi(2)).exp()
        * ((-0.5 * ((z_m - h_m) / sigma_z_m).powi(2)).exp()
            + (-0.5 * ((z_m + h_m) / sigma_z_m).powi(2)).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weather(s: Stability, u: f64) -> Weather {
        Weather {
            wind_speed_mps: u,
            wind_from_deg: 270.0,
            stability: s,
            mixing_height_m: 1000.0,
            air_temperature_k: 293.15,
        }
    }

    #[test]
    fn briggs_rise_regimes() {
        let exit = StackExit {
            diameter_m: 1.8,
            velocity_mps: 12.0,
            temperature_k: 420.0,
        };
        // F = g v d² ΔT / (4 Ts) = 9.80665·12·3.24·126.85/1680 = 28.8 m⁴/s³ (< 55).
        let r = PlumeRise::briggs(45.0, exit, &weather(Stability::D, 4.0), Terrain::Rural);
        assert!(
            (r.buoyancy_flux - 28.79).abs() < 0.05,
            "{}",
            r.buoyancy_flux
        );
        let u = 4.0 * (45.0f64 / 10.0).powf(0.15);
        assert!((r.final_rise_m - 21.425 * r.buoyancy_flux.powf(0.75) / u).abs() < 1e-9);
        assert!((r.distance_to_final_m - 49.0 * r.buoyancy_flux.powf(0.625)).abs() < 1e-9);
        // Gradual rise reaches the final rise continuously enough and never exceeds it.
        assert!(r.rise_at(10.0) < r.rise_at(100.0));
        assert_eq!(r.rise_at(1e5), r.final_rise_m);
        // Stable air holds the plume lower.
        let s = PlumeRise::briggs(45.0, exit, &weather(Stability::F, 4.0), Terrain::Rural);
        assert!(s.final_rise_m < r.final_rise_m);
    }

    #[test]
    fn plume_is_symmetric_about_its_centreline() {
        let w = Weather {
            wind_from_deg: 33.0,
            ..weather(Stability::C, 3.0)
        };
        let p = Plume::new(
            [10.0, -5.0],
            20.0,
            StackExit::default(),
            1.0,
            w,
            Terrain::Urban,
            Curves::BriggsUrban,
        );
        let d = w.downwind();
        let n = [-d[1], d[0]];
        for (x, y) in [(100.0, 20.0), (400.0, 75.0), (1500.0, 300.0)] {
            let at = |s: f64| {
                [
                    10.0 + d[0] * x + n[0] * y * s,
                    -5.0 + d[1] * x + n[1] * y * s,
                ]
            };
            let (a, b) = (
                p.concentration(at(1.0), 1.5),
                p.concentration(at(-1.0), 1.5),
            );
            assert!(a > 0.0 && ((a - b) / a).abs() < 1e-12, "{a} vs {b}");
            assert!(p.concentration(at(0.0), 1.5) > a);
        }
        // Upwind there is nothing.
        assert_eq!(
            p.concentration([10.0 - d[0] * 50.0, -5.0 - d[1] * 50.0], 1.5),
            0.0
        );
    }

    #[test]
    fn reflections_keep_all_the_mass_in_the_layer() {
        // ∫₀ᴸ V(z) dz = √(2π) for any depth of plume: nothing leaks through the ground or the lid,
        // so the flux through a cross-section, u·∫∫C dy dz, is the emission rate.
        let l = 300.0;
        for (h, sz) in [
            (10.0, 5.0),
            (10.0, 60.0),
            (150.0, 200.0),
            (50.0, 420.0),
            (10.0, 600.0),
        ] {
            let n = 30_000;
            let dz = l / n as f64;
            let integral: f64 = (0..n)
                .map(|i| vertical_term((i as f64 + 0.5) * dz, h, sz, l) * dz)
                .sum();
            let want = (2.0 * std::f64::consts::PI).sqrt();
            assert!(
                (integral - want).abs() / want < 2e-3,
                "H {h} σz {sz}: {integral}"
            );
        }
        assert_eq!(vertical_term(1.5, 350.0, 50.0, l), 0.0);
    }
}
