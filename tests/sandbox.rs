//! Hostile plugins are contained: every abuse becomes an `error` outcome naming its cause,
//! while a well-behaved check sharing the runtime completes normally.

mod support;

use std::time::Duration;

use pharos::runtime::{
    DeliverInput, DeliveryOutcome, ErrorCause, InvocationLimits, LoadError, Outcome, RuntimeConfig,
    Status,
};
use serde_json::json;

const HOSTILE: &str = "pharos_fixture_hostile";

fn tight_limits() -> InvocationLimits {
    InvocationLimits {
        cpu_budget_ms: 200,
        max_memory_bytes: 16 << 20,
        ..InvocationLimits::default()
    }
}

/// Runs a hostile mode next to a well-behaved check on a single-threaded executor and returns
/// the hostile outcome after asserting the good check finished normally — and, for hostile
/// runs that last (`outlasts`), before the hostile one.
async fn contained(
    mode: serde_json::Value,
    limits: InvocationLimits,
    timeout: Duration,
) -> Outcome {
    contained_with(mode, limits, timeout, false).await
}

async fn contained_with(
    mode: serde_json::Value,
    limits: InvocationLimits,
    timeout: Duration,
    outlasts: bool,
) -> Outcome {
    let runtime = support::runtime(false);
    let bytes = support::fixture(HOSTILE);
    let hostile = runtime
        .load_with_limits(&bytes, Some(limits))
        .await
        .expect("load hostile");
    let good = runtime.load(&bytes).await.expect("load good");
    let hostile_box = runtime.sandbox_all(&hostile);
    let good_box = runtime.sandbox_all(&good);
    let bad_run = support::check(&runtime, &hostile, &hostile_box, mode, timeout);
    let good_run = async {
        // Let the hostile invocation start first.
        tokio::time::sleep(Duration::from_millis(20)).await;
        support::check(
            &runtime,
            &good,
            &good_box,
            json!({"mode": "ok"}),
            Duration::from_secs(5),
        )
        .await
    };
    tokio::pin!(bad_run, good_run);
    let mut good_outcome = None;
    let bad_outcome = loop {
        tokio::select! {
            o = &mut good_run, if good_outcome.is_none() => good_outcome = Some(o),
            o = &mut bad_run => break o,
        }
    };
    if outlasts {
        assert!(
            good_outcome.is_some(),
            "the well-behaved check must finish while the hostile one runs"
        );
    }
    let good_outcome = match good_outcome {
        Some(o) => o,
        None => good_run.await,
    };
    assert_eq!(good_outcome.status, Status::Up, "{good_outcome:?}");
    assert_eq!(good_outcome.message, "ok");
    bad_outcome
}

fn assert_error(o: &Outcome, cause: ErrorCause, needle: &str) {
    assert_eq!(o.status, Status::Error, "{o:?}");
    assert_eq!(o.error_cause, Some(cause), "{o:?}");
    assert!(
        o.message.contains(needle),
        "message {:?} should contain {needle:?}",
        o.message
    );
}

#[tokio::test]
async fn infinite_loop_hits_the_cpu_budget() {
    let o = contained_with(
        json!({"mode": "loop"}),
        tight_limits(),
        Duration::from_secs(10),
        true,
    )
    .await;
    assert_error(&o, ErrorCause::CpuLimit, "200 ms CPU budget");
}

#[tokio::test]
async fn cpu_loop_past_the_deadline_is_cut_by_the_wall_clock() {
    let limits = InvocationLimits {
        cpu_budget_ms: 60_000,
        grace_ms: 50,
        ..tight_limits()
    };
    let o = contained_with(
        json!({"mode": "loop"}),
        limits,
        Duration::from_millis(300),
        true,
    )
    .await;
    assert_error(&o, ErrorCause::Timeout, "300 ms timeout");
}

#[tokio::test]
async fn memory_growth_stops_at_the_cap() {
    let o = contained(
        json!({"mode": "memory"}),
        tight_limits(),
        Duration::from_secs(10),
    )
    .await;
    assert_error(&o, ErrorCause::MemoryLimit, "cap is 16 MiB");
}

