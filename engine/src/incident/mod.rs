//! What a real incident leaves behind, read and put on the model: vehicles' GPS tracks
//! (matched to the roads, [`mapmatch`]), sensor readings, and the incident log.
//!
//! Files are CSV with a header (columns by name, in any order) or, for tracks, GeoJSON points.
//! Times are seconds after the scene's start, or RFC 3339 instants (`2026-07-15T07:52:10+08:00`).
//! Every error names the file, the line (or feature) and what was wrong.

pub mod mapmatch;
pub mod observed;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bevy::math::DVec2;
use jiff::ZonedDateTime as Zoned;

use crate::geo_frame::{GeoFrame, LonLat};

/// A file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {message}", path.display())]
pub struct IncidentError {
    /// The file.
    pub path: PathBuf,
    /// Its line (CSV) or feature number (GeoJSON, from 1); 0 for the whole file.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

/// One vehicle's track: its fixes in time order.
#[derive(Clone, Debug, PartialEq)]
pub struct Track {
    /// The vehicle's id in the file.
    pub id: String,
    /// (s after the scene start, position in the frame, m).
    pub fixes: Vec<(f64, DVec2)>,
}

/// An entry of the incident log.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// When, s after the scene start.
    pub t_s: f64,
    /// Where, m in the frame (if given).
    pub xy_m: Option<DVec2>,
    /// Its type (`crash`, `flooding`, `leak`…).
    pub kind: String,
    /// The text.
    pub text: String,
}

/// A sensor reading.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    /// When, s after the scene start.
    pub t_s: f64,
    /// The station's code.
    pub station: String,
    /// What it measures (`rain`, `water_level`, `NO2`…).
    pub quantity: String,
    /// The value, in `unit`.
    pub value: f64,
    /// Its unit as written.
    pub unit: String,
}

pub(crate) fn err(path: &Path, line: usize, message: impl Into<String>) -> IncidentError {
    IncidentError {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// Split one CSV line (commas; double quotes around fields that hold commas or quotes).
pub(crate) fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur).trim().to_string()),
            c => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

/// The error for a table (a CSV header, a Parquet schema) without a wanted column: its
/// accepted names, and the columns found.
pub(crate) fn missing_column(
    path: &Path,
    names: &[&str],
    found: &[impl AsRef<str>],
) -> IncidentError {
    let found: Vec<&str> = found.iter().map(AsRef::as_ref).collect();
    err(
        path,
        1,
        format!(
            "no column '{}' (accepted names: {}; found: {})",
            names[0],
            names.join(", "),
            found.join(", ")
        ),
    )
}

/// The header of a CSV file checked for the wanted columns, then each row's values or what is
/// wrong with it, with its line number. Only an unreadable file or a missing column fails.
pub(crate) fn csv_table(
    path: &Path,
    want: &[&[&str]],
) -> Result<Vec<(usize, Result<Vec<String>, String>)>, IncidentError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| err(path, 0, format!("cannot read: {e}")))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let (_, header) = lines
        .next()
        .ok_or_else(|| err(path, 0, "empty file (a header line is needed)"))?;
    let cols: Vec<String> = csv_fields(header.trim_start_matches('\u{feff}'))
        .into_iter()
        .map(|c| c.to_lowercase())
        .collect();
    let mut index = Vec::with_capacity(want.len());
    for names in want {
        let i = cols
            .iter()
            .position(|c| names.contains(&c.as_str()))
            .ok_or_else(|| missing_column(path, names, &cols))?;
        index.push(i);
    }
    Ok(lines
        .map(|(n, l)| {
            let f = csv_fields(l);
            let row = index
                .iter()
                .enumerate()
                .map(|(k, &i)| {
                    f.get(i)
                        .cloned()
                        .ok_or_else(|| format!("no value for column '{}'", want[k][0]))
                })
                .collect::<Result<Vec<String>, String>>();
            (n + 1, row)
        })
        .collect())
}

/// The rows of a CSV file with the wanted columns (each given by its accepted names), with
/// their line numbers; the first row that lacks a column is an error naming its line.
fn csv_rows(path: &Path, want: &[&[&str]]) -> Result<Vec<(usize, Vec<String>)>, IncidentError> {
    csv_table(path, want)?
        .into_iter()
        .map(|(line, row)| row.map(|r| (line, r)).map_err(|m| err(path, line, m)))
        .collect()
}

