#!/usr/bin/env python3
"""MQTT fan-out rate, Sluice against Mosquitto, same run (issue 14).

Starts one `sluice serve` (defaults: fsync before a QoS 1 PUBACK) and one `mosquitto` (Debian's
2.0, one loopback listener, defaults otherwise: no persistence) on free loopback ports, as
`bench-mqtt.sh` does. Then, for ROUNDS rounds, for QoS 0 and 1, for each N in SUBS, and
alternating the brokers: N `mosquitto_sub` subscribers (MQTT 3.1.1, QoS of the run) on one new
topic; once every one of them has received a warm-up message, one `mosquitto_pub -l` publisher
sends MSGS lines of SIZE bytes to that topic (QoS 1 with mosquitto_pub's window of 20). Time
runs from starting the publisher until the last subscriber has all MSGS messages (or the last
message arrived, if some never do: a run ends after STALL seconds without a delivery once the
publisher is done). The rate is messages delivered, summed over the subscribers, per second;
messages a subscriber never received are reported as lost (Mosquitto drops QoS 1 messages past
`max_queued_messages`, 1000 per client by default). Prints each run, then per QoS and N the
medians (min-max), the ratio of the medians and the median of the same-round ratios.

    scripts/bench-mqtt-fanout.py [--sluice BIN] [--subs 1,10,50] [--msgs0 20000]
        [--msgs1 5000] [--rounds 3] [--size 100] [--stall 3] [--timeout 120]

Bounded: every run ends within --timeout seconds. Cleans up only what it started: its
subscribers, publishers and two brokers (by PID) and its temp directory.
"""
import argparse, os, selectors, shutil, statistics, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqtt_brokers as mb

WARMUP_SECS = 15.0  # every subscriber must get a warm-up message within this long
QUIET_SECS = 0.3  # no byte for this long after the warm-up: late warm-up copies are counted


class Subscribers:
    """N mosquitto_sub processes; counts the lines (messages) each has printed."""

    def __init__(self, n, port, qos, topic, tag):
        self.sel = selectors.DefaultSelector()
        self.procs, self.counts = [], [0] * n
        for i in range(n):
            p = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", str(qos),
                                  "-t", topic, "-i", f"{tag}-{i}"], stdout=subprocess.PIPE)
            os.set_blocking(p.stdout.fileno(), False)
            self.sel.register(p.stdout, selectors.EVENT_READ, i)
            self.procs.append(p)

    def poll(self, secs):
        """Read what has arrived within `secs`; True if any subscriber got a byte."""
        got = False
        for key, _ in self.sel.select(secs):
            data = os.read(key.fileobj.fileno(), 1 << 20)
            if data:
                self.counts[key.data] += data.count(b"\n")
                got = True
            else:  # a subscriber exited: it will deliver nothing more
                self.sel.unregister(key.fileobj)
        return got

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            p.stdout.close()
        self.sel.close()


def warm_up(subs, port, topic):
    """Publish single QoS 1 messages until every subscriber has one: all are subscribed."""
    deadline = time.monotonic() + WARMUP_SECS
    while min(subs.counts) == 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"subscribers on {topic} got no warm-up message in {WARMUP_SECS} s")
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic,
                        "-m", "w"], check=True, timeout=10)
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            subs.poll(0.05)
    while subs.poll(QUIET_SECS):
        pass
    return list(subs.counts)


def run(broker, qos, n, rnd, args, lines):
    """One run; returns a dict of its figures."""
    msgs = args.msgs0 if qos == 0 else args.msgs1
    topic = f"f{rnd}q{qos}n{n}/{broker.name}"
    subs = Subscribers(n, broker.port, qos, topic, f"r{rnd}q{qos}n{n}")
    pub = None
    try:
        base = warm_up(subs, broker.port, topic)
        cpu0 = mb.cpu_secs(broker.pid)
        with open(lines[qos], "rb") as stdin:
            start = last = time.monotonic()
            pub = subprocess.Popen(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", str(qos),
                                    "-t", topic, "-l"], stdin=stdin)
        pub_secs = None
        while True:
            now = time.monotonic()
            if subs.poll(0.05):
                last = time.monotonic()
            if pub_secs is None and pub.poll() is not None:
                pub_secs = time.monotonic() - start
            got = [c - b for c, b in zip(subs.counts, base)]
            if min(got) >= msgs:
                break
            idle = now - last
            if (pub_secs is not None and idle > args.stall) or idle > 4 * args.stall or now - start > args.timeout:
                break
        cpu1 = mb.cpu_secs(broker.pid)
        if pub_secs is None:  # its last PUBACK or DISCONNECT may still be on the way
            try:
                pub.wait(timeout=args.stall)
                pub_secs = time.monotonic() - start
            except subprocess.TimeoutExpired:
                pass
        delivered = sum(min(g, msgs) for g in got)
        secs = last - start
        return {"broker": broker.name, "qos": qos, "n": n, "round": rnd, "secs": secs,
                "rate": delivered / secs if secs > 0 else 0.0, "delivered": delivered, "expected": n * msgs,
                "dups": sum(max(0, g - msgs) for g in got), "cpu": cpu1 - cpu0,
                "pub_secs": pub_secs if pub_secs is not None else float("nan"), "pub_rc": pub.poll()}
    finally:
        if pub is not None and pub.poll() is None:
            pub.terminate()
            pub.wait()
        subs.stop()


