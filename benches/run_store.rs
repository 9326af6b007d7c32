//! The run store on its two backends side by side, in one process: DuckDB (a file) and
//! PostgreSQL (a server started here on loopback, as the tests start it). Prints, for each:
//!
//! - recording the sample district's hour (`scenes/sample_district.toml`), as `citytwin run`
//!   does: wall time, and how much the store slows the run;
//! - bulk appends: snapshot and KPI rows per second, in the recorder's batch size;
//! - the reads `citytwin serve` makes: one KPI series, the latest KPIs, features in a box, the
//!   latest snapshot (median and worst of 50);
//! - exporting the recorded run to Parquet.
//!
//! `cargo bench --workspace --bench run_store` (needs PostgreSQL: `bash .ci/run` installs it).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Instant;

use citytwin_engine::store::{ExportFormat, KpiFilter, KpiRow, RunMeta, RunStore, SnapshotRow};

fn meta() -> RunMeta {
    RunMeta {
        scene_name: "bench".into(),
        scene_path: "bench.toml".into(),
        scene_toml: String::new(),
        seed: 1,
        version: "bench".into(),
        sim_start: "2026-12-02T08:00:00+00:00[UTC]".into(),
        step_s: 0.5,
        duration_s: 3600.0,
        frame_proj: String::new(),
    }
}

/// Rows per second appending `n` snapshots and `n` KPI samples in batches of `batch`.
fn appends(st: &RunStore, n: usize, batch: usize) -> (f64, f64) {
    let id = st.begin_run(&meta()).unwrap();
    let t0 = Instant::now();
    for b in 0..n / batch {
        let rows: Vec<SnapshotRow> = (0..batch)
            .map(|i| SnapshotRow {
                tick: b as u64,
                sim_time_s: b as f64,
                entity: i as u64,
                x_m: i as f64,
                y_m: -(i as f64),
                z_m: 0.0,
                speed_mps: Some(10.0),
                h3: Some(0x08c0_8996_0a1b_51ff),
            })
            .collect();
        st.append_snapshots(id, &rows).unwrap();
    }
    let snaps = n as f64 / t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    for b in 0..n / batch {
        let rows: Vec<KpiRow> = (0..batch)
            .map(|i| KpiRow {
                tick: b as u64,
                sim_time_s: b as f64,
                name: "traffic.mean_speed_mps".into(),
                scope: format!("roads/{i}"),
                value: 9.5,
                unit: "m/s".into(),
            })
            .collect();
        st.append_kpis(id, &rows).unwrap();
    }
    let kpis = n as f64 / t0.elapsed().as_secs_f64();
    st.finish_run(
        id,
        citytwin_engine::store::RunStatus::Completed,
        0,
        None,
        None,
    )
    .unwrap();
    (snaps, kpis)
}

/// Median and worst of 50 calls of `f`, ms.
fn latency(mut f: impl FnMut()) -> String {
    let mut v: Vec<f64> = (0..50)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(f64::total_cmp);
    format!("median {:.2} ms, worst {:.2} ms", v[25], v[49])
}

fn report(name: &str, target: &Path, scene: &Path, dir: &Path) {
    let t0 = Instant::now();
    let out = common::record(scene, target);
    let wall = t0.elapsed().as_secs_f64();
    let st = RunStore::open(target).unwrap();
    let [f, k, s, e] = st.row_counts(out.run_id).unwrap().map(|(_, n)| n);
    println!(
        "{name}: recorded the sample hour in {wall:.2} s ({f} features, {k} KPI samples, {s} snapshots, {e} events)"
    );
    let (snaps, kpis) = appends(&st, 200_000, 1_000);
    println!(
        "{name}: appends {:.0} snapshot rows/s, {:.0} KPI rows/s (batches of 1000)",
        snaps, kpis
    );
    let id = out.run_id;
    let series = KpiFilter {
        name: Some("traffic.mean_speed_mps".into()),
        scope: Some("city".into()),
        ..Default::default()
    };
    println!(
        "{name}: one KPI series {}",
        latency(|| assert!(!st.kpis_where(id, &series).unwrap().is_empty()))
    );
    println!(
        "{name}: latest KPIs {}",
        latency(|| assert!(!st.latest_kpis(id).unwrap().is_empty()))
    );
    println!(
        "{name}: features in a 500 m box {}",
        latency(|| {
            st.features_in(id, [-250.0, -250.0, 250.0, 250.0], None, 10_000)
                .unwrap();
        })
    );
    println!(
        "{name}: latest snapshot {}",
        latency(|| {
            st.latest_snapshot(id).unwrap();
        })
    );
    let t0 = Instant::now();
    st.export(
        id,
        &dir.join(format!("export-{name}")),
        ExportFormat::Parquet,
    )
    .unwrap();
    println!(
        "{name}: export to Parquet {:.2} s",
        t0.elapsed().as_secs_f64()
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("run_store: run with `cargo bench --workspace --bench run_store`");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scene = common::scene_copy_of(dir.path(), "sample_district", |t| t);
    let pg = common::postgres::Postgres::start();
    report(
        "duckdb",
        &dir.path().join("runs.duckdb"),
        &scene,
        dir.path(),
    );
    report("postgresql", Path::new(&pg.url()), &scene, dir.path());
}
