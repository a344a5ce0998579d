//! Public status pages on SQLite and PostgreSQL: the admin API (CRUD, validation codes), the
//! public HTML / JSON / RSS / SVG routes (content, 90-day strip from real rollups, incidents
//! with public updates, maintenance, caching, ETags) and that no private field of a monitor,
//! incident or channel reaches any public response.

mod support;

use chrono::{DateTime, Duration, Utc};
use pharos::model::{
    AlertPolicy, ChannelSpec, DEFAULT_WORKSPACE, MaintenanceSpec, MonitorSpec, MonitorType,
    NewResult, Status, Timings,
};
use pharos::store::Store;
use reqwest::Method;
use serde_json::{Value, json};
use support::api::{ADMIN, Resp, TestServer, start};
use support::db::postgres_url;

/// Strings that must never appear in a public response.
const SECRETS: &[&str] = &[
    "127.0.0.1:9",
    "secret-path",
    "SECRETNAME",
    "secret-tag",
    "hook-SECRET",
    "uncurated",
    "PRIVATE-NOTE",
    "CAUSE-SECRET",
    "X-Api-Token",
    "key:",
];

fn spec(name: &str, path: &str) -> MonitorSpec {
    MonitorSpec {
        name: name.to_string(),
        kind: MonitorType::Check,
        plugin: Some("http".to_string()),
        config: json!({"url": format!("http://127.0.0.1:9/{path}"),
                       "headers": {"X-Api-Token": "tok-secret-path"}}),
        interval_secs: 60,
        timeout_ms: 5000,
        enabled: true,
        tags: vec!["secret-tag-qq".to_string()],
        push: None,
        alert: AlertPolicy::default(),
    }
}

fn result(id: i64, at: DateTime<Utc>, status: Status) -> NewResult {
    NewResult {
        monitor_id: id,
        workspace_id: DEFAULT_WORKSPACE,
        region: "local".to_string(),
        started_at: at,
        status,
        latency_ms: 10.0,
        message: format!(
            "CAUSE-SECRET {} at http://127.0.0.1:9/secret-path",
            status.as_str()
        ),
        timings: Timings::default(),
        metrics: vec![],
        details: None,
        error_cause: None,
        ping: false,
    }
}

async fn call(s: &TestServer, method: Method, path: &str, body: Option<Value>) -> Resp {
    s.call(Some(ADMIN), method, path, body).await
}

/// GET without a key; the raw text body.
async fn public(s: &TestServer, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let resp = s.http.get(s.url(path)).send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.expect("body"))
}

#[track_caller]
fn assert_no_leak(what: &str, body: &str) {
    for s in SECRETS {
        assert!(!body.contains(s), "{what} leaks `{s}`:\n{body}");
    }
}

