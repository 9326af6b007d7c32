//! What the CLI prints: summaries as aligned plain-text tables.

use anyhow::Result;
use citytwin::fmt_value;
use citytwin_engine::model::EntityKind;
use citytwin_engine::runner::RunOutcome;
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::Sim;
use citytwin_engine::store::{RunStore, RunSummary};

/// Print rows as a table with a header, columns padded to their widest cell.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < w.len() {
                w[i] = w[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w.get(i).copied().unwrap_or(0)))
            .collect();
        println!("  {}", s.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    line(w.iter().map(|n| "-".repeat(*n)).collect());
    for r in rows {
        line(r.clone());
    }
}

pub fn print_run(scene: &Scene, o: &RunOutcome) {
    println!(
        "run {} of '{}': {}",
        o.run_id,
        scene.meta.name,
        o.status.as_str()
    );
    if let Some(e) = &o.error {
        println!("  error: {e}");
    }
    let speedup = if o.wall_s > 0.0 {
        o.sim_time_s / o.wall_s
    } else {
        f64::INFINITY
    };
    table(
        &["item", "value"],
        &[
            vec!["ticks".into(), o.ticks.to_string()],
            vec!["simulated".into(), format!("{:.0} s", o.sim_time_s)],
            vec![
                "wall time".into(),
                format!("{:.2} s ({speedup:.0}× real time)", o.wall_s),
            ],
            vec!["rows recorded".into(), o.rows.to_string()],
            vec![
                "state hash".into(),
                o.state_hash.clone().unwrap_or_else(|| "-".into()),
            ],
            vec!["store".into(), o.store_path.display().to_string()],
        ],
    );
    for l in &o.feed_links {
        let outages = match (l.outages, &l.last_error) {
            (0, _) => String::new(),
            (n, Some(e)) => format!(", {n} outage(s), last: {e}"),
            (n, None) => format!(", {n} outage(s)"),
        };
        println!(
            "feed[{}] {}: {} message(s){outages}",
            l.feed, l.url, l.received
        );
    }
    if !o.final_kpis.is_empty() {
        print_kpis(
            "KPIs at the end:",
            o.final_kpis
                .iter()
                .map(|(n, s, v, u)| (n.as_str(), s.as_str(), *v, u.as_str())),
            o.run_id,
        );
    }
    println!(
        "see it again with: citytwin runs --store {} show {}",
        o.store_path.display(),
        o.run_id
    );
}

pub fn print_check(scene: &Scene, sim: &Sim) {
    let origin = scene.meta.origin.get_ref();
    println!(
        "scene '{}' ({}) is valid",
        scene.meta.name,
        scene.path.display()
    );
    println!(
        "  origin {:.6}° E, {:.6}° N; start {}; step {} s; duration {} s; seed {}",
        origin.lon,
        origin.lat,
        scene.start,
        scene.clock.step_s.get_ref(),
        scene.clock.duration_s.get_ref(),
        scene.meta.seed
    );
    println!(
        "  frame: transverse Mercator on WGS84 about the origin, metres; H3 resolution {}",
        scene.index.h3_resolution.get_ref()
    );
    let rows: Vec<Vec<String>> = sim
        .import
        .layers
        .iter()
        .map(|l| {
            let ext = l
                .extent_m
                .map(|e| format!("x {:.0}..{:.0}, y {:.0}..{:.0}", e[0], e[2], e[1], e[3]))
                .unwrap_or_else(|| "-".into());
            vec![
                l.name.clone(),
                l.kind.as_str().into(),
                l.features.to_string(),
                l.entities.to_string(),
                l.crs.clone(),
                ext,
            ]
        })
        .collect();
    table(
        &[
            "layer",
            "kind",
            "features",
            "entities",
            "source CRS",
            "extent in scene frame (m)",
        ],
        &rows,
    );
    for l in &sim.import.layers {
        for w in &l.warnings {
            println!("  note ({}): {w}", l.name);
        }
    }
    if let Some(d) = &sim.import.dem {
        let range = d
            .range_m
            .map(|(a, b)| format!("{a:.2}..{b:.2} m"))
            .unwrap_or_else(|| "no data".into());
        println!(
            "  DEM: {} × {} cells of {:.2} m, elevation {range}, source {}",
            d.size.0, d.size.1, d.cell_m, d.source_crs
        );
    }
    let mut counts = std::collections::BTreeMap::new();
    let world = sim.world();
    // No query state exists when nothing with a Kind was ever spawned (a scene with no layers).
    if let Some(mut q) = world.try_query::<&citytwin_engine::model::Kind>() {
        for k in q.iter(world) {
            *counts.entry(k.0).or_insert(0usize) += 1;
        }
    }
    let rows: Vec<Vec<String>> = EntityKind::ALL
        .iter()
        .map(|k| {
            vec![
                k.as_str().into(),
                counts.get(k).copied().unwrap_or(0).to_string(),
            ]
        })
        .collect();
    table(&["entity kind", "count"], &rows);
    let sims: Vec<&str> = scene.simulations.keys().map(String::as_str).collect();
    let plugins: Vec<&str> = scene
        .scenarios
        .iter()
        .map(|s| s.plugin.get_ref().as_str())
        .collect();
    println!(
        "  simulations: {}",
        if sims.is_empty() {
            "none".into()
        } else {
            sims.join(", ")
        }
    );
    println!(
        "  scenario plugins: {}",
        if plugins.is_empty() {
            "none".into()
        } else {
            plugins.join(", ")
        }
    );
    println!("  store: {}", scene.store_path().display());
}

