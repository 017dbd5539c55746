//! The log cleaner's rules, without I/O: Kafka's key-hash offset map, the filter that
//! turns one record batch of a compacted log into what cleaning keeps of it, and the
//! grouping of consecutive segments that are cleaned into one. The passes over a
//! partition's files, and the crash-safe swap, are in `partition_log/compaction.rs`.
//!
//! Kafka's rules (its `Cleaner`, `SkimpyOffsetMap` and `MemoryRecords.filterTo`, KIP-534
//! for tombstones), which this module keeps:
//! - The offset map holds, for each key of the dirty section, the offset of its last record.
//!   It stores a 128-bit hash of the key, not the key: 24 bytes an entry, in memory fixed by
//!   `log.cleaner.dedupe.buffer.size` and filled to `log.cleaner.io.buffer.load.factor`.
//!   A pass whose dirty section has more keys cleans up to the last batch that fitted.
//! - A record is kept unless the map has a later offset for its key. A record without a key
//!   is dropped (a compacted topic refuses them on produce).
//! - A tombstone (null value) is kept until its batch's delete horizon has passed. The first
//!   cleaning that keeps a tombstone sets the horizon, now + `delete.retention.ms`, as the
//!   batch's base timestamp with attribute bit 6, re-basing the records' timestamp deltas
//!   on it; a later cleaning past the horizon drops the tombstone.
//! - A rewritten batch keeps its base offset, last offset delta, producer id, epoch and base
//!   sequence, leader epoch and codec; its kept records keep their bytes and offset deltas
//!   (so offsets keep their holes); its max timestamp, count, length and CRC-32C are
//!   recomputed. A batch that loses every record goes, unless it is the last batch of a
//!   producer whose state the partition keeps: then its header stays, with no records, so
//!   that the producer's last sequence survives a restart (Kafka's rule for the last batch
//!   of an active producer).
//! - Control and transactional batches are kept whole, and their keys do not enter the
//!   offset map: a read_committed reader still finds every marker its aborted-transaction
//!   index points at, and no committed value is dropped for a key whose newer value is in
//!   a transaction that may yet abort. Kafka also removes aborted records and old markers;
//!   Sluice keeps them (more bytes, the same answers).
//! - The segments of a pass are cleaned in groups (Kafka's `groupSegmentsBySize`), each
//!   into one new segment at the group's first base offset: consecutive segments whose
//!   log bytes together fit in `segment.bytes`, whose offset and time index bytes each fit
//!   in `segment.index.bytes`, and whose offsets stay within an `i32` of the group's base.
//!   So a compacted log keeps about one segment per `segment.bytes` of live records, not
//!   one per segment it ever rolled.

use std::hash::Hasher;

use sluice_protocol::record::batch::{self, attributes, RecordBatch};
use sluice_protocol::record::compression::{self, Compression};
use sluice_protocol::record::RecordError;
use sluice_protocol::varint;

