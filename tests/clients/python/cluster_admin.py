#!/usr/bin/env python3
"""kafka-python's admin client against a Sluice cluster: create a topic (replication factor
3), change a config and read it back with DescribeConfigs, grow it to 2 partitions (and see a
shrink refused), delete it. Prints one JSON line: the error code of each step and what
DescribeConfigs and the partition count showed. Every wait is bounded by --timeout."""

import argparse
import json
import time

from kafka import KafkaConsumer
from kafka.errors import KafkaError
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions, NewTopic

RETENTION_MS = "1234567"


def described_retention(admin, topic):
    """retention.ms as DescribeConfigs answers it, or None."""
    for response in admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)]):
        for resource in response.resources:
            if resource[0] != 0:
                continue
            for entry in resource[4]:
                if entry[0] == "retention.ms":
                    return entry[1]
    return None


def partition_count(bootstrap, topic):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return len(consumer.partitions_for_topic(topic) or [])
    finally:
        consumer.close()


def wait_for(what, timeout, probe):
    deadline = time.monotonic() + timeout
    value = probe()
    while not what(value) and time.monotonic() < deadline:
        time.sleep(0.2)
        value = probe()
    return value


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    bootstrap = args.bootstrap.split(",")
    timeout_ms = int(args.timeout * 1000)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sluice-cluster-admin",
                             request_timeout_ms=timeout_ms)
    summary = {}
    created = admin.create_topics([NewTopic(args.topic, num_partitions=1, replication_factor=3)],
                                  timeout_ms=timeout_ms)
    summary["create"] = [t[1] for t in created.topic_errors]
    altered = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, args.topic,
                                                  configs={"retention.ms": RETENTION_MS})])
    summary["alter"] = [r[0] for r in altered.resources]
    summary["retention_ms"] = wait_for(lambda v: v == RETENTION_MS, args.timeout,
                                       lambda: described_retention(admin, args.topic))
    grown = admin.create_partitions({args.topic: NewPartitions(total_count=2)}, timeout_ms=timeout_ms)
    summary["grow"] = [t[1] for t in grown.topic_errors]
    summary["partitions"] = wait_for(lambda n: n == 2, args.timeout,
                                     lambda: partition_count(bootstrap, args.topic))
    try:
        # kafka-python raises the broker's error for CreatePartitions.
        admin.create_partitions({args.topic: NewPartitions(total_count=1)}, timeout_ms=timeout_ms)
        summary["shrink"] = 0
    except KafkaError as e:
        summary["shrink"] = getattr(e, "errno", -1)
    deleted = admin.delete_topics([args.topic], timeout_ms=timeout_ms)
    summary["delete"] = [t[1] for t in deleted.topic_error_codes]
    admin.close()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
