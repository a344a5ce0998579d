//! TLS certificate expiry check plugin for Pharos.
