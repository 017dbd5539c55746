//! Reads of a segment's published batches: walks, lookups by offset and by timestamp, and
//! the file slices a fetch sends.

use super::*;

/// Reads of a segment's published batches through its open files.
pub(crate) struct SegmentReader<'a> {
    pub(super) segment: &'a Segment,
    pub(super) files: Arc<SegmentFiles>,
}

impl SegmentReader<'_> {
    /// Calls `f` with every published batch from the one holding `offset` on.
    pub(crate) fn for_each_batch_from(&self, offset: i64, mut f: impl FnMut(&RecordBatch<'_>)) {
        let size = self.segment.size();
        let Some(first) = self.find_batch(offset, size) else { return };
        let mut pos = first.position;
        while pos < size {
            let Ok(b) =
                RecordBatch::parse(self.files.map.slice(pos as usize, (size - pos) as usize))
            else {
                return;
            };
            f(&b);
            pos += b.size() as u64;
        }
    }

    /// The batch header at `position`, if a whole batch is published there.
    pub(crate) fn batch_at(&self, position: u64, size: u64) -> Option<BatchPosition> {
        if position >= size {
            return None;
        }
        let bytes = self.files.map.slice(position as usize, (size - position) as usize);
        let b = RecordBatch::parse(bytes).ok()?;
        Some(BatchPosition {
            position,
            size: b.size() as u64,
            base_offset: b.base_offset(),
            last_offset: b.last_offset(),
            max_timestamp: b.max_timestamp(),
        })
    }

    /// The first published batch whose last offset is at least `offset`.
    pub(crate) fn find_batch(&self, offset: i64, size: u64) -> Option<BatchPosition> {
        let rel = (offset - self.segment.base_offset).clamp(0, u32::MAX as i64) as u32;
        let mut pos =
            self.files.index.floor(rel, |e| e.relative_offset).map_or(0, |e| u64::from(e.position));
        if pos >= size {
            pos = 0;
        }
        while let Some(b) = self.batch_at(pos, size) {
            if b.last_offset >= offset {
                return Some(b);
            }
            pos += b.size;
        }
        None
    }

    /// Whole batches from `start` (a batch boundary) up to `max_bytes`, at least one.
    pub(crate) fn slice_from(&self, start: BatchPosition, max_bytes: u64, size: u64) -> FileSlice {
        let limit = start.position.saturating_add(max_bytes);
        let mut end = start.position + start.size;
        if end < limit {
            // Jump to the last indexed batch that starts before the limit, then walk.
            if let Some(e) =
                self.files.index.floor(limit.min(u32::MAX as u64) as u32, |e| e.position)
            {
                let p = u64::from(e.position);
                if p > end && p < size {
                    end = p;
                }
            }
            while let Some(b) = self.batch_at(end, size) {
                if end + b.size > limit {
                    break;
                }
                end += b.size;
            }
        }
        FileSlice {
            file: Arc::clone(&self.files.file),
            position: start.position,
            len: end - start.position,
        }
    }

    /// The bytes of one batch found in this segment.
    pub(crate) fn slice_of(&self, b: &BatchPosition) -> FileSlice {
        FileSlice { file: Arc::clone(&self.files.file), position: b.position, len: b.size }
    }

    /// The first batch whose max timestamp is at or after `timestamp`, among the batches
    /// that end at or after `min_offset` (the log start offset: earlier batches are
    /// deleted records, even while their segment remains).
    pub(crate) fn find_by_timestamp(
        &self,
        timestamp: i64,
        min_offset: i64,
        size: u64,
    ) -> Option<BatchPosition> {
        if self.segment.max_timestamp() < timestamp {
            return None;
        }
        // Every batch up to the one holding a time entry's offset has timestamps at most
        // the entry's: start from the last entry that is still below the target.
        let from = self
            .files
            .time_index
            .floor(timestamp.saturating_sub(1), |t| t.timestamp)
            .map_or(self.segment.base_offset, |t| {
                self.segment.base_offset + i64::from(t.relative_offset)
            })
            .max(min_offset);
        let mut b = self.find_batch(from, size)?;
        loop {
            if b.max_timestamp >= timestamp {
                return Some(b);
            }
            b = self.batch_at(b.position + b.size, size)?;
        }
    }

    /// The published bytes, through the mapping (the cleaner reads sealed segments so).
    pub(crate) fn bytes(&self) -> &[u8] {
        self.files.map.slice(0, self.segment.size() as usize)
    }
}
