//! The network policy applied to every capability call: destination grants and the SSRF guard.
//!
//! The SSRF guard is an address check, applied to the address that is actually dialed (after
//! resolution), so a name that resolves to a private address — or is rebound to one between
//! checks — cannot reach it. IPv6 forms that embed an IPv4 address (IPv4-mapped, IPv4-compatible,
//! IPv4-translated, 6to4 and the well-known NAT64 prefix) are unwrapped and judged by the IPv4
//! rules; every other IPv6 address outside global unicast (`2000::/3`) is refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use crate::bindings::types::CapError;

/// Default cap on HTTP response bodies kept by the host: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u32 = 1024 * 1024;
/// Default cap on one TCP read (`receive`, `read-line`): 64 KiB.
pub const DEFAULT_MAX_READ_BYTES: u32 = 64 * 1024;

/// Destination rules and size caps for the network capabilities of one plugin invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPolicy {
    /// Allow private, loopback, link-local and reserved destinations (turns the SSRF guard off).
    pub allow_private: bool,
    /// Grant narrowing: exact host names or `*.suffix` patterns (`*` alone matches any host);
    /// `None` allows any host.
    pub allowed_hosts: Option<Vec<String>>,
    /// Host cap on HTTP response bodies, whatever the plugin asks for.
    pub max_body_bytes: u32,
    /// Host cap on a single TCP read, whatever the plugin asks for.
    pub max_read_bytes: u32,
}

impl Default for NetPolicy {
    fn default() -> Self {
        Self {
            allow_private: false,
            allowed_hosts: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_read_bytes: DEFAULT_MAX_READ_BYTES,
        }
    }
}

impl NetPolicy {
    /// Fails with `NotGranted` when `host` (a name or IP literal) is outside `allowed_hosts`.
    pub fn check_host(&self, host: &str) -> Result<(), CapError> {
        let Some(allowed) = &self.allowed_hosts else {
            return Ok(());
        };
        let host = normalize_host(host);
        if allowed.iter().any(|pattern| host_matches(pattern, &host)) {
            Ok(())
        } else {
            Err(CapError::NotGranted(format!(
                "host {host} is not among the granted destinations ({})",
                if allowed.is_empty() {
                    "none".to_owned()
                } else {
                    allowed.join(", ")
                }
            )))
        }
    }

    /// Fails with `PolicyDenied` when `ip` is a private, loopback, link-local, multicast or
    /// reserved address and private targets are not allowed (the SSRF guard).
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), CapError> {
        if self.allow_private {
            return Ok(());
        }
        match deny_reason(ip) {
            None => Ok(()),
            Some(reason) => Err(CapError::PolicyDenied(format!(
                "{ip} {reason}; private targets are not allowed"
            ))),
        }
    }
}

/// Lowercases, strips IPv6 brackets and one trailing dot.
fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host = host.strip_suffix('.').unwrap_or(host);
    host.to_ascii_lowercase()
}

/// Whether one grant pattern matches a normalized host.
fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = normalize_host(pattern);
    if pattern == "*" {
        return true;
    }
    if let Some(suffix) = pattern.strip_prefix("*.") {
        // `*.example.com` matches any subdomain, not the apex itself.
        return host.len() > suffix.len() + 1
            && host.ends_with(suffix)
            && host.as_bytes()[host.len() - suffix.len() - 1] == b'.';
    }
    if let (Ok(a), Ok(b)) = (pattern.parse::<IpAddr>(), host.parse::<IpAddr>()) {
        return a == b;
    }
    !pattern.is_empty() && pattern == host
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(s: [u16; 8], len: u8) -> Ipv6Net {
    Ipv6Net::new_assert(
        Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
        len,
    )
}

