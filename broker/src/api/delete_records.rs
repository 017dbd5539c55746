//! DeleteRecords: moves a partition's log start offset forward (KIP-107).
//!
//! Records below the new start offset become unreadable at once (Fetch and ListOffsets
//! earliest see the new start); whole segments below it are deleted from disk, the rest
//! waits for its segment to go. Offset -1 means the high watermark: delete everything.
//! An offset below the current start changes nothing and succeeds; one past the high
//! watermark, or another negative one, is OFFSET_OUT_OF_RANGE. The result's
//! `low_watermark` is the log start offset afterwards, or -1 with an error, as in Kafka.
//!
//! A partition named more than once is deleted once, to the last offset asked for it,
//! and answered once, under its topic's first entry, as Kafka answers.
//!
//! Internal topics are refused with INVALID_TOPIC_EXCEPTION, as Kafka refuses them: deleting
//! `__consumer_offsets` records would erase committed offsets at the next start.
//!
//! The new start offset is made durable before the answer (the log writes its checkpoint),
//! so this runs on a blocking thread.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;
use crate::error::{storage_error_code, topic_error_code, Refusal};
use crate::partition::Partition;
use crate::topics::{refuse_if_internal, ProtectedOperation};

/// The offset that means "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

/// Answers DeleteRecords. Runs on a blocking thread: it writes files.
pub fn handle(
    broker: &Broker,
    request: DeleteRecordsRequest,
    _version: i16,
) -> DeleteRecordsResponse {
    // Each partition once, under its topic's first entry, with the last offset asked for
    // it (Kafka reads the request into a map the same way): a partition named a million
    // times is one deletion and one checkpoint write, not a million.
    let mut response = DeleteRecordsResponse::default();
    let mut topics: HashMap<StrBytes, usize> = HashMap::new();
    let mut partitions: HashMap<(usize, i32), usize> = HashMap::new();
    let mut offsets: Vec<Vec<i64>> = Vec::new();
    for t in request.topics {
        let ti = *topics.entry(t.name.0.clone()).or_insert_with(|| {
            let mut out = DeleteRecordsTopicResult::default();
            out.name = t.name.clone();
            response.topics.push(out);
            offsets.push(Vec::new());
            offsets.len() - 1
        });
        for p in t.partitions {
            match partitions.entry((ti, p.partition_index)) {
                Entry::Occupied(e) => offsets[ti][*e.get()] = p.offset,
                Entry::Vacant(e) => {
                    e.insert(offsets[ti].len());
                    offsets[ti].push(p.offset);
                    let mut r = DeleteRecordsPartitionResult::default();
                    r.partition_index = p.partition_index;
                    response.topics[ti].partitions.push(r);
                }
            }
        }
    }
    for (out, offsets) in response.topics.iter_mut().zip(offsets) {
        let name = out.name.0.as_str();
        // The code alone, once per topic: the result has no message to copy per partition.
        let protected = refuse_if_internal(name, ProtectedOperation::DeleteRecords)
            .err()
            .map(|e| topic_error_code(&e));
        let topic = broker.topics.get(name);
        for (r, offset) in out.partitions.iter_mut().zip(offsets) {
            let partition = topic.as_ref().and_then(|t| t.partition(r.partition_index));
            let outcome = match (protected, partition) {
                (Some(code), _) => Err(Refusal::code(code)),
                (None, None) => Err(Refusal::code(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)),
                (None, Some(partition)) => delete(partition, offset),
            };
            match outcome {
                Ok(low_watermark) => r.low_watermark = low_watermark,
                Err(refusal) => {
                    r.error_code = refusal.code.code();
                    r.low_watermark = -1;
                }
            }
        }
    }
    response
}

/// Deletes below `offset`; returns the new log start offset.
fn delete(partition: &Partition, offset: i64) -> Result<i64, Refusal> {
    let log = partition.log()?;
    let offset = if offset == HIGH_WATERMARK { log.high_watermark() } else { offset };
    log.delete_records(offset).map_err(|e| {
        if storage_error_code(&e) != ErrorCode::OFFSET_OUT_OF_RANGE {
            tracing::warn!(partition = %log.dir().display(), error = %e, "delete records failed");
        }
        Refusal::from(e)
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
        (dir, Broker::open(config).unwrap().0)
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
        let log = || Arc::clone(broker.topics.get("t").unwrap().partitions[0].log().unwrap());
        let r = handle(&broker, request("t", &[(0, 4)]), 2);
        assert_eq!(results(&r), [(0, 4)]);
        assert_eq!(log().log_start_offset(), 4);
        let r = handle(&broker, request("t", &[(0, 2)]), 2);
        assert_eq!(results(&r), [(0, 4)], "an offset below the start changes nothing");
        let out_of_range = ErrorCode::OFFSET_OUT_OF_RANGE.code();
        for offset in [11, -2] {
            let r = handle(&broker, request("t", &[(0, offset)]), 2);
            assert_eq!(results(&r), [(out_of_range, -1)], "offset {offset}");
        }
        let r = handle(&broker, request("t", &[(0, HIGH_WATERMARK), (1, HIGH_WATERMARK)]), 2);
        assert_eq!(results(&r), [(0, 10), (0, 0)]);
        assert_eq!(log().log_start_offset(), 10);
        assert!(log().read(9, 1024).is_err(), "deleted records are gone");
    }

    #[test]
    fn a_partition_named_again_is_deleted_and_answered_once_to_its_last_offset() {
        let (_dir, broker) = broker();
        topic_with_records(&broker, "t", 10);
        let mut r = request("t", &[(0, 8), (1, 0), (0, 3)]);
        r.topics.push(request("t", &[(0, 5)]).topics.remove(0));
        r.topics.push(request("u", &[(0, 1)]).topics.remove(0));
        let r = handle(&broker, r, 2);
        assert_eq!(r.topics.len(), 2, "one entry per topic");
        assert_eq!(results(&r), [(0, 5), (0, 0)]);
        let unknown = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code();
        assert_eq!(r.topics[1].partitions[0].error_code, unknown);
        assert_eq!(
            broker.topics.get("t").unwrap().partitions[0].log().unwrap().log_start_offset(),
            5
        );
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
