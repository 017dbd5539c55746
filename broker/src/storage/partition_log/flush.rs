//! Durability: syncs on demand and by the flush policy, group commit, and the recovery
//! point the flusher records.

use std::time::{Duration, Instant};

use super::*;

impl PartitionLog {
    /// Waits until every record below `offset` is on disk. Appends that arrive while a
    /// sync runs wait for the next one and share it (group commit).
    ///
    /// # Errors
    /// [`StorageError::Poisoned`] once a sync has failed; the failing sync's own error to
    /// the caller that ran it.
    pub fn sync_to(&self, offset: i64) -> Result<(), StorageError> {
        let mut state = lock(&self.flush);
        loop {
            if self.is_poisoned() {
                return Err(StorageError::Poisoned { path: self.dir.clone() });
            }
            if state.flushed_offset >= offset {
                return Ok(());
            }
            if state.running {
                state = self.flushed.wait(state).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.running = true;
            let from = state.flushed_offset;
            drop(state);
            let result = self.sync_unflushed(from);
            state = lock(&self.flush);
            state.running = false;
            match result {
                Ok(target) => {
                    state.flushed_offset = state.flushed_offset.max(target);
                    state.last_flush_ms = now_ms();
                    self.flushed.notify_all();
                }
                Err(e) => {
                    self.poison(&e);
                    self.flushed.notify_all();
                    return Err(e);
                }
            }
        }
    }

    /// Syncs every segment with records at or past `from`: the active one, and sealed
    /// ones not synced since they rolled. Returns the offset it covers.
    pub(super) fn sync_unflushed(&self, from: i64) -> Result<i64, StorageError> {
        let target = loop {
            let (segments, target) = {
                let _writer = lock(&self.writer);
                let segments = self.segments();
                let last = segments.last().expect("invariant: at least one segment");
                (Arc::clone(&segments), last.next_offset())
            };
            // Not poisoned here: `sync_to` poisons for every error of this sync.
            sync_segments(&segments, from, self.io.as_ref())?;
            let unflushed = || segments.iter().filter(|s| s.next_offset() > from);
            // A roll retired a segment meanwhile: its bytes are the sealed copy's now, in
            // the current list, and still to be synced there.
            if !unflushed().any(|s| s.is_retired()) {
                break target;
            }
        };
        self.sync_dir_if_dirty()?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(target)
    }

    /// [`sync_segments`] through the partition's I/O, poisoning the partition when a sync
    /// fails: a failed fsync is never retried, the partition refuses writes instead.
    pub(super) fn sync_segments_or_poison(
        &self,
        segments: &[Arc<Segment>],
        from: i64,
    ) -> Result<(), StorageError> {
        sync_segments(segments, from, self.io.as_ref()).inspect_err(|e| self.poison(e))
    }

    /// Syncs the partition directory when a segment was created since it last was, so
    /// that records acknowledged as durable in a new segment keep its file's name.
    pub(super) fn sync_dir_if_dirty(&self) -> Result<(), StorageError> {
        if self.dir_dirty.swap(false, Ordering::AcqRel) {
            if let Err(e) = self.io.sync_dir(&self.dir) {
                self.dir_dirty.store(true, Ordering::Release);
                return Err(StorageError::io("sync partition dir", &self.dir, e));
            }
        }
        Ok(())
    }

    /// Syncs the sealed segments not yet on disk and then writes the recovery point
    /// checkpoint, once per roll. Kafka flushes a segment when it rolls, off the append
    /// path; here the flusher's next tick does, so that a restart after a crash recovers
    /// only the segments from the last roll on.
    pub(super) fn sync_sealed(&self) -> Result<(), StorageError> {
        if self.is_poisoned() {
            // The failure was logged once; a poisoned partition is not synced again.
            return Ok(());
        }
        let segments = self.segments();
        let (sealed, active) = segments.split_at(segments.len() - 1);
        let active_base = active[0].base_offset();
        let flushed = lock(&self.flush).flushed_offset;
        if self.recovery_point_checkpoint.durable() >= active_base {
            return Ok(());
        }
        if flushed < active_base {
            self.sync_segments_or_poison(sealed, flushed)?;
            let mut state = lock(&self.flush);
            state.flushed_offset = state.flushed_offset.max(active_base);
        }
        // The recovery point promises these segments, names included.
        self.sync_dir_if_dirty()?;
        self.recovery_point_checkpoint.advance(self.io.as_ref(), self.flushed_offset())
    }

    /// Syncs everything appended so far.
    ///
    /// # Errors
    /// As [`Self::sync_to`].
    pub fn flush(&self) -> Result<(), StorageError> {
        self.sync_to(self.log_end_offset())
    }

    /// The background flusher's tick: syncs segments sealed since the last tick (and
    /// records the recovery point), and syncs everything when `flush.messages` records or
    /// `flush.ms` of time have accumulated since the last sync. Returns how long its
    /// syncs took, if it ran any.
    ///
    /// # Errors
    /// As [`Self::sync_to`]; I/O errors writing the recovery point.
    pub fn flush_if_due(&self, now_ms: i64) -> Result<Option<Duration>, StorageError> {
        if self.recovery_point_checkpoint.durable() >= self.log_end_offset() {
            return Ok(None);
        }
        let (syncs, started) = (self.syncs(), Instant::now());
        self.sync_sealed()?;
        let config = self.config();
        let leo = self.log_end_offset();
        let (unflushed, since) = {
            let state = lock(&self.flush);
            (leo - state.flushed_offset, now_ms - state.last_flush_ms)
        };
        let due = unflushed > 0
            && (unflushed as u64 >= config.flush_messages
                || (config.flush_ms >= 0 && since >= config.flush_ms));
        if due {
            self.sync_to(leo)?;
        }
        Ok((self.syncs() != syncs).then(|| started.elapsed()))
    }

    /// When the background flusher next has something to do here ([`Self::flush_if_due`]
    /// and [`Self::remove_expired_producers`]), so that its tick visits only the logs that
    /// do: `now_ms` for segments sealed since the last sync or `flush.messages` reached;
    /// the `flush.ms` deadline of unflushed records; the longest idle producer's expiry.
    /// `None`: nothing until the log changes (an append, a roll, a config change), after
    /// which the caller asks again.
    pub fn background_due(&self, now_ms: i64) -> Option<i64> {
        if self.is_poisoned() {
            return None;
        }
        let (flush_messages, flush_ms, expiration_ms) = {
            let c = read_lock(&self.config);
            (c.flush_messages, c.flush_ms, c.producer_id_expiration_ms)
        };
        let expiry = {
            let writer = lock(&self.writer);
            if writer.closed {
                return None;
            }
            writer.producers.next_expiry(expiration_ms)
        };
        let active_base = self.segments().last().expect("invariant: a segment").base_offset();
        let mut due: Option<i64> = expiry;
        let mut at = |t: i64| due = Some(due.map_or(t, |d| d.min(t)));
        if self.recovery_point_checkpoint.durable() < active_base {
            at(now_ms);
        }
        let (flushed, last_flush_ms) = {
            let state = lock(&self.flush);
            (state.flushed_offset, state.last_flush_ms)
        };
        let unflushed = self.log_end_offset() - flushed;
        if unflushed > 0 {
            if unflushed as u64 >= flush_messages {
                at(now_ms);
            }
            if flush_ms >= 0 {
                at(last_flush_ms.saturating_add(flush_ms));
            }
        }
        due
    }
}

/// Syncs each of `segments` that holds records at or past `from`, through `io`; stops at
/// the first failure. Poisons nothing: callers that must poison use
/// [`PartitionLog::sync_segments_or_poison`].
pub(super) fn sync_segments(
    segments: &[Arc<Segment>],
    from: i64,
    io: &dyn FileIo,
) -> Result<(), StorageError> {
    for s in segments.iter().filter(|s| s.next_offset() > from) {
        s.sync(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
