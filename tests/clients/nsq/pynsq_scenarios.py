"""pynsq (the official Python NSQ client, tornado) against Sluice, one scenario per run.

usage: pynsq_scenarios.py SCENARIO TCP_ADDR HTTP_ADDR LOOKUPD_ADDR TOPIC

Each scenario checks what it proves and exits 0 printing "OK ..." or exits 1 with the
reason. Every scenario is bounded by DEADLINE_S.
"""
import json
import sys
import time
import urllib.request

import nsq
import tornado.ioloop

DEADLINE_S = 40.0


def http_post(http_addr, path, body=b""):
    req = urllib.request.Request("http://%s%s" % (http_addr, path), data=body, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.read()


class Scenario:
    def __init__(self, tcp, http, lookupd, topic):
        self.tcp, self.http, self.lookupd, self.topic = tcp, http, lookupd, topic
        self.loop = tornado.ioloop.IOLoop.current()
        self.result = None
        self.started = time.monotonic()
        self.loop.call_later(DEADLINE_S, self.fail, "deadline passed")

    def done(self, detail=""):
        if self.result is None:
            self.result = (True, detail)
        self.loop.stop()

    def fail(self, reason):
        if self.result is None:
            self.result = (False, reason)
        self.loop.stop()

    def reader(self, channel, handler, **kw):
        kw.setdefault("max_in_flight", 10)
        if "lookupd_http_addresses" not in kw:
            kw["nsqd_tcp_addresses"] = [self.tcp]
        return nsq.Reader(topic=self.topic, channel=channel, message_handler=handler, **kw)

    def writer(self, **kw):
        return nsq.Writer([self.tcp], **kw)

    def run(self):
        self.loop.start()
        return self.result or (False, "stopped without a result")


def publish_all(s, writer, bodies, mpub_from=None):
    """PUB each body (MPUB for those from mpub_from on) once the writer is connected."""
    pending = {"left": len(bodies)}

    def cb(conn, data):
        if isinstance(data, nsq.Error):
            s.fail("publish failed: %r" % data)
            return
        pending["left"] -= 1 if not isinstance(data, list) else 0

    def go():
        if not writer.conns:
            s.loop.call_later(0.1, go)
            return
        singles = bodies if mpub_from is None else bodies[:mpub_from]
        for b in singles:
            writer.pub(s.topic, b, callback=cb)
        if mpub_from is not None:
            writer.mpub(s.topic, bodies[mpub_from:], callback=cb)

    s.loop.call_later(0.2, go)


def fanout(s):
    """Two channels each get every message; two readers per channel split them."""
    n = 60
    http_post(s.http, "/topic/create?topic=%s" % s.topic)
    for ch in ("a", "b"):
        http_post(s.http, "/channel/create?topic=%s&channel=%s" % (s.topic, ch))
    got = {("a", 0): [], ("a", 1): [], ("b", 0): [], ("b", 1): []}

    def handler_for(key):
        def handle(message):
            got[key].append(message.body.decode())
            total = {ch: sum(len(v) for k, v in got.items() if k[0] == ch) for ch in ("a", "b")}
            if total["a"] >= n and total["b"] >= n:
                s.loop.call_later(0.3, check)
            return True
        return handle

    def check():
        want = sorted("m%03d" % i for i in range(n))
        for ch in ("a", "b"):
            seen = sorted(got[(ch, 0)] + got[(ch, 1)])
            if seen != want:
                return s.fail("channel %s got %d messages, %d distinct" % (ch, len(seen), len(set(seen))))
            if not got[(ch, 0)] or not got[(ch, 1)]:
                return s.fail("channel %s not split: %d/%d" % (ch, len(got[(ch, 0)]), len(got[(ch, 1)])))
        s.done(json.dumps({"%s%d" % k: len(v) for k, v in got.items()}))

    readers = [s.reader(ch, handler_for((ch, i)), max_in_flight=3) for ch in ("a", "b") for i in (0, 1)]
    bodies = [("m%03d" % i).encode() for i in range(n)]
    # Half over HTTP /pub, half over TCP (PUB then MPUB), once every reader is connected.
    def start():
        if not all(r.conns for r in readers):
            return s.loop.call_later(0.1, start)
        for b in bodies[:20]:
            http_post(s.http, "/pub?topic=%s" % s.topic, b)
        publish_all(s, s.writer(), bodies[20:], mpub_from=20)
    s.loop.call_later(0.1, start)
    return readers


def req_delay(s):
    """REQ with a delay: delivered again no earlier than the delay, attempts 2."""
    state = {}

    def handle(message):
        now = time.monotonic()
        if message.attempts == 1:
            state["first"] = now
            message.enable_async()
            message.requeue(delay=2, backoff=False)  # seconds in pynsq
            return
        elapsed = now - state["first"]
        if message.attempts != 2 or elapsed < 1.9:
            s.fail("redelivered after %.2fs with attempts %d" % (elapsed, message.attempts))
        else:
            s.done("requeued %.2fs" % elapsed)
        return True

    r = s.reader("req", handle)
    publish_all(s, s.writer(), [b"again"])
    return [r]


def timeout(s):
    """A message not finished within msg_timeout comes back with attempts counted."""
    seen = []

    def handle(message):
        seen.append((time.monotonic(), message.attempts))
        message.enable_async()  # never finished: must time out
        if len(seen) == 3:
            gaps = [b[0] - a[0] for a, b in zip(seen, seen[1:])]
            if [a for _, a in seen] != [1, 2, 3] or min(gaps) < 1.8:
                s.fail("deliveries %r" % seen)
            else:
                s.done("timeouts after %s" % ["%.2f" % g for g in gaps])

    r = s.reader("to", handle, msg_timeout=2)  # seconds in pynsq
    publish_all(s, s.writer(), [b"slow"])
    return [r]


def touch(s):
    """TOUCH keeps a message in flight past msg_timeout; FIN then ends it."""
    state = {"deliveries": 0}

    def handle(message):
        state["deliveries"] += 1
        if state["deliveries"] > 1:
            return s.fail("redelivered although touched")
        message.enable_async()
        first = time.monotonic()

        def tick(n):
            if n < 4:
                message.touch()
                s.loop.call_later(0.8, tick, n + 1)
            else:
                message.finish()
                s.loop.call_later(3.0, lambda: s.done("held %.2fs" % (time.monotonic() - first)))
        s.loop.call_later(0.8, tick, 0)

    r = s.reader("touch", handle, msg_timeout=2)  # seconds in pynsq
    publish_all(s, s.writer(), [b"long job"])
    return [r]


def dpub(s):
    """DPUB is not delivered before its deferral."""
    sent = {}

    def handle(message):
        elapsed = time.monotonic() - sent.get("t", time.monotonic())
        if elapsed < 1.9:
            s.fail("DPUB delivered after %.2fs" % elapsed)
        else:
            s.done("delivered after %.2fs" % elapsed)
        return True

    r = s.reader("dpub", handle)
    w = s.writer()

    def go():
        if not w.conns:
            return s.loop.call_later(0.1, go)
        sent["t"] = time.monotonic()
        w.dpub(s.topic, 2000, b"later", callback=lambda c, d: isinstance(d, nsq.Error) and s.fail(repr(d)))
    s.loop.call_later(0.2, go)
    return [r]


def compressed(s, **kw):
    """A snappy or deflate connection both ways: 30 messages, one of 200 KiB."""
    bodies = [("c%02d" % i).encode() * (1 if i else 40000) for i in range(30)]
    got = []

    def handle(message):
        got.append(message.body)
        if len(got) == len(bodies):
            if sorted(got) != sorted(bodies):
                s.fail("bodies differ")
            else:
                s.done("%d messages" % len(got))
        return True

    r = s.reader("z", handle, **kw)
    publish_all(s, s.writer(**kw), bodies, mpub_from=10)
    return [r]


def lookupd(s):
    """A reader configured with lookupd only finds this node and consumes."""
    http_post(s.http, "/pub?topic=%s" % s.topic, b"found me")

    def handle(message):
        s.done(message.body.decode())
        return True

    return [s.reader("lk", handle, lookupd_http_addresses=["http://" + s.lookupd], lookupd_poll_interval=1)]


SCENARIOS = {
    "fanout": fanout,
    "req": req_delay,
    "timeout": timeout,
    "touch": touch,
    "dpub": dpub,
    "snappy": lambda s: compressed(s, snappy=True),
    "deflate": lambda s: compressed(s, deflate=True),
    "lookupd": lookupd,
}


def main():
    name, tcp, http, lookup, topic = sys.argv[1:6]
    s = Scenario(tcp, http, lookup, topic)
    keep = SCENARIOS[name](s)  # noqa: F841 - readers must stay referenced
    ok, detail = s.run()
    print(("OK " if ok else "FAIL ") + detail)
    sys.stdout.flush()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
