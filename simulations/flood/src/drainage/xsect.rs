//! Cross-section geometry as SWMM 5 computes it: area, top width and hydraulic radius by depth,
//! depth by area, the section factor `S = A·R^{2/3}` and its inverse, critical depth.
//!
//! Circular pipes use SWMM's 51-point tables (A, R, W by depth; depth and section factor by
//! area; quadratic correction in the first two intervals) with its closed forms below 4 % full,
//! so that partly full pipes behave exactly as in SWMM; open shapes and boxes are analytic.
//! Everything is per barrel, in metres.

use citytwin_engine::model::CrossSection;

use super::G;
use super::dynwave::pow23;

/// A section with its full-flow values.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Xsect {
    /// The shape.
    pub shape: CrossSection,
    /// Full depth, m.
    pub y_full: f64,
    /// Widest top width, m.
    pub w_max: f64,
    /// Full area, m².
    pub a_full: f64,
    /// Hydraulic radius when full, m.
    pub r_full: f64,
    /// Section factor when full, m^{8/3}.
    pub s_full: f64,
    /// Largest section factor (a closed section's is above full), m^{8/3}.
    pub s_max: f64,
    /// Side slope (trapezoid: mean of both; triangle: half-width per depth).
    s_bot: f64,
    /// Wetted-perimeter factor of the sides (trapezoid, triangle).
    r_bot: f64,
    /// Bottom width (trapezoid).
    y_bot: f64,
}

const N_TABLE: usize = 51;

const A_CIRC: [f64; N_TABLE] = [
    0.0, 0.00471, 0.0134, 0.024446, 0.0374, 0.05208, 0.0680, 0.08505, 0.1033, 0.12236, 0.1423,
    0.16310, 0.1845, 0.20665, 0.2292, 0.25236, 0.2759, 0.29985, 0.3242, 0.34874, 0.3736, 0.39878,
    0.4237, 0.44907, 0.4745, 0.500, 0.5255, 0.55093, 0.5763, 0.60135, 0.6264, 0.65126, 0.6758,
    0.70015, 0.7241, 0.74764, 0.7708, 0.79335, 0.8154, 0.83690, 0.8576, 0.87764, 0.8967, 0.91495,
    0.9320, 0.94792, 0.9626, 0.97555, 0.9866, 0.99516, 1.000,
];

const R_CIRC: [f64; N_TABLE] = [
    0.0100, 0.0528, 0.1048, 0.1556, 0.2052, 0.254, 0.3016, 0.3484, 0.3944, 0.4388, 0.4824, 0.5248,
    0.5664, 0.6064, 0.6456, 0.6836, 0.7204, 0.7564, 0.7912, 0.8244, 0.8568, 0.888, 0.9176, 0.9464,
    0.9736, 1.00, 1.024, 1.048, 1.070, 1.0912, 1.110, 1.1272, 1.144, 1.1596, 1.174, 1.1848, 1.194,
    1.2024, 1.210, 1.2148, 1.217, 1.2172, 1.215, 1.2104, 1.203, 1.192, 1.178, 1.1584, 1.132, 1.094,
    1.000,
];

const Y_CIRC: [f64; N_TABLE] = [
    0.0, 0.05236, 0.08369, 0.11025, 0.13423, 0.15643, 0.17755, 0.19772, 0.21704, 0.23581, 0.25412,
    0.27194, 0.28948, 0.30653, 0.32349, 0.34017, 0.35666, 0.37298, 0.38915, 0.40521, 0.42117,
    0.43704, 0.45284, 0.46858, 0.4843, 0.50000, 0.51572, 0.53146, 0.54723, 0.56305, 0.57892,
    0.59487, 0.61093, 0.62710, 0.64342, 0.65991, 0.67659, 0.69350, 0.71068, 0.72816, 0.74602,
    0.76424, 0.78297, 0.80235, 0.82240, 0.84353, 0.86563, 0.88970, 0.91444, 0.94749, 1.0,
];

