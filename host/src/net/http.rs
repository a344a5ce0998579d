//! The `http` capability: one HTTP/1.1 exchange per hop on a fresh connection (hyper 1,
//! no pool), timed by phase, guarded per hop (grants + SSRF guard, redirect targets too),
//! with capped bodies and redirect following.

use std::error::Error as _;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use url::{Position, Url};

use super::policy::NetPolicy;
use super::resolve::connect_guarded;
use super::tls::{Alpn, client_handshake};
use super::{effective_deadline, error_chain, ms, within};
use crate::bindings::http::{Header, RedirectHop, Request, Response};
use crate::bindings::types::{CapError, CertSummary, PhaseTimings};

/// The `User-Agent` sent unless the plugin sets one.
pub const USER_AGENT: &str = concat!("Pharos/", env!("CARGO_PKG_VERSION"));

/// Request headers describing the body, dropped when a redirect turns the request into a GET.
const BODY_HEADERS: [HeaderName; 5] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::CONTENT_LOCATION,
];

/// Credentials dropped when a redirect leaves the origin.
const CREDENTIAL_HEADERS: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
];

/// Performs the request on a fresh connection per hop, following redirects when asked.
///
/// A redirect that is not followed (following disabled, `max-redirects` reached, a missing or
/// unusable `Location`) is returned as the response. The timeout is the earlier of
/// `req.timeout_ms` (0 = none) and `deadline`.
pub async fn send(
    policy: &NetPolicy,
    req: &Request,
    deadline: Instant,
) -> Result<Response, CapError> {
    send_prepared(policy, req, &Prepared::of(req)?, deadline).await
}

/// The parts of a [`Request`] that are parsed before it is sent: the same for every send of
/// one request, so a caller that sends it many times (a planned check) parses them once.
#[derive(Debug, Clone)]
pub struct Prepared {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Bytes>,
    /// The first hop's destination, derived from `url` and `headers`.
    destination: Destination,
}

impl Prepared {
    /// Parses and checks the method, URL and headers of `req`.
    pub fn of(req: &Request) -> Result<Self, CapError> {
        Self::new(
            parse_method(&req.method)?,
            parse_url(&req.url)?,
            parse_headers(&req.headers)?,
            req.body.as_deref().map(Bytes::copy_from_slice),
        )
    }

    /// A request of checked parts, with its destination derived from them.
    fn new(
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Self, CapError> {
        let destination = Destination::of(&url, &headers)?;
        Ok(Self {
            method,
            url,
            headers,
            body,
            destination,
        })
    }
}

/// Where one hop goes and the head it sends, derived once from its URL and request headers.
#[derive(Debug, Clone)]
struct Destination {
    /// The host to dial (no brackets).
    host: String,
    /// The TLS server name.
    sni: String,
    port: u16,
    /// The request target (path and query).
    target: Uri,
    /// The request headers with `Host` and `User-Agent` filled in.
    headers: HeaderMap,
}

impl Destination {
    fn of(url: &Url, headers: &HeaderMap) -> Result<Self, CapError> {
        let (host, sni) = url_host(url)?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| CapError::InvalidRequest(format!("{url} has no port")))?;
        Ok(Self {
            host,
            sni,
            port,
            target: request_target(url)?,
            headers: request_headers(url, headers)?,
        })
    }
}

