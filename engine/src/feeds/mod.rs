//! Sensor feeds: readings of the scene's sensors on the simulation clock, from files (CSV
//! `time,station,quantity,value,unit`, the same shape as an incident's readings, or Parquet with
//! those columns) and live from MQTT brokers.
//!
//! A scene names them as `[[feed]]` tables:
//! - **Files** are read when the world is built.
//! - **Live feeds** ([`live`]) are taken in as messages arrive: each step takes the messages
//!   that came since the last one. A new run subscribes to the broker; a replay or fork of a
//!   recorded run is given the messages that run took in, at the same steps, so it is
//!   deterministic like any other run.
//!
//! Every reading, good or bad, goes to the run store's `readings` table (see
//! [`crate::store::ReadingRow`]):
//! - **Bad readings are counted, never fatal.** A reading is *malformed* (a value, time or unit
//!   that cannot be read), from an *unknown station* (no sensor of the scene has its code),
//!   *out of range* (negative rain, rain over 500 mm/h, a water level outside −20..100 m, a
//!   negative concentration), a *duplicate* (the same station, quantity and time again) or
//!   *late*: earlier than a reading of the same series taken before it (a series only moves
//!   forward), or, live, more than the feed's `max_delay_s` behind the clock when it arrives.
//!   Each count is the `feed.bad` KPI with the kind as its scope. Only a file that cannot be
//!   read, or lacks a column, stops the build.
//! - **Delivery**: a reading holds from its time until the next reading of its series; the last
//!   holds as long as the interval before it. Each step, `feed.<quantity>` (SI) is the KPI of
//!   each station that has reported, and `feed.readings` counts the readings delivered so far.
//! - **Rain gauges drive the rain**: a rain series of a rain-gauge sensor becomes that gauge's
//!   [`Rainfall`], the series' mean over each step, which the flood interpolates between gauges.
//!
//! The files are part of the scene, so a replay reads them again; the live messages are part
//! of the recorded run. A checkpoint need not hold the series: a world restored from one takes
//! in, at its first step, every live message recorded up to then, each classified against the
//! clock at its own arrival.

use std::collections::BTreeMap;
use std::path::Path;

use bevy::prelude::*;

use crate::clock::SimClock;
use crate::control::Rainfall;
use crate::incident::observed::reading_to_si;
use crate::incident::{IncidentError, parse_num, parse_time};
use crate::model::{Sensor, SensorKind};
use crate::recorder::{Kpis, Recorder};
use crate::store::{Channel, ReadingRow};

mod files;
pub mod live;
pub use live::{LinkStatus, LiveFeeds, MqttUrl};

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

/// The scene's feeds: the series taken in so far, and the bad readings.
#[derive(Resource, Debug, Default, Clone)]
pub struct Feeds {
    /// Every series, ordered by (station, quantity).
    pub series: Vec<Series>,
    /// Bad readings by kind (`malformed`, `unknown_station`, `out_of_range`, `duplicate`,
    /// `late`), with the first few of each (where, and what was wrong) for the report.
    pub bad: BTreeMap<&'static str, (u64, Vec<String>)>,
    /// The stations of the scene's sensors, sorted, and whether each is a rain gauge.
    stations: Vec<(String, bool)>,
    /// The scene's start, which readings' instants are relative to.
    start: Option<jiff::ZonedDateTime>,
    /// The readings taken in, in order, not yet handed to the run store.
    intake: Vec<ReadingRow>,
    /// Readings taken in so far.
    taken: u64,
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

/// A reading as its source gives it, before it is read.
pub(crate) struct Incoming {
    /// The `[[feed]]` it came through.
    pub feed: u32,
    /// File or MQTT.
    pub channel: Channel,
    /// Where it came from, for messages: `path:line`, or the topic.
    pub origin: String,
    /// The text as received.
    pub payload: String,
    /// Its five fields (`time,station,quantity,value,unit`), or what is wrong with it. An empty
    /// time, live, is the moment of arrival.
    pub fields: Result<Vec<String>, String>,
    /// Live: (simulated time it arrived, s; how far behind the clock its time may be, s).
    pub arrival: Option<(f64, f64)>,
}

impl Feeds {
    /// Feeds for the sensors of `world`, with nothing taken in yet.
    pub fn new(start: &jiff::ZonedDateTime, world: &mut World) -> Self {
        let mut stations: BTreeMap<String, bool> = BTreeMap::new();
        let mut q = world.query::<&Sensor>();
        for s in q.iter(world) {
            let gauge = matches!(s.kind, SensorKind::RainGauge);
            *stations.entry(s.station.clone()).or_default() |= gauge;
        }
        Feeds {
            stations: stations.into_iter().collect(),
            start: Some(start.clone()),
            ..Feeds::default()
        }
    }

    /// The reading of `station`'s `quantity` in force at `t_s` (SI), if one holds then.
    pub fn value_at(&self, station: &str, quantity: &str, t_s: f64) -> Option<f64> {
        let i = self.find(station, quantity).ok()?;
        self.series[i].at(t_s).map(|(v, _)| v)
    }

    fn find(&self, station: &str, quantity: &str) -> Result<usize, usize> {
        self.series.binary_search_by(|s| {
            (s.station.as_str(), s.quantity.as_str()).cmp(&(station, quantity))
        })
    }

