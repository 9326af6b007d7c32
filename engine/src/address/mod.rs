//! Standard addresses: a gazetteer of a city's addresses, streets and named places, built from
//! OpenStreetMap (`addr:*` tags and `name` tags, [`osm`]) and from address layers read through
//! GDAL (CSV, GeoPackage, …, [`crate::import::read_address_layer`]); it geocodes free text with fuzzy matching and
//! reverse-geocodes a point to the nearest address and street.
//!
//! Matching is on folded text ([`text`]): typos, words run together or split, missing parts
//! (no city, no postcode, no house number), Latin names with or without diacritics and Chinese
//! names written without spaces all find their place. Results are scored in 0..=1 and ordered
//! by score, then by the place's id, so the same query always gives the same list.

pub mod osm;
pub mod text;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use geo::{Closest, ClosestPoint, Line, Point};
use rstar::RTree;
use rstar::primitives::GeomWithData;
use serde::Serialize;

use toml::Spanned;

use crate::geo_frame::{GeoFrame, LonLat};
use crate::import::fields::LayerKind;
use crate::import::{ImportError, read_address_layer};
use crate::scene::{LayerSpec, Scene};
use text::{Query, is_cjk, key, name_similarity};

/// What a gazetteer entry is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaceKind {
    /// A house number on a street.
    Address,
    /// A named street (the middle of its geometry).
    Street,
    /// A named feature (a station, a school, a shop); the category is its OSM key=value or the
    /// layer's `category` field.
    Feature(String),
}

/// One gazetteer entry, in the standard form every source is brought to.
#[derive(Debug, Clone, Serialize)]
pub struct Place {
    /// Where it came from: `osm:node/25291554`, `osm:way/8116740`, `addresses.csv:17`.
    pub id: String,
    /// What it is.
    pub kind: PlaceKind,
    /// Its names (a feature's names in each language it gives); the first is the main one.
    pub names: Vec<String>,
    /// The street's names (each language or script the source gives); the first is the main one.
    pub streets: Vec<String>,
    /// The house number as written (`5 A`, `88`).
    pub housenumber: Option<String>,
    /// The postcode.
    pub postcode: Option<String>,
    /// The district (区) or neighbourhood.
    pub district: Option<String>,
    /// The city's names.
    pub cities: Vec<String>,
    /// Where it is, WGS84.
    pub at: LonLat,
}

impl Place {
    /// The address written out: `Mannerheimintie 5, 00100 Helsinki`, or in Chinese order
    /// (`合肥市蜀山区长江中路88号`) when the street is written in Han characters.
    pub fn label(&self) -> String {
        let street = self.streets.first().map(String::as_str).unwrap_or("");
        let number = self.housenumber.as_deref().unwrap_or("");
        let city = self.cities.first().map(String::as_str).unwrap_or("");
        if street.chars().any(is_cjk) {
            let mut s = String::new();
            s.push_str(city);
            s.push_str(self.district.as_deref().unwrap_or(""));
            s.push_str(street);
            if !number.is_empty() {
                s.push_str(number);
                s.push('号');
            }
            if let Some(name) = self.names.first() {
                s = format!("{name}, {s}");
            }
            return s;
        }
        let mut parts: Vec<String> = Vec::new();
        if let Some(name) = self.names.first() {
            parts.push(name.clone());
        }
        match (street.is_empty(), number.is_empty()) {
            (false, false) => parts.push(format!("{street} {number}")),
            (false, true) => parts.push(street.to_string()),
            _ => {}
        }
        let town = match (&self.postcode, city.is_empty()) {
            (Some(p), false) => format!("{p} {city}"),
            (Some(p), true) => p.clone(),
            (None, false) => city.to_string(),
            (None, true) => String::new(),
        };
        if !town.is_empty() {
            parts.push(town);
        }
        parts.join(", ")
    }
}

/// A geocoding answer.
#[derive(Debug, Clone, Serialize)]
pub struct Match {
    /// The place found.
    pub place: Place,
    /// Its standard label ([`Place::label`]).
    pub label: String,
    /// How well it matches the query, 0..=1.
    pub score: f64,
}

/// A reverse-geocoding answer: the nearest address and the nearest street.
#[derive(Debug, Clone, Serialize)]
pub struct Reverse {
    /// The nearest address within the search radius, and its distance, m.
    pub address: Option<(Place, f64)>,
    /// The nearest named street within the search radius, and its distance, m.
    pub street: Option<(String, f64)>,
}

/// A street's geometry, for reverse geocoding: its name and its segments in the local frame.
#[derive(Debug, Clone)]
pub struct StreetLine {
    /// The street's main name.
    pub name: String,
    /// Its vertices, WGS84.
    pub points: Vec<LonLat>,
}