/// Broker-wide settings of the log cleaner (`log.cleaner.*`), with Kafka's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.enable`.
    pub enable: bool,
    /// `log.cleaner.threads`.
    pub threads: usize,
    /// `log.cleaner.dedupe.buffer.size`: offset map memory of all threads together.
    pub dedupe_buffer_size: u64,
    /// `log.cleaner.io.buffer.size`: write buffer of all threads together.
    pub io_buffer_size: usize,
    /// `log.cleaner.io.buffer.load.factor`: how full an offset map may get.
    pub io_buffer_load_factor: f64,
    /// `log.cleaner.io.max.bytes.per.second`: read and write rate of all threads together.
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.backoff.ms`: sleep of a thread that found nothing to clean.
    pub backoff_ms: u64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            enable: true,
            threads: 1,
            dedupe_buffer_size: 128 << 20,
            io_buffer_size: 512 << 10,
            io_buffer_load_factor: 0.9,
            io_max_bytes_per_second: f64::MAX,
            backoff_ms: 15_000,
        }
    }
}

/// Bytes of one offset map entry: the key's 128-bit hash and the offset.
pub const OFFSET_MAP_ENTRY_BYTES: u64 = 24;

/// Key hash -> offset of the key's last record, in memory bounded at creation (Kafka's
/// `SkimpyOffsetMap`). Open addressing with linear probing; a zero hash marks a free slot.
///
/// Kafka allocates the whole buffer for every pass; this map starts at 64 Ki slots and
/// doubles as keys come, up to the bound, so that a pass over a few thousand keys probes
/// a table that stays in the CPU caches (measured: with the full 128 MiB table, cache and
/// TLB misses of its random probes took most of a pass).
#[derive(Debug)]
pub(crate) struct OffsetMap {
    /// `[hash high | 1, hash low, offset]`.
    slots: Vec<[u64; 3]>,
    entries: usize,
    /// Slots the memory bound allows, and keys at most (the load factor of those).
    max_slots: usize,
    max_entries: usize,
    load_factor: f64,
    /// Offset after the last batch added: the map covers the log below it.
    end_offset: i64,
}

/// Slots of a new map.
const INITIAL_SLOTS: usize = 1 << 16;

impl OffsetMap {
    /// A map of at most `memory_bytes`, filled to at most `load_factor` of its slots.
    pub(crate) fn new(memory_bytes: u64, load_factor: f64) -> Self {
        let max_slots = (memory_bytes / OFFSET_MAP_ENTRY_BYTES).clamp(16, 1 << 40) as usize;
        let max_entries = ((max_slots as f64 * load_factor) as usize).clamp(1, max_slots - 1);
        OffsetMap {
            slots: vec![[0u64; 3]; max_slots.min(INITIAL_SLOTS)],
            entries: 0,
            max_slots,
            max_entries,
            load_factor,
            end_offset: -1,
        }
    }

    /// Doubles the table (up to the bound) and places every entry again.
    fn grow(&mut self) {
        let len = (self.slots.len() * 2).min(self.max_slots);
        let old = std::mem::replace(&mut self.slots, vec![[0u64; 3]; len]);
        for s in old.into_iter().filter(|s| s[0] != 0) {
            let i = self.slot_of((s[0], s[1]));
            self.slots[i] = s;
        }
    }

    /// Keys in the map.
    pub(crate) fn len(&self) -> usize {
        self.entries
    }

    /// Offset after the last batch added (-1 before any).
    pub(crate) fn end_offset(&self) -> i64 {
        self.end_offset
    }

    /// Makes the map cover the log below `end` (a dirty section with no keys past the last
    /// batch added, such as control batches or none at all).
    pub(crate) fn cover_to(&mut self, end: i64) {
        self.end_offset = self.end_offset.max(end);
    }

    fn hash(key: &[u8]) -> (u64, u64) {
        // Two SipHash-1-3 digests with different prefixes: 128 bits, so that a collision
        // (which would drop a live record) is as unlikely as with Kafka's MD5.
        let mut a = std::hash::DefaultHasher::new();
        a.write(key);
        let mut b = std::hash::DefaultHasher::new();
        b.write_u64(0x9e37_79b9_7f4a_7c15);
        b.write(key);
        (a.finish() | 1, b.finish())
    }

    fn slot_of(&self, (hi, lo): (u64, u64)) -> usize {
        let n = self.slots.len() as u128;
        let mut i = ((u128::from(lo) * n) >> 64) as usize;
        loop {
            let s = &self.slots[i];
            if s[0] == 0 || (s[0] == hi && s[1] == lo) {
                return i;
            }
            i += 1;
            if i == self.slots.len() {
                i = 0;
            }
        }
    }

    /// Records `offset` as the latest of `key`. Returns false, changing nothing, when the
    /// key is new and the map is full.
    fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let h = Self::hash(key);
        let mut i = self.slot_of(h);
        if self.slots[i][0] == 0 {
            if self.entries >= self.max_entries {
                return false;
            }
            let full = (self.entries + 1) as f64 > self.slots.len() as f64 * self.load_factor;
            if full && self.slots.len() < self.max_slots {
                self.grow();
                i = self.slot_of(h);
            }
        }
        let slot = &mut self.slots[i];
        if slot[0] == 0 {
            self.entries += 1;
            *slot = [h.0, h.1, 0];
        }
        slot[2] = offset as u64;
        true
    }

    /// The offset of the last record of `key` in the mapped range.
    pub(crate) fn get(&self, key: &[u8]) -> Option<i64> {
        let s = &self.slots[self.slot_of(Self::hash(key))];
        (s[0] != 0).then_some(s[2] as i64)
    }

    /// Adds the keys of a batch of the dirty section. Returns false, adding nothing, when
    /// its records might not all fit: the map then covers the log up to the batch before.
    ///
    /// # Errors
    /// A record that cannot be decoded (decompressed to at most `limit` bytes).
    pub(crate) fn add_batch(
        &mut self,
        b: &RecordBatch<'_>,
        limit: usize,
    ) -> Result<bool, RecordError> {
        if b.is_control() || b.is_transactional() {
            self.end_offset = b.last_offset() + 1;
            return Ok(true);
        }
        if self.entries + b.records_count() as usize > self.max_entries {
            return Ok(false);
        }
        let records = b.records(limit)?;
        for r in records.iter() {
            let r = r?;
            if let Some(key) = r.key() {
                // Room was checked for every record of the batch.
                let _ = self.put(key, records.offset(&r));
            }
        }
        self.end_offset = b.last_offset() + 1;
        Ok(true)
    }
}

/// What a cleaning pass holds fixed for every batch it filters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FilterContext {
    /// The cleaner's clock.
    pub now_ms: i64,
    /// `delete.retention.ms`.
    pub delete_retention_ms: i64,
    /// Most bytes a batch may decompress to.
    pub max_batch_bytes: usize,
}

/// What cleaning does with one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Kept byte for byte.
    Keep,
    /// Replaced by the batch appended to the output.
    Rewrite,
    /// Gone.
    Remove,
}

/// The result of [`filter_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Filtered {
    pub outcome: Outcome,
    /// Records in the batch, and kept of them.
    pub records: u32,
    pub kept: u32,
    /// The delete horizon of the batch as kept, when it keeps a tombstone.
    pub delete_horizon: Option<i64>,
}

