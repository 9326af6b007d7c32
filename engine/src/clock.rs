//! The simulation clock.
//!
//! Time advances in whole ticks of a fixed step. The clock counts ticks and derives every time from
//! them (never by adding floating-point steps), so tick 100 000 is exactly `100 000 × step` after
//! the start and no drift builds up over a long run.

use bevy::prelude::Resource;
use jiff::{SignedDuration, ZonedDateTime};

/// The deterministic simulation clock. It never reads the wall clock.
#[derive(Resource, Clone, Debug)]
pub struct SimClock {
    start: ZonedDateTime,
    step_us: i64,
    tick: u64,
    end_tick: u64,
}

impl SimClock {
    /// A clock starting at `start`, stepping `step_s` seconds (rounded to the microsecond), running
    /// for `duration_s` seconds (rounded up to whole steps). Both must be positive; scene validation
    /// checks that before a clock is built.
    pub fn new(start: ZonedDateTime, step_s: f64, duration_s: f64) -> Self {
        let step_us = ((step_s * 1e6).round() as i64).max(1);
        let end_tick = ((duration_s * 1e6) / step_us as f64).ceil().max(0.0) as u64;
        Self {
            start,
            step_us,
            tick: 0,
            end_tick,
        }
    }

    /// The scene start, with its time zone.
    pub fn start(&self) -> &ZonedDateTime {
        &self.start
    }

    /// The start's local (wall-clock) time as seconds since 1970-01-01 00:00, for models that
    /// follow the hour of the day, the day of the week or the month (dry-weather patterns, tides).
    pub fn start_local_s(&self) -> f64 {
        self.start.timestamp().as_second() as f64 + self.start.offset().seconds() as f64
    }

    /// Ticks completed since the start.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// The number of ticks the scene runs for.
    pub fn end_tick(&self) -> u64 {
        self.end_tick
    }

    /// Whether the run has reached its duration.
    pub fn finished(&self) -> bool {
        self.tick >= self.end_tick
    }

    /// The fixed step, s.
    pub fn step_s(&self) -> f64 {
        self.step_us as f64 * 1e-6
    }

    /// Seconds since the start at the current tick.
    pub fn elapsed_s(&self) -> f64 {
        self.elapsed_s_at(self.tick)
    }

    /// Seconds since the start at tick `tick`.
    pub fn elapsed_s_at(&self, tick: u64) -> f64 {
        (tick as i128 * self.step_us as i128) as f64 * 1e-6
    }

    /// The scene duration, s.
    pub fn duration_s(&self) -> f64 {
        self.elapsed_s_at(self.end_tick)
    }

    /// The civil date-time of the current tick, in the scene's time zone.
    pub fn now(&self) -> ZonedDateTime {
        let us = (self.tick as i128 * self.step_us as i128).min(i64::MAX as i128) as i64;
        self.start
            .checked_add(SignedDuration::from_micros(us))
            .unwrap_or_else(|_| self.start.clone())
    }

    /// The tick at or after `elapsed_s` seconds from the start (for scheduling actions).
    pub fn tick_at(&self, elapsed_s: f64) -> u64 {
        ((elapsed_s * 1e6) / self.step_us as f64).ceil().max(0.0) as u64
    }

    /// Whether the current tick starts a period of `interval_s` (always true for intervals
    /// shorter than one step). Used for KPI and snapshot intervals.
    pub fn is_every(&self, interval_s: f64) -> bool {
        let every = ((interval_s * 1e6) / self.step_us as f64).round().max(1.0) as u64;
        self.tick.is_multiple_of(every)
    }

    /// Advance by one tick. The engine calls this at the end of each step; nothing else should.
    pub(crate) fn advance(&mut self) {
        self.tick += 1;
    }

    /// Jump to a tick (restoring a checkpoint).
    pub fn set_tick(&mut self, tick: u64) {
        self.tick = tick;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_is_derived_from_ticks_without_drift() {
        let start: ZonedDateTime = "2026-07-15T08:00:00+08:00[Asia/Shanghai]".parse().unwrap();
        let mut c = SimClock::new(start, 0.1, 3600.0);
        assert_eq!(c.end_tick(), 36_000);
        for _ in 0..36_000 {
            c.advance();
        }
        assert!(c.finished());
        assert_eq!(c.elapsed_s(), 3600.0);
        assert_eq!(
            c.now().to_string(),
            "2026-07-15T09:00:00+08:00[Asia/Shanghai]"
        );
        assert_eq!(c.tick_at(1.05), 11);
        c.set_tick(600);
        assert!(c.is_every(60.0));
        c.set_tick(601);
        assert!(!c.is_every(60.0));
    }
}
