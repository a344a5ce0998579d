//! Write Pharos check plugins and notifier plugins in Rust.
//!
//! Source files of this crate (all of them; `pharos plugin new` vendors exactly these next to a
//! copy of `wit/`):
//! - src/lib.rs      — bindings, the [`Check`] trait, [`export_check!`], [`Context`], [`CapError`]
//! - src/outcome.rs  — [`Outcome`] and its builders
//! - src/net.rs      — the [`http`], [`tcp`], [`dns`] and [`tls`] capability wrappers
//! - src/log.rs      — the [`log`] capability and the `trace!` … `error!` macros
//! - src/notify.rs   — notifier plugins: [`notify::Notify`], [`export_notify!`], HTTP helpers
//! - src/notify/testing.rs — native-only sample notifications and a recording HTTP mock
//! - src/smtp.rs     — the [`smtp`] capability wrapper (notifiers)
//! - src/mock.rs     — native-only stand-ins for the capabilities, for unit tests
//! - src/arena.rs    — [`arena::Arena`], an opt-in bump allocator for short invocations
//!
//! A plugin is a `cdylib` crate built for `wasm32-wasip2`:
//!
//! ```
//! use pharos_sdk::{Check, Context, Info, Outcome, http};
//!
//! #[derive(serde::Deserialize)]
//! struct Config { url: String }
//!
//! struct Ping;
//!
//! impl Check for Ping {
//!     type Config = Config;
//!     fn info() -> Info {
//!         Info {
//!             name: "ping",
//!             version: env!("CARGO_PKG_VERSION"),
//!             description: "GETs a URL",
//!             config_schema: r#"{"type": "object", "properties": {"url": {"type": "string"}}}"#,
//!             capabilities: &["http"],
//!         }
//!     }
//!     fn check(config: Config, ctx: &Context) -> Outcome {
//!         match http::Request::get(&config.url).timeout_ms(ctx.remaining_ms()).send() {
//!             Ok(resp) => Outcome::up(format!("HTTP {}", resp.status)),
//!             Err(e) => e.into(),
//!         }
//!     }
//! }
//!
//! pharos_sdk::export_check!(Ping);
//! ```
//!
//! Capability calls only work inside the sandbox. On other targets (native unit tests) they
//! go to the handlers installed with the functions of [`mock`], or fail with
//! [`CapError::NotGranted`] when none is installed.

#![warn(missing_docs)]

use std::fmt;
use std::marker::PhantomData;
use std::time::Instant;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub mod arena;
pub mod log;
#[cfg(not(target_arch = "wasm32"))]
pub mod mock;
mod net;
pub mod notify;
mod outcome;
pub mod smtp;

pub use crate::log::Level;
pub use net::{dns, http, tcp, tls};
pub use outcome::{MAX_MESSAGE_BYTES, Outcome, truncate_message};
pub use serde_json;

/// The raw wit-bindgen bindings of the `pharos:plugin/planned-check-plugin` world (the
/// `check-plugin` world plus the optional `planner` export).
///
/// Plugins normally use the wrappers of this crate instead; the bindings are public for the
/// rare case a wrapper lacks something.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "planned-check-plugin",
        pub_export_macro: true,
        default_bindings_module: "pharos_sdk::bindings",
        runtime_path: "pharos_sdk::__private::wit_bindgen::rt",
        additional_derives: [serde::Serialize],
        with: {
            "pharos:plugin/types@0.1.0/cap-error": crate::CapError,
        },
    });
}

