# Everyday recipes. `just --list` shows them.

# Build and run the service on SQLite in ./pharos-data (prints the URL and, first time, the admin key).
run:
    cargo run --release

# Build the pharos binary (and every plugin component, via host/build.rs).
build:
    cargo build --release

# Build the plugin components into target/wasm/wasm32-wasip2/plugin/ (host/build.rs does it,
# including the core-module builds it encodes into components; `check` skips host codegen).
plugins:
    cargo check -p pharos

# The whole test suite (what CI runs).
test:
    cargo test --workspace

# Benchmarks recorded in docs/benchmarks.md.
bench:
    cargo run --release -- bench plugins
    cargo run --release -- bench service

# Lints.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
