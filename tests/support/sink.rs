//! A recording HTTP sink on 127.0.0.1: stores every request it receives and answers from a
//! script (a queue of responses, then a default), for notifier tests.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// One request as the sink received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query, e.g. `/hooks/abc?x=1`.
    pub path: String,
    /// Header names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status the sink answered with.
    pub answered: u16,
    pub at: std::time::Instant,
}

impl Received {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON (panics in the test when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("sink body is not JSON ({e}): {}", self.text()))
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub content_type: String,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    /// `status` with a JSON body.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Reply {
            status,
            body: body.to_string(),
            content_type: "application/json".into(),
            delay: Duration::ZERO,
        }
    }

    /// `status` with a text body.
    pub fn text(status: u16, body: &str) -> Self {
        Reply {
            status,
            body: body.into(),
            content_type: "text/plain".into(),
            delay: Duration::ZERO,
        }
    }

    /// The same reply after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    script: VecDeque<Reply>,
    default: Option<Reply>,
}

/// A running sink; aborted on drop.
pub struct Sink {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sink {
    /// Starts a sink answering `200 {"ok":true}` unless scripted otherwise.
    pub async fn start() -> Sink {
        Sink::start_on("127.0.0.1:0").await
    }

    /// Starts a sink on a given address (e.g. a port that a restarted test reuses).
    pub async fn start_on(addr: &str) -> Sink {
        let listener = TcpListener::bind(addr).await.expect("bind sink");
        let addr = listener.local_addr().expect("sink addr");
        let state = Arc::new(Mutex::new(State::default()));
        let arrived = Arc::new(Notify::new());
        let (st, ar) = (state.clone(), arrived.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (st, ar) = (st.clone(), ar.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, st.clone(), ar.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Sink {
            addr,
            state,
            arrived,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests with these replies, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.lock().script.extend(replies);
    }

    /// Answers with `reply` once the script is used up.
    pub fn set_default(&self, reply: Reply) {
        self.lock().default = Some(reply);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Requests answered with a 2xx status.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }

    /// Waits until at least `n` requests arrived (panics after `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "sink got {} request(s) within {timeout:?}, wanted {n}: {:#?}",
                    got.len(),
                    got.iter().map(|r| r.text()).collect::<Vec<_>>()
                );
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn handle(
    req: http::Request<hyper::body::Incoming>,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => Vec::new(),
    };
    let reply = {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.script
            .pop_front()
            .or_else(|| st.default.clone())
            .unwrap_or_else(|| Reply::json(200, serde_json::json!({"ok": true})))
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.received.push(Received {
            method,
            path,
            headers,
            body,
            answered: reply.status,
            at: std::time::Instant::now(),
        });
    }
    arrived.notify_waiters();
    let resp = http::Response::builder()
        .status(reply.status)
        .header("content-type", reply.content_type)
        .body(Full::new(Bytes::from(reply.body)))
        .unwrap_or_else(|_| http::Response::new(Full::new(Bytes::new())));
    Ok(resp)
}
