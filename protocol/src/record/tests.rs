//! Cross-module tests of the record format: golden batches from kafka-python, property
//! round trips through the builder and the reader, and fuzz-style "never panics" checks.

use proptest::prelude::*;

use super::batch::{self, RecordBatch, HEADER_LEN};
use super::compression::{self, Compression};
use super::{BatchBuilder, Header, RecordError, Records};

/// An owned record for comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owned {
    offset: i64,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

fn decode_all(bytes: &[u8], limit: usize) -> Vec<Owned> {
    let batch = RecordBatch::parse_verified(bytes).expect("batch parses and its crc matches");
    let records = batch.records(limit).expect("records decompress");
    assert_eq!(records.count() as i32, batch.records_count());
    let out: Vec<Owned> = records
        .iter()
        .map(|r| {
            let r = r.expect("record decodes");
            Owned {
                offset: records.offset(&r),
                timestamp: records.timestamp(&r),
                key: r.key().map(<[u8]>::to_vec),
                value: r.value().map(<[u8]>::to_vec),
                headers: r
                    .headers()
                    .map(|h| (h.key.to_vec(), h.value.map(<[u8]>::to_vec)))
                    .collect(),
            }
        })
        .collect();
    assert_eq!(out.len() as i32, batch.records_count());
    out
}

mod golden {
    use super::*;

    /// The records `generate_record_batches.py` writes (its `records()`), rebuilt here.
    fn expected() -> Vec<Owned> {
        const BASE_TS: i64 = 1_700_000_000_000;
        (0..60i64)
            .map(|i| {
                let key = (i % 5 != 0).then(|| format!("key-{i}").into_bytes());
                let value = if i == 17 {
                    Some((0..70_000usize).map(|j| ((j * 7 + j / 251) % 256) as u8).collect())
                } else if i % 7 == 3 {
                    None
                } else {
                    let pad = "x".repeat((i * 37 % 300) as usize);
                    Some(format!("{{\"i\":{i},\"pad\":\"{pad}\"}}").into_bytes())
                };
                let headers = match i % 3 {
                    0 => vec![],
                    1 => vec![(b"trace-id".to_vec(), Some(format!("t{i}").into_bytes()))],
                    _ => vec![
                        (b"h1".to_vec(), None),
                        ("\u{fc}-key".as_bytes().to_vec(), Some(vec![0x00, 0xff])),
                    ],
                };
                let timestamp = BASE_TS + i * 13 - if i % 4 == 2 { 5000 } else { 0 };
                Owned { offset: i, timestamp, key, value, headers }
            })
            .collect()
    }

    /// Batches written by kafka-python 3.0.12's `DefaultRecordBatchBuilder` (producer id
    /// 4242, epoch 7, base sequence 1000; the gzip one transactional) with
    /// python-snappy 0.7.3, lz4 4.4.5 and zstandard 0.25.0; see
    /// `protocol/tests/fixtures/generate_record_batches.py`.
    fn check(name: &str, bytes: &[u8], codec: Compression) {
        check_batch(name, bytes, codec, (4242, 7, 1000), codec == Compression::Gzip);
    }

    /// Batches librdkafka 2.16.0 (confluent-kafka 2.16.1, idempotent: producer id 4000
    /// from the fake broker, epoch 0, sequence 0) sent for the same records; see
    /// `protocol/tests/fixtures/capture_librdkafka_batches.py`.
    fn check_librdkafka(bytes: &[u8], codec: Compression) {
        check_batch(&format!("librdkafka {codec}"), bytes, codec, (4000, 0, 0), false);
    }

