//! Polling until a condition holds.

use std::thread::sleep;
use std::time::{Duration, Instant};

/// Calls `f` every `poll` until it returns true (then true) or `timeout` has passed (then false).
/// `f` is called at least once, and once more at the deadline.
pub fn wait_until(timeout: Duration, poll: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        sleep(poll.min(deadline - now));
    }
}
