//! Transactions (KIP-98, with KIP-447's group metadata): the transaction manager's state
//! machine, sans I/O, and the calls to the transaction coordinator that drive it.
//!
//! As Java's `TransactionManager`:
//! ```text
//! Uninitialized -init_transactions-> Initializing -> Ready -begin-> InTransaction
//! InTransaction -commit-> Committing -> Ready      InTransaction -abort-> Aborting -> Ready
//! InTransaction | Committing | Initializing -abortable error-> AbortableError -abort-> Aborting
//! any -fatal error-> FatalError (only close is left)
//! ```
//! A partition joins the transaction (AddPartitionsToTxn, sent by the sender task) before
//! its first batch of the transaction leaves; commit flushes every send first and fails
//! if any of them failed. Errors are classified as Kafka's are: CONCURRENT_TRANSACTIONS,
//! COORDINATOR_LOAD_IN_PROGRESS and a moved coordinator are retried with backoff; a fenced
//! epoch, INVALID_TXN_STATE and missing authorization are fatal; a failed send or offset
//! commit makes the transaction abortable.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_protocol::api_key::ApiKey;
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use sluice_protocol::kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use sluice_protocol::kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, FindCoordinatorRequest,
    GroupId, InitProducerIdRequest, ProducerId, TopicName, TransactionalId, TxnOffsetCommitRequest,
};
use sluice_protocol::kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::{Request, Response};

use super::accumulator::ProducerStamp;
use crate::cluster::{unexpected, Cluster};
use crate::consumer::offsets::OffsetAndMetadata;
use crate::consumer::ConsumerGroupMetadata;
use crate::error::{ClientError, Result, TransactionErrorKind};
use crate::metadata::TopicPartition;
use crate::net::Connection;

/// Where a transactional producer is in its life (Java's `TransactionManager.State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TransactionState {
    /// `init_transactions` not called yet.
    Uninitialized = 0,
    /// Getting the producer id and epoch.
    Initializing = 1,
    /// Between transactions.
    Ready = 2,
    /// Records and offsets may be sent.
    InTransaction = 3,
    /// `commit_transaction` is flushing and ending the transaction.
    Committing = 4,
    /// `abort_transaction` is ending the transaction.
    Aborting = 5,
    /// The transaction cannot commit; only `abort_transaction` helps.
    AbortableError = 6,
    /// Only `close` is left.
    FatalError = 7,
}

impl TransactionState {
    fn from_u8(v: u8) -> Self {
        use TransactionState::*;
        [
            Uninitialized,
            Initializing,
            Ready,
            InTransaction,
            Committing,
            Aborting,
            AbortableError,
            FatalError,
        ][usize::from(v.min(7))]
    }

    /// Whether Kafka allows moving from `self` to `to`.
    pub fn can_become(self, to: TransactionState) -> bool {
        use TransactionState::*;
        match to {
            Uninitialized => matches!(self, Ready | AbortableError),
            Initializing => matches!(self, Uninitialized | Initializing | Aborting),
            Ready => matches!(self, Initializing | Committing | Aborting),
            InTransaction => self == Ready,
            Committing => matches!(self, InTransaction | Committing),
            Aborting => matches!(self, InTransaction | AbortableError | Aborting),
            AbortableError => {
                matches!(self, InTransaction | Committing | AbortableError | Initializing)
            }
            FatalError => true,
        }
    }
}

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

/// The transaction manager's state, sans I/O.
#[derive(Debug)]
pub struct Machine {
    state: TransactionState,
    /// What put the producer in `AbortableError` or `FatalError`.
    error: Option<ClientError>,
    /// The producer id and epoch from InitProducerId.
    pub stamp: Option<ProducerStamp>,
    /// Partitions the coordinator knows to be in the current transaction.
    pub partitions: HashSet<TopicPartition>,
    /// Partitions sent to in this transaction before they were added. The first record
    /// to each wakes the sender, whose drain names the partition blocked and adds it
    /// while the batch lingers (Java's `newPartitionsInTransaction`); before, the add
    /// waited for the sender's next wake, the linger's end, and delayed the commit.
    pub new_partitions: HashSet<TopicPartition>,
    /// The coordinator knows of the transaction (a partition or offsets were added): it
    /// must be ended with EndTxn.
    pub started: bool,
    /// A sequenced batch failed: the epoch must be bumped (KIP-360) before the next
    /// transaction, or its sequences would not follow.
    pub epoch_bump_required: bool,
}

