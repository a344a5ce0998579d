//! The `tls-cert` check: fetches a server's certificate chain and watches its expiry and trust.
//!
//! - Config → [`Plan`] ([`Plan::from_config`]): `warn_days` must exceed `critical_days`.
//! - [`inspect`] is the thin capability layer; [`judge`] is pure and takes the current time.
//!
//! Verdict: inspection failure → `down` (`error` for policy/grant problems); no certificate,
//! a certificate expired or not yet valid, an untrusted chain (unless `allow_untrusted`), or
//! at most `critical_days` left → `down`; at most `warn_days` left → `degraded`; else `up`.
//! The days left are the fewest of the leaf and any other certificate of the chain that is not
//! self-signed (servers may send a root, which clients do not use from the chain).

use pharos_sdk::tls::{InspectRequest, Report};
use pharos_sdk::{CapError, CertSummary, Check, Context, Info, Outcome, serde_json};
use serde::Deserialize;
use serde_json::{Value, json};

/// Default port.
pub const DEFAULT_PORT: u16 = 443;
/// Default number of days left below which the check is degraded.
pub const DEFAULT_WARN_DAYS: u32 = 30;
/// Default number of days left below which the check is down.
pub const DEFAULT_CRITICAL_DAYS: u32 = 7;
/// Default inspection timeout.
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;

/// The `tls-cert` plugin's config; see [`schema`] for the documentation of each field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Host name or IP address.
    pub host: String,
    /// TLS port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Server name to send instead of `host`.
    #[serde(default)]
    pub sni: Option<String>,
    /// Degraded at or below this many days left.
    #[serde(default = "default_warn")]
    pub warn_days: u32,
    /// Down at or below this many days left.
    #[serde(default = "default_critical")]
    pub critical_days: u32,
    /// Inspection timeout.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u32,
    /// Accept chains that do not verify against the trust roots.
    #[serde(default)]
    pub allow_untrusted: bool,
}

fn default_port() -> u16 {
    DEFAULT_PORT
}
fn default_warn() -> u32 {
    DEFAULT_WARN_DAYS
}
fn default_critical() -> u32 {
    DEFAULT_CRITICAL_DAYS
}
fn default_timeout() -> u32 {
    DEFAULT_TIMEOUT_MS
}

/// A validated config.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The inspection request (timeout set per run).
    pub request: InspectRequest,
    /// Degraded threshold in days.
    pub warn_days: u32,
    /// Down threshold in days.
    pub critical_days: u32,
    /// Accept untrusted chains.
    pub allow_untrusted: bool,
}

impl Plan {
    /// Validates `config`; errors are config errors naming the field.
    pub fn from_config(config: &Config) -> Result<Plan, String> {
        let host = config.host.trim();
        if host.is_empty() || host.contains(['/', ' ']) {
            return Err(format!("host: `{host}` is not a host name or IP address"));
        }
        if config.port == 0 {
            return Err("port: must be 1-65535".into());
        }
        if config.warn_days <= config.critical_days {
            return Err(format!(
                "warn_days ({}) must be greater than critical_days ({})",
                config.warn_days, config.critical_days
            ));
        }
        if config.timeout_ms == 0 {
            return Err("timeout_ms: must be at least 1".into());
        }
        let sni = config
            .sni
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        Ok(Plan {
            request: InspectRequest::new(host, config.port)
                .sni(sni)
                .timeout_ms(config.timeout_ms),
            warn_days: config.warn_days,
            critical_days: config.critical_days,
            allow_untrusted: config.allow_untrusted,
        })
    }

    /// `host:port`, bracketing IPv6 literals.
    pub fn target(&self) -> String {
        if self.request.host.contains(':') {
            format!("[{}]:{}", self.request.host, self.request.port)
        } else {
            format!("{}:{}", self.request.host, self.request.port)
        }
    }
}

