//! Partition assignment for the classic consumer group protocol, sans I/O: the group
//! leader turns every member's subscription into each member's partitions, exactly as
//! Kafka's Java client does, so a Sluice leader and a Java one hand out the same
//! partitions to the same members.
//!
//! - [`RangeAssignor`] (`range`): per topic, contiguous ranges.
//! - [`RoundRobinAssignor`] (`roundrobin`): every partition dealt in turn.
//! - [`CooperativeStickyAssignor`] (`cooperative-sticky`): keeps owned partitions, balances,
//!   and moves a partition between members in two rebalances (KIP-429).
//!
//! [`rebalance_changes`] is the member's side: what to revoke and what is new once an
//! assignment arrives.
//!
//! Orders are Java's: members by `group.instance.id` when present, before those without,
//! then by member id (`AbstractPartitionAssignor.MemberInfo`); strings compared as Java's
//! `String.compareTo` does, by UTF-16 code unit. Java iterates some of its maps in hash
//! order where the result depends on it; here those ties fall to member id order instead,
//! so every result is deterministic.
//!
//! The assignors see partition counts, not replica racks, so none of Java's rack-aware
//! paths apply (as in Java's `assign(Map<String, Integer>, ...)`); `rack` is carried for a
//! future rack-aware assignor.

pub mod cooperative_sticky;
pub mod range;
pub mod round_robin;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

pub use cooperative_sticky::{CooperativeAssignment, CooperativeStickyAssignor};
pub use range::RangeAssignor;
pub use round_robin::RoundRobinAssignor;

use super::protocol::{Subscription, TopicPartitions};

/// Each member id's assigned `(topic, partition)` pairs, sorted; every member is present.
pub type GroupAssignment = BTreeMap<String, Vec<(String, i32)>>;

/// How a group moves partitions between members in a rebalance (KIP-429).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RebalanceProtocol {
    /// Every member gives up all its partitions before rejoining ("stop the world").
    Eager,
    /// Members keep what they are still assigned; a partition changes owner over two
    /// rebalances, the old owner revoking it in between.
    Cooperative,
}

/// One member's subscription as the leader's assignor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSubscription {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its `group.instance.id` (static membership, KIP-345).
    pub group_instance_id: Option<String>,
    /// The topics it subscribes to.
    pub topics: Vec<String>,
    /// The partitions it owns now (empty under the eager protocol).
    pub owned_partitions: Vec<(String, i32)>,
    /// The generation `owned_partitions` come from; -1 unknown (KIP-792).
    pub generation: i32,
    /// Its `client.rack`, if set and not empty.
    pub rack: Option<String>,
}

impl MemberSubscription {
    /// The assignor's view of a decoded JoinGroup subscription; an empty rack id counts as
    /// none, as in Java.
    pub fn from_subscription(
        member_id: String,
        group_instance_id: Option<String>,
        subscription: Subscription,
    ) -> MemberSubscription {
        MemberSubscription {
            member_id,
            group_instance_id,
            owned_partitions: TopicPartitions::flatten(&subscription.owned_partitions),
            topics: subscription.topics,
            generation: subscription.generation_id,
            rack: subscription.rack_id.filter(|r| !r.is_empty()),
        }
    }
}

/// A partition assignment strategy, run by the group's leader.
pub trait Assignor: Send + Sync + std::fmt::Debug {
    /// The protocol name members advertise in JoinGroup.
    fn name(&self) -> &'static str;

    /// How members move partitions under this assignor.
    fn protocol(&self) -> RebalanceProtocol;

    /// Each member's partitions. `partitions_per_topic` holds the partition count of every
    /// topic known to exist; subscribed topics missing from it get nothing. Member ids are
    /// expected to be unique; of a repeated id, the first subscription counts.
    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, u32>,
        members: &[MemberSubscription],
    ) -> GroupAssignment;

    /// The assignor's view of a member's decoded subscription (Java's `memberData`): by
    /// default [`MemberSubscription::from_subscription`].
    fn member_subscription(
        &self,
        member_id: String,
        group_instance_id: Option<String>,
        subscription: Subscription,
    ) -> MemberSubscription {
        MemberSubscription::from_subscription(member_id, group_instance_id, subscription)
    }
}

/// The built-in assignor with this protocol name: `range`, `roundrobin` or
/// `cooperative-sticky`.
pub fn assignor_by_name(name: &str) -> Option<Box<dyn Assignor>> {
    match name {
        RangeAssignor::NAME => Some(Box::new(RangeAssignor)),
        RoundRobinAssignor::NAME => Some(Box::new(RoundRobinAssignor)),
        CooperativeStickyAssignor::NAME => Some(Box::new(CooperativeStickyAssignor)),
        _ => None,
    }
}

