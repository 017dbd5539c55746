//! The group coordinator: Kafka's classic consumer group protocol and committed offsets,
//! for every group (a single node coordinates them all).
//!
//! - [`state`]: the coordinator as a sans-I/O state machine (`step(input, now) ->
//!   outputs`), answering the [`request`] types. Its behaviour is split by concern:
//!   [`rebalance`] (JoinGroup and the join phase), [`assignment`] (SyncGroup),
//!   [`liveness`] (Heartbeat, LeaveGroup, expiry of members) and [`offsets`] (commits,
//!   fetches, deletion, expiry, listing); [`membership`] keeps one group's bookkeeping.
//! - [`records`]: keys and values of `__consumer_offsets` in Kafka's schemas.
//! - [`store`]: the internal topic on the storage engine: loading, appends, compaction.
//! - `driver`: the task that owns the clock, timers and log writes and runs the machine.
//! - [`GroupCoordinator`]: the handle the request handlers in `api/` call.
//!
//! Invariants: the driver is the only writer of `__consumer_offsets` and the only owner
//! of the state machine; handlers reach it through a bounded channel and wait on a
//! oneshot for their reply, so the machine itself never blocks and never locks.
//!
//! The driver runs on a thread of its own (a current-thread runtime): a step is O(n log n)
//! in its request's elements, and a request of 2^18 elements must not hold up an
//! async worker that other clients' connections run on.

pub mod assignment;
mod driver;
pub mod liveness;
pub mod membership;
pub mod offsets;
pub mod rebalance;
pub mod records;
pub mod request;
pub mod state;
pub mod store;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, PoisonError};

use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::config::Config;
use crate::topics::TopicError;
use driver::Command;
use request::{Reply, Request};
use state::GroupConfig;
use store::OffsetsLog;

/// Requests queued for the driver before handlers wait to send.
const QUEUE: usize = 1024;
/// Log records after which a compaction is considered (see [`store`]).
const COMPACTION_MIN_RECORDS: i64 = 16_384;

/// Elements of a request's list past which a handler reads it on a blocking thread.
const OFF_WORKER_ELEMENTS: usize = 4096;

/// `read(list)`, on a blocking thread when the list is long enough to hold up an async
/// worker (JoinGroup's protocols, SyncGroup's assignments: up to 2^18).
pub async fn off_worker_if<T, R>(list: Vec<T>, read: impl FnOnce(Vec<T>) -> R + Send + 'static) -> R
where
    T: Send + 'static,
    R: Send + 'static,
{
    if list.len() <= OFF_WORKER_ELEMENTS {
        return read(list);
    }
    match tokio::task::spawn_blocking(move || read(list)).await {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Why the coordinator cannot serve.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GroupError {
    /// The internal topic could not be opened or created.
    #[error("cannot open __consumer_offsets: {0}")]
    Topic(#[from] TopicError),
    /// The internal topic exists without a partition 0.
    #[error("__consumer_offsets has no partition 0")]
    NoPartition,
    /// The coordinator task is not running (not started yet, or stopped).
    #[error("the group coordinator is not running")]
    Stopped,
}

/// What the driver task needs, kept until [`GroupCoordinator::run`] takes it.
#[derive(Debug)]
struct DriverParts {
    config: GroupConfig,
    commands: mpsc::Receiver<Command>,
}

/// The handle to the coordinator that request handlers use.
#[derive(Debug)]
pub struct GroupCoordinator {
    commands: mpsc::Sender<Command>,
    parts: Mutex<Option<DriverParts>>,
}

impl GroupCoordinator {
    /// A coordinator that serves once [`Self::run`] runs; requests sent before wait.
    pub fn new(config: &Config) -> GroupCoordinator {
        let group_config = GroupConfig {
            initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms as i64,
            offsets_retention_ms: config.offsets_retention_ms,
            offsets_retention_check_interval_ms: config.offsets_retention_check_interval_ms,
            ..GroupConfig::default()
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let parts = DriverParts { config: group_config, commands: rx };
        GroupCoordinator { commands: tx, parts: Mutex::new(Some(parts)) }
    }

    /// Runs the coordinator until [`Self::stop`]: opens `__consumer_offsets` (creating it
    /// on first start), loads it, then serves from the coordinator's own thread. Returns
    /// at once if it already ran; if the topic cannot be opened, logs why and every
    /// request fails with COORDINATOR_NOT_AVAILABLE.
    pub async fn run(&self, broker: Arc<Broker>, shutdown: CancellationToken) {
        let parts = self.parts.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(p) = parts else { return };
        let opened = tokio::task::spawn_blocking(move || OffsetsLog::open(&broker.topics)).await;
        match opened {
            Ok(Ok(log)) => {
                let log = Arc::new(log);
                let driver =
                    driver::run(log, p.config, COMPACTION_MIN_RECORDS, p.commands, shutdown);
                let (done, finished) = oneshot::channel();
                let thread =
                    std::thread::Builder::new().name("sluice-groups".into()).spawn(move || {
                        match tokio::runtime::Builder::new_current_thread().enable_time().build() {
                            Ok(runtime) => runtime.block_on(driver),
                            Err(e) => tracing::error!(error = %e, "group coordinator cannot start"),
                        }
                        let _ = done.send(());
                    });
                match thread {
                    Ok(_) => {
                        let _ = finished.await;
                    }
                    Err(e) => tracing::error!(error = %e, "group coordinator cannot start"),
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "group coordinator cannot start"),
            Err(e) => tracing::error!(error = %e, "group coordinator cannot start"),
        }
    }

    /// Sends a request and waits for its reply (a JoinGroup may wait for a whole join
    /// phase).
    ///
    /// # Errors
    /// [`GroupError::Stopped`] when the coordinator does not run.
    ///
    /// # Cancel safety
    /// Dropping the future drops the reply; the coordinator's state change (a join, a
    /// commit) may still happen, as when a client disconnects.
    pub async fn call(&self, request: Request) -> Result<Reply, GroupError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Request(request, tx)).await.map_err(|_| GroupError::Stopped)?;
        rx.await.map_err(|_| GroupError::Stopped)
    }

    /// Tells the coordinator that topics were deleted, so their committed offsets go.
    /// Call it from a blocking thread (it waits while the coordinator's queue is full).
    pub fn topics_deleted_blocking(&self, topics: Vec<String>) {
        if !topics.is_empty() {
            // A coordinator that is not running has no offsets to remove.
            let _ = self.commands.blocking_send(Command::TopicsDeleted(topics));
        }
    }

    /// Makes the coordinator finish its writes and exit; returns once it has (at once if
    /// it is not running).
    pub async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Stop(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}
