//! The interactive view: a window with the city in 3D, an orbit camera, picking, and a panel
//! (egui) to play, pause, change speed, move in time, switch layers and watch KPIs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll, MouseScrollUnit};
use bevy::math::DVec2;
use bevy::prelude::*;
use bevy::render::RenderPlugin;
use bevy::render::settings::{Backends, RenderCreation, WgpuSettings};
use bevy::window::PrimaryWindow;
use bevy_egui::{EguiContexts, EguiPlugin, EguiPrimaryContextPass, egui};

use super::RenderError;
use super::app::{BuildingColour, CityViewPlugin, Layers, Playback, ViewCity};
use super::camera::{CameraSpec, camera_for};
use super::city::{CityStatic, describe};
use crate::geo_frame::GeoFrame;
use crate::index::SpatialIndex;
use crate::recorder::Kpis;
use crate::sim::Sim;

/// Makes the simulation again at or before a moment, s after the start (for moving back in
/// time: runs are deterministic, so made again from the scene, or from a recorded run's
/// checkpoint before that moment, and stepped there, it shows that moment exactly).
pub type Rebuild = Box<dyn Fn(f64) -> Result<Sim, String>>;

/// How the window starts.
pub struct WindowOptions {
    /// Where the camera starts.
    pub camera: CameraSpec,
    /// What is drawn.
    pub layers: Layers,
    /// The moment the window opens at, s after the start (the simulation runs there first).
    pub start_s: f64,
    /// Start playing at once.
    pub play: bool,
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Making the simulation again, to move back in time; none: only forward.
    pub rebuild: Option<Rebuild>,
    /// Close the window after this many frames (scripted checks and demos); none: when the
    /// user closes it.
    pub quit_after_frames: Option<u32>,
    /// Write a screenshot of the window here just before closing it (with
    /// `quit_after_frames`).
    pub screenshot: Option<std::path::PathBuf>,
}

/// The KPIs the panel charts (the first of each row the run has).
const CHARTS: [&[&str]; 3] = [
    &["traffic.travel_time_index", "traffic.mean_speed_mps"],
    &["flood.flooded_area", "flood.volume"],
    &[
        "pollution.NO2.max",
        "pollution.PM2.5.max",
        "pollution.SO2.max",
    ],
];

#[derive(Resource, Default)]
struct Panel {
    picked: Option<(Entity, Vec<(String, String)>)>,
    history: BTreeMap<String, Vec<(f64, f64)>>,
    last_sample_s: f64,
    name: String,
    stepping_ms: f64,
}

/// The orbit camera: it turns about `focus`.
#[derive(Component)]
struct Orbit {
    focus: Vec3,
    yaw: f32,
    pitch: f32,
    distance: f32,
    dragged_px: f32,
}

struct RebuildBox(Option<Rebuild>);

