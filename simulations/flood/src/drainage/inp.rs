//! EPA SWMM 5 input files (`.inp`) into a [`NetworkSpec`], in SI units.
//!
//! What the drainage solver models is read: options, rain gauges on time series,
//! subcatchments with their subareas and infiltration (Horton, modified Horton, Green–Ampt,
//! modified Green–Ampt, curve number), junctions, outfalls (free, normal, fixed, tidal, time
//! series; flap gates), storage units (functional, tabular, cylindrical), conduits (circular,
//! force main as circular, closed and open rectangular, trapezoidal, triangular; barrels,
//! offsets as depths or elevations, losses, flap gates), pumps (ideal and types 1–4), orifices,
//! weirs (transverse, side-flow, V-notch, trapezoidal), external inflows with patterns,
//! dry-weather flows, curves, time series, patterns, coordinates and vertices. Sections that
//! carry what it does not model (water quality, snow, groundwater, LIDs, controls, …) are named
//! in [`InpModel::warnings`], never dropped silently; options it does not honour likewise. A
//! malformed line is an [`InpError`] naming the file, the line and the section.

use std::collections::BTreeMap;
use std::path::Path;

use super::spec::*;

/// A malformed `.inp` file: where and what.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct InpError {
    /// The file.
    pub file: String,
    /// 1-based line (0: the file as a whole).
    pub line: usize,
    /// The section, upper case.
    pub section: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for InpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.section.is_empty()) {
            (0, true) => write!(f, "{}: {}", self.file, self.message),
            (0, false) => write!(f, "{}: [{}] {}", self.file, self.section, self.message),
            (l, true) => write!(f, "{}:{l}: {}", self.file, self.message),
            (l, false) => write!(f, "{}:{l}: [{}] {}", self.file, self.section, self.message),
        }
    }
}

impl std::error::Error for InpError {}

/// A SWMM model read from a file.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct InpModel {
    /// The network, in SI units.
    pub spec: NetworkSpec,
    /// Its title.
    pub title: String,
    /// The flow unit the file uses (`CFS`, `LPS`, …); reports convert back to it.
    pub flow_units: FlowUnits,
    /// Report step, s.
    pub report_step_s: f64,
    /// What the file holds that is not modelled, one line each.
    pub warnings: Vec<String>,
}

/// SWMM's flow units, which also fix the other units of the file (US or SI).
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowUnits {
    /// ft³/s (US).
    Cfs,
    /// US gallons per minute.
    Gpm,
    /// Million US gallons per day.
    Mgd,
    /// m³/s (SI).
    Cms,
    /// L/s (SI).
    Lps,
    /// Million litres per day (SI).
    Mld,
}

impl FlowUnits {
    /// m³/s per unit of flow.
    pub fn m3s(self) -> f64 {
        match self {
            FlowUnits::Cfs => FT3,
            FlowUnits::Gpm => 6.309_019_640_343_866e-5,
            FlowUnits::Mgd => 0.043_812_636_388_888_89,
            FlowUnits::Cms => 1.0,
            FlowUnits::Lps => 1e-3,
            FlowUnits::Mld => 1e3 / 86_400.0,
        }
    }

    /// Whether the file's other units are US customary.
    pub fn is_us(self) -> bool {
        matches!(self, FlowUnits::Cfs | FlowUnits::Gpm | FlowUnits::Mgd)
    }

    /// Its name as SWMM writes it.
    pub fn name(self) -> &'static str {
        match self {
            FlowUnits::Cfs => "CFS",
            FlowUnits::Gpm => "GPM",
            FlowUnits::Mgd => "MGD",
            FlowUnits::Cms => "CMS",
            FlowUnits::Lps => "LPS",
            FlowUnits::Mld => "MLD",
        }
    }
}

/// One foot, m.
pub const FT: f64 = 0.3048;
const FT3: f64 = FT * FT * FT;

/// The other units of a file, as factors to SI.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug)]
struct Units {
    /// Length (ft or m) → m.
    length: f64,
    /// Land area (acre or ha) → m².
    land_area: f64,
    /// Rain rate (in/h or mm/h) → m/s.
    rain_rate: f64,
    /// Rain or storage depth (in or mm) → m.
    rain_depth: f64,
    /// Flow → m³/s.
    flow: f64,
}

impl Units {
    fn of(f: FlowUnits) -> Self {
        if f.is_us() {
            Self {
                length: FT,
                land_area: 4_046.856_422_4,
                rain_rate: 0.0254 / 3600.0,
                rain_depth: 0.0254,
                flow: f.m3s(),
            }
        } else {
            Self {
                length: 1.0,
                land_area: 1e4,
                rain_rate: 1e-3 / 3600.0,
                rain_depth: 1e-3,
                flow: f.m3s(),
            }
        }
    }
}

/// Read a `.inp` file.
pub fn read_inp(path: &Path) -> Result<InpModel, InpError> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| InpError {
        file: label.clone(),
        line: 0,
        section: String::new(),
        message: format!("cannot read it: {e}"),
    })?;
    parse_inp(&text, &label, path.parent())
}

/// A line of a section: its tokens and where it is.
#[derive(serde::Serialize, serde::Deserialize)]
struct Line {
    no: usize,
    toks: Vec<String>,
}

/// Split a line into SWMM's tokens: whitespace separated, `"…"` may hold spaces (and `""` is
/// an empty token), `;` starts a comment.
fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut has = false;
    for ch in s.chars() {
        if quoted {
            if ch == '"' {
                quoted = false;
            } else {
                cur.push(ch);
            }
            continue;
        }
        match ch {
            ';' => break,
            '"' => {
                quoted = true;
                has = true;
            }
            c if c.is_whitespace() => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => {
                cur.push(c);
                has = true;
            }
        }
    }
    if has {
        out.push(cur);
    }
    out
}

/// SWMM's names ignore case: maps of names are keyed by this.
fn key(name: &str) -> String {
    name.to_ascii_uppercase()
}

/// Sections this reader understands.
const KNOWN: &[&str] = &[
    "TITLE",
    "OPTIONS",
    "EVAPORATION",
    "RAINGAGES",
    "SUBCATCHMENTS",
    "SUBAREAS",
    "INFILTRATION",
    "JUNCTIONS",
    "OUTFALLS",
    "STORAGE",
    "CONDUITS",
    "PUMPS",
    "ORIFICES",
    "WEIRS",
    "XSECTIONS",
    "LOSSES",
    "INFLOWS",
    "DWF",
    "CURVES",
    "TIMESERIES",
    "PATTERNS",
    "REPORT",
    "TAGS",
    "MAP",
    "COORDINATES",
    "VERTICES",
    "POLYGONS",
    "SYMBOLS",
    "LABELS",
    "BACKDROP",
    "PROFILES",
];

/// Sections with content the solver does not model, and what that content is.
fn unsupported(section: &str) -> Option<&'static str> {
    Some(match section {
        "POLLUTANTS" | "LANDUSES" | "COVERAGES" | "LOADINGS" | "BUILDUP" | "WASHOFF"
        | "TREATMENT" => "water quality is not modelled",
        "SNOWPACKS" | "TEMPERATURE" | "ADJUSTMENTS" => {
            "snow melt and climate adjustments are not modelled"
        }
        "AQUIFERS" | "GROUNDWATER" | "GWF" => "groundwater is not modelled",
        "RDII" | "HYDROGRAPHS" | "UNITHYD" => {
            "rainfall-dependent infiltration/inflow is not modelled"
        }
        "LID_CONTROLS" | "LID_USAGE" => "low-impact development controls are not modelled",
        "CONTROLS" => "control rules are not applied",
        "DIVIDERS" => "flow dividers are not modelled",
        "OUTLETS" => "outlet links are not modelled",
        "TRANSECTS" => "irregular cross-sections are not modelled",
        "STREETS" | "INLETS" | "INLET_USAGE" => {
            "street inlets are not modelled (the 2D surface's inlets are)"
        }
        "FILES" | "EVENTS" => "this section is not used",
        _ => return None,
    })
}

struct Reader<'a> {
    file: &'a str,
    dir: Option<&'a Path>,
    sections: BTreeMap<String, Vec<Line>>,
    warnings: Vec<String>,
    units: Units,
}

impl<'a> Reader<'a> {
    fn err(&self, section: &str, line: usize, message: impl Into<String>) -> InpError {
        InpError {
            file: self.file.to_string(),
            line,
            section: section.to_string(),
            message: message.into(),
        }
    }

    fn lines(&self, section: &str) -> &[Line] {
        self.sections
            .get(section)
            .map(|v| v.as_slice())
            .unwrap_or(&[])
    }

    fn num(&self, section: &str, l: &Line, i: usize, what: &str) -> Result<f64, InpError> {
        let t = l.toks.get(i).ok_or_else(|| {
            self.err(
                section,
                l.no,
                format!("`{}`: missing {what} (field {})", l.toks[0], i + 1),
            )
        })?;
        t.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                self.err(
                    section,
                    l.no,
                    format!("`{}`: {what} '{t}' is not a number", l.toks[0]),
                )
            })
    }

    fn num_or(
        &self,
        section: &str,
        l: &Line,
        i: usize,
        what: &str,
        default: f64,
    ) -> Result<f64, InpError> {
        match l.toks.get(i) {
            None => Ok(default),
            Some(t) if t.is_empty() || t == "*" => Ok(default),
            Some(_) => self.num(section, l, i, what),
        }
    }

    fn non_neg(
        &self,
        section: &str,
        l: &Line,
        i: usize,
        what: &str,
        default: f64,
    ) -> Result<f64, InpError> {
        let v = self.num_or(section, l, i, what, default)?;
        if v < 0.0 {
            return Err(self.err(
                section,
                l.no,
                format!("`{}`: {what} {v} is negative", l.toks[0]),
            ));
        }
        Ok(v)
    }

    /// What field `i` of `l` names in `map` (names ignore case): a curve, a series, a
    /// pattern. The error says which object needs it and where it should be defined.
    fn named<'m, T>(
        &self,
        section: &str,
        l: &Line,
        i: usize,
        map: &'m BTreeMap<String, T>,
        what: &str,
        home: &str,
    ) -> Result<&'m T, InpError> {
        let t = l.toks.get(i).filter(|t| !t.is_empty()).ok_or_else(|| {
            self.err(
                section,
                l.no,
                format!("`{}`: needs a {what} (field {})", l.toks[0], i + 1),
            )
        })?;
        map.get(&key(t)).ok_or_else(|| {
            self.err(
                section,
                l.no,
                format!("`{}`: {what} `{t}` is not in [{home}]", l.toks[0]),
            )
        })
    }

    fn need(&self, section: &str, l: &Line, n: usize, what: &str) -> Result<(), InpError> {
        if l.toks.len() < n {
            return Err(self.err(
                section,
                l.no,
                format!(
                    "`{}`: needs at least {n} fields ({what}), has {}",
                    l.toks[0],
                    l.toks.len()
                ),
            ));
        }
        Ok(())
    }

    fn yes_no(&self, section: &str, l: &Line, i: usize) -> Result<bool, InpError> {
        match l.toks.get(i).map(|s| s.to_ascii_uppercase()) {
            None => Ok(false),
            Some(s) if s == "YES" => Ok(true),
            Some(s) if s == "NO" || s.is_empty() => Ok(false),
            Some(s) => Err(self.err(
                section,
                l.no,
                format!("`{}`: '{s}' is not YES or NO", l.toks[0]),
            )),
        }
    }
}

