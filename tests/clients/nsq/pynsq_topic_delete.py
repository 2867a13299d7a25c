"""pynsq against Sluice: a Reader whose topic is deleted (by the caller, through Kafka's
DeleteTopics, once this prints READY) is disconnected, reconnects by itself (pynsq retries
an nsqd address 15 s after a close) and reads the re-created topic.

usage: pynsq_topic_delete.py TCP_ADDR HTTP_ADDR TOPIC
Exits 0 printing "OK ..." or 1 with the reason; bounded by DEADLINE_S.
"""
import sys
import time
import urllib.request

import nsq
import tornado.ioloop

DEADLINE_S = 60.0


def http_post(http_addr, path, body=b""):
    req = urllib.request.Request("http://%s%s" % (http_addr, path), data=body, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status


def main():
    tcp, http, topic = sys.argv[1:4]
    loop = tornado.ioloop.IOLoop.current()
    result = {}
    got = []
    phase = {"name": "before"}

    def finish(ok, detail):
        result.setdefault("r", (ok, detail))
        loop.stop()

    def handler(message):
        got.append(message.body.decode())
        return True

    http_post(http, "/pub?topic=%s" % topic, b"before")
    reader = nsq.Reader(topic=topic, channel="c", message_handler=handler, nsqd_tcp_addresses=[tcp],
                        max_in_flight=10)
    started = time.monotonic()

    def step():
        if phase["name"] == "before" and got == ["before"] and reader.conns:
            print("READY", flush=True)
            phase["name"] = "deleted"
        elif phase["name"] == "deleted" and not reader.conns:
            # Closed by the server: re-create by publishing; the reconnect must read it.
            http_post(http, "/pub?topic=%s" % topic, b"after")
            phase["name"] = "closed"
        elif phase["name"] == "closed" and got == ["before", "after"]:
            finish(True, "closed after delete, reconnected, read %s" % got)
            return
        if time.monotonic() - started > DEADLINE_S:
            finish(False, "deadline passed in phase %s, got %s" % (phase["name"], got))
            return
        loop.call_later(0.05, step)

    loop.call_later(0.05, step)
    loop.start()
    ok, detail = result.get("r", (False, "no result"))
    print(("OK " if ok else "FAIL ") + detail)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
