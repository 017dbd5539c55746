//! One segment of a partition log: a `.log` file of batches and its two sparse indexes.
//!
//! The active segment is mapped at its full capacity (`segment.bytes`, or more for a
//! single record set larger than that); blocks are reserved in growing chunks just ahead
//! of the write position, each reservation extending the file, so the file is never
//! shorter than what is stored into its mappings. Opening extends nothing: extending a
//! file zeroes the rest of its last block, which a partition opened only to be read (or
//! not at all) would pay for in a disk read. Appends write with pwritev(2) (see
//! [`Segment::append`] for why not a store into the mapping); readers look at published
//! bytes through the mapping, which shares the page cache. A sealed segment's files are
//! trimmed to their data and it is mapped at exactly that size.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use sluice_protocol::record::batch::{self, RecordBatch};

use super::handle_cache::{HandleCache, Slot, SlotError};
use super::index::{
    EntryCount, IndexEntry, IndexState, OffsetEntry, OffsetIndex, TimeEntry, TimeIndex,
};
use super::io::FileIo;
use super::sys::{self, MmapRegion};
use super::txn_index::{self, AbortedTxn};
use super::{segment_file_name, FileSlice, StorageError};
use scan::StopReason;

mod append;
mod load;
mod reader;
mod scan;

pub(crate) use reader::SegmentReader;
pub(crate) use scan::next_offset_from_headers;

/// Smallest and largest block reservation ahead of the write position. The chunk grows
/// with the segment, so an idle partition holds 64 KiB and a busy one at most 16 MiB.
const MIN_RESERVE: u64 = 64 * 1024;
const MAX_RESERVE: u64 = 16 << 20;

/// A segment's files: the log first, then its two indexes.
const SEGMENT_EXTENSIONS: [&str; 3] = ["log", "index", "timeindex"];

/// How a segment is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The segment appends go to, mapped at `capacity` bytes.
    Active { capacity: u64, index_capacity: u64 },
    /// Read-only from now on; files trimmed.
    Sealed,
}

/// What an append writes: the position, size and header facts of each batch in a record
/// set, taken when the set was validated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchMeta {
    pub offset_in_set: usize,
    pub size: usize,
    pub last_offset_delta: i32,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
    pub transactional: bool,
}

/// A batch header found in a segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchPosition {
    pub position: u64,
    pub size: u64,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

/// The open files of a segment: the `.log` descriptor, its mapping and the two index
/// mappings. The handle cache closes them when the segment is idle.
#[derive(Debug)]
pub struct SegmentFiles {
    file: Arc<File>,
    map: MmapRegion,
    index: OffsetIndex,
    time_index: TimeIndex,
}

/// The cache that bounds how many segments hold their [`SegmentFiles`] open.
pub type SegmentHandles = HandleCache<SegmentFiles>;

/// A segment: the `.log` file and its indexes, opened on demand (see [`SegmentFiles`]),
/// and what is known of them without their files.
#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    index_path: PathBuf,
    time_index_path: PathBuf,
    /// Length of the log's mapping.
    capacity: u64,
    slot: Arc<Slot<SegmentFiles>>,
    index_state: Arc<IndexState>,
    time_index_state: Arc<IndexState>,
    /// Published bytes: readers look below this only.
    size: AtomicU64,
    /// Offset after the last published batch.
    next_offset: AtomicI64,
    /// Largest batch max timestamp published, and the offset of that batch (-1: none).
    max_timestamp: AtomicI64,
    offset_of_max_timestamp: AtomicI64,
    /// The first batch's max timestamp (Kafka's `getFirstBatchTimestamp`), or -1: kept so
    /// that the cleaner's look at every log opens no idle segment.
    first_batch_timestamp: AtomicI64,
    /// What `segment.ms` counts from: the wall-clock time of the first append since the
    /// segment was created or opened. Kafka counts from the first record's timestamp,
    /// which rolls a segment per append when producers (or a mirror) send old timestamps.
    rolling_base_ms: AtomicI64,
    /// Bytes backed by reserved blocks (writer only; atomic for `Sync`).
    reserved: AtomicU64,
    // Writer-only state, atomic only so that `Segment` is `Sync`.
    bytes_since_index: AtomicU64,
    synced_size: AtomicU64,
    /// The last load consumed every byte of the file as whole batches: no torn or zero
    /// tail was cut. A cleaned segment may then end below its successor's base offset.
    whole: AtomicBool,
    /// An aborted transaction was added to the `.txnindex` file since the last sync.
    txn_index_dirty: AtomicBool,
}

