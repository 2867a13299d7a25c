#!/usr/bin/env bash
# Cluster benchmark (issue 11): in the same run, RUNS times each, alternating,
#   single  produce 1 KiB acks=all to a 1-partition topic on one node (no --node-id)
#   rf3     the same to a replication-factor-3 topic on a 3-node loopback cluster
#           (127.0.0.11-13, every node on this machine's 2 cores)
# and prints the medians and the ratio rf3 / single. After each produce the same node(s)
# serve a consume of the topic just written (from offset 0, assign, no group) and, unless
# SKIP_LATENCY=1, an end-to-end latency run at LAT_RATE 1 KiB messages/s (default 20000:
# 20 MB/s) for LAT_SECS (default 10) with acks=all. Then, unless SKIP_FAILOVER=1,
# the failover distribution: the cluster_failover test (debug build: election timers, not
# code speed, set the figure) with
# SLUICE_FAILOVER_KILLS kills (default 20), kill -9 of the leader -> first
# acknowledged produce, p50 / p99 / max.
#
# IDLE_PARTITIONS="100 500" adds the idle cost of that many RF 3 partitions (IDLE_SECS).
# Environment: RUNS (default 3), MSGS (default 200000), SLUICE, SLUICE_BASE, RF3_BASE,
# SKIP_SINGLE=1 (no single-node runs), SKIP_BUILD=1,
# SKIP_FAILOVER=1, KILLS (default 20), FAILOVER_BASE (a sluice binary whose failover is
# measured first by the same test, e.g. the build before a change). Raw output in
# target/bench/cluster-<timestamp>/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
RUNS=${RUNS:-3}
MSGS=${MSGS:-200000}
KILLS=${KILLS:-20}
SLUICE=${SLUICE:-$ROOT/target/release/sluice}
# SLUICE_BASE: another sluice binary (e.g. the commit before the cluster) measured as a
# single node in the same runs, so the single-node cost of the cluster code is a ratio.
SLUICE_BASE=${SLUICE_BASE:-}
# RF3_BASE: another sluice binary run as a 3-node cluster too, in each round before this
# build's, so a cluster change is measured against its base in the same session.
RF3_BASE=${RF3_BASE:-}
BENCH=$ROOT/target/release/sluice-bench
RES=$ROOT/target/bench/cluster-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RES"
echo "bench-cluster: commit $(git rev-parse --short HEAD); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg); RUNS=$RUNS MSGS=$MSGS"

if [[ -z "${SKIP_BUILD:-}" ]]; then
    cargo build --release -p sluice -p sluice-bench
fi

pids=()
dirs=()
stop_all() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for d in "${dirs[@]}"; do rm -rf "$d"; done
    pids=()
    dirs=()
}
trap stop_all EXIT

free_port() {
    python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$1"
}

# wait_brokers BOOTSTRAP N: until Metadata lists N brokers (60 s).
wait_brokers() {
    for _ in $(seq 1 120); do
        if [[ $(timeout 5 kcat -L -b "$1" -m 2 2>/dev/null | grep -c '^  broker ') -ge $2 ]]; then
            return 0
        fi
        sleep 0.5
    done
    echo "bench-cluster: $2 brokers did not show up at $1" >&2
    return 1
}

# start_node NAME IP [cluster flags...]: sets $kafka_addr to the node's Kafka address.
kafka_addr=""
start_node() {
    local name=$1 ip=$2
    shift 2
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench-cluster.XXXXXX")
    dirs+=("$dir")
    kafka_addr="$ip:$(free_port "$ip")"
    "${BINARY:-$SLUICE}" serve --data-dir "$dir" --kafka-addr "$kafka_addr" \
        --nsq-tcp-addr "$ip:$(free_port "$ip")" --http-addr "$ip:$(free_port "$ip")" \
        --mqtt-addr "$ip:$(free_port "$ip")" --mqtt-ws-addr "$ip:$(free_port "$ip")" "$@" \
        >"$RES/$name.log" 2>&1 &
    pids+=($!)
}

# start_cluster LOG_PREFIX: three nodes on 127.0.0.11-13 forming a new cluster; sets
# $bootstrap to their Kafka addresses once Metadata lists all three.
bootstrap=""
start_cluster() {
    local prefix=$1 peers="" i
    local -A caddr
    for i in 1 2 3; do
        caddr[$i]="127.0.0.1$i:$(free_port "127.0.0.1$i")"
        peers+="${peers:+,}$i@${caddr[$i]}"
    done
    bootstrap=""
    for i in 1 2 3; do
        start_node "$prefix$i" "127.0.0.1$i" --node-id "$i" --cluster-addr "${caddr[$i]}" --cluster-peers "$peers"
        bootstrap+="${bootstrap:+,}$kafka_addr"
    done
    wait_brokers "${bootstrap%%,*}" 3
}