    fn check_batch(
        name: &str,
        bytes: &[u8],
        codec: Compression,
        (producer_id, producer_epoch, base_sequence): (i64, i16, i32),
        transactional: bool,
    ) {
        let batch = RecordBatch::parse_verified(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(batch.size(), bytes.len(), "{name}: one whole batch");
        assert_eq!(batch.compression().unwrap(), codec, "{name}");
        assert_eq!(batch.records_count(), 60);
        assert_eq!(batch.last_offset_delta(), 59);
        assert_eq!(batch.producer_id(), producer_id);
        assert_eq!(batch.producer_epoch(), producer_epoch);
        assert_eq!(batch.base_sequence(), base_sequence);
        assert_eq!(batch.is_transactional(), transactional);
        assert_eq!(batch.base_timestamp(), 1_700_000_000_000);
        assert_eq!(batch.max_timestamp(), 1_700_000_000_000 + 59 * 13);
        let records = decode_all(bytes, 1 << 20);
        assert_eq!(records, expected(), "{name}");
        // A limit below the decompressed size is refused.
        if codec != Compression::None {
            assert!(matches!(batch.records(64 << 10), Err(RecordError::Compression(_))), "{name}");
        }
    }

    macro_rules! fixture {
        ($file:literal) => {
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/", $file))
        };
    }

    #[test]
    fn kafka_python_uncompressed() {
        check("none", fixture!("record_batch_none.bin"), Compression::None);
    }

    #[test]
    fn kafka_python_gzip() {
        check("gzip", fixture!("record_batch_gzip.bin"), Compression::Gzip);
    }

    #[test]
    fn kafka_python_snappy_xerial_framing() {
        let bytes = fixture!("record_batch_snappy_xerial.bin");
        assert_eq!(bytes[HEADER_LEN..HEADER_LEN + 8], *b"\x82SNAPPY\0");
        check("snappy (xerial)", bytes, Compression::Snappy);
    }

    #[test]
    fn kafka_python_snappy_raw() {
        check("snappy (raw)", fixture!("record_batch_snappy_raw.bin"), Compression::Snappy);
    }

    #[test]
    fn kafka_python_lz4() {
        check("lz4", fixture!("record_batch_lz4.bin"), Compression::Lz4);
    }

    #[test]
    fn kafka_python_zstd() {
        check("zstd", fixture!("record_batch_zstd.bin"), Compression::Zstd);
    }

    #[test]
    fn librdkafka_every_codec() {
        check_librdkafka(fixture!("record_batch_librdkafka_none.bin"), Compression::None);
        check_librdkafka(fixture!("record_batch_librdkafka_gzip.bin"), Compression::Gzip);
        // librdkafka writes raw snappy, not the xerial framing.
        let snappy = fixture!("record_batch_librdkafka_snappy.bin");
        assert_ne!(snappy[HEADER_LEN..HEADER_LEN + 8], *b"\x82SNAPPY\0");
        check_librdkafka(snappy, Compression::Snappy);
        check_librdkafka(fixture!("record_batch_librdkafka_lz4.bin"), Compression::Lz4);
        check_librdkafka(fixture!("record_batch_librdkafka_zstd.bin"), Compression::Zstd);
    }

    fn build_expected(producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Vec<u8> {
        let mut b = BatchBuilder::new(Compression::None).producer(
            producer_id,
            producer_epoch,
            base_sequence,
        );
        for r in expected() {
            let headers: Vec<Header<'_>> =
                r.headers.iter().map(|(k, v)| Header { key: k, value: v.as_deref() }).collect();
            b.append(r.timestamp, r.key.as_deref(), r.value.as_deref(), &headers).unwrap();
        }
        let mut ours = b.build().unwrap();
        // kafka-python and librdkafka write partitionLeaderEpoch 0, the Java producer -1;
        // the broker overwrites it and it is outside the CRC.
        batch::set_partition_leader_epoch(&mut ours, 0);
        ours
    }

    #[test]
    fn builder_reproduces_the_uncompressed_fixtures() {
        // Same records, same producer fields: identical bytes to both clients'.
        assert_eq!(build_expected(4242, 7, 1000), fixture!("record_batch_none.bin"));
        assert_eq!(build_expected(4000, 0, 0), fixture!("record_batch_librdkafka_none.bin"));
    }
}

/// A record as proptest generates it.
type Input = (i64, Option<Vec<u8>>, Option<Vec<u8>>, Vec<(String, Option<Vec<u8>>)>);

fn bytes_opt(max: usize) -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..max))
}

fn input() -> impl Strategy<Value = Input> {
    (
        any::<i64>(),
        bytes_opt(40),
        bytes_opt(300),
        proptest::collection::vec((".{0,12}", bytes_opt(20)), 0..4),
    )
}

fn codec() -> impl Strategy<Value = Compression> {
    (0u8..5).prop_map(|id| Compression::from_id(id).expect("ids 0-4 are codecs"))
}

