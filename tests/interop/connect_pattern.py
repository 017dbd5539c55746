"""Kafka Connect's use of compacted topics, against sluiced, with confluent-kafka.

Usage:
  connect_pattern.py HOST:PORT create
      the three topics of a distributed Connect cluster, compacted, as Connect creates them:
      connect-configs (1 partition), connect-offsets (25), connect-status (5)
  connect_pattern.py HOST:PORT write STATE_FILE ROUNDS
      ROUNDS rounds of what workers write: connector and task configs with their commit
      records, source offsets per source partition, statuses; every round deletes one
      connector (tombstones for its config, status and offsets). The latest value of
      every key (None for a tombstone) is kept in STATE_FILE (JSON).
  connect_pattern.py HOST:PORT read STATE_FILE
      what a restarted worker does (Connect's KafkaBasedLog): read each topic from the
      beginning up to the end offsets, the latest record per key winning and a tombstone
      removing the key, then compare with STATE_FILE. Prints the records read.
"""
import json
import sys

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BOOTSTRAP, MODE = sys.argv[1], sys.argv[2]
TOPICS = {"connect-configs": 1, "connect-offsets": 25, "connect-status": 5}
CONNECTORS = 20


def fail(what):
    raise SystemExit(f"FAILED: {what}")


def create():
    a = AdminClient({"bootstrap.servers": BOOTSTRAP})
    config = {"cleanup.policy": "compact", "segment.ms": "1000",
              "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "600000"}
    fs = a.create_topics([NewTopic(t, num_partitions=n, replication_factor=1, config=config)
                          for t, n in TOPICS.items()])
    for f in fs.values():
        f.result(20)


def write(state_file, rounds):
    try:
        with open(state_file) as f:
            state = json.load(f)
    except FileNotFoundError:
        state = {t: {} for t in TOPICS}
        state["round"] = 0
    p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5})
    failures = []

    def put(topic, key, value):
        def report(err, _msg):
            if err is not None:
                failures.append((topic, key, str(err)))
        p.produce(topic, key=key.encode(), value=None if value is None else value.encode(),
                  on_delivery=report)
        state[topic][key] = value

    for _ in range(rounds):
        r = state["round"]
        state["round"] = r + 1
        for c in range(CONNECTORS):
            name = f"conn-{c}"
            put("connect-configs", f"connector-{name}", json.dumps({"round": r, "tasks.max": 2}))
            for t in range(2):
                put("connect-configs", f"task-{name}-{t}", json.dumps({"round": r, "task": t}))
                put("connect-status", f"status-task-{name}-{t}", json.dumps({"state": "RUNNING", "round": r}))
            put("connect-configs", f"commit-{name}", json.dumps({"tasks": 2, "round": r}))
            put("connect-status", f"status-connector-{name}", json.dumps({"state": "RUNNING", "round": r}))
            for sp in range(5):
                key = json.dumps([name, {"file": f"/data/{sp}"}])
                put("connect-offsets", key, json.dumps({"position": r * 1000 + sp}))
        gone = f"conn-{r % CONNECTORS}"
        put("connect-configs", f"connector-{gone}", None)
        put("connect-status", f"status-connector-{gone}", None)
        for sp in range(5):
            put("connect-offsets", json.dumps([gone, {"file": f"/data/{sp}"}]), None)
        p.poll(0)
    if p.flush(60) != 0:
        fail("records left unacknowledged")
    if failures:
        fail(f"{len(failures)} records failed, first {failures[0]}")
    with open(state_file, "w") as f:
        json.dump(state, f)


def read(state_file):
    with open(state_file) as f:
        state = json.load(f)
    total = 0
    for topic, partitions in TOPICS.items():
        c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "connect-restart",
                      "enable.auto.commit": False, "enable.partition.eof": True})
        ends = {}
        for p in range(partitions):
            _, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=20)
            ends[p] = high
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions) if ends[p] > 0])
        latest = {}
        done = {p for p in range(partitions) if ends[p] == 0}
        while len(done) < partitions:
            m = c.poll(10)
            if m is None:
                fail(f"{topic}: read timed out with {sorted(set(range(partitions)) - done)} left")
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    fail(f"{topic}: {m.error()}")
                continue
            total += 1
            key = m.key().decode()
            value = m.value()
            if value is None:
                latest.pop(key, None)
            else:
                latest[key] = value.decode()
            if m.offset() + 1 >= ends[m.partition()]:
                done.add(m.partition())
        c.close()
        want = {k: v for k, v in state[topic].items() if v is not None}
        if latest != want:
            missing = sorted(set(want) - set(latest))[:3]
            extra = sorted(set(latest) - set(want))[:3]
            wrong = sorted(k for k in want if k in latest and latest[k] != want[k])[:3]
            fail(f"{topic}: {len(latest)} keys read, {len(want)} expected; "
                 f"missing {missing}, extra {extra}, wrong {wrong}")
    print(f"records_read {total}")


if MODE == "create":
    create()
elif MODE == "write":
    write(sys.argv[3], int(sys.argv[4]))
elif MODE == "read":
    read(sys.argv[3])
else:
    fail(f"unknown mode {MODE}")
