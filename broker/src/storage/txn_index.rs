//! Transactions in a partition's log: the transaction markers the coordinator appends,
//! and the aborted-transaction index that read_committed fetches are answered from.
//!
//! Each aborted transaction is one entry in the `.txnindex` file of the segment its ABORT
//! marker went to, in Kafka's format, so an operator's tools read it:
//!
//! ```text
//! <base>.txnindex   34-byte entries, big-endian:
//!                   version i16 (0) | producer id i64 | first offset i64 |
//!                   last offset i64 (the marker's) | last stable offset i64 (after the abort)
//! ```
//!
//! The entries of the whole partition are also held in memory ([`AbortedTxns`]), in marker
//! order: an abort is rare next to the records it covers, so a partition's list stays
//! small, and a fetch finds what overlaps its range with one binary search. The files are
//! the durable copy: written (unsynced, like the log) at each abort, synced with their
//! segment, removed with it, joined into one when the cleaner merges their segments, and
//! after a crash rebuilt from the replayed log tail.

use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::io::FileIo;
use super::{durable, segment_file_name, StorageError};

/// Size of one `.txnindex` entry.
const ENTRY_BYTES: usize = 34;
/// The entry format's version, as Kafka writes it.
const VERSION: i16 = 0;
/// Extension of a segment's aborted-transaction index.
pub(crate) const EXTENSION: &str = "txnindex";

/// What the transaction coordinator asks a partition to write when a transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// The producer whose transaction ends.
    pub producer_id: i64,
    /// Its epoch; a marker fences batches of older epochs, as a newer batch would.
    pub producer_epoch: i16,
    /// The coordinator's epoch, written into the marker's value.
    pub coordinator_epoch: i32,
    /// COMMIT when true, ABORT when false.
    pub commit: bool,
}

/// One aborted transaction of a partition (Kafka's `AbortedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer that aborted.
    pub producer_id: i64,
    /// Offset of the transaction's first batch in this partition.
    pub first_offset: i64,
    /// Offset of its ABORT marker.
    pub last_offset: i64,
    /// The last stable offset once the marker was written: every transaction that ends
    /// later began at or past it, which bounds a fetch's scan.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    fn encode(&self) -> [u8; ENTRY_BYTES] {
        let mut out = [0u8; ENTRY_BYTES];
        out[0..2].copy_from_slice(&VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    fn decode(b: &[u8; ENTRY_BYTES]) -> Option<AbortedTxn> {
        let i64_at =
            |at: usize| i64::from_be_bytes(b[at..at + 8].try_into().expect("invariant: 8 bytes"));
        let entry = AbortedTxn {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        };
        let sane = i16::from_be_bytes([b[0], b[1]]) == VERSION
            && entry.first_offset >= 0
            && entry.first_offset <= entry.last_offset;
        sane.then_some(entry)
    }
}

/// Path of the aborted-transaction index of the segment at `base_offset`.
pub(crate) fn path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(segment_file_name(base_offset, EXTENSION))
}

/// The entries of one `.txnindex` file, up to the first torn or unreadable entry (a crash
/// can cut the unsynced tail; the log replay rebuilds what follows). A missing file has
/// none.
pub(crate) fn read(path: &Path) -> Result<Vec<AbortedTxn>, StorageError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StorageError::io("read transaction index", path, e)),
    };
    Ok(bytes
        .chunks_exact(ENTRY_BYTES)
        .map_while(|c| AbortedTxn::decode(c.try_into().expect("invariant: exact chunks")))
        .collect())
}

/// Appends one entry; unsynced, as the log's bytes are until the flush policy syncs them.
pub(crate) fn append(path: &Path, entry: &AbortedTxn) -> Result<(), StorageError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(&entry.encode()))
        .map_err(|e| StorageError::io("append to transaction index", path, e))
}

/// Syncs a segment's `.txnindex` file, if it has one.
pub(crate) fn sync(path: &Path) -> Result<(), StorageError> {
    match fs::File::open(path) {
        Ok(f) => f.sync_data().map_err(|e| StorageError::io("sync transaction index", path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io("open transaction index", path, e)),
    }
}

/// Replaces a `.txnindex` file with `entries` durably (recovery), or removes it when there
/// are none.
pub(crate) fn rewrite(
    io: &dyn FileIo,
    path: &Path,
    entries: &[AbortedTxn],
) -> Result<(), StorageError> {
    if entries.is_empty() {
        return durable::remove(io, path);
    }
    let bytes: Vec<u8> = entries.iter().flat_map(|e| e.encode()).collect();
    durable::write(io, path, &bytes)
}

/// The aborted transactions of a partition, in the order of their markers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct AbortedTxns {
    entries: VecDeque<AbortedTxn>,
}