/// Parse the text of a `.inp` file; `file` names it in errors, `dir` resolves external files.
pub fn parse_inp(text: &str, file: &str, dir: Option<&Path>) -> Result<InpModel, InpError> {
    let mut sections: BTreeMap<String, Vec<Line>> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut title = String::new();
    let mut warnings = Vec::new();
    let mut unknown: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let no = i + 1;
        let trimmed = raw.trim();
        if trimmed.starts_with('[') {
            let name = trimmed
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_uppercase();
            current = Some(name);
            continue;
        }
        let Some(sec) = &current else {
            if !tokens(trimmed).is_empty() {
                return Err(InpError {
                    file: file.to_string(),
                    line: no,
                    section: String::new(),
                    message: "text before the first [SECTION]".into(),
                });
            }
            continue;
        };
        if sec == "TITLE" {
            if !trimmed.starts_with(";;") && !trimmed.is_empty() {
                if !title.is_empty() {
                    title.push('\n');
                }
                title.push_str(trimmed);
            }
            continue;
        }
        let toks = tokens(raw);
        if toks.is_empty() {
            continue;
        }
        if KNOWN.contains(&sec.as_str()) {
            sections
                .entry(sec.clone())
                .or_default()
                .push(Line { no, toks });
        } else {
            let e = unknown.entry(sec.clone()).or_insert((no, 0));
            e.1 += 1;
        }
    }
    for (sec, (first, n)) in &unknown {
        let what = unsupported(sec).unwrap_or("an unknown section");
        warnings.push(format!(
            "{file}:{first}: [{sec}] ignored ({n} line{}): {what}",
            if *n == 1 { "" } else { "s" }
        ));
    }
    let mut r = Reader {
        file,
        dir,
        sections,
        warnings,
        units: Units::of(FlowUnits::Cfs),
    };
    let (options, flow_units, report_step_s) = read_options(&mut r)?;
    r.units = Units::of(flow_units);
    let mut spec = NetworkSpec {
        options,
        ..Default::default()
    };
    read_evaporation(&mut r, &mut spec)?;
    let curves = read_curves(&r)?;
    let series = read_series(&r, spec.options.start_epoch_s)?;
    let patterns = read_patterns(&r)?;
    read_gauges(&mut r, &mut spec, &series)?;
    read_nodes(&mut r, &mut spec, &curves, &series)?;
    read_links(&mut r, &mut spec, &curves)?;
    read_subcatchments(&mut r, &mut spec)?;
    read_inflows(&mut r, &mut spec, &series, &patterns)?;
    read_map(&mut r, &mut spec)?;
    // Validation that needs the whole network.
    if !spec
        .nodes
        .iter()
        .any(|n| matches!(n.kind, NodeKind::Outfall(_)))
        && !spec.links.is_empty()
    {
        return Err(r.err(
            "OUTFALLS",
            0,
            "the network has no outfall: water would have nowhere to go",
        ));
    }
    Ok(InpModel {
        spec,
        title,
        flow_units,
        report_step_s,
        warnings: r.warnings,
    })
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `MM/DD/YYYY` (or `YYYY-MM-DD`) as seconds since 1970.
fn parse_date(s: &str) -> Option<f64> {
    let (y, m, d) = if s.contains('/') {
        let p: Vec<&str> = s.split('/').collect();
        if p.len() != 3 {
            return None;
        }
        (p[2].parse().ok()?, p[0].parse().ok()?, p[1].parse().ok()?)
    } else {
        let p: Vec<&str> = s.split('-').collect();
        if p.len() != 3 {
            return None;
        }
        (p[0].parse().ok()?, p[1].parse().ok()?, p[2].parse().ok()?)
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d) as f64 * 86_400.0)
}

/// `H:MM[:SS]` or decimal hours, as seconds.
fn parse_time(s: &str) -> Option<f64> {
    if s.contains(':') {
        let p: Vec<&str> = s.split(':').collect();
        if p.len() > 3 {
            return None;
        }
        let mut t = 0.0;
        for (k, v) in p.iter().enumerate() {
            let x: f64 = v.parse().ok()?;
            if x < 0.0 {
                return None;
            }
            t += x * [3600.0, 60.0, 1.0][k];
        }
        Some(t)
    } else {
        let h: f64 = s.parse().ok()?;
        (h.is_finite() && h >= 0.0).then_some(h * 3600.0)
    }
}

fn read_options(r: &mut Reader) -> Result<(Options, FlowUnits, f64), InpError> {
    let mut o = Options::default();
    let mut flow_units = FlowUnits::Cfs;
    let mut start_date = None;
    let mut start_time = 0.0;
    let mut end_date = None;
    let mut end_time = 0.0;
    let mut report_step_s = 900.0;
    let mut warn = Vec::new();
    let sec = "OPTIONS";
    // Values first as text: lengths depend on the flow units, which may come later.
    let mut head_tol = None;
    let mut min_area = None;
    for l in r.lines(sec) {
        let key = l.toks[0].to_ascii_uppercase();
        let val = l.toks.get(1).cloned().unwrap_or_default();
        let v_up = val.to_ascii_uppercase();
        let bad = |what: &str| r.err(sec, l.no, format!("{key}: '{val}' is not {what}"));
        let num = || val.parse::<f64>().ok().filter(|v| v.is_finite());
        let time = || parse_time(&val);
        match key.as_str() {
            "FLOW_UNITS" => {
                flow_units = match v_up.as_str() {
                    "CFS" => FlowUnits::Cfs,
                    "GPM" => FlowUnits::Gpm,
                    "MGD" => FlowUnits::Mgd,
                    "CMS" => FlowUnits::Cms,
                    "LPS" => FlowUnits::Lps,
                    "MLD" => FlowUnits::Mld,
                    _ => return Err(bad("CFS, GPM, MGD, CMS, LPS or MLD")),
                }
            }
            "FLOW_ROUTING" => {
                o.routing = match v_up.as_str() {
                    "DYNWAVE" => Routing::Dynamic,
                    "KINWAVE" => Routing::Kinematic,
                    "STEADY" => {
                        warn.push(format!(
                            "{}:{}: [OPTIONS] FLOW_ROUTING STEADY is routed as KINWAVE",
                            r.file, l.no
                        ));
                        Routing::Kinematic
                    }
                    _ => return Err(bad("DYNWAVE, KINWAVE or STEADY")),
                }
            }
            "START_DATE" => {
                start_date = Some(parse_date(&val).ok_or_else(|| bad("a date MM/DD/YYYY"))?)
            }
            "START_TIME" => start_time = time().ok_or_else(|| bad("a time"))?,
            "END_DATE" => {
                end_date = Some(parse_date(&val).ok_or_else(|| bad("a date MM/DD/YYYY"))?)
            }
            "END_TIME" => end_time = time().ok_or_else(|| bad("a time"))?,
            "REPORT_STEP" => report_step_s = time().ok_or_else(|| bad("a time"))?,
            "WET_STEP" => o.wet_step_s = time().ok_or_else(|| bad("a time"))?,
            "DRY_STEP" => o.dry_step_s = time().ok_or_else(|| bad("a time"))?,
            "ROUTING_STEP" => {
                // Seconds, or H:MM:SS.
                o.routing_step_s = if val.contains(':') {
                    time().ok_or_else(|| bad("a time"))?
                } else {
                    num().ok_or_else(|| bad("a number of seconds"))?
                };
                if o.routing_step_s <= 0.0 {
                    return Err(bad("a positive step"));
                }
            }
            "VARIABLE_STEP" => o.courant_factor = num().ok_or_else(|| bad("a number"))?,
            "LENGTHENING_STEP" => o.lengthening_step_s = num().ok_or_else(|| bad("a number"))?,
            "MINIMUM_STEP" => o.min_step_s = num().ok_or_else(|| bad("a number"))?,
            "MIN_SURFAREA" => min_area = Some(num().ok_or_else(|| bad("a number"))?),
            "HEAD_TOLERANCE" => head_tol = Some(num().ok_or_else(|| bad("a number"))?),
            "MAX_TRIALS" => o.max_trials = num().ok_or_else(|| bad("a number"))? as u32,
            "MIN_SLOPE" => o.min_slope = num().ok_or_else(|| bad("a number"))? / 100.0,
            "ALLOW_PONDING" => o.allow_ponding = v_up == "YES",
            "INERTIAL_DAMPING" => {
                o.inertial_damping = match v_up.as_str() {
                    "NONE" => InertialDamping::None,
                    "PARTIAL" => InertialDamping::Partial,
                    "FULL" => InertialDamping::Full,
                    _ => return Err(bad("NONE, PARTIAL or FULL")),
                }
            }
            "NORMAL_FLOW_LIMITED" => {
                o.normal_flow_limit = match v_up.as_str() {
                    "SLOPE" => NormalFlowLimit::Slope,
                    "FROUDE" => NormalFlowLimit::Froude,
                    "BOTH" => NormalFlowLimit::Both,
                    "NEITHER" => NormalFlowLimit::Neither,
                    _ => return Err(bad("SLOPE, FROUDE, BOTH or NEITHER")),
                }
            }
            "SURCHARGE_METHOD" => {
                if v_up != "EXTRAN" {
                    warn.push(format!(
                        "{}:{}: [OPTIONS] SURCHARGE_METHOD {val} is not modelled: surcharge follows EXTRAN",
                        r.file, l.no
                    ));
                }
            }
            "SKIP_STEADY_STATE" => {
                if v_up == "YES" {
                    warn.push(format!(
                        "{}:{}: [OPTIONS] SKIP_STEADY_STATE YES is not honoured: every step is routed",
                        r.file, l.no
                    ));
                }
            }
            "FORCE_MAIN_EQUATION"
            | "LINK_OFFSETS"
            | "INFILTRATION"
            | "REPORT_START_DATE"
            | "REPORT_START_TIME"
            | "SWEEP_START"
            | "SWEEP_END"
            | "DRY_DAYS"
            | "RULE_STEP"
            | "SYS_FLOW_TOL"
            | "LAT_FLOW_TOL"
            | "THREADS"
            | "IGNORE_QUALITY"
            | "IGNORE_SNOWMELT"
            | "IGNORE_GROUNDWATER"
            | "IGNORE_RDII"
            | "IGNORE_ROUTING"
            | "IGNORE_RAINFALL"
            | "COMPATIBILITY" => {}
            _ => warn.push(format!(
                "{}:{}: [OPTIONS] {key} is not known and is ignored",
                r.file, l.no
            )),
        }
    }
    let units = Units::of(flow_units);
    o.head_tolerance_m = head_tol.unwrap_or(0.0) * units.length;
    o.min_surface_area_m2 = min_area.unwrap_or(0.0) * units.length * units.length;
    let start = start_date.unwrap_or(0.0) + start_time;
    o.start_epoch_s = start;
    let end = end_date.or(start_date).unwrap_or(0.0) + end_time;
    o.duration_s = end - start;
    if o.duration_s <= 0.0 {
        return Err(r.err(
            sec,
            0,
            "END_DATE/END_TIME is not after START_DATE/START_TIME",
        ));
    }
    r.warnings.extend(warn);
    Ok((o, flow_units, report_step_s))
}

