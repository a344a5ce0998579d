//! Push (heartbeat) URLs: `GET|POST /api/v1/push/{token}` (plus `/start` and `/fail`), no API
//! key. The token is looked up in memory; nothing touches the database on this path.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use super::extract::Query;
use crate::scheduler::heartbeat::PingKind;

/// Longest ping message kept, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Longest token looked up.
const MAX_TOKEN_LEN: usize = 128;

/// Optional ping parameters (others are ignored, so any job can append its own).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PingQuery {
    /// `up` (default) or `down` (same as the `/fail` URL).
    pub status: Option<String>,
    /// A message stored with the result (at most 1024 bytes kept).
    pub msg: Option<String>,
}

/// A ping was accepted.
#[derive(Debug, Serialize, ToSchema)]
pub struct PingAck {
    pub ok: bool,
}

async fn ping(
    state: &ApiState,
    token: &str,
    kind: PingKind,
    q: PingQuery,
) -> ApiResult<axum::Json<PingAck>> {
    let kind = match (kind, q.status.as_deref().map(str::trim)) {
        (PingKind::Success, Some(s)) if s.eq_ignore_ascii_case("down") => PingKind::Fail,
        (kind, None) => kind,
        (kind, Some(s)) if s.eq_ignore_ascii_case("up") || s.eq_ignore_ascii_case("down") => kind,
        (_, Some(_)) => {
            return Err(ApiError::validation(
                "/status",
                "status must be `up` or `down`",
            ));
        }
    };
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(ApiError::new(
            ErrorCode::PushTokenUnknown,
            "no push monitor has this token",
        ));
    }
    let message = q.msg.map(|m| truncate(m, MAX_MESSAGE_BYTES));
    state.app.heartbeats.ping(token, kind, message).await?;
    Ok(axum::Json(PingAck { ok: true }))
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

macro_rules! ping_route {
    ($fn:ident, $opid:literal, $method:ident, $path:literal, $kind:expr, $summary:literal) => {
        #[doc = $summary]
        #[utoipa::path($method, path = $path, operation_id = $opid, tag = "push",
            params(("token" = String, Path, description = "The monitor's push token"), PingQuery),
            responses((status = 200, description = "Accepted", body = PingAck),
                (status = 400, description = "Bad status", body = ErrorEnvelope),
                (status = 404, description = "Unknown token", body = ErrorEnvelope),
                (status = 409, description = "The monitor is paused", body = ErrorEnvelope),
                (status = 503, description = "Back-pressure; retry", body = ErrorEnvelope)),
            security(()))]
        pub async fn $fn(
            State(state): State<ApiState>,
            Path(token): Path<String>,
            Query(q): Query<PingQuery>,
        ) -> ApiResult<axum::Json<PingAck>> {
            ping(&state, &token, $kind, q).await
        }
    };
}

ping_route!(
    get_ping,
    "pingGet",
    get,
    "/api/v1/push/{token}",
    PingKind::Success,
    "Ping (GET)"
);
ping_route!(
    post_ping,
    "pingPost",
    post,
    "/api/v1/push/{token}",
    PingKind::Success,
    "Ping (POST)"
);
ping_route!(
    get_start,
    "pingStartGet",
    get,
    "/api/v1/push/{token}/start",
    PingKind::Start,
    "Job started (GET)"
);
ping_route!(
    post_start,
    "pingStartPost",
    post,
    "/api/v1/push/{token}/start",
    PingKind::Start,
    "Job started (POST)"
);
ping_route!(
    get_fail,
    "pingFailGet",
    get,
    "/api/v1/push/{token}/fail",
    PingKind::Fail,
    "Job failed (GET)"
);
ping_route!(
    post_fail,
    "pingFailPost",
    post,
    "/api/v1/push/{token}/fail",
    PingKind::Fail,
    "Job failed (POST)"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_a_char_boundary() {
        assert_eq!(truncate("abc".into(), 5), "abc");
        assert_eq!(truncate("ééé".into(), 3), "é");
    }
}
