//! The verification index: what the produce path (KIP-890 part 1) and OffsetFetch
//! (`require_stable`) read of the coordinator's state without a round trip through the
//! driver, which updates it from the machine's [`IndexUpdate`]s.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use sluice_protocol::error_code::ErrorCode;

use super::metadata::TxnState;
use super::state::{IndexUpdate, VerifyEntry};
use crate::group::types::TopicPartition;

/// What the produce path and OffsetFetch read without a round trip through the driver:
/// per producer id, its epoch, whether a transition is in flight and the partitions of
/// its ongoing transaction; per group, the partitions with offsets pending in a
/// transaction. The driver updates it after every step that changes a transaction.
#[derive(Debug, Default)]
pub struct TxnIndex {
    inner: RwLock<IndexInner>,
}

#[derive(Debug, Default)]
struct IndexInner {
    producers: HashMap<i64, (VerifyEntry, Vec<(String, TopicPartition)>)>,
    /// Group → partition → transactions with an offset pending for it.
    pending_offsets: HashMap<String, HashMap<TopicPartition, u32>>,
}

impl TxnIndex {
    fn apply_entry(&self, update: IndexUpdate, offsets: Vec<(String, TopicPartition)>) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let pid = match &update {
            IndexUpdate::Set { producer_id, .. } | IndexUpdate::Remove(producer_id) => *producer_id,
        };
        if let Some((_, old)) = inner.producers.remove(&pid) {
            for (group, tp) in old {
                if let Some(g) = inner.pending_offsets.get_mut(&group) {
                    if let Some(n) = g.get_mut(&tp) {
                        *n -= 1;
                        if *n == 0 {
                            g.remove(&tp);
                        }
                    }
                    if g.is_empty() {
                        inner.pending_offsets.remove(&group);
                    }
                }
            }
        }
        if let IndexUpdate::Set { producer_id: pid, entry } = update {
            for (group, tp) in &offsets {
                *inner
                    .pending_offsets
                    .entry(group.clone())
                    .or_default()
                    .entry(tp.clone())
                    .or_default() += 1;
            }
            inner.producers.insert(pid, (entry, offsets));
        }
    }

    pub(super) fn apply(&self, update: IndexUpdate) {
        let offsets = match &update {
            IndexUpdate::Set { entry, .. } => entry.offsets.as_ref().clone(),
            IndexUpdate::Remove(_) => Vec::new(),
        };
        self.apply_entry(update, offsets);
    }

    /// KIP-890 part 1: may a transactional batch of `producer_id` and `epoch` go to this
    /// partition? Only if the partition is in the producer's ongoing transaction.
    ///
    /// # Errors
    /// INVALID_PRODUCER_ID_MAPPING for a producer id of no transactional id,
    /// INVALID_PRODUCER_EPOCH for another epoch (Kafka's produce path turns the
    /// coordinator's PRODUCER_FENCED into it), CONCURRENT_TRANSACTIONS while a transition
    /// is in flight (the produce handler answers a retriable error for it, as Kafka does
    /// with NOT_ENOUGH_REPLICAS), INVALID_TXN_STATE for a partition not in an ongoing
    /// transaction.
    pub fn verify_partition(
        &self,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<(), ErrorCode> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let Some((entry, _)) = inner.producers.get(&producer_id) else {
            return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
        };
        if entry.epoch != epoch {
            return Err(ErrorCode::INVALID_PRODUCER_EPOCH);
        }
        let tp = TopicPartition { topic: Arc::from(topic), partition };
        if entry.state == TxnState::Ongoing && entry.partitions.contains(&tp) {
            Ok(())
        } else if entry.pending {
            // A write is in flight: it may be the AddPartitionsToTxn that adds this
            // partition (its answer can reach the client before this entry is updated).
            // Kafka's coordinator, too, answers a pending transition so.
            Err(ErrorCode::CONCURRENT_TRANSACTIONS)
        } else {
            Err(ErrorCode::INVALID_TXN_STATE)
        }
    }

    /// Whether `group` has an offset for this partition pending in a transaction that is
    /// not complete (OffsetFetch's `require_stable` answers UNSTABLE_OFFSET_COMMIT).
    pub fn has_pending_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner
            .pending_offsets
            .get(group)
            .is_some_and(|g| g.contains_key(&TopicPartition { topic: Arc::from(topic), partition }))
    }

    /// The partitions with offsets pending in a transaction, for each of `groups` that has
    /// any. Read before the committed offsets: a pending offset leaves this index only
    /// after it is committed to its group, so an offset absent from both was never
    /// pending or is already committed.
    pub fn pending_offsets_of<'a>(
        &self,
        groups: impl IntoIterator<Item = &'a str>,
    ) -> HashMap<String, HashSet<TopicPartition>> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        groups
            .into_iter()
            .filter_map(|g| {
                let pending = inner.pending_offsets.get(g)?;
                Some((g.to_owned(), pending.keys().cloned().collect()))
            })
            .collect()
    }

    /// Whether `group` has any offset pending in a transaction.
    pub fn group_has_pending_offsets(&self, group: &str) -> bool {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner.pending_offsets.contains_key(group)
    }
}