fn read_evaporation(r: &mut Reader, spec: &mut NetworkSpec) -> Result<(), InpError> {
    let sec = "EVAPORATION";
    let mut warn = Vec::new();
    for l in r.lines(sec) {
        match l.toks[0].to_ascii_uppercase().as_str() {
            "CONSTANT" => {
                let v = r.non_neg(sec, l, 1, "evaporation rate", 0.0)?;
                // in/day or mm/day.
                spec.options.evaporation_mps = v * r.units.rain_depth / 86_400.0;
            }
            "DRY_ONLY" => {}
            other => warn.push(format!(
                "{}:{}: [EVAPORATION] {other} is not modelled: evaporation is 0 unless CONSTANT",
                r.file, l.no
            )),
        }
    }
    r.warnings.extend(warn);
    Ok(())
}

fn read_curves(r: &Reader) -> Result<BTreeMap<String, (String, Curve, usize)>, InpError> {
    let sec = "CURVES";
    let mut out: BTreeMap<String, (String, Curve, usize)> = BTreeMap::new();
    for l in r.lines(sec) {
        let name = &l.toks[0];
        let mut i = 1;
        if let std::collections::btree_map::Entry::Vacant(slot) = out.entry(key(name)) {
            // The first line of a curve names its type.
            let kind = l
                .toks
                .get(1)
                .map(|s| s.to_ascii_uppercase())
                .unwrap_or_default();
            if kind.parse::<f64>().is_err() {
                i = 2;
                slot.insert((kind, Curve::default(), l.no));
            } else {
                slot.insert((String::new(), Curve::default(), l.no));
            }
        }

        let mut pts = Vec::new();
        while i < l.toks.len() {
            let x = r.num(sec, l, i, "x value")?;
            let y = r.num(sec, l, i + 1, "y value")?;
            pts.push((x, y));
            i += 2;
        }
        let c = &mut out.get_mut(&key(name)).expect("inserted above").1;
        for p in pts {
            if let Some(last) = c.points.last()
                && p.0 < last.0
            {
                return Err(r.err(
                    sec,
                    l.no,
                    format!(
                        "curve `{name}`: x values must not decrease ({} after {})",
                        p.0, last.0
                    ),
                ));
            }
            c.points.push(p);
        }
    }
    Ok(out)
}

fn series_file(r: &Reader, sec: &str, l: &Line, path: &str) -> Result<String, InpError> {
    let p = match r.dir {
        Some(d) => d.join(path),
        None => Path::new(path).to_path_buf(),
    };
    std::fs::read_to_string(&p).map_err(|e| {
        r.err(
            sec,
            l.no,
            format!(
                "time series `{}`: cannot read {}: {e}",
                l.toks[0],
                p.display()
            ),
        )
    })
}

/// Time series by name: (time s from the start, value in file units).
fn read_series(r: &Reader, start_epoch_s: f64) -> Result<BTreeMap<String, Series>, InpError> {
    let sec = "TIMESERIES";
    let mut out: BTreeMap<String, Series> = BTreeMap::new();
    // (date, time, value) triples or (time, value) pairs, several to a line.
    let mut add = |name: &str,
                   toks: &[String],
                   no: usize,
                   last_date: &mut Option<f64>|
     -> Result<(), InpError> {
        let s = out.entry(key(name)).or_default();
        let mut i = 0;
        while i < toks.len() {
            let mut date = None;
            if toks[i].contains('/')
                || (toks[i].matches('-').count() == 2 && !toks[i].starts_with('-'))
            {
                date = Some(parse_date(&toks[i]).ok_or_else(|| {
                    r.err(sec, no, format!("`{name}`: '{}' is not a date", toks[i]))
                })?);
                i += 1;
            }
            let t = toks.get(i).and_then(|t| parse_time(t)).ok_or_else(|| {
                r.err(
                    sec,
                    no,
                    format!(
                        "`{name}`: '{}' is not a time",
                        toks.get(i).map(|s| s.as_str()).unwrap_or("")
                    ),
                )
            })?;
            let v = toks
                .get(i + 1)
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    r.err(
                        sec,
                        no,
                        format!(
                            "`{name}`: '{}' is not a value",
                            toks.get(i + 1).map(|s| s.as_str()).unwrap_or("")
                        ),
                    )
                })?;
            i += 2;
            if date.is_some() {
                *last_date = date;
            }
            let at = match last_date {
                Some(d) => *d + t - start_epoch_s,
                None => t,
            };
            if let Some(&(prev, _)) = s.points.last()
                && at <= prev
            {
                return Err(r.err(
                    sec,
                    no,
                    format!("`{name}`: times must increase ({at} s after {prev} s)"),
                ));
            }
            s.points.push((at, v));
        }
        Ok(())
    };
    let mut dates: BTreeMap<String, Option<f64>> = BTreeMap::new();
    for l in r.lines(sec) {
        let name = l.toks[0].clone();
        if l.toks.get(1).map(|s| s.eq_ignore_ascii_case("FILE")) == Some(true) {
            let path = l
                .toks
                .get(2)
                .ok_or_else(|| r.err(sec, l.no, format!("`{name}`: FILE needs a file name")))?;
            let text = series_file(r, sec, l, path)?;
            let mut last = None;
            for (k, line) in text.lines().enumerate() {
                let toks = tokens(line);
                if toks.is_empty() {
                    continue;
                }
                add(&name, &toks, k + 1, &mut last).map_err(|mut e| {
                    e.message = format!("{} (in {path}, line {})", e.message, k + 1);
                    e.line = l.no;
                    e
                })?;
            }
            continue;
        }
        let last = dates.entry(key(&name)).or_default();
        add(&name, &l.toks[1..], l.no, last)?;
    }
    Ok(out)
}

fn read_patterns(r: &Reader) -> Result<BTreeMap<String, Pattern>, InpError> {
    let sec = "PATTERNS";
    let mut raw: BTreeMap<String, (String, Vec<f64>, usize)> = BTreeMap::new();
    for l in r.lines(sec) {
        let name = l.toks[0].clone();
        let mut i = 1;
        if let std::collections::btree_map::Entry::Vacant(slot) = raw.entry(key(&name)) {
            let kind = l
                .toks
                .get(1)
                .map(|s| s.to_ascii_uppercase())
                .unwrap_or_default();
            if !["MONTHLY", "DAILY", "HOURLY", "WEEKEND"].contains(&kind.as_str()) {
                return Err(r.err(
                    sec,
                    l.no,
                    format!("`{name}`: '{kind}' is not MONTHLY, DAILY, HOURLY or WEEKEND"),
                ));
            }
            slot.insert((kind, Vec::new(), l.no));
            i = 2;
        }
        let e = raw.get_mut(&key(&name)).expect("inserted above");
        while i < l.toks.len() {
            e.1.push(r.num(sec, l, i, "factor")?);
            i += 1;
        }
    }
    let mut out = BTreeMap::new();
    for (name, (kind, f, no)) in raw {
        let want = match kind.as_str() {
            "MONTHLY" => 12,
            "DAILY" => 7,
            _ => 24,
        };
        if f.len() != want {
            return Err(r.err(
                sec,
                no,
                format!(
                    "`{name}`: a {kind} pattern needs {want} factors, has {}",
                    f.len()
                ),
            ));
        }
        let p = match kind.as_str() {
            "MONTHLY" => Pattern::Monthly(f.try_into().expect("length checked")),
            "DAILY" => Pattern::Daily(f.try_into().expect("length checked")),
            "HOURLY" => Pattern::Hourly(f.try_into().expect("length checked")),
            _ => Pattern::Weekend(f.try_into().expect("length checked")),
        };
        out.insert(name, p);
    }
    Ok(out)
}

