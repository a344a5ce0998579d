//! Pharos: uptime and synthetic monitoring whose check types are sandboxed WebAssembly components.

pub mod bindings;
pub mod cli;
pub mod builtin;
pub mod net;
pub mod runtime;
