//! TLS for the capabilities: cached rustls client configs (ring, webpki-roots), the client
//! handshake shared by `http` and `tcp`, and the `tls.inspect` capability.

use std::sync::{Arc, LazyLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, DigitallySignedStruct, ProtocolVersion, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::cert::cert_summary;
use super::policy::NetPolicy;
use super::resolve::{connect_guarded, unbracket};
use super::{effective_deadline, ms, within};
use crate::bindings::tls::{InspectRequest, Report};
use crate::bindings::types::{CapError, CertSummary, PhaseTimings};

/// Which ALPN protocols the client offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// No ALPN extension (raw TCP protocols, inspection).
    None,
    /// `http/1.1` only.
    Http1,
}

/// A certificate verifier that accepts any chain but still checks handshake signatures, so
/// the peer must hold the key of the certificate it presents.
#[derive(Debug)]
struct AcceptAnyServerCert {
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// The client configs and verifier, built once.
struct TlsConfigs {
    verify_plain: Arc<ClientConfig>,
    verify_http1: Arc<ClientConfig>,
    accept_plain: Arc<ClientConfig>,
    accept_http1: Arc<ClientConfig>,
    verifier: Arc<WebPkiServerVerifier>,
}

static CONFIGS: LazyLock<Result<TlsConfigs, String>> = LazyLock::new(build_configs);

fn build_configs() -> Result<TlsConfigs, String> {
    let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
    let roots = Arc::new(RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    });
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| format!("building the certificate verifier: {e}"))?;
    let accept = Arc::new(AcceptAnyServerCert {
        algs: provider.signature_verification_algorithms,
    });

    let make = |verifying: bool, alpn: Alpn| -> Result<Arc<ClientConfig>, String> {
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("building the TLS client config: {e}"))?;
        let mut config = if verifying {
            builder
                .with_webpki_verifier(verifier.clone())
                .with_no_client_auth()
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(accept.clone())
                .with_no_client_auth()
        };
        if alpn == Alpn::Http1 {
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
        }
        Ok(Arc::new(config))
    };

    Ok(TlsConfigs {
        verify_plain: make(true, Alpn::None)?,
        verify_http1: make(true, Alpn::Http1)?,
        accept_plain: make(false, Alpn::None)?,
        accept_http1: make(false, Alpn::Http1)?,
        verifier,
    })
}

fn configs() -> Result<&'static TlsConfigs, CapError> {
    CONFIGS
        .as_ref()
        .map_err(|e| CapError::Tls(format!("TLS is unavailable: {e}")))
}

/// The cached client config: verifying against webpki roots, or accepting any certificate.
pub fn client_config(verify: bool, alpn: Alpn) -> Result<Arc<ClientConfig>, CapError> {
    let c = configs()?;
    Ok(match (verify, alpn) {
        (true, Alpn::None) => c.verify_plain.clone(),
        (true, Alpn::Http1) => c.verify_http1.clone(),
        (false, Alpn::None) => c.accept_plain.clone(),
        (false, Alpn::Http1) => c.accept_http1.clone(),
    })
}

/// Parses a server name (DNS name or IP literal, brackets allowed) for SNI and verification.
pub fn server_name(name: &str) -> Result<ServerName<'static>, CapError> {
    let name = unbracket(name.trim());
    let name = name.strip_suffix('.').unwrap_or(name);
    ServerName::try_from(name.to_owned())
        .map_err(|e| CapError::InvalidRequest(format!("invalid TLS server name {name:?}: {e}")))
}

/// A completed client handshake.
pub struct Handshake<S> {
    /// The TLS stream.
    pub stream: TlsStream<S>,
    /// The leaf certificate the server presented.
    pub peer_certificate: Option<CertSummary>,
    /// Time spent in the handshake, in milliseconds.
    pub tls_ms: f64,
}

