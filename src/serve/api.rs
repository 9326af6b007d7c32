//! The routes of `citytwin serve` and their handlers. Every answer is JSON (GeoJSON for
//! features); every error is `{"error": "..."}` with a status that says whose fault it was.
//! Store reads run on the blocking pool, each on a connection of its own.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use axum::{Json, Router};
use citytwin_engine::geo_frame::{GeoFrame, LonLat};
use citytwin_engine::store::{KpiFilter, KpiRow, READING_STATUSES, ReadingRow, StoreError};
use serde_json::{Value, json};

use super::cache::Lookup;
use super::geojson;
use super::{AppState, PooledStore, features, stream};

pub(super) type Shared = Arc<AppState>;

/// The OpenAPI 3.1 description of these routes.
pub(crate) const OPENAPI: &str = include_str!("openapi.json");

/// An error answer.
pub(crate) struct ApiError(pub(super) StatusCode, pub(super) String);

impl ApiError {
    pub(super) fn bad(message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, message.into())
    }
    pub(super) fn not_found(message: impl Into<String>) -> Self {
        Self(StatusCode::NOT_FOUND, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.0, Json(json!({ "error": self.1 }))).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoRun { id, .. } => Self::not_found(format!("no run {id}")),
            e => Self(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

pub(super) type ApiResult = Result<Response, ApiError>;

/// Run `f` on a connection of its own, off the async threads.
pub(super) async fn with_store<T: Send + 'static>(
    state: &Shared,
    f: impl FnOnce(&PooledStore<'_>) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let store = state.pool.get()?;
        f(&store)
    })
    .await
    .map_err(|e| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the query stopped: {e}"),
        )
    })?
}

/// The query string, refusing names the route does not know (a typo would otherwise be
/// silently ignored and answer a different question).
pub(super) fn params(
    q: HashMap<String, String>,
    known: &[&str],
) -> Result<HashMap<String, String>, ApiError> {
    let mut unknown: Vec<&String> = q.keys().filter(|k| !known.contains(&k.as_str())).collect();
    if !unknown.is_empty() {
        unknown.sort();
        return Err(ApiError::bad(format!(
            "unknown parameter {} (this route takes: {})",
            unknown
                .iter()
                .map(|k| format!("'{k}'"))
                .collect::<Vec<_>>()
                .join(", "),
            known.join(", ")
        )));
    }
    Ok(q)
}

pub(super) fn number(q: &HashMap<String, String>, key: &str) -> Result<Option<f64>, ApiError> {
    q.get(key)
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| ApiError::bad(format!("{key}: '{v}' is not a number")))
        })
        .transpose()
}

pub(super) fn lonlat(key: &str, text: &str) -> Result<LonLat, ApiError> {
    crate::locate::parse_lonlat(text).map_err(|e| ApiError::bad(format!("{key}: {e}")))
}

/// A run or job id from the path, or a 400 saying it is not one.
pub(super) fn id_of<T: std::str::FromStr>(what: &str, text: &str) -> Result<T, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad(format!("'{text}' is not a {what} id (a whole number)")))
}

/// The routes, each path once; the OpenAPI document describes exactly these paths.
pub(crate) fn routes() -> Vec<(&'static str, MethodRouter<Shared>)> {
    vec![
        ("/api/v1/health", get(health)),
        ("/api/v1/openapi.json", get(openapi)),
        ("/api/v1/scenes", get(scenes)),
        ("/api/v1/runs", get(list_runs).post(start_run)),
        ("/api/v1/runs/{id}", get(one_run)),
        ("/api/v1/runs/{id}/kpis", get(kpis)),
        ("/api/v1/runs/{id}/readings", get(readings)),
        ("/api/v1/runs/{id}/latest", get(latest)),
        ("/api/v1/runs/{id}/features", get(features::features)),
        ("/api/v1/runs/{id}/stream", get(stream::stream)),
        ("/api/v1/live", get(live)),
        ("/api/v1/jobs", get(list_jobs)),
        ("/api/v1/jobs/{id}", get(one_job).delete(cancel_job)),
        ("/api/v1/locate", get(locate)),
        ("/api/v1/reverse", get(reverse)),
    ]
}

/// The whole API.
pub(crate) fn router(state: Shared) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |r, (path, m)| r.route(path, m))
        .fallback(|| async { ApiError::not_found("no such route; see /api/v1/openapi.json") })
        .with_state(state)
}

