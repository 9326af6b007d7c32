//! Generates `data/sample/`: a small, made-up district of Hefei that the default scene loads.
//!
//! ```text
//! cargo build --release --workspace --all-targets
//! target/release/examples/generate_sample_city data/sample
//! ```
//!
//! Everything is derived from a fixed layout and a seeded random stream, so the same code writes
//! the same features. The files deliberately use several CRSs and formats, so loading the sample
//! exercises the ordinary import path: streets, intersections and sensors as GeoJSON in WGS84,
//! buildings and the drainage network as GeoPackage in CGCS2000 / 3-degree Gauss–Krüger CM 117E
//! (EPSG:4548, the zone Hefei's surveys use), and the DEM as a GeoTIFF in UTM zone 50N (EPSG:32650).
//!
//! The district: a 5 × 4 grid of intersections 150 m apart, an east–west arterial with a
//! coordinated (green-wave) signal plan, 48 buildings in 12 blocks (one block is a chemical plant
//! with a stack), ground falling gently to the south-east with a low-lying bowl, and a drainage
//! network of 20 manholes draining through a trunk sewer to an outfall on the river.

use std::path::{Path, PathBuf};

use citytwin_engine::crs::{parse_crs, wgs84};
use citytwin_engine::geo_frame::{GeoFrame, LonLat};
use citytwin_engine::rng::{Rng, SimRng};
use gdal::DriverManager;
use gdal::spatial_ref::{CoordTransform, SpatialRef};
use gdal::vector::{
    Feature, FieldValue, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType, ToGdal,
};
use geo::{Coord, Geometry, LineString, MapCoords, Point, Polygon};

/// The scene origin: central Hefei.
const ORIGIN: LonLat = LonLat {
    lon: 117.2272,
    lat: 31.8206,
};
const NX: usize = 5;
const NY: usize = 4;
const BLOCK_M: f64 = 150.0;
const X0: f64 = -300.0;
const Y0: f64 = -225.0;

fn node_xy(i: usize, j: usize) -> (f64, f64) {
    (X0 + i as f64 * BLOCK_M, Y0 + j as f64 * BLOCK_M)
}

/// Ground elevation of the made-up terrain, m: a plain falling 1.5 m/km to the south-east, a
/// low-lying bowl 2.5 m deep around (150, -100), and a river bank in the far south-east.
fn ground_m(x: f64, y: f64) -> f64 {
    let plain = 24.0 - 0.0015 * (x + 400.0) - 0.0020 * (y + 320.0);
    let bowl =
        -2.5 * (-((x - 150.0).powi(2) + (y + 100.0).powi(2)) / (2.0 * 60.0f64.powi(2))).exp();
    let river = -3.0 / (1.0 + (-(x + (-y) - 620.0) / 15.0).exp());
    plain + bowl + river
}

/// The street names of the district in Chinese, pinyin and the road layer's English: the
/// east–west street `j` and the north–south street `i` (1-based, as the road layer numbers them).
fn street_names(east_west: bool, k: usize) -> [String; 3] {
    const NUMERALS: [&str; 5] = ["一", "二", "三", "四", "五"];
    const PINYIN: [&str; 5] = ["Yi", "Er", "San", "Si", "Wu"];
    if east_west && k == 2 {
        return [
            "长江中路".into(),
            "Changjiang Zhonglu".into(),
            "Changjiang Road 2".into(),
        ];
    }
    if east_west {
        [
            format!("东西{}街", NUMERALS[k - 1]),
            format!("Dongxi {}jie", PINYIN[k - 1]),
            format!("East-West Street {k}"),
        ]
    } else {
        [
            format!("南北{}路", NUMERALS[k - 1]),
            format!("Nanbei {}lu", PINYIN[k - 1]),
            format!("North-South Street {k}"),
        ]
    }
}

