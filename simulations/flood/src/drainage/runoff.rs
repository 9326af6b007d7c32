//! Rainfall–runoff as EPA SWMM 5.2 computes it: each subcatchment is three nonlinear
//! reservoirs (impervious without and with depression storage, pervious), integrated by an
//! adaptive Cash–Karp Runge–Kutta step, with Horton, modified Horton, Green–Ampt, modified
//! Green–Ampt or curve-number infiltration on the pervious part, internal routing between the
//! parts and run-on between subcatchments. SI inside (m, s, m/s); SWMM's unit-bound constants
//! are converted where they appear.

use super::FT;
use super::spec::{Infiltration, Outlet, SubareaRouting, SubcatchSpec};

/// Manning's constant of overland flow (SWMM's 1.49, US units) for metres.
const MCOEFF: f64 = 1.49;
/// x^{5/3} (SWMM writes the exponent as 1.6666667: the difference is a part in 10⁸).
#[inline]
fn pow53(x: f64) -> f64 {
    x * super::dynwave::pow23(x)
}
const ODETOL: f64 = 1e-4;
const ZERO: f64 = 1e-10;

/// SWMM's overland-flow coefficient in SI: `q = alpha·d^{5/3}` with `alpha = k·W/A·√S/n`.
fn manning_si() -> f64 {
    MCOEFF * FT.powf(1.0 / 3.0)
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
struct Subarea {
    n: f64,
    ds: f64,
    f_area: f64,
    alpha: f64,
    /// Fraction of its runoff leaving the subcatchment.
    f_outlet: f64,
    /// Where the rest goes (an index of another subarea).
    route_to: Option<usize>,
    depth: f64,
    /// Inflow (run-on) rate this step, m/s.
    inflow: f64,
    /// Runoff rate at the end of the step, m/s.
    runoff: f64,
}

/// Infiltration state of a subcatchment's pervious area.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
enum InfilState {
    None,
    Horton {
        f0: f64,
        fmin: f64,
        kd: f64,
        regen: f64,
        fmax: f64,
        modified: bool,
        tp: f64,
        fe: f64,
        fmh: f64,
    },
    GreenAmpt {
        s: f64,
        ks: f64,
        imd_max: f64,
        lu: f64,
        modified: bool,
        imd: f64,
        f: f64,
        fu: f64,
        sat: bool,
        t: f64,
    },
    CurveNumber {
        smax: f64,
        regen: f64,
        tmax: f64,
        s: f64,
        p: f64,
        f_total: f64,
        t: f64,
        se: f64,
        f: f64,
    },
}

/// One subcatchment's runoff state.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct Catchment {
    /// Name.
    pub name: String,
    /// Its gauge.
    pub gauge: Option<usize>,
    /// Where it drains.
    pub outlet: Outlet,
    /// Area, m².
    pub area: f64,
    subareas: [Subarea; 3],
    infil: InfilState,
    /// Run-on this step, m/s.
    runon: f64,
    /// Runoff at the start of the step, m³/s.
    pub old_runoff: f64,
    /// Runoff at the end of the step, m³/s.
    pub new_runoff: f64,
    /// Rain this step, m/s.
    pub rainfall: f64,
}

/// Totals of the runoff continuity, m³.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct RunoffTotals {
    /// Rain on the subcatchments.
    pub rainfall_m3: f64,
    /// Evaporated.
    pub evap_m3: f64,
    /// Infiltrated.
    pub infil_m3: f64,
    /// Run off into nodes.
    pub runoff_m3: f64,
    /// Left on the surface at the end.
    pub final_storage_m3: f64,
}

impl RunoffTotals {
    /// (in − out) / in, percent.
    pub fn error_pct(&self) -> f64 {
        let inflow = self.rainfall_m3;
        let out = self.evap_m3 + self.infil_m3 + self.runoff_m3 + self.final_storage_m3;
        if (inflow - out).abs() < 0.03 {
            0.0
        } else if inflow > 0.0 {
            100.0 * (1.0 - out / inflow)
        } else {
            0.0
        }
    }
}

