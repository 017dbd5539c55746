//! Zero-copy views of the records inside an (uncompressed) records section.
//!
//! ```text
//! record (all varints zig-zag, see crate::varint)
//!   length          varint    bytes after this field
//!   attributes      i8        unused, 0
//!   timestampDelta  varlong   timestamp - batch baseTimestamp
//!   offsetDelta     varint    offset - batch baseOffset
//!   keyLength       varint    -1 = null key
//!   key             bytes
//!   valueLength     varint    -1 = null value
//!   value           bytes
//!   headerCount     varint
//!   headers         headerKeyLength varint · headerKey bytes (UTF-8 in Kafka)
//!                   headerValueLength varint (-1 = null) · headerValue bytes
//! ```
//!
//! Invariants: [`Records`] yields borrowed [`Record`]s and allocates nothing. Every
//! length is checked against the bytes left before it is used, a record must consume
//! exactly the bytes its `length` declares, and the section must hold exactly the
//! declared number of records: the same checks Kafka's `DefaultRecord` makes. Arbitrary
//! input yields an error, never a panic.

use thiserror::Error;

use super::compression::CompressionError;
use crate::varint::{self, VarintError};

/// Why a records section, or one record in it, cannot be decoded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RecordError {
    /// A field runs past the end of the record or the section.
    #[error("record {index}: {field} needs {needed} bytes, {available} left")]
    Truncated {
        /// Position of the record in the batch (0-based).
        index: u32,
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// A varint is cut short or longer than its type allows.
    #[error("record {index}: {field} is not a valid varint: {source}")]
    Varint {
        /// Position of the record in the batch.
        index: u32,
        /// The field being read.
        field: &'static str,
        /// What was wrong with it.
        source: VarintError,
    },
    /// A length or count below -1 (or below 0 where null is not allowed).
    #[error("record {index}: {field} {value} is invalid")]
    InvalidLength {
        /// Position of the record in the batch.
        index: u32,
        /// The field holding the value.
        field: &'static str,
        /// The value found.
        value: i64,
    },
    /// The fields of a record end before or after its declared length.
    #[error("record {index}: declared length {declared} but its fields use {used} bytes")]
    LengthMismatch {
        /// Position of the record in the batch.
        index: u32,
        /// The record's `length` field.
        declared: usize,
        /// Bytes its fields occupy.
        used: usize,
    },
    /// Bytes remain after the declared number of records.
    #[error("records section has {remaining} bytes left after its {count} declared records")]
    TrailingBytes {
        /// The batch's `recordsCount`.
        count: u32,
        /// Bytes left over.
        remaining: usize,
    },
    /// The records section could not be decompressed.
    #[error(transparent)]
    Compression(#[from] CompressionError),
}

/// One record header: a key (UTF-8 in Kafka, kept as bytes) and an optional value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header<'a> {
    /// Header key bytes; see [`Header::key_str`].
    pub key: &'a [u8],
    /// Header value, `None` for a null value.
    pub value: Option<&'a [u8]>,
}

impl<'a> Header<'a> {
    /// The key as text, if it is valid UTF-8 (Kafka clients always write UTF-8).
    pub fn key_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.key).ok()
    }
}

/// A borrowed view of one decoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    attributes: i8,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    header_count: u32,
    headers: &'a [u8],
}

impl<'a> Record<'a> {
    /// The record attributes byte (unused by Kafka so far; always 0 from clients).
    pub fn attributes(&self) -> i8 {
        self.attributes
    }
    /// Timestamp relative to the batch's base timestamp.
    pub fn timestamp_delta(&self) -> i64 {
        self.timestamp_delta
    }
    /// Offset relative to the batch's base offset.
    pub fn offset_delta(&self) -> i32 {
        self.offset_delta
    }
    /// The key, `None` when null.
    pub fn key(&self) -> Option<&'a [u8]> {
        self.key
    }
    /// The value, `None` when null (a tombstone on compacted topics).
    pub fn value(&self) -> Option<&'a [u8]> {
        self.value
    }
    /// Number of headers.
    pub fn header_count(&self) -> u32 {
        self.header_count
    }
    /// The headers in wire order (already validated; iterating cannot fail).
    pub fn headers(&self) -> Headers<'a> {
        Headers { buf: self.headers, remaining: self.header_count }
    }

    /// In a control batch, what this record marks: its key is a version (i16) and a
    /// type (i16). `None` when the key is not at least 4 bytes.
    pub fn control_type(&self) -> Option<ControlType> {
        let key = self.key?;
        let (_version, rest) = key.split_first_chunk::<2>()?;
        let kind = i16::from_be_bytes(*rest.first_chunk::<2>()?);
        Some(match kind {
            0 => ControlType::Abort,
            1 => ControlType::Commit,
            other => ControlType::Other(other),
        })
    }
}

