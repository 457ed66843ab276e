//! Starting, stopping and talking to an etcd test cluster.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

use crate::etcdctl;
use crate::member::{remove_dir, ClusterState, Layout, MemberSpec};
use crate::must::Must;
use crate::process::{self, SpawnHandle, Spawner};
use crate::{etcd_bin, TlsFiles, Version};

/// Password of the user `root` when [`ClusterBuilder::auth`] is on.
pub const ROOT_PASSWORD: &str = "rootpw";
/// Password of the user `reader` when [`ClusterBuilder::auth`] is on.
pub const READER_PASSWORD: &str = "readerpw";
/// The only key prefix `reader` may read (so reading `health` is denied).
pub const READER_PREFIX: &str = "/app/";

/// How long [`ClusterBuilder::start`] and [`Cluster::restart_member`] wait for members.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long [`Cluster::stop_member`] waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Log lines shown when a member fails.
const LOG_TAIL: usize = 40;

/// The member processes, shared with the `start_late` thread; `None` = not running.
type Children = Arc<Mutex<Vec<Option<Child>>>>;

/// Locks the member processes, ignoring poisoning (a panicking test must still clean up).
fn lock(children: &Children) -> MutexGuard<'_, Vec<Option<Child>>> {
    children.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The TLS files of a cluster with mutual TLS on its client URLs: what each member serves and
/// trusts, and the client files the harness's own etcdctl uses. Made from a generated
/// [`TlsFiles`], or by a test for [`ClusterBuilder::tls_from`].
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// `--trusted-ca-file`: the CA bundle the members verify client certificates with.
    pub trusted_ca: PathBuf,
    /// `--cert-file`: the server certificate (and chain) the members present.
    pub cert: PathBuf,
    /// `--key-file`: the server key.
    pub key: PathBuf,
    /// `--cacert` of the harness's etcdctl: verifies the members' certificate.
    pub client_cacert: PathBuf,
    /// `--cert` of the harness's etcdctl: a client certificate the members accept.
    pub client_cert: PathBuf,
    /// `--key` of the harness's etcdctl.
    pub client_key: PathBuf,
}

impl From<&TlsFiles> for ServerTls {
    /// The server files of a generated PKI, with the `root` client certificate.
    fn from(files: &TlsFiles) -> ServerTls {
        ServerTls {
            trusted_ca: files.ca.clone(),
            cert: files.server_cert.clone(),
            key: files.server_key.clone(),
            client_cacert: files.ca.clone(),
            client_cert: files.client_cert.clone(),
            client_key: files.client_key.clone(),
        }
    }
}

/// Configures a cluster; made by [`Cluster::builder`].
#[derive(Debug, Clone)]
#[must_use = "a ClusterBuilder does nothing until .start()"]
pub struct ClusterBuilder {
    /// The etcd version.
    version: Version,
    /// How many members.
    members: usize,
    /// Mutual TLS on client URLs with a generated PKI.
    tls: bool,
    /// Mutual TLS on client URLs with the test's own files.
    server_tls: Option<ServerTls>,
    /// Users, roles and `auth enable` after start.
    auth: bool,
    /// Extra etcd flags.
    extra_args: Vec<String>,
    /// Start the members this long after `start()` returns.
    start_late: Option<Duration>,
}

impl ClusterBuilder {
    /// The number of members: 1 (the default) or 3 (any n ≥ 1 works).
    pub fn members(mut self, n: usize) -> Self {
        assert!(n >= 1, "a cluster needs at least one member");
        self.members = n;
        self
    }

