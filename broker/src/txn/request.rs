//! What the transaction coordinator is asked and what it answers: one request and one
//! reply variant per Kafka API, with version differences already resolved by the
//! handlers in `api/`.

use sluice_protocol::error_code::ErrorCode;

use super::metadata::{PendingOffset, TxnState};
use crate::group::types::TopicPartition;

/// What the coordinator is asked; version differences are resolved by the handlers.
#[derive(Debug, Clone)]
pub enum TxnRequest {
    /// InitProducerId with a transactional id.
    InitProducerId {
        /// Transactional id.
        txn_id: String,
        /// `transaction.timeout.ms`.
        timeout_ms: i32,
        /// v3+: the producer's current id and epoch, if it has one (KIP-360).
        expected: Option<(i64, i16)>,
    },
    /// AddPartitionsToTxn for one transaction (`verify_only`: v4's check, no change).
    AddPartitions {
        /// Transactional id.
        txn_id: String,
        /// Producer id.
        producer_id: i64,
        /// Producer epoch.
        epoch: i16,
        /// Partitions, each existing (the handler answered the others).
        partitions: Vec<TopicPartition>,
        /// Only check that they are in the transaction.
        verify_only: bool,
    },
    /// AddOffsetsToTxn.
    AddOffsets {
        /// Transactional id.
        txn_id: String,
        /// Producer id.
        producer_id: i64,
        /// Producer epoch.
        epoch: i16,
        /// The consumer group.
        group: String,
    },
    /// TxnOffsetCommit, after the group coordinator accepted the member.
    TxnOffsetCommit {
        /// Transactional id.
        txn_id: String,
        /// Producer id.
        producer_id: i64,
        /// Producer epoch.
        epoch: i16,
        /// The consumer group.
        group: String,
        /// Offsets (their metadata already checked against the limit).
        offsets: Vec<(TopicPartition, PendingOffset)>,
    },
    /// EndTxn.
    EndTxn {
        /// Transactional id.
        txn_id: String,
        /// Producer id.
        producer_id: i64,
        /// Producer epoch.
        epoch: i16,
        /// Commit (else abort).
        commit: bool,
    },
    /// DescribeTransactions.
    Describe(Vec<String>),
    /// ListTransactions.
    List(ListFilter),
}

impl TxnRequest {
    /// The transactional id whose state this request would change (reads and the
    /// produce path's verification change none).
    pub(super) fn changes_txn(&self) -> Option<&str> {
        match self {
            TxnRequest::InitProducerId { txn_id, .. }
            | TxnRequest::AddPartitions { txn_id, verify_only: false, .. }
            | TxnRequest::AddOffsets { txn_id, .. }
            | TxnRequest::TxnOffsetCommit { txn_id, .. }
            | TxnRequest::EndTxn { txn_id, .. } => Some(txn_id),
            _ => None,
        }
    }
}

/// ListTransactions' filters.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// State names (empty: any).
    pub states: Vec<String>,
    /// Producer ids (empty: any).
    pub producer_ids: Vec<i64>,
    /// Only transactions running longer than this (ms; negative: any).
    pub duration_ms: i64,
}

/// One transaction as DescribeTransactions shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnDescription {
    /// Transactional id.
    pub txn_id: String,
    /// NONE, TRANSACTIONAL_ID_NOT_FOUND, COORDINATOR_LOAD_IN_PROGRESS.
    pub error: ErrorCode,
    /// State.
    pub state: TxnState,
    /// Timeout.
    pub timeout_ms: i32,
    /// Start (-1: none).
    pub start_ms: i64,
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Partitions, with `__consumer_offsets` 0 for a transaction that sends offsets.
    pub partitions: Vec<TopicPartition>,
}

/// One transaction as ListTransactions shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnListing {
    /// Transactional id.
    pub txn_id: String,
    /// Producer id.
    pub producer_id: i64,
    /// State.
    pub state: TxnState,
}

/// The answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnReply {
    /// InitProducerId: the id and epoch, or an error.
    InitProducerId(Result<(i64, i16), ErrorCode>),
    /// AddPartitionsToTxn: one error for the transaction.
    AddPartitions(ErrorCode),
    /// AddPartitionsToTxn `verify_only`: an error per partition, in request order.
    Verify(Vec<ErrorCode>),
    /// AddOffsetsToTxn, TxnOffsetCommit, EndTxn.
    Error(ErrorCode),
    /// DescribeTransactions, in request order.
    Describe(Vec<TxnDescription>),
    /// ListTransactions.
    List {
        /// NONE, or why nothing is listed.
        error: ErrorCode,
        /// The state filters that name no state (echoed as `unknown_state_filters`).
        unknown_states: Vec<String>,
        /// The transactions that match the filters.
        transactions: Vec<TxnListing>,
    },
}
