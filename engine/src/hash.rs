//! The world's state hash: one BLAKE3 digest over every component and resource that the
//! simulations register as state. Equal hashes mean equal runs, bit for bit.
//!
//! Entities are known by their [`FeatureId`] (layer and id) where they have one, and by their
//! id only otherwise (entities spawned while building a scene, whose ids a rebuild repeats);
//! components are visited in that order and types in registration-name order. So the hash never
//! depends on archetype layout, hash-map order, thread timing, or the ids a restored checkpoint
//! gives to the entities it respawns. Floats are hashed by their bits.

use std::collections::HashMap;

use bevy::prelude::*;
use geo::CoordsIter;

use crate::clock::SimClock;
use crate::model::*;

/// How the hash knows an entity: its feature id, or else its id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum EntityKey {
    Id(u64),
    Feature(String, String),
}

/// Feeds values into the state digest.
pub struct StateHasher {
    h: blake3::Hasher,
    keys: HashMap<Entity, EntityKey>,
}

impl StateHasher {
    fn new(world: &mut World) -> Self {
        let mut q = world.query::<(Entity, &FeatureId)>();
        let keys = q
            .iter(world)
            .map(|(e, f)| (e, EntityKey::Feature(f.layer.clone(), f.id.clone())))
            .collect();
        Self {
            h: blake3::Hasher::new_derive_key("citytwin state hash v2"),
            keys,
        }
    }

    fn key(&self, e: Entity) -> EntityKey {
        self.keys
            .get(&e)
            .cloned()
            .unwrap_or(EntityKey::Id(e.to_bits()))
    }
    /// A float, by its bits.
    pub fn f64(&mut self, v: f64) {
        self.h.update(&v.to_bits().to_le_bytes());
    }
    /// An integer.
    pub fn u64(&mut self, v: u64) {
        self.h.update(&v.to_le_bytes());
    }
    /// A string, length-prefixed.
    pub fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.h.update(s.as_bytes());
    }
    /// An entity reference: by its feature id where it has one.
    pub fn entity(&mut self, e: Entity) {
        match self.key(e) {
            EntityKey::Id(bits) => {
                self.u64(0);
                self.u64(bits);
            }
            EntityKey::Feature(layer, id) => {
                self.u64(1);
                self.str(&layer);
                self.str(&id);
            }
        }
    }
}

/// State that takes part in the state hash.
pub trait StateHash {
    /// Feed every value that defines this state into the hasher.
    fn hash_state(&self, h: &mut StateHasher);
}

type HashFn = fn(&mut World, &mut StateHasher);

