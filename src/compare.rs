//! `citytwin compare BASE VARIANT…`: run a baseline scene and its what-if variants into one
//! store and put their KPIs side by side, on screen and as a Markdown report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use citytwin_engine::runner::{RunRequest, run_scene};
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::SimOptions;
use citytwin_engine::store::{RunStatus, RunStore};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::report::table;
use citytwin::fmt_value;

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
    // Each scene runs into a store of its own, as many at a time as there are cores (one
    // DuckDB file has one writer); the runs are then gathered into the store in scene order, so
    // their ids do not depend on which finished first.
    // A database store has no folder of its own: its scratch stores go in the temp folder.
    let scratch = if citytwin_engine::import::postgis::is_database(&store_path.to_string_lossy()) {
        std::env::temp_dir().join(format!("citytwin-compare-{}", std::process::id()))
    } else {
        store_path.with_extension(format!("compare-{}", std::process::id()))
    };
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    let outcome = run_all(&scenes, registry, seed, &scratch);
    let gathered = outcome.and_then(|walls| {
        let st = RunStore::open(&store_path)
            .with_context(|| format!("cannot open {}", store_path.display()))?;
        let mut ran = Vec::new();
        for (k, (scene, wall_s)) in scenes.iter().zip(walls).enumerate() {
            let ids = st.absorb(&scratch.join(format!("run-{k}.duckdb")))?;
            ran.push(Ran {
                name: scene.meta.name.clone(),
                file: scene.path.clone(),
                run_id: *ids.last().context("a run went missing")?,
                wall_s,
                kpis: BTreeMap::new(),
                series: BTreeMap::new(),
            });
        }
        Ok(ran)
    });
    let _ = std::fs::remove_dir_all(&scratch);
    let mut ran = gathered?;
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
        citytwin_engine::store::folder_beside(&store_path).join(format!("compare-{stem}.md"))
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
    // charts of the KPIs over time, one PNG each beside the report
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
        let file = format!("{stem}-{}.png", name.replace('.', "_"));
        let title = format!("{name} ({unit})");
        let png = citytwin::charts::line_chart(&citytwin::charts::LineChart {
            title: &title,
            x_desc: "simulated time (s)",
            y_desc: unit,
            lines: &lines,
        })?;
        std::fs::write(dir.join(&file), png)
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

/// Run every scene, each into `scratch/run-K.duckdb`, a few at a time; the wall times in scene
/// order, or the first failure.
fn run_all(
    scenes: &[Scene],
    registry: &citytwin_engine::modules::ModuleRegistry,
    seed: Option<u64>,
    scratch: &Path,
) -> Result<Vec<f64>> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(scenes.len())
        .max(1);
    let bars = MultiProgress::new();
    let style =
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} ticks, eta {eta}")
            .expect("the progress template is valid")
            .progress_chars("=> ");
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<f64>>>> =
        Mutex::new((0..scenes.len()).map(|_| None).collect());
    std::thread::scope(|sc| {
        for _ in 0..workers {
            sc.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(scene) = scenes.get(k) else { break };
                    let bar = bars.add(ProgressBar::new(0));
                    bar.set_style(style.clone());
                    bar.set_message(format!("running '{}'", scene.meta.name));
                    let r = RunStore::open(scratch.join(format!("run-{k}.duckdb")))
                        .map_err(anyhow::Error::from)
                        .and_then(|store| {
                            run_scene(
                                RunRequest {
                                    scene,
                                    registry,
                                    opts: SimOptions {
                                        seed,
                                        ..Default::default()
                                    },
                                    store,
                                    stop: Arc::new(AtomicBool::new(false)),
                                    fork: None,
                                    pace: None,
                                    on_start: None,
                                },
                                &mut |t, end| {
                                    bar.set_length(end);
                                    bar.set_position(t);
                                },
                            )
                            .map_err(anyhow::Error::from)
                        })
                        .and_then(|o| {
                            if o.status == RunStatus::Completed {
                                Ok(o.wall_s)
                            } else {
                                Err(anyhow::anyhow!(
                                    "'{}' ended {:?}: {}",
                                    scene.meta.name,
                                    o.status,
                                    o.error.unwrap_or_default()
                                ))
                            }
                        });
                    bar.finish_and_clear();
                    if let Ok(mut slots) = results.lock() {
                        slots[k] = Some(r);
                    }
                }
            });
        }
    });
    let slots = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a run panicked"))?;
    slots
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("a run did not finish"))))
        .collect()
}
