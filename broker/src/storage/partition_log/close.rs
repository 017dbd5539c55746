//! Closing: a clean close (synced, or unsynced for a broker that syncs the whole file
//! system once), and abandoning the log of a partition whose files are to be removed.

use super::flush::sync_segments;
use super::*;

impl PartitionLog {
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
    /// ([`crate::storage::sync_file_system`]) and only then writes the data directory's
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
            sync_segments(&self.segments(), from, io)?;
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
}
