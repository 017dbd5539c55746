//! What a topic may be, whatever holds it: Kafka's name rules, the broker's internal
//! topics and what clients may not do to them, the per-request partition bound, and the
//! error a topic operation fails with. A leaf: the catalog (`topics`) and the config
//! table (`topic_config`) both build on it.

use thiserror::Error;

use crate::storage::StorageError;

/// Topics the broker itself writes; clients may read them but not produce to them.
pub const INTERNAL_TOPICS: &[&str] = &["__consumer_offsets", "__transaction_state"];

/// Whether `name` is one of the broker's internal topics.
pub fn is_internal(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

/// What clients may not do to an internal topic: each would lose what the broker keeps
/// there (deleting `__consumer_offsets` or its records erases every group's committed
/// offsets at the next start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectedOperation {
    /// CreateTopics (auto-creation skips them): the broker creates its internal topics
    /// itself.
    Create,
    /// DeleteTopics.
    Delete,
    /// DeleteRecords.
    DeleteRecords,
    /// CreatePartitions.
    AddPartitions,
}

impl ProtectedOperation {
    pub(crate) fn verb(self) -> &'static str {
        match self {
            ProtectedOperation::Create => "create",
            ProtectedOperation::Delete => "delete",
            ProtectedOperation::DeleteRecords => "delete records of",
            ProtectedOperation::AddPartitions => "add partitions to",
        }
    }
}

/// Refuses `operation` on an internal topic. Creation is refused also for a name that
/// differs from an internal one only by `.` versus `_` (`__consumer.offsets`): it would
/// collide with the internal topic, which the broker could then not create.
///
/// # Errors
/// [`TopicError::Internal`] when `name` is one of [`INTERNAL_TOPICS`] (or, to create, one
/// of their look-alikes).
pub fn refuse_if_internal(name: &str, operation: ProtectedOperation) -> Result<(), TopicError> {
    let look_alike = || {
        operation == ProtectedOperation::Create
            && INTERNAL_TOPICS.iter().any(|t| normal_name(t) == normal_name(name))
    };
    if is_internal(name) || look_alike() {
        return Err(TopicError::Internal { topic: name.to_owned(), operation });
    }
    Ok(())
}

/// Longest legal topic name (Kafka's limit).
pub const MAX_TOPIC_NAME: usize = 249;

/// Most partitions one CreateTopics or CreatePartitions request may add: Kafka's controller
/// refuses larger requests with POLICY_VIOLATION. Each partition holds open files and
/// mappings, so without a bound one request could exhaust the broker's descriptors.
pub const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;

/// The POLICY_VIOLATION message for a request over [`MAX_PARTITIONS_PER_REQUEST`].
pub fn too_many_partitions_message() -> String {
    format!(
        "excessively large number of partitions per request (at most \
         {MAX_PARTITIONS_PER_REQUEST} new ones)"
    )
}

/// Why a topic operation failed; mapped to Kafka error codes in `error.rs`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TopicError {
    /// Name empty, too long, `.`/`..`, or with characters outside `[a-zA-Z0-9._-]`.
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A topic with this name exists.
    #[error("topic {0} already exists")]
    AlreadyExists(String),
    /// A topic exists whose name differs only by `.` versus `_` (Kafka refuses these:
    /// the two would share metric names).
    #[error("topic {name:?} collides with existing topic {existing:?}")]
    Collides {
        /// The name asked for.
        name: String,
        /// The existing topic.
        existing: String,
    },
    /// No such topic.
    #[error("topic {0} does not exist")]
    Unknown(String),
    /// A partition count below 1 (or not above the current one, when adding).
    #[error("invalid partition count {count} for topic {topic}: {reason}")]
    InvalidPartitions {
        /// The topic.
        topic: String,
        /// The requested count.
        count: i32,
        /// What is wrong.
        reason: &'static str,
    },
    /// A replication factor other than 1 (or -1, the default) on a single node.
    #[error("replication factor {0} is not possible on a single node")]
    InvalidReplicationFactor(i16),
    /// An unknown topic config or a bad value.
    #[error("invalid config {key}={value:?}: {reason}")]
    InvalidConfig {
        /// The config name.
        key: String,
        /// The value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A client asked for something that would lose an internal topic's data.
    #[error("cannot {} internal topic {topic}", operation.verb())]
    Internal {
        /// The topic.
        topic: String,
        /// What was asked.
        operation: ProtectedOperation,
    },
    /// A config change an internal topic refuses: it would delete records the broker
    /// needs (POLICY_VIOLATION).
    #[error("topic {topic} is internal: {reason}")]
    PolicyViolation {
        /// The topic.
        topic: String,
        /// Which config, and why.
        reason: String,
    },
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Checks a topic name against Kafka's rules.
///
/// # Errors
/// [`TopicError::InvalidName`].
pub fn validate_name(name: &str) -> Result<(), TopicError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name == "." || name == ".." {
        "`.` and `..` are not allowed"
    } else if name.len() > MAX_TOPIC_NAME {
        "longer than 249 characters"
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        "only ASCII letters, digits, `.`, `_` and `-` are allowed"
    } else {
        return Ok(());
    };
    Err(TopicError::InvalidName { name: name.into(), reason })
}

/// `name` with `.` read as `_`: two names equal so collide (Kafka's metric names).
pub(crate) fn normal_name(name: &str) -> String {
    name.replace('.', "_")
}
