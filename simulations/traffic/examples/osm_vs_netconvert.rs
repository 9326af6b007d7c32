//! Compare citytwin's network from an OSM extract with SUMO netconvert's network of the same
//! extract: lane-kilometres, edges, signalised junctions.
//!
//! `cargo run --release --example osm_vs_netconvert -- EXTRACT.osm.pbf NETCONVERT.net.xml LON LAT`

use std::path::PathBuf;

use citytwin_engine::geo_frame::{GeoFrame, LonLat};
use citytwin_traffic::Network;
use citytwin_traffic::osm::network_from_pbf;

fn lane_km(n: &Network) -> f64 {
    n.edges
        .iter()
        .map(|e| e.length_m * e.lanes.len() as f64)
        .sum::<f64>()
        / 1000.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 4 {
        eprintln!("usage: osm_vs_netconvert EXTRACT.osm.pbf NET.net.xml LON LAT");
        std::process::exit(2);
    }
    let frame = GeoFrame::new(LonLat::new(a[2].parse()?, a[3].parse()?));
    let t = std::time::Instant::now();
    let ours = network_from_pbf(&PathBuf::from(&a[0]), &frame)?;
    let took = t.elapsed().as_secs_f64();
    let theirs = Network::from_sumo_file(&PathBuf::from(&a[1]))?;
    for (name, n) in [("citytwin", &ours), ("netconvert", &theirs)] {
        println!(
            "{name:>10}: {:5} edges, {:7.2} lane-km, {:4} junctions, {:3} traffic lights, {:5} links",
            n.edges.len(),
            lane_km(n),
            n.junctions.len(),
            n.signals.len(),
            n.links.len()
        );
    }
    println!(
        "built from OSM in {took:.2} s; lane-km ratio {:.3}",
        lane_km(&ours) / lane_km(&theirs)
    );
    Ok(())
}
