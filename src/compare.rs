//! `citytwin compare BASE VARIANT…`: run a baseline scene and its what-if variants into one
//! store and put their KPIs side by side, on screen and as a Markdown report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use citytwin_engine::runner::{RunRequest, run_scene};
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::SimOptions;
use citytwin_engine::store::{RunStatus, RunStore};
use indicatif::{ProgressBar, ProgressStyle};

use crate::report::{fmt_value, table};

/// One scene's run.
struct Ran {
    name: String,
    file: PathBuf,
    run_id: i64,
    wall_s: f64,
    /// KPI → (value shown, how it is summarised, unit)
    kpis: BTreeMap<String, (f64, &'static str, String)>,
    /// KPI → its samples over time: (simulated s, value)
    series: BTreeMap<String, Vec<(f64, f64)>>,
}

/// How a KPI is summarised over a run: counters and cumulative indices at the end, rates and
/// levels (times, speeds, vehicles running) as their mean over the run.
fn summary_kind(name: &str) -> &'static str {
    let mean = name.ends_with("_s")
        || name.ends_with("_mps")
        || name.contains("running")
        || name.contains("waiting");
    if mean {
        "mean over the run"
    } else {
        "at the end"
    }
}

/// Run `base` and `variants` (same seed unless the scenes differ) and compare them.
pub fn compare(
    base: &Path,
    variants: &[PathBuf],
    seed: Option<u64>,
    store: Option<PathBuf>,
    out: Option<PathBuf>,
    registry: &citytwin_engine::modules::ModuleRegistry,
) -> Result<()> {
    if variants.is_empty() {
        bail!(
            "give at least one variant scene to compare with {}",
            base.display()
        );
    }
    let scenes: Vec<Scene> = std::iter::once(base)
        .chain(variants.iter().map(PathBuf::as_path))
        .map(|p| Scene::load(p).map_err(anyhow::Error::from))
        .collect::<Result<_>>()?;
    let store_path = store.unwrap_or_else(|| scenes[0].store_path());
    let mut ran = Vec::new();
    for scene in &scenes {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} ticks, eta {eta}")
                .expect("the progress template is valid")
                .progress_chars("=> "),
        );
        bar.set_message(format!("running '{}'", scene.meta.name));
        // Runs go one after another: they share the store, which one process writes at a time.
        let outcome = run_scene(
            RunRequest {
                scene,
                registry,
                opts: SimOptions {
                    seed,
                    ..Default::default()
                },
                store_path: store_path.clone(),
                stop: Arc::new(AtomicBool::new(false)),
            },
            &mut |t, end| {
                bar.set_length(end);
                bar.set_position(t);
            },
        )?;
        bar.finish_and_clear();
        if outcome.status != RunStatus::Completed {
            bail!(
                "run {} of '{}' ended {:?}: {}",
                outcome.run_id,
                scene.meta.name,
                outcome.status,
                outcome.error.unwrap_or_default()
            );
        }
        ran.push(Ran {
            name: scene.meta.name.clone(),
            file: scene.path.clone(),
            run_id: outcome.run_id,
            wall_s: outcome.wall_s,
            kpis: BTreeMap::new(),
            series: BTreeMap::new(),
        });
    }
    let st = RunStore::open(&store_path)
        .with_context(|| format!("cannot reopen {}", store_path.display()))?;
    for r in &mut ran {
        let mut series: BTreeMap<String, (Vec<f64>, String)> = BTreeMap::new();
        for k in st.kpis(r.run_id)? {
            if k.scope != "city" || k.name.starts_with("entities.") || k.name.starts_with("index.")
            {
                continue;
            }
            if k.value.is_finite() {
                r.series
                    .entry(k.name.clone())
                    .or_default()
                    .push((k.sim_time_s, k.value));
            }
            let e = series.entry(k.name).or_insert_with(|| (Vec::new(), k.unit));
            if k.value.is_finite() {
                e.0.push(k.value);
            }
        }
        for (name, (values, unit)) in series {
            let kind = summary_kind(&name);
            let v = if values.is_empty() {
                f64::NAN
            } else if kind == "at the end" {
                *values.last().expect("non-empty")
            } else {
                values.iter().sum::<f64>() / values.len() as f64
            };
            r.kpis.insert(name, (v, kind, unit));
        }
    }
    // the table: one row per KPI of the baseline
    let mut header: Vec<String> = vec![
        "kpi".into(),
        "summary".into(),
        "unit".into(),
        format!("base: {}", ran[0].name),
    ];
    header.extend(ran[1..].iter().map(|r| r.name.clone()));
    let mut rows = Vec::new();
    for (name, (b, kind, unit)) in &ran[0].kpis {
        let mut row = vec![name.clone(), kind.to_string(), unit.clone(), fmt_value(*b)];
        for r in &ran[1..] {
            row.push(match r.kpis.get(name) {
                Some((v, _, _)) if b.abs() > 1e-12 && v.is_finite() => {
                    format!("{} ({:+.1} %)", fmt_value(*v), (v - b) / b.abs() * 100.0)
                }
                Some((v, _, _)) => fmt_value(*v),
                None => "-".into(),
            });
        }
        rows.push(row);
    }
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    table(&header_refs, &rows);
    // the report
    let out = out.unwrap_or_else(|| {
        let stem = scenes[0]
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "base".into());
        store_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
            .join(format!("compare-{stem}.md"))
    });
    let mut md = String::new();
    writeln!(md, "# What-if comparison: {}\n", ran[0].name)?;
    writeln!(
        md,
        "Store `{}`; each run can be examined with `citytwin runs show ID`.\n",
        store_path.display()
    )?;
    writeln!(md, "| run | scene | file | wall time |\n|---|---|---|---|")?;
    for r in &ran {
        writeln!(
            md,
            "| {} | {} | `{}` | {:.2} s |",
            r.run_id,
            r.name,
            r.file.display(),
            r.wall_s
        )?;
    }
    writeln!(md, "\n| {} |", header.join(" | "))?;
    writeln!(md, "|{}", "---|".repeat(header.len()))?;
    for row in &rows {
        writeln!(md, "| {} |", row.join(" | "))?;
    }
    // charts of the KPIs over time, one SVG each beside the report
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "compare".into());
    let dir = out.parent().map(Path::to_path_buf).unwrap_or_default();
    if !dir.as_os_str().is_empty() {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    writeln!(md)?;
    for (name, (_, _, unit)) in &ran[0].kpis {
        let lines: Vec<(&str, &[(f64, f64)])> = ran
            .iter()
            .filter_map(|r| r.series.get(name).map(|s| (r.name.as_str(), s.as_slice())))
            .collect();
        if lines.iter().all(|(_, s)| s.len() < 2) {
            continue;
        }
        let file = format!("{stem}-{}.svg", name.replace('.', "_"));
        std::fs::write(dir.join(&file), svg_chart(name, unit, &lines))
            .with_context(|| format!("cannot write {}", dir.join(&file).display()))?;
        writeln!(md, "![{name}]({file})\n")?;
    }
    writeln!(
        md,
        "\nChanges are relative to the base run. Counters and cumulative indices are their values at the end of the run; times, speeds and vehicles running are means over the run's KPI samples."
    )?;
    std::fs::write(&out, md).with_context(|| format!("cannot write {}", out.display()))?;
    println!("report: {}", out.display());
    Ok(())
}

