"""kafka-python pinned to old broker versions against sluiced: the request versions Kafka
4.0 removed (KIP-896) and Kafka 3.9 serves.

Usage: kafka_python_old.py HOST:PORT TOPIC. TOPIC's partition 0 must hold 20 records.
Exits non-zero on the first mismatch.

- A KafkaConsumer pinned to api_version=(0, 10, 0) finds the beginning and the end of the
  partition with ListOffsets v0 (seek_to_beginning / seek_to_end / beginning_offsets /
  end_offsets), commits a position outside group management (OffsetCommit v2) and reads
  it back (OffsetFetch v1). Its Fetch would be v2 (message format v1), which sluiced does
  not serve, so an unpinned consumer of the same group reads the records from there.
- KafkaConsumers pinned to (0, 8, 2) and (0, 8, 1) commit outside group management with
  OffsetCommit v1 and v0, and read back with OffsetFetch v1 and v0.
- A KafkaAdminClient pinned to (0, 10, 1) creates and deletes a topic with CreateTopics v0
  and DeleteTopics v0; one pinned to (0, 11) describes a topic with DescribeConfigs v0.

Prints "beginning B end E" and every (request, version) the pinned clients chose.
"""
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.protocol import broker_version_data
from kafka.structs import OffsetAndMetadata

BOOTSTRAP = sys.argv[1]
TOPIC = sys.argv[2]
TP = TopicPartition(TOPIC, 0)

# Record the version each request goes out in: the connection asks the broker version
# data for it just before it sends.
CHOSEN = set()
_api_version = broker_version_data.BrokerVersionData.api_version


def _spy(self, operation, *args, **kwargs):
    version = _api_version(self, operation, *args, **kwargs)
    name = operation.__name__ if isinstance(operation, type) else type(operation).__name__
    CHOSEN.add((name, version))
    return version


broker_version_data.BrokerVersionData.api_version = _spy


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


pinned = KafkaConsumer(
    bootstrap_servers=BOOTSTRAP,
    api_version=(0, 10, 0),
    group_id=f"{TOPIC}-pinned",
    enable_auto_commit=False,
)
pinned.assign([TP])
beginning = pinned.beginning_offsets([TP])[TP]
end = pinned.end_offsets([TP])[TP]
print(f"beginning {beginning} end {end}")
check((beginning, end) == (0, 20), f"beginning/end {beginning}/{end}")
pinned.seek_to_end(TP)
check(pinned.position(TP) == 20, f"position after seek_to_end: {pinned.position(TP)}")
pinned.seek_to_beginning(TP)
check(pinned.position(TP) == 0, f"position after seek_to_beginning: {pinned.position(TP)}")
pinned.commit({TP: OffsetAndMetadata(12, "pinned", -1)})
committed = pinned.committed(TP, metadata=True)
check(committed is not None and committed.offset == 12, f"committed {committed}")
check(committed.metadata == "pinned", f"committed metadata {committed.metadata!r}")
pinned.close()

# An unpinned consumer of the group resumes at the pinned one's commit.
reader = KafkaConsumer(
    bootstrap_servers=BOOTSTRAP,
    group_id=f"{TOPIC}-pinned",
    enable_auto_commit=False,
    auto_offset_reset="none",
)
reader.assign([TP])
offsets = []
deadline = time.time() + 20
while len(offsets) < 8 and time.time() < deadline:
    for records in reader.poll(timeout_ms=500).values():
        offsets.extend(r.offset for r in records)
reader.close()
check(offsets == list(range(12, 20)), f"read from the commit: {offsets}")

# Kafka 0.8.2's clients commit with OffsetCommit v1, 0.8.1's with v0 and read with
# OffsetFetch v0 (which Kafka 3.9 kept in ZooKeeper).
for pin, offset in [((0, 8, 2), 15), ((0, 8, 1), 17)]:
    old = KafkaConsumer(bootstrap_servers=BOOTSTRAP, api_version=pin,
                        group_id=f"{TOPIC}-{pin[2]}", enable_auto_commit=False)
    old.assign([TP])
    old.commit({TP: OffsetAndMetadata(offset, f"from {pin}", -1)})
    committed = old.committed(TP, metadata=True)
    check(committed is not None and (committed.offset, committed.metadata) == (offset, f"from {pin}"),
          f"{pin} committed {committed}")
    old.close()

admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, api_version=(0, 10, 1))
admin.create_topics([NewTopic(f"{TOPIC}-made", 2, 1, topic_configs={"retention.ms": "1234"})])
admin.close()
admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, api_version=(0, 11))
described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, f"{TOPIC}-made")])
modified = described["topic"][f"{TOPIC}-made"]
check(modified.get("retention.ms", {}).get("value") == "1234", f"described {modified}")
check("cleanup.policy" not in modified, f"a default reported as modified: {modified}")
admin.close()
admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, api_version=(0, 10, 1))
admin.delete_topics([f"{TOPIC}-made"])
check(f"{TOPIC}-made" not in admin.list_topics(), "topic deleted")
admin.close()

for name, version in sorted(CHOSEN):
    print(f"sent {name} v{version}")
