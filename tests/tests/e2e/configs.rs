//! Topic configs through every path, against the real binary: one table, one answer.
//! CreateTopics, AlterConfigs and IncrementalAlterConfigs refuse the same values with
//! INVALID_CONFIG and accept the same values, which DescribeConfigs renders back the same,
//! also after a restart; the broker property of a topic config takes the same bounds at
//! start; internal topics refuse configs that would delete their records.
//!
//! `segment.bytes` is at least 1 MiB (KIP-1030): a hostile client at 3.9's 14 bytes would
//! roll a segment per batch, each holding descriptors and mappings. Smaller segments come
//! only from the operator's `sluice.internal.log.segment.bytes`.

use std::process::Command;
use std::time::Duration;

use kafka_protocol::messages::create_topics_request::CreatableTopicConfig;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::{
    alter_configs_request, incremental_alter_configs_request, AlterConfigsRequest,
    DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::{Request, Response};
use sluice_protocol::record::Compression;
use sluice_tests::{sluiced_path, BrokerProcess, RawClient};

use crate::client::{batch, create_request, produce};

mod kafka;

const TOPIC: i8 = 2;
const INVALID_CONFIG: i16 = 40;
const POLICY_VIOLATION: i16 = 44;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;

/// Values each path must refuse: out of Kafka's range, of the wrong type, not allowed.
const REFUSED: &[(&str, &str)] = &[
    ("segment.index.bytes", "8796093022208"),
    ("segment.index.bytes", "2147483648"),
    ("segment.index.bytes", "3"),
    ("segment.bytes", "13"),
    ("segment.bytes", "14"),
    ("segment.bytes", "1048575"),
    ("sluice.internal.log.segment.bytes", "4096"),
    ("segment.bytes", "4294967296"),
    ("segment.ms", "0"),
    ("flush.messages", "0"),
    ("flush.ms", "-1"),
    ("retention.ms", "-2"),
    ("retention.ms", "soon"),
    ("retention.bytes", "9223372036854775808"),
    ("index.interval.bytes", "-1"),
    ("max.message.bytes", "2147483648"),
    ("max.message.bytes", "1.5"),
    ("message.timestamp.type", "Now"),
    ("cleanup.policy", "compact,remove"),
    ("compression.type", "brotli"),
    ("compression.type", "gzip"),
    ("min.insync.replicas", "0"),
    ("delete.retention.ms", "-1"),
    ("min.compaction.lag.ms", "-1"),
    ("max.compaction.lag.ms", "0"),
    ("min.cleanable.dirty.ratio", "1.5"),
    ("min.cleanable.dirty.ratio", "half"),
    ("no.such.config", "1"),
];

/// Values each path must accept, and how DescribeConfigs renders them.
const ACCEPTED: &[(&str, &str, &str)] = &[
    ("segment.index.bytes", "2147483647", "2147483647"),
    ("segment.bytes", "1048576", "1048576"),
    ("segment.ms", "1", "1"),
    ("flush.messages", "9223372036854775807", "9223372036854775807"),
    ("flush.ms", "9223372036854775807", "9223372036854775807"),
    ("retention.ms", "-1", "-1"),
    ("retention.bytes", "-5", "-5"),
    ("index.interval.bytes", "0", "0"),
    ("max.message.bytes", "2147483647", "2147483647"),
    ("message.timestamp.type", "LogAppendTime", "LogAppendTime"),
    ("cleanup.policy", "compact, delete", "compact,delete"),
    ("compression.type", "producer", "producer"),
    ("min.insync.replicas", "1", "1"),
    ("delete.retention.ms", "0", "0"),
    ("min.compaction.lag.ms", "100", "100"),
    ("max.compaction.lag.ms", "60000", "60000"),
    ("min.cleanable.dirty.ratio", "0.25", "0.25"),
];

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn create(c: &mut RawClient, topic: &str, configs: &[(&str, &str)]) -> i16 {
    create_answer(c, topic, configs).0
}

/// CreateTopics: the error code and message.
fn create_answer(c: &mut RawClient, topic: &str, configs: &[(&str, &str)]) -> (i16, String) {
    let mut req = create_request(topic, 1);
    req.topics[0].configs = configs
        .iter()
        .map(|(k, v)| {
            let mut cfg = CreatableTopicConfig::default();
            cfg.name = s(k);
            cfg.value = Some(s(v));
            cfg
        })
        .collect();
    let Response::CreateTopics(r) = c.call(7, Request::CreateTopics(req)) else { panic!() };
    let t = &r.topics[0];
    (t.error_code, t.error_message.as_deref().unwrap_or("").to_owned())
}

fn alter(c: &mut RawClient, topic: &str, configs: &[(&str, &str)]) -> i16 {
    alter_answer(c, topic, configs).0
}

/// AlterConfigs: the error code and message.
fn alter_answer(c: &mut RawClient, topic: &str, configs: &[(&str, &str)]) -> (i16, String) {
    let mut resource = alter_configs_request::AlterConfigsResource::default();
    resource.resource_type = TOPIC;
    resource.resource_name = s(topic);
    resource.configs = configs
        .iter()
        .map(|(k, v)| {
            let mut cfg = alter_configs_request::AlterableConfig::default();
            cfg.name = s(k);
            cfg.value = Some(s(v));
            cfg
        })
        .collect();
    let mut req = AlterConfigsRequest::default();
    req.resources = vec![resource];
    let Response::AlterConfigs(r) = c.call(2, Request::AlterConfigs(req)) else { panic!() };
    let a = &r.responses[0];
    (a.error_code, a.error_message.as_deref().unwrap_or("").to_owned())
}

fn incremental(c: &mut RawClient, topic: &str, ops: &[(&str, i8, Option<&str>)]) -> i16 {
    incremental_answer(c, topic, ops).0
}

/// IncrementalAlterConfigs: the error code and message.
fn incremental_answer(
    c: &mut RawClient,
    topic: &str,
    ops: &[(&str, i8, Option<&str>)],
) -> (i16, String) {
    let mut resource = incremental_alter_configs_request::AlterConfigsResource::default();
    resource.resource_type = TOPIC;
    resource.resource_name = s(topic);
    resource.configs = ops
        .iter()
        .map(|(k, op, v)| {
            let mut cfg = incremental_alter_configs_request::AlterableConfig::default();
            cfg.name = s(k);
            cfg.config_operation = *op;
            cfg.value = v.map(s);
            cfg
        })
        .collect();
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources = vec![resource];
    let Response::IncrementalAlterConfigs(r) = c.call(1, Request::IncrementalAlterConfigs(req))
    else {
        panic!()
    };
    let a = &r.responses[0];
    (a.error_code, a.error_message.as_deref().unwrap_or("").to_owned())
}

fn set(ops: &[(&'static str, &'static str)]) -> Vec<(&'static str, i8, Option<&'static str>)> {
    ops.iter().map(|(k, v)| (*k, SET, Some(*v))).collect()
}

fn describe(c: &mut RawClient, topic: &str, version: i16) -> DescribeConfigsResult {
    let mut resource = DescribeConfigsResource::default();
    resource.resource_type = TOPIC;
    resource.resource_name = s(topic);
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![resource];
    req.include_synonyms = true;
    req.include_documentation = version >= 3;
    let Response::DescribeConfigs(mut r) = c.call(version, Request::DescribeConfigs(req)) else {
        panic!()
    };
    let result = r.results.remove(0);
    assert_eq!(result.error_code, 0, "{topic}: {:?}", result.error_message);
    result
}

fn value<'a>(r: &'a DescribeConfigsResult, name: &str) -> (&'a str, i8) {
    let e = r.configs.iter().find(|e| e.name.as_str() == name).unwrap_or_else(|| panic!("{name}"));
    (e.value.as_deref().unwrap_or(""), e.config_source)
}

