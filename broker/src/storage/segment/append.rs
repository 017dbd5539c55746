//! Appends to the active segment: blocks reserved ahead (so a full disk fails the append
//! before any byte is written), one pwritev, publication, then the sparse index entries.

use super::*;

impl Segment {
    /// Appends a validated record set whose first record gets `first_offset`: reserves
    /// blocks (failing before any byte is written), writes the set with one pwritev (each
    /// batch's base offset and leader epoch set in a copy of its first 16 bytes), publishes,
    /// then adds index entries. Returns the offset after the set.
    ///
    /// The caller holds the partition's writer lock and has checked that it fits.
    pub(crate) fn append(
        &self,
        records: &[u8],
        batches: &[BatchMeta],
        first_offset: i64,
        index_interval: u64,
        io: &dyn FileIo,
        log_end_offset: &AtomicI64,
    ) -> Result<i64, StorageError> {
        let f = self.files()?;
        let pos = self.size.load(Ordering::Relaxed);
        let end = pos + records.len() as u64;
        debug_assert!(end <= self.capacity());
        self.reserve(&f, end, io)?;
        // Blocks for exactly the entries this set adds: the first batches of a segment
        // add none, so a partition's first append reserves no index blocks (each reserve
        // opens an index file, whose descriptor is not kept).
        let new_entries = index_entries_added(
            self.bytes_since_index.load(Ordering::Relaxed),
            batches,
            index_interval,
        );
        if new_entries > 0 {
            f.index.reserve(((f.index.len() + new_entries) * 8) as u64, io)?;
            f.time_index.reserve(((f.time_index.len() + new_entries) * 12) as u64, io)?;
        }

        // The set goes to the file with one pwritev: each batch's first 16 bytes (base
        // offset, length, leader epoch) from a patched copy, the rest straight from the
        // request frame. write(2) into the page cache costs one copy; a store into a fresh
        // mapped page costs the kernel zeroing the page first, then the copy.
        let mut offset = first_offset;
        let mut heads: Vec<[u8; 16]> = Vec::with_capacity(batches.len());
        for b in batches {
            let mut head = [0u8; 16];
            head.copy_from_slice(&records[b.offset_in_set..b.offset_in_set + 16]);
            batch::set_base_offset(&mut head, offset);
            // A single node is leader for ever: epoch 0, which clients' truncation
            // detection (OffsetForLeaderEpoch) accepts as long as it never changes.
            batch::set_partition_leader_epoch(&mut head, 0);
            heads.push(head);
            offset += i64::from(b.last_offset_delta) + 1;
        }
        let mut slices = Vec::with_capacity(batches.len() * 2);
        for (b, head) in batches.iter().zip(&heads) {
            slices.push(std::io::IoSlice::new(head));
            slices.push(std::io::IoSlice::new(
                &records[b.offset_in_set + 16..b.offset_in_set + b.size],
            ));
        }
        io.write(&f.file, pos, &mut slices)
            .map_err(|e| StorageError::io("write segment", &self.log_path, e))?;

        let mut offset = first_offset;
        let mut since = self.bytes_since_index.load(Ordering::Relaxed);
        let mut entries: Vec<(OffsetEntry, Option<TimeEntry>)> = Vec::new();
        for b in batches {
            let at = pos as usize + b.offset_in_set;
            if entry_due(&mut since, b.size as u64, index_interval) {
                entries.push((
                    OffsetEntry {
                        relative_offset: (offset - self.base_offset) as u32,
                        position: at as u32,
                    },
                    self.pending_time_entry(&f),
                ));
            }
            self.note_timestamp(b.max_timestamp, offset);
            offset += i64::from(b.last_offset_delta) + 1;
        }
        if pos == 0 {
            self.rolling_base_ms.store(crate::storage::now_ms(), Ordering::Relaxed);
            if let Some(first) = batches.first() {
                self.first_batch_timestamp.store(first.max_timestamp, Ordering::Relaxed);
            }
        }
        self.bytes_since_index.store(since, Ordering::Relaxed);
        // Offsets before size: a reader that sees the new size (acquire) and then loads
        // the log end offset finds it covering every batch below that size.
        self.next_offset.store(offset, Ordering::Release);
        log_end_offset.store(offset, Ordering::Release);
        self.size.store(end, Ordering::Release);
        // Entries go in after the data is published: a reader that sees an entry always
        // finds its batch. Blocks were reserved above; an entry that finds its index full
        // (only an empty segment is appended to without room being checked) is left out,
        // which a sparse index allows, rather than failing an append already published.
        for (entry, time) in entries {
            if let Some(t) = time {
                if !f.time_index.is_full() {
                    f.time_index.append(t, io)?;
                }
            }
            if !f.index.is_full() {
                f.index.append(entry, io)?;
            }
        }
        Ok(offset)
    }

    /// Backs the log up to `end` with blocks, reserving a chunk that grows with the
    /// segment, so a full disk fails the append before any byte is written.
    fn reserve(&self, f: &SegmentFiles, end: u64, io: &dyn FileIo) -> Result<(), StorageError> {
        let reserved = self.reserved.load(Ordering::Acquire);
        if end <= reserved {
            return Ok(());
        }
        let chunk = reserved.clamp(MIN_RESERVE, MAX_RESERVE);
        let new_end = (end + chunk).min(self.capacity()).max(end);
        io.reserve(&f.file, reserved, new_end - reserved)
            .map_err(|e| StorageError::io("reserve segment blocks", &self.log_path, e))?;
        self.reserved.store(new_end, Ordering::Release);
        Ok(())
    }
}

/// Whether a batch of `size` bytes gets an index entry, given the bytes appended since the
/// last entry (`since`, updated): Kafka's rule, an entry once `index.interval.bytes` have
/// gone by, so a segment's first batch gets none.
fn entry_due(since: &mut u64, size: u64, index_interval: u64) -> bool {
    let due = *since >= index_interval;
    *since = if due { size } else { *since + size };
    due
}

/// How many index entries appending `batches` adds (see [`entry_due`]).
fn index_entries_added(mut since: u64, batches: &[BatchMeta], index_interval: u64) -> usize {
    batches.iter().filter(|b| entry_due(&mut since, b.size as u64, index_interval)).count()
}
