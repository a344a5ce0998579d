//! Typed wrappers over the network capabilities: `http`, `tcp`, `dns` and `tls`.
//!
//! Inside the sandbox each call goes to the host; natively it goes to [`crate::mock`].

/// Send one HTTP request and time its phases (capability `http`).
pub mod http {
    use crate::CapError;
    use crate::bindings::pharos::plugin::http as wit;

    pub use wit::{Header, RedirectHop, Request, Response};

    /// Default timeout of a request built here, in milliseconds.
    pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;
    /// Default number of redirects followed.
    pub const DEFAULT_MAX_REDIRECTS: u8 = 5;
    /// Default cap on the body bytes kept.
    pub const DEFAULT_MAX_BODY_BYTES: u32 = 1024 * 1024;

    /// Sends `req` on a fresh connection.
    pub fn send(req: &Request) -> Result<Response, CapError> {
        #[cfg(target_arch = "wasm32")]
        {
            wit::send(req)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            crate::mock::call_http(req)
        }
    }

    impl Request {
        /// A request with the given method; follows up to 5 redirects, verifies TLS, keeps
        /// at most 1 MiB of body, times out after 10 s.
        pub fn new(method: &str, url: &str) -> Self {
            Request {
                method: method.to_string(),
                url: url.to_string(),
                headers: Vec::new(),
                body: None,
                timeout_ms: DEFAULT_TIMEOUT_MS,
                follow_redirects: true,
                max_redirects: DEFAULT_MAX_REDIRECTS,
                verify_tls: true,
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            }
        }

        /// A `GET` request.
        pub fn get(url: &str) -> Self {
            Request::new("GET", url)
        }

        /// A `HEAD` request.
        pub fn head(url: &str) -> Self {
            Request::new("HEAD", url)
        }

        /// A `POST` request.
        pub fn post(url: &str) -> Self {
            Request::new("POST", url)
        }

        /// Adds a header (repeated names are sent repeatedly).
        pub fn header(mut self, name: &str, value: &str) -> Self {
            self.headers.push(Header {
                name: name.to_string(),
                value: value.to_string(),
            });
            self
        }

        /// Sets the body.
        pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
            self.body = Some(body.into());
            self
        }

        /// Sets the timeout for the whole exchange, redirects included.
        pub fn timeout_ms(mut self, ms: u32) -> Self {
            self.timeout_ms = ms;
            self
        }

        /// Follows at most `max` redirects; `0` returns 3xx responses as they are.
        pub fn follow_redirects(mut self, max: u8) -> Self {
            self.follow_redirects = max > 0;
            self.max_redirects = max;
            self
        }

        /// Whether invalid, expired or self-signed certificates are rejected.
        pub fn verify_tls(mut self, verify: bool) -> Self {
            self.verify_tls = verify;
            self
        }

        /// Keeps at most `n` body bytes (the host caps it further).
        pub fn max_body_bytes(mut self, n: u32) -> Self {
            self.max_body_bytes = n;
            self
        }

        /// Adds `Authorization: Basic …`.
        pub fn basic_auth(self, username: &str, password: &str) -> Self {
            let token = base64(format!("{username}:{password}").as_bytes());
            self.header("Authorization", &format!("Basic {token}"))
        }

        /// Adds `Authorization: Bearer …`.
        pub fn bearer_auth(self, token: &str) -> Self {
            self.header("Authorization", &format!("Bearer {token}"))
        }

        /// The first header called `name` (case-insensitive).
        pub fn header_value(&self, name: &str) -> Option<&str> {
            find_header(&self.headers, name)
        }

