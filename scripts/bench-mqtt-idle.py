#!/usr/bin/env python3
"""Memory per idle MQTT connection, Sluice against Mosquitto, same run (issue 14).

For ROUNDS rounds, alternating the brokers, starts a fresh broker on a free loopback port
(`sluice serve` with its defaults and `--max-connections` CONNS + 1000; Debian's `mosquitto`
2.0 with one loopback listener and its defaults: no persistence, no connection limit), publishes
one message to `idle/warm` (so Sluice's log topic `idle` exists before the baseline), and reads
the broker's VmRSS and RssAnon (/proc/PID/status). Then it opens CONNS MQTT 3.1.1 connections
(clean session, keepalive KEEPALIVE s), each subscribing at QoS 1 to its own topic `idle/<i>`
(one Sluice log topic, CONNS filters), from source addresses 127.0.0.2, 127.0.0.3, ...
(SOURCES of them), at most 200 handshakes at a time. Every connection sends a PINGREQ every
PING_EVERY s (well inside the keepalive). After HOLD s it sends one more PINGREQ on every
connection, waits for every PINGRESP (so each connection is open and served), and reads the
broker's memory again: (after - before) / connections is the memory per idle connection. Then
it closes the connections (DISCONNECT) and reads the memory once more. Prints each round, then
the medians (min-max) of bytes per connection and the Sluice/Mosquitto ratios.

    scripts/bench-mqtt-idle.py [--sluice BIN] [--conns 10000] [--keepalive 60]
        [--ping-every 15] [--hold 20] [--rounds 3] [--sources 4] [--no-subscribe]

--no-subscribe leaves out the SUBSCRIBE: the cost of a connection alone.

Raises its open-file limit (and so the brokers', which inherit it) to the hard limit; it needs
CONNS + 200 descriptors. Bounded: every handshake and the PINGRESP sweep have timeouts.
Cleans up only what it started: its connections, the brokers (by PID) and its temp directories.
"""
import argparse, asyncio, os, resource, shutil, socket, statistics, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqtt_brokers as mb

MAX_HANDSHAKES = 200  # connections in CONNECT/SUBSCRIBE at once: below both brokers' listen backlogs
HANDSHAKE_SECS = 30.0  # a connection not subscribed within this long counts as failed
SWEEP_SECS = 60.0  # every PINGRESP of a sweep must be back within this long
SETTLE_SECS = 2.0  # after a start or a close, before reading the memory
IP_BIND_ADDRESS_NO_PORT = 24  # Linux: pick the source port at connect (4-tuple), not at bind

PINGREQ, DISCONNECT = b"\xc0\x00", b"\xe0\x00"


