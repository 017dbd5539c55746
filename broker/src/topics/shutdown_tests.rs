//! The data directory's clean-shutdown marker: one file for every partition.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::*;
use crate::config::Config;
use crate::storage::testing::batch;
use crate::storage::CLEAN_SHUTDOWN_MARKER;

fn defaults() -> TopicDefaults {
    TopicDefaults::from_config(&Config::default())
}

fn files_of(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

#[test]
fn a_clean_close_writes_one_marker_and_an_idle_partition_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join(CLEAN_SHUTDOWN_MARKER);
    {
        let topics = Topics::load(dir.path(), defaults()).unwrap();
        topics.create("t", 2, 1, BTreeMap::new(), false).unwrap();
        let p0 = topics.get("t").unwrap().partitions[0].clone();
        p0.append_blocking(&batch(0, 5, 10)).unwrap();
        topics.close_all();
    }
    assert!(marker.exists());
    assert_eq!(
        files_of(&dir.path().join("t-1")),
        [
            "00000000000000000000.index",
            "00000000000000000000.log",
            "00000000000000000000.timeindex"
        ],
        "a partition that never took a record writes no checkpoint and no marker"
    );
    assert!(!dir.path().join("t-0").join(CLEAN_SHUTDOWN_MARKER).exists());
    // The marker makes the recovery point moot: the close writes none (one sync of the
    // file system stands for each partition's syncs).
    assert!(!dir.path().join("t-0/recovery-point-offset").exists());

    let topics = Topics::load(dir.path(), defaults()).unwrap();
    assert!(!marker.exists(), "removed at start, before any append");
    let p0 = topics.get("t").unwrap().partitions[0].clone();
    assert_eq!(p0.log().unwrap().log_end_offset(), 5);
    assert_eq!(p0.log().unwrap().flushed_offset(), 5, "a clean start trusts every byte");
    p0.append_blocking(&batch(5, 3, 10)).unwrap();
    drop((p0, topics)); // a crash: no close

    let topics = Topics::load(dir.path(), defaults()).unwrap();
    let p0 = topics.get("t").unwrap().partitions[0].clone();
    assert_eq!(p0.log().unwrap().log_end_offset(), 8, "recovery found the appended records");
    assert_eq!(
        p0.log().unwrap().flushed_offset(),
        0,
        "after a crash only the recovery point is trusted: none was written, so the base"
    );
}

#[test]
fn a_partitions_own_marker_from_an_older_broker_still_counts_until_its_first_append() {
    let dir = tempfile::tempdir().unwrap();
    {
        let topics = Topics::load(dir.path(), defaults()).unwrap();
        topics.create("t", 1, 1, BTreeMap::new(), false).unwrap();
        topics.get("t").unwrap().partitions[0].append_blocking(&batch(0, 4, 10)).unwrap();
        topics.close_all();
    }
    // As an older broker left it: the partition's marker, none for the data directory.
    fs::remove_file(dir.path().join(CLEAN_SHUTDOWN_MARKER)).unwrap();
    let own = dir.path().join("t-0").join(CLEAN_SHUTDOWN_MARKER);
    fs::write(&own, b"").unwrap();
    let topics = Topics::load(dir.path(), defaults()).unwrap();
    let p0 = topics.get("t").unwrap().partitions[0].clone();
    assert_eq!(p0.log().unwrap().flushed_offset(), 4, "opened clean");
    assert!(own.exists());
    p0.append_blocking(&batch(4, 1, 10)).unwrap();
    assert!(!own.exists(), "gone before the first append");
}
