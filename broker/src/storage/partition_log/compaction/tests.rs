use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use sluice_protocol::record::{Compression, RecordBatch};

use super::*;
use crate::storage::cleaner::tests::keyed_batch;
use crate::storage::LogConfig;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

pub(super) fn compact_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        segment_index_bytes: 4096,
        index_interval_bytes: 256,
        cleanup_compact: true,
        cleanup_delete: false,
        delete_retention_ms: 1000,
        min_cleanable_dirty_ratio: 0.5,
        ..LogConfig::default()
    }
}

pub(super) fn resources(stop: &AtomicBool) -> CleanerResources<'_> {
    CleanerResources {
        map_bytes: 1 << 20,
        load_factor: 0.9,
        io_buffer_bytes: 4096,
        throttle: &|_| {},
        stop,
    }
}

/// (offset, key, value) of every record from the log start on.
pub(super) fn records(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
    let mut out = vec![];
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let bytes = log.read(offset, 1 << 20).unwrap().slice.unwrap().read_to_vec().unwrap();
        let mut pos = 0;
        while pos < bytes.len() {
            let b = RecordBatch::parse_verified(&bytes[pos..]).unwrap();
            let rs = b.records(1 << 20).unwrap();
            for r in rs.iter() {
                let r = r.unwrap();
                let key = String::from_utf8(r.key().unwrap().to_vec()).unwrap();
                let value = r.value().map(|v| String::from_utf8(v.to_vec()).unwrap());
                out.push((rs.offset(&r), key, value));
            }
            pos += b.size();
            offset = b.last_offset() + 1;
        }
    }
    out
}

/// What a compacted reading of everything appended must show: the last record per key
/// (tombstones included), at its offset.
pub(super) fn latest(all: &[(i64, String, Option<String>)]) -> Vec<(i64, String, Option<String>)> {
    let mut last: BTreeMap<&str, (i64, Option<String>)> = BTreeMap::new();
    for (o, k, v) in all {
        last.insert(k, (*o, v.clone()));
    }
    let mut out: Vec<_> = last.into_iter().map(|(k, (o, v))| (o, k.to_owned(), v)).collect();
    out.sort();
    out
}

/// Appends `rounds` overwrites of `keys` keys (every 7th record of a round after the
/// first a tombstone), one batch of 10 records per append.
fn fill(log: &PartitionLog, codec: Compression, keys: usize, rounds: usize, ts: i64) {
    let mut n = 0usize;
    for round in 0..rounds {
        for chunk in (0..keys).collect::<Vec<_>>().chunks(10) {
            let owned: Vec<(String, Option<String>)> = chunk
                .iter()
                .map(|k| {
                    n += 1;
                    let value =
                        (round == 0 || !n.is_multiple_of(7)).then(|| format!("v{round}-{k}-{n}"));
                    (format!("key-{k}"), value)
                })
                .collect();
            let recs: Vec<(Option<&str>, Option<&str>)> =
                owned.iter().map(|(k, v)| (Some(k.as_str()), v.as_deref())).collect();
            log.append(&keyed_batch(codec, 0, ts, &recs)).unwrap();
        }
    }
}

#[test]
fn a_pass_keeps_the_latest_record_per_key_at_its_offset_and_shrinks_the_log() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), compact_config()).unwrap();
        fill(&log, codec, 50, 12, 1_000);
        let before = records(&log);
        let size_before = log.size_bytes();
        let c = log.cleanable(10_000).unwrap();
        assert!(c.should_clean(), "{c:?}");
        assert_eq!(c.clean_bytes, 0);
        let stop = AtomicBool::new(false);
        let stats = log.clean(&resources(&stop), 10_000).unwrap().unwrap();
        assert!(stats.segments_cleaned + stats.segments_removed > 0, "{stats:?}");
        // The log start stays where it was: the first segment is kept, emptied or not.
        assert_eq!((log.log_start_offset(), log.segment_base_offsets()[0]), (0, 0));
        let active_base = *log.segment_base_offsets().last().unwrap();
        assert_eq!(stats.end_offset, active_base);
        // Sealed segments hold the latest record of each of their keys (as far as the
        // sealed segments tell: the active one is not read); the active one is as it was.
        let after = records(&log);
        let sealed: Vec<_> = before.iter().filter(|r| r.0 < active_base).cloned().collect();
        let expected: Vec<_> = latest(&sealed)
            .into_iter()
            .chain(before.iter().filter(|r| r.0 >= active_base).cloned())
            .collect();
        assert_eq!(after, expected, "{codec:?}");
        assert!(log.size_bytes() < size_before / 2, "{} of {size_before}", log.size_bytes());
        // Nothing dirty is left, so no pass is due.
        assert!(!log.cleanable(10_000).unwrap().should_clean());
        // Reopened (clean or after a crash) it reads the same.
        log.close().unwrap();
        drop(log);
        let log = PartitionLog::open(dir.path(), compact_config()).unwrap();
        assert_eq!(records(&log), after);
        std::fs::remove_file(dir.path().join(".clean-shutdown")).unwrap();
        drop(log);
        let log = PartitionLog::open(dir.path(), compact_config()).unwrap();
        assert_eq!(records(&log), after);
        assert_eq!(log.log_end_offset(), before.last().unwrap().0 + 1);
        assert_eq!(log.log_start_offset(), 0);
    }
}