/// Performs a client handshake over `stream` with SNI `sni`, verifying the chain when `verify`.
pub async fn client_handshake<S>(
    stream: S,
    sni: &str,
    verify: bool,
    alpn: Alpn,
    deadline: Instant,
) -> Result<Handshake<S>, CapError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = server_name(sni)?;
    let connector = TlsConnector::from(client_config(verify, alpn)?);
    let started = Instant::now();
    let stream = within(deadline, || format!("TLS handshake with {sni}"), async {
        connector
            .connect(name, stream)
            .await
            .map_err(|e| handshake_error(sni, &e))
    })
    .await?;
    let tls_ms = ms(started.elapsed());
    let peer_certificate = match stream.get_ref().1.peer_certificates() {
        Some([leaf, ..]) => Some(cert_summary(leaf)?),
        _ => None,
    };
    Ok(Handshake {
        stream,
        peer_certificate,
        tls_ms,
    })
}

/// Maps a tokio-rustls handshake error to `CapError::Tls` with the rustls reason.
fn handshake_error(sni: &str, e: &std::io::Error) -> CapError {
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return CapError::Tls(format!("TLS handshake with {sni} failed: {tls}"));
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => CapError::Tls(
            format!("TLS handshake with {sni} failed: the server closed the connection ({e})"),
        ),
        _ => CapError::Tls(format!("TLS handshake with {sni} failed: {e}")),
    }
}

