//! Kafka's `CooperativeStickyAssignor` (`cooperative-sticky`, KIP-429 and KIP-341):
//! members keep the partitions they own where they still may, the group is balanced, and
//! a partition that must change owner does so over two rebalances.
//!
//! 1. Ownership: a member's claim to a partition (`owned_partitions`) counts when the
//!    partition exists and no member of a higher generation claims it (KIP-792). Two
//!    claims from the highest claiming generation cancel out: neither keeps it.
//! 2. Assignment, as Java's `AbstractStickyAssignor`:
//!    - all members subscribe to the same topics (the common case): its constrained
//!      algorithm. With `P` partitions over `N` members, `P % N` members get
//!      `ceil(P / N)` and the rest `floor(P / N)`; a member keeps up to its quota of what
//!      it owns (the lowest partition numbers first), and the rest is dealt round-robin;
//!    - otherwise, the general case (module `general`): owned partitions kept, the others
//!      given to the least loaded subscriber, then partitions moved until the assignment
//!      is as balanced as the subscriptions allow.
//! 3. The cooperative rule (Java's `adjustAssignment`): a partition given to a member
//!    other than its owner is left out of this assignment. Its owner, no longer assigned
//!    it, revokes it and rejoins, and the follow-up rebalance hands it out, now unowned.
//!    [`CooperativeAssignment::withheld`] lists them. Which partitions count as changing
//!    owner is Java's choice for each case: in the constrained one, those an owner gave up
//!    over its quota and contested ones; in the general one, those another member claims
//!    while the new one does not. To the latter this adds partitions whose new member's
//!    own claim lost to a higher generation: Java hands those over at once, while their
//!    valid owner may still be consuming them.

mod general;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use super::{Assignor, Group, GroupAssignment, MemberSubscription, RebalanceProtocol};
use crate::consumer::protocol::Subscription;

/// A partition, as the topic's index in [`Group::topics`] and the partition id.
type Tp = (usize, i32);

/// Sticky and cooperative, as Java's `CooperativeStickyAssignor`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeStickyAssignor;

/// The full result of a cooperative-sticky assignment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CooperativeAssignment {
    /// What each member gets now (what [`Assignor::assign`] returns).
    pub assignment: GroupAssignment,
    /// Partitions moving to a new owner, left out of `assignment` until their owner has
    /// revoked them; each with the member this rebalance meant it for (the follow-up
    /// rebalance decides anew).
    pub withheld: BTreeMap<(String, i32), String>,
}

impl CooperativeStickyAssignor {
    /// The protocol name.
    pub const NAME: &'static str = "cooperative-sticky";

    /// The assignment, with the partitions the cooperative rule holds back.
    pub fn assign_cooperative(
        &self,
        partitions_per_topic: &BTreeMap<String, u32>,
        members: &[MemberSubscription],
    ) -> CooperativeAssignment {
        let group = Group::new(partitions_per_topic, members);
        if group.members.is_empty() {
            return CooperativeAssignment::default();
        }
        let ownership = Ownership::resolve(&group);
        let (mut assigned, withheld) = if same_subscriptions(&group) {
            constrained(&group, &ownership)
        } else {
            let assigned = general::assign(&group, &ownership.owned);
            let withheld = transfers(&group, &ownership, &assigned);
            (assigned, withheld)
        };
        for partitions in &mut assigned {
            partitions.retain(|tp| !withheld.contains_key(tp));
        }
        CooperativeAssignment {
            withheld: withheld
                .into_iter()
                .map(|((t, p), m)| {
                    let member = group.members[m].member_id.clone();
                    ((group.topics[t].0.to_owned(), p), member)
                })
                .collect(),
            assignment: group.finish(assigned),
        }
    }

