//! `GET /api/v1/runs/{id}/stream`: a WebSocket that follows a run's KPI samples as they are
//! recorded, by polling the store (so it follows any run the same way).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use citytwin_engine::store::{KpiFilter, KpiRow};
use serde_json::json;

use super::api::{ApiError, ApiResult, Shared, id_of, with_store};

/// How often a KPI stream looks for new samples.
const STREAM_POLL: Duration = Duration::from_millis(250);

pub(super) async fn stream(
    State(s): State<Shared>,
    Path(id): Path<String>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult {
    let id: i64 = id_of("run", &id)?;
    // Refuse an unknown run before upgrading, with a status the client can read.
    with_store(&s, move |st| Ok(st.run(id)?)).await?;
    let ws = ws.map_err(|e| {
        ApiError(
            e.status(),
            format!(
                "this route is a WebSocket (ws://…/api/v1/runs/{id}/stream): {}",
                e.body_text()
            ),
        )
    })?;
    Ok(ws.on_upgrade(move |socket| follow(s, id, socket)))
}

/// Send run `id`'s KPI samples as they are recorded: one message per sampled tick,
/// `{"run", "tick", "sim_time_s", "kpis": [{name, scope, value, unit}]}`, from the first, then a
/// last `{"run", "end": true, "status"}` when the run has ended and every sample is sent.
async fn follow(s: Shared, id: i64, mut socket: WebSocket) {
    let mut after: Option<u64> = None;
    loop {
        let filter = KpiFilter {
            after_tick: after,
            ..Default::default()
        };
        let read = with_store(&s, move |st| {
            let status = st.run(id)?.status;
            let rows = st.kpis_where(id, &filter)?;
            Ok((status, rows))
        })
        .await;
        let (status, rows) = match read {
            Ok(x) => x,
            Err(ApiError(_, m)) => {
                let _ = socket
                    .send(Message::Text(
                        json!({"run": id, "error": m}).to_string().into(),
                    ))
                    .await;
                return;
            }
        };
        let mut by_tick: BTreeMap<u64, Vec<&KpiRow>> = BTreeMap::new();
        for r in &rows {
            by_tick.entry(r.tick).or_default().push(r);
        }
        for (tick, rs) in by_tick {
            let msg = json!({
                "run": id,
                "tick": tick,
                "sim_time_s": rs[0].sim_time_s,
                "kpis": rs.iter().map(|r| json!({"name": r.name, "scope": r.scope, "value": r.value, "unit": r.unit})).collect::<Vec<_>>(),
            });
            if socket
                .send(Message::Text(msg.to_string().into()))
                .await
                .is_err()
            {
                return;
            }
            after = Some(tick);
        }
        // Rows written before the status changed are all read by now: the status was read
        // first, in the same pass.
        if status != "running" || s.jobs.stopping.load(Ordering::Relaxed) {
            let _ = socket
                .send(Message::Text(
                    json!({"run": id, "end": true, "status": status})
                        .to_string()
                        .into(),
                ))
                .await;
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(STREAM_POLL) => {}
            m = socket.recv() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