/// The raw wit-bindgen bindings of the `pharos:plugin/notify-plugin` world: the `notifier`
/// export and the `smtp` import (the other interfaces are shared with [`bindings`]).
#[allow(missing_docs, clippy::all)]
pub mod notify_bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "notify-plugin",
        pub_export_macro: true,
        default_bindings_module: "pharos_sdk::notify_bindings",
        runtime_path: "pharos_sdk::__private::wit_bindgen::rt",
        with: {
            "pharos:plugin/types@0.1.0": crate::bindings::pharos::plugin::types,
            "pharos:plugin/types@0.1.0/cap-error": crate::CapError,
            "pharos:plugin/http@0.1.0": crate::bindings::pharos::plugin::http,
            "pharos:plugin/tcp@0.1.0": crate::bindings::pharos::plugin::tcp,
            "pharos:plugin/dns@0.1.0": crate::bindings::pharos::plugin::dns,
            "pharos:plugin/tls@0.1.0": crate::bindings::pharos::plugin::tls,
            "pharos:plugin/log@0.1.0": crate::bindings::pharos::plugin::log,
        },
    });
}

// Lets the paths above, which must also work from plugin crates, resolve inside this crate.
extern crate self as pharos_sdk;

/// Types shared by every interface: the verdict, phase timings, metrics and certificates.
pub use bindings::pharos::plugin::types::{CertSummary, Metric, PhaseTimings, Status};

/// What a plugin tells the host about itself; returned by [`Check::info`].
#[derive(Debug, Clone)]
pub struct Info {
    /// Stable identifier, lowercase `[a-z0-9-]`, e.g. `http`.
    pub name: &'static str,
    /// Semantic version, usually `env!("CARGO_PKG_VERSION")`.
    pub version: &'static str,
    /// One line shown in the UI and the CLI.
    pub description: &'static str,
    /// JSON Schema (draft 2020-12) of the config, as JSON text (e.g. `include_str!("../schema.json")`);
    /// `$schema` is added when missing. Text rather than a value keeps `describe()` cheap.
    pub config_schema: &'static str,
    /// Capabilities the plugin needs: any of "http", "tcp", "dns", "tls", "smtp".
    pub capabilities: &'static [&'static str],
}

/// A check type: implement this and pass the type to [`export_check!`].
///
/// A check that is one HTTP request judged by a pure function should also implement
/// [`Check::plan`] and [`Check::evaluate`] (and let [`check_by_plan`] be its `check`): Pharos
/// then sends the request itself and no sandbox stays alive while the check waits on the
/// network, which makes such checks several times cheaper at high concurrency.
pub trait Check {
    /// The config document, deserialized from the monitor's JSON config.
    type Config: DeserializeOwned;

    /// Describes the plugin; must be pure and fast.
    fn info() -> Info;

    /// Runs one check. Config that fails to deserialize never gets here: it becomes an
    /// [`Status::Error`] outcome naming the offending field.
    fn check(config: Self::Config, ctx: &Context) -> Outcome;

    /// How checks of this config run. Must depend on `config` only (the host plans once
    /// per distinct config and reuses the answer) and cannot use capabilities. The default,
    /// [`Plan::Check`], always runs [`Check::check`].
    fn plan(config: &Self::Config) -> Plan {
        let _ = config;
        Plan::Check
    }

    /// Judges the result of the request [`Check::plan`] returned; `ctx` counts the request's
    /// time as elapsed. Cannot use capabilities.
    fn evaluate(
        config: Self::Config,
        ctx: &Context,
        response: Result<http::Response, CapError>,
    ) -> Outcome {
        let _ = (config, ctx, response);
        Outcome::error("the plugin planned an HTTP request but does not implement `evaluate`")
    }
}

/// How the host should run checks of one config; returned by [`Check::plan`].
#[derive(Debug, Clone)]
pub enum Plan {
    /// Run [`Check::check`] with the capabilities as imports (the general path).
    Check,
    /// Send this request from the host (its timeout capped by the check's deadline), then
    /// judge the result with [`Check::evaluate`].
    Http(http::Request),
    /// The outcome is known from the config alone (e.g. two fields that exclude each other).
    Done(Outcome),
}