/// The searchable index over a city's places.
pub struct Gazetteer {
    places: Vec<Place>,
    /// Distinct folded names (streets, feature names), each with the places that carry it and
    /// whether it is their street's name (not their own).
    keys: Vec<(String, Vec<(usize, bool)>)>,
    /// The keys' character n-grams ([`text::grams`]), each with the keys that hold it, and how
    /// many distinct grams each key has: the first, cheap pass of a query.
    grams: HashMap<[char; 3], Vec<u32>>,
    key_grams: Vec<u32>,
    frame: GeoFrame,
    points: RTree<GeomWithData<[f64; 2], usize>>,
    streets: RTree<GeomWithData<Line<f64>, usize>>,
    street_names: Vec<String>,
    /// Per place, folded once: its house number, and its city and district names.
    folded: Vec<(Option<String>, Vec<String>)>,
}

/// The lowest name similarity that counts as a match.
const MIN_NAME_SIMILARITY: f64 = 0.7;

/// How many names a query scores exactly, after the n-gram pass has ranked them all.
const MAX_CANDIDATES: usize = 400;

impl Gazetteer {
    /// Index `places` and `streets`. Places are ordered by id first, so the index (and every
    /// answer) is the same whatever order the sources were read in.
    pub fn new(mut places: Vec<Place>, streets: Vec<StreetLine>) -> Self {
        places.sort_by(|a, b| a.id.cmp(&b.id));
        let n = places.len().max(1) as f64;
        let (lon, lat) = places
            .iter()
            .fold((0.0, 0.0), |(x, y), p| (x + p.at.lon, y + p.at.lat));
        let origin = if places.is_empty() {
            streets
                .first()
                .and_then(|s| s.points.first().copied())
                .unwrap_or(LonLat::new(0.0, 0.0))
        } else {
            LonLat::new(lon / n, lat / n)
        };
        let frame = GeoFrame::new(origin);
        let mut by_key: BTreeMap<String, Vec<(usize, bool)>> = BTreeMap::new();
        for (i, p) in places.iter().enumerate() {
            let named = p.names.iter().map(|n| (n, false));
            for (name, street) in named.chain(p.streets.iter().map(|n| (n, true))) {
                let k = key(name);
                if !k.is_empty() {
                    let v = by_key.entry(k).or_default();
                    if !v.iter().any(|(j, _)| *j == i) {
                        v.push((i, street));
                    }
                }
            }
        }
        let points = RTree::bulk_load(
            places
                .iter()
                .enumerate()
                .filter(|(_, p)| p.kind == PlaceKind::Address)
                .map(|(i, p)| {
                    let c = frame.to_local(p.at);
                    GeomWithData::new([c.x, c.y], i)
                })
                .collect(),
        );
        let mut segments = Vec::new();
        let mut street_names = Vec::new();
        for (i, s) in streets.iter().enumerate() {
            street_names.push(s.name.clone());
            for w in s.points.windows(2) {
                let (a, b) = (frame.to_local(w[0]), frame.to_local(w[1]));
                segments.push(GeomWithData::new(Line::new(a, b), i));
            }
        }
        let keys: Vec<(String, Vec<(usize, bool)>)> = by_key.into_iter().collect();
        let folded = places
            .iter()
            .map(|p| {
                let number = p.housenumber.as_deref().and_then(text::house_number);
                let context = p
                    .cities
                    .iter()
                    .chain(p.district.iter())
                    .map(|c| key(c))
                    .collect();
                (number, context)
            })
            .collect();
        let mut grams: HashMap<[char; 3], Vec<u32>> = HashMap::new();
        let mut key_grams = Vec::with_capacity(keys.len());
        for (i, (k, _)) in keys.iter().enumerate() {
            let g = text::grams(std::slice::from_ref(k));
            key_grams.push(g.len() as u32);
            for gram in g {
                grams.entry(gram).or_default().push(i as u32);
            }
        }
        Gazetteer {
            places,
            keys,
            grams,
            key_grams,
            frame,
            points,
            streets: RTree::bulk_load(segments),
            street_names,
            folded,
        }
    }

    /// Distance between two points, m, in the gazetteer's local frame.
    pub fn distance_m(&self, a: LonLat, b: LonLat) -> f64 {
        let (a, b) = (self.frame.to_local(a), self.frame.to_local(b));
        (a.x - b.x).hypot(a.y - b.y)
    }

    /// Every place, ordered by id.
    pub fn places(&self) -> &[Place] {
        &self.places
    }

