//! The readings a run took in from its sensor feeds (`readings` table): every one, good or
//! bad, in the order the run took them, so an operator can see what was rejected and why, and
//! a replay of a live run can give its world the same messages at the same moments.

use super::db::vals;
use super::{RunStore, StoreError};

/// Where a reading came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// A file of the scene, read when the world was built.
    File,
    /// A live MQTT subscription, taken in as messages arrived.
    Mqtt,
}

impl Channel {
    /// The name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::File => "file",
            Channel::Mqtt => "mqtt",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "file" => Some(Channel::File),
            "mqtt" => Some(Channel::Mqtt),
            _ => None,
        }
    }
}

/// One reading as taken in: what came, and what the run made of it.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadingRow {
    /// Its place in the run's intake, from 0.
    pub seq: u64,
    /// The scene's `[[feed]]` it came through (0-based).
    pub feed: u32,
    /// File or MQTT.
    pub channel: Channel,
    /// `path:line` for a file, the topic for MQTT.
    pub origin: String,
    /// Simulated time when it was taken in, s (`None` for a file: before the first step).
    pub arrival_s: Option<f64>,
    /// The message as received (a file row's fields joined by commas).
    pub payload: String,
    /// `ok`, or why it was refused: `malformed`, `unknown_station`, `out_of_range`,
    /// `duplicate`, `late`.
    pub status: &'static str,
    /// What was wrong, for a refused reading.
    pub detail: Option<String>,
    /// The station, when the message could be read.
    pub station: Option<String>,
    /// The quantity, when the message could be read.
    pub quantity: Option<String>,
    /// The reading's own time, s after the start.
    pub time_s: Option<f64>,
    /// The value in SI.
    pub value: Option<f64>,
    /// The SI unit.
    pub unit: Option<String>,
}

/// The statuses a reading can have.
pub const READING_STATUSES: [&str; 6] = [
    "ok",
    "malformed",
    "unknown_station",
    "out_of_range",
    "duplicate",
    "late",
];

/// A recorded live message, to give a replayed world (see [`crate::feeds::LiveFeeds`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedMessage {
    /// Its feed.
    pub feed: u32,
    /// Its topic.
    pub topic: String,
    /// Its text.
    pub payload: String,
    /// When the recorded run took it in, s.
    pub arrival_s: f64,
}

impl RunStore {
    /// Append reading rows.
    pub fn append_readings(&self, run: i64, rows: &[ReadingRow]) -> Result<(), StoreError> {
        self.append(
            "readings",
            run,
            rows.iter().map(|r| {
                vec![
                    r.seq.into(),
                    r.feed.into(),
                    r.channel.as_str().into(),
                    (&r.origin).into(),
                    r.arrival_s.into(),
                    (&r.payload).into(),
                    r.status.into(),
                    r.detail.as_deref().into(),
                    r.station.as_deref().into(),
                    r.quantity.as_deref().into(),
                    r.time_s.into(),
                    r.value.into(),
                    r.unit.as_deref().into(),
                ]
            }),
        )
    }

    /// Every reading run `id` took in, in intake order.
    pub fn readings(&self, id: i64) -> Result<Vec<ReadingRow>, StoreError> {
        self.run(id)?;
        self.db(self.db.query(
            "SELECT seq, feed, channel, origin, arrival_s, payload, status, detail, station,
                    quantity, time_s, value, unit
             FROM readings WHERE run_id = $1 ORDER BY seq",
            vals![id],
            |r| {
                let (seq, feed) = (r.get()?, r.get()?);
                let channel: String = r.get()?;
                let (origin, arrival_s, payload) = (r.get()?, r.get()?, r.get()?);
                let status: String = r.get()?;
                Ok(ReadingRow {
                    seq,
                    feed,
                    channel: Channel::parse(&channel).unwrap_or(Channel::File),
                    origin,
                    arrival_s,
                    payload,
                    status: READING_STATUSES
                        .iter()
                        .find(|s| **s == status)
                        .copied()
                        .unwrap_or("malformed"),
                    detail: r.get()?,
                    station: r.get()?,
                    quantity: r.get()?,
                    time_s: r.get()?,
                    value: r.get()?,
                    unit: r.get()?,
                })
            },
        ))
    }

    /// The live messages run `id` took in, in intake order, to give a replay of it.
    pub fn recorded_messages(&self, id: i64) -> Result<Vec<RecordedMessage>, StoreError> {
        self.db(self.db.query(
            "SELECT feed, origin, payload, arrival_s FROM readings
             WHERE run_id = $1 AND channel = 'mqtt' ORDER BY seq",
            vals![id],
            |r| {
                Ok(RecordedMessage {
                    feed: r.get()?,
                    topic: r.get()?,
                    payload: r.get()?,
                    arrival_s: r.get::<Option<f64>>()?.unwrap_or(0.0),
                })
            },
        ))
    }
}
