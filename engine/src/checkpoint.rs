//! Checkpoints: the whole state of a world between two steps, as bytes, and back.
//!
//! A simulation or plugin registers what it owns that changes while a run goes:
//! [`CheckpointAppExt::checkpoint_resource`] for a resource (a simulation's state),
//! [`CheckpointAppExt::checkpoint_component`] for a component (every entity's `C`). What is not
//! registered is what the scene builds and nothing changes afterwards (networks, grids, the
//! data), which a restore takes from the freshly built world.
//!
//! [`save`] writes the tick, every registered resource, every entity with a registered
//! component (in storage order) and those components, and the engine's commands in flight
//! (sent after the simulations read theirs, read the next step); the image is deflated.
//! [`restore`] takes a world **built from the same scene** (so every entity spawned while
//! building has the same id; it may have been stepped since), sets the tick, despawns what its
//! own steps spawned, respawns the entities the saved run spawned (new ids, in the saved
//! order), despawns the built ones the saved run had despawned, puts back every component and resource, re-sends the
//! commands in flight, and runs each module's [`CheckpointAppExt::on_restore`] hook with the
//! old-to-new map of entity ids ([`EntityRemap`]) so it can mend references to respawned
//! entities. The state hash does not depend on entity ids (see [`crate::hash`]), so a restored
//! world hashes as the original did and steps on bit-identically.

use std::collections::{BTreeMap, HashMap, HashSet};

use bevy::ecs::message::MessageCursor;
use bevy::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::SimClock;
use crate::control::{DemandCommand, RoadCommand};

/// The layout of a checkpoint image; an image of another format is refused.
pub const CHECKPOINT_FORMAT: u32 = 1;

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A value could not be encoded or decoded.
    #[error("checkpoint: {what}: {message}")]
    Codec {
        /// The resource, component or part concerned.
        what: String,
        /// The codec's message.
        message: String,
    },
    /// The image is not one this version reads.
    #[error("checkpoint: format {found}, this citytwin reads format {CHECKPOINT_FORMAT}")]
    Format {
        /// The format found.
        found: u32,
    },
    /// The image holds state the world cannot take (built from another scene or version).
    #[error("checkpoint: {0}")]
    Mismatch(String),
}

fn codec(what: &str, e: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::Codec {
        what: what.to_string(),
        message: e.to_string(),
    }
}

/// Encode a value for a checkpoint.
fn encode<T: Serialize + ?Sized>(what: &str, v: &T) -> Result<Vec<u8>, CheckpointError> {
    bincode::serialize(v).map_err(|e| codec(what, e))
}

/// Decode a checkpointed value.
fn decode<T: DeserializeOwned>(what: &str, b: &[u8]) -> Result<T, CheckpointError> {
    bincode::deserialize(b).map_err(|e| codec(what, e))
}

/// Old entity id (as saved) to the id it has in the restored world. Entities spawned while the
/// scene was built keep their ids; entities spawned during the run get new ones.
#[derive(Resource, Default, Debug, Clone)]
pub struct EntityRemap(HashMap<Entity, Entity>);

impl EntityRemap {
    /// The restored id of a saved entity (itself when it was not respawned or is unknown).
    pub fn get(&self, e: Entity) -> Entity {
        self.0.get(&e).copied().unwrap_or(e)
    }
}

type SaveFn = fn(&mut World, &HashMap<Entity, u32>) -> Result<Option<Vec<u8>>, CheckpointError>;
type LoadFn = fn(&mut World, &[u8], &[Entity]) -> Result<(), CheckpointError>;
type EntitiesFn = fn(&mut World) -> Vec<Entity>;
type HookFn = fn(&mut World, &EntityRemap);

struct Part {
    name: &'static str,
    save: SaveFn,
    load: LoadFn,
    /// Components: the entities holding one (resources: none).
    entities: Option<EntitiesFn>,
    /// Components: remove `C` from these entities (they had it when built, not when saved).
    remove: Option<fn(&mut World, &[Entity])>,
}

