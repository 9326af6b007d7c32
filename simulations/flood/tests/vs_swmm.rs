//! citytwin's drainage solver against EPA SWMM 5.2 on the same `.inp` files: peak link flows
//! and max node depths within 5 %, flooding volumes within 10 %, routing continuity error below
//! 0.1 %. SWMM's own results were produced by `../shared/scripts/swmm_reference.py` (EPA SWMM
//! 5.2.4 through pyswmm); run `cargo test --release --workspace --test vs_swmm -- --nocapture`
//! to see every figure side by side.

mod common;

use std::path::Path;

use common::{compare, data_swmm, shared};

fn check(dir: &Path, name: &str) {
    let inp = dir.join(format!("{name}.inp"));
    let json = dir.join(format!("{name}.swmm_reference.json"));
    let (c, model, d) = compare(&inp, &json);
    println!("{}", c.table(name));
    for w in &model.warnings {
        println!("  warning: {w}");
    }
    println!(
        "  {} routing steps ({:.2}–{:.2} s), {:.2} iterations per step, {} not converged",
        d.steps,
        d.step_range_s.0,
        d.step_range_s.1,
        d.iterations as f64 / d.steps.max(1) as f64,
        d.non_converged
    );
    let (wf, wd, wt) = c.worst();
    let mut bad = Vec::new();
    for r in c.flows.iter().filter(|r| r.rel.abs() > 0.05) {
        bad.push(format!(
            "peak flow of {} off by {:+.1} %",
            r.name,
            100.0 * r.rel
        ));
    }
    for r in c.depths.iter().filter(|r| r.rel.abs() > 0.05) {
        bad.push(format!(
            "max depth of {} off by {:+.1} %",
            r.name,
            100.0 * r.rel
        ));
    }
    for r in c.flooding.iter().filter(|r| r.rel.abs() > 0.10) {
        bad.push(format!(
            "flooding at {} off by {:+.1} %",
            r.name,
            100.0 * r.rel
        ));
    }
    if wt > 0.10 {
        bad.push(format!("total flooding off by {:.1} %", 100.0 * wt));
    }
    if c.continuity_pct.abs() >= 0.1 {
        bad.push(format!("continuity error {:.4} %", c.continuity_pct));
    }
    assert!(
        bad.is_empty(),
        "{name}: {}\n(worst: flows {:.1} %, depths {:.1} %, flooding {:.1} %)\n{}",
        bad.join("; "),
        100.0 * wf,
        100.0 * wd,
        100.0 * wt,
        c.table(name)
    );
}

#[test]
fn example1_matches_swmm() {
    check(&shared().join("flood/swmm"), "example1");
}

#[test]
fn site_drainage_matches_swmm() {
    check(&shared().join("flood/swmm"), "site_drainage");
}

#[test]
fn full_features_matches_swmm() {
    check(&shared().join("flood/swmm"), "full_features");
}

#[test]
fn project_models_match_swmm() {
    // pyswmm's test models (BSD-2-Clause) with SWMM's results, kept in data/swmm/.
    let dir = data_swmm();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let n = p.file_name()?.to_str()?.strip_suffix(".inp")?.to_string();
            dir.join(format!("{n}.swmm_reference.json"))
                .exists()
                .then_some(n)
        })
        .collect();
    names.sort();
    assert!(
        !names.is_empty(),
        "no models with references in {}",
        dir.display()
    );
    for n in names {
        check(&dir, &n);
    }
}
