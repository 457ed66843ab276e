//! A dependency-free loader that writes through etcd's gRPC-JSON gateway.
//!
//! etcd 3.4 and 3.5 serve the v3 API as JSON on the client port (`POST /v3/kv/txn`, ...), with
//! keys and values in base64. Writing many keys that way is much faster than one `etcdctl put`
//! per key, and takes any bytes (NUL, `0xff`) as keys and values. Only plain `http://` clusters
//! are supported: the gateway is spoken over HTTP/1.1 on a [`TcpStream`], without TLS.
//!
//! ```no_run
//! use etcd_test_support::{Cluster, Version};
//! let cluster = Cluster::builder(Version::V3_5).arg("--max-txn-ops=1000").start();
//! let gw = cluster.gateway().batch(1000);
//! let lease = gw.lease_grant(600);
//! gw.put_all((0..5000u32).map(|i| (format!("/k/{i}").into_bytes(), vec![0u8, 0xff])), Some(lease));
//! gw.delete_range(b"/k/1", Some(b"/k/2"));
//! let rev = gw.put(b"/last", b"x");
//! gw.compact(rev);
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::must::Must;
use crate::Cluster;

/// How long one request may take before the test fails (a big physical compaction included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The default number of operations per transaction: etcd's default `--max-txn-ops`.
const DEFAULT_BATCH: usize = 128;
/// The most JSON bytes per transaction: below etcd's default `--max-request-bytes` (1.5 MiB),
/// which limits the protobuf request (smaller than its base64 JSON).
const MAX_BODY: usize = 1_400_000;

/// A gateway client for one member of a plain-http [`Cluster`]; made by [`Cluster::gateway`].
///
/// Every method panics with the request and etcd's answer when etcd refuses it.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// The member's client address.
    addr: SocketAddr,
    /// The auth token sent as `Authorization`, when the cluster has auth on.
    token: Option<String>,
    /// The most operations per transaction.
    batch: usize,
}

impl Cluster {
    /// A gateway client for member 0; see [`Gateway`]. When the cluster has auth on, it
    /// authenticates as `root` first and sends the token with every request.
    ///
    /// Panics for a TLS cluster (the loader speaks plain HTTP only).
    #[track_caller]
    pub fn gateway(&self) -> Gateway {
        self.gateway_on(0)
    }

    /// Like [`gateway`](Self::gateway), for member `i`.
    #[track_caller]
    pub fn gateway_on(&self, i: usize) -> Gateway {
        if self.endpoints().iter().any(|e| e.starts_with("https://")) {
            panic!("Cluster::gateway speaks plain HTTP only: build the cluster without .tls()");
        }
        let host_port = &self.host_ports()[i];
        let addr: SocketAddr = host_port
            .parse()
            .must(|| format!("member {i}'s client address {host_port} is not host:port"));
        let mut gw = Gateway {
            addr,
            token: None,
            batch: DEFAULT_BATCH,
        };
        if self.auth_enabled() {
            gw.token = Some(gw.authenticate("root", crate::ROOT_PASSWORD));
        }
        gw
    }
}

impl Gateway {
    /// The most operations per transaction of [`put_all`](Self::put_all) (default 128, etcd's
    /// default `--max-txn-ops`); start the cluster with `--max-txn-ops=N` to use more.
    #[must_use]
    pub fn batch(mut self, n: usize) -> Gateway {
        assert!(n >= 1, "a batch needs at least one operation");
        self.batch = n;
        self
    }

    /// `POST /v3/auth/authenticate`: the token for `name`/`password`.
    #[track_caller]
    pub fn authenticate(&self, name: &str, password: &str) -> String {
        let body = format!(
            "{{\"name\":\"{}\",\"password\":\"{}\"}}",
            json_escape(name),
            json_escape(password)
        );
        let answer = self.call("/v3/auth/authenticate", &body);
        json_string(&answer, "token")
            .must(|| format!("no token in etcd's answer to /v3/auth/authenticate: {answer}"))
    }

