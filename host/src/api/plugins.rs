//! Plugin endpoints: list, describe, upload (raw component or multipart), grant, enable,
//! disable and delete.

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::auth::{Admin, Reader};
use super::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use super::extract::{Json, PathPair, Query, body_bytes};
use super::pagination::{ListEnvelope, PageParams};
use super::results::PageQuery;
use crate::catalog::{GrantRequest, PluginEntry};
use crate::model::WorkspaceId;
use crate::runtime::{Capability, Grants};

/// Largest component accepted by an upload.
pub const UPLOAD_LIMIT: usize = 32 * 1024 * 1024;
/// Most host patterns in a grant.
const MAX_ALLOWED_HOSTS: usize = 100;

fn location(entry: &PluginEntry) -> String {
    format!("/api/v1/plugins/{}/{}", entry.name, entry.version)
}

fn plugin_not_found(name: &str, version: &str) -> ApiError {
    ApiError::new(
        ErrorCode::PluginNotFound,
        format!("no plugin {name}@{version}"),
    )
}

/// List plugins
///
/// Built-in plugins first, then uploads by name and version, with their kinds, declared
/// capabilities, grants, digests and state.
#[utoipa::path(get, path = "/api/v1/plugins", operation_id = "listPlugins", tag = "plugins",
    params(PageQuery),
    responses((status = 200, description = "Plugins", body = ListEnvelope<PluginEntry>)),
    security(("bearer" = ["read"])))]
pub async fn list(
    State(state): State<ApiState>,
    auth: Reader,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<ListEnvelope<PluginEntry>>> {
    let page = PageParams::new(q.limit, q.offset)?;
    Ok(axum::Json(page.slice(state.app.catalog.list(auth.ws()))))
}

/// Describe a plugin version
///
/// Includes the JSON Schema of its config.
#[utoipa::path(get, path = "/api/v1/plugins/{name}/{version}", operation_id = "getPlugin", tag = "plugins",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, description = "The plugin", body = PluginEntry),
        (status = 404, description = "No such plugin", body = ErrorEnvelope)),
    security(("bearer" = ["read"])))]
pub async fn get(
    State(state): State<ApiState>,
    auth: Reader,
    PathPair(name, version): PathPair,
) -> ApiResult<axum::Json<PluginEntry>> {
    state
        .app
        .catalog
        .get(auth.ws(), &name, &version)
        .map(axum::Json)
        .ok_or_else(|| plugin_not_found(&name, &version))
}

/// Grants requested with an upload.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// `all` (everything the plugin declares) or a comma-separated list, e.g. `http,dns`.
    /// Without it the plugin is installed awaiting a grant.
    pub grant: Option<String>,
    /// Comma-separated host names the plugin may reach (`example.com`, `*.example.com`).
    pub allowed_hosts: Option<String>,
}

/// Upload a plugin
///
/// The component as the raw body (`Content-Type: application/wasm`) or as the `file` part of
/// a `multipart/form-data` body, at most 32 MiB. It is validated (a component of a supported
/// world whose `describe()` works), stored by digest, and installed awaiting a grant unless
/// `grant` is given. Uploading the same bytes again returns the existing entry (200).
#[utoipa::path(post, path = "/api/v1/plugins", operation_id = "uploadPlugin", tag = "plugins",
    params(UploadQuery),
    request_body(content(
        (Vec<u8> = "application/wasm"),
        (Object = "multipart/form-data")),
        description = "The component, raw or as the `file` part"),
    responses(
        (status = 201, description = "Stored; `Location` names it", body = PluginEntry),
        (status = 200, description = "These exact bytes were already stored", body = PluginEntry),
        (status = 400, description = "Not a usable plugin component", body = ErrorEnvelope),
        (status = 409, description = "name@version taken by other bytes, or a built-in name", body = ErrorEnvelope),
        (status = 413, description = "Larger than 32 MiB", body = ErrorEnvelope),
        (status = 415, description = "Neither application/wasm nor multipart/form-data", body = ErrorEnvelope)),
    security(("bearer" = ["admin"])))]
