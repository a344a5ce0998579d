//! The HTML status page: complete without JavaScript; a small inline script re-fetches the
//! JSON every 30 s, updates the banner and component states, and reloads the page when the
//! incidents changed. Every user-supplied text is escaped.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::escape::{url, xml};
use super::model::{PublicIncident, PublicPage};

/// `2026-11-24 10:00 UTC`.
fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A `<time>` element.
fn time_el(t: DateTime<Utc>) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        when(t)
    )
}

const STYLE: &str = "\
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;\
color:#1f2328;background:#f6f7f9}main{max-width:860px;margin:0 auto;padding:24px 16px}\
header{display:flex;gap:14px;align-items:center;margin-bottom:18px}header img{max-height:48px;max-width:160px}\
h1{margin:0;font-size:1.6em}h2{font-size:1.1em;margin:26px 0 8px}.desc{margin:4px 0 0;color:#59636e}\
.banner{padding:14px 18px;border-radius:8px;color:#fff;font-weight:600;font-size:1.15em;background:#9aa0a6}\
.card{background:#fff;border:1px solid #d8dee4;border-radius:8px;padding:4px 16px;margin-top:8px}\
.comp{padding:12px 0;border-bottom:1px solid #eef0f2}.comp:last-child{border-bottom:0}\
.row{display:flex;justify-content:space-between;gap:8px}.state{font-weight:600}\
.strip{display:flex;gap:2px;margin:8px 0 4px;height:26px}.strip i{flex:1;border-radius:2px;background:#c9ced3}\
.meta{display:flex;justify-content:space-between;font-size:.8em;color:#6e7781}\
.inc,.mnt{padding:12px 0;border-bottom:1px solid #eef0f2}.inc:last-child,.mnt:last-child{border-bottom:0}\
.inc h3,.mnt h3{margin:0 0 4px;font-size:1em}.upd{margin:6px 0 0}.upd b{margin-right:6px}\
.muted{color:#6e7781;font-size:.85em}footer{margin:28px 0;color:#6e7781;font-size:.85em}\
a{color:var(--brand,#0969da)}\
.s-operational{background:#2e9f5b}.s-degraded{background:#d4a106}.s-partial_outage{background:#ef7d1a}\
.s-major_outage,.s-outage{background:#d93b3b}.s-maintenance{background:#3b7dd8}.s-unknown,.s-no_data{background:#c9ced3}\
.state.s-operational{color:#2e9f5b}.state.s-degraded{color:#b08500}.state.s-outage{color:#d93b3b}\
.state.s-maintenance{color:#3b7dd8}.state.s-unknown{color:#6e7781}.state{background:none!important}";

/// The refresh script (no user data inside; it reads the page's own JSON).
const SCRIPT: &str = "(function(){var u=location.pathname.replace(/\\/+$/,'')+'.json';\
var k=document.body.getAttribute('data-incidents');\
function key(p){return p.incidents.map(function(i){return i.id+':'+i.status+':'+i.updates.length}).join(',')}\
function tick(){fetch(u,{cache:'no-store'}).then(function(r){return r.ok?r.json():null}).then(function(p){\
if(!p)return;if(key(p)!==k){location.reload();return}\
var b=document.getElementById('banner');b.className='banner s-'+p.status;b.textContent=p.status_text;\
p.groups.forEach(function(g){g.components.forEach(function(c){\
var e=document.querySelector('[data-component=\"'+c.id+'\"] .state');\
if(e){e.className='state s-'+c.status;e.textContent=c.status_text}})});\
var t=document.getElementById('updated');if(t){t.textContent=p.generated_at}}).catch(function(){})}\
setInterval(tick,30000)})();";

/// The key the refresh script compares to decide on a reload.
fn incidents_key(incidents: &[PublicIncident]) -> String {
    incidents
        .iter()
        .map(|i| format!("{}:{}:{}", i.id, i.status, i.updates.len()))
        .collect::<Vec<_>>()
        .join(",")
}