fn read_gauges(
    r: &mut Reader,
    spec: &mut NetworkSpec,
    series: &BTreeMap<String, Series>,
) -> Result<(), InpError> {
    let sec = "RAINGAGES";
    let mut gauges = Vec::new();
    for l in r.lines(sec) {
        r.need(sec, l, 6, "name, format, interval, SCF, source, series")?;
        let name = l.toks[0].clone();
        let format = l.toks[1].to_ascii_uppercase();
        let interval_s = parse_time(&l.toks[2])
            .map(|t| t.round())
            .filter(|t| *t > 0.0)
            .ok_or_else(|| {
                r.err(
                    sec,
                    l.no,
                    format!("`{name}`: interval '{}' is not a time", l.toks[2]),
                )
            })?;
        // The snow catch factor (field 4) scales snowfall only, which is not modelled.
        r.num(sec, l, 3, "snow catch factor")?;
        let source = l.toks[4].to_ascii_uppercase();
        if source != "TIMESERIES" {
            return Err(r.err(
                sec,
                l.no,
                format!("`{name}`: rain from a {source} is not supported; use a TIMESERIES"),
            ));
        }
        let s = r.named(sec, l, 5, series, "time series", "TIMESERIES")?;
        let sname = &l.toks[5];
        let (rate, depth) = (r.units.rain_rate, r.units.rain_depth);
        // Each entry's intensity (m/s) holds for one interval from its time; zeros are gaps.
        let mut entries = Vec::with_capacity(s.points.len());
        let mut accum = 0.0;
        for &(t, v) in &s.points {
            if v < 0.0 {
                return Err(r.err(
                    sec,
                    l.no,
                    format!("`{name}`: series `{sname}` has a negative rain value {v}"),
                ));
            }
            let i = match format.as_str() {
                "INTENSITY" => v * rate,
                "VOLUME" => v * depth / interval_s,
                "CUMULATIVE" => {
                    let d = if v < accum { v } else { v - accum };
                    accum = v;
                    d * depth / interval_s
                }
                _ => {
                    return Err(r.err(
                        sec,
                        l.no,
                        format!(
                            "`{name}`: format '{format}' is not INTENSITY, VOLUME or CUMULATIVE"
                        ),
                    ));
                }
            };
            if i > 0.0 {
                entries.push((t, i));
            }
        }
        gauges.push(GaugeSpec {
            name,
            entries,
            interval_s,
            xy: None,
        });
    }
    spec.gauges = gauges;
    Ok(())
}

fn read_nodes(
    r: &mut Reader,
    spec: &mut NetworkSpec,
    curves: &BTreeMap<String, (String, Curve, usize)>,
    series: &BTreeMap<String, Series>,
) -> Result<(), InpError> {
    let u = r.units;
    let mut nodes: Vec<NodeSpec> = Vec::new();
    let mut warn: Vec<String> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut check_new = |r: &Reader, sec: &str, l: &Line| -> Result<(), InpError> {
        if let Some(prev) = seen.insert(key(&l.toks[0]), l.no) {
            return Err(r.err(
                sec,
                l.no,
                format!(
                    "node `{}` is defined twice (first on line {prev})",
                    l.toks[0]
                ),
            ));
        }
        Ok(())
    };
    let node = |name: &str, kind: NodeKind| NodeSpec {
        name: name.to_string(),
        kind,
        inflow: None,
        xy: None,
    };
    let sec = "JUNCTIONS";
    for l in r.lines(sec) {
        check_new(r, sec, l)?;
        r.need(sec, l, 2, "name, invert elevation")?;
        let m = Manhole {
            invert_m: r.num(sec, l, 1, "invert elevation")? * u.length,
            max_depth_m: r.non_neg(sec, l, 2, "max depth", 0.0)? * u.length,
            // SWMM's junctions have no area of their own (the minimum surface area applies).
            area_m2: 0.0,
            init_depth_m: r.non_neg(sec, l, 3, "initial depth", 0.0)? * u.length,
            surcharge_depth_m: r.non_neg(sec, l, 4, "surcharge depth", 0.0)? * u.length,
            ponded_area_m2: r.non_neg(sec, l, 5, "ponded area", 0.0)? * u.length * u.length,
        };
        nodes.push(node(&l.toks[0], NodeKind::Junction(m)));
    }
    let sec = "OUTFALLS";
    for l in r.lines(sec) {
        check_new(r, sec, l)?;
        r.need(sec, l, 3, "name, invert elevation, type")?;
        let name = &l.toks[0];
        let invert = r.num(sec, l, 1, "invert elevation")? * u.length;
        let ty = l.toks[2].to_ascii_uppercase();
        // After the type: stage data (not for FREE/NORMAL), then gated, then route-to.
        let (stage, n) = match ty.as_str() {
            "FREE" => (OutfallStage::Free, 4),
            "NORMAL" => (OutfallStage::Normal, 4),
            "FIXED" => (
                OutfallStage::Fixed(r.num(sec, l, 3, "fixed stage")? * u.length),
                5,
            ),
            "TIDAL" => {
                let (_, curve, _) = r.named(sec, l, 3, curves, "tidal curve", "CURVES")?;
                let pts = curve
                    .points
                    .iter()
                    .map(|&(h, z)| (h * 3600.0, z * u.length))
                    .collect();
                (OutfallStage::Tidal(Curve { points: pts }), 5)
            }
            "TIMESERIES" => {
                let ts = r.named(sec, l, 3, series, "stage series", "TIMESERIES")?;
                let pts = ts.points.iter().map(|&(t, z)| (t, z * u.length)).collect();
                (OutfallStage::Series(Curve { points: pts }), 5)
            }
            _ => {
                return Err(r.err(
                    sec,
                    l.no,
                    format!(
                        "`{name}`: type '{ty}' is not FREE, NORMAL, FIXED, TIDAL or TIMESERIES"
                    ),
                ));
            }
        };
        // SWMM reads the gate only when it is the last field.
        let gated = if l.toks.len() == n {
            r.yes_no(sec, l, n - 1)?
        } else {
            false
        };
        if l.toks.len() > n {
            let msg = format!(
                "{}:{}: [OUTFALLS] `{name}` routes to subcatchment `{}`: not modelled, its water leaves the network",
                r.file, l.no, l.toks[n]
            );
            warn.push(msg);
        }
        nodes.push(node(
            name,
            NodeKind::Outfall(Outfall {
                invert_m: invert,
                stage,
                gated,
            }),
        ));
    }
    let sec = "STORAGE";
    for l in r.lines(sec) {
        check_new(r, sec, l)?;
        r.need(sec, l, 5, "name, invert, max depth, initial depth, shape")?;
        let name = &l.toks[0];
        let invert = r.num(sec, l, 1, "invert elevation")? * u.length;
        let max_depth = r.non_neg(sec, l, 2, "max depth", 0.0)? * u.length;
        let init = r.non_neg(sec, l, 3, "initial depth", 0.0)? * u.length;
        let shape_name = l.toks[4].to_ascii_uppercase();
        let len = u.length;
        let (shape, next) = match shape_name.as_str() {
            "FUNCTIONAL" => {
                let a = r.num(sec, l, 5, "coefficient")?;
                let b = r.num(sec, l, 6, "exponent")?;
                let c = r.num_or(sec, l, 7, "constant", 0.0)?;
                (
                    StorageShape::Functional {
                        a: a * len.powf(2.0 - b),
                        b,
                        c: c * len * len,
                    },
                    8,
                )
            }
            "TABULAR" => {
                let (_, curve, _) = r.named(sec, l, 5, curves, "storage curve", "CURVES")?;
                let pts = curve
                    .points
                    .iter()
                    .map(|&(d, a)| (d * len, a * len * len))
                    .collect();
                (StorageShape::Tabular(Curve { points: pts }), 6)
            }
            "CYLINDRICAL" => {
                // An elliptical cylinder: its major and minor axes.
                let la = r.num(sec, l, 5, "major axis")? * len;
                let lb = r.num(sec, l, 6, "minor axis")? * len;
                (
                    StorageShape::Functional {
                        a: 0.0,
                        b: 0.0,
                        c: std::f64::consts::PI / 4.0 * la * lb,
                    },
                    8,
                )
            }
            other => {
                return Err(r.err(sec, l.no, format!("`{name}`: storage shape '{other}' is not supported (FUNCTIONAL, TABULAR, CYLINDRICAL)")));
            }
        };
        let surcharge = r.non_neg(sec, l, next, "surcharge depth", 0.0)? * len;
        let evap = r.non_neg(sec, l, next + 1, "evaporation factor", 0.0)?;
        if l.toks.len() > next + 2 {
            let msg = format!(
                "{}:{}: [STORAGE] `{name}`: seepage (Green–Ampt exfiltration) is not modelled",
                r.file, l.no
            );
            warn.push(msg);
        }
        let s = StorageUnit {
            invert_m: invert,
            max_depth_m: max_depth,
            init_depth_m: init,
            shape,
            surcharge_depth_m: surcharge,
            evap_factor: evap,
        };
        nodes.push(node(name, NodeKind::Storage(s)));
    }
    spec.nodes = nodes;
    r.warnings.extend(warn);
    Ok(())
}

fn read_shape(
    r: &Reader,
    sec: &str,
    l: &Line,
    at: usize,
    u: Units,
) -> Result<CrossSection, InpError> {
    let name = &l.toks[0];
    let s = l
        .toks
        .get(at)
        .map(|s| s.to_ascii_uppercase())
        .unwrap_or_default();
    let g = |k: usize, what: &str| -> Result<f64, InpError> {
        Ok(r.non_neg(sec, l, at + k, what, 0.0)? * u.length)
    };
    let positive = |v: f64, what: &str| -> Result<f64, InpError> {
        if v > 0.0 {
            Ok(v)
        } else {
            Err(r.err(sec, l.no, format!("`{name}`: {what} must be positive")))
        }
    };
    Ok(match s.as_str() {
        "CIRCULAR" | "FORCE_MAIN" => CrossSection::Circular {
            diameter_m: positive(g(1, "diameter")?, "the diameter")?,
        },
        "RECT_CLOSED" => CrossSection::Rectangular {
            height_m: positive(g(1, "height")?, "the height")?,
            width_m: positive(g(2, "width")?, "the width")?,
        },
        "RECT_OPEN" => CrossSection::RectangularOpen {
            height_m: positive(g(1, "height")?, "the height")?,
            width_m: positive(g(2, "width")?, "the width")?,
        },
        "TRAPEZOIDAL" => {
            let (b, z1, z2) = (
                g(2, "bottom width")?,
                r.non_neg(sec, l, at + 3, "left slope", 0.0)?,
                r.non_neg(sec, l, at + 4, "right slope", 0.0)?,
            );
            if b == 0.0 && z1 + z2 == 0.0 {
                return Err(r.err(
                    sec,
                    l.no,
                    format!("`{name}`: a trapezoid needs a bottom width or side slopes"),
                ));
            }
            CrossSection::Trapezoidal {
                height_m: positive(g(1, "height")?, "the height")?,
                bottom_m: b,
                left_slope: z1,
                right_slope: z2,
            }
        }
        "TRIANGULAR" => CrossSection::Triangular {
            height_m: positive(g(1, "height")?, "the height")?,
            top_m: positive(g(2, "top width")?, "the top width")?,
        },
        other => {
            return Err(r.err(
                sec,
                l.no,
                format!("`{name}`: cross-section '{other}' is not supported (CIRCULAR, FORCE_MAIN, RECT_CLOSED, RECT_OPEN, TRAPEZOIDAL, TRIANGULAR)"),
            ));
        }
    })
}