/// Seconds since the Unix epoch as an RFC 3339 UTC timestamp, e.g. `2025-03-01T12:00:00Z`.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The date part of [`rfc3339`].
pub fn date(secs: i64) -> String {
    rfc3339(secs)[..10].to_string()
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The current time for [`judge`]: the wall clock when it looks sane, otherwise derived from
/// the leaf's `not_after` and `days_remaining` (whole days, so within a day).
pub fn now_or_estimate(wall_clock_secs: Option<i64>, leaf: Option<&CertSummary>) -> i64 {
    const YEAR_2020: i64 = 1_577_836_800;
    match (wall_clock_secs, leaf) {
        (Some(now), _) if now > YEAR_2020 => now,
        (_, Some(cert)) => cert.not_after - i64::from(cert.days_remaining) * 86_400,
        (Some(now), None) => now,
        (None, None) => 0,
    }
}

fn days_phrase(days: i64) -> String {
    if days == 1 {
        "1 day".to_string()
    } else {
        format!("{days} days")
    }
}

/// Judges an inspection report at time `now` (seconds since the Unix epoch).
pub fn judge(plan: &Plan, report: &Report, now: i64) -> Outcome {
    let target = plan.target();
    let mut details = json!({
        "target": target,
        "sni": plan.request.sni.as_deref().unwrap_or(&plan.request.host),
        "remote_addr": report.remote_addr,
        "protocol_version": report.protocol_version,
        "cipher_suite": report.cipher_suite,
        "verified": report.verified,
        "verification_error": report.verification_error,
        "chain": report.chain.iter().map(|c| cert_details(c, now)).collect::<Vec<_>>(),
    });
    let total = report.timings.total_ms.unwrap_or(0.0);
    let base = |o: Outcome| o.latency_ms(total).timings(report.timings);

    let Some(leaf) = report.chain.first() else {
        return base(Outcome::down(format!("{target} presented no certificate"))).details(details);
    };

    // The certificates whose expiry matters: the leaf and any non-self-signed one after it.
    let relevant: Vec<(usize, &CertSummary)> = report
        .chain
        .iter()
        .enumerate()
        .filter(|(i, c)| *i == 0 || !c.self_signed)
        .collect();
    let name = |i: usize, c: &CertSummary| {
        if i == 0 {
            "certificate".to_string()
        } else {
            format!("intermediate certificate {}", c.subject)
        }
    };
    let days_left = |c: &CertSummary| (c.not_after - now).div_euclid(86_400);
    let (soonest_i, soonest) = relevant
        .iter()
        .copied()
        .min_by_key(|(_, c)| c.not_after)
        .unwrap_or((0, leaf));
    let days = days_left(soonest);
    details["days_remaining"] = json!(days);

    let verdict = if let Some((i, c)) = relevant.iter().find(|(_, c)| c.not_after <= now) {
        let ago = (now - c.not_after).div_euclid(86_400);
        let when = if ago == 0 {
            "today".to_string()
        } else {
            format!("{} ago", days_phrase(ago))
        };
        Outcome::down(format!(
            "{} expired {when} ({})",
            name(*i, c),
            date(c.not_after)
        ))
    } else if let Some((i, c)) = relevant.iter().find(|(_, c)| c.not_before > now) {
        Outcome::down(format!(
            "{} is not valid before {}",
            name(*i, c),
            date(c.not_before)
        ))
    } else if !report.verified && !plan.allow_untrusted {
        let why = report
            .verification_error
            .as_deref()
            .unwrap_or("verification failed");
        Outcome::down(format!("certificate of {target} is not trusted: {why}"))
    } else {
        let phrase = format!(
            "{} expires in {} ({})",
            name(soonest_i, soonest),
            days_phrase(days),
            date(soonest.not_after)
        );
        let untrusted = if report.verified {
            ""
        } else {
            " (untrusted, allowed)"
        };
        if days <= i64::from(plan.critical_days) {
            Outcome::down(format!(
                "{phrase}, critical at {} days{untrusted}",
                plan.critical_days
            ))
        } else if days <= i64::from(plan.warn_days) {
            Outcome::degraded(format!(
                "{phrase}, warning at {} days{untrusted}",
                plan.warn_days
            ))
        } else {
            Outcome::up(format!(
                "certificate valid for {} (until {}){untrusted}",
                days_phrase(days),
                date(soonest.not_after)
            ))
        }
    };

    base(verdict)
        .metric("tls_days_remaining", days_left(leaf) as f64)
        .metric("chain_days_remaining", days as f64)
        .metric("chain_length", report.chain.len() as f64)
        .details(details)
}

fn cert_details(c: &CertSummary, now: i64) -> Value {
    json!({
        "subject": c.subject,
        "issuer": c.issuer,
        "sans": c.sans,
        "not_before": rfc3339(c.not_before),
        "not_after": rfc3339(c.not_after),
        "days": (c.not_after - now).div_euclid(86_400),
        "serial": c.serial,
        "sha256_fingerprint": c.sha256_fingerprint,
        "self_signed": c.self_signed,
    })
}

/// The thin capability layer: inspects the server within the check's deadline.
pub fn inspect(plan: &Plan, ctx: &Context) -> Result<Report, CapError> {
    plan.request
        .clone()
        .timeout_ms(ctx.budget_ms(plan.request.timeout_ms))
        .inspect()
}

/// The wall clock in seconds since the Unix epoch, if the sandbox provides one.
fn wall_clock() -> Option<i64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    i64::try_from(now.as_secs()).ok()
}

