#!/usr/bin/env bash
# Kafka throughput over TLS against plaintext, in the same run, on the same broker (issue 13).
#
# Starts one `sluice serve` with a PLAINTEXT and an SSL Kafka listener at once (a throwaway CA
# and server certificate made with the openssl CLI, as crates/sluice/tests/common/certs.rs does),
# then, alternating plaintext and TLS for ROUNDS rounds: kcat produces N 1 KiB messages
# (acks=all, a new topic each time) and kcat consumes them back (`-C -e`, from the start).
# Prints each run's MB/s (1 MB = 10^6 payload bytes; the time includes kcat's start-up, the same
# for both) and the broker's CPU seconds, then the medians and the TLS/plaintext ratio.
#
#     scripts/bench-tls.sh [BINARY] [N] [ROUNDS]     (defaults: target/release/sluice 300000 3)
#
# Bounded: every client run has a 300 s timeout. Cleans up only what it started: its broker
# (by PID) and its temp directory.
set -euo pipefail

BINARY=${1:-target/release/sluice}
N=${2:-300000}
ROUNDS=${3:-3}
SIZE=1024

WORK=$(mktemp -d /tmp/sluice-bench-tls.XXXXXX)
BROKER_PID=
cleanup() {
    if [[ -n "$BROKER_PID" ]]; then
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Throwaway PKI: a CA and a server certificate for 127.0.0.1 (X.509 v3, which rustls requires).
(
    cd "$WORK"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Sluice Bench CA" \
        -keyout ca.key -out ca.pem 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >server.ext
    openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr 2>/dev/null
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile server.ext -out server.pem 2>/dev/null
)

# N lines of SIZE bytes and a newline: kcat sends each line without its newline.
python3 -c "import sys; sys.stdout.buffer.write((b'x' * $SIZE + b'\n') * $N)" >"$WORK/payload"

PLAIN=$(free_port)
SSL=$(free_port)
"$BINARY" serve --data-dir "$WORK/data" \
    --kafka-listener "PLAINTEXT://127.0.0.1:$PLAIN" --kafka-listener "SSL://127.0.0.1:$SSL" \
    --ssl-cert "$WORK/server.pem" --ssl-key "$WORK/server.key" \
    --nsq-tcp-addr "127.0.0.1:$(free_port)" --http-addr "127.0.0.1:$(free_port)" \
    --mqtt-addr "127.0.0.1:$(free_port)" --mqtt-ws-addr "127.0.0.1:$(free_port)" \
    >"$WORK/broker.log" 2>&1 &
BROKER_PID=$!
for _ in $(seq 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/$SSL) 2>/dev/null; then break; fi
    sleep 0.1
done

# The SSL listener really speaks TLS with our certificate (a client that fell back to plaintext
# would make the comparison meaningless).
if ! openssl s_client -connect "127.0.0.1:$SSL" -CAfile "$WORK/ca.pem" -verify_return_error \
    </dev/null 2>/dev/null | grep -q 'Verify return code: 0'; then
    echo "no verified TLS handshake on 127.0.0.1:$SSL" >&2
    exit 1
fi

broker_cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$BROKER_PID/stat"; }
now() { date +%s.%N; }

# run MODE PHASE TOPIC: prints "MODE PHASE seconds MB/s broker_cpu_s"
run() {
    local mode=$1 phase=$2 topic=$3 port=$PLAIN tls=() start end cpu0 cpu1 got
    if [[ $mode == tls ]]; then
        port=$SSL
        tls=(-X security.protocol=ssl -X "ssl.ca.location=$WORK/ca.pem")
    fi
    sync
    cpu0=$(broker_cpu)
    start=$(now)
    if [[ $phase == produce ]]; then
        timeout 300 kcat -P -b "127.0.0.1:$port" -t "$topic" -X acks=all "${tls[@]}" <"$WORK/payload"
        got=$N
    else
        timeout 300 kcat -C -b "127.0.0.1:$port" -t "$topic" -o beginning -e -q "${tls[@]}" \
            -f '%o\n' >"$WORK/consumed"
        got=$(wc -l <"$WORK/consumed")
    fi
    end=$(now)
    cpu1=$(broker_cpu)
    if [[ $got -ne $N ]]; then
        echo "$mode $phase: $got of $N messages" >&2
        exit 1
    fi
    python3 -c "s = $end - $start; print('$mode $phase %.3f %.1f %.2f' % (s, $N * $SIZE / s / 1e6, $cpu1 - $cpu0))"
}

echo "# $(date -u '+%F %T') load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# binary $BINARY, $N x $SIZE B per run, $ROUNDS rounds, kcat $(kcat -V 2>&1 | grep -o 'Version [0-9.]*' || true), $(kcat -V 2>&1 | grep -o 'librdkafka [0-9.]*' || true)"
echo "# mode phase seconds MB/s broker_cpu_s"
for round in $(seq "$ROUNDS"); do
    for mode in plain tls; do
        topic="bench-$mode-$round"
        run "$mode" produce "$topic" | tee -a "$WORK/results"
        run "$mode" consume "$topic" | tee -a "$WORK/results"
    done
done
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$WORK/results" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
for phase in ("produce", "consume"):
    med = {}
    for mode in ("plain", "tls"):
        mbs = [float(r[3]) for r in rows if r[0] == mode and r[1] == phase]
        cpu = [float(r[4]) for r in rows if r[0] == mode and r[1] == phase]
        med[mode] = statistics.median(mbs)
        print(f"{phase} {mode}: median {med[mode]:.1f} MB/s (min {min(mbs):.1f}, max {max(mbs):.1f}), "
              f"broker CPU median {statistics.median(cpu):.2f} s")
    print(f"{phase} tls/plain: {med['tls'] / med['plain']:.2f}")
EOF
