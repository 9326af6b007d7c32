//! The README's pictures of the coupled city (`scenes/sample_rainstorm.toml`): a map of the
//! district at one moment — water depth, the roads the water and the chlorine zone have
//! closed, the zone, the buildings ordered out, the vehicles — and charts over the hour,
//! against the same scene with its couplings off.
//!
//! ```text
//! cargo run --release --example coupled_city -- [OUT_DIR] [MAP_AT_S]
//! ```
//!
//! writes `coupled_city_map.png`, `coupled_city_roads.png` and `coupled_city_traffic.png` into
//! `OUT_DIR` (default `assets/readme`); the map shows the moment `MAP_AT_S` seconds after the
//! start (default 2100, 08:05: the zone has spread west along the southern streets and the
//! bowl by the plant is deep).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use bevy::ecs::message::{MessageCursor, Messages};
use bevy::prelude::*;
use citytwin::charts::LineChart;
use citytwin_engine::prelude::*;
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::{Sim, SimOptions};
use citytwin_flood::FloodSim;
use h3o::CellIndex;

/// The district at one moment, as the map draws it.
struct Moment {
    t_s: f64,
    /// Grid origin (m), cell size (m), columns, and water depth per cell (m).
    origin: (f64, f64),
    dx_m: f64,
    nx: usize,
    depth_m: Vec<f32>,
    /// Road lines and who holds each closed.
    roads: Vec<(Vec<(f64, f64)>, Option<String>)>,
    buildings: Vec<(Vec<(f64, f64)>, bool)>,
    zone: Vec<Vec<(f64, f64)>>,
    vehicles: Vec<(f64, f64)>,
}

/// KPIs every minute: (minute, value) per name.
type Series = BTreeMap<String, Vec<(f64, f64)>>;

fn build(dir: &std::path::Path, coupled: bool) -> Result<Sim> {
    let path = common::scene_copy_of(dir, "sample_rainstorm", |t| {
        if coupled { t } else { common::uncoupled(t) }
    });
    let scene = Scene::load(&path)?;
    Sim::build(&scene, &citytwin::registry(), SimOptions::default()).map_err(|e| anyhow!("{e}"))
}

fn line_of(s: &Shape) -> Vec<(f64, f64)> {
    use geo::CoordsIter;
    s.0.coords_iter().map(|c| (c.x, c.y)).collect()
}

/// Run a scene to its end, keeping KPIs every minute and (if asked) the moment `map_at_s`.
fn run(coupled: bool, map_at_s: Option<f64>) -> Result<(Series, Option<Moment>)> {
    let dir = tempfile::tempdir()?;
    let mut sim = build(dir.path(), coupled)?;
    let mut cursor: MessageCursor<RoadCommand> =
        sim.world().resource::<Messages<RoadCommand>>().get_cursor();
    let mut closed: BTreeMap<FeatureId, String> = BTreeMap::new();
    let mut series = Series::new();
    let mut moment = None;
    while !sim.finished() {
        sim.step();
        for c in cursor.read(sim.world().resource::<Messages<RoadCommand>>()) {
            match c {
                RoadCommand::Close { road, by } => {
                    closed.insert(road.clone(), by.clone());
                }
                RoadCommand::Open { road, by } if closed.get(road) == Some(by) => {
                    closed.remove(road);
                }
                _ => {}
            }
        }
        let t = sim.world().resource::<SimClock>().elapsed_s();
        if (t as u64).is_multiple_of(60) {
            let kpis = sim.world().resource::<Kpis>();
            for (name, scope) in [
                ("flood.roads_closed", "city"),
                ("leak.roads_closed", "tank-leak"),
                ("traffic.arrived", "city"),
            ] {
                series
                    .entry(name.to_string())
                    .or_default()
                    .push((t / 60.0, kpis.get(name, scope).unwrap_or(0.0)));
            }
        }
        if map_at_s.is_some_and(|m| (t - m).abs() < 0.5) {
            moment = Some(capture(&mut sim, t, &closed));
        }
    }
    Ok((series, moment))
}

