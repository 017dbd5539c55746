//! Idempotent producer state of one partition: for each producer id, its epoch and the
//! sequence ranges (with their offsets) of its last five batches, the most a producer
//! keeps in flight (`max.in.flight.requests.per.connection` ≤ 5 with idempotence).
//!
//! The check runs under the partition's writer lock, before the batches are written:
//! - a batch whose sequence range matches a cached one is a retry of a batch already in
//!   the log: it is not written again, and the original offsets are answered;
//! - an older epoch is fenced (INVALID_PRODUCER_EPOCH);
//! - a sequence that does not follow the last one is OUT_OF_ORDER_SEQUENCE_NUMBER
//!   (a new epoch must start at 0; a producer the partition has no state for — never
//!   seen, expired or evicted — may start anywhere, as in Kafka after KIP-360).
//!
//! Bounds (any client may send any producer id, so the state must not grow with them):
//! - Expiry by the broker's clock, as Kafka's `ProducerStateManager.removeExpiredProducers`:
//!   a producer id with no append for `producer.id.expiration.ms` is dropped. The time of
//!   the last append is the broker's, never a batch timestamp (a client could send one far
//!   in the future and never expire). Batches replayed from the log at open count as
//!   appended at the open.
//! - At most `sluice.producer.state.max.producers.per.partition` ids: past it the longest
//!   idle is evicted, which is what expiry does early; its next append is treated as an
//!   expired producer's is in Kafka. The recency order is kept in a `BTreeMap`, so a
//!   commit, an eviction and an expiry check each cost O(log n).
//! - A producer that appended within [`EVICTION_GRACE_MS`] is never evicted: a flood of
//!   new producer ids would otherwise push out a live producer's state, and its next
//!   retry would be written twice. A record set whose new producers cannot fit without
//!   that is refused ([`StorageError::TooManyProducers`], a retriable error) and nothing
//!   of it is written.
//! - Snapshots hold at most that many lines, and only the two newest are kept.
//!
//! Persistence: `<offset>.snapshot` files beside the segments hold the state as of that
//! offset (written durably on roll, outside the writer lock, and on clean close;
//! crc-checked, text). Opening a partition loads the newest valid snapshot at or below the
//! log end offset and replays the batch headers after it, so the state after a crash is
//! rebuilt from the log tail. A torn or corrupt snapshot is removed and the one before it
//! (or none) is used, with a longer replay: a safe fallback, as the log is the truth.
//! The file's format is in [`snapshot`], the replay in [`rebuild`].
//!
//! Transactions: a producer's first transactional batch in the partition opens its
//! ongoing transaction at that batch's offset, and the coordinator's marker closes it.
//! The ongoing transactions' first offsets are kept in order: the smallest holds the last
//! stable offset back. A producer with an ongoing transaction never expires and is never
//! evicted (its marker must find it, as in Kafka), and it may not write outside the
//! transaction (INVALID_TXN_STATE).

use std::collections::{BTreeMap, HashMap};

mod entry;
mod rebuild;
mod snapshot;

use entry::{check_entry, record_batch, Check, IdempotentBatch, ProducerEntry};
pub(crate) use rebuild::{rebuild_producers, Rebuilt};
pub(crate) use snapshot::write_snapshot_text;

use super::segment::BatchMeta;
use super::StorageError;

/// Kafka's default `producer.id.expiration.ms`: one day.
pub const DEFAULT_PRODUCER_ID_EXPIRATION_MS: i64 = 24 * 3600 * 1000;
/// Default of `sluice.producer.state.max.producers.per.partition`: far more producers than
/// one partition sees in a day from well-behaved clients, and a bound of a few MiB.
pub const DEFAULT_MAX_PRODUCERS_PER_PARTITION: usize = 10_000;

/// One producer of a partition, as DescribeProducers shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerInfo {
    /// The producer id.
    pub producer_id: i64,
    /// Its newest epoch here.
    pub producer_epoch: i16,
    /// The sequence of its last record here (-1: none).
    pub last_sequence: i32,
    /// Broker time of its last append, in ms since the epoch.
    pub last_append_ms: i64,
    /// First offset of its ongoing transaction here.
    pub current_txn_first_offset: Option<i64>,
}