impl AbortedTxns {
    /// From entries in marker order.
    pub(crate) fn new(entries: Vec<AbortedTxn>) -> Self {
        AbortedTxns { entries: entries.into() }
    }

    /// Adds the newest abort.
    pub(crate) fn push(&mut self, entry: AbortedTxn) {
        self.entries.push_back(entry);
    }

    /// The aborted transactions that overlap `[fetch_offset, upper_offset)`: those that
    /// end at or past the fetch offset and begin below the upper bound (Kafka's
    /// `collectAbortedTxns`). The scan stops at the first entry whose last stable offset
    /// reaches the upper bound: every later transaction began at or past it.
    pub(crate) fn overlapping(&self, fetch_offset: i64, upper_offset: i64) -> Vec<AbortedTxn> {
        let from = self.entries.partition_point(|e| e.last_offset < fetch_offset);
        let mut out = Vec::new();
        for e in self.entries.range(from..) {
            if e.first_offset < upper_offset {
                out.push(*e);
            }
            if e.last_stable_offset >= upper_offset {
                break;
            }
        }
        out
    }

    /// Forgets the entries whose markers are below `offset` (their segments are gone).
    pub(crate) fn remove_below(&mut self, offset: i64) {
        while self.entries.front().is_some_and(|e| e.last_offset < offset) {
            self.entries.pop_front();
        }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::io::RealIo;

    fn txn(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        }
    }

    #[test]
    fn entries_round_trip_through_kafkas_34_byte_format_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), 100);
        assert!(read(&p).unwrap().is_empty());
        let (a, b) = (txn(7, 100, 110, 105), txn(9, 105, 120, 121));
        append(&p, &a).unwrap();
        append(&p, &b).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().len(), 68);
        assert_eq!(read(&p).unwrap(), vec![a, b]);
        // Kafka's layout: version 0, then the four longs.
        let bytes = fs::read(&p).unwrap();
        assert_eq!(&bytes[..10], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 7]);
        let mut torn = bytes.clone();
        torn.truncate(50);
        fs::write(&p, &torn).unwrap();
        assert_eq!(read(&p).unwrap(), vec![a]);
        rewrite(&RealIo, &p, &[b]).unwrap();
        assert_eq!(read(&p).unwrap(), vec![b]);
        rewrite(&RealIo, &p, &[]).unwrap();
        assert!(!p.exists());
    }

    #[test]
    fn a_fetch_gets_exactly_the_aborts_overlapping_its_range() {
        // Producer 1 aborted [0, 10]; producer 2 [5, 30] while producer 3 ran from 20;
        // producer 3 aborted [20, 40]; producer 4 [50, 60].
        let list = AbortedTxns::new(vec![
            txn(1, 0, 10, 5),
            txn(2, 5, 30, 20),
            txn(3, 20, 40, 41),
            txn(4, 50, 60, 61),
        ]);
        let pids = |f, u| list.overlapping(f, u).iter().map(|e| e.producer_id).collect::<Vec<_>>();
        assert_eq!(pids(0, 5), vec![1], "producer 2 begins at the upper bound");
        assert_eq!(pids(0, 6), vec![1, 2]);
        assert_eq!(pids(11, 25), vec![2, 3]);
        assert_eq!(pids(31, 45), vec![3]);
        assert_eq!(pids(41, 50), Vec::<i64>::new());
        assert_eq!(pids(0, 100), vec![1, 2, 3, 4]);
        assert_eq!(pids(61, 100), Vec::<i64>::new());
    }

    #[test]
    fn entries_below_the_first_segment_go() {
        let mut list = AbortedTxns::new(vec![txn(1, 0, 10, 11), txn(2, 12, 20, 21)]);
        list.remove_below(11);
        assert_eq!(list.len(), 1);
        assert_eq!(list.overlapping(0, 100)[0].producer_id, 2);
    }
}
