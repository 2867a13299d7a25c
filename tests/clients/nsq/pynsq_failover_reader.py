"""A pynsq Reader configured with every cluster node's lookupd HTTP address FINs every message
and appends one line per delivery to OUT: `<body> <message id> <wall-clock ms at the FIN>
<attempts>`
(flushed, so the test reads it while the reader runs). The handler returns True, so pynsq
sends FIN right after the line is written.

usage: pynsq_failover_reader.py OUT STOP_FILE TOPIC CHANNEL LOOKUPD_HTTP_ADDR...

Runs until STOP_FILE exists, or DEADLINE_S passes (exit 1).
"""
import os
import sys
import time

import nsq
import tornado.ioloop

DEADLINE_S = 120.0


def main():
    out_path, stop_file, topic, channel = sys.argv[1:5]
    lookupds = ["http://" + a for a in sys.argv[5:]]
    loop = tornado.ioloop.IOLoop.current()
    out = open(out_path, "a", buffering=1)
    state = {"ok": False}

    def handle(message):
        line = (message.body.decode(), message.id.decode(), int(time.time() * 1000), message.attempts)
        out.write("%s %s %d %d\n" % line)
        out.flush()
        return True

    def check_stop():
        if os.path.exists(stop_file):
            state["ok"] = True
            loop.stop()

    reader = nsq.Reader(  # noqa: F841 - must stay referenced
        topic=topic,
        channel=channel,
        message_handler=handle,
        lookupd_http_addresses=lookupds,
        lookupd_poll_interval=1,
        max_in_flight=30,
    )
    tornado.ioloop.PeriodicCallback(check_stop, 100).start()
    loop.call_later(DEADLINE_S, loop.stop)
    loop.start()
    out.close()
    sys.exit(0 if state["ok"] else 1)


if __name__ == "__main__":
    main()
