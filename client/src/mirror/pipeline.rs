//! The mirror's two loops: the fetch loop (owns the source consumer and the target
//! producer: fetch, pace, send) and the ack loop (awaits acknowledgements in send order,
//! commits). They share the [`Tracker`], the in-flight byte budget and the [`Stats`];
//! a bounded channel carries each sent batch from one to the other.
//!
//! Backpressure: the fetch loop takes a permit of the byte budget per batch before it
//! sends and the ack loop returns it on acknowledgement, so when the target is slow or
//! down the fetch loop waits there instead of polling more. A partition with
//! `max_in_flight_batches` in flight is paused at the source.
//!
//! Offsets: each acknowledgement extends the [`OffsetMap`]; each commit first writes
//! the map's changes to the checkpoint topic, then commits the source offsets they
//! cover. The group offset sync (`--sync-group-offsets`) runs beside the loops on the
//! same interval and reads the map.
//!
//! Shutdown: the fetch loop stops between polls; the producer is flushed; the ack loop
//! drains the channel (every delivery awaited) and commits last; the group offset sync
//! makes one last pass after that commit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use regex::Regex;

use super::group_offsets::GroupSync;
use super::offset_map::{OffsetMap, Resume, Run};
use super::rate::TokenBucket;
use super::tracker::{self, Position, Tracker};
use super::{checkpoint, topics, MirrorConfig, MirrorError, Mode, Stats, TopicFilter};
use crate::admin::{Admin, OffsetAndMetadata, OffsetSpec};
use crate::consumer::fetcher::FetchedBatch;
use crate::consumer::{records, Consumer};
use crate::error::ClientError;
use crate::metadata::TopicPartition;
use crate::producer::{DeliveryFuture, Producer, ProducerRecord};

/// How long one poll waits; bounds how late the loop sees a stop or a refresh.
const POLL: Duration = Duration::from_millis(200);
/// Batches between the loops, at most; the byte budget is the real bound.
const CHANNEL: usize = 4096;
/// How long a send to a partition the producer does not know yet (just added) is tried.
const NEW_PARTITION_WAIT: Duration = Duration::from_secs(60);
/// Bound on one batch's decompressed size when it is sent as records.
const MAX_UNCOMPRESSED: usize = 256 << 20;

/// What [`run`] needs from the [`Mirror`](super::Mirror).
pub(super) struct Setup<'a, S> {
    pub config: &'a MirrorConfig,
    pub filter: &'a TopicFilter,
    pub skip_prefix: Option<String>,
    pub source: Arc<Admin>,
    pub target: Arc<Admin>,
    pub stats: Arc<Stats>,
    pub shutdown: S,
    /// The offset map as the checkpoint topic left it.
    pub map: OffsetMap,
    /// Where the mirror's commits say each partition resumes.
    pub resume: HashMap<TopicPartition, Resume>,
    /// The checkpoint topic's name.
    pub checkpoint: Arc<str>,
    /// `--sync-group-offsets`, if given.
    pub sync: Option<Regex>,
}

/// How the target learns of one batch.
enum Delivery {
    /// A control batch: nothing is written.
    Skipped,
    Batch(DeliveryFuture),
    /// Each record's source offset and delivery.
    Records(Vec<(i64, DeliveryFuture)>),
}

/// One batch between the loops.
struct Sent {
    tp: TopicPartition,
    base_offset: i64,
    last_offset: i64,
    records: u64,
    bytes: u64,
    delivery: Delivery,
    _permit: Option<OwnedSemaphorePermit>,
}

