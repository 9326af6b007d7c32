//! `citytwin plot RUN --kpi NAME…`: charts of a recorded run's KPIs over time, for reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use citytwin::charts::{LineChart, line_chart, line_chart_svg};
use citytwin_engine::store::RunStore;

/// The most lines one chart draws (scopes beyond are named, not drawn).
const MOST_LINES: usize = 8;

/// Image format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PlotFormat {
    /// PNG.
    Png,
    /// SVG.
    Svg,
}

/// Draw one chart per KPI of run `run` into `out`: the `city` line, or the scopes asked for,
/// or (a KPI with no city value) every scope up to [`MOST_LINES`]. Returns the files written.
pub fn plot(
    store: &RunStore,
    run: i64,
    kpis: &[String],
    scopes: &[String],
    out: &Path,
    format: PlotFormat,
) -> Result<Vec<PathBuf>> {
    store
        .run(run)
        .with_context(|| format!("no run {run} in the store"))?;
    let rows = store.kpis(run)?;
    // name -> scope -> (unit, points)
    let mut all: BTreeMap<&str, BTreeMap<&str, Vec<(f64, f64)>>> = BTreeMap::new();
    let mut units: BTreeMap<&str, &str> = BTreeMap::new();
    let mut t_max: f64 = 0.0;
    for r in &rows {
        all.entry(&r.name)
            .or_default()
            .entry(&r.scope)
            .or_default()
            .push((r.sim_time_s, r.value));
        units.insert(&r.name, &r.unit);
        t_max = t_max.max(r.sim_time_s);
    }
    // Minutes read better than seconds over anything longer than ten minutes.
    let (x_desc, x_scale) = if t_max >= 600.0 {
        ("simulated time (min)", 1.0 / 60.0)
    } else {
        ("simulated time (s)", 1.0)
    };
    // Every name and scope is checked before anything is written.
    let mut plans: Vec<(&String, Vec<&str>)> = Vec::new();
    for name in kpis {
        let Some(by_scope) = all.get(name.as_str()) else {
            let near = (name.len() / 5).max(2);
            let like: Vec<&str> = all
                .keys()
                .copied()
                .filter(|k| {
                    k.contains(name.as_str()) || name.contains(*k) || edit_distance(k, name) <= near
                })
                .take(12)
                .collect();
            let hint = if like.is_empty() {
                format!(
                    "it has {} KPIs, e.g. {}",
                    all.len(),
                    all.keys().take(6).copied().collect::<Vec<_>>().join(", ")
                )
            } else {
                format!("did you mean {}?", like.join(", "))
            };
            bail!("run {run} has no KPI '{name}': {hint}");
        };
        let chosen: Vec<&str> = if !scopes.is_empty() {
            let mut v = Vec::new();
            for s in scopes {
                match by_scope.get_key_value(s.as_str()) {
                    Some((k, _)) => v.push(*k),
                    None => bail!(
                        "KPI '{name}' of run {run} has no scope '{s}' (it has {})",
                        by_scope
                            .keys()
                            .take(12)
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            }
            v
        } else if by_scope.contains_key("city") {
            vec!["city"]
        } else {
            by_scope.keys().copied().collect()
        };
        plans.push((name, chosen));
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut written = Vec::new();
    for (name, chosen) in plans {
        let by_scope = &all[name.as_str()];
        if chosen.len() > MOST_LINES {
            eprintln!(
                "{name}: {} scopes; drawing the first {MOST_LINES} (choose others with --scope)",
                chosen.len()
            );
        }
        let series: Vec<(String, Vec<(f64, f64)>)> = chosen
            .iter()
            .take(MOST_LINES)
            .map(|s| {
                let pts = by_scope[s].iter().map(|&(t, v)| (t * x_scale, v)).collect();
                (s.to_string(), pts)
            })
            .collect();
        let lines: Vec<(&str, &[(f64, f64)])> = series
            .iter()
            .map(|(n, p)| (n.as_str(), p.as_slice()))
            .collect();
        let unit = units.get(name.as_str()).copied().unwrap_or("");
        let title = format!("{name} ({unit}), run {run}");
        let chart = LineChart {
            title: &title,
            x_desc,
            y_desc: unit,
            lines: &lines,
        };
        let stem = name.replace(['.', '/'], "_");
        let (file, bytes) = match format {
            PlotFormat::Png => (out.join(format!("{stem}.png")), line_chart(&chart)?),
            PlotFormat::Svg => (
                out.join(format!("{stem}.svg")),
                line_chart_svg(&chart)?.into_bytes(),
            ),
        };
        std::fs::write(&file, bytes).with_context(|| format!("cannot write {}", file.display()))?;
        written.push(file);
    }
    Ok(written)
}

/// Levenshtein distance between two short strings (KPI names), in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(diag + usize::from(ca != cb));
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn edit_distance_counts_edits() {
        use super::edit_distance as d;
        assert_eq!(d("traffic.running", "traffic.runing"), 1);
        assert_eq!(d("kitten", "sitting"), 3);
        assert_eq!(d("", "abc"), 3);
        assert_eq!(d("same", "same"), 0);
    }
}
