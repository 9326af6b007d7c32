//! 2D overland flow: the local-inertial shallow-water scheme of LISFLOOD-FP (Bates, Horritt &
//! Fewtrell 2010, *J. Hydrology* 387) on a regular grid.
//!
//! Water depth `h` lives in cells, unit-width discharge `q` (m²/s) on the faces between them.
//! Each step:
//!
//! 1. every face's discharge follows the water-surface slope, with Manning friction treated
//!    semi-implicitly: `q ← (q̃ − g·h_f·Δt·∂η/∂x) / (1 + g·Δt·n²·|q| / h_f^{7/3})`, with
//!    `q̃ = θ·q + (1 − θ)/2·(q₋ + q₊)` blending in the neighbouring faces along the flow (de
//!    Almeida, Bates, Freer & Souvignet 2012, θ = 0.9; θ = 1 is the 2010 scheme), where
//!    `h_f = max(η_i, η_j) − max(z_i, z_j)` is the depth of water that can flow between the two
//!    cells; faces with `h_f` below a threshold (wet/dry) and faces of blocked cells (buildings)
//!    carry nothing;
//! 2. no cell may lose more water than it holds: a cell's outgoing faces are scaled down when
//!    they would empty it (this keeps depths non-negative without creating or destroying water);
//! 3. continuity: `h ← h + Δt·(Σq_in − Σq_out)/Δx + Δt·(rain − infiltration)`.
//!
//! The step adapts to the flow: `Δt = α·Δx/√(g·h_max)` with α = 0.7 (Bates et al.'s
//! stability condition), never longer than the time left in the caller's step. Boundaries are
//! closed, free outflow (normal-depth flow with the edge's bed slope or a given slope), a fixed
//! water level, or point inflows. Volumes in and out are counted in `f64` for the balance.
//!
//! Arrays are structures of `f32`, rows of cells contiguous; the face and continuity passes run
//! over rows in parallel (rayon) in loops the compiler vectorises.

use rayon::prelude::*;

/// Gravity, m/s².
pub const G: f32 = 9.80665;

/// What happens at an edge of the grid.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub enum Edge {
    /// No water crosses.
    Closed,
    /// Water leaves at normal depth for a bed slope: `Some(s)` given, `None` the slope of the
    /// last two cells (at least 1e-4).
    FreeOutflow(Option<f32>),
    /// The water surface outside is held at this level, m (water may enter or leave).
    FixedLevel(f32),
}

/// The four edges.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Edges {
    /// x = 0.
    pub west: Edge,
    /// x = max.
    pub east: Edge,
    /// y = 0.
    pub south: Edge,
    /// y = max.
    pub north: Edge,
}

impl Edges {
    /// Every edge the same.
    pub fn all(e: Edge) -> Self {
        Self {
            west: e,
            east: e,
            south: e,
            north: e,
        }
    }
}

/// Horton infiltration: capacity `f = fc + (f0 − fc)·e^{−k·t}` while the cell is wet.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Horton {
    /// Initial capacity, m/s.
    pub f0_mps: f32,
    /// Final capacity, m/s.
    pub fc_mps: f32,
    /// Decay, 1/s.
    pub k_per_s: f32,
}

/// Green–Ampt infiltration under ponded water: the depth infiltrated, F, follows
/// `F₂ − F₁ − ψΔθ·ln((F₂ + ψΔθ)/(F₁ + ψΔθ)) = K·Δt` (solved exactly each step), limited by
/// the water standing on the cell.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct GreenAmpt {
    /// Capillary suction at the wetting front ψ, m.
    pub suction_m: f32,
    /// Saturated hydraulic conductivity K, m/s.
    pub ksat_mps: f32,
    /// Moisture deficit Δθ (saturated minus initial water content).
    pub deficit: f32,
}

/// How the ground takes in water.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub enum SurfaceInfiltration {
    /// Horton's decaying capacity.
    Horton(Horton),
    /// Green–Ampt's wetting front.
    GreenAmpt(GreenAmpt),
}

