//! `citytwin optimize-signals`: propose signal plans for a scene's traffic.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use citytwin_engine::modules::parse_params;
use citytwin_engine::scene::Scene;
use citytwin_traffic::signal_opt::{Evaluation, OptimiseOptions, optimise, write_plans};
use citytwin_traffic::{Traffic, TrafficConfig, TrafficParams};

use crate::report::table;
use citytwin::fmt_value;

/// Optimise the signals of `scene_path`'s traffic and write the plans.
pub fn optimize_signals(scene_path: &Path, rounds: usize, out: Option<PathBuf>) -> Result<()> {
    let scene = Scene::load(scene_path)?;
    let params = scene.simulations.get("traffic").ok_or_else(|| {
        anyhow!(
            "{}: the scene has no [simulations.traffic] to optimise",
            scene.path.display()
        )
    })?;
    let p: TrafficParams = parse_params(params.get_ref())
        .map_err(|m| scene.error_at(params.span(), "simulations.traffic", &m))?;
    let frame = citytwin_engine::geo_frame::GeoFrame::new(*scene.meta.origin.get_ref());
    let (net, demand) = citytwin_traffic::load(&p, |f| scene.resolve(f), &frame, scene.meta.seed)
        .map_err(|m| scene.error_at(params.span(), "simulations.traffic", &m))?;
    let plans = match &p.signal_plans {
        Some(f) => net.read_signal_plans(&scene.resolve(f))?,
        None => Vec::new(),
    };
    if net.signals.is_empty() {
        println!(
            "{}: the network has no traffic lights; nothing to optimise",
            scene.path.display()
        );
        return Ok(());
    }
    let mut base = Traffic::new(
        Arc::new(net),
        demand,
        TrafficConfig {
            dt_s: *scene.clock.step_s.get_ref(),
            teleport_after_s: p.teleport_after_s,
            seed: scene.meta.seed,
            ..TrafficConfig::default()
        },
    );
    for plan in &plans {
        base.apply_signal_plan(plan);
    }
    let opts = OptimiseOptions {
        horizon_s: *scene.clock.duration_s.get_ref(),
        rounds,
        ..OptimiseOptions::default()
    };
    println!(
        "optimising {} traffic lights over {:.0} s of '{}' on {} threads: Webster's plan, then up to {rounds} search rounds",
        base.net.signals.len(),
        opts.horizon_s,
        scene.meta.name,
        rayon::current_num_threads()
    );
    let started = std::time::Instant::now();
    let result = optimise(&base, &opts, |round, delay| {
        println!("  round {round}: total delay {:.1} veh·h", delay / 3600.0);
    });
    let row = |name: &str, e: &Evaluation| {
        vec![
            name.to_string(),
            fmt_value(e.total_delay_s / 3600.0),
            fmt_value(e.mean_travel_time_s),
            fmt_value(e.travel_time_index),
            e.arrived.to_string(),
        ]
    };
    table(
        &[
            "plans",
            "total delay (veh·h)",
            "mean travel time (s)",
            "TTI",
            "arrived",
        ],
        &[
            row("the network's own", &result.before),
            row("own, fixed time", &result.own_fixed),
            row("Webster", &result.webster),
            row("optimised", &result.after),
        ],
    );
    let out = out.unwrap_or_else(|| {
        let stem = scene
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scene".into());
        citytwin_engine::store::folder_beside(&scene.store_path())
            .join(format!("{stem}.signals.add.xml"))
    });
    write_plans(&out, &base, &result.plans)
        .with_context(|| format!("cannot write {}", out.display()))?;
    let out = out.canonicalize().unwrap_or(out);
    if result.before.total_delay_s < result.after.total_delay_s {
        println!(
            "the network's own control (actuated where it is) beats every fixed-time plan found: keep it where demand varies"
        );
    }
    println!(
        "{} simulations in {:.1} s; plans written to {}\nrun them with `signal_plans = \"{}\"` under [simulations.traffic] (or `sumo -a` it)",
        result.simulations,
        started.elapsed().as_secs_f64(),
        out.display(),
        out.display()
    );
    Ok(())
}
