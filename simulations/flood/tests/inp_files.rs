//! SWMM input files: what is malformed is named by file, line and section; what is not
//! modelled is named in a warning; names ignore case as in SWMM; a network written back out
//! reads in the same.

mod common;

use citytwin_flood::drainage::Drainage;
use citytwin_flood::drainage::inp::{parse_inp, read_inp, to_inp};

const BASE: &str = "[OPTIONS]\nFLOW_UNITS CMS\nFLOW_ROUTING DYNWAVE\nEND_TIME 1:00\nROUTING_STEP 5\nVARIABLE_STEP 0.75\n\
[JUNCTIONS]\nJ1 10 2\nJ2 9 2\n[OUTFALLS]\nO1 8 FREE\n\
[CONDUITS]\nC1 J1 J2 100 0.013 0 0\nC2 J2 O1 100 0.013 0 0\n\
[XSECTIONS]\nC1 CIRCULAR 0.5\nC2 CIRCULAR 0.5\n";

fn err(text: &str) -> String {
    parse_inp(text, "m.inp", None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_else(|| "parsed".into())
}

#[test]
fn malformed_lines_are_named_with_file_line_and_section() {
    assert_eq!(err(BASE), "parsed");
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "C1 J1 J2 100 0.013 0 0",
            "C1 J1 J9 100 0.013 0 0",
            &["m.inp:13:", "[CONDUITS]", "`J9`"],
        ),
        (
            "C1 J1 J2 100 0.013 0 0",
            "C1 J1 J2 -5 0.013 0 0",
            &["m.inp:13:", "length must be positive"],
        ),
        (
            "J2 9 2",
            "J2 9 x",
            &["m.inp:9:", "[JUNCTIONS]", "'x' is not a number"],
        ),
        ("J2 9 2", "J1 9 2", &["m.inp:9:", "defined twice", "line 8"]),
        (
            "C2 CIRCULAR 0.5",
            "C2 EGG 0.5",
            &["m.inp:17:", "[XSECTIONS]", "'EGG' is not supported"],
        ),
        (
            "C2 CIRCULAR 0.5",
            "",
            &[
                "m.inp:14:",
                "[CONDUITS]",
                "`C2` has no entry in [XSECTIONS]",
            ],
        ),
        (
            "O1 8 FREE",
            "O1 8 LAKE",
            &["m.inp:11:", "[OUTFALLS]", "'LAKE'"],
        ),
        (
            "FLOW_UNITS CMS",
            "FLOW_UNITS GALLONS",
            &["m.inp:2:", "FLOW_UNITS"],
        ),
    ];
    for (from, to, want) in cases {
        let e = err(&BASE.replace(from, to));
        for w in *want {
            assert!(e.contains(w), "{to:?}: {e} (wanted {w})");
        }
    }
    let series =
        format!("{BASE}[TIMESERIES]\nTS 0:00 1\nTS 0:30 2\nTS 0:20 3\n[INFLOWS]\nJ1 FLOW TS\n");
    let e = err(&series);
    assert!(
        e.contains("m.inp:21:") && e.contains("[TIMESERIES]") && e.contains("must increase"),
        "{e}"
    );
    let missing = dirs_missing();
    assert!(missing.contains("cannot read"), "{missing}");
}

fn dirs_missing() -> String {
    read_inp(std::path::Path::new("/nonexistent/model.inp"))
        .unwrap_err()
        .to_string()
}

#[test]
fn what_is_not_modelled_is_named_and_names_ignore_case() {
    let text = format!(
        "{BASE}[POLLUTANTS]\nTSS MG/L 0 0 0 0 NO\n[CONTROLS]\nRULE R1\nIF NODE J1 DEPTH > 1\nTHEN PUMP P1 STATUS = ON\n\
         [INFLOWS]\nj1 FLOW \"\" FLOW 1.0 1.0 0.2\n[LOSSES]\nc1 0.5 0.5 0 YES\n"
    );
    let m = parse_inp(&text, "m.inp", None).unwrap();
    let w = m.warnings.join("\n");
    assert!(
        w.contains("[POLLUTANTS]") && w.contains("water quality is not modelled"),
        "{w}"
    );
    assert!(
        w.contains("[CONTROLS]") && w.contains("3 lines") && w.contains("control rules"),
        "{w}"
    );
    // `j1` and `c1` are J1 and C1.
    let j1 = m.spec.node("J1").unwrap();
    assert_eq!(m.spec.nodes[j1].inflow.as_ref().unwrap().baseline_m3s, 0.2);
    let mut d = Drainage::new(&m.spec).unwrap();
    d.run();
    let c2 = m.spec.link("c2").unwrap();
    assert!(
        (d.link_stats[c2].peak_flow_m3s - 0.2).abs() < 0.01,
        "{}",
        d.link_stats[c2].peak_flow_m3s
    );
    assert!(d.continuity_error_pct().abs() < 0.1);
}

#[test]
fn a_network_written_out_reads_back_the_same() {
    // full_features without its subcatchments (the writer leaves them out): storage, an ideal
    // pump, a weir, dry-weather and external inflows.
    let mut m = read_inp(&common::shared().join("flood/swmm/full_features.inp")).unwrap();
    m.spec.subcatchments.clear();
    m.spec.gauges.clear();
    let text = to_inp(&m.spec, "round trip");
    let back = parse_inp(&text, "written.inp", None).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(back.spec.nodes.len(), m.spec.nodes.len());
    assert_eq!(back.spec.links.len(), m.spec.links.len());
    let (mut a, mut b) = (
        Drainage::new(&m.spec).unwrap(),
        Drainage::new(&back.spec).unwrap(),
    );
    a.spec_run_hours(6.0);
    b.spec_run_hours(6.0);
    for j in 0..a.link_stats.len() {
        let (x, y) = (a.link_stats[j].peak_flow_m3s, b.link_stats[j].peak_flow_m3s);
        assert!(
            (x - y).abs() <= 1e-9 * x.abs().max(1e-9),
            "link {j}: {x} vs {y}"
        );
    }
}

trait RunHours {
    fn spec_run_hours(&mut self, h: f64);
}

impl RunHours for Drainage {
    fn spec_run_hours(&mut self, h: f64) {
        self.advance_to(h * 3600.0);
    }
}
