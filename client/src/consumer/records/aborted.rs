//! The read_committed filter: which fetched batches belong to aborted transactions.
//!
//! From the fetch response's `aborted_transactions`, as Java's `CompletedFetch` does: per
//! producer id, an aborted transaction is skipped from its first offset until that
//! producer's ABORT marker. The filter looks at batch headers only, so read_committed
//! costs one branch per batch, not per record.

use sluice_protocol::record::RecordBatch;

/// The control record type of an ABORT marker (the key is version, then type, both i16).
const ABORT_MARKER: i16 = 0;

/// The aborted transactions of one fetched partition, and which of them the batches read
/// so far are inside (read_committed; see the module doc).
#[derive(Debug, Default)]
pub struct AbortedFilter {
    /// Aborted transactions not yet reached, as (first offset, producer id), the
    /// earliest last so that reaching one is a pop.
    upcoming: Vec<(i64, i64)>,
    /// Producers whose aborted transaction the batches are in now (few at a time).
    open: Vec<i64>,
}

impl AbortedFilter {
    /// A filter for a fetch response's `aborted_transactions`: (producer id, first offset).
    pub fn new(aborted: impl IntoIterator<Item = (i64, i64)>) -> Self {
        let mut upcoming: Vec<(i64, i64)> = aborted.into_iter().map(|(p, f)| (f, p)).collect();
        upcoming.sort_unstable_by(|a, b| b.cmp(a));
        AbortedFilter { upcoming, open: Vec::new() }
    }

    /// Whether `batch`'s records are to be dropped; moves the filter past it. A control
    /// batch is never "dropped" here (the caller skips it anyway) but its ABORT marker
    /// ends its producer's aborted transaction.
    pub fn skips(&mut self, batch: &RecordBatch<'_>) -> bool {
        let producer = batch.producer_id();
        if producer < 0 {
            return false;
        }
        while let Some(&(first, p)) = self.upcoming.last() {
            if first > batch.last_offset() {
                break;
            }
            self.upcoming.pop();
            if !self.open.contains(&p) {
                self.open.push(p);
            }
        }
        if batch.is_control() {
            if is_abort_marker(batch) {
                self.open.retain(|&p| p != producer);
            }
            return false;
        }
        batch.is_transactional() && self.open.contains(&producer)
    }
}

