//! The hostile-client benchmark: what each request shape built to cost the broker the most
//! actually costs it, and what a well-behaved client sees meanwhile, in one run against
//! the release `sluiced`.
//!
//! ```text
//! cargo build --release --bin sluiced
//! cargo run --release -p sluice-benches --bin hostile_perf
//! ```
//!
//! Each shape is sent again and again for five seconds. For each it prints the frame size,
//! the broker's peak resident set growth while it is answered (from /proc, the peak reset
//! before each round), the amplification
//! (growth / frame) against the target of 4 x frame + 64 MiB, and a probe client's
//! round-trip p50 / p99 / p99.9 (ApiVersions then Metadata, on its own connection) during
//! the attack, as a ratio to the same probe's p99 with no load and to its p99 beside a
//! benign client that only keeps the broker busy (pipelined ApiVersions), both measured in
//! the same run: on two cores any load raises a local probe's p99, hostile or not.
//! `SLUICE_HOSTILE_ATTACKER_NICE=19` runs the attacking client's threads at low priority,
//! as if it were on another host (on two cores its own CPU otherwise delays the probe).

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiVersionsRequest, CreateTopicsRequest, FetchRequest, GroupId, IncrementalAlterConfigsRequest,
    JoinGroupRequest, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest, OffsetFetchRequest,
    SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::{Request, Response};
use sluice_tests::hostile::{allowed_growth, encode_frame, Latencies, Probe};
use sluice_tests::{BrokerProcess, RawClient};

const MIB: f64 = (1 << 20) as f64;

/// How long the probe runs with no attack, for the baseline.
const QUIET: Duration = Duration::from_secs(5);

/// How long each shape is sent, again and again.
const ATTACK: Duration = Duration::from_secs(5);

fn main() {
    if std::env::var_os("SLUICED").is_none() {
        // target/release/hostile_perf -> target/release/sluiced
        let exe = std::env::current_exe().expect("own path");
        std::env::set_var("SLUICED", exe.with_file_name("sluiced"));
    }
    let mut b = BrokerProcess::start(&["--override", "group.initial.rebalance.delay.ms=0"]);
    let mut c = RawClient::connect(b.addr);
    c.stream.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    setup(&mut c);

    let quiet = probe_alone(&b);
    println!(
        "probe alone: p50 {} p99 {} p99.9 {}",
        ms(quiet.quantile(0.5)),
        ms(quiet.quantile(0.99)),
        ms(quiet.quantile(0.999))
    );
    println!(
        "{:<44} {:>9} {:>10} {:>7} {:>6}  {:>24}  p99 / quiet, / benign",
        "shape", "frame MiB", "peak +MiB", "growth", "target", "probe p50 / p99 / p99.9"
    );
    let mut worst = 0.0f64;
    let mut worst_p99 = 0.0f64;
    let mut benign_p99 = None;
    for shape in shapes() {
        let frame = encode_frame(shape.version, &shape.request);
        let probe = Probe::start(b.addr);
        // Again and again for a few seconds, so that the probe's p99 is a percentile
        // rather than its one slowest round trip.
        let started = Instant::now();
        let mut growth = 0;
        while started.elapsed() < ATTACK {
            growth = growth.max(pipelined(&mut b, &frame, shape.times, shape.connections));
        }
        let latencies = probe.finish();
        let p99 = latencies.quantile(0.99);
        let amplification = growth as f64 / frame.len() as f64;
        let ok = growth <= allowed_growth(frame.len());
        let benign = *benign_p99.get_or_insert(p99);
        if !shape.benign {
            worst = worst.max(amplification);
            worst_p99 = worst_p99.max(ratio(p99, benign));
        }
        println!(
            "{:<44} {:>9.2} {:>10.1} {:>6.1}x {:>6}  {:>7} / {:>6} / {:>6}  {:.2}, {:.2}",
            shape.name,
            frame.len() as f64 / MIB,
            growth as f64 / MIB,
            amplification,
            if ok { "met" } else { "MISSED" },
            ms(latencies.quantile(0.5)),
            ms(p99),
            ms(latencies.quantile(0.999)),
            ratio(p99, quiet.quantile(0.99)),
            ratio(p99, benign)
        );
    }
    println!(
        "hostile shapes: largest growth / frame {worst:.1}x; largest probe p99 / benign p99 \
         {worst_p99:.2}"
    );
}

/// One request shape: the request, how often it is sent and over how many connections.
struct Shape {
    /// The first shape is benign load, the baseline for the probe under load.
    benign: bool,
    name: &'static str,
    version: i16,
    request: Request,
    times: usize,
    connections: usize,
}

