//! Every topic config Kafka 4.x documents, through CreateTopics, DescribeConfigs,
//! AlterConfigs and IncrementalAlterConfigs, against Kafka's own table (written out here,
//! independently of the broker's): its type, default, the broker synonym Kafka lists, a
//! value it takes and values it refuses. Also the broker properties as topics' defaults
//! (`log.cleanup.policy`) and the timestamp bounds on produce.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use sluice_protocol::record::{BatchBuilder, Compression};
use sluice_tests::{BrokerProcess, RawClient};

use super::{
    alter, alter_answer, create, create_answer, describe, incremental, incremental_answer, set,
    APPEND, DELETE, INVALID_CONFIG, SET,
};
use crate::client::{produce_request, produce_response};

const BOOLEAN: i8 = 1;
const STRING: i8 = 2;
const INT: i8 = 3;
const LONG: i8 = 5;
const DOUBLE: i8 = 6;
const LIST: i8 = 7;
const SUBTRACT: i8 = 3;

const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

const INVALID_TIMESTAMP: i16 = 32;
const INVALID_RECORD: i16 = 87;

const LONG_MAX: &str = "9223372036854775807";

/// One topic config as Kafka 4.x defines it.
struct Kafka {
    name: &'static str,
    config_type: i8,
    default: &'static str,
    /// The broker property Kafka lists as the DEFAULT_CONFIG synonym (none where the
    /// property's own default is null, or there is no property).
    default_synonym: Option<&'static str>,
    /// A value it takes, and how DescribeConfigs shows it.
    good: (&'static str, &'static str),
    /// Values it refuses with INVALID_CONFIG.
    bad: &'static [&'static str],
}

const fn k(
    name: &'static str,
    config_type: i8,
    default: &'static str,
    default_synonym: Option<&'static str>,
    good: (&'static str, &'static str),
    bad: &'static [&'static str],
) -> Kafka {
    Kafka { name, config_type, default, default_synonym, good, bad }
}

