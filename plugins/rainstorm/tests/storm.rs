//! The storm is real: the engine's rain totals equal the formula's depth, a recorded series
//! rains what it records, and a gauge gets its own reading.

use citytwin_plugin_testkit::SampleRun;
use citytwin_rainstorm::{DesignStorm, Formula, Rainstorm};

const HEFEI: &str = "{ a = 3600.0, c = 0.76, b = 14.0, n = 0.84, unit = \"L/s/ha\" }";

fn storm(params: &str) -> Result<SampleRun, String> {
    SampleRun::new(
        Rainstorm,
        &format!("[[scenario]]\nplugin = \"rainstorm\"\nparams = {params}"),
    )
}

#[test]
fn the_design_storm_rains_the_formula_depth() {
    let mut run = storm(&format!(
        "{{ formula = {HEFEI}, return_period_years = 5.0, duration_min = 45.0, peak_ratio = 0.4, start_s = 300.0 }}"
    ))
    .unwrap();
    run.steps(299);
    assert_eq!(run.kpi("rain.depth", "city"), None, "dry before the storm");
    run.steps(1 + 45 * 60 + 10);
    let depth_m = run.kpi("rain.depth", "city").unwrap();
    let f = Formula {
        a: 3600.0,
        c: 0.76,
        b: 14.0,
        n: 0.84,
        unit: "L/s/ha".into(),
    };
    let d = DesignStorm::new(&f, 5.0, 45.0, 0.4);
    // q(45 min, 5 years) = 3600 (1 + 0.76 lg 5) / 59^0.84 L/(s·ha), over 45 minutes.
    let q = 3600.0 * (1.0 + 0.76 * 5f64.log10()) / 59f64.powf(0.84);
    let want_mm = q / (10_000.0 / 60.0) * 45.0;
    assert!((d.total_mm() - want_mm).abs() < 1e-9 * want_mm);
    assert!(
        (depth_m * 1000.0 - want_mm).abs() < 1e-6 * want_mm,
        "{} mm vs {want_mm} mm",
        depth_m * 1000.0
    );
    assert_eq!(run.kpi("rain.intensity", "city"), Some(0.0), "dry after");
}

#[test]
fn a_recorded_series_rains_what_it_records_at_its_gauge() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rain.csv");
    std::fs::write(&csv, "time_s,intensity_mm_h\n0,10\n600,40\n900,0\n").unwrap();
    let mut run = storm(&format!(
        "{{ series = \"{}\", gauge = \"HF-RG1\", start_s = 60.0 }}",
        csv.display()
    ))
    .unwrap();
    run.steps(60 + 1200);
    // 10 mm/h for 600 s + 40 mm/h for 300 s = 1.667 + 3.333 = 5 mm.
    let d = run.kpi("rain.depth", "HF-RG1").unwrap();
    assert!((d - 5e-3).abs() < 1e-9, "{d}");
    assert_eq!(run.kpi("rain.depth", "city"), None, "the gauge only");
}

#[test]
fn bad_parameters_are_named() {
    let e = storm(&format!("{{ formula = {HEFEI}, duration_min = 60.0 }}"))
        .err()
        .unwrap();
    assert!(e.contains("return_period_years"), "{e}");
    let e = storm("{ formula = { a = 10.0, c = 0.7, b = 10.0, n = 0.8, unit = \"in/h\" }, return_period_years = 2.0, duration_min = 60.0 }")
        .err()
        .unwrap();
    assert!(e.contains("`formula.unit`") && e.contains("in/h"), "{e}");
    let e = storm(&format!(
        "{{ formula = {HEFEI}, return_period_years = 2.0, duration_min = 60.0, gauge = \"XX\" }}"
    ))
    .err()
    .unwrap();
    assert!(e.contains("`gauge`") && e.contains("'XX'"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rain.csv");
    std::fs::write(&csv, "time_s,intensity_mm_h\n0,10\n600,lots\n").unwrap();
    let e = storm(&format!("{{ series = \"{}\" }}", csv.display()))
        .err()
        .unwrap();
    assert!(e.contains("rain.csv:3") && e.contains("'lots'"), "{e}");
}

#[test]
fn two_storms_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rain.csv");
    std::fs::write(&csv, "time_s,intensity_mm_h\n0,36\n100,0\n").unwrap();
    let one = format!("{{ series = \"{}\", name = \"a\" }}", csv.display());
    let two = format!(
        "{{ series = \"{}\", name = \"b\", start_s = 50.0 }}",
        csv.display()
    );
    let mut run = SampleRun::new(
        Rainstorm,
        &format!(
            "[[scenario]]\nplugin = \"rainstorm\"\nparams = {one}\n\n[[scenario]]\nplugin = \"rainstorm\"\nparams = {two}"
        ),
    )
    .unwrap();
    run.steps(200);
    // 36 mm/h = 0.01 mm/s, 100 s each: 2 mm together.
    let d = run.kpi("rain.depth", "city").unwrap();
    assert!((d - 2e-3).abs() < 1e-12, "{d}");
    // The same name twice is refused.
    let e = SampleRun::new(
        Rainstorm,
        &format!(
            "[[scenario]]\nplugin = \"rainstorm\"\nparams = {one}\n\n[[scenario]]\nplugin = \"rainstorm\"\nparams = {one}"
        ),
    )
    .err()
    .unwrap();
    assert!(e.contains("`name`") && e.contains("'a'"), "{e}");
}
