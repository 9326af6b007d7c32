//! Runs the server makes: what-if runs started over the API, one at a time in the order they
//! came (the machine's cores go to one simulation at a time), and the live run, paced to the
//! wall clock beside them. Each records into the served store through its own connection, so
//! its KPIs can be read and streamed while it runs.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use anyhow::Result;
use citytwin_engine::runner::{RunRequest, run_scene};
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::SimOptions;
use citytwin_engine::store::RunStore;
use serde::Serialize;

use super::Pool;

/// A run the server was asked to make, as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Job {
    /// Job id (1, 2, …), for this server's lifetime.
    pub id: u64,
    /// `what-if` or `live`.
    pub kind: &'static str,
    /// The scene's name (its file name without `.toml`).
    pub scene: String,
    /// The seed asked for (none: the scene's).
    pub seed: Option<u64>,
    /// `queued`, `running`, `completed`, `interrupted`, `failed` or `cancelled`.
    pub status: &'static str,
    /// The run in the store, once it has started.
    pub run_id: Option<i64>,
    /// Ticks done.
    pub tick: u64,
    /// Ticks in all.
    pub end_tick: u64,
    /// Why it failed or stopped.
    pub error: Option<String>,
    /// When it was asked for (UTC).
    pub submitted_at: String,
    #[serde(skip)]
    stop: Arc<AtomicBool>,
}

impl Job {
    fn ended(&self) -> bool {
        !matches!(self.status, "queued" | "running")
    }
}

struct Work {
    job: u64,
    scene: Scene,
    seed: Option<u64>,
    pace: Option<f64>,
}

type JobList = Arc<Mutex<Vec<Job>>>;

/// The server's runs.
pub(crate) struct Jobs {
    list: JobList,
    queue: Mutex<Option<mpsc::Sender<Work>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Set when the server stops: ends the KPI streams.
    pub stopping: Arc<AtomicBool>,
}

fn lock(list: &Mutex<Vec<Job>>) -> std::sync::MutexGuard<'_, Vec<Job>> {
    list.lock().unwrap_or_else(|p| p.into_inner())
}

fn update(list: &Mutex<Vec<Job>>, id: u64, f: impl FnOnce(&mut Job)) {
    if let Some(j) = lock(list).iter_mut().find(|j| j.id == id) {
        f(j);
    }
}

/// Make one run into `store`, keeping its job up to date; a panic outside the stepping (which
/// `run_scene` catches itself) fails the job instead of the thread.
fn execute(list: &JobList, id: u64, work: Work, store: RunStore, stop: Arc<AtomicBool>) {
    update(list, id, |j| j.status = "running");
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let registry = citytwin::registry();
        run_scene(
            RunRequest {
                scene: &work.scene,
                registry: &registry,
                opts: SimOptions {
                    seed: work.seed,
                    ..Default::default()
                },
                store,
                stop,
                fork: None,
                pace: work.pace,
                on_start: Some(Box::new(|run| update(list, id, |j| j.run_id = Some(run)))),
            },
            &mut |t, end| {
                update(list, id, |j| {
                    j.tick = t;
                    j.end_tick = end;
                })
            },
        )
    }));
    update(list, id, |j| match outcome {
        Ok(Ok(o)) => {
            j.status = o.status.as_str();
            j.tick = o.ticks;
            j.error = o.error;
        }
        Ok(Err(e)) => {
            j.status = "failed";
            j.error = Some(e.to_string());
        }
        Err(_) => {
            j.status = "failed";
            j.error = Some("the run panicked while starting".to_string());
        }
    });
}

