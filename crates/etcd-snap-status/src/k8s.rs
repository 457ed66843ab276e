//! `--k8s`: the inventory of the Kubernetes objects in a snapshot, taken over its live keys.
//!
//! Why it exists: the plain status says whether a backup is sound; this says what it holds and
//! how sensitive it is. It is a second pass over the `key` bucket, run only when asked, so the
//! plain status path costs nothing more.

use etcd_common::Result;
use k8s_registry::Inventory;

/// Tallies every live key of `db` into an inventory of the objects under `prefix`.
pub fn inventory(db: &bbolt::Db, prefix: &str, name: &str) -> Result<Inventory> {
    let mut inventory = Inventory::new(prefix);
    etcd_db::visit_live(db, |_| true, |kv| inventory.add(kv.key, kv.value))
        .map_err(|e| etcd_common::snapshot::db_error(name, e))?;
    Ok(inventory)
}