/// `addresses.csv`: every building's address on the east–west street it fronts (odd numbers on
/// the north side, even on the south, rising eastwards), in Chinese with pinyin and English
/// alternatives, and the school and the plant as named places. A plain CSV with lon/lat
/// columns, as a city's address register exports it.
fn write_addresses(
    w: &Writer,
    buildings: &[(usize, (f64, f64), (usize, usize), (usize, usize), &str)],
) {
    let mut out = String::from(
        "id,street,street_alt,housenumber,postcode,district,city,city_alt,name,name_alt,category,lon,lat\n",
    );
    for &(bid, (cx, cy), (bi, bj), (qi, qj), use_) in buildings {
        // The south row of a block fronts the street below it, the north row the one above.
        let street = if qj == 0 { bj + 1 } else { bj + 2 };
        let [zh, pinyin, english] = street_names(true, street);
        let along = bi * 2 + qi;
        let number = if qj == 0 {
            2 * along + 1
        } else {
            2 * along + 2
        };
        let (name, name_alt, category) = match use_ {
            "school" => ("长江路小学", "Changjiang Road Primary School", "school"),
            "industrial" if qi == 0 && qj == 0 => {
                ("合肥化工厂", "Hefei Chemical Works", "industrial")
            }
            _ => ("", "", ""),
        };
        let ll = w.frame.to_wgs84(Coord { x: cx, y: cy });
        out.push_str(&format!(
            "b{bid:02},{zh},{pinyin};{english},{number},230031,蜀山区,合肥市,Hefei,{name},{name_alt},{category},{:.7},{:.7}\n",
            ll.lon, ll.lat
        ));
    }
    // Every street as a place of its own, at its middle.
    let streets = (0..NY)
        .map(|j| {
            (
                true,
                j,
                Coord {
                    x: X0 + BLOCK_M * (NX - 1) as f64 / 2.0,
                    y: node_xy(0, j).1,
                },
            )
        })
        .chain((0..NX).map(|i| {
            (
                false,
                i,
                Coord {
                    x: node_xy(i, 0).0,
                    y: Y0 + BLOCK_M * (NY - 1) as f64 / 2.0,
                },
            )
        }));
    for (east_west, k, at) in streets {
        let [zh, pinyin, english] = street_names(east_west, k + 1);
        let id = if east_west {
            format!("h{k}")
        } else {
            format!("v{k}")
        };
        let ll = w.frame.to_wgs84(at);
        out.push_str(&format!(
            "{id},{zh},{pinyin};{english},,230031,蜀山区,合肥市,Hefei,,,,{:.7},{:.7}\n",
            ll.lon, ll.lat
        ));
    }
    std::fs::write(w.dir.join("addresses.csv"), out).unwrap();
}

struct Writer {
    frame: GeoFrame,
    dir: PathBuf,
}

