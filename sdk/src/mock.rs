//! Native stand-ins for the host capabilities, for unit tests (absent on wasm32).
//!
//! Each thread has its own handlers, so parallel tests do not interfere. Without a handler a
//! capability call fails with [`CapError::NotGranted`].
//!
//! ```ignore
//! pharos_sdk::mock::http(|req| Ok(http::Response::new(200, "ok")));
//! let out = pharos_sdk::run_check::<MyCheck>(r#"{"url":"https://x/"}"#, &Context::for_test(5000));
//! ```

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use crate::dns::{Answer, Query};
use crate::http::{Request, Response};
use crate::log::Level;
use crate::smtp::{Message, SendError, Sent, Server};
use crate::tcp::{ConnectInfo, ConnectOptions};
use crate::tls::{InspectRequest, Report};
use crate::{CapError, CertSummary};

type Handler<Req, Resp> = Box<dyn FnMut(&Req) -> Result<Resp, CapError>>;
type SmtpHandler = Box<dyn FnMut(&Server, &Message) -> Result<Sent, SendError>>;

thread_local! {
    static HTTP: RefCell<Option<Handler<Request, Response>>> = const { RefCell::new(None) };
    static DNS: RefCell<Option<Handler<Query, Answer>>> = const { RefCell::new(None) };
    static TLS: RefCell<Option<Handler<InspectRequest, Report>>> = const { RefCell::new(None) };
    static TCP: RefCell<Option<Handler<ConnectOptions, Box<dyn MockConnection>>>> = const { RefCell::new(None) };
    static SMTP: RefCell<Option<SmtpHandler>> = const { RefCell::new(None) };
    static LOGS: RefCell<Vec<(Level, String)>> = const { RefCell::new(Vec::new()) };
}

/// Answers `http::send` on this thread with `handler`.
pub fn http(handler: impl FnMut(&Request) -> Result<Response, CapError> + 'static) {
    HTTP.with(|h| *h.borrow_mut() = Some(Box::new(handler)));
}

/// Answers `dns::resolve` on this thread with `handler`.
pub fn dns(handler: impl FnMut(&Query) -> Result<Answer, CapError> + 'static) {
    DNS.with(|h| *h.borrow_mut() = Some(Box::new(handler)));
}

/// Answers `tls::inspect` on this thread with `handler`.
pub fn tls(handler: impl FnMut(&InspectRequest) -> Result<Report, CapError> + 'static) {
    TLS.with(|h| *h.borrow_mut() = Some(Box::new(handler)));
}

/// Answers `tcp::connect` on this thread with `handler` (see [`ScriptedConnection`]).
pub fn tcp(
    handler: impl FnMut(&ConnectOptions) -> Result<Box<dyn MockConnection>, CapError> + 'static,
) {
    TCP.with(|h| *h.borrow_mut() = Some(Box::new(handler)));
}

/// Answers `smtp::send` on this thread with `handler`.
pub fn smtp(handler: impl FnMut(&Server, &Message) -> Result<Sent, SendError> + 'static) {
    SMTP.with(|h| *h.borrow_mut() = Some(Box::new(handler)));
}

/// Removes every handler and the recorded log lines of this thread.
pub fn reset() {
    HTTP.with(|h| *h.borrow_mut() = None);
    DNS.with(|h| *h.borrow_mut() = None);
    TLS.with(|h| *h.borrow_mut() = None);
    TCP.with(|h| *h.borrow_mut() = None);
    SMTP.with(|h| *h.borrow_mut() = None);
    LOGS.with(|l| l.borrow_mut().clear());
}

/// The lines logged on this thread so far.
pub fn logs() -> Vec<(Level, String)> {
    LOGS.with(|l| l.borrow().clone())
}

fn missing(cap: &str) -> CapError {
    CapError::NotGranted(format!(
        "no mock handler installed for `{cap}` (native build)"
    ))
}

pub(crate) fn call_http(req: &Request) -> Result<Response, CapError> {
    HTTP.with(|h| match h.borrow_mut().as_mut() {
        Some(f) => f(req),
        None => Err(missing("http")),
    })
}

pub(crate) fn call_dns(q: &Query) -> Result<Answer, CapError> {
    DNS.with(|h| match h.borrow_mut().as_mut() {
        Some(f) => f(q),
        None => Err(missing("dns")),
    })
}

pub(crate) fn call_tls(req: &InspectRequest) -> Result<Report, CapError> {
    TLS.with(|h| match h.borrow_mut().as_mut() {
        Some(f) => f(req),
        None => Err(missing("tls")),
    })
}

pub(crate) fn call_tcp(options: &ConnectOptions) -> Result<Box<dyn MockConnection>, CapError> {
    TCP.with(|h| match h.borrow_mut().as_mut() {
        Some(f) => f(options),
        None => Err(missing("tcp")),
    })
}