pub fn print_runs(runs: &[RunSummary]) {
    if runs.is_empty() {
        println!("no runs yet");
        return;
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.scene_name.clone(),
                r.seed.to_string(),
                r.status.clone(),
                format!("{:.0} s", r.sim_time_s),
                r.started_at.clone(),
                r.state_hash
                    .as_deref()
                    .map(|h| h[..12.min(h.len())].to_string())
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(
        &[
            "id",
            "scene",
            "seed",
            "status",
            "simulated",
            "started (UTC)",
            "state hash",
        ],
        &rows,
    );
}

pub fn print_run_detail(store: &RunStore, id: i64) -> Result<()> {
    let r = store.run(id)?;
    println!("run {} of '{}'", r.id, r.scene_name);
    table(
        &["item", "value"],
        &[
            vec!["status".into(), r.status.clone()],
            vec!["seed".into(), r.seed.to_string()],
            vec!["ticks".into(), r.ticks.to_string()],
            vec!["simulated".into(), format!("{:.0} s", r.sim_time_s)],
            vec!["started (UTC)".into(), r.started_at.clone()],
            vec![
                "ended (UTC)".into(),
                r.ended_at.clone().unwrap_or_else(|| "-".into()),
            ],
            vec![
                "state hash".into(),
                r.state_hash.clone().unwrap_or_else(|| "-".into()),
            ],
            vec![
                "error".into(),
                r.error.clone().unwrap_or_else(|| "-".into()),
            ],
            vec![
                "forked from".into(),
                match store.parent(id)? {
                    Some((p, t)) => format!("run {p} at tick {t}"),
                    None => "-".into(),
                },
            ],
            vec!["checkpoints".into(), {
                let c = store.checkpoints(id)?;
                match (c.first(), c.last()) {
                    (Some(a), Some(b)) => format!(
                        "{} ({:.0} s to {:.0} s; citytwin replay {id} --verify)",
                        c.len(),
                        a.sim_time_s,
                        b.sim_time_s
                    ),
                    _ => "none".into(),
                }
            }],
        ],
    );
    let counts: Vec<Vec<String>> = store
        .row_counts(id)?
        .iter()
        .map(|(t, n)| vec![t.clone(), n.to_string()])
        .collect();
    table(&["table", "rows"], &counts);
    let kpis = store.kpis(id)?;
    if let Some(last_tick) = kpis.last().map(|k| k.tick) {
        print_kpis(
            &format!("KPIs at tick {last_tick}:"),
            kpis.iter()
                .filter(|k| k.tick == last_tick)
                .map(|k| (k.name.as_str(), k.scope.as_str(), k.value, k.unit.as_str())),
            id,
        );
    }
    let events = store.event_counts(id)?;
    if !events.is_empty() {
        let rows: Vec<Vec<String>> = events
            .iter()
            .map(|(k, n)| vec![k.clone(), n.to_string()])
            .collect();
        table(&["event", "count"], &rows);
    }
    Ok(())
}

/// The city-wide KPIs as a table; per-feature values (one per road, cell, …) are only counted,
/// since a city has thousands of them: they are in the store and in `citytwin export`.
pub(crate) fn print_kpis<'a>(
    title: &str,
    kpis: impl Iterator<Item = (&'a str, &'a str, f64, &'a str)>,
    run_id: i64,
) {
    let mut per_feature = 0usize;
    let mut rows = Vec::new();
    for (n, s, v, u) in kpis {
        if s == "city" {
            rows.push(vec![n.to_string(), fmt_value(v), u.to_string()]);
        } else {
            per_feature += 1;
        }
    }
    println!("{title}");
    table(&["kpi", "value", "unit"], &rows);
    if per_feature > 0 {
        println!(
            "  and {per_feature} per-feature values (roads, cells, …): citytwin export {run_id}"
        );
    }
}
