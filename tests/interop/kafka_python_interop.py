"""Interop test: kafka-python against sluiced.

Usage: kafka_python_interop.py HOST:PORT. Exits non-zero on the first mismatch.
"""
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

BOOTSTRAP = sys.argv[1]
CODECS = [None, "gzip", "snappy", "lz4", "zstd"]


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
admin.create_topics([NewTopic("kp", num_partitions=1, replication_factor=1),
                     NewTopic("kp-gone", num_partitions=2, replication_factor=1,
                              topic_configs={"segment.bytes": "1048576"})])
check({"kp", "kp-gone"} <= set(admin.list_topics()), "topics created")
desc = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "kp-gone")])
text = str(desc)
check("segment.bytes" in text and "1048576" in text, "describe configs shows the override")
admin.delete_topics(["kp-gone"])
deadline = time.time() + 10
while "kp-gone" in admin.list_topics() and time.time() < deadline:
    time.sleep(0.1)
check("kp-gone" not in admin.list_topics(), "topic deleted")

sent = []
for codec in CODECS:
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, compression_type=codec, acks="all",
                      linger_ms=5, enable_idempotence=False)
    futures = []
    for i in range(200):
        key = f"{codec}-k{i}".encode()
        value = f"{codec}-v{i}".encode() * (1 + i % 5)
        headers = [("codec", str(codec).encode()), ("i", str(i).encode())]
        ts = 1_700_000_000_000 + len(sent)
        futures.append(p.send("kp", key=key, value=value, headers=headers, partition=0,
                              timestamp_ms=ts))
        sent.append((key, value, headers, ts))
    p.flush()
    offsets = [f.get(timeout=10).offset for f in futures]
    check(offsets == list(range(len(sent) - 200, len(sent))), f"{codec}: offsets {offsets[:3]}...")
    p.close()

c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, consumer_timeout_ms=5000)
tp = TopicPartition("kp", 0)
c.assign([tp])
c.seek_to_beginning(tp)
got = []
for m in c:
    got.append(m)
    if len(got) == len(sent):
        break
check(len(got) == len(sent), f"consumed {len(got)} of {len(sent)}")
for n, (m, (k, v, h, ts)) in enumerate(zip(got, sent)):
    check(m.offset == n, f"offset {m.offset} != {n}")
    check(m.key == k and m.value == v, f"record {n} key/value")
    check(list(m.headers) == h, f"record {n} headers {m.headers}")
    check(m.timestamp == ts, f"record {n} timestamp {m.timestamp} != {ts}")
found = c.offsets_for_times({tp: 1_700_000_000_000 + 321})[tp]
check(found is not None and found.offset == 321, f"offsets_for_times {found}")
check(c.beginning_offsets([tp])[tp] == 0, "beginning offset")
check(c.end_offsets([tp])[tp] == len(sent), "end offset")
c.close()
print("kafka-python interop: ok")
