//! The producer: `send` places a record in its partition's batch and returns at once
//! with a [`DeliveryFuture`]; a background sender task sends ready batches to their
//! leaders and settles them.
//!
//! The produce path and its copy budget:
//! ```text
//! send(record)             metadata known: no await; else waits for it (max.block.ms)
//!   -> partitioner         Java's murmur2 for keys, KIP-794 sticky without
//!   -> buffer.memory       a semaphore of bytes; send waits when it is full (max.block.ms)
//!   -> accumulator.append  record encoded into the partition's batch buffer (copy 1)
//!   -> batch closes        at batch.size, or linger.ms later: compressed in one pass
//! sender task
//!   -> drain               ready batches, one per partition, max.request.size per broker;
//!                          sequences stamped (idempotence), CRC-32C computed once
//!   -> ProduceRequest      one per broker, encoded into one frame (copy 2)
//!   -> connection          written as is; up to max.in.flight requests unanswered
//!   -> response            each partition's batch settled, retried or failed
//! ```
//!
//! Cancel safety: dropping the future of `send` before it resolves leaves the record
//! unsent; once it has resolved, the record is in a batch and will be delivered or fail.
//!
//! With `transactional.id` the producer is transactional (see [`transaction`]): records
//! are sent only between `begin_transaction` and `commit_transaction` or
//! `abort_transaction`, and a non-transactional producer pays one `Option` check per send.

pub mod accumulator;
pub mod delivery;
pub mod idempotence;
pub mod partitioner;
mod sender;
pub mod transaction;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_protocol::api_key::ApiKey;
use sluice_protocol::record::Header;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::config::{ClientConfig, ProducerConfig};
pub use crate::consumer::ConsumerGroupMetadata;
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;
use crate::metrics::{Metric, ProducerMetrics, Report};
use accumulator::{Accumulator, AccumulatorSettings};
pub use delivery::{DeliveryFuture, RecordMetadata};
use partitioner::{DefaultPartitioner, Partitioner};
use transaction::{Class, TransactionState, Transactions};

/// One record to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// The topic.
    pub topic: Arc<str>,
    /// A fixed partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// The key; `None` is a null key, distinct from an empty one.
    pub key: Option<Bytes>,
    /// The value; `None` is a null value (a tombstone), distinct from an empty one.
    pub value: Option<Bytes>,
    /// Headers, in order; keys are UTF-8 as in Kafka.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Create time in milliseconds since the epoch; `None`: the time of `send`.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value and no key.
    pub fn new(topic: impl Into<Arc<str>>, value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Appends a header.
    pub fn header(mut self, key: impl Into<String>, value: Option<Bytes>) -> Self {
        self.headers.push((key.into(), value));
        self
    }

    /// Sets the create time.
    pub fn timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }

    /// Bytes the record takes in a batch (and so in `buffer.memory`), roughly: its fields
    /// plus the per-record varints.
    fn size(&self) -> usize {
        let field = |b: &Option<Bytes>| b.as_ref().map_or(0, Bytes::len) + 5;
        21 + field(&self.key)
            + field(&self.value)
            + self.headers.iter().map(|(k, v)| k.len() + 5 + field(v)).sum::<usize>()
    }
}

#[derive(Debug)]
struct State {
    accumulator: Accumulator,
    partitioner: Box<dyn PartitionerDebug>,
    /// The last topic's partition count, under the metadata version it was read at.
    partitions: Option<(Arc<str>, u32, u64)>,
}

impl State {
    /// How many partitions `topic` has, if metadata knows.
    fn partition_count(&mut self, topic: &Arc<str>, cluster: &Cluster) -> Option<u32> {
        let version = cluster.metadata_version();
        if let Some((cached, n, at)) = &self.partitions {
            if *at == version && Arc::ptr_eq(cached, topic) {
                return Some(*n);
            }
        }
        let n = cluster.with_metadata(|m| m.partition_count(topic))?;
        self.partitions = Some((topic.clone(), n, version));
        Some(n)
    }
}

