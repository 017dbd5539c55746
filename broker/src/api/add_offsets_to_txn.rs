//! AddOffsetsToTxn: a consumer group joins the producer's transaction, so that
//! TxnOffsetCommit may send its offsets with it. Kafka adds the group's
//! `__consumer_offsets` partition; this coordinator keeps the group with the
//! transaction (see [`crate::txn`]). Errors as AddPartitionsToTxn's; PRODUCER_FENCED is
//! INVALID_PRODUCER_EPOCH below v2 (KIP-588).

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;

/// Answers an AddOffsetsToTxn request.
pub async fn handle(
    broker: &Broker,
    request: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let e = broker
        .txns
        .add_offsets(
            request.transactional_id.0.to_string(),
            request.producer_id.0,
            request.producer_epoch,
            request.group_id.0.to_string(),
        )
        .await
        .unwrap_or_else(|e| e.error_code());
    let e = if version < 2 && e == ErrorCode::PRODUCER_FENCED {
        ErrorCode::INVALID_PRODUCER_EPOCH
    } else {
        e
    };
    let mut response = AddOffsetsToTxnResponse::default();
    response.error_code = e.code();
    response
}
