//! Live sensor feeds from a real MQTT broker (Debian's `mosquitto`, started here on a free
//! loopback port): readings published while a paced run goes on drive its rain gauges, the bad
//! ones are counted, every message is stored, and the run replays to the same state with the
//! broker gone.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use citytwin::registry;
use citytwin_engine::replay;
use citytwin_engine::runner::{RunError, RunOutcome, RunRequest, run_scene};
use citytwin_engine::scene::Scene;
use citytwin_engine::sim::SimOptions;
use citytwin_engine::store::{Channel, READING_STATUSES, RunStore};
use common::scene_copy_of;

/// A mosquitto broker on loopback, stopped when dropped.
struct Broker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// On a free port.
    fn start() -> Broker {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Broker::start_on(port)
    }

    fn start_on(port: u16) -> Broker {
        let exe = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .or_else(|| {
                std::env::var_os("PATH").and_then(|path| {
                    std::env::split_paths(&path)
                        .map(|d| d.join("mosquitto"))
                        .find(|p| p.is_file())
                })
            })
            .expect("these tests need the mosquitto broker (Debian: apt-get install mosquitto; .ci/run installs it)");
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .unwrap();
        let child = Command::new(exe)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The coupled sample storm, 600 s, with its design storm replaced by a live feed from `url`.
fn scene(dir: &Path, url: &str) -> Scene {
    let path = scene_copy_of(dir, "sample_rainstorm", |t| {
        let t = common::without_design_storm(t, 600.0);
        // A reading may be at most a day behind the clock: the one planted late is further.
        format!("{t}\n[[feed]]\nmqtt = \"{url}\"\nmax_delay_s = 86400.0\n")
    });
    Scene::load(path).unwrap_or_else(|e| panic!("{e}"))
}

/// What is published, on `city/sensors/<station>`, and what each should be taken for.
const MESSAGES: [(&str, &str, &str); 9] = [
    ("hf-rg1", "0,HF-RG1,rain,30,mm/h", "ok"),
    (
        "hf-rg2",
        r#"{"station":"HF-RG2","quantity":"rain","value":20,"unit":"mm/h"}"#,
        "ok",
    ),
    ("hf-rg1", "0,HF-RG1,rain,30,mm/h", "duplicate"),
    ("hf-rg1", "hello", "malformed"),
    ("hf-rg1", "-100000,HF-RG1,rain,10,mm/h", "late"),
    ("xx-9", "10,XX-9,rain,10,mm/h", "unknown_station"),
    ("hf-rg2", "20,HF-RG2,rain,-5,mm/h", "out_of_range"),
    ("hf-rg1", "300,HF-RG1,rain,0,mm/h", "ok"),
    (
        "hf-wl1",
        r#"{"time":120,"station":"HF-WL1","quantity":"water_level","value":12,"unit":"cm"}"#,
        "ok",
    ),
];

/// Publish `messages` (QoS 1, in order; kept by the broker for later subscribers when
/// `retain`) to the broker on `port`, and wait for the broker's acknowledgements.
fn publish_these(port: u16, messages: &[(&str, &str, &str)], retain: bool) {
    use rumqttc::{Client, Event, MqttOptions, Outgoing, Packet, QoS};
    let (client, mut conn) =
        Client::new(MqttOptions::new("citytwin-test-pub", "127.0.0.1", port), 16);
    for (topic, payload, _) in messages {
        client
            .publish(
                format!("city/sensors/{topic}"),
                QoS::AtLeastOnce,
                retain,
                *payload,
            )
            .unwrap();
    }
    let mut acked = 0;
    for e in conn.iter() {
        match e.expect("the publisher's connection") {
            Event::Incoming(Packet::PubAck(_)) => acked += 1,
            Event::Outgoing(Outgoing::Disconnect) => break,
            _ => {}
        }
        if acked == messages.len() {
            client.disconnect().unwrap();
        }
    }
    assert_eq!(acked, messages.len());
}

/// Run `scene` paced at 100x into `store`, calling `publish` once the run has subscribed.
fn run_live(
    scene: &Scene,
    store: &Path,
    publish: impl FnOnce() + Send + 'static,
) -> Result<RunOutcome, RunError> {
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let publisher = std::thread::spawn(move || {
        // Once the run has subscribed (it is registered only after that).
        if started_rx.recv_timeout(Duration::from_secs(60)).is_ok() {
            publish();
        }
    });
    let out = run_scene(
        RunRequest {
            scene,
            registry: &registry(),
            opts: SimOptions {
                seed: None,
                strict_schedule: true,
            },
            store: RunStore::open(store).unwrap(),
            stop: Arc::new(AtomicBool::new(false)),
            fork: None,
            // 600 simulated seconds in at least 6 wall seconds: the messages arrive mid-run.
            pace: Some(100.0),
            on_start: Some(Box::new(move |_| {
                let _ = started_tx.send(());
            })),
        },
        &mut |_, _| {},
    );
    publisher.join().unwrap();
    out
}

#[test]
fn live_readings_drive_the_run_are_stored_and_replay_without_the_broker() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("mqtt://127.0.0.1:{}/city/sensors/#", broker.port);
    let scene = scene(dir.path(), &url);
    let store_path = dir.path().join("runs.duckdb");
    let port = broker.port;
    let out = run_live(&scene, &store_path, move || {
        publish_these(port, &MESSAGES, false)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.as_str(), "completed", "{:?}", out.error);
    assert_eq!(out.feed_links.len(), 1);
    assert_eq!(out.feed_links[0].received, MESSAGES.len() as u64);
    assert_eq!(out.feed_links[0].url, url);

    // Every message is stored, in order, with what the run made of it.
    let store = RunStore::open(&store_path).unwrap();
    let rows = store.readings(out.run_id).unwrap();
    assert_eq!(rows.len(), MESSAGES.len());
    for (row, (topic, payload, status)) in rows.iter().zip(MESSAGES) {
        assert_eq!(row.channel, Channel::Mqtt);
        assert_eq!(row.origin, format!("city/sensors/{topic}"));
        assert_eq!(row.payload, payload);
        assert_eq!(row.status, status, "{row:?}");
        assert_eq!(row.detail.is_some(), status != "ok", "{row:?}");
        let arrived = row.arrival_s.expect("a live reading has its arrival");
        assert!((0.0..600.0).contains(&arrived), "{row:?}");
    }
    // A reading without a time holds from its arrival.
    assert_eq!(rows[1].time_s, rows[1].arrival_s);
    assert_eq!(rows[8].value, Some(0.12));

    // The readings drove the run: rain on both gauges, stopped at 300 s on the first.
    let kpi = |name: &str, scope: &str| {
        out.final_kpis
            .iter()
            .find(|k| k.0 == name && k.1 == scope)
            .map(|k| k.2)
    };
    let rg1_m = kpi("rain.depth", "HF-RG1").unwrap();
    let full_m = 0.030 / 3600.0 * 300.0;
    assert!(rg1_m > 0.0 && rg1_m <= full_m + 1e-12, "{rg1_m}");
    assert_eq!(kpi("rain.intensity", "HF-RG1"), Some(0.0));
    assert!(kpi("rain.intensity", "HF-RG2").unwrap() > 0.0);
    assert!(kpi("flood.rain_volume", "city").unwrap() > 0.0);
    assert_eq!(kpi("feed.water_level", "HF-WL1"), Some(0.12));
    // Every kind of bad reading, once.
    for kind in &READING_STATUSES[1..] {
        assert_eq!(kpi("feed.bad", kind), Some(1.0), "{kind}");
    }

    // With the broker gone, the run replays from the store to the same state, at the end and
    // at each checkpoint (restoring one takes in the messages recorded up to it).
    drop(broker);
    let report = replay::verify(&store, &registry(), out.run_id, &mut |_, _| {}).unwrap();
    assert!(!report.checkpoints.is_empty());
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        report.final_hash.as_ref().map(|h| h.0.clone()),
        out.state_hash
    );
}