async fn health(State(s): State<Shared>) -> ApiResult {
    let runs = with_store(&s, |st| Ok(st.runs()?.len())).await?;
    Ok(Json(json!({
        "version": citytwin_engine::VERSION,
        "store": s.pool.path().display().to_string(),
        "runs": runs,
        "writes": s.token.is_some(),
        "live_job": s.jobs.live().map(|j| j.id),
    }))
    .into_response())
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn scenes(State(s): State<Shared>) -> Json<Value> {
    Json(Value::Array(
        s.scenes
            .iter()
            .map(|(name, sc)| {
                json!({
                    "name": name,
                    "title": sc.meta.name,
                    "path": sc.path.display().to_string(),
                    "start": sc.start.to_string(),
                    "duration_s": sc.clock.duration_s.get_ref(),
                    "step_s": sc.clock.step_s.get_ref(),
                    "scenarios": sc.scenarios.iter().map(|x| x.plugin.get_ref().clone()).collect::<Vec<_>>(),
                })
            })
            .collect(),
    ))
}

fn run_json(r: &citytwin_engine::store::RunSummary) -> Value {
    json!({
        "id": r.id,
        "scene": r.scene_name,
        "seed": r.seed,
        "status": r.status,
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "ticks": r.ticks,
        "sim_time_s": r.sim_time_s,
        "state_hash": r.state_hash,
        "error": r.error,
    })
}

async fn list_runs(State(s): State<Shared>, uri: Uri) -> ApiResult {
    let key = uri.to_string();
    if let Lookup::Hit(body) = s.cache.get(&key) {
        return Ok(json_body(body));
    }
    let runs = with_store(&s, |st| Ok(st.runs()?)).await?;
    let body = Bytes::from(Value::Array(runs.iter().map(run_json).collect()).to_string());
    s.cache.put(key, body.clone(), false);
    Ok(json_body(body))
}

/// A JSON body already serialised.
fn json_body(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Answer a question about run `id`: from the cache when the same request (`uri`) was answered
/// before and is still fresh, else by `f` on a connection of its own. The answer is kept for
/// good when the run had ended before `f` read anything (its rows are then final), and for
/// [`ResponseCache::FRESH`](super::cache::ResponseCache::FRESH) while it runs.
pub(super) async fn of_run(
    s: &Shared,
    id: i64,
    uri: &Uri,
    f: impl FnOnce(&AppState, &PooledStore<'_>) -> Result<Value, ApiError> + Send + 'static,
) -> ApiResult {
    let key = uri.to_string();
    if let Lookup::Hit(body) = s.cache.get(&key) {
        return Ok(json_body(body));
    }
    let shared = s.clone();
    let (v, ended) = with_store(s, move |st| {
        let ended = st.run(id)?.status != "running";
        Ok((f(&shared, st)?, ended))
    })
    .await?;
    let body = Bytes::from(serde_json::to_vec(&v).map_err(|e| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot write the answer: {e}"),
        )
    })?);
    s.cache.put(key, body.clone(), ended);
    Ok(json_body(body))
}

async fn one_run(State(s): State<Shared>, Path(id): Path<String>, uri: Uri) -> ApiResult {
    let id: i64 = id_of("run", &id)?;
    of_run(&s, id, &uri, move |_, st| {
        let mut v = run_json(&st.run(id)?);
        let meta = st.run_meta(id)?;
        v["scene_path"] = json!(meta.scene_path);
        v["sim_start"] = json!(meta.sim_start);
        v["step_s"] = json!(meta.step_s);
        v["duration_s"] = json!(meta.duration_s);
        v["version"] = json!(meta.version);
        v["parent"] = json!(
            st.parent(id)?
                .map(|(p, t)| json!({"run": p, "fork_tick": t}))
        );
        v["rows"] = st
            .row_counts(id)?
            .iter()
            .map(|(t, n)| (t.clone(), json!(n)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        Ok(v)
    })
    .await
}

fn kpi_json(r: &KpiRow) -> Value {
    json!({
        "tick": r.tick,
        "sim_time_s": r.sim_time_s,
        "name": r.name,
        "scope": r.scope,
        "value": r.value,
        "unit": r.unit,
    })
}

async fn kpis(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
) -> ApiResult {
    let id: i64 = id_of("run", &id)?;
    let q = params(q, &["name", "scope", "from_s", "to_s"])?;
    let filter = KpiFilter {
        name: q.get("name").cloned(),
        scope: q.get("scope").cloned(),
        from_s: number(&q, "from_s")?,
        to_s: number(&q, "to_s")?,
        after_tick: None,
    };
    of_run(&s, id, &uri, move |_, st| {
        let rows = st.kpis_where(id, &filter)?;
        Ok(Value::Array(rows.iter().map(kpi_json).collect()))
    })
    .await
}

async fn readings(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
) -> ApiResult {
    let id: i64 = id_of("run", &id)?;
    let q = params(q, &["status", "station", "limit"])?;
    let status = q.get("status").cloned();
    if let Some(st) = &status
        && !READING_STATUSES.contains(&st.as_str())
    {
        return Err(ApiError::bad(format!(
            "status: '{st}' is not one of {}",
            READING_STATUSES.join(", ")
        )));
    }
    let station = q.get("station").cloned();
    let limit =
        match q.get("limit") {
            None => usize::MAX,
            Some(v) => v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                ApiError::bad(format!("limit: '{v}' is not a positive whole number"))
            })?,
        };
    of_run(&s, id, &uri, move |_, st| {
        let mut rows = st.readings(id)?.into_iter().filter(|r| {
            status.as_ref().is_none_or(|s| r.status == s.as_str())
                && station
                    .as_ref()
                    .is_none_or(|s| r.station.as_ref() == Some(s))
        });
        let taken: Vec<Value> = rows
            .by_ref()
            .take(limit)
            .map(|r| reading_json(&r))
            .collect();
        let truncated = rows.next().is_some();
        Ok(json!({ "readings": taken, "truncated": truncated }))
    })
    .await
}

fn reading_json(r: &ReadingRow) -> Value {
    json!({
        "seq": r.seq,
        "feed": r.feed,
        "channel": r.channel.as_str(),
        "origin": r.origin,
        "arrival_s": r.arrival_s,
        "payload": r.payload,
        "status": r.status,
        "detail": r.detail,
        "station": r.station,
        "quantity": r.quantity,
        "time_s": r.time_s,
        "value": r.value,
        "unit": r.unit,
    })
}

/// The scene frame of run `id`, read once.
pub(super) fn frame(s: &AppState, st: &PooledStore<'_>, id: i64) -> Result<GeoFrame, ApiError> {
    if let Some(f) = s.frames.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
        return Ok(f.clone());
    }
    let meta = st.run_meta(id)?;
    let f = geojson::frame_of(&meta.scene_toml)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("run {id}: {e}")))?;
    s.frames
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, f.clone());
    Ok(f)
}

