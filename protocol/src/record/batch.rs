//! A zero-copy view of one RecordBatch v2 and in-place patching of the fields the
//! broker assigns.
//!
//! ```text
//! offset  size  field                      covered by crc
//!      0     8  baseOffset             i64      no   (assigned by the broker)
//!      8     4  batchLength            i32      no   (bytes after this field)
//!     12     4  partitionLeaderEpoch   i32      no   (assigned by the broker)
//!     16     1  magic                  i8       no   (always 2)
//!     17     4  crc                    u32      no   (CRC-32C of bytes 21..end)
//!     21     2  attributes             i16      yes
//!     23     4  lastOffsetDelta        i32      yes
//!     27     8  baseTimestamp          i64      yes
//!     35     8  maxTimestamp           i64      yes
//!     43     8  producerId             i64      yes
//!     51     2  producerEpoch          i16      yes
//!     53     4  baseSequence           i32      yes
//!     57     4  recordsCount           i32      yes
//!     61     …  records (compressed as a whole when attributes & 0x07 != 0)
//! ```
//!
//! All integers are big-endian. A batch occupies `batchLength + 12` bytes.

use std::borrow::Cow;

use thiserror::Error;

use super::compression::{self, Compression, CompressionError};
use super::record::{Record, RecordError, Records};

/// Size of the fixed batch header, up to and including `recordsCount`.
pub const HEADER_LEN: usize = 61;
/// Bytes before the part that `batchLength` counts: `baseOffset` and `batchLength`.
pub const LOG_OVERHEAD: usize = 12;
/// The only message format Sluice accepts (Kafka 4.0 dropped v0 and v1).
pub const MAGIC_V2: i8 = 2;

pub(crate) const BASE_OFFSET: usize = 0;
pub(crate) const BATCH_LENGTH: usize = 8;
pub(crate) const PARTITION_LEADER_EPOCH: usize = 12;
pub(crate) const MAGIC: usize = 16;
pub(crate) const CRC: usize = 17;
pub(crate) const ATTRIBUTES: usize = 21;
pub(crate) const LAST_OFFSET_DELTA: usize = 23;
pub(crate) const BASE_TIMESTAMP: usize = 27;
pub(crate) const MAX_TIMESTAMP: usize = 35;
pub(crate) const PRODUCER_ID: usize = 43;
pub(crate) const PRODUCER_EPOCH: usize = 51;
pub(crate) const BASE_SEQUENCE: usize = 53;
pub(crate) const RECORDS_COUNT: usize = 57;

/// Attribute bits of a batch.
pub mod attributes {
    /// Bits 0–2: the compression codec.
    pub const COMPRESSION_MASK: i16 = 0x07;
    /// Bit 3: timestamps are LogAppendTime (set by the broker).
    pub const TIMESTAMP_TYPE_LOG_APPEND: i16 = 0x08;
    /// Bit 4: the batch belongs to a transaction.
    pub const TRANSACTIONAL: i16 = 0x10;
    /// Bit 5: a control batch (transaction marker).
    pub const CONTROL: i16 = 0x20;
    /// Bit 6: the batch has a delete horizon (compaction).
    pub const DELETE_HORIZON: i16 = 0x40;
}

/// Why bytes are not a valid v2 record batch.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BatchError {
    /// Fewer bytes than the header or the declared length needs.
    #[error("record batch truncated: needs {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the batch needs.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// `batchLength` is smaller than a header or larger than any batch can be.
    #[error("record batch length {length} is invalid")]
    InvalidLength {
        /// The declared `batchLength`.
        length: i32,
    },
    /// Magic other than 2 (v0/v1 message sets are not accepted).
    #[error("record batch magic {magic} is not supported (only magic 2)")]
    UnsupportedMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// The stored CRC-32C does not match the bytes.
    #[error("record batch crc 0x{stored:08x} does not match computed 0x{computed:08x}")]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// `recordsCount` or `lastOffsetDelta` is negative.
    #[error("record batch has records count {count} and last offset delta {last_offset_delta}")]
    InvalidCount {
        /// `recordsCount`.
        count: i32,
        /// `lastOffsetDelta`.
        last_offset_delta: i32,
    },
}

