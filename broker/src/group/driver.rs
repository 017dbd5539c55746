//! The task that runs the coordinator: it owns the clock, the timers, the log writes and
//! the reply channels, and feeds the state machine.
//!
//! ```text
//! handlers ──Command (bounded mpsc)──▶ driver ──step(input, now)──▶ GroupMachine
//!    ▲                                  │  ◀──────── outputs ─────────┘
//!    └──────── oneshot reply ◀──────────┤  Reply     → the waiting handler
//!                                       │  SetTimer  → the timer map (replace)
//!                                       │  Write     → queue ─▶ one append at a time on a
//!                                       │               blocking thread, many writes per
//!                                       │               append (one sync in durable mode)
//! ```
//!
//! Invariants: appends happen one at a time in the order the machine issued the writes,
//! so completions come back in that order; every request gets its reply through its
//! oneshot (a dropped receiver only means the client left). The log cleaner compacts the
//! log, as any compacted topic's ([`crate::internal_log`]); the driver only appends.
//! A write that panics stops the driver ([`crate::blocking`] resumes the
//! panic here): the waiting requests, and every one after, see the coordinator stopped
//! (COORDINATOR_NOT_AVAILABLE) rather than a machine running on over a half-done write.
//! The command channel is bounded; the write queue holds at most one write per request in
//! flight (a connection sends one at a time) plus timer-driven tombstones, so the
//! connection limit bounds it.
//!
//! Shutdown: when the broker's shutdown token fires, waiting JoinGroups and SyncGroups
//! are answered (NOT_COORDINATOR) so connections can drain; other requests are still
//! served. [`Command::Stop`], sent after the connections drained, makes the driver finish
//! the writes it has and exit before partitions are closed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::pending;
use std::sync::Arc;
use std::time::Duration;

use sluice_protocol::error_code::ErrorCode;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::request::{GroupReply, GroupRequest};
use super::state::{GroupConfig, GroupMachine, Input, LogRecord, Output, TimerKey};
use super::store::{LoadStats, OffsetsLog};
use super::types::{Token, WriteId};
use crate::blocking::{self, Blocking, OrLog};
use crate::error::storage_error_code;
use crate::storage::{now_ms, StorageError};

/// Most bytes of records one append carries when writes queue up.
const MAX_APPEND_BYTES: usize = 4 << 20;

/// What the handle sends the driver.
#[derive(Debug)]
pub(super) enum Command {
    /// A request and where to send its reply.
    Request { request: GroupRequest, reply: oneshot::Sender<GroupReply> },
    /// Finish the writes in hand and exit; acknowledged when done.
    Stop(oneshot::Sender<()>),
    /// These topics were deleted ([`Input::TopicsDeleted`]).
    TopicsDeleted(Vec<String>),
}

/// An append of these writes together, and how it ended.
type JobHandle = Blocking<(Vec<WriteId>, Result<(), ErrorCode>)>;
type Loaded = (GroupMachine, Result<LoadStats, StorageError>);

/// Timers by key (a later set replaces the deadline) and by deadline.
#[derive(Debug, Default)]
struct Timers {
    by_key: HashMap<TimerKey, (i64, u64)>,
    by_time: BTreeMap<(i64, u64), TimerKey>,
    seq: u64,
}

impl Timers {
    fn set(&mut self, key: TimerKey, at: i64) {
        self.seq += 1;
        if let Some(old) = self.by_key.insert(key.clone(), (at, self.seq)) {
            self.by_time.remove(&old);
        }
        self.by_time.insert((at, self.seq), key);
    }

    fn next(&self) -> Option<i64> {
        self.by_time.keys().next().map(|(at, _)| *at)
    }

    fn pop_due(&mut self, now: i64) -> Option<TimerKey> {
        let (&(at, seq), _) = self.by_time.iter().next()?;
        if at > now {
            return None;
        }
        let key = self.by_time.remove(&(at, seq)).expect("invariant: just seen");
        self.by_key.remove(&key);
        Some(key)
    }
}

