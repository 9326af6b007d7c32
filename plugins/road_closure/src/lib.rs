//! # road_closure
//!
//! Close roads for a time window — road works, an accident, a flooded underpass — and open them
//! again. The traffic simulation reroutes the vehicles that meant to use them.
//!
//! ```toml
//! [[scenario]]
//! plugin = "road_closure"
//! params = { roads = ["-h11", "h11"], from_s = 600.0, until_s = 1800.0 }
//! ```
//!
//! Parameters: `roads`, the ids of the roads to close (as the run store's features name them);
//! `layer`, their layer (default `"traffic"`, the traffic simulation's); `from_s`, when the
//! closure starts after the scene start (default 0); `until_s`, when it ends (default: never).
//! Every road is checked when the scene is built, so a typo is an error naming the parameter.
//!
//! Written only against `citytwin-engine`'s public API: it finds the roads among the world's
//! `Road` entities and sends `RoadCommand`s in `SimSet::Scenario`.

use bevy::prelude::*;
use citytwin_engine::modules::{add_systems_once, check_window};
use citytwin_engine::prelude::*;
use serde::Deserialize;

/// The plugin.
pub struct RoadClosure;

/// Parameters (see the crate docs).
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoadClosureParams {
    /// Road ids.
    pub roads: Vec<String>,
    /// Their layer.
    #[serde(default = "traffic_layer")]
    pub layer: String,
    /// Start, s after the scene start.
    #[serde(default)]
    pub from_s: f64,
    /// End, s after the scene start (none: closed to the end).
    #[serde(default)]
    pub until_s: Option<f64>,
}

fn traffic_layer() -> String {
    "traffic".into()
}

/// One closure window in the world (several plugins instances may each add one).
#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug)]
struct Closure {
    /// Whose closure it is, for the traffic's holds: `road_closure` and the window's number in
    /// the scene, so overlapping windows each lift only their own.
    by: String,
    roads: Vec<FeatureId>,
    from_s: f64,
    until_s: Option<f64>,
}

impl SceneModule for RoadClosure {
    fn name(&self) -> &'static str {
        "road_closure"
    }

    fn description(&self) -> &'static str {
        "close roads for a time window; traffic reroutes"
    }

    fn build(&self, params: &toml::Table, app: &mut App) -> Result<(), String> {
        let p: RoadClosureParams = parse_params(params)?;
        if p.roads.is_empty() {
            return Err("`roads`: name at least one road".into());
        }
        check_window(p.from_s, p.until_s)?;
        let world = app.world_mut();
        let known: Vec<FeatureId> = world
            .query_filtered::<&FeatureId, With<Road>>()
            .iter(world)
            .filter(|f| f.layer == p.layer)
            .cloned()
            .collect();
        if known.is_empty() {
            return Err(format!(
                "no roads in layer '{}': road_closure needs a simulation that loads them (e.g. [simulations.traffic]) listed in the scene",
                p.layer
            ));
        }
        let mut roads = Vec::new();
        for (i, r) in p.roads.iter().enumerate() {
            match known.iter().find(|f| &f.id == r) {
                Some(f) => roads.push(f.clone()),
                None => {
                    return Err(format!(
                        "`roads[{i}]`: no road '{r}' in layer '{}'",
                        p.layer
                    ));
                }
            }
        }
        let n = world.query::<&Closure>().iter(world).count();
        world.spawn(Closure {
            by: format!("road_closure#{}", n + 1),
            roads,
            from_s: p.from_s,
            until_s: p.until_s,
        });
        add_systems_once(app, "road_closure", act.in_set(SimSet::Scenario));
        app.checkpoint_component::<Closure>();
        Ok(())
    }
}

/// Close at `from_s`, reopen at `until_s`: the tick that reaches each moment sends the commands.
fn act(
    clock: Res<SimClock>,
    closures: Query<(Entity, &Closure)>,
    mut out: MessageWriter<RoadCommand>,
    mut events: ResMut<EventLog>,
) {
    let tick = clock.tick();
    let mut list: Vec<(Entity, &Closure)> = closures.iter().collect();
    list.sort_by_key(|(e, _)| *e);
    for (_, c) in list {
        if clock.tick_at(c.from_s) == tick {
            for road in &c.roads {
                out.write(RoadCommand::Close {
                    road: road.clone(),
                    by: c.by.clone(),
                });
            }
            events.push(SimEvent {
                kind: "scenario.road_closed".into(),
                entity: None,
                xy_m: None,
                message: format!("closed {} road(s): {}", c.roads.len(), names(&c.roads)),
            });
        }
        if let Some(u) = c.until_s
            && clock.tick_at(u) == tick
        {
            for road in &c.roads {
                out.write(RoadCommand::Open {
                    road: road.clone(),
                    by: c.by.clone(),
                });
            }
            events.push(SimEvent {
                kind: "scenario.road_reopened".into(),
                entity: None,
                xy_m: None,
                message: format!("reopened {}", names(&c.roads)),
            });
        }
    }
}

fn names(roads: &[FeatureId]) -> String {
    roads
        .iter()
        .map(|r| r.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
