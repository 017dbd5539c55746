use std::sync::Arc;

use proptest::prelude::*;
use sluice_protocol::record::{BatchError, RecordBatch};

use super::*;
use crate::storage::checkpoint::RECOVERY_POINT_CHECKPOINT;
use crate::storage::io::FaultyIo;
use crate::storage::testing::{batch, batch_at_time, idempotent_batch, small_config};

/// Batches in a slice: (base offset, last offset).
fn batches_in(bytes: &[u8]) -> Vec<(i64, i64)> {
    let mut out = vec![];
    let mut pos = 0;
    while pos < bytes.len() {
        let b = RecordBatch::parse_verified(&bytes[pos..]).expect("whole valid batches only");
        out.push((b.base_offset(), b.last_offset()));
        pos += b.size();
    }
    out
}

fn read_all(log: &PartitionLog) -> Vec<(i64, i64)> {
    let mut out = vec![];
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1 << 20).unwrap();
        let bytes = read.slice.expect("data below the log end").read_to_vec().unwrap();
        let got = batches_in(&bytes);
        offset = got.last().unwrap().1 + 1;
        out.extend(got);
    }
    out
}

#[test]
fn append_assigns_offsets_and_read_returns_the_batch_holding_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    let a = log.append(&batch(999, 3, 100)).unwrap();
    assert_eq!((a.base_offset, a.last_offset), (0, 2));
    let mut set = batch(0, 2, 50);
    set.extend(batch(0, 4, 50));
    let b = log.append(&set).unwrap();
    assert_eq!((b.base_offset, b.last_offset), (3, 8));
    assert_eq!(log.log_end_offset(), 9);

    for (offset, first) in [(0, (0, 2)), (2, (0, 2)), (3, (3, 4)), (5, (5, 8)), (8, (5, 8))] {
        let read = log.read(offset, 1 << 20).unwrap();
        let got = batches_in(&read.slice.unwrap().read_to_vec().unwrap());
        assert_eq!(got[0], first, "read at {offset}");
        assert_eq!(read.high_watermark, 9);
    }
    let at_end = log.read(9, 1000).unwrap();
    assert!(at_end.slice.is_none());
}

#[test]
fn read_returns_at_least_one_batch_and_ends_on_a_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for _ in 0..10 {
        log.append(&batch(0, 1, 200)).unwrap();
    }
    let one = batch(0, 1, 200).len() as u64;
    let tiny = log.read(0, 10).unwrap().slice.unwrap();
    assert_eq!(tiny.len, one, "one whole batch even when larger than max_bytes");
    let three = log.read(0, one * 3 + one / 2).unwrap().slice.unwrap();
    assert_eq!(three.len, one * 3);
    assert_eq!(batches_in(&three.read_to_vec().unwrap()).len(), 3);
}

#[test]
fn offsets_outside_the_log_are_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.append(&batch(0, 5, 10)).unwrap();
    assert!(matches!(log.read(6, 100), Err(StorageError::OffsetOutOfRange { offset: 6, .. })));
    assert!(matches!(log.read(-1, 100), Err(StorageError::OffsetOutOfRange { .. })));
}

#[test]
fn invalid_record_sets_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    let mut corrupt = batch(0, 1, 100);
    corrupt[80] ^= 1;
    let mut set = batch(0, 1, 10);
    set.extend(&corrupt);
    let err = log.append(&set).unwrap_err();
    assert!(matches!(err, StorageError::InvalidBatch { position, .. } if position == 71), "{err}");
    assert!(log.append(&[]).is_err());
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
}

#[test]
fn rolls_on_segment_bytes_and_reads_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for i in 0..100 {
        log.append(&batch(0, 2, 300 + i)).unwrap();
    }
    let bases = log.segment_base_offsets();
    assert!(bases.len() > 2, "{bases:?}");
    for w in bases.windows(2) {
        assert!(w[0] < w[1]);
    }
    let all = read_all(&log);
    assert_eq!(all.len(), 100);
    assert_eq!(all.last().unwrap().1, 199);
    // Sealed segments are trimmed to their data.
    let first = dir.path().join(crate::storage::segment_file_name(bases[0], "log"));
    assert!(std::fs::metadata(first).unwrap().len() <= 16 * 1024);
}

