//! Builds RecordBatch v2 bytes on the producer side.
//!
//! Records are encoded as they are appended into one buffer that starts with room for
//! the 61-byte header, so an uncompressed batch is finished in place and a compressed
//! one costs one compression pass into a second buffer. `build` fills in what only the
//! whole batch knows: lengths, `lastOffsetDelta`, base and max timestamps, and the
//! CRC-32C.
//!
//! As the Java producer does, the first record's timestamp is the batch's
//! `baseTimestamp`, offset deltas count from 0, and the broker assigns `baseOffset` and
//! `partitionLeaderEpoch` (written as 0 and -1).

use thiserror::Error;

use super::batch::{self, attributes, HEADER_LEN, LOG_OVERHEAD, MAGIC_V2};
use super::compression::{self, Compression};
use super::record::Header;
use crate::varint;

/// `partitionLeaderEpoch` as producers send it: unknown.
const NO_PARTITION_LEADER_EPOCH: i32 = -1;
/// Producer id, epoch and sequence of a non-idempotent producer.
const NO_PRODUCER_ID: i64 = -1;
const NO_PRODUCER_EPOCH: i16 = -1;
const NO_SEQUENCE: i32 = -1;

/// Why a record could not be added or a batch could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// `build` was called before any record was appended.
    #[error("record batch has no records")]
    Empty,
    /// A key, value, header or whole record longer than an i32 length can state.
    #[error("record {field} of {len} bytes is longer than the wire format allows")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// More records than `recordsCount` (an i32) can count.
    #[error("record batch already holds {count} records, the most it can")]
    TooManyRecords {
        /// Records in the batch.
        count: i32,
    },
    /// The finished batch would be longer than `batchLength` (an i32) can state.
    #[error("record batch of {size} bytes is longer than the wire format allows")]
    BatchTooLarge {
        /// The batch size.
        size: usize,
    },
}

