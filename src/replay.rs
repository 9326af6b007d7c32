//! `citytwin replay` and `citytwin fork`: a recorded run made again from its checkpoints, checked
//! against them, or continued from one of its moments with more scenarios.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use citytwin::forecast::{ForecastRequest, forecast as run_forecast};
use citytwin::registry;
use citytwin_engine::geo_frame::LonLat;
use citytwin_engine::recorder::Kpis;
use citytwin_engine::replay::{self, ForkRequest};
use citytwin_engine::store::{RunStatus, RunStore};
use indicatif::{ProgressBar, ProgressStyle};

use crate::report;

fn bar(message: String, quiet: bool) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} ticks, eta {eta}")
            .expect("the progress template is valid")
            .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

fn warn_version(store: &RunStore, run: i64) -> Result<()> {
    let meta = store.run_meta(run)?;
    if meta.version != citytwin_engine::VERSION {
        eprintln!(
            "run {run} was recorded by citytwin {}; this is {}: its models may differ, and so may the state",
            meta.version,
            citytwin_engine::VERSION
        );
    }
    Ok(())
}

/// `citytwin replay RUN --verify`: every checkpoint's hash, made again two ways. Exit 1 when
/// any differs.
pub fn verify(store: &RunStore, run: i64, quiet: bool) -> Result<std::process::ExitCode> {
    warn_version(store, run)?;
    let b = bar(format!("replaying run {run}"), quiet);
    let report = replay::verify(store, &registry(), run, &mut |done, total| {
        b.set_length(total);
        b.set_position(done);
    })?;
    b.finish_and_clear();
    let summary = store.run(run)?;
    println!(
        "run {run} ({}, {} ticks): {} checkpoints",
        summary.status,
        summary.ticks,
        report.checkpoints.len()
    );
    let mut rows = Vec::new();
    for c in &report.checkpoints {
        let mark = |h: &str| {
            if h == c.stored.state_hash {
                "same".to_string()
            } else {
                format!("DIFFERS ({})", &h[..16])
            }
        };
        rows.push(vec![
            c.stored.tick.to_string(),
            format!("{:.0}", c.stored.sim_time_s),
            c.stored.state_hash[..16].to_string(),
            format!("{:.1}", c.stored.bytes as f64 / 1024.0),
            mark(&c.replayed_hash),
            mark(&c.resumed_hash),
        ]);
    }
    report::table(
        &[
            "tick",
            "time s",
            "state hash",
            "image KiB",
            "replayed from start",
            "from previous checkpoint",
        ],
        &rows,
    );
    if let Some((stored, replayed)) = &report.final_hash {
        println!(
            "final state: {}",
            if stored == replayed {
                "same as recorded".to_string()
            } else {
                format!("DIFFERS (recorded {stored}, replayed {replayed})")
            }
        );
    }
    if report.checkpoints.is_empty() && report.final_hash.is_none() {
        println!(
            "nothing to check: the run stored no checkpoint (output.checkpoint_interval_s) and did not complete"
        );
    }
    Ok(if report.ok() {
        println!("replay reproduces the recording");
        std::process::ExitCode::SUCCESS
    } else {
        println!(
            "replay does NOT reproduce the recording (recorded by citytwin {})",
            report.recorded_by
        );
        std::process::ExitCode::from(1)
    })
}

/// `citytwin replay RUN --at T` without a window: the state at that moment, made again from the
/// nearest checkpoint.
pub fn state_at(store: &RunStore, run: i64, at_s: f64, quiet: bool) -> Result<()> {
    warn_version(store, run)?;
    let tick = replay::tick_of(store, run, at_s)?;
    let b = bar(format!("run {run} to {at_s} s"), quiet);
    let started = std::time::Instant::now();
    let mut sim = replay::sim_at(store, &registry(), run, tick, true, &mut |done, total| {
        b.set_length(total);
        b.set_position(done);
    })?;
    b.finish_and_clear();
    println!(
        "run {run} at {} s (tick {}), made again in {:.2} s: state hash {}",
        sim.clock().elapsed_s(),
        sim.clock().tick(),
        started.elapsed().as_secs_f64(),
        sim.state_hash().to_hex()
    );
    let kpis = sim
        .world()
        .get_resource::<Kpis>()
        .map(Kpis::to_rows)
        .unwrap_or_default();
    report::print_kpis(
        "KPIs then:",
        kpis.iter()
            .map(|(n, s, v, u)| (n.as_str(), s.as_str(), *v, u.as_str())),
        run,
    );
    Ok(())
}

