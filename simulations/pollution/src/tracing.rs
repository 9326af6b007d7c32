//! Source tracing: which candidate sources explain what the stations measured, and how much each
//! emitted.
//!
//! Each candidate's *footprint* is what every station would have read at every reading time if
//! that candidate alone had emitted 1 kg/s (computed with the same dispersion model and weather
//! as the simulation). The readings `b` are then explained as `A·q + background` with
//! non-negative rates `q` by non-negative least squares (Lawson & Hanson 1974). The uncertainty
//! of each rate is the standard error of a least-squares fit on the sources that remain,
//! σ²·(AᵀA)⁻¹ with σ² the residual variance; for a source estimated at zero it is the standard
//! error it would have if it were freed, so "0 ± 0.02 kg/s" says how large a rate the data would
//! still hide.

/// One candidate's estimate.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct Estimate {
    /// Candidate id.
    pub id: String,
    /// Estimated emission rate, kg/s.
    pub rate_kg_s: f64,
    /// One standard error of the rate, kg/s.
    pub std_kg_s: f64,
    /// Share of the modelled readings (above background) it explains, 0–1.
    pub share: f64,
}

/// The result of tracing.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct TraceResult {
    /// Candidates, the largest share first (ties by id).
    pub estimates: Vec<Estimate>,
    /// Estimated background concentration, kg/m³ (0 when not fitted).
    pub background_kg_m3: f64,
    /// Fraction of the readings' variance the fit explains.
    pub r_squared: f64,
    /// Root-mean-square residual, kg/m³.
    pub rms_residual_kg_m3: f64,
    /// Readings used.
    pub readings: usize,
}

/// Why tracing could not run.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum TraceError {
    /// Nothing to fit.
    #[error("no readings to trace from")]
    NoReadings,
    /// No candidate sources.
    #[error("no candidate sources")]
    NoCandidates,
    /// Fewer readings than unknowns.
    #[error(
        "{readings} readings cannot determine {unknowns} unknown rates; add readings or drop candidates"
    )]
    Underdetermined {
        /// Readings.
        readings: usize,
        /// Unknowns.
        unknowns: usize,
    },
    /// Shapes disagree.
    #[error("footprint of candidate {0} has the wrong number of readings")]
    Shape(usize),
}

/// How wrong a reading may be: σ = √(absolute² + (relative·value)²), kg/m³. Both zero: every
/// reading weighs the same (ordinary least squares).
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Default)]
pub struct ErrorModel {
    /// Absolute error (an instrument's noise floor), kg/m³.
    pub absolute_kg_m3: f64,
    /// Relative error, a fraction of the value.
    pub relative: f64,
}

impl ErrorModel {
    fn is_weighted(&self) -> bool {
        self.absolute_kg_m3 > 0.0 || self.relative > 0.0
    }

    fn sigma(&self, value: f64) -> f64 {
        (self.absolute_kg_m3.powi(2) + (self.relative * value).powi(2))
            .sqrt()
            .max(1e-30)
    }
}

/// Solve min ‖A·x − b‖ subject to x ≥ 0 (Lawson–Hanson active set). `a` holds the columns.
pub fn nnls(a: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let n = a.len();
    let dot = |u: &[f64], v: &[f64]| u.iter().zip(v).map(|(p, q)| p * q).sum::<f64>();
    let mut x = vec![0.0; n];
    let mut passive = vec![false; n];
    let tol = 1e-12
        * a.iter()
            .map(|c| dot(c, c).sqrt())
            .fold(0.0, f64::max)
            .max(1e-300);
    let residual = |x: &[f64]| -> Vec<f64> {
        let mut r = b.to_vec();
        for (j, c) in a.iter().enumerate() {
            if x[j] != 0.0 {
                for (ri, ci) in r.iter_mut().zip(c) {
                    *ri -= ci * x[j];
                }
            }
        }
        r
    };
    for _outer in 0..(3 * n + 10) {
        let r = residual(&x);
        let w: Vec<f64> = a.iter().map(|c| dot(c, &r)).collect();
        let Some((jmax, &wmax)) = w
            .iter()
            .enumerate()
            .filter(|(j, _)| !passive[*j])
            .max_by(|p, q| p.1.total_cmp(q.1).then(q.0.cmp(&p.0)))
        else {
            break;
        };
        if wmax <= tol * b.iter().map(|v| v * v).sum::<f64>().sqrt() {
            break;
        }
        passive[jmax] = true;
        for _inner in 0..(3 * n + 10) {
            let set: Vec<usize> = (0..n).filter(|&j| passive[j]).collect();
            let z = least_squares(a, b, &set);
            if z.iter().all(|&v| v > 0.0) {
                for (k, &j) in set.iter().enumerate() {
                    x[j] = z[k];
                }
                break;
            }
            // Step towards z until a variable hits zero, and drop it.
            let mut alpha = f64::INFINITY;
            let mut hit = usize::MAX;
            for (k, &j) in set.iter().enumerate() {
                if z[k] <= 0.0 {
                    let a_j = x[j] / (x[j] - z[k]);
                    if a_j < alpha {
                        alpha = a_j;
                        hit = j;
                    }
                }
            }
            for (k, &j) in set.iter().enumerate() {
                x[j] += alpha * (z[k] - x[j]);
                if j == hit || x[j] <= 0.0 {
                    x[j] = 0.0;
                    passive[j] = false;
                }
            }
        }
    }
    x
}

