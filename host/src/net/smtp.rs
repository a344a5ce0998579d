//! The `smtp` capability: one message through an SMTP server, for notifier plugins.
//!
//! The host dials the server itself — through the grant's host list and the SSRF guard, on the
//! resolved address that passed it — and secures the connection with its own TLS stack (the
//! server name is the host the plugin asked for). Implicit TLS and STARTTLS are set up here;
//! the SMTP dialogue after that (EHLO, AUTH PLAIN/LOGIN, MAIL/RCPT/DATA) and the MIME message
//! are `lettre`'s, over that stream. Every step is bounded by one deadline: the smaller of the
//! plugin's `timeout-ms` and the invocation deadline.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use super::policy::NetPolicy;
use super::resolve::{connect_guarded, unbracket, validate_host};
use super::tls::{Alpn, client_handshake};
use super::{effective_deadline, error_chain};
use crate::bindings::smtp::{Message, Rejection, Security, SendError, Sent, Server};
use crate::bindings::types::CapError;

/// Largest message accepted from a plugin: subject, bodies, addresses and headers together.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Most recipients of one message.
pub const MAX_RECIPIENTS: usize = 50;
/// Most extra headers of one message.
pub const MAX_HEADERS: usize = 32;
/// Longest extra header value (RFC 5322 line limit).
const MAX_HEADER_VALUE: usize = 998;
/// Most bytes read from the server in one session (replies are small; this stops a flood).
const MAX_SERVER_BYTES: u64 = 1 << 20;
/// Longest server reply kept in `sent.reply` and rejection messages.
const MAX_REPLY_CHARS: usize = 512;
/// How long a polite QUIT may take after the message was accepted.
const QUIT_GRACE: Duration = Duration::from_secs(2);
/// Longest reply line read before TLS (STARTTLS negotiation).
const MAX_LINE_BYTES: usize = 1000;

/// Headers the host writes itself; a plugin may not set them (`Message-ID` is honoured).
const RESERVED_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "date",
    "sender",
    "return-path",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
];

fn cap(e: CapError) -> SendError {
    SendError::Cap(e)
}

fn invalid(message: impl Into<String>) -> SendError {
    cap(CapError::InvalidRequest(message.into()))
}

/// Sends `message` through `server`: dials through the policy, secures the connection as
/// asked, logs in when both credentials are set, sends, and quits.
pub async fn send(
    policy: &NetPolicy,
    server: Server,
    message: Message,
    deadline: Instant,
) -> Result<Sent, SendError> {
    let (email, message_id) = compose(&message)?;
    let host = unbracket(server.host.trim()).to_owned();
    validate_host(&host).map_err(cap)?;
    if server.port == 0 {
        return Err(invalid("port 0 is not a valid SMTP port"));
    }
    let deadline = effective_deadline(deadline, server.timeout_ms);
    let what = format!("SMTP exchange with {host} port {}", server.port);
    let exchange = async {
        let (tcp, remote, _) = connect_guarded(policy, &host, server.port, deadline)
            .await
            .map_err(cap)?;
        let hello = hello_name(&tcp);
        let stream = match server.security {
            Security::None => SmtpStream::new(Inner::Plain(tcp), remote, Vec::new()),
            Security::Tls => {
                let hs = client_handshake(tcp, &host, server.verify_tls, Alpn::None, deadline)
                    .await
                    .map_err(cap)?;
                SmtpStream::new(Inner::Tls(Box::new(hs.stream)), remote, Vec::new())
            }
            Security::Starttls => {
                let tls = starttls(tcp, &host, server.verify_tls, &hello, deadline).await?;
                // lettre starts by reading a greeting; the real one came before STARTTLS.
                let greeting = b"220 STARTTLS negotiated by Pharos\r\n".to_vec();
                SmtpStream::new(Inner::Tls(Box::new(tls)), remote, greeting)
            }
        };
        let overflow = stream.overflow.clone();
        let lift = |e| lift_error(e, &overflow);
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &hello)
            .await
            .map_err(lift)?;
        if let (Some(user), Some(password)) = (&server.username, &server.password) {
            conn.auth(
                &[Mechanism::Plain, Mechanism::Login],
                &Credentials::new(user.clone(), password.clone()),
            )
            .await
            .map_err(lift)?;
        }
        let response = conn
            .send(email.envelope(), &email.formatted())
            .await
            .map_err(lift)?;
        let reply = clip(&format!(
            "{} {}",
            u16::from(response.code()),
            response.message().collect::<Vec<_>>().join(" ")
        ));
        Ok::<_, SendError>((conn, reply))
    };
    let (mut conn, reply) = match tokio::time::timeout_at(deadline, exchange).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(cap(CapError::Timeout(format!("{what} timed out"))));
        }
    };
    // The message is accepted; a server slow to answer QUIT does not undo that.
    let quit_by = (Instant::now() + QUIT_GRACE).min(deadline.max(Instant::now()));
    let _ = tokio::time::timeout_at(quit_by, conn.quit()).await;
    Ok(Sent { reply, message_id })
}

