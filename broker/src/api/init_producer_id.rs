//! InitProducerId: hands a producer its id and epoch.
//!
//! - No transactional id, no producer id: a fresh id with epoch 0 (v0/v1 clients send
//!   only this, and many idempotent producers still do).
//! - v3+ with the producer's current id and epoch (KIP-360, after an
//!   UNKNOWN_PRODUCER_ID or a sequence error): the same id with the epoch bumped, so the
//!   producer restarts its sequences at 0; a fresh id when the epoch would overflow.
//! - A transactional id: the transaction coordinator ([`crate::txn`]) answers: a new id,
//!   an epoch bump on re-init (fencing a zombie's ongoing transaction first, answered
//!   CONCURRENT_TRANSACTIONS until its abort completes), KIP-360's checks of the
//!   producer's id and epoch, INVALID_TRANSACTION_TIMEOUT past
//!   `transaction.max.timeout.ms`. Below v4 PRODUCER_FENCED is answered as
//!   INVALID_PRODUCER_EPOCH, which older clients know (KIP-588).

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;

/// Answers InitProducerId without a transactional id. Runs on a blocking thread: a new
/// id block is fsynced.
pub fn handle(broker: &Broker, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    if request.producer_id.0 >= 0
        && request.producer_epoch >= 0
        && request.producer_epoch < i16::MAX - 1
    {
        response.producer_id = request.producer_id;
        response.producer_epoch = request.producer_epoch + 1;
        return response;
    }
    match broker.producer_ids.next() {
        Ok(id) => {
            response.producer_id = ProducerId(id);
            response.producer_epoch = 0;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot allocate a producer id");
            response.error_code = ErrorCode::KAFKA_STORAGE_ERROR.code();
        }
    }
    response
}

/// Answers InitProducerId with a transactional id, through the transaction coordinator.
pub async fn handle_transactional(
    broker: &Broker,
    request: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    let txn_id = request.transactional_id.map(|t| t.0.to_string()).unwrap_or_default();
    let expected = (version >= 3 && request.producer_id.0 >= 0)
        .then_some((request.producer_id.0, request.producer_epoch));
    let answer = broker
        .txns
        .init_producer_id(txn_id, request.transaction_timeout_ms, expected)
        .await
        .unwrap_or_else(|e| Err(e.error_code()));
    match answer {
        Ok((id, epoch)) => {
            response.producer_id = ProducerId(id);
            response.producer_epoch = epoch;
        }
        Err(e) => {
            let e = if version < 4 && e == ErrorCode::PRODUCER_FENCED {
                ErrorCode::INVALID_PRODUCER_EPOCH
            } else {
                e
            };
            response.error_code = e.code();
            response.producer_id = ProducerId(-1);
            response.producer_epoch = -1;
        }
    }
    response
}