/// Kafka 4.x's topic configs, by name, as DescribeConfigs orders them here.
const KAFKA: &[Kafka] = &[
    k(
        "cleanup.policy",
        LIST,
        "delete",
        Some("log.cleanup.policy"),
        ("compact", "compact"),
        &["compact,remove", ""],
    ),
    k(
        "compression.gzip.level",
        INT,
        "-1",
        Some("compression.gzip.level"),
        ("9", "9"),
        &["0", "10", "x"],
    ),
    k("compression.lz4.level", INT, "9", Some("compression.lz4.level"), ("1", "1"), &["0", "18"]),
    k(
        "compression.type",
        STRING,
        "producer",
        Some("compression.type"),
        ("producer", "producer"),
        &["brotli", "gzip"],
    ),
    k(
        "compression.zstd.level",
        INT,
        "3",
        Some("compression.zstd.level"),
        ("-5", "-5"),
        &["23", "-131073"],
    ),
    k(
        "delete.retention.ms",
        LONG,
        "86400000",
        Some("log.cleaner.delete.retention.ms"),
        ("0", "0"),
        &["-1"],
    ),
    k(
        "file.delete.delay.ms",
        LONG,
        "60000",
        Some("log.segment.delete.delay.ms"),
        ("0", "0"),
        &["-1", "soon"],
    ),
    k(
        "flush.messages",
        LONG,
        LONG_MAX,
        Some("log.flush.interval.messages"),
        ("1000", "1000"),
        &["0"],
    ),
    k("flush.ms", LONG, LONG_MAX, None, ("1000", "1000"), &["-1"]),
    k(
        "follower.replication.throttled.replicas",
        LIST,
        "",
        None,
        ("0:1, 1:2", "0:1,1:2"),
        &["0", "*,0:1"],
    ),
    k(
        "index.interval.bytes",
        INT,
        "4096",
        Some("log.index.interval.bytes"),
        ("0", "0"),
        &["-1", "2147483648"],
    ),
    k("leader.replication.throttled.replicas", LIST, "", None, ("*", "*"), &["a:b"]),
    k(
        "local.retention.bytes",
        LONG,
        "-2",
        Some("log.local.retention.bytes"),
        ("-1", "-1"),
        &["-3"],
    ),
    k("local.retention.ms", LONG, "-2", Some("log.local.retention.ms"), ("1000", "1000"), &["-3"]),
    k(
        "max.compaction.lag.ms",
        LONG,
        LONG_MAX,
        Some("log.cleaner.max.compaction.lag.ms"),
        ("60000", "60000"),
        &["0"],
    ),
    k(
        "max.message.bytes",
        INT,
        "1048588",
        Some("message.max.bytes"),
        ("2000000", "2000000"),
        &["-1", "2147483648"],
    ),
    k(
        "message.timestamp.after.max.ms",
        LONG,
        "3600000",
        Some("log.message.timestamp.after.max.ms"),
        ("0", "0"),
        &["-1"],
    ),
    k(
        "message.timestamp.before.max.ms",
        LONG,
        LONG_MAX,
        Some("log.message.timestamp.before.max.ms"),
        ("86400000", "86400000"),
        &["-1"],
    ),
    k(
        "message.timestamp.type",
        STRING,
        "CreateTime",
        Some("log.message.timestamp.type"),
        ("LogAppendTime", "LogAppendTime"),
        &["Now", "logappendtime"],
    ),
    k(
        "min.cleanable.dirty.ratio",
        DOUBLE,
        "0.5",
        Some("log.cleaner.min.cleanable.ratio"),
        ("0.25", "0.25"),
        &["1.5", "half"],
    ),
    k(
        "min.compaction.lag.ms",
        LONG,
        "0",
        Some("log.cleaner.min.compaction.lag.ms"),
        ("100", "100"),
        &["-1"],
    ),
    k("min.insync.replicas", INT, "1", Some("min.insync.replicas"), ("1", "1"), &["0", "2"]),
    k("preallocate", BOOLEAN, "false", Some("log.preallocate"), ("TRUE", "true"), &["yes"]),
    k("remote.log.copy.disable", BOOLEAN, "false", None, ("true", "true"), &["1"]),
    k("remote.log.delete.on.disable", BOOLEAN, "false", None, ("true", "true"), &["on"]),
    k("remote.storage.enable", BOOLEAN, "false", None, ("false", "false"), &["true", "maybe"]),
    k(
        "retention.bytes",
        LONG,
        "-1",
        Some("log.retention.bytes"),
        ("-5", "-5"),
        &["9223372036854775808"],
    ),
    k("retention.ms", LONG, "604800000", None, ("-1", "-1"), &["-2", "soon"]),
    k(
        "segment.bytes",
        INT,
        "1073741824",
        Some("log.segment.bytes"),
        ("1048576", "1048576"),
        &["1048575", "4294967296"],
    ),
    k(
        "segment.index.bytes",
        INT,
        "10485760",
        Some("log.index.size.max.bytes"),
        ("4096", "4096"),
        &["3", "2147483648"],
    ),
    k("segment.jitter.ms", LONG, "0", None, ("1000", "1000"), &["-1"]),
    k("segment.ms", LONG, "604800000", None, ("1", "1"), &["0"]),
    k(
        "unclean.leader.election.enable",
        BOOLEAN,
        "false",
        Some("unclean.leader.election.enable"),
        ("true", "true"),
        &["no"],
    ),
];

fn entry<'a>(
    configs: &'a [DescribeConfigsResourceResult],
    name: &str,
) -> &'a DescribeConfigsResourceResult {
    configs
        .iter()
        .find(|e| e.name.as_str() == name)
        .unwrap_or_else(|| panic!("{name} not described"))
}

fn synonyms(e: &DescribeConfigsResourceResult) -> Vec<(String, String, i8)> {
    e.synonyms
        .iter()
        .map(|s| (s.name.to_string(), s.value.as_deref().unwrap_or("").to_owned(), s.source))
        .collect()
}

