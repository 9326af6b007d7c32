//! Trip records in SUMO's tripinfo XML format, so any SUMO tooling (and
//! `shared/scripts/tripstats.py`) reads citytwin runs and SUMO runs alike.
//!
//! The file is valid XML after every write: records go before the closing tag, which is written
//! again after each batch.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::net::Network;
use crate::sim::TripRecord;

const CLOSE: &str = "</tripinfos>\n";

/// Appends trip records to a tripinfo file.
pub struct TripinfoWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl TripinfoWriter {
    /// Create (or truncate) the file.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let mut out = BufWriter::new(File::create(path)?);
        out.write_all(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- written by citytwin's traffic simulation -->\n<tripinfos>\n",
        )?;
        out.write_all(CLOSE.as_bytes())?;
        out.flush()?;
        Ok(Self {
            path: path.to_path_buf(),
            out,
        })
    }

    /// Whether `path` could be written, without touching what it holds: creates the folder and,
    /// if the file does not exist yet, an empty file.
    pub fn check_writable(path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map(|_| ())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append records.
    pub fn write(&mut self, net: &Network, trips: &[TripRecord]) -> std::io::Result<()> {
        if trips.is_empty() {
            return Ok(());
        }
        self.out.seek(SeekFrom::End(-(CLOSE.len() as i64)))?;
        for t in trips {
            writeln!(
                self.out,
                "    <tripinfo id=\"{}\" depart=\"{:.2}\" departDelay=\"{:.2}\" departLane=\"{}_0\" arrival=\"{:.2}\" arrivalLane=\"{}_0\" duration=\"{:.2}\" routeLength=\"{:.2}\" waitingTime=\"{:.2}\" timeLoss=\"{:.2}\" rerouteNo=\"0\" vType=\"{}\" teleports=\"{}\"/>",
                xml_escape(&t.id),
                t.depart_s,
                t.depart_s - t.planned_depart_s,
                xml_escape(&net.edges[t.depart_edge as usize].id),
                t.arrival_s,
                xml_escape(&net.edges[t.arrival_edge as usize].id),
                t.duration_s(),
                t.route_length_m,
                t.waiting_s,
                t.time_loss_s,
                xml_escape(&t.vtype),
                t.teleports,
            )?;
        }
        self.out.write_all(CLOSE.as_bytes())?;
        self.out.flush()
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Mean travel time, mean time loss and travel-time index of a set of trips, as
/// `tripstats.py` computes them: TTI = Σ duration / Σ (duration − timeLoss).
pub fn summary(trips: &[TripRecord]) -> TripSummary {
    let n = trips.len();
    let dur: f64 = trips.iter().map(|t| t.duration_s()).sum();
    let loss: f64 = trips.iter().map(|t| t.time_loss_s).sum();
    TripSummary {
        arrived: n,
        mean_travel_time_s: if n > 0 { dur / n as f64 } else { f64::NAN },
        mean_time_loss_s: if n > 0 { loss / n as f64 } else { f64::NAN },
        travel_time_index: if dur > loss {
            dur / (dur - loss)
        } else {
            f64::NAN
        },
        mean_route_length_m: if n > 0 {
            trips.iter().map(|t| t.route_length_m).sum::<f64>() / n as f64
        } else {
            f64::NAN
        },
        mean_waiting_s: if n > 0 {
            trips.iter().map(|t| t.waiting_s).sum::<f64>() / n as f64
        } else {
            f64::NAN
        },
    }
}

/// Trip statistics of a run.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct TripSummary {
    /// Trips.
    pub arrived: usize,
    /// Mean travel time, s.
    pub mean_travel_time_s: f64,
    /// Mean time loss, s.
    pub mean_time_loss_s: f64,
    /// Travel-time (congestion) index.
    pub travel_time_index: f64,
    /// Mean distance driven, m.
    pub mean_route_length_m: f64,
    /// Mean time standing, s.
    pub mean_waiting_s: f64,
}