    /// How many places of each kind: addresses, streets, features.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for p in &self.places {
            match p.kind {
                PlaceKind::Address => c.0 += 1,
                PlaceKind::Street => c.1 += 1,
                PlaceKind::Feature(_) => c.2 += 1,
            }
        }
        c
    }

    /// The best `limit` places for a free-text query, best first.
    ///
    /// A place's score weighs its name match (0.6), its house number (0.3: the same number,
    /// 0.8 of it for the same number with another letter; a street, or a place found by its
    /// own name, scores it when the query has no number) and the rest of the query (0.1: the
    /// city or district, where the query gives words beyond the name). A postcode that
    /// contradicts the place's halves its score. Shops and offices found by their street's name
    /// come just after the address itself (× 0.98).
    pub fn locate(&self, query: &str, limit: usize) -> Vec<Match> {
        let q = Query::parse(query);
        if q.words.is_empty() {
            return Vec::new();
        }
        let query_chars: usize = q.words.iter().map(|w| w.chars().count()).sum();
        let mut best: BTreeMap<usize, f64> = BTreeMap::new();
        for ki in self.candidates(&q) {
            let (k, holders) = &self.keys[ki];
            // A name with a number in it is matched against the numbers too, and the numbers it
            // takes are no house number.
            let numbered = k.chars().any(|c| c.is_ascii_digit());
            let words = if numbered { &q.tokens } else { &q.words };
            let (sim, covered, used) = name_similarity(k, words);
            if sim < MIN_NAME_SIMILARITY {
                continue;
            }
            let number = q
                .numbers
                .iter()
                .find(|n| !(numbered && k.split(' ').any(|w| w == n.as_str())))
                .map(String::as_str);
            let covered = covered.min(query_chars);
            // The words the name did not use, which may name the city or district.
            let rest: Vec<String> = words
                .iter()
                .enumerate()
                .filter(|(j, w)| !used.contains(j) && !q.numbers.contains(w))
                .map(|(_, w)| w.clone())
                .collect();
            let m = NameMatch {
                by_street: false,
                sim,
                covered,
                rest: &rest,
            };
            for &(i, by_street) in holders {
                let m = NameMatch { by_street, ..m };
                let s = self.score(i, &m, query_chars, number, &q);
                let e = best.entry(i).or_insert(0.0);
                if s > *e {
                    *e = s;
                }
            }
        }
        let mut out: Vec<(usize, f64)> = best.into_iter().collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out.into_iter()
            .take(limit)
            .map(|(i, score)| {
                let place = self.places[i].clone();
                Match {
                    label: place.label(),
                    place,
                    score,
                }
            })
            .collect()
    }

    /// The keys worth scoring exactly: those sharing the most n-grams with the query, as a
    /// share of their own grams, at most [`MAX_CANDIDATES`] of them, in key order.
    fn candidates(&self, q: &Query) -> Vec<usize> {
        let mut shared = vec![0u32; self.keys.len()];
        for g in text::grams(&q.tokens) {
            for &k in self.grams.get(&g).map_or(&[][..], Vec::as_slice) {
                shared[k as usize] += 1;
            }
        }
        let mut ranked: Vec<(usize, f64)> = shared
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(k, &n)| (k, f64::from(n) / f64::from(self.key_grams[k].max(1))))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(MAX_CANDIDATES);
        let mut keys: Vec<usize> = ranked.into_iter().map(|(k, _)| k).collect();
        keys.sort_unstable();
        keys
    }

    fn score(
        &self,
        i: usize,
        m: &NameMatch<'_>,
        query_chars: usize,
        number: Option<&str>,
        q: &Query,
    ) -> f64 {
        let NameMatch {
            by_street,
            sim,
            covered,
            rest,
        } = *m;
        let p = &self.places[i];
        let (folded_number, context_keys) = &self.folded[i];
        let number = match (folded_number, number) {
            // A place found by its own name needs no number; the number only confirms it.
            (_, None) if !by_street => 1.0,
            (Some(h), Some(n)) => text::house_number_match(h, n),
            (None, Some(_)) => 0.2,
            (Some(_), None) => 0.5,
            (None, None) => 1.0,
        };
        // The words beyond the name: do they name the place's city or district?
        let mut context = if covered >= query_chars || rest.is_empty() {
            1.0
        } else {
            0.0
        };
        if context == 0.0 {
            let hit = context_keys
                .iter()
                .map(|c| name_similarity(c, rest).0)
                .fold(0.0, f64::max);
            if hit >= MIN_NAME_SIMILARITY {
                context = hit;
            }
        }
        // The share of the query the place accounts for: its name, and the rest when that names
        // its city or district.
        let accounted = if context > 0.0 {
            1.0
        } else {
            covered as f64 / query_chars.max(1) as f64
        };
        let mut score = 0.6 * sim * (0.9 + 0.1 * accounted) + 0.3 * number + 0.1 * context;
        if let (Some(pc), Some(qpc)) = (&p.postcode, q.postcodes.first()) {
            if pc.replace(' ', "") == *qpc {
                score = (score + 0.05).min(1.0);
            } else {
                score *= 0.5;
            }
        }
        // Among places found by the same street, the address or street itself comes before the
        // shops and offices at it.
        let itself = !by_street || p.kind == PlaceKind::Street || p.names.is_empty();
        if !itself {
            score *= 0.98;
        }
        score
    }

    /// The nearest address and named street to `at`, each within `radius_m`.
    pub fn reverse(&self, at: LonLat, radius_m: f64) -> Reverse {
        let c = self.frame.to_local(at);
        let address = self
            .points
            .nearest_neighbor(&[c.x, c.y])
            .map(|g| {
                let [x, y] = *g.geom();
                (g.data, (x - c.x).hypot(y - c.y))
            })
            .filter(|(_, d)| *d <= radius_m)
            .map(|(i, d)| (self.places[i].clone(), d));
        let street = self
            .streets
            .nearest_neighbor(&Point::from(c))
            .map(|g| {
                let d = match g.geom().closest_point(&Point::from(c)) {
                    Closest::Intersection(p) | Closest::SinglePoint(p) => {
                        (p.x() - c.x).hypot(p.y() - c.y)
                    }
                    Closest::Indeterminate => f64::INFINITY,
                };
                (self.street_names[g.data].clone(), d)
            })
            .filter(|(_, d)| *d <= radius_m);
        Reverse { address, street }
    }
}