/// Kafka's default synonyms of a config no one set.
fn default_synonyms(kafka: &Kafka) -> Vec<(String, String, i8)> {
    kafka
        .default_synonym
        .map(|b| (b.to_owned(), kafka.default.to_owned(), DEFAULT_CONFIG))
        .into_iter()
        .collect()
}

/// Checks every config of `topic` against Kafka's table: overridden (`set`) with its good
/// value, or the default.
fn check_topic(c: &mut RawClient, topic: &str, set: bool, when: &str) {
    let r = describe(c, topic, 4);
    let names: Vec<&str> = r.configs.iter().map(|e| e.name.as_str()).collect();
    let want: Vec<&str> = KAFKA.iter().map(|k| k.name).collect();
    assert_eq!(names, want, "{when}: {topic} describes exactly Kafka's topic configs");
    for kafka in KAFKA {
        let e = entry(&r.configs, kafka.name);
        let what = format!("{when}: {topic} {}", kafka.name);
        assert_eq!(e.config_type, kafka.config_type, "{what}: type");
        assert!(!e.read_only && !e.is_sensitive, "{what}");
        assert!(e.documentation.as_deref().is_some_and(|d| !d.is_empty()), "{what}: doc");
        let mut want = default_synonyms(kafka);
        if set {
            let shown = kafka.good.1;
            assert_eq!(e.value.as_deref(), Some(shown), "{what}");
            assert_eq!(e.config_source, DYNAMIC_TOPIC_CONFIG, "{what}");
            want.insert(0, (kafka.name.to_owned(), shown.to_owned(), DYNAMIC_TOPIC_CONFIG));
        } else {
            assert_eq!(e.value.as_deref(), Some(kafka.default), "{what}");
            assert_eq!(e.config_source, DEFAULT_CONFIG, "{what}");
        }
        assert_eq!(synonyms(e), want, "{what}: synonyms");
    }
}

fn good_values() -> Vec<(&'static str, &'static str)> {
    KAFKA.iter().map(|k| (k.name, k.good.0)).collect()
}

#[test]
fn every_kafka_topic_config_through_every_path() {
    let mut broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    assert_eq!(create(&mut c, "defaults", &[]), 0);
    check_topic(&mut c, "defaults", false, "new topic");

    let good = good_values();
    assert_eq!(create(&mut c, "created", &good), 0, "every config in one CreateTopics");
    for topic in ["altered", "incremental"] {
        assert_eq!(create(&mut c, topic, &[]), 0);
    }
    assert_eq!(alter(&mut c, "altered", &good), 0);
    assert_eq!(incremental(&mut c, "incremental", &set(&good)), 0);
    for topic in ["created", "altered", "incremental"] {
        check_topic(&mut c, topic, true, "set");
    }

    // Every value Kafka refuses, by each path, with a message naming the config; nothing
    // changes.
    for kafka in KAFKA {
        for bad in kafka.bad {
            let what = format!("{}={bad:?}", kafka.name);
            let config = [(kafka.name, *bad)];
            let answers = [
                create_answer(&mut c, "refused", &config),
                alter_answer(&mut c, "altered", &config),
                incremental_answer(&mut c, "incremental", &[(kafka.name, SET, Some(bad))]),
            ];
            for (path, (code, message)) in
                ["CreateTopics", "AlterConfigs", "Incremental"].iter().zip(answers)
            {
                assert_eq!(code, INVALID_CONFIG, "{path} {what}: {message}");
                assert!(message.contains(kafka.name), "{path} {what}: {message}");
            }
        }
    }
    for topic in ["altered", "incremental"] {
        check_topic(&mut c, topic, true, "after the refusals");
    }

    // DELETE of each override, and AlterConfigs without a config, bring the defaults back.
    let deletes: Vec<(&str, i8, Option<&str>)> =
        KAFKA.iter().map(|k| (k.name, DELETE, None)).collect();
    assert_eq!(incremental(&mut c, "incremental", &deletes), 0);
    check_topic(&mut c, "incremental", false, "deleted");
    assert_eq!(alter(&mut c, "altered", &[]), 0);
    check_topic(&mut c, "altered", false, "replaced by nothing");

    broker.stop();
    broker.restart();
    let mut c = RawClient::connect(broker.addr);
    check_topic(&mut c, "created", true, "after a restart");
    check_topic(&mut c, "incremental", false, "after a restart");
}

