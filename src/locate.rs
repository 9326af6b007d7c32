//! `citytwin locate`: geocode free text, or reverse-geocode a point, against the gazetteer of a
//! scene's address layers and any other sources given.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use citytwin_engine::address::{self, Gazetteer, Source};
use citytwin_engine::geo_frame::LonLat;
use citytwin_engine::scene::Scene;

/// What `citytwin locate` was asked.
#[derive(clap::Args)]
pub struct LocateArgs {
    /// What to find: "Mannerheimintie 5, Helsinki", "合肥市长江中路8号".
    #[arg(required_unless_present = "at")]
    pub query: Option<String>,
    /// Reverse-geocode this point instead: LON,LAT in WGS84 degrees.
    #[arg(long, value_name = "LON,LAT", conflicts_with = "query")]
    pub at: Option<String>,
    /// The scene whose address layers (`kind = "addresses"`) to search.
    #[arg(long, required_unless_present = "from")]
    pub scene: Option<PathBuf>,
    /// Another source: an .osm.pbf file or an address layer GDAL reads (repeatable).
    #[arg(long = "from", value_name = "FILE")]
    pub from: Vec<PathBuf>,
    /// CRS of `--from` layers that carry none (a CSV's lon/lat columns: EPSG:4326).
    #[arg(long)]
    pub crs: Option<String>,
    /// How many answers to print.
    #[arg(long, default_value_t = 5)]
    pub limit: usize,
    /// How far `--at` looks, m.
    #[arg(long, default_value_t = 100.0)]
    pub radius_m: f64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Parse `LON,LAT` (WGS84 degrees).
pub fn parse_lonlat(text: &str) -> Result<LonLat> {
    let (lon, lat) = text
        .split_once(',')
        .with_context(|| format!("'{text}' is not LON,LAT (e.g. 24.9414,60.1699)"))?;
    let p = LonLat::new(
        lon.trim()
            .parse()
            .with_context(|| format!("longitude '{lon}' is not a number"))?,
        lat.trim()
            .parse()
            .with_context(|| format!("latitude '{lat}' is not a number"))?,
    );
    if !p.is_valid() {
        bail!("'{text}' is not on the globe (longitude -180..180, latitude -90..90)");
    }
    Ok(p)
}

/// The gazetteer of a scene's address layers plus `from`, with what each source gave.
pub fn gazetteer(
    scene: Option<&PathBuf>,
    from: &[PathBuf],
    crs: Option<&str>,
) -> Result<(Gazetteer, Vec<String>)> {
    let mut sources = Vec::new();
    if let Some(s) = scene {
        let scene = Scene::load(s)?;
        let of_scene = Source::of_scene(&scene);
        if of_scene.is_empty() && from.is_empty() {
            bail!(
                "{} has no address layers (a [[layer]] with kind = \"addresses\"); add one, or pass --from FILE",
                s.display()
            );
        }
        sources.extend(of_scene);
    }
    for f in from {
        if !f.is_file() {
            bail!("--from {}: no such file", f.display());
        }
        sources.push(Source::from_path(f.clone(), crs.map(str::to_string)));
    }
    if sources.is_empty() {
        bail!(
            "nothing to search: give --scene SCENE (its address layers) or --from FILE (.osm.pbf or an address layer)"
        );
    }
    Ok(address::build(&sources)?)
}

/// Run `citytwin locate`; exit code 1 when nothing is found.
pub fn locate(a: LocateArgs) -> Result<std::process::ExitCode> {
    let started = Instant::now();
    let (g, report) = gazetteer(a.scene.as_ref(), &a.from, a.crs.as_deref())?;
    let built_s = started.elapsed().as_secs_f64();
    let (addresses, streets, features) = g.counts();
    if !a.json {
        for line in &report {
            eprintln!("{line}");
        }
        eprintln!(
            "gazetteer: {addresses} addresses, {streets} streets, {features} named places ({built_s:.2} s)"
        );
    }
    let found = if let Some(at) = &a.at {
        let p = parse_lonlat(at)?;
        let r = g.reverse(p, a.radius_m);
        let found = r.address.is_some() || r.street.is_some();
        if a.json {
            println!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            match &r.address {
                Some((place, d)) => println!(
                    "{}  ({d:.0} m away, at {:.6},{:.6}; {})",
                    place.label(),
                    place.at.lon,
                    place.at.lat,
                    place.id
                ),
                None => println!("no address within {} m", a.radius_m),
            }
            match &r.street {
                Some((name, d)) => println!("on or near {name}  ({d:.0} m away)"),
                None => println!("no named street within {} m", a.radius_m),
            }
        }
        found
    } else {
        let Some(q) = &a.query else {
            bail!("give an address to find, or --at LON,LAT");
        };
        let matches = g.locate(q, a.limit);
        if a.json {
            println!("{}", serde_json::to_string_pretty(&matches)?);
        } else if matches.is_empty() {
            println!("no place matches '{q}'");
        } else {
            for m in &matches {
                println!(
                    "{:.2}  {}  ({:.6},{:.6}; {})",
                    m.score, m.label, m.place.at.lon, m.place.at.lat, m.place.id
                );
            }
        }
        !matches.is_empty()
    };
    Ok(if found {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}