#[test]
fn tombstones_go_after_delete_retention_ms_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), compact_config()).unwrap();
    fill(&log, Compression::Lz4, 30, 8, 1_000);
    let stop = AtomicBool::new(false);
    log.clean(&resources(&stop), 10_000).unwrap().unwrap();
    let active_base = *log.segment_base_offsets().last().unwrap();
    let tombstones = |log: &PartitionLog| {
        records(log).iter().filter(|r| r.0 < active_base && r.2.is_none()).count()
    };
    assert!(tombstones(&log) > 0);
    // The horizon is 10 000 + delete.retention.ms (1000).
    let c = log.cleanable(10_999).unwrap();
    assert!(!c.tombstones_expired && !c.should_clean(), "{c:?}");
    let c = log.cleanable(11_000).unwrap();
    assert!(c.tombstones_expired && c.should_clean(), "{c:?}");
    log.clean(&resources(&stop), 11_000).unwrap().unwrap();
    assert_eq!(tombstones(&log), 0);
    assert!(records(&log).iter().filter(|r| r.0 < active_base).all(|r| r.2.is_some()));
    assert!(!log.cleanable(11_000).unwrap().should_clean());
}

#[test]
fn min_compaction_lag_and_the_dirty_ratio_decide_what_is_cleanable() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        min_compaction_lag_ms: 5_000,
        delete_retention_ms: 1 << 40,
        ..compact_config()
    };
    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    fill(&log, Compression::None, 40, 4, 1_000);
    // Records at 1 000: too young at 5 000, old enough after 6 000.
    let young = log.cleanable(5_000).unwrap();
    assert_eq!((young.dirty_bytes, young.should_clean()), (0, false), "{young:?}");
    let old = log.cleanable(7_000).unwrap();
    assert!(old.dirty_bytes > 0 && old.should_clean(), "{old:?}");
    let stop = AtomicBool::new(false);
    log.clean(&resources(&stop), 7_000).unwrap().unwrap();
    let cleaned = log.cleanable(7_000).unwrap();
    assert_eq!((cleaned.dirty_bytes, cleaned.dirty_ratio()), (0, 0.0));
    // Dirt below the ratio is not cleaned until max.compaction.lag.ms makes it due.
    let config = LogConfig { min_compaction_lag_ms: 0, min_cleanable_dirty_ratio: 0.99, ..config };
    log.set_config(config.clone());
    let segments = log.segment_base_offsets().len();
    while log.segment_base_offsets().len() == segments {
        log.append(&keyed_batch(Compression::None, 0, 7_000, &[(Some("x"), Some("y")); 20]))
            .unwrap();
    }
    let c = log.cleanable(10_500).unwrap();
    assert!(c.dirty_bytes > 0 && c.dirty_ratio() < 0.99 && !c.should_clean(), "{c:?}");
    log.set_config(LogConfig { max_compaction_lag_ms: 10_000, ..config.clone() });
    // The oldest dirty batch is from about 1 000.
    assert!(!log.cleanable(10_500).unwrap().should_clean());
    assert!(log.cleanable(20_000).unwrap().should_clean());
    // A delete-only log is never cleaned.
    log.set_config(LogConfig { cleanup_compact: false, cleanup_delete: true, ..config });
    assert!(log.cleanable(20_000).is_none());
    assert!(log.clean(&resources(&stop), 20_000).unwrap().is_none());
}

#[test]
fn the_last_batch_of_a_producer_keeps_its_header_across_cleaning_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), compact_config()).unwrap();
    let mut b = keyed_batch(Compression::None, 0, 1_000, &[(Some("p"), Some("1"))]);
    sluice_protocol::record::batch::set_producer(&mut b, 42, 0, 0);
    log.append(&b).unwrap();
    fill(&log, Compression::None, 40, 3, 1_000);
    log.append(&keyed_batch(Compression::None, 0, 1_000, &[(Some("p"), Some("2"))])).unwrap();
    fill(&log, Compression::None, 40, 3, 1_000);
    let stop = AtomicBool::new(false);
    log.clean(&resources(&stop), 10_000).unwrap().unwrap();
    // The record is gone, its batch header stays at offset 0.
    assert!(records(&log).iter().all(|r| r.0 != 0));
    let first = log.read(0, 1 << 20).unwrap().slice.unwrap().read_to_vec().unwrap();
    let head = RecordBatch::parse_verified(&first).unwrap();
    assert_eq!((head.base_offset(), head.records_count(), head.producer_id()), (0, 0, 42));
    // The producer's next sequence is still 1 after a crash that also lost the producer
    // snapshots: the state is replayed from the log, where only the header is left.
    drop(log);
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "snapshot") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let log = PartitionLog::open(dir.path(), compact_config()).unwrap();
    let mut next = keyed_batch(Compression::None, 0, 1_000, &[(Some("p"), Some("3"))]);
    sluice_protocol::record::batch::set_producer(&mut next, 42, 0, 1);
    let end = log.log_end_offset();
    assert_eq!(log.append(&next).unwrap().base_offset, end);
    let mut bad = keyed_batch(Compression::None, 0, 1_000, &[(Some("p"), Some("4"))]);
    sluice_protocol::record::batch::set_producer(&mut bad, 42, 0, 5);
    assert!(matches!(log.append(&bad), Err(StorageError::OutOfOrderSequence { .. })));
}