/// [`send`] of a request whose parts `prepared` holds (`Prepared::of(req)`).
pub async fn send_prepared(
    policy: &NetPolicy,
    req: &Request,
    prepared: &Prepared,
    deadline: Instant,
) -> Result<Response, CapError> {
    let started = Instant::now();
    let deadline = effective_deadline(deadline, req.timeout_ms);
    let limit = req.max_body_bytes.min(policy.max_body_bytes) as usize;
    let mut redirects: Vec<RedirectHop> = Vec::new();
    // The prepared request is sent as is until a redirect derives the next one from it.
    let mut redirected: Option<Prepared> = None;

    loop {
        let current = redirected.as_ref().unwrap_or(prepared);
        let Prepared {
            method,
            url,
            headers,
            body,
            ..
        } = current;
        let hop = exchange(policy, current, req.verify_tls, deadline).await?;
        let status = hop.status;

        if req.follow_redirects
            && is_redirect(status)
            && redirects.len() < usize::from(req.max_redirects)
            && let Some(next) = redirect_target(url, &hop.headers)
        {
            redirects.push(RedirectHop {
                url: url.as_str().to_owned(),
                status: status.as_u16(),
                location: next.as_str().to_owned(),
            });
            let (mut method, mut headers, mut body) =
                (method.clone(), headers.clone(), body.clone());
            let to_get = (status == StatusCode::SEE_OTHER && method != Method::HEAD)
                || ((status == StatusCode::MOVED_PERMANENTLY || status == StatusCode::FOUND)
                    && method == Method::POST);
            if to_get {
                method = Method::GET;
                body = None;
                for name in &BODY_HEADERS {
                    headers.remove(name);
                }
            }
            if next.origin() != url.origin() {
                for name in &CREDENTIAL_HEADERS {
                    headers.remove(name);
                }
                headers.remove(header::HOST);
            }
            redirected = Some(Prepared::new(method, next, headers, body)?);
            continue; // `hop` (and its connection) is dropped here.
        }

        let what = || format!("HTTP {method} {url}: reading the response body");
        let (body, body_truncated) =
            within(deadline, what, read_body(hop.body, limit, url)).await?;
        let timings = PhaseTimings {
            total_ms: Some(ms(started.elapsed())),
            ..hop.timings
        };
        return Ok(Response {
            status: status.as_u16(),
            version: version_name(hop.version),
            headers: hop
                .headers
                .iter()
                .map(|(name, value)| Header {
                    name: name.as_str().to_owned(),
                    value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
                })
                .collect(),
            body,
            body_truncated,
            timings,
            peer_certificate: hop.peer_certificate,
            redirects,
            final_url: url.as_str().to_owned(),
            remote_addr: hop.remote_addr,
        });
    }
}

/// The head of one hop's response, its unread body and the connection driving it.
struct Hop {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Incoming,
    timings: PhaseTimings,
    peer_certificate: Option<CertSummary>,
    remote_addr: String,
    _conn: AbortOnDrop,
}

/// Aborts the spawned connection task when the hop is dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One request/response on a fresh, guarded connection.
async fn exchange(
    policy: &NetPolicy,
    prepared: &Prepared,
    verify_tls: bool,
    deadline: Instant,
) -> Result<Hop, CapError> {
    let Prepared {
        method,
        url,
        body,
        destination,
        ..
    } = prepared;
    let mut request = http::Request::new(Full::new(body.clone().unwrap_or_default()));
    *request.method_mut() = method.clone();
    *request.uri_mut() = destination.target.clone();
    *request.headers_mut() = destination.headers.clone();

    let (tcp, remote, dial) =
        connect_guarded(policy, &destination.host, destination.port, deadline).await?;
    let mut peer_certificate = None;
    let mut timings = PhaseTimings {
        dns_ms: dial.dns_ms,
        connect_ms: Some(dial.connect_ms),
        tls_ms: None,
        first_byte_ms: None,
        total_ms: None,
    };

    let (mut sender, conn) = if url.scheme() == "https" {
        // Boxed: TLS state is large, and the exchange of a plain-HTTP check need not carry it.
        let tls = Box::pin(https_connection(
            tcp,
            url,
            destination,
            verify_tls,
            deadline,
        ))
        .await?;
        timings.tls_ms = Some(tls.tls_ms);
        peer_certificate = tls.peer_certificate;
        (tls.sender, tls.conn)
    } else {
        handshake(tcp, url).await?
    };

    let sent = Instant::now();
    let what = || format!("HTTP {method} {url}: waiting for the response");
    let response = within(deadline, what, async {
        sender
            .send_request(request)
            .await
            .map_err(|e| hyper_error(url, &e))
    })
    .await?;
    timings.first_byte_ms = Some(ms(sent.elapsed()));

    let (parts, body) = response.into_parts();
    Ok(Hop {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
        timings,
        peer_certificate,
        remote_addr: remote.to_string(),
        _conn: conn,
    })
}

