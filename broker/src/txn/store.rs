//! `__transaction_state` on the broker's own storage engine, in the way of
//! `__transaction_state` ([`crate::group::store`]): created on first start, read whole at
//! start to rebuild the coordinator, appended to as the coordinator writes, and compacted
//! by rewriting. Records are in the format of [`super::records`].
//!
//! Layout: one partition. Kafka spreads transactional ids over 50 partitions so that
//! coordinators spread over brokers; on a single node there is one coordinator, and one
//! partition keeps loading to one sequential scan and every id's records in order.
//!
//! Compaction: the coordinator's memory *is* the latest value of every live key. When the
//! log holds more than `max(min_records, 2 × live records at the last compaction)`
//! records, the driver (with no write in flight) asks the state machine for a snapshot,
//! appends it, and moves the log start offset to its first record with
//! `delete_records`; whole segments below are then deleted (here and by the retention
//! task). Each compaction rewrites L live records after at least 2L appends, so the cost
//! is amortised O(1) per write and the log stays within about twice the live data plus
//! one segment (`segment.bytes` 16 MiB for this topic, so little garbage waits in the
//! active segment). A crash between the append and the move leaves duplicates, which
//! loading absorbs: later records win. Tombstones need no rewriting: after a snapshot,
//! nothing before it is read.
//!
//! The topic has `retention.ms=-1` and `retention.bytes=-1` (records must not age out;
//! clients cannot change that, see [`crate::topic_config::check_internal`]) and
//! `cleanup.policy=compact` (for operators' eyes; the rewrite above is what compacts).

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_protocol::record::{batches, BatchBuilder, Compression};

use super::state::{Coordinator, LogRecord};
use super::TxnError;
use crate::partition::Partition;
use crate::storage::StorageError;
use crate::topic_config::check_internal;
use crate::topics::{TopicError, Topics};

/// Kafka's name for the internal topic.
pub const TOPIC: &str = "__transaction_state";
/// `segment.bytes` of the internal topic.
const SEGMENT_BYTES: &str = "16777216";
/// How much of the log one read brings in while loading.
const LOAD_CHUNK: u64 = 1 << 20;
/// Largest batch a compaction writes (the broker's default `message.max.bytes`).
const SNAPSHOT_BATCH_BYTES: usize = 1 << 20;
/// `max.message.bytes` of the topic: one transaction's record, bounded by the state
/// machine's limits, fits.
const MAX_MESSAGE_BYTES: &str = "33554432";
/// Decompression limit for a batch read back (ours are uncompressed; this bounds a
/// corrupt or foreign one).
const MAX_BATCH_RECORDS_BYTES: usize = 64 << 20;

/// What loading found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Records applied.
    pub records: u64,
    /// Records that did not decode and were skipped.
    pub skipped: u64,
}

/// The internal topic's partition.
#[derive(Debug)]
pub struct TxnLog {
    partition: Arc<Partition>,
}

