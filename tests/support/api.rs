//! An in-process Pharos server for API tests (`pharos::server::start` on 127.0.0.1 with a
//! temporary data directory) and a reqwest client speaking to it as the bootstrap admin.

use std::net::SocketAddr;
use std::time::Duration;

use pharos::config::ServeConfig;
use pharos::runtime::RuntimeConfig;
use pharos::server::RunningServer;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// The bootstrap admin token of every test server.
pub const ADMIN: &str = "phk_test_admin_token_0123456789abcdefghijklmn";

/// A server started for one test, with a client for its API.
pub struct TestServer {
    pub server: Option<RunningServer>,
    pub base: String,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// A response: status, headers and the body as JSON (or a JSON string of the text).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the error envelope: status, code and (when given) the field pointer.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str, field: Option<&str>) {
        assert_eq!(self.status, status, "{}", self.body);
        let error = &self.body["error"];
        assert_eq!(error["code"], code, "{}", self.body);
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.body
        );
        assert!(
            error.get("details").is_some(),
            "details key present: {}",
            self.body
        );
        match field {
            Some(f) => assert_eq!(error["field"], f, "{}", self.body),
            None => assert!(
                error.get("field").is_some(),
                "field key present: {}",
                self.body
            ),
        }
    }
}

pub async fn start(database_url: Option<String>) -> TestServer {
    start_with(database_url, |_| {}).await
}

pub async fn start_with(
    database_url: Option<String>,
    tweak: impl FnOnce(&mut ServeConfig),
) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServeConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.path().to_path_buf(),
        database_url,
        admin_token: Some(ADMIN.to_string()),
        allow_private_targets: true,
        shutdown_grace_secs: 5,
        runtime: RuntimeConfig {
            max_instances: Some(64),
            ..RuntimeConfig::default()
        },
        ..ServeConfig::default()
    };
    tweak(&mut config);
    let server = pharos::server::start(config).await.expect("server starts");
    let base = format!("http://{}", server.addr());
    TestServer {
        server: Some(server),
        base,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            // A fresh connection per request: a pooled one the server has just closed fails
            // the next request with `IncompleteMessage` (seen once in a CI rehearsal).
            .pool_max_idle_per_host(0)
            .build()
            .expect("client"),
        _dir: dir,
    }
}

impl TestServer {
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    /// POSTs an oversized body as the admin the way a robust client does: the body is written
    /// by its own task (a server that answers before reading it all may close the connection,
    /// which fails that write) while the response is read on the other half of the socket.
    /// Returns status and JSON body; the connection is closed after the response.
    pub async fn post_oversized(&self, path: &str, content_type: &str, body: Vec<u8>) -> Resp {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.base.trim_start_matches("http://").to_string();
        let stream = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let (mut rd, mut wr) = stream.into_split();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let writer = tokio::spawn(async move {
            // Errors are expected once the server has answered and closed.
            if wr.write_all(head.as_bytes()).await.is_ok() {
                let _ = wr.write_all(&body).await;
            }
        });
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(60), rd.read_to_end(&mut raw)).await;
        writer.abort();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
        let mut headers = HeaderMap::new();
        for line in head.lines().skip(1) {
            if let Some((k, v)) = line.split_once(':')
                && let (Ok(k), Ok(v)) = (
                    reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()),
                    reqwest::header::HeaderValue::from_str(v.trim()),
                )
            {
                headers.append(k, v);
            }
        }
        // The body may be chunked; the JSON envelope is the part between the braces.
        let json = match (body.find('{'), body.rfind('}')) {
            (Some(a), Some(b)) if a < b => {
                serde_json::from_str(&body[a..=b]).unwrap_or(Value::Null)
            }
            _ => Value::Null,
        };
        Resp {
            status,
            headers,
            body: json,
        }
    }

    /// A request as `key` (None: no Authorization header).
    pub async fn call(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.http.request(method, self.url(path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.send(req).await
    }

    /// A request without a body and without an Authorization header.
    pub async fn anon(&self, method: Method, path: &str) -> Resp {
        self.call(None, method, path, None).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Some(ADMIN), Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Some(ADMIN), Method::POST, path, Some(body)).await
    }

    pub async fn post_empty(&self, path: &str) -> Resp {
        self.call(Some(ADMIN), Method::POST, path, None).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.call(Some(ADMIN), Method::PATCH, path, Some(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.call(Some(ADMIN), Method::DELETE, path, None).await
    }

    /// A request as the admin with `content_type` and a raw body.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Resp {
        self.send(
            self.http
                .post(self.url(path))
                .bearer_auth(ADMIN)
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    /// A JSON POST as the admin, with an `Idempotency-Key` when `key` is given.
    pub async fn post_keyed(&self, path: &str, key: Option<&str>, body: &Value) -> Resp {
        let mut req = self.http.post(self.url(path)).bearer_auth(ADMIN).json(body);
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        self.send(req).await
    }

    /// `PATCH /api/v1/monitors/{id}` with `body`.
    pub async fn patch_monitor(&self, id: i64, body: Value) -> Resp {
        self.patch(&format!("/api/v1/monitors/{id}"), body).await
    }

    /// `POST /api/v1/monitors/{id}/check-now`.
    pub async fn check_now(&self, id: impl std::fmt::Display) -> Resp {
        self.post_empty(&format!("/api/v1/monitors/{id}/check-now"))
            .await
    }

    /// The `total` of a list endpoint.
    pub async fn total(&self, path: &str) -> Value {
        self.get(path).await.body["total"].clone()
    }

    /// Creates a monitor, asserting 201 and `Location`.
    pub async fn create(&self, body: Value) -> Value {
        let r = self.post("/api/v1/monitors", body).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.body["id"].as_i64().expect("id");
        assert_eq!(
            r.header("location"),
            Some(format!("/api/v1/monitors/{id}").as_str())
        );
        r.body
    }
}
