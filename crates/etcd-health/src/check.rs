//! The health check of one endpoint, as `etcdctl endpoint health` 3.5 does it, plus the member's
//! status for the JSON report.

use etcd_client::{AlarmAction, AlarmType, GetOptions};
use etcd_common::client::{self, FailureKind};
use etcd_common::conn::{ConnConfig, Endpoint};
use etcd_common::duration::format_go;
use serde::Serialize;
use std::time::Instant;

/// What one endpoint answered. Field order and names follow etcdctl's JSON; the rest are ours.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointHealth {
    /// The endpoint as given (or as the member list names it with `--cluster`).
    pub endpoint: String,
    /// Whether the endpoint is healthy.
    pub health: bool,
    /// Time of the `health` read, Go-formatted; empty when no connection was made.
    pub took: String,
    /// Why the endpoint is unhealthy.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// The class of failure: `unreachable`, `tls`, `auth`, `timeout`, `alarm` or `server`.
    #[serde(rename = "errorKind", skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<&'static str>,
    /// Active alarms of the cluster, by name (`NOSPACE`, `CORRUPT`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
    /// What the member reports about itself, when it answered.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub status: Option<MemberStatus>,
}

/// The member's status (Maintenance.Status), with IDs as hex strings.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    /// This member's ID, hex.
    pub member_id: String,
    /// The cluster ID, hex.
    pub cluster_id: String,
    /// Whether this member is the raft leader.
    pub is_leader: bool,
    /// The leader's member ID, hex (empty when there is none).
    pub leader: String,
    /// The store revision.
    pub revision: i64,
    /// The raft term.
    pub raft_term: u64,
    /// The raft index.
    pub raft_index: u64,
    /// Database file size in bytes.
    pub db_size: i64,
    /// Bytes of the database in use (3.4+).
    pub db_size_in_use: i64,
    /// The server's version.
    pub version: String,
    /// Whether the member is a learner.
    pub is_learner: bool,
    /// The storage version of its database (etcd 3.6+: `3.6.0`); absent before 3.6.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub storage_version: String,
}

impl EndpointHealth {
    /// An unhealthy result with no timing (the connection failed).
    pub fn failed(endpoint: &Endpoint, error: String, kind: Option<FailureKind>) -> Self {
        EndpointHealth {
            endpoint: endpoint.text.clone(),
            health: false,
            took: String::new(),
            error,
            error_kind: Some(kind.map(kind_name).unwrap_or("server")),
            alarms: Vec::new(),
            status: None,
        }
    }

    /// The result of an endpoint that answered the read in `took`, before alarms and status.
    fn answered(endpoint: &Endpoint, took: String, health: bool) -> Self {
        EndpointHealth {
            endpoint: endpoint.text.clone(),
            health,
            took,
            error: String::new(),
            error_kind: None,
            alarms: Vec::new(),
            status: None,
        }
    }

    /// Whether the failure was a rejected user name or password.
    pub fn is_auth_failure(&self) -> bool {
        self.error_kind == Some("auth")
    }
}

/// The JSON name of a failure class.
pub fn kind_name(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Unreachable => "unreachable",
        FailureKind::Tls => "tls",
        FailureKind::Auth => "auth",
        FailureKind::PermissionDenied => "permission",
        FailureKind::Timeout => "timeout",
        FailureKind::Server => "server",
    }
}

