//! YAML output in kubectl's style: block mappings with sorted keys and a 2-space indent, sequences
//! not indented under their key, plain scalars unless YAML 1.1 or 1.2 would read them as something
//! else, and literal `|` blocks for multi-line strings when that is exact.

use serde_json::{Number, Value};

/// Renders a JSON value as a YAML document.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => mapping(value, 0, &mut out),
        Value::Array(a) if !a.is_empty() => sequence(a, 0, &mut out),
        // A block scalar's lines at column 0 could read as document markers (`...`, `---`): as
        // Go's emitter does, a top-level scalar's block is indented by 2.
        other => {
            out.push_str(&inline(other, 2));
            out.push('\n');
        }
    }
    out
}

/// Writes the entries of a non-empty mapping, each line at `indent`.
fn mapping(value: &Value, indent: usize, out: &mut String) {
    let Value::Object(map) = value else { return };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for key in keys {
        let v = &map[key];
        push_indent(out, indent);
        if key.len() > SIMPLE_KEY_MAX {
            explicit_entry(key, v, indent, out);
            continue;
        }
        out.push_str(&scalar_key(key));
        out.push(':');
        match v {
            Value::Object(m) if !m.is_empty() => {
                out.push('\n');
                mapping(v, indent + 2, out);
            }
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                sequence(a, indent, out);
            }
            other => {
                out.push(' ');
                out.push_str(&inline(other, indent + 2));
                out.push('\n');
            }
        }
    }
}

/// The longest key (in bytes) written as an implicit `key: value`, as Go's YAML emitter decides:
/// YAML limits implicit keys to 1024 characters, and quoting can make a key several times longer.
const SIMPLE_KEY_MAX: usize = 128;

/// Writes one entry with an explicit key, as Go's emitter does for long keys: `? key` and, on the
/// next line at the same indent, `: value` with a collection value starting on that line.
fn explicit_entry(key: &str, v: &Value, indent: usize, out: &mut String) {
    out.push_str("? ");
    out.push_str(&scalar_key(key));
    out.push('\n');
    push_indent(out, indent);
    out.push(':');
    let mut inner = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => mapping(v, indent + 2, &mut inner),
        Value::Array(a) if !a.is_empty() => sequence(a, indent + 2, &mut inner),
        other => {
            out.push(' ');
            out.push_str(&inline(other, indent + 2));
            out.push('\n');
            return;
        }
    }
    out.push(' ');
    out.push_str(&inner[indent + 2..]);
}

/// Writes a non-empty sequence, each `- ` at `indent`.
fn sequence(items: &[Value], indent: usize, out: &mut String) {
    for item in items {
        push_indent(out, indent);
        out.push('-');
        match item {
            Value::Object(m) if !m.is_empty() => {
                // The first entry shares the dash's line: render at indent+2, drop its indentation.
                let mut inner = String::new();
                mapping(item, indent + 2, &mut inner);
                out.push(' ');
                out.push_str(&inner[indent + 2..]);
            }
            Value::Array(a) if !a.is_empty() => {
                let mut inner = String::new();
                sequence(a, indent + 2, &mut inner);
                out.push(' ');
                out.push_str(&inner[indent + 2..]);
            }
            other => {
                out.push(' ');
                out.push_str(&inline(other, indent + 2));
                out.push('\n');
            }
        }
    }
}

/// Appends `n` spaces.
fn push_indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// A scalar or empty collection on the current line; block scalars continue at `indent`.
fn inline(v: &Value, indent: usize) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => string(s, indent),
        Value::Array(_) => "[]".to_string(),
        Value::Object(_) => "{}".to_string(),
    }
}

/// A number that YAML 1.1 (which needs a `.` and a signed exponent in floats) reads back equal.
fn number(n: &Number) -> String {
    let text = n.to_string();
    if n.is_f64() {
        if let Some((mantissa, exp)) = text.split_once(['e', 'E']) {
            let mantissa = if mantissa.contains('.') {
                mantissa.to_string()
            } else {
                format!("{mantissa}.0")
            };
            let exp = if exp.starts_with(['+', '-']) {
                exp.to_string()
            } else {
                format!("+{exp}")
            };
            return format!("{mantissa}e{exp}");
        }
    }
    text
}

/// A mapping key: plain when safe, double-quoted otherwise.
fn scalar_key(s: &str) -> String {
    if needs_quotes(s) {
        quoted(s)
    } else {
        s.to_string()
    }
}

/// A string value: plain, a literal block, or double-quoted.
fn string(s: &str, indent: usize) -> String {
    if !needs_quotes(s) {
        return s.to_string();
    }
    if let Some(block) = literal(s, indent) {
        return block;
    }
    quoted(s)
}

