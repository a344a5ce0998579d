//! End-to-end tests of the built-in plugins against real loopback servers.

mod support;
