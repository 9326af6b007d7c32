//! The gazetteer on real OpenStreetMap data (central Helsinki, Finnish and Swedish names, and
//! Chinese names of its landmarks) and on the sample district's address register (Chinese with
//! pinyin and English, read through GDAL).

use std::path::PathBuf;

use citytwin_engine::address::{self, Gazetteer, PlaceKind, Source};
use citytwin_engine::geo_frame::LonLat;
use citytwin_engine::scene::Scene;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn helsinki() -> Gazetteer {
    let pbf = repo().join("../shared/osm/Helsinki.osm.pbf");
    address::build(&[Source::Osm(pbf)]).unwrap().0
}

fn first_id(g: &Gazetteer, q: &str) -> String {
    g.locate(q, 5)
        .first()
        .map(|m| m.place.id.clone())
        .unwrap_or_else(|| panic!("nothing found for '{q}'"))
}

#[test]
fn helsinki_addresses_and_places_are_found_through_typos_languages_and_missing_parts() {
    let g = helsinki();
    let (addresses, streets, features) = g.counts();
    assert!(
        addresses > 1000 && streets > 80 && features > 500,
        "{:?}",
        g.counts()
    );
    // (query, the OSM object it must find first)
    let cases = [
        ("Mannerheimintie 5", "osm:node/317574802"),
        ("Manerheimintie 5, Helsinki", "osm:node/317574802"),
        ("mannerheimintie 5 00100 helsinki", "osm:node/317574802"),
        ("Aleksanterinkatu 52", "osm:node/319515045"),
        ("Aleksanterinktu 52", "osm:node/319515045"),
        ("Aleksanterin katu 52", "osm:node/319515045"),
        // Swedish: the street's name:sv, which the addresses themselves do not carry.
        ("Alexandersgatan 52", "osm:node/319515045"),
        ("Kaivokatu", "osm:street/Kaivokatu"),
        ("Stockmann", "osm:way/122595241"),
        // Written in simplified characters; OpenStreetMap has the traditional 赫爾辛基中央車站.
        ("赫尔辛基中央车站", "osm:way/122595198"),
        ("赫尔辛基市政厅", "osm:way/24337154"),
    ];
    for (q, id) in cases {
        assert_eq!(first_id(&g, q), id, "query '{q}': {:#?}", g.locate(q, 3));
    }
    // OpenStreetMap gives the station building, the station node and the metro station under
    // Rautatientori the English name; the building is among the equal best.
    let found = g.locate("Helsinki Central Railway Station", 3);
    assert!(
        found
            .iter()
            .any(|m| m.place.id == "osm:way/122595198" && m.score == found[0].score),
        "{found:#?}"
    );
    // The station is found by its Finnish name as well (the station node and its building
    // both carry it; either is right).
    let m = &g.locate("Helsingin päärautatieasema", 1)[0];
    assert!(m.label.contains("Kaivokatu 1"), "{}", m.label);
    assert!(g.locate("xyzzy qwerty", 5).is_empty());
    // A number the street does not have gives the street's other numbers, lower.
    let m = g.locate("Mannerheimintie 999", 3);
    assert!(
        m[0].score < 0.8 && m[0].label.contains("Mannerheimintie"),
        "{m:#?}"
    );
}

/// Every plain address geocodes back to itself from its own label, and with a typo in the
/// street name (one letter dropped) nearly every one still does.
#[test]
fn every_helsinki_address_round_trips_through_its_label_and_through_a_typo() {
    let g = helsinki();
    let plain: Vec<_> = g
        .places()
        .iter()
        .filter(|p| p.kind == PlaceKind::Address && p.names.is_empty())
        .step_by(3)
        .collect();
    assert!(plain.len() > 100, "{}", plain.len());
    let same = |found: &address::Match, p: &address::Place| {
        found.place.streets.first() == p.streets.first() && found.place.housenumber == p.housenumber
    };
    let (mut exact, mut typo, mut typo_tried) = (0, 0, 0);
    for p in &plain {
        if g.locate(&p.label(), 1).first().is_some_and(|m| same(m, p)) {
            exact += 1;
        }
        let street = &p.streets[0];
        let chars: Vec<char> = street.chars().collect();
        if chars.len() < 8 {
            continue;
        }
        let cut: String = chars
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != chars.len() / 2)
            .map(|(_, c)| c)
            .collect();
        let q = format!("{cut} {}", p.housenumber.as_deref().unwrap_or(""));
        typo_tried += 1;
        if g.locate(&q, 1).first().is_some_and(|m| same(m, p)) {
            typo += 1;
        }
    }
    let exact_share = exact as f64 / plain.len() as f64;
    let typo_share = typo as f64 / typo_tried as f64;
    println!(
        "{} addresses: {exact_share:.3} from their label, {typo_share:.3} of {typo_tried} with a typo",
        plain.len()
    );
    assert!(exact_share > 0.99, "{exact_share}");
    assert!(typo_share > 0.95, "{typo_share}");
}

#[test]
fn helsinki_points_reverse_geocode_to_the_address_and_street_there() {
    let g = helsinki();
    let home = g
        .places()
        .iter()
        .find(|p| p.id == "osm:node/317574802")
        .unwrap()
        .clone();
    let r = g.reverse(home.at, 100.0);
    let (p, d) = r.address.unwrap();
    assert!(
        d < 1.0 && p.label().contains("Mannerheimintie 5"),
        "{} {d}",
        p.label()
    );
    // 20 m east of it: still that address or a neighbour on the same street, and the street.
    let east = LonLat::new(
        home.at.lon + 20.0 / (111_320.0 * home.at.lat.to_radians().cos()),
        home.at.lat,
    );
    let r = g.reverse(east, 100.0);
    let (p, d) = r.address.unwrap();
    assert!((15.0..=40.0).contains(&d) || d < 15.0, "{d}");
    assert!(
        p.streets.iter().any(|s| s == "Mannerheimintie") || d < 25.0,
        "{}",
        p.label()
    );
    let (street, ds) = r.street.unwrap();
    assert!(ds < 40.0, "{street} {ds}");
    // Out on the sea, 5 km south: nothing within 100 m.
    let sea = LonLat::new(home.at.lon, home.at.lat - 0.045);
    let r = g.reverse(sea, 100.0);
    assert!(r.address.is_none() && r.street.is_none());
}