const S_CIRC: [f64; N_TABLE] = [
    0.0, 0.00529, 0.01432, 0.02559, 0.03859, 0.05304, 0.06877, 0.08551, 0.10326, 0.12195, 0.14144,
    0.16162, 0.18251, 0.2041, 0.22636, 0.24918, 0.27246, 0.29614, 0.32027, 0.34485, 0.36989,
    0.39531, 0.42105, 0.44704, 0.47329, 0.4998, 0.52658, 0.55354, 0.58064, 0.60777, 0.63499,
    0.66232, 0.68995, 0.7177, 0.74538, 0.77275, 0.79979, 0.82658, 0.8532, 0.87954, 0.90546,
    0.93095, 0.95577, 0.97976, 1.00291, 1.02443, 1.04465, 1.06135, 1.08208, 1.07662, 1.0,
];

const W_CIRC: [f64; N_TABLE] = [
    0.0, 0.2800, 0.3919, 0.4750, 0.5426, 0.6000, 0.6499, 0.6940, 0.7332, 0.7684, 0.8000, 0.8285,
    0.8542, 0.8773, 0.8980, 0.9165, 0.9330, 0.9474, 0.9600, 0.9708, 0.9798, 0.9871, 0.9928, 0.9968,
    0.9992, 1.000, 0.9992, 0.9968, 0.9928, 0.9871, 0.9798, 0.9708, 0.9600, 0.9474, 0.9330, 0.9165,
    0.8980, 0.8773, 0.8542, 0.8285, 0.8000, 0.7684, 0.7332, 0.6940, 0.6499, 0.6000, 0.5426, 0.4750,
    0.3919, 0.2800, 0.0,
];

/// Fraction of a closed box's full area beyond which its top starts to close.
const RECT_ALFMAX: f64 = 0.97;
const TINY: f64 = 1e-6;
const PI: f64 = std::f64::consts::PI;

/// y at x from an evenly spaced table on [0, 1], with SWMM's quadratic correction in the first
/// two intervals.
fn lookup(x: f64, t: &[f64; N_TABLE]) -> f64 {
    let d = 1.0 / (N_TABLE - 1) as f64;
    let i = (x / d) as usize;
    if x < 0.0 {
        return t[0].max(0.0);
    }
    if i >= N_TABLE - 1 {
        return t[N_TABLE - 1];
    }
    let x0 = i as f64 * d;
    let x1 = (i + 1) as f64 * d;
    let mut y = t[i] + (x - x0) * (t[i + 1] - t[i]) / d;
    if i < 2 {
        let y2 = y + (x - x0) * (x - x1) / (d * d) * (t[i] / 2.0 - t[i + 1] + t[i + 2] / 2.0);
        if y2 > 0.0 {
            y = y2;
        }
    }
    y.max(0.0)
}

/// x at y from a table that increases (or peaks third from the end, as S_CIRC does).
fn inv_lookup(y: f64, t: &[f64; N_TABLE]) -> f64 {
    let d = 1.0 / (N_TABLE - 1) as f64;
    let mut n = N_TABLE;
    if t[N_TABLE - 3] > t[N_TABLE - 1] {
        n = N_TABLE - 2;
    }
    let i = if n < N_TABLE && y > t[N_TABLE - 1] {
        if y >= t[N_TABLE - 3] {
            return (n - 1) as f64 * d;
        }
        if y <= t[N_TABLE - 2] {
            N_TABLE - 2
        } else {
            N_TABLE - 3
        }
    } else {
        locate(y, t, n - 1)
    };
    if i >= n - 1 {
        return (n - 1) as f64 * d;
    }
    let dy = t[i + 1] - t[i];
    let x = if dy == 0.0 {
        i as f64 * d
    } else {
        i as f64 * d + (y - t[i]) * d / dy
    };
    x.clamp(0.0, 1.0)
}

/// The largest j ≤ jmax with t[j] ≤ y (bisection).
fn locate(y: f64, t: &[f64; N_TABLE], jmax: usize) -> usize {
    if y < t[0] {
        return 0;
    }
    if y > t[jmax] {
        return jmax;
    }
    let (mut lo, mut hi) = (0usize, jmax);
    while hi - lo > 1 {
        let m = (lo + hi) / 2;
        if y < t[m] { hi = m } else { lo = m }
    }
    lo
}

