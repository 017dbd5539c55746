//! Partitions' logs: look up offsets (earliest, latest, by time) and delete records
//! before an offset.
//!
//! Both go to each partition's leader, one request per leader; a partition whose leader
//! moved is looked up again in fresh metadata and asked again.

use std::collections::{BTreeMap, HashMap};

use sluice_protocol::api_key::ApiKey;
use sluice_protocol::kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use sluice_protocol::kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsTopic,
};
use sluice_protocol::kafka_protocol::messages::{
    BrokerId, DeleteRecordsRequest, ListOffsetsRequest, TopicName,
};
use sluice_protocol::kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::{Request, Response};

use super::routing::leader_moved;
use super::Admin;
use crate::cluster::{missing, unexpected};
use crate::error::{check, Result};
use crate::metadata::TopicPartition;

/// Which offset [`Admin::list_offsets`] looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The high watermark: the offset the next record will get.
    Latest,
    /// The first record whose timestamp (ms since the epoch) is at or after this.
    Timestamp(i64),
}

impl OffsetSpec {
    /// The ListOffsets `timestamp` field.
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

/// An offset [`Admin::list_offsets`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset; -1 when no record has a timestamp at or after the one asked for.
    pub offset: i64,
    /// The record's timestamp for [`OffsetSpec::Timestamp`]; -1 otherwise.
    pub timestamp: i64,
    /// The leader epoch of that offset, if the broker reports it (ListOffsets v4+).
    pub leader_epoch: Option<i32>,
}

/// The ListOffsets `replica_id` of a consumer: it sees offsets up to the high watermark
/// (a broker id would mark a follower).
const CONSUMER: BrokerId = BrokerId(-1);

impl Admin {
    /// The offset `spec` names in each distinct partition (the first spec given for one
    /// counts).
    ///
    /// # Errors
    /// [`ClientError::UnknownTopic`](crate::ClientError::UnknownTopic) or
    /// [`ClientError::UnknownPartition`](crate::ClientError::UnknownPartition) for what
    /// the cluster does not have, and [`ClientError::Kafka`](crate::ClientError::Kafka)
    /// with a partition's error; the first in partition order fails the call.
    pub async fn list_offsets(
        &self,
        specs: &[(TopicPartition, OffsetSpec)],
    ) -> Result<BTreeMap<TopicPartition, ListedOffset>> {
        let mut wanted: HashMap<&TopicPartition, OffsetSpec> = HashMap::new();
        for (tp, spec) in specs {
            wanted.entry(tp).or_insert(*spec);
        }
        let keys: Vec<TopicPartition> = specs.iter().map(|(tp, _)| tp.clone()).collect();
        let wanted = &wanted;
        let outcomes = self
            .settle(&keys, leader_moved, move |open: Vec<TopicPartition>| async move {
                let routed = open.iter().cloned().zip(self.leaders(&open).await?).collect();
                let build = |_: i16, keys: &[TopicPartition]| {
                    let topics = by_topic(keys, |name, partitions| {
                        let partitions = partitions
                            .into_iter()
                            .map(|tp| {
                                ListOffsetsPartition::default()
                                    .with_partition_index(tp.partition)
                                    .with_timestamp(wanted[tp].wire())
                            })
                            .collect();
                        ListOffsetsTopic::default().with_name(name).with_partitions(partitions)
                    });
                    let request =
                        ListOffsetsRequest::default().with_replica_id(CONSUMER).with_topics(topics);
                    Ok(Request::ListOffsets(request))
                };
                Ok(self.scatter(routed, ApiKey::ListOffsets, build, listed).await)
            })
            .await?;
        outcomes.into_iter().map(|(tp, outcome)| Ok((tp, outcome?))).collect()
    }

    /// Deletes the records before each offset (-1: the high watermark, so all of them).
    /// Returns each distinct partition's log start offset afterwards (the first offset
    /// given for one counts).
    ///
    /// # Errors
    /// Per partition, [`ClientError::Kafka`](crate::ClientError::Kafka) (OFFSET_OUT_OF_RANGE
    /// past the high watermark, ...), or the topic or partition unknown. The call fails as
    /// a whole only when no metadata could be fetched.
    pub async fn delete_records(
        &self,
        before: &[(TopicPartition, i64)],
    ) -> Result<BTreeMap<TopicPartition, Result<i64>>> {
        let mut wanted: HashMap<&TopicPartition, i64> = HashMap::new();
        for (tp, offset) in before {
            wanted.entry(tp).or_insert(*offset);
        }
        let keys: Vec<TopicPartition> = before.iter().map(|(tp, _)| tp.clone()).collect();
        let wanted = &wanted;
        let outcomes = self
            .settle(&keys, leader_moved, move |open: Vec<TopicPartition>| async move {
                let routed = open.iter().cloned().zip(self.leaders(&open).await?).collect();
                let build = |_: i16, keys: &[TopicPartition]| {
                    let topics = by_topic(keys, |name, partitions| {
                        let partitions = partitions
                            .into_iter()
                            .map(|tp| {
                                DeleteRecordsPartition::default()
                                    .with_partition_index(tp.partition)
                                    .with_offset(wanted[tp])
                            })
                            .collect();
                        DeleteRecordsTopic::default().with_name(name).with_partitions(partitions)
                    });
                    let request = DeleteRecordsRequest::default()
                        .with_topics(topics)
                        .with_timeout_ms(self.timeout_ms());
                    Ok(Request::DeleteRecords(request))
                };
                Ok(self.scatter(routed, ApiKey::DeleteRecords, build, deleted).await)
            })
            .await?;
        Ok(outcomes.into_iter().collect())
    }
}

/// One entry per topic of `keys`, built by `topic` from the topic's name (copied once)
/// and its keys.
fn by_topic<'k, T>(
    keys: &'k [TopicPartition],
    mut topic: impl FnMut(TopicName, Vec<&'k TopicPartition>) -> T,
) -> Vec<T> {
    let mut grouped: BTreeMap<&str, Vec<&TopicPartition>> = BTreeMap::new();
    for tp in keys {
        grouped.entry(&tp.topic).or_default().push(tp);
    }
    grouped
        .into_iter()
        .map(|(t, tps)| topic(TopicName(StrBytes::from_string(t.to_string())), tps))
        .collect()
}

fn listed(
    addr: &str,
    _: i16,
    response: Response,
    keys: &[TopicPartition],
) -> Result<Vec<Result<ListedOffset>>> {
    let Response::ListOffsets(r) = response else { return Err(unexpected(addr, &response)) };
    let by_partition: HashMap<(&str, i32), _> = r
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| ((t.name.0.as_str(), p.partition_index), p)))
        .collect();
    Ok(keys
        .iter()
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

fn deleted(
    addr: &str,
    _: i16,
    response: Response,
    keys: &[TopicPartition],
) -> Result<Vec<Result<i64>>> {
    let Response::DeleteRecords(r) = response else { return Err(unexpected(addr, &response)) };
    let by_partition: HashMap<(&str, i32), _> = r
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| ((t.name.0.as_str(), p.partition_index), p)))
        .collect();
    Ok(keys
        .iter()
        .map(|tp| {
            let p =
                by_partition.get(&(&*tp.topic, tp.partition)).ok_or_else(|| missing(addr, tp))?;
            check(p.error_code, None, format!("delete records of {tp}"))?;
            Ok(p.low_watermark)
        })
        .collect())
}
