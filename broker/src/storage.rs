//! The partition log: Kafka's on-disk layout, mmap-backed segments and sparse indexes,
//! crash recovery and retention.
//!
//! ```text
//! <data_dir>/<topic>-<partition>/00000000000000000000.log        record batches, verbatim
//!                                00000000000000000000.index      offset -> position
//!                                00000000000000000000.timeindex  timestamp -> offset
//!                                00000000000000000000.snapshot   producer state (crc32)
//!                                00000000000000000000.txnindex   aborted transactions
//!                                00000000000000000000.log.cleaned a cleaned copy being written
//!                                00000000000000000000.log.swap    a cleaned copy committed
//!                                log-start-offset                 checkpoint (crc32)
//!                                cleaner-offset-checkpoint        start of the dirty section
//!                                recovery-point-offset            checkpoint (crc32)
//!                                .clean-shutdown                  marker of a clean close
//!                                                                 (a log opened alone)
//! <data_dir>/.clean-shutdown     every partition closed cleanly (the broker's logs)
//! ```
//!
//! Invariants that the whole module keeps:
//! - One writer per partition ([`PartitionLog::append`] serialises on a mutex); readers
//!   never take that mutex and see only published bytes: a segment's published size and
//!   the log end offset are stored with release ordering after the bytes are in place.
//! - A byte of a mapping is stored to only after [`io::FileIo::reserve`] backed it with a
//!   disk block, so a full disk is an error value, never SIGBUS. Record batches go into
//!   the segment file with pwritev(2), their base offsets patched on the way; readers see
//!   them through the mapping (the same page cache) and through sendfile.
//! - After a failed sync the log is poisoned: appends answer [`StorageError::Poisoned`],
//!   reads go on.
//! - Every small file that must survive a crash is written by [`durable::write`]; no
//!   fsync of one runs under the writer lock on a path a client can repeat (checkpoints
//!   and producer snapshots are written after the lock is released).
//!
//! The module is synchronous: no async runtime inside. `unsafe` and `nix` are confined to
//! [`sys`].

pub(crate) mod checkpoint;
pub mod cleaner;
pub mod durable;
mod handle_cache;
mod index;
pub mod io;
mod partition_log;
mod producer_state;
mod recovery_journal;
mod segment;
pub(crate) mod sys;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
mod txn_index;
mod valid_records;

#[cfg(test)]
mod durability_tests;
#[cfg(test)]
mod handle_tests;
#[cfg(test)]
mod txn_tests;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_protocol::record::BatchError;
use thiserror::Error;

pub use cleaner::CleanerConfig;
pub use partition_log::{
    has_sealed_segments, AppendInfo, CleanShutdown, CleanStats, Cleanable, CleanerResources,
    Isolation, PartitionLog, ReadInfo, SegmentTime, TimestampOffset, ValidRecords,
    CLEAN_SHUTDOWN_MARKER,
};
pub use producer_state::{
    ProducerInfo, DEFAULT_MAX_PRODUCERS_PER_PARTITION, DEFAULT_PRODUCER_ID_EXPIRATION_MS,
    EVICTION_GRACE_MS as PRODUCER_EVICTION_GRACE_MS,
};
pub use recovery_journal::{RecoveryJournal, RECOVERY_JOURNAL};
pub use segment::SegmentHandles;
pub use sys::{disk_space, sendfile, sync_file_system, DiskSpace};
pub use txn_index::{AbortedTxn, TxnMarker};
pub use valid_records::ProducerBatchError;

/// Asks the transaction coordinator whether a producer (id, epoch) has this partition in
/// its ongoing transaction. Called under the partition's writer lock for each batch that
/// would open a transaction here, so a marker (written under the same lock, after the
/// coordinator's state left Ongoing) can never be followed by a batch of the transaction
/// it ended.
pub type TxnVerifier = std::sync::Arc<
    dyn Fn(i64, i16) -> Result<(), sluice_protocol::error_code::ErrorCode> + Send + Sync,
>;

/// How many segments of a log opened on its own (tests, tools) may hold their files open
/// at once; the broker shares one bound among all partitions
/// (`sluice.log.open.segments.max`).
pub const DEFAULT_OPEN_SEGMENTS: usize = 1024;

