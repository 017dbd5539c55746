//! SyncGroup on [`GroupMachine`]: followers wait for the leader's assignment, which is
//! written to the log before anyone gets it; members that never sync within the
//! rebalance timeout are expelled (Kafka 3.x's pending-sync expiry).
//!
//! Invariant: a member's assignment changes only when the leader's assignment of the
//! current generation was written, and every member of that generation gets exactly the
//! bytes the leader gave for it (empty if the leader gave none).

use std::collections::HashMap;

use bytes::Bytes;
use sluice_protocol::error_code::ErrorCode;

use super::liveness::validate_member;
use super::membership::Group;
use super::rebalance::group_record;
use super::request::{GroupReply, JoinResult, SyncRequest, SyncResult};
use super::state::{store_group_error, AssignmentWrite, GroupMachine, PendingWrite};
use super::types::{GroupState, Token};

impl GroupMachine {
    pub(super) fn sync(&mut self, token: Token, r: SyncRequest, now: i64) {
        let fail = |e| GroupReply::Sync(SyncResult::error(e));
        if self.loading {
            // The rebalance in progress was lost with the restart: rejoin (old clients do
            // not know COORDINATOR_LOAD_IN_PROGRESS here).
            return self.reply(token, fail(ErrorCode::REBALANCE_IN_PROGRESS));
        }
        if r.group_id.is_empty() {
            return self.reply(token, fail(ErrorCode::INVALID_GROUP_ID));
        }
        let id = r.group_id.clone();
        let found = self.with_group(&id, |c, g| {
            let error = validate_member(g, &r.member_id, r.instance_id.as_deref()).or({
                if r.generation != g.generation {
                    Some(ErrorCode::ILLEGAL_GENERATION)
                } else if r.protocol_type.is_some() && r.protocol_type != g.protocol_type
                    || r.protocol_name.is_some() && r.protocol_name != g.protocol_name
                {
                    Some(ErrorCode::INCONSISTENT_GROUP_PROTOCOL)
                } else {
                    None
                }
            });
            if let Some(e) = error {
                return c.reply(token, fail(e));
            }
            match g.state {
                GroupState::Empty => c.reply(token, fail(ErrorCode::UNKNOWN_MEMBER_ID)),
                GroupState::PreparingRebalance => {
                    c.reply(token, fail(ErrorCode::REBALANCE_IN_PROGRESS))
                }
                GroupState::Dead => c.reply(token, fail(ErrorCode::COORDINATOR_NOT_AVAILABLE)),
                GroupState::CompletingRebalance if c.closing => {
                    c.reply(token, fail(ErrorCode::NOT_COORDINATOR))
                }
                GroupState::CompletingRebalance => {
                    let m = g.members.get_mut(&r.member_id).expect("invariant: validated above");
                    if let Some(old) = m.sync.replace(token) {
                        c.reply(old, fail(ErrorCode::REBALANCE_IN_PROGRESS));
                    }
                    remove_pending_sync(g, &r.member_id);
                    if g.is_leader(&r.member_id) {
                        c.store_assignment(g, r.assignments);
                    }
                }
                GroupState::Stable => {
                    remove_pending_sync(g, &r.member_id);
                    let m = &g.members[&r.member_id];
                    let answer = SyncResult {
                        error: ErrorCode::NONE,
                        protocol_type: g.protocol_type.clone(),
                        protocol_name: g.protocol_name.clone(),
                        assignment: m.assignment.clone(),
                    };
                    c.reply(token, GroupReply::Sync(answer));
                    c.schedule_heartbeat(g, &r.member_id, now);
                }
            }
        });
        if found.is_none() {
            self.reply(token, fail(ErrorCode::UNKNOWN_MEMBER_ID));
        }
    }

    /// Persists the leader's assignment; members get it once it is written.
    pub(super) fn store_assignment(&mut self, g: &mut Group, given: Vec<(String, Bytes)>) {
        let mut assignment: HashMap<String, Bytes> =
            g.members.keys().map(|id| (id.clone(), Bytes::new())).collect();
        for (id, bytes) in given {
            if let Some(slot) = assignment.get_mut(&id) {
                *slot = bytes;
            }
        }
        let value = GroupMachine::group_value(g, &assignment);
        let pending = PendingWrite::Assignment(AssignmentWrite {
            group: g.id.clone(),
            incarnation: g.incarnation,
            generation: g.generation,
            value: value.clone(),
            assignment,
        });
        let record = group_record(&g.id, value);
        self.issue(Some(g), vec![record], pending);
    }

    pub(super) fn assignment_written(
        &mut self,
        write: AssignmentWrite,
        result: Result<(), ErrorCode>,
        now: i64,
    ) {
        let AssignmentWrite { group, incarnation, generation, value, mut assignment } = write;
        self.with_group(&group, |c, g| {
            if g.incarnation != incarnation {
                return;
            }
            g.writes_in_flight -= 1;
            if result.is_ok() {
                g.persisted = Some(value);
            }
            // Another member may have joined while the write was in flight.
            if g.state != GroupState::CompletingRebalance || g.generation != generation {
                return;
            }
            match result {
                Ok(()) => {
                    let ids: Vec<String> = g.members.keys().cloned().collect();
                    for id in ids {
                        let m = g.members.get_mut(&id).expect("invariant: id from the map");
                        m.assignment = assignment.remove(&id).unwrap_or_default();
                        if let Some(t) = m.sync.take() {
                            let answer = SyncResult {
                                error: ErrorCode::NONE,
                                protocol_type: g.protocol_type.clone(),
                                protocol_name: g.protocol_name.clone(),
                                assignment: m.assignment.clone(),
                            };
                            c.reply(t, GroupReply::Sync(answer));
                            c.schedule_heartbeat(g, &id, now);
                        }
                    }
                    g.transition(GroupState::Stable, now);
                }
                Err(e) => {
                    c.reset_assignment(g, store_group_error(e), now);
                    c.maybe_prepare_rebalance(g, now);
                }
            }
        });
    }

    /// Clears assignments and answers waiting SyncGroups with `error`.
    pub(super) fn reset_assignment(&mut self, g: &mut Group, error: ErrorCode, now: i64) {
        let ids: Vec<String> = g.members.keys().cloned().collect();
        for id in ids {
            let m = g.members.get_mut(&id).expect("invariant: id from the map");
            m.assignment = Bytes::new();
            if let Some(t) = m.sync.take() {
                self.reply(t, GroupReply::Sync(SyncResult::error(error)));
                self.schedule_heartbeat(g, &id, now);
            }
        }
    }

    pub(super) fn sync_timer(&mut self, group: &str, now: i64) {
        self.with_group(group, |c, g| {
            let Some(deadline) = g.sync_deadline else { return };
            if deadline > now {
                return;
            }
            g.sync_deadline = None;
            let waiting = matches!(g.state, GroupState::CompletingRebalance | GroupState::Stable);
            if !waiting || g.pending_sync.is_empty() {
                return;
            }
            let late: Vec<String> = g.pending_sync.drain().collect();
            tracing::info!(group = %g.id, members = ?late, "members did not sync in time; removing them");
            for id in late {
                if let Some(t) = g.remove(&id).and_then(|m| m.join) {
                    let e = JoinResult::error("", ErrorCode::UNKNOWN_MEMBER_ID);
                    c.reply(t, GroupReply::Join(e));
                }
            }
            c.prepare_rebalance(g, now);
        });
    }
}

fn remove_pending_sync(g: &mut Group, member_id: &str) {
    g.pending_sync.remove(member_id);
    if g.pending_sync.is_empty() {
        g.sync_deadline = None;
    }
}
