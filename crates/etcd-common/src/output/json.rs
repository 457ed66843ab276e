//! JSON written byte for byte as Go's `encoding/json` writes it (what etcdctl prints): compact, and
//! with `<`, `>`, `&`, U+2028 and U+2029 escaped inside strings.

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
}
