//! `citytwin serve`: the run store, the city model and what-if runs over HTTP/JSON, for an
//! operations centre's dashboards and other programs.
//!
//! One process owns the store (DuckDB lets one process write a file): the HTTP handlers read
//! it through their own connections while the live run and the what-if runs record into it
//! through theirs. The API is read-only unless a token is set; writes (starting and stopping
//! what-if runs) then need `Authorization: Bearer <token>`. It listens on loopback unless told
//! otherwise. The routes are described by the OpenAPI document at `/api/v1/openapi.json`.

mod api;
mod cache;
mod features;
mod geojson;
mod jobs;
mod stream;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use citytwin_engine::address::{self, Gazetteer, Source};
use citytwin_engine::scene::Scene;
use citytwin_engine::store::RunStore;

/// What `citytwin serve` was asked.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// The run store to serve (default: the first scene's `output.store`, else
    /// `runs/citytwin.duckdb`).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// A scene that clients may start what-if runs of, by its file name without `.toml`
    /// (repeatable); its address layers answer `/locate`.
    #[arg(long = "scene", value_name = "SCENE")]
    pub scenes: Vec<PathBuf>,
    /// Run this scene live, paced to the wall clock (`--speed`), recorded into the store.
    #[arg(long, value_name = "SCENE")]
    pub live: Option<PathBuf>,
    /// Simulated seconds per wall second of the live run (1 is real time).
    #[arg(long, default_value_t = 1.0, value_parser = crate::parse_speed)]
    pub speed: f64,
    /// Address and port to listen on; loopback by default (`0.0.0.0:8080` serves a network,
    /// port 0 takes a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// A file holding the token write requests must bear (`CITYTWIN_TOKEN` also sets it).
    /// Without a token the API is read-only.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// What every handler shares.
pub(crate) struct AppState {
    /// Connections to the store, see [`Pool`].
    pub pool: Pool,
    /// The scenes what-ifs may start, by name (file stem).
    pub scenes: BTreeMap<String, Scene>,
    /// The scenes' address layers, when they have any.
    pub gazetteer: Option<Gazetteer>,
    /// The write token, if writes are allowed.
    pub token: Option<String>,
    /// What-if runs and the live run.
    pub jobs: jobs::Jobs,
    /// The scene frame of each run asked about, read once from its stored scene.
    pub frames: Mutex<BTreeMap<i64, citytwin_engine::geo_frame::GeoFrame>>,
    /// Answers about ended runs, which cannot change.
    pub cache: cache::ResponseCache,
}

/// Connections to the served store: one is kept to make the others from, and idle ones are
/// reused, since a DuckDB connection serves one thread at a time.
pub(crate) struct Pool {
    base: Mutex<RunStore>,
    idle: Mutex<Vec<RunStore>>,
}

impl Pool {
    fn new(base: RunStore) -> Self {
        Self {
            base: Mutex::new(base),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// A connection of one's own, returned to the pool when the guard drops.
    pub fn get(&self) -> Result<PooledStore<'_>, citytwin_engine::store::StoreError> {
        let reused = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let store = match reused {
            Some(s) => s,
            None => self
                .base
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .try_clone()?,
        };
        Ok(PooledStore {
            pool: self,
            store: Some(store),
        })
    }

    /// An owned connection, for a thread that keeps it (a run recording).
    pub fn connection(&self) -> Result<RunStore, citytwin_engine::store::StoreError> {
        self.base
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .try_clone()
    }

    /// The store's path, for messages.
    pub fn path(&self) -> PathBuf {
        self.base
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .path()
            .to_path_buf()
    }
}

/// A connection borrowed from the [`Pool`].
pub(crate) struct PooledStore<'a> {
    pool: &'a Pool,
    store: Option<RunStore>,
}

impl std::ops::Deref for PooledStore<'_> {
    type Target = RunStore;
    fn deref(&self) -> &RunStore {
        self.store.as_ref().expect("taken only on drop")
    }
}

impl Drop for PooledStore<'_> {
    fn drop(&mut self) {
        // A connection the server has dropped (PostgreSQL restarted) is not kept: the next
        // request opens a fresh one.
        if let Some(s) = self.store.take().filter(|s| !s.is_closed()) {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
            // Enough for the runtime's threads; more would only hold memory.
            if idle.len() < 16 {
                idle.push(s);
            }
        }
    }
}

