//! ListOffsets: earliest (-2, and -4 "earliest local"), latest (-1, and -5 "latest
//! tiered": the high watermark, that is the last offset + 1), max timestamp (-3, KIP-734),
//! and by timestamp: the first record whose timestamp is at or after the target.
//!
//! v0 answers differently, as Kafka 3.9 does (`UnifiedLog.legacyFetchOffsetsBefore`): a
//! list, `old_style_offsets`, of up to `max_num_offsets` offsets, newest first, taken
//! from the segments' base offsets and the log end offset. Each segment is dated by its
//! file's modification time and the log end offset by the time of the request (when the
//! last segment holds data); a target timestamp picks the newest of these dated at or
//! before it and the list continues from there to older ones. Latest (-1) starts at the
//! log end offset, earliest (-2, -4) is the log start offset alone. A negative
//! `max_num_offsets` fails as in Kafka (UNKNOWN_SERVER_ERROR, its NegativeArraySize).
//!
//! By timestamp, the log finds the first batch whose max timestamp reaches the target,
//! then this handler reads that one batch (decompressing it if needed) to find the exact
//! record, as Kafka does. Runs on a blocking thread for that reason.
//!
//! The work is bounded by the request, not by what the log holds:
//! - A partition named twice in one request gets INVALID_REQUEST at each place, as from
//!   Kafka, so no batch is read twice for one request. v0 too, where Kafka answers each:
//!   otherwise one request could list a partition of many segments 2^18 times, a `stat`
//!   per segment each time.
//! - One batch is decompressed into at most [`DECOMPRESS_LIMIT`] bytes, and one request
//!   reads and decompresses at most [`DECOMPRESS_BUDGET`] bytes in all (a batch's bytes on
//!   disk count as well as what they inflate to). Past either, the answer is
//!   the batch's base offset and max timestamp: at or before the exact record, so a
//!   consumer that seeks there reads a few records early and loses none. (A 64 KB gzip
//!   batch of zeros inflates to 64 MiB; without the budget a request naming such
//!   partitions kept a blocking thread busy for as long as it liked.)

use std::collections::{HashMap, HashSet};

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::record::{Compression, RecordBatch};

use crate::api::fetch::READ_COMMITTED;
use crate::broker::Broker;
use crate::error::Refusal;
use crate::partition::Partition;
use crate::storage::{SegmentTime, TimestampOffset};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// Largest decompressed size of one batch read to find a record by time: a batch of
/// `max.message.bytes` (1 MiB) compressed tenfold fits, with room to spare.
const DECOMPRESS_LIMIT: usize = 32 << 20;

/// Most bytes one request reads and decompresses in all.
const DECOMPRESS_BUDGET: usize = 256 << 20;

/// Answers ListOffsets.
pub fn handle(broker: &Broker, request: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    answer(broker, request, version, DECOMPRESS_BUDGET)
}

/// Answers ListOffsets decompressing at most `budget` bytes.
fn answer(
    broker: &Broker,
    request: ListOffsetsRequest,
    version: i16,
    mut budget: usize,
) -> ListOffsetsResponse {
    let duplicates = Duplicates::of(&request);
    let committed = version >= 2 && request.isolation_level == READ_COMMITTED;
    let mut response = ListOffsetsResponse::default();
    for t in request.topics {
        let topic = broker.topics.get(t.name.0.as_str());
        let mut out = ListOffsetsTopicResponse::default();
        for p in t.partitions {
            let mut r = ListOffsetsPartitionResponse::default();
            r.partition_index = p.partition_index;
            if duplicates.contains(&t.name.0, p.partition_index) {
                r.error_code = ErrorCode::INVALID_REQUEST.code();
                out.partitions.push(r);
                continue;
            }
            match topic.as_ref().and_then(|t| t.partition(p.partition_index)) {
                None => r.error_code = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code(),
                Some(partition) if version == 0 => {
                    let found = partition.log().map_err(Refusal::from).and_then(|log| {
                        offsets_before(
                            &log.segment_times(),
                            log.log_end_offset(),
                            now_ms(),
                            p.timestamp,
                            p.max_num_offsets,
                        )
                    });
                    match found {
                        Ok(offsets) => r.old_style_offsets = offsets,
                        Err(refusal) => r.error_code = refusal.code.code(),
                    }
                }
                Some(partition) => {
                    match lookup(partition, p.timestamp, version, committed, &mut budget) {
                        Ok((offset, timestamp)) => {
                            r.offset = offset;
                            r.timestamp = timestamp;
                            if version >= 4 {
                                r.leader_epoch = 0;
                            }
                        }
                        Err(refusal) => r.error_code = refusal.code.code(),
                    }
                }
            }
            out.partitions.push(r);
        }
        out.name = t.name;
        response.topics.push(out);
    }
    response
}

