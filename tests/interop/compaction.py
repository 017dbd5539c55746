"""Compaction against sluiced, driven by confluent-kafka (librdkafka).

Usage:
  compaction.py HOST:PORT create TOPIC DELETE_RETENTION_MS
  compaction.py HOST:PORT produce TOPIC CODEC STATE_FILE ROUNDS
      ROUNDS rounds of overwrites of 1,000 keys (every 11th record a tombstone), acks=all;
      the offset and value of the latest acknowledged record per key are merged into
      STATE_FILE (JSON). Prints `produced_bytes N`.
  compaction.py HOST:PORT seal TOPIC STATE_FILE
      waits past segment.ms and produces one marker record, so that every record before
      it is in a sealed segment the cleaner may clean.
  compaction.py HOST:PORT verify TOPIC STATE_FILE TOMBSTONES(present|absent) TIMEOUT_S
      reads the partition from the beginning until it shows exactly the latest record of
      every key at its original offset (and tombstones only if `present`), then the marker;
      retries until TIMEOUT_S while the cleaner works, and fails with the last difference.
"""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BOOTSTRAP, MODE, TOPIC = sys.argv[1], sys.argv[2], sys.argv[3]
KEYS = 1000
MARKER = "__marker__"


def fail(what):
    raise SystemExit(f"FAILED: {what}")


def create(delete_retention_ms):
    a = AdminClient({"bootstrap.servers": BOOTSTRAP})
    config = {
        "cleanup.policy": "compact",
        "delete.retention.ms": delete_retention_ms,
        "min.cleanable.dirty.ratio": "0.01",
        "segment.ms": "1000",
    }
    a.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1, config=config)])[
        TOPIC
    ].result(20)


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"latest": {}, "round": 0}


def produce(codec, path, rounds):
    state = load(path)
    p = Producer({"bootstrap.servers": BOOTSTRAP, "compression.type": codec, "acks": "all",
                  "linger.ms": 20, "batch.num.messages": 100, "enable.idempotence": False,
                  "max.in.flight.requests.per.connection": 1})
    acked = []
    errors = []

    def report(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            acked.append((msg.offset(), msg.key().decode(), None if msg.value() is None else msg.value().decode()))

    produced = 0
    n = 0
    for r in range(state["round"], state["round"] + rounds):
        for k in range(KEYS):
            n += 1
            key = f"key-{k:04d}"
            value = None if (r > 0 and n % 11 == 0) else f"value-{r}-{k}-" + "x" * 60
            produced += len(key) + (len(value) if value else 0)
            p.produce(TOPIC, key=key, value=value, partition=0, on_delivery=report)
            p.poll(0)
    left = p.flush(60)
    if left or errors:
        fail(f"{left} unacknowledged, errors: {errors[:3]}")
    for offset, key, value in sorted(acked):
        state["latest"][key] = [offset, value]
    state["round"] += rounds
    with open(path, "w") as f:
        json.dump(state, f)
    print(f"produced_bytes {produced}")


def seal(path):
    state = load(path)
    time.sleep(1.5)
    p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all"})
    out = []
    p.produce(TOPIC, key=MARKER, value="m", partition=0,
              on_delivery=lambda err, msg: out.append((err, msg.offset())))
    p.flush(30)
    if not out or out[0][0] is not None:
        fail(f"marker not acknowledged: {out}")
    state["marker"] = out[0][1]
    with open(path, "w") as f:
        json.dump(state, f)


def read_all():
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"verify-{time.time()}",
                  "enable.auto.commit": False, "check.crcs": True, "fetch.max.bytes": 1 << 20})
    c.assign([TopicPartition(TOPIC, 0, 0)])
    seen = []
    deadline = time.time() + 30
    while time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            fail(f"consumer error {m.error()}")
        v = None if m.value() is None else m.value().decode()
        seen.append((m.offset(), m.key().decode(), v))
        if m.key() == MARKER.encode():
            break
    c.close()
    return seen


def expected(state, tombstones):
    want = [(o, k, v) for k, (o, v) in state["latest"].items() if v is not None or tombstones]
    want.sort()
    want.append((state["marker"], MARKER, "m"))
    return want


def verify(path, tombstones, timeout):
    state = load(path)
    want = expected(state, tombstones == "present")
    deadline = time.time() + timeout
    while True:
        got = read_all()
        if got == want:
            print(f"verified {len(got)} records")
            return
        if time.time() > deadline:
            extra = [r for r in got if r not in set(want)][:5]
            missing = [r for r in want if r not in set(got)][:5]
            fail(f"{len(got)} records, {len(want)} expected; extra {extra}; missing {missing}")
        time.sleep(1)


if MODE == "create":
    create(sys.argv[4])
elif MODE == "produce":
    produce(sys.argv[4], sys.argv[5], int(sys.argv[6]))
elif MODE == "seal":
    seal(sys.argv[4])
elif MODE == "verify":
    verify(sys.argv[4], sys.argv[5], float(sys.argv[6]))
else:
    fail(f"unknown mode {MODE}")