/// The depth infiltrated after `dt` under ponding from `f1` already in (Green–Ampt), m: Newton
/// from above on the convex implicit equation, so it converges monotonically.
pub fn green_ampt_ponded(f1: f64, suction_deficit_m: f64, ksat_mps: f64, dt: f64) -> f64 {
    let (c, k) = (suction_deficit_m, ksat_mps * dt);
    if c <= 0.0 {
        return f1 + k;
    }
    let g = |f2: f64| f2 - f1 - c * ((f2 + c) / (f1 + c)).ln() - k;
    let mut f2 = f1 + 2.0 * (k + (2.0 * c * k).sqrt());
    while g(f2) < 0.0 {
        f2 = f1 + 2.0 * (f2 - f1);
    }
    for _ in 0..50 {
        let d = g(f2) / (f2 / (f2 + c));
        f2 -= d;
        if d.abs() <= 1e-12 * (1.0 + f2) {
            break;
        }
    }
    f2.max(f1 + k)
}

/// Volumes in and out since the start, m³ (f64).
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct Balance {
    /// Rain on the grid.
    pub rain_m3: f64,
    /// Point inflows and water entering at fixed-level edges.
    pub inflow_m3: f64,
    /// Water leaving through the edges.
    pub outflow_m3: f64,
    /// Infiltrated.
    pub infiltration_m3: f64,
    /// Water taken out or put in by the caller (drains, spills), net out.
    pub exchange_out_m3: f64,
    /// Water on the grid at the start.
    pub initial_m3: f64,
}

/// The surface water.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct Surface {
    /// Columns.
    pub nx: usize,
    /// Rows.
    pub ny: usize,
    /// Cell size, m.
    pub dx_m: f32,
    /// Bed elevation, m (row-major from the south-west).
    pub z_m: Vec<f32>,
    /// Water depth, m. Read freely; change it through [`Self::set_depths`] or
    /// [`Self::exchange`], which keep the step's cached deepest water right.
    pub h_m: Vec<f32>,
    /// Unit discharge on x-faces, m²/s: face `j*(nx+1) + i` lies west of cell (i, j).
    pub qx: Vec<f32>,
    /// Unit discharge on y-faces, m²/s: face `j*nx + i` lies south of cell (i, j).
    pub qy: Vec<f32>,
    /// Manning's n per cell, s/m^{1/3}.
    pub n: Vec<f32>,
    /// Blocked cells (buildings, no-data): no water enters or leaves.
    pub blocked: Vec<bool>,
    /// Edges.
    pub edges: Edges,
    /// Infiltration, if any.
    pub infiltration: Option<SurfaceInfiltration>,
    /// Infiltration state per cell: Horton, the time it has been wet (s); Green–Ampt, the
    /// depth taken in (m).
    wet_s: Vec<f32>,
    /// Depth below which a face does not flow, m.
    pub h_min_m: f32,
    /// CFL coefficient.
    pub alpha: f32,
    /// Weight of a face's own discharge against its two neighbours' along the flow (de Almeida
    /// et al. 2012's q-centred scheme; 1 is Bates et al. 2010's original, 0.7–0.9 damps the
    /// checkerboard oscillations of shallow, steep flow). Default 0.9.
    pub theta: f32,
    /// Volumes so far.
    pub balance: Balance,
    /// Point inflows: (cell index, m³/s).
    pub inflows: Vec<(usize, f64)>,
    /// Rain per cell on top of the uniform rain, m/s (e.g. from rain gauges); none: uniform.
    pub rain_cell_mps: Option<Vec<f32>>,
    scale: Vec<f32>,
    /// Spare discharge buffers (the last step's while a step runs).
    qx_old: Vec<f32>,
    qy_old: Vec<f32>,
    /// Deepest water after the last step (none: unknown, recomputed).
    h_max: Option<f32>,
}

impl Surface {
    /// A dry surface on bed `z_m` (NaN cells are blocked), uniform Manning `n`, closed edges.
    pub fn new(nx: usize, ny: usize, dx_m: f32, z_m: Vec<f32>, n: f32) -> Self {
        assert_eq!(z_m.len(), nx * ny, "one elevation per cell");
        let blocked = z_m.iter().map(|z| !z.is_finite()).collect();
        let z_m = z_m
            .into_iter()
            .map(|z| if z.is_finite() { z } else { 0.0 })
            .collect();
        Self {
            nx,
            ny,
            dx_m,
            z_m,
            h_m: vec![0.0; nx * ny],
            qx: vec![0.0; (nx + 1) * ny],
            qy: vec![0.0; nx * (ny + 1)],
            n: vec![n; nx * ny],
            blocked,
            edges: Edges::all(Edge::Closed),
            infiltration: None,
            wet_s: vec![0.0; nx * ny],
            h_min_m: 1e-3,
            alpha: 0.7,
            theta: 0.9,
            balance: Balance::default(),
            inflows: Vec::new(),
            rain_cell_mps: None,
            scale: vec![1.0; nx * ny],
            qx_old: vec![0.0; (nx + 1) * ny],
            qy_old: vec![0.0; nx * (ny + 1)],
            h_max: None,
        }
    }

