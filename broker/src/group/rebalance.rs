//! The join phase of the classic rebalance protocol on [`GroupMachine`]: JoinGroup,
//! static members rejoining, preparing and completing a rebalance. [`super::assignment`]
//! (SyncGroup) and [`super::liveness`] (Heartbeat, LeaveGroup, expiry) are the rest; all
//! three follow Kafka's `GroupCoordinator` (3.x, before KIP-848) decision by decision.
//!
//! ```text
//!            join (new member, or leader/changed member)        all joined or
//!   Empty ─────────────────────────────────▶ PreparingRebalance ─ join phase ends ─┐
//!     ▲                                           ▲                               │
//!     │ join phase ends with no member            │ join, leave, expiry           ▼
//!     └───────────────────────────────────────────┴──── Stable ◀─ leader's ─ CompletingRebalance
//!                                                                   SyncGroup written
//! ```
//!
//! Invariants: a member waits in at most one JoinGroup and one SyncGroup; the join phase
//! of an empty group lasts `group.initial.rebalance.delay.ms`, extended while new members
//! arrive during the first rebalance, never past the rebalance timeout; other join phases
//! end early once every member rejoined; members that send nothing for their session
//! timeout are expelled, except while they wait in a JoinGroup or SyncGroup.

use std::collections::HashMap;

use bytes::Bytes;
use sluice_protocol::error_code::ErrorCode;

use super::liveness::validate_member;
use super::membership::{Group, JoinPhase, Member};
use super::records::{self, RecordKey};
use super::request::{GroupReply, JoinMember, JoinRequest, JoinResult, SyncResult};
use super::state::{
    store_group_error, GroupMachine, LogRecord, PendingWrite, StaticRejoin, TimerKey,
};
use super::types::{GroupState, Token};

impl GroupMachine {
    /// Runs `f` on a group taken out of the map (so `f` may use `self` freely), then puts
    /// it back. `None` if there is no such group.
    pub(super) fn with_group<R>(
        &mut self,
        id: &str,
        f: impl FnOnce(&mut Self, &mut Group) -> R,
    ) -> Option<R> {
        let mut g = self.groups.remove(id)?;
        let r = f(self, &mut g);
        self.groups.insert(g.id.clone(), g);
        Some(r)
    }

    pub(super) fn join(&mut self, token: Token, r: JoinRequest, now: i64) {
        let fail = |e| GroupReply::Join(JoinResult::error(&r.member_id, e));
        let error = if self.closing {
            Some(ErrorCode::NOT_COORDINATOR)
        } else if self.loading {
            Some(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)
        } else if r.group_id.is_empty() {
            Some(ErrorCode::INVALID_GROUP_ID)
        } else if r.session_timeout_ms < self.config.min_session_timeout_ms
            || r.session_timeout_ms > self.config.max_session_timeout_ms
        {
            Some(ErrorCode::INVALID_SESSION_TIMEOUT)
        } else if !self.groups.contains_key(&r.group_id) && !r.member_id.is_empty() {
            // A member id for a group that does not exist: the member must start over.
            Some(ErrorCode::UNKNOWN_MEMBER_ID)
        } else {
            None
        };
        if let Some(e) = error {
            return self.reply(token, fail(e));
        }
        if !self.groups.contains_key(&r.group_id) {
            let incarnation = self.incarnation();
            self.groups.insert(r.group_id.clone(), Group::new(&r.group_id, incarnation, now));
        }
        let id = r.group_id.clone();
        self.with_group(&id, |c, g| {
            if r.member_id.is_empty() {
                c.join_new_member(g, token, r, now);
            } else {
                c.join_current_member(g, token, r, now);
            }
            c.try_complete_join(g, now);
        });
    }

