//! The spatial index: an R-tree of entity geometries and an H3 cell map, kept in sync with the
//! world as entities spawn, move and despawn.
//!
//! Every entity with a [`Position`] or a [`Shape`] is indexed. The R-tree holds each entity's
//! bounding box and its geometry (shared, not copied), so queries are exact, not just bounding-box
//! hits. Each entity also sits in one H3 cell, the cell of its anchor point (its position, or the
//! centre of its bounding box), at the resolution the scene sets.
//!
//! The index is updated in the [`crate::schedule::SimSet::Index`] set from change detection: an
//! entity whose position or shape changed this tick is moved in the tree, a despawned one is
//! removed. When most entries change in one tick (a city full of moving vehicles) the tree is bulk
//! reloaded instead, which costs less than that many single updates (see `benches/index.rs`).
//!
//! Query results are sorted (by entity, or by distance then entity) so they never depend on the
//! tree's internal layout.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bevy::math::DVec2;
use bevy::prelude::*;
use geo::{BoundingRect, Distance, Euclidean, Intersects};
use h3o::{CellIndex, LatLng, Resolution};
use rstar::{AABB, Envelope, PointDistance, RTree, RTreeObject};

use crate::geo_frame::GeoFrame;
use crate::model::{Position, Shape};

/// An entity's geometry as the index holds it.
#[derive(Clone, Debug)]
enum IndexedGeom {
    Point([f64; 2]),
    Shape(Arc<geo::Geometry<f64>>),
}

/// One entry of the R-tree.
#[derive(Clone, Debug)]
struct Entry {
    entity: Entity,
    env: AABB<[f64; 2]>,
    geom: IndexedGeom,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.entity == other.entity && self.env == other.env
    }
}

impl RTreeObject for Entry {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.env
    }
}

impl PointDistance for Entry {
    fn distance_2(&self, p: &[f64; 2]) -> f64 {
        match &self.geom {
            IndexedGeom::Point(q) => (q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2),
            IndexedGeom::Shape(g) => Euclidean
                .distance(&geo::Point::new(p[0], p[1]), g.as_ref())
                .powi(2),
        }
    }
}

impl Entry {
    fn intersects_polygon(&self, poly: &geo::Polygon<f64>) -> bool {
        match &self.geom {
            IndexedGeom::Point(q) => poly.intersects(&geo::Point::new(q[0], q[1])),
            IndexedGeom::Shape(g) => poly.intersects(g.as_ref()),
        }
    }
}

/// Where an indexed entity is.
#[derive(Clone, Copy, Debug)]
struct Slot {
    env: AABB<[f64; 2]>,
    cell: Option<CellIndex>,
}

/// Fraction of entries that must change in one sync before the tree is bulk reloaded.
const BULK_RELOAD_FRACTION: f64 = 0.25;

/// The spatial index resource.
#[derive(Resource)]
pub struct SpatialIndex {
    tree: RTree<Entry>,
    slots: HashMap<Entity, Slot>,
    cells: BTreeMap<CellIndex, BTreeSet<Entity>>,
    resolution: Resolution,
    frame: GeoFrame,
    /// Per visited cell, its outline in the frame: an entity that moves but stays inside its
    /// cell (or steps into a neighbour) is placed without the costly inverse projection and H3
    /// lookup.
    shapes: HashMap<CellIndex, CellShape>,
    /// Statistics of the last sync, for benchmarks and logs.
    last_sync: SyncStats,
}

/// What the last sync did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Entities inserted or moved.
    pub upserted: usize,
    /// Entities removed.
    pub removed: usize,
    /// Whether the tree was bulk reloaded.
    pub reloaded: bool,
}

/// How to update the tree for a batch of changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncStrategy {
    /// Incremental updates, or a bulk reload when most entries changed (the default).
    Auto,
    /// Always incremental (remove + insert per change).
    Incremental,
    /// Always a bulk reload (for comparison in benchmarks).
    Reload,
}

fn aabb_of_geometry(g: &geo::Geometry<f64>) -> Option<AABB<[f64; 2]>> {
    let r = g.bounding_rect()?;
    Some(AABB::from_corners(
        [r.min().x, r.min().y],
        [r.max().x, r.max().y],
    ))
}

impl SpatialIndex {
    /// An empty index for a scene frame, with H3 cells at `resolution`.
    pub fn new(frame: GeoFrame, resolution: Resolution) -> Self {
        Self {
            tree: RTree::new(),
            slots: HashMap::new(),
            cells: BTreeMap::new(),
            resolution,
            frame,
            shapes: HashMap::new(),
            last_sync: SyncStats::default(),
        }
    }