impl Segment {
    /// Creates a new, empty active segment.
    pub(crate) fn create(
        handles: &Arc<SegmentHandles>,
        dir: &Path,
        base_offset: i64,
        capacity: u64,
        index_capacity: u64,
        index_interval: u64,
    ) -> Result<Segment, StorageError> {
        let files = SEGMENT_EXTENSIONS.map(|ext| dir.join(segment_file_name(base_offset, ext)));
        // A leftover file of a crashed roll would hold stale bytes: start from nothing.
        let txn_index = txn_index::path(dir, base_offset);
        for p in files.iter().chain([&txn_index]).filter(|p| p.exists()) {
            std::fs::remove_file(p).map_err(|e| StorageError::io("remove stale", p, e))?;
        }
        let role = Role::Active { capacity, index_capacity };
        Self::open(handles, dir, &files[0], base_offset, role, true, index_interval).inspect_err(
            |_| {
                // A file left behind (the log, say, when the index could not be opened)
                // would be taken for a segment at the next start: remove them.
                let _ = Self::remove_files(dir, base_offset);
            },
        )
    }

    /// Removes the files of the segment at `base_offset` in `dir` that exist (a segment
    /// that is not open).
    pub(crate) fn remove_files(dir: &Path, base_offset: i64) -> Result<(), StorageError> {
        for ext in SEGMENT_EXTENSIONS.into_iter().chain([txn_index::EXTENSION]) {
            let p = dir.join(segment_file_name(base_offset, ext));
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(StorageError::io("remove segment", &p, e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Opens an existing segment. `clean` says its files were trimmed by a clean close
    /// (or by sealing) and its data is on disk; otherwise it is recovered as Kafka
    /// recovers a segment: every batch is checked from the first byte, the indexes are
    /// rebuilt from that walk, and the log is cut at the first invalid byte. (After a
    /// power loss any page of an unsynced file may be missing, not only its tail.)
    pub(crate) fn open(
        handles: &Arc<SegmentHandles>,
        dir: &Path,
        log_path: &Path,
        base_offset: i64,
        role: Role,
        clean: bool,
        index_interval: u64,
    ) -> Result<Segment, StorageError> {
        Self::open_with_suffix(handles, dir, log_path, base_offset, role, clean, index_interval, "")
    }

    /// [`Self::open`] with the index files named `<base>.index<suffix>`: the cleaner builds
    /// the indexes of a `.cleaned` log beside the live ones.
    #[expect(clippy::too_many_arguments, reason = "open's arguments and the suffix")]
    pub(crate) fn open_with_suffix(
        handles: &Arc<SegmentHandles>,
        dir: &Path,
        log_path: &Path,
        base_offset: i64,
        role: Role,
        clean: bool,
        index_interval: u64,
        index_suffix: &str,
    ) -> Result<Segment, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(matches!(role, Role::Active { .. }))
            .truncate(false)
            .open(log_path)
            .map_err(|e| StorageError::io("open segment", log_path, e))?;
        let file_len =
            file.metadata().map_err(|e| StorageError::io("stat segment", log_path, e))?.len();
        let (capacity, index_capacity) = match role {
            Role::Active { capacity, index_capacity } => (capacity.max(file_len), index_capacity),
            Role::Sealed => (file_len, 0),
        };
        if capacity > u32::MAX as u64 {
            return Err(StorageError::Corrupt {
                path: log_path.to_owned(),
                reason: format!("segment of {capacity} bytes exceeds the 4 GiB index range"),
            });
        }
        let map = MmapRegion::map(&file, capacity as usize)
            .map_err(|e| StorageError::io("map segment", log_path, e))?;
        let count = if clean { EntryCount::Trimmed } else { EntryCount::Scan };
        let writable = matches!(role, Role::Active { .. });
        let index_path = |ext: &str| {
            let mut name = segment_file_name(base_offset, ext);
            name.push_str(index_suffix);
            dir.join(name)
        };
        let (index_path, time_index_path) = (index_path("index"), index_path("timeindex"));
        let index = OffsetIndex::open(&index_path, index_capacity, count)?;
        let time_index = TimeIndex::open(&time_index_path, index_capacity, count)?;
        let files = SegmentFiles { file: Arc::new(file), map, index, time_index };
        let segment = Segment {
            base_offset,
            log_path: log_path.to_owned(),
            index_path,
            time_index_path,
            capacity,
            slot: handles.slot(),
            index_state: Arc::clone(files.index.state()),
            time_index_state: Arc::clone(files.time_index.state()),
            size: AtomicU64::new(0),
            next_offset: AtomicI64::new(base_offset),
            max_timestamp: AtomicI64::new(-1),
            offset_of_max_timestamp: AtomicI64::new(-1),
            first_batch_timestamp: AtomicI64::new(-1),
            rolling_base_ms: AtomicI64::new(-1),
            reserved: AtomicU64::new(0),
            bytes_since_index: AtomicU64::new(0),
            synced_size: AtomicU64::new(0),
            whole: AtomicBool::new(true),
            txn_index_dirty: AtomicBool::new(false),
        };
        // The load reads the batches and then the page where the zero tail of a crashed
        // active segment starts: readahead there would read a hole's worth of zeros.
        files.map.advise_random();
        segment.load(&files, file_len as usize, clean, writable, index_interval)?;
        if !writable {
            // A sealed file ends at its data: readahead helps the cleaner's pass over it.
            files.map.advise_normal();
        }
        segment.slot.install(Arc::new(files));
        Ok(segment)
    }

    /// The segment's open files, opening them again if the handle cache closed them.
    ///
    /// # Errors
    /// [`StorageError::SegmentRetired`] once the segment's files were deleted or replaced
    /// (a reader holding an old segment list reads the new one), and open or map errors.
    pub(crate) fn files(&self) -> Result<Arc<SegmentFiles>, StorageError> {
        self.slot.get(|| self.reopen()).map_err(|e| match e {
            SlotError::Retired => StorageError::SegmentRetired { path: self.log_path.clone() },
            SlotError::Open(e) => e,
        })
    }

    /// A reader of the published batches, holding the files open while it lives.
    pub(crate) fn reader(&self) -> Result<SegmentReader<'_>, StorageError> {
        Ok(SegmentReader { segment: self, files: self.files()? })
    }

    fn reopen(&self) -> Result<SegmentFiles, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.log_path)
            .map_err(|e| StorageError::io("reopen segment", &self.log_path, e))?;
        // A trimmed log is shorter than the mapping of its active days; only published
        // bytes, all in the file, are read, and a trimmed segment is never appended to.
        let map = MmapRegion::map(&file, self.capacity as usize)
            .map_err(|e| StorageError::io("map segment", &self.log_path, e))?;
        // An active segment's file is preallocated past its data: a fault near the data's
        // end (a batch header read for a fetch) would read ahead a hole's worth of zero
        // pages, which after every reopen was half the broker's CPU in a fetch of 100,000
        // partitions. Its data is sent by sendfile or pread, whose readahead is the file's.
        let file_len = file.metadata().map_or(0, |m| m.len());
        if file_len > self.size() {
            map.advise_random();
        }
        Ok(SegmentFiles {
            file: Arc::new(file),
            map,
            index: OffsetIndex::reopen(&self.index_path, &self.index_state)?,
            time_index: TimeIndex::reopen(&self.time_index_path, &self.time_index_state)?,
        })
    }