impl Default for Machine {
    fn default() -> Self {
        Machine {
            state: TransactionState::Uninitialized,
            error: None,
            stamp: None,
            partitions: HashSet::new(),
            new_partitions: HashSet::new(),
            started: false,
            epoch_bump_required: false,
        }
    }
}

impl Machine {
    /// The current state.
    pub fn state(&self) -> TransactionState {
        self.state
    }

    /// Moves to `to`, or says why that is not allowed now: the error that spoiled the
    /// transaction when there is one, else an invalid-state error naming `operation`.
    ///
    /// # Errors
    /// [`ClientError::Transaction`].
    pub fn transition(&mut self, to: TransactionState, operation: &str) -> Result<()> {
        if self.state.can_become(to) && self.state != TransactionState::FatalError {
            if to == TransactionState::Ready || to == TransactionState::InTransaction {
                self.error = None;
            }
            if to == TransactionState::InTransaction {
                self.partitions.clear();
                self.new_partitions.clear();
                self.started = false;
            }
            self.state = to;
            return Ok(());
        }
        Err(self.refusal(operation))
    }

    /// The error for `operation` attempted in the current state.
    pub fn refusal(&self, operation: &str) -> ClientError {
        match (&self.error, self.state) {
            (Some(e), TransactionState::AbortableError | TransactionState::FatalError) => {
                let kind = if self.state == TransactionState::FatalError {
                    TransactionErrorKind::Fatal
                } else {
                    TransactionErrorKind::Abortable
                };
                ClientError::Transaction {
                    kind,
                    code: e.code(),
                    reason: format!("cannot {operation}: an earlier failure: {e}"),
                }
            }
            _ => ClientError::Transaction {
                kind: TransactionErrorKind::InvalidState,
                code: None,
                reason: format!("cannot {operation} in state {:?}", self.state),
            },
        }
    }

    /// Records a failure of class `class` (a retry class is not a failure); returns the
    /// error to report.
    pub fn fail(&mut self, class: Class, error: ClientError) -> ClientError {
        let kind = match class {
            Class::Fatal => TransactionErrorKind::Fatal,
            _ => TransactionErrorKind::Abortable,
        };
        let to = if kind == TransactionErrorKind::Fatal {
            TransactionState::FatalError
        } else {
            TransactionState::AbortableError
        };
        // An abortable failure while aborting (a batch of the aborted transaction) or
        // after a fatal one changes nothing.
        if self.state.can_become(to) && self.state != TransactionState::FatalError {
            self.state = to;
            self.error = Some(error.clone());
        }
        match error {
            e @ ClientError::Transaction { .. } => e,
            e => ClientError::Transaction { kind, code: e.code(), reason: e.to_string() },
        }
    }
}

/// Backoff after CONCURRENT_TRANSACTIONS: the coordinator is finishing the previous
/// transaction's markers, which takes about a round trip, so the first retries come soon
/// (1 ms, doubling) and at most every 20 ms (Java's shortened backoff for this case).
fn concurrent_backoff(attempt: u32) -> Duration {
    Duration::from_millis(1u64 << attempt.saturating_sub(1).min(5)).min(Duration::from_millis(20))
}

/// A transactional producer's transaction manager and its coordinator.
#[derive(Debug)]
pub struct Transactions {
    /// `transactional.id`.
    pub id: String,
    /// `transaction.timeout.ms`.
    pub timeout: Duration,
    /// The state, readable without the lock (every send checks it).
    state: AtomicU8,
    /// Bumped by every `begin_transaction`: an answer to an add of an earlier transaction
    /// is dropped.
    generation: AtomicU64,
    machine: Mutex<Machine>,
    coordinator: tokio::sync::Mutex<Option<Arc<Connection>>>,
}

impl Transactions {
    /// The manager of `transactional.id` `id`.
    pub fn new(id: String, timeout: Duration) -> Self {
        Transactions {
            id,
            timeout,
            state: AtomicU8::new(TransactionState::Uninitialized as u8),
            generation: AtomicU64::new(0),
            machine: Mutex::new(Machine::default()),
            coordinator: tokio::sync::Mutex::new(None),
        }
    }