/// Reads the total size (`batchLength + 12`) of the batch that starts `buf`, if the
/// first 12 bytes are present; `Ok(None)` means more bytes are needed.
///
/// # Errors
/// [`BatchError::InvalidLength`] when `batchLength` cannot hold a v2 header.
pub fn total_size(buf: &[u8]) -> Result<Option<usize>, BatchError> {
    if buf.len() < LOG_OVERHEAD {
        return Ok(None);
    }
    let length = i32::from_be_bytes(field(buf, BATCH_LENGTH));
    if length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(BatchError::InvalidLength { length });
    }
    Ok(Some(length as usize + LOG_OVERHEAD))
}

/// A borrowed view of exactly one v2 batch (header checked, CRC not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordBatch<'a> {
    bytes: &'a [u8],
}

impl<'a> RecordBatch<'a> {
    /// Views the batch at the start of `buf`; bytes after it are ignored.
    ///
    /// Checks that the header and the declared length are present, the magic is 2 and
    /// the counts are not negative. It does not check the CRC: see [`Self::verify_crc`].
    ///
    /// # Errors
    /// A [`BatchError`] naming the first check that failed.
    pub fn parse(buf: &'a [u8]) -> Result<Self, BatchError> {
        let Some(size) = total_size(buf)? else {
            return Err(BatchError::Truncated { needed: LOG_OVERHEAD, available: buf.len() });
        };
        if buf.len() < HEADER_LEN {
            return Err(BatchError::Truncated { needed: HEADER_LEN, available: buf.len() });
        }
        let magic = buf[MAGIC] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic { magic });
        }
        if buf.len() < size {
            return Err(BatchError::Truncated { needed: size, available: buf.len() });
        }
        let batch = RecordBatch { bytes: &buf[..size] };
        if batch.records_count() < 0 || batch.last_offset_delta() < 0 {
            return Err(BatchError::InvalidCount {
                count: batch.records_count(),
                last_offset_delta: batch.last_offset_delta(),
            });
        }
        Ok(batch)
    }

    /// Parses and verifies the CRC in one step.
    ///
    /// # Errors
    /// As [`Self::parse`], and [`BatchError::CrcMismatch`].
    pub fn parse_verified(buf: &'a [u8]) -> Result<Self, BatchError> {
        let batch = Self::parse(buf)?;
        batch.verify_crc()?;
        Ok(batch)
    }

    /// Checks the CRC-32C over attributes .. end of batch.
    ///
    /// # Errors
    /// [`BatchError::CrcMismatch`] when the bytes were altered.
    pub fn verify_crc(&self) -> Result<(), BatchError> {
        let stored = self.crc();
        let computed = crc32c::crc32c(&self.bytes[ATTRIBUTES..]);
        if stored == computed {
            Ok(())
        } else {
            Err(BatchError::CrcMismatch { stored, computed })
        }
    }

    /// The whole batch.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Bytes the batch occupies (`batchLength + 12`).
    pub fn size(&self) -> usize {
        self.bytes.len()
    }
    /// Offset of the first record.
    pub fn base_offset(&self) -> i64 {
        i64::from_be_bytes(field(self.bytes, BASE_OFFSET))
    }
    /// Offset of the last record: `base_offset + last_offset_delta`.
    pub fn last_offset(&self) -> i64 {
        // Wrapping: the fields are wire data and must not panic on overflow.
        self.base_offset().wrapping_add(i64::from(self.last_offset_delta()))
    }
    /// The `batchLength` field.
    pub fn batch_length(&self) -> i32 {
        i32::from_be_bytes(field(self.bytes, BATCH_LENGTH))
    }
    /// The leader epoch stamped by the broker.
    pub fn partition_leader_epoch(&self) -> i32 {
        i32::from_be_bytes(field(self.bytes, PARTITION_LEADER_EPOCH))
    }
    /// The stored CRC-32C.
    pub fn crc(&self) -> u32 {
        u32::from_be_bytes(field(self.bytes, CRC))
    }
    /// The attribute bits; see [`attributes`].
    pub fn attributes(&self) -> i16 {
        i16::from_be_bytes(field(self.bytes, ATTRIBUTES))
    }
    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression_id(&self) -> u8 {
        (self.attributes() & attributes::COMPRESSION_MASK) as u8
    }
    /// Whether the batch is part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes() & attributes::TRANSACTIONAL != 0
    }
    /// Whether the batch is a control batch (transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes() & attributes::CONTROL != 0
    }
    /// Whether timestamps are LogAppendTime.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes() & attributes::TIMESTAMP_TYPE_LOG_APPEND != 0
    }
    /// Offset of the last record relative to the base offset.
    pub fn last_offset_delta(&self) -> i32 {
        i32::from_be_bytes(field(self.bytes, LAST_OFFSET_DELTA))
    }
    /// Timestamp of the first record.
    pub fn base_timestamp(&self) -> i64 {
        i64::from_be_bytes(field(self.bytes, BASE_TIMESTAMP))
    }
    /// Largest timestamp in the batch.
    pub fn max_timestamp(&self) -> i64 {
        i64::from_be_bytes(field(self.bytes, MAX_TIMESTAMP))
    }
    /// Idempotent producer id, or -1.
    pub fn producer_id(&self) -> i64 {
        i64::from_be_bytes(field(self.bytes, PRODUCER_ID))
    }
    /// Idempotent producer epoch, or -1.
    pub fn producer_epoch(&self) -> i16 {
        i16::from_be_bytes(field(self.bytes, PRODUCER_EPOCH))
    }
    /// Sequence number of the first record, or -1.
    pub fn base_sequence(&self) -> i32 {
        i32::from_be_bytes(field(self.bytes, BASE_SEQUENCE))
    }
    /// Number of records the header declares.
    pub fn records_count(&self) -> i32 {
        i32::from_be_bytes(field(self.bytes, RECORDS_COUNT))
    }
    /// The records section (compressed as a whole when the codec is not 0).
    pub fn records_section(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }

    /// The compression codec named by the attributes.
    ///
    /// # Errors
    /// [`CompressionError::UnknownCodec`] for codec ids 5–7.
    pub fn compression(&self) -> Result<Compression, CompressionError> {
        Compression::from_id(self.compression_id())
    }

    /// The batch's records, decompressed when the batch is compressed.
    ///
    /// An uncompressed section is borrowed, not copied, and `limit` does not apply to
    /// it; a compressed one is inflated into a new buffer of at most `limit` bytes
    /// (pass the consumer's `fetch.max.bytes` or the broker's `max.message.bytes`).
    /// Records are decoded lazily by the iterator, so a malformed record surfaces there.
    ///
    /// # Errors
    /// [`RecordError::Compression`] for an unknown codec, corrupt compressed data or
    /// output past `limit`.
    pub fn records(&self, limit: usize) -> Result<BatchRecords<'a>, RecordError> {
        let section = match self.compression()? {
            Compression::None => Cow::Borrowed(self.records_section()),
            codec => Cow::Owned(compression::decompress(codec, self.records_section(), limit)?),
        };
        Ok(BatchRecords::new(self, section))
    }
}

