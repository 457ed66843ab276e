//! Go's string encodings that show up in etcd's bytes and messages: `encoding/json` string
//! escaping (what etcd's member JSON and v2 store hold) and `strconv.Quote` (what `%q` prints in
//! etcdutl's error messages). Byte-exact output needs both.

use std::fmt::Write as _;

/// Lower-case hex digits, as Go's JSON encoder uses them.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string literal (with the quotes) the way Go's `encoding/json` writes it
/// with its default HTML escaping: `"` and `\` backslash-escaped; `\n`, `\r`, `\t` short; every
/// other control character, `<`, `>` and `&` as `\u00XX`; U+2028 and U+2029 as `\u2028`/`\u2029`.
///
/// etcd 3.4 and 3.5.1 were built with Go < 1.22, which writes `\b` and `\f` as `\u0008` and
/// `\u000c`; so does this.
pub fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{0}'..='\u{1f}' => {
                let b = c as u32 as u8;
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `s` as a JSON string literal; see [`push_json_string`].
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_string(&mut out, s);
    out
}

/// `s` quoted like Go's `strconv.Quote` (`%q`): double quotes, `"` and `\` escaped, the usual
/// single-letter escapes, other ASCII control bytes as `\xNN`, and non-printable non-ASCII
/// characters as `\uNNNN`/`\UNNNNNNNN`. (Go's printability table is approximated by Rust's
/// `char::is_control`; the URLs and names etcd quotes are ASCII in practice.)
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if c < ' ' || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() && (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A string slice formatted like Go's `%q` of a `[]string`: `["a" "b"]`.
pub fn quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_like_go() {
        assert_eq!(json_string("a<b>&c"), r#""a\u003cb\u003e\u0026c""#);
        assert_eq!(json_string("q\"b\\"), r#""q\"b\\""#);
        assert_eq!(
            json_string("\n\r\t\u{8}\u{c}\u{1}"),
            r#""\n\r\t\u0008\u000c\u0001""#
        );
        assert_eq!(
            json_string("\u{2028}\u{2029}é\u{7f}"),
            "\"\\u2028\\u2029é\u{7f}\""
        );
    }

    #[test]
    fn quote_like_go() {
        assert_eq!(quote("http://a:1"), r#""http://a:1""#);
        assert_eq!(quote("a\"b\\\n\u{1}\u{7f}"), r#""a\"b\\\n\x01\x7f""#);
        assert_eq!(
            quote_list(&["a".to_string(), "b".to_string()]),
            r#"["a" "b"]"#
        );
        assert_eq!(quote_list(&[]), "[]");
    }
}
