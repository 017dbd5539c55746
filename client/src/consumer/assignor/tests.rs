//! Helpers shared by the assignors' tests, and the properties every assignor must keep.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::consumer::protocol::{Subscription, TopicPartitions};

/// A dynamic member subscribed to `topics`, owning nothing.
pub(crate) fn member(id: &str, topics: &[&str]) -> MemberSubscription {
    MemberSubscription {
        member_id: id.to_owned(),
        group_instance_id: None,
        topics: topics.iter().map(|&t| t.to_owned()).collect(),
        owned_partitions: Vec::new(),
        generation: -1,
        rack: None,
    }
}

/// A static member (`group.instance.id` set).
pub(crate) fn static_member(id: &str, instance: &str, topics: &[&str]) -> MemberSubscription {
    MemberSubscription { group_instance_id: Some(instance.to_owned()), ..member(id, topics) }
}

pub(crate) fn counts(topics: &[(&str, u32)]) -> BTreeMap<String, u32> {
    topics.iter().map(|&(t, n)| (t.to_owned(), n)).collect()
}

/// `t-0 t-1 u-0`: a member's partitions, readable in an assertion.
pub(crate) fn render(partitions: &[(String, i32)]) -> String {
    let names: Vec<String> = partitions.iter().map(|(t, p)| format!("{t}-{p}")).collect();
    names.join(" ")
}

/// Runs `assignor` and renders each member's partitions.
pub(crate) fn assign(
    assignor: &dyn Assignor,
    topics: &[(&str, u32)],
    members: &[MemberSubscription],
) -> BTreeMap<String, String> {
    assignor
        .assign(&counts(topics), members)
        .iter()
        .map(|(m, partitions)| (m.clone(), render(partitions)))
        .collect()
}

/// Every partition of a topic that exists and has a subscriber.
pub(crate) fn assignable(
    partitions_per_topic: &BTreeMap<String, u32>,
    members: &[MemberSubscription],
) -> BTreeSet<(String, i32)> {
    let subscribed: BTreeSet<&String> = members.iter().flat_map(|m| &m.topics).collect();
    partitions_per_topic
        .iter()
        .filter(|(t, _)| subscribed.contains(t))
        .flat_map(|(t, &n)| (0..n as i32).map(move |p| (t.clone(), p)))
        .collect()
}

/// Fails unless each partition in `assignment` goes to one member, subscribed to its
/// topic, and every member is present; returns the partitions assigned.
pub(crate) fn check_valid(
    assignment: &GroupAssignment,
    partitions_per_topic: &BTreeMap<String, u32>,
    members: &[MemberSubscription],
) -> Result<BTreeSet<(String, i32)>, TestCaseError> {
    let ids: BTreeSet<&String> = members.iter().map(|m| &m.member_id).collect();
    let listed: BTreeSet<&String> = assignment.keys().collect();
    prop_assert_eq!(listed, ids);
    let all = assignable(partitions_per_topic, members);
    let mut seen = BTreeSet::new();
    for m in members {
        for tp in &assignment[&m.member_id] {
            prop_assert!(all.contains(tp), "{tp:?} does not exist");
            prop_assert!(m.topics.contains(&tp.0), "{} is not subscribed to {}", m.member_id, tp.0);
            prop_assert!(seen.insert(tp.clone()), "{tp:?} assigned twice");
        }
    }
    Ok(seen)
}

/// A group and its topics.
pub(crate) type Scenario = (BTreeMap<String, u32>, Vec<MemberSubscription>);

/// Some topics (`t0`..) with their partition counts, and one to six members subscribed
/// to some of them and maybe to `ghost`, which does not exist; some groups subscribe
/// alike.
pub(crate) fn scenario() -> impl Strategy<Value = Scenario> {
    scenario_with(1, any::<bool>())
}

