//! The weather that disperses pollution: wind, Pasquill–Gifford stability, mixing height.
//!
//! Weather is constant or a time series (CSV), held from one row to the next as hourly
//! meteorology is in regulatory models. Stability is given as a Pasquill class or derived from the
//! surface wind, the sun's altitude and the cloud cover with Turner's (1970) table; the wind at
//! any height follows the power law with the exponents of EPA's ISC3 (rural and urban).

use std::path::{Path, PathBuf};

use crate::error::PollutionError;

/// Pasquill–Gifford stability classes, A (very unstable) to F (moderately stable).
#[derive(
    serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum Stability {
    /// Very unstable (strong sun, light wind).
    A,
    /// Moderately unstable.
    B,
    /// Slightly unstable.
    C,
    /// Neutral (overcast, or strong wind).
    D,
    /// Slightly stable (night, some cloud).
    E,
    /// Moderately stable (clear night, light wind).
    F,
}

impl Stability {
    /// All classes, A to F.
    pub const ALL: [Stability; 6] = [
        Stability::A,
        Stability::B,
        Stability::C,
        Stability::D,
        Stability::E,
        Stability::F,
    ];

    /// Parse `A`…`F` (either case).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "A" => Some(Stability::A),
            "B" => Some(Stability::B),
            "C" => Some(Stability::C),
            "D" => Some(Stability::D),
            "E" => Some(Stability::E),
            "F" => Some(Stability::F),
            _ => None,
        }
    }

    /// The class letter.
    pub fn as_str(self) -> &'static str {
        ["A", "B", "C", "D", "E", "F"][self as usize]
    }

    /// Index 0 (A) … 5 (F).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the class is stable (E, F).
    pub fn is_stable(self) -> bool {
        self >= Stability::E
    }

    /// Turner's (1970, Table 1) key to stability from the 10 m wind, the sun's altitude and the
    /// cloud cover in oktas (0–8). Day insolation is strong above 60° of solar altitude, moderate
    /// from 35°, slight from 15° (Turner 1964), one class weaker when more than half the sky is
    /// cloudy; an overcast sky (8 oktas) is neutral day and night. Where the table gives two
    /// classes (e.g. A–B) the more stable one is taken, which errs towards higher concentrations.
    pub fn from_conditions(wind_mps: f64, sun_altitude_deg: f64, cloud_oktas: f64) -> Self {
        use Stability::*;
        if cloud_oktas >= 8.0 {
            return D;
        }
        let w = if wind_mps < 2.0 {
            0
        } else if wind_mps < 3.0 {
            1
        } else if wind_mps < 5.0 {
            2
        } else if wind_mps < 6.0 {
            3
        } else {
            4
        };
        if sun_altitude_deg > 0.0 {
            // 0: strong, 1: moderate, 2: slight insolation, 3: below slight (low sun).
            let mut ins = if sun_altitude_deg > 60.0 {
                0
            } else if sun_altitude_deg > 35.0 {
                1
            } else if sun_altitude_deg > 15.0 {
                2
            } else {
                3
            };
            if cloud_oktas > 4.0 {
                ins += 1;
            }
            const DAY: [[Stability; 3]; 5] =
                [[A, B, B], [B, B, C], [B, C, C], [C, D, D], [C, D, D]];
            if ins >= 3 {
                // The sun too low to warm the ground: neutral, as at dawn and dusk.
                return D;
            }
            DAY[w][ins]
        } else {
            // Night: thinly overcast or ≥ 4/8 low cloud, or ≤ 3/8 cloud. Turner leaves light
            // winds blank at night; they are the most stable case.
            const NIGHT: [[Stability; 2]; 5] = [[F, F], [E, F], [D, E], [D, D], [D, D]];
            NIGHT[w][if cloud_oktas >= 4.0 { 0 } else { 1 }]
        }
    }
}

/// Terrain roughness class: which dispersion curves and wind-profile exponents apply.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Terrain {
    /// Open country.
    Rural,
    /// Built-up city (more mechanical turbulence).
    Urban,
}

impl Terrain {
    /// ISC3's wind-profile power-law exponent for a class.
    pub fn wind_exponent(self, s: Stability) -> f64 {
        match self {
            Terrain::Rural => [0.07, 0.07, 0.10, 0.15, 0.35, 0.55][s.index()],
            Terrain::Urban => [0.15, 0.15, 0.20, 0.25, 0.30, 0.30][s.index()],
        }
    }