/// `citytwin fork RUN --at T --scenario FILE`.
pub fn fork(
    store_path: &Path,
    run: i64,
    at_s: f64,
    scenario: Option<&Path>,
    quiet: bool,
) -> Result<std::process::ExitCode> {
    let add = scenario
        .map(|p| std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display())))
        .transpose()?;
    {
        let st = crate::open_existing(store_path)?;
        warn_version(&st, run)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .context("cannot install the Ctrl-C handler")?;
    }
    let registry = registry();
    let b = bar(format!("fork of run {run} from {at_s} s"), quiet);
    let source = scenario.map_or("no file".to_string(), |p| p.display().to_string());
    let outcome = replay::fork(
        ForkRequest {
            store_path: store_path.to_path_buf(),
            parent: run,
            at_s,
            add_scenarios: add.as_deref(),
            add_source: &source,
            registry: &registry,
            stop,
        },
        &mut |t, end| {
            b.set_length(end);
            b.set_position(t);
        },
    )?;
    b.finish_and_clear();
    println!(
        "run {} forked from run {run} at {at_s} s: {} ({} ticks, {:.1} s of wall time)",
        outcome.run_id,
        outcome.status.as_str(),
        outcome.ticks,
        outcome.wall_s
    );
    if let Some(e) = &outcome.error {
        println!("error: {e}");
    }
    println!(
        "compare them: citytwin plot {} --store {}; citytwin plot {run} --store {}",
        outcome.run_id,
        store_path.display(),
        store_path.display()
    );
    Ok(match outcome.status {
        RunStatus::Completed => std::process::ExitCode::SUCCESS,
        RunStatus::Interrupted => std::process::ExitCode::from(130),
        _ => std::process::ExitCode::from(1),
    })
}

fn lonlat(s: &str, what: &str) -> Result<LonLat> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| anyhow::anyhow!("{what} {s}: give LON,LAT in degrees"))?;
    let p = LonLat::new(
        a.trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{what} {s}: '{a}' is not a longitude"))?,
        b.trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{what} {s}: '{b}' is not a latitude"))?,
    );
    if !p.is_valid() {
        anyhow::bail!("{what} {s}: not a longitude and latitude in degrees");
    }
    Ok(p)
}