/// 1/‖column‖ for the columns in `set` (1 for an all-zero column).
fn column_scales(a: &[Vec<f64>], set: &[usize]) -> Vec<f64> {
    set.iter()
        .map(|&j| {
            let n = a[j].iter().map(|v| v * v).sum::<f64>().sqrt();
            if n > 0.0 { 1.0 / n } else { 1.0 }
        })
        .collect()
}

/// Unconstrained least squares on the columns in `set` (normal equations, Cholesky), solved in
/// column-scaled form for conditioning.
fn least_squares(a: &[Vec<f64>], b: &[f64], set: &[usize]) -> Vec<f64> {
    let p = set.len();
    let scale = column_scales(a, set);
    let mut g = vec![0.0; p * p];
    let mut rhs = vec![0.0; p];
    for (u, &ju) in set.iter().enumerate() {
        for (v, &jv) in set.iter().enumerate().skip(u) {
            let s: f64 = a[ju].iter().zip(&a[jv]).map(|(x, y)| x * y).sum();
            g[u * p + v] = s * scale[u] * scale[v];
            g[v * p + u] = g[u * p + v];
        }
        rhs[u] = a[ju].iter().zip(b).map(|(x, y)| x * y).sum::<f64>() * scale[u];
    }
    let sol = cholesky_solve(&mut g, p, &rhs);
    sol.iter().zip(&scale).map(|(v, s)| v * s).collect()
}

/// Solve G·x = r for symmetric positive (semi)definite G (a tiny ridge keeps it solvable).
fn cholesky_solve(g: &mut [f64], p: usize, r: &[f64]) -> Vec<f64> {
    let ridge = 1e-12;
    for i in 0..p {
        g[i * p + i] += ridge;
    }
    let mut l = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..=i {
            let mut s = g[i * p + j];
            for k in 0..j {
                s -= l[i * p + k] * l[j * p + k];
            }
            if i == j {
                l[i * p + i] = s.max(1e-300).sqrt();
            } else {
                l[i * p + j] = s / l[j * p + j];
            }
        }
    }
    let mut y = vec![0.0; p];
    for i in 0..p {
        let mut s = r[i];
        for k in 0..i {
            s -= l[i * p + k] * y[k];
        }
        y[i] = s / l[i * p + i];
    }
    let mut x = vec![0.0; p];
    for i in (0..p).rev() {
        let mut s = y[i];
        for k in i + 1..p {
            s -= l[k * p + i] * x[k];
        }
        x[i] = s / l[i * p + i];
    }
    x
}

/// Diagonal of (AᵀA)⁻¹ over the columns in `set`, computed on unit-norm columns (footprints are
/// ~1e-9 and a background column is 1: unscaled, the Gram matrix spans 18 orders of magnitude).
fn inverse_diagonal(a: &[Vec<f64>], set: &[usize]) -> Vec<f64> {
    let p = set.len();
    let scale = column_scales(a, set);
    let mut gram = vec![0.0; p * p];
    for (x, &jx) in set.iter().enumerate() {
        for (y, &jy) in set.iter().enumerate() {
            gram[x * p + y] =
                a[jx].iter().zip(&a[jy]).map(|(m, n)| m * n).sum::<f64>() * scale[x] * scale[y];
        }
    }
    (0..p)
        .map(|u| {
            let mut g = gram.clone();
            let mut e = vec![0.0; p];
            e[u] = 1.0;
            cholesky_solve(&mut g, p, &e)[u] * scale[u] * scale[u]
        })
        .collect()
}

