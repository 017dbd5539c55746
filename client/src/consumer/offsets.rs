//! The offset requests: the log's offsets by time (ListOffsets, for `auto.offset.reset`,
//! `seek_to_*`, `offsets_for_times` and the admin's `list_offsets`), and a group's
//! committed offsets (OffsetFetch, OffsetCommit) at its coordinator (FindCoordinator).
//!
//! Each request is built, and each answer read, here and only here; the consumer's calls
//! below and the admin client (with its own routing and retries) both use them. A reader
//! settles every partition asked about, in the per-partition form the admin reports; the
//! consumer reduces it to the first error. Every partition is asked once (the first entry
//! given for one counts) and a topic's name is copied once per request, not per partition.
//!
//! Requests are built for the version negotiated with the broker that gets them: OffsetFetch
//! v8+ names groups in an array, v7 and below one group; fields newer than the served
//! minimum (the leader epochs, isolation level, `require_stable`, static membership) are
//! set only from the version that has them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sluice_protocol::api_key::ApiKey;
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsTopic,
};
use sluice_protocol::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use sluice_protocol::kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use sluice_protocol::kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, GroupId, ListOffsetsRequest, OffsetCommitRequest,
    OffsetFetchRequest, TopicName,
};
use sluice_protocol::kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::{Request, Response};

use crate::cluster::{missing, unexpected, Cluster};
use crate::error::{check, ClientError, Result};
use crate::metadata::TopicPartition;
use crate::net::Connection;

/// ListOffsets' timestamp for the log start offset.
pub const EARLIEST: i64 = -2;
/// ListOffsets' timestamp for the high watermark (or last stable offset).
pub const LATEST: i64 = -1;

/// A committed offset, as the consumer commits it and the admin client reads and sets it
/// (Kafka's `OffsetAndMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    /// The offset of the next record to consume.
    pub offset: i64,
    /// The leader epoch of the last record consumed, if known (KIP-320).
    pub leader_epoch: Option<i32>,
    /// Free text the committer stored with it.
    pub metadata: String,
}

impl OffsetAndMetadata {
    /// An offset without leader epoch or metadata.
    pub fn new(offset: i64) -> Self {
        OffsetAndMetadata { offset, leader_epoch: None, metadata: String::new() }
    }

    /// Sets the metadata.
    pub fn with_metadata(mut self, metadata: impl Into<String>) -> Self {
        self.metadata = metadata.into();
        self
    }
}

/// An offset found by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetAndTimestamp {
    /// The offset.
    pub offset: i64,
    /// The timestamp of the record there (-1 for earliest/latest).
    pub timestamp: i64,
}

/// An offset a ListOffsets lookup found: what
/// [`Admin::list_offsets`](crate::admin::Admin::list_offsets) returns per partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset; -1 when no record has a timestamp at or after the one asked for.
    pub offset: i64,
    /// The record's timestamp for a lookup by time; -1 otherwise.
    pub timestamp: i64,
    /// The leader epoch of that offset, if the broker reports it (ListOffsets v4+).
    pub leader_epoch: Option<i32>,
}