pub(crate) fn call_smtp(server: &Server, message: &Message) -> Result<Sent, SendError> {
    SMTP.with(|h| match h.borrow_mut().as_mut() {
        Some(f) => f(server, message),
        None => Err(SendError::Cap(missing("smtp"))),
    })
}

pub(crate) fn call_log(level: Level, message: &str) {
    LOGS.with(|l| l.borrow_mut().push((level, message.to_string())));
}

/// A fake TCP connection, standing in for the host's `connection` resource.
pub trait MockConnection {
    /// Address, timings and certificate of the connection.
    fn info(&self) -> ConnectInfo;
    /// Writes all of `data`.
    fn send(&self, data: &[u8], timeout_ms: u32) -> Result<(), CapError>;
    /// Reads what arrives next, at most `max_bytes`; empty at end of stream.
    fn receive(&self, max_bytes: u32, timeout_ms: u32) -> Result<Vec<u8>, CapError>;
    /// Reads one line without its line ending; `None` at end of stream.
    fn read_line(&self, max_bytes: u32, timeout_ms: u32) -> Result<Option<String>, CapError>;
    /// Performs a TLS handshake (STARTTLS).
    fn upgrade_tls(
        &self,
        sni: Option<&str>,
        verify_tls: bool,
        timeout_ms: u32,
    ) -> Result<Option<CertSummary>, CapError>;
}

/// One step of what a [`ScriptedConnection`] delivers when read.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// These bytes arrive (split by `max_bytes` of the reads).
    Data(Vec<u8>),
    /// The next read fails with this error.
    Fail(CapError),
}

/// A connection that replays scripted incoming data and records what is sent.
///
/// After the script runs out, reads report end of stream (or time out, with
/// [`ScriptedConnection::hang_at_end`]).
#[derive(Clone)]
pub struct ScriptedConnection {
    info: ConnectInfo,
    incoming: Rc<RefCell<VecDeque<Incoming>>>,
    sent: Rc<RefCell<Vec<u8>>>,
    hang_at_end: bool,
    tls_cert: Option<CertSummary>,
}

impl ScriptedConnection {
    /// A connection to `remote_addr` with the given timings and nothing to read yet.
    pub fn new(info: ConnectInfo) -> Self {
        ScriptedConnection {
            info,
            incoming: Rc::new(RefCell::new(VecDeque::new())),
            sent: Rc::new(RefCell::new(Vec::new())),
            hang_at_end: false,
            tls_cert: None,
        }
    }

    /// Queues bytes to be read.
    pub fn then_data(self, data: impl Into<Vec<u8>>) -> Self {
        self.incoming
            .borrow_mut()
            .push_back(Incoming::Data(data.into()));
        self
    }

    /// Queues a failing read.
    pub fn then_fail(self, err: CapError) -> Self {
        self.incoming.borrow_mut().push_back(Incoming::Fail(err));
        self
    }

    /// Once the script is exhausted, reads time out instead of reporting end of stream.
    pub fn hang_at_end(mut self) -> Self {
        self.hang_at_end = true;
        self
    }

    /// The certificate that `upgrade_tls` returns.
    pub fn with_tls_cert(mut self, cert: CertSummary) -> Self {
        self.tls_cert = Some(cert);
        self
    }

    /// A handle on the bytes sent so far (shared with clones).
    pub fn sent(&self) -> Rc<RefCell<Vec<u8>>> {
        Rc::clone(&self.sent)
    }

    fn next_chunk(&self, max: usize, timeout_ms: u32) -> Result<Vec<u8>, CapError> {
        let mut queue = self.incoming.borrow_mut();
        match queue.pop_front() {
            Some(Incoming::Data(mut data)) => {
                if data.len() > max {
                    let rest = data.split_off(max);
                    queue.push_front(Incoming::Data(rest));
                }
                Ok(data)
            }
            Some(Incoming::Fail(err)) => Err(err),
            None if self.hang_at_end => {
                Err(CapError::Timeout(format!("no data within {timeout_ms} ms")))
            }
            None => Ok(Vec::new()),
        }
    }
}

impl MockConnection for ScriptedConnection {
    fn info(&self) -> ConnectInfo {
        self.info.clone()
    }

    fn send(&self, data: &[u8], _timeout_ms: u32) -> Result<(), CapError> {
        self.sent.borrow_mut().extend_from_slice(data);
        Ok(())
    }

    fn receive(&self, max_bytes: u32, timeout_ms: u32) -> Result<Vec<u8>, CapError> {
        self.next_chunk(
            usize::try_from(max_bytes).unwrap_or(usize::MAX).max(1),
            timeout_ms,
        )
    }

    fn read_line(&self, max_bytes: u32, timeout_ms: u32) -> Result<Option<String>, CapError> {
        let mut line = Vec::new();
        loop {
            let byte = self.next_chunk(1, timeout_ms)?;
            match byte.first() {
                None if line.is_empty() => return Ok(None),
                None | Some(b'\n') => break,
                Some(&b) => line.push(b),
            }
            if line.len() >= usize::try_from(max_bytes).unwrap_or(usize::MAX) {
                return Err(CapError::TooLarge(format!(
                    "line longer than {max_bytes} bytes"
                )));
            }
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some(String::from_utf8_lossy(&line).into_owned()))
    }