/// `TLSv1.3`, `TLSv1.2`, … for a negotiated protocol version.
pub fn protocol_name(version: Option<ProtocolVersion>) -> String {
    match version {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(ProtocolVersion::TLSv1_1) => "TLSv1.1".to_owned(),
        Some(ProtocolVersion::TLSv1_0) => "TLSv1.0".to_owned(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_owned(),
    }
}

/// Verifies a chain (leaf first) against the webpki roots for `name`; the error says why not.
pub fn verify_chain(chain: &[CertificateDer<'_>], name: &ServerName<'_>) -> Result<(), String> {
    let verifier = &configs().map_err(|e| format!("{e:?}"))?.verifier;
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err("the server sent no certificate".to_owned());
    };
    verifier
        .verify_server_cert(leaf, intermediates, name, &[], UnixTime::now())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The `tls.inspect` capability: fetches the server's chain even when it is invalid, then
/// verifies it separately against the webpki roots.
pub async fn inspect(
    policy: &NetPolicy,
    req: InspectRequest,
    deadline: Instant,
) -> Result<Report, CapError> {
    let started = Instant::now();
    let deadline = effective_deadline(deadline, req.timeout_ms);
    let sni = req.sni.clone().unwrap_or_else(|| req.host.clone());
    let name = server_name(&sni)?;
    let (tcp, remote, dial) = connect_guarded(policy, &req.host, req.port, deadline).await?;
    let connector = TlsConnector::from(client_config(false, Alpn::None)?);
    let tls_started = Instant::now();
    let stream = within(
        deadline,
        || format!("TLS handshake with {sni} ({remote})"),
        async {
            connector
                .connect(name.clone(), tcp)
                .await
                .map_err(|e| handshake_error(&sni, &e))
        },
    )
    .await?;
    let tls_ms = ms(tls_started.elapsed());
    let conn = stream.get_ref().1;
    let raw_chain: Vec<CertificateDer<'static>> = conn
        .peer_certificates()
        .map(<[_]>::to_vec)
        .unwrap_or_default();
    let chain = raw_chain
        .iter()
        .map(|der| cert_summary(der))
        .collect::<Result<Vec<_>, _>>()?;
    let protocol_version = protocol_name(conn.protocol_version());
    let cipher_suite = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_else(|| "unknown".to_owned());
    let verification = verify_chain(&raw_chain, &name);
    Ok(Report {
        chain,
        protocol_version,
        cipher_suite,
        verified: verification.is_ok(),
        verification_error: verification.err(),
        timings: PhaseTimings {
            dns_ms: dial.dns_ms,
            connect_ms: Some(dial.connect_ms),
            tls_ms: Some(tls_ms),
            first_byte_ms: None,
            total_ms: Some(ms(started.elapsed())),
        },
        remote_addr: remote.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::cert::testutil::*;
    use super::*;
    use std::time::Duration;
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    /// Serves TLS handshakes with `cert` on loopback, then holds each connection briefly.
    async fn tls_server(cert: TestCert) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let acceptor = TlsAcceptor::from(server_config(&cert));
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        drop(stream);
                    }
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn inspect_self_signed() {
        let cert = valid_localhost();
        let fingerprint = cert_summary(&cert.der).expect("summary").sha256_fingerprint;
        let port = tls_server(cert).await;
        let report = inspect(
            &private(),
            InspectRequest {
                host: "localhost".to_owned(),
                port,
                sni: None,
                timeout_ms: 5000,
            },
            soon(),
        )
        .await
        .expect("inspect works on an invalid chain");
        assert!(!report.verified);
        let err = report.verification_error.expect("verification error");
        assert!(err.contains("UnknownIssuer"), "{err}");
        assert_eq!(report.chain.len(), 1);
        assert_eq!(report.chain[0].sha256_fingerprint, fingerprint);
        assert!(report.chain[0].self_signed);
        assert_eq!(report.chain[0].days_remaining, 30);
        assert_eq!(report.protocol_version, "TLSv1.3");
        assert!(
            report.cipher_suite.starts_with("TLS13_"),
            "{}",
            report.cipher_suite
        );
        assert_eq!(report.remote_addr, format!("127.0.0.1:{port}"));
        assert!(report.timings.dns_ms.is_some());
        assert!(report.timings.connect_ms.is_some());
        assert!(report.timings.tls_ms.is_some());
        assert!(report.timings.total_ms.is_some());
    }

    #[tokio::test]
    async fn inspect_expired() {
        let now = time::OffsetDateTime::now_utc();
        let cert = self_signed(
            &["expired.test"],
            now - time::Duration::days(100),
            now - time::Duration::days(3) - time::Duration::hours(2),
        );
        let port = tls_server(cert).await;
        let report = inspect(
            &private(),
            InspectRequest {
                host: "127.0.0.1".to_owned(),
                port,
                sni: Some("expired.test".to_owned()),
                timeout_ms: 5000,
            },
            soon(),
        )
        .await
        .expect("inspect works on an expired chain");
        assert!(!report.verified);
        assert!(report.verification_error.is_some());
        assert_eq!(report.chain[0].days_remaining, -4);
        assert_eq!(report.chain[0].sans, vec!["expired.test".to_owned()]);
        assert_eq!(report.timings.dns_ms, None);
    }

    #[tokio::test]
    async fn inspect_is_guarded() {
        let r = inspect(
            &NetPolicy::default(),
            InspectRequest {
                host: "127.0.0.1".to_owned(),
                port: 443,
                sni: None,
                timeout_ms: 1000,
            },
            soon(),
        )
        .await;
        assert!(matches!(r, Err(CapError::PolicyDenied(_))), "{r:?}");
    }

    #[tokio::test]
    async fn inspect_plain_server_is_tls_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            if let Ok((mut tcp, _)) = listener.accept().await {
                use tokio::io::AsyncWriteExt;
                let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            }
        });
        let r = inspect(
            &private(),
            InspectRequest {
                host: "127.0.0.1".to_owned(),
                port,
                sni: Some("example.test".to_owned()),
                timeout_ms: 2000,
            },
            soon(),
        )
        .await;
        assert!(matches!(r, Err(CapError::Tls(_))), "{r:?}");
    }

    #[test]
    fn verify_rejects_empty_chain() {
        let name = server_name("example.com").expect("name");
        assert!(verify_chain(&[], &name).is_err());
        assert!(server_name("[::1]").is_ok());
        assert!(matches!(
            server_name("bad name"),
            Err(CapError::InvalidRequest(_))
        ));
    }
}
