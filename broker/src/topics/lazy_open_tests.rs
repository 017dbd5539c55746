//! Partitions open on first use, except those a crash left to recover: the ones written
//! since the last clean shutdown, recovered before the broker serves.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::*;
use crate::config::Config;
use crate::storage::testing::batch;
use crate::storage::{StorageError, CLEAN_SHUTDOWN_MARKER, RECOVERY_JOURNAL};

fn defaults() -> TopicDefaults {
    TopicDefaults::from_config(&Config::default())
}

/// A data directory closed cleanly with topic `t` of `n` partitions, each holding 4
/// records.
fn closed_cleanly(dir: &Path, n: i32) {
    let topics = Topics::load(dir, defaults()).unwrap();
    topics.create("t", n, 1, BTreeMap::new(), false).unwrap();
    for p in &topics.get("t").unwrap().partitions {
        p.append_blocking(&batch(0, 4, 10)).unwrap();
    }
    topics.close_all();
}

fn partition(topics: &Topics, index: usize) -> Arc<Partition> {
    Arc::clone(&topics.get("t").unwrap().partitions[index])
}

#[test]
fn a_clean_start_opens_nothing_and_the_first_use_opens_the_log() {
    let dir = tempfile::tempdir().unwrap();
    closed_cleanly(dir.path(), 3);
    let topics = Topics::load(dir.path(), defaults()).unwrap();
    let all = topics.get("t").unwrap().partitions.clone();
    assert!(all.iter().all(|p| p.opened().is_none()), "nothing opened at start");
    assert_eq!(topics.segment_handles.opened_total(), 0, "no segment file opened");

    let p1 = partition(&topics, 1);
    let read = p1.read(0, 1 << 20).unwrap();
    assert_eq!(read.high_watermark, 4);
    assert!(p1.opened().is_some());
    assert!(all[0].opened().is_none() && all[2].opened().is_none(), "only the one used");
    p1.append_blocking(&batch(4, 2, 10)).unwrap();
    assert_eq!(p1.log().unwrap().log_end_offset(), 6);
}

#[test]
fn a_config_changed_before_the_open_is_the_one_the_log_opens_with() {
    let dir = tempfile::tempdir().unwrap();
    closed_cleanly(dir.path(), 1);
    let topics = Topics::load(dir.path(), defaults()).unwrap();
    let overrides = BTreeMap::from([("retention.ms".to_owned(), "5000".to_owned())]);
    topics.set_overrides("t", overrides, false).unwrap();
    let p = partition(&topics, 0);
    assert!(p.opened().is_none(), "a config change opens nothing");
    assert_eq!(p.config().retention_ms, 5000);
    assert_eq!(p.log().unwrap().config().retention_ms, 5000);
}

#[test]
fn a_stop_after_a_clean_start_leaves_read_and_unused_partitions_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    closed_cleanly(dir.path(), 3);
    // Names, lengths and modification times: a partition only read is not extended at
    // open and trimmed at close, and one not used is not opened.
    let listing = |i: i32| {
        let mut files: Vec<(String, u64, std::time::SystemTime)> =
            fs::read_dir(dir.path().join(format!("t-{i}")))
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    let m = e.metadata().unwrap();
                    (e.file_name().into_string().unwrap(), m.len(), m.modified().unwrap())
                })
                .collect();
        files.sort();
        files
    };
    let before = [listing(1), listing(2)];
    std::thread::sleep(std::time::Duration::from_millis(20));
    {
        let topics = Topics::load(dir.path(), defaults()).unwrap();
        partition(&topics, 0).append_blocking(&batch(4, 1, 10)).unwrap();
        let read = partition(&topics, 1).read(0, 1 << 20).unwrap();
        assert_eq!(read.slice.unwrap().read_to_vec().unwrap().len(), batch(0, 4, 10).len());
        topics.close_all();
    }
    assert!(dir.path().join(CLEAN_SHUTDOWN_MARKER).exists(), "the stop was clean");
    assert_eq!([listing(1), listing(2)], before);
    let topics = Topics::load(dir.path(), defaults()).unwrap();
    assert_eq!(partition(&topics, 0).log().unwrap().log_end_offset(), 5);
    assert_eq!(partition(&topics, 1).log().unwrap().log_end_offset(), 4);
    assert_eq!(partition(&topics, 2).log().unwrap().log_end_offset(), 4);
}

fn opened(topics: &Topics) -> Vec<bool> {
    topics.get("t").unwrap().partitions.iter().map(|p| p.opened().is_some()).collect()
}

