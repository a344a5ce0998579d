//! Real servers on 127.0.0.1 ephemeral ports: HTTP, HTTPS (self-signed), a TCP banner server
//! and a DNS server. Each stops when its handle is dropped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// A running server; aborted on drop.
pub struct Server {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Resp = http::Response<Full<Bytes>>;

fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Resp {
    http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-pharos-test", "yes")
        .body(Full::new(body.into()))
        .expect("response")
}

/// Routes: `/` 200 text; `/status/N`; `/json`; `/redirect/N` (N hops then `/`);
/// `/slow/MS`; `/big` (2 MiB body).
async fn route(req: http::Request<hyper::body::Incoming>) -> Result<Resp, Infallible> {
    let path = req.uri().path().to_string();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let resp = match parts.as_slice() {
        [""] => respond(200, "text/plain", "hello from pharos test server"),
        ["status", code] => respond(
            code.parse().unwrap_or(400),
            "text/plain",
            format!("status {code}"),
        ),
        ["json"] => respond(
            200,
            "application/json",
            r#"{"status":"ok","items":[1,2,3],"nested":{"version":"1.4.2","healthy":true}}"#,
        ),
        ["redirect", n] => {
            let n: u32 = n.parse().unwrap_or(0);
            let location = if n <= 1 {
                "/".to_string()
            } else {
                format!("/redirect/{}", n - 1)
            };
            http::Response::builder()
                .status(302)
                .header("location", location)
                .body(Full::new(Bytes::new()))
                .expect("redirect")
        }
        ["slow", ms] => {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
            respond(200, "text/plain", "slow")
        }
        ["big"] => respond(200, "application/octet-stream", vec![b'x'; 2 << 20]),
        _ => respond(404, "text/plain", "not found"),
    };
    Ok(resp)
}

/// A plain HTTP/1.1 server.
pub async fn http() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(route))
                    .await;
            });
        }
    });
    Server { addr, task }
}

/// A self-signed certificate for `localhost` and 127.0.0.1, valid for `days` from now
/// (negative: already expired).
pub fn self_signed(days: i64) -> (Vec<u8>, Vec<u8>) {
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("params");
    let now = time::OffsetDateTime::now_utc();
    if days >= 0 {
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(days);
    } else {
        params.not_before = now - time::Duration::days(30);
        params.not_after = now + time::Duration::days(days);
    }
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pharos test");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    (cert.der().to_vec(), key.serialize_der())
}

fn tls_acceptor(days: i64) -> tokio_rustls::TlsAcceptor {
    let (cert, key) = self_signed(days);
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

/// An HTTPS server with a self-signed certificate valid for `days` more days.
pub async fn https(days: i64) -> Server {
    let acceptor = tls_acceptor(days);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service_fn(route))
                    .await;
            });
        }
    });
    Server { addr, task }
}

/// A line-based TCP server: greets with `220 pharos-test ready`, answers `PING` with `PONG`,
/// echoes other lines as `ECHO <line>`, closes on `QUIT`.
pub async fn banner() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                if write.write_all(b"220 pharos-test ready\r\n").await.is_err() {
                    return;
                }
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let reply = match line.trim() {
                        "PING" => "PONG\r\n".to_string(),
                        "QUIT" => break,
                        other => format!("ECHO {other}\r\n"),
                    };
                    if write.write_all(reply.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Server { addr, task }
}

/// A DNS server over UDP. Zone: `app.pharos.test.` A 192.0.2.10 and 192.0.2.11, AAAA 2001:db8::10,
/// MX `10 mail.pharos.test.`, TXT `v=spf1 -all`, CNAME `www.pharos.test.` → `app.pharos.test.`;
/// every other name is NXDOMAIN.
pub async fn dns() -> Server {
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, TXT};
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut reply = Message::new();
            reply
                .set_id(query.id())
                .set_message_type(MessageType::Response)
                .set_op_code(query.op_code());
            reply
                .set_recursion_desired(query.recursion_desired())
                .set_recursion_available(true);
            reply.set_authoritative(true);
            if let Some(q) = query.queries().first() {
                reply.add_query(q.clone());
                let name = q.name().to_ascii().to_lowercase();
                let owner = q.name().clone();
                let rec = |data: RData| Record::from_rdata(owner.clone(), 300, data);
                let answers: Option<Vec<Record>> = match (name.as_str(), q.query_type()) {
                    ("app.pharos.test.", RecordType::A) => Some(vec![
                        rec(RData::A(A::new(192, 0, 2, 10))),
                        rec(RData::A(A::new(192, 0, 2, 11))),
                    ]),
                    ("app.pharos.test.", RecordType::AAAA) => Some(vec![rec(RData::AAAA(
                        AAAA::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10),
                    ))]),
                    ("app.pharos.test.", RecordType::MX) => Some(vec![rec(RData::MX(MX::new(
                        10,
                        Name::from_ascii("mail.pharos.test.").expect("name"),
                    )))]),
                    ("app.pharos.test.", RecordType::TXT) => {
                        Some(vec![rec(RData::TXT(TXT::new(vec![
                            "v=spf1 -all".to_string(),
                        ])))])
                    }
                    ("www.pharos.test.", _) => Some(vec![rec(RData::CNAME(CNAME(
                        Name::from_ascii("app.pharos.test.").expect("name"),
                    )))]),
                    ("app.pharos.test.", _) => Some(vec![]),
                    _ => None,
                };
                match answers {
                    Some(list) => {
                        for r in list {
                            reply.add_answer(r);
                        }
                    }
                    None => {
                        reply.set_response_code(ResponseCode::NXDomain);
                    }
                }
            }
            if let Ok(bytes) = reply.to_vec() {
                let _ = socket.send_to(&bytes, peer).await;
            }
        }
    });
    Server { addr, task }
}
