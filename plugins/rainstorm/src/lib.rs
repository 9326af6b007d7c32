//! # rainstorm
//!
//! Make it rain: a design storm from a city's storm-intensity formula, shaped as a Chicago
//! hyetograph, or a recorded rain series.
//!
//! ```toml
//! [[scenario]]
//! plugin = "rainstorm"
//! # q = 3600 (1 + 0.76 lg P) / (t + 14)^0.84, L/(s·ha): P years, t minutes
//! params = { formula = { a = 3600.0, c = 0.76, b = 14.0, n = 0.84, unit = "L/s/ha" },
//!            return_period_years = 5.0, duration_min = 120.0, peak_ratio = 0.4, start_s = 300.0 }
//! ```
//!
//! **Design storm.** China's standard storm-intensity formula (GB 50014) gives the mean intensity
//! of the heaviest `t` minutes of a storm of return period `P` years as
//! `q = a(1 + c·lg P)/(t + b)^n`, in L/(s·ha) (`unit = "L/s/ha"`) or directly in mm/min
//! (`unit = "mm/min"`; 1 mm/min = 166.67 L/(s·ha)). The Chicago hyetograph (Keifer & Chu 1957)
//! spreads a storm of `duration_min` around a peak at `peak_ratio` of it so that *every* window
//! around the peak holds the formula's depth: before the peak
//! `i(t_b) = A[(1 − n)t_b/r + b]/(t_b/r + b)^(1+n)`, after it the same with `t_a/(1 − r)`,
//! `A = a(1 + c lg P)`. Each step gets the exact depth of its interval (the integral of the
//! hyetograph), so the storm's total is `A·T/(T + b)^n` to rounding.
//!
//! **Recorded series.** `series = "rain.csv"` with columns `time_s` (from the scene start) and
//! `intensity_mm_h`, each held until the next row; `start_s` shifts it.
//!
//! `gauge = "HF-RG1"` makes it the reading of that rain gauge instead of rain everywhere.
//! The rain goes to the engine's [`Rainfall`] (the flood simulation reads it) under the name
//! `name` (default `rainstorm`); the engine reports `rain.intensity` and `rain.depth`.
//!
//! Written only against `citytwin-engine`'s public API.

use std::path::{Path, PathBuf};

use bevy::prelude::*;
use citytwin_engine::modules::{add_systems_once, check_time};
use citytwin_engine::prelude::*;
use citytwin_engine::scene::SceneFiles;
use serde::Deserialize;

/// The plugin.
pub struct Rainstorm;

/// Parameters (see the crate docs).
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RainstormParams {
    /// The storm-intensity formula (a design storm); or give `series`.
    #[serde(default)]
    pub formula: Option<Formula>,
    /// Return period, years (design storm).
    #[serde(default)]
    pub return_period_years: Option<f64>,
    /// Storm duration, minutes (design storm).
    #[serde(default)]
    pub duration_min: Option<f64>,
    /// Where the peak falls, as a fraction of the duration (design storm). Default 0.4.
    #[serde(default = "default_peak")]
    pub peak_ratio: f64,
    /// A recorded series (CSV: `time_s`, `intensity_mm_h`), relative to the scene.
    #[serde(default)]
    pub series: Option<PathBuf>,
    /// When the storm (or the series' time 0) starts, s after the scene start. Default 0.
    #[serde(default)]
    pub start_s: f64,
    /// A rain gauge's station code: the rain is that gauge's reading. Default: rain everywhere.
    #[serde(default)]
    pub gauge: Option<String>,
    /// The source's name in the engine's rainfall. Default `rainstorm`.
    #[serde(default = "default_name")]
    pub name: String,
}

/// `q = a(1 + c·lg P)/(t + b)^n`.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Formula {
    /// a, in `unit`.
    pub a: f64,
    /// c (dimensionless).
    pub c: f64,
    /// b, minutes.
    pub b: f64,
    /// n (dimensionless).
    pub n: f64,
    /// `L/s/ha` (q, the Chinese standard's unit) or `mm/min` (i).
    pub unit: String,
}

fn default_peak() -> f64 {
    0.4
}
fn default_name() -> String {
    "rainstorm".into()
}

/// 1 mm/min in L/(s·ha): 1e-3 m/min × 10⁴ m²/ha × 1000 L/m³ / 60 s/min.
pub const LSHA_PER_MM_MIN: f64 = 10_000.0 / 60.0;

/// A design storm: a Chicago hyetograph of a storm-intensity formula.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct DesignStorm {
    /// `A = a(1 + c lg P)`, mm/min.
    pub a_mm_min: f64,
    /// b, min.
    pub b_min: f64,
    /// n.
    pub n: f64,
    /// Duration, min.
    pub duration_min: f64,
    /// Peak position as a fraction of the duration.
    pub peak_ratio: f64,
}

