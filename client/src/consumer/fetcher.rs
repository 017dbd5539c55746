//! The fetcher, sans I/O: each assigned partition's position and buffered records, the
//! Fetch request for each leader, and what a Fetch response does to them.
//!
//! The consume path and its copy budget:
//! ```text
//! plan        partitions with a position, not paused, with fewer than max.poll.records
//!             buffered, grouped by leader: one FetchRequest per broker, at most one in
//!             flight per broker (sent again as soon as poll has taken records, so the
//!             next fetch travels while the application works: pipelining)
//! response    one frame, read into one buffer by the connection (the only copy of
//!             uncompressed records); record sets are Bytes slices of it
//! apply       per partition: answers to an old position are dropped (a seek happened);
//!             records parsed as slices (records.rs), buffered; errors kept per partition
//! poll        records taken round-robin over partitions, position moves past them
//! ```
//!
//! Invariant: `fetch_offset >= position`; `position` is the next offset `poll` returns and
//! what a commit stores, `fetch_offset` where the next fetch starts (past what is
//! buffered).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use sluice_protocol::kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use sluice_protocol::kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::records::{prepare, AbortedFilter, ConsumerRecord, Inflated, Pending};
use crate::config::{ConsumerConfig, OffsetReset};
use crate::error::{refreshes_metadata, ClientError};
use crate::metadata::{Metadata, TopicPartition};

/// Largest decompressed size of one fetched batch: a bound on what a corrupt or hostile
/// batch can make the consumer allocate.
const MAX_BATCH_UNCOMPRESSED: usize = 256 << 20;

/// Where a partition's position comes from when it has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The group's committed offset, else `auto.offset.reset`.
    Committed,
    /// `auto.offset.reset` (after OFFSET_OUT_OF_RANGE).
    Reset(OffsetReset),
}

/// One assigned partition.
#[derive(Debug)]
pub struct PartitionState {
    /// Next offset to return; `None` until looked up.
    pub position: Option<i64>,
    /// How to find a position when there is none.
    pub start: Start,
    /// Where the next fetch starts.
    pub fetch_offset: i64,
    /// Fetched, not yet returned.
    pub buffered: Pending,
    /// Fetched whole batches, not yet returned (batch mode, for passthrough).
    pub batches: VecDeque<FetchedBatch>,
    /// Bytes in `batches`.
    pub batch_bytes: usize,
    /// Paused by the application.
    pub paused: bool,
    /// From the last fetch response.
    pub high_watermark: i64,
    /// From the last fetch response.
    pub last_stable_offset: i64,
    /// From the last fetch response.
    pub log_start_offset: i64,
    /// Leader epoch of the last record returned.
    pub last_epoch: i32,
    /// Bumped on every seek, so answers to fetches sent before it are dropped.
    pub seek_generation: u64,
    /// A fetch for this partition is in flight.
    pub in_flight: bool,
    /// An error to report from the next poll.
    pub error: Option<ClientError>,
}

impl PartitionState {
    /// A newly assigned partition.
    pub fn new() -> Self {
        PartitionState {
            position: None,
            start: Start::Committed,
            fetch_offset: 0,
            buffered: Pending::default(),
            batches: VecDeque::new(),
            batch_bytes: 0,
            paused: false,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            last_epoch: -1,
            seek_generation: 0,
            in_flight: false,
            error: None,
        }
    }

    /// Moves to `offset`, dropping what was buffered and in flight.
    pub fn seek(&mut self, offset: i64) {
        self.position = Some(offset);
        self.fetch_offset = offset;
        self.buffered.clear();
        self.batches.clear();
        self.batch_bytes = 0;
        self.seek_generation += 1;
        self.error = None;
    }

    /// Forgets the position; the next poll finds one by `start`.
    pub fn reset(&mut self, start: Start) {
        self.position = None;
        self.start = start;
        self.buffered.clear();
        self.batches.clear();
        self.batch_bytes = 0;
        self.seek_generation += 1;
    }
}

impl Default for PartitionState {
    fn default() -> Self {
        Self::new()
    }
}

/// What one in-flight fetch asked, to match its answer.
#[derive(Debug)]
pub struct FetchPlan {
    /// The leader it went to.
    pub node: i32,
    /// Per partition: the offset asked and the seek generation then.
    pub partitions: Vec<(TopicPartition, i64, u64)>,
    /// Topic ids used by the request (Fetch v13+), to name the answer's topics.
    pub ids: HashMap<Uuid, Arc<str>>,
}

