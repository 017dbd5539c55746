//! Turning a fetched partition's record set into [`ConsumerRecord`]s, sans I/O.
//!
//! Zero copy where the format allows it: the keys, values and header values of an
//! uncompressed batch are `Bytes` slices of the fetch response's frame; a compressed
//! batch is decompressed once into one buffer and its records are slices of that. No
//! record costs an allocation of its own beyond its header list.
//!
//! As Kafka's fetcher: records below the fetch offset (a batch starts before it) are
//! skipped, control batches (transaction markers) are never returned but move the
//! position past them, a partial batch at the end (cut at the size limit) is left for
//! the next fetch, and with `check.crcs` each batch's CRC-32C is verified first.
//!
//! With `isolation.level=read_committed` an [`AbortedFilter`] also drops the batches of
//! aborted transactions (`aborted.rs`), looking at batch headers only.

mod aborted;

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use sluice_protocol::record::compression::{self, Compression};
use sluice_protocol::record::{batches, Records};

use crate::error::ClientError;

pub use aborted::AbortedFilter;

/// A record as the consumer returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its timestamp (create time, or the broker's append time).
    pub timestamp: i64,
    /// Whether `timestamp` is LogAppendTime.
    pub log_append_time: bool,
    /// The key; `None` is null, distinct from empty.
    pub key: Option<Bytes>,
    /// The value; `None` is null, distinct from empty.
    pub value: Option<Bytes>,
    /// Headers in order; keys are bytes as stored (UTF-8 from Kafka clients).
    pub headers: Vec<(Bytes, Option<Bytes>)>,
    /// The leader epoch of its batch.
    pub leader_epoch: i32,
}

impl ConsumerRecord {
    /// The value as UTF-8 text, if it is.
    pub fn value_str(&self) -> Option<&str> {
        self.value.as_deref().and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// What one partition's record set yielded.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Records at or past the fetch offset, in order.
    pub records: Vec<ConsumerRecord>,
    /// The offset to fetch from next: past the last whole batch read.
    pub next_offset: i64,
}

/// The compressed batches of one record set, decompressed ahead of [`parse`]: on the task
/// that received the fetch response, so that decompressing the next response overlaps the
/// application's handling of the records of the one before. Keyed by base offset, in order.
#[derive(Debug, Default)]
pub struct Inflated(Vec<(i64, Option<Result<Bytes, String>>)>);

impl Inflated {
    /// Decompresses every compressed batch of `set`, each bounded by `max_uncompressed`;
    /// a batch that does not decompress keeps its error for [`parse`] to report at its
    /// position (after the CRC check, which may name the cause better).
    pub fn of(set: &Bytes, max_uncompressed: usize) -> Inflated {
        let mut sections = Vec::new();
        for batch in batches(set) {
            let Ok(batch) = batch else { break };
            let Ok(codec) = batch.compression() else { continue };
            if codec == Compression::None || batch.is_control() {
                continue;
            }
            let section = compression::decompress(codec, batch.records_section(), max_uncompressed)
                .map(Bytes::from)
                .map_err(|e| e.to_string());
            sections.push((batch.base_offset(), Some(section)));
        }
        Inflated(sections)
    }

