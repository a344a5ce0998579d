//! DNS record check plugin for Pharos.