/// What takes part in checkpoints; see [`CheckpointAppExt`].
#[derive(Resource, Default)]
pub struct CheckpointRegistry {
    parts: Vec<Part>,
    hooks: Vec<HookFn>,
}

/// Registers state that checkpoints save and restore.
pub trait CheckpointAppExt {
    /// The resource `R` is saved and restored whole.
    fn checkpoint_resource<R: Resource + Serialize + DeserializeOwned>(&mut self) -> &mut Self;
    /// Every entity's `C` is saved and restored.
    fn checkpoint_component<C: Component + Serialize + DeserializeOwned>(&mut self) -> &mut Self;
    /// Run `hook` after a restore, with the map of respawned entities; a module mends what
    /// it keeps that names entities spawned during the run.
    fn on_restore(&mut self, hook: HookFn) -> &mut Self;
}

fn save_resource<R: Resource + Serialize>(
    world: &mut World,
    _: &HashMap<Entity, u32>,
) -> Result<Option<Vec<u8>>, CheckpointError> {
    world
        .get_resource::<R>()
        .map(|r| encode(std::any::type_name::<R>(), r))
        .transpose()
}

fn load_resource<R: Resource + DeserializeOwned>(
    world: &mut World,
    bytes: &[u8],
    _: &[Entity],
) -> Result<(), CheckpointError> {
    let r: R = decode(std::any::type_name::<R>(), bytes)?;
    world.insert_resource(r);
    Ok(())
}

fn component_entities<C: Component>(world: &mut World) -> Vec<Entity> {
    let mut q = world.query_filtered::<Entity, With<C>>();
    q.iter(world).collect()
}

fn save_component<C: Component + Serialize>(
    world: &mut World,
    ordinal: &HashMap<Entity, u32>,
) -> Result<Option<Vec<u8>>, CheckpointError> {
    let mut q = world.query::<(Entity, &C)>();
    let mut items: Vec<(u32, &C)> = q.iter(world).map(|(e, c)| (ordinal[&e], c)).collect();
    items.sort_unstable_by_key(|(o, _)| *o);
    encode(std::any::type_name::<C>(), &items).map(Some)
}

fn load_component<C: Component + DeserializeOwned>(
    world: &mut World,
    bytes: &[u8],
    entities: &[Entity],
) -> Result<(), CheckpointError> {
    let name = std::any::type_name::<C>();
    let items: Vec<(u32, C)> = decode(name, bytes)?;
    for (o, c) in items {
        let e = *entities
            .get(o as usize)
            .ok_or_else(|| CheckpointError::Mismatch(format!("{name}: entity #{o} not saved")))?;
        world.entity_mut(e).insert(c);
    }
    Ok(())
}

fn remove_component<C: Component>(world: &mut World, entities: &[Entity]) {
    for &e in entities {
        world.entity_mut(e).remove::<C>();
    }
}

impl CheckpointRegistry {
    fn add(&mut self, part: Part) {
        if !self.parts.iter().any(|p| p.name == part.name) {
            self.parts.push(part);
            self.parts.sort_by_key(|p| p.name);
        }
    }
}

impl CheckpointAppExt for App {
    fn checkpoint_resource<R: Resource + Serialize + DeserializeOwned>(&mut self) -> &mut Self {
        self.world_mut()
            .get_resource_or_init::<CheckpointRegistry>()
            .add(Part {
                name: std::any::type_name::<R>(),
                save: save_resource::<R>,
                load: load_resource::<R>,
                entities: None,
                remove: None,
            });
        self
    }

    fn checkpoint_component<C: Component + Serialize + DeserializeOwned>(&mut self) -> &mut Self {
        self.world_mut()
            .get_resource_or_init::<CheckpointRegistry>()
            .add(Part {
                name: std::any::type_name::<C>(),
                save: save_component::<C>,
                load: load_component::<C>,
                entities: Some(component_entities::<C>),
                remove: Some(remove_component::<C>),
            });
        self
    }

