//! Car-following: SUMO's Krauss model (Euler update, as SUMO 1.28 computes it by default) and
//! the Intelligent Driver Model.
//!
//! Every function takes the step `dt_s`; speeds in m/s, gaps in m (bumper to bumper minus the
//! follower's minimum gap, as SUMO passes them), accelerations in m/s².

use crate::demand::CarFollowModel;

/// Distance needed to stop from `speed` braking at `decel` in steps of `dt` (SUMO's Euler brake
/// gap), plus `headway` seconds of reaction.
pub fn brake_gap(speed: f64, decel: f64, dt: f64, headway: f64) -> f64 {
    if speed <= 0.0 {
        return 0.0;
    }
    let red = decel * dt;
    let steps = (speed / red).floor();
    dt * (steps * speed - red * steps * (steps + 1.0) / 2.0) + speed * headway
}

/// The highest speed from which a vehicle can still stop within `gap`, braking at `decel` after
/// a reaction time `tau` (SUMO's `maximumSafeStopSpeedEuler`).
pub fn max_safe_stop_speed(gap: f64, decel: f64, tau: f64, dt: f64) -> f64 {
    let g = gap - 1e-6;
    if g <= 0.0 {
        return 0.0;
    }
    let b = decel * dt;
    let (t, s) = (tau, dt);
    let n = (0.5 - ((t + ((s * s) + 4.0 * ((s * (2.0 * g / b - t)) + (t * t))).sqrt() * -0.5) / s))
        .floor()
        .max(0.0);
    let h = 0.5 * n * (n - 1.0) * b * s + n * b * t;
    let r = (g - h) / (n * s + t);
    (n * b + r).max(0.0)
}

/// The speed at which a vehicle reaches `target` after `dist` metres braking at `decel`
/// (SUMO's `freeSpeed`, Euler): how fast it may go now to slow down in time for a lower limit
/// ahead.
pub fn free_speed(dist: f64, target: f64, decel: f64, dt: f64) -> f64 {
    let v = target * dt;
    if dist < v {
        return target;
    }
    let b = decel * dt * dt;
    let y = ((((b + 2.0 * v) * (b + 2.0 * v) + 8.0 * b * dist).sqrt() - b) * 0.5 - v) / b;
    let y = y.max(0.0);
    let y_full = y.floor();
    let exact =
        (y_full * y_full + y_full) * 0.5 * b + y_full * v + if y > y_full { v } else { 0.0 };
    ((dist - exact).max(0.0) / (y_full + 1.0)) / dt + y_full * decel * dt + target
}

/// Driving parameters of one vehicle, copied from its type.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Driver {
    /// Max acceleration, m/s².
    pub accel: f64,
    /// Comfortable deceleration, m/s².
    pub decel: f64,
    /// Reaction / desired headway, s.
    pub tau: f64,
    /// Krauss imperfection.
    pub sigma: f64,
    /// Minimum standing gap, m.
    pub min_gap: f64,
    /// Model.
    pub model: CarFollowModel,
}

impl Driver {
    /// Safe speed behind a leader `gap` ahead moving at `leader_speed`, braking at up to
    /// `leader_decel`.
    pub fn follow_speed(
        &self,
        speed: f64,
        gap: f64,
        leader_speed: f64,
        leader_decel: f64,
        dt: f64,
    ) -> f64 {
        match self.model {
            CarFollowModel::Krauss => {
                let safe = max_safe_stop_speed(
                    gap + brake_gap(leader_speed, self.decel.max(leader_decel), dt, 0.0),
                    self.decel,
                    self.tau,
                    dt,
                );
                safe.min(speed + self.accel * dt)
            }
            CarFollowModel::Idm { delta } => {
                let v = self.idm_speed(speed, gap, leader_speed, f64::INFINITY, delta, dt);
                // Euler steps of 1 s can overshoot what the IDM's continuous form avoids: never
                // exceed the speed that lets the vehicle stop if the leader brakes hard.
                v.min(max_safe_stop_speed(
                    gap + brake_gap(leader_speed, self.decel.max(leader_decel), dt, 0.0),
                    self.decel,
                    0.0,
                    dt,
                ))
            }
        }
    }