    /// Mutual TLS on the client URLs (`https://`): members run with `--client-cert-auth
    /// --trusted-ca-file --cert-file --key-file` from a fresh [`TlsFiles`]. Peers stay plain http.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self.server_tls = None;
        self
    }

    /// Mutual TLS on the client URLs with certificates the test made itself (e.g. with
    /// [`OpensslPki`](crate::OpensslPki)): members run with `--client-cert-auth` and
    /// `files`' `--trusted-ca-file --cert-file --key-file`, and the harness's own etcdctl (start
    /// probe, [`Cluster::etcdctl`], [`Cluster::put`]) uses its client files.
    /// [`Cluster::tls_files`] is then `None`. Replaces [`tls`](Self::tls).
    pub fn tls_from(mut self, files: ServerTls) -> Self {
        self.tls = false;
        self.server_tls = Some(files);
        self
    }

    /// After start, creates user `root` (password [`ROOT_PASSWORD`], role `root`) and user
    /// `reader` (password [`READER_PASSWORD`], role `app-reader`: read on prefix
    /// [`READER_PREFIX`] only), then runs `auth enable`.
    pub fn auth(mut self) -> Self {
        self.auth = true;
        self
    }

    /// One extra etcd flag for every member, e.g. `"--quota-backend-bytes=16777216"`.
    pub fn arg(mut self, a: &str) -> Self {
        self.extra_args.push(a.to_string());
        self
    }

    /// Allocates ports (and TLS files) now but starts the members from a background thread
    /// after `delay`; [`start`](Self::start) then returns at once (for `--wait`-style tests).
    ///
    /// The late start does not retry on a port clash and reports failures only on stderr; the
    /// users of [`auth`](Self::auth) appear shortly after the members answer. Use
    /// [`Cluster::wait_ready`] to block until the members answer.
    pub fn start_late(mut self, delay: Duration) -> Self {
        self.start_late = Some(delay);
        self
    }

    /// Starts the cluster and waits (up to 20 s) until every member answers its health check;
    /// panics with the tail of the member's log otherwise. Retries once with new ports when a
    /// member fails with "address already in use".
    #[track_caller]
    pub fn start(self) -> Cluster {
        let members = self.members;
        let auth = self.auth;
        let start_late = self.start_late;
        let mut cluster = self.build();
        if let Some(delay) = start_late {
            cluster.late = Some(start_late_thread(&cluster, delay));
            return cluster;
        }
        for attempt in 1..=2 {
            cluster.launch_all();
            match wait_ready(&cluster.layout, &cluster.children, READY_TIMEOUT, || false) {
                Ok(()) => break,
                Err(failure) if failure.address_in_use && attempt == 1 => {
                    eprintln!("etcd-test-support: a port was taken, retrying with new ports");
                    cluster.kill_all();
                    for i in 0..cluster.layout.members.len() {
                        remove_dir(&cluster.layout.data_dir(i));
                        cluster
                            .layout
                            .log_marker(i, "address already in use: retrying with new ports");
                    }
                    cluster.layout.members = (0..members).map(MemberSpec::new).collect();
                    cluster.layout.token = new_token();
                }
                Err(failure) => panic!("{}", failure.message),
            }
        }
        if auth {
            if let Err(e) = cluster.layout.setup_auth() {
                panic!("cannot set up auth on the test cluster: {e}");
            }
        }
        cluster
    }

    /// Allocates the temp dir, ports, token and TLS files but starts nothing: for booting data
    /// dirs made by a restore. Fill each member's [`Cluster::data_dir`] (through
    /// [`Prepared::cluster`]), then [`Prepared::start`]. (No users are created, whatever
    /// [`auth`](Self::auth) says: a restored database brings its own.)
    #[track_caller]
    pub fn prepare(self) -> Prepared {
        Prepared {
            cluster: self.build(),
        }
    }

    /// The cluster with its directory and ports, no process started.
    #[track_caller]
    fn build(&self) -> Cluster {
        // Fail early, on the caller's thread, when the binaries are missing.
        etcd_bin(self.version, "etcd");
        etcd_bin(self.version, "etcdctl");
        sweep_stale_dirs();
        let dir = tempfile::Builder::new()
            .prefix(&format!(
                "{DIR_PREFIX}{}-{}-",
                std::process::id(),
                self.version.label()
            ))
            .tempdir_in(std::env::temp_dir())
            .must(|| {
                format!(
                    "cannot create a temp dir in {}",
                    std::env::temp_dir().display()
                )
            });
        let tls = self
            .tls
            .then(|| TlsFiles::generate(&dir.path().join("pki")));
        let server_tls = match &tls {
            Some(files) => Some(ServerTls::from(files)),
            None => self.server_tls.clone(),
        };
        let layout = Layout {
            version: self.version,
            dir: dir.path().to_path_buf(),
            members: (0..self.members).map(MemberSpec::new).collect(),
            tls,
            server_tls,
            auth: self.auth,
            extra_args: self.extra_args.clone(),
            token: new_token(),
        };
        let spawner = Spawner::new();
        let children: Children = Arc::new(Mutex::new((0..self.members).map(|_| None).collect()));
        Cluster {
            layout,
            children,
            late: None,
            spawner,
            dir,
        }
    }
}

