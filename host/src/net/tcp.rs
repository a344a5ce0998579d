//! The `tcp` capability: guarded connections (plain or TLS, with STARTTLS upgrade) that a
//! plugin talks over with bounded reads and per-call timeouts capped by the invocation deadline.

use std::io;
use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use super::policy::NetPolicy;
use super::resolve::{connect_guarded, unbracket};
use super::tls::{Alpn, client_handshake};
use super::{effective_deadline, within};
use crate::bindings::tcp::{ConnectInfo, ConnectOptions};
use crate::bindings::types::{CapError, CertSummary, PhaseTimings};

/// The byte stream under a connection.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Left behind by a failed TLS upgrade; every later call fails.
    Closed,
}

/// An open plugin connection (plain or TLS) with its read buffer and invocation deadline.
pub struct Connection {
    stream: Stream,
    buf: BytesMut,
    remote: SocketAddr,
    timings: PhaseTimings,
    peer_certificate: Option<CertSummary>,
    deadline: Instant,
    max_read_bytes: u32,
    /// The host the plugin asked for, the default server name for a later upgrade.
    host: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("remote", &self.remote)
            .field("tls", &matches!(self.stream, Stream::Tls(_)))
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

/// Opens a guarded connection to `options.host:options.port`, with a TLS handshake when asked.
pub async fn connect(
    policy: &NetPolicy,
    options: ConnectOptions,
    deadline: Instant,
) -> Result<Connection, CapError> {
    let started = Instant::now();
    let op_deadline = effective_deadline(deadline, options.timeout_ms);
    let (tcp, remote, dial) =
        connect_guarded(policy, &options.host, options.port, op_deadline).await?;
    let mut timings = PhaseTimings {
        dns_ms: dial.dns_ms,
        connect_ms: Some(dial.connect_ms),
        tls_ms: None,
        first_byte_ms: None,
        total_ms: None,
    };
    let host = unbracket(&options.host).to_owned();
    let (stream, peer_certificate) = if options.tls {
        let sni = options.sni.as_deref().unwrap_or(&host);
        let hs = client_handshake(tcp, sni, options.verify_tls, Alpn::None, op_deadline).await?;
        timings.tls_ms = Some(hs.tls_ms);
        (Stream::Tls(Box::new(hs.stream)), hs.peer_certificate)
    } else {
        (Stream::Plain(tcp), None)
    };
    timings.total_ms = Some(super::ms(started.elapsed()));
    Ok(Connection {
        stream,
        buf: BytesMut::new(),
        remote,
        timings,
        peer_certificate,
        deadline,
        max_read_bytes: policy.max_read_bytes.max(1),
        host,
    })
}

impl Connection {
    /// Address, timings and peer certificate (the upgraded one after STARTTLS).
    pub fn info(&self) -> ConnectInfo {
        ConnectInfo {
            remote_addr: self.remote.to_string(),
            timings: self.timings,
            peer_certificate: self.peer_certificate.clone(),
        }
    }

    /// The address that was dialed.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    /// Whether the connection currently speaks TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// Writes all of `data` within `timeout_ms` (0 = the invocation deadline only).
    pub async fn send(&mut self, data: impl AsRef<[u8]>, timeout_ms: u32) -> Result<(), CapError> {
        let data = data.as_ref();
        let deadline = effective_deadline(self.deadline, timeout_ms);
        let remote = self.remote;
        let stream = &mut self.stream;
        within(
            deadline,
            || format!("sending {} bytes to {remote}", data.len()),
            async {
                let result = match stream {
                    Stream::Plain(s) => write_all_flush(s, data).await,
                    Stream::Tls(s) => write_all_flush(s.as_mut(), data).await,
                    Stream::Closed => return Err(closed()),
                };
                result.map_err(|e| io_error(&format!("sending to {remote}"), &e))
            },
        )
        .await
    }