    /// Set the initial water (depths), counting it as the starting volume.
    pub fn set_depths(&mut self, h: Vec<f32>) {
        assert_eq!(h.len(), self.h_m.len());
        self.h_m = h;
        self.h_max = None;
        self.balance.initial_m3 = self.volume_m3();
    }

    /// Water on the grid, m³.
    pub fn volume_m3(&self) -> f64 {
        let a = (self.dx_m as f64).powi(2);
        self.h_m
            .par_chunks(self.nx)
            .map(|r| r.iter().map(|&h| h as f64).sum::<f64>())
            .sum::<f64>()
            * a
    }

    /// Rain + inflow + initial − (storage + outflow + infiltration + exchange), m³.
    pub fn balance_error_m3(&self) -> f64 {
        let b = &self.balance;
        b.initial_m3 + b.rain_m3 + b.inflow_m3
            - self.volume_m3()
            - b.outflow_m3
            - b.infiltration_m3
            - b.exchange_out_m3
    }

    /// The largest stable step for the current depths, s.
    pub fn stable_dt_s(&self) -> f32 {
        let hmax = self.h_max.unwrap_or_else(|| {
            self.h_m
                .par_chunks(self.nx)
                .map(|r| r.iter().fold(0.0f32, |a, &b| a.max(b)))
                .reduce(|| 0.0, f32::max)
        });
        if hmax <= self.h_min_m {
            f32::INFINITY
        } else {
            self.alpha * self.dx_m / (G * hmax).sqrt()
        }
    }

    /// Advance `dt_s` seconds with uniform rain `rain_mps` (m/s), in stable sub-steps; the
    /// number of sub-steps is returned.
    pub fn advance(&mut self, dt_s: f64, rain_mps: f32) -> u32 {
        let mut left = dt_s;
        let mut n = 0;
        while left > 1e-9 {
            let dt = (self.stable_dt_s() as f64).min(left).min(60.0);
            self.step(dt as f32, rain_mps);
            left -= dt;
            n += 1;
        }
        n
    }

    /// One step of `dt` seconds (the caller keeps it stable, see [`Self::stable_dt_s`]).
    ///
    /// Three passes over the grid, rows in parallel: every face's new discharge (both
    /// directions at once); each cell's outflow limit; limited discharges and continuity
    /// together. Discharges are double-buffered: the last step's stay readable while the new
    /// ones are written, and nothing is copied.
    pub fn step(&mut self, dt: f32, rain_mps: f32) {
        std::mem::swap(&mut self.qx, &mut self.qx_old);
        std::mem::swap(&mut self.qy, &mut self.qy_old);
        self.update_faces(dt);
        self.edge_fluxes(dt);
        self.outflow_scale(dt);
        self.limit_and_continuity(dt, rain_mps);
    }

    /// New discharges of the interior faces: the x-faces of each row and the y-faces south of
    /// it, from the last step's discharges (in `qx_old`/`qy_old`) and depths.
    fn update_faces(&mut self, dt: f32) {
        let c = FaceRows {
            nx: self.nx,
            hmin: self.h_min_m,
            theta: self.theta,
            dt,
            inv_dx: 1.0 / self.dx_m,
            z: &self.z_m,
            h: &self.h_m,
            n: &self.n,
            blocked: &self.blocked,
            oldx: &self.qx_old,
            oldy: &self.qy_old,
        };
        let (nx, ny) = (self.nx, self.ny);
        self.qx
            .par_chunks_mut(nx + 1)
            .zip(self.qy[..ny * nx].par_chunks_mut(nx))
            .enumerate()
            .for_each(|(j, (rowx, rowy))| c.row(j, rowx, rowy));
    }

