//! # chemical_leak
//!
//! A chemical release — a tank, a pipe, a tanker on the road — at a place and a time, for a
//! duration, at a rate; and, while the cloud drifts, the zone where the substance is above a
//! threshold (an AEGL or ERPG value) and the buildings and people inside it.
//!
//! ```toml
//! [[scenario]]
//! plugin = "chemical_leak"
//! params = { substance = "chlorine", at = "tanks", start_s = 900.0, duration_s = 1200.0,
//!            rate_kg_s = 0.1, height_m = 2.0, threshold_ug_m3 = 1450.0 }
//! ```
//!
//! Parameters: `substance`; where — `at`, a feature id of the scene (its centroid), or `lon` and
//! `lat`; `start_s` (after the scene start), `duration_s`, `rate_kg_s`; `height_m` of the
//! release (default 1 m); `threshold_ug_m3`, the concentration that defines the zone; `name`
//! (default `chemical_leak`), the release's feature id in layer `scenario`.
//!
//! The release is an engine [`EmissionSource`] whose rate the plugin switches on and off; the
//! air-pollution simulation disperses it (as puffs: its rate changes). The zone comes from the
//! simulation's maps (the engine's [`FieldLog`], `pollution.<substance>` per H3 cell): each new
//! map, the cells above the threshold are the zone, and the buildings anchored in them are
//! inside. KPIs, scoped by `name`: `leak.zone_area` (m²), `leak.buildings_in_zone`,
//! `leak.people_in_zone`, and since the start `leak.buildings_reached` and
//! `leak.people_reached`; events `scenario.leak_started`, `scenario.leak_ended` and
//! `scenario.leak_reached_building` (once per building).
//!
//! Written only against `citytwin-engine`'s public API.

use std::collections::BTreeSet;

use bevy::math::DVec2;
use bevy::prelude::*;
use citytwin_engine::modules::{add_systems_once, check_positive, check_time};
use citytwin_engine::prelude::*;
use geo::Centroid;
use h3o::CellIndex;
use serde::Deserialize;

/// The plugin.
pub struct ChemicalLeak;

/// Parameters (see the crate docs).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChemicalLeakParams {
    /// Substance, as the pollution simulation names species (e.g. `chlorine`, `ammonia`).
    pub substance: String,
    /// A feature id of the scene; or give `lon` and `lat`.
    #[serde(default)]
    pub at: Option<String>,
    /// Longitude, degrees.
    #[serde(default)]
    pub lon: Option<f64>,
    /// Latitude, degrees.
    #[serde(default)]
    pub lat: Option<f64>,
    /// Start, s after the scene start.
    pub start_s: f64,
    /// Duration, s.
    pub duration_s: f64,
    /// Rate while it lasts, kg/s.
    pub rate_kg_s: f64,
    /// Height of the release above ground, m. Default 1 m.
    #[serde(default = "default_height")]
    pub height_m: f64,
    /// Concentration that bounds the zone, µg/m³.
    pub threshold_ug_m3: f64,
    /// Feature id of the release. Default `chemical_leak`.
    #[serde(default = "default_name")]
    pub name: String,
}

fn default_height() -> f64 {
    1.0
}
fn default_name() -> String {
    "chemical_leak".into()
}

/// One leak in the world.
#[derive(Component, Clone, Debug)]
struct Leak {
    params: ChemicalLeakParams,
    source: Entity,
    active: bool,
    /// Version of the last map read.
    seen: u64,
    reached: BTreeSet<Entity>,
    people_reached: u64,
}

impl SceneModule for ChemicalLeak {
    fn name(&self) -> &'static str {
        "chemical_leak"
    }

    fn description(&self) -> &'static str {
        "a chemical release at a place and time; the zone above a threshold and the buildings and people inside it"
    }

    fn build(&self, params: &toml::Table, app: &mut App) -> Result<(), String> {
        let p: ChemicalLeakParams = parse_params(params)?;
        check_positive("rate_kg_s", p.rate_kg_s)?;
        check_positive("duration_s", p.duration_s)?;
        check_positive("threshold_ug_m3", p.threshold_ug_m3)?;
        check_time("start_s", p.start_s)?;
        if !(p.height_m.is_finite() && p.height_m >= 0.0) {
            return Err(format!("`height_m`: {} must be 0 or more", p.height_m));
        }
        let xy = place(app, &p)?;
        let source = app
            .world_mut()
            .spawn((
                Kind(EntityKind::EmissionSource),
                FeatureId {
                    layer: "scenario".into(),
                    id: p.name.clone(),
                },
                Position { xy_m: xy, z_m: 0.0 },
                EmissionSource {
                    pollutant: p.substance.clone(),
                    rate_kg_s: 0.0,
                    kind: EmissionKind::Area {
                        height_m: p.height_m,
                    },
                },
            ))
            .id();
        app.world_mut().spawn(Leak {
            params: p,
            source,
            active: false,
            seen: 0,
            reached: BTreeSet::new(),
            people_reached: 0,
        });
        add_systems_once(
            app,
            "chemical_leak",
            (switch_leaks, affected_zone)
                .chain()
                .in_set(SimSet::Scenario),
        );
        Ok(())
    }
}