fn theta_of_alpha(alpha: f64) -> f64 {
    let mut theta = if alpha > 0.04 {
        1.2 + 5.08 * (alpha - 0.04) / 0.96
    } else {
        0.031715 - 12.79384 * alpha + 8.28479 * alpha.sqrt()
    };
    let theta1 = theta;
    let ap = 2.0 * PI * alpha;
    for _ in 0..40 {
        let mut d = -(ap - theta + theta.sin()) / (1.0 - theta.cos());
        if d > 1.0 {
            d = 1.0;
        }
        theta -= d;
        if d.abs() <= 1e-4 {
            return theta;
        }
    }
    theta1
}

// SWMM's piecewise first guesses (3.14 is one of them, not π).
#[allow(clippy::approx_constant)]
fn theta_of_psi(psi: f64) -> f64 {
    let mut theta = if psi > 0.90 {
        4.17 + 1.12 * (psi - 0.90) / 0.176
    } else if psi > 0.5 {
        3.14 + 1.03 * (psi - 0.5) / 0.4
    } else if psi > 0.015 {
        1.2 + 1.94 * (psi - 0.015) / 0.485
    } else {
        0.12103 - 55.5075 * psi + 15.62254 * psi.sqrt()
    };
    let theta1 = theta;
    let ap = 2.0 * PI * psi;
    for _ in 0..40 {
        theta = theta.abs();
        let tt = theta - theta.sin();
        let tt23 = tt.powf(2.0 / 3.0);
        let t3 = theta.powf(1.0 / 3.0);
        let d = (ap * theta / t3 - tt * tt23)
            / (ap * 2.0 / 3.0 / t3 - 5.0 / 3.0 * tt23 * (1.0 - theta.cos()));
        theta -= d;
        if d.abs() <= 1e-4 {
            return theta;
        }
    }
    theta1
}

fn y_circular(alpha: f64) -> f64 {
    if alpha >= 1.0 {
        return 1.0;
    }
    if alpha <= 0.0 {
        return 0.0;
    }
    if alpha <= 1e-5 {
        let theta = (37.6911 * alpha).powf(1.0 / 3.0);
        return theta * theta / 16.0;
    }
    let theta = theta_of_alpha(alpha);
    (1.0 - (theta / 2.0).cos()) / 2.0
}

fn s_circular(alpha: f64) -> f64 {
    if alpha >= 1.0 {
        return 1.0;
    }
    if alpha <= 0.0 {
        return 0.0;
    }
    if alpha <= 1e-5 {
        let theta = (37.6911 * alpha).powf(1.0 / 3.0);
        return theta.powf(13.0 / 3.0) / 124.4797;
    }
    let theta = theta_of_alpha(alpha);
    (theta - theta.sin()).powf(5.0 / 3.0) / (2.0 * PI) / theta.powf(2.0 / 3.0)
}

fn a_circular(psi: f64) -> f64 {
    if psi >= 1.0 {
        return 1.0;
    }
    if psi <= 0.0 {
        return 0.0;
    }
    if psi <= 1e-6 {
        let theta = (124.4797 * psi).powf(3.0 / 13.0);
        return theta * theta * theta / 37.6911;
    }
    let theta = theta_of_psi(psi);
    (theta - theta.sin()) / (2.0 * PI)
}

