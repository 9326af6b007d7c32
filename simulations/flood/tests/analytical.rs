//! The surface scheme against analytical solutions: a lake at rest on uneven ground, Stoker's
//! dam break on a wet bed, rain on a tilted plane (the kinematic-wave steady state), and
//! steady uniform flow (Manning's equation).

use citytwin_flood::{Edge, GreenAmpt, Surface, SurfaceInfiltration};

/// Stoker's (1957) depth at `x` (0 = the dam) after `t` s, for depths `hl` | `hr` at rest.
fn stoker(hl: f64, hr: f64, x: f64, t: f64) -> f64 {
    let g = 9.80665f64;
    let cl = (g * hl).sqrt();
    // The middle depth: rarefaction (u = 2(cl − cm)) meets the shock (u = S(1 − hr/hm)).
    let f = |hm: f64| {
        let s = (g * hm * (hm + hr) / (2.0 * hr)).sqrt();
        2.0 * (cl - (g * hm).sqrt()) - s * (1.0 - hr / hm)
    };
    let (mut a, mut b) = (hr, hl);
    for _ in 0..200 {
        let m = 0.5 * (a + b);
        if f(m) > 0.0 {
            a = m;
        } else {
            b = m;
        }
    }
    let hm = 0.5 * (a + b);
    let cm = (g * hm).sqrt();
    let um = 2.0 * (cl - cm);
    let s = (g * hm * (hm + hr) / (2.0 * hr)).sqrt();
    let xi = x / t;
    if xi <= -cl {
        hl
    } else if xi <= um - cm {
        (2.0 * cl - xi).powi(2) / (9.0 * g)
    } else if xi <= s {
        hm
    } else {
        hr
    }
}

#[test]
fn a_lake_at_rest_stays_at_rest_on_uneven_ground() {
    let (nx, ny) = (60, 40);
    let mut z = Vec::new();
    for j in 0..ny {
        for i in 0..nx {
            let (x, y) = (i as f32, j as f32);
            // Bumps, some rising out of the water (dry islands).
            z.push(1.0 + 0.8 * (x * 0.3).sin() * (y * 0.2).cos() + 0.3 * ((x + y) * 0.7).sin());
        }
    }
    let mut s = Surface::new(nx, ny, 5.0, z.clone(), 0.03);
    let level = 1.6f32;
    s.set_depths(z.iter().map(|&z| (level - z).max(0.0)).collect());
    let v0 = s.volume_m3();
    assert!(s.h_m.contains(&0.0), "some islands");
    s.advance(3600.0, 0.0);
    let qmax =
        s.qx.iter()
            .chain(&s.qy)
            .fold(0.0f32, |a, &q| a.max(q.abs()));
    let eta_err = s
        .h_m
        .iter()
        .zip(&z)
        .filter(|(h, _)| **h > 0.0)
        .fold(0.0f32, |a, (h, z)| a.max((h + z - level).abs()));
    eprintln!("lake at rest after 1 h: max |q| {qmax:.2e} m²/s, max surface error {eta_err:.2e} m");
    // f32 depths on a bed at ~1.6 m: what remains is rounding, 0.1 mm/s and 0.01 mm at most.
    assert!(qmax < 1e-4, "{qmax}");
    assert!(eta_err < 1e-4, "{eta_err}");
    assert!((s.volume_m3() - v0).abs() / v0 < 1e-6);
}

#[test]
fn dam_break_on_a_wet_bed_follows_stoker() {
    // 1 m against 0.5 m at rest, frictionless: the middle state is subcritical (Fr ≈ 0.35), where
    // the local-inertial scheme (no advection term) is meant to hold (de Almeida & Bates 2013).
    let (nx, dx) = (2000usize, 0.5f32);
    let (hl, hr) = (1.0, 0.5);
    let mut s = Surface::new(nx, 1, dx, vec![0.0; nx], 0.0);
    s.set_depths(
        (0..nx)
            .map(|i| {
                if (i as f32 + 0.5) * dx < 500.0 {
                    hl as f32
                } else {
                    hr as f32
                }
            })
            .collect(),
    );
    let t = 40.0;
    s.advance(t, 0.0);
    let (mut sq, mut n) = (0.0, 0.0);
    let mut worst = 0.0f64;
    for i in 0..nx {
        let x = (i as f64 + 0.5) * dx as f64 - 500.0;
        let want = stoker(hl, hr, x, t);
        let e = s.h_m[i] as f64 - want;
        sq += e * e;
        n += 1.0;
        worst = worst.max(e.abs());
    }
    let rms = (sq / n).sqrt();
    // Where is the front? The first cell (from the right) 1 cm above the right depth.
    let front = (0..nx)
        .rev()
        .find(|&i| s.h_m[i] as f64 > hr + 0.01)
        .map(|i| (i as f64 + 0.5) * dx as f64 - 500.0)
        .unwrap();
    let g = 9.80665f64;
    let hm = stoker(hl, hr, 1.0, t); // just right of the dam: the middle state
    let shock = t * (g * hm * (hm + hr) / (2.0 * hr)).sqrt();
    eprintln!(
        "Stoker at {t} s: RMS depth error {rms:.4} m ({:.2} % of hl), worst {worst:.3} m; front at {front:.1} m, shock {shock:.1} m; middle depth {hm:.4} m",
        rms / hl * 100.0
    );
    // Without the advection term the local-inertial bore runs slower than Stoker's shock and
    // the rarefaction is smoother; the depths stay within a few per cent overall.
    assert!(rms < 0.05 * hl, "RMS {rms}");
    assert!(
        (front - shock).abs() < 0.15 * shock,
        "front {front} vs {shock}"
    );
    let vol = s.volume_m3();
    let v0 = (500.0 * hl + 500.0 * hr) * dx as f64;
    assert!(
        (vol - v0).abs() / v0 < 1e-6,
        "closed channel keeps its water"
    );
}

