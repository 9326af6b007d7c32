//! Sensor feeds: series of readings from files (CSV `time,station,quantity,value,unit`, the
//! same shape as an incident's readings), replayed on the simulation clock.
//!
//! A scene names them as `[[feed]]` tables. They are read when the world is built:
//! - **Bad readings are counted, never fatal.** A reading is *malformed* (a value, time or unit
//!   that cannot be read), from an *unknown station* (no sensor of the scene has its code),
//!   *out of range* (negative rain, rain over 500 mm/h, a water level outside −20..100 m, a
//!   negative concentration), a *duplicate* (the same station, quantity and time again) or
//!   *late* (earlier than a reading of the same series before it in the file: a series only
//!   moves forward). Each count is the `feed.bad` KPI with the kind as its scope. Only a file
//!   that cannot be read, or lacks a column, stops the build.
//! - **Delivery**: a reading holds from its time until the next reading of its series; the last
//!   holds as long as the interval before it. Each step, `feed.<quantity>` (SI) is the KPI of
//!   each station that has reported, and `feed.readings` counts the readings delivered so far.
//! - **Rain gauges drive the rain**: a rain series of a rain-gauge sensor becomes that gauge's
//!   [`Rainfall`], the series' mean over each step, which the flood interpolates between gauges.
//!
//! The series are part of the scene, so a replay reads them again; the state is only the
//! clock, and the feeds need no checkpoint of their own.

use std::collections::BTreeMap;
use std::path::Path;

use bevy::prelude::*;

use crate::clock::SimClock;
use crate::control::Rainfall;
use crate::incident::observed::reading_to_si;
use crate::incident::{IncidentError, READING_COLUMNS, csv_table, parse_num, parse_time};
use crate::model::{Sensor, SensorKind};
use crate::recorder::Kpis;

/// One series: a station's readings of one quantity, in time order, in SI.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The station's code.
    pub station: String,
    /// What it measures, as the file names it (`rain`, `water_level`, `NO2`).
    pub quantity: String,
    /// The SI unit of the values.
    pub unit: &'static str,
    /// (time s after the start, value).
    pub readings: Vec<(f64, f64)>,
}

impl Series {
    /// The reading in force at `t_s`, and when its hold ends.
    fn at(&self, t_s: f64) -> Option<(f64, f64)> {
        let i = self.readings.partition_point(|r| r.0 <= t_s);
        let (t, v) = *self.readings.get(i.checked_sub(1)?)?;
        let end = match self.readings.get(i) {
            Some(next) => next.0,
            None => {
                let n = self.readings.len();
                let interval = if n >= 2 {
                    self.readings[n - 1].0 - self.readings[n - 2].0
                } else {
                    f64::INFINITY
                };
                t + interval
            }
        };
        (t_s < end).then_some((v, end))
    }

    /// The mean of the held readings over `[t0, t1)` (zero where none holds).
    pub fn mean(&self, t0: f64, t1: f64) -> f64 {
        if t1 <= t0 {
            return 0.0;
        }
        let mut sum = 0.0;
        let mut t = t0;
        while t < t1 {
            match self.at(t) {
                Some((v, end)) => {
                    let e = end.min(t1);
                    sum += v * (e - t);
                    t = e;
                }
                None => {
                    // Nothing holds: jump to the next reading, if any comes before t1.
                    let i = self.readings.partition_point(|r| r.0 <= t);
                    match self.readings.get(i) {
                        Some(r) if r.0 < t1 => t = r.0,
                        _ => break,
                    }
                }
            }
        }
        sum / (t1 - t0)
    }

    /// Readings delivered by `t_s`.
    fn delivered(&self, t_s: f64) -> usize {
        self.readings.partition_point(|r| r.0 <= t_s)
    }
}

/// The scene's feeds, read when the world is built.
#[derive(Resource, Debug, Default, Clone)]
pub struct Feeds {
    /// Every series, ordered by (station, quantity).
    pub series: Vec<Series>,
    /// Bad readings by kind (`malformed`, `unknown_station`, `out_of_range`, `duplicate`,
    /// `late`), with the first few lines of each for the report.
    pub bad: BTreeMap<&'static str, (u64, Vec<String>)>,
    /// The stations that are rain gauges.
    gauges: Vec<String>,
}

/// Whether `quantity` names rain intensity.
fn is_rain(quantity: &str) -> bool {
    matches!(
        quantity.to_ascii_lowercase().as_str(),
        "rain" | "rainfall" | "precipitation" | "rain_intensity"
    )
}

/// Whether a value in SI is plausible for its quantity.
fn in_range(quantity: &str, unit: &str, v: f64) -> bool {
    if !v.is_finite() {
        return false;
    }
    if is_rain(quantity) {
        return (0.0..=500.0 / 3.6e6).contains(&v);
    }
    match unit {
        "m" => (-20.0..=100.0).contains(&v),
        "kg/m3" | "m3/s" | "1/s" => v >= 0.0,
        _ => true,
    }
}

impl Feeds {
    /// The reading of `station`'s `quantity` in force at `t_s` (SI), if one holds then.
    pub fn value_at(&self, station: &str, quantity: &str, t_s: f64) -> Option<f64> {
        let i = self
            .series
            .binary_search_by(|s| {
                (s.station.as_str(), s.quantity.as_str()).cmp(&(station, quantity))
            })
            .ok()?;
        self.series[i].at(t_s).map(|(v, _)| v)
    }