/// Where the release is, in the frame.
fn place(app: &mut App, p: &ChemicalLeakParams) -> Result<DVec2, String> {
    match (&p.at, p.lon, p.lat) {
        (Some(id), None, None) => {
            let world = app.world_mut();
            let mut q = world.query::<(&FeatureId, Option<&Position>, Option<&Shape>)>();
            let mut hits: Vec<(String, DVec2)> = q
                .iter(world)
                .filter(|(f, _, _)| f.id == *id || format!("{}/{}", f.layer, f.id) == *id)
                .filter_map(|(f, pos, shape)| {
                    let xy = shape
                        .and_then(|s| s.0.centroid())
                        .map(|c| DVec2::new(c.x(), c.y()))
                        .or(pos.map(|p| p.xy_m))?;
                    Some((format!("{}/{}", f.layer, f.id), xy))
                })
                .collect();
            hits.sort_by(|a, b| a.0.cmp(&b.0));
            match hits.len() {
                0 => Err(format!("`at`: no feature with id '{id}' in the scene")),
                1 => Ok(hits[0].1),
                _ => Err(format!(
                    "`at`: '{id}' names {} features ({}); write it as layer/id",
                    hits.len(),
                    hits.iter()
                        .map(|h| h.0.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        (None, Some(lon), Some(lat)) => {
            let ll = LonLat::new(lon, lat);
            if !ll.is_valid() {
                return Err(format!(
                    "`lon`, `lat`: ({lon}, {lat}) is not a valid position"
                ));
            }
            let c = app.world().resource::<GeoFrame>().to_local(ll);
            Ok(DVec2::new(c.x, c.y))
        }
        _ => Err("give either `at` (a feature id) or both `lon` and `lat`".into()),
    }
}

/// Open and close the releases on time.
fn switch_leaks(
    clock: Res<SimClock>,
    mut leaks: Query<&mut Leak>,
    mut sources: Query<(&mut EmissionSource, &Position)>,
    mut events: ResMut<EventLog>,
) {
    let t = clock.elapsed_s();
    for mut leak in &mut leaks {
        // (The recorder sorts a tick's events, so the order leaks are visited in cannot show.)
        let p = &leak.params;
        let on = t >= p.start_s && t < p.start_s + p.duration_s;
        if on == leak.active {
            continue;
        }
        let Ok((mut src, pos)) = sources.get_mut(leak.source) else {
            continue;
        };
        src.rate_kg_s = if on { p.rate_kg_s } else { 0.0 };
        let message = if on {
            format!(
                "{} leaking at {} g/s for {} s ('{}')",
                p.substance,
                p.rate_kg_s * 1000.0,
                p.duration_s,
                p.name
            )
        } else {
            format!("{} leak '{}' stopped", p.substance, p.name)
        };
        events.push(SimEvent {
            kind: if on {
                "scenario.leak_started".into()
            } else {
                "scenario.leak_ended".into()
            },
            entity: Some(leak.source),
            xy_m: Some(pos.xy_m),
            message,
        });
        leak.active = on;
    }
}

/// Read each new concentration map: the zone above the threshold and who is inside it.
fn affected_zone(
    fields: Res<FieldLog>,
    index: Res<SpatialIndex>,
    mut leaks: Query<&mut Leak>,
    buildings: Query<(&Building, Option<&FeatureId>)>,
    mut kpis: ResMut<Kpis>,
    mut events: ResMut<EventLog>,
) {
    for mut leak in &mut leaks {
        let name = format!("pollution.{}", leak.params.substance);
        let Some((version, map)) = fields.latest(&name) else {
            continue;
        };
        if version == leak.seen {
            continue;
        }
        leak.seen = version;
        let limit = leak.params.threshold_ug_m3 * 1e-9;
        let mut area_m2 = 0.0;
        let (mut n_b, mut n_p) = (0u64, 0u64);
        let mut newly: Vec<(Entity, String, u32, f64)> = Vec::new();
        for &(h3, value) in &map.cells {
            if value < limit {
                continue;
            }
            let Ok(cell) = CellIndex::try_from(h3) else {
                continue;
            };
            area_m2 += cell.area_m2();
            for e in index.in_cell(cell) {
                let Ok((b, fid)) = buildings.get(e) else {
                    continue;
                };
                n_b += 1;
                n_p += b.occupants as u64;
                if !leak.reached.contains(&e) {
                    let id = fid.map(|f| f.id.clone()).unwrap_or_else(|| format!("{e}"));
                    newly.push((e, id, b.occupants, value));
                }
            }
        }
        newly.sort_by_key(|n| n.0);
        for (e, id, people, value) in newly {
            leak.reached.insert(e);
            leak.people_reached += people as u64;
            events.push(SimEvent {
                kind: "scenario.leak_reached_building".into(),
                entity: Some(e),
                xy_m: None,
                message: format!(
                    "{} above {} µg/m³ at building {id} ({people} people): {:.0} µg/m³",
                    leak.params.substance,
                    leak.params.threshold_ug_m3,
                    value * 1e9
                ),
            });
        }
        let scope = leak.params.name.clone();
        kpis.set("leak.zone_area", &scope, area_m2, "m2");
        kpis.set("leak.buildings_in_zone", &scope, n_b as f64, "1");
        kpis.set("leak.people_in_zone", &scope, n_p as f64, "1");
        kpis.set(
            "leak.buildings_reached",
            &scope,
            leak.reached.len() as f64,
            "1",
        );
        kpis.set(
            "leak.people_reached",
            &scope,
            leak.people_reached as f64,
            "1",
        );
    }
}
