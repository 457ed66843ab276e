# shellcheck shell=bash
# shellcheck disable=SC2154 # repo, work, LOAD, db_size, ...: scripts/bench sets them
# The benchmarks of issue 20, sourced by scripts/bench (which then calls register_diff_cases):
#   - `etcd-snap-status --hashkv` on the loaded snapshot vs `etcdutl hashkv` (the --etcd version's,
#     or 3.6's when that one has no hashkv: 3.4 and 3.5). etcdutl opens the file read-write and
#     rewrites its meta pages, so it runs on a copy made once, never on "$SNAP".
#   - `etcd-snap-diff` of two snapshots of the loaded db differing in 1% of its keys (the first
#     1% of the load's keys overwritten with new values between the two), time and peak RSS: a
#     streaming merge of two sorted key walks, so memory must stay flat whatever the db size.
# Uses scripts/bench's variables (repo, work, EP, ETCDCTL, ETCDUTL, STATUS, LOAD, SNAP, db_size,
# value_size) and its helpers (add_group, add_case, target_ratio, target_rss, log, die).
# Preparing the second snapshot writes to the loaded etcd: the rows of the save group then copy
# a db 1% larger than the one the report describes.

BENCH_PACKAGES+=(etcd-snap-diff)
# etcdutl's copy of the snapshot and the second snapshot are two more copies of the db on disk.
BENCH_EXTRA_COPIES=$((${BENCH_EXTRA_COPIES:-0} + 2))
DIFF=$repo/target/release/etcd-snap-diff
HASHKV_ETCDUTL=$ETCDUTL
if ! "$HASHKV_ETCDUTL" hashkv --help >/dev/null 2>&1; then
    HASHKV_ETCDUTL=$(find "$repo/.deps" -path '*/etcd-3.6*/bin/etcdutl' -print -quit)
fi
SNAP_HASHKV=$work/snapshot-for-etcdutl.db
SNAP_B=$work/snapshot-b.db
HASHKV_REFERENCE=$work/hashkv-reference.json
DIFF_CHANGED=0
export DIFF HASHKV_ETCDUTL SNAP_HASHKV SNAP_B HASHKV_REFERENCE DIFF_CHANGED

# --- hashkv ------------------------------------------------------------------------------------
hashkv_etcdutl() { "$HASHKV_ETCDUTL" hashkv "$SNAP_HASHKV" -w json >"$1"; }
hashkv_ours() { "$STATUS" --hashkv "$SNAP" -w json >"$1"; }
hashkv_ours_nohash() { "$STATUS" --hashkv --skip-hash-check "$SNAP" -w json >"$1"; }
# The hash and compact revision of the report in "$1" are etcdutl's (JSON at any depth).
check_same_hashkv() {
    python3 - "$1" "$HASHKV_REFERENCE" <<'PY'
import json, sys
def find(v):
    if isinstance(v, dict):
        if "hash" in v and ("compactRevision" in v or "compact_revision" in v):
            return (v["hash"], v.get("compactRevision", v.get("compact_revision")))
        for x in v.values():
            r = find(x)
            if r: return r
    return None
ours, ref = find(json.load(open(sys.argv[1]))), find(json.load(open(sys.argv[2])))
sys.exit(0 if ours and ours == ref else 1)
PY
}

# --- diff --------------------------------------------------------------------------------------
# Exit 1 is the tool saying "different", the expected answer here.
diff_ours() {
    local rc=0
    "$DIFF" "$SNAP" "$SNAP_B" -w json >"$1" || rc=$?
    [ "$rc" -eq 1 ]
}
diff_ours_nohash() {
    local rc=0
    "$DIFF" --skip-hash-check "$SNAP" "$SNAP_B" -w json >"$1" || rc=$?
    [ "$rc" -eq 1 ]
}
# The floor of the diff: what it must read anyway, the hashkv of both sides.
diff_hashkv_both() { "$STATUS" --hashkv "$SNAP" -w json >"$1" && "$STATUS" --hashkv "$SNAP_B" -w json >>"$1"; }
# Exactly the overwritten keys are reported changed, nothing added or removed.
check_diff() {
    jq -e --argjson n "$DIFF_CHANGED" \
        '.changed == $n and .added == 0 and .removed == 0 and (.changes | length) == $n' "$1" >/dev/null
}
export -f check_same_hashkv check_diff

register_diff_cases() {
    if [ -z "$HASHKV_ETCDUTL" ] || [ ! -x "$HASHKV_ETCDUTL" ]; then
        die "no etcdutl with hashkv (3.6+) in .deps (run scripts/setup)"
    fi
    # Not timed: the copy for etcdutl, its reference hash, and the second snapshot.
    cp "$SNAP" "$SNAP_HASHKV"
    "$HASHKV_ETCDUTL" hashkv "$SNAP_HASHKV" -w json >"$HASHKV_REFERENCE"
    # The first 1% of the load's keys (same prefix and numbering) get new values; the live db
    # grows by that much, which the later rows of other groups see (1%).
    local bytes=$((db_size / 100))
    log "overwriting 1% of the keys ($bytes value bytes) for the second snapshot"
    "$LOAD" --endpoints "$EP" --bytes "$bytes" \
        --value-size "$value_size" --fill random --quiet >/dev/null
    "$ETCDCTL" --endpoints "$EP" snapshot save "$SNAP_B" >/dev/null 2>"$work/logs/snapshot-b.log"
    DIFF_CHANGED=$("$ETCDCTL" --endpoints "$EP" get /bench/ --prefix --keys-only -w json |
        jq '[.kvs[] | select(.version > 1)] | length')
    export DIFF_CHANGED
    log "second snapshot: $DIFF_CHANGED keys changed"

    add_group hashkv "Hashkv: \`etcd-snap-status --hashkv\` vs \`etcdutl hashkv\` (on a copy)" hashkv_etcdutl
    add_case hashkv hashkv_etcdutl "\`etcdutl hashkv F\`" hashkv_etcdutl check_same_hashkv
    add_case hashkv hashkv_ours "\`etcd-snap-status --hashkv F\` (also verifies the SHA-256)" hashkv_ours check_same_hashkv
    add_case hashkv hashkv_ours_nohash "\`etcd-snap-status --hashkv --skip-hash-check F\`" hashkv_ours_nohash check_same_hashkv
    target_ratio "hashkv, the same work as etcdutl (no SHA-256): wall time vs etcdutl" hashkv_ours_nohash hashkv_etcdutl wall 1.0
    target_ratio "hashkv (also verifies the SHA-256): wall time vs etcdutl" hashkv_ours hashkv_etcdutl wall 2.0
    target_rss "hashkv: peak RSS" hashkv_ours 64

    add_group diff "Diff: \`etcd-snap-diff A B\`, two snapshots differing in 1% of keys" diff_hashkv_both
    add_case diff diff_hashkv_both "\`etcd-snap-status --hashkv\` of A, then of B (what the diff hashes anyway)" diff_hashkv_both
    add_case diff diff_ours "\`etcd-snap-diff A B -w json\`" diff_ours check_diff
    add_case diff diff_ours_nohash "\`etcd-snap-diff --skip-hash-check A B -w json\`" diff_ours_nohash check_diff
    target_ratio "diff: wall time vs hashkv of both sides" diff_ours diff_hashkv_both wall 2.0
    target_rss "diff: peak RSS (flat: bounded sort runs)" diff_ours 128
}
