//! Water is conserved in 2D with every source and sink at once, and buildings stay dry.

use citytwin_flood::{Edge, Edges, Horton, Surface, SurfaceInfiltration};

fn terrain(nx: usize, ny: usize) -> Vec<f32> {
    (0..ny)
        .flat_map(|j| {
            (0..nx).map(move |i| {
                let (x, y) = (i as f32, j as f32);
                // A valley draining east with a bowl in it.
                5.0 - 0.01 * x + 0.002 * (y - ny as f32 / 2.0).powi(2)
                    - 1.5 * (-((x - 40.0).powi(2) + (y - 25.0).powi(2)) / 60.0).exp()
            })
        })
        .collect()
}

#[test]
fn the_balance_closes_with_rain_inflow_infiltration_and_outflow() {
    let (nx, ny) = (120, 50);
    let mut s = Surface::new(nx, ny, 5.0, terrain(nx, ny), 0.04);
    s.edges = Edges {
        west: Edge::Closed,
        east: Edge::FreeOutflow(None),
        south: Edge::Closed,
        north: Edge::FixedLevel(4.6),
    };
    s.infiltration = Some(SurfaceInfiltration::Horton(Horton {
        f0_mps: 75e-3 / 3600.0,
        fc_mps: 5e-3 / 3600.0,
        k_per_s: 4.0 / 3600.0,
    }));
    s.inflows.push((25 * nx + 2, 0.3));
    // An hour: 30 minutes of 60 mm/h, then dry.
    s.advance(1800.0, 0.06 / 3600.0);
    s.advance(1800.0, 0.0);
    let b = s.balance;
    let err = s.balance_error_m3();
    let total_in = b.initial_m3 + b.rain_m3 + b.inflow_m3;
    eprintln!(
        "2D balance: rain {:.1} m³, inflow {:.1}, infiltrated {:.1}, out {:.1}, stored {:.1}; error {:.2e} m³ ({:.2e} of the water in)",
        b.rain_m3,
        b.inflow_m3,
        b.infiltration_m3,
        b.outflow_m3,
        s.volume_m3(),
        err,
        err.abs() / total_in
    );
    assert!(b.infiltration_m3 > 0.0 && b.outflow_m3 > 0.0 && b.inflow_m3 > 0.0);
    assert!(
        err.abs() < 1e-3 * total_in,
        "balance error {err} m³ of {total_in}"
    );
    // The bowl holds water after the storm.
    assert!(
        s.h_m[25 * nx + 40] > 0.2,
        "bowl depth {}",
        s.h_m[25 * nx + 40]
    );
    assert!(s.h_m.iter().all(|h| *h >= 0.0));
}

#[test]
fn buildings_stay_dry_and_water_goes_round_them() {
    let (nx, ny) = (60, 30);
    let mut z = vec![1.0f32; nx * ny];
    // A wall of "buildings" across the channel with one gap.
    for j in 0..ny {
        if j != 15 {
            z[j * nx + 30] = f32::NAN;
        }
    }
    let mut s = Surface::new(nx, ny, 2.0, z, 0.03);
    s.inflows.push((15 * nx, 0.5));
    s.advance(1200.0, 0.0);
    for j in 0..ny {
        if j != 15 {
            assert_eq!(s.h_m[j * nx + 30], 0.0, "building cell ({j}) got wet");
        }
    }
    // Water got past the wall through the gap only.
    let beyond: f32 = (0..ny).map(|j| s.h_m[j * nx + 45]).sum();
    assert!(beyond > 0.0, "nothing passed the gap");
    assert!(s.balance_error_m3().abs() < 1e-4 * s.balance.inflow_m3);
}
