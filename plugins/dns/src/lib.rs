//! The `dns` check: resolves one name and compares the records with expected values.
//!
//! - Config → [`Plan`] ([`Plan::from_config`]); value normalization ([`normalize`]) and the
//!   verdict ([`judge`]) are pure.
//! - [`resolve`] is the thin capability layer.
//!
//! Verdict: lookup failure → `down` (`error` for policy/grant problems); NXDOMAIN → `down`,
//! or `up` with `expect_nxdomain`; SERVFAIL or another error code → `down`; no record of the
//! type → `down`; expected values not matched (`any`: none of them present, `all`: one
//! missing) → `down`; slower than `degraded_above_ms` → `degraded`; else `up`.

use std::net::{IpAddr, SocketAddr};

use pharos_sdk::dns::{Answer, Query, RecordType};
use pharos_sdk::{CapError, Check, Context, Info, Outcome, PhaseTimings, serde_json};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

/// Default lookup timeout.
pub const DEFAULT_TIMEOUT_MS: u32 = 5_000;

/// How expected values are matched against the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchMode {
    /// At least one expected value is present.
    #[default]
    Any,
    /// Every expected value is present.
    All,
}

/// The `dns` plugin's config; see [`schema`] for the documentation of each field.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The name to look up (an IP address for PTR).
    pub name: String,
    /// Record type, `A` by default.
    #[serde(default = "default_type", deserialize_with = "record_type")]
    pub record_type: RecordType,
    /// Resolver `ip` or `ip:port`; the system resolver when absent.
    #[serde(default)]
    pub resolver: Option<String>,
    /// Lookup timeout.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u32,
    /// Values the answer must contain.
    #[serde(default)]
    pub expected: Vec<String>,
    /// How `expected` is matched.
    #[serde(default, rename = "match")]
    pub match_mode: MatchMode,
    /// The check is up when the name does not exist.
    #[serde(default)]
    pub expect_nxdomain: bool,
    /// Report `degraded` when the lookup takes longer.
    #[serde(default)]
    pub degraded_above_ms: Option<u32>,
}

fn default_type() -> RecordType {
    RecordType::A
}
fn default_timeout() -> u32 {
    DEFAULT_TIMEOUT_MS
}

fn record_type<'de, D: Deserializer<'de>>(de: D) -> Result<RecordType, D::Error> {
    let s = String::deserialize(de)?;
    s.parse().map_err(|_| {
        let names: Vec<&str> = RecordType::ALL.iter().map(|t| t.as_str()).collect();
        serde::de::Error::custom(format!(
            "unknown record type `{s}`, expected one of {}",
            names.join(", ")
        ))
    })
}

/// A validated config.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The query (timeout set per run).
    pub query: Query,
    /// Expected values, normalized, with the configured spelling.
    pub expected: Vec<(String, String)>,
    /// How `expected` is matched.
    pub match_mode: MatchMode,
    /// Up on NXDOMAIN.
    pub expect_nxdomain: bool,
    /// Slowness threshold.
    pub degraded_above_ms: Option<u32>,
}

/// Checks a resolver address: `ip`, `ip:port` or `[ipv6]:port`.
pub fn validate_resolver(resolver: &str) -> Result<(), String> {
    if resolver.parse::<IpAddr>().is_ok() || resolver.parse::<SocketAddr>().is_ok() {
        Ok(())
    } else {
        Err(format!(
            "resolver: `{resolver}` is not an IP address or ip:port"
        ))
    }
}

