//! The `dns` capability: one query, asked for real, with the response code kept.
//!
//! Implementation choice: queries are built with hickory-proto and sent by this module over
//! UDP (retransmitted, falling back to TCP when the answer is truncated) instead of going
//! through hickory-resolver's `Resolver`. The resolver API turns NXDOMAIN / SERVFAIL /
//! REFUSED into errors and caches answers; a monitor needs the exact response code and a fresh
//! answer on every check. hickory-resolver is used only to read the system configuration
//! (`/etc/resolv.conf`) when no resolver is given. The system resolvers are the host
//! administrator's and are not subject to the SSRF guard; a resolver chosen by the plugin is
//! (so a loopback or private resolver needs `allow_private`), and it must be granted too.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as DnsQuery, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType as WireType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use super::policy::NetPolicy;
use super::resolve::unbracket;
use super::{effective_deadline, ms, within};
use crate::bindings::dns::{Answer, DnsRecord, Query, RecordType};
use crate::bindings::types::CapError;

/// How long to wait for a UDP answer before retransmitting (to the next resolver, if any).
const RETRANSMIT: Duration = Duration::from_millis(1000);
/// EDNS UDP payload size advertised (the DNS flag day 2020 recommendation).
const EDNS_PAYLOAD: u16 = 1232;
/// Largest UDP datagram accepted.
const MAX_UDP: usize = 4096;

/// Sends the query and returns the answer; NXDOMAIN, SERVFAIL and empty answers are `Ok`
/// with the matching `response_code`.
pub async fn resolve(policy: &NetPolicy, q: Query, deadline: Instant) -> Result<Answer, CapError> {
    let deadline = effective_deadline(deadline, q.timeout_ms);
    let name = query_name(&q.name, q.record_type)?;
    let servers = match &q.resolver {
        Some(spec) => {
            let addr = parse_resolver(spec)?;
            policy.check_host(&addr.ip().to_string())?;
            policy.check_ip(addr.ip())?;
            vec![addr]
        }
        None => system_resolvers()?,
    };

    let id = random_id();
    let mut msg = Message::new();
    msg.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(DnsQuery::query(name.clone(), wire_type(q.record_type)));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    msg.set_edns(edns);
    let bytes = msg
        .to_vec()
        .map_err(|e| CapError::InvalidRequest(format!("cannot encode a query for {name}: {e}")))?;

    let started = Instant::now();
    let what = || format!("DNS query for {} {:?}", q.name, q.record_type);
    let (response, server) = within(deadline, what, async {
        let (response, server) = exchange_udp(&servers, &bytes, id, &name, deadline).await?;
        if response.truncated() {
            let response = exchange_tcp(server, &bytes, id, &name).await?;
            return Ok((response, server));
        }
        Ok((response, server))
    })
    .await?;
    let duration_ms = ms(started.elapsed());

    let records = response.answers().iter().filter_map(to_record).collect();
    Ok(Answer {
        response_code: rcode_name(response.response_code()),
        records,
        duration_ms,
        resolver: server.to_string(),
    })
}

/// The name to ask for: for PTR an IP address becomes its `in-addr.arpa` / `ip6.arpa` name.
fn query_name(raw: &str, kind: RecordType) -> Result<Name, CapError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(CapError::InvalidRequest("the DNS name is empty".to_owned()));
    }
    if kind == RecordType::Ptr
        && let Ok(ip) = unbracket(raw).parse::<IpAddr>()
    {
        return Ok(Name::from(ip));
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CapError::InvalidRequest(format!(
            "invalid DNS name {raw:?}"
        )));
    }
    let mut name = Name::from_utf8(raw)
        .map_err(|e| CapError::InvalidRequest(format!("invalid DNS name {raw:?}: {e}")))?;
    name.set_fqdn(true);
    Ok(name)
}

/// Parses `ip`, `ip:port`, `[v6]` or `[v6]:port` (default port 53).
fn parse_resolver(spec: &str) -> Result<SocketAddr, CapError> {
    let spec = spec.trim();
    if let Ok(addr) = spec.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = unbracket(spec).parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(CapError::InvalidRequest(format!(
        "resolver {spec:?} is not an IP address or ip:port"
    )))
}

