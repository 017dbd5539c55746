//! What became of sent records: a task that waits for their acknowledgements and hands
//! each outcome, with its latency from send to acknowledgement, to an [`Outcomes`].
//!
//! Cheap enough for `perf produce` to keep up with the library. All records of a batch
//! share one completion, so the sending side keeps one [`DeliveryFuture`] per run of
//! records that went to the same batch (a [`Group`]) and drops the others where they were
//! made: dropping them on the task's thread would bounce their reference counts between
//! cores. The sending side pays, per record, a pointer comparison and a 16-byte push, and
//! hands groups over in chunks of up to [`CHUNK`] records (or sooner, once the oldest
//! waited [`CHUNK_AGE_MS`]), so the channel and the task's wake-ups cost per chunk. The
//! task keeps one queue of groups per partition and polls only each queue's head: a
//! partition's batches are acknowledged in order, so a head that is not acknowledged
//! means none behind it is. (Without idempotence a retried batch can be acknowledged
//! after later ones; those are then counted when it is, their latency including the
//! wait.)
//!
//! Times are wall-clock milliseconds, as Kafka's perf tool measures them.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use sluice_client::producer::DeliveryFuture;
use sluice_client::ClientError;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::format::time::now_ms;

/// Records handed to the task at once, at most.
const CHUNK: usize = 1024;
/// The longest a record waits before its chunk goes anyway: an acknowledgement can only
/// be seen, and its latency measured, once the task has the record.
const CHUNK_AGE_MS: i64 = 1;
/// Chunks in flight to the task: bounded, so a stalled task slows the sender.
const CHANNEL: usize = 256;

/// What a command does with each outcome.
pub trait Outcomes: Send + 'static {
    /// `count` more records were sent.
    fn sent(&mut self, count: usize);
    /// A record of `bytes` bytes was settled `latency_ms` after its send, at `now_ms`;
    /// `steady` if it was pushed after [`Tracker::begin_steady_state`].
    fn settled(
        &mut self,
        latency_ms: i64,
        bytes: usize,
        outcome: Result<(), &ClientError>,
        now_ms: i64,
        steady: bool,
    );
    /// Called every tick interval given to [`Tracker::start`] (a live progress line).
    fn tick(&mut self, now: Instant);
}

/// Records of one partition sent one after another into the same batch: one delivery
/// stands for them all.
struct Group {
    delivery: DeliveryFuture,
    /// Each record's send time (ms) and size.
    records: Vec<(i64, u32)>,
    /// Pushed after [`Tracker::begin_steady_state`].
    steady: bool,
}

/// The sending side: groups records and hands them to the task.
pub struct Tracker<O> {
    /// The group still open, by partition.
    open: Vec<Option<Group>>,
    /// Groups closed since the last hand-over.
    closed: Vec<Group>,
    /// Records since the last hand-over, and when the first of them was sent.
    pending: usize,
    oldest_ms: i64,
    /// Records pushed now are in the steady state (after the warm-up).
    steady: bool,
    tx: mpsc::Sender<Vec<Group>>,
    task: JoinHandle<O>,
}

impl<O: Outcomes> Tracker<O> {
    /// Starts the task; `tick` is how often [`Outcomes::tick`] is called, if at all.
    pub fn start(outcomes: O, tick: Option<Duration>) -> Tracker<O> {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let task = tokio::spawn(collect(rx, outcomes, tick));
        Tracker {
            open: Vec::new(),
            closed: Vec::new(),
            pending: 0,
            oldest_ms: 0,
            steady: false,
            tx,
            task,
        }
    }

    /// Tracks a record of `bytes` bytes sent at `sent_ms`. Returns whether the chunk is
    /// due: the caller then awaits [`Self::flush`]. (Not async itself: a future made per
    /// record, and the copying of its state, cost a measurable share of a record's send.)
    #[must_use = "a due chunk must be flushed"]
    pub fn push(&mut self, sent_ms: i64, bytes: usize, delivery: DeliveryFuture) -> bool {
        let partition = usize::try_from(delivery.partition()).unwrap_or(0);
        if self.open.len() <= partition {
            self.open.resize_with(partition + 1, || None);
        }
        let record = (sent_ms, u32::try_from(bytes).unwrap_or(u32::MAX));
        match &mut self.open[partition] {
            Some(group) if group.delivery.same_batch(&delivery) => group.records.push(record),
            open => {
                let group = Group { delivery, records: vec![record], steady: self.steady };
                if let Some(done) = open.replace(group) {
                    self.closed.push(done);
                }
            }
        }
        if self.pending == 0 {
            self.oldest_ms = sent_ms;
        }
        self.pending += 1;
        self.pending >= CHUNK || sent_ms - self.oldest_ms >= CHUNK_AGE_MS
    }

    /// Marks the records pushed from now on as the steady state (Kafka's perf tool's
    /// `--warmup-records`): the groups open so far are closed, so no group mixes the two.
    pub fn begin_steady_state(&mut self) {
        self.closed.extend(self.open.iter_mut().filter_map(Option::take));
        self.steady = true;
    }

    /// Hands what was pushed to the task now (before the sender waits for something).
    pub async fn flush(&mut self) {
        if self.pending == 0 {
            return;
        }
        let mut chunk = std::mem::take(&mut self.closed);
        chunk.extend(self.open.iter_mut().filter_map(Option::take));
        self.pending = 0;
        // The task ends only when the channel closes, which only `finish` does.
        let _ = self.tx.send(chunk).await;
    }

    /// Waits until every record pushed is settled; returns the outcomes.
    ///
    /// # Panics
    /// With the task's panic, if it panicked.
    pub async fn finish(mut self) -> O {
        self.flush().await;
        drop(self.tx);
        match self.task.await {
            Ok(outcomes) => outcomes,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

/// The task: receives groups, polls each partition's oldest group, ticks.
async fn collect<O: Outcomes>(
    mut rx: mpsc::Receiver<Vec<Group>>,
    mut outcomes: O,
    tick: Option<Duration>,
) -> O {
    let mut queues: Vec<VecDeque<Group>> = Vec::new();
    let mut waiting = 0usize;
    let mut open = true;
    let mut ticker = tick.map(|every| {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        ticker
    });
    std::future::poll_fn(|cx| {
        while open {
            match rx.poll_recv(cx) {
                Poll::Ready(Some(chunk)) => {
                    for group in chunk {
                        outcomes.sent(group.records.len());
                        waiting += 1;
                        let partition = usize::try_from(group.delivery.partition()).unwrap_or(0);
                        if queues.len() <= partition {
                            queues.resize_with(partition + 1, VecDeque::new);
                        }
                        queues[partition].push_back(group);
                    }
                }
                Poll::Ready(None) => open = false,
                Poll::Pending => break,
            }
        }
        let mut now = None;
        for queue in &mut queues {
            while let Some(head) = queue.front_mut() {
                let Poll::Ready(result) = Pin::new(&mut head.delivery).poll(cx) else { break };
                let now = *now.get_or_insert_with(now_ms);
                let outcome = result.as_ref().map(|_| ());
                for &(sent_ms, bytes) in &head.records {
                    outcomes.settled(now - sent_ms, bytes as usize, outcome, now, head.steady);
                }
                queue.pop_front();
                waiting -= 1;
            }
        }
        if let Some(ticker) = ticker.as_mut() {
            if ticker.poll_tick(cx).is_ready() {
                outcomes.tick(Instant::now());
                // Polled again so that the next tick wakes this task.
                let _ = ticker.poll_tick(cx);
            }
        }
        if !open && waiting == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outcomes
}
