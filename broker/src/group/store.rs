//! `__consumer_offsets`: the group coordinator's internal topic, kept as every internal
//! topic is ([`crate::internal_log`]: one partition, read whole at start, compacted by
//! the log cleaner). Records are in Kafka's format ([`super::records`]).

use super::state::{GroupMachine, LogRecord};
use super::GroupError;
pub use crate::internal_log::LoadStats;
use crate::internal_log::{InternalLog, OpenError};
use crate::storage::StorageError;
use crate::topics::Topics;

/// Kafka's name for the internal topic.
pub const TOPIC: &str = "__consumer_offsets";
/// Settings beyond every internal topic's.
const EXTRA_CONFIGS: &[(&str, &str)] = &[];

/// The internal topic's partition.
#[derive(Debug)]
pub struct OffsetsLog(InternalLog);

impl OffsetsLog {
    /// Opens the internal topic, creating it on first use.
    ///
    /// # Errors
    /// The topic cannot be created or has no partition 0.
    pub fn open(topics: &Topics) -> Result<OffsetsLog, GroupError> {
        match InternalLog::open(topics, TOPIC, EXTRA_CONFIGS) {
            Ok(log) => Ok(OffsetsLog(log)),
            Err(OpenError::Topic(e)) => Err(e.into()),
            Err(OpenError::NoPartition) => Err(GroupError::NoPartition),
        }
    }

    /// Records between the log start and end offsets.
    pub fn records(&self) -> i64 {
        self.0.records()
    }

    /// Reads the whole log into a loading coordinator. Blocking.
    ///
    /// # Errors
    /// A storage error reading the log, or a batch that fails its checks.
    pub fn load_into(&self, c: &mut GroupMachine) -> Result<LoadStats, StorageError> {
        self.0.load(|key, value| c.load(key, value))
    }

    /// Appends each write as one batch, all in one append. Blocking.
    ///
    /// # Errors
    /// The storage error; nothing of the set was appended.
    pub fn append(&self, writes: &[Vec<LogRecord>], now: i64) -> Result<(), StorageError> {
        self.0.append(writes, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::group::request::{CommitRequest, GroupRequest, OffsetToCommit};
    use crate::group::state::{GroupConfig, Input, Output};
    use crate::group::types::TopicPartition;
    use crate::topics::TopicDefaults;

    /// Runs `request` and appends what it writes.
    fn run(c: &mut GroupMachine, log: &OffsetsLog, request: GroupRequest, now: i64) {
        for o in c.step(Input::Request { token: 1, request }, now) {
            if let Output::Write { id, records } = o {
                log.append(&[records], now).unwrap();
                c.step(Input::Written { id, result: Ok(()) }, now);
            }
        }
    }

    fn commit(group: &str, partition: i32, offset: i64) -> GroupRequest {
        GroupRequest::Commit(CommitRequest {
            group_id: group.into(),
            generation: -1,
            member_id: String::new(),
            instance_id: None,
            retention_ms: -1,
            offsets: vec![OffsetToCommit {
                partition: TopicPartition { topic: "t".into(), partition },
                offset,
                leader_epoch: -1,
                commit_timestamp: -1,
                metadata: None,
            }],
        })
    }

    /// (records, tombstones) a load reads.
    fn census(log: &OffsetsLog) -> (u64, u64) {
        let (mut records, mut tombstones) = (0, 0);
        log.0
            .load(|_, value| {
                records += 1;
                tombstones += u64::from(value.is_none());
                Ok::<(), String>(())
            })
            .unwrap();
        (records, tombstones)
    }

    #[test]
    fn the_log_cleaner_leaves_the_coordinators_state_and_drops_tombstones_past_their_horizon() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { internal_segment_bytes: Some(4096), ..Config::default() };
        let defaults = TopicDefaults::from_config(&config);
        let day = 24 * 3600 * 1000;
        let live = {
            let topics = Topics::load(dir.path(), defaults.clone()).unwrap();
            let log = OffsetsLog::open(&topics).unwrap();
            let mut c = GroupMachine::new(GroupConfig::default(), 1);
            c.finish_loading(0);
            run(&mut c, &log, commit("gone", 0, 7), 1000);
            for i in 0..2000 {
                run(&mut c, &log, commit(&format!("g{}", i % 4), (i % 5) as i32, i), 1000);
            }
            run(&mut c, &log, GroupRequest::Delete(vec!["gone".into()]), 1000);
            // The active segment is never cleaned: roll it with more of the same.
            for i in 0..100 {
                run(&mut c, &log, commit("g0", 0, 2000 + i), 1000);
            }
            assert_eq!(log.records(), 2103);
            let stats = log.0.clean(2000);
            assert!(stats.segments_cleaned + stats.segments_removed > 10, "{stats:?}");
            let (records, tombstones) = census(&log);
            assert!(records < 200, "{records} records left of 2103");
            assert_eq!(tombstones, 2, "the deleted group's offset and group records, for now");
            topics.close_all();
            c.snapshot()
        };
        let topics = Topics::load(dir.path(), defaults).unwrap();
        let log = OffsetsLog::open(&topics).unwrap();
        let mut c = GroupMachine::new(GroupConfig::default(), 1);
        log.load_into(&mut c).unwrap();
        assert_eq!(c.snapshot(), live, "the cleaned log loads into the state it was cut from");
        assert!(c.group("gone").is_none());
        // Past delete.retention.ms (a day by default) a pass drops the tombstone.
        log.0.clean(2000 + day + 1);
        assert_eq!(census(&log).1, 0);
        let mut again = GroupMachine::new(GroupConfig::default(), 1);
        log.load_into(&mut again).unwrap();
        assert_eq!(again.snapshot(), live);
        let t = topics.get(TOPIC).unwrap();
        assert_eq!(topics.effective_config(&t).log.retention_ms, -1);
    }

    #[test]
    fn a_broker_wide_size_retention_does_not_reach_the_offsets_topic() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.log.retention_bytes = 1 << 20;
        let topics = Topics::load(dir.path(), TopicDefaults::from_config(&config)).unwrap();
        OffsetsLog::open(&topics).unwrap();
        let t = topics.get(TOPIC).unwrap();
        let log = topics.effective_config(&t).log;
        assert_eq!((log.retention_ms, log.retention_bytes), (-1, -1));
    }
}