/// Trace sources: `footprints[j][i]` is station reading `i` per kg/s of candidate `j`
/// (kg/m³ per kg/s), `readings[i]` the measured value (kg/m³). With `background`, a constant
/// non-negative background concentration is fitted too.
pub fn trace(
    ids: &[String],
    footprints: &[Vec<f64>],
    readings: &[f64],
    background: bool,
    errors: ErrorModel,
) -> Result<TraceResult, TraceError> {
    let m = readings.len();
    if m == 0 {
        return Err(TraceError::NoReadings);
    }
    if footprints.is_empty() {
        return Err(TraceError::NoCandidates);
    }
    if let Some(j) = footprints.iter().position(|f| f.len() != m) {
        return Err(TraceError::Shape(j));
    }
    let mut cols: Vec<Vec<f64>> = footprints.to_vec();
    if background {
        cols.push(vec![1.0; m]);
    }
    let unknowns = cols.len();
    if m < unknowns {
        return Err(TraceError::Underdetermined {
            readings: m,
            unknowns,
        });
    }
    // Iteratively reweighted: each reading weighs 1/σᵢ with σᵢ from the error model at the
    // modelled value (not the reading, which would favour readings that happen to be low).
    let model_of = |x: &[f64]| -> Vec<f64> {
        (0..m)
            .map(|i| cols.iter().zip(x).map(|(c, q)| c[i] * q).sum())
            .collect()
    };
    let mut x = nnls(&cols, readings);
    let mut weights = vec![1.0; m];
    if errors.is_weighted() {
        for _ in 0..5 {
            let fit = model_of(&x);
            weights = fit.iter().map(|&f| 1.0 / errors.sigma(f)).collect();
            let wcols: Vec<Vec<f64>> = cols
                .iter()
                .map(|c| c.iter().zip(&weights).map(|(v, w)| v * w).collect())
                .collect();
            let wb: Vec<f64> = readings.iter().zip(&weights).map(|(v, w)| v * w).collect();
            x = nnls(&wcols, &wb);
        }
    }
    let modelled = model_of(&x);
    let rss: f64 = modelled
        .iter()
        .zip(readings)
        .map(|(p, o)| (p - o) * (p - o))
        .sum();
    let mean = readings.iter().sum::<f64>() / m as f64;
    let tss: f64 = readings.iter().map(|o| (o - mean) * (o - mean)).sum();
    let wcols: Vec<Vec<f64>> = cols
        .iter()
        .map(|c| c.iter().zip(&weights).map(|(v, w)| v * w).collect())
        .collect();
    let wrss: f64 = modelled
        .iter()
        .zip(readings)
        .zip(&weights)
        .map(|((p, o), w)| ((p - o) * w).powi(2))
        .sum();
    let active: Vec<usize> = (0..unknowns).filter(|&j| x[j] > 0.0).collect();
    let dof = m.saturating_sub(active.len()).max(1);
    let sigma2 = wrss / dof as f64;
    let cols = wcols;
    let diag = inverse_diagonal(&cols, &active);
    let source_total: f64 = (0..footprints.len())
        .map(|j| footprints[j].iter().sum::<f64>() * x[j])
        .sum();
    let mut estimates: Vec<Estimate> = (0..footprints.len())
        .map(|j| {
            let var = match active.iter().position(|&a| a == j) {
                Some(k) => diag[k],
                None => {
                    let mut set = active.clone();
                    set.push(j);
                    *inverse_diagonal(&cols, &set).last().expect("non-empty")
                }
            };
            Estimate {
                id: ids.get(j).cloned().unwrap_or_else(|| format!("#{j}")),
                rate_kg_s: x[j],
                std_kg_s: (sigma2 * var).sqrt(),
                share: if source_total > 0.0 {
                    footprints[j].iter().sum::<f64>() * x[j] / source_total
                } else {
                    0.0
                },
            }
        })
        .collect();
    estimates.sort_by(|a, b| b.share.total_cmp(&a.share).then(a.id.cmp(&b.id)));
    Ok(TraceResult {
        estimates,
        background_kg_m3: if background { x[unknowns - 1] } else { 0.0 },
        r_squared: if tss > 0.0 { 1.0 - rss / tss } else { 1.0 },
        rms_residual_kg_m3: (rss / m as f64).sqrt(),
        readings: m,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nnls_matches_a_hand_solved_case() {
        // Columns (1,0,1), (0,1,1); b = (1, -1, 0.5): unconstrained x2 < 0, so x2 = 0 and
        // x1 = argmin (x1-1)² + 1 + (x1-0.5)² = 0.75.
        let a = vec![vec![1.0, 0.0, 1.0], vec![0.0, 1.0, 1.0]];
        let x = nnls(&a, &[1.0, -1.0, 0.5]);
        assert!((x[0] - 0.75).abs() < 1e-12 && x[1] == 0.0, "{x:?}");
    }

    #[test]
    fn exact_data_are_recovered_exactly() {
        let a: Vec<Vec<f64>> = (0..4)
            .map(|j| {
                (0..30)
                    .map(|i| ((i * (j + 2)) as f64 * 0.37).sin().abs() + 0.01)
                    .collect()
            })
            .collect();
        let truth = [0.0, 2.0, 0.5, 0.0];
        let b: Vec<f64> = (0..30)
            .map(|i| (0..4).map(|j| a[j][i] * truth[j]).sum::<f64>() + 0.3)
            .collect();
        let ids: Vec<String> = (0..4).map(|j| format!("s{j}")).collect();
        let r = trace(&ids, &a, &b, true, ErrorModel::default()).unwrap();
        assert!((r.background_kg_m3 - 0.3).abs() < 1e-9);
        assert_eq!(r.estimates[0].id, "s1");
        for e in &r.estimates {
            let j: usize = e.id[1..].parse().unwrap();
            assert!((e.rate_kg_s - truth[j]).abs() < 1e-9, "{e:?}");
        }
        assert!(r.r_squared > 0.999_999);
    }
}