/// Accumulates records and produces one v2 batch.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    compression: Compression,
    level: Option<i32>,
    transactional: bool,
    control: bool,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    /// Header placeholder, then the uncompressed records section.
    buf: Vec<u8>,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl BatchBuilder {
    /// An empty batch that will be compressed with `compression`.
    pub fn new(compression: Compression) -> Self {
        Self::with_capacity(compression, 0)
    }

    /// As [`Self::new`], reserving room for `records_bytes` of encoded records.
    pub fn with_capacity(compression: Compression, records_bytes: usize) -> Self {
        BatchBuilder::with_buffer(compression, Vec::with_capacity(HEADER_LEN + records_bytes))
    }

    /// A builder that writes into `buf` (emptied, its capacity kept): one that
    /// [`Self::build_recycling`] gave back, so that a producer fills the same memory
    /// batch after batch instead of faulting in fresh pages for each (Java's `BufferPool`).
    pub fn with_buffer(compression: Compression, mut buf: Vec<u8>) -> Self {
        buf.clear();
        buf.resize(HEADER_LEN, 0);
        BatchBuilder {
            compression,
            level: None,
            transactional: false,
            control: false,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            buf,
            count: 0,
            base_timestamp: -1,
            max_timestamp: -1,
        }
    }

    /// Marks the batch as an idempotent producer's: its id, epoch and the sequence
    /// number of the first record.
    #[must_use]
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Compresses at `level` instead of the codec's default (see
    /// [`compression::compress_into_at`]).
    #[must_use]
    pub fn level(mut self, level: Option<i32>) -> Self {
        self.level = level;
        self
    }

    /// Marks the batch as part of a transaction.
    #[must_use]
    pub fn transactional(mut self, transactional: bool) -> Self {
        self.transactional = transactional;
        self
    }

    /// Marks the batch as a control batch (a transaction marker; see [`control_marker`]).
    #[must_use]
    pub fn control(mut self, control: bool) -> Self {
        self.control = control;
        self
    }

    /// The codec the batch will be compressed with.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Records appended so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no record was appended yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size of the batch so far before compression, header included (compare this
    /// with the producer's `batch.size`).
    pub fn uncompressed_size(&self) -> usize {
        self.buf.len()
    }

    /// Bytes that [`Self::append`] would add for this record.
    ///
    /// # Errors
    /// [`BuildError::FieldTooLong`] as [`Self::append`].
    pub fn encoded_len(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header<'_>],
    ) -> Result<usize, BuildError> {
        let body = self.body_len(timestamp, key, value, headers)?;
        Ok(varint::varint_len(body) + body as usize)
    }

    /// Appends a record with its timestamp (milliseconds since the epoch), key, value
    /// and headers; returns the bytes it added.
    ///
    /// # Errors
    /// [`BuildError::FieldTooLong`] when a length does not fit the format's i32, and
    /// [`BuildError::TooManyRecords`]; the builder is unchanged then.
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header<'_>],
    ) -> Result<usize, BuildError> {
        let appended = self.append_within(usize::MAX, timestamp, key, value, headers)?;
        Ok(appended.expect("invariant: no record exceeds usize::MAX bytes"))
    }

    /// Appends a record as [`Self::append`] does, unless the builder holds records and
    /// this one would take [`Self::uncompressed_size`] past `max_size`: then `Ok(None)`,
    /// the builder unchanged. The check and the append share one length computation (a
    /// producer makes both for every record).
    ///
    /// # Errors
    /// As [`Self::append`].
    pub fn append_within(
        &mut self,
        max_size: usize,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header<'_>],
    ) -> Result<Option<usize>, BuildError> {
        if self.count == i32::MAX {
            return Err(BuildError::TooManyRecords { count: self.count });
        }
        let body = self.body_len(timestamp, key, value, headers)?;
        let len = varint::varint_len(body) + body as usize;
        if self.count > 0 && self.buf.len().saturating_add(len) > max_size {
            return Ok(None);
        }
        if self.count == 0 {
            self.base_timestamp = timestamp;
            self.max_timestamp = timestamp;
        }
        let before = self.buf.len();
        let out = &mut self.buf;
        out.reserve(varint::MAX_VARINT_LEN + body as usize);
        varint::put_varint(out, body);
        out.push(0); // record attributes: none defined
        varint::put_varlong(out, timestamp.wrapping_sub(self.base_timestamp));
        varint::put_varint(out, self.count);
        put_nullable(out, key);
        put_nullable(out, value);
        varint::put_varint(out, headers.len() as i32);
        for header in headers {
            put_nullable(out, Some(header.key));
            put_nullable(out, header.value);
        }
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
        Ok(Some(self.buf.len() - before))
    }

    /// Finishes the batch: compresses the records and fills in the header and CRC.
    ///
    /// The result is one whole batch (`Bytes::from` it without copying); the broker
    /// assigns its base offset.
    ///
    /// # Errors
    /// [`BuildError::Empty`] without records, [`BuildError::BatchTooLarge`] past 2 GiB.
    pub fn build(self) -> Result<Vec<u8>, BuildError> {
        self.build_recycling().map(|(batch, _)| batch)
    }

    /// [`Self::build`], also giving back the buffer the records were written to when
    /// compression left it unused, for [`Self::with_buffer`].
    ///
    /// # Errors
    /// As [`Self::build`].
    pub fn build_recycling(self) -> Result<(Vec<u8>, Option<Vec<u8>>), BuildError> {
        if self.count == 0 {
            return Err(BuildError::Empty);
        }
        let (mut out, spare) = match self.compression {
            Compression::None => (self.buf, None),
            codec => {
                let records = &self.buf[HEADER_LEN..];
                // Records compress a few times over; the Vec grows if not.
                let mut out = Vec::with_capacity(HEADER_LEN + records.len() / 2);
                out.resize(HEADER_LEN, 0);
                compression::compress_into_at(codec, self.level, records, &mut out);
                (out, Some(self.buf))
            }
        };
        let batch_length = i32::try_from(out.len() - LOG_OVERHEAD)
            .map_err(|_| BuildError::BatchTooLarge { size: out.len() })?;
        let mut attrs = i16::from(self.compression.id());
        if self.transactional {
            attrs |= attributes::TRANSACTIONAL;
        }
        if self.control {
            attrs |= attributes::CONTROL;
        }
        let mut h = HeaderWriter(&mut out[..HEADER_LEN]);
        h.put(batch::BASE_OFFSET, &0i64.to_be_bytes());
        h.put(batch::BATCH_LENGTH, &batch_length.to_be_bytes());
        h.put(batch::PARTITION_LEADER_EPOCH, &NO_PARTITION_LEADER_EPOCH.to_be_bytes());
        h.put(batch::MAGIC, &MAGIC_V2.to_be_bytes());
        h.put(batch::ATTRIBUTES, &attrs.to_be_bytes());
        h.put(batch::LAST_OFFSET_DELTA, &(self.count - 1).to_be_bytes());
        h.put(batch::BASE_TIMESTAMP, &self.base_timestamp.to_be_bytes());
        h.put(batch::MAX_TIMESTAMP, &self.max_timestamp.to_be_bytes());
        h.put(batch::PRODUCER_ID, &self.producer_id.to_be_bytes());
        h.put(batch::PRODUCER_EPOCH, &self.producer_epoch.to_be_bytes());
        h.put(batch::BASE_SEQUENCE, &self.base_sequence.to_be_bytes());
        h.put(batch::RECORDS_COUNT, &self.count.to_be_bytes());
        batch::update_crc(&mut out);
        Ok((out, spare))
    }

    /// Length of a record after its length varint, checked to fit an i32.
    fn body_len(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header<'_>],
    ) -> Result<i32, BuildError> {
        let base = if self.count == 0 { timestamp } else { self.base_timestamp };
        let header_count =
            i32::try_from(headers.len()).map_err(|_| too_long("header count", headers.len()))?;
        let mut len = 1
            + varint::varlong_len(timestamp.wrapping_sub(base))
            + varint::varint_len(self.count)
            + nullable_len("key", key)?
            + nullable_len("value", value)?
            + varint::varint_len(header_count);
        for header in headers {
            len += nullable_len("header key", Some(header.key))?;
            len += nullable_len("header value", header.value)?;
        }
        i32::try_from(len).map_err(|_| too_long("record", len))
    }
}

