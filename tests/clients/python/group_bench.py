#!/usr/bin/python3
"""Consumer-group benchmark (a program that prints figures, not a test), with
confluent_kafka (librdkafka) against any Kafka-compatible address:

1. join-to-consuming: 3 members subscribe to a 12-partition topic holding messages; time
   from the first subscribe until every member has received a message (median of runs);
2. OffsetCommit throughput: one member commits offsets as fast as it can, synchronously
   (one round trip each) and asynchronously (pipelined), commits per second.

Prints one JSON line. Usage: group_bench.py --bootstrap HOST:PORT [--runs 5]
"""
import argparse
import json
import statistics
import threading
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 12


def consumer(bootstrap, group, extra=None):
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 500,
        "broker.address.family": "v4",
    }
    conf.update(extra or {})
    return Consumer(conf)


def join_to_consuming(bootstrap, topic):
    group = "bench-join-" + uuid.uuid4().hex[:8]
    members = [consumer(bootstrap, group) for _ in range(3)]
    first = [None] * 3
    start = time.monotonic()
    stop = threading.Event()

    def run(i):
        members[i].subscribe([topic])
        while not stop.is_set():
            m = members[i].poll(0.05)
            if m is not None and not m.error() and first[i] is None:
                first[i] = time.monotonic() - start
            if all(f is not None for f in first):
                break

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    stop.set()
    elapsed = max(f for f in first if f is not None) if all(first) else None
    for m in members:
        m.close()
    return elapsed


def commit_throughput(bootstrap, topic, n, asynchronous):
    c = consumer(bootstrap, "bench-commit-" + uuid.uuid4().hex[:8])
    c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    done = [0]
    start = time.monotonic()
    for i in range(n):
        tp = [TopicPartition(topic, i % PARTITIONS, i + 1)]
        if asynchronous:
            while True:
                try:
                    c.commit(offsets=tp, asynchronous=True)
                    break
                except Exception:
                    c.poll(0.001)
        else:
            c.commit(offsets=tp, asynchronous=False)
    if asynchronous:
        # A final synchronous commit returns after every earlier one was answered (in order).
        c.commit(offsets=[TopicPartition(topic, 0, n + 1)], asynchronous=False)
    elapsed = time.monotonic() - start
    c.close()
    return n / elapsed


def commit_batched(bootstrap, topic, requests):
    """Each synchronous OffsetCommit carries all 12 partitions: partition offsets per second."""
    c = consumer(bootstrap, "bench-batch-" + uuid.uuid4().hex[:8])
    start = time.monotonic()
    for i in range(requests):
        c.commit(offsets=[TopicPartition(topic, p, i + 1) for p in range(PARTITIONS)], asynchronous=False)
    elapsed = time.monotonic() - start
    c.close()
    return requests * PARTITIONS / elapsed


def round_trips(bootstrap, topic, n):
    """Baseline: synchronous ListOffsets round trips per second from the same client."""
    c = consumer(bootstrap, "bench-rtt-" + uuid.uuid4().hex[:8])
    start = time.monotonic()
    for i in range(n):
        c.get_watermark_offsets(TopicPartition(topic, i % PARTITIONS), timeout=10, cached=False)
    elapsed = time.monotonic() - start
    c.close()
    return n / elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--commits", type=int, default=20000)
    args = ap.parse_args()
    topic = "bench-groups-" + uuid.uuid4().hex[:8]
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    for f in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
        f.result(30)
    p = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 5})
    for i in range(PARTITIONS * 10):
        p.produce(topic, value=b"x" * 100, partition=i % PARTITIONS)
    p.flush(30)
    joins = [join_to_consuming(args.bootstrap, topic) for _ in range(args.runs)]
    sync_rates = [commit_throughput(args.bootstrap, topic, args.commits // 10, False) for _ in range(3)]
    async_rates = [commit_throughput(args.bootstrap, topic, args.commits, True) for _ in range(3)]
    batched = [commit_batched(args.bootstrap, topic, args.commits // 10) for _ in range(3)]
    rtt = [round_trips(args.bootstrap, topic, args.commits // 10) for _ in range(3)]
    print(json.dumps({
        "join_to_consuming_ms_median": round(statistics.median(j for j in joins if j) * 1000),
        "join_to_consuming_ms_runs": [round(j * 1000) if j else None for j in joins],
        "commits_per_s_sync_median": round(statistics.median(sync_rates)),
        "commits_per_s_async_median": round(statistics.median(async_rates)),
        "partition_commits_per_s_batched12_median": round(statistics.median(batched)),
        "baseline_list_offsets_round_trips_per_s_median": round(statistics.median(rtt)),
    }))


if __name__ == "__main__":
    main()
