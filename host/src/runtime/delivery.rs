//! One notification delivered by a notifier plugin: the input, the outcome, and the output caps.

use std::time::Duration;

use super::outcome::ErrorCause;
use crate::bindings::notifier;

/// Longest message kept from a notifier (receipt or error), in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Longest external id kept from a notifier, in bytes.
pub const MAX_EXTERNAL_ID_BYTES: usize = 256;

/// One notification to deliver through a notifier plugin.
#[derive(Debug, Clone)]
pub struct DeliverInput {
    /// The channel config as JSON, secrets revealed (validated by the caller or by
    /// [`super::Runtime::deliver_validated`]).
    pub config: String,
    /// Short human title, e.g. `[DOWN] api.example.com`.
    pub title: String,
    /// Plain-text body.
    pub body: String,
    /// The event document as JSON.
    pub event: String,
    /// Stable across retries of this notification.
    pub idempotency_key: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The delivery's timeout; host calls are cut off there.
    pub timeout: Duration,
    /// True for a test alert.
    pub test: bool,
    /// The channel's name, for log lines.
    pub channel: String,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The destination accepted the notification.
    Delivered {
        /// What the notifier reported, e.g. `HTTP 200` (at most 1 KiB).
        message: String,
        /// The destination's id for the message (at most 256 bytes).
        external_id: Option<String>,
    },
    /// Worth retrying (at most 1 KiB of why): the notifier said so, or the sandbox stopped it
    /// (`"timeout: …"`, `"trap: …"`, `"cpu_limit: …"`, …).
    Transient(String),
    /// Retrying will not help (at most 1 KiB of why): the notifier said so, or the config does
    /// not fit the plugin's schema.
    Permanent(String),
}

impl DeliveryOutcome {
    /// `delivered`, `transient` or `permanent`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Delivered { .. } => "delivered",
            Self::Transient(_) => "transient",
            Self::Permanent(_) => "permanent",
        }
    }

    /// The receipt message or the reason of the failure.
    pub fn message(&self) -> &str {
        match self {
            Self::Delivered { message, .. }
            | Self::Transient(message)
            | Self::Permanent(message) => message,
        }
    }

    /// True when the destination accepted the notification.
    pub fn is_delivered(&self) -> bool {
        matches!(self, Self::Delivered { .. })
    }

    /// A transient failure caused by the host (timeout, trap, limit breach): `"<cause>: <why>"`.
    pub fn host_fault(cause: ErrorCause, message: impl AsRef<str>) -> Self {
        Self::Transient(cap(
            format!("{}: {}", cause.code(), message.as_ref()),
            MAX_MESSAGE_BYTES,
        ))
    }

    /// A permanent failure decided by the host (bad config, wrong kind of plugin).
    pub fn refused(message: impl Into<String>) -> Self {
        Self::Permanent(cap(message.into(), MAX_MESSAGE_BYTES))
    }

    /// Converts what the plugin returned, truncating to the output caps.
    pub fn from_guest(result: Result<notifier::Receipt, notifier::DeliveryError>) -> Self {
        match result {
            Ok(receipt) => Self::Delivered {
                message: cap(receipt.message, MAX_MESSAGE_BYTES),
                external_id: receipt
                    .external_id
                    .map(|id| cap(id, MAX_EXTERNAL_ID_BYTES))
                    .filter(|id| !id.is_empty()),
            },
            Err(notifier::DeliveryError::Transient(message)) => {
                Self::Transient(cap(message, MAX_MESSAGE_BYTES))
            }
            Err(notifier::DeliveryError::Permanent(message)) => {
                Self::Permanent(cap(message, MAX_MESSAGE_BYTES))
            }
        }
    }
}

/// The result of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// How it ended.
    pub outcome: DeliveryOutcome,
    /// Wall-clock time of the attempt, in milliseconds.
    pub elapsed_ms: f64,
}

impl Delivery {
    /// `{"outcome": "delivered|transient|permanent", "message", "external_id", "elapsed_ms"}`.
    pub fn to_json(&self) -> serde_json::Value {
        let external_id = match &self.outcome {
            DeliveryOutcome::Delivered { external_id, .. } => external_id.clone(),
            _ => None,
        };
        serde_json::json!({
            "outcome": self.outcome.as_str(),
            "message": self.outcome.message(),
            "external_id": external_id,
            "elapsed_ms": self.elapsed_ms,
        })
    }
}

/// Truncates `s` to at most `max` bytes on a character boundary.
fn cap(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_output_is_truncated_to_the_caps() {
        let out = DeliveryOutcome::from_guest(Ok(notifier::Receipt {
            message: "é".repeat(1000),
            external_id: Some("x".repeat(1000)),
        }));
        let DeliveryOutcome::Delivered {
            message,
            external_id,
        } = out
        else {
            panic!("delivered expected");
        };
        assert!(message.len() <= MAX_MESSAGE_BYTES && message.len() >= MAX_MESSAGE_BYTES - 1);
        assert!(message.chars().all(|c| c == 'é'));
        assert_eq!(external_id.map(|id| id.len()), Some(MAX_EXTERNAL_ID_BYTES));
        let out = DeliveryOutcome::from_guest(Err(notifier::DeliveryError::Permanent(
            "bad token".into(),
        )));
        assert_eq!(out, DeliveryOutcome::refused("bad token"));
        let out = DeliveryOutcome::from_guest(Ok(notifier::Receipt {
            message: "ok".into(),
            external_id: Some(String::new()),
        }));
        assert_eq!(
            out,
            DeliveryOutcome::Delivered {
                message: "ok".into(),
                external_id: None
            }
        );
    }

    #[test]
    fn host_faults_are_transient_and_name_the_cause() {
        let out = DeliveryOutcome::host_fault(ErrorCause::Timeout, "took too long");
        assert_eq!(out.as_str(), "transient");
        assert_eq!(out.message(), "timeout: took too long");
        let json = Delivery {
            outcome: out,
            elapsed_ms: 1.5,
        }
        .to_json();
        assert_eq!(
            json,
            serde_json::json!({
                "outcome": "transient",
                "message": "timeout: took too long",
                "external_id": null,
                "elapsed_ms": 1.5
            })
        );
    }
}
