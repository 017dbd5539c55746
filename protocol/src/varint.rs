//! Variable-length integers as Kafka writes them.
//!
//! Records (message format v2) use protobuf's zig-zag encoding: a signed value `n` is
//! mapped to `(n << 1) ^ (n >> 63)` so small magnitudes of either sign stay short, then
//! written 7 bits at a time, least significant group first, with the high bit of each
//! byte meaning "more follows". A `varint` holds an `i32` in at most 5 bytes, a `varlong`
//! an `i64` in at most 10. Flexible message versions use the same layout without
//! zig-zag (`unsigned_varint`, KIP-482).
//!
//! Decoders never read past the slice they are given and reject encodings longer than
//! the type allows or carrying bits the type cannot hold.

use bytes::BufMut;
use thiserror::Error;

/// Longest encoding of a 32-bit varint.
pub const MAX_VARINT_LEN: usize = 5;
/// Longest encoding of a 64-bit varlong.
pub const MAX_VARLONG_LEN: usize = 10;

/// Why bytes are not a valid varint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VarintError {
    /// The input ended while the high bit still said "more follows".
    #[error("varint truncated after {available} bytes")]
    Truncated {
        /// Bytes that were available.
        available: usize,
    },
    /// More than `max_len` bytes, or bits beyond the type's width.
    #[error("varint does not fit in {max_len} bytes")]
    Overflow {
        /// The longest valid encoding for the type.
        max_len: usize,
    },
}

/// Zig-zag maps a signed 32-bit value onto an unsigned one.
#[inline]
pub fn zigzag32(value: i32) -> u32 {
    ((value << 1) ^ (value >> 31)) as u32
}