impl Writer {
    /// Local metres → target CRS coordinates.
    fn to_crs(&self, g: &Geometry<f64>, target: &SpatialRef) -> Geometry<f64> {
        let t = CoordTransform::new(&wgs84().unwrap(), target).unwrap();
        g.map_coords(|c| {
            let ll = self.frame.to_wgs84(c);
            let (mut x, mut y) = ([ll.lon], [ll.lat]);
            t.transform_coords(&mut x, &mut y, &mut []).unwrap();
            Coord { x: x[0], y: y[0] }
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn layer(
        &self,
        file: &str,
        driver: &str,
        layer: &str,
        crs: &str,
        ty: OGRwkbGeometryType::Type,
        fields: &[(&str, OGRFieldType::Type)],
        features: Vec<(Geometry<f64>, Vec<FieldValue>)>,
    ) {
        let path = self.dir.join(file);
        let mut ds = if path.exists() && driver == "GPKG" {
            gdal::Dataset::open_ex(
                &path,
                gdal::DatasetOptions {
                    open_flags: gdal::GdalOpenFlags::GDAL_OF_UPDATE
                        | gdal::GdalOpenFlags::GDAL_OF_VECTOR,
                    ..Default::default()
                },
            )
            .unwrap()
        } else {
            let _ = std::fs::remove_file(&path);
            DriverManager::get_driver_by_name(driver)
                .unwrap()
                .create_vector_only(&path)
                .unwrap()
        };
        let srs = parse_crs(crs).unwrap();
        let opts: &[&str] = if driver == "GeoJSON" {
            &["COORDINATE_PRECISION=8", "WRITE_NAME=NO"]
        } else {
            &[]
        };
        let lyr = ds
            .create_layer(LayerOptions {
                name: layer,
                srs: Some(&srs),
                ty,
                options: Some(opts),
            })
            .unwrap();
        lyr.create_defn_fields(fields).unwrap();
        for (g, values) in features {
            let mut f = Feature::new(lyr.defn()).unwrap();
            f.set_geometry(self.to_crs(&g, &srs).to_gdal().unwrap())
                .unwrap();
            for (i, v) in values.iter().enumerate() {
                // NaN stands for "no value": leave the field null.
                if !matches!(v, FieldValue::RealValue(x) if x.is_nan()) {
                    f.set_field(i, v).unwrap();
                }
            }
            f.create(&lyr).unwrap();
        }
        println!("wrote {} ({layer}, {crs})", path.display());
    }
}

fn s(v: &str) -> FieldValue {
    FieldValue::StringValue(v.to_string())
}
fn r(v: f64) -> FieldValue {
    FieldValue::RealValue(if v.is_nan() {
        v
    } else {
        (v * 1000.0).round() / 1000.0
    })
}
fn n(v: i64) -> FieldValue {
    FieldValue::Integer64Value(v)
}

// Grid code reads best with (i, j) indices.
#[allow(clippy::needless_range_loop)]
fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "data/sample".into()),
    );
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["buildings.gpkg", "drainage.gpkg"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let w = Writer {
        frame: GeoFrame::new(ORIGIN),
        dir: dir.clone(),
    };
    let mut rng = SimRng::new(20261125).stream("sample-city");
    use OGRFieldType::*;
    use OGRwkbGeometryType::*;

    // Intersections: the 6 interior ones and the arterial's are signalised; the arterial (row 1)
    // gets offsets for a green wave eastbound at 50 km/h.
    let mut feats = Vec::new();
    for j in 0..NY {
        for i in 0..NX {
            let (x, y) = node_xy(i, j);
            let interior = (1..NX - 1).contains(&i) && (1..NY - 1).contains(&j);
            let arterial = j == 1;
            let (signal, offset) = if arterial {
                (
                    "GGrr:32 yyrr:3 rrGG:22 rryy:3".to_string(),
                    (i as f64 * BLOCK_M / (50.0 / 3.6)).round(),
                )
            } else if interior {
                ("GGrr:27 yyrr:3 rrGG:27 rryy:3".to_string(), 0.0)
            } else {
                (String::new(), 0.0)
            };
            feats.push((
                Point::new(x, y).into(),
                vec![
                    s(&format!("n{i}{j}")),
                    if signal.is_empty() {
                        FieldValue::StringValue(String::new())
                    } else {
                        s(&signal)
                    },
                    r(offset),
                ],
            ));
        }
    }
    w.layer(
        "intersections.geojson",
        "GeoJSON",
        "intersections",
        "EPSG:4326",
        wkbPoint,
        &[
            ("id", OFTString),
            ("signal", OFTString),
            ("signal_offset", OFTReal),
        ],
        feats,
    );

    // Streets: two-way links between neighbouring intersections.
    let mut feats = Vec::new();
    for j in 0..NY {
        for i in 0..NX - 1 {
            let (a, b) = (node_xy(i, j), node_xy(i + 1, j));
            let (name, lanes, speed) = if j == 1 {
                ("Changjiang Road", 3, 60)
            } else {
                ("East-West Street", 1 + (j % 2) as i64, 40)
            };
            feats.push((
                LineString::from(vec![a, b]).into(),
                vec![
                    s(&format!("h{i}{j}")),
                    s(&format!("{name} {}", j + 1)),
                    n(lanes),
                    n(speed),
                    s("no"),
                    s(&format!("n{i}{j}")),
                    s(&format!("n{}{j}", i + 1)),
                ],
            ));
        }
    }
    for i in 0..NX {
        for j in 0..NY - 1 {
            let (a, b) = (node_xy(i, j), node_xy(i, j + 1));
            feats.push((
                LineString::from(vec![a, b]).into(),
                vec![
                    s(&format!("v{i}{j}")),
                    s(&format!("North-South Street {}", i + 1)),
                    n(2),
                    n(40),
                    s("no"),
                    s(&format!("n{i}{j}")),
                    s(&format!("n{i}{}", j + 1)),
                ],
            ));
        }
    }
    w.layer(
        "roads.geojson",
        "GeoJSON",
        "roads",
        "EPSG:4326",
        wkbLineString,
        &[
            ("id", OFTString),
            ("name", OFTString),
            ("lanes", OFTInteger64),
            ("maxspeed", OFTInteger64),
            ("oneway", OFTString),
            ("from", OFTString),
            ("to", OFTString),
        ],
        feats,
    );

    // Buildings: 4 per block, 12 blocks; block (3, 0) in the south-east is the chemical plant.
    let mut feats = Vec::new();
    let mut bid = 0;
    let mut addressed = Vec::new();
    for bj in 0..NY - 1 {
        for bi in 0..NX - 1 {
            let (x0, y0) = node_xy(bi, bj);
            let plant = bi == 3 && bj == 0;
            for (qi, qj) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let wx = 40.0 + rng.next_u32() as f64 / u32::MAX as f64 * 15.0;
                let wy = 35.0 + rng.next_u32() as f64 / u32::MAX as f64 * 15.0;
                let cx = x0 + 20.0 + qi as f64 * 60.0 + 27.0;
                let cy = y0 + 20.0 + qj as f64 * 60.0 + 27.0;
                let poly = Polygon::new(
                    LineString::from(vec![
                        (cx - wx / 2.0, cy - wy / 2.0),
                        (cx + wx / 2.0, cy - wy / 2.0),
                        (cx + wx / 2.0, cy + wy / 2.0),
                        (cx - wx / 2.0, cy + wy / 2.0),
                        (cx - wx / 2.0, cy - wy / 2.0),
                    ]),
                    vec![],
                );
                let (use_, floors) = if plant {
                    ("industrial", 2 + (rng.next_u32() % 3) as i64)
                } else if bj == 1 {
                    ("commercial", 4 + (rng.next_u32() % 12) as i64)
                } else if bi == 0 && bj == 2 && qi == 0 && qj == 0 {
                    ("school", 4)
                } else {
                    ("residential", 6 + (rng.next_u32() % 20) as i64)
                };
                let height = floors as f64 * if use_ == "industrial" { 5.0 } else { 3.0 };
                let per_person = match use_ {
                    "residential" => 35.0,
                    "commercial" => 20.0,
                    "school" => 8.0,
                    _ => 100.0,
                };
                let occupants = (wx * wy * floors as f64 / per_person).round() as i64;
                addressed.push((bid, (cx, cy), (bi, bj), (qi, qj), use_));
                feats.push((
                    poly.into(),
                    vec![
                        s(&format!("b{bid:02}")),
                        r(height),
                        n(floors),
                        s(use_),
                        n(occupants),
                    ],
                ));
                bid += 1;
            }
        }
    }
    w.layer(
        "buildings.gpkg",
        "GPKG",
        "buildings",
        "EPSG:4548",
        wkbPolygon,
        &[
            ("id", OFTString),
            ("height", OFTReal),
            ("floors", OFTInteger64),
            ("use", OFTString),
            ("occupants", OFTInteger64),
        ],
        feats,
    );

