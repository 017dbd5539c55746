use sluice_protocol::record::batch::{self, attributes, RecordBatch};
use sluice_protocol::record::{BatchBuilder, Compression};

use super::*;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// A batch at `base` of (key, value) records, the first at `ts`, each 1 ms later.
pub(crate) fn keyed_batch(
    codec: Compression,
    base: i64,
    ts: i64,
    records: &[(Option<&str>, Option<&str>)],
) -> Vec<u8> {
    let mut b = BatchBuilder::new(codec);
    for (i, (k, v)) in records.iter().enumerate() {
        b.append(ts + i as i64, k.map(str::as_bytes), v.map(str::as_bytes), &[]).unwrap();
    }
    let mut bytes = b.build().unwrap();
    batch::set_base_offset(&mut bytes, base);
    bytes
}

/// (offset, timestamp, key, value) of every record of a batch.
type Seen = (i64, i64, Option<String>, Option<String>);

fn records_of(bytes: &[u8]) -> Vec<Seen> {
    let b = RecordBatch::parse_verified(bytes).unwrap();
    let records = b.records(1 << 20).unwrap();
    let text = |s: Option<&[u8]>| s.map(|s| String::from_utf8(s.to_vec()).unwrap());
    records
        .iter()
        .map(|r| {
            let r = r.unwrap();
            (records.offset(&r), records.timestamp(&r), text(r.key()), text(r.value()))
        })
        .collect()
}

fn map_of(batches: &[&[u8]]) -> OffsetMap {
    let mut map = OffsetMap::new(1 << 20, 0.9);
    for b in batches {
        assert!(map.add_batch(&RecordBatch::parse(b).unwrap(), 1 << 20).unwrap());
    }
    map
}

fn ctx(now_ms: i64) -> FilterContext {
    FilterContext { now_ms, delete_retention_ms: 1000, max_batch_bytes: 1 << 20 }
}

fn filter(b: &[u8], map: &OffsetMap, now: i64, retain_header: bool) -> (Filtered, Vec<u8>) {
    let mut out = Vec::new();
    let f = filter_batch(
        &RecordBatch::parse(b).unwrap(),
        map,
        &ctx(now),
        retain_header,
        &mut out,
        &mut Vec::new(),
    )
    .unwrap();
    (f, out)
}

#[test]
fn the_latest_value_per_key_is_kept_at_its_offset_with_every_codec() {
    for codec in CODECS {
        let old = keyed_batch(
            codec,
            10,
            1000,
            &[
                (Some("a"), Some("a1")),
                (Some("b"), Some("b1")),
                (Some("a"), Some("a2")),
                (Some("c"), Some("c1")),
            ],
        );
        let new = keyed_batch(codec, 14, 2000, &[(Some("a"), Some("a3")), (Some("d"), Some("d1"))]);
        let map = map_of(&[&old, &new]);
        let (f, out) = filter(&old, &map, 5000, false);
        assert_eq!(f.outcome, Outcome::Rewrite, "{codec:?}");
        assert_eq!((f.records, f.kept), (4, 2));
        let cleaned = RecordBatch::parse_verified(&out).unwrap();
        assert_eq!(cleaned.compression().unwrap(), codec);
        assert_eq!(cleaned.size(), out.len());
        assert_eq!((cleaned.base_offset(), cleaned.last_offset()), (10, 13), "last offset kept");
        assert_eq!(cleaned.max_timestamp(), 1003);
        assert_eq!(
            records_of(&out),
            vec![
                (11, 1001, Some("b".into()), Some("b1".into())),
                (13, 1003, Some("c".into()), Some("c1".into())),
            ]
        );
        // The newest batch has nothing to lose.
        let (f, out) = filter(&new, &map, 5000, false);
        assert_eq!(f.outcome, Outcome::Keep);
        assert!(out.is_empty());
    }
}

#[test]
fn records_without_a_key_are_dropped() {
    let b = keyed_batch(Compression::None, 0, 0, &[(None, Some("x")), (Some("k"), Some("v"))]);
    let map = map_of(&[&b]);
    let (f, out) = filter(&b, &map, 0, false);
    assert_eq!(f.outcome, Outcome::Rewrite);
    assert_eq!(records_of(&out), vec![(1, 1, Some("k".into()), Some("v".into()))]);
}

