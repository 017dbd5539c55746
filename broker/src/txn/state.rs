//! The transaction coordinator as a sans-I/O state machine: the driver feeds it
//! [`Input`]s with the current time (`step(input, now)`) and carries out the [`Output`]s
//! it returns: replies (by [`Token`]), records to append to `__transaction_state`
//! ([`Output::Write`], answered by [`Input::Written`]), completions to run (markers and
//! offsets, [`Output::Complete`], answered by [`Input::Completed`]), periodic timers and
//! updates of the produce path's verification index ([`Output::Index`]).
//!
//! It answers the [`super::request`] types. This file holds the machine, its inputs and
//! outputs and the dispatch of requests; the behaviour is split by concern:
//! `init_producer_id` (InitProducerId and epochs), `additions` (AddPartitionsToTxn,
//! AddOffsetsToTxn, TxnOffsetCommit), `completion` (EndTxn, markers and offsets,
//! Complete*), `expiry` (timed-out transactions, idle ids), `transition` (the one write in
//! flight per id and its application), `parking` (requests waiting for a transition) and
//! `queries` (DescribeTransactions, ListTransactions).
//!
//! Invariants (Kafka's `TransactionMetadata`):
//! - A transactional id has at most one transition in flight (`pending`); any request
//!   for it meanwhile is answered CONCURRENT_TRANSACTIONS, so writes of one id complete in
//!   order and memory changes only once its record is in the log.
//! - A Prepare{Commit,Abort} state is durable before EndTxn is answered, and is always
//!   followed by a completion (markers, offsets) and then Complete{Commit,Abort}, also
//!   after a restart (the loader hands every Prepare* state back to the driver).
//! - Fencing (a re-init over an ongoing transaction, a timed-out transaction) aborts
//!   with the epoch bumped, so the zombie's later writes carry an old epoch.
//! - A request that finds its id mid-transition waits for the transition to end (one per
//!   id, at most [`PARK_MAX_MS`]) instead of being answered CONCURRENT_TRANSACTIONS at
//!   once: a producer's next AddPartitionsToTxn nearly always arrives while the previous
//!   transaction's markers are written, and a client's retry backoff (Java's 20 ms) would
//!   otherwise cost far more than the markers do.
//!
//! The one input that is not sans-I/O is the producer id source ([`ProducerIdSource`]):
//! the broker's allocator syncs a block end once every thousand ids, which the driver's
//! own thread can afford; tests use a counter.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use sluice_protocol::error_code::ErrorCode;

use super::metadata::{
    epoch_exhausted, PendingOffset, TxnMetadata, TxnState, NO_EPOCH, NO_PRODUCER_ID,
};
use super::records::{self, RecordError, TxnValue};
use super::request::{TxnReply, TxnRequest};
use crate::group::types::TopicPartition;

mod additions;
mod completion;
mod expiry;
mod init_producer_id;
mod parking;
mod queries;
mod transition;

use parking::Parked;
use queries::not_found;
use transition::{Pending, Then};

/// Identifies a request waiting for its reply.
pub type Token = u64;
/// Identifies a log write waiting for its completion.
pub type WriteId = u64;

/// Partitions one transaction may hold: bounds its record (the broker cannot have many
/// more partitions than this serve a single producer usefully).
pub const MAX_TXN_PARTITIONS: usize = 16_384;
/// Pending offsets one transaction may hold (all groups together).
pub const MAX_TXN_OFFSETS: usize = 16_384;
/// Groups one transaction may send offsets for.
pub const MAX_TXN_GROUPS: usize = 64;
/// Bytes of offset metadata one transaction may hold in all.
pub const MAX_TXN_METADATA_BYTES: usize = 1 << 20;
/// How long a request may wait for its id's transition to end before it is answered
/// CONCURRENT_TRANSACTIONS: markers take well under this, a partition whose marker write
/// keeps failing should not hold the client much longer than its own retry would.
pub const PARK_MAX_MS: i64 = 100;

/// Where new producer ids come from.
pub trait ProducerIdSource: Send + Sync + std::fmt::Debug {
    /// An id never handed out before.
    ///
    /// # Errors
    /// The Kafka error to answer when none can be had.
    fn next_id(&self) -> Result<i64, ErrorCode>;
}

