//! TCP (optionally TLS) port check plugin for Pharos.
