"""pynsq against Sluice with nsqd's TLS (IDENTIFY tls_v1, upgrade in place) and AUTH.

usage: pynsq_secure.py SCENARIO TCP_ADDR TOPIC CA_FILE [SECRET [CERT KEY]]

Each scenario checks what it proves and exits 0 printing "OK ..." or exits 1 with the
reason. Every scenario is bounded by DEADLINE_S.
"""
import json
import os
import ssl
import sys
import time
import urllib.request

import nsq
import tornado.iostream
import tornado.ioloop

DEADLINE_S = 30.0


class Scenario:
    def __init__(self, tcp, topic, ca, secret=None, cert=None, key=None):
        self.tcp, self.topic, self.ca, self.secret = tcp, topic, ca, secret
        self.tls_options = {"ca_certs": ca, "cert_reqs": ssl.CERT_REQUIRED}
        if cert:
            self.tls_options.update({"certfile": cert, "keyfile": key})
        self.loop = tornado.ioloop.IOLoop.current()
        self.result = None
        self.loop.call_later(DEADLINE_S, self.fail, "deadline passed")

    def done(self, detail=""):
        if self.result is None:
            self.result = (True, detail)
        self.loop.stop()

    def fail(self, reason):
        if self.result is None:
            self.result = (False, reason)
        self.loop.stop()

    def secure(self, kw):
        kw.setdefault("tls_v1", True)
        if kw["tls_v1"]:
            kw.setdefault("tls_options", self.tls_options)
        if self.secret is not None:
            kw.setdefault("auth_secret", self.secret)
        return kw

    def run(self):
        self.loop.start()
        return self.result or (False, "stopped without a result")


def tls_stream(conn):
    return isinstance(conn.stream, tornado.iostream.SSLIOStream)


def roundtrip(s, **kw):
    """PUB and MPUB over TLS with one Writer, consumed over TLS by one Reader."""
    n = 40
    bodies = [("m%03d" % i).encode() for i in range(n)]
    got = []
    big = b"x" * 100_000

    def handle(message):
        got.append(message.body)
        if len(got) == n + 1:
            check()
        return True

    def check():
        if sorted(b for b in got if b != big) != sorted(bodies) or big not in got:
            return s.fail("got %d messages, %d distinct" % (len(got), len(set(got))))
        conns = list(reader.conns.values()) + list(writer.conns.values())
        if not conns or not all(tls_stream(c) for c in conns):
            return s.fail("a connection is not TLS: %r" % [type(c.stream).__name__ for c in conns])
        s.done(json.dumps({"messages": len(got), "tls_connections": len(conns)}))

    reader = nsq.Reader(topic=s.topic, channel="c", message_handler=handle, nsqd_tcp_addresses=[s.tcp],
                        max_in_flight=10, **s.secure(dict(kw)))
    writer = nsq.Writer([s.tcp], **s.secure(dict(kw)))

    def cb(conn, data):
        if isinstance(data, nsq.Error):
            s.fail("publish failed: %r" % data)

    def go():
        if not writer.conns or not reader.conns:
            return s.loop.call_later(0.1, go)
        for b in bodies[:20]:
            writer.pub(s.topic, b, callback=cb)
        writer.mpub(s.topic, bodies[20:] + [big], callback=cb)

    s.loop.call_later(0.1, go)
    return reader, writer


