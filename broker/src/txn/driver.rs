//! The task that runs the transaction coordinator: it owns the clock, the timers, the
//! writes to `__transaction_state`, the completions (markers, offsets) and the reply
//! channels, and feeds the state machine.
//!
//! ```text
//! handlers ──Command (bounded mpsc)──▶ driver ──step(input, now)──▶ TxnMachine
//!    ▲                                  │  ◀──────── outputs ─────────┘
//!    └──────── oneshot reply ◀──────────┤  Reply     → the waiting handler
//!                                       │  SetTimer  → the timer map
//!                                       │  Index     → the shared verification index
//!                                       │  Write     → queue ─▶ one append at a time on a
//!                                       │               blocking thread
//!                                       │  Complete  → a task: markers (blocking, retried
//!                                       │               with backoff), then offsets to the
//!                                       │               group coordinator ─▶ Completed
//! ```
//!
//! Invariants: appends happen one at a time in the order the machine issued them; a
//! marker write that fails is retried, never dropped (a partition whose topic is gone is
//! skipped); a completion cut short by a stop is redone at the next start from the
//! Prepare* state in the log (a second marker for the same transaction is harmless:
//! consumers skip a marker of a producer with no open transaction). The log cleaner
//! compacts the log ([`crate::internal_log`]); the driver only appends. A write that panics stops the driver ([`crate::blocking`] resumes the panic here): the waiting
//! requests, and every one after, see the coordinator stopped (COORDINATOR_NOT_AVAILABLE)
//! rather than a machine running on over a half-done write.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::pending;
use std::sync::Arc;
use std::time::Duration;

use sluice_protocol::error_code::ErrorCode;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::index::TxnIndex;
use super::metadata::PendingOffset;
use super::request::{TxnReply, TxnRequest};
use super::state::{
    Completion, Input, LogRecord, Output, ProducerIdSource, TimerKey, Token, TxnConfig, TxnMachine,
    WriteId,
};
use super::store::{LoadStats, TxnLog};
use crate::blocking::{self, Blocking, OrLog};
use crate::error::storage_error_code;
use crate::group::types::TopicPartition;
use crate::storage::{now_ms, StorageError};

/// Most bytes of records one append carries when writes queue up.
const MAX_APPEND_BYTES: usize = 4 << 20;
/// First wait before a failed marker write or offset application is retried.
const RETRY_MIN: Duration = Duration::from_millis(50);
/// Longest wait between retries.
const RETRY_MAX: Duration = Duration::from_secs(5);

/// A COMMIT or ABORT marker for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Commit (else abort).
    pub commit: bool,
}

/// What a marker write came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerWritten {
    /// It is in the partition's log.
    Written,
    /// The partition (or its topic) no longer exists: nothing to mark.
    Gone,
}

/// Writes transaction markers to partitions. Blocking: the driver calls it on a blocking
/// thread.
pub trait MarkerWriter: Send + Sync + std::fmt::Debug + 'static {
    /// Writes `marker` to `partition`.
    ///
    /// # Errors
    /// A storage error; the driver retries with backoff.
    fn write_marker(
        &self,
        partition: &TopicPartition,
        marker: Marker,
    ) -> Result<MarkerWritten, String>;
}

/// Commits a committed transaction's offsets to their group (the group coordinator, as
/// an ordinary commit without the generation check).
pub trait OffsetApplier: Send + Sync + std::fmt::Debug + 'static {
    /// Commits `offsets` to `group`.
    ///
    /// # Errors
    /// The coordinator cannot take them now; the driver retries with backoff.
    fn apply(
        &self,
        group: String,
        offsets: Vec<(TopicPartition, PendingOffset)>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + '_>>;
}

/// What the handle sends the driver.
#[derive(Debug)]
pub(super) enum Command {
    /// A request and where to send its reply.
    Request {
        /// The request.
        request: TxnRequest,
        /// Where its reply goes.
        reply: oneshot::Sender<TxnReply>,
    },
    /// Finish the writes in hand and exit; acknowledged when done.
    Stop(oneshot::Sender<()>),
}

