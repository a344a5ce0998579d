//! A small SMTP sink on 127.0.0.1 for the `smtp` capability tests: plain, STARTTLS or implicit
//! TLS (self-signed certificate for `localhost` / 127.0.0.1), optional AUTH PLAIN / LOGIN, and
//! configurable rejections. It records every accepted message. Stops when dropped.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How the sink protects connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain text; STARTTLS is not offered.
    Plain,
    /// Plain text that offers STARTTLS.
    StartTls,
    /// TLS from the first byte.
    Tls,
}

/// What the sink accepts and refuses.
#[derive(Debug, Clone)]
pub struct Options {
    pub security: Security,
    /// When set, `MAIL` needs a successful AUTH with this user and password first.
    pub auth: Option<(String, String)>,
    /// The AUTH mechanisms advertised (`PLAIN LOGIN` by default).
    pub mechanisms: String,
    /// Reply to every `RCPT` with this code and text instead of 250.
    pub reject_rcpt: Option<(u16, String)>,
    /// Reply to the end of `DATA` with this code and text instead of 250.
    pub reject_data: Option<(u16, String)>,
}

impl Options {
    /// Accepts everything, with the given security.
    pub fn new(security: Security) -> Self {
        Self {
            security,
            auth: None,
            mechanisms: "PLAIN LOGIN".to_string(),
            reject_rcpt: None,
            reject_data: None,
        }
    }
}

/// One message the sink accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body), dot-unstuffed, CRLF line endings.
    pub data: String,
    /// The user that logged in, if any.
    pub user: Option<String>,
    /// The AUTH mechanism used, if any.
    pub mechanism: Option<String>,
    /// Whether the message came over TLS.
    pub tls: bool,
}

impl Received {
    /// The value of the first header `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    v.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_string());
            }
        }
        value
    }
}

/// A running SMTP sink; aborted on drop.
pub struct SmtpSink {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    /// Messages accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Starts a sink.
pub async fn start(options: Options) -> SmtpSink {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let received = Arc::new(Mutex::new(Vec::new()));
    let acceptor = acceptor();
    let store = received.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let options = options.clone();
            let store = store.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let (io, tls): (Box<dyn Io>, bool) = if options.security == Security::Tls {
                    match acceptor.accept(stream).await {
                        Ok(s) => (Box::new(s), true),
                        Err(_) => return,
                    }
                } else {
                    (Box::new(stream), false)
                };
                let _ = session(io, tls, &options, &acceptor, &store).await;
            });
        }
    });
    SmtpSink {
        addr,
        received,
        task,
    }
}

fn acceptor() -> tokio_rustls::TlsAcceptor {
    let (cert, key) = super::servers::self_signed(30);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(cert)],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
        )
        .expect("server config");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// The state of one SMTP session.
#[derive(Default)]
struct Txn {
    user: Option<String>,
    mechanism: Option<String>,
    from: Option<String>,
    to: Vec<String>,
}

