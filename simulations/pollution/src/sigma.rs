//! Dispersion coefficients σy(x), σz(x): how wide and how deep a plume is `x` metres downwind.
//!
//! Three published sets:
//! - [`Curves::PasquillGifford`]: the Pasquill–Gifford curves of Turner's workbook, in the
//!   closed form EPA's ISC3 model uses for rural sources (ISC3 User's Guide vol. II, eqs. 1-33 to
//!   1-35 and table 1-1): σy = 465.11628·x·tan(TH), TH = 0.017453293·(c − d·ln x), σz = a·x^b,
//!   x in km.
//! - [`Curves::BriggsRural`] and [`Curves::BriggsUrban`]: Briggs's (1973) interpolation
//!   formulas, open country and (from McElroy–Pooler's St. Louis data) cities, as tabulated by
//!   Hanna, Briggs & Hosker (1982) and used by ISC3's urban option.

use crate::weather::{Stability, Terrain};

/// Which dispersion curves to use.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curves {
    /// Pasquill–Gifford (Turner 1970; ISC3 rural).
    PasquillGifford,
    /// Briggs (1973), open country.
    BriggsRural,
    /// Briggs (1973) / McElroy–Pooler, cities.
    BriggsUrban,
}

/// σz never exceeds this (ISC3's cap), m.
pub const SIGMA_Z_MAX_M: f64 = 5000.0;

impl Curves {
    /// The Briggs set for a terrain.
    pub fn briggs(terrain: Terrain) -> Self {
        match terrain {
            Terrain::Rural => Curves::BriggsRural,
            Terrain::Urban => Curves::BriggsUrban,
        }
    }

    /// Parse `pasquill_gifford`, `briggs_rural`, `briggs_urban`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pasquill_gifford" => Some(Curves::PasquillGifford),
            "briggs_rural" => Some(Curves::BriggsRural),
            "briggs_urban" => Some(Curves::BriggsUrban),
            _ => None,
        }
    }

    /// (σy, σz) in m at `x_m` metres downwind (x > 0).
    pub fn sigmas(self, s: Stability, x_m: f64) -> (f64, f64) {
        let x = x_m.max(1.0);
        match self {
            Curves::PasquillGifford => (pg_sigma_y(s, x), pg_sigma_z(s, x)),
            Curves::BriggsRural => {
                let sy =
                    [0.22, 0.16, 0.11, 0.08, 0.06, 0.04][s.index()] * x / (1.0 + 0.0001 * x).sqrt();
                let sz = match s {
                    Stability::A => 0.20 * x,
                    Stability::B => 0.12 * x,
                    Stability::C => 0.08 * x / (1.0 + 0.0002 * x).sqrt(),
                    Stability::D => 0.06 * x / (1.0 + 0.0015 * x).sqrt(),
                    Stability::E => 0.03 * x / (1.0 + 0.0003 * x),
                    Stability::F => 0.016 * x / (1.0 + 0.0003 * x),
                };
                (sy, sz.min(SIGMA_Z_MAX_M))
            }
            Curves::BriggsUrban => {
                let sy =
                    [0.32, 0.32, 0.22, 0.16, 0.11, 0.11][s.index()] * x / (1.0 + 0.0004 * x).sqrt();
                let sz = match s {
                    Stability::A | Stability::B => 0.24 * x * (1.0 + 0.001 * x).sqrt(),
                    Stability::C => 0.20 * x,
                    Stability::D => 0.14 * x / (1.0 + 0.0003 * x).sqrt(),
                    Stability::E | Stability::F => 0.08 * x / (1.0 + 0.0015 * x).sqrt(),
                };
                (sy, sz.min(SIGMA_Z_MAX_M))
            }
        }
    }
}

fn pg_sigma_y(s: Stability, x_m: f64) -> f64 {
    const CD: [(f64, f64); 6] = [
        (24.1670, 2.5334),
        (18.3330, 1.8096),
        (12.5000, 1.0857),
        (8.3330, 0.72382),
        (6.2500, 0.54287),
        (4.1667, 0.36191),
    ];
    let x = x_m / 1000.0;
    let (c, d) = CD[s.index()];
    let th = 0.017_453_293 * (c - d * x.ln());
    465.116_28 * x * th.tan()
}

