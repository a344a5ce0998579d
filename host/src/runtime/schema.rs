//! Validating plugin configs against the plugin's JSON Schema.

/// A config that does not satisfy the plugin's schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config field {pointer}: {message}")]
pub struct ConfigError {
    /// JSON pointer of the offending field (`""` for the document itself).
    pub pointer: String,
    /// What is wrong with it.
    pub message: String,
}

/// Validates `config`, reporting the first error (the deepest pointer first for clarity).
pub fn validate(
    validator: &jsonschema::Validator,
    config: &serde_json::Value,
) -> Result<(), ConfigError> {
    let mut errors: Vec<ConfigError> = validator
        .iter_errors(config)
        .map(|e| {
            let mut pointer = e.instance_path.to_string();
            // A missing property is reported at its parent; point at the property itself.
            if let jsonschema::error::ValidationErrorKind::Required { property } = &e.kind
                && let Some(name) = property.as_str()
            {
                pointer = format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1"));
            }
            ConfigError {
                pointer: pointer_of(&pointer),
                message: e.to_string(),
            }
        })
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    errors.sort_by_key(|e| std::cmp::Reverse(e.pointer.len()));
    Err(errors.swap_remove(0))
}

/// The document itself is `/` rather than an empty pointer, for readable messages.
fn pointer_of(path: &str) -> String {
    if path.is_empty() {
        "/".to_string()
    } else {
        path.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_failing_field() {
        let schema = json!({
            "type": "object",
            "properties": {"url": {"type": "string"}, "n": {"type": "integer", "minimum": 1}},
            "required": ["url"],
            "additionalProperties": false
        });
        let v = jsonschema::validator_for(&schema).expect("schema");
        assert!(validate(&v, &json!({"url": "x", "n": 2})).is_ok());
        let e = validate(&v, &json!({"url": "x", "n": 0})).expect_err("minimum");
        assert_eq!(e.pointer, "/n");
        assert!(e.message.contains('0'), "{}", e.message);
        let e = validate(&v, &json!({"n": 1})).expect_err("required");
        assert_eq!(e.pointer, "/url");
        assert!(e.message.contains("url"), "{}", e.message);
    }
}