/// A cluster whose directory and ports exist but whose members have not started: made by
/// [`ClusterBuilder::prepare`] so a test can restore a snapshot into each member's data dir first.
#[must_use = "a Prepared cluster does nothing until .start()"]
pub struct Prepared {
    cluster: Cluster,
}

impl Prepared {
    /// `m0=http://127.0.0.1:P0,m1=...`: the `--initial-cluster` of these members.
    pub fn initial_cluster(&self) -> String {
        (0..self.cluster.len())
            .map(|i| {
                format!(
                    "{}={}",
                    self.cluster.member_name(i),
                    self.cluster.peer_urls()[i]
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The `--initial-cluster-token` the members will be started with.
    pub fn token(&self) -> &str {
        self.cluster.token()
    }

    /// The cluster (not running yet), for names, URLs and directories.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Starts every member on its (filled) data dir and waits until each answers; panics with
    /// the member's log otherwise.
    #[track_caller]
    pub fn start(self) -> Cluster {
        let mut cluster = self.cluster;
        cluster.launch_all();
        if let Err(failure) =
            wait_ready(&cluster.layout, &cluster.children, READY_TIMEOUT, || false)
        {
            panic!("{}", failure.message);
        }
        cluster
    }
}

/// Temp dirs are named `etcd-snap-test-<pid>-<version>-XXXXXX`.
const DIR_PREFIX: &str = "etcd-snap-test-";

/// Removes the temp dirs of test processes that died without dropping their clusters
/// (SIGKILL, abort): those whose `<pid>` no longer exists. Best effort.
fn sweep_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        let Some(Ok(pid)) = rest.split('-').next().map(str::parse::<u32>) else {
            continue;
        };
        if !process::pid_alive(pid) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A unique `--initial-cluster-token`.
fn new_token() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("etcd-snap-test-{}-{nanos}", std::process::id())
}

/// Why members did not become ready.
struct ReadyFailure {
    /// A member's log says a port was taken.
    address_in_use: bool,
    /// What happened, with the member's log tail.
    message: String,
}

/// Waits until every running member answers its probe, a member exits, or `timeout` passes.
/// `cancelled` is polled so the `start_late` thread can give up when the cluster is dropped.
fn wait_ready(
    layout: &Layout,
    children: &Children,
    timeout: Duration,
    mut cancelled: impl FnMut() -> bool,
) -> Result<(), ReadyFailure> {
    let deadline = Instant::now() + timeout;
    let n = layout.members.len();
    let mut ready = vec![false; n];
    loop {
        for i in 0..n {
            if ready[i] {
                continue;
            }
            {
                let mut ch = lock(children);
                match ch[i].as_mut().map(Child::try_wait) {
                    None => {
                        ready[i] = true; // not running: nothing to wait for
                        continue;
                    }
                    Some(Ok(Some(status))) => {
                        return Err(ReadyFailure {
                            address_in_use: layout.address_in_use(i),
                            message: format!(
                                "etcd {} member {} exited during start ({status}); log {}:\n{}",
                                layout.version.label(),
                                layout.members[i].name,
                                layout.log_path(i).display(),
                                layout.log_tail(i, LOG_TAIL)
                            ),
                        });
                    }
                    Some(_) => {}
                }
            }
            ready[i] = layout.probe(i);
        }
        if ready.iter().all(|&r| r) {
            return Ok(());
        }
        if cancelled() {
            return Err(ReadyFailure {
                address_in_use: false,
                message: "cancelled".into(),
            });
        }
        if Instant::now() >= deadline {
            let i = ready.iter().position(|&r| !r).unwrap_or(0);
            return Err(ReadyFailure {
                address_in_use: layout.address_in_use(i),
                message: format!(
                    "etcd {} member {} ({}) did not become healthy within {timeout:?}; log {}:\n{}",
                    layout.version.label(),
                    layout.members[i].name,
                    layout.client_url(i),
                    layout.log_path(i).display(),
                    layout.log_tail(i, LOG_TAIL)
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Spawns member `i` through `spawner` and stores the child.
fn launch(
    layout: &Layout,
    children: &Children,
    spawner: &SpawnHandle,
    i: usize,
    state: ClusterState,
) -> Result<(), String> {
    let cmd = layout.etcd_command(i, state);
    let child = spawner.spawn(cmd).map_err(|e| {
        format!(
            "cannot start {}: {e}",
            etcd_bin(layout.version, "etcd").display()
        )
    })?;
    lock(children)[i] = Some(child);
    Ok(())
}

/// The `start_late` thread: waits `delay` (or until the cluster is dropped), starts every
/// member, waits for them and sets up auth. Failures go to stderr.
fn start_late_thread(cluster: &Cluster, delay: Duration) -> (Sender<()>, JoinHandle<()>) {
    let (cancel_tx, cancel_rx): (Sender<()>, Receiver<()>) = channel();
    let layout = cluster.layout.clone();
    let children = Arc::clone(&cluster.children);
    let spawner = cluster.spawner.handle();
    let thread = std::thread::Builder::new()
        .name("etcd-start-late".into())
        .spawn(move || {
            if !matches!(
                cancel_rx.recv_timeout(delay),
                Err(RecvTimeoutError::Timeout)
            ) {
                return; // the cluster was dropped first
            }
            for i in 0..layout.members.len() {
                if let Err(e) = launch(&layout, &children, &spawner, i, ClusterState::New) {
                    eprintln!("etcd-test-support: start_late: {e}");
                    return;
                }
            }
            let cancelled = || matches!(cancel_rx.try_recv(), Err(TryRecvError::Disconnected));
            if let Err(f) = wait_ready(&layout, &children, READY_TIMEOUT, cancelled) {
                eprintln!("etcd-test-support: start_late: {}", f.message);
                return;
            }
            if layout.auth {
                if let Err(e) = layout.setup_auth() {
                    eprintln!("etcd-test-support: start_late: cannot set up auth: {e}");
                }
            }
        })
        .unwrap_or_else(|e| panic!("cannot start the start_late thread: {e}"));
    (cancel_tx, thread)
}

/// A running etcd test cluster on 127.0.0.1. Dropping it kills every member (SIGKILL), waits
/// for them and removes its temporary directory; this also happens when the test panics.
pub struct Cluster {
    /// Ports, files and flags of the members.
    layout: Layout,
    /// The member processes.
    children: Children,
    /// The `start_late` thread and its cancel channel (dropping the sender cancels).
    late: Option<(Sender<()>, JoinHandle<()>)>,
    /// Forks every member; see [`crate::process`]. Dropped after the members are killed.
    spawner: Spawner,
    /// Dropped last: removes the directory.
    dir: TempDir,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("version", &self.layout.version)
            .field("endpoints", &self.endpoints())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// A builder for a cluster of `version`: one member, plain http, no auth.
    pub fn builder(version: Version) -> ClusterBuilder {
        ClusterBuilder {
            version,
            members: 1,
            tls: false,
            server_tls: None,
            auth: false,
            extra_args: Vec::new(),
            start_late: None,
        }
    }

    /// The etcd version the members run.
    pub fn version(&self) -> Version {
        self.layout.version
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.layout.members.len()
    }

    /// Always false: a cluster has at least one member.
    pub fn is_empty(&self) -> bool {
        self.layout.members.is_empty()
    }

    /// Client URLs with scheme, one per member: `http://127.0.0.1:PORT` or `https://...`.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.len()).map(|i| self.layout.client_url(i)).collect()
    }

    /// Client addresses without scheme (`127.0.0.1:PORT`), as etcdctl users type them.
    pub fn host_ports(&self) -> Vec<String> {
        self.layout
            .members
            .iter()
            .map(MemberSpec::host_port)
            .collect()
    }

    /// The name of member `i`: `m0`, `m1`, ...
    pub fn member_name(&self, i: usize) -> String {
        self.layout.members[i].name.clone()
    }

    /// Peer URLs (`http://127.0.0.1:PORT`), one per member.
    pub fn peer_urls(&self) -> Vec<String> {
        self.layout
            .members
            .iter()
            .map(MemberSpec::peer_url)
            .collect()
    }

    /// The `--initial-cluster-token` the members were started with.
    pub fn token(&self) -> &str {
        &self.layout.token
    }

    /// The PKI when the cluster was built with [`ClusterBuilder::tls`].
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.layout.tls.as_ref()
    }

    /// Whether [`ClusterBuilder::auth`] was requested.
    pub fn auth_enabled(&self) -> bool {
        self.layout.auth
    }

    /// The data directory of member `i` (`<dir>/mN`).
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.layout.data_dir(i)
    }

    /// The log file of member `i` (`<dir>/mN.log`, stdout and stderr).
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.layout.log_path(i)
    }

    /// The last `lines` lines of member `i`'s log.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        self.layout.log_tail(i, lines)
    }

    /// The cluster's temporary directory, removed on drop; tests may put files in it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The pid of member `i` while it runs (has not been stopped or killed by this harness).
    pub fn pid(&self, i: usize) -> Option<u32> {
        lock(&self.children)[i].as_ref().map(Child::id)
    }

    /// Whether member `i` is running (started and not exited).
    pub fn is_running(&self, i: usize) -> bool {
        matches!(
            lock(&self.children)[i].as_mut().map(Child::try_wait),
            Some(Ok(None))
        )
    }

    /// Waits (up to 20 s) until every started member answers its health check; panics with the
    /// member's log tail otherwise. After [`ClusterBuilder::start_late`], first waits until the
    /// members have been started.
    #[track_caller]
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        if self.late.is_some() {
            crate::wait_until(READY_TIMEOUT, Duration::from_millis(20), || {
                lock(&self.children).iter().all(Option::is_some)
            });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(f) = wait_ready(&self.layout, &self.children, left, || false) {
            panic!("{}", f.message);
        }
    }

    /// Sends SIGTERM to member `i` and waits for it to exit (SIGKILL after 10 s).
    pub fn stop_member(&mut self, i: usize) {
        if let Some(mut child) = lock(&self.children)[i].take() {
            process::terminate(&mut child, STOP_GRACE);
        }
    }

    /// Sends SIGKILL to member `i` and waits for it to exit.
    pub fn kill_member(&mut self, i: usize) {
        if let Some(mut child) = lock(&self.children)[i].take() {
            process::kill(&mut child);
        }
    }

    /// Starts member `i` again with the same data dir, ports and flags
    /// (`--initial-cluster-state existing`) and waits until it answers; panics with its log
    /// tail otherwise. Panics if it is still running.
    #[track_caller]
    pub fn restart_member(&mut self, i: usize) {
        if self.is_running(i) {
            panic!(
                "member {} is still running: call stop_member({i}) or kill_member({i}) before restart_member({i})",
                self.layout.members[i].name
            );
        }
        lock(&self.children)[i] = None;
        self.layout.log_marker(i, "restart");
        let spawner = self.spawner.handle();
        if let Err(e) = launch(
            &self.layout,
            &self.children,
            &spawner,
            i,
            ClusterState::Existing,
        ) {
            panic!("{e}");
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = lock(&self.children)[i].as_mut().map(Child::try_wait) {
                panic!(
                    "etcd member {} exited after restart ({status}); log {}:\n{}",
                    self.layout.members[i].name,
                    self.log_path(i).display(),
                    self.log_tail(i, LOG_TAIL)
                );
            }
            if self.layout.probe(i) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "etcd member {} did not become healthy within {READY_TIMEOUT:?} after restart; log {}:\n{}",
                    self.layout.members[i].name,
                    self.log_path(i).display(),
                    self.log_tail(i, LOG_TAIL)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// This version's `etcdctl` with `ETCDCTL_API=3` (every other inherited `ETCDCTL_*`/`ETCD_*`
    /// removed), `--endpoints` = every voting member's client URL (learners of
    /// [`add_learner`](Self::add_learner) refuse most requests), the `root` client certificate when
    /// TLS is on (with [`ClusterBuilder::tls_from`]: its client files), and `--user=root:rootpw`
    /// when auth is on. Add the subcommand with `.args()`.
    pub fn etcdctl(&self) -> Command {
        self.etcdctl_as(self.layout.auth.then_some("root"))
    }

    /// Like [`etcdctl`](Self::etcdctl) with chosen credentials: `Some("root")`,
    /// `Some("reader")` (their passwords are filled in), `Some("name:password")` as is, or
    /// `None` for no `--user`. With TLS the `root` client certificate is still passed, and etcd
    /// takes its CN (`root`) as the user when no `--user` is given.
    pub fn etcdctl_as(&self, user: Option<&str>) -> Command {
        let voters: Vec<usize> = (0..self.len()).filter(|&i| !self.is_learner(i)).collect();
        self.layout.etcdctl(&voters, user)
    }

    /// Whether member `i` was added by [`add_learner`](Self::add_learner) (and so is a
    /// non-voting learner: this harness never promotes it).
    pub fn is_learner(&self, i: usize) -> bool {
        self.layout.members[i].learner
    }

    /// Adds a learner the way an operator does: `etcdctl member add mN --learner
    /// --peer-urls=...` against the voting members, then starts member `N` with
    /// `--initial-cluster-state=existing` and waits (up to 20 s) until it answers; returns `N`.
    /// Panics with etcdctl's output or the member's log tail on failure.
    ///
    /// A learner serves only `Status`, serializable reads and `Snapshot`: with
    /// [`ClusterBuilder::auth`] it cannot authenticate, so it is probed without `--user`.
    #[track_caller]
    pub fn add_learner(&mut self) -> usize {
        let i = self.len();
        let mut spec = MemberSpec::new(i);
        spec.learner = true;
        let user = self.layout.auth.then_some("root");
        // etcd refuses a new member ("etcdserver: unhealthy cluster") until the voting members
        // have been connected for 5 s (its strict reconfiguration check): retry until then. A
        // cluster started with `.arg("--strict-reconfig-check=false")` takes it at once.
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let mut add = self.etcdctl_as(user);
            add.args([
                "member".to_string(),
                "add".to_string(),
                spec.name.clone(),
                "--learner".to_string(),
                format!("--peer-urls={}", spec.peer_url()),
            ]);
            match etcdctl::try_run(&mut add) {
                Ok(_) => break,
                Err(e) if e.contains("unhealthy cluster") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("cannot add a learner: {e}"),
            }
        }
        self.layout.members.push(spec);
        lock(&self.children).push(None);
        self.restart_member(i);
        i
    }

    /// Like [`etcdctl_as`](Self::etcdctl_as) but with `--endpoints` limited to `members`
    /// (etcdctl appends repeated `--endpoints` flags, so they cannot be overridden later).
    pub fn etcdctl_on(&self, members: &[usize], user: Option<&str>) -> Command {
        self.layout.etcdctl(members, user)
    }

    /// This version's bare `etcdctl`: `ETCDCTL_API=3`, inherited etcd variables removed, no
    /// flags at all (tests add their own `--endpoints`, TLS files, ...).
    pub fn etcdctl_raw(&self) -> Command {
        etcdctl::base(&etcd_bin(self.layout.version, "etcdctl"))
    }

    /// `etcdctl put key value` (as root when auth is on); panics with etcdctl's output on failure.
    #[track_caller]
    pub fn put(&self, key: &str, value: &str) {
        etcdctl::run_ok(self.etcdctl().args(["put", "--", key, value]));
    }

    /// `etcdctl get --print-value-only key` (as root when auth is on): the value, or `None` when
    /// the key does not exist; panics on failure.
    #[track_caller]
    pub fn get(&self, key: &str) -> Option<String> {
        let out = etcdctl::run_ok(
            self.etcdctl()
                .args(["get", "--print-value-only", "--", key]),
        );
        out.strip_suffix('\n').map(str::to_string)
    }

    /// Starts every member through the spawner; panics if one cannot be started.
    fn launch_all(&mut self) {
        let spawner = self.spawner.handle();
        for i in 0..self.len() {
            if let Err(e) = launch(&self.layout, &self.children, &spawner, i, ClusterState::New) {
                panic!("{e}");
            }
        }
    }

    /// SIGKILLs and reaps every running member.
    fn kill_all(&mut self) {
        for child in lock(&self.children).iter_mut() {
            if let Some(mut c) = child.take() {
                process::kill(&mut c);
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some((cancel, thread)) = self.late.take() {
            drop(cancel);
            let _ = thread.join();
        }
        self.kill_all();
        // Then `spawner` stops its thread and `dir` removes the directory (field order).
    }
}

/// Whether a process with this pid still exists (for tests that check nothing is left).
pub fn pid_alive(pid: u32) -> bool {
    process::pid_alive(pid)
}