    /// Discharges through the grid's edges (positive: along +x / +y), from the last step's.
    fn edge_fluxes(&mut self, dt: f32) {
        let (nx, ny) = (self.nx, self.ny);
        let inner = |c: usize, step: isize, ok: bool| ok.then(|| (c as isize + step) as usize);
        let west: Vec<f32> = (0..ny)
            .map(|j| {
                let c = j * nx;
                let old = self.qx_old[j * (nx + 1)];
                self.edge_q(old, c, inner(c, 1, nx > 1), -1.0, self.edges.west, dt)
            })
            .collect();
        let east: Vec<f32> = (0..ny)
            .map(|j| {
                let c = j * nx + nx - 1;
                let old = self.qx_old[j * (nx + 1) + nx];
                self.edge_q(old, c, inner(c, -1, nx > 1), 1.0, self.edges.east, dt)
            })
            .collect();
        let south: Vec<f32> = (0..nx)
            .map(|i| {
                self.edge_q(
                    self.qy_old[i],
                    i,
                    inner(i, nx as isize, ny > 1),
                    -1.0,
                    self.edges.south,
                    dt,
                )
            })
            .collect();
        let north: Vec<f32> = (0..nx)
            .map(|i| {
                let c = (ny - 1) * nx + i;
                let old = self.qy_old[ny * nx + i];
                self.edge_q(
                    old,
                    c,
                    inner(c, -(nx as isize), ny > 1),
                    1.0,
                    self.edges.north,
                    dt,
                )
            })
            .collect();
        for j in 0..ny {
            self.qx[j * (nx + 1)] = west[j];
            self.qx[j * (nx + 1) + nx] = east[j];
        }
        for i in 0..nx {
            self.qy[i] = south[i];
            self.qy[ny * nx + i] = north[i];
        }
    }

    /// The discharge through the edge face of cell `cell` (`out_sign`: +1 if leaving means
    /// positive discharge), `inner` its neighbour inside, `old` the face's last discharge.
    fn edge_q(
        &self,
        old: f32,
        cell: usize,
        inner: Option<usize>,
        out_sign: f32,
        e: Edge,
        dt: f32,
    ) -> f32 {
        if self.blocked[cell] {
            return 0.0;
        }
        match e {
            Edge::Closed => 0.0,
            Edge::FreeOutflow(slope) => {
                // The momentum equation of the face with the water surface outside falling at
                // the bed slope (LISFLOOD-FP's free boundary): semi-implicit like the interior,
                // so a shallow edge cell does not oscillate.
                let h = self.h_m[cell];
                if h <= self.h_min_m {
                    return 0.0;
                }
                let s = slope.unwrap_or_else(|| {
                    inner
                        .map(|k| (self.z_m[k] - self.z_m[cell]) / self.dx_m)
                        .unwrap_or(0.0)
                        .max(1e-4)
                });
                let n = self.n[cell];
                let q_out = (out_sign * old).max(0.0);
                let q_new =
                    (q_out + G * h * dt * s) / (1.0 + G * dt * n * n * q_out / h.powf(7.0 / 3.0));
                out_sign * q_new
            }
            Edge::FixedLevel(level) => {
                // A ghost cell outside with the same bed and its water at `level`.
                let z = self.z_m[cell];
                let ghost_h = (level - z).max(0.0);
                let (ha, hb) = if out_sign > 0.0 {
                    (self.h_m[cell], ghost_h)
                } else {
                    (ghost_h, self.h_m[cell])
                };
                face_q(
                    old,
                    z,
                    ha,
                    z,
                    hb,
                    self.n[cell],
                    dt,
                    self.dx_m,
                    self.h_min_m,
                    false,
                )
            }
        }
    }

    /// For each cell, the factor that scales its outgoing discharges so that it cannot lose
    /// more than it holds.
    fn outflow_scale(&mut self, dt: f32) {
        let (nx, dx) = (self.nx, self.dx_m);
        let (qx, qy, h) = (&self.qx, &self.qy, &self.h_m);
        self.scale
            .par_chunks_mut(nx)
            .enumerate()
            .for_each(|(j, row)| {
                let (x, s, n) = (
                    &qx[j * (nx + 1)..(j + 1) * (nx + 1)],
                    &qy[j * nx..(j + 1) * nx],
                    &qy[(j + 1) * nx..(j + 2) * nx],
                );
                let hr = &h[j * nx..(j + 1) * nx];
                for i in 0..nx {
                    let out =
                        (-x[i]).max(0.0) + x[i + 1].max(0.0) + (-s[i]).max(0.0) + n[i].max(0.0);
                    let need = out * dt / dx;
                    row[i] = if need > hr[i] && need > 0.0 {
                        hr[i] / need
                    } else {
                        1.0
                    };
                }
            });
    }

