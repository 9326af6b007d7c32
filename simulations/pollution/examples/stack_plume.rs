//! Ground-level concentrations downwind of a stack, for a quick screening by hand:
//!
//! ```sh
//! cargo run --release --example stack_plume -- --height 45 --diameter 1.8 --velocity 12 \
//!     --temperature 420 --rate-g-s 2.5 --wind 3 --stability D --terrain urban
//! ```
//!
//! Prints the plume rise, then the centreline concentration at distances from 100 m to 10 km
//! and where the maximum is.

use std::fmt::Write as _;
use std::io::Write as _;

use citytwin_pollution::plume::{Plume, StackExit};
use citytwin_pollution::sigma::Curves;
use citytwin_pollution::weather::{Stability, Terrain, Weather};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (mut h, mut d, mut v, mut ts, mut q, mut u) = (45.0, 1.8, 12.0, 420.0, 2.5, 3.0);
    let (mut stab, mut terrain, mut mix) = (Stability::D, Terrain::Urban, 800.0);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        let num = |s: String| s.parse::<f64>().map_err(|e| format!("{a}: '{s}': {e}"));
        match a.as_str() {
            "--height" => h = num(val()?)?,
            "--diameter" => d = num(val()?)?,
            "--velocity" => v = num(val()?)?,
            "--temperature" => ts = num(val()?)?,
            "--rate-g-s" => q = num(val()?)?,
            "--wind" => u = num(val()?)?,
            "--mixing" => mix = num(val()?)?,
            "--stability" => {
                let s = val()?;
                stab = Stability::parse(&s).ok_or(format!("--stability: '{s}' is not A–F"))?
            }
            "--terrain" => {
                terrain = match val()?.as_str() {
                    "urban" => Terrain::Urban,
                    "rural" => Terrain::Rural,
                    t => return Err(format!("--terrain: '{t}' is not urban or rural")),
                }
            }
            _ => {
                return Err(format!(
                    "unknown option {a} (see the example's doc comment)"
                ));
            }
        }
    }
    let w = Weather {
        wind_speed_mps: u,
        wind_from_deg: 270.0,
        stability: stab,
        mixing_height_m: mix,
        air_temperature_k: 293.15,
    };
    w.validate()?;
    let exit = StackExit {
        diameter_m: d,
        velocity_mps: v,
        temperature_k: ts,
    };
    let p = Plume::new(
        [0.0, 0.0],
        h,
        exit,
        q / 1000.0,
        w,
        terrain,
        Curves::briggs(terrain),
    );
    let mut text = String::new();
    let _ = writeln!(
        text,
        "stack {h} m, buoyancy flux {:.1} m⁴/s³, wind at the top {:.2} m/s, final rise {:.1} m at {:.0} m, effective height {:.1} m",
        p.rise.buoyancy_flux,
        p.rise.wind_mps,
        p.rise.final_rise_m,
        p.rise.distance_to_final_m,
        p.rise.height_at(f64::INFINITY)
    );
    let _ = writeln!(text, "{:>10}  {:>14}", "x (m)", "C (µg/m³)");
    let mut best = (0.0, 0.0);
    let mut x = 100.0;
    while x <= 10_000.0 {
        let c = p.concentration([x, 0.0], 1.5) * 1e9;
        let _ = writeln!(text, "{x:>10.0}  {c:>14.3}");
        x *= 1.25;
    }
    for k in 1..=2000 {
        let x = k as f64 * 5.0;
        let c = p.concentration([x, 0.0], 1.5) * 1e9;
        if c > best.1 {
            best = (x, c);
        }
    }
    let _ = writeln!(
        text,
        "maximum {:.3} µg/m³ at {:.0} m downwind",
        best.1, best.0
    );
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(())
}