/// What a member does with a new assignment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebalanceChanges {
    /// Partitions to give up (commit, then call the revoke callback), sorted.
    pub revoked: Vec<(String, i32)>,
    /// Partitions newly the member's, sorted.
    pub added: Vec<(String, i32)>,
    /// Rejoin at once: under the cooperative protocol, a revoked partition is waiting for
    /// a follow-up rebalance to reach its new owner (Java's `onJoinComplete`).
    pub rejoin: bool,
}

/// What changes for a member that owned `owned` and is now assigned `assigned`.
///
/// Eager: everything owned is revoked (Java does so before rejoining) and everything
/// assigned is added. Cooperative: only the difference, both ways.
pub fn rebalance_changes(
    protocol: RebalanceProtocol,
    owned: &[(String, i32)],
    assigned: &[(String, i32)],
) -> RebalanceChanges {
    let owned: BTreeSet<&(String, i32)> = owned.iter().collect();
    let assigned: BTreeSet<&(String, i32)> = assigned.iter().collect();
    match protocol {
        RebalanceProtocol::Eager => RebalanceChanges {
            revoked: owned.into_iter().cloned().collect(),
            added: assigned.into_iter().cloned().collect(),
            rejoin: false,
        },
        RebalanceProtocol::Cooperative => {
            let revoked: Vec<(String, i32)> =
                owned.difference(&assigned).map(|&tp| tp.clone()).collect();
            RebalanceChanges {
                added: assigned.difference(&owned).map(|&tp| tp.clone()).collect(),
                rejoin: !revoked.is_empty(),
                revoked,
            }
        }
    }
}

/// Java's `String.compareTo`: by UTF-16 code unit, which differs from Rust's byte order
/// only past U+FFFF against U+E000..U+FFFF.
fn java_cmp(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Java's `MemberInfo` order: static members first, by instance id, then the rest by
/// member id; member id breaks the ties Java leaves to its sort's input order.
fn member_order(a: &MemberSubscription, b: &MemberSubscription) -> Ordering {
    let by_instance = match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => java_cmp(x, y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    by_instance.then_with(|| java_cmp(&a.member_id, &b.member_id))
}

/// A group's members and topics, indexed: the common ground of the assignors.
#[derive(Debug)]
struct Group<'a> {
    /// Members, each id once, in member id order.
    members: Vec<&'a MemberSubscription>,
    /// Topics that exist and that some member subscribes to, in name order, each with its
    /// partition count.
    topics: Vec<(&'a str, i32)>,
    /// Per member, the indices of its topics in `topics`, ascending.
    subscribed: Vec<Vec<usize>>,
    /// Per topic, the indices of its subscribers in `members`, ascending.
    subscribers: Vec<Vec<usize>>,
}

impl<'a> Group<'a> {
    fn new(
        partitions_per_topic: &'a BTreeMap<String, u32>,
        members: &'a [MemberSubscription],
    ) -> Group<'a> {
        let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
        // Stable, so the first of a repeated id stays first and survives the dedup.
        sorted.sort_by(|a, b| java_cmp(&a.member_id, &b.member_id));
        sorted.dedup_by(|b, a| a.member_id == b.member_id);

        let mut topics: Vec<(&str, i32)> = sorted
            .iter()
            .flat_map(|m| m.topics.iter())
            .filter_map(|t| {
                let (name, &count) = partitions_per_topic.get_key_value(t)?;
                // Partition ids are i32 on the wire.
                Some((name.as_str(), i32::try_from(count).unwrap_or(i32::MAX)))
            })
            .collect();
        topics.sort_by(|a, b| java_cmp(a.0, b.0));
        topics.dedup_by(|b, a| a.0 == b.0);

        let mut subscribers = vec![Vec::new(); topics.len()];
        let subscribed = sorted
            .iter()
            .enumerate()
            .map(|(m, member)| {
                let mut own: Vec<usize> = member
                    .topics
                    .iter()
                    .filter_map(|t| topics.binary_search_by(|probe| java_cmp(probe.0, t)).ok())
                    .collect();
                own.sort_unstable();
                own.dedup();
                for &t in &own {
                    subscribers[t].push(m);
                }
                own
            })
            .collect();
        Group { members: sorted, topics, subscribed, subscribers }
    }

    fn topic_index(&self, name: &str) -> Option<usize> {
        self.topics.binary_search_by(|probe| java_cmp(probe.0, name)).ok()
    }

    fn is_subscribed(&self, member: usize, topic: usize) -> bool {
        self.subscribed[member].binary_search(&topic).is_ok()
    }

    /// Turns per-member `(topic index, partition)` lists into the public form, sorted.
    fn finish(&self, assigned: Vec<Vec<(usize, i32)>>) -> GroupAssignment {
        self.members
            .iter()
            .zip(assigned)
            .map(|(member, mut partitions)| {
                partitions.sort_unstable();
                let named =
                    partitions.into_iter().map(|(t, p)| (self.topics[t].0.to_owned(), p)).collect();
                (member.member_id.clone(), named)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