/// Everything the driver runs with.
#[derive(Debug)]
pub(super) struct DriverDeps {
    pub log: Arc<TxnLog>,
    pub config: TxnConfig,
    pub ids: Arc<dyn ProducerIdSource>,
    pub markers: Arc<dyn MarkerWriter>,
    pub offsets: Arc<dyn OffsetApplier>,
    pub index: Arc<TxnIndex>,
}

/// An append of these writes together, and how it ended.
type JobHandle = Blocking<(Vec<WriteId>, Result<(), ErrorCode>)>;
type Loaded = (TxnMachine, Result<LoadStats, StorageError>);

struct Driver {
    machine: TxnMachine,
    deps: DriverDeps,
    waiting: HashMap<Token, oneshot::Sender<TxnReply>>,
    next_token: Token,
    timers: BTreeMap<TimerKey, i64>,
    queue: VecDeque<(WriteId, LogRecord)>,
    completions: JoinSet<Option<Input>>,
    stop_completions: CancellationToken,
}

/// Runs the coordinator until [`Command::Stop`] (or until every handle is gone).
/// `first`: a command received before the driver started (the one that made the
/// coordinator create its topic).
pub(super) async fn run(
    deps: DriverDeps,
    mut commands: mpsc::Receiver<Command>,
    first: Option<Command>,
) {
    let log = Arc::clone(&deps.log);
    let (config, ids) = (deps.config.clone(), Arc::clone(&deps.ids));
    let mut d = Driver {
        machine: TxnMachine::new(deps.config.clone(), Arc::clone(&deps.ids)),
        deps,
        waiting: HashMap::new(),
        next_token: 0,
        timers: BTreeMap::new(),
        queue: VecDeque::new(),
        completions: JoinSet::new(),
        stop_completions: CancellationToken::new(),
    };
    let mut loader: Option<OrLog<Loaded>> = Some(
        blocking::run("load __transaction_state", move || {
            let mut c = TxnMachine::new(config, ids);
            let stats = log.load_into(&mut c);
            (c, stats)
        })
        .or_log(),
    );
    let mut job: Option<JobHandle> = None;
    let mut stop: Option<oneshot::Sender<()>> = None;
    let mut stopping = false;
    match first {
        Some(Command::Request { request, reply }) => d.request(request, reply),
        Some(Command::Stop(done)) => {
            stop = Some(done);
            stopping = true;
        }
        None => {}
    }
    loop {
        if job.is_none() {
            job = d.next_append();
        }
        if stopping && job.is_none() {
            break;
        }
        let next_timer = d.timers.values().min().copied();
        tokio::select! {
            command = commands.recv(), if !stopping => match command {
                Some(Command::Request { request, reply }) => d.request(request, reply),
                Some(Command::Stop(done)) => {
                    stop = Some(done);
                    stopping = true;
                }
                None => stopping = true,
            },
            loaded = async {
                match loader.as_mut() {
                    Some(h) => h.await,
                    None => pending().await,
                }
            } => {
                loader = None;
                d.loaded(loaded);
            }
            done = async {
                match job.as_mut() {
                    Some(h) => h.await,
                    None => pending().await,
                }
            } => {
                job = None;
                let (ids, result) = done;
                for id in ids {
                    d.step(Input::Written { id, result });
                }
            }
            Some(completed) = d.completions.join_next(), if !d.completions.is_empty() => {
                match completed {
                    Ok(Some(completed)) => d.step(completed),
                    Ok(None) => {}
                    // Cancelled by a stop, or a bug: the next start redoes it from the log.
                    Err(e) if !e.is_cancelled() => {
                        tracing::error!(error = %e, "a transaction completion failed")
                    }
                    Err(_) => {}
                }
            }
            () = sleep_until(next_timer) => d.fire_timers(),
        }
    }
    // Completions cut short here are redone from their Prepare* state at the next start.
    d.stop_completions.cancel();
    while d.completions.join_next().await.is_some() {}
    if let Some(done) = stop {
        let _ = done.send(());
    }
}

