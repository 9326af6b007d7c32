//! # signal_retiming
//!
//! Apply new fixed-time signal programs to a set of intersections at a given time — a retiming
//! proposed by `citytwin optimize-signals`, by an engineer, or a manual override.
//!
//! ```toml
//! [[scenario]]
//! plugin = "signal_retiming"
//! params = { at_s = 900.0, programs = { n11 = "GGGGgrrrrGGGGgrrrr:50 yyyyyrrrryyyyyrrrr:4 rrrrrGGGgrrrrrGGGg:30 rrrrryyyyrrrrryyyy:4" } }
//! ```
//!
//! Parameters: `programs`, per intersection id a program in the compact form
//! `STATE:SECONDS …` (one letter per controlled movement, SUMO's alphabet); `at_s`, when it
//! takes effect (default 0); `layer`, the intersections' layer (default `"traffic"`). Each
//! program is checked against the intersection's current one when the scene is built: it must
//! exist, be signalised and control as many movements.
//!
//! Written only against `citytwin-engine`'s public API: `Intersection` entities and
//! `RoadCommand::SetSignalProgram`.

use std::collections::BTreeMap;

use bevy::prelude::*;
use citytwin_engine::modules::{add_systems_once, check_time};
use citytwin_engine::prelude::*;
use serde::Deserialize;

/// The plugin.
pub struct SignalRetiming;

/// Parameters (see the crate docs).
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SignalRetimingParams {
    /// Programs by intersection id, compact form.
    pub programs: BTreeMap<String, String>,
    /// When they take effect, s after the scene start.
    #[serde(default)]
    pub at_s: f64,
    /// The intersections' layer.
    #[serde(default = "traffic_layer")]
    pub layer: String,
}

fn traffic_layer() -> String {
    "traffic".into()
}

#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug)]
struct Retiming {
    at_s: f64,
    programs: Vec<(FeatureId, SignalProgram)>,
}

impl SceneModule for SignalRetiming {
    fn name(&self) -> &'static str {
        "signal_retiming"
    }

    fn description(&self) -> &'static str {
        "apply given fixed-time signal programs to intersections at a set time"
    }

    fn build(&self, params: &toml::Table, app: &mut App) -> Result<(), String> {
        let p: SignalRetimingParams = parse_params(params)?;
        if p.programs.is_empty() {
            return Err("`programs`: give at least one intersection's program".into());
        }
        check_time("at_s", p.at_s)?;
        let world = app.world_mut();
        let known: Vec<(FeatureId, Intersection)> = world
            .query::<(&FeatureId, &Intersection)>()
            .iter(world)
            .filter(|(f, _)| f.layer == p.layer)
            .map(|(f, i)| (f.clone(), i.clone()))
            .collect();
        let mut programs = Vec::new();
        for (id, text) in &p.programs {
            let key = format!("`programs.{id}`");
            let Some((f, i)) = known.iter().find(|(f, _)| &f.id == id) else {
                return Err(format!(
                    "{key}: no intersection '{id}' in layer '{}'",
                    p.layer
                ));
            };
            let Some(current) = &i.signal else {
                return Err(format!("{key}: intersection '{id}' has no traffic light"));
            };
            let program = SignalProgram::parse(text, 0.0).map_err(|e| format!("{key}: {e}"))?;
            let (n, m) = (program.phases[0].state.len(), current.phases[0].state.len());
            if n != m {
                return Err(format!(
                    "{key}: the program controls {n} movements but the traffic light at '{id}' has {m}"
                ));
            }
            programs.push((f.clone(), program));
        }
        world.spawn(Retiming {
            at_s: p.at_s,
            programs,
        });
        add_systems_once(app, "signal_retiming", act.in_set(SimSet::Scenario));
        app.checkpoint_component::<Retiming>();
        Ok(())
    }
}

fn act(
    clock: Res<SimClock>,
    retimings: Query<(Entity, &Retiming)>,
    mut out: MessageWriter<RoadCommand>,
    mut events: ResMut<EventLog>,
) {
    let mut list: Vec<(Entity, &Retiming)> = retimings.iter().collect();
    list.sort_by_key(|(e, _)| *e);
    for (_, r) in list {
        if clock.tick_at(r.at_s) != clock.tick() {
            continue;
        }
        for (f, program) in &r.programs {
            out.write(RoadCommand::SetSignalProgram {
                intersection: f.clone(),
                program: program.clone(),
            });
        }
        events.push(SimEvent {
            kind: "scenario.signals_retimed".into(),
            entity: None,
            xy_m: None,
            message: format!(
                "new programs at {}",
                r.programs
                    .iter()
                    .map(|(f, _)| f.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
}
