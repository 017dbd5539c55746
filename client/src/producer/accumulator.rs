//! The record accumulator, sans I/O: per partition, the batch being filled and the
//! closed batches waiting to be sent, in order; which of them are ready to go, to which
//! leader; and the bookkeeping that `flush` and `buffer.memory` rely on.
//!
//! Invariants:
//! - Within a partition, batches leave in the order they were created (ids increase), and
//!   a batch sent again goes back to its place by id. With idempotence, sequences are
//!   assigned at first drain in that same order, so the broker sees them increase.
//! - A partition whose front batch is a retry sends nothing until everything else it has
//!   in flight has come back (the broker would refuse later sequences anyway); then it
//!   sends one batch at a time until the retries are through.
//! - Every batch that exists is in `incomplete` until [`Accumulator::complete`] settles it,
//!   so `flush` can wait for exactly the batches that existed when it was called.
//!
//! Time is passed in (`now`), so tests drive it with a fake clock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_protocol::record::batch::set_producer;
use sluice_protocol::record::compression::Compression;
use sluice_protocol::record::{BatchBuilder, Header};

use super::delivery::{BatchAck, BatchCompletion, CompletionGuard, DeliveryFuture};
use crate::error::{ClientError, Result};

pub use crate::metadata::TopicPartition;

/// The producer identity stamped into batches (-1, -1 without idempotence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStamp {
    /// The producer id.
    pub id: i64,
    /// The producer epoch.
    pub epoch: i16,
}

impl ProducerStamp {
    /// Not idempotent.
    pub const NONE: ProducerStamp = ProducerStamp { id: -1, epoch: -1 };
}

/// Bytes a batch has beyond its records: the v2 header, and a request's per-partition
/// framing.
const BATCH_OVERHEAD: usize = 61 + 32;

/// Record buffers of compressed batches kept for the next batches, at most (each up to
/// `batch.size`, 1 MiB at most; Java's `BufferPool` keeps its buffers the same way):
/// records go into memory already faulted in instead of fresh pages. `sluice perf
/// produce`, lz4, 3,000,000 random 100-byte records, three alternating runs: client CPU
/// 1.23-1.48 s against 1.44-1.63 s without, page faults 54,000-194,000 against
/// 83,000-201,000.
const SPARE_BUFFERS: usize = 4;

#[derive(Debug)]
struct OpenBatch {
    id: u64,
    builder: BatchBuilder,
    created: Instant,
    completion: CompletionGuard,
    records: u32,
    memory: usize,
}

/// A closed batch: built bytes plus what sending and settling it needs.
#[derive(Debug)]
pub struct Batch {
    /// Creation order within the producer.
    pub id: u64,
    /// Where it goes.
    pub tp: TopicPartition,
    /// The whole v2 batch.
    pub bytes: Bytes,
    /// Records in it.
    pub records: u32,
    /// When its first record was appended (delivery.timeout.ms counts from here).
    pub created: Instant,
    /// Sends so far.
    pub attempts: u32,
    /// Not to be sent again before this.
    pub retry_at: Option<Instant>,
    /// Its base sequence, once assigned, and the stamp it was assigned under.
    pub sequence: Option<(i32, ProducerStamp)>,
    /// What its last attempt failed with.
    pub last_error: Option<ClientError>,
    /// `buffer.memory` bytes it holds.
    pub memory: usize,
    completion: CompletionGuard,
}

#[derive(Debug, Default)]
struct PartitionQueue {
    open: Option<OpenBatch>,
    queued: VecDeque<Batch>,
    in_flight: usize,
    next_sequence: i32,
}

/// What [`Accumulator::drain`] found.
#[derive(Debug, Default)]
pub struct Drained {
    /// Batches to send, by leader node.
    pub by_node: BTreeMap<i32, Vec<Batch>>,
    /// The earliest time something becomes ready without new input.
    pub next_wakeup: Option<Instant>,
    /// Some partition with data has no known leader: refresh metadata.
    pub unknown_leader: bool,
    /// Batches past `delivery.timeout.ms`, already taken out: fail them.
    pub expired: Vec<Batch>,
    /// Partitions with records that could not go because they are not in the
    /// transaction yet (see [`Accumulator::drain_where`]).
    pub blocked: Vec<TopicPartition>,
}

