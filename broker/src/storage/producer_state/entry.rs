//! One producer's entry (its epoch, its last batches' sequence ranges and offsets, its
//! ongoing transaction) and the checks of a batch's sequence against it.

use std::collections::VecDeque;

use crate::storage::StorageError;

/// Batches remembered per producer for duplicate detection.
pub(super) const CACHED_BATCHES: usize = 5;

/// One batch of a producer, as remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CachedBatch {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// What is known about one producer id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    pub epoch: i16,
    /// Broker time of its last append, in ms since the epoch.
    pub last_append_ms: i64,
    pub batches: VecDeque<CachedBatch>,
    /// Offset of the first batch of its ongoing transaction in this partition.
    pub current_txn_first_offset: Option<i64>,
}

/// The idempotence facts of one batch about to be appended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdempotentBatch {
    pub producer_id: i64,
    pub epoch: i16,
    pub first_seq: i32,
    pub record_count: i32,
    /// Part of a transaction.
    pub transactional: bool,
}

/// The outcome of checking a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Write it.
    Append,
    /// Already in the log at these offsets: answer them, write nothing.
    Duplicate { first_offset: i64, last_offset: i64 },
}

fn last_seq(first_seq: i32, record_count: i32) -> i32 {
    // Sequences wrap at i32::MAX back to 0, as in Kafka.
    ((i64::from(first_seq) + i64::from(record_count) - 1) % (i64::from(i32::MAX) + 1)) as i32
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// Checks a batch against what is known of its producer (`None`: nothing).
pub(super) fn check_entry(
    entry: Option<&ProducerEntry>,
    b: &IdempotentBatch,
) -> Result<Check, StorageError> {
    let Some(entry) = entry else { return Ok(Check::Append) };
    if b.epoch < entry.epoch {
        return Err(StorageError::InvalidProducerEpoch {
            producer_id: b.producer_id,
            current: entry.epoch,
            found: b.epoch,
        });
    }
    if !b.transactional && entry.current_txn_first_offset.is_some() {
        return Err(StorageError::InvalidTxnState {
            producer_id: b.producer_id,
            reason: "a write outside its ongoing transaction",
        });
    }
    let last = last_seq(b.first_seq, b.record_count);
    if b.epoch > entry.epoch {
        return if b.first_seq == 0 {
            Ok(Check::Append)
        } else {
            Err(StorageError::OutOfOrderSequence {
                producer_id: b.producer_id,
                expected: 0,
                found: b.first_seq,
            })
        };
    }
    if let Some(dup) =
        entry.batches.iter().find(|c| c.first_seq == b.first_seq && c.last_seq == last)
    {
        return Ok(Check::Duplicate {
            first_offset: dup.first_offset,
            last_offset: dup.last_offset,
        });
    }
    match entry.batches.back() {
        Some(prev) if b.first_seq != next_seq(prev.last_seq) => {
            Err(StorageError::OutOfOrderSequence {
                producer_id: b.producer_id,
                expected: next_seq(prev.last_seq),
                found: b.first_seq,
            })
        }
        _ => Ok(Check::Append),
    }
}

/// Records in `entry` a batch written at `first_offset..=last_offset`.
pub(super) fn record_batch(
    entry: &mut ProducerEntry,
    b: &IdempotentBatch,
    first_offset: i64,
    last_offset: i64,
) {
    if b.epoch != entry.epoch {
        entry.epoch = b.epoch;
        entry.batches.clear();
    }
    entry.batches.push_back(CachedBatch {
        first_seq: b.first_seq,
        last_seq: last_seq(b.first_seq, b.record_count),
        first_offset,
        last_offset,
    });
    while entry.batches.len() > CACHED_BATCHES {
        entry.batches.pop_front();
    }
    if b.transactional && entry.current_txn_first_offset.is_none() {
        entry.current_txn_first_offset = Some(first_offset);
    }
}
