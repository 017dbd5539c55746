//! Log compaction through the real broker and confluent-kafka: overwrites of 1,000 keys
//! with tombstones in small segments; after cleaning a consumer from the beginning reads
//! exactly the latest record of each key at its original offset, with every codec, from
//! about one segment per `segment.bytes` of what is left (segments merged), also after the
//! broker is killed at random points while it cleans; and keyless records are refused on
//! a compacted topic while the rest of the request is appended; the group coordinator's
//! `__consumer_offsets` is compacted by the same cleaner and its offsets survive.

use std::path::Path;
use std::time::{Duration, Instant};

use sluice_tests::BrokerProcess;

/// Small segments and a cleaner that looks often.
const FAST_CLEANER: [&str; 6] = [
    "--override",
    "sluice.internal.log.segment.bytes=65536",
    "--override",
    "log.cleaner.backoff.ms=100",
    "--override",
    "log.cleaner.dedupe.buffer.size=4194304",
];

/// Runs compaction.py; returns its stdout.
fn run(broker: &BrokerProcess, args: &[&str]) -> String {
    crate::interop::python_with_args("compaction.py", broker, args)
}

fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `sluice.internal.log.segment.bytes` of [`FAST_CLEANER`].
const SEGMENT_BYTES: u64 = 65536;

/// Number of `.log` files (segments) in a partition directory.
fn log_files(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
        .count() as u64
}

/// Bytes of `.log` files in a partition directory.
fn log_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

/// A pseudo-random number below `n` from the clock: where in a pass the kill lands.
fn random_below(n: u64) -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    (nanos.subsec_nanos() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) % n
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
        .collect()
}

#[test]
fn a_compacted_topic_keeps_the_latest_record_per_key_at_its_offset_with_every_codec() {
    let broker = BrokerProcess::start(&FAST_CLEANER);
    let state_dir = tempfile::tempdir().unwrap();
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    let mut produced = Vec::new();
    for codec in codecs {
        let topic = format!("compacted-{codec}");
        let state = state_dir.path().join(format!("{codec}.json"));
        let state = state.to_str().unwrap();
        // Tombstones stay 20 s after the pass that first keeps them.
        run(&broker, &["create", &topic, "20000"]);
        let out = run(&broker, &["produce", &topic, codec, state, "10"]);
        let bytes: u64 = out.trim().strip_prefix("produced_bytes ").unwrap().parse().unwrap();
        produced.push(bytes);
        run(&broker, &["seal", &topic, state]);
    }
    for (codec, bytes) in codecs.iter().zip(&produced) {
        let topic = format!("compacted-{codec}");
        let state = state_dir.path().join(format!("{codec}.json"));
        let state = state.to_str().unwrap();
        run(&broker, &["verify", &topic, state, "present", "60"]);
        let on_disk = log_bytes(&broker.data_dir.join(format!("{topic}-0")));
        // Ten rounds of overwrites: about a tenth is left (plus the marker's segment).
        assert!(on_disk * 4 < *bytes, "{codec}: {on_disk} bytes on disk of {bytes} produced");
    }
    assert!(broker.log().contains("cleaned log"), "{}", tail(&broker.log(), 40));
    // Past delete.retention.ms a pass removes the tombstones; it also merges the segments
    // that the first pass emptied (groups are sized by their segments before cleaning).
    for codec in codecs {
        let topic = format!("compacted-{codec}");
        let state = state_dir.path().join(format!("{codec}.json"));
        run(&broker, &["verify", &topic, state.to_str().unwrap(), "absent", "60"]);
        let dir = broker.data_dir.join(format!("{topic}-0"));
        assert!(leftovers(&dir).is_empty());
        // About one segment per segment.bytes of what is left, and the active one.
        let (segments, on_disk) = (log_files(&dir), log_bytes(&dir));
        eprintln!("{codec}: {segments} segments of {on_disk} bytes");
        assert!(
            segments <= on_disk.div_ceil(SEGMENT_BYTES) + 1,
            "{codec}: {segments} segments of {on_disk} bytes"
        );
    }
    let log = broker.log();
    for codec in codecs {
        let pass = format!("cleaned log topic=compacted-{codec} ");
        let merged = |l: &&str| l.contains(&pass) && !l.contains("segments_merged=0");
        assert!(log.lines().any(|l| merged(&l)), "{codec}: no pass merged segments");
    }
}