    /// Read `files` for the sensors of `world`. Counts bad readings instead of failing.
    pub fn read(
        files: &[&Path],
        start: &jiff::ZonedDateTime,
        world: &mut World,
    ) -> Result<Self, IncidentError> {
        let mut sensors: BTreeMap<String, bool> = BTreeMap::new();
        let mut q = world.query::<&Sensor>();
        for s in q.iter(world) {
            let gauge = matches!(s.kind, SensorKind::RainGauge);
            *sensors.entry(s.station.clone()).or_default() |= gauge;
        }
        let mut feeds = Feeds {
            gauges: sensors
                .iter()
                .filter(|(_, g)| **g)
                .map(|(s, _)| s.clone())
                .collect(),
            ..Feeds::default()
        };
        let mut series: BTreeMap<(String, String), Series> = BTreeMap::new();
        for path in files {
            let name = path.display().to_string();
            for (line, row) in csv_table(path, READING_COLUMNS)? {
                let at = |m: String| format!("{name}:{line}: {m}");
                let parsed = row.and_then(|r| {
                    let t = parse_time(&r[0], start)?;
                    let v = parse_num(&r[3], "value")?;
                    let (v, unit) = reading_to_si(v, &r[4])?;
                    Ok((t, r[1].clone(), r[2].clone(), v, unit))
                });
                let (t, station, quantity, v, unit) = match parsed {
                    Ok(p) => p,
                    Err(m) => {
                        feeds.count("malformed", at(m));
                        continue;
                    }
                };
                if !sensors.contains_key(&station) {
                    feeds.count("unknown_station", at(format!("no sensor '{station}'")));
                    continue;
                }
                if !in_range(&quantity, unit, v) {
                    feeds.count("out_of_range", at(format!("{quantity} {v} {unit}")));
                    continue;
                }
                let s = series
                    .entry((station.clone(), quantity.clone()))
                    .or_insert_with(|| Series {
                        station,
                        quantity,
                        unit,
                        readings: Vec::new(),
                    });
                match s.readings.last() {
                    Some(&(last, _)) if t == last => {
                        feeds.count("duplicate", at(format!("again at {t} s")));
                    }
                    Some(&(last, _)) if t < last => {
                        feeds.count("late", at(format!("{t} s is before {last} s")));
                    }
                    _ => s.readings.push((t, v)),
                }
            }
        }
        feeds.series = series.into_values().collect();
        Ok(feeds)
    }

    fn count(&mut self, kind: &'static str, line: String) {
        let e = self.bad.entry(kind).or_default();
        e.0 += 1;
        if e.1.len() < 5 {
            e.1.push(line);
        }
    }

    /// Bad readings in all.
    pub fn bad_total(&self) -> u64 {
        self.bad.values().map(|(n, _)| n).sum()
    }
}

/// This step's rain from the rain gauges' series (their mean over the step).
pub(crate) fn deliver_feeds(
    clock: Res<SimClock>,
    feeds: Res<Feeds>,
    mut rainfall: ResMut<Rainfall>,
) {
    let (t0, dt) = (clock.elapsed_s(), clock.step_s());
    for s in &feeds.series {
        if is_rain(&s.quantity)
            && feeds.gauges.binary_search(&s.station).is_ok()
            && s.readings.first().is_some_and(|r| r.0 < t0 + dt)
        {
            rainfall.set_gauge(&s.station, s.mean(t0, t0 + dt));
        }
    }
}

/// The `feed.*` KPIs: each station's reading in force, the readings delivered, the bad ones.
pub(crate) fn feed_kpis(clock: Res<SimClock>, feeds: Res<Feeds>, mut kpis: ResMut<Kpis>) {
    let t = clock.elapsed_s();
    let mut delivered = 0usize;
    for s in &feeds.series {
        delivered += s.delivered(t);
        if let Some((v, _)) = s.at(t) {
            kpis.set(&format!("feed.{}", s.quantity), &s.station, v, s.unit);
        }
    }
    kpis.set("feed.readings", "city", delivered as f64, "1");
    for (kind, (n, _)) in &feeds.bad {
        kpis.set("feed.bad", kind, *n as f64, "1");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_holds_each_reading_until_the_next() {
        let s = Series {
            station: "g".into(),
            quantity: "rain".into(),
            unit: "m/s",
            readings: vec![(60.0, 2.0), (120.0, 4.0), (180.0, 1.0)],
        };
        assert_eq!(s.at(30.0), None);
        assert_eq!(s.at(60.0), Some((2.0, 120.0)));
        assert_eq!(s.at(239.0), Some((1.0, 240.0)));
        assert_eq!(s.at(240.0), None);
        // [0, 240): nothing for 60 s, then 2, 4 and 1 for 60 s each.
        assert_eq!(s.mean(0.0, 240.0), (2.0 + 4.0 + 1.0) * 60.0 / 240.0);
        assert_eq!(s.mean(90.0, 150.0), (2.0 * 30.0 + 4.0 * 30.0) / 60.0);
        assert_eq!(s.mean(300.0, 360.0), 0.0);
    }
}
