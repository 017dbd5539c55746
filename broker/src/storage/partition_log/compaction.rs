//! Cleaning a compacted partition log: which part of it is cleanable, a pass of the
//! cleaner over its sealed segments, and the swap of a cleaned segment for the old ones.
//! The rules for records, batches and groups are in [`crate::storage::cleaner`].
//!
//! A pass, as Kafka's `Cleaner.doClean`: the offset map is built from the dirty section
//! (`cleaner-offset-checkpoint` up to the first uncleanable offset: the active segment,
//! or the first segment younger than `min.compaction.lag.ms`), then the sealed segments
//! below the map's end are grouped by size (`segment.bytes`, `segment.index.bytes`, an
//! `i32` of offsets) and each group is filtered against the map into one segment at the
//! group's first base offset, oldest group first ([`group`]); the checkpoint moves to the
//! map's end. A group of one segment that nothing changes is left alone; any other group
//! is swapped for its cleaned segment in steps that a crash cannot tear ([`swap`]).
//!
//! Readers hold their segment (descriptor and mappings), so a swap or removal never cuts a
//! fetch short. Appends never wait for a pass: the writer lock is taken only to replace
//! the segment list, and the cleaner reads sealed segments, which appends do not touch.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use sluice_protocol::record::batch::RecordBatch;

mod group;
mod swap;

pub(super) use swap::finish_interrupted_swaps;

use super::{lock, PartitionLog};
use crate::storage::cleaner::{group_segments_by_size, FilterContext, OffsetMap, SegmentSizes};
use crate::storage::segment::{Segment, SegmentReader};
use crate::storage::{LogConfig, StorageError};

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
    /// Cleaned segments swapped in, each for one segment or for a group merged into it.
    pub segments_cleaned: usize,
    /// Segments merged into a cleaned segment at an earlier base offset: the segment
    /// count fell by this much more than by the removed ones.
    pub segments_merged: usize,
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
        let pass =
            Pass { map: &map, ctx, last_of_producer: &last_of_producer, res, config: &config };
        let mut stats = CleanStats { end_offset: end, ..CleanStats::default() };
        let mut horizon = i64::MAX;
        // Sealed segments are in offset order, so those below the map's end are a prefix,
        // and each has its successor in `segments`.
        let cleaned = &sealed[..sealed.partition_point(|s| s.base_offset() < end)];
        let sizes: Vec<SegmentSizes> = cleaned
            .iter()
            .zip(&segments[1..])
            .map(|(s, next)| SegmentSizes {
                base_offset: s.base_offset(),
                end_offset: next.base_offset(),
                log_bytes: s.size(),
                offset_index_bytes: s.offset_index_bytes(),
                time_index_bytes: s.time_index_bytes(),
            })
            .collect();
        let groups =
            group_segments_by_size(&sizes, config.segment_bytes, config.segment_index_bytes);
        for group in groups {
            self.check_running(res)?;
            let h = self.clean_group(&cleaned[group], &pass, &mut stats)?;
            horizon = horizon.min(h);
        }
        // The earliest horizon of a kept tombstone: when it passes, a pass removes it.
        self.delete_horizon
            .store(if horizon == i64::MAX { -1 } else { horizon }, Ordering::Release);
        self.cleaner_checkpoint.advance(self.io.as_ref(), end)?;
        Ok(Some(stats))
    }
}

impl PartitionLog {
    /// Ends a pass when the log was closed or the broker stops.
    fn check_running(&self, res: &CleanerResources<'_>) -> Result<(), StorageError> {
        if lock(&self.writer).closed || res.stop.load(Ordering::Acquire) {
            return Err(StorageError::Closed { path: self.dir.clone() });
        }
        Ok(())
    }
}

/// What a pass holds fixed while it cleans its groups.
struct Pass<'a> {
    map: &'a OffsetMap,
    ctx: FilterContext,
    /// Last offset of each producer whose state the partition keeps.
    last_of_producer: &'a HashMap<i64, i64>,
    res: &'a CleanerResources<'a>,
    config: &'a LogConfig,
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

#[cfg(test)]
mod merge_tests;
#[cfg(test)]
mod tests;
