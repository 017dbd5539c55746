//! Partition-level tests of the durable files: checkpoints written outside the writer
//! lock and kept monotonic, crash images with torn temporary files, and the bounds on
//! producer state.

use std::sync::Arc;

use super::io::FaultyIo;
use super::testing::{batch, idempotent_batch, small_config};
use super::{checkpoint, durable, LogConfig, PartitionLog, StorageError};

fn filled(dir: &std::path::Path, io: Arc<FaultyIo>) -> PartitionLog {
    let log = PartitionLog::open_with_io(dir, small_config(), io).unwrap();
    for _ in 0..100 {
        log.append(&batch(0, 1, 400)).unwrap();
    }
    log
}

#[test]
fn a_failed_log_start_checkpoint_fails_the_delete_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FaultyIo::new());
    let log = filled(dir.path(), Arc::clone(&io));
    io.fail_nth_file_sync(1);
    assert!(log.delete_records(40).is_err());
    assert_eq!(log.log_start_offset(), 0, "not published before it is durable");
    assert_eq!(checkpoint::read(dir.path(), "log-start-offset").unwrap(), None);
    assert_eq!(log.delete_records(40).unwrap(), 40);
    drop(log);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), 40);
}

#[test]
fn concurrent_deletes_and_appends_keep_the_newest_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(filled(dir.path(), Arc::new(FaultyIo::new())));
    let deleters: Vec<_> = (0..4)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..25 {
                    log.delete_records(i * 4 + t).unwrap();
                }
            })
        })
        .collect();
    for _ in 0..200 {
        log.append(&batch(0, 1, 100)).unwrap();
    }
    for d in deleters {
        d.join().unwrap();
    }
    assert_eq!(log.log_start_offset(), 99);
    // Dropped without close: a crash.
    drop(log);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), 99);
}

#[test]
fn torn_temporary_files_beside_the_checkpoints_and_snapshots_are_ignored_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = filled(dir.path(), Arc::new(FaultyIo::new()));
        log.append(&idempotent_batch(7, 0, 0, 1)).unwrap();
        log.delete_records(30).unwrap();
        log.close().unwrap();
    }
    let names = ["log-start-offset", "recovery-point-offset", "00000000000000000101.snapshot"];
    for name in names {
        let path = dir.path().join(name);
        let whole = std::fs::read(&path).unwrap_or_else(|_| b"v1 12345678 0badf00d\n".to_vec());
        std::fs::write(durable::temp_path(&path), &whole[..whole.len() / 2]).unwrap();
    }
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), 30);
    assert_eq!(log.producer_count(), 1);
    let retry = log.append(&idempotent_batch(7, 0, 0, 1)).unwrap();
    assert_eq!(retry.base_offset, 100, "the producer's last batch is still known");
    for name in names {
        assert!(!durable::temp_path(&dir.path().join(name)).exists(), "{name}.tmp removed");
    }
}

#[test]
fn a_cut_log_start_checkpoint_is_a_typed_error_not_a_lower_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = filled(dir.path(), Arc::new(FaultyIo::new()));
        log.delete_records(57).unwrap();
    }
    let path = dir.path().join("log-start-offset");
    let whole = std::fs::read(&path).unwrap();
    std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
    let e = PartitionLog::open(dir.path(), small_config()).unwrap_err();
    assert!(matches!(e, StorageError::Corrupt { .. }), "{e}");
}

#[test]
fn the_producer_bound_holds_across_appends_snapshots_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    // No grace: every producer here is seconds old, and this test is about the bound.
    let config = LogConfig {
        max_producers_per_partition: 50,
        producer_eviction_grace_ms: 0,
        ..small_config()
    };
    {
        let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        for pid in 0..500 {
            log.append(&idempotent_batch(pid, 0, 0, 1)).unwrap();
            assert!(log.producer_count() <= 50);
        }
        assert!(log.segment_base_offsets().len() > 1, "rolled, so snapshots were written");
        assert_eq!(log.producer_count(), 50);
        // The evicted producer 0 is unknown: its retry is written again, as an expired
        // producer's is in Kafka; the recent producer 499 is still deduplicated.
        assert_eq!(log.append(&idempotent_batch(499, 0, 0, 1)).unwrap().base_offset, 499);
        assert_eq!(log.append(&idempotent_batch(0, 0, 0, 1)).unwrap().base_offset, 500);
        log.close().unwrap();
    }
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        if entry.file_name().to_string_lossy().ends_with(".snapshot") {
            let lines = std::fs::read_to_string(entry.path()).unwrap().lines().count();
            assert!(lines <= 52, "{} has {lines} lines", entry.path().display());
        }
    }
    let log = PartitionLog::open(dir.path(), config).unwrap();
    assert_eq!(log.producer_count(), 50);
    assert_eq!(log.append(&idempotent_batch(0, 0, 0, 1)).unwrap().base_offset, 500);
}