    /// Aerodynamic roughness length, m (open grass 0.1 m, a city centre 1 m).
    pub fn roughness_m(self) -> f64 {
        match self {
            Terrain::Rural => 0.1,
            Terrain::Urban => 1.0,
        }
    }
}

/// The weather at one moment.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Weather {
    /// Wind speed at 10 m, m/s.
    pub wind_speed_mps: f64,
    /// Direction the wind blows from, degrees clockwise from north (meteorological convention).
    pub wind_from_deg: f64,
    /// Pasquill–Gifford class.
    pub stability: Stability,
    /// Height of the mixed layer, m.
    pub mixing_height_m: f64,
    /// Air temperature, K (for plume rise).
    pub air_temperature_k: f64,
}

/// Wind speeds below this are treated as this (the Gaussian models divide by the wind; regulatory
/// models do the same with calms).
pub const MIN_WIND_MPS: f64 = 1.0;

impl Weather {
    /// The unit vector the wind blows towards, in the scene frame (x east, y north).
    pub fn downwind(&self) -> [f64; 2] {
        let to = (self.wind_from_deg + 180.0).to_radians();
        [to.sin(), to.cos()]
    }

    /// Wind speed at height `z_m` from the power law, never below [`MIN_WIND_MPS`].
    pub fn wind_at(&self, z_m: f64, terrain: Terrain) -> f64 {
        let p = terrain.wind_exponent(self.stability);
        (self.wind_speed_mps * (z_m.max(1.0) / 10.0).powf(p)).max(MIN_WIND_MPS)
    }

    /// Check the values make physical sense; the error names the value.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.wind_speed_mps.is_finite() && self.wind_speed_mps >= 0.0) {
            return Err(format!(
                "wind speed {} m/s must be zero or positive",
                self.wind_speed_mps
            ));
        }
        if !self.wind_from_deg.is_finite() {
            return Err(format!(
                "wind direction {} is not a number",
                self.wind_from_deg
            ));
        }
        if !(self.mixing_height_m.is_finite() && self.mixing_height_m >= 10.0) {
            return Err(format!(
                "mixing height {} m must be at least 10 m",
                self.mixing_height_m
            ));
        }
        if !(self.air_temperature_k.is_finite() && self.air_temperature_k > 150.0) {
            return Err(format!(
                "air temperature {} K is not plausible (give kelvin)",
                self.air_temperature_k
            ));
        }
        Ok(())
    }
}

/// The sun's altitude above the horizon, degrees, at a Unix time and place (NOAA's solar
/// position equations; accurate to a fraction of a degree, plenty for a stability class).
pub fn sun_altitude_deg(unix_s: f64, lat_deg: f64, lon_deg: f64) -> f64 {
    let jd = unix_s / 86_400.0 + 2_440_587.5;
    let t = (jd - 2_451_545.0) / 36_525.0;
    let l0 = (280.46646 + t * (36_000.769_83 + 0.000_303_2 * t)).rem_euclid(360.0);
    let m = 357.529_11 + t * (35_999.050_29 - 0.000_153_7 * t);
    let mr = m.to_radians();
    let c = mr.sin() * (1.914_602 - t * (0.004_817 + 0.000_014 * t))
        + (2.0 * mr).sin() * (0.019_993 - 0.000_101 * t)
        + (3.0 * mr).sin() * 0.000_289;
    let true_long = l0 + c;
    let omega = 125.04 - 1_934.136 * t;
    let lambda = true_long - 0.005_69 - 0.004_78 * omega.to_radians().sin();
    let eps0 =
        23.0 + (26.0 + (21.448 - t * (46.815 + t * (0.000_59 - t * 0.001_813))) / 60.0) / 60.0;
    let eps = eps0 + 0.002_56 * omega.to_radians().cos();
    let decl = (eps.to_radians().sin() * lambda.to_radians().sin()).asin();
    // Equation of time, minutes.
    let e = 0.016_708_634 - t * (0.000_042_037 + 0.000_000_126_7 * t);
    let y = (eps.to_radians() / 2.0).tan().powi(2);
    let l0r = l0.to_radians();
    let eot = 4.0
        * (y * (2.0 * l0r).sin() - 2.0 * e * mr.sin() + 4.0 * e * y * mr.sin() * (2.0 * l0r).cos()
            - 0.5 * y * y * (4.0 * l0r).sin()
            - 1.25 * e * e * (2.0 * mr).sin())
        .to_degrees();
    let utc_min = (unix_s.rem_euclid(86_400.0)) / 60.0;
    let solar_min = (utc_min + eot + 4.0 * lon_deg).rem_euclid(1_440.0);
    let hour_angle = (solar_min / 4.0 - 180.0).to_radians();
    let lat = lat_deg.to_radians();
    let cos_zen = lat.sin() * decl.sin() + lat.cos() * decl.cos() * hour_angle.cos();
    90.0 - cos_zen.clamp(-1.0, 1.0).acos().to_degrees()
}

