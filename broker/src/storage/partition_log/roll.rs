//! Rolling: sealing the active segment and starting the next one, and publishing the new
//! segment list with the producer snapshot that bounds the replay after a crash.

use super::*;

impl PartitionLog {
    /// Seals the active segment and starts a new one at the log end offset (or, when the
    /// active segment is empty but too small for `min_capacity`, recreates it larger).
    ///
    /// The steps that can fail for want of space, descriptors or memory (the final time
    /// index entry, creating the new segment) come before the old one's files are trimmed:
    /// a roll that fails there leaves the old segment active and whole, and the next append
    /// tries again. A trimmed segment must never be appended to (its index mappings would
    /// reach past the files' ends), so a failed trim poisons the partition.
    pub(super) fn roll(
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
}