pub async fn upload(
    State(state): State<ApiState>,
    auth: Admin,
    Query(q): Query<UploadQuery>,
    req: Request,
) -> ApiResult<Response> {
    let ws = auth.ws();
    let grant = upload_grant(&q)?;
    let bytes = component_bytes(req, &state).await?;
    if bytes.is_empty() {
        return Err(ApiError::new(
            ErrorCode::PluginInvalid,
            "the upload is empty",
        ));
    }
    let digest = hex::encode(Sha256::digest(&bytes));
    let existed = state
        .app
        .catalog
        .list(ws)
        .iter()
        .any(|e| !e.builtin && e.digest == digest);
    let catalog = &state.app.catalog;
    let entry = match grant {
        UploadGrant::None => catalog.upload(ws, &bytes, None).await?,
        UploadGrant::Request(g) => catalog.upload(ws, &bytes, Some(g)).await?,
        UploadGrant::AllNarrowed(hosts) => {
            let entry = catalog.upload(ws, &bytes, None).await?;
            let grants = declared_narrowed(&entry, hosts);
            catalog
                .grant(
                    ws,
                    &entry.name,
                    &entry.version,
                    GrantRequest::Exactly(grants),
                )
                .await?
        }
    };
    if existed {
        return Ok((StatusCode::OK, axum::Json(entry)).into_response());
    }
    let mut response = (StatusCode::CREATED, axum::Json(&entry)).into_response();
    if let Ok(v) = header::HeaderValue::from_str(&location(&entry)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// Every capability `entry` declares, reaching only `hosts` (`grant=all` narrowed by hosts).
fn declared_narrowed(entry: &PluginEntry, hosts: Vec<String>) -> Grants {
    Grants {
        capabilities: entry.capabilities.iter().copied().collect(),
        allowed_hosts: Some(hosts),
    }
}

/// What an upload asks to be granted.
enum UploadGrant {
    None,
    Request(GrantRequest),
    /// `grant=all` narrowed by `allowed_hosts`: needs the declared capabilities first.
    AllNarrowed(Vec<String>),
}

fn upload_grant(q: &UploadQuery) -> ApiResult<UploadGrant> {
    let hosts = q
        .allowed_hosts
        .as_deref()
        .map(|h| {
            let list: Vec<String> = h.split(',').map(str::to_string).collect();
            allowed_hosts(list, "/allowed_hosts")
        })
        .transpose()?;
    let Some(grant) = q.grant.as_deref().map(str::trim) else {
        if hosts.is_some() {
            return Err(ApiError::validation(
                "/allowed_hosts",
                "allowed_hosts narrows a grant: add `grant=all` or a capability list",
            ));
        }
        return Ok(UploadGrant::None);
    };
    if grant.eq_ignore_ascii_case("all") {
        return Ok(match hosts {
            None => UploadGrant::Request(GrantRequest::All),
            Some(h) => UploadGrant::AllNarrowed(h),
        });
    }
    let mut capabilities = std::collections::BTreeSet::new();
    for name in grant.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let cap: Capability =
            name.parse()
                .map_err(|e: crate::runtime::grants::UnknownCapability| {
                    ApiError::validation("/grant", e.to_string())
                })?;
        capabilities.insert(cap);
    }
    Ok(UploadGrant::Request(GrantRequest::Exactly(Grants {
        capabilities,
        allowed_hosts: hosts,
    })))
}

/// Checks host patterns: `name.example` or `*.example`, no scheme, port or path.
fn allowed_hosts(list: Vec<String>, field: &str) -> ApiResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for (i, raw) in list.into_iter().enumerate() {
        let host = raw.trim().to_ascii_lowercase();
        let bare = host.strip_prefix("*.").unwrap_or(&host);
        let valid = !bare.is_empty()
            && bare.len() <= 253
            && bare
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if !valid {
            return Err(ApiError::validation(
                format!("{field}/{i}"),
                format!("`{raw}` is not a host name or `*.suffix` pattern"),
            ));
        }
        if !out.contains(&host) {
            out.push(host);
        }
    }
    if out.is_empty() || out.len() > MAX_ALLOWED_HOSTS {
        return Err(ApiError::validation(
            field,
            format!("give 1–{MAX_ALLOWED_HOSTS} hosts"),
        ));
    }
    Ok(out)
}

