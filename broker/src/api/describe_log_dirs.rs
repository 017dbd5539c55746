//! DescribeLogDirs (KIP-113): the broker's log directories and the size of each partition
//! in them, what `kafka-log-dirs.sh` and the admin clients' `describeLogDirs` show.
//!
//! - One log directory: the data directory (`log.dirs`), by its absolute path, as Kafka
//!   names a directory. v4 (KIP-827) adds TotalBytes and UsableBytes, from `statvfs(3)`
//!   as Java's `FileStore` reports them; a directory that cannot be looked at is reported
//!   with KAFKA_STORAGE_ERROR and no topics, as Kafka reports an offline directory.
//! - Per partition: its size, the sum of its segments' sizes (Kafka's `log.size`: the
//!   data, not the blocks reserved ahead of it); offset lag 0 and is_future false, since a
//!   single node's log is its own leader and no replica moves between directories.
//! - `topics` null means every partition, internal topics too. Otherwise the partitions
//!   named that the broker has: a topic or partition it does not have is left out, as
//!   Kafka leaves out what it has no log of. A topic named twice is answered as one, a
//!   partition named twice once, in the order first named; a topic with nothing to report
//!   is left out too (Kafka's answer lists only topics with partitions).
//! - There is no authorizer, so every client may describe the cluster: the top-level error
//!   (v3+) is always NONE.
//!
//! The work is linear in what is asked (a hash set of the (topic, partition) pairs seen)
//! or, for null topics, in the broker's partitions; dispatch runs the null case on the
//! heavy-request pool, since its answer grows with the broker rather than the request.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;
use crate::partition::Partition;
use crate::storage::disk_space;
use crate::topics::Topic;

/// Answers DescribeLogDirs. Runs on a blocking thread (statvfs, and every partition when
/// all are asked for).
pub fn handle(
    broker: &Broker,
    request: DescribeLogDirsRequest,
    version: i16,
) -> DescribeLogDirsResponse {
    let data_dir = &broker.config.data_dir;
    let path = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.clone());
    let mut dir = DescribeLogDirsResult::default();
    dir.log_dir = StrBytes::from_string(path.display().to_string());
    match disk_space(Path::new(data_dir)) {
        Ok(space) => {
            if version >= 4 {
                dir.total_bytes = clamp(space.total);
                dir.usable_bytes = clamp(space.usable);
            }
            dir.topics = match request.topics {
                None => broker.topics.list().iter().filter_map(|t| all_partitions(t)).collect(),
                Some(topics) => named_partitions(broker, topics),
            };
        }
        Err(e) => {
            tracing::warn!(dir = %path.display(), error = %e, "cannot describe the log directory");
            dir.error_code = ErrorCode::KAFKA_STORAGE_ERROR.code();
        }
    }
    let mut response = DescribeLogDirsResponse::default();
    response.results = vec![dir];
    response
}