    /// The state now.
    pub fn state(&self) -> TransactionState {
        TransactionState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// The current transaction's number.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Runs `f` on the machine, publishing the state it leaves.
    pub fn with<T>(&self, f: impl FnOnce(&mut Machine) -> T) -> T {
        let mut m = self.machine.lock().expect("lock");
        let out = f(&mut m);
        self.state.store(m.state as u8, Ordering::Release);
        out
    }

    /// Moves to `to` (see [`Machine::transition`]).
    ///
    /// # Errors
    /// [`ClientError::Transaction`] when the move is not allowed.
    pub fn transition(&self, to: TransactionState, operation: &str) -> Result<()> {
        self.with(|m| m.transition(to, operation))?;
        if to == TransactionState::InTransaction {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Whether a record may be sent now (only inside a transaction).
    ///
    /// # Errors
    /// [`ClientError::Transaction`] outside a transaction or after a failure.
    pub fn check_send(&self) -> Result<()> {
        match self.state() {
            TransactionState::InTransaction => Ok(()),
            _ => Err(self.with(|m| m.refusal("send"))),
        }
    }

    /// Records a failure (see [`Machine::fail`]).
    pub fn fail(&self, class: Class, error: ClientError) -> ClientError {
        self.with(|m| m.fail(class, error))
    }

    /// The producer id and epoch, once initialized.
    pub fn stamp(&self) -> Option<ProducerStamp> {
        self.machine.lock().expect("lock").stamp
    }

    /// A connection to the transaction coordinator (FindCoordinator with key type 1).
    async fn coordinator(&self, cluster: &Cluster) -> Result<Arc<Connection>> {
        let mut known = self.coordinator.lock().await;
        if let Some(conn) = known.as_ref().filter(|c| !c.is_closed()) {
            return Ok(conn.clone());
        }
        let conn = cluster.any_connection().await?;
        let version = conn.version(ApiKey::FindCoordinator)?;
        let key = StrBytes::from_string(self.id.clone());
        let mut request = FindCoordinatorRequest::default();
        if version >= 1 {
            request = request.with_key_type(1);
        }
        request = if version >= 4 {
            request.with_coordinator_keys(vec![key])
        } else {
            request.with_key(key)
        };
        let context = || format!("find the coordinator of transactional id {}", self.id);
        let (code, message, host, port) =
            match conn.send(version, &Request::FindCoordinator(request)).await?.wait().await? {
                Response::FindCoordinator(r) if version >= 4 => {
                    let c =
                        r.coordinators.into_iter().next().ok_or_else(|| ClientError::Protocol {
                            addr: conn.addr().to_string(),
                            reason: "FindCoordinator answered no coordinator".into(),
                        })?;
                    (c.error_code, c.error_message, c.host, c.port)
                }
                Response::FindCoordinator(r) => (r.error_code, r.error_message, r.host, r.port),
                other => return Err(unexpected(conn.addr(), &other)),
            };
        let code = ErrorCode::from_code(code);
        if !code.is_none() {
            return Err(ClientError::kafka(code, message.map(|m| m.to_string()), context()));
        }
        let found = cluster.connection_to(&format!("{}:{}", host.as_str(), port)).await?;
        *known = Some(found.clone());
        Ok(found)
    }

    async fn forget_coordinator(&self) {
        *self.coordinator.lock().await = None;
    }

    /// Sends the request `make` builds (for the version it is given) to the transaction
    /// coordinator until it succeeds, fails for good, or `deadline` passes; `code_of`
    /// picks the answer's error code.
    async fn call(
        &self,
        cluster: &Cluster,
        api: ApiKey,
        max_version: i16,
        deadline: Instant,
        make: impl Fn(i16) -> Request,
        code_of: impl Fn(&Response) -> Option<i16>,
    ) -> Result<Response> {
        let mut attempt = 0u32;
        let start = Instant::now();
        loop {
            attempt += 1;
            let outcome = async {
                let conn = self.coordinator(cluster).await?;
                let version = conn.version(api)?.min(max_version);
                let response = conn.send(version, &make(version)).await?.wait().await?;
                let Some(code) = code_of(&response) else {
                    return Err(unexpected(conn.addr(), &response));
                };
                let code = ErrorCode::from_code(code);
                if code.is_none() {
                    return Ok(response);
                }
                Err(ClientError::kafka(
                    code,
                    None,
                    format!("{api:?} of transactional id {}", self.id),
                ))
            }
            .await;
            let error = match outcome {
                Ok(response) => return Ok(response),
                Err(e) => e,
            };
            let backoff = match error.code().and_then(|c| classify(api, c)) {
                Some(Class::Retry { find_coordinator }) => {
                    if find_coordinator {
                        self.forget_coordinator().await;
                    }
                    if error.code() == Some(ErrorCode::CONCURRENT_TRANSACTIONS) {
                        concurrent_backoff(attempt)
                    } else {
                        cluster.retry_backoff(attempt)
                    }
                }
                Some(_) => return Err(error),
                None if error.is_retriable() => {
                    self.forget_coordinator().await;
                    cluster.retry_backoff(attempt)
                }
                None => return Err(error),
            };
            let wake = Instant::now() + backoff;
            if wake >= deadline {
                return Err(ClientError::MaxBlock {
                    what: format!("{api:?} of transactional id {} (last error: {error})", self.id),
                    waited: start.elapsed(),
                });
            }
            tokio::time::sleep_until(wake.into()).await;
        }
    }

    /// InitProducerId for the transactional id: a new epoch that fences every earlier
    /// instance, after the coordinator ended whatever transaction they left open. With
    /// `bump` (v3+), the epoch of `bump`'s producer id is bumped instead (KIP-360).
    ///
    /// # Errors
    /// The coordinator's error (classified by [`classify`]) or [`ClientError::MaxBlock`].
    pub async fn init_producer_id(
        &self,
        cluster: &Cluster,
        deadline: Instant,
        bump: Option<ProducerStamp>,
    ) -> Result<ProducerStamp> {
        let timeout_ms = self.timeout.as_millis().min(i32::MAX as u128) as i32;
        let make = |version: i16| {
            let mut r = InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(StrBytes::from_string(
                    self.id.clone(),
                ))))
                .with_transaction_timeout_ms(timeout_ms);
            if let (Some(stamp), true) = (bump, version >= 3) {
                r = r.with_producer_id(ProducerId(stamp.id)).with_producer_epoch(stamp.epoch);
            }
            Request::InitProducerId(r)
        };
        let code = |r: &Response| match r {
            Response::InitProducerId(r) => Some(r.error_code),
            _ => None,
        };
        match self.call(cluster, ApiKey::InitProducerId, i16::MAX, deadline, make, code).await? {
            Response::InitProducerId(r) => {
                Ok(ProducerStamp { id: r.producer_id.0, epoch: r.producer_epoch })
            }
            _ => unreachable!("invariant: code_of accepted only InitProducerId"),
        }
    }

    /// AddPartitionsToTxn for `partitions` of transaction `generation` (v3 and below:
    /// newer versions are the brokers' batched form). Gives up without sending once the
    /// transaction has ended.
    ///
    /// # Errors
    /// The first partition's error, or the request's.
    pub async fn add_partitions(
        &self,
        cluster: &Cluster,
        generation: u64,
        stamp: ProducerStamp,
        partitions: &[TopicPartition],
        deadline: Instant,
    ) -> Result<()> {
        let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
        for tp in partitions {
            match topics.iter_mut().find(|t| t.name.0.as_str() == &*tp.topic) {
                Some(t) => t.partitions.push(tp.partition),
                None => topics.push(
                    AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(StrBytes::from_string(tp.topic.to_string())))
                        .with_partitions(vec![tp.partition]),
                ),
            }
        }
        let make = |_| {
            Request::AddPartitionsToTxn(
                AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(TransactionalId(StrBytes::from_string(
                        self.id.clone(),
                    )))
                    .with_v3_and_below_producer_id(ProducerId(stamp.id))
                    .with_v3_and_below_producer_epoch(stamp.epoch)
                    .with_v3_and_below_topics(topics.clone()),
            )
        };
        // The first partition error stands for the request: the others are
        // OPERATION_NOT_ATTEMPTED then.
        let code = |r: &Response| match r {
            Response::AddPartitionsToTxn(r) => Some(
                r.results_by_topic_v3_and_below
                    .iter()
                    .flat_map(|t| t.results_by_partition.iter())
                    .map(|p| p.partition_error_code)
                    .find(|&c| c != 0 && c != ErrorCode::OPERATION_NOT_ATTEMPTED.code())
                    .unwrap_or(r.error_code),
            ),
            _ => None,
        };
        if self.generation() != generation {
            return Err(aborted("the transaction ended before its partitions were added"));
        }
        self.call(cluster, ApiKey::AddPartitionsToTxn, 3, deadline, make, code).await.map(drop)
    }