fn topic_exists(c: &mut RawClient, topic: &str) -> bool {
    let mut m = kafka_protocol::messages::MetadataRequest::default();
    let mut t = kafka_protocol::messages::metadata_request::MetadataRequestTopic::default();
    t.name = Some(crate::client::name(topic));
    m.topics = Some(vec![t]);
    m.allow_auto_topic_creation = false;
    let Response::Metadata(r) = c.call(12, Request::Metadata(m)) else { panic!() };
    r.topics[0].error_code == 0
}

#[test]
fn out_of_range_and_wrong_type_values_get_invalid_config_from_every_path() {
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    assert_eq!(create(&mut c, "kept", &[("retention.ms", "1000")]), 0);
    for (i, &(k, v)) in REFUSED.iter().enumerate() {
        let topic = format!("refused-{i}");
        assert_eq!(create(&mut c, &topic, &[(k, v)]), INVALID_CONFIG, "CreateTopics {k}={v}");
        assert_eq!(alter(&mut c, "kept", &[(k, v)]), INVALID_CONFIG, "AlterConfigs {k}={v}");
        let ops = [(k, SET, Some(v))];
        assert_eq!(incremental(&mut c, "kept", &ops), INVALID_CONFIG, "Incremental {k}={v}");
    }
    // Nothing was created or changed by the refusals.
    let r = describe(&mut c, "kept", 4);
    assert_eq!(value(&r, "retention.ms"), ("1000", 1));
    assert_eq!(value(&r, "segment.index.bytes"), ("10485760", 5));
    let mut m = kafka_protocol::messages::MetadataRequest::default();
    m.topics = None;
    let Response::Metadata(meta) = c.call(12, Request::Metadata(m)) else { panic!() };
    assert!(meta.topics.iter().all(|t| !t.name.as_ref().unwrap().0.starts_with("refused-")));
}

