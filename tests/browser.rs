//! The dashboard end to end: an in-process server, headless Chromium driven through
//! chromedriver (fantoccini). Screenshots of every page go to `target/screenshots/`.
//!
//! Chromium and chromedriver are `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian
//! `chromium` + `chromium-driver`; `PHAROS_CHROMIUM` / `PHAROS_CHROMEDRIVER` override). Outside
//! CI a missing browser skips the browser test with one line on stderr; under `CI=true` it is a
//! failure. The SSE, overview-series and asset tests need no browser and run on SQLite and
//! PostgreSQL.

mod support;

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use serde_json::{Value, json};
use support::api::{ADMIN, TestServer, start};
use support::{db, servers};

/// Longest wait for anything to show up on a page.
const WAIT: Duration = Duration::from_secs(30);

/// Runs `$body(database_url)` on SQLite (`$sqlite`) and PostgreSQL (`$postgres`).
macro_rules! both {
    ($body:ident: $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            $body(None).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let Some(url) = db::postgres_url().await else {
                return;
            };
            $body(Some(url)).await;
        }
    };
}

// ------------------------------------------------------------------ no browser needed

async fn events_stream_results_and_state_changes(database_url: Option<String>) {
    let s = start(database_url).await;
    let target = servers::http().await;
    // No key, a bad key: the error envelope, before any streaming.
    let r = s.anon(reqwest::Method::GET, "/api/v1/events").await;
    r.assert_error(401, "UNAUTHORIZED", None);
    let r = s
        .anon(reqwest::Method::GET, "/api/v1/events?access_token=phk_nope")
        .await;
    r.assert_error(401, "UNAUTHORIZED", None);
    let r = s
        .anon(
            reqwest::Method::GET,
            "/api/v1/events?access_token=x&other=1",
        )
        .await;
    r.assert_error(400, "VALIDATION_FAILED", Some("/other"));

    let resp = s
        .http
        .get(s.url(&format!("/api/v1/events?access_token={ADMIN}")))
        .send()
        .await
        .expect("events");
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream")),
        "{:?}",
        resp.headers()
    );
    let mut body = resp;
    let m = s
        .create(
            json!({"name": "sse", "plugin": "http", "interval_secs": 3600,
            "config": {"url": format!("http://{}/", target.addr)}}),
        )
        .await;
    let id = m["id"].as_i64().expect("id");
    let r = s.check_now(id).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Read until both the `state` (pending → up) and the `result` event of this monitor came.
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    let (mut saw_state, mut saw_result) = (false, false);
    while !(saw_state && saw_result) {
        let chunk = tokio::time::timeout_at(deadline, body.chunk())
            .await
            .expect("events arrive in time")
            .expect("chunk")
            .expect("stream open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        for block in text.split("\n\n") {
            let event = block.lines().find_map(|l| l.strip_prefix("event: "));
            let data = block.lines().find_map(|l| l.strip_prefix("data: "));
            let (Some(event), Some(data)) = (event, data) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(data) else {
                continue;
            };
            if v["monitor_id"] != id {
                continue;
            }
            match event {
                "result" => {
                    assert_eq!(v["status"], "up", "{v}");
                    assert!(v["latency_ms"].as_f64().is_some(), "{v}");
                    assert!(v["started_at"].is_string(), "{v}");
                    assert!(v["message"].is_string(), "{v}");
                    saw_result = true;
                }
                "state" => {
                    assert_eq!(v["status"], "up", "{v}");
                    assert_eq!(v["previous"], Value::Null, "{v}");
                    saw_state = true;
                }
                _ => {}
            }
        }
    }
    drop(body);
    s.stop().await;
}
both!(events_stream_results_and_state_changes: sqlite_events_stream, postgres_events_stream);

