//! The catalog, topic creation and deletion, and their failure paths.

use super::catalog::{CATALOG, HEADER};
use super::*;
use crate::config::{Config, TimestampType};

fn defaults() -> TopicDefaults {
    TopicDefaults::from_config(&Config::default())
}

#[test]
fn topics_survive_a_reload_with_ids_counts_and_configs() {
    let dir = tempfile::tempdir().unwrap();
    let (id, deleted_dir);
    {
        let topics = Topics::load(dir.path(), defaults()).unwrap();
        let mut cfg = BTreeMap::new();
        cfg.insert("retention.ms".to_string(), "1000".to_string());
        cfg.insert("message.timestamp.type".to_string(), "LogAppendTime".to_string());
        id = topics.create("orders", 3, 1, cfg, false).unwrap().id;
        topics.create("gone", 1, -1, BTreeMap::new(), false).unwrap();
        topics.add_partitions("orders", 5, false).unwrap();
        topics.delete("gone").unwrap();
        deleted_dir = dir.path().join("gone-0");
        topics.close_all();
    }
    assert!(!deleted_dir.exists());
    let topics = Topics::load(dir.path(), defaults()).unwrap();
    let t = topics.get("orders").unwrap();
    assert_eq!(t.id, id);
    assert_eq!(t.partitions.len(), 5);
    assert_eq!(topics.get_by_id(id).unwrap().name, "orders");
    let eff = topics.effective_config(&t);
    assert_eq!(eff.log.retention_ms, 1000);
    assert_eq!(eff.timestamp_type, TimestampType::LogAppendTime);
    assert!(topics.get("gone").is_none());
}

#[test]
fn a_topic_that_fails_part_way_leaves_no_partition_directories() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::load(dir.path(), defaults()).unwrap();
    // A file where partition 3's directory would go: its log cannot open.
    fs::write(dir.path().join("t-3"), b"in the way").unwrap();
    assert!(topics.create("t", 5, 1, BTreeMap::new(), false).is_err());
    assert!(topics.get("t").is_none());
    for i in 0..3 {
        assert!(!dir.path().join(format!("t-{i}")).exists(), "t-{i} left behind");
    }
    assert_eq!(fs::read(dir.path().join("t-3")).unwrap(), b"in the way");
    // The same for CreatePartitions.
    topics.create("t", 2, 1, BTreeMap::new(), false).unwrap();
    assert!(topics.add_partitions("t", 5, false).is_err());
    assert_eq!(topics.get("t").unwrap().partitions.len(), 2);
    assert!(!dir.path().join("t-2").exists());
    assert!(dir.path().join("t-1").exists());
}

#[test]
fn a_topic_whose_catalog_write_fails_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::load(dir.path(), defaults()).unwrap();
    topics.create("kept", 1, 1, BTreeMap::new(), false).unwrap();
    // A directory where the catalog's temporary file goes: the write fails.
    fs::create_dir(dir.path().join(format!("{CATALOG}.tmp"))).unwrap();
    assert!(topics.create("t", 2, 1, BTreeMap::new(), false).is_err());
    assert!(topics.get("t").is_none());
    assert!(!dir.path().join("t-0").exists());
    assert!(topics.add_partitions("kept", 3, false).is_err());
    assert_eq!(topics.get("kept").unwrap().partitions.len(), 1);
    assert!(!dir.path().join("kept-1").exists());
    assert!(topics.delete("kept").is_err());
    let kept = topics.get("kept").expect("a delete the catalog did not record keeps it");
    assert!(kept.partitions[0]
        .log()
        .unwrap()
        .append(&crate::storage::testing::batch(0, 1, 10))
        .is_ok());
    fs::remove_dir(dir.path().join(format!("{CATALOG}.tmp"))).unwrap();
    topics.create("t", 2, 1, BTreeMap::new(), false).unwrap();
    topics.delete("kept").unwrap();
    assert!(topics.get("kept").is_none());
}