    /// AddOffsetsToTxn then TxnOffsetCommit at `group`'s coordinator: `offsets` commit
    /// with the transaction.
    ///
    /// # Errors
    /// The coordinators' errors, or [`ClientError::MaxBlock`].
    pub async fn send_offsets(
        &self,
        cluster: &Cluster,
        stamp: ProducerStamp,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
        group: &ConsumerGroupMetadata,
        deadline: Instant,
    ) -> Result<()> {
        let txn_id = || TransactionalId(StrBytes::from_string(self.id.clone()));
        let group_id = || GroupId(StrBytes::from_string(group.group_id.clone()));
        let make = |_| {
            Request::AddOffsetsToTxn(
                AddOffsetsToTxnRequest::default()
                    .with_transactional_id(txn_id())
                    .with_producer_id(ProducerId(stamp.id))
                    .with_producer_epoch(stamp.epoch)
                    .with_group_id(group_id()),
            )
        };
        let code = |r: &Response| match r {
            Response::AddOffsetsToTxn(r) => Some(r.error_code),
            _ => None,
        };
        self.call(cluster, ApiKey::AddOffsetsToTxn, i16::MAX, deadline, make, code).await?;
        self.with(|m| m.started = true);
        let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
        for (tp, o) in offsets {
            let p = TxnOffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition)
                .with_committed_offset(o.offset)
                .with_committed_leader_epoch(o.leader_epoch.unwrap_or(-1))
                .with_committed_metadata(Some(StrBytes::from_string(o.metadata.clone())));
            match topics.iter_mut().find(|t| t.name.0.as_str() == &*tp.topic) {
                Some(t) => t.partitions.push(p),
                None => topics.push(
                    TxnOffsetCommitRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_string(tp.topic.to_string())))
                        .with_partitions(vec![p]),
                ),
            }
        }
        let request = TxnOffsetCommitRequest::default()
            .with_transactional_id(txn_id())
            .with_group_id(group_id())
            .with_producer_id(ProducerId(stamp.id))
            .with_producer_epoch(stamp.epoch)
            .with_generation_id(group.generation_id)
            .with_member_id(StrBytes::from_string(group.member_id.clone()))
            .with_group_instance_id(group.group_instance_id.clone().map(StrBytes::from_string))
            .with_topics(topics);
        let mut attempt = 0;
        let start = Instant::now();
        loop {
            attempt += 1;
            let outcome = async {
                let conn = crate::consumer::offsets::coordinator(cluster, &group.group_id).await?;
                let version = conn.version(ApiKey::TxnOffsetCommit)?;
                let request = Request::TxnOffsetCommit(request.clone());
                match conn.send(version, &request).await?.wait().await? {
                    Response::TxnOffsetCommit(r) => {
                        let code = r
                            .topics
                            .iter()
                            .flat_map(|t| t.partitions.iter())
                            .map(|p| p.error_code)
                            .find(|&c| c != 0)
                            .unwrap_or(0);
                        Ok(ErrorCode::from_code(code))
                    }
                    other => Err(unexpected(conn.addr(), &other)),
                }
            }
            .await;
            let error = match outcome {
                Ok(code) if code.is_none() => return Ok(()),
                Ok(code) => ClientError::kafka(
                    code,
                    None,
                    format!(
                        "TxnOffsetCommit of group {} in transaction {}",
                        group.group_id, self.id
                    ),
                ),
                Err(e) => e,
            };
            let retry = match error.code() {
                Some(code) => {
                    matches!(classify(ApiKey::TxnOffsetCommit, code), Some(Class::Retry { .. }))
                }
                None => error.is_retriable(),
            };
            let wake = Instant::now() + cluster.retry_backoff(attempt);
            if !retry {
                return Err(error);
            }
            if wake >= deadline {
                return Err(ClientError::MaxBlock {
                    what: format!("TxnOffsetCommit (last error: {error})"),
                    waited: start.elapsed(),
                });
            }
            tokio::time::sleep_until(wake.into()).await;
        }
    }

    /// EndTxn: commit (`commit`) or abort the transaction.
    ///
    /// # Errors
    /// The coordinator's error, or [`ClientError::MaxBlock`].
    pub async fn end(
        &self,
        cluster: &Cluster,
        stamp: ProducerStamp,
        commit: bool,
        deadline: Instant,
    ) -> Result<()> {
        let make = |_| {
            Request::EndTxn(
                EndTxnRequest::default()
                    .with_transactional_id(TransactionalId(StrBytes::from_string(self.id.clone())))
                    .with_producer_id(ProducerId(stamp.id))
                    .with_producer_epoch(stamp.epoch)
                    .with_committed(commit),
            )
        };
        let code = |r: &Response| match r {
            Response::EndTxn(r) => Some(r.error_code),
            _ => None,
        };
        self.call(cluster, ApiKey::EndTxn, i16::MAX, deadline, make, code).await.map(drop)
    }
}

