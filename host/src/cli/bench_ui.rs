//! `pharos bench ui`: the dashboard with many monitors on SQLite — server time of the
//! overview's API calls and of `/`, and (when Chromium and chromedriver are installed) first
//! paint in a real headless browser, measured with the Performance API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use chrono::Utc;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::cli::bench_service::{Backend, Scratch};
use crate::model::{
    AlertPolicy, DEFAULT_WORKSPACE, MonitorSpec, MonitorType, NewResult, Status, Timings,
};

/// Options of `pharos bench ui`.
#[derive(Debug, Args)]
pub struct UiArgs {
    /// Monitors in the workspace.
    #[arg(long, default_value_t = 1000)]
    pub monitors: usize,
    /// Results per monitor, spread over the last 24 hours (288 = one every 5 minutes).
    #[arg(long, default_value_t = 288)]
    pub results: usize,
    /// Sequential requests per measured route.
    #[arg(long, default_value_t = 50)]
    pub requests: usize,
    /// Page loads measured in the browser.
    #[arg(long, default_value_t = 10)]
    pub loads: usize,
    /// Chromium binary.
    #[arg(long, default_value = "/usr/bin/chromium")]
    pub chromium: PathBuf,
    /// chromedriver binary.
    #[arg(long, default_value = "/usr/bin/chromedriver")]
    pub chromedriver: PathBuf,
}

/// Runs the benchmark and prints its figures.
pub async fn run(args: UiArgs) -> anyhow::Result<()> {
    let scratch = Scratch::new(Backend::Sqlite, "ui", "").await?;
    let result = bench(&args, &scratch).await;
    scratch.cleanup().await;
    result
}

async fn bench(args: &UiArgs, scratch: &Scratch) -> anyhow::Result<()> {
    let server = scratch.start().await?;
    let key = server.admin_key().context("no admin key")?;
    let addr = server.addr();
    let store = server.app().store.clone();

    let started = Instant::now();
    // Monitors straight into the store (the scheduler does not run them: the figures are the
    // dashboard's alone).
    let specs: Vec<(MonitorSpec, Option<String>)> = (0..args.monitors)
        .map(|i| {
            (
                MonitorSpec {
                    name: format!("service-{i:04}"),
                    kind: MonitorType::Check,
                    plugin: Some("http".into()),
                    config: json!({"url": format!("https://svc{i}.example.com/health")}),
                    interval_secs: 300,
                    timeout_ms: 10_000,
                    enabled: true,
                    tags: vec![
                        format!("team-{}", i % 10),
                        if i % 3 == 0 {
                            "prod".into()
                        } else {
                            "staging".into()
                        },
                    ],
                    push: None,
                    alert: AlertPolicy::default(),
                },
                None,
            )
        })
        .collect();
    let mut ids = Vec::with_capacity(args.monitors);
    for chunk in specs.chunks(500) {
        ids.extend(
            store
                .create_monitors(DEFAULT_WORKSPACE, chunk)
                .await?
                .into_iter()
                .map(|m| m.id),
        );
    }
    // A day of results.
    let now = Utc::now();
    let step = chrono::Duration::milliseconds(86_400_000 / args.results.max(1) as i64);
    let mut batch = Vec::with_capacity(1000);
    let mut stored = 0usize;
    for r in 0..args.results {
        let at = now - step * (args.results - r) as i32;
        for (n, id) in ids.iter().enumerate() {
            let down = (n + r) % 97 == 0;
            let latency = 20.0 + ((n * 7 + r * 13) % 180) as f64;
            batch.push(NewResult {
                monitor_id: *id,
                workspace_id: DEFAULT_WORKSPACE,
                region: "local".into(),
                started_at: at,
                status: if down { Status::Down } else { Status::Up },
                latency_ms: latency,
                message: if down {
                    "HTTP 503".into()
                } else {
                    "HTTP 200".into()
                },
                timings: Timings {
                    dns_ms: Some(1.0),
                    connect_ms: Some(2.0),
                    tls_ms: Some(8.0),
                    first_byte_ms: Some(latency - 5.0),
                    total_ms: Some(latency),
                },
                metrics: Vec::new(),
                details: None,
                error_cause: None,
                ping: false,
            });
            if batch.len() == 1000 {
                store.insert_results(&batch).await?;
                stored += batch.len();
                batch.clear();
            }
        }
    }
    if !batch.is_empty() {
        stored += batch.len();
        store.insert_results(&batch).await?;
    }
    store.rollup(now - chrono::Duration::minutes(2)).await?;
    println!(
        "pharos bench ui: {} monitors, {stored} results over 24 h on SQLite (setup {:.1} s)",
        ids.len(),
        started.elapsed().as_secs_f64()
    );

    let auth = format!("Bearer {key}");
    let html = get(addr, "/", None).await?;
    let page = String::from_utf8_lossy(&html.1).to_string();
    let js = page
        .split('"')
        .find(|p| p.starts_with("/app/") && p.ends_with("/app.js"))
        .context("no app.js in the page")?
        .to_string();
    let overview = get(addr, "/api/v1/dashboard/monitors", Some(&auth)).await?;
    if overview.0 != 200 {
        bail!("overview answered {}", overview.0);
    }
    println!("  overview document: {} KiB", overview.1.len() / 1024);
    println!(
        "  server time over {} sequential requests (loopback, one connection each):",
        args.requests
    );
    for (label, path, auth) in [
        ("GET /", "/", None),
        ("GET /app/<v>/app.js", js.as_str(), None),
        (
            "GET /api/v1/dashboard/monitors",
            "/api/v1/dashboard/monitors",
            Some(auth.as_str()),
        ),
        (
            "GET /api/v1/dashboard/summary",
            "/api/v1/dashboard/summary",
            Some(auth.as_str()),
        ),
    ] {
        let mut times = Vec::with_capacity(args.requests);
        for _ in 0..args.requests {
            let t = Instant::now();
            let (status, _) = get(addr, path, auth).await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            if status != 200 {
                bail!("{label} answered {status}");
            }
        }
        let (p50, p99) = percentiles(&mut times);
        println!("    {label:<34} p50 {p50:>7.2} ms   p99 {p99:>7.2} ms");
    }

    if args.chromium.exists() && args.chromedriver.exists() {
        browser(args, addr, &key).await?;
    } else {
        println!(
            "  browser: skipped ({} or {} missing)",
            args.chromium.display(),
            args.chromedriver.display()
        );
    }
    server.shutdown().await;
    Ok(())
}