    /// Writes every `(key, value)` (any bytes) with the given lease, in transactions of at most
    /// [`batch`](Self::batch) puts and about 1.4 MB of JSON. Returns the revision after the
    /// last one (0 when `kvs` is empty).
    #[track_caller]
    pub fn put_all<K, V>(&self, kvs: impl IntoIterator<Item = (K, V)>, lease: Option<i64>) -> i64
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let lease = lease
            .map(|l| format!(",\"lease\":\"{l}\""))
            .unwrap_or_default();
        let mut revision = 0;
        let mut ops: Vec<String> = Vec::new();
        let mut size = 0;
        for (k, v) in kvs {
            let op = format!(
                "{{\"requestPut\":{{\"key\":\"{}\",\"value\":\"{}\"{lease}}}}}",
                base64(k.as_ref()),
                base64(v.as_ref())
            );
            if !ops.is_empty() && (ops.len() >= self.batch || size + op.len() > MAX_BODY) {
                revision = self.txn(&ops);
                ops.clear();
                size = 0;
            }
            size += op.len() + 1;
            ops.push(op);
        }
        if !ops.is_empty() {
            revision = self.txn(&ops);
        }
        revision
    }

    /// Runs one transaction whose `success` branch holds `ops` (JSON request ops); returns the
    /// revision after it.
    #[track_caller]
    fn txn(&self, ops: &[String]) -> i64 {
        let body = format!("{{\"success\":[{}]}}", ops.join(","));
        let answer = self.call("/v3/kv/txn", &body);
        header_revision(&answer, "/v3/kv/txn")
    }

    /// `put key value` without a lease; returns the new revision.
    #[track_caller]
    pub fn put(&self, key: &[u8], value: &[u8]) -> i64 {
        self.put_with_lease(key, value, None)
    }

    /// `put key value` with an optional lease; returns the new revision.
    #[track_caller]
    pub fn put_with_lease(&self, key: &[u8], value: &[u8], lease: Option<i64>) -> i64 {
        let lease = lease
            .map(|l| format!(",\"lease\":\"{l}\""))
            .unwrap_or_default();
        let body = format!(
            "{{\"key\":\"{}\",\"value\":\"{}\"{lease}}}",
            base64(key),
            base64(value)
        );
        let answer = self.call("/v3/kv/put", &body);
        header_revision(&answer, "/v3/kv/put")
    }

    /// `POST /v3/kv/deleterange`: deletes `key`, or `[key, range_end)` when `range_end` is
    /// given (`Some(&[0])` means every key ≥ `key`). Returns how many keys were deleted.
    #[track_caller]
    pub fn delete_range(&self, key: &[u8], range_end: Option<&[u8]>) -> u64 {
        let end = range_end
            .map(|e| format!(",\"range_end\":\"{}\"", base64(e)))
            .unwrap_or_default();
        let body = format!("{{\"key\":\"{}\"{end}}}", base64(key));
        let answer = self.call("/v3/kv/deleterange", &body);
        json_int(&answer, "deleted").map_or(0, |n| {
            u64::try_from(n).must(|| format!("negative deleted count in {answer}"))
        })
    }

    /// `POST /v3/kv/compaction` with `physical: true`: compacts up to `revision` and returns
    /// when the compaction has been applied to the backend.
    #[track_caller]
    pub fn compact(&self, revision: i64) {
        let body = format!("{{\"revision\":\"{revision}\",\"physical\":true}}");
        self.call("/v3/kv/compaction", &body);
    }

    /// `POST /v3/lease/grant`: a new lease with `ttl` seconds; returns its ID.
    #[track_caller]
    pub fn lease_grant(&self, ttl: i64) -> i64 {
        let answer = self.call("/v3/lease/grant", &format!("{{\"TTL\":\"{ttl}\"}}"));
        json_int(&answer, "ID")
            .must(|| format!("no lease ID in etcd's answer to /v3/lease/grant: {answer}"))
    }

    /// The cluster's current revision (`POST /v3/kv/range` of one key, `count_only`).
    #[track_caller]
    pub fn revision(&self) -> i64 {
        let answer = self.call("/v3/kv/range", "{\"key\":\"AA==\",\"count_only\":true}");
        header_revision(&answer, "/v3/kv/range")
    }

    /// How many keys exist now (`POST /v3/kv/range` over every key, `count_only`).
    #[track_caller]
    pub fn count_all(&self) -> u64 {
        let answer = self.call(
            "/v3/kv/range",
            "{\"key\":\"AA==\",\"range_end\":\"AA==\",\"count_only\":true}",
        );
        json_int(&answer, "count").map_or(0, |n| {
            u64::try_from(n).must(|| format!("negative count in {answer}"))
        })
    }

    /// POSTs `body` to `path` and returns the answer's body; panics unless etcd answers 200.
    #[track_caller]
    pub fn call(&self, path: &str, body: &str) -> String {
        match self.try_call(path, body) {
            Ok((200, answer)) => answer,
            Ok((status, answer)) => panic!(
                "etcd gateway at {} answered {status} to POST {path} ({} bytes of JSON): {answer}",
                self.addr,
                body.len()
            ),
            Err(e) => panic!("etcd gateway at {}: POST {path}: {e}", self.addr),
        }
    }

    /// One HTTP/1.1 request on its own connection: the status code and the (de-chunked) body,
    /// whatever the status; `Err` when the connection fails.
    pub fn try_call(&self, path: &str, body: &str) -> Result<(u16, String), String> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
            .map_err(|e| format!("cannot connect: {e}"))?;
        stream
            .set_read_timeout(Some(REQUEST_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(REQUEST_TIMEOUT)))
            .map_err(|e| format!("cannot set timeouts: {e}"))?;
        let auth = self
            .token
            .as_ref()
            .map(|t| format!("Authorization: {t}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n{auth}Connection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body.as_bytes()))
            .and_then(|()| stream.flush())
            .map_err(|e| format!("cannot send the request: {e}"))?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the status line: {e}"))?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an HTTP status line: {line:?}"))?;
        let mut chunked = false;
        let mut length: Option<usize> = None;
        loop {
            line.clear();
            reader
                .read_line(&mut line)
                .map_err(|e| format!("cannot read the headers: {e}"))?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().ok();
            }
        }
        let mut answer = Vec::new();
        if chunked {
            loop {
                line.clear();
                reader
                    .read_line(&mut line)
                    .map_err(|e| format!("cannot read a chunk size: {e}"))?;
                let size_text = line.trim_end().split(';').next().unwrap_or_default();
                let size = usize::from_str_radix(size_text, 16)
                    .map_err(|_| format!("bad chunk size line {line:?}"))?;
                if size == 0 {
                    break;
                }
                let start = answer.len();
                answer.resize(start + size, 0);
                reader
                    .read_exact(&mut answer[start..])
                    .map_err(|e| format!("cannot read a chunk: {e}"))?;
                let mut crlf = [0u8; 2];
                reader
                    .read_exact(&mut crlf)
                    .map_err(|e| format!("cannot read a chunk end: {e}"))?;
            }
        } else if let Some(n) = length {
            answer.resize(n, 0);
            reader
                .read_exact(&mut answer)
                .map_err(|e| format!("cannot read the body: {e}"))?;
        } else {
            reader
                .read_to_end(&mut answer)
                .map_err(|e| format!("cannot read the body: {e}"))?;
        }
        Ok((status, String::from_utf8_lossy(&answer).into_owned()))
    }
}