/// A byte count as Kafka's i64 fields carry it (Kafka reports `Long.MAX_VALUE` for a
/// file system too large for a long, JDK-8162520).
fn clamp(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

fn all_partitions(topic: &Topic) -> Option<DescribeLogDirsTopic> {
    reported(&topic.name, topic.partitions.iter().filter_map(|p| described(p)).collect())
}

/// The named partitions the broker has, grouped by topic in the order first named.
fn named_partitions(
    broker: &Broker,
    topics: Vec<kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic>,
) -> Vec<DescribeLogDirsTopic> {
    // Topic name -> its place in `out` (None: the broker has no such topic); names are
    // views of the request frame, not copies.
    let mut place: HashMap<StrBytes, Option<usize>> = HashMap::new();
    let mut seen: HashSet<(usize, i32)> = HashSet::new();
    let mut out: Vec<(std::sync::Arc<Topic>, Vec<DescribeLogDirsPartition>)> = Vec::new();
    for t in topics {
        let name = t.topic.0;
        let slot = *place.entry(name.clone()).or_insert_with(|| {
            broker.topics.get(name.as_str()).map(|topic| {
                out.push((topic, Vec::new()));
                out.len() - 1
            })
        });
        let Some(i) = slot else { continue };
        for index in t.partitions {
            if !seen.insert((i, index)) {
                continue;
            }
            let (topic, partitions) = &mut out[i];
            if let Some(p) = topic.partition(index).and_then(|p| described(p)) {
                partitions.push(p);
            }
        }
    }
    out.into_iter().filter_map(|(topic, partitions)| reported(&topic.name, partitions)).collect()
}

fn reported(name: &str, partitions: Vec<DescribeLogDirsPartition>) -> Option<DescribeLogDirsTopic> {
    if partitions.is_empty() {
        return None;
    }
    let mut t = DescribeLogDirsTopic::default();
    t.name = TopicName(StrBytes::from_string(name.to_owned()));
    t.partitions = partitions;
    Some(t)
}

/// The partition's entry; none for one whose log cannot be opened (as Kafka leaves out a
/// partition that is offline).
fn described(partition: &Partition) -> Option<DescribeLogDirsPartition> {
    let log = match partition.log() {
        Ok(log) => log,
        Err(e) => {
            tracing::warn!(partition = %partition.dir().display(), error = %e, "cannot open the partition to describe it");
            return None;
        }
    };
    let mut p = DescribeLogDirsPartition::default();
    p.partition_index = partition.index();
    p.partition_size = clamp(log.size_bytes());
    p.offset_lag = 0;
    p.is_future_key = false;
    Some(p)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use bytes::BytesMut;
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    use sluice_protocol::api_key::{support, ApiKey};
    use sluice_protocol::messages::Response;
    use sluice_protocol::record::{BatchBuilder, Compression};

    use super::*;
    use crate::config::Config;

    fn broker_with(segment_bytes: Option<u64>) -> (tempfile::TempDir, Arc<Broker>) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().join("data"),
            internal_segment_bytes: segment_bytes,
            ..Config::default()
        };
        (dir, Broker::open(config).unwrap().0)
    }

    fn broker() -> (tempfile::TempDir, Arc<Broker>) {
        broker_with(None)
    }

    /// Appends `records` one-record batches to partition `p` of `topic`; returns their bytes.
    fn append(broker: &Broker, topic: &str, p: usize, records: usize) -> u64 {
        let topic = broker.topics.get(topic).unwrap();
        let mut bytes = 0;
        for i in 0..records {
            let mut b = BatchBuilder::new(Compression::None);
            b.append(1_700_000_000_000 + i as i64, None, Some(b"value"), &[]).unwrap();
            let batch = b.build().unwrap();
            bytes += batch.len() as u64;
            topic.partitions[p].append_blocking(&batch).unwrap();
        }
        bytes
    }

    fn ask(topics: &[(&str, &[i32])]) -> DescribeLogDirsRequest {
        let topics = topics
            .iter()
            .map(|(name, partitions)| {
                DescribableLogDirTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(name.to_string())))
                    .with_partitions(partitions.to_vec())
            })
            .collect();
        DescribeLogDirsRequest::default().with_topics(Some(topics))
    }

    /// (topic, partition, size) of the answer's one log dir, in its order.
    fn sizes(r: &DescribeLogDirsResponse) -> Vec<(String, i32, i64)> {
        assert_eq!(r.results.len(), 1, "one log dir");
        r.results[0]
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    assert_eq!((p.offset_lag, p.is_future_key), (0, false));
                    (t.name.0.to_string(), p.partition_index, p.partition_size)
                })
            })
            .collect()
    }

    #[test]
    fn sizes_are_the_bytes_appended_and_unknown_names_are_left_out() {
        let (dir, broker) = broker();
        broker.topics.create("a", 3, 1, BTreeMap::new(), false).unwrap();
        broker.topics.create("b", 1, 1, BTreeMap::new(), false).unwrap();
        let a0 = append(&broker, "a", 0, 5);
        let a2 = append(&broker, "a", 2, 2);
        let r = handle(&broker, ask(&[("a", &[2, 0, 7, 2]), ("nope", &[0]), ("a", &[0, 1])]), 4);
        assert_eq!(
            sizes(&r),
            [("a".into(), 2, a2 as i64), ("a".into(), 0, a0 as i64), ("a".into(), 1, 0)],
            "one topic entry, each partition once, in the order first named"
        );
        let logs = &r.results[0];
        assert_eq!(logs.error_code, 0);
        assert_eq!(logs.log_dir.as_str(), dir.path().join("data").display().to_string());
        assert!(logs.total_bytes > 0 && (0..=logs.total_bytes).contains(&logs.usable_bytes));
        assert_eq!(r.error_code, 0);
        let none = handle(&broker, ask(&[("nope", &[0]), ("b", &[5]), ("b", &[])]), 4);
        assert!(none.results[0].topics.is_empty(), "topics with nothing to report are left out");

        let all = handle(&broker, DescribeLogDirsRequest::default().with_topics(None), 3);
        assert_eq!(
            sizes(&all),
            [
                ("a".into(), 0, a0 as i64),
                ("a".into(), 1, 0),
                ("a".into(), 2, a2 as i64),
                ("b".into(), 0, 0)
            ]
        );
        assert_eq!(all.results[0].total_bytes, -1, "v3 has no TotalBytes");
    }

    #[test]
    fn sizes_count_every_segment() {
        let (_dir, broker) = broker_with(Some(1024));
        broker.topics.create("rolled", 1, 1, BTreeMap::new(), false).unwrap();
        let appended = append(&broker, "rolled", 0, 40);
        let log = Arc::clone(broker.topics.get("rolled").unwrap().partitions[0].log().unwrap());
        assert!(log.segment_base_offsets().len() > 2, "{:?}", log.segment_base_offsets());
        let r = handle(&broker, ask(&[("rolled", &[0])]), 0);
        assert_eq!(sizes(&r), [("rolled".into(), 0, appended as i64)]);
    }

    #[test]
    fn a_missing_data_dir_is_a_storage_error() {
        let (dir, broker) = broker();
        std::fs::remove_dir_all(dir.path().join("data")).unwrap();
        let r = handle(&broker, DescribeLogDirsRequest::default().with_topics(None), 4);
        assert_eq!(r.results[0].error_code, ErrorCode::KAFKA_STORAGE_ERROR.code());
        assert!(r.results[0].topics.is_empty());
    }

    #[test]
    fn the_answer_encodes_in_every_advertised_version() {
        let (_dir, broker) = broker();
        broker.topics.create("t", 2, 1, BTreeMap::new(), false).unwrap();
        append(&broker, "t", 1, 3);
        let range = support(ApiKey::DescribeLogDirs).unwrap().advertised;
        for version in range.min..=range.max {
            let r = handle(&broker, ask(&[("t", &[0, 1])]), version);
            let response = Response::DescribeLogDirs(r);
            let mut out = BytesMut::new();
            response.encode(version, &mut out).unwrap();
            let back = Response::decode(ApiKey::DescribeLogDirs, version, out.freeze()).unwrap();
            assert_eq!(back, response, "v{version}");
        }
    }
}
