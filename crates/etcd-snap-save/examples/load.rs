//! Loads an etcd server with data for benchmarks and big tests.
//!
//! ```text
//! cargo run --release -p etcd-snap-save --example load -- \
//!     --endpoints 127.0.0.1:2379 --bytes 1G [--value-size 1M] [--concurrency 8] \
//!     [--prefix /bench/] [--fill half|random|zero] [--quiet]
//! ```
//!
//! Puts distinct keys `<prefix><index, 10 digits>` until the values add up to exactly `--bytes`
//! (the last value is shorter when needed), with at most `--concurrency` puts in flight. Values are
//! cheap pseudo-random bytes (xorshift64*): `random` is incompressible, `half` (the default) has a
//! random first half and a repeated text second half, so zstd shrinks it to about half, `zero` is
//! all zeros. Sizes take binary suffixes: `64M`, `1G`, `512K`, `1GiB`.
//!
//! Progress goes to stderr once a second (unless `--quiet`); the summary is one line on stdout.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::Client;

/// The error type of this example: a message for the user.
type Error = Box<dyn std::error::Error + Send + Sync>;

/// What the values look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// Pseudo-random bytes: incompressible.
    Random,
    /// A random first half and a repeated text second half: compresses to about one half.
    Half,
    /// All zeros: compresses to almost nothing.
    Zero,
}

/// The parsed command line.
#[derive(Debug, Clone)]
struct Args {
    /// Client endpoints (`host:port` or URLs).
    endpoints: Vec<String>,
    /// Total value bytes to write.
    bytes: u64,
    /// The size of each value (the last one may be shorter).
    value_size: u64,
    /// Puts in flight at once.
    concurrency: usize,
    /// Key prefix.
    prefix: String,
    /// Value content.
    fill: Fill,
    /// No progress on stderr.
    quiet: bool,
}

/// The usage text.
const USAGE: &str = "usage: load [--endpoints LIST] --bytes SIZE [--value-size SIZE] \
[--concurrency N] [--prefix P] [--fill half|random|zero] [--quiet]
  --endpoints LIST     comma-separated etcd client endpoints (default 127.0.0.1:2379)
  --bytes SIZE         total value bytes to write, e.g. 64M, 1G (binary suffixes K, M, G, T)
  --value-size SIZE    bytes per value (default 1M; etcd's request limit is 1.5 MiB by default)
  --concurrency N      puts in flight (default 8)
  --prefix P           key prefix (default /bench/)
  --fill KIND          half (default): half random, half text; random; zero
  --quiet              no progress on stderr";

/// Parses `64M`, `1G`, `1GiB`, `512k`, `1000` into bytes (binary multiples).
fn parse_size(s: &str) -> Result<u64, Error> {
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits_end);
    if num.is_empty() {
        return Err(
            format!("bad size {s:?}: expected a number with an optional K/M/G/T suffix").into(),
        );
    }
    let n: u64 = num.parse().map_err(|e| format!("bad size {s:?}: {e}"))?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(
                format!("bad size {s:?}: unknown suffix {suffix:?} (use K, M, G or T)").into(),
            )
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("bad size {s:?}: too large").into())
}

/// Parses the command line (`--flag value` and `--flag=value`).
fn parse_args() -> Result<Args, Error> {
    let mut args = Args {
        endpoints: vec!["127.0.0.1:2379".to_string()],
        bytes: 0,
        value_size: 1 << 20,
        concurrency: 8,
        prefix: "/bench/".to_string(),
        fill: Fill::Half,
        quiet: false,
    };
    let mut bytes_given = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, Error> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it
                    .next()
                    .ok_or_else(|| format!("{name} needs a value\n{USAGE}").into()),
            }
        };
        match flag.as_str() {
            "--endpoints" => {
                args.endpoints = value("--endpoints")?
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_string)
                    .collect();
            }
            "--bytes" => {
                args.bytes = parse_size(&value("--bytes")?)?;
                bytes_given = true;
            }
            "--value-size" => args.value_size = parse_size(&value("--value-size")?)?,
            "--concurrency" => {
                let v = value("--concurrency")?;
                args.concurrency = v
                    .parse()
                    .map_err(|e| format!("bad --concurrency {v:?}: {e}"))?;
            }
            "--prefix" => args.prefix = value("--prefix")?,
            "--fill" => {
                args.fill = match value("--fill")?.as_str() {
                    "half" => Fill::Half,
                    "random" => Fill::Random,
                    "zero" => Fill::Zero,
                    other => {
                        return Err(format!("bad --fill {other:?}: use half, random or zero").into())
                    }
                }
            }
            "--quiet" | "-q" => args.quiet = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    if !bytes_given {
        return Err(format!("--bytes is required\n{USAGE}").into());
    }
    if args.endpoints.is_empty() {
        return Err("--endpoints is empty".into());
    }
    if args.value_size == 0 {
        return Err("--value-size must be at least 1 byte".into());
    }
    if args.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    Ok(args)
}

/// xorshift64*: a fast, good-enough pseudo-random generator (not for cryptography).
struct XorShift(u64);

