//! TxnOffsetCommit: offsets a transactional producer sends with its transaction
//! (`sendOffsetsToTransaction`). Each partition is checked (UNKNOWN_TOPIC_OR_PARTITION,
//! OFFSET_METADATA_TOO_LARGE); then the member, against the group coordinator (v3+,
//! KIP-447: ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID; a request without
//! member, as older producers send, is not checked); then the transaction: the producer
//! id and epoch (INVALID_PRODUCER_ID_MAPPING, INVALID_PRODUCER_EPOCH), and the group must
//! have been added by AddOffsetsToTxn (INVALID_TXN_STATE). The offsets are kept with the
//! transaction and reach the group when it commits (see [`crate::txn`]).

use std::sync::Arc;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TopicName, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;
use crate::group::request::TxnMember;
use crate::group::types::TopicPartition;
use crate::txn::metadata::PendingOffset;

/// Kafka's `offset.metadata.max.bytes` default, which the group coordinator also uses.
const METADATA_MAX_BYTES: usize = 4096;

/// Answers a TxnOffsetCommit request.
pub async fn handle(
    broker: &Broker,
    request: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let mut response = TxnOffsetCommitResponse::default();
    let mut offsets = Vec::new();
    for t in &request.topics {
        let name: Arc<str> = Arc::from(t.name.0.as_str());
        let topic = broker.topics.get(&name);
        let mut out = TxnOffsetCommitResponseTopic::default();
        out.name = TopicName(t.name.0.clone());
        for p in &t.partitions {
            let mut r = TxnOffsetCommitResponsePartition::default();
            r.partition_index = p.partition_index;
            let metadata = p.committed_metadata.as_ref().map_or("", |m| m.as_str());
            if topic.as_ref().and_then(|t| t.partition(p.partition_index)).is_none() {
                r.error_code = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code();
            } else if metadata.len() > METADATA_MAX_BYTES {
                r.error_code = ErrorCode::OFFSET_METADATA_TOO_LARGE.code();
            } else {
                let tp = TopicPartition { topic: Arc::clone(&name), partition: p.partition_index };
                let leader_epoch = if version >= 2 { p.committed_leader_epoch } else { -1 };
                let o = PendingOffset {
                    offset: p.committed_offset,
                    leader_epoch,
                    metadata: metadata.to_owned(),
                };
                offsets.push((tp, o));
            }
            out.partitions.push(r);
        }
        response.topics.push(out);
    }
    if offsets.is_empty() {
        return response;
    }
    let group = request.group_id.0.to_string();
    let error = match check_member(broker, &request, version).await {
        ErrorCode::NONE => broker
            .txns
            .txn_offset_commit(
                request.transactional_id.0.to_string(),
                request.producer_id.0,
                request.producer_epoch,
                group,
                offsets,
            )
            .await
            .unwrap_or_else(|e| e.error_code()),
        e => e,
    };
    for p in response.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
        if p.error_code == 0 {
            p.error_code = error.code();
        }
    }
    response
}

async fn check_member(
    broker: &Broker,
    request: &TxnOffsetCommitRequest,
    version: i16,
) -> ErrorCode {
    if request.transactional_id.0.is_empty() {
        return ErrorCode::INVALID_REQUEST;
    }
    if request.group_id.0.is_empty() {
        return ErrorCode::INVALID_GROUP_ID;
    }
    if version < 3 {
        return ErrorCode::NONE;
    }
    let member = TxnMember {
        group_id: request.group_id.0.to_string(),
        generation: request.generation_id,
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
    };
    broker.groups.validate_txn_member(member).await.unwrap_or_else(|e| e.error_code())
}
