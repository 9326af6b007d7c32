//! Rendering without a window (and without a GPU: Mesa's software Vulkan will do): the view
//! draws into an image, which is read back at the moments asked for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bevy::app::ScheduleRunnerPlugin;
use bevy::camera::RenderTarget;
use bevy::prelude::*;
use bevy::render::RenderPlugin;
use bevy::render::render_resource::{PipelineCache, TextureFormat};
use bevy::render::settings::{Backends, RenderCreation, WgpuSettings};
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};
use bevy::render::{Render, RenderApp, RenderSystems};
use bevy::window::ExitCondition;

use super::RenderError;
use super::app::{CityViewPlugin, Layers, Playback, ViewCity, msaa_for};
use super::camera::{CameraSpec, camera_for};
use super::city::CityStatic;
use crate::geo_frame::GeoFrame;
use crate::sim::Sim;

/// What to render.
#[derive(Clone, Debug)]
pub struct RenderRequest {
    /// The first frame's moment, s after the scene start.
    pub at_s: f64,
    /// How many frames.
    pub frames: usize,
    /// Simulated seconds between frames.
    pub every_s: f64,
    /// Where the camera is.
    pub camera: CameraSpec,
    /// Image size, pixels.
    pub size: (u32, u32),
    /// What is drawn.
    pub layers: Layers,
    /// Let Bevy and wgpu log (warnings and errors) to the terminal. Only one app per process
    /// may set up logging, so tests that render several times leave it off.
    pub logs: bool,
}

impl Default for RenderRequest {
    fn default() -> Self {
        Self {
            at_s: 0.0,
            frames: 1,
            every_s: 60.0,
            camera: CameraSpec::Overview,
            size: (1280, 720),
            layers: Layers::default(),
            logs: false,
        }
    }
}

/// One rendered moment.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Simulated time, s after the start.
    pub t_s: f64,
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Pixels, RGBA8 (sRGB), rows from the top.
    pub rgba: Vec<u8>,
}

impl Frame {
    /// The pixel at column `x`, row `y` (from the top): `[r, g, b, a]`.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 4] {
        let k = ((y * self.width + x) * 4) as usize;
        [
            self.rgba[k],
            self.rgba[k + 1],
            self.rgba[k + 2],
            self.rgba[k + 3],
        ]
    }
}

/// The most frames drawn before the first capture. The renderer loads some of its shaders in
/// the background, and a pipeline whose shader is not in yet skips its draws; the first
/// capture waits for a frame drawn with every pipeline ready (two or three frames here).
const MAX_WARM_UP_FRAMES: u32 = 600;

/// Set by the render world once a frame was drawn with no pipeline waiting.
#[derive(Resource, Clone, Default)]
struct PipelinesReady(Arc<AtomicBool>);

fn note_pipelines_ready(cache: Res<PipelineCache>, ready: Res<PipelinesReady>) {
    let ok = cache.pipelines().next().is_some() && cache.waiting_pipelines().next().is_none();
    ready.0.store(ok, Ordering::Release);
}

#[derive(Resource)]
struct Capture {
    target: Handle<Image>,
    times: Vec<f64>,
    next: usize,
    /// Frames drawn before the first capture, so far.
    warm_up: u32,
    in_flight: bool,
    sink: Arc<Mutex<FrameSink>>,
    /// Frames handed to the sink.
    done: Arc<Mutex<usize>>,
    /// Why the run stopped early: the renderer's trouble, or the sink's.
    error: Arc<Mutex<Option<RenderError>>>,
}

/// What takes each frame as it comes (writes it out, shows progress); an `Err` stops the
/// rendering with [`RenderError::Output`].
pub type FrameSink = Box<dyn FnMut(Frame) -> Result<(), String> + Send>;

/// Render `sim` as `req` asks: step it to each moment and capture the view; all frames in
/// memory (for a long sequence, [`render_each`] hands them over one by one).
pub fn render_frames(sim: Sim, name: &str, req: &RenderRequest) -> Result<Vec<Frame>, RenderError> {
    let frames = Arc::new(Mutex::new(Vec::with_capacity(req.frames)));
    let into = frames.clone();
    render_each(
        sim,
        name,
        req,
        Box::new(move |f| {
            into.lock().expect("not poisoned").push(f);
            Ok(())
        }),
    )?;
    let frames = std::mem::take(&mut *frames.lock().expect("not poisoned"));
    Ok(frames)
}

