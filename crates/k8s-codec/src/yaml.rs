//! YAML output in kubectl's style: block mappings with sorted keys and a 2-space indent, sequences
//! not indented under their key, strings quoted as Go's yaml.v2 emitter quotes them (checked
//! against kubectl 1.36 in tests/k8s_apiserver.rs), and literal `|` blocks for multi-line strings
//! when that is exact.

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
            let text = inline(other, 2, &out);
            out.push_str(&text);
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
                let text = inline(other, indent + 2, out);
                out.push_str(&text);
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
            let text = inline(other, indent + 2, out);
            out.push_str(&text);
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
                let text = inline(other, indent + 2, out);
                out.push_str(&text);
                out.push('\n');
            }
        }
    }
}

/// The column the next character of `out` lands in (characters since its last line break).
fn column(out: &str) -> usize {
    out.rsplit('\n')
        .next()
        .map_or(0, |line| line.chars().count())
}

/// Go's emitter folds a long flow scalar at a space once a line passes this column.
const BEST_WIDTH: usize = 80;

/// Appends `n` spaces.
fn push_indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// A scalar or empty collection on the current line of `out` (which it continues); block
/// scalars and folded long strings continue at `indent`.
fn inline(v: &Value, indent: usize, out: &str) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => string(s, indent, column(out)),
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

/// How a single-line scalar is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// As it is.
    Plain,
    /// In single quotes (`'` doubled).
    Single,
    /// In double quotes, with escapes.
    Double,
}

/// A mapping key: as a value, but never a block (a multi-line key is double-quoted).
fn scalar_key(s: &str) -> String {
    if s.contains('\n') {
        return quoted(s);
    }
    styled(s)
}

/// A string value the way kubectl (sigs.k8s.io/yaml, Go's yaml.v2 emitter) writes it: a string
/// that would read back as another type (number, bool, null, timestamp) double-quoted; a
/// multi-line string as a `|` block; otherwise plain when the emitter allows it, else in single
/// quotes, else double quotes. Where Go's choice would not read back as the same string with
/// YAML 1.1 or 1.2 parsers, the choice is stricter (see [`style`]).
fn string(s: &str, indent: usize, col: usize) -> String {
    if s.contains('\n') && !resolves_to_other_type(s) {
        if let Some(block) = literal(s, indent) {
            return block;
        }
        return folded(s, Style::Double, indent, col);
    }
    folded(s, style(s), indent, col)
}

/// A single-line scalar in its [`style`], on one line (keys are never folded).
fn styled(s: &str) -> String {
    match style(s) {
        Style::Plain => s.to_string(),
        Style::Single => format!("'{}'", s.replace('\'', "''")),
        Style::Double => quoted(s),
    }
}

/// A scalar value written as Go's emitter writes it from column `col`: at a space, once the
/// line has passed [`BEST_WIDTH`], the line is broken and continues at `indent` (a fold reads
/// back as that one space). Plain and single-quoted scalars fold only before a non-space;
/// double-quoted ones anywhere inside, escaping a following space with `\`.
fn folded(s: &str, style: Style, indent: usize, col: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let last = chars.len().saturating_sub(1);
    let mut out = String::with_capacity(s.len() + 2);
    let mut col = col;
    if style != Style::Plain {
        out.push(if style == Style::Single { '\'' } else { '"' });
        col += 1;
    }
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let next_is_space = chars.get(i + 1) == Some(&' ');
            let fold = !spaces
                && col > BEST_WIDTH
                && match style {
                    Style::Plain => !next_is_space,
                    Style::Single => i > 0 && i < last && !next_is_space,
                    Style::Double => i > 0 && i < last,
                };
            if fold {
                out.push('\n');
                push_indent(&mut out, indent);
                col = indent;
                if style == Style::Double && next_is_space {
                    out.push('\\');
                    col += 1;
                }
            } else {
                out.push(' ');
                col += 1;
            }
            spaces = true;
            continue;
        }
        spaces = false;
        let written = match style {
            Style::Plain => c.to_string(),
            Style::Single if c == '\'' => "''".to_string(),
            Style::Single => c.to_string(),
            Style::Double => escaped(c),
        };
        col += written.chars().count();
        out.push_str(&written);
    }
    if style != Style::Plain {
        out.push(if style == Style::Single { '\'' } else { '"' });
    }
    out
}

