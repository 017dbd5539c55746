//! Heartbeat and LeaveGroup on [`GroupMachine`], and the timers that expel members: a
//! session that runs out, a MEMBER_ID_REQUIRED id that never comes back.
//!
//! Invariant: a member is removed only by LeaveGroup, its session deadline passing while
//! it waits in no JoinGroup or SyncGroup (or its new-member join timeout), the join phase
//! ending without it, or the sync deadline passing before its SyncGroup; every removal
//! answers its waiting requests and moves the group on (rebalance or join completion).

use sluice_protocol::error_code::ErrorCode;

use super::membership::Group;
use super::request::{
    GroupReply, HeartbeatRequest, JoinResult, LeaveResult, LeavingMember, SyncResult,
};
use super::state::{GroupMachine, TimerKey};
use super::types::{GroupState, Token};

impl GroupMachine {
    pub(super) fn heartbeat(&mut self, token: Token, r: HeartbeatRequest, now: i64) {
        let answer = if self.loading {
            // Kafka answers blindly while loading; the member is checked once loaded.
            ErrorCode::NONE
        } else if r.group_id.is_empty() {
            ErrorCode::INVALID_GROUP_ID
        } else {
            let id = r.group_id.clone();
            self.with_group(&id, |c, g| {
                if let Some(e) = validate_member(g, &r.member_id, r.instance_id.as_deref()) {
                    return e;
                }
                if r.generation != g.generation {
                    return ErrorCode::ILLEGAL_GENERATION;
                }
                match g.state {
                    GroupState::Empty => ErrorCode::UNKNOWN_MEMBER_ID,
                    GroupState::Dead => ErrorCode::COORDINATOR_NOT_AVAILABLE,
                    GroupState::PreparingRebalance => {
                        c.schedule_heartbeat(g, &r.member_id, now);
                        ErrorCode::REBALANCE_IN_PROGRESS
                    }
                    // Members may heartbeat between their JoinGroup and SyncGroup answers.
                    GroupState::CompletingRebalance | GroupState::Stable => {
                        c.schedule_heartbeat(g, &r.member_id, now);
                        ErrorCode::NONE
                    }
                }
            })
            .unwrap_or(ErrorCode::UNKNOWN_MEMBER_ID)
        };
        self.reply(token, GroupReply::Heartbeat(answer));
    }

    pub(super) fn leave(
        &mut self,
        token: Token,
        group: &str,
        leaving: Vec<LeavingMember>,
        now: i64,
    ) {
        let top = if group.is_empty() {
            Some(ErrorCode::INVALID_GROUP_ID)
        } else if self.loading {
            Some(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)
        } else {
            None
        };
        if let Some(error) = top {
            return self
                .reply(token, GroupReply::Leave(LeaveResult { error, members: Vec::new() }));
        }
        let members = self
            .with_group(group, |c, g| {
                let mut out = Vec::with_capacity(leaving.len());
                for lm in leaving.iter().cloned() {
                    let error = c.leave_one(g, &lm, now);
                    out.push((lm, error));
                }
                out
            })
            .unwrap_or_else(|| {
                leaving.into_iter().map(|lm| (lm, ErrorCode::UNKNOWN_MEMBER_ID)).collect()
            });
        self.reply(token, GroupReply::Leave(LeaveResult { error: ErrorCode::NONE, members }));
    }

    fn leave_one(&mut self, g: &mut Group, lm: &LeavingMember, now: i64) -> ErrorCode {
        if lm.member_id.is_empty() {
            // Administrative removal of a static member by its instance id.
            let current =
                lm.instance_id.as_deref().and_then(|i| g.static_member(i)).map(str::to_owned);
            return match current {
                Some(id) => {
                    self.remove_member(g, &id, now);
                    ErrorCode::NONE
                }
                None => ErrorCode::UNKNOWN_MEMBER_ID,
            };
        }
        if g.pending.remove(&lm.member_id).is_some() {
            self.try_complete_join(g, now);
            return ErrorCode::NONE;
        }
        match validate_member(g, &lm.member_id, lm.instance_id.as_deref()) {
            Some(e) => e,
            None => {
                self.remove_member(g, &lm.member_id, now);
                ErrorCode::NONE
            }
        }
    }

    /// Removes a member and moves the group on: a rebalance, or the end of the join phase.
    pub(super) fn remove_member(&mut self, g: &mut Group, member_id: &str, now: i64) {
        if let Some(m) = g.remove(member_id) {
            if let Some(t) = m.join {
                let e = JoinResult::error("", ErrorCode::UNKNOWN_MEMBER_ID);
                self.reply(t, GroupReply::Join(e));
            }
            if let Some(t) = m.sync {
                self.reply(t, GroupReply::Sync(SyncResult::error(ErrorCode::UNKNOWN_MEMBER_ID)));
            }
        }
        match g.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance(g, now)
            }
            GroupState::PreparingRebalance => self.try_complete_join(g, now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    pub(super) fn session_timer(&mut self, group: &str, member: &str, now: i64) {
        self.with_group(group, |c, g| {
            let Some(m) = g.members.get(member) else { return };
            if m.session_deadline > now {
                return;
            }
            // Members waiting in a JoinGroup or SyncGroup keep their place; the join and
            // sync deadlines bound that wait. New members only have the join timeout.
            if !m.is_new && (m.join.is_some() || m.sync.is_some()) {
                return;
            }
            tracing::info!(group = %g.id, member, "member session expired; removing it");
            c.remove_member(g, member, now);
        });
    }

    pub(super) fn pending_timer(&mut self, group: &str, member: &str, now: i64) {
        self.with_group(group, |c, g| {
            if g.pending.get(member).is_some_and(|&d| d <= now) {
                g.pending.remove(member);
                c.try_complete_join(g, now);
            }
        });
    }

    /// Restarts a member's session timeout from `now`.
    pub(super) fn schedule_heartbeat(&mut self, g: &mut Group, member_id: &str, now: i64) {
        if let Some(m) = g.members.get_mut(member_id) {
            m.session_deadline = now + i64::from(m.session_timeout_ms);
            let key = TimerKey::Session { group: g.id.clone(), member: member_id.to_owned() };
            self.set_timer(key, m.session_deadline);
        }
    }
}

/// Checks that `member_id` is a member and, for a static member, that its instance id
/// maps to it (else the request comes from a fenced, older instance).
pub(super) fn validate_member(
    g: &Group,
    member_id: &str,
    instance_id: Option<&str>,
) -> Option<ErrorCode> {
    if let Some(instance) = instance_id {
        return match g.static_member(instance) {
            Some(current) if current != member_id => Some(ErrorCode::FENCED_INSTANCE_ID),
            Some(_) => None,
            None => Some(ErrorCode::UNKNOWN_MEMBER_ID),
        };
    }
    (!g.members.contains_key(member_id)).then_some(ErrorCode::UNKNOWN_MEMBER_ID)
}