/// Runs both loops until `shutdown` (or a failure), then drains and commits.
pub(super) async fn run<S: Future<Output = ()> + Send>(
    setup: Setup<'_, S>,
) -> Result<(), MirrorError> {
    let c = setup.config;
    let mut source_config = c.source.clone();
    source_config.set("group.id", &c.group).set("enable.auto.commit", "false");
    if source_config.get("auto.offset.reset").is_none() {
        source_config.set("auto.offset.reset", "earliest");
    }
    // An aborted transaction's records must not become the target's committed records;
    // on a source without transactions this reads exactly what read_uncommitted would.
    if source_config.get("isolation.level").is_none() {
        source_config.set("isolation.level", "read_committed");
    }
    let consumer =
        Consumer::new(&source_config).map_err(|e| MirrorError::client("source consumer", e))?;
    let producer = Producer::new(&target_producer_config(&c.target)?)
        .map_err(|e| MirrorError::client("target producer", e))?;
    let tracker = Arc::new(Mutex::new(Tracker::new()));
    let map = Arc::new(Mutex::new(setup.map));
    let memory = Arc::new(Semaphore::new(c.max_in_flight_bytes.min(Semaphore::MAX_PERMITS)));
    let (tx, rx) = mpsc::channel(CHANNEL);
    let (stop_tx, stop) = watch::channel(false);
    let acks = tokio::spawn(ack_loop(AckLoop {
        rx,
        tracker: tracker.clone(),
        memory: memory.clone(),
        stats: setup.stats.clone(),
        admin: setup.source.clone(),
        group: c.group.clone(),
        interval: c.commit_interval,
        map: map.clone(),
        producer: producer.clone(),
        checkpoint: setup.checkpoint,
    }));
    let (last_pass, last_pass_due) = tokio::sync::oneshot::channel::<()>();
    let sync = setup.sync.map(|pattern| {
        let sync = GroupSync {
            pattern,
            own_group: c.group.clone(),
            filter: setup.filter.clone(),
            source: setup.source.clone(),
            target: setup.target.clone(),
            map: map.clone(),
            stats: setup.stats.clone(),
            busy: HashSet::new(),
        };
        tokio::spawn(sync_loop(sync, c.commit_interval, last_pass_due))
    });
    let mut fetch = Fetch {
        config: c,
        filter: setup.filter,
        skip_prefix: setup.skip_prefix,
        consumer,
        producer: producer.clone(),
        source: &setup.source,
        target: &setup.target,
        tracker,
        map,
        resume: setup.resume,
        memory,
        stats: setup.stats,
        tx,
        stop,
        targets: HashMap::new(),
        next: HashMap::new(),
        logged: HashSet::new(),
        bucket: c.max_rate.map(|r| TokenBucket::new(r, std::time::Instant::now())),
    };
    let fetched = {
        let fetching = fetch.run();
        tokio::pin!(fetching);
        let shutdown = setup.shutdown;
        tokio::pin!(shutdown);
        let mut stopping = false;
        loop {
            tokio::select! {
                r = &mut fetching => break r,
                () = &mut shutdown, if !stopping => {
                    tracing::info!("stopping: no more fetches; delivering what is in flight");
                    stopping = true;
                    stop_tx.send_replace(true);
                }
            }
        }
    };
    let Fetch { tx, mut consumer, .. } = fetch;
    drop(tx);
    producer.flush().await;
    let acked =
        acks.await.unwrap_or_else(|e| panic!("invariant: the ack loop does not panic: {e}"));
    if let Some(sync) = sync {
        let _ = last_pass.send(());
        sync.await
            .unwrap_or_else(|e| panic!("invariant: the group offset sync does not panic: {e}"));
    }
    if let Err(e) = producer.close(Duration::from_secs(5)).await {
        tracing::warn!(error = %e, "target producer closed with records undelivered");
    }
    if let Err(e) = consumer.close().await {
        tracing::debug!(error = %e, "source consumer close");
    }
    acked.and(fetched)
}

