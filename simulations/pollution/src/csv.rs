//! A small CSV reader for weather and station-reading files: a header row, comma-separated
//! fields, `#` comments, errors that name the file, line and column.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::PollutionError;

/// A parsed CSV file.
pub(crate) struct Table<'a> {
    file: PathBuf,
    columns: HashMap<String, usize>,
    rows: Vec<(usize, Vec<&'a str>)>,
}

/// One data row.
pub(crate) struct Row<'t, 'a> {
    table: &'t Table<'a>,
    fields: &'t [&'a str],
    /// The 1-based line in the file.
    pub line: usize,
}

/// A file's text; the error names the file and what it was meant to be (`"weather file"`).
pub(crate) fn read_text(file: &Path, what: &str) -> Result<String, PollutionError> {
    std::fs::read_to_string(file).map_err(|e| PollutionError::Io {
        file: file.to_path_buf(),
        message: format!("cannot read the {what}: {e}"),
    })
}

impl<'a> Table<'a> {
    /// Split `text` into a header and rows; blank lines and lines starting with `#` are skipped.
    pub fn parse(file: &Path, text: &'a str) -> Result<Self, PollutionError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        let Some((hline, header)) = lines.next() else {
            return Err(PollutionError::Io {
                file: file.to_path_buf(),
                message: "the file is empty (no header row)".into(),
            });
        };
        let mut columns = HashMap::new();
        for (i, c) in header.split(',').enumerate() {
            if columns.insert(c.trim().to_string(), i).is_some() {
                return Err(PollutionError::Parse {
                    file: file.to_path_buf(),
                    line: hline,
                    message: format!("column `{}` appears twice", c.trim()),
                });
            }
        }
        let n = columns.len();
        let mut rows = Vec::new();
        for (line, l) in lines {
            let fields: Vec<&str> = l.split(',').map(str::trim).collect();
            if fields.len() != n {
                return Err(PollutionError::Parse {
                    file: file.to_path_buf(),
                    line,
                    message: format!("{} fields, but the header names {n}", fields.len()),
                });
            }
            rows.push((line, fields));
        }
        Ok(Self {
            file: file.to_path_buf(),
            columns,
            rows,
        })
    }

    /// Whether the header names `col`.
    pub fn has(&self, col: &str) -> bool {
        self.columns.contains_key(col)
    }

    /// An error at the header unless it names every one of `cols`, and `time_s` or `time`.
    pub fn require(&self, cols: &[&str]) -> Result<(), PollutionError> {
        let header = |message: String| PollutionError::Parse {
            file: self.file.clone(),
            line: 1,
            message,
        };
        if !self.has("time_s") && !self.has("time") {
            return Err(header("no `time_s` or `time` column".into()));
        }
        match cols.iter().find(|c| !self.has(c)) {
            Some(c) => Err(header(format!("no `{c}` column"))),
            None => Ok(()),
        }
    }

    /// The data rows in file order.
    pub fn rows(&self) -> impl Iterator<Item = Row<'_, 'a>> {
        self.rows.iter().map(|(line, f)| Row {
            table: self,
            fields: f,
            line: *line,
        })
    }
}

impl Row<'_, '_> {
    fn err(&self, message: String) -> PollutionError {
        PollutionError::Parse {
            file: self.table.file.clone(),
            line: self.line,
            message,
        }
    }

    /// The field in `col`, if the column exists.
    pub fn opt_str(&self, col: &str) -> Option<&str> {
        self.table.columns.get(col).map(|&i| self.fields[i])
    }

    /// The field in `col`; an error if the column is missing.
    pub fn str(&self, col: &str) -> Result<&str, PollutionError> {
        self.opt_str(col)
            .ok_or_else(|| self.err(format!("no `{col}` column")))
    }

    /// A number in `col`, if the column exists and the field is not empty.
    pub fn opt_f64(&self, col: &str) -> Result<Option<f64>, PollutionError> {
        match self.opt_str(col) {
            None | Some("") => Ok(None),
            Some(s) => match s.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Some(v)),
                _ => Err(self.err(format!("column `{col}`: '{s}' is not a number"))),
            },
        }
    }

    /// The row's time in seconds after the scene start: `time_s`, or `time` as an RFC 3339 time
    /// (e.g. `2026-07-15T07:30:00+08:00`) less the scene start `start_unix_s`.
    pub fn time_s(&self, start_unix_s: f64) -> Result<f64, PollutionError> {
        if let Some(t) = self.opt_f64("time_s")? {
            return Ok(t);
        }
        let s = self.str("time")?;
        let ts: jiff::Timestamp = s
            .parse()
            .map_err(|e| self.err(format!("column `time`: '{s}' is not an RFC 3339 time: {e}")))?;
        Ok(ts.as_millisecond() as f64 / 1000.0 - start_unix_s)
    }

    /// A number in `col`.
    pub fn f64(&self, col: &str) -> Result<f64, PollutionError> {
        self.opt_f64(col)?
            .ok_or_else(|| self.err(format!("column `{col}` is empty or missing")))
    }
}
