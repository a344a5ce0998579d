//! The `http` check: sends one HTTP(S) request and judges the response.
//!
//! - Config → [`Plan`] ([`Plan::from_config`]): method, headers, auth, expected statuses and
//!   compiled assertions; bad regexes, JSONPaths or status specs are config errors.
//! - The check is planned ([`Check::plan`]): the host sends [`Plan::request`] itself and
//!   calls [`Check::evaluate`], so no sandbox waits on the network; everything else is pure:
//!   [`evaluate`] turns a response into an outcome. `check` is the same steps in one call.
//!
//! Verdict, in order: capability failure → `down` (or `error` for policy/grant problems);
//! status not expected → `degraded` for 429/503, else `down`; failed assertion → `down`;
//! slower than `degraded_above_ms` → `degraded`; else `up` with `HTTP 200 in 12 ms`.

pub mod assertions;
pub mod status;

use std::collections::BTreeMap;

use pharos_sdk::http::{Request, Response};
use pharos_sdk::{CapError, Check, Context, Info, Outcome, serde_json};
use serde::{Deserialize, Serialize};
#[cfg(test)]
use serde_json::Value;
use serde_json::json;

use crate::assertions::{Assertions, HeaderAssertion, JsonAssertion};
use crate::status::{ExpectedStatus, StatusSet};

/// Default request timeout.
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;
/// Default number of redirects followed.
pub const DEFAULT_MAX_REDIRECTS: u8 = 5;
/// Default cap on the body bytes kept for assertions.
pub const DEFAULT_MAX_BODY_BYTES: u32 = 1024 * 1024;

/// HTTP methods the check can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `GET`.
    #[default]
    Get,
    /// `HEAD`.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
    /// `OPTIONS`.
    Options,
}

impl Method {
    /// The method token.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }
}

/// HTTP basic credentials.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password (secret).
    pub password: String,
}

/// The `http` plugin's config; see [`schema`] for the documentation of each field.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Absolute `http://` or `https://` URL.
    pub url: String,
    /// Request method.
    #[serde(default)]
    pub method: Method,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request body.
    #[serde(default)]
    pub body: Option<String>,
    /// HTTP basic credentials.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Bearer token (secret).
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// Timeout of the whole exchange.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u32,
    /// Acceptable statuses; `200-399` when absent.
    #[serde(default)]
    pub expected_status: Option<ExpectedStatus>,
    /// Follow redirects.
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    /// Redirects followed at most.
    #[serde(default = "default_max_redirects")]
    pub max_redirects: u8,
    /// Reject invalid certificates.
    #[serde(default = "yes")]
    pub verify_tls: bool,
    /// Body bytes kept for assertions.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u32,
    /// Substrings the body must contain.
    #[serde(default)]
    pub body_contains: Vec<String>,
    /// Substrings the body must not contain.
    #[serde(default)]
    pub body_not_contains: Vec<String>,
    /// Regexes the body must match.
    #[serde(default)]
    pub body_regex: Vec<String>,
    /// JSONPath assertions on the body.
    #[serde(default)]
    pub json_assertions: Vec<JsonAssertion>,
    /// Assertions on response headers.
    #[serde(default)]
    pub header_assertions: Vec<HeaderAssertion>,
    /// Report `degraded` when the exchange takes longer.
    #[serde(default)]
    pub degraded_above_ms: Option<u32>,
}

fn default_timeout() -> u32 {
    DEFAULT_TIMEOUT_MS
}
fn default_max_redirects() -> u8 {
    DEFAULT_MAX_REDIRECTS
}
fn default_max_body() -> u32 {
    DEFAULT_MAX_BODY_BYTES
}
fn yes() -> bool {
    true
}

/// A validated config, ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The request to send (without the check's deadline applied).
    pub request: Request,
    /// How the response is judged.
    pub verdict: Verdict,
}

/// How a response is judged: the part of a [`Plan`] that `evaluate` needs.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Acceptable statuses.
    pub expected: StatusSet,
    /// True when `expected_status` was configured (then 429/503 are judged like any status).
    pub expected_explicit: bool,
    /// Compiled assertions.
    pub assertions: Assertions,
    /// Slowness threshold.
    pub degraded_above_ms: Option<u32>,
}