#[test]
fn rolls_when_the_index_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1 << 20,
        segment_index_bytes: 8 * 4,
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    for _ in 0..20 {
        log.append(&batch(0, 1, 10)).unwrap();
    }
    assert!(log.segment_base_offsets().len() >= 4);
    assert_eq!(read_all(&log).len(), 20);
}

#[test]
fn a_failed_roll_leaves_the_active_segment_whole_and_appendable() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1 << 20,
        segment_index_bytes: 64 * 1024,
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    // 512 offset index entries fill exactly one page of the index file: a trim would cut
    // the file at that page's end, and the next entry would be written past it.
    for _ in 0..512 {
        log.append(&batch(0, 1, 10)).unwrap();
    }
    let next = log.log_end_offset();
    // A dangling link where the next segment's time index goes: creating that segment
    // fails after its log and offset index files exist.
    let file = |ext| dir.path().join(crate::storage::segment_file_name(next, ext));
    std::os::unix::fs::symlink(dir.path().join("no/such/dir"), file("timeindex")).unwrap();
    assert!(log.append(&batch(0, 1, 1 << 20)).is_err(), "the roll cannot create its segment");
    assert_eq!(log.log_end_offset(), next);
    for ext in ["log", "index"] {
        assert!(!file(ext).exists(), "a failed segment leaves no {ext} file to be found at start");
    }
    for _ in 0..600 {
        log.append(&batch(0, 1, 10)).unwrap();
    }
    log.append(&batch(0, 1, 1 << 20)).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, next + 600]);
    let want: Vec<(i64, i64)> = (0..next + 601).map(|o| (o, o)).collect();
    assert_eq!(read_all(&log), want);
    log.close().unwrap();
    let log = PartitionLog::open(dir.path(), config).unwrap();
    assert_eq!(read_all(&log), want);
    for offset in [0, 511, 512, 1000, next + 599, next + 600] {
        let read = log.read(offset, 1).unwrap();
        let got = batches_in(&read.slice.unwrap().read_to_vec().unwrap());
        assert_eq!(got[0], (offset, offset), "the index finds offset {offset}");
    }
}

#[test]
fn a_failed_recreation_of_the_empty_active_segment_refuses_later_appends() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    // The empty segment is recreated larger for a set bigger than its capacity; its own
    // files are removed first. A dangling link in place of its time index makes the
    // recreation fail after that.
    let timeindex = dir.path().join(crate::storage::segment_file_name(0, "timeindex"));
    std::fs::remove_file(&timeindex).unwrap();
    std::os::unix::fs::symlink(dir.path().join("no/such/dir"), &timeindex).unwrap();
    assert!(log.append(&batch(0, 1, 20 * 1024)).is_err());
    // Acknowledging this into files no directory names would lose it at the next start.
    assert!(log.append(&batch(0, 1, 10)).is_err(), "the partition refuses writes");
    drop(log);
    let _ = std::fs::remove_file(&timeindex);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.append(&batch(0, 1, 20 * 1024)).unwrap().base_offset, 0);
}

#[test]
fn a_segment_rolls_before_its_offsets_outgrow_the_relative_offsets_of_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { index_interval_bytes: 1, ..LogConfig::default() };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    // Batches that claim i32::MAX records each: the log checks headers, not records.
    let span = i64::from(i32::MAX);
    let bases: Vec<i64> =
        (0..4).map(|_| log.append(&batch(0, i32::MAX, 10)).unwrap().base_offset).collect();
    assert_eq!(bases, [0, span, 2 * span, 3 * span]);
    let small = log.append(&batch(0, 1, 10)).unwrap().base_offset;
    assert_eq!(small, 4 * span);
    // Its last offset is exactly i32::MAX past the last base: that still fits.
    assert_eq!(log.segment_base_offsets(), [0, span, 2 * span, 3 * span]);
    for &base in bases.iter().chain([&small]) {
        for offset in [base, base + span / 2] {
            if offset >= log.log_end_offset() {
                continue;
            }
            let read = log.read(offset, 1).unwrap();
            let got = batches_in(&read.slice.unwrap().read_to_vec().unwrap());
            assert_eq!(got[0].0, base, "offset {offset} is in the batch at {base}");
        }
    }
}

