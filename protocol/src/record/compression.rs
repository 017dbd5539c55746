//! The four Kafka compression codecs, with decompression bounded by a caller's limit.
//!
//! A compressed batch compresses its whole records section (everything after
//! `recordsCount`) as one unit. The codec is in bits 0–2 of the batch attributes.
//!
//! | id | codec  | written as                                   | read                          |
//! |----|--------|----------------------------------------------|-------------------------------|
//! | 0  | none   | raw records                                  | raw records                   |
//! | 1  | gzip   | one gzip member, level 6 (zlib's default)    | gzip, concatenated members    |
//! | 2  | snappy | one raw snappy block (as librdkafka does)    | raw, or xerial framing (Java) |
//! | 3  | lz4    | LZ4 frame, 64 KiB independent blocks         | any LZ4 frame                 |
//! | 4  | zstd   | one zstd frame, level 3, content size in it  | zstd frames                   |
//!
//! Writers pick what every client can read: the Java client's LZ4 reader decodes each
//! block on its own and knows block sizes up to 4 MiB only, so lz4 frames use independent
//! 64 KiB blocks; raw snappy is what librdkafka writes and what the Java client's
//! `SnappyInputStream` falls back to when the xerial header is absent.
//!
//! Invariant: [`decompress`] never produces, and never allocates for, more than `limit`
//! bytes of output (plus codec-internal state bounded by the formats: lz4 blocks of at
//! most 8 MiB, a zstd window of at most 8 MiB or `limit`).

mod snappy;

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use thiserror::Error;

/// gzip level: zlib's default, which is what Kafka's `compression.gzip.level=-1` means.
const GZIP_LEVEL: u32 = 6;
/// zstd level: Kafka's and librdkafka's default.
const ZSTD_LEVEL: i32 = 3;
/// Smallest zstd window (2^23 = 8 MiB) accepted whatever the limit: what zstd levels up
/// to 19 use, so data from any producer at a standard level decodes.
const ZSTD_MIN_WINDOW_LOG: u32 = 23;
/// zstd's own default cap on the window (128 MiB), also zstd-jni's.
const ZSTD_MAX_WINDOW_LOG: u32 = 27;

/// A Kafka compression codec, as stored in bits 0–2 of a batch's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression (id 0).
    #[default]
    None,
    /// gzip (id 1).
    Gzip,
    /// Snappy (id 2).
    Snappy,
    /// LZ4 frame format (id 3).
    Lz4,
    /// Zstandard (id 4), Kafka 2.1+ (KIP-110).
    Zstd,
}

impl Compression {
    /// Every codec, in id order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec's id in batch attributes.
    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec with attribute id `id`.
    ///
    /// # Errors
    /// [`CompressionError::UnknownCodec`] for ids 5–7 (and anything larger).
    pub fn from_id(id: u8) -> Result<Self, CompressionError> {
        Ok(match id {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => return Err(CompressionError::UnknownCodec { id }),
        })
    }

    /// The name Kafka's `compression.type` setting uses.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = UnknownCompressionName;

    /// Parses a `compression.type` value (`none`, `gzip`, `snappy`, `lz4`, `zstd`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Compression::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownCompressionName { name: s.to_owned() })
    }
}

/// A `compression.type` value that names no codec.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown compression type {name:?} (expected none, gzip, snappy, lz4 or zstd)")]
pub struct UnknownCompressionName {
    /// The value given.
    pub name: String,
}

/// Why compressed bytes could not be decompressed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CompressionError {
    /// Attribute bits name a codec Kafka does not define.
    #[error("compression codec id {id} is not defined (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)")]
    UnknownCodec {
        /// The id found.
        id: u8,
    },
    /// The output would exceed the caller's limit (a decompression bomb or a too-small
    /// limit).
    #[error("{codec} data inflates past the limit of {limit} bytes")]
    LimitExceeded {
        /// The codec.
        codec: Compression,
        /// The limit.
        limit: usize,
    },
    /// The input is not valid data for the codec.
    #[error("{codec} data is corrupt: {source}")]
    Corrupt {
        /// The codec.
        codec: Compression,
        /// The codec library's description.
        #[source]
        source: io::Error,
    },
}

/// Compresses `input` with `codec` into a new buffer.
pub fn compress(codec: Compression, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    compress_into(codec, input, &mut out);
    out
}