#[test]
fn a_crash_start_recovers_only_the_partitions_written_since_the_last_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    closed_cleanly(dir.path(), 3);
    {
        let topics = Topics::load(dir.path(), defaults()).unwrap();
        partition(&topics, 1).append_blocking(&batch(4, 2, 10)).unwrap();
        partition(&topics, 2).read(0, 1024).unwrap();
        // A crash: no close, no marker.
    }
    let topics = Topics::load(dir.path(), defaults()).unwrap();
    assert_eq!(opened(&topics), [false, true, false], "only the written one, before serving");
    assert_eq!(partition(&topics, 1).log().unwrap().log_end_offset(), 6);
    // Recovered from its recovery point: the clean close before left none (a start after
    // it trusts every byte), so from the log's base.
    assert_eq!(partition(&topics, 1).log().unwrap().flushed_offset(), 0, "recovered");
    assert_eq!(partition(&topics, 0).log().unwrap().log_end_offset(), 4);
    drop(topics);

    // Another crash, with no write in between: its recovery may not have reached the
    // disk, so it is recovered again.
    let topics = Topics::load(dir.path(), defaults()).unwrap();
    assert_eq!(opened(&topics), [false, true, false]);
    topics.close_all();
    assert!(!dir.path().join(RECOVERY_JOURNAL).exists(), "a clean stop removes the journal");
    let topics = Topics::load(dir.path(), defaults()).unwrap();
    assert_eq!(opened(&topics), [false, false, false]);
}

#[test]
fn partitions_created_just_before_a_crash_are_recovered() {
    let dir = tempfile::tempdir().unwrap();
    closed_cleanly(dir.path(), 1);
    {
        let topics = Topics::load(dir.path(), defaults()).unwrap();
        topics.add_partitions("t", 3, false).unwrap();
    }
    let topics = Topics::load(dir.path(), defaults()).unwrap();
    assert_eq!(opened(&topics), [false, true, true]);
}

#[test]
fn a_crash_start_without_a_journal_recovers_every_partition() {
    // An older broker's data directory after a crash: no marker and no journal.
    let dir = tempfile::tempdir().unwrap();
    closed_cleanly(dir.path(), 2);
    fs::remove_file(dir.path().join(CLEAN_SHUTDOWN_MARKER)).unwrap();
    assert!(!dir.path().join(RECOVERY_JOURNAL).exists());
    let topics = Topics::load(dir.path(), defaults()).unwrap();
    assert_eq!(opened(&topics), [true, true]);
    assert_eq!(partition(&topics, 1).log().unwrap().log_end_offset(), 4);
}

#[test]
fn a_partition_that_cannot_open_fails_its_own_uses_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    closed_cleanly(dir.path(), 2);
    // Something in the way of partition 1's directory.
    let p1_dir = dir.path().join("t-1");
    fs::remove_dir_all(&p1_dir).unwrap();
    fs::write(&p1_dir, b"not a directory").unwrap();
    let topics = Topics::load(dir.path(), defaults()).expect("the start does not open it");
    let p1 = partition(&topics, 1);
    assert!(p1.read(0, 1024).is_err());
    assert!(p1.log().is_err(), "tried again, failing again");
    assert_eq!(partition(&topics, 0).read(0, 1 << 20).unwrap().high_watermark, 4);
    // The file is taken away: the next use opens the partition (a new, empty log).
    fs::remove_file(&p1_dir).unwrap();
    assert_eq!(p1.log().unwrap().log_end_offset(), 0);
}

#[test]
fn a_topic_deleted_before_its_partitions_opened_is_gone_and_they_never_open() {
    let dir = tempfile::tempdir().unwrap();
    closed_cleanly(dir.path(), 2);
    let topics = Topics::load(dir.path(), defaults()).unwrap();
    let p0 = partition(&topics, 0);
    topics.delete("t").unwrap();
    assert!(!dir.path().join("t-0").exists() && !dir.path().join("t-1").exists());
    assert!(matches!(p0.log(), Err(StorageError::Closed { .. })));
    assert!(!dir.path().join("t-0").exists(), "a late use does not recreate its directory");
}

#[test]
fn only_a_partition_with_a_sealed_segment_may_need_retention_or_cleaning_before_it_opens() {
    let dir = tempfile::tempdir().unwrap();
    {
        let topics = Topics::load(dir.path(), defaults()).unwrap();
        let small = BTreeMap::from([("segment.bytes".to_owned(), "1048576".to_owned())]);
        topics.create("t", 2, 1, small, false).unwrap();
        // Partition 0 rolls; partition 1 keeps one segment.
        let p0 = partition(&topics, 0);
        for i in 0..3 {
            p0.append_blocking(&batch(i * 700, 700, 600_000)).unwrap();
        }
        partition(&topics, 1).append_blocking(&batch(0, 4, 10)).unwrap();
        assert!(p0.log().unwrap().segment_base_offsets().len() > 1);
        topics.close_all();
    }
    let topics = Topics::load(dir.path(), defaults()).unwrap();
    assert!(partition(&topics, 0).may_have_sealed_segments());
    assert!(!partition(&topics, 1).may_have_sealed_segments());
    assert_eq!(opened(&topics), [false, false], "looked up without opening");
}
