//! Request extractors whose failures are API errors with a field pointer: a JSON body
//! ([`Json`]), query parameters ([`Query`]) and path ids ([`PathId`]).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::{ApiError, ErrorCode};

/// Largest JSON body accepted (plugin uploads have their own limit).
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// A JSON request body deserialized with unknown fields rejected; failures name the field.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

/// The raw bytes of a JSON body together with its parsed form (idempotency hashes the bytes).
#[derive(Debug, Clone)]
pub struct JsonWithBytes<T> {
    pub value: T,
    pub bytes: Bytes,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonWithBytes { value, .. } = JsonWithBytes::from_request(req, state).await?;
        Ok(Json(value))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonWithBytes<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(req.headers())?;
        let bytes = body_bytes(req, state).await?;
        let value = parse_json(&bytes)?;
        Ok(JsonWithBytes { value, bytes })
    }
}

/// Rejects a body whose `Content-Type` is not JSON.
fn require_json(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json")) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            if ct.is_empty() {
                "this route expects a JSON body with `Content-Type: application/json`".to_string()
            } else {
                format!("this route expects `Content-Type: application/json`, not `{ct}`")
            },
        ))
    }
}

/// Reads the whole body, mapping the size limit to `PAYLOAD_TOO_LARGE`.
pub async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::PayloadTooLarge, "the request body is too large")
        } else {
            ApiError::new(ErrorCode::InvalidJson, rejection.body_text())
        }
    })
}

/// Parses a JSON document into `T`: syntax errors are `INVALID_JSON`, shape errors
/// `VALIDATION_FAILED` with the JSON pointer of the offending field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Structs also deserialize from arrays in serde; bodies must be objects.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first != Some(b'{') {
        return match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(_) => Err(ApiError::new(
                ErrorCode::ValidationFailed,
                "the body must be a JSON object",
            )
            .at("")),
            Err(e) => Err(ApiError::new(
                ErrorCode::InvalidJson,
                format!("invalid JSON: {e}"),
            )),
        };
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let pointer = pointer_of(e.path());
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => field_error(pointer, &inner.to_string()),
            _ => ApiError::new(ErrorCode::InvalidJson, format!("invalid JSON: {inner}")),
        }
    })?;
    Ok(value)
}

/// Deserializes an in-memory document (e.g. a merged PATCH) with the same error mapping.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| field_error(pointer_of(e.path()), &e.into_inner().to_string()))
}

/// Turns a serde data error at `pointer` into `VALIDATION_FAILED`, pointing at a missing field
/// itself rather than its parent.
fn field_error(pointer: String, message: &str) -> ApiError {
    let message = strip_position(message);
    let field = match missing_field(&message) {
        Some(name) => format!("{pointer}/{}", escape(name)),
        None => pointer,
    };
    ApiError::validation(field, message)
}

/// The name in serde's "missing field `x`".
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

/// serde_json appends " at line L column C"; the pointer says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// JSON pointer of a serde_path_to_error path.
fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => {
                out.push('/');
                out.push_str(&escape(key));
            }
            Segment::Enum { variant } => {
                out.push('/');
                out.push_str(&escape(variant));
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// Escapes a JSON pointer token.
pub fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Query parameters deserialized into `T` (unknown parameters rejected by `T`'s serde
/// attributes); a bad value is `VALIDATION_FAILED` with field `/<parameter>`.
#[derive(Debug, Clone)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or("")).map(Query)
    }
}

/// Parses a query string into `T`.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let pointer = pointer_of(e.path());
        let message = e.into_inner().to_string();
        let field = match missing_field(&message) {
            Some(name) => format!("/{}", escape(name)),
            None => pointer,
        };
        ApiError::validation(field, format!("query parameter: {message}"))
    })
}

/// The numeric `{id}` of a path; anything else is `NOT_FOUND`.
#[derive(Debug, Clone, Copy)]
pub struct PathId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::not_found("no such resource"))?;
        raw.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(PathId)
            .ok_or_else(|| ApiError::not_found(format!("no resource with id `{raw}`")))
    }
}

/// Two path segments, e.g. `{name}/{version}`.
#[derive(Debug, Clone)]
pub struct PathPair(pub String, pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathPair {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path((a, b)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::not_found("no such resource"))?;
        Ok(PathPair(a, b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        url: String,
        n: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        items: Vec<Item>,
    }

    fn err(body: &str) -> ApiError {
        parse_json::<Body>(body.as_bytes()).expect_err(body)
    }

    #[test]
    fn json_errors_point_at_the_field() {
        let e = err(r#"{"name":"a","items":[{"url":"x","bogus":1}]}"#);
        assert_eq!(e.code, ErrorCode::ValidationFailed);
        assert_eq!(e.field.as_deref(), Some("/items/0/bogus"));
        assert!(e.message.contains("unknown field `bogus`"), "{}", e.message);
        let e = err(r#"{"name":"a","items":[{"n":1}]}"#);
        assert_eq!(e.field.as_deref(), Some("/items/0/url"));
        let e = err(r#"{"items":[]}"#);
        assert_eq!(e.field.as_deref(), Some("/name"));
        let e = err(r#"{"name":"a","items":[{"url":"x","n":-1}]}"#);
        assert_eq!(e.field.as_deref(), Some("/items/0/n"));
        assert!(!e.message.contains("line 1"), "{}", e.message);
        let e = err(r#"{"name":"a""#);
        assert_eq!(e.code, ErrorCode::InvalidJson);
        let e = err("nope");
        assert_eq!(e.code, ErrorCode::InvalidJson);
        let e = err("[1]");
        assert_eq!(e.code, ErrorCode::ValidationFailed);
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Q {
        limit: Option<u32>,
        enabled: Option<bool>,
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let e = parse_query::<Q>("limit=x").expect_err("bad");
        assert_eq!(e.field.as_deref(), Some("/limit"));
        let e = parse_query::<Q>("foo=1").expect_err("unknown");
        assert_eq!(e.field.as_deref(), Some("/foo"));
        let q = parse_query::<Q>("limit=5&enabled=true").expect("ok");
        assert_eq!(q.limit, Some(5));
        assert_eq!(q.enabled, Some(true));
    }
}