#[tokio::test]
async fn status_pages_sqlite() {
    let s = start(None).await;
    scenario(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn status_pages_postgres() {
    let Some(url) = postgres_url().await else {
        return;
    };
    let s = start(Some(url)).await;
    scenario(&s).await;
    s.stop().await;
}

async fn scenario(s: &TestServer) {
    let store: Store = s.server.as_ref().expect("server").app().store.clone();
    let m1 = store
        .create_monitor(
            DEFAULT_WORKSPACE,
            &spec("db-SECRETNAME-1", "secret-path-a"),
            None,
        )
        .await
        .expect("m1")
        .id;
    let m2 = store
        .create_monitor(
            DEFAULT_WORKSPACE,
            &spec("web-SECRETNAME-2", "secret-path-b"),
            None,
        )
        .await
        .expect("m2")
        .id;
    let _m3 = store
        .create_monitor(
            DEFAULT_WORKSPACE,
            &spec("uncurated-SECRETNAME", "secret-path-c"),
            None,
        )
        .await
        .expect("m3")
        .id;
    store
        .create_channel(
            DEFAULT_WORKSPACE,
            &ChannelSpec {
                name: "ops".into(),
                plugin: "webhook".into(),
                config: json!({"url": "http://127.0.0.1:9/hook-SECRET-CHANNEL"}),
                enabled: true,
                is_default: true,
                tags: vec![],
                storm_limit: 0,
                storm_window_secs: 300,
            },
        )
        .await
        .expect("channel");

    // --- admin API: pages ---
    let r = s.anon(Method::GET, "/api/v1/status-pages").await;
    r.assert_error(401, "UNAUTHORIZED", None);
    let page = json!({"slug": "acme", "title": "Acme <Status>", "description": "desc & more",
                      "brand_color": "#AABBCC", "logo_url": "https://cdn.example/logo.png"});
    let r = call(s, Method::POST, "/api/v1/status-pages", Some(page.clone())).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_i64().expect("id");
    assert_eq!(r.body["brand_color"], "#aabbcc");
    assert_eq!(r.body["public"], true);
    assert!(
        r.body["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/status/acme"))
    );
    assert_eq!(
        r.header("location"),
        Some(format!("/api/v1/status-pages/{id}").as_str())
    );

    let r = call(s, Method::POST, "/api/v1/status-pages", Some(page.clone())).await;
    r.assert_error(409, "STATUS_PAGE_SLUG_TAKEN", Some("/slug"));
    for (body, field) in [
        (json!({"slug": "Bad Slug", "title": "x"}), "/slug"),
        (json!({"slug": "a".repeat(65), "title": "x"}), "/slug"),
        (json!({"slug": "ok", "title": ""}), "/title"),
        (
            json!({"slug": "ok", "title": "x", "brand_color": "red"}),
            "/brand_color",
        ),
        (
            json!({"slug": "ok", "title": "x", "brand_color": "#12345g"}),
            "/brand_color",
        ),
        (
            json!({"slug": "ok", "title": "x", "logo_url": "javascript:alert(1)"}),
            "/logo_url",
        ),
    ] {
        let r = call(s, Method::POST, "/api/v1/status-pages", Some(body)).await;
        r.assert_error(400, "VALIDATION_FAILED", Some(field));
    }
    let r = call(
        s,
        Method::POST,
        "/api/v1/status-pages",
        Some(json!({"slug": "other", "title": "Other"})),
    )
    .await;
    assert_eq!(r.status, 201);
    let other = r.body["id"].as_i64().expect("id");
    let r = call(
        s,
        Method::PATCH,
        &format!("/api/v1/status-pages/{other}"),
        Some(json!({"slug": "acme"})),
    )
    .await;
    r.assert_error(409, "STATUS_PAGE_SLUG_TAKEN", Some("/slug"));
    let r = call(
        s,
        Method::PATCH,
        &format!("/api/v1/status-pages/{other}"),
        Some(json!({"description": "changed"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["description"], "changed");
    assert_eq!(r.body["slug"], "other");
    let r = call(s, Method::GET, "/api/v1/status-pages", None).await;
    assert_eq!(r.body["total"], 2);
    let r = call(s, Method::GET, "/api/v1/status-pages/999999", None).await;
    r.assert_error(404, "STATUS_PAGE_NOT_FOUND", None);

    // --- components ---
    let comps = format!("/api/v1/status-pages/{id}/components");
    let r = call(
        s,
        Method::POST,
        &comps,
        Some(json!({"monitor_id": m1, "public_name": "API", "group": "Core"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["order"], 0);
    let r = call(
        s,
        Method::POST,
        &comps,
        Some(json!({"monitor_id": 999999, "public_name": "X"})),
    )
    .await;
    r.assert_error(400, "MONITOR_NOT_FOUND", Some("/monitor_id"));
    let r = call(
        s,
        Method::POST,
        &comps,
        Some(json!({"monitor_id": m1, "public_name": "Again"})),
    )
    .await;
    r.assert_error(400, "VALIDATION_FAILED", Some("/monitor_id"));
    let r = call(
        s,
        Method::POST,
        &comps,
        Some(json!({"monitor_id": m1, "public_name": ""})),
    )
    .await;
    r.assert_error(400, "VALIDATION_FAILED", Some("/public_name"));
    let r = call(
        s,
        Method::PUT,
        &comps,
        Some(json!({"components": [
        {"monitor_id": m1, "public_name": "API", "group": "Core"},
        {"monitor_id": m1, "public_name": "Dup"}]})),
    )
    .await;
    r.assert_error(400, "VALIDATION_FAILED", Some("/components/1/monitor_id"));
    let r = call(
        s,
        Method::PUT,
        &comps,
        Some(json!({"components": [
        {"monitor_id": m1, "public_name": "API", "group": "Core"},
        {"monitor_id": 424242, "public_name": "Nope"}]})),
    )
    .await;
    r.assert_error(400, "MONITOR_NOT_FOUND", Some("/components/1/monitor_id"));
    let r = call(
        s,
        Method::PUT,
        &comps,
        Some(json!({"components": [
        {"monitor_id": m1, "public_name": "API", "group": "Core"},
        {"monitor_id": m2, "public_name": "Website <main>", "group": "Web"}]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let items = r.body["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 2);
    let c1 = items[0]["id"].as_i64().expect("component id");
    let c2 = items[1]["id"].as_i64().expect("component id");
    let r = call(s, Method::DELETE, &format!("{comps}/999999"), None).await;
    r.assert_error(404, "STATUS_PAGE_COMPONENT_NOT_FOUND", None);
    let r = call(s, Method::GET, &comps, None).await;
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(2));

    // --- results: five days ago all up, three days ago an outage (opens and resolves an
    // incident of m1), now m2 down (open incident) ---
    let now = Utc::now();
    let d5 = now - Duration::days(5);
    let d3 = now - Duration::days(3);
    let mut batch: Vec<NewResult> = (0..10)
        .map(|i| result(m1, d5 + Duration::minutes(i), Status::Up))
        .collect();
    store.insert_results(&batch).await.expect("insert");
    batch = (0..3)
        .map(|i| result(m1, d3 + Duration::minutes(i), Status::Down))
        .collect();
    store.insert_results(&batch).await.expect("insert");
    batch = (3..10)
        .map(|i| result(m1, d3 + Duration::minutes(i), Status::Up))
        .collect();
    store.insert_results(&batch).await.expect("insert");
    store
        .insert_results(&[result(m1, now - Duration::minutes(5), Status::Up)])
        .await
        .expect("insert");
    batch = (2..=4)
        .rev()
        .map(|i| result(m2, now - Duration::minutes(i), Status::Down))
        .collect();
    store.insert_results(&batch).await.expect("insert");
    store
        .rollup(now - Duration::minutes(1))
        .await
        .expect("rollup");

    let r = call(
        s,
        Method::GET,
        &format!("/api/v1/incidents?monitor_id={m2}"),
        None,
    )
    .await;
    let incident = r.body["items"][0]["id"].as_i64().expect("m2 incident");
    let r = call(
        s,
        Method::POST,
        &format!("/api/v1/incidents/{incident}/updates"),
        Some(json!({"status": "investigating", "message": "We are <looking> into it"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["public"], true);
    let r = call(
        s,
        Method::POST,
        &format!("/api/v1/incidents/{incident}/updates"),
        Some(json!({"status": "identified", "message": "PRIVATE-NOTE db", "public": false})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = call(
        s,
        Method::POST,
        &format!("/api/v1/incidents/{incident}/updates"),
        Some(json!({"status": "bogus", "message": "x"})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = call(
        s,
        Method::POST,
        "/api/v1/incidents/999999/updates",
        Some(json!({"status": "update", "message": "x"})),
    )
    .await;
    r.assert_error(404, "INCIDENT_NOT_FOUND", None);
    let r = call(
        s,
        Method::GET,
        &format!("/api/v1/incidents/{incident}/updates"),
        None,
    )
    .await;
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(2));

    store
        .create_maintenance_window(
            DEFAULT_WORKSPACE,
            &MaintenanceSpec {
                name: "DB upgrade".into(),
                description: "Planned <work>".into(),
                starts_at: Some(now + Duration::days(2)),
                ends_at: Some(now + Duration::days(2) + Duration::hours(1)),
                cron: None,
                duration_secs: None,
                timezone: "UTC".into(),
                monitor_ids: vec![m1],
                tags: vec![],
                enabled: true,
            },
        )
        .await
        .expect("window");

    // --- public JSON ---
    let (status, headers, text) = public(s, "/status/acme.json").await;
    assert_eq!(status, 200, "{text}");
    assert_no_leak("JSON", &text);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("application/json")
    );
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap_or("")
            .starts_with("public, max-age=")
    );
    let p: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(p["status"], "partial_outage", "{p}");
    assert_eq!(p["title"], "Acme <Status>");
    let groups = p["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["name"], "Core");
    assert_eq!(groups[1]["name"], "Web");
    let api = &groups[0]["components"][0];
    assert_eq!(api["name"], "API");
    assert_eq!(api["status"], "operational");
    assert_eq!(groups[1]["components"][0]["status"], "outage");
    let history = api["history"].as_array().expect("history");
    assert_eq!(history.len(), 90);
    let day = |t: DateTime<Utc>| {
        history
            .iter()
            .find(|d| d["date"] == t.date_naive().to_string())
            .unwrap_or_else(|| panic!("day {t} in the strip"))
            .clone()
    };
    assert_eq!(day(d5)["status"], "operational");
    assert_eq!(day(d5)["uptime_pct"], 100.0);
    assert_eq!(day(d3)["status"], "major_outage", "3 of 10 down");
    assert_eq!(day(d3)["uptime_pct"], 70.0);
    assert_eq!(history[0]["status"], "no_data");
    let incidents = p["incidents"].as_array().expect("incidents");
    assert_eq!(incidents.len(), 2, "{p}");
    assert_eq!(incidents[0]["status"], "open");
    assert_eq!(incidents[0]["title"], "Outage: Website <main>");
    assert_eq!(incidents[0]["updates"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        incidents[0]["updates"][0]["message"],
        "We are <looking> into it"
    );
    assert_eq!(incidents[1]["status"], "resolved");
    let maintenance = p["maintenance"].as_array().expect("maintenance");
    assert_eq!(maintenance.len(), 1);
    assert_eq!(maintenance[0]["active"], false);
    assert_eq!(maintenance[0]["components"], json!(["API"]));

    // --- public HTML, cached ---
    let (status, headers, html) = public(s, "/status/acme").await;
    assert_eq!(status, 200);
    assert_eq!(
        headers["x-pharos-cache"], "hit",
        "built by the JSON request"
    );
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html")
    );
    assert_no_leak("HTML", &html);
    for needle in [
        "Acme &lt;Status&gt;",
        "desc &amp; more",
        "Partial outage",
        "Website &lt;main&gt;",
        "We are &lt;looking&gt; into it",
        "Scheduled: DB upgrade",
        "Planned &lt;work&gt;",
        "--brand:#aabbcc",
        "https://cdn.example/logo.png",
        "<script>",
    ] {
        assert!(html.contains(needle), "HTML lacks {needle}");
    }
    assert!(!html.contains("<main>W") && !html.contains("<looking>"));
    let etag = headers["etag"].to_str().expect("etag").to_string();
    let resp = s
        .http
        .get(s.url("/status/acme"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("304");
    assert_eq!(resp.status().as_u16(), 304);

    // Cache: a page edit invalidates, the next request is a miss, the one after a hit.
    let r = call(
        s,
        Method::PATCH,
        &format!("/api/v1/status-pages/{id}"),
        Some(json!({"title": "Acme Cloud"})),
    )
    .await;
    assert_eq!(r.status, 200);
    let (_, h1, body1) = public(s, "/status/acme").await;
    let (_, h2, body2) = public(s, "/status/acme").await;
    assert_eq!(h1["x-pharos-cache"], "miss");
    assert_eq!(h2["x-pharos-cache"], "hit");
    assert!(body1.contains("Acme Cloud"));
    assert_eq!(body1, body2);

    // --- RSS ---
    let (status, headers, rss) = public(s, "/status/acme/feed.rss").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("application/rss+xml")
    );
    assert_no_leak("RSS", &rss);
    let doc = roxmltree::Document::parse(&rss).expect("RSS is XML");
    assert_eq!(doc.root_element().tag_name().name(), "rss");
    assert_eq!(doc.root_element().attribute("version"), Some("2.0"));
    let items: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("item"))
        .collect();
    assert_eq!(items.len(), 2);
    let first_title = items[0]
        .children()
        .find(|n| n.has_tag_name("title"))
        .and_then(|n| n.text());
    assert_eq!(first_title, Some("Outage: Website <main>"));

    // --- badges ---
    let (status, headers, svg) = public(s, "/status/acme/badge.svg").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "image/svg+xml");
    assert_no_leak("badge", &svg);
    let doc = roxmltree::Document::parse(&svg).expect("badge is XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert_eq!(
        doc.root_element().tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    assert!(svg.contains("Partial outage"));
    let (status, _, svg) = public(s, &format!("/status/acme/components/{c2}/badge.svg")).await;
    assert_eq!(status, 200);
    assert_no_leak("component badge", &svg);
    roxmltree::Document::parse(&svg).expect("component badge is XML");
    assert!(svg.contains("Website &lt;main&gt;") && svg.contains("Outage"));
    let (status, _, body) = public(s, "/status/acme/components/999999/badge.svg").await;
    assert_eq!(status, 404);
    assert!(body.contains("STATUS_PAGE_COMPONENT_NOT_FOUND"));

    // --- unknown and hidden pages ---
    let (status, headers, body) = public(s, "/status/nope").await;
    assert_eq!(status, 404);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html")
    );
    assert!(body.contains("not found"));
    let r = s.anon(Method::GET, "/status/nope.json").await;
    r.assert_error(404, "STATUS_PAGE_NOT_FOUND", None);
    let r = s.anon(Method::GET, "/status/nope/feed.rss").await;
    r.assert_error(404, "STATUS_PAGE_NOT_FOUND", None);
    let r = call(
        s,
        Method::PATCH,
        &format!("/api/v1/status-pages/{id}"),
        Some(json!({"public": false})),
    )
    .await;
    assert_eq!(r.status, 200);
    let (status, _, _) = public(s, "/status/acme").await;
    assert_eq!(status, 404, "a hidden page is not served");

    // --- deleting a monitor removes its component; deleting the page removes it all ---
    let r = call(s, Method::DELETE, &format!("/api/v1/monitors/{m2}"), None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = call(s, Method::GET, &comps, None).await;
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1));
    let r = call(s, Method::DELETE, &format!("{comps}/{c1}"), None).await;
    assert_eq!(r.status, 204);
    let r = call(
        s,
        Method::DELETE,
        &format!("/api/v1/status-pages/{id}"),
        None,
    )
    .await;
    assert_eq!(r.status, 204);
    let r = call(s, Method::GET, &format!("/api/v1/status-pages/{id}"), None).await;
    r.assert_error(404, "STATUS_PAGE_NOT_FOUND", None);
}
