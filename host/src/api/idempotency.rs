//! `Idempotency-Key` handling: the first successful response to a key is remembered (per
//! workspace and route, in the store); the same key with the same request replays it without
//! acting again, with a different request it is `IDEMPOTENCY_KEY_REUSED` (422). A key whose
//! first request is still running is `IDEMPOTENCY_KEY_IN_USE` (409). Failed requests are not
//! remembered, so a corrected request may reuse the key.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Mutex;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::ApiState;
use super::error::{ApiError, ApiResult, ErrorCode};
use crate::model::{IdempotentResponse, WorkspaceId};

/// The request header carrying the key.
pub const HEADER: &str = "idempotency-key";
/// Set on a replayed response.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// Keys whose first request is being processed on this node.
#[derive(Default)]
pub struct InFlight {
    keys: Mutex<HashSet<(WorkspaceId, String, String)>>,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<(WorkspaceId, String, String)>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes its key from [`InFlight`] when dropped.
struct Claim<'a> {
    set: &'a InFlight,
    entry: (WorkspaceId, String, String),
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.set.lock().remove(&self.entry);
    }
}

/// What a handler produced: a status and a JSON body (plus `Location` for a 201).
pub struct Produced {
    pub status: StatusCode,
    pub body: serde_json::Value,
    pub location: Option<String>,
}

impl Produced {
    /// A 200 with `body` as JSON and no `Location`.
    pub fn ok<T: serde::Serialize>(body: &T) -> ApiResult<Produced> {
        Ok(Produced {
            status: StatusCode::OK,
            body: serde_json::to_value(body).map_err(ApiError::internal)?,
            location: None,
        })
    }
}

impl IntoResponse for Produced {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(location) = self.location
            && let Ok(v) = HeaderValue::from_str(&location)
        {
            response.headers_mut().insert(header::LOCATION, v);
        }
        response
    }
}

/// Runs `act` at most once per idempotency key (when the request carries one).
/// `location_base` rebuilds `Location` (`<base>/<body.id>`) when a 201 is replayed.
pub async fn once<F, Fut>(
    state: &ApiState,
    ws: WorkspaceId,
    route: &str,
    headers: &HeaderMap,
    body: &[u8],
    location_base: Option<&str>,
    act: F,
) -> ApiResult<Response>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ApiResult<Produced>>,
{
    let Some(key) = key_of(headers)? else {
        return Ok(act().await?.into_response());
    };
    let hash = request_hash(body);
    let entry = (ws, route.to_string(), key.clone());
    let _claim = {
        let mut set = state.idempotency.lock();
        if !set.insert(entry.clone()) {
            return Err(ApiError::new(
                ErrorCode::IdempotencyKeyInUse,
                "a request with this Idempotency-Key is still being processed",
            ));
        }
        Claim {
            set: &state.idempotency,
            entry,
        }
    };
    let store = &state.app.store;
    if let Some(stored) = store.idempotent_response(ws, route, &key).await? {
        return replay(stored, &hash, location_base);
    }
    let produced = act().await?;
    let remembered = IdempotentResponse {
        request_hash: hash.clone(),
        status: produced.status.as_u16(),
        body: produced.body.to_string(),
    };
    if let Err(e) = store.remember_response(ws, route, &key, &remembered).await {
        // The action happened; failing the request now would invite a second one.
        tracing::warn!(error = %e, route, "cannot remember an idempotent response");
    }
    Ok(produced.into_response())
}

/// The stored response, or `IDEMPOTENCY_KEY_REUSED` when the request differs.
fn replay(
    stored: IdempotentResponse,
    hash: &str,
    location_base: Option<&str>,
) -> ApiResult<Response> {
    if stored.request_hash != hash {
        return Err(ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was already used with a different request",
        ));
    }
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&stored.body).map_err(ApiError::internal)?;
    let location = match (status, location_base, body.get("id")) {
        (StatusCode::CREATED, Some(base), Some(id)) => Some(format!("{base}/{id}")),
        _ => None,
    };
    let mut response = Produced {
        status,
        body,
        location,
    }
    .into_response();
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    Ok(response)
}

/// The key of the request, if any; a malformed one is `VALIDATION_FAILED`.
fn key_of(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            ErrorCode::ValidationFailed,
            format!(
                "the Idempotency-Key header must be 1–{MAX_KEY_LEN} printable ASCII characters"
            ),
        )
    };
    let key = value.to_str().map_err(|_| bad())?.trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(key.to_string()))
}

/// sha256 of the request body in a canonical form (JSON with sorted keys and no whitespace),
/// so formatting differences do not count as a different request.
pub fn request_hash(body: &[u8]) -> String {
    let canonical = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => {
            let mut out = String::new();
            canonical(&v, &mut out);
            out.into_bytes()
        }
        Err(_) => body.to_vec(),
    };
    hex::encode(Sha256::digest(&canonical))
}

fn canonical(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(child) = map.get(k) {
                    canonical(child, out);
                }
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_ignores_formatting_and_key_order() {
        let a = request_hash(br#"{"a": 1, "b": [1, {"y": 2, "x": 1}]}"#);
        let b = request_hash(br#"{"b":[1,{"x":1,"y":2}],"a":1}"#);
        assert_eq!(a, b);
        assert_ne!(a, request_hash(br#"{"a": 2, "b": [1, {"y": 2, "x": 1}]}"#));
    }

    #[test]
    fn key_header_is_checked() {
        let mut h = HeaderMap::new();
        assert!(matches!(key_of(&h), Ok(None)));
        h.insert(HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(key_of(&h).ok().flatten().as_deref(), Some("abc-123"));
        h.insert(HEADER, HeaderValue::from_static("has space"));
        assert!(key_of(&h).is_err());
    }

    #[test]
    fn replay_rejects_a_different_request() {
        let stored = IdempotentResponse {
            request_hash: "h1".into(),
            status: 201,
            body: r#"{"id":7}"#.into(),
        };
        let e = replay(stored.clone(), "h2", None).expect_err("reused");
        assert_eq!(e.code, ErrorCode::IdempotencyKeyReused);
        let r = replay(stored, "h1", Some("/api/v1/monitors")).expect("replay");
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(
            r.headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok()),
            Some("/api/v1/monitors/7")
        );
        assert!(r.headers().contains_key(REPLAYED_HEADER));
    }
}