fn shapes() -> Vec<Shape> {
    let shape = |name, version, request, times| Shape {
        benign: false,
        name,
        version,
        request,
        times,
        connections: 1,
    };
    vec![
        // Not hostile: a client that merely keeps the broker busy, for comparison. On two
        // cores any load raises the probe's p99; the hostile shapes should raise it no
        // more than this does.
        Shape {
            benign: true,
            name: "(benign) ApiVersions x 2,000 pipelined",
            version: 3,
            request: Request::ApiVersions(ApiVersionsRequest::default()),
            times: 2000,
            connections: 1,
        },
        shape(
            "OffsetFetch v6, 32 KiB name x 32,768 indexes",
            6,
            Request::OffsetFetch(offset_fetch_v6(&"n".repeat(32 << 10), 32_768)),
            4,
        ),
        shape(
            "OffsetFetch v6, 250,000 indexes",
            6,
            Request::OffsetFetch(offset_fetch_v6("committed", 250_000)),
            2,
        ),
        shape(
            "OffsetFetch v8, all of one group's x 100,000",
            8,
            Request::OffsetFetch(offset_fetch_v8_repeated("committers", 100_000)),
            2,
        ),
        shape(
            "DescribeGroups, a 64 KiB member x 200,000",
            5,
            Request::DescribeGroups(describe_groups_repeated("stable", 200_000)),
            2,
        ),
        shape(
            "Metadata, a 500-partition topic x 250,000",
            12,
            Request::Metadata(metadata_repeated("wide", 250_000)),
            2,
        ),
        shape(
            "ListOffsets, one partition x 200,000",
            7,
            Request::ListOffsets(list_offsets_repeated("wide", 200_000)),
            2,
        ),
        shape(
            "IncrementalAlterConfigs APPEND, 8 MB list",
            1,
            Request::IncrementalAlterConfigs(append_config("wide", 8 << 20)),
            2,
        ),
        Shape {
            benign: false,
            name: "Fetch long polls, 4 MiB each, 60 pipelined",
            version: 12,
            request: Request::Fetch(padded_fetch("idle", 4 << 20)),
            times: 60,
            connections: 1,
        },
    ]
}

