#!/usr/bin/env python3
"""NSQ memory soak: does a broker that delivered millions of NSQ messages give the memory back?

Starts the given `sluice` binary on free loopback ports with a temp data dir, then runs
ROUNDS rounds of: MPUB PER_ROUND 200-byte messages, consume them all through one channel with
CONSUMERS connections (RDY 300 each, FIN in shuffled batches of 100, so FINs arrive out of
order), and prints the broker's anonymous memory (RssAnon) after each round and after an idle
period, then one summary line: start, peak (sampled every 0.2 s) and idle RssAnon, and the
file-backed part of RSS at idle (`/proc/PID/smaps_rollup`: mapped segment files, not heap).
A per-message leak shows as growth proportional to the messages delivered; a bounded broker
levels off after the first round and, once idle, gives back what it used while busy.

    scripts/nsq-memory-soak.py [BINARY] [ROUNDS] [PER_ROUND] [CONSUMERS]
    (defaults: target/release/sluice 5 4000000 3)

Environment: SOAK_IDLE_SECS (default 45); SOAK_GDB_PROBE=1 attaches gdb at idle, prints
glibc's `malloc_stats()` (into the broker's stderr, SOAK_STDERR or /dev/null) and the RssAnon
after a `malloc_trim(0)` it calls: what the allocator held free rather than live heap.
"""
import os, random, shutil, socket, struct, subprocess, sys, tempfile, threading, time

BINARY = sys.argv[1] if len(sys.argv) > 1 else "target/release/sluice"
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
PER_ROUND = int(sys.argv[3]) if len(sys.argv) > 3 else 4_000_000
CONSUMERS = int(sys.argv[4]) if len(sys.argv) > 4 else 3
BATCH, BODY, ROUND_DEADLINE_SECS = 1000, b"y" * 200, 900
IDLE_SECS = int(os.environ.get("SOAK_IDLE_SECS", "45"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_anon_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon"):
                return int(line.split()[1])
    return -1


def smaps_rollup_kb(pid):
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                fields[parts[0].rstrip(":")] = int(parts[1])
    return fields


def gdb_probe(pid):
    """Measurement only: glibc's view of the heap, then what a malloc_trim(0) gives back."""
    subprocess.run(["gdb", "-p", str(pid), "-batch", "-nx",
                    "-ex", "call (void)malloc_stats()", "-ex", "call (int)malloc_trim(0)"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    return rss_anon_kb(pid)


class PeakSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.wait(0.2):
            try:
                self.peak = max(self.peak, rss_anon_kb(self.pid))
            except OSError:
                return


class Nsq:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(b"  V2")
        self.buf = b""

    def frame(self):
        while len(self.buf) < 8:
            self.buf += self.recv()
        size = struct.unpack(">i", self.buf[:4])[0]
        while len(self.buf) < 4 + size:
            self.buf += self.recv()
        kind, data = struct.unpack(">i", self.buf[4:8])[0], self.buf[8 : 4 + size]
        self.buf = self.buf[4 + size :]
        return kind, data

    def recv(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("broker closed the connection")
        return chunk


def publish(port, topic, count):
    nsq = Nsq(port)
    message = struct.pack(">i", len(BODY)) + BODY
    for _ in range(count // BATCH):
        payload = struct.pack(">i", BATCH) + message * BATCH
        nsq.sock.sendall(f"MPUB {topic}\n".encode() + struct.pack(">i", len(payload)) + payload)
        kind, data = nsq.frame()
        while kind == 0 and data == b"_heartbeat_":  # a slow MPUB under load: answer, read on
            nsq.sock.sendall(b"NOP\n")
            kind, data = nsq.frame()
        if data != b"OK":
            raise RuntimeError(f"MPUB answered {data!r}")
    nsq.sock.close()


def flush(nsq, pending, counter, lock):
    random.shuffle(pending)
    if pending:
        nsq.sock.sendall(b"".join(b"FIN " + m + b"\n" for m in pending))
    with lock:
        counter[0] += len(pending)


def consume(port, topic, channel, counter, lock, deadline):
    nsq = Nsq(port)
    nsq.sock.sendall(f"SUB {topic} {channel}\n".encode())
    nsq.frame()
    nsq.sock.sendall(b"RDY 300\n")
    nsq.sock.settimeout(1.0)
    pending = []
    while time.time() < deadline:
        with lock:
            if counter[0] >= counter[1]:
                break
        try:
            kind, data = nsq.frame()
        except socket.timeout:
            # The last messages of a round arrive in fewer than a batch: finish them now.
            flush(nsq, pending, counter, lock)
            pending = []
            continue
        if kind == 0 and data == b"_heartbeat_":
            nsq.sock.sendall(b"NOP\n")
        elif kind == 2:
            pending.append(data[10:26])
            if len(pending) >= 100:
                flush(nsq, pending, counter, lock)
                pending = []
    flush(nsq, pending, counter, lock)
    time.sleep(0.5)
    nsq.sock.close()


def main():
    data_dir = tempfile.mkdtemp(prefix="sluice-soak-")
    tcp, http, kafka = free_port(), free_port(), free_port()
    stderr_path = os.environ.get("SOAK_STDERR")
    stderr = open(stderr_path, "w") if stderr_path else subprocess.DEVNULL
    broker = subprocess.Popen(
        [BINARY, "serve", "--data-dir", data_dir, "--kafka-addr", f"127.0.0.1:{kafka}",
         "--nsq-tcp-addr", f"127.0.0.1:{tcp}", "--http-addr", f"127.0.0.1:{http}",
         # Consumed segments go, so a long soak does not fill the disk.
         "--segment-bytes", str(64 << 20), "--retention-bytes", str(256 << 20)],
        stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", tcp)).close()
                break
            except OSError:
                time.sleep(0.1)
        Nsq(tcp).sock.sendall(b"SUB soak c\n")  # create the channel before the first publish
        time.sleep(0.5)
        start = rss_anon_kb(broker.pid)
        print(f"start rss_anon_kb={start}", flush=True)
        sampler = PeakSampler(broker.pid)
        sampler.start()
        for round_no in range(1, ROUNDS + 1):
            started = time.time()
            publish(tcp, "soak", PER_ROUND)
            counter, lock = [0, PER_ROUND], threading.Lock()
            threads = [threading.Thread(target=consume, args=(tcp, "soak", "c", counter, lock,
                                                               time.time() + ROUND_DEADLINE_SECS))
                       for _ in range(CONSUMERS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            print(f"round {round_no} finished={counter[0]} rss_anon_kb={rss_anon_kb(broker.pid)} "
                  f"secs={time.time() - started:.0f}", flush=True)
        time.sleep(IDLE_SECS)
        sampler.stop.set()
        idle, smaps = rss_anon_kb(broker.pid), smaps_rollup_kb(broker.pid)
        print(f"idle {IDLE_SECS}s rss_anon_kb={idle}", flush=True)
        print(f"summary messages={ROUNDS * PER_ROUND} start_anon_mb={start / 1024:.1f} "
              f"peak_anon_mb={max(sampler.peak, idle) / 1024:.1f} idle_anon_mb={idle / 1024:.1f} "
              f"idle_file_backed_mb={(smaps.get('Rss', 0) - smaps.get('Anonymous', 0)) / 1024:.1f}",
              flush=True)
        if os.environ.get("SOAK_GDB_PROBE") == "1":
            print(f"after gdb malloc_trim(0) rss_anon_kb={gdb_probe(broker.pid)}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        broker.terminate()
        broker.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
