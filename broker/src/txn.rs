//! The transaction coordinator (KIP-98, KIP-447, KIP-890 part 1), for every
//! transactional id (a single node coordinates them all), in the shape of the group
//! coordinator ([`crate::group`]).
//!
//! - [`state`]: the coordinator as a sans-I/O state machine (`step(input, now) ->
//!   outputs`): InitProducerId with a transactional id, AddPartitionsToTxn,
//!   AddOffsetsToTxn, TxnOffsetCommit, EndTxn, DescribeTransactions, ListTransactions,
//!   the abort of timed-out transactions and the expiry of idle ids.
//! - [`request`]: what the coordinator is asked and what it answers.
//! - [`metadata`]: one transactional id's metadata and Kafka's transaction states.
//! - [`records`]: keys and values of `__transaction_state` (Sluice's own format).
//! - [`store`]: the internal topic on the storage engine: loading and appends (the log cleaner compacts it).
//! - `driver`: the task that owns the clock, timers, log writes, marker writes and the
//!   application of offsets, and runs the machine.
//! - [`index`]: [`TxnIndex`], what produce and OffsetFetch read without asking the
//!   driver.
//! - [`TxnCoordinator`]: the handle the request handlers in `api/` call, made together
//!   with [`TxnDriver`], which the server runs.
//!
//! Offsets (TxnOffsetCommit) are kept with the transaction, in this coordinator's state
//! and in `__transaction_state`, not as transactional records in `__consumer_offsets`
//! (so that loading that topic never has to resolve open transactions and their
//! markers). A commit applies them to the group coordinator as ordinary commits
//! ([`crate::group::GroupCoordinator::commit_txn_offsets`]); an abort drops them.
//!
//! The EndTxn flow: Ongoing → Prepare{Commit,Abort} written (EndTxn is answered here, as
//! Kafka does) → a COMMIT or ABORT marker in every partition of the transaction → offsets
//! applied or dropped → Complete{Commit,Abort} written. Until then the producer's next
//! AddPartitionsToTxn or InitProducerId is answered CONCURRENT_TRANSACTIONS, and the
//! loader hands every Prepare* state it finds back to the driver to finish.

pub mod driver;
pub mod index;
pub mod metadata;
pub mod records;
pub mod request;
pub mod state;
pub mod store;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use sluice_protocol::error_code::ErrorCode;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use crate::blocking;
use crate::config::Config;
use crate::group::request::OffsetToCommit;
use crate::group::types::TopicPartition;
use crate::group::GroupCoordinator;
use crate::producer_ids::ProducerIds;
use crate::storage::TxnMarker;
use crate::topics::{TopicError, Topics};
use driver::{Command, DriverDeps, Marker, MarkerWriter, MarkerWritten, OffsetApplier};
use index::TxnIndex;
use metadata::PendingOffset;
use request::{ListFilter, TxnDescription, TxnListing, TxnReply, TxnRequest};
use state::{ProducerIdSource, TxnConfig};
use store::TxnLog;

/// The internal topic where transactions are kept.
pub const TOPIC: &str = store::TOPIC;
/// The group offsets topic, shown as a partition of a transaction that sends offsets.
pub const OFFSETS_TOPIC: &str = crate::group::store::TOPIC;

/// Requests queued for the driver before handlers wait to send.
const QUEUE: usize = 1024;

/// Why the coordinator cannot serve.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TxnError {
    /// The internal topic could not be opened or created.
    #[error("cannot open __transaction_state: {0}")]
    Topic(#[from] TopicError),
    /// The internal topic exists without a partition 0.
    #[error("__transaction_state has no partition 0")]
    NoPartition,
    /// The coordinator task is not running.
    #[error("the transaction coordinator is not running")]
    Stopped,
    /// The coordinator answered with another request's reply (a bug).
    #[error("the transaction coordinator answered a {asked} request with {answered}")]
    Miswired {
        /// The request's API.
        asked: &'static str,
        /// The reply that came back.
        answered: String,
    },
}

