//! Framing: every Kafka request and response is a 4-byte big-endian size, then that many
//! bytes.
//!
//! ```text
//! 0        4                                   4 + size
//! +--------+-----------------------------------+
//! | size   | header + body (size bytes)        |
//! | i32 BE |                                   |
//! +--------+-----------------------------------+
//! ```
//!
//! [`FrameDecoder`] is sans-I/O, with tokio-util's `Decoder` contract: the connection
//! appends what the socket gave it to one `BytesMut` and calls [`FrameDecoder::decode`]
//! until it returns `Ok(None)` (need more bytes). Invariants:
//!
//! - The size is checked against the configured maximum (Kafka's
//!   `socket.request.max.bytes`) and rejected if negative *before* anything is reserved,
//!   so a hostile size prefix costs nothing.
//! - The decoder reserves room for the frame being read only, never more.
//! - A returned frame is a `Bytes` split off the connection's buffer: no copy, and every
//!   slice decoded from it (record sets in particular) points into the same allocation.
//!
//! Writing goes the other way: [`begin_frame`] leaves room for the size, the caller encodes
//! header and body after it, and [`finish_frame`] patches the size in.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Bytes in the size prefix.
pub const SIZE_PREFIX_LEN: usize = 4;

/// Kafka's default `socket.request.max.bytes`: 100 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 100 * 1024 * 1024;

/// A frame that cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The size prefix is negative.
    #[error("frame size prefix is negative: {size}")]
    NegativeSize {
        /// The size as read.
        size: i32,
    },
    /// The size prefix is larger than the configured maximum.
    #[error("frame of {size} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// The size as read.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// An outgoing frame does not fit an i32 size prefix.
    #[error("outgoing frame of {len} bytes does not fit a 4-byte size prefix")]
    Unencodable {
        /// The frame's length.
        len: usize,
    },
    /// `finish_frame` was given a start position that is not a frame written by `begin_frame`.
    #[error("frame start {start} is past the end of the buffer ({len} bytes)")]
    BadStart {
        /// The start position given.
        start: usize,
        /// The buffer's length.
        len: usize,
    },
}

/// Splits size-prefixed frames off a growing buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_BYTES)
    }
}

impl FrameDecoder {
    /// A decoder that rejects frames larger than `max_frame_bytes` (excluding the prefix).
    pub const fn new(max_frame_bytes: usize) -> Self {
        Self { max_frame_bytes }
    }

    /// The largest frame this decoder accepts, excluding the 4-byte prefix.
    pub const fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// Splits the next frame (without its size prefix) off the front of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not hold a whole frame yet; it then has reserved
    /// room for the rest of this frame (only), so the next socket read can fill it.
    ///
    /// # Errors
    ///
    /// [`FrameError::NegativeSize`] or [`FrameError::TooLarge`] as soon as the size prefix
    /// is readable. The connection cannot resynchronise after that and should be closed;
    /// `buf` is left untouched.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(prefix) = buf.first_chunk::<SIZE_PREFIX_LEN>() else {
            return Ok(None);
        };
        let size = i32::from_be_bytes(*prefix);
        let Ok(len) = usize::try_from(size) else {
            return Err(FrameError::NegativeSize { size });
        };
        if len > self.max_frame_bytes {
            return Err(FrameError::TooLarge { size: len, max: self.max_frame_bytes });
        }
        let total = SIZE_PREFIX_LEN + len;
        if buf.len() < total {
            // `len` is bounded by the maximum, so this reservation is too.
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        buf.advance(SIZE_PREFIX_LEN);
        Ok(Some(buf.split_to(len).freeze()))
    }
}

/// Writes a size prefix for a frame of `len` bytes.
///
/// # Errors
///
/// [`FrameError::Unencodable`] if `len` exceeds `i32::MAX`.
pub fn put_size_prefix(out: &mut BytesMut, len: usize) -> Result<(), FrameError> {
    let size = i32::try_from(len).map_err(|_| FrameError::Unencodable { len })?;
    out.put_i32(size);
    Ok(())
}

/// Starts a frame at the end of `out` by writing a placeholder size; returns its position
/// for [`finish_frame`].
pub fn begin_frame(out: &mut BytesMut) -> usize {
    let start = out.len();
    out.put_i32(0);
    start
}