/// Settings of the coordinator (Kafka's broker property names).
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_interval_ms: i64,
    /// `transactional.id.expiration.ms`.
    pub id_expiration_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub remove_expired_interval_ms: i64,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            max_timeout_ms: 900_000,
            abort_interval_ms: 10_000,
            id_expiration_ms: 7 * 24 * 3600 * 1000,
            remove_expired_interval_ms: 3_600_000,
            offset_metadata_max_bytes: 4096,
        }
    }
}

/// A periodic timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKey {
    /// Abort ongoing transactions past their timeout; retry failed completions.
    AbortTimedOut,
    /// Remove ids idle past `transactional.id.expiration.ms`.
    ExpireIds,
    /// Answer the requests that waited [`PARK_MAX_MS`] for their id's transition.
    Parked,
}

/// One record of `__transaction_state`: a transactional id and its metadata (`None`: a
/// tombstone).
pub use crate::internal_log::LogRecord;

/// What to do for a transaction whose Prepare* state is durable: write a marker to every
/// partition, apply (commit) or drop (abort) its offsets, then report
/// [`Input::Completed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// Transactional id.
    pub txn_id: String,
    /// Producer id the markers carry.
    pub producer_id: i64,
    /// Producer epoch the markers carry.
    pub producer_epoch: i16,
    /// Commit (else abort).
    pub commit: bool,
    /// Partitions to write a marker to.
    pub partitions: Vec<TopicPartition>,
    /// Offsets to commit to each group (empty for an abort).
    pub offsets: Vec<(String, Vec<(TopicPartition, PendingOffset)>)>,
}

/// What the produce path's verification index holds for a producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyEntry {
    /// Current epoch.
    pub epoch: i16,
    /// Its state, or the state a transition in flight leads to.
    pub state: TxnState,
    /// Whether a transition is in flight.
    pub pending: bool,
    /// Partitions of the ongoing transaction.
    pub partitions: Arc<BTreeSet<TopicPartition>>,
    /// Group offsets pending in the transaction (until it completes).
    pub offsets: Arc<Vec<(String, TopicPartition)>>,
}

/// A change of the verification index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexUpdate {
    /// The producer id's entry.
    Set {
        /// Producer id.
        producer_id: i64,
        /// Its entry.
        entry: VerifyEntry,
    },
    /// The producer id has no transaction any more.
    Remove(i64),
}

/// What the machine is told.
#[derive(Debug)]
pub enum Input {
    /// A request, with the token of its reply.
    Request {
        /// Where the reply goes ([`Output::Reply`]).
        token: Token,
        /// The request.
        request: TxnRequest,
    },
    /// A timer fired.
    Timer(TimerKey),
    /// A write finished.
    Written {
        /// The write ([`Output::Write`]).
        id: WriteId,
        /// Whether it is in the log.
        result: Result<(), ErrorCode>,
    },
    /// A completion's markers are written and offsets applied.
    Completed {
        /// Transactional id.
        txn_id: String,
        /// Producer id of the completion.
        producer_id: i64,
        /// Producer epoch of the completion.
        producer_epoch: i16,
    },
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send the reply of this token.
    Reply {
        /// The request's token ([`Input::Request`]).
        token: Token,
        /// The reply.
        reply: TxnReply,
    },
    /// Append this record, then report [`Input::Written`].
    Write {
        /// The write's id.
        id: WriteId,
        /// The record.
        record: LogRecord,
    },
    /// Run this completion, then report [`Input::Completed`].
    Complete(Completion),
    /// Fire this timer at this time, replacing an earlier deadline.
    SetTimer {
        /// The timer.
        timer: TimerKey,
        /// When (ms since the epoch).
        at_ms: i64,
    },
    /// Update the verification index.
    Index(IndexUpdate),
}

/// The transaction coordinator's state.
#[derive(Debug)]
pub struct TxnMachine {
    config: TxnConfig,
    ids: Arc<dyn ProducerIdSource>,
    txns: HashMap<String, TxnMetadata>,
    /// Transactional ids with a write in flight, and the write.
    in_flight: HashMap<String, WriteId>,
    writes: HashMap<WriteId, Pending>,
    /// Transactional ids whose completion is running (markers being written).
    completing: HashMap<String, (i64, i16)>,
    /// Prepare* transactions whose completion ended but whose Complete* write failed.
    retry_complete: BTreeSet<String>,
    /// At most one request per transactional id waiting for its transition to end.
    parked: HashMap<String, Parked>,
    next_write: WriteId,
    loading: bool,
    out: Vec<Output>,
}

