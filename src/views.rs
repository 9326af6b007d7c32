//! `citytwin view` and `citytwin render`: the 3D views of a scene or of a recorded run.
//!
//! A recorded run is made again from the scene text and seed the store keeps, starting from its
//! last checkpoint before the moment shown (the engine is deterministic, so this shows exactly
//! what was recorded, given the same version of citytwin); moving back in time in the window
//! makes it again from the checkpoint before the earlier moment.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use citytwin::registry;
use citytwin_engine::render::{
    BuildingColour, CameraSpec, Frame, FrameSink, Layers, RenderRequest, WindowOptions,
    render_each, run_window,
};
use citytwin_engine::replay;
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::{Sim, SimOptions};
use citytwin_engine::store::RunStore;
use indicatif::{ProgressBar, ProgressStyle};

/// What to show: a scene file, or run N of a store.
pub enum Target {
    /// A scene file.
    Scene(PathBuf),
    /// A recorded run.
    Run {
        /// Its id.
        id: i64,
        /// The store holding it.
        store: PathBuf,
    },
}

impl Target {
    /// A number is a run of `store`; anything else a scene file.
    pub fn parse(s: &str, store: &Path) -> Self {
        match s.parse::<i64>() {
            Ok(id) if !Path::new(s).exists() => Self::Run {
                id,
                store: store.to_path_buf(),
            },
            _ => Self::Scene(PathBuf::from(s)),
        }
    }
}

/// A target's simulation at (or, for a scene, before) moment `at_s`, and its name. A run
/// starts from its last checkpoint before `at_s`, so at least one step is left to run there.
fn sim_of(target: &Target, at_s: f64) -> Result<(Sim, String)> {
    match target {
        Target::Scene(p) => {
            let scene = Scene::load(p)?;
            let name = scene.meta.name.clone();
            let sim = Sim::build(&scene, &registry(), SimOptions::default())?;
            Ok((sim, name))
        }
        Target::Run { id, store } => {
            if !store.is_file() {
                bail!(
                    "no run store at {} (run a scene first, or pass --store)",
                    store.display()
                );
            }
            let st = RunStore::open(store)?;
            let meta = st.run_meta(*id)?;
            if meta.version != citytwin_engine::VERSION {
                eprintln!(
                    "run {id} was made by citytwin {}; this is {}: it is made again with this version's models",
                    meta.version,
                    citytwin_engine::VERSION
                );
            }
            let tick = replay::tick_of(&st, *id, at_s)?;
            let sim = replay::sim_at(&st, &registry(), *id, tick, false, &mut |_, _| {})?;
            Ok((sim, format!("run {id}: {}", meta.scene_name)))
        }
    }
}

/// Layers and colouring from the command line.
pub fn layers(hide: &[String], buildings_by: &str, air: Option<String>) -> Result<Layers> {
    let mut l = Layers {
        air_field: air,
        ..Layers::default()
    };
    for h in hide {
        let flag = match h.as_str() {
            "terrain" => &mut l.terrain,
            "buildings" => &mut l.buildings,
            "roads" => &mut l.roads,
            "vehicles" => &mut l.vehicles,
            "signals" => &mut l.signals,
            "water" => &mut l.water,
            "air" => &mut l.air,
            "sensors" | "markers" => &mut l.markers,
            other => bail!(
                "--hide {other}: not a layer (terrain, buildings, roads, vehicles, signals, water, air, sensors)"
            ),
        };
        *flag = false;
    }
    l.building_colour = match buildings_by {
        "use" => BuildingColour::Use,
        "flood" | "water" => BuildingColour::FloodDepth,
        "air" | "exposure" => BuildingColour::Exposure,
        other => bail!("--buildings-by {other}: give use, flood or air"),
    };
    Ok(l)
}

/// `citytwin render`: frames of a moment (or a sequence) as PNG files.
#[allow(clippy::too_many_arguments)]
pub fn render(
    target: &Target,
    at_s: f64,
    frames: usize,
    every_s: f64,
    camera: &str,
    size: &str,
    layers: Layers,
    out: &Path,
) -> Result<Vec<PathBuf>> {
    let camera = CameraSpec::parse(camera).map_err(anyhow::Error::msg)?;
    let size = parse_size(size)?;
    let (sim, name) = sim_of(target, at_s)?;
    let req = RenderRequest {
        at_s,
        frames,
        every_s,
        camera,
        size,
        layers,
        logs: true,
    };
    let files: Vec<PathBuf> = if frames == 1 {
        vec![out.to_path_buf()]
    } else {
        let stem = out
            .file_stem()
            .map_or("frame".into(), |s| s.to_string_lossy().into_owned());
        let dir = out.parent().unwrap_or(Path::new(""));
        (0..frames)
            .map(|k| dir.join(format!("{stem}-{:04}.png", k + 1)))
            .collect()
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // Each frame is written as it comes back, so a long sequence never sits in memory.
    let bar = if frames > 1 {
        ProgressBar::new(frames as u64).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} frames, {eta} left")
                .expect("a valid template"),
        )
    } else {
        ProgressBar::hidden()
    };
    let (paths, bar2) = (files.clone(), bar.clone());
    let mut k = 0;
    let sink: FrameSink = Box::new(move |f: Frame| {
        let path = &paths[k];
        let rgb: Vec<u8> = f
            .rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        std::fs::write(path, citytwin::charts::encode_png(f.width, f.height, &rgb))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        k += 1;
        bar2.inc(1);
        Ok(())
    });
    let result = render_each(sim, &name, &req, sink);
    bar.finish_and_clear();
    result?;
    Ok(files)
}

/// `citytwin view`: the window.
#[allow(clippy::too_many_arguments)] // one per command-line option
pub fn view(
    target: Target,
    at_s: f64,
    camera: &str,
    layers: Layers,
    play: bool,
    speed: f64,
    quit_after_frames: Option<u32>,
    screenshot: Option<PathBuf>,
) -> Result<()> {
    let camera = CameraSpec::parse(camera).map_err(anyhow::Error::msg)?;
    let (sim, name) = sim_of(&target, at_s)?;
    let rebuild = move |t: f64| {
        sim_of(&target, t)
            .map(|(sim, _)| sim)
            .map_err(|e| format!("{e:#}"))
    };
    run_window(
        sim,
        &name,
        WindowOptions {
            camera,
            layers,
            start_s: at_s,
            play,
            speed,
            rebuild: Some(Box::new(rebuild)),
            quit_after_frames,
            screenshot,
        },
    )?;
    Ok(())
}

fn parse_size(s: &str) -> Result<(u32, u32)> {
    let bad = || anyhow::anyhow!("--size {s}: give WIDTHxHEIGHT in pixels, e.g. 1280x720");
    let (w, h) = s.split_once(['x', '×']).ok_or_else(bad)?;
    Ok((
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    ))
}