pub(super) fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Segment files of `cleaned` that differ from `original`'s: what a pass swapped.
fn swapped(original: &Path, cleaned: &Path) -> Vec<String> {
    let mut out = vec![];
    for e in std::fs::read_dir(cleaned).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".log") || name.ends_with(".index") || name.ends_with(".timeindex") {
            let a = std::fs::read(original.join(&name)).ok();
            if a.as_deref() != Some(&std::fs::read(cleaned.join(&name)).unwrap()[..]) {
                out.push(name);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_crash_mid_swap_leaves_the_old_or_the_new_segment_never_a_mix() {
    let original = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(original.path(), compact_config()).unwrap();
    fill(&log, Compression::Snappy, 30, 20, 1_000);
    log.close().unwrap();
    let before = records(&log);
    drop(log);
    let cleaned = tempfile::tempdir().unwrap();
    copy_dir(original.path(), cleaned.path());
    let log = PartitionLog::open(cleaned.path(), compact_config()).unwrap();
    let stop = AtomicBool::new(false);
    log.clean(&resources(&stop), 10_000).unwrap().unwrap();
    let after = records(&log);
    let active =
        crate::storage::segment_file_name(*log.segment_base_offsets().last().unwrap(), "log");
    drop(log);
    let changed = swapped(original.path(), cleaned.path());
    let log_name = changed.iter().find(|n| n.ends_with(".log") && **n != active).unwrap().clone();
    let stem = log_name.strip_suffix(".log").unwrap();
    let new_files: Vec<String> =
        ["index", "timeindex", "log"].iter().map(|ext| format!("{stem}.{ext}")).collect();

    // Crashed while writing the .cleaned files: the old segment stays.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(original.path(), dir.path());
    for f in &new_files {
        std::fs::copy(cleaned.path().join(f), dir.path().join(format!("{f}.cleaned"))).unwrap();
    }
    let log = PartitionLog::open(dir.path(), compact_config()).unwrap();
    assert_eq!(records(&log), before);
    drop(log);
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| {
        let n = e.unwrap().file_name().into_string().unwrap();
        !n.ends_with(".cleaned") && !n.ends_with(".swap")
    }));

    // Crashed after the index .swap renames, before the log's (the commit point): old.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(original.path(), dir.path());
    for f in new_files.iter().filter(|f| !f.ends_with(".log")) {
        std::fs::copy(cleaned.path().join(f), dir.path().join(format!("{f}.swap"))).unwrap();
    }
    std::fs::copy(cleaned.path().join(&log_name), dir.path().join(format!("{log_name}.cleaned")))
        .unwrap();
    let log = PartitionLog::open(dir.path(), compact_config()).unwrap();
    assert_eq!(records(&log), before);
    drop(log);

    // Crashed after the commit, with any of the renames over the old files done: the
    // swap is finished and the segment reads as cleaned.
    for done in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(original.path(), dir.path());
        for (i, ext) in ["index", "timeindex", "log"].iter().enumerate() {
            let f = format!("{stem}.{ext}");
            let to = if i < done { f.clone() } else { format!("{f}.swap") };
            std::fs::copy(cleaned.path().join(&f), dir.path().join(to)).unwrap();
        }
        let log = PartitionLog::open(dir.path(), compact_config()).unwrap();
        let got = records(&log);
        // Only this segment is cleaned: its records are the cleaned ones, the rest old.
        let base: i64 = stem.parse().unwrap();
        let next = log.segment_base_offsets().into_iter().find(|&b| b > base).unwrap();
        let inside = |r: &&(i64, String, Option<String>)| r.0 >= base && r.0 < next;
        assert_eq!(
            got.iter().filter(inside).collect::<Vec<_>>(),
            after.iter().filter(inside).collect::<Vec<_>>(),
            "renames done before the crash: {done}"
        );
        assert_eq!(
            got.iter().filter(|r| !inside(r)).collect::<Vec<_>>(),
            before.iter().filter(|r| !inside(r)).collect::<Vec<_>>()
        );
    }
}
