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

use std::collections::HashMap;

use bytes::Bytes;
use sluice_protocol::error_code::ErrorCode;

use super::membership::{Group, Member};
use super::records::{self, GroupValue, MemberValue, OffsetValue, RecordError, RecordKey};
use super::request::{GroupReply, GroupRequest, JoinResult, SyncResult};
/// Re-exported for `txn::metadata`, which names it by this path.
pub use super::types::TopicPartition;
use super::types::{CommittedOffset, GroupState, Protocol, Token, WriteId};

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

    /// Applies one record of `__consumer_offsets` while loading; later records win.
    ///
    /// # Errors
    /// A key or value that does not decode; the record is skipped.
    pub fn load(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), RecordError> {
        match (records::decode_key(key)?, value) {
            (RecordKey::Offset { group, topic, partition }, Some(v)) => {
                let v = records::decode_offset_value(v)?;
                let g = self.loaded_group(&group);
                g.offsets
                    .insert(TopicPartition { topic: topic.into(), partition }, v.into_committed());
            }
            (RecordKey::Offset { group, topic, partition }, None) => {
                if let Some(g) = self.groups.get_mut(&group) {
                    g.offsets.remove(&TopicPartition { topic: topic.into(), partition });
                }
            }
            (RecordKey::Group { group }, Some(v)) => {
                let value = records::decode_group_value(v)?;
                let old = self.loaded_group(&group);
                let offsets = std::mem::take(&mut old.offsets);
                let incarnation = old.incarnation;
                let mut g = group_from_value(&group, incarnation, &value);
                g.offsets = offsets;
                g.persisted = Some(Bytes::copy_from_slice(v));
                self.groups.insert(group, g);
            }
            (RecordKey::Group { group }, None) => {
                if let Some(old) = self.groups.remove(&group) {
                    if !old.offsets.is_empty() {
                        let mut g = Group::new(&group, old.incarnation, 0);
                        g.state_timestamp = None;
                        g.offsets = old.offsets;
                        self.groups.insert(group, g);
                    }
                }
            }
        }
        Ok(())
    }

    fn loaded_group(&mut self, id: &str) -> &mut Group {
        if !self.groups.contains_key(id) {
            let incarnation = self.incarnation();
            let mut g = Group::new(id, incarnation, 0);
            g.state_timestamp = None;
            self.groups.insert(id.to_owned(), g);
        }
        self.groups.get_mut(id).expect("invariant: inserted above")
    }

    /// Ends loading: members of loaded groups get a session from `now`, and the periodic
    /// offset expiry starts.
    pub fn finish_loading(&mut self, now: i64) -> Vec<Output> {
        self.loading = false;
        let mut timers = Vec::new();
        for g in self.groups.values_mut() {
            g.subscribed = g.compute_subscribed();
            for m in g.members.values_mut() {
                m.session_deadline = now + i64::from(m.session_timeout_ms);
                timers.push((
                    TimerKey::Session { group: g.id.clone(), member: m.id.clone() },
                    m.session_deadline,
                ));
            }
        }
        for (key, at) in timers {
            self.set_timer(key, at);
        }
        self.set_timer(
            TimerKey::OffsetExpiry,
            now + self.config.offsets_retention_check_interval_ms,
        );
        std::mem::take(&mut self.out)
    }

    /// The records that hold the whole state: the last group value of every group and
    /// every committed offset. Rewriting them lets the log drop everything before.
    pub fn snapshot(&self) -> Vec<LogRecord> {
        let mut ids: Vec<&String> = self.groups.keys().collect();
        ids.sort();
        let mut out = Vec::new();
        for id in ids {
            let g = &self.groups[id];
            if let Some(v) = &g.persisted {
                let key = records::encode_key(&RecordKey::Group { group: id.clone() });
                out.push(LogRecord { key: key.into(), value: Some(v.clone()) });
            }
            for (tp, o) in &g.offsets {
                out.push(offset_record(id, tp, Some(o)));
            }
        }
        out
    }

    /// How many records [`Self::snapshot`] would write.
    pub fn live_records(&self) -> usize {
        self.groups.values().map(|g| usize::from(g.persisted.is_some()) + g.offsets.len()).sum()
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

    /// The group value to persist for `group`, with these assignments.
    pub(super) fn group_value(group: &Group, assignment: &HashMap<String, Bytes>) -> Bytes {
        let protocol = group.protocol_name.clone();
        let members = group
            .members_in_order()
            .into_iter()
            .map(|m| MemberValue {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                subscription: protocol.as_deref().map(|p| m.metadata(p)).unwrap_or_default(),
                assignment: assignment.get(&m.id).cloned().unwrap_or_default(),
            })
            .collect();
        let value = GroupValue {
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            generation: group.generation,
            protocol,
            leader: group.leader.clone(),
            state_timestamp: group.state_timestamp.unwrap_or(-1),
            members,
        };
        records::encode_group_value(&value).into()
    }
}

/// The record of a committed offset (`None`: its tombstone).
pub(super) fn offset_record(
    group: &str,
    tp: &TopicPartition,
    offset: Option<&CommittedOffset>,
) -> LogRecord {
    let key = records::encode_key(&RecordKey::Offset {
        group: group.to_owned(),
        topic: tp.topic.to_string(),
        partition: tp.partition,
    });
    let value = offset.map(|o| {
        Bytes::from(records::encode_offset_value(&OffsetValue {
            offset: o.offset,
            leader_epoch: o.leader_epoch,
            metadata: o.metadata.clone(),
            commit_timestamp: o.commit_timestamp,
            expire_timestamp: o.expire_timestamp,
        }))
    });
    LogRecord { key: key.into(), value }
}

/// The tombstone of a group's metadata.
pub(super) fn group_tombstone(group: &str) -> LogRecord {
    LogRecord {
        key: records::encode_key(&RecordKey::Group { group: group.to_owned() }).into(),
        value: None,
    }
}

/// A group as a loaded value describes it: Stable with its members, or Empty.
fn group_from_value(id: &str, incarnation: u64, v: &GroupValue) -> Group {
    let mut g = Group::new(id, incarnation, 0);
    g.state_timestamp = (v.state_timestamp >= 0).then_some(v.state_timestamp);
    g.protocol_type = (!v.protocol_type.is_empty()).then(|| v.protocol_type.clone());
    g.protocol_name = v.protocol.clone();
    g.generation = v.generation;
    for m in &v.members {
        g.add(Member {
            id: m.member_id.clone(),
            instance_id: m.instance_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            session_timeout_ms: m.session_timeout_ms,
            rebalance_timeout_ms: m.rebalance_timeout_ms,
            protocol_type: v.protocol_type.clone(),
            protocols: v
                .protocol
                .iter()
                .map(|p| Protocol { name: p.clone(), metadata: m.subscription.clone() })
                .collect(),
            assignment: m.assignment.clone(),
            join: None,
            sync: None,
            is_new: false,
            session_deadline: 0,
            seq: 0,
        });
    }
    if let Some(l) = v.leader.as_ref().filter(|l| g.members.contains_key(*l)) {
        g.leader = Some(l.clone());
    }
    g.state = if g.members.is_empty() { GroupState::Empty } else { GroupState::Stable };
    g
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
