//! A SWMM-style summary of a run, in the model's own units: routing and runoff continuity,
//! node depths and flooding, link flows — what a drainage engineer checks first, laid out as
//! SWMM's report lays it out so the two can be read side by side.

use std::fmt::Write;

use super::Drainage;
use super::inp::InpModel;
use super::network::LinkType;

/// The summary of `d` (run on `model`) as text.
pub fn summary(model: &InpModel, d: &Drainage) -> String {
    let us = model.flow_units.is_us();
    let (len, lu) = if us { (super::FT, "ft") } else { (1.0, "m") };
    let q = model.flow_units.m3s();
    let qu = model.flow_units.name();
    let (vol, vu) = if us {
        (super::FT.powi(3), "ft3")
    } else {
        (1.0, "m3")
    };
    let mut s = String::new();
    let t = &d.totals;
    let _ = writeln!(s, "Flow routing continuity ({vu})");
    for (name, v) in [
        ("Dry weather inflow", t.dry_weather_m3),
        ("Wet weather inflow", t.wet_weather_m3),
        ("External inflow", t.external_m3),
        ("Inflow from the surface", t.surface_in_m3),
        ("External outflow", t.outflow_m3),
        ("Flooding loss", t.flooding_m3),
        ("Evaporation loss", t.evaporation_m3),
        ("Initial stored volume", t.initial_storage_m3),
        ("Final stored volume", d.stored_m3()),
    ] {
        let _ = writeln!(s, "  {name:<26} {:>14.3}", v / vol);
    }
    let _ = writeln!(
        s,
        "  {:<26} {:>14.4}",
        "Continuity error (%)",
        d.continuity_error_pct()
    );
    if !d.runoff.catchments.is_empty() {
        let r = d.runoff_totals();
        let _ = writeln!(s, "\nRunoff quantity continuity ({vu})");
        for (name, v) in [
            ("Total precipitation", r.rainfall_m3),
            ("Evaporation loss", r.evap_m3),
            ("Infiltration loss", r.infil_m3),
            ("Surface runoff", r.runoff_m3),
            ("Final storage", r.final_storage_m3),
        ] {
            let _ = writeln!(s, "  {name:<26} {:>14.3}", v / vol);
        }
        let _ = writeln!(
            s,
            "  {:<26} {:>14.4}",
            "Continuity error (%)",
            r.error_pct()
        );
    }
    let _ = writeln!(
        s,
        "\nRouting: {} steps of {:.2}–{:.2} s, {:.2} iterations per step, {} steps not converged",
        d.steps,
        d.step_range_s.0,
        d.step_range_s.1,
        d.iterations as f64 / d.steps.max(1) as f64,
        d.non_converged
    );
    let _ = writeln!(
        s,
        "\nNode summary\n  {:<16} {:<9} {:>10} {:>12} {:>12} {:>10}",
        "node",
        "type",
        format!("max {lu}"),
        format!("flood {vu}"),
        "flooded h",
        "surch. h"
    );
    for (i, n) in d.net.nodes.iter().enumerate() {
        let st = d.node_stats[i];
        let kind = if n.is_outfall() {
            "OUTFALL"
        } else if n.is_storage() {
            "STORAGE"
        } else {
            "JUNCTION"
        };
        let _ = writeln!(
            s,
            "  {:<16} {:<9} {:>10.3} {:>12.1} {:>12.2} {:>10.2}",
            n.name,
            kind,
            st.max_depth_m / len,
            st.flooded_m3 / vol,
            st.flooded_s / 3600.0,
            st.surcharged_s / 3600.0
        );
    }
    let _ = writeln!(
        s,
        "\nLink summary\n  {:<16} {:<9} {:>12} {:>12}",
        "link",
        "type",
        format!("max |Q| {qu}"),
        "full h"
    );
    for (j, l) in d.net.links.iter().enumerate() {
        let kind = match l.kind {
            LinkType::Conduit(_) => "CONDUIT",
            LinkType::Pump(_) => "PUMP",
            LinkType::Orifice(_) => "ORIFICE",
            LinkType::Weir(_) => "WEIR",
        };
        let st = d.link_stats[j];
        let _ = writeln!(
            s,
            "  {:<16} {:<9} {:>12.3} {:>12.2}",
            l.name,
            kind,
            st.peak_flow_m3s / q,
            st.full_s / 3600.0
        );
    }
    if !model.warnings.is_empty() {
        let _ = writeln!(s, "\nNot modelled");
        for w in &model.warnings {
            let _ = writeln!(s, "  {w}");
        }
    }
    s
}