    /// Closes the files for good, before they are deleted or replaced: the segment never
    /// opens them again (readers that hold them keep reading the old files).
    pub(crate) fn retire(&self) {
        self.slot.retire();
    }

    fn note_timestamp(&self, max_timestamp: i64, base_offset: i64) {
        if max_timestamp > self.max_timestamp.load(Ordering::Relaxed) {
            self.max_timestamp.store(max_timestamp, Ordering::Relaxed);
            self.offset_of_max_timestamp.store(base_offset, Ordering::Relaxed);
        }
    }

    /// A time index entry for the largest timestamp so far, if it grew since the last one.
    fn pending_time_entry(&self, f: &SegmentFiles) -> Option<TimeEntry> {
        let ts = self.max_timestamp.load(Ordering::Relaxed);
        let last = f.time_index.last();
        let entry = TimeEntry {
            timestamp: ts,
            relative_offset: (self.offset_of_max_timestamp.load(Ordering::Relaxed)
                - self.base_offset) as u32,
        };
        match last {
            _ if ts < 0 => None,
            Some(l) if !entry.follows_entry(&l) => None,
            _ => Some(entry),
        }
    }

    /// Base offset: the offset of its first record and its file name.
    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }
    /// Published size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }
    /// Offset after the last published batch.
    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset.load(Ordering::Acquire)
    }
    /// Largest timestamp of any batch in the segment, or -1.
    pub(crate) fn max_timestamp(&self) -> i64 {
        self.max_timestamp.load(Ordering::Relaxed)
    }
    /// The max timestamp of the first batch (Kafka's `getFirstBatchTimestamp`), or -1.
    pub(crate) fn first_batch_timestamp(&self) -> i64 {
        self.first_batch_timestamp.load(Ordering::Relaxed)
    }
    /// Start of `segment.ms`, or -1 when the segment is empty.
    pub(crate) fn rolling_base_ms(&self) -> i64 {
        self.rolling_base_ms.load(Ordering::Relaxed)
    }
    /// Capacity of the mapping.
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }
    /// Bytes of the offset index's entries (Kafka's `offsetIndex.sizeInBytes` of a sealed
    /// segment).
    pub(crate) fn offset_index_bytes(&self) -> u64 {
        (self.index_state.len() * OffsetEntry::SIZE) as u64
    }
    /// Bytes of the time index's entries.
    pub(crate) fn time_index_bytes(&self) -> u64 {
        (self.time_index_state.len() * TimeEntry::SIZE) as u64
    }
    /// Whether either index lacks room for `entries` more entries.
    pub(crate) fn index_lacks_room(&self, entries: usize) -> bool {
        self.index_state.lacks_room_for(entries, OffsetEntry::SIZE)
            || self.time_index_state.lacks_room_for(entries, TimeEntry::SIZE)
    }

    /// Path of the segment's aborted-transaction index.
    pub(crate) fn txn_index_path(&self) -> PathBuf {
        self.log_path.with_extension(txn_index::EXTENSION)
    }

    /// Adds an aborted transaction whose marker is in this segment to its `.txnindex`;
    /// synced with the segment's next sync.
    pub(crate) fn append_aborted(&self, entry: &AbortedTxn) -> Result<(), StorageError> {
        txn_index::append(&self.txn_index_path(), entry)?;
        self.txn_index_dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Syncs the `.txnindex` if an entry was added since the last sync.
    pub(crate) fn sync_txn_index(&self) -> Result<(), StorageError> {
        if self.txn_index_dirty.swap(false, Ordering::AcqRel) {
            txn_index::sync(&self.txn_index_path())
                .inspect_err(|_| self.txn_index_dirty.store(true, Ordering::Release))?;
        }
        Ok(())
    }

    /// Syncs published bytes not yet synced, and the `.txnindex` if it changed; a retired
    /// segment is not synced.
    pub(crate) fn sync(&self, io: &dyn FileIo) -> Result<(), StorageError> {
        self.sync_txn_index()?;
        let size = self.size();
        let synced = self.synced_size.load(Ordering::Relaxed);
        if size > synced {
            // Through a mapping opened again if need be: msync writes the file's dirty
            // pages in the range whichever mapping or write dirtied them.
            let f = match self.files() {
                Ok(f) => f,
                // Deleted, or superseded: a roll's sealed copy carries what is unsynced
                // and a cleaned replacement was synced when made. Callers that promise
                // durability sync the current segment list again (see `is_retired`).
                Err(StorageError::SegmentRetired { .. }) => return Ok(()),
                Err(e) => return Err(e),
            };
            io.sync(&f.map, synced as usize, (size - synced) as usize)
                .map_err(|e| StorageError::io("sync segment", &self.log_path, e))?;
            self.synced_size.fetch_max(size, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether the segment was retired: its files deleted, or now another segment's.
    pub(crate) fn is_retired(&self) -> bool {
        self.slot.is_retired()
    }

    /// Bytes known to be on disk.
    pub(crate) fn synced_size(&self) -> u64 {
        self.synced_size.load(Ordering::Relaxed)
    }

    /// Carries what was known to be on disk over to a reopened copy of this segment.
    pub(crate) fn set_synced_size(&self, size: u64) {
        self.synced_size.store(size, Ordering::Relaxed);
    }

    /// Prepares the segment to be read-only: a final time index entry, then the files
    /// trimmed to their data. The caller has synced it and reopens it as `Role::Sealed`.
    pub(crate) fn seal(&self, io: &dyn FileIo) -> Result<(), StorageError> {
        self.finish_time_index(io)?;
        self.trim()
    }

    /// Writes the time index entry sealing owes. The segment stays appendable whether
    /// this succeeds or fails.
    pub(crate) fn finish_time_index(&self, io: &dyn FileIo) -> Result<(), StorageError> {
        let f = self.files()?;
        match self.pending_time_entry(&f) {
            Some(t) if !f.time_index.is_full() => f.time_index.append(t, io),
            _ => Ok(()),
        }
    }

    /// Trims the files to their data. After this, even when it fails part way, nothing
    /// may be appended: the index mappings reach past the files' ends.
    pub(crate) fn trim(&self) -> Result<(), StorageError> {
        let f = self.files()?;
        f.index.trim()?;
        f.time_index.trim()?;
        // ListOffsets v0 dates a segment by its file's modification time (Kafka's
        // `LogSegment.lastModified`): cutting the reserved tail adds no data, so the time
        // of the last append stays. Best effort: a time that cannot be kept only moves a
        // v0 answer by the time between the last append and the roll.
        let metadata = f.file.metadata().ok();
        if metadata.as_ref().is_some_and(|m| m.len() == self.size()) {
            // Nothing reserved past the data (opened and not appended to): a cut to
            // the same length would still write the inode.
            return Ok(());
        }
        let modified = metadata.and_then(|m| m.modified().ok());
        f.file
            .set_len(self.size())
            .map_err(|e| StorageError::io("trim segment", &self.log_path, e))?;
        if let Some(t) = modified {
            let _ = f.file.set_modified(t);
        }
        Ok(())
    }

    /// Path of the `.log` file.
    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Retires the segment and removes its files. Readers that hold its open files keep
    /// reading: the descriptor and the mappings outlive the directory entries.
    pub(crate) fn delete_files(&self) -> Result<(), StorageError> {
        self.retire();
        let txn_index = self.txn_index_path();
        for path in [&self.log_path, &self.index_path, &self.time_index_path, &txn_index] {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("delete segment", path, e)),
            }
        }
        Ok(())
    }

    /// Whether the last load found only whole batches up to the end of the file.
    pub(crate) fn is_whole(&self) -> bool {
        self.whole.load(Ordering::Relaxed)
    }
}

impl TimeEntry {
    fn follows_entry(&self, prev: &TimeEntry) -> bool {
        self.follows(prev)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    pub(crate) use crate::storage::testing::batch;
}