/// Per-partition settings, named after Kafka's topic configs.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: a segment rolls before it would grow past this.
    pub segment_bytes: u64,
    /// `segment.index.bytes`: capacity of each index file.
    pub segment_index_bytes: u64,
    /// `index.interval.bytes`: log bytes between two offset index entries.
    pub index_interval_bytes: u64,
    /// `segment.ms`: a non-empty segment older than this rolls on the next append.
    pub segment_ms: i64,
    /// `retention.ms`: sealed segments whose newest record is older are deleted (-1: never).
    pub retention_ms: i64,
    /// `retention.bytes`: oldest sealed segments go while the log is larger (-1: no limit).
    pub retention_bytes: i64,
    /// `flush.messages`: sync after this many unflushed records; 1 makes every append
    /// durable before it returns (group commit). `u64::MAX`: leave it to the page cache.
    pub flush_messages: u64,
    /// `flush.ms`: [`PartitionLog::flush_if_due`] syncs data older than this (-1: never).
    pub flush_ms: i64,
    /// `producer.id.expiration.ms` (broker-wide, not a topic config): a producer id with
    /// no append for this long, by the broker's clock, is forgotten.
    pub producer_id_expiration_ms: i64,
    /// `sluice.producer.state.max.producers.per.partition` (broker-wide): past it the
    /// longest idle producer id is forgotten.
    pub max_producers_per_partition: usize,
    /// How long after its last append a producer id is safe from that eviction (not a
    /// broker property: [`PRODUCER_EVICTION_GRACE_MS`], which tests shorten).
    pub producer_eviction_grace_ms: i64,
    /// `cleanup.policy` holds `delete`: `retention.ms` and `retention.bytes` apply.
    pub cleanup_delete: bool,
    /// `cleanup.policy` holds `compact`: the log cleaner keeps the latest record per key.
    pub cleanup_compact: bool,
    /// `delete.retention.ms`: how long a tombstone stays after its batch was first cleaned.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: a segment whose newest record is younger is not cleaned.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty record older than this is cleaned whatever the
    /// dirty ratio (and the active segment rolls after at most this long).
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`: the share of dirty bytes that makes a log cleanable.
    pub min_cleanable_dirty_ratio: f64,
    /// `segment.jitter.ms`: each segment rolls up to this much before [`Self::roll_ms`].
    pub segment_jitter_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_index_bytes: 10 << 20,
            index_interval_bytes: 4096,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            flush_messages: u64::MAX,
            flush_ms: -1,
            producer_id_expiration_ms: DEFAULT_PRODUCER_ID_EXPIRATION_MS,
            max_producers_per_partition: DEFAULT_MAX_PRODUCERS_PER_PARTITION,
            producer_eviction_grace_ms: PRODUCER_EVICTION_GRACE_MS,
            cleanup_delete: true,
            cleanup_compact: false,
            delete_retention_ms: 24 * 3600 * 1000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
            segment_jitter_ms: 0,
        }
    }
}

impl LogConfig {
    /// Whether appends wait until their bytes are on disk.
    pub fn is_durable(&self) -> bool {
        self.flush_messages == 1
    }

    /// The age at which the active segment rolls: `segment.ms`, or for a compacted log
    /// `max.compaction.lag.ms` when that is sooner, as Kafka rolls so that the cleaner can
    /// reach every record within the lag (the active segment is never cleaned).
    pub fn roll_ms(&self) -> i64 {
        if self.cleanup_compact {
            self.segment_ms.min(self.max_compaction_lag_ms)
        } else {
            self.segment_ms
        }
    }

    /// How much sooner than [`Self::roll_ms`] the segment of the partition in `dir` based
    /// at `base_offset` rolls: below `min(segment.jitter.ms, segment.ms)`, as Kafka draws
    /// it for each new segment, so that partitions created together do not all roll at
    /// once. Drawn from the partition and the base offset, so the same after a restart.
    pub fn roll_jitter_ms(&self, dir: &Path, base_offset: i64) -> i64 {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let bound = self.segment_jitter_ms.min(self.segment_ms);
        if bound <= 0 {
            return 0;
        }
        let mut h = DefaultHasher::new();
        (dir, base_offset).hash(&mut h);
        (h.finish() % bound.unsigned_abs()) as i64
    }
}

/// A byte range of a segment file: what the broker hands to `sendfile(2)`.
///
/// It holds the file open, so a segment deleted by retention stays readable through it.
#[derive(Debug, Clone)]
pub struct FileSlice {
    /// The segment's `.log` file.
    pub file: Arc<File>,
    /// Start of the first batch in the file.
    pub position: u64,
    /// Length: whole batches only.
    pub len: u64,
}

impl FileSlice {
    /// Reads the bytes with `pread` (tests and tools; the fetch path uses sendfile).
    ///
    /// # Errors
    /// The read error.
    pub fn read_to_vec(&self) -> std::io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; self.len as usize];
        self.file.read_exact_at(&mut buf, self.position)?;
        Ok(buf)
    }
}

/// What went wrong in the storage engine.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An operating-system call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A sync failed earlier; the partition refuses writes until it is reopened.
    #[error("partition {} is poisoned by an earlier failed sync", path.display())]
    Poisoned {
        /// The partition directory.
        path: PathBuf,
    },
    /// A record set that is not a sequence of valid v2 batches.
    #[error("invalid record batch at byte {position} of the record set: {source}")]
    InvalidBatch {
        /// Where in the appended bytes the bad batch starts.
        position: usize,
        /// What is wrong with it.
        source: BatchError,
    },
    /// A producer's batch that only the broker may write, or with counts only compaction
    /// leaves.
    // The rule's own words: they are the producer's error message (Produce v8+).
    #[error("{source}")]
    ProducerBatch {
        /// Where in the appended bytes the batch starts.
        position: usize,
        /// What is wrong with it.
        source: ProducerBatchError,
    },
    /// A read or delete at an offset outside `[log start offset, log end offset]`.
    #[error("offset {offset} is outside the log [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        /// The requested offset.
        offset: i64,
        /// First offset still in the log.
        log_start_offset: i64,
        /// Offset the next record will get.
        log_end_offset: i64,
    },
    /// The segment's files were deleted or replaced (retention, compaction) after the
    /// reader took the segment list: read the current list.
    #[error("segment {} was removed or replaced", path.display())]
    SegmentRetired {
        /// Its `.log` file.
        path: PathBuf,
    },
    /// An index file has no room for another entry.
    #[error("index {} is full", path.display())]
    IndexFull {
        /// The index file.
        path: PathBuf,
    },
    /// A file in the partition directory that the engine cannot make sense of.
    #[error("{}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A batch of an idempotent producer whose sequence does not follow the last one.
    #[error("producer {producer_id}: sequence {found}, expected {expected}")]
    OutOfOrderSequence {
        /// The producer id.
        producer_id: i64,
        /// The sequence that would follow (-1: none could).
        expected: i32,
        /// The batch's first sequence.
        found: i32,
    },
    /// A record set's new producer ids do not fit in the partition's producer state
    /// without evicting one that appended within the eviction grace period.
    #[error("partition keeps at most {limit} producer ids and all are in use")]
    TooManyProducers {
        /// `sluice.producer.state.max.producers.per.partition`.
        limit: usize,
    },
    /// A batch from a producer epoch older than the partition has seen.
    #[error("producer {producer_id}: epoch {found} is fenced by epoch {current}")]
    InvalidProducerEpoch {
        /// The producer id.
        producer_id: i64,
        /// The newest epoch seen.
        current: i16,
        /// The batch's epoch.
        found: i16,
    },
    /// A write that the producer's transaction state does not allow.
    #[error("producer {producer_id}: {reason}")]
    InvalidTxnState {
        /// The producer id.
        producer_id: i64,
        /// What was wrong.
        reason: &'static str,
    },
    /// The transaction coordinator does not know of the transaction a batch would open
    /// here (KIP-890 part 1 verification).
    #[error("producer {producer_id}: transaction not verified ({code:?})")]
    TxnNotVerified {
        /// The producer id.
        producer_id: i64,
        /// The coordinator's answer.
        code: sluice_protocol::error_code::ErrorCode,
    },
    /// The partition was closed.
    #[error("partition {} is closed", path.display())]
    Closed {
        /// The partition directory.
        path: PathBuf,
    },
}

impl StorageError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        StorageError::Io { op, path: path.to_owned(), source }
    }

    /// Whether this is the disk being full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StorageError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC))
    }
}

/// File name of a segment file: the base offset in 20 digits and an extension.
pub(crate) fn segment_file_name(base_offset: i64, extension: &str) -> String {
    format!("{base_offset:020}.{extension}")
}

/// Current wall-clock time in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
