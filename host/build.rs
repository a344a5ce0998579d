//! Builds every crate under `plugins/` (and the test fixtures under `tests/fixtures/`) into a
//! WebAssembly component and embeds the built-in plugins in the binary.
//!
//! Crates are built for `wasm32-wasip2` (rustc links the component). A crate whose manifest
//! says `[package.metadata.pharos] build = "core"` is built as a core module for
//! `wasm32-unknown-unknown` and encoded into a component here (wit-component): it then imports
//! only the Pharos interfaces it uses, none of the WASI ones that Rust's `std` pulls in on
//! wasip2, which makes every instantiation cheaper. Such a crate that exports `planner` also
//! gets an evaluate-only variant (see [`evaluate_only`]) in `target/wasm/evaluate/`, embedded
//! next to it for the runtime's synchronous `evaluate`.
//!
//! The components are left in `target/wasm/wasm32-wasip2/plugin/` (override the target dir with
//! `PHAROS_WASM_TARGET_DIR`) so they can be uploaded to another Pharos.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
/// Target of the crates built as core modules and encoded into components here.
const CORE_TARGET: &str = "wasm32-unknown-unknown";
const PROFILE: &str = "plugin";
/// Where the evaluate-only variants of planner plugins go, under the wasm target dir.
const EVALUATE_DIR: &str = "evaluate";

fn main() {
    if let Err(e) = run() {
        panic!("building the plugin components failed: {e}");
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let root = manifest_dir
        .parent()
        .ok_or("host/ has no parent directory")?
        .to_path_buf();
    for dir in ["wit", "sdk", "plugins", "tests/fixtures"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.lock").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        root.join(".cargo/config.toml").display()
    );
    println!("cargo:rerun-if-env-changed=PHAROS_WASM_TARGET_DIR");

    let builtins = crates_in(&root.join("plugins"))?;
    let fixtures = crates_in(&root.join("tests/fixtures"))?;
    let target_dir = env::var_os("PHAROS_WASM_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target").join("wasm"));

    // For working on the host while a plugin does not compile: reuse the last built components.
    println!("cargo:rerun-if-env-changed=PHAROS_SKIP_WASM_BUILD");
    let skip = env::var_os("PHAROS_SKIP_WASM_BUILD").is_some();
    if !skip {
        build_components(&root, &target_dir, builtins.iter().chain(fixtures.iter()))?;
    }
    let wasm_dir = target_dir.join(TARGET).join(PROFILE);
    println!("cargo:rustc-env=PHAROS_WASM_DIR={}", wasm_dir.display());
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let mut src = String::new();
    let components = builtins.iter().map(|k| {
        (
            k.dir.as_str(),
            wasm_dir.join(k.wasm_file()),
            format!("{}.wasm", k.dir),
        )
    });
    embed_components(
        &mut src,
        &out_dir,
        "/// Built-in plugins compiled from `plugins/`: (directory name, component bytes).",
        "BUILTIN_COMPONENTS",
        components.filter(|(_, built, _)| !skip || built.exists()),
    )?;
    let variants = builtins.iter().filter(|k| k.core).map(|k| {
        let built = target_dir.join(EVALUATE_DIR).join(k.wasm_file());
        (k.dir.as_str(), built, format!("{}.evaluate.wasm", k.dir))
    });
    embed_components(
        &mut src,
        &out_dir,
        "/// Evaluate-only variants of built-in planner plugins: (directory name, component bytes).",
        "BUILTIN_EVALUATE_COMPONENTS",
        variants.filter(|(_, built, _)| built.exists()),
    )?;
    fs::write(out_dir.join("builtin_components.rs"), src).map_err(|e| e.to_string())?;
    embed_sources(&root, &out_dir)
}

/// Appends to `src` the constant `name` (documented by `doc`) listing `components`
/// (directory name, built file, name of its copy in `out_dir`), each copied to `out_dir` and
/// embedded with `include_bytes!`.
fn embed_components<'a>(
    src: &mut String,
    out_dir: &Path,
    doc: &str,
    name: &str,
    components: impl Iterator<Item = (&'a str, PathBuf, String)>,
) -> Result<(), String> {
    writeln!(src, "{doc}\npub const {name}: &[(&str, &[u8])] = &[").map_err(|e| e.to_string())?;
    for (dir, built, copy_name) in components {
        let copy = out_dir.join(copy_name);
        fs::copy(&built, &copy).map_err(|e| format!("copying {}: {e}", built.display()))?;
        writeln!(
            src,
            "    ({dir:?}, include_bytes!({:?})),",
            copy.display().to_string()
        )
        .map_err(|e| e.to_string())?;
    }
    src.push_str("];\n");
    Ok(())
}