#[test]
fn a_tombstone_gets_a_delete_horizon_and_goes_once_it_has_passed() {
    for codec in CODECS {
        let b = keyed_batch(
            codec,
            5,
            100,
            &[(Some("k"), Some("v")), (Some("k"), None), (Some("j"), Some("w"))],
        );
        let map = map_of(&[&b]);
        // First cleaning: the value goes, the tombstone stays, the horizon is set.
        let (f, first) = filter(&b, &map, 10_000, false);
        assert_eq!(f.outcome, Outcome::Rewrite);
        assert_eq!(f.delete_horizon, Some(11_000));
        let cleaned = RecordBatch::parse_verified(&first).unwrap();
        assert_ne!(cleaned.attributes() & attributes::DELETE_HORIZON, 0);
        assert_eq!(cleaned.base_timestamp(), 11_000);
        // Timestamps survive the new base.
        assert_eq!(
            records_of(&first),
            vec![(6, 101, Some("k".into()), None), (7, 102, Some("j".into()), Some("w".into()))]
        );
        // Before the horizon: unchanged.
        let (f, out) = filter(&first, &map, 10_999, false);
        assert_eq!((f.outcome, f.delete_horizon), (Outcome::Keep, Some(11_000)));
        assert!(out.is_empty());
        // At the horizon the tombstone goes; the batch keeps its horizon bit.
        let (f, last) = filter(&first, &map, 11_000, false);
        assert_eq!((f.outcome, f.kept, f.delete_horizon), (Outcome::Rewrite, 1, None));
        assert_eq!(records_of(&last), vec![(7, 102, Some("j".into()), Some("w".into()))]);
    }
}

#[test]
fn an_emptied_batch_goes_unless_it_is_a_producers_last() {
    for codec in CODECS {
        let mut old = keyed_batch(codec, 0, 100, &[(Some("a"), Some("1")), (Some("b"), Some("1"))]);
        batch::set_producer(&mut old, 7, 2, 40);
        let new = keyed_batch(codec, 2, 200, &[(Some("a"), Some("2")), (Some("b"), Some("2"))]);
        let map = map_of(&[&old, &new]);
        let (f, out) = filter(&old, &map, 1000, false);
        assert_eq!((f.outcome, f.kept), (Outcome::Remove, 0));
        assert!(out.is_empty());
        let (f, out) = filter(&old, &map, 1000, true);
        assert_eq!(f.outcome, Outcome::Rewrite);
        let empty = RecordBatch::parse_verified(&out).unwrap();
        assert_eq!(empty.size(), batch::HEADER_LEN);
        assert_eq!(empty.records_count(), 0);
        assert_eq!((empty.base_offset(), empty.last_offset()), (0, 1));
        assert_eq!(
            (empty.producer_id(), empty.producer_epoch(), empty.base_sequence()),
            (7, 2, 40)
        );
        assert_eq!(empty.compression().unwrap(), Compression::None);
        assert_eq!(empty.max_timestamp(), 101);
        assert!(records_of(&out).is_empty());
    }
}

#[test]
fn a_batch_past_the_maps_end_and_control_batches_are_kept_whole() {
    let old = keyed_batch(Compression::None, 0, 0, &[(Some("a"), Some("1"))]);
    let newer = keyed_batch(Compression::None, 1, 0, &[(Some("a"), Some("2"))]);
    let map = map_of(&[&old]);
    // The map covers offset 0 only: the record at 1 is past it.
    let (f, _) = filter(&newer, &map, 0, false);
    assert_eq!(f.outcome, Outcome::Keep);
    let map = map_of(&[&old, &newer]);
    let mut control = old.clone();
    let attrs = (attributes::CONTROL | attributes::TRANSACTIONAL).to_be_bytes();
    control[21..23].copy_from_slice(&attrs);
    batch::update_crc(&mut control);
    let (f, _) = filter(&control, &map, 0, false);
    assert_eq!(f.outcome, Outcome::Keep);
}

#[test]
fn the_offset_map_is_bounded_and_refuses_a_batch_that_may_not_fit() {
    // 64 slots at 0.5: 32 keys.
    let mut map = OffsetMap::new(64 * OFFSET_MAP_ENTRY_BYTES, 0.5);
    let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let first: Vec<_> = keys[..30].iter().map(|k| (Some(k.as_str()), Some("v"))).collect();
    let rest: Vec<_> = keys[30..].iter().map(|k| (Some(k.as_str()), Some("v"))).collect();
    let a = keyed_batch(Compression::None, 0, 0, &first);
    let b = keyed_batch(Compression::None, 30, 0, &rest);
    assert!(map.add_batch(&RecordBatch::parse(&a).unwrap(), 1 << 20).unwrap());
    assert!(!map.add_batch(&RecordBatch::parse(&b).unwrap(), 1 << 20).unwrap());
    assert_eq!(map.len(), 30);
    assert_eq!(map.end_offset(), 30);
    assert_eq!(map.get(b"k3"), Some(3));
    assert_eq!(map.get(b"k35"), None);
    // A key seen again moves to its later offset without a new entry.
    let again = keyed_batch(Compression::None, 30, 0, &[(Some("k3"), Some("w"))]);
    assert!(map.add_batch(&RecordBatch::parse(&again).unwrap(), 1 << 20).unwrap());
    assert_eq!((map.get(b"k3"), map.len()), (Some(30), 30));
}