async fn session(
    io: Box<dyn Io>,
    mut tls: bool,
    options: &Options,
    acceptor: &tokio_rustls::TlsAcceptor,
    store: &Mutex<Vec<Received>>,
) -> std::io::Result<()> {
    let mut conn = BufReader::new(io);
    conn.write_all(b"220 pharos-sink ESMTP ready\r\n").await?;
    let mut txn = Txn::default();
    loop {
        let Some(line) = read_line(&mut conn).await? else {
            return Ok(());
        };
        let upper = line.to_ascii_uppercase();
        let verb = upper
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        match verb.as_str() {
            "EHLO" | "HELO" => {
                let mut caps = vec!["pharos-sink".to_string(), "8BITMIME".to_string()];
                if options.auth.is_some() {
                    caps.push(format!("AUTH {}", options.mechanisms));
                }
                if options.security == Security::StartTls && !tls {
                    caps.push("STARTTLS".to_string());
                }
                let last = caps.len() - 1;
                let mut reply = String::new();
                for (i, cap) in caps.iter().enumerate() {
                    let sep = if i == last { ' ' } else { '-' };
                    reply.push_str(&format!("250{sep}{cap}\r\n"));
                }
                conn.write_all(reply.as_bytes()).await?;
            }
            "STARTTLS" if options.security == Security::StartTls && !tls => {
                conn.write_all(b"220 2.0.0 go ahead\r\n").await?;
                let inner = conn.into_inner();
                let upgraded = acceptor.accept(inner).await?;
                conn = BufReader::new(Box::new(upgraded) as Box<dyn Io>);
                tls = true;
                txn = Txn::default();
            }
            "AUTH" if options.auth.is_some() => {
                let (user, pass) = options.auth.clone().unwrap_or_default();
                let parts: Vec<&str> = line.split_whitespace().collect();
                let mechanism = parts.get(1).map(|m| m.to_ascii_uppercase());
                let ok = match mechanism.as_deref() {
                    Some("PLAIN") => {
                        let initial = match parts.get(2) {
                            Some(p) => p.to_string(),
                            None => {
                                conn.write_all(b"334 \r\n").await?;
                                read_line(&mut conn).await?.unwrap_or_default()
                            }
                        };
                        let decoded = B64.decode(initial.trim()).unwrap_or_default();
                        let fields: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
                        fields.len() == 3
                            && fields[1] == user.as_bytes()
                            && fields[2] == pass.as_bytes()
                    }
                    Some("LOGIN") => {
                        conn.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
                        let u = read_line(&mut conn).await?.unwrap_or_default();
                        conn.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
                        let p = read_line(&mut conn).await?.unwrap_or_default();
                        B64.decode(u.trim()).unwrap_or_default() == user.as_bytes()
                            && B64.decode(p.trim()).unwrap_or_default() == pass.as_bytes()
                    }
                    _ => {
                        conn.write_all(b"504 5.5.4 unrecognized mechanism\r\n")
                            .await?;
                        continue;
                    }
                };
                if ok {
                    txn.user = Some(user);
                    txn.mechanism = mechanism;
                    conn.write_all(b"235 2.7.0 authenticated\r\n").await?;
                } else {
                    conn.write_all(b"535 5.7.8 authentication credentials invalid\r\n")
                        .await?;
                }
            }
            "MAIL" => {
                if options.auth.is_some() && txn.user.is_none() {
                    conn.write_all(b"530 5.7.0 authentication required\r\n")
                        .await?;
                    continue;
                }
                txn.from = Some(address(&line));
                txn.to.clear();
                conn.write_all(b"250 2.1.0 ok\r\n").await?;
            }
            "RCPT" => {
                if let Some((code, text)) = &options.reject_rcpt {
                    conn.write_all(format!("{code} {text}\r\n").as_bytes())
                        .await?;
                    continue;
                }
                txn.to.push(address(&line));
                conn.write_all(b"250 2.1.5 ok\r\n").await?;
            }
            "DATA" => {
                conn.write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = String::new();
                loop {
                    let Some(l) = read_line(&mut conn).await? else {
                        return Ok(());
                    };
                    if l == "." {
                        break;
                    }
                    let l = l.strip_prefix('.').unwrap_or(&l);
                    data.push_str(l);
                    data.push_str("\r\n");
                }
                if let Some((code, text)) = &options.reject_data {
                    conn.write_all(format!("{code} {text}\r\n").as_bytes())
                        .await?;
                    continue;
                }
                let n = {
                    let mut list = store.lock().expect("lock");
                    list.push(Received {
                        from: txn.from.clone().unwrap_or_default(),
                        to: std::mem::take(&mut txn.to),
                        data,
                        user: txn.user.clone(),
                        mechanism: txn.mechanism.clone(),
                        tls,
                    });
                    list.len()
                };
                conn.write_all(format!("250 2.0.0 Ok: queued as {n}\r\n").as_bytes())
                    .await?;
            }
            "RSET" | "NOOP" => conn.write_all(b"250 2.0.0 ok\r\n").await?,
            "QUIT" => {
                conn.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => {
                conn.write_all(b"502 5.5.2 command not recognized\r\n")
                    .await?
            }
        }
    }
}

/// The address inside `<…>` of a `MAIL FROM:` / `RCPT TO:` line.
fn address(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(a, _)| a.to_string())
        .unwrap_or_default()
}

/// One line without its CRLF; `None` at end of stream.
async fn read_line(conn: &mut BufReader<Box<dyn Io>>) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = conn.read_until(b'\n', &mut buf).await?;
    if n == 0 {
        return Ok(None);
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}