/// Standard base64 with padding (RFC 4648), as protobuf's JSON mapping wants `bytes`.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `s` with `"` and `\` (and control characters) escaped for a JSON string.
fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// The string value of the first `"name":"..."` in `json` (no escapes expected).
fn json_string(json: &str, name: &str) -> Option<String> {
    let pattern = format!("\"{name}\":");
    let rest = json[json.find(&pattern)? + pattern.len()..].trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

/// The integer value of the first `"name":` in `json`, written as a number or (int64 in
/// protobuf's JSON mapping) a string.
fn json_int(json: &str, name: &str) -> Option<i64> {
    let pattern = format!("\"{name}\":");
    let rest = json[json.find(&pattern)? + pattern.len()..].trim_start();
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The `header.revision` of an answer; panics when it has none.
#[track_caller]
fn header_revision(answer: &str, path: &str) -> i64 {
    json_int(answer, "revision")
        .must(|| format!("no header revision in etcd's answer to {path}: {answer}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases: [(&[u8], &str); 8] = [
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
            (&[0, 0xff, 0xfe, 0x80], "AP/+gA=="),
        ];
        for (input, want) in cases {
            assert_eq!(base64(input), want, "base64({input:?})");
        }
    }

    #[test]
    fn reads_ints_written_as_strings_or_numbers() {
        let answer =
            r#"{"header":{"cluster_id":"1","revision":"42"},"ID":"7587","TTL":60,"deleted":"-3"}"#;
        assert_eq!(json_int(answer, "revision"), Some(42));
        assert_eq!(json_int(answer, "ID"), Some(7587));
        assert_eq!(json_int(answer, "TTL"), Some(60));
        assert_eq!(json_int(answer, "deleted"), Some(-3));
        assert_eq!(json_int(answer, "missing"), None);
        assert_eq!(
            json_string(r#"{"token":"ab.c"}"#, "token").as_deref(),
            Some("ab.c")
        );
    }
}
