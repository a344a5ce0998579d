//! The pharos command line.
