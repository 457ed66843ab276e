//! `--prove`: after the snapshot is saved, ask every member of the cluster for etcd's `HashKV` at
//! the snapshot's revision and compare it with the snapshot's own (computed offline by
//! [`etcd_db::hash_kv`]). Equal on every member: the backup is exactly what the cluster held at
//! that revision. A member that differs is a finding in itself (exit 1); a member that cannot be
//! asked, or cannot answer comparably, leaves the backup unproven (exit 3: retry).
//!
//! The compaction caveat: a member of etcd 3.5.5+ that compacted at revision C since it started
//! answers `HashKV(C)` from a hash it cached while compacting (over the revisions the compaction
//! then deleted, with the *previous* compact revision), which no database can reproduce. So when
//! the snapshot's revision is its compact revision, such an answer (recognised by its compact
//! revision) is "not comparable" rather than "different"; members that compute the hash from
//! their database (restarted since, or older versions) are still compared. Any write moves the
//! revision past the compaction, so the next backup can be proven.

use etcd_common::client::{self, ClientError};
use etcd_common::conn::{ConnConfig, Endpoint};
use etcd_common::output::escape::escape;
use etcd_common::{Error, ExitCode};
use etcd_db::HashKv;
use serde::Serialize;

/// How one member's answer compares with the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Same hash and compact revision as the snapshot.
    Equal,
    /// A different hash or compact revision at the same revision: the member diverged.
    Differs,
    /// None of its client URLs answered.
    Unreachable,
    /// It answered, but not with a hash that can be compared (cached at compaction time, the
    /// revision compacted or not reached yet).
    NotComparable,
    /// A learner: etcd does not serve `HashKV` on learners; not part of the proof.
    Learner,
}

impl Outcome {
    /// The name JSON uses.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Equal => "equal",
            Outcome::Differs => "differs",
            Outcome::Unreachable => "unreachable",
            Outcome::NotComparable => "notComparable",
            Outcome::Learner => "learner",
        }
    }
}

/// One member's part of the proof.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberProof {
    /// The member's name (empty for a member that has not started yet).
    pub name: String,
    /// Its member ID, hex.
    pub id: String,
    /// The client URL asked (the first one when none answered, empty when it has none).
    pub endpoint: String,
    /// Its `HashKV` hash at the proof's revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<u32>,
    /// The compact revision it reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compact_revision: Option<i64>,
    /// How it compares.
    pub result: Outcome,
    /// Why there is no comparable answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// Every voting member answered the snapshot's hash.
    Proven,
    /// At least one member differs (exit 1).
    Divergent,
    /// No member differs, but not every one could be compared (exit 3).
    Unproven,
}

impl Verdict {
    /// The name JSON uses.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Proven => "proven",
            Verdict::Divergent => "divergent",
            Verdict::Unproven => "unproven",
        }
    }
}

/// The result of `--prove` (JSON `proof`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Proof {
    /// The revision compared: the snapshot's own.
    pub revision: i64,
    /// The snapshot's `HashKV` hash at that revision.
    pub hash: u32,
    /// The snapshot's compact revision.
    pub compact_revision: i64,
    /// The verdict.
    pub verdict: Verdict,
    /// Every member, in member-list order.
    pub members: Vec<MemberProof>,
}

impl Proof {
    /// The verdict from the members' results.
    fn verdict(members: &[MemberProof]) -> Verdict {
        if members.iter().any(|m| m.result == Outcome::Differs) {
            Verdict::Divergent
        } else if members
            .iter()
            .any(|m| matches!(m.result, Outcome::Unreachable | Outcome::NotComparable))
        {
            Verdict::Unproven
        } else {
            Verdict::Proven
        }
    }

    /// `Ok` when proven; otherwise the one-line error naming the members, exit 1 or 3.
    pub fn outcome(&self) -> Result<(), Error> {
        let name = |m: &MemberProof| {
            if m.name.is_empty() {
                format!("{} ({})", m.id, m.endpoint)
            } else {
                format!("{} ({})", escape(&m.name), m.endpoint)
            }
        };
        match self.verdict {
            Verdict::Proven => Ok(()),
            Verdict::Divergent => {
                let lines: Vec<String> = self
                    .members
                    .iter()
                    .filter(|m| m.result == Outcome::Differs)
                    .map(|m| {
                        let (hash, compact) =
                            (m.hash.unwrap_or(0), m.compact_revision.unwrap_or(0));
                        let mut text = format!(
                            "member {} differs at revision {}: hash {hash} vs snapshot {}",
                            name(m),
                            self.revision,
                            self.hash
                        );
                        if compact != self.compact_revision {
                            text.push_str(&format!(
                                ", compact revision {compact} vs snapshot {}",
                                self.compact_revision
                            ));
                        }
                        text
                    })
                    .collect();
                Err(Error::new(ExitCode::CheckFailed, lines.join("; ")))
            }
            Verdict::Unproven => {
                let lines: Vec<String> = self
                    .members
                    .iter()
                    .filter(|m| matches!(m.result, Outcome::Unreachable | Outcome::NotComparable))
                    .map(|m| {
                        let why = m.error.clone().unwrap_or_default();
                        match m.result {
                            Outcome::Unreachable => {
                                format!("member {} could not be asked: {why}", name(m))
                            }
                            _ => format!("member {}: {why}", name(m)),
                        }
                    })
                    .collect();
                Err(Error::transient(format!(
                    "the snapshot was saved but not proven at revision {}: {}",
                    self.revision,
                    lines.join("; ")
                )))
            }
        }
    }
}

