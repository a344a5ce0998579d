//! The host-side result of one check, including the reasons a sandboxed run can fail.

use serde::{Deserialize, Serialize};

use crate::bindings::{checker, types};

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The target behaves as expected.
    Up,
    /// The target answers but worse than expected.
    Degraded,
    /// The target fails the check.
    Down,
    /// The check could not be performed.
    Error,
}

impl Status {
    /// Lowercase name used in JSON, metrics and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Degraded => "degraded",
            Self::Down => "down",
            Self::Error => "error",
        }
    }
}

impl From<types::Status> for Status {
    fn from(s: types::Status) -> Self {
        match s {
            types::Status::Up => Self::Up,
            types::Status::Degraded => Self::Degraded,
            types::Status::Down => Self::Down,
            types::Status::Error => Self::Error,
        }
    }
}

/// Phase timings in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Timings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_byte_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<f64>,
}

impl From<types::PhaseTimings> for Timings {
    fn from(t: types::PhaseTimings) -> Self {
        Self {
            dns_ms: t.dns_ms,
            connect_ms: t.connect_ms,
            tls_ms: t.tls_ms,
            first_byte_ms: t.first_byte_ms,
            total_ms: t.total_ms,
        }
    }
}

/// Why a sandboxed invocation produced an `error` outcome on the host's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCause {
    /// The invocation ran past its wall-clock deadline.
    Timeout,
    /// The guest used up its CPU budget.
    CpuLimit,
    /// The guest tried to grow its linear memory past the cap.
    MemoryLimit,
    /// The guest overflowed its stack.
    StackOverflow,
    /// The guest trapped (panic, unreachable, bad memory access).
    Trap,
    /// The guest exceeded the host-call cap.
    HostCallLimit,
    /// The guest exceeded the log-line cap.
    LogFlood,
    /// The outcome was larger than the output caps or malformed.
    InvalidOutput,
    /// The component could not be instantiated.
    Instantiate,
    /// The monitor's config was rejected before the plugin ran.
    InvalidConfig,
}

impl ErrorCause {
    /// Stable snake_case code, used in details and metrics.
    pub fn code(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::CpuLimit => "cpu_limit",
            Self::MemoryLimit => "memory_limit",
            Self::StackOverflow => "stack_overflow",
            Self::Trap => "trap",
            Self::HostCallLimit => "host_call_limit",
            Self::LogFlood => "log_flood",
            Self::InvalidOutput => "invalid_output",
            Self::Instantiate => "instantiate",
            Self::InvalidConfig => "invalid_config",
        }
    }
}

/// A check's JSON details document, kept as the validated text the plugin returned: the host
/// stores and serves it without building a tree of it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Details(Box<serde_json::value::RawValue>);

impl Details {
    /// Validates `text` as one JSON document (leading and trailing whitespace allowed).
    pub fn parse(text: String) -> Result<Self, serde_json::Error> {
        serde_json::value::RawValue::from_string(text).map(Self)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The document as a tree.
    pub fn to_value(&self) -> serde_json::Value {
        // A `RawValue` holds valid JSON, which always parses into a `Value`.
        serde_json::from_str(self.get()).unwrap_or(serde_json::Value::Null)
    }
}

impl From<serde_json::Value> for Details {
    fn from(value: serde_json::Value) -> Self {
        // A `Value` always serializes to valid JSON.
        Self(
            serde_json::value::to_raw_value(&value)
                .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned()),
        )
    }
}

impl PartialEq for Details {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl std::fmt::Debug for Details {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.get())
    }
}

/// The result of one check as the host stores and reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub status: Status,
    pub message: String,
    pub latency_ms: f64,
    pub timings: Timings,
    /// Named numeric measurements, in the order the plugin reported them.
    pub metrics: Vec<(String, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Details>,
    /// Set when the host (not the plugin) decided the outcome was an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_cause: Option<ErrorCause>,
}

impl Outcome {
    /// An `error` outcome produced by the host for `cause`.
    pub fn host_error(cause: ErrorCause, message: impl Into<String>, elapsed_ms: f64) -> Self {
        Self {
            status: Status::Error,
            message: message.into(),
            latency_ms: elapsed_ms,
            timings: Timings {
                total_ms: Some(elapsed_ms),
                ..Timings::default()
            },
            metrics: Vec::new(),
            details: None,
            error_cause: Some(cause),
        }
    }

    /// The `error` outcome of a check refused because the runtime is stopping.
    pub fn shutting_down() -> Self {
        Self::host_error(
            ErrorCause::Instantiate,
            "the plugin runtime is shutting down",
            0.0,
        )
    }