impl XorShift {
    /// A generator seeded from `seed` (never zero).
    fn new(seed: u64) -> XorShift {
        // splitmix64 scrambles consecutive seeds into unrelated states.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        XorShift(if z == 0 { 1 } else { z })
    }

    /// The next 64 random bits.
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&last[..n]);
    }
}

/// The text repeated in the compressible half of `half` values.
const TEXT: &[u8] = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: kube-system\n";

/// A value of `len` bytes for key number `index`.
fn make_value(fill: Fill, index: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    let mut rng = XorShift::new(index);
    match fill {
        Fill::Zero => {}
        Fill::Random => rng.fill(&mut v),
        Fill::Half => {
            let (random, text) = v.split_at_mut(len / 2);
            rng.fill(random);
            for (i, b) in text.iter_mut().enumerate() {
                *b = TEXT[i % TEXT.len()];
            }
        }
    }
    v
}

/// Counters shared by the workers and the progress printer.
#[derive(Default)]
struct Counters {
    /// The next key index to claim.
    next: AtomicU64,
    /// Value bytes acknowledged by etcd.
    done_bytes: AtomicU64,
    /// Keys acknowledged by etcd.
    done_keys: AtomicU64,
}

/// One worker: claims key indexes and puts them until the total is reached.
async fn worker(mut client: Client, args: Arc<Args>, counters: Arc<Counters>) -> Result<(), Error> {
    let keys = args.bytes.div_ceil(args.value_size);
    loop {
        let index = counters.next.fetch_add(1, Ordering::Relaxed);
        if index >= keys {
            return Ok(());
        }
        let start = index * args.value_size;
        let len = usize::try_from(args.value_size.min(args.bytes - start))
            .map_err(|_| "--value-size does not fit in memory")?;
        let key = format!("{}{index:010}", args.prefix);
        let value = make_value(args.fill, index, len);
        client
            .put(key.as_bytes(), value, None)
            .await
            .map_err(|e| format!("put {key}: {e}"))?;
        counters.done_bytes.fetch_add(len as u64, Ordering::Relaxed);
        counters.done_keys.fetch_add(1, Ordering::Relaxed);
    }
}

/// Bytes as MiB.
fn mib(b: u64) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

/// Connects, loads, reports.
async fn run(args: Args) -> Result<(), Error> {
    let args = Arc::new(args);
    let client = Client::connect(&args.endpoints, None)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", args.endpoints.join(",")))?;
    let counters = Arc::new(Counters::default());
    let started = Instant::now();

    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        workers.spawn(worker(
            client.clone(),
            Arc::clone(&args),
            Arc::clone(&counters),
        ));
    }

    let progress = (!args.quiet).then(|| {
        let counters = Arc::clone(&counters);
        let total = args.bytes;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let done = counters.done_bytes.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64();
                eprintln!(
                    "load: {:.0}/{:.0} MiB ({:.0}%), {} keys, {:.1} MiB/s",
                    mib(done),
                    mib(total),
                    100.0 * done as f64 / total.max(1) as f64,
                    counters.done_keys.load(Ordering::Relaxed),
                    mib(done) / secs.max(1e-9),
                );
            }
        })
    });

    let mut result = Ok(());
    while let Some(joined) = workers.join_next().await {
        let r = joined.map_err(|e| -> Error { format!("a load worker failed: {e}").into() });
        if let Err(e) = r.and_then(|r| r) {
            if result.is_ok() {
                result = Err(e);
                // Stop the other workers: they would only add more errors.
                counters.next.store(u64::MAX / 2, Ordering::Relaxed);
            }
        }
    }
    if let Some(p) = progress {
        p.abort();
    }
    result?;

    let secs = started.elapsed().as_secs_f64();
    let done = counters.done_bytes.load(Ordering::Relaxed);
    let keys = counters.done_keys.load(Ordering::Relaxed);
    let mut client = client;
    let status = client
        .status()
        .await
        .map_err(|e| format!("status of {}: {e}", args.endpoints.join(",")))?;
    println!(
        "loaded {keys} keys, {done} value bytes ({:.1} MiB) in {secs:.1}s ({:.1} MiB/s), \
         prefix {}, fill {:?}; db size {} bytes ({:.1} MiB), etcd {}",
        mib(done),
        mib(done) / secs.max(1e-9),
        args.prefix,
        args.fill,
        status.db_size(),
        mib(u64::try_from(status.db_size()).unwrap_or(0)),
        status.version(),
    );
    Ok(())
}

/// Parses the command line and loads; errors are one line on stderr and exit code 1 (2 for usage).
fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert!(parse_size("M").is_err());
        assert!(parse_size("1X").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn values() {
        let v = make_value(Fill::Half, 7, 1001);
        assert_eq!(v.len(), 1001);
        assert_eq!(&v[500..500 + TEXT.len()], TEXT);
        assert_ne!(
            make_value(Fill::Random, 1, 64),
            make_value(Fill::Random, 2, 64)
        );
        assert!(make_value(Fill::Zero, 1, 10).iter().all(|&b| b == 0));
    }
}
