//! The citytwin app as a library: the registry of every simulation and scenario plugin the
//! command-line app ships with, so its tests, benchmarks and examples build scenes exactly as
//! `citytwin run` does, and the charts its reports draw.

pub mod charts;
pub mod forecast;

use citytwin_engine::modules::ModuleRegistry;

/// Every simulation (`[simulations.*]`) and scenario plugin (`[[scenario]]`) the app knows:
/// each crate registers itself here when it joins the workspace.
pub fn registry() -> ModuleRegistry {
    let mut r = ModuleRegistry::new();
    r.add_simulation(citytwin_traffic::TrafficModule);
    r.add_simulation(citytwin_pollution::PollutionModule);
    r.add_simulation(citytwin_flood::FloodModule);
    r.add_scenario(citytwin_road_closure::RoadClosure);
    r.add_scenario(citytwin_signal_retiming::SignalRetiming);
    r.add_scenario(citytwin_demand_change::DemandChange);
    r.add_scenario(citytwin_green_wave::GreenWave);
    r.add_scenario(citytwin_rainstorm::Rainstorm);
    r.add_scenario(citytwin_chemical_leak::ChemicalLeak);
    r.add_scenario(citytwin_plugin_template::SpeedLimit);
    r
}

/// A KPI value as reports print it: integers as integers, tiny values (concentrations in kg/m³
/// and the like) with three significant figures, others with four decimals.
pub fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{}", v as i64)
    } else if v.abs() < 1e-3 {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}
