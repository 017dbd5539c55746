//! The coordinator as a sans-I/O state machine, in the shape of raft-rs: the driver feeds
//! it [`Input`]s with the current time (`step(input, now)`) and carries out the
//! [`Output`]s it returns: replies to send (keyed by the request's [`Token`]), timers to
//! set ([`TimerKey`], a later set replaces an earlier one) and records to append to
//! `__consumer_offsets` ([`Output::Write`], answered by [`Input::Written`]). No clock, no
//! channel, no file: every test of it is deterministic.
//!
//! Invariants:
//! - Every request token gets exactly one reply: at once, when its join or sync phase
//!   ends, when its write completes, or at shutdown.
//! - State that the log must back (committed offsets, a completed assignment) changes only
//!   when its write completed; removals (deleted groups and offsets) change at once and
//!   their tombstones follow.
//! - Writes complete in the order they were issued (the driver appends them in order), so
//!   `Group::persisted` is always the value of the group's last record in the log.
//! - A timer that fires late or was superseded is ignored: each handler checks the
//!   deadline kept in the state, never the timer itself.
//!
//! What the log holds of the state (loading it, snapshots, the records of groups and
//! offsets) is in `persistence`; the requests' behaviour is in the sibling modules
//! `rebalance`, `assignment`, `liveness` and `offsets`.

use std::collections::HashMap;

use bytes::Bytes;
use sluice_protocol::error_code::ErrorCode;

use super::membership::Group;
use super::request::{GroupReply, GroupRequest, JoinResult, SyncResult};
use super::types::{CommittedOffset, Protocol, Token, TopicPartition, WriteId};

/// Re-exported for `txn::metadata`, which names it by this path.
pub(super) mod persistence;

/// Settings of the coordinator, from the broker's config (Kafka's names in brackets).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `offsets.retention.ms` (Kafka 2.1+: counted from when the group became empty).
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval_ms: i64,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
    /// How long a new member's JoinGroup may wait before it is dropped (Kafka: 5 minutes).
    pub new_member_join_timeout_ms: i64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            offsets_retention_ms: 7 * 24 * 3600 * 1000,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            new_member_join_timeout_ms: 300_000,
        }
    }
}

/// A timer the driver keeps; setting a key again replaces its deadline.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKey {
    /// A group's join phase ends (initial delay or rebalance timeout).
    Join(String),
    /// A member's session (or new-member join timeout) runs out.
    Session {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
    },
    /// A MEMBER_ID_REQUIRED member did not come back.
    Pending {
        /// Group id.
        group: String,
        /// The member id it was given.
        member: String,
    },
    /// Members that did not send SyncGroup within the rebalance timeout are expelled.
    Sync(String),
    /// Periodic expiry of old offsets and empty groups.
    OffsetExpiry,
}

/// One record of `__consumer_offsets`: key and value (`None`: a tombstone).
pub use crate::internal_log::LogRecord;

/// What the state machine is told.
#[derive(Debug)]
pub enum Input {
    /// A request.
    Request {
        /// The token its reply will carry.
        token: Token,
        /// The request.
        request: GroupRequest,
    },
    /// A timer fired.
    Timer(TimerKey),
    /// A write finished.
    Written {
        /// The write.
        id: WriteId,
        /// `Ok` once its records are in the log (durable if the log is).
        result: Result<(), ErrorCode>,
    },
    /// The broker is stopping: waiting JoinGroups and SyncGroups are answered with
    /// NOT_COORDINATOR, and new ones too, so connections can drain.
    Shutdown,
    /// These topics were deleted: every group's committed offsets for them go, as in
    /// Kafka, so a topic created again under the name starts without stale positions.
    TopicsDeleted(Vec<String>),
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this reply to the request with this token.
    Reply {
        /// The request's token.
        token: Token,
        /// Its reply.
        reply: GroupReply,
    },
    /// Fire this timer at this time, replacing an earlier deadline.
    SetTimer {
        /// The timer.
        key: TimerKey,
        /// When, in ms since the epoch.
        at: i64,
    },
    /// Append these records, in one batch, then report [`Input::Written`].
    Write {
        /// The write, as [`Input::Written`] names it.
        id: WriteId,
        /// The records.
        records: Vec<LogRecord>,
    },
}

/// A write in flight and what to do when it completes.
#[derive(Debug)]
pub(super) enum PendingWrite {
    /// Offsets to apply, and the reply (partitions refused up front keep their error).
    Commit {
        token: Token,
        group: String,
        incarnation: u64,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
        results: Vec<ErrorCode>,
    },
    /// The leader's assignment for a generation.
    Assignment(AssignmentWrite),
    /// A group value with nothing waiting on it (an empty group).
    GroupValue { group: String, incarnation: u64, value: Bytes },
    /// A static member that rejoined a stable group under a new member id.
    StaticRejoin(Box<StaticRejoin>),
    /// Tombstones, and the reply to send once they are written.
    Tombstones { group: Option<(String, u64)>, reply: Option<(Token, GroupReply)> },
}