    /// Returns what arrives next, at most `max_bytes` (capped by the policy); empty at EOF.
    pub async fn receive(&mut self, max_bytes: u32, timeout_ms: u32) -> Result<Vec<u8>, CapError> {
        let max = self.cap(max_bytes)?;
        if self.buf.is_empty() {
            let deadline = effective_deadline(self.deadline, timeout_ms);
            let remote = self.remote;
            within(
                deadline,
                || format!("receiving from {remote}"),
                self.fill(max),
            )
            .await?;
        }
        let n = self.buf.len().min(max);
        Ok(self.buf.split_to(n).to_vec())
    }

    /// Reads one line without its `\n` / `\r\n`; `None` at EOF. A final unterminated line is
    /// returned as is. Fails with `TooLarge` when no line ending comes within `max_bytes`.
    pub async fn read_line(
        &mut self,
        max_bytes: u32,
        timeout_ms: u32,
    ) -> Result<Option<String>, CapError> {
        let max = self.cap(max_bytes)?;
        let deadline = effective_deadline(self.deadline, timeout_ms);
        let remote = self.remote;
        let mut scanned = 0usize;
        loop {
            if let Some(pos) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + pos;
                let content_len = if end > 0 && self.buf[end - 1] == b'\r' {
                    end - 1
                } else {
                    end
                };
                if content_len > max {
                    return Err(too_long(max));
                }
                let line = self.buf.split_to(end + 1);
                return Ok(Some(
                    String::from_utf8_lossy(&line[..content_len]).into_owned(),
                ));
            }
            scanned = self.buf.len();
            // Allow one byte more than `max` for a `\r` whose `\n` has not arrived yet.
            if self.buf.len() > max.saturating_add(1) {
                return Err(too_long(max));
            }
            let want = max + 2 - self.buf.len();
            let n = within(
                deadline,
                || format!("reading a line from {remote}"),
                self.fill(want),
            )
            .await?;
            if n == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let rest = self.buf.split();
                let content = rest.strip_suffix(b"\r").unwrap_or(&rest);
                if content.len() > max {
                    return Err(too_long(max));
                }
                return Ok(Some(String::from_utf8_lossy(content).into_owned()));
            }
        }
    }

    /// Performs a TLS handshake on the open connection (STARTTLS) and returns the peer
    /// certificate. `sni` defaults to the host that was connected to.
    pub async fn upgrade_tls(
        &mut self,
        sni: Option<String>,
        verify_tls: bool,
        timeout_ms: u32,
    ) -> Result<Option<CertSummary>, CapError> {
        if !self.buf.is_empty() {
            // Bytes read before the handshake would otherwise be trusted as if protected.
            return Err(CapError::Protocol(format!(
                "{} bytes of plaintext arrived before the TLS upgrade; refusing to upgrade",
                self.buf.len()
            )));
        }
        let tcp = match std::mem::replace(&mut self.stream, Stream::Closed) {
            Stream::Plain(tcp) => tcp,
            other @ Stream::Tls(_) => {
                self.stream = other;
                return Err(CapError::InvalidRequest(
                    "the connection already uses TLS".to_owned(),
                ));
            }
            Stream::Closed => return Err(closed()),
        };
        let deadline = effective_deadline(self.deadline, timeout_ms);
        let sni = sni.unwrap_or_else(|| self.host.clone());
        let hs = client_handshake(tcp, &sni, verify_tls, Alpn::None, deadline).await?;
        self.timings.tls_ms = Some(hs.tls_ms);
        self.peer_certificate = hs.peer_certificate.clone();
        self.stream = Stream::Tls(Box::new(hs.stream));
        Ok(hs.peer_certificate)
    }

    /// Validates `max_bytes` and caps it by the policy.
    fn cap(&self, max_bytes: u32) -> Result<usize, CapError> {
        if max_bytes == 0 {
            return Err(CapError::InvalidRequest(
                "max-bytes must be at least 1".to_owned(),
            ));
        }
        Ok(max_bytes.min(self.max_read_bytes) as usize)
    }

    /// Reads once (at most `want` bytes) into the buffer; returns the count, 0 at EOF.
    async fn fill(&mut self, want: usize) -> Result<usize, CapError> {
        let remote = self.remote;
        let mut chunk = vec![0u8; want.clamp(1, 64 * 1024)];
        let result = match &mut self.stream {
            Stream::Plain(s) => s.read(&mut chunk).await,
            Stream::Tls(s) => s.read(&mut chunk).await,
            Stream::Closed => return Err(closed()),
        };
        let n = match result {
            Ok(n) => n,
            // A TLS peer that closes without close_notify: treat as end of stream.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(io_error(&format!("reading from {remote}"), &e)),
        };
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Bytes read but not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.remaining()
    }
}

