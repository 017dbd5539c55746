//! `__transaction_state`: the transaction coordinator's internal topic, kept as every
//! internal topic is ([`crate::internal_log`]: one partition, read whole at start,
//! compacted by the log cleaner). Records are in the format of [`super::records`].

use super::state::{LogRecord, TxnMachine};
use super::TxnError;
pub use crate::internal_log::LoadStats;
use crate::internal_log::{InternalLog, OpenError};
use crate::storage::StorageError;
use crate::topics::Topics;

/// Kafka's name for the internal topic.
pub const TOPIC: &str = "__transaction_state";
/// Settings beyond every internal topic's: one transaction's record, bounded by the
/// state machine's limits, fits in a batch.
const EXTRA_CONFIGS: &[(&str, &str)] = &[("max.message.bytes", "33554432")];

/// The internal topic's partition.
#[derive(Debug)]
pub struct TxnLog(InternalLog);

impl TxnLog {
    /// Opens the internal topic, creating it on first use.
    ///
    /// # Errors
    /// The topic cannot be created or has no partition 0.
    pub fn open(topics: &Topics) -> Result<TxnLog, TxnError> {
        match InternalLog::open(topics, TOPIC, EXTRA_CONFIGS) {
            Ok(log) => Ok(TxnLog(log)),
            Err(OpenError::Topic(e)) => Err(e.into()),
            Err(OpenError::NoPartition) => Err(TxnError::NoPartition),
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
    pub fn load_into(&self, c: &mut TxnMachine) -> Result<LoadStats, StorageError> {
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
    use crate::topic_config::check_internal;
    use crate::topics::TopicDefaults;
    use crate::txn::request::TxnRequest;
    use crate::txn::state::{Input, Output, ProducerIdSource, TxnConfig};

    #[derive(Debug)]
    struct Ids;
    impl ProducerIdSource for Ids {
        fn next_id(&self) -> Result<i64, sluice_protocol::error_code::ErrorCode> {
            Ok(1)
        }
    }

    fn init(c: &mut TxnMachine, log: &TxnLog, txn: &str) {
        let request =
            TxnRequest::InitProducerId { txn_id: txn.into(), timeout_ms: 1000, expected: None };
        for o in c.step(Input::Request { token: 1, request }, 1000) {
            if let Output::Write { id, record } = o {
                log.append(&[vec![record]], 1000).unwrap();
                c.step(Input::Written { id, result: Ok(()) }, 1000);
            }
        }
    }

    #[test]
    fn transactions_survive_a_reopen_and_the_log_cleaner_keeps_only_live_records() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { internal_segment_bytes: Some(1024), ..Config::default() };
        let defaults = TopicDefaults::from_config(&config);
        {
            let topics = Topics::load(dir.path(), defaults.clone()).unwrap();
            let log = TxnLog::open(&topics).unwrap();
            let mut c = TxnMachine::new(TxnConfig::default(), std::sync::Arc::new(Ids));
            c.finish_loading(0);
            for i in 0..400 {
                init(&mut c, &log, &format!("t{}", i % 4));
            }
            assert_eq!(log.records(), 400);
            let stats = log.0.clean(2000);
            assert!(stats.segments_cleaned + stats.segments_removed > 10, "{stats:?}");
            topics.close_all();
        }
        let topics = Topics::load(dir.path(), defaults).unwrap();
        let log = TxnLog::open(&topics).unwrap();
        let mut c = TxnMachine::new(TxnConfig::default(), std::sync::Arc::new(Ids));
        let stats = log.load_into(&mut c).unwrap();
        // The four ids' latest records, and what is in the active segment.
        assert!(stats.records < 40, "{stats:?} of 400 records");
        assert_eq!(c.txn("t3").unwrap().producer_epoch, 99, "100 inits of t3: epochs 0..=99");
        let t = topics.get(TOPIC).unwrap();
        assert!(check_internal(TOPIC, &topics.effective_config(&t)).is_ok());
    }
}
