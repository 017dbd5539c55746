//! Committed offsets and group administration on [`GroupMachine`]: OffsetCommit,
//! OffsetFetch, OffsetDelete, offset expiry, ListGroups, DescribeGroups, DeleteGroups.
//!
//! Invariants:
//! - A commit is visible to OffsetFetch only once its record is in the log; a commit of
//!   several partitions is one batch, so it is applied (and survives a crash) whole.
//! - Deleting offsets or groups takes effect at once and cancels the application of
//!   commits still in flight for them, so memory never resurrects what a tombstone that
//!   follows them in the log deletes.
//! - Offsets expire (Kafka 2.1+, KIP-211) `offsets.retention.ms` after the group became
//!   empty, or after their commit for groups without members' protocol (simple
//!   consumers) and for topics a stable consumer group no longer subscribes to. An empty
//!   group without offsets is then removed.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};

use sluice_protocol::error_code::ErrorCode;

use super::liveness::validate_member;
use super::membership::Group;
use super::request::{
    CommitRequest, DeleteOffsetsResult, GroupDescription, GroupListing, GroupOffsets, GroupReply,
    ListFilter, MemberDescription, OffsetToCommit, TxnMember,
};
use super::state::persistence::{group_tombstone, offset_record};
use super::state::{commit_error, GroupMachine, PendingWrite, TimerKey};
use super::types::{CommittedOffset, GroupState, Token, TopicPartition};

impl GroupMachine {
    pub(super) fn commit(&mut self, token: Token, r: CommitRequest, now: i64) {
        let entries = r.offsets.len();
        let all = move |e: ErrorCode| -> GroupReply { GroupReply::Commit(vec![e; entries]) };
        if self.loading {
            return self.reply(token, all(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS));
        }
        if !self.groups.contains_key(&r.group_id) {
            if r.generation >= 0 {
                // A generation of a group this coordinator does not know: stale.
                return self.reply(token, all(ErrorCode::ILLEGAL_GENERATION));
            }
            // A consumer that uses Kafka only to store offsets.
            let incarnation = self.incarnation();
            self.groups.insert(r.group_id.clone(), Group::new(&r.group_id, incarnation, now));
        }
        let id = r.group_id.clone();
        self.with_group(&id, |c, g| {
            if let Some(e) = validate_commit(g, &r) {
                return c.reply(token, all(e));
            }
            match g.state {
                GroupState::Empty => c.store_offsets(g, token, r, now),
                // During a rebalance commits still count: the heartbeat tells the member.
                GroupState::Stable | GroupState::PreparingRebalance => {
                    c.schedule_heartbeat(g, &r.member_id, now);
                    c.store_offsets(g, token, r, now);
                }
                // The member has its new generation but not its assignment yet.
                GroupState::CompletingRebalance => {
                    c.reply(token, all(ErrorCode::REBALANCE_IN_PROGRESS))
                }
                GroupState::Dead => c.reply(token, all(ErrorCode::COORDINATOR_NOT_AVAILABLE)),
            }
        });
    }

    /// A committed transaction's offsets: stored whatever the group's state, as Kafka
    /// materialises them when the commit marker reaches `__consumer_offsets`.
    pub(super) fn commit_txn_offsets(
        &mut self,
        token: Token,
        group: String,
        offsets: Vec<OffsetToCommit>,
        now: i64,
    ) {
        if self.loading {
            let all = vec![ErrorCode::COORDINATOR_LOAD_IN_PROGRESS; offsets.len()];
            return self.reply(token, GroupReply::Commit(all));
        }
        if !self.groups.contains_key(&group) {
            let incarnation = self.incarnation();
            self.groups.insert(group.clone(), Group::new(&group, incarnation, now));
        }
        let r = CommitRequest {
            group_id: group.clone(),
            generation: -1,
            member_id: String::new(),
            instance_id: None,
            retention_ms: -1,
            offsets,
        };
        self.with_group(&group, |c, g| c.store_offsets(g, token, r, now));
    }