#[test]
fn a_record_set_whose_offsets_cannot_fit_one_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    let mut set = batch(0, i32::MAX, 10);
    set.extend(batch(0, 2, 10));
    let refused = log.append(&set);
    assert!(
        matches!(
            refused,
            Err(StorageError::InvalidBatch {
                source: BatchError::InvalidCount { count: 2, .. },
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(log.log_end_offset(), 0);
    let mut set = batch(0, i32::MAX, 10);
    set.extend(batch(0, 1, 10));
    assert_eq!(log.append(&set).unwrap().last_offset, i64::from(i32::MAX));
}

#[test]
fn a_record_set_larger_than_a_segment_gets_a_segment_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.append(&batch(0, 1, 10)).unwrap();
    log.append(&batch(0, 1, 40_000)).unwrap();
    log.append(&batch(0, 1, 10)).unwrap();
    assert_eq!(read_all(&log), vec![(0, 0), (1, 1), (2, 2)]);
}

#[test]
fn reopen_after_clean_close_and_after_crash_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let expected;
    {
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        for i in 0..60 {
            log.append(&batch(0, 3, 100 + i)).unwrap();
        }
        expected = read_all(&log);
        log.close().unwrap();
        assert!(matches!(log.append(&batch(0, 1, 1)), Err(StorageError::Closed { .. })));
    }
    assert!(dir.path().join(".clean-shutdown").exists());
    {
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        // Nothing changed yet: a crash now would still be a clean state.
        assert!(dir.path().join(".clean-shutdown").exists());
        assert_eq!(read_all(&log), expected);
        log.append(&batch(0, 1, 10)).unwrap();
        assert!(!dir.path().join(".clean-shutdown").exists(), "gone before the first append");
        // dropped without close: a crash as far as the files know
    }
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    let mut with_last = expected.clone();
    with_last.push((180, 180));
    assert_eq!(read_all(&log), with_last);
    assert_eq!(log.log_end_offset(), 181);
}

#[test]
fn recovery_cuts_a_torn_tail_and_rebuilds_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 1 << 20, ..small_config() };
    {
        let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        for _ in 0..50 {
            log.append(&batch(0, 1, 200)).unwrap();
        }
    }
    // Tear the last batch: overwrite its tail with garbage.
    let path = dir.path().join(crate::storage::segment_file_name(0, "log"));
    let one = batch(0, 1, 200).len() as u64;
    let end = one * 50;
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[0xAB; 30], end - 30).unwrap();
    }
    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    assert_eq!(log.log_end_offset(), 49);
    assert_eq!(read_all(&log).len(), 49);
    // The index still finds every batch.
    for offset in 0..49 {
        let got = batches_in(&log.read(offset, 1).unwrap().slice.unwrap().read_to_vec().unwrap());
        assert_eq!(got, vec![(offset, offset)]);
    }
    let next = log.append(&batch(0, 1, 5)).unwrap();
    assert_eq!(next.base_offset, 49);
}

#[test]
fn after_a_crash_a_sealed_segment_that_lost_records_ends_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let one = batch(0, 1, 1000).len() as u64;
    let bases;
    {
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        for _ in 0..60 {
            log.append(&batch(0, 1, 1000)).unwrap();
        }
        bases = log.segment_base_offsets();
        // Dropped without close and before any flusher tick: no recovery point, as after a
        // power loss soon after these appends.
    }
    assert!(bases.len() >= 4, "{bases:?}");
    // A page of the second segment never reached the disk: zeros from its fourth batch.
    let lost = bases[1] + 3;
    {
        use std::os::unix::fs::FileExt;
        let path = dir.path().join(crate::storage::segment_file_name(bases[1], "log"));
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[0u8; 4096], 3 * one).unwrap();
    }
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), lost);
    assert_eq!(log.segment_base_offsets(), bases[..2].to_vec());
    assert_eq!(read_all(&log), (0..lost).map(|o| (o, o)).collect::<Vec<_>>());
    for &later in &bases[2..] {
        let path = dir.path().join(crate::storage::segment_file_name(later, "log"));
        assert!(!path.exists(), "{} is left", path.display());
    }
    // The log goes on from the cut, and another crash keeps it.
    assert_eq!(log.append(&batch(0, 1, 1000)).unwrap().base_offset, lost);
    drop(log);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), lost + 1);
    assert_eq!(read_all(&log).len() as i64, lost + 1);
}