/// The component bytes of a raw or multipart upload.
async fn component_bytes(req: Request, state: &ApiState) -> ApiResult<Vec<u8>> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/wasm" | "application/octet-stream" => {
            Ok(body_bytes(req, state).await?.to_vec())
        }
        "multipart/form-data" => {
            let mut multipart = Multipart::from_request(req, state)
                .await
                .map_err(|e| ApiError::validation("/file", e.body_text()))?;
            loop {
                let field = multipart.next_field().await.map_err(multipart_error)?;
                let Some(field) = field else {
                    return Err(ApiError::validation(
                        "/file",
                        "the multipart body has no `file` part",
                    ));
                };
                if field.name() == Some("file") {
                    return Ok(field.bytes().await.map_err(multipart_error)?.to_vec());
                }
            }
        }
        _ => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "upload the component as `Content-Type: application/wasm` or as the `file` part \
             of multipart/form-data",
        )),
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the upload is larger than {} MiB",
                UPLOAD_LIMIT / (1024 * 1024)
            ),
        )
    } else {
        ApiError::validation("/file", e.body_text())
    }
}

/// Body of a grant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantInput {
    /// `"all"` (everything the plugin declares) or a list such as `["http", "dns"]`.
    #[schema(value_type = Object)]
    pub capabilities: serde_json::Value,
    /// Host names the plugin may reach (`example.com`, `*.example.com`); default unrestricted.
    #[serde(default)]
    pub allowed_hosts: Option<Vec<String>>,
}

fn grant_request(
    state: &ApiState,
    ws: WorkspaceId,
    name: &str,
    version: &str,
    input: GrantInput,
) -> ApiResult<GrantRequest> {
    let hosts = input
        .allowed_hosts
        .map(|h| allowed_hosts(h, "/allowed_hosts"))
        .transpose()?;
    let capabilities = match &input.capabilities {
        serde_json::Value::String(s) if s == "all" => {
            let Some(hosts) = hosts else {
                return Ok(GrantRequest::All);
            };
            let entry = state
                .app
                .catalog
                .get(ws, name, version)
                .ok_or_else(|| plugin_not_found(name, version))?;
            return Ok(GrantRequest::Exactly(declared_narrowed(&entry, hosts)));
        }
        serde_json::Value::Array(items) => {
            let mut caps = std::collections::BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                let cap = item
                    .as_str()
                    .and_then(|s| s.parse::<Capability>().ok())
                    .ok_or_else(|| {
                        ApiError::validation(
                            format!("/capabilities/{i}"),
                            "unknown capability (known: http, tcp, dns, tls, smtp)",
                        )
                    })?;
                caps.insert(cap);
            }
            caps
        }
        _ => {
            return Err(ApiError::validation(
                "/capabilities",
                "capabilities is \"all\" or a list of capability names",
            ));
        }
    };
    Ok(GrantRequest::Exactly(Grants {
        capabilities,
        allowed_hosts: hosts,
    }))
}

/// Grant capabilities
///
/// Replaces the version's grants and enables it. Capabilities it did not declare cannot be
/// granted.
#[utoipa::path(post, path = "/api/v1/plugins/{name}/{version}/grant", operation_id = "grantPlugin", tag = "plugins",
    params(("name" = String, Path), ("version" = String, Path)),
    request_body = GrantInput,
    responses((status = 200, description = "The plugin, granted and enabled", body = PluginEntry),
        (status = 400, description = "Bad grant", body = ErrorEnvelope),
        (status = 404, description = "No such plugin", body = ErrorEnvelope),
        (status = 409, description = "A built-in plugin", body = ErrorEnvelope)),
    security(("bearer" = ["admin"])))]
pub async fn grant(
    State(state): State<ApiState>,
    auth: Admin,
    PathPair(name, version): PathPair,
    Json(input): Json<GrantInput>,
) -> ApiResult<axum::Json<PluginEntry>> {
    let ws = auth.ws();
    let request = grant_request(&state, ws, &name, &version, input)?;
    Ok(axum::Json(
        state
            .app
            .catalog
            .grant(ws, &name, &version, request)
            .await?,
    ))
}