#[test]
fn a_batch_is_checked_topic_by_topic_answered_in_order_and_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::load(dir.path(), defaults()).unwrap();
    let new = |name: &str, partitions| NewTopic {
        name: name.into(),
        partitions,
        replication_factor: -1,
        overrides: BTreeMap::new(),
    };
    let results = topics.create_all(
        vec![
            new("a", 2),
            new("bad/name", 1),
            new("b.x", 1),
            new("b_x", 1),
            new("a", 1),
            new("c", 0),
        ],
        false,
    );
    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(TopicError::InvalidName { .. })));
    assert!(results[2].is_ok());
    assert!(matches!(&results[3], Err(TopicError::Collides { existing, .. }) if existing == "b.x"));
    assert!(matches!(results[4], Err(TopicError::AlreadyExists(_))));
    assert!(matches!(results[5], Err(TopicError::InvalidPartitions { .. })));
    drop(results);
    topics.close_all();
    let reloaded = Topics::load(dir.path(), defaults()).unwrap();
    let names: Vec<String> = reloaded.list().iter().map(|t| t.name.clone()).collect();
    assert_eq!(names, ["a", "b.x"]);

    // A catalog write that fails fails every topic of the batch, and leaves no files.
    fs::create_dir(dir.path().join(format!("{CATALOG}.tmp"))).unwrap();
    let results = reloaded.create_all(vec![new("d", 1), new("e", 2)], false);
    assert!(results.iter().all(|r| matches!(r, Err(TopicError::Storage(_)))));
    assert!(reloaded.get("d").is_none() && reloaded.get("e").is_none());
    assert!(!dir.path().join("d-0").exists() && !dir.path().join("e-1").exists());
}

#[test]
fn a_new_topic_does_not_open_a_deleted_topics_leftover_directory() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::load(dir.path(), defaults()).unwrap();
    let t = topics.create("t", 1, 1, BTreeMap::new(), false).unwrap();
    t.partitions[0].append_blocking(&crate::storage::testing::batch(0, 3, 10)).unwrap();
    // What a crash after the catalog write of a deletion leaves: the directory.
    drop(t);
    topics.close_all();
    fs::write(
        dir.path().join(CATALOG),
        format!("{HEADER}\ncrc {:08x}\n", crc32fast::hash(format!("{HEADER}\n").as_bytes())),
    )
    .unwrap();
    let topics = Topics::load(dir.path(), defaults()).unwrap();
    assert!(topics.get("t").is_none());
    let t = topics.create("t", 1, 1, BTreeMap::new(), false).unwrap();
    assert_eq!(t.partitions[0].log().unwrap().high_watermark(), 0, "the new topic starts empty");
    let aside = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("t-0.orphaned-"))
        .count();
    assert_eq!(aside, 1, "the leftover is kept aside");
}

#[test]
fn clients_cannot_delete_grow_or_remove_records_of_internal_topics() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::load(dir.path(), defaults()).unwrap();
    // The broker creates its internal topics itself, through `create`.
    let keep = BTreeMap::from([
        ("cleanup.policy".to_owned(), "compact".to_owned()),
        ("retention.ms".to_owned(), "-1".to_owned()),
        ("retention.bytes".to_owned(), "-1".to_owned()),
    ]);
    // Both of them, `__consumer_offsets` (groups) and `__transaction_state` (the
    // transaction coordinator), the one rule.
    for internal in INTERNAL_TOPICS {
        topics.create(internal, 1, 1, keep.clone(), false).unwrap();
        for e in [
            topics.delete(internal).unwrap_err(),
            topics.add_partitions(internal, 2, false).unwrap_err(),
            refuse_if_internal(internal, ProtectedOperation::DeleteRecords).unwrap_err(),
            refuse_if_internal(internal, ProtectedOperation::Create).unwrap_err(),
        ] {
            assert!(matches!(e, TopicError::Internal { .. }), "{internal}: {e}");
        }
        assert_eq!(
            topics.delete(internal).unwrap_err().to_string(),
            format!("cannot delete internal topic {internal}")
        );
        assert_eq!(topics.get(internal).unwrap().partitions.len(), 1);
    }
    for look_alike in ["__consumer.offsets", "__transaction.state"] {
        let e = refuse_if_internal(look_alike, ProtectedOperation::Create).unwrap_err();
        assert!(matches!(e, TopicError::Internal { .. }), "{e}");
    }
    assert!(refuse_if_internal("orders", ProtectedOperation::Delete).is_ok());
}