#[test]
fn the_flusher_syncs_segments_after_they_roll_and_a_restart_recovers_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FaultyIo::new());
    let log = PartitionLog::open_with_io(dir.path(), small_config(), Arc::clone(&io) as _).unwrap();
    for _ in 0..50 {
        log.append(&batch(0, 1, 1000)).unwrap();
    }
    let bases = log.segment_base_offsets();
    let active_base = *bases.last().unwrap();
    assert!(bases.len() >= 3, "{bases:?}");
    assert_eq!(io.syncs(), 0, "no sync on the append path without a flush policy");
    assert_eq!(log.flushed_offset(), 0);

    log.flush_if_due(now_ms()).unwrap();
    assert_eq!(io.syncs() as usize, bases.len() - 1, "one sync per sealed segment");
    assert_eq!(log.flushed_offset(), active_base, "the active segment is left to its policy");
    let checkpoint = checkpoint::read(dir.path(), RECOVERY_POINT_CHECKPOINT).unwrap();
    assert_eq!(checkpoint, Some(active_base));
    log.flush_if_due(now_ms()).unwrap();
    assert_eq!(io.syncs() as usize, bases.len() - 1, "nothing new: no sync");
    drop(log); // a crash

    // Tear the active segment's last batch, and flip a byte inside the first batch of
    // the first segment, which is below the recovery point.
    let one = batch(0, 1, 1000).len() as u64;
    {
        use std::os::unix::fs::FileExt;
        let seg = |base| dir.path().join(crate::storage::segment_file_name(base, "log"));
        let active = std::fs::OpenOptions::new().write(true).open(seg(active_base)).unwrap();
        let in_active = (50 - active_base) as u64;
        active.write_all_at(&[0xAB; 20], in_active * one - 20).unwrap();
        let first = std::fs::OpenOptions::new().write(true).open(seg(0)).unwrap();
        first.write_all_at(&[0xFF], 100).unwrap();
    }
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    // Only the active segment was recovered: its torn batch is cut, while the sealed
    // segments below the recovery point are taken as synced and not read (what keeps a
    // restart from reading the whole log; the flipped byte stands for that here).
    assert_eq!(log.log_end_offset(), 49);
    assert_eq!(log.segment_base_offsets(), bases);
    assert_eq!(log.flushed_offset(), active_base, "the recovered tail is not known to be on disk");
}

#[test]
fn a_clean_close_syncs_the_segments_the_flusher_had_not_reached() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FaultyIo::new());
    let log = PartitionLog::open_with_io(dir.path(), small_config(), Arc::clone(&io) as _).unwrap();
    for _ in 0..50 {
        log.append(&batch(0, 1, 1000)).unwrap();
    }
    let segments = log.segment_base_offsets().len();
    assert_eq!(io.syncs(), 0);
    log.close().unwrap();
    assert_eq!(io.syncs() as usize, segments, "every segment, the sealed ones too");
    let checkpoint = checkpoint::read(dir.path(), RECOVERY_POINT_CHECKPOINT).unwrap();
    assert_eq!(checkpoint, Some(50));
    drop(log);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.flushed_offset(), 50);
    assert_eq!(read_all(&log).len(), 50);
}

#[test]
fn lookup_by_timestamp_finds_the_first_batch_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for i in 0..200i64 {
        log.append(&batch_at_time(0, 1, 100, 1000 + i * 10)).unwrap();
    }
    assert!(log.segment_base_offsets().len() > 1);
    let hit = |ts| log.lookup_by_timestamp(ts).unwrap().map(|t| t.offset);
    assert_eq!(hit(0), Some(0));
    assert_eq!(hit(1000), Some(0));
    assert_eq!(hit(1001), Some(1));
    assert_eq!(hit(1500), Some(50));
    assert_eq!(hit(1000 + 199 * 10), Some(199));
    assert_eq!(hit(1000 + 199 * 10 + 1), None);
    assert_eq!(log.max_timestamp().unwrap().map(|t| (t.offset, t.timestamp)), Some((199, 2990)));
}

#[test]
fn lookup_by_timestamp_skips_deleted_records_inside_a_segment() {
    // Regression: the first match lay below the log start, and the later batches of the
    // same segment were never looked at.
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for i in 0..10i64 {
        log.append(&batch_at_time(0, 1, 100, 1_000_000 + i * 1000)).unwrap();
    }
    assert_eq!(log.segment_base_offsets().len(), 1);
    log.delete_records(4).unwrap();
    let hit = |ts| log.lookup_by_timestamp(ts).unwrap().map(|t| t.offset);
    assert_eq!(hit(0), Some(4));
    assert_eq!(hit(1_002_000), Some(4));
    assert_eq!(hit(1_005_000), Some(5));
}

