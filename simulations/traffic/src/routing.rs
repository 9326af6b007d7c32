//! Fastest routes on the edge graph: A* over current edge travel times.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::net::{EdgeIx, Network, VClass};

/// Edge travel times the router uses, s; a closed edge is `f64::INFINITY`.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct EdgeCosts {
    /// Current travel time per edge, s.
    pub travel_time_s: Vec<f64>,
    /// Free-flow travel time per edge, s.
    pub free_flow_s: Vec<f64>,
    /// Highest speed on the network, m/s (for the A* bound).
    max_speed_mps: f64,
}

impl EdgeCosts {
    /// Free-flow costs of a network: length / speed limit.
    pub fn free_flow(net: &Network) -> Self {
        let free: Vec<f64> = net.edges.iter().map(|e| e.length_m / e.speed_mps).collect();
        Self {
            travel_time_s: free.clone(),
            free_flow_s: free,
            max_speed_mps: net.edges.iter().map(|e| e.speed_mps).fold(1.0, f64::max),
        }
    }
}

/// A fastest route from edge `from` to edge `to` (both included) for class `class`, or `None`
/// when `to` cannot be reached. Ties are broken by edge index, so the result is deterministic.
pub fn fastest_route(
    net: &Network,
    costs: &EdgeCosts,
    class: VClass,
    from: EdgeIx,
    to: EdgeIx,
) -> Option<Vec<EdgeIx>> {
    if from == to {
        return Some(vec![from]);
    }
    let n = net.edges.len();
    let target_xy = net.junctions[net.edges[to as usize].from as usize].xy;
    // A slightly shrunk straight-line bound keeps A* admissible where junction shapes make an
    // edge a little shorter than the distance between its junction centres.
    let h = |e: EdgeIx| {
        let p = net.junctions[net.edges[e as usize].to as usize].xy;
        0.9 * ((p[0] - target_xy[0]).hypot(p[1] - target_xy[1])) / costs.max_speed_mps
    };
    let mut best = vec![f64::INFINITY; n];
    let mut prev = vec![u32::MAX; n];
    let mut heap = BinaryHeap::new();
    best[from as usize] = 0.0;
    heap.push(Reverse((OrdF64(h(from)), from)));
    while let Some(Reverse((OrdF64(_), e))) = heap.pop() {
        if e == to {
            let mut path = vec![to];
            let mut cur = to;
            while cur != from {
                cur = prev[cur as usize];
                path.push(cur);
            }
            path.reverse();
            return Some(path);
        }
        let g = best[e as usize];
        for (next, link_len, link_speed) in net.successors(e, class) {
            let c = costs.travel_time_s[next as usize];
            if !c.is_finite() {
                continue;
            }
            let ng = g + link_len / link_speed + c;
            if ng < best[next as usize] {
                best[next as usize] = ng;
                prev[next as usize] = e;
                heap.push(Reverse((OrdF64(ng + h(next)), next)));
            }
        }
    }
    None
}

/// A route through `waypoints` in order (first to last), joining fastest legs.
pub fn route_via(
    net: &Network,
    costs: &EdgeCosts,
    class: VClass,
    waypoints: &[EdgeIx],
) -> Option<Vec<EdgeIx>> {
    let mut out: Vec<EdgeIx> = vec![*waypoints.first()?];
    for w in waypoints.windows(2) {
        let leg = fastest_route(net, costs, class, w[0], w[1])?;
        out.extend_from_slice(&leg[1..]);
    }
    Some(out)
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, PartialEq)]
struct OrdF64(f64);
impl Eq for OrdF64 {}
impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrdF64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}
