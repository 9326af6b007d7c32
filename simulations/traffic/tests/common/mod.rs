//! Small SUMO networks written out as XML, and helpers to run them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use citytwin_traffic::sim::TripRecord;
use citytwin_traffic::{Demand, Network, Traffic, TrafficConfig};

/// The shared reference data beside the repository.
pub fn shared() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    assert!(
        p.join("traffic").is_dir(),
        "the reference data ../shared/traffic (beside the repository) is missing; see README"
    );
    p
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A straight road: edge `in` (`len_in` m) → junction `J` → edge `out` (`len_out` m), one lane,
/// `speed` m/s. With `phases`, J is a signal with those (state, seconds) phases.
pub fn straight_net(
    len_in: f64,
    len_out: f64,
    speed: f64,
    phases: Option<&[(&str, f64)]>,
) -> String {
    let jx = len_in;
    let end = len_in + 10.0 + len_out;
    let (jtype, tl_attr, tl) = match phases {
        Some(ph) => {
            let mut t = String::from(
                "    <tlLogic id=\"J\" type=\"static\" programID=\"0\" offset=\"0\">\n",
            );
            for (st, d) in ph {
                t.push_str(&format!(
                    "        <phase duration=\"{d}\" state=\"{st}\"/>\n"
                ));
            }
            t.push_str("    </tlLogic>\n");
            ("traffic_light", " tl=\"J\" linkIndex=\"0\"", t)
        }
        None => ("priority", "", String::new()),
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<net version="1.20">
    <location netOffset="0.00,0.00" convBoundary="0,0,{end},0" origBoundary="0,0,{end},0" projParameter="!"/>
    <edge id=":J_0" function="internal">
        <lane id=":J_0_0" index="0" speed="{speed}" length="10.00" shape="{jx},0 {jx2},0"/>
    </edge>
    <edge id="in" from="A" to="J" priority="1">
        <lane id="in_0" index="0" speed="{speed}" length="{len_in}" shape="0,0 {jx},0"/>
    </edge>
    <edge id="out" from="J" to="B" priority="1">
        <lane id="out_0" index="0" speed="{speed}" length="{len_out}" shape="{jx2},0 {end},0"/>
    </edge>
{tl}    <junction id="A" type="dead_end" x="0" y="0" incLanes="" intLanes=""/>
    <junction id="J" type="{jtype}" x="{jx}" y="0" incLanes="in_0" intLanes=":J_0_0">
        <request index="0" response="0" foes="0" cont="0"/>
    </junction>
    <junction id="B" type="dead_end" x="{end}" y="0" incLanes="out_0" intLanes=""/>
    <connection from="in" to="out" fromLane="0" toLane="0" via=":J_0_0"{tl_attr} dir="s" state="M"/>
    <connection from=":J_0" to="out" fromLane="0" toLane="0" dir="s" state="M"/>
</net>
"#,
        jx2 = jx + 10.0
    )
}

/// A one-lane ring of `len` m: edges `e1` (R1→R2) and `e2` (R2→R1), each half the ring, joined
/// by 1 m links at priority junctions.
pub fn ring_net(len: f64, speed: f64) -> String {
    let half = len / 2.0 - 1.0;
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<net version="1.20">
    <location netOffset="0.00,0.00" convBoundary="0,0,{len},10" origBoundary="0,0,{len},10" projParameter="!"/>
    <edge id=":R1_0" function="internal">
        <lane id=":R1_0_0" index="0" speed="{speed}" length="1.00" shape="0,5 0,4"/>
    </edge>
    <edge id=":R2_0" function="internal">
        <lane id=":R2_0_0" index="0" speed="{speed}" length="1.00" shape="100,4 100,5"/>
    </edge>
    <edge id="e1" from="R1" to="R2" priority="1">
        <lane id="e1_0" index="0" speed="{speed}" length="{half}" shape="0,4 100,4"/>
    </edge>
    <edge id="e2" from="R2" to="R1" priority="1">
        <lane id="e2_0" index="0" speed="{speed}" length="{half}" shape="100,5 0,5"/>
    </edge>
    <junction id="R1" type="priority" x="0" y="5" incLanes="e2_0" intLanes=":R1_0_0">
        <request index="0" response="0" foes="0" cont="0"/>
    </junction>
    <junction id="R2" type="priority" x="100" y="5" incLanes="e1_0" intLanes=":R2_0_0">
        <request index="0" response="0" foes="0" cont="0"/>
    </junction>
    <connection from="e1" to="e2" fromLane="0" toLane="0" via=":R2_0_0" dir="s" state="M"/>
    <connection from="e2" to="e1" fromLane="0" toLane="0" via=":R1_0_0" dir="s" state="M"/>
    <connection from=":R2_0" to="e2" fromLane="0" toLane="0" dir="s" state="M"/>
    <connection from=":R1_0" to="e1" fromLane="0" toLane="0" dir="s" state="M"/>
</net>
"#
    )
}

/// Parse a network from XML text.
pub fn net_from(xml: &str) -> Network {
    Network::from_sumo_str(Path::new("test.net.xml"), xml).expect("test network parses")
}

/// Parse routes from XML text against `net`.
pub fn demand_from(net: &Network, xml: &str) -> Demand {
    let mut d = Demand::new();
    d.read_sumo_str(Path::new("test.rou.xml"), xml, net)
        .expect("test routes parse");
    d
}

/// A simulation with invariant checks on.
pub fn sim(net: Network, demand: Demand, seed: u64) -> Traffic {
    Traffic::new(
        Arc::new(net),
        demand,
        TrafficConfig {
            check_invariants: true,
            seed,
            ..TrafficConfig::default()
        },
    )
}

/// Run to completion (or `max_s`), returning every trip.
pub fn run_all(sim: &mut Traffic, max_s: f64) -> Vec<TripRecord> {
    let mut t = 0.0;
    let mut trips = Vec::new();
    while !sim.is_done() && t <= max_s {
        sim.step(t);
        trips.extend(sim.take_finished());
        t += 1.0;
    }
    trips
}

/// Least-squares slope and intercept of y on x.
pub fn linear_fit(xs: &[f64], ys: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mx = xs.iter().sum::<f64>() / n;
    let my = ys.iter().sum::<f64>() / n;
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let slope = sxy / sxx;
    (slope, my - slope * mx)
}

/// A number from a JSON file of SUMO's reference figures.
pub fn reference(path: &Path, key: &str) -> f64 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).expect("reference JSON");
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{}: no number '{key}'", path.display()))
}
