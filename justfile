# Everyday recipes. `just --list` shows them.

# Build and run the service on SQLite in ./pharos-data (prints the URL and, first time, the admin key).
run:
    cargo run --release

# Build the pharos binary (and every plugin component, via host/build.rs).
build:
    cargo build --release

# Build only the plugin components into target/wasm/wasm32-wasip2/plugin/.
plugins:
    cargo build --profile plugin --target wasm32-wasip2 --target-dir target/wasm \
        $(for d in plugins/*/ tests/fixtures/*/; do echo -n "-p $(sed -n 's/^name = "\(.*\)"/\1/p' $d/Cargo.toml | head -1) "; done)

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