fn percentiles(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v.get(i).copied().unwrap_or(f64::NAN)
    };
    (at(0.5), at(0.99))
}

/// One request on a fresh connection: status and body.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<(u16, Bytes)> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let payload = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Bytes::from(b.to_string())
        }
        None => Bytes::new(),
    };
    let resp = send.send_request(req.body(Full::new(payload))?).await?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    driver.abort();
    Ok((status, bytes))
}

async fn get(addr: SocketAddr, path: &str, auth: Option<&str>) -> anyhow::Result<(u16, Bytes)> {
    request(addr, "GET", path, auth, None).await
}

/// A WebDriver command; returns `value`.
async fn wd(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let (status, bytes) = request(addr, method, path, None, body).await?;
    let v: Value = serde_json::from_slice(&bytes).context("webdriver answer")?;
    if status >= 400 {
        bail!("webdriver {method} {path}: {status} {v}");
    }
    Ok(v["value"].clone())
}

/// First paint of the overview in headless Chromium over `args.loads` page loads.
async fn browser(args: &UiArgs, server: SocketAddr, key: &str) -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = tokio::process::Command::new(&args.chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("chromedriver")?;
    let drv = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(20);
    while wd(drv, "GET", "/status", None).await.is_err() {
        if Instant::now() > deadline {
            bail!("chromedriver did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let session = wd(
        drv,
        "POST",
        "/session",
        Some(
            json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": args.chromium.to_string_lossy(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                     "--disable-dev-shm-usage", "--no-first-run"]}}}}),
        ),
    )
    .await?;
    let id = session["sessionId"]
        .as_str()
        .context("no session id")?
        .to_string();
    let base = format!("http://{server}");
    let url = |u: String| Some(json!({ "url": u }));
    let script = |s: &str| Some(json!({ "script": s, "args": [] }));
    wd(
        drv,
        "POST",
        &format!("/session/{id}/url"),
        url(format!("{base}/login")),
    )
    .await?;
    wd(
        drv,
        "POST",
        &format!("/session/{id}/execute/sync"),
        script(&format!(
            "localStorage.setItem('pharos.key', {});",
            json!(key)
        )),
    )
    .await?;
    let (mut fcp, mut rows) = (Vec::new(), Vec::new());
    for i in 0..args.loads {
        wd(
            drv,
            "POST",
            &format!("/session/{id}/url"),
            url(format!("{base}/?load={i}")),
        )
        .await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let v = loop {
            let v = wd(
                drv,
                "POST",
                &format!("/session/{id}/execute/sync"),
                script(
                    "const p = performance.getEntriesByName('first-contentful-paint')[0]; \
                     return window.__pharosOverviewPainted && p ? \
                     {fcp: p.startTime, rows: window.__pharosOverviewPainted, \
                      n: document.querySelectorAll('#monitor-rows tr').length} : null;",
                ),
            )
            .await?;
            if !v.is_null() {
                break v;
            }
            if Instant::now() > deadline {
                bail!("the overview did not paint");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        fcp.push(v["fcp"].as_f64().unwrap_or(f64::NAN));
        rows.push(v["rows"].as_f64().unwrap_or(f64::NAN));
    }
    println!(
        "    per load (FCP / rows, ms): {}",
        fcp.iter()
            .zip(&rows)
            .map(|(f, r)| format!("{f:.0}/{r:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = wd(drv, "DELETE", &format!("/session/{id}"), None).await;
    let _ = child.kill().await;
    let cold = (fcp.first().copied(), rows.first().copied());
    let (f50, f99) = percentiles(&mut fcp);
    let (r50, r99) = percentiles(&mut rows);
    println!(
        "  headless Chromium, {} loads of / with {} monitors:",
        args.loads, args.monitors
    );
    println!(
        "    first-contentful-paint            p50 {f50:>7.1} ms   max {f99:>7.1} ms   (first load {:.1} ms)",
        cold.0.unwrap_or(f64::NAN)
    );
    println!(
        "    first monitor rows painted        p50 {r50:>7.1} ms   max {r99:>7.1} ms   (first load {:.1} ms)",
        cold.1.unwrap_or(f64::NAN)
    );
    Ok(())
}