/// Checks one endpoint: connect, read `health`, list alarms, fetch the member status.
pub async fn endpoint(ep: &Endpoint, conn: &ConnConfig) -> EndpointHealth {
    let mut client = match client::connect(ep, conn).await {
        Ok(c) => c,
        Err(e) => return EndpointHealth::failed(ep, e.message, Some(e.kind)),
    };
    let timeout = conn.command_timeout;
    let start = Instant::now();
    let read = client::with_timeout(timeout, client.get("health", None)).await;
    let mut result = EndpointHealth::answered(ep, format_go(start.elapsed()), true);
    // A user without read access to `health` still proves that the quorum answered.
    if let Err(e) = read {
        if is_learner_refusal(&e) {
            return learner(ep, client, conn).await;
        }
        if e.kind != FailureKind::PermissionDenied {
            result.health = false;
            result.error = e.message;
            result.error_kind = Some(kind_name(e.kind));
            return result;
        }
    }
    match client::with_timeout(
        timeout,
        client.alarm(AlarmAction::Get, AlarmType::None, None),
    )
    .await
    {
        Ok(resp) => {
            result.alarms = resp
                .alarms()
                .iter()
                .map(|a| alarm_name(a.alarm()).to_string())
                .collect();
            if !result.alarms.is_empty() {
                result.health = false;
                result.error_kind = Some("alarm");
                result.error = format!(
                    "Active Alarm(s): {}",
                    result
                        .alarms
                        .iter()
                        .map(|a| format!("{a} "))
                        .collect::<String>()
                );
            }
        }
        Err(_) => {
            result.health = false;
            result.error_kind = Some("server");
            result.error = "Unable to fetch the alarm list".into();
        }
    }
    if let Ok(status) = client::with_timeout(timeout, client.status()).await {
        result.status = Some(member_status(&status));
    }
    result
}

/// The server's answer to a linearizable read on a learner (etcd 3.4+): `FailedPrecondition`,
/// "etcdserver: rpc not supported for learner".
fn is_learner_refusal(e: &client::ClientError) -> bool {
    e.message.contains("rpc not supported for learner")
}

/// Checks a learner, which refuses the linearizable read and the alarm list by design: it is
/// healthy when it serves a serializable read of `health` and follows a leader. (etcdctl reports
/// every learner unhealthy, "rpc not supported for learner", so `--cluster` fails on every
/// cluster that is adding a member as a learner.) `took` is the time of the serializable read.
async fn learner(ep: &Endpoint, mut client: client::Client, conn: &ConnConfig) -> EndpointHealth {
    let timeout = conn.command_timeout;
    let start = Instant::now();
    let read = client::with_timeout(
        timeout,
        client.get("health", Some(GetOptions::new().with_serializable())),
    )
    .await;
    let mut result = EndpointHealth::answered(ep, format_go(start.elapsed()), false);
    if let Err(e) = read {
        if e.kind != FailureKind::PermissionDenied {
            result.error = format!("learner: {}", e.message);
            result.error_kind = Some(kind_name(e.kind));
            return result;
        }
    }
    match client::with_timeout(timeout, client.status()).await {
        Ok(status) => {
            let status = member_status(&status);
            if status.leader.is_empty() {
                result.error = "learner: it has no leader".into();
                result.error_kind = Some("server");
            } else {
                result.health = true;
            }
            result.status = Some(status);
        }
        Err(e) => {
            result.error = format!("learner: cannot read its status: {}", e.message);
            result.error_kind = Some(kind_name(e.kind));
        }
    }
    result
}

/// The member's status with IDs as hex strings.
fn member_status(status: &etcd_client::StatusResponse) -> MemberStatus {
    let header = status.header();
    let member_id = header.map(|h| h.member_id()).unwrap_or(0);
    MemberStatus {
        member_id: format!("{member_id:x}"),
        cluster_id: format!("{:x}", header.map(|h| h.cluster_id()).unwrap_or(0)),
        is_leader: member_id != 0 && status.leader() == member_id,
        leader: if status.leader() == 0 {
            String::new()
        } else {
            format!("{:x}", status.leader())
        },
        revision: header.map(|h| h.revision()).unwrap_or(0),
        raft_term: status.raft_term(),
        raft_index: status.raft_index(),
        db_size: status.db_size(),
        db_size_in_use: status.raft_used_db_size(),
        version: status.version().to_string(),
        is_learner: status.is_learner(),
        storage_version: status.storage_version().to_string(),
    }
}

/// etcdctl's alarm names.
fn alarm_name(alarm: AlarmType) -> &'static str {
    match alarm {
        AlarmType::Nospace => "NOSPACE",
        AlarmType::Corrupt => "CORRUPT",
        _ => "UNKNOWN",
    }
}
