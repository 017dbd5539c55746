//! Produce: the write path.
//!
//! ```text
//! frame (one Bytes, read once from the socket)
//!  -> ProduceRequest decode: each partition's record set is a Bytes slice of the frame
//!     (no copy, nothing decompressed)
//!  -> per partition: ValidRecords::from_producer: length, magic 2, CRC-32C, counts, then
//!     per batch max.message.bytes, no control batch, transactional ones idempotent
//!     (one pass, no copy)
//!  -> topic checks:
//!     CreateTime timestamps within message.timestamp.before/after.max.ms (the header's
//!     max timestamp; records read only when the age is bounded or a batch is too late);
//!     on a compacted topic only, every record is read (decompressed when the batch is)
//!     to refuse one without a key, as Kafka's LogValidator does
//!  -> Partition::append (inline up to 1 MiB, else on a blocking thread): one pwritev
//!     into the segment file (the kernel's copy into the page cache), base offsets patched
//!     in 16-byte heads on the way, log end offset published, fetchers woken
//!  -> [`Started::finish`]: in durable mode, wait for the partition's group commit; the
//!     connection meanwhile reads and appends the next request
//!  -> acks 0: no response; acks 1/-1: the response
//! ```
//!
//! The append runs in request order (the connection awaits [`start`] before it reads the
//! next frame), so pipelined requests to one partition land in the order they were sent
//! and idempotent sequence numbers stay in order; only the wait for the sync overlaps.
//!
//! Copy budget: one copy of the record bytes, frame -> page cache (socket buffer -> frame
//! is the read itself). LogAppendTime topics add one copy: the broker rewrites CRC-covered fields and
//! does so in a private buffer before the append.
//!
//! Allocation budget: per request, the list of the topics found; per topic, its list of
//! partition responses; per record set, the batch list of its [`ValidRecords`] and, in the
//! segment's append, the patched heads and the pwritev slices; a transactional set adds its
//! verifier (an `Arc` and the topic's name), a LogAppendTime topic the private copy, a
//! refused set its message. Nothing per record, except on a compacted topic, whose keys
//! are read (decompression bounded by `MAX_CHECKED_RECORDS_BYTES`). Topic configs are not
//! parsed per request: each topic holds its effective config.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::api_key::{support, ApiKey};
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::record::batch;

use crate::broker::Broker;
use crate::config::TimestampType;
use crate::error::{storage_error_code, Refusal};
use crate::partition::Partition;
use crate::storage::{now_ms, StorageError, TxnVerifier, ValidRecords};
use crate::topic_config::EffectiveConfig;
use crate::topics::Topic;

mod timestamps;

/// A Produce request whose record sets are appended, and the syncs its acknowledgement
/// waits for.
#[derive(Debug)]
pub struct Started {
    acks: i16,
    version: i16,
    response: ProduceResponse,
    /// (topic, partition) position in the response, the partition, the offset to sync.
    syncs: Vec<(usize, usize, Arc<Partition>, i64)>,
}

impl Started {
    /// Whether the response is final without waiting for a sync.
    pub fn is_done(&self) -> bool {
        self.syncs.is_empty()
    }

    /// Waits for the syncs; what the client gets.
    pub async fn finish(mut self) -> Produced {
        for (t, p, partition, offset) in std::mem::take(&mut self.syncs) {
            if let Err(e) = partition.sync_to(offset).await {
                let r = &mut self.response.responses[t].partition_responses[p];
                r.error_code = storage_error_code(&e).code();
                r.base_offset = -1;
                r.log_append_time_ms = -1;
                r.log_start_offset = -1;
                if self.version >= 8 {
                    r.error_message = Some(StrBytes::from_string(e.to_string()));
                }
            }
        }
        if self.acks != 0 {
            return Produced::Response(self.response);
        }
        let failed = self.response.responses.iter().find_map(|t| {
            let p = t.partition_responses.iter().find(|p| p.error_code != 0)?;
            Some(format!(
                "acks=0 produce to {}-{} failed with {}",
                t.name.0,
                p.index,
                ErrorCode::from_code(p.error_code)
            ))
        });
        failed.map_or(Produced::NoResponse, Produced::Failed)
    }
}

/// What a Produce request comes to.
#[derive(Debug)]
pub enum Produced {
    /// acks 1 or -1: the response.
    Response(ProduceResponse),
    /// acks=0 and every record set appended: Kafka sends nothing.
    NoResponse,
    /// acks=0 and a record set refused: Kafka closes the connection, the only way such a
    /// client learns of it (it then refreshes its metadata and reconnects).
    Failed(String),
}

