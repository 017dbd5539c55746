//! The client's one error type, and the one decision of what a failure means for a
//! request: retry it, refresh metadata first, or give up.
//!
//! Errors are `Clone` because one broker answer completes many sends at once (every record
//! of a batch resolves to the same outcome).

use std::time::Duration;

use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::kafka_protocol::protocol::StrBytes;
use thiserror::Error;

/// What a client operation failed with.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The broker answered with a Kafka error code.
    #[error("{context}: broker answered {code}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kafka {
        /// The code, with Kafka's name when printed.
        code: ErrorCode,
        /// The error message the broker sent, if any.
        message: Option<String>,
        /// What was asked (`produce to t-0`, `create topic t`).
        context: String,
    },
    /// A configuration property is unknown, of the wrong type or out of bounds.
    #[error("config {name}={value}: {reason}")]
    Config {
        /// The property name.
        name: String,
        /// The value given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// No connection could be made, or an established one failed.
    #[error("connection to {addr}: {reason}")]
    Network {
        /// `host:port` of the broker.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// No answer within `request.timeout.ms`.
    #[error("{context}: no answer from {addr} within {timeout:?}")]
    RequestTimeout {
        /// `host:port` of the broker.
        addr: String,
        /// What was asked.
        context: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The broker speaks no version of an API that the client can use.
    #[error("broker {addr} supports no version of {api} that this client speaks")]
    UnsupportedVersion {
        /// `host:port` of the broker.
        addr: String,
        /// The API's name.
        api: String,
    },
    /// The broker sent bytes that do not decode as the expected response.
    #[error("broker {addr} sent a malformed response: {reason}")]
    Protocol {
        /// `host:port` of the broker.
        addr: String,
        /// What did not decode.
        reason: String,
    },
    /// A record that can never be sent (larger than `max.request.size` or `buffer.memory`,
    /// or a field too long for the wire format).
    #[error("record of {size} bytes cannot be sent: {reason}")]
    RecordTooLarge {
        /// The record's encoded size.
        size: usize,
        /// The limit it breaks.
        reason: String,
    },
    /// `send` waited `max.block.ms` for room in `buffer.memory` or for the topic's metadata.
    #[error("send blocked for max.block.ms ({waited:?}) waiting for {what}")]
    MaxBlock {
        /// What it waited for.
        what: String,
        /// How long it waited.
        waited: Duration,
    },
    /// The record was not acknowledged within `delivery.timeout.ms`.
    #[error("record to {topic}-{partition} not acknowledged within delivery.timeout.ms ({timeout:?}): {last_error}")]
    DeliveryTimeout {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The timeout.
        timeout: Duration,
        /// What the last attempt failed with.
        last_error: String,
    },
    /// The topic does not exist (and was not auto-created) within the time allowed.
    #[error("topic {topic} is not in the cluster's metadata")]
    UnknownTopic {
        /// The topic.
        topic: String,
    },
    /// A partition number outside the topic's partitions.
    #[error("topic {topic} has {partitions} partitions; partition {partition} does not exist")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many partitions the topic has.
        partitions: u32,
    },
    /// The offset reset policy is `none` and the partition has no valid position.
    #[error("{topic}-{partition} has no committed offset and auto.offset.reset is none")]
    NoOffsetForPartition {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// The batch the consumer fetched fails its CRC (`check.crcs`) or does not parse.
    #[error("{topic}-{partition} at offset {offset}: corrupt record batch: {reason}")]
    CorruptRecord {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The fetch position.
        offset: i64,
        /// What is wrong.
        reason: String,
    },
    /// The producer, consumer or admin client was closed.
    #[error("client is closed")]
    Closed,
    /// A transactional operation failed, or is not allowed in the producer's transaction
    /// state (Kafka's fatal and abortable transaction errors, IllegalStateException and
    /// TransactionAbortedException).
    #[error("transaction {kind:?}: {reason}")]
    Transaction {
        /// What the failure means for the producer.
        kind: TransactionErrorKind,
        /// The broker's code behind it, if one (PRODUCER_FENCED, ...).
        code: Option<ErrorCode>,
        /// What happened.
        reason: String,
    },
}

/// What a [`ClientError::Transaction`] leaves the producer able to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionErrorKind {
    /// The producer can do nothing but close (fenced by a newer instance, not
    /// authorized, or the coordinator refused the transaction's state).
    Fatal,
    /// The transaction cannot commit; `abort_transaction` makes the producer usable again.
    Abortable,
    /// The call does not fit the transaction state (begin twice, send outside one).
    InvalidState,
    /// The record's transaction was aborted before it was sent.
    Aborted,
}

impl ClientError {
    /// A broker error code with the broker's message, for `context`.
    pub fn kafka(code: ErrorCode, message: Option<String>, context: impl Into<String>) -> Self {
        ClientError::Kafka { code, message, context: context.into() }
    }

    /// The Kafka error code, when the broker sent one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            ClientError::Transaction { code, .. } => *code,
            _ => None,
        }
    }

    /// Whether the same request may succeed if sent again (Kafka's `RetriableException`,
    /// plus lost connections and timeouts).
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Kafka { code, .. } => code.is_retriable(),
            ClientError::Network { .. } | ClientError::RequestTimeout { .. } => true,
            _ => false,
        }
    }

    /// Whether the client's metadata may be stale: the next attempt should look up the
    /// leader again.
    pub fn needs_metadata_refresh(&self) -> bool {
        match self {
            ClientError::Kafka { code, .. } => refreshes_metadata(*code),
            ClientError::Network { .. } | ClientError::RequestTimeout { .. } => true,
            _ => false,
        }
    }
}

