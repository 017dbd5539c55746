"""confluent-kafka's AdminClient (librdkafka) against every Kafka topic config.

Usage: confluent_topic_configs.py HOST:PORT TABLE_JSON, where TABLE_JSON lists, per
config: name, default, the broker synonym Kafka lists with its default (or null), a value
it takes, how DescribeConfigs shows that value, and values it refuses. Exits non-zero
on the first mismatch. Creates a topic with every config set, one with none; describes
both (values, sources, defaults, read-only, sensitivity, synonyms); alters with
incremental SET, DELETE, APPEND and SUBTRACT and with the legacy AlterConfigs; and
expects INVALID_CONFIG for every refused value from CreateTopics and the alters.
"""
import json
import sys

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                   ConfigResource, ConfigSource, NewTopic)

BOOTSTRAP = sys.argv[1]
TABLE = json.loads(sys.argv[2])
a = AdminClient({"bootstrap.servers": BOOTSTRAP})


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def describe(topic):
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return a.describe_configs([res])[res].result(20)


def check_topic(topic, overridden, when):
    configs = describe(topic)
    check(sorted(configs) == sorted(c["name"] for c in TABLE),
          f"{when}: {topic} describes exactly Kafka's configs: {sorted(configs)}")
    for c in TABLE:
        e = configs[c["name"]]
        what = f"{when}: {topic} {c['name']}"
        check(not e.is_read_only and not e.is_sensitive, f"{what}: read-only or sensitive")
        want_synonyms = [] if c["synonym"] is None else [c["synonym"]]
        if c["name"] in overridden:
            check(e.value == c["shown"], f"{what}: {e.value!r} != {c['shown']!r}")
            check(e.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, f"{what}: source {e.source}")
            check(not e.is_default, f"{what}: is_default")
            want_synonyms = [c["name"]] + want_synonyms
        else:
            check(e.value == c["default"], f"{what}: {e.value!r} != {c['default']!r}")
            check(e.source == ConfigSource.DEFAULT_CONFIG.value, f"{what}: source {e.source}")
            check(e.is_default, f"{what}: not is_default")
        # Synonyms come as a dict by name: the override and a broker property of the same
        # name (compression.type) are one key.
        want_synonyms = list(dict.fromkeys(want_synonyms))
        check(list(e.synonyms) == want_synonyms, f"{what}: synonyms {list(e.synonyms)}")
        if c["synonym"] is not None and c["synonym"] != c["name"]:
            s = e.synonyms[c["synonym"]]
            check(s.value == c["default"] and s.source == ConfigSource.DEFAULT_CONFIG.value,
                  f"{what}: synonym {s.value!r} {s.source}")


def incremental(topic, entries):
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=entries)
    return a.incremental_alter_configs([res])[res]


def invalid_config(future, what):
    try:
        future.result(20)
    except KafkaException as e:
        err = e.args[0]
        check(err.code() == KafkaError.INVALID_CONFIG, f"{what}: {err}")
        return
    raise SystemExit(f"FAILED: {what} was accepted")


every = {c["name"]: c["good"] for c in TABLE}
fs = a.create_topics([
    NewTopic("cf-every", num_partitions=1, replication_factor=1, config=every),
    NewTopic("cf-none", num_partitions=1, replication_factor=1),
    NewTopic("cf-altered", num_partitions=1, replication_factor=1),
])
for f in fs.values():
    f.result(20)
check_topic("cf-every", every, "created")
check_topic("cf-none", set(), "created")

incremental("cf-none", [ConfigEntry(n, v, incremental_operation=AlterConfigOpType.SET)
                        for n, v in every.items()]).result(20)
check_topic("cf-none", every, "incremental SET")
incremental("cf-none", [ConfigEntry(n, None, incremental_operation=AlterConfigOpType.DELETE)
                        for n in every]).result(20)
check_topic("cf-none", set(), "incremental DELETE")

res = ConfigResource(ConfigResource.Type.TOPIC, "cf-altered", set_config=every)
a.alter_configs([res])[res].result(20)
check_topic("cf-altered", every, "AlterConfigs")

for name, first, second, subtract, want in [
    ("cleanup.policy", "compact", "delete", "delete", "compact"),
    ("leader.replication.throttled.replicas", "0:1", "1:1", "0:1", "1:1"),
    ("follower.replication.throttled.replicas", "0:1", "1:1", "0:1", "1:1"),
]:
    for op, value in [(AlterConfigOpType.APPEND, first), (AlterConfigOpType.APPEND, second),
                      (AlterConfigOpType.SUBTRACT, subtract)]:
        incremental("cf-none", [ConfigEntry(name, value, incremental_operation=op)]).result(20)
    got = describe("cf-none")[name].value
    check(got == want, f"{name} after APPEND {first}, {second}, SUBTRACT {subtract}: {got!r}")
invalid_config(incremental("cf-none", [ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.APPEND)]),
               "APPEND to a LONG")

refused = 0
for c in TABLE:
    for bad in c["bad"]:
        what = f"{c['name']}={bad!r}"
        fs = a.create_topics([NewTopic("cf-refused", num_partitions=1, replication_factor=1,
                                       config={c["name"]: bad})])
        invalid_config(fs["cf-refused"], f"CreateTopics {what}")
        invalid_config(incremental("cf-every", [ConfigEntry(c["name"], bad, incremental_operation=AlterConfigOpType.SET)]),
                       f"incremental SET {what}")
        res = ConfigResource(ConfigResource.Type.TOPIC, "cf-altered", set_config={c["name"]: bad})
        invalid_config(a.alter_configs([res])[res], f"AlterConfigs {what}")
        refused += 1
invalid_config(a.create_topics([NewTopic("cf-refused", num_partitions=1, replication_factor=1,
                                         config={"message.downconversion.enable": "true"})])["cf-refused"],
               "a config Kafka 4.0 removed")
check_topic("cf-every", every, "after the refusals")
print(f"{len(TABLE)} configs, {refused} refused values: ok")