/// The EHLO name: the connection's local address as an address literal (RFC 5321 4.1.4 for
/// clients without an obvious host name).
fn hello_name(tcp: &TcpStream) -> ClientId {
    match tcp.local_addr().map(|a| a.ip()) {
        Ok(IpAddr::V4(ip)) => ClientId::Ipv4(ip),
        Ok(IpAddr::V6(ip)) => match ip.to_ipv4_mapped() {
            Some(v4) => ClientId::Ipv4(v4),
            None => ClientId::Ipv6(ip),
        },
        Err(_) => ClientId::Domain("localhost".to_owned()),
    }
}

/// Turns a lettre error into what the guest sees: negative replies are `rejected` with their
/// code, everything else a capability error.
fn lift_error(e: lettre::transport::smtp::Error, overflow: &AtomicBool) -> SendError {
    if let Some(code) = e.status() {
        let message = std::error::Error::source(&e)
            .map(|s| s.to_string())
            .unwrap_or_else(|| e.to_string());
        return SendError::Rejected(Rejection {
            code: u16::from(code),
            message: clip(&message),
        });
    }
    let text = clip(&error_chain(&e));
    if overflow.load(Ordering::Relaxed) {
        return cap(CapError::TooLarge(format!(
            "the SMTP server sent more than {} KiB",
            MAX_SERVER_BYTES >> 10
        )));
    }
    if e.is_timeout() {
        cap(CapError::Timeout(text))
    } else if e.is_client() || e.is_response() {
        cap(CapError::Protocol(text))
    } else {
        cap(CapError::Io(text))
    }
}