#[test]
fn rain_on_a_tilted_plane_reaches_the_kinematic_steady_state() {
    // A 1D plane 200 m long falling 0.2 % to a free outfall, n = 0.03, 50 mm/h of rain: the
    // sheet flow stays subcritical (Froude ≈ 0.3 at the outfall), where the local-inertial
    // scheme applies (on steeper planes, Froude > 0.5, it oscillates; de Almeida & Bates 2013).
    let (nx, dx, slope, n) = (100usize, 2.0f32, 0.002f32, 0.03f32);
    let z: Vec<f32> = (0..nx)
        .map(|i| 10.0 - slope * dx * (i as f32 + 0.5))
        .collect();
    let mut s = Surface::new(nx, 1, dx, z, n);
    s.edges.east = Edge::FreeOutflow(Some(slope));
    let rain = 0.05 / 3600.0;
    s.advance(7200.0, rain);
    let before = s.balance.outflow_m3;
    s.advance(600.0, rain);
    let q_out = (s.balance.outflow_m3 - before) / 600.0 / dx as f64; // per metre width
    let q_want = rain as f64 * (nx as f64 * dx as f64);
    // Kinematic wave: h(x) = (i·x·n/√S)^{3/5}.
    let mut worst = 0.0f64;
    for i in [25usize, 50, 75, 99] {
        let x = (i as f64 + 1.0) * dx as f64;
        let want = (rain as f64 * x * n as f64 / (slope as f64).sqrt()).powf(0.6);
        worst = worst.max((s.h_m[i] as f64 - want).abs() / want);
    }
    eprintln!(
        "tilted plane: outflow {q_out:.6e} m²/s for i·L {q_want:.6e} ({:+.3} %); depths within {:.2} % of the kinematic wave; balance error {:.2e} m³",
        (q_out - q_want) / q_want * 100.0,
        worst * 100.0,
        s.balance_error_m3()
    );
    assert!((q_out - q_want).abs() / q_want < 0.01);
    assert!(worst < 0.05, "{worst}");
    assert!(s.balance_error_m3().abs() < 1e-4 * s.balance.rain_m3);
}

#[test]
fn steady_uniform_flow_has_mannings_normal_depth() {
    // A 1D channel 600 m long at slope 0.002, n = 0.025, 0.5 m²/s let in at the top.
    let (nx, dx, slope, n) = (300usize, 2.0f32, 0.002f32, 0.025f32);
    let z: Vec<f32> = (0..nx)
        .map(|i| 5.0 - slope * dx * (i as f32 + 0.5))
        .collect();
    let mut s = Surface::new(nx, 1, dx, z, n);
    s.edges.east = Edge::FreeOutflow(Some(slope));
    let q = 0.5f64;
    s.inflows.push((0, q * dx as f64));
    s.advance(4.0 * 3600.0, 0.0);
    let normal = (q * n as f64 / (slope as f64).sqrt()).powf(0.6);
    let mid = s.h_m[nx / 2] as f64;
    let out_before = s.balance.outflow_m3;
    s.advance(600.0, 0.0);
    let q_out = (s.balance.outflow_m3 - out_before) / 600.0 / dx as f64;
    eprintln!(
        "uniform flow: depth {mid:.4} m for Manning's {normal:.4} m ({:+.2} %); outflow {q_out:.4} m²/s for {q}",
        (mid - normal) / normal * 100.0
    );
    assert!((mid - normal).abs() / normal < 0.02);
    assert!((q_out - q).abs() / q < 0.01);
}

#[test]
fn green_ampt_under_ponding_follows_the_analytical_infiltration() {
    // Water standing 0.5 m deep on a flat closed box over a loam (ψ = 110 mm, K = 3.4 mm/h,
    // Δθ = 0.3): the depth taken in F(t) solves F − ψΔθ·ln(1 + F/(ψΔθ)) = K·t.
    let (nx, ny, dx) = (12, 8, 5.0f32);
    let mut s = Surface::new(nx, ny, dx, vec![3.0; nx * ny], 0.03);
    s.set_depths(vec![0.5; nx * ny]);
    let ga = GreenAmpt {
        suction_m: 0.11,
        ksat_mps: 3.4e-3 / 3600.0,
        deficit: 0.3,
    };
    s.infiltration = Some(SurfaceInfiltration::GreenAmpt(ga));
    let (c, k) = (0.11f64 * 0.3, 3.4e-3 / 3600.0);
    let area = (nx * ny) as f64 * (dx as f64).powi(2);
    let mut done_s = 0.0;
    for hours in [0.25, 1.0, 4.0] {
        s.advance(hours * 3600.0 - done_s, 0.0);
        done_s = hours * 3600.0;
        let f = s.balance.infiltration_m3 / area;
        // Bisection on the analytical equation.
        let t = hours * 3600.0;
        let (mut lo, mut hi) = (0.0f64, 1.0f64);
        for _ in 0..200 {
            let m = 0.5 * (lo + hi);
            if m - c * (1.0 + m / c).ln() < k * t {
                lo = m
            } else {
                hi = m
            }
        }
        let exact = 0.5 * (lo + hi);
        assert!(
            (f - exact).abs() < 1e-3 * exact,
            "after {hours} h: {f} m vs {exact} m"
        );
        // The early rate is far above K (the dry soil pulls), the late one close to it.
        println!(
            "after {hours} h: infiltrated {:.2} mm (analytical {:.2} mm)",
            1000.0 * f,
            1000.0 * exact
        );
    }
    assert!(
        s.balance_error_m3().abs() < 1e-6 * area,
        "balance {}",
        s.balance_error_m3()
    );
}
