"""Consumer-group interop: confluent-kafka (librdkafka) against sluiced.

Usage: confluent_group.py HOST:PORT MODE [ARGS]. Exits non-zero on the first mismatch.

Modes:
  membership TOPIC     two, then three members on a 6-partition topic get disjoint
                       assignments covering every partition; a member that leaves and
                       one killed with SIGKILL (a child process) are replaced by the rest
  member GROUP TOPIC   (child) joins, prints "assigned" once it has partitions, then
                       polls until killed
  produce TOPIC N      N records, round robin over the 6 partitions
  consume GROUP TOPIC N  consumes up to N records, committing each one synchronously
                       after it is seen, and prints "partition offset" per record; stops
                       early after 5 s without a record
"""
import subprocess
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, Producer

BOOTSTRAP = sys.argv[1]
PARTITIONS = set(range(6))


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def consumer(group, **extra):
    config = {
        "bootstrap.servers": BOOTSTRAP,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    }
    config.update(extra)
    return Consumer(config)


class Member(threading.Thread):
    """A consumer polling in its own thread; `assigned` follows its rebalance callbacks."""

    def __init__(self, group, topic, name):
        super().__init__(daemon=True)
        self.name_ = name
        self.c = consumer(group, **{"client.id": name})
        self.assigned = set()
        self.lock = threading.Lock()
        self.running = True
        self.c.subscribe([topic], on_assign=self.on_assign, on_revoke=self.on_revoke)

    def on_assign(self, _c, partitions):
        with self.lock:
            self.assigned = {p.partition for p in partitions}

    def on_revoke(self, _c, _partitions):
        with self.lock:
            self.assigned = set()

    def run(self):
        while self.running:
            m = self.c.poll(0.2)
            if m is not None and m.error() and m.error().code() != KafkaError._PARTITION_EOF:
                print(f"{self.name_}: {m.error()}", file=sys.stderr)
        self.c.close()

    def partitions(self):
        with self.lock:
            return set(self.assigned)

    def stop(self):
        self.running = False
        self.join(15)


def wait_for(members, what, timeout=20.0, extra=frozenset()):
    """Waits until the members' assignments (plus `extra`) are disjoint and cover all."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        sets = [m.partitions() for m in members]
        union = set().union(*sets) | set(extra)
        disjoint = sum(len(s) for s in sets) + len(extra) == len(union)
        if union == PARTITIONS and disjoint and all(sets):
            return sets
        time.sleep(0.1)
    raise SystemExit(f"FAILED: {what}: assignments {[sorted(m.partitions()) for m in members]}")


def membership(topic):
    p = Producer({"bootstrap.servers": BOOTSTRAP})
    for i in range(60):
        p.produce(topic, value=b"x", partition=i % 6)
    p.flush(10)
    group = f"{topic}-group"
    start = time.time()
    a = Member(group, topic, "a")
    a.start()
    wait_for([a], "one member gets all six partitions")
    b = Member(group, topic, "b")
    b.start()
    sets = wait_for([a, b], "two members split the partitions")
    check(all(len(s) == 3 for s in sets), f"range gives 3 + 3: {sets}")
    c = Member(group, topic, "c")
    c.start()
    sets = wait_for([a, b, c], "three members split the partitions")
    check(all(len(s) == 2 for s in sets), f"2 + 2 + 2: {sets}")
    print(f"three members stable after {time.time() - start:.1f}s")
    left = time.time()
    c.stop()
    wait_for([a, b], "after c left, a and b take over")
    print(f"rebalanced after a leave in {time.time() - left:.1f}s")
    # A member in another process, killed without leaving: expelled after its session.
    child = subprocess.Popen(
        [sys.executable, __file__, BOOTSTRAP, "member", group, topic],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = child.stdout.readline().strip()
    check(line.startswith("assigned"), f"child joined: {line!r}")
    wait_for([a, b], "the child has its share", extra=set(map(int, line.split()[1:])))
    child.kill()
    child.wait()
    killed = time.time()
    wait_for([a, b], "the killed member's partitions move to a and b", timeout=20)
    took = time.time() - killed
    print(f"killed member expelled and replaced after {took:.1f}s")
    check(took >= 3, f"expulsion waits for the session timeout, took {took:.1f}s")
    a.stop()
    b.stop()


def member(group, topic):
    c = consumer(group, **{"client.id": "child"})
    assigned = []
    c.subscribe([topic], on_assign=lambda _c, ps: assigned.append([p.partition for p in ps]))
    while True:
        c.poll(0.2)
        if assigned and assigned[-1]:
            print("assigned " + " ".join(map(str, assigned[-1])), flush=True)
            assigned.clear()


def produce(topic, n):
    p = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5})
    for i in range(n):
        p.produce(topic, value=f"v{i}".encode(), partition=i % 6)
    p.flush(10)
    check(len(p) == 0, "all delivered")


def consume(group, topic, n):
    c = consumer(group)
    c.subscribe([topic])
    got = 0
    idle_since = time.time()
    while got < n and time.time() - idle_since < 5:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            check(m.error().code() == KafkaError._PARTITION_EOF, f"consume error {m.error()}")
            continue
        c.commit(message=m, asynchronous=False)
        print(f"{m.partition()} {m.offset()}", flush=True)
        got += 1
        idle_since = time.time()
    c.close()


mode = sys.argv[2]
if mode == "membership":
    membership(sys.argv[3])
elif mode == "member":
    member(sys.argv[3], sys.argv[4])
elif mode == "produce":
    produce(sys.argv[3], int(sys.argv[4]))
elif mode == "consume":
    consume(sys.argv[3], sys.argv[4], int(sys.argv[5]))
else:
    raise SystemExit(f"unknown mode {mode}")
