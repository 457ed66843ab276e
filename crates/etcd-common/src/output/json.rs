//! JSON written byte for byte as Go's `encoding/json` writes it (what etcdctl prints): compact, and
//! with `<`, `>`, `&`, U+2028 and U+2029 escaped inside strings. What JSON allows raw but a
//! terminal acts on (DEL, the C1 controls such as U+009B CSI) or that reorders what it shows
//! (bidi overrides, zero-width characters: every character [`super::escape::needs_escape`]
//! flags) is escaped too (`\u009b`): the JSON decodes to the same strings and never drives a
//! terminal.

use super::escape::needs_escape;
use serde::Serialize;
use std::io;

/// A serde_json formatter that escapes like Go's HTML-safe encoder.
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                c if c >= '\u{7f}' && needs_escape(c) => {
                    writer.write_all(&fragment.as_bytes()[start..at])?;
                    write!(writer, "\\u{:04x}", c as u32)?;
                    start = at + c.len_utf8();
                    continue;
                }
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..at])?;
            writer.write_all(escaped.as_bytes())?;
            start = at + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Serializes `value` as compact Go-style JSON followed by a newline (like `fmt.Println`).
pub fn to_line<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    // Serializing plain data structs into a Vec cannot fail; fall back to an empty JSON null.
    if value.serialize(&mut ser).is_err() {
        return "null\n".into();
    }
    out.push(b'\n');
    String::from_utf8(out).unwrap_or_else(|_| "null\n".into())
}

/// Escapes DEL, the C1 controls and the other characters [`needs_escape`] flags (those JSON
/// allows raw) in JSON text written by another formatter (serde_json's pretty printer): outside
/// strings JSON has only ASCII punctuation and whitespace, so each such character is inside a
/// string, where `\uXXXX` means the same. Text without them is returned as it is.
pub fn escape_controls(text: String) -> String {
    let is_control = |c: char| c >= '\u{7f}' && needs_escape(c);
    if !text.contains(is_control) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_control(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        let v = serde_json::json!({"error": "a <b> & c\u{2028}", "n": 1});
        assert_eq!(
            to_line(&v),
            "{\"error\":\"a \\u003cb\\u003e \\u0026 c\\u2028\",\"n\":1}\n"
        );
    }

    #[test]
    fn del_and_c1_are_escaped_and_decode_back() {
        let key = "k\u{1b}[2J\u{7f}\u{9b}\u{85}é\u{202e}";
        let line = to_line(&serde_json::json!({ "key": key }));
        assert_eq!(
            line,
            "{\"key\":\"k\\u001b[2J\\u007f\\u009b\\u0085é\\u202e\"}\n"
        );
        let back: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(back["key"], key);
        let pretty = serde_json::to_string_pretty(&serde_json::json!([key])).unwrap_or_default();
        let safe = escape_controls(pretty);
        assert!(
            !safe.contains(|c: char| c.is_control() && c != '\n'),
            "{safe}"
        );
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap_or_default();
        assert_eq!(back[0], key);
    }
}