/// The records of one batch, decompressed if the batch was compressed.
///
/// Made by [`RecordBatch::records`]; iterate with
/// [`Self::iter`]. Keeps the batch fields needed to turn record deltas into offsets and
/// timestamps.
#[derive(Debug, Clone)]
pub struct BatchRecords<'a> {
    section: Cow<'a, [u8]>,
    count: u32,
    base_offset: i64,
    base_timestamp: i64,
    max_timestamp: i64,
    log_append_time: bool,
}

impl<'a> BatchRecords<'a> {
    pub(crate) fn new(batch: &RecordBatch<'a>, section: Cow<'a, [u8]>) -> Self {
        BatchRecords {
            section,
            // parse() rejected negative counts.
            count: u32::try_from(batch.records_count()).unwrap_or(0),
            base_offset: batch.base_offset(),
            base_timestamp: batch.base_timestamp(),
            max_timestamp: batch.max_timestamp(),
            log_append_time: batch.is_log_append_time(),
        }
    }

    /// Iterates the records.
    pub fn iter(&self) -> Records<'_> {
        Records::new(&self.section, self.count)
    }

    /// The declared number of records.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The uncompressed records section.
    pub fn section(&self) -> &[u8] {
        &self.section
    }

    /// Whether the section was decompressed into a new buffer (not borrowed).
    pub fn is_decompressed(&self) -> bool {
        matches!(self.section, Cow::Owned(_))
    }

    /// The record's absolute offset: batch base offset + offset delta.
    pub fn offset(&self, record: &Record<'_>) -> i64 {
        self.base_offset.wrapping_add(i64::from(record.offset_delta()))
    }

    /// The record's timestamp: the batch's max timestamp under LogAppendTime (the broker
    /// rewrote only that field), otherwise base timestamp + delta.
    pub fn timestamp(&self, record: &Record<'_>) -> i64 {
        if self.log_append_time {
            self.max_timestamp
        } else {
            self.base_timestamp.wrapping_add(record.timestamp_delta())
        }
    }
}

