//! Gazetteer places from OpenStreetMap: every node, way and multipolygon with `addr:*` tags is
//! an address (ways and relations at the mean of their nodes), every named street a street, and
//! every named node or way with a key that marks a place people look for (amenity, shop,
//! tourism, railway station, …) a feature. Names in other languages (`name:sv`, `name:zh`,
//! `addr:street:sv`, `alt_name`, `old_name`) become alternative names.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Place, PlaceKind, StreetLine};
use crate::geo_frame::LonLat;
use crate::import::ImportError;
use crate::import::osm_pbf::{self, MemberKind, OsmData, Tags};

/// The keys whose named objects are features people search for, in order of preference when an
/// object has several.
const FEATURE_KEYS: &[&str] = &[
    "amenity",
    "shop",
    "tourism",
    "leisure",
    "office",
    "healthcare",
    "historic",
    "railway",
    "public_transport",
    "place",
    "building",
    "landuse",
    "natural",
];

/// The street kinds (OSM `highway` values) whose names are streets.
fn is_street(kind: &str) -> bool {
    matches!(
        kind,
        "motorway"
            | "trunk"
            | "primary"
            | "secondary"
            | "tertiary"
            | "unclassified"
            | "residential"
            | "living_street"
            | "pedestrian"
            | "service"
            | "road"
            | "footway"
            | "cycleway"
            | "path"
            | "steps"
            | "track"
    ) || kind.ends_with("_link")
}

fn tag<'a>(tags: &'a Tags, k: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(key, _)| key == k)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.trim().is_empty())
}

/// The main value of `base` and its language variants (`base:sv`, `base:zh`), without repeats.
fn variants(tags: &Tags, base: &str, extra: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |v: &str| {
        for part in v.split(';') {
            let part = part.trim();
            if !part.is_empty() && !out.iter().any(|o| o == part) {
                out.push(part.to_string());
            }
        }
    };
    if let Some(v) = tag(tags, base) {
        push(v);
    }
    let prefix = format!("{base}:");
    let mut langs: Vec<&(String, String)> = tags
        .iter()
        .filter(|(k, _)| {
            k.strip_prefix(&prefix).is_some_and(|lang| {
                lang.len() <= 7
                    && lang
                        .chars()
                        .all(|c| c.is_ascii_alphabetic() || c == '-' || c == '_')
            })
        })
        .collect();
    langs.sort();
    for (_, v) in langs {
        push(v);
    }
    for k in extra {
        if let Some(v) = tag(tags, k) {
            push(v);
        }
    }
    out
}

fn place_of(id: String, tags: &Tags, at: LonLat) -> Option<Place> {
    let housenumber = tag(tags, "addr:housenumber").map(str::to_string);
    let mut streets = variants(tags, "addr:street", &[]);
    if streets.is_empty() {
        streets = variants(tags, "addr:place", &[]);
    }
    let names = variants(
        tags,
        "name",
        &["alt_name", "old_name", "official_name", "short_name"],
    );
    let category = FEATURE_KEYS
        .iter()
        .find_map(|k| tag(tags, k).map(|v| format!("{k}={v}")));
    let is_feature = category.is_some();
    let kind = match category {
        _ if housenumber.is_some() && !streets.is_empty() => PlaceKind::Address,
        Some(c) if !names.is_empty() && tag(tags, "highway").is_none() => PlaceKind::Feature(c),
        _ => return None,
    };
    Some(Place {
        id,
        kind,
        // An address keeps its name only when it is a named feature too (a museum's address).
        names: if is_feature { names } else { Vec::new() },
        streets,
        housenumber,
        postcode: tag(tags, "addr:postcode").map(str::to_string),
        district: tag(tags, "addr:suburb")
            .or_else(|| tag(tags, "addr:district"))
            .map(str::to_string),
        cities: variants(tags, "addr:city", &[]),
        at,
    })
}

fn mean(points: impl Iterator<Item = (f64, f64)>) -> Option<LonLat> {
    let (mut x, mut y, mut n) = (0.0, 0.0, 0usize);
    for (lon, lat) in points {
        x += lon;
        y += lat;
        n += 1;
    }
    (n > 0).then(|| LonLat::new(x / n as f64, y / n as f64))
}

/// Places and street lines of one OSM PBF file.
pub fn read(path: &Path) -> Result<(Vec<Place>, Vec<StreetLine>), ImportError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ImportError::File {
        file: file.clone(),
        message: format!("cannot read it: {e}"),
    })?;
    let data = osm_pbf::read(&bytes).map_err(|m| ImportError::File {
        file,
        message: format!("not a readable OSM PBF file: {m}"),
    })?;
    Ok(from_osm(&data))
}

