//! Cleaning a compacted partition log: which part of it is cleanable, a pass of the
//! cleaner over its sealed segments, and the swap of a cleaned segment for the old one.
//! The rules for records and batches are in [`crate::storage::cleaner`].
//!
//! A pass, as Kafka's `Cleaner.doClean`: the offset map is built from the dirty section
//! (`cleaner-offset-checkpoint` up to the first uncleanable offset: the active segment,
//! or the first segment younger than `min.compaction.lag.ms`), then every sealed segment
//! below the map's end is filtered against it, oldest first, and the checkpoint moves to
//! the map's end. A segment that nothing changes is left alone.
//!
//! The swap of one segment, as Kafka's `.cleaned` / `.swap` steps:
//! ```text
//! 1. <base>.log.cleaned, .index.cleaned, .timeindex.cleaned written and synced
//! 2. indexes renamed to .swap, then the log to <base>.log.swap; dir synced  <- commit
//! 3. (under the swap lock) indexes renamed over <base>.index / .timeindex, then the log
//!    over <base>.log; dir synced; the segment list points at the new segment
//! ```
//! At open, [`finish_interrupted_swaps`] removes every `.cleaned` file (step 1 is the old
//! set) and completes every `<base>.log.swap` whose `<base>.log` exists (the new set; a
//! swap whose old log is gone belonged to a segment that retention deleted, and goes).
//! Index `.swap` files without a log `.swap` are leftovers of a step 2 cut short. So a
//! crash at any point leaves each segment old or new, whole. Segments are swapped oldest
//! first, so a record is only ever gone when the record that replaced it, later in the
//! log, is there (or was itself a tombstone past its horizon, whose older values went in
//! earlier swaps of the same pass).
//!
//! Readers hold their segment (descriptor and mappings), so a swap or removal never cuts a
//! fetch short. Appends never wait for a pass: the writer lock is taken only to replace
//! the segment list, and the cleaner reads sealed segments, which appends do not touch.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::IoSlice;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use sluice_protocol::record::batch::RecordBatch;

use super::{capacities, lock, PartitionLog};
use crate::storage::cleaner::{filter_batch, write_empty_batch, FilterContext, OffsetMap, Outcome};
use crate::storage::io::{FileIo, RealIo};
use crate::storage::segment::{Role, Segment, SegmentReader};
use crate::storage::{durable, segment_file_name, StorageError};

const CLEANED_SUFFIX: &str = ".cleaned";
const SWAP_SUFFIX: &str = ".swap";
const SEGMENT_EXTENSIONS: [&str; 3] = ["index", "timeindex", "log"];
/// Most bytes one batch may decompress to while it is cleaned.
const MAX_DECOMPRESSED_BATCH: usize = 256 << 20;

/// How much of a compacted log is dirty, and whether a rule says to clean it now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cleanable {
    /// Start of the dirty section (the cleaner checkpoint, at least the log start).
    pub first_dirty_offset: i64,
    /// End of what may be cleaned: the active segment's base or the first segment within
    /// `min.compaction.lag.ms`.
    pub first_uncleanable_offset: i64,
    /// Bytes of the segments wholly below the dirty section.
    pub clean_bytes: u64,
    /// Bytes of the cleanable segments of the dirty section.
    pub dirty_bytes: u64,
    /// `max.compaction.lag.ms` has passed for the oldest dirty record.
    pub compaction_lag_due: bool,
    /// A tombstone that a pass kept has reached its delete horizon.
    pub tombstones_expired: bool,
    /// `min.cleanable.dirty.ratio`.
    pub min_dirty_ratio: f64,
}

impl Cleanable {
    /// Dirty bytes over all bytes of the cleanable part (Kafka's `cleanableRatio`).
    pub fn dirty_ratio(&self) -> f64 {
        let total = self.clean_bytes + self.dirty_bytes;
        if total == 0 {
            0.0
        } else {
            self.dirty_bytes as f64 / total as f64
        }
    }