/// The ListOffsets `replica_id` of a consumer: it sees offsets up to the high watermark
/// (a broker id would mark a follower).
const CONSUMER: BrokerId = BrokerId(-1);

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// Looks up each partition's offset for `timestamp` (or [`EARLIEST`], [`LATEST`]) at its
/// leader; a partition given twice is looked up for its first timestamp. A partition
/// without an answer (no record at or after a timestamp) is absent.
///
/// # Errors
/// The first partition error, or a network error.
pub async fn list_offsets(
    cluster: &Cluster,
    wanted: &[(TopicPartition, i64)],
    read_committed: bool,
) -> Result<HashMap<TopicPartition, OffsetAndTimestamp>> {
    let mut by_leader: BTreeMap<i32, Vec<(&TopicPartition, i64)>> = BTreeMap::new();
    for (tp, timestamp) in distinct(wanted.iter().map(|(tp, ts)| (tp, *ts))) {
        let leader = cluster.with_metadata(|m| m.leader(&tp.topic, tp.partition));
        let Some(leader) = leader else {
            cluster.invalidate_metadata();
            return Err(ClientError::kafka(
                ErrorCode::LEADER_NOT_AVAILABLE,
                None,
                format!("list offsets of {tp}"),
            ));
        };
        by_leader.entry(leader).or_default().push((tp, timestamp));
    }
    let mut out = HashMap::new();
    for (leader, entries) in by_leader {
        let conn = cluster.connection(leader).await?;
        let version = conn.version(ApiKey::ListOffsets)?;
        let lookups: Vec<_> = cluster.with_metadata(|m| {
            let epoch = |tp: &TopicPartition| m.leader_epoch(&tp.topic, tp.partition);
            entries.iter().map(|&(tp, ts)| (tp, ts, epoch(tp))).collect()
        });
        let request = list_offsets_request(lookups, read_committed, version);
        let response = conn.send(version, &request).await?.wait().await?;
        let keys = entries.iter().map(|(tp, _)| *tp);
        for (&(tp, _), outcome) in entries.iter().zip(listed(conn.addr(), response, keys)?) {
            match outcome {
                Err(e) => {
                    if e.needs_metadata_refresh() {
                        cluster.invalidate_metadata();
                    }
                    return Err(e);
                }
                Ok(o) if o.offset >= 0 => {
                    out.insert(
                        tp.clone(),
                        OffsetAndTimestamp { offset: o.offset, timestamp: o.timestamp },
                    );
                }
                Ok(_) => {}
            }
        }
    }
    Ok(out)
}

/// The ListOffsets request for `lookups`: each partition with the timestamp to look up
/// ([`EARLIEST`], [`LATEST`] or ms since the epoch) and its current leader epoch as the
/// client knows it (-1: unknown), which the leader checks from v4 on (KIP-320).
/// `read_committed` (v2+) asks for the last stable offset rather than the high watermark.
pub(crate) fn list_offsets_request<'a>(
    lookups: impl IntoIterator<Item = (&'a TopicPartition, i64, i32)>,
    read_committed: bool,
    version: i16,
) -> Request {
    let partitions = lookups.into_iter().map(|(tp, timestamp, epoch)| {
        let mut p = ListOffsetsPartition::default()
            .with_partition_index(tp.partition)
            .with_timestamp(timestamp);
        if version >= 4 {
            p = p.with_current_leader_epoch(epoch);
        }
        (tp, p)
    });
    let topics = by_topic(partitions)
        .into_iter()
        .map(|(name, ps)| ListOffsetsTopic::default().with_name(name).with_partitions(ps))
        .collect();
    let mut request = ListOffsetsRequest::default().with_replica_id(CONSUMER).with_topics(topics);
    if version >= 2 {
        request = request.with_isolation_level(i8::from(read_committed));
    }
    Request::ListOffsets(request)
}

/// One outcome per partition of `keys` in a ListOffsets answer, in their order.
///
/// # Errors
/// A response of another API; per partition, its error or its absence from the answer.
pub(crate) fn listed<'a>(
    addr: &str,
    response: Response,
    keys: impl IntoIterator<Item = &'a TopicPartition>,
) -> Result<Vec<Result<ListedOffset>>> {
    let Response::ListOffsets(r) = response else { return Err(unexpected(addr, &response)) };
    let by_partition: HashMap<(&str, i32), _> = r
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| ((t.name.0.as_str(), p.partition_index), p)))
        .collect();
    Ok(keys
        .into_iter()
        .map(|tp| {
            let p =
                by_partition.get(&(&*tp.topic, tp.partition)).ok_or_else(|| missing(addr, tp))?;
            check(p.error_code, None, format!("list offsets of {tp}"))?;
            Ok(ListedOffset {
                offset: p.offset,
                timestamp: p.timestamp,
                leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
            })
        })
        .collect())
}

/// A connection to `group`'s coordinator.
///
/// # Errors
/// The FindCoordinator error (COORDINATOR_NOT_AVAILABLE while the broker loads), or a
/// network error.
pub async fn coordinator(cluster: &Cluster, group: &str) -> Result<Arc<Connection>> {
    let conn = cluster.any_connection().await?;
    let mut found = find_coordinators(&conn, &[group.to_string()]).await?;
    let addr = found.pop().unwrap_or_else(|| Err(missing(conn.addr(), group)))?;
    cluster.connection_to(&addr).await
}