/// Characters that YAML treats as line breaks or that must be escaped.
fn is_special_char(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// A `|` literal block for a multi-line string, when it reads back exactly.
fn literal(s: &str, indent: usize) -> Option<String> {
    if !s.contains('\n')
        || s.starts_with([' ', '\t', '\n'])
        || s.chars().any(|c| is_special_char(c) || c == '\r')
    {
        return None;
    }
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    // Lines of only blanks are ambiguous (indentation or content): quote those strings instead.
    if body
        .split('\n')
        .any(|l| !l.is_empty() && l.trim_matches([' ', '\t']).is_empty())
    {
        return None;
    }
    let mut out = String::from(match trailing {
        0 => "|-",
        1 => "|",
        _ => "|+",
    });
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.extend(std::iter::repeat_n(' ', indent));
            out.push_str(line);
        }
    }
    for _ in 1..trailing {
        out.push('\n');
    }
    Some(out)
}

/// A double-quoted scalar with YAML escapes.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if (c as u32) < 0x100 && is_special_char(c) => {
                out.push_str(&format!("\\x{:02X}", c as u32))
            }
            c if is_special_char(c) => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether a plain scalar would be misread (as another type, or as YAML syntax).
fn needs_quotes(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return true;
    };
    if s.starts_with([' ', '\t']) || s.ends_with([' ', '\t']) {
        return true;
    }
    if s.chars().any(|c| c.is_control() || is_special_char(c)) {
        return true;
    }
    if "?:,[]{}#&*!|>'\"%@`".contains(first) {
        return true;
    }
    if first == '-' && (s.len() == 1 || s.starts_with("- ") || s.starts_with("---")) {
        return true;
    }
    if s.starts_with("...") || s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return true;
    }
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "y" | "yes"
            | "n"
            | "no"
            | "true"
            | "false"
            | "on"
            | "off"
            | "null"
            | "~"
            | "="
            | "<<"
            | ".inf"
            | "-.inf"
            | "+.inf"
            | ".nan"
    ) {
        return true;
    }
    looks_numeric(s)
}

/// Whether YAML 1.1 or 1.2 might read the string as a number or a timestamp (over-approximated).
fn looks_numeric(s: &str) -> bool {
    let b = s.as_bytes();
    let start = match b.first() {
        Some(b'+' | b'-' | b'.') => 1,
        _ => 0,
    };
    let Some(&c) = b.get(start) else { return false };
    if !(c.is_ascii_digit() || (c == b'.' && start == 1)) {
        return false;
    }
    if b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
        return true; // a date or timestamp
    }
    let body = &b[start..];
    if body.len() > 2 && body[0] == b'0' && b"xXoObB".contains(&body[1]) {
        return body[2..]
            .iter()
            .all(|c| c.is_ascii_hexdigit() || *c == b'_');
    }
    body.iter()
        .all(|c| c.is_ascii_digit() || b"_.:+-eE".contains(c))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn kubectl_layout() {
        let v = json!({"kind": "Pod", "metadata": {"name": "a", "labels": {}}, "spec": {"containers": [
            {"name": "c", "args": ["--port=80", "-v"], "ports": [{"containerPort": 80}]}
        ]}, "list": [[1, 2], []]});
        let y = to_yaml(&v);
        assert_eq!(
            y,
            "kind: Pod\nlist:\n- - 1\n  - 2\n- []\nmetadata:\n  labels: {}\n  name: a\nspec:\n  containers:\n  - args:\n    - --port=80\n    - -v\n    name: c\n    ports:\n    - containerPort: 80\n"
        );
    }

    #[test]
    fn quoting() {
        for s in [
            "",
            "yes",
            "No",
            "on",
            "null",
            "~",
            "123",
            "1.5",
            "0x1F",
            "1e3",
            "2008-01-01T01:01:01Z",
            "a: b",
            "#x",
            "- x",
            "-",
            " x",
            "x:",
            "*a",
            "=",
            "-1",
            ".5",
            "1_000",
            "1:20",
            "0o17",
            "0x1F",
            "+1",
            "-.5",
            "1.2.3",
        ] {
            assert!(needs_quotes(s), "{s}");
        }
        for s in [
            "nginx",
            "100m",
            "--port=80",
            "a:b",
            "a#b",
            "v1",
            "apps/v1",
            "10.0.0.1x",
            "Kind",
            "12ab",
            "3d",
        ] {
            assert!(!needs_quotes(s), "{s}");
        }
        assert_eq!(quoted("a\"b\\c\u{1}"), "\"a\\\"b\\\\c\\x01\"");
    }

    #[test]
    fn literal_blocks() {
        assert_eq!(string("a\nb\n", 2), "|\n  a\n  b");
        assert_eq!(string("a\n\nb", 2), "|-\n  a\n\n  b");
        assert_eq!(string("a\n\n", 2), "|+\n  a\n");
        assert_eq!(string(" a\nb", 2), "\" a\\nb\"");
        assert_eq!(number(&Number::from_f64(1e21).unwrap()), "1.0e+21");
    }
}