/// The UDP name servers of the system configuration, in order.
fn system_resolvers() -> Result<Vec<SocketAddr>, CapError> {
    let (config, _) = hickory_resolver::system_conf::read_system_conf().map_err(|e| {
        CapError::Dns(format!(
            "cannot read the system resolver configuration: {e}"
        ))
    })?;
    let mut servers: Vec<SocketAddr> = Vec::new();
    for ns in config.name_servers() {
        if !servers.contains(&ns.socket_addr) {
            servers.push(ns.socket_addr);
        }
    }
    if servers.is_empty() {
        return Err(CapError::Dns(
            "the system has no DNS resolver configured".to_owned(),
        ));
    }
    Ok(servers)
}

/// A query id that is hard to guess (SipHash with per-process random keys over a counter).
fn random_id() -> u16 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (RandomState::new().hash_one((n, nanos)) & 0xffff) as u16
}

/// Whether `msg` answers our query (id, response flag, same question).
fn is_answer_to(msg: &Message, id: u16, name: &Name) -> bool {
    msg.id() == id
        && msg.message_type() == MessageType::Response
        && msg
            .queries()
            .first()
            .is_none_or(|q| q.name().eq_ignore_root(name))
}

/// Sends over UDP, retransmitting every second and rotating through `servers`, until an
/// answer arrives. Replies from anyone else, or to another id, are ignored.
async fn exchange_udp(
    servers: &[SocketAddr],
    bytes: &[u8],
    id: u16,
    name: &Name,
    deadline: Instant,
) -> Result<(Message, SocketAddr), CapError> {
    let mut sockets: Vec<Option<UdpSocket>> = servers.iter().map(|_| None).collect();
    let mut dead = vec![false; servers.len()];
    let mut failed: Vec<String> = Vec::new();
    let mut attempt = 0usize;
    loop {
        if dead.iter().all(|d| *d) {
            return Err(CapError::Dns(format!(
                "no resolver answered: {}",
                failed.join("; ")
            )));
        }
        let i = attempt % servers.len();
        attempt += 1;
        let server = servers[i];
        if dead[i] {
            continue;
        }
        if sockets[i].is_none() {
            let bind: SocketAddr = if server.is_ipv4() {
                SocketAddr::from(([0, 0, 0, 0], 0))
            } else {
                SocketAddr::from(([0u16; 8], 0))
            };
            let socket = UdpSocket::bind(bind)
                .await
                .map_err(|e| CapError::Io(format!("opening a UDP socket: {e}")))?;
            if let Err(e) = socket.connect(server).await {
                failed.push(format!("{server}: {e}"));
                dead[i] = true;
                continue;
            }
            sockets[i] = Some(socket);
        }
        let Some(socket) = sockets[i].as_ref() else {
            continue;
        };
        if let Err(e) = socket.send(bytes).await {
            failed.push(format!("{server}: {e}"));
            dead[i] = true;
            continue;
        }
        let window = (Instant::now() + RETRANSMIT).min(deadline);
        let mut buf = vec![0u8; MAX_UDP];
        loop {
            match tokio::time::timeout_at(window, socket.recv(&mut buf)).await {
                Err(_) => break, // retransmit
                Ok(Err(e)) => {
                    failed.push(format!("{server}: {e}"));
                    dead[i] = true;
                    break;
                }
                Ok(Ok(n)) => {
                    let Ok(msg) = Message::from_vec(&buf[..n]) else {
                        continue;
                    };
                    if is_answer_to(&msg, id, name) {
                        return Ok((msg, server));
                    }
                }
            }
        }
        if Instant::now() >= deadline {
            // `within` in the caller reports the timeout.
            std::future::pending::<()>().await;
        }
    }
}

