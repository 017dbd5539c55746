"""Transactions interop: kafka-python's transactional producer (2.1+) against sluiced.

Usage: kafka_python_txn.py HOST:PORT. A transaction over two partitions commits, the
next aborts, a third commits; a read_committed KafkaConsumer sees exactly the committed
records and a read_uncommitted one all of them; a second producer with the same
transactional_id fences the first. Prints "kafka-python transactions OK".
"""
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError

BOOTSTRAP = sys.argv[1]
TOPIC = "kp-txn"


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def read(isolation):
    c = KafkaConsumer(
        bootstrap_servers=BOOTSTRAP,
        isolation_level=isolation,
        enable_auto_commit=False,
        consumer_timeout_ms=3000,
    )
    c.assign([TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)])
    c.seek_to_beginning()
    out = [m.value.decode() for m in c]
    c.close()
    return out


def producer(txn_id):
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id=txn_id, linger_ms=5)
    p.init_transactions()
    return p


admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
admin.create_topics([NewTopic(TOPIC, 2, 1)])
admin.close()

p = producer("kp-txn-producer")
committed = []
for t, commit in enumerate([True, False, True]):
    p.begin_transaction()
    for i in range(50):
        value = f"t{t}-{i}"
        p.send(TOPIC, value=value.encode(), partition=i % 2)
        if commit:
            committed.append(value)
    if commit:
        p.commit_transaction()
    else:
        p.flush()
        p.abort_transaction()

got = read("read_committed")
check(sorted(got) == sorted(committed), f"read_committed: {len(got)} records, want {len(committed)}")
check(len(read("read_uncommitted")) == 150, "read_uncommitted sees every record")

# A second instance with the same transactional_id fences the first.
p.begin_transaction()
p.send(TOPIC, value=b"zombie", partition=0)
p.flush()
successor = producer("kp-txn-producer")
try:
    p.commit_transaction()
    check(False, "the fenced producer committed")
except KafkaError:
    pass
successor.begin_transaction()
successor.send(TOPIC, value=b"successor", partition=1)
successor.commit_transaction()
time.sleep(0.5)
got = read("read_committed")
check("zombie" not in got, "the zombie's transaction was aborted")
check("successor" in got, "the successor's transaction committed")
successor.close()
print("kafka-python transactions OK")
