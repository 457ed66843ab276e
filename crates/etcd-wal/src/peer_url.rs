//! Peer URL parsing and normalisation as etcd's `types.NewURLs` does it (Go's `url.Parse`, then
//! etcd's checks, then `URL.String()`), because member IDs hash the normalised strings: a URL
//! that etcd would write differently (e.g. an upper-case scheme) must hash the same here.
//!
//! Supported exactly: `scheme://host:port` with an optional query (kept verbatim, as Go does) and
//! a bare trailing `#`. Go's error texts are reproduced for the malformed inputs it rejects
//! (control characters, bad ports, bad host characters, bad escapes, missing scheme). User info,
//! a non-empty fragment and IPv6 zones (`%25`) are refused with our own message: Go would accept
//! and re-encode them, but they have no place in a peer URL and are not worth a second URL
//! encoder.

use crate::gostr::quote;

/// The schemes etcd accepts for peer URLs.
const SCHEMES: [&str; 4] = ["http", "https", "unix", "unixs"];

/// Upper-case hex digits, as Go's URL escaping writes them.
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Parses one peer URL like etcd's `types.NewURLs` (after its `strings.TrimSpace`) and returns
/// Go's `URL.String()` of it, or the error text etcdutl would print.
pub fn normalize(raw: &str) -> Result<String, String> {
    let input = raw.trim();
    // url.Parse splits the fragment off first; an empty fragment vanishes.
    let (before_frag, frag) = match input.split_once('#') {
        Some((u, f)) => (u, Some(f)),
        None => (input, None),
    };
    let url = match parse(before_frag) {
        Ok(url) => url,
        Err(ParseError::Go(e)) => return Err(format!("parse {}: {e}", quote(before_frag))),
        Err(ParseError::Unsupported) => return Err(unsupported(input)),
    };
    if frag.is_some_and(|f| !f.is_empty()) {
        return Err(unsupported(input));
    }
    if !SCHEMES.contains(&url.scheme.as_str()) {
        return Err(format!(
            "URL scheme must be http, https, unix, or unixs: {input}"
        ));
    }
    if url.has_userinfo {
        return Err(unsupported(input));
    }
    if split_host_port(&url.host).is_err() {
        return Err(format!(
            "URL address does not have the form \"host:port\": {input}"
        ));
    }
    if !url.path.is_empty() {
        return Err(format!("URL must not contain a path: {input}"));
    }
    let mut s = format!("{}://{}", url.scheme, url.host_escaped);
    if let Some(q) = url.query {
        s.push('?');
        s.push_str(&q);
    }
    Ok(s)
}

/// Our refusal of URL features Go accepts but peer URLs never need.
fn unsupported(input: &str) -> String {
    format!("URL must be scheme://host:port (no user info, fragment or IPv6 zone): {input}")
}

/// Why [`parse`] failed.
enum ParseError {
    /// Go's `url.Parse` fails with this text.
    Go(String),
    /// Go would accept it, we do not (see the module doc).
    Unsupported,
}

impl From<String> for ParseError {
    fn from(e: String) -> Self {
        ParseError::Go(e)
    }
}

/// The parts of a parsed URL that etcd looks at.
#[derive(Debug, Default)]
struct Parsed {
    /// Lower-cased scheme, or empty.
    scheme: String,
    /// The host as Go decodes it (what `net.SplitHostPort` sees); empty for opaque URLs.
    host: String,
    /// The host as `URL.String()` writes it.
    host_escaped: String,
    /// Whether an `user@` part was present.
    has_userinfo: bool,
    /// The (still escaped) path; only its emptiness matters.
    path: String,
    /// The raw query (`Some("")` for a trailing `?`).
    query: Option<String>,
}