/// A leader's assignment being written.
#[derive(Debug)]
pub(super) struct AssignmentWrite {
    pub group: String,
    pub incarnation: u64,
    pub generation: i32,
    pub value: Bytes,
    pub assignment: HashMap<String, Bytes>,
}

/// What a static member's rejoin changed, to confirm or revert once its write completes.
#[derive(Debug)]
pub(super) struct StaticRejoin {
    pub group: String,
    pub incarnation: u64,
    pub value: Bytes,
    pub token: Token,
    pub instance_id: String,
    pub old_id: String,
    pub new_id: String,
    pub old_protocols: Vec<Protocol>,
    pub old_rebalance_timeout_ms: i32,
    pub old_session_timeout_ms: i32,
    pub old_leader: Option<String>,
    pub supports_skip: bool,
}

/// The group coordinator's state machine: every group, and the writes in flight.
#[derive(Debug)]
pub struct GroupMachine {
    pub(super) config: GroupConfig,
    pub(super) groups: HashMap<String, Group>,
    pub(super) writes: HashMap<WriteId, PendingWrite>,
    pub(super) loading: bool,
    pub(super) closing: bool,
    pub(super) out: Vec<Output>,
    next_write: WriteId,
    next_incarnation: u64,
    rng: u64,
}

impl GroupMachine {
    /// A coordinator that is loading: requests are answered with
    /// COORDINATOR_LOAD_IN_PROGRESS (or what Kafka answers instead) until
    /// [`Self::finish_loading`]. `seed` drives member id generation.
    pub fn new(config: GroupConfig, seed: u64) -> GroupMachine {
        GroupMachine {
            config,
            groups: HashMap::new(),
            writes: HashMap::new(),
            loading: true,
            closing: false,
            out: Vec::new(),
            next_write: 0,
            next_incarnation: 0,
            rng: seed,
        }
    }

    /// Feeds one input at time `now` (ms since the epoch) and returns what to do.
    pub fn step(&mut self, input: Input, now: i64) -> Vec<Output> {
        match input {
            Input::Request { token, request } => self.request(token, request, now),
            Input::Timer(key) => self.timer(key, now),
            Input::Written { id, result } => self.written(id, result, now),
            Input::Shutdown => self.shutdown(),
            Input::TopicsDeleted(topics) => self.topics_deleted(&topics),
        }
        std::mem::take(&mut self.out)
    }

    fn request(&mut self, token: Token, request: GroupRequest, now: i64) {
        match request {
            GroupRequest::Join(r) => self.join(token, r, now),
            GroupRequest::Sync(r) => self.sync(token, r, now),
            GroupRequest::Heartbeat(r) => self.heartbeat(token, r, now),
            GroupRequest::Leave { group, members } => self.leave(token, &group, members, now),
            GroupRequest::Commit(r) => self.commit(token, r, now),
            GroupRequest::FetchOffsets(groups) => self.fetch_offsets(token, groups),
            GroupRequest::DeleteOffsets { group, partitions } => {
                self.delete_offsets(token, &group, partitions)
            }
            GroupRequest::List(filter) => self.list(token, &filter),
            GroupRequest::Describe(groups) => self.describe(token, groups),
            GroupRequest::Delete(groups) => self.delete_groups(token, groups),
            GroupRequest::CommitTxnOffsets { group, offsets } => {
                self.commit_txn_offsets(token, group, offsets, now)
            }
            GroupRequest::ValidateTxnMember(m) => self.validate_txn_member(token, &m),
        }
    }

    fn timer(&mut self, key: TimerKey, now: i64) {
        match key {
            TimerKey::Join(group) => self.join_timer(&group, now),
            TimerKey::Session { group, member } => self.session_timer(&group, &member, now),
            TimerKey::Pending { group, member } => self.pending_timer(&group, &member, now),
            TimerKey::Sync(group) => self.sync_timer(&group, now),
            TimerKey::OffsetExpiry => self.expire_offsets(now),
        }
    }

    fn shutdown(&mut self) {
        self.closing = true;
        let mut replies = Vec::new();
        for group in self.groups.values_mut() {
            let ids: Vec<String> = group.members.keys().cloned().collect();
            for id in ids {
                if let Some(t) = group.set_join(&id, None) {
                    replies.push((
                        t,
                        GroupReply::Join(JoinResult::error(&id, ErrorCode::NOT_COORDINATOR)),
                    ));
                }
                if let Some(t) = group.members.get_mut(&id).and_then(|m| m.sync.take()) {
                    replies
                        .push((t, GroupReply::Sync(SyncResult::error(ErrorCode::NOT_COORDINATOR))));
                }
            }
        }
        for (t, r) in replies {
            self.reply(t, r);
        }
    }