fn read_links(
    r: &mut Reader,
    spec: &mut NetworkSpec,
    curves: &BTreeMap<String, (String, Curve, usize)>,
) -> Result<(), InpError> {
    let u = r.units;
    let offsets_are_elevations = r.lines("OPTIONS").iter().any(|l| {
        l.toks[0].eq_ignore_ascii_case("LINK_OFFSETS")
            && l.toks
                .get(1)
                .is_some_and(|v| v.eq_ignore_ascii_case("ELEVATION"))
    });
    let node_of = |r: &Reader, sec: &str, l: &Line, k: usize| -> Result<usize, InpError> {
        let n = l
            .toks
            .get(k)
            .ok_or_else(|| r.err(sec, l.no, format!("`{}`: missing node", l.toks[0])))?;
        spec.node(n).ok_or_else(|| {
            r.err(
                sec,
                l.no,
                format!(
                    "`{}`: node `{n}` is not a junction, outfall or storage unit",
                    l.toks[0]
                ),
            )
        })
    };
    // Offsets as heights above the node's invert (SWMM's LINK_OFFSETS DEPTH, the default) or
    // as elevations; `*` is the invert itself.
    let offset =
        |r: &Reader, sec: &str, l: &Line, k: usize, node: usize| -> Result<f64, InpError> {
            let t = l.toks.get(k).map(|s| s.as_str()).unwrap_or("0");
            if t == "*" || t.is_empty() {
                return Ok(0.0);
            }
            let v = r.num(sec, l, k, "offset")? * u.length;
            Ok(if offsets_are_elevations {
                (v - spec.nodes[node].invert_m()).max(0.0)
            } else {
                v.max(0.0)
            })
        };
    let mut links: Vec<LinkSpec> = Vec::new();
    let mut warn: Vec<String> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut check_new = |r: &Reader, sec: &str, l: &Line| -> Result<(), InpError> {
        if let Some(p) = seen.insert(key(&l.toks[0]), l.no) {
            return Err(r.err(
                sec,
                l.no,
                format!("link `{}` is defined twice (first on line {p})", l.toks[0]),
            ));
        }
        Ok(())
    };
    // Links still waiting for their [XSECTIONS] entry: name → (index, section, line).
    let mut pending: BTreeMap<String, (usize, &'static str, usize)> = BTreeMap::new();
    let link = |name: &str, kind: LinkKind| LinkSpec {
        name: name.to_string(),
        kind,
        vertices: Vec::new(),
    };
    let no_section = CrossSection::Circular { diameter_m: 0.0 };
    let sec = "CONDUITS";
    for l in r.lines(sec) {
        r.need(
            sec,
            l,
            7,
            "name, from, to, length, roughness, in offset, out offset",
        )?;
        check_new(r, sec, l)?;
        let name = &l.toks[0];
        let (a, b) = (node_of(r, sec, l, 1)?, node_of(r, sec, l, 2)?);
        if a == b {
            return Err(r.err(
                sec,
                l.no,
                format!("`{name}`: both ends are node `{}`", l.toks[1]),
            ));
        }
        let length_m = r.num(sec, l, 3, "length")? * u.length;
        if length_m <= 0.0 {
            return Err(r.err(sec, l.no, format!("`{name}`: length must be positive")));
        }
        let n = r.num(sec, l, 4, "roughness")?;
        if n <= 0.0 {
            return Err(r.err(sec, l.no, format!("`{name}`: roughness must be positive")));
        }
        let mut c = Conduit::new(a, b, no_section, length_m, n);
        c.inlet_offset_m = offset(r, sec, l, 5, a)?;
        c.outlet_offset_m = offset(r, sec, l, 6, b)?;
        c.init_flow_m3s = r.num_or(sec, l, 7, "initial flow", 0.0)? * u.flow;
        c.max_flow_m3s = r.non_neg(sec, l, 8, "max flow", 0.0)? * u.flow;
        pending.insert(key(name), (links.len(), sec, l.no));
        links.push(link(name, LinkKind::Conduit(c)));
    }
    let sec = "PUMPS";
    for l in r.lines(sec) {
        r.need(sec, l, 3, "name, from, to")?;
        check_new(r, sec, l)?;
        let name = &l.toks[0];
        let (a, b) = (node_of(r, sec, l, 1)?, node_of(r, sec, l, 2)?);
        let cname = l.toks.get(3).map(|s| s.as_str()).unwrap_or("*");
        let curve = if cname == "*" || cname.is_empty() {
            PumpCurve::Ideal
        } else {
            let (kind, c, _) = r.named(sec, l, 3, curves, "pump curve", "CURVES")?;
            let conv = |fx: f64| Curve {
                points: c
                    .points
                    .iter()
                    .map(|&(x, y)| (x * fx, y * u.flow))
                    .collect(),
            };
            match kind.as_str() {
                "PUMP1" => PumpCurve::Volume(conv(u.length.powi(3))),
                "PUMP2" => PumpCurve::DepthSteps(conv(u.length)),
                "PUMP3" => PumpCurve::Head(conv(u.length)),
                "PUMP4" => PumpCurve::Depth(conv(u.length)),
                other => {
                    return Err(r.err(
                        sec,
                        l.no,
                        format!("`{name}`: curve `{cname}` is of type '{other}', not PUMP1–PUMP4"),
                    ));
                }
            }
        };
        let p = Pump {
            from: a,
            to: b,
            curve,
            on: !l.toks.get(4).is_some_and(|s| s.eq_ignore_ascii_case("OFF")),
            startup_depth_m: r.non_neg(sec, l, 5, "startup depth", 0.0)? * u.length,
            shutoff_depth_m: r.non_neg(sec, l, 6, "shutoff depth", 0.0)? * u.length,
        };
        if p.startup_depth_m > 0.0 && p.startup_depth_m <= p.shutoff_depth_m {
            return Err(r.err(
                sec,
                l.no,
                format!("`{name}`: its startup depth must be above its shutoff depth"),
            ));
        }
        links.push(link(name, LinkKind::Pump(p)));
    }
    let sec = "ORIFICES";
    for l in r.lines(sec) {
        r.need(
            sec,
            l,
            6,
            "name, from, to, type, offset, discharge coefficient",
        )?;
        check_new(r, sec, l)?;
        let name = &l.toks[0];
        let (a, b) = (node_of(r, sec, l, 1)?, node_of(r, sec, l, 2)?);
        let bottom = match l.toks[3].to_ascii_uppercase().as_str() {
            "SIDE" => false,
            "BOTTOM" => true,
            t => {
                return Err(r.err(
                    sec,
                    l.no,
                    format!("`{name}`: type '{t}' is not SIDE or BOTTOM"),
                ));
            }
        };
        let o = Orifice {
            from: a,
            to: b,
            section: no_section,
            bottom,
            offset_m: offset(r, sec, l, 4, a)?,
            discharge_coeff: r.non_neg(sec, l, 5, "discharge coefficient", 0.65)?,
            flap_gate: r.yes_no(sec, l, 6)?,
        };
        if r.num_or(sec, l, 7, "close time", 0.0)? > 0.0 {
            let msg = format!(
                "{}:{}: [ORIFICES] `{name}`: the opening/closing time is not modelled (it opens and closes at once)",
                r.file, l.no
            );
            warn.push(msg);
        }
        pending.insert(key(name), (links.len(), sec, l.no));
        links.push(link(name, LinkKind::Orifice(o)));
    }
    let sec = "WEIRS";
    for l in r.lines(sec) {
        r.need(
            sec,
            l,
            6,
            "name, from, to, type, crest height, discharge coefficient",
        )?;
        check_new(r, sec, l)?;
        let name = &l.toks[0];
        let (a, b) = (node_of(r, sec, l, 1)?, node_of(r, sec, l, 2)?);
        let kind = match l.toks[3].to_ascii_uppercase().as_str() {
            "TRANSVERSE" => WeirKind::Transverse,
            "SIDEFLOW" => WeirKind::Sideflow,
            "V-NOTCH" => WeirKind::VNotch,
            "TRAPEZOIDAL" => WeirKind::Trapezoidal,
            t => return Err(r.err(sec, l.no, format!("`{name}`: weir type '{t}' is not supported (TRANSVERSE, SIDEFLOW, V-NOTCH, TRAPEZOIDAL)"))),
        };
        // Weir coefficients carry units, length^½/s: ft^½/s in US files.
        let cw = u.length.sqrt();
        let w = Weir {
            from: a,
            to: b,
            kind,
            crest_m: offset(r, sec, l, 4, a)?,
            height_m: 0.0,
            length_m: 0.0,
            side_slope: 0.0,
            discharge_coeff: r.non_neg(sec, l, 5, "discharge coefficient", 3.33)? * cw,
            flap_gate: r.yes_no(sec, l, 6)?,
            end_contractions: r.non_neg(sec, l, 7, "end contractions", 0.0)? as u32,
            end_coeff: r.non_neg(sec, l, 8, "end coefficient", 0.0)? * cw,
            can_surcharge: !l.toks.get(9).is_some_and(|s| s.eq_ignore_ascii_case("NO")),
        };
        if l.toks.len() > 10 {
            let msg = format!(
                "{}:{}: [WEIRS] `{name}`: road-crossing and coefficient-curve fields are not modelled",
                r.file, l.no
            );
            warn.push(msg);
        }
        pending.insert(key(name), (links.len(), sec, l.no));
        links.push(link(name, LinkKind::Weir(w)));
    }
    // Cross-sections of conduits, orifices and weirs.
    let sec = "XSECTIONS";
    for l in r.lines(sec) {
        let name = &l.toks[0];
        let Some(&(k, _, _)) = pending.get(&key(name)) else {
            return Err(r.err(
                sec,
                l.no,
                format!(
                    "`{name}` is not a conduit, orifice or weir (or has a cross-section already)"
                ),
            ));
        };
        let shape_name = l
            .toks
            .get(1)
            .map(|s| s.to_ascii_uppercase())
            .unwrap_or_default();
        match &mut links[k].kind {
            LinkKind::Conduit(c) => {
                if shape_name == "FORCE_MAIN" {
                    let msg = format!(
                        "{}:{}: [XSECTIONS] `{name}`: FORCE_MAIN is modelled as a circular pipe with Manning friction",
                        r.file, l.no
                    );
                    warn.push(msg);
                }
                c.section = read_shape(r, sec, l, 1, u)?;
                let nb = r.num_or(sec, l, 6, "barrels", 1.0)?;
                if nb < 1.0 {
                    return Err(r.err(sec, l.no, format!("`{name}`: needs at least one barrel")));
                }
                c.barrels = nb as u32;
                if l.toks.get(7).is_some_and(|c| !c.is_empty() && c != "0") {
                    let msg = format!(
                        "{}:{}: [XSECTIONS] `{name}`: culvert inlet control (code {}) is not modelled",
                        r.file, l.no, l.toks[7]
                    );
                    warn.push(msg);
                }
            }
            LinkKind::Orifice(o) => {
                let s = read_shape(r, sec, l, 1, u)?;
                if !matches!(
                    s,
                    CrossSection::Circular { .. } | CrossSection::Rectangular { .. }
                ) {
                    return Err(r.err(
                        sec,
                        l.no,
                        format!("`{name}`: an orifice is CIRCULAR or RECT_CLOSED"),
                    ));
                }
                o.section = s;
            }
            LinkKind::Weir(w) => {
                w.height_m = r.non_neg(sec, l, 2, "height", 0.0)? * u.length;
                w.length_m = r.non_neg(sec, l, 3, "length", 0.0)? * u.length;
                let z1 = r.non_neg(sec, l, 4, "side slope", 0.0)?;
                let z2 = r.non_neg(sec, l, 5, "right side slope", 0.0)?;
                w.side_slope = match w.kind {
                    // Geom2 of a V-notch is its top width.
                    WeirKind::VNotch if w.height_m > 0.0 => w.length_m / 2.0 / w.height_m,
                    WeirKind::Trapezoidal => 0.5 * (z1 + z2),
                    _ => 0.0,
                };
                if w.height_m <= 0.0 || (w.length_m <= 0.0 && w.kind != WeirKind::VNotch) {
                    return Err(r.err(
                        sec,
                        l.no,
                        format!("`{name}`: a weir needs a positive height and length"),
                    ));
                }
            }
            LinkKind::Pump(_) => unreachable!("pumps are never pending a cross-section"),
        }
        pending.remove(&key(name));
    }
    if let Some((name, &(_, s, line))) = pending.iter().next() {
        return Err(r.err(s, line, format!("`{name}` has no entry in [XSECTIONS]")));
    }
    let sec = "LOSSES";
    for l in r.lines(sec) {
        let name = &l.toks[0];
        let k = links
            .iter()
            .position(|x| x.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| r.err(sec, l.no, format!("`{name}` is not a conduit")))?;
        let e = r.non_neg(sec, l, 1, "entry loss", 0.0)?;
        let x = r.non_neg(sec, l, 2, "exit loss", 0.0)?;
        let a = r.non_neg(sec, l, 3, "average loss", 0.0)?;
        let gate = r.yes_no(sec, l, 4)?;
        if r.num_or(sec, l, 5, "seepage", 0.0)? > 0.0 {
            let msg = format!(
                "{}:{}: [LOSSES] `{name}`: conduit seepage is not modelled",
                r.file, l.no
            );
            warn.push(msg);
        }
        match &mut links[k].kind {
            LinkKind::Conduit(c) => {
                c.losses = [e, x, a];
                c.flap_gate = gate;
            }
            _ => return Err(r.err(sec, l.no, format!("`{name}` is not a conduit"))),
        }
    }
    spec.links = links;
    r.warnings.extend(warn);
    Ok(())
}

fn read_subcatchments(r: &mut Reader, spec: &mut NetworkSpec) -> Result<(), InpError> {
    let u = r.units;
    let sec = "SUBCATCHMENTS";
    let names: Vec<String> = r.lines(sec).iter().map(|l| l.toks[0].clone()).collect();
    let mut subs = Vec::new();
    let mut warn = Vec::new();
    for l in r.lines(sec) {
        r.need(
            sec,
            l,
            8,
            "name, gage, outlet, area, %imperv, width, %slope, curb length",
        )?;
        let name = &l.toks[0];
        let gname = &l.toks[1];
        let gauge = if gname == "*" {
            None
        } else if let Some(g) = spec
            .gauges
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(gname))
        {
            Some(g.name.clone())
        } else {
            return Err(r.err(
                sec,
                l.no,
                format!("`{name}`: rain gage `{gname}` is not in [RAINGAGES]"),
            ));
        };
        let out = &l.toks[2];
        let outlet = if let Some(n) = spec.node(out) {
            Outlet::Node(n)
        } else if let Some(s) = names.iter().position(|s| s.eq_ignore_ascii_case(out)) {
            Outlet::Subcatchment(s)
        } else {
            return Err(r.err(
                sec,
                l.no,
                format!("`{name}`: outlet `{out}` is neither a node nor a subcatchment"),
            ));
        };
        let imperv = r.non_neg(sec, l, 4, "%imperv", 0.0)?.min(100.0) / 100.0;
        if l.toks.get(8).is_some_and(|s| !s.is_empty()) {
            warn.push(format!(
                "{}:{}: [SUBCATCHMENTS] `{name}`: snow pack `{}` is not modelled",
                r.file, l.no, l.toks[8]
            ));
        }
        subs.push(SubcatchSpec {
            name: name.clone(),
            params: Subcatchment {
                outlet,
                gauge,
                area_m2: r.non_neg(sec, l, 3, "area", 0.0)? * u.land_area,
                imperv_frac: imperv,
                width_m: r.non_neg(sec, l, 5, "width", 0.0)? * u.length,
                slope: r.non_neg(sec, l, 6, "%slope", 0.0)? / 100.0,
                // Without a [SUBAREAS] line a subcatchment produces no runoff (as in SWMM).
                n_imperv: 0.0,
                n_perv: 0.0,
                ds_imperv_m: 0.0,
                ds_perv_m: 0.0,
                frac_zero_ds: 0.0,
                route_to: SubareaRouting::Outlet,
                frac_routed: 1.0,
                infiltration: Infiltration::Horton {
                    f0_mps: 0.0,
                    fc_mps: 0.0,
                    decay_per_s: 0.0,
                    dry_time_s: 0.0,
                    max_volume_m: 0.0,
                    modified: false,
                },
            },
            polygon: Vec::new(),
        });
    }
    r.warnings.extend(warn);
    let find = |r: &Reader, sec: &str, l: &Line| -> Result<usize, InpError> {
        names
            .iter()
            .position(|s| s.eq_ignore_ascii_case(&l.toks[0]))
            .ok_or_else(|| r.err(sec, l.no, format!("`{}` is not a subcatchment", l.toks[0])))
    };
    let sec = "SUBAREAS";
    for l in r.lines(sec) {
        r.need(
            sec,
            l,
            7,
            "subcatchment, N-imperv, N-perv, S-imperv, S-perv, %zero, route-to",
        )?;
        let k = find(r, sec, l)?;
        let p = &mut subs[k].params;
        p.n_imperv = r.non_neg(sec, l, 1, "N-imperv", 0.0)?;
        p.n_perv = r.non_neg(sec, l, 2, "N-perv", 0.0)?;
        p.ds_imperv_m = r.non_neg(sec, l, 3, "S-imperv", 0.0)? * u.rain_depth;
        p.ds_perv_m = r.non_neg(sec, l, 4, "S-perv", 0.0)? * u.rain_depth;
        p.frac_zero_ds = r.non_neg(sec, l, 5, "%zero", 0.0)?.min(100.0) / 100.0;
        p.route_to = match l.toks[6].to_ascii_uppercase().as_str() {
            "OUTLET" => SubareaRouting::Outlet,
            "IMPERVIOUS" => SubareaRouting::Impervious,
            "PERVIOUS" => SubareaRouting::Pervious,
            t => {
                return Err(r.err(
                    sec,
                    l.no,
                    format!(
                        "`{}`: route-to '{t}' is not OUTLET, IMPERVIOUS or PERVIOUS",
                        l.toks[0]
                    ),
                ));
            }
        };
        let pct = r.non_neg(sec, l, 7, "%routed", 100.0)?;
        if pct > 100.0 {
            return Err(r.err(
                sec,
                l.no,
                format!("`{}`: %routed {pct} is above 100", l.toks[0]),
            ));
        }
        p.frac_routed = pct / 100.0;
    }
    let default_method = r
        .lines("OPTIONS")
        .iter()
        .find(|l| l.toks[0].eq_ignore_ascii_case("INFILTRATION"))
        .and_then(|l| l.toks.get(1).map(|s| s.to_ascii_uppercase()))
        .unwrap_or_else(|| "HORTON".into());
    let sec = "INFILTRATION";
    for l in r.lines(sec) {
        let k = find(r, sec, l)?;
        // SWMM 5.2 may name the method in a last field.
        let last = l
            .toks
            .last()
            .map(|s| s.to_ascii_uppercase())
            .unwrap_or_default();
        let methods = [
            "HORTON",
            "MODIFIED_HORTON",
            "GREEN_AMPT",
            "MODIFIED_GREEN_AMPT",
            "CURVE_NUMBER",
        ];
        let method = if methods.contains(&last.as_str()) && l.toks.len() > 2 {
            last
        } else {
            default_method.clone()
        };
        subs[k].params.infiltration = match method.as_str() {
            "HORTON" | "MODIFIED_HORTON" => {
                let f0 = r.non_neg(sec, l, 1, "max rate", 0.0)?;
                let fc = r.non_neg(sec, l, 2, "min rate", 0.0)?;
                let decay = r.non_neg(sec, l, 3, "decay", 0.0)?;
                let dry = r.non_neg(sec, l, 4, "drying time", 0.0)?;
                let maxv = if l.toks.len() > 5
                    && !methods.contains(&l.toks[5].to_ascii_uppercase().as_str())
                {
                    r.non_neg(sec, l, 5, "max volume", 0.0)?
                } else {
                    0.0
                };
                if fc > f0 {
                    return Err(r.err(
                        sec,
                        l.no,
                        format!("`{}`: min rate {fc} is above max rate {f0}", l.toks[0]),
                    ));
                }
                Infiltration::Horton {
                    f0_mps: f0 * u.rain_rate,
                    fc_mps: fc * u.rain_rate,
                    decay_per_s: decay / 3600.0,
                    dry_time_s: dry * 86_400.0,
                    max_volume_m: maxv * u.rain_depth,
                    modified: method == "MODIFIED_HORTON",
                }
            }
            "GREEN_AMPT" | "MODIFIED_GREEN_AMPT" => {
                let psi = r.non_neg(sec, l, 1, "suction head", 0.0)?;
                let ks = r.num(sec, l, 2, "conductivity")?;
                let imd = r.non_neg(sec, l, 3, "initial deficit", 0.0)?;
                if ks <= 0.0 {
                    return Err(r.err(
                        sec,
                        l.no,
                        format!("`{}`: conductivity must be positive", l.toks[0]),
                    ));
                }
                if imd > 1.0 {
                    return Err(r.err(
                        sec,
                        l.no,
                        format!("`{}`: initial deficit {imd} is above 1", l.toks[0]),
                    ));
                }
                Infiltration::GreenAmpt {
                    suction_m: psi * u.rain_depth,
                    ksat_mps: ks * u.rain_rate,
                    deficit: imd,
                    modified: method == "MODIFIED_GREEN_AMPT",
                }
            }
            "CURVE_NUMBER" => {
                let cn = r.num(sec, l, 1, "curve number")?;
                if !(10.0..=100.0).contains(&cn) {
                    return Err(r.err(
                        sec,
                        l.no,
                        format!("`{}`: curve number {cn} is outside 10–100", l.toks[0]),
                    ));
                }
                // Field 2 (conductivity) is read by SWMM 5 but not used.
                let dry = r.num(sec, l, 3, "drying time")?;
                if dry <= 0.0 {
                    return Err(r.err(
                        sec,
                        l.no,
                        format!("`{}`: drying time must be positive", l.toks[0]),
                    ));
                }
                Infiltration::CurveNumber {
                    cn,
                    dry_time_s: dry * 86_400.0,
                }
            }
            m => return Err(r.err(sec, l.no, format!("infiltration method '{m}' is not known"))),
        };
    }
    spec.subcatchments = subs;
    Ok(())
}