const IMPERV0: usize = 0;
const IMPERV1: usize = 1;
const PERV: usize = 2;

impl Catchment {
    /// Build from its spec.
    pub fn new(s: &SubcatchSpec) -> Self {
        let p = &s.params;
        let fi = p.imperv_frac.min(1.0);
        let mk = |n: f64, ds: f64, f_area: f64, a_group: f64| {
            let alpha = if a_group > 0.0 && n > 0.0 {
                manning_si() * p.width_m / a_group * p.slope.sqrt() / n
            } else {
                0.0
            };
            Subarea {
                n,
                ds,
                f_area,
                alpha,
                f_outlet: 1.0,
                route_to: None,
                depth: 0.0,
                inflow: 0.0,
                runoff: 0.0,
            }
        };
        let a_imp = fi * p.area_m2;
        let a_perv = (1.0 - fi) * p.area_m2;
        let mut sub = [
            mk(p.n_imperv, 0.0, fi * p.frac_zero_ds, a_imp),
            mk(
                p.n_imperv,
                p.ds_imperv_m,
                fi * (1.0 - p.frac_zero_ds),
                a_imp,
            ),
            mk(p.n_perv, p.ds_perv_m, 1.0 - fi, a_perv),
        ];
        let mut k = p.route_to;
        if fi == 0.0 || fi == 1.0 {
            k = SubareaRouting::Outlet;
        }
        match k {
            SubareaRouting::Impervious => {
                sub[PERV].route_to = Some(IMPERV1);
                sub[PERV].f_outlet = 1.0 - p.frac_routed;
            }
            SubareaRouting::Pervious => {
                for s in &mut sub[IMPERV0..=IMPERV1] {
                    s.route_to = Some(PERV);
                    s.f_outlet = 1.0 - p.frac_routed;
                }
            }
            SubareaRouting::Outlet => {}
        }
        let infil = match p.infiltration {
            Infiltration::Horton {
                f0_mps,
                fc_mps,
                decay_per_s,
                dry_time_s,
                max_volume_m,
                modified,
            } => {
                let dry = if dry_time_s <= 0.0 {
                    1e-6 * 86_400.0
                } else {
                    dry_time_s
                };
                InfilState::Horton {
                    f0: f0_mps,
                    fmin: fc_mps,
                    kd: decay_per_s,
                    regen: -(0.02f64.ln()) / dry,
                    fmax: max_volume_m,
                    modified,
                    tp: 0.0,
                    fe: 0.0,
                    fmh: 0.0,
                }
            }
            Infiltration::GreenAmpt {
                suction_m,
                ksat_mps,
                deficit,
                modified,
            } => {
                // Mein's upper-zone depth from Ks in in/h, in feet (SWMM's formula), to m.
                let ks_in_h = ksat_mps / 0.0254 * 3600.0;
                let lu = 4.0 * ks_in_h.sqrt() / 12.0 * FT;
                InfilState::GreenAmpt {
                    s: suction_m,
                    ks: ksat_mps,
                    imd_max: deficit,
                    lu,
                    modified,
                    imd: deficit,
                    f: 0.0,
                    fu: 0.0,
                    sat: false,
                    t: 0.0,
                }
            }
            Infiltration::CurveNumber { cn, dry_time_s } => {
                let cn = cn.clamp(10.0, 99.0);
                let smax = (1000.0 / cn - 10.0) * 0.0254;
                let regen = if dry_time_s > 0.0 {
                    1.0 / dry_time_s
                } else {
                    0.0
                };
                let tmax = if regen > 0.0 {
                    0.06 / regen
                } else {
                    f64::INFINITY
                };
                InfilState::CurveNumber {
                    smax,
                    regen,
                    tmax,
                    s: smax,
                    p: 0.0,
                    f_total: 0.0,
                    t: 0.0,
                    se: smax,
                    f: 0.0,
                }
            }
        };
        let infil = if a_perv > 0.0 {
            infil
        } else {
            InfilState::None
        };
        Self {
            name: s.name.clone(),
            gauge: None,
            outlet: p.outlet,
            area: p.area_m2,
            subareas: sub,
            infil,
            runon: 0.0,
            old_runoff: 0.0,
            new_runoff: 0.0,
            rainfall: 0.0,
        }
    }

