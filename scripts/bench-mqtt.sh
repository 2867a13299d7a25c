#!/usr/bin/env bash
# MQTT publish rate, Sluice against Mosquitto, same run (issue 14).
#
# Starts one `sluice serve` (default flush policy: fsync before PUBACK) and one `mosquitto`
# (Debian's 2.0, a config with one loopback listener and its defaults otherwise: no persistence)
# on free loopback ports. Then, for ROUNDS rounds, alternating the brokers: PUBS `mosquitto_pub -l`
# publishers at once, each sending MSGS lines of SIZE bytes (MQTT 3.1.1, one MQTT topic per
# publisher), at QoS 0 and at QoS 1 (mosquitto_pub's default window of 20 in flight). Time runs
# from the start of the publishers until the last one exits (at QoS 1 that is after its last
# PUBACK); for Sluice it also waits until the log holds every message (kcat, Kafka's view), so
# a QoS 0 figure counts only what was stored. Prints each run's messages/s, then medians and
# the Sluice/Mosquitto ratios.
#
#     scripts/bench-mqtt.sh [SLUICE] [PUBS] [MSGS_QOS0] [MSGS_QOS1] [ROUNDS] [SIZE]
#     (defaults: target/release/sluice 4 100000 20000 3 100)
#
# Bounded: every publisher run has a 300 s timeout. Cleans up only what it started: its two
# brokers (by PID) and its temp directory.
set -euo pipefail

SLUICE=${1:-target/release/sluice}
PUBS=${2:-4}
MSGS0=${3:-100000}
MSGS1=${4:-20000}
ROUNDS=${5:-3}
SIZE=${6:-100}

WORK=$(mktemp -d /tmp/sluice-bench-mqtt.XXXXXX)
chmod 755 "$WORK" # mosquitto drops root for its own user and must read its config
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 100); do
        if (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on $1" >&2
    exit 1
}

python3 -c "import sys; sys.stdout.buffer.write((b'm' * $SIZE + b'\n') * $MSGS0)" >"$WORK/lines0"
python3 -c "import sys; sys.stdout.buffer.write((b'm' * $SIZE + b'\n') * $MSGS1)" >"$WORK/lines1"

SLUICE_MQTT=$(free_port)
KAFKA=$(free_port)
"$SLUICE" serve --data-dir "$WORK/data" --mqtt-addr "127.0.0.1:$SLUICE_MQTT" \
    --kafka-addr "127.0.0.1:$KAFKA" --nsq-tcp-addr "127.0.0.1:$(free_port)" \
    --http-addr "127.0.0.1:$(free_port)" --mqtt-ws-addr "127.0.0.1:$(free_port)" \
    >"$WORK/sluice.log" 2>&1 &
PIDS+=($!)
SLUICE_PID=$!

MOSQ_PORT=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\nlog_dest stderr\n' "$MOSQ_PORT" >"$WORK/mosquitto.conf"
mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
PIDS+=($!)
MOSQ_PID=$!
wait_port "$SLUICE_MQTT"
wait_port "$MOSQ_PORT"

cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }
now() { date +%s.%N; }

# Messages the Sluice log holds for a topic (high watermark of its one partition).
log_end() { kcat -Q -b "127.0.0.1:$KAFKA" -t "$1:0:-1" 2>/dev/null | awk '{ print $NF }'; }

# run BROKER QOS ROUND: prints "BROKER qosQ seconds msgs/s broker_cpu_s"
run() {
    local broker=$1 qos=$2 round=$3 port pid msgs topic start end cpu0 cpu1 pubs=() failed=0
    if [[ $broker == sluice ]]; then port=$SLUICE_MQTT pid=$SLUICE_PID; else port=$MOSQ_PORT pid=$MOSQ_PID; fi
    if [[ $qos == 0 ]]; then msgs=$MSGS0; else msgs=$MSGS1; fi
    topic="b${round}q${qos}"
    sync
    cpu0=$(cpu "$pid")
    start=$(now)
    for p in $(seq "$PUBS"); do
        timeout 300 mosquitto_pub -h 127.0.0.1 -p "$port" -q "$qos" -t "$topic/dev$p" -l <"$WORK/lines$qos" &
        pubs+=($!)
    done
    for p in "${pubs[@]}"; do wait "$p" || failed=1; done
    if [[ $failed -ne 0 ]]; then
        echo "$broker qos$qos: a publisher failed" >&2
        exit 1
    fi
    if [[ $broker == sluice ]]; then
        for _ in $(seq 600); do
            [[ "$(log_end "$topic")" == "$((PUBS * msgs))" ]] && break
            sleep 0.05
        done
        if [[ "$(log_end "$topic")" != "$((PUBS * msgs))" ]]; then
            echo "sluice qos$qos: log holds $(log_end "$topic") of $((PUBS * msgs))" >&2
            exit 1
        fi
    fi
    end=$(now)
    cpu1=$(cpu "$pid")
    python3 -c "s = $end - $start; print('$broker qos$qos %.3f %.0f %.2f' % (s, $PUBS * $msgs / s, $cpu1 - $cpu0))"
}

echo "# $(date -u '+%F %T') load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $SLUICE and $(mosquitto -h 2>&1 | head -1); $PUBS publishers x $MSGS0 (QoS 0) / $MSGS1 (QoS 1) messages of $SIZE B, $ROUNDS rounds"
echo "# broker qos seconds msgs/s broker_cpu_s"
for round in $(seq "$ROUNDS"); do
    for qos in 0 1; do
        for broker in sluice mosquitto; do
            run "$broker" "$qos" "$round" | tee -a "$WORK/results"
        done
    done
done
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# RssAnon at the end: sluice $(grep RssAnon /proc/$SLUICE_PID/status | awk '{print $2}') kB, mosquitto $(grep RssAnon /proc/$MOSQ_PID/status | awk '{print $2}') kB"

python3 - "$WORK/results" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
for qos in ("qos0", "qos1"):
    med = {}
    for broker in ("sluice", "mosquitto"):
        rate = [float(r[3]) for r in rows if r[0] == broker and r[1] == qos]
        cpu = [float(r[4]) for r in rows if r[0] == broker and r[1] == qos]
        med[broker] = statistics.median(rate)
        print(f"{qos} {broker}: median {med[broker]:,.0f} msgs/s (min {min(rate):,.0f}, max {max(rate):,.0f}), "
              f"broker CPU median {statistics.median(cpu):.2f} s")
    print(f"{qos} sluice/mosquitto: {med['sluice'] / med['mosquitto']:.2f}")
EOF
