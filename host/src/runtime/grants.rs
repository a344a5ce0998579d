//! Capabilities a plugin may declare and an admin may grant.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A host capability that a plugin must declare and be granted before calling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// `pharos:plugin/http`.
    Http,
    /// `pharos:plugin/tcp`.
    Tcp,
    /// `pharos:plugin/dns`.
    Dns,
    /// `pharos:plugin/tls`.
    Tls,
    /// `pharos:plugin/smtp` (notifiers; reserved).
    Smtp,
}

impl Capability {
    /// Every capability, in a stable order.
    pub const ALL: [Capability; 5] = [Self::Http, Self::Tcp, Self::Dns, Self::Tls, Self::Smtp];

    /// The capability's name as plugins declare it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Tcp => "tcp",
            Self::Dns => "dns",
            Self::Tls => "tls",
            Self::Smtp => "smtp",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A capability name that Pharos does not know.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown capability `{0}` (known: http, tcp, dns, tls, smtp)")]
pub struct UnknownCapability(pub String);

impl FromStr for Capability {
    type Err = UnknownCapability;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCapability(s.to_string()))
    }
}

/// What an admin allowed a plugin to do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    /// Capabilities granted; calls to others fail with `not-granted`.
    pub capabilities: BTreeSet<Capability>,
    /// When set, outbound destinations are limited to these host names
    /// (exact, or `*.suffix` for any subdomain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<String>>,
}

impl Grants {
    /// Grants exactly the given capabilities with no host narrowing.
    pub fn all_of(capabilities: impl IntoIterator<Item = Capability>) -> Self {
        Self {
            capabilities: capabilities.into_iter().collect(),
            allowed_hosts: None,
        }
    }

    /// The capabilities both declared by the plugin and granted.
    pub fn effective(&self, declared: &BTreeSet<Capability>) -> BTreeSet<Capability> {
        self.capabilities.intersection(declared).copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_capability() {
        for cap in Capability::ALL {
            assert_eq!(cap.as_str().parse::<Capability>().ok(), Some(cap));
        }
        let err = "ftp".parse::<Capability>().unwrap_err();
        assert!(err.to_string().contains("unknown capability `ftp`"));
    }

    #[test]
    fn effective_is_declared_and_granted() {
        let grants = Grants::all_of([Capability::Http, Capability::Dns]);
        let declared: BTreeSet<_> = [Capability::Http, Capability::Tcp].into_iter().collect();
        assert_eq!(
            grants.effective(&declared),
            [Capability::Http].into_iter().collect()
        );
    }
}
