//! Progress on stderr for long transfers: bytes, rate, and percent with ETA when the size is known.
//! Redrawn in place on a terminal; one line every few seconds otherwise (`--progress` into a log).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Whether to report progress: `--quiet` wins, then `--progress`, else only on a terminal.
pub fn wanted(progress_flag: bool, quiet: bool) -> bool {
    !quiet && (progress_flag || std::io::stderr().is_terminal())
}

/// A progress reporter for one transfer.
pub struct Progress {
    enabled: bool,
    terminal: bool,
    label: String,
    total: Option<u64>,
    start: Instant,
    last: Option<Instant>,
    drawn: bool,
}

impl Progress {
    /// A reporter; `enabled = false` makes every call a no-op.
    pub fn new(enabled: bool, label: impl Into<String>) -> Self {
        Progress {
            enabled,
            terminal: std::io::stderr().is_terminal(),
            label: label.into(),
            total: None,
            start: Instant::now(),
            last: None,
            drawn: false,
        }
    }

    /// Sets the expected total once it is known.
    pub fn set_total(&mut self, total: u64) {
        self.total = Some(total);
    }

    /// Reports `done` bytes, at most a few times a second.
    pub fn update(&mut self, done: u64) {
        if !self.enabled {
            return;
        }
        let every = if self.terminal {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(5)
        };
        let now = Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < every => return,
            None if now.duration_since(self.start) < every => return,
            _ => {}
        }
        self.last = Some(now);
        self.draw(done);
    }

    /// Draws the final state and ends the line.
    pub fn finish(&mut self, done: u64) {
        if self.enabled && (self.drawn || self.start.elapsed() >= Duration::from_secs(1)) {
            self.draw(done);
        }
        if self.enabled && self.terminal && self.drawn {
            let _ = writeln!(std::io::stderr());
        }
    }

    fn draw(&mut self, done: u64) {
        let elapsed = self.start.elapsed().as_secs_f64().max(1e-6);
        let rate = done as f64 / elapsed;
        let mut line = format!(
            "{}: {} at {}/s",
            self.label,
            human(done as f64),
            human(rate)
        );
        if let Some(total) = self.total.filter(|t| *t > 0) {
            let percent = (done as f64 * 100.0 / total as f64).min(100.0);
            line.push_str(&format!(" ({percent:.0}% of {}", human(total as f64)));
            if rate > 0.0 && done < total {
                let eta = (total - done) as f64 / rate;
                line.push_str(&format!(", {eta:.0}s left"));
            }
            line.push(')');
        }
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r\x1b[K{line}")
        } else {
            writeln!(err, "{line}")
        };
        self.drawn = true;
    }
}

/// Bytes as MB/GB with one decimal (decimal units, as `humanize.Bytes` does).
pub fn human(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
