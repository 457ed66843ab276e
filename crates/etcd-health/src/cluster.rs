//! `--cluster`: the endpoints to check are every member's client URLs (learners' too), from the
//! member list of the first given endpoint that answers.

use etcd_common::client;
use etcd_common::conn::{ConnConfig, Endpoint};

/// The members found and the endpoints to check.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// Every member's client URLs, in member-list order (members not yet started have none).
    pub endpoints: Vec<Endpoint>,
    /// How many voting members the cluster has, started or not: the base of the quorum.
    /// Learners do not vote, so they are not counted.
    pub members: usize,
}

/// Asks the given endpoints, in order, for the member list.
pub async fn discover(conn: &ConnConfig) -> Result<Discovered, String> {
    let mut failures = Vec::new();
    for ep in &conn.endpoints {
        let attempt = async {
            let mut c = client::connect(ep, conn).await?;
            client::with_timeout(conn.command_timeout, c.member_list()).await
        };
        match attempt.await {
            Ok(list) => {
                let mut endpoints = Vec::new();
                for member in list.members() {
                    for url in member.client_urls() {
                        let parsed = Endpoint::parse(url, ep.tls).map_err(|e| {
                            format!(
                                "member {:x} has an unusable client URL {:?}: {}",
                                member.id(),
                                etcd_common::conn::redact_url(url),
                                e.message
                            )
                        })?;
                        endpoints.push(parsed);
                    }
                }
                return Ok(Discovered {
                    endpoints,
                    members: list.members().iter().filter(|m| !m.is_learner()).count(),
                });
            }
            Err(e) => {
                let hint = if e.message.contains("rpc not supported for learner") {
                    " (a learner cannot list the members: give a voting member's endpoint)"
                } else {
                    ""
                };
                failures.push(format!("{}: {}{hint}", ep.text, e.message));
            }
        }
    }
    Err(format!(
        "failed to fetch endpoints from etcd cluster member list: {}",
        failures.join("; ")
    ))
}
