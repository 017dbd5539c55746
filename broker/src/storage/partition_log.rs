//! [`PartitionLog`]: one partition's ordered list of segments, its offsets and the
//! operations on them (append, read, time lookup, flush, retention, close).
//!
//! Append path: validate every batch of the record set (length, magic 2, CRC-32C,
//! counts) before taking the writer lock → roll if the set does not fit → reserve blocks
//! → check idempotent producers' sequences → one pwritev of the set into the active
//! segment with each batch's base offset patched in its 16-byte head → publish the log
//! end offset → in durable mode wait for a (shared) sync.
//!
//! Readers take a snapshot of the segment list (an `Arc` clone under a read lock that
//! only roll, retention and the cleaner's swaps ever write) and never touch the writer
//! lock.
//!
//! What a crash keeps, and where it is written (all through [`durable`], none of it under
//! the writer lock except at close, which runs once):
//! - `log-start-offset`: once DeleteRecords answers with a log start offset, every later
//!   open starts at or past it (the checkpoint is durable before the new start is
//!   published). Retention's new start follows from the segments that remain.
//! - `recovery-point-offset`: every record below it is on disk; written by the flusher.
//! - `.clean-shutdown`: written last by [`PartitionLog::close`]; removed durably before the
//!   first append after an open, so a crash after that append never skips recovery.
//! - `<offset>.snapshot`: producer state at a roll, written after the append that rolled.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};

mod append;
mod close;
mod compaction;
mod flush;
mod open;
mod read;
mod recovery;
mod retention;
mod roll;

pub use compaction::{CleanStats, Cleanable, CleanerResources};
pub use open::has_sealed_segments;

use super::checkpoint::{self, OffsetCheckpoint};
use super::io::{DeferredSyncIo, FileIo, RealIo};
use super::producer_state::{
    check_producers, rebuild_producers, write_snapshot_text, ProducerState, Rebuilt, Staged,
};
use super::segment::{Role, Segment, SegmentHandles};
use super::txn_index::{self, AbortedTxn, AbortedTxns, TxnMarker};
pub use super::valid_records::ValidRecords;
use super::{durable, now_ms, FileSlice, LogConfig, ProducerInfo, StorageError, TxnVerifier};

/// The clean-shutdown marker: in a partition opened on its own, in the partition's
/// directory; in the broker's, one in the data directory (see [`CleanShutdown`]).
pub const CLEAN_SHUTDOWN_MARKER: &str = ".clean-shutdown";

/// Who records that a partition was closed cleanly, which lets the next open skip
/// recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanShutdown {
    /// The partition's own marker, written by [`PartitionLog::close`]: a log used on its
    /// own.
    OwnMarker,
    /// The data directory's marker, written once after every partition closed (Kafka's
    /// one marker per log directory), so that a shutdown costs no file per partition;
    /// `clean` tells whether it was there at start.
    DataDir {
        /// The marker was present when the broker started.
        clean: bool,
    },
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset given to the first record.
    pub base_offset: i64,
    /// Offset given to the last record.
    pub last_offset: i64,
    /// Log start offset after the append.
    pub log_start_offset: i64,
}

/// The result of a read.
#[derive(Debug, Clone)]
pub struct ReadInfo {
    /// Whole batches starting with the one that holds the requested offset; `None` when
    /// the offset is the log end offset (nothing to read yet).
    pub slice: Option<FileSlice>,
    /// Offset after the last published record, loaded after the slice was cut, so it
    /// covers every batch in it.
    pub high_watermark: i64,
    /// First offset still readable.
    pub log_start_offset: i64,
    /// Offset below which every transaction has ended (loaded with the high watermark).
    pub last_stable_offset: i64,
    /// For a read_committed read: the aborted transactions that overlap the slice.
    pub aborted: Vec<AbortedTxn>,
}

/// Which records a read may return (a fetch's `isolation_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Everything below the high watermark.
    ReadUncommitted,
    /// Only below the last stable offset, with the aborted transactions to drop.
    ReadCommitted,
}

/// A batch found by timestamp.
#[derive(Debug, Clone)]
pub struct TimestampOffset {
    /// Base offset of the first batch whose max timestamp is at or after the target.
    pub offset: i64,
    /// That batch's max timestamp.
    pub timestamp: i64,
    /// The batch, so the caller can find the exact record inside it.
    pub batch: FileSlice,
}