fn build_components<'a>(
    root: &Path,
    target_dir: &Path,
    crates: impl Iterator<Item = &'a Crate>,
) -> Result<(), String> {
    let (core, wasip2): (Vec<&Crate>, Vec<&Crate>) = crates.partition(|c| c.core);
    if !wasip2.is_empty() {
        cargo_build(root, target_dir, TARGET, &wasip2)?;
    }
    if core.is_empty() {
        return Ok(());
    }
    cargo_build(root, target_dir, CORE_TARGET, &core)?;
    let out = target_dir.join(TARGET).join(PROFILE);
    let evaluate_out = target_dir.join(EVALUATE_DIR);
    fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    for krate in core {
        let file = krate.wasm_file();
        let module_path = target_dir.join(CORE_TARGET).join(PROFILE).join(&file);
        let module =
            fs::read(&module_path).map_err(|e| format!("{}: {e}", module_path.display()))?;
        let component = encode(&module, &module_path)?;
        fs::write(out.join(&file), component).map_err(|e| format!("{file}: {e}"))?;
        let variant_path = evaluate_out.join(&file);
        match evaluate_only(&module)? {
            Some(variant) => {
                let component = encode(&variant, &module_path)?;
                fs::create_dir_all(&evaluate_out)
                    .map_err(|e| format!("{}: {e}", evaluate_out.display()))?;
                fs::write(&variant_path, component).map_err(|e| format!("{file}: {e}"))?;
            }
            // No stale variant of a plugin that no longer has one.
            None if variant_path.exists() => fs::remove_file(&variant_path)
                .map_err(|e| format!("{}: {e}", variant_path.display()))?,
            None => {}
        }
    }
    Ok(())
}

/// `module` encoded as a component (wit-component).
fn encode(module: &[u8], path: &Path) -> Result<Vec<u8>, String> {
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)
        .and_then(|encoder| encoder.encode())
        .map_err(|e| format!("encoding {} as a component: {e:#}", path.display()))
}

/// The export of a planner's `evaluate` in a core module.
const EVALUATE_EXPORT: &str = "pharos:plugin/planner@0.1.0#evaluate";

/// For a core module that exports `planner.evaluate` and imports only functions: the same
/// module with every import replaced by a function that traps, placed first among its
/// functions so that no index changes. `evaluate` may use no import but `log` (the host's
/// synchronous evaluate traps on every other one), so this variant evaluates exactly like the
/// plugin; encoded, it needs no shim or fixup instance to tie lowered imports to its memory,
/// and is instantiated as one core instance instead of three. `None` when not applicable
/// (no planner, no imports, or an import other than a function, e.g. `log` is kept working
/// only by the full component).
fn evaluate_only(module: &[u8]) -> Result<Option<Vec<u8>>, String> {
    use wasm_encoder::{CodeSection, Function, FunctionSection, Instruction, RawSection};
    use wasmparser::{Parser, Payload, TypeRef};

    let err = |e: wasmparser::BinaryReaderError| format!("reading a plugin core module: {e}");
    let mut exports_evaluate = false;
    let mut stubs: Vec<u32> = Vec::new();
    for payload in Parser::new(0).parse_all(module) {
        match payload.map_err(err)? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(err)?;
                    if import.module == "pharos:plugin/log@0.1.0" {
                        return Ok(None);
                    }
                    match import.ty {
                        TypeRef::Func(ty) => stubs.push(ty),
                        _ => return Ok(None),
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    exports_evaluate |= export.map_err(err)?.name == EVALUATE_EXPORT;
                }
            }
            _ => {}
        }
    }
    if !exports_evaluate || stubs.is_empty() {
        return Ok(None);
    }
    let mut out = wasm_encoder::Module::new();
    for payload in Parser::new(0).parse_all(module) {
        match payload.map_err(err)? {
            Payload::ImportSection(_) => {} // every import becomes a stub
            Payload::FunctionSection(reader) => {
                let mut functions = FunctionSection::new();
                for &ty in &stubs {
                    functions.function(ty);
                }
                for ty in reader {
                    functions.function(ty.map_err(err)?);
                }
                out.section(&functions);
            }
            Payload::CodeSectionStart { range, .. } => {
                let mut code = CodeSection::new();
                for _ in &stubs {
                    let mut stub = Function::new([]);
                    stub.instruction(&Instruction::Unreachable);
                    stub.instruction(&Instruction::End);
                    code.function(&stub);
                }
                let section = &module[range.start as usize..range.end as usize];
                let reader = wasmparser::CodeSectionReader::new(wasmparser::BinaryReader::new(
                    section,
                    range.start,
                ))
                .map_err(err)?;
                for body in reader {
                    let body = body.map_err(err)?.range();
                    code.raw(&module[body.start as usize..body.end as usize]);
                }
                out.section(&code);
            }
            Payload::CodeSectionEntry(_) => {} // copied with their section
            other => {
                if let Some((id, range)) = other.as_section() {
                    let data = &module[range.start as usize..range.end as usize];
                    out.section(&RawSection { id, data });
                }
            }
        }
    }
    let variant = out.finish();
    wasmparser::Validator::new()
        .validate_all(&variant)
        .map_err(|e| format!("the evaluate-only variant of a plugin is invalid: {e}"))?;
    Ok(Some(variant))
}

