"""gnsq (gevent NSQ client) against Sluice with nsqd's TLS upgrade and AUTH.

usage: gnsq_secure.py SCENARIO TCP_ADDR TOPIC CA_FILE [SECRET]
Exits 0 printing "OK ..." or 1 with the reason; every scenario is bounded by DEADLINE_S.
"""
from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import ssl  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import gnsq  # noqa: E402

DEADLINE_S = 30.0


def wait_for(cond, what):
    deadline = time.monotonic() + DEADLINE_S
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        gevent.sleep(0.05)


def roundtrip(tcp, topic, ca, secret):
    """PUB and MPUB through a TLS Producer, consumed by a TLS Consumer."""
    tls = {"tls_v1": True, "tls_options": {"ca_certs": ca, "cert_reqs": ssl.CERT_REQUIRED}}
    if secret:
        tls["auth_secret"] = secret
    got = []
    consumer = gnsq.Consumer(topic, "c", nsqd_tcp_addresses=[tcp], max_in_flight=10, **tls)
    consumer.on_message.connect(lambda _c, message: got.append(message.body), weak=False)
    consumer.start(block=False)
    # gnsq 1.0.2's Producer takes the OK that ends any upgrade (TLS, snappy, deflate) for a
    # publish answer and fails (against nsqd too): publish over its NsqdTCPClient instead.
    producer = gnsq.NsqdTCPClient(tcp.split(":")[0], int(tcp.split(":")[1]), **tls)
    producer.connect()
    producer.identify()
    bodies = [("g%03d" % i).encode() for i in range(30)]
    for b in bodies[:10]:
        producer.publish(topic, b)
        producer.check_ok()
    producer.multipublish(topic, bodies[10:])
    producer.check_ok()
    wait_for(lambda: len(got) >= len(bodies), "30 messages")
    conns = list(consumer._connections) + [producer]
    tls_conns = [c for c in conns if "SSL" in type(c.stream.socket).__name__]
    producer.close_stream()
    consumer.close()
    if sorted(got) != sorted(bodies):
        raise AssertionError("got %d messages, %d distinct" % (len(got), len(set(got))))
    return {"messages": len(got), "tls_connections": len(tls_conns)}


def plain_pub(tcp, topic, ca, secret):
    """A connection that does not ask for TLS: PUB gets nsqd's error."""
    conn = gnsq.NsqdTCPClient(tcp.split(":")[0], int(tcp.split(":")[1]))
    conn.connect()
    conn.identify()
    try:
        conn.publish(topic, b"x")
        conn.check_ok()
    except gnsq.errors.NSQException as e:
        return {"error": "%s %s" % (type(e).__name__, e)}
    raise AssertionError("PUB without TLS was accepted")


SCENARIOS = {"roundtrip": roundtrip, "plain_pub": plain_pub}


def main():
    name, tcp, topic, ca = sys.argv[1:5]
    secret = sys.argv[5] if len(sys.argv) > 5 else None
    job = gevent.spawn(SCENARIOS[name], tcp, topic, ca, secret)
    job.join(timeout=DEADLINE_S + 5)
    if not job.successful():
        print("FAIL %r" % (job.exception or "deadline passed"))
        sys.exit(1)
    print("OK " + json.dumps(job.value))


if __name__ == "__main__":
    main()
