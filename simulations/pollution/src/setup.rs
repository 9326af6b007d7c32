//! Building the pollution simulation from a scene: parameters checked, the weather read, the
//! modelled area and grid laid out, tracing inputs read and checked.

use std::collections::BTreeMap;

use bevy::prelude::*;
use citytwin_engine::modules::check_positive;
use citytwin_engine::prelude::*;
use citytwin_engine::scene::SceneFiles;
use geo::{Area, BoundingRect, Centroid};

use crate::grid::{Boundary, EulerGrid, GridSpec};
use crate::puff::{PuffCloud, SourceGeometry};
use crate::sigma::Curves;
use crate::weather::{Stability, StabilitySpec, Terrain, Weather, WeatherRecord, WeatherSeries};
use crate::{
    Balance, PointModel, PollutionParams, PollutionSim, WeatherParams, emission, plume,
    read_readings,
};

pub(crate) fn setup(p: PollutionParams, app: &mut App) -> Result<PollutionSim, String> {
    let terrain = match p.terrain.as_str() {
        "urban" => Terrain::Urban,
        "rural" => Terrain::Rural,
        t => return Err(format!("`terrain`: '{t}' is not `urban` or `rural`")),
    };
    let curves = match &p.curves {
        None => Curves::briggs(terrain),
        Some(c) => Curves::parse(c).ok_or_else(|| {
            format!("`curves`: '{c}' is not `briggs_urban`, `briggs_rural` or `pasquill_gifford`")
        })?,
    };
    let point_model = match p.point_model.as_str() {
        "plume" => Some(PointModel::Plume),
        "puff" => Some(PointModel::Puff),
        "auto" => None,
        m => {
            return Err(format!(
                "`point_model`: '{m}' is not `plume`, `puff` or `auto`"
            ));
        }
    };
    check_positive("puff_interval_s", p.puff_interval_s)?;
    check_positive("grid_cell_m", p.grid_cell_m)?;
    check_positive("grid_first_layer_m", p.grid_first_layer_m)?;
    check_positive("map_interval_s", p.map_interval_s)?;
    check_positive("receptor_interval_s", p.receptor_interval_s)?;
    if !(p.receptor_height_m.is_finite() && p.receptor_height_m >= 0.0) {
        return Err("`receptor_height_m` must be zero or positive".into());
    }
    if !(1..=40).contains(&p.grid_layers) {
        return Err(format!(
            "`grid_layers`: {} is not between 1 and 40",
            p.grid_layers
        ));
    }
    if !(p.grid_margin_m.is_finite() && p.grid_margin_m >= 0.0) {
        return Err("`grid_margin_m` must be zero or positive".into());
    }
    for (k, v) in &p.dose_limits_mg_min_m3 {
        check_positive(&format!("dose_limits_mg_min_m3.{k}"), *v)?;
    }
    for (k, v) in &p.thresholds_ug_m3 {
        check_positive(&format!("thresholds_ug_m3.{k}"), *v)?;
    }
    let files = app
        .world()
        .get_resource::<SceneFiles>()
        .cloned()
        .ok_or("the pollution simulation needs a scene (no SceneFiles resource)")?;
    let world = app.world();
    let frame = world.resource::<GeoFrame>().clone();
    let clock = world.resource::<SimClock>().clone();
    let origin = frame.origin();
    let start_unix_s = clock.start().timestamp().as_millisecond() as f64 / 1000.0;
    let weather = weather_series(&p.weather, &files, origin, start_unix_s)?;

    // The modelled area: every feature of the scene, plus a margin.
    let mut bbox = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    let mut grow = |x: f64, y: f64| {
        bbox[0] = bbox[0].min(x);
        bbox[1] = bbox[1].min(y);
        bbox[2] = bbox[2].max(x);
        bbox[3] = bbox[3].max(y);
    };
    {
        let world = app.world_mut();
        let mut q = world.query::<(Option<&Position>, Option<&Shape>)>();
        for (pos, shape) in q.iter(world) {
            if let Some(s) = shape.and_then(|s| s.0.bounding_rect()) {
                grow(s.min().x, s.min().y);
                grow(s.max().x, s.max().y);
            } else if let Some(pos) = pos {
                grow(pos.xy_m.x, pos.xy_m.y);
            }
        }
    }
    if !bbox[0].is_finite() {
        bbox = [-500.0, -500.0, 500.0, 500.0];
    }
    let m = p.grid_margin_m;
    let cell = p.grid_cell_m;
    let nx = (((bbox[2] - bbox[0]) + 2.0 * m) / cell).ceil().max(1.0) as usize;
    let ny = (((bbox[3] - bbox[1]) + 2.0 * m) / cell).ceil().max(1.0) as usize;
    if nx * ny > 25_000_000 {
        return Err(format!(
            "the grid would have {nx} × {ny} cells; raise `grid_cell_m` ({cell} m)"
        ));
    }
    let w0 = weather.at(0.0);
    let spec = GridSpec {
        origin_m: [bbox[0] - m, bbox[1] - m],
        nx,
        ny,
        cell_m: cell,
        layer_tops_m: GridSpec::stretched_layers(
            p.grid_layers,
            p.grid_first_layer_m,
            w0.mixing_height_m
                .max(p.grid_first_layer_m * p.grid_layers as f64),
        ),
    };

    let mut species: Vec<String> = Vec::new();
    let idx = |name: &str, species: &mut Vec<String>| match species.iter().position(|s| s == name) {
        Some(i) => i,
        None => {
            species.push(name.to_string());
            species.len() - 1
        }
    };
    let mut traffic_map = Vec::new();
    let mut grid_species: Vec<usize> = Vec::new();
    if p.traffic {
        for (ex, sp) in &p.traffic_species {
            let e = emission::Exhaust::parse(ex).ok_or_else(|| {
                format!(
                    "`traffic_species.{ex}`: not an exhaust pollutant (CO2, CO, HC, NOx, PMx, fuel)"
                )
            })?;
            let s = idx(sp, &mut species);
            if !grid_species.contains(&s) {
                grid_species.push(s);
            }
            traffic_map.push((e, s));
        }
    }
    let index = world_index(app);
    let map_h3: Vec<u64> = (0..ny)
        .flat_map(|j| (0..nx).map(move |i| (i, j)))
        .map(|(i, j)| {
            let c = spec.centre(i, j);
            index
                .cell_at(bevy::math::DVec2::new(c[0], c[1]))
                .map(u64::from)
                .unwrap_or(0)
        })
        .collect();

    let mut extra_candidates = Vec::new();
    let (mut report_path, mut file_readings) = (None, None);
    if let Some(t) = &p.tracing {
        if t.readings != "run" && t.readings != crate::systems::FEED_READINGS {
            let path = files.resolve(std::path::Path::new(&t.readings));
            let world = app.world_mut();
            let mut q = world.query::<(&Sensor, &Position)>();
            let stations: BTreeMap<String, [f64; 2]> = q
                .iter(world)
                .map(|(s, p)| (s.station.clone(), [p.xy_m.x, p.xy_m.y]))
                .collect();
            let r = read_readings(&path, &stations, start_unix_s)
                .map_err(|e| format!("`tracing.readings`: {e}"))?;
            file_readings = Some((path, r));
        }
        report_path = t.report.as_ref().map(|r| files.resolve(r));
        if !(0.0..=1.0).contains(&t.noise_fraction) {
            return Err("`tracing.noise_fraction` must be between 0 and 1".into());
        }
        if !(t.absolute_error_ug_m3 >= 0.0 && t.relative_error >= 0.0) {
            return Err(
                "`tracing.absolute_error_ug_m3` and `relative_error` must not be negative".into(),
            );
        }
        for c in &t.candidates {
            let ll = LonLat::new(c.lon, c.lat);
            if !ll.is_valid() {
                return Err(format!(
                    "`tracing.candidates`: '{}' has an invalid position ({}, {})",
                    c.id, c.lon, c.lat
                ));
            }
            let xy = frame.to_local(ll);
            extra_candidates.push((c.id.clone(), [xy.x, xy.y], c.height_m));
        }
        idx(&t.pollutant, &mut species);
    }
    let nspecies = grid_species.len();
    let balance = vec![Balance::default(); species.len()];
    Ok(PollutionSim {
        weather,
        terrain,
        curves,
        species,
        puffs: PuffCloud::new(curves, terrain),
        plumes: Vec::new(),
        grid: EulerGrid::new(spec, nspecies, Boundary::Open),
        grid_species,
        balance,
        readings: Vec::new(),
        params: p,
        point_model,
        sources: BTreeMap::new(),
        transport: None,
        traffic_map,
        map_h3,
        exceeded: BTreeMap::new(),
        station_sums: BTreeMap::new(),
        doses: BTreeMap::new(),
        dose_receptors: None,
        tracing_done: false,
        report_path,
        file_readings,
        extra_candidates,
    })
}