impl Xsect {
    /// The geometry of a section.
    pub fn new(shape: CrossSection) -> Self {
        let mut x = Xsect {
            shape,
            y_full: 0.0,
            w_max: 0.0,
            a_full: 0.0,
            r_full: 0.0,
            s_full: 0.0,
            s_max: 0.0,
            s_bot: 0.0,
            r_bot: 0.0,
            y_bot: 0.0,
        };
        match shape {
            CrossSection::Circular { diameter_m: d } => {
                x.y_full = d;
                x.w_max = d;
                x.a_full = PI / 4.0 * d * d;
                x.r_full = d / 4.0;
                x.s_full = x.a_full * x.r_full.powf(2.0 / 3.0);
                x.s_max = 1.08 * x.s_full;
            }
            CrossSection::Rectangular {
                width_m: w,
                height_m: h,
            } => {
                x.y_full = h;
                x.w_max = w;
                x.a_full = h * w;
                x.r_full = x.a_full / (2.0 * (h + w));
                x.s_full = x.a_full * x.r_full.powf(2.0 / 3.0);
                let a_max = RECT_ALFMAX * x.a_full;
                x.s_max = a_max * x.r_of_a(a_max).powf(2.0 / 3.0);
            }
            CrossSection::RectangularOpen {
                width_m: w,
                height_m: h,
            } => {
                x.y_full = h;
                x.w_max = w;
                x.a_full = h * w;
                x.r_full = x.a_full / (2.0 * h + w);
                x.s_full = x.a_full * x.r_full.powf(2.0 / 3.0);
                x.s_max = x.s_full;
            }
            CrossSection::Trapezoidal {
                bottom_m: b,
                height_m: h,
                left_slope: z1,
                right_slope: z2,
            } => {
                x.y_bot = b;
                x.s_bot = (z1 + z2) / 2.0;
                x.r_bot = (1.0 + z1 * z1).sqrt() + (1.0 + z2 * z2).sqrt();
                x.y_full = h;
                x.w_max = b + h * (z1 + z2);
                x.a_full = (b + x.s_bot * h) * h;
                x.r_full = x.a_full / (b + h * x.r_bot);
                x.s_full = x.a_full * x.r_full.powf(2.0 / 3.0);
                x.s_max = x.s_full;
            }
            CrossSection::Triangular {
                top_m: t,
                height_m: h,
            } => {
                x.y_full = h;
                x.w_max = t;
                x.s_bot = t / (2.0 * h);
                x.r_bot = (1.0 + x.s_bot * x.s_bot).sqrt();
                x.a_full = h * h * x.s_bot;
                x.r_full = x.a_full / (2.0 * h * x.r_bot);
                x.s_full = x.a_full * x.r_full.powf(2.0 / 3.0);
                x.s_max = x.s_full;
            }
        }
        x
    }

    /// Whether the top is open.
    pub fn is_open(&self) -> bool {
        self.shape.is_open()
    }

    /// Flow area at depth `y`, m².
    pub fn a_of_y(&self, y: f64) -> f64 {
        if y <= 0.0 {
            return 0.0;
        }
        match self.shape {
            CrossSection::Circular { .. } => self.a_full * lookup(y / self.y_full, &A_CIRC),
            CrossSection::Rectangular { width_m, .. } => y.min(self.y_full) * width_m,
            CrossSection::RectangularOpen { width_m, .. } => y * width_m,
            CrossSection::Trapezoidal { .. } => (self.y_bot + self.s_bot * y) * y,
            CrossSection::Triangular { .. } => self.s_bot * y * y,
        }
    }

    /// Top width at depth `y`, m.
    pub fn w_of_y(&self, y: f64) -> f64 {
        match self.shape {
            CrossSection::Circular { .. } => self.w_max * lookup(y / self.y_full, &W_CIRC),
            CrossSection::Rectangular { width_m, .. } => {
                if y / self.y_full >= 1.0 {
                    0.0
                } else {
                    width_m
                }
            }
            CrossSection::RectangularOpen { width_m, .. } => width_m,
            CrossSection::Trapezoidal { .. } => self.y_bot + 2.0 * self.s_bot * y,
            CrossSection::Triangular { .. } => 2.0 * self.s_bot * y,
        }
    }

    /// Hydraulic radius at depth `y`, m.
    pub fn r_of_y(&self, y: f64) -> f64 {
        if y <= 0.0 {
            return 0.0;
        }
        match self.shape {
            CrossSection::Circular { .. } => self.r_full * lookup(y / self.y_full, &R_CIRC),
            CrossSection::Trapezoidal { .. } => self.a_of_y(y) / (self.y_bot + y * self.r_bot),
            CrossSection::Triangular { .. } => y * self.s_bot / (2.0 * self.r_bot),
            _ => self.r_of_a(self.a_of_y(y)),
        }
    }

