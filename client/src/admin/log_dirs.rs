//! Brokers' log directories (DescribeLogDirs, KIP-113): each directory's path, its disk
//! space (v4, KIP-827), and the size of every partition replica stored in it.
//!
//! Each broker is asked about its own directories, all brokers' requests sent before any
//! answer is awaited; a broker that does not serve DescribeLogDirs is that broker's
//! [`ClientError::UnsupportedVersion`](crate::ClientError::UnsupportedVersion), so a caller can show sizes as unknown there.

use std::collections::BTreeMap;

use sluice_protocol::api_key::ApiKey;
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use sluice_protocol::kafka_protocol::messages::DescribeLogDirsRequest;
use sluice_protocol::messages::{Request, Response};

use super::routing::{transient, Route};
use super::Admin;
use crate::cluster::unexpected;
use crate::consumer::offsets;
use crate::error::{check, Result};
use crate::metadata::TopicPartition;

/// One log directory of a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirDescription {
    /// Its absolute path on the broker.
    pub path: String,
    /// Why the broker cannot describe it (KAFKA_STORAGE_ERROR: the directory is offline);
    /// it then reports no replicas.
    pub error: Option<ErrorCode>,
    /// The replicas stored in it that were asked about.
    pub replicas: BTreeMap<TopicPartition, ReplicaInfo>,
    /// The size of its file system in bytes (brokers from DescribeLogDirs v4, Kafka 3.3).
    pub total_bytes: Option<u64>,
    /// What the broker may still write there, in bytes (v4).
    pub usable_bytes: Option<u64>,
}

/// One partition replica in a log directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaInfo {
    /// Bytes of log data (the sum of its segments).
    pub size: u64,
    /// How far its log end is behind the high watermark (for a future replica: behind the
    /// current one); -1 when the broker does not know.
    pub offset_lag: i64,
    /// Whether it is a future replica, being moved into this directory.
    pub is_future: bool,
}

impl Admin {
    /// The log directories of each distinct broker in `brokers`, with the replicas of
    /// `partitions` they store (`None`: every partition). A partition a broker does not
    /// store is absent from its answer, as are topics it does not have.
    ///
    /// # Errors
    /// Per broker: [`ClientError::UnsupportedVersion`](crate::ClientError::UnsupportedVersion)
    /// when it does not serve DescribeLogDirs,
    /// [`ClientError::Kafka`](crate::ClientError::Kafka) with its top-level error (v3+:
    /// CLUSTER_AUTHORIZATION_FAILED), a network error once the deadline has passed. The
    /// call fails as a whole only when it is closed.
    pub async fn describe_log_dirs(
        &self,
        brokers: &[i32],
        partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<i32, Result<Vec<LogDirDescription>>>> {
        let topics = partitions.map(|tps| {
            let mut tps: Vec<&TopicPartition> = tps.iter().collect();
            tps.sort_unstable();
            tps.dedup();
            offsets::by_topic(tps.into_iter().map(|tp| (tp, tp.partition)))
        });
        let request = DescribeLogDirsRequest::default().with_topics(topics.map(|topics| {
            topics
                .into_iter()
                .map(|(topic, partitions)| {
                    DescribableLogDirTopic::default().with_topic(topic).with_partitions(partitions)
                })
                .collect()
        }));
        let request = &request;
        let outcomes = self
            .settle(brokers, transient, move |open: Vec<i32>| async move {
                let routed = open.iter().map(|&b| (b, Ok(Route::Node(b)))).collect();
                let build = |_: i16, _: &[i32]| Ok(Request::DescribeLogDirs(request.clone()));
                Ok(self.scatter(routed, ApiKey::DescribeLogDirs, build, described).await)
            })
            .await?;
        Ok(outcomes.into_iter().collect())
    }
}

/// One broker's answer (a request goes to one broker, so `brokers` holds one id).
fn described(
    addr: &str,
    version: i16,
    response: Response,
    brokers: &[i32],
) -> Result<Vec<Result<Vec<LogDirDescription>>>> {
    let Response::DescribeLogDirs(r) = response else { return Err(unexpected(addr, &response)) };
    let outcome = check(r.error_code, None, format!("describe log dirs of {addr}")).map(|()| {
        r.results
            .iter()
            .map(|dir| {
                let error = ErrorCode::from_code(dir.error_code);
                let bytes = |b: i64| (version >= 4).then(|| u64::try_from(b).ok()).flatten();
                let replicas = dir
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions.iter().map(|p| {
                            let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                            let info = ReplicaInfo {
                                size: u64::try_from(p.partition_size).unwrap_or(0),
                                offset_lag: p.offset_lag,
                                is_future: p.is_future_key,
                            };
                            (tp, info)
                        })
                    })
                    .collect();
                LogDirDescription {
                    path: dir.log_dir.to_string(),
                    error: (!error.is_none()).then_some(error),
                    replicas,
                    total_bytes: bytes(dir.total_bytes),
                    usable_bytes: bytes(dir.usable_bytes),
                }
            })
            .collect()
    });
    Ok(brokers.iter().map(|_| outcome.clone()).collect())
}
