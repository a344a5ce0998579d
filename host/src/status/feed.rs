//! The RSS 2.0 feed of a page's incidents (open and resolved in the last 14 days).

use std::fmt::Write as _;

use super::escape::xml;
use super::model::PublicPage;

/// The feed as XML.
pub fn render(p: &PublicPage) -> String {
    let mut x = String::with_capacity(2048 + p.incidents.len() * 1024);
    let title = xml(&p.title);
    let link = xml(&p.url);
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <rss version=\"2.0\" xmlns:atom=\"http://www.w3.org/2005/Atom\"><channel>\
         <title>{title} status</title><link>{link}</link>\
         <description>Incidents of {title}</description>\
         <atom:link href=\"{link}/feed.rss\" rel=\"self\" type=\"application/rss+xml\"/>\
         <lastBuildDate>{}</lastBuildDate><ttl>1</ttl>",
        p.generated_at.to_rfc2822()
    );
    for i in &p.incidents {
        let mut body = format!(
            "{} since {}",
            if i.status == "open" {
                "Ongoing"
            } else {
                "Resolved"
            },
            i.started_at.format("%Y-%m-%d %H:%M UTC")
        );
        if let Some(r) = i.resolved_at {
            let _ = write!(body, ", resolved {}", r.format("%Y-%m-%d %H:%M UTC"));
        }
        body.push('.');
        for u in &i.updates {
            let _ = write!(
                body,
                "\n{} ({}): {}",
                u.status,
                u.at.format("%Y-%m-%d %H:%M UTC"),
                u.message
            );
        }
        let _ = write!(
            x,
            "<item><title>{}{}</title><link>{link}#incident-{id}</link>\
             <guid isPermaLink=\"false\">{link}#incident-{id}</guid><pubDate>{}</pubDate>\
             <description>{}</description></item>",
            xml(&i.title),
            if i.status == "open" {
                ""
            } else {
                " (resolved)"
            },
            i.started_at.to_rfc2822(),
            xml(&body),
            id = i.id,
        );
    }
    x.push_str("</channel></rss>\n");
    x
}
