//! Produce: the write path.
//!
//! ```text
//! frame (one Bytes, read once from the socket)
//!  -> ProduceRequest decode: each partition's record set is a Bytes slice of the frame
//!     (no copy, nothing decompressed)
//!  -> per partition: ValidRecords::new: length, magic 2, CRC-32C, counts (one pass, no copy)
//!  -> topic checks: max.message.bytes per batch, no control or transactional batches
//!  -> Partition::append on a blocking thread: one pwritev into the segment file (the
//!     kernel's copy into the page cache), base offsets patched in 16-byte heads on the
//!     way, log end offset published, fetchers woken
//!  -> acks 0: no response; acks 1/-1: the response (in durable mode after the sync)
//! ```
//!
//! Copy budget: one copy of the record bytes, frame -> page cache (socket buffer -> frame
//! is the read itself). LogAppendTime topics add one copy: the broker rewrites CRC-covered fields and
//! does so in a private buffer before the append.

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::record::batch;

use crate::broker::Broker;
use crate::config::TimestampType;
use crate::error::{batch_error_code, storage_error_code};
use crate::storage::{now_ms, StorageError, ValidRecords};

/// Lowest Produce version served: v0–v2 carry message formats v0/v1.
const MIN_SERVED_VERSION: i16 = 3;

/// Answers a Produce request; `None` for acks=0 (Kafka sends no response then).
pub async fn handle(
    broker: &Broker,
    request: ProduceRequest,
    version: i16,
) -> Option<ProduceResponse> {
    let acks = request.acks;
    let mut response = ProduceResponse::default();
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let found = broker.topics.get(&name);
        let config = found.as_ref().map(|t| broker.topics.effective_config(t));
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let mut p = PartitionProduceResponse::default();
            p.index = data.index;
            let outcome = if version < MIN_SERVED_VERSION {
                Err((ErrorCode::UNSUPPORTED_VERSION, None))
            } else if !matches!(acks, -1..=1) {
                Err((ErrorCode::INVALID_REQUIRED_ACKS, None))
            } else if crate::topics::is_internal(&name) {
                // Kafka refuses client writes to internal topics the same way.
                Err((ErrorCode::INVALID_TOPIC_EXCEPTION, Some(format!("{name} is internal"))))
            } else {
                match (&found, &config) {
                    (Some(t), Some(cfg)) => match t.partition(data.index) {
                        Some(partition) => {
                            append(
                                broker,
                                partition,
                                data.records,
                                cfg.max_message_bytes,
                                cfg.timestamp_type,
                            )
                            .await
                        }
                        None => Err((ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, None)),
                    },
                    _ => Err((ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, None)),
                }
            };
            match outcome {
                Ok(done) => {
                    p.base_offset = done.base_offset;
                    if version >= 2 {
                        p.log_append_time_ms = done.log_append_time;
                    }
                    if version >= 5 {
                        p.log_start_offset = done.log_start_offset;
                    }
                }
                Err((code, message)) => {
                    p.error_code = code.code();
                    p.base_offset = -1;
                    if version >= 8 {
                        p.error_message = message.map(StrBytes::from_string);
                    }
                }
            }
            partitions.push(p);
        }
        let mut t = TopicProduceResponse::default();
        t.name = topic.name;
        t.partition_responses = partitions;
        response.responses.push(t);
    }
    (acks != 0).then_some(response)
}

struct Appended {
    base_offset: i64,
    log_append_time: i64,
    log_start_offset: i64,
}

async fn append(
    broker: &Broker,
    partition: &crate::partition::Partition,
    records: Option<Bytes>,
    max_message_bytes: i32,
    timestamp_type: TimestampType,
) -> Result<Appended, (ErrorCode, Option<String>)> {
    let records = records.ok_or((ErrorCode::CORRUPT_MESSAGE, Some("null record set".into())))?;
    let size = records.len() as u64;
    let (valid, log_append_time) = match timestamp_type {
        TimestampType::CreateTime => (validate(records)?, -1),
        TimestampType::LogAppendTime => {
            // Checked before rewriting: the rewrite recomputes CRCs, which would hide
            // corruption that arrived with the request.
            validate(records.clone())?;
            let now = now_ms();
            let mut owned = records.to_vec();
            let mut pos = 0;
            while pos < owned.len() {
                let len = batch::total_size(&owned[pos..])
                    .ok()
                    .flatten()
                    .expect("invariant: validated above");
                batch::set_log_append_time(&mut owned[pos..pos + len], now);
                pos += len;
            }
            (validate(Bytes::from(owned))?, now)
        }
    };
    for b in valid.batches() {
        if b.size() > max_message_bytes.max(0) as usize {
            return Err((
                ErrorCode::MESSAGE_TOO_LARGE,
                Some(format!(
                    "batch of {} bytes exceeds max.message.bytes {max_message_bytes}",
                    b.size()
                )),
            ));
        }
        if b.is_control() || b.is_transactional() {
            return Err((
                ErrorCode::INVALID_RECORD,
                Some("transactional and control batches are not supported".into()),
            ));
        }
        if b.records_count() != b.last_offset_delta() + 1 || b.records_count() == 0 {
            return Err((
                ErrorCode::INVALID_RECORD,
                Some(format!(
                    "batch declares {} records but last offset delta {}",
                    b.records_count(),
                    b.last_offset_delta()
                )),
            ));
        }
    }
    if size > partition.log().config().segment_bytes {
        return Err((ErrorCode::RECORD_LIST_TOO_LARGE, None));
    }
    match partition.append(valid).await {
        Ok(info) => {
            broker.metrics.produced_bytes.fetch_add(size, std::sync::atomic::Ordering::Relaxed);
            Ok(Appended {
                base_offset: info.base_offset,
                log_append_time,
                log_start_offset: info.log_start_offset,
            })
        }
        Err(e) => {
            tracing::warn!(topic = partition.topic(), partition = partition.index(), error = %e, "append failed");
            Err((storage_error_code(&e), Some(e.to_string())))
        }
    }
}

fn validate(records: Bytes) -> Result<ValidRecords<Bytes>, (ErrorCode, Option<String>)> {
    ValidRecords::new(records).map_err(|e| match &e {
        StorageError::InvalidBatch { source, .. } => {
            (batch_error_code(source), Some(e.to_string()))
        }
        other => (storage_error_code(other), Some(other.to_string())),
    })
}
