//! A walk over a request body that checks every length and array count against the bytes
//! left, before kafka-protocol decodes it.
//!
//! Why: kafka-protocol 0.15.1 decodes arrays with `Vec::with_capacity(count)`, the count
//! read straight off the wire (`types::Array` and `types::CompactArray` in its
//! `protocol/types.rs`; still so in 0.18). An 8-byte Metadata body with a topic count of
//! `0x7fff_ffff` asks for ~150 GiB up front; the allocator fails and Rust aborts the whole
//! broker (allocation failure is not a panic that could be caught). Upstream has open pull
//! requests for this (kafka-protocol-rs #152, #161, #200), none released.
//!
//! The fix here, without patching the crate: [`walk_request`] reads the body the way
//! kafka-protocol's decoder will (same fields, same order, same version conditions: the
//! walkers in `shape/requests.rs` and `shape/responses.rs` are generated from its decoders
//! by `protocol/tools/generate_shape.py`),
//! and rejects any array whose count is larger than the bytes left. Every array element
//! takes at least one byte on the wire, so no valid message is rejected, and after a
//! successful walk each `with_capacity` is bounded by the real number of elements. The
//! walk allocates nothing and only touches length prefixes, so it costs little even for a
//! 1 MiB Produce (see `benches/benches/protocol.rs`).
//!
//! The walk also refuses tagged-field numbers above `i32::MAX` ([`ShapeError::InvalidTag`]):
//! kafka-protocol keeps them under negative keys that its encoder then drops while still
//! counting them (found by the `request` fuzz target).
//!
//! What remains is the inherent cost of decoding into structs: an element of two wire
//! bytes (an empty topic name) becomes a struct of 72 bytes. `protocol/tests/hostile.rs`
//! measures 35× the frame size as the worst legitimate peak and checks 64× + 16 KiB for
//! any input. A broker then spends about as much again per element on its answer (the
//! answer's struct, its encoded bytes): about 200 bytes an element in all, whatever the
//! element's wire size. So a request may hold at most [`MAX_REQUEST_ELEMENTS`] array
//! elements in all, 2^18: at 200 bytes each they fit the broker's fixed allowance of
//! 64 MiB per request, so no shape of request costs more than a small multiple of its
//! frame plus that (a client sending more names over 262,144 topics or partitions in one
//! request, past what a broker of 100,000 partitions needs). Responses, which come from a
//! broker the client chose, have no such cap.

mod requests;
mod responses;

/// Array elements a request may hold, all arrays together: bounds what decoding and
/// answering it can cost beyond its frame (~200 bytes an element) to ~50 MiB.
pub const MAX_REQUEST_ELEMENTS: u64 = 1 << 18;

use thiserror::Error;

use crate::api_key::ApiKey;

/// Result of walking one field or struct.
pub(super) type Walked = Result<(), ShapeError>;

/// Why a body's shape was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ShapeError {
    /// The body ends inside a field.
    #[error("body ends at byte {at}: the field there needs {needed} bytes, {remaining} left")]
    Truncated {
        /// Offset of the field in the body.
        at: usize,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes left in the body.
        remaining: usize,
    },
    /// An array claims more elements than there are bytes left.
    #[error("array at byte {at} claims {count} elements but only {remaining} bytes are left")]
    ArrayTooLong {
        /// Offset of the count in the body.
        at: usize,
        /// The count as read.
        count: u64,
        /// Bytes left after the count.
        remaining: usize,
    },
    /// The arrays of a request hold more elements, all together, than
    /// [`MAX_REQUEST_ELEMENTS`].
    #[error("array at byte {at} takes the request past {limit} array elements")]
    TooManyElements {
        /// Offset of the count in the body.
        at: usize,
        /// The limit.
        limit: u64,
    },
    /// A string, bytes or array length below -1.
    #[error("negative length {len} at byte {at}")]
    NegativeLength {
        /// Offset of the length in the body.
        at: usize,
        /// The length as read.
        len: i32,
    },
    /// A tagged field number above `i32::MAX`. Kafka's tags are non-negative int32s;
    /// kafka-protocol would store this one under a negative key that its encoder then
    /// counts but does not write, so it is refused here.
    #[error("tag {tag} at byte {at} is above i32::MAX")]
    InvalidTag {
        /// Offset of the tag in the body.
        at: usize,
        /// The tag as read.
        tag: u32,
    },
    /// A field (or tagged field) that this version does not have.
    #[error("field at byte {at} is not valid in version {version}")]
    InvalidForVersion {
        /// Offset in the body.
        at: usize,
        /// The message version.
        version: i16,
    },
    /// Sluice has no walker for this API.
    #[error("no shape known for {api_key:?}")]
    UnknownApi {
        /// The API.
        api_key: ApiKey,
    },
}

