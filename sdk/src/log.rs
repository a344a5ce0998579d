//! Leveled log lines (always available, no capability needed).
//!
//! The host tags each line with plugin and monitor and rate-limits them. Natively (unit tests)
//! lines are recorded for [`crate::mock::logs`].

pub use crate::bindings::pharos::plugin::log::Level;

/// Logs `message` at `level`.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::pharos::plugin::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    crate::mock::call_log(level, message);
}

/// Logs at `trace` level.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Logs at `debug` level.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Logs at `info` level.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Logs at `warn` level.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Logs at `error` level.
pub fn error(message: &str) {
    log(Level::Error, message);
}

/// Logs a `format!`-style message at `trace` level.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => { $crate::log::trace(&::std::format!($($arg)*)) };
}

/// Logs a `format!`-style message at `debug` level.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::debug(&::std::format!($($arg)*)) };
}

/// Logs a `format!`-style message at `info` level.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::info(&::std::format!($($arg)*)) };
}

/// Logs a `format!`-style message at `warn` level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::warn(&::std::format!($($arg)*)) };
}

/// Logs a `format!`-style message at `error` level.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::error(&::std::format!($($arg)*)) };
}
