//! Named cases over one expensive input, in one test: a failure names its case.
//!
//! Why: a test that builds a real etcd snapshot once and then checks many things about it used to
//! be one long function, so its first failed assertion hid every later one and named only the
//! test. [`cases`] runs every case even when an earlier one fails (each panic message is printed
//! as it happens, under the case's name) and then fails naming every case that failed.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// One named check of an input.
pub type Case<'a, T> = (&'a str, fn(&T));

/// Runs each `(name, case)` on `input`; panics at the end naming the cases that panicked.
#[track_caller]
pub fn cases<T: ?Sized>(input: &T, list: &[Case<'_, T>]) {
    let mut failed = Vec::new();
    for (name, case) in list {
        eprintln!("case: {name}");
        if catch_unwind(AssertUnwindSafe(|| case(input))).is_err() {
            eprintln!("case failed: {name}");
            failed.push(*name);
        }
    }
    assert!(failed.is_empty(), "failed cases: {failed:?}");
}
