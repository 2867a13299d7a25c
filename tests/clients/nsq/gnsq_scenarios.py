"""gnsq (gevent NSQ client) against Sluice, one scenario per run.

usage: gnsq_scenarios.py SCENARIO TCP_ADDR HTTP_ADDR LOOKUPD_ADDR TOPIC
The broker must run with --msg-timeout 2s (gnsq cannot ask for a message timeout).
Exits 0 printing "OK ..." or 1 with the reason; every scenario is bounded by DEADLINE_S.
"""
from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402
import time  # noqa: E402
import json  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402

import gevent  # noqa: E402
import gnsq  # noqa: E402

DEADLINE_S = 40.0


def http_post(http_addr, path, body=b""):
    req = urllib.request.Request("http://%s%s" % (http_addr, path), data=body, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status


def wait_for(cond, what):
    deadline = time.monotonic() + DEADLINE_S
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        gevent.sleep(0.05)


def channel_clients(http_addr, topic, channel):
    """Clients subscribed to a channel, as the broker's admin API counts them (0 if none yet)."""
    url = "http://%s/api/nsq/topics/%s/channels/%s" % (http_addr, topic, channel)
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read()).get("clients", 0)
    except urllib.error.HTTPError:
        return 0


class Run:
    def __init__(self, tcp, http, lookupd, topic):
        self.tcp, self.http, self.lookupd, self.topic = tcp, http, lookupd, topic
        self.consumers = []

    def consumer(self, channel, handler, **kw):
        kw.setdefault("max_in_flight", 10)
        if "lookupd_http_addresses" not in kw:
            kw["nsqd_tcp_addresses"] = [self.tcp]
        c = gnsq.Consumer(self.topic, channel, **kw)
        c.on_message.connect(handler, weak=False)
        c.start(block=False)
        self.consumers.append(c)
        return c

    def wait_subscribed(self, channel, count):
        wait_for(lambda: channel_clients(self.http, self.topic, channel) == count,
                 "%d clients on channel %s" % (count, channel))

    def producer(self, **kw):
        p = gnsq.Producer([self.tcp], **kw)
        p.start()
        return p

    def close(self):
        for c in self.consumers:
            c.close()


def fanout(r):
    n = 60
    http_post(r.http, "/topic/create?topic=%s" % r.topic)
    for ch in ("a", "b"):
        http_post(r.http, "/channel/create?topic=%s&channel=%s" % (r.topic, ch))
    got = {}
    for ch in ("a", "b"):
        for i in (0, 1):
            key = "%s%d" % (ch, i)
            got[key] = []
            r.consumer(ch, lambda c, message, key=key: got[key].append(message.body.decode()), max_in_flight=3)
    for ch in ("a", "b"):
        r.wait_subscribed(ch, 2)
    bodies = [("g%03d" % i).encode() for i in range(n)]
    p = r.producer()
    for b in bodies[:20]:
        http_post(r.http, "/pub?topic=%s" % r.topic, b)
    for b in bodies[20:40]:
        p.publish(r.topic, b)
    p.multipublish(r.topic, bodies[40:])
    wait_for(lambda: all(len(got[c + "0"]) + len(got[c + "1"]) >= n for c in "ab"), "both channels")
    # Not synchronisation: a short window in which a wrongly redelivered copy would show up.
    gevent.sleep(0.3)
    want = sorted(b.decode() for b in bodies)
    for ch in "ab":
        seen = sorted(got[ch + "0"] + got[ch + "1"])
        assert seen == want, "channel %s: %d messages, %d distinct" % (ch, len(seen), len(set(seen)))
        assert got[ch + "0"] and got[ch + "1"], "channel %s not split" % ch
    return str({k: len(v) for k, v in got.items()})


