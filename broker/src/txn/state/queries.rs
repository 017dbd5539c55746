//! DescribeTransactions and ListTransactions: reads of the coordinator's state.

use super::*;
use crate::txn::request::{ListFilter, TxnDescription, TxnListing};

impl TxnMachine {
    /// DescribeTransactions of one id.
    pub(super) fn describe(&self, id: String) -> TxnDescription {
        let Some(t) = self.txns.get(&id).filter(|t| !self.dead(&t.id)) else {
            return not_found(id, ErrorCode::TRANSACTIONAL_ID_NOT_FOUND);
        };
        let mut partitions: Vec<TopicPartition> = t.partitions.iter().cloned().collect();
        if !t.offsets.is_empty() {
            partitions
                .push(TopicPartition { topic: Arc::from(crate::txn::OFFSETS_TOPIC), partition: 0 });
            partitions.sort();
            partitions.dedup();
        }
        TxnDescription {
            txn_id: id,
            error: ErrorCode::NONE,
            state: t.state,
            timeout_ms: t.timeout_ms,
            start_ms: t.start_ms,
            producer_id: t.producer_id,
            producer_epoch: t.producer_epoch,
            partitions,
        }
    }

    /// ListTransactions: the unknown state names, and the ids that match the filter.
    pub(super) fn list(&self, f: &ListFilter, now: i64) -> (Vec<String>, Vec<TxnListing>) {
        let mut states = BTreeSet::new();
        let mut unknown = Vec::new();
        for name in &f.states {
            match TxnState::from_name(name) {
                Some(s) => {
                    states.insert(s);
                }
                None => unknown.push(name.clone()),
            }
        }
        // Only unknown names: nothing can match (Kafka answers none then too).
        if !f.states.is_empty() && states.is_empty() {
            return (unknown, Vec::new());
        }
        let pids: BTreeSet<i64> = f.producer_ids.iter().copied().collect();
        let mut listed: Vec<TxnListing> = self
            .txns
            .values()
            .filter(|t| !self.dead(&t.id))
            .filter(|t| pids.is_empty() || pids.contains(&t.producer_id))
            .filter(|t| states.is_empty() || states.contains(&t.state))
            // An id that never began a transaction has run for no time at all.
            .filter(|t| {
                f.duration_ms < 0
                    || (t.start_ms >= 0 && now.saturating_sub(t.start_ms) > f.duration_ms)
            })
            .map(|t| TxnListing {
                txn_id: t.id.clone(),
                producer_id: t.producer_id,
                state: t.state,
            })
            .collect();
        listed.sort_by(|a, b| a.txn_id.cmp(&b.txn_id));
        (unknown, listed)
    }
}

/// The description of an id that is not there (or cannot be described now).
pub(super) fn not_found(id: String, error: ErrorCode) -> TxnDescription {
    TxnDescription {
        txn_id: id,
        error,
        state: TxnState::Dead,
        timeout_ms: 0,
        start_ms: -1,
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_EPOCH,
        partitions: Vec::new(),
    }
}