/// Compresses `input` with `codec`, appending to `out` (the builder appends to a header).
pub fn compress_into(codec: Compression, input: &[u8], out: &mut Vec<u8>) {
    compress_into_at(codec, None, input, out);
}

/// gzip levels a producer may ask for (Kafka's `compression.gzip.level`). lz4 has no
/// levels here: lz4_flex implements only LZ4's fast mode; a level changes the ratio, not
/// the format, so readers are unaffected.
pub const GZIP_LEVELS: std::ops::RangeInclusive<i32> = 1..=9;
/// zstd's levels, negative ones included (KIP-390 passes them through).
pub const ZSTD_LEVELS: std::ops::RangeInclusive<i32> = -131072..=22;

/// As [`compress_into`], at `level` (`None`: the codec's default; a level outside the
/// codec's range is clamped into it; lz4 and snappy ignore it).
pub fn compress_into_at(codec: Compression, level: Option<i32>, input: &[u8], out: &mut Vec<u8>) {
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => {
            let level = level
                .map_or(GZIP_LEVEL, |l| l.clamp(*GZIP_LEVELS.start(), *GZIP_LEVELS.end()) as u32);
            let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::new(level));
            enc.write_all(input).expect("invariant: writing to a Vec cannot fail");
            enc.finish().expect("invariant: writing to a Vec cannot fail");
        }
        Compression::Snappy => snappy::compress_raw_into(input, out),
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, out);
            enc.write_all(input).expect("invariant: writing to a Vec cannot fail");
            enc.finish().expect("invariant: writing to a Vec cannot fail");
        }
        Compression::Zstd => {
            // Write straight into the spare capacity after the existing bytes.
            out.reserve(zstd::zstd_safe::compress_bound(input.len()));
            let start = out.len() as u64;
            let mut cursor = io::Cursor::new(std::mem::take(out));
            cursor.set_position(start);
            let level =
                level.map_or(ZSTD_LEVEL, |l| l.clamp(*ZSTD_LEVELS.start(), *ZSTD_LEVELS.end()));
            zstd::bulk::Compressor::new(level)
                .and_then(|mut c| c.compress_to_buffer(input, &mut cursor))
                .expect("invariant: the level is in zstd's range and the buffer holds compress_bound bytes");
            *out = cursor.into_inner();
        }
    }
}