/// IPv4 ranges refused by the SSRF guard, most specific first, with the reason shown.
static V4_DENIED: &[(Ipv4Net, &str)] = &[
    (v4(255, 255, 255, 255, 32), "the broadcast address"),
    (v4(169, 254, 169, 254, 32), "link-local (cloud metadata)"),
    (
        v4(0, 0, 0, 0, 8),
        "unspecified (\"this network\", 0.0.0.0/8)",
    ),
    (v4(10, 0, 0, 0, 8), "private (RFC 1918, 10.0.0.0/8)"),
    (
        v4(100, 64, 0, 0, 10),
        "shared address space (CGNAT, 100.64.0.0/10)",
    ),
    (v4(127, 0, 0, 0, 8), "loopback (127.0.0.0/8)"),
    (v4(169, 254, 0, 0, 16), "link-local (169.254.0.0/16)"),
    (v4(172, 16, 0, 0, 12), "private (RFC 1918, 172.16.0.0/12)"),
    (
        v4(192, 0, 0, 0, 24),
        "reserved (IETF protocol assignments, 192.0.0.0/24)",
    ),
    (
        v4(192, 0, 2, 0, 24),
        "reserved (documentation TEST-NET-1, 192.0.2.0/24)",
    ),
    (
        v4(192, 88, 99, 0, 24),
        "reserved (6to4 relay anycast, 192.88.99.0/24)",
    ),
    (v4(192, 168, 0, 0, 16), "private (RFC 1918, 192.168.0.0/16)"),
    (
        v4(198, 18, 0, 0, 15),
        "reserved (benchmarking, 198.18.0.0/15)",
    ),
    (
        v4(198, 51, 100, 0, 24),
        "reserved (documentation TEST-NET-2, 198.51.100.0/24)",
    ),
    (
        v4(203, 0, 113, 0, 24),
        "reserved (documentation TEST-NET-3, 203.0.113.0/24)",
    ),
    (v4(224, 0, 0, 0, 4), "multicast (224.0.0.0/4)"),
    (v4(240, 0, 0, 0, 4), "reserved (240.0.0.0/4)"),
];

/// IPv6 ranges refused by the SSRF guard (checked after embedded IPv4 is unwrapped).
static V6_DENIED: &[(Ipv6Net, &str)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified (::)"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback (::1)"),
    (
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        "a local-use NAT64 address (64:ff9b:1::/48)",
    ),
    (
        v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
        "reserved (discard-only, 100::/64)",
    ),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "reserved (IETF special-purpose incl. Teredo, 2001::/23)",
    ),
    (
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        "reserved (documentation, 2001:db8::/32)",
    ),
    (
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        "reserved (documentation, 3fff::/20)",
    ),
    (
        v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),
        "reserved (SRv6 SIDs, 5f00::/16)",
    ),
    (
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        "unique local (fc00::/7)",
    ),
    (
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        "link-local (fe80::/10)",
    ),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "site-local (fec0::/10)",
    ),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast (ff00::/8)"),
];

/// Global unicast: every IPv6 destination outside it is refused.
const V6_GLOBAL_UNICAST: Ipv6Net = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

/// Why the guard refuses `ip` (`"is loopback (127.0.0.0/8)"`), or `None` for a public address.
pub fn deny_reason(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(ip) => v4_deny_reason(ip).map(|reason| format!("is {reason}")),
        IpAddr::V6(ip) => v6_deny_reason(ip),
    }
}

fn v4_deny_reason(ip: Ipv4Addr) -> Option<&'static str> {
    V4_DENIED
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, reason)| *reason)
}

fn v6_deny_reason(ip: Ipv6Addr) -> Option<String> {
    // `::` and `::1` fall inside the IPv4-compatible range; judge them as IPv6 first.
    if ip.is_unspecified() {
        return Some("is unspecified (::)".to_owned());
    }
    if ip.is_loopback() {
        return Some("is loopback (::1)".to_owned());
    }
    if let Some((embedded, form)) = embedded_v4(ip) {
        return v4_deny_reason(embedded)
            .map(|reason| format!("embeds {embedded} ({form}), which is {reason}"));
    }
    if let Some((_, reason)) = V6_DENIED.iter().find(|(net, _)| net.contains(&ip)) {
        return Some(format!("is {reason}"));
    }
    if !V6_GLOBAL_UNICAST.contains(&ip) {
        return Some("is reserved (outside IPv6 global unicast 2000::/3)".to_owned());
    }
    None
}

