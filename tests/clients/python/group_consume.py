#!/usr/bin/python3
"""kafka-python consumer group with manual commits and seek.

Produces N messages over the topic's partitions, then:
1. consumer A (group G, auto commit off) reads half of them and commits what it read;
2. consumer A seeks partition 0 back to offset 0 and re-reads it (seek works inside a group);
3. A closes; consumer B of the same group resumes exactly after the commits and reads the rest;
4. committed() of every partition equals the log end.

Prints one JSON summary line on stdout; exits 1 on any mismatch.
"""
import argparse
import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata


def consumer(args):
    return KafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
        consumer_timeout_ms=int(args.timeout * 1000),
    )


def read(c, want, deadline):
    got = []
    while len(got) < want and time.monotonic() < deadline:
        batch = c.poll(timeout_ms=500, max_records=want - len(got))
        for tp, records in batch.items():
            for r in records:
                got.append((r.partition, r.offset, r.value))
    return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("-n", "--count", type=int, default=400)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    n, errors, summary = args.count, [], {"topic": args.topic, "group": args.group}
    deadline = time.monotonic() + args.timeout

    producer = KafkaProducer(bootstrap_servers=args.bootstrap, acks="all")
    for i in range(n):
        producer.send(args.topic, value=b"m-%05d" % i, partition=i % args.partitions)
    producer.flush(timeout=args.timeout)
    producer.close(timeout=10)
    ends = {p: (n - p + args.partitions - 1) // args.partitions for p in range(args.partitions)}

    a = consumer(args)
    first = read(a, n // 2, deadline)
    summary["first_read"] = len(first)
    if len(first) != n // 2:
        errors.append("consumer A read %d of %d" % (len(first), n // 2))
    # Commit exactly what was read, per partition.
    next_offsets = {}
    for p, off, _ in first:
        next_offsets[p] = max(next_offsets.get(p, 0), off + 1)
    a.commit({TopicPartition(args.topic, p): OffsetAndMetadata(o, "meta-%d" % p) for p, o in next_offsets.items()})
    for p, o in next_offsets.items():
        c = a.committed(TopicPartition(args.topic, p))
        if c != o:
            errors.append("committed(%d) = %r, expected %d" % (p, c, o))
    # Seek partition 0 back to the start and re-read it.
    tp0 = TopicPartition(args.topic, 0)
    if tp0 in a.assignment():
        a.seek(tp0, 0)
        again = []
        while len(again) < 3 and time.monotonic() < deadline:
            for _, records in a.poll(timeout_ms=500).items():
                again.extend(r for r in records if r.partition == 0)
        summary["seek_first_offset"] = again[0].offset if again else None
        if not again or again[0].offset != 0:
            errors.append("seek to 0 did not re-read from offset 0")
    else:
        errors.append("consumer A was not assigned partition 0: %r" % a.assignment())
    a.close(autocommit=False)

    b = consumer(args)
    rest = read(b, n - len(first), deadline)
    summary["second_read"] = len(rest)
    seen = {(p, o) for p, o, _ in first} | {(p, o) for p, o, _ in rest}
    if len(seen) != n or len(first) + len(rest) != n:
        errors.append("resume mismatch: first %d + rest %d, distinct %d, want %d" % (len(first), len(rest), len(seen), n))
    for p, o, _ in rest:
        if o < next_offsets.get(p, 0):
            errors.append("consumer B re-read partition %d offset %d below commit %d" % (p, o, next_offsets[p]))
            break
    b.commit()
    for p in range(args.partitions):
        c = b.committed(TopicPartition(args.topic, p))
        if c != ends[p]:
            errors.append("final committed(%d) = %r, expected %d" % (p, c, ends[p]))
    b.close(autocommit=False)
    summary["errors"] = errors
    summary["ok"] = not errors
    print(json.dumps(summary))
    sys.exit(0 if not errors else 1)


if __name__ == "__main__":
    main()