# produce NAME BOOTSTRAP RF: one sluice-bench run, its JSON line appended to NAME.jsonl.
# Sets $last_topic for the consume that follows.
last_topic=""
produce() {
    local name=$1 bootstrap=$2 rf=$3 topic="bench-$1-$RANDOM"
    last_topic=$topic
    sync
    if [[ -w /proc/sys/vm/drop_caches ]]; then echo 3 >/proc/sys/vm/drop_caches; fi
    timeout 300 "$BENCH" produce --brokers "$bootstrap" --topic "$topic" --messages "$MSGS" --size 1024 \
        --acks all --replication-factor "$rf" --timeout-s 240 >"$RES/last.out" 2>"$RES/last.err" || true
    cat "$RES/last.out" "$RES/last.err" >>"$RES/$name.runs.log"
    local json
    json=$(grep '^{' "$RES/last.out" | tail -1 || true)
    echo "${json:-{\"complete\":false\}}" >>"$RES/$name.jsonl"
    echo "    $name: $(grep -E '^delivered' "$RES/last.out" | head -1 || echo FAILED)"
}

# record NAME: the last run's JSON line appended to NAME.jsonl, its output to NAME.runs.log.
record() {
    local name=$1 json
    cat "$RES/last.out" "$RES/last.err" >>"$RES/$name.runs.log"
    json=$(grep '^{' "$RES/last.out" | tail -1 || true)
    echo "${json:-{\"complete\":false\}}" >>"$RES/$name.jsonl"
}

# consume NAME BOOTSTRAP: reads the topic the last produce wrote, all MSGS messages.
consume() {
    local name=$1-consume bootstrap=$2
    timeout 300 "$BENCH" consume --brokers "$bootstrap" --topic "$last_topic" --messages "$MSGS" \
        --timeout-s 120 >"$RES/last.out" 2>"$RES/last.err" || true
    record "$name"
    echo "    $name: $(grep -E 'msgs/s' "$RES/last.out" | head -1 || echo FAILED)"
}

# latency NAME BOOTSTRAP RF: produce at LAT_RATE while consuming; end-to-end latency.
latency() {
    local name=$1-latency bootstrap=$2 rf=$3
    [[ -n "${SKIP_LATENCY:-}" ]] && return 0
    timeout 300 "$BENCH" latency --brokers "$bootstrap" --topic "lat-$1-$RANDOM" --rate "${LAT_RATE:-20000}" \
        --seconds "${LAT_SECS:-10}" --size 1024 --acks all --replication-factor "$rf" --timeout-s 120 \
        >"$RES/last.out" 2>"$RES/last.err" || true
    record "$name"
    echo "    $name: $(grep -E '^\{' "$RES/last.out" | tail -1 | python3 -c "import json,sys; d=json.load(sys.stdin); print('p50', d['p50_ms'], 'ms, p99', d['p99_ms'], 'ms,', d['mb_per_s'], 'MB/s')" 2>/dev/null || echo FAILED)"
}

# run_rf3 ROUND: produce, consume and latency on a fresh 3-node cluster of this build.
run_rf3() {
    echo "==> run $1: 3-node cluster, replication factor 3"
    start_cluster node
    produce rf3 "$bootstrap" 3
    consume rf3 "$bootstrap"
    latency rf3 "$bootstrap" 3
    stop_all
}

for r in $(seq 1 "$RUNS"); do
    if [[ -n "$RF3_BASE" ]]; then
        echo "==> run $r: 3-node cluster, replication factor 3, base binary $RF3_BASE"
        BINARY=$RF3_BASE start_cluster base-node
        produce rf3-base "$bootstrap" 3
        consume rf3-base "$bootstrap"
        latency rf3-base "$bootstrap" 3
        stop_all
    fi
    [[ -n "${SKIP_SINGLE:-}" ]] && { run_rf3 "$r"; continue; }
    echo "==> run $r: single node"
    start_node single 127.0.0.1
    bootstrap=$kafka_addr
    wait_brokers "$bootstrap" 1
    produce single "$bootstrap" 1
    consume single "$bootstrap"
    latency single "$bootstrap" 1
    stop_all

    if [[ -n "$SLUICE_BASE" ]]; then
        echo "==> run $r: single node, base binary $SLUICE_BASE"
        BINARY=$SLUICE_BASE start_node single-base 127.0.0.1
        bootstrap=$kafka_addr
        wait_brokers "$bootstrap" 1
        produce single-base "$bootstrap" 1
        stop_all
    fi

    run_rf3 "$r"
done

python3 - "$RES" <<'EOF'
import json, statistics, sys, pathlib
res = pathlib.Path(sys.argv[1])
def load(name):
    path = res / f"{name}.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
    return [r for r in rows if r.get("complete")]
single, rf3 = load("single"), load("rf3")
base, rf3_base = load("single-base"), load("rf3-base")
def med(rows, key):
    return statistics.median(r[key] for r in rows) if rows else float("nan")
