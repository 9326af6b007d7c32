//! The gazetteer's costs on central Helsinki's OpenStreetMap extract, and how a query's time
//! grows with the city: the same places copied 1, 8 and 32 times over (each copy with its own
//! street names, so the index really holds that many distinct names), queried in one run.
//!
//! `cargo bench --workspace --bench gazetteer` prints criterion's figures, then the ratios.

use std::path::PathBuf;
use std::time::Instant;

use citytwin_engine::address::{self, Gazetteer, Place, Source, StreetLine};
use criterion::{Criterion, criterion_group};

fn helsinki() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/osm/Helsinki.osm.pbf")
}

/// Helsinki's places `copies` times, copy `c` with its street names suffixed `c`.
fn scaled(places: &[Place], copies: usize) -> Gazetteer {
    let mut all = Vec::with_capacity(places.len() * copies);
    for c in 0..copies {
        for p in places {
            let mut p = p.clone();
            if c > 0 {
                p.id = format!("{}#{c}", p.id);
                for s in p.streets.iter_mut().chain(p.names.iter_mut()) {
                    s.push_str(&format!(" {c}"));
                }
            }
            all.push(p);
        }
    }
    Gazetteer::new(all, Vec::<StreetLine>::new())
}

const QUERIES: [&str; 4] = [
    "Mannerheimintie 5",
    "Manerheimintie 5, Helsinki",
    "Helsingin päärautatieasema",
    "赫尔辛基中央车站",
];

fn bench(c: &mut Criterion) {
    let source = [Source::Osm(helsinki())];
    c.bench_function("gazetteer/build_helsinki", |b| {
        b.iter(|| address::build(&source).unwrap())
    });
    let (g, _) = address::build(&source).unwrap();
    for q in QUERIES {
        c.bench_function(&format!("gazetteer/locate/{q}"), |b| {
            b.iter(|| g.locate(q, 5))
        });
    }
    let at = g.locate("Mannerheimintie 5", 1)[0].place.at;
    c.bench_function("gazetteer/reverse", |b| b.iter(|| g.reverse(at, 100.0)));

    // Scaling, measured here in one run so the ratios are comparable.
    let places = g.places().to_vec();
    println!("\nquery time against the number of places (mean of the four queries, 20 rounds):");
    let mut first = None;
    for copies in [1, 8, 32] {
        let g = scaled(&places, copies);
        let rounds = 20;
        let t = Instant::now();
        for _ in 0..rounds {
            for q in QUERIES {
                std::hint::black_box(g.locate(q, 5));
            }
        }
        let per_query_ms = t.elapsed().as_secs_f64() * 1e3 / (rounds * QUERIES.len()) as f64;
        let base = *first.get_or_insert(per_query_ms);
        println!(
            "  {:>7} places: {per_query_ms:7.2} ms per query ({:.1}x)",
            g.places().len(),
            per_query_ms / base
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