    /// The H3 resolution of the cell map.
    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// Number of indexed entities.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Statistics of the last [`SpatialIndex::apply`].
    pub fn last_sync(&self) -> SyncStats {
        self.last_sync
    }

    /// The H3 cell containing a local point.
    pub fn cell_at(&self, p: DVec2) -> Option<CellIndex> {
        let ll = self.frame.to_wgs84(geo::Coord { x: p.x, y: p.y });
        LatLng::new(ll.lat, ll.lon)
            .ok()
            .map(|l| l.to_cell(self.resolution))
    }

    /// The cell of `p` when the entity was in `current` before: `current` if `p` is still well
    /// inside it, otherwise an exact lookup.
    fn cell_after_move(&mut self, p: DVec2, current: Option<CellIndex>) -> Option<CellIndex> {
        let Some(c) = current else {
            return self.cell_at(p);
        };
        let frame = &self.frame;
        let shape = self
            .shapes
            .entry(c)
            .or_insert_with(|| CellShape::new(frame, c));
        if p.distance_squared(shape.centre) < shape.inscribed_m * shape.inscribed_m
            || shape.contains(p)
        {
            return Some(c);
        }
        for n in shape.neighbours.into_iter().flatten() {
            let ns = self
                .shapes
                .entry(n)
                .or_insert_with(|| CellShape::new(frame, n));
            if ns.contains(p) {
                return Some(n);
            }
        }
        self.cell_at(p)
    }

    /// The H3 cell an indexed entity sits in.
    pub fn cell_of(&self, entity: Entity) -> Option<CellIndex> {
        self.slots.get(&entity).and_then(|s| s.cell)
    }

    /// The bounding box of an indexed entity: `([min_x, min_y], [max_x, max_y])`, metres.
    pub fn bounds_of(&self, entity: Entity) -> Option<([f64; 2], [f64; 2])> {
        self.slots
            .get(&entity)
            .map(|s| (s.env.lower(), s.env.upper()))
    }

    fn make_entry(entity: Entity, pos: Option<&Position>, shape: Option<&Shape>) -> Option<Entry> {
        if let Some(s) = shape {
            let env = aabb_of_geometry(&s.0)?;
            return Some(Entry {
                entity,
                env,
                geom: IndexedGeom::Shape(s.0.clone()),
            });
        }
        let p = pos?;
        let q = [p.xy_m.x, p.xy_m.y];
        (q[0].is_finite() && q[1].is_finite()).then(|| Entry {
            entity,
            env: AABB::from_point(q),
            geom: IndexedGeom::Point(q),
        })
    }

    fn anchor(env: &AABB<[f64; 2]>) -> DVec2 {
        let c = env.center();
        DVec2::new(c[0], c[1])
    }

    /// Apply a batch of changes: `removed` entities leave the index, `upserts` are inserted or
    /// moved. An entity in both is treated as removed, then inserted.
    pub fn apply(
        &mut self,
        removed: &[Entity],
        upserts: Vec<(Entity, Option<Position>, Option<Shape>)>,
        strategy: SyncStrategy,
    ) {
        let mut stats = SyncStats::default();
        for &e in removed {
            if let Some(slot) = self.slots.remove(&e) {
                self.remove_from_cell(e, slot.cell);
                if strategy != SyncStrategy::Reload {
                    self.tree.remove(&Entry {
                        entity: e,
                        env: slot.env,
                        geom: IndexedGeom::Point([0.0; 2]),
                    });
                }
                stats.removed += 1;
            }
        }
        let mut entries = Vec::with_capacity(upserts.len());
        for (e, pos, shape) in upserts {
            match Self::make_entry(e, pos.as_ref(), shape.as_ref()) {
                Some(entry) => entries.push(entry),
                None => {
                    // Geometry became empty or non-finite: drop it from the index.
                    if let Some(slot) = self.slots.remove(&e) {
                        self.remove_from_cell(e, slot.cell);
                        self.tree.remove(&Entry {
                            entity: e,
                            env: slot.env,
                            geom: IndexedGeom::Point([0.0; 2]),
                        });
                        stats.removed += 1;
                    }
                }
            }
        }
        let reload = match strategy {
            SyncStrategy::Reload => true,
            SyncStrategy::Incremental => false,
            SyncStrategy::Auto => {
                entries.len() as f64 > BULK_RELOAD_FRACTION * self.slots.len().max(1) as f64
                    && entries.len() > 64
            }
        };
        stats.upserted = entries.len();
        stats.reloaded = reload;
        // Cells first: they only depend on the anchor point.
        for entry in &entries {
            let previous = self.slots.get(&entry.entity).and_then(|s| s.cell);
            let cell = self.cell_after_move(Self::anchor(&entry.env), previous);
            let old = self.slots.insert(
                entry.entity,
                Slot {
                    env: entry.env,
                    cell,
                },
            );
            if let Some(old) = old {
                if old.cell != cell {
                    self.remove_from_cell(entry.entity, old.cell);
                    if let Some(c) = cell {
                        self.cells.entry(c).or_default().insert(entry.entity);
                    }
                }
                if !reload {
                    self.tree.remove(&Entry {
                        entity: entry.entity,
                        env: old.env,
                        geom: IndexedGeom::Point([0.0; 2]),
                    });
                }
            } else if let Some(c) = cell {
                self.cells.entry(c).or_default().insert(entry.entity);
            }
        }
        if reload {
            // Keep every entry that did not change, replace those that did (in a fixed order:
            // the tree's layout must not depend on hash-map order).
            let old_tree = std::mem::take(&mut self.tree);
            let all: Vec<Entry> = if entries.len() == self.slots.len() {
                entries // every indexed entity changed: nothing to keep
            } else {
                let changed: std::collections::HashSet<Entity> =
                    entries.iter().map(|e| e.entity).collect();
                let mut kept: Vec<Entry> = old_tree
                    .into_iter()
                    .filter(|e| !changed.contains(&e.entity) && self.slots.contains_key(&e.entity))
                    .collect();
                kept.extend(entries);
                kept
            };
            self.tree = RTree::bulk_load(all);
        } else {
            for entry in entries {
                self.tree.insert(entry);
            }
        }
        self.last_sync = stats;
    }