/// An HTTP/1 connection over TLS and what its handshake found.
struct HttpsConnection {
    sender: http1::SendRequest<Full<Bytes>>,
    conn: AbortOnDrop,
    peer_certificate: Option<CertSummary>,
    tls_ms: f64,
}

/// The TLS handshake on `tcp` and an HTTP/1 connection over it.
async fn https_connection(
    tcp: tokio::net::TcpStream,
    url: &Url,
    destination: &Destination,
    verify_tls: bool,
    deadline: Instant,
) -> Result<HttpsConnection, CapError> {
    let hs = client_handshake(tcp, &destination.sni, verify_tls, Alpn::Http1, deadline).await?;
    let (sender, conn) = handshake(hs.stream, url).await?;
    Ok(HttpsConnection {
        sender,
        conn,
        peer_certificate: hs.peer_certificate,
        tls_ms: hs.tls_ms,
    })
}

/// Starts an HTTP/1 client connection over `io`, driven by a spawned task.
async fn handshake<T>(
    io: T,
    url: &Url,
) -> Result<(http1::SendRequest<Full<Bytes>>, AbortOnDrop), CapError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| hyper_error(url, &e))?;
    let task = tokio::spawn(async move {
        // Errors surface through `send_request` / the body.
        let _ = conn.await;
    });
    Ok((sender, AbortOnDrop(task)))
}

/// Reads at most `limit` body bytes; the flag says whether more were sent.
async fn read_body(
    mut body: Incoming,
    limit: usize,
    url: &Url,
) -> Result<(Vec<u8>, bool), CapError> {
    let mut out: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| hyper_error(url, &e))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let room = limit - out.len();
        if data.len() > room {
            out.extend_from_slice(&data[..room]);
            return Ok((out, true));
        }
        out.extend_from_slice(&data);
    }
    Ok((out, false))
}

fn hyper_error(url: &Url, e: &hyper::Error) -> CapError {
    let text = format!("HTTP exchange with {url} failed: {}", error_chain(e));
    let mut source = e.source();
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return CapError::Io(text);
        }
        source = s.source();
    }
    CapError::Protocol(text)
}

fn parse_method(raw: &str) -> Result<Method, CapError> {
    let method = Method::from_bytes(raw.as_bytes())
        .map_err(|_| CapError::InvalidRequest(format!("invalid HTTP method {raw:?}")))?;
    if method == Method::CONNECT {
        return Err(CapError::InvalidRequest(
            "the CONNECT method is not supported".to_owned(),
        ));
    }
    Ok(method)
}

fn parse_url(raw: &str) -> Result<Url, CapError> {
    let url = Url::parse(raw.trim())
        .map_err(|e| CapError::InvalidRequest(format!("invalid URL {raw:?}: {e}")))?;
    check_url(&url)?;
    Ok(url)
}

