//! The HTML alternative of an alert email: a colour bar by severity, the title, the body, the
//! facts of the event as a table, and a button to the incident, monitor or dashboard page.
//! Every value from the event is escaped; only `http(s)` links become buttons. Inline styles
//! only, because mail clients ignore style sheets.

use pharos_sdk::notify::{Notification, escape_html, render};

/// `s` escaped for HTML.
fn esc(s: &str) -> String {
    escape_html(s)
}

/// The link of the event when it is an `http(s)` URL.
fn safe_link(n: &Notification) -> Option<&str> {
    n.event.link().filter(|l| {
        let lower = l.to_ascii_lowercase();
        lower.starts_with("https://") || lower.starts_with("http://")
    })
}

/// The HTML document for `n`.
pub fn render(n: &Notification) -> String {
    let e = &n.event;
    let color = e.color_hex();
    let title = esc(&n.display_title());
    let mut out = String::with_capacity(2048);
    out.push_str("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
    out.push_str(&title);
    out.push_str("</title></head>\n");
    out.push_str(
        "<body style=\"margin:0;padding:16px;font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#1f2328;\">\n",
    );
    out.push_str(&format!(
        "<div style=\"max-width:640px;border-left:6px solid {color};padding:4px 16px;\">\n"
    ));
    if n.test {
        out.push_str(
            "<p style=\"margin:8px 0;padding:6px 10px;background:#fff8c5;border-radius:4px;\"><strong>Test alert</strong> &mdash; nothing is wrong; this message checks the channel.</p>\n",
        );
    }
    out.push_str(&format!("<h2 style=\"margin:8px 0;\">{title}</h2>\n"));
    let body = n.body.trim();
    if !body.is_empty() {
        out.push_str(&format!(
            "<p style=\"margin:0 0 12px;white-space:pre-wrap;\">{}</p>\n",
            esc(body)
        ));
    }
    let facts = render::facts(e);
    if !facts.is_empty() {
        out.push_str("<table cellpadding=\"4\" style=\"border-collapse:collapse;font-size:14px;margin:0 0 12px;\">\n");
        for (label, value) in facts {
            out.push_str(&format!(
                "<tr><th align=\"left\" style=\"color:#57606a;font-weight:normal;padding-right:12px;\">{}</th><td>{}</td></tr>\n",
                esc(label),
                esc(&value)
            ));
        }
        out.push_str("</table>\n");
    }
    if let Some(link) = safe_link(n) {
        out.push_str(&format!(
            "<p style=\"margin:0 0 12px;\"><a href=\"{}\" style=\"display:inline-block;padding:8px 14px;background:{color};color:#ffffff;text-decoration:none;border-radius:4px;\">{}</a></p>\n",
            esc(link),
            esc(render::link_label(e))
        ));
    }
    out.push_str(
        "</div>\n<p style=\"color:#57606a;font-size:12px;\">Sent by Pharos</p>\n</body></html>\n",
    );
    out
}
