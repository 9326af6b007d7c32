//! The drainage solver's speed against EPA SWMM's engine on the same `.inp` files, both timed
//! in this run (`cargo bench --workspace --bench drainage`). citytwin's time covers reading the
//! file and the whole run with its statistics; SWMM's is `swmm_run` (read, run, report and
//! binary output), median of repeated runs, from the reference environment that
//! `../shared/scripts/ref_venv.sh` creates (the bench says so and skips SWMM if it is absent).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use citytwin_flood::drainage::Drainage;
use citytwin_flood::drainage::inp::read_inp;

const SWMM_TIMER: &str = r#"
import os, sys, tempfile, time
from swmm.toolkit import solver
inp, n = sys.argv[1], int(sys.argv[2])
ts = []
with tempfile.TemporaryDirectory() as d:
    saved = os.dup(1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    try:
        for _ in range(n):
            t = time.perf_counter()
            solver.swmm_run(inp, os.path.join(d, "r.rpt"), os.path.join(d, "r.out"))
            ts.append(time.perf_counter() - t)
    finally:
        os.dup2(saved, 1)
ts.sort()
print(ts[len(ts) // 2])
"#;

fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("CITYTWIN_REF_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/citytwin-ref/venv"))
        })?;
    let py = venv.join("bin/python");
    let ok = Command::new(&py)
        .args(["-c", "import swmm.toolkit"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok.then_some(py)
}

fn swmm_seconds(py: &Path, inp: &Path, n: usize) -> Option<f64> {
    let out = Command::new(py)
        .args(["-c", SWMM_TIMER, inp.to_str()?, &n.to_string()])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn ours_seconds(inp: &Path, n: usize) -> (f64, u64) {
    let mut ts = Vec::new();
    let mut steps = 0;
    for _ in 0..n {
        let t = Instant::now();
        let model = read_inp(inp).expect("model reads");
        let mut d = Drainage::new(&model.spec).expect("model builds");
        d.run();
        ts.push(t.elapsed().as_secs_f64());
        steps = d.steps;
    }
    ts.sort_by(f64::total_cmp);
    (ts[ts.len() / 2], steps)
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut models: Vec<PathBuf> = ["example1", "site_drainage", "full_features"]
        .iter()
        .map(|m| root.join(format!("../shared/flood/swmm/{m}.inp")))
        .collect();
    if let Ok(rd) = std::fs::read_dir(root.join("data/swmm")) {
        let mut more: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "inp"))
            .collect();
        more.sort();
        models.extend(more);
    }
    let py = venv_python();
    if py.is_none() {
        println!(
            "EPA SWMM not found (run ../shared/scripts/ref_venv.sh once): timing citytwin only"
        );
    }
    println!(
        "{:<22} {:>10} {:>12} {:>12} {:>8}",
        "model", "steps", "citytwin s", "EPA SWMM s", "ratio"
    );
    for inp in models.iter().filter(|p| p.exists()) {
        let name = inp.file_stem().unwrap().to_string_lossy().to_string();
        // Repeat short runs so each measurement is well above timer noise.
        let (probe, _) = ours_seconds(inp, 1);
        let n = ((0.5 / probe.max(1e-4)) as usize).clamp(3, 51) | 1;
        let (ours, steps) = ours_seconds(inp, n);
        let swmm = py.as_ref().and_then(|p| swmm_seconds(p, inp, n));
        match swmm {
            Some(s) => println!(
                "{name:<22} {steps:>10} {ours:>12.5} {s:>12.5} {:>7.1}×",
                s / ours
            ),
            None => println!("{name:<22} {steps:>10} {ours:>12.5} {:>12} {:>8}", "-", "-"),
        }
    }
}
