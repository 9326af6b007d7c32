//! Run citytwin's traffic core on a SUMO network and route file and print the trip statistics,
//! the same figures `shared/scripts/tripstats.py` prints for SUMO.
//!
//! `cargo run --release --example run_sumo_files -- NET.net.xml ROUTES.rou.xml [--idm] [--tripinfo FILE]`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use citytwin_traffic::demand::CarFollowModel;
use citytwin_traffic::tripinfo::{TripinfoWriter, summary};
use citytwin_traffic::{Demand, Network, Traffic, TrafficConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: run_sumo_files NET ROUTES [--idm] [--tripinfo FILE]");
        std::process::exit(2);
    }
    let net = Network::from_sumo_file(&PathBuf::from(&args[0]))?;
    let mut demand = Demand::new();
    demand.read_sumo_file(&PathBuf::from(&args[1]), &net)?;
    let mut cfg = TrafficConfig::default();
    if args.iter().any(|a| a == "--idm") {
        cfg.model_override = Some(CarFollowModel::Idm { delta: 4.0 });
    }
    let tripinfo = args
        .iter()
        .position(|a| a == "--tripinfo")
        .and_then(|i| args.get(i + 1));
    let net = Arc::new(net);
    let mut sim = Traffic::new(net.clone(), demand, cfg);
    let start = Instant::now();
    let mut t = 0.0;
    let mut updates = 0u64;
    let mut trips = Vec::new();
    while !sim.is_done() && t < 86_400.0 {
        sim.step(t);
        updates += sim.running();
        trips.extend(sim.take_finished());
        t += 1.0;
    }
    let wall = start.elapsed().as_secs_f64();
    for v in sim.vehicles() {
        eprintln!(
            "still running: {} on lane {} at {:.1} m, {:.2} m/s",
            v.id, net.lanes[v.lane as usize].id, v.pos_m, v.speed_mps
        );
    }
    if let Some(p) = tripinfo {
        TripinfoWriter::create(&PathBuf::from(p))?.write(&net, &trips)?;
    }
    let s = summary(&trips);
    let tot = sim.totals();
    println!(
        "{{\"arrived\": {}, \"inserted\": {}, \"travel_time_mean_s\": {:.3}, \"time_loss_mean_s\": {:.3}, \"waiting_time_mean_s\": {:.3}, \"route_length_mean_m\": {:.2}, \"travel_time_index\": {:.4}, \"teleports\": {}, \"collisions\": {}, \"end_s\": {t}, \"wall_s\": {wall:.3}, \"ups\": {:.0}}}",
        s.arrived,
        tot.inserted,
        s.mean_travel_time_s,
        s.mean_time_loss_s,
        s.mean_waiting_s,
        s.mean_route_length_m,
        s.travel_time_index,
        tot.teleports,
        tot.collisions,
        updates as f64 / wall
    );
    Ok(())
}