impl Jobs {
    /// Start the what-if worker, which takes its connections from `pool`.
    pub fn start(pool: &Pool, stopping: Arc<AtomicBool>) -> Result<Self> {
        let base = pool.connection()?;
        let list: JobList = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<Work>();
        let worker = {
            let list = list.clone();
            std::thread::Builder::new()
                .name("what-if runs".into())
                .spawn(move || {
                    for work in rx {
                        let id = work.job;
                        let stop = match lock(&list).iter().find(|j| j.id == id) {
                            Some(j) if j.status == "queued" => j.stop.clone(),
                            _ => continue,
                        };
                        match base.try_clone() {
                            Ok(store) => execute(&list, id, work, store, stop),
                            Err(e) => update(&list, id, |j| {
                                j.status = "failed";
                                j.error = Some(e.to_string());
                            }),
                        }
                    }
                })?
        };
        Ok(Self {
            list,
            queue: Mutex::new(Some(tx)),
            threads: Mutex::new(vec![worker]),
            stopping,
        })
    }

    fn add(&self, kind: &'static str, scene: &str, seed: Option<u64>) -> (u64, Arc<AtomicBool>) {
        let mut list = lock(&self.list);
        let id = list.last().map_or(1, |j| j.id + 1);
        let stop = Arc::new(AtomicBool::new(false));
        list.push(Job {
            id,
            kind,
            scene: scene.to_string(),
            seed,
            status: "queued",
            run_id: None,
            tick: 0,
            end_tick: 0,
            error: None,
            submitted_at: jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .map_or_else(|_| String::new(), |t| t.to_string()),
            stop: stop.clone(),
        });
        (id, stop)
    }

    /// Queue a what-if run of `scene`; returns its job and how many jobs are ahead of it.
    pub fn submit(
        &self,
        name: &str,
        scene: Scene,
        seed: Option<u64>,
        pace: Option<f64>,
    ) -> Result<(Job, usize), String> {
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = queue.as_ref() else {
            return Err("the server is stopping".to_string());
        };
        let (id, _) = self.add("what-if", name, seed);
        let ahead = lock(&self.list)
            .iter()
            .filter(|j| j.kind == "what-if" && j.id != id && !j.ended())
            .count();
        tx.send(Work {
            job: id,
            scene,
            seed,
            pace,
        })
        .map_err(|_| "the what-if worker has stopped".to_string())?;
        Ok((self.get(id).expect("just added"), ahead))
    }

    /// Start the live run of `scene` at `pace` simulated seconds per wall second.
    pub fn start_live(&self, pool: &Pool, scene: Scene, pace: f64) -> Result<()> {
        let name = scene
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let (id, stop) = self.add("live", &name, None);
        let store = pool.connection()?;
        let list = self.list.clone();
        let handle = std::thread::Builder::new()
            .name("live run".into())
            .spawn(move || {
                let work = Work {
                    job: id,
                    scene,
                    seed: None,
                    pace: Some(pace),
                };
                execute(&list, id, work, store, stop)
            })?;
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle);
        Ok(())
    }

    /// Every job, oldest first.
    pub fn all(&self) -> Vec<Job> {
        lock(&self.list).clone()
    }

    /// One job.
    pub fn get(&self, id: u64) -> Option<Job> {
        lock(&self.list).iter().find(|j| j.id == id).cloned()
    }

    /// The live job, if the server runs one.
    pub fn live(&self) -> Option<Job> {
        lock(&self.list).iter().find(|j| j.kind == "live").cloned()
    }

    /// Stop a job: a queued one is cancelled, a running one stopped (its run is closed as
    /// interrupted). `Err` says why not.
    pub fn cancel(&self, id: u64) -> Result<Job, (u16, String)> {
        let mut list = lock(&self.list);
        let Some(j) = list.iter_mut().find(|j| j.id == id) else {
            return Err((404, format!("no job {id}")));
        };
        match j.status {
            "queued" => {
                j.status = "cancelled";
                j.error = Some("cancelled before it started".to_string());
            }
            "running" => j.stop.store(true, Ordering::Relaxed),
            s => return Err((409, format!("job {id} has already ended ({s})"))),
        }
        Ok(j.clone())
    }

    /// Stop everything and wait for the runs to close: queued jobs are cancelled, running
    /// ones interrupted.
    pub fn join(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        for j in lock(&self.list).iter_mut() {
            j.stop.store(true, Ordering::Relaxed);
            if j.status == "queued" {
                j.status = "cancelled";
                j.error = Some("the server stopped before it started".to_string());
            }
        }
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).take();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}