/// Go's choice for a one-line string (yaml.v2 `stringv` and `yaml_emitter_select_scalar_style`).
/// Deviations, for strings Go prints so that other parsers misread them: `=` (YAML 1.1's value
/// tag) is single-quoted, and the line separators U+0085, U+2028, U+2029 and a BOM are
/// double-quoted (escaped).
fn style(s: &str) -> Style {
    if resolves_to_other_type(s) || s.chars().any(|c| !is_printable(c) || is_special_char(c)) {
        return Style::Double;
    }
    if s.contains('\n') {
        return Style::Double;
    }
    if s == "=" || !plain_allowed(s) {
        return Style::Single;
    }
    Style::Plain
}

/// Go's `is_printable` (the emitter writes anything else escaped, in double quotes).
fn is_printable(c: char) -> bool {
    matches!(c as u32, 0x0A | 0x20..=0x7E | 0x85 | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
        && c != '\u{feff}'
}

/// Whether Go's emitter may write this one-line, printable string plain in block context
/// (`yaml_emitter_analyze_scalar`: no leading or trailing space, no indicator where it would
/// start syntax, not a document marker).
fn plain_allowed(s: &str) -> bool {
    if s.is_empty() || s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    if s.starts_with(' ') || s.ends_with(' ') {
        return false;
    }
    let chars: Vec<char> = s.chars().collect();
    let blank = |i: usize| chars.get(i).is_none_or(|c| matches!(c, ' ' | '\t' | '\n'));
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_blank = blank(i + 1);
        let indicator = if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => true,
                '?' | ':' | '-' => followed_by_blank,
                _ => false,
            }
        } else {
            match c {
                ':' => followed_by_blank,
                '#' => blank(i - 1),
                _ => false,
            }
        };
        if indicator {
            return false;
        }
    }
    true
}

/// Characters that YAML treats as line breaks or that must be escaped.
fn is_special_char(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// A `|` literal block for a multi-line string, when it reads back exactly.
fn literal(s: &str, indent: usize) -> Option<String> {
    // Go writes a string with a space before a line break or at its end double-quoted.
    if !s.contains('\n')
        || s.starts_with([' ', '\t', '\n'])
        || s.chars().any(|c| is_special_char(c) || c == '\r')
        || s.contains(" \n")
        || s.ends_with(' ')
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
        out.push_str(&escaped(c));
    }
    out.push('"');
    out
}

/// One character inside double quotes.
fn escaped(c: char) -> String {
    match c {
        '"' => "\\\"".to_string(),
        '\\' => "\\\\".to_string(),
        '\n' => "\\n".to_string(),
        '\t' => "\\t".to_string(),
        '\r' => "\\r".to_string(),
        '\0' => "\\0".to_string(),
        '\u{85}' => "\\N".to_string(),
        '\u{2028}' => "\\L".to_string(),
        '\u{2029}' => "\\P".to_string(),
        c if (c as u32) < 0x100 && is_special_char(c) => format!("\\x{:02X}", c as u32),
        c if is_special_char(c) => format!("\\u{:04X}", c as u32),
        c => c.to_string(),
    }
}

/// Whether Go's yaml.v2 resolver reads the plain string as something other than a string
/// (`resolve()`: its bool, null, float and merge words, integers in any base, floats, base-60
/// floats, timestamps); Go then double-quotes it.
fn resolves_to_other_type(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "n", "N", "no",
        "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "", "~", "null", "Null",
        "NULL", ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF", "<<",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    match s.as_bytes().first() {
        Some(b'+' | b'-' | b'.' | b'0'..=b'9') => {}
        _ => return false,
    }
    let plain = s.replace('_', "");
    go_int(&plain) || go_float(&plain) || base60_float(s) || timestamp(s)
}

/// `strconv.ParseInt(s, 0, 64)` or `ParseUint` succeeds (range ignored: a decimal too large is
/// a float below, and Go quotes both).
fn go_int(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let digits = |t: &str, radix: u32| !t.is_empty() && t.chars().all(|c| c.is_digit(radix));
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        return digits(hex, 16);
    }
    if let Some(oct) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        return digits(oct, 8);
    }
    if let Some(bin) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        return digits(bin, 2);
    }
    if body.len() > 1 && body.starts_with('0') {
        return digits(body, 8);
    }
    digits(body, 10)
}

/// yaml.v2's float pattern `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn go_float(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let all_digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => !frac.is_empty() && all_digits(frac),
        Some((int, frac)) => !int.is_empty() && all_digits(int) && all_digits(frac),
        None => !mantissa.is_empty() && all_digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exponent_ok
}

