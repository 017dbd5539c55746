//! Retention and DeleteRecords: whole sealed segments go, and the log start offset moves.

use super::*;

impl PartitionLog {
    /// Deletes sealed segments past `retention.ms` or `retention.bytes`, and those wholly
    /// below the log start offset; advances the log start offset. Returns how many went.
    ///
    /// # Errors
    /// I/O errors removing files or writing the checkpoint.
    pub fn apply_retention(&self, now_ms: i64) -> Result<usize, StorageError> {
        self.delete_segments(Some((&self.config(), now_ms)))
    }

    /// Deletes the oldest sealed segments that are wholly below the log start offset or,
    /// given a config and the time, past its retention limits.
    pub(super) fn delete_segments(
        &self,
        retention: Option<(&LogConfig, i64)>,
    ) -> Result<usize, StorageError> {
        let (retention_ms, retention_bytes, now_ms) = match retention {
            // A compact-only log keeps its records for ever, as Kafka's does.
            Some((c, _)) if !c.cleanup_delete => (-1, -1, 0),
            Some((c, now)) => (c.retention_ms, c.retention_bytes, now),
            None => (-1, -1, 0),
        };
        let swap = lock(&self.swap_lock);
        let writer = lock(&self.writer);
        let segments = self.segments();
        let sealed = segments.len() - 1;
        let mut total: i64 = segments.iter().map(|s| s.size() as i64).sum();
        let log_start = self.log_start_offset();
        let mut drop = 0;
        while drop < sealed {
            let s = &segments[drop];
            let by_time = retention_ms >= 0
                && s.max_timestamp() >= 0
                && now_ms.saturating_sub(s.max_timestamp()) > retention_ms;
            let by_size = retention_bytes >= 0 && total - s.size() as i64 >= retention_bytes;
            let by_start = segments[drop + 1].base_offset() <= log_start;
            if !(by_time || by_size || by_start) {
                break;
            }
            total -= s.size() as i64;
            drop += 1;
        }
        if drop == 0 {
            return Ok(0);
        }
        let kept = Arc::new(segments[drop..].to_vec());
        write_lock(&self.aborted).remove_below(kept[0].base_offset());
        let new_start = log_start.max(kept[0].base_offset());
        self.log_start_offset.fetch_max(new_start, Ordering::AcqRel);
        *self.segments.write().unwrap_or_else(PoisonError::into_inner) = kept;
        std::mem::drop(writer);
        // Unlinks and the checkpoint wait for no one: readers keep their segments open,
        // and the new start needs no checkpoint to hold (the first segment left is at it).
        for s in &segments[..drop] {
            tracing::info!(segment = %s.log_path().display(), "deleting segment (retention)");
            s.delete_files()?;
        }
        std::mem::drop(swap);
        if new_start != log_start {
            self.log_start_checkpoint.advance(self.io.as_ref(), new_start)?;
        }
        Ok(drop)
    }

    /// Moves the log start offset to `offset` (DeleteRecords); whole segments below it
    /// are deleted. Returns the new log start offset.
    ///
    /// # Errors
    /// [`StorageError::OffsetOutOfRange`] past the high watermark; I/O errors.
    pub fn delete_records(&self, offset: i64) -> Result<i64, StorageError> {
        let hw = self.high_watermark();
        if offset < 0 || offset > hw {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset(),
                log_end_offset: hw,
            });
        }
        if offset > self.log_start_offset() {
            // Durable before it is published or answered; outside the writer lock, so a
            // client repeating this does not delay appends (requests that arrive while
            // one write runs share the next).
            self.log_start_checkpoint.advance(self.io.as_ref(), offset)?;
            self.log_start_offset.fetch_max(offset, Ordering::AcqRel);
        }
        self.delete_segments(None)?;
        Ok(self.log_start_offset())
    }
}