impl Verdict {
    /// Compiles the expected statuses and the assertions of `config`.
    pub fn from_config(config: &Config) -> Result<Verdict, String> {
        let (expected, expected_explicit) = match &config.expected_status {
            Some(e) => (
                StatusSet::from_config(e).map_err(|e| format!("expected_status: {e}"))?,
                true,
            ),
            None => (StatusSet::default_set(), false),
        };
        let assertions = Assertions::compile(
            &config.body_contains,
            &config.body_not_contains,
            &config.body_regex,
            &config.json_assertions,
            &config.header_assertions,
        )?;
        Ok(Verdict {
            expected,
            expected_explicit,
            assertions,
            degraded_above_ms: config.degraded_above_ms,
        })
    }
}

impl Plan {
    /// Validates `config` beyond what deserialization checks; errors are config errors.
    pub fn from_config(config: &Config) -> Result<Plan, String> {
        let url = config.url.trim();
        let lower = url.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("http://")
            .or_else(|| lower.strip_prefix("https://"));
        if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
            return Err(format!(
                "url: `{url}` is not an absolute http:// or https:// URL"
            ));
        }
        if config.timeout_ms == 0 {
            return Err("timeout_ms: must be at least 1".into());
        }
        let has_auth_header = config
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("authorization"));
        let auths = usize::from(config.basic_auth.is_some())
            + usize::from(config.bearer_token.is_some())
            + usize::from(has_auth_header);
        if auths > 1 {
            return Err(
                "set only one of basic_auth, bearer_token and an Authorization header".into(),
            );
        }
        let verdict = Verdict::from_config(config)?;
        let mut request = Request::new(config.method.as_str(), url)
            .timeout_ms(config.timeout_ms)
            .follow_redirects(if config.follow_redirects {
                config.max_redirects
            } else {
                0
            })
            .verify_tls(config.verify_tls)
            .max_body_bytes(config.max_body_bytes);
        for (name, value) in &config.headers {
            request = request.header(name, value);
        }
        if let Some(auth) = &config.basic_auth {
            request = request.basic_auth(&auth.username, &auth.password);
        }
        if let Some(token) = &config.bearer_token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = &config.body {
            request = request.body(body.as_bytes());
        }
        Ok(Plan { request, verdict })
    }
}

/// Formats milliseconds for messages: `3.2 ms` below 10 ms, else whole milliseconds.
pub fn fmt_ms(ms: f64) -> String {
    // Integer formatting: float formatting (`{:.1}`) costs several times more in a plugin
    // that runs once per check. Halves round to even, as `{:.1}` does.
    if !(0.0..1e15).contains(&ms) {
        return format!("{ms:.0} ms");
    }
    let tenths = (ms * 10.0).round_ties_even() as u64;
    if tenths < 100 {
        format!("{}.{} ms", tenths / 10, tenths % 10)
    } else {
        format!("{} ms", ms.round_ties_even() as u64)
    }
}

/// Judges a response against the verdict of a plan. `elapsed_ms` is used when the host gave no total time.
pub fn evaluate(verdict: &Verdict, resp: &Response, elapsed_ms: f64) -> Outcome {
    let total = resp.timings.total_ms.unwrap_or(elapsed_ms);
    let status_ok = verdict.expected.contains(resp.status);
    let failures = if status_ok && !verdict.assertions.is_empty() {
        let headers: Vec<(String, String)> = resp
            .headers
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        verdict.assertions.evaluate(&headers, &resp.text())
    } else {
        Vec::new()
    };

    let mut outcome = if !status_ok {
        let msg = format!("expected status {}, got {}", verdict.expected, resp.status);
        if !verdict.expected_explicit && matches!(resp.status, 429 | 503) {
            let why = if resp.status == 429 {
                "rate limited"
            } else {
                "service unavailable"
            };
            Outcome::degraded(format!("HTTP {} ({why}) in {}", resp.status, fmt_ms(total)))
        } else {
            Outcome::down(msg)
        }
    } else if let Some(first) = failures.first() {
        let more = if failures.len() > 1 {
            format!(" (+{} more)", failures.len() - 1)
        } else {
            String::new()
        };
        let truncated = if resp.body_truncated {
            format!(" (body truncated at {} bytes)", resp.body.len())
        } else {
            String::new()
        };
        Outcome::down(format!("{first}{more}{truncated}"))
    } else if let Some(limit) = verdict.degraded_above_ms.filter(|&l| total > f64::from(l)) {
        Outcome::degraded(format!(
            "HTTP {} in {} (slower than {limit} ms)",
            resp.status,
            fmt_ms(total)
        ))
    } else {
        Outcome::up(format!("HTTP {} in {}", resp.status, fmt_ms(total)))
    };

    outcome = outcome
        .latency_ms(total)
        .timings(resp.timings)
        .metric("http_status", f64::from(resp.status))
        .metric("body_bytes", resp.body.len() as f64);
    if let Some(cert) = &resp.peer_certificate {
        outcome = outcome.metric("tls_days_remaining", f64::from(cert.days_remaining));
    }
    outcome.details(Details {
        status: resp.status,
        version: &resp.version,
        final_url: &resp.final_url,
        remote_addr: &resp.remote_addr,
        redirects: &resp.redirects,
        body_truncated: resp.body_truncated,
        failed_assertions: &failures,
        tls: resp.peer_certificate.as_ref().map(|cert| TlsDetails {
            subject: &cert.subject,
            issuer: &cert.issuer,
            not_after: cert.not_after,
            days_remaining: cert.days_remaining,
        }),
    })
}

