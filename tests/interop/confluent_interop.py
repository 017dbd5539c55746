"""Interop test: confluent-kafka (librdkafka) against sluiced.

Usage: confluent_interop.py HOST:PORT. Exits non-zero on the first mismatch.
Produces with every codec and checks every key, value, header and offset on the way
back; admin create/describe/delete; offsets_for_times; and a consumer long-polling an
empty partition gets a record produced 200 ms later within a second.
"""
import sys
import threading
import time

from confluent_kafka import Consumer, OFFSET_BEGINNING, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

BOOTSTRAP = sys.argv[1]
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def admin():
    a = AdminClient({"bootstrap.servers": BOOTSTRAP})
    futures = a.create_topics([NewTopic("cf-admin", num_partitions=3, replication_factor=1,
                                        config={"retention.ms": "3600000"})])
    futures["cf-admin"].result(10)
    md = a.list_topics(timeout=10)
    check("cf-admin" in md.topics, "created topic listed")
    check(len(md.topics["cf-admin"].partitions) == 3, "three partitions")
    res = ConfigResource(ConfigResource.Type.TOPIC, "cf-admin")
    configs = a.describe_configs([res])[res].result(10)
    check(configs["retention.ms"].value == "3600000", f"retention.ms {configs['retention.ms'].value}")
    a.create_partitions([NewPartitions("cf-admin", 5)])["cf-admin"].result(10)
    check(len(a.list_topics(timeout=10).topics["cf-admin"].partitions) == 5, "five partitions")
    dup = a.create_topics([NewTopic("cf-admin", num_partitions=1, replication_factor=1)])["cf-admin"]
    try:
        dup.result(10)
        check(False, "creating an existing topic fails")
    except Exception as e:  # noqa: BLE001 - the client raises KafkaException
        check("TOPIC_ALREADY_EXISTS" in str(e) or "already exists" in str(e), f"error: {e}")
    a.delete_topics(["cf-admin"])["cf-admin"].result(10)
    for _ in range(50):
        if "cf-admin" not in a.list_topics(timeout=10).topics:
            break
        time.sleep(0.1)
    check("cf-admin" not in a.list_topics(timeout=10).topics, "deleted topic gone")


def produce_consume():
    a = AdminClient({"bootstrap.servers": BOOTSTRAP})
    a.create_topics([NewTopic("cf", num_partitions=1, replication_factor=1)])["cf"].result(10)
    sent = []
    for codec in CODECS:
        p = Producer({"bootstrap.servers": BOOTSTRAP, "compression.type": codec,
                      "linger.ms": 5, "acks": "all"})
        delivered = []
        for i in range(200):
            key = f"{codec}-k{i}".encode()
            value = f"{codec}-v{i}".encode() * (1 + i % 7)
            headers = [("codec", codec.encode()), ("i", str(i).encode())]
            p.produce("cf", key=key, value=value, headers=headers, partition=0,
                      timestamp=1_700_000_000_000 + len(sent) + i,
                      on_delivery=lambda err, msg: delivered.append((err, msg.offset())))
        p.flush(10)
        check(len(delivered) == 200 and all(e is None for e, _ in delivered), f"{codec}: all delivered")
        offsets = sorted(o for _, o in delivered)
        check(offsets == list(range(len(sent), len(sent) + 200)), f"{codec}: offsets contiguous")
        for i in range(200):
            sent.append((f"{codec}-k{i}".encode(), f"{codec}-v{i}".encode() * (1 + i % 7),
                         [("codec", codec.encode()), ("i", str(i).encode())]))
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "cf-assign",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition("cf", 0, OFFSET_BEGINNING)])
    got = []
    deadline = time.time() + 30
    while len(got) < len(sent) and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        check(m.error() is None, f"consume error {m.error()}")
        got.append(m)
    check(len(got) == len(sent), f"consumed {len(got)} of {len(sent)}")
    for n, (m, (k, v, h)) in enumerate(zip(got, sent)):
        check(m.offset() == n, f"offset {m.offset()} != {n}")
        check(m.key() == k and m.value() == v, f"record {n} key/value")
        check(m.headers() == h, f"record {n} headers {m.headers()}")
    # offsets_for_times: the first record at or after the timestamp.
    tp = c.offsets_for_times([TopicPartition("cf", 0, 1_700_000_000_000 + 450)], timeout=10)[0]
    check(tp.offset == 450, f"offset for time: {tp.offset}")
    low, high = c.get_watermark_offsets(TopicPartition("cf", 0), timeout=10)
    check((low, high) == (0, len(sent)), f"watermarks {(low, high)}")
    c.close()


def long_poll():
    a = AdminClient({"bootstrap.servers": BOOTSTRAP})
    a.create_topics([NewTopic("cf-poll", num_partitions=1, replication_factor=1)])["cf-poll"].result(10)
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "cf-poll",
                  "enable.auto.commit": False})
    c.assign([TopicPartition("cf-poll", 0, OFFSET_BEGINNING)])
    c.poll(1.0)  # connected and fetching, nothing there yet
    sent_at = []

    def later():
        time.sleep(0.2)
        p = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 0})
        p.produce("cf-poll", value=b"late", partition=0)
        sent_at.append(time.time())
        p.flush(5)

    t = threading.Thread(target=later)
    start = time.time()
    t.start()
    m = None
    while m is None and time.time() - start < 5:
        m = c.poll(0.1)
    got_at = time.time()
    t.join()
    check(m is not None and m.value() == b"late", "late record received")
    check(got_at - start < 1.2, f"received after {got_at - start:.3f}s")
    c.close()


admin()
produce_consume()
long_poll()
print("confluent-kafka interop: ok")