    /// Kafka's rule: the ratio above `min.cleanable.dirty.ratio`, or dirty bytes past
    /// `max.compaction.lag.ms`, or tombstones to remove.
    pub fn should_clean(&self) -> bool {
        self.tombstones_expired
            || (self.dirty_bytes > 0
                && (self.compaction_lag_due || self.dirty_ratio() > self.min_dirty_ratio))
    }
}

/// What a pass may use, handed down by the cleaner thread.
pub struct CleanerResources<'a> {
    /// Memory of the offset map.
    pub map_bytes: u64,
    /// `log.cleaner.io.buffer.load.factor`.
    pub load_factor: f64,
    /// Write buffer.
    pub io_buffer_bytes: usize,
    /// Called with every count of bytes read or written; sleeps to keep the rate.
    pub throttle: &'a (dyn Fn(u64) + Sync),
    /// Set when the broker stops: the pass ends before its next segment.
    pub stop: &'a std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for CleanerResources<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CleanerResources").field("map_bytes", &self.map_bytes).finish()
    }
}

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// Segments replaced by a cleaned copy.
    pub segments_cleaned: usize,
    /// Segments that lost every batch and went.
    pub segments_removed: usize,
    /// Bytes of the segments filtered (the size of the log cleaned).
    pub bytes_read: u64,
    /// Bytes of the cleaned copies.
    pub bytes_written: u64,
    /// Records in the filtered batches, and kept of them.
    pub records_read: u64,
    /// Records kept.
    pub records_kept: u64,
    /// Where the dirty section starts now.
    pub end_offset: i64,
}

/// Resets the log's "a pass runs" flag when the pass ends, however it ends.
struct Running<'a>(&'a PartitionLog);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.cleaning.store(false, Ordering::Release);
    }
}

fn suffixed(dir: &Path, base: i64, ext: &str, suffix: &str) -> PathBuf {
    let mut name = segment_file_name(base, ext);
    name.push_str(suffix);
    dir.join(name)
}

impl PartitionLog {
    /// Whether a cleaning pass runs on the log.
    pub fn is_cleaning(&self) -> bool {
        self.cleaning.load(Ordering::Acquire)
    }

    /// How dirty the log is, for a log whose `cleanup.policy` holds `compact`.
    pub fn cleanable(&self, now_ms: i64) -> Option<Cleanable> {
        let config = self.config();
        if !config.cleanup_compact {
            return None;
        }
        let segments = self.segments();
        let sealed = &segments[..segments.len() - 1];
        let first_dirty = self
            .cleaner_checkpoint
            .durable()
            .max(self.log_start_offset())
            .max(segments[0].base_offset());
        let mut uncleanable = segments[segments.len() - 1].base_offset();
        let (mut clean_bytes, mut dirty_bytes, mut first_dirty_ts) = (0u64, 0u64, None);
        for (i, s) in sealed.iter().enumerate() {
            let next = segments[i + 1].base_offset();
            if next <= first_dirty {
                clean_bytes += s.size();
                continue;
            }
            let young = config.min_compaction_lag_ms > 0
                && s.max_timestamp() >= 0
                && now_ms.saturating_sub(s.max_timestamp()) < config.min_compaction_lag_ms;
            if young {
                uncleanable = uncleanable.min(s.base_offset());
                break;
            }
            dirty_bytes += s.size();
            first_dirty_ts.get_or_insert_with(|| s.first_batch_timestamp());
        }
        if uncleanable <= first_dirty {
            dirty_bytes = 0;
        }
        let compaction_lag_due = config.max_compaction_lag_ms < i64::MAX
            && first_dirty_ts.is_some_and(|ts| {
                ts >= 0 && now_ms.saturating_sub(ts) > config.max_compaction_lag_ms
            });
        let horizon = self.delete_horizon.load(Ordering::Acquire);
        Some(Cleanable {
            first_dirty_offset: first_dirty,
            first_uncleanable_offset: uncleanable.max(first_dirty),
            clean_bytes,
            dirty_bytes,
            compaction_lag_due,
            tombstones_expired: horizon >= 0 && horizon <= now_ms,
            min_dirty_ratio: config.min_cleanable_dirty_ratio,
        })
    }