/// yaml.v2's `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
fn base60_float(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (body, frac) = match body.split_once('.') {
        Some((b, f)) => (b, Some(f)),
        None => (body, None),
    };
    if frac.is_some_and(|f| !f.chars().all(|c| c.is_ascii_digit() || c == '_')) {
        return false;
    }
    let mut parts = body.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    let head_ok = head.starts_with(|c: char| c.is_ascii_digit())
        && head.chars().all(|c| c.is_ascii_digit() || c == '_');
    let rest: Vec<&str> = parts.collect();
    head_ok
        && !rest.is_empty()
        && rest.iter().all(|p| {
            let b = p.as_bytes();
            match b {
                [d] => d.is_ascii_digit(),
                [a, d] => (b'0'..=b'5').contains(a) && d.is_ascii_digit(),
                _ => false,
            }
        })
}

/// yaml.v2's timestamp formats: `2006-1-2T15:4:5.999999999Z07:00` (`t` too), `2006-1-2
/// 15:4:5.999999999` and `2006-1-2` (field ranges not checked: Go quotes what it parses, and a
/// string that only looks like a date is quoted too, which reads back the same).
fn timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let rest = &s[5..];
    let date_end = rest.find(['T', 't', ' ']).unwrap_or(rest.len());
    let date = &rest[..date_end];
    let Some((month, day)) = date.split_once('-') else {
        return false;
    };
    let small = |t: &str| (1..=2).contains(&t.len()) && t.chars().all(|c| c.is_ascii_digit());
    if !small(month) || !small(day) {
        return false;
    }
    date_end == rest.len() || rest[date_end + 1..].contains(':')
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
    fn quoting_follows_go() {
        // Go double-quotes what would read back as another type.
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
            "2008-1-2",
            "-1",
            ".5",
            "1_000",
            "1:20",
            "0o17",
            "+1",
            "-.5",
            "017",
            "<<",
            "a\tb",
        ] {
            assert_eq!(style(s), Style::Double, "{s:?}");
        }
        // Plain is not allowed: single quotes, as Go writes them.
        for s in [
            "a: b",
            "#x",
            "- x",
            "-",
            " x",
            "x:",
            "*/5 * * * *",
            "'q'",
            "\"q\"",
            "[a]",
            "a #b",
            "---",
            "...x",
            "{",
            "?",
            "=",
        ] {
            assert_eq!(style(s), Style::Single, "{s:?}");
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
            "1.2.3",
            "10.96.0.1",
            "yEs",
            "-a",
            "?a",
            ":a",
            "héllo",
            "a'b",
        ] {
            assert_eq!(style(s), Style::Plain, "{s:?}");
        }
        assert_eq!(styled("it's: x"), "'it''s: x'");
        assert_eq!(quoted("a\"b\\c\u{1}"), "\"a\\\"b\\\\c\\x01\"");
    }

    #[test]
    fn long_strings_fold_past_column_80_as_go_does() {
        let words = "word ".repeat(20).trim_end().to_string();
        let y = to_yaml(&json!({"data": {"long": words, "tricky": format!("a: {words}")}}));
        let want = format!(
            "data:\n  long: {}\n    {}\n  tricky: 'a: {}\n    {}'\n",
            // The break comes at the first space past column 80.
            "word ".repeat(15).trim_end(),
            "word ".repeat(5).trim_end(),
            "word ".repeat(14).trim_end(),
            "word ".repeat(6).trim_end(),
        );
        assert_eq!(y, want);
        // Keys never fold; two spaces are never split; double quotes escape a leading space.
        assert_eq!(
            folded(&format!("{}  b", "x".repeat(90)), Style::Plain, 2, 0)
                .lines()
                .count(),
            1
        );
        assert_eq!(
            folded(&format!("{}  b\t", "x".repeat(90)), Style::Double, 2, 0),
            format!("\"{}\n  \\ b\\t\"", "x".repeat(90))
        );
    }

    #[test]
    fn literal_blocks() {
        assert_eq!(string("a\nb\n", 2, 0), "|\n  a\n  b");
        assert_eq!(string("a\n\nb", 2, 0), "|-\n  a\n\n  b");
        assert_eq!(string("a\n\n", 2, 0), "|+\n  a\n");
        assert_eq!(string(" a\nb", 2, 0), "\" a\\nb\"");
        assert_eq!(number(&Number::from_f64(1e21).unwrap()), "1.0e+21");
    }
}
