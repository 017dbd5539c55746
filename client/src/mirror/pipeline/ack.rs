//! The mirror's ack loop: awaits each sent batch's acknowledgement in send order,
//! extends the offset map and the tracker with it, and commits each interval and at
//! the end: the checkpoint topic first, then the source offsets it covers.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use super::{Delivery, Sent};
use crate::admin::{Admin, OffsetAndMetadata};
use crate::metadata::TopicPartition;
use crate::mirror::offset_map::{OffsetMap, Run};
use crate::mirror::tracker::{self, Position, Tracker};
use crate::mirror::{checkpoint, MirrorError, Stats};
use crate::producer::Producer;

pub(super) struct AckLoop {
    pub(super) rx: mpsc::Receiver<Sent>,
    pub(super) tracker: Arc<Mutex<Tracker>>,
    pub(super) memory: Arc<Semaphore>,
    pub(super) stats: Arc<Stats>,
    pub(super) admin: Arc<Admin>,
    pub(super) group: String,
    pub(super) interval: Duration,
    pub(super) map: Arc<Mutex<OffsetMap>>,
    pub(super) producer: Producer,
    pub(super) checkpoint: Arc<str>,
}

/// Awaits every sent batch in send order, moves the acknowledged positions, and commits
/// them each interval and at the end. On a failed delivery it stops taking batches (the
/// fetch loop then stops too), commits what was acknowledged before, and returns it.
pub(super) async fn ack_loop(mut a: AckLoop) -> Result<(), MirrorError> {
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