    /// The decompressed section of the batch at `base_offset`, once (`None` after).
    fn take(&mut self, base_offset: i64) -> Option<Result<Bytes, String>> {
        let at = self.0.binary_search_by_key(&base_offset, |(o, _)| *o).ok()?;
        self.0[at].1.take()
    }
}

/// Decodes `set` (one partition's `records` from a fetch response) from `fetch_offset`,
/// every record at once.
///
/// `max_uncompressed` bounds the decompressed size of one batch.
///
/// # Errors
/// [`ClientError::CorruptRecord`] for a batch that fails its CRC, does not decompress or
/// holds a malformed record; records before it are not returned either, so the
/// application sees the error at the position of the bad batch.
pub fn parse(
    topic: &Arc<str>,
    partition: i32,
    set: &Bytes,
    fetch_offset: i64,
    check_crcs: bool,
    max_uncompressed: usize,
) -> Result<Parsed, ClientError> {
    let mut none = Inflated::default();
    let (mut pending, next_offset) = prepare(
        topic,
        partition,
        set,
        fetch_offset,
        check_crcs,
        max_uncompressed,
        &mut none,
        None,
    )?;
    let mut records = Vec::with_capacity(pending.len());
    pending.take(topic, partition, usize::MAX, &mut records)?;
    Ok(Parsed { records, next_offset })
}

/// Checks and decompresses the batches of `set` from `fetch_offset` (using `inflated` for
/// batches already decompressed) into [`Pending`] records, decoded only as they are
/// taken; returns them with the offset to fetch next. With `aborted` (read_committed) the
/// batches of aborted transactions are dropped and the offset moves past them.
///
/// # Errors
/// [`ClientError::CorruptRecord`] for a batch that fails its CRC or does not decompress;
/// nothing of the set is kept then, so the application sees the error at its position.
#[expect(
    clippy::too_many_arguments,
    reason = "one partition's fetched data and how to read it, each used once"
)]
pub fn prepare(
    topic: &Arc<str>,
    partition: i32,
    set: &Bytes,
    fetch_offset: i64,
    check_crcs: bool,
    max_uncompressed: usize,
    inflated: &mut Inflated,
    mut aborted: Option<&mut AbortedFilter>,
) -> Result<(Pending, i64), ClientError> {
    let corrupt = |offset: i64, reason: String| ClientError::CorruptRecord {
        topic: topic.to_string(),
        partition,
        offset,
        reason,
    };
    let mut pending = Pending::default();
    let mut next_offset = fetch_offset;
    for batch in batches(set) {
        let batch = batch.map_err(|e| corrupt(next_offset, e.to_string()))?;
        if batch.last_offset() < fetch_offset {
            continue;
        }
        if check_crcs {
            batch.verify_crc().map_err(|e| corrupt(batch.base_offset(), e.to_string()))?;
        }
        let next = batch.last_offset() + 1;
        if let Some(filter) = aborted.as_deref_mut() {
            if filter.skips(&batch) {
                // Decompressed ahead for nothing; drop it so it is not taken by mistake.
                let _ = inflated.take(batch.base_offset());
                next_offset = next;
                continue;
            }
        }
        if batch.is_control() {
            next_offset = next;
            continue;
        }
        let codec = batch.compression().map_err(|e| corrupt(batch.base_offset(), e.to_string()))?;
        let section = match codec {
            Compression::None => set.slice_ref(batch.records_section()),
            codec => inflated
                .take(batch.base_offset())
                .unwrap_or_else(|| {
                    compression::decompress(codec, batch.records_section(), max_uncompressed)
                        .map(Bytes::from)
                        .map_err(|e| e.to_string())
                })
                .map_err(|e| corrupt(batch.base_offset(), e))?,
        };
        let remaining = u32::try_from(batch.records_count()).unwrap_or(0);
        pending.records += remaining as usize;
        pending.batches.push_back(PendingBatch {
            section,
            remaining,
            from: fetch_offset,
            base_offset: batch.base_offset(),
            base_timestamp: batch.base_timestamp(),
            max_timestamp: batch.max_timestamp(),
            log_append_time: batch.is_log_append_time(),
            leader_epoch: batch.partition_leader_epoch(),
        });
        next_offset = next;
    }
    Ok((pending, next_offset))
}

/// One fetched batch whose records are not all taken yet.
#[derive(Debug)]
struct PendingBatch {
    /// The records not yet decoded (uncompressed).
    section: Bytes,
    /// How many, by the batch's count.
    remaining: u32,
    /// Records below this offset (the fetch offset) are skipped.
    from: i64,
    base_offset: i64,
    base_timestamp: i64,
    max_timestamp: i64,
    log_append_time: bool,
    leader_epoch: i32,
}

/// A partition's fetched records not yet returned, kept as their batches and decoded into
/// [`ConsumerRecord`]s only as they are taken, as Java's fetcher does: one fetch of small,
/// well-compressed records can hold millions of them, and decoding them all up front
/// would cost memory and time the application may never ask for.
#[derive(Debug, Default)]
pub struct Pending {
    batches: VecDeque<PendingBatch>,
    records: usize,
}

impl Pending {
    /// Records not yet taken (by the batches' counts).
    pub fn len(&self) -> usize {
        self.records
    }