/// `check` of a planned check, exactly as the host runs it: [`Check::plan`], the request
/// sent within the check's deadline, [`Check::evaluate`]. Use it as the body of
/// [`Check::check`] so that hosts without the fast path (and unit tests) agree with it.
pub fn check_by_plan<C: Check>(config: C::Config, ctx: &Context) -> Outcome {
    match C::plan(&config) {
        Plan::Http(request) => {
            let budget = ctx.budget_ms(request.timeout_ms);
            let response = request.timeout_ms(budget).send();
            C::evaluate(config, ctx, response)
        }
        Plan::Done(outcome) => outcome,
        Plan::Check => Outcome::error(
            "check_by_plan needs a plan: implement `Check::plan` or write `Check::check` itself",
        ),
    }
}

/// Wires a [`Check`] implementation to the component's `checker` export.
///
/// Invoke it once, at the root of the plugin crate: `pharos_sdk::export_check!(MyCheck);`
/// On other targets than wasm32 it exports nothing (natively, test through [`run_check`]).
#[macro_export]
macro_rules! export_check {
    ($ty:ty) => {
        #[doc(hidden)]
        #[allow(dead_code)]
        type __PharosCheckExport = $crate::__private::Adapter<$ty>;
        // Component exports have names (`pharos:plugin/checker@0.1.0#check`) that native
        // linkers reject, so they exist only in the wasm build.
        #[cfg(target_arch = "wasm32")]
        $crate::__private::export!(__PharosCheckExport with_types_in $crate::__private::bindings);
    };
}

/// Who is being checked and how much time is left; passed to [`Check::check`].
#[derive(Debug, Clone)]
pub struct Context {
    /// The monitor's id.
    pub monitor_id: String,
    /// The monitor's display name.
    pub monitor_name: String,
    /// The region running the check, `local` by default.
    pub region: String,
    /// 1 for the scheduled run, 2+ for retries.
    pub attempt: u32,
    /// Milliseconds the whole check may take; host calls are cut off at this deadline.
    pub deadline_ms: u32,
    clock: Clock,
}

/// Where a [`Context`] gets the elapsed time from.
#[derive(Debug, Clone, Copy)]
enum Clock {
    /// The check started at this instant (read through the sandbox's clock).
    Running(Instant),
    /// The host measured it: `evaluate` judges a response as of the instant it arrived,
    /// without reading a clock.
    Fixed(f64),
}

impl Clock {
    /// A running clock, where the target has one; a plugin built as a core module for
    /// `wasm32-unknown-unknown` has none (its durations come from the host's timings).
    fn start() -> Self {
        if cfg!(all(target_arch = "wasm32", target_os = "unknown")) {
            Clock::Fixed(0.0)
        } else {
            Clock::Running(Instant::now())
        }
    }
}

impl Context {
    /// Creates a context whose deadline starts counting now (used by the export glue and tests).
    pub fn new(
        monitor_id: &str,
        monitor_name: &str,
        region: &str,
        attempt: u32,
        deadline_ms: u32,
    ) -> Self {
        let clock = Clock::start();
        Self::with_clock(
            monitor_id,
            monitor_name,
            region,
            attempt,
            deadline_ms,
            clock,
        )
    }

    /// The context that `evaluate` sees: `elapsed_ms` gone when the host's request ended, and
    /// frozen there (no clock is read while the response is judged).
    pub fn at_elapsed_ms(
        monitor_id: &str,
        monitor_name: &str,
        region: &str,
        attempt: u32,
        deadline_ms: u32,
        elapsed_ms: f64,
    ) -> Self {
        let ms = if elapsed_ms.is_finite() {
            elapsed_ms.max(0.0)
        } else {
            0.0
        };
        let clock = Clock::Fixed(ms);
        Self::with_clock(
            monitor_id,
            monitor_name,
            region,
            attempt,
            deadline_ms,
            clock,
        )
    }

    fn with_clock(
        monitor_id: &str,
        monitor_name: &str,
        region: &str,
        attempt: u32,
        deadline_ms: u32,
        clock: Clock,
    ) -> Self {
        Context {
            monitor_id: monitor_id.to_string(),
            monitor_name: monitor_name.to_string(),
            region: region.to_string(),
            attempt,
            deadline_ms,
            clock,
        }
    }

