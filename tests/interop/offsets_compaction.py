"""Committed offsets through confluent-kafka while the log cleaner compacts
`__consumer_offsets`: many rounds of commits by a few groups, and a deleted group; the
offsets read back are exactly the last ones committed, and the deleted group has none.

Usage: offsets_compaction.py HOST:PORT commit|census|check TOPIC ROUNDS. Exits non-zero on
the first mismatch.
  commit  sets delete.retention.ms=1000 on __consumer_offsets, creates TOPIC (8
          partitions), commits for and then deletes the group "deleted", and commits
          ROUNDS rounds of offsets (with metadata) for each group
  census  reads __consumer_offsets from its start; prints "records R tombstones T end E"
  check   the committed offsets are the last round's, and "deleted" has none
"""
import sys

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                   ConfigResource, NewTopic)

BOOTSTRAP, MODE, TOPIC, ROUNDS = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
GROUPS = [f"group-{i}" for i in range(4)]
PARTITIONS = range(8)


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def consumer(group):
    return Consumer({
        "bootstrap.servers": BOOTSTRAP,
        "group.id": group,
        "enable.auto.commit": False,
    })


def offset(round_, group, partition):
    return round_ * 1000 + GROUPS.index(group) * 10 + partition


def committed(group):
    c = consumer(group)
    got = c.committed([TopicPartition(TOPIC, p) for p in PARTITIONS], timeout=30)
    c.close()
    return {tp.partition: (tp.offset, tp.metadata) for tp in got}


def census():
    c = consumer("census")
    tp = TopicPartition("__consumer_offsets", 0, OFFSET_BEGINNING)
    _, end = c.get_watermark_offsets(tp, timeout=30)
    c.assign([tp])
    records = tombstones = 0
    last = -1
    while last + 1 < end:
        m = c.poll(10)
        check(m is not None, f"no record after offset {last} of {end}")
        check(m.error() is None, f"consume error {m.error()}")
        records += 1
        tombstones += m.value() is None
        last = m.offset()
    c.close()
    return records, tombstones, end


if MODE == "commit":
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    retention = ConfigEntry("delete.retention.ms", "1000",
                            incremental_operation=AlterConfigOpType.SET)
    res = ConfigResource(ConfigResource.Type.TOPIC, "__consumer_offsets",
                         incremental_configs=[retention])
    admin.incremental_alter_configs([res])[res].result(timeout=30)
    admin.create_topics([NewTopic(TOPIC, len(PARTITIONS), 1)])[TOPIC].result(timeout=30)
    gone = consumer("deleted")
    gone.commit(offsets=[TopicPartition(TOPIC, p, 5) for p in PARTITIONS], asynchronous=False)
    gone.close()
    admin.delete_consumer_groups(["deleted"])["deleted"].result(timeout=30)
    consumers = {g: consumer(g) for g in GROUPS}
    for r in range(ROUNDS):
        for g, c in consumers.items():
            tps = [TopicPartition(TOPIC, p, offset(r, g, p), f"r{r}") for p in PARTITIONS]
            c.commit(offsets=tps, asynchronous=False)
    for c in consumers.values():
        c.close()
    print(f"committed {ROUNDS * len(GROUPS) * len(PARTITIONS)}")
elif MODE == "census":
    print("records {} tombstones {} end {}".format(*census()))
elif MODE == "check":
    last = ROUNDS - 1
    for g in GROUPS:
        want = {p: (offset(last, g, p), f"r{last}") for p in PARTITIONS}
        got = committed(g)
        check(got == want, f"{g}: committed {got}, expected {want}")
    got = committed("deleted")
    check(all(o < 0 for o, _ in got.values()), f"the deleted group has offsets: {got}")
    print("offsets ok")
else:
    raise SystemExit(f"unknown mode {MODE}")