#[test]
fn names_that_differ_only_by_dot_and_underscore_collide_even_when_created_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Arc::new(Topics::load(dir.path(), defaults()).unwrap());
    for round in 0..20 {
        let names = [format!("t.{round}"), format!("t_{round}")];
        let created: Vec<bool> = std::thread::scope(|s| {
            let tries: Vec<_> = names
                .iter()
                .map(|n| {
                    let topics = Arc::clone(&topics);
                    s.spawn(move || topics.create(n, 1, 1, BTreeMap::new(), false))
                })
                .collect();
            tries
                .into_iter()
                .map(|t| match t.join().unwrap() {
                    Ok(_) => true,
                    Err(TopicError::Collides { .. }) => false,
                    Err(e) => panic!("{e}"),
                })
                .collect()
        });
        assert_eq!(created.iter().filter(|c| **c).count(), 1, "round {round}: {created:?}");
    }
}

#[test]
fn invalid_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::load(dir.path(), defaults()).unwrap();
    assert!(matches!(
        topics.create("a/b", 1, 1, BTreeMap::new(), false),
        Err(TopicError::InvalidName { .. })
    ));
    assert!(matches!(
        topics.create("..", 1, 1, BTreeMap::new(), false),
        Err(TopicError::InvalidName { .. })
    ));
    assert!(matches!(
        topics.create("t", 0, 1, BTreeMap::new(), false),
        Err(TopicError::InvalidPartitions { .. })
    ));
    assert!(matches!(
        topics.create("t", 1, 3, BTreeMap::new(), false),
        Err(TopicError::InvalidReplicationFactor(3))
    ));
    let mut cfg = BTreeMap::new();
    cfg.insert("retention.ms".to_string(), "soon".to_string());
    assert!(matches!(topics.create("t", 1, 1, cfg, false), Err(TopicError::InvalidConfig { .. })));
    topics.create("t", 1, 1, BTreeMap::new(), true).unwrap();
    assert!(topics.get("t").is_none(), "validate-only creates nothing");
    topics.create("t", 1, 1, BTreeMap::new(), false).unwrap();
    assert!(matches!(
        topics.create("t", 1, 1, BTreeMap::new(), false),
        Err(TopicError::AlreadyExists(_))
    ));
    assert!(matches!(
        topics.add_partitions("t", 1, false),
        Err(TopicError::InvalidPartitions { .. })
    ));
}

#[test]
fn a_corrupt_catalog_is_an_error_not_an_empty_broker() {
    let dir = tempfile::tempdir().unwrap();
    {
        let topics = Topics::load(dir.path(), defaults()).unwrap();
        topics.create("x", 1, 1, BTreeMap::new(), false).unwrap();
    }
    let path = dir.path().join(CATALOG);
    let text = fs::read_to_string(&path).unwrap().replace("\tx\t", "\ty\t").replace("x\t", "z\t");
    fs::write(&path, text).unwrap();
    assert!(Topics::load(dir.path(), defaults()).is_err());
}

#[test]
fn the_internal_segment_size_reaches_every_log_and_no_topic_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { internal_segment_bytes: Some(4096), ..Config::default() };
    let defaults = TopicDefaults::from_config(&config);
    let segment_sizes = |topics: &Topics| -> Vec<u64> {
        let t = topics.get("t").unwrap();
        t.partitions.iter().map(|p| p.log().unwrap().config().segment_bytes).collect()
    };
    {
        let topics = Topics::load(dir.path(), defaults.clone()).unwrap();
        let mut cfg = BTreeMap::new();
        cfg.insert("segment.bytes".to_string(), "2097152".to_string());
        topics.create("t", 1, 1, cfg.clone(), false).unwrap();
        topics.add_partitions("t", 2, false).unwrap();
        assert_eq!(segment_sizes(&topics), [4096, 4096], "create, add partitions");
        topics.set_overrides("t", cfg, false).unwrap();
        topics.update_overrides("t", false, |o| Ok(o.clone())).unwrap();
        assert_eq!(segment_sizes(&topics), [4096, 4096], "alter, incremental alter");
        // The topic's own config is as set; only the logs run with the override.
        let t = topics.get("t").unwrap();
        assert_eq!(config_value(&topics.effective_config(&t), "segment.bytes"), "2097152");
        topics.close_all();
    }
    let topics = Topics::load(dir.path(), defaults).unwrap();
    assert_eq!(segment_sizes(&topics), [4096, 4096], "reload");
    let mut cfg = BTreeMap::new();
    cfg.insert("sluice.internal.log.segment.bytes".to_string(), "4096".to_string());
    assert!(matches!(topics.create("u", 1, 1, cfg, false), Err(TopicError::InvalidConfig { .. })));
}
