//! Secrets in plugin configs: fields a plugin's schema marks `"x-secret": true` (or
//! `"writeOnly": true`) are sealed with AES-256-GCM before they are stored, revealed only to
//! run a check, and redacted as `"***"` on every read.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use serde_json::Value;

/// Prefix of a sealed value; anything else is plaintext.
const SEALED_PREFIX: &str = "pharos:sealed:v1:";

/// What every read shows instead of a secret.
pub const REDACTED: &str = "***";

/// What can go wrong with secrets.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// `PHAROS_SECRET_KEY` is not 32 bytes in hex or base64.
    #[error(
        "the secret key must be 32 bytes, given as 64 hex characters or base64 (generate one with `openssl rand -hex 32`)"
    )]
    BadKey,
    /// The key file could not be read or created.
    #[error("secret key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    /// A write sent the redacted placeholder back instead of a value.
    #[error(
        "field {pointer} is a secret: send its new value, or leave it out to keep the stored one (\"***\" is only a placeholder)"
    )]
    RedactedEcho { pointer: String },
    /// A write sent a sealed value, which only the server produces.
    #[error("field {pointer} holds a sealed value, which cannot be written")]
    SealedInput { pointer: String },
    /// A sealed value could not be opened (wrong key or corrupt).
    #[error("a stored secret cannot be decrypted (was PHAROS_SECRET_KEY changed?)")]
    Undecryptable,
}

/// Where the key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `PHAROS_SECRET_KEY` / the config file.
    Configured,
    /// Read from the key file in the data directory.
    File(String),
    /// Generated on this start and written to the key file.
    Generated(String),
}

/// Seals and opens secret values with one AES-256-GCM key.
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// A box over a raw 32-byte key.
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(&key.into()),
        }
    }

    /// Parses a key given as 64 hex characters or as base64 of 32 bytes.
    pub fn from_text(key: &str) -> Result<Self, SecretError> {
        let key = key.trim();
        let bytes = hex::decode(key)
            .ok()
            .or_else(|| B64.decode(key).ok())
            .ok_or(SecretError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SecretError::BadKey)?;
        Ok(Self::new(key))
    }

    /// The configured key, else the key file `secret.key` in `data_dir` (created with a random
    /// key, mode 0600, on first start).
    pub fn configured_or_file(
        configured: Option<&str>,
        data_dir: &Path,
    ) -> Result<(Self, KeySource), SecretError> {
        if let Some(key) = configured {
            return Ok((Self::from_text(key)?, KeySource::Configured));
        }
        let path = data_dir.join("secret.key");
        let shown = path.display().to_string();
        let io = |source| SecretError::KeyFile {
            path: shown.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok((Self::from_text(&text)?, KeySource::File(shown))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut key);
                write_private(&path, &hex::encode(key)).map_err(io)?;
                Ok((Self::new(key), KeySource::Generated(shown)))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Seals every plaintext string at a secret position of `config`; sealed ones stay as they are.
    pub fn seal(&self, schema: &Value, config: &Value) -> Value {
        let mut out = config.clone();
        for_each_secret(schema, &mut out, "", &mut |_, v| {
            if let Value::String(s) = v
                && !s.starts_with(SEALED_PREFIX)
            {
                *s = self.seal_str(s);
            }
            Ok(())
        })
        .unwrap_or(());
        out
    }

    /// Opens every sealed string anywhere in `config`.
    pub fn reveal(&self, config: &Value) -> Result<Value, SecretError> {
        let mut out = config.clone();
        map_strings(&mut out, &mut |s| {
            if let Some(sealed) = s.strip_prefix(SEALED_PREFIX) {
                *s = self.open_str(sealed)?;
            }
            Ok(())
        })?;
        Ok(out)
    }

    fn seal_str(&self, plain: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        // Encryption with a valid key and a 12-byte nonce cannot fail for in-memory inputs.
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .unwrap_or_default();
        let mut buf = nonce.to_vec();
        buf.extend_from_slice(&ct);
        format!("{SEALED_PREFIX}{}", B64.encode(buf))
    }

    fn open_str(&self, sealed: &str) -> Result<String, SecretError> {
        let buf = B64.decode(sealed).map_err(|_| SecretError::Undecryptable)?;
        if buf.len() < 12 {
            return Err(SecretError::Undecryptable);
        }
        let (nonce, ct) = buf.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| SecretError::Undecryptable)?;
        String::from_utf8(plain).map_err(|_| SecretError::Undecryptable)
    }
}

