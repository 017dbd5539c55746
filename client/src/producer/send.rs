//! The send path of [`Producer`]: `send` (one record, encoded into its partition's batch)
//! and `send_batch` (a whole batch passed through, for the mirror), with the waits each
//! may take, for `buffer.memory` and for a new topic's metadata, both bounded by
//! `max.block.ms`. The path and its copy budget are in [`crate::producer`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sluice_protocol::record::Header;
use tokio::sync::Semaphore;

use super::{DeliveryFuture, Producer, ProducerRecord, RecordMetadata, State};
use crate::cluster::Cluster;
use crate::config::ProducerConfig;
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

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

/// What one try at placing a record under the state lock came to.
enum Attempt {
    /// In its partition's batch; `wake`: the sender must look again.
    Appended { partition: i32, delivery: DeliveryFuture, wake: bool },
    /// Refused.
    Failed(ClientError),
    /// `buffer.memory` is used up: wait for room.
    NoMemory,
    /// The topic's partition count is not known yet: wait for metadata.
    NoMetadata,
}

/// `buffer.memory` bytes a producer took from its semaphore but has not yet given to a
/// record: one contended atomic per chunk of records instead of per record.
#[derive(Debug, Default)]
pub(super) struct MemoryCredit(usize);

impl MemoryCredit {
    /// Takes `size` bytes for a record from the credit, topping it up from `memory` by
    /// a chunk at a time (1/64 of `buffer_memory`, so that a small buffer still fills to
    /// its last bytes, and at most 256 KiB); near the limit, by exactly what the record
    /// needs. False when even that is not free; the credit then goes back to `memory`, so
    /// that a wait for the record's whole size can be met.
    fn reserve(&mut self, size: usize, memory: &Semaphore, buffer_memory: usize) -> bool {
        if self.0 >= size {
            self.0 -= size;
            return true;
        }
        let need = size - self.0;
        let chunk = (buffer_memory / 64).min(256 << 10);
        for take in [need.max(chunk), need] {
            if let Ok(permit) = memory.try_acquire_many(take as u32) {
                permit.forget();
                self.0 = self.0 + take - size;
                return true;
            }
        }
        memory.add_permits(std::mem::take(&mut self.0));
        false
    }

    /// Gives a reserved record's `size` bytes back to the credit.
    fn give_back(&mut self, size: usize) {
        self.0 += size;
    }
}

impl State {
    /// Places a record whose memory is reserved: its partition, then its batch. When it
    /// is not placed, its memory goes back to the credit (so a send dropped while it
    /// waits for metadata holds none).
    fn append(
        &mut self,
        config: &ProducerConfig,
        cluster: &Cluster,
        record: &ProducerRecord,
        timestamp: i64,
        headers: &[Header<'_>],
        size: usize,
    ) -> Attempt {
        let Some(partitions) = self.partition_count(&record.topic, cluster) else {
            self.memory_credit.give_back(size);
            return Attempt::NoMetadata;
        };
        let appended = place(self, config, record, partitions, size).and_then(|partition| {
            let (delivery, wake) = self.accumulator.append(
                &record.topic,
                partition,
                timestamp,
                record.key.as_deref(),
                record.value.as_deref(),
                headers,
                size,
                Instant::now,
            )?;
            Ok(Attempt::Appended { partition, delivery, wake })
        });
        appended.unwrap_or_else(|e| {
            self.memory_credit.give_back(size);
            Attempt::Failed(e)
        })
    }
}

/// The partition a record goes to: its own, checked, or the partitioner's choice.
fn place(
    state: &mut State,
    config: &ProducerConfig,
    record: &ProducerRecord,
    partitions: u32,
    size: usize,
) -> Result<i32> {
    Ok(match record.partition {
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
    })
}

impl Producer {
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
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let headers: Vec<Header<'_>> = record
            .headers
            .iter()
            .map(|(k, v)| Header { key: k.as_bytes(), value: v.as_deref() })
            .collect();
        let mut reserved = false;
        loop {
            let attempt = {
                let mut state = inner.state.lock().expect("lock");
                let buffer_memory = inner.config.buffer_memory;
                reserved =
                    reserved || state.memory_credit.reserve(size, &inner.memory, buffer_memory);
                if reserved {
                    state.append(&inner.config, &inner.cluster, &record, timestamp, &headers, size)
                } else {
                    Attempt::NoMemory
                }
            };
            match attempt {
                Attempt::Appended { partition, delivery, mut wake } => {
                    if let Some(txn) = &inner.txn {
                        let tp = TopicPartition { topic: record.topic.clone(), partition };
                        wake |= txn
                            .with(|m| !m.partitions.contains(&tp) && m.new_partitions.insert(tp));
                    }
                    if wake {
                        inner.wake.notify_one();
                    }
                    return Ok(delivery);
                }
                Attempt::Failed(e) => return Err(e),
                // The waits are boxed: inline, their state would make every send's
                // future kilobytes long, and moving it cost more than the append.
                Attempt::NoMemory => {
                    Box::pin(self.wait_for_memory(permits, deadline())).await?;
                    reserved = true;
                }
                Attempt::NoMetadata => {
                    reserved = false;
                    Box::pin(self.wait_for_metadata(&record.topic, deadline())).await?;
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
}

/// Milliseconds since the epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_taken_a_chunk_at_a_time_and_to_the_last_byte() {
        let memory = Semaphore::new(1030);
        // A buffer.memory of 6,400 bytes: chunks of 100.
        let mut credit = MemoryCredit::default();
        assert!(credit.reserve(10, &memory, 6400));
        assert_eq!((memory.available_permits(), credit.0), (930, 90), "one chunk taken");
        assert!(credit.reserve(90, &memory, 6400));
        assert_eq!((memory.available_permits(), credit.0), (930, 0), "from the credit alone");
        for _ in 0..9 {
            assert!(credit.reserve(100, &memory, 6400));
        }
        // Less than a chunk is left: exactly what the record needs.
        assert_eq!(memory.available_permits(), 30);
        assert!(credit.reserve(30, &memory, 6400));
        assert_eq!((memory.available_permits(), credit.0), (0, 0));
        assert!(!credit.reserve(1, &memory, 6400));
    }

    #[test]
    fn a_record_that_cannot_be_reserved_returns_the_credit_for_its_wait() {
        let memory = Semaphore::new(100);
        // A buffer.memory of 3,200 bytes: chunks of 50.
        let mut credit = MemoryCredit::default();
        assert!(credit.reserve(10, &memory, 3200));
        assert_eq!((memory.available_permits(), credit.0), (50, 40));
        // 40 in credit and 50 free: a 95-byte record is refused, and the whole 90 is free
        // again for its wait (were the credit kept, a wait for 95 could never end).
        assert!(!credit.reserve(95, &memory, 3200));
        assert_eq!((memory.available_permits(), credit.0), (90, 0));
        credit.give_back(10);
        assert!(credit.reserve(95, &memory, 3200));
        assert_eq!((memory.available_permits(), credit.0), (5, 0));
    }
}
