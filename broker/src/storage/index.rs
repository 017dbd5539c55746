//! Sparse, memory-mapped indexes of one segment: `.index` (offset → file position) and
//! `.timeindex` (timestamp → offset).
//!
//! ```text
//! .index      entry = relative offset u32 BE · file position u32 BE         (8 bytes)
//! .timeindex  entry = timestamp i64 BE · relative offset u32 BE             (12 bytes)
//! ```
//!
//! Offsets are relative to the segment's base offset. In both files the entries are
//! strictly increasing in every field, which is what makes binary search valid and what
//! recovery uses to tell written entries from the zero-filled preallocated tail.
//!
//! The single writer stores entry `n` and then publishes `n + 1` (release); readers load
//! the count (acquire) and look only at entries below it.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use super::io::FileIo;
use super::sys::MmapRegion;
use super::StorageError;

/// Disk blocks are reserved for index files this many bytes (one block) at a time, about
/// once per 2 MiB of log at the default `index.interval.bytes`. A larger chunk left
/// reserved blocks past the entries that the trim at sealing or close then freed: on a
/// file system mounted with `discard` each free is a synchronous discard, about 75 µs
/// against 3 µs for a trim that frees nothing (two of the three trims of every partition
/// at a broker's shutdown).
const RESERVE_CHUNK: u64 = 4096;

/// One fixed-size index entry.
pub(crate) trait IndexEntry: Copy + std::fmt::Debug {
    /// Encoded size in bytes.
    const SIZE: usize;
    /// Decodes an entry from exactly `SIZE` bytes.
    fn decode(bytes: &[u8]) -> Self;
    /// Encodes into exactly `SIZE` bytes.
    fn encode(&self, out: &mut [u8]);
    /// Whether `self` may follow `prev` (every field strictly increasing).
    fn follows(&self, prev: &Self) -> bool;
}

/// `.index` entry: the batch starting at `position` has base offset `base + relative_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = 8;
    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            position: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
    fn encode(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        out[4..8].copy_from_slice(&self.position.to_be_bytes());
    }
    fn follows(&self, prev: &Self) -> bool {
        self.relative_offset > prev.relative_offset && self.position > prev.position
    }
}

/// `.timeindex` entry: no record before `base + relative_offset`'s batch (inclusive) has a
/// timestamp above `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = 12;
    fn decode(b: &[u8]) -> Self {
        TimeEntry {
            timestamp: i64::from_be_bytes(b[..8].try_into().expect("invariant: 12-byte entry")),
            relative_offset: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn follows(&self, prev: &Self) -> bool {
        self.timestamp > prev.timestamp && self.relative_offset > prev.relative_offset
    }
}

/// A sparse index file, mapped whole.
///
/// No index keeps its descriptor: it is closed once the file is mapped (the mapping
/// outlives it), and the rare operations that need one (reserving another 64 KiB of
/// blocks, trimming at seal) open the file by path. A segment so holds one descriptor,
/// its log's. The counts live in an [`IndexState`] that outlives the mapping, so that a
/// segment whose files the handle cache closed maps its indexes again as they were.
#[derive(Debug)]
pub(crate) struct SparseIndex<E: IndexEntry> {
    path: PathBuf,
    map: MmapRegion,
    state: Arc<IndexState>,
    _entry: std::marker::PhantomData<E>,
}

/// What an index is beyond its mapping: its published entries and reserved bytes.
#[derive(Debug)]
pub(crate) struct IndexState {
    /// Published entries.
    entries: AtomicUsize,
    /// Bytes backed by reserved blocks (writer only; atomic for `Sync`).
    reserved: AtomicU64,
    /// Length of the mapping, fixed when the index was first opened.
    capacity: usize,
}

impl IndexState {
    /// Published entry count.
    pub(crate) fn len(&self) -> usize {
        self.entries.load(Ordering::Acquire)
    }

    /// Whether `more` entries of `size` bytes would not fit.
    pub(crate) fn lacks_room_for(&self, more: usize, size: usize) -> bool {
        (self.len() + more) * size > self.capacity
    }
}

/// The `.index` file of a segment.
pub(crate) type OffsetIndex = SparseIndex<OffsetEntry>;
/// The `.timeindex` file of a segment.
pub(crate) type TimeIndex = SparseIndex<TimeEntry>;

/// How to count the entries of an index file when opening it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EntryCount {
    /// The file was trimmed on a clean close: every entry in it is valid.
    Trimmed,
    /// After a crash: count the strictly increasing prefix, stop at the zero tail.
    Scan,
}