/// Builds one Fetch request per leader for the partitions that can fetch now.
/// `max_version` is the negotiated Fetch version of each node; `busy` names nodes with a
/// fetch already in flight.
pub fn plan(
    partitions: &mut BTreeMap<TopicPartition, PartitionState>,
    metadata: &Metadata,
    config: &ConsumerConfig,
    busy: &dyn Fn(i32) -> bool,
) -> (Vec<FetchPlan>, bool) {
    let mut by_node: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
    let mut unknown_leader = false;
    for (tp, state) in partitions.iter() {
        if state.position.is_none() || state.paused || state.in_flight || state.error.is_some() {
            continue;
        }
        if state.buffered.len() >= config.max_poll_records
            || state.batch_bytes >= config.max_partition_fetch_bytes.max(1) as usize
        {
            continue;
        }
        match metadata.leader(&tp.topic, tp.partition) {
            Some(node) if !busy(node) => by_node.entry(node).or_default().push(tp.clone()),
            Some(_) => {}
            None => unknown_leader = true,
        }
    }
    let plans = by_node
        .into_iter()
        .map(|(node, tps)| {
            let mut ids = HashMap::new();
            let partitions = tps
                .into_iter()
                .map(|tp| {
                    let state = partitions.get_mut(&tp).expect("planned from the map");
                    state.in_flight = true;
                    if let Some(t) = metadata.topic(&tp.topic) {
                        ids.insert(t.id, tp.topic.clone());
                    }
                    (tp, state.fetch_offset, state.seek_generation)
                })
                .collect();
            FetchPlan { node, partitions, ids }
        })
        .collect();
    (plans, unknown_leader)
}

/// The Fetch request for `plan` in `version` (topic ids from v13, which needs every
/// topic's id; the caller passes a version of at most 12 otherwise).
pub fn request(
    plan: &FetchPlan,
    metadata: &Metadata,
    config: &ConsumerConfig,
    version: i16,
) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (tp, offset, _) in &plan.partitions {
        let mut p = FetchPartition::default()
            .with_partition(tp.partition)
            .with_fetch_offset(*offset)
            .with_partition_max_bytes(config.max_partition_fetch_bytes);
        if version >= 9 {
            p = p.with_current_leader_epoch(metadata.leader_epoch(&tp.topic, tp.partition));
        }
        let same = |t: &FetchTopic| {
            if version >= 13 {
                metadata.topic(&tp.topic).is_some_and(|m| m.id == t.topic_id)
            } else {
                t.topic.0.as_str() == &*tp.topic
            }
        };
        match topics.iter_mut().find(|t| same(t)) {
            Some(t) => t.partitions.push(p),
            None => {
                let t = if version >= 13 {
                    FetchTopic::default()
                        .with_topic_id(metadata.topic(&tp.topic).map_or(Uuid::nil(), |m| m.id))
                } else {
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(tp.topic.to_string())))
                };
                topics.push(t.with_partitions(vec![p]));
            }
        }
    }
    let wait = config.fetch_max_wait.as_millis().min(i32::MAX as u128) as i32;
    let mut request = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(wait)
        .with_min_bytes(config.fetch_min_bytes)
        .with_topics(topics);
    if version >= 3 {
        request = request.with_max_bytes(config.fetch_max_bytes);
    }
    if version >= 4 {
        request = request.with_isolation_level(i8::from(config.read_committed));
    }
    if version >= 15 {
        request = request.with_replica_id((-1).into());
    }
    request
}

/// Whether every topic of `plan` has an id (Fetch v13+ names topics by id).
pub fn has_topic_ids(plan: &FetchPlan, metadata: &Metadata) -> bool {
    plan.partitions
        .iter()
        .all(|(tp, _, _)| metadata.topic(&tp.topic).is_some_and(|t| !t.id.is_nil()))
}

/// The compressed batches of a fetch response, decompressed ahead of [`apply`], by the
/// topic's and the partition's position in the response.
pub type InflatedResponse = HashMap<(usize, usize), Inflated>;

/// Decompresses the compressed batches of `response` (see [`Inflated`]).
pub fn inflate(response: &FetchResponse) -> InflatedResponse {
    let mut out = InflatedResponse::new();
    for (t, topic) in response.responses.iter().enumerate() {
        for (p, partition) in topic.partitions.iter().enumerate() {
            if let Some(set) = partition.records.as_ref().filter(|r| !r.is_empty()) {
                out.insert((t, p), Inflated::of(set, MAX_BATCH_UNCOMPRESSED));
            }
        }
    }
    out
}

