//! Live feeds: readings from MQTT brokers, taken in on the simulation clock.
//!
//! A `[[feed]] mqtt = "mqtt://HOST[:PORT]/TOPIC-FILTER"` subscribes (QoS 1) to the filter.
//! Each message is one reading:
//! - a CSV row `time,station,quantity,value,unit` (no header), or
//! - a JSON object `{"time": …, "station": …, "quantity": …, "value": …, "unit": …}`.
//!
//! The time is seconds after the scene start or an RFC 3339 instant, as in a file. An empty or
//! absent time means the moment the reading arrives.
//!
//! **Determinism.** A link thread per feed receives messages as they come. Each step takes the
//! messages that came since the last one, stamped with the simulated time of that step, and
//! the run store records each one (`readings`, channel `mqtt`). A replay or fork of the run is
//! given those records instead of the broker ([`LiveFeeds::replay`]), so it takes in the same
//! messages at the same steps and ends on the same state.
//!
//! **Failures.** A broker that cannot be reached when the run starts is an error naming the
//! feed. One lost later is retried every second, while the run goes on with the readings it
//! has. [`LiveFeeds::links`] tells how each link is doing. Nothing about the link enters the
//! world, which sees only messages.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use rumqttc::{Client, ConnectReturnCode, Connection, Event, MqttOptions, Packet, QoS};

use super::{Feeds, Incoming};
use crate::clock::SimClock;
use crate::incident::csv_fields;
use crate::store::{Channel, RecordedMessage};

/// How long a new run waits for a broker to accept its subscription.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// An `mqtt://` feed address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttUrl {
    /// The broker's host.
    pub host: String,
    /// Its port (1883 unless given).
    pub port: u16,
    /// The topic filter subscribed to.
    pub topic: String,
}

impl MqttUrl {
    /// Read `mqtt://HOST[:PORT]/TOPIC-FILTER`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let Some(rest) = url.strip_prefix("mqtt://") else {
            return Err(
                if url.starts_with("mqtts://") || url.starts_with("ssl://") {
                    format!(
                        "'{url}': TLS is not built in; reach the broker over a local bridge or a TLS tunnel, as mqtt://"
                    )
                } else {
                    format!("'{url}' is not an mqtt:// address (mqtt://HOST[:PORT]/TOPIC)")
                },
            );
        };
        let (authority, topic) = rest.split_once('/').unwrap_or((rest, ""));
        if topic.is_empty() {
            return Err(format!(
                "'{url}' names no topic: add it after the host, as in mqtt://{authority}/city/sensors/#"
            ));
        }
        if authority.contains('@') {
            return Err(format!(
                "'{url}': user names and passwords do not belong in a scene file; use a broker that allows this client, or a local bridge"
            ));
        }
        // `[v6]:port`, `host:port` or a bare host.
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((h, rest)) => (h, rest.strip_prefix(':')),
                None => return Err(format!("'{url}': an IPv6 host needs its closing ']'")),
            },
            None => match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            },
        };
        let port =
            match port {
                None => 1883,
                Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                    format!("'{url}': port '{p}' is not a number from 1 to 65535")
                })?,
            };
        if host.is_empty() {
            return Err(format!("'{url}' names no broker host"));
        }
        // MQTT 3.1.1 §4.7: `#` only as the whole last level, `+` only as a whole level.
        let levels: Vec<&str> = topic.split('/').collect();
        for (i, l) in levels.iter().enumerate() {
            let bad_hash = l.contains('#') && (*l != "#" || i + 1 != levels.len());
            let bad_plus = l.contains('+') && *l != "+";
            if bad_hash || bad_plus {
                return Err(format!(
                    "'{url}': topic filter '{topic}' uses a wildcard inside a level ('#' only as the last level, '+' only as a whole level)"
                ));
            }
        }
        Ok(MqttUrl {
            host: host.to_string(),
            port,
            topic: topic.to_string(),
        })
    }
}

impl std::fmt::Display for MqttUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mqtt://{}:{}/{}", self.host, self.port, self.topic)
    }
}

