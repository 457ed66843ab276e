//! Text forms of the Go types with their own JSON mapping: RFC 3339 times, Go durations, base64.
//!
//! These follow Go's `time` and `encoding/base64` packages exactly where Kubernetes relies on them;
//! the calendar is chrono's, the text forms are written out here.

use chrono::{DateTime, Datelike, NaiveDate, Timelike};

/// Formats Unix seconds (and nanoseconds, when `micros`) like Go's RFC 3339 in UTC:
/// `2006-01-02T15:04:05Z`, or with `.000000` for meta.v1.MicroTime. None outside years 0..=9999.
pub fn format_time(seconds: i64, nanos: i32, micros: bool) -> Option<String> {
    let t = DateTime::from_timestamp(seconds, 0)?;
    if !(0..=9999).contains(&t.year()) {
        return None;
    }
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if micros {
        out.push_str(&format!(".{:06}", nanos.clamp(0, 999_999_999) / 1000));
    }
    out.push('Z');
    Some(out)
}

/// Parses RFC 3339 (any offset, optional fraction) to Unix (seconds, nanoseconds), as Go does.
pub fn parse_time(text: &str) -> Option<(i64, i32)> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = b.get(r)?;
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = b.get(start..i)?;
        if frac.is_empty() || frac.len() > 9 {
            return None;
        }
        nanos = num(start..i)? * 10_i64.pow(9 - frac.len() as u32);
    }
    let offset = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let o = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    // None for a day the month does not have (2008-02-30).
    let day = NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, mo as u32, d as u32)?;
    let midnight = day.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
    Some((midnight + h * 3600 + mi * 60 + s - offset, nanos as i32))
}

/// Formats nanoseconds like Go's `time.Duration.String`: `1h2m3.5s`, `150ms`, `0s`.
pub fn format_duration(nanos: i64) -> String {
    let neg = nanos < 0;
    let mut u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        // Sub-second: one unit with a fraction.
        let (unit, scale) = match u {
            0 => return "0s".to_string(),
            1..=999 => ("ns", 1),
            1_000..=999_999 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        out.push_str(&fraction(u, scale));
        out.push_str(unit);
    } else {
        let h = u / 3_600_000_000_000;
        u %= 3_600_000_000_000;
        let m = u / 60_000_000_000;
        u %= 60_000_000_000;
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&fraction(u, 1_000_000_000));
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// `v / scale` with the fraction's trailing zeros removed, as Go prints durations.
fn fraction(v: u64, scale: u64) -> String {
    let whole = v / scale;
    let rem = v % scale;
    if rem == 0 {
        return whole.to_string();
    }
    let width = scale.to_string().len() - 1;
    let frac = format!("{rem:0width$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Parses a Go duration string (`1h2m3.5s`, `-1.5ms`, `0`) to nanoseconds, like `time.ParseDuration`.
pub fn parse_duration(text: &str) -> Option<i64> {
    let (neg, mut s) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    let mut exact: i128 = 0;
    while !s.is_empty() {
        let n = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, rest) = s.split_at(n);
        if number.is_empty() || number == "." {
            return None;
        }
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let (unit, rest) = rest.split_at(u);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        let w: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        exact = exact.checked_add(w.checked_mul(scale)?)?;
        if !frac.is_empty() {
            let f: f64 = format!("0.{frac}").parse().ok()?;
            total += f * scale as f64;
        }
        s = rest;
    }
    let v = exact + total as i128;
    let v = if neg { -v } else { v };
    i64::try_from(v).ok()
}

/// Standard base64 alphabet (Go's `base64.StdEncoding`, used for `[]byte` in JSON).
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes bytes as padded standard base64.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes padded standard base64 (Go ignores `\r` and `\n`; so does this). None when invalid.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let clean: Vec<u8> = text.bytes().filter(|&c| c != b'\r' && c != b'\n').collect();
    if !clean.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    let quads = clean.len() / 4;
    for (q, chunk) in clean.chunks(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && q + 1 != quads) {
            return None;
        }
        let mut n: u32 = 0;
        for &c in &chunk[..4 - pad] {
            let v = B64.iter().position(|&a| a == c)? as u32;
            n = (n << 6) | v;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        // Go's strict decoding rejects non-zero bits in the padding.
        let kept = 3 - pad;
        if bytes[kept..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&bytes[..kept]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]
    use super::*;

    #[test]
    fn times() {
        assert_eq!(format_time(0, 0, false).unwrap(), "1970-01-01T00:00:00Z");
        let (s, n) = parse_time("2008-01-01T01:01:01Z").unwrap();
        assert_eq!(format_time(s, n, false).unwrap(), "2008-01-01T01:01:01Z");
        let (s, n) = parse_time("2008-01-01T02:01:01.123456+01:00").unwrap();
        assert_eq!(
            format_time(s, n, true).unwrap(),
            "2008-01-01T01:01:01.123456Z"
        );
        assert_eq!(parse_time("2008-02-30T01:01:01Z"), None);
        assert_eq!(parse_time("2008-01-01 01:01:01Z"), None);
        assert_eq!(
            format_time(-62_135_596_800, 0, false).unwrap(),
            "0001-01-01T00:00:00Z"
        );
        // The edges of the years Go's RFC 3339 writes, and leap days.
        let last = 253_402_300_799;
        assert_eq!(format_time(last, 0, false).unwrap(), "9999-12-31T23:59:59Z");
        assert_eq!(format_time(last + 1, 0, false), None);
        let first = -62_167_219_200;
        assert_eq!(
            format_time(first, 0, false).unwrap(),
            "0000-01-01T00:00:00Z"
        );
        assert_eq!(format_time(first - 1, 0, false), None);
        assert_eq!(format_time(i64::MIN, 0, false), None);
        assert_eq!(parse_time("0000-01-01T00:00:00Z"), Some((first, 0)));
        assert_eq!(parse_time("9999-12-31T23:59:59Z"), Some((last, 0)));
        assert_eq!(parse_time("2000-02-29T00:00:00Z"), Some((951_782_400, 0)));
        assert_eq!(parse_time("1900-02-29T00:00:00Z"), None);
        assert_eq!(parse_time("2024-04-31T00:00:00Z"), None);
    }

    #[test]
    fn durations() {
        for (n, s) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (150_000_000, "150ms"),
            (1_000_000_000, "1s"),
            (3_723_500_000_000, "1h2m3.5s"),
            (60_000_000_000, "1m0s"),
            (-5_000_000_000, "-5s"),
        ] {
            assert_eq!(format_duration(n), s);
            assert_eq!(parse_duration(s), Some(n), "{s}");
        }
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("1x"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn base64() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"\x00\xff\x10"] {
            assert_eq!(base64_decode(&base64_encode(data)).unwrap(), data);
        }
        assert_eq!(base64_encode(b"\x03"), "Aw==");
        assert_eq!(base64_decode("Aw="), None);
        assert_eq!(base64_decode("A==="), None);
    }
}
