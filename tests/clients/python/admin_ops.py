#!/usr/bin/python3
"""Administrative requests with confluent-kafka's AdminClient over SASL (PLAIN), to see the
per-resource answer a principal gets (a refusal is Kafka's error name, e.g.
TOPIC_AUTHORIZATION_FAILED).

  admin_ops.py --bootstrap H:P --user U --password P OP [ARG ...]

  create-topic T | delete-topic T | create-partitions T N | describe-config T |
  alter-config T KEY=VALUE | describe-broker-config ID | list-groups |
  commit G T   (a Consumer of group G commits offset 0 of T's partition 0)

Prints one JSON line: {"result": "OK" | ERROR_NAME, "groups": [...]} ("error" on a failure
that is not the resource's).
"""
import argparse
import json
import sys

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic


def outcome(future):
    try:
        future.result(timeout=15)
        return "OK"
    except KafkaException as e:
        return e.args[0].name()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("op")
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    admin = AdminClient({"bootstrap.servers": a.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                         "sasl.mechanisms": "PLAIN", "sasl.username": a.user, "sasl.password": a.password})
    out = {}
    try:
        if a.op == "create-topic":
            out["result"] = outcome(admin.create_topics([NewTopic(a.args[0], 1, 1)])[a.args[0]])
        elif a.op == "delete-topic":
            out["result"] = outcome(admin.delete_topics([a.args[0]])[a.args[0]])
        elif a.op == "create-partitions":
            out["result"] = outcome(admin.create_partitions([NewPartitions(a.args[0], int(a.args[1]))])[a.args[0]])
        elif a.op == "describe-config":
            resource = ConfigResource("topic", a.args[0])
            out["result"] = outcome(admin.describe_configs([resource])[resource])
        elif a.op == "describe-broker-config":
            resource = ConfigResource("broker", a.args[0])
            out["result"] = outcome(admin.describe_configs([resource])[resource])
        elif a.op == "alter-config":
            key, value = a.args[1].split("=", 1)
            resource = ConfigResource("topic", a.args[0], set_config={key: value})
            out["result"] = outcome(admin.alter_configs([resource])[resource])
        elif a.op == "list-groups":
            out["groups"] = sorted(g.id for g in admin.list_groups(timeout=15))
            out["result"] = "OK"
        elif a.op == "commit":
            consumer = Consumer({"bootstrap.servers": a.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                                 "sasl.mechanisms": "PLAIN", "sasl.username": a.user, "sasl.password": a.password,
                                 "group.id": a.args[0], "enable.auto.commit": False})
            consumer.commit(offsets=[TopicPartition(a.args[1], 0, 0)], asynchronous=False)
            consumer.close()
            out["result"] = "OK"
        else:
            out["error"] = "unknown op " + a.op
    except KafkaException as e:
        out["error"] = e.args[0].name()
    except Exception as e:
        out["error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