    /// Limit each face by its upwind cell's factor (written to the spare buffers, which then
    /// become the current ones), and update depths: `h ← h + Δt·(Σq_in − Σq_out)/Δx + rain −
    /// infiltration`.
    fn limit_and_continuity(&mut self, dt: f32, rain_mps: f32) {
        let (nx, ny, dx) = (self.nx, self.ny, self.dx_m);
        // Beyond the south and north edges nothing limits a face (water comes in unscaled).
        let ones = vec![1.0f32; nx];
        let c = CellRows {
            nx,
            ny,
            k: dt / dx,
            dt,
            rain: rain_mps * dt,
            qx: &self.qx,
            qy: &self.qy,
            blocked: &self.blocked,
            scale: &self.scale,
            infil: self.infiltration,
            rain_cells: self.rain_cell_mps.as_deref(),
            ones: &ones,
        };
        // (infiltrated depth, clipped negative depth, rain depth, deepest water) per row.
        let sums: Vec<(f64, f64, f64, f32)> = self
            .h_m
            .par_chunks_mut(nx)
            .zip(self.wet_s.par_chunks_mut(nx))
            .zip(self.qx_old.par_chunks_mut(nx + 1))
            .zip(self.qy_old[..ny * nx].par_chunks_mut(nx))
            .enumerate()
            .map(|(j, (((row, wet), outx), outy))| c.row(j, row, wet, outx, outy))
            .collect();
        // The north edge row of y-faces, limited too (only outflow is).
        for i in 0..nx {
            let q = self.qy[ny * nx + i];
            self.qy_old[ny * nx + i] = if q > 0.0 {
                q * self.scale[(ny - 1) * nx + i]
            } else {
                q
            };
        }
        std::mem::swap(&mut self.qx, &mut self.qx_old);
        std::mem::swap(&mut self.qy, &mut self.qy_old);
        let a = (dx as f64).powi(2);
        let mut hmax = 0.0f32;
        for (inf, clip, rain_sum, hm) in sums {
            self.balance.infiltration_m3 += inf * a;
            // Water created by clipping rounding negatives counts against the balance honestly.
            self.balance.inflow_m3 += clip * a;
            self.balance.rain_m3 += rain_sum * a;
            hmax = hmax.max(hm);
        }
        // Edges.
        let mut out = 0.0f64;
        for j in 0..ny {
            out -= self.qx[j * (nx + 1)] as f64;
            out += self.qx[j * (nx + 1) + nx] as f64;
        }
        for i in 0..nx {
            out -= self.qy[i] as f64;
            out += self.qy[ny * nx + i] as f64;
        }
        let vol = out * dx as f64 * dt as f64;
        if vol >= 0.0 {
            self.balance.outflow_m3 += vol;
        } else {
            self.balance.inflow_m3 -= vol;
        }
        // Point inflows.
        for &(c, q) in &self.inflows {
            if !self.blocked[c] {
                self.h_m[c] += (q * dt as f64 / a) as f32;
                hmax = hmax.max(self.h_m[c]);
                self.balance.inflow_m3 += q * dt as f64;
            }
        }
        self.h_max = Some(hmax);
    }

    /// Take `m3` out of cell `c` (a drain inlet) or put it in (negative: a spill), as far as the
    /// cell holds it; the volume actually moved, m³ (positive: out).
    pub fn exchange(&mut self, c: usize, m3: f64) -> f64 {
        let a = (self.dx_m as f64).powi(2);
        let take = m3.min(self.h_m[c] as f64 * a);
        self.h_m[c] -= (take / a) as f32;
        if let Some(m) = &mut self.h_max {
            *m = m.max(self.h_m[c]);
        }
        self.balance.exchange_out_m3 += take;
        take
    }

    /// Depth-averaged speed in cell (i, j), m/s (from the discharges on its faces).
    pub fn speed_mps(&self, i: usize, j: usize) -> f32 {
        let nx = self.nx;
        let c = j * nx + i;
        let h = self.h_m[c];
        if h <= self.h_min_m {
            return 0.0;
        }
        let qx = 0.5 * (self.qx[j * (nx + 1) + i] + self.qx[j * (nx + 1) + i + 1]);
        let qy = 0.5 * (self.qy[j * nx + i] + self.qy[(j + 1) * nx + i]);
        (qx * qx + qy * qy).sqrt() / h
    }
}