impl TxnMachine {
    /// A coordinator that is loading (every request waits for [`Self::finish_loading`]).
    pub fn new(config: TxnConfig, ids: Arc<dyn ProducerIdSource>) -> TxnMachine {
        TxnMachine {
            config,
            ids,
            txns: HashMap::new(),
            in_flight: HashMap::new(),
            writes: HashMap::new(),
            completing: HashMap::new(),
            retry_complete: BTreeSet::new(),
            parked: HashMap::new(),
            next_write: 0,
            loading: true,
            out: Vec::new(),
        }
    }

    /// Applies one record read back from the log (later records win).
    ///
    /// # Errors
    /// The record does not decode.
    pub fn load(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), RecordError> {
        let id = records::decode_key(key)?;
        match value {
            None => {
                self.txns.remove(&id);
            }
            Some(v) => {
                let value = records::decode_value(v)?;
                self.txns.insert(id.clone(), value.into_metadata(id));
            }
        }
        Ok(())
    }

    /// Ends loading: arms the timers, fills the verification index and restarts the
    /// completion of every transaction left in a Prepare* state.
    pub fn finish_loading(&mut self, now: i64) -> Vec<Output> {
        self.loading = false;
        self.out.push(Output::SetTimer {
            timer: TimerKey::AbortTimedOut,
            at_ms: now.saturating_add(self.config.abort_interval_ms),
        });
        self.out.push(Output::SetTimer {
            timer: TimerKey::ExpireIds,
            at_ms: now.saturating_add(self.config.remove_expired_interval_ms),
        });
        let mut ids: Vec<String> = self.txns.keys().cloned().collect();
        ids.sort();
        for id in ids {
            self.index(&id);
            if self.txns[&id].state.is_prepare() {
                self.start_completion(&id);
            }
        }
        std::mem::take(&mut self.out)
    }

    /// Whether the log is still loading.
    pub fn is_loading(&self) -> bool {
        self.loading
    }

    /// Writes in flight.
    pub fn writes_in_flight(&self) -> usize {
        self.writes.len()
    }

    /// Transactional ids kept (the live records of the log).
    pub fn live_records(&self) -> usize {
        self.txns.len()
    }

    /// The metadata of a transactional id.
    pub fn txn(&self, id: &str) -> Option<&TxnMetadata> {
        self.txns.get(id)
    }

    /// Whether `group` has offsets pending in an ongoing or completing transaction on
    /// `partition` (OffsetFetch's `require_stable`).
    pub fn has_pending_offsets(&self, group: &str, partition: &TopicPartition) -> bool {
        self.txns.values().any(|t| t.offsets.get(group).is_some_and(|o| o.contains_key(partition)))
    }

    /// Feeds one input.
    pub fn step(&mut self, input: Input, now: i64) -> Vec<Output> {
        match input {
            Input::Request { token, request } => self.request(token, request, now),
            Input::Timer(TimerKey::AbortTimedOut) => self.abort_timed_out(now),
            Input::Timer(TimerKey::ExpireIds) => self.expire_ids(now),
            Input::Timer(TimerKey::Parked) => self.answer_parked(now),
            Input::Written { id, result } => self.written(id, result, now),
            Input::Completed { txn_id, producer_id, producer_epoch } => {
                self.completed(&txn_id, producer_id, producer_epoch, now)
            }
        }
        std::mem::take(&mut self.out)
    }

    fn reply(&mut self, token: Token, reply: TxnReply) {
        self.out.push(Output::Reply { token, reply });
    }

