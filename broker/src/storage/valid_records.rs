//! [`ValidRecords`]: a record set checked once, before the writer lock is taken; for a
//! producer's set ([`ValidRecords::from_producer`]) also what only the broker may write.
//! Together with [`RecordBatch::parse_verified`] (the format's own rules) these are every
//! rule a batch must meet; the topic's configs (`max.message.bytes`, timestamps, keys on
//! compacted topics) are Produce's.

use sluice_protocol::record::{batch, BatchError, RecordBatch};
use thiserror::Error;

use super::segment::BatchMeta;
use super::StorageError;

/// A record set whose every batch passed the checks an append needs (length, magic 2,
/// CRC-32C, counts), with what the append needs from each batch. The broker builds it
/// once, looks at the batches for its own checks, and appends it: one CRC pass per byte.
#[derive(Debug, Clone)]
pub struct ValidRecords<B> {
    pub(crate) bytes: B,
    pub(crate) batches: Vec<BatchMeta>,
}

impl<B: AsRef<[u8]>> ValidRecords<B> {
    /// Checks every batch of `bytes`.
    ///
    /// # Errors
    /// [`StorageError::InvalidBatch`] naming the first bad batch; an empty set is invalid.
    pub fn new(bytes: B) -> Result<Self, StorageError> {
        let records = bytes.as_ref();
        let mut batches = Vec::new();
        let mut pos = 0;
        let mut offsets = 0i64;
        while pos < records.len() {
            let b = RecordBatch::parse_verified(&records[pos..])
                .map_err(|source| StorageError::InvalidBatch { position: pos, source })?;
            // A segment's index holds offsets relative to its base in 31 bits, and a set
            // goes into one segment whole: its offsets must fit. Only counts that no real
            // batch has (a claim of about 2^31 records) can pass this, since the records
            // themselves are not parsed.
            offsets += i64::from(b.last_offset_delta()) + 1;
            if offsets > i64::from(i32::MAX) + 1 {
                let source = BatchError::InvalidCount {
                    count: b.records_count(),
                    last_offset_delta: b.last_offset_delta(),
                };
                return Err(StorageError::InvalidBatch { position: pos, source });
            }
            batches.push(BatchMeta {
                offset_in_set: pos,
                size: b.size(),
                last_offset_delta: b.last_offset_delta(),
                max_timestamp: b.max_timestamp(),
                producer_id: b.producer_id(),
                producer_epoch: b.producer_epoch(),
                base_sequence: b.base_sequence(),
                records_count: b.records_count(),
                transactional: b.is_transactional(),
            });
            pos += b.size();
        }
        if batches.is_empty() {
            return Err(StorageError::InvalidBatch {
                position: 0,
                source: BatchError::Truncated { needed: batch::HEADER_LEN, available: 0 },
            });
        }
        Ok(ValidRecords { bytes, batches })
    }

    /// [`Self::new`] for a producer's record set, whose batches may also not be larger
    /// than `max_batch_bytes` (the topic's `max.message.bytes`), nor be a control batch
    /// (the transaction coordinator writes those), a transactional batch without a
    /// producer id and sequence, or a batch whose record count is not its offset count.
    /// Each batch is checked in that order before the next, as Kafka's validation does.
    ///
    /// # Errors
    /// [`StorageError::InvalidBatch`], [`StorageError::ProducerBatch`] naming the first
    /// batch at fault.
    pub fn from_producer(bytes: B, max_batch_bytes: usize) -> Result<Self, StorageError> {
        let valid = Self::new(bytes)?;
        for (b, meta) in valid.batches().zip(&valid.batches) {
            let refused = if b.size() > max_batch_bytes {
                Some(ProducerBatchError::TooLarge { size: b.size(), max: max_batch_bytes })
            } else if b.is_control() {
                Some(ProducerBatchError::Control)
            } else if b.is_transactional() && (b.producer_id() < 0 || b.base_sequence() < 0) {
                Some(ProducerBatchError::TransactionalWithoutSequence)
            } else if b.records_count() != b.last_offset_delta() + 1 || b.records_count() == 0 {
                let (count, last_offset_delta) = (b.records_count(), b.last_offset_delta());
                Some(ProducerBatchError::CountMismatch { count, last_offset_delta })
            } else {
                None
            };
            if let Some(source) = refused {
                return Err(StorageError::ProducerBatch { position: meta.offset_in_set, source });
            }
        }
        Ok(valid)
    }

    /// Whether any batch is transactional.
    pub fn is_transactional(&self) -> bool {
        self.batches.iter().any(|b| b.transactional)
    }

    /// The batches, as header views.
    pub fn batches(&self) -> impl Iterator<Item = RecordBatch<'_>> {
        self.batches.iter().map(|m| {
            RecordBatch::parse(&self.bytes.as_ref()[m.offset_in_set..])
                .expect("invariant: checked when the set was made")
        })
    }

    /// Total bytes.
    pub fn len(&self) -> usize {
        self.bytes.as_ref().len()
    }

    /// Whether the set is empty (never: an empty set is invalid).
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Records in the set, by offset count (`lastOffsetDelta + 1` summed).
    pub fn offset_count(&self) -> i64 {
        self.batches.iter().map(|b| i64::from(b.last_offset_delta) + 1).sum()
    }
}