/// Places and street lines of decoded OSM data.
pub fn from_osm(data: &OsmData) -> (Vec<Place>, Vec<StreetLine>) {
    let mut places = Vec::new();
    let mut node_ids: Vec<&i64> = data.node_tags.keys().collect();
    node_ids.sort();
    for id in node_ids {
        let (Some(tags), Some(&(lon, lat))) = (data.node_tags.get(id), data.nodes.get(id)) else {
            continue;
        };
        if let Some(p) = place_of(format!("osm:node/{id}"), tags, LonLat::new(lon, lat)) {
            places.push(p);
        }
    }
    let ways: BTreeMap<i64, &osm_pbf::Way> = data.ways.iter().map(|w| (w.id, w)).collect();
    let way_points = |w: &osm_pbf::Way| {
        let mut pts: Vec<(f64, f64)> = w
            .nodes
            .iter()
            .filter_map(|n| data.nodes.get(n).copied())
            .collect();
        // A closed ring repeats its first node; count it once.
        if pts.len() > 1 && w.nodes.first() == w.nodes.last() {
            pts.pop();
        }
        pts
    };
    // Streets: one place per distinct name (at the middle vertex of its longest way), and every
    // named way's line for reverse geocoding.
    let mut lines = Vec::new();
    let mut street_at: BTreeMap<String, (usize, LonLat, Vec<String>)> = BTreeMap::new();
    for w in ways.values() {
        if let Some(at) = tag(&w.tags, "highway")
            .filter(|k| is_street(k))
            .and(mean(way_points(w).into_iter()))
        {
            let names = variants(&w.tags, "name", &["alt_name", "old_name"]);
            let Some(main) = names.first().cloned() else {
                continue;
            };
            let pts: Vec<LonLat> = w
                .nodes
                .iter()
                .filter_map(|n| data.nodes.get(n).map(|&(x, y)| LonLat::new(x, y)))
                .collect();
            let mid = pts.get(pts.len() / 2).copied().unwrap_or(at);
            let e = street_at
                .entry(main.clone())
                .or_insert((0, mid, Vec::new()));
            if pts.len() > e.0 {
                e.0 = pts.len();
                e.1 = mid;
            }
            for n in names {
                if !e.2.contains(&n) {
                    e.2.push(n);
                }
            }
            lines.push(StreetLine {
                name: main,
                points: pts,
            });
            continue;
        }
        if let Some(at) = mean(way_points(w).into_iter())
            && let Some(p) = place_of(format!("osm:way/{}", w.id), &w.tags, at)
        {
            places.push(p);
        }
    }
    // Multipolygons (large buildings): the mean of their outer ways' nodes.
    for r in &data.relations {
        if tag(&r.tags, "type") != Some("multipolygon") {
            continue;
        }
        let outer = r
            .members
            .iter()
            .filter(|(k, _, role)| *k == MemberKind::Way && (role == "outer" || role.is_empty()))
            .filter_map(|(_, id, _)| ways.get(id))
            .flat_map(|w| way_points(w));
        if let Some(at) = mean(outer)
            && let Some(p) = place_of(format!("osm:relation/{}", r.id), &r.tags, at)
        {
            places.push(p);
        }
    }
    // An address names its street in the local language only (`addr:street`); the street's
    // way gives its other names (`name:sv`), which the address then answers to as well.
    for p in &mut places {
        if let Some((_, _, names)) = p.streets.first().and_then(|s| street_at.get(s)) {
            for n in names {
                if !p.streets.contains(n) {
                    p.streets.push(n.clone());
                }
            }
        }
    }
    for (name, (_, at, names)) in street_at {
        places.push(Place {
            id: format!("osm:street/{name}"),
            kind: PlaceKind::Street,
            names: Vec::new(),
            streets: names,
            housenumber: None,
            postcode: None,
            district: None,
            cities: Vec::new(),
            at,
        });
    }
    // A building's city often sits only on some of its neighbours; places of the same street
    // share it, so a missing one is filled from the street's most common value (the postcode is
    // not: a long street crosses several).
    fill_city_from_street(&mut places);
    (places, lines)
}

fn fill_city_from_street(places: &mut [Place]) {
    let mut common: BTreeMap<String, BTreeMap<Vec<String>, usize>> = BTreeMap::new();
    for p in places.iter().filter(|p| !p.cities.is_empty()) {
        if let Some(s) = p.streets.first() {
            *common
                .entry(s.clone())
                .or_default()
                .entry(p.cities.clone())
                .or_default() += 1;
        }
    }
    for p in places.iter_mut().filter(|p| p.cities.is_empty()) {
        // The most common; among equals, the first in order.
        if let Some(counts) = p.streets.first().and_then(|s| common.get(s))
            && let Some(c) = counts
                .iter()
                .rev()
                .max_by_key(|(_, n)| **n)
                .map(|(c, _)| c.clone())
        {
            p.cities = c;
        }
    }
}