/// The partition a record goes to: its own, checked, or the partitioner's choice.
fn place(
    state: &mut State,
    config: &ProducerConfig,
    record: &ProducerRecord,
    partitions: u32,
    size: usize,
) -> Result<TopicPartition> {
    let partition = match record.partition {
        Some(p) if p < 0 || p as u32 >= partitions => {
            return Err(ClientError::UnknownPartition {
                topic: record.topic.to_string(),
                partition: p,
                partitions,
            })
        }
        Some(p) => p,
        None => {
            let key = if config.partitioner_ignore_keys { None } else { record.key.as_deref() };
            state.partitioner.partition(key, size, partitions) as i32
        }
    };
    Ok(TopicPartition { topic: record.topic.clone(), partition })
}

/// A partitioner the producer can hold.
trait PartitionerDebug: Partitioner + std::fmt::Debug {}
impl<P: Partitioner + std::fmt::Debug> PartitionerDebug for P {}

#[derive(Debug)]
struct Inner {
    config: ProducerConfig,
    cluster: Arc<Cluster>,
    state: Mutex<State>,
    memory: Semaphore,
    wake: Notify,
    closed: AtomicBool,
    abort: AtomicBool,
    metrics: ProducerMetrics,
    /// The transaction manager, with `transactional.id`.
    txn: Option<Arc<Transactions>>,
}

/// An asynchronous Kafka producer. Cheap to clone: clones share one sender.
#[derive(Debug, Clone)]
pub struct Producer {
    inner: Arc<Inner>,
    sender: Arc<SenderHandle>,
}

/// The sender task, shared by a producer's clones. When the last clone is dropped without
/// `close`, the sender still delivers what was sent, then stops.
#[derive(Debug)]
struct SenderHandle {
    inner: Arc<Inner>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for SenderHandle {
    fn drop(&mut self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.state.lock().expect("lock").accumulator.begin_close();
        self.inner.wake.notify_one();
    }
}

impl Producer {
    /// A producer with the Java client's default partitioner. Must be called inside a
    /// tokio runtime: it starts the sender task.
    ///
    /// # Errors
    /// [`ClientError::Config`] for an invalid configuration.
    pub fn new(config: &ClientConfig) -> Result<Producer> {
        Self::from_config(ProducerConfig::new(config)?)
    }

    /// A producer from a typed configuration (made by [`ProducerConfig::new`], then
    /// changed field by field), with the default partitioner.
    ///
    /// # Errors
    /// [`ClientError::Config`] when the fields break a rule between properties
    /// ([`ProducerConfig::check`]).
    pub fn from_config(config: ProducerConfig) -> Result<Producer> {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        let partitioner = DefaultPartitioner::new(config.batch_size, seed);
        Self::with_partitioner(config, partitioner)
    }

    /// A producer with a custom partitioner.
    ///
    /// # Errors
    /// As [`Self::from_config`].
    pub fn with_partitioner<P: Partitioner + std::fmt::Debug + 'static>(
        config: ProducerConfig,
        partitioner: P,
    ) -> Result<Producer> {
        config.check()?;
        let cluster = Cluster::new(config.common.clone(), true);
        let accumulator = Accumulator::new(AccumulatorSettings {
            batch_size: config.batch_size,
            linger: config.linger,
            compression: config.compression,
            compression_level: config.compression_level,
            max_request_size: config.max_request_size,
            delivery_timeout: config.delivery_timeout,
            max_in_flight: config.max_in_flight,
            transactional: config.transactional_id.is_some(),
        });
        let txn = config
            .transactional_id
            .clone()
            .map(|id| Arc::new(Transactions::new(id, config.transaction_timeout)));
        let memory = Semaphore::new(config.buffer_memory.min(Semaphore::MAX_PERMITS));
        let inner = Arc::new(Inner {
            config,
            cluster,
            state: Mutex::new(State {
                accumulator,
                partitioner: Box::new(partitioner),
                partitions: None,
            }),
            memory,
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            metrics: ProducerMetrics::default(),
            txn,
        });
        let task = tokio::spawn(sender::run(inner.clone()));
        let sender = Arc::new(SenderHandle { inner: inner.clone(), task: Mutex::new(Some(task)) });
        Ok(Producer { inner, sender })
    }