/// Whether a control batch holds an ABORT marker (its first record's key type).
fn is_abort_marker(batch: &RecordBatch<'_>) -> bool {
    let Ok(records) = batch.records(1 << 16) else { return false };
    let first = records.iter().next();
    match first.as_ref().and_then(|r| r.as_ref().ok()).and_then(|r| r.key()) {
        Some(key) if key.len() >= 4 => i16::from_be_bytes([key[2], key[3]]) == ABORT_MARKER,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use sluice_protocol::record::batch::set_base_offset;
    use sluice_protocol::record::compression::Compression;
    use sluice_protocol::record::BatchBuilder;

    use super::*;
    use crate::consumer::records::tests::batch;
    use crate::consumer::records::{parse, prepare, Inflated};

    /// A transactional batch of `producer` at `base`.
    fn txn(base: i64, producer: i64, values: &[&str], codec: Compression) -> Vec<u8> {
        let mut b = BatchBuilder::new(codec).producer(producer, 0, base as i32).transactional(true);
        for (i, v) in values.iter().enumerate() {
            b.append(100 + i as i64, None, Some(v.as_bytes()), &[]).unwrap();
        }
        let mut bytes = b.build().unwrap();
        set_base_offset(&mut bytes, base);
        bytes
    }

    /// A COMMIT (`commit`) or ABORT marker of `producer` at `offset`.
    fn marker(offset: i64, producer: i64, commit: bool) -> Vec<u8> {
        let key = [0, 0, 0, u8::from(commit)];
        let mut b =
            BatchBuilder::new(Compression::None).producer(producer, 0, -1).transactional(true);
        b.append(100, Some(&key), Some(&[0, 0, 0, 0, 0, 0]), &[]).unwrap();
        let mut bytes = b.build().unwrap();
        set_base_offset(&mut bytes, offset);
        let attributes = i16::from_be_bytes([bytes[21], bytes[22]]) | 0x20;
        bytes[21..23].copy_from_slice(&attributes.to_be_bytes());
        sluice_protocol::record::batch::update_crc(&mut bytes);
        bytes
    }

    fn committed(set: Vec<u8>, from: i64, aborted: &[(i64, i64)]) -> (Vec<(i64, String)>, i64) {
        let set = Bytes::from(set);
        let topic: Arc<str> = "t".into();
        let mut inflated = Inflated::of(&set, 1 << 20);
        let mut filter = AbortedFilter::new(aborted.iter().copied());
        let (mut pending, next) =
            prepare(&topic, 0, &set, from, true, 1 << 20, &mut inflated, Some(&mut filter))
                .unwrap();
        let mut out = Vec::new();
        pending.take(&topic, 0, usize::MAX, &mut out).unwrap();
        (out.iter().map(|r| (r.offset, r.value_str().unwrap().to_string())).collect(), next)
    }

    fn values(records: &[(i64, String)]) -> Vec<&str> {
        records.iter().map(|(_, v)| v.as_str()).collect()
    }

    #[test]
    fn interleaved_producers_lose_exactly_their_aborted_transactions() {
        let mut set = txn(0, 1, &["a1", "a2"], Compression::None); // producer 1, aborted
        set.extend(txn(2, 2, &["c1"], Compression::None)); // producer 2, committed
        set.extend(batch(3, &["plain"], Compression::None)); // not transactional
        set.extend(txn(4, 1, &["a3"], Compression::None));
        set.extend(marker(5, 1, false));
        set.extend(txn(6, 2, &["c2"], Compression::None));
        set.extend(marker(7, 2, true));
        set.extend(txn(8, 1, &["c3"], Compression::None)); // producer 1's next, committed
        set.extend(txn(9, 2, &["a4"], Compression::None)); // producer 2, aborted
        set.extend(marker(10, 1, true));
        set.extend(marker(11, 2, false));
        let (records, next) = committed(set.clone(), 0, &[(2, 9), (1, 0)]);
        assert_eq!(values(&records), ["c1", "plain", "c2", "c3"]);
        assert_eq!(records.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 3, 6, 8]);
        assert_eq!(next, 12, "the position moves past aborted batches and markers");
        // Without the list (read_uncommitted) every data record is there, markers never.
        let set = Bytes::from(set);
        let all = parse(&"t".into(), 0, &set, 0, true, 1 << 20).unwrap();
        assert_eq!(all.records.len(), 8);
    }

    #[test]
    fn aborted_records_inside_compressed_batches_are_dropped_whole() {
        let mut set = txn(0, 7, &["k1", "k2", "k3"], Compression::Lz4);
        set.extend(txn(3, 8, &["x1", "x2", "x3", "x4"], Compression::Zstd));
        set.extend(txn(7, 7, &["k4"], Compression::Snappy));
        set.extend(marker(8, 8, false));
        set.extend(marker(9, 7, true));
        set.extend(txn(10, 8, &["y1", "y2"], Compression::Gzip));
        set.extend(marker(12, 8, true));
        let (records, next) = committed(set, 0, &[(8, 3)]);
        assert_eq!(values(&records), ["k1", "k2", "k3", "k4", "y1", "y2"]);
        assert_eq!(next, 13);
    }

    #[test]
    fn a_fetch_that_starts_inside_an_aborted_transaction_skips_the_rest_of_it() {
        // Producer 3's aborted transaction began at 0, before the fetch position 2.
        let mut set = txn(0, 3, &["a", "b", "c"], Compression::None);
        set.extend(txn(3, 4, &["ok1"], Compression::None));
        set.extend(txn(4, 3, &["d"], Compression::Lz4));
        set.extend(marker(5, 3, false));
        set.extend(marker(6, 4, true));
        set.extend(txn(7, 3, &["ok2"], Compression::None));
        let (records, next) = committed(set, 2, &[(3, 0)]);
        assert_eq!(values(&records), ["ok1", "ok2"]);
        assert_eq!(next, 8);
        // A response holding only aborted records and markers still moves the position.
        let mut set = txn(20, 3, &["z"], Compression::None);
        set.extend(marker(21, 3, false));
        let (records, next) = committed(set, 20, &[(3, 20)]);
        assert!(records.is_empty());
        assert_eq!(next, 22);
    }

    #[test]
    fn an_aborted_transaction_not_yet_begun_does_not_drop_earlier_batches() {
        // The list names producer 5's transaction from offset 2: its batch at 0 was of
        // an earlier, committed transaction.
        let mut set = txn(0, 5, &["early"], Compression::None);
        set.extend(marker(1, 5, true));
        set.extend(txn(2, 5, &["late"], Compression::None));
        set.extend(marker(3, 5, false));
        let (records, _) = committed(set, 0, &[(5, 2)]);
        assert_eq!(values(&records), ["early"]);
    }
}
