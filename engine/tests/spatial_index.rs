//! Every spatial query against brute force over thousands of random entities, and the index
//! kept in sync through spawns, moves and despawns in the real schedule.

mod common;

use bevy::math::DVec2;
use bevy::prelude::*;
use citytwin_engine::clock::SimClock;
use citytwin_engine::geo_frame::{GeoFrame, LonLat};
use citytwin_engine::index::SpatialIndex;
use citytwin_engine::model::*;
use citytwin_engine::recorder::RecordConfig;
use citytwin_engine::rng::{Rng, SimRng, SimRngStream};
use citytwin_engine::schedule::SimStep;
use citytwin_engine::sim::EnginePlugin;
use geo::{Distance, Euclidean, Intersects, LineString, Polygon};
use h3o::{LatLng, Resolution};

fn unit(r: &mut SimRngStream) -> f64 {
    (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn app(res: Resolution) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins);
    app.add_plugins(EnginePlugin {
        frame: GeoFrame::new(LonLat::new(117.2272, 31.8206)),
        clock: SimClock::new(
            "2026-07-15T08:00:00+08:00[Asia/Shanghai]".parse().unwrap(),
            1.0,
            100.0,
        ),
        seed: 1,
        h3_resolution: res,
        record: RecordConfig::default(),
        strict_schedule: true,
    });
    app.finish();
    app.cleanup();
    app
}

/// Spawn `n` entities in a 4 km square: 60 % points, 20 % lines, 20 % polygons.
fn spawn_random(world: &mut World, rng: &mut SimRngStream, n: usize) -> Vec<Entity> {
    (0..n)
        .map(|i| {
            let x = unit(rng) * 4000.0 - 2000.0;
            let y = unit(rng) * 4000.0 - 2000.0;
            match i % 5 {
                0 => {
                    let l = LineString::from(vec![
                        (x, y),
                        (x + unit(rng) * 80.0 - 40.0, y + unit(rng) * 80.0 - 40.0),
                        (x + unit(rng) * 80.0, y),
                    ]);
                    world.spawn((Kind(EntityKind::Road), Shape::new(l))).id()
                }
                1 => {
                    let (w, h) = (5.0 + unit(rng) * 40.0, 5.0 + unit(rng) * 40.0);
                    let p = Polygon::new(
                        LineString::from(vec![
                            (x, y),
                            (x + w, y),
                            (x + w, y + h),
                            (x, y + h),
                            (x, y),
                        ]),
                        vec![],
                    );
                    world
                        .spawn((Kind(EntityKind::Building), Shape::new(p)))
                        .id()
                }
                _ => world
                    .spawn((Kind(EntityKind::Vehicle), Position::new(x, y)))
                    .id(),
            }
        })
        .collect()
}

fn geom_of(world: &World, e: Entity) -> geo::Geometry<f64> {
    if let Some(s) = world.get::<Shape>(e) {
        (*s.0).clone()
    } else {
        let p = world.get::<Position>(e).unwrap();
        geo::Point::new(p.xy_m.x, p.xy_m.y).into()
    }
}

fn all(world: &mut World) -> Vec<(Entity, geo::Geometry<f64>)> {
    let mut q = world.query_filtered::<Entity, Or<(With<Position>, With<Shape>)>>();
    let es: Vec<Entity> = q.iter(world).collect();
    let mut v: Vec<_> = es.into_iter().map(|e| (e, geom_of(world, e))).collect();
    v.sort_by_key(|(e, _)| *e);
    v
}

fn bbox(g: &geo::Geometry<f64>) -> geo::Rect<f64> {
    use geo::BoundingRect;
    g.bounding_rect().unwrap()
}

fn anchor_cell(frame: &GeoFrame, g: &geo::Geometry<f64>, res: Resolution) -> h3o::CellIndex {
    let r = bbox(g);
    let c = geo::Coord {
        x: (r.min().x + r.max().x) / 2.0,
        y: (r.min().y + r.max().y) / 2.0,
    };
    let ll = frame.to_wgs84(c);
    LatLng::new(ll.lat, ll.lon).unwrap().to_cell(res)
}