fn world_index(app: &App) -> SpatialIndex {
    let world = app.world();
    let frame = world.resource::<GeoFrame>().clone();
    let res = world.resource::<SpatialIndex>().resolution();
    SpatialIndex::new(frame, res)
}

fn weather_series(
    w: &WeatherParams,
    files: &SceneFiles,
    origin: LonLat,
    start_unix_s: f64,
) -> Result<WeatherSeries, String> {
    if let Some(f) = &w.file {
        if w.wind_speed_mps.is_some() || w.wind_from_deg.is_some() || w.stability.is_some() {
            return Err("`weather`: give either `file` or the values, not both".into());
        }
        return WeatherSeries::read_csv(
            &files.resolve(f),
            origin.lat,
            origin.lon,
            start_unix_s,
            w.mixing_height_m,
        )
        .map_err(|e| e.to_string());
    }
    let (Some(u), Some(dir)) = (w.wind_speed_mps, w.wind_from_deg) else {
        return Err("`weather`: give `file`, or `wind_speed_mps` and `wind_from_deg`".into());
    };
    let stability = match (&w.stability, w.cloud_oktas) {
        (Some(s), None) => StabilitySpec::Class(
            Stability::parse(s)
                .ok_or_else(|| format!("`weather.stability`: '{s}' is not a class A–F"))?,
        ),
        (None, Some(o)) if (0.0..=8.0).contains(&o) => StabilitySpec::CloudOktas(o),
        (None, Some(o)) => {
            return Err(format!("`weather.cloud_oktas`: {o} is not between 0 and 8"));
        }
        _ => {
            return Err(
                "`weather`: give `stability` (A–F) or `cloud_oktas` (0–8), one of them".into(),
            );
        }
    };
    let rec = WeatherRecord {
        from_s: f64::NEG_INFINITY,
        wind_speed_mps: u,
        wind_from_deg: dir,
        stability,
        mixing_height_m: w.mixing_height_m,
        air_temperature_k: w.air_temperature_k,
    };
    Weather {
        wind_speed_mps: u,
        wind_from_deg: dir,
        stability: Stability::D,
        mixing_height_m: w.mixing_height_m,
        air_temperature_k: w.air_temperature_k,
    }
    .validate()
    .map_err(|m| format!("`weather`: {m}"))?;
    Ok(WeatherSeries::new(
        vec![rec],
        origin.lat,
        origin.lon,
        start_unix_s,
    ))
}