#[test]
fn idle_producers_expire_on_the_tick_by_the_broker_clock() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { producer_id_expiration_ms: 60_000, ..small_config() };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    // A batch timestamp far in the future does not keep a producer alive.
    let mut future = idempotent_batch(3, 0, 0, 1);
    future[27..35].copy_from_slice(&i64::MAX.to_be_bytes());
    future[35..43].copy_from_slice(&i64::MAX.to_be_bytes());
    sluice_protocol::record::batch::update_crc(&mut future);
    log.append(&future).unwrap();
    let now = super::now_ms();
    assert_eq!(log.remove_expired_producers(now), 0);
    assert_eq!(log.remove_expired_producers(now + 61_000), 1);
    assert_eq!(log.producer_count(), 0);
}

#[test]
fn appends_do_not_wait_for_a_slow_log_start_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FaultyIo::new());
    let log = Arc::new(filled(dir.path(), Arc::clone(&io)));
    io.slow_file_syncs(std::time::Duration::from_millis(400));
    let deleter = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || log.delete_records(50).unwrap())
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    let started = std::time::Instant::now();
    for _ in 0..20 {
        log.append(&batch(0, 1, 100)).unwrap();
    }
    let appends = started.elapsed();
    assert_eq!(deleter.join().unwrap(), 50);
    assert!(
        appends < std::time::Duration::from_millis(200),
        "20 appends took {appends:?} beside a 400 ms checkpoint sync"
    );
}

#[test]
fn a_cut_recovery_point_falls_back_to_recovering_every_segment() {
    let dir = tempfile::tempdir().unwrap();
    let expected;
    {
        let log = filled(dir.path(), Arc::new(FaultyIo::new()));
        log.flush_if_due(super::now_ms()).unwrap();
        expected = log.log_end_offset();
        // Dropped without close: a crash.
    }
    let path = dir.path().join("recovery-point-offset");
    let whole = std::fs::read(&path).expect("the flusher wrote a recovery point");
    std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), expected);
}

#[test]
fn a_sync_after_a_roll_makes_the_new_segment_names_durable_once() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FaultyIo::new());
    let log = PartitionLog::open_with_io(dir.path(), small_config(), io.clone()).unwrap();
    log.append(&batch(0, 1, 400)).unwrap();
    let before = io.dir_syncs();
    log.sync_to(log.high_watermark()).unwrap();
    assert_eq!(io.dir_syncs() - before, 1, "the first sync covers the first segment's name");
    log.append(&batch(0, 1, 400)).unwrap();
    log.sync_to(log.high_watermark()).unwrap();
    assert_eq!(io.dir_syncs() - before, 1, "no segment was created since");
    // Past segment.bytes: a roll creates a segment, so the next sync syncs the directory.
    let segments = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
            .count()
    };
    while segments(dir.path()) < 2 {
        log.append(&batch(0, 1, 400)).unwrap();
    }
    log.sync_to(log.high_watermark()).unwrap();
    assert_eq!(io.dir_syncs() - before, 2);
}

#[test]
fn new_producer_ids_cannot_push_out_a_live_producer() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { max_producers_per_partition: 50, ..small_config() };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    for pid in 0..50 {
        log.append(&idempotent_batch(pid, 0, 0, 1)).unwrap();
    }
    let end = log.high_watermark();
    // A 51st producer id would evict producer 0, which appended just now: refused, and
    // nothing of the set is written.
    let refused = log.append(&idempotent_batch(50, 0, 0, 1)).unwrap_err();
    assert!(matches!(refused, StorageError::TooManyProducers { limit: 50 }), "{refused}");
    assert_eq!(log.high_watermark(), end);
    // Producer 0's retry is still recognised as a duplicate.
    assert_eq!(log.append(&idempotent_batch(0, 0, 0, 1)).unwrap().base_offset, 0);
    assert_eq!(log.producer_count(), 50);
}