fn read_inflows(
    r: &mut Reader,
    spec: &mut NetworkSpec,
    series: &BTreeMap<String, Series>,
    patterns: &BTreeMap<String, Pattern>,
) -> Result<(), InpError> {
    let u = r.units;
    let mut warn = Vec::new();
    let pattern = |r: &Reader, sec: &str, l: &Line, p: &str| -> Result<Pattern, InpError> {
        patterns.get(&key(p)).cloned().ok_or_else(|| {
            r.err(
                sec,
                l.no,
                format!("`{}`: pattern `{p}` is not in [PATTERNS]", l.toks[0]),
            )
        })
    };
    let sec = "INFLOWS";
    for l in r.lines(sec) {
        r.need(sec, l, 3, "node, constituent, time series")?;
        let node = spec
            .node(&l.toks[0])
            .ok_or_else(|| r.err(sec, l.no, format!("`{}` is not a node", l.toks[0])))?;
        if !l.toks[1].eq_ignore_ascii_case("FLOW") {
            warn.push(format!(
                "{}:{}: [INFLOWS] `{}`: inflow of `{}` ignored (water quality is not modelled)",
                r.file, l.no, l.toks[0], l.toks[1]
            ));
            continue;
        }
        // For FLOW the type and units-factor fields are ignored (as SWMM does).
        let sname = &l.toks[2];
        let sfactor = r.num_or(sec, l, 5, "scale factor", 1.0)?;
        let baseline = r.num_or(sec, l, 6, "baseline", 0.0)?;
        let pat = match l.toks.get(7).filter(|s| !s.is_empty()) {
            Some(p) => Some(pattern(r, sec, l, p)?),
            None => None,
        };
        let s = if sname.is_empty() {
            None
        } else {
            let ts = r.named(sec, l, 2, series, "time series", "TIMESERIES")?;
            Some(Curve {
                points: ts
                    .points
                    .iter()
                    .map(|&(t, v)| (t, v * sfactor * u.flow))
                    .collect(),
            })
        };
        let f = spec.nodes[node]
            .inflow
            .get_or_insert_with(NodeInflow::default);
        f.series = s;
        f.baseline_m3s = baseline * u.flow;
        f.baseline_pattern = pat;
    }
    let sec = "DWF";
    for l in r.lines(sec) {
        r.need(sec, l, 3, "node, constituent, average")?;
        let node = spec
            .node(&l.toks[0])
            .ok_or_else(|| r.err(sec, l.no, format!("`{}` is not a node", l.toks[0])))?;
        if !l.toks[1].eq_ignore_ascii_case("FLOW") {
            warn.push(format!(
                "{}:{}: [DWF] `{}`: dry-weather `{}` ignored (water quality is not modelled)",
                r.file, l.no, l.toks[0], l.toks[1]
            ));
            continue;
        }
        let avg = r.num(sec, l, 2, "average flow")? * u.flow;
        let mut pats = Vec::new();
        for p in l.toks.iter().skip(3).filter(|s| !s.is_empty()) {
            pats.push(pattern(r, sec, l, p)?);
        }
        let f = spec.nodes[node]
            .inflow
            .get_or_insert_with(NodeInflow::default);
        f.dwf_m3s = avg;
        f.dwf_patterns = pats;
    }
    r.warnings.extend(warn);
    Ok(())
}