/// Zig-zag maps a signed 64-bit value onto an unsigned one.
#[inline]
pub fn zigzag64(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Appends `value` as a zig-zag varint.
#[inline]
pub fn put_varint(out: &mut impl BufMut, value: i32) {
    put_unsigned_varlong(out, u64::from(zigzag32(value)));
}

/// Appends `value` as a zig-zag varlong.
#[inline]
pub fn put_varlong(out: &mut impl BufMut, value: i64) {
    put_unsigned_varlong(out, zigzag64(value));
}

/// Appends `value` as an unsigned varint (no zig-zag; flexible versions' lengths).
#[inline]
pub fn put_unsigned_varint(out: &mut impl BufMut, value: u32) {
    put_unsigned_varlong(out, u64::from(value));
}

/// Appends `value` as an unsigned varlong.
#[inline]
pub fn put_unsigned_varlong(out: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8(value as u8 | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

/// Bytes that [`put_varint`] writes for `value`.
#[inline]
pub fn varint_len(value: i32) -> usize {
    unsigned_len(u64::from(zigzag32(value)))
}

/// Bytes that [`put_varlong`] writes for `value`.
#[inline]
pub fn varlong_len(value: i64) -> usize {
    unsigned_len(zigzag64(value))
}

/// Bytes that [`put_unsigned_varint`] writes for `value`.
#[inline]
pub fn unsigned_varint_len(value: u32) -> usize {
    unsigned_len(u64::from(value))
}

#[inline]
fn unsigned_len(value: u64) -> usize {
    // One byte per started group of 7 significant bits; zero still takes one byte.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Decodes a zig-zag varint at the start of `buf`: the value and the bytes it used.
///
/// # Errors
/// [`VarintError`] when `buf` ends early or the encoding exceeds 32 bits.
#[inline]
pub fn get_varint(buf: &[u8]) -> Result<(i32, usize), VarintError> {
    let (raw, len) = get_unsigned_varint(buf)?;
    Ok((((raw >> 1) as i32) ^ -((raw & 1) as i32), len))
}

/// Decodes a zig-zag varlong at the start of `buf`: the value and the bytes it used.
///
/// # Errors
/// [`VarintError`] when `buf` ends early or the encoding exceeds 64 bits.
#[inline]
pub fn get_varlong(buf: &[u8]) -> Result<(i64, usize), VarintError> {
    let (raw, len) = get_unsigned_varlong(buf)?;
    Ok((((raw >> 1) as i64) ^ -((raw & 1) as i64), len))
}

/// Decodes an unsigned varint at the start of `buf`: the value and the bytes it used.
///
/// # Errors
/// [`VarintError`] when `buf` ends early or the encoding exceeds 32 bits.
#[inline]
pub fn get_unsigned_varint(buf: &[u8]) -> Result<(u32, usize), VarintError> {
    // Lengths and deltas in a batch almost always fit in one or two bytes: decode those
    // without the general loop (this is the record iterator's hot path).
    match *buf {
        [b0, ..] if b0 < 0x80 => return Ok((u32::from(b0), 1)),
        [b0, b1, ..] if b1 < 0x80 => {
            return Ok((u32::from(b0 & 0x7f) | u32::from(b1) << 7, 2));
        }
        _ => {}
    }
    let (value, len) = get_unsigned(buf, MAX_VARINT_LEN)?;
    // The 5th byte may carry only the top 4 bits of a u32.
    u32::try_from(value)
        .map(|v| (v, len))
        .map_err(|_| VarintError::Overflow { max_len: MAX_VARINT_LEN })
}

/// Decodes an unsigned varlong at the start of `buf`: the value and the bytes it used.
///
/// # Errors
/// [`VarintError`] when `buf` ends early or the encoding exceeds 64 bits.
#[inline]
pub fn get_unsigned_varlong(buf: &[u8]) -> Result<(u64, usize), VarintError> {
    match *buf {
        [b0, ..] if b0 < 0x80 => return Ok((u64::from(b0), 1)),
        [b0, b1, ..] if b1 < 0x80 => {
            return Ok((u64::from(b0 & 0x7f) | u64::from(b1) << 7, 2));
        }
        _ => {}
    }
    get_unsigned(buf, MAX_VARLONG_LEN)
}

#[inline(never)]
fn get_unsigned(buf: &[u8], max_len: usize) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    for (i, &b) in buf.iter().take(max_len).enumerate() {
        let group = u64::from(b & 0x7f);
        let shift = 7 * i as u32;
        // The 10th byte of a u64 has room for one bit only.
        if shift == 63 && group > 1 {
            return Err(VarintError::Overflow { max_len });
        }
        value |= group << shift;
        if b < 0x80 {
            return Ok((value, i + 1));
        }
    }
    if buf.len() < max_len {
        Err(VarintError::Truncated { available: buf.len() })
    } else {
        Err(VarintError::Overflow { max_len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc_varint(v: i32) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    fn enc_varlong(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varlong(&mut out, v);
        out
    }

    #[test]
    fn matches_protobuf_zigzag_examples() {
        // Values from the protobuf encoding guide (sint32 / sint64).
        assert_eq!(enc_varint(0), [0x00]);
        assert_eq!(enc_varint(-1), [0x01]);
        assert_eq!(enc_varint(1), [0x02]);
        assert_eq!(enc_varint(-2), [0x03]);
        assert_eq!(enc_varint(63), [0x7e]);
        assert_eq!(enc_varint(-64), [0x7f]);
        assert_eq!(enc_varint(64), [0x80, 0x01]);
        assert_eq!(enc_varint(i32::MAX), [0xfe, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(enc_varint(i32::MIN), [0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(enc_varlong(i64::MIN).len(), MAX_VARLONG_LEN);
        assert_eq!(
            enc_varlong(i64::MIN),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }

    #[test]
    fn rejects_truncated_and_overlong_input() {
        assert_eq!(get_varint(&[]), Err(VarintError::Truncated { available: 0 }));
        assert_eq!(get_varint(&[0x80, 0x80]), Err(VarintError::Truncated { available: 2 }));
        assert_eq!(get_varint(&[0x80; 6]), Err(VarintError::Overflow { max_len: 5 }));
        // Fifth byte with bits above the 32nd.
        assert_eq!(
            get_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f]),
            Err(VarintError::Overflow { max_len: 5 })
        );
        assert_eq!(get_varlong(&[0x80; 11]), Err(VarintError::Overflow { max_len: 10 }));
        let mut long = vec![0xff; 9];
        long.push(0x02);
        assert_eq!(get_varlong(&long), Err(VarintError::Overflow { max_len: 10 }));
    }

    #[test]
    fn decodes_only_its_own_bytes() {
        assert_eq!(get_varint(&[0x80, 0x01, 0xff]), Ok((64, 2)));
        assert_eq!(get_unsigned_varint(&[0x96, 0x01]), Ok((150, 2)));
    }

    proptest! {
        #[test]
        fn varint_round_trips(v in any::<i32>()) {
            let bytes = enc_varint(v);
            prop_assert_eq!(bytes.len(), varint_len(v));
            prop_assert_eq!(get_varint(&bytes), Ok((v, bytes.len())));
            // Java decodes a varint as a varlong too (same encoding for the same value).
            prop_assert_eq!(bytes, enc_varlong(i64::from(v)));
        }

        #[test]
        fn varlong_round_trips(v in any::<i64>()) {
            let bytes = enc_varlong(v);
            prop_assert_eq!(bytes.len(), varlong_len(v));
            prop_assert_eq!(get_varlong(&bytes), Ok((v, bytes.len())));
        }

        #[test]
        fn unsigned_round_trips(v in any::<u32>()) {
            let mut bytes = Vec::new();
            put_unsigned_varint(&mut bytes, v);
            prop_assert_eq!(bytes.len(), unsigned_varint_len(v));
            prop_assert_eq!(get_unsigned_varint(&bytes), Ok((v, bytes.len())));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = get_varint(&bytes);
            let _ = get_varlong(&bytes);
            let _ = get_unsigned_varint(&bytes);
            if let Ok((_, len)) = get_varlong(&bytes) {
                prop_assert!(len <= bytes.len());
            }
        }
    }
}