/// The `host:port` of each group's coordinator, in their order, asked of `conn`.
/// FindCoordinator v4+ (KIP-699) asks for all of them at once; older brokers get one
/// request per group, pipelined.
///
/// # Errors
/// A network error for the request as a whole; a group's own error is its outcome.
pub(crate) async fn find_coordinators(
    conn: &Connection,
    groups: &[String],
) -> Result<Vec<Result<String>>> {
    let version = conn.version(ApiKey::FindCoordinator)?;
    if version >= 4 {
        let keys = groups.iter().map(|g| StrBytes::from_string(g.clone())).collect();
        let request = FindCoordinatorRequest::default().with_coordinator_keys(keys);
        let r = match conn.send(version, &Request::FindCoordinator(request)).await?.wait().await? {
            Response::FindCoordinator(r) => r,
            other => return Err(unexpected(conn.addr(), &other)),
        };
        let by_key: HashMap<&str, _> = r.coordinators.iter().map(|c| (c.key.as_str(), c)).collect();
        return Ok(groups
            .iter()
            .map(|g| {
                let c = by_key.get(g.as_str()).ok_or_else(|| missing(conn.addr(), g))?;
                check(c.error_code, c.error_message.as_ref(), coordinator_of(g))?;
                Ok(format!("{}:{}", c.host.as_str(), c.port))
            })
            .collect());
    }
    let mut pending = Vec::with_capacity(groups.len());
    for g in groups {
        let request = FindCoordinatorRequest::default().with_key(StrBytes::from_string(g.clone()));
        pending.push(conn.send(version, &Request::FindCoordinator(request)).await);
    }
    let mut out = Vec::with_capacity(groups.len());
    for (g, sent) in groups.iter().zip(pending) {
        let answer = async {
            let r = match sent?.wait().await? {
                Response::FindCoordinator(r) => r,
                other => return Err(unexpected(conn.addr(), &other)),
            };
            check(r.error_code, r.error_message.as_ref(), coordinator_of(g))?;
            Ok(format!("{}:{}", r.host.as_str(), r.port))
        };
        out.push(answer.await);
    }
    Ok(out)
}

fn coordinator_of(group: &str) -> String {
    format!("find the coordinator of group {group}")
}

/// The offsets `group` committed for `partitions` (absent: nothing committed).
///
/// # Errors
/// The group's or a partition's error code, or a network error.
pub async fn fetch_committed(
    conn: &Connection,
    group: &str,
    partitions: &[TopicPartition],
    require_stable: bool,
) -> Result<HashMap<TopicPartition, OffsetAndMetadata>> {
    let version = conn.version(ApiKey::OffsetFetch)?;
    let request = fetch_request(group, Some(partitions), require_stable, version)?;
    let response = conn.send(version, &request).await?.wait().await?;
    fetched(conn.addr(), group, version, response)
}

/// The OffsetFetch request for `partitions` of `group` (every partition when `None`),
/// each asked once. `require_stable` (v7+, KIP-447) makes the coordinator answer
/// UNSTABLE_OFFSET_COMMIT while a transaction may still commit offsets.
///
/// # Errors
/// [`ClientError::UnsupportedVersion`] for every partition of a group below v2.
pub(crate) fn fetch_request(
    group: &str,
    partitions: Option<&[TopicPartition]>,
    require_stable: bool,
    version: i16,
) -> Result<Request> {
    let mut sorted: Vec<&TopicPartition> = partitions.unwrap_or_default().iter().collect();
    sorted.sort_unstable();
    sorted.dedup();
    let indexes = || by_topic(sorted.iter().map(|tp| (*tp, tp.partition)));
    // v8 asks for groups in a list (KIP-709); before, for the one group at the top level.
    let mut request = if version >= 8 {
        let topics = partitions.map(|_| {
            indexes()
                .into_iter()
                .map(|(name, ps)| {
                    OffsetFetchRequestTopics::default().with_name(name).with_partition_indexes(ps)
                })
                .collect()
        });
        let g =
            OffsetFetchRequestGroup::default().with_group_id(group_id(group)).with_topics(topics);
        OffsetFetchRequest::default().with_groups(vec![g])
    } else {
        if partitions.is_none() && version < 2 {
            return Err(ClientError::UnsupportedVersion {
                addr: format!("the coordinator of group {group}"),
                api: "OffsetFetch v2+ (every partition of a group)".into(),
            });
        }
        let topics = partitions.map(|_| {
            indexes()
                .into_iter()
                .map(|(name, ps)| {
                    OffsetFetchRequestTopic::default().with_name(name).with_partition_indexes(ps)
                })
                .collect()
        });
        OffsetFetchRequest::default().with_group_id(group_id(group)).with_topics(topics)
    };
    if version >= 7 {
        request = request.with_require_stable(require_stable);
    }
    Ok(Request::OffsetFetch(request))
}