/// The registered state types; see [`StateHashAppExt`].
#[derive(Resource, Default)]
pub struct StateHashRegistry {
    entries: Vec<(&'static str, HashFn)>,
}

/// Registers components and resources as part of the state hash.
pub trait StateHashAppExt {
    /// Every entity's `C` takes part in the hash.
    fn hash_component<C: Component + StateHash>(&mut self) -> &mut Self;
    /// The resource `R` takes part in the hash.
    fn hash_resource<R: Resource + StateHash>(&mut self) -> &mut Self;
}

fn hash_component_fn<C: Component + StateHash>(world: &mut World, h: &mut StateHasher) {
    let mut q = world.query::<(Entity, &C)>();
    let mut items: Vec<(EntityKey, Entity, &C)> =
        q.iter(world).map(|(e, c)| (h.key(e), e, c)).collect();
    // Ties (two entities with one feature id) by id: both were built, so a rebuild repeats it.
    items.sort_unstable_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    h.u64(items.len() as u64);
    for (_, e, c) in items {
        h.entity(e);
        c.hash_state(h);
    }
}

fn hash_resource_fn<R: Resource + StateHash>(world: &mut World, h: &mut StateHasher) {
    match world.get_resource::<R>() {
        Some(r) => {
            h.u64(1);
            r.hash_state(h);
        }
        None => h.u64(0),
    }
}

impl StateHashAppExt for App {
    fn hash_component<C: Component + StateHash>(&mut self) -> &mut Self {
        self.world_mut()
            .get_resource_or_init::<StateHashRegistry>()
            .add(std::any::type_name::<C>(), hash_component_fn::<C>);
        self
    }
    fn hash_resource<R: Resource + StateHash>(&mut self) -> &mut Self {
        self.world_mut()
            .get_resource_or_init::<StateHashRegistry>()
            .add(std::any::type_name::<R>(), hash_resource_fn::<R>);
        self
    }
}

impl StateHashRegistry {
    fn add(&mut self, name: &'static str, f: HashFn) {
        if !self.entries.iter().any(|(n, _)| *n == name) {
            self.entries.push((name, f));
            self.entries.sort_by_key(|(n, _)| *n);
        }
    }
}

/// The state hash of the world: 32 bytes, shown as 64 hex digits.
pub fn state_hash(world: &mut World) -> blake3::Hash {
    let entries = world
        .get_resource::<StateHashRegistry>()
        .map(|r| r.entries.clone())
        .unwrap_or_default();
    let mut h = StateHasher::new(world);
    for (name, f) in entries {
        h.str(name);
        f(world, &mut h);
    }
    h.h.finalize()
}

/// The state hash of each registered type alone, by type name: where two worlds whose
/// [`state_hash`]es differ went apart.
pub fn state_hash_parts(world: &mut World) -> Vec<(&'static str, blake3::Hash)> {
    let entries = world
        .get_resource::<StateHashRegistry>()
        .map(|r| r.entries.clone())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(entries.len());
    for (name, f) in entries {
        let mut h = StateHasher::new(world);
        f(world, &mut h);
        out.push((name, h.h.finalize()));
    }
    out
}

impl StateHash for SimClock {
    fn hash_state(&self, h: &mut StateHasher) {
        h.u64(self.tick());
    }
}

impl StateHash for Position {
    fn hash_state(&self, h: &mut StateHasher) {
        h.f64(self.xy_m.x);
        h.f64(self.xy_m.y);
        h.f64(self.z_m);
    }
}

impl StateHash for Shape {
    fn hash_state(&self, h: &mut StateHasher) {
        h.u64(self.0.coords_count() as u64);
        for c in self.0.coords_iter() {
            h.f64(c.x);
            h.f64(c.y);
        }
    }
}

impl StateHash for FeatureId {
    fn hash_state(&self, h: &mut StateHasher) {
        h.str(&self.layer);
        h.str(&self.id);
    }
}

impl StateHash for Vehicle {
    fn hash_state(&self, h: &mut StateHasher) {
        h.u64(self.kind as u64);
        h.f64(self.length_m);
        h.f64(self.max_speed_mps);
        h.f64(self.speed_mps);
        h.f64(self.accel_mps2);
        h.f64(self.heading_rad);
        match self.road {
            None => h.u64(0),
            Some(e) => {
                h.u64(1);
                h.entity(e);
            }
        }
    }
}

impl StateHash for Road {
    fn hash_state(&self, h: &mut StateHasher) {
        h.str(&self.name);
        h.u64(self.lanes as u64);
        h.f64(self.speed_limit_mps);
        h.f64(self.lane_width_m);
        h.f64(self.length_m);
    }
}

impl StateHash for Intersection {
    fn hash_state(&self, h: &mut StateHasher) {
        match &self.signal {
            None => h.u64(0),
            Some(p) => {
                h.u64(1);
                h.f64(p.offset_s);
                for ph in &p.phases {
                    h.f64(ph.duration_s);
                    h.str(&ph.state);
                }
            }
        }
    }
}

impl StateHash for Building {
    fn hash_state(&self, h: &mut StateHasher) {
        h.f64(self.height_m);
        h.str(self.use_.as_str());
        h.u64(self.occupants as u64);
        h.f64(self.ground_m);
    }
}

impl StateHash for EvacuationOrder {
    fn hash_state(&self, h: &mut StateHasher) {
        h.f64(self.since_s);
        h.str(&self.by);
    }
}

impl StateHash for EmissionSource {
    fn hash_state(&self, h: &mut StateHasher) {
        h.str(&self.pollutant);
        h.f64(self.rate_kg_s);
    }
}
