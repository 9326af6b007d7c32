//! # speed_limit — the plugin template
//!
//! Lower the speed limit on some roads for a time window: a school zone at the start of
//! classes, a storm warning, a slow zone around an incident. Traffic slows there (and may route
//! around); the old limits come back at the end.
//!
//! ```toml
//! [[scenario]]
//! plugin = "speed_limit"
//! params = { roads = ["h11", "-h11"], speed_kmh = 20.0, from_s = 300.0, until_s = 1500.0 }
//! ```
//!
//! This crate is also the template for writing a plugin (see `plugins/README.md`): one unit
//! struct implementing [`SceneModule`], typed parameters checked when the scene loads, a
//! component holding what the plugin will do, and one system in `SimSet::Scenario` that acts
//! at the right ticks through engine commands. It uses only `citytwin-engine`'s public API.

use bevy::prelude::*;
use citytwin_engine::modules::{add_systems_once, check_window};
use citytwin_engine::prelude::*;
use serde::Deserialize;

/// Step 2: the plugin (what the registry holds).
pub struct SpeedLimit;

/// Parameters, as a scene writes them. `deny_unknown_fields` turns a typo into an error.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SpeedLimitParams {
    /// Road ids, as the run store's features name them.
    pub roads: Vec<String>,
    /// The limit while it lasts, km/h (the unit people use; SI inside).
    pub speed_kmh: f64,
    /// Start, s after the scene start. Default 0.
    #[serde(default)]
    pub from_s: f64,
    /// End, s after the scene start. Default: to the end of the run.
    #[serde(default)]
    pub until_s: Option<f64>,
    /// The roads' layer. Default `"traffic"`, the traffic simulation's.
    #[serde(default = "traffic_layer")]
    pub layer: String,
}

fn traffic_layer() -> String {
    "traffic".into()
}

/// One window of lowered limits (each `[[scenario]]` adds one).
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug)]
struct Window {
    /// Whose limit it is, for the traffic's holds: `speed_limit` and the window's number in the
    /// scene, so overlapping windows each lift only their own.
    by: String,
    roads: Vec<FeatureId>,
    speed_mps: f64,
    from_s: f64,
    until_s: Option<f64>,
}

impl SceneModule for SpeedLimit {
    fn name(&self) -> &'static str {
        "speed_limit"
    }

    fn description(&self) -> &'static str {
        "lower the speed limit on roads for a time window"
    }

    fn build(&self, params: &toml::Table, app: &mut App) -> Result<(), String> {
        // Step 3: parse and check everything now: a mistake fails when the scene loads.
        let p: SpeedLimitParams = parse_params(params)?;
        if !(p.speed_kmh.is_finite() && p.speed_kmh > 0.0) {
            return Err(format!("`speed_kmh`: {} must be positive", p.speed_kmh));
        }
        check_window(p.from_s, p.until_s)?;
        // Still step 3: find what it acts on among the world's entities (the simulations built theirs).
        let world = app.world_mut();
        let known: Vec<FeatureId> = world
            .query_filtered::<&FeatureId, With<Road>>()
            .iter(world)
            .filter(|f| f.layer == p.layer)
            .cloned()
            .collect();
        let mut roads = Vec::new();
        for (i, id) in p.roads.iter().enumerate() {
            match known.iter().find(|f| &f.id == id) {
                Some(r) => roads.push(r.clone()),
                None => {
                    return Err(format!(
                        "`roads[{i}]`: no road '{id}' in layer '{}'",
                        p.layer
                    ));
                }
            }
        }
        if roads.is_empty() {
            return Err("`roads`: name at least one road".into());
        }
        // Step 4: keep what to do in a component; add the system (once for every window), and
        // register the component for checkpoints so replays and forks carry it.
        let n = world.query::<&Window>().iter(world).count();
        world.spawn(Window {
            by: format!("speed_limit#{}", n + 1),
            roads,
            speed_mps: p.speed_kmh / 3.6,
            from_s: p.from_s,
            until_s: p.until_s,
        });
        add_systems_once(app, "speed_limit", act.in_set(SimSet::Scenario));
        app.checkpoint_component::<Window>();
        Ok(())
    }
}

/// Step 4: act at the ticks that reach `from_s` and `until_s`, through engine commands, and
/// say so in the event log.
fn act(
    clock: Res<SimClock>,
    windows: Query<(Entity, &Window)>,
    mut out: MessageWriter<RoadCommand>,
    mut events: ResMut<EventLog>,
) {
    let tick = clock.tick();
    let mut list: Vec<(Entity, &Window)> = windows.iter().collect();
    list.sort_by_key(|(e, _)| *e);
    for (_, w) in list {
        if clock.tick_at(w.from_s) == tick {
            for road in &w.roads {
                out.write(RoadCommand::SetSpeed {
                    road: road.clone(),
                    speed_mps: w.speed_mps,
                    by: w.by.clone(),
                });
            }
            events.push(SimEvent {
                kind: "scenario.speed_limit_set".into(),
                entity: None,
                xy_m: None,
                message: format!("{:.0} km/h on {} road(s)", w.speed_mps * 3.6, w.roads.len()),
            });
        }
        if let Some(u) = w.until_s
            && clock.tick_at(u) == tick
        {
            for road in &w.roads {
                out.write(RoadCommand::LiftSpeed {
                    road: road.clone(),
                    by: w.by.clone(),
                });
            }
            events.push(SimEvent {
                kind: "scenario.speed_limit_lifted".into(),
                entity: None,
                xy_m: None,
                message: format!("own limits back on {} road(s)", w.roads.len()),
            });
        }
    }
}