    /// Depth at area `a`, m.
    pub fn y_of_a(&self, a: f64) -> f64 {
        if a <= 0.0 {
            return 0.0;
        }
        match self.shape {
            CrossSection::Circular { .. } => {
                let alpha = a / self.a_full;
                if alpha < 0.04 {
                    self.y_full * y_circular(alpha)
                } else {
                    self.y_full * lookup(alpha, &Y_CIRC)
                }
            }
            CrossSection::Rectangular { width_m, .. }
            | CrossSection::RectangularOpen { width_m, .. } => a / width_m,
            CrossSection::Trapezoidal { .. } => {
                if self.s_bot == 0.0 {
                    a / self.y_bot
                } else {
                    ((self.y_bot * self.y_bot + 4.0 * self.s_bot * a).sqrt() - self.y_bot)
                        / (2.0 * self.s_bot)
                }
            }
            CrossSection::Triangular { .. } => (a / self.s_bot).sqrt(),
        }
    }

    /// Hydraulic radius at area `a`, m.
    pub fn r_of_a(&self, a: f64) -> f64 {
        if a <= 0.0 {
            return 0.0;
        }
        match self.shape {
            CrossSection::Circular { .. } => {
                let s = self.s_of_a(a);
                if s < TINY || a < TINY {
                    0.0
                } else {
                    let r = s / a;
                    r * r.sqrt()
                }
            }
            CrossSection::Rectangular { width_m: w, .. } => {
                let mut p = w + 2.0 * a / w;
                let alpha = a / self.a_full;
                if alpha > RECT_ALFMAX {
                    p += (alpha - RECT_ALFMAX) / (1.0 - RECT_ALFMAX) * w;
                }
                a / p
            }
            CrossSection::RectangularOpen { width_m: w, .. } => a / (w + 2.0 * a / w),
            CrossSection::Trapezoidal { .. } => a / (self.y_bot + self.y_of_a(a) * self.r_bot),
            CrossSection::Triangular { .. } => a / (2.0 * self.y_of_a(a) * self.r_bot),
        }
    }

    /// Section factor `A·R^{2/3}` at area `a`.
    pub fn s_of_a(&self, a: f64) -> f64 {
        if a <= 0.0 {
            return 0.0;
        }
        match self.shape {
            CrossSection::Circular { .. } => {
                let alpha = a / self.a_full;
                if alpha < 0.04 {
                    self.s_full * s_circular(alpha)
                } else {
                    self.s_full * lookup(alpha, &S_CIRC)
                }
            }
            CrossSection::Rectangular { .. } => {
                let alpha = a / self.a_full;
                if alpha > RECT_ALFMAX {
                    self.s_max
                        + (self.s_full - self.s_max) * (alpha - RECT_ALFMAX) / (1.0 - RECT_ALFMAX)
                } else {
                    a * pow23(self.r_of_a(a))
                }
            }
            _ => {
                let r = self.r_of_a(a);
                if r < TINY { 0.0 } else { a * pow23(r) }
            }
        }
    }

    /// The area at maximum flow (SWMM's `Amax`), m².
    fn a_max(&self) -> f64 {
        match self.shape {
            CrossSection::Circular { .. } => 0.9756 * self.a_full,
            CrossSection::Rectangular { .. } => RECT_ALFMAX * self.a_full,
            _ => self.a_full,
        }
    }

