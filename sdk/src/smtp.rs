//! Send one email through an SMTP server (capability `smtp`, notifier plugins only).
//!
//! Inside the sandbox the call goes to the host, which resolves and dials the server under the
//! SSRF policy, upgrades to TLS, logs in and sends; natively it goes to [`crate::mock::smtp`].

use crate::notify_bindings::pharos::plugin::smtp as wit;

pub use wit::{Header, Message, Rejection, Security, SendError, Sent, Server};

/// Sends `message` through `server`.
pub fn send(server: &Server, message: &Message) -> Result<Sent, SendError> {
    #[cfg(target_arch = "wasm32")]
    {
        wit::send(server, message)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::mock::call_smtp(server, message)
    }
}

impl From<SendError> for crate::notify::DeliveryError {
    /// 4xx replies and network trouble are transient; 5xx replies and policy failures are not.
    fn from(err: SendError) -> Self {
        match err {
            SendError::Cap(e) => e.into(),
            SendError::Rejected(r) if (400..500).contains(&r.code) => {
                crate::notify::DeliveryError::Transient(format!("SMTP {}: {}", r.code, r.message))
            }
            SendError::Rejected(r) => {
                crate::notify::DeliveryError::Permanent(format!("SMTP {}: {}", r.code, r.message))
            }
        }
    }
}