fn read_map(r: &mut Reader, spec: &mut NetworkSpec) -> Result<(), InpError> {
    let xy = |r: &Reader, sec: &str, l: &Line| -> Result<(f64, f64), InpError> {
        Ok((r.num(sec, l, 1, "x")?, r.num(sec, l, 2, "y")?))
    };
    let mut warn = Vec::new();
    let sec = "COORDINATES";
    for l in r.lines(sec) {
        let p = xy(r, sec, l)?;
        match spec.node(&l.toks[0]) {
            Some(k) => spec.nodes[k].xy = Some(p),
            None => warn.push(format!(
                "{}:{}: [COORDINATES] `{}` is not a node; ignored",
                r.file, l.no, l.toks[0]
            )),
        }
    }
    let sec = "VERTICES";
    for l in r.lines(sec) {
        let p = xy(r, sec, l)?;
        match spec.link(&l.toks[0]) {
            Some(k) => spec.links[k].vertices.push(p),
            None => warn.push(format!(
                "{}:{}: [VERTICES] `{}` is not a link; ignored",
                r.file, l.no, l.toks[0]
            )),
        }
    }
    let sec = "POLYGONS";
    for l in r.lines(sec) {
        let p = xy(r, sec, l)?;
        match spec
            .subcatchments
            .iter()
            .position(|s| s.name.eq_ignore_ascii_case(&l.toks[0]))
        {
            Some(k) => spec.subcatchments[k].polygon.push(p),
            None => warn.push(format!(
                "{}:{}: [POLYGONS] `{}` is not a subcatchment; ignored",
                r.file, l.no, l.toks[0]
            )),
        }
    }
    let sec = "SYMBOLS";
    for l in r.lines(sec) {
        let p = xy(r, sec, l)?;
        if let Some(g) = spec
            .gauges
            .iter_mut()
            .find(|g| g.name.eq_ignore_ascii_case(&l.toks[0]))
        {
            g.xy = Some(p);
        }
    }
    r.warnings.extend(warn);
    Ok(())
}