/// A line chart of one KPI over simulated time, one line per run, as SVG.
fn svg_chart(title: &str, unit: &str, lines: &[(&str, &[(f64, f64)])]) -> String {
    const COLOURS: [&str; 6] = [
        "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
    ];
    let (w, h, left, right, top, bottom) = (720.0, 360.0, 70.0, 20.0, 40.0, 80.0);
    let (mut x0, mut x1, mut y0, mut y1) =
        (f64::INFINITY, f64::NEG_INFINITY, 0.0f64, f64::NEG_INFINITY);
    for &(x, y) in lines.iter().flat_map(|(_, s)| s.iter()) {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x1.is_nan() || x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1.is_nan() || y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let sx = |x: f64| left + (x - x0) / (x1 - x0) * (w - left - right);
    let sy = |y: f64| h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{left}\" y=\"22\" font-size=\"15\">{} ({})</text>\n",
        esc(title),
        esc(unit)
    );
    let axis_y = h - bottom;
    svg += &format!(
        "<line x1=\"{left}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\" stroke=\"black\"/>\n<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{axis_y}\" stroke=\"black\"/>\n",
        w - right
    );
    for i in 0..=4 {
        let f = i as f64 / 4.0;
        let (x, y) = (x0 + f * (x1 - x0), y0 + f * (y1 - y0));
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{:.0} s</text>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n<line x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\n",
            sx(x),
            axis_y + 16.0,
            x,
            left - 6.0,
            sy(y) + 4.0,
            short(y),
            sy(y),
            w - right,
            sy(y)
        );
    }
    for (i, (name, s)) in lines.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = s
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let ly = axis_y + 36.0 + 14.0 * i as f64;
        svg += &format!(
            "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>\n<rect x=\"{:.1}\" y=\"{:.1}\" width=\"14\" height=\"4\" fill=\"{c}\"/>\n<text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            path.join(" "),
            left,
            ly - 4.0,
            left + 20.0,
            ly,
            esc(name)
        );
    }
    svg + "</svg>\n"
}

fn short(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
