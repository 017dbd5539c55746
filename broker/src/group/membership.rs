//! One group's membership and offsets, with the bookkeeping Kafka's `GroupMetadata` keeps:
//! members, static members, pending members, the protocols members support, the leader,
//! the generation and the state.
//!
//! Invariants every method keeps:
//! - `supported[p]` is the number of members that list protocol `p`.
//! - `awaiting_join` is the number of members whose `join` token is set.
//! - `static_members` maps the instance id of every static member to that member's id,
//!   and holds nothing else.
//! - `leader` names a member of `members`, or is `None` exactly when `members` is empty.
//! - An id is never both in `members` and in `pending`.
//! - `pending_sync` and `awaiting_join` only name members of `members`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bytes::Bytes;
use sluice_protocol::consumer_protocol::Subscription;

use super::types::{CommittedOffset, GroupState, Protocol, Token, TopicPartition};

/// One member of a group.
#[derive(Debug, Clone)]
pub struct Member {
    /// `<client id or instance id>-<uuid>`.
    pub id: String,
    /// `group.instance.id` of a static member (KIP-345).
    pub instance_id: Option<String>,
    /// The client id from the request header.
    pub client_id: String,
    /// Where the client connects from.
    pub client_host: String,
    /// How long the member may stay silent before it is expelled.
    pub session_timeout_ms: i32,
    /// How long a rebalance waits for the member to rejoin.
    pub rebalance_timeout_ms: i32,
    /// The protocol type it joined with (`consumer`, `connect`, ...).
    pub protocol_type: String,
    /// Supported protocols, most preferred first.
    pub protocols: Vec<Protocol>,
    /// The assignment the leader gave it for the current generation.
    pub assignment: Bytes,
    /// The JoinGroup request waiting for the join phase to end.
    pub join: Option<Token>,
    /// The SyncGroup request waiting for the leader's assignment.
    pub sync: Option<Token>,
    /// Joined but never received a JoinGroup response: the session timeout does not apply
    /// yet, the new-member join timeout does.
    pub is_new: bool,
    /// When its session (or new-member join timeout) runs out, in ms since the epoch.
    pub session_deadline: i64,
    /// Join order within the group: the leader is re-elected by it, lists are sorted by it.
    pub seq: u64,
}

impl Member {
    /// The metadata this member gave for `protocol` (empty if it does not support it).
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    /// Whether `protocols` is exactly what the member joined with, in order.
    pub fn matches(&self, protocols: &[Protocol]) -> bool {
        self.protocols == protocols
    }

    /// The member's most preferred protocol among `candidates`.
    fn vote<'a>(&'a self, candidates: &HashSet<&str>) -> Option<&'a str> {
        self.protocols.iter().map(|p| p.name.as_str()).find(|n| candidates.contains(n))
    }
}

/// The join phase of a rebalance: when it ends, and for the initial delay of an empty
/// group (`group.initial.rebalance.delay.ms`) how much of the rebalance timeout is left
/// to extend it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinPhase {
    /// When the phase ends unless every member joined first.
    pub deadline: i64,
    /// `Some(remaining ms)` for Kafka's `InitialDelayedJoin`, which never ends early.
    pub initial_remaining: Option<i64>,
}

/// A consumer group.
#[derive(Debug, Clone)]
pub struct Group {
    /// The group id.
    pub id: String,
    /// Distinguishes this group from an earlier one of the same id (deleted, re-created):
    /// a write completion applies only to the incarnation that issued it.
    pub incarnation: u64,
    /// Current state.
    pub state: GroupState,
    /// When the state last changed (Kafka's `currentStateTimestamp`); `None` for a group
    /// loaded from offsets alone.
    pub state_timestamp: Option<i64>,
    /// Protocol type of its members (`consumer`); `None` for groups that only commit.
    pub protocol_type: Option<String>,
    /// The protocol of the current generation.
    pub protocol_name: Option<String>,
    /// The generation id.
    pub generation: i32,
    /// The leader's member id.
    pub leader: Option<String>,
    /// Members by id.
    pub members: HashMap<String, Member>,
    /// Instance id → member id of static members.
    pub static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with their expiry deadline.
    pub pending: HashMap<String, i64>,
    /// Members that have not sent SyncGroup since the generation formed.
    pub pending_sync: HashSet<String>,
    /// When members that have not synced are expelled.
    pub sync_deadline: Option<i64>,
    /// The join phase, while the group is preparing a rebalance.
    pub join_phase: Option<JoinPhase>,
    /// A member was added during the first rebalance: the initial delay may be extended.
    pub new_member_added: bool,
    /// Committed offsets.
    pub offsets: BTreeMap<TopicPartition, CommittedOffset>,
    /// The last group metadata value written to the log (the group's record in a cleaned log).
    pub persisted: Option<Bytes>,
    /// Topics the members subscribe to, when they speak the consumer protocol.
    pub subscribed: Option<BTreeSet<String>>,
    /// Log writes issued for this group and not completed yet.
    pub writes_in_flight: usize,
    supported: HashMap<String, usize>,
    awaiting_join: usize,
    next_seq: u64,
    /// Member ids by join order (`Member::seq`): the oldest member is found without a
    /// sort, so removing members one after another (a LeaveGroup of many, a join phase
    /// that expels many) costs O(log n) each, not O(n log n).
    order: BTreeMap<u64, String>,
}

