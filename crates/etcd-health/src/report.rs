//! Turning check results into the exit code and the report (simple, json, table), byte-compatible
//! with `etcdctl endpoint health` 3.5 apart from the measured durations.

use crate::check::EndpointHealth;
use crate::cli::{MinHealthy, Options};
use etcd_common::output::{json, print_stdout, table, Format};
use etcd_common::{Error, ExitCode, Result};
use std::collections::BTreeSet;
use std::io::Write;

/// What one round of checks found.
#[derive(Debug)]
pub enum Outcome {
    /// `--cluster` could not read the member list from any endpoint.
    Discovery(String),
    /// Every endpoint was checked.
    Checked {
        /// One result per endpoint, in the order given (or of the member list).
        results: Vec<EndpointHealth>,
        /// The cluster's member count with `--cluster`.
        members: Option<usize>,
    },
}

/// The judgement of a round: how many are healthy and what the exit code is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Healthy members (endpoints of one member count once).
    pub healthy: usize,
    /// Members (with `--cluster`) or endpoints checked.
    pub total: usize,
    /// Healthy members needed under `--min-healthy`.
    pub required: usize,
    /// The exit code.
    pub code: ExitCode,
}

/// Judges a round under `--min-healthy`.
pub fn verdict(outcome: &Outcome, min: MinHealthy) -> Verdict {
    let Outcome::Checked { results, members } = outcome else {
        return Verdict {
            healthy: 0,
            total: 0,
            required: 1,
            code: ExitCode::CheckFailed,
        };
    };
    // With --cluster the base is the voting members: a learner's health is reported and
    // required by `--min-healthy all`, but it does not count towards a quorum.
    let counts =
        |r: &&EndpointHealth| members.is_none() || !r.status.as_ref().is_some_and(|s| s.is_learner);
    let healthy: BTreeSet<String> = results
        .iter()
        .filter(|r| r.health)
        .filter(counts)
        .map(|r| match &r.status {
            Some(s) => s.member_id.clone(),
            None => r.endpoint.clone(),
        })
        .collect();
    let healthy = healthy.len();
    let total = members.unwrap_or(results.len());
    let required = match min {
        MinHealthy::All => total,
        MinHealthy::Quorum => total / 2 + 1,
        MinHealthy::Count(n) => n,
    };
    let all_healthy = !results.is_empty() && results.iter().all(|r| r.health);
    let code = if results.iter().any(EndpointHealth::is_auth_failure) {
        ExitCode::Usage
    } else if all_healthy && healthy >= required.min(total) {
        ExitCode::Success
    } else if min != MinHealthy::All && healthy >= required && healthy > 0 {
        ExitCode::Degraded
    } else {
        ExitCode::CheckFailed
    };
    Verdict {
        healthy,
        total,
        required,
        code,
    }
}

/// Prints the report and returns the exit code (or the error line to print).
pub fn print(outcome: &Outcome, verdict: &Verdict, options: &Options) -> Result<ExitCode> {
    let results = match outcome {
        Outcome::Discovery(message) => {
            return Err(Error::new(ExitCode::CheckFailed, message.clone()));
        }
        Outcome::Checked { results, .. } => results,
    };
    match options.format {
        Format::Simple => {
            for r in results {
                let learner = r.status.as_ref().filter(|s| s.is_learner);
                if let (true, Some(status)) = (r.health, learner) {
                    print_stdout(&format!(
                        "{} is healthy: learner, follows leader {}: took = {}\n",
                        r.endpoint, status.leader, r.took
                    ))?;
                } else if r.health {
                    print_stdout(&format!(
                        "{} is healthy: successfully committed proposal: took = {}\n",
                        r.endpoint, r.took
                    ))?;
                } else {
                    let _ = writeln!(
                        std::io::stderr(),
                        "{} is unhealthy: failed to commit proposal: {}",
                        r.endpoint,
                        r.error
                    );
                }
            }
        }
        Format::Json => print_stdout(&json::to_line(results))?,
        Format::Table => {
            let rows: Vec<Vec<String>> = results
                .iter()
                .map(|r| {
                    vec![
                        r.endpoint.clone(),
                        r.health.to_string(),
                        r.took.clone(),
                        r.error.clone(),
                    ]
                })
                .collect();
            print_stdout(&table::render(
                &["endpoint", "health", "took", "error"],
                &rows,
            ))?;
        }
    }
    let needs = || match options.min_healthy {
        MinHealthy::All => String::new(),
        MinHealthy::Quorum => format!(", --min-healthy quorum needs {}", verdict.required),
        MinHealthy::Count(n) => format!(", --min-healthy needs {n}"),
    };
    match verdict.code {
        ExitCode::Usage => {
            let first = results.iter().find(|r| r.is_auth_failure());
            Err(Error::usage(match first {
                Some(r) => format!("{}: {}", r.endpoint, r.error),
                None => "authentication failed".into(),
            }))
        }
        ExitCode::Degraded => {
            let _ = writeln!(
                std::io::stderr(),
                "Warning: degraded cluster: {} of {} healthy{}",
                verdict.healthy,
                verdict.total,
                needs()
            );
            Ok(ExitCode::Degraded)
        }
        ExitCode::CheckFailed => Err(Error::new(
            ExitCode::CheckFailed,
            match options.min_healthy {
                MinHealthy::All => "unhealthy cluster".to_string(),
                _ => format!(
                    "unhealthy cluster: {} of {} healthy{}",
                    verdict.healthy,
                    verdict.total,
                    needs()
                ),
            },
        )),
        code => Ok(code),
    }
}
