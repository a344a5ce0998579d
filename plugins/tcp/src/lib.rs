//! The `tcp` check: connects to `host:port` (optionally over TLS), optionally sends a payload
//! and optionally waits for an expected banner or response.
//!
//! - Config → [`Plan`] ([`Plan::from_config`]); the matcher and timeouts are pure.
//! - [`run`] is the thin capability layer (connect, send, read); [`judge`] turns what happened
//!   into an outcome.
//!
//! Verdict: connection failure → `down` (`error` for policy/grant problems); expected data
//! not received (timeout, end of stream, `max_read_bytes` exhausted) → `down`; slower than
//! `degraded_above_ms` → `degraded`; else `up`.

use std::time::Instant;

use pharos_sdk::tcp::{ConnectInfo, ConnectOptions, ReadUntil};
use pharos_sdk::{CapError, Check, Context, Info, Outcome, PhaseTimings, serde_json};
use regex_lite::Regex;
use serde::Deserialize;
use serde_json::{Value, json};

/// Default timeout of the whole exchange.
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;
/// Default cap on the bytes read while waiting for the expected data.
pub const DEFAULT_MAX_READ_BYTES: u32 = 64 * 1024;

/// The `tcp` plugin's config; see [`schema`] for the documentation of each field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Timeout of connect + send + receive.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u32,
    /// Perform a TLS handshake after connecting.
    #[serde(default)]
    pub tls: bool,
    /// TLS server name instead of `host`.
    #[serde(default)]
    pub sni: Option<String>,
    /// Reject invalid certificates.
    #[serde(default = "yes")]
    pub verify_tls: bool,
    /// Payload to send after connecting.
    #[serde(default)]
    pub send: Option<String>,
    /// Substring the received data must contain.
    #[serde(default)]
    pub expect: Option<String>,
    /// Regex the received data must match.
    #[serde(default)]
    pub expect_regex: Option<String>,
    /// Bytes read at most while waiting for `expect`/`expect_regex`.
    #[serde(default = "default_max_read")]
    pub max_read_bytes: u32,
    /// Report `degraded` when the check takes longer.
    #[serde(default)]
    pub degraded_above_ms: Option<u32>,
}

fn default_timeout() -> u32 {
    DEFAULT_TIMEOUT_MS
}
fn default_max_read() -> u32 {
    DEFAULT_MAX_READ_BYTES
}
fn yes() -> bool {
    true
}

/// What the received data must contain.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// A substring (bytes).
    Substring(String),
    /// A regex over the text (invalid UTF-8 replaced).
    Regex(Regex),
}

impl Matcher {
    /// True when `data` satisfies the matcher.
    pub fn matches(&self, data: &[u8]) -> bool {
        match self {
            Matcher::Substring(s) => contains(data, s.as_bytes()),
            Matcher::Regex(re) => re.is_match(&String::from_utf8_lossy(data)),
        }
    }

