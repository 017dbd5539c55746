//! The mirror's fetch loop: owns the source consumer and sends to the target producer.
//! Each pass refreshes the topics (making the target match and assigning every
//! partition), pauses partitions with too many batches in flight, polls, paces by the
//! rate limit and the byte budget, and forwards each batch (passed through, or as
//! records when it cannot be) to the ack loop.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;

use super::{Delivery, Sent};
use crate::admin::{Admin, OffsetAndMetadata, OffsetSpec};
use crate::consumer::fetcher::FetchedBatch;
use crate::consumer::{records, Consumer};
use crate::error::ClientError;
use crate::metadata::TopicPartition;
use crate::mirror::offset_map::{OffsetMap, Resume};
use crate::mirror::rate::TokenBucket;
use crate::mirror::tracker::{self, Position, Tracker};
use crate::mirror::{topics, MirrorConfig, MirrorError, Mode, Stats, TopicFilter};
use crate::producer::{DeliveryFuture, Producer, ProducerRecord};

/// How long one poll waits; bounds how late the loop sees a stop or a refresh.
const POLL: Duration = Duration::from_millis(200);
/// How long a send to a partition the producer does not know yet (just added) is tried.
const NEW_PARTITION_WAIT: Duration = Duration::from_secs(60);
/// Bound on one batch's decompressed size when it is sent as records.
const MAX_UNCOMPRESSED: usize = 256 << 20;

pub(super) struct Fetch<'a> {
    pub(super) config: &'a MirrorConfig,
    pub(super) filter: &'a TopicFilter,
    pub(super) skip_prefix: Option<String>,
    pub(super) consumer: Consumer,
    pub(super) producer: Producer,
    pub(super) source: &'a Admin,
    pub(super) target: &'a Admin,
    pub(super) tracker: Arc<Mutex<Tracker>>,
    pub(super) map: Arc<Mutex<OffsetMap>>,
    /// Where the mirror's commits say partitions resume (taken when first assigned).
    pub(super) resume: HashMap<TopicPartition, Resume>,
    pub(super) memory: Arc<Semaphore>,
    pub(super) stats: Arc<Stats>,
    pub(super) tx: mpsc::Sender<Sent>,
    pub(super) stop: watch::Receiver<bool>,
    /// Source topic -> its name on the target, for the topics assigned.
    pub(super) targets: HashMap<Arc<str>, Arc<str>>,
    /// The next source offset of each assigned partition, as the loop has sent.
    pub(super) next: HashMap<TopicPartition, i64>,
    /// Partitions whose fallback to records was logged.
    pub(super) logged: HashSet<TopicPartition>,
    pub(super) bucket: Option<TokenBucket>,
}