/// Open a window on `sim` and run until it is closed.
pub fn run_window(sim: Sim, name: &str, opts: WindowOptions) -> Result<(), RenderError> {
    let mut sim = sim;
    let duration = sim.clock().duration_s();
    if !(opts.start_s.is_finite() && opts.start_s >= 0.0 && opts.start_s <= duration + 1e-9) {
        return Err(RenderError::Request(format!(
            "the start {} s is not within the scene (0 to {duration} s)",
            opts.start_s
        )));
    }
    let city = CityStatic::from_world(sim.world_mut(), name);
    let frame: GeoFrame = sim.world().resource::<GeoFrame>().clone();
    let origin = city.centre_m();
    let (transform, _) = camera_for(opts.camera, &city, origin, 16.0 / 9.0);
    let focus = Vec3::from(super::meshes::to_view(
        origin,
        city.centre_m(),
        city.ground_at(city.centre_m()) as f64,
    ));
    let offset = transform.translation - focus;
    let distance = offset.length().max(10.0);
    let orbit = Orbit {
        focus,
        yaw: offset.x.atan2(offset.z),
        pitch: (offset.y / distance)
            .clamp(-1.0, 1.0)
            .asin()
            .clamp(0.05, 1.55),
        distance,
        dragged_px: 0.0,
    };
    let mut playback = Playback::new(sim);
    playback.step_to(opts.start_s);
    playback.playing = opts.play;
    playback.speed = opts.speed;
    let mut app = App::new();
    app.add_plugins(
        DefaultPlugins
            .set(WindowPlugin {
                primary_window: Some(Window {
                    title: format!("citytwin — {name}"),
                    resolution: (1440, 900).into(),
                    ..default()
                }),
                ..default()
            })
            .set(RenderPlugin {
                render_creation: RenderCreation::Automatic(Box::new(WgpuSettings {
                    backends: Some(Backends::from_env().unwrap_or(Backends::VULKAN)),
                    ..default()
                })),
                ..default()
            })
            .set(bevy::log::LogPlugin {
                level: bevy::log::Level::WARN,
                filter: "wgpu=error,naga=warn".into(),
                ..default()
            }),
    )
    .add_plugins(EguiPlugin::default())
    .insert_resource(ViewCity {
        city,
        origin,
        frame,
    })
    .insert_resource(opts.layers)
    .insert_resource(Panel {
        name: name.to_string(),
        ..default()
    })
    .insert_non_send(playback)
    .insert_non_send(RebuildBox(opts.rebuild))
    .add_plugins(CityViewPlugin)
    .add_systems(
        Startup,
        move |mut commands: Commands,
              adapter: Option<Res<bevy::render::renderer::RenderAdapterInfo>>| {
            commands.spawn((
                Camera3d::default(),
                super::app::msaa_for(adapter.as_deref()),
                // Colours as drawn: a map, not a photograph.
                bevy::core_pipeline::tonemapping::Tonemapping::None,
                Transform::default(),
                orbit_clone(&orbit),
            ));
        },
    )
    .add_systems(Update, (advance, orbit_camera, pick, sample_kpis).chain())
    .add_systems(EguiPrimaryContextPass, panel);
    if let Some(n) = opts.quit_after_frames {
        let shot = opts.screenshot.clone();
        app.add_systems(
            Update,
            move |mut frames: Local<u32>,
                  mut commands: Commands,
                  mut exit: MessageWriter<AppExit>| {
                *frames += 1;
                if *frames == n
                    && let Some(path) = &shot
                {
                    commands
                        .spawn(bevy::render::view::screenshot::Screenshot::primary_window())
                        .observe(bevy::render::view::screenshot::save_to_disk(path.clone()));
                }
                // A few frames more for the screenshot to come back.
                if *frames >= n + 5 {
                    exit.write(AppExit::Success);
                }
            },
        );
    }
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || app.run()));
    match ran {
        Ok(AppExit::Success) => Ok(()),
        Ok(AppExit::Error(code)) => Err(RenderError::Renderer(format!(
            "the view ended with code {code}"
        ))),
        Err(p) => Err(RenderError::Renderer(
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the view stopped".into()),
        )),
    }
}

fn orbit_clone(o: &Orbit) -> Orbit {
    Orbit {
        focus: o.focus,
        yaw: o.yaw,
        pitch: o.pitch,
        distance: o.distance,
        dragged_px: 0.0,
    }
}

