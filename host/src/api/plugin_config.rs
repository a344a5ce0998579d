//! What monitors and channels share about a plugin reference and its config: resolving the
//! reference (a check plugin for monitors, a notifier for channels), validating the config
//! against the plugin's JSON Schema (echoed `"***"` and sealed values refused), sealing secret
//! fields, and JSON merge patches over a stored config.

use axum::http::StatusCode;
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use crate::app::App;
use crate::catalog::{CatalogError, Resolved};
use crate::model::WorkspaceId;
use crate::secrets;

/// What a plugin reference must resolve to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// A check plugin (monitors).
    Check,
    /// A notifier plugin (channels).
    Notifier,
}

/// Resolves a plugin reference; failures (`PLUGIN_NOT_FOUND`, `PLUGIN_NOT_ACTIVE`,
/// `PLUGIN_WRONG_KIND`) point at `/plugin` with status 400.
pub fn resolve(app: &App, ws: WorkspaceId, reference: &str, want: Want) -> ApiResult<Resolved> {
    let resolved = match want {
        Want::Check => app.catalog.resolve(ws, reference),
        Want::Notifier => app.catalog.resolve_notifier(ws, reference),
    };
    resolved.map_err(catalog_error)
}

/// A catalog failure about the reference in a body: `/plugin`, status 400.
pub fn catalog_error(e: CatalogError) -> ApiError {
    match e {
        CatalogError::Store(s) => ApiError::from(s),
        other => ApiError::from(other)
            .at("/plugin")
            .with_status(StatusCode::BAD_REQUEST),
    }
}

/// A trimmed, non-empty plugin reference, or `VALIDATION_FAILED` at `/plugin` saying `what`.
pub fn reference(plugin: Option<String>, what: &str) -> ApiResult<String> {
    plugin
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::validation("/plugin", what.to_string()))
}

/// A config as sent: an object (default `{}`), or `VALIDATION_FAILED` at `/config`.
pub fn object(config: Option<Value>) -> ApiResult<Value> {
    let config = config.unwrap_or_else(|| Value::Object(Default::default()));
    if !config.is_object() {
        return Err(ApiError::validation(
            "/config",
            "config must be a JSON object",
        ));
    }
    Ok(config)
}

/// Rejects echoed `"***"` and sealed values, then validates against the plugin's schema;
/// errors point under `/config`.
pub fn check_config(resolved: &Resolved, config: &Value) -> ApiResult<()> {
    secrets::check_input(&resolved.plugin.info.config_schema, config)
        .map_err(|e| ApiError::from(e).under("/config"))?;
    resolved.plugin.validate_config(config).map_err(|e| {
        let pointer = if e.pointer == "/" { "" } else { &e.pointer };
        ApiError::validation(format!("/config{pointer}"), e.message.clone())
    })
}

/// The config to store: secret fields (per the plugin's schema) sealed.
pub fn seal(app: &App, resolved: &Resolved, config: &Value) -> Value {
    app.secrets
        .seal(&resolved.plugin.info.config_schema, config)
}

/// Refuses sealed values anywhere in a config sent by a client (only the server makes them).
pub fn refuse_sealed(config: &Value) -> ApiResult<()> {
    // With an empty schema there are no secret positions: only sealed values are looked for.
    secrets::check_input(&Value::Object(Default::default()), config)
        .map_err(|e| ApiError::from(e).under("/config"))
}

/// A stored spec as the document a PATCH merges into: nulls left out, the config's sealed
/// secrets opened.
pub fn patch_base<T: serde::Serialize>(app: &App, spec: &T) -> ApiResult<Value> {
    let mut doc = serde_json::to_value(spec).map_err(ApiError::internal)?;
    if let Value::Object(map) = &mut doc {
        map.retain(|_, v| !v.is_null());
        if let Some(config) = map.get_mut("config") {
            *config = app.secrets.reveal(config)?;
        }
    }
    Ok(doc)
}

/// Removes from `patch` every `"***"` sent where `stored` (the sealed config) holds a secret,
/// so the merge keeps the stored secret ("`***` means keep").
pub fn keep_redacted(patch: &mut Value, stored: &Value) {
    let Value::Object(fields) = patch else {
        return;
    };
    fields.retain(|key, value| match value {
        Value::String(s) if s == secrets::REDACTED => {
            let here = stored.get(key);
            let sealed = here.is_some_and(|v| {
                v.as_str() != Some(secrets::REDACTED)
                    && secrets::redact(v).as_str() == Some(secrets::REDACTED)
            });
            !sealed
        }
        Value::Object(_) => {
            if let Some(inner) = stored.get(key) {
                keep_redacted(value, inner);
            }
            true
        }
        _ => true,
    });
}

/// Applies a JSON merge patch (RFC 7396) to `target`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// The fields of a PATCH body, or `VALIDATION_FAILED` when it is not an object.
pub fn patch_fields(patch: &Value) -> ApiResult<&serde_json::Map<String, Value>> {
    patch
        .as_object()
        .ok_or_else(|| ApiError::validation("", "a PATCH body must be a JSON object"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "tags": ["x"]});
        merge_patch(
            &mut doc,
            &json!({"a": "z", "c": {"f": null}, "tags": ["y", "z"]}),
        );
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}, "tags": ["y", "z"]}));
        let mut doc = json!({"a": 1});
        merge_patch(&mut doc, &json!({"b": {"c": null, "d": 2}}));
        assert_eq!(doc, json!({"a": 1, "b": {"d": 2}}));
    }

    #[test]
    fn redacted_secrets_in_a_patch_are_kept() {
        let key = secrets::SecretBox::new([7; 32]);
        let schema = json!({"type": "object", "properties": {
            "token": {"type": "string", "x-secret": true},
            "auth": {"type": "object", "properties": {"password": {"type": "string", "writeOnly": true}}}
        }});
        let stored = key.seal(
            &schema,
            &json!({"token": "t0k", "url": "***", "auth": {"password": "pw", "user": "u"}}),
        );
        let mut patch = json!({"config": {"token": "***", "url": "***",
            "auth": {"password": "***", "user": "v"}, "new": "***"}});
        if let Some(config) = patch.get_mut("config") {
            keep_redacted(config, &stored);
        }
        // Secrets go (kept by the merge); a literal "***" where no secret is stored stays.
        assert_eq!(
            patch,
            json!({"config": {"url": "***", "auth": {"user": "v"}, "new": "***"}})
        );
    }
}