/// Validates and appends every record set of a request, in order; the acknowledgement
/// may still wait for syncs ([`Started::finish`]).
pub async fn start(broker: &Broker, request: ProduceRequest, version: i16) -> Started {
    let acks = request.acks;
    let mut response = ProduceResponse::default();
    let mut syncs = Vec::new();
    // Off the async thread, once for the request: a request to thousands of partitions
    // unused since the start would otherwise open them, and name each in the recovery
    // journal with a sync of its own, one by one here.
    let found: Vec<_> = request
        .topic_data
        .iter()
        .filter_map(|t| Some((broker.topics.get(t.name.0.as_str())?, &t.partition_data)))
        .collect();
    let named =
        found.iter().flat_map(|(topic, data)| data.iter().filter_map(|d| topic.partition(d.index)));
    crate::partition::Partition::prepare_writes(named).await;
    for topic in request.topic_data {
        let found = broker.topics.get(topic.name.0.as_str());
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let index = data.index;
            let outcome = match refused_before_append(version, acks, topic.name.0.as_str()) {
                Some(refused) => Err(refused),
                None => produce_partition(broker, found.as_deref(), index, data.records).await,
            };
            if let Ok(Appended { sync: Some((partition, offset)), .. }) = &outcome {
                let (t, p) = (response.responses.len(), partitions.len());
                syncs.push((t, p, Arc::clone(partition), *offset));
            }
            partitions.push(partition_response(index, outcome, version));
        }
        let mut t = TopicProduceResponse::default();
        t.name = topic.name;
        t.partition_responses = partitions;
        response.responses.push(t);
    }
    Started { acks, version, response, syncs }
}

/// What refuses every record set of a request, or of a topic, before any is looked at.
fn refused_before_append(version: i16, acks: i16, topic: &str) -> Option<Refused> {
    let served = support(ApiKey::Produce).is_some_and(|s| s.is_served(version));
    if !served {
        Some(Refusal::code(ErrorCode::UNSUPPORTED_VERSION).into())
    } else if !matches!(acks, -1..=1) {
        Some(Refusal::code(ErrorCode::INVALID_REQUIRED_ACKS).into())
    } else if crate::topics::is_internal(topic) {
        // Kafka refuses client writes to internal topics the same way.
        Some(
            Refusal::new(ErrorCode::INVALID_TOPIC_EXCEPTION, format!("{topic} is internal")).into(),
        )
    } else {
        None
    }
}

/// Validates and appends one partition's record set.
async fn produce_partition(
    broker: &Broker,
    topic: Option<&Topic>,
    index: i32,
    records: Option<Bytes>,
) -> Result<Appended, Refused> {
    let Some((topic, partition)) = topic.and_then(|t| Some((t, t.partition(index)?))) else {
        return Err(Refusal::code(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION).into());
    };
    append(broker, partition, records, &topic.config).await
}

/// A partition's part of the response.
fn partition_response(
    index: i32,
    outcome: Result<Appended, Refused>,
    version: i16,
) -> PartitionProduceResponse {
    let mut p = PartitionProduceResponse::default();
    p.index = index;
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
        Err(Refused { refusal, record_errors }) => {
            p.error_code = refusal.code.code();
            p.base_offset = -1;
            if version >= 8 {
                p.error_message = refusal.message.map(StrBytes::from_string);
                p.record_errors = record_errors
                    .into_iter()
                    .map(|(index, message)| {
                        let mut e = BatchIndexAndErrorMessage::default();
                        e.batch_index = index;
                        e.batch_index_error_message = Some(StrBytes::from_string(message));
                        e
                    })
                    .collect();
            }
        }
    }
    p
}

/// A record set refused: Kafka's error code and message, and the records at fault
/// (`record_errors`: index of the record in its batch, message).
struct Refused {
    refusal: Refusal,
    record_errors: Vec<(i32, String)>,
}

impl From<Refusal> for Refused {
    fn from(refusal: Refusal) -> Self {
        Refused { refusal, record_errors: Vec::new() }
    }
}

/// Most bytes a batch of a compacted topic is decompressed to while its keys are checked.
const MAX_CHECKED_RECORDS_BYTES: usize = 64 << 20;
/// Record errors a response lists, and its message shows (Kafka's LogValidator shows
/// the first three).
const MAX_RECORD_ERRORS: usize = 1000;
const SHOWN_RECORD_ERRORS: usize = 3;

