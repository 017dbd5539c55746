//! The one place where the broker's internal errors become Kafka error codes.

use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::record::BatchError;

use crate::storage::{ProducerBatchError, StorageError};
use crate::topics::{ProtectedOperation, TopicError};

/// The Kafka error code for a storage error.
pub fn storage_error_code(e: &StorageError) -> ErrorCode {
    match e {
        StorageError::InvalidBatch { source, .. } => batch_error_code(source),
        StorageError::ProducerBatch { source: ProducerBatchError::TooLarge { .. }, .. } => {
            ErrorCode::MESSAGE_TOO_LARGE
        }
        StorageError::ProducerBatch { .. } => ErrorCode::INVALID_RECORD,
        StorageError::OffsetOutOfRange { .. } => ErrorCode::OFFSET_OUT_OF_RANGE,
        StorageError::Closed { .. } => ErrorCode::NOT_LEADER_OR_FOLLOWER,
        // A read that raced retention or compaction past every retry: the client retries.
        StorageError::SegmentRetired { .. } => ErrorCode::NOT_LEADER_OR_FOLLOWER,
        StorageError::OutOfOrderSequence { .. } => ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
        StorageError::InvalidProducerEpoch { .. } => ErrorCode::INVALID_PRODUCER_EPOCH,
        StorageError::InvalidTxnState { .. } => ErrorCode::INVALID_TXN_STATE,
        // Kafka answers a transition in flight with a retriable code the producer retries.
        StorageError::TxnNotVerified { code, .. }
            if *code == ErrorCode::CONCURRENT_TRANSACTIONS =>
        {
            ErrorCode::NOT_ENOUGH_REPLICAS
        }
        StorageError::TxnNotVerified { code, .. } => *code,
        // Retriable in every client, and like it nothing was written: the producer retries
        // once older producer ids have been idle long enough to go.
        StorageError::TooManyProducers { .. } => ErrorCode::NOT_ENOUGH_REPLICAS,
        // A full disk, a failed sync, a poisoned partition: the log cannot take writes.
        _ => ErrorCode::KAFKA_STORAGE_ERROR,
    }
}

/// The Kafka error code for a record batch that fails its checks.
pub fn batch_error_code(e: &BatchError) -> ErrorCode {
    match e {
        BatchError::UnsupportedMagic { .. } => ErrorCode::UNSUPPORTED_FOR_MESSAGE_FORMAT,
        BatchError::InvalidCount { .. } => ErrorCode::INVALID_RECORD,
        _ => ErrorCode::CORRUPT_MESSAGE,
    }
}

/// The Kafka error code for a topic operation's error.
pub fn topic_error_code(e: &TopicError) -> ErrorCode {
    match e {
        TopicError::InvalidName { .. } => ErrorCode::INVALID_TOPIC_EXCEPTION,
        TopicError::AlreadyExists(_) => ErrorCode::TOPIC_ALREADY_EXISTS,
        TopicError::Collides { .. } => ErrorCode::INVALID_TOPIC_EXCEPTION,
        TopicError::Unknown(_) => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
        TopicError::InvalidPartitions { .. } => ErrorCode::INVALID_PARTITIONS,
        TopicError::InvalidReplicationFactor(_) => ErrorCode::INVALID_REPLICATION_FACTOR,
        TopicError::InvalidConfig { .. } => ErrorCode::INVALID_CONFIG,
        // Kafka refuses writes and record deletion on internal topics with
        // INVALID_TOPIC_EXCEPTION, and creation of its own metadata topic with
        // INVALID_REQUEST.
        TopicError::Internal { operation: ProtectedOperation::Create, .. } => {
            ErrorCode::INVALID_REQUEST
        }
        TopicError::Internal { .. } => ErrorCode::INVALID_TOPIC_EXCEPTION,
        TopicError::PolicyViolation { .. } => ErrorCode::POLICY_VIOLATION,
        TopicError::Storage(s) => storage_error_code(s),
    }
}

/// Why a handler refuses one entry of a request (a partition, a topic, a config
/// resource): the Kafka error code its result carries and, where there is one, the
/// message. Whether the message reaches the wire is the handler's call: a response (or a
/// version of one) without an `error_message` field drops it.
///
/// The `From` impls map the broker's typed errors through the functions above, with the
/// error's text as the message, so a handler can refuse with `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The Kafka error code; never `NONE`.
    pub code: ErrorCode,
    /// The message for the result's `error_message`, if any.
    pub message: Option<String>,
}

impl Refusal {
    /// A refusal with a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal { code, message: Some(message.into()) }
    }

    /// A refusal with no message: the result's `error_message` stays null.
    pub fn code(code: ErrorCode) -> Refusal {
        Refusal { code, message: None }
    }
}

impl From<ErrorCode> for Refusal {
    fn from(code: ErrorCode) -> Refusal {
        Refusal::code(code)
    }
}

impl From<StorageError> for Refusal {
    fn from(e: StorageError) -> Refusal {
        Refusal::new(storage_error_code(&e), e.to_string())
    }
}

impl From<TopicError> for Refusal {
    fn from(e: TopicError) -> Refusal {
        Refusal::new(topic_error_code(&e), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn typed_errors_refuse_with_their_mapped_code_and_their_text() {
        let unknown = TopicError::Unknown("t".into());
        let message = unknown.to_string();
        assert_eq!(
            Refusal::from(unknown),
            Refusal::new(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, message)
        );
        let closed = StorageError::Closed { path: PathBuf::from("t-0") };
        let message = closed.to_string();
        assert_eq!(Refusal::from(closed), Refusal::new(ErrorCode::NOT_LEADER_OR_FOLLOWER, message));
        assert_eq!(Refusal::from(ErrorCode::INVALID_REQUEST).message, None);
    }
}