/// The target producer's properties: idempotent and acks=all, always; patient by
/// default, since a target that is down for a while is waited for, not given up on.
fn target_producer_config(
    target: &crate::config::ClientConfig,
) -> Result<crate::config::ClientConfig, MirrorError> {
    let mut config = target.clone();
    for (name, wanted) in [("enable.idempotence", "true"), ("acks", "all")] {
        match config.get(name) {
            Some(v) if !(v.eq_ignore_ascii_case(wanted) || name == "acks" && v == "-1") => {
                return Err(MirrorError::Config {
                    name: format!("target.{name}"),
                    value: v.to_string(),
                    reason: format!("the mirror needs {name}={wanted} so that nothing is lost"),
                })
            }
            _ => {
                config.set(name, wanted);
            }
        }
    }
    for (name, default) in [
        ("delivery.timeout.ms", "600000"),
        ("max.block.ms", "600000"),
        ("linger.ms", "5"),
        // New partitions of the target are seen within this.
        ("metadata.max.age.ms", "5000"),
    ] {
        if config.get(name).is_none() {
            config.set(name, default);
        }
    }
    Ok(config)
}

struct Fetch<'a> {
    config: &'a MirrorConfig,
    filter: &'a TopicFilter,
    skip_prefix: Option<String>,
    consumer: Consumer,
    producer: Producer,
    source: &'a Admin,
    target: &'a Admin,
    tracker: Arc<Mutex<Tracker>>,
    map: Arc<Mutex<OffsetMap>>,
    /// Where the mirror's commits say partitions resume (taken when first assigned).
    resume: HashMap<TopicPartition, Resume>,
    memory: Arc<Semaphore>,
    stats: Arc<Stats>,
    tx: mpsc::Sender<Sent>,
    stop: watch::Receiver<bool>,
    /// Source topic -> its name on the target, for the topics assigned.
    targets: HashMap<Arc<str>, Arc<str>>,
    /// The next source offset of each assigned partition, as the loop has sent.
    next: HashMap<TopicPartition, i64>,
    /// Partitions whose fallback to records was logged.
    logged: HashSet<TopicPartition>,
    bucket: Option<TokenBucket>,
}

