# shellcheck shell=bash
# shellcheck disable=SC2154 # repo, work, EP, SAVE, STATUS, ...: scripts/bench sets them
# The benchmark of issue 17, sourced by scripts/bench (which then calls register_store_cases):
# a snapshot of the loaded db streamed to object storage, `etcd-snap-save - | etcd-snap-store
# put s3://...`, against `etcd-snap-save FILE` (the same bytes to a local file) and against
# `etcd-snap-save - | aws s3 cp - s3://...` (the AWS CLI, v1 from PyPI), both uploads to one
# `rclone serve s3` on 127.0.0.1 (installed by scripts/setup) that stores objects as files under
# $work/s3. Wall time, CPU and peak RSS side by side: put keeps at most its part concurrency plus
# two parts in memory (16 MiB parts, 4 in flight), whatever the snapshot's size.
#
# The server is started by register_store_cases and stopped on exit (the EXIT trap is wrapped so
# that scripts/bench's own cleanup still runs after it). The AWS CLI is the machine's `aws` when
# it runs, else a pinned awscli in a venv under .deps/awscli (made once).

BENCH_PACKAGES+=(etcd-snap-store)
# The stored objects (ours and the AWS CLI's) are two more copies of the snapshot on disk.
BENCH_EXTRA_COPIES=$((${BENCH_EXTRA_COPIES:-0} + 2))
STORE=$repo/target/release/etcd-snap-store
STORE_AWSCLI_VERSION=1.46.2
STORE_BUCKET=bench
STORE_S3_PID=
export STORE STORE_BUCKET

# Prints the aws command to use, installing the pinned awscli into .deps/awscli when the machine
# has none that runs.
store_aws_cmd() {
    local venv="$repo/.deps/awscli"
    if command -v aws >/dev/null 2>&1 && aws --version >/dev/null 2>&1; then
        command -v aws
        return
    fi
    if [ ! -x "$venv/bin/aws" ] || [ "$(cat "$venv/PINNED" 2>/dev/null)" != "$STORE_AWSCLI_VERSION" ]; then
        log "installing awscli==$STORE_AWSCLI_VERSION into .deps/awscli"
        rm -rf "$venv"
        python3 -m venv "$venv" || die "python3 -m venv $venv failed"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "awscli==$STORE_AWSCLI_VERSION" ||
            die "pip install awscli==$STORE_AWSCLI_VERSION failed"
        printf '%s\n' "$STORE_AWSCLI_VERSION" >"$venv/PINNED"
    fi
    printf '%s\n' "$venv/bin/aws"
}

store_stop_server() {
    if [ -n "$STORE_S3_PID" ]; then
        kill "$STORE_S3_PID" 2>/dev/null || true
        wait "$STORE_S3_PID" 2>/dev/null || true
        STORE_S3_PID=
    fi
}

# Starts rclone serve s3 on a free port with one bucket and exports the AWS_* variables that
# both clients read.
store_start_server() {
    local rclone="$repo/.deps/rclone/bin/rclone" port
    [ -x "$rclone" ] || die "$rclone is missing: run scripts/setup"
    mkdir -p "$work/s3/$STORE_BUCKET"
    : >"$work/rclone.conf"
    port=$(free_port)
    AWS_ACCESS_KEY_ID=bench-$RANDOM
    AWS_SECRET_ACCESS_KEY=bench-secret-$RANDOM$RANDOM
    export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION=us-east-1
    export AWS_ENDPOINT_URL=http://127.0.0.1:$port
    unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL_S3 AWS_DEFAULT_REGION
    "$rclone" serve s3 --config "$work/rclone.conf" --addr "127.0.0.1:$port" \
        --auth-key "$AWS_ACCESS_KEY_ID,$AWS_SECRET_ACCESS_KEY" --no-modtime \
        --log-level NOTICE "$work/s3" >"$work/logs/rclone.log" 2>&1 &
    STORE_S3_PID=$!
    trap 'store_stop_server; cleanup' EXIT
    for _ in $(seq 100); do
        curl -s -o /dev/null "$AWS_ENDPOINT_URL/" && return 0
        kill -0 "$STORE_S3_PID" 2>/dev/null || break
        sleep 0.1
    done
    tail -20 "$work/logs/rclone.log" >&2
    die "rclone serve s3 did not start on 127.0.0.1:$port"
}

store_put() {
    set -o pipefail
    "$SAVE" --endpoints "$EP" - | "$STORE" put --force -w json "s3://$STORE_BUCKET/ours.db" >"$1"
}
store_save_file() { "$SAVE" --endpoints "$EP" "$1" >/dev/null; }
store_aws_cp() {
    set -o pipefail
    "$SAVE" --endpoints "$EP" - | "$AWS" s3 cp --only-show-errors - "s3://$STORE_BUCKET/aws.db" &&
        : >"$1"
}
# The stored object streams back, verified against its .sha256, into a full status check.
check_store_put() {
    set -o pipefail
    "$STORE" cat "s3://$STORE_BUCKET/ours.db" | "$STATUS" - -w json >/dev/null
}
check_store_aws() {
    set -o pipefail
    "$STORE" cat --no-verify "s3://$STORE_BUCKET/aws.db" | "$STATUS" - -w json >/dev/null
}
export -f check_store_put check_store_aws

register_store_cases() {
    AWS=$(store_aws_cmd)
    export AWS
    store_start_server
    add_group store "Object storage: \`etcd-snap-save - \\| etcd-snap-store put s3://…\` (rclone serve s3 on loopback)" store_save_file
    add_case store store_save_file "\`etcd-snap-save F\` (local file)" store_save_file
    add_case store store_put "\`etcd-snap-save - \\| etcd-snap-store put s3://…\`" store_put check_store_put
    add_case store store_aws_cp "\`etcd-snap-save - \\| aws s3 cp - s3://…\`" store_aws_cp check_store_aws
    target_rss "store put: peak RSS (parts in memory, not the object)" store_put 160
    target_ratio "store put: CPU time vs aws s3 cp" store_put store_aws_cp cpu 1.0
}