    /// The user data a member puts in its subscription: its generation, as Java's
    /// `CooperativeStickyAssignor` writes it for leaders that predate subscription v2.
    pub fn subscription_user_data(generation: i32) -> Bytes {
        Bytes::copy_from_slice(&generation.to_be_bytes())
    }
}

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Cooperative
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, u32>,
        members: &[MemberSubscription],
    ) -> GroupAssignment {
        self.assign_cooperative(partitions_per_topic, members).assignment
    }

    /// Takes the generation from the subscription (v2+) or, failing that, from the user
    /// data of [`CooperativeStickyAssignor::subscription_user_data`] that older Java
    /// clients send; -1 if neither has one.
    fn member_subscription(
        &self,
        member_id: String,
        group_instance_id: Option<String>,
        subscription: Subscription,
    ) -> MemberSubscription {
        let from_user_data = subscription
            .user_data
            .as_deref()
            .and_then(|d| d.get(..4))
            .map_or(-1, |d| i32::from_be_bytes([d[0], d[1], d[2], d[3]]));
        let mut member =
            MemberSubscription::from_subscription(member_id, group_instance_id, subscription);
        if member.generation == -1 {
            member.generation = from_user_data;
        }
        member
    }
}

/// Which member's claims count (step 1 of the module docs).
#[derive(Debug)]
struct Ownership {
    /// Per member, the partitions it validly owns, each once.
    owned: Vec<Vec<Tp>>,
    /// Partitions claimed by two or more members of the highest generation claiming them.
    contested: BTreeSet<Tp>,
}

impl Ownership {
    fn resolve(group: &Group<'_>) -> Ownership {
        // Per partition: the highest claiming generation and its claimants.
        let mut claims: BTreeMap<Tp, (i32, Vec<usize>)> = BTreeMap::new();
        for (m, member) in group.members.iter().enumerate() {
            for (topic, p) in &member.owned_partitions {
                let Some(t) = group.topic_index(topic) else {
                    continue;
                };
                if !(0..group.topics[t].1).contains(p) {
                    continue;
                }
                let (generation, claimants) =
                    claims.entry((t, *p)).or_insert((member.generation, Vec::new()));
                if member.generation > *generation {
                    *generation = member.generation;
                    claimants.clear();
                }
                // Members are visited in turn, so a repeated claim is the last one seen.
                if member.generation == *generation && claimants.last() != Some(&m) {
                    claimants.push(m);
                }
            }
        }
        let mut owned = vec![Vec::new(); group.members.len()];
        let mut contested = BTreeSet::new();
        for (tp, (_, claimants)) in claims {
            match claimants[..] {
                [m] => owned[m].push(tp),
                _ => {
                    contested.insert(tp);
                }
            }
        }
        Ownership { owned, contested }
    }
}

/// Whether every member subscribes to the same topics, existing or not (Java's
/// `allSubscriptionsEqual`).
fn same_subscriptions(group: &Group<'_>) -> bool {
    fn topics(m: &MemberSubscription) -> BTreeSet<&str> {
        m.topics.iter().map(String::as_str).collect()
    }
    let first = topics(group.members[0]);
    group.members[1..].iter().all(|m| topics(m) == first)
}

