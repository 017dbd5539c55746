//! OffsetDelete (KIP-496): removes committed offsets of an empty group, or of topics a
//! consumer group no longer subscribes to (GROUP_SUBSCRIBED_TO_TOPIC otherwise), and
//! writes their tombstones. Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION.

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;
use crate::group::request::{DeleteOffsetsResult, Reply, Request};
use crate::group::state::TopicPartition;

/// Answers an OffsetDelete request.
pub async fn handle(broker: &Broker, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let mut order = Vec::new();
    let mut known = Vec::new();
    let mut results = Vec::new();
    for t in &request.topics {
        let topic = broker.topics.get(&t.name.0);
        for p in &t.partitions {
            let tp = TopicPartition { topic: t.name.0.to_string(), partition: p.partition_index };
            order.push(tp.clone());
            if topic.as_ref().and_then(|t| t.partition(p.partition_index)).is_some() {
                known.push(tp);
            } else {
                results.push((tp, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));
            }
        }
    }
    let group = request.group_id.0.to_string();
    let answer = match broker.groups.call(Request::DeleteOffsets(group, known)).await {
        Ok(Reply::DeleteOffsets(r)) => r,
        _ => DeleteOffsetsResult {
            error: ErrorCode::COORDINATOR_NOT_AVAILABLE,
            partitions: Vec::new(),
        },
    };
    let mut out = OffsetDeleteResponse::default();
    out.error_code = answer.error.code();
    if answer.error != ErrorCode::NONE {
        // A group error comes without partitions, as in Kafka.
        return out;
    }
    results.extend(answer.partitions);
    for tp in order {
        let error = results.iter().find(|(r, _)| *r == tp).map_or(ErrorCode::NONE, |(_, e)| *e);
        if out.topics.last().is_none_or(|t| t.name.0.as_str() != tp.topic) {
            let mut t = OffsetDeleteResponseTopic::default();
            t.name = TopicName(StrBytes::from(tp.topic.clone()));
            out.topics.push(t);
        }
        let mut p = OffsetDeleteResponsePartition::default();
        p.partition_index = tp.partition;
        p.error_code = error.code();
        out.topics.last_mut().expect("invariant: pushed above").partitions.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use sluice_protocol::messages::Response;

    use super::*;

    #[test]
    fn responses_encode_at_version_zero() {
        let mut r = OffsetDeleteResponse::default();
        let mut t = OffsetDeleteResponseTopic::default();
        t.name = TopicName(StrBytes::from_static_str("t"));
        let mut p = OffsetDeleteResponsePartition::default();
        p.error_code = ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC.code();
        t.partitions.push(p);
        r.topics.push(t);
        Response::OffsetDelete(r).encode(0, &mut BytesMut::new()).unwrap();
    }
}