    /// Safe speed to stop within `gap` (a red light, a lane end).
    pub fn stop_speed(&self, speed: f64, gap: f64, dt: f64) -> f64 {
        match self.model {
            CarFollowModel::Krauss => {
                max_safe_stop_speed(gap, self.decel, self.tau, dt).min(speed + self.accel * dt)
            }
            CarFollowModel::Idm { delta } => self
                .idm_speed(speed, gap, 0.0, f64::INFINITY, delta, dt)
                .min(max_safe_stop_speed(gap, self.decel, 0.0, dt)),
        }
    }

    /// The free-road speed next step towards `desired`.
    pub fn free_road_speed(&self, speed: f64, desired: f64, dt: f64) -> f64 {
        match self.model {
            CarFollowModel::Krauss => (speed + self.accel * dt).min(desired),
            CarFollowModel::Idm { delta } => {
                self.idm_speed(speed, f64::INFINITY, 0.0, desired, delta, dt)
            }
        }
    }

    /// IDM integrated over the step in ten sub-steps, as SUMO does (leader at constant speed).
    /// `desired` is infinite for an interaction-only term.
    fn idm_speed(
        &self,
        speed: f64,
        gap: f64,
        leader_speed: f64,
        desired: f64,
        delta: f64,
        dt: f64,
    ) -> f64 {
        const N: usize = 10;
        let h = dt / N as f64;
        let (mut v, mut s) = (speed, gap + self.min_gap);
        let sqrt_ab = (self.accel * self.decel).sqrt();
        for _ in 0..N {
            let free = if desired.is_finite() && desired > 0.0 {
                1.0 - (v / desired).powf(delta)
            } else {
                1.0
            };
            let inter = if s.is_finite() {
                let s_star = self.min_gap
                    + (v * self.tau + v * (v - leader_speed) / (2.0 * sqrt_ab)).max(0.0);
                (s_star / s.max(0.01)).powi(2)
            } else {
                0.0
            };
            let a = self.accel * (free - inter);
            let nv = (v + a * h).max(0.0);
            if s.is_finite() {
                s -= (nv - leader_speed) * h;
            }
            v = nv;
        }
        v
    }

    /// Krauss's random slow-down of `v_max` with `u` uniform in [0, 1) (SUMO's `dawdle2`).
    pub fn dawdle(&self, v_max: f64, u: f64, dt: f64) -> f64 {
        if !matches!(self.model, CarFollowModel::Krauss) || self.sigma <= 0.0 {
            return v_max;
        }
        let v = if v_max < self.accel {
            v_max - self.sigma * v_max * u * dt
        } else {
            v_max - self.sigma * self.accel * u * dt
        };
        v.max(0.0)
    }
}

/// Time to cover `dist` from `speed`, accelerating at `accel` up to `vmax`.
pub fn arrival_time(dist: f64, speed: f64, accel: f64, vmax: f64) -> f64 {
    if dist <= 0.0 {
        return 0.0;
    }
    let vmax = vmax.max(0.1);
    let v = speed.min(vmax);
    let t1 = (vmax - v) / accel;
    let d1 = v * t1 + 0.5 * accel * t1 * t1;
    if dist <= d1 {
        (-v + (v * v + 2.0 * accel * dist).sqrt()) / accel
    } else {
        t1 + (dist - d1) / vmax
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_stop_speed_stops_within_the_gap() {
        // Braking from the safe speed at `decel` per step must end within the gap.
        for gap in [0.5, 3.0, 10.0, 40.0, 150.0] {
            let mut v = max_safe_stop_speed(gap, 4.5, 1.0, 1.0);
            let mut travelled = 0.0;
            while v > 0.0 {
                travelled += v;
                v = (v - 4.5).max(0.0);
            }
            assert!(travelled <= gap + 1e-6, "gap {gap}: travelled {travelled}");
        }
        assert_eq!(max_safe_stop_speed(0.0, 4.5, 1.0, 1.0), 0.0);
    }

    #[test]
    fn brake_gap_matches_the_sum_of_steps() {
        // 13.89 m/s braking 4.5 per 1 s step: 9.39 + 4.89 + 0.39.
        let g = brake_gap(13.89, 4.5, 1.0, 0.0);
        assert!((g - (9.39 + 4.89 + 0.39)).abs() < 1e-9, "{g}");
    }

    #[test]
    fn free_speed_slows_down_in_time() {
        let v = free_speed(50.0, 5.0, 4.5, 1.0);
        assert!(v > 5.0 && v < 25.0, "{v}");
        assert_eq!(free_speed(2.0, 5.0, 4.5, 1.0), 5.0);
    }
}