impl TxnError {
    /// The Kafka error a handler answers: COORDINATOR_NOT_AVAILABLE for an outage (the
    /// client looks for the coordinator again), UNKNOWN_SERVER_ERROR for a bug.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            TxnError::Miswired { .. } => ErrorCode::UNKNOWN_SERVER_ERROR,
            _ => ErrorCode::COORDINATOR_NOT_AVAILABLE,
        }
    }
}

impl ProducerIdSource for ProducerIds {
    fn next_id(&self) -> Result<i64, ErrorCode> {
        self.next().map_err(|e| {
            tracing::error!(error = %e, "cannot allocate a producer id");
            ErrorCode::KAFKA_STORAGE_ERROR
        })
    }
}

/// Markers written through the partitions of the broker's topics.
#[derive(Debug)]
struct PartitionMarkers {
    topics: Arc<Topics>,
}

impl MarkerWriter for PartitionMarkers {
    fn write_marker(&self, tp: &TopicPartition, marker: Marker) -> Result<MarkerWritten, String> {
        let Some(topic) = self.topics.get(&tp.topic) else { return Ok(MarkerWritten::Gone) };
        let Some(partition) = topic.partition(tp.partition) else {
            return Ok(MarkerWritten::Gone);
        };
        let marker = TxnMarker {
            producer_id: marker.producer_id,
            producer_epoch: marker.producer_epoch,
            // One coordinator that never moves: its epoch never changes.
            coordinator_epoch: 0,
            commit: marker.commit,
        };
        match partition.append_txn_marker_blocking(&marker) {
            Ok(_) => Ok(MarkerWritten::Written),
            // The partition has seen a newer epoch of the producer, which ended whatever
            // this marker would have: retrying could never succeed.
            Err(e @ crate::storage::StorageError::InvalidProducerEpoch { .. }) => {
                tracing::warn!(error = %e, "transaction marker superseded by a newer epoch");
                Ok(MarkerWritten::Gone)
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Offsets applied through the group coordinator.
#[derive(Debug)]
struct GroupOffsets {
    groups: Arc<GroupCoordinator>,
}

impl OffsetApplier for GroupOffsets {
    fn apply(
        &self,
        group: String,
        offsets: Vec<(TopicPartition, PendingOffset)>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            let offsets = offsets
                .into_iter()
                .map(|(partition, o)| OffsetToCommit {
                    partition,
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    commit_timestamp: -1,
                    metadata: Some(o.metadata),
                })
                .collect();
            let errors =
                self.groups.commit_txn_offsets(group, offsets).await.map_err(|e| e.to_string())?;
            match errors.into_iter().find(|e| *e != ErrorCode::NONE) {
                None => Ok(()),
                Some(e) => Err(format!("the group coordinator answered {e:?}")),
            }
        })
    }
}

/// What ListTransactions answers.
#[derive(Debug)]
pub struct TxnList {
    /// NONE, or why nothing is listed.
    pub error: ErrorCode,
    /// The state filters that name no state.
    pub unknown_states: Vec<String>,
    /// The transactions that match the filters.
    pub transactions: Vec<TxnListing>,
}

/// The coordinator's driver before it runs: made with its handle by
/// [`TxnCoordinator::new`], run by [`Self::run`].
#[derive(Debug)]
pub struct TxnDriver {
    config: TxnConfig,
    commands: mpsc::Receiver<Command>,
    index: Arc<TxnIndex>,
}

impl TxnDriver {
    /// Runs the coordinator until [`TxnCoordinator::stop`]: opens `__transaction_state`
    /// (creating it when the first request comes, as Kafka does), loads it, then serves
    /// from the coordinator's own thread.
    /// If the topic cannot be opened, logs why and every request fails with
    /// COORDINATOR_NOT_AVAILABLE.
    pub async fn run(
        self,
        topics: Arc<Topics>,
        groups: Arc<GroupCoordinator>,
        ids: Arc<ProducerIds>,
    ) {
        let mut commands = self.commands;
        // Kafka creates `__transaction_state` on first use, not at start: a broker whose
        // clients never use transactions keeps only the topics it had.
        let mut first = None;
        if topics.get(TOPIC).is_none() {
            match commands.recv().await {
                Some(Command::Stop(done)) => {
                    let _ = done.send(());
                    return;
                }
                Some(command) => first = Some(command),
                None => return,
            }
        }
        let t = Arc::clone(&topics);
        let opened = blocking::run("open __transaction_state", move || TxnLog::open(&t)).or_log();
        let log = match opened.await {
            Some(Ok(log)) => Arc::new(log),
            Some(Err(e)) => {
                return tracing::error!(error = %e, "transaction coordinator cannot start")
            }
            // The task failed (logged).
            None => return tracing::error!("transaction coordinator cannot start"),
        };
        let deps = DriverDeps {
            log,
            config: self.config,
            ids,
            markers: Arc::new(PartitionMarkers { topics }),
            offsets: Arc::new(GroupOffsets { groups }),
            index: self.index,
        };
        let driver = driver::run(deps, commands, first);
        let (done, finished) = oneshot::channel();
        let thread = std::thread::Builder::new().name("sluice-txns".into()).spawn(move || {
            match tokio::runtime::Builder::new_current_thread().enable_time().build() {
                Ok(runtime) => runtime.block_on(driver),
                Err(e) => tracing::error!(error = %e, "transaction coordinator cannot start"),
            }
            let _ = done.send(());
        });
        match thread {
            Ok(_) => {
                let _ = finished.await;
            }
            Err(e) => tracing::error!(error = %e, "transaction coordinator cannot start"),
        }
    }
}

/// The handle to the coordinator that request handlers use.
#[derive(Debug)]
pub struct TxnCoordinator {
    commands: mpsc::Sender<Command>,
    index: Arc<TxnIndex>,
    /// `transaction.max.timeout.ms`, for handlers that check before asking.
    pub max_timeout_ms: i32,
}

impl TxnCoordinator {
    /// The handle, and the driver that serves its requests once [`TxnDriver::run`] runs;
    /// requests sent before wait.
    pub fn new(config: &Config) -> (TxnCoordinator, TxnDriver) {
        let txn_config = TxnConfig {
            max_timeout_ms: config.transaction_max_timeout_ms,
            abort_interval_ms: config.transaction_abort_timed_out_interval_ms,
            id_expiration_ms: config.transactional_id_expiration_ms,
            remove_expired_interval_ms: config.transaction_remove_expired_interval_ms,
            ..TxnConfig::default()
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let index = Arc::new(TxnIndex::default());
        let handle = TxnCoordinator {
            commands: tx,
            index: Arc::clone(&index),
            max_timeout_ms: config.transaction_max_timeout_ms,
        };
        (handle, TxnDriver { config: txn_config, commands: rx, index })
    }

    /// The shared index (verification of transactional produce, pending offsets).
    pub fn index(&self) -> &TxnIndex {
        &self.index
    }

    /// The shared index, for a verifier that outlives the request (a large append runs
    /// on a blocking thread).
    pub fn index_handle(&self) -> Arc<TxnIndex> {
        Arc::clone(&self.index)
    }

    /// KIP-890 part 1 verification for the produce path; see
    /// [`TxnIndex::verify_partition`]. Reads shared state: no round trip to the driver.
    ///
    /// # Errors
    /// As [`TxnIndex::verify_partition`].
    pub fn verify_partition(
        &self,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<(), ErrorCode> {
        self.index.verify_partition(producer_id, epoch, topic, partition)
    }

    async fn call<T>(
        &self,
        asked: &'static str,
        request: TxnRequest,
        pick: impl FnOnce(TxnReply) -> Result<T, Box<TxnReply>>,
    ) -> Result<T, TxnError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Request { request, reply: tx })
            .await
            .map_err(|_| TxnError::Stopped)?;
        let reply = rx.await.map_err(|_| TxnError::Stopped)?;
        pick(reply).map_err(|other| {
            let e = TxnError::Miswired { asked, answered: format!("{other:?}") };
            tracing::error!(error = %e, "transaction coordinator bug");
            e
        })
    }

    /// InitProducerId with a transactional id: the producer id and epoch, or an error.
    ///
    /// # Errors
    /// [`TxnError::Stopped`], or [`TxnError::Miswired`] (a bug).
    pub async fn init_producer_id(
        &self,
        txn_id: String,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<Result<(i64, i16), ErrorCode>, TxnError> {
        let request = TxnRequest::InitProducerId { txn_id, timeout_ms, expected };
        self.call("InitProducerId", request, |reply| match reply {
            TxnReply::InitProducerId(r) => Ok(r),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// AddPartitionsToTxn for one transaction: one error for all its partitions.
    ///
    /// # Errors
    /// As [`Self::init_producer_id`].
    pub async fn add_partitions(
        &self,
        txn_id: String,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<TopicPartition>,
    ) -> Result<ErrorCode, TxnError> {
        let request = TxnRequest::AddPartitions {
            txn_id,
            producer_id,
            epoch,
            partitions,
            verify_only: false,
        };
        self.call("AddPartitionsToTxn", request, |reply| match reply {
            TxnReply::AddPartitions(e) => Ok(e),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// AddPartitionsToTxn v4 `verify_only`: an error per partition, in order.
    ///
    /// # Errors
    /// As [`Self::init_producer_id`].
    pub async fn verify_partitions(
        &self,
        txn_id: String,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<TopicPartition>,
    ) -> Result<Vec<ErrorCode>, TxnError> {
        let request =
            TxnRequest::AddPartitions { txn_id, producer_id, epoch, partitions, verify_only: true };
        self.call("AddPartitionsToTxn", request, |reply| match reply {
            TxnReply::Verify(e) => Ok(e),
            other => Err(Box::new(other)),
        })
        .await
    }

    async fn error_call(
        &self,
        asked: &'static str,
        request: TxnRequest,
    ) -> Result<ErrorCode, TxnError> {
        self.call(asked, request, |reply| match reply {
            TxnReply::Error(e) => Ok(e),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// AddOffsetsToTxn.
    ///
    /// # Errors
    /// As [`Self::init_producer_id`].
    pub async fn add_offsets(
        &self,
        txn_id: String,
        producer_id: i64,
        epoch: i16,
        group: String,
    ) -> Result<ErrorCode, TxnError> {
        let request = TxnRequest::AddOffsets { txn_id, producer_id, epoch, group };
        self.error_call("AddOffsetsToTxn", request).await
    }

    /// TxnOffsetCommit, after the group coordinator accepted the member: the offsets are
    /// kept with the transaction.
    ///
    /// # Errors
    /// As [`Self::init_producer_id`].
    pub async fn txn_offset_commit(
        &self,
        txn_id: String,
        producer_id: i64,
        epoch: i16,
        group: String,
        offsets: Vec<(TopicPartition, PendingOffset)>,
    ) -> Result<ErrorCode, TxnError> {
        let request = TxnRequest::TxnOffsetCommit { txn_id, producer_id, epoch, group, offsets };
        self.error_call("TxnOffsetCommit", request).await
    }

    /// EndTxn.
    ///
    /// # Errors
    /// As [`Self::init_producer_id`].
    pub async fn end_txn(
        &self,
        txn_id: String,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<ErrorCode, TxnError> {
        let request = TxnRequest::EndTxn { txn_id, producer_id, epoch, commit };
        self.error_call("EndTxn", request).await
    }

    /// DescribeTransactions, in request order.
    ///
    /// # Errors
    /// As [`Self::init_producer_id`].
    pub async fn describe(&self, ids: Vec<String>) -> Result<Vec<TxnDescription>, TxnError> {
        self.call("DescribeTransactions", TxnRequest::Describe(ids), |reply| match reply {
            TxnReply::Describe(d) => Ok(d),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// ListTransactions: error, unknown state filters, transactions.
    ///
    /// # Errors
    /// As [`Self::init_producer_id`].
    pub async fn list(&self, filter: ListFilter) -> Result<TxnList, TxnError> {
        self.call("ListTransactions", TxnRequest::List(filter), |reply| match reply {
            TxnReply::List { error, unknown_states, transactions } => {
                Ok(TxnList { error, unknown_states, transactions })
            }
            other => Err(Box::new(other)),
        })
        .await
    }

    /// Makes the coordinator finish its writes and exit; returns once it has.
    pub async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Stop(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}