/// Settings the accumulator needs.
#[derive(Debug, Clone)]
pub struct AccumulatorSettings {
    /// `batch.size`.
    pub batch_size: usize,
    /// `linger.ms`.
    pub linger: Duration,
    /// `compression.type`.
    pub compression: Compression,
    /// Its level; `None` for the codec's default.
    pub compression_level: Option<i32>,
    /// `max.request.size`.
    pub max_request_size: usize,
    /// `delivery.timeout.ms`.
    pub delivery_timeout: Duration,
    /// `max.in.flight.requests.per.connection` (also per partition).
    pub max_in_flight: usize,
    /// Batches are built with the transactional attribute (a `transactional.id` is set).
    pub transactional: bool,
}

/// Batches per partition, waiting to be sent.
#[derive(Debug)]
pub struct Accumulator {
    settings: AccumulatorSettings,
    /// Queues by index; `index` finds them, `last` skips the hash for a run of records to
    /// one partition (the common case, and the sticky partitioner's).
    queues: Vec<(TopicPartition, PartitionQueue)>,
    index: HashMap<TopicPartition, usize>,
    last: Option<(TopicPartition, usize)>,
    rotate: usize,
    next_id: u64,
    incomplete: BTreeMap<u64, Arc<BatchCompletion>>,
    /// Batches with ids below this are ready whatever their linger (flush).
    flush_below: u64,
    closing: bool,
    /// Record buffers that compression left unused, for the next batches to fill.
    spares: Vec<Vec<u8>>,
}

impl Accumulator {
    /// An empty accumulator.
    pub fn new(settings: AccumulatorSettings) -> Self {
        Accumulator {
            settings,
            queues: Vec::new(),
            index: HashMap::new(),
            last: None,
            rotate: 0,
            next_id: 0,
            incomplete: BTreeMap::new(),
            flush_below: 0,
            closing: false,
            spares: Vec::new(),
        }
    }