/// A run's latest state: its status, the latest value of every KPI, and where its moving
/// entities were at the latest snapshot.
fn latest_of(s: &AppState, st: &PooledStore<'_>, id: i64) -> Result<Value, ApiError> {
    let run = st.run(id)?;
    let kpis = st.latest_kpis(id)?;
    let snapshot = st.latest_snapshot(id)?;
    let frame = frame(s, st, id)?;
    let moving: Vec<Value> = snapshot
        .iter()
        .map(|(r, kind)| {
            let ll = frame.to_wgs84(geo::Coord { x: r.x_m, y: r.y_m });
            json!({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [ll.lon, ll.lat]},
                "properties": {"entity": r.entity, "kind": kind, "speed_mps": r.speed_mps, "z_m": r.z_m, "h3": geojson::h3_text(r.h3)},
            })
        })
        .collect();
    let tick = kpis.iter().map(|k| k.tick).max();
    Ok(json!({
        "run": run_json(&run),
        "kpi_tick": tick,
        "kpi_sim_time_s": kpis.iter().find(|k| Some(k.tick) == tick).map(|k| k.sim_time_s),
        "kpis": kpis.iter().map(kpi_json).collect::<Vec<_>>(),
        "snapshot": {
            "type": "FeatureCollection",
            "tick": snapshot.first().map(|(r, _)| r.tick),
            "sim_time_s": snapshot.first().map(|(r, _)| r.sim_time_s),
            "features": moving,
        },
    }))
}

async fn latest(State(s): State<Shared>, Path(id): Path<String>, uri: Uri) -> ApiResult {
    let id: i64 = id_of("run", &id)?;
    of_run(&s, id, &uri, move |s, st| latest_of(s, st, id)).await
}

async fn live(State(s): State<Shared>) -> ApiResult {
    let Some(job) = s.jobs.live() else {
        return Err(ApiError::not_found(
            "this server runs no live scene (start it with --live SCENE)",
        ));
    };
    let Some(run) = job.run_id else {
        return Ok(Json(json!({"job": job, "state": null})).into_response());
    };
    let st2 = s.clone();
    let state = with_store(&s, move |st| latest_of(&st2, st, run)).await?;
    Ok(Json(json!({"job": job, "state": state})).into_response())
}

/// `Authorization: Bearer <token>`, compared in constant time.
fn authorize(s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &s.token else {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "this server is read-only: start `citytwin serve` with --token-file (or CITYTWIN_TOKEN) to allow what-if runs".into(),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let same = given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "writes need the header `Authorization: Bearer <token>` with this server's token"
                .into(),
        ))
    }
}

