//! Pharos: uptime and synthetic monitoring whose check types are sandboxed WebAssembly components.

pub mod api;
pub mod app;
pub mod bindings;
pub mod builtin;
pub mod catalog;
pub mod checks;
pub mod cli;
pub mod config;
pub mod incidents;
pub mod keys;
pub mod maintenance;
pub mod metrics;
pub mod model;
pub mod net;
pub mod notify;
pub mod pipeline;
pub mod runtime;
pub mod scheduler;
pub mod secrets;
pub mod server;
pub mod status;
pub mod store;
