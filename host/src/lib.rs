//! Pharos: uptime and synthetic monitoring whose check types are sandboxed WebAssembly components.

pub mod bindings;
pub mod builtin;
pub mod cli;
pub mod net;
pub mod runtime;
