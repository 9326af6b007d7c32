//! How fast sensor feeds are taken in: a city's rain gauges over ten days, read from CSV and
//! from Parquet, every reading checked and kept for the store. Also one MQTT-shaped message at
//! a time (a CSV row and a JSON object per reading), the path live readings take.
//!
//! `cargo bench --workspace --bench feeds` prints readings per second for each; the Parquet and
//! message figures are also given as ratios to the CSV file's, measured in the same run.

use std::time::Instant;

use bevy::prelude::*;
use citytwin_engine::feeds::Feeds;
use citytwin_engine::model::{Sensor, SensorKind};

/// 100 gauges reporting every 5 minutes for 10 days.
const GAUGES: usize = 100;
const READINGS_PER_GAUGE: usize = 10 * 24 * 12;

fn world() -> World {
    let mut w = World::new();
    for g in 0..GAUGES {
        w.spawn(Sensor {
            kind: SensorKind::RainGauge,
            station: format!("RG{g:03}"),
        });
    }
    w
}

/// Best wall time of `runs` calls of `f`, s.
fn best(runs: usize, mut f: impl FnMut()) -> f64 {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("gauges.csv");
    let mut text = String::from("time,station,quantity,value,unit\n");
    for i in 0..READINGS_PER_GAUGE {
        for g in 0..GAUGES {
            let mm_h = ((i * 7 + g * 13) % 50) as f64 * 0.5;
            text += &format!("{},RG{g:03},rain,{mm_h},mm/h\n", i * 300);
        }
    }
    std::fs::write(&csv, &text).unwrap();
    let parquet = dir.path().join("gauges.parquet");
    let db = duckdb::Connection::open_in_memory().unwrap();
    db.execute_batch(&format!(
        "COPY (SELECT * FROM read_csv('{}', header = true, columns = {{'time': 'DOUBLE', 'station': 'VARCHAR', 'quantity': 'VARCHAR', 'value': 'DOUBLE', 'unit': 'VARCHAR'}})) TO '{}' (FORMAT PARQUET)",
        csv.display(),
        parquet.display()
    ))
    .unwrap();
    let n = (GAUGES * READINGS_PER_GAUGE) as f64;
    let start: jiff::ZonedDateTime = "2026-07-15T07:30:00+08:00[Asia/Shanghai]".parse().unwrap();
    let mut w = world();

    let mut read = |path: &std::path::Path| {
        let f = Feeds::read(&[(0, path)], &start, &mut w).unwrap();
        assert_eq!(f.bad_total(), 0);
        assert_eq!(f.series.len(), GAUGES);
        std::hint::black_box(f);
    };
    let csv_s = best(3, || read(&csv));
    let parquet_s = best(3, || read(&parquet));

    // One message at a time, as an MQTT feed gives them.
    let rows: Vec<String> = text.lines().skip(1).map(str::to_string).collect();
    let json: Vec<String> = rows
        .iter()
        .map(|r| {
            let f: Vec<&str> = r.split(',').collect();
            format!(
                r#"{{"time":{},"station":"{}","quantity":"{}","value":{},"unit":"{}"}}"#,
                f[0], f[1], f[2], f[3], f[4]
            )
        })
        .collect();
    let mut feeds = Feeds::new(&start, &mut w);
    let csv_msg_s = best(3, || {
        feeds = Feeds::new(&start, &mut w);
        for m in &rows {
            feeds.take_message(0, "city/rain", m, 0.0, f64::INFINITY);
        }
    });
    assert_eq!(feeds.bad_total(), 0);
    let json_msg_s = best(3, || {
        feeds = Feeds::new(&start, &mut w);
        for m in &json {
            feeds.take_message(0, "city/rain", m, 0.0, f64::INFINITY);
        }
    });
    assert_eq!(feeds.bad_total(), 0);

    println!(
        "{} readings ({GAUGES} gauges x {READINGS_PER_GAUGE}), each checked and kept for the store:",
        n as usize
    );
    for (what, s) in [
        ("CSV file", csv_s),
        ("Parquet file", parquet_s),
        ("messages, CSV rows", csv_msg_s),
        ("messages, JSON", json_msg_s),
    ] {
        println!(
            "  {what:<20} {s:>7.3} s  {:>10.0} readings/s  ({:.2}x the CSV file's time)",
            n / s,
            s / csv_s
        );
    }
}
