//! Name resolution and dialing behind the policy: grants, the SSRF guard on every resolved
//! address, and deadlines.
//!
//! The address that passed the guard is the address that is dialed: nothing is resolved twice,
//! so a DNS answer that changes between check and connect (DNS rebinding) cannot bypass it.

use std::net::{IpAddr, SocketAddr};

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::policy::NetPolicy;
use super::{ms, within};
use crate::bindings::types::CapError;

/// The addresses a host resolved to that passed the policy, in resolver order.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Allowed socket addresses (never empty).
    pub addrs: Vec<SocketAddr>,
    /// Time spent resolving; `None` for an IP literal.
    pub dns_ms: Option<f64>,
}

/// Timings of a guarded dial.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DialTimings {
    /// Time spent resolving; `None` for an IP literal.
    pub dns_ms: Option<f64>,
    /// Time from the first connection attempt until one succeeded.
    pub connect_ms: f64,
}

/// Strips the brackets of an IPv6 literal (`[::1]` → `::1`).
pub fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Rejects host strings that are not plausible DNS names or IP literals.
pub fn validate_host(host: &str) -> Result<(), CapError> {
    if host.is_empty() {
        return Err(CapError::InvalidRequest("host is empty".to_owned()));
    }
    if host.len() > 253 {
        return Err(CapError::InvalidRequest(format!(
            "host name is {} bytes long; at most 253 are allowed",
            host.len()
        )));
    }
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(CapError::InvalidRequest(format!(
            "host {host:?} contains {c:?}; use an ASCII (punycode) host name or an IP address"
        )));
    }
    Ok(())
}

