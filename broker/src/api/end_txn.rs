//! EndTxn: commits or aborts the producer's transaction. Answered once the
//! Prepare{Commit,Abort} state is durable, as Kafka does; the markers and offsets follow
//! (see [`crate::txn`]). A retry of the same result while they are written is answered
//! CONCURRENT_TRANSACTIONS (the client retries), after they are written NONE; the other
//! result is INVALID_TXN_STATE. PRODUCER_FENCED is INVALID_PRODUCER_EPOCH below v2
//! (KIP-588).

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;

/// Answers an EndTxn request.
pub async fn handle(broker: &Broker, request: EndTxnRequest, version: i16) -> EndTxnResponse {
    let e = broker
        .txns
        .end_txn(
            request.transactional_id.0.to_string(),
            request.producer_id.0,
            request.producer_epoch,
            request.committed,
        )
        .await
        .unwrap_or_else(|e| e.error_code());
    let e = if version < 2 && e == ErrorCode::PRODUCER_FENCED {
        ErrorCode::INVALID_PRODUCER_EPOCH
    } else {
        e
    };
    let mut response = EndTxnResponse::default();
    response.error_code = e.code();
    response
}