/// The write token: `--token-file`, else `CITYTWIN_TOKEN`, else none (read-only).
fn read_token(file: Option<&Path>) -> Result<Option<String>> {
    let token = match file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("--token-file {}: cannot read it", f.display()))?
                .trim()
                .to_string(),
        ),
        None => std::env::var("CITYTWIN_TOKEN")
            .ok()
            .map(|t| t.trim().to_string()),
    };
    match token {
        Some(t) if t.is_empty() => {
            bail!(
                "the write token is empty (--token-file or CITYTWIN_TOKEN); give one or leave both out to serve read-only"
            )
        }
        Some(t) if t.len() < 16 => bail!(
            "the write token is {} characters; use at least 16 (e.g. `openssl rand -hex 16`)",
            t.len()
        ),
        t => Ok(t),
    }
}

/// The scenes by name (file stem); two with one name are an error.
fn load_scenes(paths: &[PathBuf]) -> Result<BTreeMap<String, Scene>> {
    let mut out = BTreeMap::new();
    for p in paths {
        let scene = Scene::load(p)?;
        let name = p
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        if out.insert(name.clone(), scene).is_some() {
            bail!(
                "two --scene files are named '{name}'; what-if requests name scenes by file name"
            );
        }
    }
    Ok(out)
}

/// Run `citytwin serve` until Ctrl-C (or SIGTERM); running what-ifs and the live run are then
/// stopped and closed as interrupted.
pub fn serve(a: ServeArgs) -> Result<()> {
    let token = read_token(a.token_file.as_deref())?;
    let scenes = load_scenes(&a.scenes)?;
    let live = a.live.as_deref().map(Scene::load).transpose()?;
    let store_path = a
        .store
        .clone()
        .or_else(|| scenes.values().next().map(Scene::store_path))
        .or_else(|| live.as_ref().map(Scene::store_path))
        .unwrap_or_else(|| PathBuf::from(crate::DEFAULT_STORE));
    let sources: Vec<Source> = scenes.values().flat_map(Source::of_scene).collect();
    let gazetteer = if sources.is_empty() {
        None
    } else {
        let (g, _) = address::build(&sources)?;
        Some(g)
    };
    let store = RunStore::open(&store_path)?;
    let n_runs = store.runs()?.len();
    let pool = Pool::new(store);
    let stop = Arc::new(AtomicBool::new(false));
    let jobs = jobs::Jobs::start(&pool, stop.clone())?;
    let state = Arc::new(AppState {
        pool,
        scenes,
        gazetteer,
        token,
        jobs,
        frames: Mutex::new(BTreeMap::new()),
        cache: cache::ResponseCache::new(64 << 20),
    });
    if let Some(scene) = live {
        state.jobs.start_live(&state.pool, scene, a.speed)?;
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the HTTP runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(a.bind)
            .await
            .with_context(|| format!("cannot listen on {}", a.bind))?;
        let addr = listener.local_addr()?;
        let (addresses, streets, places) = state.gazetteer.as_ref().map_or((0, 0, 0), Gazetteer::counts);
        println!(
            "citytwin serve: store {} ({n_runs} runs), {} what-if scene(s), gazetteer of {addresses} addresses, {streets} streets, {places} places",
            store_path.display(),
            state.scenes.len()
        );
        if !addr.ip().is_loopback() {
            eprintln!(
                "note: listening on {} beyond this machine; put a TLS proxy in front before sending a token over a network",
                addr.ip()
            );
        }
        println!(
            "listening on http://{addr}/api/v1 ({})",
            if state.token.is_some() {
                "writes need the token"
            } else {
                "read-only"
            }
        );
        let app = api::router(state.clone());
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal(stop.clone()))
            .await
            .context("the HTTP server stopped")
    })?;
    eprintln!("stopping: closing the live and what-if runs");
    state.jobs.join();
    Ok(())
}

/// Ctrl-C or SIGTERM; then `stop` is set, which ends the runs and the KPI streams, so the
/// server's graceful shutdown is not kept waiting by a stream that follows a live run.
async fn shutdown_signal(stop: Arc<AtomicBool>) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    stop.store(true, Ordering::Relaxed);
}
