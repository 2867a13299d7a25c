#!/usr/bin/python3
"""Log in with SASL (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) through kafka-python or
confluent-kafka, produce N messages with acks=all and read them back without a group.

Prints one JSON summary line on stdout: {"ok": bool, "consumed": n, "error": "..."}; a login
refused by the broker shows as ok=false with the client's own error text.
"""
import argparse
import json
import sys
import time


def kafka_python(args):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    common = dict(
        bootstrap_servers=args.bootstrap,
        security_protocol=args.protocol,
        sasl_mechanism=args.mechanism,
        sasl_plain_username=args.user,
        sasl_plain_password=args.password,
        # Skip version probing: it would open extra connections before the login.
        api_version=(2, 5, 0),
    )
    if args.cafile:
        common["ssl_cafile"] = args.cafile
    # A refused login makes kafka-python retry until max_block_ms: bound it.
    producer = KafkaProducer(acks="all", max_block_ms=int(args.timeout * 1000), **common)
    for i in range(args.count):
        producer.send(args.topic, value=b"m-%d" % i).get(timeout=args.timeout)
    producer.close()
    consumer = KafkaConsumer(consumer_timeout_ms=int(args.timeout * 1000), **common)
    tp = TopicPartition(args.topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    values = []
    for message in consumer:
        values.append(message.value)
        if len(values) == args.count:
            break
    consumer.close()
    return values


def confluent(args):
    from confluent_kafka import Consumer, Producer, TopicPartition

    common = {
        "bootstrap.servers": args.bootstrap,
        "security.protocol": args.protocol,
        "sasl.mechanisms": args.mechanism,
        "sasl.username": args.user,
        "sasl.password": args.password,
    }
    if args.cafile:
        common["ssl.ca.location"] = args.cafile
    errors = []
    producer = Producer(dict(common, acks="all", error_cb=lambda e: errors.append(str(e))))
    delivered = []
    for i in range(args.count):
        producer.produce(args.topic, value=b"m-%d" % i, on_delivery=lambda err, msg: delivered.append(err))
    remaining = producer.flush(args.timeout)
    if remaining or any(delivered) or len(delivered) != args.count:
        raise RuntimeError("produce failed: %s %s" % ([str(e) for e in delivered if e], errors[:3]))
    consumer = Consumer(dict(common, **{"group.id": "sasl-test", "enable.auto.commit": False}))
    consumer.assign([TopicPartition(args.topic, 0, 0)])
    values = []
    deadline = time.time() + args.timeout
    while len(values) < args.count and time.time() < deadline:
        message = consumer.poll(1.0)
        if message is not None and not message.error():
            values.append(message.value())
    consumer.close()
    return values


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", choices=["kafka-python", "confluent"], required=True)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--protocol", default="SASL_PLAINTEXT")
    ap.add_argument("--mechanism", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--cafile", default=None)
    ap.add_argument("--topic", required=True)
    ap.add_argument("-n", "--count", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=20.0)
    args = ap.parse_args()
    summary = {"client": args.client, "mechanism": args.mechanism}
    try:
        values = (kafka_python if args.client == "kafka-python" else confluent)(args)
        expected = [b"m-%d" % i for i in range(args.count)]
        summary.update(ok=values == expected, consumed=len(values))
    except Exception as e:  # the client's own error is what the test checks
        summary.update(ok=False, consumed=0, error="%s: %s" % (type(e).__name__, e))
    print(json.dumps(summary))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
