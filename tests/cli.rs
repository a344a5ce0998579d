//! The `pharos` command line: `plugin wit`, `describe`, `run` and `new`, driven as a user would.

mod support;

use std::path::Path;
use std::process::Output;

use tokio::process::Command;

fn pharos() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pharos"));
    cmd.env("RUST_LOG", "warn");
    cmd
}

async fn run(cmd: &mut Command) -> Output {
    cmd.output().await.expect("run pharos")
}

fn stdout_json(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {text}"))
}

#[tokio::test]
async fn wit_is_written_for_other_languages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(pharos().args(["plugin", "wit", "--out"]).arg(dir.path())).await;
    assert!(out.status.success(), "{out:?}");
    let worlds = std::fs::read_to_string(dir.path().join("worlds.wit")).expect("worlds.wit");
    assert!(worlds.contains("world check-plugin"));
    assert!(worlds.contains("world notify-plugin"));
    assert!(dir.path().join("types.wit").exists());
    assert!(dir.path().join("capabilities.wit").exists());
}

#[tokio::test]
async fn describe_prints_schema_and_capabilities() {
    let out = run(pharos().args(["plugin", "describe", "http"])).await;
    assert!(out.status.success(), "{out:?}");
    let info = stdout_json(&out);
    assert_eq!(info["name"], "http");
    assert_eq!(info["kind"], "check");
    assert_eq!(info["capabilities"], serde_json::json!(["http"]));
    assert_eq!(info["config_schema"]["type"], "object");
    assert_eq!(info["digest"].as_str().map(str::len), Some(64));
}

#[tokio::test]
async fn run_prints_the_outcome_as_one_json_object() {
    let server = support::servers::http().await;
    let config =
        serde_json::json!({ "url": format!("http://127.0.0.1:{}/json", server.addr.port()) })
            .to_string();
    let out = run(pharos().args([
        "plugin",
        "run",
        "http",
        "--allow-private",
        "--config",
        &config,
    ]))
    .await;
    assert!(out.status.success(), "{out:?}");
    let o = stdout_json(&out);
    assert_eq!(o["status"], "up", "{o}");
    for key in ["message", "latency_ms", "timings", "metrics", "details"] {
        assert!(o.get(key).is_some(), "missing {key}: {o}");
    }
    assert_eq!(o["metrics"]["http_status"], 200.0);
    assert!(
        o["timings"]["total_ms"].as_f64().is_some_and(|t| t > 0.0),
        "{o}"
    );
}

#[tokio::test]
async fn run_without_allow_private_is_denied_by_the_ssrf_guard() {
    let server = support::servers::http().await;
    let config = serde_json::json!({ "url": format!("http://127.0.0.1:{}/", server.addr.port()) })
        .to_string();
    let out = run(pharos().args(["plugin", "run", "http", "--config", &config])).await;
    let o = stdout_json(&out);
    assert_ne!(o["status"], "up", "{o}");
    assert!(
        o["message"].as_str().is_some_and(|m| m.contains("private")),
        "{o}"
    );
}

#[tokio::test]
async fn bad_config_names_the_failing_field() {
    let out = run(pharos().args([
        "plugin",
        "run",
        "http",
        "--config",
        r#"{"url": "http://x", "timeout_ms": "soon"}"#,
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/timeout_ms"), "{err}");
    let out = run(pharos().args(["plugin", "run", "http", "--config", "{not json"])).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid JSON"));
    let out = run(pharos().args(["plugin", "run", "nope", "--config", "{}"])).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither a built-in plugin"));
}

/// `pharos plugin new` produces a crate that builds on its own and runs in Pharos.
#[tokio::test]
async fn scaffolded_plugin_builds_and_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(pharos()
        .args(["plugin", "new", "my-check", "--dir"])
        .arg(dir.path()))
    .await;
    assert!(out.status.success(), "{out:?}");
    let krate = dir.path().join("my-check");
    assert!(krate.join("wit/worlds.wit").exists());
    assert!(krate.join("pharos-sdk/Cargo.toml").exists());
    assert!(krate.join(".cargo/config.toml").exists());
    let out = run(pharos()
        .args(["plugin", "new", "my-check", "--dir"])
        .arg(dir.path()))
    .await;
    assert!(!out.status.success(), "refuses to overwrite");
    let out = run(pharos()
        .args(["plugin", "new", "Bad Name", "--dir"])
        .arg(dir.path()))
    .await;
    assert!(!out.status.success(), "refuses a bad name");

    // Build it exactly as the README says, outside this workspace; share a target dir between runs.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scaffold-test");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .await
        .expect("cargo");
    assert!(status.success(), "the scaffolded crate must build");
    let wasm = target.join("wasm32-wasip2/release/my_check.wasm");

    let out = run(pharos().args(["plugin", "describe"]).arg(&wasm)).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout_json(&out)["name"], "my-check");

    let server = support::servers::http().await;
    let config = serde_json::json!({ "url": format!("http://127.0.0.1:{}/", server.addr.port()) })
        .to_string();
    let out = run(pharos().args(["plugin", "run"]).arg(&wasm).args([
        "--allow-private",
        "--config",
        &config,
    ]))
    .await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout_json(&out)["status"],
        "up",
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