/// The IPv4 address embedded in an IPv6 transition form, with the form's name.
fn embedded_v4(ip: Ipv6Addr) -> Option<(Ipv4Addr, &'static str)> {
    let s = ip.segments();
    let o = ip.octets();
    let low32 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match s {
        // ::ffff:a.b.c.d
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some((low32, "IPv4-mapped")),
        // ::ffff:0:a.b.c.d (SIIT, RFC 2765)
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some((low32, "IPv4-translated")),
        // ::a.b.c.d (deprecated IPv4-compatible)
        [0, 0, 0, 0, 0, 0, _, _] => Some((low32, "IPv4-compatible")),
        // 64:ff9b::a.b.c.d (well-known NAT64 prefix)
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some((low32, "NAT64")),
        // 2002:aabb:ccdd::/48 (6to4: IPv4 in bits 16..48)
        [0x2002, _, _, _, _, _, _, _] => Some((Ipv4Addr::new(o[2], o[3], o[4], o[5]), "6to4")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(ip: &str) -> String {
        let ip: IpAddr = ip.parse().expect("test IP parses");
        match NetPolicy::default().check_ip(ip) {
            Err(CapError::PolicyDenied(msg)) => msg,
            other => panic!("{ip} should be denied, got {other:?}"),
        }
    }

    fn allowed(ip: &str) {
        let ip: IpAddr = ip.parse().expect("test IP parses");
        if let Err(e) = NetPolicy::default().check_ip(ip) {
            panic!("{ip} should be allowed, got {e:?}");
        }
    }

    #[test]
    fn v4_ranges_denied_with_reason() {
        let cases = [
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("10.0.0.1", "private"),
            ("10.255.255.255", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.0.1", "private"),
            ("192.168.255.255", "private"),
            ("169.254.0.1", "link-local"),
            ("169.254.169.254", "link-local (cloud metadata)"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.255", "CGNAT"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("192.0.0.8", "IETF protocol assignments"),
            ("192.0.2.1", "TEST-NET-1"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("198.51.100.7", "TEST-NET-2"),
            ("203.0.113.9", "TEST-NET-3"),
            ("240.0.0.1", "reserved"),
            ("250.1.2.3", "reserved"),
            ("192.88.99.1", "6to4 relay"),
        ];
        for (ip, reason) in cases {
            let msg = denied(ip);
            assert!(msg.starts_with(ip), "{msg}");
            assert!(msg.contains(reason), "{ip}: {msg}");
            assert!(msg.ends_with("private targets are not allowed"), "{msg}");
        }
        assert_eq!(
            denied("169.254.169.254"),
            "169.254.169.254 is link-local (cloud metadata); private targets are not allowed"
        );
        assert_eq!(
            denied("::ffff:127.0.0.1"),
            "::ffff:127.0.0.1 embeds 127.0.0.1 (IPv4-mapped), which is loopback (127.0.0.0/8); \
             private targets are not allowed"
        );
    }

    #[test]
    fn v4_public_and_boundaries_allowed() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.0.3.1",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.1",
            "198.51.101.1",
            "203.0.112.1",
            "203.0.114.1",
            "223.255.255.255",
            "1.0.0.0",
        ] {
            allowed(ip);
        }
    }

    #[test]
    fn v6_ranges_denied() {
        let cases = [
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fe80::1", "link-local"),
            ("febf:ffff::1", "link-local"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("ff02::1", "multicast"),
            ("ff05::2", "multicast"),
            ("2001:db8::1", "documentation"),
            ("2001:db8:ffff::1", "documentation"),
            ("100::1", "discard-only"),
            ("2001::1", "IETF special"),
            ("2001:1ff:ffff::1", "IETF special"),
            ("3fff::1", "documentation"),
            ("fec0::1", "site-local"),
            ("64:ff9b:1::1", "local-use NAT64"),
            ("64:ff9b:1:ffff::808:808", "local-use NAT64"),
            ("4000::1", "outside IPv6 global unicast"),
            ("1::1", "outside IPv6 global unicast"),
        ];
        for (ip, reason) in cases {
            let msg = denied(ip);
            assert!(msg.contains(reason), "{ip}: {msg}");
            assert!(msg.starts_with(ip), "{msg}");
        }
    }

    #[test]
    fn v6_public_allowed() {
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "2001:200::1",
            "2001:4860:4860::8888",
            "2001:dba::1",
            "2400:cb00::1",
        ] {
            allowed(ip);
        }
    }

    #[test]
    fn embedded_v4_unwrapped() {
        let cases = [
            ("::ffff:127.0.0.1", "127.0.0.1", "IPv4-mapped", "loopback"),
            (
                "::ffff:169.254.169.254",
                "169.254.169.254",
                "IPv4-mapped",
                "cloud metadata",
            ),
            ("::ffff:10.1.2.3", "10.1.2.3", "IPv4-mapped", "private"),
            (
                "::ffff:0:192.168.1.1",
                "192.168.1.1",
                "IPv4-translated",
                "private",
            ),
            ("::127.0.0.1", "127.0.0.1", "IPv4-compatible", "loopback"),
            ("::10.0.0.1", "10.0.0.1", "IPv4-compatible", "private"),
            ("::0.0.0.2", "0.0.0.2", "IPv4-compatible", "unspecified"),
            ("64:ff9b::127.0.0.1", "127.0.0.1", "NAT64", "loopback"),
            (
                "64:ff9b::a9fe:a9fe",
                "169.254.169.254",
                "NAT64",
                "cloud metadata",
            ),
            ("2002:7f00:1::1", "127.0.0.1", "6to4", "loopback"),
            ("2002:c0a8:101::", "192.168.1.1", "6to4", "private"),
            (
                "2002:a9fe:a9fe:1234::1",
                "169.254.169.254",
                "6to4",
                "cloud metadata",
            ),
        ];
        for (ip, v4, form, reason) in cases {
            let msg = denied(ip);
            assert!(
                msg.contains(&format!("embeds {v4} ({form})")),
                "{ip}: {msg}"
            );
            assert!(msg.contains(reason), "{ip}: {msg}");
        }
        for ip in [
            "::ffff:8.8.8.8",
            "::ffff:0:1.1.1.1",
            "::8.8.8.8",
            "64:ff9b::808:808",
            "64:ff9b::1.1.1.1",
            "2002:808:808::1",
        ] {
            allowed(ip);
        }
    }

    #[test]
    fn allow_private_turns_the_guard_off() {
        let policy = NetPolicy {
            allow_private: true,
            ..NetPolicy::default()
        };
        for ip in [
            "127.0.0.1",
            "169.254.169.254",
            "::1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().expect("test IP parses");
            assert!(policy.check_ip(ip).is_ok(), "{ip}");
        }
    }

    #[test]
    fn host_patterns() {
        let policy = NetPolicy {
            allowed_hosts: Some(vec![
                "hooks.slack.com".to_owned(),
                "*.example.org".to_owned(),
                "Api.Example.NET.".to_owned(),
                "192.0.2.10".to_owned(),
                "[2001:db8::1]".to_owned(),
            ]),
            ..NetPolicy::default()
        };
        for ok in [
            "hooks.slack.com",
            "HOOKS.SLACK.COM",
            "hooks.slack.com.",
            "a.example.org",
            "deep.sub.example.org",
            "api.example.net",
            "192.0.2.10",
            "2001:db8::1",
            "[2001:db8:0::1]",
        ] {
            assert!(policy.check_host(ok).is_ok(), "{ok} should be granted");
        }
        for bad in [
            "slack.com",
            "evil-hooks.slack.com",
            "hooks.slack.com.evil.net",
            "example.org",
            "badexample.org",
            "example.org.evil.net",
            "other.example.net",
            "192.0.2.11",
            "",
        ] {
            match policy.check_host(bad) {
                Err(CapError::NotGranted(msg)) => assert!(msg.contains("not among"), "{msg}"),
                other => panic!("{bad} should not be granted: {other:?}"),
            }
        }
    }

    #[test]
    fn host_grants_none_and_star() {
        assert!(NetPolicy::default().check_host("anything.example").is_ok());
        let star = NetPolicy {
            allowed_hosts: Some(vec!["*".to_owned()]),
            ..NetPolicy::default()
        };
        assert!(star.check_host("anything.example").is_ok());
        let empty = NetPolicy {
            allowed_hosts: Some(vec![]),
            ..NetPolicy::default()
        };
        assert!(matches!(
            empty.check_host("anything.example"),
            Err(CapError::NotGranted(_))
        ));
    }

    #[test]
    fn defaults() {
        let p = NetPolicy::default();
        assert!(!p.allow_private);
        assert!(p.allowed_hosts.is_none());
        assert_eq!(p.max_body_bytes, 1024 * 1024);
        assert_eq!(p.max_read_bytes, 64 * 1024);
    }
}
