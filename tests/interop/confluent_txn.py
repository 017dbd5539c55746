"""Transactions interop: confluent-kafka (librdkafka) against sluiced.

Usage: confluent_txn.py HOST:PORT MODE. Exits non-zero on the first mismatch.

Modes:
  all        every check below, in order; prints "confluent transactions OK"
  basic      a transaction over several partitions of two topics commits, the next one
             aborts: read_committed sees exactly the committed records, read_uncommitted
             all of them
  eos        a consume-transform-produce loop (a child process, mode "loop") with
             send_offsets_to_transaction, killed with SIGKILL mid-stream and restarted:
             its output, read_committed, holds every input record exactly once
  timeout    a producer that begins a transaction, produces and goes silent is aborted
             by the coordinator after transaction.timeout.ms; its records never become
             visible and the last stable offset moves past them
  loop       (child) the consume-transform-produce loop; prints "progress N" after each
             commit of N records in all
"""
import os
import signal
import subprocess
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BOOTSTRAP = sys.argv[1]
EOS_RECORDS = 3000


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def create(topic, partitions):
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for _, future in admin.create_topics([NewTopic(topic, partitions, 1)]).items():
        future.result(30)


def read(topic, partitions, isolation, idle=3.0, deadline=60.0, want=None):
    """Every record of `topic` from the beginning under `isolation`, as values; stops
    after `idle` seconds without a record (once `want` records arrived, if given)."""
    c = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"reader-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "isolation.level": isolation,
        }
    )
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out = []
    last = time.time()
    end = time.time() + deadline
    while time.time() < end:
        msgs = c.consume(1000, 0.5)
        for m in msgs:
            check(m.error() is None, f"consume {topic}: {m.error()}")
            out.append(m.value().decode())
        if msgs:
            last = time.time()
        elif time.time() - last > idle and (want is None or len(out) >= want):
            break
    c.close()
    return out


def txn_producer(txn_id, **extra):
    config = {"bootstrap.servers": BOOTSTRAP, "transactional.id": txn_id, "linger.ms": 5}
    config.update(extra)
    p = Producer(config)
    p.init_transactions(30)
    return p


def basic():
    create("ctx-a", 3)
    create("ctx-b", 2)
    p = txn_producer("confluent-basic")
    p.begin_transaction()
    committed = []
    for i in range(60):
        topic, partition = ("ctx-a", i % 3) if i % 2 == 0 else ("ctx-b", (i // 2) % 2)
        value = f"commit-{i}"
        committed.append((topic, value))
        p.produce(topic, value=value, partition=partition)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(40):
        topic, partition = ("ctx-a", i % 3) if i % 2 == 0 else ("ctx-b", 0)
        p.produce(topic, value=f"abort-{i}", partition=partition)
    p.flush(30)
    p.abort_transaction(30)
    for topic, partitions in (("ctx-a", 3), ("ctx-b", 2)):
        want = sorted(v for t, v in committed if t == topic)
        got = sorted(read(topic, partitions, "read_committed"))
        check(got == want, f"read_committed {topic}: {len(got)} records, want {len(want)}")
        everything = read(topic, partitions, "read_uncommitted")
        check(
            len(everything) == len(want) + 20,
            f"read_uncommitted {topic}: {len(everything)} records, want {len(want) + 20}",
        )
        check(any(v.startswith("abort-") for v in everything), "aborted records are stored")
    print("basic OK", flush=True)


def loop():
    """The consume-transform-produce loop: the input's records, upper-cased, to the
    output, each poll's worth in one transaction with the consumer's offsets."""
    c = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": "eos-loop",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        }
    )
    c.subscribe(["eos-in"])
    p = txn_producer("eos-loop", **{"transaction.timeout.ms": 10000})
    done = 0
    while True:
        msgs = c.consume(100, 0.5)
        if not msgs:
            continue
        p.begin_transaction()
        for m in msgs:
            check(m.error() is None, f"loop consume: {m.error()}")
            p.produce("eos-out", key=m.key(), value=m.value().upper(), partition=m.partition())
        positions = [tp for tp in c.position(c.assignment()) if tp.offset >= 0]
        if positions:
            p.send_offsets_to_transaction(positions, c.consumer_group_metadata(), 30)
        p.commit_transaction(30)
        done += len(msgs)
        print(f"progress {done}", flush=True)


def eos():
    create("eos-in", 3)
    create("eos-out", 3)
    plain = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5})
    for i in range(EOS_RECORDS):
        plain.produce("eos-in", key=f"k{i}", value=f"record-{i}", partition=i % 3)
    plain.flush(30)

    def start():
        return subprocess.Popen(
            [sys.executable, __file__, BOOTSTRAP, "loop"], stdout=subprocess.PIPE, text=True
        )

    child = start()
    # Kill it mid-stream: after some transactions committed, before the input is done.
    while True:
        line = child.stdout.readline()
        check(line, "the loop exited before making progress")
        if int(line.split()[1]) >= EOS_RECORDS // 4:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child = start()
    try:
        out = read("eos-out", 3, "read_committed", idle=5.0, deadline=120.0, want=EOS_RECORDS)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    want = sorted(f"RECORD-{i}" for i in range(EOS_RECORDS))
    dupes = len(out) - len(set(out))
    check(dupes == 0, f"{dupes} records of the output appear twice under read_committed")
    check(sorted(out) == want, f"the output holds {len(out)} records, want {EOS_RECORDS}")
    print("eos OK", flush=True)


def timeout():
    create("ctx-timeout", 1)
    silent = txn_producer("confluent-silent", **{"transaction.timeout.ms": 2000})
    silent.begin_transaction()
    for i in range(10):
        silent.produce("ctx-timeout", value=f"silent-{i}", partition=0)
    silent.flush(30)
    plain = Producer({"bootstrap.servers": BOOTSTRAP})
    plain.produce("ctx-timeout", value="after", partition=0)
    plain.flush(30)
    check(read("ctx-timeout", 1, "read_committed", idle=1.0) == [], "the open transaction holds the LSO")
    # Silent past its timeout: the coordinator aborts it.
    time.sleep(5)
    got = read("ctx-timeout", 1, "read_committed", idle=2.0)
    check(got == ["after"], f"read_committed after the timeout: {got}")
    check(len(read("ctx-timeout", 1, "read_uncommitted")) == 11, "every record is stored")
    try:
        silent.commit_transaction(10)
        check(False, "a timed-out transaction committed")
    except KafkaException:
        pass
    got = read("ctx-timeout", 1, "read_committed", idle=1.0)
    check(got == ["after"], f"nothing of the timed-out transaction became visible: {got}")
    print("timeout OK", flush=True)


MODES = {"basic": basic, "eos": eos, "timeout": timeout, "loop": loop}

if __name__ == "__main__":
    mode = sys.argv[2]
    if mode == "all":
        basic()
        eos()
        timeout()
        print("confluent transactions OK")
    else:
        MODES[mode]()