/// Repeats the query over TCP (after a truncated UDP answer).
async fn exchange_tcp(
    server: SocketAddr,
    bytes: &[u8],
    id: u16,
    name: &Name,
) -> Result<Message, CapError> {
    let fail = |e: std::io::Error| CapError::Dns(format!("DNS over TCP to {server} failed: {e}"));
    let mut tcp = TcpStream::connect(server).await.map_err(fail)?;
    let len = u16::try_from(bytes.len())
        .map_err(|_| CapError::InvalidRequest("the DNS query is too long".to_owned()))?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(bytes);
    tcp.write_all(&framed).await.map_err(fail)?;
    let mut len = [0u8; 2];
    tcp.read_exact(&mut len).await.map_err(fail)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    tcp.read_exact(&mut buf).await.map_err(fail)?;
    let msg = Message::from_vec(&buf)
        .map_err(|e| CapError::Protocol(format!("malformed DNS answer from {server}: {e}")))?;
    if !is_answer_to(&msg, id, name) {
        return Err(CapError::Protocol(format!(
            "the DNS answer from {server} does not match the query"
        )));
    }
    Ok(msg)
}

fn wire_type(t: RecordType) -> WireType {
    match t {
        RecordType::A => WireType::A,
        RecordType::Aaaa => WireType::AAAA,
        RecordType::Cname => WireType::CNAME,
        RecordType::Mx => WireType::MX,
        RecordType::Txt => WireType::TXT,
        RecordType::Ns => WireType::NS,
        RecordType::Soa => WireType::SOA,
        RecordType::Srv => WireType::SRV,
        RecordType::Caa => WireType::CAA,
        RecordType::Ptr => WireType::PTR,
    }
}

/// One answer record in presentation form; records of types outside the WIT enum are skipped.
fn to_record(r: &Record) -> Option<DnsRecord> {
    let (record_type, value) = match r.data() {
        RData::A(a) => (RecordType::A, a.to_string()),
        RData::AAAA(a) => (RecordType::Aaaa, a.to_string()),
        RData::CNAME(n) => (RecordType::Cname, n.to_string()),
        RData::MX(mx) => (RecordType::Mx, mx.to_string()),
        RData::TXT(txt) => (
            RecordType::Txt,
            txt.txt_data()
                .iter()
                .map(|part| String::from_utf8_lossy(part))
                .collect::<String>(),
        ),
        RData::NS(n) => (RecordType::Ns, n.to_string()),
        RData::SOA(soa) => (RecordType::Soa, soa.to_string()),
        RData::SRV(srv) => (RecordType::Srv, srv.to_string()),
        RData::CAA(caa) => (RecordType::Caa, caa.to_string()),
        RData::PTR(n) => (RecordType::Ptr, n.to_string()),
        _ => return None,
    };
    Some(DnsRecord {
        name: r.name().to_string(),
        record_type,
        ttl: r.ttl(),
        value,
    })
}

