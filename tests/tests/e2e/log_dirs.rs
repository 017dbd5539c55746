//! DescribeLogDirs against the real broker: the raw client at every version, kafka-python's
//! `describe_log_dirs` and the Java AdminClient's `describeLogDirs`. The sizes each reports
//! must be the segment files' sizes on disk (after a clean stop trims the active segment to
//! its data) and must grow by exactly what is produced.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};
use sluice_protocol::api_key::{support, ApiKey};
use sluice_protocol::messages::{Request, Response};
use sluice_protocol::record::Compression;
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::{batch, create_request, name, produce_request, produce_response};

/// A small segment size, so that partitions hold several segments.
const SEGMENT_BYTES: &str = "sluice.internal.log.segment.bytes=2048";

fn describe(
    c: &mut RawClient,
    version: i16,
    topics: Option<&[(&str, &[i32])]>,
) -> DescribeLogDirsResponse {
    let topics = topics.map(|topics| {
        topics
            .iter()
            .map(|(topic, partitions)| {
                DescribableLogDirTopic::default()
                    .with_topic(name(topic))
                    .with_partitions(partitions.to_vec())
            })
            .collect()
    });
    let request = Request::DescribeLogDirs(DescribeLogDirsRequest::default().with_topics(topics));
    let Response::DescribeLogDirs(r) = c.call(version, request) else {
        panic!("describe log dirs")
    };
    r
}

/// (topic, partition) -> size of the answer's one log dir, which must be `data_dir`.
fn sizes(r: &DescribeLogDirsResponse, data_dir: &Path) -> BTreeMap<(String, i32), i64> {
    assert_eq!(r.error_code, 0);
    assert_eq!(r.results.len(), 1, "one log dir: {r:?}");
    let dir = &r.results[0];
    assert_eq!(dir.error_code, 0);
    assert_eq!(dir.log_dir.as_str(), data_dir.display().to_string());
    let mut out = BTreeMap::new();
    for t in &dir.topics {
        for p in &t.partitions {
            assert_eq!((p.offset_lag, p.is_future_key), (0, false), "{p:?}");
            let fresh = out.insert((t.name.0.to_string(), p.partition_index), p.partition_size);
            assert!(fresh.is_none(), "{}-{} answered twice", t.name.0.as_str(), p.partition_index);
        }
    }
    out
}

/// Sum of the `.log` segment files of `topic-partition` and how many there are.
fn on_disk(data_dir: &Path, topic: &str, partition: i32) -> (i64, usize) {
    let dir = data_dir.join(format!("{topic}-{partition}"));
    let logs: Vec<u64> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| p.metadata().unwrap().len())
        .collect();
    (logs.iter().sum::<u64>() as i64, logs.len())
}

/// Creates `topic` of three partitions and produces `batches[p]` batches of ten records to
/// partition p; returns the bytes produced per partition.
fn fill(c: &mut RawClient, topic: &str, batches: [usize; 3]) -> [i64; 3] {
    let Response::CreateTopics(r) = c.call(7, Request::CreateTopics(create_request(topic, 3)))
    else {
        panic!("create topics")
    };
    assert_eq!(r.topics[0].error_code, 0, "{r:?}");
    let mut bytes = [0; 3];
    for (p, &n) in batches.iter().enumerate() {
        for i in 0..n {
            let records = batch(&format!("{topic}-{p}-{i}"), 10, Compression::None);
            bytes[p] += records.len() as i64;
            let req = produce_request(topic, p as i32, records, -1);
            let r = produce_response(c, 9, req);
            assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
        }
    }
    bytes
}

