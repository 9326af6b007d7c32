//! Errors of the traffic simulation.

use std::path::PathBuf;

/// Why a network or demand file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Malformed XML or an element that makes no sense, at a line.
    #[error("{}:{line}: {message}", file.display())]
    Xml {
        /// The file.
        file: PathBuf,
        /// The line the element starts on.
        line: usize,
        /// The element and what is wrong with it.
        message: String,
    },
    /// The network or demand as a whole is inconsistent (e.g. a route over unconnected edges).
    #[error("{}: {message}", file.display())]
    Inconsistent {
        /// The file.
        file: PathBuf,
        /// What is wrong, naming the element.
        message: String,
    },
}
