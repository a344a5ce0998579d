//! X.509 certificate summaries (`cert-summary`) built with x509-parser.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::bindings::types::{CapError, CertSummary};

const SECS_PER_DAY: i64 = 86_400;

/// Summarizes one DER certificate; days remaining are counted from the current time.
pub fn cert_summary(der: &[u8]) -> Result<CertSummary, CapError> {
    cert_summary_at(der, unix_now())
}

/// Summarizes one DER certificate with days remaining counted from `now` (Unix seconds).
pub fn cert_summary_at(der: &[u8], now: i64) -> Result<CertSummary, CapError> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| CapError::Tls(format!("could not parse the peer certificate: {e}")))?;

    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    let days = (not_after - now).div_euclid(SECS_PER_DAY);
    let days_remaining = i32::try_from(days).unwrap_or(if days < 0 { i32::MIN } else { i32::MAX });

    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(dns) => sans.push((*dns).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        sans.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }

    Ok(CertSummary {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        not_before,
        not_after,
        days_remaining,
        serial: cert.tbs_certificate.serial.to_str_radix(16),
        sha256_fingerprint: hex::encode(Sha256::digest(der)),
        self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
    })
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => {
            let b: [u8; 4] = bytes.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        16 => {
            let b: [u8; 16] = bytes.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Test helpers shared by the net modules' tests: rcgen certificates and rustls servers.
#[cfg(test)]
pub(crate) mod testutil {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::time::Instant;

    use crate::net::NetPolicy;

    /// A policy that allows loopback targets, for tests against local servers.
    pub fn private() -> NetPolicy {
        NetPolicy {
            allow_private: true,
            ..NetPolicy::default()
        }
    }

    /// A deadline comfortably in the future.
    pub fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    /// A self-signed certificate and its key.
    pub struct TestCert {
        pub der: CertificateDer<'static>,
        pub key: PrivateKeyDer<'static>,
    }

    /// A self-signed certificate for `sans`, valid from `not_before` to `not_after`.
    pub fn self_signed(
        sans: &[&str],
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> TestCert {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .expect("cert params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "pharos test");
        params.distinguished_name = dn;
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed");
        TestCert {
            der: cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }

    /// A certificate for `localhost` and `127.0.0.1` valid for 30 more days.
    pub fn valid_localhost() -> TestCert {
        let now = time::OffsetDateTime::now_utc();
        self_signed(
            &["localhost", "127.0.0.1"],
            now - time::Duration::days(1),
            now + time::Duration::days(30) + time::Duration::hours(1),
        )
    }

    /// A rustls server config presenting `cert`.
    pub fn server_config(cert: &TestCert) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der.clone()], cert.key.clone_key())
            .expect("server cert");
        Arc::new(config)
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn summary_fields() {
        let cert = valid_localhost();
        let s = cert_summary(&cert.der).expect("summary");
        assert_eq!(s.subject, "CN=pharos test");
        assert_eq!(s.issuer, "CN=pharos test");
        assert!(s.self_signed);
        assert_eq!(s.sans, vec!["localhost".to_owned(), "127.0.0.1".to_owned()]);
        assert_eq!(s.days_remaining, 30);
        assert!(s.not_after > s.not_before);
        assert_eq!(s.sha256_fingerprint.len(), 64);
        assert_eq!(s.sha256_fingerprint, hex::encode(Sha256::digest(&cert.der)));
        assert!(!s.serial.is_empty());
        assert!(
            s.serial
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn expired_is_negative() {
        let now = time::OffsetDateTime::now_utc();
        let cert = self_signed(
            &["expired.test"],
            now - time::Duration::days(60),
            now - time::Duration::days(10) - time::Duration::hours(1),
        );
        let s = cert_summary(&cert.der).expect("summary");
        assert_eq!(s.days_remaining, -11);
    }

    #[test]
    fn days_are_floored() {
        let cert = valid_localhost();
        let s = cert_summary(&cert.der).expect("summary");
        assert_eq!(
            cert_summary_at(&cert.der, s.not_after)
                .expect("s")
                .days_remaining,
            0
        );
        assert_eq!(
            cert_summary_at(&cert.der, s.not_after + 1)
                .expect("s")
                .days_remaining,
            -1
        );
        assert_eq!(
            cert_summary_at(&cert.der, s.not_after - SECS_PER_DAY)
                .expect("s")
                .days_remaining,
            1
        );
    }

    #[test]
    fn garbage_is_tls_error() {
        assert!(matches!(cert_summary(b"not a cert"), Err(CapError::Tls(_))));
    }
}
