//! ListOffsets: earliest (-2, and -4 "earliest local"), latest (-1, and -5 "latest
//! tiered": the high watermark, that is the last offset + 1), max timestamp (-3, KIP-734),
//! and by timestamp: the first record whose timestamp is at or after the target.
//!
//! By timestamp, the log finds the first batch whose max timestamp reaches the target,
//! then this handler reads that one batch (decompressing it if needed) to find the exact
//! record, as Kafka does. Runs on a blocking thread for that reason.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::record::RecordBatch;

use crate::broker::Broker;
use crate::partition::Partition;
use crate::storage::TimestampOffset;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// Largest batch the handler decompresses to find a record by time.
const DECOMPRESS_LIMIT: usize = 64 << 20;

/// Answers ListOffsets.
pub fn handle(broker: &Broker, request: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let mut response = ListOffsetsResponse::default();
    for t in request.topics {
        let topic = broker.topics.get(t.name.0.as_str());
        let mut out = ListOffsetsTopicResponse::default();
        out.name = t.name;
        for p in t.partitions {
            let mut r = ListOffsetsPartitionResponse::default();
            r.partition_index = p.partition_index;
            match topic.as_ref().and_then(|t| t.partition(p.partition_index)) {
                None => r.error_code = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code(),
                Some(partition) => match lookup(partition, p.timestamp, version) {
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
        response.topics.push(out);
    }
    response
}

/// (offset, timestamp) for one partition; offset -1 when no record qualifies.
fn lookup(partition: &Partition, target: i64, version: i16) -> Result<(i64, i64), ErrorCode> {
    let log = partition.log();
    Ok(match target {
        LATEST | LATEST_TIERED => (log.high_watermark(), -1),
        EARLIEST | EARLIEST_LOCAL => (log.log_start_offset(), -1),
        MAX_TIMESTAMP if version >= 7 => match log.max_timestamp() {
            Some(hit) => exact(&hit, hit.timestamp, true),
            None => (-1, -1),
        },
        t if t < 0 => return Err(ErrorCode::INVALID_REQUEST),
        t => match log.lookup_by_timestamp(t) {
            Some(hit) => exact(&hit, t, false),
            None => (-1, -1),
        },
    })
}

/// The exact record in the batch: the first with timestamp >= `target` (or, for max
/// timestamp, the first that has it). Falls back to the batch's base offset when the
/// batch cannot be read.
fn exact(hit: &TimestampOffset, target: i64, max: bool) -> (i64, i64) {
    let fallback = (hit.offset, hit.timestamp);
    let Ok(bytes) = hit.batch.read_to_vec() else { return fallback };
    let Ok(batch) = RecordBatch::parse(&bytes) else { return fallback };
    if batch.is_log_append_time() {
        return (batch.base_offset().max(hit.offset), batch.max_timestamp());
    }
    let Ok(records) = batch.records(DECOMPRESS_LIMIT) else { return fallback };
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
