"""A confluent-kafka (librdkafka) consumer group on either side of sluice-mirror.

Usage: mirror_group.py HOST:PORT MODE GROUP TOPIC [ARGS]. Exits non-zero on failure.

Modes:
  consume GROUP TOPIC K0 K1 ...  subscribes as GROUP and takes the first Kp records of
                       each partition p (later ones already fetched are left alone),
                       commits each partition's offset after its last one taken
                       (synchronously), and prints "P OFFSET VALUE" for that last record
  first GROUP TOPIC PARTITIONS  subscribes as GROUP, commits nothing, and prints
                       "P OFFSET VALUE" for the first record it gets from each of the
                       topic's PARTITIONS partitions
"""
import sys
import time

from confluent_kafka import Consumer, TopicPartition

BOOTSTRAP, MODE, GROUP, TOPIC = sys.argv[1:5]
ARGS = [int(a) for a in sys.argv[5:]]
DEADLINE = time.time() + 90


def consumer():
    return Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": GROUP,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        }
    )


def take(wanted):
    """Polls until `wanted(partition, count_so_far)` is false for every partition."""
    c = consumer()
    c.subscribe([TOPIC])
    taken = {}
    last = {}
    partitions = len(ARGS) if MODE == "consume" else ARGS[0]
    while len(last) < partitions or any(wanted(p, taken.get(p, 0)) for p in range(partitions)):
        if time.time() > DEADLINE:
            raise SystemExit(f"FAILED: {MODE}: only {taken} records after 90 s")
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            raise SystemExit(f"FAILED: {m.error()}")
        p = m.partition()
        if not wanted(p, taken.get(p, 0)):
            continue
        taken[p] = taken.get(p, 0) + 1
        last[p] = (m.offset(), m.value().decode())
    return c, last


if MODE == "consume":
    c, last = take(lambda p, n: n < ARGS[p])
    c.commit(
        offsets=[TopicPartition(TOPIC, p, o + 1) for p, (o, _) in sorted(last.items())],
        asynchronous=False,
    )
elif MODE == "first":
    c, last = take(lambda p, n: n < 1)
else:
    raise SystemExit(f"unknown mode {MODE}")
c.close()
for p, (offset, value) in sorted(last.items()):
    print(p, offset, value)
