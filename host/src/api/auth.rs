//! Bearer API keys: the [`Auth`] extractor checks `Authorization: Bearer <key>` against the
//! stored hashes (verified keys are cached briefly, revocation through the API evicts at once)
//! and the scope the route needs (`read` ⊂ `write` ⊂ `admin`).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::ApiState;
use super::error::{ApiError, ErrorCode};
use crate::model::{ApiKey, Scope, WorkspaceId};
use crate::store::Store;

/// How long a verified key is trusted without asking the store again (a key revoked on another
/// node, or directly in the database, stops working after at most this long).
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(30);
/// `last_used_at` is written at most this often per key.
pub const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Entries kept before the cache is pruned.
const MAX_CACHED_KEYS: usize = 10_000;

/// A scope a route requires, as a type.
pub trait RequiredScope: Send + Sync + 'static {
    /// The scope.
    const SCOPE: Scope;
}

/// Routes that read.
#[derive(Debug)]
pub struct ReadScope;
/// Routes that change monitors or run checks.
#[derive(Debug)]
pub struct WriteScope;
/// Routes that manage plugins and API keys.
#[derive(Debug)]
pub struct AdminScope;

impl RequiredScope for ReadScope {
    const SCOPE: Scope = Scope::Read;
}
impl RequiredScope for WriteScope {
    const SCOPE: Scope = Scope::Write;
}
impl RequiredScope for AdminScope {
    const SCOPE: Scope = Scope::Admin;
}

/// An authenticated caller whose key has at least scope `S`.
#[derive(Debug)]
pub struct Auth<S> {
    pub key: ApiKey,
    _scope: PhantomData<S>,
}

/// A caller with the `read` scope.
pub type Reader = Auth<ReadScope>;
/// A caller with the `write` scope.
pub type Writer = Auth<WriteScope>;
/// A caller with the `admin` scope.
pub type Admin = Auth<AdminScope>;

impl<S> Auth<S> {
    /// The workspace every operation of this request is scoped to.
    pub fn ws(&self) -> WorkspaceId {
        self.key.workspace_id
    }
}

impl<S: RequiredScope> FromRequestParts<ApiState> for Auth<S> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let secret = bearer(&parts.headers)?;
        let key = state.keys.verify(&state.app.store, secret).await?;
        let has = key.scopes.iter().copied().max();
        if has < Some(S::SCOPE) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "this request needs an API key with the `{}` scope; this key has `{}`",
                    S::SCOPE.as_str(),
                    has.map(Scope::as_str).unwrap_or("none")
                ),
            )
            .with_details(serde_json::json!({ "required_scope": S::SCOPE.as_str() })));
        }
        Ok(Auth {
            key,
            _scope: PhantomData,
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &axum::http::HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "missing API key: send `Authorization: Bearer <key>`",
            )
        })?
        .to_str()
        .map_err(|_| ApiError::new(ErrorCode::Unauthorized, "malformed Authorization header"))?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unauthorized,
            "malformed Authorization header: expected `Bearer <key>`",
        )
    })?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "malformed Authorization header: expected `Bearer <key>`",
        ));
    }
    Ok(token)
}

struct CachedKey {
    key: ApiKey,
    verified: Instant,
    touched: Option<Instant>,
}

/// Keys verified recently, by the hash of their secret.
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, CachedKey>>,
}

impl KeyCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedKey>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The unrevoked key with this secret, from the cache or the store; `UNAUTHORIZED` otherwise.
    pub async fn verify(&self, store: &Store, secret: &str) -> Result<ApiKey, ApiError> {
        let hash = crate::keys::hash(secret);
        let now = Instant::now();
        let cached = {
            let mut entries = self.lock();
            match entries.get_mut(&hash) {
                Some(e) if now.duration_since(e.verified) < KEY_CACHE_TTL => {
                    Some((e.key.clone(), touch_due(&mut e.touched, now)))
                }
                _ => None,
            }
        };
        let (key, touch) = match cached {
            Some(hit) => hit,
            None => {
                let found = store.api_key_by_hash(&hash).await?;
                let Some(key) = found.filter(|k| k.revoked_at.is_none()) else {
                    self.lock().remove(&hash);
                    return Err(ApiError::new(
                        ErrorCode::Unauthorized,
                        "invalid or revoked API key",
                    ));
                };
                let mut entries = self.lock();
                if entries.len() >= MAX_CACHED_KEYS {
                    entries.retain(|_, e| now.duration_since(e.verified) < KEY_CACHE_TTL);
                    if entries.len() >= MAX_CACHED_KEYS {
                        entries.clear();
                    }
                }
                let mut touched = entries.get(&hash).and_then(|e| e.touched);
                let touch = touch_due(&mut touched, now);
                entries.insert(
                    hash,
                    CachedKey {
                        key: key.clone(),
                        verified: now,
                        touched,
                    },
                );
                (key, touch)
            }
        };
        if touch {
            let store = store.clone();
            let id = key.id;
            tokio::spawn(async move {
                if let Err(e) = store.touch_api_key(id, chrono::Utc::now()).await {
                    tracing::warn!(key_id = id, error = %e, "cannot record API key use");
                }
            });
        }
        Ok(key)
    }

    /// Forgets a key at once (it was revoked).
    pub fn evict(&self, key_id: i64) {
        self.lock().retain(|_, e| e.key.id != key_id);
    }
}

/// True (and `touched` moved to now) when `last_used_at` should be written.
fn touch_due(touched: &mut Option<Instant>, now: Instant) -> bool {
    match touched {
        Some(t) if now.duration_since(*t) < TOUCH_EVERY => false,
        _ => {
            *touched = Some(now);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(auth: Option<&str>) -> Parts {
        let mut req = axum::http::Request::builder().uri("/");
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let (parts, ()) = req.body(()).expect("request").into_parts();
        parts
    }

    #[test]
    fn bearer_header_forms() {
        assert_eq!(bearer(&parts(Some("Bearer abc")).headers).ok(), Some("abc"));
        assert_eq!(
            bearer(&parts(Some("bearer  abc ")).headers).ok(),
            Some("abc")
        );
        for bad in [None, Some("Basic abc"), Some("Bearer"), Some("Bearer ")] {
            let e = bearer(&parts(bad).headers).expect_err("bad header");
            assert_eq!(e.code, ErrorCode::Unauthorized);
        }
    }

    #[test]
    fn touches_at_most_once_a_minute() {
        let now = Instant::now();
        let mut touched = None;
        assert!(touch_due(&mut touched, now));
        assert!(!touch_due(&mut touched, now + Duration::from_secs(59)));
        assert!(touch_due(&mut touched, now + Duration::from_secs(61)));
    }
}
