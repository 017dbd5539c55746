//! DeleteRecords: moves a partition's log start offset forward (KIP-107).
//!
//! Records below the new start offset become unreadable at once (Fetch and ListOffsets
//! earliest see the new start); whole segments below it are deleted from disk, the rest
//! waits for its segment to go. Offset -1 means the high watermark: delete everything.
//! An offset below the current start changes nothing and succeeds; one past the high
//! watermark, or another negative one, is OFFSET_OUT_OF_RANGE. The result's
//! `low_watermark` is the log start offset afterwards, or -1 with an error, as in Kafka.
//! An internal topic's records (every group's committed offsets) cannot be deleted:
//! INVALID_TOPIC_EXCEPTION, as in Kafka.
//!
//! The new start offset is made durable before the answer (the log writes its checkpoint),
//! so this runs on a blocking thread.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;
use crate::error::storage_error_code;
use crate::partition::Partition;
use crate::topics::is_internal;

/// The offset that means "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

/// Answers DeleteRecords. Runs on a blocking thread: it writes files.
pub fn handle(
    broker: &Broker,
    request: DeleteRecordsRequest,
    _version: i16,
) -> DeleteRecordsResponse {
    let mut response = DeleteRecordsResponse::default();
    for t in request.topics {
        let topic = broker.topics.get(t.name.0.as_str());
        let mut out = DeleteRecordsTopicResult::default();
        out.name = t.name;
        for p in t.partitions {
            let mut r = DeleteRecordsPartitionResult::default();
            r.partition_index = p.partition_index;
            let outcome = match topic.as_ref().and_then(|t| t.partition(p.partition_index)) {
                None => Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
                // As Kafka: "cannot delete records of internal topic".
                Some(_) if is_internal(&out.name.0) => Err(ErrorCode::INVALID_TOPIC_EXCEPTION),
                Some(partition) => delete(partition, p.offset),
            };
            match outcome {
                Ok(low_watermark) => r.low_watermark = low_watermark,
                Err(code) => {
                    r.error_code = code.code();
                    r.low_watermark = -1;
                }
            }
            out.partitions.push(r);
        }
        response.topics.push(out);
    }
    response
}

/// Deletes below `offset`; returns the new log start offset.
fn delete(partition: &Partition, offset: i64) -> Result<i64, ErrorCode> {
    let log = partition.log();
    let offset = if offset == HIGH_WATERMARK { log.high_watermark() } else { offset };
    log.delete_records(offset).map_err(|e| {
        let code = storage_error_code(&e);
        if code != ErrorCode::OFFSET_OUT_OF_RANGE {
            tracing::warn!(partition = %log.dir().display(), error = %e, "delete records failed");
        }
        code
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use bytes::BytesMut;
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;
    use sluice_protocol::api_key::{support, ApiKey};
    use sluice_protocol::messages::Response;
    use sluice_protocol::record::{BatchBuilder, Compression};

    use super::*;
    use crate::config::Config;

    fn broker() -> (tempfile::TempDir, Arc<Broker>) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
        (dir, Broker::open(config).unwrap())
    }

    /// A topic of two partitions with `records` one-record batches in partition 0.
    fn topic_with_records(broker: &Broker, name: &str, records: usize) {
        let topic = broker.topics.create(name, 2, 1, BTreeMap::new(), false).unwrap();
        for i in 0..records {
            let mut b = BatchBuilder::new(Compression::None);
            b.append(1_700_000_000_000 + i as i64, None, Some(b"value"), &[]).unwrap();
            topic.partitions[0].append_blocking(&b.build().unwrap()).unwrap();
        }
    }

    fn request(topic: &str, partitions: &[(i32, i64)]) -> DeleteRecordsRequest {
        let mut t = DeleteRecordsTopic::default();
        t.name = TopicName(StrBytes::from_string(topic.to_owned()));
        t.partitions = partitions
            .iter()
            .map(|&(index, offset)| {
                let mut p = DeleteRecordsPartition::default();
                p.partition_index = index;
                p.offset = offset;
                p
            })
            .collect();
        let mut r = DeleteRecordsRequest::default();
        r.topics = vec![t];
        r
    }

    fn results(r: &DeleteRecordsResponse) -> Vec<(i16, i64)> {
        r.topics[0].partitions.iter().map(|p| (p.error_code, p.low_watermark)).collect()
    }

    #[test]
    fn the_log_start_offset_moves_forward() {
        let (_dir, broker) = broker();
        topic_with_records(&broker, "t", 10);
        let log = || Arc::clone(broker.topics.get("t").unwrap().partitions[0].log());
        let r = handle(&broker, request("t", &[(0, 4)]), 2);
        assert_eq!(results(&r), [(0, 4)]);
        assert_eq!(log().log_start_offset(), 4);
        let r = handle(&broker, request("t", &[(0, 2)]), 2);
        assert_eq!(results(&r), [(0, 4)], "an offset below the start changes nothing");
        let out_of_range = ErrorCode::OFFSET_OUT_OF_RANGE.code();
        let r = handle(&broker, request("t", &[(0, 11), (0, -2)]), 2);
        assert_eq!(results(&r), [(out_of_range, -1), (out_of_range, -1)]);
        let r = handle(&broker, request("t", &[(0, HIGH_WATERMARK), (1, HIGH_WATERMARK)]), 2);
        assert_eq!(results(&r), [(0, 10), (0, 0)]);
        assert_eq!(log().log_start_offset(), 10);
        assert!(log().read(9, 1024).is_err(), "deleted records are gone");
    }

    #[test]
    fn unknown_topics_and_partitions_are_reported() {
        let (_dir, broker) = broker();
        topic_with_records(&broker, "t", 1);
        let unknown = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code();
        assert_eq!(results(&handle(&broker, request("t", &[(2, 0)]), 0)), [(unknown, -1)]);
        assert_eq!(results(&handle(&broker, request("nope", &[(0, 0)]), 0)), [(unknown, -1)]);
    }

    #[test]
    fn responses_encode_at_every_advertised_version() {
        let (_dir, broker) = broker();
        topic_with_records(&broker, "t", 3);
        let s = support(ApiKey::DeleteRecords).unwrap();
        for version in s.advertised.min..=s.advertised.max {
            let req = request("t", &[(0, i64::from(version)), (5, 0)]);
            let response = Response::DeleteRecords(handle(&broker, req, version));
            response.encode(version, &mut BytesMut::new()).unwrap();
        }
    }
}
