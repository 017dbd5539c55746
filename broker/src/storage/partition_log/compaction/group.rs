//! Cleaning one group of consecutive sealed segments into one cleaned segment at the
//! group's first base offset (Kafka's `Cleaner.cleanSegments`), and what the group's
//! segments become: swapped for it, or removed when they keep nothing.
//!
//! The batches of every segment of the group are filtered in order into
//! `<first base>.log.cleaned`, so offsets keep their holes and the merged segment ends at
//! the last batch it keeps. The segments of the group whose base offset is at or past
//! that end kept nothing: they are not part of the swap, whose offset range recovery
//! reads from the swapped log alone (see [`super::swap`]), and they go one by one after
//! it, as any segment that keeps nothing goes.
//!
//! A group is sized by its segments before cleaning (Kafka's rule): the cleaned segment
//! holds at most their bytes, but for what a batch grows when a tombstone it keeps first
//! gets its delete horizon (its records' timestamp deltas are re-based on the horizon,
//! a byte or a few each), as a segment cleaned alone grows. What a pass empties is merged
//! by the next one.

use std::fs::{self, File, OpenOptions};
use std::io::IoSlice;
use std::path::Path;
use std::sync::Arc;

use super::swap::{discard_swap, suffixed, CLEANED_SUFFIX};
use super::{batches_of, corrupt, CleanStats, CleanerResources, Pass};
use crate::storage::cleaner::{filter_batch, write_empty_batch, Outcome};
use crate::storage::partition_log::PartitionLog;
use crate::storage::segment::Segment;
use crate::storage::txn_index::{self, AbortedTxn};
use crate::storage::StorageError;

/// The cleaned log being written.
struct Output {
    file: File,
    /// Bytes written.
    len: u64,
}

