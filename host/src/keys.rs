//! API key material: generation and the hash that is stored instead of the key.

use rand::Rng;
use rand::distributions::Alphanumeric;
use sha2::{Digest, Sha256};

/// Prefix of every Pharos API key, so leaked keys are recognisable by secret scanners.
pub const KEY_PREFIX: &str = "phk_";

/// A freshly generated key: shown once, stored only as its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// The whole key, e.g. `phk_…` (43 characters).
    pub secret: String,
    /// The first 12 characters, stored to recognise the key in lists.
    pub prefix: String,
    /// sha256 hex of the whole key.
    pub hash: String,
}

/// Generates a random key with 39 alphanumeric characters (≈ 232 bits) after the prefix.
pub fn generate() -> NewKey {
    let body: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(39)
        .map(char::from)
        .collect();
    from_secret(format!("{KEY_PREFIX}{body}"))
}

/// The stored form of a given key (a configured bootstrap token, say).
pub fn from_secret(secret: String) -> NewKey {
    NewKey {
        prefix: secret.chars().take(12).collect(),
        hash: hash(&secret),
        secret,
    }
}

/// sha256 hex of a key; keys are high-entropy, so a fast hash is enough to look them up by.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_distinct_and_hash_to_what_is_stored() {
        let a = generate();
        let b = generate();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(KEY_PREFIX));
        assert_eq!(a.secret.len(), 43);
        assert_eq!(a.prefix, &a.secret[..12]);
        assert_eq!(hash(&a.secret), a.hash);
        assert_eq!(a.hash.len(), 64);
    }
}
