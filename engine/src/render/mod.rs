//! The 3D views (cargo feature `render`): the city, its traffic, water and air drawn with
//! Bevy's renderer, in a window ([`run_window`]) or into images with no window and no GPU
//! ([`render_frames`], Mesa's software Vulkan is enough).
//!
//! A view is a Bevy app of its own beside the simulation's headless world: it steps the
//! simulation (or makes a recorded run again, which is deterministic), reads the city from it
//! ([`city`]), builds meshes on the CPU ([`meshes`]: terrain, buildings merged into one mesh,
//! road ribbons, the water surface, H3 maps) and keeps its entities in step ([`app`]). The
//! simulation never sees the view.
//!
//! Large coordinates: the model keeps `f64` metres in the scene frame; the view places
//! everything relative to the city's centre in `f32`, which keeps millimetres up to ~100 km
//! from it — a scene frame is local to its city, so no floating origin is needed beyond that.

pub mod app;
pub mod camera;
pub mod city;
pub mod headless;
pub mod meshes;
pub mod window;

pub use app::{BuildingColour, Layers};
pub use camera::CameraSpec;
pub use headless::{Frame, FrameSink, RenderRequest, render_each, render_frames};
pub use window::{Rebuild, WindowOptions, run_window};

/// Why a view could not be shown or rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The request does not make sense (size, times).
    #[error("{0}")]
    Request(String),
    /// The renderer could not start or stopped (no Vulkan adapter, a driver error).
    #[error(
        "the renderer failed: {0} (citytwin renders with Vulkan: without a GPU install Mesa's software driver, Debian's mesa-vulkan-drivers)"
    )]
    Renderer(String),
    /// A rendered frame could not be taken (written out).
    #[error("{0}")]
    Output(String),
}