    write_addresses(&w, &addressed);

    // Drainage: a manhole 6 m north-east of each intersection; each row drains east, the east
    // column is the trunk draining south to the outfall on the river bank.
    let mh = |i: usize, j: usize| {
        let (x, y) = node_xy(i, j);
        (x + 6.0, y + 6.0)
    };
    let mut invert = vec![vec![f64::NAN; NY]; NX];
    let mut conduits: Vec<(String, (usize, usize), (usize, usize), f64)> = Vec::new();
    for j in 0..NY {
        for i in 0..NX {
            let (x, y) = mh(i, j);
            let mut inv = ground_m(x, y) - 2.0;
            if i > 0 {
                inv = inv.min(invert[i - 1][j] - 0.003 * BLOCK_M);
            }
            invert[i][j] = inv;
        }
    }
    for j in (0..NY - 1).rev() {
        let i = NX - 1;
        invert[i][j] = invert[i][j].min(invert[i][j + 1] - 0.002 * BLOCK_M);
    }
    for j in 0..NY {
        for i in 0..NX - 1 {
            conduits.push((
                format!("c{i}{j}e"),
                (i, j),
                (i + 1, j),
                if j == 1 { 0.8 } else { 0.6 },
            ));
        }
    }
    for j in (1..NY).rev() {
        conduits.push((
            format!("t{j}"),
            (NX - 1, j),
            (NX - 1, j - 1),
            1.0 + 0.2 * (NY - 1 - j) as f64,
        ));
    }
    let outfall_xy = (390.0, -300.0);
    let outfall_invert = invert[NX - 1][0] - 0.4;
    let mut feats = Vec::new();
    for j in 0..NY {
        for i in 0..NX {
            let (x, y) = mh(i, j);
            feats.push((
                Point::new(x, y).into(),
                vec![
                    s(&format!("m{i}{j}")),
                    r(invert[i][j]),
                    r(ground_m(x, y)),
                    r(1.2),
                ],
            ));
        }
    }
    w.layer(
        "drainage.gpkg",
        "GPKG",
        "manholes",
        "EPSG:4548",
        wkbPoint,
        &[
            ("id", OFTString),
            ("invert", OFTReal),
            ("rim", OFTReal),
            ("area", OFTReal),
        ],
        feats,
    );
    w.layer(
        "drainage.gpkg",
        "GPKG",
        "outfalls",
        "EPSG:4548",
        wkbPoint,
        &[("id", OFTString), ("invert", OFTReal)],
        vec![(
            Point::new(outfall_xy.0, outfall_xy.1).into(),
            vec![s("river"), r(outfall_invert)],
        )],
    );
    let mut feats = Vec::new();
    for (id, a, b, d) in &conduits {
        let (pa, pb) = (mh(a.0, a.1), mh(b.0, b.1));
        feats.push((
            LineString::from(vec![pa, pb]).into(),
            vec![
                s(id),
                s(&format!("m{}{}", a.0, a.1)),
                s(&format!("m{}{}", b.0, b.1)),
                s("circular"),
                r(*d),
                r(0.013),
            ],
        ));
    }
    let last = mh(NX - 1, 0);
    feats.push((
        LineString::from(vec![last, outfall_xy]).into(),
        vec![
            s("out"),
            s(&format!("m{}0", NX - 1)),
            s("river"),
            s("circular"),
            r(1.6),
            r(0.013),
        ],
    ));
    w.layer(
        "drainage.gpkg",
        "GPKG",
        "conduits",
        "EPSG:4548",
        wkbLineString,
        &[
            ("id", OFTString),
            ("from", OFTString),
            ("to", OFTString),
            ("shape", OFTString),
            ("diameter", OFTReal),
            ("roughness", OFTReal),
        ],
        feats,
    );