/// Compare every query with brute force.
fn check_all_queries(world: &mut World, rng: &mut SimRngStream, res: Resolution) {
    let items = all(world);
    let frame = world.resource::<GeoFrame>().clone();
    let index = world.resource::<SpatialIndex>();
    assert_eq!(index.len(), items.len());
    // Every entity sits in exactly the cell H3 gives its anchor point.
    for (e, g) in &items {
        assert_eq!(
            index.cell_of(*e),
            Some(anchor_cell(&frame, g, res)),
            "cell of {e}"
        );
    }
    for _ in 0..40 {
        let c = DVec2::new(unit(rng) * 4400.0 - 2200.0, unit(rng) * 4400.0 - 2200.0);
        // bbox
        let (w, h) = (unit(rng) * 600.0, unit(rng) * 600.0);
        let (lo, hi) = (c, c + DVec2::new(w, h));
        let want: Vec<Entity> = items
            .iter()
            .filter(|(_, g)| {
                let r = bbox(g);
                r.min().x <= hi.x && r.max().x >= lo.x && r.min().y <= hi.y && r.max().y >= lo.y
            })
            .map(|(e, _)| *e)
            .collect();
        assert_eq!(index.in_bbox(lo, hi), want, "bbox {lo} {hi}");
        // radius
        let radius = unit(rng) * 300.0;
        let p = geo::Point::new(c.x, c.y);
        let want: Vec<Entity> = items
            .iter()
            .filter(|(_, g)| Euclidean.distance(&p, g) <= radius)
            .map(|(e, _)| *e)
            .collect();
        assert_eq!(
            index.within_radius(c, radius),
            want,
            "radius {radius} at {c}"
        );
        // k nearest
        let k = 1 + (rng.next_u32() % 25) as usize;
        let mut d: Vec<(Entity, f64)> = items
            .iter()
            .map(|(e, g)| (*e, Euclidean.distance(&p, g)))
            .collect();
        d.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        d.truncate(k);
        let got = index.nearest(c, k);
        assert_eq!(got.len(), d.len());
        for (g, w) in got.iter().zip(&d) {
            assert_eq!(g.0, w.0, "k-nearest order at {c}");
            assert!((g.1 - w.1).abs() < 1e-9);
        }
        // polygon: a random triangle
        let tri = Polygon::new(
            LineString::from(vec![
                (c.x, c.y),
                (c.x + unit(rng) * 500.0, c.y + unit(rng) * 100.0),
                (c.x + unit(rng) * 200.0, c.y + unit(rng) * 500.0),
                (c.x, c.y),
            ]),
            vec![],
        );
        let want: Vec<Entity> = items
            .iter()
            .filter(|(_, g)| tri.intersects(g))
            .map(|(e, _)| *e)
            .collect();
        assert_eq!(index.within_polygon(&tri), want);
        // H3 cell and ring
        let ll = frame.to_wgs84(geo::Coord { x: c.x, y: c.y });
        let cell = LatLng::new(ll.lat, ll.lon).unwrap().to_cell(res);
        let want: Vec<Entity> = items
            .iter()
            .filter(|(_, g)| anchor_cell(&frame, g, res) == cell)
            .map(|(e, _)| *e)
            .collect();
        assert_eq!(index.in_cell(cell), want);
        let kring = rng.next_u32() % 4;
        let disk: Vec<h3o::CellIndex> = cell.grid_disk(kring);
        let want: Vec<Entity> = items
            .iter()
            .filter(|(_, g)| disk.contains(&anchor_cell(&frame, g, res)))
            .map(|(e, _)| *e)
            .collect();
        assert_eq!(index.in_ring(cell, kring), want, "ring {kring}");
        // a coarser parent cell collects its children
        let parent = cell.parent(Resolution::Seven).unwrap();
        let want: Vec<Entity> = items
            .iter()
            .filter(|(_, g)| anchor_cell(&frame, g, res).parent(Resolution::Seven) == Some(parent))
            .map(|(e, _)| *e)
            .collect();
        assert_eq!(index.in_cell(parent), want);
    }
}

#[test]
fn every_query_matches_brute_force_on_random_entities() {
    let res = Resolution::Nine;
    let mut app = app(res);
    let mut rng = SimRng::new(7).stream("index-test");
    spawn_random(app.world_mut(), &mut rng, 3000);
    app.world_mut().run_schedule(SimStep);
    check_all_queries(app.world_mut(), &mut rng, res);
}

#[test]
fn index_follows_moves_spawns_and_despawns_incrementally() {
    let res = Resolution::Nine;
    let mut app = app(res);
    let mut rng = SimRng::new(11).stream("index-moves");
    let mut ents = spawn_random(app.world_mut(), &mut rng, 4000);
    app.world_mut().run_schedule(SimStep);
    for round in 0..4 {
        // Move 5 % of the points (incremental path) — or, in round 2, 60 % (bulk-reload path).
        let frac = if round == 2 { 0.6 } else { 0.05 };
        let world = app.world_mut();
        for &e in &ents {
            if unit(&mut rng) < frac {
                if let Some(mut p) = world.get_mut::<Position>(e) {
                    p.xy_m += DVec2::new(
                        unit(&mut rng) * 400.0 - 200.0,
                        unit(&mut rng) * 400.0 - 200.0,
                    );
                } else if let Some(mut s) = world.get_mut::<Shape>(e) {
                    let dx = unit(&mut rng) * 300.0;
                    use geo::Translate;
                    *s = Shape::new(s.0.translate(dx, -dx));
                }
            }
        }
        // Despawn some, spawn some, and strip the geometry from one.
        for _ in 0..50 {
            let i = (rng.next_u32() as usize) % ents.len();
            let e = ents.swap_remove(i);
            world.despawn(e);
        }
        let last = ents[0];
        world.entity_mut(last).remove::<Position>();
        world.entity_mut(last).remove::<Shape>();
        ents.remove(0);
        ents.extend(spawn_random(world, &mut rng, 120));
        app.world_mut().run_schedule(SimStep);
        let stats = app.world().resource::<SpatialIndex>().last_sync();
        assert_eq!(stats.reloaded, round == 2, "round {round}: {stats:?}");
        check_all_queries(app.world_mut(), &mut rng, res);
    }
}

/// Small moves at a fine resolution: most entities stay in their cell or step into a neighbour,
/// the paths the index answers from cached cell outlines. Cells must still match H3 exactly.
#[test]
fn cells_stay_exact_under_small_moves_at_fine_resolution() {
    let res = Resolution::Twelve;
    let mut app = app(res);
    let mut rng = SimRng::new(23).stream("index-small-moves");
    let ents = spawn_random(app.world_mut(), &mut rng, 3000);
    app.world_mut().run_schedule(SimStep);
    for _ in 0..6 {
        let world = app.world_mut();
        for &e in &ents {
            if let Some(mut p) = world.get_mut::<Position>(e) {
                p.xy_m += DVec2::new(unit(&mut rng) * 30.0 - 15.0, unit(&mut rng) * 30.0 - 15.0);
            }
        }
        app.world_mut().run_schedule(SimStep);
        check_all_queries(app.world_mut(), &mut rng, res);
    }
}
