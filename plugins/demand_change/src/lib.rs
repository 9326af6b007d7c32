//! # demand_change
//!
//! Scale or shift traffic demand for a time window: a concert letting out (+40 % from 21:00), a
//! new development (+15 % all day), a staggered-hours policy (the peak half an hour later).
//!
//! ```toml
//! [[scenario]]
//! plugin = "demand_change"
//! params = { factor = 1.4, from_s = 1800.0, until_s = 3600.0 }
//! ```
//!
//! Parameters: `factor` (≥ 0; default 1: no change in volume) multiplies the trips departing in
//! `[from_s, until_s)` (defaults: the whole run); `shift_s` (default 0) moves their departures.
//! Which trips are dropped or repeated follows the scene's seed. The change is sent at the
//! scene start, so it applies to trips planned in advance; written only against the engine's
//! public API (`DemandCommand`).

use bevy::prelude::*;
use citytwin_engine::modules::{add_systems_once, check_window};
use citytwin_engine::prelude::*;
use serde::Deserialize;

/// The plugin.
pub struct DemandChange;

/// Parameters (see the crate docs).
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DemandChangeParams {
    /// Volume factor.
    #[serde(default = "one")]
    pub factor: f64,
    /// Departure shift, s.
    #[serde(default)]
    pub shift_s: f64,
    /// Window start, s after the scene start.
    #[serde(default)]
    pub from_s: f64,
    /// Window end, s after the scene start.
    #[serde(default)]
    pub until_s: Option<f64>,
}

fn one() -> f64 {
    1.0
}

#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug)]
struct Change(DemandChangeParams);

impl SceneModule for DemandChange {
    fn name(&self) -> &'static str {
        "demand_change"
    }

    fn description(&self) -> &'static str {
        "scale or shift traffic demand for a time window"
    }

    fn build(&self, params: &toml::Table, app: &mut App) -> Result<(), String> {
        let p: DemandChangeParams = parse_params(params)?;
        if !(p.factor.is_finite() && p.factor >= 0.0) {
            return Err(format!("`factor`: {} must be 0 or more", p.factor));
        }
        if !p.shift_s.is_finite() {
            return Err("`shift_s`: must be a number of seconds".into());
        }
        check_window(p.from_s, p.until_s)?;
        if p.factor == 1.0 && p.shift_s == 0.0 {
            return Err("nothing to change: give `factor` (≠ 1) or `shift_s` (≠ 0)".into());
        }
        let world = app.world_mut();
        world.spawn(Change(p));
        add_systems_once(app, "demand_change", act.in_set(SimSet::Scenario));
        app.checkpoint_component::<Change>();
        Ok(())
    }
}

/// At the first tick, send the changes (scale before shift, in the order of the scene).
fn act(
    clock: Res<SimClock>,
    changes: Query<(Entity, &Change)>,
    mut out: MessageWriter<DemandCommand>,
) {
    if clock.tick() != 0 {
        return;
    }
    let mut list: Vec<(Entity, &Change)> = changes.iter().collect();
    list.sort_by_key(|(e, _)| *e);
    for (_, Change(p)) in list {
        let until_s = p.until_s.unwrap_or(f64::INFINITY);
        if p.factor != 1.0 {
            out.write(DemandCommand::Scale {
                factor: p.factor,
                from_s: p.from_s,
                until_s,
            });
        }
        if p.shift_s != 0.0 {
            out.write(DemandCommand::Shift {
                by_s: p.shift_s,
                from_s: p.from_s,
                until_s,
            });
        }
    }
}