/// The JSON Schema of the config (`schema.json` beside `Cargo.toml`), sent as-is by `describe()`.
pub const SCHEMA: &str = include_str!("../schema.json");

/// [`SCHEMA`] parsed, for tests.
#[cfg(test)]
pub fn schema() -> Value {
    serde_json::from_str(SCHEMA).expect("schema.json is JSON")
}

/// The `tls-cert` check.
pub struct TlsCertCheck;

impl Check for TlsCertCheck {
    type Config = Config;

    fn info() -> Info {
        Info {
            name: "tls-cert",
            version: env!("CARGO_PKG_VERSION"),
            description: "Checks a TLS server's certificate chain for expiry and trust",
            config_schema: SCHEMA,
            capabilities: &["tls"],
        }
    }

    fn check(config: Config, ctx: &Context) -> Outcome {
        let plan = match Plan::from_config(&config) {
            Ok(plan) => plan,
            Err(e) => return Outcome::error(format!("invalid config: {e}")),
        };
        match inspect(&plan, ctx) {
            Ok(report) => judge(
                &plan,
                &report,
                now_or_estimate(wall_clock(), report.chain.first()),
            ),
            Err(err) => Outcome::new(
                err.status(),
                format!("inspecting {} failed: {err}", plan.target()),
            )
            .latency_ms(ctx.elapsed_ms())
            .details(json!({"error": err, "target": plan.target()})),
        }
    }
}