    /// Appends a record to its partition's open batch, starting a batch if it does not
    /// fit. Returns the record's delivery and whether the sender must look again: a
    /// batch became ready, or a new one started (its linger deadline is new).
    ///
    /// `memory` is the `buffer.memory` the caller reserved for this record; `now` is read
    /// only when a batch starts (a clock read per record costs more than the append).
    ///
    /// # Errors
    /// [`ClientError::RecordTooLarge`] for a field the wire format cannot hold.
    #[expect(
        clippy::too_many_arguments,
        reason = "a record's fields, its memory and the clock, all used once"
    )]
    pub fn append(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header<'_>],
        memory: usize,
        now: impl FnOnce() -> Instant,
    ) -> Result<(DeliveryFuture, bool)> {
        let limit = self.batch_limit();
        let at = self.queue_index(topic, partition);
        let (tp, queue) = &mut self.queues[at];
        let mut became_ready = false;
        let mut appended = false;
        if let Some(open) = &mut queue.open {
            match open.builder.append_within(limit, timestamp, key, value, headers) {
                Ok(Some(_)) => appended = true,
                Ok(None) => {
                    let open = queue.open.take().expect("checked above");
                    queue.queued.push_back(close(open, tp, &mut self.spares));
                    became_ready = true;
                }
                Err(e) => return Err(too_large(e)),
            }
        }
        if queue.open.is_none() {
            became_ready = true;
            let id = self.next_id;
            self.next_id += 1;
            let completion = CompletionGuard::new(tp.clone());
            self.incomplete.insert(id, completion.completion().clone());
            let capacity = self.settings.batch_size.min(limit).min(1 << 20);
            let builder = match self.spares.pop() {
                Some(buffer) => BatchBuilder::with_buffer(self.settings.compression, buffer),
                None => BatchBuilder::with_capacity(self.settings.compression, capacity),
            };
            queue.open = Some(OpenBatch {
                id,
                builder: builder
                    .level(self.settings.compression_level)
                    .transactional(self.settings.transactional),
                created: now(),
                completion,
                records: 0,
                memory: 0,
            });
        }
        let open = queue.open.as_mut().expect("just ensured");
        if !appended {
            open.builder.append(timestamp, key, value, headers).map_err(too_large)?;
        }
        let index = open.records;
        open.records += 1;
        open.memory += memory;
        let future = DeliveryFuture::new(open.completion.completion().clone(), index, timestamp);
        if open.builder.uncompressed_size() >= self.settings.batch_size {
            let open = queue.open.take().expect("present");
            queue.queued.push_back(close(open, tp, &mut self.spares));
            became_ready = true;
        }
        Ok((future, became_ready))
    }

    /// Queues a batch built elsewhere (passthrough: a batch fetched from another
    /// cluster) behind everything already appended to `tp`; it is sent as it is, with only
    /// the producer fields stamped at drain. Returns the delivery of its first record.
    pub fn append_batch(
        &mut self,
        tp: &TopicPartition,
        bytes: Bytes,
        records: u32,
        max_timestamp: i64,
        now: Instant,
    ) -> DeliveryFuture {
        let at = self.queue_index(&tp.topic, tp.partition);
        let queue = &mut self.queues[at].1;
        if let Some(open) = queue.open.take() {
            queue.queued.push_back(close(open, tp, &mut self.spares));
        }
        let id = self.next_id;
        self.next_id += 1;
        let completion = CompletionGuard::new(tp.clone());
        self.incomplete.insert(id, completion.completion().clone());
        let future = DeliveryFuture::new(completion.completion().clone(), 0, max_timestamp);
        let memory = bytes.len();
        queue.queued.push_back(Batch {
            id,
            tp: tp.clone(),
            bytes,
            records,
            created: now,
            attempts: 0,
            retry_at: None,
            sequence: None,
            last_error: None,
            memory,
            completion,
        });
        future
    }

    /// The index of the queue of `partition` of `topic`, made if new. A run of records
    /// to the queue of the last call costs no reference count.
    fn queue_index(&mut self, topic: &Arc<str>, partition: i32) -> usize {
        if let Some((last, at)) = &self.last {
            if Arc::ptr_eq(&last.topic, topic) && last.partition == partition {
                return *at;
            }
        }
        let tp = &TopicPartition { topic: topic.clone(), partition };
        let at = match self.index.get(tp) {
            Some(&at) => at,
            None => {
                self.queues.push((tp.clone(), PartitionQueue::default()));
                self.index.insert(tp.clone(), self.queues.len() - 1);
                self.queues.len() - 1
            }
        };
        self.last = Some((tp.clone(), at));
        at
    }

    /// The most record bytes one batch may hold.
    fn batch_limit(&self) -> usize {
        self.settings.max_request_size.saturating_sub(BATCH_OVERHEAD).max(1)
    }

    /// Takes the batches ready at `now`, at most one per partition and at most
    /// `max.request.size` bytes per node, for nodes `can_send` accepts.
    ///
    /// `leader` names a partition's leader; `stamp` is the producer identity to assign
    /// sequences under (`None`: no idempotence).
    pub fn drain(
        &mut self,
        now: Instant,
        leader: impl Fn(&TopicPartition) -> Option<i32>,
        can_send: impl Fn(i32) -> bool,
        stamp: Option<ProducerStamp>,
    ) -> Drained {
        self.drain_where(now, leader, can_send, stamp, |_| true)
    }

    /// As [`Self::drain`], sending only partitions `joined` accepts (a transactional
    /// producer's partitions already added to the transaction); the others that hold
    /// records are named in [`Drained::blocked`].
    pub fn drain_where(
        &mut self,
        now: Instant,
        leader: impl Fn(&TopicPartition) -> Option<i32>,
        can_send: impl Fn(i32) -> bool,
        stamp: Option<ProducerStamp>,
        joined: impl Fn(&TopicPartition) -> bool,
    ) -> Drained {
        let mut out = Drained::default();
        let mut request_bytes: HashMap<i32, usize> = HashMap::new();
        let n = self.queues.len();
        if n == 0 {
            return out;
        }
        self.rotate = (self.rotate + 1) % n;
        let settings = self.settings.clone();
        let max_request = settings.max_request_size;
        for i in 0..n {
            let (tp, queue) = &mut self.queues[(self.rotate + i) % n];
            let tp = &*tp;
            expire(queue, tp, &settings, now, &mut out.expired, &mut self.spares);
            // The open batch closes when it is due: lingered long enough, flushed, closing.
            if queue.queued.is_empty() {
                if let Some(open) = &queue.open {
                    let due = open.created + settings.linger;
                    if due <= now || open.id < self.flush_below || self.closing {
                        let open = queue.open.take().expect("present");
                        queue.queued.push_back(close(open, tp, &mut self.spares));
                    } else {
                        out.next_wakeup = earliest(out.next_wakeup, due);
                    }
                }
            }
            let has_records = queue.open.is_some() || !queue.queued.is_empty();
            if has_records && !joined(tp) {
                out.blocked.push(tp.clone());
                continue;
            }
            let Some(front) = queue.queued.front() else { continue };
            if let Some(at) = front.retry_at.filter(|&at| at > now) {
                out.next_wakeup = earliest(out.next_wakeup, at);
                continue;
            }
            let retrying = front.attempts > 0;
            if (retrying && queue.in_flight > 0) || queue.in_flight >= settings.max_in_flight {
                continue;
            }
            let Some(node) = leader(tp) else {
                out.unknown_leader = true;
                continue;
            };
            if !can_send(node) {
                continue;
            }
            let used = request_bytes.entry(node).or_default();
            if *used > 0 && *used + front.bytes.len() > max_request {
                continue;
            }
            let mut batch = queue.queued.pop_front().expect("front exists");
            *used += batch.bytes.len();
            if let Some(stamp) = stamp {
                if batch.sequence.is_none_or(|(_, s)| s != stamp) {
                    let seq = queue.next_sequence;
                    queue.next_sequence = seq.wrapping_add(batch.records as i32) & i32::MAX;
                    let mut bytes = batch.bytes.to_vec();
                    set_producer(&mut bytes, stamp.id, stamp.epoch, seq);
                    batch.bytes = Bytes::from(bytes);
                    batch.sequence = Some((seq, stamp));
                }
            }
            batch.attempts += 1;
            batch.retry_at = None;
            queue.in_flight += 1;
            out.by_node.entry(node).or_default().push(batch);
        }
        out
    }

    /// Puts a batch that is to be sent again back in its place, not before `retry_at`.
    /// `was_in_flight`: it came back from a request (rather than never leaving).
    pub fn requeue(
        &mut self,
        mut batch: Batch,
        retry_at: Instant,
        error: ClientError,
        was_in_flight: bool,
    ) {
        batch.retry_at = Some(retry_at);
        batch.last_error = Some(error);
        let at = self.queue_index(&batch.tp.topic, batch.tp.partition);
        let queue = &mut self.queues[at].1;
        if was_in_flight {
            queue.in_flight = queue.in_flight.saturating_sub(1);
        }
        let at = queue.queued.iter().position(|b| b.id > batch.id).unwrap_or(queue.queued.len());
        queue.queued.insert(at, batch);
    }

    /// Settles a batch: every record's delivery resolves with `result`. Returns the
    /// `buffer.memory` bytes it released. `was_in_flight`: it came back from a request.
    pub fn complete(
        &mut self,
        batch: Batch,
        result: Result<BatchAck>,
        was_in_flight: bool,
    ) -> usize {
        if was_in_flight {
            if let Some(&at) = self.index.get(&batch.tp) {
                let q = &mut self.queues[at].1;
                q.in_flight = q.in_flight.saturating_sub(1);
            }
        }
        self.incomplete.remove(&batch.id);
        batch.completion.completion().complete(result);
        batch.memory
    }

    /// Whether an older batch of `tp` than `id` is queued to be sent again.
    pub fn has_retry_before(&self, tp: &TopicPartition, id: u64) -> bool {
        self.index
            .get(tp)
            .map(|&at| &self.queues[at].1)
            .is_some_and(|q| q.queued.iter().take_while(|b| b.id < id).any(|b| b.attempts > 0))
    }

    /// Starts every partition's sequences again from 0 (after an epoch bump, KIP-360).
    pub fn reset_sequences(&mut self) {
        for (_, queue) in &mut self.queues {
            queue.next_sequence = 0;
        }
    }

    /// Batches in flight, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.queues.iter().map(|(_, q)| q.in_flight).sum()
    }

    /// Makes every batch that exists now ready, and returns their completions to wait on.
    pub fn flush(&mut self) -> Vec<Arc<BatchCompletion>> {
        self.flush_below = self.next_id;
        self.incomplete.values().cloned().collect()
    }

    /// From now on every batch is ready at once; used by `close`.
    pub fn begin_close(&mut self) {
        self.closing = true;
        self.flush_below = u64::MAX;
    }

    /// Whether no batch is left unsettled.
    pub fn is_empty(&self) -> bool {
        self.incomplete.is_empty()
    }

    /// Fails every batch not in flight with `error`; returns the memory they released.
    pub fn abort_queued(&mut self, error: &ClientError) -> usize {
        let mut released = 0;
        for (tp, queue) in &mut self.queues {
            if let Some(open) = queue.open.take() {
                let batch = close(open, tp, &mut self.spares);
                self.incomplete.remove(&batch.id);
                batch.completion.completion().complete(Err(error.clone()));
                released += batch.memory;
            }
            for batch in queue.queued.drain(..) {
                self.incomplete.remove(&batch.id);
                batch.completion.completion().complete(Err(error.clone()));
                released += batch.memory;
            }
        }
        released
    }
}