print("| produce 1 KiB acks=all | msgs/s (median) | MB/s | p99 ms | runs |")
print("|---|---|---|---|---|")
for name, rows in (("single node, base binary", base), ("single node", single), ("3 nodes, RF 3, base binary", rf3_base), ("3 nodes, RF 3", rf3)):
    if not rows:
        continue
    print(f"| {name} | {med(rows, 'msgs_per_s'):,.0f} | {med(rows, 'mb_per_s'):.1f} | {med(rows, 'p99_ms'):.1f} | {len(rows)} |")
if single and rf3:
    print(f"\nratio RF 3 / single node: {med(rf3, 'msgs_per_s') / med(single, 'msgs_per_s'):.2f}")
if rf3 and rf3_base:
    print(f"ratio RF 3 / RF 3 base binary: {med(rf3, 'msgs_per_s') / med(rf3_base, 'msgs_per_s'):.2f}")
if single and base:
    print(f"ratio single node / base binary: {med(single, 'msgs_per_s') / med(base, 'msgs_per_s'):.2f}")
kinds = (("single node", "single"), ("3 nodes, RF 3, base binary", "rf3-base"), ("3 nodes, RF 3", "rf3"))
consumed = [(n, load(f"{k}-consume")) for n, k in kinds]
if any(rows for _, rows in consumed):
    print("\n| consume 1 KiB (from offset 0) | msgs/s (median) | MB/s | runs |")
    print("|---|---|---|---|")
    for name, rows in consumed:
        if rows:
            print(f"| {name} | {med(rows, 'msgs_per_s'):,.0f} | {med(rows, 'mb_per_s'):.1f} | {len(rows)} |")
lat = [(n, load(f"{k}-latency")) for n, k in kinds]
if any(rows for _, rows in lat):
    print("\n| end-to-end latency, 1 KiB acks=all | MB/s | p50 ms | p99 ms (median) | p99 range | p99.9 ms | runs |")
    print("|---|---|---|---|---|---|---|")
    for name, rows in lat:
        if rows:
            p99s = sorted(r["p99_ms"] for r in rows)
            print(f"| {name} | {med(rows, 'mb_per_s'):.1f} | {med(rows, 'p50_ms'):.2f} | {med(rows, 'p99_ms'):.2f} | {p99s[0]:.2f}-{p99s[-1]:.2f} | {med(rows, 'p999_ms'):.2f} | {len(rows)} |")
EOF

# Idle cost: a 3-node cluster holding N partitions of replication factor 3 (N replicas per
# node, N + 1 Raft groups), no traffic: CPU of node 1 over IDLE_SECS and its RSS.
for n in ${IDLE_PARTITIONS:-}; do
    echo "==> idle: $n partitions, replication factor 3"
    start_cluster "idle$n-node"
    timeout 300 "$BENCH" produce --brokers "$bootstrap" --topic "idle-$n" --partitions "$n" --messages "$n" --size 100 \
        --acks all --replication-factor 3 --timeout-s 240 >"$RES/idle-$n.out" 2>&1 || true
    sleep 10
    pid=${pids[0]}
    hz=$(getconf CLK_TCK)
    t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    sleep "${IDLE_SECS:-30}"
    t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="${IDLE_SECS:-30}" -v n="$n" -v rss="$rss" \
        'BEGIN {printf "idle %d partition replicas per node: node 1 CPU %.1f%% of a core, RSS %.1f MiB\n", n, 100 * (b - a) / hz / s, rss / 1024}'
    stop_all
done

# failover NAME [BINARY]: the cluster_failover test with KILLS kills, its nodes running BINARY
# (default: this build); prints p50 / p99 / max.
failover() {
    local name=$1 binary=${2:-}
    echo "==> failover: $KILLS kills (cluster_failover test)${binary:+, nodes running $binary}"
    SLUICE_FAILOVER_KILLS=$KILLS SLUICE_TEST_BINARY=$binary cargo test -p sluice --test cluster_failover -- --nocapture \
        >"$RES/$name.log" 2>&1 || { echo "failover test failed; see $RES/$name.log"; exit 1; }
    python3 - "$RES/$name.log" "$name" <<'EOF2'
import re, statistics, sys
ms = sorted(int(m) for m in re.findall(r"-> first successful produce (\d+) ms", open(sys.argv[1]).read()))
if not ms:
    sys.exit("no failover figures found")
p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
print(f"{sys.argv[2]} over {len(ms)} kills (kill -9 -> first acknowledged produce): p50 {statistics.median(ms):.0f} ms, p99 {p99} ms, max {ms[-1]} ms")
EOF2
}

if [[ -z "${SKIP_FAILOVER:-}" ]]; then
    # FAILOVER_BASE: another sluice binary run by the same test first (before/after a change).
    if [[ -n "${FAILOVER_BASE:-}" ]]; then
        failover failover-base "$FAILOVER_BASE"
    fi
    failover failover
fi
echo "raw output: $RES"