    /// Runs one cleaning pass (see the module docs) if the log is compacted and no other
    /// pass runs on it; `Ok(None)` otherwise. The caller decides with [`Self::cleanable`]
    /// whether a pass is due.
    ///
    /// # Errors
    /// I/O errors and corrupt batches; the segments swapped before the error stay
    /// cleaned, the others as they were.
    pub fn clean(
        &self,
        res: &CleanerResources<'_>,
        now_ms: i64,
    ) -> Result<Option<CleanStats>, StorageError> {
        if self.cleaning.swap(true, Ordering::AcqRel) {
            return Ok(None);
        }
        let _running = Running(self);
        let Some(cleanable) = self.cleanable(now_ms) else { return Ok(None) };
        let config = self.config();
        let segments = self.segments();
        let sealed = &segments[..segments.len() - 1];
        let (first_dirty, uncleanable) =
            (cleanable.first_dirty_offset, cleanable.first_uncleanable_offset);

        let mut map = OffsetMap::new(res.map_bytes, res.load_factor);
        let mut full = false;
        'segments: for (i, s) in sealed.iter().enumerate() {
            if segments[i + 1].base_offset() <= first_dirty || s.base_offset() >= uncleanable {
                continue;
            }
            let reader = s.reader()?;
            for b in batches_of(s, &reader) {
                let b = b?;
                if b.last_offset() < first_dirty {
                    continue;
                }
                (res.throttle)(b.size() as u64);
                let fits = map
                    .add_batch(&b, MAX_DECOMPRESSED_BATCH)
                    .map_err(|e| corrupt(s, &b, &e.to_string()))?;
                if !fits {
                    full = true;
                    break 'segments;
                }
            }
        }
        if full && map.end_offset() <= first_dirty {
            tracing::warn!(partition = %self.dir.display(), offset = first_dirty, "log.cleaner.dedupe.buffer.size cannot hold the keys of one batch: not cleaned");
            return Ok(None);
        }
        let end = if full { map.end_offset() } else { uncleanable.max(map.end_offset()) };
        tracing::debug!(partition = %self.dir.display(), keys = map.len(), first_dirty, end, full, "offset map built");
        map.cover_to(end);
        let last_of_producer = lock(&self.writer).producers.last_batch_offsets();
        let ctx = FilterContext {
            now_ms,
            delete_retention_ms: config.delete_retention_ms,
            max_batch_bytes: MAX_DECOMPRESSED_BATCH,
        };
        let mut stats = CleanStats { end_offset: end, ..CleanStats::default() };
        let mut horizon = i64::MAX;
        for s in sealed.iter().filter(|s| s.base_offset() < end) {
            if lock(&self.writer).closed || res.stop.load(Ordering::Acquire) {
                return Err(StorageError::Closed { path: self.dir.clone() });
            }
            let h =
                self.clean_segment(s, &map, &ctx, &last_of_producer, res, &config, &mut stats)?;
            horizon = horizon.min(h);
        }
        // The earliest horizon of a kept tombstone: when it passes, a pass removes it.
        self.delete_horizon
            .store(if horizon == i64::MAX { -1 } else { horizon }, Ordering::Release);
        self.cleaner_checkpoint.advance(self.io.as_ref(), end)?;
        Ok(Some(stats))
    }

    /// Filters one sealed segment into `<base>.log.cleaned` and swaps it in, or removes the
    /// segment when nothing of it is kept. Returns the earliest delete horizon of a
    /// tombstone it keeps (`i64::MAX`: none).
    #[expect(clippy::too_many_arguments, reason = "one pass's state, named at the call")]
    fn clean_segment(
        &self,
        s: &Arc<Segment>,
        map: &OffsetMap,
        ctx: &FilterContext,
        last_of_producer: &HashMap<i64, i64>,
        res: &CleanerResources<'_>,
        config: &crate::storage::LogConfig,
        stats: &mut CleanStats,
    ) -> Result<i64, StorageError> {
        let base = s.base_offset();
        let reader = s.reader()?;
        let bytes = reader.bytes();
        let cleaned = suffixed(&self.dir, base, "log", CLEANED_SUFFIX);
        let mut out: Option<(File, u64)> = None;
        let mut buf = Vec::with_capacity(res.io_buffer_bytes.max(64 << 10));
        let mut scratch = Vec::new();
        let mut horizon = i64::MAX;
        // The log's first segment stays, if need be as one empty batch header: its base
        // offset is the log start offset, which compaction never moves (Kafka's neither).
        let first = self.segments().first().is_some_and(|f| Arc::ptr_eq(f, s));
        let result = (|| {
            let mut position = 0usize;
            let mut last = None;
            for b in batches_of(s, &reader) {
                let b = b?;
                last = Some(b);
                let at = position;
                position += b.size();
                (res.throttle)(b.size() as u64);
                stats.bytes_read += b.size() as u64;
                let retain_header = b.producer_id() >= 0
                    && last_of_producer.get(&b.producer_id()) == Some(&b.last_offset());
                let before = buf.len();
                let filtered = if b.base_offset() >= map.end_offset() {
                    None
                } else {
                    b.verify_crc().map_err(|e| corrupt(s, &b, &e.to_string()))?;
                    Some(
                        filter_batch(&b, map, ctx, retain_header, &mut buf, &mut scratch)
                            .map_err(|e| corrupt(s, &b, &e.to_string()))?,
                    )
                };
                if let Some(f) = &filtered {
                    stats.records_read += u64::from(f.records);
                    stats.records_kept += u64::from(f.kept);
                    if let Some(h) = f.delete_horizon {
                        horizon = horizon.min(h);
                    }
                }
                let outcome = filtered.map_or(Outcome::Keep, |f| f.outcome);
                if out.is_none() {
                    if outcome == Outcome::Keep {
                        continue;
                    }
                    // The first change: everything before it is copied as it is.
                    let file = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .open(&cleaned)
                        .map_err(|e| StorageError::io("create cleaned segment", &cleaned, e))?;
                    if at > 0 {
                        self.io
                            .write(&file, 0, &mut [IoSlice::new(&bytes[..at])])
                            .map_err(|e| StorageError::io("write cleaned segment", &cleaned, e))?;
                        (res.throttle)(at as u64);
                    }
                    out = Some((file, at as u64));
                }
                if outcome == Outcome::Keep {
                    buf.truncate(before);
                    buf.extend_from_slice(b.as_bytes());
                }
                if buf.len() >= res.io_buffer_bytes {
                    if let Some((file, len)) = &mut out {
                        self.write_out(file, len, &mut buf, &cleaned, res)?;
                    }
                }
            }
            if let Some((file, len)) = &mut out {
                if *len == 0 && buf.is_empty() && first {
                    if let Some(b) = &last {
                        write_empty_batch(b, &mut buf);
                    }
                }
                self.write_out(file, len, &mut buf, &cleaned, res)?;
                self.io.sync_file(file).map_err(|e| StorageError::io("sync", &cleaned, e))?;
            }
            Ok::<_, StorageError>(())
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&cleaned);
            return Err(e);
        }
        let Some((file, len)) = out else { return Ok(horizon) };
        drop(file);
        stats.bytes_written += len;
        if len == 0 {
            let _ = fs::remove_file(&cleaned);
            self.remove_cleaned_away(s)?;
            stats.segments_removed += 1;
            return Ok(horizon);
        }
        if let Err(e) = self.commit_cleaned(base, len, config) {
            for ext in SEGMENT_EXTENSIONS {
                for suffix in [CLEANED_SUFFIX, SWAP_SUFFIX] {
                    let _ = fs::remove_file(suffixed(&self.dir, base, ext, suffix));
                }
            }
            return Err(e);
        }
        self.swap_in(s, config)?;
        stats.segments_cleaned += 1;
        Ok(horizon)
    }

    fn write_out(
        &self,
        file: &File,
        len: &mut u64,
        buf: &mut Vec<u8>,
        path: &Path,
        res: &CleanerResources<'_>,
    ) -> Result<(), StorageError> {
        if buf.is_empty() {
            return Ok(());
        }
        self.io
            .write(file, *len, &mut [IoSlice::new(buf)])
            .map_err(|e| StorageError::io("write cleaned segment", path, e))?;
        (res.throttle)(buf.len() as u64);
        *len += buf.len() as u64;
        buf.clear();
        Ok(())
    }

    /// Builds the indexes of `<base>.log.cleaned` beside it, syncs them, and renames the
    /// three files to `.swap`, the log last (the commit point), then syncs the directory.
    fn commit_cleaned(
        &self,
        base: i64,
        len: u64,
        config: &crate::storage::LogConfig,
    ) -> Result<(), StorageError> {
        let dir = &self.dir;
        let log = suffixed(dir, base, "log", CLEANED_SUFFIX);
        let (_, index_capacity) = capacities(config, len);
        let role = Role::Active { capacity: len, index_capacity };
        let interval = config.index_interval_bytes;
        let s = Segment::open_with_suffix(
            &self.handles,
            dir,
            &log,
            base,
            role,
            false,
            interval,
            CLEANED_SUFFIX,
        )?;
        if s.size() != len {
            return Err(StorageError::Corrupt {
                path: log,
                reason: format!("cleaned segment reads back {} of its {len} bytes", s.size()),
            });
        }
        s.finish_time_index(&RealIo)?;
        s.trim()?;
        drop(s);
        for ext in ["index", "timeindex"] {
            let p = suffixed(dir, base, ext, CLEANED_SUFFIX);
            let f = File::open(&p).map_err(|e| StorageError::io("open", &p, e))?;
            self.io.sync_file(&f).map_err(|e| StorageError::io("sync", &p, e))?;
        }
        for ext in SEGMENT_EXTENSIONS {
            let from = suffixed(dir, base, ext, CLEANED_SUFFIX);
            let to = suffixed(dir, base, ext, SWAP_SUFFIX);
            self.io.rename(&from, &to).map_err(|e| StorageError::io("rename", &to, e))?;
        }
        self.io.sync_dir(dir).map_err(|e| StorageError::io("sync directory", dir, e))
    }

    /// Step 3 of the swap: the `.swap` files over the segment's, and the new segment into
    /// the list. A segment that retention removed meanwhile keeps its removal.
    fn swap_in(
        &self,
        old: &Arc<Segment>,
        config: &crate::storage::LogConfig,
    ) -> Result<(), StorageError> {
        let base = old.base_offset();
        let dir = &self.dir;
        let _swap = lock(&self.swap_lock);
        let present = self.segments().iter().any(|s| Arc::ptr_eq(s, old));
        if !present || lock(&self.writer).closed {
            for ext in SEGMENT_EXTENSIONS {
                let _ = fs::remove_file(suffixed(dir, base, ext, SWAP_SUFFIX));
            }
            return Ok(());
        }
        // The old segment never opens its files again: they are about to be replaced.
        old.retire();
        for ext in SEGMENT_EXTENSIONS {
            let from = suffixed(dir, base, ext, SWAP_SUFFIX);
            let to = dir.join(segment_file_name(base, ext));
            self.io.rename(&from, &to).map_err(|e| StorageError::io("rename over", &to, e))?;
        }
        self.io.sync_dir(dir).map_err(|e| StorageError::io("sync directory", dir, e))?;
        let path = dir.join(segment_file_name(base, "log"));
        let new = Arc::new(Segment::open(
            &self.handles,
            dir,
            &path,
            base,
            Role::Sealed,
            true,
            config.index_interval_bytes,
        )?);
        self.replace_segment(old, Some(new));
        Ok(())
    }

    /// Removes a segment whose every batch was cleaned away: out of the list first, then
    /// its log durably, then its indexes (which an open without the log removes anyway).
    fn remove_cleaned_away(&self, old: &Arc<Segment>) -> Result<(), StorageError> {
        let _swap = lock(&self.swap_lock);
        if !self.segments().iter().any(|s| Arc::ptr_eq(s, old)) || lock(&self.writer).closed {
            return Ok(());
        }
        self.replace_segment(old, None);
        tracing::info!(segment = %old.log_path().display(), "removing segment: compaction kept none of its records");
        old.retire();
        durable::remove(self.io.as_ref(), old.log_path())?;
        old.delete_files()
    }

    fn replace_segment(&self, old: &Arc<Segment>, new: Option<Arc<Segment>>) {
        let _writer = lock(&self.writer);
        let mut list: Vec<Arc<Segment>> = self.segments().as_ref().clone();
        if let Some(i) = list.iter().position(|s| Arc::ptr_eq(s, old)) {
            match new {
                Some(n) => list[i] = n,
                None => {
                    list.remove(i);
                }
            }
        }
        *self.segments.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(list);
    }
}

