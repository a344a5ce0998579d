//! The single-request fast path (`planner` export): the host sends the planned request under
//! the plugin's grants and network policy, a fresh instance with no capabilities evaluates
//! it, plans are cached per config, faults in `plan` are contained, and components without
//! the export run through `checker.check`.

mod support;

use std::time::Duration;

use pharos::runtime::{ErrorCause, Evaluations, Grants, Outcome, Plugin, Runtime, Sandbox, Status};
use serde_json::json;

const HOSTILE: &str = "pharos_fixture_hostile";
const PLAIN: &str = "pharos_fixture_plain_check";

/// The `evaluate` counts expected of a plugin.
fn evaluations(synchronous: u64, on_fiber: u64) -> Evaluations {
    Evaluations {
        synchronous,
        on_fiber,
    }
}

/// Runs the hostile fixture's `mode` against `url` with a 5 s timeout.
async fn run_mode(
    runtime: &Runtime,
    plugin: &Plugin,
    sandbox: &Sandbox,
    mode: &str,
    url: &str,
) -> Outcome {
    let config = json!({"mode": mode, "url": url});
    support::check(runtime, plugin, sandbox, config, Duration::from_secs(5)).await
}

#[tokio::test]
async fn the_http_plugin_is_planned_and_plans_are_cached_per_config() {
    let runtime = support::runtime(true);
    let plugin = support::builtin(&runtime, "http").await;
    assert!(plugin.has_planner());
    // The built-in evaluates in its variant without the `http` import (host/build.rs), so
    // everything below also checks that the variant judges like the plugin.
    assert!(plugin.evaluates_in_variant());
    let sandbox = runtime.sandbox_all(&plugin);
    let server = support::servers::http().await;
    let base = format!("http://127.0.0.1:{}", server.addr.port());

    let config = json!({"url": format!("{base}/json"), "json_assertions": [
        {"path": "$.nested.version", "operator": "eq", "value": "1.4.2"}
    ]});
    for _ in 0..3 {
        let o = support::check(
            &runtime,
            &plugin,
            &sandbox,
            config.clone(),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(o.status, Status::Up, "{o:?}");
        assert!(o.message.starts_with("HTTP 200 in "), "{o:?}");
        assert!(o.timings.connect_ms.is_some() && o.timings.total_ms.is_some());
        assert_eq!(support::metric(&o, "http_status"), Some(200.0));
        let details = o.details.expect("details").to_value();
        assert_eq!(details["remote_addr"], server.addr.to_string());
    }
    assert_eq!(plugin.cached_plans(), 1, "one config, one plan");
    // A pure `evaluate` (no import but `log`, no long loop) runs synchronously.
    assert_eq!(plugin.evaluations(), evaluations(3, 0));

    // A failing assertion is judged by `evaluate` on the host-sent response.
    let o = support::check(
        &runtime,
        &plugin,
        &sandbox,
        json!({"url": format!("{base}/status/503"), "expected_status": "200"}),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(o.status, Status::Down, "{o:?}");
    assert!(o.message.contains("got 503"), "{o:?}");
    assert_eq!(plugin.cached_plans(), 2);

    // A capability error of the host-sent request reaches `evaluate` like an import's would.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let o = support::check(
        &runtime,
        &plugin,
        &sandbox,
        json!({"url": format!("http://127.0.0.1:{port}/")}),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(o.status, Status::Down, "{o:?}");
    let details = o.details.expect("details").to_value();
    assert_eq!(details["error"]["kind"], "connect", "{details}");
}

#[tokio::test]
async fn a_config_the_plan_rejects_is_an_error_without_any_request() {
    let runtime = support::runtime(true);
    let plugin = support::builtin(&runtime, "http").await;
    let sandbox = runtime.sandbox_all(&plugin);
    let config = json!({"url": "http://127.0.0.1:9/", "body_regex": ["("]});
    for _ in 0..2 {
        let o = support::check(
            &runtime,
            &plugin,
            &sandbox,
            config.clone(),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(o.status, Status::Error, "{o:?}");
        assert!(o.message.starts_with("invalid config"), "{o:?}");
    }
    assert_eq!(plugin.cached_plans(), 1);
}

#[tokio::test]
async fn planned_requests_pass_the_ssrf_guard_and_the_grants() {
    let server = support::servers::http().await;
    let loopback = format!("http://127.0.0.1:{}/", server.addr.port());

    // Private targets not allowed: the host refuses the planned request.
    let runtime = support::runtime(false);
    let plugin = support::builtin(&runtime, "http").await;
    let sandbox = runtime.sandbox_all(&plugin);
    for url in [
        loopback.clone(),
        format!("http://localhost:{}/", server.addr.port()),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://[::ffff:127.0.0.1]/".to_string(),
    ] {
        let o = support::check(
            &runtime,
            &plugin,
            &sandbox,
            json!({"url": url}),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(o.status, Status::Error, "{url}: {o:?}");
        let details = o.details.expect("details").to_value();
        assert_eq!(
            details["error"]["kind"], "policy-denied",
            "{url}: {details}"
        );
    }

    // Private targets allowed, but `http` not granted: refused before any connection.
    let runtime = support::runtime(true);
    let plugin = support::builtin(&runtime, "http").await;
    let none = runtime.sandbox(&plugin, &Grants::default());
    let o = support::check(
        &runtime,
        &plugin,
        &none,
        json!({"url": loopback}),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(o.status, Status::Error, "{o:?}");
    let details = o.details.expect("details").to_value();
    assert_eq!(details["error"]["kind"], "not-granted", "{details}");

    // Granted for another host only.
    let narrow = Grants {
        capabilities: [pharos::runtime::Capability::Http].into_iter().collect(),
        allowed_hosts: Some(vec!["hooks.example.com".into()]),
    };
    let sandbox = runtime.sandbox(&plugin, &narrow);
    let o = support::check(
        &runtime,
        &plugin,
        &sandbox,
        json!({"url": loopback}),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(o.status, Status::Error, "{o:?}");
}

#[tokio::test]
async fn the_planned_request_is_cut_at_the_check_deadline() {
    let runtime = support::runtime(true);
    let plugin = support::builtin(&runtime, "http").await;
    let sandbox = runtime.sandbox_all(&plugin);
    let server = support::servers::http().await;
    let started = std::time::Instant::now();
    let o = support::check(
        &runtime,
        &plugin,
        &sandbox,
        json!({"url": format!("http://127.0.0.1:{}/slow/5000", server.addr.port())}),
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(o.status, Status::Down, "{o:?}");
    assert!(o.message.contains("timeout"), "{o:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "{o:?}");
}

#[tokio::test]
async fn evaluate_runs_without_capabilities() {
    let runtime = support::runtime(true);
    let plugin = runtime
        .load(&support::fixture(HOSTILE))
        .await
        .expect("load");
    assert!(plugin.has_planner());
    assert!(
        !plugin.evaluates_in_variant(),
        "only built-ins have a variant"
    );
    let sandbox = runtime.sandbox_all(&plugin);
    let server = support::servers::http().await;
    let url = format!("http://127.0.0.1:{}/", server.addr.port());
    let o = run_mode(&runtime, &plugin, &sandbox, "planned", &url).await;
    assert_eq!(o.status, Status::Up, "{o:?}");
    // The host sent the planned request; the plugin's own call from `evaluate` was refused.
    assert_eq!(o.message, "HTTP 200; own call not-granted", "{o:?}");
    // That call trapped the synchronous attempt, whose run on the async path gave the answer.
    assert_eq!(plugin.evaluations(), evaluations(0, 1));

    // Modes that do not plan run through `check`, with their grants.
    let o = run_mode(&runtime, &plugin, &sandbox, "http", &url).await;
    assert_eq!(o.status, Status::Up, "{o:?}");
    assert_eq!(o.message, "HTTP 200");
}

#[tokio::test]
async fn evaluate_runs_synchronously_when_it_can_and_on_a_fiber_when_it_cannot() {
    let runtime = support::runtime(true);
    let plugin = support::fixture_with_cpu_budget(&runtime, HOSTILE, 200).await;
    let sandbox = runtime.sandbox_all(&plugin);
    let server = support::servers::http().await;
    let url = format!("http://127.0.0.1:{}/", server.addr.port());

    // `log` is the one import a synchronous `evaluate` may call (WASI imports of this
    // wasm32-wasip2 component are stubs that trap, and it makes no WASI call here).
    let o = run_mode(&runtime, &plugin, &sandbox, "evaluate-log", &url).await;
    assert_eq!(o.status, Status::Up, "{o:?}");
    assert_eq!(o.message, "HTTP 200");
    assert_eq!(plugin.evaluations(), evaluations(1, 0));

    // A spinning `evaluate` is aborted after half an epoch tick, then runs on a fiber, where
    // the CPU budget ends it.
    let started = std::time::Instant::now();
    let o = run_mode(&runtime, &plugin, &sandbox, "evaluate-loop", &url).await;
    assert_eq!(o.status, Status::Error, "{o:?}");
    assert_eq!(o.error_cause, Some(ErrorCause::CpuLimit), "{o:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "{o:?}");
    assert_eq!(plugin.evaluations(), evaluations(1, 1));

    // The runtime is fine afterwards.
    let o = run_mode(&runtime, &plugin, &sandbox, "evaluate-log", &url).await;
    assert_eq!(o.status, Status::Up, "{o:?}");
    assert_eq!(plugin.evaluations().synchronous, 2);
}

#[tokio::test]
async fn faults_in_plan_are_contained_and_not_cached() {
    let runtime = support::runtime(true);
    let plugin = support::fixture_with_cpu_budget(&runtime, HOSTILE, 200).await;
    let sandbox = runtime.sandbox_all(&plugin);

    let o = support::check(
        &runtime,
        &plugin,
        &sandbox,
        json!({"mode": "plan-trap"}),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(o.status, Status::Error, "{o:?}");
    assert_eq!(o.error_cause, Some(ErrorCause::Trap), "{o:?}");
    assert!(o.message.starts_with("planning the check failed"), "{o:?}");

    let o = support::check(
        &runtime,
        &plugin,
        &sandbox,
        json!({"mode": "plan-loop"}),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(o.status, Status::Error, "{o:?}");
    assert_eq!(o.error_cause, Some(ErrorCause::CpuLimit), "{o:?}");
    assert_eq!(plugin.cached_plans(), 0, "failed plans are not cached");

    // The same plugin still plans and runs good configs.
    let o = support::check(
        &runtime,
        &plugin,
        &sandbox,
        json!({"mode": "ok"}),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(o.status, Status::Up, "{o:?}");
    assert_eq!(plugin.cached_plans(), 1);
}

#[tokio::test]
async fn a_component_without_a_planner_runs_through_check() {
    let runtime = support::runtime(true);
    let plugin = runtime.load(&support::fixture(PLAIN)).await.expect("load");
    assert!(!plugin.has_planner());
    assert_eq!(plugin.info.name, "plain-check");
    let sandbox = runtime.sandbox_all(&plugin);
    let server = support::servers::http().await;
    let o = support::check(
        &runtime,
        &plugin,
        &sandbox,
        json!({"url": format!("http://127.0.0.1:{}/", server.addr.port())}),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(o.status, Status::Up, "{o:?}");
    assert_eq!(o.message, "HTTP 200");
    assert_eq!(plugin.cached_plans(), 0);

    // Its imports are still policed: no private targets in a default runtime.
    let strict = support::runtime(false);
    let plugin = strict.load(&support::fixture(PLAIN)).await.expect("load");
    let sandbox = strict.sandbox_all(&plugin);
    let o = support::check(
        &strict,
        &plugin,
        &sandbox,
        json!({"url": format!("http://127.0.0.1:{}/", server.addr.port())}),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(o.status, Status::Down, "{o:?}");
    assert!(o.message.starts_with("policy-denied"), "{o:?}");
}

#[tokio::test]
async fn planned_checks_hold_no_instance_while_they_wait_on_the_network() {
    // A pool of 4 instances serves 200 slow checks at once: a check holds a slot only while
    // its response is evaluated, not while it waits for the server.
    let runtime = std::sync::Arc::new(support::runtime_with(pharos::runtime::RuntimeConfig {
        allow_private_targets: true,
        max_instances: Some(4),
        ..pharos::runtime::RuntimeConfig::default()
    }));
    let plugin = support::builtin(&runtime, "http").await;
    let sandbox = runtime.sandbox_all(&plugin);
    let server = support::servers::http().await;
    let config = json!({"url": format!("http://127.0.0.1:{}/slow/1500", server.addr.port())});
    // Plan once, so the 200 checks below only do I/O and evaluate.
    support::check(
        &runtime,
        &plugin,
        &sandbox,
        config.clone(),
        Duration::from_secs(20),
    )
    .await;
    let mut runs = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (runtime, plugin, sandbox, config) = (
            runtime.clone(),
            plugin.clone(),
            sandbox.clone(),
            config.clone(),
        );
        runs.spawn(async move {
            support::check(&runtime, &plugin, &sandbox, config, Duration::from_secs(20)).await
        });
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        runtime.in_flight(),
        0,
        "no check holds a pool slot during I/O"
    );
    let mut up = 0;
    while let Some(outcome) = runs.join_next().await {
        let o = outcome.expect("check task");
        assert_eq!(o.status, Status::Up, "{o:?}");
        up += 1;
    }
    assert_eq!(up, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_of_one_config_that_start_together_are_planned_once() {
    let runtime = std::sync::Arc::new(support::runtime(true));
    let plugin = support::fixture_with_cpu_budget(&runtime, HOSTILE, 400).await;
    let sandbox = runtime.sandbox_all(&plugin);
    let mut runs = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (runtime, plugin, sandbox) = (runtime.clone(), plugin.clone(), sandbox.clone());
        runs.spawn(async move {
            support::check(
                &runtime,
                &plugin,
                &sandbox,
                json!({"mode": "plan-loop"}),
                Duration::from_secs(10),
            )
            .await
        });
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        runtime.in_flight(),
        1,
        "twenty checks of one config share one planning instance"
    );
    let mut failed = 0;
    while let Some(outcome) = runs.join_next().await {
        let o = outcome.expect("check task");
        assert_eq!(o.status, Status::Error, "{o:?}");
        assert_eq!(o.error_cause, Some(ErrorCause::CpuLimit), "{o:?}");
        failed += 1;
    }
    assert_eq!(
        failed, 20,
        "every waiting check gets the planning's outcome"
    );
    assert_eq!(plugin.cached_plans(), 0, "a failed planning is not cached");
}