/// Patches the size of the frame started at `start` to cover everything written after it.
///
/// # Errors
///
/// [`FrameError::Unencodable`] if the frame exceeds `i32::MAX` bytes,
/// [`FrameError::BadStart`] if `start` does not leave room for a prefix in `out`.
pub fn finish_frame(out: &mut BytesMut, start: usize) -> Result<(), FrameError> {
    let body_start = start
        .checked_add(SIZE_PREFIX_LEN)
        .filter(|&b| b <= out.len())
        .ok_or(FrameError::BadStart { start, len: out.len() })?;
    let len = out.len() - body_start;
    let size = i32::try_from(len).map_err(|_| FrameError::Unencodable { len })?;
    out[start..body_start].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(body: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        put_size_prefix(&mut out, body.len()).expect("invariant: small body");
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn needs_the_whole_prefix() {
        let d = FrameDecoder::default();
        let mut buf = BytesMut::from(&[0u8, 0, 0][..]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), 3);
    }

    #[test]
    fn splits_frames_in_order_and_keeps_the_rest() {
        let d = FrameDecoder::default();
        let mut buf = framed(b"hello");
        buf.extend_from_slice(&framed(b"")[..]);
        buf.extend_from_slice(&framed(b"world")[..6]);
        assert_eq!(d.decode(&mut buf), Ok(Some(Bytes::from_static(b"hello"))));
        assert_eq!(d.decode(&mut buf), Ok(Some(Bytes::new())));
        assert_eq!(d.decode(&mut buf), Ok(None));
        buf.extend_from_slice(b"r");
        assert_eq!(d.decode(&mut buf), Ok(None));
        buf.extend_from_slice(b"ld");
        assert_eq!(d.decode(&mut buf), Ok(Some(Bytes::from_static(b"world"))));
        assert!(buf.is_empty());
    }

    #[test]
    fn byte_by_byte_delivery() {
        let d = FrameDecoder::default();
        let wire = framed(b"abcdef");
        let mut buf = BytesMut::new();
        for (i, b) in wire.iter().enumerate() {
            buf.put_u8(*b);
            let out = d.decode(&mut buf).expect("valid");
            assert_eq!(out.is_some(), i == wire.len() - 1);
        }
    }

    #[test]
    fn rejects_negative_sizes() {
        let d = FrameDecoder::default();
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert_eq!(d.decode(&mut buf), Err(FrameError::NegativeSize { size: -1 }));
        assert_eq!(buf.len(), 4, "buffer left untouched");
    }

    #[test]
    fn rejects_oversized_frames_before_reserving() {
        let d = FrameDecoder::new(1024);
        let mut buf = BytesMut::with_capacity(8);
        buf.put_i32(i32::MAX);
        let cap = buf.capacity();
        assert_eq!(
            d.decode(&mut buf),
            Err(FrameError::TooLarge { size: i32::MAX as usize, max: 1024 })
        );
        assert_eq!(buf.capacity(), cap, "nothing reserved for a rejected frame");
    }

    #[test]
    fn accepts_exactly_the_maximum() {
        let d = FrameDecoder::new(3);
        let mut buf = framed(b"abc");
        assert_eq!(d.decode(&mut buf), Ok(Some(Bytes::from_static(b"abc"))));
        let mut buf = framed(b"abcd");
        assert_eq!(d.decode(&mut buf), Err(FrameError::TooLarge { size: 4, max: 3 }));
    }

    #[test]
    fn reserves_only_for_the_current_frame() {
        let d = FrameDecoder::new(1 << 20);
        let mut buf = BytesMut::new();
        buf.put_i32(1000);
        buf.put_slice(&[0; 10]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert!(buf.capacity() >= 1004);
        // BytesMut may round up, but never to the maximum frame size.
        assert!(buf.capacity() < 64 * 1024, "capacity {}", buf.capacity());
    }

    #[test]
    fn frames_share_the_connection_buffer() {
        let d = FrameDecoder::default();
        let mut buf = framed(b"zero-copy");
        let base = buf.as_ptr() as usize;
        let frame = d.decode(&mut buf).expect("valid").expect("whole frame");
        assert_eq!(frame.as_ptr() as usize, base + SIZE_PREFIX_LEN);
    }

    #[test]
    fn begin_and_finish_frame() {
        let mut out = BytesMut::from(&b"xx"[..]);
        let start = begin_frame(&mut out);
        out.put_slice(b"body");
        finish_frame(&mut out, start).expect("small frame");
        assert_eq!(&out[..], b"xx\0\0\0\x04body");
        let late = out.len() - 2;
        assert_eq!(finish_frame(&mut out, late), Err(FrameError::BadStart { start: 8, len: 10 }));
    }

    #[test]
    fn size_prefix_limits() {
        let mut out = BytesMut::new();
        assert_eq!(
            put_size_prefix(&mut out, i32::MAX as usize + 1),
            Err(FrameError::Unencodable { len: i32::MAX as usize + 1 })
        );
        put_size_prefix(&mut out, 258).expect("fits");
        assert_eq!(&out[..], &[0, 0, 1, 2]);
    }
}
