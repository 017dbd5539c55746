"""Consumer-group interop: kafka-python against sluiced.

Usage: kafka_python_group.py HOST:PORT TOPIC. Exits non-zero on the first mismatch.

Two members (one thread each) get disjoint assignments covering the 6 partitions; the
first commits what it consumed; when the second leaves, the first takes over everything;
a new consumer of the group resumes exactly after the committed offsets. A librdkafka
member joins the same group alongside, since real deployments mix clients.
"""
import sys
import threading
import time

from confluent_kafka import Consumer
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition

BOOTSTRAP = sys.argv[1]
TOPIC = sys.argv[2]
GROUP = f"{TOPIC}-group"
PARTITIONS = set(range(6))


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


class Listener(ConsumerRebalanceListener):
    def __init__(self):
        self.assigned = set()

    def on_partitions_revoked(self, revoked):
        self.assigned = set()

    def on_partitions_assigned(self, assigned):
        self.assigned = {tp.partition for tp in assigned}


class Member(threading.Thread):
    def __init__(self, name):
        super().__init__(daemon=True)
        self.c = KafkaConsumer(
            bootstrap_servers=BOOTSTRAP,
            group_id=GROUP,
            client_id=name,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=6000,
            heartbeat_interval_ms=500,
        )
        self.listener = Listener()
        self.c.subscribe([TOPIC], listener=self.listener)
        self.running = True
        self.seen = []
        self.commit_now = threading.Event()
        self.committed = threading.Event()
        self.consumed_at_commit = set()

    def run(self):
        while self.running:
            for records in self.c.poll(timeout_ms=200).values():
                self.seen.extend((r.partition, r.offset) for r in records)
            # Commit once every partition is consumed to its end: a partition that came
            # back in the last rebalance restarts from the beginning (nothing committed)
            # and is re-consumed first. Everything poll returned so far is then covered.
            if self.commit_now.is_set() and self.at_end():
                self.c.commit()
                self.consumed_at_commit = set(self.seen)
                self.commit_now.clear()
                self.committed.set()
        self.c.close()

    def at_end(self):
        assigned = self.c.assignment()
        return len(assigned) == 6 and all(self.c.position(tp) >= 20 for tp in assigned)

    def partitions(self):
        return set(self.listener.assigned)

    def stop(self):
        self.running = False
        self.join(15)


def wait_for(members, what, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        sets = [m.partitions() for m in members]
        union = set().union(*sets)
        if union == PARTITIONS and sum(map(len, sets)) == 6 and all(sets):
            return sets
        time.sleep(0.1)
    raise SystemExit(f"FAILED: {what}: {[sorted(m.partitions()) for m in members]}")


p = KafkaProducer(bootstrap_servers=BOOTSTRAP, enable_idempotence=False, linger_ms=5)
for i in range(120):
    p.send(TOPIC, value=f"v{i}".encode(), partition=i % 6)
p.flush()
p.close()

a = Member("kp-a")
a.start()
wait_for([a], "one member gets everything")
b = Member("kp-b")
b.start()
sets = wait_for([a, b], "two members split the partitions")
check(sorted(map(len, sets)) == [3, 3], f"3 + 3: {sets}")

# A librdkafka member in the same group: both clients' range assignors agree.
rd = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": GROUP, "session.timeout.ms": 6000,
               "enable.auto.commit": False, "partition.assignment.strategy": "range"})
rd_assigned = []
rd.subscribe([TOPIC], on_assign=lambda _c, ps: rd_assigned.append({x.partition for x in ps}))
deadline = time.time() + 20
while time.time() < deadline:
    rd.poll(0.2)
    mine = rd_assigned[-1] if rd_assigned else set()
    sets = [a.partitions(), b.partitions(), mine]
    if set().union(*sets) == PARTITIONS and all(sets) and sum(map(len, sets)) == 6:
        break
check(all(sets) and sum(map(len, sets)) == 6, f"three mixed members: {sets}")
rd.close()
wait_for([a, b], "after the librdkafka member left")

b.stop()
wait_for([a], "after b left, a has everything")
a.commit_now.set()
check(a.committed.wait(20), "a consumed every partition to its end and committed")
consumed = a.consumed_at_commit
check(len(consumed) == 120, f"a consumed {len(consumed)} of 120 before committing")
a.stop()

# Resume: a new consumer sees exactly what a had not consumed when it committed.
p = KafkaProducer(bootstrap_servers=BOOTSTRAP, enable_idempotence=False)
for i in range(60):
    p.send(TOPIC, value=b"late", partition=i % 6)
p.flush()
p.close()
c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=GROUP, enable_auto_commit=False,
                  auto_offset_reset="earliest", consumer_timeout_ms=5000)
c.subscribe([TOPIC])
rest = {(r.partition, r.offset) for r in c}
committed = {tp.partition: c.committed(tp) for tp in (TopicPartition(TOPIC, i) for i in range(6))}
c.close()
check(not (rest & consumed), f"nothing committed is delivered again: {sorted(rest & consumed)[:5]}")
check(len(rest | consumed) == 180, f"nothing lost: {len(rest | consumed)} of 180")
check(all(v is not None and v >= 10 for v in committed.values()), f"committed {committed}")
print("kafka-python group interop: ok")
