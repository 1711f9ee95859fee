//! Text a module hands the host (log lines, error messages, names it asks for) is hostile:
//! it is cut to a size and stripped of control characters before it reaches a log, a dead
//! letter, an error message or a watcher.

use std::borrow::Cow;

/// `text` cut to at most `max` bytes (on a character boundary), saying how long it was.
pub fn cut(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    format!(
        "{}… [cut: {} bytes in all]",
        cut_plain(text, max),
        text.len()
    )
    .into()
}

/// Whether `c` could break a log line or mislead its reader: control characters (newlines,
/// escape sequences) but tab, line and paragraph separators, and bidirectional overrides.
fn is_hazard(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// `text` with hazardous characters written as escapes, so a module cannot start a forged
/// log line, reorder what the operator reads, or drive the operator's terminal.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hazard) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_hazard(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// A module's text made safe to log: cut, escaped, then cut again to `max` bytes (cutting
/// first keeps the work and memory bounded whatever the module sent).
pub fn module_text(text: &str, max: usize) -> String {
    let escaped = escape_controls(cut_plain(text, max));
    if text.len() <= max && escaped.len() <= max {
        return escaped.into_owned();
    }
    format!(
        "{}… [cut: {} bytes in all]",
        cut_plain(&escaped, max),
        text.len()
    )
}

/// `text` cut to `max` bytes on a character boundary, without a note.
fn cut_plain(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_on_a_char_boundary() {
        let line = "é".repeat(100);
        let short = cut(&line, 51);
        assert!(short.starts_with(&"é".repeat(25)));
        assert!(short.ends_with(&format!("[cut: {} bytes in all]", line.len())));
        assert_eq!(cut("short", 51), "short");
    }

    #[test]
    fn control_characters_cannot_forge_lines_or_colours() {
        assert_eq!(
            escape_controls("ok\n2026-01-01 ERROR nexum: forged\u{1b}[31m"),
            "ok\\n2026-01-01 ERROR nexum: forged\\u{1b}[31m"
        );
        assert_eq!(
            escape_controls("a\u{202e}b\u{2028}"),
            "a\\u{202e}b\\u{2028}"
        );
        assert_eq!(escape_controls("tab\tkept"), "tab\tkept");
        assert!(matches!(escape_controls("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn module_text_is_bounded_whatever_it_holds() {
        let hostile = "\u{1}".repeat(1_000_000);
        let shown = module_text(&hostile, 100);
        assert!(shown.len() < 160, "{}", shown.len());
        assert!(shown.ends_with("[cut: 1000000 bytes in all]"), "{shown}");
        assert_eq!(module_text("fine", 100), "fine");
        assert_eq!(module_text("a\nb", 100), "a\\nb");
    }

    /// The JavaScript and Python templates' fake hosts write log lines the same way; their
    /// tests (`templates/*/test*/`) expect these very lines.
    #[test]
    fn module_text_as_the_fake_hosts_mirror_it() {
        assert_eq!(
            module_text("a\nforged\u{1b}[31m line", 16),
            "a\\nforged\\u{1b}[… [cut: 18 bytes in all]"
        );
        assert_eq!(
            module_text(&"é".repeat(10), 16),
            format!("{}… [cut: 20 bytes in all]", "é".repeat(8))
        );
        assert_eq!(module_text("short\tline", 16), "short\tline");
    }
}