#[test]
fn in_range_values_are_accepted_by_every_path_rendered_back_and_kept_by_a_restart() {
    let mut broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    let given: Vec<(&str, &str)> = ACCEPTED.iter().map(|&(k, v, _)| (k, v)).collect();
    assert_eq!(create(&mut c, "created", &given), 0);
    for topic in ["altered", "incremental"] {
        assert_eq!(create(&mut c, topic, &[]), 0);
    }
    assert_eq!(alter(&mut c, "altered", &given), 0);
    assert_eq!(incremental(&mut c, "incremental", &set(&given)), 0);
    let check = |c: &mut RawClient, when: &str| {
        for topic in ["created", "altered", "incremental"] {
            for version in [1, 4] {
                let r = describe(c, topic, version);
                for &(k, _, shown) in ACCEPTED {
                    assert_eq!(value(&r, k), (shown, 1), "{when}: {topic} v{version} {k}");
                }
            }
        }
    };
    check(&mut c, "before the restart");
    // A 2 GiB index setting maps and reserves only what a 1 MiB segment can fill.
    assert_eq!(produce(&mut c, "created", batch("x", 10, Compression::None), 1).0, 0);
    let index = broker.data_dir.join("created-0/00000000000000000000.index");
    let len = std::fs::metadata(&index).unwrap().len();
    assert!(len <= 1 << 20, "index of {len} bytes for a 1 MiB segment");
    broker.stop();
    broker.restart();
    let mut c = RawClient::connect(broker.addr);
    check(&mut c, "after the restart");
}

#[test]
fn describe_configs_gives_types_docs_and_synonyms_at_v3_and_up_only() {
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    assert_eq!(create(&mut c, "t", &[("segment.index.bytes", "4096")]), 0);
    let r = describe(&mut c, "t", 4);
    let e = r.configs.iter().find(|e| e.name.as_str() == "segment.index.bytes").unwrap();
    assert_eq!(e.config_type, 3, "INT");
    assert!(e.documentation.as_ref().is_some_and(|d| !d.is_empty()));
    let synonyms: Vec<&str> = e.synonyms.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(synonyms, ["segment.index.bytes", "log.index.size.max.bytes"]);
    let policy = r.configs.iter().find(|e| e.name.as_str() == "cleanup.policy").unwrap();
    assert_eq!(policy.config_type, 7, "LIST");
    let r = describe(&mut c, "t", 2);
    let e = r.configs.iter().find(|e| e.name.as_str() == "segment.index.bytes").unwrap();
    // Not on the wire before v3: the decoder leaves its defaults.
    let doc = e.documentation.as_deref().unwrap_or("");
    assert_eq!((e.config_type, doc), (0, ""), "not in v2");
    assert_eq!(e.synonyms.len(), 2);
}