#[test]
fn sizes_are_the_segment_files_and_grow_with_what_is_produced() {
    let mut broker = BrokerProcess::start(&["--override", SEGMENT_BYTES]);
    let data_dir = broker.data_dir.clone();
    let mut c = RawClient::connect(broker.addr);
    let produced = fill(&mut c, "sized", [30, 4, 0]);
    let range = support(ApiKey::DescribeLogDirs).unwrap().advertised;
    assert_eq!((range.min, range.max), (0, 4));
    let asked: &[(&str, &[i32])] =
        &[("sized", &[2, 0, 9, 0]), ("no-such-topic", &[0]), ("sized", &[1])];
    let expected: BTreeMap<(String, i32), i64> =
        (0..3).map(|p| (("sized".to_string(), p), produced[p as usize])).collect();
    for version in range.min..=range.max {
        let r = describe(&mut c, version, Some(asked));
        assert_eq!(sizes(&r, &data_dir), expected, "v{version}: every partition once, 9 absent");
        let topics: Vec<&str> = r.results[0].topics.iter().map(|t| t.name.0.as_str()).collect();
        assert_eq!(topics, ["sized"], "v{version}: one entry for a topic named twice");
        let dir = &r.results[0];
        if version >= 4 {
            assert!(dir.total_bytes > 0 && (0..=dir.total_bytes).contains(&dir.usable_bytes));
        } else {
            assert_eq!((dir.total_bytes, dir.usable_bytes), (-1, -1), "v{version}");
        }
    }
    let all = sizes(&describe(&mut c, 4, None), &data_dir);
    for (tp, size) in &expected {
        assert_eq!(all.get(tp), Some(size), "null topics: every partition, {tp:?} too");
    }

    // Growth by exactly what is appended.
    let more = batch("more", 50, Compression::None);
    let r = produce_response(&mut c, 9, produce_request("sized", 1, more.clone(), -1));
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    let grown = sizes(&describe(&mut c, 4, Some(&[("sized", &[1])])), &data_dir);
    assert_eq!(grown[&("sized".to_string(), 1)], produced[1] + more.len() as i64);

    // What a clean stop leaves on disk is what was reported; a restart reports it again.
    let reported = sizes(&describe(&mut c, 2, Some(&[("sized", &[0, 1, 2])])), &data_dir);
    drop(c);
    broker.stop();
    let (p0, segments) = on_disk(&data_dir, "sized", 0);
    assert!(segments > 3, "partition 0 rolled: {segments} segments");
    let files: BTreeMap<(String, i32), i64> =
        (0..3).map(|p| (("sized".to_string(), p), on_disk(&data_dir, "sized", p).0)).collect();
    assert_eq!(files, reported);
    assert_eq!(p0, produced[0]);
    broker.restart();
    let mut c = RawClient::connect(broker.addr);
    let again = sizes(&describe(&mut c, 4, Some(&[("sized", &[0, 1, 2])])), &data_dir);
    assert_eq!(again, reported, "after a restart");
}

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop")
}

/// (path, total bytes, usable bytes) of a `dir` line.
type Dir = (String, i64, i64);

/// Sizes of the `named` and `all` lines, by (kind, topic, partition).
type Sizes = BTreeMap<(String, String, i32), i64>;

/// The `dir`, `named` and `all` lines a client program printed.
fn parse(out: &str) -> (Dir, Sizes) {
    let mut dir = None;
    let mut sizes = BTreeMap::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        match f[..] {
            ["dir", path, total, usable] => {
                dir = Some((path.to_string(), total.parse().unwrap(), usable.parse().unwrap()));
            }
            [kind @ ("named" | "all"), topic, partition, size] => {
                let key = (kind.to_string(), topic.to_string(), partition.parse().unwrap());
                sizes.insert(key, size.parse().unwrap());
            }
            _ => {}
        }
    }
    (dir.unwrap_or_else(|| panic!("no dir line in {out:?}")), sizes)
}

/// Runs a client program; its stdout, or the test fails with its output.
fn run(mut command: Command, what: &str, broker: &BrokerProcess) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}\nbroker log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        broker.log()
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn kafka_python_and_the_java_admin_report_the_segment_files_sizes() {
    let mut broker = BrokerProcess::start(&["--override", SEGMENT_BYTES]);
    let data_dir = broker.data_dir.clone();
    let mut c = RawClient::connect(broker.addr);
    fill(&mut c, "dirs", [25, 3, 0]);
    drop(c);

    let mut python = Command::new("python3");
    python.arg(interop_dir().join("kafka_python_log_dirs.py")).arg(broker.bootstrap()).arg("dirs");
    let python = run(python, "kafka_python_log_dirs.py", &broker);
    let mut java = crate::interop::java("JavaLogDirs.java", &broker);
    java.arg("dirs");
    let java = run(java, "JavaLogDirs.java", &broker);
    assert!(java.contains("java log dirs OK"), "{java}");

    broker.stop();
    let path = data_dir.display().to_string();
    for (client, out) in [("kafka-python", &python), ("java", &java)] {
        let ((dir, total, usable), sizes) = parse(out);
        assert_eq!(dir, path, "{client}");
        assert!(0 < usable && usable <= total, "{client}: {total} {usable}");
        for p in 0..3 {
            let (bytes, segments) = on_disk(&data_dir, "dirs", p);
            assert!(p != 0 || segments > 3, "partition 0 rolled: {segments}");
            let all = sizes.get(&("all".to_string(), "dirs".to_string(), p));
            assert_eq!(all, Some(&bytes), "{client}: all topics, partition {p}");
            if client == "kafka-python" {
                let named = sizes.get(&("named".to_string(), "dirs".to_string(), p));
                assert_eq!(named, Some(&bytes), "{client}: named, partition {p}");
            }
        }
    }
}
