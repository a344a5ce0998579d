//! API key endpoints: create (the key is shown once), list, get, revoke.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiState;
use super::auth::Admin;
use super::error::{ApiError, ApiResult, ErrorEnvelope};
use super::extract::{Json, PathId, Query};
use super::pagination::{ListEnvelope, PageParams};
use super::results::PageQuery;
use crate::model::{ApiKey, Scope};

/// Longest key name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Body of a key creation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyInput {
    /// 1–100 characters.
    pub name: String,
    /// At least one of `read`, `write`, `admin` (each includes the ones before it).
    pub scopes: Vec<Scope>,
}

/// A new key: its secret is in `key`, shown only in this response.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The secret; store it now, it cannot be shown again.
    pub key: String,
}

/// Create an API key
#[utoipa::path(post, path = "/api/v1/api-keys", operation_id = "createApiKey", tag = "api-keys",
    request_body = NewKeyInput,
    responses((status = 201, description = "Created; the secret is in `key`", body = CreatedKey),
        (status = 400, description = "Invalid", body = ErrorEnvelope)),
    security(("bearer" = ["admin"])))]
pub async fn create(
    State(state): State<ApiState>,
    auth: Admin,
    Json(input): Json<NewKeyInput>,
) -> ApiResult<Response> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::validation(
            "/name",
            format!("name must be 1–{MAX_NAME_CHARS} characters"),
        ));
    }
    let mut scopes = input.scopes;
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(ApiError::validation(
            "/scopes",
            "give at least one scope: read, write or admin",
        ));
    }
    let secret = crate::keys::generate();
    let api_key = state
        .app
        .store
        .create_api_key(auth.ws(), name, &secret.prefix, &secret.hash, &scopes)
        .await?;
    let location = format!("/api/v1/api-keys/{}", api_key.id);
    let mut response = (
        StatusCode::CREATED,
        axum::Json(CreatedKey {
            api_key,
            key: secret.secret,
        }),
    )
        .into_response();
    if let Ok(v) = header::HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// List API keys
///
/// Revoked keys included; secrets never.
#[utoipa::path(get, path = "/api/v1/api-keys", operation_id = "listApiKeys", tag = "api-keys",
    params(PageQuery),
    responses((status = 200, description = "Keys", body = ListEnvelope<ApiKey>)),
    security(("bearer" = ["admin"])))]
pub async fn list(
    State(state): State<ApiState>,
    auth: Admin,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<ListEnvelope<ApiKey>>> {
    let page = PageParams::new(q.limit, q.offset)?;
    let all = state.app.store.list_api_keys(auth.ws()).await?;
    Ok(axum::Json(page.slice(all)))
}

/// Get an API key
#[utoipa::path(get, path = "/api/v1/api-keys/{id}", operation_id = "getApiKey", tag = "api-keys",
    params(("id" = i64, Path, description = "Key id")),
    responses((status = 200, description = "The key (without its secret)", body = ApiKey),
        (status = 404, description = "No such key", body = ErrorEnvelope)),
    security(("bearer" = ["admin"])))]
pub async fn get(
    State(state): State<ApiState>,
    auth: Admin,
    PathId(id): PathId,
) -> ApiResult<axum::Json<ApiKey>> {
    state
        .app
        .store
        .list_api_keys(auth.ws())
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found(format!("no API key {id}")))
}

/// Revoke an API key
///
/// Takes effect at once on this node (other nodes: within 30 seconds).
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", operation_id = "revokeApiKey", tag = "api-keys",
    params(("id" = i64, Path, description = "Key id")),
    responses((status = 204, description = "Revoked"),
        (status = 404, description = "No such key, or already revoked", body = ErrorEnvelope)),
    security(("bearer" = ["admin"])))]
pub async fn revoke(
    State(state): State<ApiState>,
    auth: Admin,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    if !state.app.store.revoke_api_key(auth.ws(), id).await? {
        return Err(ApiError::not_found(format!(
            "no active API key {id} (unknown or already revoked)"
        )));
    }
    state.keys.evict(id);
    Ok(StatusCode::NO_CONTENT)
}
