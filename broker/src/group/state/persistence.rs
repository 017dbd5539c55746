//! What `__consumer_offsets` holds of the [`GroupMachine`]'s state, in both directions:
//! loading its records back ([`GroupMachine::load`], later records win, then
//! [`GroupMachine::finish_loading`]) and the records of a group's metadata and of a
//! committed offset.
//!
//! Invariant: the latest record of every key (what the log cleaner keeps) loaded into a
//! fresh machine gives the state the whole log gives.

use std::collections::HashMap;

use bytes::Bytes;

use super::{GroupMachine, LogRecord, Output, TimerKey};
use crate::group::membership::{Group, Member};
use crate::group::records::{self, GroupValue, MemberValue, OffsetValue, RecordError, RecordKey};
use crate::group::types::{CommittedOffset, GroupState, Protocol, TopicPartition};

impl GroupMachine {
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
    /// every committed offset (what a cleaned log must still hold; tests compare them).
    #[cfg(test)]
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

    /// How many records hold the whole state: one per group value and committed offset.
    pub fn live_records(&self) -> usize {
        self.groups.values().map(|g| usize::from(g.persisted.is_some()) + g.offsets.len()).sum()
    }

    /// The group value to persist for `group`, with these assignments.
    pub(in crate::group) fn group_value(
        group: &Group,
        assignment: &HashMap<String, Bytes>,
    ) -> Bytes {
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
pub(in crate::group) fn offset_record(
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
pub(in crate::group) fn group_tombstone(group: &str) -> LogRecord {
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