/// Cuts a server text to [`MAX_REPLY_CHARS`] on a character boundary.
fn clip(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(MAX_REPLY_CHARS) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

/// Builds the MIME message; returns it with its `Message-ID`.
fn compose(m: &Message) -> Result<(lettre::Message, String), SendError> {
    let size = m.from.len()
        + m.to.iter().map(String::len).sum::<usize>()
        + m.subject.len()
        + m.body.len()
        + m.html_body.as_ref().map_or(0, String::len)
        + m.headers
            .iter()
            .map(|h| h.name.len() + h.value.len())
            .sum::<usize>();
    if size > MAX_MESSAGE_BYTES {
        return Err(cap(CapError::TooLarge(format!(
            "the message is {size} bytes; at most {} KiB are allowed",
            MAX_MESSAGE_BYTES >> 10
        ))));
    }
    if m.to.is_empty() {
        return Err(invalid("the message needs at least one recipient"));
    }
    if m.to.len() > MAX_RECIPIENTS {
        return Err(invalid(format!(
            "the message has {} recipients; at most {MAX_RECIPIENTS} are allowed",
            m.to.len()
        )));
    }
    if m.headers.len() > MAX_HEADERS {
        return Err(invalid(format!(
            "the message has {} extra headers; at most {MAX_HEADERS} are allowed",
            m.headers.len()
        )));
    }
    let from: Mailbox = m
        .from
        .trim()
        .parse()
        .map_err(|_| invalid(format!("`from` is not an email address: {:?}", m.from)))?;
    let mut builder = lettre::Message::builder()
        .from(from.clone())
        .subject(one_line(&m.subject));
    for to in &m.to {
        let mailbox: Mailbox = to
            .trim()
            .parse()
            .map_err(|_| invalid(format!("recipient {to:?} is not an email address")))?;
        builder = builder.to(mailbox);
    }
    let mut message_id = None;
    for h in &m.headers {
        let name = h.name.trim();
        if !valid_header_name(name) {
            return Err(invalid(format!("{name:?} is not a valid header name")));
        }
        if h.value.len() > MAX_HEADER_VALUE || h.value.chars().any(|c| c.is_control() && c != '\t')
        {
            return Err(invalid(format!(
                "the value of header {name} has control characters or more than {MAX_HEADER_VALUE} bytes"
            )));
        }
        let lower = name.to_ascii_lowercase();
        if lower == "message-id" {
            message_id = Some(valid_message_id(h.value.trim())?);
        } else if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(invalid(format!(
                "header {name} is written by the host from the message fields"
            )));
        } else {
            let header_name = HeaderName::new_from_ascii(name.to_owned())
                .map_err(|_| invalid(format!("{name:?} is not a valid header name")))?;
            builder = builder.raw_header(HeaderValue::new(header_name, h.value.trim().to_owned()));
        }
    }
    let message_id = message_id.unwrap_or_else(|| generate_message_id(from.email.domain()));
    let builder = builder.message_id(Some(message_id.clone()));
    let built = match &m.html_body {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            m.body.clone(),
            html.clone(),
        )),
        None => builder.singlepart(SinglePart::plain(m.body.clone())),
    };
    let email = built.map_err(|e| invalid(format!("cannot build the message: {e}")))?;
    Ok((email, message_id))
}

/// Control characters (line breaks included) become spaces: a subject is one line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// RFC 5322 field name: printable ASCII except `:`, at most 76 characters.
fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 76
        && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// A `<left@right>` message id of printable ASCII without spaces.
fn valid_message_id(id: &str) -> Result<String, SendError> {
    let ok = id.len() <= 250
        && id
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .and_then(|s| s.split_once('@'))
            .is_some_and(|(left, right)| {
                let part_ok = |p: &str| {
                    !p.is_empty()
                        && p.bytes()
                            .all(|b| (33..=126).contains(&b) && !matches!(b, b'<' | b'>' | b'@'))
                };
                part_ok(left) && part_ok(right)
            });
    if ok {
        Ok(id.to_owned())
    } else {
        Err(invalid(format!(
            "Message-ID {id:?} must look like <unique@domain>"
        )))
    }
}

/// `<32 random hex digits@domain of the sender>`.
fn generate_message_id(domain: &str) -> String {
    let domain = if valid_message_id(&format!("<x@{domain}>")).is_ok() {
        domain
    } else {
        "pharos.invalid"
    };
    format!("<{}@{domain}>", hex::encode(rand::random::<[u8; 16]>()))
}

/// Reads the greeting, says EHLO, asks for STARTTLS and performs the TLS handshake.
async fn starttls(
    mut tcp: TcpStream,
    host: &str,
    verify: bool,
    hello: &ClientId,
    deadline: Instant,
) -> Result<TlsStream<TcpStream>, SendError> {
    let mut buf = BytesMut::new();
    expect(&mut tcp, &mut buf, 220).await?;
    write_line(&mut tcp, &format!("EHLO {hello}")).await?;
    let ehlo = expect(&mut tcp, &mut buf, 250).await?;
    let offers = ehlo.iter().skip(1).any(|line| {
        line.split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("STARTTLS"))
    });
    if !offers {
        return Err(cap(CapError::Tls(format!(
            "{host} does not offer STARTTLS"
        ))));
    }
    write_line(&mut tcp, "STARTTLS").await?;
    expect(&mut tcp, &mut buf, 220).await?;
    if !buf.is_empty() {
        // Bytes pipelined before the handshake would be read as if they came over TLS.
        return Err(cap(CapError::Protocol(format!(
            "{host} sent data after its STARTTLS reply"
        ))));
    }
    let hs = client_handshake(tcp, host, verify, Alpn::None, deadline)
        .await
        .map_err(cap)?;
    Ok(hs.stream)
}