/// Java's `ConstrainedAssignmentBuilder` without racks: the assignment, and the freshly
/// dealt partitions that an owner gave up or that were contested, with the member each was
/// dealt to.
fn constrained(group: &Group<'_>, ownership: &Ownership) -> (Vec<Vec<Tp>>, BTreeMap<Tp, usize>) {
    let members = group.members.len();
    let total: usize = group.topics.iter().map(|&(_, count)| count as usize).sum();
    let min_quota = total / members;
    let max_quota = total.div_ceil(members);
    let expected_over_min = total % members;
    let mut over_min = 0;

    let mut assigned: Vec<Vec<Tp>> = vec![Vec::new(); members];
    let mut taken: Vec<Vec<bool>> =
        group.topics.iter().map(|&(_, count)| vec![false; count as usize]).collect();
    let mut revoked: BTreeSet<Tp> = BTreeSet::new();
    // Members below the minimum quota, and those at it that may still take one more.
    let mut under_min: Vec<usize> = Vec::new();
    let mut at_min: VecDeque<usize> = VecDeque::new();

    for (m, owned) in ownership.owned.iter().enumerate() {
        let mut owned = owned.clone();
        // Java keeps the lowest partition numbers, across topics.
        owned.sort_unstable_by_key(|&(t, p)| (p, t));
        let keep = if owned.len() < min_quota {
            under_min.push(m);
            owned.len()
        } else if owned.len() >= max_quota && over_min < expected_over_min {
            over_min += 1;
            if over_min == expected_over_min {
                at_min.clear();
            }
            max_quota
        } else {
            if over_min < expected_over_min {
                at_min.push_back(m);
            }
            min_quota
        };
        for &(t, p) in &owned[..keep] {
            taken[t][p as usize] = true;
        }
        revoked.extend(owned.drain(keep..));
        assigned[m] = owned;
    }

    // Members were visited in member id order, so both lists are in it, as Java sorts
    // them. Deal the rest round-robin to `under_min` until each reaches the minimum quota,
    // then one each to `at_min` in turn.
    let mut withheld = BTreeMap::new();
    let mut cursor = 0;
    let unassigned = group
        .topics
        .iter()
        .enumerate()
        .flat_map(|(t, &(_, count))| (0..count).map(move |p| (t, p)));
    for (t, p) in unassigned.filter(|&(t, p)| !taken[t][p as usize]) {
        let from_under = !under_min.is_empty();
        let m = if from_under {
            if cursor >= under_min.len() {
                cursor = 0;
            }
            under_min[cursor]
        } else {
            // The quotas add up to `total`: what is left is exactly the room below them.
            at_min
                .pop_front()
                .expect("invariant: a member is below its quota while partitions remain")
        };
        assigned[m].push((t, p));
        if revoked.contains(&(t, p)) || ownership.contested.contains(&(t, p)) {
            withheld.insert((t, p), m);
        }
        let count = assigned[m].len();
        if from_under && count == min_quota {
            under_min.remove(cursor);
            at_min.push_back(m);
        } else if from_under {
            cursor += 1;
        }
    }
    (assigned, withheld)
}

/// The partitions of the general case that change owner (Java's
/// `computePartitionsTransferringOwnership`), with the member each was assigned to: those
/// assigned to a member that does not claim them while another member does, whatever the
/// claim's generation (Java's rule), and those assigned to a member whose claim lost to a
/// higher generation's (a stale claim is no reason to skip the revocation).
fn transfers(
    group: &Group<'_>,
    ownership: &Ownership,
    assigned: &[Vec<Tp>],
) -> BTreeMap<Tp, usize> {
    let mut claimants: BTreeMap<Tp, Vec<usize>> = BTreeMap::new();
    for (m, member) in group.members.iter().enumerate() {
        for (topic, p) in &member.owned_partitions {
            if let Some(t) = group.topic_index(topic) {
                claimants.entry((t, *p)).or_default().push(m);
            }
        }
    }
    let owner: BTreeMap<Tp, usize> = ownership
        .owned
        .iter()
        .enumerate()
        .flat_map(|(m, owned)| owned.iter().map(move |&tp| (tp, m)))
        .collect();
    let mut withheld = BTreeMap::new();
    for (m, partitions) in assigned.iter().enumerate() {
        for tp in partitions {
            let claims = claimants.get(tp).map_or(&[][..], Vec::as_slice);
            let claims_it = claims.contains(&m);
            let other_claims = claims.iter().any(|&c| c != m);
            let owned_by_other = owner.get(tp).is_some_and(|&o| o != m);
            if (other_claims && !claims_it) || owned_by_other {
                withheld.insert(*tp, m);
            }
        }
    }
    withheld
}

#[cfg(test)]
mod tests;
