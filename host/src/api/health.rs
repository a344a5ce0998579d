//! Liveness (`/healthz`), readiness (`/readyz`: the store answers) and Prometheus `/metrics`
//! (open, or behind `Authorization: Bearer <metrics.token>` when one is configured).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::ApiState;
use super::auth::bearer;
use super::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};

/// Health status.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// Liveness
///
/// The process is up and serving.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "meta",
    responses((status = 200, description = "Alive", body = Health)),
    security(()))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// Readiness
///
/// The database answers.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "meta",
    responses((status = 200, description = "Ready", body = Health),
        (status = 503, description = "The database is unreachable", body = ErrorEnvelope)),
    security(()))]
pub async fn readyz(State(state): State<ApiState>) -> ApiResult<axum::Json<Health>> {
    state.app.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check: the database does not answer");
        ApiError::new(ErrorCode::StoreUnavailable, "the database does not answer")
    })?;
    Ok(axum::Json(Health { status: "ok" }))
}

/// Prometheus metrics
///
/// Text exposition format. Needs `Authorization: Bearer <token>` when `metrics.token` is set.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "meta",
    responses((status = 200, description = "Metrics", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 401, description = "A metrics token is configured and was not sent", body = ErrorEnvelope)),
    security((), ("metrics_token" = [])))]
pub async fn metrics(State(state): State<ApiState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(expected) = state.app.config.metrics.token.as_deref() {
        let sent = bearer(&headers)?;
        // Compare digests so the comparison time says nothing about the token.
        if Sha256::digest(sent.as_bytes()) != Sha256::digest(expected.as_bytes()) {
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "invalid metrics token",
            ));
        }
    }
    let mut response = state.app.metrics.encode().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}