async fn sleep_until(at: Option<i64>) {
    match at {
        Some(at) => {
            let ms = (at - now_ms()).max(0) as u64;
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        None => pending().await,
    }
}

impl Driver {
    fn step(&mut self, input: Input) {
        let outputs = self.machine.step(input, now_ms());
        self.apply(outputs);
    }

    fn apply(&mut self, outputs: Vec<Output>) {
        // Answers go out after the step's index updates: a client that hears its
        // AddPartitionsToTxn succeed must find the partition verified when it produces.
        let mut replies = Vec::new();
        for o in outputs {
            match o {
                Output::Reply { token, reply } => replies.push((token, reply)),
                Output::SetTimer { timer, at_ms } => {
                    self.timers.insert(timer, at_ms);
                }
                Output::Write { id, record } => self.queue.push_back((id, record)),
                Output::Index(update) => self.deps.index.apply(update),
                Output::Complete(c) => {
                    let markers = Arc::clone(&self.deps.markers);
                    let offsets = Arc::clone(&self.deps.offsets);
                    let stop = self.stop_completions.clone();
                    self.completions.spawn(complete(c, markers, offsets, stop));
                }
            }
        }
        for (token, reply) in replies {
            if let Some(tx) = self.waiting.remove(&token) {
                let _ = tx.send(reply);
            }
        }
    }

    fn request(&mut self, request: TxnRequest, reply: oneshot::Sender<TxnReply>) {
        let token = self.next_token;
        self.next_token += 1;
        self.waiting.insert(token, reply);
        self.step(Input::Request { token, request });
    }

    /// `None`: the load task failed (logged); the coordinator stays loading, unavailable.
    fn loaded(&mut self, loaded: Option<Loaded>) {
        match loaded {
            Some((machine, Ok(stats))) => {
                tracing::info!(
                    records = stats.records,
                    skipped = stats.skipped,
                    transactional_ids = machine.live_records(),
                    "transaction coordinator loaded __transaction_state"
                );
                self.machine = machine;
                let outputs = self.machine.finish_loading(now_ms());
                self.apply(outputs);
            }
            // Serving without the log could hand a producer id out twice: stay
            // unavailable (COORDINATOR_LOAD_IN_PROGRESS) instead.
            Some((_, Err(e))) => tracing::error!(
                error = %e,
                "cannot load __transaction_state; transactions stay unavailable"
            ),
            None => {}
        }
    }

    fn fire_timers(&mut self) {
        let now = now_ms();
        let due: Vec<TimerKey> =
            self.timers.iter().filter(|(_, &at)| at <= now).map(|(k, _)| *k).collect();
        for key in due {
            self.timers.remove(&key);
            self.step(Input::Timer(key));
        }
    }

    /// An append of the queued writes (up to [`MAX_APPEND_BYTES`]), if any.
    fn next_append(&mut self) -> Option<JobHandle> {
        if self.queue.is_empty() {
            return None;
        }
        let mut ids = Vec::new();
        let mut writes = Vec::new();
        let mut bytes = 0;
        while let Some((id, record)) = self.queue.pop_front() {
            bytes += record.key.len() + record.value.as_ref().map_or(0, |v| v.len());
            ids.push(id);
            writes.push(vec![record]);
            if bytes >= MAX_APPEND_BYTES {
                break;
            }
        }
        let log = Arc::clone(&self.deps.log);
        Some(blocking::run("__transaction_state write", move || {
            let result = log.append(&writes, now_ms()).map_err(|e| storage_error_code(&e));
            (ids, result)
        }))
    }
}

/// Writes the markers of a completion, then applies its offsets; returns the
/// [`Input::Completed`] that reports it. Retries each failure with backoff until it succeeds or
/// `stop` fires (`None`: the next start redoes the completion).
async fn complete(
    c: Completion,
    markers: Arc<dyn MarkerWriter>,
    offsets: Arc<dyn OffsetApplier>,
    stop: CancellationToken,
) -> Option<Input> {
    let marker =
        Marker { producer_id: c.producer_id, producer_epoch: c.producer_epoch, commit: c.commit };
    for tp in c.partitions {
        let mut wait = RETRY_MIN;
        loop {
            let (writer, partition) = (Arc::clone(&markers), tp.clone());
            let written = blocking::run("transaction marker write", move || {
                writer.write_marker(&partition, marker)
            })
            .or_log()
            .await;
            match written {
                Some(Ok(MarkerWritten::Written | MarkerWritten::Gone)) => break,
                Some(Err(e)) => tracing::warn!(
                    txn = %c.txn_id, topic = %tp.topic, partition = tp.partition, error = %e,
                    "transaction marker write failed; retrying"
                ),
                // The task failed (logged): retried as a failed write is.
                None => {}
            }
            if backoff(&stop, &mut wait).await {
                return None;
            }
        }
    }
    for (group, list) in c.offsets {
        let mut wait = RETRY_MIN;
        loop {
            match offsets.apply(group.clone(), list.clone()).await {
                Ok(()) => break,
                Err(e) => tracing::warn!(
                    txn = %c.txn_id, %group, error = %e,
                    "applying transaction offsets failed; retrying"
                ),
            }
            if backoff(&stop, &mut wait).await {
                return None;
            }
        }
    }
    Some(Input::Completed {
        txn_id: c.txn_id,
        producer_id: c.producer_id,
        producer_epoch: c.producer_epoch,
    })
}

/// Waits `wait` (then doubles it up to [`RETRY_MAX`]); true if `stop` fired first.
async fn backoff(stop: &CancellationToken, wait: &mut Duration) -> bool {
    tokio::select! {
        () = stop.cancelled() => true,
        () = tokio::time::sleep(*wait) => {
            *wait = (*wait * 2).min(RETRY_MAX);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::*;
    use crate::config::Config;
    use crate::topics::{TopicDefaults, Topics};
    use crate::txn::metadata::TxnState;
    use crate::txn::request::TxnDescription;

    #[derive(Debug, Default)]
    struct Ids(AtomicI64);
    impl ProducerIdSource for Ids {
        fn next_id(&self) -> Result<i64, ErrorCode> {
            Ok(self.0.fetch_add(1, Ordering::Relaxed))
        }
    }

    /// Fails the first `failures` writes, then records each marker.
    #[derive(Debug, Default)]
    struct FlakyMarkers {
        failures: AtomicUsize,
        written: Mutex<Vec<(TopicPartition, Marker)>>,
    }
    impl MarkerWriter for FlakyMarkers {
        fn write_marker(&self, p: &TopicPartition, m: Marker) -> Result<MarkerWritten, String> {
            if self.failures.load(Ordering::Relaxed) > 0 {
                self.failures.fetch_sub(1, Ordering::Relaxed);
                return Err("disk full".into());
            }
            if &*p.topic == "gone" {
                return Ok(MarkerWritten::Gone);
            }
            self.written.lock().unwrap().push((p.clone(), m));
            Ok(MarkerWritten::Written)
        }
    }

    /// A group and the offsets committed to it.
    type GroupCommit = (String, Vec<(TopicPartition, PendingOffset)>);

    #[derive(Debug, Default)]
    struct Applied(Mutex<Vec<GroupCommit>>);
    impl OffsetApplier for Applied {
        fn apply(
            &self,
            group: String,
            offsets: Vec<(TopicPartition, PendingOffset)>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + '_>>
        {
            self.0.lock().unwrap().push((group, offsets));
            Box::pin(async { Ok(()) })
        }
    }

    async fn ask(tx: &mpsc::Sender<Command>, r: TxnRequest) -> TxnReply {
        loop {
            let (reply, rx) = oneshot::channel();
            tx.send(Command::Request { request: r.clone(), reply }).await.unwrap();
            match rx.await.unwrap() {
                TxnReply::InitProducerId(Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)) => {}
                other => return other,
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn describe(tx: &mpsc::Sender<Command>) -> TxnDescription {
        let TxnReply::Describe(mut d) = ask(tx, TxnRequest::Describe(vec!["t".into()])).await
        else {
            panic!()
        };
        d.remove(0)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failed_marker_writes_are_retried_and_a_commit_applies_its_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let topics =
            Topics::load(dir.path(), TopicDefaults::from_config(&Config::default())).unwrap();
        let markers = Arc::new(FlakyMarkers::default());
        markers.failures.store(3, Ordering::Relaxed);
        let applied = Arc::new(Applied::default());
        let log = Arc::new(TxnLog::open(&topics).unwrap());
        let deps = DriverDeps {
            log: Arc::clone(&log),
            config: TxnConfig::default(),
            ids: Arc::new(Ids::default()),
            markers: Arc::clone(&markers) as Arc<dyn MarkerWriter>,
            offsets: Arc::clone(&applied) as Arc<dyn OffsetApplier>,
            index: Arc::new(TxnIndex::default()),
        };
        let (tx, rx) = mpsc::channel(16);
        let driver = tokio::spawn(run(deps, rx, None));
        let init =
            TxnRequest::InitProducerId { txn_id: "t".into(), timeout_ms: 60_000, expected: None };
        let TxnReply::InitProducerId(Ok((pid, epoch))) = ask(&tx, init).await else { panic!() };
        let tp = |t: &str| TopicPartition { topic: Arc::from(t), partition: 0 };
        let add = TxnRequest::AddPartitions {
            txn_id: "t".into(),
            producer_id: pid,
            epoch,
            partitions: vec![tp("a"), tp("gone")],
            verify_only: false,
        };
        assert_eq!(ask(&tx, add).await, TxnReply::AddPartitions(ErrorCode::NONE));
        let group = TxnRequest::AddOffsets {
            txn_id: "t".into(),
            producer_id: pid,
            epoch,
            group: "g".into(),
        };
        assert_eq!(ask(&tx, group).await, TxnReply::Error(ErrorCode::NONE));
        let offset = PendingOffset { offset: 3, leader_epoch: -1, metadata: String::new() };
        let commit_offsets = TxnRequest::TxnOffsetCommit {
            txn_id: "t".into(),
            producer_id: pid,
            epoch,
            group: "g".into(),
            offsets: vec![(tp("a"), offset.clone())],
        };
        assert_eq!(ask(&tx, commit_offsets).await, TxnReply::Error(ErrorCode::NONE));
        let end = TxnRequest::EndTxn { txn_id: "t".into(), producer_id: pid, epoch, commit: true };
        assert_eq!(ask(&tx, end).await, TxnReply::Error(ErrorCode::NONE));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while describe(&tx).await.state != TxnState::CompleteCommit {
            assert!(std::time::Instant::now() < deadline, "never completed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(markers.failures.load(Ordering::Relaxed), 0, "every failure was retried");
        let written = markers.written.lock().unwrap().clone();
        let marker = Marker { producer_id: pid, producer_epoch: epoch, commit: true };
        assert_eq!(written, vec![(tp("a"), marker)], "the deleted topic is skipped");
        assert_eq!(*applied.0.lock().unwrap(), vec![("g".to_string(), vec![(tp("a"), offset)])]);
        let (done, stopped) = oneshot::channel();
        tx.send(Command::Stop(done)).await.unwrap();
        stopped.await.unwrap();
        driver.await.unwrap();
        // One record per state change (the driver never rewrites the log; the cleaner does).
        assert_eq!(log.records(), 6);
        topics.close_all();
    }
}
