#!/usr/bin/env bash
# Measures this machine's ceilings, to quote broker figures as ratios of
# them (the machines are shared and noisy, so absolute numbers drift):
#   - fio sequential writes on the filesystem of the data dir:
#       64 KiB writes, fdatasync after every write  (~ one Kafka batch per fsync)
#       1 MiB writes, fdatasync after every write   (~ large group commits)
#       4 KiB writes, fdatasync after every write   (fsync latency floor)
#       1 MiB writes, buffered, one fsync at the end (sustained disk write)
#       1 MiB writes, buffered, no fsync             (page-cache write ceiling)
#   - iperf3 over loopback, one TCP stream.
#
# Usage: scripts/bench-baselines.sh            (uses $BENCH_DIR, else $TMPDIR, else /tmp)
# Each figure is printed as a human line and as a machine line:
#   BASELINE <name> <value>
# Runtime: about 35 s (each test is time-bounded).
set -euo pipefail

BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
SECS=${BASELINE_SECS:-5}

for tool in fio iperf3 python3; do
    command -v "$tool" >/dev/null || { echo "bench-baselines: $tool not installed" >&2; exit 1; }
done

work=$(mktemp -d "$BENCH_DIR/sluice-baseline.XXXXXX")
iperf_pid=""
cleanup() {
    if [[ -n "$iperf_pid" ]] && kill -0 "$iperf_pid" 2>/dev/null; then
        kill "$iperf_pid" 2>/dev/null || true
        wait "$iperf_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

fs=$(df -PT "$work" | awk 'NR==2 {print $2" on "$1" mounted at "$7}')
echo "baselines: dir $work ($fs), ${SECS}s per test"

# fio_run NAME BS EXTRA_ARGS... -> prints MB/s (10^6 B/s) and, for synced
# runs, the fdatasync latency p50/p99.
fio_run() {
    local name=$1 bs=$2
    shift 2
    local out="$work/$name.json"
    timeout $((SECS + 30)) fio --name="$name" --directory="$work" --filename="$name.dat" \
        --rw=write --bs="$bs" --size=4g --ioengine=sync --direct=0 \
        --time_based --runtime="$SECS" --output-format=json "$@" >"$out"
    python3 - "$out" "$name" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
name = sys.argv[2]
j = d["jobs"][0]
w = j["write"]
mbs = w["bw_bytes"] / 1e6
iops = w["iops"]
line = f"{name}: {mbs:.1f} MB/s, {iops:.0f} writes/s"
sync = j.get("sync", {}).get("lat_ns", {})
pct = sync.get("percentile", {})
if sync.get("N", 0):
    p50 = pct.get("50.000000", 0) / 1e6
    p99 = pct.get("99.000000", 0) / 1e6
    line += f", fdatasync latency p50 {p50:.3f} ms p99 {p99:.3f} ms"
    print(f"BASELINE {name}_sync_p50_ms {p50:.3f}")
    print(f"BASELINE {name}_sync_p99_ms {p99:.3f}")
print(line)
print(f"BASELINE {name}_mb_s {mbs:.1f}")
EOF
    rm -f "$work/$name.dat"
}

fio_run fio_seq_64k_fdatasync 64k --fdatasync=1
fio_run fio_seq_1m_fdatasync 1m --fdatasync=1
fio_run fio_seq_4k_fdatasync 4k --fdatasync=1
fio_run fio_seq_1m_endfsync 1m --end_fsync=1
fio_run fio_seq_1m_pagecache 1m --size=1g

# iperf3 over loopback on a free port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
iperf3 -s -1 -B 127.0.0.1 -p "$port" >"$work/iperf-server.log" 2>&1 &
iperf_pid=$!
# Wait for the listener without connecting to it (a bare connect would use up
# the server's single (-1) test).
for _ in $(seq 1 50); do
    ss -Hltn "sport = :$port" | grep -q . && break
    sleep 0.1
done
if ! timeout $((SECS + 20)) iperf3 -c 127.0.0.1 -p "$port" -t "$SECS" -J >"$work/iperf.json" \
    || ! grep -q '"sum_received"' "$work/iperf.json"; then
    echo "bench-baselines: iperf3 client failed:" >&2
    grep -i '"error"' "$work/iperf.json" >&2 || true
    cat "$work/iperf-server.log" >&2 || true
    exit 1
fi
python3 - "$work/iperf.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
bps = d["end"]["sum_received"]["bits_per_second"]
mbs = bps / 8 / 1e6
print(f"iperf3_loopback: {mbs:.1f} MB/s ({bps/1e9:.2f} Gbit/s), one TCP stream")
print(f"BASELINE iperf3_loopback_mb_s {mbs:.1f}")
EOF
wait "$iperf_pid" 2>/dev/null || true
iperf_pid=""
