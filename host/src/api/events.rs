//! `GET /api/v1/events`: Server-Sent Events of stored results from the pipeline's live bus.
//!
//! Events: `result` (`{monitor_id, status, latency_ms, started_at, message}`) for every stored
//! result of the caller's workspace; `state` (`{monitor_id, status, previous, since}`) when a
//! monitor's status differs from the last one this stream knew (seeded from the store at
//! connect); `resync` (`{missed}`) when this subscriber fell behind the bus and results were
//! skipped — reload the overview. A comment line every 15 s keeps proxies from closing the
//! stream; the stream ends when the server shuts down.
//!
//! Authentication: `Authorization: Bearer <key>` or, because `EventSource` cannot set
//! headers, `?access_token=<key>` (this route only). The key needs the `read` scope.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::{broadcast, watch};

use super::ApiState;
use super::auth::bearer;
use super::error::{ApiError, ApiResult, ErrorCode};
use super::extract::parse_query;
use crate::model::{NewResult, Scope, Status, WorkspaceId};

/// Interval of the keep-alive comments.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Query of the events route.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The API key, for clients that cannot send headers (`EventSource`).
    pub access_token: Option<String>,
}

/// What one stream remembers.
struct StreamState {
    rx: broadcast::Receiver<Arc<NewResult>>,
    stopping: watch::Receiver<bool>,
    ws: WorkspaceId,
    statuses: HashMap<i64, Status>,
    /// Events produced but not yet yielded (a result can yield `state` then `result`).
    queued: Vec<Event>,
}

fn json_event(name: &str, data: serde_json::Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

impl StreamState {
    /// The events of one bus message (none for other workspaces).
    fn on_result(&mut self, r: &NewResult) {
        if r.workspace_id != self.ws {
            return;
        }
        let previous = self.statuses.insert(r.monitor_id, r.status);
        // Yielded in reverse order (popped from the end): `state` first, then `result`.
        self.queued.push(json_event(
            "result",
            serde_json::json!({
                "monitor_id": r.monitor_id,
                "status": r.status,
                "latency_ms": r.latency_ms,
                "started_at": r.started_at,
                "message": r.message,
            }),
        ));
        if previous != Some(r.status) {
            self.queued.push(json_event(
                "state",
                serde_json::json!({
                    "monitor_id": r.monitor_id,
                    "status": r.status,
                    "previous": previous,
                    "since": r.started_at,
                }),
            ));
        }
    }
}

async fn next_event(mut st: StreamState) -> Option<(Result<Event, Infallible>, StreamState)> {
    loop {
        if let Some(e) = st.queued.pop() {
            return Some((Ok(e), st));
        }
        if *st.stopping.borrow() {
            return None;
        }
        let msg = tokio::select! {
            msg = st.rx.recv() => msg,
            _ = st.stopping.changed() => return None,
        };
        match msg {
            Ok(r) => st.on_result(&r),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                // The client reloads; statuses it learns again from the store.
                st.statuses.clear();
                st.queued.push(json_event(
                    "resync",
                    serde_json::json!({ "missed": missed }),
                ));
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

/// The key from the header, else from `?access_token=`.
async fn authenticate(state: &ApiState, parts: &Parts) -> ApiResult<WorkspaceId> {
    let q: EventsQuery = parse_query(parts.uri.query().unwrap_or(""))?;
    let secret = match (
        parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION),
        &q.access_token,
    ) {
        (true, _) | (false, None) => bearer(&parts.headers)?.to_string(),
        (false, Some(t)) => t.clone(),
    };
    let key = state.keys.verify(&state.app.store, &secret).await?;
    if key.scopes.iter().copied().max() < Some(Scope::Read) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "this stream needs an API key with the `read` scope",
        )
        .with_details(serde_json::json!({ "required_scope": "read" })));
    }
    Ok(key.workspace_id)
}

/// Live events
///
/// Server-Sent Events (`text/event-stream`) of stored results: `result`, `state` and `resync`
/// events, a keep-alive comment every 15 s. Authenticate with the bearer header or, for
/// `EventSource`, `?access_token=<key>` (this route only).
#[utoipa::path(get, path = "/api/v1/events", operation_id = "streamEvents", tag = "results",
    params(EventsQuery),
    responses((status = 200, description = "The event stream", content_type = "text/event-stream"),
        (status = 401, description = "No or bad key", body = super::error::ErrorEnvelope)),
    security(("bearer" = ["read"])))]
pub async fn events(
    State(state): State<ApiState>,
    parts: Parts,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let ws = authenticate(&state, &parts).await?;
    // Subscribe before reading the statuses so no change between the two is missed.
    let rx = state.app.results.subscribe();
    let statuses = state.app.store.live_statuses(ws).await?;
    let st = StreamState {
        rx,
        stopping: state.app.stopping.clone(),
        ws,
        statuses,
        queued: vec![Event::default().event("hello").data("{}")],
    };
    let stream = futures::stream::unfold(st, next_event);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_accepts_only_the_token() {
        let q: EventsQuery = parse_query("access_token=abc").expect("parses");
        assert_eq!(q.access_token.as_deref(), Some("abc"));
        assert!(parse_query::<EventsQuery>("other=1").is_err());
    }
}
