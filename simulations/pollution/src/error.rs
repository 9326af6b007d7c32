//! Errors of the pollution simulation.

use std::path::PathBuf;

/// Why an input file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PollutionError {
    /// The file could not be read, or is empty.
    #[error("{}: {message}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A row that makes no sense.
    #[error("{}:{line}: {message}", file.display())]
    Parse {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: usize,
        /// The column and what is wrong with it.
        message: String,
    },
}