    /// A context for unit tests: monitor `test`, region `local`, first attempt.
    pub fn for_test(deadline_ms: u32) -> Self {
        Context::new("test", "test", "local", 1, deadline_ms)
    }

    /// Milliseconds elapsed since the check started.
    pub fn elapsed_ms(&self) -> f64 {
        match self.clock {
            Clock::Running(started) => started.elapsed().as_secs_f64() * 1000.0,
            Clock::Fixed(ms) => ms,
        }
    }

    /// Milliseconds left before the deadline (0 once it passed).
    pub fn remaining_ms(&self) -> u32 {
        let left = f64::from(self.deadline_ms) - self.elapsed_ms().floor();
        // In range: `left` lies between 0 and `deadline_ms`, a u32.
        left.clamp(0.0, f64::from(self.deadline_ms)) as u32
    }

    /// `wanted` capped by the time left: the timeout to give the next capability call.
    pub fn budget_ms(&self, wanted: u32) -> u32 {
        wanted.min(self.remaining_ms())
    }
}

/// Why a capability call failed. Every variant carries a human-readable reason.
///
/// `Display` gives `kind: reason`, e.g. `timeout: no response within 5000 ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "reason", rename_all = "kebab-case")]
pub enum CapError {
    /// The plugin did not declare this capability, or an admin did not grant it.
    NotGranted(String),
    /// The destination is forbidden by the host policy (SSRF guard).
    PolicyDenied(String),
    /// The request itself is malformed (bad URL, bad header, bad name).
    InvalidRequest(String),
    /// Name resolution failed.
    Dns(String),
    /// The TCP connection could not be established.
    Connect(String),
    /// The TLS handshake failed or the certificate was rejected.
    Tls(String),
    /// The operation did not finish within its timeout or the check's deadline.
    Timeout(String),
    /// A size limit was exceeded.
    TooLarge(String),
    /// The peer spoke something unexpected (malformed HTTP, closed mid-message).
    Protocol(String),
    /// A per-invocation limit on host calls was exhausted.
    LimitExceeded(String),
    /// Any other I/O failure.
    Io(String),
}

impl CapError {
    /// The WIT case name: `not-granted`, `policy-denied`, `timeout`, …
    pub fn kind(&self) -> &'static str {
        match self {
            CapError::NotGranted(_) => "not-granted",
            CapError::PolicyDenied(_) => "policy-denied",
            CapError::InvalidRequest(_) => "invalid-request",
            CapError::Dns(_) => "dns",
            CapError::Connect(_) => "connect",
            CapError::Tls(_) => "tls",
            CapError::Timeout(_) => "timeout",
            CapError::TooLarge(_) => "too-large",
            CapError::Protocol(_) => "protocol",
            CapError::LimitExceeded(_) => "limit-exceeded",
            CapError::Io(_) => "io",
        }
    }

    /// The human-readable reason given by the host.
    pub fn reason(&self) -> &str {
        match self {
            CapError::NotGranted(r)
            | CapError::PolicyDenied(r)
            | CapError::InvalidRequest(r)
            | CapError::Dns(r)
            | CapError::Connect(r)
            | CapError::Tls(r)
            | CapError::Timeout(r)
            | CapError::TooLarge(r)
            | CapError::Protocol(r)
            | CapError::LimitExceeded(r)
            | CapError::Io(r) => r,
        }
    }

    /// True when the failure says something about the target (it is down), false when the
    /// check itself could not be performed (grants, policy, malformed request, limits).
    pub fn is_target_failure(&self) -> bool {
        !matches!(
            self,
            CapError::NotGranted(_)
                | CapError::PolicyDenied(_)
                | CapError::InvalidRequest(_)
                | CapError::LimitExceeded(_)
        )
    }

    /// The status a check should report for this failure: `down` or `error`.
    pub fn status(&self) -> Status {
        if self.is_target_failure() {
            Status::Down
        } else {
            Status::Error
        }
    }
}

