//! Escaping of user text for HTML, XML (RSS, SVG) and inline JSON.

/// Escapes text for HTML/XML element content and quoted attributes; drops characters XML 1.0
/// cannot carry (C0 controls other than tab, newline and carriage return; U+FFFE, U+FFFF).
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// A URL safe to put in an `href`/`src`: only `http(s)` URLs, escaped; anything else empty.
pub fn url(s: &str) -> String {
    let lower = s.trim().to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        xml(s.trim())
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_controls() {
        assert_eq!(
            xml("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(xml("a\u{0}b\u{8}c\nd\u{FFFF}"), "abc\nd");
        assert_eq!(url("javascript:alert(1)"), "");
        assert_eq!(
            url("https://x.example/a?b=1&c=\"2\""),
            "https://x.example/a?b=1&amp;c=&quot;2&quot;"
        );
    }
}
