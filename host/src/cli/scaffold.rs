//! `pharos plugin new` and `pharos plugin wit`: files a plugin author starts from.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

include!(concat!(env!("OUT_DIR"), "/embedded_sources.rs"));

/// Writes the WIT package into `out`.
pub fn write_wit(out: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, text) in WIT_FILES {
        let path = out.join(name);
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Creates a standalone check-plugin crate `dir/name` and returns its path.
pub fn create(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || name.starts_with('-')
    {
        bail!("plugin name `{name}` must be 1-64 characters of [a-z0-9-] not starting with `-`");
    }
    let root = dir.join(name);
    if root.exists() {
        bail!("{} already exists", root.display());
    }
    write_wit(&root.join("wit"))?;
    let sdk = root.join("pharos-sdk");
    for (rel, text) in SDK_FILES {
        write(&sdk.join(rel), text)?;
    }
    write(&sdk.join("Cargo.toml"), SDK_MANIFEST)?;
    write(
        &root.join("Cargo.toml"),
        &CRATE_MANIFEST.replace("{name}", name),
    )?;
    write(&root.join("src/lib.rs"), &CRATE_LIB.replace("{name}", name))?;
    write(&root.join(".gitignore"), "/target\n")?;
    write(&root.join(".cargo/config.toml"), CARGO_CONFIG)?;
    write(
        &root.join("README.md"),
        &CRATE_README
            .replace("{name}", name)
            .replace("{underscored}", &name.replace('-', "_")),
    )?;
    Ok(root)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

const CRATE_MANIFEST: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
pharos-sdk = { path = "pharos-sdk" }
serde = { version = "1", features = ["derive"] }
serde_json = "1"

[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
strip = true

# A standalone workspace, so the crate builds wherever it is placed.
[workspace]
members = [".", "pharos-sdk"]
"#;

/// The repository's own `.cargo/config.toml`: initial memory large enough that checks rarely grow it.
const CARGO_CONFIG: &str = include_str!("../../../.cargo/config.toml");

const CRATE_README: &str = r#"# {name}

A Pharos check plugin.

    cargo build --release --target wasm32-wasip2
    pharos plugin describe target/wasm32-wasip2/release/{underscored}.wasm
    pharos plugin run target/wasm32-wasip2/release/{underscored}.wasm --config '{"url":"https://example.com"}'

`wit/` is the `pharos:plugin` contract and `pharos-sdk/` the Rust SDK, both vendored by
`pharos plugin new`. See the Pharos plugin guide for the API.
"#;

const CRATE_LIB: &str = include_str!("scaffold_lib.rs.txt");