impl fmt::Display for CapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind(), self.reason())
    }
}

impl std::error::Error for CapError {}

/// A config document that does not deserialize into a plugin's `Config` type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the problem is, as a dotted path (`headers.accept`, `assertions[2].op`); `.` for
    /// the document itself.
    pub path: String,
    /// What is wrong there.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path == "." || self.path.is_empty() {
            write!(f, "invalid config: {}", self.reason)
        } else {
            write!(f, "invalid config at `{}`: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for Outcome {
    fn from(err: ConfigError) -> Outcome {
        Outcome::error(err.to_string()).details(serde_json::json!({
            "config_error": { "path": err.path, "reason": err.reason }
        }))
    }
}

/// Parses a config document, naming the offending field on failure.
pub fn parse_config<T: DeserializeOwned>(json: &str) -> Result<T, ConfigError> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| ConfigError {
        path: e.path().to_string(),
        reason: without_position(e.inner()),
    })?;
    de.end().map_err(|e| ConfigError {
        path: ".".to_string(),
        reason: without_position(&e),
    })?;
    Ok(value)
}

/// A serde_json error's message without the ` at line 1 column 7` suffix.
fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    match text.strip_suffix(&suffix) {
        Some(stripped) => stripped.to_string(),
        None => text,
    }
}

/// Parses `config` and runs `C::check`, exactly as the export glue does (use it in tests).
pub fn run_check<C: Check>(config: &str, ctx: &Context) -> Outcome {
    match parse_config::<C::Config>(config) {
        Ok(config) => C::check(config, ctx),
        Err(err) => err.into(),
    }
}

/// The plugin description that `describe()` returns, as the host sees it.
pub fn plugin_info<C: Check>() -> bindings::pharos::plugin::types::PluginInfo {
    let info = C::info();
    let schema = with_schema_uri(info.config_schema);
    bindings::pharos::plugin::types::PluginInfo {
        name: info.name.to_string(),
        version: info.version.to_string(),
        kind: bindings::pharos::plugin::types::PluginKind::Check,
        description: info.description.to_string(),
        config_schema: schema,
        capabilities: info.capabilities.iter().map(|c| c.to_string()).collect(),
    }
}

/// The schema text with a draft 2020-12 `$schema` member first when it has none.
pub(crate) fn with_schema_uri(schema: &str) -> String {
    const URI: &str = "https://json-schema.org/draft/2020-12/schema";
    if schema.contains("\"$schema\"") {
        return schema.to_string();
    }
    match schema.find('{') {
        Some(i) => {
            let rest = schema[i + 1..].trim_start();
            let sep = if rest.starts_with('}') { "" } else { "," };
            format!("{}{{\"$schema\":\"{URI}\"{sep}{rest}", &schema[..i])
        }
        // Not an object: the host rejects it with a clear error.
        None => schema.to_string(),
    }
}