    /// Kafka's checks of a TxnOffsetCommit's member (`doTxnCommitOffsets`): unlike
    /// OffsetCommit, a commit without member (generation -1, empty member id) is accepted
    /// into a group with members, as producers of before KIP-447 send it.
    pub(super) fn validate_txn_member(&mut self, token: Token, m: &TxnMember) {
        let error = if self.loading {
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
        } else {
            match self.groups.get(&m.group_id) {
                Some(g) if g.state == GroupState::Dead => ErrorCode::COORDINATOR_NOT_AVAILABLE,
                Some(g) => txn_member_error(
                    g.generation,
                    |id| g.members.contains_key(id),
                    m,
                    || m.instance_id.as_deref().and_then(|i| g.static_member(i)),
                ),
                // A group that does not exist yet is an empty one of generation 0.
                None => txn_member_error(0, |_| false, m, || None),
            }
        };
        self.reply(token, GroupReply::Heartbeat(error));
    }

    fn store_offsets(&mut self, g: &mut Group, token: Token, r: CommitRequest, now: i64) {
        let mut results = Vec::with_capacity(r.offsets.len());
        let mut offsets: Vec<(TopicPartition, CommittedOffset)> = Vec::new();
        // A partition named twice is committed once, with its last valid entry: the
        // state Kafka ends in after writing both, for one record instead of one per entry.
        let mut slots: HashMap<TopicPartition, usize> = HashMap::new();
        for o in r.offsets {
            let metadata = o.metadata.unwrap_or_default();
            if metadata.len() > self.config.offset_metadata_max_bytes {
                results.push(ErrorCode::OFFSET_METADATA_TOO_LARGE);
                continue;
            }
            let committed = CommittedOffset {
                offset: o.offset,
                leader_epoch: o.leader_epoch,
                metadata,
                // As Kafka: an explicit (v1) commit time dates the offset, and so its
                // expiry by `offsets.retention.minutes`; an explicit retention (v2–v4)
                // counts from the coordinator's clock all the same.
                commit_timestamp: if o.commit_timestamp == -1 { now } else { o.commit_timestamp },
                expire_timestamp: (r.retention_ms >= 0).then(|| now.saturating_add(r.retention_ms)),
            };
            results.push(ErrorCode::NONE);
            match slots.entry(o.partition) {
                Entry::Occupied(slot) => offsets[*slot.get()].1 = committed,
                Entry::Vacant(slot) => {
                    offsets.push((slot.key().clone(), committed));
                    slot.insert(offsets.len() - 1);
                }
            }
        }
        if offsets.is_empty() {
            return self.reply(token, GroupReply::Commit(results));
        }
        let records = offsets.iter().map(|(tp, o)| offset_record(&g.id, tp, Some(o))).collect();
        let pending = PendingWrite::Commit {
            token,
            group: g.id.clone(),
            incarnation: g.incarnation,
            offsets,
            results,
        };
        self.issue(Some(g), records, pending);
    }

    pub(super) fn commit_written(
        &mut self,
        token: Token,
        group: &str,
        incarnation: u64,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
        mut results: Vec<ErrorCode>,
        result: Result<(), ErrorCode>,
    ) {
        let g = self.finish_write(group, incarnation);
        match result {
            Ok(()) => {
                if let Some(g) = g {
                    g.offsets.extend(offsets);
                }
            }
            Err(e) => {
                for code in results.iter_mut().filter(|c| **c == ErrorCode::NONE) {
                    *code = commit_error(e);
                }
            }
        }
        self.reply(token, GroupReply::Commit(results));
    }