struct Driver {
    machine: GroupMachine,
    log: Arc<OffsetsLog>,
    waiting: HashMap<Token, oneshot::Sender<GroupReply>>,
    next_token: Token,
    timers: Timers,
    queue: VecDeque<(WriteId, Vec<LogRecord>)>,
    closing: bool,
}

/// Runs the coordinator until [`Command::Stop`] (or until every handle is gone).
pub(super) async fn run(
    log: Arc<OffsetsLog>,
    config: GroupConfig,
    mut commands: mpsc::Receiver<Command>,
    shutdown: CancellationToken,
) {
    let seed = uuid::Uuid::new_v4().as_u128() as u64;
    let mut d = Driver {
        machine: GroupMachine::new(config.clone(), seed),
        log: Arc::clone(&log),
        waiting: HashMap::new(),
        next_token: 0,
        timers: Timers::default(),
        queue: VecDeque::new(),
        closing: false,
    };
    let mut loader: Option<OrLog<Loaded>> = Some(
        blocking::run("load __consumer_offsets", move || {
            let mut c = GroupMachine::new(config, seed);
            let stats = log.load_into(&mut c);
            (c, stats)
        })
        .or_log(),
    );
    let mut job: Option<JobHandle> = None;
    let mut stop: Option<oneshot::Sender<()>> = None;
    let mut stopping = false;
    // Topics deleted while the log loads: applied to the loaded state, not the placeholder.
    let mut deleted_while_loading: Vec<String> = Vec::new();
    loop {
        if job.is_none() {
            job = d.next_append();
        }
        if stopping && job.is_none() {
            break;
        }
        let next_timer = d.timers.next();
        tokio::select! {
            command = commands.recv(), if !stopping => match command {
                Some(Command::Request { request, reply }) => d.request(request, reply),
                Some(Command::TopicsDeleted(topics)) if loader.is_some() => {
                    deleted_while_loading.extend(topics);
                }
                Some(Command::TopicsDeleted(topics)) => d.step(Input::TopicsDeleted(topics)),
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
                if !deleted_while_loading.is_empty() {
                    d.step(Input::TopicsDeleted(std::mem::take(&mut deleted_while_loading)));
                }
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
            () = sleep_until(next_timer) => d.fire_timers(),
            () = shutdown.cancelled(), if !d.closing => {
                d.closing = true;
                d.step(Input::Shutdown);
            }
        }
    }
    if let Some(done) = stop {
        let _ = done.send(());
    }
}

/// Sleeps until `at` (ms since the epoch); forever for `None`.
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
        for o in outputs {
            match o {
                Output::Reply { token, reply } => {
                    if let Some(tx) = self.waiting.remove(&token) {
                        // A closed receiver: the client went away; nothing to do.
                        let _ = tx.send(reply);
                    }
                }
                Output::SetTimer { key, at } => self.timers.set(key, at),
                Output::Write { id, records } => self.queue.push_back((id, records)),
            }
        }
    }

    fn request(&mut self, request: GroupRequest, reply: oneshot::Sender<GroupReply>) {
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
                    live_records = machine.live_records(),
                    "group coordinator loaded __consumer_offsets"
                );
                self.machine = machine;
                let outputs = self.machine.finish_loading(now_ms());
                self.apply(outputs);
                if self.closing {
                    self.step(Input::Shutdown);
                }
            }
            // Serving without the log would hand out no offsets and make every consumer
            // reset: stay unavailable (COORDINATOR_LOAD_IN_PROGRESS) instead.
            Some((_, Err(e))) => {
                tracing::error!(error = %e, "cannot load __consumer_offsets; groups stay unavailable")
            }
            None => {}
        }
    }

    fn fire_timers(&mut self) {
        let now = now_ms();
        while let Some(key) = self.timers.pop_due(now) {
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
        while let Some((id, records)) = self.queue.pop_front() {
            bytes += records
                .iter()
                .map(|r| r.key.len() + r.value.as_ref().map_or(0, |v| v.len()))
                .sum::<usize>();
            ids.push(id);
            writes.push(records);
            if bytes >= MAX_APPEND_BYTES {
                break;
            }
        }
        let log = Arc::clone(&self.log);
        Some(blocking::run("__consumer_offsets write", move || {
            let result = log.append(&writes, now_ms()).map_err(|e| storage_error_code(&e));
            (ids, result)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::group::request::{CommitRequest, OffsetToCommit};
    use crate::group::types::TopicPartition;
    use crate::topics::{TopicDefaults, Topics};

    fn commit(partition: i32, offset: i64) -> GroupRequest {
        GroupRequest::Commit(CommitRequest {
            group_id: format!("g{}", partition % 3),
            generation: -1,
            member_id: String::new(),
            instance_id: None,
            retention_ms: -1,
            offsets: vec![OffsetToCommit {
                partition: TopicPartition { topic: "t".into(), partition },
                offset,
                leader_epoch: -1,
                commit_timestamp: -1,
                metadata: None,
            }],
        })
    }

    #[tokio::test]
    async fn the_driver_appends_each_commit_and_stops_after_its_writes() {
        let dir = tempfile::tempdir().unwrap();
        let defaults = TopicDefaults::from_config(&Config::default());
        let topics = Topics::load(dir.path(), defaults.clone()).unwrap();
        let log = Arc::new(OffsetsLog::open(&topics).unwrap());
        let (tx, rx) = mpsc::channel(16);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(Arc::clone(&log), GroupConfig::default(), rx, shutdown));
        for offset in 0..400 {
            // Until the (empty) log is loaded, commits are refused as Kafka does.
            loop {
                let (reply, answer) = oneshot::channel();
                let request = commit((offset % 6) as i32, offset);
                tx.send(Command::Request { request, reply }).await.unwrap();
                match answer.await.unwrap() {
                    GroupReply::Commit(r) if r[0] == ErrorCode::COORDINATOR_LOAD_IN_PROGRESS => {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    GroupReply::Commit(r) => {
                        assert_eq!(r[0], ErrorCode::NONE);
                        break;
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        // The driver never rewrites the log (the cleaner compacts it): one record a commit.
        assert_eq!(log.records(), 400);
        let (done, stopped) = oneshot::channel();
        tx.send(Command::Stop(done)).await.unwrap();
        stopped.await.unwrap();
        task.await.unwrap();
        let mut reloaded = GroupMachine::new(GroupConfig::default(), 1);
        log.load_into(&mut reloaded).unwrap();
        for partition in 0..6 {
            let g = reloaded.group(&format!("g{}", partition % 3)).unwrap();
            let tp = TopicPartition { topic: "t".into(), partition };
            let last = (0..400).filter(|o| o % 6 == i64::from(partition)).max().unwrap();
            assert_eq!(g.offsets[&tp].offset, last);
        }
        topics.close_all();
    }

    #[test]
    fn timers_replace_and_pop_in_deadline_order() {
        let mut t = Timers::default();
        t.set(TimerKey::OffsetExpiry, 50);
        t.set(TimerKey::Join("a".into()), 10);
        t.set(TimerKey::Join("a".into()), 30);
        t.set(TimerKey::Sync("b".into()), 20);
        assert_eq!(t.next(), Some(20));
        assert_eq!(t.pop_due(25), Some(TimerKey::Sync("b".into())));
        assert_eq!(t.pop_due(25), None, "a's first deadline was replaced");
        assert_eq!(t.pop_due(60), Some(TimerKey::Join("a".into())));
        assert_eq!(t.pop_due(60), Some(TimerKey::OffsetExpiry));
        assert_eq!(t.next(), None);
    }
}
