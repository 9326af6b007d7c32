//! Surface speed, printed as figures (`cargo bench --workspace --bench surface`): 2D
//! cell-updates per second on a 1 000 × 1 000 grid with rain (goal ≥ 5·10⁸ on the 2 cores).

use std::time::Instant;

use citytwin_flood::{Edge, Surface};

fn main() {
    println!("threads: {}", rayon::current_num_threads());
    let (nx, ny) = (1000usize, 1000usize);
    let z: Vec<f32> = (0..ny)
        .flat_map(|j| {
            (0..nx).map(move |i| {
                let (x, y) = (i as f32, j as f32);
                10.0 - 0.002 * x + 0.5 * (x * 0.05).sin() * (y * 0.04).cos()
            })
        })
        .collect();
    let mut s = Surface::new(nx, ny, 5.0, z, 0.035);
    s.edges.east = Edge::FreeOutflow(None);
    let rain = 0.05 / 3600.0;
    // Wet it first: 10 minutes of rain, so most cells carry water.
    s.advance(600.0, rain * 4.0);
    let mut rates = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let steps = 10;
        for _ in 0..steps {
            let dt = s.stable_dt_s().min(5.0);
            s.step(dt, rain);
        }
        rates.push((steps * nx * ny) as f64 / t.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    let wet = s.h_m.iter().filter(|&&h| h > s.h_min_m).count();
    println!(
        "surface 1000x1000, {:.0} % wet: median {:.3e} cell-updates/s, best {:.3e} (goal >= 5e8); balance error {:.2e} of the rain",
        wet as f64 / (nx * ny) as f64 * 100.0,
        rates[2],
        rates[4],
        s.balance_error_m3() / s.balance.rain_m3
    );
}