    fn on_restore(&mut self, hook: HookFn) -> &mut Self {
        let mut reg = self
            .world_mut()
            .get_resource_or_init::<CheckpointRegistry>();
        if !reg.hooks.contains(&hook) {
            reg.hooks.push(hook);
        }
        self
    }
}

/// The engine's commands sent after the simulations read theirs in this step: they are read
/// in the next one, so a checkpoint carries them.
#[derive(Resource, Default)]
pub(crate) struct CommandsRead {
    road: MessageCursor<RoadCommand>,
    demand: MessageCursor<DemandCommand>,
}

/// Mark every command sent so far as read by the simulations (in `SimSet::Index`, after
/// `Physics`, where they read them).
pub(crate) fn mark_commands_read(
    mut read: ResMut<CommandsRead>,
    road: Res<Messages<RoadCommand>>,
    demand: Res<Messages<DemandCommand>>,
) {
    read.road.clear(&road);
    read.demand.clear(&demand);
}

#[derive(serde::Serialize, serde::Deserialize)]
struct InFlight {
    road: Vec<RoadCommand>,
    demand: Vec<DemandCommand>,
}

fn in_flight(world: &World) -> InFlight {
    let read = world.get_resource::<CommandsRead>();
    let mut out = InFlight {
        road: Vec::new(),
        demand: Vec::new(),
    };
    if let (Some(read), Some(m)) = (read, world.get_resource::<Messages<RoadCommand>>()) {
        out.road = read.road.clone().read(m).cloned().collect();
    }
    if let (Some(read), Some(m)) = (read, world.get_resource::<Messages<DemandCommand>>()) {
        out.demand = read.demand.clone().read(m).cloned().collect();
    }
    out
}

/// The entities that building the scene spawned: a rebuild spawns them again with the same
/// ids; every other entity was spawned during the run.
#[derive(Resource, Default)]
pub(crate) struct BuiltEntities(pub(crate) HashSet<Entity>);