#[test]
fn a_broker_killed_while_it_cleans_loses_nothing_that_compaction_keeps() {
    // A throttled cleaner, so that kills land in the middle of passes.
    let mut args = FAST_CLEANER.to_vec();
    args.extend(["--override", "log.cleaner.io.max.bytes.per.second=300000"]);
    let mut broker = BrokerProcess::start(&args);
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("state.json");
    let state = state.to_str().unwrap();
    let topic = "compacted-killed";
    run(&broker, &["create", topic, "600000"]);
    let started = Instant::now();
    let (mut kills, mut mid_swap) = (0, 0);
    for round in 0..8 {
        run(&broker, &["produce", topic, if round % 2 == 0 { "lz4" } else { "none" }, state, "2"]);
        std::thread::sleep(Duration::from_millis(random_below(1500)));
        broker.kill();
        kills += 1;
        let left = leftovers(&broker.data_dir.join(format!("{topic}-0")));
        mid_swap += usize::from(!left.is_empty());
        eprintln!("kill {kills}: leftovers {left:?}");
        broker.restart();
    }
    run(&broker, &["seal", topic, state]);
    run(&broker, &["verify", topic, state, "present", "90"]);
    assert!(broker.log().contains("cleaned log"), "{}", tail(&broker.log(), 40));
    eprintln!("{kills} kills ({mid_swap} with a pass's files on disk) in {:?}", started.elapsed());
}

/// `__consumer_offsets` has no compaction of its own: the log cleaner shrinks it to about
/// the live offsets, drops a deleted group's tombstones past `delete.retention.ms`, and
/// confluent-kafka reads back exactly the last commits after a SIGKILL and a restart.
#[test]
fn the_log_cleaner_compacts_consumer_offsets_and_every_last_commit_survives_a_kill() {
    let mut broker = BrokerProcess::start(&FAST_CLEANER);
    let offsets = |b: &BrokerProcess, args: &[&str]| {
        crate::interop::python_with_args("offsets_compaction.py", b, args)
    };
    let rounds = "300";
    offsets(&broker, &["commit", "committed", rounds]);
    // 4 groups x 8 partitions x 300 rounds, and the deleted group's records.
    let census = |b: &BrokerProcess| -> (u64, u64, u64) {
        let out = offsets(b, &["census", "committed", rounds]);
        let n: Vec<u64> = out.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        (n[0], n[1], n[2])
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut records, mut tombstones, mut end) = census(&broker);
    while records * 5 > end || tombstones > 0 {
        assert!(
            Instant::now() < deadline,
            "{records} records ({tombstones} tombstones) left of {end}: {}",
            tail(&broker.log(), 30)
        );
        std::thread::sleep(Duration::from_millis(500));
        (records, tombstones, end) = census(&broker);
    }
    assert!(end >= 9600, "{end} records appended");
    assert!(broker.log().contains("cleaned log topic=__consumer_offsets"));
    eprintln!("{records} records left of {end}");
    broker.kill();
    broker.restart_on_same_port();
    offsets(&broker, &["check", "committed", rounds]);
    broker.stop();
    broker.restart_on_same_port();
    offsets(&broker, &["check", "committed", rounds]);
}

#[test]
fn confluent_kafka_gets_invalid_record_for_keyless_records_on_a_compacted_topic() {
    let broker = BrokerProcess::start(&[]);
    crate::interop::python_with_args("compacted_null_keys.py", &broker, &[]);
}

#[test]
fn kafka_python_gets_invalid_record_for_keyless_records_on_a_compacted_topic() {
    let broker = BrokerProcess::start(&[]);
    crate::interop::python_with_args("kafka_python_compacted_null_keys.py", &broker, &[]);
}