impl DesignStorm {
    /// The storm for `formula`, return period `p_years`, duration and peak ratio.
    pub fn new(f: &Formula, p_years: f64, duration_min: f64, peak_ratio: f64) -> Self {
        let scale = if f.unit == "L/s/ha" {
            1.0 / LSHA_PER_MM_MIN
        } else {
            1.0
        };
        Self {
            a_mm_min: f.a * scale * (1.0 + f.c * p_years.log10()),
            b_min: f.b,
            n: f.n,
            duration_min,
            peak_ratio,
        }
    }

    /// Mean intensity of the heaviest `t_min` minutes, mm/min (the formula itself).
    pub fn mean_intensity_mm_min(&self, t_min: f64) -> f64 {
        self.a_mm_min / (t_min + self.b_min).powf(self.n)
    }

    /// Depth of the whole storm, mm.
    pub fn total_mm(&self) -> f64 {
        self.mean_intensity_mm_min(self.duration_min) * self.duration_min
    }

    /// Depth of a window of `t_d` minutes around the peak, split `share` of it on one side, mm.
    fn side_mm(&self, side_min: f64, share: f64) -> f64 {
        if share <= 0.0 || side_min <= 0.0 {
            return 0.0;
        }
        let td = side_min / share;
        share * self.a_mm_min * td / (td + self.b_min).powf(self.n)
    }

    /// Depth fallen from the start to `tau_min` minutes into the storm, mm.
    pub fn cumulative_mm(&self, tau_min: f64) -> f64 {
        let t = tau_min.clamp(0.0, self.duration_min);
        let r = self.peak_ratio;
        let tp = r * self.duration_min;
        let before = self.side_mm(tp, r);
        if t <= tp {
            before - self.side_mm(tp - t, r)
        } else {
            before + self.side_mm(t - tp, 1.0 - r)
        }
    }

    /// Intensity at `tau_min` minutes into the storm, mm/min.
    pub fn intensity_mm_min(&self, tau_min: f64) -> f64 {
        if !(0.0..=self.duration_min).contains(&tau_min) {
            return 0.0;
        }
        let r = self.peak_ratio;
        let tp = r * self.duration_min;
        let (x, share) = if tau_min <= tp {
            (tp - tau_min, r)
        } else {
            (tau_min - tp, 1.0 - r)
        };
        let x = x / share.max(1e-12);
        self.a_mm_min * ((1.0 - self.n) * x + self.b_min) / (x + self.b_min).powf(1.0 + self.n)
    }
}

/// What the plugin rains.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
enum Rain {
    Design(DesignStorm),
    /// (time s from the series start, intensity m/s), held to the next row.
    Series(Vec<(f64, f64)>),
}

/// One storm in the world (several instances may each add one).
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug)]
struct Storm {
    rain: Rain,
    start_s: f64,
    gauge: Option<String>,
    name: String,
}

impl Storm {
    /// Mean intensity over `[t0, t1]` s after the scene start, m/s.
    fn mean_mps(&self, t0: f64, t1: f64) -> f64 {
        let (a, b) = (t0 - self.start_s, t1 - self.start_s);
        match &self.rain {
            Rain::Design(d) => {
                let mm = d.cumulative_mm(b / 60.0) - d.cumulative_mm(a / 60.0);
                mm * 1e-3 / (t1 - t0)
            }
            Rain::Series(rows) => {
                if a < rows[0].0 {
                    return 0.0;
                }
                let i = rows.partition_point(|r| r.0 <= a).saturating_sub(1);
                rows[i].1
            }
        }
    }
}

fn read_series(path: &Path) -> Result<Vec<(f64, f64)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("`series`: {}: cannot read: {e}", path.display()))?;
    let mut rows: Vec<(f64, f64)> = Vec::new();
    let mut header = true;
    for (k, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |m: String| format!("`series`: {}:{}: {m}", path.display(), k + 1);
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if header {
            if f != ["time_s", "intensity_mm_h"] {
                return Err(at(format!(
                    "the header must be `time_s,intensity_mm_h`, not `{line}`"
                )));
            }
            header = false;
            continue;
        }
        if f.len() != 2 {
            return Err(at(format!("{} fields, want 2", f.len())));
        }
        let num = |s: &str, col: &str| {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| at(format!("column `{col}`: '{s}' is not a number")))
        };
        let (t, i) = (num(f[0], "time_s")?, num(f[1], "intensity_mm_h")?);
        if i < 0.0 {
            return Err(at(format!("column `intensity_mm_h`: {i} is negative")));
        }
        if rows.last().is_some_and(|r| t <= r.0) {
            return Err(at("times must increase from row to row".into()));
        }
        rows.push((t, i / 3.6e6));
    }
    if rows.is_empty() {
        return Err(format!("`series`: {}: no rows", path.display()));
    }
    Ok(rows)
}

