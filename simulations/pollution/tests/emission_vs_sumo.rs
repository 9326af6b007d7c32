//! Vehicle emissions against SUMO 1.28's own `emissionsDrivingCycle` on 117 (speed,
//! acceleration) points per class (`data/sample/pollution/sumo_hbefa3/`).

use std::path::PathBuf;

use citytwin_pollution::emission::{EmissionClass, Exhaust};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/sample/pollution/sumo_hbefa3")
}

#[test]
fn hbefa3_matches_sumo_on_every_point() {
    // The tool's columns: time;v;a;slope;CO;CO2;HC;PMx;NOx;fuel;electricity (mg/s).
    let cols = [
        (4, Exhaust::CO),
        (5, Exhaust::CO2),
        (6, Exhaust::HC),
        (7, Exhaust::PMx),
        (8, Exhaust::NOx),
        (9, Exhaust::Fuel),
    ];
    let mut checked = 0;
    for class in ["PC_G_EU4", "PC_D_EU4", "LDV_D_EU4", "HDV_D_EU4", "Bus"] {
        let c = EmissionClass::by_name(class).expect("a known class");
        let text = std::fs::read_to_string(dir().join(format!("{class}.csv"))).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<f64> = line.split(';').map(|x| x.trim().parse().unwrap()).collect();
            let (v, a) = (f[1], f[2]);
            for (k, ex) in cols {
                let sumo_mg_s = f[k];
                let ours_mg_s = c.rate_kg_s(ex, v, a) * 1e6;
                // SUMO prints six significant figures.
                let tol = 1e-5 * sumo_mg_s.abs() + 1e-6;
                assert!(
                    (ours_mg_s - sumo_mg_s).abs() <= tol,
                    "{class} {ex:?} at v {v} a {a}: ours {ours_mg_s} SUMO {sumo_mg_s}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 5 * 117 * 6);
}