/// [`scenario`] with at least `min_members` members, subscribing alike when `same`.
pub(crate) fn scenario_with(
    min_members: usize,
    same: impl Strategy<Value = bool>,
) -> impl Strategy<Value = Scenario> {
    (prop::collection::vec(0u32..8, 1..=4), min_members..=6, same)
        .prop_flat_map(|(partition_counts, members, same)| {
            let topics: Vec<String> = (0..partition_counts.len())
                .map(|t| format!("t{t}"))
                .chain(["ghost".to_owned()])
                .collect();
            let subscriptions = prop::collection::vec(
                (
                    prop::sample::subsequence(topics.clone(), 1..=topics.len()),
                    prop::option::of(0u8..4),
                ),
                members,
            );
            (Just(partition_counts), subscriptions, Just(same))
        })
        .prop_map(|(partition_counts, subscriptions, same)| {
            let partitions_per_topic =
                partition_counts.iter().enumerate().map(|(t, &n)| (format!("t{t}"), n)).collect();
            let first = subscriptions[0].0.clone();
            let members = subscriptions
                .into_iter()
                .enumerate()
                .map(|(i, (topics, instance))| MemberSubscription {
                    member_id: format!("m{i}"),
                    group_instance_id: instance.map(|x| format!("i{x}")),
                    topics: if same { first.clone() } else { topics },
                    owned_partitions: Vec::new(),
                    generation: -1,
                    rack: None,
                })
                .collect();
            (partitions_per_topic, members)
        })
}

/// The most and fewest partitions any member has.
pub(crate) fn spread(assignment: &GroupAssignment) -> (usize, usize) {
    let sizes = assignment.values().map(Vec::len);
    (sizes.clone().max().unwrap_or(0), sizes.min().unwrap_or(0))
}

pub(crate) fn same_topics(members: &[MemberSubscription]) -> bool {
    fn set(m: &MemberSubscription) -> BTreeSet<&String> {
        m.topics.iter().collect()
    }
    members.iter().all(|m| set(m) == set(&members[0]))
}

proptest! {
    #[test]
    fn range_assigns_everything_in_balanced_ranges((partitions_per_topic, members) in scenario()) {
        let assignment = RangeAssignor.assign(&partitions_per_topic, &members);
        let assigned = check_valid(&assignment, &partitions_per_topic, &members)?;
        prop_assert_eq!(assigned, assignable(&partitions_per_topic, &members));
        for topic in partitions_per_topic.keys() {
            let per_member: Vec<Vec<i32>> = members
                .iter()
                .filter(|m| m.topics.contains(topic))
                .map(|m| {
                    let mine = assignment[&m.member_id].iter().filter(|(t, _)| t == topic);
                    mine.map(|&(_, p)| p).collect()
                })
                .collect();
            let sizes = per_member.iter().map(Vec::len);
            if let (Some(max), Some(min)) = (sizes.clone().max(), sizes.min()) {
                prop_assert!(max - min <= 1, "{topic}: {per_member:?}");
            }
            for range in &per_member {
                let contiguous = range.windows(2).all(|w| w[1] == w[0] + 1);
                prop_assert!(contiguous, "{topic}: {range:?} is not contiguous");
            }
        }
    }

    #[test]
    fn round_robin_assigns_everything((partitions_per_topic, members) in scenario()) {
        let assignment = RoundRobinAssignor.assign(&partitions_per_topic, &members);
        let assigned = check_valid(&assignment, &partitions_per_topic, &members)?;
        prop_assert_eq!(assigned, assignable(&partitions_per_topic, &members));
        if same_topics(&members) {
            let (max, min) = spread(&assignment);
            prop_assert!(max - min <= 1, "{assignment:?}");
        }
    }

    /// The result does not depend on the order members are listed in.
    #[test]
    fn member_order_does_not_matter((partitions_per_topic, mut members) in scenario()) {
        let assignors: [&dyn Assignor; 3] =
            [&RangeAssignor, &RoundRobinAssignor, &CooperativeStickyAssignor];
        let before: Vec<GroupAssignment> =
            assignors.iter().map(|a| a.assign(&partitions_per_topic, &members)).collect();
        members.reverse();
        for (assignor, before) in assignors.iter().zip(before) {
            let after = assignor.assign(&partitions_per_topic, &members);
            prop_assert_eq!(after, before, "{}", assignor.name());
        }
    }
}