    /// Converts the plugin's outcome, enforcing the output caps.
    pub fn from_guest(o: checker::CheckOutcome, caps: &OutputCaps, elapsed_ms: f64) -> Self {
        if o.message.len() > caps.max_message_bytes {
            return Self::host_error(
                ErrorCause::InvalidOutput,
                format!(
                    "plugin returned a {} byte message; the cap is {} bytes",
                    o.message.len(),
                    caps.max_message_bytes
                ),
                elapsed_ms,
            );
        }
        if o.metrics.len() > caps.max_metrics {
            return Self::host_error(
                ErrorCause::InvalidOutput,
                format!(
                    "plugin returned {} metrics; the cap is {}",
                    o.metrics.len(),
                    caps.max_metrics
                ),
                elapsed_ms,
            );
        }
        let details = match o.details {
            None => None,
            Some(d) if d.len() > caps.max_details_bytes => {
                return Self::host_error(
                    ErrorCause::InvalidOutput,
                    format!(
                        "plugin returned {} bytes of details; the cap is {} bytes",
                        d.len(),
                        caps.max_details_bytes
                    ),
                    elapsed_ms,
                );
            }
            Some(d) => match Details::parse(d) {
                Ok(v) => Some(v),
                Err(e) => {
                    return Self::host_error(
                        ErrorCause::InvalidOutput,
                        format!("plugin returned details that are not JSON: {e}"),
                        elapsed_ms,
                    );
                }
            },
        };
        let latency_ms = if o.latency_ms.is_finite() && o.latency_ms >= 0.0 {
            o.latency_ms
        } else {
            elapsed_ms
        };
        Self {
            status: o.status.into(),
            message: o.message,
            latency_ms,
            timings: o.timings.into(),
            metrics: o
                .metrics
                .into_iter()
                .filter(|m| m.value.is_finite())
                .map(|m| (m.name, m.value))
                .collect(),
            details,
            error_cause: None,
        }
    }

    /// The outcome as one JSON object (`status`, `message`, `latency_ms`, `timings`, `metrics`, `details`).
    pub fn to_json(&self) -> serde_json::Value {
        let metrics: serde_json::Map<String, serde_json::Value> = self
            .metrics
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::json!(v)))
            .collect();
        let mut obj = serde_json::json!({
            "status": self.status.as_str(),
            "message": self.message,
            "latency_ms": self.latency_ms,
            "timings": self.timings,
            "metrics": metrics,
            "details": self.details,
        });
        if let (Some(cause), Some(map)) = (self.error_cause, obj.as_object_mut()) {
            map.insert("error_cause".into(), cause.code().into());
        }
        obj
    }
}

/// Caps on what a plugin may return.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputCaps {
    pub max_message_bytes: usize,
    pub max_details_bytes: usize,
    pub max_metrics: usize,
}

impl Default for OutputCaps {
    fn default() -> Self {
        Self {
            max_message_bytes: 4096,
            max_details_bytes: 256 * 1024,
            max_metrics: 64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn guest(details: Option<&str>) -> checker::CheckOutcome {
        checker::CheckOutcome {
            status: types::Status::Up,
            message: "ok".into(),
            latency_ms: 1.0,
            timings: types::PhaseTimings {
                dns_ms: None,
                connect_ms: None,
                tls_ms: None,
                first_byte_ms: None,
                total_ms: None,
            },
            metrics: Vec::new(),
            details: details.map(str::to_owned),
        }
    }

    #[test]
    fn details_keep_the_plugins_text_and_serve_it_as_json() {
        let o = Outcome::from_guest(
            guest(Some(r#" {"b":1,"a":[true,null]} "#)),
            &OutputCaps::default(),
            2.0,
        );
        let details = o.details.as_ref().expect("details");
        assert_eq!(details.get(), r#"{"b":1,"a":[true,null]}"#);
        assert_eq!(details.to_value(), json!({"a": [true, null], "b": 1}));
        assert_eq!(o.to_json()["details"], json!({"a": [true, null], "b": 1}));
        assert_eq!(
            serde_json::to_string(&o.details).unwrap(),
            r#"{"b":1,"a":[true,null]}"#
        );
        let back: Outcome = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
        assert_eq!(back, o);
        assert_eq!(Details::from(json!({"x": "y"})).get(), r#"{"x":"y"}"#);
    }

    #[test]
    fn details_that_are_not_one_json_document_are_an_invalid_output() {
        for bad in ["{", "{} {}", "nope", ""] {
            let o = Outcome::from_guest(guest(Some(bad)), &OutputCaps::default(), 2.0);
            assert_eq!(o.status, Status::Error, "{bad:?}");
            assert_eq!(o.error_cause, Some(ErrorCause::InvalidOutput), "{bad:?}");
            assert!(o.message.contains("not JSON"), "{bad:?}: {}", o.message);
        }
        let o = Outcome::from_guest(guest(None), &OutputCaps::default(), 2.0);
        assert_eq!((o.status, o.details), (Status::Up, None));
    }
}
