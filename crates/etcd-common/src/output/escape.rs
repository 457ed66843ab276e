//! Text from input (keys, names, values of a snapshot) made safe to print in human formats: no
//! byte that a terminal would act on (escape sequences that retitle or clear it, C1 controls such
//! as U+009B CSI, carriage returns that overwrite a line) and no character that reorders text
//! (bidi overrides) reaches the terminal raw.
//!
//! The form is Go's `%q` without the quotes, so it reads as the body of a Go or Rust string:
//! `\a \b \t \n \v \f \r` for those controls, `\x1b` for other ASCII controls and DEL, `\xff` for
//! each byte that is not valid UTF-8, and `\u009b` for C1 controls and the invisible format
//! characters listed in [`needs_escape`]. When a text needs any of these, its backslashes are
//! doubled too (`\\`), so the escaped text reads back unambiguously; a text that needs none is
//! returned unchanged, byte for byte, backslashes included. JSON and raw output do not use this:
//! JSON escapes as JSON does ([`super::json`]) and raw output stays exact.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must not reach a terminal raw: every control character (C0, DEL, C1) and the
/// invisible characters that change how the text around them is shown (zero-width characters,
/// bidi marks, embeddings, overrides and isolates, line and paragraph separators, the BOM,
/// interlinear annotation marks).
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// `text` with every character that [`needs_escape`] escaped (and then its backslashes doubled);
/// unchanged when there is none.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    push_valid(&mut out, text);
    Cow::Owned(out)
}

/// `bytes` as text, escaped as [`escape`] does, with each byte that is not valid UTF-8 as `\xNN`;
/// unchanged (borrowed) when it is valid UTF-8 that needs no escape.
pub fn escape_bytes(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return escape(text);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        push_valid(&mut out, chunk.valid());
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    Cow::Owned(out)
}

/// Appends `text` escaped (the escaping form: backslashes doubled).
fn push_valid(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 && needs_escape(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_text_is_unchanged() {
        for text in [
            "",
            "/registry/pods/web/a",
            "back\\slash \"quoted\" 'single'",
            "Größe café naïve 日本語 e\u{301}",
            "tab-free, 100% printable: <>&",
        ] {
            assert!(
                matches!(escape(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
            assert!(matches!(escape_bytes(text.as_bytes()), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn controls_are_escaped_like_go_quote() {
        assert_eq!(escape("a\u{1b}]0;pwned\u{7}b"), "a\\x1b]0;pwned\\ab");
        assert_eq!(escape("x\r\ny\tz\u{8}\u{b}\u{c}"), "x\\r\\ny\\tz\\b\\v\\f");
        assert_eq!(escape("del\u{7f}"), "del\\x7f");
        assert_eq!(escape("csi\u{9b}2J"), "csi\\u009b2J");
        assert_eq!(escape("nul\0"), "nul\\x00");
        assert_eq!(escape("abc\u{202e}fed"), "abc\\u202efed");
        assert_eq!(escape("zw\u{200b}j\u{feff}"), "zw\\u200bj\\ufeff");
        // A text that needs escaping has its backslashes doubled: `\x1b` typed as four
        // characters stays distinguishable from ESC.
        assert_eq!(escape("\\x1b\u{1b}"), "\\\\x1b\\x1b");
    }

    #[test]
    fn invalid_utf8_bytes_are_hex() {
        assert_eq!(escape_bytes(b"k\xff\xfe"), "k\\xff\\xfe");
        assert_eq!(escape_bytes(b"\xc2\x9b"), "\\u009b", "valid C1");
        assert_eq!(escape_bytes(b"\x9b[2J"), "\\x9b[2J", "a lone C1 byte");
        assert_eq!(escape_bytes(b"ok\\\xe2\x82"), "ok\\\\\\xe2\\x82");
    }

    #[test]
    fn the_escaped_text_is_printable() {
        let all: Vec<u8> = (0..=255u8).collect();
        let escaped = escape_bytes(&all);
        assert!(!escaped.chars().any(needs_escape), "{escaped}");
        assert!(escaped.is_ascii(), "{escaped}");
    }
}