/// The page as HTML.
pub fn render(p: &PublicPage) -> String {
    let mut h = String::with_capacity(16_384 + p.groups.len() * 8_192);
    let brand = p
        .brand_color
        .as_deref()
        .filter(|c| {
            c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|x| x.is_ascii_hexdigit())
        })
        .map(|c| format!(" style=\"--brand:{c}\""))
        .unwrap_or_default();
    let title = xml(&p.title);
    let slug = xml(&p.slug);
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} status</title>\
         <link rel=\"alternate\" type=\"application/rss+xml\" title=\"{title} incidents\" href=\"/status/{slug}/feed.rss\">\
         <style>{STYLE}</style></head><body{brand} data-incidents=\"{}\"><main><header>",
        xml(&incidents_key(&p.incidents))
    );
    if let Some(logo) = p.logo_url.as_deref().map(url).filter(|u| !u.is_empty()) {
        let _ = write!(h, "<img src=\"{logo}\" alt=\"\">");
    }
    let _ = write!(h, "<div><h1>{title}</h1>");
    if !p.description.is_empty() {
        let _ = write!(h, "<p class=\"desc\">{}</p>", xml(&p.description));
    }
    let _ = write!(
        h,
        "</div></header><div id=\"banner\" class=\"banner s-{}\" role=\"status\">{}</div>",
        p.status.as_str(),
        p.status_text
    );

    if !p.maintenance.is_empty() {
        h.push_str("<h2>Maintenance</h2><div class=\"card\">");
        for m in &p.maintenance {
            let _ = write!(
                h,
                "<div class=\"mnt\"><h3>{}{}</h3>",
                if m.active {
                    "In progress: "
                } else {
                    "Scheduled: "
                },
                xml(&m.name)
            );
            if !m.description.is_empty() {
                let _ = write!(h, "<div>{}</div>", xml(&m.description));
            }
            h.push_str("<div class=\"muted\">");
            if let Some(s) = m.starts_at {
                let _ = write!(h, "From {}", time_el(s));
            }
            if let Some(e) = m.ends_at {
                let _ = write!(h, " until {}", time_el(e));
            }
            let names: Vec<String> = m.components.iter().map(|c| xml(c)).collect();
            let _ = write!(h, " · Affects {}</div></div>", names.join(", "));
        }
        h.push_str("</div>");
    }

    for g in &p.groups {
        if g.name.is_empty() {
            h.push_str("<h2>Components</h2>");
        } else {
            let _ = write!(h, "<h2>{}</h2>", xml(&g.name));
        }
        h.push_str("<div class=\"card\">");
        for c in &g.components {
            let _ = write!(
                h,
                "<div class=\"comp\" data-component=\"{}\"><div class=\"row\"><span>{}</span>\
                 <span class=\"state s-{}\">{}</span></div><div class=\"strip\" aria-hidden=\"true\">",
                c.id,
                xml(&c.name),
                c.status.as_str(),
                c.status_text
            );
            for d in &c.history {
                let pct = d
                    .uptime_pct
                    .map(|p| format!("{p:.2}%"))
                    .unwrap_or_else(|| "no data".into());
                let _ = write!(
                    h,
                    "<i class=\"s-{}\" title=\"{} · {pct}\"></i>",
                    d.status.as_str(),
                    d.date
                );
            }
            let uptime = c
                .uptime_pct
                .map(|p| format!("{p:.2}% uptime"))
                .unwrap_or_else(|| "no data".into());
            let _ = write!(
                h,
                "</div><div class=\"meta\"><span>90 days ago</span><span>{uptime}</span><span>Today</span></div></div>"
            );
        }
        h.push_str("</div>");
    }
    if p.groups.is_empty() {
        h.push_str("<p class=\"muted\">No components yet.</p>");
    }

    h.push_str("<h2>Incidents</h2><div class=\"card\">");
    if p.incidents.is_empty() {
        h.push_str("<div class=\"inc muted\">No incidents in the last 14 days.</div>");
    }
    for i in &p.incidents {
        let _ = write!(
            h,
            "<div class=\"inc\" id=\"incident-{}\"><h3>{}{}</h3><div class=\"muted\">Started {}",
            i.id,
            xml(&i.title),
            if i.status == "open" {
                ""
            } else {
                " (resolved)"
            },
            time_el(i.started_at)
        );
        if let Some(r) = i.resolved_at {
            let _ = write!(h, " · Resolved {}", time_el(r));
        }
        h.push_str("</div>");
        for u in &i.updates {
            let _ = write!(
                h,
                "<p class=\"upd\"><b>{}</b>{} <span class=\"muted\">{}</span></p>",
                xml(&capitalise(u.status)),
                xml(&u.message),
                time_el(u.at)
            );
        }
        h.push_str("</div>");
    }
    let _ = write!(
        h,
        "</div><footer>Updated <time id=\"updated\">{}</time> · \
         <a href=\"/status/{slug}.json\">JSON</a> · <a href=\"/status/{slug}/feed.rss\">RSS</a> · \
         Powered by Pharos</footer></main><script>{SCRIPT}</script></body></html>",
        p.generated_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    h
}

/// `investigating` → `Investigating`.
fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The 404 page of an unknown slug.
pub fn not_found(slug: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found</title>\
         <style>{STYLE}</style></head><body><main><h1>Status page not found</h1>\
         <p class=\"desc\">There is no status page “{}”.</p></main></body></html>",
        xml(slug)
    )
}