impl SceneModule for Rainstorm {
    fn name(&self) -> &'static str {
        "rainstorm"
    }

    fn description(&self) -> &'static str {
        "a design storm (storm-intensity formula, Chicago hyetograph) or a recorded rain series"
    }

    fn build(&self, params: &toml::Table, app: &mut App) -> Result<(), String> {
        let p: RainstormParams = parse_params(params)?;
        check_time("start_s", p.start_s)?;
        let rain = match (&p.formula, &p.series) {
            (Some(f), None) => {
                if f.unit != "L/s/ha" && f.unit != "mm/min" {
                    return Err(format!(
                        "`formula.unit`: '{}' is not `L/s/ha` or `mm/min`",
                        f.unit
                    ));
                }
                if !(f.a > 0.0 && f.b >= 0.0 && f.n > 0.0 && f.n < 1.0) {
                    return Err(
                        "`formula`: needs a > 0, b ≥ 0 and 0 < n < 1 (a Chicago storm needs n < 1)"
                            .into(),
                    );
                }
                let Some(pr) = p.return_period_years.filter(|v| *v >= 0.25) else {
                    return Err(
                        "`return_period_years`: give the return period, ≥ 0.25 years".into(),
                    );
                };
                let Some(d) = p.duration_min.filter(|v| v.is_finite() && *v > 0.0) else {
                    return Err("`duration_min`: give the storm's duration in minutes".into());
                };
                if !(0.0..=1.0).contains(&p.peak_ratio) {
                    return Err(format!(
                        "`peak_ratio`: {} is not between 0 and 1",
                        p.peak_ratio
                    ));
                }
                Rain::Design(DesignStorm::new(f, pr, d, p.peak_ratio))
            }
            (None, Some(s)) => {
                let files = app
                    .world()
                    .get_resource::<SceneFiles>()
                    .cloned()
                    .ok_or("the rainstorm plugin needs a scene (no SceneFiles resource)")?;
                Rain::Series(read_series(&files.resolve(s))?)
            }
            _ => return Err("give either `formula` (a design storm) or `series` (a file)".into()),
        };
        if let Some(g) = &p.gauge {
            let world = app.world_mut();
            let mut q = world.query::<&Sensor>();
            let known = q
                .iter(world)
                .any(|s| s.station == *g && matches!(s.kind, SensorKind::RainGauge));
            if !known {
                return Err(format!(
                    "`gauge`: no rain gauge with station code '{g}' in the scene"
                ));
            }
        }
        {
            let world = app.world_mut();
            let mut q = world.query::<&Storm>();
            if q.iter(world).any(|s| s.name == p.name) {
                return Err(format!(
                    "`name`: another rainstorm is already called '{}'; give each its own name",
                    p.name
                ));
            }
        }
        app.world_mut().spawn(Storm {
            rain,
            start_s: p.start_s,
            gauge: p.gauge,
            name: p.name,
        });
        add_systems_once(app, "rainstorm", set_rain.in_set(SimSet::Scenario));
        app.checkpoint_component::<Storm>();
        Ok(())
    }
}

/// Set this step's rain: the mean of each storm over the step.
fn set_rain(clock: Res<SimClock>, storms: Query<&Storm>, mut rainfall: ResMut<Rainfall>) {
    let (t0, dt) = (clock.elapsed_s(), clock.step_s());
    for s in &storms {
        let v = s.mean_mps(t0, t0 + dt);
        match &s.gauge {
            Some(g) => rainfall.set_gauge(g, v),
            None => rainfall.set_uniform(&s.name, v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_window_around_the_peak_holds_the_formula_depth() {
        let f = Formula {
            a: 3600.0,
            c: 0.76,
            b: 14.0,
            n: 0.84,
            unit: "L/s/ha".into(),
        };
        let d = DesignStorm::new(&f, 5.0, 120.0, 0.4);
        let tp = 48.0;
        for td in [5.0, 15.0, 30.0, 60.0, 120.0] {
            let depth = d.cumulative_mm(tp + 0.6 * td) - d.cumulative_mm(tp - 0.4 * td);
            let want = d.mean_intensity_mm_min(td) * td;
            assert!(
                (depth - want).abs() < 1e-9 * want,
                "{td} min: {depth} vs {want}"
            );
        }
        // The intensity is the derivative of the depth, and peaks at the peak.
        for t in [10.0, 47.0, 49.0, 100.0] {
            let h = 1e-4;
            let di = (d.cumulative_mm(t + h) - d.cumulative_mm(t - h)) / (2.0 * h);
            assert!((di - d.intensity_mm_min(t)).abs() < 1e-5 * di, "t {t}");
        }
        assert!(d.intensity_mm_min(48.0) > d.intensity_mm_min(40.0));
        assert!(d.intensity_mm_min(48.0) > d.intensity_mm_min(56.0));
    }
}