/// The snapshot's own `HashKV` at its current revision.
pub fn snapshot_hash(db: &bbolt::Db, name: &str) -> Result<HashKv, Error> {
    etcd_db::hash_kv(db, None).map_err(|e| etcd_common::snapshot::db_error(name, e))
}

/// Asks every member (from the member list of `via`, the endpoint that served the snapshot) for
/// `HashKV` at the snapshot's revision and compares.
pub async fn prove(own: HashKv, via: &Endpoint, conn: &ConnConfig) -> Result<Proof, Error> {
    let timeout = conn.command_timeout;
    let list = async {
        let mut c = client::connect(via, conn).await?;
        client::with_timeout(timeout, c.member_list()).await
    }
    .await
    .map_err(|e| {
        let code = e.exit_code();
        Error::new(
            code,
            format!(
                "the snapshot was saved but not proven: {}: listing the members: {}",
                via.text, e.message
            ),
        )
    })?;
    let mut members = Vec::new();
    for member in list.members() {
        let mut proof = MemberProof {
            name: member.name().to_string(),
            id: format!("{:x}", member.id()),
            endpoint: member.client_urls().first().cloned().unwrap_or_default(),
            hash: None,
            compact_revision: None,
            result: Outcome::Unreachable,
            error: None,
        };
        if member.is_learner() {
            proof.result = Outcome::Learner;
            members.push(proof);
            continue;
        }
        if member.client_urls().is_empty() {
            proof.error = Some("it has no client URL (not started yet)".into());
            members.push(proof);
            continue;
        }
        let mut failures = Vec::new();
        for url in member.client_urls() {
            let endpoint = match Endpoint::parse(url, via.tls) {
                Ok(ep) => ep,
                Err(e) => {
                    failures.push(format!(
                        "{}: {}",
                        etcd_common::conn::redact_url(url),
                        e.message
                    ));
                    continue;
                }
            };
            let answer = async {
                let mut c = client::connect(&endpoint, conn).await?;
                client::with_timeout(timeout, c.hash_kv(own.hash_revision)).await
            }
            .await;
            proof.endpoint = endpoint.text.clone();
            match answer {
                Ok(resp) => {
                    compare(&mut proof, own, resp.hash(), resp.compact_version());
                    failures.clear();
                    break;
                }
                Err(e) => {
                    if let Some(why) = not_comparable(&e, own) {
                        proof.result = Outcome::NotComparable;
                        proof.error = Some(why);
                        failures.clear();
                        break;
                    }
                    failures.push(e.message);
                }
            }
        }
        if !failures.is_empty() {
            proof.error = Some(failures.join("; "));
        }
        members.push(proof);
    }
    Ok(Proof {
        revision: own.hash_revision,
        hash: own.hash,
        compact_revision: own.compact_revision,
        verdict: Proof::verdict(&members),
        members,
    })
}

/// Fills in a member's answer and how it compares.
fn compare(proof: &mut MemberProof, own: HashKv, hash: u32, compact: i64) {
    proof.hash = Some(hash);
    proof.compact_revision = Some(compact);
    if hash == own.hash && compact == own.compact_revision {
        proof.result = Outcome::Equal;
    } else if own.hash_revision == own.compact_revision && compact != own.compact_revision {
        // etcd 3.5.5+ answers HashKV(C) from the hash it cached while compacting at C, which
        // carries the previous compact revision: not what a database gives (module docs).
        proof.result = Outcome::NotComparable;
        proof.error = Some(format!(
            "the revision is the compact revision and the member answers from the hash it cached \
             when it compacted (it reports compact revision {compact}), which a snapshot cannot \
             reproduce; a backup taken after the next write can be proven"
        ));
    } else {
        proof.result = Outcome::Differs;
    }
}

/// A server refusal that says the revision cannot be hashed there now, rather than that the
/// member diverged: compacted (after the snapshot, or exactly at it on etcd before 3.5.16) or
/// not yet reached by a member that lags.
fn not_comparable(e: &ClientError, own: HashKv) -> Option<String> {
    let text = e.message.as_str();
    if text.contains("required revision has been compacted") {
        Some(if own.hash_revision <= own.compact_revision {
            format!(
                "it refuses HashKV at the compact revision {} (etcd before 3.5.16); a backup \
                 taken after the next write can be proven",
                own.compact_revision
            )
        } else {
            "the revision was compacted after the snapshot was taken; take the backup again".into()
        })
    } else if text.contains("required revision is a future revision") {
        Some("it has not reached the snapshot's revision yet (it lags behind)".into())
    } else {
        None
    }
}