/// How a weather row gives its stability.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub enum StabilitySpec {
    /// Given directly.
    Class(Stability),
    /// From the cloud cover (oktas) with Turner's table, the sun's altitude computed for the time.
    CloudOktas(f64),
}

/// One weather record, before the stability is resolved.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct WeatherRecord {
    /// Seconds from the scene start at which the record starts to apply.
    pub from_s: f64,
    /// Wind at 10 m, m/s.
    pub wind_speed_mps: f64,
    /// Wind from, degrees from north.
    pub wind_from_deg: f64,
    /// Stability, given or derived.
    pub stability: StabilitySpec,
    /// Mixed-layer height, m.
    pub mixing_height_m: f64,
    /// Air temperature, K.
    pub air_temperature_k: f64,
}

/// Weather over a run: one record or a series, held from each record to the next.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct WeatherSeries {
    records: Vec<WeatherRecord>,
    /// Where the scene is (for the sun).
    lat_deg: f64,
    lon_deg: f64,
    /// Unix time of the scene start, s.
    start_unix_s: f64,
}

impl WeatherSeries {
    /// A series from records sorted by `from_s` (at least one), at a place and start time.
    pub fn new(
        mut records: Vec<WeatherRecord>,
        lat_deg: f64,
        lon_deg: f64,
        start_unix_s: f64,
    ) -> Self {
        records.sort_by(|a, b| a.from_s.total_cmp(&b.from_s));
        Self {
            records,
            lat_deg,
            lon_deg,
            start_unix_s,
        }
    }

    /// Constant weather.
    pub fn constant(w: Weather) -> Self {
        Self::new(
            vec![WeatherRecord {
                from_s: f64::NEG_INFINITY,
                wind_speed_mps: w.wind_speed_mps,
                wind_from_deg: w.wind_from_deg,
                stability: StabilitySpec::Class(w.stability),
                mixing_height_m: w.mixing_height_m,
                air_temperature_k: w.air_temperature_k,
            }],
            0.0,
            0.0,
            0.0,
        )
    }

    /// Whether the weather changes during a run (then steady plumes are the wrong model).
    pub fn is_constant(&self) -> bool {
        self.records.len() == 1 && matches!(self.records[0].stability, StabilitySpec::Class(_))
    }