/// The batches of a sealed segment, in order; a batch that does not parse ends the walk
/// with an error.
fn batches_of<'a>(s: &'a Segment, reader: &'a SegmentReader<'_>) -> SegmentBatches<'a> {
    SegmentBatches { segment: s, bytes: reader.bytes(), pos: 0 }
}

struct SegmentBatches<'a> {
    segment: &'a Segment,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for SegmentBatches<'a> {
    type Item = Result<RecordBatch<'a>, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        match RecordBatch::parse(&self.bytes[self.pos..]) {
            Ok(b) => {
                self.pos += b.size();
                Some(Ok(b))
            }
            Err(e) => {
                let reason = format!("batch at position {}: {e}", self.pos);
                self.pos = self.bytes.len();
                Some(Err(StorageError::Corrupt {
                    path: self.segment.log_path().to_owned(),
                    reason,
                }))
            }
        }
    }
}

fn corrupt(s: &Segment, b: &RecordBatch<'_>, why: &str) -> StorageError {
    StorageError::Corrupt {
        path: s.log_path().to_owned(),
        reason: format!("batch at offset {} cannot be cleaned: {why}", b.base_offset()),
    }
}

/// Finishes or discards what a crash left of swaps in `dir` (see the module docs); runs
/// before the segments are listed at open.
///
/// # Errors
/// I/O errors listing, renaming or syncing.
pub(super) fn finish_interrupted_swaps(dir: &Path) -> Result<(), StorageError> {
    let list = |dir: &Path| -> Result<Vec<String>, StorageError> {
        let entries =
            fs::read_dir(dir).map_err(|e| StorageError::io("list partition dir", dir, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io("list partition dir", dir, e))?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    };
    // The common case, and at a start of many partitions the one that matters: nothing
    // left by a cleaning, found by one listing instead of three.
    let names = list(dir)?;
    if !names.iter().any(|n| n.ends_with(CLEANED_SUFFIX) || n.ends_with(SWAP_SUFFIX)) {
        return Ok(());
    }
    let mut changed = false;
    for name in names {
        if name.ends_with(CLEANED_SUFFIX) {
            let _ = fs::remove_file(dir.join(&name));
            changed = true;
        }
    }
    for name in list(dir)? {
        let Some(stem) = name.strip_suffix(".log.swap") else { continue };
        let Ok(base) = stem.parse::<i64>() else { continue };
        changed = true;
        if dir.join(segment_file_name(base, "log")).exists() {
            for ext in SEGMENT_EXTENSIONS {
                let from = suffixed(dir, base, ext, SWAP_SUFFIX);
                if from.exists() {
                    let to = dir.join(segment_file_name(base, ext));
                    fs::rename(&from, &to).map_err(|e| StorageError::io("rename over", &to, e))?;
                }
            }
            tracing::info!(partition = %dir.display(), base, "finished a cleaned segment's interrupted swap");
        } else {
            for ext in SEGMENT_EXTENSIONS {
                let _ = fs::remove_file(suffixed(dir, base, ext, SWAP_SUFFIX));
            }
        }
    }
    for name in list(dir)? {
        if name.ends_with(".index.swap") || name.ends_with(".timeindex.swap") {
            let _ = fs::remove_file(dir.join(&name));
            changed = true;
        }
    }
    if changed {
        RealIo.sync_dir(dir).map_err(|e| StorageError::io("sync directory", dir, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