/// What applying an answer asks of the consumer.
#[derive(Debug, Default)]
pub struct Applied {
    /// Leaders moved or are unknown: refresh metadata.
    pub refresh_metadata: bool,
}

/// Applies the answer to `plan` (or the error that replaced it).
pub fn apply(
    partitions: &mut BTreeMap<TopicPartition, PartitionState>,
    plan: FetchPlan,
    answer: Result<FetchResponse, ClientError>,
    mut inflated: InflatedResponse,
    config: &ConsumerConfig,
    whole_batches: bool,
) -> Applied {
    let mut applied = Applied::default();
    let mut asked: HashMap<TopicPartition, (i64, u64)> = HashMap::new();
    for (tp, offset, generation) in plan.partitions {
        if let Some(state) = partitions.get_mut(&tp) {
            state.in_flight = false;
        }
        asked.insert(tp, (offset, generation));
    }
    let response = match answer {
        Ok(r) => r,
        Err(e) => {
            applied.refresh_metadata = e.needs_metadata_refresh();
            return applied;
        }
    };
    for (topic_index, topic) in response.responses.into_iter().enumerate() {
        let name: Arc<str> = match plan.ids.get(&topic.topic_id) {
            Some(name) if !topic.topic_id.is_nil() => name.clone(),
            _ => topic.topic.0.as_str().into(),
        };
        for (partition_index, p) in topic.partitions.into_iter().enumerate() {
            let tp = TopicPartition { topic: name.clone(), partition: p.partition_index };
            let (Some(&(offset, generation)), Some(state)) =
                (asked.get(&tp), partitions.get_mut(&tp))
            else {
                continue;
            };
            if state.seek_generation != generation || state.fetch_offset != offset {
                continue;
            }
            let code = ErrorCode::from_code(p.error_code);
            match code {
                ErrorCode::NONE => {
                    state.high_watermark = p.high_watermark;
                    state.last_stable_offset = p.last_stable_offset;
                    state.log_start_offset = p.log_start_offset;
                    let Some(set) = p.records.filter(|r| !r.is_empty()) else { continue };
                    let mut aborted = config.read_committed.then(|| {
                        AbortedFilter::new(
                            p.aborted_transactions
                                .iter()
                                .flatten()
                                .map(|a| (a.producer_id.0, a.first_offset)),
                        )
                    });
                    if whole_batches {
                        match split(&tp, &set, offset, config.check_crcs, aborted.as_mut()) {
                            Ok((batches, next)) => {
                                state.fetch_offset = next.max(offset);
                                state.batch_bytes +=
                                    batches.iter().map(|b| b.bytes.len()).sum::<usize>();
                                state.batches.extend(batches);
                            }
                            Err(e) => state.error = Some(e),
                        }
                        continue;
                    }
                    match prepare(
                        &name,
                        tp.partition,
                        &set,
                        offset,
                        config.check_crcs,
                        MAX_BATCH_UNCOMPRESSED,
                        &mut inflated.remove(&(topic_index, partition_index)).unwrap_or_default(),
                        aborted.as_mut(),
                    ) {
                        Ok((pending, next_offset)) => {
                            state.fetch_offset = next_offset.max(offset);
                            state.buffered.append(pending);
                        }
                        Err(e) => state.error = Some(e),
                    }
                }
                ErrorCode::OFFSET_OUT_OF_RANGE => match config.auto_offset_reset {
                    OffsetReset::None => {
                        state.error = Some(ClientError::kafka(
                            code,
                            None,
                            format!("fetch {tp} at offset {offset}"),
                        ))
                    }
                    policy => state.reset(Start::Reset(policy)),
                },
                code if refreshes_metadata(code) || code.is_retriable() => {
                    applied.refresh_metadata = true
                }
                code => {
                    state.error = Some(ClientError::kafka(
                        code,
                        None,
                        format!("fetch {tp} at offset {offset}"),
                    ))
                }
            }
        }
    }
    applied
}

/// The partitions that are not paused, starting at the `start`-th (mod their number), so
/// that no partition is always served first.
fn round_robin(
    partitions: &mut BTreeMap<TopicPartition, PartitionState>,
    start: usize,
) -> impl Iterator<Item = (&TopicPartition, &mut PartitionState)> {
    let n = partitions.len().max(1);
    let mut states: Vec<(&TopicPartition, &mut PartitionState)> = partitions.iter_mut().collect();
    states.rotate_left(start % n);
    states.into_iter().filter(|(_, s)| !s.paused)
}