    pub(super) fn fetch_offsets(
        &mut self,
        token: Token,
        groups: Vec<(String, Option<Vec<TopicPartition>>)>,
    ) {
        let answers = groups
            .into_iter()
            .map(|(group_id, partitions)| {
                if self.loading {
                    let error = ErrorCode::COORDINATOR_LOAD_IN_PROGRESS;
                    return GroupOffsets { group_id, error, offsets: Vec::new() };
                }
                let g = self.groups.get(&group_id);
                let offsets = match partitions {
                    Some(list) => list
                        .into_iter()
                        .map(|tp| {
                            let o = g.and_then(|g| g.offsets.get(&tp)).cloned().map(Box::new);
                            (tp, o)
                        })
                        .collect(),
                    None => g
                        .map(|g| {
                            g.offsets
                                .iter()
                                .map(|(tp, o)| (tp.clone(), Some(Box::new(o.clone()))))
                                .collect()
                        })
                        .unwrap_or_default(),
                };
                GroupOffsets { group_id, error: ErrorCode::NONE, offsets }
            })
            .collect();
        self.reply(token, GroupReply::FetchOffsets(answers));
    }

    pub(super) fn delete_offsets(
        &mut self,
        token: Token,
        group: &str,
        partitions: Vec<TopicPartition>,
    ) {
        let fail = |error| {
            GroupReply::DeleteOffsets(DeleteOffsetsResult { error, partitions: Vec::new() })
        };
        if self.loading {
            return self.reply(token, fail(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS));
        }
        let done = self.with_group(group, |c, g| {
            let consumer = g.protocol_type.as_deref() == Some("consumer");
            let subscribed =
                |tp: &TopicPartition| g.subscribed.as_ref().is_some_and(|s| s.contains(&*tp.topic));
            let results: Vec<(TopicPartition, ErrorCode)> = match g.state {
                GroupState::Empty => {
                    partitions.iter().map(|tp| (tp.clone(), ErrorCode::NONE)).collect()
                }
                GroupState::PreparingRebalance
                | GroupState::CompletingRebalance
                | GroupState::Stable
                    if consumer =>
                {
                    partitions
                        .iter()
                        .map(|tp| {
                            let e = if subscribed(tp) {
                                ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC
                            } else {
                                ErrorCode::NONE
                            };
                            (tp.clone(), e)
                        })
                        .collect()
                }
                _ => return c.reply(token, fail(ErrorCode::NON_EMPTY_GROUP)),
            };
            let doomed: BTreeSet<TopicPartition> = results
                .iter()
                .filter(|(_, e)| *e == ErrorCode::NONE)
                .map(|(tp, _)| tp.clone())
                .collect();
            let records: Vec<_> = doomed
                .iter()
                .filter(|tp| g.offsets.remove(*tp).is_some())
                .map(|tp| offset_record(&g.id, tp, None))
                .collect();
            c.cancel_commits(&g.id, g.incarnation, Some(&doomed));
            let reply = GroupReply::DeleteOffsets(DeleteOffsetsResult {
                error: ErrorCode::NONE,
                partitions: results,
            });
            if records.is_empty() {
                return c.reply(token, reply);
            }
            let pending = PendingWrite::Tombstones {
                group: Some((g.id.clone(), g.incarnation)),
                reply: Some((token, reply)),
            };
            c.issue(Some(g), records, pending);
        });
        if done.is_none() {
            self.reply(token, fail(ErrorCode::GROUP_ID_NOT_FOUND));
        }
    }

    /// Removes every group's offsets for `topics`, those of commits still in flight
    /// included (their records are in the log before the tombstones written here).
    pub(super) fn topics_deleted(&mut self, topics: &[String]) {
        // A set: a request may delete many topics, and every committed offset is checked.
        let topics: HashSet<&str> = topics.iter().map(String::as_str).collect();
        let deleted = |tp: &TopicPartition| topics.contains(&*tp.topic);
        let ids: Vec<String> = self.groups.keys().cloned().collect();
        for id in ids {
            self.with_group(&id, |c, g| {
                let mut doomed: BTreeSet<TopicPartition> =
                    g.offsets.keys().filter(|tp| deleted(tp)).cloned().collect();
                for w in c.writes.values() {
                    if let PendingWrite::Commit { group, incarnation, offsets, .. } = w {
                        if *group == g.id && *incarnation == g.incarnation {
                            doomed.extend(offsets.iter().map(|(tp, _)| tp).filter(|tp| deleted(tp)).cloned());
                        }
                    }
                }
                if doomed.is_empty() {
                    return;
                }
                for tp in &doomed {
                    g.offsets.remove(tp);
                }
                c.cancel_commits(&g.id, g.incarnation, Some(&doomed));
                tracing::info!(group = %g.id, partitions = doomed.len(), "removing offsets of deleted topics");
                let records = doomed.iter().map(|tp| offset_record(&g.id, tp, None)).collect();
                let pending = PendingWrite::Tombstones {
                    group: Some((g.id.clone(), g.incarnation)),
                    reply: None,
                };
                c.issue(Some(g), records, pending);
            });
        }
    }