/// Kafka's refusal of records without a key on a compacted topic: INVALID_RECORD with a
/// record error per such record.
fn check_keys<B: AsRef<[u8]>>(
    valid: &ValidRecords<B>,
    topic: &str,
    partition: i32,
) -> Result<(), Refused> {
    let mut errors = Vec::new();
    let mut total = 0usize;
    for b in valid.batches() {
        let records = b.records(MAX_CHECKED_RECORDS_BYTES).map_err(|e| {
            Refusal::new(
                ErrorCode::CORRUPT_MESSAGE,
                format!("the records of a batch cannot be read: {e}"),
            )
        })?;
        for (index, r) in records.iter().enumerate() {
            let r = r.map_err(|e| Refusal::new(ErrorCode::CORRUPT_MESSAGE, e.to_string()))?;
            if r.key().is_none() {
                total += 1;
                if errors.len() < MAX_RECORD_ERRORS {
                    errors.push((
                        index as i32,
                        format!("Compacted topic cannot accept message without key in topic partition {topic}-{partition}."),
                    ));
                }
            }
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = errors
        .iter()
        .take(SHOWN_RECORD_ERRORS)
        .map(|(i, m)| format!("RecordError(batchIndex={i}, message='{m}')"))
        .collect();
    let message = format!(
        "One or more records have been rejected due to {total} record errors in total, and only showing the first three errors at most: [{}]",
        shown.join(", ")
    );
    Err(Refused {
        refusal: Refusal::new(ErrorCode::INVALID_RECORD, message),
        record_errors: errors,
    })
}

/// A record set appended: what the response says, and the sync its acknowledgement waits
/// for (durable mode).
struct Appended {
    base_offset: i64,
    log_append_time: i64,
    log_start_offset: i64,
    sync: Option<(Arc<Partition>, i64)>,
}

async fn append(
    broker: &Broker,
    partition: &Arc<Partition>,
    records: Option<Bytes>,
    config: &EffectiveConfig,
) -> Result<Appended, Refused> {
    let (max_message_bytes, timestamp_type) = (config.max_message_bytes, config.timestamp_type);
    let records =
        records.ok_or_else(|| Refusal::new(ErrorCode::CORRUPT_MESSAGE, "null record set"))?;
    let size = records.len() as u64;
    let (valid, log_append_time) = match timestamp_type {
        TimestampType::CreateTime => (validate(records, max_message_bytes)?, -1),
        TimestampType::LogAppendTime => {
            // Checked before rewriting: the rewrite recomputes CRCs, which would hide
            // corruption that arrived with the request.
            validate(records.clone(), max_message_bytes)?;
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
            (validate(Bytes::from(owned), max_message_bytes)?, now)
        }
    };
    if matches!(timestamp_type, TimestampType::CreateTime) {
        timestamps::check(&valid, config.timestamps, now_ms())?;
    }
    if config.log.cleanup_compact {
        check_keys(&valid, partition.topic(), partition.index())?;
    }
    if size > partition.config().segment_bytes {
        return Err(Refusal::code(ErrorCode::RECORD_LIST_TOO_LARGE).into());
    }
    // KIP-890 part 1: a transactional batch may open a transaction here only if the
    // coordinator has this partition in the producer's ongoing transaction.
    let verify = valid.is_transactional().then(|| {
        let index = broker.txns.index_handle();
        let (topic, index_of) = (partition.topic().to_owned(), partition.index());
        let verifier: TxnVerifier = Arc::new(move |producer_id, epoch| {
            index.verify_partition(producer_id, epoch, &topic, index_of)
        });
        verifier
    });
    match partition.append(valid, verify).await {
        Ok((info, sync_to)) => {
            broker.metrics.produced_bytes.fetch_add(size, std::sync::atomic::Ordering::Relaxed);
            Ok(Appended {
                base_offset: info.base_offset,
                log_append_time,
                log_start_offset: info.log_start_offset,
                sync: sync_to.map(|offset| (Arc::clone(partition), offset)),
            })
        }
        Err(e) => {
            // The producer's own mistakes are its to see; the broker's log keeps its own.
            let clients = matches!(
                e,
                StorageError::InvalidProducerEpoch { .. }
                    | StorageError::OutOfOrderSequence { .. }
                    | StorageError::InvalidTxnState { .. }
                    | StorageError::TxnNotVerified { .. }
            );
            if clients {
                tracing::debug!(topic = partition.topic(), partition = partition.index(), error = %e, "append refused");
            } else {
                tracing::warn!(topic = partition.topic(), partition = partition.index(), error = %e, "append failed");
            }
            Err(Refusal::from(e).into())
        }
    }
}

/// The producer's record sets, checked; a batch that fails its checks is refused with
/// its batch error's code ([`crate::error::batch_error_code`]).
fn validate(records: Bytes, max_message_bytes: i32) -> Result<ValidRecords<Bytes>, Refusal> {
    let max = usize::try_from(max_message_bytes).unwrap_or(0);
    ValidRecords::from_producer(records, max).map_err(Refusal::from)
}
