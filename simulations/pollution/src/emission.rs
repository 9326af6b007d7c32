//! Vehicle exhaust emissions from speed and acceleration: SUMO's HBEFA3-based model.
//!
//! Krajzewicz et al., "Second generation of pollutant emission models for SUMO" (SUMO 2014),
//! fitted to the Handbook Emission Factors for Road Transport (HBEFA) 3.1: for each vehicle class
//! and pollutant, E = max((c₀ + c₁·a·v + c₂·a²·v + c₃·v + c₄·v² + c₅·v³)/3.6, 0) mg/s with `v` in
//! m/s and `a` in m/s² (the coefficients give g/h). The coefficients are SUMO's
//! (`src/utils/emissions/HelpersHBEFA3.cpp`). Like SUMO, a vehicle faster than 0.5 m/s that
//! decelerates harder than it would by rolling and air resistance alone is coasting with the
//! fuel cut off and emits nothing; the threshold for SUMO's default vehicle mass and front area
//! is a = −0.012975·v − 0.108 m/s² from 10 km/h up, proportionally less below (measured with
//! SUMO 1.28's `emissionsDrivingCycle`, which the tests compare with on 117 (v, a) points per
//! class: `data/sample/pollution/sumo_hbefa3/`).

use citytwin_engine::model::VehicleKind;

/// Pollutants the model gives.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exhaust {
    /// Carbon dioxide.
    CO2,
    /// Carbon monoxide.
    CO,
    /// Unburnt hydrocarbons.
    HC,
    /// Nitrogen oxides (as NO2 mass).
    NOx,
    /// Particulate matter (exhaust).
    PMx,
    /// Fuel burnt.
    Fuel,
}

impl Exhaust {
    /// All, in SUMO's output order.
    pub const ALL: [Exhaust; 6] = [
        Exhaust::CO2,
        Exhaust::CO,
        Exhaust::HC,
        Exhaust::NOx,
        Exhaust::PMx,
        Exhaust::Fuel,
    ];

    /// Parse SUMO's names (`CO2`, `CO`, `HC`, `NOx`, `PMx`, `fuel`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "CO2" => Some(Exhaust::CO2),
            "CO" => Some(Exhaust::CO),
            "HC" => Some(Exhaust::HC),
            "NOx" => Some(Exhaust::NOx),
            "PMx" => Some(Exhaust::PMx),
            "fuel" => Some(Exhaust::Fuel),
            _ => None,
        }
    }

    /// SUMO's name.
    pub fn as_str(self) -> &'static str {
        ["CO2", "CO", "HC", "NOx", "PMx", "fuel"][self as usize]
    }
}

/// An HBEFA3 vehicle class with its coefficients (g/h) per pollutant, in [`Exhaust::ALL`] order.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct EmissionClass {
    /// SUMO's name, e.g. `HBEFA3/PC_G_EU4`.
    pub name: &'static str,
    coef: [[f64; 6]; 6],
}

/// Passenger car, petrol, Euro 4 (SUMO's default class).
pub const PC_G_EU4: EmissionClass = EmissionClass {
    name: "HBEFA3/PC_G_EU4",
    coef: [
        [9449.0, 938.4, 0.0, -467.1, 28.26, 0.0],
        [593.2, 19.32, 0.0, -73.25, 2.086, 0.0],
        [2.923, 0.1113, 0.0, -0.3476, 0.01032, 0.0],
        [4.336, 0.4428, 0.0, -0.3204, 0.01371, 0.0],
        [0.2375, 0.0245, 0.0, -0.03251, 0.001325, 0.0],
        [3014.0, 299.3, 0.0, -149.0, 9.014, 0.0],
    ],
};

/// Passenger car, diesel, Euro 4.
pub const PC_D_EU4: EmissionClass = EmissionClass {
    name: "HBEFA3/PC_D_EU4",
    coef: [
        [6824.0, 742.3, 0.0, -195.3, 16.46, 0.0],
        [2.105, 0.02898, 0.0, -0.03593, 0.0, 0.0],
        [0.1208, 0.01649, 0.0, 0.02261, 0.0, 0.0],
        [47.45, 4.011, 0.0, -4.061, 0.1619, 0.0],
        [0.0; 6],
        [2147.0, 233.5, 0.0, -61.45, 5.178, 0.0],
    ],
};

