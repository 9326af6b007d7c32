//! `GET /api/v1/runs/{id}/features`: the city model of a run as GeoJSON, in a box, an H3 cell
//! or near a point.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::Uri;
use serde_json::{Value, json};

use super::api::{ApiError, ApiResult, Shared, frame, id_of, lonlat, number, of_run, params};
use super::geojson::{self, Area};
use citytwin_engine::geo_frame::LonLat;

/// At most this many features in one answer (a request may ask for fewer).
const MAX_FEATURES: usize = 10_000;
/// Candidates read from the store for one spatial question, before the exact test.
const MAX_CANDIDATES: usize = 200_000;

/// The area a features request asks about.
fn area(q: &HashMap<String, String>) -> Result<Area, ApiError> {
    let given: Vec<&str> = ["bbox", "h3", "near"]
        .into_iter()
        .filter(|k| q.contains_key(*k))
        .collect();
    if given.len() != 1 {
        return Err(ApiError::bad(format!(
            "give exactly one of bbox=MIN_LON,MIN_LAT,MAX_LON,MAX_LAT, h3=CELL or near=LON,LAT (got {})",
            if given.is_empty() {
                "none".to_string()
            } else {
                given.join(" and ")
            }
        )));
    }
    if q.contains_key("radius_m") && given[0] != "near" {
        return Err(ApiError::bad("radius_m goes with near=LON,LAT"));
    }
    Ok(match given[0] {
        "bbox" => {
            let text = &q["bbox"];
            let v: Vec<f64> = text
                .split(',')
                .map(|x| x.trim().parse::<f64>())
                .collect::<Result<_, _>>()
                .map_err(|_| {
                    ApiError::bad(format!(
                        "bbox: '{text}' is not four numbers MIN_LON,MIN_LAT,MAX_LON,MAX_LAT"
                    ))
                })?;
            let [w, s, e, n] = v[..] else {
                return Err(ApiError::bad(format!(
                    "bbox: '{text}' has {} numbers, not four (MIN_LON,MIN_LAT,MAX_LON,MAX_LAT)",
                    v.len()
                )));
            };
            if !(LonLat::new(w, s).is_valid() && LonLat::new(e, n).is_valid()) || w >= e || s >= n {
                return Err(ApiError::bad(format!(
                    "bbox: '{text}' is not a box on the globe (west < east within -180..180, south < north within -90..90)"
                )));
            }
            Area::Bbox([w, s, e, n])
        }
        "h3" => {
            let text = q["h3"].trim();
            let cell = text.parse::<h3o::CellIndex>().map_err(|e| {
                ApiError::bad(format!("h3: '{text}' is not an H3 cell index ({e})"))
            })?;
            Area::Cell(cell)
        }
        _ => {
            let p = lonlat("near", &q["near"])?;
            let r = number(q, "radius_m")?.unwrap_or(100.0);
            if !(r > 0.0 && r <= 50_000.0) {
                return Err(ApiError::bad(format!("radius_m: {r} is not in 0..50000 m")));
            }
            Area::Near(p, r)
        }
    })
}

pub(super) async fn features(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
) -> ApiResult {
    let id: i64 = id_of("run", &id)?;
    let q = params(q, &["bbox", "h3", "near", "radius_m", "kind", "limit"])?;
    let area = area(&q)?;
    let limit = match number(&q, "limit")? {
        None => 1000,
        Some(l) if l >= 1.0 && l <= MAX_FEATURES as f64 && l.fract() == 0.0 => l as usize,
        Some(l) => {
            return Err(ApiError::bad(format!(
                "limit: {l} is not a whole number in 1..{MAX_FEATURES}"
            )));
        }
    };
    let kind = q.get("kind").cloned();
    of_run(&s, id, &uri, move |s, st| {
        let frame = frame(s, st, id)?;
        let bbox = geojson::candidate_box(&area, &frame);
        let rows = st.features_in(id, bbox, kind.as_deref(), MAX_CANDIDATES)?;
        let capped = rows.len() >= MAX_CANDIDATES;
        let (found, notes) = geojson::select(rows, &area, &frame);
        let matched = found.len();
        let features: Vec<Value> = found
            .iter()
            .take(limit)
            .map(|(row, g, d)| geojson::feature(row, g, *d, &frame))
            .collect();
        Ok(json!({
            "type": "FeatureCollection",
            "run": id,
            "matched": matched,
            "truncated": capped || matched > limit,
            "notes": notes,
            "features": features,
        }))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_features_request_names_what_is_wrong() {
        let q = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let msg = |r: Result<Area, ApiError>| r.err().map(|e| e.1).unwrap_or_default();
        assert!(msg(area(&q(&[]))).contains("exactly one"));
        assert!(msg(area(&q(&[("bbox", "1,2,3"), ("near", "1,2")]))).contains("bbox and near"));
        assert!(msg(area(&q(&[("bbox", "1,2,3")]))).contains("3 numbers"));
        assert!(msg(area(&q(&[("bbox", "3,2,1,4")]))).contains("not a box"));
        assert!(msg(area(&q(&[("h3", "zz")]))).contains("not an H3 cell"));
        assert!(msg(area(&q(&[("near", "1,2"), ("radius_m", "-5")]))).contains("radius_m"));
        assert!(
            msg(area(&q(&[("bbox", "1,2,3,4"), ("radius_m", "5")]))).contains("goes with near")
        );
        assert!(matches!(area(&q(&[("near", "117.2,31.8")])), Ok(Area::Near(_, r)) if r == 100.0));
        let e = params(q(&[("bbx", "1")]), &["bbox"]).err().unwrap();
        assert!(
            e.1.contains("unknown parameter 'bbx'") && e.1.contains("bbox"),
            "{}",
            e.1
        );
    }
}