/// Go's `url.parse(rawURL, viaRequest=false)`, returning Go's error text.
fn parse(raw: &str) -> Result<Parsed, ParseError> {
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(ParseError::Go(
            "net/url: invalid control character in URL".to_string(),
        ));
    }
    let mut url = Parsed::default();
    let (scheme, rest) = scheme_split(raw)?;
    url.scheme = scheme.to_ascii_lowercase();
    let mut rest = rest;
    if rest.ends_with('?') && rest.matches('?').count() == 1 {
        url.query = Some(String::new());
        rest = &rest[..rest.len() - 1];
    } else if let Some((r, q)) = rest.split_once('?') {
        url.query = Some(q.to_string());
        rest = r;
    }
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            // An opaque URL such as `http:host:1`: no host at all.
            return Ok(url);
        }
        let segment = rest.split('/').next().unwrap_or_default();
        if segment.contains(':') {
            return Err(ParseError::Go(
                "first path segment in URL cannot contain colon".to_string(),
            ));
        }
    }
    if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let after = &rest[2..];
        let (authority, path) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        let host = match authority.rfind('@') {
            Some(i) => {
                url.has_userinfo = true;
                &authority[i + 1..]
            }
            None => authority,
        };
        let (decoded, escaped) = parse_host(host)?;
        url.host = decoded;
        url.host_escaped = escaped;
        rest = path;
    }
    check_escapes(rest)?;
    url.path = rest.to_string();
    Ok(url)
}

/// Go's `getScheme`: the scheme (not yet lower-cased) and the rest.
fn scheme_split(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i == 0 => return Ok(("", raw)),
            b'0'..=b'9' | b'+' | b'-' | b'.' => {}
            b':' if i == 0 => return Err("missing protocol scheme".to_string()),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// Go's `validOptionalPort`: empty, or `:` followed by digits only.
fn valid_optional_port(port: &str) -> bool {
    port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether Go allows ASCII byte `c` unescaped in a host name.
fn host_byte_ok(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!$&'()*+,;=:[]<>\"-_.~".contains(&c)
}

/// Go's `parseHost`: validates brackets and port, decodes `%XX` escapes (only of non-ASCII
/// bytes, as Go requires), and returns the host as decoded and as `URL.String()` re-escapes it.
fn parse_host(host: &str) -> Result<(String, String), ParseError> {
    if host.starts_with('[') {
        let Some(i) = host.rfind(']') else {
            return Err(ParseError::Go("missing ']' in host".to_string()));
        };
        let colon_port = &host[i + 1..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {} after host", quote(colon_port)).into());
        }
        if host[..i].contains('%') {
            return Err(ParseError::Unsupported);
        }
    } else if let Some(i) = host.rfind(':') {
        let colon_port = &host[i..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {} after host", quote(colon_port)).into());
        }
    }
    let bytes = host.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut escaped = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
            let Some(hex) = hex else {
                let end = (i + 3).min(bytes.len());
                return Err(invalid_escape(&bytes[i..end]).into());
            };
            let b = (unhex(hex[0]) << 4) | unhex(hex[1]);
            if unhex(hex[0]) < 8 && &bytes[i..i + 3] != b"%25" {
                return Err(invalid_escape(&bytes[i..i + 3]).into());
            }
            decoded.push(b);
            push_escaped(&mut escaped, b);
            i += 3;
            continue;
        }
        if c < 0x80 && !host_byte_ok(c) {
            return Err(
                format!("invalid character {} in host name", quote(&host[i..i + 1])).into(),
            );
        }
        decoded.push(c);
        if c < 0x80 {
            escaped.push(char::from(c));
        } else {
            push_escaped(&mut escaped, c);
        }
        i += 1;
    }
    Ok((String::from_utf8_lossy(&decoded).into_owned(), escaped))
}

/// Appends `%XX` (upper-case hex) for `b`.
fn push_escaped(out: &mut String, b: u8) {
    out.push('%');
    out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
    out.push(char::from(HEX_UPPER[usize::from(b & 0xf)]));
}

/// The value of one hex digit (the caller checked it is one).
fn unhex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c.wrapping_sub(b'A').wrapping_add(10),
    }
}

/// Go's `EscapeError` text.
fn invalid_escape(s: &[u8]) -> String {
    format!("invalid URL escape {}", quote(&String::from_utf8_lossy(s)))
}