    /// Water on its surface, m³.
    pub fn stored_m3(&self) -> f64 {
        self.subareas
            .iter()
            .map(|s| s.depth * s.f_area * self.area)
            .sum()
    }

    /// Runoff at fraction `f` of the last runoff step, m³/s.
    pub fn weighted_outflow(&self, f: f64) -> f64 {
        if self.area == 0.0 {
            0.0
        } else {
            (1.0 - f) * self.old_runoff + f * self.new_runoff
        }
    }

    /// One runoff step of `dt` with rain `rain` (m/s) and evaporation `evap` (m/s); adds to
    /// `totals` and returns the runoff rate over the area (m/s) for SWMM's "has runoff" test.
    fn step(
        &mut self,
        dt: f64,
        rain: f64,
        evap: f64,
        drains_to_node: bool,
        totals: &mut RunoffTotals,
    ) -> f64 {
        if self.area == 0.0 {
            return 0.0;
        }
        self.rainfall = rain;
        let (mut vevap, mut vinfil, mut voutflow) = (0.0, 0.0, 0.0);
        let mut runoff_total = 0.0;
        for i in 0..3 {
            let a = self.area * self.subareas[i].f_area;
            let q =
                self.subarea_runoff(i, a, rain, evap, dt, &mut vevap, &mut vinfil, &mut voutflow);
            runoff_total += q * a;
        }
        self.new_runoff = voutflow / dt;
        totals.rainfall_m3 += rain * dt * self.area;
        totals.evap_m3 += vevap;
        totals.infil_m3 += vinfil;
        if drains_to_node {
            totals.runoff_m3 += voutflow;
        }
        runoff_total / self.area
    }

    #[allow(clippy::too_many_arguments)]
    fn subarea_runoff(
        &mut self,
        i: usize,
        a: f64,
        precip: f64,
        evap: f64,
        dt: f64,
        vevap: &mut f64,
        vinfil: &mut f64,
        voutflow: &mut f64,
    ) -> f64 {
        if a == 0.0 {
            return 0.0;
        }
        let depth0 = self.subareas[i].depth;
        let mut surf_moisture = depth0 / dt;
        let surf_evap = surf_moisture.min(evap);
        let infil = if i == PERV {
            let runon = self.subareas[i].inflow;
            self.infiltrate(dt, precip, runon, depth0)
        } else {
            0.0
        };
        let s = &mut self.subareas[i];
        s.inflow += precip;
        surf_moisture += s.inflow;
        *vevap += surf_evap * a * dt;
        *vinfil += infil * a * dt;
        let mut t_runoff = dt;
        if surf_evap + infil >= surf_moisture {
            s.depth = 0.0;
        } else {
            let ix = s.inflow - surf_evap - infil;
            update_ponded_depth(s, ix, &mut t_runoff);
        }
        // Runoff rate at the end of the step.
        let x = s.depth - s.ds;
        let q = if x > ZERO {
            if s.n > 0.0 {
                s.alpha * pow53(x)
            } else {
                let q = x / t_runoff;
                s.depth = s.ds;
                q
            }
        } else {
            0.0
        };
        s.runoff = q;
        *voutflow += s.f_outlet * q * a * dt;
        q
    }