fn sample_district() -> Gazetteer {
    let scene = Scene::load(repo().join("scenes/sample_district.toml")).unwrap();
    let sources = Source::of_scene(&scene);
    assert_eq!(sources.len(), 1);
    address::build(&sources).unwrap().0
}

#[test]
fn the_sample_districts_chinese_register_is_found_in_either_script() {
    let g = sample_district();
    assert_eq!(g.counts(), (48, 9, 0));
    for q in [
        "长江中路8号",
        "合肥市蜀山区长江中路8号",
        "合肥长江中路８号",
        // A wrong character (仲 for 中).
        "长江仲路8号",
        "Changjiang Zhonglu 8",
        "changjiang zhong lu 8, Hefei",
    ] {
        assert_eq!(
            first_id(&g, q),
            "addresses.csv:b07",
            "query '{q}': {:#?}",
            g.locate(q, 3)
        );
    }
    let m = &g.locate("长江中路8号", 1)[0];
    assert_eq!(m.label, "合肥市蜀山区长江中路8号");
    assert_eq!(first_id(&g, "长江路小学"), "addresses.csv:b32");
    assert_eq!(
        first_id(&g, "Changjiang Road Primary School"),
        "addresses.csv:b32"
    );
    assert_eq!(first_id(&g, "南北三路"), "addresses.csv:v2");
    assert_eq!(first_id(&g, "North-South Street 3"), "addresses.csv:v2");
    let b07 = g.locate("长江中路8号", 1)[0].place.at;
    let (p, d) = g.reverse(b07, 50.0).address.unwrap();
    assert!(p.id == "addresses.csv:b07" && d < 0.5);
}

#[test]
fn bad_address_sources_are_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("register.csv");
    std::fs::write(
        &csv,
        "id,street,housenumber,lon,lat\na1,Main Street,1,24.94,60.17\na2,Main Street,2,,\n",
    )
    .unwrap();
    let e = address::build(&[Source::from_path(csv.clone(), None)])
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("register.csv") && e.contains("a2") && e.contains("geometry"),
        "{e}"
    );
    let not_pbf = dir.path().join("city.osm.pbf");
    std::fs::write(&not_pbf, "this is not a PBF file").unwrap();
    let e = address::build(&[Source::from_path(not_pbf, None)])
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("city.osm.pbf") && e.contains("not a readable OSM PBF"),
        "{e}"
    );
    let missing = dir.path().join("none.gpkg");
    let e = address::build(&[Source::from_path(missing, None)])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("none.gpkg") && e.contains("cannot open"), "{e}");
    // A field mapped in the scene but absent from the layer.
    let mut spec = match Source::from_path(csv.clone(), None) {
        Source::Layer(_, spec) => *spec,
        Source::Osm(_) => unreachable!(),
    };
    spec.fields.insert(
        "postcode".into(),
        toml::Spanned::new(
            0..0,
            citytwin_engine::import::fields::FieldSpec::Field("zip".into()),
        ),
    );
    let e = address::build(&[Source::Layer(csv, Box::new(spec))])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("'zip'") && e.contains("postcode"), "{e}");
}

/// A street register drawn as lines (GeoJSON through GDAL): its segments make one street each,
/// and reverse geocoding finds the street under a point.
#[test]
fn a_street_layer_of_lines_gives_streets_to_reverse_geocoding() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("streets.geojson");
    let seg = |name: &str, alt: &str, a: (f64, f64), b: (f64, f64)| {
        format!(
            r#"{{"type":"Feature","properties":{{"street":"{name}","street_alt":"{alt}"}},"geometry":{{"type":"LineString","coordinates":[[{},{}],[{},{}]]}}}}"#,
            a.0, a.1, b.0, b.1
        )
    };
    let features = [
        seg(
            "长江中路",
            "Changjiang Zhonglu",
            (117.220, 31.8195),
            (117.225, 31.8195),
        ),
        seg(
            "长江中路",
            "Changjiang Road",
            (117.225, 31.8195),
            (117.230, 31.8195),
        ),
        seg(
            "南北一路",
            "Nanbei Yilu",
            (117.224, 31.815),
            (117.224, 31.825),
        ),
    ];
    std::fs::write(
        &file,
        format!(
            r#"{{"type":"FeatureCollection","features":[{}]}}"#,
            features.join(",")
        ),
    )
    .unwrap();
    let (g, report) = address::build(&[Source::from_path(file, None)]).unwrap();
    assert_eq!(g.counts(), (0, 2, 0), "{report:?}");
    let road = &g.locate("Changjiang Road", 1)[0];
    assert_eq!(
        road.place.streets,
        ["长江中路", "Changjiang Zhonglu", "Changjiang Road"]
    );
    // 20 m north of the arterial, far from the north–south street.
    let r = g.reverse(LonLat::new(117.2275, 31.8195 + 20.0 / 111_000.0), 100.0);
    let (name, d) = r.street.unwrap();
    assert_eq!(name, "长江中路");
    assert!((d - 20.0).abs() < 1.0, "{d}");
    assert!(r.address.is_none());
}
