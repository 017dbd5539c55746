"""Interop test: kafka-python's KafkaAdminClient.describe_log_dirs against sluiced.

Usage: kafka_python_log_dirs.py HOST:PORT TOPIC. Asks for partitions 0, 1, 2 and 7 of
TOPIC and for a topic that does not exist, then for every topic, and prints what the
broker answered, one line each, for the Rust test to compare with the segment files:

    dir PATH TOTAL_BYTES USABLE_BYTES
    named TOPIC PARTITION SIZE
    all TOPIC PARTITION SIZE

Exits non-zero when the answer's shape is wrong (errors, lag, future replicas, the
unknown topic present).
"""
import sys

from kafka import KafkaAdminClient

BOOTSTRAP, TOPIC = sys.argv[1], sys.argv[2]


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def partitions(answer, label):
    check(len(answer) == 1, f"{label}: one broker answered: {answer}")
    dirs = answer[0]["log_dirs"]
    check(len(dirs) == 1, f"{label}: one log dir: {dirs}")
    d = dirs[0]
    check(d["error_code"] == 0, f"{label}: log dir error {d['error_code']}")
    for t in d["topics"]:
        for p in t["partitions"]:
            check(p["offset_lag"] == 0 and not p["is_future_key"], f"{label}: {t['name']} {p}")
            yield d, t["name"], p["partition_index"], p["partition_size"]


admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
named = admin.describe_log_dirs({TOPIC: [0, 1, 2, 7], "no-such-topic": [0]})
seen = list(partitions(named, "named"))
check(all(topic == TOPIC for _, topic, _, _ in seen), f"only {TOPIC} answered: {seen}")
check(sorted(p for _, _, p, _ in seen) == [0, 1, 2], f"partitions 0-2, not 7: {seen}")
d = seen[0][0]
check(0 < d["usable_bytes"] <= d["total_bytes"], f"v4 disk space: {d}")
print(f"dir {d['log_dir']} {d['total_bytes']} {d['usable_bytes']}")
for _, topic, p, size in seen:
    print(f"named {topic} {p} {size}")
for _, topic, p, size in partitions(admin.describe_log_dirs(), "all"):
    print(f"all {topic} {p} {size}")
admin.close()