fn check_url(url: &Url) -> Result<(), CapError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(CapError::InvalidRequest(format!(
            "unsupported URL scheme {:?} in {url}; use http or https",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(CapError::InvalidRequest(
            "credentials in the URL are not supported; send an Authorization header".to_owned(),
        ));
    }
    if url.host().is_none() {
        return Err(CapError::InvalidRequest(format!("{url} has no host")));
    }
    Ok(())
}

/// The host to dial (no brackets) and the TLS server name.
fn url_host(url: &Url) -> Result<(String, String), CapError> {
    match url.host() {
        Some(url::Host::Domain(d)) => Ok((d.to_owned(), d.to_owned())),
        Some(url::Host::Ipv4(ip)) => Ok((ip.to_string(), ip.to_string())),
        Some(url::Host::Ipv6(ip)) => Ok((ip.to_string(), ip.to_string())),
        None => Err(CapError::InvalidRequest(format!("{url} has no host"))),
    }
}

fn parse_headers(raw: &[Header]) -> Result<HeaderMap, CapError> {
    let mut map = HeaderMap::new();
    for h in raw {
        let name = HeaderName::from_bytes(h.name.trim().as_bytes())
            .map_err(|_| CapError::InvalidRequest(format!("invalid header name {:?}", h.name)))?;
        let value = HeaderValue::from_str(&h.value)
            .map_err(|_| CapError::InvalidRequest(format!("invalid value for header {name}")))?;
        if name == header::TRANSFER_ENCODING {
            return Err(CapError::InvalidRequest(
                "the Transfer-Encoding header is set by the host".to_owned(),
            ));
        }
        if name == header::CONTENT_LENGTH {
            continue; // derived from the body
        }
        map.append(name, value);
    }
    Ok(map)
}

/// The request target (path and query) of `url`.
fn request_target(url: &Url) -> Result<Uri, CapError> {
    let target = &url[Position::BeforePath..Position::AfterQuery];
    let target = if target.is_empty() { "/" } else { target };
    target
        .parse()
        .map_err(|e| CapError::InvalidRequest(format!("invalid request target {target:?}: {e}")))
}

/// `headers` with `Host` (from `url`) and `User-Agent` added unless set.
fn request_headers(url: &Url, headers: &HeaderMap) -> Result<HeaderMap, CapError> {
    let mut h = headers.clone();
    if !h.contains_key(header::HOST) {
        let host = url.host_str().unwrap_or_default();
        let value = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let value = HeaderValue::from_str(&value)
            .map_err(|_| CapError::InvalidRequest(format!("invalid host in {url}")))?;
        h.insert(header::HOST, value);
    }
    if !h.contains_key(header::USER_AGENT) {
        h.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    }
    Ok(h)
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The followable target of a redirect: `Location` resolved against `url`, http(s) only.
fn redirect_target(url: &Url, headers: &HeaderMap) -> Option<Url> {
    let location = headers.get(header::LOCATION)?.to_str().ok()?;
    let next = url.join(location.trim()).ok()?;
    check_url(&next).ok()?;
    Some(next)
}

fn version_name(v: Version) -> String {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/?",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::super::cert::testutil::*;
    use super::*;
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::time::Duration;
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    type Reply = hyper::Response<Full<Bytes>>;

    #[test]
    fn a_plain_http_exchange_does_not_carry_the_tls_handshake() {
        // Every check awaits (and moves) the exchange's state; the TLS handshake's state is
        // boxed so that plain HTTP does not carry it.
        let policy = private();
        let req = get("http://127.0.0.1:1/".into());
        let prepared = Prepared::of(&req).expect("prepared");
        let exchange = exchange(&policy, &prepared, true, soon());
        let tcp: Option<tokio::net::TcpStream> = None;
        let handshake = tcp.map(|t| client_handshake(t, "x", true, Alpn::Http1, soon()));
        assert!(
            std::mem::size_of_val(&exchange) < std::mem::size_of_val(&handshake),
            "exchange future {} bytes, handshake {} bytes",
            std::mem::size_of_val(&exchange),
            std::mem::size_of_val(&handshake)
        );
    }

    #[test]
    fn the_first_hop_is_derived_once_with_host_and_user_agent() {
        let mut req = get("http://127.0.0.1:8080/a/b?q=1#frag".into());
        req.headers.push(Header {
            name: "X-Test".into(),
            value: "yes".into(),
        });
        let p = Prepared::of(&req).expect("prepared");
        let d = &p.destination;
        assert_eq!(
            (d.host.as_str(), d.sni.as_str(), d.port),
            ("127.0.0.1", "127.0.0.1", 8080)
        );
        assert_eq!(d.target, "/a/b?q=1");
        assert_eq!(d.headers.get(header::HOST).expect("host"), "127.0.0.1:8080");
        assert_eq!(d.headers.get(header::USER_AGENT).expect("ua"), USER_AGENT);
        assert_eq!(d.headers.get("x-test").expect("x-test"), "yes");
        // The plugin's own headers stay as given, for redirects to derive the next hop from.
        assert!(p.headers.get(header::HOST).is_none());
    }

    /// [`super::send`] taking the request by value, as the tests build it inline.
    async fn send(
        policy: &NetPolicy,
        req: Request,
        deadline: Instant,
    ) -> Result<Response, CapError> {
        super::send(policy, &req, deadline).await
    }

    fn reply(status: u16, body: impl Into<Bytes>) -> Reply {
        let mut r = hyper::Response::new(Full::new(body.into()));
        *r.status_mut() = StatusCode::from_u16(status).expect("status");
        r
    }

    fn redirect(status: u16, location: &str) -> Reply {
        let mut r = reply(status, "");
        r.headers_mut().insert(
            header::LOCATION,
            HeaderValue::from_str(location).expect("location"),
        );
        r
    }

    /// The test server's routes.
    async fn route(req: hyper::Request<Incoming>) -> Result<Reply, Infallible> {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let header_text = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        let ua = header_text("user-agent");
        let auth = header_text("authorization");
        let ctype = header_text("content-type");
        let query = req.uri().query().unwrap_or_default().to_owned();
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let r = match path.as_str() {
            "/ok" => {
                let mut r = reply(200, "hello world");
                r.headers_mut()
                    .insert("x-test", HeaderValue::from_static("yes"));
                r
            }
            "/500" => reply(500, "boom"),
            "/big" => reply(200, vec![b'x'; 10_000]),
            "/slow" => {
                tokio::time::sleep(Duration::from_secs(10)).await;
                reply(200, "late")
            }
            "/echo" => reply(
                200,
                format!(
                    "{method} host={host} ua={ua} auth={auth} ctype={ctype} query={query} body={}",
                    String::from_utf8_lossy(&body)
                ),
            ),
            "/see-other" => redirect(303, "/echo"),
            "/found" => redirect(302, "/echo"),
            "/temporary" => redirect(307, "/echo?kept=1"),
            "/to-localhost" => {
                let port = host.rsplit(':').next().unwrap_or_default();
                redirect(302, &format!("http://localhost:{port}/echo"))
            }
            "/to-metadata" => redirect(302, "http://169.254.169.254/latest/meta-data/"),
            "/to-ftp" => redirect(302, "ftp://example.com/"),
            p if p.starts_with("/chain/") => {
                let n: u32 = p["/chain/".len()..].parse().unwrap_or(0);
                if n == 0 {
                    reply(200, "end of chain")
                } else {
                    redirect(301, &format!("/chain/{}", n - 1))
                }
            }
            _ => reply(404, "not found"),
        };
        Ok(r)
    }

    async fn serve_io<T>(io: T)
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), hyper::service::service_fn(route))
            .await;
    }

    async fn http_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve_io(tcp));
            }
        });
        addr
    }

    async fn https_server(cert: TestCert) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let acceptor = TlsAcceptor::from(server_config(&cert));
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        serve_io(tls).await;
                    }
                });
            }
        });
        addr
    }

    fn get(url: String) -> Request {
        Request {
            method: "GET".to_owned(),
            url,
            headers: vec![],
            body: None,
            timeout_ms: 5000,
            follow_redirects: true,
            max_redirects: 5,
            verify_tls: true,
            max_body_bytes: 1024 * 1024,
        }
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.value.as_str())
    }

    #[tokio::test]
    async fn ok_with_body_and_timings() {
        let addr = http_server().await;
        let r = send(&private(), get(format!("http://{addr}/ok")), soon())
            .await
            .expect("200");
        assert_eq!(r.status, 200);
        assert_eq!(r.version, "HTTP/1.1");
        assert_eq!(r.body, b"hello world");
        assert!(!r.body_truncated);
        assert_eq!(header(&r, "x-test"), Some("yes"));
        assert_eq!(header(&r, "content-length"), Some("11"));
        assert_eq!(r.remote_addr, addr.to_string());
        assert_eq!(r.final_url, format!("http://{addr}/ok"));
        assert!(r.redirects.is_empty());
        assert!(r.peer_certificate.is_none());
        assert_eq!(r.timings.dns_ms, None, "IP literal: no DNS phase");
        assert!(r.timings.connect_ms.is_some());
        assert_eq!(r.timings.tls_ms, None);
        assert!(r.timings.first_byte_ms.is_some());
        let total = r.timings.total_ms.expect("total");
        assert!(total >= r.timings.first_byte_ms.expect("ttfb"));
    }

    #[tokio::test]
    async fn localhost_has_dns_timing() {
        let addr = http_server().await;
        let r = send(
            &private(),
            get(format!("http://localhost:{}/ok", addr.port())),
            soon(),
        )
        .await
        .expect("200");
        assert_eq!(r.status, 200);
        assert!(r.timings.dns_ms.is_some());
        assert_eq!(r.remote_addr, addr.to_string());
    }

    #[tokio::test]
    async fn server_error_is_a_response() {
        let addr = http_server().await;
        let r = send(&private(), get(format!("http://{addr}/500")), soon())
            .await
            .expect("500 is not an error");
        assert_eq!(r.status, 500);
        assert_eq!(r.body, b"boom");
    }

    #[tokio::test]
    async fn default_headers_and_post_body() {
        let addr = http_server().await;
        let mut req = get(format!("http://{addr}/echo?a=b"));
        req.method = "POST".to_owned();
        req.body = Some(b"payload".to_vec());
        req.headers = vec![Header {
            name: "Content-Type".to_owned(),
            value: "text/plain".to_owned(),
        }];
        let r = send(&private(), req, soon()).await.expect("echo");
        let text = String::from_utf8(r.body).expect("utf8");
        assert_eq!(
            text,
            format!(
                "POST host={addr} ua={USER_AGENT} auth=- ctype=text/plain query=a=b body=payload"
            )
        );

        let mut req = get(format!("http://{addr}/echo"));
        req.headers = vec![
            Header {
                name: "user-agent".to_owned(),
                value: "custom/1".to_owned(),
            },
            Header {
                name: "host".to_owned(),
                value: "vhost.example".to_owned(),
            },
        ];
        let r = send(&private(), req, soon()).await.expect("echo");
        let text = String::from_utf8(r.body).expect("utf8");
        assert!(
            text.starts_with("GET host=vhost.example ua=custom/1 "),
            "{text}"
        );
    }

    #[tokio::test]
    async fn redirect_chain_followed_and_limited() {
        let addr = http_server().await;
        let r = send(&private(), get(format!("http://{addr}/chain/3")), soon())
            .await
            .expect("chain");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"end of chain");
        assert_eq!(r.final_url, format!("http://{addr}/chain/0"));
        assert_eq!(r.redirects.len(), 3);
        assert_eq!(r.redirects[0].url, format!("http://{addr}/chain/3"));
        assert_eq!(r.redirects[0].status, 301);
        assert_eq!(r.redirects[0].location, format!("http://{addr}/chain/2"));
        assert_eq!(r.redirects[2].location, format!("http://{addr}/chain/0"));

        let mut req = get(format!("http://{addr}/chain/5"));
        req.max_redirects = 2;
        let r = send(&private(), req, soon()).await.expect("limited");
        assert_eq!(r.status, 301, "the redirect past the limit is returned");
        assert_eq!(r.redirects.len(), 2);
        assert_eq!(r.final_url, format!("http://{addr}/chain/3"));

        let mut req = get(format!("http://{addr}/chain/1"));
        req.follow_redirects = false;
        let r = send(&private(), req, soon()).await.expect("not followed");
        assert_eq!(r.status, 301);
        assert!(r.redirects.is_empty());
        assert_eq!(header(&r, "location"), Some("/chain/0"));
    }

    #[tokio::test]
    async fn redirect_method_rules() {
        let addr = http_server().await;
        let post = |path: &str| {
            let mut req = get(format!("http://{addr}{path}"));
            req.method = "POST".to_owned();
            req.body = Some(b"data".to_vec());
            req.headers = vec![
                Header {
                    name: "content-type".to_owned(),
                    value: "text/plain".to_owned(),
                },
                Header {
                    name: "authorization".to_owned(),
                    value: "Bearer t".to_owned(),
                },
            ];
            req
        };
        let r = send(&private(), post("/see-other"), soon())
            .await
            .expect("303");
        let text = String::from_utf8(r.body).expect("utf8");
        assert!(text.starts_with("GET "), "{text}");
        assert!(text.contains("ctype=- "), "{text}");
        assert!(
            text.contains("auth=Bearer t"),
            "same origin keeps credentials: {text}"
        );
        assert!(text.ends_with("body="), "{text}");
        assert_eq!(r.redirects[0].status, 303);

        let r = send(&private(), post("/found"), soon()).await.expect("302");
        assert!(String::from_utf8_lossy(&r.body).starts_with("GET "));

        let r = send(&private(), post("/temporary"), soon())
            .await
            .expect("307");
        let text = String::from_utf8(r.body).expect("utf8");
        assert!(text.starts_with("POST "), "{text}");
        assert!(text.contains("query=kept=1"), "{text}");
        assert!(text.ends_with("body=data"), "{text}");

        // Cross-origin (127.0.0.1 → localhost): credentials are dropped.
        let mut req = post("/to-localhost");
        req.method = "GET".to_owned();
        req.body = None;
        let r = send(&private(), req, soon()).await.expect("cross origin");
        let text = String::from_utf8(r.body).expect("utf8");
        assert!(text.contains("auth=-"), "{text}");
        assert!(
            text.contains(&format!("host=localhost:{}", addr.port())),
            "{text}"
        );

        let r = send(&private(), get(format!("http://{addr}/to-ftp")), soon())
            .await
            .expect("unfollowable");
        assert_eq!(r.status, 302);
        assert!(r.redirects.is_empty());
    }

    #[tokio::test]
    async fn body_cap_truncates() {
        let addr = http_server().await;
        let mut req = get(format!("http://{addr}/big"));
        req.max_body_bytes = 1000;
        let r = send(&private(), req, soon()).await.expect("big");
        assert_eq!(r.body.len(), 1000);
        assert!(r.body_truncated);

        let policy = NetPolicy {
            max_body_bytes: 100,
            ..private()
        };
        let r = send(&policy, get(format!("http://{addr}/big")), soon())
            .await
            .expect("big");
        assert_eq!(r.body.len(), 100);
        assert!(r.body_truncated);

        let mut req = get(format!("http://{addr}/ok"));
        req.max_body_bytes = 11;
        let r = send(&private(), req, soon()).await.expect("exact");
        assert_eq!(r.body, b"hello world");
        assert!(!r.body_truncated);
    }

    #[tokio::test]
    async fn timeout_when_server_never_answers() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                held.push(tcp);
            }
        });
        let mut req = get(format!("http://{addr}/"));
        req.timeout_ms = 300;
        let started = Instant::now();
        match send(&private(), req, soon()).await {
            Err(CapError::Timeout(msg)) => {
                assert!(msg.contains("waiting for the response"), "{msg}")
            }
            other => panic!("expected Timeout, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(2));

        // The invocation deadline caps a longer request timeout.
        let addr = http_server().await;
        let mut req = get(format!("http://{addr}/slow"));
        req.timeout_ms = 60_000;
        let started = Instant::now();
        let r = send(&private(), req, Instant::now() + Duration::from_millis(300)).await;
        assert!(matches!(r, Err(CapError::Timeout(_))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn https_self_signed() {
        let addr = https_server(valid_localhost()).await;
        let url = format!("https://localhost:{}/ok", addr.port());
        let mut req = get(url.clone());
        req.verify_tls = false;
        let r = send(&private(), req, soon())
            .await
            .expect("unverified https");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello world");
        assert!(r.timings.tls_ms.is_some());
        let cert = r.peer_certificate.expect("peer certificate");
        assert_eq!(
            cert.sans,
            vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
        );
        assert_eq!(cert.days_remaining, 30);
        assert!(cert.self_signed);

        match send(&private(), get(url), soon()).await {
            Err(CapError::Tls(msg)) => assert!(msg.contains("UnknownIssuer"), "{msg}"),
            other => panic!("expected Tls error, got {other:?}"),
        }

        // IP literal SNI: the certificate carries the IP SAN.
        let mut req = get(format!("https://{addr}/ok"));
        req.verify_tls = false;
        let r = send(&private(), req, soon()).await.expect("https by IP");
        assert_eq!(r.status, 200);
    }

    #[tokio::test]
    async fn ssrf_guard() {
        let addr = http_server().await;
        let policy = NetPolicy::default();
        for url in [
            format!("http://{addr}/ok"),
            format!("http://localhost:{}/ok", addr.port()),
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "http://[::ffff:127.0.0.1]/".to_owned(),
            "http://0x7f.1/".to_owned(),
            "http://2130706433/".to_owned(),
        ] {
            let r = send(&policy, get(url.clone()), soon()).await;
            assert!(matches!(r, Err(CapError::PolicyDenied(_))), "{url}: {r:?}");
        }
        match send(&policy, get("http://169.254.169.254/".to_owned()), soon()).await {
            Err(CapError::PolicyDenied(msg)) => assert!(msg.contains("cloud metadata"), "{msg}"),
            other => panic!("expected PolicyDenied, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn redirect_targets_are_checked() {
        let addr = http_server().await;
        // Grants: only the IP literal; the redirect to `localhost` is outside them.
        let narrowed = NetPolicy {
            allowed_hosts: Some(vec!["127.0.0.1".to_owned()]),
            ..private()
        };
        let r = send(
            &narrowed,
            get(format!("http://{addr}/to-localhost")),
            soon(),
        )
        .await;
        assert!(matches!(r, Err(CapError::NotGranted(_))), "{r:?}");

        let r = send(
            &narrowed,
            get(format!("http://localhost:{}/ok", addr.port())),
            soon(),
        )
        .await;
        match r {
            Err(CapError::NotGranted(msg)) => assert!(msg.contains("localhost"), "{msg}"),
            other => panic!("expected NotGranted, got {other:?}"),
        }

        // The SSRF guard cannot be on while a loopback test server is reachable, so the
        // per-hop check is shown with grants: the metadata target is refused before any dial.
        let mut req = get(format!("http://{addr}/to-metadata"));
        req.timeout_ms = 300;
        let r = send(&narrowed, req, soon()).await;
        match r {
            Err(CapError::NotGranted(msg)) => assert!(msg.contains("169.254.169.254"), "{msg}"),
            other => panic!("expected NotGranted, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn invalid_requests() {
        let cases: Vec<Request> = vec![
            get("not a url".to_owned()),
            get("ftp://example.com/".to_owned()),
            get("http://user:pw@example.com/".to_owned()),
            Request {
                method: "GE T".to_owned(),
                ..get("http://example.com/".to_owned())
            },
            Request {
                method: "CONNECT".to_owned(),
                ..get("http://example.com/".to_owned())
            },
            Request {
                headers: vec![Header {
                    name: "bad header".to_owned(),
                    value: "x".to_owned(),
                }],
                ..get("http://example.com/".to_owned())
            },
            Request {
                headers: vec![Header {
                    name: "x-injected".to_owned(),
                    value: "a\r\nHost: evil".to_owned(),
                }],
                ..get("http://example.com/".to_owned())
            },
            Request {
                headers: vec![Header {
                    name: "transfer-encoding".to_owned(),
                    value: "chunked".to_owned(),
                }],
                ..get("http://example.com/".to_owned())
            },
        ];
        for req in cases {
            let url = req.url.clone();
            let r = send(&private(), req, soon()).await;
            assert!(
                matches!(r, Err(CapError::InvalidRequest(_))),
                "{url}: {r:?}"
            );
        }
    }

    #[tokio::test]
    async fn connection_refused_is_connect_error() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let r = send(&private(), get(format!("http://127.0.0.1:{port}/")), soon()).await;
        assert!(matches!(r, Err(CapError::Connect(_))), "{r:?}");
    }

    #[tokio::test]
    async fn garbage_response_is_protocol_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            if let Ok((mut tcp, _)) = listener.accept().await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 1024];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp.write_all(b"SSH-2.0-OpenSSH_9.0\r\n\r\n").await;
            }
        });
        let r = send(&private(), get(format!("http://{addr}/")), soon()).await;
        assert!(matches!(r, Err(CapError::Protocol(_))), "{r:?}");
    }
}
