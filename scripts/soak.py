#!/usr/bin/env python3
"""Soak run, by hand (not in CI): a mixed workload against a release `sluiced` for a while.

    cargo build --release --bin sluiced && python3 scripts/soak.py --minutes 10

What runs at once, all with confluent-kafka (librdkafka):
- 5 idempotent producers (acks=all, one codec each) send keyed, numbered records to the
  6-partition topic `soak`;
- a consumer group of 3 members reads `soak` and commits; two of them leave and rejoin,
  every 12 s and every 16 s, so the group rebalances throughout;
- a producer and a consumer on `churn`, whose small segments and 3 s retention make the
  broker roll and delete segments under the consumer;
- an admin client creates and deletes short-lived topics.

At the end every acknowledged record of `soak` must have been consumed with its value,
each producer's records must keep their order within a partition, and the broker must have
logged no panic. Every 10 s it samples the broker's memory (anonymous and file-backed),
open fds and threads; the anonymous memory should level off after warm-up.
"""

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample(pid):
    status = open(f"/proc/{pid}/status").read()
    fields = dict(line.split(":", 1) for line in status.splitlines())
    # Anonymous memory is the broker's own; file-backed RSS is mapped segments and
    # indexes, page cache that grows with the log.
    return {
        "anon_mib": int(fields["RssAnon"].split()[0]) // 1024,
        "file_mib": int(fields["RssFile"].split()[0]) // 1024,
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": int(fields["Threads"]),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--sluiced", default=os.path.join(ROOT, "target/release/sluiced"))
    args = ap.parse_args()

    data = tempfile.mkdtemp(prefix="sluice-soak-")
    port = free_port()
    log = open(os.path.join(data, "broker.log"), "w")
    broker = subprocess.Popen(
        [args.sluiced, "--listen", f"127.0.0.1:{port}", "--data-dir", os.path.join(data, "d"),
         "--override", "log.retention.check.interval.ms=1000",
         "--override", "group.initial.rebalance.delay.ms=0"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "warn"})
    bootstrap = f"127.0.0.1:{port}"
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([
        NewTopic("soak", 6, 1),
        NewTopic("churn", 2, 1, config={"segment.bytes": "1048576", "retention.ms": "3000"}),
    ]).values():
        f.result()

    stop = threading.Event()
    stop_producing = threading.Event()
    errors = []
    acked = {}  # (partition, offset) -> value
    acked_lock = threading.Lock()
    consumed = {}
    consumed_lock = threading.Lock()
    counts = {"produced": 0, "churn": 0, "churn_errors": 0, "topics": 0, "rejoins": 0}

    def fail(what):
        errors.append(what)
        stop_producing.set()
        stop.set()

    def producer(pid, codec):
        p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                      "compression.type": codec, "linger.ms": 5})

        def on_delivery(err, msg):
            if err is not None:
                fail(f"producer {pid}: {err}")
                return
            with acked_lock:
                acked[(msg.partition(), msg.offset())] = msg.value()
                counts["produced"] += 1

        seq = 0
        while not stop_producing.is_set():
            for _ in range(200):
                value = f"{pid}:{seq}".encode()
                key = f"k{random.randrange(1000)}".encode()
                try:
                    p.produce("soak", value, key, headers={"p": str(pid)}, on_delivery=on_delivery)
                except BufferError:
                    p.poll(0.01)
                    continue
                seq += 1
            p.poll(0)
            time.sleep(0.01)
        if p.flush(60) != 0:
            fail(f"producer {pid}: records left unsent")

    def member(idx, leave_every):
        while not stop.is_set():
            c = Consumer({"bootstrap.servers": bootstrap, "group.id": "soak-group",
                          "auto.offset.reset": "earliest", "enable.auto.commit": True,
                          "auto.commit.interval.ms": 500, "session.timeout.ms": 10000})
            c.subscribe(["soak"])
            until = time.time() + (leave_every if leave_every else 1e9)
            while not stop.is_set() and time.time() < until:
                m = c.poll(0.2)
                if m is None:
                    continue
                if m.error():
                    fail(f"member {idx}: {m.error()}")
                    break
                with consumed_lock:
                    consumed[(m.partition(), m.offset())] = m.value()
            c.close()
            counts["rejoins"] += 1

    def churn():
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "compression.type": "lz4"})
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "churn-group",
                      "auto.offset.reset": "earliest"})
        c.subscribe(["churn"])
        payload = os.urandom(400)
        while not stop.is_set():
            for _ in range(500):
                try:
                    p.produce("churn", payload)
                except BufferError:
                    break
            p.poll(0)
            for _ in range(500):
                m = c.poll(0)
                if m is None:
                    break
                if m.error():
                    # Retention moving the log start under the reader is expected here
                    # (auto.offset.reset recovers from it): count such events, don't fail.
                    counts["churn_errors"] += 1
                else:
                    counts["churn"] += 1
            time.sleep(0.01)
        p.flush(30)
        c.close()

    def topic_churn():
        i = 0
        while not stop.is_set():
            name = f"tmp-{i}"
            try:
                admin.create_topics([NewTopic(name, 3, 1)])[name].result()
                p = Producer({"bootstrap.servers": bootstrap})
                p.produce(name, b"x")
                p.flush(10)
                admin.delete_topics([name])[name].result()
                counts["topics"] += 1
            except KafkaException as e:
                fail(f"admin: {e}")
            i += 1
            time.sleep(0.5)

    threads = [threading.Thread(target=producer, args=(i, codec)) for i, codec in enumerate(CODECS)]
    producers = len(CODECS)
    threads += [threading.Thread(target=member, args=(i, 8 + 4 * i if i else 0)) for i in range(3)]
    threads += [threading.Thread(target=churn), threading.Thread(target=topic_churn)]
    for t in threads:
        t.start()

    samples = []
    deadline = time.time() + args.minutes * 60
    while time.time() < deadline and not stop.is_set():
        time.sleep(10)
        if broker.poll() is not None:
            fail(f"broker exited with {broker.returncode}")
            break
        s = sample(broker.pid)
        samples.append(s)
        print(f"t={len(samples) * 10:4d}s {s} {counts}", flush=True)
    # Producers first; the group then has up to a minute to catch up with what they sent.
    stop_producing.set()
    for t in threads[:producers]:
        t.join()
    caught_up = time.time() + 60
    while time.time() < caught_up and not stop.is_set():
        with consumed_lock, acked_lock:
            behind = sum(1 for k, v in acked.items() if consumed.get(k) != v)
        if behind == 0:
            break
        time.sleep(1)
    stop.set()
    for t in threads[producers:]:
        t.join()

    # Drain: read `soak` from the beginning to its end with a fresh reader.
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "soak-check",
                       "enable.auto.commit": False})
    ends = {}
    for p in range(6):
        ends[p] = reader.get_watermark_offsets(TopicPartition("soak", p), timeout=10)[1]
    reader.assign([TopicPartition("soak", p, 0) for p in range(6)])
    log_order = {}
    remaining = sum(ends.values())
    while remaining > 0:
        m = reader.poll(5)
        if m is None:
            fail("drain: no record for 5 s")
            break
        if m.error():
            fail(f"drain: {m.error()}")
            break
        log_order.setdefault(m.partition(), []).append((m.offset(), m.value()))
        remaining -= 1
    reader.close()

    missing = [k for k, v in acked.items() if consumed.get(k) != v]
    stored = {(p, o): v for p, recs in log_order.items() for o, v in recs}
    lost = [k for k, v in acked.items() if stored.get(k) != v]
    for p, recs in log_order.items():
        last = {}
        for _, value in recs:
            pid, seq = value.decode().split(":")
            if int(seq) <= last.get(pid, -1):
                fail(f"partition {p}: producer {pid} out of order at {seq}")
                break
            last[pid] = int(seq)
    if lost:
        fail(f"{len(lost)} acknowledged records not in the log, e.g. {lost[:3]}")
    if missing:
        fail(f"{len(missing)} acknowledged records the group never consumed, e.g. {missing[:3]}")

    del admin
    broker.terminate()
    code = broker.wait(timeout=60)
    log.close()
    text = open(os.path.join(data, "broker.log")).read()
    if "panicked" in text:
        fail("broker log holds a panic")
    warnings = [line for line in text.splitlines() if " WARN " in line or " ERROR " in line]
    print(f"acknowledged {len(acked)}, consumed by the group {len(consumed)} distinct, "
          f"in the log {len(stored)}; {counts}")
    print(f"broker exit code {code}; {len(warnings)} warning/error lines")
    for line in warnings[:20]:
        print("  " + line)
    if samples:
        print(f"first sample {samples[0]}, last {samples[-1]}, "
              f"max anon {max(s['anon_mib'] for s in samples)} MiB")
    if errors:
        print("FAILED:\n  " + "\n  ".join(errors[:20]))
        sys.exit(1)
    shutil.rmtree(data)
    print("OK")


if __name__ == "__main__":
    main()