/// A what-if request.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WhatIf {
    /// A served scene's name.
    scene: String,
    /// The seed (default: the scene's).
    seed: Option<u64>,
    /// `[[scenario]]` tables (TOML) added to the scene.
    scenarios: Option<String>,
    /// Simulated seconds per wall second (default: as fast as the machine allows).
    speed: Option<f64>,
}

async fn start_run(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    authorize(&s, &headers)?;
    let req: WhatIf = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad(format!(
            "the body is not a what-if request ({e}); send {{\"scene\": NAME, \"seed\"?: N, \"scenarios\"?: TOML, \"speed\"?: X}}"
        ))
    })?;
    let Some(base) = s.scenes.get(&req.scene) else {
        return Err(ApiError::not_found(format!(
            "no scene '{}' here (served: {})",
            req.scene,
            s.scenes.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    };
    if let Some(x) = req.speed.filter(|x| !(*x > 0.0 && x.is_finite())) {
        return Err(ApiError::bad(format!(
            "speed: {x} is not a positive number"
        )));
    }
    let scene = match &req.scenarios {
        None => base.clone(),
        Some(add) => {
            let (text, first) = citytwin_engine::scene::append_scenarios(
                &base.source,
                add,
                "added by a what-if request to citytwin serve",
            );
            citytwin_engine::scene::Scene::from_str(&base.path, text).map_err(|e| {
                ApiError::bad(format!(
                    "scenarios (they start on line {first} of the what-if scene): {e}"
                ))
            })?
        }
    };
    let (job, ahead) = s
        .jobs
        .submit(&req.scene, scene, req.seed, req.speed)
        .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e))?;
    let loc = format!("/api/v1/jobs/{}", job.id);
    let mut r = (
        StatusCode::ACCEPTED,
        Json(json!({"job": job, "ahead": ahead, "location": loc})),
    )
        .into_response();
    if let Ok(v) = header::HeaderValue::from_str(&loc) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

async fn list_jobs(State(s): State<Shared>) -> Json<Value> {
    Json(json!(s.jobs.all()))
}

async fn one_job(State(s): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let id: u64 = id_of("job", &id)?;
    match s.jobs.get(id) {
        Some(j) => Ok(Json(json!(j)).into_response()),
        None => Err(ApiError::not_found(format!("no job {id}"))),
    }
}

async fn cancel_job(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let id: u64 = id_of("job", &id)?;
    authorize(&s, &headers)?;
    match s.jobs.cancel(id) {
        Ok(j) => Ok(Json(json!(j)).into_response()),
        Err((code, m)) => Err(ApiError(
            StatusCode::from_u16(code).unwrap_or(StatusCode::CONFLICT),
            m,
        )),
    }
}

fn gazetteer(s: &AppState) -> Result<&citytwin_engine::address::Gazetteer, ApiError> {
    s.gazetteer.as_ref().ok_or_else(|| {
        ApiError::not_found(
            "no address layers here: serve a --scene with a [[layer]] of kind = \"addresses\"",
        )
    })
}

async fn locate(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let q = params(q, &["q", "limit"])?;
    let g = gazetteer(&s)?;
    let Some(text) = q.get("q").filter(|t| !t.trim().is_empty()) else {
        return Err(ApiError::bad("q: give the address or place to find"));
    };
    let limit = number(&q, "limit")?.map_or(5, |l| l.clamp(1.0, 100.0) as usize);
    Ok(Json(json!(g.locate(text, limit))).into_response())
}

async fn reverse(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let q = params(q, &["at", "radius_m"])?;
    let g = gazetteer(&s)?;
    let Some(at) = q.get("at") else {
        return Err(ApiError::bad("at: give the point as LON,LAT"));
    };
    let p = lonlat("at", at)?;
    let r = number(&q, "radius_m")?.unwrap_or(100.0);
    if !(r > 0.0 && r <= 10_000.0) {
        return Err(ApiError::bad(format!("radius_m: {r} is not in 0..10000 m")));
    }
    Ok(Json(json!(g.reverse(p, r))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OpenAPI document is valid JSON and describes exactly the routes served.
    #[test]
    fn openapi_describes_every_route_and_no_other() {
        let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json parses");
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..3]), Some("3.1"));
        let mut documented: Vec<String> =
            doc["paths"].as_object().unwrap().keys().cloned().collect();
        let mut served: Vec<String> = routes().into_iter().map(|(p, _)| p.to_string()).collect();
        documented.sort();
        served.sort();
        assert_eq!(documented, served);
    }
}