#[test]
fn append_and_subtract_on_every_list_config_and_only_there() {
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    assert_eq!(create(&mut c, "t", &[]), 0);
    let shown = |c: &mut RawClient, name: &str| {
        let r = describe(c, "t", 4);
        entry(&r.configs, name).value.as_deref().unwrap_or("").to_owned()
    };
    for (name, first, second, third) in [
        ("cleanup.policy", "compact", "delete", "compact"),
        ("leader.replication.throttled.replicas", "0:1", "1:1", "1:1"),
        ("follower.replication.throttled.replicas", "0:1", "1:1", "1:1"),
    ] {
        assert_eq!(incremental(&mut c, "t", &[(name, APPEND, Some(first))]), 0, "{name}");
        let after_append = shown(&mut c, name);
        assert_eq!(incremental(&mut c, "t", &[(name, APPEND, Some(second))]), 0, "{name}");
        let both = shown(&mut c, name);
        let subtracted = if name == "cleanup.policy" { "delete" } else { "0:1" };
        assert_eq!(incremental(&mut c, "t", &[(name, SUBTRACT, Some(subtracted))]), 0);
        assert_eq!(shown(&mut c, name), third, "{name} after SUBTRACT {subtracted}");
        match name {
            "cleanup.policy" => assert_eq!(
                (after_append.as_str(), both.as_str()),
                ("delete,compact", "delete,compact")
            ),
            _ => assert_eq!((after_append.as_str(), both.as_str()), ("0:1", "0:1,1:1")),
        }
    }
    // The result is held to the rule: `*` goes alone.
    let (code, message) = incremental_answer(
        &mut c,
        "t",
        &[("leader.replication.throttled.replicas", APPEND, Some("*"))],
    );
    assert_eq!(code, INVALID_CONFIG, "{message}");
    // No APPEND or SUBTRACT on a config that is no list, as Kafka.
    for kafka in KAFKA.iter().filter(|k| k.config_type != LIST) {
        for op in [APPEND, SUBTRACT] {
            let (code, message) =
                incremental_answer(&mut c, "t", &[(kafka.name, op, Some(kafka.good.0))]);
            assert_eq!(code, INVALID_CONFIG, "{} op {op}: {message}", kafka.name);
        }
    }
}