/// Resolves `host` (a name or IP literal) for `port` with the system resolver (honouring
/// `/etc/hosts`) and keeps the addresses the policy allows.
///
/// Fails with `NotGranted` outside the grants, `PolicyDenied` when every address is refused
/// by the SSRF guard, `Dns` when resolution fails and `Timeout` past `deadline`.
pub async fn resolve_host(
    policy: &NetPolicy,
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<Resolved, CapError> {
    let host = unbracket(host);
    validate_host(host)?;
    policy.check_host(host)?;

    if let Ok(ip) = host.parse::<IpAddr>() {
        policy.check_ip(ip)?;
        return Ok(Resolved {
            addrs: vec![SocketAddr::new(ip, port)],
            dns_ms: None,
        });
    }

    let started = Instant::now();
    let found = within(deadline, || format!("resolving {host}"), async {
        tokio::net::lookup_host((host, port))
            .await
            .map(|addrs| addrs.collect::<Vec<_>>())
            .map_err(|e| CapError::Dns(format!("could not resolve {host}: {e}")))
    })
    .await?;
    let dns_ms = Some(ms(started.elapsed()));

    let mut addrs: Vec<SocketAddr> = Vec::with_capacity(found.len());
    let mut denied: Vec<String> = Vec::new();
    for addr in found {
        if addrs.contains(&addr) {
            continue;
        }
        match policy.check_ip(addr.ip()) {
            Ok(()) => addrs.push(addr),
            Err(CapError::PolicyDenied(reason)) => {
                if !denied.contains(&reason) {
                    denied.push(reason);
                }
            }
            Err(other) => return Err(other),
        }
    }
    if addrs.is_empty() {
        if denied.is_empty() {
            return Err(CapError::Dns(format!("{host} resolved to no addresses")));
        }
        return Err(CapError::PolicyDenied(format!(
            "{host} resolves only to refused addresses: {}",
            denied.join("; ")
        )));
    }
    Ok(Resolved { addrs, dns_ms })
}

/// Resolves `host`, then dials the allowed addresses in order until one connects (TCP_NODELAY
/// set). Each attempt gets an even share of the time left; the whole dial ends at `deadline`.
pub async fn connect_guarded(
    policy: &NetPolicy,
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<(TcpStream, SocketAddr, DialTimings), CapError> {
    let resolved = resolve_host(policy, host, port, deadline).await?;
    let started = Instant::now();
    let total = resolved.addrs.len();
    let mut failures: Vec<String> = Vec::new();
    let mut timed_out = 0usize;
    for (i, addr) in resolved.addrs.iter().enumerate() {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let left = u32::try_from(total - i).unwrap_or(u32::MAX).max(1);
        let attempt_deadline = now + (deadline - now) / left;
        match tokio::time::timeout_at(attempt_deadline, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    return Err(CapError::Io(format!("setting TCP_NODELAY on {addr}: {e}")));
                }
                let timings = DialTimings {
                    dns_ms: resolved.dns_ms,
                    connect_ms: ms(started.elapsed()),
                };
                return Ok((stream, *addr, timings));
            }
            Ok(Err(e)) => failures.push(format!("{addr}: {e}")),
            Err(_) => {
                timed_out += 1;
                failures.push(format!("{addr}: timed out"));
            }
        }
    }
    let host = unbracket(host);
    if failures.is_empty() || timed_out == failures.len() {
        return Err(CapError::Timeout(format!(
            "connecting to {host} port {port} timed out{}",
            if failures.is_empty() {
                String::new()
            } else {
                format!(" ({})", failures.join("; "))
            }
        )));
    }
    Err(CapError::Connect(format!(
        "could not connect to {host} port {port}: {}",
        failures.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::super::cert::testutil::{private, soon};
    use super::*;

    #[tokio::test]
    async fn literal_has_no_dns_time() {
        let r = resolve_host(&private(), "127.0.0.1", 80, soon())
            .await
            .expect("literal resolves");
        assert_eq!(r.addrs, vec!["127.0.0.1:80".parse().expect("addr")]);
        assert_eq!(r.dns_ms, None);
    }

    #[tokio::test]
    async fn localhost_uses_hosts_file_and_is_guarded() {
        let r = resolve_host(&private(), "localhost", 8080, soon())
            .await
            .expect("localhost resolves");
        assert!(r.addrs.iter().all(|a| a.ip().is_loopback()), "{r:?}");
        assert!(r.dns_ms.is_some());
        match resolve_host(&NetPolicy::default(), "localhost", 8080, soon()).await {
            Err(CapError::PolicyDenied(msg)) => {
                assert!(
                    msg.contains("localhost resolves only to refused addresses"),
                    "{msg}"
                );
                assert!(msg.contains("loopback"), "{msg}");
            }
            other => panic!("expected PolicyDenied, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn literal_denied_without_traffic() {
        match resolve_host(&NetPolicy::default(), "169.254.169.254", 80, soon()).await {
            Err(CapError::PolicyDenied(msg)) => assert!(msg.contains("cloud metadata"), "{msg}"),
            other => panic!("expected PolicyDenied, got {other:?}"),
        }
        match resolve_host(&NetPolicy::default(), "[::1]", 80, soon()).await {
            Err(CapError::PolicyDenied(msg)) => assert!(msg.contains("loopback"), "{msg}"),
            other => panic!("expected PolicyDenied, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn bad_hosts_and_grants() {
        for bad in ["", "a b", "exa/mple.com", "user@host"] {
            assert!(
                matches!(
                    resolve_host(&private(), bad, 80, soon()).await,
                    Err(CapError::InvalidRequest(_))
                ),
                "{bad:?}"
            );
        }
        let narrowed = NetPolicy {
            allow_private: true,
            allowed_hosts: Some(vec!["*.example.com".to_owned()]),
            ..NetPolicy::default()
        };
        assert!(matches!(
            resolve_host(&narrowed, "localhost", 80, soon()).await,
            Err(CapError::NotGranted(_))
        ));
    }

    #[tokio::test]
    async fn connect_dials_checked_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (stream, remote, timings) = connect_guarded(&private(), "localhost", port, soon())
            .await
            .expect("connects");
        assert_eq!(remote, SocketAddr::from(([127, 0, 0, 1], port)));
        assert!(stream.nodelay().expect("nodelay"));
        assert!(timings.dns_ms.is_some());
        assert!(timings.connect_ms >= 0.0);
    }

    #[tokio::test]
    async fn connect_refused_is_connect_error() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        match connect_guarded(&private(), "127.0.0.1", port, soon()).await {
            Err(CapError::Connect(msg)) => assert!(msg.contains(&port.to_string()), "{msg}"),
            other => panic!("expected Connect error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn past_deadline_is_timeout() {
        let past = Instant::now();
        assert!(matches!(
            connect_guarded(&private(), "127.0.0.1", 9, past).await,
            Err(CapError::Timeout(_))
        ));
    }
}