    /// Area at section factor `s` (the smaller root where two exist), m².
    pub fn a_of_s(&self, s: f64) -> f64 {
        if s <= 0.0 {
            return 0.0;
        }
        let s = s.min(self.s_max);
        match self.shape {
            CrossSection::Circular { .. } => {
                let psi = s / self.s_full;
                if psi >= 1.0 {
                    self.a_full
                } else if psi <= 0.015 {
                    self.a_full * a_circular(psi)
                } else {
                    self.a_full * inv_lookup(psi, &S_CIRC)
                }
            }
            _ => {
                if s >= self.s_full && self.is_open() {
                    return self.a_full;
                }
                // S(a) rises from 0 to s_max at a_max (and falls to s_full at a_full for a
                // box): Newton with SWMM's dS/dA, kept inside a bisection bracket on the rising
                // branch (SWMM's rtsafe; its tolerance is 1e-4 of the full area, this 1e-6).
                let (mut lo, mut hi) = (0.0, self.a_max());
                if self.s_of_a(hi) < s {
                    return hi;
                }
                let tol = 1e-6 * self.a_full;
                let mut a = (self.a_full * (s / self.s_full).powf(0.6)).clamp(lo, hi);
                for _ in 0..60 {
                    let f = self.s_of_a(a) - s;
                    if f < 0.0 {
                        lo = a;
                    } else {
                        hi = a;
                    }
                    let df = self.ds_da(a);
                    let mut next = if df > 0.0 { a - f / df } else { f64::NAN };
                    if !(next > lo && next < hi) {
                        next = 0.5 * (lo + hi);
                    }
                    let step = (next - a).abs();
                    a = next;
                    if step < tol || hi - lo < tol {
                        break;
                    }
                }
                a
            }
        }
    }

    /// dS/dA for the analytic shapes: `(5/3 − 2/3·dP/dA·R)·R^{2/3}` (SWMM's formulas).
    fn ds_da(&self, a: f64) -> f64 {
        let r = self.r_of_a(a);
        if r <= 0.0 {
            return 0.0;
        }
        let dpda = match self.shape {
            CrossSection::Rectangular { width_m: w, .. } => {
                if a / self.a_full > RECT_ALFMAX {
                    return (self.s_full - self.s_max) / ((1.0 - RECT_ALFMAX) * self.a_full);
                }
                2.0 / w
            }
            CrossSection::RectangularOpen { width_m: w, .. } => 2.0 / w,
            CrossSection::Trapezoidal { .. } => {
                self.r_bot / (self.y_bot * self.y_bot + 4.0 * self.s_bot * a).sqrt()
            }
            CrossSection::Triangular { .. } => self.r_bot / (a * self.s_bot).sqrt(),
            CrossSection::Circular { .. } => return 0.0,
        };
        (5.0 / 3.0 - 2.0 / 3.0 * dpda * r) * pow23(r)
    }

    /// The critical flow at depth `y` (Froude number 1), m³/s.
    fn q_critical(&self, y: f64) -> f64 {
        let a = self.a_of_y(y);
        let w = self.w_of_y(y);
        if w > 0.0 { a * (G * a / w).sqrt() } else { 0.0 }
    }

    /// Critical depth for flow `q` (per barrel), m.
    pub fn y_critical(&self, q: f64) -> f64 {
        let q2g = q * q / G;
        if q2g == 0.0 {
            return 0.0;
        }
        let y = match self.shape {
            CrossSection::Rectangular { .. } | CrossSection::RectangularOpen { .. } => {
                (q2g / (self.w_max * self.w_max)).powf(1.0 / 3.0)
            }
            CrossSection::Triangular { .. } => {
                (2.0 * q2g / (self.s_bot * self.s_bot)).powf(1.0 / 5.0)
            }
            _ => {
                let mut y0 = 1.01 * (q2g / self.y_full).powf(0.25);
                if y0 >= self.y_full {
                    y0 = 0.97 * self.y_full;
                }
                let r = self.a_full / (PI / 4.0 * self.y_full * self.y_full);
                if (0.5..=2.0).contains(&r) {
                    self.y_crit_enum(q, y0)
                } else {
                    self.y_crit_ridder(q, y0)
                }
            }
        };
        y.min(self.y_full)
    }

    /// SWMM's enumeration of critical flows at 25 depth levels, interpolated.
    fn y_crit_enum(&self, q: f64, y0: f64) -> f64 {
        let dy = self.y_full / 25.0;
        let i1 = ((y0 / dy) as i64).clamp(0, 25);
        let mut q0 = self.q_critical(i1 as f64 * dy);
        if q0 < q {
            for i in (i1 + 1)..=25 {
                let qc = self.q_critical(i as f64 * dy);
                if qc >= q {
                    return ((q - q0) / (qc - q0) + (i - 1) as f64) * dy;
                }
                q0 = qc;
            }
            self.y_full
        } else {
            for i in (0..i1).rev() {
                let qc = self.q_critical(i as f64 * dy);
                if qc < q {
                    return ((q - qc) / (q0 - qc) + i as f64) * dy;
                }
                q0 = qc;
            }
            0.0
        }
    }