/// Enable a plugin version
///
/// Needs a grant first.
#[utoipa::path(post, path = "/api/v1/plugins/{name}/{version}/enable", operation_id = "enablePlugin", tag = "plugins",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, description = "The plugin", body = PluginEntry),
        (status = 400, description = "Not granted yet", body = ErrorEnvelope),
        (status = 404, description = "No such plugin", body = ErrorEnvelope),
        (status = 409, description = "A built-in plugin", body = ErrorEnvelope)),
    security(("bearer" = ["admin"])))]
pub async fn enable(
    State(state): State<ApiState>,
    auth: Admin,
    PathPair(name, version): PathPair,
) -> ApiResult<axum::Json<PluginEntry>> {
    let entry = state
        .app
        .catalog
        .set_enabled(auth.ws(), &name, &version, true)
        .await?;
    Ok(axum::Json(entry))
}

/// Disable a plugin version
///
/// Monitors using it get `error` results until it is enabled again.
#[utoipa::path(post, path = "/api/v1/plugins/{name}/{version}/disable", operation_id = "disablePlugin", tag = "plugins",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, description = "The plugin", body = PluginEntry),
        (status = 404, description = "No such plugin", body = ErrorEnvelope),
        (status = 409, description = "A built-in plugin", body = ErrorEnvelope)),
    security(("bearer" = ["admin"])))]
pub async fn disable(
    State(state): State<ApiState>,
    auth: Admin,
    PathPair(name, version): PathPair,
) -> ApiResult<axum::Json<PluginEntry>> {
    let entry = state
        .app
        .catalog
        .set_enabled(auth.ws(), &name, &version, false)
        .await?;
    Ok(axum::Json(entry))
}

/// Delete a plugin version
///
/// Refused while monitors use it.
#[utoipa::path(delete, path = "/api/v1/plugins/{name}/{version}", operation_id = "deletePlugin", tag = "plugins",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such plugin", body = ErrorEnvelope),
        (status = 409, description = "In use, or a built-in plugin", body = ErrorEnvelope)),
    security(("bearer" = ["admin"])))]
pub async fn delete(
    State(state): State<ApiState>,
    auth: Admin,
    PathPair(name, version): PathPair,
) -> ApiResult<StatusCode> {
    state.app.catalog.delete(auth.ws(), &name, &version).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(grant: Option<&str>, hosts: Option<&str>) -> UploadQuery {
        UploadQuery {
            grant: grant.map(str::to_string),
            allowed_hosts: hosts.map(str::to_string),
        }
    }

    #[test]
    fn upload_grant_forms() {
        assert!(matches!(
            upload_grant(&q(None, None)),
            Ok(UploadGrant::None)
        ));
        assert!(matches!(
            upload_grant(&q(Some("all"), None)),
            Ok(UploadGrant::Request(GrantRequest::All))
        ));
        match upload_grant(&q(Some("all"), Some("a.com, *.B.com"))) {
            Ok(UploadGrant::AllNarrowed(h)) => assert_eq!(h, vec!["a.com", "*.b.com"]),
            _ => panic!("all narrowed"),
        }
        match upload_grant(&q(Some("http,dns"), None)) {
            Ok(UploadGrant::Request(GrantRequest::Exactly(g))) => {
                assert_eq!(g.capabilities.len(), 2);
                assert!(g.allowed_hosts.is_none());
            }
            _ => panic!("list"),
        }
        let e = upload_grant(&q(Some("http,ftp"), None))
            .err()
            .expect("unknown");
        assert_eq!(e.field.as_deref(), Some("/grant"));
        let e = upload_grant(&q(None, Some("a.com")))
            .err()
            .expect("hosts alone");
        assert_eq!(e.field.as_deref(), Some("/allowed_hosts"));
        let e = upload_grant(&q(Some("all"), Some("http://a.com/")))
            .err()
            .expect("url");
        assert_eq!(e.field.as_deref(), Some("/allowed_hosts/0"));
    }
}
