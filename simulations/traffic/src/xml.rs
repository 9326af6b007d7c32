//! A small layer over quick-xml for SUMO's XML files: elements with their attributes and the
//! line they start on, so that every error names the file, the line and the element.

use std::path::{Path, PathBuf};

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use crate::error::TrafficError;

/// One start (or empty) element: its name, attributes and line.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub line: usize,
}

impl Element {
    /// An attribute's value, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// How the element is named in messages: `<edge id="A0B0">`.
    pub fn describe(&self) -> String {
        match self.get("id") {
            Some(id) => format!("<{} id=\"{id}\">", self.name),
            None => format!("<{}>", self.name),
        }
    }
}

/// Reads the elements of one file in document order, with their nesting depth.
pub(crate) struct XmlFile<'a> {
    path: PathBuf,
    text: &'a str,
    reader: Reader<&'a [u8]>,
    depth: usize,
    /// Line counting is incremental: the byte offset and line reached so far.
    counted: (usize, usize),
    /// The end of an empty element, reported after its start.
    pending_end: Option<usize>,
}

/// What [`XmlFile::next`] yields.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) enum Item {
    /// An element starts at this depth (1 = the root).
    Start(Element, usize),
    /// The element at this depth ends.
    End(usize),
}

impl<'a> XmlFile<'a> {
    pub fn new(path: &Path, text: &'a str) -> Self {
        let mut reader = Reader::from_str(text);
        reader.config_mut().trim_text(true);
        Self {
            path: path.to_path_buf(),
            text,
            reader,
            depth: 0,
            counted: (0, 1),
            pending_end: None,
        }
    }

    fn line_at(&mut self, pos: usize) -> usize {
        let pos = pos.min(self.text.len());
        let (from, mut line) = self.counted;
        if pos >= from {
            line += self.text.as_bytes()[from..pos]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            self.counted = (pos, line);
            line
        } else {
            1 + self.text.as_bytes()[..pos]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
        }
    }

    /// An error at `line` about `what`.
    pub fn error(&self, line: usize, what: impl Into<String>) -> TrafficError {
        TrafficError::Xml {
            file: self.path.clone(),
            line,
            message: what.into(),
        }
    }

    fn element(&mut self, e: &BytesStart<'_>, start: usize) -> Result<Element, TrafficError> {
        // `start` is where the previous event ended; the element begins at the next '<'.
        let at = start
            + self.text[start.min(self.text.len())..]
                .find('<')
                .unwrap_or(0);
        let line = self.line_at(at);
        let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
        let mut attrs = Vec::new();
        for a in e.attributes() {
            let a = a.map_err(|err| self.error(line, format!("<{name}>: bad attribute: {err}")))?;
            let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
            let value = a
                .unescape_value()
                .map_err(|err| self.error(line, format!("<{name}> {key}: {err}")))?
                .into_owned();
            attrs.push((key, value));
        }
        Ok(Element { name, attrs, line })
    }

    /// The next element start or end; `None` at the end of the document.
    pub fn next(&mut self) -> Result<Option<Item>, TrafficError> {
        if let Some(d) = self.pending_end.take() {
            return Ok(Some(Item::End(d)));
        }
        loop {
            let start = self.reader.buffer_position() as usize;
            let ev = match self.reader.read_event() {
                Ok(ev) => ev,
                Err(err) => {
                    let line = self.line_at(self.reader.error_position() as usize);
                    return Err(self.error(line, format!("malformed XML: {err}")));
                }
            };
            match ev {
                Event::Start(e) => {
                    self.depth += 1;
                    let el = self.element(&e, start)?;
                    return Ok(Some(Item::Start(el, self.depth)));
                }
                Event::Empty(e) => {
                    // Reported as a start followed by its end.
                    self.depth += 1;
                    let el = self.element(&e, start)?;
                    let d = self.depth;
                    self.pending_end = Some(d);
                    self.depth -= 1;
                    return Ok(Some(Item::Start(el, d)));
                }
                Event::End(_) => {
                    let d = self.depth;
                    self.depth = self.depth.saturating_sub(1);
                    return Ok(Some(Item::End(d)));
                }
                Event::Eof => {
                    if self.depth != 0 {
                        let line = self.line_at(self.text.len());
                        return Err(self.error(line, "the document ends inside an element"));
                    }
                    return Ok(None);
                }
                _ => {}
            }
        }
    }
}

/// Parse a number attribute, naming the element and attribute on failure.
pub(crate) fn num(f: &XmlFile<'_>, el: &Element, key: &str) -> Result<f64, TrafficError> {
    let v = el
        .get(key)
        .ok_or_else(|| f.error(el.line, format!("{} has no '{key}'", el.describe())))?;
    parse_num(f, el, key, v)
}

/// An optional number attribute.
pub(crate) fn num_opt(
    f: &XmlFile<'_>,
    el: &Element,
    key: &str,
) -> Result<Option<f64>, TrafficError> {
    el.get(key).map(|v| parse_num(f, el, key, v)).transpose()
}

fn parse_num(f: &XmlFile<'_>, el: &Element, key: &str, v: &str) -> Result<f64, TrafficError> {
    match v.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(f.error(
            el.line,
            format!("{} {key}=\"{v}\" is not a number", el.describe()),
        )),
    }
}

/// A required string attribute.
pub(crate) fn text<'e>(
    f: &XmlFile<'_>,
    el: &'e Element,
    key: &str,
) -> Result<&'e str, TrafficError> {
    el.get(key)
        .ok_or_else(|| f.error(el.line, format!("{} has no '{key}'", el.describe())))
}

/// Parse a SUMO shape `"x,y x,y …"`.
pub(crate) fn shape(
    f: &XmlFile<'_>,
    el: &Element,
    key: &str,
) -> Result<Option<Vec<[f64; 2]>>, TrafficError> {
    let Some(v) = el.get(key) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for p in v.split_whitespace() {
        let mut it = p.split(',');
        let (x, y) = (it.next(), it.next());
        match (
            x.and_then(|x| x.parse::<f64>().ok()),
            y.and_then(|y| y.parse::<f64>().ok()),
        ) {
            (Some(x), Some(y)) if x.is_finite() && y.is_finite() => out.push([x, y]),
            _ => {
                return Err(f.error(
                    el.line,
                    format!("{} {key}: '{p}' is not an x,y point", el.describe()),
                ));
            }
        }
    }
    Ok(Some(out))
}
