//! Shields-style SVG badges: a grey label and a coloured message.

use super::escape::xml;

/// Colour of a state name (overall, component or day state).
pub fn color(state: &str) -> &'static str {
    match state {
        "operational" => "#2e9f5b",
        "degraded" => "#d4a106",
        "partial_outage" => "#ef7d1a",
        "major_outage" | "outage" => "#d93b3b",
        "maintenance" => "#3b7dd8",
        _ => "#9aa0a6",
    }
}

/// Approximate rendered width of text in 11 px Verdana.
fn text_width(s: &str) -> usize {
    s.chars()
        .map(|c| match c {
            'i' | 'l' | 'j' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' | ' ' => 4,
            'm' | 'w' | 'M' | 'W' => 10,
            c if c.is_ascii_uppercase() => 8,
            _ => 7,
        })
        .sum()
}

/// At most `max` characters, with an ellipsis when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// The badge `label | message` with the message on `color`.
pub fn render(label: &str, message: &str, color: &str) -> String {
    let label = truncate(label, 40);
    let message = truncate(message, 40);
    let lw = text_width(&label) + 12;
    let mw = text_width(&message) + 12;
    let w = lw + mw;
    let (l, m) = (xml(&label), xml(&message));
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"20\" role=\"img\" \
         aria-label=\"{l}: {m}\"><title>{l}: {m}</title>\
         <linearGradient id=\"s\" x2=\"0\" y2=\"100%\"><stop offset=\"0\" stop-color=\"#bbb\" \
         stop-opacity=\".1\"/><stop offset=\"1\" stop-opacity=\".1\"/></linearGradient>\
         <clipPath id=\"r\"><rect width=\"{w}\" height=\"20\" rx=\"3\" fill=\"#fff\"/></clipPath>\
         <g clip-path=\"url(#r)\"><rect width=\"{lw}\" height=\"20\" fill=\"#555\"/>\
         <rect x=\"{lw}\" width=\"{mw}\" height=\"20\" fill=\"{color}\"/>\
         <rect width=\"{w}\" height=\"20\" fill=\"url(#s)\"/></g>\
         <g fill=\"#fff\" text-anchor=\"middle\" \
         font-family=\"Verdana,Geneva,DejaVu Sans,sans-serif\" font-size=\"11\">\
         <text x=\"{lx}\" y=\"14\">{l}</text><text x=\"{mx}\" y=\"14\">{m}</text></g></svg>",
        lx = lw / 2,
        mx = lw + mw / 2,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badge_escapes_and_colours() {
        let svg = render("<b>&api", "Operational", color("operational"));
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.contains("&lt;b&gt;&amp;api"));
        assert!(!svg.contains("<b>"));
        assert!(svg.contains("#2e9f5b"));
        let long = render(&"x".repeat(100), "y", "#000");
        assert!(long.contains('…'));
    }
}