/// The details document of a check that got a response (serialized straight from here: no
/// `Value` tree is built once per check).
#[derive(Serialize)]
struct Details<'a> {
    status: u16,
    version: &'a str,
    final_url: &'a str,
    remote_addr: &'a str,
    redirects: &'a [pharos_sdk::http::RedirectHop],
    body_truncated: bool,
    failed_assertions: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<TlsDetails<'a>>,
}

/// The peer certificate part of [`Details`].
#[derive(Serialize)]
struct TlsDetails<'a> {
    subject: &'a str,
    issuer: &'a str,
    not_after: i64,
    days_remaining: i32,
}

/// The JSON Schema of the config (`schema.json` beside `Cargo.toml`), sent as-is by `describe()`.
pub const SCHEMA: &str = include_str!("../schema.json");

/// [`SCHEMA`] parsed, for tests.
#[cfg(test)]
pub fn schema() -> Value {
    serde_json::from_str(SCHEMA).expect("schema.json is JSON")
}

/// Pattern of an `expected_status` spec string.
pub const STATUS_SPEC_PATTERN: &str = r"^\s*([1-5]([0-9]{2}|[xX]{2})(\s*-\s*[1-5][0-9]{2})?)(\s*,\s*[1-5]([0-9]{2}|[xX]{2})(\s*-\s*[1-5][0-9]{2})?)*\s*$";

/// The `http` check.
pub struct HttpCheck;

impl Check for HttpCheck {
    type Config = Config;

    fn info() -> Info {
        Info {
            name: "http",
            version: env!("CARGO_PKG_VERSION"),
            description: "Sends an HTTP(S) request and checks status, timing, headers and body",
            config_schema: SCHEMA,
            capabilities: &["http"],
        }
    }

    fn check(config: Config, ctx: &Context) -> Outcome {
        pharos_sdk::check_by_plan::<Self>(config, ctx)
    }

    fn plan(config: &Config) -> pharos_sdk::Plan {
        match Plan::from_config(config) {
            Ok(plan) => pharos_sdk::Plan::Http(plan.request),
            Err(e) => pharos_sdk::Plan::Done(Outcome::error(format!("invalid config: {e}"))),
        }
    }

    fn evaluate(config: Config, ctx: &Context, response: Result<Response, CapError>) -> Outcome {
        // `plan` validated this config; only the judging part is needed here.
        let verdict = match Verdict::from_config(&config) {
            Ok(verdict) => verdict,
            Err(e) => return Outcome::error(format!("invalid config: {e}")),
        };
        match response {
            Ok(resp) => evaluate(&verdict, &resp, ctx.elapsed_ms()),
            Err(err) => Outcome::from_cap_error(&err)
                .latency_ms(ctx.elapsed_ms())
                .details(json!({"error": err, "url": config.url.trim()})),
        }
    }
}

pharos_sdk::export_check!(HttpCheck);

// Each invocation is short and its instance is discarded: a bump allocator is enough.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOC: pharos_sdk::arena::Arena = pharos_sdk::arena::Arena::new();

#[cfg(test)]
mod tests;