impl Group {
    /// A new, empty group.
    pub fn new(id: &str, incarnation: u64, now: i64) -> Group {
        Group {
            id: id.to_owned(),
            incarnation,
            state: GroupState::Empty,
            state_timestamp: Some(now),
            protocol_type: None,
            protocol_name: None,
            generation: 0,
            leader: None,
            members: HashMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            pending_sync: HashSet::new(),
            sync_deadline: None,
            join_phase: None,
            new_member_added: false,
            offsets: BTreeMap::new(),
            persisted: None,
            subscribed: None,
            writes_in_flight: 0,
            supported: HashMap::new(),
            awaiting_join: 0,
            next_seq: 0,
            order: BTreeMap::new(),
        }
    }

    /// Moves to `state`, stamping the time.
    pub fn transition(&mut self, state: GroupState, now: i64) {
        self.state = state;
        self.state_timestamp = Some(now);
    }

    /// Whether the group may start a rebalance (Kafka's `canRebalance`).
    pub fn can_rebalance(&self) -> bool {
        matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        )
    }

    /// Whether `member_id` leads the group.
    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    /// Members in join order.
    pub fn members_in_order(&self) -> Vec<&Member> {
        self.order.values().map(|id| &self.members[id]).collect()
    }

    /// The largest rebalance timeout of the members (Kafka's group rebalance timeout).
    pub fn rebalance_timeout_ms(&self) -> i64 {
        self.members.values().map(|m| i64::from(m.rebalance_timeout_ms)).max().unwrap_or(0)
    }

    /// Whether every member has rejoined and no MEMBER_ID_REQUIRED member is outstanding.
    pub fn has_all_joined(&self) -> bool {
        self.awaiting_join == self.members.len() && self.pending.is_empty()
    }

    /// Whether a member joining with this protocol type and these protocols fits the
    /// group: anything non-empty fits an empty group; otherwise the type must match and one
    /// of the protocols must be supported by every current member.
    pub fn supports(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.state == GroupState::Empty {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|p| self.supported.get(&p.name) == Some(&self.members.len()))
    }

    /// Adds a member (it must fit: see [`Self::supports`]); the first member sets the
    /// protocol type and the first one of a leaderless group leads it.
    pub fn add(&mut self, mut member: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member.id.clone());
        }
        if let Some(instance) = &member.instance_id {
            self.static_members.insert(instance.clone(), member.id.clone());
        }
        for p in &member.protocols {
            *self.supported.entry(p.name.clone()).or_default() += 1;
        }
        if member.join.is_some() {
            self.awaiting_join += 1;
        }
        member.seq = self.next_seq;
        self.next_seq += 1;
        self.pending.remove(&member.id);
        self.order.insert(member.seq, member.id.clone());
        if let Some(old) = self.members.insert(member.id.clone(), member) {
            // Not reached (callers add new ids only), but the index must not keep it.
            self.order.remove(&old.seq);
        }
    }

    /// Removes a member, electing another leader if it led the group.
    pub fn remove(&mut self, member_id: &str) -> Option<Member> {
        let member = self.members.remove(member_id)?;
        self.uncount_protocols(&member.protocols);
        if member.join.is_some() {
            self.awaiting_join -= 1;
        }
        if let Some(instance) = &member.instance_id {
            self.static_members.remove(instance);
        }
        self.order.remove(&member.seq);
        if self.is_leader(member_id) {
            self.leader = self.order.values().next().cloned();
        }
        self.pending_sync.remove(member_id);
        Some(member)
    }

    fn uncount_protocols(&mut self, protocols: &[Protocol]) {
        for p in protocols {
            if let Some(n) = self.supported.get_mut(&p.name) {
                *n -= 1;
                if *n == 0 {
                    self.supported.remove(&p.name);
                }
            }
        }
    }

    /// Replaces a member's protocols and timeouts (a rejoin).
    pub fn update_member(
        &mut self,
        member_id: &str,
        protocols: Vec<Protocol>,
        rebalance_timeout_ms: i32,
        session_timeout_ms: i32,
    ) {
        let Some(old) = self.members.get(member_id).map(|m| m.protocols.clone()) else { return };
        self.uncount_protocols(&old);
        for p in &protocols {
            *self.supported.entry(p.name.clone()).or_default() += 1;
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.protocols = protocols;
            m.rebalance_timeout_ms = rebalance_timeout_ms;
            m.session_timeout_ms = session_timeout_ms;
        }
    }

    /// Sets (or clears) the JoinGroup a member waits with; returns the one it replaces.
    pub fn set_join(&mut self, member_id: &str, token: Option<Token>) -> Option<Token> {
        let member = self.members.get_mut(member_id)?;
        let old = std::mem::replace(&mut member.join, token);
        match (old.is_some(), member.join.is_some()) {
            (false, true) => self.awaiting_join += 1,
            (true, false) => self.awaiting_join -= 1,
            _ => {}
        }
        old
    }

    /// The member id a static member's instance id maps to.
    pub fn static_member(&self, instance_id: &str) -> Option<&str> {
        self.static_members.get(instance_id).map(String::as_str)
    }

    /// Gives a static member a new member id (a restarted static member rejoins with an
    /// empty member id): same member, same assignment, new id. Returns the member's
    /// waiting JoinGroup and SyncGroup, which belong to the fenced old id.
    pub fn replace_static_member(
        &mut self,
        instance_id: &str,
        old_id: &str,
        new_id: &str,
    ) -> (Option<Token>, Option<Token>) {
        let Some(mut member) = self.members.remove(old_id) else { return (None, None) };
        let join = member.join.take();
        if join.is_some() {
            self.awaiting_join -= 1;
        }
        let sync = member.sync.take();
        member.id = new_id.to_owned();
        self.order.insert(member.seq, new_id.to_owned());
        self.members.insert(new_id.to_owned(), member);
        self.static_members.insert(instance_id.to_owned(), new_id.to_owned());
        if self.is_leader(old_id) {
            self.leader = Some(new_id.to_owned());
        }
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.to_owned());
        }
        (join, sync)
    }

    /// Makes a member that rejoined the leader if the leader did not rejoin; `false` when
    /// no member rejoined (or the group has none).
    pub fn elect_joined_leader(&mut self) -> bool {
        let Some(leader) = &self.leader else { return false };
        if self.members.get(leader).is_some_and(|m| m.join.is_some()) {
            return true;
        }
        let joined =
            self.members_in_order().into_iter().find(|m| m.join.is_some()).map(|m| m.id.clone());
        match joined {
            Some(id) => {
                self.leader = Some(id);
                true
            }
            None => false,
        }
    }

    /// The protocol for the next generation: among the protocols every member supports,
    /// each member votes for its most preferred one; most votes wins, ties go to the
    /// leader's preference order. `None` when no protocol is common to all members.
    pub fn select_protocol(&self) -> Option<String> {
        let n = self.members.len();
        let candidates: HashSet<&str> =
            self.supported.iter().filter(|(_, &c)| c == n).map(|(p, _)| p.as_str()).collect();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some(p) = m.vote(&candidates) {
                *votes.entry(p).or_default() += 1;
            }
        }
        let most = votes.values().copied().max()?;
        let preference = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .map(|m| m.protocols.iter().map(|p| p.name.as_str()).collect::<Vec<_>>())
            .unwrap_or_default();
        preference
            .into_iter()
            .find(|p| votes.get(p) == Some(&most))
            .or_else(|| votes.iter().filter(|(_, &v)| v == most).map(|(p, _)| *p).min())
            .map(str::to_owned)
    }

    /// Topics the members subscribe to: known only for the consumer protocol when every
    /// member's subscription parses.
    pub fn compute_subscribed(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for m in self.members.values() {
            topics.extend(Subscription::decode_topics(&m.metadata(protocol)).ok()?);
        }
        Some(topics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            id: id.into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: String::new(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|n| Protocol { name: (*n).into(), metadata: Bytes::new() })
                .collect(),
            assignment: Bytes::new(),
            join: Some(1),
            sync: None,
            is_new: true,
            session_deadline: 0,
            seq: 0,
        }
    }

    #[test]
    fn the_protocol_everyone_supports_wins_by_vote() {
        let mut g = Group::new("g", 0, 0);
        g.add(member("a", &["range", "roundrobin"]));
        g.transition(GroupState::PreparingRebalance, 0);
        g.add(member("b", &["roundrobin", "range"]));
        g.add(member("c", &["roundrobin", "sticky"]));
        // Only roundrobin is common to all three.
        assert_eq!(g.select_protocol().as_deref(), Some("roundrobin"));
        g.remove("c");
        // A tie between range and roundrobin goes to the leader's preference.
        assert_eq!(g.select_protocol().as_deref(), Some("range"));
        assert!(g.supports("consumer", &member("x", &["range"]).protocols));
        assert!(!g.supports("consumer", &member("x", &["sticky"]).protocols));
        assert!(!g.supports("connect", &member("x", &["range"]).protocols));
    }

    #[test]
    fn removing_the_leader_elects_the_oldest_member_and_counts_stay_right() {
        let mut g = Group::new("g", 0, 0);
        g.add(member("a", &["range"]));
        g.add(member("b", &["range"]));
        g.add(member("c", &["range"]));
        assert!(g.is_leader("a"));
        assert!(g.has_all_joined());
        g.remove("a");
        assert!(g.is_leader("b"));
        g.set_join("b", None);
        assert!(!g.has_all_joined());
        assert!(g.elect_joined_leader());
        assert!(g.is_leader("c"), "b did not rejoin, c did");
        g.remove("b");
        g.remove("c");
        assert_eq!(g.leader, None);
        assert!(g.supported.is_empty());
        assert_eq!(g.awaiting_join, 0);
    }
}