async fn write_line(tcp: &mut TcpStream, line: &str) -> Result<(), SendError> {
    let mut data = Vec::with_capacity(line.len() + 2);
    data.extend_from_slice(line.as_bytes());
    data.extend_from_slice(b"\r\n");
    tcp.write_all(&data)
        .await
        .map_err(|e| cap(CapError::Io(format!("writing to the SMTP server: {e}"))))
}

/// Reads one (possibly multi-line) reply and fails with `rejected` unless its code is `want`.
async fn expect(
    tcp: &mut TcpStream,
    buf: &mut BytesMut,
    want: u16,
) -> Result<Vec<String>, SendError> {
    let (code, lines) = read_reply(tcp, buf).await?;
    if code == want {
        Ok(lines)
    } else if (400..600).contains(&code) {
        Err(SendError::Rejected(Rejection {
            code,
            message: clip(&lines.join(" ")),
        }))
    } else {
        Err(cap(CapError::Protocol(format!(
            "expected SMTP reply {want}, got {code} {}",
            clip(&lines.join(" "))
        ))))
    }
}

/// Reads lines `NNN-text` … `NNN text`; returns the code and the texts.
async fn read_reply(
    tcp: &mut TcpStream,
    buf: &mut BytesMut,
) -> Result<(u16, Vec<String>), SendError> {
    let protocol = |m: String| cap(CapError::Protocol(m));
    let mut lines = Vec::new();
    let mut total = 0usize;
    loop {
        let line = loop {
            if let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                let raw = buf.split_to(pos + 1);
                let text = raw.strip_suffix(b"\n").unwrap_or(&raw);
                let text = text.strip_suffix(b"\r").unwrap_or(text);
                break String::from_utf8_lossy(text).into_owned();
            }
            if buf.len() > MAX_LINE_BYTES {
                return Err(protocol("SMTP reply line too long".to_owned()));
            }
            let n = tcp
                .read_buf(buf)
                .await
                .map_err(|e| cap(CapError::Io(format!("reading from the SMTP server: {e}"))))?;
            if n == 0 {
                return Err(protocol("the SMTP server closed the connection".to_owned()));
            }
        };
        total += line.len();
        if total > 64 * 1024 || lines.len() > 100 {
            return Err(protocol("SMTP reply too long".to_owned()));
        }
        let code = line
            .get(..3)
            .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| protocol(format!("malformed SMTP reply {:?}", clip(&line))))?;
        let sep = line.as_bytes().get(3).copied();
        lines.push(line.get(4..).unwrap_or_default().to_owned());
        match sep {
            Some(b'-') => continue,
            None | Some(b' ') => return Ok((code, lines)),
            Some(_) => return Err(protocol(format!("malformed SMTP reply {:?}", clip(&line)))),
        }
    }
}

/// The connection lettre talks over.
enum Inner {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// A plain or TLS connection with an optional replayed prefix and a cap on bytes read.
struct SmtpStream {
    inner: Inner,
    /// Bytes served before the connection's own (the greeting after STARTTLS).
    prefix: bytes::Bytes,
    /// Bytes the server may still send.
    budget: u64,
    /// Set when the server sent more than [`MAX_SERVER_BYTES`].
    overflow: Arc<AtomicBool>,
    remote: SocketAddr,
}

impl SmtpStream {
    fn new(inner: Inner, remote: SocketAddr, prefix: Vec<u8>) -> Self {
        Self {
            inner,
            prefix: prefix.into(),
            budget: MAX_SERVER_BYTES,
            overflow: Arc::new(AtomicBool::new(false)),
            remote,
        }
    }
}

impl std::fmt::Debug for SmtpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpStream")
            .field("remote", &self.remote)
            .field("tls", &matches!(self.inner, Inner::Tls(_)))
            .finish_non_exhaustive()
    }
}