/// One segment as ListOffsets v0 sees it (Kafka's `legacyFetchOffsetsBefore`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentTime {
    /// The segment's base offset, or the log start offset if that is inside the segment.
    pub offset: i64,
    /// When its `.log` file was last modified, in ms since the epoch; 0 when that cannot
    /// be read, as Java's `File.lastModified` answers.
    pub last_modified_ms: i64,
    /// Whether it holds any bytes.
    pub has_data: bool,
}

#[derive(Debug)]
struct Writer {
    closed: bool,
    /// Idempotent producers' state; changes with the appends it checks and with expiry.
    producers: ProducerState,
    /// The partition's own clean-shutdown marker is on disk: removed before the first
    /// append.
    marker_present: bool,
    /// Opened clean and nothing appended since: the producer snapshot on disk is current.
    snapshot_current: bool,
    /// A producer snapshot rendered at a roll, to be written once the lock is released:
    /// (offset, text).
    pending_snapshot: Option<(i64, String)>,
}

#[derive(Debug)]
struct FlushState {
    running: bool,
    /// Every record below it is on disk, in all segments: the recovery point.
    flushed_offset: i64,
    last_flush_ms: i64,
}

/// One partition's log.
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    config: RwLock<LogConfig>,
    io: Arc<dyn FileIo>,
    /// The cache of open segment files this log's segments count against.
    handles: Arc<SegmentHandles>,
    segments: RwLock<Arc<Vec<Arc<Segment>>>>,
    writer: Mutex<Writer>,
    log_end_offset: AtomicI64,
    log_start_offset: AtomicI64,
    /// `log-start-offset`: written outside the writer lock, monotonic.
    log_start_checkpoint: OffsetCheckpoint,
    /// `recovery-point-offset`: written by the flusher and at close, monotonic.
    recovery_point_checkpoint: OffsetCheckpoint,
    /// Where a clean close is recorded.
    clean_shutdown: CleanShutdown,
    flush: Mutex<FlushState>,
    flushed: Condvar,
    poisoned: AtomicBool,
    /// `Writer::pending_snapshot` holds a snapshot to write.
    snapshot_pending: AtomicBool,
    /// A segment file was created since the directory was last synced: syncing a file's
    /// data does not make its name durable, so the next data sync syncs the directory.
    dir_dirty: AtomicBool,
    /// Data syncs done, for the metrics (records per sync shows group commit at work).
    syncs: AtomicU64,
    /// `cleaner-offset-checkpoint`: where the dirty section starts.
    cleaner_checkpoint: OffsetCheckpoint,
    /// A cleaning pass runs on this log.
    cleaning: AtomicBool,
    /// Held while a cleaned segment's files are renamed into place and while retention
    /// deletes segment files, so neither works on the other's half-renamed files.
    swap_lock: Mutex<()>,
    /// Earliest delete horizon of a tombstone the last pass kept (-1: none).
    delete_horizon: AtomicI64,
    /// First offset of the oldest ongoing transaction (`i64::MAX`: none). Stored before
    /// the log end offset moves past a transaction's first batch, and only after an
    /// abort is in `aborted`, so a reader that loads the log end offset first never
    /// sees an unfinished or unlisted transaction below the last stable offset.
    first_unstable_offset: AtomicI64,
    /// The partition's aborted transactions (their `.txnindex` entries), marker order.
    aborted: RwLock<AbortedTxns>,
}