#[test]
fn a_close_for_the_data_directory_syncs_nothing_and_a_clean_open_finds_everything() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FaultyIo::new());
    let handles = super::SegmentHandles::new(super::DEFAULT_OPEN_SEGMENTS);
    let unclean = super::CleanShutdown::DataDir { clean: false };
    let log =
        PartitionLog::open_shared(dir.path(), small_config(), io.clone(), handles.clone(), unclean)
            .unwrap();
    for i in 0..600 {
        log.append(&idempotent_batch(7, 0, i, 1)).unwrap();
    }
    assert!(log.segment_base_offsets().len() > 1, "rolled: sealed segments left unsynced");
    let before = (io.syncs(), io.file_syncs(), io.dir_syncs());
    log.close_unsynced().unwrap();
    assert_eq!((io.syncs(), io.file_syncs(), io.dir_syncs()), before, "no sync of any kind");
    assert!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .any(|e| { e.unwrap().file_name().to_string_lossy().ends_with(".snapshot") }),
        "the producer snapshot is written, for the file system sync to make durable"
    );
    drop(log);
    super::sync_file_system(dir.path()).unwrap();

    let clean = super::CleanShutdown::DataDir { clean: true };
    let log = PartitionLog::open_shared(dir.path(), small_config(), io, handles, clean).unwrap();
    assert_eq!(log.log_end_offset(), 600);
    assert_eq!(log.flushed_offset(), 600, "a clean open trusts every byte");
    assert_eq!(log.producers()[0].last_sequence, 599);
}

#[test]
fn a_clean_open_without_a_producer_snapshot_replays_nothing() {
    // A clean close leaves a snapshot whenever the log holds producers; without one a
    // clean open rebuilds no producer state from the log. Shown by removing the snapshot
    // the close wrote: after a crash (no marker) the replay finds the producer again.
    let dir = tempfile::tempdir().unwrap();
    let handles = super::SegmentHandles::new(super::DEFAULT_OPEN_SEGMENTS);
    let open = |clean| {
        let clean_shutdown = super::CleanShutdown::DataDir { clean };
        let io = Arc::new(super::io::RealIo);
        PartitionLog::open_shared(dir.path(), small_config(), io, handles.clone(), clean_shutdown)
            .unwrap()
    };
    let log = open(false);
    for i in 0..10 {
        log.append(&idempotent_batch(7, 0, i, 1)).unwrap();
    }
    log.close().unwrap();
    drop(log);
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "snapshot") {
            std::fs::remove_file(path).unwrap();
        }
    }
    assert!(open(true).producers().is_empty(), "clean: nothing replayed");
    assert_eq!(open(false).producers()[0].last_sequence, 9, "after a crash: replayed");
}

#[test]
fn index_blocks_are_reserved_only_for_entries_due_and_the_log_file_grows_by_its_reservations() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FaultyIo::new());
    // Index interval 512: a 461-byte batch, then another, add no entry; the third does.
    assert_eq!(batch(0, 1, 400).len(), 461);
    let config = LogConfig { segment_bytes: 1 << 20, ..small_config() };
    let log = PartitionLog::open_with_io(dir.path(), config, io.clone()).unwrap();
    let file_len = |ext: &str| {
        std::fs::metadata(dir.path().join(format!("{:020}.{ext}", 0))).map_or(0, |m| m.len())
    };
    log.append(&batch(0, 1, 400)).unwrap();
    log.append(&batch(0, 1, 400)).unwrap();
    assert_eq!(io.reserves(), 1, "the log's blocks only: no index entry is due yet");
    assert_eq!((file_len("index"), file_len("timeindex")), (0, 0));
    let log_len = file_len("log");
    assert!(log_len > 2 * 461, "the reservation extends the file: {log_len}");
    assert!(log_len < 1 << 20, "not to the segment's capacity: {log_len}");
    log.append(&batch(0, 1, 400)).unwrap();
    assert_eq!(io.reserves(), 3, "an entry is due: both indexes reserve a block");
    // One block each (the time index's mapping is 4096 bytes cut to whole 12-byte entries).
    assert_eq!((file_len("index"), file_len("timeindex")), (4096, 4092));
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(log.read(0, 1 << 20).unwrap().slice.map(|s| s.len), Some(3 * 461));
}
