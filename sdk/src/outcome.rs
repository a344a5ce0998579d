//! The result of one check and its builders.

use crate::bindings::exports::pharos::plugin::checker::CheckOutcome;
use crate::{CapError, Metric, PhaseTimings, Status};

/// The result of one check: a status, a short message, latency, timings, metrics, details.
///
/// Build it with [`Outcome::up`], [`Outcome::degraded`], [`Outcome::down`] or
/// [`Outcome::error`] and chain the setters:
/// `Outcome::up("HTTP 200 in 12 ms").latency_ms(12.0).metric("http_status", 200.0)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The verdict.
    pub status: Status,
    /// Short human explanation, e.g. `HTTP 200 in 123 ms`.
    pub message: String,
    /// The latency that charts show; `timings.total_ms` (or 0) when unset.
    pub latency_ms: Option<f64>,
    /// Phase timings of the network exchange.
    pub timings: PhaseTimings,
    /// Named numeric measurements, in the order added.
    pub metrics: Vec<Metric>,
    /// Anything else worth keeping, as a JSON document.
    pub details: Option<serde_json::Value>,
}

impl Default for PhaseTimings {
    fn default() -> Self {
        PhaseTimings { dns_ms: None, connect_ms: None, tls_ms: None, first_byte_ms: None, total_ms: None }
    }
}

impl PartialEq for PhaseTimings {
    fn eq(&self, other: &Self) -> bool {
        self.dns_ms == other.dns_ms
            && self.connect_ms == other.connect_ms
            && self.tls_ms == other.tls_ms
            && self.first_byte_ms == other.first_byte_ms
            && self.total_ms == other.total_ms
    }
}

impl PartialEq for Metric {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.value == other.value
    }
}

impl Status {
    /// The lowercase name: `up`, `degraded`, `down` or `error`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Up => "up",
            Status::Degraded => "degraded",
            Status::Down => "down",
            Status::Error => "error",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Outcome {
    /// An outcome with the given status and message and nothing else.
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Outcome {
            status,
            message: message.into(),
            latency_ms: None,
            timings: PhaseTimings::default(),
            metrics: Vec::new(),
            details: None,
        }
    }

    /// The target behaves as expected.
    pub fn up(message: impl Into<String>) -> Self {
        Outcome::new(Status::Up, message)
    }

    /// The target answers but worse than expected (slow, rate-limited, expiring soon).
    pub fn degraded(message: impl Into<String>) -> Self {
        Outcome::new(Status::Degraded, message)
    }

    /// The target fails the check.
    pub fn down(message: impl Into<String>) -> Self {
        Outcome::new(Status::Down, message)
    }

    /// The check could not be performed (bad config, policy denial, plugin fault).
    pub fn error(message: impl Into<String>) -> Self {
        Outcome::new(Status::Error, message)
    }

    /// `down` or `error` (see [`CapError::status`]) with the error's text as message.
    pub fn from_cap_error(err: &CapError) -> Self {
        Outcome::new(err.status(), err.to_string())
    }

    /// Replaces the status.
    pub fn status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    /// Replaces the message.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Sets the latency that charts show, in milliseconds.
    pub fn latency_ms(mut self, ms: f64) -> Self {
        self.latency_ms = Some(ms);
        self
    }

    /// Sets the phase timings.
    pub fn timings(mut self, timings: PhaseTimings) -> Self {
        self.timings = timings;
        self
    }

    /// Adds a named metric, replacing an earlier one of the same name.
    pub fn metric(mut self, name: impl Into<String>, value: f64) -> Self {
        let name = name.into();
        self.metrics.retain(|m| m.name != name);
        self.metrics.push(Metric { name, value });
        self
    }

    /// Sets the JSON details document.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The value of the metric called `name`, if any.
    pub fn get_metric(&self, name: &str) -> Option<f64> {
        self.metrics.iter().find(|m| m.name == name).map(|m| m.value)
    }

    /// The latency the host will record: the explicit one, else `timings.total_ms`, else 0.
    pub fn effective_latency_ms(&self) -> f64 {
        let ms = self.latency_ms.or(self.timings.total_ms).unwrap_or(0.0);
        if ms.is_finite() && ms >= 0.0 { ms } else { 0.0 }
    }

    /// Converts into the record the `checker.check` export returns.
    pub fn into_wit(self) -> CheckOutcome {
        let latency_ms = self.effective_latency_ms();
        CheckOutcome {
            status: self.status,
            message: self.message,
            latency_ms,
            timings: self.timings,
            metrics: self.metrics.into_iter().filter(|m| m.value.is_finite()).collect(),
            details: self.details.map(|d| d.to_string()),
        }
    }
}

impl From<CapError> for Outcome {
    fn from(err: CapError) -> Outcome {
        Outcome::from_cap_error(&err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_set_every_field() {
        let timings = PhaseTimings { connect_ms: Some(3.0), total_ms: Some(12.5), ..Default::default() };
        let out = Outcome::up("HTTP 200 in 12 ms")
            .timings(timings)
            .metric("http_status", 200.0)
            .metric("body_bytes", 10.0)
            .metric("http_status", 201.0)
            .details(serde_json::json!({"final_url": "https://x/"}));
        assert_eq!(out.status, Status::Up);
        assert_eq!(out.get_metric("http_status"), Some(201.0));
        assert_eq!(out.metrics.len(), 2);
        let wit = out.into_wit();
        assert_eq!(wit.latency_ms, 12.5, "latency falls back to total_ms");
        assert_eq!(wit.details.as_deref(), Some(r#"{"final_url":"https://x/"}"#));
        assert_eq!(wit.timings.connect_ms, Some(3.0));
    }

    #[test]
    fn explicit_latency_wins_and_bad_numbers_are_dropped() {
        let out = Outcome::degraded("slow")
            .timings(PhaseTimings { total_ms: Some(5.0), ..Default::default() })
            .latency_ms(7.0)
            .metric("nan", f64::NAN);
        assert_eq!(out.status, Status::Degraded);
        let wit = out.into_wit();
        assert_eq!(wit.latency_ms, 7.0);
        assert!(wit.metrics.is_empty());
        assert_eq!(Outcome::down("x").latency_ms(f64::INFINITY).into_wit().latency_ms, 0.0);
        assert_eq!(Outcome::error("x").into_wit().details, None);
    }

    #[test]
    fn cap_errors_become_down_or_error() {
        let out: Outcome = CapError::Connect("connection refused".into()).into();
        assert_eq!(out.status, Status::Down);
        assert_eq!(out.message, "connect: connection refused");
        let out = Outcome::from_cap_error(&CapError::PolicyDenied("127.0.0.1 is loopback".into()));
        assert_eq!(out.status, Status::Error);
        assert_eq!(Status::Degraded.to_string(), "degraded");
        assert!(Status::Up < Status::Degraded && Status::Down < Status::Error);
    }
}