    fn remove_from_cell(&mut self, e: Entity, cell: Option<CellIndex>) {
        if let Some(c) = cell
            && let Some(set) = self.cells.get_mut(&c)
        {
            set.remove(&e);
            if set.is_empty() {
                self.cells.remove(&c);
            }
        }
    }

    /// Entities whose geometry's bounding box intersects the box `[min, max]`.
    pub fn in_bbox(&self, min: DVec2, max: DVec2) -> Vec<Entity> {
        let env = AABB::from_corners([min.x, min.y], [max.x, max.y]);
        let mut out: Vec<Entity> = self
            .tree
            .locate_in_envelope_intersecting(&env)
            .map(|e| e.entity)
            .collect();
        out.sort_unstable();
        out
    }

    /// Entities whose geometry comes within `radius_m` of `center` (exact distance to the geometry).
    pub fn within_radius(&self, center: DVec2, radius_m: f64) -> Vec<Entity> {
        if radius_m.is_nan() || radius_m < 0.0 {
            return Vec::new();
        }
        let mut out: Vec<Entity> = self
            .tree
            .locate_within_distance([center.x, center.y], radius_m * radius_m)
            .map(|e| e.entity)
            .collect();
        out.sort_unstable();
        out
    }

    /// The `k` entities nearest to `p` (exact distance to their geometry), nearest first, ties
    /// broken by entity, each with its distance in metres.
    pub fn nearest(&self, p: DVec2, k: usize) -> Vec<(Entity, f64)> {
        if k == 0 {
            return Vec::new();
        }
        let q = [p.x, p.y];
        let mut out: Vec<(Entity, f64)> = Vec::with_capacity(k);
        for (e, d2) in self.tree.nearest_neighbor_iter_with_distance_2(&q) {
            // Keep collecting past k while distances tie with the k-th, so ties resolve by entity.
            if out.len() >= k && d2.sqrt() > out[k - 1].1 {
                break;
            }
            out.push((e.entity, d2.sqrt()));
        }
        out.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        out.truncate(k);
        out
    }