    /// Whether every record was taken.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Drops every record not taken.
    pub fn clear(&mut self) {
        self.batches.clear();
        self.records = 0;
    }

    /// Appends what a later fetch brought.
    pub fn append(&mut self, mut other: Pending) {
        self.records += other.records;
        self.batches.append(&mut other.batches);
    }

    /// Decodes records into `out` until it holds `max`, or none are left.
    ///
    /// # Errors
    /// [`ClientError::CorruptRecord`] at the batch of a malformed record; what follows it is
    /// dropped, and the records before it are in `out`.
    pub fn take(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        max: usize,
        out: &mut Vec<ConsumerRecord>,
    ) -> Result<(), ClientError> {
        while out.len() < max {
            let Some(batch) = self.batches.front_mut() else { break };
            let mut records = Records::new(&batch.section, batch.remaining);
            let failure = loop {
                if out.len() >= max && records.remaining() > 0 {
                    break None;
                }
                let record = match records.next() {
                    None => break None,
                    Some(Ok(record)) => record,
                    Some(Err(e)) => break Some(e),
                };
                let offset = batch.base_offset.wrapping_add(i64::from(record.offset_delta()));
                if offset < batch.from {
                    continue;
                }
                let slice = |b: &[u8]| batch.section.slice_ref(b);
                out.push(ConsumerRecord {
                    topic: topic.clone(),
                    partition,
                    offset,
                    timestamp: if batch.log_append_time {
                        batch.max_timestamp
                    } else {
                        batch.base_timestamp.wrapping_add(record.timestamp_delta())
                    },
                    log_append_time: batch.log_append_time,
                    key: record.key().map(slice),
                    value: record.value().map(slice),
                    headers: record.headers().map(|h| (slice(h.key), h.value.map(slice))).collect(),
                    leader_epoch: batch.leader_epoch,
                });
            };
            if let Some(e) = failure {
                let offset = batch.base_offset;
                self.clear();
                return Err(ClientError::CorruptRecord {
                    topic: topic.to_string(),
                    partition,
                    offset,
                    reason: e.to_string(),
                });
            }
            let (left, unread) = (records.remaining(), records.unread().len());
            self.records -= (batch.remaining - left) as usize;
            if left == 0 {
                self.batches.pop_front();
            } else {
                batch.remaining = left;
                batch.section = batch.section.slice(batch.section.len() - unread..);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocol::record::batch::set_base_offset;
    use sluice_protocol::record::{BatchBuilder, Header};

    pub(super) fn batch(base: i64, values: &[&str], codec: Compression) -> Vec<u8> {
        let mut b = BatchBuilder::new(codec);
        for (i, v) in values.iter().enumerate() {
            let headers = [Header { key: b"h", value: Some(v.as_bytes()) }];
            b.append(100 + i as i64, Some(b"k"), Some(v.as_bytes()), &headers).unwrap();
        }
        let mut bytes = b.build().unwrap();
        set_base_offset(&mut bytes, base);
        bytes
    }

    #[test]
    fn slices_share_the_fetched_buffer_and_skip_below_the_fetch_offset() {
        let mut set = batch(10, &["a", "b", "c"], Compression::None);
        set.extend(batch(13, &["d"], Compression::Lz4));
        let partial = batch(14, &["e"], Compression::None);
        set.extend(&partial[..partial.len() - 3]);
        let set = Bytes::from(set);
        let topic: Arc<str> = "t".into();
        let parsed = parse(&topic, 0, &set, 11, true, 1 << 20).unwrap();
        let values: Vec<&str> = parsed.records.iter().map(|r| r.value_str().unwrap()).collect();
        assert_eq!(values, ["b", "c", "d"]);
        assert_eq!(parsed.records[0].offset, 11);
        assert_eq!(parsed.records[0].timestamp, 101);
        assert_eq!(parsed.next_offset, 14, "the partial batch waits for the next fetch");
        let range = set.as_ptr() as usize..set.as_ptr() as usize + set.len();
        let value = parsed.records[0].value.as_ref().unwrap();
        assert!(
            range.contains(&(value.as_ptr() as usize)),
            "uncompressed values are slices of the fetch"
        );
        assert_eq!(parsed.records[2].headers[0].1.as_deref(), Some(&b"d"[..]));
    }

    #[test]
    fn batches_inflated_ahead_are_used_and_equal_those_decompressed_in_place() {
        let mut set = batch(0, &["a", "b"], Compression::Lz4);
        set.extend(batch(2, &["c"], Compression::None));
        set.extend(batch(3, &["d", "e"], Compression::Zstd));
        let set = Bytes::from(set);
        let topic: Arc<str> = "t".into();
        let mut inflated = Inflated::of(&set, 1 << 20);
        assert_eq!(inflated.0.iter().map(|(o, _)| *o).collect::<Vec<_>>(), [0, 3]);
        let ahead = {
            let (mut p, _) =
                prepare(&topic, 0, &set, 1, true, 1 << 20, &mut inflated, None).unwrap();
            let mut records = Vec::new();
            p.take(&topic, 0, usize::MAX, &mut records).unwrap();
            Parsed { records, next_offset: 0 }
        };
        assert!(inflated.0.iter().all(|(_, s)| s.is_none()), "each inflated section was used");
        let here = parse(&topic, 0, &set, 1, true, 1 << 20).unwrap();
        assert_eq!(ahead.records, here.records);
        let values: Vec<&str> = ahead.records.iter().map(|r| r.value_str().unwrap()).collect();
        assert_eq!(values, ["b", "c", "d", "e"]);
        // A batch that failed to inflate is reported at its own offset.
        let mut failed = Inflated(vec![(3, Some(Err("lz4 data is corrupt".into())))]);
        let err = prepare(&topic, 0, &set, 0, true, 1 << 20, &mut failed, None).unwrap_err();
        assert!(matches!(err, ClientError::CorruptRecord { offset: 3, .. }), "{err}");
    }

    #[test]
    fn pending_records_taken_a_few_at_a_time_equal_one_parse_and_stop_at_a_bad_record() {
        let mut set = batch(5, &["a", "b", "c"], Compression::Lz4);
        set.extend(batch(8, &["d"], Compression::None));
        set.extend(batch(9, &["e", "f"], Compression::Snappy));
        let set = Bytes::from(set);
        let topic: Arc<str> = "t".into();
        let whole = parse(&topic, 0, &set, 6, true, 1 << 20).unwrap();
        let (mut pending, next) =
            prepare(&topic, 0, &set, 6, true, 1 << 20, &mut Inflated::default(), None).unwrap();
        assert_eq!((pending.len(), next), (6, 11), "counts whole batches; skips come at take");
        let mut stepwise = Vec::new();
        while !pending.is_empty() {
            let max = stepwise.len() + 2;
            pending.take(&topic, 0, max, &mut stepwise).unwrap();
            assert!(stepwise.len() <= max);
        }
        assert_eq!(stepwise, whole.records);
        assert_eq!(pending.len(), 0);

        // A batch that claims a third record it does not hold (records count at byte 57).
        let mut bad = batch(0, &["x", "y"], Compression::None);
        bad[57..61].copy_from_slice(&3i32.to_be_bytes());
        let bad = Bytes::from(bad);
        let (mut pending, _) =
            prepare(&topic, 0, &bad, 0, false, 1 << 20, &mut Inflated::default(), None).unwrap();
        let mut out = Vec::new();
        let err = pending.take(&topic, 0, 10, &mut out);
        assert!(matches!(err, Err(ClientError::CorruptRecord { offset: 0, .. })), "{err:?}");
        assert_eq!(out.len(), 2, "the records before the bad one are returned");
        assert!(pending.is_empty(), "nothing after the bad record is kept");
    }

    #[test]
    fn a_flipped_bit_is_reported_at_its_batch() {
        let mut set = batch(0, &["a"], Compression::None);
        // A bit of baseTimestamp: covered by the CRC, harmless to decoding.
        set[30] ^= 1;
        let err = parse(&"t".into(), 0, &Bytes::from(set.clone()), 0, true, 1 << 20).unwrap_err();
        assert!(matches!(err, ClientError::CorruptRecord { offset: 0, .. }), "{err}");
        assert!(
            parse(&"t".into(), 0, &Bytes::from(set), 0, false, 1 << 20).is_ok(),
            "check.crcs=false"
        );
    }
}
