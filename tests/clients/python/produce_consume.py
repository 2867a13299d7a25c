#!/usr/bin/python3
"""Produce N keyed messages with headers through kafka-python (acks='all'), read them back
without a consumer group (assign + seek_to_beginning) and verify offsets and bytes exactly.

Prints one JSON summary line on stdout; exits 1 on any mismatch, 2 on a client error.
"""
import argparse
import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def payload(i):
    # Varied lengths and every byte value, so any transcoding shows up.
    return ("value-%05d-" % i).encode() + bytes((i * 7 + j) % 256 for j in range(i % 150))


def key(i):
    return ("key-%05d" % i).encode()


def headers(i):
    return [("seq", str(i).encode()), ("client", b"kafka-python")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("-n", "--count", type=int, default=1000)
    ap.add_argument("--compression", default=None, choices=[None, "gzip", "snappy", "lz4", "zstd"])
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds for each phase")
    args = ap.parse_args()
    n = args.count
    summary = {"topic": args.topic, "count": n, "compression": args.compression or "none"}
    errors = []

    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap,
        acks="all",
        compression_type=args.compression,
        linger_ms=5,
        request_timeout_ms=int(args.timeout * 1000),
        max_block_ms=int(args.timeout * 1000),
    )
    started = time.monotonic()
    futures = [
        producer.send(args.topic, key=key(i), value=payload(i), partition=0, headers=headers(i))
        for i in range(n)
    ]
    producer.flush(timeout=args.timeout)
    acked = []
    for i, fut in enumerate(futures):
        md = fut.get(timeout=args.timeout)
        acked.append((md.partition, md.offset))
    producer.close(timeout=10)
    summary["produce_seconds"] = round(time.monotonic() - started, 3)
    for i, (p, off) in enumerate(acked):
        if p != 0 or off != i:
            errors.append("message %d acknowledged at %d/%d, expected 0/%d" % (i, p, off, i))
            break

    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=200,
    )
    tp = TopicPartition(args.topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    got = []
    deadline = time.monotonic() + args.timeout
    started = time.monotonic()
    while len(got) < n and time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=500, max_records=5000)
        for records in batch.values():
            got.extend(records)
    # Look briefly for anything beyond n (duplicates, strays).
    extra = consumer.poll(timeout_ms=500)
    extra_count = sum(len(r) for r in extra.values())
    end_offsets = consumer.end_offsets([tp])
    consumer.close()
    summary["consume_seconds"] = round(time.monotonic() - started, 3)
    summary["consumed"] = len(got)
    summary["extra"] = extra_count
    summary["end_offset"] = end_offsets.get(tp)

    if len(got) != n:
        errors.append("consumed %d of %d messages" % (len(got), n))
    if extra_count:
        errors.append("%d records beyond the %d produced" % (extra_count, n))
    if end_offsets.get(tp) != n:
        errors.append("end offset %r, expected %d" % (end_offsets.get(tp), n))
    for i, rec in enumerate(got[:n]):
        want = (i, key(i), payload(i), headers(i))
        have = (rec.offset, rec.key, rec.value, [(k, v) for k, v in rec.headers])
        if have != want:
            errors.append("record %d mismatch: got %r, want %r" % (i, have[:3], want[:3]))
            if len(errors) > 5:
                break

    summary["ok"] = not errors
    summary["errors"] = errors
    print(json.dumps(summary))
    return 0 if not errors else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # client-side failure: still print a JSON line for the test
        print(json.dumps({"ok": False, "errors": ["%s: %s" % (type(e).__name__, e)]}))
        sys.exit(2)
