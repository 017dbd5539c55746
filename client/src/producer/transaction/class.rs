//! What an error from the transaction coordinator or a transactional send means for the
//! transaction, as Java's `TransactionManager` classifies it: retry, abort or close.

use sluice_protocol::api_key::ApiKey;
use sluice_protocol::error_code::ErrorCode;

use crate::error::ClientError;

/// What an error code from the transaction coordinator (or a transactional send) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Send the request again after a backoff; `find_coordinator`: look it up first.
    Retry {
        /// The coordinator moved or is not known.
        find_coordinator: bool,
    },
    /// The transaction can only be aborted.
    Abortable,
    /// The producer can only be closed.
    Fatal,
}

/// The codes after which a transactional producer is done for (fenced, not allowed, or
/// out of step with its coordinator).
fn is_fatal(code: ErrorCode) -> bool {
    [
        ErrorCode::PRODUCER_FENCED,
        ErrorCode::INVALID_PRODUCER_EPOCH,
        ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
        ErrorCode::INVALID_PRODUCER_ID_MAPPING,
        ErrorCode::INVALID_TXN_STATE,
        ErrorCode::UNSUPPORTED_VERSION,
        ErrorCode::UNSUPPORTED_FOR_MESSAGE_FORMAT,
        ErrorCode::INVALID_TRANSACTION_TIMEOUT,
    ]
    .contains(&code)
}

/// The class of `code` in a coordinator's answer to `api` (`None`: success).
pub fn classify(api: ApiKey, code: ErrorCode) -> Option<Class> {
    if code.is_none() {
        return None;
    }
    Some(match code {
        ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => {
            Class::Retry { find_coordinator: true }
        }
        ErrorCode::CONCURRENT_TRANSACTIONS
        | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
        | ErrorCode::REQUEST_TIMED_OUT => Class::Retry { find_coordinator: false },
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
            if matches!(api, ApiKey::AddPartitionsToTxn | ApiKey::TxnOffsetCommit) =>
        {
            Class::Retry { find_coordinator: false }
        }
        code if is_fatal(code) => Class::Fatal,
        // The coordinator's own calls leave the producer unusable on anything else;
        // partitions, groups and offsets only spoil the transaction.
        _ if matches!(api, ApiKey::InitProducerId | ApiKey::EndTxn) => Class::Fatal,
        _ => Class::Abortable,
    })
}

/// The class of a failed transactional send: fencing is fatal, anything else spoils the
/// transaction.
pub fn classify_send(error: &ClientError) -> Class {
    match error.code() {
        Some(code) if is_fatal(code) => Class::Fatal,
        _ => Class::Abortable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_as_kafkas_transaction_manager_does() {
        use ApiKey::*;
        let retry = Some(Class::Retry { find_coordinator: false });
        let refind = Some(Class::Retry { find_coordinator: true });
        for api in [InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit] {
            assert_eq!(classify(api, ErrorCode::NONE), None);
            assert_eq!(classify(api, ErrorCode::CONCURRENT_TRANSACTIONS), retry);
            assert_eq!(classify(api, ErrorCode::COORDINATOR_LOAD_IN_PROGRESS), retry);
            assert_eq!(classify(api, ErrorCode::NOT_COORDINATOR), refind);
            assert_eq!(classify(api, ErrorCode::COORDINATOR_NOT_AVAILABLE), refind);
            for fatal in [
                ErrorCode::PRODUCER_FENCED,
                ErrorCode::INVALID_PRODUCER_EPOCH,
                ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                ErrorCode::INVALID_TXN_STATE,
            ] {
                assert_eq!(classify(api, fatal), Some(Class::Fatal), "{api:?} {fatal}");
            }
        }
        assert_eq!(classify(AddPartitionsToTxn, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION), retry);
        assert_eq!(
            classify(AddPartitionsToTxn, ErrorCode::TOPIC_AUTHORIZATION_FAILED),
            Some(Class::Abortable)
        );
        assert_eq!(
            classify(TxnOffsetCommit, ErrorCode::ILLEGAL_GENERATION),
            Some(Class::Abortable)
        );
        assert_eq!(
            classify(TxnOffsetCommit, ErrorCode::FENCED_INSTANCE_ID),
            Some(Class::Abortable)
        );
        assert_eq!(
            classify(AddOffsetsToTxn, ErrorCode::GROUP_AUTHORIZATION_FAILED),
            Some(Class::Abortable)
        );
        assert_eq!(classify(EndTxn, ErrorCode::UNKNOWN_SERVER_ERROR), Some(Class::Fatal));
        let fenced = ClientError::kafka(ErrorCode::INVALID_PRODUCER_EPOCH, None, "produce");
        assert_eq!(classify_send(&fenced), Class::Fatal);
        let big = ClientError::kafka(ErrorCode::MESSAGE_TOO_LARGE, None, "produce");
        assert_eq!(classify_send(&big), Class::Abortable);
    }
}