/// Seconds after `start` of a time written as a number of seconds or an RFC 3339 instant.
pub(crate) fn parse_time(s: &str, start: &Zoned) -> Result<f64, String> {
    if let Ok(t) = s.parse::<f64>() {
        return if t.is_finite() {
            Ok(t)
        } else {
            Err(format!("time '{s}' is not a number of seconds"))
        };
    }
    let ts: jiff::Timestamp = s.parse().map_err(|e| {
        format!("time '{s}': give seconds after the scene start or an RFC 3339 instant with its offset ({e})")
    })?;
    Ok((ts.as_nanosecond() - start.timestamp().as_nanosecond()) as f64 * 1e-9)
}

pub(crate) fn parse_num(s: &str, what: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{what} '{s}' is not a number"))
}

fn parse_lonlat(lon: &str, lat: &str) -> Result<LonLat, String> {
    let p = LonLat::new(parse_num(lon, "longitude")?, parse_num(lat, "latitude")?);
    if p.is_valid() {
        Ok(p)
    } else {
        Err(format!(
            "({lon}, {lat}) is not a longitude and latitude in degrees"
        ))
    }
}

fn local(frame: &GeoFrame, p: LonLat) -> DVec2 {
    let c = frame.to_local(p);
    DVec2::new(c.x, c.y)
}

/// Read GPS tracks: CSV (`id`, `time`, `lon`, `lat`) or GeoJSON (`.geojson`/`.json`: points
/// with properties `id` and `time`). Fixes are sorted by time per vehicle; tracks by id.
pub fn read_tracks(
    path: &Path,
    frame: &GeoFrame,
    start: &Zoned,
) -> Result<Vec<Track>, IncidentError> {
    let mut by_id: BTreeMap<String, Vec<(f64, DVec2)>> = BTreeMap::new();
    let geojson = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("geojson") || e.eq_ignore_ascii_case("json"));
    if geojson {
        let text =
            std::fs::read_to_string(path).map_err(|e| err(path, 0, format!("cannot read: {e}")))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| err(path, e.line(), e.to_string()))?;
        let features = v
            .get("features")
            .and_then(|f| f.as_array())
            .ok_or_else(|| err(path, 0, "not a GeoJSON FeatureCollection"))?;
        for (n, f) in features.iter().enumerate() {
            let bad = |m: String| err(path, n + 1, format!("feature {}: {m}", n + 1));
            let coords = f
                .pointer("/geometry/coordinates")
                .and_then(|c| c.as_array())
                .filter(|_| f.pointer("/geometry/type").and_then(|t| t.as_str()) == Some("Point"))
                .ok_or_else(|| bad("not a Point".into()))?;
            let (lon, lat) = match (
                coords.first().and_then(|x| x.as_f64()),
                coords.get(1).and_then(|x| x.as_f64()),
            ) {
                (Some(a), Some(b)) => (a, b),
                _ => return Err(bad("coordinates are not numbers".into())),
            };
            let props = f.get("properties");
            let id = props
                .and_then(|p| p.get("id"))
                .map(|i| i.as_str().map_or(i.to_string(), str::to_string))
                .ok_or_else(|| bad("no property 'id'".into()))?;
            let t = props
                .and_then(|p| p.get("time"))
                .ok_or_else(|| bad("no property 'time'".into()))?;
            let t_s = match t {
                serde_json::Value::Number(x) => x.as_f64().unwrap_or(f64::NAN),
                serde_json::Value::String(s) => parse_time(s, start).map_err(bad)?,
                _ => return Err(bad("'time' is neither seconds nor an instant".into())),
            };
            let p = parse_lonlat(&lon.to_string(), &lat.to_string()).map_err(bad)?;
            by_id.entry(id).or_default().push((t_s, local(frame, p)));
        }
    } else {
        let rows = csv_rows(
            path,
            &[
                &["id", "vehicle", "vehicle_id", "track"],
                &["time", "t_s", "timestamp"],
                &["lon", "lng", "longitude", "x"],
                &["lat", "latitude", "y"],
            ],
        )?;
        for (line, r) in rows {
            let t_s = parse_time(&r[1], start).map_err(|m| err(path, line, m))?;
            let p = parse_lonlat(&r[2], &r[3]).map_err(|m| err(path, line, m))?;
            by_id
                .entry(r[0].clone())
                .or_default()
                .push((t_s, local(frame, p)));
        }
    }
    Ok(by_id
        .into_iter()
        .map(|(id, mut fixes)| {
            fixes.sort_by(|a, b| a.0.total_cmp(&b.0));
            Track { id, fixes }
        })
        .collect())
}