#[test]
fn the_offset_map_grows_to_its_bound_and_keeps_every_key() {
    let mut map = OffsetMap::new(1 << 23, 0.9);
    let n = 300_000;
    for start in (0..n).step_by(1000) {
        let keys: Vec<String> = (start..start + 1000).map(|i| format!("key-{i}")).collect();
        let recs: Vec<_> = keys.iter().map(|k| (Some(k.as_str()), Some("v"))).collect();
        let b = keyed_batch(Compression::None, start as i64, 0, &recs);
        assert!(map.add_batch(&RecordBatch::parse(&b).unwrap(), 1 << 20).unwrap());
    }
    assert_eq!(map.len(), n);
    assert!((0..n).all(|i| map.get(format!("key-{i}").as_bytes()) == Some(i as i64)));
    assert_eq!(map.get(b"key-none"), None);
}

/// Segments of `(log bytes, offsets)` each, one after the other from offset 0, with 8 and
/// 12 index bytes per 100 log bytes.
fn sized(segments: &[(u64, i64)]) -> Vec<SegmentSizes> {
    let mut base = 0;
    segments
        .iter()
        .map(|&(log_bytes, offsets)| {
            let s = SegmentSizes {
                base_offset: base,
                end_offset: base + offsets,
                log_bytes,
                offset_index_bytes: log_bytes / 100 * 8,
                time_index_bytes: log_bytes / 100 * 12,
            };
            base += offsets;
            s
        })
        .collect()
}

#[test]
fn segments_are_grouped_while_their_log_bytes_fit_in_segment_bytes() {
    let s = sized(&[(400, 10), (300, 10), (300, 10), (100, 10), (900, 10), (1200, 10), (50, 1)]);
    assert_eq!(group_segments_by_size(&s, 1000, 1 << 20), vec![0..3, 3..5, 5..6, 6..7]);
    // Exactly full is a fit; one segment alone may be larger than the bound.
    assert_eq!(group_segments_by_size(&s[..3], 1000, 1 << 20), vec![0..3]);
    assert_eq!(group_segments_by_size(&s[5..], 1000, 1 << 20), vec![0..1, 1..2]);
    assert_eq!(group_segments_by_size(&[], 1000, 1 << 20), Vec::<std::ops::Range<usize>>::new());
    assert_eq!(group_segments_by_size(&s, u64::MAX, u64::MAX), vec![0..7]);
}

#[test]
fn each_index_must_fit_in_segment_index_bytes() {
    // 1,000 log bytes each: 80 offset index bytes, 120 time index bytes.
    let s = sized(&[(1000, 10); 4]);
    assert_eq!(group_segments_by_size(&s, 1 << 20, 240), vec![0..2, 2..4], "time index");
    assert_eq!(group_segments_by_size(&s, 1 << 20, 360), vec![0..3, 3..4]);
    let mut offsets_heavy = s.clone();
    for x in &mut offsets_heavy {
        x.offset_index_bytes = 200;
    }
    assert_eq!(group_segments_by_size(&offsets_heavy, 1 << 20, 399), vec![0..1, 1..2, 2..3, 3..4]);
}

#[test]
fn a_group_spans_at_most_an_i32_of_offsets_from_its_base() {
    let max = i64::from(i32::MAX);
    // The second segment's last possible offset is exactly base + i32::MAX: it fits; the
    // third's is one past.
    let s = sized(&[(10, max / 2), (10, max - max / 2 + 1), (10, 1)]);
    assert_eq!(s[1].end_offset - 1 - s[0].base_offset, max);
    assert_eq!(group_segments_by_size(&s, 1 << 20, 1 << 20), vec![0..2, 2..3]);
    // An empty segment holds no offset, whatever its range.
    let mut empty = sized(&[(10, 5), (0, max), (10, 5)]);
    assert_eq!(group_segments_by_size(&empty, 1 << 20, 1 << 20), vec![0..2, 2..3]);
    empty[1].log_bytes = 1;
    assert_eq!(group_segments_by_size(&empty, 1 << 20, 1 << 20), vec![0..1, 1..2, 2..3]);
}