/// What a producer's batch may not be, though the format allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ProducerBatchError {
    /// Larger than the topic's `max.message.bytes` (MESSAGE_TOO_LARGE).
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge {
        /// The batch's size.
        size: usize,
        /// The topic's limit.
        max: usize,
    },
    /// A control batch (commit or abort marker).
    #[error("control batches are written by the transaction coordinator only")]
    Control,
    /// A transactional batch without a producer id or a base sequence.
    #[error("a transactional batch needs a producer id and a sequence")]
    TransactionalWithoutSequence,
    /// `recordsCount` is not `lastOffsetDelta + 1`, or is 0: only compaction leaves gaps.
    #[error("batch declares {count} records but last offset delta {last_offset_delta}")]
    CountMismatch {
        /// `recordsCount`.
        count: i32,
        /// `lastOffsetDelta`.
        last_offset_delta: i32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testing::{batch, idempotent_batch, transactional_batch};

    /// `b` with its attributes or'ed with `bits`, CRC fixed.
    fn with_attributes(mut b: Vec<u8>, bits: i16) -> Vec<u8> {
        let attributes = i16::from_be_bytes([b[21], b[22]]) | bits;
        b[21..23].copy_from_slice(&attributes.to_be_bytes());
        batch::update_crc(&mut b);
        b
    }

    fn refusal(set: Vec<u8>) -> Option<(usize, ProducerBatchError)> {
        refusal_under(set, 1 << 20)
    }

    fn refusal_under(set: Vec<u8>, max: usize) -> Option<(usize, ProducerBatchError)> {
        match ValidRecords::from_producer(set, max) {
            Err(StorageError::ProducerBatch { position, source }) => Some((position, source)),
            Err(e) => panic!("not a producer refusal: {e}"),
            Ok(_) => None,
        }
    }

    #[test]
    fn a_producer_may_not_write_what_only_the_broker_writes() {
        let ok = batch(0, 3, 40);
        assert_eq!(refusal(ok.clone()), None);
        assert!(ValidRecords::from_producer(transactional_batch(7, 0, 0, 2), 1 << 20)
            .unwrap()
            .is_transactional());
        assert!(!ValidRecords::from_producer(idempotent_batch(7, 0, 0, 2), 1 << 20)
            .unwrap()
            .is_transactional());

        // The second batch of a set is at fault: its position is named.
        let control = with_attributes(batch(0, 1, 40), batch::attributes::CONTROL);
        let set = [ok.clone(), control.clone()].concat();
        assert_eq!(refusal(set), Some((ok.len(), ProducerBatchError::Control)));
        // The broker's own writers may append it.
        assert!(ValidRecords::new(control).is_ok());

        let no_sequence = with_attributes(batch(0, 1, 40), batch::attributes::TRANSACTIONAL);
        assert_eq!(
            refusal(no_sequence),
            Some((0, ProducerBatchError::TransactionalWithoutSequence))
        );

        // Three offsets, two records: what compaction leaves, not what a producer sends.
        let mut gap = batch(0, 3, 40);
        gap[57..61].copy_from_slice(&2i32.to_be_bytes());
        batch::update_crc(&mut gap);
        let mismatch = ProducerBatchError::CountMismatch { count: 2, last_offset_delta: 2 };
        assert_eq!(refusal(gap.clone()), Some((0, mismatch)));
        assert!(ValidRecords::new(gap).is_ok());
    }

    #[test]
    fn each_batch_is_checked_for_size_first_and_before_the_next_batch() {
        let control = with_attributes(batch(0, 1, 40), batch::attributes::CONTROL);
        let big = batch(0, 1, 400);
        let too_large = |size| ProducerBatchError::TooLarge { size, max: 200 };
        // A control batch over the limit is too large (MESSAGE_TOO_LARGE), as Kafka says.
        let big_control = with_attributes(big.clone(), batch::attributes::CONTROL);
        assert_eq!(refusal_under(big_control, 200), Some((0, too_large(461))));
        // The first batch at fault decides, whichever its rule.
        let set = [control.clone(), big.clone()].concat();
        assert_eq!(refusal_under(set, 200), Some((0, ProducerBatchError::Control)));
        let set = [big.clone(), control].concat();
        assert_eq!(refusal_under(set, 200), Some((0, too_large(461))));
        let code = |source| {
            crate::error::storage_error_code(&StorageError::ProducerBatch { position: 0, source })
        };
        assert_eq!(code(too_large(461)), sluice_protocol::error_code::ErrorCode::MESSAGE_TOO_LARGE);
        assert_eq!(
            code(ProducerBatchError::Control),
            sluice_protocol::error_code::ErrorCode::INVALID_RECORD
        );
    }
}