async fn overview_series_cover_every_monitor(database_url: Option<String>) {
    let s = start(database_url).await;
    let target = servers::http().await;
    let up = s
        .create(
            json!({"name": "a-up", "plugin": "http", "interval_secs": 3600, "tags": ["prod"],
            "config": {"url": format!("http://{}/", target.addr)}}),
        )
        .await;
    let down = s
        .create(
            json!({"name": "b-down", "plugin": "http", "interval_secs": 3600,
            "config": {"url": format!("http://{}/status/500", target.addr)}}),
        )
        .await;
    let idle = s
        .create(
            json!({"name": "c-idle", "plugin": "http", "interval_secs": 3600, "enabled": false,
            "config": {"url": format!("http://{}/", target.addr)}}),
        )
        .await;
    for m in [&up, &down] {
        let r = s.check_now(&m["id"]).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = s.get("/api/v1/dashboard/monitors").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let d = &r.body;
    assert_eq!(d["spark_step_secs"], 1800);
    assert_eq!(d["summary"]["monitors"], 3);
    assert_eq!(d["summary"]["paused"], 1);
    let items = d["items"].as_array().expect("items");
    assert_eq!(items.len(), 3);
    let by_name = |n: &str| {
        items
            .iter()
            .find(|m| m["name"] == n)
            .unwrap_or_else(|| panic!("{n} listed"))
    };
    let a = by_name("a-up");
    assert_eq!(a["status"], "up");
    assert_eq!(a["tags"], json!(["prod"]));
    assert_eq!(a["spark"].as_array().map(Vec::len), Some(48));
    assert_eq!(a["days"].as_array().map(Vec::len), Some(90));
    assert!(
        a["spark"][47].as_f64().is_some(),
        "latest bucket has a latency: {a}"
    );
    assert_eq!(a["days"][89], 100.0);
    assert_eq!(a["uptime_24h"], 100.0);
    assert!(
        a.get("config").is_none(),
        "no configs (secrets) in the overview"
    );
    let b = by_name("b-down");
    assert_eq!(b["status"], "down");
    assert_eq!(b["days"][89], 0.0);
    assert_eq!(b["spark"][47], Value::Null, "no latency of down results");
    let c = by_name("c-idle");
    assert_eq!(c["enabled"], false);
    assert_eq!(c["status"], Value::Null);
    assert!(
        c["days"]
            .as_array()
            .is_some_and(|d| d.iter().all(Value::is_null))
    );
    assert_eq!(idle["id"], c["id"]);
    // Read scope suffices; no key does not.
    s.anon(reqwest::Method::GET, "/api/v1/dashboard/monitors")
        .await
        .assert_error(401, "UNAUTHORIZED", None);
    s.stop().await;
}
both!(overview_series_cover_every_monitor: sqlite_overview_series, postgres_overview_series);

#[tokio::test]
async fn the_app_is_served_for_client_routes_with_cache_headers() {
    let s = start(None).await;
    for path in [
        "/",
        "/login",
        "/monitors/7",
        "/incidents/3",
        "/plugins",
        "/keys",
    ] {
        let resp = s.http.get(s.url(path)).send().await.expect("get");
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(
            resp.headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
            Some("no-cache"),
            "{path}"
        );
        let html = resp.text().await.expect("html");
        assert!(html.contains("<main id=\"main\""), "{path}");
    }
    let html = s.http.get(s.url("/")).send().await.expect("get");
    let html = html.text().await.expect("text");
    let js = html
        .split('"')
        .find(|p| p.starts_with("/app/") && p.ends_with("/app.js"))
        .expect("versioned app.js")
        .to_string();
    let resp = s.http.get(s.url(&js)).send().await.expect("asset");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("public, max-age=31536000, immutable")
    );
    assert!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/javascript"))
    );
    let old = s
        .http
        .get(s.url("/app/000000000000/app.js"))
        .send()
        .await
        .expect("old");
    assert_eq!(
        old.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-cache")
    );
    let missing = s
        .http
        .get(s.url("/app/x/nope.js"))
        .send()
        .await
        .expect("missing");
    assert_eq!(missing.status(), 404);
    // API routes still answer JSON envelopes, not the app.
    s.anon(reqwest::Method::GET, "/api/v1/nope")
        .await
        .assert_error(404, "NOT_FOUND", None);
    s.stop().await;
}