impl AsyncRead for SmtpStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.prefix.has_remaining() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        if this.budget == 0 {
            this.overflow.store(true, Ordering::Relaxed);
            return Poll::Ready(Err(io::Error::other(format!(
                "the SMTP server sent more than {} KiB",
                MAX_SERVER_BYTES >> 10
            ))));
        }
        let before = buf.filled().len();
        let polled = match &mut this.inner {
            Inner::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        let read = (buf.filled().len() - before) as u64;
        this.budget = this.budget.saturating_sub(read);
        polled
    }
}

impl AsyncWrite for SmtpStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.inner {
            Inner::Plain(s) => Pin::new(s).poll_write(cx, data),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Inner::Plain(s) => Pin::new(s).poll_flush(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Inner::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl AsyncTokioStream for SmtpStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.remote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::smtp::Header;

    fn message() -> Message {
        Message {
            from: "Pharos <alerts@example.com>".into(),
            to: vec!["ops@example.com".into()],
            subject: "[DOWN] api\r\nBcc: evil@example.com".into(),
            body: "The API is down.".into(),
            html_body: None,
            headers: vec![],
        }
    }

    fn invalid_request(r: Result<(lettre::Message, String), SendError>) -> String {
        match r {
            Err(SendError::Cap(CapError::InvalidRequest(m))) => m,
            Err(other) => panic!("expected invalid-request, got {other:?}"),
            Ok(_) => panic!("expected invalid-request, got a message"),
        }
    }

    #[test]
    fn composes_a_message_with_a_generated_id() {
        let (email, id) = compose(&message()).expect("composes");
        assert!(id.starts_with('<') && id.ends_with("@example.com>"), "{id}");
        let text = String::from_utf8(email.formatted()).expect("utf-8");
        assert!(text.contains(&format!("Message-ID: {id}")), "{text}");
        assert!(
            text.contains("Subject: [DOWN] api  Bcc: evil@example.com"),
            "{text}"
        );
        assert!(!text.contains("\r\nBcc:"), "{text}");
        assert!(text.contains("Date: "), "{text}");
        assert_eq!(email.envelope().to().len(), 1);
    }

    #[test]
    fn honours_message_id_and_extra_headers() {
        let mut m = message();
        m.html_body = Some("<p>down</p>".into());
        m.headers = vec![
            Header {
                name: "Message-ID".into(),
                value: "<incident-7.1@pharos.example>".into(),
            },
            Header {
                name: "X-Pharos-Incident".into(),
                value: "7".into(),
            },
        ];
        let (email, id) = compose(&m).expect("composes");
        assert_eq!(id, "<incident-7.1@pharos.example>");
        let text = String::from_utf8(email.formatted()).expect("utf-8");
        assert!(
            text.contains("Message-ID: <incident-7.1@pharos.example>"),
            "{text}"
        );
        assert!(text.contains("X-Pharos-Incident: 7"), "{text}");
        assert!(text.contains("multipart/alternative"), "{text}");
    }

    #[test]
    fn refuses_bad_messages() {
        let mut m = message();
        m.to.clear();
        assert!(invalid_request(compose(&m)).contains("recipient"));
        let mut m = message();
        m.from = "not an address".into();
        assert!(invalid_request(compose(&m)).contains("from"));
        for (name, value) in [
            ("Bcc", "x@example.com"),
            ("X-Bad\r\nBcc", "x"),
            ("X-Ok", "a\r\nBcc: x@example.com"),
            ("Message-ID", "no-brackets@example.com"),
        ] {
            let mut m = message();
            m.headers = vec![Header {
                name: name.into(),
                value: value.into(),
            }];
            invalid_request(compose(&m));
        }
        let mut m = message();
        m.body = "x".repeat(MAX_MESSAGE_BYTES + 1);
        assert!(matches!(
            compose(&m),
            Err(SendError::Cap(CapError::TooLarge(_)))
        ));
    }

    #[test]
    fn clip_keeps_char_boundaries() {
        let long = "é".repeat(MAX_REPLY_CHARS + 10);
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), MAX_REPLY_CHARS + 1);
        assert_eq!(clip(" 250 ok "), "250 ok");
    }
}