async fn write_all_flush<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    data: &[u8],
) -> io::Result<()> {
    w.write_all(data).await?;
    w.flush().await
}

fn closed() -> CapError {
    CapError::Io("the connection is closed (a TLS upgrade failed)".to_owned())
}

fn too_long(max: usize) -> CapError {
    CapError::TooLarge(format!("no line ending within {max} bytes"))
}

fn io_error(what: &str, e: &io::Error) -> CapError {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionAborted => {
            CapError::Io(format!("{what}: the peer closed the connection ({e})"))
        }
        _ => CapError::Io(format!("{what}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::cert::testutil::*;
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    fn opts(port: u16) -> ConnectOptions {
        ConnectOptions {
            host: "127.0.0.1".to_owned(),
            port,
            tls: false,
            sni: None,
            verify_tls: false,
            timeout_ms: 5000,
        }
    }

    /// Serves one connection with `serve`.
    async fn server<F, Fut>(serve: F) -> u16
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            if let Ok((tcp, _)) = listener.accept().await {
                serve(tcp).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn banner_lines_echo_and_eof() {
        let port = server(|mut tcp| async move {
            tcp.write_all(b"220 hello\r\n").await.expect("banner");
            let mut buf = [0u8; 64];
            let n = tcp.read(&mut buf).await.expect("read");
            tcp.write_all(&buf[..n]).await.expect("echo");
            tcp.write_all(b"line two\nno newline").await.expect("more");
        })
        .await;
        let mut conn = connect(&private(), opts(port), soon())
            .await
            .expect("connect");
        let info = conn.info();
        assert_eq!(info.remote_addr, format!("127.0.0.1:{port}"));
        assert!(info.timings.connect_ms.is_some());
        assert_eq!(info.timings.dns_ms, None);
        assert_eq!(info.timings.tls_ms, None);
        assert!(info.peer_certificate.is_none());

        assert_eq!(
            conn.read_line(1024, 2000).await.expect("banner"),
            Some("220 hello".to_owned())
        );
        conn.send(b"PING\r\n", 2000).await.expect("send");
        assert_eq!(
            conn.read_line(1024, 2000).await.expect("echo"),
            Some("PING".to_owned())
        );
        assert_eq!(
            conn.read_line(1024, 2000).await.expect("two"),
            Some("line two".to_owned())
        );
        assert_eq!(
            conn.read_line(1024, 2000).await.expect("tail"),
            Some("no newline".to_owned())
        );
        assert_eq!(conn.read_line(1024, 2000).await.expect("eof"), None);
        assert_eq!(
            conn.receive(1024, 2000).await.expect("eof"),
            Vec::<u8>::new()
        );
    }

    #[tokio::test]
    async fn receive_respects_max_bytes() {
        let port = server(|mut tcp| async move {
            tcp.write_all(b"0123456789").await.expect("write");
        })
        .await;
        let mut conn = connect(&private(), opts(port), soon())
            .await
            .expect("connect");
        let mut got = Vec::new();
        loop {
            let chunk = conn.receive(4, 2000).await.expect("receive");
            if chunk.is_empty() {
                break;
            }
            assert!(chunk.len() <= 4);
            got.extend(chunk);
        }
        assert_eq!(got, b"0123456789");
        assert!(matches!(
            conn.receive(0, 100).await,
            Err(CapError::InvalidRequest(_))
        ));
    }

    #[tokio::test]
    async fn policy_caps_reads() {
        let port = server(|mut tcp| async move {
            tcp.write_all(&[b'x'; 100]).await.expect("write");
        })
        .await;
        let policy = NetPolicy {
            max_read_bytes: 10,
            ..private()
        };
        let mut conn = connect(&policy, opts(port), soon()).await.expect("connect");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(conn.receive(1000, 2000).await.expect("receive").len(), 10);
        assert!(matches!(
            conn.read_line(1000, 2000).await,
            Err(CapError::TooLarge(_))
        ));
    }

    #[tokio::test]
    async fn read_line_too_large() {
        let port = server(|mut tcp| async move {
            tcp.write_all(&[b'a'; 300]).await.expect("write");
            tokio::time::sleep(Duration::from_secs(2)).await;
        })
        .await;
        let mut conn = connect(&private(), opts(port), soon())
            .await
            .expect("connect");
        match conn.read_line(100, 2000).await {
            Err(CapError::TooLarge(msg)) => assert!(msg.contains("100"), "{msg}"),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn line_of_exactly_max_bytes_fits() {
        let port = server(|mut tcp| async move {
            tcp.write_all(b"abcd\r\nabcde\r\n").await.expect("write");
        })
        .await;
        let mut conn = connect(&private(), opts(port), soon())
            .await
            .expect("connect");
        assert_eq!(
            conn.read_line(4, 2000).await.expect("fits"),
            Some("abcd".to_owned())
        );
        assert!(matches!(
            conn.read_line(4, 2000).await,
            Err(CapError::TooLarge(_))
        ));
    }

    #[tokio::test]
    async fn read_timeout_and_deadline() {
        let port = server(|tcp| async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            drop(tcp);
        })
        .await;
        let mut conn = connect(&private(), opts(port), soon())
            .await
            .expect("connect");
        let started = Instant::now();
        assert!(matches!(
            conn.read_line(100, 100).await,
            Err(CapError::Timeout(_))
        ));
        assert!(started.elapsed() < Duration::from_secs(2));

        // The invocation deadline caps a generous per-call timeout.
        let port = server(|tcp| async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            drop(tcp);
        })
        .await;
        let deadline = Instant::now() + Duration::from_millis(300);
        let mut conn = connect(&private(), opts(port), deadline)
            .await
            .expect("connect");
        let started = Instant::now();
        assert!(matches!(
            conn.receive(100, 60_000).await,
            Err(CapError::Timeout(_))
        ));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn connect_is_guarded() {
        let r = connect(&NetPolicy::default(), opts(9), soon()).await;
        assert!(matches!(r, Err(CapError::PolicyDenied(_))), "{r:?}");
        let narrowed = NetPolicy {
            allowed_hosts: Some(vec!["smtp.example.com".to_owned()]),
            ..private()
        };
        let r = connect(&narrowed, opts(9), soon()).await;
        assert!(matches!(r, Err(CapError::NotGranted(_))), "{r:?}");
    }

    /// An SMTP-like server: banner, waits for STARTTLS, answers, then speaks TLS.
    async fn starttls_server(cert: TestCert) -> u16 {
        let acceptor = TlsAcceptor::from(server_config(&cert));
        server(move |tcp| async move {
            let mut tcp = BufReader::new(tcp);
            tcp.get_mut()
                .write_all(b"220 ready\r\n")
                .await
                .expect("banner");
            let mut line = String::new();
            tcp.read_line(&mut line).await.expect("command");
            assert_eq!(line, "STARTTLS\r\n");
            tcp.get_mut()
                .write_all(b"220 go ahead\r\n")
                .await
                .expect("go");
            let tls = acceptor.accept(tcp.into_inner()).await.expect("handshake");
            let mut tls = BufReader::new(tls);
            let mut line = String::new();
            tls.read_line(&mut line).await.expect("secured command");
            tls.get_mut()
                .write_all(format!("250 secured {}", line).as_bytes())
                .await
                .expect("reply");
            tls.get_mut().shutdown().await.expect("close_notify");
        })
        .await
    }

    #[tokio::test]
    async fn starttls_upgrade() {
        let port = starttls_server(valid_localhost()).await;
        let mut conn = connect(
            &private(),
            ConnectOptions {
                host: "localhost".to_owned(),
                ..opts(port)
            },
            soon(),
        )
        .await
        .expect("connect");
        assert_eq!(
            conn.read_line(512, 2000).await.expect("banner"),
            Some("220 ready".to_owned())
        );
        conn.send(b"STARTTLS\r\n", 2000).await.expect("starttls");
        assert_eq!(
            conn.read_line(512, 2000).await.expect("go"),
            Some("220 go ahead".to_owned())
        );
        let cert = conn
            .upgrade_tls(None, false, 2000)
            .await
            .expect("upgrade")
            .expect("certificate");
        assert!(conn.is_tls());
        assert_eq!(
            cert.sans,
            vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
        );
        assert_eq!(cert.days_remaining, 30);
        let info = conn.info();
        assert!(info.timings.tls_ms.is_some());
        assert!(info.peer_certificate.is_some());
        conn.send(b"EHLO x\r\n", 2000).await.expect("send over tls");
        assert_eq!(
            conn.read_line(512, 2000).await.expect("reply"),
            Some("250 secured EHLO x".to_owned())
        );
        assert_eq!(conn.read_line(512, 2000).await.expect("eof"), None);
        assert!(matches!(
            conn.upgrade_tls(None, false, 2000).await,
            Err(CapError::InvalidRequest(_))
        ));
    }

    #[tokio::test]
    async fn starttls_verify_fails_for_self_signed() {
        let port = starttls_server(valid_localhost()).await;
        let mut conn = connect(&private(), opts(port), soon())
            .await
            .expect("connect");
        conn.read_line(512, 2000).await.expect("banner");
        conn.send(b"STARTTLS\r\n", 2000).await.expect("starttls");
        conn.read_line(512, 2000).await.expect("go");
        match conn
            .upgrade_tls(Some("localhost".to_owned()), true, 2000)
            .await
        {
            Err(CapError::Tls(msg)) => assert!(msg.contains("UnknownIssuer"), "{msg}"),
            other => panic!("expected Tls error, got {other:?}"),
        }
        assert!(matches!(conn.send(b"x", 100).await, Err(CapError::Io(_))));
    }

    #[tokio::test]
    async fn direct_tls_connect() {
        let cert = valid_localhost();
        let acceptor = TlsAcceptor::from(server_config(&cert));
        let port = server(move |tcp| async move {
            let mut tls = acceptor.accept(tcp).await.expect("handshake");
            tls.write_all(b"* OK hello\r\n").await.expect("greeting");
            tls.shutdown().await.expect("close");
        })
        .await;
        let mut conn = connect(
            &private(),
            ConnectOptions {
                tls: true,
                sni: Some("localhost".to_owned()),
                ..opts(port)
            },
            soon(),
        )
        .await
        .expect("tls connect");
        let info = conn.info();
        assert!(info.timings.tls_ms.is_some());
        assert_eq!(
            info.peer_certificate.expect("cert").subject,
            "CN=pharos test"
        );
        assert_eq!(
            conn.read_line(512, 2000).await.expect("greeting"),
            Some("* OK hello".to_owned())
        );
    }

    #[tokio::test]
    async fn plaintext_before_upgrade_is_refused() {
        let port = server(|mut tcp| async move {
            tcp.write_all(b"220 go ahead\r\nINJECTED\r\n")
                .await
                .expect("write");
            tokio::time::sleep(Duration::from_secs(1)).await;
        })
        .await;
        let mut conn = connect(&private(), opts(port), soon())
            .await
            .expect("connect");
        tokio::time::sleep(Duration::from_millis(50)).await;
        conn.read_line(512, 2000).await.expect("go");
        assert!(matches!(
            conn.upgrade_tls(Some("localhost".to_owned()), false, 2000)
                .await,
            Err(CapError::Protocol(_))
        ));
    }
}