/// Wall-clock time in ms since the epoch, what segment files' modification times count in.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The v0 answer: up to `max` offsets, newest first, from `segments` (oldest first) and the
/// log end offset `end` dated `now` (see the module docs).
fn offsets_before(
    segments: &[SegmentTime],
    end: i64,
    now: i64,
    target: i64,
    max: i32,
) -> Result<Vec<i64>, Refusal> {
    let Ok(max) = usize::try_from(max) else {
        return Err(Refusal::code(ErrorCode::UNKNOWN_SERVER_ERROR));
    };
    let mut dated: Vec<(i64, i64)> =
        segments.iter().map(|s| (s.offset, s.last_modified_ms)).collect();
    if segments.last().is_some_and(|s| s.has_data) {
        dated.push((end, now));
    }
    // How many entries, from the oldest, the answer may take (it takes them newest first).
    let upto = match target {
        LATEST => dated.len(),
        EARLIEST | EARLIEST_LOCAL => dated.len().min(1),
        t => dated.iter().rposition(|&(_, at)| at <= t).map_or(0, |i| i + 1),
    };
    Ok(dated[..upto].iter().rev().take(max).map(|&(offset, _)| offset).collect())
}

/// The partitions a request names more than once (under one topic entry or several).
/// Topics are numbered by name (names are shared, not copied) and the (topic, partition)
/// pairs sorted: 8 bytes per entry and O(n log n).
#[derive(Debug, Default)]
struct Duplicates {
    topic_index: HashMap<StrBytes, u32>,
    pairs: HashSet<(u32, i32)>,
}

impl Duplicates {
    fn of(request: &ListOffsetsRequest) -> Duplicates {
        let mut d = Duplicates::default();
        let mut pairs = Vec::new();
        for t in &request.topics {
            let next = d.topic_index.len() as u32;
            let i = *d.topic_index.entry(t.name.0.clone()).or_insert(next);
            pairs.extend(t.partitions.iter().map(|p| (i, p.partition_index)));
        }
        pairs.sort_unstable();
        pairs.dedup_by(|a, b| {
            if a == b {
                d.pairs.insert(*a);
            }
            a == b
        });
        d
    }

    fn contains(&self, topic: &StrBytes, partition: i32) -> bool {
        !self.pairs.is_empty()
            && self.topic_index.get(topic).is_some_and(|&i| self.pairs.contains(&(i, partition)))
    }
}

/// (offset, timestamp) for one partition; offset -1 when no record qualifies. For
/// read_committed (`committed`), "latest" is the last stable offset and a time lookup
/// finds nothing at or past it, as in Kafka.
fn lookup(
    partition: &Partition,
    target: i64,
    version: i16,
    committed: bool,
    budget: &mut usize,
) -> Result<(i64, i64), Refusal> {
    let log = partition.log()?;
    let fetchable = if committed { log.last_stable_offset() } else { log.high_watermark() };
    let found = lookup_any(partition, target, version, budget)?;
    Ok(match target {
        LATEST | LATEST_TIERED => (fetchable, -1),
        EARLIEST | EARLIEST_LOCAL => found,
        _ if found.0 >= fetchable => (-1, -1),
        _ => found,
    })
}

