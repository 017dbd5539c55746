//! The plain types the coordinator's parts share: the tokens that tie replies and write
//! completions to what caused them, the topic partitions and committed offsets that
//! requests, records and groups carry, and a group's state and protocols. A leaf: it uses
//! no other module of the coordinator, so every other one can use it.

use std::sync::Arc;

use bytes::Bytes;

/// Identifies a request waiting for its reply.
pub type Token = u64;
/// Identifies a log write waiting for its completion.
pub type WriteId = u64;

/// A topic partition, ordered by topic then partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// Topic name, shared: a request names a topic once for all its partitions, and each
    /// of them must not cost a copy of the name.
    pub topic: Arc<str>,
    /// Partition index.
    pub partition: i32,
}

/// A committed offset as the group stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The offset of the next record to consume.
    pub offset: i64,
    /// Leader epoch of the consumed record (-1: unknown).
    pub leader_epoch: i32,
    /// Client metadata (empty when the client sent none).
    pub metadata: String,
    /// When it was committed.
    pub commit_timestamp: i64,
    /// Explicit expiry (OffsetCommit v2–v4 `retention_time_ms`), else group retention.
    pub expire_timestamp: Option<i64>,
}

/// Kafka's classic group states, named as DescribeGroups and ListGroups print them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members; the group may still hold committed offsets.
    Empty,
    /// Collecting JoinGroup requests for the next generation.
    PreparingRebalance,
    /// A generation is formed; waiting for the leader's assignment in SyncGroup.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Removed: only reported for groups that do not exist.
    Dead,
}

impl GroupState {
    /// Every state.
    pub const ALL: [GroupState; 5] = [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
    ];

    /// Kafka's name for the state.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A protocol a member supports (for consumers: an assignor) with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    /// Protocol name, e.g. `range`.
    pub name: String,
    /// Opaque metadata (for consumers: a `ConsumerProtocolSubscription`).
    pub metadata: Bytes,
}
