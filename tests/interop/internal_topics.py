"""Internal topics through confluent-kafka's AdminClient: a client cannot delete
`__consumer_offsets`, delete its records, add partitions to it or create another internal
topic, and the committed offsets it holds survive the attempts and a restart.

Usage: internal_topics.py HOST:PORT commit|check GROUP TOPIC. Exits non-zero on the first
mismatch.
  commit  produces to TOPIC (3 partitions), commits offsets with metadata for GROUP, then
          tries every refused operation and checks each error
  check   (after a restart) the committed offsets are exactly those committed
"""
import sys

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

BOOTSTRAP, MODE, GROUP, TOPIC = sys.argv[1:5]
COMMITTED = {0: 3, 1: 5, 2: 7}
OFFSETS = "__consumer_offsets"


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def refused(future, code, what):
    """The admin call's future fails with Kafka error `code`."""
    try:
        future.result(timeout=30)
    except KafkaException as e:
        err = e.args[0]
        check(err.code() == code, f"{what}: expected {code}, got {err.code()} {err.str()}")
        print(f"{what}: refused with {err.name()}: {err.str()}")
        return
    raise SystemExit(f"FAILED: {what} succeeded")


def consumer():
    return Consumer({
        "bootstrap.servers": BOOTSTRAP,
        "group.id": GROUP,
        "enable.auto.commit": False,
    })


def committed():
    c = consumer()
    got = c.committed([TopicPartition(TOPIC, p) for p in COMMITTED], timeout=30)
    c.close()
    return {tp.partition: (tp.offset, tp.metadata) for tp in got}


def expected():
    return {p: (o, f"meta-{p}") for p, o in COMMITTED.items()}


if MODE == "commit":
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin.create_topics([NewTopic(TOPIC, 3, 1)])[TOPIC].result(timeout=30)
    p = Producer({"bootstrap.servers": BOOTSTRAP})
    for i in range(30):
        p.produce(TOPIC, value=b"v%d" % i, partition=i % 3)
    check(p.flush(30) == 0, "produce")
    c = consumer()
    c.commit(
        offsets=[TopicPartition(TOPIC, part, off, f"meta-{part}") for part, off in COMMITTED.items()],
        asynchronous=False,
    )
    c.close()
    check(committed() == expected(), f"committed before: {committed()}")

    refused(
        admin.delete_records([TopicPartition(OFFSETS, 0, -1)])[TopicPartition(OFFSETS, 0, -1)],
        KafkaError.TOPIC_EXCEPTION,
        "delete_records(__consumer_offsets)",
    )
    refused(admin.delete_topics([OFFSETS])[OFFSETS], KafkaError.TOPIC_EXCEPTION, "delete_topics")
    refused(
        admin.create_partitions([NewPartitions(OFFSETS, 4)])[OFFSETS],
        KafkaError.TOPIC_EXCEPTION,
        "create_partitions",
    )
    refused(
        admin.create_topics([NewTopic("__transaction_state", 1, 1)])["__transaction_state"],
        KafkaError.INVALID_REQUEST,
        "create_topics(__transaction_state)",
    )
    md = admin.list_topics(timeout=30)
    check(OFFSETS in md.topics and len(md.topics[OFFSETS].partitions) == 1, "offsets topic kept")
    check("__transaction_state" not in md.topics, "no __transaction_state")
    check(committed() == expected(), f"committed after the attempts: {committed()}")
    print("commit ok")
elif MODE == "check":
    check(committed() == expected(), f"committed after restart: {committed()}")
    print("check ok")
else:
    raise SystemExit(f"unknown mode {MODE}")
