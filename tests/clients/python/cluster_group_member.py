#!/usr/bin/python3
"""A kafka-python (Debian's 2.0.2) KafkaConsumer group member reading TOPIC in GROUP until its
stdin closes, committing automatically every 500 ms and riding out coordinator and leader
changes with kafka-python's own retries. It prints one line per event, as the sarama
`clustergroup` program does, for the test's history:

    assigned <partition>
    read <partition> <offset> <value>
    error <text>
    done <reads>

usage: cluster_group_member.py BOOTSTRAP TOPIC GROUP
"""
import sys

from group_member_output import line, stop_when_stdin_closes
from kafka import ConsumerRebalanceListener, KafkaConsumer


class Listener(ConsumerRebalanceListener):
    def on_partitions_revoked(self, revoked):
        pass

    def on_partitions_assigned(self, assigned):
        for tp in sorted(assigned):
            line("assigned %d" % tp.partition)


def main():
    bootstrap, topic, group = sys.argv[1:4]
    stop = stop_when_stdin_closes()
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        group_id=group,
        client_id="sluice-kafka-python-cluster-group",
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        auto_commit_interval_ms=500,
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
        request_timeout_ms=11000,
        retry_backoff_ms=250,
        reconnect_backoff_max_ms=1000,
        metadata_max_age_ms=1000,
    )
    consumer.subscribe([topic], listener=Listener())
    reads = 0
    while not stop.is_set():
        try:
            batches = consumer.poll(timeout_ms=200)
        except Exception as e:  # kafka-python raises what it does not retry itself
            line("error %s" % str(e).replace("\n", " "))
            continue
        for tp, records in batches.items():
            for r in records:
                reads += 1
                line("read %d %d %s" % (tp.partition, r.offset, r.value.decode()))
    try:
        consumer.close()
    except Exception as e:
        line("error close: %s" % str(e).replace("\n", " "))
    line("done %d" % reads)


if __name__ == "__main__":
    main()