    /// The producer's metrics, as the Java producer names them (`producer-metrics`:
    /// records sent, retried and failed, batch sizes, requests and their latency, bytes
    /// and connections; see [`crate::metrics`]).
    pub fn metrics(&self) -> Vec<Metric> {
        let network = self.inner.cluster.network_metrics();
        let client_id = &self.inner.config.common.client_id;
        let mut out = Vec::new();
        let mut report = Report::new(&mut out, "producer-metrics", client_id, network.elapsed());
        self.inner.metrics.report(&mut report);
        network.report(&mut report);
        out
    }

    /// Places `record` in a batch; the returned future resolves when the broker has
    /// acknowledged it (or it failed). Waits only for metadata of a new topic and for
    /// room in `buffer.memory`, both bounded by `max.block.ms`.
    ///
    /// # Errors
    /// [`ClientError::MaxBlock`] after `max.block.ms`, [`ClientError::RecordTooLarge`],
    /// [`ClientError::UnknownPartition`], [`ClientError::Closed`] after `close`.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(ClientError::Closed);
        }
        if let Some(txn) = &inner.txn {
            txn.check_send()?;
        }
        let size = record.size();
        let limit = inner.config.max_request_size.min(inner.config.buffer_memory);
        if size > limit {
            return Err(ClientError::RecordTooLarge {
                size,
                reason: format!(
                    "max.request.size is {} and buffer.memory is {}",
                    inner.config.max_request_size, inner.config.buffer_memory
                ),
            });
        }
        // The clock is read only on the slow paths: at millions of records per second a
        // read per record is a measurable share of the send.
        let mut deadline = None;
        let mut deadline =
            move || *deadline.get_or_insert_with(|| Instant::now() + inner.config.max_block);
        let permits =
            u32::try_from(size).expect("invariant: size is at most max.request.size, an i32");
        match inner.memory.try_acquire_many(permits) {
            Ok(permit) => permit.forget(),
            Err(_) => self.wait_for_memory(permits, deadline()).await?,
        }
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let headers: Vec<Header<'_>> = record
            .headers
            .iter()
            .map(|(k, v)| Header { key: k.as_bytes(), value: v.as_deref() })
            .collect();
        loop {
            let appended = {
                let mut state = inner.state.lock().expect("lock");
                state.partition_count(&record.topic, &inner.cluster).map(|partitions| {
                    let tp = place(&mut state, &inner.config, &record, partitions, size)?;
                    let appended = state.accumulator.append(
                        &tp,
                        timestamp,
                        record.key.as_deref(),
                        record.value.as_deref(),
                        &headers,
                        size,
                        Instant::now,
                    )?;
                    Ok((tp, appended))
                })
            };
            match appended {
                Some(Ok((tp, (delivery, mut wake)))) => {
                    if let Some(txn) = &inner.txn {
                        wake |= txn
                            .with(|m| !m.partitions.contains(&tp) && m.new_partitions.insert(tp));
                    }
                    if wake {
                        inner.wake.notify_one();
                    }
                    return Ok(delivery);
                }
                Some(Err(e)) => {
                    inner.memory.add_permits(size);
                    return Err(e);
                }
                None => {
                    if let Err(e) = self.wait_for_metadata(&record.topic, deadline()).await {
                        inner.memory.add_permits(size);
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Sends a whole record batch as it is (passthrough, for the mirror) to `partition`
    /// of `topic`, after everything sent there before. Only what a new producer must
    /// change is rewritten: the base offset, the partition leader epoch, and the producer
    /// id, epoch and sequence (with the CRC that covers them). The future resolves to the
    /// batch's first record.
    ///
    /// # Errors
    /// [`ClientError::RecordTooLarge`] for a batch that is not one whole v2 batch, is a
    /// control or transactional batch, or exceeds `max.request.size`; and as [`Self::send`].
    pub async fn send_batch(
        &self,
        topic: Arc<str>,
        partition: i32,
        batch: Bytes,
    ) -> Result<DeliveryFuture> {
        use sluice_protocol::record::batch::{
            set_base_offset, set_partition_leader_epoch, set_producer,
        };
        use sluice_protocol::record::RecordBatch;
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(ClientError::Closed);
        }
        let refuse = |reason: &str| ClientError::RecordTooLarge {
            size: batch.len(),
            reason: reason.to_string(),
        };
        let (records, max_timestamp, foreign_producer) = match RecordBatch::parse(&batch) {
            Ok(b) if b.size() != batch.len() => return Err(refuse("not exactly one record batch")),
            Ok(b) if b.is_control() || b.is_transactional() => {
                return Err(refuse("control and transactional batches cannot be passed through"))
            }
            Ok(b) => (
                u32::try_from(b.records_count()).unwrap_or(0),
                b.max_timestamp(),
                b.producer_id() != -1,
            ),
            Err(e) => return Err(refuse(&e.to_string())),
        };
        if batch.len() > inner.config.max_request_size.min(inner.config.buffer_memory) {
            return Err(refuse("larger than max.request.size or buffer.memory"));
        }
        let deadline = Instant::now() + inner.config.max_block;
        let permits =
            u32::try_from(batch.len()).expect("invariant: at most max.request.size, an i32");
        match inner.memory.try_acquire_many(permits) {
            Ok(permit) => permit.forget(),
            Err(_) => self.wait_for_memory(permits, deadline).await?,
        }
        let mut bytes = batch.to_vec();
        set_base_offset(&mut bytes, 0);
        set_partition_leader_epoch(&mut bytes, -1);
        if foreign_producer && !inner.config.idempotence {
            // Without idempotence the batch must not claim the source's producer id.
            set_producer(&mut bytes, -1, -1, -1);
        }
        let bytes = Bytes::from(bytes);
        loop {
            let known = {
                let mut state = inner.state.lock().expect("lock");
                match state.partition_count(&topic, &inner.cluster) {
                    Some(n) if partition < 0 || partition as u32 >= n => {
                        drop(state);
                        inner.memory.add_permits(permits as usize);
                        return Err(ClientError::UnknownPartition {
                            topic: topic.to_string(),
                            partition,
                            partitions: n,
                        });
                    }
                    Some(_) => {
                        let tp = TopicPartition { topic: topic.clone(), partition };
                        Some(state.accumulator.append_batch(
                            &tp,
                            bytes.clone(),
                            records,
                            max_timestamp,
                            Instant::now(),
                        ))
                    }
                    None => None,
                }
            };
            match known {
                Some(delivery) => {
                    inner.wake.notify_one();
                    return Ok(delivery);
                }
                None => {
                    if let Err(e) = self.wait_for_metadata(&topic, deadline).await {
                        inner.memory.add_permits(permits as usize);
                        return Err(e);
                    }
                }
            }
        }
    }

    /// The transaction state, for a transactional producer.
    pub fn transaction_state(&self) -> Option<TransactionState> {
        self.inner.txn.as_ref().map(|t| t.state())
    }

    fn transactions(&self, operation: &str) -> Result<&Arc<Transactions>> {
        self.inner.txn.as_ref().ok_or_else(|| ClientError::Transaction {
            kind: crate::error::TransactionErrorKind::InvalidState,
            code: None,
            reason: format!("cannot {operation}: transactional.id is not set"),
        })
    }

    /// Gets the producer id and epoch of `transactional.id` from its coordinator, which
    /// fences every earlier producer with the same id and ends the transaction it left
    /// open. Call once, before the first transaction; bounded by `max.block.ms` (and may
    /// be called again after it timed out).
    ///
    /// # Errors
    /// [`ClientError::Transaction`] (fatal: fenced, not authorized) or
    /// [`ClientError::MaxBlock`].
    pub async fn init_transactions(&self) -> Result<()> {
        let txn = self.transactions("init transactions")?;
        txn.transition(TransactionState::Initializing, "init transactions")?;
        let deadline = Instant::now() + self.inner.config.max_block;
        match txn.init_producer_id(&self.inner.cluster, deadline, None).await {
            Ok(stamp) => {
                txn.with(|m| m.stamp = Some(stamp));
                txn.transition(TransactionState::Ready, "init transactions")
            }
            Err(e @ ClientError::MaxBlock { .. }) => Err(e),
            Err(e) => Err(txn.fail(Class::Fatal, e)),
        }
    }

    /// Starts a transaction: records sent from now on commit or abort together.
    ///
    /// # Errors
    /// [`ClientError::Transaction`] outside the Ready state.
    pub fn begin_transaction(&self) -> Result<()> {
        self.transactions("begin a transaction")?
            .transition(TransactionState::InTransaction, "begin a transaction")
    }

    /// Makes `offsets` (the consumer's next positions) commit for `group` with the
    /// transaction: AddOffsetsToTxn, then TxnOffsetCommit at the group's coordinator with
    /// the consumer's generation and member id (KIP-447), so a zombie member cannot commit.
    ///
    /// # Errors
    /// [`ClientError::Transaction`]: abortable (the member was fenced, not authorized) or
    /// fatal (the producer was fenced); [`ClientError::MaxBlock`].
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &[(TopicPartition, crate::consumer::OffsetAndMetadata)],
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let txn = self.transactions("send offsets")?;
        if txn.state() != TransactionState::InTransaction {
            return Err(txn.with(|m| m.refusal("send offsets")));
        }
        let stamp = txn.stamp().expect("invariant: a transaction has a producer id");
        let deadline = Instant::now() + self.inner.config.max_block;
        match txn.send_offsets(&self.inner.cluster, stamp, offsets, group, deadline).await {
            Ok(()) => Ok(()),
            Err(e @ ClientError::MaxBlock { .. }) => Err(e),
            Err(e) => {
                let class = e
                    .code()
                    .and_then(|c| transaction::classify(ApiKey::TxnOffsetCommit, c))
                    .unwrap_or(Class::Abortable);
                Err(txn.fail(class, e))
            }
        }
    }

    /// Flushes every record sent in the transaction, then commits it (EndTxn). If any
    /// record failed, nothing commits: the error is returned and the transaction must be
    /// aborted. After a [`ClientError::MaxBlock`] it may be called again.
    ///
    /// # Errors
    /// [`ClientError::Transaction`] (abortable or fatal), [`ClientError::MaxBlock`].
    pub async fn commit_transaction(&self) -> Result<()> {
        let txn = self.transactions("commit a transaction")?;
        txn.transition(TransactionState::Committing, "commit a transaction")?;
        self.flush().await;
        if txn.state() != TransactionState::Committing {
            return Err(txn.with(|m| m.refusal("commit a transaction")));
        }
        self.end_transaction(txn, true).await
    }

    /// Aborts the transaction: records not yet sent fail with an `Aborted` transaction
    /// error, those in flight are waited for, then the coordinator writes ABORT markers.
    ///
    /// # Errors
    /// [`ClientError::Transaction`] (fatal, or no transaction), [`ClientError::MaxBlock`].
    pub async fn abort_transaction(&self) -> Result<()> {
        let txn = self.transactions("abort a transaction")?;
        txn.transition(TransactionState::Aborting, "abort a transaction")?;
        let released = self
            .inner
            .state
            .lock()
            .expect("lock")
            .accumulator
            .abort_queued(&transaction::aborted("the transaction was aborted"));
        self.inner.memory.add_permits(released);
        self.flush().await;
        self.end_transaction(txn, false).await
    }

    async fn end_transaction(&self, txn: &Arc<Transactions>, commit: bool) -> Result<()> {
        let operation = if commit { "commit a transaction" } else { "abort a transaction" };
        let deadline = Instant::now() + self.inner.config.max_block;
        let (stamp, started, bump) = txn
            .with(|m| (m.stamp.expect("invariant: initialized"), m.started, m.epoch_bump_required));
        if started {
            match txn.end(&self.inner.cluster, stamp, commit, deadline).await {
                Ok(()) => {}
                Err(e @ ClientError::MaxBlock { .. }) => return Err(e),
                Err(e) => return Err(txn.fail(Class::Fatal, e)),
            }
        }
        if bump && !commit {
            // A failed batch left a gap in its partition's sequences: a new epoch starts
            // them again (KIP-360), the coordinator keeps the producer id.
            match txn.init_producer_id(&self.inner.cluster, deadline, Some(stamp)).await {
                Ok(stamp) => txn.with(|m| {
                    m.stamp = Some(stamp);
                    m.epoch_bump_required = false;
                }),
                Err(e @ ClientError::MaxBlock { .. }) => return Err(e),
                Err(e) => return Err(txn.fail(Class::Fatal, e)),
            }
        }
        txn.with(|m| {
            m.partitions.clear();
            m.new_partitions.clear();
            m.started = false;
        });
        txn.transition(TransactionState::Ready, operation)
    }

    async fn wait_for_memory(&self, permits: u32, deadline: Instant) -> Result<()> {
        let start = Instant::now();
        let memory = &self.inner.memory;
        match tokio::time::timeout_at(deadline.into(), memory.acquire_many(permits)).await {
            Ok(Ok(permit)) => {
                permit.forget();
                Ok(())
            }
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::MaxBlock {
                what: format!(
                    "{permits} bytes of buffer.memory ({})",
                    self.inner.config.buffer_memory
                ),
                waited: start.elapsed(),
            }),
        }
    }

    /// Sends one record and waits for its acknowledgement.
    ///
    /// # Errors
    /// As [`Self::send`], and whatever failed its delivery.
    pub async fn send_and_wait(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        self.send(record).await?.await
    }

    /// Waits until metadata names `topic`'s partitions, until `deadline`.
    async fn wait_for_metadata(&self, topic: &str, deadline: Instant) -> Result<()> {
        let cluster = &self.inner.cluster;
        cluster.add_interest([topic]);
        let mut attempt = 0;
        let mut last = None;
        loop {
            match cluster.refresh_metadata().await {
                Ok(()) => {
                    if cluster.with_metadata(|m| m.partition_count(topic)).is_some() {
                        return Ok(());
                    }
                    if let Some(code) = cluster.with_metadata(|m| m.topic_error(topic)) {
                        let error = ClientError::kafka(code, None, format!("metadata for {topic}"));
                        if !code.is_retriable() {
                            return Err(error);
                        }
                        last = Some(error);
                    }
                }
                Err(e) => last = Some(e),
            }
            attempt += 1;
            let wake = Instant::now() + cluster.retry_backoff(attempt);
            if wake >= deadline {
                return Err(ClientError::MaxBlock {
                    what: format!(
                        "metadata of topic {topic}{}",
                        last.map(|e| format!(" (last error: {e})")).unwrap_or_default()
                    ),
                    waited: self.inner.config.max_block,
                });
            }
            tokio::time::sleep_until(wake.into()).await;
        }
    }

    /// Sends every record placed so far at once (ignoring `linger.ms`) and waits until
    /// each is acknowledged or failed.
    pub async fn flush(&self) {
        let pending = self.inner.state.lock().expect("lock").accumulator.flush();
        self.inner.wake.notify_one();
        for completion in pending {
            completion.wait().await;
        }
    }

    /// Stops accepting records, delivers what was sent within `timeout`, then fails the
    /// rest with [`ClientError::Closed`] and closes the connections. A transaction still
    /// open is aborted first (within the same `timeout`).
    ///
    /// # Errors
    /// [`ClientError::Closed`] if some records could not be delivered in time.
    pub async fn close(&self, timeout: Duration) -> Result<()> {
        // As Java's producer: a transaction still open is aborted, not left to time out.
        if let Some(txn) = &self.inner.txn {
            if matches!(
                txn.state(),
                TransactionState::InTransaction | TransactionState::AbortableError
            ) {
                let _ = tokio::time::timeout(timeout, self.abort_transaction()).await;
            }
        }
        self.inner.closed.store(true, Ordering::Release);
        self.inner.state.lock().expect("lock").accumulator.begin_close();
        self.inner.wake.notify_one();
        let handle = self.sender.task.lock().expect("lock").take();
        let Some(mut handle) = handle else { return Ok(()) };
        let outcome = match tokio::time::timeout(timeout, &mut handle).await {
            Ok(_) => Ok(()),
            Err(_) => {
                self.inner.abort.store(true, Ordering::Release);
                handle.abort();
                let _ = handle.await;
                let released = self
                    .inner
                    .state
                    .lock()
                    .expect("lock")
                    .accumulator
                    .abort_queued(&ClientError::Closed);
                self.inner.memory.add_permits(released);
                Err(ClientError::Closed)
            }
        };
        self.inner.memory.close();
        self.inner.cluster.close().await;
        outcome
    }
}

/// Milliseconds since the epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
