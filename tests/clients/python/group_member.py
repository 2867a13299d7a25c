#!/usr/bin/python3
"""A confluent_kafka (librdkafka) group member that runs until killed.

Prints "assigned <p,p,...>" on every assignment and "msg <partition> <offset>" per message,
flushing each line, so a test can kill -9 it at a known point. Never leaves the group on
its own: the point is to die without a LeaveGroup.
"""
import argparse
import sys

from confluent_kafka import Consumer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--session-timeout-ms", default="6000")
    ap.add_argument("--instance-id", default=None)
    args = ap.parse_args()
    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": "500",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "broker.address.family": "v4",
    }
    if args.instance_id:
        conf["group.instance.id"] = args.instance_id

    def on_assign(consumer, partitions):
        print("assigned " + ",".join(str(p.partition) for p in partitions), flush=True)

    c = Consumer(conf)
    c.subscribe([args.topic], on_assign=on_assign)
    while True:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            print("error %s" % m.error(), file=sys.stderr, flush=True)
            continue
        print("msg %d %d" % (m.partition(), m.offset()), flush=True)


if __name__ == "__main__":
    main()
