//! Many logs under one small bound of open segment files: segments close and reopen
//! under concurrent appends, reads, rolls and record deletion, and nothing is lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sluice_protocol::record::RecordBatch;

use super::io::RealIo;
use super::testing::{batch, small_config};
use super::{CleanShutdown, PartitionLog, SegmentHandles, StorageError};

const OWN: CleanShutdown = CleanShutdown::OwnMarker;

const LOGS: usize = 6;
const BOUND: usize = 3;
const APPENDS_PER_WRITER: usize = 300;

/// Reads every batch from the log start to the log end, checking that offsets follow on;
/// a read that raced record deletion starts again from the new log start.
fn read_through(log: &PartitionLog) -> Result<u64, StorageError> {
    'again: loop {
        let mut offset = log.log_start_offset();
        let end = log.log_end_offset();
        let mut records = 0u64;
        while offset < end {
            let read = match log.read(offset, 4096) {
                Err(StorageError::OffsetOutOfRange { .. }) => continue 'again,
                r => r?,
            };
            // The log end offset is published before the segment's size: a batch just
            // appended may not be readable yet. Read it again.
            let Some(slice) = read.slice else { continue };
            let bytes = slice.read_to_vec().expect("the slice reads back");
            let mut pos = 0;
            while pos < bytes.len() {
                let b = RecordBatch::parse_verified(&bytes[pos..]).expect("whole valid batches");
                let (base, last) = (b.base_offset(), b.last_offset());
                assert!(base <= offset && offset <= last, "batch {base}..{last} read at {offset}");
                records += u64::try_from(last - offset + 1).unwrap();
                offset = b.last_offset() + 1;
                pos += b.size();
            }
        }
        return Ok(records);
    }
}

fn open_all(dirs: &[tempfile::TempDir], handles: &Arc<SegmentHandles>) -> Vec<PartitionLog> {
    dirs.iter()
        .map(|d| {
            PartitionLog::open_shared(
                d.path(),
                small_config(),
                Arc::new(RealIo),
                Arc::clone(handles),
                CleanShutdown::OwnMarker,
            )
            .unwrap()
        })
        .collect()
}

#[test]
fn logs_sharing_a_bound_of_three_open_segments_lose_nothing_under_concurrent_use() {
    let handles = SegmentHandles::new(BOUND);
    let dirs: Vec<_> = (0..LOGS).map(|_| tempfile::tempdir().unwrap()).collect();
    let logs = open_all(&dirs, &handles);
    let writing = AtomicBool::new(true);
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let logs = &logs;
                scope.spawn(move || {
                    for i in 0..APPENDS_PER_WRITER {
                        let log = &logs[(i + w) % LOGS];
                        log.append(&batch(0, 4, 1000))
                            .expect("an append on a closed segment reopens it");
                    }
                })
            })
            .collect();
        for _ in 0..2 {
            let (logs, writing) = (&logs, &writing);
            scope.spawn(move || {
                while writing.load(Ordering::Relaxed) {
                    for log in logs {
                        read_through(log).expect("a read on a closed segment reopens it");
                    }
                }
            });
        }
        // Record deletion retires the first log's oldest segments under the readers.
        scope.spawn(|| {
            while writing.load(Ordering::Relaxed) {
                let end = logs[0].log_end_offset();
                logs[0].delete_records(end / 2).unwrap();
                logs[0].apply_retention(i64::MAX).unwrap();
                std::thread::yield_now();
            }
        });
        for w in writers {
            w.join().unwrap();
        }
        writing.store(false, Ordering::Relaxed);
    });
    assert!(handles.open_count() <= BOUND, "{} open", handles.open_count());
    let segments: usize = logs.iter().map(|l| l.segment_base_offsets().len()).sum();
    assert!(
        handles.opened_total() > 2 * segments as u64,
        "segments were closed and reopened: {} opens of {segments} segments",
        handles.opened_total()
    );

    let want = (2 * APPENDS_PER_WRITER / LOGS * 4) as u64;
    let ends: Vec<i64> = logs.iter().map(|l| l.log_end_offset()).collect();
    assert!(ends.iter().all(|&e| e == want as i64), "log end offsets {ends:?}, want {want}");
    for log in &logs[1..] {
        assert_eq!(read_through(log).unwrap(), want);
        assert!(log.segment_base_offsets().len() > BOUND, "the test rolls past the bound");
    }
    for log in &logs {
        log.close().unwrap();
    }
    drop(logs);
    assert_eq!(handles.open_count(), 0, "closed logs hold no files");

    // Reopened under the same bound: everything is there.
    let logs = open_all(&dirs, &handles);
    assert!(handles.open_count() <= BOUND);
    for (log, end) in logs.iter().zip(&ends) {
        assert_eq!(log.log_end_offset(), *end);
    }
    for log in &logs[1..] {
        assert_eq!(read_through(log).unwrap(), want);
    }
    assert!(handles.open_count() <= BOUND);
}

#[test]
fn under_a_bound_of_one_reads_after_record_deletion_reopen_the_segments_that_remain() {
    let dir = tempfile::tempdir().unwrap();
    let handles = SegmentHandles::new(1);
    let log = PartitionLog::open_shared(dir.path(), small_config(), Arc::new(RealIo), handles, OWN)
        .unwrap();
    for _ in 0..40 {
        log.append(&batch(0, 4, 1000)).unwrap();
    }
    let bases = log.segment_base_offsets();
    assert!(bases.len() > 2);
    // Deletion retires the first segment; every other one was closed and reopens.
    log.delete_records(bases[1]).unwrap();
    log.apply_retention(0).unwrap();
    assert_eq!(log.segment_base_offsets()[0], bases[1]);
    assert_eq!(read_through(&log).unwrap(), (160 - bases[1]) as u64);
}

#[test]
fn a_read_of_zero_bytes_or_at_the_log_end_opens_no_segment_and_still_checks_the_offset() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let handles = SegmentHandles::new(1);
    let logs = open_all(&dirs, &handles);
    for log in &logs {
        log.append(&batch(0, 4, 100)).unwrap();
    }
    // The bound of one leaves the first log's segment closed.
    let opened = handles.opened_total();
    let read = logs[0].read(2, 0).unwrap();
    assert!(read.slice.is_none());
    assert_eq!((read.high_watermark, read.log_start_offset), (4, 0));
    assert_eq!(handles.opened_total(), opened, "nothing reopened for a read that sends nothing");
    assert!(matches!(logs[0].read(5, 0), Err(StorageError::OffsetOutOfRange { .. })));
    assert!(logs[0].read(4, 1 << 20).unwrap().slice.is_none(), "at the log end");
    assert_eq!(handles.opened_total(), opened, "nothing reopened for a read at the log end");
    assert!(logs[0].read(2, 1).unwrap().slice.is_some(), "one byte still reads a batch");
    assert_eq!(handles.opened_total(), opened + 1);
}
