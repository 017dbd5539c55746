//! The transaction coordinator as a sans-I/O state machine: the driver feeds it
//! [`Input`]s with the current time (`step(input, now)`) and carries out the [`Output`]s
//! it returns: replies (by [`Token`]), records to append to `__transaction_state`
//! ([`Output::Write`], answered by [`Input::Written`]), completions to run (markers and
//! offsets, [`Output::Complete`], answered by [`Input::Completed`]), periodic timers and
//! updates of the produce path's verification index ([`Output::Index`]).
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

pub use super::metadata::{
    epoch_exhausted, PendingOffset, TopicPartition, TxnMetadata, TxnState, NO_EPOCH, NO_PRODUCER_ID,
};
use super::records::{self, RecordError, TxnValue};

mod parking;
mod queries;

use parking::Parked;
use queries::not_found;

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
    fn changes_txn(&self) -> Option<&str> {
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

/// What to do when a transition's write completes.
#[derive(Debug)]
enum Then {
    /// Answer InitProducerId with the new id and epoch.
    Init(Token),
    /// A fence's PrepareAbort: answer the InitProducerId CONCURRENT_TRANSACTIONS, then
    /// complete.
    Fence(Token),
    /// Answer AddPartitionsToTxn.
    Added(Token),
    /// Answer NONE (AddOffsets, TxnOffsetCommit).
    Ok(Token),
    /// A Prepare* from EndTxn (answered NONE) or from the timeout (no one waits): then
    /// complete.
    Prepare(Option<Token>),
    /// The Complete* record: nothing waits.
    Complete,
    /// An expired id's tombstone.
    Remove,
}

#[derive(Debug)]
struct Pending {
    txn_id: String,
    /// The metadata once written (`None`: the id is removed).
    next: Option<TxnMetadata>,
    then: Then,
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

    /// Every live record, for a compaction.
    pub fn snapshot(&self) -> Vec<LogRecord> {
        let mut ids: Vec<&String> = self.txns.keys().collect();
        ids.sort();
        ids.into_iter().map(|id| record(id, Some(&self.txns[id]))).collect()
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

    /// Issues the write of `next` (or a tombstone) for `txn_id`.
    fn issue(&mut self, txn_id: &str, next: Option<TxnMetadata>, then: Then) {
        let id = self.next_write;
        self.next_write += 1;
        let record = record(txn_id, next.as_ref());
        self.in_flight.insert(txn_id.to_owned(), id);
        self.writes.insert(id, Pending { txn_id: txn_id.to_owned(), next, then });
        self.out.push(Output::Write { id, record });
        self.index(txn_id);
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

    fn init_producer_id(
        &mut self,
        token: Token,
        txn_id: String,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        now: i64,
    ) {
        let fail =
            |c: &mut TxnMachine, e: ErrorCode| c.reply(token, TxnReply::InitProducerId(Err(e)));
        if txn_id.is_empty() {
            return fail(self, ErrorCode::INVALID_REQUEST);
        }
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return fail(self, ErrorCode::INVALID_TRANSACTION_TIMEOUT);
        }
        if !self.txns.contains_key(&txn_id) {
            let producer_id = match self.ids.next_id() {
                Ok(id) => id,
                Err(e) => return fail(self, e),
            };
            // Kafka's fresh metadata: epoch -1, so the first bump below makes it 0.
            let fresh = TxnMetadata {
                id: txn_id.clone(),
                producer_id,
                prev_producer_id: NO_PRODUCER_ID,
                producer_epoch: NO_EPOCH,
                last_producer_epoch: NO_EPOCH,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                offsets: BTreeMap::new(),
                start_ms: -1,
                last_update_ms: now,
            };
            self.txns.insert(txn_id.clone(), fresh);
        }
        if self.busy(&txn_id) {
            return fail(self, ErrorCode::CONCURRENT_TRANSACTIONS);
        }
        let t = self.txns[&txn_id].clone();
        if let Some(e) = expected {
            // Kafka's `isValidProducerId`.
            let valid = t.producer_epoch == NO_EPOCH
                || e.0 == t.producer_id
                || (e.0 == t.prev_producer_id && epoch_exhausted(e.1));
            if !valid {
                return fail(self, ErrorCode::PRODUCER_FENCED);
            }
        }
        match t.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                fail(self, ErrorCode::CONCURRENT_TRANSACTIONS)
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let mut next = t.clone();
                if epoch_exhausted(t.producer_epoch)
                    && expected.is_none_or(|e| e.1 == t.producer_epoch)
                {
                    let producer_id = match self.ids.next_id() {
                        Ok(id) => id,
                        Err(e) => return fail(self, e),
                    };
                    next.prev_producer_id = t.producer_id;
                    next.producer_id = producer_id;
                    next.producer_epoch = 0;
                    next.last_producer_epoch =
                        if expected.is_some() { t.producer_epoch } else { NO_EPOCH };
                } else {
                    match expected.map(|e| e.1) {
                        None => {
                            next.producer_epoch = t.producer_epoch + 1;
                            next.last_producer_epoch = NO_EPOCH;
                        }
                        Some(e) if t.producer_epoch == NO_EPOCH || e == t.producer_epoch => {
                            next.producer_epoch = t.producer_epoch + 1;
                            next.last_producer_epoch = t.producer_epoch;
                        }
                        // A retry of a bump whose answer was lost: the current epoch again.
                        Some(e) if e == t.last_producer_epoch => {}
                        Some(_) => return fail(self, ErrorCode::PRODUCER_FENCED),
                    }
                }
                next.timeout_ms = timeout_ms;
                next.state = TxnState::Empty;
                next.partitions.clear();
                next.offsets.clear();
                next.start_ms = -1;
                next.last_update_ms = now;
                self.issue(&txn_id, Some(next), Then::Init(token));
            }
            TxnState::Ongoing => {
                // Abort the zombie's transaction with the epoch bumped; the producer's
                // retry then bumps it once more (or rotates the id).
                let mut next = t.clone();
                if t.producer_epoch < i16::MAX {
                    next.producer_epoch = t.producer_epoch + 1;
                }
                next.last_producer_epoch = NO_EPOCH;
                next.state = TxnState::PrepareAbort;
                next.last_update_ms = now;
                self.issue(&txn_id, Some(next), Then::Fence(token));
            }
            TxnState::PrepareEpochFence | TxnState::Dead => {
                fail(self, ErrorCode::CONCURRENT_TRANSACTIONS)
            }
        }
    }

    /// The checks AddPartitionsToTxn, AddOffsetsToTxn and TxnOffsetCommit share.
    fn check_producer(&self, txn_id: &str, producer_id: i64, epoch: i16) -> Result<(), ErrorCode> {
        if txn_id.is_empty() {
            return Err(ErrorCode::INVALID_REQUEST);
        }
        let Some(t) = self.txns.get(txn_id) else {
            return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
        };
        if t.producer_id != producer_id {
            return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
        }
        if t.producer_epoch != epoch {
            return Err(ErrorCode::PRODUCER_FENCED);
        }
        if self.busy(txn_id) || t.state.is_prepare() {
            return Err(ErrorCode::CONCURRENT_TRANSACTIONS);
        }
        Ok(())
    }

    fn verify(
        &self,
        txn_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TopicPartition],
    ) -> Vec<ErrorCode> {
        if let Err(e) = self.check_producer(txn_id, producer_id, epoch) {
            return vec![e; partitions.len()];
        }
        let t = &self.txns[txn_id];
        partitions
            .iter()
            .map(|p| {
                if t.state == TxnState::Ongoing && t.partitions.contains(p) {
                    ErrorCode::NONE
                } else {
                    ErrorCode::INVALID_TXN_STATE
                }
            })
            .collect()
    }

    /// Kafka's `prepareAddPartitions`: from Empty or Complete* a new transaction starts.
    fn begin_or_continue(t: &TxnMetadata, now: i64) -> TxnMetadata {
        let mut next = t.clone();
        if t.state != TxnState::Ongoing {
            next.partitions.clear();
            next.offsets.clear();
            next.start_ms = now;
        }
        next.state = TxnState::Ongoing;
        next.last_update_ms = now;
        next
    }

    fn add_partitions(
        &mut self,
        token: Token,
        txn_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<TopicPartition>,
        now: i64,
    ) {
        if let Err(e) = self.check_producer(txn_id, producer_id, epoch) {
            return self.reply(token, TxnReply::AddPartitions(e));
        }
        let t = &self.txns[txn_id];
        if t.state == TxnState::Ongoing && partitions.iter().all(|p| t.partitions.contains(p)) {
            return self.reply(token, TxnReply::AddPartitions(ErrorCode::NONE));
        }
        let mut next = Self::begin_or_continue(t, now);
        next.partitions.extend(partitions);
        if next.partitions.len() > MAX_TXN_PARTITIONS {
            return self.reply(token, TxnReply::AddPartitions(ErrorCode::INVALID_REQUEST));
        }
        self.issue(txn_id, Some(next), Then::Added(token));
    }

    fn add_offsets(
        &mut self,
        token: Token,
        txn_id: &str,
        producer_id: i64,
        epoch: i16,
        group: String,
        now: i64,
    ) {
        if let Err(e) = self.check_producer(txn_id, producer_id, epoch) {
            return self.reply(token, TxnReply::Error(e));
        }
        if group.is_empty() {
            return self.reply(token, TxnReply::Error(ErrorCode::INVALID_GROUP_ID));
        }
        let t = &self.txns[txn_id];
        if t.state == TxnState::Ongoing && t.offsets.contains_key(&group) {
            return self.reply(token, TxnReply::Error(ErrorCode::NONE));
        }
        let mut next = Self::begin_or_continue(t, now);
        next.offsets.insert(group, BTreeMap::new());
        if next.offsets.len() > MAX_TXN_GROUPS {
            return self.reply(token, TxnReply::Error(ErrorCode::INVALID_REQUEST));
        }
        self.issue(txn_id, Some(next), Then::Ok(token));
    }

    #[allow(clippy::too_many_arguments)]
    fn txn_offset_commit(
        &mut self,
        token: Token,
        txn_id: &str,
        producer_id: i64,
        epoch: i16,
        group: String,
        offsets: Vec<(TopicPartition, PendingOffset)>,
        now: i64,
    ) {
        let check = self.check_producer(txn_id, producer_id, epoch).map_err(|e| {
            // What Kafka's log layer answers for a batch of another epoch in
            // `__consumer_offsets`.
            if e == ErrorCode::PRODUCER_FENCED {
                ErrorCode::INVALID_PRODUCER_EPOCH
            } else {
                e
            }
        });
        if let Err(e) = check {
            return self.reply(token, TxnReply::Error(e));
        }
        let t = &self.txns[txn_id];
        if t.state != TxnState::Ongoing || !t.offsets.contains_key(&group) {
            // The group was not added by AddOffsetsToTxn (KIP-890 part 1's verification).
            return self.reply(token, TxnReply::Error(ErrorCode::INVALID_TXN_STATE));
        }
        let mut next = t.clone();
        next.last_update_ms = now;
        let g = next.offsets.entry(group).or_default();
        for (tp, o) in offsets {
            if o.metadata.len() > self.config.offset_metadata_max_bytes {
                return self.reply(token, TxnReply::Error(ErrorCode::OFFSET_METADATA_TOO_LARGE));
            }
            g.insert(tp, o);
        }
        if next.offsets_count() > MAX_TXN_OFFSETS {
            return self.reply(token, TxnReply::Error(ErrorCode::INVALID_REQUEST));
        }
        if next.metadata_bytes() > MAX_TXN_METADATA_BYTES {
            return self.reply(token, TxnReply::Error(ErrorCode::OFFSET_METADATA_TOO_LARGE));
        }
        self.issue(txn_id, Some(next), Then::Ok(token));
    }

    /// Kafka's `endTransaction`; `from_client` false for the coordinator's own aborts.
    #[allow(clippy::too_many_arguments)]
    fn end_txn(
        &mut self,
        token: Option<Token>,
        txn_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        from_client: bool,
        now: i64,
    ) {
        let answer = |c: &mut TxnMachine, e: ErrorCode| {
            if let Some(token) = token {
                c.reply(token, TxnReply::Error(e));
            }
        };
        if txn_id.is_empty() {
            return answer(self, ErrorCode::INVALID_REQUEST);
        }
        let Some(t) = self.txns.get(txn_id) else {
            return answer(self, ErrorCode::INVALID_PRODUCER_ID_MAPPING);
        };
        if t.producer_id != producer_id {
            return answer(self, ErrorCode::INVALID_PRODUCER_ID_MAPPING);
        }
        // Strict equality for clients: they never bump the epoch with EndTxn.
        if (from_client && epoch != t.producer_epoch) || epoch < t.producer_epoch {
            return answer(self, ErrorCode::PRODUCER_FENCED);
        }
        if self.in_flight.contains_key(txn_id) {
            return answer(self, ErrorCode::CONCURRENT_TRANSACTIONS);
        }
        let same = |s: TxnState| {
            matches!(
                (s, commit),
                (TxnState::PrepareCommit | TxnState::CompleteCommit, true)
                    | (TxnState::PrepareAbort | TxnState::CompleteAbort, false)
            )
        };
        match t.state {
            TxnState::Ongoing => {
                let mut next = t.clone();
                if epoch != t.producer_epoch {
                    next.producer_epoch = epoch;
                    next.last_producer_epoch = NO_EPOCH;
                }
                next.state = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
                next.last_update_ms = now;
                self.issue(txn_id, Some(next), Then::Prepare(token));
            }
            TxnState::CompleteCommit | TxnState::CompleteAbort if same(t.state) => {
                answer(self, ErrorCode::NONE)
            }
            // A retry while markers are written: the client retries until it completes.
            TxnState::PrepareCommit | TxnState::PrepareAbort if same(t.state) => {
                answer(self, ErrorCode::CONCURRENT_TRANSACTIONS)
            }
            _ => answer(self, ErrorCode::INVALID_TXN_STATE),
        }
    }

    fn written(&mut self, id: WriteId, result: Result<(), ErrorCode>, now: i64) {
        let Some(p) = self.writes.remove(&id) else { return };
        let txn_id = p.txn_id.clone();
        self.apply_written(p, id, result);
        self.unpark(&txn_id, now);
    }

    fn apply_written(&mut self, p: Pending, id: WriteId, result: Result<(), ErrorCode>) {
        if self.in_flight.get(&p.txn_id) == Some(&id) {
            self.in_flight.remove(&p.txn_id);
        }
        if let Err(e) = result {
            tracing::warn!(txn = %p.txn_id, error = ?e, "__transaction_state write failed");
            // Kafka answers a failed append of the coordinator as an outage the client
            // retries.
            let e = ErrorCode::COORDINATOR_NOT_AVAILABLE;
            match p.then {
                Then::Init(token) | Then::Fence(token) => {
                    self.reply(token, TxnReply::InitProducerId(Err(e)))
                }
                Then::Added(token) => self.reply(token, TxnReply::AddPartitions(e)),
                Then::Ok(token) | Then::Prepare(Some(token)) => {
                    self.reply(token, TxnReply::Error(e))
                }
                Then::Complete => {
                    self.retry_complete.insert(p.txn_id.clone());
                }
                Then::Prepare(None) | Then::Remove => {}
            }
            // A fresh id that was never written is forgotten again, index entry and all.
            if self.txns.get(&p.txn_id).is_some_and(|t| t.producer_epoch == NO_EPOCH) {
                if let Some(t) = self.txns.remove(&p.txn_id) {
                    self.out.push(Output::Index(IndexUpdate::Remove(t.producer_id)));
                }
            }
            self.index(&p.txn_id);
            return;
        }
        let old_pid = self.txns.get(&p.txn_id).map(|t| t.producer_id);
        match p.next {
            Some(next) => {
                let pid = next.producer_id;
                self.txns.insert(p.txn_id.clone(), next);
                if let Some(old) = old_pid.filter(|&old| old != pid) {
                    self.out.push(Output::Index(IndexUpdate::Remove(old)));
                }
            }
            None => {
                self.txns.remove(&p.txn_id);
                if let Some(old) = old_pid {
                    self.out.push(Output::Index(IndexUpdate::Remove(old)));
                }
            }
        }
        match p.then {
            Then::Init(token) => {
                let t = &self.txns[&p.txn_id];
                let answer = Ok((t.producer_id, t.producer_epoch));
                self.reply(token, TxnReply::InitProducerId(answer));
            }
            Then::Fence(token) => {
                self.reply(
                    token,
                    TxnReply::InitProducerId(Err(ErrorCode::CONCURRENT_TRANSACTIONS)),
                );
                self.start_completion(&p.txn_id);
            }
            Then::Added(token) => self.reply(token, TxnReply::AddPartitions(ErrorCode::NONE)),
            Then::Ok(token) => self.reply(token, TxnReply::Error(ErrorCode::NONE)),
            Then::Prepare(token) => {
                if let Some(token) = token {
                    self.reply(token, TxnReply::Error(ErrorCode::NONE));
                }
                self.start_completion(&p.txn_id);
            }
            Then::Complete | Then::Remove => {}
        }
        self.index(&p.txn_id);
    }

    /// Whether `txn_id` is being removed (its tombstone is in flight): Kafka's Dead.
    fn dead(&self, txn_id: &str) -> bool {
        self.in_flight
            .get(txn_id)
            .and_then(|w| self.writes.get(w))
            .is_some_and(|p| p.next.is_none())
    }

    fn start_completion(&mut self, txn_id: &str) {
        let t = &self.txns[txn_id];
        let commit = t.state == TxnState::PrepareCommit;
        let offsets = if commit {
            t.offsets
                .iter()
                .filter(|(_, o)| !o.is_empty())
                .map(|(g, o)| {
                    (g.clone(), o.iter().map(|(tp, o)| (tp.clone(), o.clone())).collect())
                })
                .collect()
        } else {
            Vec::new()
        };
        let c = Completion {
            txn_id: txn_id.to_owned(),
            producer_id: t.producer_id,
            producer_epoch: t.producer_epoch,
            commit,
            partitions: t.partitions.iter().cloned().collect(),
            offsets,
        };
        self.completing.insert(txn_id.to_owned(), (t.producer_id, t.producer_epoch));
        self.out.push(Output::Complete(c));
    }

    fn completed(&mut self, txn_id: &str, producer_id: i64, epoch: i16, now: i64) {
        if self.completing.get(txn_id) != Some(&(producer_id, epoch)) {
            return;
        }
        self.completing.remove(txn_id);
        self.write_complete(txn_id, now);
        self.unpark(txn_id, now);
    }

    fn write_complete(&mut self, txn_id: &str, now: i64) {
        let Some(t) = self.txns.get(txn_id) else { return };
        if !t.state.is_prepare() {
            return;
        }
        let mut next = t.clone();
        next.state = if t.state == TxnState::PrepareCommit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        next.partitions.clear();
        next.offsets.clear();
        next.last_update_ms = now;
        self.issue(txn_id, Some(next), Then::Complete);
    }

    fn abort_timed_out(&mut self, now: i64) {
        self.out.push(Output::SetTimer {
            timer: TimerKey::AbortTimedOut,
            at_ms: now.saturating_add(self.config.abort_interval_ms),
        });
        for id in std::mem::take(&mut self.retry_complete) {
            if !self.busy(&id) {
                self.write_complete(&id, now);
            }
        }
        let mut expired: Vec<(String, i64, i16)> = self
            .txns
            .values()
            .filter(|t| {
                t.state == TxnState::Ongoing
                    && t.start_ms.saturating_add(i64::from(t.timeout_ms)) < now
                    && !self.busy(&t.id)
            })
            .map(|t| (t.id.clone(), t.producer_id, t.producer_epoch))
            .collect();
        expired.sort();
        for (id, producer_id, epoch) in expired {
            tracing::info!(txn = %id, producer_id, epoch, "aborting a timed-out transaction");
            // Fenced with the epoch bumped, as an InitProducerId would.
            let bumped = if epoch < i16::MAX { epoch + 1 } else { epoch };
            self.end_txn(None, &id, producer_id, bumped, false, false, now);
        }
    }

    fn expire_ids(&mut self, now: i64) {
        self.out.push(Output::SetTimer {
            timer: TimerKey::ExpireIds,
            at_ms: now.saturating_add(self.config.remove_expired_interval_ms),
        });
        let mut expired: Vec<String> = self
            .txns
            .values()
            .filter(|t| {
                t.state.is_complete_or_empty()
                    && t.last_update_ms.saturating_add(self.config.id_expiration_ms) <= now
                    && !self.busy(&t.id)
            })
            .map(|t| t.id.clone())
            .collect();
        expired.sort();
        for id in expired {
            // Not described or listed while the tombstone is written (Kafka's Dead).
            self.issue(&id, None, Then::Remove);
        }
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