/// Go's path unescaping check: every `%` must start a two-digit hex escape.
fn check_escapes(path: &str) -> Result<(), String> {
    let bytes = path.as_bytes();
    for (i, &c) in bytes.iter().enumerate() {
        if c == b'%' {
            let ok = bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
            if !ok {
                let end = (i + 3).min(bytes.len());
                return Err(invalid_escape(&bytes[i..end]));
            }
        }
    }
    Ok(())
}

/// Go's `net.SplitHostPort`, reduced to whether it succeeds.
fn split_host_port(hostport: &str) -> Result<(), ()> {
    let Some(i) = hostport.rfind(':') else {
        return Err(());
    };
    let (j, k) = if hostport.starts_with('[') {
        let Some(end) = hostport.find(']') else {
            return Err(());
        };
        if end + 1 != i {
            // Either `[h]` with no port, `[h]x:p`, or `[h]:p:q`.
            return Err(());
        }
        (1, end + 1)
    } else {
        if hostport[..i].contains(':') {
            return Err(());
        }
        (0, 0)
    };
    if hostport[j..].contains('[') || hostport[k..].contains(']') {
        return Err(());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_urls_round_trip() {
        for u in [
            "http://localhost:2380",
            "https://10.0.0.1:2380",
            "http://[::1]:2380",
            "unix://sock:1",
            "unixs://a.b-c_d:0",
            "http://:2380",
            "http://h:",
            "http://h:1?x=1",
        ] {
            assert_eq!(normalize(u).as_deref(), Ok(u), "{u}");
        }
    }

    #[test]
    fn normalises_like_go() {
        assert_eq!(normalize(" HTTP://h:1 ").as_deref(), Ok("http://h:1"));
        assert_eq!(normalize("http://h:1#").as_deref(), Ok("http://h:1"));
        assert_eq!(normalize("http://h:1?").as_deref(), Ok("http://h:1?"));
        assert_eq!(normalize("http://é:1").as_deref(), Ok("http://%C3%A9:1"));
        assert_eq!(
            normalize("http://%c3%a9:1").as_deref(),
            Ok("http://%C3%A9:1")
        );
    }

    #[test]
    fn etcd_error_texts() {
        let e = |u: &str| normalize(u).err().unwrap_or_default();
        assert_eq!(
            e("ftp://h:1"),
            "URL scheme must be http, https, unix, or unixs: ftp://h:1"
        );
        assert_eq!(e(""), "URL scheme must be http, https, unix, or unixs: ");
        assert_eq!(
            e("localhost:2380"),
            "URL scheme must be http, https, unix, or unixs: localhost:2380"
        );
        assert_eq!(
            e("http://h"),
            "URL address does not have the form \"host:port\": http://h"
        );
        assert_eq!(
            e("http://h/p"),
            "URL address does not have the form \"host:port\": http://h/p"
        );
        assert_eq!(
            e("http:h:1"),
            "URL address does not have the form \"host:port\": http:h:1"
        );
        assert_eq!(
            e("http://a:b:1"),
            "URL address does not have the form \"host:port\": http://a:b:1"
        );
        assert_eq!(e("http://h:1/"), "URL must not contain a path: http://h:1/");
        assert_eq!(
            e("http://h:x"),
            "parse \"http://h:x\": invalid port \":x\" after host"
        );
        assert_eq!(e(":x"), "parse \":x\": missing protocol scheme");
        assert_eq!(
            e("http://a b:1"),
            "parse \"http://a b:1\": invalid character \" \" in host name"
        );
        assert_eq!(
            e("http://h\u{1}:1"),
            "parse \"http://h\\x01:1\": net/url: invalid control character in URL"
        );
        assert_eq!(
            e("http://[::1:1"),
            "parse \"http://[::1:1\": missing ']' in host"
        );
        assert_eq!(
            e("http://%41:1"),
            "parse \"http://%41:1\": invalid URL escape \"%41\""
        );
        assert!(e("http://u@h:1").starts_with("URL must be scheme://host:port"));
        assert!(e("http://h:1#f").starts_with("URL must be scheme://host:port"));
    }
}
