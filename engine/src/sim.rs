//! Building a simulation from a scene, and stepping it.

use bevy::prelude::*;
use h3o::Resolution;

use crate::checkpoint::{CheckpointAppExt, CommandsRead, mark_commands_read};
use crate::clock::SimClock;
use crate::geo_frame::GeoFrame;
use crate::hash::{StateHashAppExt, state_hash};
use crate::import::{ImportError, ImportReport, load_scene_data};
use crate::index::{SpatialIndex, sync_spatial_index};
use crate::model::*;
use crate::modules::ModuleRegistry;
use crate::recorder::{self, EventLog, FieldLog, Kpis, RecordConfig, kpi_due, snapshot_due};
use crate::rng::SimRng;
use crate::scene::{Scene, SceneError, SceneFiles};
use crate::schedule::{SimSet, SimStep, new_sim_schedule};

/// Why a simulation could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scene is invalid.
    #[error(transparent)]
    Scene(#[from] SceneError),
    /// Its data could not be imported.
    #[error(transparent)]
    Import(#[from] ImportError),
}

/// Options that override the scene.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimOptions {
    /// Use this seed instead of the scene's.
    pub seed: Option<u64>,
    /// Treat unordered conflicting systems as errors (tests).
    pub strict_schedule: bool,
}

/// The engine's core: clock, randomness, spatial index, KPIs, events, and the schedule's own
/// systems. Built from a scene by [`Sim::build`]; usable alone in tests and benchmarks.
pub struct EnginePlugin {
    /// Frame origin.
    pub frame: GeoFrame,
    /// The clock.
    pub clock: SimClock,
    /// Seed.
    pub seed: u64,
    /// H3 resolution of the index.
    pub h3_resolution: Resolution,
    /// Recording intervals.
    pub record: RecordConfig,
    /// Whether ambiguous system order is an error.
    pub strict_schedule: bool,
}

impl Plugin for EnginePlugin {
    fn build(&self, app: &mut App) {
        crate::control::add_control(app);
        app.insert_resource(self.frame.clone())
            .insert_resource(self.clock.clone())
            .insert_resource(SimRng::new(self.seed))
            .insert_resource(SpatialIndex::new(self.frame.clone(), self.h3_resolution))
            .insert_resource(self.record)
            .init_resource::<Kpis>()
            .init_resource::<EventLog>()
            .init_resource::<FieldLog>()
            .init_resource::<recorder::Rasters>()
            // Many systems set KPIs and raise events in the same set. Their order cannot change
            // the result: KPIs are keyed, and the recorder sorts a tick's events and maps.
            .allow_ambiguous_resource::<Kpis>()
            .allow_ambiguous_resource::<EventLog>()
            .allow_ambiguous_resource::<FieldLog>()
            .allow_ambiguous_resource::<recorder::Rasters>()
            .add_schedule(new_sim_schedule(self.strict_schedule))
            .add_systems(
                SimStep,
                (
                    crate::control::clear_commands,
                    crate::control::clear_rain,
                    recorder::serve_rasters,
                )
                    .in_set(SimSet::Advance),
            )
            .add_systems(SimStep, crate::control::rain_kpis.in_set(SimSet::Metrics))
            .add_systems(
                SimStep,
                (
                    crate::feeds::live::take_live
                        .in_set(SimSet::Ingest)
                        .run_if(resource_exists::<crate::feeds::LiveFeeds>),
                    crate::feeds::deliver_feeds.in_set(SimSet::Scenario),
                    crate::feeds::feed_kpis.in_set(SimSet::Metrics),
                    crate::feeds::record_readings
                        .in_set(SimSet::Record)
                        .after(recorder::record_fields),
                )
                    .run_if(resource_exists::<crate::feeds::Feeds>),
            )
            .add_systems(
                SimStep,
                (
                    (sync_spatial_index, mark_commands_read).in_set(SimSet::Index),
                    engine_kpis.in_set(SimSet::Metrics).run_if(kpi_due),
                    (
                        recorder::record_kpis.run_if(kpi_due),
                        recorder::record_snapshots.run_if(snapshot_due),
                        recorder::record_events,
                        recorder::record_fields,
                    )
                        .chain()
                        .in_set(SimSet::Record),
                    advance_clock.in_set(SimSet::Advance),
                ),
            )
            .hash_resource::<SimClock>()
            .hash_component::<FeatureId>()
            .hash_component::<Position>()
            .hash_component::<Shape>()
            .hash_component::<Road>()
            .hash_component::<Intersection>()
            .hash_component::<Building>()
            .hash_component::<EvacuationOrder>()
            .hash_component::<Vehicle>()
            .hash_component::<EmissionSource>();
        // Checkpoints: every model component, and the engine's state between steps (the clock's
        // tick and the commands in flight are saved by the checkpoint itself).
        app.init_resource::<CommandsRead>()
            .checkpoint_resource::<Kpis>()
            .checkpoint_resource::<EventLog>()
            .checkpoint_resource::<FieldLog>()
            .checkpoint_resource::<crate::control::RainTotals>()
            .on_restore(EventLog::remap)
            .checkpoint_component::<FeatureId>()
            .checkpoint_component::<Kind>()
            .checkpoint_component::<Position>()
            .checkpoint_component::<Shape>()
            .checkpoint_component::<Road>()
            .checkpoint_component::<Intersection>()
            .checkpoint_component::<Building>()
            .checkpoint_component::<EvacuationOrder>()
            .checkpoint_component::<Vehicle>()
            .checkpoint_component::<Sensor>()
            .checkpoint_component::<EmissionSource>()
            .checkpoint_component::<Manhole>()
            .checkpoint_component::<StorageUnit>()
            .checkpoint_component::<Outfall>()
            .checkpoint_component::<Conduit>()
            .checkpoint_component::<Pump>()
            .checkpoint_component::<Orifice>()
            .checkpoint_component::<Weir>()
            .checkpoint_component::<Subcatchment>()
            .checkpoint_component::<NodeInflow>()
            .checkpoint_component::<recorder::Snapshot>();
    }
}

