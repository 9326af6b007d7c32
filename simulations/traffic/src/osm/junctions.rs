//! Right of way at the junctions of a network built from OpenStreetMap: signal programs where
//! signals are mapped, priority by road class elsewhere, and merges where nobody gave way.

use std::collections::HashSet;

use super::{heading, wrap};
use crate::net::{
    Edge, EdgeIx, Junction, Link, LinkIx, Phase, Priority, SignalControl, SignalLogic,
};

/// Where links from different approaches lead into the same lane and neither gives way yet,
/// the one from the lower road class gives way — between equals, the one with the other on its
/// right — so two vehicles never merge blind.
pub(super) fn merge_yields(
    jl: &[(LinkIx, EdgeIx, f64)],
    edges: &[Edge],
    meta: &[(usize, bool, u8)],
    links: &mut [Link],
) {
    let hin = |e: EdgeIx| heading(&edges[e as usize].shape, false);
    for a in 0..jl.len() {
        for b in 0..jl.len() {
            let ((ka, ea, _), (kb, eb, _)) = (jl[a], jl[b]);
            if ea == eb || links[ka as usize].to_lane != links[kb as usize].to_lane {
                continue;
            }
            if links[ka as usize].yields_to.contains(&kb)
                || links[kb as usize].yields_to.contains(&ka)
            {
                continue;
            }
            let (ra, rb) = (meta[ea as usize].2, meta[eb as usize].2);
            // b comes from a's right when it travels 90° to a's left
            let b_from_right = (0.0..std::f64::consts::PI).contains(&wrap(hin(eb) - hin(ea)));
            if ra < rb || ra == rb && b_from_right {
                links[ka as usize].yields_to.push(kb);
                links[ka as usize].priority = Priority::Minor;
            }
        }
    }
}

/// Who yields to whom at junction `j` (links `jl`: link, incoming edge, turn angle), and the
/// signal program if it is signalised.
#[allow(clippy::too_many_arguments)]
pub(super) fn right_of_way(
    j: u32,
    jl: &[(LinkIx, EdgeIx, f64)],
    edges: &[Edge],
    meta: &[(usize, bool, u8)],
    signalised: bool,
    links: &mut [Link],
    junctions: &mut [Junction],
    signals: &mut Vec<SignalLogic>,
) {
    if jl.is_empty() {
        return;
    }
    let approaches: Vec<EdgeIx> = {
        let mut a: Vec<EdgeIx> = jl.iter().map(|l| l.1).collect();
        a.sort_unstable();
        a.dedup();
        a
    };
    let hin = |e: EdgeIx| heading(&edges[e as usize].shape, false);
    let opposite = |a: EdgeIx, b: EdgeIx| wrap(hin(a) - hin(b)).abs() > 135f64.to_radians();
    let left: HashSet<LinkIx> = jl
        .iter()
        .filter(|l| matches!(links[l.0 as usize].dir, 'l' | 't'))
        .map(|l| l.0)
        .collect();
    let is_left = |k: LinkIx| left.contains(&k);
    // A signal where no roads cross (a pedestrian crossing on a through road) is left out, as
    // netconvert's tls.discard-simple does: cars there see it only as a short red now and then.
    let crossing =
        approaches.len() >= 3 || approaches.len() == 2 && !opposite(approaches[0], approaches[1]);
    if signalised && crossing {
        // two phase groups: the first approach with its opposite, and the rest
        let first = approaches[0];
        let group = |e: EdgeIx| -> usize {
            let d = wrap(hin(e) - hin(first)).abs();
            if d < 45f64.to_radians() || d > 135f64.to_radians() {
                0
            } else {
                1
            }
        };
        let groups: Vec<usize> = {
            let mut g: Vec<usize> = approaches.iter().map(|&e| group(e)).collect();
            g.sort_unstable();
            g.dedup();
            g
        };
        let mut phases = Vec::new();
        for &g in &groups {
            let green: Vec<u8> = jl
                .iter()
                .map(|&(k, e, _)| {
                    if group(e) != g {
                        b'r'
                    } else if is_left(k) {
                        b'g'
                    } else {
                        b'G'
                    }
                })
                .collect();
            let amber: Vec<u8> = green
                .iter()
                .map(|&c| if c == b'r' { b'r' } else { b'y' })
                .collect();
            phases.push(Phase {
                duration_s: 42.0,
                min_s: 5.0,
                max_s: 50.0,
                state: green,
            });
            phases.push(Phase {
                duration_s: 3.0,
                min_s: 3.0,
                max_s: 3.0,
                state: amber,
            });
        }
        let s = signals.len() as u32;
        for (i, &(k, e, _)) in jl.iter().enumerate() {
            links[k as usize].signal = Some((s, i as u16));
            // permissive left turns wait inside the junction for the opposite flow
            if is_left(k) {
                let foes: Vec<LinkIx> = jl
                    .iter()
                    .filter(|&&(k2, e2, _)| e2 != e && opposite(e, e2) && !is_left(k2))
                    .map(|l| l.0)
                    .collect();
                if !foes.is_empty() {
                    let len = 14.1;
                    links[k as usize].yields_to = foes;
                    links[k as usize].priority = Priority::Minor;
                    links[k as usize].wait_pos_m = Some(0.6 * len);
                }
            }
        }
        signals.push(SignalLogic {
            id: junctions[j as usize].id.clone(),
            control: SignalControl::Actuated {
                max_gap_s: 3.0,
                detector_gap_s: 2.0,
            },
            offset_s: 0.0,
            phases,
            links: jl.iter().map(|l| vec![l.0]).collect(),
        });
        junctions[j as usize].signal = Some(s);
        junctions[j as usize].kind = "traffic_light".into();
        return;
    }
    // unsignalised: by road class
    let rank = |e: EdgeIx| meta[e as usize].2;
    let top = approaches.iter().map(|&e| rank(e)).max().unwrap_or(0);
    let all_equal = approaches.iter().all(|&e| rank(e) == top);
    if approaches.len() < 2 {
        return;
    }
    if all_equal && approaches.len() >= 3 {
        junctions[j as usize].kind = "right_before_left".into();
        // each approach gives way to the one coming from its right (travelling 90° to its left)
        for &(k, e, _) in jl {
            let right: Vec<LinkIx> = jl
                .iter()
                .filter(|&&(_, e2, _)| {
                    let d = wrap(hin(e2) - hin(e)).to_degrees();
                    (45.0..135.0).contains(&d)
                })
                .map(|l| l.0)
                .collect();
            if !right.is_empty() {
                links[k as usize].priority = Priority::Minor;
                links[k as usize].yields_to = right;
            }
        }
        return;
    }
    let major: Vec<LinkIx> = jl
        .iter()
        .filter(|l| rank(l.1) == top)
        .map(|l| l.0)
        .collect();
    for &(k, e, _) in jl {
        if rank(e) == top {
            // a major left turn gives way to the opposite major flow
            if is_left(k) {
                let foes: Vec<LinkIx> = jl
                    .iter()
                    .filter(|&&(k2, e2, _)| {
                        rank(e2) == top && e2 != e && opposite(e, e2) && !is_left(k2)
                    })
                    .map(|l| l.0)
                    .collect();
                if !foes.is_empty() {
                    links[k as usize].priority = Priority::Minor;
                    links[k as usize].yields_to = foes;
                }
            }
        } else {
            links[k as usize].priority = Priority::Minor;
            links[k as usize].yields_to = major.clone();
        }
    }
}