/// The type in a control record's key (Kafka's `ControlRecordType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlType {
    /// A transaction was aborted: read_committed consumers drop its records.
    Abort,
    /// A transaction was committed.
    Commit,
    /// Another type (KRaft's leader change and snapshot markers, or newer ones).
    Other(i16),
}

/// Iterator over the headers of one [`Record`].
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    buf: &'a [u8],
    remaining: u32,
}

impl<'a> Iterator for Headers<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        if self.remaining == 0 {
            return None;
        }
        // Record::parse walked these exact bytes with the same checks, so a failure here
        // would be a bug; stop instead of panicking on it.
        let mut cursor = Cursor { rest: self.buf, index: 0 };
        let key = cursor.bytes("header key length", false).ok()?.unwrap_or_default();
        let value = cursor.bytes("header value length", true).ok()?;
        self.buf = cursor.rest;
        self.remaining -= 1;
        Some(Header { key, value })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining as usize, Some(self.remaining as usize))
    }
}

impl ExactSizeIterator for Headers<'_> {}

/// Iterator over the records of an uncompressed records section.
///
/// Yields `Err` once on the first malformed record, then stops.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    rest: &'a [u8],
    count: u32,
    index: u32,
    failed: bool,
}

impl<'a> Records<'a> {
    /// Iterates `count` records in `section` (the bytes after a batch header, or their
    /// decompressed form).
    pub fn new(section: &'a [u8], count: u32) -> Self {
        Records { rest: section, count, index: 0, failed: false }
    }

    /// Records not yet yielded, by the declared count.
    pub fn remaining(&self) -> u32 {
        self.count - self.index
    }

    /// The bytes not yet read: where the next record starts.
    pub fn unread(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, RecordError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.index == self.count {
            if self.rest.is_empty() {
                return None;
            }
            self.failed = true;
            return Some(Err(RecordError::TrailingBytes {
                count: self.count,
                remaining: self.rest.len(),
            }));
        }
        match parse_record(self.rest, self.index) {
            Ok((record, rest)) => {
                self.rest = rest;
                self.index += 1;
                Some(Ok(record))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed {
            (0, Some(0))
        } else {
            // One more item is possible: the trailing-bytes error.
            (0, Some(self.remaining() as usize + 1))
        }
    }
}

impl std::iter::FusedIterator for Records<'_> {}

/// Parses the record at the start of `buf`; returns it and the bytes after it.
#[inline]
fn parse_record(buf: &[u8], index: u32) -> Result<(Record<'_>, &[u8]), RecordError> {
    let mut c = Cursor { rest: buf, index };
    let length = c.varint("record length")?;
    let declared =
        usize::try_from(length).map_err(|_| invalid(index, "record length", i64::from(length)))?;
    let Some((body, after)) = c.rest.split_at_checked(declared) else {
        return Err(truncated(index, "record", declared, c.rest.len()));
    };
    c.rest = body;

    let attributes = c.byte("attributes")? as i8;
    let timestamp_delta = c.varlong("timestamp delta")?;
    let offset_delta = c.varint("offset delta")?;
    let key = c.bytes("key length", true)?;
    let value = c.bytes("value length", true)?;
    let header_count = c.varint("header count")?;
    let header_count = u32::try_from(header_count)
        .map_err(|_| invalid(index, "header count", i64::from(header_count)))?;
    // The headers run to the end of the body (checked below). Walk them once here so
    // that Headers can be infallible; each takes at least two bytes, so the count is
    // bounded by the record length.
    let headers = c.rest;
    for _ in 0..header_count {
        c.bytes("header key length", false)?;
        c.bytes("header value length", true)?;
    }
    if !c.rest.is_empty() {
        let used = declared - c.rest.len();
        return Err(RecordError::LengthMismatch { index, declared, used });
    }
    let record =
        Record { attributes, timestamp_delta, offset_delta, key, value, header_count, headers };
    Ok((record, after))
}

/// A bounds-checked reader over one record's bytes: `rest` shrinks as fields are read.
///
/// The happy path is inlined into the record loop; errors are built in cold functions so
/// they do not bloat it.
struct Cursor<'a> {
    rest: &'a [u8],
    index: u32,
}

impl<'a> Cursor<'a> {
    #[inline(always)]
    fn byte(&mut self, field: &'static str) -> Result<u8, RecordError> {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                Ok(b)
            }
            None => Err(truncated(self.index, field, 1, 0)),
        }
    }

    #[inline(always)]
    fn varint(&mut self, field: &'static str) -> Result<i32, RecordError> {
        match varint::get_varint(self.rest) {
            Ok((v, n)) => {
                self.rest = self.rest.get(n..).unwrap_or_default();
                Ok(v)
            }
            Err(source) => Err(bad_varint(self.index, field, source)),
        }
    }

    #[inline(always)]
    fn varlong(&mut self, field: &'static str) -> Result<i64, RecordError> {
        match varint::get_varlong(self.rest) {
            Ok((v, n)) => {
                self.rest = self.rest.get(n..).unwrap_or_default();
                Ok(v)
            }
            Err(source) => Err(bad_varint(self.index, field, source)),
        }
    }

    /// A varint length then that many bytes; -1 is null when `nullable`.
    #[inline(always)]
    fn bytes(
        &mut self,
        field: &'static str,
        nullable: bool,
    ) -> Result<Option<&'a [u8]>, RecordError> {
        let len = self.varint(field)?;
        let Ok(len) = usize::try_from(len) else {
            if len == -1 && nullable {
                return Ok(None);
            }
            return Err(invalid(self.index, field, i64::from(len)));
        };
        match self.rest.split_at_checked(len) {
            Some((bytes, rest)) => {
                self.rest = rest;
                Ok(Some(bytes))
            }
            None => Err(truncated(self.index, field, len, self.rest.len())),
        }
    }
}

