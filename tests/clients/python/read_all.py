#!/usr/bin/python3
"""Read partition 0 of a topic from its beginning up to its end offset with kafka-python (no
consumer group: assign + seek_to_beginning) and print one JSON line with every record as
[offset, key, value] (key and value as text, null for None).

Exits 1 if the end is not reached within --timeout seconds, 2 on a client error.
"""
import argparse
import json
import sys
import time

from kafka import KafkaConsumer, TopicPartition


def text(b):
    return None if b is None else b.decode("utf-8", "replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    tp = TopicPartition(args.topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=args.bootstrap, enable_auto_commit=False, group_id=None)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    end = consumer.end_offsets([tp])[tp]
    records = []
    deadline = time.monotonic() + args.timeout
    # The position passes the end once every batch before it was read, records or not.
    while consumer.position(tp) < end:
        if time.monotonic() > deadline:
            print(json.dumps({"ok": False, "position": consumer.position(tp), "end": end, "records": records}))
            return 1
        for batch in consumer.poll(timeout_ms=200).values():
            records.extend([r.offset, text(r.key), text(r.value)] for r in batch)
    consumer.close()
    print(json.dumps({"ok": True, "end": end, "records": records}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # a client error, reported as such
        print(json.dumps({"ok": False, "error": repr(e)}))
        sys.exit(2)
