//! The broker's own internal topics (`__consumer_offsets`, `__transaction_state`) on its
//! own storage engine: created on first use with settings no client may loosen, read
//! whole at start to rebuild a coordinator, appended to as the coordinator writes, and
//! compacted by the log cleaner.
//!
//! Layout: one partition. Kafka spreads keys over 50 partitions so that coordinators
//! spread over brokers; on a single node one partition keeps loading to one sequential
//! scan and keeps every key's records in order.
//!
//! Compaction: the log cleaner's, as for any topic with `cleanup.policy=compact` (Kafka's
//! way for these topics). Each coordinator record is keyed by what it describes (a
//! group, a committed offset, a transactional id) and its value is the whole state of
//! that key, or a tombstone when the key goes; so the latest record per key, which the
//! cleaner keeps, is exactly the coordinator's state, and loading applies records in
//! order with later ones winning. A tombstone stays `delete.retention.ms` after the pass
//! that first keeps it, and the records it deletes are gone before it (the cleaner drops a
//! key's older records in the pass that first sees the newer one). The cleaner runs when
//! the sealed segments' dirty ratio passes `min.cleanable.dirty.ratio` (0.5), so the log
//! stays within about twice the live data plus the active segment (`segment.bytes` 16
//! MiB); with `log.cleaner.enable=false` it grows without bound, as Kafka's does.
//!
//! The topics have `retention.ms=-1` and `retention.bytes=-1` (records must not age out;
//! clients cannot change that, see [`crate::topic_config::check_internal`]) and
//! `cleanup.policy=compact`.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use sluice_protocol::record::{batches, BatchBuilder, Compression};

use crate::partition::Partition;
use crate::storage::{PartitionLog, StorageError};
use crate::topic_config::check_internal;
use crate::topics::{TopicError, Topics};

/// `segment.bytes` of an internal topic.
const SEGMENT_BYTES: &str = "16777216";
/// How much of the log one read brings in while loading.
const LOAD_CHUNK: u64 = 1 << 20;
/// Decompression limit for a batch read back (ours are uncompressed; this bounds a
/// corrupt or foreign one).
const MAX_BATCH_RECORDS_BYTES: usize = 64 << 20;

/// One record of an internal topic, as a coordinator writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Encoded key.
    pub key: Bytes,
    /// Encoded value, or `None` to delete the key.
    pub value: Option<Bytes>,
}

/// What loading found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Records applied.
    pub records: u64,
    /// Records that did not decode and were skipped.
    pub skipped: u64,
}

/// Why an internal topic could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Creating or reconfiguring the topic failed.
    Topic(TopicError),
    /// The topic has no partition 0.
    NoPartition,
}

/// An internal topic's one partition.
#[derive(Debug)]
pub struct InternalLog {
    topic: &'static str,
    partition: Arc<Partition>,
    /// The partition's log, opened with it.
    log: Arc<PartitionLog>,
}

