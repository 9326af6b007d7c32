//! `citytwin`: run, check, list and export city simulations.

mod compare;
mod locate;
mod plot;
mod replay;
mod report;
mod serve;
mod signals;
#[cfg(feature = "render")]
mod views;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use citytwin::registry;
use citytwin_engine::runner::{RunRequest, run_scene};
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::{Sim, SimOptions};
use citytwin_engine::store::{ExportFormat, RunStatus, RunStore};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

/// The run store used when no scene names one: `runs/citytwin.duckdb` under the current folder.
const DEFAULT_STORE: &str = "runs/citytwin.duckdb";

#[derive(Parser)]
#[command(
    name = "citytwin",
    version,
    about = "A spatial-temporal digital twin engine for cities"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scene headless, as fast as the CPU allows, and record it in the run store.
    Run {
        /// The scene file (TOML).
        scene: PathBuf,
        /// Seed for every random stream (default: the scene's).
        #[arg(long)]
        seed: Option<u64>,
        /// The run store to write (default: the scene's `output.store`): a DuckDB file, or a
        /// postgresql://HOST/DATABASE URL.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Keep pace with the wall clock: this many simulated seconds per wall second (1 is
        /// real time). A scene with live (MQTT) feeds runs at 1 unless told; others run as
        /// fast as they can.
        #[arg(long, value_parser = parse_speed)]
        speed: Option<f64>,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Validate a scene and list what it would load, without running it.
    Check {
        /// The scene file (TOML).
        scene: PathBuf,
    },
    /// Find an address, street or named place by free text (fuzzy: typos, missing parts,
    /// Chinese or Latin script), or with `--at` the address and street nearest a point.
    Locate(locate::LocateArgs),
    /// Serve the run store, the city model and what-if runs over HTTP/JSON (GeoJSON, a
    /// WebSocket KPI stream, OpenAPI at /api/v1/openapi.json); read-only unless given a token.
    Serve(serve::ServeArgs),
    /// List the runs in a store, or show one.
    Runs {
        /// The run store (a DuckDB file, or a postgresql://HOST/DATABASE URL).
        #[arg(long, default_value = DEFAULT_STORE)]
        store: PathBuf,
        #[command(subcommand)]
        action: Option<RunsAction>,
    },
    /// Run a baseline scene and what-if variants into one store and compare their KPIs (table
    /// and a Markdown report).
    Compare {
        /// The baseline scene.
        base: PathBuf,
        /// The variant scenes.
        #[arg(required = true)]
        variants: Vec<PathBuf>,
        /// Seed for every run (default: each scene's).
        #[arg(long)]
        seed: Option<u64>,
        /// The run store (default: the baseline scene's).
        #[arg(long)]
        store: Option<PathBuf>,
        /// The report (default: `compare-<base>.md` beside the store).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Propose fixed-time signal plans for a scene's traffic (Webster, then a parallel search
    /// for the least total delay) and write them as a SUMO additional file.
    OptimizeSignals {
        /// The scene file (TOML) with a [simulations.traffic].
        scene: PathBuf,
        /// Search rounds after Webster's plan.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Where to write the plans (default: `<scene>.signals.add.xml` beside the run store).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run a SWMM 5 `.inp` drainage model with citytwin's solver and print SWMM's summaries
    /// (routing and runoff continuity, node depths and flooding, link flows) in its units.
    Swmm {
        /// The `.inp` file.
        model: PathBuf,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Make a recorded run again: `--verify` checks the state at every checkpoint, `--at T`
    /// shows the state at a moment (made from the nearest checkpoint; `--window` opens the 3D
    /// view there).
    Replay {
        /// The run id.
        run: i64,
        /// The run store (a DuckDB file, or a postgresql://HOST/DATABASE URL).
        #[arg(long, default_value = DEFAULT_STORE)]
        store: PathBuf,
        /// The moment, s after the start.
        #[arg(long)]
        at: Option<f64>,
        /// Re-run the whole run and check the state hash at every checkpoint, from the start
        /// and from each previous checkpoint (exit 1 when any differs).
        #[arg(long)]
        verify: bool,
        /// Open the 3D view at `--at` (as `citytwin view RUN --at T`).
        #[cfg(feature = "render")]
        #[arg(long)]
        window: bool,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Start a new run from a moment of a recorded one, with scenario plugins added from then
    /// on; it is stored with a link to its parent and the parent's history before the fork.
    Fork {
        /// The parent run's id.
        run: i64,
        /// The fork moment, s after the start.
        #[arg(long)]
        at: f64,
        /// A TOML file of `[[scenario]]` tables to add (none: go on unchanged, e.g. after a
        /// killed run).
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// The run store holding the parent; the fork is recorded there.
        #[arg(long, default_value = DEFAULT_STORE)]
        store: PathBuf,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Import what a real incident left behind (GPS tracks, sensor readings, the incident log)
    /// as an observed run on a scene's model and clock, GPS fixes matched to the roads, to play
    /// back beside the simulated runs. Files default to the scene's `[incident]` table.
    Incident {
        /// The scene the incident happened in.
        scene: PathBuf,
        /// Vehicles' GPS fixes (CSV id,time,lon,lat, or GeoJSON points).
        #[arg(long)]
        gps: Option<PathBuf>,
        /// The incident log (CSV time,type,text[,lon,lat]).
        #[arg(long)]
        log: Option<PathBuf>,
        /// Sensor readings (CSV time,station,quantity,value,unit).
        #[arg(long)]
        readings: Option<PathBuf>,
        /// The run store (default: the scene's).
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// Forecast an incident from a moment of a recorded run: the simulations run ahead
    /// (nothing is recorded) to show where the water and the plume go, which roads close, which
    /// buildings and how many people are at risk, and responders' fastest routes.
    Forecast {
        /// The run id.
        run: i64,
        /// From this moment, s after the start.
        #[arg(long)]
        at: f64,
        /// How far ahead, s.
        #[arg(long, default_value_t = 1800.0)]
        ahead: f64,
        /// A responders' station, NAME=LON,LAT (repeat for several).
        #[arg(long = "station")]
        stations: Vec<String>,
        /// Where the responders go, LON,LAT.
        #[arg(long)]
        to: Option<String>,
        /// The road layer the routes use.
        #[arg(long, default_value = "traffic")]
        layer: String,
        /// The run store (a DuckDB file, or a postgresql://HOST/DATABASE URL).
        #[arg(long, default_value = DEFAULT_STORE)]
        store: PathBuf,
    },
    /// Show a scene, or a recorded run, in 3D in a window: play, pause, move in time, switch
    /// layers, pick features.
    #[cfg(feature = "render")]
    View {
        /// A scene file, or the id of a run in the store.
        target: String,
        /// The run store (for a run id).
        #[arg(long, default_value = DEFAULT_STORE)]
        store: PathBuf,
        /// Open at this moment, s after the scene start (the simulation runs there first).
        #[arg(long, default_value_t = 0.0)]
        at: f64,
        /// Start the camera at `overview`, `top`, or X,Y,Z,TX,TY,TZ (scene metres, z up).
        #[arg(long, default_value = "overview")]
        camera: String,
        #[command(flatten)]
        layers: LayerArgs,
        /// Start playing at this many times real time.
        #[arg(long)]
        play: Option<f64>,
        /// Close the window after this many frames (for scripted checks and demos).
        #[arg(long, hide = true)]
        quit_after_frames: Option<u32>,
        /// With --quit-after-frames: a screenshot of the window, as PNG, just before it closes.
        #[arg(long, hide = true)]
        screenshot: Option<PathBuf>,
    },
    /// Render a moment of a scene or a recorded run to PNG, without a window or a GPU (Mesa's
    /// software Vulkan is enough); `--frames N` writes a sequence for a video.
    #[cfg(feature = "render")]
    Render {
        /// A scene file, or the id of a run in the store.
        target: String,
        /// The moment, s after the scene start.
        #[arg(long, default_value_t = 0.0)]
        at: f64,
        /// `overview`, `top`, or X,Y,Z,TX,TY,TZ (scene metres, z up).
        #[arg(long, default_value = "overview")]
        camera: String,
        /// The image (with --frames N: NAME-0001.png, NAME-0002.png, …).
        #[arg(long, default_value = "frame.png")]
        out: PathBuf,
        /// How many frames.
        #[arg(long, default_value_t = 1)]
        frames: usize,
        /// Simulated seconds between frames.
        #[arg(long, default_value_t = 60.0)]
        every: f64,
        /// Image size.
        #[arg(long, default_value = "1280x720")]
        size: String,
        /// The run store (for a run id).
        #[arg(long, default_value = DEFAULT_STORE)]
        store: PathBuf,
        #[command(flatten)]
        layers: LayerArgs,
    },
    /// Draw charts of a recorded run's KPIs over time (PNG or SVG), one file per KPI.
    Plot {
        /// The run id.
        run: i64,
        /// KPI names (e.g. `traffic.travel_time_index`, `flood.flooded_area`).
        #[arg(long = "kpi", required = true)]
        kpis: Vec<String>,
        /// Scopes to draw (default: `city`, or every scope of a per-feature KPI).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// The run store (a DuckDB file, or a postgresql://HOST/DATABASE URL).
        #[arg(long, default_value = DEFAULT_STORE)]
        store: PathBuf,
        /// Image format.
        #[arg(long, value_enum, default_value_t = plot::PlotFormat::Png)]
        format: plot::PlotFormat,
        /// Output folder (default: `plots/run-<id>` beside the store).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Export a run's tables (runs, features, kpis, snapshots, events, fields) to Parquet or CSV.
    Export {
        /// The run id.
        run: i64,
        /// The run store (a DuckDB file, or a postgresql://HOST/DATABASE URL).
        #[arg(long, default_value = DEFAULT_STORE)]
        store: PathBuf,
        /// File format.
        #[arg(long, value_enum, default_value_t = Format::Parquet)]
        format: Format,
        /// Output folder (default: `export/run-<id>` beside the store).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RunsAction {
    /// One line per run.
    List,
    /// One run in detail: status, hash, row counts, last KPI values.
    Show {
        /// The run id.
        id: i64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Parquet,
    Csv,
}

/// What a view draws, from the command line (`view` and `render`).
#[cfg(feature = "render")]
#[derive(clap::Args)]
struct LayerArgs {
    /// Layers to hide (terrain, buildings, roads, vehicles, signals, water, air, sensors).
    #[arg(long, value_delimiter = ',')]
    hide: Vec<String>,
    /// Colour buildings by `use`, `flood` (water at the door) or `air`.
    #[arg(long, default_value = "use")]
    buildings_by: String,
    /// The map the air layer shows (e.g. `pollution.NO2`; default: the first).
    #[arg(long)]
    air: Option<String>,
}

fn main() -> std::process::ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away
    // (`citytwin runs | head`) instead of panicking on a broken pipe.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    #[cfg(feature = "render")]
    if matches!(cli.command, Command::Render { .. })
        && std::env::var_os("XDG_RUNTIME_DIR").is_none()
    {
        // Vulkan's loader looks for a Wayland socket there and complains when it is unset;
        // rendering offscreen needs none.
        // SAFETY: still single-threaded: nothing has started a thread yet.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            // Our errors already carry their cause's text; add only causes not yet said.
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg.push_str(": ");
                    msg.push_str(&c);
                }
            }
            eprintln!("error: {msg}");
            std::process::ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli) -> Result<std::process::ExitCode> {
    match cli.command {
        Command::Run {
            scene,
            seed,
            out,
            speed,
            quiet,
        } => run(&scene, seed, out, speed, quiet),
        Command::Check { scene } => check(&scene).map(|_| std::process::ExitCode::SUCCESS),
        Command::Replay {
            run,
            store,
            at,
            verify,
            #[cfg(feature = "render")]
            window,
            quiet,
        } => {
            #[cfg(feature = "render")]
            if window {
                let t = views::Target::Run { id: run, store };
                views::view(
                    t,
                    at.unwrap_or(0.0),
                    "overview",
                    views::layers(&[], "use", None)?,
                    false,
                    60.0,
                    None,
                    None,
                )?;
                return Ok(std::process::ExitCode::SUCCESS);
            }
            let st = open_existing(&store)?;
            match (verify, at) {
                (true, _) => replay::verify(&st, run, quiet),
                (false, Some(at)) => {
                    replay::state_at(&st, run, at, quiet).map(|_| std::process::ExitCode::SUCCESS)
                }
                (false, None) => {
                    bail!("give --verify, or --at SECONDS for the state at a moment")
                }
            }
        }
        Command::Incident {
            scene,
            gps,
            log,
            readings,
            store,
        } => replay::incident(&scene, gps, log, readings, store)
            .map(|_| std::process::ExitCode::SUCCESS),
        Command::Forecast {
            run,
            at,
            ahead,
            stations,
            to,
            layer,
            store,
        } => {
            let st = open_existing(&store)?;
            replay::forecast(&st, run, at, ahead, &stations, to.as_deref(), layer)
                .map(|_| std::process::ExitCode::SUCCESS)
        }
        Command::Fork {
            run,
            at,
            scenario,
            store,
            quiet,
        } => replay::fork(&store, run, at, scenario.as_deref(), quiet),
        Command::Locate(args) => locate::locate(args),
        Command::Serve(args) => serve::serve(args).map(|_| std::process::ExitCode::SUCCESS),
        Command::Runs { store, action } => runs(&store, action.unwrap_or(RunsAction::List))
            .map(|_| std::process::ExitCode::SUCCESS),
        #[cfg(feature = "render")]
        Command::View {
            target,
            store,
            at,
            camera,
            layers,
            play,
            quit_after_frames,
            screenshot,
        } => {
            let layers = views::layers(&layers.hide, &layers.buildings_by, layers.air)?;
            let t = views::Target::parse(&target, &store);
            views::view(
                t,
                at,
                &camera,
                layers,
                play.is_some(),
                play.unwrap_or(60.0),
                quit_after_frames,
                screenshot,
            )?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        #[cfg(feature = "render")]
        Command::Render {
            target,
            at,
            camera,
            out,
            frames,
            every,
            size,
            store,
            layers,
        } => {
            let layers = views::layers(&layers.hide, &layers.buildings_by, layers.air)?;
            let t = views::Target::parse(&target, &store);
            for f in views::render(&t, at, frames, every, &camera, &size, layers, &out)? {
                println!("{}", f.display());
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Plot {
            run,
            kpis,
            scopes,
            store,
            format,
            out,
        } => {
            let st = open_existing(&store)?;
            let dir = out.unwrap_or_else(|| {
                citytwin_engine::store::folder_beside(&store)
                    .join("plots")
                    .join(format!("run-{run}"))
            });
            for f in plot::plot(&st, run, &kpis, &scopes, &dir, format)? {
                println!("{}", f.display());
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Export {
            run,
            store,
            format,
            out,
        } => export(run, &store, format, out).map(|_| std::process::ExitCode::SUCCESS),
        Command::Compare {
            base,
            variants,
            seed,
            store,
            out,
        } => compare::compare(&base, &variants, seed, store, out, &registry())
            .map(|_| std::process::ExitCode::SUCCESS),
        Command::OptimizeSignals { scene, rounds, out } => {
            signals::optimize_signals(&scene, rounds, out).map(|_| std::process::ExitCode::SUCCESS)
        }
        Command::Swmm { model, quiet } => {
            swmm(&model, quiet).map(|_| std::process::ExitCode::SUCCESS)
        }
    }
}

/// `--speed`: a positive, finite number of simulated seconds per wall second.
pub(crate) fn parse_speed(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| *v > 0.0 && v.is_finite())
        .ok_or_else(|| "give a positive number of simulated seconds per wall second".to_string())
}

fn run(
    scene_path: &Path,
    seed: Option<u64>,
    out: Option<PathBuf>,
    speed: Option<f64>,
    quiet: bool,
) -> Result<std::process::ExitCode> {
    let scene = Scene::load(scene_path)?;
    let live = scene.feeds.iter().any(|f| f.mqtt.is_some());
    let pace = speed.or(live.then_some(1.0));
    let registry = registry();
    let store_path = out.unwrap_or_else(|| scene.store_path());
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .context("cannot install the Ctrl-C handler")?;
    }
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:40}] {pos}/{len} ticks, {per_sec}, eta {eta}",
        )
        .expect("the progress template is valid")
        .progress_chars("=> "),
    );
    bar.set_message(format!("running '{}'", scene.meta.name));
    let store = RunStore::open(&store_path)?;
    let outcome = run_scene(
        RunRequest {
            scene: &scene,
            registry: &registry,
            opts: SimOptions {
                seed,
                ..Default::default()
            },
            store,
            stop,
            fork: None,
            pace,
            on_start: None,
        },
        &mut |t, end| {
            bar.set_length(end);
            bar.set_position(t);
        },
    )?;
    bar.finish_and_clear();
    report::print_run(&scene, &outcome);
    Ok(match outcome.status {
        RunStatus::Completed => std::process::ExitCode::SUCCESS,
        RunStatus::Interrupted => std::process::ExitCode::from(130),
        _ => std::process::ExitCode::from(1),
    })
}

fn check(scene_path: &Path) -> Result<()> {
    let scene = Scene::load(scene_path)?;
    let sim = Sim::build(&scene, &registry(), SimOptions::default())?;
    report::print_check(&scene, &sim);
    if let Some(feeds) = sim.world().get_resource::<citytwin_engine::feeds::Feeds>() {
        let readings: usize = feeds.series.iter().map(|s| s.readings.len()).sum();
        println!(
            "feeds: {readings} readings in {} series, {} bad",
            feeds.series.len(),
            feeds.bad_total()
        );
        for (kind, (n, lines)) in &feeds.bad {
            println!("  {n} {kind}, e.g. {}", lines.join("; "));
        }
    }
    for (i, f) in scene.feeds.iter().enumerate() {
        if let Some(url) = &f.mqtt {
            println!(
                "feed[{i}]: live from {} (late when over {} s behind the clock; `run` keeps real time)",
                url.get_ref(),
                f.max_delay_s.get_ref()
            );
        }
    }
    // Address layers feed the gazetteer, not the world: read them here so `check` finds their
    // errors too.
    let sources = citytwin_engine::address::Source::of_scene(&scene);
    if !sources.is_empty() {
        let (g, lines) = citytwin_engine::address::build(&sources)?;
        let (addresses, streets, places) = g.counts();
        println!(
            "gazetteer: {addresses} addresses, {streets} streets, {places} named places ({})",
            lines.join("; ")
        );
    }
    Ok(())
}

pub(crate) fn open_existing(store: &Path) -> Result<RunStore> {
    let url = citytwin_engine::import::postgis::is_database(&store.to_string_lossy());
    if !url && !store.is_file() {
        bail!(
            "no run store at {} (run a scene first, or pass --store)",
            store.display()
        );
    }
    Ok(RunStore::open(store)?)
}

fn runs(store: &Path, action: RunsAction) -> Result<()> {
    let st = open_existing(store)?;
    match action {
        RunsAction::List => report::print_runs(&st.runs()?),
        RunsAction::Show { id } => report::print_run_detail(&st, id)?,
    }
    Ok(())
}

fn export(run: i64, store: &Path, format: Format, out: Option<PathBuf>) -> Result<()> {
    let st = open_existing(store)?;
    let dir = out.unwrap_or_else(|| {
        citytwin_engine::store::folder_beside(store)
            .join("export")
            .join(format!("run-{run}"))
    });
    let fmt = match format {
        Format::Parquet => ExportFormat::Parquet,
        Format::Csv => ExportFormat::Csv,
    };
    for f in st.export(run, &dir, fmt)? {
        println!("{}", f.display());
    }
    Ok(())
}

fn swmm(path: &Path, quiet: bool) -> Result<()> {
    use citytwin_flood::drainage::{Drainage, inp::read_inp, report::summary};
    let model = read_inp(path)?;
    let mut d = Drainage::new(&model.spec).with_context(|| format!("{}", path.display()))?;
    let duration = model.spec.options.duration_s;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(100).with_style(
            ProgressStyle::with_template("{bar:40} {percent:>3}% {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        )
    };
    let wall = std::time::Instant::now();
    for k in 1..=100 {
        d.advance_to(duration * k as f64 / 100.0);
        bar.set_position(k);
    }
    bar.finish_and_clear();
    println!("{}", path.display());
    if !model.title.is_empty() {
        println!("{}", model.title);
    }
    println!();
    print!("{}", summary(&model, &d));
    println!(
        "\n{:.2} h simulated in {:.3} s",
        duration / 3600.0,
        wall.elapsed().as_secs_f64()
    );
    Ok(())
}
