//! Reads: whole batches from an offset (read_committed bounded by the last stable
//! offset), and lookups by timestamp.

use super::*;

impl PartitionLog {
    /// Reads whole batches starting at the batch that holds `offset`, up to `max_bytes`
    /// but at least one batch, from one segment. A `max_bytes` of 0 (a fetch response
    /// already full) and an offset at the log end read nothing: they check the offset and
    /// answer the log's offsets without opening a file.
    ///
    /// # Errors
    /// [`StorageError::OffsetOutOfRange`] for offsets below the log start offset or past
    /// the log end offset.
    pub fn read(&self, offset: i64, max_bytes: u64) -> Result<ReadInfo, StorageError> {
        self.read_isolated(offset, max_bytes, Isolation::ReadUncommitted)
    }

    /// [`Self::read`] for a fetch's isolation level: read_committed stops at the last
    /// stable offset and lists the aborted transactions that overlap what it returns.
    ///
    /// # Errors
    /// As [`Self::read`].
    pub fn read_isolated(
        &self,
        offset: i64,
        max_bytes: u64,
        isolation: Isolation,
    ) -> Result<ReadInfo, StorageError> {
        retrying_retired(|| self.read_once(offset, max_bytes, isolation))
    }

    fn read_once(
        &self,
        offset: i64,
        max_bytes: u64,
        isolation: Isolation,
    ) -> Result<ReadInfo, StorageError> {
        let log_start_offset = self.log_start_offset();
        let log_end_offset = self.log_end_offset();
        if offset < log_start_offset || offset > log_end_offset {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset,
                log_end_offset,
            });
        }
        let committed = isolation == Isolation::ReadCommitted;
        let bound = if committed { self.last_stable_offset_at(log_end_offset) } else { i64::MAX };
        let segments = self.segments();
        let first = segments.partition_point(|s| s.base_offset() <= offset).saturating_sub(1);
        let mut slice = None;
        let mut aborted = Vec::new();
        // A consumer at the log end (the common case of a long poll) opens no file.
        let readable = offset < bound && offset < log_end_offset && max_bytes > 0;
        for segment in segments[first..].iter().filter(|_| readable) {
            let size = segment.size();
            if size == 0 {
                // Nothing to read, and no file to open for it.
                continue;
            }
            let reader = segment.reader()?;
            let Some(b) = reader.find_batch(offset, size) else { continue };
            if b.base_offset >= bound {
                break;
            }
            // Bytes up to the batch that starts at the bound (a batch boundary: the first
            // batch of a transaction, or the log end).
            let limit = if bound >= segment.next_offset() {
                size
            } else {
                reader.find_batch(bound, size).map_or(size, |at| at.position)
            };
            let s = reader.slice_from(b, max_bytes, limit);
            if committed {
                let end = s.position + s.len;
                let upper = reader
                    .batch_at(end, size)
                    .map_or(segment.next_offset(), |next| next.base_offset)
                    .min(bound);
                aborted = read_lock(&self.aborted).overlapping(offset, upper);
            }
            slice = Some(s);
            break;
        }
        let high_watermark = self.high_watermark();
        Ok(ReadInfo {
            slice,
            high_watermark,
            log_start_offset,
            last_stable_offset: self.last_stable_offset_at(high_watermark),
            aborted,
        })
    }

    /// The first batch whose max timestamp is at or after `timestamp` (Kafka's
    /// ListOffsets by time works at this granularity before it looks inside the batch).
    ///
    /// # Errors
    /// A segment whose files cannot be opened.
    pub fn lookup_by_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>, StorageError> {
        retrying_retired(|| {
            let log_start = self.log_start_offset();
            for segment in self.segments().iter() {
                if segment.max_timestamp() < timestamp {
                    continue;
                }
                let size = segment.size();
                let reader = segment.reader()?;
                if let Some(b) = reader.find_by_timestamp(timestamp, log_start, size) {
                    return Ok(Some(TimestampOffset {
                        offset: b.base_offset.max(log_start),
                        timestamp: b.max_timestamp,
                        batch: reader.slice_of(&b),
                    }));
                }
            }
            Ok(None)
        })
    }

    /// The batch with the largest timestamp (ListOffsets MAX_TIMESTAMP, KIP-734).
    ///
    /// # Errors
    /// A segment whose files cannot be opened.
    pub fn max_timestamp(&self) -> Result<Option<TimestampOffset>, StorageError> {
        retrying_retired(|| {
            let segments = self.segments();
            let Some(best) = segments
                .iter()
                .filter(|s| s.max_timestamp() >= 0)
                .max_by_key(|s| s.max_timestamp())
            else {
                return Ok(None);
            };
            let size = best.size();
            let reader = best.reader()?;
            let found = reader.find_by_timestamp(best.max_timestamp(), i64::MIN, size);
            Ok(found.map(|b| TimestampOffset {
                offset: b.base_offset,
                timestamp: b.max_timestamp,
                batch: reader.slice_of(&b),
            }))
        })
    }
}

/// Runs a read again when a segment it found was retired meanwhile (retention deleted
/// it, compaction replaced it, a roll sealed a copy): the next attempt takes the current
/// segment list. Compaction retires a segment before it renames the cleaned files over
/// it and installs the new list after, so later attempts wait a millisecond for that.
fn retrying_retired<T>(
    mut read: impl FnMut() -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    const ATTEMPTS: u32 = 50;
    let mut attempts = 0;
    loop {
        match read() {
            Err(StorageError::SegmentRetired { .. }) if attempts < ATTEMPTS => {
                if attempts > 0 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                attempts += 1;
            }
            other => return other,
        }
    }
}
