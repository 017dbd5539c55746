"""kafka-python produces records without a key to a compacted topic.

Usage: kafka_python_compacted_null_keys.py HOST:PORT. Exits non-zero on the first mismatch.
One producer, lingering so that the records share produce requests, sends null-key
records to partition 0 of a compacted topic and keyed records to its partition 1 and to
a delete-policy topic, whose partition also gets null-key records. The null-key records
to the compacted topic fail with INVALID_RECORD (kafka-python's InvalidRecordError);
every other record is acknowledged and reads back.
"""
import sys

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import InvalidRecordError

BOOTSTRAP = sys.argv[1]


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
admin.create_topics([
    NewTopic("kpnk-compacted", num_partitions=2, replication_factor=1,
             topic_configs={"cleanup.policy": "compact"}),
    NewTopic("kpnk-plain", num_partitions=1, replication_factor=1),
])
admin.close()

p = KafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=300, acks="all", retries=0,
                  enable_idempotence=False)
sent = []
for i in range(5):
    sent.append(("kpnk-compacted", 0, None,
                 p.send("kpnk-compacted", value=f"no key {i}".encode(), partition=0)))
    sent.append(("kpnk-compacted", 1, b"k%d" % i,
                 p.send("kpnk-compacted", key=b"k%d" % i, value=b"v", partition=1)))
    sent.append(("kpnk-plain", 0, b"k%d" % i,
                 p.send("kpnk-plain", key=b"k%d" % i, value=b"v", partition=0)))
    sent.append(("kpnk-plain", 0, None,
                 p.send("kpnk-plain", value=f"no key {i}".encode(), partition=0)))
p.flush(30)
for topic, partition, key, future in sent:
    try:
        meta = future.get(timeout=30)
        check(not (topic == "kpnk-compacted" and key is None),
              f"null key to the compacted topic was acknowledged at {meta.offset}")
    except InvalidRecordError as e:
        check(topic == "kpnk-compacted" and key is None, f"{topic}-{partition} key {key}: {e}")
        print(f"refused as expected: {e}")
p.close()

for topic, partition, want in [("kpnk-compacted", 1, 5), ("kpnk-plain", 0, 10),
                               ("kpnk-compacted", 0, 0)]:
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                      consumer_timeout_ms=3000)
    tp = TopicPartition(topic, partition)
    c.assign([tp])
    c.seek(tp, 0)
    got = sum(1 for _ in c)
    c.close()
    check(got == want, f"{topic}-{partition}: {got} records, expected {want}")
print("ok")