/// `cargo build --profile plugin --target TARGET` of `crates`.
fn cargo_build(
    root: &Path,
    target_dir: &Path,
    target: &str,
    crates: &[&Crate],
) -> Result<(), String> {
    ensure_wasm_target(target)?;
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--profile",
            PROFILE,
            "--target",
            target,
            "--target-dir",
        ])
        .arg(target_dir);
    for krate in crates {
        cmd.args(["-p", &krate.package]);
    }
    // The outer build's flags are for the host, never for the guest.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PROFILE_RELEASE_DEBUG",
        "CARGO_LLVM_COV",
        "LLVM_PROFILE_FILE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo build --target {target} of the plugins exited with {status}"
        ));
    }
    Ok(())
}

/// Embeds the WIT package and the SDK sources for `pharos plugin new` and `pharos plugin wit`.
fn embed_sources(root: &Path, out_dir: &Path) -> Result<(), String> {
    let mut src = String::from(
        "/// The WIT package: (file name, text).\npub const WIT_FILES: &[(&str, &str)] = &[\n",
    );
    for file in files_under(&root.join("wit"), "wit")? {
        let rel = file
            .strip_prefix(root.join("wit"))
            .map_err(|e| e.to_string())?;
        writeln!(
            src,
            "    ({:?}, include_str!({:?})),",
            rel.display().to_string(),
            file.display().to_string()
        )
        .map_err(|e| e.to_string())?;
    }
    src.push_str("];\n/// The SDK sources: (path relative to the SDK crate, text).\npub const SDK_FILES: &[(&str, &str)] = &[\n");
    let sdk = root.join("sdk");
    for file in files_under(&sdk.join("src"), "rs")? {
        let rel = file.strip_prefix(&sdk).map_err(|e| e.to_string())?;
        writeln!(
            src,
            "    ({:?}, include_str!({:?})),",
            rel.display().to_string(),
            file.display().to_string()
        )
        .map_err(|e| e.to_string())?;
    }
    src.push_str("];\n");
    let manifest = standalone_sdk_manifest(root)?;
    writeln!(src, "/// The SDK's Cargo.toml with workspace inheritance resolved.\npub const SDK_MANIFEST: &str = {manifest:?};")
        .map_err(|e| e.to_string())?;
    fs::write(out_dir.join("embedded_sources.rs"), src).map_err(|e| e.to_string())
}