    fn station(&self, code: &str) -> Option<bool> {
        self.stations
            .binary_search_by(|(s, _)| s.as_str().cmp(code))
            .ok()
            .map(|i| self.stations[i].1)
    }

    /// Read the feed files (`(feed index, path)`) for the sensors of `world`. Counts bad
    /// readings instead of failing; only a file that cannot be read, or lacks a column, is an
    /// error.
    pub fn read(
        files: &[(u32, &Path)],
        start: &jiff::ZonedDateTime,
        world: &mut World,
    ) -> Result<Self, IncidentError> {
        let mut feeds = Feeds::new(start, world);
        for &(feed, path) in files {
            for (origin, fields) in files::reading_rows(path)? {
                let payload = fields.as_ref().map(|f| f.join(",")).unwrap_or_default();
                feeds.take(Incoming {
                    feed,
                    channel: Channel::File,
                    origin,
                    payload,
                    fields,
                    arrival: None,
                });
            }
        }
        Ok(feeds)
    }

    /// Take in one reading: read it, check it, add it to its series, and keep its row for the
    /// store. Returns its status (`ok` or the kind of bad reading).
    pub(crate) fn take(&mut self, inc: Incoming) -> &'static str {
        let mut row = ReadingRow {
            seq: self.taken,
            feed: inc.feed,
            channel: inc.channel,
            origin: inc.origin,
            arrival_s: inc.arrival.map(|a| a.0),
            payload: inc.payload,
            status: "ok",
            detail: None,
            station: None,
            quantity: None,
            time_s: None,
            value: None,
            unit: None,
        };
        self.taken += 1;
        let verdict = self.check(inc.fields, inc.arrival, &mut row);
        if let Err((kind, detail)) = verdict {
            row.status = kind;
            let e = self.bad.entry(kind).or_default();
            e.0 += 1;
            if e.1.len() < 5 {
                e.1.push(format!("{}: {detail}", row.origin));
            }
            row.detail = Some(detail);
        }
        let status = row.status;
        self.intake.push(row);
        status
    }

    /// Read and check a reading, filling `row`; add it to its series if it is good.
    fn check(
        &mut self,
        fields: Result<Vec<String>, String>,
        arrival: Option<(f64, f64)>,
        row: &mut ReadingRow,
    ) -> Result<(), (&'static str, String)> {
        let malformed = |m: String| ("malformed", m);
        let r = fields.map_err(malformed)?;
        if r.len() != 5 {
            return Err(malformed(format!(
                "{} fields, not the 5 of time,station,quantity,value,unit",
                r.len()
            )));
        }
        let t = match (r[0].trim(), arrival) {
            ("", Some((a, _))) => a,
            (s, _) => {
                let start = self
                    .start
                    .as_ref()
                    .ok_or(("malformed", "no start".into()))?;
                parse_time(s, start).map_err(malformed)?
            }
        };
        let v = parse_num(r[3].trim(), "value").map_err(malformed)?;
        let (v, unit) = reading_to_si(v, &r[4]).map_err(malformed)?;
        let (station, quantity) = (r[1].trim().to_string(), r[2].trim().to_string());
        row.station = Some(station.clone());
        row.quantity = Some(quantity.clone());
        row.time_s = Some(t);
        row.value = Some(v);
        row.unit = Some(unit.to_string());
        if self.station(&station).is_none() {
            return Err(("unknown_station", format!("no sensor '{station}'")));
        }
        if !in_range(&quantity, unit, v) {
            return Err(("out_of_range", format!("{quantity} {v} {unit}")));
        }
        if let Some((a, max_delay_s)) = arrival
            && t < a - max_delay_s
        {
            return Err((
                "late",
                format!("its time {t} s arrived at {a} s, more than {max_delay_s} s behind"),
            ));
        }
        let i = match self.find(&station, &quantity) {
            Ok(i) => i,
            Err(i) => {
                self.series.insert(
                    i,
                    Series {
                        station,
                        quantity,
                        unit,
                        readings: Vec::new(),
                    },
                );
                i
            }
        };
        let s = &mut self.series[i];
        match s.readings.last() {
            Some(&(last, _)) if t == last => Err(("duplicate", format!("again at {t} s"))),
            Some(&(last, _)) if t < last => Err(("late", format!("{t} s is before {last} s"))),
            _ => {
                s.readings.push((t, v));
                Ok(())
            }
        }
    }

    /// Bad readings in all.
    pub fn bad_total(&self) -> u64 {
        self.bad.values().map(|(n, _)| n).sum()
    }

    /// Whether `station` is a rain gauge.
    fn is_gauge(&self, station: &str) -> bool {
        self.station(station) == Some(true)
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
            && feeds.is_gauge(&s.station)
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

/// Hand the readings taken in this step to the run store (dropped when nothing records).
pub(crate) fn record_readings(mut feeds: ResMut<Feeds>, recorder: Option<ResMut<Recorder>>) {
    if feeds.intake.is_empty() {
        return;
    }
    let rows = std::mem::take(&mut feeds.intake);
    if let Some(mut r) = recorder {
        r.record_readings(rows);
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