    fn join_new_member(&mut self, g: &mut Group, token: Token, r: JoinRequest, now: i64) {
        if !g.supports(&r.protocol_type, &r.protocols) {
            let e = JoinResult::error("", ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
            return self.reply(token, GroupReply::Join(e));
        }
        let prefix = r.instance_id.clone().unwrap_or_else(|| r.client_id.clone());
        let new_id = self.new_member_id(&prefix);
        if let Some(instance) = r.instance_id.clone() {
            match g.static_member(&instance).map(str::to_owned) {
                Some(old_id) => {
                    self.rejoin_static_member(g, token, r, &instance, &old_id, new_id, now)
                }
                None => self.add_member_and_rebalance(g, token, r, new_id, now),
            }
        } else if r.require_known_member_id {
            // KIP-394: the member must come back with this id, so a client that never
            // receives the answer does not leave a phantom member behind.
            let deadline = now + i64::from(r.session_timeout_ms);
            g.pending.insert(new_id.clone(), deadline);
            self.set_timer(
                TimerKey::Pending { group: g.id.clone(), member: new_id.clone() },
                deadline,
            );
            let e = JoinResult::error(&new_id, ErrorCode::MEMBER_ID_REQUIRED);
            self.reply(token, GroupReply::Join(e));
        } else {
            self.add_member_and_rebalance(g, token, r, new_id, now);
        }
    }

    fn join_current_member(&mut self, g: &mut Group, token: Token, r: JoinRequest, now: i64) {
        let fail = |e| GroupReply::Join(JoinResult::error(&r.member_id, e));
        if !g.supports(&r.protocol_type, &r.protocols) {
            return self.reply(token, fail(ErrorCode::INCONSISTENT_GROUP_PROTOCOL));
        }
        if g.pending.contains_key(&r.member_id) {
            if r.instance_id.is_some() {
                // Pending ids are only handed to dynamic members.
                return self.reply(token, fail(ErrorCode::UNKNOWN_MEMBER_ID));
            }
            let id = r.member_id.clone();
            return self.add_member_and_rebalance(g, token, r, id, now);
        }
        if let Some(e) = validate_member(g, &r.member_id, r.instance_id.as_deref()) {
            return self.reply(token, fail(e));
        }
        let member = &g.members[&r.member_id];
        let unchanged = member.matches(&r.protocols);
        match g.state {
            GroupState::PreparingRebalance => self.update_member_and_rebalance(g, token, r, now),
            GroupState::CompletingRebalance if unchanged => {
                // The member missed the JoinGroup response: answer it again.
                let leader = g.is_leader(&r.member_id);
                self.reply(token, GroupReply::Join(current_join(g, &r.member_id, leader)));
            }
            GroupState::Stable if unchanged && !g.is_leader(&r.member_id) => {
                self.reply(token, GroupReply::Join(current_join(g, &r.member_id, false)));
            }
            // The leader rejoining a stable group asks for a rebalance (its metadata of
            // topics changed, which the member metadata does not show).
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member_and_rebalance(g, token, r, now)
            }
            GroupState::Empty | GroupState::Dead => {
                self.reply(token, fail(ErrorCode::UNKNOWN_MEMBER_ID))
            }
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        g: &mut Group,
        token: Token,
        r: JoinRequest,
        member_id: String,
        now: i64,
    ) {
        // A new member has no id to heartbeat with yet: only the new-member join timeout
        // bounds how long its JoinGroup may wait.
        let deadline = now + self.config.new_member_join_timeout_ms;
        if g.state == GroupState::PreparingRebalance && g.generation == 0 {
            g.new_member_added = true;
        }
        self.set_timer(
            TimerKey::Session { group: g.id.clone(), member: member_id.clone() },
            deadline,
        );
        g.add(Member {
            id: member_id,
            instance_id: r.instance_id,
            client_id: r.client_id,
            client_host: r.client_host,
            session_timeout_ms: r.session_timeout_ms,
            rebalance_timeout_ms: r.rebalance_timeout_ms,
            protocol_type: r.protocol_type,
            protocols: r.protocols,
            assignment: Bytes::new(),
            join: Some(token),
            sync: None,
            is_new: true,
            session_deadline: deadline,
            seq: 0,
        });
        self.maybe_prepare_rebalance(g, now);
    }

    fn update_member_and_rebalance(
        &mut self,
        g: &mut Group,
        token: Token,
        r: JoinRequest,
        now: i64,
    ) {
        g.update_member(&r.member_id, r.protocols, r.rebalance_timeout_ms, r.session_timeout_ms);
        if let Some(old) = g.set_join(&r.member_id, Some(token)) {
            // The same member joined again from elsewhere: the older request is stale.
            let e = JoinResult::error(&r.member_id, ErrorCode::REBALANCE_IN_PROGRESS);
            self.reply(old, GroupReply::Join(e));
        }
        self.maybe_prepare_rebalance(g, now);
    }

    /// A static member restarted and joined without its member id (KIP-345): it takes
    /// over its old membership under a new id, and the old id is fenced.
    #[expect(clippy::too_many_arguments, reason = "one call site; the pieces of one rejoin")]
    fn rejoin_static_member(
        &mut self,
        g: &mut Group,
        token: Token,
        r: JoinRequest,
        instance: &str,
        old_id: &str,
        new_id: String,
        now: i64,
    ) {
        let old_leader = g.leader.clone();
        let (old_join, old_sync) = g.replace_static_member(instance, old_id, &new_id);
        if let Some(t) = old_join {
            let e = JoinResult::error(old_id, ErrorCode::FENCED_INSTANCE_ID);
            self.reply(t, GroupReply::Join(e));
        }
        if let Some(t) = old_sync {
            self.reply(t, GroupReply::Sync(SyncResult::error(ErrorCode::FENCED_INSTANCE_ID)));
        }
        self.schedule_heartbeat(g, &new_id, now);
        let m = &g.members[&new_id];
        let (old_protocols, old_rt, old_st) =
            (m.protocols.clone(), m.rebalance_timeout_ms, m.session_timeout_ms);
        g.update_member(&new_id, r.protocols, r.rebalance_timeout_ms, r.session_timeout_ms);
        g.set_join(&new_id, Some(token));
        match g.state {
            GroupState::Stable if g.select_protocol() == g.protocol_name => {
                // Nothing the assignment depends on changed: persist the new member id and
                // answer without a rebalance.
                let assignment: HashMap<String, Bytes> =
                    g.members.values().map(|m| (m.id.clone(), m.assignment.clone())).collect();
                let value = GroupMachine::group_value(g, &assignment);
                let rejoin = StaticRejoin {
                    group: g.id.clone(),
                    incarnation: g.incarnation,
                    value: value.clone(),
                    token,
                    instance_id: instance.to_owned(),
                    old_id: old_id.to_owned(),
                    new_id,
                    old_protocols,
                    old_rebalance_timeout_ms: old_rt,
                    old_session_timeout_ms: old_st,
                    old_leader,
                    supports_skip: r.supports_skip_assignment,
                };
                let record = group_record(&g.id, value);
                self.issue(Some(g), vec![record], PendingWrite::StaticRejoin(Box::new(rejoin)));
            }
            GroupState::Stable => self.maybe_prepare_rebalance(g, now),
            // The leader may already be assigning for the old id: start over.
            GroupState::CompletingRebalance => self.prepare_rebalance(g, now),
            GroupState::PreparingRebalance | GroupState::Empty | GroupState::Dead => {}
        }
    }

    pub(super) fn static_rejoin_written(
        &mut self,
        s: StaticRejoin,
        result: Result<(), ErrorCode>,
        now: i64,
    ) {
        let group = s.group.clone();
        let done = self.with_group(&group, |c, g| {
            if g.incarnation != s.incarnation {
                return false;
            }
            g.writes_in_flight -= 1;
            match result {
                Ok(()) => {
                    g.persisted = Some(s.value.clone());
                    let waiting = g.members.get(&s.new_id).and_then(|m| m.join) == Some(s.token);
                    if !waiting {
                        // A rebalance started meanwhile and will answer it.
                        return true;
                    }
                    g.set_join(&s.new_id, None);
                    let leader = g.is_leader(&s.new_id);
                    let mut answer = current_join(g, &s.new_id, s.supports_skip && leader);
                    if s.supports_skip {
                        // v9: the leader learns it leads but must not reassign (KIP-814).
                        answer.skip_assignment = leader;
                    } else {
                        // Older clients would reassign if they saw themselves as leader,
                        // and a stable group would drop that assignment: name the old id.
                        answer.leader = s.old_leader.clone().unwrap_or_default();
                    }
                    c.reply(s.token, GroupReply::Join(answer));
                }
                Err(e) => {
                    if g.members.contains_key(&s.new_id) {
                        g.set_join(&s.new_id, None);
                        g.update_member(
                            &s.new_id,
                            s.old_protocols.clone(),
                            s.old_rebalance_timeout_ms,
                            s.old_session_timeout_ms,
                        );
                        g.replace_static_member(&s.instance_id, &s.new_id, &s.old_id);
                        c.schedule_heartbeat(g, &s.old_id, now);
                    }
                    let mut answer = current_join(g, "", false);
                    answer.error = store_group_error(e);
                    answer.leader = s.old_leader.clone().unwrap_or_default();
                    c.reply(s.token, GroupReply::Join(answer));
                }
            }
            true
        });
        if done != Some(true) {
            let e = JoinResult::error("", ErrorCode::COORDINATOR_NOT_AVAILABLE);
            self.reply(s.token, GroupReply::Join(e));
        }
    }

    pub(super) fn maybe_prepare_rebalance(&mut self, g: &mut Group, now: i64) {
        if g.can_rebalance() {
            self.prepare_rebalance(g, now);
        }
    }

    pub(super) fn prepare_rebalance(&mut self, g: &mut Group, now: i64) {
        if g.state == GroupState::CompletingRebalance {
            self.reset_assignment(g, ErrorCode::REBALANCE_IN_PROGRESS, now);
        }
        g.pending_sync.clear();
        g.sync_deadline = None;
        let phase = if g.state == GroupState::Empty {
            let delay = self.config.initial_rebalance_delay_ms;
            let remaining = (g.rebalance_timeout_ms() - delay).max(0);
            JoinPhase { deadline: now + delay, initial_remaining: Some(remaining) }
        } else {
            JoinPhase { deadline: now + g.rebalance_timeout_ms(), initial_remaining: None }
        };
        g.transition(GroupState::PreparingRebalance, now);
        g.join_phase = Some(phase);
        self.set_timer(TimerKey::Join(g.id.clone()), phase.deadline);
        self.try_complete_join(g, now);
    }

    /// Ends the join phase early once every member rejoined (never during an initial
    /// delay, which exists to collect members that have not joined yet).
    pub(super) fn try_complete_join(&mut self, g: &mut Group, now: i64) {
        let normal = g.join_phase.is_some_and(|p| p.initial_remaining.is_none());
        if g.state == GroupState::PreparingRebalance && normal && g.has_all_joined() {
            self.complete_join(g, now);
        }
    }

    pub(super) fn join_timer(&mut self, group: &str, now: i64) {
        self.with_group(group, |c, g| {
            let Some(phase) = g.join_phase else { return };
            if g.state != GroupState::PreparingRebalance || phase.deadline > now {
                return;
            }
            match phase.initial_remaining {
                Some(remaining) if g.new_member_added && remaining > 0 => {
                    g.new_member_added = false;
                    let delay = c.config.initial_rebalance_delay_ms.min(remaining);
                    let next = JoinPhase {
                        deadline: now + delay,
                        initial_remaining: Some((remaining - delay).max(0)),
                    };
                    g.join_phase = Some(next);
                    c.set_timer(TimerKey::Join(g.id.clone()), next.deadline);
                }
                _ => c.complete_join(g, now),
            }
        });
    }

    fn complete_join(&mut self, g: &mut Group, now: i64) {
        g.join_phase = None;
        let gone: Vec<String> = g
            .members
            .values()
            .filter(|m| m.join.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            if let Some(t) = g.remove(&id).and_then(|m| m.sync) {
                self.reply(t, GroupReply::Sync(SyncResult::error(ErrorCode::UNKNOWN_MEMBER_ID)));
            }
        }
        if !g.elect_joined_leader() && !g.members.is_empty() {
            // Only static members that did not rejoin are left: wait for their sessions.
            let deadline = now + g.rebalance_timeout_ms();
            g.join_phase = Some(JoinPhase { deadline, initial_remaining: None });
            return self.set_timer(TimerKey::Join(g.id.clone()), deadline);
        }
        g.generation += 1;
        g.pending_sync.clear();
        if g.members.is_empty() {
            g.protocol_name = None;
            g.subscribed = None;
            g.transition(GroupState::Empty, now);
            let value = GroupMachine::group_value(g, &HashMap::new());
            let pending = PendingWrite::GroupValue {
                group: g.id.clone(),
                incarnation: g.incarnation,
                value: value.clone(),
            };
            let record = group_record(&g.id, value);
            return self.issue(Some(g), vec![record], pending);
        }
        g.protocol_name = g.select_protocol().or_else(|| {
            let leader = g.leader.as_ref().and_then(|l| g.members.get(l));
            leader.and_then(|m| m.protocols.first()).map(|p| p.name.clone())
        });
        g.subscribed = g.compute_subscribed();
        g.transition(GroupState::CompletingRebalance, now);
        let ids: Vec<String> = g.members_in_order().iter().map(|m| m.id.clone()).collect();
        for id in ids {
            let token = g.set_join(&id, None);
            if let Some(m) = g.members.get_mut(&id) {
                m.is_new = false;
            }
            self.schedule_heartbeat(g, &id, now);
            g.pending_sync.insert(id.clone());
            if let Some(t) = token {
                let leader = g.is_leader(&id);
                self.reply(t, GroupReply::Join(current_join(g, &id, leader)));
            }
        }
        let deadline = now + g.rebalance_timeout_ms();
        g.sync_deadline = Some(deadline);
        self.set_timer(TimerKey::Sync(g.id.clone()), deadline);
    }
}

/// The current generation as a JoinGroup answer; `with_members` for the leader.
pub(super) fn current_join(g: &Group, member_id: &str, with_members: bool) -> JoinResult {
    let protocol = g.protocol_name.as_deref().unwrap_or("");
    let members = if with_members {
        g.members_in_order()
            .into_iter()
            .map(|m| JoinMember {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                metadata: m.metadata(protocol),
            })
            .collect()
    } else {
        Vec::new()
    };
    JoinResult {
        error: ErrorCode::NONE,
        generation: g.generation,
        protocol_type: g.protocol_type.clone(),
        protocol_name: g.protocol_name.clone(),
        leader: g.leader.clone().unwrap_or_default(),
        member_id: member_id.to_owned(),
        members,
        skip_assignment: false,
    }
}

/// The record of a group's metadata value.
pub(super) fn group_record(group: &str, value: Bytes) -> LogRecord {
    let key = records::encode_key(&RecordKey::Group { group: group.to_owned() });
    LogRecord { key: key.into(), value: Some(value) }
}