/// Play: step the simulation by what the speed asks for this frame, within a time budget so
/// the window stays responsive; or run ahead to a chosen moment.
fn advance(time: Res<Time>, mut playback: NonSendMut<Playback>, mut panel: ResMut<Panel>) {
    let budget = Duration::from_millis(40);
    let started = Instant::now();
    let step = playback.sim.clock().step_s();
    let target = if let Some(t) = playback.seek_s {
        t
    } else if playback.playing {
        let owed = time.delta_secs_f64() * playback.speed;
        playback.carry_add(owed);
        playback.sim.clock().elapsed_s() + playback.carry()
    } else {
        return;
    };
    let mut ran = 0.0;
    while playback.sim.clock().elapsed_s() + 1e-9 < target && !playback.sim.finished() {
        if started.elapsed() >= budget {
            break;
        }
        let t = playback.sim.clock().elapsed_s();
        playback.step_to((t + step).min(target));
        ran += step;
    }
    if playback.seek_s.is_none() {
        playback.carry_add(-ran);
        // Never fall more than a second of real time behind.
        let cap = playback.speed.max(step);
        let carry = playback.carry();
        if carry > cap {
            playback.carry_add(cap - carry);
        }
    } else if playback.sim.clock().elapsed_s() + 1e-9 >= target || playback.sim.finished() {
        playback.seek_s = None;
        playback.playing = false;
    }
    // Rasters for the view once a frame.
    playback
        .sim
        .world_mut()
        .resource_mut::<crate::recorder::Rasters>()
        .request();
    if playback.sim.finished() {
        playback.playing = false;
    }
    panel.stepping_ms = started.elapsed().as_secs_f64() * 1000.0;
}

/// Left drag turns, right or middle drag pans, the wheel zooms; not while the pointer is on
/// the panel.
fn orbit_camera(
    mut contexts: EguiContexts,
    buttons: Res<ButtonInput<MouseButton>>,
    motion: Res<AccumulatedMouseMotion>,
    scroll: Res<AccumulatedMouseScroll>,
    mut cam: Query<(&mut Orbit, &mut Transform)>,
) -> Result {
    let over_ui = contexts.ctx_mut()?.egui_wants_pointer_input();
    let Ok((mut o, mut t)) = cam.single_mut() else {
        return Ok(());
    };
    if !over_ui {
        let d = motion.delta;
        if buttons.pressed(MouseButton::Left) {
            o.yaw -= d.x * 0.005;
            o.pitch = (o.pitch + d.y * 0.005).clamp(0.05, 1.55);
            o.dragged_px += d.length();
        }
        if buttons.pressed(MouseButton::Right) || buttons.pressed(MouseButton::Middle) {
            let right = Vec3::new(o.yaw.cos(), 0.0, -o.yaw.sin());
            let forward = Vec3::new(-o.yaw.sin(), 0.0, -o.yaw.cos());
            let k = o.distance * 0.0015;
            o.focus += (-right * d.x + forward * d.y) * k;
        }
        let lines = match scroll.unit {
            MouseScrollUnit::Line => scroll.delta.y,
            MouseScrollUnit::Pixel => scroll.delta.y / 40.0,
        };
        if lines != 0.0 {
            o.distance = (o.distance * (1.0 - 0.12 * lines)).clamp(5.0, 200_000.0);
        }
    }
    if buttons.just_pressed(MouseButton::Left) {
        o.dragged_px = 0.0;
    }
    let eye = o.focus
        + o.distance
            * Vec3::new(
                o.pitch.cos() * o.yaw.sin(),
                o.pitch.sin(),
                o.pitch.cos() * o.yaw.cos(),
            );
    *t = Transform::from_translation(eye).looking_at(o.focus, Vec3::Y);
    Ok(())
}

/// A click (not a drag) picks what is under the pointer: the nearest feature within 30 m of
/// where the ray meets the ground.
fn pick(
    mut contexts: EguiContexts,
    buttons: Res<ButtonInput<MouseButton>>,
    window: Query<&Window, With<PrimaryWindow>>,
    cam: Query<(&Camera, &GlobalTransform, &Orbit)>,
    view: Res<ViewCity>,
    playback: NonSend<Playback>,
    mut panel: ResMut<Panel>,
) -> Result {
    if !buttons.just_released(MouseButton::Left) || contexts.ctx_mut()?.egui_wants_pointer_input() {
        return Ok(());
    }
    let (Ok(w), Ok((camera, gt, orbit))) = (window.single(), cam.single()) else {
        return Ok(());
    };
    if orbit.dragged_px > 4.0 {
        return Ok(());
    }
    let Some(cursor) = w.cursor_position() else {
        return Ok(());
    };
    let Ok(ray) = camera.viewport_to_world(gt, cursor) else {
        return Ok(());
    };
    let ground = orbit.focus.y;
    if ray.direction.y.abs() < 1e-4 {
        return Ok(());
    }
    let s = (ground - ray.origin.y) / ray.direction.y;
    if s < 0.0 {
        return Ok(());
    }
    let hit = ray.origin + ray.direction * s;
    let p = view.origin + DVec2::new(hit.x as f64, -hit.z as f64);
    let world = playback.sim.world();
    let near = world.resource::<SpatialIndex>().nearest(p, 1);
    panel.picked = near
        .first()
        .filter(|(_, d)| *d <= 30.0)
        .map(|(e, _)| (*e, describe(world, *e)));
    Ok(())
}

