//! Map-matching: which road each GPS fix of a vehicle was on.
//!
//! A hidden Markov model over candidate positions on the roads near each fix, solved with
//! Viterbi, after Newson & Krumm (2009, "Hidden Markov map matching through noise and
//! sparseness"): a fix is likely on a road in proportion to a Gaussian of its distance from it
//! (`sigma_m`, the receiver's error), and a move from one candidate to the next in proportion to
//! an exponential of how much the route between them along the network (direction of travel
//! kept) differs from the straight line between the fixes (`beta_m`). A track whose next fix
//! cannot be reached from any candidate, or that has no road within `radius_m`, starts again.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use bevy::math::DVec2;
use bevy::prelude::*;
use rstar::primitives::{GeomWithData, Line};
use rstar::{AABB, RTree};

use crate::model::{FeatureId, Road, Shape};

/// Tuning of the matcher.
#[derive(Clone, Copy, Debug)]
pub struct MatchParams {
    /// Standard deviation of a fix's position error, m (Newson & Krumm's σ; 4–10 m for a
    /// phone or a fleet receiver).
    pub sigma_m: f64,
    /// Scale of the difference between route and straight-line distance, m (their β).
    pub beta_m: f64,
    /// Roads farther than this from a fix are not candidates, m.
    pub radius_m: f64,
    /// At most this many candidates per fix (the nearest).
    pub max_candidates: usize,
}

impl Default for MatchParams {
    fn default() -> Self {
        Self {
            sigma_m: 5.0,
            beta_m: 5.0,
            radius_m: 50.0,
            max_candidates: 8,
        }
    }
}

/// One fix's match.
#[derive(Clone, Debug, PartialEq)]
pub struct Matched {
    /// The road entity.
    pub road: Entity,
    /// Its feature id.
    pub feature: FeatureId,
    /// Distance along the road from its start, m.
    pub along_m: f64,
    /// The position on the road, m in the frame.
    pub on_road_m: DVec2,
    /// How far the fix was from it, m.
    pub distance_m: f64,
}

struct RoadLine {
    entity: Entity,
    feature: FeatureId,
    pts: Vec<DVec2>,
    /// Distance along the line at each vertex, m.
    cum_m: Vec<f64>,
    to: Option<Entity>,
}

impl RoadLine {
    fn length_m(&self) -> f64 {
        *self.cum_m.last().unwrap_or(&0.0)
    }
}

type Segment = GeomWithData<Line<[f64; 2]>, (usize, usize)>;

/// The roads of a layer as a directed graph with an R-tree of their segments.
pub struct RoadNetwork {
    roads: Vec<RoadLine>,
    /// Roads leaving each intersection.
    out_of: HashMap<Entity, Vec<usize>>,
    tree: RTree<Segment>,
}

#[derive(Clone, Copy, Debug)]
struct Candidate {
    road: usize,
    along_m: f64,
    at: DVec2,
    distance_m: f64,
}

impl RoadNetwork {
    /// The roads of `layer` (a `Road` with a line `Shape` and a `FeatureId` in that layer), in
    /// feature-id order. Directed: a road runs from its `from` to its `to` intersection.
    pub fn from_world(world: &mut World, layer: &str) -> Self {
        let mut q = world.query::<(Entity, &Road, &Shape, &FeatureId)>();
        let mut list: Vec<(Entity, Road, Vec<DVec2>, FeatureId)> = q
            .iter(world)
            .filter(|(_, _, _, f)| f.layer == layer)
            .filter_map(|(e, r, s, f)| {
                let pts: Vec<DVec2> = match &*s.0 {
                    geo::Geometry::LineString(l) => {
                        l.0.iter().map(|c| DVec2::new(c.x, c.y)).collect()
                    }
                    _ => return None,
                };
                (pts.len() >= 2).then(|| (e, r.clone(), pts, f.clone()))
            })
            .collect();
        list.sort_by(|a, b| a.3.cmp(&b.3));
        let mut roads = Vec::with_capacity(list.len());
        let mut out_of: HashMap<Entity, Vec<usize>> = HashMap::new();
        let mut segs = Vec::new();
        for (i, (e, r, pts, f)) in list.into_iter().enumerate() {
            let mut cum_m = vec![0.0];
            for w in pts.windows(2) {
                cum_m.push(cum_m.last().unwrap() + w[0].distance(w[1]));
            }
            for (k, w) in pts.windows(2).enumerate() {
                segs.push(Segment::new(
                    Line::new([w[0].x, w[0].y], [w[1].x, w[1].y]),
                    (i, k),
                ));
            }
            if let Some(from) = r.from {
                out_of.entry(from).or_default().push(i);
            }
            roads.push(RoadLine {
                entity: e,
                feature: f,
                pts,
                cum_m,
                to: r.to,
            });
        }
        Self {
            roads,
            out_of,
            tree: RTree::bulk_load(segs),
        }
    }