fn build(codec: Compression, records: &[Input]) -> Vec<u8> {
    let mut b = BatchBuilder::new(codec);
    for (ts, key, value, headers) in records {
        let headers: Vec<Header<'_>> = headers
            .iter()
            .map(|(k, v)| Header { key: k.as_bytes(), value: v.as_deref() })
            .collect();
        b.append(*ts, key.as_deref(), value.as_deref(), &headers).unwrap();
    }
    b.build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn builder_round_trips_every_codec(
        codec in codec(),
        records in proptest::collection::vec(input(), 1..40),
        base_offset in any::<i64>(),
    ) {
        let mut bytes = build(codec, &records);
        batch::set_base_offset(&mut bytes, base_offset);
        let decoded = decode_all(&bytes, 1 << 20);
        let batch = RecordBatch::parse_verified(&bytes).unwrap();
        prop_assert_eq!(batch.max_timestamp(), records.iter().map(|r| r.0).max().unwrap());
        prop_assert_eq!(batch.last_offset(), base_offset.wrapping_add(records.len() as i64 - 1));
        for (i, (got, (ts, key, value, headers))) in decoded.iter().zip(&records).enumerate() {
            prop_assert_eq!(got.offset, base_offset.wrapping_add(i as i64));
            prop_assert_eq!(got.timestamp, *ts);
            prop_assert_eq!(&got.key, key);
            prop_assert_eq!(&got.value, value);
            let want: Vec<_> = headers.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.clone())).collect();
            prop_assert_eq!(&got.headers, &want);
        }
    }

    #[test]
    fn any_flipped_bit_fails_the_crc(
        records in proptest::collection::vec(input(), 1..5),
        pick in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut bytes = build(Compression::None, &records);
        // Only bytes from the attributes on are covered by the CRC.
        let at = batch::ATTRIBUTES + pick.index(bytes.len() - batch::ATTRIBUTES);
        bytes[at] ^= 1 << bit;
        prop_assert!(RecordBatch::parse_verified(&bytes).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), count in any::<u32>()) {
        exercise(&bytes, count);
    }

    #[test]
    fn corrupted_batches_never_panic(
        codec in codec(),
        records in proptest::collection::vec(input(), 1..8),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = build(codec, &records);
        for (at, byte) in edits {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        let keep = HEADER_LEN + cut.index(bytes.len() - HEADER_LEN + 1);
        bytes.truncate(keep);
        // Fix the CRC so the corruption reaches the record decoder too.
        if bytes.len() >= HEADER_LEN {
            batch::update_crc(&mut bytes);
        }
        exercise(&bytes, records.len() as u32);
    }
}

/// Runs every decoder of untrusted bytes over `bytes`; the test is that none panics and
/// every iterator ends.
fn exercise(bytes: &[u8], count: u32) {
    let _ = batch::total_size(bytes);
    let mut set = batch::batches(bytes);
    for b in set.by_ref().flatten() {
        assert!(b.size() >= HEADER_LEN);
    }
    assert!(set.remainder().len() <= bytes.len());
    if let Ok(b) = RecordBatch::parse(bytes) {
        let _ = (b.verify_crc(), b.last_offset(), b.compression());
        if let Ok(records) = b.records(64 << 10) {
            for r in records.iter().flatten() {
                let _ = (records.offset(&r), records.timestamp(&r), r.headers().count());
                let _ = r.control_type();
            }
        }
    }
    let mut yielded = 0u64;
    for r in Records::new(bytes, count) {
        yielded += 1;
        if let Ok(r) = r {
            for h in r.headers() {
                let _ = h.key_str();
            }
        }
    }
    assert!(yielded <= bytes.len() as u64 + 1, "each record consumes at least one byte");
    for codec in Compression::ALL {
        if let Ok(out) = compression::decompress(codec, bytes, 64 << 10) {
            assert!(out.len() <= 64 << 10);
        }
    }
}

#[test]
fn restamping_the_producer_keeps_the_batch_valid() {
    let mut b = BatchBuilder::new(Compression::Lz4).producer(1, 0, 0);
    b.append(1_000, Some(b"k"), Some(b"v"), &[]).unwrap();
    let mut bytes = b.build().unwrap();
    batch::set_producer(&mut bytes, 42, 3, 17);
    let parsed = RecordBatch::parse_verified(&bytes).expect("crc recomputed");
    assert_eq!(
        (parsed.producer_id(), parsed.producer_epoch(), parsed.base_sequence()),
        (42, 3, 17)
    );
    assert_eq!(decode_all(&bytes, 1 << 20)[0].value.as_deref(), Some(&b"v"[..]));
}

#[test]
fn compression_levels_change_the_ratio_not_the_contents() {
    let input: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8 ^ (i / 1000) as u8).collect();
    for (codec, low, high) in [(Compression::Gzip, 1, 9), (Compression::Zstd, 1, 19)] {
        let mut fast = Vec::new();
        compression::compress_into_at(codec, Some(low), &input, &mut fast);
        let mut small = Vec::new();
        compression::compress_into_at(codec, Some(high), &input, &mut small);
        assert!(small.len() < fast.len(), "{codec:?}: level {high} is smaller than {low}");
        for out in [fast, small] {
            assert_eq!(compression::decompress(codec, &out, 1 << 20).unwrap(), input);
        }
    }
}