/// Keep the charted KPIs every simulated minute.
fn sample_kpis(playback: NonSend<Playback>, mut panel: ResMut<Panel>) {
    let t = playback.sim.clock().elapsed_s();
    if t >= panel.last_sample_s && t < panel.last_sample_s + 60.0 {
        return;
    }
    if t < panel.last_sample_s {
        panel.history.clear();
    }
    panel.last_sample_s = t;
    let kpis = playback.sim.world().resource::<Kpis>();
    for row in CHARTS {
        if let Some((name, v)) = row
            .iter()
            .find_map(|n| kpis.get(n, "city").map(|v| (*n, v)))
        {
            panel
                .history
                .entry(name.to_string())
                .or_default()
                .push((t, v));
        }
    }
}

/// The panel: the clock, play controls, time, layers, charts, the picked feature.
fn panel(
    mut contexts: EguiContexts,
    mut playback: NonSendMut<Playback>,
    mut rebuild: NonSendMut<RebuildBox>,
    mut layers: ResMut<Layers>,
    mut panel: ResMut<Panel>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    let clock = playback.sim.clock().clone();
    let now = clock.elapsed_s();
    let local = clock.start_local_s() + now;
    let mut back_to: Option<f64> = None;
    let fields: Vec<String> = playback
        .sim
        .world()
        .resource::<crate::recorder::FieldLog>()
        .versions()
        .into_keys()
        .filter(|k| k.starts_with("pollution."))
        .collect();
    egui::Window::new(panel.name.clone())
        .default_pos([12.0, 12.0])
        .default_width(300.0)
        .show(ctx, |ui| {
            ui.label(format!(
                "{:02}:{:02}:{:02}  ·  {:.0} s of {:.0} s",
                (local / 3600.0).floor() as i64 % 24,
                (local / 60.0).floor() as i64 % 60,
                local.floor() as i64 % 60,
                now,
                clock.duration_s()
            ));
            ui.horizontal(|ui| {
                let label = if playback.playing {
                    "⏸ pause"
                } else {
                    "▶ play"
                };
                if ui.button(label).clicked() {
                    playback.playing = !playback.playing;
                }
                if ui.button("step").clicked() {
                    let t = now + clock.step_s();
                    playback.step_to(t);
                }
                egui::ComboBox::from_id_salt("speed")
                    .selected_text(format!("{}× real time", playback.speed))
                    .show_ui(ui, |ui| {
                        for s in [1.0, 10.0, 60.0, 300.0, 1800.0] {
                            ui.selectable_value(&mut playback.speed, s, format!("{s}×"));
                        }
                    });
            });
            let mut t = now;
            let slider = ui.add(
                egui::Slider::new(&mut t, 0.0..=clock.duration_s())
                    .text("time (s)")
                    .step_by(clock.step_s()),
            );
            if slider.drag_stopped() || (slider.changed() && !slider.dragged()) {
                if t > now + 1e-9 {
                    playback.seek_s = Some(t);
                } else if t + 1e-9 < now {
                    back_to = Some(t);
                }
            }
            if rebuild.0.is_none() {
                ui.small("moving back in time needs the scene (view a scene or a recorded run)");
            }
            ui.small(format!("stepping: {:.0} ms a frame", panel.stepping_ms));
            ui.separator();
            ui.label("layers");
            ui.horizontal_wrapped(|ui| {
                ui.checkbox(&mut layers.terrain, "terrain");
                ui.checkbox(&mut layers.buildings, "buildings");
                ui.checkbox(&mut layers.roads, "roads");
                ui.checkbox(&mut layers.vehicles, "vehicles");
                ui.checkbox(&mut layers.signals, "signals");
                ui.checkbox(&mut layers.water, "water");
                ui.checkbox(&mut layers.air, "air");
                ui.checkbox(&mut layers.markers, "sensors");
            });
            egui::ComboBox::from_label("buildings by")
                .selected_text(match layers.building_colour {
                    BuildingColour::Use => "use",
                    BuildingColour::FloodDepth => "water at the door",
                    BuildingColour::Exposure => "air at the door",
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut layers.building_colour, BuildingColour::Use, "use");
                    ui.selectable_value(
                        &mut layers.building_colour,
                        BuildingColour::FloodDepth,
                        "water at the door",
                    );
                    ui.selectable_value(
                        &mut layers.building_colour,
                        BuildingColour::Exposure,
                        "air at the door",
                    );
                });
            if !fields.is_empty() {
                let current = layers
                    .air_field
                    .clone()
                    .unwrap_or_else(|| fields[0].clone());
                egui::ComboBox::from_label("air map")
                    .selected_text(current.clone())
                    .show_ui(ui, |ui| {
                        for f in &fields {
                            if ui.selectable_label(*f == current, f).clicked() {
                                layers.air_field = Some(f.clone());
                            }
                        }
                    });
            }
            ui.separator();
            for (name, series) in &panel.history {
                chart(ui, name, series, clock.duration_s());
            }
            if let Some((_, rows)) = &panel.picked {
                ui.separator();
                egui::Grid::new("picked").num_columns(2).show(ui, |ui| {
                    for (k, v) in rows {
                        ui.label(k);
                        ui.label(v);
                        ui.end_row();
                    }
                });
            }
        });
    if let Some(t) = back_to
        && let Some(make) = &rebuild.0
    {
        match make(t) {
            Ok(sim) => {
                playback.sim = sim;
                playback.seek_s = Some(t);
                panel.picked = None;
            }
            Err(e) => {
                rebuild.0 = None;
                eprintln!("cannot make the run again: {e}");
            }
        }
    }
    Ok(())
}