    /// Drops, from commits still in flight for this group, the partitions in `only` (all
    /// of them for `None`): their tombstones follow the commits in the log.
    fn cancel_commits(
        &mut self,
        group: &str,
        incarnation: u64,
        only: Option<&BTreeSet<TopicPartition>>,
    ) {
        for w in self.writes.values_mut() {
            if let PendingWrite::Commit { group: g, incarnation: i, offsets, .. } = w {
                if g == group && *i == incarnation {
                    offsets.retain(|(tp, _)| only.is_some_and(|set| !set.contains(tp)));
                }
            }
        }
    }

    pub(super) fn delete_groups(&mut self, token: Token, ids: Vec<String>) {
        let mut results = Vec::with_capacity(ids.len());
        let mut records = Vec::new();
        for id in ids {
            let error = if self.loading {
                ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            } else {
                match self.groups.get(&id).map(|g| g.state) {
                    None => ErrorCode::GROUP_ID_NOT_FOUND,
                    Some(GroupState::Empty) => {
                        let g = self.groups.remove(&id).expect("invariant: just found");
                        records.extend(g.offsets.keys().map(|tp| offset_record(&id, tp, None)));
                        records.push(group_tombstone(&id));
                        self.cancel_commits(&id, g.incarnation, None);
                        ErrorCode::NONE
                    }
                    Some(_) => ErrorCode::NON_EMPTY_GROUP,
                }
            };
            results.push(error);
        }
        let reply = GroupReply::Delete(results);
        if records.is_empty() {
            return self.reply(token, reply);
        }
        self.issue(
            None,
            records,
            PendingWrite::Tombstones { group: None, reply: Some((token, reply)) },
        );
    }

    pub(super) fn expire_offsets(&mut self, now: i64) {
        self.set_timer(
            TimerKey::OffsetExpiry,
            now + self.config.offsets_retention_check_interval_ms,
        );
        let retention = self.config.offsets_retention_ms;
        let mut records = Vec::new();
        let mut dead = Vec::new();
        for g in self.groups.values_mut() {
            // A write in flight may be about to change what expires: look again next time.
            if g.writes_in_flight > 0 {
                continue;
            }
            let expired: Vec<TopicPartition> = {
                let due = |o: &CommittedOffset, base: i64| match o.expire_timestamp {
                    Some(at) => now >= at,
                    None => now.saturating_sub(base) >= retention,
                };
                let offsets = g.offsets.iter();
                match (g.protocol_type.as_deref(), g.state) {
                    (Some(_), GroupState::Empty) => offsets
                        .filter(|(_, o)| due(o, g.state_timestamp.unwrap_or(o.commit_timestamp)))
                        .map(|(tp, _)| tp.clone())
                        .collect(),
                    (Some("consumer"), GroupState::Stable) if g.subscribed.is_some() => {
                        let subscribed = g.subscribed.as_ref().expect("invariant: checked above");
                        offsets
                            .filter(|(tp, o)| {
                                !subscribed.contains(&*tp.topic) && due(o, o.commit_timestamp)
                            })
                            .map(|(tp, _)| tp.clone())
                            .collect()
                    }
                    (None, _) => offsets
                        .filter(|(_, o)| due(o, o.commit_timestamp))
                        .map(|(tp, _)| tp.clone())
                        .collect(),
                    _ => Vec::new(),
                }
            };
            for tp in expired {
                g.offsets.remove(&tp);
                records.push(offset_record(&g.id, &tp, None));
            }
            let idle = g.state == GroupState::Empty && g.members.is_empty() && g.pending.is_empty();
            if idle && g.offsets.is_empty() {
                if g.persisted.is_some() {
                    records.push(group_tombstone(&g.id));
                }
                dead.push(g.id.clone());
            }
        }
        for id in dead {
            tracing::info!(group = %id, "removing empty group without offsets");
            self.groups.remove(&id);
        }
        if !records.is_empty() {
            tracing::info!(records = records.len(), "expiring offsets and groups");
            self.issue(None, records, PendingWrite::Tombstones { group: None, reply: None });
        }
    }