/// The delete horizon a batch carries (attribute bit 6: its base timestamp).
pub(crate) fn delete_horizon(b: &RecordBatch<'_>) -> Option<i64> {
    (b.attributes() & attributes::DELETE_HORIZON != 0).then(|| b.base_timestamp())
}

/// Filters one batch against the offset map (see the module docs for the rules). When the
/// outcome is [`Outcome::Rewrite`], the new batch has been appended to `out`; `scratch` is
/// reused across calls. `retain_header`: the batch is the last of a producer whose state
/// the partition keeps.
///
/// # Errors
/// A record that cannot be decoded, or a batch with an unknown codec.
pub(crate) fn filter_batch(
    b: &RecordBatch<'_>,
    map: &OffsetMap,
    ctx: &FilterContext,
    retain_header: bool,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Result<Filtered, RecordError> {
    let count = u32::try_from(b.records_count()).unwrap_or(0);
    if b.is_control() || b.is_transactional() || b.base_offset() >= map.end_offset() {
        return Ok(Filtered {
            outcome: Outcome::Keep,
            records: count,
            kept: count,
            delete_horizon: None,
        });
    }
    let horizon = delete_horizon(b);
    let records = b.records(ctx.max_batch_bytes)?;
    let mut spans: Vec<(usize, usize, i64)> = Vec::new();
    let (mut dropped, mut tombstones, mut max_ts) = (false, false, i64::MIN);
    let section = records.section();
    let mut it = records.iter();
    loop {
        let start = section.len() - it.unread().len();
        let Some(r) = it.next() else { break };
        let r = r?;
        let end = section.len() - it.unread().len();
        let offset = records.offset(&r);
        let keep = match r.key() {
            None => false,
            Some(key) => {
                let latest = map.get(key).is_none_or(|last| offset >= last);
                let live = r.value().is_some() || horizon.is_none_or(|h| ctx.now_ms < h);
                latest && live
            }
        };
        if keep {
            tombstones |= r.value().is_none();
            let ts = records.timestamp(&r);
            max_ts = max_ts.max(ts);
            spans.push((start, end, ts));
        } else {
            dropped = true;
        }
    }
    let kept = spans.len() as u32;
    let new_horizon = match horizon {
        Some(h) => Some(h),
        None if tombstones => Some(ctx.now_ms.saturating_add(ctx.delete_retention_ms)),
        None => None,
    };
    let kept_horizon = new_horizon.filter(|_| tombstones);
    if !dropped && new_horizon == horizon {
        return Ok(Filtered {
            outcome: Outcome::Keep,
            records: count,
            kept,
            delete_horizon: kept_horizon,
        });
    }
    if spans.is_empty() {
        if !retain_header {
            return Ok(Filtered {
                outcome: Outcome::Remove,
                records: count,
                kept,
                delete_horizon: None,
            });
        }
        write_empty_batch(b, out);
        return Ok(Filtered {
            outcome: Outcome::Rewrite,
            records: count,
            kept,
            delete_horizon: None,
        });
    }
    let base_ts = new_horizon.unwrap_or(b.base_timestamp());
    scratch.clear();
    for &(start, end, ts) in &spans {
        let raw = &section[start..end];
        if base_ts == b.base_timestamp() {
            scratch.extend_from_slice(raw);
        } else {
            rebase_record(raw, ts.wrapping_sub(base_ts), scratch);
        }
    }
    let codec = b.compression()?;
    let head = out.len();
    out.extend_from_slice(&b.as_bytes()[..batch::HEADER_LEN]);
    match codec {
        Compression::None => out.extend_from_slice(scratch),
        codec => compression::compress_into(codec, scratch, out),
    }
    let mut attrs = b.attributes();
    if new_horizon.is_some() {
        attrs |= attributes::DELETE_HORIZON;
    }
    let max_ts = if b.is_log_append_time() { b.max_timestamp() } else { max_ts };
    let new = &mut out[head..];
    let length = (new.len() - batch::LOG_OVERHEAD) as i32;
    new[8..12].copy_from_slice(&length.to_be_bytes());
    new[21..23].copy_from_slice(&attrs.to_be_bytes());
    new[27..35].copy_from_slice(&base_ts.to_be_bytes());
    new[35..43].copy_from_slice(&max_ts.to_be_bytes());
    new[57..61].copy_from_slice(&(kept as i32).to_be_bytes());
    batch::update_crc(new);
    Ok(Filtered { outcome: Outcome::Rewrite, records: count, kept, delete_horizon: kept_horizon })
}

/// A batch header with no records that keeps `b`'s offsets, timestamps and producer
/// fields (Kafka's `writeEmptyHeader`): uncompressed, with no delete horizon.
pub(crate) fn write_empty_batch(b: &RecordBatch<'_>, out: &mut Vec<u8>) {
    let head = out.len();
    out.extend_from_slice(&b.as_bytes()[..batch::HEADER_LEN]);
    let attrs = b.attributes() & !(attributes::COMPRESSION_MASK | attributes::DELETE_HORIZON);
    let new = &mut out[head..];
    new[8..12].copy_from_slice(&((batch::HEADER_LEN - batch::LOG_OVERHEAD) as i32).to_be_bytes());
    new[21..23].copy_from_slice(&attrs.to_be_bytes());
    new[27..35].copy_from_slice(&b.max_timestamp().to_be_bytes());
    new[57..61].copy_from_slice(&0i32.to_be_bytes());
    batch::update_crc(new);
}

/// A sealed segment as the grouping sees it: what Kafka's `groupSegmentsBySize` reads of
/// a `LogSegment`, taken before the pass writes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentSizes {
    /// The segment's base offset.
    pub base_offset: i64,
    /// The next segment's base offset: no record of this one is at or past it.
    pub end_offset: i64,
    /// Bytes of the `.log`.
    pub log_bytes: u64,
    /// Bytes of the `.index` entries.
    pub offset_index_bytes: u64,
    /// Bytes of the `.timeindex` entries.
    pub time_index_bytes: u64,
}