/// Walks the body of a request for `api_key` at `version`; returns how many bytes the
/// message spans (trailing bytes after it are not looked at).
///
/// # Errors
///
/// A [`ShapeError`] naming the first field that is truncated, negative or over-long.
pub fn walk_request(api_key: ApiKey, version: i16, body: &[u8]) -> Result<usize, ShapeError> {
    walk_with(requests::walker(api_key), api_key, version, body, MAX_REQUEST_ELEMENTS)
}

/// How many array elements the body of a request holds, all arrays together: what decoding
/// it costs, for deciding where to decode it. Capped as [`walk_request`] caps them.
///
/// # Errors
///
/// A [`ShapeError`] naming the first field that is truncated, negative or over-long.
pub fn request_elements(api_key: ApiKey, version: i16, body: &[u8]) -> Result<u64, ShapeError> {
    let walker = requests::walker(api_key).ok_or(ShapeError::UnknownApi { api_key })?;
    let mut w = Walker { buf: body, pos: 0, elements_left: MAX_REQUEST_ELEMENTS };
    walker(&mut w, version)?;
    Ok(MAX_REQUEST_ELEMENTS - w.elements_left)
}

/// Walks the body of a response, as [`walk_request`] does a request.
///
/// # Errors
///
/// A [`ShapeError`] naming the first field that is truncated, negative or over-long.
pub fn walk_response(api_key: ApiKey, version: i16, body: &[u8]) -> Result<usize, ShapeError> {
    walk_with(responses::walker(api_key), api_key, version, body, u64::MAX)
}

fn walk_with<'a>(
    walker: Option<fn(&mut Walker<'a>, i16) -> Walked>,
    api_key: ApiKey,
    version: i16,
    body: &'a [u8],
    max_elements: u64,
) -> Result<usize, ShapeError> {
    let walker = walker.ok_or(ShapeError::UnknownApi { api_key })?;
    let mut w = Walker { buf: body, pos: 0, elements_left: max_elements };
    walker(&mut w, version)?;
    Ok(w.pos)
}

/// The field kinds of Kafka's wire format, as the generated walkers visit them.
///
/// [`Walker`] reads and checks; tests implement it to *write* random valid messages from
/// the same generated code.
pub(super) trait Visitor {
    /// A fixed-size field (integers, UUIDs) of `n` bytes.
    fn fixed(&mut self, n: usize) -> Walked;
    /// A `BOOLEAN` (one byte).
    fn boolean(&mut self) -> Walked;
    /// A `STRING` / `NULLABLE_STRING` (i16 length, -1 = null).
    fn string(&mut self) -> Walked;
    /// A `COMPACT_STRING` / `COMPACT_NULLABLE_STRING` (uvarint length + 1, 0 = null).
    fn compact_string(&mut self) -> Walked;
    /// `BYTES` / `NULLABLE_BYTES` / `RECORDS` (i32 length, -1 = null).
    fn bytes(&mut self) -> Walked;
    /// `COMPACT_BYTES` / `COMPACT_RECORDS` (uvarint length + 1, 0 = null).
    fn compact_bytes(&mut self) -> Walked;
    /// An `UNSIGNED_VARINT`; returns its value.
    fn uvarint(&mut self) -> Result<u32, ShapeError>;
    /// A tagged field's tag number (an `UNSIGNED_VARINT`); returns it.
    fn tag(&mut self) -> Result<u32, ShapeError>;
    /// The contents of an unknown tagged field, `n` bytes.
    fn skip(&mut self, n: usize) -> Walked;
    /// An `ARRAY` (i32 count, -1 = null) of elements visited by `element`.
    fn array(&mut self, element: impl FnMut(&mut Self) -> Walked) -> Walked;
    /// A `COMPACT_ARRAY` (uvarint count + 1, 0 = null).
    fn compact_array(&mut self, element: impl FnMut(&mut Self) -> Walked) -> Walked;
    /// A tagged-field section none of whose tags the struct knows.
    fn unknown_tagged_fields(&mut self) -> Walked;
    /// The error for a field kafka-protocol rejects in this version.
    fn invalid(&self, version: i16) -> ShapeError;
}