fn advance_clock(mut clock: ResMut<SimClock>) {
    clock.advance();
}

/// Engine-level KPIs: how many entities of each kind the world holds.
fn engine_kpis(mut kpis: ResMut<Kpis>, q: Query<&Kind>, index: Res<SpatialIndex>) {
    let mut counts = [0usize; EntityKind::ALL.len()];
    for k in &q {
        if let Some(i) = EntityKind::ALL.iter().position(|x| *x == k.0) {
            counts[i] += 1;
        }
    }
    for (k, n) in EntityKind::ALL.iter().zip(counts) {
        kpis.set(&format!("entities.{}", k.as_str()), "city", n as f64, "1");
    }
    kpis.set("index.entities", "city", index.len() as f64, "1");
}

/// A simulation built from a scene.
pub struct Sim {
    /// The Bevy app holding the world.
    pub app: App,
    /// What the data import produced.
    pub import: ImportReport,
    /// The seed in use.
    pub seed: u64,
}

impl Sim {
    /// Build the world a scene describes: engine, data, simulations, scenario plugins.
    pub fn build(
        scene: &Scene,
        registry: &ModuleRegistry,
        opts: SimOptions,
    ) -> Result<Self, SimError> {
        let frame = GeoFrame::new(*scene.meta.origin.get_ref());
        let clock = SimClock::new(
            scene.start.clone(),
            *scene.clock.step_s.get_ref(),
            *scene.clock.duration_s.get_ref(),
        );
        let seed = opts.seed.unwrap_or(scene.meta.seed);
        let h3_resolution =
            Resolution::try_from(*scene.index.h3_resolution.get_ref()).map_err(|e| {
                scene.error_at(
                    scene.index.h3_resolution.span(),
                    "index.h3_resolution",
                    &e.to_string(),
                )
            })?;
        let mut app = App::new();
        // Headless: the task pools for the multi-threaded executor, nothing that waits on real time
        // (SimStep is run directly; Bevy's Main schedule and its runner never run).
        app.add_plugins(MinimalPlugins);
        app.add_plugins(EnginePlugin {
            frame: frame.clone(),
            clock,
            seed,
            h3_resolution,
            record: RecordConfig {
                snapshot_interval_s: *scene.output.snapshot_interval_s.get_ref(),
                kpi_interval_s: *scene.output.kpi_interval_s.get_ref(),
                checkpoint_interval_s: *scene.output.checkpoint_interval_s.get_ref(),
            },
            strict_schedule: opts.strict_schedule,
        });
        app.insert_resource(SceneFiles {
            scene: scene.path.clone(),
        });
        let import = load_scene_data(scene, &frame, app.world_mut())?;
        if !scene.feeds.is_empty() {
            let files: Vec<(u32, std::path::PathBuf)> = scene
                .feeds
                .iter()
                .enumerate()
                .filter_map(|(i, f)| Some((i as u32, scene.resolve(f.file.as_ref()?.get_ref()))))
                .collect();
            let paths: Vec<(u32, &std::path::Path)> =
                files.iter().map(|(i, p)| (*i, p.as_path())).collect();
            let feeds =
                crate::feeds::Feeds::read(&paths, &scene.start, app.world_mut()).map_err(|e| {
                    let (i, _) = files
                        .iter()
                        .find(|(_, p)| *p == e.path)
                        .unwrap_or(&files[0]);
                    let spec = &scene.feeds[*i as usize];
                    let span = spec.file.as_ref().map_or(0..0, |f| f.span());
                    scene.error_at(span, &format!("feed[{i}].file"), &e.to_string())
                })?;
            app.insert_resource(feeds);
            let live: Vec<(u32, crate::feeds::MqttUrl, f64)> = scene
                .feeds
                .iter()
                .enumerate()
                .filter_map(|(i, f)| {
                    let url = crate::feeds::MqttUrl::parse(f.mqtt.as_ref()?.get_ref()).ok()?;
                    Some((i as u32, url, *f.max_delay_s.get_ref()))
                })
                .collect();
            if !live.is_empty() {
                app.insert_resource(crate::feeds::LiveFeeds::new(&live));
            }
        }
        for (name, params) in &scene.simulations {
            let module = registry.simulation(name).ok_or_else(|| {
                let known = registry.simulation_names();
                scene.error_at(
                    params.span(),
                    &format!("simulations.{name}"),
                    &format!(
                        "no simulation named '{name}' in this build (available: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                )
            })?;
            module
                .build(params.get_ref(), &mut app)
                .map_err(|m| scene.error_at(params.span(), &format!("simulations.{name}"), &m))?;
        }
        for (i, sc) in scene.scenarios.iter().enumerate() {
            let name = sc.plugin.get_ref();
            let module = registry.scenario(name).ok_or_else(|| {
                let known = registry.scenario_names();
                scene.error_at(
                    sc.plugin.span(),
                    &format!("scenario[{i}].plugin"),
                    &format!(
                        "no scenario plugin named '{name}' in this build (available: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                )
            })?;
            module.build(sc.params.get_ref(), &mut app).map_err(|m| {
                scene.error_at(sc.params.span(), &format!("scenario[{i}].params"), &m)
            })?;
        }
        app.finish();
        app.cleanup();
        let built = crate::checkpoint::BuiltEntities::of(app.world_mut());
        app.insert_resource(built);
        let mut sim = Self { app, import, seed };
        // Index what was loaded before the first step, so tick 0 sees a complete index.
        sim.app
            .world_mut()
            .run_system_cached(sync_spatial_index)
            .ok();
        Ok(sim)
    }

    /// The scene's live feeds, if it has any `[[feed]] mqtt` (see [`crate::feeds::live`]): a
    /// new run connects them, a replay gives them the recorded messages. Until then they take
    /// nothing in.
    pub fn live_feeds(&mut self) -> Option<Mut<'_, crate::feeds::LiveFeeds>> {
        self.app
            .world_mut()
            .get_resource_mut::<crate::feeds::LiveFeeds>()
    }

    /// The world.
    pub fn world(&self) -> &World {
        self.app.world()
    }

    /// The world, mutably.
    pub fn world_mut(&mut self) -> &mut World {
        self.app.world_mut()
    }

    /// The clock.
    pub fn clock(&self) -> &SimClock {
        self.app.world().resource::<SimClock>()
    }

    /// Advance one step.
    pub fn step(&mut self) {
        self.app.world_mut().run_schedule(SimStep);
    }

    /// Whether the clock reached the scene's duration.
    pub fn finished(&self) -> bool {
        self.clock().finished()
    }

    /// The world's state now, as a checkpoint image (see [`crate::checkpoint`]).
    pub fn checkpoint(&mut self) -> Result<Vec<u8>, crate::checkpoint::CheckpointError> {
        crate::checkpoint::save(self.app.world_mut())
    }

    /// Put a checkpoint's state into this simulation, built from the scene of the run that
    /// saved it (fresh, or stepped since); it then steps on as that run did.
    pub fn restore(&mut self, image: &[u8]) -> Result<(), crate::checkpoint::CheckpointError> {
        crate::checkpoint::restore(self.app.world_mut(), image)?;
        self.app
            .world_mut()
            .run_system_cached(sync_spatial_index)
            .ok();
        Ok(())
    }

    /// The state hash of the world now.
    pub fn state_hash(&mut self) -> blake3::Hash {
        state_hash(self.app.world_mut())
    }
}
