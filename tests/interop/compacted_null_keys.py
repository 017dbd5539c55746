"""confluent-kafka (librdkafka) produces records without a key to a compacted topic.

Usage: compacted_null_keys.py HOST:PORT. Exits non-zero on the first mismatch.
One producer, lingering so that the records share produce requests, sends null-key
records to partition 0 of a compacted topic, keyed records to its partition 1 and to a
delete-policy topic, and null-key records to the delete-policy topic. The null-key
records to the compacted topic fail with INVALID_RECORD; every other record is
acknowledged and reads back.
"""
import sys

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BOOTSTRAP = sys.argv[1]


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


a = AdminClient({"bootstrap.servers": BOOTSTRAP})
fs = a.create_topics([
    NewTopic("cnk-compacted", num_partitions=2, replication_factor=1,
             config={"cleanup.policy": "compact"}),
    NewTopic("cnk-plain", num_partitions=1, replication_factor=1),
])
for f in fs.values():
    f.result(20)

p = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 300, "acks": "all",
              "enable.idempotence": False, "retries": 0})
reports = []


def report(err, msg):
    reports.append((msg.topic(), msg.partition(), msg.key(), err, msg.offset()))


for i in range(5):
    p.produce("cnk-compacted", value=f"no key {i}", partition=0, on_delivery=report)
    p.produce("cnk-compacted", key=f"k{i}", value=f"v{i}", partition=1, on_delivery=report)
    p.produce("cnk-plain", key=f"k{i}", value=f"v{i}", partition=0, on_delivery=report)
    p.produce("cnk-plain", value=f"no key {i}", partition=0, on_delivery=report)
check(p.flush(30) == 0, "every record reported")
check(len(reports) == 20, f"20 reports, got {len(reports)}")
for topic, partition, key, err, offset in reports:
    refused = topic == "cnk-compacted" and key is None
    if refused:
        check(err is not None and err.code() == KafkaError.INVALID_RECORD,
              f"null key to the compacted topic: {err}")
        print(f"refused as expected: {err}")
    else:
        check(err is None, f"{topic}-{partition} key {key}: {err}")

for topic, partition, want in [("cnk-compacted", 1, 5), ("cnk-plain", 0, 10), ("cnk-compacted", 0, 0)]:
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "cnk", "enable.partition.eof": True})
    c.assign([TopicPartition(topic, partition, 0)])
    got = 0
    while True:
        m = c.poll(10)
        check(m is not None, f"{topic}-{partition}: read timed out after {got}")
        if m.error():
            check(m.error().code() == KafkaError._PARTITION_EOF, f"consumer error {m.error()}")
            break
        got += 1
    c.close()
    check(got == want, f"{topic}-{partition}: {got} records, expected {want}")
print("ok")