/// Kafka Connect's three compacted topics: workers overwrite configs, offsets and
/// statuses and delete connectors; after a SIGKILL and a restart, and again once the
/// cleaner has compacted them, a worker reading each topic to its end gets exactly the
/// latest value of every key.
#[test]
fn kafka_connects_compacted_topics_read_back_their_latest_values_after_a_kill_and_cleaning() {
    let mut broker = BrokerProcess::start(&FAST_CLEANER);
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("connect.json");
    let state = state.to_str().unwrap();
    let connect = |b: &BrokerProcess, args: &[&str]| {
        crate::interop::python_with_args("connect_pattern.py", b, args)
    };
    connect(&broker, &["create"]);
    connect(&broker, &["write", state, "15"]);
    broker.kill();
    broker.restart_on_same_port();
    let records = |out: &str| -> u64 {
        out.trim().strip_prefix("records_read ").and_then(|n| n.parse().ok()).expect(out)
    };
    let before = records(&connect(&broker, &["read", state]));
    // Past segment.ms, one more round rolls every partition's segment: the ones before
    // are sealed, and the cleaner takes them.
    std::thread::sleep(Duration::from_millis(1200));
    connect(&broker, &["write", state, "1"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !broker.log().contains("cleaned log topic=connect-configs") {
        assert!(
            Instant::now() < deadline,
            "connect-configs not cleaned: {}",
            tail(&broker.log(), 30)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = connect(&broker, &["read", state]);
    // 16 rounds of overwrites read back as about two (the last round and the one sealed).
    assert!(
        records(&out) * 3 < before,
        "{} records read after cleaning, {before} before",
        records(&out)
    );
    broker.stop();
    broker.restart_on_same_port();
    assert_eq!(connect(&broker, &["read", state]), out, "the same after a clean restart");
}

#[test]
fn keyless_records_get_kafkas_record_errors_and_the_other_partitions_are_appended() {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    use kafka_protocol::messages::{CreateTopicsRequest, ProduceRequest};
    use kafka_protocol::protocol::StrBytes;
    use sluice_protocol::messages::{Request, Response};
    use sluice_protocol::record::{BatchBuilder, Compression};

    use crate::client::{fetch_all, name, produce_request, produce_response};

    let broker = BrokerProcess::start(&[]);
    let mut c = sluice_tests::RawClient::connect(broker.addr);
    let mut create = CreateTopicsRequest::default();
    for (topic, policy) in [("keyed", "compact"), ("plain", "delete")] {
        let mut t = CreatableTopic::default();
        t.name = name(topic);
        t.num_partitions = 2;
        t.replication_factor = 1;
        let mut cfg = CreatableTopicConfig::default();
        cfg.name = StrBytes::from_static_str("cleanup.policy");
        cfg.value = Some(StrBytes::from_static_str(policy));
        t.configs = vec![cfg];
        create.topics.push(t);
    }
    create.timeout_ms = 10_000;
    let Response::CreateTopics(r) = c.call(5, Request::CreateTopics(create)) else { panic!() };
    assert!(r.topics.iter().all(|t| t.error_code == 0), "{r:?}");
    // Records 1 and 3 of five have no key, in an lz4 batch.
    let mut b = BatchBuilder::new(Compression::Lz4);
    for i in 0..5 {
        let key = format!("k{i}");
        let key = (i % 2 == 0).then_some(key.as_bytes());
        b.append(1_700_000_000_000, key, Some(b"v"), &[]).unwrap();
    }
    let mixed = bytes::Bytes::from(b.build().unwrap());
    let keyed = crate::client::batch("ok", 3, Compression::None);
    let mut req: ProduceRequest = produce_request("keyed", 0, mixed.clone(), -1);
    let more = produce_request("keyed", 1, keyed.clone(), -1).topic_data.remove(0);
    req.topic_data[0].partition_data.extend(more.partition_data);
    req.topic_data.extend(produce_request("plain", 0, mixed, -1).topic_data);
    let r = produce_response(&mut c, 9, req);
    let refused = &r.responses[0].partition_responses[0];
    assert_eq!(refused.error_code, 87, "INVALID_RECORD: {refused:?}");
    assert_eq!(refused.base_offset, -1);
    let indexes: Vec<i32> = refused.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(indexes, vec![1, 3]);
    let message = refused.record_errors[0].batch_index_error_message.as_deref().unwrap();
    assert_eq!(
        message,
        "Compacted topic cannot accept message without key in topic partition keyed-0."
    );
    let summary = refused.error_message.as_deref().unwrap();
    assert!(summary.contains("2 record errors"), "{summary}");
    // The rest of the request was appended.
    assert_eq!(r.responses[0].partition_responses[1].error_code, 0);
    assert_eq!(r.responses[1].partition_responses[0].error_code, 0);
    assert_eq!(fetch_all(&mut c, "plain").len(), 5);
    assert!(fetch_all(&mut c, "keyed").is_empty(), "nothing of the refused set is stored");
}