// ------------------------------------------------------------------ the browser

/// chromedriver for one test; killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tool(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// The browser and driver, or `None` (skip) outside CI when either is missing.
fn browser_tools() -> Option<(PathBuf, PathBuf)> {
    let chromium = tool("PHAROS_CHROMIUM", "/usr/bin/chromium");
    let driver = tool("PHAROS_CHROMEDRIVER", "/usr/bin/chromedriver");
    if chromium.exists() && driver.exists() {
        return Some((chromium, driver));
    }
    let msg = format!(
        "browser tests need {} and {} (Debian: apt-get install chromium chromium-driver)",
        chromium.display(),
        driver.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("SKIPPING the browser test: {msg}");
    None
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn spawn_driver(driver: &Path) -> Driver {
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let d = Driver { child, port };
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/status"))
            .send()
            .await
            && r.status().is_success()
        {
            return d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn browser(chromium: &Path, driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium.to_string_lossy(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                     "--disable-dev-shm-usage", "--no-first-run", "--force-prefers-reduced-motion"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("browser session")
}

fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).expect("write screenshot");
}

async fn wait_css(c: &Client, css: &str) -> Element {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
}

/// Waits until `script` (a JS expression) is truthy.
async fn wait_js(c: &Client, script: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = c
            .execute(&format!("return !!({script});"), vec![])
            .await
            .expect("script");
        if v == Value::Bool(true) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never true: {script}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn set_value(c: &Client, css: &str, value: &str) {
    let el = wait_css(c, css).await;
    el.clear().await.expect("clear");
    el.send_keys(value).await.expect("type");
}

async fn select(c: &Client, css: &str, value: &str) {
    wait_css(c, &format!("{css} option[value='{value}']"))
        .await
        .click()
        .await
        .expect("select option");
}

async fn nav(c: &Client, href: &str) {
    wait_css(c, &format!("nav a[href='{href}']"))
        .await
        .click()
        .await
        .expect("nav link");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_flows_in_headless_chromium() {
    let Some((chromium, driver_bin)) = browser_tools() else {
        return;
    };
    let s: TestServer = start(None).await;
    let target = servers::http().await;
    let driver = spawn_driver(&driver_bin).await;
    let c = browser(&chromium, &driver).await;
    flows(&c, &s, &target.addr.to_string()).await;
    let _ = c.close().await;
    drop(driver);
    s.stop().await;
}

async fn flows(c: &Client, s: &TestServer, target: &str) {
    // Log in (the app sends an unauthenticated visitor to /login).
    c.goto(&s.url("/")).await.expect("open");
    wait_css(c, "#api-key").await;
    assert!(
        c.current_url()
            .await
            .expect("url")
            .path()
            .ends_with("/login")
    );
    shot(c, "01-login").await;
    set_value(c, "#api-key", "phk_wrong_key").await;
    wait_css(c, "#login-submit")
        .await
        .click()
        .await
        .expect("submit");
    wait_js(
        c,
        "document.querySelector('.login-error').textContent.includes('not valid')",
    )
    .await;
    set_value(c, "#api-key", ADMIN).await;
    wait_css(c, "#login-submit")
        .await
        .click()
        .await
        .expect("submit");
    wait_css(c, "#monitors").await;
    // A marker that a full page load would wipe: every later step must keep it.
    c.execute("window.__noReload = 42;", vec![])
        .await
        .expect("marker");
    wait_js(
        c,
        "document.querySelector('#live-dot').dataset.state === 'on'",
    )
    .await;
    shot(c, "02-overview-empty").await;

    // Create an HTTP monitor through the form generated from the plugin's schema.
    wait_css(c, "#new-monitor")
        .await
        .click()
        .await
        .expect("new");
    wait_css(c, "#m-plugin").await;
    select(c, "#m-plugin", "http").await;
    wait_css(c, "[data-pointer='/config/url']").await;
    // Secret fields are masked.
    wait_css(
        c,
        "input[data-pointer='/config/bearer_token'][type='password']",
    )
    .await;
    set_value(c, "#m-name", "loopback web").await;
    // A server validation error lands at the field it names.
    set_value(c, "[data-pointer='/config/url']", "not a url").await;
    wait_css(c, "#save-button")
        .await
        .click()
        .await
        .expect("save");
    wait_js(
        c,
        "(() => { const i = document.querySelector(\"[data-pointer='/config/url']\"); \
         return i.getAttribute('aria-invalid') === 'true' && \
         i.closest('.field').querySelector('.field-error:not([hidden])'); })()",
    )
    .await;
    shot(c, "03-form-field-error").await;
    set_value(
        c,
        "[data-pointer='/config/url']",
        &format!("http://{target}/"),
    )
    .await;
    set_value(c, "#m-interval", "3600").await;
    // The test button runs the config once and shows the outcome before saving.
    wait_css(c, "#test-button")
        .await
        .click()
        .await
        .expect("test");
    wait_css(c, "#test-outcome [data-status='up']").await;
    wait_js(c, "!document.querySelector(\".field-error:not([hidden])\")").await;
    shot(c, "04-form-tested").await;
    wait_css(c, "#save-button")
        .await
        .click()
        .await
        .expect("save");

    // The detail page; the first result arrives live (SSE), the chart is drawn.
    wait_css(c, "#status-line").await;
    let path = c.current_url().await.expect("url").path().to_string();
    let id: i64 = path
        .trim_start_matches("/monitors/")
        .parse()
        .unwrap_or_else(|_| panic!("on a monitor page: {path}"));
    wait_css(c, "#check-now")
        .await
        .click()
        .await
        .expect("check now");
    wait_js(c, "document.querySelector('#status-line [data-status=up]')").await;
    wait_js(c, "document.querySelector('#results tr')").await;
    wait_css(c, "[data-range='1h']")
        .await
        .click()
        .await
        .expect("1 h");
    wait_js(
        c,
        "document.querySelector('#latency-chart path.line[data-series=p50_ms]')",
    )
    .await;
    wait_js(c, "document.querySelectorAll('#uptimes dd').length === 4").await;
    shot(c, "05-monitor-detail").await;

    // Back on the overview, a monitor created elsewhere turns up live, without a reload.
    nav(c, "/").await;
    wait_css(c, &format!("#monitors tr[data-id='{id}']")).await;
    let other = s
        .create(
            json!({"name": "created elsewhere", "plugin": "http", "interval_secs": 3600,
            "config": {"url": format!("http://{target}/status/500")}}),
        )
        .await;
    let other_id = other["id"].as_i64().expect("id");
    let r = s.check_now(other_id).await;
    assert_eq!(r.status, 200, "{}", r.body);
    wait_css(
        c,
        &format!("#monitors tr[data-id='{other_id}'] [data-status='down']"),
    )
    .await;
    wait_js(
        c,
        "document.querySelector(\"[data-count='down']\").textContent === '1'",
    )
    .await;
    wait_js(c, "window.__noReload === 42").await;
    shot(c, "06-overview-live").await;
    // Filters.
    set_value(c, "#filter-text", "elsewhere").await;
    wait_js(
        c,
        &format!("document.querySelector(\"tr[data-id='{id}']\").hidden"),
    )
    .await;
    set_value(c, "#filter-text", "").await;

    // Upload a plugin, review its capabilities and grant them.
    nav(c, "/plugins").await;
    wait_css(c, "#upload-form").await;
    let wasm = tempfile::Builder::new()
        .suffix(".wasm")
        .tempfile()
        .expect("temp");
    std::fs::write(wasm.path(), support::fixture("pharos_fixture_notifier")).expect("write");
    wait_css(c, "#plugin-file")
        .await
        .send_keys(&wasm.path().to_string_lossy())
        .await
        .expect("choose file");
    wait_css(c, "#upload-button")
        .await
        .click()
        .await
        .expect("upload");
    wait_css(c, "#grant-form").await;
    shot(c, "07-plugin-review").await;
    wait_css(c, "#grant-button")
        .await
        .click()
        .await
        .expect("grant");
    wait_js(c, "!document.querySelector('#grant-form')").await;
    let plugins = s.get("/api/v1/plugins?limit=500").await;
    let uploaded = plugins.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|p| p["builtin"] == false)
        .cloned()
        .expect("the uploaded plugin is listed");
    assert_eq!(uploaded["state"], "active", "{uploaded}");
    let key = format!(
        "{}@{}",
        uploaded["name"].as_str().unwrap_or(""),
        uploaded["version"].as_str().unwrap_or("")
    );
    wait_css(c, &format!("tr[data-plugin='{key}'] .ps-active")).await;
    shot(c, "08-plugins").await;

    // The other pages render.
    for (href, ready, name) in [
        ("/incidents", "main h1", "09-incidents"),
        ("/channels", "#c-plugin", "10-channels"),
        ("/maintenance", "#w-name", "11-maintenance"),
        ("/keys", "#k-name", "12-keys"),
        ("/status-pages", "#sp-slug", "15-status-pages"),
    ] {
        nav(c, href).await;
        wait_css(c, ready).await;
        wait_js(c, &format!("location.pathname === '{href}'")).await;
        shot(c, name).await;
    }
    // Dark theme, and a phone-sized overview.
    wait_css(c, "#theme")
        .await
        .click()
        .await
        .expect("theme light");
    wait_css(c, "#theme")
        .await
        .click()
        .await
        .expect("theme dark");
    wait_js(c, "document.documentElement.dataset.theme === 'dark'").await;
    nav(c, "/").await;
    wait_css(c, &format!("#monitors tr[data-id='{other_id}']")).await;
    shot(c, "13-overview-dark").await;
    c.set_window_size(390, 844).await.expect("resize");
    wait_css(c, "#monitors").await;
    shot(c, "14-overview-phone").await;
    wait_js(c, "window.__noReload === 42").await;

    // The public status page of the monitor created through the form, rendered in the browser:
    // the component under its public name with its 90-day history strip, no private name.
    let page = s
        .post(
            "/api/v1/status-pages",
            json!({"slug": "acme", "title": "Acme status", "description": "Our services"}),
        )
        .await;
    assert_eq!(page.status, 201, "{}", page.body);
    let page_id = page.body["id"].as_i64().expect("page id");
    let comp = s
        .post(
            &format!("/api/v1/status-pages/{page_id}/components"),
            json!({"monitor_id": id, "public_name": "Public API", "group": "Core"}),
        )
        .await;
    assert_eq!(comp.status, 201, "{}", comp.body);
    c.set_window_size(1280, 900).await.expect("resize");
    c.goto(&s.url("/status/acme"))
        .await
        .expect("open status page");
    wait_css(c, "#banner").await;
    wait_js(
        c,
        "[...document.querySelectorAll('.comp')].some(e => e.textContent.includes('Public API'))          && document.querySelectorAll('.comp .strip i').length >= 90",
    )
    .await;
    let leaked = c
        .execute(
            "return document.documentElement.outerHTML.includes(arguments[0]);",
            vec![json!(target)],
        )
        .await
        .expect("leak check");
    assert_eq!(leaked, json!(false), "the target URL is private");
    shot(c, "16-public-status-page").await;
    c.set_window_size(390, 844).await.expect("resize");

    // Keyboard: the skip link is the first tab stop and every control on the form is labelled.
    c.goto(&s.url("/monitors/new")).await.expect("open form");
    wait_css(c, "#m-plugin").await;
    let unlabelled = c
        .execute(
            "return [...document.querySelectorAll('input, select, textarea')]\
             .filter(e => !e.labels?.length && !e.getAttribute('aria-label')).map(e => e.id);",
            vec![],
        )
        .await
        .expect("labels");
    assert_eq!(unlabelled, json!([]), "every control has a label");
}