    /// Whether the coordinator is still loading its log.
    pub fn is_loading(&self) -> bool {
        self.loading
    }

    /// Writes issued and not completed.
    pub fn writes_in_flight(&self) -> usize {
        self.writes.len()
    }

    /// The group with this id (tests, tools).
    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.get(id)
    }

    pub(super) fn reply(&mut self, token: Token, reply: GroupReply) {
        self.out.push(Output::Reply { token, reply });
    }

    pub(super) fn set_timer(&mut self, key: TimerKey, at: i64) {
        self.out.push(Output::SetTimer { key, at });
    }

    pub(super) fn incarnation(&mut self) -> u64 {
        self.next_incarnation += 1;
        self.next_incarnation
    }

    /// Issues a write; `g`, the group it belongs to, counts it as in flight until its
    /// completion handler uncounts it.
    pub(super) fn issue(
        &mut self,
        g: Option<&mut Group>,
        records: Vec<LogRecord>,
        pending: PendingWrite,
    ) {
        let id = self.next_write;
        self.next_write += 1;
        if let Some(g) = g {
            g.writes_in_flight += 1;
        }
        self.writes.insert(id, pending);
        self.out.push(Output::Write { id, records });
    }

    /// The group if it is still the incarnation a write was issued for, with that write
    /// uncounted.
    pub(super) fn finish_write(&mut self, group: &str, incarnation: u64) -> Option<&mut Group> {
        let g = self.groups.get_mut(group).filter(|g| g.incarnation == incarnation)?;
        g.writes_in_flight -= 1;
        Some(g)
    }

    fn written(&mut self, id: WriteId, result: Result<(), ErrorCode>, now: i64) {
        let Some(pending) = self.writes.remove(&id) else { return };
        if let Err(e) = result {
            tracing::warn!(error = ?e, "write to __consumer_offsets failed");
        }
        match pending {
            PendingWrite::Commit { token, group, incarnation, offsets, results } => {
                self.commit_written(token, &group, incarnation, offsets, results, result)
            }
            PendingWrite::Assignment(a) => self.assignment_written(a, result, now),
            PendingWrite::GroupValue { group, incarnation, value } => {
                if let Some(g) = self.finish_write(&group, incarnation) {
                    if result.is_ok() {
                        g.persisted = Some(value);
                    }
                }
            }
            PendingWrite::StaticRejoin(s) => self.static_rejoin_written(*s, result, now),
            PendingWrite::Tombstones { group, reply } => {
                if let Some((group, incarnation)) = group {
                    self.finish_write(&group, incarnation);
                }
                if let Some((token, reply)) = reply {
                    self.reply(token, reply);
                }
            }
        }
    }

    /// A fresh member id: `<prefix>-<uuid v4>`, as Kafka makes them.
    pub(super) fn new_member_id(&mut self, prefix: &str) -> String {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&splitmix64(&mut self.rng).to_be_bytes());
        bytes[8..].copy_from_slice(&splitmix64(&mut self.rng).to_be_bytes());
        format!("{prefix}-{}", uuid::Builder::from_random_bytes(bytes).into_uuid())
    }
}

/// SplitMix64: a small, well-mixed generator for member ids (not a secret).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Kafka's mapping of an offset-commit append error to what the client is told.
pub(super) fn commit_error(e: ErrorCode) -> ErrorCode {
    match e {
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        | ErrorCode::NOT_ENOUGH_REPLICAS
        | ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND => ErrorCode::COORDINATOR_NOT_AVAILABLE,
        ErrorCode::NOT_LEADER_OR_FOLLOWER | ErrorCode::KAFKA_STORAGE_ERROR => {
            ErrorCode::NOT_COORDINATOR
        }
        ErrorCode::MESSAGE_TOO_LARGE
        | ErrorCode::RECORD_LIST_TOO_LARGE
        | ErrorCode::INVALID_FETCH_SIZE => ErrorCode::INVALID_COMMIT_OFFSET_SIZE,
        other => other,
    }
}

/// Kafka's mapping of a group-metadata append error to what the client is told.
pub(super) fn store_group_error(e: ErrorCode) -> ErrorCode {
    match e {
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        | ErrorCode::NOT_ENOUGH_REPLICAS
        | ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND => ErrorCode::COORDINATOR_NOT_AVAILABLE,
        ErrorCode::NOT_LEADER_OR_FOLLOWER | ErrorCode::KAFKA_STORAGE_ERROR => {
            ErrorCode::NOT_COORDINATOR
        }
        ErrorCode::REQUEST_TIMED_OUT => ErrorCode::REBALANCE_IN_PROGRESS,
        ErrorCode::MESSAGE_TOO_LARGE
        | ErrorCode::RECORD_LIST_TOO_LARGE
        | ErrorCode::INVALID_FETCH_SIZE => ErrorCode::UNKNOWN_SERVER_ERROR,
        other => other,
    }
}
