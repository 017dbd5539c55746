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
//!
//! Files: this one starts, stops and drains the loops; `fetch.rs` is the fetch loop,
//! `ack.rs` the ack loop.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use regex::Regex;

use super::group_offsets::GroupSync;
use super::offset_map::{OffsetMap, Resume};
use super::rate::TokenBucket;
use super::tracker::Tracker;
use super::{MirrorConfig, MirrorError, Stats, TopicFilter};
use crate::admin::Admin;
use crate::consumer::Consumer;
use crate::metadata::TopicPartition;
use crate::producer::{DeliveryFuture, Producer};

mod ack;
mod fetch;

use ack::{ack_loop, AckLoop};
use fetch::Fetch;

/// Batches between the loops, at most; the byte budget is the real bound.
const CHANNEL: usize = 4096;

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