/// A live feed could not start.
#[derive(Debug, thiserror::Error)]
#[error("feed[{feed}] {url}: {message}")]
pub struct LinkError {
    /// The scene's `[[feed]]` (0-based).
    pub feed: u32,
    /// Its address.
    pub url: String,
    /// What went wrong.
    pub message: String,
}

/// How one live feed's link is doing (wall-clock facts, outside the world).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkStatus {
    /// The scene's `[[feed]]` (0-based).
    pub feed: u32,
    /// Its address.
    pub url: String,
    /// Messages received.
    pub received: u64,
    /// Times the link was lost.
    pub outages: u64,
    /// Whether it is up now.
    pub connected: bool,
    /// The last error, if any.
    pub last_error: Option<String>,
}

/// One `[[feed]] mqtt`.
#[derive(Clone, Debug)]
struct LiveFeed {
    feed: u32,
    url: MqttUrl,
    max_delay_s: f64,
}

/// A message in from a feed.
struct Message {
    feed: u32,
    topic: String,
    payload: String,
}

/// Where the live messages come from.
enum Source {
    /// Nowhere yet: a world that only computes (see [`LiveFeeds::connect`]).
    Idle,
    /// Brokers, through link threads.
    Broker {
        rx: Mutex<Receiver<Message>>,
        links: Vec<Link>,
    },
    /// A recorded run's messages, each at its own arrival time.
    Recorded {
        messages: Vec<RecordedMessage>,
        next: usize,
    },
}

/// A link thread's handle: dropped, it disconnects and the thread ends.
struct Link {
    client: Client,
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<LinkStatus>>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.client.try_disconnect();
    }
}

/// The scene's live feeds and where their messages come from.
#[derive(Resource)]
pub struct LiveFeeds {
    feeds: Vec<LiveFeed>,
    source: Source,
}

impl LiveFeeds {
    /// The live feeds among a scene's `(index, mqtt address, max delay s)`.
    pub(crate) fn new(specs: &[(u32, MqttUrl, f64)]) -> Self {
        LiveFeeds {
            feeds: specs
                .iter()
                .map(|(feed, url, max_delay_s)| LiveFeed {
                    feed: *feed,
                    url: url.clone(),
                    max_delay_s: *max_delay_s,
                })
                .collect(),
            source: Source::Idle,
        }
    }

    /// Subscribe to every feed's broker, waiting until each accepts (at most 10 s each).
    /// Messages arriving from then on are taken in by the following steps.
    pub fn connect(&mut self) -> Result<(), LinkError> {
        let (tx, rx) = channel();
        let mut links = Vec::with_capacity(self.feeds.len());
        for f in &self.feeds {
            links.push(subscribe(f, tx.clone())?);
        }
        self.source = Source::Broker {
            rx: Mutex::new(rx),
            links,
        };
        Ok(())
    }

    /// Take in a recorded run's messages instead of the brokers', each at the step it arrived
    /// in then.
    pub fn replay(&mut self, messages: Vec<RecordedMessage>) {
        self.source = Source::Recorded { messages, next: 0 };
    }