/// ISC3 table 1-1: (upper bound of x in km, a, b); the last row of each class is open-ended.
const PG_Z: [&[(f64, f64, f64)]; 6] = [
    &[
        (0.10, 122.800, 0.94470),
        (0.15, 158.080, 1.05420),
        (0.20, 170.220, 1.09320),
        (0.25, 179.520, 1.12620),
        (0.30, 217.410, 1.26440),
        (0.40, 258.890, 1.40940),
        (0.50, 346.750, 1.72830),
        (3.11, 453.850, 2.11660),
        (f64::INFINITY, f64::NAN, f64::NAN),
    ],
    &[
        (0.20, 90.673, 0.93198),
        (0.40, 98.483, 0.98332),
        (f64::INFINITY, 109.300, 1.09710),
    ],
    &[(f64::INFINITY, 61.141, 0.91465)],
    &[
        (0.30, 34.459, 0.86974),
        (1.00, 32.093, 0.81066),
        (3.00, 32.093, 0.64403),
        (10.00, 33.504, 0.60486),
        (30.00, 36.650, 0.56589),
        (f64::INFINITY, 44.053, 0.51179),
    ],
    &[
        (0.10, 24.260, 0.83660),
        (0.30, 23.331, 0.81956),
        (1.00, 21.628, 0.75660),
        (2.00, 21.628, 0.63077),
        (4.00, 22.534, 0.57154),
        (10.00, 24.703, 0.50527),
        (20.00, 26.970, 0.46713),
        (40.00, 35.420, 0.37615),
        (f64::INFINITY, 47.618, 0.29592),
    ],
    &[
        (0.20, 15.209, 0.81558),
        (0.70, 14.457, 0.78407),
        (1.00, 13.953, 0.68465),
        (2.00, 13.953, 0.63227),
        (3.00, 14.823, 0.54503),
        (7.00, 16.187, 0.46490),
        (15.00, 17.836, 0.41507),
        (30.00, 22.651, 0.32681),
        (60.00, 27.074, 0.27436),
        (f64::INFINITY, 34.219, 0.21716),
    ],
];

fn pg_sigma_z(s: Stability, x_m: f64) -> f64 {
    let x = x_m / 1000.0;
    let rows = PG_Z[s.index()];
    let &(_, a, b) = rows
        .iter()
        .find(|r| x <= r.0)
        .unwrap_or(&rows[rows.len() - 1]);
    if a.is_nan() {
        return SIGMA_Z_MAX_M; // class A beyond 3.11 km
    }
    (a * x.powf(b)).min(SIGMA_Z_MAX_M)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmas_grow_with_distance_and_shrink_with_stability() {
        for c in [
            Curves::PasquillGifford,
            Curves::BriggsRural,
            Curves::BriggsUrban,
        ] {
            for s in Stability::ALL {
                let mut last = (0.0, 0.0);
                for x in [50.0, 100.0, 300.0, 1000.0, 3000.0, 10_000.0] {
                    let (sy, sz) = c.sigmas(s, x);
                    assert!(sy > last.0 && sz >= last.1, "{c:?} {s:?} at {x}");
                    last = (sy, sz);
                }
            }
            for x in [100.0, 1000.0] {
                for w in Stability::ALL.windows(2) {
                    let (a, b) = (c.sigmas(w[0], x), c.sigmas(w[1], x));
                    assert!(
                        a.0 >= b.0 && a.1 >= b.1,
                        "{c:?} {:?} vs {:?} at {x}",
                        w[0],
                        w[1]
                    );
                }
            }
        }
    }

    #[test]
    fn urban_spreads_more_than_rural() {
        for s in Stability::ALL {
            let (r, u) = (
                Curves::BriggsRural.sigmas(s, 500.0),
                Curves::BriggsUrban.sigmas(s, 500.0),
            );
            assert!(u.0 > r.0 && u.1 > r.1, "{s:?}");
        }
    }
}
