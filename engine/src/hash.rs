//! The world's state hash: one BLAKE3 digest over every component and resource that the
//! simulations register as state. Equal hashes mean equal runs, bit for bit.
//!
//! Components are visited in entity order and types in registration-name order, so the hash never
//! depends on archetype layout, hash-map order or thread timing. Floats are hashed by their bits.

use bevy::prelude::*;
use geo::CoordsIter;

use crate::clock::SimClock;
use crate::model::*;

/// Feeds values into the state digest.
pub struct StateHasher(blake3::Hasher);

impl StateHasher {
    fn new() -> Self {
        Self(blake3::Hasher::new_derive_key("citytwin state hash v1"))
    }
    /// A float, by its bits.
    pub fn f64(&mut self, v: f64) {
        self.0.update(&v.to_bits().to_le_bytes());
    }
    /// An integer.
    pub fn u64(&mut self, v: u64) {
        self.0.update(&v.to_le_bytes());
    }
    /// A string, length-prefixed.
    pub fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.update(s.as_bytes());
    }
    /// An entity reference.
    pub fn entity(&mut self, e: Entity) {
        self.u64(e.to_bits());
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
    let mut items: Vec<(Entity, &C)> = q.iter(world).collect();
    items.sort_unstable_by_key(|(e, _)| *e);
    h.u64(items.len() as u64);
    for (e, c) in items {
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
    let mut h = StateHasher::new();
    for (name, f) in entries {
        h.str(name);
        f(world, &mut h);
    }
    h.0.finalize()
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