    /// Roads in the network.
    pub fn len(&self) -> usize {
        self.roads.len()
    }

    /// Whether it has no road.
    pub fn is_empty(&self) -> bool {
        self.roads.is_empty()
    }

    /// The nearest point of each road within `radius_m` of `p` (the nearest `max` roads).
    fn candidates(&self, p: DVec2, radius_m: f64, max: usize) -> Vec<Candidate> {
        let env = AABB::from_corners(
            [p.x - radius_m, p.y - radius_m],
            [p.x + radius_m, p.y + radius_m],
        );
        let mut best: HashMap<usize, Candidate> = HashMap::new();
        for s in self.tree.locate_in_envelope_intersecting(&env) {
            let (road, k) = s.data;
            let r = &self.roads[road];
            let (a, b) = (r.pts[k], r.pts[k + 1]);
            let ab = b - a;
            let t = if ab.length_squared() > 0.0 {
                ((p - a).dot(ab) / ab.length_squared()).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let at = a + ab * t;
            let d = at.distance(p);
            if d > radius_m {
                continue;
            }
            let c = Candidate {
                road,
                along_m: r.cum_m[k] + t * ab.length(),
                at,
                distance_m: d,
            };
            match best.get(&road) {
                Some(o) if o.distance_m <= d => {}
                _ => {
                    best.insert(road, c);
                }
            }
        }
        let mut v: Vec<Candidate> = best.into_values().collect();
        v.sort_by(|a, b| {
            a.distance_m
                .total_cmp(&b.distance_m)
                .then(a.road.cmp(&b.road))
        });
        v.truncate(max);
        v
    }

    /// Shortest distances along the network from the end of road `from` to the start of every
    /// road, up to `limit_m`.
    fn reach(&self, from: usize, limit_m: f64) -> HashMap<usize, f64> {
        #[derive(PartialEq)]
        struct Item(f64, usize);
        impl Eq for Item {}
        impl PartialOrd for Item {
            fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
                Some(self.cmp(o))
            }
        }
        impl Ord for Item {
            fn cmp(&self, o: &Self) -> Ordering {
                o.0.total_cmp(&self.0).then(o.1.cmp(&self.1))
            }
        }
        // Distance to the start of each road (reached through its `from` intersection).
        let mut dist: HashMap<usize, f64> = HashMap::new();
        let mut heap = BinaryHeap::new();
        let start = &self.roads[from];
        if let Some(node) = start.to {
            for &n in self.out_of.get(&node).into_iter().flatten() {
                dist.insert(n, 0.0);
                heap.push(Item(0.0, n));
            }
        }
        while let Some(Item(d, r)) = heap.pop() {
            if dist.get(&r).is_some_and(|&x| x < d) {
                continue;
            }
            let next = d + self.roads[r].length_m();
            if next > limit_m {
                continue;
            }
            if let Some(node) = self.roads[r].to {
                for &n in self.out_of.get(&node).into_iter().flatten() {
                    if dist.get(&n).is_none_or(|&x| next < x) {
                        dist.insert(n, next);
                        heap.push(Item(next, n));
                    }
                }
            }
        }
        dist
    }