impl TxnLog {
    /// Opens the internal topic, creating it on first start.
    ///
    /// # Errors
    /// The topic cannot be created or has no partition 0.
    pub fn open(topics: &Topics) -> Result<TxnLog, TxnError> {
        let wanted = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("retention.ms".to_string(), "-1".to_string()),
            ("retention.bytes".to_string(), "-1".to_string()),
            ("segment.bytes".to_string(), SEGMENT_BYTES.to_string()),
            ("max.message.bytes".to_string(), MAX_MESSAGE_BYTES.to_string()),
        ]);
        let topic = match topics.get(TOPIC) {
            Some(t) => t,
            None => match topics.create(TOPIC, 1, -1, wanted.clone(), false) {
                Ok(t) => t,
                Err(TopicError::AlreadyExists(_)) => {
                    topics.get(TOPIC).ok_or(TxnError::NoPartition)?
                }
                Err(e) => return Err(e.into()),
            },
        };
        // A topic made some other way (or one whose broker-wide retention would reach it)
        // could let retention delete transactions: give it the internal topic's settings.
        if check_internal(TOPIC, &topics.effective_config(&topic)).is_err() {
            let mut overrides = topic.overrides.clone();
            overrides.extend(wanted);
            topics.set_overrides(TOPIC, overrides, false)?;
            tracing::warn!("__transaction_state lacked its settings; they were applied");
        }
        let partition = topic.partition(0).ok_or(TxnError::NoPartition)?;
        Ok(TxnLog { partition: Arc::clone(partition) })
    }

    /// Records between the log start and end offsets.
    pub fn records(&self) -> i64 {
        let log = self.partition.log();
        log.log_end_offset() - log.log_start_offset()
    }

    /// Reads the whole log into a loading coordinator. Blocking.
    ///
    /// # Errors
    /// A storage error reading the log, or a batch that fails its checks.
    pub fn load_into(&self, c: &mut Coordinator) -> Result<LoadStats, StorageError> {
        let log = self.partition.log();
        let end = log.log_end_offset();
        let mut next = log.log_start_offset();
        let mut stats = LoadStats::default();
        while next < end {
            let read = self.partition.read(next, LOAD_CHUNK)?;
            let Some(slice) = read.slice else { break };
            let bytes = slice
                .read_to_vec()
                .map_err(|e| StorageError::io("read __transaction_state", log.dir(), e))?;
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
                        tracing::warn!(offset = batch.base_offset(), error = %e, "skipping unreadable batch in __transaction_state");
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
                        c.load(key, r.value()).map(|()| true).map_err(|e| e.to_string())
                    });
                    match applied {
                        Ok(true) => stats.records += 1,
                        Ok(false) => {}
                        Err(reason) => {
                            stats.skipped += 1;
                            tracing::warn!(%reason, "skipping a __transaction_state record");
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
            set.extend_from_slice(&build_batch(records, now));
        }
        if set.is_empty() {
            return Ok(());
        }
        self.partition.append_blocking(&set).map(|_| ())
    }

    /// Appends a snapshot of every live record and drops everything before it. Blocking.
    ///
    /// # Errors
    /// The storage error of the append or of moving the log start.
    pub fn compact(&self, snapshot: &[LogRecord], now: i64) -> Result<i64, StorageError> {
        let log = self.partition.log();
        let start = log.log_end_offset();
        let mut set = Vec::new();
        let mut chunk_start = 0;
        let mut size = 0;
        for (i, r) in snapshot.iter().enumerate() {
            size += r.key.len() + r.value.as_ref().map_or(0, |v| v.len()) + 32;
            if size >= SNAPSHOT_BATCH_BYTES || i + 1 == snapshot.len() {
                set.extend_from_slice(&build_batch(&snapshot[chunk_start..=i], now));
                chunk_start = i + 1;
                size = 0;
            }
        }
        let first =
            if set.is_empty() { start } else { self.partition.append_blocking(&set)?.base_offset };
        let new_start = log.delete_records(first)?;
        // Whole segments below the new start go now rather than at the next retention
        // check.
        log.apply_retention(now)?;
        Ok(new_start)
    }
}

fn invalid(source: sluice_protocol::record::BatchError, position: usize) -> StorageError {
    StorageError::InvalidBatch { position, source }
}

/// One uncompressed batch of these records (empty for none).
fn build_batch(records: &[LogRecord], now: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None);
    for r in records {
        // Values are bounded by the state machine, far below the format's limits: an
        // error here is a bug, reported rather than hidden.
        if let Err(e) = b.append(now, Some(&r.key), r.value.as_deref(), &[]) {
            tracing::error!(error = %e, "cannot encode a __transaction_state record");
        }
    }
    b.build().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::topics::TopicDefaults;
    use crate::txn::state::{Input, Output, ProducerIdSource, Request, TxnConfig};

    #[derive(Debug)]
    struct Ids;
    impl ProducerIdSource for Ids {
        fn next_id(&self) -> Result<i64, sluice_protocol::error_code::ErrorCode> {
            Ok(1)
        }
    }

    fn init(c: &mut Coordinator, log: &TxnLog, txn: &str) {
        let request =
            Request::InitProducerId { txn_id: txn.into(), timeout_ms: 1000, expected: None };
        for o in c.step(Input::Request(1, request), 1000) {
            if let Output::Write(id, record) = o {
                log.append(&[vec![record]], 1000).unwrap();
                c.step(Input::Written(id, Ok(())), 1000);
            }
        }
    }

    #[test]
    fn transactions_survive_a_reopen_and_compaction_keeps_only_live_records() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::default();
        let defaults = TopicDefaults::from_config(&config);
        {
            let topics = Topics::load(dir.path(), defaults.clone()).unwrap();
            let log = TxnLog::open(&topics).unwrap();
            let mut c = Coordinator::new(TxnConfig::default(), std::sync::Arc::new(Ids));
            c.finish_loading(0);
            for i in 0..40 {
                init(&mut c, &log, &format!("t{}", i % 4));
            }
            assert_eq!(log.records(), 40);
            log.compact(&c.snapshot(), 2000).unwrap();
            assert_eq!(log.records(), 4);
            topics.close_all();
        }
        let topics = Topics::load(dir.path(), defaults).unwrap();
        let log = TxnLog::open(&topics).unwrap();
        let mut c = Coordinator::new(TxnConfig::default(), std::sync::Arc::new(Ids));
        assert_eq!(log.load_into(&mut c).unwrap(), LoadStats { records: 4, skipped: 0 });
        assert_eq!(c.txn("t3").unwrap().producer_epoch, 9, "ten inits of t3: epochs 0..=9");
        let t = topics.get(TOPIC).unwrap();
        assert!(check_internal(TOPIC, &topics.effective_config(&t)).is_ok());
    }
}
