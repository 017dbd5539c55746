//! One transactional id's metadata (Kafka's `TransactionMetadata`) and its states: the
//! data that the state machine ([`super::state`]) changes and that
//! [`super::records`] stores.

use std::collections::{BTreeMap, BTreeSet};

use crate::group::types::TopicPartition;

/// Epoch of a producer that has none yet (Kafka's `RecordBatch.NO_PRODUCER_EPOCH`).
pub const NO_EPOCH: i16 = -1;
/// Id of no producer (Kafka's `RecordBatch.NO_PRODUCER_ID`).
pub const NO_PRODUCER_ID: i64 = -1;
/// Kafka's transaction states (`TransactionState`), with its names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnState {
    /// No transaction in progress (after InitProducerId).
    Empty,
    /// Partitions or offsets were added.
    Ongoing,
    /// EndTxn(commit) is durable; markers are being written.
    PrepareCommit,
    /// EndTxn(abort), a fence or a timeout is durable; markers are being written.
    PrepareAbort,
    /// The commit is complete.
    CompleteCommit,
    /// The abort is complete.
    CompleteAbort,
    /// An InitProducerId is fencing an ongoing transaction (in memory only: the record
    /// written is the PrepareAbort of the bumped epoch).
    PrepareEpochFence,
    /// The id expired and is being removed.
    Dead,
}

impl TxnState {
    /// Every state, in Kafka's order.
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::PrepareEpochFence,
        TxnState::Dead,
    ];

    /// Kafka's name of the state (DescribeTransactions, ListTransactions).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
            TxnState::Dead => "Dead",
        }
    }

    /// The state of Kafka's name.
    pub fn from_name(name: &str) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.name() == name)
    }

    pub(super) fn is_prepare(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }

    pub(super) fn is_complete_or_empty(self) -> bool {
        matches!(self, TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort)
    }
}

/// An offset sent with TxnOffsetCommit, applied to its group when the transaction
/// commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOffset {
    /// The offset of the next record to consume.
    pub offset: i64,
    /// Leader epoch (-1: unknown).
    pub leader_epoch: i32,
    /// Client metadata.
    pub metadata: String,
}

/// One transactional id's metadata (Kafka's `TransactionMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    /// The transactional id.
    pub id: String,
    /// Current producer id.
    pub producer_id: i64,
    /// The producer id before the last rotation (epoch exhaustion), else -1.
    pub prev_producer_id: i64,
    /// Current producer epoch.
    pub producer_epoch: i16,
    /// The epoch before the last bump by InitProducerId (KIP-360 retries), else -1.
    pub last_producer_epoch: i16,
    /// `transaction.timeout.ms` the producer asked for.
    pub timeout_ms: i32,
    /// State.
    pub state: TxnState,
    /// Partitions in the transaction.
    pub partitions: BTreeSet<TopicPartition>,
    /// Offsets sent with the transaction, by group (a group added by AddOffsetsToTxn is
    /// here, possibly without offsets).
    pub offsets: BTreeMap<String, BTreeMap<TopicPartition, PendingOffset>>,
    /// When the transaction started (-1: none yet).
    pub start_ms: i64,
    /// When the metadata last changed.
    pub last_update_ms: i64,
}

impl TxnMetadata {
    pub(super) fn offsets_count(&self) -> usize {
        self.offsets.values().map(BTreeMap::len).sum()
    }

    pub(super) fn metadata_bytes(&self) -> usize {
        self.offsets.values().flat_map(|g| g.values()).map(|o| o.metadata.len()).sum()
    }
}

/// Kafka's `isEpochExhausted`: one epoch is kept for fencing.
pub fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}