    // Sensors.
    let sensors: Vec<(&str, &str, (f64, f64), &str)> = vec![
        ("rg1", "rain_gauge", (-250.0, 120.0), ""),
        ("rg2", "rain_gauge", (250.0, -150.0), ""),
        ("wl1", "water_level", (150.0, -100.0), ""),
        ("wl2", "water_level", mh(3, 1), ""),
        ("wl3", "water_level", mh(4, 0), ""),
        ("aq1", "air_quality", (330.0, -120.0), "NO2,PM2.5,SO2"),
        ("aq2", "air_quality", (-100.0, -40.0), "NO2,PM2.5"),
        ("aq3", "air_quality", (150.0, -260.0), "NO2,SO2"),
        ("aq4", "air_quality", (450.0, 40.0), "NO2,PM2.5,SO2"),
        ("aq5", "air_quality", (-300.0, -200.0), "NO2,PM2.5"),
        ("aq6", "air_quality", (100.0, 150.0), "NO2,PM2.5,SO2"),
        ("td1", "traffic_detector", (-225.0, -75.0), ""),
        ("td2", "traffic_detector", (75.0, -75.0), ""),
        ("td3", "traffic_detector", (-75.0, 75.0), ""),
    ];
    let feats = sensors
        .into_iter()
        .map(|(id, kind, (x, y), pol)| {
            (
                Point::new(x, y).into(),
                vec![
                    s(id),
                    s(kind),
                    s(&format!("HF-{}", id.to_uppercase())),
                    s(pol),
                ],
            )
        })
        .collect();
    w.layer(
        "sensors.geojson",
        "GeoJSON",
        "sensors",
        "EPSG:4326",
        wkbPoint,
        &[
            ("id", OFTString),
            ("kind", OFTString),
            ("station", OFTString),
            ("pollutants", OFTString),
        ],
        feats,
    );