#[tokio::test]
async fn deep_recursion_is_contained() {
    let o = contained(
        json!({"mode": "recursion"}),
        tight_limits(),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(o.status, Status::Error, "{o:?}");
    assert!(
        matches!(
            o.error_cause,
            Some(ErrorCause::StackOverflow | ErrorCause::Trap)
        ),
        "recursion should overflow a stack: {o:?}"
    );
}

#[tokio::test]
async fn a_trap_is_an_error_outcome() {
    let o = contained(
        json!({"mode": "trap"}),
        tight_limits(),
        Duration::from_secs(10),
    )
    .await;
    assert_error(&o, ErrorCause::Trap, "plugin trapped");
}

#[tokio::test]
async fn giant_output_is_rejected() {
    let limits = InvocationLimits {
        max_memory_bytes: 64 << 20,
        cpu_budget_ms: 5000,
        ..tight_limits()
    };
    let o = contained(
        json!({"mode": "giant-output", "bytes": 8 << 20}),
        limits,
        Duration::from_secs(20),
    )
    .await;
    assert_error(&o, ErrorCause::InvalidOutput, "the cap is");
}

#[tokio::test]
async fn log_flood_is_cut_off() {
    let o = contained(
        json!({"mode": "log-flood"}),
        tight_limits(),
        Duration::from_secs(10),
    )
    .await;
    assert_error(&o, ErrorCause::LogFlood, "logged more than");
}

#[tokio::test]
async fn host_call_flood_is_cut_off() {
    let o = contained(
        json!({"mode": "hostcall-flood"}),
        tight_limits(),
        Duration::from_secs(10),
    )
    .await;
    assert_error(&o, ErrorCause::HostCallLimit, "capability calls");
}

#[tokio::test]
async fn undeclared_capability_is_refused() {
    let o = contained(
        json!({"mode": "undeclared"}),
        tight_limits(),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(o.status, Status::Error, "{o:?}");
    assert!(
        o.message.contains("not-granted") || o.message.contains("not declared"),
        "{o:?}"
    );
    assert!(o.message.contains("tcp"), "{o:?}");
}

#[tokio::test]
async fn ssrf_targets_are_denied() {
    let server = support::servers::http().await;
    for url in [
        format!("http://127.0.0.1:{}/", server.addr.port()),
        format!("http://localhost:{}/", server.addr.port()),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://[::ffff:127.0.0.1]/".to_string(),
        "http://10.0.0.1/".to_string(),
    ] {
        let o = contained(
            json!({"mode": "ssrf", "url": url}),
            tight_limits(),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(o.status, Status::Error, "{url}: {o:?}");
        assert!(o.message.contains("policy-denied"), "{url}: {o:?}");
    }
}

#[tokio::test]
async fn grants_narrow_what_a_plugin_may_do() {
    let runtime = support::runtime(true);
    let plugin = runtime
        .load(&support::fixture(HOSTILE))
        .await
        .expect("load");
    let server = support::servers::http().await;
    let url = format!("http://127.0.0.1:{}/", server.addr.port());
    // Nothing granted: the declared http capability is still refused.
    let none = runtime.sandbox(&plugin, &pharos::runtime::Grants::default());
    let o = support::check(
        &runtime,
        &plugin,
        &none,
        json!({"mode": "ssrf", "url": url}),
        Duration::from_secs(5),
    )
    .await;
    assert!(o.message.contains("not-granted"), "{o:?}");
    // http granted but only for another host.
    let narrow = pharos::runtime::Grants {
        capabilities: [pharos::runtime::Capability::Http].into_iter().collect(),
        allowed_hosts: Some(vec!["hooks.example.com".into()]),
    };
    let sandbox = runtime.sandbox(&plugin, &narrow);
    let o = support::check(
        &runtime,
        &plugin,
        &sandbox,
        json!({"mode": "ssrf", "url": url}),
        Duration::from_secs(5),
    )
    .await;
    assert!(o.message.contains("not-granted"), "{o:?}");
    // Granted: the request goes through.
    let all = runtime.sandbox_all(&plugin);
    let o = support::check(
        &runtime,
        &plugin,
        &all,
        json!({"mode": "http", "url": url}),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(o.status, Status::Up, "{o:?}");
}

#[tokio::test]
async fn host_calls_stop_at_the_check_deadline() {
    let runtime = support::runtime(true);
    let plugin = runtime
        .load(&support::fixture(HOSTILE))
        .await
        .expect("load");
    let server = support::servers::http().await;
    let url = format!("http://127.0.0.1:{}/slow/5000", server.addr.port());
    let sandbox = runtime.sandbox_all(&plugin);
    let o = support::check(
        &runtime,
        &plugin,
        &sandbox,
        json!({"mode": "ssrf", "url": url}),
        Duration::from_millis(300),
    )
    .await;
    assert!(o.message.contains("timeout"), "{o:?}");
    assert!(o.latency_ms < 5000.0, "{o:?}");
}

#[tokio::test]
async fn a_full_pool_queues_instead_of_failing() {
    let runtime = support::runtime_with(RuntimeConfig {
        max_instances: Some(2),
        ..RuntimeConfig::default()
    });
    let plugin = runtime
        .load(&support::fixture(HOSTILE))
        .await
        .expect("load");
    let sandbox = runtime.sandbox_all(&plugin);
    let runs = (0..20).map(|_| {
        support::check(
            &runtime,
            &plugin,
            &sandbox,
            json!({"mode": "ok"}),
            Duration::from_secs(10),
        )
    });
    let outcomes = futures::future::join_all(runs).await;
    assert_eq!(outcomes.len(), 20);
    assert!(
        outcomes.iter().all(|o| o.status == Status::Up),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn compiled_plugins_are_cached_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        max_instances: Some(4),
        ..RuntimeConfig::default()
    };
    let bytes = support::fixture(HOSTILE);
    let first = support::runtime_with(config.clone())
        .load(&bytes)
        .await
        .expect("compile");
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read")
        .flatten()
        .collect();
    assert_eq!(files.len(), 1, "one artifact per digest");
    assert!(
        files[0]
            .file_name()
            .to_string_lossy()
            .starts_with(&first.digest)
    );
    let runtime = support::runtime_with(config);
    let second = runtime.load(&bytes).await.expect("from cache");
    assert_eq!(second.info, first.info);
    let o = support::check(
        &runtime,
        &second,
        &runtime.sandbox_all(&second),
        json!({"mode": "ok"}),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(o.status, Status::Up);
}

#[tokio::test]
async fn malformed_components_are_refused_with_a_reason() {
    let runtime = support::runtime(false);
    let err = runtime
        .load(b"definitely not wasm")
        .await
        .expect_err("garbage");
    assert!(matches!(err, LoadError::NotAComponent(_)), "{err}");
    let core_module = wat::parse_str("(module)").expect("wat");
    let err = runtime.load(&core_module).await.expect_err("core module");
    assert!(matches!(err, LoadError::NotAComponent(_)), "{err}");
    let empty_component = wat::parse_str("(component)").expect("wat");
    let err = runtime
        .load(&empty_component)
        .await
        .expect_err("wrong world");
    assert!(matches!(err, LoadError::WrongWorld(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("pharos:plugin/checker") && text.contains("pharos:plugin/notifier"),
        "{text}"
    );
    let foreign_import = wat::parse_str(
        r#"(component (import "acme:secret/files" (instance (export "read" (func)))))"#,
    )
    .expect("wat");
    let err = runtime
        .load(&foreign_import)
        .await
        .expect_err("foreign import");
    assert!(matches!(err, LoadError::UnsupportedImports(_)), "{err}");
}

#[tokio::test]
async fn config_is_validated_against_the_schema_before_running() {
    let runtime = support::runtime(false);
    let plugin = support::builtin(&runtime, "http").await;
    let sandbox = runtime.sandbox_all(&plugin);
    let o = support::check(
        &runtime,
        &plugin,
        &sandbox,
        json!({"url": 42}),
        Duration::from_secs(5),
    )
    .await;
    assert_error(&o, ErrorCause::InvalidConfig, "/url");
}

#[tokio::test]
async fn per_plugin_limits_do_not_leak_into_the_shared_cache() {
    let runtime = support::runtime(false);
    let bytes = support::fixture(HOSTILE);
    let tight = runtime
        .load_with_limits(&bytes, Some(tight_limits()))
        .await
        .expect("tight");
    let default = runtime.load(&bytes).await.expect("default");
    let o = support::check(
        &runtime,
        &tight,
        &runtime.sandbox_all(&tight),
        json!({"mode": "loop"}),
        Duration::from_secs(5),
    )
    .await;
    assert_error(&o, ErrorCause::CpuLimit, "200 ms");
    // The default plugin keeps the 1000 ms budget: a 500 ms timeout ends the loop first.
    let o = support::check(
        &runtime,
        &default,
        &runtime.sandbox_all(&default),
        json!({"mode": "loop"}),
        Duration::from_millis(500),
    )
    .await;
    assert_error(&o, ErrorCause::Timeout, "500 ms timeout");
}

#[tokio::test]
async fn a_spinning_notifier_is_contained_like_a_check() {
    let runtime = support::runtime(false);
    let notifier = runtime
        .load_with_limits(
            &support::fixture("pharos_fixture_notifier"),
            Some(tight_limits()),
        )
        .await
        .expect("load notifier");
    let good = runtime
        .load(&support::fixture(HOSTILE))
        .await
        .expect("load good");
    let input = DeliverInput {
        config: json!({"mode": "loop"}).to_string(),
        title: "t".into(),
        body: "b".into(),
        event: "{}".into(),
        idempotency_key: "k".into(),
        attempt: 1,
        timeout: Duration::from_secs(10),
        test: true,
        channel: "sandbox".into(),
    };
    let notifier_box = runtime.sandbox_all(&notifier);
    let bad_run = runtime.deliver(&notifier, &notifier_box, input);
    let good_box = runtime.sandbox_all(&good);
    let good_run = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        support::check(
            &runtime,
            &good,
            &good_box,
            json!({"mode": "ok"}),
            Duration::from_secs(5),
        )
        .await
    };
    tokio::pin!(bad_run, good_run);
    let mut good_outcome = None;
    let delivery = loop {
        tokio::select! {
            o = &mut good_run, if good_outcome.is_none() => good_outcome = Some(o),
            d = &mut bad_run => break d,
        }
    };
    let good_outcome = good_outcome.expect("the check must finish while the notifier spins");
    assert_eq!(good_outcome.status, Status::Up, "{good_outcome:?}");
    match delivery.outcome {
        DeliveryOutcome::Transient(m) => {
            assert!(m.starts_with("cpu_limit: "), "{m}");
            assert!(m.contains("200 ms CPU budget"), "{m}");
        }
        other => panic!("expected a transient cpu_limit failure, got {other:?}"),
    }
}
