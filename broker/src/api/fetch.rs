//! Fetch: the read path.
//!
//! ```text
//! FetchRequest (topics by name, or by topic id from v13)
//!  -> per partition: PartitionLog::read(offset, limit) -> FileSlice { file, position, len }
//!     (an index binary search and a few header loads; whole batches, the batch holding
//!     the offset first); read_committed stops at the last stable offset and adds the
//!     aborted transactions that overlap the slice, from the in-memory `.txnindex`
//!  -> less than min_bytes and max_wait_ms left: wait on the partitions' notifiers (an
//!     append wakes the fetch at once), then read again
//!  -> response = header bytes built here + each FileSlice as its own part
//!  -> the connection writes the bytes with write(2) and each FileSlice with sendfile(2)
//! ```
//!
//! Copy budget: zero copies of record bytes in user space. The response body is encoded by
//! hand (see [`encode`]) because kafka-protocol's FetchResponse holds records as `Bytes` in
//! memory; its decoder checks this encoder in the tests for every version.
//!
//! Fetch sessions (v7+): the broker always answers session id 0, "no session", which
//! Kafka allows; clients then send full fetch requests.

mod encode;

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::FetchRequest;
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::header::RequestHeader;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Reply;
use crate::broker::Broker;
use crate::error::storage_error_code;
use crate::partition::Partition;
use crate::storage::{FileSlice, Isolation, StorageError};
pub use encode::{encode, PartitionReply, RecordSet, TopicReply};

/// What one requested partition resolved to.
struct Wanted {
    topic: usize,
    partition: Option<Arc<Partition>>,
    index: i32,
    offset: i64,
    max_bytes: u64,
    error: ErrorCode,
}

/// Kafka's `isolation_level` values in Fetch and ListOffsets.
pub const READ_COMMITTED: i8 = 1;

/// Answers a Fetch request, long-polling until `min_bytes` are there, `max_wait_ms` has
/// passed, or the broker shuts down.
pub async fn handle(
    broker: &Broker,
    header: &RequestHeader,
    request: FetchRequest,
    shutdown: &CancellationToken,
) -> Reply {
    let version = header.api_version;
    let mut topics: Vec<TopicReply> = Vec::with_capacity(request.topics.len());
    let mut wanted: Vec<Wanted> = Vec::new();
    for t in &request.topics {
        let found = if version >= 13 {
            broker.topics.get_by_id(t.topic_id)
        } else {
            broker.topics.get(t.topic.0.as_str())
        };
        let missing = if version >= 13 {
            ErrorCode::UNKNOWN_TOPIC_ID
        } else {
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        };
        topics.push(TopicReply {
            name: t.topic.0.to_string(),
            id: t.topic_id,
            partitions: Vec::with_capacity(t.partitions.len()),
        });
        for p in &t.partitions {
            let partition = found.as_ref().and_then(|f| f.partition(p.partition)).cloned();
            let error = match (&found, &partition) {
                (None, _) => missing,
                (Some(_), None) => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                _ if p.current_leader_epoch > 0 => ErrorCode::UNKNOWN_LEADER_EPOCH,
                _ => ErrorCode::NONE,
            };
            wanted.push(Wanted {
                topic: topics.len() - 1,
                partition,
                index: p.partition,
                offset: p.fetch_offset,
                max_bytes: u64::try_from(p.partition_max_bytes).unwrap_or(0),
                error,
            });
        }
    }
    let max_bytes =
        if version >= 3 { u64::try_from(request.max_bytes).unwrap_or(0) } else { u64::MAX };
    let min_bytes = u64::try_from(request.min_bytes).unwrap_or(0);
    let isolation = if request.isolation_level == READ_COMMITTED {
        Isolation::ReadCommitted
    } else {
        Isolation::ReadUncommitted
    };
    let deadline = tokio::time::Instant::now()
        + Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
    // What the wait needs is copied out above: the request, a view of its frame, goes
    // now, so a long poll holds neither the frame's memory nor its request budget.
    drop(request);
    // Off the async thread: a fetch of thousands of partitions not used since the start
    // opens them all at once.
    Partition::open_unopened(wanted.iter().filter_map(|w| w.partition.as_ref())).await;
    let waiter = Arc::new(Notify::new());
    let replies = loop {
        for w in &wanted {
            if let Some(p) = &w.partition {
                p.register_waiter(&waiter);
            }
        }
        let (replies, bytes, errors) = read_all(&wanted, max_bytes, isolation);
        let now = tokio::time::Instant::now();
        if bytes >= min_bytes || errors || now >= deadline || shutdown.is_cancelled() {
            break replies;
        }
        tokio::select! {
            () = waiter.notified() => {}
            () = tokio::time::sleep_until(deadline) => {}
            () = shutdown.cancelled() => {}
        }
    };
    for (w, r) in wanted.iter().zip(replies) {
        let bytes = r.records.as_ref().map_or(0, RecordSet::len);
        let failed = r.error != ErrorCode::NONE;
        match &w.partition {
            Some(p) => p.counters().fetched(bytes, failed),
            None => broker.metrics.unattributed.fetched(failed),
        }
        topics[w.topic].partitions.push(r);
    }
    encode(header, &topics)
}