    /// Entities whose geometry intersects the polygon (points inside it or on its boundary).
    pub fn within_polygon(&self, poly: &geo::Polygon<f64>) -> Vec<Entity> {
        let Some(r) = poly.bounding_rect() else {
            return Vec::new();
        };
        let env = AABB::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]);
        let mut out: Vec<Entity> = self
            .tree
            .locate_in_envelope_intersecting(&env)
            .filter(|e| e.intersects_polygon(poly))
            .map(|e| e.entity)
            .collect();
        out.sort_unstable();
        out
    }

    /// Entities anchored in an H3 cell. A cell at a coarser resolution than the index's collects
    /// all its children; a finer one is not supported and yields nothing.
    pub fn in_cell(&self, cell: CellIndex) -> Vec<Entity> {
        let mut out = Vec::new();
        if cell.resolution() == self.resolution {
            if let Some(set) = self.cells.get(&cell) {
                out.extend(set.iter().copied());
            }
        } else if cell.resolution() < self.resolution {
            for child in cell.children(self.resolution) {
                if let Some(set) = self.cells.get(&child) {
                    out.extend(set.iter().copied());
                }
            }
            out.sort_unstable();
        }
        out
    }

    /// Entities anchored within `k` rings of `cell` (the cell itself is ring 0).
    pub fn in_ring(&self, cell: CellIndex, k: u32) -> Vec<Entity> {
        let mut out = Vec::new();
        for c in cell.grid_disk::<Vec<_>>(k) {
            out.extend(self.in_cell(c));
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Every occupied cell with its entity count, in cell order.
    pub fn cell_counts(&self) -> Vec<(CellIndex, usize)> {
        self.cells.iter().map(|(c, s)| (*c, s.len())).collect()
    }
}

/// Points closer than this to a cell's edge are placed by the exact H3 lookup, not by the
/// outline: far above the edges' curvature in the frame (~1e-10 m at city scale) and rounding.
const EDGE_MARGIN_M: f64 = 1e-4;

/// A cell's outline in the frame.
#[derive(Clone, Debug)]
struct CellShape {
    centre: DVec2,
    /// Radius of a disc about the centre that lies inside the cell (with margin), m.
    inscribed_m: f64,
    /// Boundary vertices, counter-clockwise.
    verts: Vec<DVec2>,
    /// The cells around it (6, or 5 around a pentagon), copied on the hot path without allocating.
    neighbours: [Option<CellIndex>; 6],
}

impl CellShape {
    fn new(frame: &GeoFrame, c: CellIndex) -> Self {
        let to_local = |ll: LatLng| {
            let p = frame.to_local(crate::geo_frame::LonLat::new(ll.lng(), ll.lat()));
            DVec2::new(p.x, p.y)
        };
        let centre = to_local(LatLng::from(c));
        let mut verts: Vec<DVec2> = c.boundary().iter().map(|v| to_local(*v)).collect();
        let area2: f64 = (0..verts.len())
            .map(|i| verts[i].perp_dot(verts[(i + 1) % verts.len()]))
            .sum();
        if area2 < 0.0 {
            verts.reverse();
        }
        let mut r = f64::MAX;
        for (i, a) in verts.iter().enumerate() {
            let b = verts[(i + 1) % verts.len()];
            let ab = b - *a;
            let t = ((centre - *a).dot(ab) / ab.length_squared()).clamp(0.0, 1.0);
            r = r.min(centre.distance(*a + ab * t));
        }
        let inscribed_m = if verts.len() >= 3 && r.is_finite() {
            (r - EDGE_MARGIN_M).max(0.0)
        } else {
            0.0
        };
        let mut neighbours = [None; 6];
        for (slot, n) in neighbours
            .iter_mut()
            .zip(c.grid_disk::<Vec<_>>(1).into_iter().filter(|n| *n != c))
        {
            *slot = Some(n);
        }
        Self {
            centre,
            inscribed_m,
            verts,
            neighbours,
        }
    }

    /// Whether `p` is inside the (convex) outline by more than the edge margin.
    fn contains(&self, p: DVec2) -> bool {
        let n = self.verts.len();
        n >= 3
            && (0..n).all(|i| {
                let a = self.verts[i];
                let ab = self.verts[(i + 1) % n] - a;
                let len = ab.length();
                len > 0.0 && ab.perp_dot(p - a) / len > EDGE_MARGIN_M
            })
    }
}

/// Bring the index up to date with this tick's spawns, moves and despawns.
pub fn sync_spatial_index(
    mut index: ResMut<SpatialIndex>,
    changed: Query<
        (Entity, Option<&Position>, Option<&Shape>),
        Or<(Changed<Position>, Changed<Shape>)>,
    >,
    mut removed_pos: RemovedComponents<Position>,
    mut removed_shape: RemovedComponents<Shape>,
    still: Query<(Option<&Position>, Option<&Shape>)>,
) {
    // An entity that lost one geometry component but kept the other is re-inserted with what it has.
    let mut removed: Vec<Entity> = removed_pos.read().chain(removed_shape.read()).collect();
    removed.sort_unstable();
    removed.dedup();
    let mut upserts: Vec<(Entity, Option<Position>, Option<Shape>)> = changed
        .iter()
        .map(|(e, p, s)| (e, p.copied(), s.cloned()))
        .collect();
    for &e in &removed {
        if let Ok((p, s)) = still.get(e)
            && (p.is_some() || s.is_some())
            && !upserts.iter().any(|u| u.0 == e)
        {
            upserts.push((e, p.copied(), s.cloned()));
        }
    }
    upserts.sort_unstable_by_key(|u| u.0);
    if removed.is_empty() && upserts.is_empty() {
        return;
    }
    index.apply(&removed, upserts, SyncStrategy::Auto);
}