/// The state of every producer of a partition.
#[derive(Debug, Default, Clone)]
pub(crate) struct ProducerState {
    /// Each entry with its key in `by_recency`.
    producers: HashMap<i64, (ProducerEntry, u64)>,
    /// Producer ids by the order of their last append, the longest idle first.
    by_recency: BTreeMap<u64, i64>,
    next_touch: u64,
    /// The first offset of every ongoing transaction, with its producer id.
    ongoing: BTreeMap<i64, i64>,
}

impl PartialEq for ProducerState {
    /// Equal entries; the recency keys are an implementation detail.
    fn eq(&self, other: &Self) -> bool {
        self.producers.len() == other.producers.len()
            && self.producers.iter().all(|(id, (e, _))| other.get(*id) == Some(e))
    }
}

/// Entries changed by the batches of one record set, applied once it is written.
#[derive(Debug, Default)]
pub(crate) struct StagedProducers {
    entries: HashMap<i64, ProducerEntry>,
}

impl StagedProducers {
    /// The first offset of the earliest transaction these batches open (or continue).
    pub(crate) fn first_txn_offset(&self) -> Option<i64> {
        self.entries.values().filter_map(|e| e.current_txn_first_offset).min()
    }

    /// The producers (id, epoch) whose transactions these batches open here: in a
    /// transaction now, and not before them.
    pub(crate) fn opened<'a>(
        &'a self,
        before: &'a ProducerState,
    ) -> impl Iterator<Item = (i64, i16)> + 'a {
        self.entries.iter().filter_map(move |(id, e)| {
            let was = before.get(*id).and_then(|b| b.current_txn_first_offset);
            (e.current_txn_first_offset.is_some() && was.is_none()).then_some((*id, e.epoch))
        })
    }
}

/// How long after its last append a producer's state is safe from eviction: longer than
/// a producer retries a batch (the Java client's `delivery.timeout.ms` is 2 minutes).
pub const EVICTION_GRACE_MS: i64 = 5 * 60 * 1000;

impl ProducerState {
    /// Whether the `n` longest idle producers may go as of `now_ms`: there are that many,
    /// and each has been idle for `grace_ms`.
    fn can_evict(&self, n: usize, now_ms: i64, grace_ms: i64) -> bool {
        let mut evictable = self.evictable();
        evictable.by_ref().take(n).all(|e| now_ms.saturating_sub(e.last_append_ms) >= grace_ms)
            && self.evictable().take(n).count() == n
    }

    /// Entries without an ongoing transaction, the longest idle first.
    fn evictable(&self) -> impl Iterator<Item = &ProducerEntry> {
        self.by_recency
            .values()
            .filter_map(|id| self.get(*id))
            .filter(|e| e.current_txn_first_offset.is_none())
    }

    /// Keeps `ongoing` in step with a producer's entry changing from `old` to `new`.
    fn track_txn(&mut self, id: i64, old: Option<i64>, new: Option<i64>) {
        if old == new {
            return;
        }
        if let Some(first) = old {
            self.ongoing.remove(&first);
        }
        if let Some(first) = new {
            self.ongoing.insert(first, id);
        }
    }