/// Light duty vehicle (van), diesel, Euro 4.
pub const LDV_D_EU4: EmissionClass = EmissionClass {
    name: "HBEFA3/LDV_D_EU4",
    coef: [
        [3682.0, 915.4, 0.0, 331.0, 0.0, 0.306],
        [1.724, 0.03099, 0.0, -0.02995, 0.0, 0.0],
        [0.03577, 0.01844, 0.0, 0.02506, 0.0, 0.0],
        [40.68, 6.272, 0.0, -3.613, 0.2148, 0.0],
        [0.0; 6],
        [1158.0, 288.0, 0.0, 104.1, 0.0, 0.09624],
    ],
};

/// Heavy duty vehicle, diesel, Euro 4.
pub const HDV_D_EU4: EmissionClass = EmissionClass {
    name: "HBEFA3/HDV_D_EU4",
    coef: [
        [2.429e4, 7180.0, 0.0, 1835.0, 0.0, 0.0],
        [50.68, 6.655, 0.0, 0.8349, 0.0, 0.0],
        [1.119, 0.1747, 0.0, 0.03217, 0.0, 0.0],
        [202.2, 42.34, 0.0, 8.858, 0.0, 0.0],
        [1.267, 0.131, 0.0, -0.006405, 0.0, 0.0],
        [7639.0, 2259.0, 0.0, 577.1, 0.0, 0.0],
    ],
};

/// Urban bus (fleet average).
pub const BUS: EmissionClass = EmissionClass {
    name: "HBEFA3/Bus",
    coef: [
        [1.903e4, 6475.0, 0.0, 2073.0, 0.0, 0.0],
        [72.61, 7.482, 0.0, 0.6348, 0.0, 0.0],
        [17.46, 0.8473, 0.0, 0.254, 0.0, 0.0],
        [218.7, 46.17, 0.0, 11.27, 0.0, 0.0],
        [7.222, 0.8024, 0.0, 0.1201, 0.0, 0.0],
        [6016.0, 2049.0, 0.0, 656.6, 0.0, 0.0],
    ],
};

impl EmissionClass {
    /// A class by SUMO's name (with or without the `HBEFA3/` prefix).
    pub fn by_name(s: &str) -> Option<Self> {
        let s = s.strip_prefix("HBEFA3/").unwrap_or(s);
        [PC_G_EU4, PC_D_EU4, LDV_D_EU4, HDV_D_EU4, BUS]
            .into_iter()
            .find(|c| c.name.strip_prefix("HBEFA3/") == Some(s))
    }

    /// The class citytwin assumes for a vehicle kind: petrol car, diesel lorry, bus; emergency
    /// vehicles as diesel vans.
    pub fn for_kind(k: VehicleKind) -> Self {
        match k {
            VehicleKind::Car => PC_G_EU4,
            VehicleKind::Bus => BUS,
            VehicleKind::Truck => HDV_D_EU4,
            VehicleKind::Emergency => LDV_D_EU4,
        }
    }

    /// Emission rate of `p`, kg/s, at speed `v_mps` and acceleration `a_mps2` on level road.
    pub fn rate_kg_s(&self, p: Exhaust, v_mps: f64, a_mps2: f64) -> f64 {
        if v_mps > 0.5 && a_mps2 < coasting_decel_mps2(v_mps) {
            return 0.0;
        }
        let f = &self.coef[p as usize];
        let (v, a) = (v_mps, a_mps2);
        let g_per_h =
            f[0] + f[1] * a * v + f[2] * a * a * v + f[3] * v + f[4] * v * v + f[5] * v * v * v;
        // g/h → mg/s is /3.6; mg/s → kg/s is 1e-6.
        (g_per_h / 3.6).max(0.0) * 1e-6
    }
}

/// The deceleration below which a moving vehicle coasts with the fuel cut off, m/s² (SUMO's
/// default vehicle on level road).
pub fn coasting_decel_mps2(v_mps: f64) -> f64 {
    const V0: f64 = 10.0 / 3.6;
    let at = |v: f64| -0.012975 * v - 0.108;
    if v_mps < V0 {
        v_mps / V0 * at(V0)
    } else {
        at(v_mps)
    }
}