impl BuiltEntities {
    /// Every entity of `world` now.
    pub(crate) fn of(world: &mut World) -> Self {
        let mut q = world.query::<Entity>();
        Self(q.iter(world).collect())
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Image {
    format: u32,
    tick: u64,
    /// Every entity with a registered component, in storage order, as saved.
    entities: Vec<Entity>,
    /// Whether each was spawned by building the scene.
    built: Vec<bool>,
    /// Entities the scene built that were gone when saved.
    built_gone: Vec<Entity>,
    /// Registered part name to its encoding.
    parts: BTreeMap<String, Vec<u8>>,
    in_flight: Vec<u8>,
}

/// The world's state now (between steps) as a checkpoint image.
pub fn save(world: &mut World) -> Result<Vec<u8>, CheckpointError> {
    let (entity_fns, parts): (Vec<EntitiesFn>, Vec<(&'static str, SaveFn)>) = {
        let reg = world.get_resource_or_init::<CheckpointRegistry>();
        (
            reg.parts.iter().filter_map(|p| p.entities).collect(),
            reg.parts.iter().map(|p| (p.name, p.save)).collect(),
        )
    };
    let mut set = HashSet::new();
    for f in entity_fns {
        set.extend(f(world));
    }
    // Storage order (archetype, then row), so a restore lays entities out as they were and
    // queries visit them in the same order.
    let mut entities: Vec<Entity> = set.into_iter().collect();
    entities.sort_by_key(|e| {
        world
            .entities()
            .get_spawned(*e)
            .map(|l| (l.archetype_id.index(), l.archetype_row.index()))
            .unwrap_or((u32::MAX as usize, u32::MAX as usize))
    });
    let ordinal: HashMap<Entity, u32> = entities
        .iter()
        .enumerate()
        .map(|(i, e)| (*e, i as u32))
        .collect();
    let (built, built_gone) = match world.get_resource::<BuiltEntities>() {
        Some(b) => {
            let mut gone: Vec<Entity> =
                b.0.iter()
                    .copied()
                    .filter(|e| !world.entities().contains_spawned(*e))
                    .collect();
            gone.sort_unstable();
            (entities.iter().map(|e| b.0.contains(e)).collect(), gone)
        }
        None => (vec![false; entities.len()], Vec::new()),
    };
    let mut out = BTreeMap::new();
    for (name, save) in parts {
        if let Some(b) = save(world, &ordinal)? {
            out.insert(name.to_string(), b);
        }
    }
    let image = Image {
        format: CHECKPOINT_FORMAT,
        tick: world.resource::<SimClock>().tick(),
        entities,
        built,
        built_gone,
        parts: out,
        in_flight: encode("commands in flight", &in_flight(world))?,
    };
    let raw = encode("image", &image)?;
    Ok(miniz_oxide::deflate::compress_to_vec(&raw, 1))
}

/// Which parts of two images differ (entity table, tick, commands in flight, registered
/// resources and components by type name): where a replay that should match went apart. Parts
/// holding hash maps may differ in order only.
pub fn differing_parts(a: &[u8], b: &[u8]) -> Result<Vec<String>, CheckpointError> {
    let (a, b) = (read_image(a)?, read_image(b)?);
    let mut out = Vec::new();
    if a.tick != b.tick {
        out.push(format!("tick ({} and {})", a.tick, b.tick));
    }
    if a.entities.len() != b.entities.len() || a.built != b.built {
        out.push(format!(
            "entities ({} and {})",
            a.entities.len(),
            b.entities.len()
        ));
    }
    if a.in_flight != b.in_flight {
        out.push("commands in flight".into());
    }
    let names: std::collections::BTreeSet<&String> = a.parts.keys().chain(b.parts.keys()).collect();
    for n in names {
        if a.parts.get(n) != b.parts.get(n) {
            out.push(n.clone());
        }
    }
    Ok(out)
}

/// The tick a checkpoint image was taken at.
pub fn image_tick(bytes: &[u8]) -> Result<u64, CheckpointError> {
    Ok(read_image(bytes)?.tick)
}

fn read_image(bytes: &[u8]) -> Result<Image, CheckpointError> {
    let raw = miniz_oxide::inflate::decompress_to_vec(bytes)
        .map_err(|e| codec("image", format!("{e:?}")))?;
    let image: Image = decode("image", &raw)?;
    if image.format != CHECKPOINT_FORMAT {
        return Err(CheckpointError::Format {
            found: image.format,
        });
    }
    Ok(image)
}

/// Put a checkpoint's state into `world`, which must have been built from the same scene (and
/// may have been stepped since: what its own run spawned goes; see the module docs). Registered parts missing from the image (a plugin
/// added to a fork) keep their built state; parts in the image that nothing registered are
/// an error.
pub fn restore(world: &mut World, bytes: &[u8]) -> Result<(), CheckpointError> {
    let image = read_image(bytes)?;
    let reg = world
        .remove_resource::<CheckpointRegistry>()
        .unwrap_or_default();
    let r = restore_parts(world, &reg, image);
    world.insert_resource(reg);
    let remap = r?;
    let hooks = world.resource::<CheckpointRegistry>().hooks.clone();
    for h in hooks {
        h(world, &remap);
    }
    Ok(())
}

fn restore_parts(
    world: &mut World,
    reg: &CheckpointRegistry,
    image: Image,
) -> Result<EntityRemap, CheckpointError> {
    if let Some(name) = image
        .parts
        .keys()
        .find(|n| !reg.parts.iter().any(|p| p.name == n.as_str()))
    {
        return Err(CheckpointError::Mismatch(format!(
            "the image holds {name}, which nothing in this world registers (a different scene or citytwin version)"
        )));
    }
    // Entities now holding registered components.
    let mut holders: BTreeMap<&'static str, Vec<Entity>> = BTreeMap::new();
    for p in &reg.parts {
        if let Some(f) = p.entities {
            holders.insert(p.name, f(world));
        }
    }
    // Entities spawned during this world's own run go: the saved ones come back below.
    let built_here = world
        .get_resource::<BuiltEntities>()
        .map(|b| b.0.clone())
        .unwrap_or_default();
    let mut spawned: Vec<Entity> = holders
        .values()
        .flatten()
        .copied()
        .filter(|e| !built_here.contains(e))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    spawned.sort_unstable();
    for &e in &spawned {
        world.despawn(e);
    }
    for es in holders.values_mut() {
        es.retain(|e| built_here.contains(e));
    }
    // Saved entities: those the scene built are the same entities here; those spawned during
    // the run are spawned again, in saved order.
    if image.built.len() != image.entities.len() {
        return Err(CheckpointError::Mismatch("a damaged entity table".into()));
    }
    let mut remap = HashMap::new();
    let mut restored = Vec::with_capacity(image.entities.len());
    for (&e, &built) in image.entities.iter().zip(&image.built) {
        let e2 = if built {
            if !world.entities().contains_spawned(e) {
                return Err(CheckpointError::Mismatch(format!(
                    "entity {e} that building the scene spawned is not in this world (built from another scene or citytwin version, or despawned since: restore into a freshly built world)"
                )));
            }
            e
        } else {
            let n = world.spawn_empty().id();
            remap.insert(e, n);
            n
        };
        restored.push(e2);
    }
    let kept: HashSet<Entity> = restored.iter().copied().collect();
    for &e in &image.built_gone {
        if world.entities().contains_spawned(e) {
            world.despawn(e);
        }
    }
    for p in &reg.parts {
        if let Some(bytes) = image.parts.get(p.name) {
            if let (Some(remove), Some(had)) = (p.remove, holders.get(p.name)) {
                // Drop `C` from every saved entity that holds it now, then insert the saved
                // ones in saved order: each table ends up in the order it had when saved.
                let had: Vec<Entity> = had.iter().copied().filter(|e| kept.contains(e)).collect();
                remove(world, &had);
            }
            (p.load)(world, bytes, &restored)?;
        }
    }
    world.resource_mut::<SimClock>().set_tick(image.tick);
    // Commands of this world's own steps are dropped; those in flight when saved are sent again.
    world.resource_mut::<Messages<RoadCommand>>().clear();
    world.resource_mut::<Messages<DemandCommand>>().clear();
    let flight: InFlight = decode("commands in flight", &image.in_flight)?;
    for c in flight.road {
        world.write_message(c);
    }
    for c in flight.demand {
        world.write_message(c);
    }
    Ok(EntityRemap(remap))
}

/// Serialize a hash set in order (`#[serde(serialize_with = "…::sorted_set")]`), so that equal
/// states give equal images and [`differing_parts`] names only real differences.
pub fn sorted_set<S, T, H>(set: &std::collections::HashSet<T, H>, s: S) -> Result<S::Ok, S::Error>
where
    S: serde::Serializer,
    T: Ord + Serialize,
{
    let mut v: Vec<&T> = set.iter().collect();
    v.sort();
    s.collect_seq(v)
}

/// Serialize a hash map in key order (`#[serde(serialize_with = "…::sorted_map")]`); see
/// [`sorted_set`].
pub fn sorted_map<S, K, V, H>(map: &HashMap<K, V, H>, s: S) -> Result<S::Ok, S::Error>
where
    S: serde::Serializer,
    K: Ord + Serialize,
    V: Serialize,
{
    let mut v: Vec<(&K, &V)> = map.iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    s.collect_map(v)
}

/// Text from a small fixed set (units, names) as `&'static str`, for state read back from a
/// checkpoint: each distinct text is allocated once and shared.
pub mod static_str {
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    static INTERNED: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

    /// The interned `&'static str` equal to `s` (allocated once per distinct text).
    pub fn intern(s: &str) -> &'static str {
        let mut set = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = set.get(s) {
            return v;
        }
        let v: &'static str = Box::leak(s.to_string().into_boxed_str());
        set.insert(v);
        v
    }
}
