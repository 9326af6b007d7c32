//! The dispersion formulas against published worked examples and tables.
//!
//! - Turner, *Workbook of Atmospheric Dispersion Estimates* (EPA AP-26, 1970), the burning dump:
//!   3 g/s of NOx at ground level, an overcast night (class D), 7 m/s, 3 km downwind: σy ≈ 190 m,
//!   σz ≈ 65 m read off the Pasquill–Gifford curves, χ = 1.1e-5 g/m³.
//! - Turner's chapter in Boubel, Fox, Turner & Stern, *Fundamentals of Air Pollution* (3rd ed.,
//!   pp. 303–305): 0.37 g/s at an effective height of 40 m, 2 m/s, class B: the maximum
//!   ground-level concentration is 1.56e-5 g/m³ at 0.28 km, with σy 49.0 m and σz 28.2 m there
//!   (the book's table also gives 0.26 km: 45.9/26.2 m, 1.53e-5; 0.30 km: 52.2/30.1 m, 1.55e-5).
//! - Briggs plume rise as in ISC3, on sample stacks (final rise and distance to it).

use citytwin_pollution::plume::{Plume, PlumeRise, StackExit, gaussian_plume};
use citytwin_pollution::sigma::Curves;
use citytwin_pollution::weather::{Stability, Terrain, Weather};

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn turner_burning_dump() {
    let (sy, sz) = Curves::PasquillGifford.sigmas(Stability::D, 3000.0);
    assert!(rel(sy, 190.0) < 0.05, "σy {sy}");
    assert!(rel(sz, 65.0) < 0.05, "σz {sz}");
    let chi = gaussian_plume(3e-3, 7.0, sy, sz, 0.0, 0.0, 0.0);
    assert!(rel(chi, 1.1e-8) < 0.05, "χ {chi} kg/m³");
    // The full model (ground-level passive source, the wind given at the source, a deep mixed
    // layer) agrees with the textbook formula.
    let w = Weather {
        wind_speed_mps: 7.0,
        wind_from_deg: 270.0,
        stability: Stability::D,
        mixing_height_m: 2000.0,
        air_temperature_k: 283.0,
    };
    let p = Plume::new(
        [0.0, 0.0],
        10.0, // at 10 m the power law gives the 10 m wind itself
        StackExit::default(),
        3e-3,
        w,
        Terrain::Rural,
        Curves::PasquillGifford,
    );
    let at_ground = gaussian_plume(3e-3, 7.0, sy, sz, 0.0, 0.0, 10.0);
    assert!(rel(p.concentration([3000.0, 0.0], 0.0), at_ground) < 1e-9);
}

#[test]
fn turner_elevated_source_maximum() {
    let q = 0.37e-3;
    let book = [
        (260.0, 45.9, 26.2, 1.53e-8),
        (280.0, 49.0, 28.2, 1.56e-8),
        (300.0, 52.2, 30.1, 1.55e-8),
    ];
    for (x, sy_b, sz_b, chi_b) in book {
        let (sy, sz) = Curves::PasquillGifford.sigmas(Stability::B, x);
        assert!(
            rel(sy, sy_b) < 0.01 && rel(sz, sz_b) < 0.01,
            "x {x}: {sy} {sz}"
        );
        let chi = gaussian_plume(q, 2.0, sy, sz, 0.0, 0.0, 40.0);
        assert!(rel(chi, chi_b) < 0.02, "x {x}: χ {chi}");
    }
    // Where the maximum is: search the centreline.
    let (mut best_x, mut best) = (0.0, 0.0);
    for k in 100..2000 {
        let x = k as f64;
        let (sy, sz) = Curves::PasquillGifford.sigmas(Stability::B, x);
        let chi = gaussian_plume(q, 2.0, sy, sz, 0.0, 0.0, 40.0);
        if chi > best {
            (best_x, best) = (x, chi);
        }
    }
    assert!((best_x - 280.0).abs() <= 20.0, "maximum at {best_x} m");
    assert!(rel(best, 1.56e-8) < 0.05, "maximum {best}");
}

#[test]
fn briggs_rise_on_sample_stacks() {
    // (vs, ds, Ts, Ta, us, class) → (final rise m, distance to final rise m), ISC3's formulas
    // evaluated independently (g = 9.80616 there, 9.80665 here: 2e-5 apart in F).
    let cases = [
        (10.0, 2.0, 400.0, 293.0, 5.0, Stability::D, 49.67, 377.5),
        (20.0, 5.0, 420.0, 288.0, 6.0, Stability::C, 229.67, 1287.8),
        (15.0, 3.0, 450.0, 293.0, 3.0, Stability::E, 100.35, 240.2),
        (15.0, 3.0, 450.0, 293.0, 3.0, Stability::F, 83.28, 181.6),
        (10.0, 1.0, 300.0, 293.0, 5.0, Stability::D, 6.00, 0.0),
    ];
    for (vs, ds, ts, ta, us, cls, rise, xf) in cases {
        // Give the wind at 10 m so the stack top (10 m) sees `us`.
        let w = Weather {
            wind_speed_mps: us,
            wind_from_deg: 0.0,
            stability: cls,
            mixing_height_m: 2000.0,
            air_temperature_k: ta,
        };
        let exit = StackExit {
            diameter_m: ds,
            velocity_mps: vs,
            temperature_k: ts,
        };
        let r = PlumeRise::briggs(10.0, exit, &w, Terrain::Rural);
        assert!(
            rel(r.final_rise_m, rise) < 0.005,
            "{cls:?}: rise {}",
            r.final_rise_m
        );
        assert!(
            (r.distance_to_final_m - xf).abs() <= 0.005 * xf.max(1.0),
            "{cls:?}: x_f {}",
            r.distance_to_final_m
        );
    }
}
