//! Snappy as Kafka clients use it: raw blocks, or the xerial (snappy-java) framing.
//!
//! ```text
//! raw:     one snappy block: varint uncompressed length, then tagged elements
//! xerial:  82 53 4E 41 50 50 59 00   magic "\x82SNAPPY\0"
//!          00 00 00 01               version (i32 BE)
//!          00 00 00 01               minimum compatible version (i32 BE)
//!          then repeated: chunk length u32 BE · one raw snappy block (Java: 32 KiB input)
//! ```
//!
//! The Java client writes xerial, librdkafka and most others write raw; both read both,
//! and so does this module. It tells them apart by the 8-byte magic, as librdkafka does.
//! Each block states its uncompressed length up front, so the limit is checked before
//! the output grows.
//!
//! This is not Google's "snappy framing format" (stream identifier `ff 06 00 00 sNaPpY`),
//! which no Kafka client uses.

use std::io;

use super::{Compression, CompressionError};

/// The xerial stream header's magic bytes.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Magic, version and minimum compatible version.
const XERIAL_HEADER_LEN: usize = 16;
/// Uncompressed bytes per xerial chunk when this module writes the framing.
const XERIAL_CHUNK: usize = 32 * 1024;

/// Appends `input` as one raw snappy block, as librdkafka writes it.
///
/// A raw block holds at most 4 GiB; larger input (never a Kafka batch, whose length is
/// an i32) is written with the xerial framing, which every Kafka client also reads.
pub(super) fn compress_raw_into(input: &[u8], out: &mut Vec<u8>) {
    let max = snap::raw::max_compress_len(input.len());
    if max == 0 {
        compress_xerial_into(input, out);
        return;
    }
    let start = out.len();
    out.resize(start + max, 0);
    let n = snap::raw::Encoder::new()
        .compress(input, &mut out[start..])
        .expect("invariant: the output holds max_compress_len bytes of input under 4 GiB");
    out.truncate(start + n);
}

/// Appends `input` in the xerial framing the Java client writes.
pub(super) fn compress_xerial_into(input: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    for chunk in input.chunks(XERIAL_CHUNK) {
        let at = out.len();
        out.resize(at + 4 + snap::raw::max_compress_len(chunk.len()), 0);
        let n = encoder
            .compress(chunk, &mut out[at + 4..])
            .expect("invariant: the output holds max_compress_len bytes of a 32 KiB chunk");
        let len = u32::try_from(n).expect("invariant: a 32 KiB chunk compresses to < 4 GiB");
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        out.truncate(at + 4 + n);
    }
}

/// Decompresses raw or xerial-framed snappy, producing at most `limit` bytes.
pub(super) fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, CompressionError> {
    let mut out = Vec::new();
    if input.len() >= XERIAL_HEADER_LEN && input[..8] == XERIAL_MAGIC {
        let mut rest = &input[XERIAL_HEADER_LEN..];
        let mut position = XERIAL_HEADER_LEN;
        while !rest.is_empty() {
            let Some((len, body)) = rest.split_first_chunk::<4>() else {
                return Err(corrupt(format!(
                    "xerial chunk length at byte {position} is cut short ({} bytes)",
                    rest.len()
                )));
            };
            let len = u32::from_be_bytes(*len) as usize;
            if len > body.len() {
                return Err(corrupt(format!(
                    "xerial chunk at byte {position} declares {len} bytes, {} left",
                    body.len()
                )));
            }
            decompress_block(&body[..len], limit, &mut out)?;
            rest = &body[len..];
            position += 4 + len;
        }
    } else {
        decompress_block(input, limit, &mut out)?;
    }
    Ok(out)
}

/// Appends one raw block to `out`, checking its stated length against the limit first.
fn decompress_block(block: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), CompressionError> {
    let len = snap::raw::decompress_len(block).map_err(|e| corrupt(e.to_string()))?;
    if len > limit.saturating_sub(out.len()) {
        return Err(CompressionError::LimitExceeded { codec: Compression::Snappy, limit });
    }
    let start = out.len();
    out.resize(start + len, 0);
    let n = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| corrupt(e.to_string()))?;
    out.truncate(start + n);
    Ok(())
}

fn corrupt(reason: String) -> CompressionError {
    CompressionError::Corrupt {
        codec: Compression::Snappy,
        source: io::Error::new(io::ErrorKind::InvalidData, reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(n: usize) -> Vec<u8> {
        (0..n).flat_map(|i| format!("{{\"seq\":{i},\"ok\":true}}").into_bytes()).collect()
    }

    #[test]
    fn reads_the_xerial_framing_in_several_chunks() {
        let input = json(10_000); // ~200 KiB: seven chunks
        let mut framed = Vec::new();
        compress_xerial_into(&input, &mut framed);
        assert_eq!(
            framed[..16],
            [0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]
        );
        assert_eq!(decompress(&framed, input.len()).unwrap(), input);
        // The limit applies across chunks.
        assert!(matches!(
            decompress(&framed, input.len() - 1),
            Err(CompressionError::LimitExceeded { .. })
        ));
    }

    #[test]
    fn reads_raw_blocks() {
        let input = json(100);
        let mut raw = Vec::new();
        compress_raw_into(&input, &mut raw);
        assert_ne!(raw[..8], XERIAL_MAGIC);
        assert_eq!(decompress(&raw, input.len()).unwrap(), input);
    }

    #[test]
    fn rejects_broken_xerial_chunks() {
        let mut framed = Vec::new();
        compress_xerial_into(&json(10), &mut framed);
        let cut = framed.len() - 1;
        let err = decompress(&framed[..cut], 1 << 20).unwrap_err();
        assert!(err.to_string().contains("declares"), "{err}");
        framed.extend([0, 0]);
        let err = decompress(&framed, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("cut short"), "{err}");
        // A header and no chunks is an empty payload.
        assert_eq!(decompress(&framed[..16], 0).unwrap(), b"");
    }

    #[test]
    fn a_lying_length_header_is_refused_before_allocating() {
        // Varint 0xffffffff: "4 GiB follow".
        let block = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        assert!(matches!(
            decompress(&block, 1 << 20),
            Err(CompressionError::LimitExceeded { limit: 1_048_576, .. })
        ));
    }
}