fn too_large(e: sluice_protocol::record::BuildError) -> ClientError {
    ClientError::RecordTooLarge { size: 0, reason: e.to_string() }
}

/// Builds an open batch, keeping the record buffer compression left unused in `spares`.
/// It holds at least one record that appended without error and at most
/// `max.request.size` bytes, so the format's limits cannot be exceeded.
fn close(open: OpenBatch, tp: &TopicPartition, spares: &mut Vec<Vec<u8>>) -> Batch {
    let (bytes, spare) = open
        .builder
        .build_recycling()
        .expect("invariant: an open batch has records and fits an i32 length");
    if let Some(buffer) = spare.filter(|_| spares.len() < SPARE_BUFFERS) {
        spares.push(buffer);
    }
    Batch {
        id: open.id,
        tp: tp.clone(),
        bytes: Bytes::from(bytes),
        records: open.records,
        created: open.created,
        attempts: 0,
        retry_at: None,
        sequence: None,
        last_error: None,
        memory: open.memory,
        completion: open.completion,
    }
}

/// Takes out every batch not in flight that is past `delivery.timeout.ms`.
fn expire(
    queue: &mut PartitionQueue,
    tp: &TopicPartition,
    settings: &AccumulatorSettings,
    now: Instant,
    out: &mut Vec<Batch>,
    spares: &mut Vec<Vec<u8>>,
) {
    let deadline = |created: Instant| created + settings.delivery_timeout;
    if queue.open.as_ref().is_some_and(|o| deadline(o.created) <= now) {
        let open = queue.open.take().expect("present");
        out.push(close(open, tp, spares));
    }
    while queue.queued.front().is_some_and(|b| deadline(b.created) <= now) {
        out.push(queue.queued.pop_front().expect("front exists"));
    }
}

fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}

#[cfg(test)]
mod tests;