/// The committed offsets of an OffsetFetch answer in `version`; a partition with nothing
/// committed (a negative offset) is left out.
///
/// # Errors
/// The group's error, else the first partition's error in the answer's order.
pub(crate) fn fetched<M>(addr: &str, group: &str, version: i16, response: Response) -> Result<M>
where
    M: FromIterator<(TopicPartition, OffsetAndMetadata)>,
{
    let Response::OffsetFetch(r) = response else { return Err(unexpected(addr, &response)) };
    let context = || format!("fetch committed offsets of group {group}");
    // (partition, offset, epoch, metadata, error) whatever the version's shape; each
    // topic's name is copied once, its partitions share it.
    let mut rows = Vec::new();
    if version >= 8 {
        let g = r.groups.iter().find(|g| g.group_id.0.as_str() == group);
        let g = g.ok_or_else(|| missing(addr, format!("group {group}")))?;
        check(g.error_code, None, context())?;
        for t in &g.topics {
            let topic: Arc<str> = t.name.0.as_str().into();
            for p in &t.partitions {
                let tp = TopicPartition { topic: topic.clone(), partition: p.partition_index };
                let epoch = p.committed_leader_epoch;
                rows.push((tp, p.committed_offset, epoch, p.metadata.as_ref(), p.error_code));
            }
        }
    } else {
        check(r.error_code, None, context())?;
        for t in &r.topics {
            let topic: Arc<str> = t.name.0.as_str().into();
            for p in &t.partitions {
                let tp = TopicPartition { topic: topic.clone(), partition: p.partition_index };
                let epoch = p.committed_leader_epoch;
                rows.push((tp, p.committed_offset, epoch, p.metadata.as_ref(), p.error_code));
            }
        }
    }
    rows.into_iter()
        .filter_map(|(tp, offset, epoch, metadata, code)| {
            let context = || format!("fetch committed offset of {tp} in group {group}");
            if let Err(e) = check(code, None, context()) {
                return Some(Err(e));
            }
            let o = OffsetAndMetadata {
                offset,
                leader_epoch: (epoch >= 0).then_some(epoch),
                metadata: metadata.map(|m| m.to_string()).unwrap_or_default(),
            };
            (offset >= 0).then_some(Ok((tp, o)))
        })
        .collect()
}

/// Who commits: a group member's generation and ids, or (-1, "") for a consumer that
/// assigns its own partitions and for the admin client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committer {
    /// The generation.
    pub generation: i32,
    /// The member id.
    pub member_id: String,
    /// `group.instance.id`.
    pub group_instance_id: Option<String>,
}

impl Committer {
    /// A committer outside group membership (a group with members refuses it).
    pub fn standalone() -> Self {
        Committer { generation: -1, member_id: String::new(), group_instance_id: None }
    }
}

/// Commits `offsets` for `group`; a partition given twice commits its first entry.
///
/// # Errors
/// The first partition error in partition order (ILLEGAL_GENERATION,
/// REBALANCE_IN_PROGRESS, ...), or a network error.
pub async fn commit(
    conn: &Connection,
    group: &str,
    who: &Committer,
    offsets: &[(TopicPartition, OffsetAndMetadata)],
) -> Result<()> {
    let offsets = distinct(offsets.iter().map(|(tp, o)| (tp, o)));
    let version = conn.version(ApiKey::OffsetCommit)?;
    let request = commit_request(group, who, &offsets, version);
    let response = conn.send(version, &request).await?.wait().await?;
    let outcomes = commit_outcomes(conn.addr(), group, response, offsets.keys().copied())?;
    outcomes.into_values().find_map(Result::err).map_or(Ok(()), Err)
}