#[test]
fn an_unreachable_broker_is_an_error_naming_the_feed_and_leaves_no_run() {
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let scene = scene(dir.path(), &format!("mqtt://127.0.0.1:{port}/city/#"));
    let store_path = dir.path().join("runs.duckdb");
    let e = match run_live(&scene, &store_path, || {}) {
        Ok(o) => panic!("ran without its broker: {:?}", o.status),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("feed[0]")
            && e.contains(&format!("127.0.0.1:{port}"))
            && e.contains("cannot reach the broker"),
        "{e}"
    );
    assert!(
        RunStore::open(&store_path)
            .unwrap()
            .runs()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_lost_broker_is_counted_and_the_link_comes_back_to_it() {
    let broker = Broker::start();
    let port = broker.port;
    let dir = tempfile::tempdir().unwrap();
    let scene = scene(
        dir.path(),
        &format!("mqtt://127.0.0.1:{port}/city/sensors/#"),
    );
    let store_path = dir.path().join("runs.duckdb");
    let broker = std::sync::Mutex::new(Some(broker));
    let broker = Arc::new(broker);
    let held = broker.clone();
    let out = run_live(&scene, &store_path, move || {
        publish_these(port, &MESSAGES[..1], false);
        // The broker goes down and comes back on the same port. The reading published then is
        // retained, so the link gets it when it subscribes again.
        drop(held.lock().unwrap().take());
        std::thread::sleep(Duration::from_millis(500));
        *held.lock().unwrap() = Some(Broker::start_on(port));
        publish_these(port, &MESSAGES[7..8], true);
    })
    .unwrap_or_else(|e| panic!("{e}"));
    drop(broker);
    assert_eq!(out.status.as_str(), "completed", "{:?}", out.error);
    let link = &out.feed_links[0];
    assert_eq!(link.outages, 1, "{link:?}");
    assert!(link.connected && link.last_error.is_some(), "{link:?}");
    assert_eq!(link.received, 2, "{link:?}");
    let rows = RunStore::open(&store_path)
        .unwrap()
        .readings(out.run_id)
        .unwrap();
    let payloads: Vec<&str> = rows.iter().map(|r| r.payload.as_str()).collect();
    assert_eq!(payloads, [MESSAGES[0].1, MESSAGES[7].1]);
    assert!(rows.iter().all(|r| r.status == "ok"), "{rows:?}");
}
