"""A gnsq Consumer configured with every cluster node's lookupd HTTP address FINs every
message and appends one line per delivery to OUT: `<body> <message id> <wall-clock ms at the
FIN> <attempts>` (flushed, so the test reads it while the consumer runs). gnsq sends FIN once
the handler returns. The same output as pynsq_failover_reader.py.

usage: gnsq_failover_reader.py OUT STOP_FILE TOPIC CHANNEL LOOKUPD_HTTP_ADDR...

Runs until STOP_FILE exists, or DEADLINE_S passes (exit 1). With GNSQ_DEBUG_LOG set to a
path, gnsq's debug log (every RDY sent, every connection) goes there.
"""
from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import logging  # noqa: E402

import gevent  # noqa: E402
import gnsq  # noqa: E402

DEADLINE_S = 120.0


class Consumer(gnsq.Consumer):
    """gnsq's Consumer, with its RDY loop kept alive through a race of gnsq's own: it lists a
    connection before that connection's socket exists, so a RDY redistribution that runs while a
    (re)connect is under way raises AttributeError ('no attribute stream'), which ends the RDY
    greenlet for good, and every connection made after it stays at RDY 0. Worse, gnsq records
    the RDY count before sending it (`NsqdTCPClient.ready`), so that connection is believed to
    have RDY 1 while the server never got it, and no later redistribution sends it again: the
    consumer never reads that node (seen in cluster_nsq_channels: a whole node's partition
    skipped by gnsq, `rdy=0 sent=0` in the node's disconnect log). nsqd is not involved (it
    happens before a byte is sent); the same stalls gnsq against nsqd when a node restarts.
    Forget the count of every connection without a socket and retry a moment later."""

    def _redistribute_ready_state(self):
        try:
            super()._redistribute_ready_state()
        except Exception as error:  # noqa: BLE001 (any fault would end the RDY greenlet)
            for conn in list(self._connections):
                if getattr(conn, "stream", None) is None:
                    conn.ready_count = 0
            self.logger.warning("RDY redistribution raced a connect (%r); retrying", error)
            gevent.spawn_later(0.1, self.redistribute_ready_state)


def main():
    out_path, stop_file, topic, channel = sys.argv[1:5]
    lookupds = ["http://" + a for a in sys.argv[5:]]
    out = open(out_path, "a", buffering=1)
    if os.environ.get("GNSQ_DEBUG_LOG"):
        logging.basicConfig(filename=os.environ["GNSQ_DEBUG_LOG"], level=logging.DEBUG,
                            format="%(created).3f %(name)s %(levelname)s %(message)s")

    def handle(_consumer, message):
        line = (message.body.decode(), message.id.decode(), int(time.time() * 1000), message.attempts)
        out.write("%s %s %d %d\n" % line)
        out.flush()

    consumer = Consumer(
        topic,
        channel,
        lookupd_http_addresses=lookupds,
        lookupd_poll_interval=1,
        max_in_flight=30,
        # Never give up on a message: every delivery is to be counted.
        max_tries=0,
    )
    consumer.on_message.connect(handle, weak=False)
    consumer.start(block=False)
    deadline = time.monotonic() + DEADLINE_S
    while not os.path.exists(stop_file):
        if time.monotonic() > deadline:
            consumer.close()
            sys.exit(1)
        gevent.sleep(0.1)
    consumer.close()
    out.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
