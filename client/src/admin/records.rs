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
use sluice_protocol::kafka_protocol::messages::DeleteRecordsRequest;
use sluice_protocol::messages::{Request, Response};

use super::routing::leader_moved;
use super::Admin;
use crate::cluster::{missing, unexpected};
pub use crate::consumer::offsets::ListedOffset;
use crate::consumer::offsets::{self, EARLIEST, LATEST};
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
            OffsetSpec::Earliest => EARLIEST,
            OffsetSpec::Latest => LATEST,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

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
        let wanted = &offsets::distinct(specs.iter().map(|(tp, spec)| (tp, *spec)));
        let keys: Vec<TopicPartition> = specs.iter().map(|(tp, _)| tp.clone()).collect();
        let outcomes = self
            .settle(&keys, leader_moved, move |open: Vec<TopicPartition>| async move {
                let routed = open.iter().cloned().zip(self.leaders(&open).await?).collect();
                // As Kafka's admin client: read_uncommitted, no leader epoch to check.
                let build = |version: i16, keys: &[TopicPartition]| {
                    let lookups = keys.iter().map(|tp| (tp, wanted[tp].wire(), -1));
                    Ok(offsets::list_offsets_request(lookups, false, version))
                };
                let read = |addr: &str, _: i16, response: Response, keys: &[TopicPartition]| {
                    offsets::listed(addr, response, keys)
                };
                Ok(self.scatter(routed, ApiKey::ListOffsets, build, read).await)
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
        let wanted = &offsets::distinct(before.iter().map(|(tp, offset)| (tp, *offset)));
        let keys: Vec<TopicPartition> = before.iter().map(|(tp, _)| tp.clone()).collect();
        let outcomes = self
            .settle(&keys, leader_moved, move |open: Vec<TopicPartition>| async move {
                let routed = open.iter().cloned().zip(self.leaders(&open).await?).collect();
                let build = |_: i16, keys: &[TopicPartition]| {
                    let partitions = keys.iter().map(|tp| {
                        let p = DeleteRecordsPartition::default()
                            .with_partition_index(tp.partition)
                            .with_offset(wanted[tp]);
                        (tp, p)
                    });
                    let topics = offsets::by_topic(partitions)
                        .into_iter()
                        .map(|(name, ps)| {
                            DeleteRecordsTopic::default().with_name(name).with_partitions(ps)
                        })
                        .collect();
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