#[test]
fn retention_by_bytes_and_time_deletes_whole_sealed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config();
    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    for i in 0..100i64 {
        log.append(&batch_at_time(0, 1, 400, 10_000 + i)).unwrap();
    }
    let segments = log.segment_base_offsets().len();
    config.retention_bytes = 20_000;
    log.set_config(config.clone());
    let deleted = log.apply_retention(0).unwrap();
    assert!(deleted > 0 && deleted < segments);
    assert!(log.size_bytes() >= 20_000 - 16 * 1024);
    assert_eq!(log.log_start_offset(), log.segment_base_offsets()[0]);
    assert!(matches!(log.read(0, 100), Err(StorageError::OffsetOutOfRange { .. })));

    config.retention_bytes = -1;
    config.retention_ms = 1000;
    log.set_config(config);
    log.apply_retention(10_000 + 100 + 1000 + 1).unwrap();
    assert_eq!(log.segment_base_offsets().len(), 1, "only the active segment remains");
    assert_eq!(read_all(&log).last().unwrap().1, 99);
}

#[test]
fn delete_records_moves_the_log_start_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        for _ in 0..100 {
            log.append(&batch(0, 1, 400)).unwrap();
        }
        assert_eq!(log.delete_records(57).unwrap(), 57);
        assert!(log.segment_base_offsets()[0] <= 57);
        assert!(log.segment_base_offsets()[0] > 0);
        assert!(matches!(log.read(56, 10), Err(StorageError::OffsetOutOfRange { .. })));
        assert_eq!(
            batches_in(&log.read(57, 10).unwrap().slice.unwrap().read_to_vec().unwrap()),
            vec![(57, 57)]
        );
        assert!(log.delete_records(101).is_err());
        log.close().unwrap();
    }
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), 57);
}

#[test]
fn a_reader_keeps_reading_a_deleted_segment() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for _ in 0..100 {
        log.append(&batch(0, 1, 400)).unwrap();
    }
    let held = log.read(0, 4096).unwrap().slice.unwrap();
    log.delete_records(90).unwrap();
    assert!(!dir.path().join(crate::storage::segment_file_name(0, "log")).exists());
    assert_eq!(batches_in(&held.read_to_vec().unwrap())[0], (0, 0));
}

#[test]
fn a_failed_reservation_fails_the_append_and_leaves_the_log_intact() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FaultyIo::new());
    let log = PartitionLog::open_with_io(dir.path(), small_config(), io.clone()).unwrap();
    log.append(&batch(0, 1, 100)).unwrap();
    // The disk fills up: every reservation from now on fails.
    io.fail_reserves_from(1);
    let mut failed = false;
    for _ in 0..2000 {
        match log.append(&batch(0, 1, 1000)) {
            Ok(_) => {}
            Err(e) => {
                assert!(e.is_disk_full(), "{e}");
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "some append needed a reservation");
    let before = log.log_end_offset();
    assert_eq!(read_all(&log).len() as i64, before);
    // Space came back: appends go on from the same offset.
    io.heal();
    let next = log.append(&batch(0, 1, 10)).unwrap();
    assert_eq!(next.base_offset, before);
}

#[test]
fn a_torn_write_fails_the_append_and_no_partial_batch_is_ever_served() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FaultyIo::new());
    let log = PartitionLog::open_with_io(dir.path(), small_config(), io.clone()).unwrap();
    log.append(&batch(0, 2, 100)).unwrap();
    io.fail_nth_write(1);
    let err = log.append(&batch(0, 3, 500)).unwrap_err();
    assert!(matches!(err, StorageError::Io { .. }), "{err}");
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(read_all(&log), vec![(0, 1)]);
    assert!(log.read(2, 1000).unwrap().slice.is_none(), "the torn bytes are not published");
    // The next append overwrites the torn bytes; a crash now recovers only whole batches.
    assert_eq!(log.append(&batch(0, 1, 50)).unwrap().base_offset, 2);
    drop(log);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(read_all(&log), vec![(0, 1), (2, 2)]);
}