def bulk(s):
    """10 MB over TLS both ways: 500 messages of 20 KiB in MPUBs of 25, consumed with 200 in
    flight, so the broker's writes fill the socket and TLS records wait in rustls."""
    n, size = 500, 20 * 1024
    got = set()

    def handle(message):
        got.add(message.body[:8])
        if len(got) == n:
            s.done(json.dumps({"messages": len(got), "bytes": n * size}))
        return True

    reader = nsq.Reader(topic=s.topic, channel="bulk", message_handler=handle, nsqd_tcp_addresses=[s.tcp],
                        max_in_flight=200, **s.secure({}))
    writer = nsq.Writer([s.tcp], **s.secure({}))

    def cb(conn, data):
        if isinstance(data, nsq.Error):
            s.fail("publish failed: %r" % data)

    def go():
        if not writer.conns or not reader.conns:
            return s.loop.call_later(0.1, go)
        # 25 per MPUB: an MPUB is one batch, within --message-max-bytes (1 MiB by default).
        for batch in range(n // 25):
            bodies = [b"%08d" % (batch * 25 + i) + b"x" * (size - 8) for i in range(25)]
            writer.mpub(s.topic, bodies, callback=cb)

    s.loop.call_later(0.1, go)
    return reader, writer


def probe(s, commands, tls_v1=True, secret=None):
    """One AsyncConn: once ready, sends each command in turn and records the first answer
    (response or error) to each; a closed connection ends the probe."""
    kw = {"tls_v1": tls_v1, "auth_secret": secret}
    if tls_v1:
        kw["tls_options"] = s.tls_options
    conn = nsq.AsyncConn(s.tcp.split(":")[0], int(s.tcp.split(":")[1]), **kw)
    answers = []
    pending = list(commands)

    def next_command():
        if not pending:
            return s.done(json.dumps(answers))
        conn.send(pending.pop(0))

    def on_ready(**_):
        conn.on(nsq.event.RESPONSE, lambda data, **_: (answers.append(data.decode()), next_command()))
        next_command()

    def on_error(error, **_):
        answers.append(str(error))
        s.done(json.dumps(answers))

    def on_auth(data, **_):
        answers.append("AUTH " + json.dumps(data, sort_keys=True))

    conn.on(nsq.event.READY, on_ready)
    conn.on(nsq.event.ERROR, on_error)
    conn.on(nsq.event.AUTH_RESPONSE, on_auth)
    conn.on(nsq.event.CLOSE, lambda **_: s.done(json.dumps(answers + ["closed"])))
    conn.connect()
    return conn


def pub_twice(s):
    """PUB, wait past the permissions' TTL, PUB again (the broker asks the auth server again)."""
    conn = None

    def second():
        conn.send(nsq.protocol.pub(s.topic, b"second"))

    def start(c):
        nonlocal conn
        conn = c
        s.loop.call_later(1.5, second)

    return probe_then(s, start)


def probe_then(s, start):
    conn = nsq.AsyncConn(s.tcp.split(":")[0], int(s.tcp.split(":")[1]), **s.secure({}))
    answers = []

    def on_ready(**_):
        conn.on(nsq.event.RESPONSE, on_response)
        conn.send(nsq.protocol.pub(s.topic, b"first"))
        start(conn)

    def on_response(data, **_):
        answers.append(data.decode())
        if len(answers) == 2:
            s.done(json.dumps(answers))

    conn.on(nsq.event.READY, on_ready)
    conn.on(nsq.event.ERROR, lambda error, **_: s.fail("error: %s" % error))
    conn.connect()
    return conn


def sub_stats(s):
    """A Reader subscribes (over TLS, with AUTH when a secret is given); once connected, the
    broker's /stats (STATS_URL) entry for it is printed."""
    reader = nsq.Reader(topic=s.topic, channel="stats", message_handler=lambda m: True,
                        nsqd_tcp_addresses=[s.tcp], max_in_flight=1, **s.secure({}))

    def poll():
        if reader.conns:
            with urllib.request.urlopen(os.environ["STATS_URL"] + "&topic=" + s.topic, timeout=10) as resp:
                stats = json.loads(resp.read())
            for topic in stats.get("topics", []):
                for channel in topic.get("channels", []):
                    if channel.get("clients"):
                        return s.done(json.dumps(channel["clients"][0], sort_keys=True))
        s.loop.call_later(0.1, poll)

    s.loop.call_later(0.1, poll)
    return reader


SCENARIOS = {
    "sub_stats": sub_stats,
    "roundtrip": roundtrip,
    "bulk": bulk,
    "roundtrip_snappy": lambda s: roundtrip(s, snappy=True),
    "roundtrip_deflate": lambda s: roundtrip(s, deflate=True),
    "plain_pub": lambda s: probe(s, [nsq.protocol.pub(s.topic, b"x")], tls_v1=False),
    "pub": lambda s: probe(s, [nsq.protocol.pub(s.topic, b"x")], secret=s.secret),
    "pub_other": lambda s: probe(s, [nsq.protocol.pub(s.topic, b"x"), nsq.protocol.pub(s.topic + "_other", b"x")],
                                 secret=s.secret),
    "sub": lambda s: probe(s, [nsq.protocol.subscribe(s.topic, "c")], secret=s.secret),
    "no_auth_pub": lambda s: probe(s, [nsq.protocol.pub(s.topic, b"x")]),
    "pub_twice": pub_twice,
}


def main():
    name, tcp, topic, ca = sys.argv[1:5]
    secret = sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] else None
    cert, key = (sys.argv[6], sys.argv[7]) if len(sys.argv) > 7 else (None, None)
    s = Scenario(tcp, topic, ca, secret, cert, key)
    keep = SCENARIOS[name](s)  # noqa: F841 - connections must stay referenced
    ok, detail = s.run()
    print(("OK " if ok else "FAIL ") + detail)
    sys.stdout.flush()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