fn lookup_any(
    partition: &Partition,
    target: i64,
    version: i16,
    budget: &mut usize,
) -> Result<(i64, i64), Refusal> {
    let log = partition.log()?;
    Ok(match target {
        LATEST | LATEST_TIERED => (log.high_watermark(), -1),
        EARLIEST | EARLIEST_LOCAL => (log.log_start_offset(), -1),
        MAX_TIMESTAMP if version >= 7 => match log.max_timestamp()? {
            Some(hit) => exact(&hit, hit.timestamp, true, budget),
            None => (-1, -1),
        },
        t if t < 0 => return Err(Refusal::code(ErrorCode::INVALID_REQUEST)),
        t => match log.lookup_by_timestamp(t)? {
            Some(hit) => exact(&hit, t, false, budget),
            None => (-1, -1),
        },
    })
}

/// The exact record in the batch: the first with timestamp >= `target` (or, for max
/// timestamp, the first that has it). Falls back to the batch's base offset when the
/// batch cannot be read or would take more than the request's decompression `budget`.
fn exact(hit: &TimestampOffset, target: i64, max: bool, budget: &mut usize) -> (i64, i64) {
    let fallback = (hit.offset, hit.timestamp);
    // Every byte read counts, compressed or not: a batch is read in full to find the record.
    let read = usize::try_from(hit.batch.len).unwrap_or(usize::MAX);
    if read > *budget {
        return fallback;
    }
    *budget -= read;
    let Ok(bytes) = hit.batch.read_to_vec() else { return fallback };
    let Ok(batch) = RecordBatch::parse(&bytes) else { return fallback };
    if batch.is_log_append_time() {
        return (batch.base_offset().max(hit.offset), batch.max_timestamp());
    }
    let limit = DECOMPRESS_LIMIT.min(*budget);
    let compressed = !matches!(batch.compression(), Ok(Compression::None));
    if limit == 0 && compressed {
        return fallback;
    }
    let records = batch.records(limit);
    if compressed {
        // A failed decompression spent up to the limit too.
        *budget -= records.as_ref().map_or(limit, |r| r.section().len().min(limit));
    }
    let Ok(records) = records else { return fallback };
    for record in &records {
        let Ok(record) = record else { return fallback };
        let (offset, timestamp) = (records.offset(&record), records.timestamp(&record));
        let found = if max { timestamp == target } else { timestamp >= target };
        if found && offset >= hit.offset {
            return (offset, timestamp);
        }
    }
    fallback
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::TopicName;
    use sluice_protocol::record::BatchBuilder;

    use super::*;
    use crate::config::Config;

    const T0: i64 = 1_700_000_000_000;

    /// A broker with topic `t` of two partitions; partition 0 holds three gzip batches of
    /// 100 records of 1 KiB of zeros (about 100 KiB each inflated), timestamps T0 + offset.
    fn broker() -> (tempfile::TempDir, Arc<Broker>) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
        let broker = Broker::open(config).unwrap().0;
        let topic = broker.topics.create("t", 2, 1, BTreeMap::new(), false).unwrap();
        for batch in 0..3 {
            let mut b = BatchBuilder::new(Compression::Gzip);
            for i in 0..100 {
                b.append(T0 + batch * 100 + i, None, Some(&[0u8; 1024]), &[]).unwrap();
            }
            topic.partitions[0].append_blocking(&b.build().unwrap()).unwrap();
        }
        (dir, broker)
    }

    fn request(entries: &[(&str, i32, i64)]) -> ListOffsetsRequest {
        let mut r = ListOffsetsRequest::default();
        for &(topic, partition, timestamp) in entries {
            let mut t = ListOffsetsTopic::default();
            t.name = TopicName(StrBytes::from_string(topic.to_owned()));
            let mut p = ListOffsetsPartition::default();
            p.partition_index = partition;
            p.timestamp = timestamp;
            t.partitions.push(p);
            r.topics.push(t);
        }
        r
    }

    fn results(r: &ListOffsetsResponse) -> Vec<(i16, i64)> {
        r.topics.iter().flat_map(|t| &t.partitions).map(|p| (p.error_code, p.offset)).collect()
    }

    #[test]
    fn by_timestamp_finds_the_exact_record_inside_a_compressed_batch() {
        let (_dir, broker) = broker();
        let r = handle(&broker, request(&[("t", 0, T0 + 150), ("t", 1, T0), ("t", 0, LATEST)]), 7);
        let invalid = ErrorCode::INVALID_REQUEST.code();
        // Partition 0 twice: both places refused, as Kafka does; partition 1 is empty.
        assert_eq!(results(&r), [(invalid, -1), (0, -1), (invalid, -1)]);
        let r = handle(&broker, request(&[("t", 0, T0 + 150), ("t", 1, LATEST)]), 7);
        assert_eq!(results(&r), [(0, 150), (0, 0)]);
        let r = handle(&broker, request(&[("t", 0, MAX_TIMESTAMP)]), 7);
        assert_eq!(results(&r), [(0, 299)]);
    }

    #[test]
    fn v0_lists_segment_starts_and_the_log_end_newest_first() {
        let seg =
            |offset, last_modified_ms| SegmentTime { offset, last_modified_ms, has_data: true };
        let segments = [seg(0, 100), seg(10, 200), seg(20, 300)];
        let list = |target, max| offsets_before(&segments, 25, 400, target, max);
        assert_eq!(list(LATEST, 1), Ok(vec![25]));
        assert_eq!(list(LATEST, 10), Ok(vec![25, 20, 10, 0]));
        assert_eq!(list(LATEST, 2), Ok(vec![25, 20]));
        assert_eq!(list(EARLIEST, 10), Ok(vec![0]));
        assert_eq!(list(EARLIEST, 0), Ok(vec![]));
        // By time: the newest entry dated at or before the target, then older ones.
        assert_eq!(list(250, 10), Ok(vec![10, 0]));
        assert_eq!(list(300, 1), Ok(vec![20]));
        assert_eq!(list(99, 10), Ok(vec![]));
        assert_eq!(list(400, 10), Ok(vec![25, 20, 10, 0]));
        assert_eq!(list(LATEST, -1), Err(Refusal::code(ErrorCode::UNKNOWN_SERVER_ERROR)));
        // An empty active segment adds no log-end entry: its base offset is the log end.
        let segments =
            [seg(0, 100), SegmentTime { offset: 7, last_modified_ms: 200, has_data: false }];
        assert_eq!(offsets_before(&segments, 7, 400, LATEST, 10), Ok(vec![7, 0]));
    }

    #[test]
    fn v0_answers_encode_and_carry_the_list() {
        let (_dir, broker) = broker();
        let mut r = request(&[("t", 0, LATEST), ("t", 1, EARLIEST), ("u", 0, LATEST)]);
        for t in &mut r.topics {
            t.partitions[0].max_num_offsets = 5;
        }
        let response = handle(&broker, r, 0);
        let lists: Vec<(i16, Vec<i64>)> = response
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| (p.error_code, p.old_style_offsets.clone()))
            .collect();
        assert_eq!(lists, [(0, vec![300, 0]), (0, vec![0]), (3, vec![])]);
        let mut buf = bytes::BytesMut::new();
        sluice_protocol::messages::Response::ListOffsets(response).encode(0, &mut buf).unwrap();
    }

    #[test]
    fn past_the_decompression_budget_the_answer_is_the_batch_start_never_later() {
        let (_dir, broker) = broker();
        // About one inflated batch of budget: the first lookup is exact, the next ones
        // answer their batch's base offset.
        let entries = [("t", 0, T0 + 150)];
        assert_eq!(results(&answer(&broker, request(&entries), 7, 150 << 10)), [(0, 150)]);
        let mut r = request(&entries);
        r.topics.push(request(&[("u", 0, T0)]).topics.remove(0));
        assert_eq!(results(&answer(&broker, r, 7, 0)), [(0, 100), (3, -1)]);
        let r = request(&[("t", 0, MAX_TIMESTAMP)]);
        assert_eq!(results(&answer(&broker, r, 7, 10)), [(0, 200)]);
    }
}
