//! ListOffsets: earliest (-2, and -4 "earliest local"), latest (-1, and -5 "latest
//! tiered": the high watermark, that is the last offset + 1), max timestamp (-3, KIP-734),
//! and by timestamp: the first record whose timestamp is at or after the target.
//!
//! By timestamp, the log finds the first batch whose max timestamp reaches the target,
//! then this handler reads that one batch (decompressing it if needed) to find the exact
//! record, as Kafka does. Runs on a blocking thread for that reason.
//!
//! The work is bounded by the request, not by what the log holds:
//! - A partition named twice in one request gets INVALID_REQUEST at each place, as from
//!   Kafka, so no batch is read twice for one request.
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

use crate::broker::Broker;
use crate::partition::Partition;
use crate::storage::TimestampOffset;

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
                Some(partition) => match lookup(partition, p.timestamp, version, &mut budget) {
                    Ok((offset, timestamp)) => {
                        r.offset = offset;
                        r.timestamp = timestamp;
                        if version >= 4 {
                            r.leader_epoch = 0;
                        }
                    }
                    Err(code) => r.error_code = code.code(),
                },
            }
            out.partitions.push(r);
        }
        out.name = t.name;
        response.topics.push(out);
    }
    response
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

/// (offset, timestamp) for one partition; offset -1 when no record qualifies.
fn lookup(
    partition: &Partition,
    target: i64,
    version: i16,
    budget: &mut usize,
) -> Result<(i64, i64), ErrorCode> {
    let log = partition.log();
    Ok(match target {
        LATEST | LATEST_TIERED => (log.high_watermark(), -1),
        EARLIEST | EARLIEST_LOCAL => (log.log_start_offset(), -1),
        MAX_TIMESTAMP if version >= 7 => match log.max_timestamp() {
            Some(hit) => exact(&hit, hit.timestamp, true, budget),
            None => (-1, -1),
        },
        t if t < 0 => return Err(ErrorCode::INVALID_REQUEST),
        t => match log.lookup_by_timestamp(t) {
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
        let broker = Broker::open(config).unwrap();
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