/// Glue used by [`export_check!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    use super::*;
    use crate::bindings::exports::pharos::plugin::checker::{CheckOutcome, CheckRequest, Guest};
    use crate::bindings::exports::pharos::plugin::planner::{self, CheckPlan};

    pub use crate::bindings;
    pub use crate::bindings::export;
    pub use wit_bindgen;

    /// Implements the generated `Guest` trait for a [`Check`].
    pub struct Adapter<T>(PhantomData<T>);

    impl<T: Check> Guest for Adapter<T> {
        fn describe() -> bindings::pharos::plugin::types::PluginInfo {
            plugin_info::<T>()
        }

        fn check(req: CheckRequest) -> CheckOutcome {
            let ctx = context(&req);
            finish(run_check::<T>(&req.config, &ctx), &ctx)
        }
    }

    impl<T: Check> planner::Guest for Adapter<T> {
        fn plan(config: String) -> CheckPlan {
            match parse_config::<T::Config>(&config) {
                Err(err) => CheckPlan::Done(Outcome::from(err).into_wit()),
                Ok(config) => match T::plan(&config) {
                    Plan::Check => CheckPlan::Check,
                    Plan::Http(request) => CheckPlan::Http(request),
                    Plan::Done(outcome) => CheckPlan::Done(outcome.into_wit()),
                },
            }
        }

        fn evaluate(
            req: CheckRequest,
            response: Result<http::Response, CapError>,
            elapsed_ms: f64,
        ) -> CheckOutcome {
            let ctx = Context::at_elapsed_ms(
                &req.monitor.id,
                &req.monitor.name,
                &req.monitor.region,
                req.attempt,
                req.deadline_ms,
                elapsed_ms,
            );
            // `plan` accepted this config, so the plain parse succeeds; the path-tracking one
            // runs only to explain a failure.
            let parsed = serde_json::from_str::<T::Config>(&req.config)
                .or_else(|_| parse_config::<T::Config>(&req.config));
            let outcome = match parsed {
                Ok(config) => T::evaluate(config, &ctx, response),
                Err(err) => err.into(),
            };
            finish(outcome, &ctx)
        }
    }

    fn context(req: &CheckRequest) -> Context {
        Context::new(
            &req.monitor.id,
            &req.monitor.name,
            &req.monitor.region,
            req.attempt,
            req.deadline_ms,
        )
    }

    /// The outcome for the host, with the elapsed time as latency when the check set none.
    fn finish(mut outcome: Outcome, ctx: &Context) -> CheckOutcome {
        if outcome.latency_ms.is_none() && outcome.timings.total_ms.is_none() {
            outcome.latency_ms = Some(ctx.elapsed_ms());
        }
        outcome.into_wit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Cfg {
        url: String,
        #[serde(default)]
        retries: u32,
        #[serde(default)]
        headers: Vec<Hdr>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Hdr {
        name: String,
        value: String,
    }

    struct Dummy;

    impl Check for Dummy {
        type Config = Cfg;
        fn info() -> Info {
            Info {
                name: "dummy",
                version: "1.2.3",
                description: "A dummy",
                config_schema: r#"{"type": "object"}"#,
                capabilities: &["http", "dns"],
            }
        }
        fn check(config: Cfg, ctx: &Context) -> Outcome {
            Outcome::up(format!(
                "{} x{} on {}",
                config.url, config.retries, ctx.region
            ))
        }
    }

    #[test]
    fn cap_error_display_is_kind_colon_reason() {
        assert_eq!(
            CapError::Timeout("no answer".into()).to_string(),
            "timeout: no answer"
        );
        assert_eq!(
            CapError::PolicyDenied("10.0.0.1 is private".into()).to_string(),
            "policy-denied: 10.0.0.1 is private"
        );
        assert_eq!(CapError::NotGranted("x".into()).status(), Status::Error);
        assert_eq!(CapError::Connect("refused".into()).status(), Status::Down);
        let json = serde_json::to_value(CapError::Dns("nx".into())).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "dns", "reason": "nx"}));
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = parse_config::<Cfg>(r#"{"url": "x", "retries": "three"}"#).unwrap_err();
        assert_eq!(err.path, "retries");
        assert!(
            err.to_string()
                .starts_with("invalid config at `retries`: invalid type"),
            "{err}"
        );

        let err = parse_config::<Cfg>(r#"{"url": "x", "headers": [{"name": "a"}]}"#).unwrap_err();
        assert_eq!(err.path, "headers[0]");
        assert!(err.reason.contains("missing field `value`"), "{err}");

        let err = parse_config::<Cfg>(r#"{"url": "x", "bogus": 1}"#).unwrap_err();
        assert!(err.reason.contains("unknown field `bogus`"), "{err}");

        let err = parse_config::<Cfg>("{}").unwrap_err();
        assert_eq!(err.to_string(), "invalid config: missing field `url`");

        assert!(parse_config::<Cfg>(r#"{"url": "x"} trailing"#).is_err());
    }

    #[test]
    fn run_check_parses_and_reports_config_errors() {
        let ctx = Context::new("m1", "Monitor", "eu", 2, 5000);
        let out = run_check::<Dummy>(r#"{"url": "u", "retries": 3}"#, &ctx);
        assert_eq!(out.status, Status::Up);
        assert_eq!(out.message, "u x3 on eu");

        let out = run_check::<Dummy>(r#"{"url": 5}"#, &ctx);
        assert_eq!(out.status, Status::Error);
        assert!(out.message.contains("`url`"), "{}", out.message);
        let details = out.details_value().unwrap();
        assert_eq!(details["config_error"]["path"], "url");
    }

    #[test]
    fn evaluate_context_is_frozen_at_the_hosts_elapsed_time() {
        let ctx = Context::at_elapsed_ms("m1", "Monitor", "eu", 1, 5000, 1234.5);
        assert_eq!(ctx.elapsed_ms(), 1234.5);
        assert_eq!(ctx.remaining_ms(), 3766);
        assert_eq!(ctx.budget_ms(10_000), 3766);
        let late = Context::at_elapsed_ms("m1", "Monitor", "eu", 1, 5000, 9000.0);
        assert_eq!(late.remaining_ms(), 0);
        let bogus = Context::at_elapsed_ms("m1", "Monitor", "eu", 1, 5000, f64::NAN);
        assert_eq!(bogus.elapsed_ms(), 0.0);
        assert_eq!(bogus.remaining_ms(), 5000);
    }

    #[test]
    fn plugin_info_adds_schema_and_kind() {
        let info = plugin_info::<Dummy>();
        assert_eq!(info.name, "dummy");
        assert_eq!(
            info.capabilities,
            vec!["http".to_string(), "dns".to_string()]
        );
        let schema: serde_json::Value = serde_json::from_str(&info.config_schema).unwrap();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(schema["type"], "object");
    }

    #[test]
    fn schema_uri_is_added_only_when_missing() {
        assert_eq!(
            with_schema_uri("{}"),
            r#"{"$schema":"https://json-schema.org/draft/2020-12/schema"}"#
        );
        let with = with_schema_uri(r#" {"type":"object"}"#);
        let v: serde_json::Value = serde_json::from_str(&with).unwrap();
        assert_eq!(v["type"], "object");
        assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema");
        let own = r#"{"$schema":"https://json-schema.org/draft/2019-09/schema"}"#;
        assert_eq!(with_schema_uri(own), own);
    }

    #[test]
    fn adapter_runs_checks_like_the_host_calls_them() {
        use crate::__private::Adapter;
        use crate::bindings::exports::pharos::plugin::checker::{
            CheckRequest, Guest, MonitorContext,
        };
        let req = |config: &str| CheckRequest {
            config: config.to_string(),
            deadline_ms: 1000,
            attempt: 3,
            monitor: MonitorContext {
                id: "m".into(),
                name: "M".into(),
                region: "ap-south".into(),
            },
        };
        let out = <Adapter<Dummy> as Guest>::check(req(r#"{"url":"u","retries":1}"#));
        assert_eq!(out.status, Status::Up);
        assert_eq!(out.message, "u x1 on ap-south");
        assert!(out.latency_ms >= 0.0 && out.latency_ms < 1000.0);
        let out = <Adapter<Dummy> as Guest>::check(req("not json"));
        assert_eq!(out.status, Status::Error);
        assert!(out.details.unwrap().contains("config_error"));
        assert_eq!(<Adapter<Dummy> as Guest>::describe().name, "dummy");
    }

    #[test]
    fn context_budget() {
        let ctx = Context::for_test(10_000);
        assert!(ctx.remaining_ms() <= 10_000 && ctx.remaining_ms() > 9_000);
        assert_eq!(ctx.budget_ms(500), 500);
        assert!(ctx.budget_ms(60_000) <= 10_000);
        let expired = Context::for_test(0);
        assert_eq!(expired.remaining_ms(), 0);
        assert_eq!(expired.budget_ms(100), 0);
    }
}