/// Topics and groups the shapes name: `wide` (500 partitions), `idle` (empty),
/// `committed` and `committers` with committed offsets, `stable` a stable group whose
/// member has 64 KiB of metadata and assignment.
fn setup(c: &mut RawClient) {
    for (topic, partitions) in [("wide", 500), ("idle", 1), ("committed", 2000)] {
        let mut r = CreateTopicsRequest::default();
        let mut t = kafka_protocol::messages::create_topics_request::CreatableTopic::default();
        t.name = name(topic);
        t.num_partitions = partitions;
        t.replication_factor = 1;
        r.topics = vec![t];
        let Response::CreateTopics(r) = c.call(7, Request::CreateTopics(r)) else {
            panic!("create topics")
        };
        assert_eq!(r.topics[0].error_code, 0, "create {topic}");
    }
    for group in ["g", "committers"] {
        let mut r = OffsetCommitRequest::default();
        r.group_id = GroupId(StrBytes::from_static_str(group));
        r.generation_id_or_member_epoch = -1;
        let mut t = OffsetCommitRequestTopic::default();
        t.name = name("committed");
        t.partitions = (0..2000)
            .map(|i| {
                let mut p = OffsetCommitRequestPartition::default();
                p.partition_index = i;
                p.committed_offset = 0;
                p.committed_metadata = Some(StrBytes::from_string("m".repeat(1024)));
                p
            })
            .collect();
        r.topics = vec![t];
        let Response::OffsetCommit(r) = c.call(8, Request::OffsetCommit(r)) else {
            panic!("offset commit")
        };
        assert!(r.topics[0].partitions.iter().all(|p| p.error_code == 0), "commit {group}");
    }
    let mut join = JoinGroupRequest::default();
    join.group_id = GroupId(StrBytes::from_static_str("stable"));
    join.session_timeout_ms = 30_000;
    join.rebalance_timeout_ms = 30_000;
    join.group_instance_id = Some(StrBytes::from_static_str("bench"));
    join.protocol_type = StrBytes::from_static_str("consumer");
    let mut protocol = JoinGroupRequestProtocol::default();
    protocol.name = StrBytes::from_static_str("range");
    protocol.metadata = Bytes::from(vec![7u8; 64 << 10]);
    join.protocols = vec![protocol];
    let Response::JoinGroup(j) = c.call(5, Request::JoinGroup(join)) else { panic!("join") };
    assert_eq!(j.error_code, 0, "join");
    let mut sync = SyncGroupRequest::default();
    sync.group_id = GroupId(StrBytes::from_static_str("stable"));
    sync.generation_id = j.generation_id;
    sync.member_id = j.member_id.clone();
    sync.group_instance_id = Some(StrBytes::from_static_str("bench"));
    let mut a = SyncGroupRequestAssignment::default();
    a.member_id = j.member_id;
    a.assignment = Bytes::from(vec![9u8; 64 << 10]);
    sync.assignments = vec![a];
    let Response::SyncGroup(s) = c.call(3, Request::SyncGroup(sync)) else { panic!("sync") };
    assert_eq!(s.error_code, 0, "sync");
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

fn offset_fetch_v6(topic: &str, indexes: i32) -> OffsetFetchRequest {
    let mut r = OffsetFetchRequest::default();
    r.group_id = GroupId(StrBytes::from_static_str("g"));
    let mut t = OffsetFetchRequestTopic::default();
    t.name = name(topic);
    t.partition_indexes = (0..indexes).collect();
    r.topics = Some(vec![t]);
    r
}

fn offset_fetch_v8_repeated(group: &str, times: usize) -> OffsetFetchRequest {
    // Null topics: every committed offset of the group (2,000 with 1 KiB of metadata).
    let mut g = OffsetFetchRequestGroup::default();
    g.group_id = GroupId(StrBytes::from_string(group.to_owned()));
    g.topics = None;
    let mut r = OffsetFetchRequest::default();
    r.groups = vec![g; times];
    r
}

fn describe_groups_repeated(group: &str, times: usize) -> DescribeGroupsRequest {
    let mut r = DescribeGroupsRequest::default();
    r.groups = vec![GroupId(StrBytes::from_string(group.to_owned())); times];
    r
}

fn metadata_repeated(topic: &str, times: usize) -> MetadataRequest {
    let mut t = MetadataRequestTopic::default();
    t.name = Some(name(topic));
    let mut m = MetadataRequest::default();
    m.topics = Some(vec![t; times]);
    m
}

fn list_offsets_repeated(topic: &str, times: i64) -> ListOffsetsRequest {
    let mut t = ListOffsetsTopic::default();
    t.name = name(topic);
    t.partitions = (0..times)
        .map(|i| {
            let mut p = ListOffsetsPartition::default();
            p.timestamp = 1_700_000_000_000 + i;
            p
        })
        .collect();
    let mut r = ListOffsetsRequest::default();
    r.topics = vec![t];
    r
}

fn append_config(topic: &str, bytes: usize) -> IncrementalAlterConfigsRequest {
    let mut c = AlterableConfig::default();
    c.name = StrBytes::from_static_str("cleanup.policy");
    c.config_operation = 2;
    let value: Vec<&str> = std::iter::repeat_n("delete", bytes / 7).collect();
    c.value = Some(StrBytes::from_string(value.join(",")));
    let mut resource = AlterConfigsResource::default();
    resource.resource_type = 2;
    resource.resource_name = StrBytes::from_string(topic.to_owned());
    resource.configs = vec![c];
    let mut r = IncrementalAlterConfigsRequest::default();
    r.resources = vec![resource];
    r.validate_only = true;
    r
}

fn padded_fetch(topic: &str, padding: usize) -> FetchRequest {
    let mut p = FetchPartition::default();
    p.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic = name(topic);
    t.partitions = vec![p];
    let mut f = FetchRequest::default();
    f.max_wait_ms = 300;
    f.min_bytes = 1;
    f.max_bytes = 50 << 20;
    f.topics = vec![t];
    f.rack_id = StrBytes::from_string("r".repeat(padding));
    f
}

/// Sends `frame` `times` times on each of `connections` connections, a writer thread and
/// a reader per connection; returns the broker's peak resident set growth.
fn pipelined(b: &mut BrokerProcess, frame: &[u8], times: usize, connections: usize) -> u64 {
    b.reset_peak_rss();
    let before = b.rss_bytes();
    std::thread::scope(|s| {
        for _ in 0..connections {
            s.spawn(|| {
                attacker_priority();
                let mut c = RawClient::connect(b.addr);
                c.stream.set_read_timeout(Some(Duration::from_secs(600))).unwrap();
                let mut writer = c.stream.try_clone().unwrap();
                let sent = s.spawn(move || {
                    attacker_priority();
                    for _ in 0..times {
                        writer.write_all(frame).unwrap();
                    }
                });
                for i in 0..times {
                    assert!(c.read_frame().is_some(), "response {i} of {times}");
                }
                sent.join().unwrap();
            });
        }
    });
    assert!(b.is_running(), "the broker died: {}", b.log());
    b.peak_rss_bytes().saturating_sub(before)
}

/// With `SLUICE_HOSTILE_ATTACKER_NICE=N`, the calling attacker thread runs at nice N: on
/// a machine of two cores the attacking client's own CPU competes with the probe client,
/// which it would not from another host. The probe and the broker keep their priority.
fn attacker_priority() {
    let Some(nice) = std::env::var("SLUICE_HOSTILE_ATTACKER_NICE").ok() else { return };
    // The thread's own id, as /proc/thread-self names it (.../task/<tid>).
    let Ok(link) = std::fs::read_link("/proc/thread-self") else { return };
    let Some(tid) = link.file_name().and_then(|t| t.to_str()).map(str::to_owned) else { return };
    let _ = std::process::Command::new("renice")
        .args(["-n", &nice, "-p", &tid])
        .stdout(std::process::Stdio::null())
        .status();
}

fn probe_alone(b: &BrokerProcess) -> Latencies {
    let probe = Probe::start(b.addr);
    let until = Instant::now() + QUIET;
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    probe.finish()
}

fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1e3)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}