/// Render `sim` as `req` asks, handing each frame to `sink` as soon as it is read back.
/// Returns how many frames were rendered (all of them, or an error).
pub fn render_each(
    sim: Sim,
    name: &str,
    req: &RenderRequest,
    sink: FrameSink,
) -> Result<usize, RenderError> {
    if req.frames == 0 {
        return Ok(0);
    }
    let (w, h) = req.size;
    if !(16..=8192).contains(&w) || !(16..=8192).contains(&h) {
        return Err(RenderError::Request(format!(
            "size {w}×{h}: each side must be between 16 and 8192 pixels"
        )));
    }
    if !(req.at_s.is_finite() && req.at_s >= 0.0 && req.every_s.is_finite() && req.every_s > 0.0) {
        return Err(RenderError::Request(
            "the first moment must be 0 s or later and the interval positive".into(),
        ));
    }
    let mut sim = sim;
    let duration = sim.clock().duration_s();
    let times: Vec<f64> = (0..req.frames)
        .map(|k| req.at_s + k as f64 * req.every_s)
        .collect();
    if let Some(&t) = times.iter().find(|&&t| t > duration + 1e-9) {
        return Err(RenderError::Request(format!(
            "a frame at {t} s is past the scene's end ({duration} s)"
        )));
    }
    let city = CityStatic::from_world(sim.world_mut(), name);
    let frame: GeoFrame = sim.world().resource::<GeoFrame>().clone();
    let origin = city.centre_m();
    let (transform, projection) = camera_for(req.camera, &city, origin, w as f32 / h as f32);

    let mut app = App::new();
    let mut plugins = DefaultPlugins
        .set(WindowPlugin {
            primary_window: None,
            exit_condition: ExitCondition::DontExit,
            ..default()
        })
        .set(RenderPlugin {
            render_creation: RenderCreation::Automatic(Box::new(WgpuSettings {
                backends: Some(Backends::from_env().unwrap_or(Backends::VULKAN)),
                ..default()
            })),
            synchronous_pipeline_compilation: true,
            ..default()
        })
        .disable::<bevy::winit::WinitPlugin>();
    if !req.logs {
        plugins = plugins.disable::<bevy::log::LogPlugin>();
    } else {
        plugins = plugins.set(bevy::log::LogPlugin {
            level: bevy::log::Level::WARN,
            // Software rendering is what this path is for: no warning about it.
            filter: "wgpu=error,naga=warn,bevy_render::renderer=error".into(),
            ..default()
        });
    }
    let sink = Arc::new(Mutex::new(sink));
    let done = Arc::new(Mutex::new(0usize));
    app.add_plugins(plugins)
        .add_plugins(ScheduleRunnerPlugin::run_loop(Duration::ZERO))
        .insert_resource(ViewCity {
            city,
            origin,
            frame,
        })
        .insert_resource(req.layers.clone())
        .insert_non_send(Playback::new(sim))
        .add_plugins(CityViewPlugin);
    let (sink2, done2) = (sink.clone(), done.clone());
    let error = Arc::new(Mutex::new(None));
    let error2 = error.clone();
    let size = req.size;
    app.add_systems(
        Startup,
        move |mut commands: Commands,
              mut images: ResMut<Assets<Image>>,
              adapter: Option<Res<bevy::render::renderer::RenderAdapterInfo>>| {
            let target = images.add(Image::new_target_texture(
                size.0,
                size.1,
                TextureFormat::Rgba8UnormSrgb,
                None,
            ));
            commands.spawn((
                Camera3d::default(),
                // Colours as drawn: a map, not a photograph.
                bevy::core_pipeline::tonemapping::Tonemapping::None,
                RenderTarget::Image(target.clone().into()),
                msaa_for(adapter.as_deref()),
                transform,
                projection.clone(),
            ));
            commands.insert_resource(Capture {
                target,
                times: times.clone(),
                next: 0,
                warm_up: 0,
                in_flight: false,
                sink: sink2.clone(),
                done: done2.clone(),
                error: error2.clone(),
            });
        },
    );
    let ready = PipelinesReady::default();
    app.insert_resource(ready.clone());
    app.sub_app_mut(RenderApp)
        .insert_resource(ready)
        .add_systems(Render, note_pipelines_ready.in_set(RenderSystems::Cleanup));
    app.add_systems(Update, capture);
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || app.run()));
    if let Err(p) = ran {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the renderer stopped".into());
        return Err(RenderError::Renderer(msg));
    }
    if let Some(e) = error.lock().expect("not poisoned").take() {
        return Err(e);
    }
    let done = *done.lock().expect("not poisoned");
    if done != req.frames {
        return Err(RenderError::Renderer(format!(
            "{done} of {} frames came back",
            req.frames
        )));
    }
    Ok(done)
}

/// Step to each moment and capture the frame drawn right after (the view syncs in the same
/// frame); while a capture is read back the camera rests, so each image costs one drawn frame.
fn capture(
    mut commands: Commands,
    mut cap: ResMut<Capture>,
    mut playback: NonSendMut<Playback>,
    mut exit: MessageWriter<AppExit>,
    mut cameras: Query<&mut Camera>,
    ready: Res<PipelinesReady>,
) {
    let drawing = !cap.in_flight && cap.next < cap.times.len();
    for mut c in &mut cameras {
        if c.is_active != drawing {
            c.is_active = drawing;
        }
    }
    if cap.in_flight {
        return;
    }
    if cap.next >= cap.times.len() {
        exit.write(AppExit::Success);
        return;
    }
    let t = cap.times[cap.next];
    playback.step_to(t);
    if cap.next == 0 && !ready.0.load(Ordering::Acquire) {
        cap.warm_up += 1;
        if cap.warm_up > MAX_WARM_UP_FRAMES {
            *cap.error.lock().expect("not poisoned") = Some(RenderError::Renderer(format!(
                "the renderer's pipelines were not ready after {MAX_WARM_UP_FRAMES} frames"
            )));
            exit.write(AppExit::error());
        }
        return;
    }
    let t = playback.sim.clock().elapsed_s();
    let target = cap.target.clone();
    cap.in_flight = true;
    commands.spawn(Screenshot::image(target)).observe(
        move |ev: On<ScreenshotCaptured>,
              mut cap: ResMut<Capture>,
              mut exit: MessageWriter<AppExit>| {
            let img = &ev.image;
            let frame = Frame {
                t_s: t,
                width: img.width(),
                height: img.height(),
                rgba: img.data.clone().unwrap_or_default(),
            };
            let taken = (cap.sink.lock().expect("not poisoned"))(frame);
            match taken {
                Ok(()) => *cap.done.lock().expect("not poisoned") += 1,
                Err(e) => {
                    *cap.error.lock().expect("not poisoned") = Some(RenderError::Output(e));
                    exit.write(AppExit::error());
                    cap.next = cap.times.len();
                }
            }
            cap.in_flight = false;
            cap.next = (cap.next + 1).min(cap.times.len());
        },
    );
}
