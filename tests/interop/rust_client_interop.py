"""Interop with sluice-client: a third-party client writes or reads the records that
the Rust tests read or write, in one shared shape.

Usage: rust_client_interop.py HOST:PORT (produce|consume) (confluent|kafka-python)
       TOPIC CODEC COUNT
Record i: key "key-i" (i % 4 in 0, 2), empty (1), null (3); value null (2), empty (3),
"value-i" otherwise; headers h1="hv-i", null=None, ""="" when i % 3 == 0 (kafka-python's
producer leaves out the null one, which it cannot write); timestamp
1700000000000 + i; partition 0. `consume` checks every field and offset and exits
non-zero on the first mismatch.
"""
import sys
import time

BOOTSTRAP, MODE, LIBRARY, TOPIC, CODEC, COUNT = sys.argv[1:7]
COUNT = int(COUNT)
BASE_TS = 1_700_000_000_000


def shape(i):
    key = {0: f"key-{i}".encode(), 1: b"", 2: f"key-{i}".encode()}.get(i % 4)
    value = {2: None, 3: b""}.get(i % 4, f"value-{i}".encode())
    headers = [("h1", f"hv-{i}".encode()), ("null", None), ("", b"")] if i % 3 == 0 else []
    return key, value, headers, BASE_TS + i


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def produce_confluent():
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": BOOTSTRAP, "compression.type": CODEC, "linger.ms": 5})
    errors = []
    for i in range(COUNT):
        key, value, headers, ts = shape(i)
        p.produce(TOPIC, key=key, value=value, headers=headers, partition=0, timestamp=ts,
                  on_delivery=lambda err, _m: err and errors.append(err))
        p.poll(0)
    check(p.flush(30) == 0 and not errors, f"delivered: {errors[:1]}")


def produce_kafka_python():
    from kafka import KafkaProducer
    codec = None if CODEC == "none" else CODEC
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, compression_type=codec, linger_ms=5)
    futures = []
    for i in range(COUNT):
        key, value, headers, ts = shape(i)
        # kafka-python's producer cannot write a null header value.
        headers = [(k, v) for k, v in headers if v is not None]
        futures.append(p.send(TOPIC, key=key, value=value, headers=headers, partition=0,
                              timestamp_ms=ts))
    for f in futures:
        f.get(timeout=30)
    p.close()


def compare(n, offset, key, value, headers, ts):
    want_key, want_value, want_headers, want_ts = shape(n)
    check(offset == n, f"record {n} at offset {offset}")
    check(key == want_key, f"record {n} key {key!r} != {want_key!r}")
    check(value == want_value, f"record {n} value {value!r} != {want_value!r}")
    check(list(headers or []) == want_headers, f"record {n} headers {headers!r}")
    check(ts == want_ts, f"record {n} timestamp {ts}")


def consume_confluent():
    from confluent_kafka import Consumer, OFFSET_BEGINNING, TopicPartition
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"rust-interop-{TOPIC}",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(TOPIC, 0, OFFSET_BEGINNING)])
    n = 0
    deadline = time.time() + 60
    while n < COUNT and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        check(m.error() is None, f"consume error {m.error()}")
        compare(n, m.offset(), m.key(), m.value(), m.headers(), m.timestamp()[1])
        n += 1
    check(n == COUNT, f"read {n} of {COUNT}")
    c.close()


def consume_kafka_python():
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                      auto_offset_reset="earliest")
    c.assign([TopicPartition(TOPIC, 0)])
    c.seek_to_beginning()
    n = 0
    deadline = time.time() + 60
    while n < COUNT and time.time() < deadline:
        for records in c.poll(timeout_ms=1000).values():
            for m in records:
                compare(n, m.offset, m.key, m.value, m.headers, m.timestamp)
                n += 1
    check(n == COUNT, f"read {n} of {COUNT}")
    c.close()


{
    ("produce", "confluent"): produce_confluent,
    ("produce", "kafka-python"): produce_kafka_python,
    ("consume", "confluent"): consume_confluent,
    ("consume", "kafka-python"): consume_kafka_python,
}[(MODE, LIBRARY)]()
