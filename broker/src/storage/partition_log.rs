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
//! only roll and retention ever write) and never touch the writer lock.
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

mod compaction;
mod flush;
mod open;
mod read;
mod retention;

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

    /// Appends a record set (one or more v2 batches, as a producer sends it), assigning
    /// offsets from the log end offset.
    ///
    /// # Errors
    /// [`StorageError::InvalidBatch`] before anything is written; I/O errors (a full disk
    /// among them) leave the log as it was; [`StorageError::Poisoned`] after a failed sync.
    pub fn append(&self, records: &[u8]) -> Result<AppendInfo, StorageError> {
        self.append_valid(&ValidRecords::new(records)?)
    }

    /// Appends a record set that was already checked; see [`Self::append`].
    ///
    /// # Errors
    /// As [`Self::append`], less the validation.
    pub fn append_valid<B: AsRef<[u8]>>(
        &self,
        valid: &ValidRecords<B>,
    ) -> Result<AppendInfo, StorageError> {
        let (info, sync_to) = self.append_unsynced(valid)?;
        if let Some(offset) = sync_to {
            self.sync_to(offset)?;
        }
        Ok(info)
    }

    /// Appends without waiting for the sync that the flush policy asks for: returns the
    /// offset the caller must see synced (with [`Self::sync_to`]) before it acknowledges
    /// the records. A pipelined connection appends its next request while this one's
    /// sync runs, and the syncs of many appends become one (group commit).
    ///
    /// # Errors
    /// As [`Self::append_valid`], less the sync's.
    pub fn append_unsynced<B: AsRef<[u8]>>(
        &self,
        valid: &ValidRecords<B>,
    ) -> Result<(AppendInfo, Option<i64>), StorageError> {
        self.append_verified(valid, None)
    }

    /// [`Self::append_unsynced`], with each transaction the set opens here checked by
    /// `verify` under the writer lock (see [`TxnVerifier`]); without a verifier any
    /// transactional batch may open one.
    ///
    /// # Errors
    /// As [`Self::append_unsynced`]; [`StorageError::TxnNotVerified`] with the
    /// coordinator's answer, and then nothing of the set is written.
    pub fn append_verified<B: AsRef<[u8]>>(
        &self,
        valid: &ValidRecords<B>,
        verify: Option<&TxnVerifier>,
    ) -> Result<(AppendInfo, Option<i64>), StorageError> {
        let result = self.append_locked(valid, verify);
        self.write_pending_snapshot();
        result
    }

    /// Writes the producer snapshot that a roll rendered, outside the writer lock. A
    /// failure is logged: the snapshot before it and the log still rebuild the state.
    fn write_pending_snapshot(&self) {
        // Checked without the lock: appends that did not roll pay one atomic load.
        if !self.snapshot_pending.swap(false, Ordering::AcqRel) {
            return;
        }
        let Some((offset, text)) = ({
            let mut writer = lock(&self.writer);
            // An abandoned partition (a deleted topic) writes nothing more.
            if writer.closed {
                return;
            }
            writer.pending_snapshot.take()
        }) else {
            return;
        };
        if let Err(e) = write_snapshot_text(self.io.as_ref(), &self.dir, offset, &text) {
            tracing::warn!(partition = %self.dir.display(), error = %e, "cannot write producer snapshot");
        }
    }

    /// Checks that the log takes writes, and removes the clean-shutdown marker before the
    /// first one.
    fn writable(&self, writer: &mut MutexGuard<'_, Writer>) -> Result<(), StorageError> {
        if writer.closed {
            return Err(StorageError::Closed { path: self.dir.clone() });
        }
        if self.is_poisoned() {
            return Err(StorageError::Poisoned { path: self.dir.clone() });
        }
        if writer.marker_present {
            // Once per open: after this append a crash must not look like a clean close.
            durable::remove(self.io.as_ref(), &self.dir.join(CLEAN_SHUTDOWN_MARKER))?;
            writer.marker_present = false;
        }
        writer.snapshot_current = false;
        Ok(())
    }

    /// Writes the transaction marker that ends `marker.producer_id`'s transaction here
    /// (the transaction coordinator's WriteTxnMarkers, in process): a COMMIT or ABORT
    /// control batch, then, for an abort, its entry in the aborted-transaction index, then
    /// the last stable offset moves. A marker for a producer with no transaction here is
    /// written all the same (a coordinator finishing a transaction again after a crash);
    /// it ends nothing.
    ///
    /// # Errors
    /// [`StorageError::InvalidProducerEpoch`] for a marker older than the producer's
    /// epoch; as [`Self::append`] otherwise. A failure to add the index entry after the
    /// marker is written poisons the partition: the next open rebuilds the entry from
    /// the log.
    pub fn append_txn_marker(&self, marker: &TxnMarker) -> Result<AppendInfo, StorageError> {
        let bytes = sluice_protocol::record::control_marker(
            marker.producer_id,
            marker.producer_epoch,
            marker.coordinator_epoch,
            marker.commit,
            now_ms(),
        );
        let valid = ValidRecords::new(bytes)?;
        let result = self.append_marker_locked(&valid, marker);
        self.write_pending_snapshot();
        let (info, sync_to) = result?;
        if let Some(offset) = sync_to {
            self.sync_to(offset)?;
        }
        Ok(info)
    }

    fn append_marker_locked(
        &self,
        valid: &ValidRecords<Vec<u8>>,
        marker: &TxnMarker,
    ) -> Result<(AppendInfo, Option<i64>), StorageError> {
        let config = self.config();
        let mut writer = lock(&self.writer);
        self.writable(&mut writer)?;
        writer.producers.check_marker(marker.producer_id, marker.producer_epoch)?;
        let active = self.active_for(&mut writer, &config, valid)?;
        let at = active.next_offset();
        let next = active.append(
            &valid.bytes,
            &valid.batches,
            at,
            config.index_interval_bytes,
            self.io.as_ref(),
            &self.log_end_offset,
        )?;
        let max = config.max_producers_per_partition;
        let began =
            writer.producers.complete_txn(marker.producer_id, marker.producer_epoch, now_ms(), max);
        if let (false, Some(first_offset)) = (marker.commit, began) {
            let entry = AbortedTxn {
                producer_id: marker.producer_id,
                first_offset,
                last_offset: at,
                last_stable_offset: writer.producers.first_unstable_offset().unwrap_or(next),
            };
            write_lock(&self.aborted).push(entry);
            if let Err(e) = active.append_aborted(&entry) {
                self.poison(&e);
                return Err(e);
            }
        }
        let first_unstable = writer.producers.first_unstable_offset().unwrap_or(i64::MAX);
        self.first_unstable_offset.store(first_unstable, Ordering::Release);
        drop(writer);
        let unflushed = next - lock(&self.flush).flushed_offset;
        let sync_to = (unflushed > 0 && unflushed as u64 >= config.flush_messages).then_some(next);
        let info = AppendInfo {
            base_offset: at,
            last_offset: at,
            log_start_offset: self.log_start_offset(),
        };
        Ok((info, sync_to))
    }

    /// The segment a record set goes into: the active one, rolled first when the set does
    /// not fit it or it is due.
    fn active_for<B: AsRef<[u8]>>(
        &self,
        writer: &mut MutexGuard<'_, Writer>,
        config: &LogConfig,
        valid: &ValidRecords<B>,
    ) -> Result<Arc<Segment>, StorageError> {
        let batches = &valid.batches;
        let active = self.active();
        let len = valid.bytes.as_ref().len() as u64;
        let entries = batches.len().min((len / config.index_interval_bytes.max(1)) as usize + 1);
        let jitter = config.roll_jitter_ms(&self.dir, active.base_offset());
        let expired = active.rolling_base_ms() >= 0
            && now_ms().saturating_sub(active.rolling_base_ms()) >= config.roll_ms() - jitter;
        // Index entries hold offsets relative to the segment's base in 32 bits; Kafka
        // rolls before the largest offset would be more than i32::MAX past it.
        let set_offsets: i64 = batches.iter().map(|b| i64::from(b.last_offset_delta) + 1).sum();
        let offsets_overflow =
            active.next_offset() + set_offsets - 1 - active.base_offset() > i64::from(i32::MAX);
        let full = active.size() + len > active.capacity()
            || active.size() + len > config.segment_bytes
            || active.index_lacks_room(entries)
            || offsets_overflow;
        if (active.size() > 0 && (full || expired)) || active.capacity() < len {
            return self.roll(writer, config, len);
        }
        Ok(active)
    }

    fn append_locked<B: AsRef<[u8]>>(
        &self,
        valid: &ValidRecords<B>,
        verify: Option<&TxnVerifier>,
    ) -> Result<(AppendInfo, Option<i64>), StorageError> {
        let records = valid.bytes.as_ref();
        let batches = &valid.batches;
        let config = self.config();
        let mut writer = lock(&self.writer);
        self.writable(&mut writer)?;
        let active = self.active_for(&mut writer, &config, valid)?;
        let base_offset = active.next_offset();
        let (max, grace) = (config.max_producers_per_partition, config.producer_eviction_grace_ms);
        let staged =
            match check_producers(&writer.producers, batches, base_offset, now_ms(), max, grace)? {
                Staged::Append(staged) => staged,
                Staged::Duplicate(first, last) => {
                    drop(writer);
                    // The original may not be durable yet: a retry is acknowledged on the
                    // same terms as the first attempt.
                    let sync_to = (config.flush_messages != u64::MAX).then_some(last + 1);
                    let info = AppendInfo {
                        base_offset: first,
                        last_offset: last,
                        log_start_offset: self.log_start_offset(),
                    };
                    return Ok((info, sync_to));
                }
            };
        if let (Some(verify), Some(staged)) = (verify, &staged) {
            for (producer_id, epoch) in staged.opened(&writer.producers) {
                verify(producer_id, epoch)
                    .map_err(|code| StorageError::TxnNotVerified { producer_id, code })?;
            }
        }
        // A transaction this set opens holds the last stable offset back before any
        // reader can see the set's offsets.
        let opens = staged.as_ref().and_then(|s| s.first_txn_offset());
        if let Some(first) = opens {
            self.first_unstable_offset.fetch_min(first, Ordering::AcqRel);
        }
        let appended = active.append(
            records,
            batches,
            base_offset,
            config.index_interval_bytes,
            self.io.as_ref(),
            &self.log_end_offset,
        );
        let next = match appended {
            Ok(next) => next,
            Err(e) => {
                if opens.is_some() {
                    let first = writer.producers.first_unstable_offset().unwrap_or(i64::MAX);
                    self.first_unstable_offset.store(first, Ordering::Release);
                }
                return Err(e);
            }
        };
        if let Some(staged) = staged {
            let evicted =
                writer.producers.commit(staged, now_ms(), config.max_producers_per_partition);
            if evicted > 0 {
                tracing::debug!(partition = %self.dir.display(), evicted, "producer state full: evicted the longest idle producer ids");
            }
        }
        drop(writer);
        let unflushed = next - lock(&self.flush).flushed_offset;
        let sync_to = (unflushed > 0 && unflushed as u64 >= config.flush_messages).then_some(next);
        let info = AppendInfo {
            base_offset,
            last_offset: next - 1,
            log_start_offset: self.log_start_offset(),
        };
        Ok((info, sync_to))
    }

    /// Seals the active segment and starts a new one at the log end offset (or, when the
    /// active segment is empty but too small for `min_capacity`, recreates it larger).
    ///
    /// The steps that can fail for want of space, descriptors or memory (the final time
    /// index entry, creating the new segment) come before the old one's files are trimmed:
    /// a roll that fails there leaves the old segment active and whole, and the next append
    /// tries again. A trimmed segment must never be appended to (its index mappings would
    /// reach past the files' ends), so a failed trim poisons the partition.
    fn roll(
        &self,
        writer: &mut MutexGuard<'_, Writer>,
        config: &LogConfig,
        min_capacity: u64,
    ) -> Result<Arc<Segment>, StorageError> {
        let old = self.active();
        let segments = self.segments();
        let mut next: Vec<Arc<Segment>> = segments[..segments.len() - 1].to_vec();
        let (cap, idx) = capacities(config, min_capacity);
        if old.size() == 0 {
            // Nothing to seal: the new segment replaces the old one, whose files creating
            // it removes first. If it fails, the old segment's files are gone; appending
            // there would lose acknowledged records at the next start.
            old.retire();
            let created = Segment::create(
                &self.handles,
                &self.dir,
                old.next_offset(),
                cap,
                idx,
                config.index_interval_bytes,
            );
            self.dir_dirty.store(true, Ordering::Release);
            let active = match created {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    self.poison(&e);
                    return Err(e);
                }
            };
            next.push(Arc::clone(&active));
            return self.install(writer, next, active);
        }
        if config.flush_messages != u64::MAX || config.flush_ms >= 0 {
            // Sealed segments not yet synced too (a flush policy set since they rolled).
            self.sync_segments_or_poison(&segments, self.flushed_offset())?;
            let mut flush = lock(&self.flush);
            flush.flushed_offset = flush.flushed_offset.max(old.next_offset());
        }
        old.finish_time_index(self.io.as_ref())?;
        // The producer snapshot written after this roll starts the next replay here, so
        // the aborts indexed below it must be on disk first (rare: only after an abort).
        old.sync_txn_index()?;
        let active = Arc::new(Segment::create(
            &self.handles,
            &self.dir,
            old.next_offset(),
            cap,
            idx,
            config.index_interval_bytes,
        )?);
        self.dir_dirty.store(true, Ordering::Release);
        if let Err(e) = old.trim() {
            self.poison(&e);
            let _ = active.delete_files();
            return Err(e);
        }
        match Segment::open(
            &self.handles,
            &self.dir,
            old.log_path(),
            old.base_offset(),
            Role::Sealed,
            true,
            config.index_interval_bytes,
        ) {
            Ok(sealed) => {
                sealed.set_synced_size(old.synced_size());
                next.push(Arc::new(sealed));
                next.push(Arc::clone(&active));
                let installed = self.install(writer, next, active);
                // The sealed copy, now in the list, stands for these files: once retention
                // deletes them through it, a reader of an older list must not reopen them
                // through the active one.
                old.retire();
                installed
            }
            Err(e) => {
                // The old segment still reads correctly, and nothing appends to it again.
                tracing::warn!(partition = %self.dir.display(), error = %e, "cannot reopen a sealed segment; keeping it open as it was");
                next.push(Arc::clone(&old));
                next.push(Arc::clone(&active));
                self.install(writer, next, active)
            }
        }
    }

    /// Publishes a new segment list whose last segment is `active`.
    fn install(
        &self,
        writer: &mut MutexGuard<'_, Writer>,
        next: Vec<Arc<Segment>>,
        active: Arc<Segment>,
    ) -> Result<Arc<Segment>, StorageError> {
        *self.segments.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        // The snapshot at the new segment's base bounds the replay after a crash to the
        // active segment. Rendered here, written once the lock is released.
        let expiration_ms = self.config().producer_id_expiration_ms;
        let producers = &mut writer.producers;
        producers.expire(now_ms(), expiration_ms);
        if producers.len() > 0 {
            writer.pending_snapshot = Some((active.base_offset(), producers.render_snapshot()));
            self.snapshot_pending.store(true, Ordering::Release);
        }
        tracing::debug!(partition = %self.dir.display(), base_offset = active.base_offset(), "rolled segment");
        Ok(active)
    }

    fn poison(&self, error: &StorageError) {
        tracing::error!(partition = %self.dir.display(), %error, "storage failed: partition refuses writes");
        self.poisoned.store(true, Ordering::Release);
    }

    /// Closes cleanly: syncs, trims the active segment and its indexes to their data and
    /// writes the clean-shutdown marker, so the next open skips recovery. Appends after
    /// this fail with [`StorageError::Closed`].
    ///
    /// # Errors
    /// I/O errors; the marker is then not written and the next open recovers.
    pub fn close(&self) -> Result<(), StorageError> {
        self.close_with(true)
    }

    /// Closes as [`Self::close`] does but syncs nothing, for a broker closing every
    /// partition of its data directory: it then syncs the whole file system at once
    /// ([`super::sync_file_system`]) and only then writes the data directory's
    /// clean-shutdown marker. The recovery point is left as it is: after the marker the next
    /// open trusts every byte, and a lower recovery point only means more to recover after
    /// a later crash. A log opened on its own, with its own marker, closes as
    /// [`Self::close`] does: nothing syncs the file system for it.
    ///
    /// # Errors
    /// I/O errors (of the trim or the producer snapshot); the caller writes no marker then.
    pub fn close_unsynced(&self) -> Result<(), StorageError> {
        self.close_with(false)
    }

    fn close_with(&self, sync: bool) -> Result<(), StorageError> {
        if !sync && self.clean_shutdown == CleanShutdown::OwnMarker {
            return self.close_with(true);
        }
        let deferred = DeferredSyncIo(self.io.as_ref());
        let io: &dyn FileIo = if sync { self.io.as_ref() } else { &deferred };
        let mut writer = lock(&self.writer);
        if writer.closed {
            return Ok(());
        }
        writer.closed = true;
        if self.is_poisoned() {
            return Err(StorageError::Poisoned { path: self.dir.clone() });
        }
        // Everything goes to disk, sealed segments not yet synced too: a clean start
        // recovers nothing. A failure here does not poison, as close never has: the
        // writer is closed already, so nothing appends after it, and the caller, told of
        // the error, writes no clean-shutdown marker, so the next open recovers.
        if sync {
            let from = self.flushed_offset();
            flush::sync_segments(&self.segments(), from, io)?;
        }
        let active = self.active();
        active.seal(io)?;
        let expiration_ms = self.config().producer_id_expiration_ms;
        writer.producers.expire(now_ms(), expiration_ms);
        // An untouched partition's snapshot still holds its producers as of the log end
        // (with any just expired, which the next open expires again).
        if writer.producers.len() > 0 && !writer.snapshot_current {
            writer.producers.write_snapshot(io, &self.dir, active.next_offset())?;
        }
        if !sync {
            return Ok(());
        }
        // A no-op when nothing was appended since the last advance.
        self.recovery_point_checkpoint.advance(io, active.next_offset())?;
        if self.clean_shutdown == CleanShutdown::OwnMarker && !writer.marker_present {
            durable::write(self.io.as_ref(), &self.dir.join(CLEAN_SHUTDOWN_MARKER), b"")?;
            writer.marker_present = true;
        }
        Ok(())
    }

    /// Closes without syncing or writing anything, for a partition whose files are about
    /// to be removed (DeleteTopics): appends after this fail with [`StorageError::Closed`].
    pub fn abandon(&self) {
        lock(&self.writer).closed = true;
        // Checkpoint writes run outside the writer lock: stop them too, so none lands in
        // a directory a new topic of the same name opens later.
        self.log_start_checkpoint.retire();
        self.recovery_point_checkpoint.retire();
        self.cleaner_checkpoint.retire();
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
