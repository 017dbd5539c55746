"""A workload for the console test: confluent-kafka (librdkafka) against sluiced.

Usage: console_workload.py HOST:PORT

1. Creates `orders` (3 partitions) and `clicks` (1 partition), and produces exactly
   30 records to each partition of `orders`.
2. A consumer of group `billing` subscribes to `orders`, waits for its assignment,
   commits offsets 10, 20 and 5 (so the lag is 20, 10 and 25) and pauses its partitions.
3. Prints "ready", then keeps producing to `clicks` (about 100 records a second) while
   the consumer keeps polling (heartbeats, no commits), until stdin closes or it is killed.
"""
import sys
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BOOTSTRAP = sys.argv[1]
COMMITS = {0: 10, 1: 20, 2: 5}


def main():
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    futures = admin.create_topics(
        [NewTopic("orders", num_partitions=3, replication_factor=1),
         NewTopic("clicks", num_partitions=1, replication_factor=1)])
    for f in futures.values():
        f.result(15)

    producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5})
    for partition in range(3):
        for i in range(30):
            producer.produce("orders", value=f"order-{partition}-{i}".encode(), partition=partition)
    if producer.flush(15) != 0:
        raise SystemExit("FAILED: orders not all delivered")

    consumer = Consumer({
        "bootstrap.servers": BOOTSTRAP,
        "group.id": "billing",
        "client.id": "billing-1",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 500,
    })
    assigned = []
    consumer.subscribe(["orders"], on_assign=lambda _c, ps: assigned.extend(ps))
    deadline = time.time() + 30
    while len(assigned) < 3:
        consumer.poll(0.2)
        if time.time() > deadline:
            raise SystemExit(f"FAILED: assignment {assigned}")
    consumer.pause(assigned)
    offsets = [TopicPartition("orders", p, o) for p, o in COMMITS.items()]
    for tp in consumer.commit(offsets=offsets, asynchronous=False):
        if tp.error:
            raise SystemExit(f"FAILED: commit {tp}")

    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    print("ready", flush=True)
    n = 0
    while not stop.is_set():
        producer.produce("clicks", value=f"click-{n}".encode())
        producer.poll(0)
        consumer.poll(0.01)
        n += 1
    producer.flush(5)
    consumer.close()


if __name__ == "__main__":
    main()