/// Write `spec` as a SWMM 5 `.inp` file in SI units (CMS, m), so a network built in citytwin
/// (from GIS layers, or changed by a plugin) can be run in EPA SWMM side by side. Written:
/// options, junctions, outfalls, storage units, conduits, pumps (with their curves), orifices,
/// weirs, cross-sections, losses, external inflows (baseline and series), dry-weather flows and
/// coordinates. Subcatchments and gauges are left out (the world's rain falls on the 2D grid).
pub fn to_inp(spec: &NetworkSpec, title: &str) -> String {
    use std::fmt::Write;
    let o = &spec.options;
    let mut s = String::new();
    let hms = |t: f64| {
        let t = t.round() as i64;
        format!("{}:{:02}:{:02}", t / 3600, (t / 60) % 60, t % 60)
    };
    let _ = writeln!(s, "[TITLE]\n{title}\n");
    let _ = writeln!(s, "[OPTIONS]");
    for (k, v) in [
        ("FLOW_UNITS", "CMS".to_string()),
        (
            "FLOW_ROUTING",
            if o.routing == Routing::Dynamic {
                "DYNWAVE"
            } else {
                "KINWAVE"
            }
            .to_string(),
        ),
        ("LINK_OFFSETS", "DEPTH".into()),
        ("START_DATE", "01/01/2000".into()),
        ("START_TIME", "00:00:00".into()),
        ("END_DATE", "01/01/2000".into()),
        ("END_TIME", hms(o.duration_s.min(86_399.0))),
        ("REPORT_STEP", "00:05:00".into()),
        ("WET_STEP", hms(o.wet_step_s.max(1.0))),
        ("DRY_STEP", hms(o.dry_step_s.max(1.0))),
        ("ROUTING_STEP", format!("{}", o.routing_step_s)),
        ("VARIABLE_STEP", format!("{}", o.courant_factor)),
        ("MINIMUM_STEP", format!("{}", o.min_step_s)),
        (
            "ALLOW_PONDING",
            if o.allow_ponding { "YES" } else { "NO" }.to_string(),
        ),
        (
            "INERTIAL_DAMPING",
            match o.inertial_damping {
                InertialDamping::None => "NONE",
                InertialDamping::Partial => "PARTIAL",
                InertialDamping::Full => "FULL",
            }
            .to_string(),
        ),
        (
            "NORMAL_FLOW_LIMITED",
            match o.normal_flow_limit {
                NormalFlowLimit::Slope => "SLOPE",
                NormalFlowLimit::Froude => "FROUDE",
                NormalFlowLimit::Both => "BOTH",
                NormalFlowLimit::Neither => "NEITHER",
            }
            .to_string(),
        ),
        ("MIN_SURFAREA", format!("{}", o.min_surface_area_m2)),
        ("HEAD_TOLERANCE", format!("{}", o.head_tolerance_m)),
        ("MAX_TRIALS", format!("{}", o.max_trials)),
        ("SKIP_STEADY_STATE", "NO".into()),
    ] {
        let _ = writeln!(s, "{k:<20} {v}");
    }
    let name = |n: &str| n.replace(char::is_whitespace, "_");
    let _ = writeln!(s, "\n[JUNCTIONS]");
    for n in &spec.nodes {
        if let NodeKind::Junction(m) = &n.kind {
            let _ = writeln!(
                s,
                "{} {} {} {} {} {}",
                name(&n.name),
                m.invert_m,
                m.max_depth_m,
                m.init_depth_m,
                m.surcharge_depth_m,
                m.ponded_area_m2
            );
        }
    }
    let _ = writeln!(s, "\n[OUTFALLS]");
    for n in &spec.nodes {
        if let NodeKind::Outfall(of) = &n.kind {
            let gate = if of.gated { "YES" } else { "NO" };
            let stage = match &of.stage {
                OutfallStage::Free => "FREE".to_string(),
                OutfallStage::Normal => "NORMAL".to_string(),
                OutfallStage::Fixed(z) => format!("FIXED {z}"),
                // Tides and stage series are written as their mean level.
                OutfallStage::Tidal(c) | OutfallStage::Series(c) => {
                    let mean =
                        c.points.iter().map(|p| p.1).sum::<f64>() / c.points.len().max(1) as f64;
                    format!("FIXED {mean}")
                }
            };
            let _ = writeln!(s, "{} {} {stage} {gate}", name(&n.name), of.invert_m);
        }
    }
    let mut curves = String::new();
    let _ = writeln!(s, "\n[STORAGE]");
    for n in &spec.nodes {
        if let NodeKind::Storage(st) = &n.kind {
            let shape = match &st.shape {
                StorageShape::Functional { a, b, c } => format!("FUNCTIONAL {a} {b} {c}"),
                StorageShape::Tabular(c) => {
                    let cname = format!("{}_area", name(&n.name));
                    for (k, p) in c.points.iter().enumerate() {
                        let _ = writeln!(
                            curves,
                            "{cname} {} {} {}",
                            if k == 0 { "STORAGE" } else { "" },
                            p.0,
                            p.1
                        );
                    }
                    format!("TABULAR {cname}")
                }
            };
            let _ = writeln!(
                s,
                "{} {} {} {} {shape} {} {}",
                name(&n.name),
                st.invert_m,
                st.max_depth_m,
                st.init_depth_m,
                st.surcharge_depth_m,
                st.evap_factor
            );
        }
    }
    let node = |i: usize| name(&spec.nodes[i].name);
    let mut xsections = String::new();
    let mut losses = String::new();
    let section = |sec: &CrossSection, barrels: u32| match *sec {
        CrossSection::Circular { diameter_m } => format!("CIRCULAR {diameter_m} 0 0 0 {barrels}"),
        CrossSection::Rectangular { width_m, height_m } => {
            format!("RECT_CLOSED {height_m} {width_m} 0 0 {barrels}")
        }
        CrossSection::RectangularOpen { width_m, height_m } => {
            format!("RECT_OPEN {height_m} {width_m} 0 0 {barrels}")
        }
        CrossSection::Trapezoidal {
            bottom_m,
            height_m,
            left_slope,
            right_slope,
        } => format!("TRAPEZOIDAL {height_m} {bottom_m} {left_slope} {right_slope} {barrels}"),
        CrossSection::Triangular { top_m, height_m } => {
            format!("TRIANGULAR {height_m} {top_m} 0 0 {barrels}")
        }
    };
    let _ = writeln!(s, "\n[CONDUITS]");
    for l in &spec.links {
        if let LinkKind::Conduit(c) = &l.kind {
            let _ = writeln!(
                s,
                "{} {} {} {} {} {} {} {} {}",
                name(&l.name),
                node(c.from),
                node(c.to),
                c.length_m,
                c.manning_n,
                c.inlet_offset_m,
                c.outlet_offset_m,
                c.init_flow_m3s,
                c.max_flow_m3s
            );
            let _ = writeln!(
                xsections,
                "{} {}",
                name(&l.name),
                section(&c.section, c.barrels)
            );
            if c.losses.iter().any(|&k| k != 0.0) || c.flap_gate {
                let _ = writeln!(
                    losses,
                    "{} {} {} {} {}",
                    name(&l.name),
                    c.losses[0],
                    c.losses[1],
                    c.losses[2],
                    if c.flap_gate { "YES" } else { "NO" }
                );
            }
        }
    }
    let _ = writeln!(s, "\n[PUMPS]");
    for l in &spec.links {
        if let LinkKind::Pump(p) = &l.kind {
            let (kind, c) = match &p.curve {
                PumpCurve::Ideal => ("", None),
                PumpCurve::Volume(c) => ("PUMP1", Some(c)),
                PumpCurve::DepthSteps(c) => ("PUMP2", Some(c)),
                PumpCurve::Head(c) => ("PUMP3", Some(c)),
                PumpCurve::Depth(c) => ("PUMP4", Some(c)),
            };
            let cname = match c {
                None => "*".to_string(),
                Some(c) => {
                    let cname = format!("{}_curve", name(&l.name));
                    for (k, q) in c.points.iter().enumerate() {
                        let _ = writeln!(
                            curves,
                            "{cname} {} {} {}",
                            if k == 0 { kind } else { "" },
                            q.0,
                            q.1
                        );
                    }
                    cname
                }
            };
            let _ = writeln!(
                s,
                "{} {} {} {cname} {} {} {}",
                name(&l.name),
                node(p.from),
                node(p.to),
                if p.on { "ON" } else { "OFF" },
                p.startup_depth_m,
                p.shutoff_depth_m
            );
        }
    }
    let _ = writeln!(s, "\n[ORIFICES]");
    for l in &spec.links {
        if let LinkKind::Orifice(o) = &l.kind {
            let _ = writeln!(
                s,
                "{} {} {} {} {} {} {}",
                name(&l.name),
                node(o.from),
                node(o.to),
                if o.bottom { "BOTTOM" } else { "SIDE" },
                o.offset_m,
                o.discharge_coeff,
                if o.flap_gate { "YES" } else { "NO" }
            );
            let _ = writeln!(xsections, "{} {}", name(&l.name), section(&o.section, 1));
        }
    }
    let _ = writeln!(s, "\n[WEIRS]");
    for l in &spec.links {
        if let LinkKind::Weir(w) = &l.kind {
            let kind = match w.kind {
                WeirKind::Transverse => "TRANSVERSE",
                WeirKind::Sideflow => "SIDEFLOW",
                WeirKind::VNotch => "V-NOTCH",
                WeirKind::Trapezoidal => "TRAPEZOIDAL",
            };
            let _ = writeln!(
                s,
                "{} {} {} {kind} {} {} {} {} {} {}",
                name(&l.name),
                node(w.from),
                node(w.to),
                w.crest_m,
                w.discharge_coeff,
                if w.flap_gate { "YES" } else { "NO" },
                w.end_contractions,
                w.end_coeff,
                if w.can_surcharge { "YES" } else { "NO" }
            );
            let geom = match w.kind {
                WeirKind::VNotch => format!(
                    "TRIANGULAR {} {} 0 0",
                    w.height_m,
                    2.0 * w.side_slope * w.height_m
                ),
                WeirKind::Trapezoidal => format!(
                    "TRAPEZOIDAL {} {} {} {}",
                    w.height_m, w.length_m, w.side_slope, w.side_slope
                ),
                _ => format!("RECT_OPEN {} {} 0 0", w.height_m, w.length_m),
            };
            let _ = writeln!(xsections, "{} {geom}", name(&l.name));
        }
    }
    let _ = writeln!(s, "\n[XSECTIONS]\n{xsections}");
    let _ = writeln!(s, "[LOSSES]\n{losses}");
    let mut series = String::new();
    let _ = writeln!(s, "[INFLOWS]");
    let mut dwf = String::new();
    for n in &spec.nodes {
        let Some(f) = &n.inflow else { continue };
        let ts = match &f.series {
            Some(c) => {
                let tname = format!("{}_inflow", name(&n.name));
                for p in &c.points {
                    let _ = writeln!(series, "{tname} {} {}", p.0 / 3600.0, p.1);
                }
                tname
            }
            None => "\"\"".into(),
        };
        if f.series.is_some() || f.baseline_m3s != 0.0 {
            let _ = writeln!(
                s,
                "{} FLOW {ts} FLOW 1.0 1.0 {}",
                name(&n.name),
                f.baseline_m3s
            );
        }
        if f.dwf_m3s != 0.0 {
            let _ = writeln!(dwf, "{} FLOW {}", name(&n.name), f.dwf_m3s);
        }
    }
    let _ = writeln!(s, "\n[DWF]\n{dwf}");
    let _ = writeln!(s, "[CURVES]\n{curves}");
    let _ = writeln!(s, "[TIMESERIES]\n{series}");
    let _ = writeln!(s, "[COORDINATES]");
    for n in &spec.nodes {
        if let Some((x, y)) = n.xy {
            let _ = writeln!(s, "{} {x} {y}", name(&n.name));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_follow_swmm() {
        assert_eq!(
            tokens("J1  FLOW \"\" FLOW 1.0 ; comment"),
            vec!["J1", "FLOW", "", "FLOW", "1.0"]
        );
        assert_eq!(tokens("\"a b\" c"), vec!["a b", "c"]);
        assert!(tokens(";; header").is_empty());
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(parse_date("01/01/1970"), Some(0.0));
        assert_eq!(
            parse_date("03/01/2000"),
            Some(days_from_civil(2000, 3, 1) as f64 * 86400.0)
        );
        assert_eq!(
            days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28),
            2
        );
        assert_eq!(parse_time("1:30"), Some(5400.0));
        assert_eq!(parse_time("0:00:30"), Some(30.0));
        assert_eq!(parse_time("1.5"), Some(5400.0));
        assert_eq!(parse_time("x"), None);
    }

    #[test]
    fn errors_name_the_line_and_section() {
        let text = "[OPTIONS]\nFLOW_UNITS CMS\nEND_TIME 1:00\n[JUNCTIONS]\nJ1 10 2\nJ2 abc 2\n";
        let e = parse_inp(text, "m.inp", None).unwrap_err();
        assert_eq!(e.line, 6);
        assert_eq!(e.section, "JUNCTIONS");
        assert!(e.to_string().contains("m.inp:6: [JUNCTIONS]"), "{e}");
        assert!(e.message.contains("'abc' is not a number"), "{e}");
    }
}