/// Each partition of `entries` once, with its first value.
pub(crate) fn distinct<'a, V>(
    entries: impl IntoIterator<Item = (&'a TopicPartition, V)>,
) -> BTreeMap<&'a TopicPartition, V> {
    let mut out = BTreeMap::new();
    for (tp, v) in entries {
        out.entry(tp).or_insert(v);
    }
    out
}

/// The OffsetCommit request that commits `offsets` for `group` as `who`.
pub(crate) fn commit_request(
    group: &str,
    who: &Committer,
    offsets: &BTreeMap<&TopicPartition, &OffsetAndMetadata>,
    version: i16,
) -> Request {
    let partitions = offsets.iter().map(|(tp, o)| {
        let mut p = OffsetCommitRequestPartition::default()
            .with_partition_index(tp.partition)
            .with_committed_offset(o.offset)
            .with_committed_metadata(Some(StrBytes::from_string(o.metadata.clone())));
        // The leader epoch arrived with v6 (KIP-320).
        if version >= 6 {
            p = p.with_committed_leader_epoch(o.leader_epoch.unwrap_or(-1));
        }
        (*tp, p)
    });
    let topics = by_topic(partitions)
        .into_iter()
        .map(|(name, ps)| OffsetCommitRequestTopic::default().with_name(name).with_partitions(ps))
        .collect();
    let mut request = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(who.generation)
        .with_member_id(StrBytes::from_string(who.member_id.clone()))
        .with_topics(topics);
    // Static membership arrived with v7 (KIP-345).
    if version >= 7 {
        request = request
            .with_group_instance_id(who.group_instance_id.clone().map(StrBytes::from_string));
    }
    Request::OffsetCommit(request)
}

/// The outcome of each partition of `wanted` in an OffsetCommit answer.
///
/// # Errors
/// A response of another API, or one that leaves out a partition of `wanted`.
pub(crate) fn commit_outcomes<'a>(
    addr: &str,
    group: &str,
    response: Response,
    wanted: impl IntoIterator<Item = &'a TopicPartition>,
) -> Result<BTreeMap<TopicPartition, Result<()>>> {
    let Response::OffsetCommit(r) = response else { return Err(unexpected(addr, &response)) };
    let codes = r.topics.iter().flat_map(|t| {
        t.partitions.iter().map(|p| ((t.name.0.as_str(), p.partition_index), p.error_code))
    });
    partition_outcomes(addr, wanted, codes, |tp| format!("commit offset of {tp} in group {group}"))
}

/// The outcome of each of `wanted` from an answer's per-partition error codes, each
/// failure described by `context`.
///
/// # Errors
/// An answer that leaves out a partition of `wanted`.
pub(crate) fn partition_outcomes<'a, 'b>(
    addr: &str,
    wanted: impl IntoIterator<Item = &'a TopicPartition>,
    codes: impl Iterator<Item = ((&'b str, i32), i16)>,
    context: impl Fn(&TopicPartition) -> String,
) -> Result<BTreeMap<TopicPartition, Result<()>>> {
    let codes: HashMap<(&str, i32), i16> = codes.collect();
    wanted
        .into_iter()
        .map(|tp| {
            let code = codes.get(&(&*tp.topic, tp.partition)).ok_or_else(|| missing(addr, tp))?;
            Ok((tp.clone(), check(*code, None, context(tp))))
        })
        .collect()
}

/// One entry per topic of `partitions`, in topic order, each with its values in the order
/// given; the topic's name is copied once for its entry, not once per partition.
pub(crate) fn by_topic<'a, V>(
    partitions: impl IntoIterator<Item = (&'a TopicPartition, V)>,
) -> Vec<(TopicName, Vec<V>)> {
    let mut topics: BTreeMap<&str, Vec<V>> = BTreeMap::new();
    for (tp, v) in partitions {
        topics.entry(&tp.topic).or_default().push(v);
    }
    topics.into_iter().map(|(t, vs)| (name(t), vs)).collect()
}

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_string()))
}

#[cfg(test)]
mod tests;