impl Fetch<'_> {
    fn stopped(&self) -> bool {
        *self.stop.borrow() || self.tx.is_closed()
    }

    pub(super) async fn run(&mut self) -> Result<(), MirrorError> {
        let mut refresh_at = Instant::now();
        let mut lag_at = Instant::now();
        let mut attempt = 0;
        while !self.stopped() {
            if Instant::now() >= refresh_at {
                if let Err(e) = self.refresh().await {
                    tracing::warn!(error = %e, "topic refresh failed; retried later");
                }
                refresh_at = Instant::now() + self.config.refresh_interval;
            }
            self.pace_partitions();
            if self.next.is_empty() {
                let mut stop = self.stop.clone();
                let _ = tokio::time::timeout(POLL, stop.wait_for(|s| *s)).await;
                continue;
            }
            let batches = match self.consumer.poll_batches(POLL).await {
                Ok(b) => b,
                Err(e) if e.is_retriable() => {
                    attempt += 1;
                    tracing::warn!(error = %e, "source fetch failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * attempt.min(10))).await;
                    continue;
                }
                Err(e) => return Err(MirrorError::client("fetch from the source", e)),
            };
            attempt = 0;
            for b in batches {
                if !self.forward(b).await? {
                    return Ok(());
                }
            }
            if Instant::now() >= lag_at {
                self.publish_lag();
                lag_at = Instant::now() + Duration::from_secs(1);
            }
        }
        Ok(())
    }

    /// Lists the source's topics, makes the target match, and assigns every partition.
    async fn refresh(&mut self) -> Result<(), MirrorError> {
        let mut wanted = topics::matching(self.source, self.filter).await?;
        if let Some(prefix) = &self.skip_prefix {
            wanted.retain(|t| !t.name.starts_with(prefix.as_str()));
        }
        let ready = topics::ensure_targets(self.source, self.target, self.filter, &wanted).await?;
        let mut tps = Vec::new();
        for m in &ready {
            let topic: Arc<str> = m.source.as_str().into();
            self.targets.insert(topic.clone(), m.target.as_str().into());
            tps.extend((0..m.partitions).map(|p| TopicPartition::new(topic.clone(), p as i32)));
        }
        let new: Vec<TopicPartition> =
            tps.iter().filter(|tp| !self.next.contains_key(*tp)).cloned().collect();
        let kept: HashSet<&TopicPartition> = tps.iter().collect();
        self.next.retain(|tp, _| kept.contains(tp));
        self.consumer.assign(tps.iter().cloned());
        let mut starts = Vec::new();
        for tp in new {
            // The committed offset, else the earliest: where this partition resumes.
            match self.consumer.position(&tp).await {
                Ok(at) => {
                    tracing::info!(partition = %tp, offset = at, "mirroring from");
                    self.tracker.lock().expect("lock").started_at(&tp, at);
                    let resume = match self.resume.remove(&tp) {
                        Some(r) if r.source == at => r,
                        _ => Resume { source: at, committed: false, target: None },
                    };
                    if resume.target.is_none() {
                        starts.push((tp.clone(), at));
                    }
                    self.map.lock().expect("lock").resumed(&tp, resume);
                    self.next.insert(tp, at);
                }
                Err(e) => {
                    tracing::warn!(partition = %tp, error = %e, "no position yet; retried at the next refresh")
                }
            }
        }
        if !starts.is_empty() {
            self.commit_start(&starts).await;
        }
        Ok(())
    }

    /// Commits where partitions start, with the target's log end as their target offset,
    /// before anything of theirs is sent, unless the last commit already says so (a clean
    /// stop). The next restart then counts only what this run wrote past its commits:
    /// records a killed run left past its commit are counted once, by the restart after
    /// it, and a partition killed before its first acknowledgement was committed is
    /// counted too. A failure is only logged: the next restart may then miscount.
    async fn commit_start(&self, starts: &[(TopicPartition, i64)]) {
        let on_target = |tp: &TopicPartition| {
            TopicPartition::new(self.targets[&tp.topic].clone(), tp.partition)
        };
        let specs: Vec<(TopicPartition, OffsetSpec)> =
            starts.iter().map(|(tp, _)| (on_target(tp), OffsetSpec::Latest)).collect();
        let ends = match self.target.list_offsets(&specs).await {
            Ok(ends) => ends,
            Err(e) => {
                tracing::warn!(error = %e, "target log ends unreadable; the start positions are not committed");
                return;
            }
        };
        let offsets: Vec<(TopicPartition, OffsetAndMetadata)> = starts
            .iter()
            .filter_map(|(tp, at)| {
                let end = ends.get(&on_target(tp))?.offset;
                let metadata = tracker::metadata(Position { source: *at, target: Some(end) });
                Some((tp.clone(), OffsetAndMetadata { offset: *at, leader_epoch: None, metadata }))
            })
            .collect();
        let group = &self.config.group;
        match self.source.alter_consumer_group_offsets(group, &offsets).await {
            Ok(outcomes) => {
                for (tp, outcome) in outcomes {
                    if let Err(e) = outcome {
                        tracing::warn!(partition = %tp, error = %e, "start position not committed");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "start positions not committed"),
        }
    }

    /// Pauses partitions with too many batches in flight, resumes the others.
    fn pace_partitions(&mut self) {
        let tracker = self.tracker.lock().expect("lock");
        let max = self.config.max_in_flight_batches;
        let (mut pause, mut resume) = (Vec::new(), Vec::new());
        let paused: HashSet<TopicPartition> = self.consumer.paused().into_iter().collect();
        for tp in self.next.keys() {
            let full = tracker.in_flight(tp) >= max;
            match (full, paused.contains(tp)) {
                (true, false) => pause.push(tp.clone()),
                (false, true) => resume.push(tp.clone()),
                _ => {}
            }
        }
        drop(tracker);
        self.consumer.pause(&pause);
        self.consumer.resume(&resume);
    }

    /// Sends one fetched batch on and hands it to the ack loop; `false` when stopping.
    async fn forward(&mut self, b: FetchedBatch) -> Result<bool, MirrorError> {
        let Some(&position) = self.next.get(&b.tp) else {
            return Ok(true); // unassigned since the fetch
        };
        if b.last_offset < position {
            return Ok(true);
        }
        let target = self.targets[&b.tp.topic].clone();
        let bytes = b.bytes.len() as u64;
        let (delivery, records, permit) = if b.control {
            self.stats.control_batches.fetch_add(1, Ordering::Relaxed);
            (Delivery::Skipped, 0, None)
        } else {
            if let Some(bucket) = &mut self.bucket {
                let wait = bucket.take(u64::from(b.records), bytes, std::time::Instant::now());
                tokio::time::sleep(wait).await;
            }
            let permits = u32::try_from(bytes.min(self.config.max_in_flight_bytes as u64))
                .unwrap_or(u32::MAX)
                .min(Semaphore::MAX_PERMITS as u32);
            let mut stop = self.stop.clone();
            let permit = tokio::select! {
                p = self.memory.clone().acquire_many_owned(permits) => match p {
                    Ok(p) => p,
                    Err(_) => return Ok(false), // the ack loop failed
                },
                _ = stop.wait_for(|s| *s) => return Ok(false),
            };
            self.stats.in_flight_bytes.fetch_add(u64::from(permits), Ordering::Relaxed);
            // A compacted batch has holes between its offsets, which a broker does not
            // keep: Kafka refuses a compressed one and renumbers an uncompressed one.
            let holes = i64::from(b.records) != b.last_offset - b.base_offset + 1;
            let as_records = self.config.mode == Mode::Records
                || b.transactional
                || b.base_offset < position
                || holes;
            if as_records && self.config.mode == Mode::Batches && self.logged.insert(b.tp.clone()) {
                let why = if b.transactional {
                    "transactional batches are not passed through"
                } else if b.base_offset < position {
                    "it starts before the position"
                } else {
                    "its offsets have holes (a compacted topic)"
                };
                tracing::info!(
                    partition = %b.tp, offset = b.base_offset, transactional = b.transactional,
                    "batch sent as records: {why}"
                );
            }
            let (delivery, records) = if as_records {
                let futures = send_records(&self.producer, &b, position, &target).await?;
                let n = futures.len() as u64;
                (Delivery::Records(futures), n)
            } else {
                (
                    Delivery::Batch(send_batch(&self.producer, &b, &target).await?),
                    u64::from(b.records),
                )
            };
            (delivery, records, Some(permit))
        };
        self.next.insert(b.tp.clone(), b.last_offset + 1);
        self.tracker.lock().expect("lock").sent(&b.tp, records);
        let sent = Sent {
            tp: b.tp,
            base_offset: b.base_offset,
            last_offset: b.last_offset,
            records,
            bytes,
            delivery,
            _permit: permit,
        };
        Ok(self.tx.send(sent).await.is_ok())
    }

    /// Lag per partition: the source's high watermark minus what the target acknowledged.
    fn publish_lag(&self) {
        let tracker = self.tracker.lock().expect("lock");
        let mut lag: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for tp in self.next.keys() {
            let behind = self.consumer.lag(tp).unwrap_or(0)
                + i64::try_from(tracker.in_flight_records(tp)).unwrap_or(i64::MAX);
            lag.insert(tp.clone(), behind);
        }
        drop(tracker);
        self.stats.set_lag(lag);
    }
}

async fn send_batch(
    producer: &Producer,
    b: &FetchedBatch,
    target: &Arc<str>,
) -> Result<DeliveryFuture, MirrorError> {
    let deadline = Instant::now() + NEW_PARTITION_WAIT;
    loop {
        match producer.send_batch(target.clone(), b.tp.partition, b.bytes.clone()).await {
            Ok(d) => return Ok(d),
            // A partition just added: the producer sees it at its next metadata refresh.
            Err(ClientError::UnknownPartition { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(undelivered(b, e)),
        }
    }
}

/// Decodes `b` from `position` and sends each record to the same partition.
async fn send_records(
    producer: &Producer,
    b: &FetchedBatch,
    position: i64,
    target: &Arc<str>,
) -> Result<Vec<(i64, DeliveryFuture)>, MirrorError> {
    let parsed =
        records::parse(&b.tp.topic, b.tp.partition, &b.bytes, position, false, MAX_UNCOMPRESSED)
            .map_err(|e| undelivered(b, e))?;
    let mut futures = Vec::with_capacity(parsed.records.len());
    for r in parsed.records {
        let offset = r.offset;
        let record = ProducerRecord {
            topic: target.clone(),
            partition: Some(b.tp.partition),
            key: r.key,
            value: r.value,
            headers: r
                .headers
                .into_iter()
                .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
                .collect(),
            timestamp: Some(r.timestamp),
        };
        let deadline = Instant::now() + NEW_PARTITION_WAIT;
        loop {
            match producer.send(record.clone()).await {
                Ok(d) => {
                    futures.push((offset, d));
                    break;
                }
                Err(ClientError::UnknownPartition { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(undelivered(b, e)),
            }
        }
    }
    Ok(futures)
}

fn undelivered(b: &FetchedBatch, source: ClientError) -> MirrorError {
    MirrorError::Delivery {
        topic: b.tp.topic.to_string(),
        partition: b.tp.partition,
        offset: b.base_offset,
        source,
    }
}
