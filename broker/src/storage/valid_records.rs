//! [`ValidRecords`]: a record set checked once, before the writer lock is taken.

use sluice_protocol::record::{batch, BatchError, RecordBatch};

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