def req_delay(r):
    seen = []

    def handle(c, message):
        m = message
        seen.append((time.monotonic(), m.attempts))
        if m.attempts == 1:
            m.enable_async()
            m.requeue(time_ms=2000, backoff=False)

    r.consumer("req", handle)
    r.producer().publish(r.topic, b"again")
    wait_for(lambda: len(seen) >= 2, "redelivery")
    gap = seen[1][0] - seen[0][0]
    assert seen[1][1] == 2 and gap >= 1.9, "redelivered %r" % seen
    return "requeued %.2fs" % gap


def timeout(r):
    seen = []

    def handle(c, message):
        m = message
        m.enable_async()  # never answered: must time out (broker --msg-timeout 2s)
        seen.append((time.monotonic(), m.attempts))

    r.consumer("to", handle)
    r.producer().publish(r.topic, b"slow")
    wait_for(lambda: len(seen) >= 3, "two timeouts")
    gaps = [b[0] - a[0] for a, b in zip(seen, seen[1:])]
    assert [a for _, a in seen[:3]] == [1, 2, 3] and min(gaps[:2]) >= 1.8, "deliveries %r" % seen
    return "timeouts after %s" % ["%.2f" % g for g in gaps[:2]]


def touch(r):
    seen = []

    def keep(m):
        for _ in range(5):
            gevent.sleep(0.8)
            m.touch()
        m.finish()

    def handle(c, message):
        m = message
        seen.append(m.attempts)
        m.enable_async()
        gevent.spawn(keep, m)

    r.consumer("touch", handle)
    r.producer().publish(r.topic, b"long job")
    # The time under test: longer than two message timeouts, while the job keeps touching.
    gevent.sleep(7.0)
    assert seen == [1], "deliveries %r" % seen
    return "held past two timeouts"


def dpub(r):
    got = []
    r.consumer("dpub", lambda c, message: got.append(time.monotonic()))
    r.wait_subscribed("dpub", 1)
    sent = time.monotonic()
    r.producer().publish(r.topic, b"later", defer=2000)
    wait_for(lambda: got, "deferred message")
    assert got[0] - sent >= 1.9, "DPUB delivered after %.2fs" % (got[0] - sent)
    return "delivered after %.2fs" % (got[0] - sent)


def compressed(r, **kw):
    bodies = [("z%02d" % i).encode() * (1 if i else 40000) for i in range(30)]
    got = []
    r.consumer("z", lambda c, message: got.append(message.body), **kw)
    # gnsq's Producer loses the "OK" that follows a compression upgrade (its response queue
    # for the connection does not exist yet), with nsqd too: the consumer side is compressed.
    p = r.producer()
    for b in bodies[:10]:
        p.publish(r.topic, b)
    p.multipublish(r.topic, bodies[10:])
    wait_for(lambda: len(got) >= len(bodies), "compressed messages")
    assert sorted(got) == sorted(bodies), "bodies differ"
    return "%d messages" % len(got)


def lookupd(r):
    http_post(r.http, "/pub?topic=%s" % r.topic, b"found me")
    got = []
    r.consumer("lk", lambda c, message: got.append(message.body), lookupd_http_addresses=[r.lookupd], lookupd_poll_interval=1)
    wait_for(lambda: got, "message via lookupd")
    return got[0].decode()


SCENARIOS = {
    "fanout": fanout,
    "req": req_delay,
    "timeout": timeout,
    "touch": touch,
    "dpub": dpub,
    "snappy": lambda r: compressed(r, snappy=True),
    "deflate": lambda r: compressed(r, deflate=True),
    "lookupd": lookupd,
}


def main():
    name, tcp, http, lookup, topic = sys.argv[1:6]
    r = Run(tcp, http, lookup, topic)
    try:
        with gevent.Timeout(DEADLINE_S + 5):
            detail = SCENARIOS[name](r)
    except (AssertionError, gevent.Timeout) as e:
        print("FAIL %s" % e)
        sys.stdout.flush()
        sys.exit(1)
    finally:
        try:
            r.close()
        except Exception:  # noqa: BLE001 - closing must not hide the verdict
            pass
    print("OK " + detail)
    sys.stdout.flush()
    sys.exit(0)


if __name__ == "__main__":
    main()