#[test]
fn a_broker_index_size_out_of_range_stops_the_start_naming_the_key() {
    for value in ["2147483648", "8796093022208", "3", "ten"] {
        let dir = tempfile::tempdir().unwrap();
        let property = format!("log.index.size.max.bytes={value}");
        let out = Command::new(sluiced_path())
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(["--override", &property])
            .output()
            .expect("run sluiced");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{property} started: {stderr}");
        assert!(stderr.contains("log.index.size.max.bytes"), "{property}: {stderr}");
        assert!(stderr.contains(value), "{property}: {stderr}");
    }
    // In range, it starts.
    let broker = BrokerProcess::start(&["--override", "log.index.size.max.bytes=2147483647"]);
    let mut c = RawClient::connect(broker.addr);
    assert_eq!(create(&mut c, "t", &[]), 0);
    assert_eq!(value(&describe(&mut c, "t", 4), "segment.index.bytes"), ("2147483647", 4));
}

#[test]
fn a_broker_segment_size_below_1_mib_stops_the_start_naming_the_key() {
    for value in ["1000", "1048575"] {
        let dir = tempfile::tempdir().unwrap();
        let property = format!("log.segment.bytes={value}");
        let out = Command::new(sluiced_path())
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(["--override", &property])
            .output()
            .expect("run sluiced");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{property} started: {stderr}");
        assert!(stderr.contains(&format!("{value:?} for log.segment.bytes")), "{stderr}");
        assert!(stderr.contains("at least 1048576"), "{property}: {stderr}");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(sluiced_path())
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(["--override", "sluice.internal.log.segment.bytes=13"])
        .output()
        .expect("run sluiced");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started: {stderr}");
    assert!(stderr.contains("sluice.internal.log.segment.bytes"), "{stderr}");
}

#[test]
fn the_internal_segment_size_rolls_every_topic_small_and_is_no_topic_config() {
    let broker = BrokerProcess::start(&["--override", "sluice.internal.log.segment.bytes=4096"]);
    let mut c = RawClient::connect(broker.addr);
    // The topic's own 1 MiB gives way to the operator's size.
    assert_eq!(create(&mut c, "small", &[("segment.bytes", "1048576")]), 0);
    for i in 0..40 {
        let records = batch(&format!("b{i}"), 10, Compression::None);
        assert_eq!(produce(&mut c, "small", records, 1).0, 0, "batch {i}");
    }
    let segments = std::fs::read_dir(broker.data_dir.join("small-0"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .count();
    assert!(segments >= 2, "{segments} segment(s) for 40 batches at 4096 bytes");
    let r = describe(&mut c, "small", 4);
    assert_eq!(value(&r, "segment.bytes"), ("1048576", 1), "shown as configured");
    assert!(r.configs.iter().all(|e| !e.name.as_str().starts_with("sluice.")), "no topic config");
}

#[test]
fn internal_topics_refuse_configs_that_would_delete_their_records() {
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    let offsets = "__consumer_offsets";
    let mut tries = 0;
    while !topic_exists(&mut c, offsets) {
        tries += 1;
        assert!(tries < 100, "{offsets} never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = describe(&mut c, offsets, 4);
    for (k, v) in [("retention.ms", "1000"), ("retention.bytes", "0"), ("cleanup.policy", "delete")]
    {
        let ops = [(k, SET, Some(v))];
        assert_eq!(incremental(&mut c, offsets, &ops), POLICY_VIOLATION, "SET {k}={v}");
    }
    let refused = [
        ("cleanup.policy", APPEND, Some("delete")),
        ("retention.ms", DELETE, None),
        ("cleanup.policy", DELETE, None),
    ];
    for op in refused {
        assert_eq!(incremental(&mut c, offsets, &[op]), POLICY_VIOLATION, "{op:?}");
    }
    // AlterConfigs replaces the whole set: leaving retention.ms out would restore 7 days.
    assert_eq!(alter(&mut c, offsets, &[("segment.bytes", "1048576")]), POLICY_VIOLATION);
    assert_eq!(alter(&mut c, offsets, &[]), POLICY_VIOLATION);
    let lossy = [("cleanup.policy", "compact"), ("retention.ms", "86400000")];
    // Clients may not create internal topics at all: the broker makes its own.
    assert_eq!(create(&mut c, "__transaction_state", &lossy), 42, "INVALID_REQUEST");
    assert_eq!(create(&mut c, offsets, &[]), 36, "TOPIC_ALREADY_EXISTS, as Kafka answers");
    // An out-of-range value is still INVALID_CONFIG first; a harmless change is allowed.
    assert_eq!(incremental(&mut c, offsets, &set(&[("segment.ms", "0")])), INVALID_CONFIG);
    assert_eq!(incremental(&mut c, offsets, &set(&[("segment.ms", "3600000")])), 0);
    let after = describe(&mut c, offsets, 4);
    for k in ["retention.ms", "retention.bytes", "cleanup.policy"] {
        assert_eq!(value(&after, k), value(&before, k), "{k}");
    }
    assert_eq!(value(&after, "retention.ms"), ("-1", 1));
    assert_eq!(value(&after, "cleanup.policy"), ("compact", 1));
}

/// An IncrementalAlterConfigs of one op on `topic`, as a whole frame.
fn incremental_frame(topic: &str, key: &str, op: i8, value: &str) -> Vec<u8> {
    let mut resource = incremental_alter_configs_request::AlterConfigsResource::default();
    resource.resource_type = TOPIC;
    resource.resource_name = s(topic);
    let mut cfg = incremental_alter_configs_request::AlterableConfig::default();
    cfg.name = s(key);
    cfg.config_operation = op;
    cfg.value = Some(s(value));
    resource.configs = vec![cfg];
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources = vec![resource];
    sluice_tests::hostile::encode_frame(1, &Request::IncrementalAlterConfigs(req))
}

#[test]
fn huge_list_values_cost_memory_and_time_linear_in_the_frame_not_per_item() {
    const ITEMS: usize = 4_000_000;
    let mut broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    assert_eq!(create(&mut c, "t", &[]), 0);
    let repeated = vec!["compact"; ITEMS].join(",");
    let foreign: String = (0..ITEMS).map(|i| format!("p{i}")).collect::<Vec<_>>().join(",");
    let junk = "9".repeat(repeated.len());
    let attacks = [
        (
            "APPEND of one item repeated",
            incremental_frame("t", "cleanup.policy", APPEND, &repeated),
        ),
        ("APPEND of distinct items", incremental_frame("t", "cleanup.policy", APPEND, &foreign)),
        ("SUBTRACT of distinct items", incremental_frame("t", "cleanup.policy", 3, &foreign)),
        ("SET of one item repeated", incremental_frame("t", "cleanup.policy", SET, &repeated)),
        ("SET of a huge number", incremental_frame("t", "retention.ms", SET, &junk)),
    ];
    let probe = sluice_tests::hostile::Probe::start(broker.addr);
    for (what, frame) in &attacks {
        let cost = sluice_tests::hostile::attack(&mut broker, frame, 1, true);
        let allowed = sluice_tests::hostile::allowed_growth(frame.len());
        eprintln!("{what}: frame {} bytes, {cost:?}", frame.len());
        assert!(cost.peak_growth <= allowed, "{what}: grew {} > {allowed}", cost.peak_growth);
        assert!(cost.largest_response < 4096, "{what}: a {}-byte answer", cost.largest_response);
        // About 3 s in a debug build; a search per item would take hours.
        assert!(cost.elapsed < Duration::from_secs(60), "{what}: {:?}", cost.elapsed);
    }
    let latencies = probe.finish();
    let p99 = latencies.quantile(0.99);
    assert!(p99 < Duration::from_secs(2), "other clients waited: p99 {p99:?}");
    // The repeats meant one item: stored once.
    assert_eq!(value(&describe(&mut c, "t", 4), "cleanup.policy"), ("compact", 1));
}
