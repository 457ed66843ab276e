//! `snapshot status` numbers of a bbolt file, computed with this crate, for comparison with
//! `etcdutl snapshot status -w json FILE` and for timing.
//!
//! Why it exists: a measuring stick for the reader (speed, reads issued, memory) on real snapshots,
//! before the etcd-layer status tool exists. Not the product: that lives in `etcd-snap-status`.
//!
//! Usage: `cargo run --release -p bbolt --example status -- FILE [--two-pass] [--no-check] [--no-hash]`
//! prints `{"hash":..,"revision":..,"totalKey":..,"totalSize":..}` on stdout, timings on stderr.
//! By default it checks and hashes in one pass (`Db::scan`); `--two-pass` checks, then iterates.

use std::process::ExitCode;
use std::time::Instant;

/// CRC-32C (Castagnoli), slicing-by-8 tables.
struct Crc32c {
    t: [[u32; 256]; 8],
    state: u32,
}

impl Crc32c {
    #[allow(clippy::needless_range_loop)]
    fn new() -> Crc32c {
        let mut t = [[0u32; 256]; 8];
        for i in 0..256 {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
            }
            t[0][i] = c;
        }
        for i in 0..256 {
            for k in 1..8 {
                let prev = t[k - 1][i];
                t[k][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            }
        }
        Crc32c {
            t,
            state: 0xFFFF_FFFF,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        let t = &self.t;
        let mut c = self.state;
        while data.len() >= 8 {
            let lo = c ^ u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            let hi = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
            c = t[7][(lo & 0xFF) as usize]
                ^ t[6][((lo >> 8) & 0xFF) as usize]
                ^ t[5][((lo >> 16) & 0xFF) as usize]
                ^ t[4][(lo >> 24) as usize]
                ^ t[3][(hi & 0xFF) as usize]
                ^ t[2][((hi >> 8) & 0xFF) as usize]
                ^ t[1][((hi >> 16) & 0xFF) as usize]
                ^ t[0][(hi >> 24) as usize];
            data = &data[8..];
        }
        for &b in data {
            c = t[0][((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
        }
        self.state = c;
    }

    fn sum(&self) -> u32 {
        self.state ^ 0xFFFF_FFFF
    }
}

fn run(path: &str, check: bool, hash: bool) -> bbolt::Result<()> {
    let t0 = Instant::now();
    let db = bbolt::Db::open(path)?;
    if check {
        let r = db.check_report(100);
        eprintln!(
            "check: {:?}, {} errors, {:?}",
            t0.elapsed(),
            r.errors.len(),
            r.stats
        );
        for e in &r.errors {
            eprintln!("  {e}");
        }
        if !r.errors.is_empty() {
            return Err(bbolt::Error::corrupt(0, "integrity check failed"));
        }
    }
    let t1 = Instant::now();
    let mut h = Crc32c::new();
    let (mut revision, mut total_key) = (0i64, 0u64);
    for name in db.buckets()? {
        let Some(b) = db.bucket(&name)? else { continue };
        if hash {
            h.update(&name);
        }
        let is_key = name == b"key";
        for e in b.entries() {
            let e = e?;
            if hash {
                h.update(e.key());
                if let Some(v) = e.plain_value() {
                    h.update(v);
                }
            }
            if is_key {
                if let Some(k) = e.key().get(0..8) {
                    let mut be = [0u8; 8];
                    be.copy_from_slice(k);
                    revision = i64::from_be_bytes(be);
                }
            }
            total_key += 1;
        }
    }
    eprintln!(
        "hash pass: {:?}, total {:?}, io {:?}",
        t1.elapsed(),
        t0.elapsed(),
        db.io_stats()
    );
    println!(
        "{{\"hash\":{},\"revision\":{revision},\"totalKey\":{total_key},\"totalSize\":{}}}",
        h.sum(),
        db.total_size()
    );
    Ok(())
}

/// One pass: check and hash together with `Db::scan`.
fn run_scan(path: &str) -> bbolt::Result<()> {
    let t0 = Instant::now();
    let db = bbolt::Db::open(path)?;
    let mut h = Crc32c::new();
    let (mut revision, mut total_key, mut in_key) = (0i64, 0u64, false);
    let report = db.scan(100, &mut |ev| match ev {
        bbolt::ScanEvent::Bucket { depth: 1, entry } => {
            h.update(entry.key());
            in_key = entry.key() == b"key";
        }
        bbolt::ScanEvent::Entry { depth: 1, entry } => {
            h.update(entry.key());
            if let Some(v) = entry.plain_value() {
                h.update(v);
            }
            if in_key {
                if let Some(k) = entry.key().get(0..8) {
                    let mut be = [0u8; 8];
                    be.copy_from_slice(k);
                    revision = i64::from_be_bytes(be);
                }
            }
            total_key += 1;
        }
        _ => {}
    });
    eprintln!(
        "scan: {:?}, {} errors, io {:?}",
        t0.elapsed(),
        report.errors.len(),
        db.io_stats()
    );
    for e in &report.errors {
        eprintln!("  {e}");
    }
    if !report.errors.is_empty() {
        return Err(bbolt::Error::corrupt(0, "integrity check failed"));
    }
    println!(
        "{{\"hash\":{},\"revision\":{revision},\"totalKey\":{total_key},\"totalSize\":{}}}",
        h.sum(),
        db.total_size()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: status FILE [--two-pass] [--no-check] [--no-hash]");
        return ExitCode::from(2);
    };
    let flag = |f: &str| args.iter().any(|a| a == f);
    let res = if flag("--two-pass") || flag("--no-check") || flag("--no-hash") {
        run(path, !flag("--no-check"), !flag("--no-hash"))
    } else {
        run_scan(path)
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {path}: {e}");
            ExitCode::from(4)
        }
    }
}