        /// Sends the request.
        pub fn send(&self) -> Result<Response, CapError> {
            send(self)
        }
    }

    impl Response {
        /// A response for tests: the given status and body, no headers, nothing timed.
        pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
            Response {
                status,
                version: "HTTP/1.1".to_string(),
                headers: Vec::new(),
                body: body.into(),
                body_truncated: false,
                timings: Default::default(),
                peer_certificate: None,
                redirects: Vec::new(),
                final_url: String::new(),
                remote_addr: String::new(),
            }
        }

        /// Adds a header (builder style, for tests).
        pub fn with_header(mut self, name: &str, value: &str) -> Self {
            self.headers.push(Header {
                name: name.to_string(),
                value: value.to_string(),
            });
            self
        }

        /// The first header called `name` (case-insensitive).
        pub fn header(&self, name: &str) -> Option<&str> {
            find_header(&self.headers, name)
        }

        /// Every value of the headers called `name` (case-insensitive).
        pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
            self.headers
                .iter()
                .filter(move |h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value.as_str())
        }

        /// The body as text, invalid UTF-8 replaced.
        pub fn text(&self) -> std::borrow::Cow<'_, str> {
            String::from_utf8_lossy(&self.body)
        }

        /// The body parsed as JSON.
        pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
            serde_json::from_slice(&self.body)
        }

        /// True for 2xx statuses.
        pub fn is_success(&self) -> bool {
            (200..300).contains(&self.status)
        }
    }

    fn find_header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Standard base64 with padding (for `Authorization: Basic`).
    pub fn base64(input: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
        for chunk in input.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn base64_matches_rfc4648_vectors() {
            for (input, want) in [
                ("", ""),
                ("f", "Zg=="),
                ("fo", "Zm8="),
                ("foo", "Zm9v"),
                ("foob", "Zm9vYg=="),
                ("fooba", "Zm9vYmE="),
                ("foobar", "Zm9vYmFy"),
            ] {
                assert_eq!(base64(input.as_bytes()), want, "{input:?}");
            }
        }

        #[test]
        fn request_builder() {
            let req = Request::get("https://example.com/")
                .header("Accept", "application/json")
                .basic_auth("Aladdin", "open sesame")
                .body("x")
                .timeout_ms(1500)
                .follow_redirects(0)
                .verify_tls(false)
                .max_body_bytes(10);
            assert_eq!(req.method, "GET");
            assert_eq!(req.header_value("accept"), Some("application/json"));
            assert_eq!(
                req.header_value("AUTHORIZATION"),
                Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
            );
            assert_eq!(req.body.as_deref(), Some(&b"x"[..]));
            assert_eq!(
                (req.timeout_ms, req.follow_redirects, req.max_redirects),
                (1500, false, 0)
            );
            assert!(!req.verify_tls);
            assert_eq!(req.max_body_bytes, 10);
            assert_eq!(
                Request::post("u")
                    .bearer_auth("t")
                    .header_value("authorization"),
                Some("Bearer t")
            );
        }

        #[test]
        fn response_helpers() {
            let resp = Response::new(204, "{\"a\":1}")
                .with_header("X-A", "1")
                .with_header("x-a", "2");
            assert!(resp.is_success());
            assert_eq!(resp.header("x-A"), Some("1"));
            assert_eq!(resp.header_values("X-a").collect::<Vec<_>>(), ["1", "2"]);
            assert_eq!(resp.json::<serde_json::Value>().unwrap()["a"], 1);
            assert_eq!(resp.text(), "{\"a\":1}");
        }
    }
}

/// Open a TCP connection (optionally TLS) and talk (capability `tcp`).
pub mod tcp {
    use std::time::Instant;

    use crate::bindings::pharos::plugin::tcp as wit;
    use crate::{CapError, CertSummary};

    pub use wit::{ConnectInfo, ConnectOptions};

    impl ConnectOptions {
        /// Plain TCP to `host:port`, verifying TLS if it is enabled later, 10 s timeout.
        pub fn new(host: &str, port: u16) -> Self {
            ConnectOptions {
                host: host.to_string(),
                port,
                tls: false,
                sni: None,
                verify_tls: true,
                timeout_ms: 10_000,
            }
        }

        /// Performs a TLS handshake right after connecting.
        pub fn tls(mut self, tls: bool) -> Self {
            self.tls = tls;
            self
        }

        /// Sends this server name instead of `host`.
        pub fn sni(mut self, sni: Option<&str>) -> Self {
            self.sni = sni.map(str::to_string);
            self
        }

        /// Whether invalid certificates are rejected.
        pub fn verify_tls(mut self, verify: bool) -> Self {
            self.verify_tls = verify;
            self
        }

        /// Timeout for connecting (and the handshake).
        pub fn timeout_ms(mut self, ms: u32) -> Self {
            self.timeout_ms = ms;
            self
        }

