//! Opening a segment's data: the walk that finds where its batches end, rebuilding the
//! indexes of one being recovered, and the cut of a torn or zero tail.

use super::*;

impl Segment {
    /// Finds the end of the data after opening: walks the batches after the last index
    /// entry of a clean segment, or every batch of one being recovered (rebuilding its
    /// indexes), and cuts the tail.
    pub(super) fn load(
        &self,
        f: &SegmentFiles,
        file_len: usize,
        clean: bool,
        active: bool,
        index_interval: u64,
    ) -> Result<(), StorageError> {
        let bytes = f.map.slice(0, file_len);
        if !clean {
            f.index.truncate(0);
            f.time_index.truncate(0);
        }
        let start = f.index.last().unwrap_or(OffsetEntry { relative_offset: 0, position: 0 });
        if let Some(t) = f.time_index.last() {
            self.max_timestamp.store(t.timestamp, Ordering::Relaxed);
            self.offset_of_max_timestamp
                .store(self.base_offset + i64::from(t.relative_offset), Ordering::Relaxed);
        }
        let mut rebuilt: Vec<(OffsetEntry, Option<TimeEntry>)> = Vec::new();
        let mut since = 0u64;
        let end = scan::scan(
            bytes,
            start.position as usize,
            self.base_offset + i64::from(start.relative_offset),
            |b| {
                let first = b.position == start.position as usize;
                if !clean && !first && since >= index_interval {
                    let time = self.pending_time_entry(f);
                    rebuilt.push((
                        OffsetEntry {
                            relative_offset: (b.base_offset - self.base_offset) as u32,
                            position: b.position as u32,
                        },
                        time,
                    ));
                    since = 0;
                }
                since += b.size as u64;
                self.note_timestamp(b.max_timestamp, b.base_offset);
            },
        );
        // Recovery rewrites index entries from the walk; sealed clean segments keep theirs.
        // Blocks for them are reserved with the real I/O: recovery runs before any fault
        // a test injects into appends.
        for (entry, time) in rebuilt {
            // An index with no room (a smaller `segment.index.bytes` or
            // `index.interval.bytes` since the segment was written) keeps what fits:
            // lookups past its last entry walk the batches from there.
            if f.index.is_full() {
                break;
            }
            if let Some(t) = time.filter(|_| !f.time_index.is_full()) {
                f.time_index.append(t, &crate::storage::io::RealIo)?;
            }
            f.index.append(entry, &crate::storage::io::RealIo)?;
        }
        self.whole.store(end.stopped.is_none(), Ordering::Relaxed);
        if let Some(reason) = &end.stopped {
            let cut = file_len - end.valid_end;
            if matches!(reason, StopReason::ZeroTail) {
                tracing::debug!(segment = %self.log_path.display(), position = end.valid_end, "end of data before preallocated tail");
            } else {
                tracing::warn!(
                    segment = %self.log_path.display(),
                    position = end.valid_end,
                    bytes_cut = cut,
                    reason = ?reason,
                    "truncating log at first invalid batch"
                );
            }
            // Zero what was cut (a hole costs no blocks), so that a later crash cannot
            // make stale batches reappear after new ones.
            sys::punch_hole(&f.file, end.valid_end as u64, cut as u64)
                .map_err(|e| StorageError::io("cut segment tail", &self.log_path, e))?;
            if !active {
                f.file
                    .set_len(end.valid_end as u64)
                    .map_err(|e| StorageError::io("trim segment", &self.log_path, e))?;
            }
        }
        if end.valid_end > 0 {
            self.rolling_base_ms.store(crate::storage::now_ms(), Ordering::Relaxed);
            if let Ok(first) = RecordBatch::parse(&bytes[..end.valid_end]) {
                self.first_batch_timestamp.store(first.max_timestamp(), Ordering::Relaxed);
            }
        }
        self.bytes_since_index.store(since, Ordering::Relaxed);
        self.reserved.store(end.valid_end as u64, Ordering::Release);
        // A recovered segment's bytes were read from the page cache: the next sync of the
        // partition writes them out.
        self.synced_size.store(if clean { end.valid_end as u64 } else { 0 }, Ordering::Relaxed);
        self.next_offset.store(end.next_offset, Ordering::Release);
        self.size.store(end.valid_end as u64, Ordering::Release);
        Ok(())
    }
}