/// A cursor over a body that reads length prefixes the way kafka-protocol's `types` do.
pub(super) struct Walker<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Array elements the message may still hold.
    elements_left: u64,
}

impl Walker<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], ShapeError> {
        let at = self.pos;
        self.skip(N)?;
        let mut out = [0; N];
        out.copy_from_slice(&self.buf[at..at + N]);
        Ok(out)
    }

    /// Skips length-prefixed content whose length is signed (-1 = null).
    fn signed_len(&mut self, at: usize, len: i32) -> Walked {
        match len {
            -1 => Ok(()),
            n if n >= 0 => self.skip(n as usize),
            len => Err(ShapeError::NegativeLength { at, len }),
        }
    }

    /// The check this module exists for: a count is bounded by the bytes left, because
    /// every element takes at least one byte.
    fn elements(
        &mut self,
        at: usize,
        count: u64,
        mut element: impl FnMut(&mut Self) -> Walked,
    ) -> Walked {
        if count > self.remaining() as u64 {
            return Err(ShapeError::ArrayTooLong { at, count, remaining: self.remaining() });
        }
        self.elements_left = self
            .elements_left
            .checked_sub(count)
            .ok_or(ShapeError::TooManyElements { at, limit: MAX_REQUEST_ELEMENTS })?;
        for _ in 0..count {
            element(self)?;
        }
        Ok(())
    }
}

impl Visitor for Walker<'_> {
    fn fixed(&mut self, n: usize) -> Walked {
        self.skip(n)
    }

    fn boolean(&mut self) -> Walked {
        self.skip(1)
    }

    fn string(&mut self) -> Walked {
        let at = self.pos;
        let len = i16::from_be_bytes(self.take()?);
        self.signed_len(at, len.into())
    }

    fn compact_string(&mut self) -> Walked {
        match self.uvarint()? {
            0 => Ok(()),
            n => self.skip((n - 1) as usize),
        }
    }

    fn bytes(&mut self) -> Walked {
        let at = self.pos;
        let len = i32::from_be_bytes(self.take()?);
        self.signed_len(at, len)
    }

    fn compact_bytes(&mut self) -> Walked {
        self.compact_string()
    }

    /// Reads an unsigned varint exactly as kafka-protocol's `UnsignedVarInt` does: at most
    /// five bytes, high bits of the fifth silently dropped.
    fn uvarint(&mut self) -> Result<u32, ShapeError> {
        let mut value = 0_u32;
        for i in 0..5 {
            let [b] = self.take::<1>()?;
            value |= u32::from(b & 0x7f) << (i * 7);
            if b < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    fn tag(&mut self) -> Result<u32, ShapeError> {
        let at = self.pos;
        let tag = self.uvarint()?;
        if tag > i32::MAX as u32 {
            return Err(ShapeError::InvalidTag { at, tag });
        }
        Ok(tag)
    }

    fn skip(&mut self, n: usize) -> Walked {
        if n > self.remaining() {
            return Err(ShapeError::Truncated {
                at: self.pos,
                needed: n as u64,
                remaining: self.remaining(),
            });
        }
        self.pos += n;
        Ok(())
    }

    fn array(&mut self, element: impl FnMut(&mut Self) -> Walked) -> Walked {
        let at = self.pos;
        match i32::from_be_bytes(self.take()?) {
            -1 => Ok(()),
            n if n >= 0 => self.elements(at, n as u64, element),
            len => Err(ShapeError::NegativeLength { at, len }),
        }
    }

    fn compact_array(&mut self, element: impl FnMut(&mut Self) -> Walked) -> Walked {
        let at = self.pos;
        match self.uvarint()? {
            0 => Ok(()),
            n => self.elements(at, u64::from(n - 1), element),
        }
    }

    fn unknown_tagged_fields(&mut self) -> Walked {
        let count = self.uvarint()?;
        for _ in 0..count {
            self.tag()?;
            let size = self.uvarint()?;
            self.skip(size as usize)?;
        }
        Ok(())
    }

    fn invalid(&self, version: i16) -> ShapeError {
        ShapeError::InvalidForVersion { at: self.pos, version }
    }
}

#[cfg(test)]
mod tests;