    /// Infiltration rate this step, m/s (`irate` rain, `runon` m/s, `depth` ponded at the start).
    fn infiltrate(&mut self, dt: f64, irate: f64, runon: f64, depth: f64) -> f64 {
        match &mut self.infil {
            InfilState::None => 0.0,
            InfilState::Horton {
                f0,
                fmin,
                kd,
                regen,
                fmax,
                modified,
                tp,
                fe,
                fmh,
            } => {
                let fa = irate + runon + depth / dt;
                let df = *f0 - *fmin;
                let kr = *regen;
                if df < 0.0 || *kd < 0.0 || kr < 0.0 {
                    return 0.0;
                }
                if df == 0.0 || *kd == 0.0 {
                    return f0.min(fa).max(0.0);
                }
                if *modified {
                    let mut f = 0.0;
                    if fa > ZERO {
                        if *fmax > 0.0 && *fe >= *fmax {
                            return 0.0;
                        }
                        let fp = (*f0 - *kd * *fe).max(*fmin);
                        f = fa.min(fp);
                        if *fmax > 0.0 && *fmh + f * dt > *fmax {
                            f = ((*fmax - *fmh) / dt).max(0.0);
                        }
                        *fmh += f * dt;
                        *fe += (f - *fmin).max(0.0) * dt;
                    } else if kr > 0.0 {
                        *fe = (*fe * (-kr * dt).exp()).max(0.0);
                        *fmh = (*fmh * (-kr * dt).exp()).max(0.0);
                    }
                    return f;
                }
                let mut fp = 0.0;
                if fa > ZERO {
                    let t1 = *tp + dt;
                    let tlim = 16.0 / *kd;
                    let (fcum_p, fcum_1) = if *tp >= tlim {
                        let p = *fmin * *tp + df / *kd;
                        (p, p + *fmin * dt)
                    } else {
                        (
                            *fmin * *tp + df / *kd * (1.0 - (-*kd * *tp).exp()),
                            *fmin * t1 + df / *kd * (1.0 - (-*kd * t1).exp()),
                        )
                    };
                    fp = ((fcum_1 - fcum_p) / dt).max(*fmin).min(fa);
                    if t1 > tlim || fp < fa {
                        *tp = t1;
                    } else {
                        // Supply-limited: find the time on the capacity curve with the same
                        // cumulative infiltration (Newton).
                        let f1 = fcum_p + fp * dt;
                        *tp += dt / 2.0;
                        for _ in 0..20 {
                            let ex = (-(*kd * *tp).min(60.0)).exp();
                            let r = (*fmin * *tp + df / *kd * (1.0 - ex) - f1) / (*fmin + df * ex);
                            *tp -= r;
                            if r.abs() <= 0.001 * dt {
                                break;
                            }
                        }
                    }
                    if *fmax > 0.0 {
                        if *fe + fp * dt > *fmax {
                            fp = (*fmax - *fe) / dt;
                        }
                        fp = fp.max(0.0);
                        *fe += fp * dt;
                    }
                } else if kr > 0.0 {
                    let r = 1.0 - (-kr * dt).exp() * (1.0 - (-*kd * *tp).exp());
                    *tp = -(r.max(1e-300)).ln() / *kd;
                    if *fmax > 0.0 {
                        *fe = *fmin * *tp + df / *kd * (1.0 - (-*kd * *tp).exp());
                    }
                }
                fp
            }
            InfilState::GreenAmpt {
                s,
                ks,
                imd_max,
                lu,
                modified,
                imd,
                f,
                fu,
                sat,
                t,
            } => {
                let irate = irate + runon;
                let lu_ft = *lu / FT;
                let fumax = *imd_max * *lu;
                *t -= dt;
                let c1_of = |depth: f64, imd: f64| (*s + depth) * imd;
                if *sat {
                    return ga_sat(
                        irate,
                        depth,
                        dt,
                        *ks,
                        c1_of(depth, *imd),
                        f,
                        fu,
                        fumax,
                        sat,
                        t,
                        lu_ft,
                    );
                }
                let mut ia = irate + depth / dt;
                if ia < ZERO {
                    ia = 0.0;
                }
                if ia == 0.0 {
                    if *fu <= 0.0 {
                        return 0.0;
                    }
                    let df = lu_ft / 90_000.0 * fumax * dt;
                    *f -= df;
                    *fu -= df;
                    if *fu <= 0.0 {
                        *fu = 0.0;
                        *f = 0.0;
                        *imd = *imd_max;
                        return 0.0;
                    }
                    if *t <= 0.0 {
                        *imd = (fumax - *fu) / *lu;
                        *f = 0.0;
                    }
                    return 0.0;
                }
                if ia <= *ks {
                    *f += ia * dt;
                    *fu = (*fu + ia * dt).min(fumax);
                    if !*modified && *t <= 0.0 {
                        *imd = (fumax - *fu) / *lu;
                        *f = 0.0;
                    }
                    return ia;
                }
                *t = 5400.0 / lu_ft;
                let fs = *ks * (*s + depth) * *imd / (ia - *ks);
                if *f > fs {
                    *sat = true;
                    return ga_sat(
                        irate,
                        depth,
                        dt,
                        *ks,
                        c1_of(depth, *imd),
                        f,
                        fu,
                        fumax,
                        sat,
                        t,
                        lu_ft,
                    );
                }
                if *f + ia * dt < fs {
                    *f += ia * dt;
                    *fu = (*fu + ia * dt).min(fumax);
                    return ia;
                }
                let ts = (dt - (fs - *f) / ia).max(0.0);
                let c1 = c1_of(depth, *imd);
                let f2 = ga_f2(fs, c1, *ks, ts).min(fs + ia * ts);
                let df = f2 - *f;
                *f = f2;
                *fu = (*fu + df).min(fumax);
                *sat = true;
                df / dt
            }
            InfilState::CurveNumber {
                smax,
                regen,
                tmax,
                s,
                p,
                f_total,
                t,
                se,
                f,
            } => {
                let depth = depth + runon * dt;
                let fa = irate + depth / dt;
                let mut f1 = 0.0;
                if irate > ZERO {
                    if *t >= *tmax {
                        *p = 0.0;
                        *f_total = 0.0;
                        *f = 0.0;
                        *se = *s;
                    }
                    *t = 0.0;
                    *p += irate * dt;
                    let ff1 = *p * (1.0 - *p / (*p + *se));
                    f1 = (ff1 - *f_total) / dt;
                    if f1 < 0.0 || *s <= 0.0 {
                        f1 = 0.0;
                    }
                } else if depth > 0.004167 * FT && *s > 0.0 {
                    f1 = f.min(*s / dt);
                } else {
                    *t += dt;
                }
                if f1 > 0.0 {
                    f1 = f1.min(fa).max(0.0);
                    *f_total += f1 * dt;
                    if *regen > 0.0 {
                        *s = (*s - f1 * dt).max(0.0);
                    }
                } else {
                    *s = (*s + *regen * *smax * dt).min(*smax);
                }
                *f = f1;
                f1
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn ga_sat(
    irate: f64,
    depth: f64,
    dt: f64,
    ks: f64,
    c1: f64,
    f: &mut f64,
    fu: &mut f64,
    fumax: f64,
    sat: &mut bool,
    t: &mut f64,
    lu_ft: f64,
) -> f64 {
    let ia = irate + depth / dt;
    if ia < ZERO {
        return 0.0;
    }
    *t = 5400.0 / lu_ft;
    let mut df = ga_f2(*f, c1, ks, dt) - *f;
    if df > ia * dt {
        df = ia * dt;
        *sat = false;
    }
    *f += df;
    *fu = (*fu + df).min(fumax);
    df / dt
}

/// Green–Ampt cumulative infiltration after `ts` from `f1` (Newton on the implicit equation).
fn ga_f2(f1: f64, c1: f64, ks: f64, ts: f64) -> f64 {
    let f2min = f1 + ks * ts;
    if c1 == 0.0 {
        return f2min;
    }
    if ts < 10.0 && f1 > 0.01 * c1 {
        return (f1 + ks * (1.0 + c1 / f1) * ts).max(f2min);
    }
    let c2 = c1 * (f1 + c1).ln() - ks * ts;
    let mut f2 = f1;
    for _ in 0..20 {
        let d = (f2 - f1 - c1 * (f2 + c1).ln() + c2) / (1.0 - c1 / (f2 + c1));
        if d.abs() < 1e-5 * FT {
            return f2.max(f2min);
        }
        f2 -= d;
    }
    f2min
}

/// Fill depression storage, then integrate `dd/dt = ix − α·(d − ds)^{5/3}` over what is left
/// of the step; `tx` becomes the time the reservoir spilled.
fn update_ponded_depth(s: &mut Subarea, ix: f64, tx: &mut f64) {
    if s.depth + ix * *tx <= s.ds {
        s.depth += ix * *tx;
    } else {
        let dx = s.ds - s.depth;
        if dx > 0.0 && ix > 0.0 {
            *tx -= dx / ix;
            s.depth = s.ds;
        }
        if s.alpha > 0.0 && *tx > 0.0 {
            let (alpha, ds) = (s.alpha, s.ds);
            let f = |d: f64| ix - alpha * pow53((d - ds).max(0.0));
            if let Some(d) = cash_karp(s.depth, *tx, f) {
                s.depth = d;
            }
        } else {
            if *tx < 0.0 {
                *tx = 0.0;
            }
            s.depth += ix * *tx;
        }
    }
    if s.depth < 0.0 {
        s.depth = 0.0;
    }
}

/// Numerical Recipes' adaptive Cash–Karp RK4(5) from 0 to `x2` (SWMM's odesolve, ε = 1e-4);
/// `None` when the step size underflows or 10 000 steps do not reach the end.
fn cash_karp(mut y: f64, x2: f64, f: impl Fn(f64) -> f64) -> Option<f64> {
    const A2: f64 = 0.2;
    const B21: f64 = 0.2;
    const B31: f64 = 3.0 / 40.0;
    const B32: f64 = 9.0 / 40.0;
    const B41: f64 = 0.3;
    const B42: f64 = -0.9;
    const B43: f64 = 1.2;
    const B51: f64 = -11.0 / 54.0;
    const B52: f64 = 2.5;
    const B53: f64 = -70.0 / 27.0;
    const B54: f64 = 35.0 / 27.0;
    const B61: f64 = 1631.0 / 55296.0;
    const B62: f64 = 175.0 / 512.0;
    const B63: f64 = 575.0 / 13824.0;
    const B64: f64 = 44275.0 / 110592.0;
    const B65: f64 = 253.0 / 4096.0;
    const C1: f64 = 37.0 / 378.0;
    const C3: f64 = 250.0 / 621.0;
    const C4: f64 = 125.0 / 594.0;
    const C6: f64 = 512.0 / 1771.0;
    const DC1: f64 = C1 - 2825.0 / 27648.0;
    const DC3: f64 = C3 - 18575.0 / 48384.0;
    const DC4: f64 = C4 - 13525.0 / 55296.0;
    const DC5: f64 = -277.0 / 14336.0;
    const DC6: f64 = C6 - 0.25;
    let _ = A2;
    let mut x = 0.0;
    let mut h = x2;
    for _ in 0..10_000 {
        let dydx = f(y);
        let yscal = y.abs() + (dydx * h).abs() + 1e-30;
        if x + h > x2 {
            h = x2 - x;
        }
        // rkqs: shrink until the error is small enough.
        let hnext;
        loop {
            let ak2 = f(y + B21 * h * dydx);
            let ak3 = f(y + h * (B31 * dydx + B32 * ak2));
            let ak4 = f(y + h * (B41 * dydx + B42 * ak2 + B43 * ak3));
            let ak5 = f(y + h * (B51 * dydx + B52 * ak2 + B53 * ak3 + B54 * ak4));
            let ak6 = f(y + h * (B61 * dydx + B62 * ak2 + B63 * ak3 + B64 * ak4 + B65 * ak5));
            let ytemp = y + h * (C1 * dydx + C3 * ak3 + C4 * ak4 + C6 * ak6);
            let yerr = h * (DC1 * dydx + DC3 * ak3 + DC4 * ak4 + DC5 * ak5 + DC6 * ak6);
            let errmax = (yerr / yscal).abs() / ODETOL;
            if errmax > 1.0 {
                let htemp = 0.9 * h * errmax.powf(-0.25);
                h = if h >= 0.0 {
                    htemp.max(0.1 * h)
                } else {
                    htemp.min(0.1 * h)
                };
                if x + h == x {
                    return None;
                }
                continue;
            }
            hnext = if errmax > 1.89e-4 {
                0.9 * h * errmax.powf(-0.2)
            } else {
                5.0 * h
            };
            x += h;
            y = ytemp;
            break;
        }
        if x >= x2 {
            return Some(y);
        }
        h = hnext;
    }
    None
}

/// All subcatchments and their step.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, Default)]
pub struct Runoff {
    /// The subcatchments.
    pub catchments: Vec<Catchment>,
    /// Continuity totals.
    pub totals: RunoffTotals,
    /// Whether any had runoff last step (keeps the wet step).
    pub has_runoff: bool,
}

impl Runoff {
    /// From the specs.
    pub fn new(specs: &[SubcatchSpec], gauges: &[usize]) -> Self {
        let catchments = specs
            .iter()
            .zip(
                gauges
                    .iter()
                    .copied()
                    .map(Some)
                    .chain(std::iter::repeat(None)),
            )
            .map(|(s, g)| {
                let mut c = Catchment::new(s);
                c.gauge = g.filter(|&g| g != usize::MAX);
                c
            })
            .collect();
        Self {
            catchments,
            totals: RunoffTotals::default(),
            has_runoff: false,
        }
    }

    /// One runoff step of `dt` with each catchment's rain given by `rain_of(gauge)` (m/s).
    pub fn step(&mut self, dt: f64, evap: f64, rain_of: impl Fn(Option<usize>) -> f64) {
        for c in &mut self.catchments {
            c.old_runoff = c.new_runoff;
            for s in &mut c.subareas {
                s.inflow = 0.0;
            }
        }
        // Run-on (one step behind) between subcatchments and between subareas.
        let n = self.catchments.len();
        for j in 0..n {
            if self.catchments[j].area <= 0.0 {
                continue;
            }
            if let Outlet::Subcatchment(k) = self.catchments[j].outlet
                && k != j
                && k < n
            {
                let q = self.catchments[j].old_runoff;
                let ak = self.catchments[k].area;
                if ak > 0.0 {
                    let q = q / ak;
                    self.catchments[k].runon += q;
                    for s in &mut self.catchments[k].subareas {
                        s.inflow += q;
                    }
                }
            }
            let c = &mut self.catchments[j];
            let [i0, i1, p] = &mut c.subareas;
            if p.f_area > 0.0 && i0.route_to == Some(PERV) {
                p.inflow += (i0.runoff * i0.f_area + i1.runoff * i1.f_area) * (1.0 - i0.f_outlet)
                    / p.f_area;
            }
            if i0.f_area + i1.f_area > 0.0 && p.route_to == Some(IMPERV1) && i1.f_area > 0.0 {
                i1.inflow += p.runoff * (1.0 - p.f_outlet) * p.f_area / i1.f_area;
            }
        }
        let mut any = false;
        for c in &mut self.catchments {
            let rain = rain_of(c.gauge);
            let to_node = matches!(c.outlet, Outlet::Node(_));
            if c.step(dt, rain, evap, to_node, &mut self.totals) > 0.0 {
                any = true;
            }
            c.runon = 0.0;
        }
        self.has_runoff = any;
    }

    /// Water on the subcatchments, m³.
    pub fn stored_m3(&self) -> f64 {
        self.catchments.iter().map(|c| c.stored_m3()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cash_karp_integrates_a_known_ode() {
        // dy/dx = 1 − y from 0: y = 1 − e^{−x}.
        let y = cash_karp(0.0, 2.0, |y| 1.0 - y).unwrap();
        assert!((y - (1.0 - (-2.0f64).exp())).abs() < 1e-4);
    }

    #[test]
    fn green_ampt_f2_solves_its_equation() {
        let (f1, c1, ks, ts) = (0.01, 0.05, 1e-5, 600.0);
        let f2 = ga_f2(f1, c1, ks, ts);
        let resid = f2 - f1 - c1 * ((f2 + c1) / (f1 + c1)).ln() - ks * ts;
        assert!(resid.abs() < 1e-6, "{resid}");
    }
}
