//! # green_wave
//!
//! An emergency vehicle from A to B with the signals on its way turning green ahead of it
//! ("一路绿灯"). Run the scene with `priority = false` as well (or compare the two with
//! `citytwin compare`) to see what the priority saves and what it costs cross traffic.
//!
//! ```toml
//! [[scenario]]
//! plugin = "green_wave"
//! params = { from = "h01", to = "h31", depart_s = 1200.0 }
//! ```
//!
//! Parameters: `from`, `to` (road ids), `depart_s` (default 0), `priority` (default true),
//! `id` (default `"emergency-1"`), `kind` (`emergency`, the default, or `car`, `bus`, `truck`),
//! `layer` (default `"traffic"`). The vehicle's travel time and time lost are KPIs
//! `traffic.vehicle.travel_time_s` / `traffic.vehicle.time_loss_s` scoped by its id, and its
//! arrival is an event. Written only against the engine's public API (`DemandCommand`).

use bevy::prelude::*;
use citytwin_engine::modules::{add_systems_once, check_time};
use citytwin_engine::prelude::*;
use serde::Deserialize;

/// The plugin.
pub struct GreenWave;

/// Vehicle kinds a scene may name.
#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Fire engine, ambulance, police.
    Emergency,
    /// Car.
    Car,
    /// Bus.
    Bus,
    /// Truck.
    Truck,
}

/// Parameters (see the crate docs).
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GreenWaveParams {
    /// Start road.
    pub from: String,
    /// Destination road.
    pub to: String,
    /// Departure, s after the scene start.
    #[serde(default)]
    pub depart_s: f64,
    /// Whether signals pre-empt.
    #[serde(default = "yes")]
    pub priority: bool,
    /// Vehicle id.
    #[serde(default = "default_id")]
    pub id: String,
    /// Vehicle kind.
    #[serde(default = "emergency")]
    pub kind: Kind,
    /// The roads' layer.
    #[serde(default = "traffic_layer")]
    pub layer: String,
}

fn yes() -> bool {
    true
}
fn default_id() -> String {
    "emergency-1".into()
}
fn emergency() -> Kind {
    Kind::Emergency
}
fn traffic_layer() -> String {
    "traffic".into()
}

#[derive(serde::Serialize, serde::Deserialize, Component, Clone, Debug)]
struct Call(DemandCommand);

impl SceneModule for GreenWave {
    fn name(&self) -> &'static str {
        "green_wave"
    }

    fn description(&self) -> &'static str {
        "an emergency vehicle from A to B with the signals turning green ahead of it"
    }

    fn build(&self, params: &toml::Table, app: &mut App) -> Result<(), String> {
        let p: GreenWaveParams = parse_params(params)?;
        check_time("depart_s", p.depart_s)?;
        let world = app.world_mut();
        let roads: Vec<FeatureId> = world
            .query_filtered::<&FeatureId, With<Road>>()
            .iter(world)
            .filter(|f| f.layer == p.layer)
            .cloned()
            .collect();
        let find = |key: &str, id: &str| {
            roads
                .iter()
                .find(|f| f.id == id)
                .cloned()
                .ok_or_else(|| format!("`{key}`: no road '{id}' in layer '{}'", p.layer))
        };
        let (from, to) = (find("from", &p.from)?, find("to", &p.to)?);
        world.spawn(Call(DemandCommand::AddVehicle {
            id: p.id.clone(),
            kind: match p.kind {
                Kind::Emergency => VehicleKind::Emergency,
                Kind::Car => VehicleKind::Car,
                Kind::Bus => VehicleKind::Bus,
                Kind::Truck => VehicleKind::Truck,
            },
            from,
            to,
            depart_s: p.depart_s,
            signal_priority: p.priority,
        }));
        add_systems_once(app, "green_wave", act.in_set(SimSet::Scenario));
        app.checkpoint_component::<Call>();
        Ok(())
    }
}

/// Place the calls at the first tick; the traffic simulation sends each vehicle at its time.
fn act(clock: Res<SimClock>, calls: Query<(Entity, &Call)>, mut out: MessageWriter<DemandCommand>) {
    if clock.tick() != 0 {
        return;
    }
    let mut list: Vec<(Entity, &Call)> = calls.iter().collect();
    list.sort_by_key(|(e, _)| *e);
    for (_, Call(c)) in list {
        out.write(c.clone());
    }
}
