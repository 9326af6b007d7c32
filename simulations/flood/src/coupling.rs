//! The street and the sewer exchange water at manholes (dual drainage).
//!
//! Each manhole inside the grid is tied to the surface cell it sits in (the nearest open cell
//! if a building covers it). Every step:
//!
//! - **capture**: water standing on the cell enters the manhole's inlet — as a free weir over
//!   the inlet's perimeter while the water is shallow, `Q = c_w·P·√(2g)·h^{3/2}`, and as an
//!   orifice through its area once that gives less, `Q = c_o·A·√(2g·h)` (the two regimes of
//!   inlet capture; c_w = 0.5 and c_o = 0.6 by default, as in Leandro & Martins 2016 and
//!   Rubinato et al. 2017's laboratory calibration); when the sewer's head is above the street
//!   bed the orifice works on the head difference instead; a manhole already full captures
//!   nothing. What is taken is never more than the cell holds;
//! - **spill**: water the sewer cannot hold leaves the manhole over its rim (SWMM's node
//!   flooding) and is put back on the same cell, where the 2D scheme carries it on.
//!
//! Both moves are exact volumes counted on both sides (the surface's exchange total and the
//! drainage model's surface inflow and flooding), so the coupled system conserves water.

/// Standard gravity, m/s².
const G: f64 = 9.80665;

/// Inlet coefficients.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct InletCoeffs {
    /// Weir coefficient (dimensionless, on `P·√(2g)·h^{3/2}`).
    pub weir: f64,
    /// Orifice coefficient.
    pub orifice: f64,
}

impl Default for InletCoeffs {
    fn default() -> Self {
        Self {
            weir: 0.5,
            orifice: 0.6,
        }
    }
}

/// A manhole's inlet on the street.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Inlet {
    /// Drainage node index.
    pub node: usize,
    /// Surface cell index.
    pub cell: usize,
    /// Inlet area, m².
    pub area_m2: f64,
    /// Inlet perimeter (weir length), m.
    pub perimeter_m: f64,
}

/// Capture rate into an inlet, m³/s: `depth_m` water on the cell over its bed at
/// `bed_m`, the sewer's head `node_head_m` at the manhole, `full` whether the manhole is at its
/// rim already.
pub fn capture_m3s(
    inlet: &Inlet,
    c: InletCoeffs,
    depth_m: f64,
    bed_m: f64,
    node_head_m: f64,
    full: bool,
) -> f64 {
    if full || depth_m <= 1e-4 {
        return 0.0;
    }
    let g2 = (2.0 * G).sqrt();
    let surface = bed_m + depth_m;
    if node_head_m < bed_m {
        let weir = c.weir * inlet.perimeter_m * g2 * depth_m.powf(1.5);
        let orifice = c.orifice * inlet.area_m2 * g2 * depth_m.sqrt();
        weir.min(orifice)
    } else if node_head_m < surface {
        c.orifice * inlet.area_m2 * g2 * (surface - node_head_m).sqrt()
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inlet() -> Inlet {
        Inlet {
            node: 0,
            cell: 0,
            area_m2: 0.5,
            perimeter_m: 3.0,
        }
    }

    #[test]
    fn shallow_water_spills_over_the_rim_as_a_weir_deep_water_through_the_opening() {
        let c = InletCoeffs::default();
        // Shallow: weir.
        let q = capture_m3s(&inlet(), c, 0.02, 10.0, 8.0, false);
        let weir = 0.5 * 3.0 * (2.0 * 9.80665f64).sqrt() * 0.02f64.powf(1.5);
        assert!((q - weir).abs() < 1e-9, "{q} vs {weir}");
        // Deep: orifice, smaller than the weir would give.
        let q = capture_m3s(&inlet(), c, 0.5, 10.0, 8.0, false);
        let orifice = 0.6 * 0.5 * (2.0 * 9.80665f64 * 0.5).sqrt();
        assert!((q - orifice).abs() < 1e-9);
        // The transition is continuous: weir = orifice at h = c_o·A / (c_w·P).
        let h = 0.6 * 0.5 / (0.5 * 3.0f64);
        let a = capture_m3s(&inlet(), c, h * 0.999, 10.0, 8.0, false);
        let b = capture_m3s(&inlet(), c, h * 1.001, 10.0, 8.0, false);
        // ±0.1 % in depth moves the weir 0.15 % and the orifice 0.05 %: no jump between them.
        assert!((a - b).abs() < 2.5e-3 * a, "{a} vs {b}");
    }

    #[test]
    fn a_backed_up_sewer_takes_less_and_a_full_one_none() {
        let c = InletCoeffs::default();
        let free = capture_m3s(&inlet(), c, 0.3, 10.0, 8.0, false);
        let submerged = capture_m3s(&inlet(), c, 0.3, 10.0, 10.2, false);
        assert!(submerged < free && submerged > 0.0);
        assert_eq!(capture_m3s(&inlet(), c, 0.3, 10.0, 10.4, false), 0.0);
        assert_eq!(capture_m3s(&inlet(), c, 0.3, 10.0, 8.0, true), 0.0);
        assert_eq!(capture_m3s(&inlet(), c, 0.0, 10.0, 8.0, false), 0.0);
    }
}
