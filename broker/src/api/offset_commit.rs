//! OffsetCommit: offsets of known topic partitions go to the coordinator, which checks
//! the member and generation (or accepts a simple commit with generation -1 for a group
//! without members), writes them to `__consumer_offsets` as one batch and answers once
//! they are in the log. Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION, as
//! in Kafka.
//!
//! Every entry is answered, in the request's order; a partition named more than once is
//! committed once, with its last valid entry (Kafka writes a record per entry and ends in
//! the same state). The cost is linear in the entries: a topic name is held once for all
//! its partitions, and answers are matched to entries by position, not by search.
//!
//! Version semantics, as Kafka 3.9's: v1 carries a `commit_timestamp` per partition
//! (-1: the coordinator's clock), which dates the offset and so when
//! `offsets.retention.minutes` expires it; v2–v4 carry `retention_time_ms` (an explicit
//! expiry); v6+ the leader epoch; v7+ the group instance id.
//!
//! v0 has no generation and no member id: the coordinator takes it as a commit by a
//! consumer outside group management (generation -1), accepted while the group has no
//! members and refused with UNKNOWN_MEMBER_ID otherwise (Kafka's
//! `ClassicGroup.validateOffsetCommit`). Kafka 3.9 itself never gives v0 to its
//! coordinator: with ZooKeeper it stores v0 commits in ZooKeeper, apart from every other
//! version's and without their metadata, and in KRaft mode it refuses them with
//! UNSUPPORTED_VERSION. Sluice has no ZooKeeper; it keeps v0 commits with the others, so
//! the clients that still send v0 (which read back with OffsetFetch v0, served from the
//! same store) keep their offsets and every tool sees them.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;
use crate::group::request::{CommitRequest, OffsetToCommit};
use crate::group::types::TopicPartition;

/// Answers an OffsetCommit request (once the offsets are written).
pub async fn handle(
    broker: &Broker,
    request: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    // Per entry of the request, in order: whether its partition exists (and so goes to
    // the coordinator, which answers the entries it gets in the order it got them).
    let mut known = Vec::new();
    let mut offsets = Vec::new();
    for t in &request.topics {
        let topic = broker.topics.get(&t.name.0);
        let name: Arc<str> = Arc::from(t.name.0.as_str());
        for p in &t.partitions {
            let exists = topic.as_ref().and_then(|t| t.partition(p.partition_index)).is_some();
            known.push(exists);
            if exists {
                offsets.push(OffsetToCommit {
                    partition: TopicPartition {
                        topic: Arc::clone(&name),
                        partition: p.partition_index,
                    },
                    offset: p.committed_offset,
                    leader_epoch: if version >= 6 { p.committed_leader_epoch } else { -1 },
                    commit_timestamp: if version == 1 { p.commit_timestamp } else { -1 },
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                });
            }
        }
    }
    let sent = offsets.len();
    let mut errors = Vec::new();
    if sent > 0 {
        let commit = CommitRequest {
            group_id: request.group_id.0.to_string(),
            generation: request.generation_id_or_member_epoch,
            member_id: request.member_id.to_string(),
            instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
            retention_ms: if (2..=4).contains(&version) { request.retention_time_ms } else { -1 },
            offsets,
        };
        errors = match broker.groups.commit(commit).await {
            Ok(r) => r,
            Err(e) => vec![e.error_code(); sent],
        };
    }
    response(&request, &known, errors)
}

/// The response: the request's topics and partitions, in its order; each entry that went
/// to the coordinator takes the next of `errors`, the others UNKNOWN_TOPIC_OR_PARTITION.
pub fn response(
    request: &OffsetCommitRequest,
    known: &[bool],
    errors: Vec<ErrorCode>,
) -> OffsetCommitResponse {
    let mut errors = errors.into_iter();
    let mut known = known.iter();
    let mut out = OffsetCommitResponse::default();
    out.topics = request
        .topics
        .iter()
        .map(|t| {
            let mut topic = OffsetCommitResponseTopic::default();
            // A view of the request's bytes, not a copy.
            topic.name = t.name.clone();
            topic.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let error = match known.next() {
                        Some(true) => errors.next().unwrap_or(ErrorCode::UNKNOWN_SERVER_ERROR),
                        _ => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    };
                    let mut r = OffsetCommitResponsePartition::default();
                    r.partition_index = p.partition_index;
                    r.error_code = error.code();
                    r
                })
                .collect();
            topic
        })
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use sluice_protocol::api_key::{support, ApiKey};
    use sluice_protocol::messages::Response;

    use super::*;

    #[test]
    fn responses_follow_the_request_and_encode_at_every_version() {
        use kafka_protocol::messages::offset_commit_request::{
            OffsetCommitRequestPartition, OffsetCommitRequestTopic,
        };
        use kafka_protocol::messages::TopicName;
        let topic = |name: &str, partitions: &[i32]| {
            let mut t = OffsetCommitRequestTopic::default();
            t.name = TopicName(name.to_owned().into());
            t.partitions = partitions
                .iter()
                .map(|&i| {
                    let mut p = OffsetCommitRequestPartition::default();
                    p.partition_index = i;
                    p
                })
                .collect();
            t
        };
        let mut request = OffsetCommitRequest::default();
        request.topics = vec![topic("a", &[1, 0]), topic("b", &[0])];
        let errors = vec![ErrorCode::NONE, ErrorCode::ILLEGAL_GENERATION];
        let r = response(&request, &[true, true, false], errors);
        assert_eq!(r.topics.len(), 2);
        assert_eq!(r.topics[0].partitions[0].partition_index, 1);
        assert_eq!(r.topics[0].partitions[1].error_code, ErrorCode::ILLEGAL_GENERATION.code());
        let unknown = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code();
        assert_eq!(r.topics[1].partitions[0].error_code, unknown);
        let range = support(ApiKey::OffsetCommit).unwrap().advertised;
        for version in range.min..=range.max {
            Response::OffsetCommit(r.clone()).encode(version, &mut BytesMut::new()).unwrap();
        }
    }
}