    /// The first offset of the oldest ongoing transaction: the last stable offset.
    pub(crate) fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.first_key_value().map(|(first, _)| *first)
    }

    /// Producer ids with an ongoing transaction, by its first offset.
    pub(crate) fn ongoing_transactions(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.ongoing.iter().map(|(first, id)| (*id, *first))
    }

    /// Checks a transaction marker against the producer's epoch.
    ///
    /// # Errors
    /// [`StorageError::InvalidProducerEpoch`] for a marker of an older epoch.
    pub(crate) fn check_marker(&self, producer_id: i64, epoch: i16) -> Result<(), StorageError> {
        match self.get(producer_id) {
            Some(e) if epoch < e.epoch => Err(StorageError::InvalidProducerEpoch {
                producer_id,
                current: e.epoch,
                found: epoch,
            }),
            _ => Ok(()),
        }
    }

    /// Ends the producer's ongoing transaction with a marker appended at `now_ms`; returns
    /// the transaction's first offset, if it had one here. A newer epoch in the marker
    /// becomes the producer's, so batches of the old one are fenced from now on.
    pub(crate) fn complete_txn(
        &mut self,
        producer_id: i64,
        epoch: i16,
        now_ms: i64,
        max_producers: usize,
    ) -> Option<i64> {
        let mut entry = self
            .get(producer_id)
            .cloned()
            .unwrap_or(ProducerEntry { epoch, ..ProducerEntry::default() });
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        let first = entry.current_txn_first_offset.take();
        entry.last_append_ms = now_ms;
        self.put(producer_id, entry, max_producers);
        first
    }

    /// What is known about a producer.
    pub(crate) fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id).map(|(e, _)| e)
    }

    /// Checks a batch against the state.
    ///
    /// # Errors
    /// [`StorageError::InvalidProducerEpoch`] and [`StorageError::OutOfOrderSequence`].
    pub(crate) fn check(&self, b: &IdempotentBatch) -> Result<Check, StorageError> {
        check_entry(self.get(b.producer_id), b)
    }

    /// Puts `entry` in as the most recently appended, then evicts the longest idle down
    /// to `max_producers`. Returns how many were evicted.
    fn put(&mut self, id: i64, entry: ProducerEntry, max_producers: usize) -> usize {
        let touch = self.next_touch;
        self.next_touch += 1;
        let new_txn = entry.current_txn_first_offset;
        let old_txn = match self.producers.insert(id, (entry, touch)) {
            Some((old, old_touch)) => {
                self.by_recency.remove(&old_touch);
                old.current_txn_first_offset
            }
            None => None,
        };
        self.track_txn(id, old_txn, new_txn);
        self.by_recency.insert(touch, id);
        let mut evicted = 0;
        let mut spared = Vec::new();
        while self.producers.len() > max_producers.max(1) {
            let Some((touch, oldest)) = self.by_recency.pop_first() else { break };
            if self.get(oldest).is_some_and(|e| e.current_txn_first_offset.is_some()) {
                spared.push((touch, oldest));
                continue;
            }
            self.producers.remove(&oldest);
            evicted += 1;
        }
        self.by_recency.extend(spared);
        evicted
    }

    /// Records a batch that was written at `first_offset..=last_offset` at `now_ms`.
    pub(crate) fn update(
        &mut self,
        b: &IdempotentBatch,
        first_offset: i64,
        last_offset: i64,
        now_ms: i64,
        max_producers: usize,
    ) -> usize {
        let mut entry = self.get(b.producer_id).cloned().unwrap_or_default();
        record_batch(&mut entry, b, first_offset, last_offset);
        entry.last_append_ms = now_ms;
        self.put(b.producer_id, entry, max_producers)
    }

    /// Checks a batch against `staged` (earlier batches of the same record set) first,
    /// then against `self`.
    ///
    /// # Errors
    /// As [`Self::check`].
    pub(crate) fn check_staged(
        &self,
        staged: &StagedProducers,
        b: &IdempotentBatch,
    ) -> Result<Check, StorageError> {
        match staged.entries.get(&b.producer_id) {
            Some(e) => check_entry(Some(e), b),
            None => self.check(b),
        }
    }

    /// Records a batch in `staged`, starting from `self`'s entry for the producer.
    pub(crate) fn stage(
        &self,
        staged: &mut StagedProducers,
        b: &IdempotentBatch,
        first: i64,
        last: i64,
    ) {
        let entry = staged
            .entries
            .entry(b.producer_id)
            .or_insert_with(|| self.get(b.producer_id).cloned().unwrap_or_default());
        record_batch(entry, b, first, last);
    }

    /// Takes the staged entries once their batches are written at `now_ms`; returns how
    /// many producers were evicted to stay within `max_producers`.
    pub(crate) fn commit(
        &mut self,
        staged: StagedProducers,
        now_ms: i64,
        max_producers: usize,
    ) -> usize {
        let mut evicted = 0;
        for (id, mut entry) in staged.entries {
            entry.last_append_ms = now_ms;
            evicted += self.put(id, entry, max_producers);
        }
        evicted
    }

    /// When [`Self::expire`] next forgets a producer: the longest idle one's expiry, of
    /// those not in a transaction (which expiry spares).
    pub(crate) fn next_expiry(&self, expiration_ms: i64) -> Option<i64> {
        self.evictable().next().map(|e| e.last_append_ms.saturating_add(expiration_ms))
    }

    /// Forgets producers with no append for `expiration_ms` as of `now_ms` (broker time);
    /// returns how many.
    pub(crate) fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let mut expired = 0;
        let mut spared = Vec::new();
        // Recency order is append order; a wall clock stepped back only delays expiry.
        while let Some((&touch, &id)) = self.by_recency.first_key_value() {
            let entry = self.get(id);
            let idle = entry.map_or(i64::MAX, |e| now_ms.saturating_sub(e.last_append_ms));
            if idle < expiration_ms {
                break;
            }
            let in_txn = entry.is_some_and(|e| e.current_txn_first_offset.is_some());
            self.by_recency.remove(&touch);
            if in_txn {
                // Its marker is still to come (the coordinator times transactions out).
                spared.push((touch, id));
                continue;
            }
            self.producers.remove(&id);
            expired += 1;
        }
        self.by_recency.extend(spared);
        expired
    }

    /// Number of producers known.
    /// The last offset of each producer's last batch: the batches compaction keeps (as
    /// empty headers, if need be) so that the producers' sequences survive a restart.
    pub(crate) fn last_batch_offsets(&self) -> HashMap<i64, i64> {
        self.producers
            .iter()
            .filter_map(|(&id, (e, _))| e.batches.back().map(|b| (id, b.last_offset)))
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.producers.len()
    }

    /// Every producer as DescribeProducers shows it, the longest idle first.
    pub(crate) fn describe(&self) -> Vec<ProducerInfo> {
        self.by_recency
            .values()
            .filter_map(|id| self.producers.get_key_value(id))
            .map(|(&producer_id, (e, _))| ProducerInfo {
                producer_id,
                producer_epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                last_append_ms: e.last_append_ms,
                current_txn_first_offset: e.current_txn_first_offset,
            })
            .collect()
    }
}