/// What a row of limiting and continuity reads.
struct CellRows<'a> {
    nx: usize,
    ny: usize,
    k: f32,
    dt: f32,
    rain: f32,
    qx: &'a [f32],
    qy: &'a [f32],
    blocked: &'a [bool],
    scale: &'a [f32],
    infil: Option<SurfaceInfiltration>,
    rain_cells: Option<&'a [f32]>,
    ones: &'a [f32],
}

impl CellRows<'_> {
    /// Row `j`: limit its faces into `outx`/`outy`, update its depths; (infiltrated, clipped,
    /// rain, deepest), in the widest vector unit the CPU has.
    fn row(
        &self,
        j: usize,
        row: &mut [f32],
        wet: &mut [f32],
        outx: &mut [f32],
        outy: &mut [f32],
    ) -> (f64, f64, f64, f32) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { self.row_avx2(j, row, wet, outx, outy) };
        }
        self.row_body(j, row, wet, outx, outy)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn row_avx2(
        &self,
        j: usize,
        row: &mut [f32],
        wet: &mut [f32],
        outx: &mut [f32],
        outy: &mut [f32],
    ) -> (f64, f64, f64, f32) {
        self.row_body(j, row, wet, outx, outy)
    }

    #[inline(always)]
    fn row_body(
        &self,
        j: usize,
        row: &mut [f32],
        wet: &mut [f32],
        outx: &mut [f32],
        outy: &mut [f32],
    ) -> (f64, f64, f64, f32) {
        let (nx, ny, k, dt, rain) = (self.nx, self.ny, self.k, self.dt, self.rain);
        let (qx, qy, blocked, scale, infil, rain_cells, ones) = (
            self.qx,
            self.qy,
            self.blocked,
            self.scale,
            self.infil,
            self.rain_cells,
            self.ones,
        );
        let here = &scale[j * nx..(j + 1) * nx];
        let south = if j > 0 {
            &scale[(j - 1) * nx..j * nx]
        } else {
            ones
        };
        let north = if j + 1 < ny {
            &scale[(j + 1) * nx..(j + 2) * nx]
        } else {
            ones
        };
        // x-faces: the upwind cell's factor limits each (edges: only outflow is).
        let qr = &qx[j * (nx + 1)..(j + 1) * (nx + 1)];
        let q0 = qr[0];
        outx[0] = if q0 > 0.0 { q0 } else { q0 * here[0] };
        let qe = qr[nx];
        outx[nx] = if qe > 0.0 { qe * here[nx - 1] } else { qe };
        {
            let m = nx - 1;
            let (qm, sa, sb, o) = (&qr[1..nx], &here[..m], &here[1..nx], &mut outx[1..nx]);
            for i in 0..m {
                let q = qm[i];
                o[i] = q * if q > 0.0 { sa[i] } else { sb[i] };
            }
        }
        // y-faces south of the row (kept); those north of it (used, kept by the next row).
        let qs = &qy[j * nx..(j + 1) * nx];
        let qn = &qy[(j + 1) * nx..(j + 2) * nx];
        let outy = &mut outy[..nx];
        for i in 0..nx {
            let q = qs[i];
            outy[i] = q * if q > 0.0 { south[i] } else { here[i] };
        }
        let br = &blocked[j * nx..(j + 1) * nx];
        let rc = rain_cells.map(|r| &r[j * nx..(j + 1) * nx]);
        let n_open = br.iter().filter(|b| !**b).count();
        let row = &mut row[..nx];
        if let Some(hz) = infil {
            // With infiltration: a plain loop (exp per wet cell dominates anyway).
            let (mut inf_sum, mut clip, mut rain_sum, mut hmax) = (0.0f64, 0.0f64, 0.0f64, 0.0f32);
            for i in 0..nx {
                if br[i] {
                    continue;
                }
                let n = qn[i] * if qn[i] > 0.0 { here[i] } else { north[i] };
                let r = rain + rc.map_or(0.0, |rc| rc[i] * dt);
                let mut h = row[i] + k * (outx[i] - outx[i + 1] + outy[i] - n) + r;
                rain_sum += r as f64;
                if h > 0.0 {
                    let f = match hz {
                        SurfaceInfiltration::Horton(hz) => {
                            let t = wet[i];
                            let cap = hz.fc_mps + (hz.f0_mps - hz.fc_mps) * (-hz.k_per_s * t).exp();
                            wet[i] = t + dt;
                            (cap * dt).min(h)
                        }
                        SurfaceInfiltration::GreenAmpt(ga) => {
                            let f1 = wet[i] as f64;
                            let sd = (ga.suction_m * ga.deficit) as f64;
                            let f2 = green_ampt_ponded(f1, sd, ga.ksat_mps as f64, dt as f64);
                            let f = ((f2 - f1) as f32).min(h);
                            wet[i] += f;
                            f
                        }
                    };
                    h -= f;
                    inf_sum += f as f64;
                }
                if h < 0.0 {
                    clip -= h as f64;
                    h = 0.0;
                }
                row[i] = h;
                hmax = hmax.max(h);
            }
            return (inf_sum, clip, rain_sum, hmax);
        }
        // Without: branch-free, in eight lanes whose partial sums add up in a fixed
        // order (so the result does not depend on how the compiler vectorises it).
        const L: usize = 8;
        let (mut clip_l, mut rc_l, mut hmax_l) = ([0.0f32; L], [0.0f32; L], [0.0f32; L]);
        let zero = &ones[..0];
        let rcr = rc.unwrap_or(zero);
        let cell = |i: usize, row: &mut [f32]| -> (f32, f32, f32) {
            let n = qn[i] * if qn[i] > 0.0 { here[i] } else { north[i] };
            let extra = if rcr.is_empty() { 0.0 } else { rcr[i] * dt };
            let h = row[i] + k * (outx[i] - outx[i + 1] + outy[i] - n) + rain + extra;
            let open = !br[i];
            let kept = h.max(0.0);
            row[i] = if open { kept } else { row[i] };
            let on = if open { 1.0 } else { 0.0 };
            ((-h).max(0.0) * on, extra * on, kept * on)
        };
        let chunks = nx / L;
        for c in 0..chunks {
            for l in 0..L {
                let (cl, ex, hk) = cell(c * L + l, row);
                clip_l[l] += cl;
                rc_l[l] += ex;
                hmax_l[l] = hmax_l[l].max(hk);
            }
        }
        for i in chunks * L..nx {
            let (cl, ex, hk) = cell(i, row);
            clip_l[0] += cl;
            rc_l[0] += ex;
            hmax_l[0] = hmax_l[0].max(hk);
        }
        let clip: f64 = clip_l.iter().map(|&v| v as f64).sum();
        let rain_sum = rain as f64 * n_open as f64 + rc_l.iter().map(|&v| v as f64).sum::<f64>();
        let hmax = hmax_l.iter().fold(0.0f32, |a, &b| a.max(b));
        (0.0, clip, rain_sum, hmax)
    }
}