    fn request(&mut self, token: Token, request: TxnRequest, now: i64) {
        // Kafka checks the arguments of InitProducerId before it looks the id up, so a
        // bad timeout is answered as such even while loading.
        let bad_init = matches!(&request, TxnRequest::InitProducerId { txn_id, timeout_ms, .. }
            if txn_id.is_empty() || *timeout_ms <= 0 || *timeout_ms > self.config.max_timeout_ms);
        if self.loading && !bad_init {
            let reply = refusal(request, ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
            return self.reply(token, reply);
        }
        if let Some(txn_id) = request.changes_txn().filter(|id| self.transitioning(id)) {
            if !self.parked.contains_key(txn_id) {
                return self.park(token, request, now);
            }
        }
        match request {
            TxnRequest::InitProducerId { txn_id, timeout_ms, expected } => {
                self.init_producer_id(token, txn_id, timeout_ms, expected, now)
            }
            TxnRequest::AddPartitions { txn_id, producer_id, epoch, partitions, verify_only } => {
                if verify_only {
                    let r = self.verify(&txn_id, producer_id, epoch, &partitions);
                    self.reply(token, TxnReply::Verify(r));
                } else {
                    self.add_partitions(token, &txn_id, producer_id, epoch, partitions, now);
                }
            }
            TxnRequest::AddOffsets { txn_id, producer_id, epoch, group } => {
                self.add_offsets(token, &txn_id, producer_id, epoch, group, now)
            }
            TxnRequest::TxnOffsetCommit { txn_id, producer_id, epoch, group, offsets } => {
                self.txn_offset_commit(token, &txn_id, producer_id, epoch, group, offsets, now)
            }
            TxnRequest::EndTxn { txn_id, producer_id, epoch, commit } => {
                self.end_txn(Some(token), &txn_id, producer_id, epoch, commit, true, now)
            }
            TxnRequest::Describe(ids) => {
                let d = ids.into_iter().map(|id| self.describe(id)).collect();
                self.reply(token, TxnReply::Describe(d));
            }
            TxnRequest::List(filter) => {
                let (unknown_states, transactions) = self.list(&filter, now);
                let reply = TxnReply::List { error: ErrorCode::NONE, unknown_states, transactions };
                self.reply(token, reply);
            }
        }
    }

    /// Publishes the verification entry of `txn_id`'s producer.
    fn index(&mut self, txn_id: &str) {
        let Some(t) = self.txns.get(txn_id) else { return };
        let pending = self.in_flight.contains_key(txn_id) || self.completing.contains_key(txn_id);
        let entry = VerifyEntry {
            epoch: t.producer_epoch,
            state: t.state,
            pending,
            partitions: Arc::new(if t.state == TxnState::Ongoing {
                t.partitions.clone()
            } else {
                BTreeSet::new()
            }),
            offsets: Arc::new(
                t.offsets
                    .iter()
                    .flat_map(|(g, o)| o.keys().map(move |tp| (g.clone(), tp.clone())))
                    .collect(),
            ),
        };
        self.out.push(Output::Index(IndexUpdate::Set { producer_id: t.producer_id, entry }));
    }

    fn busy(&self, txn_id: &str) -> bool {
        self.in_flight.contains_key(txn_id) || self.completing.contains_key(txn_id)
    }

    /// Whether `txn_id` has a write or a completion running, or is Prepare* (its
    /// completion about to start again): a request for it now could only be answered
    /// CONCURRENT_TRANSACTIONS.
    fn transitioning(&self, txn_id: &str) -> bool {
        self.busy(txn_id) || self.txns.get(txn_id).is_some_and(|t| t.state.is_prepare())
    }
}

/// The answer to `request` that only says `e`.
fn refusal(request: TxnRequest, e: ErrorCode) -> TxnReply {
    match request {
        TxnRequest::InitProducerId { .. } => TxnReply::InitProducerId(Err(e)),
        TxnRequest::AddPartitions { verify_only: true, partitions, .. } => {
            TxnReply::Verify(vec![e; partitions.len()])
        }
        TxnRequest::AddPartitions { .. } => TxnReply::AddPartitions(e),
        TxnRequest::Describe(ids) => {
            TxnReply::Describe(ids.into_iter().map(|id| not_found(id, e)).collect())
        }
        TxnRequest::List(_) => {
            TxnReply::List { error: e, unknown_states: Vec::new(), transactions: Vec::new() }
        }
        _ => TxnReply::Error(e),
    }
}

fn record(txn_id: &str, t: Option<&TxnMetadata>) -> LogRecord {
    LogRecord {
        key: records::encode_key(txn_id),
        value: t.map(|t| records::encode_value(&TxnValue::of(t))),
    }
}