pharos_sdk::export_check!(TlsCertCheck);

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_sdk::{PhaseTimings, Status, mock, run_check};

    const NOW: i64 = 1_750_000_000; // 2025-06-15T15:06:40Z
    const DAY: i64 = 86_400;

    fn cert(subject: &str, days_left: i64, self_signed: bool) -> CertSummary {
        CertSummary {
            subject: subject.into(),
            issuer: if self_signed {
                subject.into()
            } else {
                "CN=Test CA".into()
            },
            sans: vec!["example.com".into()],
            not_before: NOW - 60 * DAY,
            not_after: NOW + days_left * DAY + 3600,
            days_remaining: days_left as i32,
            serial: "0a".into(),
            sha256_fingerprint: "ff".into(),
            self_signed,
        }
    }

    fn report(chain: Vec<CertSummary>, verified: bool) -> Report {
        Report {
            chain,
            protocol_version: "TLSv1.3".into(),
            cipher_suite: "TLS13_AES_128_GCM_SHA256".into(),
            verified,
            verification_error: if verified {
                None
            } else {
                Some("invalid peer certificate: UnknownIssuer".into())
            },
            timings: PhaseTimings {
                connect_ms: Some(5.0),
                tls_ms: Some(12.0),
                total_ms: Some(18.0),
                ..Default::default()
            },
            remote_addr: "192.0.2.10:443".into(),
        }
    }

    fn plan(v: Value) -> Plan {
        Plan::from_config(&pharos_sdk::parse_config(&v.to_string()).unwrap()).unwrap()
    }

    fn plan_err(v: Value) -> String {
        match pharos_sdk::parse_config::<Config>(&v.to_string()) {
            Ok(c) => Plan::from_config(&c).unwrap_err(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(NOW), "2025-06-15T15:06:40Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(date(NOW), "2025-06-15");
    }

    #[test]
    fn clock_fallback() {
        let leaf = cert("CN=example.com", 10, false);
        assert_eq!(now_or_estimate(Some(NOW), Some(&leaf)), NOW);
        let est = now_or_estimate(Some(0), Some(&leaf));
        assert!((est - NOW).abs() < DAY, "estimate within a day");
        assert_eq!(now_or_estimate(None, None), 0);
    }

    #[test]
    fn config_defaults_and_validation() {
        let c: Config = pharos_sdk::parse_config(r#"{"host":"example.com"}"#).unwrap();
        let s = schema();
        for (field, value) in [
            ("port", json!(c.port)),
            ("warn_days", json!(c.warn_days)),
            ("critical_days", json!(c.critical_days)),
            ("timeout_ms", json!(c.timeout_ms)),
            ("allow_untrusted", json!(c.allow_untrusted)),
        ] {
            assert_eq!(value, s["properties"][field]["default"], "{field}");
        }
        let p = Plan::from_config(&c).unwrap();
        assert_eq!(
            (p.target(), p.request.sni.clone()),
            ("example.com:443".to_string(), None)
        );
        let p = plan(json!({"host": "2001:db8::1", "port": 8443, "sni": "api.example.com"}));
        assert_eq!(p.target(), "[2001:db8::1]:8443");
        assert_eq!(p.request.sni.as_deref(), Some("api.example.com"));

        assert_eq!(
            plan_err(json!({"host": "x", "warn_days": 7, "critical_days": 7})),
            "warn_days (7) must be greater than critical_days (7)"
        );
        assert!(plan_err(json!({"host": "x", "warn_days": 5})).starts_with("warn_days (5)"));
        assert!(plan_err(json!({"host": ""})).starts_with("host:"));
        assert!(plan_err(json!({"host": "x", "port": 0})).starts_with("port:"));
        assert!(plan_err(json!({"host": "x", "warn_days": -1})).contains("`warn_days`"));
    }

    #[test]
    fn schema_agrees_with_the_plugin() {
        jsonschema::meta::validate(&schema()).expect("valid draft 2020-12 schema");
        let v = jsonschema::validator_for(&schema()).unwrap();
        let good = json!({"host": "example.com", "port": 993, "sni": "imap.example.com", "warn_days": 21, "critical_days": 3, "timeout_ms": 4000, "allow_untrusted": true});
        assert!(v.is_valid(&good));
        assert!(Plan::from_config(&pharos_sdk::parse_config(&good.to_string()).unwrap()).is_ok());
        for bad in [
            json!({}),
            json!({"host": "x", "port": 0}),
            json!({"host": "x", "extra": 1}),
            json!({"host": "x", "critical_days": -1}),
        ] {
            assert!(!v.is_valid(&bad), "{bad}");
            assert!(!plan_err(bad.clone()).is_empty(), "{bad}");
        }
    }

    #[test]
    fn expiry_verdicts() {
        let p = plan(json!({"host": "example.com"}));
        let out = judge(
            &p,
            &report(vec![cert("CN=example.com", 80, false)], true),
            NOW,
        );
        assert_eq!(
            (out.status, out.message.as_str()),
            (
                Status::Up,
                "certificate valid for 80 days (until 2025-09-03)"
            )
        );
        assert_eq!(out.get_metric("tls_days_remaining"), Some(80.0));
        assert_eq!(out.latency_ms, Some(18.0));
        assert_eq!(out.timings.tls_ms, Some(12.0));

        let out = judge(
            &p,
            &report(vec![cert("CN=example.com", 30, false)], true),
            NOW,
        );
        assert_eq!(
            (out.status, out.message.as_str()),
            (
                Status::Degraded,
                "certificate expires in 30 days (2025-07-15), warning at 30 days"
            )
        );

        let out = judge(
            &p,
            &report(vec![cert("CN=example.com", 7, false)], true),
            NOW,
        );
        assert_eq!(
            (out.status, out.message.as_str()),
            (
                Status::Down,
                "certificate expires in 7 days (2025-06-22), critical at 7 days"
            )
        );

        let mut expired = cert("CN=example.com", 0, false);
        expired.not_after = NOW - 3 * DAY;
        let out = judge(&p, &report(vec![expired], false), NOW);
        assert_eq!(
            (out.status, out.message.as_str()),
            (Status::Down, "certificate expired 3 days ago (2025-06-12)")
        );
        assert_eq!(out.get_metric("tls_days_remaining"), Some(-3.0));

        let mut future = cert("CN=example.com", 400, false);
        future.not_before = NOW + 2 * DAY;
        let out = judge(&p, &report(vec![future], true), NOW);
        assert_eq!(
            (out.status, out.message.as_str()),
            (Status::Down, "certificate is not valid before 2025-06-17")
        );
    }

    #[test]
    fn chain_and_trust() {
        let p = plan(json!({"host": "example.com"}));
        let chain = vec![
            cert("CN=example.com", 80, false),
            cert("CN=Intermediate R9", 20, false),
            cert("CN=Old Root", -5, true),
        ];
        let out = judge(&p, &report(chain, true), NOW);
        assert_eq!(
            out.status,
            Status::Degraded,
            "the intermediate expires first; the root is ignored"
        );
        assert_eq!(
            out.message,
            "intermediate certificate CN=Intermediate R9 expires in 20 days (2025-07-05), warning at 30 days"
        );
        assert_eq!(out.get_metric("tls_days_remaining"), Some(80.0));
        assert_eq!(out.get_metric("chain_days_remaining"), Some(20.0));
        assert_eq!(out.get_metric("chain_length"), Some(3.0));
        let d = out.details_value().unwrap();
        assert_eq!(d["chain"][1]["subject"], "CN=Intermediate R9");
        assert_eq!(d["chain"][1]["days"], 20);
        assert_eq!(d["chain"][0]["sans"], json!(["example.com"]));
        assert_eq!(d["chain"][0]["not_after"], "2025-09-03T16:06:40Z");
        assert_eq!(d["protocol_version"], "TLSv1.3");

        let self_signed = vec![cert("CN=example.com", 200, true)];
        let out = judge(&p, &report(self_signed.clone(), false), NOW);
        assert_eq!(
            (out.status, out.message.as_str()),
            (
                Status::Down,
                "certificate of example.com:443 is not trusted: invalid peer certificate: UnknownIssuer"
            )
        );
        let lenient = plan(json!({"host": "example.com", "allow_untrusted": true}));
        let out = judge(&lenient, &report(self_signed, false), NOW);
        assert_eq!(
            (out.status, out.message.as_str()),
            (
                Status::Up,
                "certificate valid for 200 days (until 2026-01-01) (untrusted, allowed)"
            )
        );

        let out = judge(&p, &report(vec![], false), NOW);
        assert_eq!(
            (out.status, out.message.as_str()),
            (Status::Down, "example.com:443 presented no certificate")
        );
    }

    #[test]
    fn full_check_through_the_mock_capability() {
        mock::reset();
        let ctx = Context::for_test(4_000);
        mock::tls(|req| {
            assert_eq!(
                (req.host.as_str(), req.port, req.sni.as_deref()),
                ("example.com", 443, Some("www.example.com"))
            );
            assert!(req.timeout_ms <= 4_000);
            let mut leaf = cert("CN=www.example.com", 50, false);
            let now = wall_clock().unwrap();
            leaf.not_before = now - 10 * DAY;
            leaf.not_after = now + 50 * DAY + 60;
            Ok(report(vec![leaf], true))
        });
        let out =
            run_check::<TlsCertCheck>(r#"{"host":"example.com","sni":"www.example.com"}"#, &ctx);
        assert_eq!(out.status, Status::Up, "{}", out.message);
        assert!(
            out.message.starts_with("certificate valid for 50 days"),
            "{}",
            out.message
        );

        mock::tls(|_| Err(CapError::Connect("connection refused".into())));
        let out = run_check::<TlsCertCheck>(r#"{"host":"example.com"}"#, &ctx);
        assert_eq!(
            (out.status, out.message.as_str()),
            (
                Status::Down,
                "inspecting example.com:443 failed: connect: connection refused"
            )
        );
        let out = run_check::<TlsCertCheck>(r#"{"host":"example.com","warn_days":3}"#, &ctx);
        assert_eq!(
            (out.status, out.message.as_str()),
            (
                Status::Error,
                "invalid config: warn_days (3) must be greater than critical_days (7)"
            )
        );
        mock::reset();
    }

    #[test]
    fn describe() {
        let info = pharos_sdk::plugin_info::<TlsCertCheck>();
        assert_eq!(
            (info.name.as_str(), info.version.as_str()),
            ("tls-cert", "0.1.0")
        );
        assert_eq!(info.capabilities, vec!["tls".to_string()]);
        let schema: Value = serde_json::from_str(&info.config_schema).unwrap();
        for (name, prop) in schema["properties"].as_object().unwrap() {
            assert!(prop["description"].is_string(), "{name} has no description");
        }
    }
}