impl<'s> IntoIterator for &'s BatchRecords<'_> {
    type Item = Result<Record<'s>, RecordError>;
    type IntoIter = Records<'s>;

    fn into_iter(self) -> Records<'s> {
        self.iter()
    }
}

/// Writes `base_offset` into the batch that starts `buf` (the CRC does not cover it).
///
/// # Panics
/// If `buf` is shorter than 8 bytes; callers pass a parsed batch.
pub fn set_base_offset(buf: &mut [u8], base_offset: i64) {
    buf[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Writes the partition leader epoch into the batch that starts `buf` (not CRC-covered).
///
/// # Panics
/// If `buf` is shorter than 16 bytes; callers pass a parsed batch.
pub fn set_partition_leader_epoch(buf: &mut [u8], epoch: i32) {
    buf[PARTITION_LEADER_EPOCH..PARTITION_LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Rewrites max timestamp and sets the LogAppendTime bit, then recomputes the CRC:
/// both fields are CRC-covered.
///
/// # Panics
/// If `buf` is shorter than the header; callers pass a parsed batch.
pub fn set_log_append_time(buf: &mut [u8], timestamp: i64) {
    let attrs = i16::from_be_bytes(field(buf, ATTRIBUTES)) | attributes::TIMESTAMP_TYPE_LOG_APPEND;
    buf[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attrs.to_be_bytes());
    buf[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&timestamp.to_be_bytes());
    let crc = crc32c::crc32c(&buf[ATTRIBUTES..]);
    buf[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Stamps a producer's id, epoch and base sequence into the batch that is exactly `buf`,
/// then recomputes the CRC (the three are CRC-covered). A producer uses this when it
/// assigns sequences at send time or after an epoch bump.
///
/// # Panics
/// If `buf` is shorter than the header.
pub fn set_producer(buf: &mut [u8], producer_id: i64, producer_epoch: i16, base_sequence: i32) {
    buf[PRODUCER_ID..PRODUCER_ID + 8].copy_from_slice(&producer_id.to_be_bytes());
    buf[PRODUCER_EPOCH..PRODUCER_EPOCH + 2].copy_from_slice(&producer_epoch.to_be_bytes());
    buf[BASE_SEQUENCE..BASE_SEQUENCE + 4].copy_from_slice(&base_sequence.to_be_bytes());
    update_crc(buf);
}

/// Recomputes and stores the CRC of the batch that is exactly `buf`.
///
/// # Panics
/// If `buf` is shorter than the header.
pub fn update_crc(buf: &mut [u8]) {
    let crc = crc32c::crc32c(&buf[ATTRIBUTES..]);
    buf[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Iterates the batches of a record set: a produce request's or fetch response's
/// `records` bytes, which hold whole batches back to back.
///
/// A fetch response may end with a partial batch (the broker cut it at `max_bytes`);
/// iteration stops before it and [`Batches::remainder`] reports its bytes. A produce
/// request must have none. CRCs are not checked here: call
/// [`RecordBatch::verify_crc`] on each batch.
pub fn batches(records: &[u8]) -> Batches<'_> {
    Batches { rest: records, failed: false }
}

/// Iterator over the batches of a record set; see [`batches`].
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Batches<'a> {
    /// Bytes not yielded: after the end, those of a trailing partial batch (0 when the
    /// record set ended on a batch boundary).
    pub fn remainder(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = Result<RecordBatch<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let size = match total_size(self.rest) {
            Ok(Some(size)) if size <= self.rest.len() => size,
            // Fewer bytes than the batch declares: a partial trailing batch.
            Ok(_) => return None,
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        let (bytes, rest) = self.rest.split_at(size);
        match RecordBatch::parse(bytes) {
            Ok(batch) => {
                self.rest = rest;
                Some(Ok(batch))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for Batches<'_> {}

fn field<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    buf[at..at + N].try_into().expect("invariant: callers checked the header length")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header-only batch (no records section contents) with a valid CRC.
    pub(crate) fn sample(records: &[u8], count: i32) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b.extend_from_slice(records);
        let len = (b.len() - LOG_OVERHEAD) as i32;
        b[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&len.to_be_bytes());
        b[MAGIC] = 2;
        b[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4].copy_from_slice(&(count - 1).to_be_bytes());
        b[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&1_700_000_000_000i64.to_be_bytes());
        b[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&count.to_be_bytes());
        update_crc(&mut b);
        b
    }

    #[test]
    fn parses_and_verifies_a_batch() {
        let b = sample(b"hello", 3);
        let batch = RecordBatch::parse_verified(&b).unwrap();
        assert_eq!(batch.size(), b.len());
        assert_eq!(batch.records_count(), 3);
        assert_eq!(batch.last_offset_delta(), 2);
        assert_eq!(batch.max_timestamp(), 1_700_000_000_000);
    }

    #[test]
    fn base_offset_and_epoch_are_outside_the_crc() {
        let mut b = sample(b"abc", 1);
        set_base_offset(&mut b, 42);
        set_partition_leader_epoch(&mut b, 7);
        let batch = RecordBatch::parse_verified(&b).unwrap();
        assert_eq!(batch.base_offset(), 42);
        assert_eq!(batch.last_offset(), 42);
        assert_eq!(batch.partition_leader_epoch(), 7);
    }

    #[test]
    fn crc_detects_a_flipped_bit() {
        let mut b = sample(b"abcdef", 1);
        b[HEADER_LEN + 2] ^= 0x10;
        assert!(matches!(RecordBatch::parse_verified(&b), Err(BatchError::CrcMismatch { .. })));
    }

    #[test]
    fn rejects_old_magic_short_and_bad_lengths() {
        let mut b = sample(b"", 1);
        b[MAGIC] = 1;
        assert_eq!(RecordBatch::parse(&b), Err(BatchError::UnsupportedMagic { magic: 1 }));
        let b = sample(b"xyz", 1);
        assert!(matches!(RecordBatch::parse(&b[..b.len() - 1]), Err(BatchError::Truncated { .. })));
        let mut b = sample(b"", 1);
        b[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&10i32.to_be_bytes());
        assert_eq!(RecordBatch::parse(&b), Err(BatchError::InvalidLength { length: 10 }));
        assert_eq!(total_size(&[0u8; 5]), Ok(None));
    }

    #[test]
    fn iterates_a_record_set_and_stops_before_a_partial_batch() {
        let mut set = sample(b"one", 1);
        set.extend(sample(b"second", 2));
        let whole = set.len();
        set.extend(&sample(b"third", 1)[..20]);
        let mut it = batches(&set);
        assert_eq!(it.next().unwrap().unwrap().records_count(), 1);
        assert_eq!(it.next().unwrap().unwrap().records_count(), 2);
        assert!(it.next().is_none());
        assert_eq!(it.remainder().len(), set.len() - whole);
        assert_eq!(batches(&set[..whole]).count(), 2);

        let mut bad = sample(b"x", 1);
        bad[MAGIC] = 0;
        let mut it = batches(&bad);
        assert_eq!(it.next(), Some(Err(BatchError::UnsupportedMagic { magic: 0 })));
        assert!(it.next().is_none());
    }

    #[test]
    fn log_append_time_rewrite_keeps_crc_valid() {
        let mut b = sample(b"payload", 1);
        set_log_append_time(&mut b, 99);
        let batch = RecordBatch::parse_verified(&b).unwrap();
        assert!(batch.is_log_append_time());
        assert_eq!(batch.max_timestamp(), 99);
    }
}