/// File-backed record sets one response may hold; the rest are read into memory (within
/// the response's byte limits). A fetch of thousands of partitions would otherwise hold
/// a descriptor per partition until it is sent, past the bound on open segment files.
const MAX_FILE_SETS_PER_RESPONSE: usize = 64;

/// The slice as the response carries it: from the file for sendfile(2), or, past the
/// response's share of descriptors, read now.
fn record_set(slice: FileSlice, held_files: &mut usize) -> std::io::Result<RecordSet> {
    if *held_files >= MAX_FILE_SETS_PER_RESPONSE {
        return Ok(RecordSet::Memory(slice.read_to_vec()?.into()));
    }
    *held_files += 1;
    Ok(RecordSet::File(slice))
}

/// Reads every wanted partition once: the bytes found, and whether any partition has an
/// error (which ends the wait at once, as in Kafka).
fn read_all(
    wanted: &[Wanted],
    max_bytes: u64,
    isolation: Isolation,
) -> (Vec<PartitionReply>, u64, bool) {
    let mut replies = Vec::with_capacity(wanted.len());
    let mut total = 0u64;
    let mut errors = false;
    let mut held_files = 0;
    for w in wanted {
        let mut reply = PartitionReply::empty(w.index, w.error);
        if let (Some(p), ErrorCode::NONE) = (&w.partition, w.error) {
            let log = match p.log() {
                Ok(log) => log,
                Err(e) => {
                    tracing::warn!(topic = p.topic(), partition = p.index(), error = %e, "cannot open the partition");
                    reply.error = storage_error_code(&e);
                    errors = true;
                    replies.push(reply);
                    continue;
                }
            };
            reply.high_watermark = log.high_watermark();
            reply.last_stable_offset = log.last_stable_offset();
            reply.log_start_offset = log.log_start_offset();
            let limit = w.max_bytes.min(max_bytes.saturating_sub(total));
            // Once the response is full a partition's read may send nothing: reading 0
            // bytes opens no file (under the open-segment bound, a fetch of 100,000
            // partitions reopened all of them for the few thousand it could answer).
            // Before the first batch, KIP-74: at least one batch, whatever the limits.
            let read_bytes = if total == 0 { limit.max(1) } else { limit };
            match p.read_isolated(w.offset, read_bytes, isolation) {
                Ok(read) => {
                    reply.high_watermark = read.high_watermark;
                    reply.last_stable_offset = read.last_stable_offset;
                    reply.log_start_offset = read.log_start_offset;
                    if let Some(slice) = read.slice {
                        // KIP-74: the first batch of the response may exceed the limits
                        // (so a consumer always makes progress); later ones may not.
                        if total == 0 || slice.len <= limit {
                            match record_set(slice, &mut held_files) {
                                Ok(records) => {
                                    total += records.len();
                                    reply.records = Some(records);
                                    if isolation == Isolation::ReadCommitted {
                                        reply.aborted = Some(read.aborted);
                                    }
                                }
                                Err(e) => {
                                    tracing::warn!(topic = p.topic(), partition = p.index(), error = %e, "fetch read failed");
                                    reply.error = ErrorCode::KAFKA_STORAGE_ERROR;
                                }
                            }
                        }
                    }
                    if isolation == Isolation::ReadCommitted && reply.aborted.is_none() {
                        reply.aborted = Some(Vec::new());
                    }
                }
                Err(e) => {
                    reply.error = storage_error_code(&e);
                    if !matches!(e, StorageError::OffsetOutOfRange { .. }) {
                        tracing::warn!(topic = p.topic(), partition = p.index(), error = %e, "fetch read failed");
                    }
                }
            }
        }
        errors |= reply.error != ErrorCode::NONE;
        replies.push(reply);
    }
    (replies, total, errors)
}