impl<E: IndexEntry> SparseIndex<E> {
    /// Opens (or creates) the index at `path`, mapped to hold `capacity_bytes` of entries
    /// (a multiple of the entry size; an existing larger file keeps its length). The file
    /// grows to match with the first reservation.
    pub(crate) fn open(
        path: &Path,
        capacity_bytes: u64,
        count: EntryCount,
    ) -> Result<Self, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| StorageError::io("open index", path, e))?;
        let on_disk = file.metadata().map_err(|e| StorageError::io("stat index", path, e))?.len();
        let on_disk = on_disk - on_disk % E::SIZE as u64;
        let capacity = (capacity_bytes - capacity_bytes % E::SIZE as u64).max(on_disk);
        let map = MmapRegion::map(&file, capacity as usize)
            .map_err(|e| StorageError::io("map index", path, e))?;
        map.advise_random();
        let index = SparseIndex {
            path: path.to_owned(),
            map,
            state: Arc::new(IndexState {
                entries: AtomicUsize::new(0),
                reserved: AtomicU64::new(0), // set once the entries are counted
                capacity: capacity as usize,
            }),
            _entry: std::marker::PhantomData,
        };
        let on_disk_entries = on_disk as usize / E::SIZE;
        let n = match count {
            // A crash between creating a segment's successor and trimming it leaves a
            // sealed index with its zero tail: the last two entries then do not ascend.
            EntryCount::Trimmed if on_disk_entries < 2 || index.ascends_at(on_disk_entries - 1) => {
                on_disk_entries
            }
            _ => index.increasing_prefix(on_disk_entries),
        };
        index.state.entries.store(n, Ordering::Release);
        // Only the entries are known to have blocks: after a crash the file may reach past
        // them (as reserved, or an older version's sparse length), and a store into a hole
        // on a full disk is SIGBUS.
        index.state.reserved.store((n * E::SIZE) as u64, Ordering::Relaxed);
        Ok(index)
    }

    /// Maps the index at `path` again, as `state` describes it (its entries were counted
    /// when it was first opened; the file has not been replaced since).
    pub(crate) fn reopen(path: &Path, state: &Arc<IndexState>) -> Result<Self, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| StorageError::io("reopen index", path, e))?;
        // A trimmed index is shorter than its mapping: only entries, all in the file, are
        // ever read, and nothing is appended to a trimmed index.
        let map = MmapRegion::map(&file, state.capacity)
            .map_err(|e| StorageError::io("map index", path, e))?;
        map.advise_random();
        Ok(SparseIndex {
            path: path.to_owned(),
            map,
            state: Arc::clone(state),
            _entry: std::marker::PhantomData,
        })
    }

    /// The counts, shared with every later mapping of this index.
    pub(crate) fn state(&self) -> &Arc<IndexState> {
        &self.state
    }

    /// Whether entry `i` follows entry `i - 1`.
    fn ascends_at(&self, i: usize) -> bool {
        self.read(i).follows(&self.read(i - 1))
    }

    fn increasing_prefix(&self, max: usize) -> usize {
        let mut n = 0;
        let mut prev: Option<E> = None;
        while n < max {
            let e = self.read(n);
            if let Some(p) = prev {
                if !e.follows(&p) {
                    break;
                }
            }
            prev = Some(e);
            n += 1;
        }
        n
    }

    fn read(&self, i: usize) -> E {
        E::decode(self.map.slice(i * E::SIZE, E::SIZE))
    }

    /// Published entry count.
    pub(crate) fn len(&self) -> usize {
        self.state.len()
    }

    /// Whether no more entries fit.
    pub(crate) fn is_full(&self) -> bool {
        self.lacks_room_for(1)
    }

    /// The last published entry.
    pub(crate) fn last(&self) -> Option<E> {
        self.len().checked_sub(1).map(|i| self.read(i))
    }

    /// The last entry whose key is at most `target` (keys ascend with the index).
    pub(crate) fn floor<K: Ord>(&self, target: K, key: impl Fn(&E) -> K) -> Option<E> {
        let n = self.len();
        // Invariant of the loop: entries below `lo` have key <= target, from `hi` on > target.
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if key(&self.read(mid)) <= target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1).map(|i| self.read(i))
    }

    /// Appends an entry (the single writer only). Blocks are reserved first, so a full
    /// disk fails here without touching the mapping.
    pub(crate) fn append(&self, entry: E, io: &dyn FileIo) -> Result<(), StorageError> {
        let n = self.len();
        let end = ((n + 1) * E::SIZE) as u64;
        if end > self.map.len() as u64 {
            return Err(StorageError::IndexFull { path: self.path.clone() });
        }
        self.reserve(end, io)?;
        let mut buf = [0u8; 16];
        entry.encode(&mut buf[..E::SIZE]);
        self.map.write_at(n * E::SIZE, &buf[..E::SIZE]);
        self.state.entries.store(n + 1, Ordering::Release);
        Ok(())
    }

    /// Makes sure `end` bytes are backed by blocks.
    pub(crate) fn reserve(&self, end: u64, io: &dyn FileIo) -> Result<(), StorageError> {
        let reserved = self.state.reserved.load(Ordering::Relaxed);
        if end <= reserved {
            return Ok(());
        }
        let new_end = (end.div_ceil(RESERVE_CHUNK) * RESERVE_CHUNK).min(self.map.len() as u64);
        if new_end <= reserved {
            // Already backed up to the end of the mapping; entries past it never go in.
            return Ok(());
        }
        self.with_file("reserve index blocks", |f| io.reserve(f, reserved, new_end - reserved))?;
        self.state.reserved.store(new_end, Ordering::Relaxed);
        Ok(())
    }

    /// Forgets entries from `n` on (recovery, before the segment is readable). The bytes
    /// are zeroed so that a later crash cannot resurrect them.
    pub(crate) fn truncate(&self, n: usize) {
        let len = self.len();
        if n < len {
            self.map.write_at(n * E::SIZE, &vec![0u8; (len - n) * E::SIZE]);
            self.state.entries.store(n, Ordering::Release);
        }
    }

    /// Cuts the file to its entries (sealing or clean close).
    pub(crate) fn trim(&self) -> Result<(), StorageError> {
        let len = (self.len() * E::SIZE) as u64;
        self.with_file("trim index", |f| {
            // Nothing reserved past the entries: a cut to the same length would still
            // write the inode.
            if f.metadata()?.len() != len {
                f.set_len(len)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Runs `op` on a descriptor opened for it (the file is never renamed while its
    /// segment is live).
    fn with_file<R>(
        &self,
        what: &'static str,
        op: impl FnOnce(&File) -> std::io::Result<R>,
    ) -> Result<R, StorageError> {
        let file = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(|e| StorageError::io("reopen index", &self.path, e))?;
        op(&file).map_err(|e| StorageError::io(what, &self.path, e))
    }

    /// Whether `more` entries would not fit.
    pub(crate) fn lacks_room_for(&self, more: usize) -> bool {
        self.state.lacks_room_for(more, E::SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::io::RealIo;

    fn offset_index(dir: &Path, entries: &[(u32, u32)]) -> OffsetIndex {
        let idx = OffsetIndex::open(&dir.join("i.index"), 8 * 100, EntryCount::Scan).unwrap();
        for &(r, p) in entries {
            idx.append(OffsetEntry { relative_offset: r, position: p }, &RealIo).unwrap();
        }
        idx
    }

    fn floor_pos(idx: &OffsetIndex, rel: u32) -> Option<u32> {
        idx.floor(rel, |e| e.relative_offset).map(|e| e.position)
    }

    #[test]
    fn floor_on_empty_index_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let idx = offset_index(dir.path(), &[]);
        assert_eq!(floor_pos(&idx, 0), None);
        assert_eq!(floor_pos(&idx, u32::MAX), None);
    }

    #[test]
    fn floor_first_last_and_between_entries() {
        let dir = tempfile::tempdir().unwrap();
        let idx = offset_index(dir.path(), &[(10, 4096), (20, 8192), (30, 12288)]);
        assert_eq!(floor_pos(&idx, 9), None, "before the first entry");
        assert_eq!(floor_pos(&idx, 10), Some(4096), "exactly the first");
        assert_eq!(floor_pos(&idx, 15), Some(4096), "between first and second");
        assert_eq!(floor_pos(&idx, 20), Some(8192));
        assert_eq!(floor_pos(&idx, 29), Some(8192));
        assert_eq!(floor_pos(&idx, 30), Some(12288), "exactly the last");
        assert_eq!(floor_pos(&idx, 1_000_000), Some(12288), "after the last");
    }

    #[test]
    fn full_index_refuses_an_entry() {
        let dir = tempfile::tempdir().unwrap();
        let idx = OffsetIndex::open(&dir.path().join("f.index"), 16, EntryCount::Scan).unwrap();
        idx.append(OffsetEntry { relative_offset: 1, position: 1 }, &RealIo).unwrap();
        assert!(!idx.is_full());
        idx.append(OffsetEntry { relative_offset: 2, position: 2 }, &RealIo).unwrap();
        assert!(idx.is_full());
        assert!(matches!(
            idx.append(OffsetEntry { relative_offset: 3, position: 3 }, &RealIo),
            Err(StorageError::IndexFull { .. })
        ));
    }

    #[test]
    fn after_a_crash_only_the_entries_count_as_reserved() {
        use crate::storage::io::FaultyIo;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.index");
        drop(offset_index(dir.path(), &[(1, 100), (5, 5000)]));
        // After a crash only the entries count as reserved, whatever the file's length (an
        // older version left it sparse): with the disk full, an entry past them must be
        // refused, not stored into what may be a hole (SIGBUS).
        let io = FaultyIo::new();
        io.fail_reserves_from(1);
        let idx = OffsetIndex::open(&path, 800, EntryCount::Scan).unwrap();
        assert_eq!(idx.len(), 2);
        let entry = OffsetEntry { relative_offset: 9, position: 9000 };
        assert!(idx.append(entry, &io).is_err(), "the entry needs a reservation");
        assert_eq!(idx.len(), 2);
        io.heal();
        idx.append(entry, &io).unwrap();
        assert_eq!(io.reserves(), 2);
    }

    #[test]
    fn a_sealed_index_left_untrimmed_by_a_crash_is_counted_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.index");
        drop(offset_index(dir.path(), &[(1, 100), (5, 5000), (9, 9000)]));
        let idx = OffsetIndex::open(&path, 0, EntryCount::Trimmed).unwrap();
        assert_eq!(idx.len(), 3, "the zero tail is not entries");
        assert_eq!(idx.floor(7, |e| e.relative_offset).map(|e| e.position), Some(5000));
    }

    #[test]
    fn reopen_after_trim_and_after_crash_counts_the_same_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.index");
        // Crash: no trim, the zero-filled tail stays in the file.
        drop(offset_index(dir.path(), &[(1, 100), (5, 5000), (9, 9000)]));
        let idx = OffsetIndex::open(&path, 800, EntryCount::Scan).unwrap();
        assert_eq!(idx.len(), 3);
        idx.trim().unwrap();
        drop(idx);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 24);
        let idx = OffsetIndex::open(&path, 800, EntryCount::Trimmed).unwrap();
        assert_eq!(idx.len(), 3);
        assert_eq!(idx.last(), Some(OffsetEntry { relative_offset: 9, position: 9000 }));
        idx.truncate(1);
        assert_eq!(idx.len(), 1);
        assert_eq!(idx.last(), Some(OffsetEntry { relative_offset: 1, position: 100 }));
    }

    #[test]
    fn a_reopened_mapping_shares_the_entries_of_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = offset_index(dir.path(), &[(1, 100)]);
        let again = OffsetIndex::reopen(&dir.path().join("i.index"), first.state()).unwrap();
        first.append(OffsetEntry { relative_offset: 5, position: 500 }, &RealIo).unwrap();
        drop(first);
        assert_eq!(again.len(), 2, "the count is shared, not copied");
        assert_eq!(again.last(), Some(OffsetEntry { relative_offset: 5, position: 500 }));
        again.append(OffsetEntry { relative_offset: 9, position: 900 }, &RealIo).unwrap();
        assert_eq!(again.floor(6, |e| e.relative_offset).map(|e| e.position), Some(500));
    }

    #[test]
    fn time_index_floor_by_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        let idx = TimeIndex::open(&dir.path().join("t.timeindex"), 1200, EntryCount::Scan).unwrap();
        for (ts, rel) in [(1000i64, 0u32), (2000, 5), (3000, 9)] {
            idx.append(TimeEntry { timestamp: ts, relative_offset: rel }, &RealIo).unwrap();
        }
        assert_eq!(idx.floor(999, |e| e.timestamp), None);
        assert_eq!(idx.floor(2500, |e| e.timestamp).map(|e| e.relative_offset), Some(5));
        assert_eq!(idx.floor(i64::MAX, |e| e.timestamp).map(|e| e.relative_offset), Some(9));
    }
}