/// How one name of the index met the query.
#[derive(Clone, Copy)]
struct NameMatch<'a> {
    /// The name is the place's street's (not its own).
    by_street: bool,
    /// Its similarity, 0..=1.
    sim: f64,
    /// Query characters it covered.
    covered: usize,
    /// The query's words it did not use (numbers aside).
    rest: &'a [String],
}

/// Where a gazetteer's places come from: an OSM PBF file, or a GDAL address layer.
#[derive(Debug, Clone)]
pub enum Source {
    /// An `.osm.pbf` file.
    Osm(PathBuf),
    /// An address layer (CSV with lon/lat columns, GeoPackage, Shapefile, …): its resolved path
    /// and its `[[layer]]` (field mapping, CRS).
    Layer(PathBuf, Box<LayerSpec>),
}

impl Source {
    /// A source from a file name: `.pbf` files are OSM, anything else an address layer with the
    /// standard field names ([`crate::import::fields::LayerKind::Addresses`]) in `crs` (when
    /// `None`, the layer's own, or WGS84 for a CSV).
    pub fn from_path(path: PathBuf, crs: Option<String>) -> Self {
        // A CSV's lon/lat columns carry no CRS of their own: WGS84 unless told otherwise.
        let csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let crs = crs.or_else(|| csv.then(|| "EPSG:4326".to_string()));
        let spec = LayerSpec {
            name: Spanned::new(0..0, "addresses".into()),
            kind: Spanned::new(0..0, LayerKind::Addresses),
            file: Spanned::new(0..0, path.clone()),
            layer: None,
            crs: crs.map(|c| Spanned::new(0..0, c)),
            fields: BTreeMap::new(),
        };
        Source::of_layer(path, spec)
    }

    /// The address layers of a scene (`kind = "addresses"`; an `.osm.pbf` file is read as OSM).
    pub fn of_scene(scene: &Scene) -> Vec<Source> {
        scene
            .layers
            .iter()
            .filter(|l| *l.kind.get_ref() == LayerKind::Addresses)
            .map(|l| Source::of_layer(scene.dataset(l.file.get_ref()), l.clone()))
            .collect()
    }

    /// The source a layer's file makes: an `.osm.pbf` file is read as OSM.
    fn of_layer(path: PathBuf, spec: LayerSpec) -> Self {
        if path.extension().is_some_and(|e| e == "pbf") {
            Source::Osm(path)
        } else {
            Source::Layer(path, Box::new(spec))
        }
    }
}

/// Build one gazetteer from several sources; also gives a line per source (its counts) and the
/// sources' warnings.
///
/// Errors name the file, and the feature where one is at fault.
pub fn build(sources: &[Source]) -> Result<(Gazetteer, Vec<String>), ImportError> {
    let mut places = Vec::new();
    let mut streets = Vec::new();
    let mut report = Vec::new();
    for s in sources {
        match s {
            Source::Osm(path) => {
                let (p, st) = osm::read(path)?;
                report.push(format!(
                    "{}: {} places, {} street lines",
                    path.display(),
                    p.len(),
                    st.len()
                ));
                places.extend(p);
                streets.extend(st);
            }
            Source::Layer(path, spec) => {
                let layer = read_address_layer(path, spec)?;
                report.push(format!(
                    "{}: {} places, {} street lines",
                    path.display(),
                    layer.places.len(),
                    layer.streets.len()
                ));
                report.extend(layer.warnings);
                places.extend(layer.places);
                streets.extend(layer.streets);
            }
        }
    }
    Ok((Gazetteer::new(places, streets), report))
}