#[test]
fn a_failed_sync_poisons_the_partition_but_reads_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FaultyIo::new());
    let config = LogConfig { flush_messages: 1, ..small_config() };
    let log = PartitionLog::open_with_io(dir.path(), config, io.clone()).unwrap();
    log.append(&batch(0, 1, 100)).unwrap();
    io.fail_nth_sync(1);
    let err = log.append(&batch(0, 1, 100)).unwrap_err();
    assert!(matches!(err, StorageError::Io { .. }), "{err}");
    assert!(log.is_poisoned());
    assert!(matches!(log.append(&batch(0, 1, 100)), Err(StorageError::Poisoned { .. })));
    assert!(matches!(log.flush(), Err(StorageError::Poisoned { .. })));
    assert_eq!(read_all(&log).len(), 2);
}

#[test]
fn durable_appends_from_many_threads_share_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { flush_messages: 1, segment_bytes: 1 << 20, ..small_config() };
    let log = Arc::new(PartitionLog::open(dir.path(), config).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let a = log.append(&batch(0, 1, 100)).unwrap();
                    assert!(log.flushed_offset() > a.last_offset, "acked before durable");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(log.log_end_offset(), 400);
    assert_eq!(log.flushed_offset(), 400);
}

#[test]
fn flush_if_due_follows_flush_messages_and_flush_ms() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { flush_messages: 10, flush_ms: 1000, ..small_config() };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    for _ in 0..5 {
        log.append(&batch(0, 1, 10)).unwrap();
    }
    assert_eq!(log.flushed_offset(), 0);
    log.flush_if_due(now_ms()).unwrap();
    assert_eq!(log.flushed_offset(), 0, "neither limit reached");
    log.flush_if_due(now_ms() + 1001).unwrap();
    assert_eq!(log.flushed_offset(), 5);
    for _ in 0..10 {
        log.append(&batch(0, 1, 10)).unwrap();
    }
    assert_eq!(log.flushed_offset(), 15, "flush.messages reached inside append");
}

#[test]
fn a_retried_idempotent_batch_is_answered_with_its_offsets_and_not_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.append(&batch(0, 2, 10)).unwrap();
    let first = log.append(&idempotent_batch(42, 0, 0, 3)).unwrap();
    let second = log.append(&idempotent_batch(42, 0, 3, 2)).unwrap();
    assert_eq!((first.base_offset, second.base_offset), (2, 5));
    let retry = log.append(&idempotent_batch(42, 0, 0, 3)).unwrap();
    assert_eq!((retry.base_offset, retry.last_offset), (2, 4));
    assert_eq!(log.log_end_offset(), 7, "nothing written for the retry");
    // A gap, and a stale epoch.
    assert!(matches!(
        log.append(&idempotent_batch(42, 0, 9, 1)),
        Err(StorageError::OutOfOrderSequence { expected: 5, .. })
    ));
    log.append(&idempotent_batch(42, 1, 0, 1)).unwrap();
    assert!(matches!(
        log.append(&idempotent_batch(42, 0, 5, 1)),
        Err(StorageError::InvalidProducerEpoch { .. })
    ));
    // Two batches of one producer in one record set are checked in order.
    let mut set = idempotent_batch(7, 0, 0, 2);
    set.extend(idempotent_batch(7, 0, 2, 2));
    assert_eq!(log.append(&set).unwrap().base_offset, 8);
    let mut gap = idempotent_batch(8, 0, 0, 2);
    gap.extend(idempotent_batch(8, 0, 5, 2));
    assert!(log.append(&gap).is_err());
    assert_eq!(log.log_end_offset(), 12, "a set with a bad batch writes nothing");
}

#[test]
fn producer_state_survives_clean_and_unclean_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        // Enough to roll a few segments, so a snapshot is written at each roll.
        for seq in 0..60 {
            log.append(&idempotent_batch(5, 0, seq * 2, 2)).unwrap();
            log.append(&batch(0, 1, 1000)).unwrap();
        }
        assert!(log.segment_base_offsets().len() > 2);
        log.close().unwrap();
    }
    {
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        let retry = log.append(&idempotent_batch(5, 0, 118, 2)).unwrap();
        assert_eq!(retry.base_offset, 177, "the last batch is known after a clean reopen");
        log.append(&idempotent_batch(5, 0, 120, 2)).unwrap();
        // dropped without close: crash
    }
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    let retry = log.append(&idempotent_batch(5, 0, 120, 2)).unwrap();
    assert_eq!(retry.base_offset, 180, "rebuilt from the log tail after a crash");
    assert!(matches!(
        log.append(&idempotent_batch(5, 0, 125, 1)),
        Err(StorageError::OutOfOrderSequence { expected: 122, .. })
    ));
}