    fn upgrade_tls(
        &self,
        _sni: Option<&str>,
        _verify_tls: bool,
        _timeout_ms: u32,
    ) -> Result<Option<CertSummary>, CapError> {
        Ok(self.tls_cert.clone())
    }
}

/// A [`ConnectInfo`] for tests: `192.0.2.1:<port>` with the given connect time.
pub fn connect_info(port: u16, connect_ms: f64) -> ConnectInfo {
    ConnectInfo {
        remote_addr: format!("192.0.2.1:{port}"),
        timings: crate::PhaseTimings {
            connect_ms: Some(connect_ms),
            total_ms: Some(connect_ms),
            ..Default::default()
        },
        peer_certificate: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{dns, http, tcp};

    #[test]
    fn handlers_answer_calls_and_reset_removes_them() {
        reset();
        assert!(matches!(
            http::Request::get("https://x/").send(),
            Err(CapError::NotGranted(_))
        ));
        http(|req| Ok(http::Response::new(201, req.url.clone())));
        let resp = http::Request::get("https://x/").send().unwrap();
        assert_eq!(
            (resp.status, resp.text().into_owned()),
            (201, "https://x/".to_string())
        );

        dns(|q| {
            Ok(dns::Answer {
                response_code: "NXDOMAIN".into(),
                records: vec![],
                duration_ms: 1.0,
                resolver: q.resolver.clone().unwrap_or_default(),
            })
        });
        let answer = dns::Query::new("x.", dns::RecordType::A)
            .resolver(Some("9.9.9.9"))
            .resolve()
            .unwrap();
        assert!(answer.is_nxdomain());
        assert_eq!(answer.resolver, "9.9.9.9");

        crate::info!("hello {}", 42);
        assert_eq!(logs().len(), 1);
        assert_eq!(logs()[0].1, "hello 42");
        reset();
        assert!(logs().is_empty());
        assert!(dns::Query::new("x.", dns::RecordType::A).resolve().is_err());
    }

    #[test]
    fn scripted_connection_replays_and_records() {
        let script = ScriptedConnection::new(connect_info(25, 3.0))
            .then_data("220 mail ESMTP\r\n250-one\r\n")
            .then_data("250 two\r\n")
            .then_fail(CapError::Io("reset".into()));
        let sent = script.sent();
        tcp(move |_| Ok(Box::new(script.clone())));
        let conn = tcp::ConnectOptions::new("mail.example", 25)
            .connect()
            .unwrap();
        assert_eq!(conn.info().remote_addr, "192.0.2.1:25");
        conn.send(b"EHLO x\r\n", 100).unwrap();
        assert_eq!(sent.borrow().as_slice(), b"EHLO x\r\n");
        assert_eq!(
            conn.read_line(100, 100).unwrap().as_deref(),
            Some("220 mail ESMTP")
        );
        assert_eq!(conn.receive(4, 100).unwrap(), b"250-");
        let got = conn
            .read_until(|d| d.ends_with(b"two\r\n"), 1000, 100)
            .unwrap();
        assert!(got.matched);
        assert_eq!(got.data, b"one\r\n250 two\r\n");
        assert!(matches!(conn.receive(10, 10), Err(CapError::Io(_))));
        assert_eq!(conn.receive(10, 10).unwrap(), b"");
        reset();
    }

    #[test]
    fn read_until_stops_at_eof_timeout_and_size() {
        let eof = ScriptedConnection::new(connect_info(1, 1.0)).then_data("abc");
        tcp(move |_| Ok(Box::new(eof.clone())));
        let conn = tcp::ConnectOptions::new("h", 1).connect().unwrap();
        let got = conn.read_until(|d| d.ends_with(b"z"), 100, 100).unwrap();
        assert!(got.eof && !got.matched && !got.timed_out);

        let hang = ScriptedConnection::new(connect_info(1, 1.0))
            .then_data("abc")
            .hang_at_end();
        tcp(move |_| Ok(Box::new(hang.clone())));
        let conn = tcp::ConnectOptions::new("h", 1).connect().unwrap();
        let got = conn.read_until(|d| d.ends_with(b"z"), 100, 100).unwrap();
        assert!(got.timed_out && !got.eof && got.data == b"abc");

        let big = ScriptedConnection::new(connect_info(1, 1.0)).then_data("abcdefgh");
        tcp(move |_| Ok(Box::new(big.clone())));
        let conn = tcp::ConnectOptions::new("h", 1).connect().unwrap();
        let got = conn.read_until(|_| false, 5, 100).unwrap();
        assert!(got.full && got.data == b"abcde");
        reset();
    }
}