def remaining_length(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(s):
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def connect_packet(client_id, keepalive):
    body = utf8("MQTT") + bytes([4, 0x02]) + keepalive.to_bytes(2, "big") + utf8(client_id)
    return b"\x10" + remaining_length(len(body)) + body


def subscribe_packet(topic):
    body = (1).to_bytes(2, "big") + utf8(topic) + b"\x01"
    return b"\x82" + remaining_length(len(body)) + body


class Conn:
    """One idle client: its stream, and the PINGRESPs it has read."""

    def __init__(self, reader, writer):
        self.reader, self.writer, self.pongs, self.open = reader, writer, 0, True

    async def read_loop(self):
        """Counts PINGRESPs (the only packet an idle subscriber gets) until the broker closes."""
        try:
            while True:
                data = await self.reader.read(256)
                if not data:
                    break
                self.pongs += data.count(b"\xd0\x00")
        except OSError:
            pass
        self.open = False


async def open_conn(port, src, client_id, topic, keepalive):
    """CONNECT, then SUBSCRIBE to `topic` unless it is None; the open connection."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((src, 0))
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        writer.write(connect_packet(client_id, keepalive))
        connack = await reader.readexactly(4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise RuntimeError(f"CONNACK {connack.hex()}")
        if topic is not None:
            writer.write(subscribe_packet(topic))
            suback = await reader.readexactly(5)
            if suback[0] != 0x90 or suback[4] > 1:
                raise RuntimeError(f"SUBACK {suback.hex()}")
    except BaseException:
        writer.close()
        raise
    return Conn(reader, writer)


async def open_all(args, port, rnd):
    gate = asyncio.Semaphore(MAX_HANDSHAKES)
    sources = [f"127.0.0.{2 + i}" for i in range(args.sources)]
    errors = {}

    async def one(i):
        async with gate:
            try:
                return await asyncio.wait_for(
                    open_conn(port, sources[i % len(sources)], f"idle-r{rnd}-{i}",
                             None if args.no_subscribe else f"idle/{i}", args.keepalive),
                    HANDSHAKE_SECS)
            except (OSError, RuntimeError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                return None

    conns = [c for c in await asyncio.gather(*(one(i) for i in range(args.conns))) if c is not None]
    return conns, errors


async def sweep(conns):
    """PINGREQ on every open connection; True once each has its PINGRESP (bounded)."""
    live = [c for c in conns if c.open]
    before = [c.pongs for c in live]
    for c in live:
        c.writer.write(PINGREQ)
    deadline = time.monotonic() + SWEEP_SECS
    while time.monotonic() < deadline:
        if all(c.pongs > b for c, b in zip(live, before)):
            return len(live)
        await asyncio.sleep(0.05)
    return sum(c.pongs > b for c, b in zip(live, before))


async def keepalive_pinger(conns, every):
    """What the keepalive asks of a client: a packet well within KEEPALIVE seconds."""
    while True:
        await asyncio.sleep(every)
        for c in conns:
            if c.open:
                c.writer.write(PINGREQ)


async def measure(broker, args, rnd):
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-t", "idle/warm",
                    "-m", "w"], check=True, timeout=30)
    await asyncio.sleep(SETTLE_SECS)
    before = mb.proc_status_kb(broker.pid)
    t0 = time.monotonic()
    conns, errors = await open_all(args, broker.port, rnd)
    connect_secs = time.monotonic() - t0
    readers = [asyncio.ensure_future(c.read_loop()) for c in conns]
    pinger = asyncio.ensure_future(keepalive_pinger(conns, args.ping_every))
    cpu0 = mb.cpu_secs(broker.pid)
    await asyncio.sleep(args.hold)
    answered = await sweep(conns)
    cpu1 = mb.cpu_secs(broker.pid)
    after = mb.proc_status_kb(broker.pid)
    fds = mb.open_fds(broker.pid)
    pinger.cancel()
    for c in conns:
        if c.open:
            c.writer.write(DISCONNECT)
        c.writer.close()
    await asyncio.gather(*readers, return_exceptions=True)
    await asyncio.sleep(SETTLE_SECS)
    closed = mb.proc_status_kb(broker.pid)
    n = max(answered, 1)
    return {"broker": broker.name, "round": rnd, "conns": len(conns), "answered": answered, "errors": errors,
            "connect_secs": connect_secs, "before": before, "after": after, "closed": closed, "fds": fds,
            "rss_per_conn": (after["VmRSS"] - before["VmRSS"]) * 1024 / n,
            "anon_per_conn": (after["RssAnon"] - before["RssAnon"]) * 1024 / n,
            "hold_cpu": cpu1 - cpu0}


def start(name, args, work):
    if name == "sluice":
        return mb.start_sluice(args.sluice, work, ["--max-connections", str(args.conns + 1000)])
    return mb.start_mosquitto(work)


def summary(rows):
    med = {}
    for name in ("sluice", "mosquitto"):
        sel = [r for r in rows if r["broker"] == name]
        for key in ("anon_per_conn", "rss_per_conn"):
            vals = [r[key] for r in sel]
            med[name, key] = statistics.median(vals)
            print(f"{name} {key}: median {med[name, key]:,.0f} B (min {min(vals):,.0f}, max {max(vals):,.0f})")
    for key in ("anon_per_conn", "rss_per_conn"):
        print(f"sluice/mosquitto {key}: {med['sluice', key] / med['mosquitto', key]:.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sluice", default="target/release/sluice")
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--keepalive", type=int, default=60, help="CONNECT keepalive, seconds")
    ap.add_argument("--ping-every", type=float, default=15.0, help="PINGREQ interval, seconds")
    ap.add_argument("--hold", type=float, default=20.0, help="seconds idle before the measuring sweep")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sources", type=int, default=4, help="source addresses 127.0.0.2 and up")
    ap.add_argument("--no-subscribe", action="store_true", help="connections only: no SUBSCRIBE")
    args = ap.parse_args()
    if not 0 < args.ping_every < args.keepalive or not 1 <= args.sources <= 250:
        sys.exit("need 0 < --ping-every < --keepalive and 1 <= --sources <= 250")
    mb.require_mosquitto()
    if not os.access(args.sluice, os.X_OK):
        sys.exit(f"no Sluice binary at {args.sluice}: build one with `cargo build --release -p sluice`")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < args.conns + 200:
        sys.exit(f"open-file hard limit {hard} < {args.conns + 200}: raise it (ulimit -Hn, as root)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    print(f"# {time.strftime('%F %T', time.gmtime())} UTC load average: {mb.loadavg()}; open-file limit {hard}")
    print(f"# {args.sluice} and {mb.mosquitto_version()}; {args.conns} connections, keepalive {args.keepalive} s, "
          f"{'not subscribed' if args.no_subscribe else 'one subscription each'}, "
          f"PINGREQ every {args.ping_every} s, held {args.hold} s, {args.rounds} rounds, {args.sources} source addresses")
    print("# broker round connected answered connect_s | before VmRSS/RssAnon kB | after | after close | "
          "B/conn VmRSS RssAnon | broker fds | broker CPU s while held")
    rows = []
    for rnd in range(1, args.rounds + 1):
        for name in ("sluice", "mosquitto"):
            work = mb.temp_workdir(f"sluice-bench-mqtt-idle-{name}.")
            broker = None
            try:
                broker = start(name, args, work)
                r = asyncio.run(measure(broker, args, rnd))
            finally:
                if broker is not None:
                    broker.stop()
                shutil.rmtree(work, ignore_errors=True)
            rows.append(r)
            kb = lambda m: f"{m['VmRSS']}/{m['RssAnon']}"
            print(f"{name} {rnd} {r['conns']} {r['answered']} {r['connect_secs']:.1f} | {kb(r['before'])} | "
                  f"{kb(r['after'])} | {kb(r['closed'])} | {r['rss_per_conn']:.0f} {r['anon_per_conn']:.0f} | "
                  f"{r['fds']} | {r['hold_cpu']:.2f}" + (f" | failed: {r['errors']}" if r["errors"] else ""),
                  flush=True)
    print(f"# load average at the end: {mb.loadavg()}")
    summary(rows)


if __name__ == "__main__":
    main()
