//! `__consumer_offsets`: the group coordinator's internal topic, kept as every internal
//! topic is ([`crate::internal_log`]: one partition, read whole at start, compacted by a
//! snapshot rewrite). Records are in Kafka's format ([`super::records`]).

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

    /// Appends a snapshot of every live record and drops everything before it. Blocking.
    ///
    /// # Errors
    /// The storage error of the append or of moving the log start.
    pub fn compact(&self, snapshot: &[LogRecord], now: i64) -> Result<i64, StorageError> {
        self.0.compact(snapshot, now)
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

    fn commit(c: &mut GroupMachine, log: &OffsetsLog, group: &str, offset: i64, now: i64) {
        let request = GroupRequest::Commit(CommitRequest {
            group_id: group.into(),
            generation: -1,
            member_id: String::new(),
            instance_id: None,
            retention_ms: -1,
            offsets: vec![OffsetToCommit {
                partition: TopicPartition { topic: "t".into(), partition: 0 },
                offset,
                leader_epoch: -1,
                commit_timestamp: -1,
                metadata: None,
            }],
        });
        for o in c.step(Input::Request { token: 1, request }, now) {
            if let Output::Write { id, records } = o {
                log.append(&[records], now).unwrap();
                c.step(Input::Written { id, result: Ok(()) }, now);
            }
        }
    }

    #[test]
    fn offsets_survive_a_reopen_and_compaction_keeps_only_live_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.log.segment_bytes = 1 << 20;
        let defaults = TopicDefaults::from_config(&config);
        {
            let topics = Topics::load(dir.path(), defaults.clone()).unwrap();
            let log = OffsetsLog::open(&topics).unwrap();
            let mut c = GroupMachine::new(GroupConfig::default(), 1);
            c.finish_loading(0);
            for i in 0..200 {
                commit(&mut c, &log, &format!("g{}", i % 4), i, 1000);
            }
            assert_eq!(log.records(), 200);
            let snapshot = c.snapshot();
            assert_eq!(snapshot.len(), 4);
            log.compact(&snapshot, 2000).unwrap();
            assert_eq!(log.records(), 4, "only the snapshot is left to read");
            commit(&mut c, &log, "g0", 1000, 3000);
            topics.close_all();
        }
        let topics = Topics::load(dir.path(), defaults).unwrap();
        let log = OffsetsLog::open(&topics).unwrap();
        let mut c = GroupMachine::new(GroupConfig::default(), 1);
        let stats = log.load_into(&mut c).unwrap();
        assert_eq!(stats, LoadStats { records: 5, skipped: 0 });
        let tp = TopicPartition { topic: "t".into(), partition: 0 };
        assert_eq!(c.group("g0").unwrap().offsets[&tp].offset, 1000);
        assert_eq!(c.group("g3").unwrap().offsets[&tp].offset, 199);
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