/// Rejects a config written by a client that echoes `"***"` at a secret position or carries a
/// sealed value anywhere.
pub fn check_input(schema: &Value, config: &Value) -> Result<(), SecretError> {
    let mut probe = config.clone();
    for_each_secret(schema, &mut probe, "", &mut |pointer, v| {
        if v.as_str() == Some(REDACTED) {
            return Err(SecretError::RedactedEcho {
                pointer: pointer.to_string(),
            });
        }
        Ok(())
    })?;
    find_sealed(config, "")
}

/// Replaces every sealed string in `config` with `"***"`.
pub fn redact(config: &Value) -> Value {
    let mut out = config.clone();
    let _ = map_strings(&mut out, &mut |s| {
        if s.starts_with(SEALED_PREFIX) {
            *s = REDACTED.to_string();
        }
        Ok(())
    });
    out
}

/// Calls `f` with the JSON pointer and value of every secret position present in `config`.
fn for_each_secret(
    schema: &Value,
    config: &mut Value,
    pointer: &str,
    f: &mut dyn FnMut(&str, &mut Value) -> Result<(), SecretError>,
) -> Result<(), SecretError> {
    let Some(node) = schema.as_object() else {
        return Ok(());
    };
    let marked = node.get("x-secret").and_then(Value::as_bool) == Some(true)
        || node.get("writeOnly").and_then(Value::as_bool) == Some(true);
    if marked && config.is_string() {
        return f(pointer, config);
    }
    if let (Some(props), Some(obj)) = (
        node.get("properties").and_then(Value::as_object),
        config.as_object_mut(),
    ) {
        for (name, sub) in props {
            if let Some(v) = obj.get_mut(name) {
                let child = format!("{pointer}/{}", escape(name));
                for_each_secret(sub, v, &child, f)?;
            }
        }
    }
    if let (Some(items), Some(arr)) = (node.get("items"), config.as_array_mut()) {
        for (i, v) in arr.iter_mut().enumerate() {
            for_each_secret(items, v, &format!("{pointer}/{i}"), f)?;
        }
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(subs) = node.get(key).and_then(Value::as_array) {
            for sub in subs {
                for_each_secret(sub, config, pointer, f)?;
            }
        }
    }
    Ok(())
}

fn find_sealed(config: &Value, pointer: &str) -> Result<(), SecretError> {
    match config {
        Value::String(s) if s.starts_with(SEALED_PREFIX) => Err(SecretError::SealedInput {
            pointer: if pointer.is_empty() {
                "/".into()
            } else {
                pointer.into()
            },
        }),
        Value::Object(o) => o
            .iter()
            .try_for_each(|(k, v)| find_sealed(v, &format!("{pointer}/{}", escape(k)))),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| find_sealed(v, &format!("{pointer}/{i}"))),
        _ => Ok(()),
    }
}

fn map_strings(
    v: &mut Value,
    f: &mut dyn FnMut(&mut String) -> Result<(), SecretError>,
) -> Result<(), SecretError> {
    match v {
        Value::String(s) => f(s),
        Value::Object(o) => o.values_mut().try_for_each(|v| map_strings(v, f)),
        Value::Array(a) => a.iter_mut().try_for_each(|v| map_strings(v, f)),
        _ => Ok(()),
    }
}

fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "url": {"type": "string"},
                "token": {"type": "string", "x-secret": true},
                "auth": {"type": "object", "properties": {
                    "user": {"type": "string"},
                    "password": {"type": "string", "writeOnly": true}
                }},
                "headers": {"type": "array", "items": {"type": "object", "properties": {
                    "value": {"type": "string", "x-secret": true}
                }}}
            }
        })
    }

    fn boxed() -> SecretBox {
        SecretBox::from_text(&"ab".repeat(32)).expect("key")
    }

    #[test]
    fn seals_reveals_and_redacts_only_secret_fields() {
        let b = boxed();
        let config = json!({"url": "https://x", "token": "t0k", "auth": {"user": "u", "password": "pw"},
                            "headers": [{"value": "h1"}, {"value": "h2"}]});
        let sealed = b.seal(&schema(), &config);
        assert_eq!(sealed["url"], "https://x");
        assert_eq!(sealed["auth"]["user"], "u");
        for p in [
            "/token",
            "/auth/password",
            "/headers/0/value",
            "/headers/1/value",
        ] {
            let s = sealed.pointer(p).and_then(Value::as_str).expect(p);
            assert!(s.starts_with(SEALED_PREFIX), "{p}: {s}");
            // The plaintext is gone (random base64 may contain any two letters, so compare
            // whole values rather than searching substrings).
            let original = config.pointer(p).and_then(Value::as_str).expect(p);
            assert_ne!(s, original);
            assert!(!s.ends_with(&format!(":{original}")), "{p}: {s}");
        }
        // Sealing twice leaves sealed values alone.
        assert_eq!(b.seal(&schema(), &sealed), sealed);
        assert_eq!(b.reveal(&sealed).expect("reveal"), config);
        let shown = redact(&sealed);
        assert_eq!(shown["token"], REDACTED);
        assert_eq!(shown["auth"]["password"], REDACTED);
        assert_eq!(shown["url"], "https://x");
    }

    #[test]
    fn rejects_redacted_echo_and_sealed_input() {
        let e = check_input(
            &schema(),
            &json!({"auth": {"user": "u", "password": "***"}}),
        )
        .expect_err("echo");
        assert!(
            matches!(e, SecretError::RedactedEcho { ref pointer } if pointer == "/auth/password")
        );
        // "***" in a field that is not secret is just text.
        assert!(check_input(&schema(), &json!({"url": "***"})).is_ok());
        let sealed = boxed().seal(&schema(), &json!({"token": "x"}));
        let e = check_input(&schema(), &json!({"url": sealed["token"]})).expect_err("sealed");
        assert!(matches!(e, SecretError::SealedInput { ref pointer } if pointer == "/url"));
    }

    #[test]
    fn wrong_key_cannot_reveal() {
        let sealed = boxed().seal(&schema(), &json!({"token": "x"}));
        let other = SecretBox::from_text(&"cd".repeat(32)).expect("key");
        assert!(matches!(
            other.reveal(&sealed),
            Err(SecretError::Undecryptable)
        ));
    }

    #[test]
    fn key_text_forms() {
        assert!(SecretBox::from_text(&"00".repeat(32)).is_ok());
        assert!(SecretBox::from_text(&B64.encode([7u8; 32])).is_ok());
        assert!(matches!(
            SecretBox::from_text("short"),
            Err(SecretError::BadKey)
        ));
        assert!(matches!(
            SecretBox::from_text(&"00".repeat(31)),
            Err(SecretError::BadKey)
        ));
    }

    #[test]
    fn key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, src) = SecretBox::configured_or_file(None, dir.path()).expect("generate");
        assert!(matches!(src, KeySource::Generated(_)));
        let sealed = a.seal(&schema(), &json!({"token": "x"}));
        let (b, src) = SecretBox::configured_or_file(None, dir.path()).expect("reuse");
        assert!(matches!(src, KeySource::File(_)));
        assert_eq!(b.reveal(&sealed).expect("reveal")["token"], "x");
    }
}