/// Decompresses `input`, failing instead of producing more than `limit` bytes.
///
/// # Errors
/// [`CompressionError::LimitExceeded`] past `limit`; [`CompressionError::Corrupt`] when
/// the codec rejects the input.
pub fn decompress(
    codec: Compression,
    input: &[u8],
    limit: usize,
) -> Result<Vec<u8>, CompressionError> {
    match codec {
        Compression::None => {
            if input.len() > limit {
                return Err(CompressionError::LimitExceeded { codec, limit });
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => {
            // The Java client's GZIPInputStream reads concatenated members too.
            // Records compress a few times over.
            let expected = input.len().saturating_mul(4);
            read_bounded(codec, flate2::read::MultiGzDecoder::new(input), expected, limit)
        }
        Compression::Snappy => snappy::decompress(input, limit),
        Compression::Lz4 => {
            if let Some(out) = decompress_lz4_blocks(input, limit) {
                return out;
            }
            let hint = lz4_output_bound(input).unwrap_or(input.len().saturating_mul(4));
            read_bounded(codec, lz4_flex::frame::FrameDecoder::new(input), hint, limit)
        }
        Compression::Zstd => decompress_zstd(input, limit),
    }
}

/// The frames Kafka's clients write (one frame, 64 KiB to 4 MiB blocks, independent as
/// the Java client and this crate write them or linked as librdkafka does, no checksums
/// beyond the header's), decoded block by block straight into one output buffer: about
/// twice as fast as the streaming decoder, which decodes each block into a buffer of its
/// own and copies it out. `None` for any other frame (checksums, a dictionary, frames
/// concatenated, a bound past `limit`): the streaming decoder handles those. The frame
/// header's own checksum is not verified here; the batch's CRC-32C covers these bytes.
fn decompress_lz4_blocks(frame: &[u8], limit: usize) -> Option<Result<Vec<u8>, CompressionError>> {
    const LINKED_WINDOW: usize = 64 << 10;
    let bound = lz4_output_bound(frame)?;
    let (flags, bd) = (*frame.get(4)?, *frame.get(5)?);
    let checksums_or_dictionary = flags & (0x10 | 0x04 | 0x01) != 0;
    if flags >> 6 != 1 || checksums_or_dictionary || bd & 0x8f != 0 || bound > limit {
        return None;
    }
    let independent = flags & 0x20 != 0;
    let mut at = if flags & 0x08 != 0 { 15 } else { 7 };
    let mut out = vec![0u8; bound];
    let mut len = 0usize;
    let corrupt = |why: &str| {
        Some(Err(CompressionError::Corrupt {
            codec: Compression::Lz4,
            source: io::Error::new(io::ErrorKind::InvalidData, why.to_string()),
        }))
    };
    loop {
        let size = u32::from_le_bytes(frame.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        if size == 0 {
            break;
        }
        let block = frame.get(at..at.checked_add((size & 0x7fff_ffff) as usize)?)?;
        at += block.len();
        let written = if size & 0x8000_0000 != 0 {
            match out.get_mut(len..len + block.len()) {
                Some(to) => to.copy_from_slice(block),
                None => return corrupt("a stored block exceeds the frame's content size"),
            }
            Ok(block.len())
        } else if independent {
            lz4_flex::block::decompress_into(block, &mut out[len..])
        } else {
            let (before, after) = out.split_at_mut(len);
            let window = &before[len.saturating_sub(LINKED_WINDOW)..];
            lz4_flex::block::decompress_into_with_dict(block, after, window)
        };
        match written {
            Ok(n) => len += n,
            Err(e) => return corrupt(&e.to_string()),
        }
    }
    if at != frame.len() {
        return None;
    }
    out.truncate(len);
    Some(Ok(out))
}

fn decompress_zstd(input: &[u8], limit: usize) -> Result<Vec<u8>, CompressionError> {
    let codec = Compression::Zstd;
    let corrupt = |source| CompressionError::Corrupt { codec, source };
    // A frame that states its size too large is refused before anything is allocated.
    if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(input) {
        if size > limit as u64 {
            return Err(CompressionError::LimitExceeded { codec, limit });
        }
        // Known size (this crate's writer and kafka-python state it): decode in one call
        // straight into an exact-size buffer, ~1.5x faster than streaming. Concatenated
        // frames do not fit it and fall through to the streaming path.
        let mut out = Vec::with_capacity(size as usize);
        if zstd::bulk::Decompressor::new()
            .and_then(|mut d| d.decompress_to_buffer(input, &mut out))
            .is_ok()
        {
            return Ok(out);
        }
    }
    // Unknown size (the Java client and librdkafka stream without it): stream, bounded.
    let mut decoder = zstd::stream::read::Decoder::with_buffer(input).map_err(corrupt)?;
    // The window is allocated as the frame header asks: cap it by what the limit needs.
    let needed = usize::BITS - limit.saturating_sub(1).leading_zeros();
    let window_log = needed.clamp(ZSTD_MIN_WINDOW_LOG, ZSTD_MAX_WINDOW_LOG);
    decoder.window_log_max(window_log).map_err(corrupt)?;
    read_bounded(codec, decoder, input.len().saturating_mul(4), limit)
}

/// Reads `reader` to its end, failing once it yields more than `limit` bytes.
/// An upper bound of an LZ4 frame's decompressed size, read from its header (content
/// size) or its block sizes (each block decompresses to at most the frame's block size),
/// without decompressing; `None` if the frame does not parse that far. Highly compressible
/// records (a 1 MiB batch of repeated values packs 50x) otherwise make the output Vec
/// double a dozen times, each time copying what it holds.
fn lz4_output_bound(frame: &[u8]) -> Option<usize> {
    const MAGIC: u32 = 0x184D_2204;
    let magic = u32::from_le_bytes(frame.get(..4)?.try_into().ok()?);
    if magic != MAGIC {
        return None;
    }
    let flags = *frame.get(4)?;
    let bd = *frame.get(5)?;
    let block_max = match (bd >> 4) & 0x7 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        _ => return None,
    };
    let mut at = 6;
    if flags & 0x08 != 0 {
        let size = u64::from_le_bytes(frame.get(at..at + 8)?.try_into().ok()?);
        return usize::try_from(size).ok();
    }
    if flags & 0x01 != 0 {
        at += 4; // dictionary id
    }
    at += 1; // header checksum
    let block_checksum = if flags & 0x10 != 0 { 4 } else { 0 };
    let mut bound = 0usize;
    loop {
        let size = u32::from_le_bytes(frame.get(at..at + 4)?.try_into().ok()?);
        if size == 0 {
            return Some(bound);
        }
        let stored = (size & 0x7fff_ffff) as usize;
        bound = bound.saturating_add(block_max);
        at = at.checked_add(4 + stored + block_checksum)?;
    }
}

fn read_bounded(
    codec: Compression,
    reader: impl Read,
    expected: usize,
    limit: usize,
) -> Result<Vec<u8>, CompressionError> {
    // Start at the expected size and let the Vec grow past it, so a small batch never
    // reserves the whole limit.
    let mut out = Vec::with_capacity(expected.min(limit));
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|source| CompressionError::Corrupt { codec, source })?;
    if out.len() > limit {
        return Err(CompressionError::LimitExceeded { codec, limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lz4_output_bound_covers_the_output_and_refuses_garbage() {
        for len in [0usize, 10, 65_536, 65_537, 1 << 20] {
            let input: Vec<u8> = (0..len).map(|i| (i % 7) as u8).collect();
            let frame = compress(Compression::Lz4, &input);
            let bound = lz4_output_bound(&frame).expect("our frames parse");
            assert!(bound >= len && bound <= len + (64 << 10), "{len}: bound {bound}");
        }
        assert_eq!(lz4_output_bound(b"not a frame"), None);
        let mut cut = compress(Compression::Lz4, &[1u8; 100_000]);
        cut.truncate(cut.len() / 2);
        assert_eq!(lz4_output_bound(&cut), None, "a cut frame has no end mark");
    }

    fn sample() -> Vec<u8> {
        (0..20_000u32)
            .flat_map(|i| format!("{{\"id\":{i},\"name\":\"user-{}\"}}", i % 97).into_bytes())
            .collect()
    }

    #[test]
    fn every_codec_round_trips() {
        let input = sample();
        for codec in Compression::ALL {
            let packed = compress(codec, &input);
            if codec != Compression::None {
                assert!(packed.len() < input.len() / 2, "{codec} should shrink json");
            }
            assert_eq!(decompress(codec, &packed, input.len()).unwrap(), input, "{codec}");
            assert_eq!(Compression::from_id(codec.id()).unwrap(), codec);
            assert_eq!(codec.name().parse::<Compression>().unwrap(), codec);
        }
        assert!(matches!(Compression::from_id(5), Err(CompressionError::UnknownCodec { id: 5 })));
        assert!("brotli".parse::<Compression>().is_err());
    }

    #[test]
    fn compress_into_appends() {
        for codec in Compression::ALL {
            let mut out = b"header".to_vec();
            compress_into(codec, b"some bytes some bytes", &mut out);
            assert_eq!(&out[..6], b"header");
            assert_eq!(decompress(codec, &out[6..], 100).unwrap(), b"some bytes some bytes");
        }
    }

    #[test]
    fn inflating_past_the_limit_is_an_error() {
        // 4 MiB of zeros compress to almost nothing: a bomb against a 256 KiB limit.
        let zeros = vec![0u8; 4 << 20];
        for codec in Compression::ALL {
            let packed = compress(codec, &zeros);
            let err = decompress(codec, &packed, 256 << 10).unwrap_err();
            assert!(
                matches!(err, CompressionError::LimitExceeded { limit, .. } if limit == 256 << 10),
                "{codec}: {err}"
            );
            // Exactly at the limit is fine.
            assert_eq!(decompress(codec, &packed[..], zeros.len()).unwrap().len(), zeros.len());
        }
    }

    #[test]
    fn zstd_reads_concatenated_frames_and_frames_without_a_size() {
        let (a, b) = (sample(), b"tail".repeat(1000));
        let mut two = compress(Compression::Zstd, &a);
        two.extend(compress(Compression::Zstd, &b));
        let both = [a.as_slice(), b.as_slice()].concat();
        assert_eq!(decompress(Compression::Zstd, &two, both.len()).unwrap(), both);
        assert!(decompress(Compression::Zstd, &two, both.len() - 1).is_err());

        // As the Java client and librdkafka write it: streamed, no content size.
        let streamed = zstd::stream::encode_all(&a[..], 3).unwrap();
        assert!(matches!(zstd::zstd_safe::get_frame_content_size(&streamed), Ok(None)));
        assert_eq!(decompress(Compression::Zstd, &streamed, a.len()).unwrap(), a);
        assert!(matches!(
            decompress(Compression::Zstd, &streamed, a.len() - 1),
            Err(CompressionError::LimitExceeded { .. })
        ));
    }

    #[test]
    fn lz4_block_decoding_matches_the_streaming_decoder_for_every_frame_shape() {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
        let random: Vec<u8> =
            (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let json = sample();
        for input in
            [Vec::new(), b"x".to_vec(), json.clone(), random, [json.as_slice(); 9].concat()]
        {
            for mode in [BlockMode::Independent, BlockMode::Linked] {
                for size in [BlockSize::Max64KB, BlockSize::Max256KB, BlockSize::Max4MB] {
                    for (content_size, checksum) in [(false, false), (true, false), (false, true)] {
                        let mut info = FrameInfo::new().block_mode(mode).block_size(size);
                        if content_size {
                            info = info.content_size(Some(input.len() as u64));
                        }
                        info = info.content_checksum(checksum);
                        let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
                        enc.write_all(&input).unwrap();
                        let frame = enc.finish().unwrap();
                        let fast = decompress_lz4_blocks(&frame, 64 << 20);
                        assert_eq!(fast.is_some(), !checksum, "{mode:?} {size:?}");
                        if let Some(out) = fast {
                            assert_eq!(out.unwrap(), input, "{mode:?} {size:?} {content_size}");
                        }
                        assert_eq!(
                            decompress(Compression::Lz4, &frame, input.len()).unwrap(),
                            input
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn lz4_block_decoding_refuses_a_corrupt_block_and_leaves_odd_frames_to_the_stream() {
        let mut frame = compress(Compression::Lz4, &sample());
        let mut two = frame.clone();
        two.extend_from_slice(&frame);
        assert!(decompress_lz4_blocks(&two, 64 << 20).is_none(), "concatenated frames");
        // Garbage inside the first block (its header is at 7..11).
        for b in &mut frame[11..40] {
            *b = 0xff;
        }
        assert!(matches!(
            decompress_lz4_blocks(&frame, 64 << 20),
            Some(Err(CompressionError::Corrupt { .. }))
        ));
    }

    #[test]
    fn lz4_frames_use_what_the_java_reader_supports() {
        let packed = compress(Compression::Lz4, &sample());
        assert_eq!(&packed[..4], &[0x04, 0x22, 0x4d, 0x18], "lz4 frame magic");
        let flg = packed[4];
        assert_eq!(flg >> 6, 1, "frame version 01");
        assert_ne!(flg & 0x20, 0, "independent blocks");
        assert_eq!((packed[5] >> 4) & 0x07, 4, "64 KiB max block size");
    }

    #[test]
    fn corrupt_input_is_a_typed_error() {
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let mut packed = compress(codec, &sample());
            let mid = packed.len() / 2;
            packed.truncate(mid);
            let err = decompress(codec, &packed, 10 << 20).unwrap_err();
            assert!(matches!(err, CompressionError::Corrupt { .. }), "{codec}: {err}");
            assert!(err.to_string().starts_with(codec.name()), "{err}");
        }
    }

    proptest! {
        #[test]
        fn round_trip_any_bytes(input in proptest::collection::vec(any::<u8>(), 0..4096), id in 0u8..5) {
            let codec = Compression::from_id(id).unwrap();
            let packed = compress(codec, &input);
            prop_assert_eq!(decompress(codec, &packed, input.len()).unwrap(), input);
        }

        #[test]
        fn arbitrary_input_never_panics(input in proptest::collection::vec(any::<u8>(), 0..512), id in 0u8..5) {
            let codec = Compression::from_id(id).unwrap();
            if let Ok(out) = decompress(codec, &input, 4096) {
                prop_assert!(out.len() <= 4096);
            }
        }
    }
}