/// What a row of face updates reads.
struct FaceRows<'a> {
    nx: usize,
    hmin: f32,
    theta: f32,
    dt: f32,
    inv_dx: f32,
    z: &'a [f32],
    h: &'a [f32],
    n: &'a [f32],
    blocked: &'a [bool],
    oldx: &'a [f32],
    oldy: &'a [f32],
}

impl FaceRows<'_> {
    /// Row `j`'s x-faces and the y-faces south of it, in the widest vector unit the CPU has
    /// (the same IEEE operations either way, so results do not depend on the machine).
    fn row(&self, j: usize, rowx: &mut [f32], rowy: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            unsafe { self.row_avx2(j, rowx, rowy) };
            return;
        }
        self.row_body(j, rowx, rowy);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn row_avx2(&self, j: usize, rowx: &mut [f32], rowy: &mut [f32]) {
        self.row_body(j, rowx, rowy);
    }

    #[inline(always)]
    fn row_body(&self, j: usize, rowx: &mut [f32], rowy: &mut [f32]) {
        let (nx, hmin, theta, dt, inv_dx) = (self.nx, self.hmin, self.theta, self.dt, self.inv_dx);
        let (z, h, n, blocked, oldx, oldy) =
            (self.z, self.h, self.n, self.blocked, self.oldx, self.oldy);
        let o = j * nx;
        // x-faces 1..nx of the row, between cells k and k+1 (k = 0..m): every slice
        // below has exactly m elements, so the loop runs without bounds checks.
        let m = nx - 1;
        let old = &oldx[j * (nx + 1)..(j + 1) * (nx + 1)];
        let (qb, qh, qa) = (&old[..m], &old[1..=m], &old[2..m + 2]);
        let (za, zb) = (&z[o..o + m], &z[o + 1..o + nx]);
        let (ha, hb) = (&h[o..o + m], &h[o + 1..o + nx]);
        let (na, nb) = (&n[o..o + m], &n[o + 1..o + nx]);
        let (ba, bb) = (&blocked[o..o + m], &blocked[o + 1..o + nx]);
        let out = &mut rowx[1..nx];
        for k in 0..m {
            out[k] = face_q(
                centred(theta, qh[k], qb[k], qa[k]),
                za[k],
                ha[k],
                zb[k],
                hb[k],
                0.5 * (na[k] + nb[k]),
                dt,
                inv_dx,
                hmin,
                !(ba[k] | bb[k]),
            );
        }
        if j == 0 {
            return; // the south edge: see edge_fluxes
        }
        let (s, nn) = ((j - 1) * nx, j * nx);
        let (below, here, above) = (
            &oldy[(j - 1) * nx..j * nx],
            &oldy[j * nx..(j + 1) * nx],
            &oldy[(j + 1) * nx..(j + 2) * nx],
        );
        let (za, zb) = (&z[s..s + nx], &z[nn..nn + nx]);
        let (ha, hb) = (&h[s..s + nx], &h[nn..nn + nx]);
        let (na, nb) = (&n[s..s + nx], &n[nn..nn + nx]);
        let (ba, bb) = (&blocked[s..s + nx], &blocked[nn..nn + nx]);
        let rowy = &mut rowy[..nx];
        for i in 0..nx {
            rowy[i] = face_q(
                centred(theta, here[i], below[i], above[i]),
                za[i],
                ha[i],
                zb[i],
                hb[i],
                0.5 * (na[i] + nb[i]),
                dt,
                inv_dx,
                hmin,
                !(ba[i] | bb[i]),
            );
        }
    }
}