#[cold]
#[inline(never)]
fn truncated(index: u32, field: &'static str, needed: usize, available: usize) -> RecordError {
    RecordError::Truncated { index, field, needed, available }
}

#[cold]
#[inline(never)]
fn bad_varint(index: u32, field: &'static str, source: VarintError) -> RecordError {
    RecordError::Varint { index, field, source }
}

#[cold]
#[inline(never)]
fn invalid(index: u32, field: &'static str, value: i64) -> RecordError {
    RecordError::InvalidLength { index, field, value }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::varint::{put_varint, put_varlong};

    /// Encodes one record by hand, independently of the builder.
    fn encode(
        ts: i64,
        off: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&[u8], Option<&[u8]>)],
    ) -> Vec<u8> {
        let mut body = vec![0u8];
        put_varlong(&mut body, ts);
        put_varint(&mut body, off);
        for field in [key, value] {
            match field {
                Some(b) => {
                    put_varint(&mut body, b.len() as i32);
                    body.extend_from_slice(b);
                }
                None => put_varint(&mut body, -1),
            }
        }
        put_varint(&mut body, headers.len() as i32);
        for (k, v) in headers {
            put_varint(&mut body, k.len() as i32);
            body.extend_from_slice(k);
            match v {
                Some(v) => {
                    put_varint(&mut body, v.len() as i32);
                    body.extend_from_slice(v);
                }
                None => put_varint(&mut body, -1),
            }
        }
        let mut out = Vec::new();
        put_varint(&mut out, body.len() as i32);
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn decodes_records_with_nulls_and_headers() {
        let mut section = encode(0, 0, Some(b"k1"), Some(b"v1"), &[]);
        section.extend(encode(5, 1, None, None, &[(b"h", Some(b"x")), (b"n", None)]));
        let records: Vec<_> = Records::new(&section, 2).collect::<Result<_, _>>().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].key(), Some(&b"k1"[..]));
        assert_eq!(records[0].value(), Some(&b"v1"[..]));
        assert_eq!(records[0].headers().count(), 0);
        assert_eq!(records[1].timestamp_delta(), 5);
        assert_eq!(records[1].offset_delta(), 1);
        assert_eq!(records[1].key(), None);
        assert_eq!(records[1].value(), None);
        let headers: Vec<_> = records[1].headers().collect();
        assert_eq!(
            headers,
            [Header { key: b"h", value: Some(b"x") }, Header { key: b"n", value: None }]
        );
        assert_eq!(headers[0].key_str(), Some("h"));
    }

    #[test]
    fn control_records_name_their_type() {
        let commit = encode(0, 0, Some(&[0, 0, 0, 1]), Some(&[0, 0, 0, 0, 0, 0]), &[]);
        let r = Records::new(&commit, 1).next().unwrap().unwrap();
        assert_eq!(r.control_type(), Some(ControlType::Commit));
        let abort = encode(0, 0, Some(&[0, 0, 0, 0]), None, &[]);
        let r = Records::new(&abort, 1).next().unwrap().unwrap();
        assert_eq!(r.control_type(), Some(ControlType::Abort));
        let short = encode(0, 0, Some(&[0, 0, 0]), None, &[]);
        assert_eq!(Records::new(&short, 1).next().unwrap().unwrap().control_type(), None);
    }

    #[test]
    fn golden_record_bytes() {
        // key "a", value "bc", one header ("h", "v"), timestamp delta 1, offset delta 2.
        let bytes = encode(1, 2, Some(b"a"), Some(b"bc"), &[(b"h", Some(b"v"))]);
        assert_eq!(
            bytes,
            [0x1a, 0x00, 0x02, 0x04, 0x02, b'a', 0x04, b'b', b'c', 0x02, 0x02, b'h', 0x02, b'v']
        );
        let r = Records::new(&bytes, 1).next().unwrap().unwrap();
        assert_eq!((r.timestamp_delta(), r.offset_delta()), (1, 2));
    }

    #[test]
    fn reports_trailing_bytes_and_missing_records() {
        let mut section = encode(0, 0, Some(b"k"), Some(b"v"), &[]);
        section.push(0);
        let mut it = Records::new(&section, 1);
        assert!(it.next().unwrap().is_ok());
        assert!(matches!(
            it.next(),
            Some(Err(RecordError::TrailingBytes { count: 1, remaining: 1 }))
        ));
        assert!(it.next().is_none());

        let section = encode(0, 0, Some(b"k"), Some(b"v"), &[]);
        let mut it = Records::new(&section, 2);
        assert!(it.next().unwrap().is_ok());
        assert!(matches!(it.next(), Some(Err(RecordError::Varint { index: 1, .. }))));
        assert!(it.next().is_none());
    }

    #[test]
    fn rejects_lengths_that_lie() {
        // Record length larger than the section.
        let mut section = encode(0, 0, Some(b"key"), None, &[]);
        section[0] += 2;
        assert!(matches!(
            Records::new(&section, 1).next(),
            Some(Err(RecordError::Truncated { field: "record", .. }))
        ));
        // Key length past the record.
        let mut section = encode(0, 0, Some(b"key"), None, &[]);
        section[4] = 0x7e; // key length 63
        assert!(matches!(
            Records::new(&section, 1).next(),
            Some(Err(RecordError::Truncated { field: "key length", .. }))
        ));
        // Key length -2.
        section[4] = 0x03;
        assert!(matches!(
            Records::new(&section, 1).next(),
            Some(Err(RecordError::InvalidLength { value: -2, .. }))
        ));
        // Fields end before the declared length.
        let mut section = encode(0, 0, Some(b"k"), None, &[]);
        section[0] += 4; // zig-zag: declared length + 2
        section.extend([0, 0]);
        assert!(matches!(
            Records::new(&section, 1).next(),
            Some(Err(RecordError::LengthMismatch { used, declared, .. })) if used + 2 == declared
        ));
    }

    #[test]
    fn null_header_keys_are_rejected() {
        let mut section = encode(0, 0, None, None, &[(b"", None)]);
        // Header key length 0 -> -1.
        let at = section.len() - 2;
        section[at] = 0x01;
        assert!(matches!(
            Records::new(&section, 1).next(),
            Some(Err(RecordError::InvalidLength { field: "header key length", value: -1, .. }))
        ));
    }

    #[test]
    fn a_huge_header_count_fails_without_allocating() {
        let mut body = vec![0u8, 0, 0, 1, 1];
        put_varint(&mut body, i32::MAX);
        let mut section = Vec::new();
        put_varint(&mut section, body.len() as i32);
        section.extend(body);
        assert!(matches!(Records::new(&section, 1).next(), Some(Err(RecordError::Varint { .. }))));
    }
}
