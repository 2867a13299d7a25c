"""A pynsq Reader configured only with one cluster node's lookupd HTTP address consumes a
topic until it has seen COUNT distinct bodies; prints them as a JSON list.

usage: pynsq_cluster_reader.py LOOKUPD_HTTP_ADDR TOPIC CHANNEL COUNT

Exits 0 with the bodies, or 1 (printing what it saw) when DEADLINE_S passes first.
"""
import json
import sys

import nsq
import tornado.ioloop

DEADLINE_S = 40.0


def main():
    lookupd, topic, channel, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    loop = tornado.ioloop.IOLoop.current()
    seen = set()
    state = {"ok": False}

    def handle(message):
        seen.add(message.body.decode())
        if len(seen) >= count:
            state["ok"] = True
            loop.call_later(0.2, loop.stop)
        return True

    reader = nsq.Reader(  # noqa: F841 - must stay referenced
        topic=topic,
        channel=channel,
        message_handler=handle,
        lookupd_http_addresses=["http://" + lookupd],
        lookupd_poll_interval=1,
        max_in_flight=50,
    )
    loop.call_later(DEADLINE_S, loop.stop)
    loop.start()
    print(json.dumps(sorted(seen)))
    sys.stdout.flush()
    sys.exit(0 if state["ok"] else 1)


if __name__ == "__main__":
    main()