impl InternalLog {
    /// Opens `topic`, creating it with the internal settings (and `extra` ones) when
    /// absent, and restoring them when some other way made it without them.
    ///
    /// # Errors
    /// The topic cannot be created or has no partition 0.
    pub fn open(
        topics: &Topics,
        topic: &'static str,
        extra: &[(&str, &str)],
    ) -> Result<InternalLog, OpenError> {
        let mut wanted = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("retention.ms".to_string(), "-1".to_string()),
            ("retention.bytes".to_string(), "-1".to_string()),
            ("segment.bytes".to_string(), SEGMENT_BYTES.to_string()),
        ]);
        wanted.extend(extra.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())));
        let found = match topics.get(topic) {
            Some(t) => t,
            None => match topics.create(topic, 1, -1, wanted.clone(), false) {
                Ok(t) => t,
                Err(TopicError::AlreadyExists(_)) => {
                    topics.get(topic).ok_or(OpenError::NoPartition)?
                }
                Err(e) => return Err(OpenError::Topic(e)),
            },
        };
        // A topic made some other way (an older broker, or one whose broker-wide retention
        // would reach it) could let retention delete its records: give it the internal
        // topic's settings.
        if check_internal(topic, &found.config).is_err() {
            let mut overrides = found.overrides.clone();
            overrides.extend(wanted);
            topics.set_overrides(topic, overrides, false).map_err(OpenError::Topic)?;
            tracing::warn!(topic, "internal topic lacked its settings; they were applied");
        }
        let partition = found.partition(0).ok_or(OpenError::NoPartition)?;
        let log = partition.log().map_err(|e| OpenError::Topic(e.into()))?;
        Ok(InternalLog { topic, partition: Arc::clone(partition), log: Arc::clone(log) })
    }

    /// Records between the log start and end offsets.
    pub fn records(&self) -> i64 {
        self.log.log_end_offset() - self.log.log_start_offset()
    }

    /// Reads the whole log, handing each record's key and value to `apply` (a record it
    /// refuses is counted as skipped and logged). Blocking.
    ///
    /// # Errors
    /// A storage error reading the log, or a batch that fails its checks.
    pub fn load<E: std::fmt::Display>(
        &self,
        mut apply: impl FnMut(&[u8], Option<&[u8]>) -> Result<(), E>,
    ) -> Result<LoadStats, StorageError> {
        let log = &self.log;
        let end = log.log_end_offset();
        let mut next = log.log_start_offset();
        let mut stats = LoadStats::default();
        while next < end {
            let read = self.partition.read(next, LOAD_CHUNK)?;
            let Some(slice) = read.slice else { break };
            let bytes = slice
                .read_to_vec()
                .map_err(|e| StorageError::io("read internal topic", log.dir(), e))?;
            let start = next;
            for batch in batches(&bytes) {
                let batch = batch.map_err(|source| invalid(source, 0))?;
                batch.verify_crc().map_err(|source| invalid(source, 0))?;
                next = batch.last_offset() + 1;
                if batch.is_control() {
                    continue;
                }
                let records = match batch.records(MAX_BATCH_RECORDS_BYTES) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(topic = self.topic, offset = batch.base_offset(), error = %e, "skipping unreadable batch");
                        stats.skipped += u64::from(batch.records_count().max(0) as u32);
                        continue;
                    }
                };
                for record in &records {
                    let applied = record.map_err(|e| e.to_string()).and_then(|r| {
                        if records.offset(&r) < start {
                            return Ok(false);
                        }
                        let key = r.key().ok_or_else(|| "record without a key".to_string())?;
                        apply(key, r.value()).map(|()| true).map_err(|e| e.to_string())
                    });
                    match applied {
                        Ok(true) => stats.records += 1,
                        Ok(false) => {}
                        Err(reason) => {
                            stats.skipped += 1;
                            tracing::warn!(topic = self.topic, %reason, "skipping a record");
                        }
                    }
                }
            }
            if next <= start {
                // No progress: the read returned no whole batch past `start`.
                break;
            }
        }
        Ok(stats)
    }

    /// Appends each write as one batch (so each is atomic across a crash), all in one
    /// append (one sync in durable mode). Blocking.
    ///
    /// # Errors
    /// The storage error; nothing of the set was appended.
    pub fn append(&self, writes: &[Vec<LogRecord>], now: i64) -> Result<(), StorageError> {
        let mut set = Vec::new();
        for records in writes {
            set.extend_from_slice(&self.build_batch(records, now));
        }
        if set.is_empty() {
            return Ok(());
        }
        self.partition.append_blocking(&set).map(|_| ())
    }

    /// Runs one log cleaner pass at `now`, as the cleaner's threads would.
    #[cfg(test)]
    pub(crate) fn clean(&self, now: i64) -> crate::storage::CleanStats {
        let stop = std::sync::atomic::AtomicBool::new(false);
        let res = crate::storage::CleanerResources {
            map_bytes: 1 << 20,
            load_factor: 0.9,
            io_buffer_bytes: 1 << 16,
            throttle: &|_| {},
            stop: &stop,
        };
        self.log.clean(&res, now).expect("a pass").expect("a compacted log")
    }

    /// One uncompressed batch of these records (empty for none).
    fn build_batch(&self, records: &[LogRecord], now: i64) -> Vec<u8> {
        let mut b = BatchBuilder::new(Compression::None);
        for r in records {
            // Keys and values are bounded by the coordinators, far below the format's
            // limits: an error here is a bug, reported rather than hidden.
            if let Err(e) = b.append(now, Some(&r.key), r.value.as_deref(), &[]) {
                tracing::error!(topic = self.topic, error = %e, "cannot encode an internal record");
            }
        }
        b.build().unwrap_or_default()
    }
}

fn invalid(source: sluice_protocol::record::BatchError, position: usize) -> StorageError {
    StorageError::InvalidBatch { position, source }
}