    pub(super) fn list(&mut self, token: Token, filter: &ListFilter) {
        let error =
            if self.loading { ErrorCode::COORDINATOR_LOAD_IN_PROGRESS } else { ErrorCode::NONE };
        // Every group here is a classic group (KIP-848's `consumer` type is not served).
        let mut groups: Vec<GroupListing> = self
            .groups
            .values()
            .filter(|_| filter.classic)
            .filter(|g| filter.states.as_ref().is_none_or(|s| s.contains(&g.state)))
            .map(|g| GroupListing {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state,
            })
            .collect();
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        self.reply(token, GroupReply::List { error, groups });
    }

    pub(super) fn describe(&mut self, token: Token, ids: Vec<String>) {
        let described = ids.into_iter().map(|id| self.describe_one(id)).collect();
        self.reply(token, GroupReply::Describe(described));
    }

    fn describe_one(&self, group_id: String) -> GroupDescription {
        let mut d = GroupDescription {
            error: ErrorCode::NONE,
            group_id,
            state: GroupState::Dead,
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        };
        if self.loading {
            d.error = ErrorCode::COORDINATOR_LOAD_IN_PROGRESS;
            return d;
        }
        let Some(g) = self.groups.get(&d.group_id) else { return d };
        d.state = g.state;
        d.protocol_type = g.protocol_type.clone().unwrap_or_default();
        // Like Kafka, protocol, metadata and assignments only for a stable group: in other
        // states they belong to a generation that is being replaced.
        let stable = g.state == GroupState::Stable;
        let protocol = g.protocol_name.clone().unwrap_or_default();
        if stable {
            d.protocol = protocol.clone();
        }
        d.members = g
            .members_in_order()
            .into_iter()
            .map(|m| MemberDescription {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable { m.metadata(&protocol) } else { Default::default() },
                assignment: if stable { m.assignment.clone() } else { Default::default() },
            })
            .collect();
        d
    }
}

fn txn_member_error<'a>(
    generation: i32,
    has_member: impl Fn(&str) -> bool,
    m: &TxnMember,
    static_member: impl FnOnce() -> Option<&'a str>,
) -> ErrorCode {
    if let Some(current) = static_member() {
        if current != m.member_id {
            return ErrorCode::FENCED_INSTANCE_ID;
        }
    }
    if !m.member_id.is_empty() && !has_member(&m.member_id) {
        return ErrorCode::UNKNOWN_MEMBER_ID;
    }
    if m.generation >= 0 && m.generation != generation {
        return ErrorCode::ILLEGAL_GENERATION;
    }
    ErrorCode::NONE
}

/// Kafka's checks of an OffsetCommit against the group (`validateOffsetCommit`).
fn validate_commit(g: &Group, r: &CommitRequest) -> Option<ErrorCode> {
    if g.state == GroupState::Dead {
        return Some(ErrorCode::COORDINATOR_NOT_AVAILABLE);
    }
    if r.generation < 0 && g.state == GroupState::Empty {
        return None;
    }
    if r.generation >= 0 || !r.member_id.is_empty() || r.instance_id.is_some() {
        return validate_member(g, &r.member_id, r.instance_id.as_deref())
            .or((r.generation != g.generation).then_some(ErrorCode::ILLEGAL_GENERATION));
    }
    // Only members may commit to a group that has members.
    (g.state != GroupState::Empty).then_some(ErrorCode::UNKNOWN_MEMBER_ID)
}