        /// Opens the connection.
        pub fn connect(&self) -> Result<Connection, CapError> {
            connect(self)
        }
    }

    #[cfg(target_arch = "wasm32")]
    type Inner = wit::Connection;
    #[cfg(not(target_arch = "wasm32"))]
    type Inner = Box<dyn crate::mock::MockConnection>;

    /// An open connection; closed when dropped.
    pub struct Connection {
        inner: Inner,
    }

    /// Opens a connection to `options.host:options.port`.
    pub fn connect(options: &ConnectOptions) -> Result<Connection, CapError> {
        #[cfg(target_arch = "wasm32")]
        let inner = wit::connect(options)?;
        #[cfg(not(target_arch = "wasm32"))]
        let inner = crate::mock::call_tcp(options)?;
        Ok(Connection { inner })
    }

    /// What [`Connection::read_until`] collected and why it stopped.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ReadUntil {
        /// Everything received.
        pub data: Vec<u8>,
        /// The predicate accepted `data`.
        pub matched: bool,
        /// The peer closed the stream.
        pub eof: bool,
        /// The time ran out.
        pub timed_out: bool,
        /// `max_bytes` were received without a match.
        pub full: bool,
    }

    impl Connection {
        /// Address, timings and certificate of the connection.
        pub fn info(&self) -> ConnectInfo {
            self.inner.info()
        }

        /// Writes all of `data`.
        pub fn send(&self, data: &[u8], timeout_ms: u32) -> Result<(), CapError> {
            self.inner.send(data, timeout_ms)
        }

        /// Reads what arrives next, at most `max_bytes`; empty at end of stream.
        pub fn receive(&self, max_bytes: u32, timeout_ms: u32) -> Result<Vec<u8>, CapError> {
            self.inner.receive(max_bytes, timeout_ms)
        }

        /// Reads one line without its line ending; `None` at end of stream.
        pub fn read_line(
            &self,
            max_bytes: u32,
            timeout_ms: u32,
        ) -> Result<Option<String>, CapError> {
            self.inner.read_line(max_bytes, timeout_ms)
        }

        /// Performs a TLS handshake on the open connection (STARTTLS).
        pub fn upgrade_tls(
            &self,
            sni: Option<&str>,
            verify_tls: bool,
            timeout_ms: u32,
        ) -> Result<Option<CertSummary>, CapError> {
            self.inner.upgrade_tls(sni, verify_tls, timeout_ms)
        }

        /// Receives until `done(&received)` holds, the stream ends, `max_bytes` arrived or
        /// `timeout_ms` passed. Only errors other than a timeout are returned as `Err`.
        pub fn read_until(
            &self,
            mut done: impl FnMut(&[u8]) -> bool,
            max_bytes: u32,
            timeout_ms: u32,
        ) -> Result<ReadUntil, CapError> {
            let started = Instant::now();
            let mut out = ReadUntil::default();
            loop {
                if done(&out.data) {
                    out.matched = true;
                    return Ok(out);
                }
                let have = u32::try_from(out.data.len()).unwrap_or(u32::MAX);
                if have >= max_bytes {
                    out.full = true;
                    return Ok(out);
                }
                let elapsed = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
                let left = timeout_ms.saturating_sub(elapsed);
                if left == 0 {
                    out.timed_out = true;
                    return Ok(out);
                }
                match self.receive(max_bytes - have, left) {
                    Ok(chunk) if chunk.is_empty() => {
                        out.eof = true;
                        out.matched = done(&out.data);
                        return Ok(out);
                    }
                    Ok(chunk) => out.data.extend_from_slice(&chunk),
                    Err(CapError::Timeout(_)) => {
                        out.timed_out = true;
                        out.matched = done(&out.data);
                        return Ok(out);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// Resolve DNS records (capability `dns`).
pub mod dns {
    use std::fmt;
    use std::str::FromStr;

    use crate::CapError;
    use crate::bindings::pharos::plugin::dns as wit;

    pub use wit::{Answer, DnsRecord, Query, RecordType};

    /// Sends the query. A negative answer (NXDOMAIN, no records) is `Ok`.
    pub fn resolve(query: &Query) -> Result<Answer, CapError> {
        #[cfg(target_arch = "wasm32")]
        {
            wit::resolve(query)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            crate::mock::call_dns(query)
        }
    }

    impl Query {
        /// A query for `name` on the system resolver with a 5 s timeout.
        pub fn new(name: &str, record_type: RecordType) -> Self {
            Query {
                name: name.to_string(),
                record_type,
                resolver: None,
                timeout_ms: 5_000,
            }
        }

        /// Asks this resolver (`ip` or `ip:port`) instead of the system one.
        pub fn resolver(mut self, resolver: Option<&str>) -> Self {
            self.resolver = resolver.map(str::to_string);
            self
        }

        /// Sets the timeout.
        pub fn timeout_ms(mut self, ms: u32) -> Self {
            self.timeout_ms = ms;
            self
        }

        /// Sends the query.
        pub fn resolve(&self) -> Result<Answer, CapError> {
            resolve(self)
        }
    }

    impl Answer {
        /// True when the response code is `NXDOMAIN`.
        pub fn is_nxdomain(&self) -> bool {
            self.response_code.eq_ignore_ascii_case("NXDOMAIN")
        }

        /// The values of the records of type `ty`.
        pub fn values_of(&self, ty: RecordType) -> impl Iterator<Item = &str> + '_ {
            self.records
                .iter()
                .filter(move |r| r.record_type == ty)
                .map(|r| r.value.as_str())
        }
    }

    impl RecordType {
        /// Every record type, in WIT order.
        pub const ALL: [RecordType; 10] = [
            RecordType::A,
            RecordType::Aaaa,
            RecordType::Cname,
            RecordType::Mx,
            RecordType::Txt,
            RecordType::Ns,
            RecordType::Soa,
            RecordType::Srv,
            RecordType::Caa,
            RecordType::Ptr,
        ];

        /// The usual upper-case mnemonic: `A`, `AAAA`, `MX`, …
        pub fn as_str(&self) -> &'static str {
            match self {
                RecordType::A => "A",
                RecordType::Aaaa => "AAAA",
                RecordType::Cname => "CNAME",
                RecordType::Mx => "MX",
                RecordType::Txt => "TXT",
                RecordType::Ns => "NS",
                RecordType::Soa => "SOA",
                RecordType::Srv => "SRV",
                RecordType::Caa => "CAA",
                RecordType::Ptr => "PTR",
            }
        }
    }

    impl fmt::Display for RecordType {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.as_str())
        }
    }

    impl FromStr for RecordType {
        type Err = String;

        /// Parses a mnemonic, case-insensitively.
        fn from_str(s: &str) -> Result<Self, String> {
            RecordType::ALL
                .into_iter()
                .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
                .ok_or_else(|| format!("unknown record type `{s}`"))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn record_types_round_trip() {
            for t in RecordType::ALL {
                assert_eq!(t.as_str().parse::<RecordType>(), Ok(t));
                assert_eq!(t.as_str().to_lowercase().parse::<RecordType>(), Ok(t));
            }
            assert!("AXFR".parse::<RecordType>().is_err());
        }
    }
}

/// Inspect a server's TLS certificate chain, even when it is invalid (capability `tls`).
pub mod tls {
    use crate::CapError;
    use crate::bindings::pharos::plugin::tls as wit;

    pub use wit::{InspectRequest, Report};

    /// Connects, performs a handshake and reports the chain without rejecting it.
    pub fn inspect(req: &InspectRequest) -> Result<Report, CapError> {
        #[cfg(target_arch = "wasm32")]
        {
            wit::inspect(req)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            crate::mock::call_tls(req)
        }
    }

    impl InspectRequest {
        /// Inspects `host:port` with `host` as server name and a 10 s timeout.
        pub fn new(host: &str, port: u16) -> Self {
            InspectRequest {
                host: host.to_string(),
                port,
                sni: None,
                timeout_ms: 10_000,
            }
        }

        /// Sends this server name instead of `host`.
        pub fn sni(mut self, sni: Option<&str>) -> Self {
            self.sni = sni.map(str::to_string);
            self
        }

        /// Sets the timeout.
        pub fn timeout_ms(mut self, ms: u32) -> Self {
            self.timeout_ms = ms;
            self
        }

        /// Performs the inspection.
        pub fn inspect(&self) -> Result<Report, CapError> {
            inspect(self)
        }
    }
}