impl Fetch<'_> {
    fn stopped(&self) -> bool {
        *self.stop.borrow() || self.tx.is_closed()
    }

    async fn run(&mut self) -> Result<(), MirrorError> {
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

struct AckLoop {
    rx: mpsc::Receiver<Sent>,
    tracker: Arc<Mutex<Tracker>>,
    memory: Arc<Semaphore>,
    stats: Arc<Stats>,
    admin: Arc<Admin>,
    group: String,
    interval: Duration,
    map: Arc<Mutex<OffsetMap>>,
    producer: Producer,
    checkpoint: Arc<str>,
}

/// Awaits every sent batch in send order, moves the acknowledged positions, and commits
/// them each interval and at the end. On a failed delivery it stops taking batches (the
/// fetch loop then stops too), commits what was acknowledged before, and returns it.
async fn ack_loop(mut a: AckLoop) -> Result<(), MirrorError> {
    let mut commit_at = Instant::now() + a.interval;
    let mut failure = None;
    loop {
        match tokio::time::timeout_at(commit_at, a.rx.recv()).await {
            Ok(Some(sent)) => {
                if let Err(e) = settle(&a, sent).await {
                    failure = Some(e);
                    break;
                }
            }
            Ok(None) => break,
            Err(_) => {}
        }
        if Instant::now() >= commit_at {
            if let Err(e) = commit(&a).await {
                tracing::warn!(error = %e, "commit failed; retried at the next interval");
            }
            commit_at = Instant::now() + a.interval;
        }
    }
    // Whatever waits for room or for the channel must now give up.
    a.rx.close();
    a.memory.close();
    let committed = commit(&a).await;
    match failure {
        Some(e) => Err(e),
        None => committed,
    }
}

async fn settle(a: &AckLoop, sent: Sent) -> Result<(), MirrorError> {
    let undelivered = |source| MirrorError::Delivery {
        topic: sent.tp.topic.to_string(),
        partition: sent.tp.partition,
        offset: sent.base_offset,
        source,
    };
    let next = sent.last_offset + 1;
    // The target offsets the batch's records got, as runs; `None`: not told.
    let (target, runs) = match sent.delivery {
        Delivery::Skipped => (None, Some(Vec::new())),
        Delivery::Batch(d) => {
            let first = d.await.map_err(undelivered)?.offset;
            a.stats.batches.fetch_add(1, Ordering::Relaxed);
            // Passthrough keeps the offset deltas: the last record is base + delta.
            let len = sent.last_offset - sent.base_offset + 1;
            let run = Run { source: sent.base_offset, target: first, len };
            ((first >= 0).then(|| first + len), (first >= 0).then(|| vec![run]))
        }
        Delivery::Records(ds) => {
            let mut pairs = Vec::with_capacity(ds.len());
            for (source, d) in ds {
                pairs.push((source, d.await.map_err(undelivered)?.offset));
            }
            a.stats.record_batches.fetch_add(1, Ordering::Relaxed);
            let known = pairs.iter().all(|(_, t)| *t >= 0);
            let last = pairs.last().map(|(_, t)| *t).filter(|&o| o >= 0);
            (last.map(|o| o + 1), known.then(|| Run::join(pairs)))
        }
    };
    {
        let mut map = a.map.lock().expect("lock");
        match runs {
            Some(runs) => map.mirrored(&sent.tp, &runs, next),
            None => {
                tracing::warn!(partition = %sent.tp, offset = sent.base_offset, "the target did not say where it wrote the batch: its offsets cannot be translated");
                map.unknown(&sent.tp, sent.base_offset, next);
            }
        }
    }
    let at = Position { source: next, target };
    a.tracker.lock().expect("lock").acked(&sent.tp, sent.records, at);
    a.stats.mirrored(&sent.tp.topic, sent.records, sent.bytes);
    if let Some(p) = &sent._permit {
        a.stats.in_flight_bytes.fetch_sub(p.num_permits() as u64, Ordering::Relaxed);
    }
    Ok(())
}

/// Writes the offset map's changes to the checkpoint topic, then commits the
/// acknowledged positions past the last commit (which the checkpoint now covers).
async fn commit(a: &AckLoop) -> Result<(), MirrorError> {
    let (due, changes) = {
        let due = a.tracker.lock().expect("lock").due();
        (due, a.map.lock().expect("lock").take_changes())
    };
    if !changes.is_empty() {
        if let Err(e) = checkpoint::write(&a.producer, &a.checkpoint, &changes).await {
            a.map.lock().expect("lock").unwritten(&changes);
            return Err(MirrorError::client(format!("write checkpoint topic {}", a.checkpoint), e));
        }
        a.stats.offset_syncs.fetch_add(changes.len() as u64, Ordering::Relaxed);
    }
    if due.is_empty() {
        return Ok(());
    }
    let offsets: Vec<(TopicPartition, OffsetAndMetadata)> = due
        .iter()
        .map(|(tp, at)| {
            let om = OffsetAndMetadata {
                offset: at.source,
                leader_epoch: None,
                metadata: tracker::metadata(*at),
            };
            (tp.clone(), om)
        })
        .collect();
    let outcomes = a
        .admin
        .alter_consumer_group_offsets(&a.group, &offsets)
        .await
        .map_err(|e| MirrorError::client(format!("commit offsets of group {}", a.group), e))?;
    let mut tracker = a.tracker.lock().expect("lock");
    let mut first_error = None;
    if outcomes.values().any(Result::is_ok) {
        a.stats.committed();
    }
    for (tp, at) in &due {
        match outcomes.get(tp) {
            Some(Ok(())) => tracker.committed(tp, at.source),
            Some(Err(e)) => {
                first_error
                    .get_or_insert_with(|| MirrorError::client(format!("commit {tp}"), e.clone()));
            }
            None => {}
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Passes of the group offset sync every `interval`, and a last one when `last` fires
/// (after the final commit).
async fn sync_loop(
    mut sync: GroupSync,
    interval: Duration,
    mut last: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => sync.pass().await,
            _ = &mut last => break,
        }
    }
    sync.pass().await;
}
