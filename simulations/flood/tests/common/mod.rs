//! Shared helpers of the flood tests: where the reference data lie and how EPA SWMM's own
//! results are read.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use citytwin_flood::drainage::inp::{FlowUnits, InpModel, read_inp};
use citytwin_flood::drainage::{Drainage, FT};

/// `../shared` beside the repository.
pub fn shared() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    assert!(
        p.join("flood/swmm").is_dir(),
        "the reference data ../shared/flood/swmm (beside the repository) is missing; see README"
    );
    p
}

/// The project's own SWMM models with EPA SWMM's results (`data/swmm/`).
pub fn data_swmm() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/swmm")
}

/// EPA SWMM's figures for a model (as `../shared/scripts/swmm_reference.py` writes them), in
/// the model's own units.
#[derive(Debug)]
pub struct Reference {
    /// Node → (max depth, flooding volume).
    pub nodes: BTreeMap<String, (f64, f64)>,
    /// Link → peak |flow|.
    pub links: BTreeMap<String, f64>,
    /// Flow routing continuity error, %.
    pub continuity_pct: f64,
    /// EPA SWMM's own wall time for the run, s.
    pub engine_wall_s: f64,
}

/// Read a reference JSON file.
pub fn reference(path: &Path) -> Reference {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let num = |x: &serde_json::Value| x.as_f64().unwrap_or(0.0);
    let nodes = v["nodes"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, n)| {
            (
                k.clone(),
                (num(&n["max_depth"]), num(&n["flooding_volume"])),
            )
        })
        .collect();
    let links = v["links"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, l)| (k.clone(), num(&l["peak_flow"])))
        .collect();
    Reference {
        nodes,
        links,
        continuity_pct: num(&v["flow_routing_continuity_error_pct"]),
        engine_wall_s: num(&v["engine_wall_s"]),
    }
}

/// One compared figure.
#[derive(Debug, Clone)]
pub struct Row {
    /// What (node or link name).
    pub name: String,
    /// citytwin, model units.
    pub ours: f64,
    /// EPA SWMM, model units.
    pub swmm: f64,
    /// Relative error against max(|swmm|, floor).
    pub rel: f64,
}

/// citytwin against EPA SWMM on one model.
#[derive(Debug)]
pub struct Comparison {
    /// Peak link flows.
    pub flows: Vec<Row>,
    /// Max node depths.
    pub depths: Vec<Row>,
    /// Node flooding volumes (nodes that flood in either).
    pub flooding: Vec<Row>,
    /// Total flooding volume (ours, SWMM's).
    pub total_flooding: (f64, f64),
    /// citytwin's routing continuity error, %.
    pub continuity_pct: f64,
    /// SWMM's.
    pub swmm_continuity_pct: f64,
    /// The model's unit words: (length, flow, volume).
    pub units: (&'static str, &'static str, &'static str),
}

impl Comparison {
    /// The largest relative errors: (flows, depths, total flooding).
    pub fn worst(&self) -> (f64, f64, f64) {
        let w = |rows: &[Row]| rows.iter().map(|r| r.rel.abs()).fold(0.0, f64::max);
        let (a, b) = self.total_flooding;
        let tf = if b > 0.0 {
            (a - b).abs() / b
        } else if a > 0.0 {
            1.0
        } else {
            0.0
        };
        (w(&self.flows), w(&self.depths), tf)
    }

    /// A printable table.
    pub fn table(&self, title: &str) -> String {
        let mut s = format!("== {title}\n");
        let (lu, qu, vu) = self.units;
        for (what, rows, unit) in [
            ("peak flow", &self.flows, qu),
            ("max depth", &self.depths, lu),
            ("flooding", &self.flooding, vu),
        ] {
            for r in rows.iter() {
                s += &format!(
                    "  {what:<10} {:<12} citytwin {:>12.4} SWMM {:>12.4} {unit:<6} {:+7.2} %\n",
                    r.name,
                    r.ours,
                    r.swmm,
                    100.0 * r.rel
                );
            }
        }
        s += &format!(
            "  total flooding citytwin {:.1} SWMM {:.1} {vu}; continuity error citytwin {:.4} % SWMM {:.4} %\n",
            self.total_flooding.0,
            self.total_flooding.1,
            self.continuity_pct,
            self.swmm_continuity_pct
        );
        s
    }
}

/// Run `inp` with citytwin's drainage solver and compare it with `json` (EPA SWMM's results).
pub fn compare(inp: &Path, json: &Path) -> (Comparison, InpModel, Drainage) {
    let model = read_inp(inp).unwrap_or_else(|e| panic!("{e}"));
    let r = reference(json);
    let mut d = Drainage::new(&model.spec).unwrap_or_else(|e| panic!("{}: {e}", inp.display()));
    d.run();
    let us = model.flow_units.is_us();
    let (len, vol) = if us { (FT, FT * FT * FT) } else { (1.0, 1.0) };
    let q = model.flow_units.m3s();
    let units = (
        if us { "ft" } else { "m" },
        model.flow_units.name(),
        if us { "ft3" } else { "m3" },
    );
    let _ = FlowUnits::Cfs;
    let spec = &model.spec;
    let max_peak = r.links.values().cloned().fold(0.0, f64::max);
    let mut flows = Vec::new();
    for (name, &swmm) in &r.links {
        let j = spec
            .link(name)
            .unwrap_or_else(|| panic!("link {name} not in the model"));
        let ours = d.link_stats[j].peak_flow_m3s / q;
        let floor = 0.01 * max_peak;
        flows.push(Row {
            name: name.clone(),
            ours,
            swmm,
            rel: (ours - swmm) / swmm.abs().max(floor),
        });
    }
    let mut depths = Vec::new();
    let mut flooding = Vec::new();
    let total_ref: f64 = r.nodes.values().map(|n| n.1).sum();
    let mut total_ours = 0.0;
    for (name, &(swmm_d, swmm_f)) in &r.nodes {
        let i = spec
            .node(name)
            .unwrap_or_else(|| panic!("node {name} not in the model"));
        let st = d.node_stats[i];
        let full = d.net.nodes[i].full_depth / len;
        let ours_d = st.max_depth_m / len;
        let floor = (0.01 * full).max(1e-6);
        depths.push(Row {
            name: name.clone(),
            ours: ours_d,
            swmm: swmm_d,
            rel: (ours_d - swmm_d) / swmm_d.max(floor),
        });
        let ours_f = st.flooded_m3 / vol;
        total_ours += ours_f;
        if swmm_f > 0.0 || ours_f > 0.0 {
            let floor = 0.01 * total_ref.max(1e-9);
            flooding.push(Row {
                name: name.clone(),
                ours: ours_f,
                swmm: swmm_f,
                rel: (ours_f - swmm_f) / swmm_f.max(floor),
            });
        }
    }
    let c = Comparison {
        flows,
        depths,
        flooding,
        total_flooding: (total_ours, total_ref),
        continuity_pct: d.continuity_error_pct(),
        swmm_continuity_pct: r.continuity_pct,
        units,
    };
    (c, model, d)
}