/// Groups consecutive segments into what one cleaned segment each replaces (Kafka's
/// `Cleaner.groupSegmentsBySize`): a group grows while its log bytes stay within
/// `max_log_bytes` (`segment.bytes`), its offset index bytes and its time index bytes each
/// within `max_index_bytes` (`segment.index.bytes`), and the offsets it may hold stay
/// within an `i32` of its base (index entries store offsets relative to it). An empty
/// segment adds no offsets, so it joins whatever its offsets are. Returns the groups as
/// ranges of `segments`, in order, covering all of them.
pub(crate) fn group_segments_by_size(
    segments: &[SegmentSizes],
    max_log_bytes: u64,
    max_index_bytes: u64,
) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < segments.len() {
        let first = &segments[start];
        let (mut log, mut index, mut time) =
            (first.log_bytes, first.offset_index_bytes, first.time_index_bytes);
        let mut end = start + 1;
        while let Some(next) = segments.get(end) {
            let fits = log + next.log_bytes <= max_log_bytes
                && index + next.offset_index_bytes <= max_index_bytes
                && time + next.time_index_bytes <= max_index_bytes
                && (next.log_bytes == 0
                    || next.end_offset - 1 - first.base_offset <= i64::from(i32::MAX));
            if !fits {
                break;
            }
            log += next.log_bytes;
            index += next.offset_index_bytes;
            time += next.time_index_bytes;
            end += 1;
        }
        groups.push(start..end);
        start = end;
    }
    groups
}

/// Re-encodes one record with a new timestamp delta; the fields after it are copied.
fn rebase_record(raw: &[u8], timestamp_delta: i64, out: &mut Vec<u8>) {
    // `raw` was decoded by the record iterator: these varints are known to be well formed.
    let (_, len_bytes) = varint::get_varint(raw).unwrap_or((0, 0));
    let body = &raw[len_bytes..];
    let (_, ts_bytes) = varint::get_varlong(&body[1..]).unwrap_or((0, 0));
    let rest = &body[1 + ts_bytes..];
    let new_len = 1 + varint::varlong_len(timestamp_delta) + rest.len();
    varint::put_varint(out, new_len as i32);
    out.push(body[0]);
    varint::put_varlong(out, timestamp_delta);
    out.extend_from_slice(rest);
}

#[cfg(test)]
pub(crate) mod tests;