/// A transaction marker: the one-record control batch that ends a producer's transaction
/// in a partition (Kafka's `EndTransactionMarker`). Its key is version 0 and the type
/// (0 abort, 1 commit); its value is version 0 and the coordinator epoch. Uncompressed
/// and without a sequence, as Kafka writes it.
pub fn control_marker(
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    commit: bool,
    timestamp: i64,
) -> Vec<u8> {
    let mut key = [0u8; 4];
    key[2..].copy_from_slice(&i16::from(commit).to_be_bytes());
    let mut value = [0u8; 6];
    value[2..].copy_from_slice(&coordinator_epoch.to_be_bytes());
    let mut b = BatchBuilder::new(Compression::None)
        .producer(producer_id, producer_epoch, NO_SEQUENCE)
        .transactional(true)
        .control(true);
    b.append(timestamp, Some(&key), Some(&value), &[])
        .expect("invariant: a 4-byte key and a 6-byte value fit a batch");
    b.build().expect("invariant: the batch holds one record")
}

fn too_long(field: &'static str, len: usize) -> BuildError {
    BuildError::FieldTooLong { field, len }
}

/// Encoded size of a varint length and the bytes (or -1 for null).
fn nullable_len(field: &'static str, bytes: Option<&[u8]>) -> Result<usize, BuildError> {
    match bytes {
        None => Ok(1),
        Some(b) => {
            let len = i32::try_from(b.len()).map_err(|_| too_long(field, b.len()))?;
            Ok(varint::varint_len(len) + b.len())
        }
    }
}

