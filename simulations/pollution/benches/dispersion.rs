//! Dispersion speed, printed as figures (run: `cargo bench --workspace --bench dispersion`).
//!
//! - **Field**: concentrations at 10⁶ receptors (a 1 000 × 1 000 grid, 10 m apart) from 100
//!   stacks, goal < 1 s on the 2 cores. The tabulated field is checked against the exact
//!   formula on a sample of receptors in the same run.
//! - **Grid solver**: cell-updates per second of the Eulerian grid (2 million cells: 500 × 500
//!   × 8 layers, wind at 45°), goal ≥ 10⁸/s.

use std::time::Instant;

use citytwin_pollution::field::{ReceptorGrid, add_plumes};
use citytwin_pollution::grid::{Boundary, EulerGrid, GridSpec, Transport};
use citytwin_pollution::plume::{Plume, StackExit};
use citytwin_pollution::sigma::Curves;
use citytwin_pollution::weather::{Stability, Terrain, Weather};

fn lcg(state: &mut u64) -> f64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    println!("threads: {}", rayon::current_num_threads());
    let w = Weather {
        wind_speed_mps: 4.0,
        wind_from_deg: 250.0,
        stability: Stability::D,
        mixing_height_m: 800.0,
        air_temperature_k: 293.15,
    };
    let mut seed = 7u64;
    let plumes: Vec<Plume> = (0..100)
        .map(|_| {
            let xy = [lcg(&mut seed) * 10_000.0, lcg(&mut seed) * 10_000.0];
            let exit = StackExit {
                diameter_m: 1.0 + 2.0 * lcg(&mut seed),
                velocity_mps: 5.0 + 15.0 * lcg(&mut seed),
                temperature_k: 330.0 + 150.0 * lcg(&mut seed),
            };
            Plume::new(
                xy,
                10.0 + 90.0 * lcg(&mut seed),
                exit,
                0.1 + lcg(&mut seed),
                w,
                Terrain::Urban,
                Curves::BriggsUrban,
            )
        })
        .collect();
    let grid = ReceptorGrid {
        first_m: [5.0, 5.0],
        step_m: 10.0,
        nx: 1000,
        ny: 1000,
        z_m: 1.5,
    };
    let mut times = Vec::new();
    let mut out = vec![0.0; grid.len()];
    for _ in 0..5 {
        out.iter_mut().for_each(|v| *v = 0.0);
        let t = Instant::now();
        add_plumes(&grid, &plumes, &mut out);
        times.push(t.elapsed().as_secs_f64());
    }
    let med = median(times.clone());
    println!(
        "field: 10^6 receptors x 100 stacks: median {med:.3} s, best {:.3} s (goal < 1 s) -> {:.1} ns per receptor-source pair",
        times.iter().cloned().fold(f64::INFINITY, f64::min),
        med * 1e9 / 1e8
    );
    // Exact formula on every 97th receptor, same run.
    let t = Instant::now();
    let (mut worst, mut peak, mut n) = (0.0f64, 0.0f64, 0usize);
    for k in (0..grid.len()).step_by(97) {
        let p = grid.at(k % grid.nx, k / grid.nx);
        let exact: f64 = plumes.iter().map(|pl| pl.concentration(p, 1.5)).sum();
        worst = worst.max((out[k] - exact).abs());
        peak = peak.max(exact);
        n += 1;
    }
    let exact_s = t.elapsed().as_secs_f64() * grid.len() as f64 / n as f64;
    println!(
        "field: exact formula would take {exact_s:.2} s single-threaded ({:.1}x the tabulated field); worst difference {:.2e} of the peak on {n} receptors",
        exact_s / med,
        worst / peak
    );

    let spec = GridSpec {
        origin_m: [0.0, 0.0],
        nx: 500,
        ny: 500,
        cell_m: 20.0,
        layer_tops_m: GridSpec::stretched_layers(8, 3.0, 800.0),
    };
    let mut g = EulerGrid::new(spec.clone(), 1, Boundary::Open);
    for j in 0..500 {
        for i in 0..500 {
            if (i + j) % 7 == 0 {
                g.add_mass(0, i, j, 0, 0.001);
            }
        }
    }
    let tr = Transport::from_weather(
        &spec,
        &Weather {
            wind_from_deg: 225.0,
            ..w
        },
        Terrain::Urban,
        Curves::BriggsUrban,
    );
    let mut rates = Vec::new();
    let mut subs = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let mut updates = 0u64;
        for _ in 0..4 {
            let st = g.step(1.0, &tr);
            updates += st.cell_updates;
            subs = st.substeps;
        }
        rates.push(updates as f64 / t.elapsed().as_secs_f64());
    }
    println!(
        "grid: 500x500x8 cells, {subs} sub-step(s) per 1 s step: median {:.3e} cell-updates/s, best {:.3e} (goal >= 1e8)",
        median(rates.clone()),
        rates.iter().cloned().fold(0.0, f64::max)
    );
}
