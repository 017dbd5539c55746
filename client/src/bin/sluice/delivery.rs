//! What became of sent records: a task that waits for their acknowledgements and hands
//! each outcome, with its latency from send to acknowledgement, to an [`Outcomes`].
//!
//! Cheap enough for `perf produce` to keep up with the library: the sending loop pays a
//! clock read and a `Vec` push per record, and hands records over in chunks of
//! [`CHUNK`] (or sooner, once the oldest waited [`CHUNK_AGE`]), so the channel costs per
//! chunk, not per record. The task keeps one queue per partition and polls only each
//! queue's head: a partition's records are acknowledged in order, so a head that is not
//! acknowledged means none behind it is, and all records of a batch share one
//! completion, so the rest of the batch is ready at once.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use sluice_client::producer::{DeliveryFuture, RecordMetadata};
use sluice_client::ClientError;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Records handed to the task at once.
const CHUNK: usize = 256;
/// The longest a record waits in a chunk before the chunk goes anyway: an acknowledgement
/// can only be seen, and its latency measured, once the task has the record.
const CHUNK_AGE: Duration = Duration::from_millis(1);
/// Chunks in flight to the task: bounded, so a stalled task slows the sender.
const CHANNEL: usize = 1024;

/// What a command does with each outcome.
pub trait Outcomes: Send + 'static {
    /// `count` more records were sent.
    fn sent(&mut self, count: usize);
    /// A record of `bytes` bytes was settled `latency` after its send, at `now`.
    fn settled(
        &mut self,
        latency: Duration,
        bytes: usize,
        result: Result<RecordMetadata, ClientError>,
        now: Instant,
    );
    /// Called every tick interval given to [`Tracker::start`] (a live progress line).
    fn tick(&mut self, now: Instant);
}

/// One sent record.
struct Pending {
    sent: Instant,
    bytes: usize,
    delivery: DeliveryFuture,
}

/// The sending side: collects records and hands them to the task.
pub struct Tracker<O> {
    chunk: Vec<Pending>,
    tx: mpsc::Sender<Vec<Pending>>,
    task: JoinHandle<O>,
}

impl<O: Outcomes> Tracker<O> {
    /// Starts the task; `tick` is how often [`Outcomes::tick`] is called, if at all.
    pub fn start(outcomes: O, tick: Option<Duration>) -> Tracker<O> {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let task = tokio::spawn(collect(rx, outcomes, tick));
        Tracker { chunk: Vec::with_capacity(CHUNK), tx, task }
    }

    /// Tracks a record sent at `sent`.
    pub async fn push(&mut self, sent: Instant, bytes: usize, delivery: DeliveryFuture) {
        self.chunk.push(Pending { sent, bytes, delivery });
        if self.chunk.len() >= CHUNK || sent.duration_since(self.chunk[0].sent) >= CHUNK_AGE {
            self.flush().await;
        }
    }

    /// Hands what was pushed to the task now (before the sender waits for something).
    pub async fn flush(&mut self) {
        if self.chunk.is_empty() {
            return;
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        // The task ends only when the channel closes, which only `finish` does.
        let _ = self.tx.send(chunk).await;
    }

    /// Waits until every record pushed is settled; returns the outcomes.
    ///
    /// # Errors
    /// If the task panicked.
    pub async fn finish(mut self) -> anyhow::Result<O> {
        self.flush().await;
        drop(self.tx);
        Ok(self.task.await?)
    }
}

/// The task: receives chunks, polls each partition's oldest record, ticks.
async fn collect<O: Outcomes>(
    mut rx: mpsc::Receiver<Vec<Pending>>,
    mut outcomes: O,
    tick: Option<Duration>,
) -> O {
    let mut queues: Vec<VecDeque<Pending>> = Vec::new();
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
                    outcomes.sent(chunk.len());
                    waiting += chunk.len();
                    for p in chunk {
                        let partition = usize::try_from(p.delivery.partition()).unwrap_or(0);
                        if queues.len() <= partition {
                            queues.resize_with(partition + 1, VecDeque::new);
                        }
                        queues[partition].push_back(p);
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
                let now = *now.get_or_insert_with(Instant::now);
                let p = queue.pop_front().expect("the head was just polled");
                waiting -= 1;
                outcomes.settled(now.saturating_duration_since(p.sent), p.bytes, result, now);
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