/// `NOERROR`, `NXDOMAIN`, … (the mnemonic from the IANA registry).
fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".to_owned(),
        ResponseCode::FormErr => "FORMERR".to_owned(),
        ResponseCode::ServFail => "SERVFAIL".to_owned(),
        ResponseCode::NXDomain => "NXDOMAIN".to_owned(),
        ResponseCode::NotImp => "NOTIMP".to_owned(),
        ResponseCode::Refused => "REFUSED".to_owned(),
        ResponseCode::YXDomain => "YXDOMAIN".to_owned(),
        ResponseCode::YXRRSet => "YXRRSET".to_owned(),
        ResponseCode::NXRRSet => "NXRRSET".to_owned(),
        ResponseCode::NotAuth => "NOTAUTH".to_owned(),
        ResponseCode::NotZone => "NOTZONE".to_owned(),
        ResponseCode::BADVERS => "BADVERS".to_owned(),
        ResponseCode::BADCOOKIE => "BADCOOKIE".to_owned(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::cert::testutil::{private, soon};
    use super::*;
    use hickory_proto::rr::rdata::{A, MX, TXT};
    use std::net::Ipv4Addr;
    use std::str::FromStr;

    /// A tiny authoritative server: A/MX/TXT for `example.test.`, NXDOMAIN otherwise; a
    /// query for `big.example.test.` gets a truncated UDP answer and the full one over TCP.
    async fn dns_server() -> SocketAddr {
        // UDP and TCP must share a port number; another test may hold the TCP side of the
        // port the kernel picked for UDP, so try again with a fresh one.
        let mut attempts = 0;
        let (udp, addr, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
            let addr = udp.local_addr().expect("addr");
            match tokio::net::TcpListener::bind(addr).await {
                Ok(tcp) => break (udp, addr, tcp),
                Err(_) if attempts < 50 => attempts += 1,
                Err(e) => panic!("bind tcp on {addr}: {e}"),
            }
        };
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let response = answer(&query, true);
                let bytes = response.to_vec().expect("encode");
                let _ = udp.send_to(&bytes, peer).await;
            }
        });
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = tcp.accept().await else {
                    return;
                };
                let mut len = [0u8; 2];
                if s.read_exact(&mut len).await.is_err() {
                    continue;
                }
                let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if s.read_exact(&mut buf).await.is_err() {
                    continue;
                }
                let Ok(query) = Message::from_vec(&buf) else {
                    continue;
                };
                let bytes = answer(&query, false).to_vec().expect("encode");
                let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
                out.extend(bytes);
                let _ = s.write_all(&out).await;
            }
        });
        addr
    }

    fn answer(query: &Message, udp: bool) -> Message {
        let mut m = Message::new();
        m.set_id(query.id())
            .set_message_type(MessageType::Response)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(query.recursion_desired())
            .set_recursion_available(true)
            .set_authoritative(true);
        let Some(q) = query.queries().first() else {
            m.set_response_code(ResponseCode::FormErr);
            return m;
        };
        m.add_query(q.clone());
        let zone = Name::from_str("example.test.").expect("name");
        let big = Name::from_str("big.example.test.").expect("name");
        let name = q.name().clone();
        if name == big {
            if udp {
                m.set_truncated(true);
            } else {
                for i in 0..40u8 {
                    m.add_answer(Record::from_rdata(
                        name.clone(),
                        60,
                        RData::A(A(Ipv4Addr::new(192, 0, 2, i))),
                    ));
                }
            }
            return m;
        }
        if name != zone {
            m.set_response_code(ResponseCode::NXDomain);
            return m;
        }
        let rdata = match q.query_type() {
            WireType::A => vec![RData::A(A(Ipv4Addr::new(192, 0, 2, 1)))],
            WireType::MX => vec![
                RData::MX(MX::new(10, Name::from_str("mx1.example.test.").expect("n"))),
                RData::MX(MX::new(20, Name::from_str("mx2.example.test.").expect("n"))),
            ],
            WireType::TXT => vec![RData::TXT(TXT::new(vec![
                "v=spf1 ".to_owned(),
                "-all".to_owned(),
            ]))],
            _ => vec![],
        };
        for r in rdata {
            m.add_answer(Record::from_rdata(name.clone(), 300, r));
        }
        m
    }

    fn query(name: &str, record_type: RecordType, server: SocketAddr) -> Query {
        Query {
            name: name.to_owned(),
            record_type,
            resolver: Some(server.to_string()),
            timeout_ms: 3000,
        }
    }

    #[tokio::test]
    async fn a_mx_txt() {
        let server = dns_server().await;
        let a = resolve(
            &private(),
            query("example.test", RecordType::A, server),
            soon(),
        )
        .await
        .expect("A");
        assert_eq!(a.response_code, "NOERROR");
        assert_eq!(a.resolver, server.to_string());
        assert_eq!(a.records.len(), 1);
        assert_eq!(a.records[0].name, "example.test.");
        assert_eq!(a.records[0].value, "192.0.2.1");
        assert_eq!(a.records[0].ttl, 300);
        assert_eq!(a.records[0].record_type, RecordType::A);
        assert!(a.duration_ms >= 0.0);

        let mx = resolve(
            &private(),
            query("example.test.", RecordType::Mx, server),
            soon(),
        )
        .await
        .expect("MX");
        let values: Vec<_> = mx.records.iter().map(|r| r.value.as_str()).collect();
        assert_eq!(values, ["10 mx1.example.test.", "20 mx2.example.test."]);

        let txt = resolve(
            &private(),
            query("EXAMPLE.test", RecordType::Txt, server),
            soon(),
        )
        .await
        .expect("TXT");
        assert_eq!(txt.records[0].value, "v=spf1 -all");
        assert_eq!(txt.records[0].record_type, RecordType::Txt);
    }

    #[tokio::test]
    async fn nxdomain_and_empty_are_ok() {
        let server = dns_server().await;
        let nx = resolve(
            &private(),
            query("nope.test", RecordType::A, server),
            soon(),
        )
        .await
        .expect("NXDOMAIN is an answer");
        assert_eq!(nx.response_code, "NXDOMAIN");
        assert!(nx.records.is_empty());
        let empty = resolve(
            &private(),
            query("example.test", RecordType::Srv, server),
            soon(),
        )
        .await
        .expect("no records is an answer");
        assert_eq!(empty.response_code, "NOERROR");
        assert!(empty.records.is_empty());
    }

    #[tokio::test]
    async fn truncated_falls_back_to_tcp() {
        let server = dns_server().await;
        let big = resolve(
            &private(),
            query("big.example.test", RecordType::A, server),
            soon(),
        )
        .await
        .expect("TCP fallback");
        assert_eq!(big.records.len(), 40);
    }

    #[tokio::test]
    async fn loopback_resolver_needs_allow_private() {
        let server = dns_server().await;
        let r = resolve(
            &NetPolicy::default(),
            query("example.test", RecordType::A, server),
            soon(),
        )
        .await;
        match r {
            Err(CapError::PolicyDenied(msg)) => assert!(msg.contains("127.0.0.1"), "{msg}"),
            other => panic!("expected PolicyDenied, got {other:?}"),
        }
        let narrowed = NetPolicy {
            allowed_hosts: Some(vec!["9.9.9.9".to_owned()]),
            ..private()
        };
        let r = resolve(
            &narrowed,
            query("example.test", RecordType::A, server),
            soon(),
        )
        .await;
        assert!(matches!(r, Err(CapError::NotGranted(_))), "{r:?}");
    }

    #[tokio::test]
    async fn silent_resolver_times_out() {
        // A bound UDP socket that never answers.
        let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let server = silent.local_addr().expect("addr");
        let mut q = query("example.test", RecordType::A, server);
        q.timeout_ms = 300;
        let started = Instant::now();
        let r = resolve(&private(), q, soon()).await;
        assert!(matches!(r, Err(CapError::Timeout(_))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(silent);
    }

    #[tokio::test]
    async fn closed_port_is_dns_error() {
        let port = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
            s.local_addr().expect("addr").port()
        };
        let server = SocketAddr::from(([127, 0, 0, 1], port));
        let r = resolve(
            &private(),
            query("example.test", RecordType::A, server),
            soon(),
        )
        .await;
        assert!(
            matches!(r, Err(CapError::Dns(_)) | Err(CapError::Timeout(_))),
            "{r:?}"
        );
    }

    #[test]
    fn names_and_resolvers() {
        let ptr = query_name("192.0.2.5", RecordType::Ptr).expect("ptr");
        assert_eq!(ptr.to_string(), "5.2.0.192.in-addr.arpa.");
        let ptr6 = query_name("2001:db8::1", RecordType::Ptr).expect("ptr6");
        assert!(
            ptr6.to_string().ends_with("8.b.d.0.1.0.0.2.ip6.arpa."),
            "{ptr6}"
        );
        assert_eq!(
            query_name("example.com", RecordType::A)
                .expect("n")
                .to_string(),
            "example.com."
        );
        assert!(matches!(
            query_name("", RecordType::A),
            Err(CapError::InvalidRequest(_))
        ));
        assert!(matches!(
            query_name("a b", RecordType::A),
            Err(CapError::InvalidRequest(_))
        ));

        assert_eq!(
            parse_resolver("1.1.1.1").expect("r"),
            "1.1.1.1:53".parse().expect("a")
        );
        assert_eq!(
            parse_resolver("1.1.1.1:5353").expect("r"),
            "1.1.1.1:5353".parse().expect("a")
        );
        assert_eq!(
            parse_resolver("[2606:4700::1111]:53").expect("r").port(),
            53
        );
        assert_eq!(parse_resolver("2606:4700::1111").expect("r").port(), 53);
        assert!(matches!(
            parse_resolver("dns.google"),
            Err(CapError::InvalidRequest(_))
        ));
        assert_eq!(rcode_name(ResponseCode::Refused), "REFUSED");
        assert_eq!(rcode_name(ResponseCode::ServFail), "SERVFAIL");
        let ids: Vec<u16> = (0..8).map(|_| random_id()).collect();
        assert!(ids.iter().any(|id| *id != ids[0]), "{ids:?}");
    }
}