#[derive(Debug, Clone)]
enum Op {
    Append { batches: Vec<(i32, usize)> },
    Reopen { clean: bool },
    Read { at: u16, max: u16 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec((1..5i32, 0..3000usize), 1..4).prop_map(|batches| Op::Append { batches }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        3 => (any::<u16>(), any::<u16>()).prop_map(|(at, max)| Op::Read { at, max }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random appends, rolls, reopenings and reads give back exactly what was written.
    #[test]
    fn random_workload_reads_back_what_was_written(ops in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { segment_bytes: 8 * 1024, index_interval_bytes: 256, ..small_config() };
        let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        // What each offset's batch is: (base, last, payload length).
        let mut written: Vec<(i64, i64, usize)> = vec![];
        for op in ops {
            match op {
                Op::Append { batches } => {
                    let mut set = vec![];
                    for &(count, payload) in &batches {
                        set.extend(batch(0, count, payload));
                    }
                    let info = log.append(&set).unwrap();
                    let mut next = info.base_offset;
                    for &(count, payload) in &batches {
                        written.push((next, next + i64::from(count) - 1, payload));
                        next += i64::from(count);
                    }
                    prop_assert_eq!(next - 1, info.last_offset);
                }
                Op::Reopen { clean } => {
                    if clean { log.close().unwrap(); }
                    drop(log);
                    log = PartitionLog::open(dir.path(), config.clone()).unwrap();
                }
                Op::Read { at, max } => {
                    let leo = log.log_end_offset();
                    if leo == 0 { continue; }
                    let offset = i64::from(at) % leo;
                    let read = log.read(offset, u64::from(max)).unwrap();
                    let bytes = read.slice.unwrap().read_to_vec().unwrap();
                    let got = batches_in(&bytes);
                    let first = written.iter().position(|w| w.1 >= offset).unwrap();
                    prop_assert_eq!(got[0], (written[first].0, written[first].1));
                    prop_assert!(got.len() == 1 || bytes.len() <= usize::from(max));
                    for (g, w) in got.iter().zip(&written[first..]) {
                        prop_assert_eq!(*g, (w.0, w.1));
                    }
                }
            }
        }
        let all = read_all(&log);
        prop_assert_eq!(all, written.iter().map(|w| (w.0, w.1)).collect::<Vec<_>>());
    }

    /// Cutting the active segment at any byte and recovering gives a valid prefix of
    /// what was written, never a corrupt batch.
    #[test]
    fn cutting_at_a_random_byte_recovers_a_valid_prefix(
        sizes in prop::collection::vec(1..2000usize, 1..30),
        cut in any::<prop::sample::Index>(),
        garbage in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { segment_bytes: 1 << 20, ..small_config() };
        {
            let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
            for &s in &sizes { log.append(&batch(0, 1, s)).unwrap(); }
            log.close().unwrap();
        }
        std::fs::remove_file(dir.path().join(".clean-shutdown")).unwrap();
        let path = dir.path().join(crate::storage::segment_file_name(0, "log"));
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        let at = cut.index(len + 1);
        {
            use std::os::unix::fs::FileExt;
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(at as u64).unwrap();
            if garbage { f.write_all_at(&[0x5A; 64], at as u64).unwrap(); }
        }
        let log = PartitionLog::open(dir.path(), config).unwrap();
        let all = read_all(&log);
        let mut end = 0;
        let mut whole = 0;
        for &s in &sizes {
            end += batch(0, 1, s).len();
            if end <= at { whole += 1; }
        }
        prop_assert_eq!(all.len(), whole);
        for (i, (base, last)) in all.iter().enumerate() {
            prop_assert_eq!((*base, *last), (i as i64, i as i64));
        }
        prop_assert_eq!(log.append(&batch(0, 1, 1)).unwrap().base_offset, whole as i64);
    }
}
