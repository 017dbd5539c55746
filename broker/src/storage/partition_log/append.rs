//! Appending: a producer's record set or a transaction marker, under the writer lock,
//! with the producers' sequence checks and the roll that a set may need first.

use super::*;

impl PartitionLog {
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
}