/// Takes up to `max` buffered records, round-robin from partition `start`, and moves
/// positions past them. A paused partition keeps what it has buffered for after resume.
pub fn take(
    partitions: &mut BTreeMap<TopicPartition, PartitionState>,
    max: usize,
    start: usize,
) -> Vec<ConsumerRecord> {
    let mut out = Vec::new();
    for (tp, state) in round_robin(partitions, start) {
        let before = out.len();
        let taken = state.buffered.take(&tp.topic, tp.partition, max, &mut out);
        if let Some(last) = out[before..].last() {
            state.position = Some(last.offset + 1);
            state.last_epoch = last.leader_epoch;
        }
        if let Err(e) = taken {
            // Fetch the bad record again after the records before it: the error stays at
            // its position until the application seeks past it.
            state.fetch_offset = state.position.unwrap_or(state.fetch_offset);
            state.error = Some(e);
            break;
        }
        if state.buffered.is_empty() {
            if let Some(position) = state.position {
                state.position = Some(position.max(state.fetch_offset));
            }
        }
        if out.len() >= max {
            break;
        }
    }
    out
}

/// A record batch exactly as fetched, for passthrough: the mirror produces these bytes
/// to another cluster without decompressing them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedBatch {
    /// Where it came from.
    pub tp: TopicPartition,
    /// Its first offset.
    pub base_offset: i64,
    /// Its last offset.
    pub last_offset: i64,
    /// Records in it.
    pub records: u32,
    /// A control batch (transaction marker): never to be copied, but the position moves
    /// past it.
    pub control: bool,
    /// Part of a transaction.
    pub transactional: bool,
    /// The whole batch, a slice of the fetch response.
    pub bytes: bytes::Bytes,
}

/// Splits a partition's record set into whole batches from `fetch_offset` (a batch
/// that starts before it is included: its records before the position are the caller's
/// to skip); a partial batch at the end is left for the next fetch. With `aborted`
/// (read_committed) the batches of aborted transactions are left out.
fn split(
    tp: &TopicPartition,
    set: &bytes::Bytes,
    fetch_offset: i64,
    check_crcs: bool,
    mut aborted: Option<&mut AbortedFilter>,
) -> Result<(Vec<FetchedBatch>, i64), ClientError> {
    let corrupt = |offset: i64, reason: String| ClientError::CorruptRecord {
        topic: tp.topic.to_string(),
        partition: tp.partition,
        offset,
        reason,
    };
    let mut out = Vec::new();
    let mut next = fetch_offset;
    for batch in sluice_protocol::record::batches(set) {
        let batch = batch.map_err(|e| corrupt(next, e.to_string()))?;
        if batch.last_offset() < fetch_offset {
            continue;
        }
        if check_crcs {
            batch.verify_crc().map_err(|e| corrupt(batch.base_offset(), e.to_string()))?;
        }
        next = batch.last_offset() + 1;
        if aborted.as_deref_mut().is_some_and(|f| f.skips(&batch)) {
            continue;
        }
        out.push(FetchedBatch {
            tp: tp.clone(),
            base_offset: batch.base_offset(),
            last_offset: batch.last_offset(),
            records: u32::try_from(batch.records_count()).unwrap_or(0),
            control: batch.is_control(),
            transactional: batch.is_transactional(),
            bytes: set.slice_ref(batch.as_bytes()),
        });
    }
    Ok((out, next))
}

/// Takes buffered batches, round-robin from partition `start`, up to `max_bytes` (at
/// least one), and moves positions past them.
pub fn take_batches(
    partitions: &mut BTreeMap<TopicPartition, PartitionState>,
    max_bytes: usize,
    start: usize,
) -> Vec<FetchedBatch> {
    let mut out = Vec::new();
    let mut bytes = 0;
    for (_, state) in round_robin(partitions, start) {
        while let Some(batch) = state.batches.front() {
            if !out.is_empty() && bytes + batch.bytes.len() > max_bytes {
                return out;
            }
            let batch = state.batches.pop_front().expect("front exists");
            bytes += batch.bytes.len();
            state.batch_bytes -= batch.bytes.len();
            state.position = Some(batch.last_offset + 1);
            out.push(batch);
        }
        if let Some(position) = state.position {
            state.position = Some(position.max(state.fetch_offset));
        }
    }
    out
}

#[cfg(test)]
mod tests;