impl PartitionLog {
    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Offset the next appended record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset.load(Ordering::Acquire)
    }
    /// Offset below which consumers may read: on a single node, the log end offset.
    pub fn high_watermark(&self) -> i64 {
        self.log_end_offset()
    }
    /// First offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }
    /// Offset below which every transaction has ended: what read_committed consumers may
    /// read up to (the high watermark when no transaction is ongoing).
    pub fn last_stable_offset(&self) -> i64 {
        self.last_stable_offset_at(self.high_watermark())
    }
    /// The last stable offset given a high watermark loaded just before: loading in that
    /// order never yields an offset past an unfinished transaction.
    fn last_stable_offset_at(&self, high_watermark: i64) -> i64 {
        let first_unstable = self.first_unstable_offset.load(Ordering::Acquire);
        first_unstable.min(high_watermark).max(self.log_start_offset())
    }
    /// Every producer whose state the partition keeps (DescribeProducers).
    pub fn producers(&self) -> Vec<ProducerInfo> {
        lock(&self.writer).producers.describe()
    }
    /// Producers with an ongoing transaction here, and each one's first offset.
    pub fn ongoing_transactions(&self) -> Vec<(i64, i64)> {
        lock(&self.writer).producers.ongoing_transactions().collect()
    }
    /// Number of aborted transactions in the index.
    pub fn aborted_transaction_count(&self) -> usize {
        read_lock(&self.aborted).len()
    }
    /// Offset up to which data is known to be on disk.
    pub fn flushed_offset(&self) -> i64 {
        lock(&self.flush).flushed_offset
    }
    /// Bytes of log data in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments().iter().map(|s| s.size()).sum()
    }
    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments().iter().map(|s| s.base_offset()).collect()
    }
    /// Every segment, oldest first, with its file's modification time (one `stat` each).
    pub fn segment_times(&self) -> Vec<SegmentTime> {
        let start = self.log_start_offset();
        self.segments()
            .iter()
            .map(|s| SegmentTime {
                offset: s.base_offset().max(start),
                last_modified_ms: std::fs::metadata(s.log_path())
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
                has_data: s.size() > 0,
            })
            .collect()
    }
    /// Syncs of the unsynced segments done so far (group commits and flusher ticks).
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
    /// Whether a failed sync (or trim at a roll) has poisoned the partition.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }
    /// The partition's current settings.
    pub fn config(&self) -> LogConfig {
        self.config.read().unwrap_or_else(PoisonError::into_inner).clone()
    }
    /// Replaces the settings (AlterConfigs); they apply from the next append or roll.
    pub fn set_config(&self, config: LogConfig) {
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = config;
    }

    fn segments(&self) -> Arc<Vec<Arc<Segment>>> {
        Arc::clone(&self.segments.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn active(&self) -> Arc<Segment> {
        Arc::clone(self.segments().last().expect("invariant: at least one segment"))
    }

    fn poison(&self, error: &StorageError) {
        tracing::error!(partition = %self.dir.display(), %error, "storage failed: partition refuses writes");
        self.poisoned.store(true, Ordering::Release);
    }

    /// Forgets producer ids with no append for `producer.id.expiration.ms` as of `now_ms`
    /// (the broker's clock); the background tick calls it. Returns how many went.
    pub fn remove_expired_producers(&self, now_ms: i64) -> usize {
        let expiration_ms =
            self.config.read().unwrap_or_else(PoisonError::into_inner).producer_id_expiration_ms;
        lock(&self.writer).producers.expire(now_ms, expiration_ms)
    }

    /// Producer ids whose state the partition keeps.
    pub fn producer_count(&self) -> usize {
        lock(&self.writer).producers.len()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a storage lock leaves plain data behind; keep going.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_lock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// The log and index capacities of a new active segment.
///
/// Each index is mapped at its capacity for the segment's life. `segment.index.bytes`
/// may be up to 2 GiB (Kafka's INT), mapped twice per partition: 10,000 partitions would
/// reserve 40 TiB of address space and a few such topics exhaust it. So the index gets no
/// more than the segment can fill: an entry is added only at a batch (at least
/// [`MIN_BATCH_BYTES`]) and only every `index.interval.bytes`, plus the time index's
/// final entry. Below that bound a small `segment.index.bytes` still rolls on a full
/// index, as in Kafka.
fn capacities(config: &LogConfig, min_capacity: u64) -> (u64, u64) {
    let capacity = config.segment_bytes.max(min_capacity).min(u32::MAX as u64);
    let per_entry = config.index_interval_bytes.max(MIN_BATCH_BYTES);
    let most_entries = capacity / per_entry + 2;
    (capacity, config.segment_index_bytes.min(most_entries * TIME_INDEX_ENTRY_BYTES))
}

/// The smallest record batch: its header (RecordBatch v2).
const MIN_BATCH_BYTES: u64 = 61;
/// The larger of the two index entries (the time index's: timestamp i64, offset u32).
const TIME_INDEX_ENTRY_BYTES: u64 = 12;

fn active_role(config: &LogConfig, min_capacity: u64) -> Role {
    let (capacity, index_capacity) = capacities(config, min_capacity);
    Role::Active { capacity, index_capacity }
}

#[cfg(test)]
mod tests;