/// ∛x for x > 0: a bit-level first guess and two Halley steps (cubic convergence: 4 % →
/// 3e-5 → f32 precision), branch-free so that rows of faces vectorise.
#[inline(always)]
fn cbrt_pos(x: f32) -> f32 {
    let mut y = f32::from_bits(x.to_bits() / 3 + 709_921_077);
    for _ in 0..2 {
        let y3 = y * y * y;
        y *= (y3 + 2.0 * x) / (2.0 * y3 + x);
    }
    y
}

/// de Almeida et al. (2012): the face's discharge blended with its neighbours' along the flow.
#[inline(always)]
fn centred(theta: f32, q: f32, q_before: f32, q_after: f32) -> f32 {
    theta * q + 0.5 * (1.0 - theta) * (q_before + q_after)
}

/// Bates et al. (2010) eq. 11: the new unit discharge through one face (zero when the face is
/// closed or the water that can cross it is below `hmin`). Written without branches so that
/// rows of faces vectorise: both outcomes are computed and one is selected.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn face_q(
    q: f32,
    z_a: f32,
    h_a: f32,
    z_b: f32,
    h_b: f32,
    n: f32,
    dt: f32,
    inv_dx: f32,
    hmin: f32,
    open: bool,
) -> f32 {
    let (eta_a, eta_b) = (z_a + h_a, z_b + h_b);
    let hf = eta_a.max(eta_b) - z_a.max(z_b);
    // The surface slope from the bed and depth differences, not from the sums (a lake at rest
    // on a bed at 100 m would otherwise see slopes of f32 rounding).
    let slope = ((z_b - z_a) + (h_b - h_a)) * inv_dx;
    let num = q - G * hf * dt * slope;
    // h^{7/3} as h²·∛h, with a cube root that inlines and vectorises (libm's does neither).
    let hs = hf.max(hmin);
    let den = 1.0 + G * dt * n * n * q.abs() / (hs * hs * cbrt_pos(hs));
    let r = num / den;
    if open & (hf > hmin) { r } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_cube_root_is_accurate() {
        for k in 0..2000 {
            let x = 1e-4f32 * 1.01f32.powi(k);
            let (a, b) = (cbrt_pos(x), x.cbrt());
            assert!((a - b).abs() <= 2e-6 * b, "{x}: {a} vs {b}");
        }
    }
}
