//! OffsetCommit: offsets of known topic partitions go to the coordinator, which checks
//! the member and generation (or accepts a simple commit with generation -1 for a group
//! without members), writes them to `__consumer_offsets` as one batch and answers once
//! they are in the log. Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION, as
//! in Kafka.
//!
//! Version semantics: v2–v4 carry `retention_time_ms` (an explicit expiry); v6+ the
//! leader epoch; v7+ the group instance id. Served from v2 (Kafka 4.0's minimum).

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;
use crate::group::request::{CommitRequest, OffsetToCommit, Reply, Request};
use crate::group::state::TopicPartition;

/// Answers an OffsetCommit request (once the offsets are written).
pub async fn handle(
    broker: &Broker,
    request: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let mut order = Vec::new();
    let mut offsets = Vec::new();
    let mut refused = Vec::new();
    for t in &request.topics {
        let topic = broker.topics.get(&t.name.0);
        for p in &t.partitions {
            let tp = TopicPartition { topic: t.name.0.to_string(), partition: p.partition_index };
            order.push(tp.clone());
            if topic.as_ref().and_then(|t| t.partition(p.partition_index)).is_none() {
                refused.push((tp, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));
                continue;
            }
            offsets.push(OffsetToCommit {
                partition: tp,
                offset: p.committed_offset,
                leader_epoch: if version >= 6 { p.committed_leader_epoch } else { -1 },
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            });
        }
    }
    let mut results = refused;
    if !offsets.is_empty() {
        let sent: Vec<TopicPartition> = offsets.iter().map(|o| o.partition.clone()).collect();
        let commit = CommitRequest {
            group_id: request.group_id.0.to_string(),
            generation: request.generation_id_or_member_epoch,
            member_id: request.member_id.to_string(),
            instance_id: request.group_instance_id.map(|s| s.to_string()),
            retention_ms: if (2..=4).contains(&version) { request.retention_time_ms } else { -1 },
            offsets,
        };
        match broker.groups.call(Request::Commit(commit)).await {
            Ok(Reply::Commit(r)) => results.extend(r),
            _ => results
                .extend(sent.into_iter().map(|tp| (tp, ErrorCode::COORDINATOR_NOT_AVAILABLE))),
        }
    }
    response(&order, &results)
}

/// The response: partitions in request order, grouped by topic as they came.
pub fn response(
    order: &[TopicPartition],
    results: &[(TopicPartition, ErrorCode)],
) -> OffsetCommitResponse {
    let mut out = OffsetCommitResponse::default();
    for tp in order {
        let error = results
            .iter()
            .find(|(r, _)| r == tp)
            .map_or(ErrorCode::UNKNOWN_SERVER_ERROR, |(_, e)| *e);
        if out
            .topics
            .last()
            .is_none_or(|t: &OffsetCommitResponseTopic| t.name.0.as_str() != tp.topic)
        {
            let mut topic = OffsetCommitResponseTopic::default();
            topic.name = TopicName(StrBytes::from(tp.topic.clone()));
            out.topics.push(topic);
        }
        let mut p = OffsetCommitResponsePartition::default();
        p.partition_index = tp.partition;
        p.error_code = error.code();
        out.topics.last_mut().expect("invariant: pushed above").partitions.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use sluice_protocol::api_key::{support, ApiKey};
    use sluice_protocol::messages::Response;

    use super::*;

    #[test]
    fn responses_group_by_topic_in_request_order_and_encode_at_every_version() {
        let tp = |t: &str, p| TopicPartition { topic: t.into(), partition: p };
        let order = [tp("a", 1), tp("a", 0), tp("b", 0)];
        let results = [
            (tp("b", 0), ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
            (tp("a", 1), ErrorCode::NONE),
            (tp("a", 0), ErrorCode::ILLEGAL_GENERATION),
        ];
        let r = response(&order, &results);
        assert_eq!(r.topics.len(), 2);
        assert_eq!(r.topics[0].partitions[1].error_code, ErrorCode::ILLEGAL_GENERATION.code());
        let range = support(ApiKey::OffsetCommit).unwrap().advertised;
        for version in range.min..=range.max {
            Response::OffsetCommit(r.clone()).encode(version, &mut BytesMut::new()).unwrap();
        }
    }
}