#[test]
fn assignors_by_name() {
    for (name, protocol) in [
        ("range", RebalanceProtocol::Eager),
        ("roundrobin", RebalanceProtocol::Eager),
        ("cooperative-sticky", RebalanceProtocol::Cooperative),
    ] {
        let assignor = assignor_by_name(name).unwrap();
        assert_eq!((assignor.name(), assignor.protocol()), (name, protocol));
    }
    assert!(assignor_by_name("sticky").is_none());
    assert!(assignor_by_name("org.apache.kafka.clients.consumer.RangeAssignor").is_none());
}

fn tps(list: &[(&str, i32)]) -> Vec<(String, i32)> {
    list.iter().map(|&(t, p)| (t.to_owned(), p)).collect()
}

#[test]
fn eager_changes_revoke_everything() {
    let owned = tps(&[("t", 1), ("t", 0)]);
    let assigned = tps(&[("t", 1), ("u", 0)]);
    let changes = rebalance_changes(RebalanceProtocol::Eager, &owned, &assigned);
    assert_eq!(
        changes,
        RebalanceChanges {
            revoked: tps(&[("t", 0), ("t", 1)]),
            added: tps(&[("t", 1), ("u", 0)]),
            rejoin: false,
        }
    );
}

#[test]
fn cooperative_changes_are_the_difference() {
    let owned = tps(&[("t", 1), ("t", 0), ("t", 0)]);
    let assigned = tps(&[("u", 0), ("t", 1)]);
    let changes = rebalance_changes(RebalanceProtocol::Cooperative, &owned, &assigned);
    assert_eq!(
        changes,
        RebalanceChanges { revoked: tps(&[("t", 0)]), added: tps(&[("u", 0)]), rejoin: true }
    );
    // Only gaining partitions needs no second rebalance.
    let changes = rebalance_changes(RebalanceProtocol::Cooperative, &tps(&[("t", 1)]), &assigned);
    assert_eq!((changes.revoked.len(), changes.rejoin), (0, false));
}

#[test]
fn member_subscriptions_from_the_wire() {
    let subscription = Subscription {
        topics: vec!["t".into()],
        user_data: Some(Bytes::from_static(&[0, 0, 0, 41])),
        owned_partitions: TopicPartitions::group(&tps(&[("t", 0), ("t", 2)])),
        generation_id: -1,
        rack_id: Some(String::new()),
    };
    let member = RangeAssignor.member_subscription("m".into(), Some("i".into()), subscription);
    // User data is the assignor's own: by default it says nothing of the generation.
    assert_eq!(
        member,
        MemberSubscription {
            member_id: "m".into(),
            group_instance_id: Some("i".into()),
            topics: vec!["t".into()],
            owned_partitions: tps(&[("t", 0), ("t", 2)]),
            generation: -1,
            rack: None,
        }
    );
}

#[test]
fn strings_compare_as_in_java() {
    // U+FFFF sorts before U+10000 by bytes, after it by UTF-16 code units (0xd800 first).
    assert_eq!("\u{ffff}".cmp("\u{10000}"), std::cmp::Ordering::Less);
    assert_eq!(java_cmp("\u{ffff}", "\u{10000}"), std::cmp::Ordering::Greater);
    assert_eq!(java_cmp("a", "b"), std::cmp::Ordering::Less);
    let members = [member("\u{ffff}", &["t"]), member("\u{10000}", &["t"])];
    let got = assign(&RangeAssignor, &[("t", 3)], &members);
    assert_eq!(got["\u{10000}"], "t-0 t-1");
    assert_eq!(got["\u{ffff}"], "t-2");
}

#[test]
fn a_repeated_member_id_keeps_its_first_subscription() {
    let members = [member("a", &["t"]), member("b", &["t"]), member("a", &["u"])];
    let got = assign(&RoundRobinAssignor, &[("t", 2), ("u", 2)], &members);
    assert_eq!(got.len(), 2);
    assert_eq!(got["a"], "t-0");
    assert_eq!(got["b"], "t-1");
}
