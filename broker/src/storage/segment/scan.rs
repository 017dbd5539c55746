//! Scanning a segment's bytes for whole, valid batches: what recovery runs after a crash
//! and what opening a segment runs over the few kilobytes after its last index entry
//! (which segments a crash leaves to recover is `partition_log::recovery`'s).
//!
//! A scan stops at the first byte that does not start a valid batch: a zero length (the
//! preallocated, never written tail), a torn batch that runs past the data, a wrong magic,
//! a CRC mismatch, or a base offset that goes backwards. Everything before that byte is
//! the log; everything from it on is cut.

use sluice_protocol::record::batch;
use sluice_protocol::record::{BatchError, RecordBatch};

/// One valid batch found by a scan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScannedBatch {
    pub position: usize,
    pub size: usize,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

/// Why a scan stopped before the end of the bytes it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// Zeros: the preallocated tail that no append reached.
    ZeroTail,
    /// Bytes that do not form a valid batch.
    Invalid(BatchError),
    /// A valid batch whose base offset is below the next expected offset (stale bytes).
    OffsetRegression { found: i64, expected: i64 },
}

/// Where a scan ended.
#[derive(Debug, Clone)]
pub(crate) struct ScanEnd {
    /// End of the last valid batch.
    pub valid_end: usize,
    /// Offset after the last valid batch.
    pub next_offset: i64,
    /// `None` when the scan consumed every byte.
    pub stopped: Option<StopReason>,
}

/// Walks the batches in `bytes[start..]`, verifying the CRC-32C of each, and calls
/// `on_batch` for each valid one.
pub(crate) fn scan(
    bytes: &[u8],
    start: usize,
    expected_offset: i64,
    mut on_batch: impl FnMut(&ScannedBatch),
) -> ScanEnd {
    let mut pos = start;
    let mut next_offset = expected_offset;
    let stopped = loop {
        let rest = &bytes[pos..];
        if rest.is_empty() {
            break None;
        }
        if rest.len() >= 12 && rest[8..12] == [0, 0, 0, 0] {
            break Some(StopReason::ZeroTail);
        }
        let batch = match RecordBatch::parse_verified(rest) {
            Ok(b) => b,
            // A short tail of zeros (under 12 bytes) is unwritten space too.
            Err(_) if rest.iter().all(|&b| b == 0) => break Some(StopReason::ZeroTail),
            Err(e) => break Some(StopReason::Invalid(e)),
        };
        if batch.base_offset() < next_offset {
            break Some(StopReason::OffsetRegression {
                found: batch.base_offset(),
                expected: next_offset,
            });
        }
        let scanned = ScannedBatch {
            position: pos,
            size: batch.size(),
            base_offset: batch.base_offset(),
            last_offset: batch.last_offset(),
            max_timestamp: batch.max_timestamp(),
        };
        on_batch(&scanned);
        next_offset = scanned.last_offset + 1;
        pos += scanned.size;
    };
    ScanEnd { valid_end: pos, next_offset, stopped }
}

/// The offset after the last batch of the log file `file` whose base offset is `base`,
/// read from its batch headers alone (Kafka's `readNextOffset`): what recovery needs of a
/// `.swap` log, which was synced whole before its rename, without reading its records. A
/// header that does not fit in the file ends the walk.
pub(crate) fn next_offset_from_headers(file: &std::fs::File, base: i64) -> std::io::Result<i64> {
    use std::os::unix::fs::FileExt as _;
    const LAST_OFFSET_DELTA_END: usize = 27;
    let len = file.metadata()?.len();
    let (mut pos, mut next) = (0u64, base);
    let mut head = [0u8; LAST_OFFSET_DELTA_END];
    while pos + batch::HEADER_LEN as u64 <= len {
        file.read_exact_at(&mut head, pos)?;
        let Ok(Some(size)) = batch::total_size(&head) else { break };
        let size = size as u64;
        let base_offset = i64::from_be_bytes(head[0..8].try_into().expect("invariant: 8 bytes"));
        let delta = i32::from_be_bytes(head[23..27].try_into().expect("invariant: 4 bytes"));
        if pos + size > len || base_offset < next {
            break;
        }
        next = base_offset + i64::from(delta) + 1;
        pos += size;
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::segment::tests::batch;

    fn log_of(batches: &[Vec<u8>]) -> Vec<u8> {
        batches.concat()
    }

    #[test]
    fn scans_every_valid_batch() {
        let log = log_of(&[batch(0, 3, 10), batch(3, 2, 20)]);
        let mut seen = vec![];
        let end = scan(&log, 0, 0, |b| seen.push((b.base_offset, b.last_offset)));
        assert_eq!(seen, vec![(0, 2), (3, 4)]);
        assert_eq!(end.valid_end, log.len());
        assert_eq!(end.next_offset, 5);
        assert_eq!(end.stopped, None);
    }

    #[test]
    fn stops_at_the_zero_tail() {
        let mut log = log_of(&[batch(0, 1, 10)]);
        let good = log.len();
        log.extend_from_slice(&[0u8; 100]);
        let end = scan(&log, 0, 0, |_| {});
        assert_eq!(end.valid_end, good);
        assert_eq!(end.stopped, Some(StopReason::ZeroTail));
    }

    #[test]
    fn stops_at_a_torn_or_corrupt_batch() {
        let first = batch(0, 1, 10);
        let mut log = log_of(&[first.clone(), batch(1, 1, 10)]);
        log.truncate(log.len() - 3);
        let end = scan(&log, 0, 0, |_| {});
        assert_eq!(end.valid_end, first.len());
        assert!(matches!(end.stopped, Some(StopReason::Invalid(BatchError::Truncated { .. }))));

        let mut log = log_of(&[first.clone(), batch(1, 1, 10)]);
        let last = log.len() - 1;
        log[last] ^= 0xff;
        let end = scan(&log, 0, 0, |_| {});
        assert_eq!(end.valid_end, first.len());
        assert!(matches!(end.stopped, Some(StopReason::Invalid(BatchError::CrcMismatch { .. }))));
    }

    #[test]
    fn the_next_offset_comes_from_the_last_whole_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let mut log = log_of(&[batch(100, 3, 10), batch(110, 2, 20)]);
        std::fs::write(&path, &log).unwrap();
        let next = |p: &std::path::Path| {
            next_offset_from_headers(&std::fs::File::open(p).unwrap(), 100).unwrap()
        };
        assert_eq!(next(&path), 112, "offsets keep their holes");
        log.truncate(log.len() - 5);
        std::fs::write(&path, &log).unwrap();
        assert_eq!(next(&path), 103, "a torn last batch does not count");
        std::fs::write(&path, []).unwrap();
        assert_eq!(next(&path), 100);
    }

    #[test]
    fn stops_at_stale_offsets() {
        let log = log_of(&[batch(5, 2, 10), batch(3, 1, 10)]);
        let end = scan(&log, 0, 5, |_| {});
        assert_eq!(end.next_offset, 7);
        assert_eq!(end.stopped, Some(StopReason::OffsetRegression { found: 3, expected: 7 }));
    }
}
