#!/usr/bin/env bash
# Start-up time, RSS and open descriptors of a broker with 10,000 partitions under a
# 4,096-descriptor limit (release build). Prints one line per phase.
#
#   scripts/bench-partitions.sh            # builds release first
#   SKIP_BUILD=1 PARTITIONS=10000 NOFILE=4096 scripts/bench-partitions.sh
set -euo pipefail

PARTITIONS=${PARTITIONS:-10000}
NOFILE=${NOFILE:-4096}
RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/target/release/sluice"
[ "${SKIP_BUILD:-0}" = 1 ] || (cd "$ROOT" && cargo build --release -p sluice)

WORK=$(mktemp -d /tmp/sluice-partitions-XXXXXX)
KAFKA=127.0.0.1:39392 NSQ=127.0.0.1:39350 HTTP=127.0.0.1:39351 MQTT=127.0.0.1:39383 MQTT_WS=127.0.0.1:39384
PID=
cleanup() { [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

now() { date +%s.%N; }

# Starts the broker (sets PID) and waits (at most 120 s) for "sluice ready"; prints
# "<name>=<seconds taken>". Not called in a subshell, so PID stays set.
start() {
  local log="$WORK/broker.log" started
  : >"$log"
  started=$(now)
  prlimit --nofile="$NOFILE:$NOFILE" -- "$BIN" --data-dir "$WORK/data" --kafka-addr "$KAFKA" \
    --nsq-tcp-addr "$NSQ" --http-addr "$HTTP" --mqtt-addr "$MQTT" --mqtt-ws-addr "$MQTT_WS" >"$log" 2>&1 &
  PID=$!
  for _ in $(seq 1200); do
    grep -q "sluice ready" "$log" && { echo "$1=$(echo "$(now) - $started" | bc)"; return; }
    sleep 0.1
  done
  echo "broker not ready" >&2; cat "$log" >&2; exit 1
}

stop() {
  local started; started=$(now)
  kill -TERM "$PID"
  for _ in $(seq 1200); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  echo "stop_s=$(echo "$(now) - $started" | bc)"
  PID=
}

report() {
  echo "$1 rss_kib=$(awk '/VmRSS/ {print $2}' /proc/"$PID"/status) fds=$(ls /proc/"$PID"/fd | wc -l)"
}

start first_start_s
started=$(now)
"$BIN" topic create many --partitions "$PARTITIONS" --http "$HTTP" --json >/dev/null
echo "create_${PARTITIONS}_s=$(echo "$(now) - $started" | bc)"
report "after_create"
# One record in every partition, so a restart recovers non-empty segments.
/usr/bin/python3 - "$KAFKA" "$PARTITIONS" <<'EOF'
import sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "acks": "all", "linger.ms": 5})
for i in range(int(sys.argv[2])):
    p.produce("many", value=b"x" * 100, partition=i)
    if i % 1000 == 0:
        p.poll(0)
assert p.flush(120) == 0
EOF
report "after_produce"
stop
for run in $(seq "$RUNS"); do
  start "restart_${run}_ready_s"
  report "restart_${run}_idle"
  stop
done
