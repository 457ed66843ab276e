//! Output formats shared by the tools: `-w simple|json|table`, etcdctl's table layout, and JSON
//! written the way Go's encoder writes it.

pub mod escape;
pub mod json;
pub mod table;

pub use escape::{escape, escape_bytes};

use crate::args::{Args, Env, Opt};
use crate::error::{Error, Result};
use std::io::Write;

/// The `-w/--write-out` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One line per result, as etcdctl prints it.
    #[default]
    Simple,
    /// JSON with etcd's key names.
    Json,
    /// An ASCII table in etcdctl's layout.
    Table,
}

impl Format {
    /// Parses a `-w` value.
    pub fn parse(text: &str, source: &str) -> Result<Format> {
        match text {
            "simple" => Ok(Format::Simple),
            "json" => Ok(Format::Json),
            "table" => Ok(Format::Table),
            other => Err(Error::usage(format!(
                "{source}: unsupported output format {other:?} (use simple, json or table)"
            ))),
        }
    }
}

/// The `-w/--write-out` flag with its `ETCDCTL_WRITE_OUT` variable.
#[derive(Debug, Default, Clone)]
pub struct FormatFlag {
    value: Option<String>,
}

impl FormatFlag {
    /// Takes `-w`/`--write-out` if `opt` is it.
    pub fn take(&mut self, opt: &Opt, args: &mut Args) -> Result<bool> {
        match opt {
            Opt::Short('w') => {}
            Opt::Long(name) if name == "write-out" => {}
            _ => return Ok(false),
        }
        self.value = Some(args.value(opt)?);
        Ok(true)
    }

    /// The chosen format: flag, then `ETCDCTL_WRITE_OUT`, then simple.
    pub fn resolve(&self, env: &Env) -> Result<Format> {
        match (&self.value, env.for_flag("write-out")) {
            (Some(v), _) => Format::parse(v, "--write-out"),
            (None, Some(v)) => Format::parse(v, "ETCDCTL_WRITE_OUT"),
            (None, None) => Ok(Format::Simple),
        }
    }
}

/// Writes a report to stdout; a closed pipe (`| head`) is not an error worth a message.
pub fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Error::broken_pipe()),
        Err(e) => Err(Error::io("writing to stdout", &e)),
    }
}

/// Ends a tool's `main`: prints the error line (unless stdout was merely closed) and gives the exit code.
pub fn finish(result: Result<crate::ExitCode>) -> std::process::ExitCode {
    match result {
        Ok(code) => code.into(),
        Err(err) if err.is_quiet() => err.code.into(),
        Err(err) => {
            // Messages name keys, paths and names that came from input: whatever a message was
            // built from, no control character reaches the terminal.
            let message = err.to_string();
            let _ = writeln!(std::io::stderr(), "Error: {}", escape(&message));
            err.code.into()
        }
    }
}

/// Go's `humanize.Bytes` (what etcdctl prints for sizes): `20 kB`, `2.1 MB`, `7 B`.
pub fn humanize_bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 10 {
        return format!("{n} B");
    }
    let e = ((n as f64).ln() / 1000f64.ln()).floor();
    let suffix = UNITS[(e as usize).min(UNITS.len() - 1)];
    let val = ((n as f64) / 1000f64.powf(e) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1} {suffix}")
    } else {
        format!("{val:.0} {suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::humanize_bytes;

    #[test]
    fn humanizes_like_go() {
        assert_eq!(humanize_bytes(7), "7 B");
        assert_eq!(humanize_bytes(20480), "20 kB");
        assert_eq!(humanize_bytes(24576), "25 kB");
        assert_eq!(humanize_bytes(2_101_248), "2.1 MB");
        assert_eq!(humanize_bytes(1_073_741_824), "1.1 GB");
        assert_eq!(humanize_bytes(999), "999 B");
    }
}
