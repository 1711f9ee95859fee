//! Text a module hands the host (log lines, error messages) is hostile: it is cut to a size
//! and stripped of control characters before it reaches a log, a dead letter or a watcher.

use std::borrow::Cow;

/// `text` cut to at most `max` bytes (on a character boundary), saying how long it was.
pub(crate) fn cut(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [cut: {} bytes in all]", &text[..end], text.len()).into()
}

/// `text` with control characters (newlines, escape sequences) written as escapes, so a
/// module cannot start a forged log line or drive the operator's terminal. Tabs stay.
pub(crate) fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// A module's text made safe to log: escaped, then cut to `max` bytes.
pub(crate) fn module_text(text: &str, max: usize) -> String {
    cut(&escape_controls(text), max).into_owned()
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
        assert_eq!(escape_controls("tab\tkept"), "tab\tkept");
        assert!(matches!(escape_controls("plain"), Cow::Borrowed(_)));
    }
}