    /// Critical depth by bracketing (Ridder's method in SWMM; bisection to the same tolerance).
    fn y_crit_ridder(&self, q: f64, y0: f64) -> f64 {
        let (mut y1, mut y2) = (0.0, 0.99 * self.y_full);
        if self.q_critical(y2) < q {
            return self.y_full;
        }
        let q0 = self.q_critical(y0);
        let q1 = self.q_critical(self.y_full / 2.0);
        if q0 > q {
            y2 = y0;
            if q1 < q {
                y1 = self.y_full / 2.0;
            }
        } else {
            y1 = y0;
            if q1 > q {
                y2 = self.y_full / 2.0;
            }
        }
        let tol = 0.001 * super::FT;
        for _ in 0..60 {
            let m = 0.5 * (y1 + y2);
            if self.q_critical(m) < q {
                y1 = m;
            } else {
                y2 = m;
            }
            if y2 - y1 < tol {
                break;
            }
        }
        0.5 * (y1 + y2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circular_matches_the_exact_geometry() {
        // Half full: area, width and radius exactly; a segment by its angle elsewhere.
        let x = Xsect::new(CrossSection::Circular { diameter_m: 1.0 });
        assert!((x.a_of_y(0.5) - PI / 8.0).abs() < 1e-9);
        assert!((x.w_of_y(0.5) - 1.0).abs() < 1e-12);
        assert!((x.r_of_y(0.5) - 0.25).abs() < 1e-12);
        for &f in &[0.1, 0.3, 0.7, 0.9] {
            let theta = 2.0 * (1.0f64 - 2.0 * f).acos();
            let exact = (theta - theta.sin()) / 8.0;
            let a = x.a_of_y(f);
            assert!((a - exact).abs() < 0.006 * exact, "{f}: {a} vs {exact}");
            // Depth from area inverts it.
            assert!((x.y_of_a(a) - f).abs() < 0.003, "{f}");
        }
    }

    #[test]
    fn section_factor_inverts() {
        for shape in [
            CrossSection::Circular { diameter_m: 0.8 },
            CrossSection::Rectangular {
                width_m: 2.0,
                height_m: 1.0,
            },
            CrossSection::Trapezoidal {
                bottom_m: 1.0,
                height_m: 1.5,
                left_slope: 2.0,
                right_slope: 1.0,
            },
            CrossSection::Triangular {
                top_m: 2.0,
                height_m: 1.0,
            },
            CrossSection::RectangularOpen {
                width_m: 3.0,
                height_m: 1.0,
            },
        ] {
            let x = Xsect::new(shape);
            for &f in &[0.05, 0.2, 0.5, 0.8] {
                let a = f * x.a_full;
                let s = x.s_of_a(a);
                let back = x.a_of_s(s);
                assert!(
                    (back - a).abs() < 0.01 * x.a_full,
                    "{shape:?} {f}: {back} vs {a}"
                );
            }
        }
    }

    #[test]
    fn critical_depth_gives_froude_one() {
        let x = Xsect::new(CrossSection::Trapezoidal {
            bottom_m: 2.0,
            height_m: 2.0,
            left_slope: 1.5,
            right_slope: 1.5,
        });
        let q = 3.0;
        let y = x.y_critical(q);
        let fr = q / x.a_of_y(y) / (G * x.a_of_y(y) / x.w_of_y(y)).sqrt();
        assert!((fr - 1.0).abs() < 0.02, "Fr {fr}");
        let r = Xsect::new(CrossSection::RectangularOpen {
            width_m: 3.0,
            height_m: 2.0,
        });
        let yc = r.y_critical(4.0);
        assert!((yc - (16.0 / 9.0 / G).powf(1.0 / 3.0)).abs() < 1e-12);
    }
}