fn files_under(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == ext) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The SDK manifest with `workspace = true` entries replaced by the workspace's values.
fn standalone_sdk_manifest(root: &Path) -> Result<String, String> {
    let read = |p: PathBuf| -> Result<toml::Table, String> {
        let text = fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        text.parse::<toml::Table>()
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let workspace = read(root.join("Cargo.toml"))?;
    let mut sdk = read(root.join("sdk/Cargo.toml"))?;
    let ws = workspace
        .get("workspace")
        .and_then(|w| w.as_table())
        .ok_or("no [workspace] in Cargo.toml")?;
    let empty = toml::Table::new();
    let ws_package = ws
        .get("package")
        .and_then(|p| p.as_table())
        .unwrap_or(&empty);
    let ws_deps = ws
        .get("dependencies")
        .and_then(|p| p.as_table())
        .unwrap_or(&empty);
    if let Some(package) = sdk.get_mut("package").and_then(|p| p.as_table_mut()) {
        for (key, value) in package.iter_mut() {
            if is_inherited(value)
                && let Some(v) = ws_package.get(key)
            {
                *value = v.clone();
            }
        }
    }
    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        let Some(deps) = sdk.get_mut(section).and_then(|d| d.as_table_mut()) else {
            continue;
        };
        for (name, value) in deps.iter_mut() {
            if !is_inherited(value) {
                continue;
            }
            let mut resolved = match ws_deps.get(name) {
                Some(toml::Value::String(v)) => {
                    let mut t = toml::Table::new();
                    t.insert("version".into(), toml::Value::String(v.clone()));
                    t
                }
                Some(toml::Value::Table(t)) => t.clone(),
                _ => {
                    return Err(format!(
                        "sdk dependency `{name}` is not in [workspace.dependencies]"
                    ));
                }
            };
            if let Some(extra) = value
                .as_table()
                .and_then(|t| t.get("features"))
                .and_then(|f| f.as_array())
            {
                let features = resolved
                    .entry("features")
                    .or_insert_with(|| toml::Value::Array(Vec::new()));
                if let Some(list) = features.as_array_mut() {
                    list.extend(extra.iter().cloned());
                }
            }
            for key in ["optional", "default-features"] {
                if let Some(v) = value.as_table().and_then(|t| t.get(key)) {
                    resolved.insert(key.into(), v.clone());
                }
            }
            *value = toml::Value::Table(resolved);
        }
    }
    toml::to_string(&sdk).map_err(|e| e.to_string())
}

fn is_inherited(value: &toml::Value) -> bool {
    value
        .as_table()
        .and_then(|t| t.get("workspace"))
        .and_then(|w| w.as_bool())
        == Some(true)
}

/// A crate found under a directory of plugin crates.
struct Crate {
    dir: String,
    package: String,
    /// Built as a core module and encoded here (`[package.metadata.pharos] build = "core"`).
    core: bool,
}

impl Crate {
    /// The file name cargo gives the crate's `.wasm` output.
    fn wasm_file(&self) -> String {
        format!("{}.wasm", self.package.replace('-', "_"))
    }
}

fn crates_in(dir: &Path) -> Result<Vec<Crate>, String> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(found);
    };
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let manifest = entry.path().join("Cargo.toml");
        let Ok(text) = fs::read_to_string(&manifest) else {
            continue;
        };
        let package = package_name(&text)
            .ok_or_else(|| format!("{} has no [package] name", manifest.display()))?;
        let core = text
            .parse::<toml::Table>()
            .map_err(|e| format!("{}: {e}", manifest.display()))?
            .get("package")
            .and_then(|p| p.get("metadata"))
            .and_then(|m| m.get("pharos"))
            .and_then(|p| p.get("build"))
            .and_then(|b| b.as_str())
            == Some("core");
        found.push(Crate {
            dir: entry.file_name().to_string_lossy().into_owned(),
            package,
            core,
        });
    }
    found.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(found)
}

fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && let Some(rest) = line.strip_prefix("name") {
            let value = rest.trim_start().strip_prefix('=')?.trim();
            return Some(value.trim_matches('"').to_string());
        }
    }
    None
}

/// Adds the standard library of `target` through rustup when it is missing.
fn ensure_wasm_target(target: &str) -> Result<(), String> {
    let sysroot = Command::new(env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    if Path::new(&sysroot)
        .join("lib/rustlib")
        .join(target)
        .exists()
    {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", target])
        .status()
        .map_err(|e| format!("the {target} target is missing and rustup could not run: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("rustup target add {target} exited with {status}"))
    }
}
