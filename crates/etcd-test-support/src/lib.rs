//! Test harness for the etcd-snap workspace.
//!
//! Used only as a dev-dependency. It locates the etcd binaries that `scripts/setup` installs under
//! `<repo>/.deps`, makes a throw-away test PKI with rcgen (or, with [`OpensslPki`], the PKIs
//! users make with the `openssl` command line), and starts real etcd clusters (one or
//! three members, plain or mutual TLS, with or without auth) on free loopback ports. Everything is
//! synchronous (`std::process`); a [`Cluster`] kills its processes and removes its temporary
//! directory when dropped, also when the test panics, and its etcd processes die with the test
//! process (`PR_SET_PDEATHSIG`). An [`Sshd`] is a real OpenSSH server on a loopback port that
//! accepts one generated key, for tests that ship snapshots over `ssh`.
//!
//! ```no_run
//! use etcd_test_support::{Cluster, Version};
//! let cluster = Cluster::builder(Version::V3_5).tls().auth().start();
//! cluster.put("/app/a", "1");
//! let out = cluster.etcdctl().args(["get", "/app/a"]).output().unwrap();
//! assert!(out.status.success());
//! ```
//!
//! The tools under test run through one runner, [`Tool`] (no inherited `ETCDCTL_*`, fluent
//! assertions such as `.fails(4).one_line_error("SHA-256")`), and their offline goldens through
//! [`run_goldens`] and [`cli_goldens!`] (trycmd case files under each crate's `tests/cmd`, damaged inputs from this
//! crate's `fixtures/`).
//!
//! Functions here panic with a message that says what to do when something the tests need is
//! missing or broken: that is how a test fails.

mod bins;
mod cases;
mod certs;
mod churn;
mod cluster;
mod der;
mod etcdctl;
mod gateway;
mod goldens;
pub mod kube_apiserver;
mod matrix;
mod member;
mod must;
mod object_servers;
mod openssl_pki;
mod ports;
mod process;
mod sshd;
mod tool;
mod version;
mod wait;

pub use bins::{bbolt_cli, etcd_bin, etcd_bin_optional, repo_root};
pub use cases::{cases, Case};
pub use certs::TlsFiles;
pub use churn::{churn, etcdctl_json, etcdctl_write, Churned};
pub use cluster::{
    pid_alive, Cluster, ClusterBuilder, Prepared, ServerTls, READER_PASSWORD, READER_PREFIX,
    ROOT_PASSWORD,
};
pub use etcdctl::{run, run_ok, run_with_stdin, CmdOutput};
pub use gateway::{base64, Gateway};
pub use goldens::{assert_man_page, assert_man_renders, run_goldens, MAN_SECTIONS};
pub use matrix::run_on;
pub use object_servers::{
    AzuriteServer, GcsServer, HttpResponse, S3Kind, S3Server, AZURITE_ACCOUNT, AZURITE_KEY,
    TEST_BUCKET,
};
pub use openssl_pki::{Issued, KeyAlg, OpensslPki, EXT_CA, EXT_CLIENT, EXT_SERVER};
pub use ports::free_port;
pub use sshd::Sshd;
pub use tool::{scrubbed_vars, Run, Running, Tool, SCRUBBED_PREFIXES};
pub use version::Version;
pub use wait::wait_until;