/// Read an incident log: CSV with `time`, `type`, `text` and optionally `lon`, `lat` (empty for
/// entries with no place). In time order.
pub fn read_log(
    path: &Path,
    frame: &GeoFrame,
    start: &Zoned,
) -> Result<Vec<LogEntry>, IncidentError> {
    let rows = csv_rows(
        path,
        &[
            &["time", "t_s", "timestamp"],
            &["type", "kind"],
            &["text", "message", "description"],
        ],
    )?;
    // The place columns are optional: read them separately.
    let place = csv_rows(path, &[&["lon", "lng", "longitude"], &["lat", "latitude"]]).ok();
    let mut out = Vec::with_capacity(rows.len());
    for (k, (line, r)) in rows.into_iter().enumerate() {
        let t_s = parse_time(&r[0], start).map_err(|m| err(path, line, m))?;
        let xy_m = match place.as_ref().map(|p| &p[k].1) {
            Some(p) if !p[0].is_empty() || !p[1].is_empty() => Some(local(
                frame,
                parse_lonlat(&p[0], &p[1]).map_err(|m| err(path, line, m))?,
            )),
            _ => None,
        };
        if r[1].is_empty() {
            return Err(err(path, line, "empty 'type'"));
        }
        out.push(LogEntry {
            t_s,
            xy_m,
            kind: r[1].clone(),
            text: r[2].clone(),
        });
    }
    out.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    Ok(out)
}

/// The columns of a readings file, each by its accepted names.
pub(crate) const READING_COLUMNS: &[&[&str]] = &[
    &["time", "t_s", "timestamp"],
    &["station", "sensor", "code"],
    &["quantity", "measure", "kind"],
    &["value"],
    &["unit"],
];

/// Read sensor readings: CSV with `time`, `station`, `quantity`, `value`, `unit`. In time order.
pub fn read_readings(path: &Path, start: &Zoned) -> Result<Vec<Reading>, IncidentError> {
    let rows = csv_rows(path, READING_COLUMNS)?;
    let mut out = Vec::with_capacity(rows.len());
    for (line, r) in rows {
        let value = parse_num(&r[3], "value").map_err(|m| err(path, line, m))?;
        // The unit is checked here, where the line is known; storing converts it to SI.
        observed::reading_to_si(value, &r[4]).map_err(|m| err(path, line, m))?;
        out.push(Reading {
            t_s: parse_time(&r[0], start).map_err(|m| err(path, line, m))?,
            station: r[1].clone(),
            quantity: r[2].clone(),
            value,
            unit: r[4].clone(),
        });
    }
    out.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> Zoned {
        "2026-07-15T07:30:00+08:00[Asia/Shanghai]".parse().unwrap()
    }

    #[test]
    fn csv_tracks_and_their_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let frame = GeoFrame::new(LonLat::new(117.2272, 31.8206));
        let p = dir.path().join("gps.csv");
        std::fs::write(
            &p,
            "vehicle,lat,lon,time\nb,31.8206,117.2272,10\na,31.8207,117.2272,2026-07-15T07:30:05+08:00\na,31.8206,117.2272,1\n",
        )
        .unwrap();
        let t = read_tracks(&p, &frame, &start()).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].id, "a");
        assert_eq!(t[0].fixes.len(), 2);
        assert_eq!(t[0].fixes[0].0, 1.0);
        assert_eq!(t[0].fixes[1].0, 5.0);
        // 0.0001° of latitude is about 11 m.
        assert!(
            (t[0].fixes[1].1.y - 11.08).abs() < 0.1,
            "{:?}",
            t[0].fixes[1]
        );
        std::fs::write(&p, "id,time,lon,lat\na,10,117.2,north\n").unwrap();
        let e = read_tracks(&p, &frame, &start()).unwrap_err().to_string();
        assert!(
            e.contains("gps.csv:2:") && e.contains("latitude 'north'"),
            "{e}"
        );
        std::fs::write(&p, "id,when,lon,lat\n").unwrap();
        let e = read_tracks(&p, &frame, &start()).unwrap_err().to_string();
        assert!(
            e.contains("gps.csv:1:") && e.contains("no column 'time'"),
            "{e}"
        );
    }

    #[test]
    fn a_reading_in_an_unknown_unit_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("readings.csv");
        std::fs::write(
            &p,
            "time,station,quantity,value,unit\n0,HF-RG1,rain,12,mm/h\n60,HF-RG1,rain,3,furlongs\n",
        )
        .unwrap();
        let e = read_readings(&p, &start()).unwrap_err().to_string();
        assert!(
            e.contains("readings.csv:3:") && e.contains("unknown unit 'furlongs'"),
            "{e}"
        );
    }
}
