//! Free loopback ports for etcd members.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Mutex, PoisonError};

/// Ports this process has handed out already; never handed out twice.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close).
///
/// Never returns the same port twice within one process. Another process may still grab it
/// before etcd binds it; [`ClusterBuilder::start`](crate::ClusterBuilder::start) retries once with
/// new ports when etcd fails with "address already in use".
pub fn free_port() -> u16 {
    let mut guard = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    let used = guard.get_or_insert_with(HashSet::new);
    for _ in 0..1000 {
        let listener = match TcpListener::bind(("127.0.0.1", 0)) {
            Ok(l) => l,
            Err(e) => panic!("cannot bind 127.0.0.1:0 to find a free port: {e}"),
        };
        let port = match listener.local_addr() {
            Ok(a) => a.port(),
            Err(e) => panic!("cannot read the port of a listener on 127.0.0.1: {e}"),
        };
        if used.insert(port) {
            return port;
        }
    }
    panic!("found no loopback port not handed out before in 1000 tries");
}