/// The codes after which Kafka's clients look up leaders again before retrying.
pub fn refreshes_metadata(code: ErrorCode) -> bool {
    [
        ErrorCode::NOT_LEADER_OR_FOLLOWER,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode::LEADER_NOT_AVAILABLE,
        ErrorCode::FENCED_LEADER_EPOCH,
        ErrorCode::UNKNOWN_LEADER_EPOCH,
        ErrorCode::KAFKA_STORAGE_ERROR,
        ErrorCode::NOT_COORDINATOR,
        ErrorCode::COORDINATOR_NOT_AVAILABLE,
        ErrorCode::UNKNOWN_TOPIC_ID,
        ErrorCode::INCONSISTENT_TOPIC_ID,
    ]
    .contains(&code)
}

/// `Ok` for error code 0, else the broker's error (with its message) for `context`.
pub(crate) fn check(
    code: i16,
    message: Option<&StrBytes>,
    context: impl Into<String>,
) -> Result<()> {
    let code = ErrorCode::from_code(code);
    if code.is_none() {
        return Ok(());
    }
    Err(ClientError::kafka(code, message.map(|m| m.to_string()), context))
}

/// The client's result type.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retriable_and_refresh_follow_kafka() {
        let nl = ClientError::kafka(ErrorCode::NOT_LEADER_OR_FOLLOWER, None, "produce to t-0");
        assert!(nl.is_retriable() && nl.needs_metadata_refresh());
        let big = ClientError::kafka(ErrorCode::MESSAGE_TOO_LARGE, None, "produce to t-0");
        assert!(!big.is_retriable() && !big.needs_metadata_refresh());
        let lost = ClientError::Network { addr: "127.0.0.1:9092".into(), reason: "reset".into() };
        assert!(lost.is_retriable());
        assert!(!ClientError::Closed.is_retriable());
    }

    #[test]
    fn messages_name_the_code_and_context() {
        let e = ClientError::kafka(ErrorCode::INVALID_CONFIG, Some("bad".into()), "create topic t");
        let text = e.to_string();
        assert!(text.contains("INVALID_CONFIG") && text.contains("create topic t"), "{text}");
    }
}