    // Emission sources: the plant's stack and its tank-farm area.
    let (px, py) = node_xy(3, 0);
    let tank = Polygon::new(
        LineString::from(vec![
            (px + 85.0, py + 30.0),
            (px + 125.0, py + 30.0),
            (px + 125.0, py + 60.0),
            (px + 85.0, py + 60.0),
            (px + 85.0, py + 30.0),
        ]),
        vec![],
    );
    let feats = vec![
        (
            Point::new(px + 45.0, py + 45.0).into(),
            vec![
                s("stack1"),
                s("NO2"),
                r(2.5),
                r(45.0),
                r(1.8),
                r(12.0),
                r(420.0),
            ],
        ),
        (
            Point::new(px + 45.0, py + 45.0).into(),
            vec![
                s("stack1-so2"),
                s("SO2"),
                r(1.2),
                r(45.0),
                r(1.8),
                r(12.0),
                r(420.0),
            ],
        ),
        (
            tank.into(),
            vec![
                s("tanks"),
                s("VOC"),
                r(0.4),
                FieldValue::RealValue(f64::NAN),
                FieldValue::RealValue(f64::NAN),
                FieldValue::RealValue(f64::NAN),
                FieldValue::RealValue(f64::NAN),
            ],
        ),
    ];
    w.layer(
        "emission_sources.geojson",
        "GeoJSON",
        "emission_sources",
        "EPSG:4326",
        wkbUnknown,
        &[
            ("id", OFTString),
            ("pollutant", OFTString),
            ("rate_g_s", OFTReal),
            ("height", OFTReal),
            ("diameter", OFTReal),
            ("exit_velocity", OFTReal),
            ("exit_temperature", OFTReal),
        ],
        feats,
    );

    write_dem(&w.frame, &dir.join("dem.tif"));
}

/// The DEM as a GeoTIFF in UTM 50N, 5 m cells, covering the district with a margin.
fn write_dem(frame: &GeoFrame, path: &Path) {
    let utm = parse_crs("EPSG:32650").unwrap();
    let to_utm = CoordTransform::new(&wgs84().unwrap(), &utm).unwrap();
    let from_utm = CoordTransform::new(&utm, &wgs84().unwrap()).unwrap();
    let corners = [
        (-420.0, -340.0),
        (420.0, -340.0),
        (420.0, 340.0),
        (-420.0, 340.0),
    ];
    let (mut xs, mut ys): (Vec<f64>, Vec<f64>) = corners
        .iter()
        .map(|&(x, y)| {
            let ll = frame.to_wgs84(Coord { x, y });
            (ll.lon, ll.lat)
        })
        .unzip();
    to_utm.transform_coords(&mut xs, &mut ys, &mut []).unwrap();
    let cell = 5.0;
    let minx = (xs.iter().cloned().fold(f64::MAX, f64::min) / cell).floor() * cell;
    let maxx = (xs.iter().cloned().fold(f64::MIN, f64::max) / cell).ceil() * cell;
    let miny = (ys.iter().cloned().fold(f64::MAX, f64::min) / cell).floor() * cell;
    let maxy = (ys.iter().cloned().fold(f64::MIN, f64::max) / cell).ceil() * cell;
    let w = ((maxx - minx) / cell) as usize;
    let h = ((maxy - miny) / cell) as usize;
    let (mut cx, mut cy) = (Vec::with_capacity(w * h), Vec::with_capacity(w * h));
    for row in 0..h {
        for col in 0..w {
            cx.push(minx + (col as f64 + 0.5) * cell);
            cy.push(maxy - (row as f64 + 0.5) * cell);
        }
    }
    from_utm
        .transform_coords(&mut cx, &mut cy, &mut [])
        .unwrap();
    let data: Vec<f32> = cx
        .iter()
        .zip(&cy)
        .map(|(&lon, &lat)| {
            let c = frame.to_local(LonLat::new(lon, lat));
            ((ground_m(c.x, c.y) * 100.0).round() / 100.0) as f32
        })
        .collect();
    let _ = std::fs::remove_file(path);
    let driver = DriverManager::get_driver_by_name("GTiff").unwrap();
    let opts = gdal::raster::RasterCreationOptions::from_iter([
        "COMPRESS=DEFLATE",
        "PREDICTOR=3",
        "TILED=NO",
    ]);
    let mut ds = driver
        .create_with_band_type_with_options::<f32, _>(path, w, h, 1, &opts)
        .unwrap();
    ds.set_geo_transform(&[minx, cell, 0.0, maxy, 0.0, -cell])
        .unwrap();
    ds.set_spatial_ref(&utm).unwrap();
    let mut band = ds.rasterband(1).unwrap();
    band.set_no_data_value(Some(-9999.0)).unwrap();
    let mut buf = gdal::raster::Buffer::new((w, h), data);
    band.write((0, 0), (w, h), &mut buf).unwrap();
    println!(
        "wrote {} ({w} × {h} cells of {cell} m, EPSG:32650)",
        path.display()
    );
}