#[test]
fn broker_properties_are_the_defaults_topics_show_and_use() {
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("server.properties");
    std::fs::write(
        &props,
        "log.cleanup.policy=compact\nlog.preallocate=true\nlog.message.timestamp.after.max.ms=60000\nlog.retention.ms=5000\n",
    )
    .unwrap();
    let broker = BrokerProcess::start(&["--config", props.to_str().unwrap()]);
    let mut c = RawClient::connect(broker.addr);
    assert_eq!(create(&mut c, "t", &[]), 0);
    let r = describe(&mut c, "t", 4);
    for (name, broker_name, value, default) in [
        ("cleanup.policy", "log.cleanup.policy", "compact", Some("delete")),
        ("preallocate", "log.preallocate", "true", Some("false")),
        (
            "message.timestamp.after.max.ms",
            "log.message.timestamp.after.max.ms",
            "60000",
            Some("3600000"),
        ),
        ("retention.ms", "log.retention.ms", "5000", None),
    ] {
        let e = entry(&r.configs, name);
        assert_eq!(
            (e.value.as_deref(), e.config_source),
            (Some(value), STATIC_BROKER_CONFIG),
            "{name}"
        );
        let mut want = vec![(broker_name.to_owned(), value.to_owned(), STATIC_BROKER_CONFIG)];
        want.extend(default.map(|d| (broker_name.to_owned(), d.to_owned(), DEFAULT_CONFIG)));
        assert_eq!(synonyms(e), want, "{name}");
    }
    // Compacted by the broker's default: a record without a key is refused, as Kafka does.
    let mut b = BatchBuilder::new(Compression::None);
    b.append(now_ms(), None, Some(b"v"), &[]).unwrap();
    let r =
        produce_response(&mut c, 9, produce_request("t", 0, Bytes::from(b.build().unwrap()), 1));
    assert_eq!(r.responses[0].partition_responses[0].error_code, INVALID_RECORD);
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn produce_at(
    c: &mut RawClient,
    topic: &str,
    timestamps: &[i64],
    compression: Compression,
) -> (i16, Vec<i32>, String) {
    let mut b = BatchBuilder::new(compression);
    for &t in timestamps {
        b.append(t, Some(b"k"), Some(b"v"), &[]).unwrap();
    }
    let r = produce_response(c, 9, produce_request(topic, 0, Bytes::from(b.build().unwrap()), 1));
    let p = &r.responses[0].partition_responses[0];
    let indexes = p.record_errors.iter().map(|e| e.batch_index).collect();
    (p.error_code, indexes, p.error_message.as_deref().unwrap_or("").to_owned())
}

#[test]
fn timestamps_outside_the_topics_bounds_get_invalid_timestamp_per_record() {
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    assert_eq!(create(&mut c, "kafka-defaults", &[]), 0);
    let hour = 3_600_000;
    let now = now_ms();
    // Kafka 4.0's defaults: any age, at most an hour ahead.
    assert_eq!(produce_at(&mut c, "kafka-defaults", &[1, now], Compression::None).0, 0);
    let (code, indexes, message) =
        produce_at(&mut c, "kafka-defaults", &[now, now + 2 * hour], Compression::None);
    assert_eq!((code, indexes), (INVALID_TIMESTAMP, vec![1]), "{message}");
    assert_eq!(message, "One or more records have been rejected due to invalid timestamp");

    let bounded =
        [("message.timestamp.before.max.ms", "60000"), ("message.timestamp.after.max.ms", "60000")];
    assert_eq!(create(&mut c, "bounded", &bounded), 0);
    for compression in [Compression::None, Compression::Zstd] {
        let now = now_ms();
        assert_eq!(
            produce_at(&mut c, "bounded", &[now, now - 30_000, now + 30_000], compression).0,
            0
        );
        let (code, indexes, _) =
            produce_at(&mut c, "bounded", &[now, now - hour, now, now - hour], compression);
        assert_eq!((code, indexes), (INVALID_TIMESTAMP, vec![1, 3]), "{compression:?}");
    }
    // LogAppendTime stamps the broker's clock: the bounds do not apply.
    let appended =
        [("message.timestamp.type", "LogAppendTime"), ("message.timestamp.before.max.ms", "0")];
    assert_eq!(create(&mut c, "appended", &appended), 0);
    assert_eq!(produce_at(&mut c, "appended", &[1, now_ms() + 10 * hour], Compression::None).0, 0);
    // An altered bound applies to the next produce.
    assert_eq!(
        incremental(
            &mut c,
            "kafka-defaults",
            &[("message.timestamp.after.max.ms", SET, Some(LONG_MAX))]
        ),
        0
    );
    assert_eq!(
        produce_at(&mut c, "kafka-defaults", &[now_ms() + 10 * hour], Compression::None).0,
        0
    );
}

#[test]
fn confluent_kafkas_admin_client_sees_every_config_as_kafka_shows_it() {
    let broker = BrokerProcess::start(&[]);
    let table: Vec<serde_json::Value> = KAFKA
        .iter()
        .map(|k| {
            serde_json::json!({
                "name": k.name,
                "default": k.default,
                "synonym": k.default_synonym,
                "good": k.good.0,
                "shown": k.good.1,
                "bad": k.bad,
            })
        })
        .collect();
    let table = serde_json::to_string(&table).unwrap();
    let out = crate::interop::python_with_args("confluent_topic_configs.py", &broker, &[&table]);
    assert!(out.contains(&format!("{} configs", KAFKA.len())), "{out}");
}
