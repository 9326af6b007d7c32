//! Run a SWMM 5 `.inp` model with citytwin's drainage solver and print SWMM's summaries:
//!
//!     cargo run --release --example swmm_model -- ../shared/flood/swmm/example1.inp [repeat]
//!
//! With a repeat count the model is run that many times and the mean wall time printed (for
//! profiling; the benchmark against EPA SWMM is `cargo bench --workspace --bench drainage`).

use std::time::Instant;

use citytwin_flood::drainage::Drainage;
use citytwin_flood::drainage::inp::read_inp;
use citytwin_flood::drainage::report::summary;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: swmm_model MODEL.inp [repeat]");
        std::process::exit(2);
    };
    let repeat: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let model = match read_inp(std::path::Path::new(&path)) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let t = Instant::now();
    let mut last = None;
    for _ in 0..repeat {
        let mut d = Drainage::new(&model.spec).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        });
        d.run();
        last = Some(d);
    }
    let per_run = t.elapsed().as_secs_f64() / repeat as f64;
    let d = last.expect("at least one run");
    print!("{}", summary(&model, &d));
    println!("\n{repeat} run(s), {per_run:.5} s each");
}