/// The error of a record whose transaction was aborted before it was sent.
pub fn aborted(reason: &str) -> ClientError {
    ClientError::Transaction {
        kind: TransactionErrorKind::Aborted,
        code: None,
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TransactionState::*;

    fn at(state: TransactionState) -> Machine {
        Machine { state, ..Machine::default() }
    }

    #[test]
    fn the_transitions_are_kafkas() {
        let mut m = Machine::default();
        assert!(m.transition(InTransaction, "begin").is_err(), "begin before init");
        m.transition(Initializing, "init").unwrap();
        m.transition(Ready, "init").unwrap();
        for _ in 0..2 {
            m.transition(InTransaction, "begin").unwrap();
            let twice = m.transition(InTransaction, "begin").unwrap_err();
            assert!(
                matches!(
                    twice,
                    ClientError::Transaction { kind: TransactionErrorKind::InvalidState, .. }
                ),
                "{twice}"
            );
            m.transition(Committing, "commit").unwrap();
            assert!(m.transition(Aborting, "abort").is_err(), "no abort once committing");
            m.transition(Ready, "commit").unwrap();
            m.transition(InTransaction, "begin").unwrap();
            m.transition(Aborting, "abort").unwrap();
            m.transition(Ready, "abort").unwrap();
        }
        assert!(at(Ready).transition(Committing, "commit").is_err(), "commit outside a txn");
        assert!(at(Committing).transition(Committing, "commit").is_ok(), "a commit resumes");
    }

    #[test]
    fn an_abortable_error_allows_only_abort_and_names_its_cause() {
        let mut m = at(InTransaction);
        m.partitions.insert(TopicPartition { topic: "t".into(), partition: 0 });
        let cause = ClientError::kafka(ErrorCode::TOPIC_AUTHORIZATION_FAILED, None, "add t-0");
        let e = m.fail(Class::Abortable, cause);
        assert!(matches!(
            e,
            ClientError::Transaction { kind: TransactionErrorKind::Abortable, .. }
        ));
        assert_eq!(m.state(), AbortableError);
        let commit = m.transition(Committing, "commit").unwrap_err();
        assert_eq!(commit.code(), Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED), "{commit}");
        assert!(m.transition(InTransaction, "begin").is_err());
        m.transition(Aborting, "abort").unwrap();
        // A batch of the aborted transaction failing now changes nothing.
        m.fail(Class::Abortable, aborted("aborted"));
        assert_eq!(m.state(), Aborting);
        m.transition(Ready, "abort").unwrap();
        m.transition(InTransaction, "begin").unwrap();
        assert!(m.partitions.is_empty() && !m.started, "a new transaction starts empty");
    }

    #[test]
    fn a_fatal_error_is_final() {
        let mut m = at(Committing);
        let fenced = ClientError::kafka(ErrorCode::PRODUCER_FENCED, None, "EndTxn");
        m.fail(classify(ApiKey::EndTxn, ErrorCode::PRODUCER_FENCED).unwrap(), fenced);
        assert_eq!(m.state(), FatalError);
        for to in [Initializing, Ready, InTransaction, Committing, Aborting] {
            let e = m.transition(to, "anything").unwrap_err();
            assert!(
                matches!(e, ClientError::Transaction { kind: TransactionErrorKind::Fatal, .. }),
                "{e}"
            );
            assert_eq!(e.code(), Some(ErrorCode::PRODUCER_FENCED));
        }
        m.fail(Class::Abortable, aborted("x"));
        assert_eq!(m.state(), FatalError, "nothing leaves FatalError");
    }

    #[test]
    fn concurrent_transactions_are_retried_soon_then_every_20_ms() {
        let waits: Vec<u64> = (1..=7).map(|a| concurrent_backoff(a).as_millis() as u64).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 20, 20]);
    }

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