/// The result of checking a record set's idempotent batches.
pub(crate) enum Staged {
    /// Write it; the staged producer state goes in once it is written.
    Append(Option<StagedProducers>),
    /// Every batch is a retry of batches already at these offsets.
    Duplicate(i64, i64),
}

pub(crate) fn check_producers(
    producers: &ProducerState,
    batches: &[BatchMeta],
    base_offset: i64,
    now_ms: i64,
    max_producers: usize,
    grace_ms: i64,
) -> Result<Staged, StorageError> {
    let mut staged: Option<StagedProducers> = None;
    let mut duplicates: Option<(i64, i64)> = None;
    let mut offset = base_offset;
    for (i, m) in batches.iter().enumerate() {
        let last = offset + i64::from(m.last_offset_delta);
        if m.producer_id >= 0 && m.base_sequence >= 0 {
            let b = IdempotentBatch {
                producer_id: m.producer_id,
                epoch: m.producer_epoch,
                first_seq: m.base_sequence,
                record_count: m.records_count,
                transactional: m.transactional,
            };
            let scratch = staged.get_or_insert_with(StagedProducers::default);
            match producers.check_staged(scratch, &b)? {
                Check::Append if duplicates.is_none() => producers.stage(scratch, &b, offset, last),
                Check::Duplicate { first_offset, last_offset }
                    if i == 0 || duplicates.is_some() =>
                {
                    let first = duplicates.map_or(first_offset, |d| d.0);
                    duplicates = Some((first, last_offset));
                }
                _ => {
                    // A set that mixes retried and new batches: no producer sends one.
                    return Err(StorageError::OutOfOrderSequence {
                        producer_id: m.producer_id,
                        expected: -1,
                        found: m.base_sequence,
                    });
                }
            }
        } else if duplicates.is_some() {
            return Err(StorageError::OutOfOrderSequence {
                producer_id: -1,
                expected: -1,
                found: -1,
            });
        }
        offset = last + 1;
    }
    if let Some(staged) = &staged {
        let new = staged.entries.keys().filter(|id| producers.get(**id).is_none()).count();
        let over = (producers.len() + new).saturating_sub(max_producers.max(1));
        if over > 0 && !producers.can_evict(over, now_ms, grace_ms) {
            return Err(StorageError::TooManyProducers { limit: max_producers });
        }
    }
    Ok(match duplicates {
        Some((first, last)) => Staged::Duplicate(first, last),
        None => Staged::Append(staged),
    })
}

#[cfg(test)]
mod tests;
