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

use std::sync::Arc;

use bytes::Bytes;
use sluice_protocol::record::compression::{self, Compression};
use sluice_protocol::record::{batches, Records};

use crate::error::ClientError;

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

/// Decodes `set` (one partition's `records` from a fetch response) from `fetch_offset`.
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
    let corrupt = |offset: i64, reason: String| ClientError::CorruptRecord {
        topic: topic.to_string(),
        partition,
        offset,
        reason,
    };
    let mut out = Parsed { records: Vec::new(), next_offset: fetch_offset };
    for batch in batches(set) {
        let batch = batch.map_err(|e| corrupt(out.next_offset, e.to_string()))?;
        if batch.last_offset() < fetch_offset {
            continue;
        }
        if check_crcs {
            batch.verify_crc().map_err(|e| corrupt(batch.base_offset(), e.to_string()))?;
        }
        let next = batch.last_offset() + 1;
        if batch.is_control() {
            out.next_offset = next;
            continue;
        }
        let codec = batch.compression().map_err(|e| corrupt(batch.base_offset(), e.to_string()))?;
        let section = match codec {
            Compression::None => set.slice_ref(batch.records_section()),
            codec => Bytes::from(
                compression::decompress(codec, batch.records_section(), max_uncompressed)
                    .map_err(|e| corrupt(batch.base_offset(), e.to_string()))?,
            ),
        };
        let count = u32::try_from(batch.records_count()).unwrap_or(0);
        let log_append_time = batch.is_log_append_time();
        for record in Records::new(&section, count) {
            let record = record.map_err(|e| corrupt(batch.base_offset(), e.to_string()))?;
            let offset = batch.base_offset().wrapping_add(i64::from(record.offset_delta()));
            if offset < fetch_offset {
                continue;
            }
            let slice = |b: &[u8]| section.slice_ref(b);
            out.records.push(ConsumerRecord {
                topic: topic.clone(),
                partition,
                offset,
                timestamp: if log_append_time {
                    batch.max_timestamp()
                } else {
                    batch.base_timestamp().wrapping_add(record.timestamp_delta())
                },
                log_append_time,
                key: record.key().map(slice),
                value: record.value().map(slice),
                headers: record.headers().map(|h| (slice(h.key), h.value.map(slice))).collect(),
                leader_epoch: batch.partition_leader_epoch(),
            });
        }
        out.next_offset = next;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocol::record::batch::set_base_offset;
    use sluice_protocol::record::{BatchBuilder, Header};

    fn batch(base: i64, values: &[&str], codec: Compression) -> Vec<u8> {
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
