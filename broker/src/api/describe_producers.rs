//! DescribeProducers (KIP-664): each partition's active producers, as
//! `kafka-transactions.sh describe-producers` and `find-hanging` read them: id, epoch, last
//! sequence, the time of its last append, and the first offset of its ongoing transaction.
//!
//! `last_timestamp` is the broker's time of the producer's last append (Sluice keeps that
//! for expiry, not the batch's max timestamp that Kafka shows); `coordinator_epoch` is -1,
//! as Kafka answers for a producer whose marker it has not seen: one coordinator, no epochs.
//!
//! A partition named again in the same request is answered INVALID_REQUEST there: each
//! answer lists up to `sluice.producer.state.max.producers.per.partition` producers, so
//! repeats would let a small request ask for an unbounded response.

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::error_code::ErrorCode;

use crate::api::first_occurrences;
use crate::broker::Broker;
use crate::error::storage_error_code;

/// Answers DescribeProducers.
pub fn handle(broker: &Broker, request: DescribeProducersRequest) -> DescribeProducersResponse {
    let named: Vec<(&str, i32)> = request
        .topics
        .iter()
        .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.0.as_str(), *p)))
        .collect();
    let mut first = first_occurrences(&named).into_iter();
    let mut response = DescribeProducersResponse::default();
    for t in &request.topics {
        let topic = broker.topics.get(t.name.0.as_str());
        let mut out = TopicResponse::default();
        out.name = t.name.clone();
        for &index in &t.partition_indexes {
            let mut r = PartitionResponse::default();
            r.partition_index = index;
            let partition = topic.as_ref().and_then(|t| t.partition(index));
            match (first.next().unwrap_or(false), partition) {
                (false, _) => {
                    r.error_code = ErrorCode::INVALID_REQUEST.code();
                    r.error_message = Some(StrBytes::from_static_str("partition named twice"));
                }
                (true, None) => r.error_code = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code(),
                (true, Some(p)) => match p.log() {
                    Err(e) => r.error_code = storage_error_code(&e).code(),
                    Ok(log) => {
                        r.active_producers = log
                            .producers()
                            .into_iter()
                            .map(|info| {
                                let mut s = ProducerState::default();
                                s.producer_id = ProducerId(info.producer_id);
                                s.producer_epoch = i32::from(info.producer_epoch);
                                s.last_sequence = info.last_sequence;
                                s.last_timestamp = info.last_append_ms;
                                s.coordinator_epoch = -1;
                                s.current_txn_start_offset =
                                    info.current_txn_first_offset.unwrap_or(-1);
                                s
                            })
                            .collect();
                    }
                },
            }
            out.partitions.push(r);
        }
        response.topics.push(out);
    }
    response
}