def summary(rows, args):
    for qos in (0, 1):
        for n in args.subs:
            med = {}
            for name in ("sluice", "mosquitto"):
                sel = [r for r in rows if r["broker"] == name and r["qos"] == qos and r["n"] == n]
                rates = [r["rate"] for r in sel]
                lost = sum(r["expected"] - r["delivered"] for r in sel)
                med[name] = statistics.median(rates)
                print(f"qos{qos} n={n} {name}: median {med[name]:,.0f} msgs/s delivered "
                      f"(min {min(rates):,.0f}, max {max(rates):,.0f}), lost {lost} of "
                      f"{sum(r['expected'] for r in sel)}, broker CPU median "
                      f"{statistics.median(r['cpu'] for r in sel):.2f} s")
            same_round = [s["rate"] / m["rate"] for s in rows for m in rows
                          if s["broker"] == "sluice" and m["broker"] == "mosquitto" and m["rate"] > 0
                          and s["qos"] == m["qos"] == qos and s["n"] == m["n"] == n and s["round"] == m["round"]]
            print(f"qos{qos} n={n} sluice/mosquitto: {med['sluice'] / med['mosquitto']:.2f} "
                  f"(median of same-round ratios {statistics.median(same_round):.2f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sluice", default="target/release/sluice")
    ap.add_argument("--subs", default="1,10,50", help="subscriber counts N, comma-separated")
    ap.add_argument("--msgs0", type=int, default=20000, help="messages published per QoS 0 run")
    ap.add_argument("--msgs1", type=int, default=5000, help="messages published per QoS 1 run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", type=int, default=100, help="payload bytes")
    ap.add_argument("--stall", type=float, default=3.0, help="end a run after this long without a delivery")
    ap.add_argument("--timeout", type=float, default=120.0, help="longest run, seconds")
    args = ap.parse_args()
    args.subs = [int(n) for n in args.subs.split(",")]
    mb.require_mosquitto()
    if not os.access(args.sluice, os.X_OK):
        sys.exit(f"no Sluice binary at {args.sluice}: build one with `cargo build --release -p sluice`")

    work = mb.temp_workdir("sluice-bench-mqtt-fanout.")
    brokers = []
    try:
        lines = {}
        for qos, count in ((0, args.msgs0), (1, args.msgs1)):
            lines[qos] = os.path.join(work, f"lines{qos}")
            with open(lines[qos], "wb") as f:
                f.write((b"m" * args.size + b"\n") * count)
        brokers.append(mb.start_sluice(args.sluice, work))
        brokers.append(mb.start_mosquitto(work))
        print(f"# {time.strftime('%F %T', time.gmtime())} UTC load average: {mb.loadavg()}")
        print(f"# {args.sluice} and {mb.mosquitto_version()}; 1 publisher x {args.msgs0} (QoS 0) / "
              f"{args.msgs1} (QoS 1) messages of {args.size} B to N = {args.subs} subscribers, {args.rounds} rounds")
        print("# broker qos N round seconds delivered_msgs/s delivered/expected dups broker_cpu_s publisher_s")
        rows = []
        for rnd in range(1, args.rounds + 1):
            for qos in (0, 1):
                for n in args.subs:
                    for broker in brokers:
                        r = run(broker, qos, n, rnd, args, lines)
                        rows.append(r)
                        print(f"{r['broker']} qos{qos} {n} {rnd} {r['secs']:.3f} {r['rate']:.0f} "
                              f"{r['delivered']}/{r['expected']} {r['dups']} {r['cpu']:.2f} {r['pub_secs']:.3f}",
                              flush=True)
        print(f"# load average at the end: {mb.loadavg()}")
        for b in brokers:
            print(f"# {b.name} RssAnon at the end: {mb.proc_status_kb(b.pid).get('RssAnon')} kB")
        summary(rows, args)
    finally:
        for b in brokers:
            b.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
