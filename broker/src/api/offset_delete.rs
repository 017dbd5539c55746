//! OffsetDelete (KIP-496): removes committed offsets of an empty group, or of topics a
//! consumer group no longer subscribes to (GROUP_SUBSCRIBED_TO_TOPIC otherwise), and
//! writes their tombstones. Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION.

use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;
use crate::group::request::DeleteOffsetsResult;
use crate::group::types::TopicPartition;

/// Answers an OffsetDelete request.
pub async fn handle(broker: &Broker, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    // Per entry of the request, in order: whether its partition exists (and so goes to
    // the coordinator, which answers the partitions it gets in the order it got them).
    let mut known = Vec::new();
    let mut partitions = Vec::new();
    for t in &request.topics {
        let topic = broker.topics.get(&t.name.0);
        let name: Arc<str> = Arc::from(t.name.0.as_str());
        for p in &t.partitions {
            let exists = topic.as_ref().and_then(|t| t.partition(p.partition_index)).is_some();
            known.push(exists);
            if exists {
                let topic = Arc::clone(&name);
                partitions.push(TopicPartition { topic, partition: p.partition_index });
            }
        }
    }
    let group = request.group_id.0.to_string();
    let answer = match broker.groups.delete_offsets(group, partitions).await {
        Ok(r) => r,
        Err(e) => DeleteOffsetsResult { error: e.error_code(), partitions: Vec::new() },
    };
    response(&request, &known, answer)
}

/// The response: a group error alone, as in Kafka; else the request's topics and
/// partitions in its order, each entry that went to the coordinator with the next of its
/// answers, the others UNKNOWN_TOPIC_OR_PARTITION.
fn response(
    request: &OffsetDeleteRequest,
    known: &[bool],
    answer: DeleteOffsetsResult,
) -> OffsetDeleteResponse {
    let mut out = OffsetDeleteResponse::default();
    out.error_code = answer.error.code();
    if answer.error != ErrorCode::NONE {
        return out;
    }
    let mut errors = answer.partitions.into_iter().map(|(_, e)| e);
    let mut known = known.iter();
    out.topics = request
        .topics
        .iter()
        .map(|t| {
            let mut topic = OffsetDeleteResponseTopic::default();
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
                    let mut r = OffsetDeleteResponsePartition::default();
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
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;
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
