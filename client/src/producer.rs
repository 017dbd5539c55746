//! The producer: `send` places a record in its partition's batch and returns at once
//! with a [`DeliveryFuture`]; a background sender task sends ready batches to their
//! leaders and settles them.
//!
//! The produce path and its copy budget:
//! ```text
//! send(record)             metadata known: no await; else waits for it (max.block.ms)
//!   -> buffer.memory       a semaphore of bytes, taken into the producer's credit in
//!                          chunks (one atomic per chunk); send waits when it is full
//!   -> partitioner         Java's murmur2 for keys, KIP-794 sticky without
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
//!
//! Files: this one has the record type and builds, measures, flushes and closes the
//! producer; `send.rs` is the send path, `transactional.rs` the transactional calls,
//! `sender.rs` the sender task.

pub mod accumulator;
pub mod delivery;
pub mod idempotence;
pub mod partitioner;
mod send;
mod sender;
pub mod transaction;
mod transactional;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::config::{ClientConfig, ProducerConfig};
pub use crate::consumer::ConsumerGroupMetadata;
use crate::error::{ClientError, Result};
use crate::metrics::{Metric, ProducerMetrics, Report};
use accumulator::{Accumulator, AccumulatorSettings};
pub use delivery::{DeliveryFuture, RecordMetadata};
use partitioner::{DefaultPartitioner, Partitioner};
use transaction::{TransactionState, Transactions};

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
    /// `buffer.memory` taken from the semaphore but not yet given to a record.
    memory_credit: send::MemoryCredit,
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
                memory_credit: send::MemoryCredit::default(),
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