/// Writes a varint length and the bytes, or -1 for null; lengths were checked.
fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => varint::put_varint(out, -1),
        Some(b) => {
            varint::put_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}

/// Writes big-endian fields at their header offsets.
struct HeaderWriter<'a>(&'a mut [u8]);

impl HeaderWriter<'_> {
    fn put(&mut self, at: usize, bytes: &[u8]) {
        self.0[at..at + bytes.len()].copy_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_control_marker_is_a_transactional_control_batch_naming_its_type() {
        use crate::record::ControlType;
        for (commit, kind) in [(true, ControlType::Commit), (false, ControlType::Abort)] {
            let bytes = control_marker(42, 7, 3, commit, 1_700_000_000_000);
            let batch = RecordBatch::parse_verified(&bytes).unwrap();
            assert!(batch.is_control() && batch.is_transactional());
            assert_eq!((batch.producer_id(), batch.producer_epoch()), (42, 7));
            assert_eq!((batch.base_sequence(), batch.records_count()), (-1, 1));
            let records = batch.records(1 << 10).unwrap();
            let record = records.iter().next().unwrap().unwrap();
            assert_eq!(record.control_type(), Some(kind));
            assert_eq!(record.value(), Some(&[0, 0, 0, 0, 0, 3][..]));
        }
    }

    use super::*;
    use crate::record::batch::RecordBatch;

    #[test]
    fn golden_uncompressed_batch() {
        // One record: key "k", value "v", no headers, timestamp 1000. Byte for byte what
        // kafka-python 3.0's DefaultRecordBatchBuilder writes, except partitionLeaderEpoch:
        // it writes 0, the Java producer -1 (outside the CRC either way).
        let mut b = BatchBuilder::new(Compression::None);
        b.append(1000, Some(b"k"), Some(b"v"), &[]).unwrap();
        let bytes = b.build().unwrap();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 0, 0, 0, 0, 0,             // baseOffset
            0, 0, 0, 0x3a,                      // batchLength 58
            0xff, 0xff, 0xff, 0xff,             // partitionLeaderEpoch -1
            2,                                  // magic
            0x71, 0x6a, 0x61, 0x89,             // crc
            0, 0,                               // attributes
            0, 0, 0, 0,                         // lastOffsetDelta
            0, 0, 0, 0, 0, 0, 0x03, 0xe8,       // baseTimestamp 1000
            0, 0, 0, 0, 0, 0, 0x03, 0xe8,       // maxTimestamp 1000
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // producerId -1
            0xff, 0xff,                         // producerEpoch -1
            0xff, 0xff, 0xff, 0xff,             // baseSequence -1
            0, 0, 0, 1,                         // recordsCount
            0x10, 0, 0, 0, 0x02, b'k', 0x02, b'v', 0, // record, length 8
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn fills_the_header_from_the_records() {
        let mut b = BatchBuilder::new(Compression::Gzip).producer(77, 3, 1000).transactional(true);
        b.append(500, None, Some(b"a"), &[]).unwrap();
        b.append(900, Some(b"k"), None, &[Header { key: b"h", value: None }]).unwrap();
        b.append(700, None, None, &[]).unwrap();
        assert_eq!(b.len(), 3);
        let bytes = b.build().unwrap();
        let batch = RecordBatch::parse_verified(&bytes).unwrap();
        assert_eq!(batch.size(), bytes.len());
        assert_eq!(batch.records_count(), 3);
        assert_eq!(batch.last_offset_delta(), 2);
        assert_eq!(batch.base_timestamp(), 500);
        assert_eq!(batch.max_timestamp(), 900);
        assert_eq!(batch.producer_id(), 77);
        assert_eq!(batch.producer_epoch(), 3);
        assert_eq!(batch.base_sequence(), 1000);
        assert!(batch.is_transactional());
        assert_eq!(batch.compression_id(), 1);
        assert_eq!(batch.partition_leader_epoch(), -1);
        let records = batch.records(1 << 20).unwrap();
        let ts: Vec<_> = records.iter().map(|r| records.timestamp(&r.unwrap())).collect();
        assert_eq!(ts, [500, 900, 700]);
    }

    #[test]
    fn encoded_len_matches_append() {
        let mut b = BatchBuilder::new(Compression::None);
        let headers = [Header { key: b"trace", value: Some(&[7; 200]) }];
        for i in 0..50i64 {
            let value = vec![b'x'; (i * 10) as usize];
            let predicted = b.encoded_len(i * 1000, Some(b"key"), Some(&value), &headers).unwrap();
            let before = b.uncompressed_size();
            assert_eq!(
                b.append(i * 1000, Some(b"key"), Some(&value), &headers).unwrap(),
                predicted
            );
            assert_eq!(b.uncompressed_size() - before, predicted);
        }
    }

    #[test]
    fn append_within_appends_what_fits_and_leaves_the_builder_unchanged_otherwise() {
        let mut b = BatchBuilder::new(Compression::None);
        let len = b.encoded_len(0, None, Some(&[1; 40]), &[]).unwrap();
        // The first record goes in whatever the bound: a batch holds at least one.
        assert_eq!(b.append_within(1, 0, None, Some(&[1; 40]), &[]).unwrap(), Some(len));
        let size = b.uncompressed_size();
        let next = b.encoded_len(0, None, Some(&[2; 40]), &[]).unwrap();
        assert_eq!(b.append_within(size + next - 1, 0, None, Some(&[2; 40]), &[]).unwrap(), None);
        assert_eq!(b.uncompressed_size(), size);
        assert_eq!(b.append_within(size + next, 0, None, Some(&[2; 40]), &[]).unwrap(), Some(next));
        let bytes = b.build().unwrap();
        let batch = RecordBatch::parse_verified(&bytes).unwrap();
        assert_eq!(batch.records_count(), 2);
    }

    #[test]
    fn a_compressed_batch_gives_back_its_record_buffer_for_the_next_one() {
        let mut b = BatchBuilder::new(Compression::None);
        b.append(1, None, Some(b"plain"), &[]).unwrap();
        assert!(b.build_recycling().unwrap().1.is_none(), "uncompressed: the buffer is the batch");
        let mut b = BatchBuilder::with_capacity(Compression::Lz4, 4096);
        b.append(1, None, Some(&[1; 500]), &[]).unwrap();
        let (first, spare) = b.build_recycling().unwrap();
        let spare = spare.expect("compression left it unused");
        assert!(spare.capacity() >= 4096);
        let mut b = BatchBuilder::with_buffer(Compression::Lz4, spare);
        b.append(2, Some(b"k"), Some(b"second"), &[]).unwrap();
        let second = b.build().unwrap();
        for (bytes, value) in [(&first, vec![1u8; 500]), (&second, b"second".to_vec())] {
            let batch = RecordBatch::parse_verified(bytes).unwrap();
            let records = batch.records(1 << 20).unwrap();
            let got: Vec<Vec<u8>> =
                records.iter().map(|r| r.unwrap().value().unwrap().to_vec()).collect();
            assert_eq!(got, [value], "nothing of the first batch is left in the second");
        }
    }

    #[test]
    fn empty_batches_are_refused() {
        assert_eq!(BatchBuilder::new(Compression::Zstd).build(), Err(BuildError::Empty));
    }

    #[test]
    fn extreme_timestamps_wrap_as_in_java() {
        let mut b = BatchBuilder::new(Compression::None);
        b.append(i64::MIN, None, None, &[]).unwrap();
        b.append(i64::MAX, None, None, &[]).unwrap();
        let bytes = b.build().unwrap();
        let batch = RecordBatch::parse_verified(&bytes).unwrap();
        let records = batch.records(0).unwrap();
        let ts: Vec<_> = records.iter().map(|r| records.timestamp(&r.unwrap())).collect();
        assert_eq!(ts, [i64::MIN, i64::MAX]);
    }
}