    /// How each link is doing (empty unless connected to brokers).
    pub fn links(&self) -> Vec<LinkStatus> {
        match &self.source {
            Source::Broker { links, .. } => links
                .iter()
                .map(|l| l.status.lock().map(|s| s.clone()).unwrap_or_default())
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Connect to `f`'s broker, subscribe, and start its link thread.
fn subscribe(f: &LiveFeed, tx: Sender<Message>) -> Result<Link, LinkError> {
    let fail = |message: String| LinkError {
        feed: f.feed,
        url: f.url.to_string(),
        message,
    };
    let id = format!(
        "citytwin-{}-{}-{}",
        std::process::id(),
        f.feed,
        jiff::Timestamp::now().as_millisecond()
    );
    let mut opts = MqttOptions::new(id, f.url.host.clone(), f.url.port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_clean_session(true);
    let (client, mut conn) = Client::new(opts, 256);
    client
        .subscribe(f.url.topic.clone(), QoS::AtLeastOnce)
        .map_err(|e| fail(format!("cannot subscribe: {e}")))?;
    let status = Arc::new(Mutex::new(LinkStatus {
        feed: f.feed,
        url: f.url.to_string(),
        ..LinkStatus::default()
    }));
    let deadline = Instant::now() + SUBSCRIBE_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = match conn.recv_timeout(left) {
            Ok(Ok(e)) => e,
            Ok(Err(e)) => return Err(fail(format!("cannot reach the broker: {e}"))),
            Err(_) => {
                return Err(fail(format!(
                    "the broker did not accept the subscription within {} s",
                    SUBSCRIBE_TIMEOUT.as_secs()
                )));
            }
        };
        match event {
            Event::Incoming(Packet::ConnAck(a)) if a.code != ConnectReturnCode::Success => {
                return Err(fail(format!(
                    "the broker refused the connection: {:?}",
                    a.code
                )));
            }
            Event::Incoming(Packet::SubAck(a)) => {
                if a.return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                {
                    return Err(fail(format!(
                        "the broker refused the subscription to '{}'",
                        f.url.topic
                    )));
                }
                break;
            }
            Event::Incoming(Packet::Publish(p)) => forward(f.feed, &p, &tx, &status),
            _ => {}
        }
    }
    if let Ok(mut s) = status.lock() {
        s.connected = true;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (client, stop, status, feed, topic) = (
            client.clone(),
            stop.clone(),
            status.clone(),
            f.feed,
            f.url.topic.clone(),
        );
        move || link_loop(conn, client, topic, feed, tx, stop, status)
    };
    std::thread::Builder::new()
        .name(format!("citytwin-feed-{}", f.feed))
        .spawn(thread)
        .map_err(|e| fail(format!("cannot start its thread: {e}")))?;
    Ok(Link {
        client,
        stop,
        status,
    })
}

fn forward(feed: u32, p: &rumqttc::Publish, tx: &Sender<Message>, status: &Mutex<LinkStatus>) {
    let _ = tx.send(Message {
        feed,
        topic: p.topic.clone(),
        payload: String::from_utf8_lossy(&p.payload).into_owned(),
    });
    if let Ok(mut s) = status.lock() {
        s.received += 1;
    }
}

/// A link's life after it subscribed: forward messages; on a lost connection, count the
/// outage and retry each second (the event loop reconnects), subscribing again once back.
fn link_loop(
    mut conn: Connection,
    client: Client,
    topic: String,
    feed: u32,
    tx: Sender<Message>,
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<LinkStatus>>,
) {
    for event in conn.iter() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        match event {
            Ok(Event::Incoming(Packet::Publish(p))) => forward(feed, &p, &tx, &status),
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                // Back after an outage: a clean session has no subscriptions.
                let _ = client.try_subscribe(topic.clone(), QoS::AtLeastOnce);
                if let Ok(mut s) = status.lock() {
                    s.connected = true;
                }
            }
            Ok(_) => {}
            Err(e) => {
                if let Ok(mut s) = status.lock() {
                    if s.connected {
                        s.outages += 1;
                    }
                    s.connected = false;
                    s.last_error = Some(e.to_string());
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// A message's text as the five fields of a reading.
pub(crate) fn payload_fields(payload: &str) -> Result<Vec<String>, String> {
    let text = payload.trim();
    if text.is_empty() {
        return Err("an empty message".into());
    }
    if text.starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not a JSON reading: {e}"))?;
        let obj = v.as_object().ok_or("not a JSON object")?;
        let field = |k: &str, required: bool| -> Result<String, String> {
            match obj.get(k) {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
                None | Some(serde_json::Value::Null) if !required => Ok(String::new()),
                None | Some(serde_json::Value::Null) => Err(format!("no '{k}'")),
                Some(other) => Err(format!("'{k}' is {other}, not a string or number")),
            }
        };
        return Ok(vec![
            field("time", false)?,
            field("station", true)?,
            field("quantity", true)?,
            field("value", true)?,
            field("unit", true)?,
        ]);
    }
    if text.contains('\n') {
        return Err("more than one line: one message is one reading".into());
    }
    let f = csv_fields(text);
    if f.len() != 5 {
        return Err(format!(
            "{} fields, not the 5 of time,station,quantity,value,unit",
            f.len()
        ));
    }
    Ok(f)
}

/// Take in the live messages due this step: those that came since the last step, or a
/// recorded run's messages up to now.
pub(crate) fn take_live(
    clock: Res<SimClock>,
    mut feeds: ResMut<Feeds>,
    mut live: ResMut<LiveFeeds>,
) {
    let now = clock.elapsed_s();
    let LiveFeeds {
        feeds: specs,
        source,
    } = &mut *live;
    let max_delay_s = |feed: u32| {
        specs
            .iter()
            .find(|f| f.feed == feed)
            .map_or(f64::INFINITY, |f| f.max_delay_s)
    };
    match source {
        Source::Idle => {}
        Source::Broker { rx, .. } => {
            if let Ok(rx) = rx.get_mut() {
                for m in rx.try_iter() {
                    feeds.take_message(m.feed, &m.topic, &m.payload, now, max_delay_s(m.feed));
                }
            }
        }
        Source::Recorded { messages, next } => {
            while let Some(m) = messages.get(*next).filter(|m| m.arrival_s <= now) {
                feeds.take_message(
                    m.feed,
                    &m.topic,
                    &m.payload,
                    m.arrival_s,
                    max_delay_s(m.feed),
                );
                *next += 1;
            }
        }
    }
}

impl Feeds {
    /// Take in one live message (a reading as a CSV row or a JSON object) from feed `feed`'s
    /// `topic`, arrived at simulated time `arrival_s`; it is late when its time is more than
    /// `max_delay_s` behind that. Returns its status (`ok` or the kind of bad reading).
    pub fn take_message(
        &mut self,
        feed: u32,
        topic: &str,
        payload: &str,
        arrival_s: f64,
        max_delay_s: f64,
    ) -> &'static str {
        self.take(Incoming {
            feed,
            channel: Channel::Mqtt,
            origin: topic.to_string(),
            payload: payload.to_string(),
            fields: payload_fields(payload),
            arrival: Some((arrival_s, max_delay_s)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_addresses_are_read_or_refused_with_the_reason() {
        let u = MqttUrl::parse("mqtt://127.0.0.1:18830/city/sensors/#").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.topic.as_str()),
            ("127.0.0.1", 18830, "city/sensors/#")
        );
        let u = MqttUrl::parse("mqtt://broker.city/+/rain").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("broker.city", 1883));
        for (bad, why) in [
            ("mqtts://b/t", "TLS"),
            ("http://b/t", "not an mqtt://"),
            ("mqtt://b", "no topic"),
            ("mqtt://b:0/t", "port '0'"),
            ("mqtt://b:x/t", "port 'x'"),
            ("mqtt://u:p@b/t", "passwords"),
            ("mqtt://b/a#/c", "wildcard"),
            ("mqtt://b/#/c", "wildcard"),
            ("mqtt://b/a+", "wildcard"),
            ("mqtt:///t", "no broker host"),
        ] {
            let e = MqttUrl::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn payloads_are_csv_rows_or_json_objects() {
        assert_eq!(
            payload_fields("60,HF-RG1,rain,12.5,mm/h\n").unwrap(),
            ["60", "HF-RG1", "rain", "12.5", "mm/h"]
        );
        assert_eq!(
            payload_fields(r#"{"station":"HF-RG1","quantity":"rain","value":12.5,"unit":"mm/h"}"#)
                .unwrap(),
            ["", "HF-RG1", "rain", "12.5", "mm/h"]
        );
        assert_eq!(
            payload_fields(r#"{"time":"2024-07-01T10:00:00+02:00","station":"S","quantity":"NO2","value":"40","unit":"ug/m3"}"#)
                .unwrap()[0],
            "2024-07-01T10:00:00+02:00"
        );
        for (bad, why) in [
            ("", "empty"),
            ("1,2,3", "3 fields"),
            ("{\"station\":1", "not a JSON reading"),
            ("[1,2]", "fields"),
            (
                r#"{"station":"S","quantity":"rain","unit":"mm/h"}"#,
                "no 'value'",
            ),
            (
                r#"{"station":"S","quantity":"rain","value":[1],"unit":"mm/h"}"#,
                "'value' is [1]",
            ),
            ("1,S,rain,2,mm/h\n2,S,rain,2,mm/h", "more than one line"),
        ] {
            let e = payload_fields(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }
}
