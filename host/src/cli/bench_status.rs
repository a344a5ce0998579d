//! `pharos bench status`: server time of a public status page on SQLite — a page of 50
//! components (by default) whose monitors have 90 days of results, rolled up. Cached: the
//! full HTTP handler stack (router, middleware, cache hit, response) called in-process.
//! Uncached: the cache cleared before each request, so every request reads the store, computes
//! the page and renders the HTML.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Body;
use chrono::Utc;
use clap::Args;
use tower::ServiceExt;

use crate::cli::bench_service::{Backend, Scratch};
use crate::model::{
    AlertPolicy, DEFAULT_WORKSPACE, LOCAL_REGION, MonitorSpec, MonitorType, NewResult, Status,
    Timings,
};
use crate::status::{ComponentSpec, StatusPageSpec};

/// Options of `pharos bench status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Components on the page (one monitor each).
    #[arg(long, default_value_t = 50)]
    pub components: usize,
    /// Results per monitor per day over the 90 days of the strip.
    #[arg(long, default_value_t = 24)]
    pub results_per_day: usize,
    /// Requests measured per phase.
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,
}

/// Runs the benchmark and prints its figures.
pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let scratch = Scratch::new(Backend::Sqlite, "status", "").await?;
    let result = bench(&args, &scratch).await;
    scratch.cleanup().await;
    result
}

/// p50 and p99 of durations, in milliseconds.
fn percentiles(mut d: Vec<Duration>) -> (f64, f64) {
    d.sort();
    let at = |q: f64| {
        let i = ((d.len() as f64 - 1.0) * q).round() as usize;
        d.get(i).map_or(0.0, |x| x.as_secs_f64() * 1000.0)
    };
    (at(0.50), at(0.99))
}

async fn bench(args: &StatusArgs, scratch: &Scratch) -> anyhow::Result<()> {
    let server = scratch.start().await?;
    let app = server.app().clone();
    let store = app.store.clone();
    let now = Utc::now();
    let days = crate::status::model::HISTORY_DAYS;
    let per_day = args.results_per_day.max(1) as i64;
    let step = chrono::Duration::milliseconds(86_400_000 / per_day);
    let start = now - chrono::Duration::days(days);

    let setup = Instant::now();
    let mut ids = Vec::with_capacity(args.components);
    for i in 0..args.components {
        let spec = MonitorSpec {
            name: format!("bench-{i}"),
            kind: MonitorType::Check,
            plugin: Some("http".into()),
            config: serde_json::json!({"url": format!("http://127.0.0.1:9/{i}")}),
            interval_secs: 3600,
            timeout_ms: 5000,
            enabled: true,
            tags: vec![],
            push: None,
            alert: AlertPolicy::default(),
        };
        ids.push(
            store
                .create_monitor(DEFAULT_WORKSPACE, &spec, None)
                .await?
                .id,
        );
    }
    let total = days * per_day;
    let mut batch = Vec::with_capacity(1000);
    for k in 0..total {
        let at = start + step * (k as i32);
        for (i, id) in ids.iter().enumerate() {
            // Each monitor has a bad day: the day numbered like the monitor (mod 90).
            let bad = (k / per_day) as usize == i % days as usize && k % per_day < 3;
            batch.push(NewResult {
                monitor_id: *id,
                workspace_id: DEFAULT_WORKSPACE,
                region: LOCAL_REGION.into(),
                started_at: at,
                status: if bad { Status::Down } else { Status::Up },
                latency_ms: 20.0,
                message: String::new(),
                timings: Timings::default(),
                metrics: vec![],
                details: None,
                error_cause: None,
                ping: false,
            });
        }
        if batch.len() >= 1000 {
            store.insert_results(&batch).await?;
            batch.clear();
        }
    }
    store.insert_results(&batch).await?;
    store.rollup(now - chrono::Duration::minutes(2)).await?;
    let page = store
        .create_status_page(
            DEFAULT_WORKSPACE,
            &StatusPageSpec {
                slug: "bench".into(),
                title: "Bench".into(),
                description: String::new(),
                logo_url: None,
                brand_color: None,
                public: true,
            },
        )
        .await?;
    let specs: Vec<ComponentSpec> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| ComponentSpec {
            monitor_id: *id,
            public_name: format!("Component {i}"),
            group: format!("Group {}", i / 10),
            order: i as i64,
        })
        .collect();
    store
        .replace_status_page_components(page.id, &specs)
        .await?;
    println!(
        "setup: {} components, {} results each over {days} days, rolled up, in {:.1} s",
        args.components,
        total,
        setup.elapsed().as_secs_f64()
    );

    // Cached: the whole handler stack in-process.
    let router = crate::api::router(app.clone(), false);
    let get = || {
        axum::http::Request::get("/status/bench")
            .body(Body::empty())
            .context("request")
    };
    let first = router.clone().oneshot(get()?).await?;
    if first.status() != axum::http::StatusCode::OK {
        bail!("GET /status/bench answered {}", first.status());
    }
    let size = axum::body::to_bytes(first.into_body(), usize::MAX)
        .await?
        .len();
    let mut cached = Vec::with_capacity(args.requests);
    let mut misses = 0;
    for _ in 0..args.requests {
        let t = Instant::now();
        let resp = router.clone().oneshot(get()?).await?;
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await?;
        cached.push(t.elapsed());
        if body.len() != size {
            misses += 1;
        }
    }
    let (p50, p99) = percentiles(cached);
    println!(
        "cached:   GET /status/bench ({size} bytes HTML) p50={p50:.3} ms p99={p99:.3} ms over {} requests ({misses} rebuilt after the TTL; bar p50 <= 10 ms)",
        args.requests
    );

    // Uncached: the page cache is emptied before each request, so every request reads the
    // store, computes the page and renders the HTML. "rebuild" keeps the past days' counts
    // (reused for 5 minutes, as between two page builds in service); "cold" drops them too.
    let state = crate::api::ApiState::new(app.clone());
    let rounds = (args.requests / 10).max(20);
    for cold in [false, true] {
        let mut uncached = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            if cold {
                state.status.clear();
            } else {
                state.status.invalidate("bench");
            }
            let t = Instant::now();
            let (snap, hit) = crate::api::status_pages::snapshot(&state, "bench")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .context("page missing")?;
            let len = snap.html().body.len();
            uncached.push(t.elapsed());
            if hit || len == 0 {
                bail!("uncached request was served from the cache");
            }
        }
        let (p50, p99) = percentiles(uncached);
        println!(
            "uncached ({}): build + render p50={p50:.3} ms p99={p99:.3} ms over {rounds} requests",
            if cold {
                "cold, 90 days read"
            } else {
                "rebuild, past days reused"
            }
        );
    }
    server.shutdown().await;
    Ok(())
}