    /// The seconds from the start at which the weather changes.
    pub fn change_times_s(&self) -> impl Iterator<Item = f64> + '_ {
        self.records.iter().skip(1).map(|r| r.from_s)
    }

    /// The weather `t_s` seconds after the scene start.
    pub fn at(&self, t_s: f64) -> Weather {
        let i = self
            .records
            .partition_point(|r| r.from_s <= t_s)
            .saturating_sub(1);
        let r = &self.records[i];
        let stability = match r.stability {
            StabilitySpec::Class(c) => c,
            StabilitySpec::CloudOktas(o) => Stability::from_conditions(
                r.wind_speed_mps,
                sun_altitude_deg(self.start_unix_s + t_s, self.lat_deg, self.lon_deg),
                o,
            ),
        };
        Weather {
            wind_speed_mps: r.wind_speed_mps,
            wind_from_deg: r.wind_from_deg,
            stability,
            mixing_height_m: r.mixing_height_m,
            air_temperature_k: r.air_temperature_k,
        }
    }

    /// Read a weather CSV: a header naming the columns, then one row per change. Columns:
    /// `time_s` (seconds from the scene start) or `time` (RFC 3339, e.g.
    /// `2026-07-15T07:30:00+08:00`), `wind_speed_mps`, `wind_from_deg`, `stability` (A–F) or
    /// `cloud_oktas` (0–8), and optionally `mixing_height_m` (default `default_mixing_m`) and
    /// `air_temperature_k` (default 293.15). Errors name the file, line and column.
    pub fn read_csv(
        path: &Path,
        lat_deg: f64,
        lon_deg: f64,
        start_unix_s: f64,
        default_mixing_m: f64,
    ) -> Result<Self, PollutionError> {
        let text = crate::csv::read_text(path, "weather file")?;
        let table = crate::csv::Table::parse(path, &text)?;
        let at = |line: usize, message: String| PollutionError::Parse {
            file: path.to_path_buf(),
            line,
            message,
        };
        table.require(&["wind_speed_mps", "wind_from_deg"])?;
        if !table.has("stability") && !table.has("cloud_oktas") {
            return Err(at(1, "no `stability` or `cloud_oktas` column".into()));
        }
        let mut records: Vec<WeatherRecord> = Vec::new();
        for row in table.rows() {
            let from_s = row.time_s(start_unix_s)?;
            let stability = match row.opt_str("stability") {
                Some(s) if !s.is_empty() => {
                    StabilitySpec::Class(Stability::parse(s).ok_or_else(|| {
                        at(
                            row.line,
                            format!("column `stability`: '{s}' is not a class A–F"),
                        )
                    })?)
                }
                _ => {
                    let o = row.f64("cloud_oktas")?;
                    if !(0.0..=8.0).contains(&o) {
                        return Err(at(
                            row.line,
                            format!("column `cloud_oktas`: {o} is not between 0 and 8"),
                        ));
                    }
                    StabilitySpec::CloudOktas(o)
                }
            };
            let rec = WeatherRecord {
                from_s,
                wind_speed_mps: row.f64("wind_speed_mps")?,
                wind_from_deg: row.f64("wind_from_deg")?,
                stability,
                mixing_height_m: row.opt_f64("mixing_height_m")?.unwrap_or(default_mixing_m),
                air_temperature_k: row.opt_f64("air_temperature_k")?.unwrap_or(293.15),
            };
            let probe = Weather {
                wind_speed_mps: rec.wind_speed_mps,
                wind_from_deg: rec.wind_from_deg,
                stability: Stability::D,
                mixing_height_m: rec.mixing_height_m,
                air_temperature_k: rec.air_temperature_k,
            };
            probe.validate().map_err(|m| at(row.line, m))?;
            if let Some(prev) = records.last()
                && rec.from_s <= prev.from_s
            {
                return Err(at(
                    row.line,
                    "times must increase from row to row".to_string(),
                ));
            }
            records.push(rec);
        }
        if records.is_empty() {
            return Err(PollutionError::Io {
                file: PathBuf::from(path),
                message: "the weather file has no rows".into(),
            });
        }
        Ok(Self::new(records, lat_deg, lon_deg, start_unix_s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turner_table_examples() {
        // Turner (1970): an overcast night is D; a sunny summer afternoon with light wind is A–B.
        assert_eq!(Stability::from_conditions(7.0, -20.0, 8.0), Stability::D);
        assert_eq!(Stability::from_conditions(1.5, 65.0, 0.0), Stability::A);
        assert_eq!(Stability::from_conditions(2.5, 65.0, 0.0), Stability::B);
        assert_eq!(Stability::from_conditions(2.5, -10.0, 1.0), Stability::F);
        assert_eq!(Stability::from_conditions(4.0, -10.0, 5.0), Stability::D);
        assert_eq!(Stability::from_conditions(7.0, 65.0, 0.0), Stability::C);
    }

    #[test]
    fn sun_altitude_at_known_moments() {
        // Solar noon near the June solstice at the Tropic of Cancer: the sun is overhead.
        // 2026-06-21 04:00 UTC at 120° E is about 12:00 local solar time.
        let t = 1_782_014_400.0; // 2026-06-21T04:00:00Z
        let alt = sun_altitude_deg(t, 23.44, 120.0);
        assert!(alt > 88.0, "altitude {alt}");
        // Midnight there: well below the horizon.
        assert!(sun_altitude_deg(t + 43_200.0, 23.44, 120.0) < -40.0);
    }

    #[test]
    fn wind_direction_is_meteorological() {
        let w = Weather {
            wind_speed_mps: 5.0,
            wind_from_deg: 270.0, // a westerly blows towards the east
            stability: Stability::D,
            mixing_height_m: 800.0,
            air_temperature_k: 293.0,
        };
        let d = w.downwind();
        assert!((d[0] - 1.0).abs() < 1e-12 && d[1].abs() < 1e-12);
        assert!((w.wind_at(10.0, Terrain::Rural) - 5.0).abs() < 1e-12);
        assert!(w.wind_at(100.0, Terrain::Urban) > w.wind_at(100.0, Terrain::Rural));
    }
}