/// `citytwin forecast RUN --at T --ahead S [--station NAME=LON,LAT]… [--to LON,LAT]`.
pub fn forecast(
    store: &RunStore,
    run: i64,
    at_s: f64,
    ahead_s: f64,
    stations: &[String],
    to: Option<&str>,
    layer: String,
) -> Result<()> {
    warn_version(store, run)?;
    if !(ahead_s.is_finite() && ahead_s > 0.0) {
        anyhow::bail!("--ahead {ahead_s}: give a positive number of seconds");
    }
    let stations = stations
        .iter()
        .map(|s| {
            let (name, at) = s
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--station {s}: give NAME=LON,LAT"))?;
            Ok((name.trim().to_string(), lonlat(at, "--station")?))
        })
        .collect::<Result<Vec<_>>>()?;
    let to = to.map(|t| lonlat(t, "--to")).transpose()?;
    if !stations.is_empty() && to.is_none() {
        anyhow::bail!("--station needs --to LON,LAT: where the responders go");
    }
    let started = std::time::Instant::now();
    let f = run_forecast(
        store,
        &ForecastRequest {
            run,
            at_s,
            ahead_s,
            stations,
            to,
            layer,
        },
    )?;
    println!(
        "run {run}: forecast from {:.0} s to {:.0} s (made in {:.1} s)",
        f.from_s,
        f.to_s,
        started.elapsed().as_secs_f64()
    );
    let rows: Vec<Vec<String>> = f
        .outlook
        .iter()
        .map(|(n, a, b, u)| {
            vec![
                n.clone(),
                citytwin::fmt_value(*a),
                citytwin::fmt_value(*b),
                u.clone(),
            ]
        })
        .collect();
    report::table(&["kpi", "now", "then", "unit"], &rows);
    let rows: Vec<Vec<String>> = f
        .maps
        .iter()
        .map(|(n, cells, max, u)| {
            vec![
                n.clone(),
                cells.to_string(),
                citytwin::fmt_value(*max),
                u.clone(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        println!("maps at the end (H3 cells with a value):");
        report::table(&["map", "cells", "highest", "unit"], &rows);
    }
    let list = |v: &[(String, Vec<String>)]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter()
                .map(|(r, by)| format!("{r} ({})", by.join(", ")))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    println!("roads closed now: {}", list(&f.closed_at_start));
    println!(
        "roads closing in the window: {}",
        if f.closing.is_empty() {
            "none".to_string()
        } else {
            f.closing.join(", ")
        }
    );
    println!("roads closed at the end: {}", list(&f.closed_at_end));
    println!(
        "{} buildings at risk, {} people:",
        f.buildings.len(),
        f.occupants()
    );
    let rows: Vec<Vec<String>> = f
        .buildings
        .iter()
        .map(|b| {
            vec![
                b.feature.id.clone(),
                b.use_.clone(),
                b.occupants.to_string(),
                format!("{:.0}", b.first_s),
                b.why.iter().cloned().collect::<Vec<_>>().join(", "),
            ]
        })
        .collect();
    report::table(&["building", "use", "people", "from s", "why"], &rows);
    for r in &f.routes {
        if r.roads.is_empty() {
            println!("{}: NO open route", r.station);
        } else {
            println!(
                "{}: {:.0} s, {:.0} m via {}",
                r.station,
                r.time_s,
                r.length_m,
                r.roads.join(" ")
            );
        }
    }
    Ok(())
}

/// `citytwin incident SCENE [--gps F] [--log F] [--readings F]`.
pub fn incident(
    scene_path: &Path,
    gps: Option<std::path::PathBuf>,
    log: Option<std::path::PathBuf>,
    readings: Option<std::path::PathBuf>,
    store: Option<std::path::PathBuf>,
) -> Result<()> {
    use citytwin_engine::incident::mapmatch::MatchParams;
    use citytwin_engine::incident::observed::{IncidentFiles, import_observed};
    let scene = citytwin_engine::scene::Scene::load(scene_path)?;
    let spec = scene.incident.clone();
    let from_scene =
        |f: Option<&toml::Spanned<std::path::PathBuf>>| f.map(|f| scene.resolve(f.get_ref()));
    let gps = gps.or_else(|| from_scene(spec.as_ref().and_then(|s| s.gps.as_ref())));
    let log = log.or_else(|| from_scene(spec.as_ref().and_then(|s| s.log.as_ref())));
    let readings = readings.or_else(|| from_scene(spec.as_ref().and_then(|s| s.readings.as_ref())));
    let layer = spec
        .as_ref()
        .map_or("traffic".to_string(), |s| s.gps_layer.clone());
    let params = MatchParams {
        sigma_m: spec.as_ref().map_or(5.0, |s| s.gps_sigma_m),
        ..MatchParams::default()
    };
    let store_path = store.unwrap_or_else(|| scene.store_path());
    let started = std::time::Instant::now();
    let r = import_observed(
        &scene,
        &registry(),
        &store_path,
        &IncidentFiles {
            gps: gps.as_deref(),
            log: log.as_deref(),
            readings: readings.as_deref(),
            gps_layer: &layer,
            params,
        },
    )?;
    println!(
        "observed run {} of '{}' in {} ({:.1} s):",
        r.run_id,
        scene.meta.name,
        store_path.display(),
        started.elapsed().as_secs_f64()
    );
    if r.tracks > 0 {
        println!(
            "  {} GPS tracks, {} fixes, {} ({:.1} %) matched to roads of '{layer}'",
            r.tracks,
            r.fixes,
            r.matched,
            100.0 * r.matched as f64 / r.fixes.max(1) as f64
        );
    }
    println!(
        "  {} log entries, {} readings; {} rows outside the scene's span left out",
        r.log_entries, r.readings, r.outside
    );
    println!(
        "play them back beside a simulated run: citytwin runs --store {} show {}",
        store_path.display(),
        r.run_id
    );
    Ok(())
}