impl Plan {
    /// Validates `config`; errors are config errors naming the field.
    pub fn from_config(config: &Config) -> Result<Plan, String> {
        let name = config.name.trim();
        if name.is_empty() || name.len() > 254 || name.contains(char::is_whitespace) {
            return Err(format!("name: `{name}` is not a domain name"));
        }
        if let Some(r) = &config.resolver {
            validate_resolver(r.trim())?;
        }
        if config.timeout_ms == 0 {
            return Err("timeout_ms: must be at least 1".into());
        }
        if config.expect_nxdomain && !config.expected.is_empty() {
            return Err("set `expected` or `expect_nxdomain`, not both".into());
        }
        let expected = config
            .expected
            .iter()
            .map(|v| (normalize(config.record_type, v), v.clone()))
            .collect();
        let query = Query::new(name, config.record_type)
            .resolver(config.resolver.as_deref().map(str::trim))
            .timeout_ms(config.timeout_ms);
        Ok(Plan {
            query,
            expected,
            match_mode: config.match_mode,
            expect_nxdomain: config.expect_nxdomain,
            degraded_above_ms: config.degraded_above_ms,
        })
    }
}

/// Normalizes a record value for comparison: case-insensitive, trailing dots ignored,
/// whitespace collapsed, quotes removed; IP addresses in canonical form; TXT strings joined.
pub fn normalize(ty: RecordType, value: &str) -> String {
    let value = value.trim();
    match ty {
        RecordType::A | RecordType::Aaaa => match value.parse::<IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => value.to_ascii_lowercase(),
        },
        RecordType::Txt => {
            let joined = unquote_txt(value).to_lowercase();
            joined.strip_suffix('.').unwrap_or(&joined).to_string()
        }
        _ => value
            .split_whitespace()
            .map(|token| {
                let token = token.trim_matches('"');
                let token = token.strip_suffix('.').unwrap_or(token);
                token.to_lowercase()
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Joins the character-strings of a TXT presentation (`"a" "b"` → `ab`); unquoted text is
/// returned as is.
fn unquote_txt(value: &str) -> String {
    if !value.starts_with('"') {
        return value.to_string();
    }
    let mut out = String::new();
    let mut in_quotes = false;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => in_quotes = !in_quotes,
            '\\' if in_quotes => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            c if in_quotes => out.push(c),
            _ => {}
        }
    }
    out
}

/// Formats milliseconds for messages: `3.2 ms` below 10 ms, else whole milliseconds.
pub fn fmt_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn list(values: &[&str], max: usize) -> String {
    let shown: Vec<&str> = values.iter().take(max).copied().collect();
    let more = values.len().saturating_sub(max);
    if more > 0 {
        format!("{} (+{more} more)", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Judges an answer.
pub fn judge(plan: &Plan, answer: &Answer) -> Outcome {
    let ty = plan.query.record_type;
    let name = &plan.query.name;
    let ms = answer.duration_ms;
    let values: Vec<&str> = answer.values_of(ty).collect();
    let normalized: Vec<String> = values.iter().map(|v| normalize(ty, v)).collect();
    let rcode = answer.response_code.to_ascii_uppercase();

    let mut missing: Vec<&str> = Vec::new();
    let verdict = if rcode == "NXDOMAIN" {
        if plan.expect_nxdomain {
            slow_or_up(
                plan,
                ms,
                format!("{name} does not exist (NXDOMAIN) in {}", fmt_ms(ms)),
            )
        } else {
            Outcome::down(format!("{name} does not exist (NXDOMAIN)"))
        }
    } else if rcode != "NOERROR" {
        Outcome::down(format!("{rcode} from {} for {name} {ty}", answer.resolver))
    } else if plan.expect_nxdomain {
        let n = values.len();
        Outcome::down(format!(
            "expected NXDOMAIN, but {name} exists ({n} {ty} record{})",
            if n == 1 { "" } else { "s" }
        ))
    } else if values.is_empty() {
        Outcome::down(format!("no {ty} records for {name}"))
    } else {
        for (norm, spelled) in &plan.expected {
            if !normalized.contains(norm) {
                missing.push(spelled);
            }
        }
        let failed = match plan.match_mode {
            _ if plan.expected.is_empty() => false,
            MatchMode::Any => missing.len() == plan.expected.len(),
            MatchMode::All => !missing.is_empty(),
        };
        if failed {
            let expected: Vec<&str> = plan.expected.iter().map(|(_, s)| s.as_str()).collect();
            let want = match plan.match_mode {
                MatchMode::Any if expected.len() > 1 => format!("any of {}", list(&expected, 5)),
                MatchMode::Any => expected.join(""),
                MatchMode::All => format!("missing {}", list(&missing, 5)),
            };
            match plan.match_mode {
                MatchMode::Any => Outcome::down(format!(
                    "{name} {ty}: expected {want}, got {}",
                    list(&values, 5)
                )),
                MatchMode::All => {
                    Outcome::down(format!("{name} {ty}: {want}, got {}", list(&values, 5)))
                }
            }
        } else {
            slow_or_up(
                plan,
                ms,
                format!("{name} {ty} → {} in {}", list(&values, 3), fmt_ms(ms)),
            )
        }
    };

    let records: Vec<Value> = answer
        .records
        .iter()
        .map(|r| json!({"name": r.name, "type": r.record_type.as_str(), "ttl": r.ttl, "value": r.value}))
        .collect();
    let mut details = json!({
        "name": name,
        "record_type": ty.as_str(),
        "response_code": answer.response_code,
        "resolver": answer.resolver,
        "records": records,
    });
    if !plan.expected.is_empty() {
        let expected: Vec<&str> = plan.expected.iter().map(|(_, s)| s.as_str()).collect();
        details["expected"] = json!(expected);
        details["match"] = json!(match plan.match_mode {
            MatchMode::Any => "any",
            MatchMode::All => "all",
        });
        details["missing"] = json!(missing);
    }
    verdict
        .latency_ms(ms)
        .timings(PhaseTimings {
            dns_ms: Some(ms),
            total_ms: Some(ms),
            ..Default::default()
        })
        .metric("dns_ms", ms)
        .metric("record_count", values.len() as f64)
        .details(details)
}

fn slow_or_up(plan: &Plan, ms: f64, message: String) -> Outcome {
    match plan.degraded_above_ms {
        Some(limit) if ms > f64::from(limit) => {
            Outcome::degraded(format!("{message} (slower than {limit} ms)"))
        }
        _ => Outcome::up(message),
    }
}

/// The thin capability layer: sends the query within the check's deadline.
pub fn resolve(plan: &Plan, ctx: &Context) -> Result<Answer, CapError> {
    plan.query
        .clone()
        .timeout_ms(ctx.budget_ms(plan.query.timeout_ms))
        .resolve()
}

/// The JSON Schema of the config (`schema.json` beside `Cargo.toml`), sent as-is by `describe()`.
pub const SCHEMA: &str = include_str!("../schema.json");

/// [`SCHEMA`] parsed, for tests.
#[cfg(test)]
pub fn schema() -> Value {
    serde_json::from_str(SCHEMA).expect("schema.json is JSON")
}

/// The `dns` check.
pub struct DnsCheck;

impl Check for DnsCheck {
    type Config = Config;

    fn info() -> Info {
        Info {
            name: "dns",
            version: env!("CARGO_PKG_VERSION"),
            description: "Resolves a DNS name and checks the records against expected values",
            config_schema: SCHEMA,
            capabilities: &["dns"],
        }
    }

    fn check(config: Config, ctx: &Context) -> Outcome {
        let plan = match Plan::from_config(&config) {
            Ok(plan) => plan,
            Err(e) => return Outcome::error(format!("invalid config: {e}")),
        };
        match resolve(&plan, ctx) {
            Ok(answer) => judge(&plan, &answer),
            Err(err) => Outcome::new(
                err.status(),
                format!("resolving {} {} failed: {err}", plan.query.name, plan.query.record_type),
            )
            .latency_ms(ctx.elapsed_ms())
            .details(json!({"error": err, "name": plan.query.name, "record_type": plan.query.record_type.as_str()})),
        }
    }
}

pharos_sdk::export_check!(DnsCheck);

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_sdk::dns::DnsRecord;
    use pharos_sdk::{Status, mock, run_check};

    fn plan(v: Value) -> Plan {
        Plan::from_config(&pharos_sdk::parse_config(&v.to_string()).unwrap()).unwrap()
    }

    fn plan_err(v: Value) -> String {
        match pharos_sdk::parse_config::<Config>(&v.to_string()) {
            Ok(c) => Plan::from_config(&c).unwrap_err(),
            Err(e) => e.to_string(),
        }
    }

    fn answer(rcode: &str, ty: RecordType, values: &[&str], ms: f64) -> Answer {
        Answer {
            response_code: rcode.into(),
            records: values
                .iter()
                .map(|v| DnsRecord {
                    name: "example.com.".into(),
                    record_type: ty,
                    ttl: 300,
                    value: v.to_string(),
                })
                .collect(),
            duration_ms: ms,
            resolver: "192.0.2.53:53".into(),
        }
    }

    #[test]
    fn normalization() {
        assert_eq!(normalize(RecordType::A, " 192.0.2.1 "), "192.0.2.1");
        assert_eq!(
            normalize(RecordType::Aaaa, "2001:DB8:0:0::1"),
            "2001:db8::1"
        );
        assert_eq!(
            normalize(RecordType::Mx, "10 Mail.Example.COM."),
            "10 mail.example.com"
        );
        assert_eq!(
            normalize(RecordType::Mx, "10   mail.example.com"),
            "10 mail.example.com"
        );
        assert_eq!(
            normalize(RecordType::Cname, "Target.Example.NET."),
            "target.example.net"
        );
        assert_eq!(
            normalize(RecordType::Caa, "0 issue \"letsencrypt.org\""),
            "0 issue letsencrypt.org"
        );
        assert_eq!(
            normalize(RecordType::Txt, "\"v=spf1 \" \"-all\""),
            "v=spf1 -all"
        );
        assert_eq!(normalize(RecordType::Txt, "V=SPF1 -all"), "v=spf1 -all");
        assert_eq!(normalize(RecordType::Txt, r#""say \"hi\"""#), "say \"hi\"");
        assert_eq!(
            normalize(
                RecordType::Soa,
                "ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300"
            ),
            "ns1.example.com hostmaster.example.com 2024010101 7200 3600 1209600 300"
        );
    }

    #[test]
    fn config_defaults_and_validation() {
        let c: Config = pharos_sdk::parse_config(r#"{"name":"example.com"}"#).unwrap();
        let s = schema();
        assert_eq!(c.record_type, RecordType::A);
        assert_eq!(s["properties"]["record_type"]["default"], "A");
        assert_eq!(
            json!(c.timeout_ms),
            s["properties"]["timeout_ms"]["default"]
        );
        assert_eq!(c.match_mode, MatchMode::Any);
        assert_eq!(s["properties"]["match"]["default"], "any");
        assert!(!c.expect_nxdomain && c.expected.is_empty());

        let p = plan(
            json!({"name": "example.com", "record_type": "mx", "resolver": "[2001:db8::53]:5353", "expected": ["10 MX.example.com."]}),
        );
        assert_eq!(p.query.record_type, RecordType::Mx);
        assert_eq!(p.query.resolver.as_deref(), Some("[2001:db8::53]:5353"));
        assert_eq!(
            p.expected,
            vec![(
                "10 mx.example.com".to_string(),
                "10 MX.example.com.".to_string()
            )]
        );

        for ok in ["9.9.9.9", "9.9.9.9:53", "2001:db8::1", "[2001:db8::1]:53"] {
            assert!(validate_resolver(ok).is_ok(), "{ok}");
        }
        for bad in ["dns.google", "9.9.9.9:", "1.2.3", "[::1]"] {
            assert!(validate_resolver(bad).is_err(), "{bad}");
        }
        assert!(
            plan_err(json!({"name": "x", "record_type": "AXFR"}))
                .contains("unknown record type `AXFR`")
        );
        assert!(plan_err(json!({"name": "x", "resolver": "dns.google"})).starts_with("resolver:"));
        assert!(plan_err(json!({"name": "a b"})).starts_with("name:"));
        assert!(
            plan_err(json!({"name": "x", "expect_nxdomain": true, "expected": ["1.2.3.4"]}))
                .contains("not both")
        );
        assert!(plan_err(json!({"name": "x", "match": "most"})).contains("`match`"));
    }

    #[test]
    fn schema_agrees_with_the_plugin() {
        jsonschema::meta::validate(&schema()).expect("valid draft 2020-12 schema");
        let v = jsonschema::validator_for(&schema()).unwrap();
        let good = [
            json!({"name": "example.com"}),
            json!({"name": "example.com", "record_type": "AAAA", "resolver": "2001:db8::53", "timeout_ms": 100,
                   "expected": ["2001:db8::1"], "match": "all", "degraded_above_ms": 50}),
            json!({"name": "gone.example", "expect_nxdomain": true}),
            json!({"name": "192.0.2.1", "record_type": "PTR"}),
        ];
        for doc in good {
            assert!(v.is_valid(&doc), "{doc}");
            let c: Config = pharos_sdk::parse_config(&doc.to_string()).unwrap();
            assert!(Plan::from_config(&c).is_ok(), "{doc}");
        }
        let bad = [
            json!({}),
            json!({"name": "x", "record_type": "AXFR"}),
            json!({"name": "x", "match": "most"}),
            json!({"name": "x", "other": 1}),
            json!({"name": "x", "resolver": "dns.google"}),
            json!({"name": "x", "expect_nxdomain": true, "expected": ["192.0.2.1"]}),
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
    fn verdicts() {
        let p = plan(json!({"name": "example.com"}));
        let out = judge(
            &p,
            &answer("NOERROR", RecordType::A, &["192.0.2.1", "192.0.2.2"], 12.3),
        );
        assert_eq!(
            (out.status, out.message.as_str()),
            (Status::Up, "example.com A → 192.0.2.1, 192.0.2.2 in 12 ms")
        );
        assert_eq!(out.get_metric("record_count"), Some(2.0));
        assert_eq!(out.get_metric("dns_ms"), Some(12.3));
        assert_eq!(out.timings.dns_ms, Some(12.3));
        let d = out.details_value().unwrap();
        assert_eq!(
            d["records"][1],
            json!({"name": "example.com.", "type": "A", "ttl": 300, "value": "192.0.2.2"})
        );
        assert_eq!(d["response_code"], "NOERROR");

        let out = judge(&p, &answer("NXDOMAIN", RecordType::A, &[], 3.0));
        assert_eq!(
            (out.status, out.message.as_str()),
            (Status::Down, "example.com does not exist (NXDOMAIN)")
        );
        let out = judge(&p, &answer("SERVFAIL", RecordType::A, &[], 3.0));
        assert_eq!(
            (out.status, out.message.as_str()),
            (
                Status::Down,
                "SERVFAIL from 192.0.2.53:53 for example.com A"
            )
        );
        let out = judge(&p, &answer("NOERROR", RecordType::A, &[], 3.0));
        assert_eq!(
            (out.status, out.message.as_str()),
            (Status::Down, "no A records for example.com")
        );
        let cname_only = answer("NOERROR", RecordType::Cname, &["other.example."], 3.0);
        assert_eq!(judge(&p, &cname_only).status, Status::Down);

        let nx = plan(json!({"name": "gone.example", "expect_nxdomain": true}));
        let out = judge(&nx, &answer("nxdomain", RecordType::A, &[], 4.0));
        assert_eq!(
            (out.status, out.message.as_str()),
            (
                Status::Up,
                "gone.example does not exist (NXDOMAIN) in 4.0 ms"
            )
        );
        let out = judge(&nx, &answer("NOERROR", RecordType::A, &["192.0.2.1"], 4.0));
        assert_eq!(
            (out.status, out.message.as_str()),
            (
                Status::Down,
                "expected NXDOMAIN, but gone.example exists (1 A record)"
            )
        );

        let slow = plan(json!({"name": "example.com", "degraded_above_ms": 10}));
        let out = judge(
            &slow,
            &answer("NOERROR", RecordType::A, &["192.0.2.1"], 25.0),
        );
        assert_eq!(out.status, Status::Degraded);
        assert!(
            out.message.ends_with("(slower than 10 ms)"),
            "{}",
            out.message
        );
    }

    #[test]
    fn expected_values_any_and_all() {
        let any = plan(
            json!({"name": "example.com", "record_type": "MX", "expected": ["10 mx1.example.com", "20 MX9.example.com."]}),
        );
        let got = answer(
            "NOERROR",
            RecordType::Mx,
            &["10 mx1.example.com.", "20 mx2.example.com."],
            5.0,
        );
        assert_eq!(judge(&any, &got).status, Status::Up);

        let all = plan(
            json!({"name": "example.com", "record_type": "MX", "match": "all", "expected": ["10 mx1.example.com", "20 MX9.example.com."]}),
        );
        let out = judge(&all, &got);
        assert_eq!(out.status, Status::Down);
        assert_eq!(
            out.message,
            "example.com MX: missing 20 MX9.example.com., got 10 mx1.example.com., 20 mx2.example.com."
        );
        assert_eq!(
            out.details_value().unwrap()["missing"],
            json!(["20 MX9.example.com."])
        );

        let none = plan(json!({"name": "example.com", "expected": ["192.0.2.9"]}));
        let out = judge(
            &none,
            &answer("NOERROR", RecordType::A, &["192.0.2.1"], 5.0),
        );
        assert_eq!(
            (out.status, out.message.as_str()),
            (
                Status::Down,
                "example.com A: expected 192.0.2.9, got 192.0.2.1"
            )
        );
        let two = plan(json!({"name": "example.com", "expected": ["192.0.2.8", "192.0.2.9"]}));
        let out = judge(&two, &answer("NOERROR", RecordType::A, &["192.0.2.1"], 5.0));
        assert_eq!(
            out.message,
            "example.com A: expected any of 192.0.2.8, 192.0.2.9, got 192.0.2.1"
        );

        let txt = plan(
            json!({"name": "example.com", "record_type": "TXT", "match": "all", "expected": ["v=spf1 include:_spf.example.net -all"]}),
        );
        let got = answer(
            "NOERROR",
            RecordType::Txt,
            &[
                "\"google-site-verification=abc\"",
                "\"v=spf1 include:_spf.example.net\" \" -all\"",
            ],
            5.0,
        );
        assert_eq!(judge(&txt, &got).status, Status::Up);
    }

    #[test]
    fn full_check_through_the_mock_capability() {
        mock::reset();
        let ctx = Context::for_test(2_000);
        mock::dns(|q| {
            assert_eq!(q.record_type, RecordType::Aaaa);
            assert!(q.timeout_ms <= 2_000);
            assert_eq!(q.resolver.as_deref(), Some("9.9.9.9"));
            Ok(answer("NOERROR", RecordType::Aaaa, &["2001:db8::1"], 8.0))
        });
        let cfg = r#"{"name":"example.com","record_type":"AAAA","resolver":"9.9.9.9","timeout_ms":30000,"expected":["2001:DB8:0::1"]}"#;
        let out = run_check::<DnsCheck>(cfg, &ctx);
        assert_eq!(
            (out.status, out.message.as_str()),
            (Status::Up, "example.com AAAA → 2001:db8::1 in 8.0 ms")
        );

        mock::dns(|_| Err(CapError::Timeout("no answer within 2000 ms".into())));
        let out = run_check::<DnsCheck>(r#"{"name":"example.com"}"#, &ctx);
        assert_eq!(
            (out.status, out.message.as_str()),
            (
                Status::Down,
                "resolving example.com A failed: timeout: no answer within 2000 ms"
            )
        );
        mock::reset();
    }

    #[test]
    fn describe() {
        let info = pharos_sdk::plugin_info::<DnsCheck>();
        assert_eq!(
            (info.name.as_str(), info.version.as_str()),
            ("dns", "0.1.0")
        );
        assert_eq!(info.capabilities, vec!["dns".to_string()]);
        let schema: Value = serde_json::from_str(&info.config_schema).unwrap();
        for (name, prop) in schema["properties"].as_object().unwrap() {
            assert!(prop["description"].is_string(), "{name} has no description");
        }
    }
}