impl PartitionLog {
    /// Cleans `group` (consecutive sealed segments, see the module docs) into one segment
    /// and swaps it in; a group of one segment that cleaning does not change is left
    /// alone. Returns the earliest delete horizon of a tombstone it keeps (`i64::MAX`:
    /// none).
    pub(super) fn clean_group(
        &self,
        group: &[Arc<Segment>],
        pass: &Pass<'_>,
        stats: &mut CleanStats,
    ) -> Result<i64, StorageError> {
        let res = pass.res;
        let base = group[0].base_offset();
        let cleaned = suffixed(&self.dir, base, "log", CLEANED_SUFFIX);
        // Segments are merged even when nothing of them changes: that is the point.
        let merging = group.len() > 1;
        let mut out: Option<Output> = None;
        let mut buf = Vec::with_capacity(res.io_buffer_bytes.max(64 << 10));
        let mut scratch = Vec::new();
        let mut horizon = i64::MAX;
        // Offset after the last batch the cleaned segment holds.
        let mut kept_end = base;
        // The group's last batch, emptied of its records, and the offset after it.
        let mut empty_last: (Vec<u8>, i64) = (Vec::new(), base);
        // The log's first segment stays, if need be as one empty batch header: its base
        // offset is the log start offset, which compaction never moves (Kafka's neither).
        let first = self.segments().first().is_some_and(|f| Arc::ptr_eq(f, &group[0]));
        let result = (|| {
            for s in group {
                if merging {
                    self.check_running(res)?;
                }
                let reader = s.reader()?;
                let bytes = reader.bytes();
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
                        && pass.last_of_producer.get(&b.producer_id()) == Some(&b.last_offset());
                    let before = buf.len();
                    let filtered = if b.base_offset() >= pass.map.end_offset() {
                        None
                    } else {
                        b.verify_crc().map_err(|e| corrupt(s, &b, &e.to_string()))?;
                        let f = filter_batch(
                            &b,
                            pass.map,
                            &pass.ctx,
                            retain_header,
                            &mut buf,
                            &mut scratch,
                        );
                        Some(f.map_err(|e| corrupt(s, &b, &e.to_string()))?)
                    };
                    if let Some(f) = &filtered {
                        stats.records_read += u64::from(f.records);
                        stats.records_kept += u64::from(f.kept);
                        if let Some(h) = f.delete_horizon {
                            horizon = horizon.min(h);
                        }
                    }
                    let outcome = filtered.map_or(Outcome::Keep, |f| f.outcome);
                    if outcome != Outcome::Remove {
                        kept_end = b.last_offset() + 1;
                    }
                    if out.is_none() {
                        if outcome == Outcome::Keep && !merging {
                            continue;
                        }
                        // The first change: everything before it in this segment (in a
                        // merge, nothing) is copied as it is.
                        let file = create(&cleaned)?;
                        if at > 0 {
                            self.io.write(&file, 0, &mut [IoSlice::new(&bytes[..at])]).map_err(
                                |e| StorageError::io("write cleaned segment", &cleaned, e),
                            )?;
                            (res.throttle)(at as u64);
                        }
                        out = Some(Output { file, len: at as u64 });
                    }
                    if outcome == Outcome::Keep {
                        buf.truncate(before);
                        buf.extend_from_slice(b.as_bytes());
                    }
                    if buf.len() >= res.io_buffer_bytes {
                        if let Some(o) = &mut out {
                            self.write_out(o, &mut buf, &cleaned, res)?;
                        }
                    }
                }
                if let Some(b) = &last {
                    empty_last.0.clear();
                    write_empty_batch(b, &mut empty_last.0);
                    empty_last.1 = b.last_offset() + 1;
                }
            }
            if let Some(o) = &mut out {
                if o.len == 0 && buf.is_empty() && first && !empty_last.0.is_empty() {
                    buf.extend_from_slice(&empty_last.0);
                    kept_end = empty_last.1;
                }
                self.write_out(o, &mut buf, &cleaned, res)?;
                self.io.sync_file(&o.file).map_err(|e| StorageError::io("sync", &cleaned, e))?;
            }
            Ok::<_, StorageError>(())
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&cleaned);
            return Err(e);
        }
        let Some(Output { file, len }) = out else { return Ok(horizon) };
        drop(file);
        stats.bytes_written += len;
        // The segments that the cleaned one holds records of (all of them when it is
        // empty); the rest kept nothing.
        let covered =
            if len == 0 { 0 } else { group.partition_point(|s| s.base_offset() < kept_end) };
        let (swapped, emptied) = group.split_at(covered);
        if swapped.is_empty() {
            let _ = fs::remove_file(&cleaned);
        } else {
            let aborted = if swapped.len() > 1 { aborted_of(swapped)? } else { Vec::new() };
            let last = swapped.last().expect("invariant: a segment swapped");
            let modified = fs::metadata(last.log_path()).and_then(|m| m.modified()).ok();
            if let Err(e) = self.commit_cleaned(base, len, &aborted, modified, pass.config) {
                discard_swap(self.io.as_ref(), &self.dir, base);
                return Err(e);
            }
            self.swap_in(swapped, pass.config)?;
            stats.segments_cleaned += 1;
            stats.segments_merged += swapped.len() - 1;
        }
        // Oldest first, after the swap: what they held was replaced later in the log.
        for s in emptied {
            self.remove_cleaned_away(s)?;
            stats.segments_removed += 1;
        }
        Ok(horizon)
    }

    fn write_out(
        &self,
        out: &mut Output,
        buf: &mut Vec<u8>,
        path: &Path,
        res: &CleanerResources<'_>,
    ) -> Result<(), StorageError> {
        if buf.is_empty() {
            return Ok(());
        }
        self.io
            .write(&out.file, out.len, &mut [IoSlice::new(buf)])
            .map_err(|e| StorageError::io("write cleaned segment", path, e))?;
        (res.throttle)(buf.len() as u64);
        out.len += buf.len() as u64;
        buf.clear();
        Ok(())
    }
}

fn create(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| StorageError::io("create cleaned segment", path, e))
}

/// The aborted transactions of the segments a merged segment replaces, in marker order:
/// cleaning keeps every marker, so the merged segment's `.txnindex` holds them all.
fn aborted_of(segments: &[Arc<Segment>]) -> Result<Vec<AbortedTxn>, StorageError> {
    let mut all = Vec::new();
    for s in segments {
        all.extend(txn_index::read(&s.txn_index_path())?);
    }
    Ok(all)
}