fn capture(sim: &mut Sim, t_s: f64, closed: &BTreeMap<FeatureId, String>) -> Moment {
    let world = sim.world_mut();
    let mut q = world.query_filtered::<(&FeatureId, &Shape), With<Road>>();
    let roads = q
        .iter(world)
        .filter(|(f, _)| f.layer == "traffic")
        .map(|(f, s)| (line_of(s), closed.get(f).cloned()))
        .collect();
    let mut q = world.query::<(&Shape, Option<&EvacuationOrder>, &Building)>();
    let buildings = q
        .iter(world)
        .map(|(s, o, _)| (line_of(s), o.is_some()))
        .collect();
    let mut q = world.query_filtered::<&Position, With<Vehicle>>();
    let vehicles = q.iter(world).map(|p| (p.xy_m.x, p.xy_m.y)).collect();
    let frame = world.resource::<GeoFrame>().clone();
    let zone = world
        .resource::<FieldLog>()
        .latest("pollution.chlorine")
        .map(|(_, m)| {
            m.cells
                .iter()
                .filter(|(_, v)| *v >= 1450e-9)
                .filter_map(|&(h3, _)| CellIndex::try_from(h3).ok())
                .map(|c| {
                    use geo::CoordsIter;
                    frame
                        .cell_polygon(c)
                        .exterior_coords_iter()
                        .map(|p| (p.x, p.y))
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default();
    let flood = world.resource::<FloodSim>();
    Moment {
        t_s,
        origin: (flood.origin_m.x, flood.origin_m.y),
        dx_m: flood.surface.dx_m as f64,
        nx: flood.surface.nx,
        depth_m: flood.surface.h_m.clone(),
        roads,
        buildings,
        zone,
        vehicles,
    }
}

fn draw_map(m: &Moment) -> Result<Vec<u8>> {
    use plotters::prelude::*;
    citytwin::charts::register_font();
    let ny = m.depth_m.len() / m.nx;
    let (x0, y0) = m.origin;
    let (x1, y1) = (x0 + m.nx as f64 * m.dx_m, y0 + ny as f64 * m.dx_m);
    let (w, h) = (900u32, (900.0 * (y1 - y0) / (x1 - x0)) as u32 + 60);
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| anyhow!("drawing the map: {e}");
        root.fill(&WHITE).map_err(|e| err(&e))?;
        // The scene starts at 07:30 local time.
        let clock_min = 7 * 60 + 30 + (m.t_s / 60.0) as u32;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "The coupled city at {:02}:{:02}: rainstorm, chlorine leak, rush hour",
                    clock_min / 60,
                    clock_min % 60
                ),
                ("sans-serif", 18),
            )
            .margin(8)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| err(&e))?;
        // Water, deeper is darker.
        let cells = m.depth_m.iter().enumerate().filter(|(_, d)| **d > 0.05);
        chart
            .draw_series(cells.map(|(c, &d)| {
                let (i, j) = ((c % m.nx) as f64, (c / m.nx) as f64);
                let a = (0.25 + d as f64 / 0.8).min(1.0);
                let colour = RGBColor(
                    (255.0 * (1.0 - a) + 20.0 * a) as u8,
                    (255.0 * (1.0 - a) + 90.0 * a) as u8,
                    (255.0 * (1.0 - a) + 200.0 * a) as u8,
                );
                Rectangle::new(
                    [
                        (x0 + i * m.dx_m, y0 + j * m.dx_m),
                        (x0 + (i + 1.0) * m.dx_m, y0 + (j + 1.0) * m.dx_m),
                    ],
                    colour.filled(),
                )
            }))
            .map_err(|e| err(&e))?
            .label("water deeper than 5 cm (darker: deeper, to 0.8 m)")
            .legend(|(x, y)| {
                Rectangle::new(
                    [(x, y - 5), (x + 14, y + 5)],
                    RGBColor(60, 120, 210).filled(),
                )
            });
        // The chlorine zone.
        chart
            .draw_series(
                m.zone
                    .iter()
                    .map(|p| Polygon::new(p.clone(), RGBColor(230, 60, 40).mix(0.25).filled())),
            )
            .map_err(|e| err(&e))?
            .label("chlorine above AEGL-1 (H3 cells)")
            .legend(|(x, y)| {
                Rectangle::new(
                    [(x, y - 5), (x + 14, y + 5)],
                    RGBColor(230, 60, 40).mix(0.35).filled(),
                )
            });
        // Buildings, those ordered out in orange.
        for (ordered, label) in [(false, "building"), (true, "building ordered out")] {
            let colour = if ordered {
                RGBColor(245, 150, 30)
            } else {
                RGBColor(150, 150, 150)
            };
            chart
                .draw_series(
                    m.buildings
                        .iter()
                        .filter(|b| b.1 == ordered)
                        .map(|b| Polygon::new(b.0.clone(), colour.filled())),
                )
                .map_err(|e| err(&e))?
                .label(label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.filled())
                });
        }
        // Roads: open, closed by the water, closed by the zone.
        for (who, colour, width, label) in [
            (None, RGBColor(110, 110, 110), 1, "road"),
            (
                Some("flood"),
                RGBColor(0, 60, 200),
                4,
                "closed by the water",
            ),
            (
                Some("tank-leak"),
                RGBColor(200, 0, 0),
                4,
                "closed by the chlorine zone",
            ),
        ] {
            chart
                .draw_series(
                    m.roads
                        .iter()
                        .filter(|r| r.1.as_deref() == who)
                        .map(|r| PathElement::new(r.0.clone(), colour.stroke_width(width))),
                )
                .map_err(|e| err(&e))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], colour.stroke_width(3))
                });
        }
        chart
            .draw_series(
                m.vehicles
                    .iter()
                    .map(|&p| Circle::new(p, 2, BLACK.filled())),
            )
            .map_err(|e| err(&e))?
            .label("vehicle")
            .legend(|(x, y)| Circle::new((x + 7, y), 2, BLACK.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(citytwin::charts::encode_png(w, h, &rgb))
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "assets/readme".into()));
    let map_at_s: f64 = match args.next() {
        Some(a) => a.parse().context("MAP_AT_S: seconds after the start")?,
        None => 2100.0,
    };
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    eprintln!("running the coupled scene…");
    let (on, moment) = run(true, Some(map_at_s))?;
    eprintln!("running it with the couplings off…");
    let (off, _) = run(false, None)?;
    let moment = moment.ok_or_else(|| anyhow!("the run never reached {map_at_s} s"))?;
    let write = |name: &str, png: Vec<u8>| -> Result<()> {
        let p = out.join(name);
        std::fs::write(&p, png).with_context(|| format!("cannot write {}", p.display()))?;
        println!("{}", p.display());
        Ok(())
    };
    write("coupled_city_map.png", draw_map(&moment)?)?;
    let s = |x: &Series, k: &str| x.get(k).cloned().unwrap_or_default();
    write(
        "coupled_city_roads.png",
        citytwin::charts::line_chart(&LineChart {
            title: "Roads closed, coupled city",
            x_desc: "minutes after 07:30",
            y_desc: "roads",
            lines: &[
                ("by the water", &s(&on, "flood.roads_closed")),
                ("by the chlorine zone", &s(&on, "leak.roads_closed")),
            ],
        })?,
    )?;
    write(
        "coupled_city_traffic.png",
        citytwin::charts::line_chart(&LineChart {
            title: "Trips completed, couplings on and off",
            x_desc: "minutes after 07:30",
            y_desc: "trips",
            lines: &[
                ("coupled", &s(&on, "traffic.arrived")),
                ("uncoupled", &s(&off, "traffic.arrived")),
            ],
        })?,
    )?;
    Ok(())
}