    /// The nearest point of the roads within `radius_m` of `p`.
    pub fn nearest(&self, p: DVec2, radius_m: f64) -> Option<Matched> {
        self.candidates(p, radius_m, 1).first().map(|c| {
            let r = &self.roads[c.road];
            Matched {
                road: r.entity,
                feature: r.feature.clone(),
                along_m: c.along_m,
                on_road_m: c.at,
                distance_m: c.distance_m,
            }
        })
    }

    /// Route distance from candidate `a` to candidate `b` in the direction of travel, within
    /// `reach` (distances from the end of `a`'s road).
    fn route_m(
        &self,
        a: &Candidate,
        b: &Candidate,
        reach: &HashMap<usize, f64>,
        back_m: f64,
    ) -> Option<f64> {
        if a.road == b.road && b.along_m >= a.along_m - back_m {
            return Some((b.along_m - a.along_m).abs());
        }
        let rest = self.roads[a.road].length_m() - a.along_m;
        reach.get(&b.road).map(|d| rest + d + b.along_m)
    }

    /// Match one vehicle's fixes (time, position in the frame), in time order. `None` where no
    /// road is within `radius_m`.
    pub fn match_track(&self, fixes: &[(f64, DVec2)], p: &MatchParams) -> Vec<Option<Matched>> {
        let cands: Vec<Vec<Candidate>> = fixes
            .iter()
            .map(|(_, x)| self.candidates(*x, p.radius_m, p.max_candidates))
            .collect();
        let emission = |c: &Candidate| -0.5 * (c.distance_m / p.sigma_m).powi(2);
        let mut out = vec![None; fixes.len()];
        // Viterbi over runs of fixes that stay connected; a break starts a new run.
        let mut i = 0;
        while i < fixes.len() {
            if cands[i].is_empty() {
                i += 1;
                continue;
            }
            let start = i;
            let mut score: Vec<f64> = cands[i].iter().map(emission).collect();
            let mut back: Vec<Vec<usize>> = vec![vec![usize::MAX; cands[i].len()]];
            let mut j = i + 1;
            while j < fixes.len() && !cands[j].is_empty() {
                let gc = fixes[j].1.distance(fixes[j - 1].1);
                let limit = (3.0 * gc).max(gc + 500.0);
                let reaches: Vec<HashMap<usize, f64>> = cands[j - 1]
                    .iter()
                    .map(|a| self.reach(a.road, limit))
                    .collect();
                let mut next = vec![f64::NEG_INFINITY; cands[j].len()];
                let mut from = vec![usize::MAX; cands[j].len()];
                for (bi, b) in cands[j].iter().enumerate() {
                    for (ai, a) in cands[j - 1].iter().enumerate() {
                        if score[ai] == f64::NEG_INFINITY {
                            continue;
                        }
                        let Some(route) = self.route_m(a, b, &reaches[ai], 3.0 * p.sigma_m) else {
                            continue;
                        };
                        let s = score[ai] - (route - gc).abs() / p.beta_m;
                        if s > next[bi] {
                            next[bi] = s;
                            from[bi] = ai;
                        }
                    }
                    if next[bi] > f64::NEG_INFINITY {
                        next[bi] += emission(b);
                    }
                }
                if next.iter().all(|s| *s == f64::NEG_INFINITY) {
                    break; // unreachable: the next run starts at j
                }
                score = next;
                back.push(from);
                j += 1;
            }
            // Backtrack from the best last state.
            let mut k = score
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
                .map(|(k, _)| k)
                .unwrap_or(0);
            for t in (start..j).rev() {
                let c = cands[t][k];
                let r = &self.roads[c.road];
                out[t] = Some(Matched {
                    road: r.entity,
                    feature: r.feature.clone(),
                    along_m: c.along_m,
                    on_road_m: c.at,
                    distance_m: c.distance_m,
                });
                if t > start {
                    k = back[t - start][k];
                }
            }
            i = j;
        }
        out
    }
}