    /// `"220"` or `/^SSH-2\.0/` for messages.
    pub fn describe(&self) -> String {
        match self {
            Matcher::Substring(s) => format!("{s:?}"),
            Matcher::Regex(re) => format!("/{}/", re.as_str()),
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// A validated config.
#[derive(Debug, Clone)]
pub struct Plan {
    /// How to connect (timeout set per run).
    pub options: ConnectOptions,
    /// Bytes to send after connecting.
    pub send: Option<Vec<u8>>,
    /// What to wait for.
    pub matcher: Option<Matcher>,
    /// Bytes read at most.
    pub max_read_bytes: u32,
    /// Timeout of the whole exchange.
    pub timeout_ms: u32,
    /// Slowness threshold.
    pub degraded_above_ms: Option<u32>,
}

impl Plan {
    /// Validates `config`; errors are config errors naming the field.
    pub fn from_config(config: &Config) -> Result<Plan, String> {
        let host = config.host.trim();
        if host.is_empty() {
            return Err("host: must not be empty".into());
        }
        if host.contains(['/', ' ']) {
            return Err(format!("host: `{host}` is not a host name or IP address"));
        }
        if config.port == 0 {
            return Err("port: must be 1-65535".into());
        }
        if config.timeout_ms == 0 {
            return Err("timeout_ms: must be at least 1".into());
        }
        if config.max_read_bytes == 0 {
            return Err("max_read_bytes: must be at least 1".into());
        }
        if config.sni.is_some() && !config.tls {
            return Err("sni: only meaningful with tls: true".into());
        }
        let matcher = match (&config.expect, &config.expect_regex) {
            (Some(_), Some(_)) => return Err("set `expect` or `expect_regex`, not both".into()),
            (Some(s), None) if s.is_empty() => return Err("expect: must not be empty".into()),
            (Some(s), None) => Some(Matcher::Substring(s.clone())),
            (None, Some(r)) => {
                Some(Matcher::Regex(Regex::new(r).map_err(|e| {
                    format!("expect_regex: invalid regex `{r}`: {e}")
                })?))
            }
            (None, None) => None,
        };
        let options = ConnectOptions::new(host, config.port)
            .tls(config.tls)
            .sni(config.sni.as_deref())
            .verify_tls(config.verify_tls)
            .timeout_ms(config.timeout_ms);
        Ok(Plan {
            options,
            send: config.send.as_ref().map(|s| s.as_bytes().to_vec()),
            matcher,
            max_read_bytes: config.max_read_bytes,
            timeout_ms: config.timeout_ms,
            degraded_above_ms: config.degraded_above_ms,
        })
    }

    /// `host:port`, bracketing IPv6 literals.
    pub fn target(&self) -> String {
        if self.options.host.contains(':') {
            format!("[{}]:{}", self.options.host, self.options.port)
        } else {
            format!("{}:{}", self.options.host, self.options.port)
        }
    }
}

/// What [`run`] observed.
#[derive(Debug, Clone)]
pub struct Observed {
    /// Connection info from the host.
    pub info: ConnectInfo,
    /// Time spent sending and receiving after the connection was up.
    pub exchange_ms: f64,
    /// The failure of sending, if it failed.
    pub send_error: Option<CapError>,
    /// What was read, when a matcher was configured and sending worked.
    pub read: Option<Result<ReadUntil, CapError>>,
}

/// Formats milliseconds for messages: `3.2 ms` below 10 ms, else whole milliseconds.
pub fn fmt_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// The received bytes shown in messages: lossy UTF-8, escaped, at most `max` characters.
pub fn snippet(data: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(data);
    let escaped: String = text
        .chars()
        .take(max)
        .collect::<String>()
        .escape_debug()
        .to_string();
    if text.chars().count() > max {
        format!("\"{escaped}…\"")
    } else {
        format!("\"{escaped}\"")
    }
}

/// Judges what [`run`] observed.
pub fn judge(plan: &Plan, obs: &Observed) -> Outcome {
    let connect_total = obs.info.timings.total_ms.unwrap_or(0.0);
    let total = connect_total + obs.exchange_ms;
    let timings = PhaseTimings {
        total_ms: Some(total),
        ..obs.info.timings
    };
    let target = plan.target();
    let what = if plan.options.tls {
        "TLS connection"
    } else {
        "connected"
    };

    let mut details = json!({"remote_addr": obs.info.remote_addr, "target": target});
    let mut received_bytes = None;
    let verdict = if let Some(err) = &obs.send_error {
        Outcome::new(err.status(), format!("sending to {target} failed: {err}"))
    } else if let (Some(matcher), Some(read)) = (&plan.matcher, &obs.read) {
        match read {
            Err(err) => Outcome::new(err.status(), format!("reading from {target} failed: {err}")),
            Ok(r) => {
                received_bytes = Some(r.data.len());
                details["received"] = Value::String(
                    String::from_utf8_lossy(&r.data[..r.data.len().min(1024)]).into_owned(),
                );
                details["matched"] = Value::Bool(r.matched);
                let got = snippet(&r.data, 120);
                if r.matched {
                    slow_or_up(
                        plan,
                        total,
                        format!(
                            "{} matched in {} ({target})",
                            matcher.describe(),
                            fmt_ms(total)
                        ),
                    )
                } else if r.timed_out {
                    Outcome::down(format!(
                        "{} not received within {} ms from {target} (got {got})",
                        matcher.describe(),
                        plan.timeout_ms
                    ))
                } else if r.eof {
                    Outcome::down(format!(
                        "{target} closed the connection before {} (got {got})",
                        matcher.describe()
                    ))
                } else {
                    Outcome::down(format!(
                        "{} not found in the first {} bytes from {target} (got {got})",
                        matcher.describe(),
                        r.data.len()
                    ))
                }
            }
        }
    } else {
        slow_or_up(
            plan,
            total,
            format!("{what} to {target} in {}", fmt_ms(total)),
        )
    };

    let mut out = verdict.latency_ms(total).timings(timings);
    if let Some(ms) = obs.info.timings.connect_ms {
        out = out.metric("connect_ms", ms);
    }
    if let Some(ms) = obs.info.timings.tls_ms {
        out = out.metric("tls_ms", ms);
    }
    if plan.send.is_some() || plan.matcher.is_some() {
        out = out.metric("response_ms", obs.exchange_ms);
    }
    if let Some(n) = received_bytes {
        out = out.metric("bytes_received", n as f64);
    }
    if let Some(cert) = &obs.info.peer_certificate {
        out = out.metric("tls_days_remaining", f64::from(cert.days_remaining));
        details["tls"] = json!({
            "subject": cert.subject,
            "issuer": cert.issuer,
            "not_after": cert.not_after,
            "days_remaining": cert.days_remaining,
        });
    }
    out.details(details)
}

fn slow_or_up(plan: &Plan, total: f64, message: String) -> Outcome {
    match plan.degraded_above_ms {
        Some(limit) if total > f64::from(limit) => {
            Outcome::degraded(format!("{message} (slower than {limit} ms)"))
        }
        _ => Outcome::up(message),
    }
}

/// Milliseconds left of the plan's timeout, capped by the check deadline.
fn left(plan: &Plan, ctx: &Context) -> u32 {
    let used = ctx.elapsed_ms().max(0.0) as u32;
    ctx.budget_ms(plan.timeout_ms.saturating_sub(used))
}

/// The thin capability layer: connect, send, read. `Err` when the connection failed.
pub fn run(plan: &Plan, ctx: &Context) -> Result<Observed, CapError> {
    let options = plan.options.clone().timeout_ms(left(plan, ctx));
    let conn = options.connect()?;
    let info = conn.info();
    let started = Instant::now();
    let mut obs = Observed {
        info,
        exchange_ms: 0.0,
        send_error: None,
        read: None,
    };
    if let Some(payload) = &plan.send
        && let Err(e) = conn.send(payload, left(plan, ctx))
    {
        obs.send_error = Some(e);
    }
    if obs.send_error.is_none()
        && let Some(matcher) = &plan.matcher
    {
        obs.read = Some(conn.read_until(
            |data| matcher.matches(data),
            plan.max_read_bytes,
            left(plan, ctx),
        ));
    }
    obs.exchange_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(obs)
}

/// The JSON Schema of the config (`schema.json` beside `Cargo.toml`), sent as-is by `describe()`.
pub const SCHEMA: &str = include_str!("../schema.json");

/// [`SCHEMA`] parsed, for tests.
#[cfg(test)]
pub fn schema() -> Value {
    serde_json::from_str(SCHEMA).expect("schema.json is JSON")
}

/// The `tcp` check.
pub struct TcpCheck;

impl Check for TcpCheck {
    type Config = Config;

    fn info() -> Info {
        Info {
            name: "tcp",
            version: env!("CARGO_PKG_VERSION"),
            description: "Connects to a TCP port (optionally TLS), optionally sends a payload and expects a response",
            config_schema: SCHEMA,
            capabilities: &["tcp"],
        }
    }

    fn check(config: Config, ctx: &Context) -> Outcome {
        let plan = match Plan::from_config(&config) {
            Ok(plan) => plan,
            Err(e) => return Outcome::error(format!("invalid config: {e}")),
        };
        match run(&plan, ctx) {
            Ok(obs) => judge(&plan, &obs),
            Err(err) => Outcome::new(
                err.status(),
                format!("connecting to {} failed: {err}", plan.target()),
            )
            .latency_ms(ctx.elapsed_ms())
            .details(json!({"error": err, "target": plan.target()})),
        }
    }
}

pharos_sdk::export_check!(TcpCheck);

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_sdk::mock::{self, ScriptedConnection, connect_info};
    use pharos_sdk::{Status, run_check};

    fn plan(v: Value) -> Plan {
        Plan::from_config(&pharos_sdk::parse_config(&v.to_string()).unwrap()).unwrap()
    }

    fn plan_err(v: Value) -> String {
        match pharos_sdk::parse_config::<Config>(&v.to_string()) {
            Ok(c) => Plan::from_config(&c).unwrap_err(),
            Err(e) => e.to_string(),
        }
    }

    fn observed(read: Option<Result<ReadUntil, CapError>>) -> Observed {
        Observed {
            info: connect_info(25, 4.0),
            exchange_ms: 6.0,
            send_error: None,
            read,
        }
    }

    #[test]
    fn config_defaults_and_validation() {
        let c: Config = pharos_sdk::parse_config(r#"{"host":"db.example","port":5432}"#).unwrap();
        let s = schema();
        assert_eq!(
            json!(c.timeout_ms),
            s["properties"]["timeout_ms"]["default"]
        );
        assert_eq!(json!(c.tls), s["properties"]["tls"]["default"]);
        assert_eq!(
            json!(c.verify_tls),
            s["properties"]["verify_tls"]["default"]
        );
        assert_eq!(
            json!(c.max_read_bytes),
            s["properties"]["max_read_bytes"]["default"]
        );
        let p = Plan::from_config(&c).unwrap();
        assert_eq!(p.target(), "db.example:5432");
        assert!(p.send.is_none() && p.matcher.is_none() && !p.options.tls);

        let p = plan(
            json!({"host": "::1", "port": 22, "send": "PING\r\n", "expect_regex": "^SSH-2\\.0"}),
        );
        assert_eq!(p.target(), "[::1]:22");
        assert_eq!(
            p.send.as_deref(),
            Some(&b"PING\r\n"[..]),
            "JSON \\r\\n escapes arrive as CR LF"
        );
        assert_eq!(p.matcher.as_ref().unwrap().describe(), "/^SSH-2\\.0/");

        assert!(
            plan_err(json!({"host": "h", "port": 1, "expect": "a", "expect_regex": "b"}))
                .contains("not both")
        );
        assert!(
            plan_err(json!({"host": "h", "port": 1, "expect_regex": "("}))
                .starts_with("expect_regex: invalid regex")
        );
        assert!(plan_err(json!({"host": "h", "port": 1, "sni": "x"})).starts_with("sni:"));
        assert!(plan_err(json!({"host": " ", "port": 1})).starts_with("host:"));
        assert!(plan_err(json!({"host": "h", "port": 0})).starts_with("port:"));
        assert!(plan_err(json!({"host": "h", "port": 70000})).contains("`port`"));
        assert!(plan_err(json!({"host": "h"})).contains("missing field `port`"));
    }

    #[test]
    fn schema_agrees_with_the_plugin() {
        jsonschema::meta::validate(&schema()).expect("valid draft 2020-12 schema");
        let v = jsonschema::validator_for(&schema()).unwrap();
        let good = [
            json!({"host": "h", "port": 1}),
            json!({"host": "mail.example", "port": 465, "tls": true, "sni": "mx.example", "verify_tls": false,
                   "send": "EHLO x\r\n", "expect": "250", "max_read_bytes": 100, "timeout_ms": 3000, "degraded_above_ms": 500}),
        ];
        for doc in good {
            assert!(v.is_valid(&doc), "{doc}");
            let c: Config = pharos_sdk::parse_config(&doc.to_string()).unwrap();
            assert!(Plan::from_config(&c).is_ok(), "{doc}");
        }
        let bad = [
            json!({"host": "h"}),
            json!({"host": "h", "port": 0}),
            json!({"host": "h", "port": 1, "extra": true}),
            json!({"host": "h", "port": 1, "expect": "a", "expect_regex": "b"}),
            json!({"host": "h", "port": 1, "sni": "x"}),
            json!({"host": "h", "port": 1, "sni": "x", "tls": false}),
            json!({"host": "h", "port": 1, "timeout_ms": 0}),
        ];
        for doc in bad {
            assert!(!v.is_valid(&doc), "schema should reject {doc}");
            assert!(
                !plan_err(doc.clone()).is_empty(),
                "plugin should reject {doc}"
            );
        }
    }

    #[test]
    fn matchers() {
        assert!(Matcher::Substring("ESMTP".into()).matches(b"220 mx ESMTP ready"));
        assert!(!Matcher::Substring("ESMTP".into()).matches(b"220 mx ESMT"));
        let re = Matcher::Regex(Regex::new(r"^\+OK").unwrap());
        assert!(re.matches(b"+OK POP3\r\n") && !re.matches(b"-ERR\r\n"));
        assert!(Matcher::Regex(Regex::new("caf").unwrap()).matches(b"caf\xff\xfe"));
        assert_eq!(snippet(b"a\r\nb", 10), "\"a\\r\\nb\"");
        assert_eq!(snippet(b"abcdef", 3), "\"abc…\"");
    }

    #[test]
    fn judging_reads() {
        let p =
            plan(json!({"host": "mx.example", "port": 25, "expect": "220", "timeout_ms": 5000}));
        let hit = ReadUntil {
            data: b"220 hi\r\n".to_vec(),
            matched: true,
            ..Default::default()
        };
        let out = judge(&p, &observed(Some(Ok(hit))));
        assert_eq!(
            (out.status, out.message.as_str()),
            (Status::Up, "\"220\" matched in 10 ms (mx.example:25)")
        );
        assert_eq!(out.latency_ms, Some(10.0));
        assert_eq!(out.get_metric("connect_ms"), Some(4.0));
        assert_eq!(out.get_metric("response_ms"), Some(6.0));
        assert_eq!(out.get_metric("bytes_received"), Some(8.0));
        assert_eq!(out.details_value().unwrap()["received"], "220 hi\r\n");

        let timeout = ReadUntil {
            data: b"554 go away".to_vec(),
            timed_out: true,
            ..Default::default()
        };
        let out = judge(&p, &observed(Some(Ok(timeout))));
        assert_eq!(out.status, Status::Down);
        assert_eq!(
            out.message,
            "\"220\" not received within 5000 ms from mx.example:25 (got \"554 go away\")"
        );

        let eof = ReadUntil {
            eof: true,
            ..Default::default()
        };
        let out = judge(&p, &observed(Some(Ok(eof))));
        assert_eq!(
            out.message,
            "mx.example:25 closed the connection before \"220\" (got \"\")"
        );

        let full = ReadUntil {
            data: vec![b'x'; 16],
            full: true,
            ..Default::default()
        };
        assert!(
            judge(&p, &observed(Some(Ok(full))))
                .message
                .starts_with("\"220\" not found in the first 16 bytes")
        );

        let out = judge(
            &p,
            &observed(Some(Err(CapError::Io("connection reset".into())))),
        );
        assert_eq!(
            (out.status, out.message.as_str()),
            (
                Status::Down,
                "reading from mx.example:25 failed: io: connection reset"
            )
        );

        let mut obs = observed(None);
        obs.send_error = Some(CapError::Io("broken pipe".into()));
        assert_eq!(
            judge(&p, &obs).message,
            "sending to mx.example:25 failed: io: broken pipe"
        );
    }

    #[test]
    fn connect_only_and_slowness() {
        let p = plan(json!({"host": "db", "port": 5432, "degraded_above_ms": 5}));
        let out = judge(
            &p,
            &Observed {
                info: connect_info(5432, 4.0),
                exchange_ms: 0.0,
                send_error: None,
                read: None,
            },
        );
        assert_eq!(
            (out.status, out.message.as_str()),
            (Status::Up, "connected to db:5432 in 4.0 ms")
        );
        assert_eq!(out.get_metric("response_ms"), None);
        let out = judge(
            &p,
            &Observed {
                info: connect_info(5432, 7.5),
                exchange_ms: 0.0,
                send_error: None,
                read: None,
            },
        );
        assert_eq!(
            (out.status, out.message.as_str()),
            (
                Status::Degraded,
                "connected to db:5432 in 7.5 ms (slower than 5 ms)"
            )
        );
    }

    #[test]
    fn full_check_through_the_mock_capability() {
        mock::reset();
        let ctx = Context::for_test(5_000);
        let conn = ScriptedConnection::new(connect_info(6379, 2.0))
            .then_data("+PO")
            .then_data("NG\r\n");
        let sent = conn.sent();
        let seen = std::rc::Rc::new(std::cell::RefCell::new(None));
        let seen2 = seen.clone();
        mock::tcp(move |opts| {
            *seen2.borrow_mut() = Some(opts.clone());
            Ok(Box::new(conn.clone()))
        });
        let cfg = json!({"host": "redis", "port": 6379, "send": "PING\r\n", "expect": "+PONG", "timeout_ms": 60000});
        let out = run_check::<TcpCheck>(&cfg.to_string(), &ctx);
        assert_eq!(out.status, Status::Up, "{}", out.message);
        assert!(
            out.message.starts_with("\"+PONG\" matched in"),
            "{}",
            out.message
        );
        assert_eq!(sent.borrow().as_slice(), b"PING\r\n");
        let opts = seen.borrow().clone().unwrap();
        assert_eq!(
            (opts.host.as_str(), opts.port, opts.tls),
            ("redis", 6379, false)
        );
        assert!(opts.timeout_ms <= 5_000);

        let silent = ScriptedConnection::new(connect_info(22, 1.0)).hang_at_end();
        mock::tcp(move |_| Ok(Box::new(silent.clone())));
        let out = run_check::<TcpCheck>(r#"{"host":"h","port":22,"expect_regex":"^SSH-"}"#, &ctx);
        assert_eq!(out.status, Status::Down);
        assert!(
            out.message.starts_with("/^SSH-/ not received within"),
            "{}",
            out.message
        );

        mock::tcp(|_| Err(CapError::Connect("connection refused".into())));
        let out = run_check::<TcpCheck>(r#"{"host":"h","port":1}"#, &ctx);
        assert_eq!(
            (out.status, out.message.as_str()),
            (
                Status::Down,
                "connecting to h:1 failed: connect: connection refused"
            )
        );
        mock::tcp(|_| Err(CapError::PolicyDenied("127.0.0.1 is loopback".into())));
        assert_eq!(
            run_check::<TcpCheck>(r#"{"host":"localhost","port":1}"#, &ctx).status,
            Status::Error
        );
        mock::reset();
    }

    #[test]
    fn describe() {
        let info = pharos_sdk::plugin_info::<TcpCheck>();
        assert_eq!(
            (info.name.as_str(), info.version.as_str()),
            ("tcp", "0.1.0")
        );
        assert_eq!(info.capabilities, vec!["tcp".to_string()]);
        let schema: Value = serde_json::from_str(&info.config_schema).unwrap();
        for (name, prop) in schema["properties"].as_object().unwrap() {
            assert!(prop["description"].is_string(), "{name} has no description");
        }
    }
}