/// The geometry of an emission source entity for the dispersion models.
pub(crate) fn source_geom(
    src: &EmissionSource,
    pos: Option<&Position>,
    shape: Option<&Shape>,
) -> Option<SourceGeometry> {
    match src.kind {
        EmissionKind::Stack {
            height_m,
            diameter_m,
            exit_velocity_mps,
            exit_temperature_k,
        } => pos.map(|p| SourceGeometry {
            xy_m: [p.xy_m.x, p.xy_m.y],
            height_m,
            exit: plume::StackExit {
                diameter_m,
                velocity_mps: exit_velocity_mps,
                temperature_k: exit_temperature_k,
            },
            sigma0_m: [0.0, 0.0],
        }),
        EmissionKind::Area { height_m: h } => {
            if let Some(s) = shape {
                let c = s.0.centroid()?;
                // ISC's virtual point source: an area of side L starts σy = L/4.3 wide.
                let side = s.0.unsigned_area().sqrt();
                Some(SourceGeometry {
                    xy_m: [c.x(), c.y()],
                    height_m: h,
                    exit: plume::StackExit::default(),
                    sigma0_m: [side / 4.3, 1.0],
                })
            } else {
                pos.map(|p| SourceGeometry {
                    xy_m: [p.xy_m.x, p.xy_m.y],
                    height_m: h,
                    exit: plume::StackExit::default(),
                    sigma0_m: [1.0, 1.0],
                })
            }
        }
    }
}