/// A small line chart of a KPI over the run.
fn chart(ui: &mut egui::Ui, name: &str, series: &[(f64, f64)], duration_s: f64) {
    let last = series.last().map_or(f64::NAN, |p| p.1);
    ui.label(format!("{name}: {}", crate_fmt(last)));
    let (resp, painter) = ui.allocate_painter(egui::vec2(280.0, 60.0), egui::Sense::hover());
    let r = resp.rect;
    painter.rect_stroke(
        r,
        2.0,
        egui::Stroke::new(1.0, egui::Color32::from_gray(120)),
        egui::StrokeKind::Inside,
    );
    let (lo, hi) = series
        .iter()
        .filter(|p| p.1.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    if !(lo.is_finite() && hi.is_finite()) || series.len() < 2 {
        return;
    }
    let span = if hi > lo { hi - lo } else { 1.0 };
    let pts: Vec<egui::Pos2> = series
        .iter()
        .filter(|p| p.1.is_finite())
        .map(|&(t, v)| {
            egui::pos2(
                r.left() + (t / duration_s.max(1.0)) as f32 * r.width(),
                r.bottom() - ((v - lo) / span) as f32 * (r.height() - 4.0) - 2.0,
            )
        })
        .collect();
    painter.add(egui::Shape::line(
        pts,
        egui::Stroke::new(1.5, egui::Color32::from_rgb(40, 110, 200)),
    ));
}

fn crate_fmt(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 0.01 {
        format!("{v:.3}")
    } else {
        format!("{v:.3e}")
    }
}
