//! InitProducerId: hands an idempotent producer its id and epoch.
//!
//! - No transactional id, no producer id: a fresh id with epoch 0 (v0/v1 clients send
//!   only this, and many idempotent producers still do).
//! - v3+ with the producer's current id and epoch (KIP-360, after an
//!   UNKNOWN_PRODUCER_ID or a sequence error): the same id with the epoch bumped, so the
//!   producer restarts its sequences at 0; a fresh id when the epoch would overflow.
//! - A transactional id: transactions are not supported, and the client is told so with
//!   INVALID_REQUEST rather than left retrying.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;

/// Answers InitProducerId. Runs on a blocking thread: a new id block is fsynced.
pub fn handle(broker: &Broker, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    if request.transactional_id.is_some() {
        response.error_code = ErrorCode::INVALID_REQUEST.code();
        return response;
    }
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
